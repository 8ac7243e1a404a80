//! Queries: the only place that knows table and column names.

use std::collections::HashMap;
use std::sync::Arc;

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::chain::{ChainRow, RowContent};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::gate::OsRecord;
use crate::model::Action;
use crate::os_permission::OsPermission;
use crate::receipt::Receipt;
use crate::state::SubjectState;

const EVENT_COLUMNS: &str = "seq, id, subject, category, action, scope, source, policy_id, policy_version, \
     purpose_version, at, valid_until, permission, os_state, detail, content_hash, prev_hash, hash, removed_by";

/// Appends one sealed event.
pub fn insert_event(conn: &Connection, r: &Receipt) -> Result<()> {
    conn.prepare_cached(&format!(
        "INSERT INTO events ({EVENT_COLUMNS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,NULL)"
    ))?
    .execute(params![
        r.seq as i64,
        r.id,
        r.subject,
        r.category,
        r.action.as_str(),
        r.scope,
        r.source.as_str(),
        r.policy_id,
        r.policy_version,
        r.purpose_version,
        r.at.millis(),
        r.valid_until.map(|t| t.millis()),
        r.permission.map(|p| p.as_str()),
        r.os_state.map(|s| s.as_str()),
        r.detail,
        r.content_hash,
        r.prev_hash,
        r.hash,
    ])?;
    Ok(())
}

fn parse<T: std::str::FromStr<Err = String>>(row: &Row, i: usize) -> rusqlite::Result<std::result::Result<T, String>> {
    let text: Option<String> = row.get(i)?;
    Ok(text.ok_or_else(|| format!("column {i} is null")).and_then(|t| t.parse()))
}

fn parse_opt<T: std::str::FromStr<Err = String>>(row: &Row, i: usize) -> rusqlite::Result<std::result::Result<Option<T>, String>> {
    let text: Option<String> = row.get(i)?;
    Ok(text.map(|t| t.parse()).transpose())
}

/// Decodes an event row; `Err(String)` when a stored value no longer decodes.
fn receipt(row: &Row) -> rusqlite::Result<std::result::Result<Receipt, String>> {
    let action = parse(row, 4)?;
    let source = parse(row, 6)?;
    let permission = parse_opt(row, 12)?;
    let os_state = parse_opt(row, 13)?;
    let (Ok(action), Ok(source), Ok(permission), Ok(os_state)) = (action, source, permission, os_state) else {
        return Ok(Err(format!("event {} has an undecodable action, source or OS value", row.get::<_, i64>(0)?)));
    };
    let id: Option<String> = row.get(1)?;
    let policy_id: Option<String> = row.get(7)?;
    let policy_version: Option<String> = row.get(8)?;
    let at: Option<i64> = row.get(10)?;
    let (Some(id), Some(policy_id), Some(policy_version), Some(at)) = (id, policy_id, policy_version, at) else {
        return Ok(Err(format!("event {} has missing columns", row.get::<_, i64>(0)?)));
    };
    Ok(Ok(Receipt {
        seq: row.get::<_, i64>(0)? as u64,
        id,
        subject: row.get(2)?,
        category: row.get(3)?,
        action,
        scope: row.get(5)?,
        source,
        policy_id,
        policy_version,
        purpose_version: row.get(9)?,
        at: Timestamp(at),
        valid_until: row.get::<_, Option<i64>>(11)?.map(Timestamp),
        permission,
        os_state,
        detail: row.get(14)?,
        content_hash: row.get(15)?,
        prev_hash: row.get(16)?,
        hash: row.get(17)?,
    }))
}

fn receipts(conn: &Connection, where_clause: &str, args: impl rusqlite::Params) -> Result<Vec<Receipt>> {
    receipts_limited(conn, where_clause, -1, args)
}

fn receipts_sql(where_clause: &str, limit: i64) -> String {
    format!("SELECT {EVENT_COLUMNS} FROM events WHERE removed_by IS NULL AND {where_clause} ORDER BY seq LIMIT {limit}")
}

fn receipts_limited(conn: &Connection, where_clause: &str, limit: i64, args: impl rusqlite::Params) -> Result<Vec<Receipt>> {
    let mut stmt = conn.prepare_cached(&receipts_sql(where_clause, limit))?;
    let rows = stmt.query_map(args, receipt)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row?.map_err(Error::Corrupt)?);
    }
    Ok(out)
}

/// A subject's events, oldest first.
pub fn subject_events(conn: &Connection, subject: &str) -> Result<Vec<Receipt>> {
    receipts(conn, "subject = ?1", [subject])
}

