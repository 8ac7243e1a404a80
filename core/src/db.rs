//! Queries: the only place that knows table and column names.

use std::collections::HashMap;
use std::sync::Arc;

use rusqlite::types::{Value, ValueRef};
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::chain::{self, ChainBreak, ChainRow, RowContent, GENESIS};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::gate::OsRecord;
use crate::model::{Action, Source};
use crate::os_permission::OsPermission;
use crate::receipt::Receipt;
use crate::state::SubjectState;

// ----- the event row (schema v4) -----
//
// A row stores each receipt field once, compactly: the id as its 16 UUID bytes (text only for an
// id that is not a canonical UUID, e.g. an imported one), the action and source as fixed codes,
// the category and policy id and version as codes into `names` (append-only, a few rows), the
// content and link hashes as 32-byte BLOBs. The previous hash is not stored: it is the previous
// row's link hash, read from that row. Every value decodes back to exactly the text the receipt
// was sealed with, and anything that does not (an edited row) reads as undecodable, which the
// chain walk reports as a content mismatch.

/// The on-disk code of an action (schema v4). Never renumber: files hold these.
pub fn action_code(action: Action) -> i64 {
    match action {
        Action::Grant => 1,
        Action::Refuse => 2,
        Action::Withdraw => 3,
        Action::Object => 4,
        Action::WithdrawObjection => 5,
        Action::Expire => 6,
        Action::OsPermission => 7,
        Action::AgeStatus => 8,
        Action::Erasure => 9,
        Action::Purge => 10,
    }
}

/// The on-disk code of a source (schema v4). Never renumber: files hold these.
pub fn source_code(source: Source) -> i64 {
    match source {
        Source::Onboarding => 1,
        Source::Settings => 2,
        Source::OsSettings => 3,
        Source::Support => 4,
        Source::Guardian => 5,
        Source::Import => 6,
        Source::System => 7,
    }
}

fn action_of(code: i64) -> Option<Action> {
    Action::ALL.iter().copied().find(|a| action_code(*a) == code)
}

fn source_of(code: i64) -> Option<Source> {
    Source::ALL.iter().copied().find(|s| source_code(*s) == code)
}

/// The stored form of an event id: the 16 bytes of a canonical (lower-case, hyphenated) UUID,
/// the text of any other id. One form per id, so the unique index holds.
fn id_value(id: &str) -> Value {
    match uuid::Uuid::try_parse(id) {
        Ok(u) if u.hyphenated().to_string() == id => Value::Blob(u.as_bytes().to_vec()),
        _ => Value::Text(id.to_string()),
    }
}

/// The id a stored value stands for; `None` for a value [`id_value`] would not have written.
fn id_text(value: ValueRef) -> Option<String> {
    match value {
        ValueRef::Blob(b) => uuid::Uuid::from_slice(b).ok().map(|u| u.hyphenated().to_string()),
        ValueRef::Text(t) => {
            let text = std::str::from_utf8(t).ok()?;
            matches!(id_value(text), Value::Text(_)).then(|| text.to_string())
        }
        _ => None,
    }
}

fn hash_value(hash: &str) -> Result<Vec<u8>> {
    chain::hash_bytes(hash)
        .map(|b| b.to_vec())
        .ok_or_else(|| Error::Internal(format!("'{}' is not a SHA-256 hash in hex", hash.escape_debug())))
}

/// Checks that a statement of a write changed the `want` rows it writes: a trigger that is not
/// ConsentKit's (added with the sqlite3 shell) can make SQLite skip a row without an error
/// (`RAISE(IGNORE)`), and a write that returned success would then not be in the file.
/// `Tampered(WriteNotTaken)` instead: the write's transaction rolls back, nothing is recorded, the
/// caller is told (and a store's write closes the store).
fn wrote(changed: usize, want: usize, what: impl FnOnce() -> String) -> Result<()> {
    if changed == want {
        return Ok(());
    }
    Err(Error::Tampered(ChainBreak::WriteNotTaken { what: what() }))
}

/// The hex text of a stored hash (what a receipt carries). Only a BLOB is a stored hash: any
/// other value reads as the empty text, and a BLOB of another length as its hex, both of which
/// then fail the chain's hash checks.
fn hash_text(value: ValueRef) -> String {
    match value {
        ValueRef::Blob(b) => chain::hex(b),
        _ => String::new(),
    }
}

/// The code of a catalog name (a category, policy id or policy version), added if new.
fn name_code(conn: &Connection, name: &str) -> Result<i64> {
    if let Some(code) = conn.prepare_cached("SELECT code FROM names WHERE name = ?1")?.query_row([name], |r| r.get(0)).optional()? {
        return Ok(code);
    }
    conn.prepare_cached("INSERT INTO names (name) VALUES (?1)")?.execute([name])?;
    Ok(conn.last_insert_rowid())
}

