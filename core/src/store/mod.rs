//! `ConsentStore`: the durable ledger plus the in-memory gate. Writes are serialised, committed
//! in one SQLite transaction each (event rows and current state together), then published as a
//! new immutable snapshot. Checks read the current snapshot without I/O or locks.
//!
//! One concept per module: `open` (the store's lifecycle: open, fail-closed, quarantine, the
//! per-file registry of this process), `shared` (what stores on one file share: snapshot,
//! publish lock, freshness, clock high-water mark), `write` (the write path: `WriteTx`, commit,
//! publish, notify), `refresh` (catching up with other processes' commits, the probe thread,
//! suspend/resume), `record` (the decision-writing operations), `read` (reads that need SQLite,
//! on their own connection). This module holds the handle itself, the gate and listener
//! registration.

mod open;
mod read;
mod record;
mod refresh;
mod shared;
mod write;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::Connection;

use crate::clock::{Clock, Timestamp};
use crate::error::Result;
use crate::gate::{CategoryStatus, Decision, Snapshot};
use crate::input::check_subject_in;
use crate::model::OsState;
use crate::observer::{CommitHook, ConsentObserver, Registration, StatusChange, Watch};
use crate::os_permission::OsPermission;
use crate::policy::Policy;
use crate::schema::OpenMode;

pub use crate::validate::DecisionInput;
pub use shared::{CROSS_PROCESS_BOUND, PROBE_INTERVAL};
pub(crate) use write::WriteTx;

use open::OpenFile;
use refresh::Prober;
use shared::Shared;

/// The connection reads run on (history, export, verify, the outbox), separate from the writer's
/// so a commit hook or observer can read while a write holds the writer.
pub(crate) struct Ledger {
    pub(crate) conn: Connection,
    pub(crate) erasure_key: String,
}

/// The read connection's place: opened on the first read that needs it (an open does not pay
/// for it), dropped by [`ConsentStore::suspend`] and opened again by the next read. It is opened
/// only on the very file the store opened: an existing file (never created) whose erasure key is
/// the store's, and (on Unix) the same inode, so a file moved away or replaced since the open is
/// never read in its place.
pub(crate) struct LedgerSlot {
    db_path: PathBuf,
    mode: OpenMode,
    erasure_key: String,
    file_id: Option<(u64, u64)>,
    conn: Option<Ledger>,
}

impl LedgerSlot {
    /// A slot for the store at `db_path`, not opened yet.
    pub(crate) fn new(db_path: PathBuf, mode: OpenMode, erasure_key: String, file_id: Option<(u64, u64)>) -> LedgerSlot {
        LedgerSlot { db_path, mode, erasure_key, file_id, conn: None }
    }

    /// The read connection, opened now if it is not yet.
    pub(crate) fn get(&mut self) -> Result<&Ledger> {
        if self.conn.is_none() {
            let moved = || crate::Error::StoreUnavailable {
                path: self.db_path.clone(),
                why: "the file is not the one this store opened (moved away or replaced since)".into(),
            };
            if self.file_id.is_some() && file_id(&self.db_path) != self.file_id {
                return Err(moved());
            }
            let conn = crate::schema::open_existing(&self.db_path, self.mode)?;
            if crate::db::meta(&conn, "erasure_key")?.unwrap_or_default() != self.erasure_key {
                return Err(moved());
            }
            self.conn = Some(Ledger { conn, erasure_key: self.erasure_key.clone() });
        }
        self.conn.as_ref().ok_or_else(|| crate::Error::Internal("the read connection was just opened".into()))
    }

    /// Closes the read connection (it opens again on the next read).
    pub(crate) fn release(&mut self) {
        self.conn = None;
    }

    #[cfg(test)]
    pub(crate) fn is_open(&self) -> bool {
        self.conn.is_some()
    }
}

/// The identity of the file at `path` (device, inode) on Unix; `None` elsewhere or if it is
/// missing.
pub(crate) fn file_id(path: &Path) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// The connection writes and catch-ups run on, with the `data_version` it last saw.
pub(crate) struct Writer {
    pub(crate) conn: Connection,
    pub(crate) data_version: Option<i64>,
}

/// The consent store of one app on one device. Thread-safe: share it behind an `Arc`.
///
/// Several processes may open the same file: each write catches up with the others' commits
/// inside its transaction, and checks see other processes' commits within
/// [`CROSS_PROCESS_BOUND`] (see ARCHITECTURE.md, "Several processes").
pub struct ConsentStore {
    _open_file: OpenFile,
    _prober: Option<Prober>,
    path: PathBuf,
    mode: OpenMode,
    policy: Arc<Policy>,
    clock: Arc<dyn Clock>,
    shared: Arc<Shared>,
    writer: Arc<Mutex<Option<Writer>>>,
    /// The read connection's place; `None` once the store is closed.
    ledger: Mutex<Option<LedgerSlot>>,
    erasure_key: String,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The lock if it is free now (a poisoned one counts as free), else `None`; never waits.
fn try_lock<T>(m: &Mutex<T>) -> Option<MutexGuard<'_, T>> {
    match m.try_lock() {
        Ok(guard) => Some(guard),
        Err(std::sync::TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => None,
    }
}

impl ConsentStore {
    /// Why the store is closed, or `None` when it is healthy.
    pub fn unavailable(&self) -> Option<String> {
        self.shared.snapshot.load().unavailable.clone()
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The policy in force.
    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }

