//! The ledger's triggers refuse every change but the store's own appends and tombstones, also
//! from a plain SQLite connection that knows nothing of ConsentKit, and `INSERT OR REPLACE`.

mod common;
use common::*;
use consentkit_core::*;

#[test]
fn insert_or_replace_cannot_rewrite_an_event_or_a_name() {
    let f = Fixture::ucanywhere();
    f.grant("alice", "usage_statistics");
    f.record("alice", "usage_statistics", Action::Withdraw, Source::Settings);
    let path = f.store.path().to_path_buf();
    let before = f.store.history("alice").unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    for sql in [
        // Rewrite the withdrawal (seq 2) as a copy of the grant's row (seq 1), keeping seq 2.
        "INSERT OR REPLACE INTO events SELECT 2, id, subject, category, action, scope, source, policy_id, policy_version, \
         purpose_version, at, valid_until, permission, os_state, detail, content_hash, hash, removed_by FROM events WHERE seq = 1",
        // A new row that reuses the withdrawal's id (REPLACE on the unique id would delete it).
        "INSERT OR REPLACE INTO events (seq, id, content_hash, hash) SELECT 99, id, content_hash, hash FROM events WHERE seq = 2",
        "REPLACE INTO names (code, name) SELECT code, 'x' FROM names LIMIT 1",
        "INSERT OR REPLACE INTO names (code, name) SELECT 999, name FROM names LIMIT 1",
    ] {
        let err = raw.execute_batch(sql).unwrap_err().to_string();
        assert!(err.contains("append-only"), "{sql}: {err}");
    }
    drop(raw);
    assert_eq!(f.store.history("alice").unwrap(), before, "nothing changed");
    assert_eq!(f.store.verify().unwrap(), 2);
    assert!(!f.allowed("alice", "usage_analytics"), "the withdrawal stands");
    // The store's own appends still work.
    f.grant("alice", "usage_statistics");
    assert_eq!(f.store.verify().unwrap(), 3);
}
