import Foundation
import XCTest

/// The public surface of `ConsentManager` as the compiler sees it (its symbol graph, extracted
/// from the built module), so a method added without its async twin, or an SPI that leaks,
/// fails here.
final class PublicAPITests: XCTestCase {
    /// Calls that answer from memory (main-thread safe): no async twin needed.
    static let inMemory: Set<String> = [
        "check(_:feature:scope:)", "isAllowed(_:feature:scope:)", "status(_:category:)", "statuses(_:)", "shouldAsk(_:category:)",
        "osPermissionState(_:)", "changes(of:)", "observe(_:onChange:)", "statusesModel(of:)",
    ]

    func testEveryCallThatTouchesTheDiskHasAnAsyncTwin() throws {
        let members = try managerMembers()
        let sync = Set(members.filter { ($0.kind == "swift.method" || $0.kind == "swift.type.method") && !$0.isAsync }.map(\.name))
        let async = Set(members.filter(\.isAsync).map(\.name))
        XCTAssertFalse(sync.isEmpty)
        XCTAssertEqual(sync.subtracting(Self.inMemory).subtracting(async), [], "disk-touching calls without an async variant")
        XCTAssertEqual(async.subtracting(sync), [], "async variants without a synchronous call")
        XCTAssertEqual(Self.inMemory.subtracting(sync), [], "the in-memory list names calls that exist")
    }

    /// Issue #10 item 10: the manager's public API is exactly `bindings/capabilities.json`'s Swift
    /// column (which the Kotlin manager is checked against too), both ways. Like the Kotlin test,
    /// it compares methods and properties (static methods as `static name`), not static
    /// constants; async twins come under the list's "async overloads" unless listed by name.
    func testThePublicAPIIsTheCapabilityListBothWays() throws {
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../../capabilities.json")
        let list = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: file)) as? [String: Any])
        let listed = Set(try XCTUnwrap(list["capabilities"] as? [[String: String]]).compactMap { $0["swift"] }).subtracting(["async overloads"])
        let members = try managerMembers().filter { $0.kind != "swift.type.property" }
        func spelled(_ m: Member) -> String { (m.kind == "swift.type.method" ? "static " : "") + m.name + (m.isAsync ? " async" : "") }
        let actual = Set(members.filter { !$0.isAsync || listed.contains(spelled($0)) }.map(spelled))
        XCTAssertEqual(actual.subtracting(listed).sorted(), [], "public members the capability list does not have")
        XCTAssertEqual(listed.subtracting(actual).sorted(), [], "capabilities the Swift manager lacks")
        XCTAssertFalse(members.map(\.name).contains("open(path:policyJSON:clock:)"), "the hand-set clock stays SPI")
    }

    // MARK: - Symbol graph

    struct Member {
        let kind: String
        let name: String
        let isAsync: Bool
    }

    /// `ConsentManager`'s public members, from `swift symbolgraph-extract` on the built module.
    func managerMembers() throws -> [Member] {
        let swiftc = ProcessInfo.processInfo.environment["CONSENTKIT_SWIFTC"] ?? "swiftc"
        let info = try JSONSerialization.jsonObject(with: try run(swiftc, ["-print-target-info"])) as? [String: Any]
        let triple = try XCTUnwrap((info?["target"] as? [String: Any])?["triple"] as? String)
        let modules = try XCTUnwrap(builtModulesDirectory(), "the built ConsentKit.swiftmodule was not found")
        let out = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: out) }
        let package = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardizedFileURL
        let swift = URL(fileURLWithPath: swiftc).deletingLastPathComponent().appendingPathComponent("swift").path
        _ = try run(swiftc == "swiftc" ? "swift" : swift, [
            "symbolgraph-extract", "-module-name", "ConsentKit", "-target", triple, "-I", modules.path,
            "-I", package.appendingPathComponent("Sources/ConsentKitFFIC").path, "-minimum-access-level", "public",
            "-module-cache-path", APISurfaceTests.moduleCache.path, "-output-dir", out.path,
        ])
        let graph = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("ConsentKit.symbols.json"))) as? [String: Any]
        let symbols = try XCTUnwrap(graph?["symbols"] as? [[String: Any]])
        return symbols.compactMap { symbol in
            guard let path = symbol["pathComponents"] as? [String], path.count == 2, path[0] == "ConsentManager",
                  let kind = (symbol["kind"] as? [String: Any])?["identifier"] as? String
            else { return nil }
            let fragments = symbol["declarationFragments"] as? [[String: Any]] ?? []
            return Member(kind: kind, name: path[1], isAsync: fragments.contains { $0["spelling"] as? String == "async" })
        }
    }

    func run(_ tool: String, _ arguments: [String]) throws -> Data {
        try runChecked(URL(fileURLWithPath: "/usr/bin/env"), [tool] + arguments, mergeErrors: false)
    }
}
