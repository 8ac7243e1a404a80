//! The one error type that crosses the FFI (Kotlin: `ConsentKitException`, Swift: `ConsentKitError`).
//! Converted once, here, from the core's `Error`; every message is the core's message.

use consentkit_core::Error;

/// Every failure a ConsentKit call can report. The message names the bad value.
#[derive(Debug, thiserror::Error, uniffi::Error)]
#[uniffi(flat_error)]
pub enum ConsentKitError {
    /// A category id the policy does not define.
    #[error("{0}")]
    UnknownCategory(String),
    /// A feature id the policy does not define.
    #[error("{0}")]
    UnknownFeature(String),
    /// An empty, over-long or malformed subject, scope, source or sequence number.
    #[error("{0}")]
    InvalidInput(String),
    /// The action does not fit the category's legal basis, or a scope does not fit the feature.
    #[error("{0}")]
    NotApplicable(String),
    /// Support staff may not record a grant: consent is the subject's own act.
    #[error("{0}")]
    GrantBySupport(String),
    /// The subject is under the age of digital consent and the grant is not from a guardian
    /// (or the policy serves no children at all).
    #[error("{0}")]
    UnderAge(String),
    /// The policy JSON does not parse or validate (the message names the JSON path).
    #[error("{0}")]
    InvalidPolicy(String),
    /// An export document was rejected whole.
    #[error("{0}")]
    ImportRejected(String),
    /// The database was written by a newer ConsentKit; it was left untouched.
    #[error("{0}")]
    SchemaTooNew(String),
    /// The store is missing, unreadable, damaged, of another policy, or closed after a failure.
    #[error("{0}")]
    StoreUnavailable(String),
    /// The `ConsentKit` (Kotlin/Swift: the manager) was closed; open the store again to use it.
    #[error("{0}")]
    Closed(String),
    /// A bug: a panic caught at the boundary, or a listener that threw. Nothing was left half-done.
    #[error("{0}")]
    Internal(String),
    /// The file stayed locked by another process or connection past the bounded retry. Nothing
    /// was changed; retry the call later.
    #[error("{0}")]
    Busy(String),
    /// The store is suspended (`suspend()`); call `resume()` first. Nothing was changed.
    #[error("{0}")]
    Suspended(String),
    /// A commit hook or listener tried to write to the store it was called from. Hooks may read.
    #[error("{0}")]
    WriteFromHook(String),
}

impl From<Error> for ConsentKitError {
    fn from(e: Error) -> Self {
        let message = e.to_string();
        match e {
            Error::UnknownCategory(_) => ConsentKitError::UnknownCategory(message),
            Error::UnknownFeature(_) => ConsentKitError::UnknownFeature(message),
            Error::InvalidInput { .. } | Error::ReservedAction(_) | Error::ClockBehind { .. } => ConsentKitError::InvalidInput(message),
            Error::NotApplicable { .. } | Error::Scope { .. } => ConsentKitError::NotApplicable(message),
            Error::GrantBySupport { .. } => ConsentKitError::GrantBySupport(message),
            Error::UnderAge { .. } | Error::ChildrenNotServed { .. } => ConsentKitError::UnderAge(message),
            Error::Policy { .. } => ConsentKitError::InvalidPolicy(message),
            Error::Import(_) => ConsentKitError::ImportRejected(message),
            Error::SchemaTooNew { .. } => ConsentKitError::SchemaTooNew(message),
            Error::Busy(_) => ConsentKitError::Busy(message),
            Error::Suspended(_) => ConsentKitError::Suspended(message),
            Error::WriteFromHook(_) => ConsentKitError::WriteFromHook(message),
            Error::Internal(_) => ConsentKitError::Internal(message),
            Error::PolicyMismatch { .. }
            | Error::StoreUnavailable { .. }
            | Error::Closed(_)
            | Error::Tampered(_)
            | Error::Sqlite(_)
            | Error::Corrupt(_)
            | Error::Io { .. } => ConsentKitError::StoreUnavailable(message),
        }
    }
}

impl From<uniffi::UnexpectedUniFFICallbackError> for ConsentKitError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        ConsentKitError::Internal(format!("a listener failed: {}", e.reason))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_errors_keep_their_message_and_kind() {
        let e: ConsentKitError = Error::UnknownFeature("teleport".into()).into();
        assert!(matches!(&e, ConsentKitError::UnknownFeature(m) if m == "unknown feature 'teleport'"));
        let e: ConsentKitError = Error::Closed("disk".into()).into();
        assert!(matches!(e, ConsentKitError::StoreUnavailable(_)));
    }
}
