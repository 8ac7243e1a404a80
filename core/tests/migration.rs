//! Opening files written by older schema versions: `fixtures/store-v3.db` (made by
//! `fixtures/make_store_v3.rs` with the schema-v3 code) answers, once opened and migrated, exactly
//! what that code answered about it (`fixtures/store-v3.expected.json`), and keeps working.
//! `fixtures/store-v5.db` (made by `fixtures/make_store_v5.rs` with the schema-v5 code) answers
//! what that code did, except the children's own item grants it allowed (the open under-age
//! order of schema v5), which the migrated store denies.

mod common;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::*;
use consentkit_core::chain;
use consentkit_core::*;
use rusqlite::Connection;
use serde_json::Value;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/store-v3.db");
const EXPECTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/store-v3.expected.json");
const SUBJECTS: &[&str] = &["alice", "bob", "carol", "dave", "erin", "frank"];

fn expected() -> Value {
    serde_json::from_str(&std::fs::read_to_string(EXPECTED).unwrap()).unwrap()
}

fn user_version(path: &Path) -> i64 {
    Connection::open(path).unwrap().query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap()
}

/// A copy of the v3 fixture in a temporary directory.
fn v3_copy(dir: &tempfile::TempDir) -> PathBuf {
    let path = dir.path().join("v3.db");
    std::fs::copy(FIXTURE, &path).unwrap();
    assert_eq!(user_version(&path), 3, "the fixture was written by schema version 3");
    path
}

fn open(path: &Path, clock: &ManualClock, mode: OpenMode) -> ConsentStore {
    ConsentStore::open_with(path, Arc::new(Policy::builtin()), Arc::new(clock.clone()), mode).unwrap()
}

fn json<T: serde::Serialize>(value: T) -> Value {
    serde_json::to_value(value).unwrap()
}

/// Everything the v3 code answered about the fixture, asked again of `store`.
fn assert_answers_as_recorded(store: &ConsentStore) {
    let want = expected();
    assert_eq!(store.verify().unwrap(), want["verify"].as_u64().unwrap());
    assert_eq!(store.sync_acked().unwrap(), want["sync_acked"].as_u64().unwrap());
    assert_eq!(json(store.pending_sync(1000).unwrap()), want["pending_sync"], "the outbox: same receipts, same hashes");
    let chain: Vec<(u64, String, String, String)> =
        store.chain_rows().unwrap().into_iter().map(|r| (r.seq, r.prev_hash, r.content_hash, r.hash)).collect();
    assert_eq!(json(chain), want["chain_hashes"], "every row keeps its link hashes, tombstones included");
    assert_eq!(store.os_state(OsPermission::CONTACTS).as_str(), want["os"]["contacts"]);
    assert_eq!(store.os_state(OsPermission::PHOTOS).as_str(), want["os"]["photos"]);
    for subject in SUBJECTS {
        let w = &want["subjects"][subject];
        assert_eq!(json(store.statuses(subject).unwrap()), w["statuses"], "statuses of {subject}");
        assert_eq!(json(store.history(subject).unwrap()), w["history"], "history of {subject}");
        assert_eq!(json(store.export(subject).unwrap().history), w["export_history"], "export of {subject}");
        assert_eq!(json(store.erasures_of(subject).unwrap()), w["erasures"], "erasure records of {subject}");
        for (feature, allowed) in w["allowed"].as_object().unwrap() {
            assert_eq!(Value::Bool(store.check(subject, feature, None).unwrap().allowed), *allowed, "{subject} {feature}");
        }
    }
}

