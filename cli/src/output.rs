//! Everything the tool prints goes through here: one stdout writer (a closed pipe ends the tool
//! quietly with exit 0; `--quiet` silences it), tables aligned by display width, receipts, and
//! JSON in the versioned envelope. Text from stored data or arguments is escaped on the way out.

use std::io::{IsTerminal, Write};
use std::sync::OnceLock;

use consentkit_core::{CategoryStatus, Receipt};
use serde_json::Value;

use crate::failure::{OK, OUTPUT};
use crate::text::{escape, json_safe, one_line, pad, width};

/// The version of every JSON shape the tool prints; each JSON object carries it as `schema_version`.
/// Raised when a field is renamed or removed or changes meaning (adding a field does not raise it).
pub const JSON_SCHEMA_VERSION: u32 = 1;

/// How output is drawn, decided once from the flags and the environment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Style {
    /// `--quiet`: nothing on stdout; errors still go to stderr and the exit code carries the answer.
    pub quiet: bool,
    /// `--json`: machine-readable output, never colour or progress.
    pub json: bool,
    /// Colour on stdout (a terminal, no `NO_COLOR`, not JSON).
    pub color: bool,
    /// Progress bars on stderr (a terminal, not quiet, not JSON).
    pub progress: bool,
}

impl Style {
    /// The decision, given whether stdout and stderr are terminals and the value of `NO_COLOR`
    /// (any non-empty value turns colour off, per no-color.org).
    pub fn decide(json: bool, quiet: bool, stdout_tty: bool, stderr_tty: bool, no_color: Option<&str>) -> Style {
        let no_color = no_color.is_some_and(|v| !v.is_empty());
        Style { quiet, json, color: stdout_tty && !no_color && !json && !quiet, progress: stderr_tty && !json && !quiet }
    }

    /// The decision for this process.
    pub fn detect(json: bool, quiet: bool) -> Style {
        let no_color = std::env::var("NO_COLOR").ok();
        Style::decide(json, quiet, std::io::stdout().is_terminal(), std::io::stderr().is_terminal(), no_color.as_deref())
    }
}

static STYLE: OnceLock<Style> = OnceLock::new();

/// Sets the style for the rest of the process (first call wins).
pub fn init(style: Style) {
    let _ = STYLE.set(style);
}

/// The style in force (the default, plain and verbose, before [`init`]).
pub fn style() -> Style {
    STYLE.get().copied().unwrap_or_default()
}

/// Writes one line to stdout. A closed pipe (`consentkit history a | head -1`) ends the process
/// with exit 0 and no message; any other write error ends it with [`OUTPUT`] and one line.
pub fn write_line(args: std::fmt::Arguments<'_>) {
    if style().quiet {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.write_all(b"\n")) {
        stdout_failed(e);
    }
}

/// Flushes stdout, handling errors like [`write_line`].
pub fn flush() {
    if let Err(e) = std::io::stdout().flush() {
        stdout_failed(e);
    }
}

fn stdout_failed(e: std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(OK.into());
    }
    error_line(&format!("cannot write to stdout: {e}"));
    std::process::exit(OUTPUT.into());
}

/// Prints one error line on stderr: `consentkit: ` and the message, escaped and bounded.
pub fn error_line(message: &str) {
    let _ = writeln!(std::io::stderr().lock(), "consentkit: {}", one_line(message));
}

/// `println!` through [`write_line`].
#[macro_export]
macro_rules! outln {
    () => { $crate::output::write_line(format_args!("")) };
    ($($arg:tt)*) => { $crate::output::write_line(format_args!($($arg)*)) };
}

/// Prints a JSON object: `schema_version` beside the object's own fields (a non-object value goes under `value`).
pub fn print_json(value: impl serde::Serialize) {
    let value = serde_json::to_value(value).unwrap_or(Value::Null);
    let fields = match value {
        Value::Object(map) => map,
        other => {
            let mut map = serde_json::Map::new();
            map.insert("value".into(), other);
            map
        }
    };
    let mut envelope = serde_json::Map::new();
    envelope.insert("schema_version".into(), JSON_SCHEMA_VERSION.into());
    envelope.extend(fields.into_iter().filter(|(k, _)| k != "schema_version"));
    print_raw_json(&Value::Object(envelope));
}

/// Set once a JSON document went to stdout: a failure after it (`verify` finding a tampered
/// store prints its result, then fails) adds no second document.
static JSON_PRINTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Prints a JSON value as it is (pretty, unsafe characters escaped).
pub fn print_raw_json(value: &impl serde::Serialize) {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    JSON_PRINTED.store(true, std::sync::atomic::Ordering::Relaxed);
    outln!("{}", json_safe(text));
}

