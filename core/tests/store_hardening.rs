//! Regression tests for the store's hardening (issue #9 items 5-10): a clock set back, a
//! read-only store in the same process, hooks and observers that read, erasure with a reader
//! holding the WAL, Apple durability pragmas, and errors that mean what they say.

mod common;

use std::path::Path;
use std::sync::mpsc::channel;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use consentkit_core::*;

fn withdraw(f: &Fixture, subject: &str, category: &str) {
    f.record(subject, category, Action::Withdraw, Source::Settings);
}

// ----- 5. clock set back -----

#[test]
fn a_clock_set_back_does_not_revive_an_expired_grant() {
    let mut f = Fixture::ucanywhere();
    f.grant("alice", "usage_statistics"); // 2026-01-15, lifetime P13M
    assert!(f.allowed("alice", "usage_analytics"));
    f.clock.set(ts("2027-03-01T00:00:00Z"));
    assert!(!f.allowed("alice", "usage_analytics"), "expired after 13 months");
    f.clock.set(ts("2026-06-01T00:00:00Z"));
    assert!(!f.allowed("alice", "usage_analytics"), "the clock went back: expiry is never evaluated before the time already seen");
    assert!(f.store.now() >= ts("2027-03-01T00:00:00Z"));
    // Persisted: a restart with the clock still set back keeps the grant expired.
    f.reopen(None);
    assert!(!f.allowed("alice", "usage_analytics"), "after a restart too");
    // A receipt written now is not stamped before the high-water mark either; a grant, whose
    // lifetime would count from that mark, is refused until the clock reaches it.
    let r = f.record("bob", "usage_statistics", Action::Refuse, Source::Settings);
    assert!(r.at >= ts("2027-03-01T00:00:00Z"), "receipt at {}", r.at);
    let grant = f.store.record(&DecisionInput::new("bob", "usage_statistics", Action::Grant, Source::Settings));
    assert!(matches!(grant, Err(Error::ClockBehind { .. })), "{grant:?}");
}

/// The store file's bytes, WAL included.
fn file_bytes(path: &Path) -> (Vec<u8>, Vec<u8>) {
    let wal = std::fs::read(path.with_extension("db-wal")).unwrap_or_default();
    (std::fs::read(path).unwrap(), wal)
}

#[test]
fn a_refused_write_neither_changes_the_file_nor_moves_the_store_s_time() {
    let mut f = Fixture::ucanywhere();
    f.grant("alice", "usage_statistics");
    f.reopen(None);
    let before = file_bytes(&f.path);
    // The clock runs ahead (a mistyped `--now`, a device clock set to 2099), and every write is refused.
    let real = f.clock.now();
    f.clock.set(ts("2099-01-01T00:00:00Z"));
    let refused = [
        DecisionInput::new("alice", "nope", Action::Withdraw, Source::Settings),
        DecisionInput::new("", "usage_statistics", Action::Grant, Source::Settings),
        DecisionInput::new("bob", "usage_statistics", Action::Grant, Source::Support),
    ];
    for d in &refused {
        assert!(f.store.record(d).is_err(), "{d:?}");
    }
    assert!(f
        .store
        .record_batch(&[DecisionInput::new("bob", "usage_statistics", Action::Grant, Source::Settings), refused[0].clone()])
        .is_err());
    assert!(f.store.erase("", Source::Support).is_err());
    assert!(f.store.import_json("{}").is_err());
    assert!(f.store.set_under_age("", true, Source::Support).is_err());
    f.clock.set(real);
    f.reopen(None);
    assert!(file_bytes(&f.path) == before, "a refused write changed the file");
    // The store's time did not jump to 2099: a grant now is in force.
    assert!(f.store.now() < ts("2030-01-01T00:00:00Z"), "store time {}", f.store.now());
    f.grant("bob", "usage_statistics");
    assert!(f.allowed("bob", "usage_analytics"));
}