#[test]
fn the_recorded_answers_cover_every_kind_of_event() {
    // The fixture is worth something only if it holds grants, refusals, withdrawals, an objection,
    // a per-item grant, an under-age record, OS changes, an import, an erasure and a purge.
    let want = expected();
    let mut actions: Vec<String> = Vec::new();
    let mut sources: Vec<String> = Vec::new();
    for subject in SUBJECTS {
        for r in want["subjects"][subject]["history"].as_array().unwrap() {
            actions.push(r["action"].as_str().unwrap().into());
            sources.push(r["source"].as_str().unwrap().into());
        }
    }
    for r in want["pending_sync"].as_array().unwrap() {
        actions.push(r["action"].as_str().unwrap().into());
    }
    for action in ["grant", "refuse", "withdraw", "object", "withdraw_objection", "age_status", "os_permission", "erasure"] {
        assert!(actions.iter().any(|a| a == action), "no {action} in the fixture");
    }
    assert!(sources.iter().any(|s| s == "import"), "no imported event");
    assert!(want["chain_hashes"].as_array().unwrap().len() >= 20);
    let conn = Connection::open(FIXTURE).unwrap();
    let purges: i64 = conn.query_row("SELECT count(*) FROM events WHERE action = 'purge'", [], |r| r.get(0)).unwrap();
    let tombstones: i64 = conn.query_row("SELECT count(*) FROM events WHERE removed_by IS NOT NULL", [], |r| r.get(0)).unwrap();
    assert_eq!((purges, tombstones), (1, 3), "a purge record, and three tombstones (one purged, two erased)");
}

#[test]
fn a_schema_version_3_file_opens_migrated_with_the_same_answers_and_proof() {
    let dir = tempfile::tempdir().unwrap();
    let path = v3_copy(&dir);
    let clock = ManualClock::new(ts(expected()["now"].as_str().unwrap()));
    let store = open(&path, &clock, OpenMode::ReadWrite);
    assert_eq!(user_version(&path), schema::LATEST);
    assert_answers_as_recorded(&store);
    // The store keeps working on the migrated file: a write, an erasure, the proof.
    let r = store.record(&DecisionInput::new("bob", "photos_media", Action::Withdraw, Source::Settings)).unwrap();
    assert_eq!(r.seq, 24);
    assert_eq!(r.prev_hash, expected()["chain_hashes"][22][3], "appended after the migrated head");
    assert_eq!(store.erase("alice", Source::Settings).unwrap().erased_events, 7);
    assert_eq!(store.verify().unwrap(), 25);
    assert!(!store.check("bob", "photo_sharing", None).unwrap().allowed);
    drop(store);
    // Reopened (read-write, then read-only): the same.
    let store = open(&path, &clock, OpenMode::ReadWrite);
    assert_eq!(store.verify().unwrap(), 25);
    assert_eq!(store.status("alice", "photos_media").unwrap().status, Status::NotAsked);
    drop(store);
    let ro = open(&path, &clock, OpenMode::ReadOnly);
    assert_eq!(ro.verify().unwrap(), 25);
    assert_eq!(ro.status("dave", "usage_statistics").unwrap().status, Status::Granted);
}

#[test]
fn a_schema_version_3_file_opened_read_only_asks_for_a_migration_and_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = v3_copy(&dir);
    let before = std::fs::read(&path).unwrap();
    let clock = ManualClock::new(ts(expected()["now"].as_str().unwrap()));
    let err = ConsentStore::open_with(&path, Arc::new(Policy::builtin()), Arc::new(clock), OpenMode::ReadOnly).err().unwrap();
    assert!(err.to_string().contains("needs a migration"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

/// Every row of every table, as text: what "the file is unchanged" compares.
fn dump(path: &Path) -> Vec<String> {
    let conn = Connection::open(path).unwrap();
    let mut out = vec![format!("user_version {}", conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0)).unwrap())];
    for table in ["events", "meta", "subjects", "os_permissions"] {
        let mut stmt = conn.prepare(&format!("SELECT * FROM {table} ORDER BY 1")).unwrap();
        let n = stmt.column_count();
        let rows = stmt
            .query_map([], |r| {
                (0..n).map(|i| r.get::<_, rusqlite::types::Value>(i).map(|v| format!("{v:?}"))).collect::<rusqlite::Result<Vec<_>>>()
            })
            .unwrap();
        out.extend(rows.map(|r| format!("{table}: {}", r.unwrap().join(", "))));
    }
    out
}

/// A v3 copy edited as someone with the sqlite3 shell would (the v3 triggers dropped first).
fn tampered_v3(dir: &tempfile::TempDir, sql: &str) -> PathBuf {
    let path = v3_copy(dir);
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch("DROP TRIGGER events_append_only_delete; DROP TRIGGER events_append_only_update;").unwrap();
    conn.execute_batch(sql).unwrap();
    path
}

