//! A clock reading ahead of the real time (a `--now` in the future, a device clock set forward once)
//! leaves the store's high-water mark ahead of the real clock. No grant made afterwards may become
//! an allow that outlives the policy's lifetime counted from the real time of the grant.

mod common;

use common::*;
use consentkit_core::*;

const REAL: &str = "2026-01-15T09:00:00Z";
const FUTURE: &str = "2099-01-01T00:00:00Z";

/// The review's repro: grant alice; withdraw bob with the clock in 2099; back at the real time.
fn after_a_future_excursion() -> Fixture {
    let f = Fixture::ucanywhere();
    f.grant("alice", "usage_statistics");
    f.clock.set(ts(FUTURE));
    f.record("bob", "usage_statistics", Action::Withdraw, Source::Settings);
    f.clock.set(ts(REAL));
    // Fail closed while the clock is behind the mark: alice's grant reads expired.
    assert_eq!(f.reasons("alice", "usage_analytics", None), pairs(&[("consent_expired", "usage_statistics")]));
    f
}

#[test]
fn a_grant_while_the_clock_reads_behind_a_future_mark_is_refused_naming_both_times_and_writes_nothing() {
    let f = after_a_future_excursion();
    let head = f.store.verify().unwrap();
    let err = f.store.record(&DecisionInput::new("zed", "usage_statistics", Action::Grant, Source::Settings)).unwrap_err();
    assert!(matches!(err, Error::ClockBehind { clock, store_time } if clock == ts(REAL) && store_time == ts(FUTURE)), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("2026-01-15T09:00:00") && msg.contains("2099-01-01T00:00:00"), "{msg}");
    assert!(!f.allowed("zed", "usage_analytics"));
    assert_eq!(f.store.verify().unwrap(), head, "nothing written");
    assert!(f.store.history("zed").unwrap().is_empty());
    // A batch holding a grant is refused whole.
    let batch = [
        DecisionInput::new("zed", "photos_media", Action::Refuse, Source::Onboarding),
        DecisionInput::new("zed", "usage_statistics", Action::Grant, Source::Onboarding),
    ];
    assert!(matches!(f.store.record_batch(&batch), Err(Error::ClockBehind { .. })));
    assert!(f.store.history("zed").unwrap().is_empty());
}

#[test]
fn no_grant_made_after_a_future_excursion_is_ever_allowed_past_its_lifetime_from_the_real_time() {
    let mut f = after_a_future_excursion();
    // Not through a reopen either (the mark is in the file).
    f.reopen(None);
    let lifetime_end = ts(REAL).plus(Policy::builtin().consent_lifetime.unwrap());
    let _ = f.store.record(&DecisionInput::new("zed", "usage_statistics", Action::Grant, Source::Settings));
    for at in [REAL, "2027-03-01T00:00:00Z", "2098-12-31T23:59:59Z", FUTURE, "2099-06-01T00:00:00Z", "2100-06-01T00:00:00Z"] {
        f.clock.set(ts(at));
        let d = f.store.check("zed", "usage_analytics", None).unwrap();
        assert!(!d.allowed || ts(at) < lifetime_end, "allowed at {at}, past the lifetime from the real grant time {lifetime_end}");
        if let Some(until) = d.valid_until {
            assert!(until <= lifetime_end, "valid until {until}");
        }
    }
}

#[test]
fn withdrawals_refusals_and_objections_are_recorded_while_the_clock_reads_behind_and_stamped_at_the_store_s_time() {
    let f = after_a_future_excursion();
    for (category, action) in
        [("usage_statistics", Action::Withdraw), ("photos_media", Action::Refuse), ("contact_information", Action::Object)]
    {
        let r = f.record("alice", category, action, Source::Settings);
        assert_eq!(r.at, ts(FUTURE), "the receipt carries the store's time, never before an earlier event's");
    }
    assert_eq!(f.store.status("alice", "usage_statistics").unwrap().status, Status::Withdrawn);
}

#[test]
fn once_the_real_clock_reaches_the_mark_grants_are_recorded_again_with_their_normal_lifetime() {
    let f = after_a_future_excursion();
    f.clock.set(ts(FUTURE));
    let r = f.grant("zed", "usage_statistics");
    assert_eq!(r.valid_until, Some(ts(FUTURE).plus(Policy::builtin().consent_lifetime.unwrap())));
    assert!(f.allowed("zed", "usage_analytics"));
}