/// Moves a copy of the store as it is now (a backup) over its path, as `mv backup.db consent.db`
/// would while the app runs.
fn replace_with_a_copy(f: &Fixture) {
    let copy = f.dir.path().join("copy.db");
    let conn = rusqlite::Connection::open(&f.path).unwrap();
    conn.execute("VACUUM INTO ?1", [copy.to_str().unwrap()]).unwrap();
    drop(conn);
    std::fs::rename(&copy, &f.path).unwrap();
    for stale in ["db-wal", "db-shm"] {
        let _ = std::fs::remove_file(f.path.with_extension(stale));
    }
}

#[test]
fn a_withdrawal_into_a_file_replaced_while_open_is_refused_never_lost() {
    let mut f = Fixture::ucanywhere();
    f.grant("alice", "usage_statistics");
    replace_with_a_copy(&f);
    // Written to the replaced file, the withdrawal would return and be gone at the next start,
    // where the copy (granted) is what the path holds.
    let err = f.store.record(&DecisionInput::new("alice", "usage_statistics", Action::Withdraw, Source::Settings)).unwrap_err();
    assert!(err.is_store_problem(), "{err}");
    assert!(err.to_string().contains("replaced"), "{err}");
    assert!(!f.allowed("alice", "usage_analytics"), "the store closed: checks fail closed");
    assert!(f.store.unavailable().is_some());
    // Reopened on what the path holds now, the withdrawal is recorded there.
    f.reopen(None);
    withdraw(&f, "alice", "usage_statistics");
    f.reopen(None);
    assert!(!f.allowed("alice", "usage_analytics"));
}

#[test]
fn a_file_replaced_while_open_stops_the_checks_at_the_next_refresh() {
    let f = Fixture::ucanywhere();
    f.grant("alice", "usage_statistics");
    replace_with_a_copy(&f);
    assert!(f.store.refresh().is_err(), "the probe sees the file is not the one open");
    let d = f.store.check("alice", "usage_analytics", None).unwrap();
    assert!(!d.allowed && d.reasons.iter().any(|r| r.code == ReasonCode::StoreUnavailable), "{d:?}");
}

// ----- 6. a read-only store in the same process -----

#[test]
fn a_read_only_store_in_the_same_process_reads_the_same_snapshot() {
    let f = Fixture::ucanywhere();
    f.grant("alice", "usage_statistics");
    let ro = ConsentStore::open_with(&f.path, f.store.policy().clone(), Arc::new(f.clock.clone()), OpenMode::ReadOnly).unwrap();
    assert!(ro.check("alice", "usage_analytics", None).unwrap().allowed);
    withdraw(&f, "alice", "usage_statistics");
    assert!(!ro.check("alice", "usage_analytics", None).unwrap().allowed, "the withdrawal is seen the moment it returned");
    assert_eq!(ro.snapshot().generation, f.store.snapshot().generation);
}

#[test]
fn a_read_write_store_opened_after_a_read_only_one_shares_its_snapshot() {
    let f = Fixture::ucanywhere();
    f.grant("alice", "usage_statistics");
    let path = f.path.clone();
    let policy = f.store.policy().clone();
    let clock = f.clock.clone();
    let dir = f.dir;
    drop(f.store);
    let ro = ConsentStore::open_with(&path, policy.clone(), Arc::new(clock.clone()), OpenMode::ReadOnly).unwrap();
    assert!(ro.check("alice", "usage_analytics", None).unwrap().allowed);
    let rw = ConsentStore::open_with(&path, policy, Arc::new(clock), OpenMode::ReadWrite).unwrap();
    rw.record(&DecisionInput::new("alice", "usage_statistics", Action::Withdraw, Source::Settings)).unwrap();
    assert!(!ro.check("alice", "usage_analytics", None).unwrap().allowed);
    drop(dir);
}

#[test]
fn a_store_of_an_open_file_with_another_policy_version_is_refused() {
    let f = Fixture::ucanywhere();
    let mut other = (**f.store.policy()).clone();
    other.version = format!("{}-other", other.version);
    let err = ConsentStore::open_with(&f.path, Arc::new(other), Arc::new(f.clock.clone()), OpenMode::ReadOnly).err().unwrap();
    assert!(err.to_string().contains("already open in this process with policy version"), "{err}");
}

