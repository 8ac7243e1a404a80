//! Hostile review of proof and rights: export/import equivalence and edited exports, erasure
//! traces, purge keeping every answer, receipts against the store.

mod common;
use common::*;
use consentkit_core::chain;
use consentkit_core::rights::ExportDocument;
use consentkit_core::*;

const FEATURES: [&str; 7] =
    ["contact_lookup", "contact_sync", "photo_sharing", "usage_analytics", "calling", "messaging", "business_directory"];
const SCOPES: [Option<&str>; 3] = [None, Some("contact-42"), Some("contact-43")];

/// Every answer the store gives about a subject: each check, status, should_ask.
fn answers(s: &ConsentStore, subject: &str) -> Vec<String> {
    let mut out = Vec::new();
    for f in FEATURES {
        for sc in SCOPES {
            match s.check(subject, f, sc) {
                Ok(d) => {
                    let mut codes: Vec<String> = d.reasons.iter().map(|r| format!("{}:{}", r.code, r.category)).collect();
                    codes.sort();
                    out.push(format!("{f}/{sc:?} allowed={} until={:?} {codes:?}", d.allowed, d.valid_until));
                }
                Err(e) => out.push(format!("{f}/{sc:?} error {e}")),
            }
        }
    }
    for c in s.policy().categories.iter() {
        let st = s.status(subject, &c.id).unwrap();
        out.push(format!("{} {:?} ask={}", c.id, st, s.should_ask(subject, &c.id).unwrap()));
    }
    out
}

fn rich(f: &Fixture, who: &str) {
    f.clock.set(ts("2026-02-01T09:00:00Z"));
    f.store.set_os_permission(OsPermission::CONTACTS, OsState::Granted).unwrap();
    f.record(who, "photos_media", Action::Refuse, Source::Onboarding);
    f.grant(who, "photos_media"); // expires after 13 months
    f.clock.set(ts("2027-01-01T09:00:00Z"));
    f.grant(who, "device_contacts");
    f.store.record(&DecisionInput::new(who, "device_contacts", Action::Grant, Source::Settings).with_scope("contact-42")).unwrap();
    f.store.record(&DecisionInput::new(who, "device_contacts", Action::Grant, Source::Settings).with_scope("contact-43")).unwrap();
    f.store.record(&DecisionInput::new(who, "device_contacts", Action::Withdraw, Source::Settings).with_scope("contact-43")).unwrap();
    f.record(who, "usage_statistics", Action::Grant, Source::Onboarding);
    f.record(who, "usage_statistics", Action::Withdraw, Source::Settings);
    f.record(who, "contact_information", Action::Object, Source::Support);
    f.clock.set(ts("2027-03-15T09:00:00Z"));
}

fn fresh_at(now: Timestamp) -> Fixture {
    let t = Fixture::ucanywhere();
    t.clock.set(now);
    t.store.set_os_permission(OsPermission::CONTACTS, OsState::Granted).unwrap();
    t
}

#[test]
fn an_imported_record_answers_exactly_like_the_original() {
    for under_age in [false, true] {
        let f = Fixture::ucanywhere();
        rich(&f, "alice");
        if under_age {
            f.store.set_under_age("alice", true, Source::Settings).unwrap();
            f.record("alice", "usage_statistics", Action::Grant, Source::Guardian);
        }
        // The photos grant of 2026-02 ran out: its expiry event is in the history too.
        assert!(!f.store.record_expiries().unwrap().is_empty());
        let json = f.store.export_json("alice").unwrap();
        let t = fresh_at(f.store.now());
        t.store.import_json(&json).unwrap();
        assert_eq!(answers(&t.store, "alice"), answers(&f.store, "alice"), "under_age={under_age}");
        // And later on both clocks.
        f.clock.set(ts("2028-06-01T00:00:00Z"));
        t.clock.set(ts("2028-06-01T00:00:00Z"));
        assert_eq!(answers(&t.store, "alice"), answers(&f.store, "alice"), "later, under_age={under_age}");
        t.store.verify().unwrap();
    }
}

