//! Why a store failed closed, as a typed reason the app can act on, and whether moving the file
//! aside (`quarantine`) is the way to recover.

use consentkit_core::Error;

/// What kind of problem made the store fail closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum UnavailableKind {
    /// The file is not a (ConsentKit) database, is damaged, or its history does not verify.
    /// Recover: quarantine it and reopen; ask the user again.
    Damaged,
    /// Written by a newer ConsentKit; left untouched. Recover: update the app (quarantine loses it).
    SchemaTooNew,
    /// The file belongs to another policy id. Recover: open it with its own policy.
    PolicyMismatch,
    /// The file is already open in this process. Recover: use that manager (one per process).
    AlreadyOpen,
    /// Locked or busy in another process past the retry bound. Recover: retry later.
    Busy,
    /// The file or its folder cannot be read or written (permissions, missing folder, disk).
    Unreadable,
}

/// Why the store failed closed.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Unavailable {
    /// The kind of problem.
    pub kind: UnavailableKind,
    /// The core's message, naming the file and the cause.
    pub message: String,
    /// True when moving the file aside and reopening is the way to recover (damaged files).
    pub can_quarantine: bool,
}

/// Classifies an open error. The core reports most open failures as text; this is the one place
/// that reads it. Only the cause is read, never the file's path (a folder named `hashes`,
/// `corrupt-files` or `busybox` says nothing about the file, and `Damaged` lets the app move it
/// aside).
pub(crate) fn classify(e: &Error) -> Unavailable {
    let message = e.to_string();
    let kind = match e {
        Error::SchemaTooNew { .. } => UnavailableKind::SchemaTooNew,
        Error::PolicyMismatch { .. } => UnavailableKind::PolicyMismatch,
        Error::Corrupt(_) | Error::Tampered(_) => UnavailableKind::Damaged,
        Error::Io { .. } => UnavailableKind::Unreadable,
        Error::Busy(_) => UnavailableKind::Busy,
        _ => {
            let mut cause = match e {
                Error::StoreUnavailable { path, why } => {
                    // SQLite's own message may name the path again.
                    why.replace(&path.display().to_string(), "<path>")
                }
                other => other.to_string(),
            };
            cause.make_ascii_lowercase();
            if cause.contains("already open in this process") {
                UnavailableKind::AlreadyOpen
            } else if cause.contains("locked") || cause.contains("busy") {
                UnavailableKind::Busy
            } else if ["not a database", "not a consentkit database", "malformed", "corrupt", "disagrees", "tamper", "hash"]
                .iter()
                .any(|w| cause.contains(w))
            {
                UnavailableKind::Damaged
            } else {
                UnavailableKind::Unreadable
            }
        }
    };
    Unavailable { kind, message, can_quarantine: kind == UnavailableKind::Damaged }
}
