//! Proof and rights: tamper evidence, export/import, erasure that leaves no byte of the subject,
//! retention purge, and the sync outbox.

mod common;
use common::*;
use consentkit_core::*;
use consentkit_core::{chain, schema};
use rusqlite::Connection;

/// A store with history for alice and bob.
fn populated() -> Fixture {
    let f = Fixture::ucanywhere();
    f.store.set_os_permission(OsPermission::CONTACTS, OsState::Granted).unwrap();
    f.grant("alice", "usage_statistics");
    f.grant("alice", "device_contacts");
    f.store.record(&DecisionInput::new("alice", "device_contacts", Action::Grant, Source::Settings).with_scope("contact-42")).unwrap();
    f.grant("bob", "photos_media");
    f.record("alice", "usage_statistics", Action::Withdraw, Source::Settings);
    f.record("alice", "contact_information", Action::Object, Source::Support);
    f
}

/// Opens the file as an attacker would with the sqlite3 shell (triggers dropped first).
fn tamper(f: &Fixture, sql: &str) {
    let conn = Connection::open(&f.path).unwrap();
    conn.execute_batch("DROP TRIGGER IF EXISTS events_append_only_delete; DROP TRIGGER IF EXISTS events_append_only_update; DROP TRIGGER IF EXISTS events_append_only_insert; DROP TRIGGER IF EXISTS names_append_only_insert;").unwrap();
    conn.execute_batch(sql).unwrap();
}

fn broken_seq(f: &Fixture) -> u64 {
    match f.store.verify() {
        Err(Error::Tampered(b)) => b.seq(),
        other => panic!("expected tampering, got {other:?}"),
    }
}

#[test]
fn intact_chain_verifies_with_count() {
    let f = populated();
    assert_eq!(f.store.verify().unwrap(), 7);
}

#[test]
fn the_schema_refuses_in_place_edits() {
    let f = populated();
    let conn = Connection::open(&f.path).unwrap();
    assert!(conn.execute("UPDATE events SET action=?1 WHERE seq=5", [schema::action_code(Action::Grant)]).is_err());
    assert!(conn.execute("DELETE FROM events WHERE seq=3", []).is_err());
}

#[test]
fn an_edited_column_is_found() {
    let f = populated();
    // seq 6 (a withdrawal) made a grant, as the file encodes one.
    tamper(&f, &format!("UPDATE events SET action={} WHERE seq=6", schema::action_code(Action::Grant)));
    assert!(matches!(f.store.verify(), Err(Error::Tampered(chain::ChainBreak::ContentMismatch { seq: 6 }))));
}

