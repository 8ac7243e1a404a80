@_spi(Testing) import ConsentKit
import Foundation
import XCTest

/// The device side of sync with the ConsentKit server, as an iOS app drives it: the batch to POST,
/// and the reply applied (erase what the server erased, then acknowledge).
final class SyncClientTests: XCTestCase {
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

    private func reply(_ batch: SyncBatch, seq: UInt64? = nil, eraseEvents: [UInt64] = []) -> String {
        let erase = eraseEvents.map(String.init).joined(separator: ",")
        return """
            {"status":"stored","head":{"format":"consentkit-signed-head/1","device":"\(batch.device)","seq":\(seq ?? batch.lastSeq),\
            "hash":"\(batch.lastHash)","key_id":"k","signature":"s"},"stored":\(batch.count),"duplicates":0,"suppressed":0,\
            "erased_subjects":[],"erased_on_server":0,"erase_events":[\(erase)]}
            """
    }

    func testAReplyForAnotherBatchAcknowledgesNothingAndTheRightOneAcknowledgesIt() throws {
        try consent.grant("alice", category: "usage_statistics")
        try consent.grant("bob", category: "usage_statistics")
        let batch = try XCTUnwrap(try consent.syncBatch(device: "phone"))
        XCTAssertEqual(batch.count, 2)
        XCTAssertTrue(batch.json.contains("\"format\":\"consentkit-batch/1\""), batch.json)
        XCTAssertThrowsError(try consent.applySyncReply(batch, reply: reply(batch, seq: 1))) { error in
            guard case ConsentKitError.InvalidInput(let message) = error else { return XCTFail("expected .InvalidInput, got \(error)") }
            XCTAssertTrue(message.contains("sync reply"), message)
        }
        XCTAssertEqual(try consent.pendingSync().count, 2, "nothing was acknowledged")
        XCTAssertEqual(try consent.applySyncReply(batch, reply: reply(batch)).ackedSeq, 2)
        XCTAssertNil(try consent.syncBatch(device: "phone"))
    }

    func testEventsTheServerErasedAreErasedHereBeforeTheAck() throws {
        let aliceGrant = try consent.grant("alice", category: "usage_statistics")
        try consent.grant("bob", category: "usage_statistics")
        XCTAssertTrue(try consent.check("alice", feature: "usage_analytics").allowed)
        let batch = try XCTUnwrap(try consent.syncBatch(device: "phone", limit: 50))
        let outcome = try consent.applySyncReply(batch, reply: reply(batch, eraseEvents: [aliceGrant.seq]))
        XCTAssertEqual(outcome.erasedSubjects, ["alice"])
        XCTAssertFalse(try consent.check("alice", feature: "usage_analytics").allowed, "the erased grant allows nothing, cached or not")
        XCTAssertTrue(try consent.check("bob", feature: "usage_analytics").allowed)
        let next = try XCTUnwrap(try consent.syncBatch(device: "phone"))
        XCTAssertTrue(next.json.contains("\"action\":\"erasure\""), next.json)
        try consent.applySyncReply(next, reply: reply(next))
        let bobGrant = try XCTUnwrap(try consent.history("bob").first { $0.subject == "bob" })
        XCTAssertEqual(try consent.applyErasureNotices("{\"erase_events\":[\(bobGrant.seq)]}"), ["bob"])
        XCTAssertFalse(try consent.check("bob", feature: "usage_analytics").allowed)
    }

    func testABatchLimitOfZeroOrBelowIsInvalidInputNamingItNotABatchOfOne() throws {
        try consent.grant("alice", category: "usage_statistics")
        for limit in [0, -1, Int.min] {
            XCTAssertThrowsError(try consent.syncBatch(device: "phone", limit: limit), "limit \(limit)") { error in
                guard case ConsentKitError.InvalidInput(let message) = error else { return XCTFail("expected .InvalidInput, got \(error)") }
                XCTAssertTrue(message.contains("'\(limit)'"), message)
            }
        }
        XCTAssertEqual(try consent.syncBatch(device: "phone", limit: 5000)?.count, 1, "above 1000 is at most 1000, as the core takes it")
        XCTAssertEqual(try consent.pendingSync().count, 1, "nothing acknowledged")
    }
}
