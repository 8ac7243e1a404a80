@_spi(Testing) import ConsentKit
import Foundation
import XCTest

/// Issue #10 item 9: OS permissions named by the catalog, from Swift.
final class OSPermissionTests: XCTestCase {
    var dir: URL!
    var consent: ConsentManager!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let catalog = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../../../tests/conformance/policies/fieldtrip_os_permissions.json")
        let clock = try TestClock(at: Date(timeIntervalSince1970: 1_768_467_600))
        consent = try ConsentManager.open(path: dir.appendingPathComponent("c.db").path,
                                          policyJSON: try String(contentsOf: catalog, encoding: .utf8), clock: clock)
    }

    override func tearDownWithError() throws {
        consent = nil
        try FileManager.default.removeItem(at: dir)
    }

    func testPredefinedMembersAreTheCatalogIDs() throws {
        XCTAssertEqual(OSPermission.predefined.map(\.rawValue),
                       ["contacts", "photos", "camera", "microphone", "location", "notifications", "calendar", "app_tracking_transparency"])
        XCTAssertEqual(try OSPermission.validated("camera"), .camera)
    }

    func testANeverReportedPermissionDeniesAndACatalogsOwnIDWorks() throws {
        try consent.grant("alice", category: "beacons")
        try consent.grant("alice", category: "scanning")
        let beacons: OSPermission = "bluetooth_scan"
        XCTAssertEqual(try consent.osPermissionState(beacons), .notDetermined)
        XCTAssertEqual(try consent.check("alice", feature: "beacon_guide").reasons.map(\.code), [.osPermissionNotDetermined])
        let receipt = try consent.reportOSPermission(beacons, state: .granted)
        XCTAssertEqual(receipt?.osPermission, beacons)
        XCTAssertTrue(try consent.isAllowed("alice", feature: "beacon_guide"))
        XCTAssertFalse(try consent.isAllowed("alice", feature: "scan_ticket"), "camera never reported")
        try consent.reportOSPermission(.camera, state: .granted)
        XCTAssertTrue(try consent.isAllowed("alice", feature: "scan_ticket"))
    }

    func testProvisionalNotificationsAndTheLimitedLibraryAllowFlaggedLimited() throws {
        try consent.grant("alice", category: "reminders")
        try consent.grant("alice", category: "trip_photos")
        try consent.reportOSPermission(.notifications, state: .provisional)
        try consent.reportOSPermission(.photos, state: .limited)
        for feature: FeatureID in ["remind", "share_photos"] {
            let d = try consent.check("alice", feature: feature)
            XCTAssertTrue(d.allowed && d.limited, "\(feature)")
        }
        XCTAssertFalse(try consent.check("bob", feature: "remind").allowed, "an OS grant never stands in for consent")
    }

    func testABadIDOrStateNameIsInvalidInputNamingIt() throws {
        try consent.grant("alice", category: "beacons")
        XCTAssertThrowsError(try consent.reportOSPermission("Bluetooth Scan", state: .granted)) { error in
            XCTAssertEqual(Names.errorKind(error), "invalid_input")
            XCTAssertTrue("\(error)".contains("Bluetooth Scan"), "\(error)")
        }
        XCTAssertThrowsError(try OSPermission.validated(String(repeating: "x", count: 65)))
        XCTAssertThrowsError(try OSPermissionState(name: "authorizedAlways")) { error in
            XCTAssertEqual(Names.errorKind(error), "invalid_input")
            XCTAssertTrue("\(error)".contains("authorizedAlways"), "\(error)")
        }
        XCTAssertEqual(try OSPermissionState(name: "provisional"), .provisional)
        XCTAssertFalse(try consent.isAllowed("alice", feature: "beacon_guide"))
    }
}
