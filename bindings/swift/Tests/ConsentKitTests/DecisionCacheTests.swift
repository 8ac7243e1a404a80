@testable import ConsentKit
import Foundation
import XCTest

/// The gate cache's guarantees on its fast paths (`isAllowed`'s `allowed(subject:feature:at:)`,
/// the last-put subject of a feature and the hashed map behind it): nothing is served past the
/// cross-process bound or an expiry, of an older generation, or after close.
final class DecisionCacheTests: XCTestCase {
    let allow = CheckResult(feature: "usage_analytics", allowed: true, limited: false, reasons: [], validUntil: nil)
    let deny = CheckResult(
        feature: "usage_analytics", allowed: false, limited: false, reasons: [Reason(code: .consentWithdrawn, category: "usage_statistics")],
        validUntil: nil)

    func key(_ subject: String, scope: String? = nil) -> DecisionCache.Key {
        DecisionCache.Key(subject: subject, feature: scope == nil ? "usage_analytics" : "contact_sync", scope: scope)
    }

    func testTheFastPathServesOnlyInsideTheBoundAndTheExpiry() {
        let cache = DecisionCache(freshNanos: 1_000, generation: 7)
        cache.put(key("alice"), generation: 7, decision: allow, madeAt: 5_000, limit: 10)
        XCTAssertEqual(cache.allowed(subject: "alice", feature: "usage_analytics", at: 5_000), true)
        XCTAssertEqual(cache.allowed(subject: "alice", feature: "usage_analytics", at: 5_999), true)
        XCTAssertNil(cache.allowed(subject: "alice", feature: "usage_analytics", at: 6_000), "not at the bound")
        XCTAssertNil(cache.allowed(subject: "alice", feature: "usage_analytics", at: 4_999), "not before it was made")
        cache.put(key("alice"), generation: 7, decision: allow, madeAt: 5_000, expiresIn: 300, limit: 10)
        XCTAssertEqual(cache.allowed(subject: "alice", feature: "usage_analytics", at: 5_299), true)
        XCTAssertNil(cache.allowed(subject: "alice", feature: "usage_analytics", at: 5_300), "not at its validUntil")
        XCTAssertNil(cache.allowed(subject: "alice", feature: "calling", at: 5_000), "another feature misses")
        XCTAssertNil(cache.allowed(subject: "alicf", feature: "usage_analytics", at: 5_000), "another subject misses")
    }

    func testTheHashedPathKeepsTheSameGuaranteesAsTheLastPutSubject() {
        let cache = DecisionCache(freshNanos: 1_000, generation: 1)
        let long = "a-subject-longer-than-fifteen-bytes@example.com"
        cache.put(key(long), generation: 1, decision: allow, madeAt: 5_000, expiresIn: 500, limit: 10)
        cache.put(key("bob"), generation: 1, decision: deny, madeAt: 5_000, limit: 10)  // bob is now the last put
        XCTAssertEqual(cache.allowed(subject: "bob", feature: "usage_analytics", at: 5_100), false)
        XCTAssertEqual(cache.allowed(subject: String(long), feature: "usage_analytics", at: 5_100), true, "found by hash")
        XCTAssertNil(cache.allowed(subject: long, feature: "usage_analytics", at: 5_500), "its expiry holds on the hashed path")
        XCTAssertEqual(cache.allowed(subject: "bob", feature: "usage_analytics", at: 5_999), false)
        XCTAssertNil(cache.allowed(subject: "bob", feature: "usage_analytics", at: 6_000), "the bound holds on the last-put path")
        cache.put(key(long), generation: 1, decision: deny, madeAt: 5_000, limit: 10)
        XCTAssertEqual(cache.allowed(subject: long, feature: "usage_analytics", at: 5_100), false, "a newer answer replaces the old on both paths")
    }

