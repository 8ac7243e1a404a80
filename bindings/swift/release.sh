#!/usr/bin/env bash
# Writes the Swift release manifest: the `Package.swift` at the repository root for the release tag
# `vVERSION`, which is what SwiftPM reads when an app adds https://github.com/consentkit/consentkit
# by URL and version. Its Rust library is `.binaryTarget(name: "ConsentKitFFIC", url:, checksum:)`:
# the XCFramework zip at BASE_URL/vVERSION/ConsentKitFFI.xcframework.zip, checked by SwiftPM against
# the checksum written here. No unsafe flags, no local paths outside the repository.
#
#   release.sh VERSION BASE_URL                 on a Mac with Xcode: builds the zip with
#                                               build-xcframework.sh (which also regenerates the
#                                               Swift bindings to match it), then writes the manifest
#   release.sh VERSION BASE_URL --zip PATH      any machine: takes an existing zip (ConsentKitFFI.xcframework/
#                                               at its root, as SwiftPM needs; built on a Mac
#                                               together with the bindings in Sources/ConsentKitFFI)
#   ... --out FILE                              writes the manifest to FILE instead of <root>/Package.swift
#                                               (the tests do; target paths stay relative to the
#                                               repository root, bindings/swift/Sources/...)
#
# VERSION must be the workspace's version (Cargo.toml [workspace.package]), the one Maven, the FFI's
# consentkit_version() and CHANGELOG.md carry; BASE_URL must be https (SwiftPM downloads binary
# targets only over https). Prints what to upload and what to commit and tag.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
usage() { echo "usage: $0 VERSION BASE_URL [--zip PATH] [--out FILE]" >&2; exit 2; }
[ $# -ge 2 ] || usage
version="$1" base="${2%/}"
shift 2
zip="" out="$root/Package.swift"
while [ $# -gt 0 ]; do
  case "$1" in
    --zip) [ $# -ge 2 ] || usage; zip="$2"; shift 2 ;;
    --out) [ $# -ge 2 ] || usage; out="$2"; shift 2 ;;
    *) echo "unknown argument '$1'" >&2; usage ;;
  esac
done

cargo_version="$(awk '/^\[/{t=($0=="[workspace.package]")} t && /^version *=/{gsub(/.*= *"|".*/,""); print; exit}' "$root/Cargo.toml")"
[ -n "$cargo_version" ] || { echo "release: no version in [workspace.package] of $root/Cargo.toml" >&2; exit 1; }
if [ "$version" != "$cargo_version" ]; then
  echo "release: version '$version' is not the workspace's version '$cargo_version' (Cargo.toml [workspace.package]); bump that first, so Cargo, Maven, the FFI and SwiftPM agree" >&2
  exit 1
fi
case "$base" in
  https://?*) ;;
  *) echo "release: BASE_URL '$base' is not an https URL (SwiftPM downloads binary targets only over https)" >&2; exit 1 ;;
esac

if [ -z "$zip" ]; then
  command -v xcodebuild > /dev/null || {
    echo "release: building ConsentKitFFI.xcframework.zip needs macOS with Xcode (xcodebuild), which this machine lacks; build the zip on a Mac (make xcframework), then pass it here: $0 $version $base --zip PATH" >&2
    exit 1
  }
  "$here/build-xcframework.sh"
  zip="$here/ConsentKitFFI.xcframework.zip"
fi
[ -f "$zip" ] || { echo "release: no zip at '$zip'" >&2; exit 1; }
case "$zip" in *.zip) ;; *) echo "release: '$zip' is not a .zip (SwiftPM accepts only zip archives for binary targets)" >&2; exit 1 ;; esac
# SwiftPM wants the artifact at the zip's root (build-xcframework.sh zips with --keepParent).
if ! unzip -Z1 "$zip" 2>/dev/null | grep -q '^ConsentKitFFI\.xcframework/Info\.plist$'; then
  echo "release: '$zip' has no ConsentKitFFI.xcframework/Info.plist at its root, which SwiftPM needs of a binary target's zip" >&2
  exit 1
fi
bindings="$here/Sources/ConsentKitFFI/ConsentKitFFI.swift"
[ -f "$bindings" ] || { echo "release: no generated bindings at $bindings (build-xcframework.sh writes them with the zip)" >&2; exit 1; }

checksum="$(cd "$(dirname "$zip")" && swift package compute-checksum "$(basename "$zip")")"
[[ "$checksum" =~ ^[0-9a-f]{64}$ ]] || { echo "release: swift package compute-checksum answered '$checksum', not a checksum" >&2; exit 1; }
url="$base/v$version/ConsentKitFFI.xcframework.zip"

mkdir -p "$(dirname "$out")"
cat > "$out" <<MANIFEST
// swift-tools-version:6.0
// ConsentKit $version for Swift: the release manifest of tag v$version, written by
// bindings/swift/release.sh (do not edit by hand; branches build bindings/swift/Package.swift).
// The Rust library is a prebuilt XCFramework (iOS device, iOS simulator, macOS) that SwiftPM
// downloads and checks against the checksum. No unsafe flags, so apps add this package by URL.
import PackageDescription

let package = Package(
    name: "ConsentKit",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [.library(name: "ConsentKit", targets: ["ConsentKit"])],
    targets: [
        .binaryTarget(
            name: "ConsentKitFFIC",
            url: "$url",
            checksum: "$checksum"
        ),
        // The generated Swift (committed on the release tag only), in the Swift 5 language mode.
        .target(
            name: "ConsentKitFFI",
            dependencies: ["ConsentKitFFIC"],
            path: "bindings/swift/Sources/ConsentKitFFI",
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
        // The API apps use: Swift 6 language mode; it calls the C gate (ConsentKitGate.h) directly.
        .target(
            name: "ConsentKit",
            dependencies: ["ConsentKitFFI", "ConsentKitFFIC"],
            path: "bindings/swift/Sources/ConsentKit",
            resources: [.copy("PrivacyInfo.xcprivacy")]
        ),
    ]
)
MANIFEST

cat <<DONE
wrote the release manifest $out for ConsentKit $version
  binary target: $url
  checksum:      $checksum
to publish:
  1. upload $zip to $url
  2. on the release commit: git add -f Package.swift bindings/swift/Sources/ConsentKitFFI/ConsentKitFFI.swift
     (the generated bindings, ignored on branches, must match the zip), commit, git tag v$version, push the tag
  3. apps then add https://github.com/consentkit/consentkit, "Up to Next Major Version" from $version
DONE
