import ConsentKit
import Foundation
import Observation

/// One row of the privacy settings screen. Its state comes from the category's *status* (what
/// the user decided, and whether it still holds), never from a feature check: a feature can be
/// off for other reasons (the OS permission), and the switch must show the user's own choice.
public struct CategoryRow: Identifiable, Equatable, Sendable {
    /// How the row can be changed.
    public enum Control: Equatable, Sendable {
        /// A consent: on is a grant, off a withdrawal, equally easy (GDPR Art. 7(3)).
        case consent
        /// A legitimate interest: on by default, off is an objection (Art. 21).
        case objection
        /// Needed for the service (contract, legal obligation): shown, not switchable.
        case fixed
    }

    /// The category.
    public let id: CategoryID
    /// The catalog's title.
    public let title: String
    public let legalBasis: LegalBasis
    public let status: Status
    public let control: Control
    /// Whether the switch shows on.
    public let isOn: Bool
    /// A line under the title when the status needs explaining (renewal due, expired, ...).
    public let note: String?

    /// The row for a category in `status`.
    public init(_ status: CategoryStatus, title: String) {
        id = status.categoryID
        self.title = title
        legalBasis = status.legalBasis
        self.status = status.status
        switch status.legalBasis {
        case .consent:
            control = .consent
            isOn = status.status == .granted
        case .legitimateInterest:
            control = .objection
            isOn = status.status != .objected
        case .contract, .legalObligation:
            control = .fixed
            isOn = true
        }
        switch status.status {
        case .renewalRequired: note = "The purpose changed: turn on to agree again"
        case .expired: note = "Your agreement expired: turn on to agree again"
        case .objected: note = "You objected"
        case .notRequired where control == .fixed: note = "Needed to provide the service"
        default: note = nil
        }
    }
}

/// The privacy settings screen: one row per category, switches that grant and withdraw (or
/// object and withdraw the objection), and the error of the last action, shown to the user.
@MainActor
@Observable
public final class SettingsScreenModel {
    public private(set) var rows: [CategoryRow] = []
    /// The last failure, for an alert; nil when there is none. Set it to nil to dismiss.
    public var error: UserFacingError?

    private let consent: ConsentManager
    private let user: String
    private let titles: CatalogTitles

    public init(consent: ConsentManager, user: String, titles: CatalogTitles) {
        self.consent = consent
        self.user = user
        self.titles = titles
    }

    /// Reads every category's status (on appear, after onboarding, when the app becomes active).
    public func reload() {
        do {
            rows = try consent.statuses(user).map { CategoryRow($0, title: titles.category($0.categoryID)) }
        } catch {
            self.error = UserFacingError("load your privacy settings", error)
        }
    }

    /// The user flipped the switch of `category`. Records the decision from `.settings` off the
    /// main thread (a write commits to disk), then shows the status as stored (on failure the
    /// switch goes back and the error is shown).
    public func set(_ category: CategoryID, isOn: Bool) async {
        guard let row = rows.first(where: { $0.id == category }) else {
            error = UserFacingError("change \(category)", SettingsError.unknownRow(category))
            return
        }
        do {
            switch (row.control, isOn) {
            case (.consent, true): try await consent.grant(user, category: category, source: .settings)
            case (.consent, false): try await consent.withdraw(user, category: category, source: .settings)
            case (.objection, false): try await consent.object(user, category: category, source: .settings)
            case (.objection, true): try await consent.withdrawObjection(user, category: category, source: .settings)
            case (.fixed, _): throw SettingsError.notSwitchable(row.title)
            }
        } catch {
            self.error = UserFacingError("save your choice for \(row.title)", error)
        }
        reload()
    }
}

/// A settings action that cannot be done.
public enum SettingsError: Error, Equatable, CustomStringConvertible {
    case unknownRow(CategoryID)
    case notSwitchable(String)

    public var description: String {
        switch self {
        case .unknownRow(let id): "the settings screen has no row '\(id)'"
        case .notSwitchable(let title): "'\(title)' is needed to provide the service and cannot be switched off"
        }
    }
}
