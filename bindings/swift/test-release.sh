#!/usr/bin/env bash
# Tests release.sh without a Mac (#16 item 3): given a small dummy zip (--zip), the manifest it
# writes parses (`swift package dump-package`, over a copy of the sources laid out as on the release
# tag), its binary target carries BASE_URL/vVERSION/ConsentKitFFI.xcframework.zip and the zip's
# SHA-256 (computed here independently of SwiftPM), it declares what bindings/swift/Package.swift
# declares (platforms, product, targets), and no manifest of ours has unsafeFlags. Also: a version
# other than Cargo's, a plain-http URL and a zip without ConsentKitFFI.xcframework/ at its root and a missing zip
# are refused and write nothing.
# Run by run-tests.sh; needs swift, python3 and zip. Prints one summary line.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
swift="${SWIFT:-swift}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() { echo "release test FAILED: $*" >&2; exit 1; }

version="$(awk '/^\[/{t=($0=="[workspace.package]")} t && /^version *=/{gsub(/.*= *"|".*/,""); print; exit}' "$root/Cargo.toml")"
[ -n "$version" ] || fail "no version in Cargo.toml [workspace.package]"
base="https://downloads.example.com/consentkit/swift"

# A dummy zip: release.sh only checksums it.
mkdir -p "$work/zip/ConsentKitFFI.xcframework"
echo "not a real framework: $RANDOM" > "$work/zip/ConsentKitFFI.xcframework/Info.plist"
(cd "$work/zip" && zip -qr ../ConsentKitFFI.xcframework.zip ConsentKitFFI.xcframework)
zip="$work/ConsentKitFFI.xcframework.zip"
expected_sum="$(python3 -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$zip")"

# The release tag's layout: Package.swift at the root, the sources under bindings/swift/Sources.
pkg="$work/tag"
mkdir -p "$pkg/bindings/swift/Sources"
cp -R "$here/Sources/ConsentKit" "$here/Sources/ConsentKitFFI" "$pkg/bindings/swift/Sources/"
PATH="$(dirname "$(command -v "$swift")"):$PATH" "$here/release.sh" "$version" "$base/" --zip "$zip" --out "$pkg/Package.swift" > "$work/release.out" \
  || { cat "$work/release.out" >&2; fail "release.sh $version $base --zip ... failed"; }
manifest="$pkg/Package.swift"
[ -f "$manifest" ] || fail "release.sh wrote no manifest"
grep -q "ConsentKit $version" "$manifest" || fail "the manifest does not name version $version"

(cd "$pkg" && "$swift" package dump-package) > "$work/release.json" 2> "$work/dump.err" \
  || { cat "$work/dump.err" >&2; fail "the release manifest does not parse (swift package dump-package)"; }
(cd "$here" && "$swift" package dump-package) > "$work/dev.json" 2> "$work/dump.err" \
  || { cat "$work/dump.err" >&2; fail "bindings/swift/Package.swift does not parse"; }

python3 - "$work/release.json" "$work/dev.json" "$base/v$version/ConsentKitFFI.xcframework.zip" "$expected_sum" <<'PY'
import json, sys
release, dev = (json.load(open(p)) for p in sys.argv[1:3])
url, checksum = sys.argv[3:5]
def fail(msg): sys.exit("release test FAILED: " + msg)
targets = {t["name"]: t for t in release["targets"]}
binary = targets.get("ConsentKitFFIC") or fail("no ConsentKitFFIC target")
if binary["type"] != "binary": fail(f"ConsentKitFFIC is a {binary['type']} target, not a binary target")
if binary.get("url") != url: fail(f"binary target url {binary.get('url')!r}, expected {url!r}")
if binary.get("checksum") != checksum: fail(f"binary target checksum {binary.get('checksum')!r}, expected the zip's SHA-256 {checksum!r}")
if binary.get("path"): fail("the binary target has a local path")
for key in ("platforms", "products"):
    if release[key] != dev[key]: fail(f"{key} differ from bindings/swift/Package.swift: {release[key]} vs {dev[key]}")
dev_targets = {t["name"]: t for t in dev["targets"] if t["type"] != "test"}
if set(targets) != set(dev_targets): fail(f"targets {sorted(targets)} vs bindings/swift's {sorted(dev_targets)}")
for name in ("ConsentKit", "ConsentKitFFI"):
    for key in ("dependencies", "settings", "resources"):
        if targets[name].get(key) != dev_targets[name].get(key): fail(f"target {name}: {key} differ from bindings/swift/Package.swift")
PY

for m in "$manifest" "$here/Package.swift" "$root/ios-sample/Package.swift"; do
  if grep -n "unsafeFlags" "$m" >&2; then fail "$m has unsafeFlags (SwiftPM refuses such a package added by URL)"; fi
done

# Refusals: each exits non-zero and leaves no manifest.
refused=0
expect_refusal() {
  local what="$1" bad="$2"; shift 2
  rm -f "$work/refused.swift"
  if PATH="$(dirname "$(command -v "$swift")"):$PATH" "$here/release.sh" "$@" --out "$work/refused.swift" > /dev/null 2> "$work/refusal.err"; then
    fail "release.sh accepted $what"
  fi
  [ ! -e "$work/refused.swift" ] || fail "release.sh wrote a manifest for $what"
  grep -qF -- "'$bad'" "$work/refusal.err" || fail "the refusal of $what does not name the bad value: $(cat "$work/refusal.err")"
  refused=$((refused + 1))
}
expect_refusal "another version than Cargo's" "9.$version" "9.$version" "$base" --zip "$zip"
expect_refusal "a plain-http URL" "http://downloads.example.com/x" "$version" "http://downloads.example.com/x" --zip "$zip"
(cd "$work/zip/ConsentKitFFI.xcframework" && zip -q ../../nested.zip Info.plist)
expect_refusal "a zip without the XCFramework at its root" "$work/nested.zip" "$version" "$base" --zip "$work/nested.zip"
expect_refusal "a missing zip" "$work/missing.zip" "$version" "$base" --zip "$work/missing.zip"
# Without Xcode (this Linux CI), release.sh without --zip says it cannot build the zip here and
# names the way that works here (--zip), and writes nothing.
if ! command -v xcodebuild > /dev/null; then
  rm -f "$work/refused.swift"
  if "$here/release.sh" "$version" "$base" --out "$work/refused.swift" > /dev/null 2> "$work/refusal.err"; then fail "release.sh without --zip succeeded without Xcode"; fi
  [ ! -e "$work/refused.swift" ] || fail "release.sh without --zip wrote a manifest without Xcode"
  grep -q -- "--zip PATH" "$work/refusal.err" || fail "release.sh without Xcode does not say to pass --zip PATH: $(cat "$work/refusal.err")"
  refused=$((refused + 1))
fi
echo "Swift release manifest: parses, url $base/v$version/ConsentKitFFI.xcframework.zip, checksum = the zip's SHA-256, same platforms/product/targets as bindings/swift, no unsafeFlags; $refused bad inputs refused"
