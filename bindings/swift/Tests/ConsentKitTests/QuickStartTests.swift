import ConsentKit
import Foundation
import XCTest

final class QuickStartTests: XCTestCase {
    let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../../..").standardizedFileURL

    func block(_ text: String, _ begin: String, _ end: String) -> [String] {
        let lines = text.components(separatedBy: "\n")
        guard let start = lines.firstIndex(where: { $0.contains(begin) }),
              let stop = lines[(start + 1)...].firstIndex(where: { $0.contains(end) })
        else { return [] }
        return lines[(start + 1)..<stop].map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty && !$0.hasPrefix("```") }
    }

    func testTheReadmeQuickStartIsTheCompiledOne() throws {
        let readme = try String(contentsOf: repo.appendingPathComponent("README.md"), encoding: .utf8)
        let source = try String(contentsOf: repo.appendingPathComponent("bindings/swift/Tests/ConsentKitTests/QuickStart.swift"), encoding: .utf8)
        let shown = block(readme, "<!-- quick-start-swift:begin -->", "<!-- quick-start-swift:end -->")
        XCTAssertEqual(shown, block(source, "// quick-start:begin", "// quick-start:end"))
        XCTAssertTrue((5...12).contains(shown.count), "about ten lines, not \(shown.count)")
    }

    func testTheQuickStartRuns() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var sent = 0
        try quickStart(applicationSupport: dir, userId: "alice") { sent += 1 }
        XCTAssertEqual(sent, 1)
        XCTAssertNoThrow(try ConsentKit.ConsentManager.openStrict(path: dir.appendingPathComponent("consent.db").path),
                         "the quick start closed its manager (and the module-qualified name resolves)")
    }
}
