//! Bad input to the device side of sync: every error names what was wrong, and changes nothing.

mod common;

use common::*;
use consentkit_core::*;

#[test]
fn a_reply_or_notices_that_do_not_parse_are_named_by_a_short_escaped_excerpt() {
    let f = Fixture::ucanywhere();
    f.grant("alice", "usage_statistics");
    let batch = f.store.sync_batch("phone", 10).unwrap().unwrap();
    let long = format!("<html>\u{200b}{}</html>", "x".repeat(5000));
    let err = f.store.apply_sync_reply(&batch, &long).unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("invalid sync reply '<html>\\u{200b}xxx"), "{msg}");
    assert!(msg.contains("bytes)") && msg.len() < 400, "an excerpt, not the document: {msg}");
    let err = f.store.apply_sync_reply(&batch, "not json").unwrap_err();
    assert!(err.to_string().contains("'not json'"), "{err}");
    let err = f.store.apply_erasure_notices("{\"erase\": [1]}").unwrap_err();
    assert!(matches!(&err, Error::InvalidInput { what: "erasure notices", value, .. } if value == r#"{\"erase\": [1]}"#), "{err:?}");
    assert_eq!(f.store.sync_acked().unwrap(), 0, "nothing acknowledged");
}

#[test]
fn a_batch_holds_at_most_its_limit_and_a_limit_of_zero_is_refused() {
    let f = Fixture::ucanywhere();
    f.grant("alice", "usage_statistics");
    f.grant("bob", "usage_statistics");
    let err = f.store.sync_batch("phone", 0).unwrap_err();
    assert!(matches!(&err, Error::InvalidInput { what: "batch limit", value, .. } if value == "0"), "{err:?}");
    assert_eq!(f.store.sync_batch("phone", 1).unwrap().unwrap().receipts.len(), 1);
    assert_eq!(f.store.sync_batch("phone", 5000).unwrap().unwrap().receipts.len(), 2);
}

#[test]
fn a_device_id_that_is_not_one_url_path_segment_is_refused_naming_it() {
    let f = Fixture::ucanywhere();
    f.grant("alice", "usage_statistics");
    for bad in ["a/b?c", "../x", "a b", "phone\u{200b}", ""] {
        let err = f.store.sync_batch(bad, 10).unwrap_err();
        assert!(matches!(&err, Error::InvalidInput { what: "device", .. }), "{bad:?}: {err:?}");
    }
    let msg = f.store.sync_batch("a/b?c", 10).unwrap_err().to_string();
    assert!(msg.contains("'a/b?c'"), "{msg}");
    assert!(f.store.sync_batch("phone-1.a_b~c", 10).unwrap().is_some());
}

#[test]
fn a_clock_outside_the_years_a_receipt_can_carry_is_refused_not_printed_as_1970() {
    let f = Fixture::ucanywhere();
    f.grant("alice", "usage_statistics");
    let head = f.store.verify().unwrap();
    // Ahead of 9999: the store's time itself, refused.
    for millis in [Timestamp::MAX.0 + 1, 600_000_000_000_000] {
        f.clock.set(Timestamp(millis));
        let err = f.store.record(&DecisionInput::new("bob", "usage_statistics", Action::Refuse, Source::Settings)).unwrap_err();
        assert!(matches!(&err, Error::InvalidInput { what: "clock reading", .. }), "{millis}: {err:?}");
        assert!(err.to_string().contains(&millis.to_string()), "{err}");
        assert_ne!(Timestamp(millis).to_rfc3339(), "1970-01-01T00:00:00Z", "{millis}");
    }
    assert_eq!(f.store.verify().unwrap(), head, "nothing written");
    f.clock.set(Timestamp::MAX);
    f.record("bob", "usage_statistics", Action::Refuse, Source::Settings);
}

#[test]
fn a_clock_reading_before_1970_still_records_a_withdrawal_at_the_store_s_time_and_refuses_a_grant() {
    let f = Fixture::ucanywhere();
    f.grant("alice", "usage_statistics");
    let mark = f.store.now();
    for millis in [-1, i64::MIN] {
        f.clock.set(Timestamp(millis));
        let r = f.store.record(&DecisionInput::new("alice", "usage_statistics", Action::Withdraw, Source::Settings)).unwrap();
        assert_eq!(r.at, mark, "{millis}: stamped at the store's time");
        assert!(!f.allowed("alice", "usage_analytics"));
        let err = f.store.record(&DecisionInput::new("alice", "usage_statistics", Action::Grant, Source::Settings)).unwrap_err();
        assert!(matches!(err, Error::ClockBehind { .. }), "{millis}: {err:?}");
        assert!(err.to_string().contains(&millis.to_string()), "names the reading: {err}");
    }
    f.store.verify().unwrap();
}