/// The codes of an event's catalog names (category, policy id, policy version), added if new:
/// one cached statement when all are known (every write but a policy's first).
fn name_codes(conn: &Connection, category: Option<&str>, policy_id: &str, policy_version: &str) -> Result<(Option<i64>, i64, i64)> {
    let known: (Option<i64>, Option<i64>, Option<i64>) = conn
        .prepare_cached(
            "SELECT (SELECT code FROM names WHERE name = ?1), (SELECT code FROM names WHERE name = ?2), \
             (SELECT code FROM names WHERE name = ?3)",
        )?
        .query_row(params![category, policy_id, policy_version], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    let category = match (category, known.0) {
        (Some(name), None) => Some(name_code(conn, name)?),
        (_, code) => code,
    };
    let policy_id = match known.1 {
        Some(code) => code,
        None => name_code(conn, policy_id)?,
    };
    let policy_version = match known.2 {
        Some(code) => code,
        None => name_code(conn, policy_version)?,
    };
    Ok((category, policy_id, policy_version))
}

/// The names of the codes one read meets, looked up once each (the table holds a few rows).
#[derive(Default)]
struct Names(HashMap<i64, Option<String>>);

impl Names {
    /// The name a stored code stands for: `Ok(None)` for NULL, `Err(())` for a value that is no
    /// code of a stored name.
    fn get(&mut self, conn: &Connection, value: ValueRef) -> rusqlite::Result<std::result::Result<Option<String>, ()>> {
        let code = match value {
            ValueRef::Null => return Ok(Ok(None)),
            ValueRef::Integer(code) => code,
            _ => return Ok(Err(())),
        };
        let name = match self.0.entry(code) {
            std::collections::hash_map::Entry::Occupied(known) => known.into_mut(),
            std::collections::hash_map::Entry::Vacant(new) => {
                new.insert(conn.prepare_cached("SELECT name FROM names WHERE code = ?1")?.query_row([code], |r| r.get(0)).optional()?)
            }
        };
        Ok(name.clone().map(Some).ok_or(()))
    }
}

/// The stored columns of an event row, in order (`e` is the events table), as a literal.
macro_rules! event_columns {
    () => {
        "e.seq, e.id, e.subject, e.category, e.action, e.scope, e.source, e.policy_id, e.policy_version, \
         e.purpose_version, e.at, e.valid_until, e.permission, e.os_state, e.detail, e.content_hash, e.hash, e.removed_by"
    };
}
const EVENT_COLUMNS: &str = event_columns!();
const COL_CONTENT_HASH: usize = 15;
const COL_HASH: usize = 16;
const COL_REMOVED_BY: usize = 17;
/// [`EVENT_COLUMNS`] and the previous row's link hash (the receipt's `prev_hash`), by primary key.
const RECEIPT_COLUMNS: &str = concat!(event_columns!(), ", (SELECT p.hash FROM events AS p WHERE p.seq = e.seq - 1)");
const COL_PREV_HASH: usize = 18;

/// Appends one sealed event.
pub fn insert_event(conn: &Connection, r: &Receipt) -> Result<()> {
    let (category, policy_id, policy_version) = name_codes(conn, r.category.as_deref(), &r.policy_id, &r.policy_version)?;
    let changed = conn
        .prepare_cached(
            "INSERT INTO events (seq, id, subject, category, action, scope, source, policy_id, policy_version, purpose_version, at, \
         valid_until, permission, os_state, detail, content_hash, hash, removed_by) \
         VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,NULL)",
        )?
        .execute(params![
            r.seq as i64,
            id_value(&r.id),
            r.subject,
            category,
            action_code(r.action),
            r.scope,
            source_code(r.source),
            policy_id,
            policy_version,
            r.purpose_version,
            r.at.millis(),
            r.valid_until.map(|t| t.millis()),
            r.permission.map(|p| p.as_str()),
            r.os_state.map(|s| s.as_str()),
            r.detail,
            hash_value(&r.content_hash)?,
            hash_value(&r.hash)?,
        ])?;
    wrote(changed, 1, || format!("event {}", r.seq))
}

/// Appends a tombstone as an erasure or purge left it (link hashes and claimer only): what the
/// schema-v4 migration copies of an older file's tombstones.
fn insert_tombstone(conn: &Connection, seq: u64, content_hash: &str, hash: &str, removed_by: u64) -> Result<()> {
    conn.prepare_cached("INSERT INTO events (seq, content_hash, hash, removed_by) VALUES (?1, ?2, ?3, ?4)")?.execute(params![
        seq as i64,
        hash_value(content_hash)?,
        hash_value(hash)?,
        removed_by as i64
    ])?;
    Ok(())
}

/// Decodes an event row (of [`EVENT_COLUMNS`]) with `prev_hash` as its previous hash;
/// `Err(String)` when a stored value no longer decodes.
fn receipt(conn: &Connection, names: &mut Names, row: &Row, prev_hash: String) -> rusqlite::Result<std::result::Result<Receipt, String>> {
    let seq: i64 = row.get(0)?;
    let undecodable = |what: &str| Ok(Err(format!("event {seq} has an undecodable {what}")));
    let code = |i: usize| row.get_ref(i).map(|v| v.as_i64().ok());
    let (Some(action), Some(source)) = (code(4)?.and_then(action_of), code(6)?.and_then(source_of)) else {
        return undecodable("action or source");
    };
    let (Ok(category), Ok(policy_id), Ok(policy_version)) =
        (names.get(conn, row.get_ref(3)?)?, names.get(conn, row.get_ref(7)?)?, names.get(conn, row.get_ref(8)?)?)
    else {
        return undecodable("category or policy");
    };
    let permission = parse_opt(row, 12)?;
    let os_state = parse_opt(row, 13)?;
    let (Ok(permission), Ok(os_state)) = (permission, os_state) else {
        return undecodable("OS value");
    };
    let Some(id) = id_text(row.get_ref(1)?) else {
        return undecodable("id");
    };
    let at: Option<i64> = row.get(10)?;
    let (Some(policy_id), Some(policy_version), Some(at)) = (policy_id, policy_version, at) else {
        return Ok(Err(format!("event {seq} has missing columns")));
    };
    let (Ok(subject), Ok(scope), Ok(detail), Ok(purpose_version), Ok(valid_until)) = (
        row.get::<_, Option<String>>(2),
        row.get::<_, Option<String>>(5),
        row.get::<_, Option<String>>(14),
        row.get::<_, Option<u32>>(9),
        row.get::<_, Option<i64>>(11),
    ) else {
        return undecodable("column");
    };
    Ok(Ok(Receipt {
        seq: seq as u64,
        id,
        subject,
        category,
        action,
        scope,
        source,
        policy_id,
        policy_version,
        purpose_version,
        at: Timestamp(at),
        valid_until: valid_until.map(Timestamp),
        permission,
        os_state,
        detail,
        content_hash: hash_text(row.get_ref(COL_CONTENT_HASH)?),
        prev_hash,
        hash: hash_text(row.get_ref(COL_HASH)?),
    }))
}

fn parse_opt<T: std::str::FromStr<Err = String>>(row: &Row, i: usize) -> rusqlite::Result<std::result::Result<Option<T>, String>> {
    let text: Option<String> = row.get(i)?;
    Ok(text.map(|t| t.parse()).transpose())
}

/// The receipt's `prev_hash` from the [`RECEIPT_COLUMNS`] subquery: [`GENESIS`] before the first
/// event; empty if the row before is missing (a deleted row, which `verify` names).
fn prev_of(row: &Row) -> rusqlite::Result<String> {
    let seq: i64 = row.get(0)?;
    Ok(if seq == 1 { GENESIS.to_string() } else { hash_text(row.get_ref(COL_PREV_HASH)?) })
}

fn receipts(conn: &Connection, where_clause: &str, args: impl rusqlite::Params) -> Result<Vec<Receipt>> {
    receipts_limited(conn, where_clause, -1, args)
}

fn receipts_sql(where_clause: &str, limit: i64) -> String {
    format!("SELECT {RECEIPT_COLUMNS} FROM events AS e WHERE e.removed_by IS NULL AND {where_clause} ORDER BY e.seq LIMIT {limit}")
}

fn receipts_limited(conn: &Connection, where_clause: &str, limit: i64, args: impl rusqlite::Params) -> Result<Vec<Receipt>> {
    query_receipts(conn, &receipts_sql(where_clause, limit), args)
}

fn query_receipts(conn: &Connection, sql: &str, args: impl rusqlite::Params) -> Result<Vec<Receipt>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(args)?;
    let mut names = Names::default();
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(receipt(conn, &mut names, row, prev_of(row)?)?.map_err(Error::Corrupt)?);
    }
    Ok(out)
}

