//! The proof under attack: who may claim tombstones (only the store's own erasure and purge
//! records), what the triggers refuse, and opening a file written by an older schema.

mod common;
use common::*;
use consentkit_core::chain::{self, ChainBreak};
use consentkit_core::*;
use rusqlite::{params, Connection};
use std::sync::Arc;

/// alice and bob with history; bob erased (seq 8 is the erasure record).
fn populated() -> Fixture {
    let f = Fixture::ucanywhere();
    f.store.set_os_permission(OsPermission::CONTACTS, OsState::Granted).unwrap(); // 1
    f.grant("alice", "usage_statistics"); // 2
    f.grant("alice", "device_contacts"); // 3
    f.grant("bob", "photos_media"); // 4
    f.record("alice", "usage_statistics", Action::Withdraw, Source::Settings); // 5
    f.record("alice", "contact_information", Action::Object, Source::Support); // 6
    f.grant("bob", "usage_statistics"); // 7
    assert_eq!(f.store.erase("bob", Source::Support).unwrap().receipt.seq, 8);
    f
}

const TOMBSTONE: &str = "UPDATE events SET id=NULL, subject=NULL, category=NULL, action=NULL, scope=NULL, source=NULL, \
     policy_id=NULL, policy_version=NULL, purpose_version=NULL, at=NULL, valid_until=NULL, permission=NULL, os_state=NULL, \
     detail=NULL, removed_by=?2 WHERE seq=?1";

/// Appends a sealed event after the recorded head, as a forger with the sqlite3 shell would
/// (triggers dropped, hashes recomputed, head moved, the row written in the v4 encoding).
/// Returns its seq.
fn forge_append(conn: &Connection, mut r: Receipt) -> u64 {
    let (seq, prev): (i64, String) =
        conn.query_row("SELECT seq, lower(hex(hash)) FROM events ORDER BY seq DESC LIMIT 1", [], |x| Ok((x.get(0)?, x.get(1)?))).unwrap();
    r.seq = seq as u64 + 1;
    chain::seal(&mut r, &prev);
    for name in [r.category.as_deref(), Some(&r.policy_id), Some(&r.policy_version)].into_iter().flatten() {
        conn.execute("INSERT OR IGNORE INTO names (name) VALUES (?1)", [name]).unwrap();
    }
    let code = |param: &str| format!("(SELECT code FROM names WHERE name = {param})");
    conn.execute(
        &format!(
            "INSERT INTO events (seq, id, subject, category, action, scope, source, policy_id, policy_version, purpose_version, at, \
             valid_until, detail, content_hash, hash) VALUES (?1, ?2, ?3, {}, ?5, ?6, ?7, {}, {}, ?10, ?11, ?12, ?13, unhex(?14), unhex(?15))",
            code("?4"),
            code("?8"),
            code("?9")
        ),
        params![
            r.seq as i64,
            r.id,
            r.subject,
            r.category,
            schema::action_code(r.action),
            r.scope,
            schema::source_code(r.source),
            r.policy_id,
            r.policy_version,
            r.purpose_version,
            r.at.millis(),
            r.valid_until.map(|t| t.millis()),
            r.detail,
            r.content_hash,
            r.hash
        ],
    )
    .unwrap();
    conn.execute("UPDATE meta SET value=?1 WHERE key='head_seq'", [r.seq.to_string()]).unwrap();
    conn.execute("UPDATE meta SET value=?1 WHERE key='head_hash'", [&r.hash]).unwrap();
    r.seq
}

fn drop_triggers(conn: &Connection) {
    conn.execute_batch("DROP TRIGGER events_append_only_delete; DROP TRIGGER events_append_only_update; DROP TRIGGER events_append_only_insert; DROP TRIGGER names_append_only_insert;").unwrap();
}

