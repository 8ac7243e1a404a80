// Hand-written (committed), beside the generated bindings: how a ConsentKitError reads.
import Foundation

extension ConsentKitError: LocalizedError, CustomStringConvertible {
    /// The message from Rust, naming the bad value, e.g. `unknown feature 'teleport'`.
    public var message: String {
        switch self {
        case .UnknownCategory(let message), .UnknownFeature(let message), .InvalidInput(let message),
             .NotApplicable(let message), .GrantBySupport(let message), .UnderAge(let message),
             .InvalidPolicy(let message), .ImportRejected(let message), .SchemaTooNew(let message),
             .StoreUnavailable(let message), .Closed(let message), .Internal(let message):
            return message
        }
    }

    /// The message as a sentence: `Unknown feature 'teleport'.`
    public var description: String {
        let text = message.prefix(1).uppercased() + message.dropFirst()
        return text.hasSuffix(".") || text.hasSuffix("?") || text.hasSuffix("!") ? text : text + "."
    }

    /// The same sentence, for `localizedDescription` and alerts.
    public var errorDescription: String? { description }
}
