import ConsentKitFFI
import Foundation

/// ConsentKit for Swift: records consent decisions durably and answers, fast and fail-closed,
/// whether a feature may run for a user now.
///
/// Thread-safe. Failures throw ``ConsentKitError`` cases whose message names the bad value;
/// after `close()` every call throws `.Closed`.
///
/// `check` does not cross into Rust on the hot path: decisions are cached in Swift and
/// invalidated synchronously by a commit listener before any write returns (a miss crosses once,
/// through the C gate, and through uniffi only for what the gate cannot answer), and an allowed
/// decision is never served past its `validUntil` (a grant's expiry; on the system clock the time
/// left is measured when the answer is made and then counted on the monotonic clock, so a wall
/// clock set forward past it is honoured within the cross-process bound). Once `withdraw` has
/// returned, no thread sees the feature allowed. A withdrawal by another process on the same file
/// (an app extension, the support tool) is honoured within the core's cross-process bound
/// (250 ms, `crossProcessBoundMillis()` of the FFI): a cached answer is served no longer than the
/// snapshot the core answered from stays proven current (`proofRemainingNanos()`, read before the
/// check), so never past the bound counted from the core's last proof. Subjects, features and
/// scope items are byte-exact ids, in the cache as in the core (no Unicode normalization).
///
/// Open one manager per database file per process and keep it for the app's lifetime; a second
/// manager on the same file is refused (or fails closed) while the first is open. `close()`
/// releases the file and ends every stream.
public final class ConsentManager: Sendable {
    /// Most decisions kept in the gate cache; past it the cache starts afresh.
    public static let maxCachedDecisions = 4096

    /// The database file.
    package let path: String

    private let kit: RustConsentKit
    /// The C gate a cache miss asks first (nil: the library has none of this layout; uniffi then).
    private let gate: CGate?
    private let now: @Sendable () throws -> Date
    /// True on a hand-set clock (tests): a cached hit then asks `now` against `validUntil` too.
    /// On the system clock a hit reads only the monotonic clock (the entry's deadline).
    private let handSetClock: Bool
    private let commits: ListenerHandle
    /// The gate cache (package: tests check its bound).
    package let cache: DecisionCache
    private let registrations = Registrations()
    /// Opens the same file again the same way (after a quarantine).
    private let reopen: @Sendable () throws -> ConsentManager

    private init(
        kit: RustConsentKit, path: String, now: @escaping @Sendable () throws -> Date, handSetClock: Bool = false,
        reopen: @escaping @Sendable () throws -> ConsentManager
    ) throws {
        self.kit = kit
        self.gate = CGate.register(kit)
        self.path = path
        self.now = now
        self.handSetClock = handSetClock
        self.reopen = reopen
        // Another process's commit reaches the cache through the commit listener (the core's probe
        // publishes it like a write); an entry older than the bound is asked again anyway.
        let cache = DecisionCache(
            freshNanos: try kit.crossProcessBoundMillis().multipliedReportingOverflow(by: 1_000_000).partialValue,
            generation: try kit.generation())
        self.cache = cache
        self.commits = try kit.onCommit(listener: CacheInvalidator(cache))
    }

    deinit {
        close()
    }

    /// Opens the store at `path` (created if missing) with the built-in UCAnywhere policy or
    /// `policyJSON`. Never fails for a damaged store: the gate then denies every consent-gated
    /// feature with `.storeUnavailable`, and ``unavailable`` says why.
    /// Throws `ConsentKitError.InvalidPolicy` for a malformed policy.
    public static func open(path: String, policyJSON: String? = nil) throws -> ConsentManager {
        try ConsentManager(
            kit: try RustConsentKit.openFailClosed(path: path, policyJson: policyJSON), path: path, now: { Date() },
            reopen: { try open(path: path, policyJSON: policyJSON) })
    }

    /// Like ``open(path:policyJSON:)``, but throws `.StoreUnavailable` or `.SchemaTooNew` instead
    /// of failing closed.
    public static func openStrict(path: String, policyJSON: String? = nil) throws -> ConsentManager {
        try ConsentManager(
            kit: try RustConsentKit.open(path: path, policyJson: policyJSON), path: path, now: { Date() },
            reopen: { try openStrict(path: path, policyJSON: policyJSON) })
    }

