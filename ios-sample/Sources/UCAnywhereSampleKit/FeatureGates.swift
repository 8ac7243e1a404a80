import ConsentKit
import Foundation

/// A feature the gate did not allow, with every reason (each naming its category).
public struct FeatureDenied: Error, Equatable, Sendable, CustomStringConvertible {
    public let feature: String
    public let reasons: [Reason]

    public var description: String {
        let why = reasons.map { "\($0.code) (\($0.category))" }.joined(separator: ", ")
        return "'\(feature)' is off for this user: \(why)"
    }
}

/// Where contact lookups go (the device's contacts in the app; a fake in the tests).
public protocol ContactDirectory: Sendable {
    func names(matching query: String) throws -> [String]
}

/// Looks up device contacts, but only when the gate allows `contact_lookup` for the user:
/// checked before every lookup, so a withdrawal or an OS denial stops the next one. Until this
/// process has reported the OS permissions (``PermissionsReported``), the stored contacts state may
/// be an earlier run's (a revocation in Settings ends the app), so the lookup stays off.
public struct ContactLookup: Sendable {
    private let consent: ConsentManager
    private let user: String
    private let directory: any ContactDirectory
    private let permissionsReported: PermissionsReported

    public init(consent: ConsentManager, user: String, directory: any ContactDirectory, permissionsReported: PermissionsReported) {
        self.consent = consent
        self.user = user
        self.directory = directory
        self.permissionsReported = permissionsReported
    }

    /// The matching names; throws `FeatureDenied` (without touching the contacts) when not allowed,
    /// or when the OS permissions were not reported yet in this process (`osPermissionNotDetermined`).
    public func search(_ query: String) throws -> [String] {
        let decision = try consent.check(user, feature: .contactLookup)
        guard decision.allowed else { throw FeatureDenied(feature: decision.feature, reasons: decision.reasons) }
        guard permissionsReported.isReported else {
            throw FeatureDenied(feature: decision.feature, reasons: [Reason(code: .osPermissionNotDetermined, category: CategoryID.deviceContacts.rawValue)])
        }
        return try directory.names(matching: query)
    }
}

/// Where analytics events go (the app's analytics backend; a fake in the tests).
public protocol AnalyticsSink: Sendable {
    func send(_ event: String) throws
}

/// Sends an analytics event only when the gate allows `usage_analytics` for the user.
public struct Analytics: Sendable {
    /// What happened to an event.
    public enum Outcome: Equatable, Sendable {
        case sent
        /// Not sent: the user has not agreed (or withdrew). Not an error; nothing to show.
        case notAllowed([Reason])
    }

    private let consent: ConsentManager
    private let user: String
    private let sink: any AnalyticsSink

    public init(consent: ConsentManager, user: String, sink: any AnalyticsSink) {
        self.consent = consent
        self.user = user
        self.sink = sink
    }

    /// Checks the gate (in memory), then sends or drops `event`. Store and sink failures throw.
    @discardableResult
    public func track(_ event: String) throws -> Outcome {
        let decision = try consent.check(user, feature: .usageAnalytics)
        guard decision.allowed else { return .notAllowed(decision.reasons) }
        try sink.send(event)
        return .sent
    }
}
