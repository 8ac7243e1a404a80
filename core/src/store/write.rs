//! The write path: [`WriteTx`] (a write in progress inside one immediate transaction) and
//! [`ConsentStore::write`], which commits it, publishes the new snapshot, runs the commit hooks and
//! queues observer notifications.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rusqlite::Connection;

use std::sync::atomic::Ordering;

use super::refresh::{catch_up, notify, Notice};
use super::{lock, ConsentStore};
use crate::chain;
use crate::clock::Timestamp;
use crate::db;
use crate::error::{Error, Result};
use crate::gate::{OsRecord, Snapshot};
use crate::model::{Action, Source};
use crate::observer::StatusChange;
use crate::os_permission::OsPermission;
use crate::policy::Policy;
use crate::receipt::Receipt;
use crate::state::{status_of, SubjectState};
use crate::state_proof::StateSum;

/// A write in progress: appends sealed events inside one transaction and tracks the state they make.
pub(crate) struct WriteTx<'a> {
    pub(crate) conn: &'a Connection,
    pub(crate) policy: &'a Policy,
    /// The store's time for this write: the clock's reading, never before the high-water mark.
    pub(crate) now: Timestamp,
    /// The clock's own reading for this write; before `now` when the clock reads behind the
    /// store's time (set back, or the mark came from a reading that was ahead).
    pub(crate) clock_reading: Timestamp,
    /// The store's time a check would use now: `now`, but never before the running floor
    /// ([`super::shared::Shared::running_time`]). A live grant already expired at it is refused
    /// (`record::decide`).
    pub(crate) check_time: Timestamp,
    pub(crate) base: &'a Snapshot,
    pub(crate) erasure_key: &'a str,
    next_seq: u64,
    prev_hash: String,
    subjects: BTreeMap<String, SubjectState>,
    removed: BTreeSet<String>,
    os: Vec<(OsPermission, OsRecord)>,
    receipts: Vec<Receipt>,
}

impl<'a> WriteTx<'a> {
    /// The subject's state as this write leaves it so far.
    pub(crate) fn subject(&self, subject: &str) -> Option<&SubjectState> {
        if self.removed.contains(subject) {
            return None;
        }
        self.subjects.get(subject).or_else(|| self.base.subjects.get(subject).map(|s| &**s))
    }

    /// A receipt skeleton for this policy at this time; `append` seals it.
    pub(crate) fn draft(&self, action: Action, source: Source) -> Receipt {
        Receipt::blank(action, source, &self.policy.id, &self.policy.version, self.now)
    }

    /// Seals, stores and applies one event.
    pub(crate) fn append(&mut self, mut r: Receipt) -> Result<Receipt> {
        if r.id.is_empty() {
            r.id = uuid::Uuid::new_v4().to_string();
        }
        r.seq = self.next_seq;
        chain::seal(&mut r, &self.prev_hash);
        db::insert_event(self.conn, &r)?;
        if let Some(subject) = r.subject.clone() {
            let base = self.subject(&subject).cloned().unwrap_or_default();
            self.removed.remove(&subject);
            self.subjects.entry(subject).or_insert(base).apply(&r);
        }
        if let (Some(p), Some(state)) = (r.permission, r.os_state) {
            self.os.push((p, OsRecord { state, since: r.at }));
        }
        self.next_seq += 1;
        self.prev_hash = r.hash.clone();
        self.receipts.push(r.clone());
        Ok(r)
    }

    /// Drops a subject's current state (erasure).
    pub(crate) fn remove_subject(&mut self, subject: &str) {
        self.subjects.remove(subject);
        self.removed.insert(subject.to_string());
    }

    /// Sets a subject's state to the fold of its remaining history (after a purge), or drops it
    /// when none is left, so the state stays the fold of the history.
    pub(crate) fn refold_subject(&mut self, subject: &str) -> Result<()> {
        let events = db::subject_events(self.conn, subject)?;
        if events.is_empty() {
            self.remove_subject(subject);
        } else {
            self.removed.remove(subject);
            self.subjects.insert(subject.to_string(), SubjectState::fold(&events));
        }
        Ok(())
    }
}