/// A subject's events, oldest first.
pub fn subject_events(conn: &Connection, subject: &str) -> Result<Vec<Receipt>> {
    receipts(conn, "e.subject = ?1", [subject])
}

/// A subject's events with the device's OS permission changes interleaved, oldest first.
pub fn subject_history(conn: &Connection, subject: &str) -> Result<Vec<Receipt>> {
    query_receipts(conn, &subject_history_sql(), [subject])
}

/// Two indexed halves (the subject's rows by `events_by_subject`, the device's OS changes by
/// `events_unattributed`) merged by `seq`: an `OR` of both would scan the whole ledger.
fn subject_history_sql() -> String {
    format!(
        "SELECT {RECEIPT_COLUMNS} FROM events AS e WHERE e.subject = ?1 AND e.removed_by IS NULL \
         UNION ALL SELECT {RECEIPT_COLUMNS} FROM events AS e WHERE e.subject IS NULL AND e.action = {} AND e.removed_by IS NULL \
         ORDER BY 1",
        action_code(Action::OsPermission)
    )
}

/// Events after `after_seq` (not removed), oldest first, at most `limit`.
pub fn events_after(conn: &Connection, after_seq: u64, limit: u32) -> Result<Vec<Receipt>> {
    receipts_limited(conn, "e.seq > ?1", limit as i64, [after_seq as i64])
}

/// Every stored event with this action that names no subject, oldest first (the erasure and
/// purge records, the device's OS changes); read through the `events_unattributed` index.
pub fn unattributed_events(conn: &Connection, action: Action) -> Result<Vec<Receipt>> {
    receipts(conn, UNATTRIBUTED, [action_code(action)])
}

const UNATTRIBUTED: &str = "e.subject IS NULL AND e.action = ?1";

/// The event with this id, if stored.
pub fn event_by_id(conn: &Connection, id: &str) -> Result<Option<Receipt>> {
    Ok(receipts(conn, "e.id = ?1", [id_value(id)])?.into_iter().next())
}

/// Every chain row in sequence order, streamed to `visit`. Each row's `prev_hash` is the link
/// hash of the row read before it ([`GENESIS`] for the first).
pub fn for_each_chain_row(conn: &Connection, mut visit: impl FnMut(ChainRow) -> bool) -> Result<()> {
    let mut stmt = conn.prepare(&format!("SELECT {EVENT_COLUMNS} FROM events AS e ORDER BY e.seq"))?;
    let mut rows = stmt.query([])?;
    let mut names = Names::default();
    let mut prev_hash = GENESIS.to_string();
    while let Some(row) = rows.next()? {
        let hash = hash_text(row.get_ref(COL_HASH)?);
        let removed: Option<i64> = row.get_ref(COL_REMOVED_BY)?.as_i64_or_null().unwrap_or(None);
        let content = match removed {
            Some(by) => RowContent::Tombstone { removed_by: by as u64 },
            None => match receipt(conn, &mut names, row, prev_hash.clone())? {
                Ok(r) => RowContent::Event(Box::new(r)),
                Err(_) => RowContent::Unreadable,
            },
        };
        let chain_row = ChainRow {
            seq: row.get::<_, i64>(0)? as u64,
            content,
            content_hash: hash_text(row.get_ref(COL_CONTENT_HASH)?),
            prev_hash: std::mem::replace(&mut prev_hash, hash.clone()),
            hash,
        };
        if !visit(chain_row) {
            break;
        }
    }
    Ok(())
}

/// Schema v4's migration of the event rows: copies every row of `events_v3` (the v3 table,
/// renamed aside) into the compact `events`, in sequence order; returns how many. Fails, naming
/// the row, where a v3 row would not carry over exactly: a `prev_hash` that is not the previous
/// row's link hash (v4 derives it from that row), a hash that is not 64 hex digits, a live row
/// whose values do not decode. (The migration then verifies the whole new chain.)
pub(crate) fn copy_v3_events(conn: &Connection) -> Result<u64> {
    let mut stmt = conn.prepare(
        "SELECT seq, id, subject, category, action, scope, source, policy_id, policy_version, purpose_version, at, valid_until, \
         permission, os_state, detail, content_hash, prev_hash, hash, removed_by FROM events_v3 ORDER BY seq",
    )?;
    let mut rows = stmt.query([])?;
    let (mut prev, mut prev_seq) = (GENESIS.to_string(), 0);
    let mut copied = 0;
    while let Some(row) = rows.next()? {
        let seq: i64 = row.get(0)?;
        let fail = |why: &str| Error::Corrupt(format!("cannot migrate event {seq} to schema version 4: {why}"));
        let text = |i: usize| row.get::<_, Option<String>>(i).map_err(|_| fail("a hash column is not text"));
        let (content_hash, prev_hash, hash) = (text(15)?.unwrap_or_default(), text(16)?.unwrap_or_default(), text(17)?.unwrap_or_default());
        // (After a gap the verification that follows names the missing row.)
        if seq == prev_seq + 1 && prev_hash != prev {
            return Err(fail("its prev_hash is not the previous event's hash (reordered or re-hashed)"));
        }
        if chain::hash_bytes(&content_hash).is_none() || chain::hash_bytes(&hash).is_none() {
            return Err(fail("a hash is not 64 lower-case hex digits"));
        }
        match row.get::<_, Option<i64>>(18).map_err(|_| fail("removed_by is not a number"))? {
            Some(by) => insert_tombstone(conn, seq as u64, &content_hash, &hash, by as u64)?,
            None => {
                let r = v3_receipt(row).map_err(|why| fail(&why))?;
                insert_event(conn, &Receipt { content_hash, prev_hash, hash: hash.clone(), ..r })?;
            }
        }
        prev = hash;
        prev_seq = seq;
        copied += 1;
    }
    Ok(copied)
}

