//! A hostile review of the store's fail-closed guarantees against a file edited, rolled back or
//! replaced by someone with write access to it (the sqlite3 shell, a restore tool), and a clock
//! set back: the gate denies, or the store refuses to open, never an allow on stale data.

mod common;
use common::*;
use consentkit_core::chain::ChainBreak;
use consentkit_core::*;
use rusqlite::Connection;
use std::path::Path;
use std::sync::Arc;

/// Drops the fixture's store (the mark persisted on close), leaving the file to edit.
fn close(f: &mut Fixture) -> (Arc<Policy>, Arc<dyn Clock>) {
    let policy = f.store.policy().clone();
    let clock: Arc<dyn Clock> = Arc::new(f.clock.clone());
    let placeholder = ConsentStore::open_fail_closed(f.dir.path().join("none/x.db"), policy.clone(), clock.clone());
    drop(std::mem::replace(&mut f.store, placeholder));
    (policy, clock)
}

const DELETE_BOTH_MARKS: &str = "DELETE FROM meta WHERE key IN ('time_high_water', 'time_high_water_seal')";

/// alice's analytics grant (13 months) ran out; then `newest_write` was the newest write, at a
/// time past the expiry; the store closed, both rows of the clock's mark deleted with the sqlite3
/// shell, and the clock set back to a day after the grant.
fn expired_before_the_newest_write(newest_write: impl FnOnce(&Fixture)) -> (Fixture, Arc<Policy>, Arc<dyn Clock>) {
    let mut f = Fixture::ucanywhere();
    f.grant("alice", "usage_statistics");
    let granted_at = f.clock.now();
    f.clock.set(ts("2027-06-01T00:00:00Z"));
    newest_write(&f);
    let (policy, clock) = close(&mut f);
    Connection::open(&f.path).unwrap().execute_batch(DELETE_BOTH_MARKS).unwrap();
    f.clock.set(Timestamp(granted_at.millis() + 86_400_000));
    (f, policy, clock)
}