/// A write's immediate transaction (it takes the file's write lock at once), begun and committed
/// through cached statements, so no write parses SQL for them; rolled back if dropped before its
/// commit (or if the commit failed).
struct Immediate<'c> {
    conn: &'c Connection,
}

impl<'c> Immediate<'c> {
    fn begin(conn: &'c Connection) -> rusqlite::Result<Immediate<'c>> {
        conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        Ok(Immediate { conn })
    }

    /// Commits: durable when this returns (WAL, `synchronous=FULL`).
    fn commit(self) -> rusqlite::Result<()> {
        self.conn.prepare_cached("COMMIT")?.execute([])?;
        Ok(())
    }
}

impl std::ops::Deref for Immediate<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl Drop for Immediate<'_> {
    fn drop(&mut self) {
        if !self.conn.is_autocommit() {
            if let Err(e) = self.conn.execute_batch("ROLLBACK") {
                log::warn!("consentkit: rolling back a failed write: {}", Error::from(e).log_summary());
            }
        }
    }
}

impl ConsentStore {
    /// Runs `build` in one immediate transaction; commits, publishes the new snapshot, runs the
    /// commit hooks and queues observer notifications, in that order, before returning.
    /// An error anywhere rolls everything back: nothing is written, nothing is published.
    ///
    /// Inside the transaction (which holds the file's write lock) the store first catches up with
    /// whatever another process committed, so `build` validates against the file's current state
    /// and appends after its current head. The publish lock is held until the hooks have run;
    /// hooks may read (the reads use their own connection), a write from a hook is refused.
    ///
    /// A thin generic shim over one non-generic [`ConsentStore::write_dyn`], so the write path is
    /// compiled once, not once per operation.
    #[inline]
    pub(crate) fn write<T>(&self, build: impl FnOnce(&mut WriteTx) -> Result<T>) -> Result<(T, Vec<Receipt>)> {
        let mut build = Some(build);
        let mut value = None;
        let receipts = self.write_dyn(&mut |w| {
            let build = build.take().ok_or_else(|| Error::Internal("a write's body ran twice".into()))?;
            value = Some(build(w)?);
            Ok(())
        })?;
        let value = value.ok_or_else(|| Error::Internal("a write's body did not run".into()))?;
        Ok((value, receipts))
    }

