//! Catching up with other processes' commits: the catch-up itself (reload what changed since the
//! published head), the probe thread that notices them (`PRAGMA data_version` every
//! [`PROBE_INTERVAL`]), [`ConsentStore::refresh`], and the iOS suspension pair
//! [`ConsentStore::suspend`] / [`ConsentStore::resume`].

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};

use rusqlite::Connection;

use super::shared::{Head, Shared, PROBE_INTERVAL};
use super::write::status_changes;
use super::{lock, try_lock, ConsentStore, Writer};
use crate::chain::GENESIS;
use crate::clock::{Clock, Timestamp};
use crate::db;
use crate::error::{Error, Result};
use crate::observer::StatusChange;
use crate::queue::{channel, RecvTimeoutError, Sender};
use crate::schema::OpenMode;
use crate::state_proof;

/// The high-water mark of time is written to the file when it advanced by this much (ms) since
/// it was last written (and with every write, and on suspend).
const HIGH_WATER_PERSIST_STEP: i64 = 60_000;

/// What a publish owes the listeners: the generation for the commit hooks and the status changes
/// for the observers. Delivered by [`notify`] once no transaction is open, so a hook may read
/// and even acknowledge the outbox.
pub(super) struct Notice {
    pub(super) generation: u64,
    pub(super) changes: Vec<StatusChange>,
}

/// Runs the commit hooks and queues the observer notifications of a publish.
pub(super) fn notify(shared: &Shared, notice: Notice) {
    shared.registry.committed(notice.generation);
    shared.registry.dispatch(&notice.changes);
}

/// Brings the published snapshot up to the file's head, reading through `conn` (the caller holds
/// the publish lock `head` and has a transaction open on `conn`, begun at monotonic `started`).
/// Publishes what changed and confirms the snapshot current as of `started`; returns what the
/// listeners must be told, if anything changed. `in_write`: the transaction is a write's (which
/// holds the file's write lock), so a reloaded state table that was not proven is rewritten.
pub(super) fn catch_up(
    shared: &Shared,
    head: &mut Head,
    conn: &Connection,
    now: Timestamp,
    started: Option<u64>,
    in_write: bool,
) -> Result<Option<Notice>> {
    let (seq, hash) = db::current_head(conn)?.unwrap_or((0, GENESIS.to_string()));
    let unchanged = seq == head.seq && hash == head.hash;
    if !unchanged {
        // The chain only grows: a head behind the one this store served, or another event at it,
        // is the file rolled back or overwritten in place by another copy (an older backup
        // restored). Its state would revive what the later events changed (a withdrawal that
        // returned): never served, nor written after; checks deny from now on.
        if seq < head.seq || (head.seq > 0 && db::hash_at(conn, head.seq)?.as_deref() != Some(head.hash.as_str())) {
            shared.unconfirm();
            log::error!("consentkit: the file no longer holds the chain this store served (rolled back or replaced in place)");
            return Err(Error::Tampered(crate::chain::ChainBreak::RolledBack { seq: head.seq }));
        }
        // The newest event's sealed time, as at open: a floor the mark rows cannot lower.
        if let Some(at) = db::head_time(conn, seq, &hash)? {
            shared.high_water.fetch_max(at, Ordering::Relaxed);
        }
    }
    // The time another connection has seen, also when it committed nothing but its mark (a
    // process that checked past an expiry): a clock set back since must not make this store,
    // which never read that time itself, serve the expired grant again.
    if let Some(mark) = db::time_mark(conn)? {
        shared.high_water.fetch_max(mark, Ordering::Relaxed);
        // The file holds it already: nothing to persist for it.
        shared.persisted_high_water.fetch_max(mark, Ordering::Relaxed);
    }
    // Same head: current, unless the digest sealed beside it is no longer the sum of what this
    // store serves (another process's `verify` found the state table forged and invalidated it,
    // or someone edited and resealed the table). Then the served state is unproven: it is
    // replaced by the verified history's fold, never the table, and never sealed as it was.
    if unchanged && sealed_digest_matches(conn, &head.state_sum)? {
        shared.confirm(started);
        return Ok(None);
    }
    let base = shared.snapshot.load_full();
    let mut next = (*base).clone();
    let mut touched: BTreeSet<String> = BTreeSet::new();
    let mut state_sum = head.state_sum;
    let mut full = unchanged || seq < head.seq || db::removals_after(conn, head.seq)?;
    if !full {
        // Only what was written after the published head, checked against the digest the other
        // process sealed beside its head; any disagreement falls back to the full, proven load.
        for (subject, state) in db::subjects_after(conn, head.seq)? {
            if let Some(old) = base.subjects.get(&subject) {
                state_sum.remove_subject(&subject, old);
            }
            state_sum.add_subject(&subject, &state);
            touched.insert(subject.clone());
            next.subjects.insert(subject, state);
        }
        let os = db::load_os(conn)?;
        for (permission, record) in base.os.iter() {
            state_sum.remove_os(*permission, record);
        }
        for (permission, record) in &os {
            state_sum.add_os(*permission, record);
        }
        next.os = os.into_iter().collect();
        full = !sealed_digest_matches(conn, &state_sum)?;
    }
    if full {
        // Subjects may have been removed (erasure, purge), the file replaced, or the digest not
        // match: reload everything as an open does (never serving an unproven state table).
        // Same head, other digest: the table changed with no chain event; only the history counts.
        let (subjects, os, sum) = if unchanged { state_proof::load_from_history(conn)? } else { state_proof::load_checked(conn, false)? };
        if in_write && !sealed_digest_matches(conn, &sum)? {
            // The table was not what the history gives (or not sealed so): this write's
            // transaction rewrites it, so the digest it seals is the sum of the table.
            let (recorded_seq, _) = db::head(conn)?.unwrap_or((0, GENESIS.to_string()));
            db::replace_state(conn, &subjects, &os, recorded_seq)?;
        }
        touched.extend(base.subjects.keys().cloned());
        touched.extend(subjects.keys().cloned());
        next.subjects = subjects.into_iter().collect();
        next.os = os.into_iter().collect();
        state_sum = sum;
    }
    next.generation += 1;
    let changes = status_changes(&base, &next, &touched, now);
    let generation = next.generation;
    shared.publish(next, seq);
    shared.confirm(started);
    head.seq = seq;
    head.hash = hash;
    head.state_sum = state_sum;
    log::info!("consentkit: caught up with another connection's commits to seq {seq}");
    Ok(Some(Notice { generation, changes }))
}

