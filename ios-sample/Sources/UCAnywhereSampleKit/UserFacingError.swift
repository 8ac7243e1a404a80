import Foundation

/// An error as the app shows it: what the user tried, and what went wrong (never swallowed).
public struct UserFacingError: Error, Equatable, Sendable, CustomStringConvertible {
    /// What the app was doing, e.g. "save your choice for Usage statistics".
    public let action: String
    /// The underlying error's description (ConsentKit's names the bad value).
    public let detail: String

    public init(_ action: String, _ error: any Error) {
        self.action = action
        self.detail = String(describing: error)
    }

    /// "Could not <action>: <detail>"
    public var description: String { "Could not \(action): \(detail)" }
}
