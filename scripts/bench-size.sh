#!/usr/bin/env bash
# The size row of BENCHMARKS.md: ConsentKit's stripped release cdylib against references built in
# the same run with the same profile, all on the trimmed SQLite of .cargo/config.toml:
# - the baseline (bench/size-baseline): uniffi + bundled rusqlite and nothing else. Ours minus it
#   is our share, the row's figure;
# - the floor (the same crate with `--features deps`): the baseline plus every other dependency of
#   the core, each instantiated once. Our share above the floor is what our own code costs; the
#   floor minus the baseline is what no code of ours can go below while it uses those crates;
# - the interface floor (generated into target/bench-size/interface-floor by bench/size-interface-gen
#   from the uniffi metadata of the library just built): ConsentKit's uniffi interface, every
#   exported function, constructor and method with its records, enums, error, custom types,
#   objects and foreign traits, under the same names and checksums, with bodies that do no work
#   (arguments to black_box, results from black_box), on the baseline's code. Its size minus the
#   baseline's is what exposing this interface costs, whatever the code behind it. The
#   hand-written C gate (`consentkit_gate*`) and JNI (`Java_*`) entry points are not in it: they are
#   our code, not uniffi's. The script stops unless the floor's uniffi metadata (names, types,
#   checksums, docstrings), its exported symbols and its checksum functions' values equal ours;
# - the combined floor (the same crate with `--features deps`: the interface floor plus the deps
#   floor's code, in one library): what no implementation of this interface on these dependencies
#   can go below;
# - the baseline on libsqlite3-sys's default flags: what the SQLite trimming saves.
# Ours is built as the shipped library is (`cargo rustc --crate-type cdylib`, as
# bindings/swift/build-xcframework.sh does): consentkit-ffi is a lib + cdylib crate, and for such a
# crate `cargo build` silently skips the profile's LTO (rust-lang/cargo#9672). Measured 2026-12-01,
# stripped: 2,423,320 B from `cargo build` (no LTO), 2,321,016 B as a cdylib with thin LTO,
# 2,085,848 B with fat LTO (the profile since then).
# The baseline crate is its own workspace: its [profile.*] tables must equal the workspace's, or
# this script stops (the comparison would not be fair). The interface floor's Cargo.toml is the
# baseline's (dependencies, features, profile) under the library's crate name.
# Prints a Markdown section on stdout; progress on stderr. Then (on Linux) where the share goes:
# by section, and by module of ours or crate of the code, read from the unstripped builds with
# `nm` and `size`.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
out="$root/target/bench-size"
mkdir -p "$out"
ext=so; [ "$(uname)" = Darwin ] && ext=dylib
strip_copy() { cp "$1" "$2"; strip "$2" 2>/dev/null || strip -x "$2"; stat -c %s "$2" 2>/dev/null || stat -f %z "$2"; }

# The same profile on both sides, or no comparison.
profile=$(python3 - Cargo.toml bench/size-baseline/Cargo.toml <<'PY'
import sys, tomllib
ours, base = (tomllib.load(open(p, "rb")).get("profile", {}) for p in sys.argv[1:3])
if ours != base:
    sys.exit(f"bench-size: the [profile.*] tables of {sys.argv[1]} and {sys.argv[2]} differ:\n"
             f"  workspace: {ours}\n  baseline:  {base}\nkeep them equal (the baseline must be built as ours is)")
release = ours.get("release", {})
print(", ".join(f"{k} = {v!r}" for k, v in release.items() if k != "package")
      + "".join(f"; {name}: {', '.join(f'{k} = {v!r}' for k, v in o.items())}"
                for name, o in release.get("package", {}).items()))
PY
)

echo "building consentkit-ffi (release cdylib, trimmed SQLite)..." >&2
cargo rustc --quiet --release -p consentkit-ffi --lib --crate-type cdylib
ours=$(strip_copy "target/release/libconsentkit_ffi.$ext" "$out/ours.$ext")

