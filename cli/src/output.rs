//! Human output: aligned tables and receipts. JSON output is built in `commands.rs`.

use consentkit_core::{CategoryStatus, Receipt};

/// Prints rows as an aligned table under a header.
pub fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells.iter().enumerate().map(|(i, c)| format!("{c:<w$}", w = widths[i])).collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect());
    line(widths.iter().map(|w| "-".repeat(*w)).collect());
    for row in rows {
        line(row.clone());
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

/// Prints a receipt as labelled lines.
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
        println!("{k:<16} {v}");
    }
    if let Some(detail) = &r.detail {
        println!("{:<16} {detail}", "detail");
    }
}
