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
use crate::state::{SubjectState, ValidRow};
use crate::subject_map::Loaded;

/// The metadata key holding the sealed digest.
pub(crate) const DIGEST_KEY: &str = "state_digest";

/// The hash one state row adds to a [`StateSum`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RowHash([u64; 4]);

/// An order-independent sum of the state table's rows (each row's SHA-256, added lane-wise
/// modulo 2^64), so one write updates it for the rows it touches only.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateSum([u64; 4]);

fn row_hash(kind: &str, key: &str, value: &[u8]) -> [u64; 4] {
    let mut h = Sha256::new();
    for part in [b"consentkit-state-row-v1".as_slice(), kind.as_bytes(), key.as_bytes(), value] {
        h.update((part.len() as u32).to_be_bytes());
        h.update(part);
    }
    let bytes = h.finalize();
    let lane = |i: usize| u64::from_be_bytes(bytes[i * 8..i * 8 + 8].try_into().unwrap_or_default());
    [lane(0), lane(1), lane(2), lane(3)]
}

/// A subject's row as the store writes it: the state's binary row (`db::put_subject` stores
/// exactly these bytes, so the hash of the stored row, [`stored_subject_row`], is the same).
fn subject_row(subject: &str, state: &SubjectState) -> [u64; 4] {
    stored_subject_row(subject, &state.to_row())
}

/// A subject's row from its stored bytes. Hashing what is stored (not a re-encoding of what was
/// decoded from it) is at least as strict: any edit of the row changes the hash, and the state
/// served is the decoding of the very bytes that were sealed.
fn stored_subject_row(subject: &str, row: &[u8]) -> [u64; 4] {
    row_hash("subject", subject, row)
}