// ----- 7. hooks and observers may read -----

/// Runs `f` on a thread and fails the test (instead of hanging) if it does not finish in time.
fn finishes<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|_| panic!("{what} deadlocked"))
}

struct ReadingHook {
    store: Mutex<Option<Arc<ConsentStore>>>,
    seen: Mutex<Vec<String>>,
}

impl CommitHook for ReadingHook {
    fn committed(&self, generation: u64) {
        let Some(store) = self.store.lock().unwrap().clone() else { return };
        let mut seen = self.seen.lock().unwrap();
        let pending = store.pending_sync(100).map(|p| p.len()).map_err(|e| e.to_string());
        let history = store.history("alice").map(|h| h.len()).map_err(|e| e.to_string());
        let export = store.export("alice").map(|d| d.history.len()).map_err(|e| e.to_string());
        let verify = store.verify().map_err(|e| e.to_string());
        let allowed = store.check("alice", "usage_analytics", None).map(|d| d.allowed).map_err(|e| e.to_string());
        seen.push(format!(
            "gen {generation}: pending {pending:?} history {history:?} export {export:?} verify {verify:?} allowed {allowed:?}"
        ));
        let write = store.record(&DecisionInput::new("bob", "usage_statistics", Action::Grant, Source::Settings));
        seen.push(format!(
            "write: {}",
            match write {
                Err(Error::WriteFromHook(_)) => "refused".to_string(),
                other => format!("{other:?}"),
            }
        ));
    }
}

#[test]
fn commit_hooks_may_read_and_writes_from_them_are_refused() {
    let f = Fixture::ucanywhere();
    let store = Arc::new(f.store);
    let hook = Arc::new(ReadingHook { store: Mutex::new(Some(store.clone())), seen: Mutex::new(Vec::new()) });
    let _registration = store.on_commit(hook.clone());
    let s = store.clone();
    finishes("a commit hook that reads", move || {
        s.record(&DecisionInput::new("alice", "usage_statistics", Action::Grant, Source::Settings)).unwrap();
    });
    let seen = hook.seen.lock().unwrap().clone();
    hook.store.lock().unwrap().take();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen[0].contains("pending Ok(1) history Ok(1) export Ok(1) verify Ok(1) allowed Ok(true)"), "{}", seen[0]);
    assert_eq!(seen[1], "write: refused");
    assert!(store.history("bob").unwrap().is_empty(), "the refused write wrote nothing");
}

struct ReadingObserver {
    store: Arc<ConsentStore>,
    reads: std::sync::mpsc::Sender<usize>,
}

impl ConsentObserver for ReadingObserver {
    fn on_change(&self, change: &StatusChange) {
        if change.status == Status::Withdrawn {
            let n = self.store.history(&change.subject).map(|h| h.len()).unwrap_or(0)
                + self.store.pending_sync(10).map(|p| p.len()).unwrap_or(0);
            let _ = self.reads.send(n);
        }
    }
}

#[test]
fn observers_may_read_while_writes_go_on() {
    let f = Fixture::ucanywhere();
    let store = Arc::new(f.store);
    let (tx, rx) = channel();
    let _registration = store.observe(Watch::All, Arc::new(ReadingObserver { store: store.clone(), reads: tx }));
    let s = store.clone();
    finishes("an observer that reads", move || {
        for _ in 0..5 {
            s.record(&DecisionInput::new("alice", "usage_statistics", Action::Grant, Source::Settings)).unwrap();
            s.record(&DecisionInput::new("alice", "usage_statistics", Action::Withdraw, Source::Settings)).unwrap();
        }
    });
    let first = rx.recv_timeout(Duration::from_secs(30)).expect("the observer read");
    assert!(first >= 2, "the observer read the history and the outbox: {first}");
}

// ----- 8. erasure while a reader holds the WAL -----

fn on_disk_contains(path: &Path, needle: &str) -> bool {
    ["", "-wal"].iter().any(|suffix| {
        std::fs::read(format!("{}{suffix}", path.display())).is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
    })
}

