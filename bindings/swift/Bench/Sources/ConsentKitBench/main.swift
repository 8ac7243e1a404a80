// The Swift rows of BENCHMARKS.md, each against a reference measured in the same process,
// interleaved round by round (ours, reference, ours, ...); each cell is the median of the rounds.
// Prints the Markdown section on stdout. Not a test: no test asserts a time.
import ConsentKit
import ConsentKitFFI  // the generated uniffi bindings: the uncached call and the no-argument floor
import Foundation

/// Keeps the optimizer from dropping a measured call.
nonisolated(unsafe) var sink = 0

/// Nanoseconds per call of `op`, timed over `iterations` calls.
@inline(__always)
func perCall(_ iterations: Int, _ op: () throws -> Bool) rethrows -> Double {
    var hits = 0
    let t0 = DispatchTime.now().uptimeNanoseconds
    for _ in 0..<iterations where try op() { hits += 1 }
    let took = DispatchTime.now().uptimeNanoseconds - t0
    sink &+= hits
    return Double(took) / Double(iterations)
}

/// Medians of `rounds` rounds of `ours` and `reference`, alternating, after a warm-up of each.
func interleaved(rounds: Int, iterations: Int, ours: () throws -> Bool, reference: () throws -> Bool) rethrows -> (Double, Double) {
    _ = try perCall(iterations, ours)
    _ = try perCall(iterations, reference)
    var a: [Double] = []
    var b: [Double] = []
    for _ in 0..<rounds {
        a.append(try perCall(iterations, ours))
        b.append(try perCall(iterations, reference))
    }
    return (a.sorted()[rounds / 2], b.sorted()[rounds / 2])
}

func ns(_ nanos: Double) -> String { nanos < 100 ? String(format: "%.1f ns", nanos) : String(format: "%.0f ns", nanos) }
func row(_ figure: String, _ ours: String, _ reference: String, _ ratio: Double, _ goal: String) -> String {
    "| \(figure) | \(ours) | \(reference) | \(String(format: "%.2fx", ratio)) | \(goal) | `make bench-swift` |"
}

let started = DispatchTime.now().uptimeNanoseconds
let dir = FileManager.default.temporaryDirectory.appendingPathComponent("consentkit-bench-\(UUID().uuidString)")
try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(at: dir) }

let subject = "alice"
let consent = try ConsentManager.openStrict(path: dir.appendingPathComponent("bench.db").path)
let raw = try RustConsentKit.open(path: dir.appendingPathComponent("raw.db").path, policyJson: nil)
try consent.grant(subject, category: .deviceContacts)
_ = try raw.grant(subject: subject, category: "device_contacts", scope: nil, source: .settings)
try consent.reportOSPermission(.contacts, state: .granted)
_ = try raw.setOsPermission(permission: "contacts", state: .granted)
guard try consent.isAllowed(subject, feature: .contactLookup), try raw.check(subject: subject, feature: "contact_lookup", scope: nil).allowed else {
    fatalError("the bench's check must be an allowed one")
}
var rows: [String] = []

// 1. the cached gate against a Dictionary lookup, and the clock read a cached check makes
let map: [String: CheckResult] = [subject: try consent.check(subject, feature: .contactLookup)]
let (cached, dictionary) = try interleaved(rounds: 9, iterations: 1_000_000,
    ours: { try consent.isAllowed(subject, feature: .contactLookup) }, reference: { map[subject]!.allowed })
let (clock, _) = interleaved(rounds: 9, iterations: 1_000_000,
    ours: { DispatchTime.now().uptimeNanoseconds & 1 == 0 }, reference: { map[subject]!.allowed })
rows.append(row("Swift cached `isAllowed` (allowed, repeated)", ns(cached), "Swift `[String: CheckResult]` lookup, 1 entry \(ns(dictionary))", cached / dictionary, "<= 2x"))
rows.append(row("`DispatchTime.now()`, the clock read a cached check makes (cross-process bound)", ns(clock),
    "Swift `[String: CheckResult]` lookup, 1 entry \(ns(dictionary))", clock / dictionary, "(part of the floor)"))

// 2. the uncached check through the uniffi Swift bindings against the cheapest uniffi call
let (uncached, floor) = try interleaved(rounds: 9, iterations: 50_000,
    ours: { try raw.check(subject: subject, feature: "contact_lookup", scope: nil).allowed }, reference: { try !raw.isClosed() })
rows.append(row("Swift uncached check through uniffi (what a cache miss costs)", ns(uncached),
    "a no-argument uniffi call (`isClosed()`) \(ns(floor))", uncached / floor, "<= 2x that floor"))

consent.close()
try raw.shutdown()
let seconds = (DispatchTime.now().uptimeNanoseconds - started) / 1_000_000_000
print("""
### Swift (`bindings/swift/Bench`, release build)

Swift package built with `swift build -c release` against the release cdylib. Ours and the reference run in the same process, interleaved round by round; each cell is the median of the rounds. Took \(seconds) s.

| figure | ours | reference, same run | ratio | goal | command |
|---|---|---|---|---|---|
\(rows.joined(separator: "\n"))

Where the time goes: a cached hit takes two pthread read locks (the generation counter, the cache), hashes the three strings of its key (Swift strings do not cache their hash), and reads one clock (`DispatchTime.now()`: the bound and the expiry are one monotonic deadline). An uncached call through the uniffi Swift bindings copies each String argument into a `RustBuffer` with its own call into Rust and decodes the answer's buffer; the no-argument floor is a direct C call.

Load average (1 min) at the end of the run: \((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").first.map(String.init) ?? "n/a"); the machine is shared, so read the ratios.
""")
if sink == 42 { print("") }  // reads the sink
