// The Swift rows of BENCHMARKS.md, each against a reference measured in the same process,
// interleaved round by round (ours, reference, ours, ...); each cell is the median of the rounds.
// Prints the Markdown section on stdout. Not a test: no test asserts a time.
@_spi(Testing) import ConsentKit  // checkUncached: what a cache miss does
import ConsentKitFFI  // the generated uniffi bindings: the uncached call and the no-argument floor
import ConsentKitFFIC  // the C gate's no-argument entry: the C call floor
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
guard try consent.isAllowed(subject, feature: .contactLookup), try consent.checkUncached(subject, feature: .contactLookup).allowed,
    try raw.check(subject: subject, feature: "contact_lookup", scope: nil).allowed
else {
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
// two subjects taking turns: each hit hashes its subject (the last-put fast path misses every other time)
let other = "bob"
try consent.grant(other, category: .deviceContacts)
let pair: [String: CheckResult] = [subject: map[subject]!, other: map[subject]!]
var turn = false
let (alternating, pairLookup) = try interleaved(rounds: 9, iterations: 1_000_000,
    ours: { turn.toggle(); return try consent.isAllowed(turn ? subject : other, feature: .contactLookup) },
    reference: { turn.toggle(); return pair[turn ? subject : other]!.allowed })
rows.append(row("Swift cached `isAllowed`, two subjects taking turns (allowed)", ns(alternating),
    "Swift `[String: CheckResult]` lookup, 2 entries taking turns \(ns(pairLookup))", alternating / pairLookup, "<= 2x"))

// 2. the uncached check (what a cache miss does: the C gate) and the same check through the
// uniffi Swift bindings, each against the cheapest uniffi call; and the cheapest C call
let (gated, gateFloor) = try interleaved(rounds: 9, iterations: 200_000,
    ours: { try consent.checkUncached(subject, feature: .contactLookup).allowed }, reference: { try !raw.isClosed() })
rows.append(row("Swift uncached check through the C gate (what a cache miss costs)", ns(gated),
    "a no-argument uniffi call (`isClosed()`) \(ns(gateFloor))", gated / gateFloor, "<= 2x that floor"))
let (uncached, floor) = try interleaved(rounds: 9, iterations: 50_000,
    ours: { try raw.check(subject: subject, feature: "contact_lookup", scope: nil).allowed }, reference: { try !raw.isClosed() })
rows.append(row("Swift uncached check through uniffi (the fallback for what the C gate cannot carry)", ns(uncached),
    "a no-argument uniffi call (`isClosed()`) \(ns(floor))", uncached / floor, "<= 2x that floor"))
let (cCall, _) = interleaved(rounds: 9, iterations: 1_000_000,
    ours: { consentkit_gate_layout() == CONSENTKIT_GATE_LAYOUT }, reference: { map[subject]!.allowed })
rows.append(row("a no-argument C call (`consentkit_gate_layout()`), the C gate's crossing", ns(cCall),
    "a no-argument uniffi call (`isClosed()`) \(ns(floor))", cCall / floor, "(part of the floor)"))

consent.close()
try raw.shutdown()
let seconds = (DispatchTime.now().uptimeNanoseconds - started) / 1_000_000_000
print("""
### Swift (`bindings/swift/Bench`, release build)

Swift package built with `swift build -c release` against the release cdylib. Ours and the reference run in the same process, interleaved round by round; each cell is the median of the rounds. Took \(seconds) s.

| figure | ours | reference, same run | ratio | goal | command |
|---|---|---|---|---|---|
\(rows.joined(separator: "\n"))

Where the time goes: a cached `isAllowed` takes one pthread read lock, finds the feature in a short list, compares the subject with the one last put for that feature (an app's signed-in user) and only otherwise hashes it (ids compare and hash on their UTF-8 bytes, as the core's do, not with `String ==`, which normalizes; the same String value passed again compares as two words), copies nothing out but the Bool, and reads one clock (`DispatchTime.now()`: the bound and the expiry are one monotonic deadline), which is most of what is left (profiled with `perf`: about four fifths of a repeated hit here). A cache miss crosses once through the C gate (`consentkit_gate_check`, `bindings/src/c_gate.rs`): the strings go as pointer and length, the answer comes back in stack buffers (with how long it stays proven current, which bounds the entry), and Swift builds the `CheckResult`; the rest of that row is the core's own check (`make bench-rust`, the Rust `check` row), which no crossing removes: the C crossing itself is the no-argument C call row. The uniffi path, kept as the fallback for errors and for answers with more reasons than the gate's buffers hold, copies each String argument into a `RustBuffer` with its own call into Rust and decodes the answer's buffer through Foundation `Data`; the no-argument uniffi floor is a direct C call plus uniffi's call-status handling.

Load average (1 min) at the end of the run: \((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").first.map(String.init) ?? "n/a"); the machine is shared, so read the ratios.
""")
if sink == 42 { print("") }  // reads the sink