    /// The store's time: the clock's reading, but never before the highest reading this store has
    /// seen (persisted in the file). A clock set back does not bring an expired grant back; expiry
    /// and receipt times use this.
    pub fn now(&self) -> Timestamp {
        self.shared.not_before_high_water(self.clock.now())
    }

    /// The current immutable snapshot (lock-free). Unlike the checks, it is returned as published,
    /// even past [`CROSS_PROCESS_BOUND`].
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.shared.snapshot.load_full()
    }

    // ----- the gate (in memory, no I/O, no lock) -----

    /// The snapshot checks answer from: the published one while it is proven current within
    /// [`CROSS_PROCESS_BOUND`]; else refreshed first (without waiting for a write in progress);
    /// else (suspended, busy, unreadable) a closed view that denies every consent-gated feature.
    #[inline]
    fn view(&self) -> View {
        if self.shared.is_fresh() {
            return View::Live(self.shared.snapshot.load());
        }
        self.view_after_refresh(|| self.refresh_without_waiting())
    }

    /// [`ConsentStore::view`] for the queries that are not the gate (`status`, `statuses`,
    /// `should_ask`, `os_state`): past the bound, the refresh waits for a probe or write in
    /// progress (up to the busy timeout) instead of answering from a closed view, so a settings
    /// screen is not shown "not asked" for a moment of contention. Only the gate never waits.
    pub(crate) fn view_waiting(&self) -> View {
        if self.shared.is_fresh() {
            return View::Live(self.shared.snapshot.load());
        }
        // Inside this thread's commit hooks `refresh` cannot catch up and returns at once; the
        // non-waiting refresh still proves the snapshot there when nobody else committed.
        if self.shared.held_by_this_thread() {
            return self.view_after_refresh(|| self.refresh_without_waiting());
        }
        self.view_after_refresh(|| self.refresh())
    }

    /// The view once the proof is older than the bound: refreshed by `refresh`, else closed.
    #[cold]
    fn view_after_refresh(&self, refresh: impl FnOnce() -> Result<()>) -> View {
        let live = self.shared.snapshot.load();
        if live.unavailable.is_some() {
            return View::Live(live);
        }
        drop(live);
        match refresh() {
            Ok(()) if self.shared.is_fresh() => View::Live(self.shared.snapshot.load()),
            Ok(()) => View::closed(&self.policy, "cannot tell whether another process changed the store"),
            Err(e) => View::closed(&self.policy, &format!("cannot tell whether another process changed the store: {e}")),
        }
    }

    /// How much longer the answers a check gives now stay proven current: the time left before the
    /// published snapshot's proof is older than [`CROSS_PROCESS_BOUND`] (zero when it already is;
    /// a check then refreshes first, or denies). A cache of check answers (the Kotlin and Swift
    /// gates) reads this *before* the check and serves the answer no longer than that, so no cached
    /// allow outlives the bound counted from the proof, not from the check.
    pub fn proof_remaining(&self) -> std::time::Duration {
        self.shared.proof_remaining()
    }

    /// May `feature` run for `subject` now? See [`Snapshot::check`].
    pub fn check(&self, subject: &str, feature: &str, scope: Option<&str>) -> Result<Decision> {
        // The freshness check wraps the fast gate; the clock is read only when the answer depends
        // on time, and then never before the high-water mark (`now` advances it). A clock with a
        // cheap bracket (the system clock) is read exactly only when the bound reaches an expiry;
        // its lower end (a time that has passed) advances the mark.
        let at_most =
            || self.clock.bracket().map(|(low, high)| Timestamp(high.millis().max(self.shared.not_before_high_water(low).millis())));
        self.view().check_bracketed(subject, feature, scope, at_most, || self.now())
    }

    /// One category's status for a subject.
    pub fn status(&self, subject: &str, category: &str) -> Result<CategoryStatus> {
        self.view_waiting().status(subject, category, self.now())
    }

    /// Every category's status for a subject, in policy order.
    pub fn statuses(&self, subject: &str) -> Result<Vec<CategoryStatus>> {
        self.view_waiting().statuses(subject, self.now())
    }

    /// Should the app show the consent prompt for this category now?
    pub fn should_ask(&self, subject: &str, category: &str) -> Result<bool> {
        self.view_waiting().should_ask(subject, category, self.now())
    }