    func testACommitDropsEveryEntryAndAStaleAnswerIsNotKept() {
        let cache = DecisionCache(freshNanos: 1_000, generation: 1)
        cache.put(key("alice"), generation: 1, decision: allow, madeAt: 5_000, limit: 10)
        cache.put(key("bob"), generation: 1, decision: allow, madeAt: 5_000, limit: 10)
        cache.put(key("alice", scope: "c1"), generation: 1, decision: allow, madeAt: 5_000, limit: 10)
        cache.advance(to: 2)
        for subject in ["alice", "bob"] {
            XCTAssertNil(cache.allowed(subject: subject, feature: "usage_analytics", at: 5_100), subject)
            XCTAssertNil(cache.get(key(subject)), "dropped, not only stale")
        }
        guard case .miss(let generation) = cache.lookup(key("alice", scope: "c1"), at: 5_100) else { return XCTFail("a scoped entry survived the commit") }
        XCTAssertEqual(generation, 2, "a miss hands out the new generation")
        // An answer asked before the commit (tagged 1) and put after it is not kept.
        cache.put(key("alice"), generation: 1, decision: allow, madeAt: 5_000, limit: 10)
        XCTAssertNil(cache.allowed(subject: "alice", feature: "usage_analytics", at: 5_100))
        XCTAssertNil(cache.get(key("alice")))
        cache.advance(to: 1)
        cache.put(key("alice"), generation: 2, decision: allow, madeAt: 5_000, limit: 10)
        XCTAssertEqual(cache.allowed(subject: "alice", feature: "usage_analytics", at: 5_100), true, "a generation never goes back")
    }

    func testAClosedCacheServesNothingAndTheBoundOnEntriesHolds() {
        let cache = DecisionCache(freshNanos: 1_000)
        for i in 0..<10 { cache.put(key("s\(i)"), generation: 0, decision: allow, madeAt: 5_000, limit: 4) }
        let kept = (0..<10).filter { cache.get(key("s\($0)")) != nil }.count
        XCTAssertLessThanOrEqual(kept, 4, "at most the limit")
        XCTAssertEqual(cache.allowed(subject: "s9", feature: "usage_analytics", at: 5_100), true)
        cache.close()
        XCTAssertNil(cache.allowed(subject: "s9", feature: "usage_analytics", at: 5_100))
        cache.put(key("s9"), generation: 0, decision: allow, madeAt: 5_000, limit: 4)
        XCTAssertNil(cache.allowed(subject: "s9", feature: "usage_analytics", at: 5_100), "nothing is kept after close")
    }

    func testOnTheSystemClockAWithdrawalEndsTheCachedAllowBeforeItReturns() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let consent = try ConsentManager.open(path: dir.appendingPathComponent("c.db").path)
        defer { consent.close() }
        for subject in ["alice", "bob"] { try consent.grant(subject, category: .usageStatistics) }
        for _ in 0..<3 {
            XCTAssertTrue(try consent.isAllowed("alice", feature: .usageAnalytics))
            XCTAssertTrue(try consent.isAllowed("bob", feature: .usageAnalytics))  // bob: the last put, alice: hashed
        }
        XCTAssertEqual(consent.cache.allowed(subject: "alice", feature: "usage_analytics", at: DispatchTime.now().uptimeNanoseconds), true, "served from the cache")
        try consent.withdraw("alice", category: .usageStatistics)
        XCTAssertNil(consent.cache.allowed(subject: "alice", feature: "usage_analytics", at: DispatchTime.now().uptimeNanoseconds), "gone when withdraw returned")
        XCTAssertFalse(try consent.isAllowed("alice", feature: .usageAnalytics))
        XCTAssertEqual(try consent.check("alice", feature: .usageAnalytics).reasons.map(\.code), [.consentWithdrawn])
        XCTAssertTrue(try consent.isAllowed("bob", feature: .usageAnalytics))
        try consent.withdraw("bob", category: .usageStatistics)
        XCTAssertFalse(try consent.isAllowed("bob", feature: .usageAnalytics))
    }
}
