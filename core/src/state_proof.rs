//! The state table's proof. The state table (`subjects`, `os_permissions`) is derived data: the
//! fold of the history. Two checks keep an edit of it from ever being served:
//!
//! - **At open, O(subjects):** every write stores, in the same transaction, a digest of the whole
//!   state table tied to the chain head it was derived up to ([`StateSum::seal`]). Opening
//!   recomputes it from the rows it loads anyway. A mismatch (an edited row, a deleted digest, a
//!   file from schema version 1) triggers the full check below before anything is served.
//! - **In `verify` (and after a mismatch at open), O(history):** the chain is walked and folded
//!   ([`HistoryFold`]); the state table must equal the fold.
//!
//! The digest is unkeyed (a forger who recomputes it, like one who rewrites the chain, is found
//! only by `verify`); it costs one hash per subject at open, never a walk of the history.

use std::collections::HashMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::chain::{hex, ChainBreak, RowContent, Verifier, GENESIS};
use crate::db;
use crate::error::{Error, Result};
use crate::gate::OsRecord;
use crate::model::Action;
use crate::os_permission::OsPermission;
use crate::receipt::Receipt;
use crate::state::SubjectState;

/// The metadata key holding the sealed digest.
pub(crate) const DIGEST_KEY: &str = "state_digest";

/// The hash one state row adds to a [`StateSum`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RowHash([u64; 4]);

/// An order-independent sum of the state table's rows (each row's SHA-256, added lane-wise
/// modulo 2^64), so one write updates it for the rows it touches only.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateSum([u64; 4]);

fn row_hash(kind: &str, key: &str, value: &str) -> [u64; 4] {
    let mut h = Sha256::new();
    for part in ["consentkit-state-row-v1", kind, key, value] {
        h.update((part.len() as u32).to_be_bytes());
        h.update(part.as_bytes());
    }
    let bytes = h.finalize();
    let lane = |i: usize| u64::from_be_bytes(bytes[i * 8..i * 8 + 8].try_into().unwrap_or_default());
    [lane(0), lane(1), lane(2), lane(3)]
}

/// A subject's row as the store writes it: the state's JSON text (`db::put_subject` stores
/// exactly this text, so the hash of the stored text, [`subject_row_text`], is the same).
fn subject_row(subject: &str, state: &SubjectState) -> [u64; 4] {
    subject_row_text(subject, &serde_json::to_string(state).unwrap_or_default())
}

/// A subject's row from its stored text. Hashing what is stored (not a re-serialisation of what
/// was parsed from it) is at least as strict: any edit of the text changes the hash, and the
/// state served is the parse of the very text that was sealed.
fn subject_row_text(subject: &str, json: &str) -> [u64; 4] {
    row_hash("subject", subject, json)
}

fn os_row(permission: OsPermission, record: &OsRecord) -> [u64; 4] {
    row_hash("os", permission.as_str(), &format!("{}@{}", record.state.as_str(), record.since.millis()))
}

impl StateSum {
    /// The sum over a whole state table.
    pub fn of<S: std::borrow::Borrow<SubjectState>>(subjects: &HashMap<String, S>, os: &HashMap<OsPermission, OsRecord>) -> StateSum {
        let mut sum = StateSum::default();
        for (subject, state) in subjects {
            sum.add_subject(subject, state.borrow());
        }
        for (permission, record) in os {
            sum.add_os(*permission, record);
        }
        sum
    }

    fn add(&mut self, row: [u64; 4]) {
        for (lane, x) in self.0.iter_mut().zip(row) {
            *lane = lane.wrapping_add(x);
        }
    }

    fn sub(&mut self, row: [u64; 4]) {
        for (lane, x) in self.0.iter_mut().zip(row) {
            *lane = lane.wrapping_sub(x);
        }
    }

    /// Adds a subject's row.
    pub fn add_subject(&mut self, subject: &str, state: &SubjectState) {
        self.add(subject_row(subject, state));
    }

    /// Adds a subject's row from the text stored for it (`db::subject_text`), so a write
    /// serialises the state once; returns the row's hash, to take it out again later.
    pub(crate) fn add_subject_text(&mut self, subject: &str, text: &str) -> RowHash {
        let row = subject_row_text(subject, text);
        self.add(row);
        RowHash(row)
    }

    /// Takes out a row added before (its [`RowHash`]).
    pub(crate) fn remove_row(&mut self, row: RowHash) {
        self.sub(row.0);
    }

    /// Takes a subject's row out (before it is replaced or deleted).
    pub fn remove_subject(&mut self, subject: &str, state: &SubjectState) {
        self.sub(subject_row(subject, state));
    }

    /// Adds an OS permission's row.
    pub fn add_os(&mut self, permission: OsPermission, record: &OsRecord) {
        self.add(os_row(permission, record));
    }

