import ConsentKit
import Foundation
import Observation

/// The app's one ConsentManager and the screens' models. Created once at launch; one manager per
/// database file per process.
@MainActor
@Observable
public final class AppModel {
    public private(set) var consent: ConsentManager
    public let user: String
    public private(set) var settings: SettingsScreenModel
    public private(set) var onboarding: OnboardingModel
    public private(set) var contacts: ContactLookup
    public private(set) var analytics: Analytics
    /// The last failure outside a screen (reporting OS permissions, recovery), for an alert.
    public var error: UserFacingError?

    private var permissions: PermissionReporter
    /// The OS permission report started at launch (and again after a recovery).
    @ObservationIgnored private var launchReport: Task<Void, Never>?
    private let probe: any PermissionProbe
    private let directory: any ContactDirectory
    private let sink: any AnalyticsSink

    /// Opens the store at `databaseURL` (fail-closed: a damaged store denies consent-gated
    /// features and the app keeps working) for `user`, and starts reporting the OS permissions
    /// (off the main thread): at every launch, also one for background work that never becomes
    /// active, since the user may have revoked a permission in Settings while the app was not
    /// running. Until that report is stored, the contact lookup stays off.
    public init(databaseURL: URL, user: String, probe: any PermissionProbe, directory: any ContactDirectory, sink: any AnalyticsSink) throws {
        let consent = try ConsentManager.open(path: databaseURL.path)
        let titles = try CatalogTitles(policyJSON: try consent.policyJSON)
        self.consent = consent
        self.user = user
        self.probe = probe
        self.directory = directory
        self.sink = sink
        let permissions = PermissionReporter(consent: consent, probe: probe)
        self.permissions = permissions
        settings = SettingsScreenModel(consent: consent, user: user, titles: titles)
        onboarding = OnboardingModel(consent: consent, user: user, titles: titles)
        contacts = ContactLookup(consent: consent, user: user, directory: directory, permissionsReported: permissions.reported)
        analytics = Analytics(consent: consent, user: user, sink: sink)
        onboarding.load()
        settings.reload()
        launchReport = Task { [weak self] in await self?.reportPermissions() }
    }

    /// Waits until the OS permission report started at launch (or by ``recover()``) is done. The
    /// app need not wait (gates that need a permission stay off until then); tests do.
    public func launchReportFinished() async {
        await launchReport?.value
    }

    /// True when the store is damaged and moving it aside is the way to recover (offer a
    /// "Reset privacy choices" button).
    public var canRecover: Bool {
        do {
            return try consent.unavailableReason?.canQuarantine == true
        } catch {
            return false  // a closed manager: nothing to recover here (storeProblem says why)
        }
    }

    /// Moves the damaged store aside (kept for support) and starts over on a fresh one: the
    /// screens follow the new manager, and onboarding asks again.
    public func recover() async {
        await launchReport?.value  // the old store's report first: it must not run against the fresh store
        do {
            let recovered = try await consent.quarantineAndReopen()
            let titles = try CatalogTitles(policyJSON: try recovered.manager.policyJSON)
            consent = recovered.manager
            settings = SettingsScreenModel(consent: consent, user: user, titles: titles)
            onboarding = OnboardingModel(consent: consent, user: user, titles: titles)
            permissions = PermissionReporter(consent: consent, probe: probe)
            contacts = ContactLookup(consent: consent, user: user, directory: directory, permissionsReported: permissions.reported)
            analytics = Analytics(consent: consent, user: user, sink: sink)
            onboarding.load()
            settings.reload()
            launchReport = Task { [weak self] in await self?.reportPermissions() }
        } catch {
            self.error = UserFacingError("reset the damaged consent store", error)
        }
    }

    /// Why the store is unusable (shown as a banner), or nil: the reason a damaged store failed
    /// closed, or the error that kept ConsentKit from saying.
    public var storeProblem: String? {
        do {
            return try consent.unavailable
        } catch {
            return UserFacingError("check the consent store", error).description
        }
    }

    /// Call when the scene becomes active: reports the OS permissions, then refreshes the screens.
    public func becameActive() async {
        await launchReport?.value  // one report at a time: an older reading never lands after a newer one
        await reportPermissions()
        settings.reload()
    }

    /// Reports the OS permissions; a failure is shown. A store that failed closed takes no write
    /// (its banner says why), so it is not asked to.
    private func reportPermissions() async {
        do {
            guard try consent.unavailable == nil else { return }
            try await permissions.appBecameActive()
        } catch {
            self.error = UserFacingError("read the permission settings", error)
        }
    }

    /// Saves the onboarding answers and shows the result in the settings screen.
    public func finishOnboarding() async {
        await onboarding.submit()
        settings.reload()
    }
}
