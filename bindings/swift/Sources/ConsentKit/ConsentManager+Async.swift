import ConsentKitFFI
import Foundation

// `async` variants of every call that touches the disk. A write commits and fsyncs before it
// returns, and a read of the history reads SQLite: on the main thread that is a hitch (and what
// Android's StrictMode flags). In an async context Swift picks these overloads, so `await` moves
// the work to a background queue; synchronous code keeps the synchronous calls.
//
// Main-thread safe without `await` (in memory, no I/O): `check`, `isAllowed`, `status`,
// `statuses`, `shouldAsk`, `osPermissionState`, `policyJSON`, `unavailable`, `unavailableReason`,
// `changes`, `observe`, `statusesModel(of:)`.
extension ConsentManager {
    /// Opens the store off the caller's thread; see ``open(path:policyJSON:)``.
    public static func open(path: String, policyJSON: String? = nil) async throws -> ConsentManager {
        try await offCaller { try open(path: path, policyJSON: policyJSON) }
    }

    /// Opens the store strictly, off the caller's thread; see ``openStrict(path:policyJSON:)``.
    public static func openStrict(path: String, policyJSON: String? = nil) async throws -> ConsentManager {
        try await offCaller { try openStrict(path: path, policyJSON: policyJSON) }
    }

    /// Closes off the caller's thread (close waits for calls in flight); see ``close()``.
    public func close() async {
        await offCaller { self.close() }
    }

    /// Quarantines a damaged store and reopens, off the caller's thread; see ``quarantineAndReopen()``.
    public func quarantineAndReopen() async throws -> Recovered {
        try await offCaller { try self.quarantineAndReopen() }
    }

    /// Records a grant off the caller's thread; see ``grant(_:category:source:scope:)``.
    @discardableResult
    public func grant(_ subject: String, category: CategoryID, source: Source = .settings, scope: String? = nil) async throws -> Receipt {
        try await offCaller { try self.grant(subject, category: category, source: source, scope: scope) }
    }

    /// Records a refusal off the caller's thread.
    @discardableResult
    public func refuse(_ subject: String, category: CategoryID, source: Source = .settings, scope: String? = nil) async throws -> Receipt {
        try await offCaller { try self.refuse(subject, category: category, source: source, scope: scope) }
    }

    /// Records a withdrawal off the caller's thread; once it returns, no check allows the feature.
    @discardableResult
    public func withdraw(_ subject: String, category: CategoryID, source: Source = .settings, scope: String? = nil) async throws -> Receipt {
        try await offCaller { try self.withdraw(subject, category: category, source: source, scope: scope) }
    }

    /// Records an objection off the caller's thread.
    @discardableResult
    public func object(_ subject: String, category: CategoryID, source: Source = .settings) async throws -> Receipt {
        try await offCaller { try self.object(subject, category: category, source: source) }
    }

    /// Records the withdrawal of an objection off the caller's thread.
    @discardableResult
    public func withdrawObjection(_ subject: String, category: CategoryID, source: Source = .settings) async throws -> Receipt {
        try await offCaller { try self.withdrawObjection(subject, category: category, source: source) }
    }

    /// Records a dialog's decisions in one transaction, off the caller's thread.
    @discardableResult
    public func record(_ decisions: [ConsentChoice]) async throws -> [Receipt] {
        try await offCaller { try self.record(decisions) }
    }

    /// Reports an OS permission's state off the caller's thread; nil if unchanged.
    @discardableResult
    public func reportOSPermission(_ permission: OSPermission, state: OSPermissionState) async throws -> Receipt? {
        try await offCaller { try self.reportOSPermission(permission, state: state) }
    }

    /// Marks `subject` as under age (or not) off the caller's thread.
    @discardableResult
    public func markUnderAge(_ subject: String, isUnderAge: Bool = true, source: Source = .settings) async throws -> Receipt {
        try await offCaller { try self.markUnderAge(subject, isUnderAge: isUnderAge, source: source) }
    }

    /// The subject's events, read off the caller's thread.
    public func history(_ subject: String) async throws -> [Receipt] {
        try await offCaller { try self.history(subject) }
    }

    /// The subject's portable record as JSON, off the caller's thread.
    public func exportJSON(_ subject: String) async throws -> String {
        try await offCaller { try self.exportJSON(subject) }
    }

    /// Restores an exported record off the caller's thread.
    @discardableResult
    public func importJSON(_ document: String) async throws -> [Receipt] {
        try await offCaller { try self.importJSON(document) }
    }

    /// Erases `subject` off the caller's thread.
    @discardableResult
    public func erase(_ subject: String, source: Source = .settings) async throws -> ErasureReport {
        try await offCaller { try self.erase(subject, source: source) }
    }

    /// Retention purge off the caller's thread.
    @discardableResult
    public func purge() async throws -> PurgeReport {
        try await offCaller { try self.purge() }
    }

    /// Finishes a pending WAL scrub off the caller's thread.
    @discardableResult
    public func finishScrub() async throws -> Bool {
        try await offCaller { try self.finishScrub() }
    }

    /// Records expiry events off the caller's thread.
    @discardableResult
    public func recordExpiries() async throws -> [Receipt] {
        try await offCaller { try self.recordExpiries() }
    }

    /// Walks the hash chain off the caller's thread.
    public func verify() async throws -> VerifyReport {
        try await offCaller { try self.verify() }
    }

    /// Unacknowledged events, read off the caller's thread.
    public func pendingSync(limit: Int = 100) async throws -> [Receipt] {
        try await offCaller { try self.pendingSync(limit: limit) }
    }

    /// Acknowledges events up to `upToSeq` off the caller's thread.
    public func ackSync(upToSeq: UInt64) async throws {
        try await offCaller { try self.ackSync(upToSeq: upToSeq) }
    }

    /// `syncBatch(device:limit:)` off the caller's thread.
    public func syncBatch(device: String, limit: Int = 100) async throws -> SyncBatch? {
        try await offCaller { try self.syncBatch(device: device, limit: limit) }
    }

    /// `applySyncReply(_:reply:)` off the caller's thread.
    @discardableResult
    public func applySyncReply(_ batch: SyncBatch, reply: String) async throws -> SyncOutcome {
        try await offCaller { try self.applySyncReply(batch, reply: reply) }
    }

    /// `applyErasureNotices(_:)` off the caller's thread.
    @discardableResult
    public func applyErasureNotices(_ notices: String) async throws -> [String] {
        try await offCaller { try self.applyErasureNotices(notices) }
    }

    /// ``refresh()`` off the caller's thread.
    public func refresh() async throws {
        try await offCaller { try self.refresh() }
    }

    /// ``suspend()`` off the caller's thread (it waits for a transaction in flight).
    public func suspend() async throws {
        try await offCaller { try self.suspend() }
    }

    /// ``resume()`` off the caller's thread (it reads what other processes committed meanwhile).
    public func resume() async throws {
        try await offCaller { try self.resume() }
    }
}

/// Runs `work` on a background queue and resumes the caller with its result.
package func offCaller<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global(qos: .userInitiated).async { continuation.resume(with: Result { try work() }) }
    }
}

/// Runs `work` on a background queue and resumes the caller when it is done.
package func offCaller(_ work: @escaping @Sendable () -> Void) async {
    await withCheckedContinuation { continuation in
        DispatchQueue.global(qos: .userInitiated).async {
            work()
            continuation.resume()
        }
    }
}