/// Deleting both rows of the clock's high-water mark (the plain one and its sealed copy) made a
/// file with no mark: a clock set back then revived a grant that had expired before the newest
/// event was written. The file itself proves that time (the newest event's, sealed in the chain):
/// the store's time is never before it, at open and at catch-up.
#[test]
fn both_time_mark_rows_deleted_do_not_revive_a_grant_that_expired_before_the_newest_event() {
    type Write = (&'static str, fn(&Fixture));
    let writes: [Write; 3] = [
        ("another subject's refusal", |f| {
            f.record("bob", "usage_statistics", Action::Refuse, Source::Settings);
        }),
        ("an OS permission change", |f| {
            f.store.set_os_permission(OsPermission::CONTACTS, OsState::Denied).unwrap();
        }),
        ("an erasure", |f| {
            f.grant("carol", "usage_statistics");
            f.store.erase("carol", Source::Settings).unwrap();
        }),
    ];
    for (what, write) in writes {
        let (f, policy, clock) = expired_before_the_newest_write(write);
        for mode in [OpenMode::ReadOnly, OpenMode::ReadWrite] {
            let store = ConsentStore::open_with(&f.path, policy.clone(), clock.clone(), mode).unwrap();
            let d = store.check("alice", "usage_analytics", None).unwrap();
            assert!(!d.allowed, "{what}, {mode:?}: an expired grant allowed again: {d:?}");
            assert_eq!(d.reasons[0].code, ReasonCode::ConsentExpired, "{what}, {mode:?}");
            assert!(store.now() >= ts("2027-06-01T00:00:00Z"), "{what}, {mode:?}: the store's time is {}", store.now());
        }
    }
}

/// The floor is the newest event's recorded time, so that time must be the one sealed in the
/// chain: the newest row's `at` lowered by hand (triggers dropped) no longer matches its hash, and
/// the open refuses (fail closed) instead of taking the edited time.
#[test]
fn the_newest_event_s_time_edited_with_the_mark_rows_deleted_is_refused_at_open() {
    let (f, policy, clock) = expired_before_the_newest_write(|f| {
        f.record("bob", "usage_statistics", Action::Refuse, Source::Settings);
    });
    let conn = Connection::open(&f.path).unwrap();
    conn.execute_batch("DROP TRIGGER events_append_only_update; UPDATE events SET at = 0 WHERE seq = (SELECT max(seq) FROM events);")
        .unwrap();
    drop(conn);
    for mode in [OpenMode::ReadOnly, OpenMode::ReadWrite] {
        match ConsentStore::open_with(&f.path, policy.clone(), clock.clone(), mode) {
            Err(Error::Tampered(b)) => assert_eq!(b, ChainBreak::ContentMismatch { seq: 2 }, "{mode:?}"),
            Err(e) => panic!("{mode:?}: {e}"),
            Ok(s) => panic!("{mode:?}: opened; alice allowed: {}", s.check("alice", "usage_analytics", None).unwrap().allowed),
        }
    }
    let closed = ConsentStore::open_fail_closed(&f.path, policy, clock);
    assert!(!closed.check("alice", "usage_analytics", None).unwrap().allowed);
}

// ----- the file rolled back under a running store -----

/// Copies `from` over the database at `to` page by page through SQLite's backup API, as the
/// sqlite3 shell's `.restore` (or a restore tool writing the file in place) does: the same file,
/// taken under SQLite's locks, so open connections read the restored content at their next
/// transaction (unlike a rename, which `SQLITE_FCNTL_HAS_MOVED` reports).
fn restore_in_place(to: &Path, from: &Path) {
    let dest = Connection::open(to).unwrap();
    let src = Connection::open(from).unwrap();
    // SAFETY: two valid open handles, the "main" schemas, the backup object finished before both
    // connections drop.
    unsafe {
        use rusqlite::ffi;
        let backup = ffi::sqlite3_backup_init(dest.handle(), c"main".as_ptr(), src.handle(), c"main".as_ptr());
        assert!(!backup.is_null(), "backup_init");
        let step = ffi::sqlite3_backup_step(backup, -1);
        assert_eq!(step, ffi::SQLITE_DONE, "backup_step");
        assert_eq!(ffi::sqlite3_backup_finish(backup), ffi::SQLITE_OK, "backup_finish");
    }
}

/// A consistent copy of the store file as it is now (`VACUUM INTO`, as a backup would take it).
fn backup(path: &Path, to: &Path) {
    Connection::open(path).unwrap().execute("VACUUM INTO ?1", [to.to_str().unwrap()]).unwrap();
}

/// bob granted, a backup taken, bob's withdrawal returned; the store still open.
fn withdrawn_after_a_backup() -> (Fixture, std::path::PathBuf) {
    let f = Fixture::ucanywhere();
    f.grant("bob", "usage_statistics");
    let old = f.dir.path().join("backup.db");
    backup(&f.path, &old);
    f.record("bob", "usage_statistics", Action::Withdraw, Source::Settings);
    assert!(!f.allowed("bob", "usage_analytics"));
    (f, old)
}

/// The running store's answers and writes after its file was rolled back: no allow, the write
/// refused, nothing appended to the rolled-back file.
fn assert_never_serves_the_rollback(f: &Fixture, what: &str) {
    let refreshed = f.store.refresh();
    assert!(matches!(refreshed, Err(Error::Tampered(_))), "{what}: refresh: {refreshed:?}");
    let d = f.store.check("bob", "usage_analytics", None).unwrap();
    assert!(!d.allowed, "{what}: the returned withdrawal was lost: {d:?}");
    let rows = |p: &Path| Connection::open(p).unwrap().query_row("SELECT count(*) FROM events", [], |r| r.get::<_, i64>(0)).unwrap();
    let before = rows(&f.path);
    let write = f.store.record(&DecisionInput::new("carol", "usage_statistics", Action::Refuse, Source::Settings));
    assert!(matches!(write, Err(Error::Tampered(_))), "{what}: a write after the rollback: {write:?}");
    assert_eq!(rows(&f.path), before, "{what}: nothing appended after the rolled-back head");
    assert!(!f.allowed("bob", "usage_analytics"), "{what}");
}

/// An older copy of the file restored in place while the store runs (the chain's head moves back,
/// the old copy self-consistent: its digest matches its head): the store knows its withdrawal
/// returned at a later head and must not serve, nor write after, the older file.
#[test]
fn an_older_copy_restored_in_place_under_a_running_store_is_refused_never_served() {
    let (f, old) = withdrawn_after_a_backup();
    restore_in_place(&f.path, &old);
    assert_never_serves_the_rollback(&f, "rolled back");
}

/// The same with the older copy written on after it was taken (another device's copy, or the
/// backup opened elsewhere): the file's head is back at the store's seq, or past it, but its chain
/// is not the one the store served (another event at the store's head).
#[test]
fn an_older_copy_written_on_elsewhere_and_restored_under_a_running_store_is_refused() {
    for extra in [1, 2] {
        let (f, old) = withdrawn_after_a_backup();
        let fork = f.dir.path().join(format!("fork-{extra}.db"));
        std::fs::copy(&old, &fork).unwrap();
        {
            let other = ConsentStore::open_with(&fork, f.store.policy().clone(), Arc::new(f.clock.clone()), OpenMode::ReadWrite).unwrap();
            for i in 0..extra {
                other.record(&DecisionInput::new(&format!("erin{i}"), "usage_statistics", Action::Grant, Source::Settings)).unwrap();
            }
        }
        restore_in_place(&f.path, &fork);
        assert_never_serves_the_rollback(&f, &format!("forked, {extra} events after the backup"));
    }
}

// ----- the file's identity -----

/// bob granted then withdrew; alice granted; the store closed.
fn withdrawn_bob_granted_alice() -> (Fixture, Arc<Policy>, Arc<dyn Clock>) {
    let mut f = Fixture::ucanywhere();
    f.grant("bob", "usage_statistics");
    f.record("bob", "usage_statistics", Action::Withdraw, Source::Settings);
    f.grant("alice", "usage_statistics");
    let (policy, clock) = close(&mut f);
    (f, policy, clock)
}

fn meta_value(path: &Path, key: &str) -> Option<String> {
    use rusqlite::OptionalExtension;
    Connection::open(path).unwrap().query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).optional().unwrap()
}

