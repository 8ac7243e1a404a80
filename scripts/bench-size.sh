#!/usr/bin/env bash
# The size row of BENCHMARKS.md: ConsentKit's stripped release cdylib against references built in
# the same run with the same profile, all on the trimmed SQLite of .cargo/config.toml:
# - the baseline (bench/size-baseline): uniffi + bundled rusqlite and nothing else. Ours minus it
#   is our share, the row's figure;
# - the floor (the same crate with `--features deps`): the baseline plus every other dependency of
#   the core, each instantiated once. Our share above the floor is what our own code costs; the
#   floor minus the baseline is what no code of ours can go below while it uses those crates;
# - the baseline on libsqlite3-sys's default flags: what the SQLite trimming saves.
# Ours is built as the shipped library is (`cargo rustc --crate-type cdylib`, as
# bindings/swift/build-xcframework.sh does): consentkit-ffi is a lib + cdylib crate, and for such a
# crate `cargo build` silently skips the profile's LTO (rust-lang/cargo#9672). Measured 2026-12-01,
# stripped: 2,423,320 B from `cargo build` (no LTO), 2,321,016 B as a cdylib with thin LTO,
# 2,085,848 B with fat LTO (the profile since then).
# The baseline crate is its own workspace: its [profile.*] tables must equal the workspace's, or
# this script stops (the comparison would not be fair).
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

share=$((ours - base))
deps=$((floor - base))
own=$((ours - floor))
saved=$((full - base))
if [ "$share" -lt 300000 ]; then
    verdict="The goal is met."
else
    verdict="The goal is not met: our share is $share B, $((share - 300000)) B over it."
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
| SQLite trimming saves | $saved B | baseline with libsqlite3-sys default features $full B | |

How close to the goal: the dependencies alone, used once each, take $deps B of the 300,000 B, which
leaves $((300000 - deps)) B for all of ConsentKit's own code (the store, the gate, the rights, the
uniffi surface of every exported call and type, and the generic code of std, serde and uniffi
instantiated for our types); that code takes $own B now, $((own * 100 / (300000 - deps > 0 ? 300000 - deps : 1)))% of
what the goal leaves it (opt-level "z" for the whole workspace would take about 100 KB off, for
consentkit-core alone about 58 KB, but either slows the gate's \`Snapshot::check\` (by about 40%
for the whole workspace), so the core stays at "s"). $verdict
MD

# Where our share goes, read from the unstripped builds (GNU binutils: Linux only).
if [ "$ext" = so ] && command -v nm >/dev/null && command -v size >/dev/null; then
python3 - "target/release/libconsentkit_ffi.$ext" "$out/baseline-target/release/libsize_baseline.$ext" "$out/floor-target/release/libsize_baseline.$ext" <<'PY'
import collections, re, subprocess, sys
ours, base, floor = sys.argv[1:4]

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

so, sb, sf = sections(ours), sections(base), sections(floor)
print("\nWhere the share goes, by section of the library (bytes more than the baseline's):\n")
print("| section | ours | baseline | floor | ours - baseline |")
print("|---|---|---|---|---|")
for name in sorted(so, key=lambda n: sb.get(n, 0) - so[n]):
    if so[name] - sb.get(name, 0) >= 1000:
        print(f"| `{name}` | {so[name]} | {sb.get(name, 0)} | {sf.get(name, 0)} | {so[name] - sb.get(name, 0)} |")
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
PY
fi
