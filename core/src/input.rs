//! Limits and checks for caller-supplied strings (subjects and scopes). Checked before any write.

use crate::error::{invalid, Result};

/// Longest subject id in bytes (an account id or e-mail address fits comfortably).
pub const MAX_SUBJECT_BYTES: usize = 256;
/// Longest scope (single item id) in bytes.
pub const MAX_SCOPE_BYTES: usize = 256;

/// Accepts a subject of at most [`MAX_SUBJECT_BYTES`] that a user would read as itself: not empty
/// or only whitespace, no leading or trailing whitespace, no control or invisible format
/// characters (see [`check`]). Every id a caller gives for a new record passes this.
pub fn check_subject(subject: &str) -> Result<()> {
    check("subject", subject, MAX_SUBJECT_BYTES)
}

/// True when [`check_subject`] accepts `subject` (no error built).
pub fn accepts_subject(subject: &str) -> bool {
    problem(subject, MAX_SUBJECT_BYTES).is_none()
}

/// The looser check for naming a subject already stored: non-empty, at most
/// [`MAX_SUBJECT_BYTES`], no control characters, as an older version accepted when it wrote it.
/// A store holding an id that [`check_subject`] refuses (e.g. `" alice"`) keeps it fully usable:
/// every operation on a subject the store already holds (withdraw, refuse, object, grant,
/// set_under_age, should_ask, observe, check, status, history, export, erase) takes this rule
/// ([`check_subject_in`]); only an id new to the store gets the strict one.
pub fn check_stored_subject(subject: &str) -> Result<()> {
    check_stored("subject", subject, MAX_SUBJECT_BYTES)
}

/// [`check_stored_subject`] when `stored` (the store already holds `subject`), else
/// [`check_subject`]. The strict check runs first, so a well-formed id costs no lookup.
pub fn check_subject_in(subject: &str, stored: impl FnOnce() -> bool) -> Result<()> {
    check_subject(subject).or_else(|e| if stored() { check_stored_subject(subject) } else { Err(e) })
}

/// [`check_stored_subject`]'s rule for a scope the subject's records already hold.
pub fn check_stored_scope(scope: &str) -> Result<()> {
    check_stored("scope", scope, MAX_SCOPE_BYTES)
}

/// [`check_stored_scope`] when `stored` (the subject's records already hold `scope`), else
/// [`check_scope`]; the strict check first.
pub fn check_scope_in(scope: &str, stored: impl FnOnce() -> bool) -> Result<()> {
    check_scope(scope).or_else(|e| if stored() { check_stored_scope(scope) } else { Err(e) })
}

fn check_stored(what: &'static str, value: &str, max: usize) -> Result<()> {
    if value.is_empty() {
        return Err(invalid(what, "", "may not be empty"));
    }
    if value.len() > max {
        return Err(invalid(what, &escape(value), format!("is {} bytes, longer than {max}", value.len())));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(what, &escape(value), "contains control characters"));
    }
    Ok(())
}

/// Accepts a scope as [`check_subject`] accepts a subject, of at most [`MAX_SCOPE_BYTES`].
pub fn check_scope(scope: &str) -> Result<()> {
    check("scope", scope, MAX_SCOPE_BYTES)
}

/// Longest other stored text taken from outside (e.g. an imported event's policy version), in bytes.
pub const MAX_TEXT_BYTES: usize = 128;

/// Accepts a text as [`check_subject`] accepts a subject, of at most [`MAX_TEXT_BYTES`]; `what` names it in the error.
pub fn check_text(what: &'static str, value: &str) -> Result<()> {
    check(what, value, MAX_TEXT_BYTES)
}

/// Longest device id in bytes (the server takes at most 128).
pub const MAX_DEVICE_BYTES: usize = 128;

/// Accepts a device id for the sync protocol: it is a segment of the server's URL path
/// (`/v1/devices/{device}/batches`), so 1 to [`MAX_DEVICE_BYTES`] of the URL's unreserved
/// characters (`A-Z a-z 0-9 - . _ ~`), and not `.` or `..`. Anything else (`a/b?c`, a space, a
/// percent sign) is `InvalidInput` naming the value escaped.
pub fn check_device(device: &str) -> Result<()> {
    let unreserved = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~');
    if let Some(why) = problem(device, MAX_DEVICE_BYTES) {
        return Err(invalid("device", &escape(device), why));
    }
    if let Some(c) = device.chars().find(|&c| !unreserved(c)) {
        let why = format!("holds '{}': a device id is a URL path segment, of A-Z a-z 0-9 - . _ ~ only", c.escape_debug());
        return Err(invalid("device", &escape(device), why));
    }
    if device == "." || device == ".." {
        return Err(invalid("device", device, "is a relative path segment, not an id"));
    }
    Ok(())
}

