import ConsentKit
import Foundation
import XCTest

/// Two processes on one store file, as an app and the support tool (`consentkit`) or an app
/// extension are: a withdrawal the other process committed is honoured by this process's cached
/// gate once the core's cross-process bound has passed, and this process's next write builds on it.
final class TwoProcessTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try FileManager.default.removeItem(at: dir)
    }

    /// The support tool: `CONSENTKIT_CLI` (run-tests.sh builds it and sets it), else the workspace's debug build.
    func cli() throws -> URL {
        if let path = ProcessInfo.processInfo.environment["CONSENTKIT_CLI"] { return URL(fileURLWithPath: path) }
        let built = URL(fileURLWithPath: #filePath).appendingPathComponent("../../../../../target/debug/consentkit").standardizedFileURL
        // A missing tool fails the test: a suite that cannot run is a failure, never a skip.
        guard FileManager.default.isExecutableFile(atPath: built.path) else {
            XCTFail("no consentkit binary at \(built.path): run bindings/swift/run-tests.sh (make test-swift), which builds it")
            throw CommandFailed(status: 127)
        }
        return built
    }

    func run(_ arguments: [String]) throws {
        try runChecked(try cli(), arguments)
    }

    func testAWithdrawalByAnotherProcessIsHonouredByTheCachedGateOnceTheBoundHasPassed() throws {
        let path = dir.appendingPathComponent("consent.db").path
        let consent = try ConsentManager.openStrict(path: path)
        defer { consent.close() }
        try consent.grant("alice", category: .usageStatistics)
        XCTAssertTrue(try consent.isAllowed("alice", feature: .usageAnalytics))
        XCTAssertTrue(try consent.isAllowed("alice", feature: .usageAnalytics), "now served from the Swift cache")

        try run(["--db", path, "--quiet", "withdraw", "alice", "usage_statistics"])
        let acknowledged = DispatchTime.now().uptimeNanoseconds
        let bound = consent.cache.freshNanos
        while true {
            let started = DispatchTime.now().uptimeNanoseconds
            let allowed = try consent.isAllowed("alice", feature: .usageAnalytics)
            if started - acknowledged > bound {
                XCTAssertFalse(allowed, "past the bound, the other process's withdrawal is honoured")
                break
            }
        }
        XCTAssertFalse(try consent.check("alice", feature: .usageAnalytics).allowed, "and check agrees")
        XCTAssertEqual(try consent.status("alice", category: .usageStatistics).status, .withdrawn)
        let next = try consent.grant("alice", category: .usageStatistics)
        XCTAssertEqual(next.seq, 3, "this process's next write builds on the other's withdrawal")
        XCTAssertTrue(try consent.verify().intact)
    }
}