    /// [`ConsentStore::write`] for a body that keeps its result itself: runs `build` once.
    #[inline(never)]
    fn write_dyn(&self, build: &mut dyn FnMut(&mut WriteTx) -> Result<()>) -> Result<Vec<Receipt>> {
        if self.shared.held_by_this_thread() {
            return Err(Error::WriteFromHook("write"));
        }
        if self.shared.suspended.load(Ordering::Acquire) {
            return Err(Error::Suspended("writing"));
        }
        let mut published = self.shared.lock();
        let mut caught_up = None;
        let mut moved = false;
        let result = (|| {
            let guard = lock(&self.writer);
            let writer = guard.as_ref().ok_or_else(|| Error::Closed(self.unavailable().unwrap_or_default()))?;
            if self.shared.suspended.load(Ordering::Acquire) {
                return Err(Error::Suspended("writing"));
            }
            let started = self.shared.mono_now();
            let tx = Immediate::begin(&writer.conn).map_err(|e| match Error::from(e) {
                Error::Busy(_) => {
                    log::warn!(
                        "consentkit: the file stayed locked by another connection past the busy timeout; the write is refused as retryable"
                    );
                    Error::Busy("starting a write".into())
                }
                other => other,
            })?;
            // Holding the file's write lock: the file open is still the one at the path, or the
            // write would return and be lost to every later opener.
            if db::has_moved(&tx) {
                moved = true;
                return Err(Error::StoreUnavailable { path: self.path().to_path_buf(), why: db::MOVED.into() });
            }
            // The store's time for this write, never before the high-water mark; the mark itself
            // moves only when the write commits, so a refused write leaves the store's time (and
            // the file, which records it on close) as it was.
            // The range check is on the time the write is stamped with: a clock reading before
            // 1970 (a hand-set clock) is behind the mark, so a withdrawal records at the mark
            // (a grant is `ClockBehind`); a reading past 9999 is the store's time, refused.
            let clock_reading = self.clock.now();
            // The running floor as of now (the check below a grant and the store's time checks use).
            self.shared.observe_running_time(clock_reading, &*self.clock);
            let now = self.shared.at_least_high_water(clock_reading);
            now.check_recordable()?;
            caught_up = catch_up(&self.shared, &mut published, &tx, now, started, true)?;
            // The catch-up takes the file's mark (a time another process saw): this write is
            // stamped at the store's time as it stands now, so a subject's history stays in time
            // order and a grant behind that time is `ClockBehind` here as in the other process.
            let now = self.shared.at_least_high_water(clock_reading);
            now.check_recordable()?;
            let base = self.shared.snapshot.load_full();
            let mut w = WriteTx {
                conn: &tx,
                policy: &self.policy,
                now,
                clock_reading,
                check_time: self.shared.running_time(now),
                base: &base,
                erasure_key: &self.erasure_key,
                next_seq: published.seq + 1,
                prev_hash: published.hash.clone(),
                subjects: BTreeMap::new(),
                removed: BTreeSet::new(),
                os: Vec::new(),
                receipts: Vec::new(),
            };
            build(&mut w)?;
            let WriteTx { subjects, removed, os, receipts, next_seq, prev_hash, .. } = w;
            if receipts.is_empty() {
                return Ok((receipts, None));
            }
            let last_seq = next_seq - 1;
            let mut state_sum = published.state_sum;
            let touched: BTreeSet<String> = subjects.keys().chain(removed.iter()).cloned().collect();
            let mut recent = lock(&self.shared.recent_rows);
            // A replaced row leaves the sum by its remembered hash if this is the state it was
            // taken of, else hashed anew from the state.
            let take_out = |sum: &mut StateSum, subject: &str| {
                if let Some(old) = base.subjects.get(subject) {
                    match recent.get(subject, old) {
                        Some(row) => sum.remove_row(row),
                        None => sum.remove_subject(subject, old),
                    }
                }
            };
            let mut written = Vec::with_capacity(subjects.len());
            for (subject, state) in subjects {
                take_out(&mut state_sum, &subject);
                // Encoded once: the row stores exactly the bytes the digest hashes.
                let bytes = state.to_row();
                let row = state_sum.add_subject_row(&subject, &bytes);
                db::put_subject_row(&tx, &subject, &bytes, last_seq)?;
                written.push((subject, Arc::new(state), row));
            }
            for subject in &removed {
                take_out(&mut state_sum, subject);
                db::delete_subject(&tx, subject)?;
            }
            // The last record of each permission this write set, in a list searched in order (a
            // device has a few distinct permissions; no ordered map or sort compiled in for it;
            // the state sum is order-independent).
            let mut os_final: Vec<(OsPermission, OsRecord)> = Vec::new();
            for &(permission, record) in &os {
                match os_final.iter_mut().find(|(p, _)| *p == permission) {
                    Some(last) => last.1 = record,
                    None => os_final.push((permission, record)),
                }
            }
            for (permission, record) in &os_final {
                if let Some(old) = base.os.get(permission) {
                    state_sum.remove_os(*permission, old);
                }
                state_sum.add_os(*permission, record);
                db::put_os(&tx, *permission, *record, last_seq)?;
            }
            let mark = self.shared.high_water.load(Ordering::Relaxed).max(now.millis());
            db::set_head(&tx, last_seq, &prev_hash, &state_sum.seal(last_seq, &prev_hash), mark, &self.erasure_key)?;
            // Still holding the file's write lock: no other connection can have committed since
            // the catch-up, so the snapshot is current as of now (not only as of the transaction's
            // start). Confirmed once published; the commit's fsync then does not count against
            // the bound for checks in this write's hooks.
            let committing = self.shared.mono_now();
            let version_before = db::data_version(&tx).ok();
            tx.commit()?;
            // After a slow commit's fsync: if no other connection has committed since (our own
            // commits do not move this connection's data_version), the snapshot is current now.
            let committed_after =
                proof_after_commit(committing, self.shared.mono_now(), version_before, || db::data_version(&writer.conn).ok());
            self.shared.high_water.fetch_max(mark, Ordering::Relaxed);
            self.shared.persisted_high_water.fetch_max(mark, Ordering::Relaxed);
            published.seq = last_seq;
            published.hash = prev_hash;
            published.state_sum = state_sum;

            let mut next = (*base).clone();
            for subject in &removed {
                recent.forget(subject);
                next.subjects.remove(subject);
            }
            for (subject, state, row) in written {
                recent.put(&subject, state.clone(), row);
                next.subjects.insert(subject, state);
            }
            drop(recent);
            for (permission, record) in os_final {
                next.os.insert(permission, record);
            }
            next.generation += 1;
            let changes = status_changes(&base, &next, &touched, now);
            let generation = next.generation;
            self.shared.publish(next, last_seq);
            self.shared.confirm(committing);
            self.shared.confirm(committed_after);
            Ok((receipts, Some((generation, changes))))
        })();
        if moved {
            log::error!("consentkit: {}; closing the store", db::MOVED);
            self.close(db::MOVED.into());
        }
        // The file skipped rows of this write (a trigger not ConsentKit's): every later write would
        // too, and what the file holds is not what this store would serve. Closed: checks deny.
        if let Err(Error::Tampered(b @ crate::chain::ChainBreak::WriteNotTaken { .. })) = &result {
            log::error!("consentkit: {b}; closing the store");
            self.close(b.to_string());
        }
        // No transaction is open any more: hooks and observers may read (even ack the outbox).
        // What a catch-up published is told even if the write itself then failed.
        if let Some(notice) = caught_up {
            notify(&self.shared, notice);
        }
        let (receipts, published_changes) = result.map_err(|e| self.named_if_read_only(e))?;
        if let Some((generation, changes)) = published_changes {
            notify(&self.shared, Notice { generation, changes });
        }
        drop(published);
        if self.shared.scrub_pending.load(Ordering::Acquire) {
            self.finish_scrub();
        }
        Ok(receipts)
    }
}