/// Decodes a live schema-v3 row (text action, source and names; hex hashes read separately).
fn v3_receipt(row: &Row) -> std::result::Result<Receipt, String> {
    let sql = |e: rusqlite::Error| e.to_string();
    let text = |i: usize| row.get::<_, Option<String>>(i).map_err(sql);
    let required = |i: usize| text(i)?.ok_or_else(|| format!("column {i} is empty"));
    Ok(Receipt {
        seq: row.get::<_, i64>(0).map_err(sql)? as u64,
        id: required(1)?,
        subject: text(2)?,
        category: text(3)?,
        action: required(4)?.parse()?,
        scope: text(5)?,
        source: required(6)?.parse()?,
        policy_id: required(7)?,
        policy_version: required(8)?,
        purpose_version: row.get(9).map_err(sql)?,
        at: Timestamp(row.get::<_, Option<i64>>(10).map_err(sql)?.ok_or("no time")?),
        valid_until: row.get::<_, Option<i64>>(11).map_err(sql)?.map(Timestamp),
        permission: text(12)?.map(|p| p.parse()).transpose()?,
        os_state: text(13)?.map(|s| s.parse()).transpose()?,
        detail: text(14)?,
        content_hash: String::new(),
        prev_hash: String::new(),
        hash: String::new(),
    })
}

/// Turns events into tombstones: content gone (zeroed on disk by `secure_delete`), link hashes kept.
pub fn remove_events(conn: &Connection, seqs: &[u64], removed_by: u64) -> Result<()> {
    // In the same transaction: until a checkpoint has truncated the WAL, the removed content
    // may remain there (cleared by [`clear_scrub_marker`] after one).
    set_meta(conn, SCRUB_KEY, &removed_by.to_string())?;
    let mut stmt = conn.prepare_cached(
        "UPDATE events SET id=NULL, subject=NULL, category=NULL, action=NULL, scope=NULL, source=NULL, policy_id=NULL, \
         policy_version=NULL, purpose_version=NULL, at=NULL, valid_until=NULL, permission=NULL, os_state=NULL, detail=NULL, \
         removed_by=?2 WHERE seq=?1",
    )?;
    for seq in seqs {
        wrote(stmt.execute(params![*seq as i64, removed_by as i64])?, 1, || format!("the removal of event {seq}"))?;
    }
    Ok(())
}

/// Writes a subject's current state (same transaction as its event), as its binary row
/// ([`SubjectState::to_row`], schema v5).
pub fn put_subject(conn: &Connection, subject: &str, state: &SubjectState, last_seq: u64) -> Result<()> {
    put_subject_row(conn, subject, &state.to_row(), last_seq)
}

/// Writes a subject's state row as [`SubjectState::to_row`] made it (a write encodes the state
/// once, for the row and for the digest's hash of it).
pub fn put_subject_row(conn: &Connection, subject: &str, row: &[u8], last_seq: u64) -> Result<()> {
    let changed = conn
        .prepare_cached(
            "INSERT INTO subjects (subject, state, last_seq) VALUES (?1, ?2, ?3) \
                         ON CONFLICT(subject) DO UPDATE SET state = excluded.state, last_seq = excluded.last_seq",
        )?
        .execute(params![subject, row, last_seq as i64])?;
    wrote(changed, 1, || "a subject's state row".into())
}

/// Decodes a stored state row ([`SubjectState::from_row`]); the error names the subject.
pub fn decode_state(subject: &str, row: &[u8]) -> Result<SubjectState> {
    SubjectState::from_row(row).map_err(|e| Error::Corrupt(format!("state of subject '{subject}': {e}")))
}

/// A state row's stored bytes (a BLOB since schema v5, JSON text before).
fn state_bytes<'a>(value: rusqlite::types::ValueRef<'a>) -> Result<&'a [u8]> {
    value.as_bytes().map_err(|e| Error::Corrupt(format!("state table: {e}")))
}

/// Deletes a subject's current state.
pub fn delete_subject(conn: &Connection, subject: &str) -> Result<()> {
    conn.prepare_cached("DELETE FROM subjects WHERE subject = ?1")?.execute([subject])?;
    Ok(())
}

/// Every subject's current state (start-up cost grows with subjects, not with history).
pub fn load_subjects(conn: &Connection) -> Result<HashMap<String, Arc<SubjectState>>> {
    let mut out = HashMap::new();
    for_each_subject_row(conn, |subject, row| {
        out.insert(subject.to_string(), Arc::new(decode_state(subject, row)?));
        Ok(())
    })?;
    Ok(out)
}

/// Calls `row(subject, stored state row)` for every row of the state table, in one statement,
/// copying neither (start-up reads the table through this once).
pub fn for_each_subject_row(conn: &Connection, mut row: impl FnMut(&str, &[u8]) -> Result<()>) -> Result<()> {
    let mut stmt = conn.prepare_cached("SELECT subject, state FROM subjects")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let subject = r.get_ref(0)?.as_str().map_err(|e| Error::Corrupt(format!("state table, column 0: {e}")))?;
        row(subject, state_bytes(r.get_ref(1)?)?)?;
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
    let changed = conn
        .prepare_cached("INSERT OR REPLACE INTO os_permissions (permission, state, since, seq) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![permission.as_str(), record.state.as_str(), record.since.millis(), seq as i64])?;
    wrote(changed, 1, || "an OS permission's state row".into())
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

/// The meta key saying whether removed (erased or purged) content may remain in the WAL:
/// `clean:N` when none may (a checkpoint truncated the WAL when the head was at N, and no
/// removal record follows N); else the sequence number of the last removal record. Set in the
/// removal's own transaction, so a crash before the scrub leaves it set; absent (a file of an
/// older version) or anything else counts as pending. A removal appended after N by a writer that
/// does not keep the marker (an older version) is still found, through the removal records.
pub const SCRUB_KEY: &str = "scrub_pending";

/// True unless the file says no removed content may remain in its WAL (see [`SCRUB_KEY`]): the
/// marker is `clean:N` and no erasure or purge record comes after N (an indexed search).
pub fn scrub_marked_pending(conn: &Connection) -> Result<bool> {
    match meta(conn, SCRUB_KEY)?.as_deref().and_then(|v| v.strip_prefix("clean:")).map(str::parse::<u64>) {
        Some(Ok(through)) => {
            let after = conn.prepare_cached(&removal_record_after_sql())?.query_row([through as i64], |_| Ok(())).optional()?;
            Ok(after.is_some())
        }
        _ => Ok(true),
    }
}

/// Is there an erasure or purge record after seq `?1`? (Through `events_unattributed`: removal
/// records name no subject.)
fn removal_record_after_sql() -> String {
    format!(
        "SELECT 1 FROM events WHERE subject IS NULL AND action IN ({}, {}) AND seq > ?1 LIMIT 1",
        action_code(Action::Erasure),
        action_code(Action::Purge)
    )
}

/// The scrub marker as it is now, to be passed to [`clear_scrub_marker`] after a checkpoint.
pub fn scrub_marker(conn: &Connection) -> Result<Option<String>> {
    meta(conn, SCRUB_KEY)
}

/// After a checkpoint that truncated the WAL: records that no removed content remains up to
/// `through` (the head read before that checkpoint), unless the marker changed since it was read
/// as `seen` (a removal committed meanwhile, by any connection, keeps it pending).
pub fn clear_scrub_marker(conn: &Connection, seen: Option<&str>, through: u64) -> Result<()> {
    let clean = format!("clean:{through}");
    match seen {
        Some(seen) if seen == clean => {}
        Some(seen) => {
            conn.prepare_cached("UPDATE meta SET value = ?3 WHERE key = ?1 AND value = ?2")?.execute([SCRUB_KEY, seen, &clean])?;
        }
        None => {
            conn.prepare_cached("INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO NOTHING")?
                .execute([SCRUB_KEY, &clean])?;
        }
    }
    Ok(())
}

/// Sets a metadata value.
pub fn set_meta(conn: &Connection, key: &str, value: &str) -> Result<()> {
    conn.prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")?.execute([key, value])?;
    Ok(())
}

/// Moves the sync cursor (`meta.sync_acked_seq`) up to `seq`, never down: one statement, so two
/// connections (the app and the support tool) acking at once cannot move it backwards.
pub fn raise_sync_acked(conn: &Connection, seq: u64) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO meta (key, value) VALUES ('sync_acked_seq', ?1) ON CONFLICT (key) DO UPDATE SET value = excluded.value \
         WHERE CAST(meta.value AS INTEGER) < CAST(excluded.value AS INTEGER)",
    )?
    .execute([seq.to_string()])?;
    Ok(())
}

