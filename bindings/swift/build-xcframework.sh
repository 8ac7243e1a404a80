#!/usr/bin/env bash
# Builds ConsentKitFFI.xcframework from release static libraries, on a Mac with Xcode:
#   iOS device (arm64), iOS simulator (arm64 + x86_64, lipo'ed), macOS (arm64 + x86_64, lipo'ed),
# each with the generated C header and our own module map in Headers/ConsentKitFFIC/ (a folder of
# its own, so it does not collide with another uniffi SDK's module.modulemap in the app's shared
# include directory). Package.swift links the XCFramework as a binary target once it exists. Also
# writes ConsentKitFFI.xcframework.zip and prints its checksum, for a release's
# `.binaryTarget(name: "ConsentKitFFIC", url: ..., checksum: ...)`.
#
#   build-xcframework.sh                       the XCFramework (macOS with Xcode and rustup)
#   build-xcframework.sh --headers-only DIR    only the Headers layout, from the header that
#                                              generate.sh wrote (any machine; the tests use it)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

# write_headers HEADER DIR: DIR/ConsentKitFFIC/{ConsentKitFFIC.h,ConsentKitGate.h,module.modulemap}
# (uniffi's generated header and our hand-written C gate, Sources/ConsentKitFFIC/ConsentKitGate.h). A plain
# `module` (a -library XCFramework, not a framework), no `link` (Xcode links the slice's
# library), and none of the `use` lines of uniffi's generated module map.
write_headers() {
  local header="$1" dir="$2/ConsentKitFFIC"
  mkdir -p "$dir"
  cp "$header" "$dir/ConsentKitFFIC.h"
  cp "$here/Sources/ConsentKitFFIC/ConsentKitGate.h" "$dir/ConsentKitGate.h"
  cat > "$dir/module.modulemap" <<'MODULEMAP'
module ConsentKitFFIC {
    header "ConsentKitFFIC.h"
    header "ConsentKitGate.h"
    export *
}
MODULEMAP
}

if [ "${1:-}" = "--headers-only" ]; then
  [ -n "${2:-}" ] || { echo "usage: $0 --headers-only DIR" >&2; exit 2; }
  header="$here/Sources/ConsentKitFFIC/ConsentKitFFIC.h"
  [ -f "$header" ] || { echo "no generated header at $header: run generate.sh first" >&2; exit 1; }
  write_headers "$header" "$2"
  exit 0
fi

command -v xcodebuild >/dev/null || { echo "build-xcframework.sh needs macOS with Xcode (xcodebuild); on other machines only --headers-only works" >&2; exit 1; }
command -v rustup >/dev/null || { echo "build-xcframework.sh needs rustup to add the Apple targets" >&2; exit 1; }
source "$here/common.sh"
cd "$root"

ios=(aarch64-apple-ios)
simulator=(aarch64-apple-ios-sim x86_64-apple-ios)
macos=(aarch64-apple-darwin x86_64-apple-darwin)
rustup target add "${ios[@]}" "${simulator[@]}" "${macos[@]}"
for t in "${ios[@]}" "${simulator[@]}" "${macos[@]}"; do
  cargo rustc --release -p consentkit-ffi --lib --crate-type staticlib --target "$t"
done

# The bindings come from an unstripped host build (library mode reads the metadata in it). They
# also replace the package's copies, so the Swift sources match the libraries.
cargo rustc --release -p consentkit-ffi --lib --crate-type cdylib
gen="$(mktemp -d)"
headers="$(mktemp -d)"
trap 'rm -rf "$gen" "$headers"' EXIT
generate_swift_bindings "$target_dir/release/libconsentkit_ffi.dylib" "$gen"
cp "$gen/ConsentKitFFI.swift" "$here/Sources/ConsentKitFFI/ConsentKitFFI.swift"
cp "$gen/ConsentKitFFIC.h" "$here/Sources/ConsentKitFFIC/ConsentKitFFIC.h"
write_headers "$gen/ConsentKitFFIC.h" "$headers"

# One library per platform variant: lipo the architectures of each.
universal="$target_dir/apple-universal"
lib_of() { echo "$target_dir/$1/release/libconsentkit_ffi.a"; }
mkdir -p "$universal/ios-simulator" "$universal/macos"
lipo -create "$(lib_of aarch64-apple-ios-sim)" "$(lib_of x86_64-apple-ios)" -output "$universal/ios-simulator/libconsentkit_ffi.a"
lipo -create "$(lib_of aarch64-apple-darwin)" "$(lib_of x86_64-apple-darwin)" -output "$universal/macos/libconsentkit_ffi.a"

out="$here/ConsentKitFFI.xcframework"
rm -rf "$out" "$out.zip"
xcodebuild -create-xcframework \
  -library "$(lib_of aarch64-apple-ios)" -headers "$headers" \
  -library "$universal/ios-simulator/libconsentkit_ffi.a" -headers "$headers" \
  -library "$universal/macos/libconsentkit_ffi.a" -headers "$headers" \
  -output "$out"

(cd "$here" && ditto -c -k --sequesterRsrc --keepParent ConsentKitFFI.xcframework ConsentKitFFI.xcframework.zip)
echo "built $out (iOS arm64; iOS simulator arm64 + x86_64; macOS arm64 + x86_64)"
echo "release zip: $out.zip, checksum $(cd "$here" && swift package compute-checksum ConsentKitFFI.xcframework.zip)"