#[test]
fn erasure_with_a_reader_in_the_way_reports_a_pending_scrub_and_finishes_it() {
    let f = Fixture::ucanywhere();
    let subject = "erase-me-9f3c2a71";
    f.grant(subject, "usage_statistics");
    f.grant("bob", "usage_statistics");
    assert!(on_disk_contains(&f.path, subject));
    // Another connection (a support tool, a backup) holds a read transaction on the old snapshot.
    let reader = rusqlite::Connection::open(&f.path).unwrap();
    reader.execute_batch("BEGIN").unwrap();
    let _: i64 = reader.query_row("SELECT count(*) FROM events", [], |r| r.get(0)).unwrap();
    let report = f.store.erase(subject, Source::Settings).expect("a committed erasure never fails because of the checkpoint");
    assert_eq!(report.erased_events, 1);
    assert!(
        report.scrub_pending || !on_disk_contains(&f.path, subject),
        "an erasure reported as finished must leave no byte of the subject in the database or the WAL"
    );
    assert!(report.scrub_pending, "the reader held the WAL: the report says the scrub is pending");
    assert!(f.store.history(subject).unwrap().is_empty());
    reader.execute_batch("COMMIT").unwrap();
    drop(reader);
    // The next opportunity (here: the next write) finishes the scrub.
    f.grant("carol", "usage_statistics");
    assert!(!on_disk_contains(&f.path, subject), "scrubbed at the next write");
    assert!(f.store.finish_scrub());
    assert_eq!(f.store.verify().unwrap(), 4);
}

#[test]
fn erasure_without_readers_scrubs_at_once() {
    let f = Fixture::ucanywhere();
    let subject = "erase-me-too-51d0";
    f.grant(subject, "usage_statistics");
    let report = f.store.erase(subject, Source::Settings).unwrap();
    assert!(!report.scrub_pending);
    assert!(!on_disk_contains(&f.path, subject));
}

// ----- 9. durability pragmas -----

#[test]
fn apple_platforms_get_fullfsync_and_every_connection_gets_its_durability_pragmas() {
    let apple = schema::durability_pragmas(true);
    for pragma in ["fullfsync", "checkpoint_fullfsync", "synchronous", "journal_size_limit"] {
        assert!(apple.iter().any(|(p, _)| *p == pragma), "{pragma} on Apple platforms");
    }
    assert!(!schema::durability_pragmas(false).iter().any(|(p, _)| *p == "fullfsync"), "F_FULLFSYNC exists only on Darwin");
    let dir = tempfile::tempdir().unwrap();
    let conn = schema::open(&dir.path().join("s.db"), OpenMode::ReadWrite).unwrap();
    let read = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
    assert_eq!(read("PRAGMA synchronous"), 2, "FULL");
    assert_eq!(read("PRAGMA journal_size_limit"), schema::JOURNAL_SIZE_LIMIT);
    let on_this_platform = i64::from(cfg!(target_vendor = "apple"));
    assert_eq!(read("PRAGMA fullfsync"), on_this_platform);
    assert_eq!(read("PRAGMA checkpoint_fullfsync"), on_this_platform);
    // The connection's other pragmas (set by schema.rs's own `PRAGMA name = value` statements).
    assert_eq!(read("PRAGMA foreign_keys"), 1);
    assert_eq!(read("PRAGMA secure_delete"), 1);
    assert_eq!(read("PRAGMA query_only"), 0);
    assert_eq!(read("PRAGMA application_id"), schema::APPLICATION_ID);
    assert_eq!(read("PRAGMA user_version"), schema::LATEST);
    let reader = schema::open(&dir.path().join("s.db"), OpenMode::ReadOnly).unwrap();
    assert_eq!(reader.query_row("PRAGMA query_only", [], |r| r.get::<_, i64>(0)).unwrap(), 1, "a read-only open cannot write");
}

// ----- 10. errors that mean what they say -----

