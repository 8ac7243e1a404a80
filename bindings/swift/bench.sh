#!/usr/bin/env bash
# `make bench-swift`: builds the release cdylib, generates the Swift bindings, builds the bench
# package (bindings/swift/Bench, depending on this package by path) with `swift build -c release`
# linked against the release library, and runs it. Prints the Markdown section on stdout;
# progress on stderr. SWIFT names the toolchain's `swift` (default: the one on PATH).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/common.sh"
swift="${SWIFT:-swift}"
command -v "$swift" >/dev/null 2>&1 || { echo "bench-swift: no Swift toolchain ('$swift' is not on PATH)" >&2; exit 1; }
"$here/generate.sh" >/dev/null  # the bindings (from the debug library: same interface and checksums)
echo "building consentkit-ffi (release)..." >&2
(cd "$root" && cargo rustc --quiet --release -p consentkit-ffi --lib --crate-type cdylib) >&2 # as shipped (a plain build skips LTO: rust-lang/cargo#9672)
libdir="$target_dir/release"
link=(-Xlinker -L"$libdir" -Xlinker -rpath -Xlinker "$libdir" --scratch-path "$target_dir/swift-bench")
echo "building bindings/swift/Bench (release)..." >&2
(cd "$here/Bench" && "$swift" build -c release "${link[@]}" >&2)
bin="$(cd "$here/Bench" && "$swift" build -c release "${link[@]}" --show-bin-path)"
"$bin/ConsentKitBench"
