//! Opening files written by older schema versions: `fixtures/store-v3.db` (made by
//! `fixtures/make_store_v3.rs` with the schema-v3 code) answers, once opened and migrated, exactly
//! what that code answered about it (`fixtures/store-v3.expected.json`), and keeps working.

mod common;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::*;
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
    let result = ConsentStore::open_with(&path, Arc::new(Policy::builtin()), Arc::new(clock), OpenMode::ReadOnly);
    if schema::LATEST > 3 {
        let err = result.err().expect("a read-only open of an old file fails");
        assert!(err.to_string().contains("needs a migration"), "{err}");
    } else {
        assert_answers_as_recorded(&result.unwrap());
    }
    assert_eq!(std::fs::read(&path).unwrap(), before);
}