#[test]
fn a_schema_version_3_file_that_does_not_verify_is_not_migrated_and_fails_closed() {
    let erase_by_hand = "UPDATE events SET id=NULL, subject=NULL, category=NULL, action=NULL, scope=NULL, source=NULL, policy_id=NULL, \
         policy_version=NULL, purpose_version=NULL, at=NULL, valid_until=NULL, permission=NULL, os_state=NULL, detail=NULL, removed_by=19 \
         WHERE seq=8";
    let cases = [
        ("an edited event: alice's refusal made a grant", "UPDATE events SET action='grant' WHERE seq=8", "chain broken at seq 8"),
        (
            "an edited prev_hash (the column v4 no longer stores)",
            "UPDATE events SET prev_hash=(SELECT prev_hash FROM events WHERE seq=3) WHERE seq=10",
            "event 10",
        ),
        ("an edited link hash", "UPDATE events SET hash=(SELECT hash FROM events WHERE seq=3) WHERE seq=23", "chain broken at seq 23"),
        ("a deleted row", "DELETE FROM events WHERE seq=12", "chain broken at seq 12"),
        ("a truncated chain", "DELETE FROM events WHERE seq >= 20", "truncated"),
        (
            "two rows swapped",
            "UPDATE events SET seq=100 WHERE seq=6; UPDATE events SET seq=6 WHERE seq=7; UPDATE events SET seq=7 WHERE seq=100;",
            "event 6",
        ),
        ("a tombstone made by hand", erase_by_hand, "chain broken at seq 8"),
        ("a hash that is not hex", "UPDATE events SET content_hash=upper(content_hash) WHERE seq=9", "event 9"),
    ];
    let now = ts(expected()["now"].as_str().unwrap());
    for (what, sql, named) in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = tampered_v3(&dir, sql);
        let before = dump(&path);
        let clock = ManualClock::new(now);
        let err = ConsentStore::open_with(&path, Arc::new(Policy::builtin()), Arc::new(clock.clone()), OpenMode::ReadWrite).err();
        let err = err.unwrap_or_else(|| panic!("{what}: migrated and opened"));
        assert!(err.to_string().contains(named), "{what}: {err}");
        assert_eq!(dump(&path), before, "{what}: the file is left as it was (rolled back)");
        // The app's fail-closed open: consent-gated features denied, the file kept.
        let closed = ConsentStore::open_fail_closed(&path, Arc::new(Policy::builtin()), Arc::new(clock));
        assert!(closed.unavailable().is_some(), "{what}");
        let d = closed.check("dave", "usage_analytics", None).unwrap();
        assert!(!d.allowed && d.reasons.iter().any(|r| r.code == ReasonCode::StoreUnavailable), "{what}: {d:?}");
        assert!(closed.record(&DecisionInput::new("dave", "usage_statistics", Action::Withdraw, Source::Settings)).is_err());
        drop(closed);
        assert_eq!(dump(&path), before, "{what}: still untouched");
    }
}

#[test]
fn a_schema_version_3_state_table_edit_is_not_carried_into_the_migrated_store() {
    // The chain verifies, the state table does not match its digest and disagrees with the
    // history: refused as tampered (fail closed), never served, never rebuilt.
    let dir = tempfile::tempdir().unwrap();
    let path = tampered_v3(&dir, "UPDATE subjects SET state = replace(state, '\"refused\"', '\"granted\"') WHERE subject = 'erin'");
    let clock = ManualClock::new(ts(expected()["now"].as_str().unwrap()));
    let Err(err) = open_result(&path, &clock) else { panic!("opened") };
    assert!(matches!(err, Error::Tampered(chain::ChainBreak::StateMismatch { .. })), "{err}");
    let closed = ConsentStore::open_fail_closed(&path, Arc::new(Policy::builtin()), Arc::new(clock.clone()));
    assert!(!closed.check("erin", "photo_sharing", None).unwrap().allowed, "never the edit");
    drop(closed);
    // Never rebuilt: a second open refuses it again.
    assert!(matches!(open_result(&path, &clock), Err(Error::Tampered(_))));
}

fn open_result(path: &Path, clock: &ManualClock) -> Result<ConsentStore> {
    ConsentStore::open_with(path, Arc::new(Policy::builtin()), Arc::new(clock.clone()), OpenMode::ReadWrite)
}

