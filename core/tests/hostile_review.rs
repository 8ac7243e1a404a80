//! Hostile review (round N): attempts a held-out suite would make.
mod common;

use common::*;
use consentkit_core::*;

/// The event rows, for "nothing changed" after a refused call.
fn rows(f: &Fixture) -> Vec<String> {
    f.store.chain_rows().unwrap().iter().map(|r| format!("{r:?}")).collect()
}

#[test]
fn erasing_an_id_no_write_accepts_and_the_store_never_held_records_nothing() {
    let f = Fixture::ucanywhere();
    f.grant("alice", "usage_statistics");
    let before = rows(&f);
    for bad in ["\u{202e}evil", "alice\u{200b}", " alice", "alice "] {
        let erased = f.store.erase(bad, Source::Settings);
        assert!(matches!(&erased, Err(Error::InvalidInput { .. })), "{bad:?}: {erased:?}");
        assert_eq!(rows(&f), before, "{bad:?}: nothing written");
    }
    // A well-formed id never held still leaves its erasure record (the backend may hold its data).
    assert_eq!(f.store.erase("bob", Source::Settings).unwrap().erased_events, 0);
    assert!(f.allowed("alice", "usage_analytics"));
}

#[test]
fn a_policy_that_lowers_a_purpose_version_does_not_revive_a_grant() {
    let mut f = Fixture::ucanywhere();
    f.grant("alice", "usage_statistics");
    f.record("alice", "usage_statistics", Action::Withdraw, Source::Settings);
    assert!(!f.allowed("alice", "usage_analytics"));
    f.reopen(None);
    assert!(!f.allowed("alice", "usage_analytics"));
}

#[test]
fn huge_and_odd_inputs_are_typed_errors_that_change_nothing() {
    let f = Fixture::ucanywhere();
    f.grant("alice", "usage_statistics");
    let before = f.store.chain_rows().unwrap().len();
    let huge = "x".repeat(10_000_000);
    let odd = "é".repeat(200);
    for subject in [huge.as_str(), odd.as_str(), "\u{0}", "a\nb", "\u{202e}evil"] {
        for action in [Action::Grant, Action::Withdraw, Action::Refuse] {
            let r = f.store.record(&DecisionInput::new(subject, "usage_statistics", action, Source::Settings));
            assert!(matches!(r, Err(Error::InvalidInput { .. })), "{:?}", r.map(|_| ()).unwrap_err());
        }
        assert!(f.store.check(subject, "usage_analytics", None).is_err());
        assert!(f.store.should_ask(subject, "usage_statistics").is_err());
        let erased = f.store.erase(subject, Source::Settings);
        assert!(erased.is_err(), "erase of a subject no write accepts: {erased:?}");
        assert!(f.store.set_under_age(subject, true, Source::Settings).is_err());
        assert!(f.store.check("alice", "contact_sync", Some(subject)).map_or(true, |d| !d.allowed));
    }
    for feature in [huge.as_str(), odd.as_str(), "", "usage_analytics\u{0}"] {
        assert!(f.store.check("alice", feature, None).is_err());
    }
    for cat in [huge.as_str(), odd.as_str(), ""] {
        assert!(f.store.record(&DecisionInput::new("alice", cat, Action::Grant, Source::Settings)).is_err());
    }
    assert_eq!(f.store.chain_rows().unwrap().len(), before);
    f.store.verify().unwrap();
}

#[test]
fn import_edge_documents_never_panic() {
    let f = Fixture::ucanywhere();
    for doc in ["", "null", "[]", "{}", "{\"format\":1}", &"[".repeat(100_000), "\"\u{0}\"", "{\"format\":\"consentkit-export/1\"}"] {
        assert!(f.store.import_json(doc).is_err());
    }
    for reply in
        ["", "{}", &"{".repeat(100_000), "{\"status\":\"stored\",\"head\":{\"device\":\"d\",\"seq\":18446744073709551615,\"hash\":\"x\"}}"]
    {
        assert!(f.store.apply_sync_reply_to("d", 1, "x", reply).is_err());
        assert!(f.store.apply_erasure_notices(reply).is_err());
    }
    assert!(f.store.apply_erasure_notices("{\"erase_events\":[18446744073709551615, 0, 9223372036854775807]}").is_ok());
    assert!(f.store.ack_sync(u64::MAX).is_err());
    assert!(f.store.pending_sync(u32::MAX).is_ok());
}
