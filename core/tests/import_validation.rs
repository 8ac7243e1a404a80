//! Import replays every event through the same validation as a live write. The forgeries are
//! made as an attacker would: an honest export, edited, then resealed (the chain is unkeyed).

mod common;
use common::*;
use consentkit_core::chain::{self, GENESIS};
use consentkit_core::rights::ExportDocument;
use consentkit_core::*;

/// alice's honest export: grants of usage statistics and device contacts (one contact), a
/// refusal of photos, an objection; the device's contacts permission is denied.
fn alice_export() -> ExportDocument {
    let f = Fixture::ucanywhere();
    f.store.set_os_permission(OsPermission::CONTACTS, OsState::Denied).unwrap();
    f.grant("alice", "usage_statistics");
    f.grant("alice", "device_contacts");
    f.store.record(&DecisionInput::new("alice", "device_contacts", Action::Grant, Source::Settings).with_scope("contact-42")).unwrap();
    f.record("alice", "photos_media", Action::Refuse, Source::Onboarding);
    f.record("alice", "contact_information", Action::Object, Source::Support);
    f.store.export("alice").unwrap()
}

/// Recomputes every hash of the document's history, as a forger would; drops the stated state
/// (an empty `state` is consistent with any history), so only the replay stands in the way.
fn reseal(mut doc: ExportDocument) -> ExportDocument {
    let mut prev = GENESIS.to_string();
    for r in &mut doc.history {
        chain::seal(r, &prev);
        prev = r.hash.clone();
    }
    doc.state.clear();
    doc
}

/// A target store a day after the export, holding bob's record (so "changes nothing" is visible).
fn target() -> Fixture {
    let f = Fixture::ucanywhere();
    f.clock.set(ts("2026-01-16T09:00:00Z"));
    f.grant("bob", "photos_media");
    f
}

/// Imports `doc` into `f`; expects a rejection naming the receipt with this seq, and nothing written.
fn rejected(f: &Fixture, doc: &ExportDocument, seq: u64, why: &str) -> String {
    let before = std::fs::read(&f.path).unwrap();
    let err = f.store.import(doc).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Import(_)), "{msg}");
    assert!(msg.contains(&format!("receipt seq {seq} ")) && msg.contains(why), "expected seq {seq} and '{why}' in: {msg}");
    assert!(f.store.history(&doc.subject).unwrap().iter().all(|e| e.subject.is_none()), "nothing imported");
    assert_eq!(std::fs::read(&f.path).unwrap(), before, "the file is untouched");
    msg
}

#[test]
fn a_forged_withdraw_objection_on_a_consent_category_is_rejected() {
    let mut doc = alice_export();
    let refusal = doc.history.iter_mut().find(|r| r.action == Action::Refuse).unwrap();
    refusal.action = Action::WithdrawObjection;
    refusal.valid_until = None;
    let seq = refusal.seq;
    let f = target();
    rejected(&f, &reseal(doc), seq, "cannot withdraw_objection category 'photos_media': it rests on consent");
    f.store.set_os_permission(OsPermission::PHOTOS, OsState::Granted).unwrap();
    assert!(!f.allowed("alice", "photo_sharing"));
}

#[test]
fn a_forged_support_grant_is_rejected_and_never_touches_the_os_permission() {
    let mut doc = alice_export();
    let grant = doc.history.iter_mut().find(|r| r.action == Action::Grant && r.category.as_deref() == Some("device_contacts")).unwrap();
    grant.source = Source::Support;
    grant.valid_until = None;
    grant.purpose_version = Some(999);
    grant.permission = Some(OsPermission::CONTACTS);
    grant.os_state = Some(OsState::Granted);
    let seq = grant.seq;
    let f = target();
    rejected(&f, &reseal(doc.clone()), seq, "OS permission");
    assert_eq!(f.store.os_state(OsPermission::CONTACTS), OsState::NotDetermined);
    // Without the OS fields, the support grant itself is refused, as a live write would be.
    let grant = doc.history.iter_mut().find(|r| r.seq == seq).unwrap();
    grant.permission = None;
    grant.os_state = None;
    rejected(&f, &reseal(doc), seq, "cannot come from source 'support'");
    assert!(!f.allowed("alice", "contact_lookup"));
}

#[test]
fn lifetimes_and_purpose_versions_come_from_the_policy_not_the_file() {
    let mut doc = alice_export();
    for r in doc.history.iter_mut().filter(|r| r.action == Action::Grant) {
        r.valid_until = None;
        r.purpose_version = Some(999);
    }
    let f = target();
    let restored = f.store.import(&reseal(doc)).unwrap();
    let grants: Vec<&Receipt> = restored.iter().filter(|r| r.action == Action::Grant).collect();
    assert_eq!(grants.len(), 3);
    for g in grants {
        assert_eq!(g.valid_until, Some(ts("2027-02-15T09:00:00Z")), "13 months from the grant, per the policy");
        assert_eq!(g.purpose_version, Some(1), "never above the policy's purpose version");
    }
    f.clock.set(ts("2027-02-15T09:00:00Z"));
    assert_eq!(f.store.status("alice", "usage_statistics").unwrap().status, Status::Expired);
    assert_eq!(f.store.verify().unwrap(), 6, "bob's grant and alice's five events");
}