    /// Opens on a hand-set clock (tests and conformance scenarios; `@_spi(Testing) import ConsentKit`).
    @_spi(Testing) public static func open(path: String, policyJSON: String?, clock: TestClock) throws -> ConsentManager {
        try ConsentManager(
            kit: try RustConsentKit.openWithClock(path: path, policyJson: policyJSON, clock: clock), path: path,
            now: { try clock.now() }, handSetClock: true, reopen: { try open(path: path, policyJSON: policyJSON, clock: clock) })
    }

    /// Why the gate is closed: the reason a damaged store could not be opened (fail-closed mode);
    /// nil when healthy. Throws `.Closed` after `close()`.
    public var unavailable: String? {
        get throws { try kit.unavailable() }
    }

    /// Why the gate is closed, typed: the kind of problem and whether quarantining is the way to
    /// recover; nil when healthy. In memory. Throws `.Closed` after `close()`.
    public var unavailableReason: Unavailable? {
        get throws { try kit.unavailableReason() }
    }

    /// Recovers from a damaged store: moves the file (and its `-wal`/`-shm`) aside, kept for
    /// support under the path in the result, closes this manager, and opens a fresh store at the
    /// same path, opened the same way. The user's consents went with the damaged file: ask again.
    /// Throws `.InvalidInput` for a healthy store or one that is not damaged
    /// (`unavailableReason?.canQuarantine` false: open elsewhere, a newer app's data, ...).
    public func quarantineAndReopen() throws -> Recovered {
        let moved = try kit.quarantine()
        close()
        return Recovered(manager: try reopen(), quarantinedAt: moved)
    }

    /// True when cache misses ask the core through the C gate (tests; false: through uniffi).
    package var usesCGate: Bool { gate != nil }

    /// True once `close()` has begun (tests; apps learn it from `.Closed`).
    package var isClosed: Bool { cache.isClosed }

    /// The policy in force (the built-in catalog or the one given to `open`), as JSON.
    public var policyJSON: String {
        get throws { try kit.policyJson() }
    }

    /// Releases the store: when `close()` returns, calls in flight have finished, the database
    /// file is free to reopen, and every `changes` stream finishes after delivering what was
    /// already committed. Idempotent; every later call throws `.Closed`. Also run when the last
    /// reference to the manager goes away. From a listener it works the same; from inside a call
    /// on the same thread (a commit listener, which runs inside the write) later calls throw
    /// `.Closed` at once and the file is released when that call returns.
    public func close() {
        cache.close()  // no cached answer after this point: checks go to Rust, which says `.Closed`
        commits.stop()
        do {
            try kit.shutdown()
        } catch {
            // Rust's shutdown has no failure (a close from inside a call on this thread completes
            // when that call returns): a bug here, not a state of the app.
            assertionFailure("ConsentManager.close(): \(error)")
        }
        // The store is gone: each observer's worker delivers what was already committed, then
        // ends, and its stream finishes. Unregistering first would drop those deliveries, so the
        // handles are only released.
        _ = registrations.closeAll()
    }

    // MARK: - App lifecycle and other processes

    /// Catches up now with what other processes (an app extension, the support tool) committed to
    /// the file. Checks do this by themselves within the cross-process bound; call it when the app
    /// becomes active. Throws `.Suspended` between ``suspend()`` and ``resume()``.
    public func refresh() throws {
        try kit.refresh()
    }

    /// Call before iOS suspends the app: from `applicationDidEnterBackground`
    /// (`sceneDidEnterBackground`) and from a background task's expiration handler. Waits for the
    /// transaction in flight, then starts no new one until ``resume()``, so the process holds no
    /// SQLite file lock while suspended (which iOS punishes with 0xDEAD10CC). Meanwhile writes and
    /// ledger reads throw `ConsentKitError.Suspended` (changing nothing); checks answer from memory
    /// for the cross-process bound, then deny consent-gated features. Idempotent.
    public func suspend() throws {
        try kit.suspend()
    }

    /// Ends ``suspend()``: call it when the app becomes active again
    /// (`applicationDidBecomeActive` / `sceneDidBecomeActive`). Catches up with what other
    /// processes committed meanwhile before it returns.
    public func resume() throws {
        try kit.resume()
    }

    /// True between ``suspend()`` and ``resume()``.
    public var isSuspended: Bool {
        get throws { try kit.isSuspended() }
    }

    // MARK: - The gate