/// True for the invisible format characters (Unicode general category Cf: zero-width spaces and
/// joiners, the word joiner, the byte-order mark, bidirectional controls, soft hyphen, tags): two
/// ids that differ only by one print the same, so one would be taken for the other.
pub fn is_format_char(c: char) -> bool {
    matches!(c as u32,
        0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x890..=0x891 | 0x8E2 | 0x180E
        | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F
        | 0xFEFF | 0xFFF9..=0xFFFB | 0x110BD | 0x110CD | 0x13430..=0x1343F | 0x1BCA0..=0x1BCA3
        | 0x1D173..=0x1D17A | 0xE0001 | 0xE0020..=0xE007F)
}

/// What is wrong with `value` as an id of at most `max` bytes, if anything.
fn problem(value: &str, max: usize) -> Option<String> {
    // The common case, decided in one pass over the bytes: printable ASCII (no control
    // characters), neither starting nor ending with a space.
    let bytes = value.as_bytes();
    if bytes.len() <= max
        && bytes.iter().all(|b| (b' '..=b'~').contains(b))
        && bytes.first().is_some_and(|&b| b != b' ')
        && bytes.last().is_some_and(|&b| b != b' ')
    {
        return None;
    }
    if value.is_empty() {
        return Some("may not be empty".into());
    }
    if value.trim().is_empty() {
        return Some("is only whitespace".into());
    }
    if value.len() > max {
        return Some(format!("is {} bytes, longer than {max}", value.len()));
    }
    if value.chars().any(char::is_control) {
        return Some("contains control characters".into());
    }
    if value.chars().any(is_format_char) {
        return Some("contains an invisible format character (zero-width, joiner, byte-order mark or bidirectional control)".into());
    }
    if value.starts_with(char::is_whitespace) || value.ends_with(char::is_whitespace) {
        return Some("has leading or trailing whitespace".into());
    }
    None
}

/// The error names the value escaped (`\u{1b}`, `\n`, `\u{200b}`), so a message never carries a
/// control or invisible character and shows where it is.
fn check(what: &'static str, value: &str, max: usize) -> Result<()> {
    match problem(value, max) {
        None => Ok(()),
        Some(why) => Err(invalid(what, &escape(value), why)),
    }
}

/// `value` with control and format characters escaped as `\u{...}` (Rust's `escape_debug`, which
/// already escapes most of them, plus every format character).
pub(crate) fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if is_format_char(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.extend(c.escape_debug());
        }
    }
    out
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
        for good in ["~", "a b", "ü", "user-4242", "Zoë Ångström", &"a".repeat(256)] {
            assert!(check_subject(good).is_ok(), "{good:?}");
        }
        assert!(check_subject(&"a".repeat(257)).is_err());
    }

    #[test]
    fn ids_that_print_like_another_are_refused_naming_the_value_visibly() {
        let why = |v: &str| match check_subject(v).unwrap_err() {
            crate::Error::InvalidInput { value, why, .. } => (value, why),
            other => panic!("{other:?}"),
        };
        assert_eq!(why(" "), (" ".to_string(), "is only whitespace".to_string()));
        assert_eq!(why("").1, "may not be empty");
        for (bad, shown) in
            [(" alice", " alice"), ("alice ", "alice "), ("alice\u{a0}", "alice\\u{a0}"), ("\u{3000}alice", "\\u{3000}alice")]
        {
            let (value, why) = why(bad);
            assert_eq!(value, shown, "{bad:?}");
            assert_eq!(why, "has leading or trailing whitespace", "{bad:?}");
        }
        for (bad, shown) in [
            ("alice\u{200b}", "alice\\u{200b}"),
            ("al\u{200c}ice", "al\\u{200c}ice"),
            ("al\u{200d}ice", "al\\u{200d}ice"),
            ("alice\u{2060}", "alice\\u{2060}"),
            ("\u{feff}alice", "\\u{feff}alice"),
            ("\u{202e}ecila", "\\u{202e}ecila"),
            ("a\u{2066}b", "a\\u{2066}b"),
        ] {
            let (value, why) = why(bad);
            assert_eq!(value, shown, "{bad:?}");
            assert!(why.contains("invisible format character"), "{why}");
            assert!(!value.chars().any(is_format_char), "the message carries no invisible character");
            assert!(check_scope(bad).is_err() && check_text("policy version", bad).is_err(), "every id kind alike: {bad:?}");
            assert!(!accepts_subject(bad));
            assert!(check_stored_subject(bad).is_ok(), "a stored id of an older version stays nameable");
        }
        assert!(check_stored_subject(" alice").is_ok());
        assert!(check_stored_subject("a\nb").is_err());
        assert!(accepts_subject("alice"));
    }

    #[test]
    fn a_device_id_is_one_url_path_segment() {
        for good in ["phone", "dev-a_1.2~x", &"d".repeat(128)] {
            assert!(check_device(good).is_ok(), "{good}");
        }
        for bad in ["a/b?c", "a b", "a%2Fb", "..", ".", "", " phone", "ph\u{200b}one", "téléphone", &"d".repeat(129)] {
            let err = check_device(bad).unwrap_err();
            assert!(matches!(&err, crate::Error::InvalidInput { what: "device", .. }), "{bad:?}: {err:?}");
        }
        let msg = check_device("a/b?c").unwrap_err().to_string();
        assert!(msg.contains("'a/b?c'") && msg.contains("'/'"), "{msg}");
    }
}
