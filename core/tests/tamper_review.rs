//! A hostile review of the store's fail-closed guarantees against a file edited, rolled back or
//! replaced by someone with write access to it (the sqlite3 shell, a restore tool), and a clock
//! set back: the gate denies, or the store refuses to open, never an allow on stale data.

mod common;
use common::*;
use consentkit_core::chain::ChainBreak;
use consentkit_core::*;
use rusqlite::Connection;
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
    let writes: [(&str, fn(&Fixture)); 3] = [
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
