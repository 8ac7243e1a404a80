import ConsentKit
import Foundation
import XCTest

@testable import UCAnywhereSampleKit

/// Fakes for the OS and the app's backends: they record what reached them.
final class FakeProbe: PermissionProbe, @unchecked Sendable {
    private let lock = NSLock()
    private var states: (contacts: Authorization, photos: Authorization) = (.notDetermined, .notDetermined)
    func set(contacts: Authorization, photos: Authorization) { lock.lock(); states = (contacts, photos); lock.unlock() }
    func contacts() -> Authorization { lock.lock(); defer { lock.unlock() }; return states.contacts }
    func photos() -> Authorization { lock.lock(); defer { lock.unlock() }; return states.photos }
}

final class FakeDirectory: ContactDirectory, @unchecked Sendable {
    private let lock = NSLock()
    private(set) var queries: [String] = []
    func names(matching query: String) throws -> [String] {
        lock.lock(); queries.append(query); lock.unlock()
        return ["Ada Lovelace"].filter { $0.contains(query) }
    }
}

final class FakeSink: AnalyticsSink, @unchecked Sendable {
    private let lock = NSLock()
    private(set) var events: [String] = []
    func send(_ event: String) throws { lock.lock(); events.append(event); lock.unlock() }
}

@MainActor
final class SampleTests: XCTestCase {
    var base: URL!
    var probe: FakeProbe!
    var directory: FakeDirectory!
    var sink: FakeSink!
    var app: AppModel!

    override func setUp() async throws {
        base = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        probe = FakeProbe()
        directory = FakeDirectory()
        sink = FakeSink()
        app = try makeApp()
        await app.launchReportFinished()  // the launch's OS permission report (not determined: two events)
    }

    override func tearDown() async throws {
        await app?.consent.close()
        app = nil
        try FileManager.default.removeItem(at: base)
    }

    func makeApp(user: String = "alice") throws -> AppModel {
        try AppModel(databaseURL: try StoreLocation.databaseURL(in: base), user: user, probe: probe, directory: directory, sink: sink)
    }

    func row(_ id: CategoryID) -> CategoryRow? { app.settings.rows.first { $0.id == id } }

    // MARK: - Store location

    func testTheStoreLivesInApplicationSupportUnderConsentKit() async throws {
        let url = try StoreLocation.databaseURL(in: base)
        XCTAssertEqual(url, base.appendingPathComponent("ConsentKit/consent.db"))
        var isDirectory: ObjCBool = false
        XCTAssertTrue(FileManager.default.fileExists(atPath: url.deletingLastPathComponent().path, isDirectory: &isDirectory))
        XCTAssertTrue(isDirectory.boolValue)
        XCTAssertTrue(FileManager.default.fileExists(atPath: url.path), "the app opened its store there")
        let support = try FileManager.default.url(for: .applicationSupportDirectory, in: .userDomainMask, appropriateFor: nil, create: false)
        XCTAssertTrue(try StoreLocation.applicationSupportDatabaseURL().path.hasPrefix(support.path))
    }

    // MARK: - Settings screen

    func testRowsFollowEachCategorysStatusAndLegalBasis() async throws {
        XCTAssertEqual(app.settings.rows.map(\.id), CategoryID.builtIn, "policy order")
        XCTAssertEqual(row("usage_statistics")?.title, "Usage statistics", "titles come from policyJSON")
        XCTAssertEqual(row("usage_statistics")?.control, .consent)
        XCTAssertEqual(row("usage_statistics")?.isOn, false, "never asked is off")
        XCTAssertEqual(row("contact_information")?.control, .objection)
        XCTAssertEqual(row("contact_information")?.isOn, true)
        XCTAssertEqual(row("traffic_data")?.control, .fixed)
        XCTAssertEqual(row("traffic_data")?.note, "Needed to provide the service")
    }

