@_spi(Testing) import ConsentKit
import ConsentKitFFI
import Foundation
import XCTest

/// Issue #11 item 6 on Swift: the suspend/resume pair for the iOS app lifecycle, and the Swift gate
/// cache bounded by the core's cross-process bound.
final class LifecycleTests: XCTestCase {
    var dir: URL!
    var consent: ConsentManager!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let clock = try TestClock(at: Date(timeIntervalSince1970: 1_768_467_600))
        consent = try ConsentManager.open(path: dir.appendingPathComponent("consent.db").path, policyJSON: nil, clock: clock)
    }

    override func tearDownWithError() throws {
        consent = nil
        try FileManager.default.removeItem(at: dir)
    }

    /// An app closing from its listener: close() returns, and the file opens again.
    func testCloseFromInsideAListenerReleasesTheFile() throws {
        let path = dir.appendingPathComponent("listener-close.db").path
        let manager = try ConsentManager.openStrict(path: path)
        let closed = expectation(description: "close() returned inside the listener")
        let token = try manager.observe("alice") { change in
            if change.category == "usage_statistics", change.status == .granted {
                manager.close()
                closed.fulfill()
            }
        }
        try manager.grant("alice", category: .usageStatistics)
        wait(for: [closed], timeout: 20)
        token.cancel()
        XCTAssertThrowsError(try manager.isAllowed("alice", feature: .usageAnalytics))
        let again = try ConsentManager.openStrict(path: path)
        XCTAssertTrue(try again.isAllowed("alice", feature: .usageAnalytics))
        again.close()
    }

    /// A close from inside a call on the same thread (a commit listener runs inside the write)
    /// cannot wait for that call: it refuses new calls at once and the file is released when the
    /// call returns. It used to throw `.InvalidInput` and leave the file claimed.
    func testCloseFromInsideACallOnTheSameThreadCompletesWhenTheCallReturns() throws {
        let path = dir.appendingPathComponent("hook-close.db").path
        let kit = try RustConsentKit.open(path: path, policyJson: nil)
        let closer = CloseInsideTheWrite(kit)
        let hook = try kit.onCommit(listener: closer)
        _ = try kit.grant(subject: "alice", category: "usage_statistics", scope: nil, source: .settings)
        try hook.unregister()
        XCTAssertNil(closer.closeError, "shutdown() inside the write's commit listener")
        guard case ConsentKitError.Closed? = closer.callAfterClose else {
            return XCTFail("a new call after shutdown() is refused at once: \(String(describing: closer.callAfterClose))")
        }
        XCTAssertTrue(try kit.isClosed())
        XCTAssertThrowsError(try kit.grant(subject: "bob", category: "usage_statistics", scope: nil, source: .settings))
        let again = try ConsentManager.openStrict(path: path)
        XCTAssertTrue(try again.isAllowed("alice", feature: .usageAnalytics), "the write that was running is kept")
        again.close()
    }

    func testSuspendStartsNoTransactionUntilResumeAndTheErrorSaysSo() throws {
        try consent.grant("alice", category: "usage_statistics")
        XCTAssertFalse(try consent.isSuspended)
        try consent.suspend()
        try consent.suspend()  // idempotent
        XCTAssertTrue(try consent.isSuspended)
        XCTAssertThrowsError(try consent.withdraw("alice", category: "usage_statistics")) { error in
            guard case ConsentKitError.Suspended(let message) = error else { return XCTFail("expected .Suspended, got \(error)") }
            XCTAssertTrue(message.contains("suspend"), "the message says the store is suspended: \(message)")
            XCTAssertEqual(error.localizedDescription, "T" + message.dropFirst() + ".", "reads as a sentence")
        }
        XCTAssertThrowsError(try consent.history("alice")) { error in
            guard case ConsentKitError.Suspended = error else { return XCTFail("expected .Suspended, got \(error)") }
        }
        XCTAssertThrowsError(try consent.refresh()) { error in
            guard case ConsentKitError.Suspended = error else { return XCTFail("expected .Suspended, got \(error)") }
        }
        try consent.resume()
        XCTAssertFalse(try consent.isSuspended)
        XCTAssertEqual(try consent.history("alice").count, 1, "the refused withdrawal changed nothing")
        XCTAssertTrue(try consent.isAllowed("alice", feature: "usage_analytics"))
        try consent.withdraw("alice", category: "usage_statistics")
        XCTAssertFalse(try consent.isAllowed("alice", feature: "usage_analytics"))
        try consent.refresh()
    }

    func testTheAsyncPairWorksAndAClosedManagerThrowsClosed() async throws {
        try await consent.suspend()
        XCTAssertTrue(try consent.isSuspended)
        do {
            _ = try await consent.grant("bob", category: "usage_statistics")
            XCTFail("a write while suspended must throw")
        } catch ConsentKitError.Suspended {
        }
        try await consent.resume()
        try await consent.refresh()
        _ = try await consent.grant("bob", category: "usage_statistics")
        await consent.close()
        do {
            try await consent.suspend()
            XCTFail("suspend after close must throw")
        } catch ConsentKitError.Closed {
        }
        XCTAssertThrowsError(try consent.isSuspended) { error in
            guard case ConsentKitError.Closed = error else { return XCTFail("expected .Closed, got \(error)") }
        }
    }

    /// What the README says of a closed manager: every call throws `.Closed`, but `changes(of:)`,
    /// which returns a stream that is already finished (no throw, no element), and `close()`.
    func testAfterCloseChangesIsAFinishedStreamAndObserveThrowsClosed() async throws {
        await consent.close()
        await consent.close()  // idempotent
        var received = 0
        for await _ in try consent.changes(of: "alice") { received += 1 }
        XCTAssertEqual(received, 0, "a stream asked of a closed manager is finished at once")
        XCTAssertThrowsError(try consent.observe("alice") { _ in }) { error in
            guard case ConsentKitError.Closed = error else { return XCTFail("observe after close: \(error)") }
        }
        XCTAssertThrowsError(try consent.statuses("alice")) { error in
            guard case ConsentKitError.Closed = error else { return XCTFail("statuses after close: \(error)") }
        }
    }

    func testTheCacheIsBoundedByTheCrossProcessBound() throws {
        try consent.grant("alice", category: "usage_statistics")
        XCTAssertTrue(try consent.isAllowed("alice", feature: "usage_analytics"))
        let bound = consent.cache.freshNanos
        XCTAssertEqual(bound, 250 * 1_000_000, "the manager's cache uses the core's bound (crossProcessBoundMillis)")
        let entry = try XCTUnwrap(consent.cache.get(.init(subject: "alice", feature: "usage_analytics", scope: nil)))
        XCTAssertTrue(entry.decision.allowed)
        // Served while the core's answer was proven current (what was left of its proof when asked),
        // so never for more than the bound.
        XCTAssertGreaterThan(entry.deadline, entry.madeAt, "a fresh proof: the answer is kept")
        XCTAssertLessThanOrEqual(entry.deadline - entry.madeAt, bound)
        XCTAssertTrue(consent.cache.isFresh(entry, at: entry.madeAt))
        XCTAssertTrue(consent.cache.isFresh(entry, at: entry.deadline - 1))
        XCTAssertFalse(consent.cache.isFresh(entry, at: entry.deadline), "not served at its deadline")
        XCTAssertFalse(consent.cache.isFresh(entry, at: entry.madeAt + bound), "not served at the bound")
        XCTAssertFalse(consent.cache.isFresh(entry, at: entry.madeAt + 10 * bound))
    }

    func testAnEntryPastTheBoundIsAskedAgain() throws {
        let cache = DecisionCache(freshNanos: 1_000)
        let key = DecisionCache.Key(subject: "alice", feature: "usage_analytics", scope: nil)
        let decision = try consent.check("alice", feature: "usage_analytics")
        cache.put(key, generation: 1, decision: decision, madeAt: 5_000, limit: 10)
        let entry = try XCTUnwrap(cache.get(key))
        XCTAssertTrue(cache.isFresh(entry, at: 5_999))
        XCTAssertFalse(cache.isFresh(entry, at: 6_000))
        XCTAssertFalse(cache.isFresh(entry, at: 4_999), "a reading before the entry was made is not trusted")
    }

    func testAnEntryIsNotServedPastItsExpiry() throws {
        let cache = DecisionCache(freshNanos: 1_000)
        let key = DecisionCache.Key(subject: "alice", feature: "usage_analytics", scope: nil)
        let decision = try consent.check("alice", feature: "usage_analytics")
        cache.put(key, generation: 1, decision: decision, madeAt: 5_000, expiresIn: 300, limit: 10)
        let entry = try XCTUnwrap(cache.get(key))
        XCTAssertTrue(cache.isFresh(entry, at: 5_299))
        XCTAssertFalse(cache.isFresh(entry, at: 5_300), "not served at its validUntil, though younger than the bound")
        cache.put(key, generation: 1, decision: decision, madeAt: 5_000, expiresIn: 5_000, limit: 10)
        XCTAssertFalse(cache.isFresh(try XCTUnwrap(cache.get(key)), at: 6_000), "the bound still applies to a later expiry")
        cache.put(key, generation: 1, decision: decision, madeAt: 5_000, expiresIn: 0, limit: 10)
        XCTAssertFalse(cache.isFresh(try XCTUnwrap(cache.get(key)), at: 5_000), "an answer already expired is never served")
    }
}

/// Closes its kit from inside the write that commits (the commit listener runs on the writing thread).
private final class CloseInsideTheWrite: CommitListener, @unchecked Sendable {
    private weak var kit: RustConsentKit?
    var closeError: Error?
    var callAfterClose: Error?
    init(_ kit: RustConsentKit) { self.kit = kit }
    func onCommit(generation: UInt64) {
        do { try kit?.shutdown() } catch { closeError = error }
        do { _ = try kit?.statuses(subject: "bob") } catch { callAfterClose = error }
    }
}