    /// May `feature` run for `subject` now? `scope` names the item of a per-item feature.
    /// In memory; a cached answer does not cross into Rust.
    public func check(_ subject: String, feature: FeatureID, scope: String? = nil) throws -> CheckResult {
        let key = DecisionCache.Key(subject: subject, feature: feature.rawValue, scope: scope)
        let madeAt = DispatchTime.now().uptimeNanoseconds  // read before asking Rust: the deadline errs early
        let current: UInt64
        switch cache.lookup(key, at: madeAt) {
        case .hit(let hit):
            if try !handSetClock || (hit.decision.validUntil.map({ try now() < $0 }) ?? true) { return hit.decision }
            current = hit.generation
        case .miss(let generation):
            current = generation
        }
        let answer = try ask(subject, feature: feature, scope: scope)
        cache.put(
            key, generation: current, decision: answer.decision, madeAt: madeAt, expiresIn: try nanosLeft(answer.decision),
            provenFor: answer.provenNanos, limit: Self.maxCachedDecisions)
        return answer.decision
    }

    /// What a cache miss of ``check(_:feature:scope:)`` does: asks the core, through the C gate
    /// (one C call) for the common answer and through uniffi where the gate cannot answer (which
    /// throws the typed error). Caches nothing (benchmarks and tests).
    @_spi(Testing) public func checkUncached(_ subject: String, feature: FeatureID, scope: String? = nil) throws -> CheckResult {
        try ask(subject, feature: feature, scope: scope).decision
    }

    /// The core's answer and the nanoseconds it stays proven current (the core's proof remaining,
    /// read before the check, so it errs early): through the C gate in one crossing, else through
    /// uniffi (`proofRemainingNanos()`, then `check`).
    private func ask(_ subject: String, feature: FeatureID, scope: String?) throws -> (decision: CheckResult, provenNanos: UInt64) {
        if let answer = gate?.check(subject: subject, feature: feature.rawValue, scope: scope) { return answer }
        let proven = try kit.proofRemainingNanos()
        return (try kit.check(subject: subject, feature: feature.rawValue, scope: scope), proven)
    }

    /// Nanoseconds the answers of a check made now stay proven current (tests).
    package func proofRemainingNanos() throws -> UInt64 { try kit.proofRemainingNanos() }

    /// Nanoseconds until `decision`'s `validUntil`, measured on the wall clock after the answer was
    /// made (so the cache's deadline errs early); nil when it has none. Then counted on the
    /// monotonic clock: a wall clock set forward past it is honoured within the cross-process bound.
    private func nanosLeft(_ decision: CheckResult) throws -> UInt64? {
        guard let until = decision.validUntil else { return nil }
        let seconds = until.timeIntervalSince(try now())
        return seconds <= 0 ? 0 : UInt64(min(seconds, 1e9) * 1e9)
    }

    /// Shorthand for `check(...).allowed`. A cached answer costs one read lock, one clock read
    /// and one hash of `subject`, and copies nothing out of the cache but the Bool.
    public func isAllowed(_ subject: String, feature: FeatureID, scope: String? = nil) throws -> Bool {
        if scope == nil, !handSetClock, let allowed = cache.allowed(subject: subject, feature: feature.rawValue, at: DispatchTime.now().uptimeNanoseconds) {
            return allowed
        }
        return try check(subject, feature: feature, scope: scope).allowed
    }

    /// One category's status and since when.
    public func status(_ subject: String, category: CategoryID) throws -> CategoryStatus {
        try kit.status(subject: subject, category: category.rawValue)
    }

    /// Every category's status, in policy order.
    public func statuses(_ subject: String) throws -> [CategoryStatus] {
        try kit.statuses(subject: subject)
    }

    /// Should the app show the consent prompt for `category` now (never asked, or a refusal or
    /// renewal that is due)?
    public func shouldAsk(_ subject: String, category: CategoryID) throws -> Bool {
        try kit.shouldAsk(subject: subject, category: category.rawValue)
    }

    // MARK: - Decisions

    /// Records the subject's grant (never from `.support`).
    @discardableResult
    public func grant(_ subject: String, category: CategoryID, source: Source = .settings, scope: String? = nil) throws -> Receipt {
        try kit.grant(subject: subject, category: category.rawValue, scope: scope, source: source)
    }

