@_spi(Testing) import ConsentKit
import Foundation
import XCTest

/// The Swift runner of tests/conformance: every scenario through `ConsentManager` (cached gate included).
final class ConformanceTests: XCTestCase {
    let tests = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../../../tests").standardizedFileURL

    func date(_ text: String) -> Date? { ISO8601DateFormatter().date(from: text) }

    func policy(_ ref: String) throws -> String? {
        ref == "builtin" ? nil : try String(contentsOf: tests.appendingPathComponent(ref), encoding: .utf8)
    }

    func run(_ m: ConsentManager, _ step: [String: Any]) throws -> [String: Any] {
        let subject = step["subject"] as? String ?? ""
        let category = CategoryID(step["category"] as? String ?? "")
        let source = Names.source(step["source"] as? String ?? "settings")
        let scope = step["scope"] as? String
        switch step["do"] as! String {
        case "grant": try m.grant(subject, category: category, source: source, scope: scope)
        case "refuse": try m.refuse(subject, category: category, source: source, scope: scope)
        case "withdraw": try m.withdraw(subject, category: category, source: source, scope: scope)
        case "object": try m.object(subject, category: category, source: source)
        case "withdraw_objection": try m.withdrawObjection(subject, category: category, source: source)
        case "batch":
            let list = step["decisions"] as! [[String: Any]]
            try m.record(list.map {
                ConsentChoice(subject: $0["subject"] as! String, category: $0["category"] as! String, action: Names.action($0["action"] as! String),
                              scope: $0["scope"] as? String, source: Names.source($0["source"] as! String))
            })
        case "os": try m.reportOSPermission(Names.permission(step["permission"] as! String), state: try Names.osState(step["state"] as! String))
        case "os_state": return ["state": Names.osStateName(try m.osPermissionState(Names.permission(step["permission"] as! String)))]
        case "under_age": try m.markUnderAge(subject, isUnderAge: step["value"] as! Bool, source: source)
        case "erase": try m.erase(subject, source: source)
        case "import":
            try m.importJSON(try String(contentsOf: tests.appendingPathComponent(step["document"] as! String), encoding: .utf8))
        case "check":
            let d = try m.check(subject, feature: FeatureID(step["feature"] as! String), scope: scope)
            return ["allowed": d.allowed, "limited": d.limited, "reasons": d.reasons.map { [Names.reason($0.code), $0.category] }]
        case "status":
            let s = try m.status(subject, category: category)
            return ["status": Names.status(s.status), "since": s.since as Any]
        case "should_ask": return ["value": try m.shouldAsk(subject, category: category)]
        case "verify":
            let v = try m.verify()
            return ["intact": v.intact, "events": v.events]
        default: XCTFail("unknown step \(step)")
        }
        return [:]
    }

    func compare(_ at: String, _ expect: [String: Any], _ got: [String: Any]) {
        for (key, wanted) in expect {
            switch key {
            case "since":
                if let text = wanted as? String { XCTAssertEqual(got["since"] as? Date, date(text), at) } else { XCTAssertNil(got["since"] as? Date, at) }
            case "reasons":
                XCTAssertEqual(got["reasons"] as? [[String]], wanted as? [[String]], "\(at): reasons")
            case "allowed", "limited", "intact", "value":
                XCTAssertEqual(got[key] as? Bool, (wanted as? NSNumber)?.boolValue, "\(at): \(key)")
            case "events":
                XCTAssertEqual(got[key] as? Int64, (wanted as? NSNumber)?.int64Value, "\(at): \(key)")
            default:
                XCTAssertEqual(got[key] as? String, wanted as? String, "\(at): \(key)")
            }
        }
    }

    func testEveryScenario() throws {
        let dir = tests.appendingPathComponent("conformance/scenarios")
        let files = try FileManager.default.contentsOfDirectory(at: dir, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "json" }.sorted { $0.lastPathComponent < $1.lastPathComponent }
        XCTAssertGreaterThanOrEqual(files.count, 32, "the scenarios of tests/conformance")
        for file in files {
            let scenario = try JSONSerialization.jsonObject(with: Data(contentsOf: file)) as! [String: Any]
            let name = scenario["name"] as! String
            let tmp = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
            try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: tmp) }
            let db = tmp.appendingPathComponent("c.db").path
            let clock = try TestClock(at: try XCTUnwrap(date(scenario["start"] as! String)))
            // Implicitly unwrapped so a reopen can release the old store first (one store per file per process).
            var m: ConsentManager! = try ConsentManager.open(path: db, policyJSON: try policy(scenario["policy"] as! String), clock: clock)
            for (i, step) in (scenario["steps"] as! [[String: Any]]).enumerated() {
                let at = "\(name) step \(i) (\(step["do"]!))"
                if let time = step["at"] as? String { try clock.set(at: try XCTUnwrap(date(time))) }
                switch step["do"] as! String {
                case "reopen":
                    m = nil
                    m = try ConsentManager.open(path: db, policyJSON: try policy(step["policy"] as! String), clock: clock)
                    continue
                case "open_damaged":
                    m = nil
                    let damaged = tmp.appendingPathComponent("damaged.db")
                    try Data(repeating: 0x5A, count: 4096).write(to: damaged)
                    m = try ConsentManager.open(path: damaged.path, policyJSON: try policy(scenario["policy"] as! String))
                    XCTAssertNotNil(try m.unavailable, at)
                    continue
                default: break
                }
                let expect = step["expect"] as? [String: Any] ?? [:]
                do {
                    let got = try run(m, step)
                    if let kind = expect["error"] { XCTFail("\(at): expected error \(kind), got \(got)"); continue }
                    compare(at, expect, got)
                } catch {
                    XCTAssertEqual(Names.errorKind(error), expect["error"] as? String, "\(at): \(error)")
                }
            }
        }
    }
}