#[test]
fn a_plain_update_cannot_tombstone_a_row() {
    let f = populated();
    // Any other connection (the sqlite3 shell, the app's own SQLite) is refused outright, even
    // naming the real erasure record.
    let plain = Connection::open(&f.path).unwrap();
    for removed_by in [8, 6, 99] {
        assert!(plain.execute(TOMBSTONE, params![5, removed_by]).is_err(), "tombstoning seq 5 as removed by {removed_by}");
    }
    assert!(plain.execute("UPDATE events SET removed_by=8 WHERE seq=5", []).is_err(), "content kept");
    assert!(plain.execute("UPDATE events SET detail=NULL WHERE seq=4", []).is_err(), "editing a tombstone");
    assert!(plain.execute("DELETE FROM events WHERE seq=5", []).is_err());
    // ConsentKit's own connection tombstones only what an erasure or purge record claims.
    let own = schema::open(&f.path, OpenMode::ReadWrite).unwrap();
    for removed_by in [8, 6, 7] {
        assert!(own.execute(TOMBSTONE, params![5, removed_by]).is_err(), "seq 5 is claimed by no record, not even {removed_by}");
    }
    assert!(own.execute(TOMBSTONE, params![4, 8]).is_err(), "a tombstone is not removed twice");
    assert!(own.execute("UPDATE events SET removed_by=NULL WHERE seq=4", []).is_err(), "nor restored");
    drop((plain, own));
    assert_eq!(f.store.history("alice").unwrap().iter().filter(|e| e.action == Action::Withdraw).count(), 1);
    assert_eq!(f.store.verify().unwrap(), 8);
}

#[test]
fn verify_honours_tombstone_claims_only_from_erasure_and_purge_records() {
    let f = populated();
    let conn = Connection::open(&f.path).unwrap();
    drop_triggers(&conn);
    // A decision whose detail claims alice's withdrawal (seq 5), as an edited import would carry.
    let planted = Receipt {
        id: "planted".into(),
        subject: Some("alice".into()),
        category: Some("photos_media".into()),
        purpose_version: Some(1),
        detail: Some(r#"{"removed_seqs":[5]}"#.into()),
        ..Receipt::blank(Action::Refuse, Source::Import, "ucanywhere", "2018-05-01", f.store.now())
    };
    let claimer = forge_append(&conn, planted);
    conn.execute(TOMBSTONE, params![5, claimer as i64]).unwrap();
    assert!(matches!(f.store.verify(), Err(Error::Tampered(ChainBreak::UnclaimedTombstone { seq: 5 }))), "{:?}", f.store.verify());

    // An "erasure" that came in with source import claims nothing either.
    let g = populated();
    let conn = Connection::open(&g.path).unwrap();
    drop_triggers(&conn);
    let fake = Receipt {
        id: "fake-erasure".into(),
        detail: Some(r#"{"removed_seqs":[5]}"#.into()),
        ..Receipt::blank(Action::Erasure, Source::Import, "ucanywhere", "2018-05-01", g.store.now())
    };
    let claimer = forge_append(&conn, fake);
    conn.execute(TOMBSTONE, params![5, claimer as i64]).unwrap();
    assert!(matches!(g.store.verify(), Err(Error::Tampered(ChainBreak::UnclaimedTombstone { seq: 5 }))));
}

#[test]
fn a_tombstone_must_name_the_record_that_claims_it() {
    let f = populated();
    let conn = Connection::open(&f.path).unwrap();
    drop_triggers(&conn);
    // bob's seq 4 is claimed by erasure 8; pointing it at another record breaks the proof.
    conn.execute("UPDATE events SET removed_by=6 WHERE seq=4", []).unwrap();
    assert!(matches!(f.store.verify(), Err(Error::Tampered(ChainBreak::UnclaimedTombstone { seq: 4 }))));
}

#[test]
fn a_schema_version_1_file_opens_migrated_and_keeps_its_proof() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/store-v1.db"), &path).unwrap();
    let version = |p: &std::path::Path| Connection::open(p).unwrap().query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0)).unwrap();
    assert_eq!(version(&path), 1, "the fixture was written by schema version 1");
    let clock = ManualClock::new(ts("2026-02-02T09:00:00Z"));
    let store =
        ConsentStore::open_with(&path, std::sync::Arc::new(Policy::builtin()), std::sync::Arc::new(clock), OpenMode::ReadWrite).unwrap();
    assert_eq!(version(&path), schema::LATEST);
    assert_eq!(store.verify().unwrap(), 10);
    let status = |s: &str, c: &str| store.status(s, c).unwrap().status;
    assert_eq!(status("alice", "usage_statistics"), Status::Withdrawn);
    assert_eq!(status("alice", "device_contacts"), Status::Granted);
    assert_eq!(status("alice", "photos_media"), Status::Refused);
    assert_eq!(status("alice", "contact_information"), Status::Objected);
    assert_eq!(status("bob", "usage_statistics"), Status::Granted);
    assert_eq!(status("carol", "photos_media"), Status::NotAsked, "erased in the old version");
    assert!(store.check("alice", "contact_sync", Some("contact-42")).unwrap().allowed);
    // The new triggers guard the migrated file.
    let plain = Connection::open(&path).unwrap();
    assert!(plain.execute(TOMBSTONE, params![8, 10]).is_err());
    drop(plain);
    // And the store keeps working on it: writes, an erasure, the proof.
    store.record(&DecisionInput::new("bob", "usage_statistics", Action::Withdraw, Source::Settings)).unwrap();
    assert_eq!(store.erase("alice", Source::Settings).unwrap().erased_events, 6);
    assert_eq!(store.verify().unwrap(), 12);
    assert!(!store.check("bob", "usage_analytics", None).unwrap().allowed);
}