    /// Records a refusal.
    @discardableResult
    public func refuse(_ subject: String, category: CategoryID, source: Source = .settings, scope: String? = nil) throws -> Receipt {
        try kit.refuse(subject: subject, category: category.rawValue, scope: scope, source: source)
    }

    /// Records a withdrawal; once it returns, no check allows the feature.
    @discardableResult
    public func withdraw(_ subject: String, category: CategoryID, source: Source = .settings, scope: String? = nil) throws -> Receipt {
        try kit.withdraw(subject: subject, category: category.rawValue, scope: scope, source: source)
    }

    /// Records an objection to a legitimate-interest category.
    @discardableResult
    public func object(_ subject: String, category: CategoryID, source: Source = .settings) throws -> Receipt {
        try kit.object(subject: subject, category: category.rawValue, source: source)
    }

    /// Records the withdrawal of an objection.
    @discardableResult
    public func withdrawObjection(_ subject: String, category: CategoryID, source: Source = .settings) throws -> Receipt {
        try kit.withdrawObjection(subject: subject, category: category.rawValue, source: source)
    }

    /// Records a dialog's decisions in one transaction: all or none.
    @discardableResult
    public func record(_ decisions: [ConsentChoice]) throws -> [Receipt] {
        try kit.recordBatch(decisions: decisions)
    }

    /// Reports an OS permission's state (on launch, when the app becomes active, after the
    /// permission prompt). Returns the recorded event, or nil if the state did not change.
    @discardableResult
    public func reportOSPermission(_ permission: OSPermission, state: OSPermissionState) throws -> Receipt? {
        try kit.setOsPermission(permission: permission.rawValue, state: state)
    }

    /// The OS permission's state as last reported (`.notDetermined` before any report).
    public func osPermissionState(_ permission: OSPermission) throws -> OSPermissionState {
        try kit.osPermission(permission: permission.rawValue)
    }

    /// Marks `subject` as under the age of digital consent (or, with `isUnderAge: false`, not).
    @discardableResult
    public func markUnderAge(_ subject: String, isUnderAge: Bool = true, source: Source = .settings) throws -> Receipt {
        try kit.setUnderAge(subject: subject, underAge: isUnderAge, source: source)
    }

    // MARK: - Proof and rights

    /// The subject's events, oldest first, with the device's OS permission changes.
    public func history(_ subject: String) throws -> [Receipt] {
        try kit.history(subject: subject)
    }

    /// The subject's portable record (GDPR Arts. 15, 20) as JSON.
    public func exportJSON(_ subject: String) throws -> String {
        try kit.exportJson(subject: subject)
    }

    /// Restores an exported record; rejected whole (`.ImportRejected`, nothing written) if anything is wrong.
    @discardableResult
    public func importJSON(_ document: String) throws -> [Receipt] {
        try kit.importJson(document: document)
    }

    /// Erases `subject` for good (GDPR Art. 17), leaving an erasure record.
    @discardableResult
    public func erase(_ subject: String, source: Source = .settings) throws -> ErasureReport {
        try kit.erase(subject: subject, source: source)
    }

    /// Retention purge.
    @discardableResult
    public func purge() throws -> PurgeReport {
        try kit.purge()
    }

    /// Finishes the WAL scrub an erasure or purge left pending (`ErasureReport.scrubPending`,
    /// `PurgeReport.scrubPending`: a reader held an old snapshot) now, instead of at the next
    /// write, probe or open. True when no erased content remains in the WAL. Blocking (a
    /// checkpoint that may wait for readers): use the `async` variant on the main actor.
    @discardableResult
    public func finishScrub() throws -> Bool {
        try kit.finishScrub()
    }

    /// Records expiry events for grants past their lifetime (checks deny them regardless).
    @discardableResult
    public func recordExpiries() throws -> [Receipt] {
        try kit.recordExpiries()
    }

    /// Walks the hash chain. A broken chain is a report, not an error.
    public func verify() throws -> VerifyReport {
        try kit.verify()
    }

    /// Events the app's backend has not acknowledged yet, oldest first, at most `limit`.
    public func pendingSync(limit: Int = 100) throws -> [Receipt] {
        guard limit >= 0 else { throw ConsentKitError.InvalidInput(message: "the pendingSync limit \(limit) is negative") }
        return try kit.pendingSync(limit: UInt32(clamping: limit))
    }

