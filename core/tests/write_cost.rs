//! What one durable write costs the file, counted (not timed): a `record` appends exactly one
//! commit to the WAL (one transaction, so one fsync: no separate transaction for metadata, the
//! chain head or the clock's mark) of at most five pages (the event row, its id index entry, its
//! subject index entry, the subject's state row, the one metadata page), and the WAL is never
//! cut back below its steady size by an ordinary checkpoint.

use std::path::Path;

use consentkit_core::*;
use rusqlite::Connection;

/// The pages of each commit in the WAL's current generation, oldest first (a frame header is the
/// page number, the database size after a commit or 0 inside one, and the generation's salts).
fn wal_commits(db: &Path) -> Vec<Vec<u32>> {
    let wal = std::fs::read(db.with_extension("db-wal")).unwrap_or_default();
    if wal.len() < 32 {
        return Vec::new();
    }
    let be = |b: &[u8]| u32::from_be_bytes(b.try_into().unwrap());
    let page_size = be(&wal[8..12]) as usize;
    let salt = &wal[16..24];
    let (mut commits, mut pages, mut at) = (Vec::new(), Vec::new(), 32);
    while at + 24 + page_size <= wal.len() && &wal[at + 8..at + 16] == salt {
        pages.push(be(&wal[at..at + 4]));
        if be(&wal[at + 4..at + 8]) != 0 {
            commits.push(std::mem::take(&mut pages));
        }
        at += 24 + page_size;
    }
    commits
}

fn decision(subject: &str, action: Action) -> DecisionInput {
    DecisionInput::new(subject, "usage_statistics", action, Source::Settings)
}

#[test]
fn a_record_is_one_commit_of_at_most_five_pages() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cost.db");
    let store = ConsentStore::open(&path, Policy::builtin()).unwrap();
    // A store with some history, many subjects, and names already known (a policy's first
    // write adds its names: that one may write more).
    let batch: Vec<DecisionInput> = (0..300).map(|i| decision(&format!("user-{i}"), Action::Grant)).collect();
    store.record_batch(&batch).unwrap();
    for (i, subject) in ["user-7", "user-7", "user-123", "someone-new", "user-7"].into_iter().enumerate() {
        let before = wal_commits(&path);
        let action = if i % 2 == 0 { Action::Withdraw } else { Action::Grant };
        let receipt = store.record(&decision(subject, action)).unwrap();
        let after = wal_commits(&path);
        assert!(after.len() >= before.len(), "no checkpoint restarted the WAL in this test");
        let new: Vec<&Vec<u32>> = after[before.len()..].iter().collect();
        assert_eq!(new.len(), 1, "record {} of {subject} committed {} transactions: {new:?}", receipt.seq, new.len());
        let mut pages = new[0].clone();
        pages.sort_unstable();
        pages.dedup();
        assert!(pages.len() <= 5, "record {} of {subject} wrote {} pages: {pages:?}", receipt.seq, pages.len());
    }
    // A batch is one transaction too, however many decisions it holds.
    let before = wal_commits(&path).len();
    let batch: Vec<DecisionInput> = (0..20).map(|i| decision(&format!("user-{i}"), Action::Withdraw)).collect();
    assert_eq!(store.record_batch(&batch).unwrap().len(), 20);
    assert_eq!(wal_commits(&path).len(), before + 1, "a batch is one commit");
    // A rejected decision writes nothing at all.
    let before = wal_commits(&path).len();
    assert!(store.record(&DecisionInput::new("user-1", "no_such_category", Action::Grant, Source::Settings)).is_err());
    assert_eq!(wal_commits(&path).len(), before, "an invalid decision commits nothing");
    assert!(store.verify().is_ok());
}

#[test]
fn an_ordinary_checkpoint_keeps_the_wal_at_its_steady_size() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("limit.db");
    let store = ConsentStore::open(&path, Policy::builtin()).unwrap();
    store.record(&decision("alice", Action::Grant)).unwrap();
    let conn = Connection::open(&path).unwrap();
    let read = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
    // SQLite checkpoints once the WAL holds this many frames; a write's frames come on top.
    let steady = 32 + (read("PRAGMA wal_autocheckpoint") + 16) * (read("PRAGMA page_size") + 24);
    assert!(
        schema::JOURNAL_SIZE_LIMIT > steady,
        "a journal_size_limit of {} B truncates the WAL after every automatic checkpoint ({steady} B)",
        schema::JOURNAL_SIZE_LIMIT
    );
    drop(conn);
    // Past a checkpoint, the WAL file keeps its size: the next writes reuse it.
    let mut sizes = Vec::new();
    for i in 0..450 {
        let action = if i % 2 == 0 { Action::Withdraw } else { Action::Grant };
        store.record(&decision(&format!("user-{}", i % 40), action)).unwrap();
        sizes.push(std::fs::metadata(path.with_extension("db-wal")).unwrap().len());
    }
    let peak = *sizes.iter().max().unwrap();
    let restarted = wal_commits(&path).len() < 400;
    assert!(restarted, "the WAL restarted after an automatic checkpoint within 450 writes");
    assert_eq!(*sizes.last().unwrap(), peak, "after the checkpoint the WAL was not truncated: {sizes:?}");
}