// ----- the state table is derived data (item: state outside the proof) -----

/// alice refused photos (seq 2) with the OS permission granted (seq 1): photo sharing is denied.
fn refused_photos() -> Fixture {
    let f = Fixture::ucanywhere();
    f.store.set_os_permission(OsPermission::PHOTOS, OsState::Granted).unwrap();
    f.record("alice", "photos_media", Action::Refuse, Source::Onboarding);
    f.grant("bob", "usage_statistics");
    assert!(!f.allowed("alice", "photo_sharing"));
    f
}

/// Edits alice's state row as someone with the sqlite3 shell would: refused → granted, for years.
fn grant_alice_in_the_state_table(path: &std::path::Path) {
    let conn = Connection::open(path).unwrap();
    let row: Vec<u8> = conn.query_row("SELECT state FROM subjects WHERE subject='alice'", [], |r| r.get(0)).unwrap();
    let mut state = state::SubjectState::from_row(&row).unwrap();
    let photos = state.categories.get_mut("photos_media").unwrap();
    photos.status = Status::Granted;
    photos.valid_until = Some(Timestamp::parse("2036-01-01T00:00:00Z").unwrap());
    // Written as the store writes a state (its binary row), so only the content is edited.
    conn.execute("UPDATE subjects SET state=?1 WHERE subject='alice'", [state.to_row()]).unwrap();
}

/// Closes the store and opens the file again: refused as tampered (the state table disagrees with
/// the history, unproven); the fixture keeps the fail-closed store. Twice: never rebuilt.
fn reopen_refused_as_tampered(f: &mut Fixture) {
    let policy = f.store.policy().clone();
    let clock = std::sync::Arc::new(f.clock.clone());
    let placeholder = ConsentStore::open_fail_closed(f.dir.path().join("none/x.db"), policy.clone(), clock.clone());
    drop(std::mem::replace(&mut f.store, placeholder));
    for mode in [OpenMode::ReadOnly, OpenMode::ReadWrite, OpenMode::ReadWrite] {
        let before = std::fs::read(&f.path).unwrap();
        match ConsentStore::open_with(&f.path, policy.clone(), clock.clone(), mode) {
            Err(err) => assert!(matches!(err, Error::Tampered(ChainBreak::StateMismatch { .. })), "{mode:?}: {err}"),
            Ok(_) => panic!("{mode:?}: opened"),
        }
        assert_eq!(std::fs::read(&f.path).unwrap(), before, "{mode:?}: the file is left as it is");
    }
    f.store = ConsentStore::open_fail_closed(&f.path, policy, clock);
    assert!(f.store.unavailable().is_some());
}

fn state_mismatch(result: Result<u64>) -> bool {
    matches!(result, Err(Error::Tampered(ChainBreak::StateMismatch { .. })))
}

#[test]
fn verify_checks_the_state_table_against_the_history() {
    let mut f = refused_photos();
    grant_alice_in_the_state_table(&f.path);
    let err = f.store.verify().unwrap_err();
    assert!(matches!(err, Error::Tampered(ChainBreak::StateMismatch { seq: 2 })), "{err}");
    assert!(err.to_string().contains("state table"), "{err}");
    // This store never served the edit: it stays open and keeps denying.
    assert!(!f.allowed("alice", "photo_sharing"));
    // The file is tampered: never reopened from a rebuilt table.
    reopen_refused_as_tampered(&mut f);
    assert!(!f.allowed("alice", "photo_sharing"));
}