fn export() -> (Fixture, ExportDocument) {
    let f = Fixture::ucanywhere();
    rich(&f, "alice");
    f.grant("bob", "usage_statistics");
    let doc = f.store.export("alice").unwrap();
    (f, doc)
}

fn refused(doc: &ExportDocument, seq: u64, why: &str) {
    let t = fresh_at(ts("2027-03-15T09:00:00Z"));
    t.grant("carol", "photos_media");
    let before = std::fs::read(&t.path).unwrap();
    let err = t.store.import(doc).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Import(_)), "{msg}");
    assert!(msg.contains(&format!("seq {seq} ")) && msg.contains(why), "expected seq {seq} and '{why}' in: {msg}");
    assert!(t.store.history("alice").unwrap().iter().all(|e| e.subject.is_none()));
    assert_eq!(std::fs::read(&t.path).unwrap(), before, "nothing written");
}

#[test]
fn edited_exports_are_refused_whole_naming_the_first_bad_event() {
    let (f, doc) = export();
    let pos = |d: &ExportDocument, a: Action| d.history.iter().position(|r| r.action == a && r.scope.is_none()).unwrap();

    // A grant's time moved.
    let mut d = doc.clone();
    let i = pos(&d, Action::Grant);
    d.history[i].at = ts("2027-02-01T09:00:00Z");
    refused(&d, d.history[i].seq, "does not verify");
    // A grant's valid_until moved.
    let mut d = doc.clone();
    d.history[i].valid_until = Some(ts("2099-01-01T00:00:00Z"));
    refused(&d, d.history[i].seq, "does not verify");
    // A receipt's hash changed.
    let mut d = doc.clone();
    d.history[i].hash = "0".repeat(64);
    refused(&d, d.history[i].seq, "does not verify");
    // Events reordered.
    let mut d = doc.clone();
    d.history.swap(1, 2);
    refused(&d, d.history[2].seq, "out of order");
    // Duplicated event.
    let mut d = doc.clone();
    let dup = d.history[3].clone();
    d.history.insert(4, dup);
    refused(&d, d.history[4].seq, "repeated");
    // An event of another subject inserted.
    let mut d = doc.clone();
    let bob = f.store.history("bob").unwrap().into_iter().find(|r| r.subject.is_some()).unwrap();
    d.history.push(bob.clone());
    refused(&d, bob.seq, "another subject");
    // A withdrawal removed (state left as exported).
    let mut d = doc.clone();
    let w = pos(&d, Action::Withdraw);
    d.history.remove(w);
    let t = fresh_at(f.store.now());
    let err = t.store.import(&d).unwrap_err();
    assert!(matches!(err, Error::Import(_)), "{err}");
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn raw(f: &Fixture) -> Vec<u8> {
    let mut b = std::fs::read(&f.path).unwrap();
    b.extend(std::fs::read(f.path.with_file_name("consent.db-wal")).unwrap_or_default());
    b.extend(std::fs::read(f.path.with_file_name("consent.db-journal")).unwrap_or_default());
    b
}

#[test]
fn erasure_leaves_no_trace_twice_and_regrant_works() {
    let f = Fixture::ucanywhere();
    let who = "zed.erase-me-7f3a@example.org";
    rich(&f, who);
    f.store.set_under_age(who, true, Source::Settings).unwrap();
    f.grant("bob", "usage_statistics");
    let _ = f.store.pending_sync(100).unwrap();
    assert!(contains(&raw(&f), who.as_bytes()));
    let r = f.store.erase(who, Source::Settings).unwrap();
    assert!(!r.scrub_pending);
    assert!(!contains(&raw(&f), who.as_bytes()), "subject id left on disk");
    assert!(!contains(&raw(&f), b"contact-42"), "scope left on disk");
    assert!(f.store.history(who).unwrap().iter().all(|e| e.subject.is_none()));
    assert!(!f.store.check(who, "contact_sync", Some("contact-42")).unwrap().allowed);
    assert!(!f.store.check(who, "contact_lookup", None).unwrap().allowed);
    assert_eq!(answers(&f.store, who), answers(&f.store, "never-seen"), "reads as never asked");
    f.store.verify().unwrap();
    // Erase twice.
    let r2 = f.store.erase(who, Source::Support).unwrap();
    assert_eq!(r2.erased_events, 0);
    f.store.verify().unwrap();
    assert_eq!(f.store.erasures_of(who).unwrap().len(), 2);
    // Re-grant works.
    f.grant(who, "usage_statistics");
    assert!(f.store.check(who, "usage_analytics", None).unwrap().allowed);
    assert_eq!(f.store.history(who).unwrap().iter().filter(|e| e.subject.is_some()).count(), 1);
    f.store.verify().unwrap();
    // And a second erasure removes the new one too, also across a reopen.
    f.store.erase(who, Source::Settings).unwrap();
    assert!(!contains(&raw(&f), who.as_bytes()));
    let mut f = f;
    f.reopen(None);
    assert!(!f.store.check(who, "usage_analytics", None).unwrap().allowed);
    assert!(!contains(&raw(&f), who.as_bytes()));
    f.store.verify().unwrap();
    // pending_sync carries no subject id for the erased events.
    for e in f.store.pending_sync(1000).unwrap() {
        assert_ne!(e.subject.as_deref(), Some(who));
    }
}

#[test]
fn erasure_with_another_connection_open() {
    let f = Fixture::ucanywhere();
    let who = "yara.erase-me-91c2@example.org";
    rich(&f, who);
    let other =
        ConsentStore::open_with(&f.path, std::sync::Arc::new(Policy::builtin()), std::sync::Arc::new(f.clock.clone()), OpenMode::ReadOnly);
    let reader = rusqlite::Connection::open(&f.path).unwrap();
    reader.execute_batch("BEGIN; SELECT count(*) FROM events;").unwrap();
    let r = f.store.erase(who, Source::Settings).unwrap();
    if let Ok(o) = &other {
        o.refresh().ok();
        assert!(!o.check(who, "contact_lookup", None).unwrap().allowed);
        assert!(o.history(who).unwrap().iter().all(|e| e.subject.is_none()));
    }
    reader.execute_batch("COMMIT").unwrap();
    drop(reader);
    if r.scrub_pending {
        assert!(f.store.finish_scrub());
    }
    drop(other);
    assert!(!contains(&raw(&f), who.as_bytes()), "subject id left on disk after the scrub");
    f.store.verify().unwrap();
}

#[test]
fn purge_changes_no_answer_for_anyone() {
    let f = Fixture::ucanywhere();
    let subjects = ["p1", "p2", "p3"];
    f.clock.set(ts("2015-01-01T00:00:00Z"));
    f.store.set_os_permission(OsPermission::CONTACTS, OsState::Granted).unwrap();
    f.grant("p1", "device_contacts");
    f.store.record(&DecisionInput::new("p1", "device_contacts", Action::Grant, Source::Settings).with_scope("contact-42")).unwrap();
    f.store.record(&DecisionInput::new("p1", "device_contacts", Action::Withdraw, Source::Settings).with_scope("contact-43")).unwrap();
    f.record("p1", "usage_statistics", Action::Grant, Source::Onboarding);
    f.record("p1", "usage_statistics", Action::Withdraw, Source::Settings);
    f.record("p1", "contact_information", Action::Object, Source::Support);
    f.record("p1", "contact_information", Action::WithdrawObjection, Source::Support);
    f.record("p1", "contact_information", Action::Object, Source::Support);
    f.store.set_under_age("p2", true, Source::Settings).unwrap();
    f.record("p2", "photos_media", Action::Refuse, Source::Onboarding);
    f.record("p3", "usage_statistics", Action::Refuse, Source::Onboarding);
    f.clock.set(ts("2016-01-01T00:00:00Z"));
    f.record("p3", "usage_statistics", Action::Grant, Source::Settings);
    f.record_expiries_ok();
    f.clock.set(ts("2024-01-01T00:00:00Z"));
    f.record("p3", "photos_media", Action::Grant, Source::Settings);
    f.record("p3", "photos_media", Action::Withdraw, Source::Settings);
    let head = f.store.verify().unwrap();
    f.store.ack_sync(head).unwrap();
    f.clock.set(ts("2025-06-01T00:00:00Z"));
    let before: Vec<_> = subjects.iter().map(|s| answers(&f.store, s)).collect();
    let report = f.store.purge().unwrap();
    assert!(report.removed_events > 0);
    let after: Vec<_> = subjects.iter().map(|s| answers(&f.store, s)).collect();
    assert_eq!(before, after);
    f.store.verify().unwrap();
    // Withdrawals whose status is current stay.
    assert!(f.store.history("p1").unwrap().iter().any(|e| e.action == Action::Withdraw && e.scope.is_none()));
    assert!(f.store.history("p3").unwrap().iter().any(|e| e.action == Action::Withdraw));
    let mut f = f;
    f.reopen(None);
    let reopened: Vec<_> = subjects.iter().map(|s| answers(&f.store, s)).collect();
    assert_eq!(before, reopened);
}

trait Exp {
    fn record_expiries_ok(&self);
}
impl Exp for Fixture {
    fn record_expiries_ok(&self) {
        self.store.record_expiries().unwrap();
    }
}

#[test]
fn a_receipt_verifies_against_the_store_and_an_edited_one_does_not() {
    let f = Fixture::ucanywhere();
    let r = f.grant("alice", "photos_media");
    assert!(chain::receipt_is_sealed(&r));
    let stored = f.store.history("alice").unwrap();
    assert_eq!(stored.last().unwrap(), &r);
    let mut edited = r.clone();
    edited.valid_until = Some(ts("2099-01-01T00:00:00Z"));
    assert!(!chain::receipt_is_sealed(&edited));
}

#[test]
/// Regression: an erasure whose scrub a reader held up, then the erasing store closed while
/// another store of the file stayed open: the erased subject stayed in the WAL until the next
/// read-write open (the close did not try the scrub; only the probe thread's back-off retry might).
fn a_pending_scrub_is_finished_when_the_erasing_store_closes() {
    let f = Fixture::ucanywhere();
    let who = "quinn.erase-me-c41d@example.org";
    rich(&f, who);
    let policy = std::sync::Arc::new(Policy::builtin());
    let other = ConsentStore::open_with(&f.path, policy.clone(), std::sync::Arc::new(f.clock.clone()), OpenMode::ReadOnly).unwrap();
    let reader = rusqlite::Connection::open(&f.path).unwrap();
    reader.execute_batch("BEGIN; SELECT count(*) FROM events;").unwrap();
    let r = f.store.erase(who, Source::Settings).unwrap();
    assert!(r.scrub_pending);
    reader.execute_batch("COMMIT").unwrap();
    drop(reader);
    let Fixture { dir, path, store, .. } = f;
    drop(store);
    let raw = || {
        let mut b = std::fs::read(&path).unwrap();
        b.extend(std::fs::read(path.with_file_name("consent.db-wal")).unwrap_or_default());
        b
    };
    // Another process's store keeps the file open: the WAL is not deleted at this close.
    assert!(!contains(&raw(), who.as_bytes()), "the erasing store closed with the erased subject still in the WAL");
    other.refresh().unwrap();
    assert!(!other.check(who, "contact_lookup", None).unwrap().allowed);
    drop(other);
    assert!(!contains(&raw(), who.as_bytes()));
    drop(dir);
}

#[test]
fn erasing_one_subject_keeps_names_another_subject_shares() {
    let mut f = Fixture::ucanywhere();
    f.store.set_os_permission(OsPermission::CONTACTS, OsState::Granted).unwrap();
    for who in ["alice-7", "bob-7"] {
        f.grant(who, "device_contacts");
        f.store.record(&DecisionInput::new(who, "device_contacts", Action::Grant, Source::Settings).with_scope("contact-shared")).unwrap();
    }
    // bob's scope is alice's id.
    f.store.record(&DecisionInput::new("bob-7", "device_contacts", Action::Grant, Source::Settings).with_scope("alice-7")).unwrap();
    let before = answers(&f.store, "bob-7");
    let bob_sync = |s: &ConsentStore, scope: &str| s.check("bob-7", "contact_sync", Some(scope)).unwrap().allowed;
    assert!(bob_sync(&f.store, "contact-shared") && bob_sync(&f.store, "alice-7"));
    f.store.erase("alice-7", Source::Settings).unwrap();
    assert_eq!(answers(&f.store, "bob-7"), before);
    assert!(!f.store.check("alice-7", "contact_sync", Some("contact-shared")).unwrap().allowed);
    f.store.verify().unwrap();
    f.reopen(None);
    assert_eq!(answers(&f.store, "bob-7"), before);
    assert!(bob_sync(&f.store, "contact-shared") && bob_sync(&f.store, "alice-7"));
    assert_eq!(f.store.history("bob-7").unwrap().iter().filter(|e| e.subject.is_some()).count(), 3);
    f.store.verify().unwrap();
    f.store.export("bob-7").unwrap();
}

#[test]
fn another_store_of_the_file_denies_as_soon_as_the_erasure_returns() {
    let f = Fixture::ucanywhere();
    let who = "rhea-5";
    f.grant(who, "usage_statistics");
    let other =
        ConsentStore::open_with(&f.path, std::sync::Arc::new(Policy::builtin()), std::sync::Arc::new(f.clock.clone()), OpenMode::ReadOnly)
            .unwrap();
    assert!(other.check(who, "usage_analytics", None).unwrap().allowed);
    f.store.erase(who, Source::Settings).unwrap();
    assert!(!other.check(who, "usage_analytics", None).unwrap().allowed, "the other store still allows after the erasure returned");
    assert!(other.history(who).unwrap().iter().all(|e| e.subject.is_none()));
    assert!(other.export(who).unwrap().history.is_empty());
}

/// Regression: the checks before the replay put the document's own text (format tag, policy
/// id, receipt id) into the error unescaped, so a forged document could carry terminal escapes
/// into the message the CLI or a log prints; the replay's own messages escaped it.
#[test]
fn import_errors_never_carry_the_documents_control_characters() {
    let (_f, doc) = export();
    let evil = "x\u{1b}[2J\u{7}y";
    let reseal = |mut d: ExportDocument| {
        let mut prev = chain::GENESIS.to_string();
        for r in &mut d.history {
            chain::seal(r, &prev);
            prev = r.hash.clone();
        }
        d
    };
    let mut other_subject = doc.clone();
    other_subject.history[0].subject = Some("mallory".into());
    other_subject.history[0].id = evil.into();
    let mut other_policy = doc.clone();
    other_policy.history[0].policy_id = evil.into();
    let mut format = doc.clone();
    format.format = evil.into();
    let mut policy = doc.clone();
    policy.policy.id = evil.into();
    let mut unsealed = doc.clone();
    unsealed.history[0].id = evil.into();
    let mut category = doc.clone();
    category.history[0].category = Some(evil.into());
    let mut state = doc.clone();
    state.state[0].category = evil.into();
    let t = fresh_at(ts("2027-03-15T09:00:00Z"));
    for d in [reseal(other_subject), reseal(other_policy), format, policy, unsealed, reseal(category), state] {
        let err = t.store.import(&d).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::Import(_)), "{msg}");
        assert!(!msg.chars().any(|c| c.is_control()), "control characters in: {msg:?}");
        assert!(msg.contains("\\u{1b}"), "the bad value is named, escaped: {msg}");
    }
}

