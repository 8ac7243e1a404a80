@_spi(Testing) import ConsentKit
import Foundation
import XCTest

/// What ships with the package for Apple platforms, checked where it can be on any machine: the
/// privacy manifest, the XCFramework's header layout and module map, the scripts, the manifests.
final class PackagingTests: XCTestCase {
    let package = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardizedFileURL

    // MARK: - Privacy manifest

    func testThePrivacyManifestIsBundledWithTheLibrary() throws {
        let bundled = try XCTUnwrap(PrivacyManifest.url, "PrivacyInfo.xcprivacy is not in the ConsentKit resource bundle")
        let source = package.appendingPathComponent("Sources/ConsentKit/PrivacyInfo.xcprivacy")
        XCTAssertEqual(try Data(contentsOf: bundled), try Data(contentsOf: source))
    }

    func testThePrivacyManifestDeclaresNoTrackingAndTheFileTimestampReason() throws {
        let data = try Data(contentsOf: package.appendingPathComponent("Sources/ConsentKit/PrivacyInfo.xcprivacy"))
        let plist = try XCTUnwrap(try PropertyListSerialization.propertyList(from: data, format: nil) as? [String: Any])
        // Only Apple's keys: an unknown key makes App Store Connect reject the upload.
        XCTAssertEqual(Set(plist.keys), ["NSPrivacyTracking", "NSPrivacyTrackingDomains", "NSPrivacyCollectedDataTypes", "NSPrivacyAccessedAPITypes"])
        XCTAssertEqual(plist["NSPrivacyTracking"] as? Bool, false)
        XCTAssertEqual((plist["NSPrivacyTrackingDomains"] as? [Any])?.count, 0)
        // ConsentKit sends nothing off the device itself: the app declares what its backend collects.
        XCTAssertEqual((plist["NSPrivacyCollectedDataTypes"] as? [Any])?.count, 0)
        let apis = try XCTUnwrap(plist["NSPrivacyAccessedAPITypes"] as? [[String: Any]])
        XCTAssertEqual(apis.count, 1)
        XCTAssertEqual(apis.first?["NSPrivacyAccessedAPIType"] as? String, "NSPrivacyAccessedAPICategoryFileTimestamp", "SQLite stats its files")
        let reasons = try XCTUnwrap(apis.first?["NSPrivacyAccessedAPITypeReasons"] as? [String])
        XCTAssertEqual(reasons, ["C617.1"], "files inside the app's container")
        XCTAssertTrue(Set(reasons).isSubset(of: ["DDA9.1", "C617.1", "3B52.1", "0A2A.1"]), "Apple's file-timestamp reason codes")
    }

    // MARK: - XCFramework layout (what build-xcframework.sh writes around the headers)

    func testTheXCFrameworkHeadersSitInTheirOwnFolderWithAPlainModuleMap() throws {
        let headers = try temporaryDirectory()
        try run("/bin/bash", [package.appendingPathComponent("build-xcframework.sh").path, "--headers-only", headers.path])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: headers.path), ["ConsentKitFFIC"], "nothing at the root of Headers/")
        let folder = headers.appendingPathComponent("ConsentKitFFIC")
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: folder.path)), ["module.modulemap", "ConsentKitFFIC.h", "ConsentKitGate.h"])
        let map = try String(contentsOf: folder.appendingPathComponent("module.modulemap"), encoding: .utf8)
        XCTAssertTrue(map.hasPrefix("module ConsentKitFFIC {"), "a plain module for a -library XCFramework, not a framework module")
        XCTAssertFalse(map.contains("use \""), "no `use` lines (they break the module on current Xcode)")
        XCTAssertFalse(map.contains("link"), "Xcode links the slice's library itself")
        XCTAssertTrue(map.contains("header \"ConsentKitFFIC.h\""))
        XCTAssertTrue(map.contains("header \"ConsentKitGate.h\""), "the hand-written C gate ships in the module")
        XCTAssertEqual(try Data(contentsOf: folder.appendingPathComponent("ConsentKitGate.h")),
                       try Data(contentsOf: package.appendingPathComponent("Sources/ConsentKitFFIC/ConsentKitGate.h")), "the package's own gate header")
    }

    func testTheNestedModuleMapResolvesFromTheHeadersRoot() throws {
        // Xcode copies Headers/ into the app's include directory and searches its root; clang must
        // find Headers/ConsentKitFFIC/module.modulemap from there.
        let headers = try temporaryDirectory()
        try run("/bin/bash", [package.appendingPathComponent("build-xcframework.sh").path, "--headers-only", headers.path])
        let probe = headers.deletingLastPathComponent().appendingPathComponent("\(headers.lastPathComponent)-probe.swift")
        try "import ConsentKitFFIC\nlet _: RustBuffer.Type = RustBuffer.self\nlet _: Int32 = CONSENTKIT_GATE_LAYOUT\nlet _ = consentkit_gate_check\n".write(to: probe, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: probe) }
        let swiftc = ProcessInfo.processInfo.environment["CONSENTKIT_SWIFTC"] ?? "swiftc"
        try run("/usr/bin/env", [swiftc, "-typecheck", "-I", headers.path, "-module-cache-path", headers.appendingPathComponent("cache").path, probe.path])
    }

    // MARK: - Scripts and manifests

    func testTheScriptsParse() throws {
        for script in ["common.sh", "generate.sh", "run-tests.sh", "build-xcframework.sh"] {
            try run("/bin/bash", ["-n", package.appendingPathComponent(script).path])
        }
    }

    func testNoManifestUsesUnsafeFlags() throws {
        // A package with unsafe flags cannot be added by URL ("contains unsafe build flags").
        for manifest in ["Package.swift", "../../ios-sample/Package.swift"] {
            let text = try String(contentsOf: package.appendingPathComponent(manifest), encoding: .utf8)
            XCTAssertFalse(text.contains("unsafeFlags"), manifest)
        }
    }

    // MARK: - Helpers

    func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir
    }

    /// Runs a program; throws with its output if it fails.
    func run(_ executable: String, _ arguments: [String]) throws {
        try runChecked(URL(fileURLWithPath: executable), arguments)
    }
}