/// True when the file's sealed state digest is `sum` sealed with the file's recorded head, or
/// the file is new (no head, no digest) and `sum` that of an empty state.
fn sealed_digest_matches(conn: &Connection, sum: &state_proof::StateSum) -> Result<bool> {
    Ok(state_proof::digest_seals(db::meta(conn, state_proof::DIGEST_KEY)?.as_deref(), db::head(conn)?.as_ref(), sum))
}

/// One probe: if the file changed since the last one, catch up; then confirm the snapshot is
/// current as of the probe's start. Takes the publish lock (or, unless `wait`, gives up with
/// `Busy` if a write holds it), then the writer connection.
fn probe(shared: &Shared, writer: &Mutex<Option<Writer>>, clock: &dyn Clock, mode: OpenMode, wait: bool) -> Result<()> {
    // Before anything can fail or wait: the store's time moves on with real time even while the
    // file cannot be read.
    shared.observe_running_time(clock.now(), clock);
    if shared.suspended.load(Ordering::Acquire) {
        return Err(Error::Suspended("refreshing"));
    }
    let mut published =
        if wait { shared.lock() } else { shared.try_lock().ok_or_else(|| Error::Busy("a write of this process is in progress".into()))? };
    // A check never waits: not for a write, nor for a WAL scrub holding the writer connection.
    let mut guard =
        if wait { lock(writer) } else { try_lock(writer).ok_or_else(|| Error::Busy("the writer connection is in use".into()))? };
    // Checked again under the locks: `suspend` holds both while it sets the flag, so a probe that
    // read the flag before `suspend` took them starts no transaction after `suspend` returned.
    if shared.suspended.load(Ordering::Acquire) {
        return Err(Error::Suspended("refreshing"));
    }
    let w = guard.as_mut().ok_or_else(|| Error::Closed("the store is closed".into()))?;
    if db::has_moved(&w.conn) {
        // What this store serves is no longer what the path holds: no check may rely on it.
        shared.unconfirm();
        return Err(Error::Closed(db::MOVED.into()));
    }
    let started = shared.mono_now();
    let version = db::data_version(&w.conn)?;
    let mut notice = None;
    if w.data_version != Some(version) {
        let now = shared.at_least_high_water(clock.now());
        w.conn.execute_batch("BEGIN DEFERRED")?;
        let result = catch_up(shared, &mut published, &w.conn, now, started, false);
        let _ = w.conn.execute_batch("COMMIT");
        notice = result?;
        w.data_version = Some(version);
    } else {
        // Nothing committed elsewhere since the last probe: the snapshot is current.
        shared.confirm(started);
    }
    if mode == OpenMode::ReadWrite {
        persist_high_water(shared, &w.conn, false)?;
    }
    drop(guard);
    if let Some(notice) = notice {
        notify(shared, notice);
    }
    drop(published);
    Ok(())
}

