#!/usr/bin/env bash
# On a Mac with Xcode: builds ConsentKitFFI.xcframework for iOS devices and simulators
# (arm64 device, arm64 + x86_64 simulator), from release static libraries, with the generated
# header and module map. Package.swift links it automatically once it exists.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
command -v xcodebuild >/dev/null || { echo "build-xcframework.sh needs macOS with Xcode (xcodebuild)"; exit 1; }
cd "$root"
targets=(aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios)
rustup target add "${targets[@]}"
for t in "${targets[@]}"; do
  cargo rustc --release -p consentkit-ffi --lib --crate-type staticlib --target "$t"
done
# Bindings come from an unstripped host build (library mode reads its metadata).
cargo rustc --release -p consentkit-ffi --lib --crate-type cdylib
gen="$(mktemp -d)"
cargo run --quiet -p uniffi-bindgen -- generate "$root/target/release/libconsentkit_ffi.dylib" --language swift --out-dir "$gen"
headers="$(mktemp -d)"
cp "$gen/ConsentKitFFIC.h" "$headers/"
cp "$gen/ConsentKitFFIC.modulemap" "$headers/module.modulemap"
cp "$gen/ConsentKitFFI.swift" "$here/Sources/ConsentKitFFI/ConsentKitFFI.swift"
sim="$root/target/ios-sim-universal/libconsentkit_ffi.a"
mkdir -p "$(dirname "$sim")"
lipo -create "$root/target/aarch64-apple-ios-sim/release/libconsentkit_ffi.a" "$root/target/x86_64-apple-ios/release/libconsentkit_ffi.a" -output "$sim"
rm -rf "$here/ConsentKitFFI.xcframework"
xcodebuild -create-xcframework \
  -library "$root/target/aarch64-apple-ios/release/libconsentkit_ffi.a" -headers "$headers" \
  -library "$sim" -headers "$headers" \
  -output "$here/ConsentKitFFI.xcframework"
echo "built $here/ConsentKitFFI.xcframework"