#[test]
fn every_edit_of_the_compact_row_is_found() {
    // Each part of the v4 row that a receipt is decoded from: the coded columns, the interned
    // names, the UUID bytes of the id, the hash BLOBs, a value the store never writes.
    let grant = schema::action_code(Action::Grant);
    let support = schema::source_code(Source::Support);
    type Found = fn(&chain::ChainBreak) -> bool;
    let edits: Vec<(String, Found)> = vec![
        (format!("UPDATE events SET source={support} WHERE seq=3"), |b| *b == chain::ChainBreak::ContentMismatch { seq: 3 }),
        ("UPDATE events SET action='grant' WHERE seq=6".into(), |b| *b == chain::ChainBreak::ContentMismatch { seq: 6 }),
        ("UPDATE events SET action=99 WHERE seq=6".into(), |b| *b == chain::ChainBreak::ContentMismatch { seq: 6 }),
        ("UPDATE events SET category=(SELECT code FROM names WHERE name='photos_media') WHERE seq=2".into(), |b| {
            *b == chain::ChainBreak::ContentMismatch { seq: 2 }
        }),
        // Renaming a name edits every event that uses it: the first one is named.
        ("UPDATE names SET name='traffic_data' WHERE name='usage_statistics'".into(), |b| {
            *b == chain::ChainBreak::ContentMismatch { seq: 2 }
        }),
        ("DELETE FROM names WHERE name='device_contacts'".into(), |b| *b == chain::ChainBreak::ContentMismatch { seq: 3 }),
        ("UPDATE events SET id=unhex('00112233445566778899aabbccddeeff') WHERE seq=4".into(), |b| {
            *b == chain::ChainBreak::ContentMismatch { seq: 4 }
        }),
        ("UPDATE events SET id=lower(hex(id)) WHERE seq=4".into(), |b| *b == chain::ChainBreak::ContentMismatch { seq: 4 }),
        ("UPDATE events SET at=at+1 WHERE seq=5".into(), |b| *b == chain::ChainBreak::ContentMismatch { seq: 5 }),
        ("UPDATE events SET content_hash=zeroblob(32) WHERE seq=5".into(), |b| *b == chain::ChainBreak::BrokenLink { seq: 5 }),
        ("UPDATE events SET hash=zeroblob(32) WHERE seq=5".into(), |b| *b == chain::ChainBreak::BrokenLink { seq: 5 }),
        ("UPDATE events SET hash=lower(hex(hash)) WHERE seq=5".into(), |b| *b == chain::ChainBreak::BrokenLink { seq: 5 }),
        (format!("UPDATE events SET action={grant}, valid_until=at+1000 WHERE seq=7"), |b| {
            *b == chain::ChainBreak::ContentMismatch { seq: 7 }
        }),
    ];
    for (sql, expected) in edits {
        let f = populated();
        tamper(&f, "DROP TRIGGER IF EXISTS names_append_only_update; DROP TRIGGER IF EXISTS names_append_only_delete;");
        tamper(&f, &sql);
        match f.store.verify() {
            Err(Error::Tampered(b)) => assert!(expected(&b), "{sql}: {b:?}"),
            other => panic!("{sql}: expected tampering, got {other:?}"),
        }
    }
}

#[test]
fn the_names_table_is_append_only() {
    let f = populated();
    let conn = Connection::open(&f.path).unwrap();
    assert!(conn.execute("UPDATE names SET name='photos_media' WHERE name='usage_statistics'", []).is_err());
    assert!(conn.execute("DELETE FROM names", []).is_err());
    drop(conn);
    assert_eq!(f.store.verify().unwrap(), 7);
}

#[test]
fn a_deleted_middle_row_is_found() {
    let f = populated();
    tamper(&f, "DELETE FROM events WHERE seq=4");
    assert_eq!(broken_seq(&f), 4);
}

#[test]
fn swapped_rows_are_found() {
    let f = populated();
    tamper(&f, "UPDATE events SET seq=100 WHERE seq=3; UPDATE events SET seq=3 WHERE seq=5; UPDATE events SET seq=5 WHERE seq=100;");
    assert_eq!(broken_seq(&f), 3);
}

#[test]
fn a_truncated_chain_is_found() {
    let f = populated();
    tamper(&f, "DELETE FROM events WHERE seq >= 6");
    assert_eq!(broken_seq(&f), 6);
    assert!(f.store.verify().unwrap_err().to_string().contains("truncated"));
}

#[test]
fn a_hand_made_tombstone_is_found() {
    let f = populated();
    tamper(&f, "UPDATE events SET subject=NULL, action=NULL, removed_by=7 WHERE seq=2");
    assert_eq!(broken_seq(&f), 2);
}