#[test]
fn opening_an_edited_state_table_fails_closed_and_never_rebuilds_it() {
    let mut f = refused_photos();
    let placeholder =
        ConsentStore::open_fail_closed(f.dir.path().join("none/x.db"), f.store.policy().clone(), std::sync::Arc::new(f.clock.clone()));
    drop(std::mem::replace(&mut f.store, placeholder));
    grant_alice_in_the_state_table(&f.path);
    // Read-only (the support tool) and read-write: refused, the file left as it is.
    reopen_refused_as_tampered(&mut f);
    let d = f.store.check("alice", "photo_sharing", None).unwrap();
    assert!(!d.allowed && d.reasons.iter().any(|r| r.code == ReasonCode::StoreUnavailable), "{d:?}");
}

#[test]
fn an_edited_os_permission_row_is_not_served() {
    let mut f = refused_photos();
    f.store.set_os_permission(OsPermission::CONTACTS, OsState::Denied).unwrap();
    f.grant("alice", "device_contacts");
    assert!(!f.allowed("alice", "contact_lookup"));
    Connection::open(&f.path).unwrap().execute("UPDATE os_permissions SET state='granted' WHERE permission='contacts'", []).unwrap();
    assert!(state_mismatch(f.store.verify()));
    reopen_refused_as_tampered(&mut f);
    assert!(!f.allowed("alice", "contact_lookup"));
}

#[test]
fn a_resealed_state_edit_is_served_only_until_verify_which_closes_the_store() {
    let mut f = refused_photos();
    let placeholder =
        ConsentStore::open_fail_closed(f.dir.path().join("none/x.db"), f.store.policy().clone(), std::sync::Arc::new(f.clock.clone()));
    drop(std::mem::replace(&mut f.store, placeholder));
    grant_alice_in_the_state_table(&f.path);
    reseal_state_digest(&f.path);
    f.store =
        ConsentStore::open_with(&f.path, std::sync::Arc::new(Policy::builtin()), std::sync::Arc::new(f.clock.clone()), OpenMode::ReadWrite)
            .unwrap();
    // The documented limit: an unkeyed digest recomputed by a forger passes the cheap check at open...
    assert!(f.allowed("alice", "photo_sharing"));
    // ...and verify finds it, and the store stops serving it at once.
    assert!(state_mismatch(f.store.verify()));
    let d = f.store.check("alice", "photo_sharing", None).unwrap();
    assert!(!d.allowed && d.reasons.iter().any(|r| r.code == ReasonCode::StoreUnavailable), "{d:?}");
    assert!(f.store.unavailable().is_some());
    assert!(f.store.record(&DecisionInput::new("bob", "usage_statistics", Action::Withdraw, Source::Settings)).is_err());
    // Verify invalidated the digest: the next open refuses the file (never rebuilt, never served).
    reopen_refused_as_tampered(&mut f);
    assert!(!f.allowed("alice", "photo_sharing"));
}

#[test]
fn a_state_mismatch_on_a_broken_chain_fails_closed() {
    let f = refused_photos();
    let path = f.path.clone();
    let policy = f.store.policy().clone();
    let clock = f.clock.clone();
    drop(f.store);
    grant_alice_in_the_state_table(&path);
    let conn = Connection::open(&path).unwrap();
    drop_triggers(&conn);
    conn.execute("UPDATE events SET action=?1 WHERE seq=2", [schema::action_code(Action::Grant)]).unwrap();
    drop(conn);
    let store = ConsentStore::open_fail_closed(&path, policy, std::sync::Arc::new(clock));
    assert!(store.unavailable().unwrap().contains("seq 2"), "{:?}", store.unavailable());
    assert!(!store.check("alice", "photo_sharing", None).unwrap().allowed);
    drop(f.dir);
}

#[test]
fn opening_reads_the_state_and_the_head_not_the_history() {
    // With the state digest intact, opening does not walk the events: an edited event (found by
    // verify) does not change how long, or whether, the store opens. (Only the head event, seq 3,
    // is checked at open: its sealed time is the floor of the clock's mark.)
    let mut f = refused_photos();
    let conn = Connection::open(&f.path).unwrap();
    drop_triggers(&conn);
    conn.execute("UPDATE events SET at=at+1 WHERE seq=2", []).unwrap();
    drop(conn);
    f.reopen(None);
    assert!(f.store.unavailable().is_none());
    assert!(matches!(f.store.verify(), Err(Error::Tampered(ChainBreak::ContentMismatch { seq: 2 }))));
}