impl ConsentStore {
    /// SQLite's "attempt to write a readonly database" (the file, its `-wal`/`-shm` or its folder
    /// is not writable for this process; SQLite then opened it read-only) as a store problem that
    /// names the file; any other error as it is.
    fn named_if_read_only(&self, e: Error) -> Error {
        match &e {
            Error::Sqlite(rusqlite::Error::SqliteFailure(f, _)) if f.code == rusqlite::ErrorCode::ReadOnly => Error::StoreUnavailable {
                path: self.path().to_path_buf(),
                why: format!(
                    "it is read-only for this process (no permission to write the file, its -wal and -shm files or its folder): {e}"
                ),
            },
            _ => e,
        }
    }
}

/// How long a commit must have taken before the write proves its snapshot current again after it
/// (one more read transaction, for `PRAGMA data_version` outside the write's): a faster commit
/// leaves the proof taken just before it at most this much older than that second one would be,
/// a small part of [`super::CROSS_PROCESS_BOUND`]; a slow fsync is proven over, so it never makes
/// the next checks refresh or deny.
pub(super) const SLOW_COMMIT_NANOS: u64 = 10_000_000;

/// The proof a commit that began (its proof taken) at `committing` and ended at `checked` adds
/// after it (monotonic ns): `checked`, if the commit was slow and `after` (this connection's
/// `data_version` now) equals `before` (taken inside the transaction), i.e. no other connection
/// committed meanwhile; else none. `after` is read only for a slow commit.
fn proof_after_commit(
    committing: Option<u64>,
    checked: Option<u64>,
    before: Option<i64>,
    after: impl FnOnce() -> Option<i64>,
) -> Option<u64> {
    let (committing, checked, before) = (committing?, checked?, before?);
    if checked.saturating_sub(committing) < SLOW_COMMIT_NANOS {
        return None;
    }
    (after()? == before).then_some(checked)
}