    /// Acknowledges events up to `upToSeq` after the backend stored them.
    public func ackSync(upToSeq: UInt64) throws {
        try kit.ackSync(upToSeq: upToSeq)
    }

    /// The next batch of the outbox for the ConsentKit server (`consentkit-server`), at most
    /// `limit` receipts (1 to 1000; 0 or below throws `InvalidInput`, above 1000 gives 1000), or
    /// nil when everything is acknowledged. POST `json` to `/v1/devices/{device}/batches` with the
    /// device's token, then pass the 200 reply's body to `applySyncReply(_:reply:)`.
    public func syncBatch(device: String, limit: Int = 100) throws -> SyncBatch? {
        // Not clamped up: 0 or below is bad input (as the core refuses 0), never a batch of one.
        guard limit >= 1 else { throw ConsentKitError.InvalidInput(message: "invalid batch limit '\(limit)': must be 1 to 1000 receipts") }
        return try kit.syncBatch(device: device, limit: UInt32(clamping: limit))  // above 1000: the core sends 1000
    }

    /// Applies the server's reply to `batch`: erases on this device whatever the server erased,
    /// then acknowledges the batch. A reply for another batch throws `InvalidInput` and
    /// acknowledges nothing.
    @discardableResult
    public func applySyncReply(_ batch: SyncBatch, reply: String) throws -> SyncOutcome {
        try kit.applySyncReply(batch: batch, replyJson: reply)
    }

    /// With nothing to send: applies the body of `GET /v1/devices/{device}/erasures`, erasing the
    /// subjects the server erased; returns them. Their erasure records are then in `syncBatch`.
    @discardableResult
    public func applyErasureNotices(_ notices: String) throws -> [String] {
        try kit.applyErasureNotices(noticesJson: notices)
    }

    // MARK: - Observing

    /// Status changes of `subject` (or of everyone, with nil): first the current status of each
    /// category, then every change after commit. The subject is checked now: an invalid one
    /// (empty, over-long, control characters; and, for a subject the store does not hold yet,
    /// only whitespace, leading or trailing whitespace, or invisible format characters such as a
    /// zero-width space) throws `ConsentKitError.InvalidInput` naming it,
    /// as ``observe(_:onChange:)`` does; any other id is valid (a subject with no record yet gets
    /// its current statuses, then its changes). The stream finishes when the consuming task is
    /// cancelled or the manager is closed or released (after the changes already committed); a
    /// stream asked of a closed manager is finished at once.
    public func changes(of subject: String? = nil) throws -> AsyncStream<StatusChange> {
        let (stream, continuation) = AsyncStream.makeStream(of: StatusChange.self, bufferingPolicy: .unbounded)
        let handle: ListenerHandle
        do {
            handle = try kit.observe(subject: subject, listener: StreamRelay(continuation))
        } catch ConsentKitError.Closed {
            continuation.finish()  // closed: a finished stream, as documented
            return stream
        }
        guard let id = registrations.add(handle) else {
            continuation.finish()
            return stream
        }
        continuation.onTermination = { [registrations] _ in registrations.remove(id)?.stop() }
        return stream
    }

    /// Calls `onChange` (on a background thread) with the current status of each category, then
    /// with each change, until the token is cancelled or released or the manager closes.
    public func observe(_ subject: String?, onChange: @escaping @Sendable (StatusChange) -> Void) throws -> ObservationToken {
        guard let id = registrations.add(try kit.observe(subject: subject, listener: ClosureRelay(onChange))) else {
            throw ConsentKitError.Closed(message: "this ConsentManager was closed; open the store again to use it")
        }
        return ObservationToken { [registrations] in registrations.remove(id)?.stop() }
    }
}

/// The result of ``ConsentManager/quarantineAndReopen()``: the fresh manager, and where the
/// damaged file went.
public struct Recovered: Sendable {
    /// The manager of the fresh store at the original path.
    public let manager: ConsentManager
    /// The path the damaged file was moved to.
    public let quarantinedAt: String
}

/// Keeps an observation alive; `cancel()` or releasing it stops the listener.
public final class ObservationToken: Sendable {
    private let stop: @Sendable () -> Void
    init(_ stop: @escaping @Sendable () -> Void) { self.stop = stop }
    /// Stops the listener now; idempotent.
    public func cancel() { stop() }
    deinit { stop() }
}

