import ConsentKit
import Foundation
import XCTest

final class ConsentManagerTests: XCTestCase {
    var dir: URL!
    var clock: TestClock!
    var consent: ConsentManager!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        clock = TestClock(millis: 1_768_467_600_000) // 2026-01-15T09:00:00Z
        consent = try ConsentManager.open(path: dir.appendingPathComponent("consent.db").path, policyJson: nil, clock: clock)
    }

    override func tearDownWithError() throws {
        consent = nil
        try? FileManager.default.removeItem(at: dir)
    }

    func testFailsClosedThenGrantAllowsAndWithdrawalDeniesAtOnce() throws {
        let denied = try consent.check("alice", feature: "usage_analytics")
        XCTAssertFalse(denied.allowed)
        XCTAssertEqual(denied.reasons.first?.code, .consentNotAsked)
        XCTAssertTrue(try consent.isAllowed("alice", feature: "calling"))
        let receipt = try consent.grant("alice", category: "usage_statistics", source: .onboarding)
        XCTAssertEqual(receipt.seq, 1)
        XCTAssertTrue(try consent.isAllowed("alice", feature: "usage_analytics"))
        XCTAssertTrue(try consent.isAllowed("alice", feature: "usage_analytics"), "served from the Swift cache")
        try consent.withdraw("alice", category: "usage_statistics")
        XCTAssertEqual(try consent.check("alice", feature: "usage_analytics").reasons.first?.code, .consentWithdrawn)
    }

    func testTheCachedGateHonoursExpiry() throws {
        let receipt = try consent.grant("alice", category: "usage_statistics")
        XCTAssertTrue(try consent.isAllowed("alice", feature: "usage_analytics"))
        clock.set(millis: receipt.validUntil! - 1)
        XCTAssertTrue(try consent.isAllowed("alice", feature: "usage_analytics"))
        clock.set(millis: receipt.validUntil!)
        XCTAssertEqual(try consent.check("alice", feature: "usage_analytics").reasons.first?.code, .consentExpired)
        XCTAssertEqual(try consent.recordExpiries().count, 1)
    }

    func testEveryDecisionKindOsPermissionsAgeAndScopes() throws {
        try consent.refuse("alice", category: "photos_media", source: .onboarding)
        XCTAssertEqual(try consent.status("alice", category: "photos_media").status, .refused)
        try consent.object("alice", category: "contact_information")
        XCTAssertEqual(try consent.status("alice", category: "contact_information").status, .objected)
        try consent.withdrawObjection("alice", category: "contact_information")
        XCTAssertEqual(try consent.status("alice", category: "contact_information").status, .notRequired)
        try consent.grant("alice", category: "device_contacts")
        XCTAssertEqual(try consent.check("alice", feature: "contact_lookup").reasons.first?.code, .osPermissionNotDetermined)
        XCTAssertNotNil(try consent.reportOsPermission(.contacts, state: .granted))
        XCTAssertNil(try consent.reportOsPermission(.contacts, state: .granted))
        XCTAssertEqual(consent.osPermission(.contacts), .granted)
        try consent.grant("alice", category: "device_contacts", scope: "contact-1")
        XCTAssertTrue(try consent.isAllowed("alice", feature: "contact_sync", scope: "contact-1"))
        XCTAssertEqual(try consent.check("alice", feature: "contact_sync", scope: "contact-2").reasons.first?.code, .scopeNotGranted)
        try consent.markUnderAge("kid", source: .onboarding)
        XCTAssertThrowsError(try consent.grant("kid", category: "usage_statistics")) { XCTAssertEqual(Names.errorKind($0), "under_age") }
        try consent.grant("kid", category: "usage_statistics", source: .guardian)
        XCTAssertTrue(try consent.isAllowed("kid", feature: "usage_analytics"))
        XCTAssertEqual(try consent.statuses("alice").count, 8)
        XCTAssertTrue(try consent.history("alice").contains { $0.action == .osPermission })
    }

    func testABatchCommitsAllOrNothing() throws {
        let bad = [DecisionInput(subject: "alice", category: "usage_statistics", action: .grant, scope: nil, source: .onboarding),
                   DecisionInput(subject: "alice", category: "nope", action: .grant, scope: nil, source: .onboarding)]
        XCTAssertThrowsError(try consent.record(bad)) { XCTAssertEqual(Names.errorKind($0), "unknown_category") }
        XCTAssertEqual(try consent.status("alice", category: "usage_statistics").status, .notAsked)
        XCTAssertEqual(try consent.record(Array(bad.prefix(1))).count, 1)
    }

    func testErrorsAreTypedAndNameTheBadValue() throws {
        XCTAssertThrowsError(try consent.check("alice", feature: "teleport")) { error in
            XCTAssertEqual(Names.errorKind(error), "unknown_feature")
            XCTAssertTrue("\(error)".contains("teleport"))
        }
        XCTAssertThrowsError(try consent.grant("alice", category: "usage_statistics", source: .support)) { XCTAssertEqual(Names.errorKind($0), "grant_by_support") }
        XCTAssertThrowsError(try consent.grant("alice", category: "traffic_data")) { XCTAssertEqual(Names.errorKind($0), "not_applicable") }
        XCTAssertThrowsError(try consent.grant("", category: "usage_statistics")) { XCTAssertEqual(Names.errorKind($0), "invalid_input") }
        XCTAssertThrowsError(try ConsentManager.open(path: dir.appendingPathComponent("p.db").path, policyJson: "{\"id\":\"x\"}")) { XCTAssertEqual(Names.errorKind($0), "invalid_policy") }
        XCTAssertThrowsError(try consent.import("{}")) { XCTAssertEqual(Names.errorKind($0), "import_rejected") }
        XCTAssertEqual(try consent.history("alice").count, 0)
    }

    func testADamagedStoreFailsClosedOrThrowsWhenStrict() throws {
        let damaged = dir.appendingPathComponent("damaged.db")
        try Data(repeating: 7, count: 8192).write(to: damaged)
        XCTAssertThrowsError(try ConsentManager.openStrict(path: damaged.path)) { XCTAssertEqual(Names.errorKind($0), "store_unavailable") }
        let gate = try ConsentManager.open(path: damaged.path)
        XCTAssertNotNil(gate.unavailable)
        XCTAssertEqual(try gate.check("alice", feature: "usage_analytics").reasons.first?.code, .storeUnavailable)
        XCTAssertTrue(try gate.isAllowed("alice", feature: "calling"))
    }

    func testProofAndRights() throws {
        try consent.grant("alice", category: "usage_statistics", source: .onboarding)
        try consent.withdraw("alice", category: "usage_statistics")
        let document = try consent.export("alice")
        let other = try ConsentManager.open(path: dir.appendingPathComponent("other.db").path, policyJson: nil, clock: clock)
        XCTAssertEqual(try other.import(document).count, 2)
        XCTAssertEqual(try other.statuses("alice"), try consent.statuses("alice"))
        XCTAssertEqual(try consent.pendingSync(limit: 10).map { $0.seq }, [1, 2])
        try consent.ackSync(upToSeq: 1)
        XCTAssertEqual(try consent.pendingSync().map { $0.seq }, [2])
        XCTAssertEqual(try consent.erase("alice", source: .support).erasedEvents, 2)
        XCTAssertEqual(try consent.status("alice", category: "usage_statistics").status, .notAsked)
        XCTAssertEqual(try consent.purge().removedEvents, 0)
        let report = try consent.verify()
        XCTAssertTrue(report.intact)
        XCTAssertEqual(report.events, 3)
    }

    func testTheAsyncStreamGivesCurrentStateThenChanges() async throws {
        try consent.grant("alice", category: "photos_media")
        let stream = consent.changes(of: "alice")
        var seen: [StatusChange] = []
        for await change in stream {
            seen.append(change)
            if seen.count == 8 { try consent.withdraw("alice", category: "photos_media") }
            if seen.count == 9 { break }
        }
        XCTAssertEqual(seen.first { $0.category == "photos_media" }?.status, .granted)
        XCTAssertEqual(seen.last?.status, .withdrawn)
    }

    func testManyThreadsNeverSeeAWithdrawnFeatureAllowed() throws {
        let violations = ManagedCounter()
        DispatchQueue.concurrentPerform(iterations: 8) { t in
            for _ in 0..<40 {
                let me = "user-\(t)"
                _ = try? consent.grant(me, category: "usage_statistics")
                if (try? consent.isAllowed(me, feature: "usage_analytics")) != true { violations.add() }
                _ = try? consent.withdraw(me, category: "usage_statistics")
                if (try? consent.isAllowed(me, feature: "usage_analytics")) != false { violations.add() }
            }
        }
        XCTAssertEqual(violations.value, 0)
        XCTAssertEqual(try consent.verify().events, 640)
    }
}

final class ManagedCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add() { lock.lock(); count += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}
