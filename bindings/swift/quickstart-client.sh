#!/usr/bin/env bash
# The README's Swift quick start as a user pastes it (#16 item 1): writes a separate client package
# (target/swift-quickstart-client, kept between runs so rebuilds are incremental) that depends on
# bindings/swift by path, pastes the block between <!-- quick-start-swift:begin/end --> into a file
# whose only import is `import ConsentKit`, builds it with `swift build` and the same link flags as
# run-tests.sh (no unsafeFlags in either manifest), and runs it: the block must send analytics once,
# deny after the withdrawal and close its manager. A compiler warning in the client fails it too.
#   quickstart-client.sh LIBDIR     LIBDIR: the directory of the host libconsentkit_ffi (generate.sh prints it)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/common.sh"
swift="${SWIFT:-swift}"
libdir="${1:?usage: $0 LIBDIR}"
fail() { echo "Swift quick-start client FAILED: $*" >&2; exit 1; }

block="$(awk '/<!-- quick-start-swift:end -->/{on=0} on && !/^```/{print} /<!-- quick-start-swift:begin -->/{on=1}' "$root/README.md")"
lines="$(printf '%s\n' "$block" | grep -c .)" || true
[ "$lines" -ge 5 ] && [ "$lines" -le 12 ] || fail "README.md's Swift quick start (between <!-- quick-start-swift:begin/end -->) has $lines lines, not about ten"

client="$target_dir/swift-quickstart-client"
mkdir -p "$client/Sources/QuickStartClient"
cat > "$client/Package.swift" <<MANIFEST
// swift-tools-version:6.0
// Written by bindings/swift/quickstart-client.sh: an app's package, depending on ConsentKit by path.
import PackageDescription

let package = Package(
    name: "QuickStartClient",
    platforms: [.iOS(.v15), .macOS(.v12)],
    dependencies: [.package(path: "$here")],
    targets: [
        .executableTarget(name: "QuickStartClient", dependencies: [.product(name: "ConsentKit", package: "swift")]),
    ]
)
MANIFEST
# Only rewrite on change, so the build stays incremental.
write() { local file="$1" text; text="$(cat)"; [ "$(cat "$file" 2>/dev/null)" = "$text" ] || printf '%s\n' "$text" > "$file"; }
{
  echo "import ConsentKit"
  echo
  echo "/// The README's Swift quick start, pasted verbatim by quickstart-client.sh. The names it takes"
  echo "/// from the app (a directory, a user id, the app's analytics call) are the parameters."
  echo "func quickStart(_ app: AppContext, sendAnalytics: () -> Void) throws {"
  echo "    let applicationSupport = app.applicationSupport"
  echo "    let userId = app.userId"
  printf '%s\n' "$block" | sed 's/^/    /'
  echo "}"
} | write "$client/Sources/QuickStartClient/QuickStart.swift"
write "$client/Sources/QuickStartClient/main.swift" <<'MAIN'
import ConsentKit
import Foundation

/// What an app has at hand where it pastes the quick start.
struct AppContext {
    let applicationSupport: URL
    let userId: String
}

let dir = FileManager.default.temporaryDirectory.appendingPathComponent("consentkit-quickstart-\(UUID().uuidString)")
try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(at: dir) }
var sent = 0
try quickStart(AppContext(applicationSupport: dir, userId: "alice")) { sent += 1 }
guard sent == 1 else { fatalError("the quick start sent analytics \(sent) times, not once") }
// The quick start closed its manager: the file opens again (and the module-qualified name resolves).
let again = try ConsentKit.ConsentManager.openStrict(path: dir.appendingPathComponent("consent.db").path)
guard try !again.isAllowed("alice", feature: .usageAnalytics) else { fatalError("allowed after the withdrawal") }
again.close()
print("quick-start client ran: analytics sent once, denied after the withdrawal, manager closed")
MAIN

for m in "$client/Package.swift" "$here/Package.swift"; do
  if grep -n "unsafeFlags" "$m" >&2; then fail "$m has unsafeFlags"; fi
done
link=(-Xlinker -L"$libdir" -Xlinker -rpath -Xlinker "$libdir")
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
echo "== swift build in $client (a client of bindings/swift by path, the README's quick start pasted)"
(cd "$client" && "$swift" build "${link[@]}" 2>&1) | tee "$log" || fail "the client does not build (the README block above does not compile as pasted)"
if grep -E '^/.*\.swift:[0-9]+:[0-9]+: warning:' "$log" | grep -v '/Sources/ConsentKitFFI/ConsentKitFFI.swift:' >&2; then
  fail "the compiler warned about the code above"
fi
bin="$(cd "$client" && "$swift" build "${link[@]}" --show-bin-path)"
"$bin/QuickStartClient" || fail "the client built but its run failed"
