#if canImport(SwiftUI) && canImport(Contacts)
import Contacts
import Foundation
import UCAnywhereSampleKit

/// The device's contacts, by name (called only after the gate allowed `contact_lookup`).
struct DeviceContacts: ContactDirectory {
    func names(matching query: String) throws -> [String] {
        let keys = [CNContactFormatter.descriptorForRequiredKeys(for: .fullName)]
        let contacts = try CNContactStore().unifiedContacts(matching: CNContact.predicateForContacts(matchingName: query), keysToFetch: keys)
        return contacts.compactMap { CNContactFormatter.string(from: $0, style: .fullName) }
    }
}

/// Stands in for the app's analytics backend.
struct PrintingAnalytics: AnalyticsSink {
    func send(_ event: String) throws { print("analytics: \(event)") }
}
#endif