    /// The device's current state of an OS permission.
    pub fn os_state(&self, permission: OsPermission) -> OsState {
        self.view_waiting().os_state(permission)
    }

    // ----- observers -----

    /// Registers a listener for status changes of one subject or all. It is called once per
    /// category at registration with the current state, then after each commit that changes a status.
    /// A subject that no write would accept (empty, too long, control characters; for a subject
    /// the store does not hold, also the strict rule of `input::check_subject`) is refused with
    /// `InvalidInput`, registering nothing.
    pub fn observe(&self, watch: Watch, observer: Arc<dyn ConsentObserver>) -> Result<Registration> {
        if let Watch::Subject(subject) = &watch {
            check_subject_in(subject, || self.shared.snapshot.load().subjects.get(subject).is_some())?;
        }
        let now = self.now();
        let snapshot = &self.shared.snapshot;
        Ok(self.shared.registry.observe(watch, observer, |watch| {
            let snap = snapshot.load_full();
            let subjects: Vec<String> = match watch {
                Watch::Subject(s) => vec![s.clone()],
                Watch::All => {
                    let mut all: Vec<String> = snap.subjects.keys().cloned().collect();
                    crate::order::sort_by_less(&mut all, |a, b| a < b);
                    all
                }
            };
            let mut initial = Vec::new();
            for subject in subjects {
                for c in snap.statuses(&subject, now).unwrap_or_default() {
                    initial.push(StatusChange {
                        subject: subject.clone(),
                        category: c.category,
                        status: c.status,
                        since: c.since,
                        generation: snap.generation,
                    });
                }
            }
            (snap.generation, initial)
        }))
    }

    /// Registers a hook called synchronously after every commit, before the write returns, and
    /// after every catch-up with another process's commits. It must be quick. It may read
    /// (history, export, verify, pending_sync, checks); a write from it to this store fails with
    /// [`crate::Error::WriteFromHook`].
    pub fn on_commit(&self, hook: Arc<dyn CommitHook>) -> Registration {
        self.shared.registry.hook(hook)
    }
}

/// A snapshot to answer from: the live one, or a closed stand-in (denies consent-gated features).
pub(crate) enum View {
    Live(arc_swap::Guard<Arc<Snapshot>>),
    Closed(Box<Snapshot>),
}

impl View {
    fn closed(policy: &Arc<Policy>, why: &str) -> View {
        let mut snapshot = Snapshot::empty(policy.clone());
        snapshot.unavailable = Some(why.to_string());
        View::Closed(Box::new(snapshot))
    }
}

