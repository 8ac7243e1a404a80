#!/usr/bin/env bash
# Builds the host cdylib and generates the Swift bindings into Sources/ (not committed).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
cargo rustc --quiet -p consentkit-ffi --lib --crate-type cdylib
lib="$root/target/debug/libconsentkit_ffi.so"
[ -f "$lib" ] || lib="$root/target/debug/libconsentkit_ffi.dylib"
out="$(mktemp -d)"
cargo run --quiet -p uniffi-bindgen -- generate "$lib" --language swift --no-format --out-dir "$out"
cp "$out/ConsentKitFFI.swift" "$here/Sources/ConsentKitFFI/ConsentKitFFI.swift"
cp "$out/ConsentKitFFIC.h" "$here/Sources/ConsentKitFFIC/ConsentKitFFIC.h"
rm -rf "$out"
echo "generated Swift bindings from $lib"