/// A store records its policy id when it is created. A file holding records whose `policy_id`
/// row was deleted opened read-only under any policy (another app's file served under this one),
/// and a read-write open took it for a new file: it wrote the opener's policy id and a new
/// erasure key over the file's (the key its erasure receipts' subject references are made with),
/// and then failed on the time seal made with the old key. Refused now, naming the missing row,
/// and the file is left as it was.
#[test]
fn a_file_holding_records_whose_policy_id_row_was_deleted_is_refused_and_left_as_it_was() {
    let (f, policy, clock) = withdrawn_bob_granted_alice();
    let key = meta_value(&f.path, "erasure_key").unwrap();
    Connection::open(&f.path).unwrap().execute("DELETE FROM meta WHERE key = 'policy_id'", []).unwrap();
    for mode in [OpenMode::ReadOnly, OpenMode::ReadWrite] {
        match ConsentStore::open_with(&f.path, policy.clone(), clock.clone(), mode) {
            Err(Error::StoreUnavailable { why, .. }) => assert!(why.contains("'policy_id'"), "{mode:?}: {why}"),
            Err(e) => panic!("{mode:?}: {e}"),
            Ok(s) => panic!("{mode:?}: opened; alice allowed: {}", s.check("alice", "usage_analytics", None).unwrap().allowed),
        }
        assert_eq!(meta_value(&f.path, "erasure_key").as_deref(), Some(key.as_str()), "{mode:?}: the erasure key was overwritten");
        assert_eq!(meta_value(&f.path, "policy_id"), None, "{mode:?}: an identity was adopted");
    }
    assert!(!ConsentStore::open_fail_closed(&f.path, policy, clock).check("alice", "usage_analytics", None).unwrap().allowed);
}

/// Another policy's file with its `policy_id` row edited to this policy's id: the newest event
/// (sealed in the chain) still names its policy, and the open refuses with `PolicyMismatch`.
#[test]
fn another_policy_s_file_with_its_policy_id_row_edited_is_refused_by_the_head_event_s_policy() {
    let mut other = Policy::builtin();
    other.id = "another-app".into();
    let mut f = Fixture::new(other);
    f.grant("alice", "usage_statistics");
    close(&mut f);
    Connection::open(&f.path).unwrap().execute("UPDATE meta SET value = 'ucanywhere' WHERE key = 'policy_id'", []).unwrap();
    for mode in [OpenMode::ReadOnly, OpenMode::ReadWrite] {
        match ConsentStore::open_with(&f.path, Arc::new(Policy::builtin()), Arc::new(f.clock.clone()), mode) {
            Err(Error::PolicyMismatch { stored, given, .. }) => {
                assert_eq!((stored.as_str(), given.as_str()), ("another-app", "ucanywhere"))
            }
            Err(e) => panic!("{mode:?}: {e}"),
            Ok(s) => panic!("{mode:?}: opened; alice allowed: {}", s.check("alice", "usage_analytics", None).unwrap().allowed),
        }
    }
}

// ----- writes the file does not take -----

fn event_rows(path: &Path) -> i64 {
    Connection::open(path).unwrap().query_row("SELECT count(*) FROM events", [], |r| r.get(0)).unwrap()
}