/// Records what a write leaves behind, in one statement (all on the one `meta` page): the
/// chain head, the state digest sealed with it, and the clock's high-water mark with its sealed
/// copy ([`time_mark`]); `erasure_key` is the file's.
pub fn set_head(conn: &Connection, seq: u64, hash: &str, digest: &str, time_high_water: i64, erasure_key: &str) -> Result<()> {
    let changed = conn
        .prepare_cached(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('head_seq', ?1), ('head_hash', ?2), ('state_digest', ?3), \
         ('time_high_water', ?4), ('time_high_water_seal', ?5)",
        )?
        .execute(params![seq.to_string(), hash, digest, time_high_water.to_string(), sealed_time(erasure_key, time_high_water)])?;
    wrote(changed, 5, || "the chain head, state digest and time mark".into())
}

/// The sealed copy of the clock's high-water mark `mark` in the file whose erasure key is `key`:
/// `<millis>:<sha256 of the tag, the key and the millis>`.
fn sealed_time(key: &str, mark: i64) -> String {
    format!("{mark}:{}", time_seal(key, mark))
}

fn time_seal(key: &str, mark: i64) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"consentkit-time-mark-v1\0");
    h.update(key.as_bytes());
    h.update(b"\0");
    h.update(mark.to_be_bytes());
    chain::hex(&h.finalize())
}

/// Raises the clock's high-water mark in the file to `mark` (with its sealed copy, in one
/// statement: a reader never sees one without the other), never lowering it: in one immediate
/// transaction, so a later mark another process wrote since this one last read the file stays.
/// For a mark-only write (no event); a write records its mark with its head ([`set_head`]).
pub fn set_time_mark(conn: &Connection, mark: i64) -> Result<()> {
    let tx = rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?;
    let rows = time_mark_rows(&tx)?;
    if rows.mark()?.is_some_and(|m| m >= mark) {
        return Ok(());
    }
    let key = rows.key;
    let changed = tx
        .prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES ('time_high_water', ?1), ('time_high_water_seal', ?2)")?
        .execute(params![mark.to_string(), sealed_time(&key, mark)])?;
    wrote(changed, 2, || "the time mark".into())?;
    tx.commit()?;
    Ok(())
}

/// The clock's high-water mark the file records: the later of the plain mark
/// (`time_high_water`, which earlier builds read and write) and its sealed copy
/// (`time_high_water_seal`), so a plain mark lowered or deleted by hand does not let a clock set back
/// revive an expired grant, and an earlier build that moved the plain mark on is still read. A
/// sealed copy that does not verify is `Tampered(TimeMarkEdited)` (fail closed). A file without
/// the copy (an earlier build's) gives its plain mark. Like the state digest the seal is unkeyed
/// (the erasure key is in the file): it stops edits, not a forger who recomputes it or deletes the
/// copy (ARCHITECTURE, known limits).
pub fn time_mark(conn: &Connection) -> Result<Option<i64>> {
    time_mark_rows(conn)?.mark()
}

/// The three `meta` rows the time mark is made of, read in one statement (every catch-up and
/// every mark-only save reads them).
struct TimeMarkRows {
    plain: Option<String>,
    sealed: Option<String>,
    key: String,
}

fn time_mark_rows(conn: &Connection) -> Result<TimeMarkRows> {
    let (plain, sealed, key) = conn
        .prepare_cached(
            "SELECT (SELECT value FROM meta WHERE key = 'time_high_water'), \
             (SELECT value FROM meta WHERE key = 'time_high_water_seal'), (SELECT value FROM meta WHERE key = 'erasure_key')",
        )?
        .query_row([], |r| Ok((r.get::<_, Option<String>>(0)?, r.get::<_, Option<String>>(1)?, r.get::<_, Option<String>>(2)?)))?;
    Ok(TimeMarkRows { plain, sealed, key: key.unwrap_or_default() })
}

impl TimeMarkRows {
    /// The mark these rows give ([`time_mark`]).
    fn mark(&self) -> Result<Option<i64>> {
        let plain = self.plain.as_deref().and_then(|v| v.parse::<i64>().ok());
        let Some(sealed) = &self.sealed else { return Ok(plain.map(|p| p.min(Timestamp::MAX.millis()))) };
        let verified = sealed
            .split_once(':')
            .and_then(|(mark, seal)| mark.parse::<i64>().ok().filter(|&m| m.to_string() == mark && time_seal(&self.key, m) == seal));
        match verified {
            // Never past the last time a receipt can carry (an earlier build kept any reading).
            Some(mark) => Ok(Some(plain.map_or(mark, |p| p.max(mark)).min(Timestamp::MAX.millis()))),
            None => Err(Error::Tampered(ChainBreak::TimeMarkEdited { value: crate::input::escape(&crate::text::shorten(sealed)) })),
        }
    }
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
        .prepare_cached("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get::<_, i64>(0)? as u64, hash_text(r.get_ref(1)?))))
        .optional()?)
}