/// The commit listener: moves the gate cache to each new generation synchronously, before the
/// write (or the core's probe of another process's commit) returns. Holds only the cache, never
/// the manager or the Rust object: no cycle.
final class CacheInvalidator: CommitListener, @unchecked Sendable {
    private let cache: DecisionCache
    init(_ cache: DecisionCache) { self.cache = cache }
    func onCommit(generation: UInt64) {
        cache.advance(to: generation)
    }
}

/// A string as the core sees an id: compared and hashed on its UTF-8 bytes. Swift's `String ==`
/// and `Dictionary` treat canonically equivalent strings as equal (`"jos\u{e9}" == "jose\u{301}"`),
/// but subjects, features and scope items are byte-exact ids in the core: a cache keyed on
/// `String` would serve one user's answer to another id.
package struct ExactText: Hashable, Sendable {
    package let text: String

    package init(_ text: String) { self.text = text }

    /// True when `a` and `b` have the same UTF-8 bytes.
    @inline(__always)
    package static func same(_ a: String, _ b: String) -> Bool {
        // The same representation (a small string's bytes inline, or the same immutable storage):
        // the same bytes. The hot path's case (one String kept and passed again), two word compares.
        if sameRepresentation(a, b) { return true }
        let (x, y) = (a.utf8, b.utf8)
        guard x.count == y.count else { return false }
        // Native strings (small ones too) lend their bytes in place: one memcmp.
        if let equal = x.withContiguousStorageIfAvailable({ p in
            y.withContiguousStorageIfAvailable { q in p.count == 0 || memcmp(p.baseAddress!, q.baseAddress!, p.count) == 0 }
        }), let equal {
            return equal
        }
        return x.elementsEqual(y)
    }

    /// True when `a` and `b` are bit for bit the same `String` value.
    @inline(__always)
    private static func sameRepresentation(_ a: String, _ b: String) -> Bool {
        withUnsafeBytes(of: a) { x in
            withUnsafeBytes(of: b) { y in
                if MemoryLayout<String>.size == 16 {
                    return x.loadUnaligned(as: UInt64.self) == y.loadUnaligned(as: UInt64.self)
                        && x.loadUnaligned(fromByteOffset: 8, as: UInt64.self) == y.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
                }
                return memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0
            }
        }
    }

    package static func == (a: ExactText, b: ExactText) -> Bool { same(a.text, b.text) }

    package func hash(into hasher: inout Hasher) { Self.hash(text, into: &hasher) }

    /// Hashes `text`'s UTF-8 bytes and their count (so that concatenations differ).
    @inline(__always)
    package static func hash(_ text: String, into hasher: inout Hasher) {
        let bytes = text.utf8
        hasher.combine(bytes.count)
        if bytes.withContiguousStorageIfAvailable({ hasher.combine(bytes: UnsafeRawBufferPointer($0)) }) == nil {
            for byte in bytes { hasher.combine(byte) }
        }
    }
}

