import Contacts
import ConsentKit
import SwiftUI

/// One ConsentManager for the app, opened fail-closed.
@MainActor
final class ConsentModel: ObservableObject {
    let consent: ConsentManager
    let userId: String
    @Published var statistics = false

    init(userId: String) throws {
        let documents = FileManager.default.urls(for: .documentDirectory, in: .userDomainMask)[0]
        consent = try ConsentManager.open(path: documents.appendingPathComponent("consent.db").path)
        self.userId = userId
        statistics = (try? consent.isAllowed(userId, feature: "usage_analytics")) ?? false
        Task { [weak self] in
            guard let self else { return }
            for await change in consent.changes(of: userId) where change.category == "usage_statistics" {
                self.statistics = change.status == .granted
            }
        }
    }

    /// Call when the app becomes active: the user may have changed permissions in Settings.
    func reportOsPermissions() {
        let state: OsState
        switch CNContactStore.authorizationStatus(for: .contacts) {
        case .authorized: state = .granted
        case .denied: state = .denied
        case .restricted: state = .restricted
        case .notDetermined: state = .notDetermined
        @unknown default: state = .limited
        }
        _ = try? consent.reportOsPermission(.contacts, state: state)
    }

    /// The settings toggle: "off" is a withdrawal, as easy as the grant.
    func setStatistics(_ on: Bool) {
        if on {
            _ = try? consent.grant(userId, category: "usage_statistics", source: .settings)
        } else {
            _ = try? consent.withdraw(userId, category: "usage_statistics", source: .settings)
        }
    }
}

struct ConsentSettingsView: View {
    @ObservedObject var model: ConsentModel

    var body: some View {
        Form {
            Toggle("Share anonymous usage statistics", isOn: Binding(get: { model.statistics }, set: model.setStatistics))
        }
    }
}
