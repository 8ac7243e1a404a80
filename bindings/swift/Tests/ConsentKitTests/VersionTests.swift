import ConsentKit
import Foundation
import XCTest

/// One version everywhere (#16 item 4), the Swift share: what an app sees as `ConsentManager.version`
/// is the Cargo workspace's version (which bindings/tests/version.rs ties to the POM and CHANGELOG.md).
final class VersionTests: XCTestCase {
    let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../../..").standardizedFileURL

    /// `version = "..."` in the `[workspace.package]` table of the root Cargo.toml.
    func cargoWorkspaceVersion() throws -> String {
        let toml = try String(contentsOf: repo.appendingPathComponent("Cargo.toml"), encoding: .utf8)
        var inTable = false
        for line in toml.components(separatedBy: "\n") {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("[") { inTable = trimmed == "[workspace.package]"; continue }
            if inTable, trimmed.hasPrefix("version"), let open = trimmed.firstIndex(of: "\"") {
                let rest = trimmed[trimmed.index(after: open)...]
                if let close = rest.firstIndex(of: "\"") { return String(rest[..<close]) }
            }
        }
        throw NoVersion()
    }
    struct NoVersion: Error {}

    func testTheSwiftVisibleVersionIsCargos() throws {
        let cargo = try cargoWorkspaceVersion() // throws (fails the test) if Cargo.toml has none
        XCTAssertEqual(ConsentManager.version, cargo)
        XCTAssertNotNil(cargo.range(of: #"^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$"#, options: .regularExpression),
                        "a semantic version SwiftPM accepts as a tag: \(cargo)")
    }
}