    func testSwitchesGrantWithdrawAndObjectAndTheRowShowsTheStoredStatus() async throws {
        await app.settings.set("usage_statistics", isOn: true)
        XCTAssertEqual(row("usage_statistics")?.status, .granted)
        XCTAssertEqual(row("usage_statistics")?.isOn, true)
        let last = try await app.consent.history("alice").last
        XCTAssertEqual(last?.source, .settings)
        await app.settings.set("usage_statistics", isOn: false)
        XCTAssertEqual(row("usage_statistics")?.status, .withdrawn)
        XCTAssertFalse(try app.consent.isAllowed("alice", feature: "usage_analytics"))
        await app.settings.set("contact_information", isOn: false)
        XCTAssertEqual(row("contact_information")?.status, .objected)
        XCTAssertEqual(row("contact_information")?.isOn, false)
        await app.settings.set("contact_information", isOn: true)
        XCTAssertEqual(row("contact_information")?.isOn, true)
        XCTAssertNil(app.settings.error)
    }

    func testAGrantedCategoryWhoseContactsPermissionIsDeniedStaysOn() async throws {
        await app.settings.set("device_contacts", isOn: true)
        probe.set(contacts: .denied, photos: .denied)
        await app.becameActive()
        XCTAssertFalse(try app.consent.isAllowed("alice", feature: "contact_lookup"), "the feature is off")
        XCTAssertEqual(row("device_contacts")?.isOn, true, "the switch shows the user's consent, not the feature check")
    }