    /// Takes an OS permission's row out.
    pub fn remove_os(&mut self, permission: OsPermission, record: &OsRecord) {
        self.sub(os_row(permission, record));
    }

    /// The digest stored beside the chain head: this sum bound to `(head_seq, head_hash)`, so a
    /// state table from another point of the history does not match.
    pub fn seal(&self, head_seq: u64, head_hash: &str) -> String {
        let mut h = Sha256::new();
        h.update(b"consentkit-state-v1\0");
        h.update(head_seq.to_be_bytes());
        h.update(head_hash.as_bytes());
        for lane in self.0 {
            h.update(lane.to_be_bytes());
        }
        hex(&h.finalize())
    }
}

/// The fold of a history, event by event in sequence order: what the state table must hold.
#[derive(Debug, Default)]
pub struct HistoryFold {
    /// Every subject with a live event.
    pub subjects: HashMap<String, SubjectState>,
    /// The device's OS permissions.
    pub os: HashMap<OsPermission, OsRecord>,
    last_seq: HashMap<String, u64>,
    last_os_seq: u64,
}

impl HistoryFold {
    /// Applies the next live event.
    pub fn push(&mut self, r: &Receipt) {
        if let Some(subject) = &r.subject {
            self.subjects.entry(subject.clone()).or_default().apply(r);
            self.last_seq.insert(subject.clone(), r.seq);
        }
        if let (Action::OsPermission, Some(permission), Some(state)) = (r.action, r.permission, r.os_state) {
            self.os.insert(permission, OsRecord { state, since: r.at });
            self.last_os_seq = r.seq;
        }
    }

    /// Compares the stored state table with this fold; the break names the last event of the
    /// first subject (in id order) or OS permission whose row disagrees (the head for a row with no history).
    pub fn check<S: std::borrow::Borrow<SubjectState>>(
        &self,
        subjects: &HashMap<String, S>,
        os: &HashMap<OsPermission, OsRecord>,
        head: u64,
    ) -> Result<(), ChainBreak> {
        let mut ids: Vec<&String> = subjects.keys().chain(self.subjects.keys()).collect();
        ids.sort();
        ids.dedup();
        for id in ids {
            if subjects.get(id).map(|s| s.borrow()) != self.subjects.get(id) {
                return Err(ChainBreak::StateMismatch { seq: self.last_seq.get(id).copied().unwrap_or(head) });
            }
        }
        if *os != self.os {
            return Err(ChainBreak::StateMismatch { seq: if self.os.is_empty() { head } else { self.last_os_seq } });
        }
        Ok(())
    }
}

/// Walks and folds the whole chain: `Ok((events, fold))` when it holds, else where it breaks.
pub(crate) fn walk(conn: &rusqlite::Connection) -> Result<(u64, HistoryFold)> {
    walk_with_progress(conn, &mut |_| {})
}

/// [`walk`], calling `progress(rows walked)` every 4096 rows.
pub(crate) fn walk_with_progress(conn: &rusqlite::Connection, progress: &mut dyn FnMut(u64)) -> Result<(u64, HistoryFold)> {
    let mut verifier = Verifier::default();
    let mut fold = HistoryFold::default();
    let mut broken: Option<ChainBreak> = None;
    let mut rows = 0u64;
    db::for_each_chain_row(conn, |row| {
        rows += 1;
        if rows.is_multiple_of(4096) {
            progress(rows);
        }
        if let RowContent::Event(event) = &row.content {
            fold.push(event);
        }
        match verifier.push(row) {
            Ok(()) => true,
            Err(b) => {
                broken = Some(b);
                false
            }
        }
    })?;
    if let Some(b) = broken {
        return Err(Error::Tampered(b));
    }
    let events = verifier.finish(db::head(conn)?).map_err(Error::Tampered)?;
    Ok((events, fold))
}

/// The state table in one pass: every row parsed once and its hash taken from the stored text;
/// the device's OS permissions; and the table's sum (to compare with the sealed digest).
pub(crate) fn read_table<C: FromIterator<(String, Arc<SubjectState>)>>(
    conn: &rusqlite::Connection,
) -> Result<(C, HashMap<OsPermission, OsRecord>, StateSum)> {
    let mut subjects = Vec::new();
    let mut sum = StateSum::default();
    db::for_each_subject_row(conn, |subject, json| {
        let state: SubjectState = serde_json::from_str(json).map_err(|e| Error::Corrupt(format!("state of subject '{subject}': {e}")))?;
        sum.add(subject_row_text(subject, json));
        subjects.push((subject.to_string(), Arc::new(state)));
        Ok(())
    })?;

    let os = db::load_os(conn)?;
    for (permission, record) in &os {
        sum.add_os(*permission, record);
    }
    Ok((subjects.into_iter().collect(), os, sum))
}

