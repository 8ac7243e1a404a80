#!/usr/bin/env bash
# The size row of BENCHMARKS.md: ConsentKit's stripped release cdylib against a baseline built in
# the same run with the same profile (bench/size-baseline: uniffi + bundled rusqlite and nothing
# else), both on the trimmed SQLite of .cargo/config.toml, plus what the trimming saves.
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