/// The chain's head event `seq`, whose link hash the file records as `hash` ([`current_head`]),
/// checked against its seal. Its time is the one time the file proves without the clock's mark
/// (every write is stamped at or after the mark it read), so a mark deleted by hand never lets the
/// store's time fall before it; its policy id is the file's, sealed (every event carries the
/// store's). An edited head row (its time lowered; the hash checks are beaten only by a forger who
/// recomputes them) is `Tampered`; a tombstone, or no event, is `None`. One row and the previous
/// one's hash, by primary key.
pub fn head_event(conn: &Connection, seq: u64, hash: &str) -> Result<Option<Receipt>> {
    if seq == 0 {
        return Ok(None);
    }
    let mut stmt = conn.prepare_cached(&format!("SELECT {RECEIPT_COLUMNS} FROM events AS e WHERE e.seq = ?1"))?;
    let mut rows = stmt.query([seq as i64])?;
    let Some(row) = rows.next()? else { return Err(Error::Tampered(ChainBreak::Truncated { seq, head: seq })) };
    if !matches!(row.get_ref(COL_REMOVED_BY)?, ValueRef::Null) {
        return Ok(None);
    }
    let prev = prev_of(row)?;
    if prev.is_empty() {
        return Err(Error::Tampered(ChainBreak::Missing { seq: seq - 1 }));
    }
    let r = match receipt(conn, &mut Names::default(), row, prev)? {
        Ok(r) if chain::content_hash(&r) == r.content_hash => r,
        _ => return Err(Error::Tampered(ChainBreak::ContentMismatch { seq })),
    };
    if r.hash != hash || chain::link_hash(&r.prev_hash, &r.content_hash) != r.hash {
        return Err(Error::Tampered(ChainBreak::BrokenLink { seq }));
    }
    Ok(Some(r))
}

/// [`head_event`]'s time (capped at [`Timestamp::MAX`], as the mark is).
pub fn head_time(conn: &Connection, seq: u64, hash: &str) -> Result<Option<i64>> {
    Ok(head_event(conn, seq, hash)?.map(|r| r.at.millis().min(Timestamp::MAX.millis())))
}

/// The link hash stored for event `seq` (a tombstone keeps it), if the row exists.
pub fn hash_at(conn: &Connection, seq: u64) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT hash FROM events WHERE seq = ?1")?
        .query_row([seq as i64], |r| Ok(hash_text(r.get_ref(0)?)))
        .optional()?)
}

const SUBJECT_SEQS: &str = "SELECT seq, id FROM events WHERE subject = ?1 AND removed_by IS NULL ORDER BY seq";

/// Sequence numbers and ids of a subject's events (for erasure).
pub fn subject_seqs(conn: &Connection, subject: &str) -> Result<Vec<(u64, String)>> {
    let mut stmt = conn.prepare_cached(SUBJECT_SEQS)?;
    let mut rows = stmt.query([subject])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let seq = row.get::<_, i64>(0)? as u64;
        let id = id_text(row.get_ref(1)?).ok_or_else(|| Error::Corrupt(format!("event {seq} has an undecodable id")))?;
        out.push((seq, id));
    }
    Ok(out)
}

/// (seq, subject, category, at) of every subject event, for the retention purge.
pub fn retention_candidates(conn: &Connection, up_to_seq: u64) -> Result<Vec<(u64, String, String, i64)>> {
    let mut stmt = conn.prepare(
        "SELECT seq, subject, category, at FROM events WHERE removed_by IS NULL AND subject IS NOT NULL \
         AND category IS NOT NULL AND seq <= ?1 ORDER BY seq",
    )?;
    let mut rows = stmt.query([up_to_seq as i64])?;
    let mut names = Names::default();
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let seq = row.get::<_, i64>(0)? as u64;
        let Ok(Some(category)) = names.get(conn, row.get_ref(2)?)? else {
            return Err(Error::Corrupt(format!("event {seq} has an undecodable category")));
        };
        out.push((seq, row.get(1)?, category, row.get(3)?));
    }
    Ok(out)
}

/// The head to append after: the recorded head, which must be the newest stored row; if it is
/// not (the newest rows deleted, rows appended by hand), `Tampered`: an open fails closed and a
/// write is refused, never appended after a gap. No recorded head (an empty or pre-head file):
/// the last stored row. One cached statement, no scan (`max(seq)` reads the last row; `hash` is that row's): every
/// write reads this first.
pub fn current_head(conn: &Connection) -> Result<Option<(u64, String)>> {
    let (seq, hash, last): (Option<String>, Option<String>, Option<(u64, String)>) = conn
        .prepare_cached(
            "SELECT (SELECT value FROM meta WHERE key = 'head_seq'), (SELECT value FROM meta WHERE key = 'head_hash'), \
             max(seq), hash FROM events",
        )?
        .query_row([], |r| {
            let last = match r.get::<_, Option<i64>>(2)? {
                Some(seq) => Some((seq as u64, hash_text(r.get_ref(3)?))),
                None => None,
            };
            Ok((r.get(0)?, r.get(1)?, last))
        })?;
    let recorded = match (seq, hash) {
        (Some(seq), Some(hash)) => Some((seq.parse().map_err(|_| Error::Corrupt(format!("head_seq '{seq}'")))?, hash)),
        _ => None,
    };
    Ok(match (recorded, last) {
        // The newest row is the recorded head, or the file was edited: the newest rows deleted
        // (a write would append after the gap) or rows appended without moving the head.
        (Some(head), Some(last)) if last.0 > head.0 => {
            return Err(Error::Tampered(ChainBreak::BeyondHead { seq: head.0 + 1, head: head.0 }))
        }
        (Some(head), last) if head.0 > last.as_ref().map_or(0, |l| l.0) => {
            let seq = last.map_or(0, |l| l.0) + 1;
            return Err(Error::Tampered(ChainBreak::Truncated { seq, head: head.0 }));
        }
        (Some(head), _) => Some(head),
        (None, last) => last,
    })
}

/// SQLite's structural check of the whole file (`PRAGMA quick_check`: every page and index
/// b-tree well-formed). A damaged file, or one too damaged to be checked, is
/// `Tampered(FileDamaged)` with SQLite's first message (shortened).
pub fn quick_check(conn: &Connection) -> Result<()> {
    // One line, at most 200 characters: SQLite's report may span lines and list many pages.
    let damaged = |detail: String| {
        let line = detail.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("; ");
        let detail = if line.chars().count() > 200 { format!("{}…", line.chars().take(200).collect::<String>()) } else { line };
        Error::Tampered(ChainBreak::FileDamaged { detail })
    };
    let first: std::result::Result<String, rusqlite::Error> = conn.query_row("PRAGMA quick_check(1)", [], |r| r.get(0));
    match first {
        Ok(message) if message == "ok" => Ok(()),
        Ok(message) => Err(damaged(message)),
        Err(rusqlite::Error::SqliteFailure(f, message))
            if matches!(f.code, rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase) =>
        {
            Err(damaged(message.unwrap_or_else(|| f.to_string())))
        }
        Err(e) => Err(e.into()),
    }
}

