@_spi(Testing) import ConsentKit
import Foundation
import XCTest

final class ConsentManagerTests: XCTestCase {
    var dir: URL!
    var clock: TestClock!
    var consent: ConsentManager!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        clock = try TestClock(at: Date(timeIntervalSince1970: 1_768_467_600))  // 2026-01-15T09:00:00Z
        consent = try ConsentManager.open(path: dbPath, policyJSON: nil, clock: clock)
    }

    override func tearDownWithError() throws {
        consent = nil
        try FileManager.default.removeItem(at: dir)
    }

    var dbPath: String { dir.appendingPathComponent("consent.db").path }

    func testFailsClosedThenGrantAllowsAndWithdrawalDeniesAtOnce() throws {
        let denied = try consent.check("alice", feature: "usage_analytics")
        XCTAssertFalse(denied.allowed)
        XCTAssertEqual(denied.reasons.first?.code, .consentNotAsked)
        XCTAssertTrue(try consent.isAllowed("alice", feature: "calling"))
        let receipt = try consent.grant("alice", category: "usage_statistics", source: .onboarding)
        XCTAssertEqual(receipt.seq, 1)
        XCTAssertEqual(receipt.at, ISO8601DateFormatter().date(from: "2026-01-15T09:00:00Z"), "times are Dates")
        XCTAssertEqual(try consent.status("alice", category: "usage_statistics").since, receipt.at)
        XCTAssertTrue(try consent.isAllowed("alice", feature: "usage_analytics"))
        XCTAssertTrue(try consent.isAllowed("alice", feature: "usage_analytics"), "served from the Swift cache")
        try consent.withdraw("alice", category: "usage_statistics")
        XCTAssertEqual(try consent.check("alice", feature: "usage_analytics").reasons.first?.code, .consentWithdrawn)
    }

    func testTheCachedGateHonoursExpiry() throws {
        let receipt = try consent.grant("alice", category: "usage_statistics")
        XCTAssertTrue(try consent.isAllowed("alice", feature: "usage_analytics"))
        try clock.set(at: try XCTUnwrap(receipt.validUntil).addingTimeInterval(-0.001))
        XCTAssertTrue(try consent.isAllowed("alice", feature: "usage_analytics"))
        try clock.set(at: try XCTUnwrap(receipt.validUntil))
        XCTAssertEqual(try consent.check("alice", feature: "usage_analytics").reasons.first?.code, .consentExpired)
        XCTAssertEqual(try consent.recordExpiries().count, 1)
    }

    func testEveryDecisionKindOSPermissionsAgeAndScopes() throws {
        try consent.refuse("alice", category: "photos_media", source: .onboarding)
        XCTAssertEqual(try consent.status("alice", category: "photos_media").status, .refused)
        try consent.object("alice", category: "contact_information")
        XCTAssertEqual(try consent.status("alice", category: "contact_information").status, .objected)
        try consent.withdrawObjection("alice", category: "contact_information")
        XCTAssertEqual(try consent.status("alice", category: "contact_information").status, .notRequired)
        try consent.grant("alice", category: "device_contacts")
        XCTAssertEqual(try consent.check("alice", feature: "contact_lookup").reasons.first?.code, .osPermissionNotDetermined)
        XCTAssertEqual(try consent.osPermissionState(.contacts), .notDetermined)
        XCTAssertNotNil(try consent.reportOSPermission(.contacts, state: .granted))
        XCTAssertNil(try consent.reportOSPermission(.contacts, state: .granted), "an unchanged state records nothing")
        XCTAssertEqual(try consent.osPermissionState(.contacts), .granted)
        try consent.grant("alice", category: "device_contacts", scope: "contact-1")
        XCTAssertTrue(try consent.isAllowed("alice", feature: "contact_sync", scope: "contact-1"))
        XCTAssertEqual(try consent.check("alice", feature: "contact_sync", scope: "contact-2").reasons.first?.code, .scopeNotGranted)
        try consent.markUnderAge("kid", source: .onboarding)
        XCTAssertThrowsError(try consent.grant("kid", category: "usage_statistics")) { XCTAssertEqual(Names.errorKind($0), "under_age") }
        try consent.grant("kid", category: "usage_statistics", source: .guardian)
        XCTAssertTrue(try consent.isAllowed("kid", feature: "usage_analytics"))
        try consent.markUnderAge("kid", isUnderAge: false, source: .guardian)
        XCTAssertNoThrow(try consent.grant("kid", category: "photos_media"), "no longer under age: the own grant is accepted")
        XCTAssertEqual(try consent.statuses("alice").count, 8)
        XCTAssertTrue(try consent.history("alice").contains { $0.action == .osPermission })
    }

    func testABatchCommitsAllOrNothing() throws {
        let bad = [
            ConsentChoice(subject: "alice", category: "usage_statistics", action: .grant, scope: nil, source: .onboarding),
            ConsentChoice(subject: "alice", category: "nope", action: .grant, scope: nil, source: .onboarding),
        ]
        XCTAssertThrowsError(try consent.record(bad)) { XCTAssertEqual(Names.errorKind($0), "unknown_category") }
        XCTAssertEqual(try consent.status("alice", category: "usage_statistics").status, .notAsked)
        XCTAssertEqual(try consent.record(Array(bad.prefix(1))).count, 1)
    }

    func testErrorsAreTypedAndNameTheBadValue() throws {
        XCTAssertThrowsError(try consent.check("alice", feature: "teleport")) { error in
            XCTAssertEqual(Names.errorKind(error), "unknown_feature")
            XCTAssertTrue("\(error)".contains("teleport"))
        }
        XCTAssertThrowsError(try consent.grant("alice", category: "usage_statistics", source: .support)) {
            XCTAssertEqual(Names.errorKind($0), "grant_by_support")
        }
        XCTAssertThrowsError(try consent.grant("alice", category: "traffic_data")) { XCTAssertEqual(Names.errorKind($0), "not_applicable") }
        XCTAssertThrowsError(try consent.grant("", category: "usage_statistics")) { XCTAssertEqual(Names.errorKind($0), "invalid_input") }
        XCTAssertThrowsError(try ConsentManager.open(path: dir.appendingPathComponent("p.db").path, policyJSON: "{\"id\":\"x\"}")) {
            XCTAssertEqual(Names.errorKind($0), "invalid_policy")
        }
        XCTAssertThrowsError(try consent.importJSON("{}")) { XCTAssertEqual(Names.errorKind($0), "import_rejected") }
        XCTAssertEqual(try consent.history("alice").count, 0)
    }

    func testErrorsReadAsASentenceNamingTheBadValue() throws {
        XCTAssertThrowsError(try consent.check("alice", feature: "teleport")) { error in
            XCTAssertEqual(error.localizedDescription, "Unknown feature 'teleport'.")
            XCTAssertEqual("\(error)", "Unknown feature 'teleport'.")
            XCTAssertEqual((error as? ConsentKitError)?.message, "unknown feature 'teleport'")
        }
        let failures: [(String, () throws -> Void)] = [
            ("nope", { try self.consent.grant("alice", category: "nope") }),
            ("support", { try self.consent.grant("alice", category: "usage_statistics", source: .support) }),
            ("traffic_data", { try self.consent.grant("alice", category: "traffic_data") }),
        ]
        for (value, call) in failures {
            XCTAssertThrowsError(try call()) { error in
                let text = error.localizedDescription
                XCTAssertTrue(text.contains(value), "\(text) names \(value)")
                XCTAssertEqual(text.first.map { String($0) }, text.first.map { String($0).uppercased() }, text)
                XCTAssertTrue(text.hasSuffix("."), text)
                XCTAssertFalse(text.contains("ConsentKitError"), "not a debug dump: \(text)")
                XCTAssertEqual("\(error)", text)
            }
        }
    }

    func testADamagedStoreFailsClosedOrThrowsWhenStrict() throws {
        let damaged = dir.appendingPathComponent("damaged.db")
        try Data(repeating: 7, count: 8192).write(to: damaged)
        XCTAssertThrowsError(try ConsentManager.openStrict(path: damaged.path)) { XCTAssertEqual(Names.errorKind($0), "store_unavailable") }
        let gate = try ConsentManager.open(path: damaged.path)
        XCTAssertNotNil(try gate.unavailable)
        XCTAssertEqual(try gate.check("alice", feature: "usage_analytics").reasons.first?.code, .storeUnavailable)
        XCTAssertTrue(try gate.isAllowed("alice", feature: "calling"))
    }

    func testADamagedStoreSaysWhyTypedAndIsQuarantinedAndReopened() async throws {
        XCTAssertNil(try consent.unavailableReason)
        do {
            _ = try await consent.quarantineAndReopen()
            XCTFail("a healthy store is never moved")
        } catch {
            XCTAssertEqual(Names.errorKind(error), "invalid_input")
        }
        let damaged = dir.appendingPathComponent("damaged.db")
        try Data(repeating: 7, count: 8192).write(to: damaged)
        let gate = try await ConsentManager.open(path: damaged.path)
        let reason = try XCTUnwrap(try gate.unavailableReason)
        XCTAssertEqual(reason.kind, .damaged)
        XCTAssertTrue(reason.canQuarantine)
        XCTAssertTrue(reason.message.contains("damaged.db"), reason.message)
        let recovered = try await gate.quarantineAndReopen()
        XCTAssertTrue(gate.isClosed)
        XCTAssertNil(try recovered.manager.unavailableReason, "a fresh store")
        XCTAssertTrue(FileManager.default.fileExists(atPath: recovered.quarantinedAt), "kept for support")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: recovered.quarantinedAt)), Data(repeating: 7, count: 8192))
        try await recovered.manager.grant("alice", category: .usageStatistics)
        XCTAssertTrue(try recovered.manager.isAllowed("alice", feature: .usageAnalytics))
        await recovered.manager.close()
        let second = try await ConsentManager.open(path: dbPath)  // `consent` has the file open
        XCTAssertEqual(try second.unavailableReason?.kind, .alreadyOpen)
        XCTAssertEqual(try second.unavailableReason?.canQuarantine, false)
        do {
            _ = try await second.quarantineAndReopen()
            XCTFail("a file another manager has open is never moved")
        } catch {
            XCTAssertEqual(Names.errorKind(error), "invalid_input")
        }
        XCTAssertTrue(try consent.isAllowed("alice", feature: .calling), "the open store is untouched")
    }

    func testPolicyJSONIsTheCatalogInForce() throws {
        let builtin = try JSONSerialization.jsonObject(with: Data(try consent.policyJSON.utf8)) as? [String: Any]
        XCTAssertEqual(builtin?["id"] as? String, "ucanywhere")
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../../../tests/fixtures/wk360.json")
        let other = try ConsentManager.open(path: dir.appendingPathComponent("wk.db").path, policyJSON: try String(contentsOf: fixture, encoding: .utf8))
        let wk = try JSONSerialization.jsonObject(with: Data(try other.policyJSON.utf8)) as? [String: Any]
        let wanted = try JSONSerialization.jsonObject(with: Data(contentsOf: fixture)) as? [String: Any]
        XCTAssertEqual(wk?["id"] as? String, wanted?["id"] as? String)
        XCTAssertNotEqual(wk?["id"] as? String, "ucanywhere")
    }

    func testProofAndRights() throws {
        try consent.grant("alice", category: "usage_statistics", source: .onboarding)
        try consent.withdraw("alice", category: "usage_statistics")
        let document = try consent.exportJSON("alice")
        let other = try ConsentManager.open(path: dir.appendingPathComponent("other.db").path, policyJSON: nil, clock: clock)
        XCTAssertEqual(try other.importJSON(document).count, 2)
        XCTAssertEqual(try other.statuses("alice"), try consent.statuses("alice"))
        XCTAssertEqual(try consent.pendingSync(limit: 10).map { $0.seq }, [1, 2])
        try consent.ackSync(upToSeq: 1)
        XCTAssertEqual(try consent.pendingSync().map { $0.seq }, [2])
        XCTAssertThrowsError(try consent.pendingSync(limit: -1)) { XCTAssertEqual("\($0)", "The pendingSync limit -1 is negative.") }
        let erased = try consent.erase("alice", source: .support)
        XCTAssertEqual(erased.erasedEvents, 2)
        // No reader held an old snapshot: the erasure scrubbed the WAL itself, and finishScrub
        // finds nothing left.
        XCTAssertFalse(erased.scrubPending)
        XCTAssertTrue(try consent.finishScrub())
        XCTAssertEqual(try consent.status("alice", category: "usage_statistics").status, .notAsked)
        XCTAssertEqual(try consent.purge().removedEvents, 0)
        let report = try consent.verify()
        XCTAssertTrue(report.intact)
        XCTAssertEqual(report.events, 3)
    }

    // MARK: - Lifecycle

    func testCloseIsIdempotentAndEveryLaterCallThrowsClosed() throws {
        XCTAssertFalse(consent.isClosed)
        XCTAssertNil(try consent.unavailable)
        XCTAssertTrue(try consent.isAllowed("alice", feature: "calling"), "a cached answer before close")
        consent.close()
        consent.close()
        XCTAssertTrue(consent.isClosed)
        let consent = self.consent!
        let calls: [(String, () throws -> Void)] = [
            ("check (was cached)", { _ = try consent.isAllowed("alice", feature: "calling") }),
            ("grant", { try consent.grant("alice", category: "usage_statistics") }),
            ("policyJSON", { _ = try consent.policyJSON }),
            ("unavailable", { _ = try consent.unavailable }),
            ("osPermissionState", { _ = try consent.osPermissionState(.photos) }),
            ("observe", { _ = try consent.observe(nil) { _ in } }),
        ]
        for (name, call) in calls {
            XCTAssertThrowsError(try call(), name) { XCTAssertEqual(Names.errorKind($0), "closed", "\(name): \($0)") }
        }
    }

    func testAfterCloseTheFileReopensWithItsHistory() throws {
        try consent.grant("alice", category: "usage_statistics")
        XCTAssertThrowsError(try ConsentManager.openStrict(path: dbPath), "one store per file per process while open")
        consent.close()
        let reopened = try ConsentManager.openStrict(path: dbPath)
        XCTAssertTrue(try reopened.isAllowed("alice", feature: "usage_analytics"))
    }

    func testNoCheckThatStartsAfterCloseSucceeds() throws {
        try consent.grant("alice", category: "usage_statistics")
        let consent = self.consent!
        let closed = ManagedCounter()
        let wrong = ManagedCounter()
        DispatchQueue.concurrentPerform(iterations: 4) { thread in
            for i in 0..<200 {
                if thread == 0 && i == 100 {
                    consent.close()
                    closed.add()
                }
                let startedAfterClose = closed.value > 0
                do {
                    _ = try consent.check("alice", feature: "usage_analytics")
                    if startedAfterClose { wrong.add() }
                } catch {
                    if !startedAfterClose && !consent.isClosed { wrong.add() }
                    if Names.errorKind(error) != "closed" { wrong.add() }
                }
            }
        }
        XCTAssertEqual(wrong.value, 0)
        XCTAssertNoThrow(try ConsentManager.openStrict(path: dbPath), "close waited for the calls in flight: the file is free")
    }

    // MARK: - async variants

    func testTheAsyncVariantsWorkOffTheCallersThread() async throws {
        let (callerOnMain, workOnMain) = try await Task { @MainActor in
            (Thread.isMainThread, try await offCaller { Thread.isMainThread })
        }.value
        XCTAssertTrue(callerOnMain)
        XCTAssertFalse(workOnMain, "called from the main actor, the work ran elsewhere")
        let consent = self.consent!
        let receipt = try await consent.grant("alice", category: "usage_statistics", source: .onboarding)
        XCTAssertTrue(try consent.isAllowed("alice", feature: "usage_analytics"))
        try await consent.withdraw("alice", category: "usage_statistics")
        XCTAssertFalse(try consent.isAllowed("alice", feature: "usage_analytics"), "denied once the async withdraw returned")
        try await consent.record([ConsentChoice(subject: "bob", category: "photos_media", action: .refuse, scope: nil, source: .onboarding)])
        let got1 = try await consent.reportOSPermission(.photos, state: .limited)?.osState
        XCTAssertEqual(got1, .limited)
        try await consent.markUnderAge("kid", isUnderAge: true, source: .onboarding)
        let got2 = try await consent.history("alice").first
        XCTAssertEqual(got2, receipt)
        let exported = try await consent.exportJSON("alice")
        let other = try await ConsentManager.openStrict(path: dir.appendingPathComponent("other.db").path)
        let got3 = try await other.importJSON(exported).count
        XCTAssertEqual(got3, 2)
        await other.close()
        let got4 = try await consent.verify().events
        XCTAssertEqual(got4, 5)
        let got5 = try await consent.pendingSync(limit: 10).count
        XCTAssertEqual(got5, 5)
        try await consent.ackSync(upToSeq: 5)
        let got6 = try await consent.pendingSync().count
        XCTAssertEqual(got6, 0)
        let got7 = try await consent.recordExpiries()
        XCTAssertEqual(got7, [])
        let got8 = try await consent.erase("bob").erasedEvents
        XCTAssertEqual(got8, 1)
        let got9 = try await consent.purge().removedEvents
        XCTAssertEqual(got9, 0)
        XCTAssertThrowsError(try consent.check("alice", feature: "teleport"))
        await consent.close()
        do {
            try await consent.grant("alice", category: "usage_statistics")
            XCTFail("a write after close must throw")
        } catch {
            XCTAssertEqual(Names.errorKind(error), "closed")
        }
    }

    // MARK: - Observing (every wait is bounded: a lost event fails, it never hangs the run)

    func testTheAsyncStreamGivesCurrentStateThenChanges() async throws {
        try await consent.grant("alice", category: "photos_media")
        let consent = self.consent!
        let seen = try await consume(consent.changes(of: "alice"), waitingFor: "8 current statuses, then the withdrawal") { seen in
            if seen.count == 8 { try consent.withdraw("alice", category: "photos_media") }
            return seen.count == 9
        }
        XCTAssertEqual(seen.changes.prefix(8).first { $0.category == "photos_media" }?.status, .granted)
        XCTAssertEqual(seen.changes.last?.category, "photos_media")
        XCTAssertEqual(seen.changes.last?.status, .withdrawn)
    }

    func testAStreamIsToldOfAnExpiryAtItsTimeWithoutAWrite() async throws {
        let receipt = try await consent.grant("alice", category: .usageStatistics)
        let until = try XCTUnwrap(receipt.validUntil)
        let (consent, clock) = (self.consent!, self.clock!)
        let seen = try await consume(consent.changes(of: "alice"), waitingFor: "the expiry, told at its time") { seen in
            if seen.count == 8 { try clock.set(at: until) }
            return seen.last?.status == .expired
        }
        XCTAssertEqual(seen.changes.last?.category, "usage_statistics")
        XCTAssertEqual(seen.changes.last?.since, until)
        XCTAssertEqual(seen.changes.count, 9, "the 8 current statuses, then the expiry alone")
        let model = try await MainActor.run { try consent.statusesModel(of: "alice") }
        let status = await MainActor.run { model.status(of: .usageStatistics) }
        XCTAssertEqual(status, .expired)
    }

    func testTheStreamFinishesWhenTheManagerClosesAfterWhatWasCommitted() async throws {
        let consent = self.consent!
        let stream = try consent.changes(of: "alice")
        try await consent.grant("alice", category: "usage_statistics")
        await consent.close()
        let seen = try await consume(stream, waitingFor: "the stream to finish after close()")
        XCTAssertTrue(seen.finished)
        XCTAssertEqual(seen.changes.count, 9, "8 current statuses and the grant committed before close: \(seen.changes.map { "\($0.category)=\($0.status)@\($0.generation)" })")
        XCTAssertEqual(seen.changes.last?.status, .granted)
    }

    func testTheStreamFinishesWhenTheManagerIsReleased() async throws {
        let stream = try consent.changes(of: nil)
        consent = nil
        let seen = try await consume(stream, waitingFor: "the stream to finish once the manager is gone")
        XCTAssertTrue(seen.finished)
    }

    func testAStreamOfAClosedManagerIsFinishedAtOnce() async throws {
        await consent.close()
        let seen = try await consume(consent.changes(of: "alice"), waitingFor: "an already finished stream")
        XCTAssertTrue(seen.finished)
        XCTAssertTrue(seen.changes.isEmpty)
    }

    /// A stream cannot carry an error, so a malformed subject is refused when the stream is asked
    /// for, with the same typed error `observe` throws, naming the value (it used to end silently).
    func testAStreamOfAMalformedSubjectThrowsInvalidInputNamingIt() async throws {
        for (bad, shown) in [("", "''"), ("   ", "'   '"), ("a\u{1}b", "a\\u{1}b"), (String(repeating: "s", count: 300), "300 bytes")] {
            XCTAssertThrowsError(try consent.changes(of: bad), "changes(of: \(bad.debugDescription))") { error in
                guard case ConsentKitError.InvalidInput(let message) = error else { return XCTFail("expected .InvalidInput, got \(error)") }
                XCTAssertTrue(message.contains("subject") && message.contains(shown), "the message names the subject: \(message)")
            }
            XCTAssertThrowsError(try consent.observe(bad) { _ in }) { error in
                guard case ConsentKitError.InvalidInput = error else { return XCTFail("observe: expected .InvalidInput, got \(error)") }
            }
        }
        // A subject with no record yet is valid: its current (unset) statuses, then its changes.
        let consent = self.consent!
        let seen = try await consume(consent.changes(of: "nobody-yet"), waitingFor: "8 statuses of a new subject, then its grant") { seen in
            if seen.count == 8 { try consent.grant("nobody-yet", category: "usage_statistics") }
            return seen.count == 9
        }
        XCTAssertEqual(seen.changes.last?.status, .granted)
    }

    func testAnObservationTokenStopsItsListener() async throws {
        let delivered = ManagedCounter()
        let initial = expectation(description: "the 8 current statuses")
        initial.expectedFulfillmentCount = 8
        let token = try consent.observe("alice") { _ in
            delivered.add()
            initial.fulfill()
        }
        await fulfillment(of: [initial], timeout: 20)
        token.cancel()
        token.cancel()
        // A change after cancel: a stream subscribed later sees it, the cancelled listener does not.
        let consent = self.consent!
        let after = try await consume(consent.changes(of: "alice"), waitingFor: "the grant after cancel") { seen in
            if seen.count == 8 { try consent.grant("alice", category: "usage_statistics") }
            return seen.count == 9
        }
        XCTAssertEqual(after.changes.last?.status, .granted)
        XCTAssertEqual(delivered.value, 8)
    }

    func testManyThreadsNeverSeeAWithdrawnFeatureAllowed() throws {
        let consent = self.consent!
        let violations = ManagedCounter()
        DispatchQueue.concurrentPerform(iterations: 8) { t in
            let me = "user-\(t)"
            for _ in 0..<40 {
                do {
                    try consent.grant(me, category: "usage_statistics")
                    if try !consent.isAllowed(me, feature: "usage_analytics") { violations.add() }
                    try consent.withdraw(me, category: "usage_statistics")
                    if try consent.isAllowed(me, feature: "usage_analytics") { violations.add() }
                } catch {
                    violations.add()
                }
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