/// Appends `n` sealed events to a v3 file in the v3 row format (text hashes, stored prev_hash),
/// as the v3 code wrote them: subject `zed` granting and withdrawing usage statistics in turn.
fn grow_v3(path: &Path, n: u64) {
    let conn = Connection::open(path).unwrap();
    let (mut seq, mut prev): (u64, String) = conn
        .query_row("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1", [], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)))
        .unwrap();
    conn.execute_batch("BEGIN").unwrap();
    let mut appended = Vec::new();
    for i in 0..n {
        seq += 1;
        let action = if i % 2 == 0 { Action::Grant } else { Action::Withdraw };
        let mut r = Receipt {
            id: uuid::Uuid::new_v4().to_string(),
            seq,
            subject: Some("zed".into()),
            category: Some("usage_statistics".into()),
            purpose_version: Some(1),
            ..Receipt::blank(action, Source::Settings, "ucanywhere", "2018-05-01", ts("2026-01-14T10:00:00Z"))
        };
        chain::seal(&mut r, &prev);
        conn.execute(
            "INSERT INTO events (seq, id, subject, category, action, source, policy_id, policy_version, purpose_version, at, content_hash, \
             prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            rusqlite::params![
                seq as i64,
                r.id,
                r.subject,
                r.category,
                r.action.as_str(),
                r.source.as_str(),
                r.policy_id,
                r.policy_version,
                r.purpose_version,
                r.at.millis(),
                r.content_hash,
                r.prev_hash,
                r.hash
            ],
        )
        .unwrap();
        prev = r.hash.clone();
        appended.push(r);
    }
    // And zed's state row, as the v3 code wrote it in the same transaction (JSON text).
    let state = state::SubjectState::fold(&appended);
    conn.execute(
        "INSERT OR REPLACE INTO subjects (subject, state, last_seq) VALUES ('zed', ?1, ?2)",
        rusqlite::params![serde_json::to_string(&state).unwrap(), seq as i64],
    )
    .unwrap();
    conn.execute("UPDATE meta SET value = ?1 WHERE key = 'head_seq'", [seq.to_string()]).unwrap();
    conn.execute("UPDATE meta SET value = ?1 WHERE key = 'head_hash'", [&prev]).unwrap();
    conn.execute_batch("COMMIT; VACUUM;").unwrap();
}

#[test]
fn a_migrated_file_stores_the_compact_row_and_shrinks() {
    let dir = tempfile::tempdir().unwrap();
    let path = v3_copy(&dir);
    grow_v3(&path, 3000);
    let v3_bytes = std::fs::metadata(&path).unwrap().len();
    let clock = ManualClock::new(ts(expected()["now"].as_str().unwrap()));
    let store = open(&path, &clock, OpenMode::ReadWrite);
    assert_eq!(store.verify().unwrap(), 3023);
    assert_eq!(store.status("zed", "usage_statistics").unwrap().status, Status::Withdrawn, "the state is the fold of the grown history");
    assert_eq!(store.history("zed").unwrap().len(), 3000 + 3, "with the three OS changes");
    drop(store);
    let conn = Connection::open(&path).unwrap();
    let columns: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('events')")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    assert!(!columns.iter().any(|c| c == "prev_hash"), "{columns:?}");
    let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
    assert_eq!(count("SELECT count(*) FROM events WHERE typeof(hash) = 'blob' AND length(hash) = 32 AND length(content_hash) = 32"), 3023);
    assert_eq!(
        count("SELECT count(*) FROM events WHERE removed_by IS NULL AND length(id) = 16"),
        3020,
        "every live id is a UUID's 16 bytes"
    );
    assert_eq!(count("SELECT count(*) FROM events WHERE typeof(action) NOT IN ('integer', 'null')"), 0);
    assert_eq!(count("SELECT count(*) FROM sqlite_master WHERE name = 'events_v3'"), 0, "the old table is gone");
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
    drop(conn);
    // The old table's pages are given back (VACUUM after the migration's commit).
    let v4_bytes = std::fs::metadata(&path).unwrap().len();
    assert!(v4_bytes * 2 < v3_bytes, "{v4_bytes} bytes after the migration, {v3_bytes} before");
}

const KILL_ENV: &str = "CONSENTKIT_MIGRATION_KILL_DB";