#[test]
fn an_erasure_blocked_by_another_writer_is_a_typed_error_that_changes_nothing() {
    let f = Fixture::ucanywhere();
    let who = "sol-3";
    f.grant(who, "usage_statistics");
    let blocker = rusqlite::Connection::open(&f.path).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let err = f.store.erase(who, Source::Settings).unwrap_err();
    assert!(matches!(err, Error::Busy(_)), "{err:?}");
    blocker.execute_batch("ROLLBACK").unwrap();
    // The erase waited out the busy timeout holding the publish lock, so the snapshot's proof is
    // older than the cross-process bound: a check at this instant may meet the probe thread
    // proving it and deny (it never waits). `status` waits for that probe; the check after a
    // refresh answers from the proven snapshot.
    assert_eq!(f.store.status(who, "usage_statistics").unwrap().status, Status::Granted, "nothing changed");
    f.store.refresh().unwrap();
    assert!(f.store.check(who, "usage_analytics", None).unwrap().allowed, "nothing changed");
    let r = f.store.erase(who, Source::Settings).unwrap();
    assert_eq!(r.erased_events, 1);
    assert!(!f.store.check(who, "usage_analytics", None).unwrap().allowed);
    assert!(f.store.pending_sync(100).unwrap().iter().any(|e| e.action == Action::Erasure), "the backend learns of the erasure");
    f.store.verify().unwrap();
}

