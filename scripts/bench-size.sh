#!/usr/bin/env bash
# The size row of BENCHMARKS.md: ConsentKit's stripped release cdylib against a baseline built in
# the same run with the same profile (bench/size-baseline: uniffi + bundled rusqlite and nothing
# else), both on the trimmed SQLite of .cargo/config.toml, plus what the trimming saves, and (on
# Linux) where our share goes: by section, and by module of ours or crate of the code, read from the
# unstripped builds with `nm` and `size`.
# Prints a Markdown section on stdout; progress on stderr.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
out="$root/target/bench-size"
mkdir -p "$out"
ext=so; [ "$(uname)" = Darwin ] && ext=dylib
strip_copy() { cp "$1" "$2"; strip "$2" 2>/dev/null || strip -x "$2"; stat -c %s "$2" 2>/dev/null || stat -f %z "$2"; }

echo "building consentkit-ffi (release, trimmed SQLite)..." >&2
cargo build --quiet --release -p consentkit-ffi --lib
ours=$(strip_copy "target/release/libconsentkit_ffi.$ext" "$out/ours.$ext")

echo "building the baseline (release, trimmed SQLite)..." >&2
(cd bench/size-baseline && CARGO_TARGET_DIR="$out/baseline-target" cargo build --quiet --release)
base=$(strip_copy "$out/baseline-target/release/libsize_baseline.$ext" "$out/baseline.$ext")

echo "building the baseline with libsqlite3-sys's default features (untrimmed)..." >&2
(cd bench/size-baseline && LIBSQLITE3_FLAGS="" CARGO_TARGET_DIR="$out/baseline-full-target" cargo build --quiet --release)
full=$(strip_copy "$out/baseline-full-target/release/libsize_baseline.$ext" "$out/baseline-full.$ext")

share=$((ours - base))
saved=$((full - base))
cat <<MD
### Library size (\`scripts/bench-size.sh\`)

| figure | ours | reference, same run | goal |
|---|---|---|---|
| stripped release cdylib, whole | $ours B | baseline (uniffi + bundled SQLite, same profile, same SQLite flags) $base B | |
| our share of it | $share B | | < 300,000 B |
| SQLite trimming saves | $saved B | baseline with libsqlite3-sys default features $full B | |
MD

# Where our share goes, read from the unstripped builds (GNU binutils: Linux only).
if [ "$ext" = so ] && command -v nm >/dev/null && command -v size >/dev/null; then
python3 - "target/release/libconsentkit_ffi.$ext" "$out/baseline-target/release/libsize_baseline.$ext" <<'PY'
import collections, re, subprocess, sys
ours, base = sys.argv[1], sys.argv[2]

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

so, sb = sections(ours), sections(base)
print("\nWhere the share goes, by section of the library (bytes more than the baseline's):\n")
print("| section | ours | baseline | ours - baseline |")
print("|---|---|---|---|")
for name in sorted(so, key=lambda n: sb.get(n, 0) - so[n]):
    if so[name] - sb.get(name, 0) >= 1000:
        print(f"| `{name}` | {so[name]} | {sb.get(name, 0)} | {so[name] - sb.get(name, 0)} |")

mine, theirs = symbols(ours), symbols(base)
groups, counts = collections.Counter(), collections.Counter()
for name, size in mine.items():
    extra = size - theirs.get(name, 0)
    if extra > 0:
        groups[owner(name)] += extra
        counts[owner(name)] += 1
total = sum(groups.values())
print(f"\nBiggest contributors: code and data symbols not in the baseline ({total} B in all; unwind tables, "
      "relocations and the symbol table come on top), by module of ours or by the crate whose code it is:\n")
print("| contributor | bytes | symbols |")
print("|---|---|---|")
for name, size in groups.most_common(25):
    print(f"| `{name}` | {size} | {counts[name]} |")
PY
fi