/// Child side of the kill test: opens (so migrates) the file, says so, then waits to be killed.
#[test]
fn migration_kill_child() {
    let Ok(path) = std::env::var(KILL_ENV) else { return };
    let clock = ManualClock::new(ts(expected()["now"].as_str().unwrap()));
    let store = open(Path::new(&path), &clock, OpenMode::ReadWrite);
    println!("migrated");
    std::thread::sleep(std::time::Duration::from_secs(60));
    drop(store);
}

#[test]
fn a_migration_killed_at_any_point_leaves_v3_or_a_complete_v4() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let grown = v3_copy(&dir);
    grow_v3(&grown, 20_000);
    let now = ts(expected()["now"].as_str().unwrap());
    let mut outcomes = Vec::new();
    // Killed as soon as the migration's transaction has spilled into the WAL (mid-copy), and
    // after it said it was done.
    for kill_after_migrated in [false, true] {
        let path = dir.path().join(format!("kill-{kill_after_migrated}.db"));
        std::fs::copy(&grown, &path).unwrap();
        let wal = PathBuf::from(format!("{}-wal", path.display()));
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "migration_kill_child", "--nocapture", "--test-threads=1"])
            .env(KILL_ENV, &path)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        if kill_after_migrated {
            let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
            // (libtest may have printed the test's name on the same line.)
            while !lines.next().expect("child ended early").unwrap().ends_with("migrated") {}
        } else {
            while std::fs::metadata(&wal).map_or(0, |m| m.len()) < 512 * 1024 {
                assert!(child.try_wait().unwrap().is_none(), "the child ended before the migration wrote");
                std::thread::yield_now();
            }
        }
        child.kill().unwrap(); // SIGKILL: no destructor, mid-transaction for the first
        child.wait().unwrap();
        let version = user_version(&path);
        assert!(version == 3 || version == schema::LATEST, "user_version {version} after the kill");
        outcomes.push(version);
        // Either way the next open answers as before: v3 migrates now, v4 opens as it is.
        let clock = ManualClock::new(now);
        let store = open(&path, &clock, OpenMode::ReadWrite);
        assert_eq!(user_version(&path), schema::LATEST);
        assert_eq!(store.verify().unwrap(), 20_023);
        let want = expected();
        for subject in SUBJECTS {
            assert_eq!(json(store.statuses(subject).unwrap()), want["subjects"][subject]["statuses"], "statuses of {subject}");
        }
        assert_eq!(json(store.history("alice").unwrap()), want["subjects"]["alice"]["history"]);
        assert_eq!(store.history("zed").unwrap().len(), 20_003);
    }
    assert_eq!(outcomes[1], schema::LATEST, "a migration that said it was done is durable");
    eprintln!("user_version after the mid-migration kill: {}", outcomes[0]);
}

const FIXTURE_V5: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/store-v5.db");
const EXPECTED_V5: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/store-v5.expected.json");

fn expected_v5() -> Value {
    serde_json::from_str(&std::fs::read_to_string(EXPECTED_V5).unwrap()).unwrap()
}

/// A copy of the v5 fixture in a temporary directory.
fn v5_copy(dir: &tempfile::TempDir) -> PathBuf {
    let path = dir.path().join("v5.db");
    std::fs::copy(FIXTURE_V5, &path).unwrap();
    assert_eq!(user_version(&path), 5, "the fixture was written by schema version 5");
    path
}

/// The children's own items (granted before the mark, after the guardian's grant of the category)
/// that the schema-v5 code allowed.
const CHILDS_OWN_ITEMS: &[(&str, &str)] = &[("kid", "contact-1"), ("teen", "contact-3")];

/// What the migrated store must answer about the v5 fixture: what the v5 code answered, except
/// the children's own items, denied.
fn assert_answers_as_v5_without_the_childs_items(store: &ConsentStore) {
    let want = expected_v5();
    assert_eq!(store.verify().unwrap(), want["verify"].as_u64().unwrap());
    for (subject, statuses) in want["statuses"].as_object().unwrap() {
        assert_eq!(json(store.statuses(subject).unwrap()), *statuses, "statuses of {subject}");
    }
    for c in want["contact_sync"].as_array().unwrap() {
        let (subject, item, v5_allowed) = (c["subject"].as_str().unwrap(), c["item"].as_str().unwrap(), c["allowed"].as_bool().unwrap());
        let d = store.check(subject, "contact_sync", Some(item)).unwrap();
        if CHILDS_OWN_ITEMS.contains(&(subject, item)) {
            assert!(v5_allowed, "the fixture holds the defect: v5 allowed {subject} {item}");
            assert!(!d.allowed, "{subject} {item}: the child's own item is allowed after the migration: {d:?}");
            assert_eq!(d.reasons.iter().map(|r| r.code.as_str()).collect::<Vec<_>>(), ["scope_not_granted"], "{subject} {item}");
        } else {
            assert_eq!(d.allowed, v5_allowed, "{subject} {item}: {d:?}");
        }
    }
}