/// Regression: export read the history, then the state, in two steps; a withdrawal committed
/// between them (here from the progress callback, which runs exactly there; in an app, any other
/// thread or process) gave a document whose stated state its own history does not give, which
/// every import then refused.
#[test]
fn an_export_is_consistent_even_when_a_withdrawal_lands_while_it_is_made() {
    let f = Fixture::ucanywhere();
    f.grant("alice", "usage_statistics");
    let mut once = true;
    let doc = f
        .store
        .export_with_progress("alice", &mut |_, _| {
            if std::mem::take(&mut once) {
                f.record("alice", "usage_statistics", Action::Withdraw, Source::Settings);
            }
        })
        .unwrap();
    let t = Fixture::ucanywhere();
    t.clock.set(f.store.now());
    t.store.import(&doc).unwrap();
    assert!(!t.store.check("alice", "usage_analytics", None).unwrap().allowed);
    assert_eq!(answers(&t.store, "alice"), answers(&f.store, "alice"));
}

#[test]
fn an_export_made_after_a_purge_imports_and_answers_the_same() {
    let f = Fixture::ucanywhere();
    f.clock.set(ts("2015-01-01T00:00:00Z"));
    f.record("old", "usage_statistics", Action::Refuse, Source::Onboarding);
    f.grant("old", "usage_statistics");
    f.record("old", "usage_statistics", Action::Withdraw, Source::Settings);
    f.grant("old", "photos_media");
    f.store.record(&DecisionInput::new("old", "device_contacts", Action::Grant, Source::Settings).with_scope("contact-42")).unwrap();
    f.store.ack_sync(f.store.verify().unwrap()).unwrap();
    f.clock.set(ts("2025-01-01T00:00:00Z"));
    assert!(f.store.purge().unwrap().removed_events > 0);
    let doc = f.store.export("old").unwrap();
    let t = Fixture::ucanywhere();
    t.clock.set(f.store.now());
    t.store.import(&doc).unwrap();
    assert_eq!(answers(&t.store, "old"), answers(&f.store, "old"));
    t.store.verify().unwrap();
}

#[test]
fn an_imported_subject_is_erased_without_a_trace_and_its_export_is_not_replayed() {
    let (_f, mut doc) = export();
    let who = "uma.imported-then-erased-2b9e@example.org";
    doc.subject = who.into();
    let mut prev = chain::GENESIS.to_string();
    for r in &mut doc.history {
        r.subject = Some(who.into());
        chain::seal(r, &prev);
        prev = r.hash.clone();
    }
    let t = fresh_at(ts("2027-03-15T09:00:00Z"));
    t.store.import(&doc).unwrap();
    assert!(contains(&raw(&t), who.as_bytes()));
    t.store.erase(who, Source::Support).unwrap();
    assert!(!contains(&raw(&t), who.as_bytes()));
    assert!(!contains(&raw(&t), b"contact-42"));
    let again = t.store.import(&doc).unwrap_err();
    assert!(matches!(again, Error::Import(_)) && again.to_string().contains("was erased"), "{again}");
    assert!(!contains(&raw(&t), who.as_bytes()), "the refused import wrote nothing");
    t.store.verify().unwrap();
}