impl std::ops::Deref for View {
    type Target = Snapshot;
    fn deref(&self) -> &Snapshot {
        match self {
            View::Live(s) => s,
            View::Closed(s) => s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Action, ReasonCode, Source};

    fn granted_store(dir: &Path) -> ConsentStore {
        let store = ConsentStore::open(dir.join("consent.db"), Policy::builtin()).unwrap();
        store.record(&DecisionInput::new("alice", "usage_statistics", Action::Grant, Source::Settings)).unwrap();
        store
    }

    /// A dropped store's probe thread holds its shared state for the moment of one probe; a store
    /// opened meanwhile (another policy version, or read-write again) must open, not be refused as
    /// if the dropped one were still open.
    #[test]
    fn a_store_reopened_while_the_dropped_ones_probe_still_holds_its_state_opens() {
        let dir = tempfile::tempdir().unwrap();
        let store = granted_store(dir.path());
        let held_by_probe = store.shared.clone();
        drop(store);
        let mut newer = Policy::builtin();
        newer.version = format!("{}-newer", newer.version);
        let reopened = ConsentStore::open(dir.path().join("consent.db"), newer).expect("the dropped store is not open any more");
        assert!(reopened.check("alice", "usage_analytics", None).unwrap().allowed, "the new store reads the file");
        drop(reopened);
        let again = ConsentStore::open(dir.path().join("consent.db"), Policy::builtin()).expect("read-write again");
        assert!(!Arc::ptr_eq(&again.shared, &held_by_probe), "a new store does not join the dying state");
        // While a store is open, a second read-write one is still refused.
        let err = ConsentStore::open(dir.path().join("consent.db"), Policy::builtin()).err().expect("refused");
        assert!(err.to_string().contains("already open in this process"), "{err}");
        drop(held_by_probe);
    }

    /// A store dropped on another thread a moment after this thread began to open the same file
    /// (the bindings' timer or a call in flight holding it last) does not make the open fail.
    #[test]
    fn an_open_waits_for_a_store_being_released_on_another_thread() {
        let dir = tempfile::tempdir().unwrap();
        let store = granted_store(dir.path());
        let (go, released) = std::sync::mpsc::channel::<()>();
        let holder = std::thread::spawn(move || {
            released.recv().unwrap();
            // Released once the open below is well past its file work and at its claim (the
            // order, not a time, is what the test asserts: the wait allows 500 ms).
            std::thread::sleep(std::time::Duration::from_millis(60));
            drop(store);
        });
        go.send(()).unwrap();
        let mut newer = Policy::builtin();
        newer.version = format!("{}-newer", newer.version);
        let reopened = ConsentStore::open(dir.path().join("consent.db"), newer).expect("waited for the release");
        assert!(reopened.check("alice", "usage_analytics", None).unwrap().allowed);
        holder.join().unwrap();
    }

    fn reader_is_open(store: &ConsentStore) -> bool {
        lock(&store.ledger).as_ref().is_some_and(LedgerSlot::is_open)
    }

    /// The read connection is not opened by an open, only by the first read; it answers like the
    /// store's own file; suspend closes it and the next read (after resume) opens it again; a
    /// closed store still refuses reads.
    #[test]
    fn the_read_connection_opens_on_the_first_read_and_a_closed_store_still_refuses() {
        let dir = tempfile::tempdir().unwrap();
        drop(granted_store(dir.path()));
        let store = ConsentStore::open(dir.path().join("consent.db"), Policy::builtin()).unwrap();
        assert!(!reader_is_open(&store), "an open does not open the read connection");
        assert!(store.check("alice", "usage_analytics", None).unwrap().allowed, "checks need no read connection");
        assert_eq!(store.history("alice").unwrap().len(), 1, "the first read opens it and reads the store's file");
        assert!(reader_is_open(&store));
        assert_eq!(store.export("alice").unwrap().history.len(), 1);
        store.suspend();
        assert!(!reader_is_open(&store), "suspend closes the read connection");
        assert!(matches!(store.history("alice"), Err(crate::Error::Suspended(_))));
        store.resume().unwrap();
        store.record(&DecisionInput::new("alice", "usage_statistics", Action::Withdraw, Source::Settings)).unwrap();
        assert_eq!(store.history("alice").unwrap().len(), 2, "opened again after resume, and current");
        store.close("closed by the test".into());
        assert!(matches!(store.history("alice"), Err(crate::Error::Closed(_))), "a closed store refuses reads");
        assert!(matches!(store.export("alice"), Err(crate::Error::Closed(_))));
        assert!(!store.check("alice", "usage_analytics", None).unwrap().allowed);
    }

    /// A read connection opened after the file was moved away or replaced does not read (or
    /// create) another file at the path: the read fails, naming why.
    #[test]
    fn a_read_after_the_file_was_moved_away_or_replaced_refuses_and_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("consent.db");
        let store = granted_store(dir.path());
        let moved = dir.path().join("moved.db");
        for suffix in ["", "-wal", "-shm"] {
            let from = PathBuf::from(format!("{}{suffix}", path.display()));
            if from.exists() {
                std::fs::rename(&from, format!("{}{suffix}", moved.display())).unwrap();
            }
        }
        let err = store.history("alice").unwrap_err();
        assert!(err.to_string().contains("not the one this store opened"), "{err}");
        assert!(!path.exists(), "no new file was created in its place");
        drop(store);
        // Replaced by another ConsentKit file (another erasure key) before the first read.
        let store = ConsentStore::open(&moved, Policy::builtin()).unwrap();
        drop(granted_store(dir.path()));
        std::fs::rename(&path, &moved).unwrap();
        let err = store.history("alice").unwrap_err();
        assert!(err.to_string().contains("not the one this store opened"), "{err}");
    }

    fn on_disk_contains(path: &Path, needle: &str) -> bool {
        ["", "-wal"].iter().any(|suffix| {
            std::fs::read(format!("{}{suffix}", path.display())).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
        })
    }

    /// The file and its WAL as they are now, copied to `to`: what a crash at this moment leaves.
    fn crash_image(path: &Path, to: &Path) {
        std::fs::copy(path, to).unwrap();
        std::fs::copy(format!("{}-wal", path.display()), format!("{}-wal", to.display())).unwrap();
    }

    fn wal_len(path: &Path) -> u64 {
        std::fs::metadata(format!("{}-wal", path.display())).map_or(0, |m| m.len())
    }

    fn scrub_marker(path: &Path) -> Option<String> {
        crate::db::meta(&rusqlite::Connection::open(path).unwrap(), crate::db::SCRUB_KEY).unwrap()
    }

