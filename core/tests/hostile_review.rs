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

/// The clock's high-water mark lives in the file beside the chain; an edit of that one meta row
/// (deleted, or set to 0, as anyone with the sqlite3 shell can) must not let a clock set back
/// revive an expired grant after the next open. An edited sealed copy fails closed.
#[test]
fn an_edited_time_mark_does_not_revive_an_expired_grant() {
    for edit in [
        "DELETE FROM meta WHERE key = 'time_high_water'",
        "UPDATE meta SET value = '0' WHERE key = 'time_high_water'",
        "UPDATE meta SET value = 'soon' WHERE key = 'time_high_water'",
    ] {
        let (f, policy, clock) = expired_then_closed();
        rusqlite::Connection::open(&f.path).unwrap().execute_batch(edit).unwrap();
        let store = ConsentStore::open_with(&f.path, policy, clock, OpenMode::ReadWrite).unwrap();
        let d = store.check("alice", "usage_analytics", None).unwrap();
        assert!(!d.allowed, "{edit}: an expired grant allowed again after the clock was set back: {d:?}");
        assert_eq!(d.reasons[0].code, ReasonCode::ConsentExpired, "{edit}");
        store.verify().unwrap();
    }
    let (f, policy, clock) = expired_then_closed();
    rusqlite::Connection::open(&f.path)
        .unwrap()
        .execute_batch("UPDATE meta SET value = '0:00' WHERE key = 'time_high_water_seal'")
        .unwrap();
    let opened = ConsentStore::open_with(&f.path, policy.clone(), clock.clone(), OpenMode::ReadWrite);
    assert!(
        matches!(&opened, Err(Error::Tampered(chain::ChainBreak::TimeMarkEdited { value })) if value == "0:00"),
        "{:?}",
        opened.as_ref().err()
    );
    drop(opened);
    let closed = ConsentStore::open_fail_closed(&f.path, policy, clock);
    assert!(!closed.check("alice", "usage_analytics", None).unwrap().allowed);
}

/// A grant that ran out, a check that saw it expired, the store closed (the mark persisted), and
/// the clock set back to a day after the grant.
fn expired_then_closed() -> (Fixture, std::sync::Arc<Policy>, std::sync::Arc<dyn Clock>) {
    let mut f = Fixture::ucanywhere();
    f.grant("alice", "usage_statistics");
    let granted_at = f.clock.now();
    f.clock.set(ts("2027-06-01T00:00:00Z")); // past the 13-month lifetime
    assert!(!f.allowed("alice", "usage_analytics"));
    let policy = f.store.policy().clone();
    let clock: std::sync::Arc<dyn Clock> = std::sync::Arc::new(f.clock.clone());
    let placeholder = ConsentStore::open_fail_closed(f.dir.path().join("none/x.db"), policy.clone(), clock.clone());
    drop(std::mem::replace(&mut f.store, placeholder));
    f.clock.set(Timestamp(granted_at.millis() + 86_400_000));
    (f, policy, clock)
}

/// Under a running store the edit fools nothing: its checks keep the mark it holds, and `verify`
/// names an edited sealed copy.
#[test]
fn a_time_mark_edited_under_a_running_store_fools_nothing() {
    let f = Fixture::ucanywhere();
    f.grant("alice", "usage_statistics");
    let granted_at = f.clock.now();
    f.clock.set(ts("2027-06-01T00:00:00Z"));
    assert!(!f.allowed("alice", "usage_analytics"));
    f.store.refresh().unwrap();
    let conn = rusqlite::Connection::open(&f.path).unwrap();
    conn.execute_batch("UPDATE meta SET value = '0' WHERE key = 'time_high_water'").unwrap();
    f.clock.set(Timestamp(granted_at.millis() + 86_400_000));
    f.store.refresh().unwrap();
    assert!(!f.allowed("alice", "usage_analytics"), "the store keeps the mark it holds");
    conn.execute_batch("UPDATE meta SET value = '1:' || substr(value, instr(value, ':') + 1) WHERE key = 'time_high_water_seal'").unwrap();
    assert!(matches!(f.store.verify(), Err(Error::Tampered(chain::ChainBreak::TimeMarkEdited { .. }))));
}

/// A per-item feature is checked with a scope that must be granted, but only a consent category
/// takes item grants: a per-item feature whose categories are all contract or legitimate interest
/// would allow every item without any item granted. The catalog is refused, naming the feature.
#[test]
fn a_per_item_feature_without_a_consent_category_is_refused() {
    let json = |basis: &str| {
        format!(
            r#"{{"id": "p", "version": "1", "categories": [{{"id": "c", "title": "C", "legal_basis": "{basis}", "retention": "P1Y"}}],
            "features": [{{"id": "sync_one", "categories": ["c"], "per_item": true}}]}}"#
        )
    };
    for basis in ["contract", "legitimate_interest", "legal_obligation"] {
        match Policy::from_json(&json(basis)) {
            Err(Error::Policy { path, why }) => {
                assert_eq!(path, "$.features[0].per_item", "{basis}");
                assert!(why.contains("sync_one"), "{why}");
            }
            other => panic!("{basis}: {other:?}"),
        }
    }
    Policy::from_json(&json("consent")).unwrap();
}

/// A clock that reads past the year 9999 for a moment (hand-set, or a glitch) while the app
/// checks must not leave the store unable to record a withdrawal once the clock is right again:
/// the check's reading is not a time a receipt can carry, so it does not become the store's time.
/// (The grant meanwhile reads expired at that reading: fail closed.)
#[test]
fn a_check_at_a_clock_past_9999_does_not_block_later_withdrawals() {
    let mut f = Fixture::ucanywhere();
    f.grant("alice", "usage_statistics");
    let normal = f.clock.now();
    f.clock.set(Timestamp(300_000_000_000_000)); // about the year 11476
    assert!(!f.allowed("alice", "usage_analytics"), "far past the lifetime");
    let _ = f.store.status("alice", "usage_statistics");
    let _ = f.store.should_ask("alice", "usage_statistics");
    f.store.refresh().unwrap();
    f.clock.set(Timestamp(normal.millis() + 60_000));
    let withdrawn = f.store.record(&DecisionInput::new("alice", "usage_statistics", Action::Withdraw, Source::Settings));
    assert!(withdrawn.is_ok(), "{withdrawn:?}");
    f.reopen(None);
    f.record("alice", "usage_statistics", Action::Refuse, Source::Settings);
    assert!(!f.allowed("alice", "usage_analytics"));
}