/// The newest event the state table says it was derived from (`subjects.last_seq`,
/// `os_permissions.seq`); 0 for an empty table.
pub fn newest_state_seq(conn: &Connection) -> Result<u64> {
    Ok(conn
        .prepare_cached(
            "SELECT max(coalesce((SELECT max(last_seq) FROM subjects), 0), coalesce((SELECT max(seq) FROM os_permissions), 0))",
        )?
        .query_row([], |r| r.get::<_, i64>(0))?
        .max(0) as u64)
}

/// The subjects whose state was written after `seq` (another connection's commits).
pub fn subjects_after(conn: &Connection, seq: u64) -> Result<HashMap<String, Arc<SubjectState>>> {
    let mut stmt = conn.prepare_cached("SELECT subject, state FROM subjects WHERE last_seq > ?1")?;
    let mut rows = stmt.query([seq as i64])?;
    let mut out = HashMap::new();
    while let Some(r) = rows.next()? {
        let subject = r.get_ref(0)?.as_str().map_err(|e| Error::Corrupt(format!("state table, column 0: {e}")))?;
        let state = decode_state(subject, state_bytes(r.get_ref(1)?)?)?;
        out.insert(subject.to_string(), Arc::new(state));
    }
    Ok(out)
}

/// True if an erasure or purge was appended after `seq` (subjects may have been removed).
pub fn removals_after(conn: &Connection, seq: u64) -> Result<bool> {
    let n: i64 = conn
        .prepare_cached("SELECT count(*) FROM events WHERE seq > ?1 AND action IN (?2, ?3)")?
        .query_row([seq as i64, action_code(Action::Erasure), action_code(Action::Purge)], |r| r.get(0))?;
    Ok(n > 0)
}

/// SQLite's `PRAGMA data_version` of this connection: changes when another connection commits.
/// A cached statement: every write reads it twice, the probe thread 20 times a second.
pub fn data_version(conn: &Connection) -> Result<i64> {
    Ok(conn.prepare_cached("PRAGMA data_version")?.query_row([], |r| r.get(0))?)
}

/// True when the file `conn` has open is no longer the one at its path: renamed over (a copy
/// moved in its place), moved away or deleted (SQLITE_FCNTL_HAS_MOVED: one `stat`). A write to
/// it would return and be lost to every later opener. False for an in-memory database.
pub fn has_moved(conn: &Connection) -> bool {
    let mut moved: std::os::raw::c_int = 0;
    // SAFETY: a valid open handle, the "main" schema, and a pointer to an int as the opcode expects.
    let rc = unsafe {
        rusqlite::ffi::sqlite3_file_control(
            conn.handle(),
            c"main".as_ptr(),
            rusqlite::ffi::SQLITE_FCNTL_HAS_MOVED,
            (&mut moved as *mut std::os::raw::c_int).cast(),
        )
    };
    rc == rusqlite::ffi::SQLITE_OK && moved != 0
}