#[test]
fn a_purge_leaves_the_state_the_fold_of_what_remains() {
    let f = Fixture::ucanywhere();
    f.clock.set(ts("2012-01-01T00:00:00Z"));
    f.store.set_os_permission(OsPermission::CONTACTS, OsState::Granted).unwrap(); // 1
    f.grant("alice", "device_contacts"); // 2
    let item = |action, scope: &str| DecisionInput::new("alice", "device_contacts", action, Source::Settings).with_scope(scope);
    f.store.record(&item(Action::Grant, "contact-1")).unwrap(); // 3
                                                                // bob only ever decided on single items: no status establishes anything to keep.
    f.store.record(&DecisionInput::new("bob", "device_contacts", Action::Grant, Source::Settings).with_scope("c-9")).unwrap(); // 4
    f.store.record(&DecisionInput::new("bob", "device_contacts", Action::Withdraw, Source::Settings).with_scope("c-9")).unwrap(); // 5
    f.store.ack_sync(5).unwrap();
    f.clock.set(ts("2019-01-01T00:00:00Z"));
    let report = f.store.purge().unwrap();
    assert_eq!(report.removed_events, 3, "alice's item grant, bob's two item events; alice's category grant stays");
    assert_eq!(f.store.verify().unwrap(), 6, "the state equals the fold of what remains");
    assert!(!f.store.snapshot().subjects.contains_key("bob"), "nothing left of bob");
    let alice = f.store.snapshot().subjects["alice"].clone();
    assert!(alice.categories["device_contacts"].scopes.is_empty(), "no record of the item grant, so no item grant");
    // A new category grant does not bring back an item whose record was purged.
    f.grant("bob", "device_contacts");
    assert!(!f.store.check("bob", "contact_sync", Some("c-9")).unwrap().allowed);
    assert_eq!(f.store.verify().unwrap(), 7);
}

// ----- the chain's tail cut off (review item 2) -----

/// bob granted (seq 1) and withdrew (seq 2); the store closed.
fn withdrawn_bob() -> (Fixture, std::sync::Arc<Policy>, std::sync::Arc<ManualClock>) {
    let mut f = Fixture::ucanywhere();
    f.grant("bob", "usage_statistics");
    f.record("bob", "usage_statistics", Action::Withdraw, Source::Settings);
    let policy = f.store.policy().clone();
    let clock = std::sync::Arc::new(f.clock.clone());
    let placeholder = ConsentStore::open_fail_closed(f.dir.path().join("none/x.db"), policy.clone(), clock.clone());
    drop(std::mem::replace(&mut f.store, placeholder));
    (f, policy, clock)
}

/// Deletes the withdrawal (seq 2) as the sqlite3 shell would, optionally moving the recorded head
/// back to seq 1 (its hash, as the store records it: lower-case hex).
fn cut_off_the_withdrawal(path: &std::path::Path, move_head_back: bool) {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch("DROP TRIGGER events_append_only_delete; DELETE FROM events WHERE seq = 2;").unwrap();
    if move_head_back {
        conn.execute_batch(
            "UPDATE meta SET value = (SELECT lower(hex(hash)) FROM events WHERE seq = 1) WHERE key = 'head_hash';
             UPDATE meta SET value = '1' WHERE key = 'head_seq';",
        )
        .unwrap();
    }
}

/// Every open of `path` (read-only, read-write, again) is refused with `want`, the file unchanged,
/// and the fail-closed gate denies bob's analytics.
fn refused_every_time(path: &std::path::Path, policy: &std::sync::Arc<Policy>, clock: &std::sync::Arc<ManualClock>, want: ChainBreak) {
    for mode in [OpenMode::ReadOnly, OpenMode::ReadWrite, OpenMode::ReadWrite, OpenMode::ReadOnly] {
        let before = std::fs::read(path).unwrap();
        match ConsentStore::open_with(path, policy.clone(), clock.clone(), mode) {
            Err(Error::Tampered(b)) => assert_eq!(b, want, "{mode:?}"),
            Err(e) => panic!("{mode:?}: {e}"),
            Ok(store) => panic!("{mode:?}: opened; bob allowed: {}", store.check("bob", "usage_analytics", None).unwrap().allowed),
        }
        assert_eq!(std::fs::read(path).unwrap(), before, "{mode:?}: never healed");
    }
    let closed = ConsentStore::open_fail_closed(path, policy.clone(), clock.clone());
    assert!(!closed.check("bob", "usage_analytics", None).unwrap().allowed);
    assert!(closed.record(&DecisionInput::new("bob", "usage_statistics", Action::Grant, Source::Settings)).is_err());
}

