import ConsentKit
import Foundation
import Observation

/// The first-run dialog: one question per consent category the app should ask about now, all
/// answers saved together as one batch (all or none: a force-quit or an error records nothing,
/// so the dialog simply shows again).
@MainActor
@Observable
public final class OnboardingModel {
    /// One question of the dialog.
    public struct Question: Identifiable, Equatable, Sendable {
        /// The category.
        public let id: CategoryID
        public let title: String
    }

    public private(set) var questions: [Question] = []
    /// The user's answers by category; unanswered means no (privacy by default).
    public var answers: [CategoryID: Bool] = [:]
    /// The last failure, for an alert.
    public var error: UserFacingError?
    /// True when there is nothing to ask (or the answers were saved).
    public var isDone: Bool { questions.isEmpty }

    private let consent: ConsentManager
    private let user: String
    private let titles: CatalogTitles

    public init(consent: ConsentManager, user: String, titles: CatalogTitles) {
        self.consent = consent
        self.user = user
        self.titles = titles
    }

    /// Finds the consent categories to ask about now (never asked, or due again).
    public func load() {
        do {
            questions = try consent.statuses(user)
                .filter { $0.legalBasis == .consent }
                .filter { try consent.shouldAsk(user, category: $0.categoryID) }
                .map { Question(id: $0.categoryID, title: titles.category($0.categoryID)) }
        } catch {
            self.error = UserFacingError("prepare the privacy questions", error)
        }
    }

    /// Saves every answer in one batch from `.onboarding`, off the main thread: a grant for yes,
    /// a refusal for no. Returns the receipts; on failure nothing is recorded, the error is shown
    /// and the questions stay.
    @discardableResult
    public func submit() async -> [Receipt] {
        let decisions = questions.map {
            ConsentChoice(user, category: $0.id, action: answers[$0.id] == true ? .grant : .refuse, source: .onboarding)
        }
        do {
            let receipts = try await consent.record(decisions)
            questions = []
            return receipts
        } catch {
            self.error = UserFacingError("save your answers", error)
            return []
        }
    }
}