fn os_row(permission: OsPermission, record: &OsRecord) -> [u64; 4] {
    row_hash("os", permission.as_str(), format!("{}@{}", record.state.as_str(), record.since.millis()).as_bytes())
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

    /// Adds another sum (of other rows) to this one.
    fn add_sum(&mut self, other: &StateSum) {
        self.add(other.0);
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

    /// Adds a subject's row from the bytes stored for it ([`SubjectState::to_row`]), so a write
    /// encodes the state once; returns the row's hash, to take it out again later.
    pub(crate) fn add_subject_row(&mut self, subject: &str, row: &[u8]) -> RowHash {
        let hash = stored_subject_row(subject, row);
        self.add(hash);
        RowHash(hash)
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
        crate::order::sort_by_less(&mut ids, |a, b| a < b);
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

/// The state table in one pass: every row decoded once and its hash taken from the stored bytes;
/// the device's OS permissions; and the table's sum (to compare with the sealed digest).
pub(crate) fn read_table<C: FromIterator<(String, Arc<SubjectState>)>>(
    conn: &rusqlite::Connection,
) -> Result<(C, HashMap<OsPermission, OsRecord>, StateSum)> {
    let mut subjects = Vec::new();
    let mut sum = StateSum::default();
    db::for_each_subject_row(conn, |subject, row| {
        let state = db::decode_state(subject, row)?;
        sum.add(stored_subject_row(subject, row));
        subjects.push((subject.to_string(), Arc::new(state)));
        Ok(())
    })?;

    let os = db::load_os(conn)?;
    for (permission, record) in &os {
        sum.add_os(*permission, record);
    }
    Ok((subjects.into_iter().collect(), os, sum))
}

/// [`read_table`] for the gate's map at open: every row checked (it decodes) and hashed, but a
/// binary row is kept as its bytes and decoded when its subject is first read ([`Loaded::Row`]),
/// so the open builds no per-subject state it is not asked about. A row that does not decode
/// fails the load, as in [`read_table`] (the first such row in table order is the one named).
/// The rows are read in chunks of [`CHUNK`]; from the second chunk on, a second thread checks
/// and hashes chunks while this one reads on (and helps once it has read all), so where a second
/// core is free the open costs about half of reading + checking + hashing. The sum is
/// order-independent; a table of one chunk is read on this thread alone.
pub(crate) fn read_table_lazy<C: FromIterator<(String, Loaded)>>(
    conn: &rusqlite::Connection,
) -> Result<(C, HashMap<OsPermission, OsRecord>, StateSum)> {
    let (queue, chunks) = crate::queue::channel::<Chunk>();
    let next = || chunks.recv();
    type Rows = Vec<(Vec<String>, Vec<Loaded>)>;
    let (done, mut sum) = std::thread::scope(|scope| -> Result<(Rows, StateSum)> {
        let mut helper = None;
        let mut done = Vec::new();
        let mut chunk = Chunk::new(0);
        let read = db::for_each_subject_row(conn, |subject, row| {
            chunk.push(subject, row);
            if chunk.spans.len() == CHUNK {
                let index = chunk.index + 1;
                let full = std::mem::replace(&mut chunk, Chunk::new(index));
                if helper.is_none() {
                    let started = std::thread::Builder::new()
                        .name("consentkit-open".into())
                        .spawn_scoped(scope, || std::iter::from_fn(next).map(Chunk::check_and_hash).collect::<Vec<_>>());
                    // No second thread to be had: this one does it all.
                    helper = Some(started.ok());
                }
                match &helper {
                    Some(Some(_)) => queue.send(full).map_err(|_| Error::Internal("the state table's check thread stopped".into()))?,
                    _ => done.push(full.check_and_hash()),
                }
            }
            Ok(())
        });
        let helper = helper.flatten();
        if helper.is_some() {
            if !chunk.spans.is_empty() {
                let _ = queue.send(chunk);
            }
            drop(queue);
            // Read all: help with what the other thread has not taken yet.
            done.extend(std::iter::from_fn(next).map(Chunk::check_and_hash));
        } else {
            done.push(chunk.check_and_hash());
        }
        if let Some(helper) = helper {
            done.extend(helper.join().map_err(|_| Error::Internal("the state table's check thread panicked".into()))?);
        }
        read?;
        // In table order: the first failing chunk's error is the one a single pass gives.
        crate::order::sort_by_less(&mut done, |a, b| a.index < b.index);
        let mut sum = StateSum::default();
        let mut checked = Vec::with_capacity(done.len());
        for c in done {
            let (subjects, loaded, part) = c.result?;
            sum.add_sum(&part);
            checked.push((subjects, loaded));
        }
        Ok((checked, sum))
    })?;
    let os = db::load_os(conn)?;
    for (permission, record) in &os {
        sum.add_os(*permission, record);
    }
    Ok((done.into_iter().flat_map(|(subjects, loaded)| subjects.into_iter().zip(loaded)).collect(), os, sum))
}

/// Rows per chunk of [`read_table_lazy`] (a table of at most one chunk starts no thread: below
/// about this size a thread's start costs more than it saves).
pub(crate) const CHUNK: usize = 1024;

/// Rows of the state table as read, copied out of SQLite (its bytes are valid only until the
/// next row): the subjects, and each row's bytes in one buffer.
struct Chunk {
    index: usize,
    /// The subjects, one after the other.
    text: String,
    bytes: Vec<u8>,
    /// Each row's subject in `text` and stored bytes in `bytes`.
    spans: Vec<(std::ops::Range<usize>, std::ops::Range<usize>)>,
}

/// A chunk checked and hashed: its index, and its subjects, their loaded states and their sum
/// (or the first error).
struct Checked {
    index: usize,
    result: Result<(Vec<String>, Vec<Loaded>, StateSum)>,
}

impl Chunk {
    fn new(index: usize) -> Chunk {
        Chunk { index, text: String::new(), bytes: Vec::new(), spans: Vec::with_capacity(CHUNK) }
    }

    fn push(&mut self, subject: &str, row: &[u8]) {
        self.spans.push((self.text.len()..self.text.len() + subject.len(), self.bytes.len()..self.bytes.len() + row.len()));
        self.text.push_str(subject);
        self.bytes.extend_from_slice(row);
    }

    /// Checks and hashes the chunk's rows, and makes their subjects' ids (on the thread that
    /// does this, not the reading one).
    fn check_and_hash(self) -> Checked {
        let rows: Vec<(&str, &[u8])> = self.spans.iter().map(|(s, r)| (&self.text[s.clone()], &self.bytes[r.clone()])).collect();
        let result = check_and_hash(&rows).map(|(loaded, sum)| (rows.iter().map(|(s, _)| s.to_string()).collect(), loaded, sum));
        Checked { index: self.index, result }
    }
}

/// Checks that each stored row decodes (a binary row is kept as its bytes; JSON text, an older
/// writer's, is decoded now) and adds its stored bytes' hash to the digest's sum.
fn check_and_hash(rows: &[(&str, &[u8])]) -> Result<(Vec<Loaded>, StateSum)> {
    let mut loaded = Vec::with_capacity(rows.len());
    let mut sum = StateSum::default();
    for &(subject, row) in rows {
        loaded.push(match ValidRow::check(row) {
            Some(valid) => Loaded::Row(valid),
            // JSON text (an older writer's), or an error naming the subject.
            None => Loaded::State(Arc::new(db::decode_state(subject, row)?)),
        });
        sum.add(stored_subject_row(subject, row));
    }
    Ok((loaded, sum))
}

/// Every subject's state, the device's OS permissions, and their sum.
pub(crate) type LoadedState = (HashMap<String, Arc<SubjectState>>, HashMap<OsPermission, OsRecord>, StateSum);

/// The state a store opens with: the state table if its digest matches the chain head; else,
/// after a full walk, the table if it equals the fold of the verified history (re-sealed, rows in
/// an older writer's text rewritten, when `writable`). A broken chain, a table that records
/// events after the head, or a table that disagrees with the history is `Tampered` (the caller
/// fails closed): an edited table is never served, and never silently rebuilt.
pub(crate) fn load_checked(conn: &rusqlite::Connection, writable: bool) -> Result<LoadedState> {
    load(conn, writable, true)
}

/// The fold of the verified history, whatever the digest says (a broken chain, or a table that
/// records events after the head, is an error): for
/// a store that sees the table or its digest change with no new chain event, which no honest
/// writer does (a reseal over an edit, or another process's `verify` invalidating the digest).
pub(crate) fn load_from_history(conn: &rusqlite::Connection) -> Result<LoadedState> {
    load(conn, false, false)
}

/// True when `stored` (the file's state digest) is `sum` sealed with the file's recorded `head`
/// (none: the genesis), or the file has neither a digest nor a head and `sum` is that of an
/// empty state. The one test of a digest, for the open and for a catch-up.
pub(crate) fn digest_seals(stored: Option<&str>, head: Option<&(u64, String)>, sum: &StateSum) -> bool {
    match (stored, head) {
        (Some(digest), Some((seq, hash))) => digest == sum.seal(*seq, hash),
        (Some(digest), None) => digest == sum.seal(0, GENESIS),
        (None, None) => *sum == StateSum::default(),
        (None, Some(_)) => false,
    }
}

/// [`load_in`], consistent against other processes' commits: when `writable`, everything it reads
/// and the re-seal it writes are one IMMEDIATE transaction (no commit can land between reading
/// the table, the head and the chain, which would make a healthy file look truncated or edited);
/// otherwise the caller holds a read transaction (or accepts what it reads, for a catch-up).
fn load(conn: &rusqlite::Connection, writable: bool, trust_digest: bool) -> Result<LoadedState> {
    if !writable {
        return load_in(conn, false, trust_digest);
    }
    let tx = rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?;
    let loaded = load_in(&tx, true, trust_digest)?;
    tx.commit()?;
    Ok(loaded)
}

fn load_in(conn: &rusqlite::Connection, writable: bool, trust_digest: bool) -> Result<LoadedState> {
    let (subjects, os, sum): (HashMap<String, Arc<SubjectState>>, _, _) = read_table(conn)?;
    let head = db::head(conn)?;
    let (head_seq, head_hash) = head.clone().unwrap_or((0, GENESIS.to_string()));
    let stored = db::meta(conn, DIGEST_KEY)?;
    let empty = head_seq == 0 && subjects.is_empty() && os.is_empty();
    if trust_digest && (empty || digest_seals(stored.as_deref(), head.as_ref(), &sum)) {
        return Ok((subjects, os, sum));
    }
    // The table was derived from events the chain no longer has: its newest rows were cut off
    // (and the recorded head moved back). Their fold would lose what they recorded (a withdrawal).
    let newest = db::newest_state_seq(conn)?;
    if newest > head_seq {
        log::error!("consentkit: the state table records events after the chain's head; the chain was truncated");
        return Err(Error::Tampered(ChainBreak::StateAfterHead { seq: head_seq + 1, state_seq: newest }));
    }
    let (_, fold) = walk(conn)?;
    let agrees = fold.check(&subjects, &os, head_seq);
    // Rows whose text is not what this version writes for their state (an older writer's, or an
    // edit that parses the same) are rewritten, so the next open's digest matches.
    let canonical = StateSum::of(&subjects, &os) == sum;
    if let Err(mismatch) = &agrees {
        // Unproven and disagreeing: the table or the history was edited, and which one cannot be
        // told (a history cut short and its rows' seqs edited looks like an edited table). Never
        // rebuilt from the history (that could serve a lost withdrawal): fails closed.
        if trust_digest {
            log::error!("consentkit: the state table disagrees with the verified history and its digest does not match; refused");
            return Err(Error::Tampered(mismatch.clone()));
        }
        log::error!("consentkit: the state table disagrees with the verified history; serving the history's fold instead");
    } else if stored.is_some() {
        log::warn!("consentkit: the state digest did not match; the state table agrees with the verified history, re-sealed");
    }
    let subjects: HashMap<String, Arc<SubjectState>> = fold.subjects.into_iter().map(|(k, v)| (k, Arc::new(v))).collect();
    let os = fold.os;
    let sum = StateSum::of(&subjects, &os);
    if writable {
        // Inside `load`'s transaction.
        if agrees.is_err() || !canonical {
            db::replace_state(conn, &subjects, &os, head_seq)?;
        }
        db::set_meta(conn, DIGEST_KEY, &sum.seal(head_seq, &head_hash))?;
    }
    Ok((subjects, os, sum))
}

/// Migration 5 (schema v5): rewrites every state row from the JSON text of v1-v4 into the binary
/// row ([`SubjectState::to_row`]), inside the migration's transaction. If the sealed digest held
/// over the old rows, it is sealed again over the new ones at the same head (the new rows are a
/// function of the proven old ones); if it did not (an edited row, no digest), it is left as it
/// was, so the first open walks and folds the history before serving anything, as before. A row
/// that does not decode fails the migration (rolled back, the file left as it was).
pub(crate) fn migrate_rows_to_binary(conn: &rusqlite::Connection) -> Result<u64> {
    let rows = rewrite_rows(conn, |_, _| {})?;
    let (head_seq, head_hash) = db::head(conn)?.unwrap_or((0, GENESIS.to_string()));
    if db::meta(conn, DIGEST_KEY)?.is_some_and(|stored| stored == rows.old_sum.seal(head_seq, &head_hash)) {
        db::set_meta(conn, DIGEST_KEY, &rows.new_sum.seal(head_seq, &head_hash))?;
    }
    Ok(rows.table.len() as u64)
}

/// The state table as a migration rewrote it ([`rewrite_rows`]).
struct RewrittenRows {
    /// Every subject's state, as now stored.
    table: HashMap<String, SubjectState>,
    /// The OS permission rows (unchanged).
    os: HashMap<OsPermission, OsRecord>,
    /// The digest's sum over the rows as they were stored before.
    old_sum: StateSum,
    /// The digest's sum over the rows as now stored.
    new_sum: StateSum,
}

/// Decodes every stored state row (a row that does not decode fails the migration), lets
/// `rewrite` change the decoded state, and stores it back in the current row format
/// ([`SubjectState::to_row`]), inside the caller's transaction; sums the rows before and after as
/// the digest does, so the caller can seal the new rows only where the old digest held.
fn rewrite_rows(conn: &rusqlite::Connection, mut rewrite: impl FnMut(&str, &mut SubjectState)) -> Result<RewrittenRows> {
    let mut table: HashMap<String, SubjectState> = HashMap::new();
    let mut old_sum = StateSum::default();
    db::for_each_subject_row(conn, |subject, stored| {
        let mut state = db::decode_state(subject, stored)?;
        old_sum.add(stored_subject_row(subject, stored));
        rewrite(subject, &mut state);
        table.insert(subject.to_string(), state);
        Ok(())
    })?;
    let os = db::load_os(conn)?;
    let mut new_sum = StateSum::default();
    for (permission, record) in &os {
        old_sum.add_os(*permission, record);
        new_sum.add_os(*permission, record);
    }
    let mut update = conn.prepare("UPDATE subjects SET state = ?2 WHERE subject = ?1")?;
    for (subject, state) in &table {
        let row = state.to_row();
        new_sum.add(stored_subject_row(subject, &row));
        update.execute(rusqlite::params![subject, row])?;
    }
    Ok(RewrittenRows { table, os, old_sum, new_sum })
}

/// Migration 6 (schema v6): every item grant in the state table records whether a guardian made
/// it ([`crate::state::ScopeGrant::by_guardian`]), which no older row holds. A row cannot tell,
/// so the history does: the whole chain is walked and verified and its fold taken (a broken
/// chain fails the migration, rolled back, the file left as it was). Each stored row (binary
/// format `1`, or a row migration 5 just converted) is decoded and rewritten in the current
/// format with each item's flag taken from the fold, and set only where the fold holds the very
/// same grant (same time, expiry and purpose version) made by a guardian; any other item reads as
/// not a guardian's (fail closed). The row's other fields are carried over as stored, never
/// replaced by the fold's, so an edited row stays edited and disagrees. The new rows are sealed at
/// the same head only if the sealed digest held over the old rows *and* the rewritten table
/// equals the fold of the verified history (no row after the head): then the table is the proven
/// fold. Otherwise the digest is left unsealed (invalidated, if it held), so the first open
/// proves the table against the history before serving anything, and an edited row is refused
/// there as `Tampered`, never served.
pub(crate) fn migrate_item_guardian_flags(conn: &rusqlite::Connection) -> Result<u64> {
    let (_, fold) = walk(conn)?;
    let rows = rewrite_rows(conn, |subject, state| {
        let folded = fold.subjects.get(subject);
        for (category, c) in state.categories.iter_mut() {
            for (item, grant) in c.scopes.iter_mut() {
                let history = folded.and_then(|f| f.categories.get(category)).and_then(|fc| fc.scopes.get(item));
                grant.by_guardian = history.is_some_and(|h| {
                    h.by_guardian && (h.at, h.valid_until, h.purpose_version) == (grant.at, grant.valid_until, grant.purpose_version)
                });
            }
        }
    })?;
    let head = db::head(conn)?;
    let (head_seq, head_hash) = head.clone().unwrap_or((0, GENESIS.to_string()));
    let stored = db::meta(conn, DIGEST_KEY)?;
    if stored.is_some() && digest_seals(stored.as_deref(), head.as_ref(), &rows.old_sum) {
        let agrees = fold.check(&rows.table, &rows.os, head_seq).is_ok() && db::newest_state_seq(conn)? <= head_seq;
        if agrees {
            db::set_meta(conn, DIGEST_KEY, &rows.new_sum.seal(head_seq, &head_hash))?;
        } else {
            log::error!("consentkit: the sealed state table disagrees with the verified history; left for the open to refuse");
            db::set_meta(conn, DIGEST_KEY, "invalidated by the migration to schema version 6")?;
        }
    }
    Ok(rows.table.len() as u64)
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

    /// Turns a store written by this code into what schema v4 stored: every state row as the
    /// state's JSON text, the digest sealed over that text (`edit` then changes one row's text
    /// after sealing, as someone with the sqlite3 shell would), `user_version` 4.
    fn as_schema_v4(path: &std::path::Path, edit: Option<(&str, &str, &str)>) {
        let conn = rusqlite::Connection::open(path).unwrap();
        let mut rows: Vec<(String, String)> = Vec::new();
        db::for_each_subject_row(&conn, |subject, row| {
            rows.push((subject.to_string(), serde_json::to_string(&SubjectState::from_row(row).unwrap()).unwrap()));
            Ok(())
        })
        .unwrap();
        let mut sum = StateSum::default();
        for (subject, json) in &rows {
            conn.execute("UPDATE subjects SET state = ?2 WHERE subject = ?1", [subject, json]).unwrap();
            sum.add(row_hash("subject", subject, json.as_bytes()));
        }
        for (permission, record) in db::load_os(&conn).unwrap() {
            sum.add_os(permission, &record);
        }
        let (seq, hash) = db::head(&conn).unwrap().unwrap();
        db::set_meta(&conn, DIGEST_KEY, &sum.seal(seq, &hash)).unwrap();
        if let Some((subject, from, to)) = edit {
            let n = conn.execute("UPDATE subjects SET state = replace(state, ?2, ?3) WHERE subject = ?1", [subject, from, to]).unwrap();
            assert_eq!(n, 1);
        }
        conn.pragma_update(None, "user_version", 4).unwrap();
    }

    fn v4_store(dir: &std::path::Path) -> std::path::PathBuf {
        use crate::{Action, ConsentStore, DecisionInput, Policy, Source};
        let path = dir.join("v4.db");
        let store = ConsentStore::open(&path, Policy::builtin()).unwrap();
        store.set_os_permission(OsPermission::CONTACTS, crate::model::OsState::Granted).unwrap();
        store.record(&DecisionInput::new("alice", "usage_statistics", Action::Grant, Source::Settings)).unwrap();
        store.record(&DecisionInput::new("bob", "device_contacts", Action::Refuse, Source::Onboarding)).unwrap();
        let mut item = DecisionInput::new("carol", "device_contacts", Action::Grant, Source::Settings);
        item.scope = Some("contact-7".into());
        store.record(&item).unwrap();
        store.record(&DecisionInput::new("carol", "device_contacts", Action::Grant, Source::Settings)).unwrap();
        path
    }

    fn answers(path: &std::path::Path) -> Vec<bool> {
        let store = crate::ConsentStore::open(path, crate::Policy::builtin()).unwrap();
        vec![
            store.check("alice", "usage_analytics", None).unwrap().allowed,
            store.check("bob", "contact_lookup", None).unwrap().allowed,
            store.check("carol", "contact_sync", Some("contact-7")).unwrap().allowed,
            store.check("carol", "contact_sync", Some("contact-8")).unwrap().allowed,
        ]
    }

    /// Every row binary (of the current format, `2`), and the sealed digest the sum of the rows as
    /// stored (what an open checks).
    fn assert_binary_and_sealed(path: &std::path::Path, subjects: usize) {
        let conn = rusqlite::Connection::open(path).unwrap();
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(version, crate::schema::LATEST);
        let kinds: Vec<(String, u8)> = conn
            .prepare("SELECT typeof(state), unicode(substr(CAST(state AS BLOB), 1, 1)) FROM subjects")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(kinds.len(), subjects);
        assert!(kinds.iter().all(|(t, first)| t == "blob" && *first == 2), "{kinds:?}");
        let (_, _, sum): (HashMap<String, Arc<SubjectState>>, _, _) = read_table(&conn).unwrap();
        let (seq, hash) = db::head(&conn).unwrap().unwrap();
        assert_eq!(db::meta(&conn, DIGEST_KEY).unwrap(), Some(sum.seal(seq, &hash)));
    }

    #[test]
    fn a_schema_v4_store_is_migrated_to_binary_rows_and_its_proven_digest_sealed_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = v4_store(dir.path());
        let before = answers(&path);
        assert_eq!(before, [true, false, true, false]);
        as_schema_v4(&path, None);
        // The migration alone (no store open yet) re-seals: the digest held over the JSON rows.
        drop(crate::schema::open(&path, crate::schema::OpenMode::ReadWrite).unwrap());
        assert_binary_and_sealed(&path, 3);
        assert_eq!(answers(&path), before);
        let store = crate::ConsentStore::open(&path, crate::Policy::builtin()).unwrap();
        assert_eq!(store.verify().unwrap(), 5, "the state table equals the fold of the history");
    }

    #[test]
    fn an_edited_schema_v4_row_is_not_carried_into_the_migrated_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = v4_store(dir.path());
        // bob refused; the edit says granted, for years. The digest (over the original text) does
        // not hold, so the migration does not seal the converted rows: the open proves them first.
        as_schema_v4(&path, Some(("bob", r#""status":"refused""#, r#""status":"granted""#)));
        drop(crate::schema::open(&path, crate::schema::OpenMode::ReadWrite).unwrap());
        let conn = rusqlite::Connection::open(&path).unwrap();
        let bob: Vec<u8> = conn.query_row("SELECT state FROM subjects WHERE subject='bob'", [], |r| r.get(0)).unwrap();
        assert_eq!(SubjectState::from_row(&bob).unwrap().categories["device_contacts"].status, crate::model::Status::Granted);
        let (_, _, sum): (HashMap<String, Arc<SubjectState>>, _, _) = read_table(&conn).unwrap();
        let (seq, hash) = db::head(&conn).unwrap().unwrap();
        assert_ne!(db::meta(&conn, DIGEST_KEY).unwrap(), Some(sum.seal(seq, &hash)), "the edited table is not sealed");
        drop(conn);
        // Unproven and disagreeing with the history: refused as tampered, never served, never rebuilt.
        for _ in 0..2 {
            let Err(err) = crate::ConsentStore::open(&path, crate::Policy::builtin()) else { panic!("opened") };
            assert!(matches!(err, Error::Tampered(ChainBreak::StateMismatch { .. })), "{err}");
        }
        let closed = crate::ConsentStore::open_fail_closed(&path, Arc::new(crate::Policy::builtin()), Arc::new(crate::SystemClock));
        assert!(!closed.check("bob", "contact_lookup", None).unwrap().allowed);
    }

    #[test]
    fn a_schema_v4_row_that_does_not_decode_fails_the_migration_and_leaves_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = v4_store(dir.path());
        as_schema_v4(&path, Some(("alice", r#"{"under_age""#, r#"{"under_age" oops"#)));
        let before = std::fs::read(&path).unwrap();
        let err = crate::schema::open(&path, crate::schema::OpenMode::ReadWrite).unwrap_err();
        assert!(matches!(err, Error::Corrupt(ref why) if why.contains("'alice'")), "{err}");
        let conn = rusqlite::Connection::open(&path).unwrap();
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(version, 4, "rolled back");
        let text: String = conn.query_row("SELECT state FROM subjects WHERE subject='bob'", [], |r| r.get(0)).unwrap();
        assert!(text.starts_with('{'), "still the v4 text");
        drop(conn);
        assert_eq!(std::fs::read(&path).unwrap().len(), before.len());
        let closed = crate::ConsentStore::open_fail_closed(&path, Arc::new(crate::Policy::builtin()), Arc::new(crate::SystemClock));
        assert!(!closed.check("alice", "usage_analytics", None).unwrap().allowed);
    }

    /// A copy of `core/tests/fixtures/store-v5.db`, written by the schema-v5 code (binary rows of
    /// format 1, items without a guardian flag, a sealed digest).
    fn v5_copy(dir: &std::path::Path) -> std::path::PathBuf {
        let path = dir.join("v5.db");
        std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/store-v5.db"), &path).unwrap();
        let conn = rusqlite::Connection::open(&path).unwrap();
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(version, 5);
        let first: u8 = conn.query_row("SELECT unicode(substr(state, 1, 1)) FROM subjects WHERE subject='kid'", [], |r| r.get(0)).unwrap();
        assert_eq!(first, 1, "a v5 row");
        path
    }

    fn stored_state(path: &std::path::Path, subject: &str) -> SubjectState {
        let conn = rusqlite::Connection::open(path).unwrap();
        let row: Vec<u8> = conn.query_row("SELECT state FROM subjects WHERE subject=?1", [subject], |r| r.get(0)).unwrap();
        SubjectState::from_row(&row).unwrap()
    }

    /// Seals the digest over the rows as stored, as a forger who read the source would.
    fn reseal_stored(path: &std::path::Path) {
        let conn = rusqlite::Connection::open(path).unwrap();
        let (_, _, sum): (HashMap<String, Arc<SubjectState>>, _, _) = read_table(&conn).unwrap();
        let (seq, hash) = db::head(&conn).unwrap().unwrap();
        db::set_meta(&conn, DIGEST_KEY, &sum.seal(seq, &hash)).unwrap();
    }

    #[test]
    fn a_schema_v5_store_gets_its_items_guardian_flags_from_the_history_and_its_digest_sealed_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = v5_copy(dir.path());
        let item = |subject: &str, item: &str| stored_state(&path, subject).categories["device_contacts"].scopes[item].by_guardian;
        assert!(!item("teen", "contact-2"), "a v5 row records no item's granter");
        // The migration alone (no store open yet) rewrites every row and re-seals.
        drop(crate::schema::open(&path, crate::schema::OpenMode::ReadWrite).unwrap());
        assert_binary_and_sealed(&path, 5);
        let flags: Vec<bool> =
            [("kid", "contact-1"), ("teen", "contact-2"), ("teen", "contact-3"), ("ward", "contact-4"), ("adult", "contact-5")]
                .iter()
                .map(|(s, i)| item(s, i))
                .collect();
        assert_eq!(flags, [false, true, false, true, false], "the guardian's items, and only they, are flagged");
        // The table is the fold of the history: the store opens on the digest and `verify` agrees.
        let store = crate::ConsentStore::open(&path, crate::Policy::builtin()).unwrap();
        assert_eq!(store.verify().unwrap(), 19);
        let check = |s: &str, i: &str| store.check(s, "contact_sync", Some(i)).unwrap().allowed;
        assert!(!check("kid", "contact-1") && check("teen", "contact-2") && !check("teen", "contact-3") && check("ward", "contact-4"));
    }

    /// bob's v5 row with its status edited from refused (3) to granted (2), byte-wise.
    fn edit_bobs_v5_row(path: &std::path::Path) {
        let conn = rusqlite::Connection::open(path).unwrap();
        let mut row: Vec<u8> = conn.query_row("SELECT state FROM subjects WHERE subject='bob'", [], |r| r.get(0)).unwrap();
        assert_eq!((&row[..4], &row[4..19], row[19]), (&[1u8, 0, 1, 15][..], &b"device_contacts"[..], 3));
        row[19] = 2;
        conn.execute("UPDATE subjects SET state=?1 WHERE subject='bob'", [&row]).unwrap();
        assert_eq!(SubjectState::from_row(&row).unwrap().categories["device_contacts"].status, crate::model::Status::Granted);
    }

    fn assert_refused_at_open(path: &std::path::Path) {
        for _ in 0..2 {
            let Err(err) = crate::ConsentStore::open(path, crate::Policy::builtin()) else { panic!("opened") };
            assert!(matches!(err, Error::Tampered(ChainBreak::StateMismatch { .. })), "{err}");
        }
        let closed = crate::ConsentStore::open_fail_closed(path, Arc::new(crate::Policy::builtin()), Arc::new(crate::SystemClock));
        assert!(!closed.check("bob", "contact_lookup", None).unwrap().allowed);
        assert!(!closed.check("kid", "contact_sync", Some("contact-1")).unwrap().allowed);
    }

    #[test]
    fn an_edited_schema_v5_row_is_not_carried_into_the_migrated_store() {
        // The digest (over the original rows) does not hold: the converted rows are not sealed,
        // and the open proves them against the history first.
        let dir = tempfile::tempdir().unwrap();
        let path = v5_copy(dir.path());
        edit_bobs_v5_row(&path);
        drop(crate::schema::open(&path, crate::schema::OpenMode::ReadWrite).unwrap());
        assert_eq!(stored_state(&path, "bob").categories["device_contacts"].status, crate::model::Status::Granted, "converted as stored");
        let conn = rusqlite::Connection::open(&path).unwrap();
        let (_, _, sum): (HashMap<String, Arc<SubjectState>>, _, _) = read_table(&conn).unwrap();
        let (seq, hash) = db::head(&conn).unwrap().unwrap();
        assert_ne!(db::meta(&conn, DIGEST_KEY).unwrap(), Some(sum.seal(seq, &hash)), "the edited table is not sealed");
        drop(conn);
        assert_refused_at_open(&path);
    }

    #[test]
    fn an_edited_schema_v5_row_with_the_digest_resealed_is_not_sealed_by_the_migration() {
        // A forger reseals the digest over the edited v5 rows (schema v5 served that until a
        // `verify`). The migration folds the history anyway: the table disagrees, so it is not
        // sealed again (the digest is invalidated) and the open refuses it.
        let dir = tempfile::tempdir().unwrap();
        let path = v5_copy(dir.path());
        edit_bobs_v5_row(&path);
        reseal_stored(&path);
        drop(crate::schema::open(&path, crate::schema::OpenMode::ReadWrite).unwrap());
        let conn = rusqlite::Connection::open(&path).unwrap();
        let digest = db::meta(&conn, DIGEST_KEY).unwrap().unwrap();
        assert!(digest.starts_with("invalidated"), "{digest}");
        drop(conn);
        assert_refused_at_open(&path);
    }

    #[test]
    fn a_schema_v5_row_that_does_not_decode_fails_the_migration_and_leaves_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = v5_copy(dir.path());
        let conn = rusqlite::Connection::open(&path).unwrap();
        let mut teen: Vec<u8> = conn.query_row("SELECT state FROM subjects WHERE subject='teen'", [], |r| r.get(0)).unwrap();
        teen.push(0);
        conn.execute("UPDATE subjects SET state = ?1 WHERE subject='teen'", [&teen]).unwrap();
        let rows = |conn: &rusqlite::Connection| -> Vec<(String, Vec<u8>)> {
            let mut stmt = conn.prepare("SELECT subject, state FROM subjects ORDER BY subject").unwrap();
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(|r| r.unwrap()).collect()
        };
        let before = (rows(&conn), db::meta(&conn, DIGEST_KEY).unwrap());
        drop(conn);
        let err = crate::schema::open(&path, crate::schema::OpenMode::ReadWrite).unwrap_err();
        assert!(matches!(err, Error::Corrupt(ref why) if why.contains("'teen'") && why.contains("after the end")), "{err}");
        let conn = rusqlite::Connection::open(&path).unwrap();
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(version, 5, "rolled back");
        assert!((rows(&conn), db::meta(&conn, DIGEST_KEY).unwrap()) == before, "the v5 rows and digest are left as they were");
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
        // A row that does not decode is an error naming the subject, for the open's lazy read too.
        conn.execute("UPDATE subjects SET state = 'nope'", []).unwrap();
        let err = read_table::<HashMap<String, Arc<SubjectState>>>(&conn).unwrap_err();
        assert!(err.to_string().contains("'a'"), "{err}");
        let err = read_table_lazy::<crate::gate::SubjectMap>(&conn).err().unwrap();
        assert!(err.to_string().contains("'a'"), "{err}");
        let mut damaged = state.to_row();
        damaged.push(7);
        conn.execute("UPDATE subjects SET state = ?1", [&damaged]).unwrap();
        let err = read_table_lazy::<crate::gate::SubjectMap>(&conn).err().unwrap();
        assert!(matches!(err, Error::Corrupt(ref why) if why.contains("'a'") && why.contains("after the end")), "{err}");
        // The lazy read hashes what the eager one hashes, and serves the same state.
        conn.execute("UPDATE subjects SET state = ?1", [state.to_row()]).unwrap();
        let (lazy, _, lazy_sum): (crate::gate::SubjectMap, _, _) = read_table_lazy(&conn).unwrap();
        assert_eq!((lazy_sum, lazy.get("a").map(|s| &**s)), (sum, Some(&state)));
    }

    /// A table big enough to be checked and hashed on two threads: the same sum and states as
    /// the one-pass eager read, and a row that does not decode in either half fails the load
    /// with the error one pass gives (the first such row in table order).
    #[test]
    fn a_big_table_checked_on_two_threads_reads_like_one_pass() {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::schema::open(&dir.path().join("big.db"), crate::schema::OpenMode::ReadWrite).unwrap();
        let n = CHUNK * 4 + 3;
        let state_of = |i: usize| {
            let row = format!(
                r#"{{"under_age":{},"categories":{{"c":{{"status":"granted","since":"2026-01-01T00:00:00Z","seq":{i},"purpose_version":1,"valid_until":null,"by_guardian":false,"last_interaction":"2026-01-01T00:00:00Z"}}}}}}"#,
                i.is_multiple_of(3)
            );
            SubjectState::from_row(row.as_bytes()).unwrap()
        };
        conn.execute_batch("BEGIN").unwrap();
        for i in 0..n {
            db::put_subject(&conn, &format!("user-{i}"), &state_of(i), i as u64).unwrap();
        }
        conn.execute_batch("COMMIT").unwrap();
        let (eager, _, eager_sum): (HashMap<String, Arc<SubjectState>>, _, _) = read_table(&conn).unwrap();
        let (lazy, _, lazy_sum): (crate::gate::SubjectMap, _, _) = read_table_lazy(&conn).unwrap();
        assert_eq!(lazy_sum, eager_sum, "both halves' rows are in the sum");
        assert_eq!(lazy.len(), n);
        for (k, v) in &eager {
            assert_eq!(lazy.get(k), Some(v), "{k}");
        }
        let damage = |subject: &str| {
            let mut row: Vec<u8> = conn.query_row("SELECT state FROM subjects WHERE subject = ?1", [subject], |r| r.get(0)).unwrap();
            row.push(7);
            conn.execute("UPDATE subjects SET state = ?1 WHERE subject = ?2", rusqlite::params![row, subject]).unwrap();
        };
        let late = format!("user-{}", n - 2);
        damage(&late);
        let err = read_table_lazy::<crate::gate::SubjectMap>(&conn).err().unwrap();
        assert!(err.to_string().contains(&format!("'{late}'")), "a row of the second half fails the load: {err}");
        damage("user-1");
        let err = read_table_lazy::<crate::gate::SubjectMap>(&conn).err().unwrap();
        let one_pass = read_table::<HashMap<String, Arc<SubjectState>>>(&conn).unwrap_err();
        assert!(err.to_string().contains("'user-1'"), "the first in table order (by subject) is named: {err}");
        assert_eq!(err.to_string(), one_pass.to_string());
    }
}