/// Every subject's state, the device's OS permissions, and their sum.
pub(crate) type LoadedState = (HashMap<String, Arc<SubjectState>>, HashMap<OsPermission, OsRecord>, StateSum);

/// The state a store opens with: the state table if its digest matches the chain head; else,
/// after a full walk, the fold of a verified history (rewritten into the table and re-sealed when
/// `writable`). A broken chain fails the open (the caller fails closed); an edited state table is
/// never served.
pub(crate) fn load_checked(conn: &rusqlite::Connection, writable: bool) -> Result<LoadedState> {
    let (subjects, os, sum): (HashMap<String, Arc<SubjectState>>, _, _) = read_table(conn)?;
    let (head_seq, head_hash) = db::head(conn)?.unwrap_or((0, GENESIS.to_string()));
    let stored = db::meta(conn, DIGEST_KEY)?;
    let empty = head_seq == 0 && subjects.is_empty() && os.is_empty();
    if empty || stored.as_deref() == Some(sum.seal(head_seq, &head_hash).as_str()) {
        return Ok((subjects, os, sum));
    }
    let (_, fold) = walk(conn)?;
    let agrees = fold.check(&subjects, &os, head_seq).is_ok();
    // Rows whose text is not what this version writes for their state (an older writer's, or an
    // edit that parses the same) are rewritten, so the next open's digest matches.
    let canonical = StateSum::of(&subjects, &os) == sum;
    if !agrees {
        log::error!("consentkit: the state table disagrees with the verified history; serving the history's fold instead");
    } else if stored.is_some() {
        log::warn!("consentkit: the state digest did not match; the state table agrees with the verified history, re-sealed");
    }
    let subjects: HashMap<String, Arc<SubjectState>> = fold.subjects.into_iter().map(|(k, v)| (k, Arc::new(v))).collect();
    let os = fold.os;
    let sum = StateSum::of(&subjects, &os);
    if writable {
        let tx = rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?;
        if !agrees || !canonical {
            db::replace_state(&tx, &subjects, &os, head_seq)?;
        }
        db::set_meta(&tx, DIGEST_KEY, &sum.seal(head_seq, &head_hash))?;
        tx.commit()?;
    }
    Ok((subjects, os, sum))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;
    use crate::model::OsState;

    #[test]
    fn the_sum_is_order_free_and_updates_row_by_row() {
        let a = SubjectState { under_age: true, ..Default::default() };
        let b = SubjectState::default();
        let os = HashMap::from([(OsPermission::PHOTOS, OsRecord { state: OsState::Denied, since: Timestamp(5) })]);
        let both = StateSum::of(&HashMap::from([("a".to_string(), a.clone()), ("b".to_string(), b.clone())]), &os);
        let mut stepwise = StateSum::default();
        stepwise.add_os(OsPermission::PHOTOS, &os[&OsPermission::PHOTOS]);
        stepwise.add_subject("b", &a);
        stepwise.remove_subject("b", &a);
        stepwise.add_subject("b", &b);
        stepwise.add_subject("a", &a);
        assert_eq!(stepwise, both);
        assert_ne!(both.seal(3, "h"), both.seal(4, "h"), "bound to the head");
        let edited = StateSum::of(&HashMap::from([("a".to_string(), b.clone()), ("b".to_string(), b)]), &os);
        assert_ne!(edited.seal(3, "h"), both.seal(3, "h"));
    }

    #[test]
    fn the_digest_covers_the_stored_text_not_only_what_it_parses_to() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE subjects (subject TEXT PRIMARY KEY, state TEXT, last_seq INTEGER);
             CREATE TABLE os_permissions (permission TEXT PRIMARY KEY, state TEXT, since INTEGER, seq INTEGER);",
        )
        .unwrap();
        let state = SubjectState { under_age: true, ..Default::default() };
        db::put_subject(&conn, "a", &state, 1).unwrap();
        let (subjects, os, sum): (HashMap<String, Arc<SubjectState>>, _, _) = read_table(&conn).unwrap();
        assert_eq!(sum, StateSum::of(&subjects, &os), "the text the store writes hashes like the state it holds");
        // The same state in other text (key order, spacing): parses equal, but is not what was sealed.
        conn.execute("UPDATE subjects SET state = ?1", [r#"{ "categories": {}, "under_age": true }"#]).unwrap();
        let (edited, os, edited_sum): (HashMap<String, Arc<SubjectState>>, _, _) = read_table(&conn).unwrap();
        assert_eq!(edited, subjects);
        assert_ne!(edited_sum, sum);
        assert_ne!(edited_sum, StateSum::of(&edited, &os));
        // A row that does not parse is an error naming the subject.
        conn.execute("UPDATE subjects SET state = 'nope'", []).unwrap();
        let err = read_table::<HashMap<String, Arc<SubjectState>>>(&conn).unwrap_err();
        assert!(err.to_string().contains("'a'"), "{err}");
    }
}
