import ConsentKit
import Foundation

/// The catalog's human-readable titles, read from the policy in force (`policyJSON`), so the
/// screens show the same words as the privacy statement and follow a catalog update.
public struct CatalogTitles: Sendable, Equatable {
    private let categories: [String: String]
    private let features: [String: String]

    /// Reads the titles from a policy document; ids without a title show as themselves.
    public init(policyJSON: String) throws {
        struct Item: Decodable {
            let id: String
            let title: String?
        }
        struct Policy: Decodable {
            let categories: [Item]
            let features: [Item]
        }
        let policy = try JSONDecoder().decode(Policy.self, from: Data(policyJSON.utf8))
        categories = Dictionary(policy.categories.map { ($0.id, $0.title ?? $0.id) }, uniquingKeysWith: { first, _ in first })
        features = Dictionary(policy.features.map { ($0.id, $0.title ?? $0.id) }, uniquingKeysWith: { first, _ in first })
    }

    /// The category's title, or its id.
    public func category(_ id: CategoryID) -> String { categories[id.rawValue] ?? id.rawValue }

    /// The feature's title, or its id.
    public func feature(_ id: FeatureID) -> String { features[id.rawValue] ?? id.rawValue }
}