    /// A crash after an erasure committed and before its WAL checkpoint (a reader was in the
    /// way): the file says a scrub is pending, and the next open scrubs.
    #[test]
    fn a_crash_between_an_erasure_and_its_scrub_is_scrubbed_by_the_next_open() {
        let dir = tempfile::tempdir().unwrap();
        let store = granted_store(dir.path());
        let subject = "erase-me-7c41d0e2";
        store.record(&DecisionInput::new(subject, "usage_statistics", Action::Grant, Source::Settings)).unwrap();
        let path = dir.path().join("consent.db");
        let reader = rusqlite::Connection::open(&path).unwrap();
        reader.execute_batch("BEGIN").unwrap();
        let _: i64 = reader.query_row("SELECT count(*) FROM events", [], |r| r.get(0)).unwrap();
        assert!(store.erase(subject, Source::Settings).unwrap().scrub_pending, "the reader held the WAL");
        let crashed = dir.path().join("crashed.db");
        crash_image(&path, &crashed);
        assert!(on_disk_contains(&crashed, subject), "the crash left the erased content in the WAL");
        drop((reader, store));
        let reopened = ConsentStore::open(&crashed, Policy::builtin()).unwrap();
        assert!(!on_disk_contains(&crashed, subject), "the open scrubbed it");
        assert!(reopened.history(subject).unwrap().is_empty());
        assert!(reopened.check("alice", "usage_analytics", None).unwrap().allowed);
        drop(reopened);
        assert!(scrub_marker(&crashed).is_some_and(|m| m.starts_with("clean:")), "cleared after the checkpoint");
    }

    /// A removal appended by a writer that does not keep the marker (an older version on the same
    /// file) after the last finished scrub: the marker still says clean, but the removal record
    /// after its head makes the next open scrub.
    #[test]
    fn a_removal_by_a_writer_that_leaves_the_marker_clean_is_still_scrubbed_at_the_next_open() {
        let dir = tempfile::tempdir().unwrap();
        let store = granted_store(dir.path());
        let subject = "erase-me-old-writer-5d2a";
        store.record(&DecisionInput::new(subject, "usage_statistics", Action::Grant, Source::Settings)).unwrap();
        let path = dir.path().join("consent.db");
        let clean = scrub_marker(&path).expect("a finished scrub left its marker");
        assert!(clean.starts_with("clean:"), "{clean}");
        let reader = rusqlite::Connection::open(&path).unwrap();
        reader.execute_batch("BEGIN").unwrap();
        let _: i64 = reader.query_row("SELECT count(*) FROM events", [], |r| r.get(0)).unwrap();
        assert!(store.erase(subject, Source::Settings).unwrap().scrub_pending, "the reader held the WAL");
        // The older writer's erasure: the same removal, but the marker left as it was.
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute("UPDATE meta SET value = ?2 WHERE key = ?1", [crate::db::SCRUB_KEY, &clean])
            .unwrap();
        let crashed = dir.path().join("crashed.db");
        crash_image(&path, &crashed);
        assert!(on_disk_contains(&crashed, subject), "the crash left the erased content in the WAL");
        drop((reader, store));
        let reopened = ConsentStore::open(&crashed, Policy::builtin()).unwrap();
        assert!(!on_disk_contains(&crashed, subject), "the open found the removal record and scrubbed");
        assert!(reopened.history(subject).unwrap().is_empty());
    }

    /// With no removal since the last finished scrub, an open does not checkpoint (the WAL a
    /// crash left stays as it is); a file of an older version (no marker) is scrubbed once.
    #[test]
    fn an_open_checkpoints_only_when_the_file_marks_a_scrub_pending() {
        let dir = tempfile::tempdir().unwrap();
        let store = granted_store(dir.path());
        let path = dir.path().join("consent.db");
        let subject = "erase-me-too-0b9e";
        store.record(&DecisionInput::new(subject, "usage_statistics", Action::Grant, Source::Settings)).unwrap();
        assert!(!store.erase(subject, Source::Settings).unwrap().scrub_pending, "no reader: scrubbed at once");
        store.record(&DecisionInput::new("bob", "usage_statistics", Action::Grant, Source::Settings)).unwrap();
        let plain = dir.path().join("plain.db");
        crash_image(&path, &plain);
        let raw = rusqlite::Connection::open(&path).unwrap();
        raw.execute("DELETE FROM meta WHERE key = ?1", [crate::db::SCRUB_KEY]).unwrap();
        let older = dir.path().join("older.db");
        crash_image(&path, &older);
        drop((raw, store));
        assert!(wal_len(&plain) > 0 && wal_len(&older) > 0);
        let opened = ConsentStore::open(&plain, Policy::builtin()).unwrap();
        assert!(wal_len(&plain) > 0, "no scrub pending: the open did not checkpoint");
        assert!(opened.check("bob", "usage_analytics", None).unwrap().allowed, "the WAL's commits are served");
        drop(opened);
        let before = wal_len(&older);
        let opened = ConsentStore::open(&older, Policy::builtin()).unwrap();
        // Truncated, then the marker's one page written (WAL header, one frame of a 4 KiB page).
        let one_frame = 32 + 24 + 4096;
        assert!(before > one_frame && wal_len(&older) <= one_frame, "no marker (an older version's file): scrubbed at the open");
        let d = opened.check("bob", "usage_analytics", None).unwrap();
        assert!(d.allowed, "{d:?} {:?}", opened.unavailable());
        drop(opened);
        assert!(scrub_marker(&older).is_some_and(|m| m.starts_with("clean:")));
    }