/// Writes the high-water mark of time to the file if it advanced by a step (or at all, `force`).
fn persist_high_water(shared: &Shared, conn: &Connection, force: bool) -> Result<()> {
    let mark = shared.high_water.load(Ordering::Relaxed);
    let written = shared.persisted_high_water.load(Ordering::Relaxed);
    if mark > written && (force || mark.saturating_sub(written) >= HIGH_WATER_PERSIST_STEP) {
        db::set_time_mark(conn, mark)?;
        shared.persisted_high_water.fetch_max(mark, Ordering::Relaxed);
    }
    Ok(())
}

/// The probe thread of one store: probes every [`PROBE_INTERVAL`]; ends when the store is dropped.
pub(crate) struct Prober {
    _stop: Sender<()>,
}

impl Prober {
    pub(super) fn start(shared: Arc<Shared>, writer: Arc<Mutex<Option<Writer>>>, clock: Arc<dyn Clock>, mode: OpenMode) -> Prober {
        let (stop, stopped) = channel::<()>();
        let shared: Weak<Shared> = Arc::downgrade(&shared);
        let writer = Arc::downgrade(&writer);
        let spawned = std::thread::Builder::new().name("consentkit-probe".into()).spawn(move || {
            let mut warnings = WarningLimit::default();
            let mut scrub = Backoff::default();
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(PROBE_INTERVAL) {
                let (Some(shared), Some(writer)) = (shared.upgrade(), writer.upgrade()) else { break };
                match probe(&shared, &writer, &*clock, mode, true) {
                    Ok(()) | Err(Error::Suspended(_)) => warnings.recovered(),
                    Err(e) => warnings.warn(&e),
                }
                // A pending scrub is retried with back-off and a short wait for readers, so a
                // reader that holds the WAL never keeps the writer connection (and with it the
                // probe's confirmations) for long.
                if mode == OpenMode::ReadWrite && shared.scrub_pending.load(Ordering::Acquire) && scrub.due() {
                    if finish_scrub_waiting(&shared, &writer, SCRUB_RETRY_WAIT) {
                        scrub = Backoff::default();
                    } else {
                        scrub.failed();
                    }
                }
            }
        });
        if let Err(e) = spawned {
            // Checks then refresh inline once the bound has passed: slower, still correct.
            log::error!("consentkit: could not start the probe thread: {e}");
        }
        Prober { _stop: stop }
    }
}

/// How long the probe thread's scrub retries wait for readers (the writer connection is held
/// meanwhile).
const SCRUB_RETRY_WAIT: std::time::Duration = std::time::Duration::from_millis(50);

/// The probe thread's warnings: the first failure in a row, then at most one a minute saying how
/// many followed, and one line when probing works again.
#[derive(Default)]
struct WarningLimit {
    failing_since: Option<std::time::Instant>,
    last: Option<std::time::Instant>,
    suppressed: u64,
}

impl WarningLimit {
    fn warn(&mut self, e: &Error) {
        let now = std::time::Instant::now();
        if self.last.is_some_and(|t| now.duration_since(t) < std::time::Duration::from_secs(60)) {
            self.suppressed += 1;
            return;
        }
        let more = if self.suppressed > 0 { format!(" ({} more failures since the last warning)", self.suppressed) } else { String::new() };
        log::warn!("consentkit: could not check for other processes' commits: {}{more}", e.log_summary());
        self.failing_since.get_or_insert(now);
        self.last = Some(now);
        self.suppressed = 0;
    }