/// A trigger added with the sqlite3 shell that makes SQLite skip a write's rows without an error
/// (`RAISE(IGNORE)`): the withdrawal returned success, the store denied, but the file did not
/// hold it (the event, the state row, or the head and mark). Every statement of a write now
/// checks the rows it changed: the write is refused (`Tampered(WriteNotTaken)`, nothing
/// recorded) and the store closes, so its checks deny rather than allow a grant whose withdrawal
/// the file would not take.
#[test]
fn a_trigger_that_skips_a_write_s_rows_refuses_the_write_and_closes_the_store() {
    let triggers = [
        ("the event", "CREATE TRIGGER t BEFORE INSERT ON events BEGIN SELECT RAISE(IGNORE); END"),
        ("the state row", "CREATE TRIGGER t BEFORE UPDATE ON subjects BEGIN SELECT RAISE(IGNORE); END"),
        ("the time mark", "CREATE TRIGGER t BEFORE INSERT ON meta WHEN NEW.key LIKE 'time_high_water%' BEGIN SELECT RAISE(IGNORE); END"),
        ("the digest", "CREATE TRIGGER t BEFORE INSERT ON meta WHEN NEW.key = 'state_digest' BEGIN SELECT RAISE(IGNORE); END"),
    ];
    for (what, trigger) in triggers {
        let (f, policy, clock) = withdrawn_bob_granted_alice();
        Connection::open(&f.path).unwrap().execute_batch(trigger).unwrap();
        let store = ConsentStore::open_with(&f.path, policy.clone(), clock.clone(), OpenMode::ReadWrite).unwrap();
        assert!(store.check("alice", "usage_analytics", None).unwrap().allowed, "{what}");
        let before = event_rows(&f.path);
        let withdrawal = store.record(&DecisionInput::new("alice", "usage_statistics", Action::Withdraw, Source::Settings));
        assert!(matches!(withdrawal, Err(Error::Tampered(ChainBreak::WriteNotTaken { .. }))), "{what}: {withdrawal:?}");
        assert_eq!(event_rows(&f.path), before, "{what}: nothing recorded");
        let d = store.check("alice", "usage_analytics", None).unwrap();
        assert!(!d.allowed, "{what}: the store went on allowing: {d:?}");
        assert_eq!(d.reasons[0].code, ReasonCode::StoreUnavailable, "{what}");
        assert!(store.unavailable().is_some_and(|why| why.contains("did not take")), "{what}: {:?}", store.unavailable());
    }
}

// ----- probes that hold -----

/// Edits of the schema itself, each as the sqlite3 shell makes it: the open refuses with a typed
/// error, or opens and denies what was withdrawn and what was never granted, and takes a new
/// withdrawal. Never an allow that the history does not give.
#[test]
fn schema_edits_are_refused_or_change_no_answer() {
    let edits = [
        ("PRAGMA user_version = 0", false),
        ("PRAGMA user_version = 3", false),
        ("PRAGMA user_version = 4", true), // the state-row migration runs again: a no-op
        ("PRAGMA application_id = 0", false),
        ("DROP TABLE subjects", false),
        ("DROP TABLE os_permissions", false),
        ("DROP TABLE names", false),
        ("DROP INDEX events_by_subject", true),
        ("DROP INDEX events_unattributed", true),
        ("DELETE FROM meta WHERE key = 'erasure_key'", false), // the time seal no longer verifies
        ("DELETE FROM meta WHERE key = 'state_digest'", true), // walked, agrees, re-sealed
        ("DELETE FROM meta WHERE key IN ('head_seq', 'head_hash')", false),
    ];
    for (edit, opens) in edits {
        let (f, policy, clock) = withdrawn_bob_granted_alice();
        Connection::open(&f.path).unwrap().execute_batch(edit).unwrap();
        match ConsentStore::open_with(&f.path, policy.clone(), clock.clone(), OpenMode::ReadWrite) {
            Err(e) => assert!(!opens, "{edit}: refused: {e}"),
            Ok(s) => {
                assert!(opens, "{edit}: opened");
                assert!(!s.check("bob", "usage_analytics", None).unwrap().allowed, "{edit}");
                assert!(!s.check("carol", "usage_analytics", None).unwrap().allowed, "{edit}");
                assert!(s.check("alice", "usage_analytics", None).unwrap().allowed, "{edit}");
                s.record(&DecisionInput::new("alice", "usage_statistics", Action::Withdraw, Source::Settings)).unwrap();
                assert!(!s.check("alice", "usage_analytics", None).unwrap().allowed, "{edit}");
            }
        }
        let closed = ConsentStore::open_fail_closed(&f.path, policy, clock);
        assert!(!closed.check("bob", "usage_analytics", None).unwrap().allowed, "{edit}");
    }
}