#[test]
fn an_imported_grant_dated_after_the_clock_s_reading_is_refused_while_the_mark_is_ahead() {
    // A document with a grant made in 2099 (by a store whose clock read 2099).
    let source = Fixture::ucanywhere();
    source.clock.set(ts(FUTURE));
    source.grant("zed", "usage_statistics");
    let doc = source.store.export("zed").unwrap();
    // Imported into a store whose mark is 2099 but whose clock reads the real time.
    let f = after_a_future_excursion();
    let err = f.store.import(&doc).unwrap_err();
    assert!(matches!(&err, Error::Import(m) if m.contains("behind the store's time")), "{err}");
    assert!(!f.allowed("zed", "usage_analytics"));
    assert!(f.store.history("zed").unwrap().is_empty());
}

/// The review's repro: a check at a clock 10 minutes fast moves the mark; NTP steps back to a
/// minute after the grant. A settings screen saving every toggle at once loses nothing.
#[test]
fn a_grant_within_the_tolerance_behind_the_mark_is_recorded_at_the_mark_and_a_batch_with_a_withdrawal_records_both() {
    let f = Fixture::ucanywhere();
    f.clock.set(ts("2026-01-15T12:00:00Z"));
    f.grant("alice", "usage_statistics");
    f.clock.set(ts("2026-01-15T12:10:00Z"));
    assert!(f.allowed("alice", "usage_analytics"));
    f.clock.set(ts("2026-01-15T12:01:00Z"));
    let batch = [
        DecisionInput::new("alice", "usage_statistics", Action::Withdraw, Source::Settings),
        DecisionInput::new("alice", "photos_media", Action::Grant, Source::Settings),
    ];
    let receipts = f.store.record_batch(&batch).unwrap();
    assert_eq!(receipts.len(), 2);
    assert!(receipts.iter().all(|r| r.at == ts("2026-01-15T12:10:00Z")), "stamped at the mark: {receipts:?}");
    // Its lifetime counts from the mark: at most the tolerance longer than from the clock.
    let lifetime = f.store.policy().consent_lifetime.unwrap();
    assert_eq!(receipts[1].valid_until, Some(ts("2026-01-15T12:10:00Z").plus(lifetime)));
    assert!(!f.allowed("alice", "usage_analytics"), "the withdrawal is recorded");
    assert_eq!(f.store.status("alice", "photos_media").unwrap().status, Status::Granted);
    // Beyond the tolerance the grant is refused (and a batch holding it, whole).
    let mark = f.store.now();
    f.clock.set(Timestamp(mark.0 - validate::CLOCK_BEHIND_TOLERANCE_MS - 1));
    let err = f.store.record(&DecisionInput::new("bob", "photos_media", Action::Grant, Source::Settings)).unwrap_err();
    assert!(matches!(err, Error::ClockBehind { .. }), "{err:?}");
    f.clock.set(Timestamp(mark.0 - validate::CLOCK_BEHIND_TOLERANCE_MS));
    f.record("bob", "photos_media", Action::Grant, Source::Settings);
}

/// The recovery today from a mark far ahead (nothing lowers the mark): export each subject,
/// move the file aside, start a fresh store, import. A subject whose history holds no event
/// stamped after the real time comes back whole; one with an event stamped at the mark is refused
/// by the import (an event after this device's time) and stays without a record: denied, asked
/// again, never allowed. Grants are recorded again at once.
#[test]
fn a_store_stuck_behind_a_far_future_mark_recovers_by_export_quarantine_fresh_store_and_import() {
    let mut f = after_a_future_excursion();
    assert!(matches!(
        f.store.record(&DecisionInput::new("zed", "usage_statistics", Action::Grant, Source::Settings)),
        Err(Error::ClockBehind { .. })
    ));
    let alice = f.store.export("alice").unwrap();
    let bob = f.store.export("bob").unwrap();
    let policy = f.store.policy().clone();
    let clock = std::sync::Arc::new(f.clock.clone());
    let placeholder = ConsentStore::open_fail_closed(f.dir.path().join("none/x.db"), policy.clone(), clock.clone());
    drop(std::mem::replace(&mut f.store, placeholder));
    let kept = ConsentStore::quarantine(&f.path, ts(REAL)).unwrap();
    assert!(kept.exists(), "the old file is kept for support");
    f.store = ConsentStore::open_with(&f.path, policy, clock, OpenMode::ReadWrite).unwrap();
    f.store.import(&alice).unwrap();
    assert!(f.allowed("alice", "usage_analytics"), "alice's grant of the real time is back");
    let err = f.store.import(&bob).unwrap_err();
    assert!(err.to_string().contains("2099"), "bob's withdrawal was stamped at the mark: {err}");
    assert!(!f.allowed("bob", "usage_analytics"));
    assert!(f.store.should_ask("bob", "usage_statistics").unwrap());
    f.grant("zed", "usage_statistics");
    assert!(f.allowed("zed", "usage_analytics"), "grants are recorded again");
}
