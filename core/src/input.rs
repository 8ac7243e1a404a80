//! Limits and checks for caller-supplied strings (subjects and scopes). Checked before any write.

use crate::error::{invalid, Result};

/// Longest subject id in bytes (an account id or e-mail address fits comfortably).
pub const MAX_SUBJECT_BYTES: usize = 256;
/// Longest scope (single item id) in bytes.
pub const MAX_SCOPE_BYTES: usize = 256;

/// Accepts a non-empty subject of at most [`MAX_SUBJECT_BYTES`] with no control characters.
pub fn check_subject(subject: &str) -> Result<()> {
    check("subject", subject, MAX_SUBJECT_BYTES)
}

/// Accepts a non-empty scope of at most [`MAX_SCOPE_BYTES`] with no control characters.
pub fn check_scope(scope: &str) -> Result<()> {
    check("scope", scope, MAX_SCOPE_BYTES)
}

/// Longest other stored text taken from outside (e.g. an imported event's policy version), in bytes.
pub const MAX_TEXT_BYTES: usize = 128;

/// Accepts a non-empty text of at most [`MAX_TEXT_BYTES`] with no control characters; `what` names it in the error.
pub fn check_text(what: &'static str, value: &str) -> Result<()> {
    check(what, value, MAX_TEXT_BYTES)
}

/// The error names the value escaped (`\u{1b}`, `\n`), so a message never carries a control character.
fn check(what: &'static str, value: &str, max: usize) -> Result<()> {
    // The common case, decided in one pass over the bytes: printable ASCII (no control
    // characters) with at least one character that is not a space.
    let bytes = value.as_bytes();
    if bytes.len() <= max && bytes.iter().all(|b| (b' '..=b'~').contains(b)) && bytes.iter().any(|&b| b != b' ') {
        return Ok(());
    }
    let shown = || value.escape_debug().to_string();
    if value.trim().is_empty() {
        return Err(invalid(what, &shown(), "may not be empty"));
    }
    if value.len() > max {
        return Err(invalid(what, &shown(), format!("is {} bytes, longer than {max}", value.len())));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(what, &shown(), "contains control characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        assert!(check_subject("alice@example.com").is_ok());
        assert!(check_subject("").unwrap_err().to_string().contains("may not be empty"));
        let long = "a".repeat(257);
        let msg = check_scope(&long).unwrap_err().to_string();
        assert!(msg.contains("257 bytes") && msg.contains("invalid scope 'aaaa"), "{msg}");
        assert!(check_subject("a\nb").unwrap_err().to_string().contains("a\\nb"));
        // The ASCII fast path and the general path agree at every edge.
        for bad in ["   ", "\t", "a\u{7f}", "a\u{85}b", " \u{3000} "] {
            assert!(check_subject(bad).is_err(), "{bad:?}");
        }
        for good in ["~", " a ", "ü", "user-4242", &"a".repeat(256)] {
            assert!(check_subject(good).is_ok(), "{good:?}");
        }
        assert!(check_subject(&"a".repeat(257)).is_err());
    }
}
