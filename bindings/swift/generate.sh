#!/usr/bin/env bash
# Builds the host cdylib (debug) and generates the Swift bindings into Sources/ (never committed):
# Sources/ConsentKitFFI/ConsentKitFFI.swift and Sources/ConsentKitFFIC/ConsentKitFFIC.h. The
# module map beside the header is ours (committed), not uniffi's.
# Prints the directory that holds the host library, the one line on stdout.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/common.sh"
(cd "$root" && cargo rustc --quiet -p consentkit-ffi --lib --crate-type cdylib) >&2
libdir="$target_dir/debug"
lib="$libdir/libconsentkit_ffi.so"
[ -f "$lib" ] || lib="$libdir/libconsentkit_ffi.dylib"
[ -f "$lib" ] || { echo "no libconsentkit_ffi.so or .dylib in $libdir after the build" >&2; exit 1; }
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
generate_swift_bindings "$lib" "$out"
# Rewrite only on change, so SwiftPM does not rebuild the bindings every run.
cmp -s "$out/ConsentKitFFI.swift" "$here/Sources/ConsentKitFFI/ConsentKitFFI.swift" || cp "$out/ConsentKitFFI.swift" "$here/Sources/ConsentKitFFI/"
cmp -s "$out/ConsentKitFFIC.h" "$here/Sources/ConsentKitFFIC/ConsentKitFFIC.h" || cp "$out/ConsentKitFFIC.h" "$here/Sources/ConsentKitFFIC/"
echo "generated the Swift bindings from $lib" >&2
echo "$libdir"