/// Decisions by (subject, feature, scope), each tagged with the store generation it was computed
/// at; the cache holds only entries of its current generation (``advance(to:)`` empties it).
/// A hit takes one read lock, compares the feature against a short list of features (small
/// strings compare without hashing) and hashes only the subject; scoped checks (per-item
/// features) hash the whole key. Every comparison and hash is on the UTF-8 bytes
/// (``ExactText``), as the core compares ids.
package final class DecisionCache: @unchecked Sendable {
    package struct Key: Hashable {
        package let subject: String
        package let feature: String
        package let scope: String?

        package init(subject: String, feature: String, scope: String?) {
            self.subject = subject
            self.feature = feature
            self.scope = scope
        }

        /// Byte-exact (``ExactText``): canonically equivalent but different ids are different keys.
        package static func == (a: Key, b: Key) -> Bool {
            guard ExactText.same(a.subject, b.subject), ExactText.same(a.feature, b.feature) else { return false }
            switch (a.scope, b.scope) {
            case (nil, nil): return true
            case (let x?, let y?): return ExactText.same(x, y)
            default: return false
            }
        }

        package func hash(into hasher: inout Hasher) {
            ExactText.hash(subject, into: &hasher)
            ExactText.hash(feature, into: &hasher)
            hasher.combine(scope != nil)
            if let scope { ExactText.hash(scope, into: &hasher) }
        }
    }
    package struct Entry {
        package let generation: UInt64
        package let decision: CheckResult
        /// When the decision was asked (monotonic nanoseconds).
        package let madeAt: UInt64
        /// Until when it may be served (monotonic nanoseconds): while the core's answer was proven
        /// current (never longer than the bound), and never past its `validUntil`.
        package let deadline: UInt64
    }
    /// What a lookup found: a fresh entry of the current generation, or a miss with the generation
    /// to tag the answer with (read before Rust is asked: a commit in between makes it stale).
    package enum Lookup {
        case hit(Entry)
        case miss(generation: UInt64)
    }
    /// The unscoped entries of one feature, by subject. The subject put last and its entry's
    /// plain fields are kept beside the map: a repeated check for one user (an app's signed-in
    /// user, the common case) compares the subject instead of hashing it and copies no reference.
    private struct Shelf {
        let feature: String
        var bySubject: [ExactText: Entry]
        var hotSubject: String?
        var hotAllowed = false
        var hotGeneration: UInt64 = 0
        var hotMadeAt: UInt64 = 0
        var hotDeadline: UInt64 = 0

        init(feature: String) {
            self.feature = feature
            bySubject = [:]
        }

        mutating func put(_ subject: String, _ entry: Entry) -> Entry? {
            hotSubject = subject
            hotAllowed = entry.decision.allowed
            hotGeneration = entry.generation
            hotMadeAt = entry.madeAt
            hotDeadline = entry.deadline
            return bySubject.updateValue(entry, forKey: ExactText(subject))
        }

        mutating func removeAll() {
            bySubject.removeAll(keepingCapacity: true)
            hotSubject = nil
        }
    }

    /// The core's cross-process bound in nanoseconds: no entry is served longer.
    package let freshNanos: UInt64
    private let lock = ReadWriteLock()
    // Guarded by `lock`, so Swift's dynamic exclusivity checks are redundant on the hot path.
    @exclusivity(unchecked) private var generation: UInt64
    @exclusivity(unchecked) private var shelves: [Shelf] = []
    @exclusivity(unchecked) private var scoped: [Key: Entry] = [:]
    @exclusivity(unchecked) private var count = 0
    @exclusivity(unchecked) private var closed = false

    package init(freshNanos: UInt64, generation: UInt64 = 0) {
        self.freshNanos = freshNanos
        self.generation = generation
    }

    /// The entry for `key`, fresh or not (tests).
    package func get(_ key: Key) -> Entry? { lock.reading { entry(key) } }

    /// A fresh entry of the current generation for `key` at monotonic time `now`, or the
    /// generation to tag a new answer with.
    package func lookup(_ key: Key, at now: UInt64) -> Lookup {
        lock.reading {
            if let found = entry(key), found.generation == generation, isFresh(found, at: now) { return .hit(found) }
            return .miss(generation: generation)
        }
    }

    /// The hot path of `isAllowed` (no scope): the cached answer's `allowed`, or nil on a miss.
    /// Copies nothing out of the entry but one Bool.
    package func allowed(subject: String, feature: String, at now: UInt64) -> Bool? {
        lock.reading {
            guard let shelf = shelfIndex(feature) else { return nil }
            if let hot = shelves[shelf].hotSubject, ExactText.same(hot, subject) {
                guard shelves[shelf].hotGeneration == generation, now >= shelves[shelf].hotMadeAt, now < shelves[shelf].hotDeadline else { return nil }
                return shelves[shelf].hotAllowed
            }
            guard let found = shelves[shelf].bySubject[ExactText(subject)], found.generation == generation, isFresh(found, at: now) else { return nil }
            return found.decision.allowed
        }
    }

    /// True while `entry` is younger than the cross-process bound, and before its expiry, at monotonic time `now`.
    package func isFresh(_ entry: Entry, at now: UInt64) -> Bool {
        now >= entry.madeAt && now < entry.deadline
    }

    /// Keeps `decision` for `key`, unless `generation` is older than the cache's (a commit came
    /// in between); `expiresIn`: nanoseconds after `madeAt` until its `validUntil`; `provenFor`:
    /// nanoseconds after `madeAt` the core's answer stays proven current (its proof remaining, read
    /// after `madeAt` and before the check; nil: the whole bound). Served until the earliest of
    /// these and the bound.
    package func put(
        _ key: Key, generation: UInt64, decision: CheckResult, madeAt: UInt64, expiresIn: UInt64? = nil, provenFor: UInt64? = nil,
        limit: Int
    ) {
        let deadline = madeAt &+ min(freshNanos, expiresIn ?? freshNanos, provenFor ?? freshNanos)
        let entry = Entry(generation: generation, decision: decision, madeAt: madeAt, deadline: deadline)
        lock.writing {
            guard !closed, generation >= self.generation else { return }
            if count >= limit { removeAll() }
            let replaced: Entry?
            if key.scope != nil {
                replaced = scoped.updateValue(entry, forKey: key)
            } else if let shelf = shelfIndex(key.feature) {
                replaced = shelves[shelf].put(key.subject, entry)
            } else {
                var shelf = Shelf(feature: key.feature)
                replaced = shelf.put(key.subject, entry)
                shelves.append(shelf)
            }
            if replaced == nil { count += 1 }
        }
    }

    /// Moves to `generation` (a commit): every entry of an older one is dropped before this returns.
    func advance(to generation: UInt64) {
        lock.writing {
            guard generation > self.generation else { return }
            self.generation = generation
            removeAll()
        }
    }

    /// Empties the cache for good: after this, every lookup misses.
    func close() {
        lock.writing {
            closed = true
            removeAll()
        }
    }

    var isClosed: Bool { lock.reading { closed } }

    /// Under the lock.
    private func entry(_ key: Key) -> Entry? {
        if key.scope != nil { return scoped[key] }
        guard let shelf = shelfIndex(key.feature) else { return nil }
        return shelves[shelf].bySubject[ExactText(key.subject)]
    }

    /// Under the lock. A catalog has a handful of features; compared on their bytes.
    private func shelfIndex(_ feature: String) -> Int? {
        for i in shelves.indices where ExactText.same(shelves[i].feature, feature) { return i }
        return nil
    }

    /// Under the write lock.
    private func removeAll() {
        for i in shelves.indices { shelves[i].removeAll() }
        scoped.removeAll(keepingCapacity: true)
        count = 0
    }
}