baseline() { # NAME [cargo args...]: builds the baseline crate into target/bench-size/NAME-target
    local name=$1; shift
    echo "building the $name (release)..." >&2
    (cd bench/size-baseline && CARGO_TARGET_DIR="$out/$name-target" cargo build --quiet --release "$@")
}
baseline baseline
base=$(strip_copy "$out/baseline-target/release/libsize_baseline.$ext" "$out/baseline.$ext")
baseline floor --features deps
floor=$(strip_copy "$out/floor-target/release/libsize_baseline.$ext" "$out/floor.$ext")
LIBSQLITE3_FLAGS="" baseline baseline-full
full=$(strip_copy "$out/baseline-full-target/release/libsize_baseline.$ext" "$out/baseline-full.$ext")

# The interface floor, generated from the metadata of the library built above (so it cannot drift
# from it): src/lib.rs from bench/size-interface-gen, the baseline's code (floor_baseline.rs, and
# the deps floor's code without its uniffi export), and the baseline's Cargo.toml (dependencies,
# features, profile) under the library's crate name, so the uniffi symbols are ours. Built from its
# directory (inside the workspace's, so .cargo/config.toml's trimmed SQLite applies, as for the
# baseline) with the baseline's Cargo.lock.
echo "building and testing the interface-floor generator (debug)..." >&2
gen_target="$out/interface-gen-target"
CARGO_TARGET_DIR="$gen_target" cargo test --quiet --manifest-path bench/size-interface-gen/Cargo.toml >&2
CARGO_TARGET_DIR="$gen_target" cargo build --quiet --manifest-path bench/size-interface-gen/Cargo.toml
ifsrc="$out/interface-floor"
rm -rf "$ifsrc/src"
mkdir -p "$ifsrc/src"
crate=$("$gen_target/debug/size-interface-gen" generate "target/release/libconsentkit_ffi.$ext" "$ifsrc")
cp bench/size-interface-gen/floor_baseline.rs "$ifsrc/src/"
exports=$(grep -c '^#\[uniffi::export\]$' bench/size-baseline/src/deps_floor.rs || true)
[ "$exports" = 1 ] || { echo "bench-size: expected one #[uniffi::export] in bench/size-baseline/src/deps_floor.rs, found $exports" >&2; exit 1; }
sed '/^#\[uniffi::export\]$/d' bench/size-baseline/src/deps_floor.rs > "$ifsrc/src/deps_floor.rs"
printf '\n// The baseline'"'"'s code (and the deps floor'"'"'s), as plain C exports: bench/size-interface-gen/floor_baseline.rs.\nmod floor_baseline;\n#[cfg(feature = "deps")]\nmod deps_floor;\n' >> "$ifsrc/src/lib.rs"
python3 - bench/size-baseline/Cargo.toml "$ifsrc/Cargo.toml" "$crate" <<'PY'
import sys
src, dst, crate = sys.argv[1:4]
text = open(src).read()
for old, new in (('name = "size-baseline"', 'name = "size-interface-floor"'), ("[lib]\n", f'[lib]\nname = "{crate}"\n')):
    if text.count(old) != 1:
        sys.exit(f"bench-size: {src} has {text.count(old)} of {old!r}, expected one (the interface floor's Cargo.toml is derived from it)")
    text = text.replace(old, new)
open(dst, "w").write("# Generated by scripts/bench-size.sh from bench/size-baseline/Cargo.toml: the interface floor. Do not edit.\n" + text)
PY
cp bench/size-baseline/Cargo.lock "$ifsrc/Cargo.lock"
ifloor_build() { # NAME [cargo args...]
    local name=$1; shift
    echo "building the $name (release)..." >&2
    (cd "$ifsrc" && CARGO_TARGET_DIR="$out/$name-target" cargo build --quiet --release "$@")
}
ifloor_build interface-floor
ifloor_build combined-floor --features deps
ilib="$out/interface-floor-target/release/lib$crate.$ext"
clib="$out/combined-floor-target/release/lib$crate.$ext"

