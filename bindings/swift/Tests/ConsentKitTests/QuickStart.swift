import ConsentKit
import Foundation

/// The README's Swift quick start, compiled and run by `QuickStartTests`. Keep both in step.
func quickStart(applicationSupport: URL, userId: String, sendAnalytics: () -> Void) throws {
    // quick-start:begin
    let consent = try ConsentManager.open(path: applicationSupport.appendingPathComponent("consent.db").path) // one per process; fails closed
    if try consent.shouldAsk(userId, category: .usageStatistics) {
        try consent.grant(userId, category: .usageStatistics, source: .onboarding) // the user tapped "Allow"
    }
    try consent.reportOSPermission(.contacts, state: .granted) // from CNContactStore.authorizationStatus(for:)
    if try consent.isAllowed(userId, feature: .usageAnalytics) { sendAnalytics() } // in memory, main-thread safe
    Task { for await change in consent.changes(of: userId) { print("\(change.category): \(change.status)") } }
    try consent.withdraw(userId, category: .usageStatistics) // from the settings screen
    if try consent.isAllowed(userId, feature: .usageAnalytics) { preconditionFailure("denied once withdraw returns") }
    consent.close() // frees the file; the stream above finishes
    // quick-start:end
}
