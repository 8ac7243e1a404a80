import ConsentKitFFI
import Foundation
import Observation

/// The current status of each of a subject's categories, kept up to date from
/// ``ConsentManager/changes(of:)``, for settings screens: SwiftUI redraws what reads it when a
/// status changes, whoever made the change (this screen, onboarding, support, an import).
///
/// Reads are in memory. Stops following when the manager closes (`isLive` turns false) or when
/// the model is released.
@available(iOS 17, macOS 14, *)
@MainActor
@Observable
public final class ConsentStatuses {
    /// Whose statuses these are.
    public let subject: String
    /// Every category's status, in policy order.
    public private(set) var categories: [CategoryStatus]
    /// True while the model follows the store; false once the manager has closed.
    public private(set) var isLive = true

    @ObservationIgnored private let feed = Feed()

    /// Starts from the subject's current statuses and follows every change after.
    public init(_ consent: ConsentManager, subject: String) throws {
        self.subject = subject
        categories = try consent.statuses(subject)
        let changes = try consent.changes(of: subject)
        feed.start(Task { [weak self] in
            for await change in changes {
                guard let self else { return }
                self.apply(change)
            }
            self?.isLive = false
        })
    }

    deinit {
        feed.cancel()
    }

    /// The status of `category`, or nil if the policy has no such category.
    public func status(of category: CategoryID) -> Status? {
        categories.first { ExactText.same($0.category, category.rawValue) }?.status
    }

    private func apply(_ change: StatusChange) {
        guard let index = categories.firstIndex(where: { ExactText.same($0.category, change.category) }) else { return }
        let old = categories[index]
        let new = CategoryStatus(category: old.category, legalBasis: old.legalBasis, status: change.status, since: change.since)
        if new != old { categories[index] = new }
    }
}

/// The task that feeds a model; cancelled when the model goes away.
private final class Feed: @unchecked Sendable {
    private let lock = NSLock()
    private var task: Task<Void, Never>?

    func start(_ task: Task<Void, Never>) {
        lock.lock()
        self.task = task
        lock.unlock()
    }

    func cancel() {
        lock.lock()
        let task = self.task
        lock.unlock()
        task?.cancel()
    }
}

extension ConsentManager {
    /// An observable model of `subject`'s statuses that follows every change (for settings
    /// screens); see ``ConsentStatuses``.
    @available(iOS 17, macOS 14, *)
    @MainActor
    public func statusesModel(of subject: String) throws -> ConsentStatuses {
        try ConsentStatuses(self, subject: subject)
    }
}