#[test]
fn export_then_import_gives_identical_state_and_history() {
    let f = populated();
    f.store.set_under_age("alice", true, Source::Settings).unwrap();
    f.record("alice", "usage_statistics", Action::Grant, Source::Guardian);
    let json = f.store.export_json("alice").unwrap();
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    for key in ["format", "exported_at", "subject", "policy", "under_age", "state", "history", "os_permissions"] {
        assert!(doc.get(key).is_some(), "export has {key}");
    }
    assert!(doc["exported_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(doc["history"][0]["at"].as_str().unwrap(), "2026-01-15T09:00:00Z");

    let target = Fixture::ucanywhere();
    target.clock.set(f.store.now());
    let restored = target.store.import_json(&json).unwrap();
    let original = f.store.export("alice").unwrap();
    assert_eq!(restored.len(), original.history.len());
    assert_eq!(target.store.statuses("alice").unwrap(), f.store.statuses("alice").unwrap());
    for (a, b) in original.history.iter().zip(&restored) {
        assert_eq!((&a.id, a.at, a.action, &a.category, &a.scope), (&b.id, b.at, b.action, &b.category, &b.scope));
        assert_eq!((b.source, b.effective_source()), (Source::Import, a.source));
    }
    // The item grant survives import as it was: alice's own (from settings, before she was marked
    // under age), so not a guardian's; both stores deny it alike.
    let item =
        |store: &ConsentStore| store.snapshot().subjects.get("alice").unwrap().categories["device_contacts"].scopes["contact-42"].clone();
    assert_eq!(item(&target.store), item(&f.store));
    assert!(!item(&target.store).by_guardian);
    target.store.set_os_permission(OsPermission::CONTACTS, OsState::Granted).unwrap();
    let d = target.store.check("alice", "contact_sync", Some("contact-42")).unwrap();
    assert_eq!(d, f.store.check("alice", "contact_sync", Some("contact-42")).unwrap());
    assert!(!d.allowed && d.reasons.iter().any(|r| r.code == ReasonCode::UnderAge), "{d:?}");
    assert!(target.store.check("alice", "usage_analytics", None).unwrap().allowed, "guardian grant survives import");
    assert!(target.store.verify().is_ok());
    let again = target.store.import_json(&json).unwrap_err();
    assert!(again.to_string().contains("already has records"), "{again}");
}

#[test]
fn forged_or_malformed_exports_are_rejected_and_change_nothing() {
    let f = populated();
    let json = f.store.export_json("alice").unwrap();
    let forged = json.replacen("\"withdraw\"", "\"grant\"", 1);
    assert_ne!(forged, json);
    let other_policy = json.replacen("\"id\": \"ucanywhere\"", "\"id\": \"milo-and-pi\"", 1);
    let mut value: serde_json::Value = serde_json::from_str(&json).unwrap();
    value["state"][6]["status"] = "granted".into();
    let lying_state = value.to_string();
    let target = Fixture::ucanywhere();
    target.grant("carol", "photos_media");
    let before = std::fs::read(&target.path).unwrap();
    let cases = [
        (forged.as_str(), "does not verify"),
        (other_policy.as_str(), "policy 'milo-and-pi'"),
        (lying_state.as_str(), "state of 'usage_statistics' is 'granted'"),
        ("{\"format\": 3}", "malformed document at $.format"),
        ("not json", "malformed document"),
    ];
    for (doc, expected) in cases {
        let err = target.store.import_json(doc).unwrap_err();
        assert!(matches!(err, Error::Import(_)) && err.to_string().contains(expected), "expected '{expected}' in '{err}'");
    }
    assert!(target.store.history("alice").unwrap().is_empty());
    assert_eq!(target.store.verify().unwrap(), 1);
    assert_eq!(std::fs::read(&target.path).unwrap(), before);
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn erasure_leaves_no_byte_of_the_subject_and_keeps_the_chain() {
    let f = populated();
    let subject = "alice.unique-subject@example.org";
    f.grant(subject, "usage_statistics");
    f.store.record(&DecisionInput::new(subject, "device_contacts", Action::Grant, Source::Settings).with_scope("contact-99")).unwrap();
    f.store.set_under_age(subject, false, Source::Settings).unwrap();
    let wal = f.path.with_file_name("consent.db-wal");
    let raw = || {
        let mut bytes = std::fs::read(&f.path).unwrap();
        bytes.extend(std::fs::read(&wal).unwrap_or_default());
        bytes
    };
    assert!(contains(&raw(), subject.as_bytes()), "the subject is on disk before erasure");
    let report = f.store.erase(subject, Source::Support).unwrap();
    assert_eq!(report.erased_events, 3);
    assert!(!contains(&raw(), subject.as_bytes()), "no byte of the subject id is left in the file or its WAL");
    assert!(!contains(&raw(), b"contact-99"));
    assert_eq!(f.store.status(subject, "usage_statistics").unwrap().status, Status::NotAsked);
    assert!(f.store.history(subject).unwrap().iter().all(|e| e.subject.is_none()), "only device events remain");
    assert_eq!(f.store.verify().unwrap(), 11);
    let confirmed = f.store.erasures_of(subject).unwrap();
    assert_eq!(confirmed.len(), 1);
    assert_eq!(confirmed[0].at, report.receipt.at);
    assert!(!report.receipt.detail.clone().unwrap().contains(subject));
    // Other subjects are untouched and the store keeps working.
    assert_eq!(f.store.status("bob", "photos_media").unwrap().status, Status::Granted);
    f.grant(subject, "usage_statistics");
    assert_eq!(f.store.verify().unwrap(), 12);
}

#[test]
fn purge_keeps_current_status_and_the_chain() {
    let f = Fixture::ucanywhere();
    f.clock.set(ts("2018-06-01T00:00:00Z"));
    f.record("old", "usage_statistics", Action::Refuse, Source::Onboarding);
    f.grant("old", "usage_statistics");
    f.record("old", "usage_statistics", Action::Withdraw, Source::Settings);
    f.grant("recent", "photos_media");
    f.clock.set(ts("2022-01-01T00:00:00Z"));
    f.record("recent", "photos_media", Action::Withdraw, Source::Settings);
    f.grant("recent", "photos_media");
    f.store.ack_sync(6).unwrap();
    f.clock.set(ts("2024-06-01T00:00:00Z"));
    let report = f.store.purge().unwrap();
    assert_eq!(report.removed_events, 2, "old's refuse and grant: 6 years since its last interaction");
    assert_eq!(f.store.status("old", "usage_statistics").unwrap().status, Status::Withdrawn);
    let old = f.store.history("old").unwrap();
    assert_eq!(old.iter().map(|e| e.action).collect::<Vec<_>>(), [Action::Withdraw]);
    assert_eq!(f.store.status("recent", "photos_media").unwrap().status, Status::Expired, "the 2022 grant ran out after 13 months");
    assert_eq!(f.store.history("recent").unwrap().len(), 3, "recent interaction: nothing purged");
    assert_eq!(f.store.verify().unwrap(), 7);
    assert_eq!(f.store.purge().unwrap().removed_events, 0);
}

#[test]
fn purge_never_drops_unsent_events() {
    let f = Fixture::ucanywhere();
    f.clock.set(ts("2010-01-01T00:00:00Z"));
    f.grant("old", "usage_statistics");
    f.record("old", "usage_statistics", Action::Withdraw, Source::Settings);
    f.clock.set(ts("2026-01-01T00:00:00Z"));
    assert_eq!(f.store.purge().unwrap().removed_events, 0, "not yet acknowledged by the backend");
    f.store.ack_sync(2).unwrap();
    assert_eq!(f.store.purge().unwrap().removed_events, 1);
}

#[test]
fn outbox_is_durable_at_least_once_and_keeps_withdrawals_and_erasures() {
    let mut f = populated();
    let first = f.store.pending_sync(3).unwrap();
    assert_eq!(first.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3]);
    f.store.ack_sync(3).unwrap();
    f.reopen(None); // a crash before the next ack resends the rest
    let rest = f.store.pending_sync(100).unwrap();
    assert_eq!(rest.iter().map(|r| r.seq).collect::<Vec<_>>(), [4, 5, 6, 7]);
    assert!(rest.iter().any(|r| r.action == Action::Withdraw));
    let erasure = f.store.erase("bob", Source::Settings).unwrap();
    let pending = f.store.pending_sync(100).unwrap();
    assert!(pending.iter().all(|r| r.subject.as_deref() != Some("bob")), "erased events are not sent");
    let sent = pending.iter().find(|r| r.action == Action::Erasure).expect("the erasure is queued");
    let ids = sent.detail_field("removed_event_ids").unwrap();
    let bobs = rest.iter().find(|r| r.subject.as_deref() == Some("bob")).unwrap();
    assert_eq!(ids, serde_json::json!([bobs.id]), "names the erased event ids for the backend");
    assert_eq!(sent.id, erasure.receipt.id);
    f.store.ack_sync(2).unwrap();
    assert_eq!(f.store.sync_acked().unwrap(), 3, "never moves backwards");
    assert!(f.store.ack_sync(999).unwrap_err().to_string().contains("999"));
}

#[test]
fn export_lists_os_permissions_by_id() {
    let f = Fixture::ucanywhere();
    // Reported out of id order and out of index order (camera = 2, app_tracking_transparency = 7).
    for p in [OsPermission::PHOTOS, OsPermission::CAMERA, OsPermission::APP_TRACKING_TRANSPARENCY, OsPermission::CONTACTS] {
        f.store.set_os_permission(p, OsState::Denied).unwrap();
    }
    f.grant("alice", "usage_statistics");
    let listed: Vec<String> = f.store.export("alice").unwrap().os_permissions.iter().map(|o| o.permission.to_string()).collect();
    assert_eq!(listed, ["app_tracking_transparency", "camera", "contacts", "photos"]);
}

#[test]
fn an_erasure_from_a_source_that_may_not_erase_is_invalid_input_naming_it_and_changes_nothing() {
    let f = Fixture::ucanywhere();
    f.grant("alice", "usage_statistics");
    let head = f.store.verify().unwrap();
    for &source in Source::ALL.iter().filter(|s| !Source::ERASURE.contains(s)) {
        let err = f.store.erase("alice", source).unwrap_err();
        match &err {
            Error::InvalidInput { what: "source", value, why } => {
                assert_eq!(value, source.as_str());
                assert!(why.contains("settings") && why.contains("support"), "{why}");
            }
            other => panic!("{source}: {other:?}"),
        }
        assert!(err.to_string().contains(source.as_str()), "{err}");
        assert_eq!(f.store.verify().unwrap(), head, "{source}: nothing written");
        assert!(f.allowed("alice", "usage_analytics"));
    }
    // The sources the definition allows erase, and the trigger lets their records claim.
    for (subject, source) in [("alice", Source::Settings), ("bob", Source::Support)] {
        f.grant(subject, "usage_statistics");
        assert!(f.store.erase(subject, source).unwrap().erased_events >= 1, "{source}");
    }
    f.store.verify().unwrap();
}

#[test]
fn a_grant_from_a_source_that_never_grants_is_refused_naming_it() {
    let f = Fixture::ucanywhere();
    for &source in Source::ALL.iter().filter(|s| !s.may_grant()) {
        let err = f.store.record(&DecisionInput::new("alice", "usage_statistics", Action::Grant, source)).unwrap_err();
        assert!(err.to_string().contains(source.as_str()), "{source}: {err}");
        assert!(matches!(err, Error::InvalidInput { .. } | Error::GrantBySupport { .. }), "{source}: {err:?}");
    }
    assert!(f.store.history("alice").unwrap().is_empty());
    // A withdrawal from the OS settings is still recorded (withdrawing is never harder).
    f.grant("alice", "usage_statistics");
    f.record("alice", "usage_statistics", Action::Withdraw, Source::OsSettings);
    assert!(!f.allowed("alice", "usage_analytics"));
}
