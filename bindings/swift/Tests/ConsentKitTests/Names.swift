@_spi(Testing) import ConsentKit

/// snake_case names of the scenario files <-> the generated Swift enums.
enum Names {
    static func source(_ s: String) -> Source {
        switch s {
        case "onboarding": return .onboarding
        case "settings": return .settings
        case "os_settings": return .osSettings
        case "support": return .support
        case "guardian": return .guardian
        case "import": return .import
        default: return .system
        }
    }

    static func action(_ s: String) -> Action {
        switch s {
        case "grant": return .grant
        case "refuse": return .refuse
        case "withdraw": return .withdraw
        case "object": return .object
        default: return .withdrawObjection
        }
    }

    static func permission(_ s: String) -> OSPermission { OSPermission(s) }

    /// Parsed by the SDK: an unknown name throws (never a default state).
    static func osState(_ s: String) throws -> OSPermissionState { try OSPermissionState(name: s) }

    static func osStateName(_ s: OSPermissionState) -> String {
        switch s {
        case .granted: return "granted"
        case .limited: return "limited"
        case .provisional: return "provisional"
        case .denied: return "denied"
        case .notDetermined: return "not_determined"
        case .restricted: return "restricted"
        }
    }

    static func reason(_ r: ReasonCode) -> String {
        switch r {
        case .consentNotAsked: return "consent_not_asked"
        case .consentRefused: return "consent_refused"
        case .consentWithdrawn: return "consent_withdrawn"
        case .consentExpired: return "consent_expired"
        case .renewalRequired: return "renewal_required"
        case .objected: return "objected"
        case .scopeNotGranted: return "scope_not_granted"
        case .osPermissionDenied: return "os_permission_denied"
        case .osPermissionNotDetermined: return "os_permission_not_determined"
        case .osPermissionRestricted: return "os_permission_restricted"
        case .underAge: return "under_age"
        case .storeUnavailable: return "store_unavailable"
        }
    }

    static func status(_ s: Status) -> String {
        switch s {
        case .notRequired: return "not_required"
        case .notAsked: return "not_asked"
        case .granted: return "granted"
        case .refused: return "refused"
        case .withdrawn: return "withdrawn"
        case .expired: return "expired"
        case .renewalRequired: return "renewal_required"
        case .objected: return "objected"
        }
    }

    static func errorKind(_ e: Error) -> String {
        guard let e = e as? ConsentKitError else { return "not_a_consentkit_error" }
        switch e {
        case .UnknownCategory: return "unknown_category"
        case .UnknownFeature: return "unknown_feature"
        case .InvalidInput: return "invalid_input"
        case .NotApplicable: return "not_applicable"
        case .GrantBySupport: return "grant_by_support"
        case .UnderAge: return "under_age"
        case .InvalidPolicy: return "invalid_policy"
        case .ImportRejected: return "import_rejected"
        case .SchemaTooNew: return "schema_too_new"
        case .StoreUnavailable: return "store_unavailable"
        case .Closed: return "closed"
        case .Internal: return "internal"
        case .Busy: return "busy"
        case .Suspended: return "suspended"
        case .WriteFromHook: return "write_from_hook"
        }
    }
}