    func testARenewalAfterAPurposeChangeShowsOffWithANote() async throws {
        await app.settings.set("usage_statistics", isOn: true)
        await app.consent.close()
        let v2 = URL(fileURLWithPath: #filePath).appendingPathComponent("../../../../tests/conformance/policies/ucanywhere_usage_purpose_v2.json").standardizedFileURL
        let consent = try await ConsentManager.open(path: try StoreLocation.databaseURL(in: base).path, policyJSON: try String(contentsOf: v2, encoding: .utf8))
        defer { consent.close() }
        let settings = SettingsScreenModel(consent: consent, user: "alice", titles: try CatalogTitles(policyJSON: try consent.policyJSON))
        settings.reload()
        let renewal = settings.rows.first { $0.id == "usage_statistics" }
        XCTAssertEqual(renewal?.status, .renewalRequired)
        XCTAssertEqual(renewal?.isOn, false)
        XCTAssertEqual(renewal?.note, "The purpose changed: turn on to agree again")
    }

    func testAFailedSwitchIsShownAndTheRowKeepsTheStoredStatus() async throws {
        try await app.consent.markUnderAge("alice", source: .onboarding)
        await app.settings.set("usage_statistics", isOn: true)
        XCTAssertEqual(row("usage_statistics")?.isOn, false)
        let error = try XCTUnwrap(app.settings.error)
        XCTAssertEqual(error.action, "save your choice for Usage statistics")
        XCTAssertTrue(error.description.hasPrefix("Could not save your choice for Usage statistics: "), error.description)
        await app.settings.set("traffic_data", isOn: false)
        XCTAssertEqual(app.settings.error?.detail, "'Traffic data' is needed to provide the service and cannot be switched off")
    }

    // MARK: - Onboarding

    func testOnboardingAsksTheConsentCategoriesAndSavesTheAnswersAsOneBatch() async throws {
        XCTAssertEqual(app.onboarding.questions.map(\.id), [.deviceContacts, .photosMedia, .usageStatistics])
        app.onboarding.answers = ["device_contacts": true, "usage_statistics": true]
        await app.finishOnboarding()
        XCTAssertTrue(app.onboarding.isDone)
        let history = try await app.consent.history("alice").filter { $0.osPermission == nil }  // after the launch report's seq 1 and 2
        XCTAssertEqual(history.map(\.action), [.grant, .refuse, .grant], "unanswered is a refusal")
        XCTAssertEqual(Set(history.map(\.source)), [.onboarding])
        XCTAssertEqual(history.map(\.seq), [3, 4, 5])
        XCTAssertEqual(Set(history.map(\.at)).count, 1, "one transaction, one time")
        XCTAssertEqual(row("usage_statistics")?.isOn, true)
        let next = try await makeAppAfterClosing()
        XCTAssertTrue(next.onboarding.isDone, "answered: not asked again")
    }

    func testAFailedOnboardingRecordsNothingAndShowsTheError() async throws {
        try await app.consent.markUnderAge("alice", source: .onboarding)
        let before = try await app.consent.history("alice").count
        app.onboarding.answers = ["usage_statistics": true]
        let receipts = await app.onboarding.submit()
        XCTAssertEqual(receipts, [])
        let after = try await app.consent.history("alice").count
        XCTAssertEqual(after, before, "all or none")
        XCTAssertFalse(app.onboarding.isDone, "the questions stay")
        XCTAssertEqual(app.onboarding.error?.action, "save your answers")
    }

    func makeAppAfterClosing() async throws -> AppModel {
        await app.consent.close()
        app = try makeApp()
        return app
    }

    // MARK: - OS permissions

    func testEveryAuthorizationMapsToItsState() async throws {
        XCTAssertEqual(Authorization.allCases.map(\.consentKitState), [.notDetermined, .restricted, .denied, .granted, .limited])
    }

    func testPermissionsAreReportedWhenTheAppBecomesActiveIncludingLimitedPhotos() async throws {
        probe.set(contacts: .authorized, photos: .limited)
        await app.becameActive()
        XCTAssertNil(app.error)
        XCTAssertEqual(try app.consent.osPermissionState(.contacts), .granted)
        XCTAssertEqual(try app.consent.osPermissionState(.photos), .limited)
        try await app.consent.grant("alice", category: "photos_media")
        let photos = try app.consent.check("alice", feature: "photo_sharing")
        XCTAssertTrue(photos.allowed)
        XCTAssertTrue(photos.limited, "limited library access is passed on")
        let reporter = PermissionReporter(consent: app.consent, probe: probe)
        let unchanged = try await reporter.appBecameActive()
        XCTAssertEqual(unchanged, [], "nothing changed, nothing recorded")
        probe.set(contacts: .denied, photos: .limited)
        let changed = try await reporter.appBecameActive()
        XCTAssertEqual(changed.map(\.osState), [.denied])
    }

    func testAContactsPermissionRevokedInSettingsWhileTheAppWasNotRunningIsHonouredFromTheFirstLookup() async throws {
        probe.set(contacts: .authorized, photos: .notDetermined)
        await app.becameActive()
        await app.settings.set(.deviceContacts, isOn: true)
        XCTAssertEqual(try app.contacts.search("Ada"), ["Ada Lovelace"])
        await app.consent.close()
        // iOS ends the app when the user turns contacts off in Settings. The next launch (or a
        // launch for background work, which never becomes active) finds "granted" stored.
        probe.set(contacts: .denied, photos: .notDetermined)
        app = try makeApp()
        XCTAssertThrowsError(try app.contacts.search("Ada"), "the stored state of an earlier run is not trusted") { error in
            XCTAssertEqual((error as? FeatureDenied)?.reasons, [Reason(code: .osPermissionNotDetermined, category: "device_contacts")])
        }
        await app.launchReportFinished()
        XCTAssertNil(app.error)
        XCTAssertEqual(try app.consent.osPermissionState(.contacts), .denied, "reported at launch, without becoming active")
        XCTAssertThrowsError(try app.contacts.search("Ada")) { error in
            XCTAssertEqual((error as? FeatureDenied)?.reasons.map(\.code), [.osPermissionDenied])
        }
        XCTAssertEqual(directory.queries, ["Ada"], "no lookup after the revocation reached the contacts")
        probe.set(contacts: .authorized, photos: .notDetermined)
        await app.becameActive()
        XCTAssertEqual(try app.contacts.search("Ada"), ["Ada Lovelace"], "turned on again in Settings")
    }

    func testADamagedStoreIsShownAndDeniesConsentFeatures() async throws {
        await app.consent.close()
        try Data(repeating: 0x5A, count: 4096).write(to: try StoreLocation.databaseURL(in: base))
        app = try makeApp()
        XCTAssertNotNil(app.storeProblem, "a banner says why")
        XCTAssertEqual(try app.analytics.track("launch"), .notAllowed([Reason(code: .storeUnavailable, category: "usage_statistics")]))
        XCTAssertTrue(sink.events.isEmpty)
        XCTAssertTrue(app.canRecover)
        await app.recover()
        XCTAssertNil(app.error)
        XCTAssertNil(app.storeProblem, "a fresh store")
        XCTAssertFalse(app.canRecover)
        XCTAssertEqual(app.onboarding.questions.map(\.id), [.deviceContacts, .photosMedia, .usageStatistics], "asks again")
        await app.settings.set(.usageStatistics, isOn: true)
        XCTAssertEqual(try app.analytics.track("after_reset"), .sent)
        let kept = try FileManager.default.contentsOfDirectory(atPath: base.appendingPathComponent("ConsentKit").path)
        XCTAssertTrue(kept.contains { $0.hasPrefix("consent.db.corrupt-") }, "the damaged file is kept for support: \(kept)")
    }

    func testAHealthyStoreIsNeverReset() async throws {
        XCTAssertFalse(app.canRecover)
        await app.settings.set(.usageStatistics, isOn: true)
        await app.recover()
        XCTAssertEqual(app.error?.action, "reset the damaged consent store")
        XCTAssertEqual(row("usage_statistics")?.isOn, true, "nothing lost")
    }

    func testAFailedPermissionReportIsShown() async throws {
        XCTAssertNil(app.storeProblem)
        await app.consent.close()
        XCTAssertEqual(app.storeProblem?.hasPrefix("Could not check the consent store: "), true)
        await app.becameActive()
        XCTAssertEqual(app.error?.action, "read the permission settings")
        XCTAssertEqual(app.settings.error?.action, "load your privacy settings")
    }

    // MARK: - Feature gates

    func testTheContactLookupIsGatedBeforeTheContactsAreTouched() async throws {
        XCTAssertThrowsError(try app.contacts.search("Ada")) { error in
            XCTAssertEqual((error as? FeatureDenied)?.reasons.map(\.code), [.consentNotAsked, .osPermissionNotDetermined])
            XCTAssertEqual("\(error)", "'contact_lookup' is off for this user: consentNotAsked (device_contacts), osPermissionNotDetermined (device_contacts)")
        }
        XCTAssertEqual(directory.queries, [], "denied: the contacts were never read")
        await app.settings.set("device_contacts", isOn: true)
        probe.set(contacts: .authorized, photos: .notDetermined)
        await app.becameActive()
        XCTAssertEqual(try app.contacts.search("Ada"), ["Ada Lovelace"])
        await app.settings.set("device_contacts", isOn: false)
        XCTAssertThrowsError(try app.contacts.search("Ada"))
        XCTAssertEqual(directory.queries, ["Ada"], "only the allowed lookup reached the contacts")
    }

    func testAnAnalyticsEventIsSentOnlyWhileAllowed() async throws {
        XCTAssertEqual(try app.analytics.track("launch"), .notAllowed([Reason(code: .consentNotAsked, category: "usage_statistics")]))
        await app.settings.set("usage_statistics", isOn: true)
        XCTAssertEqual(try app.analytics.track("opened_settings"), .sent)
        await app.settings.set("usage_statistics", isOn: false)
        XCTAssertEqual(try app.analytics.track("after_withdrawal"), .notAllowed([Reason(code: .consentWithdrawn, category: "usage_statistics")]))
        XCTAssertEqual(sink.events, ["opened_settings"])
    }

    // MARK: - Errors are shown, never swallowed

    func testTheSampleNeverSwallowsAnErrorWithTryQuestionMark() async throws {
        let sources = URL(fileURLWithPath: #filePath).appendingPathComponent("../../../Sources").standardizedFileURL
        let files = try XCTUnwrap(FileManager.default.enumerator(at: sources, includingPropertiesForKeys: nil)).compactMap { $0 as? URL }
            .filter { $0.pathExtension == "swift" }
        XCTAssertGreaterThanOrEqual(files.count, 8)
        for file in files {
            let text = try String(contentsOf: file, encoding: .utf8)
            XCTAssertFalse(text.contains("try?"), "\(file.lastPathComponent) swallows an error with try?")
        }
    }
}