#[test]
fn a_tail_cut_off_with_the_head_moved_back_is_refused_at_open_never_served_or_healed() {
    let (f, policy, clock) = withdrawn_bob();
    cut_off_the_withdrawal(&f.path, true);
    // bob's state row still records seq 2, after the head: the chain lost what the table knows.
    refused_every_time(&f.path, &policy, &clock, ChainBreak::StateAfterHead { seq: 2, state_seq: 2 });
}

#[test]
fn a_tail_cut_off_with_the_head_and_the_rows_seq_moved_back_is_refused_at_open() {
    let (f, policy, clock) = withdrawn_bob();
    cut_off_the_withdrawal(&f.path, true);
    Connection::open(&f.path).unwrap().execute("UPDATE subjects SET last_seq = 1", []).unwrap();
    // The digest no longer matches and the table (withdrawn) disagrees with the short history's
    // fold (granted): which one was edited cannot be told, so neither is served.
    refused_every_time(&f.path, &policy, &clock, ChainBreak::StateMismatch { seq: 1 });
}

#[test]
fn the_newest_event_deleted_with_the_head_left_is_refused_at_open_and_by_a_running_store_s_write() {
    let (mut f, policy, clock) = withdrawn_bob();
    f.store = ConsentStore::open_with(&f.path, policy.clone(), clock.clone(), OpenMode::ReadWrite).unwrap();
    cut_off_the_withdrawal(&f.path, false);
    // The running store: its next write would append after the gap; refused instead.
    let err = f.store.record(&DecisionInput::new("carol", "usage_statistics", Action::Refuse, Source::Settings)).unwrap_err();
    assert!(matches!(err, Error::Tampered(ChainBreak::Truncated { seq: 2, head: 2 })), "{err}");
    assert!(!f.allowed("bob", "usage_analytics"));
    let placeholder = ConsentStore::open_fail_closed(f.dir.path().join("none/x.db"), policy.clone(), clock.clone());
    drop(std::mem::replace(&mut f.store, placeholder));
    let max: i64 = Connection::open(&f.path).unwrap().query_row("SELECT max(seq) FROM events", [], |r| r.get(0)).unwrap();
    assert_eq!(max, 1, "nothing was appended after the gap");
    refused_every_time(&f.path, &policy, &clock, ChainBreak::Truncated { seq: 2, head: 2 });
}

// ----- SQLite's own check (review item 4) -----

#[test]
fn verify_reports_a_damaged_index_page_as_broken_naming_sqlite_s_message() {
    let mut f = Fixture::ucanywhere();
    f.grant("alice", "usage_statistics");
    f.record("alice", "usage_statistics", Action::Withdraw, Source::Settings);
    f.grant("bob", "usage_statistics");
    let placeholder =
        ConsentStore::open_fail_closed(f.dir.path().join("none/x.db"), f.store.policy().clone(), std::sync::Arc::new(f.clock.clone()));
    drop(std::mem::replace(&mut f.store, placeholder));
    // Everything in the main file, then 200 bytes of the subject index's root page flipped.
    let conn = Connection::open(&f.path).unwrap();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
    let page_size: u64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
    let root: u64 = conn.query_row("SELECT rootpage FROM sqlite_master WHERE name = 'events_by_subject'", [], |r| r.get(0)).unwrap();
    drop(conn);
    let mut bytes = std::fs::read(&f.path).unwrap();
    let at = ((root - 1) * page_size) as usize;
    for b in &mut bytes[at..at + 200] {
        *b ^= 0xA5;
    }
    std::fs::write(&f.path, &bytes).unwrap();
    let store = ConsentStore::open_with(&f.path, f.store.policy().clone(), std::sync::Arc::new(f.clock.clone()), OpenMode::ReadOnly);
    let err = match store {
        Ok(store) => store.verify().unwrap_err(),
        Err(e) => panic!("the damaged index does not stop the open; verify must find it: {e}"),
    };
    match &err {
        Error::Tampered(ChainBreak::FileDamaged { detail }) => assert!(!detail.is_empty() && detail != "ok", "{detail}"),
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("damaged"), "{err}");
}

