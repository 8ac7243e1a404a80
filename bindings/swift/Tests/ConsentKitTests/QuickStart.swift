import ConsentKit
import Foundation

/// The README's Swift quick start, compiled and run by `QuickStartTests`. Keep both in step.
func quickStart(documents: URL, userId: String, sendAnalytics: () -> Void) throws {
    // quick-start:begin
    let consent = try ConsentManager.open(path: documents.appendingPathComponent("consent.db").path) // fails closed
    if try consent.shouldAsk(userId, category: "usage_statistics") {
        try consent.grant(userId, category: "usage_statistics", source: .onboarding) // the user tapped "Allow"
    }
    try consent.reportOsPermission(.contacts, state: .granted) // from CNContactStore.authorizationStatus
    if try consent.isAllowed(userId, feature: "usage_analytics") { sendAnalytics() } // in memory when cached
    Task { for await change in consent.changes(of: userId) { print("\(change.category): \(change.status)") } }
    try consent.withdraw(userId, category: "usage_statistics") // from the settings screen
    if try consent.isAllowed(userId, feature: "usage_analytics") { preconditionFailure("denied once withdraw returns") }
    // quick-start:end
}