/// Why a store whose file [`has_moved`] cannot go on.
pub const MOVED: &str = "its file was replaced, moved or deleted while the store was open; reopen the store";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{self, OpenMode};

    /// A mark-only write never lowers the file's mark (another process may have written a later
    /// one since this one last read it); an edited sealed copy is `Tampered`, the plain row alone
    /// cannot lower the mark.
    #[test]
    fn the_time_mark_only_rises_and_its_copy_is_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let conn = schema::open(&dir.path().join("mark.db"), OpenMode::ReadWrite).unwrap();
        set_meta(&conn, "erasure_key", "k").unwrap();
        assert_eq!(time_mark(&conn).unwrap(), None);
        set_time_mark(&conn, 100).unwrap();
        set_time_mark(&conn, 90).unwrap(); // a process that had not seen 100
        assert_eq!(time_mark(&conn).unwrap(), Some(100));
        set_head(&conn, 1, "h", "d", 200, "k").unwrap();
        set_time_mark(&conn, 150).unwrap();
        assert_eq!(time_mark(&conn).unwrap(), Some(200));
        conn.execute("UPDATE meta SET value = '0' WHERE key = 'time_high_water'", []).unwrap();
        assert_eq!(time_mark(&conn).unwrap(), Some(200), "the sealed copy holds");
        conn.execute("UPDATE meta SET value = '5' || substr(value, 4) WHERE key = 'time_high_water_seal'", []).unwrap();
        assert!(matches!(time_mark(&conn), Err(Error::Tampered(ChainBreak::TimeMarkEdited { .. }))));
    }

    /// The plan's detail lines for `sql`.
    fn plan(conn: &Connection, sql: &str) -> Vec<String> {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows = stmt.query_map(["x"], |r| r.get::<_, String>(3)).unwrap();
        rows.map(|r| r.unwrap()).collect()
    }

    /// Every per-subject support query reads `events` through the named index, never by a scan
    /// (of any table: a `SCAN` line of any alias fails).
    fn assert_indexed(conn: &Connection) {
        let queries = [
            ("export (a subject's events)", receipts_sql("e.subject = ?1", -1), vec!["events_by_subject"]),
            (
                "history (the subject's events and the device's OS changes)",
                subject_history_sql(),
                vec!["events_by_subject", "events_unattributed"],
            ),
            ("erasure records", receipts_sql(UNATTRIBUTED, -1), vec!["events_unattributed"]),
            ("erasure (the subject's rows to remove)", SUBJECT_SEQS.to_string(), vec!["events_by_subject"]),
            ("an event by id (import's duplicate check)", receipts_sql("e.id = ?1", -1), vec!["sqlite_autoindex_events_1"]),
            ("the outbox", receipts_sql("e.seq > ?1", 100), vec!["INTEGER PRIMARY KEY"]),
            ("a subject's state row", "SELECT state FROM subjects WHERE subject = ?1".to_string(), vec!["subjects"]),
            ("a removal record after the last scrub (every read-write open)", removal_record_after_sql(), vec!["events_unattributed"]),
        ];
        for (what, sql, indexes) in queries {
            let plan = plan(conn, &sql);
            assert!(!plan.iter().any(|line| line.starts_with("SCAN")), "{what} scans: {plan:?}");
            for index in indexes {
                assert!(
                    plan.iter().any(|line| line.starts_with("SEARCH") && line.contains(index)),
                    "{what} does not search {index}: {plan:?}"
                );
            }
            // The receipt's prev_hash comes from the row before, by primary key.
            if sql.contains("SELECT p.hash") {
                assert!(
                    plan.iter().any(|line| line.starts_with("SEARCH p USING INTEGER PRIMARY KEY")),
                    "{what} does not find the previous row by seq: {plan:?}"
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
        let v1_rows: i64 = before.query_row("SELECT count(*) FROM events", [], |r| r.get(0)).unwrap();
        drop(before);
        let conn = schema::open(&path, OpenMode::ReadWrite).unwrap();
        assert_eq!(conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0)).unwrap(), schema::LATEST);
        assert_eq!(conn.query_row("SELECT count(*) FROM events", [], |r| r.get::<_, i64>(0)).unwrap(), v1_rows, "every row carried over");
        assert_indexed(&conn);
        // The rewritten queries still answer: the fixture's events are found through the indexes.
        let subject: String = conn.query_row("SELECT subject FROM events WHERE subject IS NOT NULL LIMIT 1", [], |r| r.get(0)).unwrap();
        let all: i64 = conn
            .query_row(
                "SELECT count(*) FROM events WHERE removed_by IS NULL AND (subject = ?1 OR (subject IS NULL AND action = ?2))",
                params![subject, action_code(Action::OsPermission)],
                |r| r.get(0),
            )
            .unwrap();
        let history = subject_history(&conn, &subject).unwrap();
        assert_eq!(history.len() as i64, all);
        assert!(history.windows(2).all(|w| w[0].seq < w[1].seq), "oldest first");
        assert!(history.iter().all(crate::chain::receipt_is_sealed), "each receipt carries its derived prev_hash");
    }

    /// Two connections ack at once: the one that read the cursor before the other raised it must
    /// not lower it (a read-then-write did: the outbox resent what was sent).
    #[test]
    fn the_sync_cursor_only_rises_whoever_writes_last() {
        let dir = tempfile::tempdir().unwrap();
        let conn = schema::open(&dir.path().join("ack.db"), OpenMode::ReadWrite).unwrap();
        let cursor = |conn: &Connection| meta(conn, "sync_acked_seq").unwrap();
        raise_sync_acked(&conn, 7).unwrap();
        assert_eq!(cursor(&conn).as_deref(), Some("7"));
        raise_sync_acked(&conn, 5).unwrap(); // the slower of two acks, which had read 0
        assert_eq!(cursor(&conn).as_deref(), Some("7"), "an ack of 5 after 7 moved the cursor back");
        raise_sync_acked(&conn, 12).unwrap();
        assert_eq!(cursor(&conn).as_deref(), Some("12"), "a higher ack moves it up (numbers, not text: '12' < '7')");
    }

    #[test]
    fn the_head_is_the_recorded_one_and_the_newest_row_or_the_file_was_edited() {
        let dir = tempfile::tempdir().unwrap();
        let conn = schema::open(&dir.path().join("head.db"), OpenMode::ReadWrite).unwrap();
        assert_eq!(current_head(&conn).unwrap(), None, "an empty ledger has no head");
        let hash = |b: u8| chain::hex(&[b; 32]);
        // What a write records is what the readers of the head, the digest and the mark find.
        set_head(&conn, 2, &hash(2), "digest-2", 1_234, "").unwrap();
        assert_eq!(head(&conn).unwrap(), Some((2, hash(2))));
        assert_eq!(meta(&conn, crate::state_proof::DIGEST_KEY).unwrap().as_deref(), Some("digest-2"));
        assert_eq!(meta(&conn, "time_high_water").unwrap().as_deref(), Some("1234"));
        let tampered = |r: Result<Option<(u64, String)>>| match r {
            Err(Error::Tampered(b)) => b,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            tampered(current_head(&conn)),
            ChainBreak::Truncated { seq: 1, head: 2 },
            "every row cut off after the recorded head: refused, never the recorded head"
        );
        let row = |seq: i64, h: u8| {
            conn.execute(
                "INSERT INTO events (seq, content_hash, hash, removed_by) VALUES (?1, ?2, ?3, 0)",
                params![seq, vec![h; 32], vec![h; 32]],
            )
            .unwrap()
        };
        row(1, 1);
        assert_eq!(tampered(current_head(&conn)), ChainBreak::Truncated { seq: 2, head: 2 }, "the last row is before the recorded head");
        row(2, 2);
        assert_eq!(current_head(&conn).unwrap(), Some((2, hash(2))));
        row(3, 3);
        assert_eq!(tampered(current_head(&conn)), ChainBreak::BeyondHead { seq: 3, head: 2 }, "a row beyond the recorded head");
        set_head(&conn, 3, &hash(3), "digest-3", 1_235, "").unwrap();
        conn.execute("DELETE FROM meta WHERE key = 'head_hash'", []).unwrap();
        assert_eq!(current_head(&conn).unwrap(), Some((3, hash(3))), "no recorded head: the last row");
        set_head(&conn, 3, &hash(3), "digest-3", 1_235, "").unwrap();
        conn.execute("UPDATE meta SET value = 'x' WHERE key = 'head_seq'", []).unwrap();
        assert!(matches!(current_head(&conn), Err(Error::Corrupt(_))), "an unreadable recorded head is an error, never ignored");
    }

    #[test]
    fn codes_are_distinct_and_decode_back() {
        for a in Action::ALL {
            assert_eq!(action_of(action_code(*a)), Some(*a));
        }
        for s in Source::ALL {
            assert_eq!(source_of(source_code(*s)), Some(*s));
        }
        assert_eq!((action_of(0), source_of(0), action_of(99)), (None, None, None));
    }

    #[test]
    fn ids_have_one_stored_form_each() {
        let uuid = "0b8e3a5c-2f4d-4c1e-9a7b-5d6e7f809a1b";
        assert!(matches!(id_value(uuid), Value::Blob(ref b) if b.len() == 16));
        for other in ["imported-1", "0B8E3A5C-2F4D-4C1E-9A7B-5D6E7F809A1B", "0b8e3a5c2f4d4c1e9a7b5d6e7f809a1b", ""] {
            assert_eq!(id_value(other), Value::Text(other.to_string()), "{other:?} is kept as text");
        }
        for id in [uuid, "imported-1", "0b8e3a5c2f4d4c1e9a7b5d6e7f809a1b"] {
            let stored = id_value(id);
            assert_eq!(id_text(ValueRef::from(&stored)).as_deref(), Some(id));
        }
        // A canonical UUID stored as text is not a form the store writes: it does not decode.
        assert_eq!(id_text(ValueRef::Text(uuid.as_bytes())), None);
        assert_eq!(id_text(ValueRef::Blob(&[1, 2, 3])), None);
    }
}
