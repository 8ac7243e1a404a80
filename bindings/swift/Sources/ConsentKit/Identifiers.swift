import ConsentKitFFI

/// A category of the policy, by id. The built-in UCAnywhere catalog's categories are static
/// members (`.deviceContacts`), so a feature id where a category belongs does not compile; another
/// catalog's are string literals (`"marketing_cookies"`) or `CategoryID(name)`.
public struct CategoryID: RawRepresentable, Hashable, Sendable, ExpressibleByStringLiteral, CustomStringConvertible {
    /// The id as the policy spells it.
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    /// The category `id` of any catalog.
    public init(_ id: String) { rawValue = id }
    public init(stringLiteral id: String) { rawValue = id }
    public var description: String { rawValue }

    /// Byte-exact, as the core compares ids: two spellings that Swift's `String ==` takes as
    /// canonically equivalent (`"caf\u{e9}"`, `"cafe\u{301}"`) are two different ids here, so a
    /// `Set` or `Dictionary` keyed by `CategoryID` never merges what the policy keeps apart.
    public static func == (a: CategoryID, b: CategoryID) -> Bool { ExactText.same(a.rawValue, b.rawValue) }
    /// Hashes the id's UTF-8 bytes, consistent with `==`.
    public func hash(into hasher: inout Hasher) { ExactText.hash(rawValue, into: &hasher) }

    /// UCAnywhere: account data (contract).
    public static let userInformation: CategoryID = "user_information"
    /// UCAnywhere: e-mail and phone for service messages (legitimate interest).
    public static let contactInformation: CategoryID = "contact_information"
    /// UCAnywhere: call and message metadata (contract).
    public static let trafficData: CategoryID = "traffic_data"
    /// UCAnywhere: the business directory (contract).
    public static let businessContacts: CategoryID = "business_contacts"
    /// UCAnywhere: the device's contact list (consent, needs the contacts permission).
    public static let deviceContacts: CategoryID = "device_contacts"
    /// UCAnywhere: photos and media (consent, needs the photos permission).
    public static let photosMedia: CategoryID = "photos_media"
    /// UCAnywhere: anonymised usage statistics (consent).
    public static let usageStatistics: CategoryID = "usage_statistics"
    /// UCAnywhere: chat content (contract).
    public static let chatInformation: CategoryID = "chat_information"

    /// The built-in catalog's categories, in policy order.
    public static let builtIn: [CategoryID] = [
        .userInformation, .contactInformation, .trafficData, .businessContacts, .deviceContacts, .photosMedia, .usageStatistics,
        .chatInformation,
    ]
}

/// A feature the gate checks, by id. The built-in UCAnywhere catalog's features are static
/// members (`.contactLookup`); another catalog's are string literals or `FeatureID(name)`.
public struct FeatureID: RawRepresentable, Hashable, Sendable, ExpressibleByStringLiteral, CustomStringConvertible {
    /// The id as the policy spells it.
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    /// The feature `id` of any catalog.
    public init(_ id: String) { rawValue = id }
    public init(stringLiteral id: String) { rawValue = id }
    public var description: String { rawValue }

    /// Byte-exact, as the core compares ids: two spellings that Swift's `String ==` takes as
    /// canonically equivalent (`"caf\u{e9}"`, `"cafe\u{301}"`) are two different ids here, so a
    /// `Set` or `Dictionary` keyed by `FeatureID` never merges what the policy keeps apart.
    public static func == (a: FeatureID, b: FeatureID) -> Bool { ExactText.same(a.rawValue, b.rawValue) }
    /// Hashes the id's UTF-8 bytes, consistent with `==`.
    public func hash(into hasher: inout Hasher) { ExactText.hash(rawValue, into: &hasher) }

    /// UCAnywhere: look up device contacts in the app.
    public static let contactLookup: FeatureID = "contact_lookup"
    /// UCAnywhere: sync a single device contact (per item: pass the contact as `scope`).
    public static let contactSync: FeatureID = "contact_sync"
    /// UCAnywhere: share photos and media.
    public static let photoSharing: FeatureID = "photo_sharing"
    /// UCAnywhere: send anonymised usage statistics.
    public static let usageAnalytics: FeatureID = "usage_analytics"
    /// UCAnywhere: make and receive calls.
    public static let calling: FeatureID = "calling"
    /// UCAnywhere: chat.
    public static let messaging: FeatureID = "messaging"
    /// UCAnywhere: browse the business directory.
    public static let businessDirectory: FeatureID = "business_directory"

    /// The built-in catalog's features, in policy order.
    public static let builtIn: [FeatureID] = [.contactLookup, .contactSync, .photoSharing, .usageAnalytics, .calling, .messaging, .businessDirectory]
}

extension ConsentChoice {
    /// One decision of a batch, for `record(_:)`.
    public init(_ subject: String, category: CategoryID, action: Action, source: Source, scope: String? = nil) {
        self.init(subject: subject, category: category.rawValue, action: action, scope: scope, source: source)
    }
}

extension CategoryStatus {
    /// The category, typed.
    public var categoryID: CategoryID { CategoryID(category) }
}

extension StatusChange {
    /// The category, typed.
    public var categoryID: CategoryID { CategoryID(category) }
}