#[test]
fn a_busy_file_is_a_retryable_error_not_an_unavailable_store() {
    let f = Fixture::ucanywhere();
    let other = rusqlite::Connection::open(&f.path).unwrap();
    other.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let err = f.store.record(&DecisionInput::new("alice", "usage_statistics", Action::Grant, Source::Settings)).unwrap_err();
    assert!(matches!(err, Error::Busy(_)), "{err:?}");
    assert!(err.is_retryable() && !err.is_store_problem());
    assert!(!err.to_string().to_lowercase().contains("unavailable"), "{err}");
    other.execute_batch("COMMIT").unwrap();
    f.grant("alice", "usage_statistics");
    assert_eq!(f.store.history("alice").unwrap().len(), 1, "the busy attempt wrote nothing; the retry wrote once");
}

/// Makes a file read-only for this process until dropped: `chmod a-w`, and for root (whom file
/// modes do not stop) the immutable attribute (`chattr +i`). Panics if the file stays writable.
struct ReadOnlyFile(std::path::PathBuf);

impl ReadOnlyFile {
    fn new(path: &Path) -> ReadOnlyFile {
        let mut mode = std::fs::metadata(path).unwrap().permissions();
        mode.set_readonly(true);
        std::fs::set_permissions(path, mode).unwrap();
        let file = ReadOnlyFile(path.to_path_buf());
        if std::fs::OpenOptions::new().append(true).open(path).is_ok() {
            let chattr = std::process::Command::new("chattr").arg("+i").arg(path).status();
            assert!(chattr.is_ok_and(|s| s.success()), "cannot make {} read-only here (root needs chattr +i)", path.display());
        }
        assert!(std::fs::OpenOptions::new().append(true).open(path).is_err(), "{} is still writable", path.display());
        file
    }
}

impl Drop for ReadOnlyFile {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr").arg("-i").arg(&self.0).status();
        if let Ok(m) = std::fs::metadata(&self.0) {
            let mut mode = m.permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            mode.set_readonly(false);
            let _ = std::fs::set_permissions(&self.0, mode);
        }
    }
}

#[test]
fn a_write_to_a_read_only_file_names_the_store_and_says_it_is_read_only() {
    let Fixture { dir, path, clock, store } = Fixture::ucanywhere();
    store.record(&DecisionInput::new("alice", "usage_statistics", Action::Grant, Source::Settings)).unwrap();
    drop(store);
    let before = std::fs::read(&path).unwrap();
    let guard = ReadOnlyFile::new(&path);
    let store = ConsentStore::open_with(&path, Arc::new(Policy::builtin()), Arc::new(clock), OpenMode::ReadWrite).unwrap();
    assert!(store.check("alice", "usage_analytics", None).unwrap().allowed, "it still reads");
    let err = store.record(&DecisionInput::new("alice", "usage_statistics", Action::Withdraw, Source::Settings)).unwrap_err();
    let message = err.to_string();
    assert!(err.is_store_problem() && !err.is_retryable(), "{err:?}");
    assert!(message.contains("consent.db") && message.contains("read-only"), "{message}");
    drop(store);
    drop(guard);
    assert!(std::fs::read(&path).unwrap() == before);
    drop(dir);
}

#[test]
fn a_constraint_violation_is_internal_and_shows_no_sql() {
    let dir = tempfile::tempdir().unwrap();
    let conn = schema::open(&dir.path().join("s.db"), OpenMode::ReadWrite).unwrap();
    let raw = conn.execute("INSERT INTO meta (key, value) VALUES ('k', NULL)", []).unwrap_err();
    let err = Error::from(raw);
    assert!(matches!(err, Error::Internal(_)), "{err:?}");
    let text = err.to_string();
    assert!(!text.contains("meta") && !text.contains("NOT NULL") && !text.contains("INSERT"), "no raw SQL: {text}");
}

#[test]
fn an_in_memory_store_reads_what_it_wrote_on_its_read_connection() {
    let store = ConsentStore::open(":memory:", Policy::builtin()).unwrap();
    store.record(&DecisionInput::new("alice", "usage_statistics", Action::Grant, Source::Settings)).unwrap();
    assert_eq!(store.history("alice").unwrap().len(), 1);
    assert_eq!(store.verify().unwrap(), 1);
    assert!(store.check("alice", "usage_analytics", None).unwrap().allowed);
}