// ----- subject ids an older version accepted (review item 5) -----

struct Counter(std::sync::atomic::AtomicUsize);
impl ConsentObserver for Counter {
    fn on_change(&self, _: &StatusChange) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A store holding, as an older version wrote them (sealed into the chain, with their state rows,
/// so the file is intact), grants of usage_statistics for `" alice"` and `"carol\u{200b}"` (ids
/// that print like others and new input refuses) and, for dave, device_contacts with the item
/// `" c1"`; plus a real alice granted usage_statistics.
fn legacy_ids_store() -> (Fixture, Vec<&'static str>) {
    let mut f = Fixture::ucanywhere();
    f.store.set_os_permission(OsPermission::CONTACTS, OsState::Granted).unwrap();
    f.grant("alice", "usage_statistics");
    let policy = f.store.policy().clone();
    let clock = std::sync::Arc::new(f.clock.clone());
    let placeholder = ConsentStore::open_fail_closed(f.dir.path().join("none/x.db"), policy.clone(), clock.clone());
    drop(std::mem::replace(&mut f.store, placeholder));
    let conn = Connection::open(&f.path).unwrap();
    drop_triggers(&conn);
    let legacy = vec![" alice", "carol\u{200b}"];
    let grant = |n: usize, id: &str, category: &str, scope: Option<&str>| {
        let at = f.clock.now();
        let mut r = Receipt::blank(Action::Grant, Source::Settings, &policy.id, &policy.version, at);
        // (Not a canonical UUID: stored as text, as the forger's row writes it.)
        r.id = format!("legacy-{n}");
        r.subject = Some(id.into());
        r.category = Some(category.into());
        r.scope = scope.map(Into::into);
        r.purpose_version = Some(1);
        r.valid_until = Some(at.plus(policy.consent_lifetime.unwrap()));
        r.seq = forge_append(&conn, r.clone());
        r
    };
    let mut n = 0;
    let row = |id: &str, receipts: Vec<Receipt>| {
        let state = state::SubjectState::fold(receipts.iter()).to_row();
        let last = receipts.last().unwrap().seq as i64;
        conn.execute("INSERT INTO subjects (subject, state, last_seq) VALUES (?1, ?2, ?3)", params![id, state, last]).unwrap();
    };
    for id in &legacy {
        n += 1;
        let r = grant(n, id, "usage_statistics", None);
        row(id, vec![r]);
    }
    let d1 = grant(10, "dave", "device_contacts", None);
    let d2 = grant(11, "dave", "device_contacts", Some(" c1"));
    row("dave", vec![d1, d2]);
    drop(conn);
    f.store = ConsentStore::open_with(&f.path, policy, clock, OpenMode::ReadWrite).unwrap();
    assert_eq!(f.store.verify().unwrap(), 6, "the file opens and verifies");
    (f, legacy)
}

#[test]
fn a_stored_subject_id_that_new_input_refuses_stays_usable_for_every_operation_and_only_its_own_records_count() {
    let (f, legacy) = legacy_ids_store();
    assert!(f.allowed("alice", "usage_analytics"));
    for id in legacy.iter().copied() {
        // Its check answers from its own records (a grant of that very id), neither an error nor
        // an allow from anyone else's.
        assert!(f.allowed(id, "usage_analytics"), "{id:?}");
        assert_eq!(f.store.status(id, "usage_statistics").unwrap().status, Status::Granted);
        assert!(!f.store.should_ask(id, "usage_statistics").unwrap(), "{id:?}");
        let seen = Arc::new(Counter(Default::default()));
        let _reg = f.store.observe(Watch::Subject(id.into()), seen.clone()).unwrap();
        // The user can withdraw (GDPR Art. 7(3)), and every other decision is recorded too.
        f.record(id, "usage_statistics", Action::Withdraw, Source::Settings);
        assert!(!f.allowed(id, "usage_analytics"), "{id:?}: withdrawn");
        assert_eq!(f.store.status(id, "usage_statistics").unwrap().status, Status::Withdrawn);
        f.record(id, "usage_statistics", Action::Refuse, Source::Settings);
        f.record(id, "contact_information", Action::Object, Source::Settings);
        f.store.set_under_age(id, false, Source::Settings).unwrap();
        // A grant for a subject the store holds is the same user's: accepted.
        f.grant(id, "usage_statistics");
        assert!(f.allowed(id, "usage_analytics"));
        f.store.record_batch(&[DecisionInput::new(id, "usage_statistics", Action::Withdraw, Source::Settings)]).unwrap();
        assert!(!f.allowed(id, "usage_analytics"));
        let actions: Vec<Action> = f.store.history(id).unwrap().iter().map(|r| r.action).collect();
        assert_eq!(actions.iter().filter(|&&a| a != Action::OsPermission).count(), 7, "{id:?}: {actions:?}");
        assert_eq!(f.store.export(id).unwrap().history.len(), 7, "{id:?}");
    }
    assert!(f.allowed("alice", "usage_analytics"), "the real alice is untouched");
    // An id new to the store keeps the strict rule, for a check as for a write.
    for new in [" bob", "bob\u{200b}"] {
        let err = f.store.check(new, "usage_analytics", None).unwrap_err();
        assert!(matches!(err, Error::InvalidInput { what: "subject", .. }), "{new:?}: {err:?}");
        let err = f.store.record(&DecisionInput::new(new, "usage_statistics", Action::Grant, Source::Settings)).unwrap_err();
        assert!(err.to_string().contains(&consentkit_core::input::check_subject(new).unwrap_err().to_string()), "{err}");
        assert!(f.store.set_under_age(new, true, Source::Settings).is_err());
        assert!(f.store.should_ask(new, "usage_statistics").is_err());
        assert!(f.store.observe(Watch::Subject(new.into()), Arc::new(Counter(Default::default()))).is_err());
    }
    // A stored scope likewise: checked, withdrawn; a new one refused.
    assert!(f.store.check("dave", "contact_sync", Some(" c1")).unwrap().allowed);
    let scoped = |scope: &str, action| DecisionInput::new("dave", "device_contacts", action, Source::Settings).with_scope(scope);
    assert!(matches!(f.store.record(&scoped(" c2", Action::Grant)), Err(Error::InvalidInput { what: "scope", .. })));
    assert!(!f.store.check("dave", "contact_sync", Some(" c2")).unwrap().allowed, "answered from dave's records");
    assert!(matches!(f.store.check("erin", "contact_sync", Some(" c2")), Err(Error::InvalidInput { what: "scope", .. })));
    f.store.record(&scoped(" c1", Action::Withdraw)).unwrap();
    assert!(!f.store.check("dave", "contact_sync", Some(" c1")).unwrap().allowed);
    assert!(f.allowed("dave", "contact_lookup"), "withdrawing one item keeps the category");
    // And erasable (the right to erasure holds for every stored subject).
    assert_eq!(f.store.erase(" alice", Source::Settings).unwrap().erased_events, 7);
    assert!(f.store.history(" alice").unwrap().iter().all(|r| r.subject.is_none()), "only device-wide events remain");
    assert!(f.store.check(" alice", "usage_analytics", None).is_err(), "erased: new to the store again");
    f.store.verify().unwrap();
}

#[test]
fn a_tail_cut_off_under_a_running_store_is_refused_by_its_next_write_never_healed() {
    let (mut f, policy, clock) = withdrawn_bob();
    f.store = ConsentStore::open_with(&f.path, policy.clone(), clock.clone(), OpenMode::ReadWrite).unwrap();
    cut_off_the_withdrawal(&f.path, true);
    // The running store served seq 2: a head moved back under it is a rollback.
    let err = f.store.record(&DecisionInput::new("carol", "usage_statistics", Action::Refuse, Source::Settings)).unwrap_err();
    assert!(matches!(err, Error::Tampered(ChainBreak::RolledBack { seq: 2 })), "{err}");
    assert!(!f.allowed("bob", "usage_analytics"), "the withdrawal is never lost");
    let placeholder = ConsentStore::open_fail_closed(f.dir.path().join("none/x.db"), policy.clone(), clock.clone());
    drop(std::mem::replace(&mut f.store, placeholder));
    refused_every_time(&f.path, &policy, &clock, ChainBreak::StateAfterHead { seq: 2, state_seq: 2 });
}
