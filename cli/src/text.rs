//! Text that reaches a terminal: escapes control characters, measures display width, and bounds
//! echoed values. Everything printed from stored data or arguments passes through here, so an
//! imported scope or a subject id cannot inject terminal escape sequences.

use std::borrow::Cow;
use std::fmt::Write;

use unicode_width::UnicodeWidthStr;

/// A quoted value in an error line longer than this many characters is cut to [`MAX_ECHO_CHARS`]
/// (the slack keeps a value the core already shortened, `head… (N bytes)`, as it is).
pub const MAX_WHOLE_ECHO_CHARS: usize = 96;
/// How much of an over-long quoted value an error line shows, in characters.
pub const MAX_ECHO_CHARS: usize = 64;
/// Longest error line, in characters.
pub const MAX_ERROR_CHARS: usize = 400;

/// True for characters a terminal may act on instead of showing, or shows as nothing: C0 and C1
/// controls, DEL, the bidirectional overrides and isolates that reorder what is displayed
/// ("Trojan Source"), and the invisible format characters (Unicode category Cf: zero-width space
/// and joiners, word joiner, BOM, soft hyphen, tags...), so `alice\u{200b}` never prints as `alice`.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{00AD}' | '\u{061C}' | '\u{0600}'..='\u{0605}' | '\u{06DD}' | '\u{070F}' | '\u{0890}' | '\u{0891}'
            | '\u{08E2}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}' | '\u{110BD}' | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}' | '\u{1BCA0}'..='\u{1BCA3}' | '\u{1D173}'..='\u{1D17A}' | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}')
}

/// True where a format character is part of what a terminal draws as one picture: a zero-width
/// joiner between two visible non-ASCII characters (emoji sequences such as 👩‍👩‍👧, Indic
/// conjuncts), or a tag character after the black flag or another tag (subdivision flags).
/// Next to ASCII (`alice\u{200d}`) or at either end it joins nothing and stays escaped.
fn joins(prev: Option<char>, c: char, next: Option<char>) -> bool {
    let visible = |x: Option<char>| x.is_some_and(|x| !x.is_ascii() && !is_unsafe(x));
    match c {
        '\u{200D}' => visible(prev) && visible(next),
        '\u{E0020}'..='\u{E007F}' => matches!(prev, Some('\u{1F3F4}' | '\u{E0020}'..='\u{E007E}')),
        _ => false,
    }
}

/// [`is_unsafe`] for the character at a place in a text (see [`joins`]).
fn is_unsafe_at(prev: Option<char>, c: char, next: Option<char>) -> bool {
    is_unsafe(c) && !joins(prev, c, next)
}

/// The text with every unsafe character written as a visible escape (`\x1b`, `\n`, `\u{202e}`);
/// borrowed unchanged when there is none.
pub fn escape(text: &str) -> Cow<'_, str> {
    // Most text has nothing to escape: borrowed, with no allocation.
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let unsafe_flags = unsafe_flags(text);
    if !unsafe_flags.iter().any(|&u| u) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for (c, &unsafe_here) in text.chars().zip(&unsafe_flags) {
        if !unsafe_here {
            out.push(c);
            continue;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x100 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\u{{{:04x}}}", c as u32);
            }
        }
    }
    Cow::Owned(out)
}

/// For each character of `text`, whether [`escape`] must escape it there.
fn unsafe_flags(text: &str) -> Vec<bool> {
    let chars: Vec<char> = text.chars().collect();
    (0..chars.len()).map(|i| is_unsafe_at(i.checked_sub(1).map(|p| chars[p]), chars[i], chars.get(i + 1).copied())).collect()
}

