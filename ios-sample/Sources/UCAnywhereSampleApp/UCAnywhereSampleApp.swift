#if canImport(SwiftUI) && canImport(Contacts) && canImport(Photos)
import ConsentKit
import SwiftUI
import UCAnywhereSampleKit

/// The sample app: opens the one ConsentManager at launch, reports OS permissions whenever the
/// scene becomes active, and shows onboarding, then the privacy settings and a contact search.
@main
struct UCAnywhereSampleApp: App {
    @State private var launch = Launch.start()
    @Environment(\.scenePhase) private var scenePhase

    var body: some Scene {
        WindowGroup {
            switch launch {
            case .ready(let model):
                RootView(model: model)
                    .onChange(of: scenePhase) { _, phase in
                        if phase == .active { Task { await model.becameActive() } }
                    }
            case .failed(let error):
                ContentUnavailableView("ConsentKit could not start", systemImage: "exclamationmark.triangle", description: Text(error.description))
            }
        }
    }
}

/// The result of launching: the app model, or the error to show.
enum Launch {
    case ready(AppModel)
    case failed(UserFacingError)

    @MainActor
    static func start() -> Launch {
        do {
            let model = try AppModel(
                databaseURL: try StoreLocation.applicationSupportDatabaseURL(), user: "alice@example.com",
                probe: SystemPermissionProbe(), directory: DeviceContacts(), sink: PrintingAnalytics())
            return .ready(model)
        } catch {
            return .failed(UserFacingError("open the consent store", error))
        }
    }
}
#endif
