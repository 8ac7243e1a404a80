@_spi(Testing) import ConsentKit
import Foundation
import XCTest

/// The gate cache answers only what the core would: ids are byte-exact (no Unicode
/// normalization), and no answer is served past the proof the core answered from.
final class CacheSoundnessTests: XCTestCase {
    var dir: URL!
    var consent: ConsentManager!
    let nfc = "jos\u{e9}"
    let nfd = "jose\u{301}"

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        // The system clock: isAllowed takes the cache's fast path.
        consent = try ConsentManager.open(path: dir.appendingPathComponent("consent.db").path)
    }

    override func tearDownWithError() throws {
        consent.close()
        consent = nil
        try FileManager.default.removeItem(at: dir)
    }

    func testCanonicallyEquivalentSubjectsAreDifferentUsers() throws {
        XCTAssertEqual(nfc, nfd, "Swift's String == normalizes")
        try consent.grant(nfc, category: "usage_statistics")
        XCTAssertTrue(try consent.isAllowed(nfc, feature: "usage_analytics"))
        XCTAssertFalse(try consent.checkUncached(nfd, feature: "usage_analytics").allowed, "the core: another id, not asked")
        XCTAssertFalse(try consent.isAllowed(nfd, feature: "usage_analytics"), "the hot subject is compared on its bytes")
        XCTAssertFalse(try consent.check(nfd, feature: "usage_analytics").allowed)
        // The map behind the hot subject: another subject put last, then the NFD id.
        XCTAssertFalse(try consent.isAllowed("bob", feature: "usage_analytics"))
        XCTAssertFalse(try consent.isAllowed(nfd, feature: "usage_analytics"), "the map is keyed on the bytes")
        XCTAssertTrue(try consent.isAllowed(nfc, feature: "usage_analytics"))
    }

    /// The typed ids compare as the core does (on the bytes), so a `Set` or `Dictionary` keyed by
    /// them never merges two categories, features or permissions the core keeps apart (Swift's
    /// synthesized `==` on the `String` took `"jos\u{e9}"` and `"jose\u{301}"` as one).
    func testCanonicallyEquivalentTypedIdsAreDifferentIds() async throws {
        let (nfc, nfd) = (self.nfc, self.nfd)
        XCTAssertNotEqual(CategoryID(nfc), CategoryID(nfd))
        XCTAssertNotEqual(FeatureID(nfc), FeatureID(nfd))
        XCTAssertNotEqual(OSPermission(nfc), OSPermission(nfd))
        XCTAssertEqual(Set([CategoryID(nfc), CategoryID(nfd), CategoryID(rawValue: nfc)]).count, 2)
        XCTAssertEqual(Set([FeatureID(nfc), FeatureID(nfd)]).count, 2)
        XCTAssertEqual(Set([OSPermission(nfc), OSPermission(nfd)]).count, 2)
        XCTAssertEqual(CategoryID(nfc), CategoryID(String(decoding: Array(nfc.utf8), as: UTF8.self)), "the same bytes: the same id")
        XCTAssertEqual(CategoryID.usageStatistics, "usage_statistics")

        // A policy with both spellings as categories: the core keeps them apart, and so does a
        // dictionary of the statuses keyed by CategoryID.
        var policy = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(try consent.policyJSON.utf8)) as? [String: Any])
        var categories = try XCTUnwrap(policy["categories"] as? [[String: Any]])
        let template = try XCTUnwrap(categories.first { $0["id"] as? String == "usage_statistics" })
        for id in [nfc, nfd] { categories.append(template.merging(["id": id, "title": id]) { $1 }) }
        policy["categories"] = categories
        let path = dir.appendingPathComponent("two-spellings.db").path
        let other = try await ConsentManager.openStrict(
            path: path, policyJSON: String(decoding: try JSONSerialization.data(withJSONObject: policy), as: UTF8.self))
        try await other.grant("alice", category: CategoryID(nfc))
        let statuses = try other.statuses("alice")
        XCTAssertEqual(statuses.filter { $0.category.unicodeScalars.elementsEqual(nfc.unicodeScalars) }.map(\.status), [.granted])
        XCTAssertEqual(statuses.filter { $0.category.unicodeScalars.elementsEqual(nfd.unicodeScalars) }.map(\.status), [.notAsked])
        let byID = Dictionary(statuses.map { ($0.categoryID, $0.status) }) { first, _ in first }
        XCTAssertEqual(byID.count, statuses.count, "one entry per category of the policy")
        XCTAssertEqual(byID[CategoryID(nfc)], .granted)
        XCTAssertEqual(byID[CategoryID(nfd)], .notAsked)
        let model = try await MainActor.run { try other.statusesModel(of: "alice") }
        let (granted, notAsked) = await MainActor.run { (model.status(of: CategoryID(nfc)), model.status(of: CategoryID(nfd))) }
        XCTAssertEqual(granted, .granted, "the settings model finds each spelling's own status")
        XCTAssertEqual(notAsked, .notAsked)
        await other.close()
    }

    func testCanonicallyEquivalentScopesAreDifferentItems() throws {
        let item = "caf\u{e9}-contact", equivalent = "cafe\u{301}-contact"
        try consent.grant("alice", category: "device_contacts")
        _ = try consent.reportOSPermission(.contacts, state: .granted)
        try consent.grant("alice", category: "device_contacts", scope: item)
        XCTAssertTrue(try consent.isAllowed("alice", feature: "contact_sync", scope: item))
        XCTAssertFalse(try consent.checkUncached("alice", feature: "contact_sync", scope: equivalent).allowed, "the core: another item")
        XCTAssertFalse(try consent.isAllowed("alice", feature: "contact_sync", scope: equivalent), "scoped keys compare bytes")
        XCTAssertFalse(try consent.check("alice", feature: "contact_sync", scope: equivalent).allowed)
    }

    func testTheKeyComparesAndHashesBytes() {
        let a = DecisionCache.Key(subject: nfc, feature: "contact_sync", scope: "x")
        let b = DecisionCache.Key(subject: nfd, feature: "contact_sync", scope: "x")
        XCTAssertNotEqual(a, b)
        XCTAssertEqual(a, DecisionCache.Key(subject: "jos" + "\u{e9}", feature: "contact_sync", scope: "x"))
        XCTAssertEqual(Set([a, b]).count, 2)
        XCTAssertNotEqual(
            DecisionCache.Key(subject: "a", feature: "f", scope: nil), DecisionCache.Key(subject: "a", feature: "f", scope: ""),
            "no scope is not the empty scope")
        XCTAssertFalse(ExactText.same("a\u{301}\u{323}", "a\u{323}\u{301}"), "same length, equivalent, other bytes")
    }

    /// Suspended, nothing proves the snapshot again: an answer asked late in the proof is kept only
    /// for what is left of it, not for a whole bound from the miss.
    func testAnEntryIsNotServedPastTheProofItWasAnsweredFrom() throws {
        try consent.grant("alice", category: "usage_statistics")
        let bound = consent.cache.freshNanos
        // Late in the bound: waits for that state, then checks it (a stall that lets the proof run
        // out first is retried from a fresh proof, not skipped).
        var left: UInt64 = 0
        for _ in 0..<20 {
            try consent.resume()
            try consent.suspend()
            while try consent.proofRemainingNanos() > bound * 4 / 5 { usleep(2_000) }
            left = try consent.proofRemainingNanos()
            if left > bound / 5 { break }
        }
        defer { try? consent.resume() }
        XCTAssertTrue(left > 0 && left <= bound * 4 / 5, "late in a live proof: \(left) ns left")
        XCTAssertTrue(try consent.isAllowed("alice", feature: "usage_analytics"), "answered from the proven snapshot")
        let entry = try XCTUnwrap(consent.cache.get(.init(subject: "alice", feature: "usage_analytics", scope: nil)))
        XCTAssertTrue(entry.decision.allowed)
        XCTAssertLessThanOrEqual(entry.deadline - entry.madeAt, left, "kept no longer than the proof left when asked")
        XCTAssertNil(
            consent.cache.allowed(subject: "alice", feature: "usage_analytics", at: entry.madeAt + left),
            "past the proof, though younger than the bound")
        // Once the proof has run out the core denies (suspended), and so does the cache.
        while try consent.proofRemainingNanos() > 0 { usleep(2_000) }
        XCTAssertFalse(try consent.isAllowed("alice", feature: "usage_analytics"), "no cached allow past the proof")
    }
}