#[test]
fn a_schema_version_5_file_opens_migrated_and_denies_the_childs_own_items() {
    let dir = tempfile::tempdir().unwrap();
    let path = v5_copy(&dir);
    let clock = ManualClock::new(ts(expected_v5()["now"].as_str().unwrap()));
    let store = open(&path, &clock, OpenMode::ReadWrite);
    assert_eq!(user_version(&path), schema::LATEST);
    assert_answers_as_v5_without_the_childs_items(&store);
    // The store keeps working: the guardian grants the child's item, and it counts.
    let r = store.record(&DecisionInput::new("kid", "device_contacts", Action::Grant, Source::Guardian).with_scope("contact-1")).unwrap();
    assert_eq!(r.seq, 20);
    assert!(store.check("kid", "contact_sync", Some("contact-1")).unwrap().allowed);
    // The child cannot grant one itself.
    assert!(store.record(&DecisionInput::new("teen", "device_contacts", Action::Grant, Source::Settings).with_scope("contact-3")).is_err());
    assert_eq!(store.verify().unwrap(), 20);
    drop(store);
    // Reopened (read-write, then read-only): the same.
    let store = open(&path, &clock, OpenMode::ReadWrite);
    assert!(store.check("kid", "contact_sync", Some("contact-1")).unwrap().allowed);
    assert!(!store.check("teen", "contact_sync", Some("contact-3")).unwrap().allowed);
    drop(store);
    let ro = open(&path, &clock, OpenMode::ReadOnly);
    assert_eq!(ro.verify().unwrap(), 20);
    assert!(!ro.check("teen", "contact_sync", Some("contact-3")).unwrap().allowed);
    assert!(ro.check("teen", "contact_sync", Some("contact-2")).unwrap().allowed, "the guardian's own item");
}

#[test]
fn a_schema_version_5_file_opened_read_only_asks_for_a_migration_and_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = v5_copy(&dir);
    let before = dump(&path);
    let clock = ManualClock::new(ts(expected_v5()["now"].as_str().unwrap()));
    let err = ConsentStore::open_with(&path, Arc::new(Policy::builtin()), Arc::new(clock), OpenMode::ReadOnly).err().unwrap();
    assert!(err.to_string().contains("needs a migration"), "{err}");
    assert_eq!(dump(&path), before);
}

#[test]
fn a_schema_version_5_file_whose_chain_does_not_verify_is_not_migrated_and_fails_closed() {
    // The migration to v6 takes each item's granter from the history, so it walks the chain:
    // bob's refusal edited into a grant breaks it (the state table and digest left as they were).
    let dir = tempfile::tempdir().unwrap();
    let path = v5_copy(&dir);
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch("DROP TRIGGER events_append_only_update;").unwrap();
    let n = conn.execute("UPDATE events SET action = ?1 WHERE seq = 16", [schema::action_code(Action::Grant)]).unwrap();
    assert_eq!(n, 1);
    drop(conn);
    let before = dump(&path);
    let clock = ManualClock::new(ts(expected_v5()["now"].as_str().unwrap()));
    let Err(err) = open_result(&path, &clock) else { panic!("migrated and opened") };
    assert!(err.to_string().contains("chain broken at seq 16"), "{err}");
    assert_eq!(dump(&path), before, "rolled back: the file is left as it was");
    let closed = ConsentStore::open_fail_closed(&path, Arc::new(Policy::builtin()), Arc::new(clock));
    assert!(closed.unavailable().is_some());
    for (subject, item) in [("kid", "contact-1"), ("teen", "contact-2"), ("bob", "contact-7")] {
        assert!(!closed.check(subject, "contact_sync", Some(item)).unwrap().allowed, "{subject} {item}");
    }
    drop(closed);
    assert_eq!(dump(&path), before, "still untouched");
}