    /// A removal committed after a scrub read the marker keeps it pending: the clear applies
    /// only to the marker the checkpoint was started with.
    #[test]
    fn the_scrub_marker_is_cleared_only_if_no_removal_came_since_it_was_read() {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::schema::open(&dir.path().join("m.db"), crate::schema::OpenMode::ReadWrite).unwrap();
        assert!(crate::db::scrub_marked_pending(&conn).unwrap(), "absent: pending");
        crate::db::clear_scrub_marker(&conn, None, 0).unwrap();
        assert!(!crate::db::scrub_marked_pending(&conn).unwrap());
        crate::db::remove_events(&conn, &[], 7).unwrap();
        let seen = crate::db::scrub_marker(&conn).unwrap();
        assert_eq!(seen.as_deref(), Some("7"));
        crate::db::remove_events(&conn, &[], 9).unwrap(); // another removal commits meanwhile
        crate::db::clear_scrub_marker(&conn, seen.as_deref(), 0).unwrap();
        assert!(crate::db::scrub_marked_pending(&conn).unwrap(), "still pending for the later removal");
        crate::db::clear_scrub_marker(&conn, Some("9"), 0).unwrap();
        assert!(!crate::db::scrub_marked_pending(&conn).unwrap());
    }

    /// Past the bound, with a probe or write holding the writer connection, the gate answers
    /// from a closed view at once (it never waits), but a status query waits and tells the truth
    /// instead of "not asked".
    #[test]
    fn a_status_past_the_bound_waits_for_a_probe_in_progress_and_the_check_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(granted_store(dir.path()));
        let (held, holding) = std::sync::mpsc::channel::<()>();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let prober = {
            let store = store.clone();
            std::thread::spawn(move || {
                let _writer = lock(&store.writer);
                held.send(()).unwrap();
                released.recv().unwrap();
            })
        };
        holding.recv().unwrap();
        store.shared.age_proof_past_bound();
        let d = store.check("alice", "usage_analytics", None).unwrap();
        assert_eq!(d.reasons.iter().map(|r| r.code).collect::<Vec<_>>(), [ReasonCode::StoreUnavailable], "the gate did not wait");
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            release.send(()).unwrap();
        });
        let status = store.status("alice", "usage_statistics").unwrap();
        assert_eq!(status.status, crate::model::Status::Granted, "the status waited for the probe, then read the store");
        assert!(store.should_ask("alice", "usage_statistics").is_ok_and(|ask| !ask));
        prober.join().unwrap();
        releaser.join().unwrap();
    }

    #[test]
    fn the_proof_remaining_counts_down_from_the_last_proof_and_is_zero_past_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let store = granted_store(dir.path());
        store.suspend(); // nothing proves the snapshot again meanwhile
        store.shared.age_proof(std::time::Duration::from_millis(200));
        let left = store.proof_remaining();
        assert!(left <= std::time::Duration::from_millis(50), "200 ms of the 250 ms bound are gone: {left:?}");
        store.shared.age_proof_past_bound();
        assert_eq!(store.proof_remaining(), std::time::Duration::ZERO);
        store.resume().unwrap();
        assert!(store.proof_remaining() > std::time::Duration::from_millis(200), "resumed and proven again");
    }

    /// Inside a commit hook past the bound, a status query proves the snapshot the way the gate
    /// does there (no one else committed) instead of answering from a closed view.
    #[test]
    fn a_status_in_a_commit_hook_past_the_bound_reads_like_the_check() {
        struct Hook {
            store: std::sync::Mutex<Option<Arc<ConsentStore>>>,
            seen: std::sync::Mutex<Vec<(bool, crate::model::Status)>>,
        }
        impl crate::CommitHook for Hook {
            fn committed(&self, _generation: u64) {
                let Some(store) = self.store.lock().unwrap().clone() else { return };
                store.shared.age_proof_past_bound();
                let status = store.status("alice", "usage_statistics").unwrap().status;
                let allowed = store.check("alice", "usage_analytics", None).unwrap().allowed;
                self.seen.lock().unwrap().push((allowed, status));
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(granted_store(dir.path()));
        let hook = Arc::new(Hook { store: std::sync::Mutex::new(Some(store.clone())), seen: Default::default() });
        let _registration = store.on_commit(hook.clone());
        store.record(&DecisionInput::new("alice", "photos_media", Action::Grant, Source::Settings)).unwrap();
        hook.store.lock().unwrap().take();
        assert_eq!(*hook.seen.lock().unwrap(), [(true, crate::model::Status::Granted)]);
    }

    /// A refresh that read the suspended flag before `suspend` took the locks (iOS: the probe
    /// thread racing `suspend`) must not start its transaction once `suspend` has returned: the
    /// flag is read again under the locks. Before the fix this refresh returned Ok.
    #[test]
    fn a_refresh_waiting_for_the_locks_while_the_store_suspends_starts_no_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(granted_store(dir.path()));
        let (held, holding) = std::sync::mpsc::channel::<()>();
        let (release, released) = std::sync::mpsc::channel::<()>();
        // Stands in for `suspend`: holds both locks while the flag is set.
        let suspender = {
            let store = store.clone();
            std::thread::spawn(move || {
                let _published = store.shared.lock();
                let _writer = lock(&store.writer);
                held.send(()).unwrap();
                released.recv().unwrap();
                store.shared.suspended.store(true, std::sync::atomic::Ordering::Release);
            })
        };
        holding.recv().unwrap();
        let refresher = {
            let store = store.clone();
            std::thread::spawn(move || store.refresh())
        };
        // Let the refresh pass its first look at the flag and wait for the locks (if it is slower,
        // it sees the flag set at its first look: the assertion below holds either way).
        std::thread::sleep(std::time::Duration::from_millis(100));
        release.send(()).unwrap();
        suspender.join().unwrap();
        let result = refresher.join().unwrap();
        assert!(matches!(result, Err(crate::Error::Suspended(_))), "a refresh ran after suspend returned: {result:?}");
    }

    #[test]
    fn a_check_past_the_bound_refreshes_inline_and_then_allows() {
        let dir = tempfile::tempdir().unwrap();
        let store = granted_store(dir.path());
        store.suspend(); // the probe thread stops confirming
        store.shared.suspended.store(false, std::sync::atomic::Ordering::Release); // but an inline refresh may run
        store.shared.age_proof_past_bound();
        assert!(store.check("alice", "usage_analytics", None).unwrap().allowed, "refreshed inline, then allowed");
        assert!(store.shared.is_fresh(), "the inline refresh confirmed the snapshot");
    }

    #[test]
    fn a_check_past_the_bound_that_cannot_refresh_denies() {
        let dir = tempfile::tempdir().unwrap();
        let store = granted_store(dir.path());
        assert!(store.check("alice", "usage_analytics", None).unwrap().allowed);
        store.suspend();
        store.shared.age_proof_past_bound();
        assert!(!store.shared.is_fresh(), "a proof older than the bound is not fresh");
        let d = store.check("alice", "usage_analytics", None).unwrap();
        assert!(!d.allowed);
        assert_eq!(d.reasons.iter().map(|r| r.code).collect::<Vec<_>>(), [ReasonCode::StoreUnavailable]);
        assert!(store.check("alice", "calling", None).unwrap().allowed, "contract features stay allowed");
        store.resume().unwrap();
        assert!(store.check("alice", "usage_analytics", None).unwrap().allowed);
    }

    #[test]
    fn a_record_on_a_big_store_publishes_only_the_changed_subject() {
        let dir = tempfile::tempdir().unwrap();
        let store = ConsentStore::open(dir.path().join("consent.db"), Policy::builtin()).unwrap();
        let batch: Vec<DecisionInput> =
            (0..3000).map(|i| DecisionInput::new(&format!("user-{i}"), "usage_statistics", Action::Grant, Source::Settings)).collect();
        store.record_batch(&batch).unwrap();
        let before = store.snapshot();
        store.record(&DecisionInput::new("user-42", "usage_statistics", Action::Withdraw, Source::Settings)).unwrap();
        let after = store.snapshot();
        assert_eq!(after.generation, before.generation + 1);
        assert_eq!((before.subjects.len(), after.subjects.len()), (3000, 3000));
        assert!(before.check("user-42", "usage_analytics", None, store.now()).unwrap().allowed, "the old snapshot is unchanged");
        assert!(!after.check("user-42", "usage_analytics", None, store.now()).unwrap().allowed);
        for i in (0..3000).filter(|i| *i != 42) {
            let k = format!("user-{i}");
            assert!(Arc::ptr_eq(&before.subjects[k.as_str()], &after.subjects[k.as_str()]), "{k} was not copied");
        }
        assert!(!Arc::ptr_eq(&before.subjects["user-42"], &after.subjects["user-42"]));
        assert_eq!(after.subjects.shared_leaves_with(&before.subjects), before.subjects.leaf_count() - 1, "one leaf copied");
        // What was published is what the file proves: a reopen serves the same state.
        drop((before, store));
        let reopened = ConsentStore::open(dir.path().join("consent.db"), Policy::builtin()).unwrap();
        let again = reopened.snapshot();
        for (k, v) in after.subjects.iter() {
            assert_eq!(again.subjects.get(k).map(|s| &**s), Some(&**v), "{k}");
        }
        assert_eq!(again.subjects.len(), 3000);
    }

    #[test]
    fn a_state_row_in_another_writer_s_text_is_proven_by_the_history_and_rewritten_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("consent.db");
        drop(granted_store(dir.path()));
        // The same state in other text (JSON, as schema v4 and older stored it), sealed over the
        // binary row: the digest of the stored row does not match.
        let conn = rusqlite::Connection::open(&path).unwrap();
        let row: Vec<u8> = conn.query_row("SELECT state FROM subjects WHERE subject='alice'", [], |r| r.get(0)).unwrap();
        let state = crate::state::SubjectState::from_row(&row).unwrap();
        let other_text = serde_json::to_string_pretty(&state).unwrap();
        conn.execute("UPDATE subjects SET state=?1 WHERE subject='alice'", [&other_text]).unwrap();
        drop(conn);
        let store = ConsentStore::open(&path, Policy::builtin()).unwrap();
        assert!(store.check("alice", "usage_analytics", None).unwrap().allowed, "the history proves the grant");
        drop(store);
        let conn = rusqlite::Connection::open(&path).unwrap();
        let rewritten: Vec<u8> = conn.query_row("SELECT state FROM subjects WHERE subject='alice'", [], |r| r.get(0)).unwrap();
        assert_eq!(rewritten, row, "rewritten in this version's row");
        let (_, _, sum): (std::collections::HashMap<String, Arc<crate::state::SubjectState>>, _, _) =
            crate::state_proof::read_table(&conn).unwrap();
        let (seq, hash) = crate::db::head(&conn).unwrap().unwrap();
        assert_eq!(crate::db::meta(&conn, crate::state_proof::DIGEST_KEY).unwrap(), Some(sum.seal(seq, &hash)), "sealed again");
    }

    /// A store at `consent.db` on a manual clock at t0 (2026-01-15 09:00), where alice granted
    /// usage statistics.
    fn alice_granted_at_t0() -> (tempfile::TempDir, Timestamp, crate::ManualClock, ConsentStore) {
        let dir = tempfile::tempdir().unwrap();
        let t0 = Timestamp::parse("2026-01-15T09:00:00Z").unwrap();
        let clock = crate::ManualClock::new(t0);
        let path = dir.path().join("consent.db");
        let store = ConsentStore::open_with(&path, Arc::new(Policy::builtin()), Arc::new(clock.clone()), OpenMode::ReadWrite).unwrap();
        store.record(&DecisionInput::new("alice", "usage_statistics", Action::Grant, Source::Settings)).unwrap();
        (dir, t0, clock, store)
    }

    /// Another process saw the time move past an expiry and persisted its mark (a mark-only
    /// commit: no event, same head); then the device clock was set back. This store, idle all the
    /// while, never read the later time itself: its catch-up takes the file's mark, so the
    /// expired grant stays expired here too.
    #[test]
    fn a_later_mark_another_process_persisted_is_taken_without_a_new_event() {
        let (dir, t0, clock, store) = alice_granted_at_t0();
        let path = dir.path().join("consent.db");
        assert!(store.check("alice", "usage_analytics", None).unwrap().allowed);
        // The other process, at a time past the 13-month lifetime.
        let later = Timestamp::parse("2027-06-01T00:00:00Z").unwrap();
        let other = Connection::open(&path).unwrap();
        crate::db::set_time_mark(&other, later.millis()).unwrap();
        // The clock set back (to a day after the grant), then this store catches up.
        clock.set(Timestamp(t0.millis() + 86_400_000));
        store.refresh().unwrap();
        assert!(store.now() >= later, "the file's mark is this store's too: {}", store.now());
        let d = store.check("alice", "usage_analytics", None).unwrap();
        assert_eq!(d.reasons.first().map(|r| r.code), Some(ReasonCode::ConsentExpired), "{d:?}");
    }

    /// A write right after another process moved the file's mark (before any probe of this
    /// store saw it) is stamped at that mark, not at this store's older time: the subject's
    /// history stays in time order (an export of it imports again), and a grant far behind it is
    /// `ClockBehind` here as it would be in the other process.
    #[test]
    fn a_write_is_stamped_at_the_mark_its_catch_up_found() {
        let (dir, t0, clock, store) = alice_granted_at_t0();
        let path = dir.path().join("consent.db");
        let later = Timestamp::parse("2026-03-01T00:00:00Z").unwrap();
        crate::db::set_time_mark(&Connection::open(&path).unwrap(), later.millis()).unwrap();
        clock.set(Timestamp(t0.millis() + 60_000));
        let withdrawal = store.record(&DecisionInput::new("alice", "usage_statistics", Action::Withdraw, Source::Settings)).unwrap();
        assert!(withdrawal.at >= later, "stamped at {}, the file's mark is {later}", withdrawal.at);
        let grant = store.record(&DecisionInput::new("bob", "usage_statistics", Action::Grant, Source::Settings));
        assert!(matches!(grant, Err(crate::Error::ClockBehind { .. })), "{grant:?}");
    }
}
