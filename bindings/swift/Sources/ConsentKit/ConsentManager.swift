import Foundation
@_exported import ConsentKitFFI

/// ConsentKit for Swift: records consent decisions durably and answers, fast and fail-closed,
/// whether a feature may run for a user now.
///
/// Thread-safe. Failures throw `ConsentKitError` cases naming the bad value
/// (`.UnknownFeature`, `.GrantBySupport`, ...).
///
/// `check` does not cross the FFI on the hot path: decisions are cached in Swift and
/// invalidated synchronously by a commit listener before any write returns, and an allowed
/// decision is never served past its `validUntil` (a grant's expiry). Once `withdraw` has
/// returned, no thread sees the feature allowed.
///
/// Open one manager per database file and keep it for the app's lifetime.
public final class ConsentManager: @unchecked Sendable {
    /// Most decisions kept in the gate cache; past it the cache starts afresh.
    public static let maxCachedDecisions = 4096

    let kit: ConsentKit
    private let nowMillis: @Sendable () -> Int64
    private let counter: GenerationCounter
    private let cache = DecisionCache()
    private let commits: ListenerHandle

    init(kit: ConsentKit, nowMillis: @escaping @Sendable () -> Int64) {
        // The listener holds only the counter, never this manager or the Rust object: no cycle.
        let counter = GenerationCounter(kit.generation())
        self.kit = kit
        self.nowMillis = nowMillis
        self.counter = counter
        self.commits = kit.onCommit(listener: counter)
    }

    deinit {
        commits.unregister()
    }

    /// Opens the store at `path` (created if missing) with the built-in UCAnywhere policy or
    /// `policyJson`. Never fails for a damaged store: the gate then denies every consent-gated
    /// feature with `.storeUnavailable`, and `unavailable` says why.
    /// Throws `ConsentKitError.InvalidPolicy` for a malformed policy.
    public static func open(path: String, policyJson: String? = nil) throws -> ConsentManager {
        ConsentManager(kit: try ConsentKit.openFailClosed(path: path, policyJson: policyJson), nowMillis: systemMillis)
    }

    /// Like `open`, but throws `.StoreUnavailable` or `.SchemaTooNew` instead of failing closed.
    public static func openStrict(path: String, policyJson: String? = nil) throws -> ConsentManager {
        ConsentManager(kit: try ConsentKit.open(path: path, policyJson: policyJson), nowMillis: systemMillis)
    }

    /// Opens on a hand-set clock (tests and conformance scenarios).
    public static func open(path: String, policyJson: String?, clock: TestClock) throws -> ConsentManager {
        ConsentManager(kit: try ConsentKit.openWithClock(path: path, policyJson: policyJson, clock: clock), nowMillis: { clock.now() })
    }

    /// Why the store is closed (fail-closed mode), or nil when healthy.
    public var unavailable: String? { kit.unavailable() }

    // MARK: - The gate

    /// May `feature` run for `subject` now? `scope` names the item of a per-item feature.
    public func check(_ subject: String, feature: String, scope: String? = nil) throws -> Decision {
        let key = DecisionCache.Key(subject: subject, feature: feature, scope: scope)
        let current = counter.value // read before asking Rust: a commit in between makes the entry stale
        if let hit = cache.get(key), hit.generation == current, hit.decision.validUntil.map({ nowMillis() < $0 }) ?? true {
            return hit.decision
        }
        let decision = try kit.check(subject: subject, feature: feature, scope: scope)
        cache.put(key, generation: current, decision: decision, limit: Self.maxCachedDecisions)
        return decision
    }

    /// Shorthand for `check(...).allowed`.
    public func isAllowed(_ subject: String, feature: String, scope: String? = nil) throws -> Bool {
        try check(subject, feature: feature, scope: scope).allowed
    }

    /// One category's status and since when.
    public func status(_ subject: String, category: String) throws -> CategoryStatus {
        try kit.status(subject: subject, category: category)
    }

    /// Every category's status, in policy order.
    public func statuses(_ subject: String) throws -> [CategoryStatus] { try kit.statuses(subject: subject) }

    /// Should the app show the consent prompt for `category` now?
    public func shouldAsk(_ subject: String, category: String) throws -> Bool {
        try kit.shouldAsk(subject: subject, category: category)
    }

    // MARK: - Decisions

    /// Records the subject's grant (never from `.support`).
    @discardableResult
    public func grant(_ subject: String, category: String, source: Source = .settings, scope: String? = nil) throws -> Receipt {
        try kit.grant(subject: subject, category: category, scope: scope, source: source)
    }

    /// Records a refusal.
    @discardableResult
    public func refuse(_ subject: String, category: String, source: Source = .settings, scope: String? = nil) throws -> Receipt {
        try kit.refuse(subject: subject, category: category, scope: scope, source: source)
    }

    /// Records a withdrawal; once it returns, no check allows the feature.
    @discardableResult
    public func withdraw(_ subject: String, category: String, source: Source = .settings, scope: String? = nil) throws -> Receipt {
        try kit.withdraw(subject: subject, category: category, scope: scope, source: source)
    }

    /// Records an objection to a legitimate-interest category.
    @discardableResult
    public func object(_ subject: String, category: String, source: Source = .settings) throws -> Receipt {
        try kit.object(subject: subject, category: category, source: source)
    }