/// A subject's events with the device's OS permission changes interleaved, oldest first.
pub fn subject_history(conn: &Connection, subject: &str) -> Result<Vec<Receipt>> {
    query_receipts(conn, &subject_history_sql(), [subject])
}

/// Two indexed halves (the subject's rows by `events_by_subject`, the device's OS changes by
/// `events_unattributed`) merged by `seq`: an `OR` of both would scan the whole ledger.
fn subject_history_sql() -> String {
    format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE subject = ?1 AND removed_by IS NULL \
         UNION ALL SELECT {EVENT_COLUMNS} FROM events WHERE subject IS NULL AND action = 'os_permission' AND removed_by IS NULL \
         ORDER BY seq"
    )
}

fn query_receipts(conn: &Connection, sql: &str, args: impl rusqlite::Params) -> Result<Vec<Receipt>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(args)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(receipt(row)?.map_err(Error::Corrupt)?);
    }
    Ok(out)
}

/// Events after `after_seq` (not removed), oldest first, at most `limit`.
pub fn events_after(conn: &Connection, after_seq: u64, limit: u32) -> Result<Vec<Receipt>> {
    receipts_limited(conn, "seq > ?1", limit as i64, [after_seq as i64])
}

/// Every stored event with this action that names no subject, oldest first (the erasure and
/// purge records, the device's OS changes); read through the `events_unattributed` index.
pub fn unattributed_events(conn: &Connection, action: Action) -> Result<Vec<Receipt>> {
    receipts(conn, UNATTRIBUTED, [action.as_str()])
}

const UNATTRIBUTED: &str = "subject IS NULL AND action = ?1";

/// The event with this id, if stored.
pub fn event_by_id(conn: &Connection, id: &str) -> Result<Option<Receipt>> {
    Ok(receipts(conn, "id = ?1", [id])?.into_iter().next())
}

/// Every chain row in sequence order, streamed to `visit`.
pub fn for_each_chain_row(conn: &Connection, mut visit: impl FnMut(ChainRow) -> bool) -> Result<()> {
    let mut stmt = conn.prepare(&format!("SELECT {EVENT_COLUMNS} FROM events ORDER BY seq"))?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let removed: Option<i64> = row.get(18)?;
        let content = match removed {
            Some(by) => RowContent::Tombstone { removed_by: by as u64 },
            None => match receipt(row)? {
                Ok(r) => RowContent::Event(Box::new(r)),
                Err(_) => RowContent::Unreadable,
            },
        };
        let chain_row = ChainRow {
            seq: row.get::<_, i64>(0)? as u64,
            content,
            content_hash: row.get::<_, Option<String>>(15)?.unwrap_or_default(),
            prev_hash: row.get::<_, Option<String>>(16)?.unwrap_or_default(),
            hash: row.get::<_, Option<String>>(17)?.unwrap_or_default(),
        };
        if !visit(chain_row) {
            break;
        }
    }
    Ok(())
}

/// Turns events into tombstones: content gone (zeroed on disk by `secure_delete`), link hashes kept.
pub fn remove_events(conn: &Connection, seqs: &[u64], removed_by: u64) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "UPDATE events SET id=NULL, subject=NULL, category=NULL, action=NULL, scope=NULL, source=NULL, policy_id=NULL, \
         policy_version=NULL, purpose_version=NULL, at=NULL, valid_until=NULL, permission=NULL, os_state=NULL, detail=NULL, \
         removed_by=?2 WHERE seq=?1",
    )?;
    for seq in seqs {
        stmt.execute(params![*seq as i64, removed_by as i64])?;
    }
    Ok(())
}

/// Writes a subject's current state (same transaction as its event).
pub fn put_subject(conn: &Connection, subject: &str, state: &SubjectState, last_seq: u64) -> Result<()> {
    let json = serde_json::to_string(state).map_err(|e| Error::Corrupt(e.to_string()))?;
    conn.prepare_cached(
        "INSERT INTO subjects (subject, state, last_seq) VALUES (?1, ?2, ?3) \
                         ON CONFLICT(subject) DO UPDATE SET state = excluded.state, last_seq = excluded.last_seq",
    )?
    .execute(params![subject, json, last_seq as i64])?;
    Ok(())
}

/// Deletes a subject's current state.
pub fn delete_subject(conn: &Connection, subject: &str) -> Result<()> {
    conn.prepare_cached("DELETE FROM subjects WHERE subject = ?1")?.execute([subject])?;
    Ok(())
}