# The floor is ConsentKit's interface or the comparison is void: the same uniffi metadata, the same
# exported symbols (ours without the hand-written C gate and JNI entries, the floor's without its
# plain C exports of the baseline's code) and the same checksum values.
echo "checking the interface floor against ours (metadata, exports, checksums)..." >&2
for lib in "$ilib" "$clib"; do
    "$gen_target/debug/size-interface-gen" compare "target/release/libconsentkit_ffi.$ext" "$lib" >&2
done
counts=$(python3 - "target/release/libconsentkit_ffi.$ext" "$ilib" "$clib" <<'PY'
import ctypes, re, subprocess, sys
ours, *floors = sys.argv[1:]
def exports(path):  # the defined dynamic symbols (Mach-O: the defined external ones, without the leading _)
    darwin = sys.platform == "darwin"
    cmd = ["nm", "-gU", path] if darwin else ["nm", "-D", "--defined-only", path]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    names = {f[-1] for f in (l.split() for l in out.splitlines()) if len(f) >= 3}
    return {n[1:] if darwin and n.startswith("_") else n for n in names}
mine = {n for n in exports(ours) if not n.startswith(("Java_", "consentkit_gate"))}
ours_lib = ctypes.CDLL(ours)
for floor in floors:
    theirs = {n for n in exports(floor) if not n.startswith("size_floor_")}
    if mine != theirs:
        sys.exit(f"bench-size: the exported symbols of {ours} and the interface floor {floor} differ:\n"
                 f"  only ours: {sorted(mine - theirs)}\n  only the floor's: {sorted(theirs - mine)}")
    floor_lib = ctypes.CDLL(floor)
    for name in sorted(n for n in mine if re.match(r"uniffi_\w+_checksum_", n)):
        a, b = (getattr(lib, name) for lib in (ours_lib, floor_lib))
        a.restype = b.restype = ctypes.c_uint16
        if a() != b():
            sys.exit(f"bench-size: checksum {name}: ours {a()}, the interface floor's {b()}")
kinds = {k: sum(1 for n in mine if re.match(rf"uniffi_\w+?_fn_{k}_", n)) for k in ("func", "constructor", "method", "init_callback_vtable")}
print(f"{kinds['func']} functions, {kinds['constructor']} constructors, {kinds['method']} methods, "
      f"{kinds['init_callback_vtable']} foreign traits")
PY
)
echo "the interface floor matches ours: $counts" >&2
ifloor=$(strip_copy "$ilib" "$out/interface-floor.$ext")
cfloor=$(strip_copy "$clib" "$out/combined-floor.$ext")

share=$((ours - base))
deps=$((floor - base))
own=$((ours - floor))
saved=$((full - base))
iface=$((ifloor - base))
combined=$((cfloor - base))
above=$((ours - cfloor))
ratio=$(python3 -c "print(f'{$share / $combined:.2f}')")
if [ "$share" -lt 300000 ]; then
    verdict="The goal is met."
else
    verdict="The goal is not met: our share is $share B, $((share - 300000)) B over it."
fi
overlap=$((deps + iface - combined))
if [ "$overlap" -ge 0 ]; then
    overlap="$overlap B less than their sum, $((deps + iface)) B: code both use"
else
    overlap="$((-overlap)) B more than their sum, $((deps + iface)) B"
fi
if [ "$combined" -ge 300000 ]; then
    floor_says="That is over the 300,000 B of the goal by $((combined - 300000)) B: the goal is below the floor of the
API we ship. No implementation of this interface on these dependencies can reach it, however little
its code does; only a smaller interface (fewer exported calls, records, enums or variants) or fewer
dependencies could. Our code above that combined floor is $above B."
else
    floor_says="That is under the goal: the goal is not below the floor of this API, and leaves