    /// Records the withdrawal of an objection.
    @discardableResult
    public func withdrawObjection(_ subject: String, category: String, source: Source = .settings) throws -> Receipt {
        try kit.withdrawObjection(subject: subject, category: category, source: source)
    }

    /// Records a dialog's decisions in one transaction: all or none.
    @discardableResult
    public func record(_ decisions: [DecisionInput]) throws -> [Receipt] { try kit.recordBatch(decisions: decisions) }

    /// Reports the OS permission state (on launch, on return from Settings); nil if unchanged.
    @discardableResult
    public func reportOsPermission(_ permission: OsPermission, state: OsState) throws -> Receipt? {
        try kit.setOsPermission(permission: permission, state: state)
    }

    /// The device's current OS permission state as last reported.
    public func osPermission(_ permission: OsPermission) -> OsState { kit.osPermission(permission: permission) }

    /// Marks (or unmarks) `subject` as under the age of digital consent.
    @discardableResult
    public func markUnderAge(_ subject: String, _ underAge: Bool = true, source: Source = .settings) throws -> Receipt {
        try kit.setUnderAge(subject: subject, underAge: underAge, source: source)
    }

    // MARK: - Proof and rights

    /// The subject's events, oldest first, with the device's OS permission changes.
    public func history(_ subject: String) throws -> [Receipt] { try kit.history(subject: subject) }

    /// The subject's portable record (GDPR Arts. 15, 20) as JSON.
    public func export(_ subject: String) throws -> String { try kit.exportJson(subject: subject) }

    /// Restores an exported record; rejected whole (`.ImportRejected`) if anything is wrong.
    @discardableResult
    public func `import`(_ document: String) throws -> [Receipt] { try kit.importJson(document: document) }

    /// Erases `subject` for good (GDPR Art. 17).
    @discardableResult
    public func erase(_ subject: String, source: Source = .settings) throws -> ErasureReport {
        try kit.erase(subject: subject, source: source)
    }

    /// Retention purge.
    @discardableResult
    public func purge() throws -> PurgeReport { try kit.purge() }

    /// Records expiry events for grants past their lifetime (checks deny them regardless).
    @discardableResult
    public func recordExpiries() throws -> [Receipt] { try kit.recordExpiries() }

    /// Walks the hash chain.
    public func verify() throws -> VerifyReport { try kit.verify() }

    /// Events the app's backend has not acknowledged yet, oldest first.
    public func pendingSync(limit: UInt32 = 100) throws -> [Receipt] { try kit.pendingSync(limit: limit) }

    /// Acknowledges events up to `upToSeq` after the backend stored them.
    public func ackSync(upToSeq: UInt64) throws { try kit.ackSync(upToSeq: upToSeq) }

    // MARK: - Observing

    /// Status changes of `subject` (or of everyone, with nil): first the current status of each
    /// category, then every change after commit. Ends when the consuming task is cancelled.
    public func changes(of subject: String? = nil) -> AsyncStream<StatusChange> {
        AsyncStream(bufferingPolicy: .unbounded) { continuation in
            let handle = kit.observe(subject: subject, listener: StreamRelay(continuation))
            continuation.onTermination = { _ in handle.unregister() }
        }
    }

    /// Calls `listener` (on a background thread) for each status change until the token is released.
    public func observe(_ subject: String?, _ listener: @escaping @Sendable (StatusChange) -> Void) -> ObservationToken {
        ObservationToken(kit.observe(subject: subject, listener: ClosureRelay(listener)))
    }
}

/// Keeps an observation alive; `cancel()` or releasing it stops the listener.
public final class ObservationToken: @unchecked Sendable {
    private let handle: ListenerHandle
    init(_ handle: ListenerHandle) { self.handle = handle }
    /// Stops the listener now.
    public func cancel() { handle.unregister() }
    deinit { handle.unregister() }
}

private let systemMillis: @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) }

final class GenerationCounter: CommitListener, @unchecked Sendable {
    private let lock = NSLock()
    private var current: UInt64
    init(_ start: UInt64) { current = start }
    var value: UInt64 { lock.lock(); defer { lock.unlock() }; return current }
    func onCommit(generation: UInt64) throws {
        lock.lock()
        current = max(current, generation)
        lock.unlock()
    }
}

final class DecisionCache: @unchecked Sendable {
    struct Key: Hashable { let subject: String; let feature: String; let scope: String? }
    struct Entry { let generation: UInt64; let decision: Decision }
    private let lock = NSLock()
    private var entries: [Key: Entry] = [:]

    func get(_ key: Key) -> Entry? { lock.lock(); defer { lock.unlock() }; return entries[key] }

    func put(_ key: Key, generation: UInt64, decision: Decision, limit: Int) {
        lock.lock()
        if entries.count >= limit { entries.removeAll(keepingCapacity: true) }
        entries[key] = Entry(generation: generation, decision: decision)
        lock.unlock()
    }
}

final class StreamRelay: ConsentListener, @unchecked Sendable {
    private let continuation: AsyncStream<StatusChange>.Continuation
    init(_ continuation: AsyncStream<StatusChange>.Continuation) { self.continuation = continuation }
    func onChange(change: StatusChange) throws { continuation.yield(change) }
}

final class ClosureRelay: ConsentListener, @unchecked Sendable {
    private let listener: @Sendable (StatusChange) -> Void
    init(_ listener: @escaping @Sendable (StatusChange) -> Void) { self.listener = listener }
    func onChange(change: StatusChange) throws { listener(change) }
}
