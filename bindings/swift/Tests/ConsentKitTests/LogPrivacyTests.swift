@_spi(Testing) import ConsentKit
import Foundation
import XCTest

/// Collects log records from any thread.
final class LogCapture: @unchecked Sendable {
    private let lock = NSLock()
    private var records: [LogRecord] = []
    func add(_ r: LogRecord) { lock.lock(); records.append(r); lock.unlock() }
    var all: [LogRecord] { lock.lock(); defer { lock.unlock() }; return records }
}

/// The log sink from Swift, and the privacy test: at `.trace`, every conformance scenario with
/// recognisable subject ids and scopes, plus export, import, erasure, purge, verify and throwing
/// listeners, must leave no subject id, scope or export document in the captured log.
final class LogPrivacyTests: XCTestCase {
    let tests = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../../../tests").standardizedFileURL
    let subjectMark = "Subj7Zq"
    let scopeMark = "Scope9Xk"

    override func tearDown() {
        ConsentKitLog.uninstall()
        ConsentKitLog.level = .warn
    }

    func date(_ text: String) throws -> Date { try XCTUnwrap(ISO8601DateFormatter().date(from: text)) }

    func policy(_ ref: String) throws -> String? {
        ref == "builtin" ? nil : try String(contentsOf: tests.appendingPathComponent(ref), encoding: .utf8)
    }

    func tempDir() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// As the Kotlin and Rust tests: control characters (Cc) only. `CharacterSet.controlCharacters`
    /// also holds the format characters (Cf), so an id like "alice\u{200b}" stayed unmarked and
    /// was never observed.
    func usable(_ v: String) -> Bool {
        !v.trimmingCharacters(in: .whitespaces).isEmpty && v.utf8.count <= 40 && !v.unicodeScalars.contains { $0.properties.generalCategory == .control }
    }

    /// Printable ASCII without a space at either end, at most 256 bytes: ids the core's rule always accepts.
    func plainId(_ v: String) -> Bool {
        !v.isEmpty && v.utf8.count <= 256 && v.utf8.allSatisfy { (0x20...0x7E).contains($0) } && !v.hasPrefix(" ") && !v.hasSuffix(" ")
    }

    /// Observes `subject`, or nil when the core refuses the id (a scenario's malformed id, e.g. one
    /// with a zero-width space): the core decides, and only its `InvalidInput` naming the subject
    /// counts as a refusal; a refused well-formed id fails, any other error is thrown.
    func observeUnlessRefused(_ m: ConsentManager, _ subject: String) throws -> ObservationToken? {
        do {
            return try m.observe(subject) { _ in }
        } catch ConsentKitError.InvalidInput(let message) {
            XCTAssertFalse(plainId(subject), "observe refused the well-formed id '\(subject)': \(message)")
            XCTAssertTrue(message.hasPrefix("invalid subject "), "observe('\(subject)') refused something else: \(message)")
            return nil
        }
    }

    /// Rewrites subjects and scopes to marked values; collects every value that must not be logged.
    func mark(_ value: Any, _ secrets: inout [String]) -> Any {
        if var object = value as? [String: Any] {
            for (key, v) in object {
                if (key == "subject" || key == "scope"), let s = v as? String {
                    let marked = !usable(s) ? s : (key == "subject" ? "\(subjectMark)-\(s)" : "\(scopeMark)-\(s)")
                    object[key] = marked
                    if marked.trimmingCharacters(in: .whitespaces).count >= 4 { secrets.append(marked) }
                } else {
                    object[key] = mark(v, &secrets)
                }
            }
            return object
        }
        if let array = value as? [Any] { return array.map { mark($0, &secrets) } }
        return value
    }

    /// Every subject and scope in a document an `import` step reads (imported as it is: it is sealed).
    func documentSecrets(_ value: Any, _ secrets: inout [String]) {
        if let object = value as? [String: Any] {
            for (key, v) in object {
                if (key == "subject" || key == "scope"), let s = v as? String {
                    if s.trimmingCharacters(in: .whitespaces).count >= 4 { secrets.append(s) }
                } else {
                    documentSecrets(v, &secrets)
                }
            }
        } else if let array = value as? [Any] {
            array.forEach { documentSecrets($0, &secrets) }
        }
    }

    func drive(_ m: ConsentManager, _ step: [String: Any], _ secrets: inout [String]) throws {
        let subject = step["subject"] as? String ?? ""
        let category = CategoryID(step["category"] as? String ?? "")
        let source = Names.source(step["source"] as? String ?? "settings")
        let scope = step["scope"] as? String
        switch step["do"] as! String {
        case "grant": _ = try? m.grant(subject, category: category, source: source, scope: scope)
        case "refuse": _ = try? m.refuse(subject, category: category, source: source, scope: scope)
        case "withdraw": _ = try? m.withdraw(subject, category: category, source: source, scope: scope)
        case "object": _ = try? m.object(subject, category: category, source: source)
        case "withdraw_objection": _ = try? m.withdrawObjection(subject, category: category, source: source)
        case "batch":
            let list = step["decisions"] as! [[String: Any]]
            _ = try? m.record(list.map {
                ConsentChoice(subject: $0["subject"] as! String, category: $0["category"] as! String, action: Names.action($0["action"] as! String),
                              scope: $0["scope"] as? String, source: Names.source($0["source"] as! String))
            })
        case "os": _ = try? m.reportOSPermission(Names.permission(step["permission"] as! String), state: Names.osState(step["state"] as! String))
        case "os_state": _ = try? m.osPermissionState(Names.permission(step["permission"] as! String))
        case "under_age": _ = try? m.markUnderAge(subject, isUnderAge: step["value"] as! Bool, source: source)
        case "erase": _ = try? m.erase(subject, source: source)
        case "import":
            let document = try String(contentsOf: tests.appendingPathComponent(step["document"] as! String), encoding: .utf8)
            documentSecrets(try JSONSerialization.jsonObject(with: Data(document.utf8)), &secrets)
            _ = try? m.importJSON(document)
        case "check": _ = try? m.check(subject, feature: FeatureID(step["feature"] as! String), scope: scope)
        case "status": _ = try? m.status(subject, category: category)
        case "should_ask": _ = try? m.shouldAsk(subject, category: category)
        case "verify": _ = try? m.verify()
        default: XCTFail("unknown step \(step)")
        }
    }

