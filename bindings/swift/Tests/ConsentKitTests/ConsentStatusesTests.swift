@_spi(Testing) import ConsentKit
import Foundation
import XCTest

@MainActor
final class ConsentStatusesTests: XCTestCase {
    var dir: URL!
    var consent: ConsentManager!

    override func setUp() async throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        consent = try await ConsentManager.open(path: dir.appendingPathComponent("statuses.db").path)
    }

    override func tearDown() async throws {
        await consent?.close()
        try FileManager.default.removeItem(at: dir)
    }

    /// Waits (bounded: a lost change fails, it never hangs) until `condition` holds on the main actor.
    func eventually(_ what: String, within seconds: Double = 20, _ condition: () -> Bool) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        while !condition() {
            if Date() > deadline { throw StreamTimedOut(waitingFor: what, seen: 0) }
            try await Task.sleep(nanoseconds: 5_000_000)
        }
    }

    func testTheModelStartsFromTheStoreAndFollowsChangesMadeElsewhere() async throws {
        try await consent.grant("alice", category: .photosMedia)
        let model = try ConsentStatuses(consent, subject: "alice")
        XCTAssertEqual(model.categories, try consent.statuses("alice"))
        XCTAssertEqual(model.status(of: .photosMedia), .granted)
        XCTAssertNil(model.status(of: "no_such_category"))
        try await consent.withdraw("alice", category: .photosMedia, source: .support)
        try await eventually("the withdrawal to reach the model") { model.status(of: .photosMedia) == .withdrawn }
        try await consent.grant("bob", category: .usageStatistics)
        try await consent.grant("alice", category: .usageStatistics)
        try await eventually("alice's grant") { model.status(of: .usageStatistics) == .granted }
        XCTAssertEqual(model.categories, try consent.statuses("alice"), "bob's change is not alice's")
        XCTAssertTrue(model.isLive)
    }

    func testTheModelStopsFollowingWhenTheManagerCloses() async throws {
        let model = try ConsentStatuses(consent, subject: "alice")
        await consent.close()
        try await eventually("the model to notice the close") { !model.isLive }
    }
}
