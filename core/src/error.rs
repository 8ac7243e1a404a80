//! The core's one error type. Every message names the value that was wrong.

use std::path::PathBuf;

pub(crate) use crate::text::shorten;

/// Everything that can go wrong in the core. A call that returns an `Err` wrote no event and no
/// state. Two also close this store (checks fail closed, writes refused) before they return: a
/// write that finds the file replaced while open, and a [`ConsentStore::verify`](crate::ConsentStore::verify) that finds the
/// state disagreeing with the history (`Tampered`, after invalidating the stored state digest).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A category id that the loaded policy does not define.
    #[error("unknown category '{0}'")]
    UnknownCategory(String),
    /// A feature id that the loaded policy does not define.
    #[error("unknown feature '{0}'")]
    UnknownFeature(String),
    /// A subject, scope or id that is empty, longer than allowed or holds control characters, or
    /// a scope where none applies (an objection, a category no per-item feature uses).
    #[error("invalid {what} '{value}': {why}")]
    InvalidInput { what: &'static str, value: String, why: String },
    /// The action does not apply to the category's legal basis (e.g. a grant for a contract category).
    #[error("cannot {action} category '{category}': it rests on {basis}{hint}")]
    NotApplicable { action: String, category: String, basis: String, hint: &'static str },
    /// Consent is the subject's own act: support staff may not record a grant.
    #[error("a grant of '{category}' for subject '{subject}' cannot come from source 'support': consent must be the subject's own act")]
    GrantBySupport { subject: String, category: String },
    /// The subject is under the age of digital consent and the grant did not come from a guardian.
    #[error("subject '{subject}' is under the age of digital consent ({age}); a grant of '{category}' needs source 'guardian'")]
    UnderAge { subject: String, category: String, age: u8 },
    /// The policy does not serve subjects under its minimum age at all.
    #[error("subject '{subject}' is under {age}: policy '{policy}' does not process data of children, not even with a guardian")]
    ChildrenNotServed { subject: String, policy: String, age: u8 },
    /// Actions the system records itself (expire, os_permission, erasure, purge) cannot be recorded by callers.
    #[error("action '{0}' is recorded by the system only")]
    ReservedAction(String),
    /// A scope was given for a feature that is not granted per item, or omitted for one that is.
    #[error("feature '{feature}' {why}")]
    Scope { feature: String, why: &'static str },
    /// A grant while the device's clock reads behind the store's time (the highest clock reading
    /// the store has seen): its lifetime would be counted from a time that has not come yet.
    /// Nothing was written; refusals, withdrawals and objections are still recorded. Fix the clock
    /// (or, if the store's time came from a clock that was ahead, grants wait until it is reached).
    #[error("cannot record a grant: the clock reads {clock}, behind the store's time {store_time} (the clock was set back, or an earlier reading was ahead); a grant's lifetime counts from the real time of the grant")]
    ClockBehind { clock: crate::clock::Timestamp, store_time: crate::clock::Timestamp },
    /// The policy JSON does not parse or does not validate; `path` is a JSON path.
    #[error("invalid policy at {path}: {why}")]
    Policy { path: String, why: String },
    /// The database was created for another policy id.
    #[error("the store at {path:?} belongs to policy '{stored}', not '{given}'")]
    PolicyMismatch { path: PathBuf, stored: String, given: String },
    /// The database was written by a newer ConsentKit; it is left untouched.
    #[error("the store at {path:?} has schema version {found}, newer than the {supported} this ConsentKit knows; it was left untouched")]
    SchemaTooNew { path: PathBuf, found: i64, supported: i64 },
    /// The database is missing (read-only open), unreadable or not a ConsentKit database.
    #[error("the store at {path:?} is unavailable: {why}")]
    StoreUnavailable { path: PathBuf, why: String },
    /// The store is closed: opened in fail-closed mode after an error, or closed since (a state
    /// `verify` disproved, the file replaced while open); writes and ledger reads are refused.
    #[error("the store is closed after an earlier failure: {0}")]
    Closed(String),
    /// An export document that is malformed, from another policy, or whose receipts do not verify.
    #[error("rejected import: {0}")]
    Import(String),
    /// The hash chain does not hold (see [`crate::chain::ChainBreak`]).
    #[error("{0}")]
    Tampered(crate::chain::ChainBreak),
    /// SQLite reported an error while reading or writing (I/O, a damaged file, a full disk).
    #[error("storage error: {0}")]
    Sqlite(rusqlite::Error),
    /// The file stayed busy or locked by another connection or process past the bounded internal
    /// retry ([`crate::schema::BUSY_TIMEOUT`]). Nothing was changed: retry the call later.
    #[error("the store is busy (another process or connection holds its lock) while {0}; nothing was changed, try again")]
    Busy(String),
    /// A bug in ConsentKit (for example a write that broke the database's own constraints).
    /// Nothing was changed. The message names what failed, never raw SQL.
    #[error("internal error (please report): {0}")]
    Internal(String),
    /// The store is suspended ([`crate::ConsentStore::suspend`]): no transaction starts until
    /// [`crate::ConsentStore::resume`]. Nothing was changed.
    #[error("the store is suspended (the app is in the background): call resume() before {0}")]
    Suspended(&'static str),
    /// A commit hook or observer tried to write to the store it was called from while that store's
    /// write was still running. Hooks may read (history, export, verify, pending_sync), not write.
    #[error("cannot {0} from inside a commit hook of the same store: hooks may read, not write")]
    WriteFromHook(&'static str),
    /// A stored value could not be decoded (a damaged or hand-edited row).
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
    /// File-system error (quarantine, paths).
    #[error("i/o error on {path:?}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

impl From<rusqlite::Error> for Error {
    /// Busy and locked become [`Error::Busy`] (retryable); a constraint violation, which only a bug
    /// of ours can cause, becomes [`Error::Internal`] naming the kind of constraint, not the SQL.
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        match &e {
            rusqlite::Error::SqliteFailure(f, _) => match f.code {
                ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => Error::Busy("accessing the database".into()),
                ErrorCode::ConstraintViolation => Error::Internal(format!(
                    "a write broke one of the database's own rules (SQLite constraint code {}); nothing was changed",
                    f.extended_code
                )),
                _ => Error::Sqlite(e),
            },
            _ => Error::Sqlite(e),
        }
    }
}

impl Error {
    /// True for errors worth retrying as they are: the file was busy, or the store was suspended.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Busy(_) | Error::Suspended(_))
    }
}

/// The core's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The error for a log line: what went wrong without any value that came from the caller or
    /// the store's rows (no subject, scope, category text or decoded value), so it is safe to log.
    pub fn log_summary(&self) -> String {
        match self {
            Error::StoreUnavailable { why, .. } => format!("store unavailable: {why}"),
            Error::SchemaTooNew { found, supported, .. } => format!("schema version {found}, newer than {supported}"),
            Error::PolicyMismatch { stored, given, .. } => format!("store belongs to policy '{stored}', not '{given}'"),
            Error::Tampered(b) => b.to_string(),
            Error::Closed(_) => "store closed after an earlier failure".into(),
            Error::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => format!("storage error {:?}", e.code),
            Error::Sqlite(_) => "storage error".into(),
            Error::Corrupt(_) => "corrupt stored value".into(),
            Error::Io { source, .. } => format!("i/o error: {:?}", source.kind()),
            Error::Policy { path, .. } => format!("invalid policy at {path}"),
            Error::Import(_) => "rejected import".into(),
            Error::ClockBehind { .. } => "grant refused: the clock reads behind the store's time".into(),
            _ => "invalid input".into(),
        }
    }

    /// True for errors that mean the store itself is damaged, missing or unreadable
    /// (as opposed to bad input from the caller).
    pub fn is_store_problem(&self) -> bool {
        matches!(
            self,
            Error::SchemaTooNew { .. }
                | Error::StoreUnavailable { .. }
                | Error::Closed(_)
                | Error::Sqlite(_)
                | Error::Corrupt(_)
                | Error::Tampered(_)
                | Error::PolicyMismatch { .. }
                | Error::Io { .. }
        )
    }
}

pub(crate) fn invalid(what: &'static str, value: &str, why: impl Into<String>) -> Error {
    Error::InvalidInput { what, value: shorten(value), why: why.into() }
}