    func testASinkReceivesRecordsAtTheLevelSet() throws {
        XCTAssertEqual(ConsentKitLog.level, .warn, "default level")
        let capture = LogCapture()
        ConsentKitLog.install { capture.add($0) }
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let db = dir.appendingPathComponent("a.db").path
        try ConsentManager.openStrict(path: db).close()
        XCTAssertFalse(capture.all.contains { $0.message.contains("store opened") }, "info is below the default level")
        ConsentKitLog.level = .info
        XCTAssertEqual(ConsentKitLog.level, .info)
        try ConsentManager.openStrict(path: db).close()
        XCTAssertTrue(capture.all.contains { $0.level == .info && $0.message.contains("store opened") && $0.target.hasPrefix("consentkit_core") }, "\(capture.all)")
    }

    func testNoIdentifierReachesTheLogAtTrace() throws {
        let capture = LogCapture()
        ConsentKitLog.install { capture.add($0) }
        ConsentKitLog.level = .trace
        var secrets: [String] = []
        let files = try FileManager.default.contentsOfDirectory(at: tests.appendingPathComponent("conformance/scenarios"), includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "json" }.sorted { $0.lastPathComponent < $1.lastPathComponent }
        XCTAssertGreaterThanOrEqual(files.count, 25)
        for file in files {
            var mine: [String] = []
            let scenario = mark(try JSONSerialization.jsonObject(with: Data(contentsOf: file)), &mine) as! [String: Any]
            let tmp = try tempDir()
            defer { try? FileManager.default.removeItem(at: tmp) }
            let db = tmp.appendingPathComponent("c.db").path
            let clock = try TestClock(at: try date(scenario["start"] as! String))
            let pol = try policy(scenario["policy"] as! String)
            var m: ConsentManager! = try ConsentManager.open(path: db, policyJSON: pol, clock: clock)
            let subjects = Array(Set(mine.filter { $0.hasPrefix(subjectMark) })).sorted()
            var tokens = try subjects.compactMap { try observeUnlessRefused(m, $0) }
            for step in scenario["steps"] as! [[String: Any]] {
                if let time = step["at"] as? String { try clock.set(at: try date(time)) }
                switch step["do"] as! String {
                case "reopen":
                    tokens.removeAll()
                    m = nil
                    m = try ConsentManager.open(path: db, policyJSON: try policy(step["policy"] as! String), clock: clock)
                case "open_damaged":
                    m = nil
                    let damaged = tmp.appendingPathComponent("damaged.db")
                    try Data(repeating: 0x5A, count: 4096).write(to: damaged)
                    m = try ConsentManager.open(path: damaged.path, policyJSON: pol)
                default:
                    try drive(m, step, &mine)
                }
            }
            for (i, s) in subjects.enumerated() {
                _ = try? m.history(s)
                _ = try? m.statuses(s)
                if let doc = try? m.exportJSON(s) {
                    let other = try ConsentManager.open(path: tmp.appendingPathComponent("import-\(i).db").path, policyJSON: pol, clock: clock)
                    _ = try? other.importJSON(doc)
                    if let range = doc.range(of: "\"refuse\"") { _ = try? other.importJSON(doc.replacingCharacters(in: range, with: "\"grant\"")) }
                }
                _ = try? m.erase(s, source: .support)
            }
            try clock.set(at: try clock.now().addingTimeInterval(20 * 365 * 86_400))
            _ = try? m.purge()
            _ = try? m.verify()
            tokens.removeAll()
            m = nil
            secrets += mine
        }
        Thread.sleep(forTimeInterval: 0.2) // observer threads drain
        ConsentKitLog.uninstall()
        let log = capture.all.map { "\($0.level) \($0.target) \($0.message)" }.joined(separator: "\n")
        for expected in ["store opened", "erased", "retention purge", "failing closed"] {
            XCTAssertTrue(log.contains(expected), "the log lacks '\(expected)':\n\(log)")
        }
        XCTAssertGreaterThan(secrets.count, 50, "the scenarios' subjects and scopes were collected")
        for marker in [subjectMark, scopeMark, "consentkit-export", "\"history\""] {
            XCTAssertFalse(log.contains(marker), "'\(marker)' in the log")
        }
        for secret in Set(secrets) {
            XCTAssertFalse(log.contains(secret), "'\(secret)' in the log")
        }
    }
}