/// The live listener registrations of one manager, so that `close()` can end them all.
final class Registrations: @unchecked Sendable {
    private let lock = NSLock()
    private var next: UInt64 = 0
    private var handles: [UInt64: ListenerHandle] = [:]
    private var closed = false

    /// Keeps `handle`; returns its id, or nil (having unregistered it) once closed.
    func add(_ handle: ListenerHandle) -> UInt64? {
        lock.lock()
        if closed {
            lock.unlock()
            handle.stop()
            return nil
        }
        next += 1
        let id = next
        handles[id] = handle
        lock.unlock()
        return id
    }

    /// Forgets `id`, returning its handle if it was still there.
    func remove(_ id: UInt64) -> ListenerHandle? {
        lock.lock()
        defer { lock.unlock() }
        return handles.removeValue(forKey: id)
    }

    /// Marks closed and hands back every handle still registered.
    func closeAll() -> [ListenerHandle] {
        lock.lock()
        defer { lock.unlock() }
        closed = true
        let all = Array(handles.values)
        handles.removeAll()
        return all
    }
}

/// Feeds an AsyncStream. Rust releases it when the registration ends and its worker thread has
/// delivered every queued change; only then does the stream finish.
final class StreamRelay: ConsentListener, @unchecked Sendable {
    private let continuation: AsyncStream<StatusChange>.Continuation
    init(_ continuation: AsyncStream<StatusChange>.Continuation) { self.continuation = continuation }
    func onChange(change: StatusChange) throws { continuation.yield(change) }
    deinit { continuation.finish() }
}

/// Calls a closure for each change.
final class ClosureRelay: ConsentListener, @unchecked Sendable {
    private let listener: @Sendable (StatusChange) -> Void
    init(_ listener: @escaping @Sendable (StatusChange) -> Void) { self.listener = listener }
    func onChange(change: StatusChange) throws { listener(change) }
}

extension ListenerHandle {
    /// Unregisters where no error can be passed on (close, stream termination, deinit). Rust
    /// fails this only with a panic it caught, and logs that itself; the registration is gone
    /// either way once the store closes.
    func stop() {
        do {
            try unregister()
        } catch {
            assertionFailure("unregistering a ConsentKit listener failed: \(error)")
        }
    }
}