/// Every subject's current state (start-up cost grows with subjects, not with history).
pub fn load_subjects(conn: &Connection) -> Result<HashMap<String, Arc<SubjectState>>> {
    let mut stmt = conn.prepare("SELECT subject, state FROM subjects")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    let mut out = HashMap::new();
    for row in rows {
        let (subject, json) = row?;
        let state: SubjectState = serde_json::from_str(&json).map_err(|e| Error::Corrupt(format!("state of subject '{subject}': {e}")))?;
        out.insert(subject, Arc::new(state));
    }
    Ok(out)
}

/// Calls `row(subject, stored state text)` for every row of the state table, in one statement,
/// copying neither (start-up reads the table through this once).
pub fn for_each_subject_row(conn: &Connection, mut row: impl FnMut(&str, &str) -> Result<()>) -> Result<()> {
    let mut stmt = conn.prepare_cached("SELECT subject, state FROM subjects")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let text =
            |i: usize| -> Result<&str> { r.get_ref(i)?.as_str().map_err(|e| Error::Corrupt(format!("state table, column {i}: {e}"))) };
        row(text(0)?, text(1)?)?;
    }
    Ok(())
}

/// Replaces the whole state table (subjects and OS permissions) with a rebuilt one.
pub fn replace_state(
    conn: &Connection,
    subjects: &HashMap<String, Arc<SubjectState>>,
    os: &HashMap<OsPermission, OsRecord>,
    last_seq: u64,
) -> Result<()> {
    conn.execute("DELETE FROM subjects", [])?;
    conn.execute("DELETE FROM os_permissions", [])?;
    for (subject, state) in subjects {
        put_subject(conn, subject, state, last_seq)?;
    }
    for (permission, record) in os {
        put_os(conn, *permission, *record, last_seq)?;
    }
    Ok(())
}

/// Writes the device's state of one OS permission.
pub fn put_os(conn: &Connection, permission: OsPermission, record: OsRecord, seq: u64) -> Result<()> {
    conn.prepare_cached("INSERT OR REPLACE INTO os_permissions (permission, state, since, seq) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![permission.as_str(), record.state.as_str(), record.since.millis(), seq as i64])?;
    Ok(())
}

/// The device's OS permissions.
pub fn load_os(conn: &Connection) -> Result<HashMap<OsPermission, OsRecord>> {
    let mut stmt = conn.prepare("SELECT permission, state, since FROM os_permissions")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?)))?;
    let mut out = HashMap::new();
    for row in rows {
        let (p, s, since) = row?;
        let permission = p.parse().map_err(Error::Corrupt)?;
        let state = s.parse().map_err(Error::Corrupt)?;
        out.insert(permission, OsRecord { state, since: Timestamp(since) });
    }
    Ok(out)
}

/// A metadata value.
pub fn meta(conn: &Connection, key: &str) -> Result<Option<String>> {
    Ok(conn.prepare_cached("SELECT value FROM meta WHERE key = ?1")?.query_row([key], |r| r.get(0)).optional()?)
}

/// Sets a metadata value.
pub fn set_meta(conn: &Connection, key: &str, value: &str) -> Result<()> {
    conn.prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")?.execute([key, value])?;
    Ok(())
}

/// The chain's head as recorded in metadata: (seq, hash).
pub fn head(conn: &Connection) -> Result<Option<(u64, String)>> {
    let seq = meta(conn, "head_seq")?;
    let hash = meta(conn, "head_hash")?;
    match (seq, hash) {
        (Some(seq), Some(hash)) => {
            let seq = seq.parse().map_err(|_| Error::Corrupt(format!("head_seq '{seq}'")))?;
            Ok(Some((seq, hash)))
        }
        _ => Ok(None),
    }
}

/// The last stored event's (seq, hash), read from the events table itself.
pub fn last_event(conn: &Connection) -> Result<Option<(u64, String)>> {
    Ok(conn
        .query_row("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1", [], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)))
        .optional()?)
}

const SUBJECT_SEQS: &str = "SELECT seq, id FROM events WHERE subject = ?1 AND removed_by IS NULL ORDER BY seq";

