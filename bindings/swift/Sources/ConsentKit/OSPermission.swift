import ConsentKitFFI

/// An OS permission a category of the catalog depends on, by its snake_case id (the catalog's
/// `os_permission`). The common ones are static members (`.camera`); another catalog's own
/// permission is a string literal (`"bluetooth_scan"`) or `OSPermission(id)`. The id is validated
/// when it reaches the SDK: a bad one (not snake_case, longer than 64 bytes) throws
/// `ConsentKitError.InvalidInput` naming it. A permission never reported reads as
/// `.notDetermined` and denies.
public struct OSPermission: RawRepresentable, Hashable, Sendable, ExpressibleByStringLiteral, CustomStringConvertible {
    /// The id as the catalog spells it.
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    /// The permission `id` of any catalog (validated when used).
    public init(_ id: String) { rawValue = id }
    public init(stringLiteral id: String) { rawValue = id }
    public var description: String { rawValue }

    /// Byte-exact, as the core compares ids (see ``CategoryID``'s `==`).
    public static func == (a: OSPermission, b: OSPermission) -> Bool { ExactText.same(a.rawValue, b.rawValue) }
    /// Hashes the id's UTF-8 bytes, consistent with `==`.
    public func hash(into hasher: inout Hasher) { ExactText.hash(rawValue, into: &hasher) }

    /// The permission `id`, validated now: throws `ConsentKitError.InvalidInput` naming a bad id.
    public static func validated(_ id: String) throws -> OSPermission { OSPermission(try osPermissionNamed(id: id)) }

    /// The address book (`CNContactStore`).
    public static let contacts: OSPermission = "contacts"
    /// The photo library (`PHPhotoLibrary`); the limited library is `.limited`.
    public static let photos: OSPermission = "photos"
    /// The camera (`AVCaptureDevice`, video).
    public static let camera: OSPermission = "camera"
    /// The microphone (`AVAudioApplication` record permission).
    public static let microphone: OSPermission = "microphone"
    /// Location (`CLLocationManager`); reduced accuracy is `.limited`.
    public static let location: OSPermission = "location"
    /// Notifications (`UNUserNotificationCenter`); provisional authorisation is `.provisional`.
    public static let notifications: OSPermission = "notifications"
    /// The calendar (`EKEventStore`); write-only access is `.limited`.
    public static let calendar: OSPermission = "calendar"
    /// App Tracking Transparency (`ATTrackingManager`).
    public static let appTrackingTransparency: OSPermission = "app_tracking_transparency"

    /// Every predefined permission.
    public static let predefined: [OSPermission] = [.contacts, .photos, .camera, .microphone, .location, .notifications, .calendar, .appTrackingTransparency]
}

extension OSPermissionState {
    /// The state with this snake_case name (`granted`, `limited`, `provisional`, `denied`,
    /// `not_determined`, `restricted`); any other name throws `ConsentKitError.InvalidInput`
    /// naming it, never an allow.
    public init(name: String) throws { self = try osStateNamed(name: name) }
}

extension Receipt {
    /// For an OS permission event: which permission, typed.
    public var osPermission: OSPermission? { permission.map(OSPermission.init(rawValue:)) }
}