/// True once a JSON document was printed.
pub fn json_printed() -> bool {
    JSON_PRINTED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Text in green or red when colour is on.
pub fn paint(text: &str, good: bool) -> String {
    if style().color {
        format!("\u{1b}[{}m{text}\u{1b}[0m", if good { 32 } else { 31 })
    } else {
        text.to_string()
    }
}

/// Rows laid out as an aligned table under a header: columns padded by display width (CJK and
/// emoji take two columns), cells escaped, trailing blanks trimmed.
pub fn format_table(header: &[&str], rows: &[Vec<String>]) -> Vec<String> {
    let mut widths: Vec<usize> = header.iter().map(|h| width(h)).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(width(cell));
            }
        }
    }
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells.iter().enumerate().map(|(i, c)| pad(c, widths.get(i).copied().unwrap_or(0))).collect();
        padded.join("  ").trim_end().to_string()
    };
    let mut lines = vec![line(&header.iter().map(|h| h.to_string()).collect::<Vec<_>>())];
    lines.push(line(&widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>()));
    lines.extend(rows.iter().map(|r| line(r)));
    lines
}

/// Prints [`format_table`].
pub fn table(header: &[&str], rows: &[Vec<String>]) {
    for line in format_table(header, rows) {
        outln!("{line}");
    }
}

/// Prints a denied check's reasons, one `code  category` line each, indented and aligned.
pub fn reason_lines(reasons: &[(String, String)]) {
    let rows: Vec<Vec<String>> = reasons.iter().map(|(code, category)| vec![format!("  {code}"), category.clone()]).collect();
    for line in format_table(&["", ""], &rows).into_iter().skip(2) {
        outln!("{line}");
    }
}

/// Prints each category's status and since when.
pub fn status_table(statuses: &[CategoryStatus]) {
    let rows: Vec<Vec<String>> =
        statuses.iter().map(|s| vec![s.category.clone(), s.legal_basis.to_string(), s.status.to_string(), or_dash(s.since)]).collect();
    table(&["CATEGORY", "LEGAL BASIS", "STATUS", "SINCE"], &rows);
}

/// "-" for an absent value.
pub fn or_dash(value: Option<impl ToString>) -> String {
    value.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

/// Prints a receipt as labelled lines (values escaped).
pub fn receipt(r: &Receipt) {
    let rows = [
        ("receipt", r.id.clone()),
        ("seq", r.seq.to_string()),
        ("subject", or_dash(r.subject.as_ref())),
        ("category", or_dash(r.category.as_ref())),
        ("action", r.action.to_string()),
        ("scope", or_dash(r.scope.as_ref())),
        ("source", r.source.to_string()),
        ("policy", format!("{} {}", r.policy_id, r.policy_version)),
        ("purpose version", or_dash(r.purpose_version)),
        ("at", r.at.to_string()),
        ("valid until", or_dash(r.valid_until)),
        ("hash", r.hash.clone()),
    ];
    for (k, v) in rows {
        outln!("{k:<16} {}", escape(&v));
    }
    if let Some(detail) = &r.detail {
        outln!("{:<16} {}", "detail", escape(detail));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_by_display_width() {
        let rows = vec![
            vec!["日本語の連絡先".to_string(), "granted".to_string()],
            vec!["😀😀".to_string(), "refused".to_string()],
            vec!["plain".to_string(), "x".to_string()],
            vec!["a\u{1b}[31m".to_string(), "y".to_string()],
        ];
        let lines = format_table(&["SCOPE", "STATUS"], &rows);
        // The second column starts at the same display column on every line.
        let column_of_second = |line: &str| {
            let first_cell_end = line.find("  ").unwrap();
            let rest = &line[first_cell_end..];
            width(&line[..first_cell_end]) + (rest.len() - rest.trim_start().len())
        };
        let expected = column_of_second(&lines[0]);
        assert_eq!(expected, 14 + 2);
        for line in &lines[2..] {
            assert_eq!(column_of_second(line), expected, "{line:?} in {lines:#?}");
        }
        assert!(lines.iter().all(|l| !l.contains('\u{1b}')), "escapes are shown, not sent");
    }

    #[test]
    fn style_honours_tty_no_color_quiet_and_json() {
        let tty = Style::decide(false, false, true, true, None);
        assert!(tty.color && tty.progress);
        let piped = Style::decide(false, false, false, false, None);
        assert!(!piped.color && !piped.progress);
        let no_color = Style::decide(false, false, true, true, Some("1"));
        assert!(!no_color.color && no_color.progress, "NO_COLOR turns colour off, not progress");
        assert!(Style::decide(false, false, true, true, Some("")).color, "an empty NO_COLOR does not count");
        let json = Style::decide(true, false, true, true, None);
        assert!(!json.color && !json.progress);
        let quiet = Style::decide(false, true, true, true, None);
        assert!(!quiet.color && !quiet.progress && quiet.quiet);
    }
}
