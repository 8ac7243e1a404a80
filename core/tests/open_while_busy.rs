//! Opening a store while another process writes to it: an up-to-date file opens without waiting
//! for the writer; a file locked against every reader is a typed, retryable `Busy`.

use consentkit_core::*;

#[test]
fn an_up_to_date_store_opens_while_another_connection_holds_the_write_lock() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("consent.db");
    drop(ConsentStore::open(&path, Policy::builtin()).unwrap());
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let store = ConsentStore::open(&path, Policy::builtin()).expect("opens without the write lock");
    assert!(store.unavailable().is_none());
    assert!(store.check("alice", "usage_analytics", None).is_ok());
    other.execute_batch("ROLLBACK").unwrap();
}

#[test]
fn a_store_locked_against_every_reader_is_busy_not_damaged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("consent.db");
    drop(ConsentStore::open(&path, Policy::builtin()).unwrap());
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE; UPDATE meta SET value = value; COMMIT;").unwrap();
    let err = ConsentStore::open(&path, Policy::builtin()).map(|_| ()).unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert!(!err.is_store_problem(), "busy is not a damaged store: {err}");
    drop(other);
    assert!(ConsentStore::open(&path, Policy::builtin()).is_ok(), "opens once the other process lets go");
}