/// Bytes that should be UTF-8 (a raw argument), shown as [`escape`] shows text, each byte of an
/// invalid sequence as `\xNN`.
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 8);
    for chunk in bytes.utf8_chunks() {
        out.push_str(&escape(chunk.valid()));
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// Columns the text takes on a terminal once escaped: CJK and emoji count two, combining marks none.
pub fn width(text: &str) -> usize {
    UnicodeWidthStr::width(escape(text).as_ref())
}

/// Pads the (escaped) text with spaces to `columns` display columns.
pub fn pad(text: &str, columns: usize) -> String {
    let shown = escape(text);
    let fill = columns.saturating_sub(UnicodeWidthStr::width(shown.as_ref()));
    format!("{shown}{}", " ".repeat(fill))
}

/// An error message as one safe line: escaped (so a newline in a value cannot split it), every
/// quoted value longer than [`MAX_WHOLE_ECHO_CHARS`] shortened to its head and its size, and the whole
/// line capped at [`MAX_ERROR_CHARS`].
pub fn one_line(message: &str) -> String {
    let escaped = escape(message);
    let mut out = String::with_capacity(escaped.len().min(MAX_ERROR_CHARS + 16));
    let mut rest: &str = &escaped;
    // Values are quoted 'like this'; a quote opens only at the start or after a non-alphanumeric
    // character, so apostrophes inside words ("can't") are not mistaken for quotes.
    while let Some(open) = find_opening_quote(rest) {
        out.push_str(&rest[..=open]);
        let after = &rest[open + 1..];
        let Some(close) = closing_quote(after) else {
            rest = after;
            break;
        };
        let value = &after[..close];
        if value.chars().count() > MAX_WHOLE_ECHO_CHARS {
            let head: String = value.chars().take(MAX_ECHO_CHARS).collect();
            let _ = write!(out, "{head}… ({} bytes)", value.len());
        } else {
            out.push_str(value);
        }
        out.push('\'');
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    if out.chars().count() > MAX_ERROR_CHARS {
        let head: String = out.chars().take(MAX_ERROR_CHARS).collect();
        out = format!("{head}…");
    }
    out
}

fn find_opening_quote(text: &str) -> Option<usize> {
    let mut previous: Option<char> = None;
    for (i, c) in text.char_indices() {
        if c == '\'' && !previous.is_some_and(char::is_alphanumeric) {
            return Some(i);
        }
        previous = Some(c);
    }
    None
}

/// The quote that closes a value: one followed by the end or a non-alphanumeric character.
fn closing_quote(text: &str) -> Option<usize> {
    text.char_indices().find_map(|(i, c)| {
        let next = text[i + c.len_utf8()..].chars().next();
        (c == '\'' && !next.is_some_and(char::is_alphanumeric)).then_some(i)
    })
}

/// Serialized JSON with the unsafe characters that JSON leaves raw (DEL, C1 controls, bidi
/// controls) written as `\uXXXX` escapes. Valid because such characters occur only inside strings
/// (JSON escapes every other control character there; the layout's newlines and tabs stay).
pub fn json_safe(json: String) -> String {
    let needs = |c: char| is_unsafe(c) && !matches!(c, '\n' | '\r' | '\t');
    if !json.chars().any(needs) {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if needs(c) {
            // JSON's `\\uXXXX` is one UTF-16 unit: a character past U+FFFF is its surrogate pair.
            for unit in c.encode_utf16(&mut [0; 2]) {
                let _ = write!(out, "\\u{:04x}", unit);
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_terminal_sequences_and_bidi_controls() {
        assert_eq!(escape("plain id"), Cow::Borrowed("plain id"));
        assert_eq!(escape("a\u{1b}[2Jb"), "a\\x1b[2Jb");
        assert_eq!(escape("x\ny\r\t"), "x\\ny\\r\\t");
        assert_eq!(escape("\u{9b}31m"), "\\x9b31m", "C1 CSI");
        assert_eq!(escape("\u{7f}"), "\\x7f");
        // Invisible format characters: an id that differs from "alice" never prints as "alice".
        assert_eq!(escape("alice\u{200b}"), "alice\\u{200b}");
        assert_eq!(escape("\u{feff}alice\u{2060}"), "\\u{feff}alice\\u{2060}");
        assert_eq!(escape("al\u{ad}ice\u{200d}"), "al\\xadice\\u{200d}");
        assert_eq!(escape("tag\u{e0041}"), "tag\\u{e0041}");
        assert_eq!(escape("\u{200d}\u{1f469}"), "\\u{200d}\u{1f469}", "a joiner at the start joins nothing");
        let scotland = "\u{1f3f4}\u{e0067}\u{e0062}\u{e0073}\u{e0063}\u{e0074}\u{e007f}";
        assert_eq!(escape(scotland), Cow::Borrowed(scotland), "a subdivision flag stays one picture");
        assert_eq!(escape("abc\u{202e}fed"), "abc\\u{202e}fed");
        assert_eq!(escape("👩‍👩‍👧 café 日本"), "👩‍👩‍👧 café 日本", "ZWJ emoji and accents stay");
    }

    #[test]
    fn width_counts_display_columns() {
        assert_eq!(width("abc"), 3);
        assert_eq!(width("日本語"), 6);
        assert_eq!(width("😀"), 2);
        assert_eq!(width("e\u{301}"), 1, "combining accent");
        assert_eq!(width("\u{1b}"), 4, "shown as \\x1b");
        assert_eq!(pad("日本", 6), "日本  ");
        assert_eq!(pad("abcdef", 3), "abcdef");
    }

    #[test]
    fn one_line_bounds_each_echo_and_the_line() {
        let long = "x".repeat(5000);
        let line = one_line(&format!("unknown category '{long}'"));
        assert_eq!(line, format!("unknown category '{}… (5000 bytes)'", "x".repeat(64)));
        assert_eq!(one_line("can't read 'a\nb'"), "can't read 'a\\nb'");
        let already = format!("'{}… (5000 bytes)'", "x".repeat(64));
        assert_eq!(one_line(&already), already, "a value the core shortened stays as it is");
        let unquoted = one_line(&"y".repeat(5000));
        assert_eq!(unquoted.chars().count(), MAX_ERROR_CHARS + 1);
        assert!(!one_line("bad '\u{1b}]0;pwned\u{7}'").contains('\u{1b}'));
    }

    #[test]
    fn json_safe_escapes_what_serde_leaves_raw() {
        let json = serde_json::to_string(&"a\u{9b}b\u{202e}c\u{1b}").unwrap();
        let safe = json_safe(json);
        assert_eq!(safe, "\"a\\u009bb\\u202ec\\u001b\"");
        assert_eq!(serde_json::from_str::<String>(&safe).unwrap(), "a\u{9b}b\u{202e}c\u{1b}");
        // A character past U+FFFF (a tag) is escaped as its UTF-16 surrogate pair, valid JSON.
        let tagged = json_safe(serde_json::to_string(&"x\u{e0041}\u{200b}").unwrap());
        assert_eq!(tagged, "\"x\\udb40\\udc41\\u200b\"");
        assert_eq!(serde_json::from_str::<String>(&tagged).unwrap(), "x\u{e0041}\u{200b}");
        let pretty = serde_json::to_string_pretty(&serde_json::json!({ "k": "\u{85}" })).unwrap();
        assert_eq!(json_safe(pretty), "{\n  \"k\": \"\\u0085\"\n}", "layout kept, NEL escaped");
    }
}