$((300000 - combined)) B for all the code behind the interface (the store, the gate, the rights, the C gate and JNI
entries, and the generic code of std, serde and uniffi instantiated for them). That code takes
$above B now (ours above the combined floor), $(python3 -c "print(f'{$above / (300000 - $combined):.1f}')")× what the goal leaves it."
fi
cat <<MD
### Library size (\`scripts/bench-size.sh\`)

All built in this run with the workspace's release profile (\`$profile\`; the script checks that
the baseline crate's profile is the same), stripped, on the trimmed SQLite of \`.cargo/config.toml\`.
Ours is built as shipped: \`cargo rustc --release -p consentkit-ffi --lib --crate-type cdylib\`
(a plain \`cargo build\` of this lib + cdylib crate skips LTO, rust-lang/cargo#9672).

| figure | ours | reference, same run | goal |
|---|---|---|---|
| stripped release cdylib, whole | $ours B | baseline (uniffi + bundled SQLite) $base B | |
| our share of it | $share B | | < 300,000 B |
| the floor under the share: the core's other dependencies (serde + serde_json, time, sha2, uuid, arc-swap, foldhash, thiserror, log, libc, rusqlite's \`functions\`), each instantiated once | | floor crate (baseline + those, \`bench/size-baseline --features deps\`) $floor B: $deps B over the baseline | |
| our own code: ours above the floor | $own B | | |
| the interface floor: ConsentKit's uniffi API ($counts) with bodies that do no work, generated from the library's metadata (\`bench/size-interface-gen\`; same names, types and checksums, checked) | | interface-floor crate $ifloor B: $iface B over the baseline | |
| the combined floor: the interface floor and the core's other dependencies in one library (the interface-floor crate \`--features deps\`) | | combined-floor crate $cfloor B: $combined B over the baseline (deps floor $deps B + interface floor $iface B = $((deps + iface)) B) | |
| our share against that floor | $ratio× | | |
| our own code above the combined floor | $above B | | |
| SQLite trimming saves | $saved B | baseline with libsqlite3-sys default features $full B | |

How close to the goal: two floors are measured under the share, each over the same baseline. The
core's other dependencies, used once each, take $deps B. ConsentKit's uniffi interface, with
bodies that do no work but every lifting and lowering path live, takes $iface B: the scaffolding of
each exported call, the lifting and lowering of each record, enum and error, the foreign-trait
vtables, and the interface's metadata (the \`UNIFFI_META_*\` data the bindgen reads, docstrings
included). (The hand-written C gate, \`consentkit_gate*\`, and JNI, \`Java_*\`, entry points are
our code, not the uniffi interface: they are not in this floor and count as our code above it.)
Built together, in one library, the two floors take $combined B over the baseline ($overlap). $floor_says Our share is $ratio× the combined floor. (opt-level
"z" for the whole workspace would take about 100 KB off, for consentkit-core alone about 58 KB, but
either slows the gate's \`Snapshot::check\` (by about 40% for the whole workspace), so the core
stays at "s"). $verdict
MD

# Where our share goes, read from the unstripped builds (GNU binutils: Linux only).
if [ "$ext" = so ] && command -v nm >/dev/null && command -v size >/dev/null; then
python3 - "target/release/libconsentkit_ffi.$ext" "$out/baseline-target/release/libsize_baseline.$ext" "$out/floor-target/release/libsize_baseline.$ext" "$ilib" "$clib" <<'PY'
import collections, re, subprocess, sys
ours, base, floor, iface, combined = sys.argv[1:6]

def sections(path):
    rows = subprocess.run(["size", "-A", path], capture_output=True, text=True, check=True).stdout.splitlines()
    return {f[0]: int(f[1]) for f in (r.split() for r in rows) if len(f) >= 2 and f[0].startswith(".") and f[1].isdigit()}

def symbols(path):
    out = subprocess.run(["nm", "-C", "-S", "--size-sort", path], capture_output=True, text=True, check=True).stdout
    sizes = collections.Counter()
    for line in out.splitlines():
        parts = line.split(" ", 3)
        if len(parts) == 4:
            sizes[parts[3]] += int(parts[1], 16)
    return sizes

def owner(name):
    # Our crates by module (and store by submodule); any other code by the crate that defines it
    # (so a generic of serde_json instantiated for our types counts as serde_json).
    m = re.search(r"consentkit_(core|ffi)::(\w+)(?:::(\w+))?", name)
    if m and not name.startswith(("<alloc", "<core", "<std", "<hashbrown", "alloc::", "core::", "std::", "hashbrown::")):
        module = m.group(2) + (f"::{m.group(3)}" if m.group(2) == "store" and m.group(3) and m.group(3)[0].islower() else "")
        return f"consentkit_{m.group(1)}::{module}"
    if name.startswith(("UNIFFI_META_", "uniffi_consentkit_ffi_", "ffi_consentkit_ffi_")):
        return "uniffi scaffolding and metadata of our exports"
    bare = re.sub(r"^(<|&mut |&|dyn |\()+", "", name)
    head = re.split(r"::|<|>| ", bare)[0]
    return head if "::" in bare else "C symbols"

so, sb, sf, si, sc = sections(ours), sections(base), sections(floor), sections(iface), sections(combined)
print("\nWhere the share goes, by section of the library (bytes more than the baseline's; \"deps floor\", "
      "\"interface floor\" and \"combined floor\" are the three floor builds, whole):\n")
print("| section | ours | baseline | deps floor | interface floor | combined floor | ours - baseline | ours - combined floor |")
print("|---|---|---|---|---|---|---|---|")
for name in sorted(so, key=lambda n: sb.get(n, 0) - so[n]):
    if so[name] - sb.get(name, 0) >= 1000:
        print(f"| `{name}` | {so[name]} | {sb.get(name, 0)} | {sf.get(name, 0)} | {si.get(name, 0)} | {sc.get(name, 0)} "
              f"| {so[name] - sb.get(name, 0)} | {so[name] - sc.get(name, 0)} |")
unwind = sum(so.get(s, 0) - sb.get(s, 0) for s in (".eh_frame", ".eh_frame_hdr", ".gcc_except_table"))
print(f"\nUnwind tables (`.eh_frame`, `.eh_frame_hdr`, `.gcc_except_table`) are {unwind} B of the share; they "
      "stay: uniffi catches a panic at the boundary and turns it into an error, which needs unwinding.")

mine, theirs = symbols(ours), symbols(base)
exports = sum(1 for n in mine if n.startswith("uniffi_consentkit_ffi_fn_"))
groups, counts = collections.Counter(), collections.Counter()
for name, size in mine.items():
    extra = size - theirs.get(name, 0)
    if extra > 0:
        groups[owner(name)] += extra
        counts[owner(name)] += 1
total = sum(groups.values())
print(f"\nBiggest contributors: code and data symbols not in the baseline ({total} B in all; unwind tables, "
      "relocations and the symbol table come on top), by module of ours or by the crate whose code it is. "
      "LTO inlines across crates, so a function counts where it was inlined into: our "
      f"{exports} exported uniffi functions (\"uniffi scaffolding\") hold most of the code they call.\n")
print("| contributor | bytes | symbols |")
print("|---|---|---|")
for name, size in groups.most_common(25):
    print(f"| `{name}` | {size} | {counts[name]} |")
floor_syms = symbols(iface)
floor_extra = {n: s - theirs.get(n, 0) for n, s in floor_syms.items() if s > theirs.get(n, 0)}
floor_scaffolding = sum(s for n, s in floor_extra.items() if owner(n) == "uniffi scaffolding and metadata of our exports")
print(f"\nIn the interface floor, the symbols not in the baseline take {sum(floor_extra.values())} B, of which "
      f"{floor_scaffolding} B are the same exported functions and metadata (against {groups['uniffi scaffolding and metadata of our exports']} B "
      "in ours, where they also hold the code of ours and the core's that LTO inlined into them).")
PY
fi
