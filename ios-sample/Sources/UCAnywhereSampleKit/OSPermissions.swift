import ConsentKit
import Foundation
#if canImport(Contacts)
import Contacts
#endif
#if canImport(Photos)
import Photos
#endif

/// An OS authorization as iOS reports it, for contacts (`CNAuthorizationStatus`, `.limited` since
/// iOS 18) and the photo library (`PHAuthorizationStatus`, `.limited` since iOS 14).
public enum Authorization: Equatable, Sendable, CaseIterable {
    case notDetermined, restricted, denied, authorized, limited

    /// The state ConsentKit records. Limited stays limited: a feature that needs full access is
    /// not treated as granted.
    public var consentKitState: OSPermissionState {
        switch self {
        case .notDetermined: .notDetermined
        case .restricted: .restricted
        case .denied: .denied
        case .authorized: .granted
        case .limited: .limited
        }
    }
}

/// Reads the OS permission states the catalog depends on.
public protocol PermissionProbe: Sendable {
    func contacts() -> Authorization
    func photos() -> Authorization
}

#if canImport(Contacts) && canImport(Photos)
/// The device's real authorization states.
public struct SystemPermissionProbe: PermissionProbe {
    public init() {}

    public func contacts() -> Authorization {
        let status = CNContactStore.authorizationStatus(for: .contacts)
        if #available(iOS 18.0, macOS 15.0, *), status == .limited { return .limited }
        switch status {
        case .authorized: return .authorized
        case .denied: return .denied
        case .restricted: return .restricted
        case .notDetermined: return .notDetermined
        default: return .denied  // a state this code does not know is not a grant
        }
    }

    public func photos() -> Authorization {
        switch PHPhotoLibrary.authorizationStatus(for: .readWrite) {
        case .authorized: return .authorized
        case .limited: return .limited
        case .denied: return .denied
        case .restricted: return .restricted
        case .notDetermined: return .notDetermined
        @unknown default: return .denied
        }
    }
}
#endif

/// Whether this process has reported the OS permission states to ConsentKit yet. Until it has,
/// the store holds the states last reported, possibly by an earlier run: iOS ends the app when the
/// user turns a permission off in Settings, so at the next launch the stored state can still say
/// `granted`. Gates that need an OS permission stay off until the first report of this process.
public final class PermissionsReported: @unchecked Sendable {
    private let lock = NSLock()
    private var reported = false

    public init() {}

    /// True once the states were reported in this process.
    public var isReported: Bool {
        lock.lock()
        defer { lock.unlock() }
        return reported
    }

    func markReported() {
        lock.lock()
        reported = true
        lock.unlock()
    }
}

/// Reports the OS permission states to ConsentKit at launch and each time the app becomes active:
/// the user may have changed them in Settings while the app was in the background or not running.
public struct PermissionReporter: Sendable {
    private let consent: ConsentManager
    private let probe: any PermissionProbe
    /// Set once this reporter has reported every permission (the gates read it).
    public let reported: PermissionsReported

    public init(consent: ConsentManager, probe: any PermissionProbe, reported: PermissionsReported = PermissionsReported()) {
        self.consent = consent
        self.probe = probe
        self.reported = reported
    }

    /// Reports contacts and photos (off the caller's thread: a change is a write); returns the
    /// changes recorded (none when nothing changed). Marks ``reported`` once both are stored.
    @discardableResult
    public func appBecameActive() async throws -> [Receipt] {
        let contacts = try await consent.reportOSPermission(.contacts, state: probe.contacts().consentKitState)
        let photos = try await consent.reportOSPermission(.photos, state: probe.photos().consentKitState)
        reported.markReported()
        return [contacts, photos].compactMap { $0 }
    }
}
