#!/usr/bin/env bash
# Builds and tests the Swift package (bindings/swift) and the iOS sample's logic (ios-sample)
# against the host Rust library: generates the bindings, then `swift test` with the library's
# directory passed as a link and run path (-Xlinker -L<dir> -Xlinker -rpath -Xlinker <dir>), so no
# unsafe flags live in the manifests and no LD_LIBRARY_PATH is needed.
# Then, as clients see the package (#16 items 1, 3): the README's quick start pasted into a separate
# client package and run (quickstart-client.sh), and the release manifest (test-release.sh).
# Fails when there is no Swift toolchain: a suite that cannot run is a failure, not a skip.
# SWIFT names the toolchain's `swift` (default: the one on PATH).
# Fails too when the compiler warns about our code (the generated bindings excepted).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
swift="${SWIFT:-swift}"
if ! command -v "$swift" >/dev/null 2>&1; then
  echo "Swift tests FAILED to start: no Swift toolchain ('$swift' is not on PATH)." >&2
  echo "Install one (swift.org's toolchain for Linux, or Xcode on a Mac), or run 'make test SWIFT=skip' to skip the Swift suite on purpose." >&2
  exit 1
fi
started=$(date +%s)
# The packaging tests type-check a probe against the XCFramework headers with this compiler.
CONSENTKIT_SWIFTC="$(dirname "$(command -v "$swift")")/swiftc"
export CONSENTKIT_SWIFTC
libdir="$("$here/generate.sh")"
# The support tool, the second process of TwoProcessTests (a withdrawal committed by another process).
(cd "$here/../.." && cargo build --quiet -p consentkit-cli --bin consentkit) >&2
CONSENTKIT_CLI="$libdir/consentkit" # the same target directory as the cdylib
export CONSENTKIT_CLI
link=(-Xlinker -L"$libdir" -Xlinker -rpath -Xlinker "$libdir")
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
summary=()
root="$(cd "$here/../.." && pwd)"
# A package that depends on bindings/swift by path keeps that dependency's file list in its own
# .build: a source file added to or removed from bindings/swift since (a pull) then fails its build
# ("cannot find 'X' in scope"). Its .build is cleared when that list changed.
sources_list() { (cd "$here" && find Package.swift Sources -type f | LC_ALL=C sort | cksum); }
for name in bindings/swift ios-sample; do
  package="$root/$name"
  echo "== swift test in $package"
  if [ "$name" != bindings/swift ]; then
    stamp="$package/.build/consentkit-sources.cksum"
    if [ -d "$package/.build" ] && [ "$(cat "$stamp" 2>/dev/null)" != "$(sources_list)" ]; then
      echo "   (bindings/swift gained or lost a source file since $name was last built: clearing its .build)"
      rm -rf "$package/.build"
    fi
    mkdir -p "$package/.build" && sources_list > "$stamp"
  fi
  # XCTest only: the suites are XCTest, and Swift Testing would close with "0 tests" lines.
  (cd "$package" && "$swift" test --disable-swift-testing "${link[@]}" 2>&1) | tee "$log"
  # Warnings in our code fail the run; the generated bindings build in their own Swift 5 target.
  if grep -E '^/.*\.swift:[0-9]+:[0-9]+: warning:' "$log" | grep -v '/Sources/ConsentKitFFI/ConsentKitFFI.swift:' >&2; then
    echo "Swift tests FAILED: the compiler warned about the code above (warnings are errors here)" >&2
    exit 1
  fi
  count="$(sed -n "s/^Test Suite 'All tests' passed at .*//p; s/^	 Executed \([0-9]*\) tests\{0,1\}, with 0 failures.*/\1/p" "$log" | tail -1)"
  summary+=("${count:-?} in $name")
  total=$(( ${total:-0} + ${count:-0} ))
done
"$here/quickstart-client.sh" "$libdir"
summary+=("the README quick start as a client package")
"$here/test-release.sh"
summary+=("the release manifest")
echo "Swift XCTests: $(IFS=,; echo "${summary[*]}" | sed "s/,/, /g") ($(( $(date +%s) - started )) s, including the Rust library build)"
echo "Swift: $total passed, 0 failed"