    fn recovered(&mut self) {
        if let Some(since) = self.failing_since.take() {
            log::info!("consentkit: checking for other processes' commits works again after {} s", since.elapsed().as_secs());
        }
        self.last = None;
        self.suppressed = 0;
    }
}

/// When the probe thread next retries a pending scrub: at once, then after 1, 2, 4 ... 30 s.
#[derive(Default)]
struct Backoff {
    next: Option<std::time::Instant>,
    delay: std::time::Duration,
}

impl Backoff {
    fn due(&self) -> bool {
        self.next.is_none_or(|t| std::time::Instant::now() >= t)
    }

    fn failed(&mut self) {
        self.delay = (self.delay * 2).clamp(std::time::Duration::from_secs(1), std::time::Duration::from_secs(30));
        self.next = Some(std::time::Instant::now() + self.delay);
    }
}

/// [`finish_scrub`] waiting at most `wait` for readers instead of the busy timeout.
fn finish_scrub_waiting(shared: &Shared, writer: &Mutex<Option<Writer>>, wait: std::time::Duration) -> bool {
    {
        let guard = lock(writer);
        if let Some(w) = guard.as_ref() {
            let _ = w.conn.busy_timeout(wait);
        }
    }
    let done = finish_scrub(shared, writer);
    let guard = lock(writer);
    if let Some(w) = guard.as_ref() {
        let _ = w.conn.busy_timeout(crate::schema::BUSY_TIMEOUT);
    }
    done
}

/// Checkpoints the WAL into the database and truncates it, so erased content survives in
/// neither; waits up to the busy timeout for readers. Returns true when no scrub is pending.
/// Never fails: a checkpoint that cannot finish stays pending for the next opportunity.
pub(super) fn finish_scrub(shared: &Shared, writer: &Mutex<Option<Writer>>) -> bool {
    if !shared.scrub_pending.load(Ordering::Acquire) {
        return true;
    }
    if shared.suspended.load(Ordering::Acquire) {
        return false;
    }
    let guard = lock(writer);
    // Checked again under the writer lock, which `suspend` holds while it sets the flag.
    if shared.suspended.load(Ordering::Acquire) {
        return false;
    }
    let Some(w) = guard.as_ref() else { return false };
    // The file's marker as of before the checkpoint: a removal committed after this read is in
    // the WAL the checkpoint truncates, or it changed the marker (which then stays set).
    let seen = db::scrub_marker(&w.conn).and_then(|seen| Ok((seen, db::current_head(&w.conn)?.map_or(0, |(seq, _)| seq))));
    let result: rusqlite::Result<(i64, i64, i64)> =
        w.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)));
    match result {
        Ok((0, _, _)) => {
            // Only now, after the truncation, may the file say no scrub is pending (a crash
            // before this leaves it set: the next open scrubs again).
            if let Err(e) = seen.and_then(|(seen, through)| db::clear_scrub_marker(&w.conn, seen.as_deref(), through)) {
                log::warn!("consentkit: could not record the finished WAL scrub ({}); the next open checkpoints again", e.log_summary());
            }
            shared.scrub_pending.store(false, Ordering::Release);
            true
        }
        Ok(_) => {
            log::warn!("consentkit: a reader blocked the WAL checkpoint; erased content stays in the WAL until the next one");
            false
        }
        Err(e) => {
            log::warn!(
                "consentkit: WAL checkpoint failed ({}); erased content stays in the WAL until the next one",
                crate::error::Error::from(e).log_summary()
            );
            false
        }
    }
}

impl ConsentStore {
    /// Catches up with other processes' commits now: one `PRAGMA data_version` probe and, if the
    /// file moved on, a reload of what changed (subjects written since the published head, OS
    /// states), published like a write (hooks, observers). Checks do this by themselves within
    /// [`super::CROSS_PROCESS_BOUND`]; call it when the app returns to the foreground or after the
    /// support tool ran. From inside a commit hook it does nothing (the write already caught up).
    pub fn refresh(&self) -> Result<()> {
        if self.shared.held_by_this_thread() {
            return Ok(());
        }
        probe(&self.shared, &self.writer, &*self.clock, self.mode, true)
    }