/// The statuses that differ between two snapshots for the touched subjects.
pub(super) fn status_changes(before: &Snapshot, after: &Snapshot, touched: &BTreeSet<String>, now: Timestamp) -> Vec<StatusChange> {
    let mut changes = Vec::new();
    for subject in touched {
        for category in &after.policy.categories {
            let old = status_of(category, before.subjects.get(subject).and_then(|s| s.categories.get(&category.id)), now);
            let state = after.subjects.get(subject).and_then(|s| s.categories.get(&category.id));
            let new = status_of(category, state, now);
            if old != new {
                let since = state.map(|s| s.effective_since(category, now));
                changes.push(StatusChange {
                    subject: subject.clone(),
                    category: category.id.clone(),
                    status: new,
                    since,
                    generation: after.generation,
                });
            }
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Action, Source};
    use crate::validate::DecisionInput;

    /// The digest every write sealed equals the sum of the state table as stored.
    fn assert_sealed_over_the_table(path: &std::path::Path, what: &str) {
        let conn = Connection::open(path).unwrap();
        let (_, _, sum): (std::collections::HashMap<String, Arc<SubjectState>>, _, _) = crate::state_proof::read_table(&conn).unwrap();
        let (seq, hash) = db::head(&conn).unwrap().unwrap();
        assert_eq!(db::meta(&conn, crate::state_proof::DIGEST_KEY).unwrap(), Some(sum.seal(seq, &hash)), "{what}");
    }

    #[test]
    fn remembered_row_hashes_keep_the_digest_exact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rows.db");
        let store = ConsentStore::open(&path, Policy::builtin()).unwrap();
        let decide = |subject: &str, action: Action| {
            store.record(&DecisionInput::new(subject, "usage_statistics", action, Source::Settings)).unwrap();
        };
        // The same subject again and again (its old row's hash remembered each time).
        for i in 0..6 {
            decide("alice", if i % 2 == 0 { Action::Grant } else { Action::Withdraw });
        }
        assert_sealed_over_the_table(&path, "after repeated writes of one subject");
        // More subjects than are remembered, then the first ones again (forgotten: hashed anew).
        for i in 0..40 {
            decide(&format!("user-{i}"), Action::Grant);
        }
        decide("alice", Action::Grant);
        decide("user-0", Action::Withdraw);
        assert_sealed_over_the_table(&path, "after the remembered rows were evicted");
        // A refresh that finds nothing new keeps the served states (and so what is remembered).
        store.refresh().unwrap();
        decide("alice", Action::Withdraw);
        assert_sealed_over_the_table(&path, "after another write of a remembered subject");
        // An erasure deletes a remembered row.
        store.erase("alice", Source::Settings).unwrap();
        decide("bob", Action::Grant);
        assert_sealed_over_the_table(&path, "after erasing a remembered subject");
        decide("alice", Action::Grant);
        assert_sealed_over_the_table(&path, "after writing an erased subject again");
        drop(store);
        let reopened = ConsentStore::open(&path, Policy::builtin()).unwrap();
        assert!(reopened.verify().is_ok());
    }

    #[test]
    fn only_a_slow_commit_is_proven_over_and_only_if_no_one_else_committed() {
        let ms = 1_000_000u64;
        let unread = || -> Option<i64> { panic!("a fast commit reads no data_version") };
        assert_eq!(proof_after_commit(Some(5 * ms), Some(6 * ms), Some(7), unread), None, "fast: the proof before it stands");
        let slow = Some(5 * ms + SLOW_COMMIT_NANOS);
        assert_eq!(proof_after_commit(Some(5 * ms), slow, Some(7), || Some(7)), slow, "slow, nobody else committed: proven at its end");
        assert_eq!(proof_after_commit(Some(5 * ms), slow, Some(7), || Some(8)), None, "slow, another connection committed: no proof");
        assert_eq!(proof_after_commit(Some(5 * ms), slow, Some(7), || None), None, "unreadable: no proof");
        assert_eq!(proof_after_commit(None, slow, Some(7), || Some(7)), None, "no clock reading: no proof");
        assert_eq!(proof_after_commit(Some(5 * ms), slow, None, || Some(7)), None, "no reading before: no proof");
    }
}
