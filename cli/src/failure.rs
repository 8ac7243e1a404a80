//! How a command fails: an exit code and one line for stderr. The exit codes are part of the
//! command line contract (scripts rely on them) and are listed in `consentkit --help`.

use consentkit_core::Error;

/// Success (for `check`: the feature is allowed). Also when stdout is closed early (`| head`).
pub const OK: u8 = 0;
/// `check`: the feature is denied.
pub const DENIED: u8 = 1;
/// Bad input or usage: an unknown value, an invalid argument, a refused decision. Nothing changed.
pub const BAD_INPUT: u8 = 2;
/// A store problem: missing, unreadable, corrupt, tampered (`verify`), newer schema, other policy;
/// with `--server`, a server error that is not retryable (it would fail again).
pub const STORE: u8 = 3;
/// Output could not be written (other than a closed pipe, which ends the tool quietly with 0).
pub const OUTPUT: u8 = 4;
/// Temporary: the file stayed locked by another process (the app, a service) past the bounded
/// wait, or the server was unreachable or answered "retryable". Nothing changed; the same command
/// may simply be run again.
pub const TEMPORARY: u8 = 5;

/// The exit codes as `--help` and the README list them.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success; check: the feature is allowed; also when stdout is closed early (| head)
  1  check: the feature is denied
  2  bad input or usage (nothing was changed)
  3  store problem: missing, unreadable, corrupt, tampered (verify), newer schema, other policy;
     with --server, a server error that is not retryable
  4  output could not be written
  5  temporary: the store stayed busy (another process held it past the wait), or the server was
     unreachable or answered retryable; nothing changed, run it again";

/// A failed command: the exit code and one line for stderr.
#[derive(Debug)]
pub struct Failure {
    /// The process exit code.
    pub code: u8,
    /// What went wrong; printed through [`crate::text::one_line`], so it may echo raw input.
    pub message: String,
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        let code = if e.is_retryable() {
            TEMPORARY
        } else if e.is_store_problem() {
            STORE
        } else {
            BAD_INPUT
        };
        let mut message = e.to_string();
        if matches!(e, Error::GrantBySupport { .. }) {
            message.push_str(" (pass --source settings, onboarding or guardian to record the subject's own grant)");
        }
        Failure { code, message }
    }
}

/// A bad-input failure (exit 2).
pub fn bad(message: impl Into<String>) -> Failure {
    Failure { code: BAD_INPUT, message: message.into() }
}
