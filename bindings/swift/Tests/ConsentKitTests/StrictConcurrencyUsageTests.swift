import ConsentKit
import Foundation
import XCTest

/// How an app in the Swift 6 language mode (complete concurrency checking, this target's mode)
/// uses the manager across isolation domains: an actor that owns it, a main-actor view model, a
/// detached task and a task group. Compiling is half the test; the other half is that the answers
/// cross those boundaries unchanged.
final class StrictConcurrencyUsageTests: XCTestCase {
    /// An app's service actor that owns the manager.
    actor ConsentService {
        let consent: ConsentManager
        init(path: String) throws { consent = try ConsentManager.open(path: path) }
        func allow(_ user: String) async throws -> Receipt { try await consent.grant(user, category: .usageStatistics) }
        func answer(_ user: String) throws -> CheckResult { try consent.check(user, feature: .usageAnalytics) }
        func shutDown() async { await consent.close() }
    }

    /// A settings screen's model on the main actor.
    @MainActor final class ScreenModel {
        private(set) var seen: [StatusChange] = []
        private(set) var allowed = false
        func follow(_ consent: ConsentManager, _ user: String) async throws {
            for await change in try consent.changes(of: user) where change.categoryID == .usageStatistics {
                seen.append(change)
                if change.status == .withdrawn { break }
            }
            allowed = try consent.isAllowed(user, feature: .usageAnalytics)
        }
    }

    func testTheManagerAndItsValuesCrossActorsTasksAndGroups() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let service = try ConsentService(path: dir.appendingPathComponent("c.db").path)
        let receipt = try await service.allow("alice")
        XCTAssertEqual(receipt.subject, "alice")
        let answer = try await service.answer("alice")
        XCTAssertTrue(answer.allowed)
        let consent = service.consent  // Sendable: handed out of the actor
        let fromDetached = try await Task.detached { try consent.isAllowed("alice", feature: .usageAnalytics) }.value
        XCTAssertTrue(fromDetached)
        let answers = try await withThrowingTaskGroup(of: CheckResult.self) { group in
            for _ in 0..<8 { group.addTask { try consent.check("alice", feature: .usageAnalytics) } }
            return try await group.reduce(into: [CheckResult]()) { $0.append($1) }
        }
        XCTAssertEqual(answers.count, 8)
        XCTAssertTrue(answers.allSatisfy(\.allowed))

        let model = ScreenModel()
        let following = Task { @MainActor in try await model.follow(consent, "alice") }
        // The model sees the current grant first; then the withdrawal made from another task ends it.
        while await model.seen.isEmpty { try await Task.sleep(nanoseconds: 1_000_000) }
        try await consent.withdraw("alice", category: .usageStatistics)
        try await following.value
        let statuses = await model.seen.map(\.status)
        XCTAssertEqual(statuses.first, .granted)
        XCTAssertEqual(statuses.last, .withdrawn)
        let allowedAfter = await model.allowed
        XCTAssertFalse(allowedAfter, "denied once withdraw returned, read on the main actor")
        await service.shutDown()
    }
}
