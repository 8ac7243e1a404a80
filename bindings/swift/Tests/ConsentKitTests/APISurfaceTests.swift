@_spi(Testing) import ConsentKit
import Foundation
import XCTest

/// The public surface as an app sees it: typed ids of the built-in catalog, and what must not
/// compile (a category where a feature belongs, the test clock without the SPI import, the
/// generated FFI internals). The negative cases are compiled by swiftc against the built modules.
final class APISurfaceTests: XCTestCase {
    let package = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardizedFileURL

    func testTheBuiltInIdsAreThePolicysIdsInOrder() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let consent = try ConsentManager.open(path: dir.appendingPathComponent("ids.db").path)
        defer { consent.close() }
        let policy = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(try consent.policyJSON.utf8)) as? [String: Any])
        let categories = (policy["categories"] as? [[String: Any]])?.compactMap { $0["id"] as? String }
        let features = (policy["features"] as? [[String: Any]])?.compactMap { $0["id"] as? String }
        XCTAssertEqual(CategoryID.builtIn.map(\.rawValue), categories)
        XCTAssertEqual(FeatureID.builtIn.map(\.rawValue), features)
        XCTAssertEqual(try consent.statuses("alice").map(\.categoryID), CategoryID.builtIn)
        try consent.grant("alice", category: .usageStatistics, source: .onboarding)
        XCTAssertTrue(try consent.isAllowed("alice", feature: .usageAnalytics))
        XCTAssertTrue(try consent.isAllowed("alice", feature: "usage_analytics"), "a literal works for any catalog")
        XCTAssertTrue(try consent.isAllowed("alice", feature: FeatureID(["usage", "analytics"].joined(separator: "_"))))
    }

    func testAMixedUpIdDoesNotCompile() throws {
        let errors = try compile("""
            import ConsentKit
            func f(_ consent: ConsentManager) throws {
                _ = try consent.isAllowed("alice", feature: CategoryID.usageStatistics)
                _ = try consent.grant("alice", category: FeatureID.usageAnalytics)
                _ = try consent.isAllowed("alice", feature: .usageStatistics)
            }
            """)
        XCTAssertTrue(errors.contains("cannot convert value of type 'CategoryID' to expected argument type 'FeatureID'"), errors)
        XCTAssertTrue(errors.contains("cannot convert value of type 'FeatureID' to expected argument type 'CategoryID'"), errors)
        XCTAssertTrue(errors.contains("type 'FeatureID' has no member 'usageStatistics'"), errors)
    }

    func testTheTestClockAndTheFFIInternalsAreNotPublicAPI() throws {
        let errors = try compile("""
            import ConsentKit
            func f() throws {
                let clock = try TestClock(at: Date())
                _ = try ConsentManager.open(path: "x.db", policyJSON: nil, clock: clock)
                _ = RustConsentKit.self
                _ = FfiConverterTypeReceipt.self
            }
            """)
        XCTAssertTrue(errors.contains("cannot find 'TestClock' in scope"), errors)
        XCTAssertTrue(errors.contains("cannot find 'RustConsentKit' in scope"), errors)
        XCTAssertTrue(errors.contains("cannot find 'FfiConverterTypeReceipt' in scope"), errors)
        XCTAssertEqual(try compile("import ConsentKit\nlet d: CheckResult? = nil\nlet e: ConsentKitError? = nil\nlet c: CategoryStatus? = nil\n"), "",
                       "the value types apps name are public")
    }

    /// Type-checks `source` against the built ConsentKit module; returns the compiler's errors
    /// ("" when it compiles).
    func compile(_ source: String) throws -> String {
        let modules = try XCTUnwrap(builtModulesDirectory(), "the built ConsentKit.swiftmodule was not found beside the test binary")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("client.swift")
        try source.write(to: file, atomically: true, encoding: .utf8)
        let swiftc = ProcessInfo.processInfo.environment["CONSENTKIT_SWIFTC"] ?? "swiftc"
        let result = try runProgram(URL(fileURLWithPath: "/usr/bin/env"),
                                    [swiftc, "-typecheck", "-swift-version", "6", "-I", modules.path,
                                     "-I", package.appendingPathComponent("Sources/ConsentKitFFIC").path,
                                     "-module-cache-path", Self.moduleCache.path, file.path])
        return result.status == 0 ? "" : result.text
    }

    /// One clang module cache for every compile of the run (building it is most of the time).
    static let moduleCache = FileManager.default.temporaryDirectory.appendingPathComponent("consentkit-api-surface-\(getpid())")

    override class func tearDown() {
        try? FileManager.default.removeItem(at: moduleCache)
        super.tearDown()
    }

}

/// The `Modules` folder of this build (where SwiftPM puts ConsentKit.swiftmodule), found from
/// the test binary's location.
func builtModulesDirectory() -> URL? {
    var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for _ in 0..<6 {
        let candidate = dir.appendingPathComponent("Modules")
        if FileManager.default.fileExists(atPath: candidate.appendingPathComponent("ConsentKit.swiftmodule").path) { return candidate }
        dir = dir.deletingLastPathComponent()
    }
    return nil
}