    /// [`ConsentStore::refresh`] for a check: never waits for a write in progress.
    pub(super) fn refresh_without_waiting(&self) -> Result<()> {
        if self.shared.held_by_this_thread() {
            // Inside this thread's commit hooks (the publish lock is this thread's): no catch-up
            // is possible, but if no other connection committed since the writer last looked,
            // the published snapshot (which holds this thread's own commit) is current.
            if let Some(guard) = try_lock(&self.writer) {
                if let Some(w) = guard.as_ref() {
                    let started = self.shared.mono_now();
                    if w.data_version.is_some() && db::data_version(&w.conn).ok() == w.data_version {
                        self.shared.confirm(started);
                    }
                }
            }
            return Ok(());
        }
        probe(&self.shared, &self.writer, &*self.clock, self.mode, false)
    }

    /// Finishes an erasure's or purge's pending WAL scrub now (see [`crate::ErasureReport`]).
    /// Returns true when no erased content remains in the WAL. Also runs by itself on the next
    /// write, probe and open (an open whose file marks a scrub pending).
    pub fn finish_scrub(&self) -> bool {
        finish_scrub(&self.shared, &self.writer)
    }

    /// After an erasure or purge committed: marks the scrub pending and tries to finish it
    /// (waiting up to the busy timeout for readers). True when it is finished.
    pub(crate) fn scrub_after_removal(&self) -> bool {
        self.shared.scrub_pending.store(true, Ordering::Release);
        self.finish_scrub()
    }

    /// For iOS, before the app is suspended: waits for the transaction in flight, writes the clock's
    /// high-water mark, and then starts no new transaction (writes, ledger reads and refreshes fail
    /// with [`Error::Suspended`]) until [`ConsentStore::resume`], so the process holds no SQLite lock
    /// while suspended (0xDEAD10CC). Checks keep answering from memory for
    /// [`super::CROSS_PROCESS_BOUND`], then deny consent-gated features (they cannot tell whether
    /// another process withdrew). Idempotent.
    pub fn suspend(&self) {
        if !self.shared.held_by_this_thread() {
            let _published = self.shared.lock();
            let guard = lock(&self.writer);
            if let (Some(w), OpenMode::ReadWrite) = (guard.as_ref(), self.mode) {
                if let Err(e) = persist_high_water(&self.shared, &w.conn, true) {
                    log::warn!("consentkit: could not write the clock's high-water mark before suspending: {e}");
                }
            }
            self.shared.suspended.store(true, Ordering::Release);
            drop(guard);
            // Waits for a read in progress; the read connection is closed until the next read.
            if let Some(slot) = lock(&self.ledger).as_mut() {
                slot.release();
            }
        } else {
            self.shared.suspended.store(true, Ordering::Release);
        }
    }

    /// Ends a [`ConsentStore::suspend`]: transactions may start again, and the store catches up
    /// with what other processes committed meanwhile before this returns.
    pub fn resume(&self) -> Result<()> {
        self.shared.suspended.store(false, Ordering::Release);
        self.refresh()?;
        self.finish_scrub();
        Ok(())
    }

    /// True between [`ConsentStore::suspend`] and [`ConsentStore::resume`].
    pub fn is_suspended(&self) -> bool {
        self.shared.suspended.load(Ordering::Acquire)
    }
}

impl Drop for ConsentStore {
    /// Writes the clock's high-water mark, so a clock set back while the app is closed does not
    /// revive what expired while it ran.
    /// Also finishes an erasure's or purge's pending WAL scrub: closing is the last chance this
    /// store has, and another process's open store keeps the WAL (and the erased bytes in it) on
    /// disk after this one closes, until the next read-write open.
    fn drop(&mut self) {
        if self.mode == OpenMode::ReadWrite && !self.shared.suspended.load(Ordering::Acquire) {
            // A short wait for readers: a close is not held up for long.
            if self.shared.scrub_pending.load(Ordering::Acquire) && !finish_scrub_waiting(&self.shared, &self.writer, SCRUB_RETRY_WAIT) {
                log::warn!("consentkit: a reader kept the WAL at close: the erased content is scrubbed at the next open");
            }
            if let Some(w) = lock(&self.writer).as_ref() {
                if let Err(e) = persist_high_water(&self.shared, &w.conn, true) {
                    log::warn!("consentkit: could not write the clock's high-water mark on close: {e}");
                }
            }
        }
    }
}