#[test]
fn an_over_long_scope_of_terminal_escapes_is_rejected() {
    let mut doc = alice_export();
    let scoped = doc.history.iter_mut().find(|r| r.scope.is_some()).unwrap();
    scoped.scope = Some("\u{1b}[2J\u{1b}[31mOWNED\u{1b}]0;pwned\u{7}".repeat(160).chars().take(5000).collect());
    let seq = scoped.seq;
    let f = target();
    let msg = rejected(&f, &reseal(doc), seq, "invalid scope");
    assert!(!msg.chars().any(char::is_control), "the error itself carries no control character: {msg:?}");
    assert!(msg.len() < 400, "a bounded echo of the bad value: {} bytes", msg.len());
}

#[test]
fn the_under_age_rules_hold_during_the_replay() {
    let f = Fixture::ucanywhere();
    f.store.set_under_age("kid", true, Source::Guardian).unwrap();
    f.record("kid", "usage_statistics", Action::Grant, Source::Guardian);
    let honest = f.store.export("kid").unwrap();
    let mut doc = honest.clone();
    let grant = doc.history.iter_mut().find(|r| r.action == Action::Grant).unwrap();
    grant.source = Source::Settings; // the child's own grant
    let seq = grant.seq;
    let t = target();
    rejected(&t, &reseal(doc), seq, "under the age of digital consent");
    // The honest document (a guardian's grant) restores, and the guardian grant allows.
    t.store.import(&honest).unwrap();
    assert!(t.allowed("kid", "usage_analytics"));
}

#[test]
fn an_imported_event_keeps_no_detail_of_the_file_and_no_future_time() {
    let mut doc = alice_export();
    doc.history[0].detail = Some(r#"{"removed_seqs":[1,2,3],"note":"planted"}"#.into());
    let f = target();
    let restored = f.store.import(&reseal(doc.clone())).unwrap();
    let detail = restored[0].detail.clone().unwrap();
    assert!(!detail.contains("removed_seqs") && !detail.contains("planted"), "{detail}");
    assert_eq!(restored[0].detail_field("original_source").unwrap(), "settings");

    let mut late = alice_export();
    late.subject = "carol".into();
    for r in &mut late.history {
        r.subject = Some("carol".into());
        r.id = uuid_like(r.seq);
    }
    let last = late.history.last_mut().unwrap();
    last.at = ts("2030-01-01T00:00:00Z");
    let seq = last.seq;
    rejected(&f, &reseal(late), seq, "is after this device's time");
}

fn uuid_like(n: u64) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

#[test]
fn a_scope_on_a_category_without_per_item_features_is_rejected_on_import_too() {
    let mut doc = alice_export();
    let grant = doc.history.iter_mut().find(|r| r.action == Action::Grant && r.category.as_deref() == Some("usage_statistics")).unwrap();
    grant.scope = Some("item-1".into());
    let seq = grant.seq;
    rejected(&target(), &reseal(doc), seq, "no per-item feature uses category 'usage_statistics'");
}

#[test]
fn an_honest_export_round_trips_through_another_import() {
    // Imported once (source import, original source in detail), exported and imported again.
    let first = target();
    first.store.import(&alice_export()).unwrap();
    let again = first.store.export("alice").unwrap();
    let second = Fixture::ucanywhere();
    second.clock.set(ts("2026-01-16T09:00:00Z"));
    second.store.import(&again).unwrap();
    assert_eq!(second.store.statuses("alice").unwrap(), first.store.statuses("alice").unwrap());
    assert!(second.store.history("alice").unwrap().iter().all(|r| r.source == Source::Import && r.effective_source() != Source::Import));
}

#[test]
fn an_old_purpose_grant_imported_after_a_purpose_bump_asks_again() {
    let doc = alice_export(); // usage_statistics granted under purpose version 1
    let v2 =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/conformance/policies/ucanywhere_usage_purpose_v2.json"))
            .unwrap();
    let f = Fixture::new(Policy::from_json(&v2).unwrap());
    f.clock.set(ts("2026-01-16T09:00:00Z"));
    f.store.import(&doc).unwrap();
    assert_eq!(f.store.status("alice", "usage_statistics").unwrap().status, Status::RenewalRequired);
    assert!(f.store.should_ask("alice", "usage_statistics").unwrap());
    assert_eq!(f.store.status("alice", "device_contacts").unwrap().status, Status::Granted);
}

#[test]
fn an_export_from_before_an_erasure_is_not_replayed_into_the_store_that_erased_it() {
    // alice granted and exported; she withdrew, then asked to be forgotten. Her old document,
    // imported again into the same store, would bring back the grant she withdrew.
    let f = Fixture::ucanywhere();
    f.grant("alice", "usage_statistics");
    let old = f.store.export_json("alice").unwrap();
    f.clock.advance_millis(60_000);
    f.record("alice", "usage_statistics", Action::Withdraw, Source::Settings);
    f.clock.advance_millis(60_000);
    let erasure = f.store.erase("alice", Source::Support).unwrap();
    let head = f.store.verify().unwrap();
    let err = f.store.import_json(&old).unwrap_err();
    assert!(matches!(err, Error::Import(_)), "{err}");
    let message = err.to_string();
    assert!(message.contains("erased") && message.contains(&format!("seq {}", erasure.receipt.seq)), "{message}");
    assert_eq!(f.store.verify().unwrap(), head, "nothing written");
    assert!(!f.allowed("alice", "usage_analytics"));
    assert_eq!(f.store.status("alice", "usage_statistics").unwrap().status, Status::NotAsked);
    // Another store (a new device) restores it as before.
    let other = Fixture::ucanywhere();
    other.clock.set(ts("2026-01-16T09:00:00Z"));
    other.store.import_json(&old).unwrap();
    assert!(other.allowed("alice", "usage_analytics"));
}
