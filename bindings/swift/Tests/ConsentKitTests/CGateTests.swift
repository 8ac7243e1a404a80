@_spi(Testing) import ConsentKit
import ConsentKitFFI
import ConsentKitFFIC
import Foundation
import XCTest

/// The C gate (`CGate`, `bindings/src/c_gate.rs`) answers exactly what the uniffi `check` answers,
/// and where it cannot answer it says nothing (the caller then asks uniffi), never an allow.
final class CGateTests: XCTestCase {
    var dir: URL!
    var clock: TestClock!
    var kit: RustConsentKit!
    var gate: CGate!
    /// The built-in catalog plus `contact_insights`, a feature on the legitimate-interest
    /// category `contact_information` (so an objection is a reason).
    var policy: String!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        clock = try TestClock(at: Date(timeIntervalSince1970: 1_768_467_600))  // 2026-01-15T09:00:00Z
        policy = try Self.policy(purposeVersion: 1)
        kit = try RustConsentKit.openWithClock(path: dir.appendingPathComponent("gate.db").path, policyJson: policy, clock: clock)
        XCTAssertTrue(CGate.usable, "the library's gate layout is the one CGate.swift reads")
        gate = try XCTUnwrap(CGate.register(kit))
    }

    override func tearDownWithError() throws {
        try? kit?.shutdown()
        kit = nil
        try FileManager.default.removeItem(at: dir)
    }

    static func policy(purposeVersion: Int) throws -> String {
        let builtin = try RustConsentKit.open(path: FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString).path, policyJson: nil)
        defer { try? builtin.shutdown() }
        var json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(try builtin.policyJson().utf8)) as? [String: Any])
        var features = try XCTUnwrap(json["features"] as? [[String: Any]])
        features.append(["id": "contact_insights", "title": "Insights from business contacts", "categories": ["contact_information"]])
        json["features"] = features
        var categories = try XCTUnwrap(json["categories"] as? [[String: Any]])
        for i in categories.indices where categories[i]["id"] as? String == "usage_statistics" {
            categories[i]["purpose_version"] = purposeVersion
        }
        json["categories"] = categories
        return String(decoding: try JSONSerialization.data(withJSONObject: json), as: UTF8.self)
    }

    /// Asks both; asserts the C gate answered the uniffi decision, or nothing where uniffi threw.
    /// Returns uniffi's decision (nil: it threw).
    @discardableResult
    func same(_ subject: String, _ feature: String, scope: String? = nil, on kit: RustConsentKit? = nil, gate: CGate? = nil,
              file: StaticString = #filePath, line: UInt = #line) -> CheckResult? {
        let kit = kit ?? self.kit!
        let viaGate = (gate ?? self.gate).check(subject: subject, feature: feature, scope: scope)?.decision
        do {
            let viaUniffi = try kit.check(subject: subject, feature: feature, scope: scope)
            XCTAssertEqual(viaGate, viaUniffi, "\(subject) \(feature) \(scope ?? "-")", file: file, line: line)
            return viaUniffi
        } catch {
            XCTAssertNil(viaGate, "uniffi threw \(error), the gate must not answer", file: file, line: line)
            return nil
        }
    }

    func codes(_ decision: CheckResult?) -> [ReasonCode] { decision?.reasons.map(\.code) ?? [] }

    // MARK: - Allow and every reason family

    func testAllowedAnswersCarryValidUntilAndNoReasons() throws {
        let receipt = try kit.grant(subject: "alice", category: "usage_statistics", scope: nil, source: .settings)
        let decision = try XCTUnwrap(same("alice", "usage_analytics"))
        XCTAssertTrue(decision.allowed)
        XCTAssertEqual(decision.reasons, [])
        XCTAssertEqual(decision.validUntil, receipt.validUntil)
        XCTAssertTrue(try XCTUnwrap(same("alice", "calling")).allowed, "a contract category needs no consent")
        _ = try kit.setOsPermission(permission: "photos", state: .limited)
        _ = try kit.grant(subject: "alice", category: "photos_media", scope: nil, source: .settings)
        let limited = try XCTUnwrap(same("alice", "photo_sharing"))
        XCTAssertTrue(limited.allowed && limited.limited, "\(limited)")
    }

    func testEveryReasonFamilyIsTheUniffiAnswer() throws {
        XCTAssertEqual(codes(same("alice", "usage_analytics")), [.consentNotAsked])
        _ = try kit.refuse(subject: "alice", category: "photos_media", scope: nil, source: .onboarding)
        XCTAssertEqual(Set(codes(same("alice", "photo_sharing"))), [.consentRefused, .osPermissionNotDetermined])
        _ = try kit.grant(subject: "alice", category: "usage_statistics", scope: nil, source: .settings)
        _ = try kit.withdraw(subject: "alice", category: "usage_statistics", scope: nil, source: .settings)
        XCTAssertEqual(codes(same("alice", "usage_analytics")), [.consentWithdrawn])
        _ = try kit.object(subject: "alice", category: "contact_information", source: .settings)
        XCTAssertEqual(codes(same("alice", "contact_insights")), [.objected])
        _ = try kit.grant(subject: "alice", category: "device_contacts", scope: nil, source: .settings)
        _ = try kit.grant(subject: "alice", category: "device_contacts", scope: "contact-1", source: .settings)
        _ = try kit.setOsPermission(permission: "contacts", state: .granted)
        XCTAssertTrue(try XCTUnwrap(same("alice", "contact_sync", scope: "contact-1")).allowed)
        XCTAssertEqual(codes(same("alice", "contact_sync", scope: "contact-2")), [.scopeNotGranted])
        for (state, code) in [(OSPermissionState.denied, ReasonCode.osPermissionDenied), (.restricted, .osPermissionRestricted)] {
            _ = try kit.setOsPermission(permission: "contacts", state: state)
            XCTAssertEqual(codes(same("alice", "contact_lookup")), [code])
        }
        _ = try kit.grant(subject: "bob", category: "usage_statistics", scope: nil, source: .settings)
        _ = try kit.setUnderAge(subject: "bob", underAge: true, source: .settings)
        XCTAssertTrue(codes(same("bob", "usage_analytics")).contains(.underAge))
        // Not-ASCII and heap-allocated (not small) strings cross as they are.
        let long = "ålice-😀-a-subject-id-longer-than-fifteen-bytes@example.com"
        _ = try kit.grant(subject: long, category: "usage_statistics", scope: nil, source: .settings)
        XCTAssertTrue(try XCTUnwrap(same(long, "usage_analytics")).allowed)
        XCTAssertEqual(codes(same(long + "x", "usage_analytics")), [.consentNotAsked])
    }

    func testExpiryAndRenewalAreTheUniffiAnswer() throws {
        let receipt = try kit.grant(subject: "alice", category: "usage_statistics", scope: nil, source: .settings)
        try clock.set(at: try XCTUnwrap(receipt.validUntil))
        XCTAssertEqual(codes(same("alice", "usage_analytics")), [.consentExpired])
        // A new purpose version: the old grant asks for renewal.
        _ = try kit.grant(subject: "alice", category: "usage_statistics", scope: nil, source: .settings)
        try kit.shutdown()
        kit = try RustConsentKit.openWithClock(path: dir.appendingPathComponent("gate.db").path, policyJson: try Self.policy(purposeVersion: 2), clock: clock)
        gate = try XCTUnwrap(CGate.register(kit))
        XCTAssertEqual(codes(same("alice", "usage_analytics")), [.renewalRequired])
    }

    func testAFailClosedStoreDeniesWithStoreUnavailable() throws {
        let damaged = dir.appendingPathComponent("damaged.db")
        try Data(repeating: 7, count: 8192).write(to: damaged)
        let failed = try RustConsentKit.openFailClosed(path: damaged.path, policyJson: nil)
        defer { try? failed.shutdown() }
        let failedGate = try XCTUnwrap(CGate.register(failed))
        XCTAssertEqual(codes(same("alice", "usage_analytics", on: failed, gate: failedGate)), [.storeUnavailable])
        XCTAssertFalse(try XCTUnwrap(same("alice", "usage_analytics", on: failed, gate: failedGate)).allowed)
    }

    // MARK: - Errors: the gate says nothing, uniffi throws the typed error

    func testUnknownFeatureBadInputAndAClosedKitAreLeftToUniffi() throws {
        _ = try kit.grant(subject: "alice", category: "usage_statistics", scope: nil, source: .settings)
        XCTAssertNil(same("alice", "teleport"))
        XCTAssertThrowsError(try kit.check(subject: "alice", feature: "teleport", scope: nil)) { XCTAssertEqual(Names.errorKind($0), "unknown_feature") }
        for subject in ["", "al\u{1b}ice", String(repeating: "a", count: 100_000)] {
            XCTAssertNil(same(subject, "usage_analytics"), "a bad subject")
            XCTAssertThrowsError(try kit.check(subject: subject, feature: "usage_analytics", scope: nil)) { XCTAssertEqual(Names.errorKind($0), "invalid_input") }
        }
        XCTAssertNil(same("alice", "usage_analytics", scope: "contact-1"), "a scope on a feature that is not per item")
        XCTAssertTrue(try XCTUnwrap(same("alice", "usage_analytics")).allowed)
        try kit.shutdown()
        XCTAssertNil(gate.check(subject: "alice", feature: "usage_analytics", scope: nil)?.decision, "a closed kit: no answer from the gate")
        XCTAssertThrowsError(try kit.check(subject: "alice", feature: "usage_analytics", scope: nil)) { XCTAssertEqual(Names.errorKind($0), "closed") }
    }

    func testTheRawEntryRefusesBadArgumentsWithoutAnAllow() throws {
        _ = try kit.grant(subject: "alice", category: "usage_statistics", scope: nil, source: .settings)
        func raw(_ token: UInt64, _ subject: [UInt8], _ feature: [UInt8], wordCount: Int = 8) -> (Int32, Int64) {
            var words = [Int64](repeating: Int64(CONSENTKIT_GATE_ALLOWED), count: wordCount)
            var text = [UInt8](repeating: 0, count: 64)
            let status = subject.withUnsafeBufferPointer { s in
                feature.withUnsafeBufferPointer { f in
                    words.withUnsafeMutableBufferPointer { w in
                        text.withUnsafeMutableBufferPointer { t in
                            consentkit_gate_check(token, s.baseAddress, s.count, f.baseAddress, f.count, false, nil, 0, w.baseAddress, w.count, t.baseAddress, t.count)
                        }
                    }
                }
            }
            return (status, words[0])
        }
        let feature = Array("usage_analytics".utf8)
        XCTAssertEqual(raw(gate.token, Array("alice".utf8), feature).0, CONSENTKIT_GATE_ANSWERED)
        XCTAssertEqual(raw(gate.token, Array("alice".utf8), feature).1 & Int64(CONSENTKIT_GATE_ALLOWED), Int64(CONSENTKIT_GATE_ALLOWED))
        let invalidUTF8: [UInt8] = [0x61, 0xff, 0x62]
        XCTAssertTrue(raw(gate.token, invalidUTF8, feature) == (CONSENTKIT_GATE_INVALID_ARGUMENT, 0), "invalid UTF-8: a typed status, no allow")
        XCTAssertTrue(raw(gate.token &+ 1_000_000, Array("alice".utf8), feature) == (CONSENTKIT_GATE_UNKNOWN_TOKEN, 0), "an unknown token")
        XCTAssertTrue(raw(gate.token, Array("alice".utf8), feature, wordCount: 2) == (CONSENTKIT_GATE_INVALID_ARGUMENT, 0), "too few words")
        let nullSubject = feature.withUnsafeBufferPointer { f in
            consentkit_gate_check(gate.token, nil, 5, f.baseAddress, f.count, false, nil, 0, nil, 0, nil, 0)
        }
        XCTAssertEqual(nullSubject, CONSENTKIT_GATE_INVALID_ARGUMENT)
    }

    // MARK: - Withdrawal and threads

    func testAfterAWithdrawalReturnsTheGateNeverAllows() throws {
        for round in 0..<50 {
            _ = try kit.grant(subject: "alice", category: "usage_statistics", scope: nil, source: .settings)
            XCTAssertEqual(gate.check(subject: "alice", feature: "usage_analytics", scope: nil)?.decision.allowed, true, "round \(round)")
            _ = try kit.withdraw(subject: "alice", category: "usage_statistics", scope: nil, source: .settings)
            let after = try XCTUnwrap(gate.check(subject: "alice", feature: "usage_analytics", scope: nil)?.decision)
            XCTAssertFalse(after.allowed, "round \(round)")
            XCTAssertEqual(codes(after), [.consentWithdrawn])
        }
    }

    func testAManagerNeverAllowsAfterAWithdrawalReturnedOnAnyThread() throws {
        // The system clock: isAllowed takes the cache's fast path (a hand-set clock would not).
        let manager = try ConsentManager.open(path: dir.appendingPathComponent("manager.db").path)
        defer { manager.close() }
        XCTAssertTrue(manager.usesCGate, "the manager's cache misses go through the C gate")
        let withdrawn = SharedFlag()
        let violations = SharedFlag()
        for _ in 0..<20 {
            try manager.grant("alice", category: "usage_statistics")
            withdrawn.set(false)
            DispatchQueue.concurrentPerform(iterations: 3) { worker in
                if worker == 0 {
                    _ = try? manager.withdraw("alice", category: "usage_statistics")
                    withdrawn.set(true)
                    return
                }
                for _ in 0..<2_000 {
                    let returned = withdrawn.value  // read before the check: a later check must deny
                    if (try? manager.isAllowed("alice", feature: "usage_analytics")) == true, returned { violations.set(true) }
                }
            }
            XCTAssertFalse(try manager.isAllowed("alice", feature: "usage_analytics"))
        }
        XCTAssertFalse(violations.value, "a check allowed after withdraw returned")
    }

    func testConcurrentThreadsGetTheUniffiAnswers() throws {
        let subjects = (0..<8).map { "subject-\($0)" }
        for (i, subject) in subjects.enumerated() where i % 2 == 0 {
            _ = try kit.grant(subject: subject, category: "usage_statistics", scope: nil, source: .settings)
        }
        _ = try kit.refuse(subject: subjects[1], category: "photos_media", scope: nil, source: .settings)
        let features = ["usage_analytics", "photo_sharing", "calling", "teleport"]
        var expected: [String: CheckResult?] = [:]
        for subject in subjects { for feature in features { expected.updateValue(try? kit.check(subject: subject, feature: feature, scope: nil), forKey: "\(subject)/\(feature)") } }
        let mismatches = SharedFlag()
        let gate = self.gate!
        let table = expected
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            for i in 0..<2_000 {
                let subject = subjects[(worker + i) % subjects.count]
                let feature = features[i % features.count]
                let answer = gate.check(subject: subject, feature: feature, scope: nil)?.decision
                if answer != table["\(subject)/\(feature)"]! { mismatches.set(true) }
            }
        }
        XCTAssertFalse(mismatches.value, "a thread got another answer than uniffi's")
    }
}

/// A Bool shared by threads, behind a lock (the package targets iOS 15 / macOS 12, without
/// `Synchronization` or `NSLock.withLock`).
final class SharedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var flag = false
    var value: Bool {
        lock.lock()
        defer { lock.unlock() }
        return flag
    }
    func set(_ value: Bool) {
        lock.lock()
        flag = value
        lock.unlock()
    }
}