/// Sequence numbers of a subject's events (for erasure).
pub fn subject_seqs(conn: &Connection, subject: &str) -> Result<Vec<(u64, String)>> {
    let mut stmt = conn.prepare_cached(SUBJECT_SEQS)?;
    let rows = stmt.query_map([subject], |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, String>(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// (seq, subject, category, at) of every subject event, for the retention purge.
pub fn retention_candidates(conn: &Connection, up_to_seq: u64) -> Result<Vec<(u64, String, String, i64)>> {
    let mut stmt = conn.prepare(
        "SELECT seq, subject, category, at FROM events WHERE removed_by IS NULL AND subject IS NOT NULL \
         AND category IS NOT NULL AND seq <= ?1 ORDER BY seq",
    )?;
    let rows = stmt.query_map([up_to_seq as i64], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?, r.get(2)?, r.get(3)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The head to append after: the recorded head, or the last stored row if rows lie beyond it
/// (rows cut off after the recorded head stay visible as a break instead of being overwritten).
pub fn current_head(conn: &Connection) -> Result<Option<(u64, String)>> {
    Ok(match (head(conn)?, last_event(conn)?) {
        (Some(head), Some(last)) if last.0 > head.0 => Some(last),
        (Some(head), _) => Some(head),
        (None, last) => last,
    })
}

/// The subjects whose state was written after `seq` (another connection's commits).
pub fn subjects_after(conn: &Connection, seq: u64) -> Result<HashMap<String, Arc<SubjectState>>> {
    let mut stmt = conn.prepare_cached("SELECT subject, state FROM subjects WHERE last_seq > ?1")?;
    let rows = stmt.query_map([seq as i64], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    let mut out = HashMap::new();
    for row in rows {
        let (subject, json) = row?;
        let state: SubjectState = serde_json::from_str(&json).map_err(|e| Error::Corrupt(format!("state of subject '{subject}': {e}")))?;
        out.insert(subject, Arc::new(state));
    }
    Ok(out)
}

/// True if an erasure or purge was appended after `seq` (subjects may have been removed).
pub fn removals_after(conn: &Connection, seq: u64) -> Result<bool> {
    let n: i64 = conn
        .prepare_cached("SELECT count(*) FROM events WHERE seq > ?1 AND action IN ('erasure', 'purge')")?
        .query_row([seq as i64], |r| r.get(0))?;
    Ok(n > 0)
}

/// SQLite's `PRAGMA data_version` of this connection: changes when another connection commits.
pub fn data_version(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("PRAGMA data_version", [], |r| r.get(0))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{self, OpenMode};

    /// The plan's detail lines for `sql`.
    fn plan(conn: &Connection, sql: &str) -> Vec<String> {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows = stmt.query_map(["x"], |r| r.get::<_, String>(3)).unwrap();
        rows.map(|r| r.unwrap()).collect()
    }

    /// Every per-subject support query reads `events` through the named index, never by a scan.
    fn assert_indexed(conn: &Connection) {
        let queries = [
            ("export (a subject's events)", receipts_sql("subject = ?1", -1), vec!["events_by_subject"]),
            (
                "history (the subject's events and the device's OS changes)",
                subject_history_sql(),
                vec!["events_by_subject", "events_unattributed"],
            ),
            ("erasure records", receipts_sql(UNATTRIBUTED, -1), vec!["events_unattributed"]),
            ("erasure (the subject's rows to remove)", SUBJECT_SEQS.to_string(), vec!["events_by_subject"]),
            ("a subject's state row", "SELECT state FROM subjects WHERE subject = ?1".to_string(), vec!["subjects"]),
        ];
        for (what, sql, indexes) in queries {
            let plan = plan(conn, &sql);
            assert!(
                !plan.iter().any(|line| line.starts_with("SCAN events") || line.starts_with("SCAN subjects")),
                "{what} scans: {plan:?}"
            );
            for index in indexes {
                assert!(
                    plan.iter().any(|line| line.starts_with("SEARCH") && line.contains(index)),
                    "{what} does not search {index}: {plan:?}"
                );
            }
        }
    }

    #[test]
    fn support_queries_use_an_index() {
        let dir = tempfile::tempdir().unwrap();
        let conn = schema::open(&dir.path().join("plans.db"), OpenMode::ReadWrite).unwrap();
        assert_indexed(&conn);
    }

    #[test]
    fn an_old_file_gets_the_index_when_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.db");
        std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/store-v1.db"), &path).unwrap();
        let before = Connection::open(&path).unwrap();
        assert_eq!(before.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0)).unwrap(), 1);
        drop(before);
        let conn = schema::open(&path, OpenMode::ReadWrite).unwrap();
        assert_eq!(conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0)).unwrap(), schema::LATEST);
        assert_indexed(&conn);
        // The rewritten queries still answer: the fixture's events are found through the indexes.
        let subject: String = conn.query_row("SELECT subject FROM events WHERE subject IS NOT NULL LIMIT 1", [], |r| r.get(0)).unwrap();
        let all: i64 = conn
            .query_row(
                "SELECT count(*) FROM events WHERE removed_by IS NULL AND (subject = ?1 OR (subject IS NULL AND action = 'os_permission'))",
                [&subject],
                |r| r.get(0),
            )
            .unwrap();
        let history = subject_history(&conn, &subject).unwrap();
        assert_eq!(history.len() as i64, all);
        assert!(history.windows(2).all(|w| w[0].seq < w[1].seq), "oldest first");
    }
}
