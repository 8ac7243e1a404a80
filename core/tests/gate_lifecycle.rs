//! The consent lifecycle through the public API: statuses, every denial reason, scopes,
//! re-consent, expiry, age, OS permissions, the support rule and bad input.

mod common;
use common::*;
use consentkit_core::*;

#[test]
fn no_record_denies_consent_features_and_allows_contract_ones() {
    let f = Fixture::ucanywhere();
    assert_eq!(f.reasons("alice", "usage_analytics", None), pairs(&[("consent_not_asked", "usage_statistics")]));
    assert_eq!(
        f.reasons("alice", "contact_lookup", None),
        pairs(&[("consent_not_asked", "device_contacts"), ("os_permission_not_determined", "device_contacts")])
    );
    for contract in ["calling", "messaging", "business_directory"] {
        assert!(f.allowed("alice", contract), "{contract}");
    }
    let statuses = f.store.statuses("alice").unwrap();
    let status = |id: &str| statuses.iter().find(|s| s.category == id).unwrap().status;
    assert_eq!(status("usage_statistics"), Status::NotAsked);
    assert_eq!(status("traffic_data"), Status::NotRequired);
    assert_eq!(status("contact_information"), Status::NotRequired);
}

#[test]
fn grant_refuse_withdraw_and_since() {
    let f = Fixture::ucanywhere();
    f.record("alice", "usage_statistics", Action::Refuse, Source::Onboarding);
    assert_eq!(f.reasons("alice", "usage_analytics", None), pairs(&[("consent_refused", "usage_statistics")]));
    f.clock.advance_millis(60_000);
    let r = f.grant("alice", "usage_statistics");
    assert!(f.allowed("alice", "usage_analytics"));
    let s = f.store.status("alice", "usage_statistics").unwrap();
    assert_eq!((s.status, s.since), (Status::Granted, Some(r.at)));
    f.clock.advance_millis(60_000);
    f.record("alice", "usage_statistics", Action::Withdraw, Source::Settings);
    assert_eq!(f.reasons("alice", "usage_analytics", None), pairs(&[("consent_withdrawn", "usage_statistics")]));
    // Another subject on the same device is unaffected.
    assert_eq!(f.store.status("bob", "usage_statistics").unwrap().status, Status::NotAsked);
}

#[test]
fn os_permission_feeds_the_gate_but_never_changes_consent() {
    let f = Fixture::ucanywhere();
    f.grant("alice", "device_contacts");
    f.grant("alice", "photos_media");
    let cases = [
        (OsState::NotDetermined, Some("os_permission_not_determined")),
        (OsState::Denied, Some("os_permission_denied")),
        (OsState::Restricted, Some("os_permission_restricted")),
        (OsState::Granted, None),
    ];
    for (state, reason) in cases {
        f.store.set_os_permission(OsPermission::CONTACTS, state).unwrap();
        let expected = reason.map(|r| pairs(&[(r, "device_contacts")])).unwrap_or_default();
        assert_eq!(f.reasons("alice", "contact_lookup", None), expected, "{state}");
        assert_eq!(f.store.status("alice", "device_contacts").unwrap().status, Status::Granted);
    }
    f.store.set_os_permission(OsPermission::PHOTOS, OsState::Limited).unwrap();
    let d = f.store.check("alice", "photo_sharing", None).unwrap();
    assert!(d.allowed && d.limited);
    // A repeated report is not history; a change is, in every subject's history.
    assert!(f.store.set_os_permission(OsPermission::PHOTOS, OsState::Limited).unwrap().is_none());
    let r = f.store.set_os_permission(OsPermission::PHOTOS, OsState::Denied).unwrap().unwrap();
    assert_eq!((r.source, r.subject.clone()), (Source::OsSettings, None));
    let bob = f.store.history("bob").unwrap();
    assert!(bob.iter().any(|e| e.id == r.id), "device OS changes show in every subject's history");
    assert_eq!(f.store.os_state(OsPermission::PHOTOS), OsState::Denied);
}

#[test]
fn expiry_takes_effect_at_its_time_without_a_write() {
    let f = Fixture::ucanywhere();
    f.clock.set(ts("2026-01-31T10:00:00Z"));
    let r = f.grant("alice", "usage_statistics");
    assert_eq!(r.valid_until, Some(ts("2027-02-28T10:00:00Z")), "13 calendar months");
    let d = f.store.check("alice", "usage_analytics", None).unwrap();
    assert_eq!(d.valid_until, r.valid_until);
    assert!(!f.store.should_ask("alice", "usage_statistics").unwrap());
    f.clock.set(ts("2027-02-28T09:59:59Z"));
    assert!(f.allowed("alice", "usage_analytics"));
    f.clock.set(ts("2027-02-28T10:00:00Z"));
    assert_eq!(f.reasons("alice", "usage_analytics", None), pairs(&[("consent_expired", "usage_statistics")]));
    let s = f.store.status("alice", "usage_statistics").unwrap();
    assert_eq!((s.status, s.since), (Status::Expired, r.valid_until));
    assert!(f.store.should_ask("alice", "usage_statistics").unwrap());
    // The sweep records it in history; the status stays expired.
    let swept = f.store.record_expiries().unwrap();
    assert_eq!(swept.len(), 1);
    assert_eq!((swept[0].action, swept[0].source), (Action::Expire, Source::System));
    assert!(f.store.record_expiries().unwrap().is_empty());
    assert_eq!(f.store.status("alice", "usage_statistics").unwrap().status, Status::Expired);
}

#[test]
fn a_decision_keeps_the_lifetime_in_force_when_made() {
    let mut f = Fixture::ucanywhere();
    let r = f.grant("alice", "usage_statistics");
    let json = Policy::builtin().to_json().replace("\"P13M\"", "\"P1M\"");
    f.reopen(Some(Policy::from_json(&json).unwrap()));
    f.clock.advance_millis(40 * 86_400_000);
    assert!(f.allowed("alice", "usage_analytics"), "the old grant keeps its 13 months");
    assert_eq!(f.store.check("alice", "usage_analytics", None).unwrap().valid_until, r.valid_until);
}

#[test]
fn purpose_version_bump_requires_renewal() {
    let mut f = Fixture::ucanywhere();
    f.grant("alice", "usage_statistics");
    f.grant("alice", "photos_media");
    let mut bumped = Policy::builtin();
    bumped.version = "2026-02-01".into();
    let mut value: serde_json::Value = serde_json::from_str(&bumped.to_json()).unwrap();
    for c in value["categories"].as_array_mut().unwrap() {
        if c["id"] == "usage_statistics" {
            c["purpose_version"] = 2.into();
        }
    }
    f.reopen(Some(Policy::from_json(&value.to_string()).unwrap()));
    assert_eq!(f.reasons("alice", "usage_analytics", None), pairs(&[("renewal_required", "usage_statistics")]));
    assert_eq!(f.store.status("alice", "usage_statistics").unwrap().status, Status::RenewalRequired);
    assert!(f.store.should_ask("alice", "usage_statistics").unwrap());
    assert_eq!(f.store.status("alice", "photos_media").unwrap().status, Status::Granted, "other categories untouched");
    let r = f.grant("alice", "usage_statistics");
    assert_eq!((r.purpose_version, r.policy_version.as_str()), (Some(2), "2026-02-01"));
    assert!(f.allowed("alice", "usage_analytics"));
}

#[test]
fn refusal_is_not_asked_again_for_six_months() {
    let f = Fixture::ucanywhere();
    assert!(f.store.should_ask("alice", "photos_media").unwrap());
    f.clock.set(ts("2026-03-10T12:00:00Z"));
    f.record("alice", "photos_media", Action::Refuse, Source::Onboarding);
    assert!(!f.store.should_ask("alice", "photos_media").unwrap());
    f.clock.set(ts("2026-09-10T11:59:59Z"));
    assert!(!f.store.should_ask("alice", "photos_media").unwrap());
    f.clock.set(ts("2026-09-10T12:00:00Z"));
    assert!(f.store.should_ask("alice", "photos_media").unwrap());
    f.record("alice", "photos_media", Action::Withdraw, Source::Settings);
    assert!(!f.store.should_ask("alice", "photos_media").unwrap(), "a withdrawal is respected, not re-asked");
    assert!(!f.store.should_ask("alice", "traffic_data").unwrap(), "contract: nothing to ask");
}

#[test]
fn support_may_record_withdrawals_never_grants() {
    let f = Fixture::ucanywhere();
    f.grant("alice", "usage_statistics");
    let before = f.store.history("alice").unwrap().len();
    let err = f.store.record(&DecisionInput::new("alice", "photos_media", Action::Grant, Source::Support)).unwrap_err();
    assert!(matches!(err, Error::GrantBySupport { .. }), "{err}");
    assert!(err.to_string().contains("'photos_media'") && err.to_string().contains("'alice'"));
    assert_eq!(f.store.history("alice").unwrap().len(), before, "nothing written");
    f.record("alice", "usage_statistics", Action::Withdraw, Source::Support);
    f.record("alice", "contact_information", Action::Object, Source::Support);
    assert_eq!(f.store.status("alice", "usage_statistics").unwrap().status, Status::Withdrawn);
}

#[test]
fn under_age_needs_a_guardian() {
    let f = Fixture::ucanywhere();
    f.grant("kid", "usage_statistics");
    f.store.set_under_age("kid", true, Source::Onboarding).unwrap();
    assert_eq!(f.reasons("kid", "usage_analytics", None), pairs(&[("under_age", "usage_statistics")]));
    let err = f.store.record(&DecisionInput::new("kid", "photos_media", Action::Grant, Source::Settings)).unwrap_err();
    assert!(matches!(err, Error::UnderAge { age: 16, .. }), "{err}");
    f.record("kid", "usage_statistics", Action::Grant, Source::Guardian);
    assert!(f.allowed("kid", "usage_analytics"));
    f.record("kid", "usage_statistics", Action::Withdraw, Source::Settings);
    assert!(!f.allowed("kid", "usage_analytics"), "a child may withdraw alone");
    assert!(f.allowed("kid", "calling"), "contract features stay");
    f.store.set_under_age("kid", false, Source::Settings).unwrap();
    f.grant("kid", "usage_statistics");
    assert!(f.allowed("kid", "usage_analytics"));
}

#[test]
fn single_contact_scopes() {
    let f = Fixture::ucanywhere();
    f.store.set_os_permission(OsPermission::CONTACTS, OsState::Granted).unwrap();
    f.grant("alice", "device_contacts");
    assert_eq!(f.reasons("alice", "contact_sync", Some("contact-42")), pairs(&[("scope_not_granted", "device_contacts")]));
    f.store.record(&DecisionInput::new("alice", "device_contacts", Action::Grant, Source::Settings).with_scope("contact-42")).unwrap();
    assert!(f.store.check("alice", "contact_sync", Some("contact-42")).unwrap().allowed);
    assert!(!f.store.check("alice", "contact_sync", Some("contact-7")).unwrap().allowed);
    f.store.record(&DecisionInput::new("alice", "device_contacts", Action::Withdraw, Source::Settings).with_scope("contact-42")).unwrap();
    assert!(!f.store.check("alice", "contact_sync", Some("contact-42")).unwrap().allowed);
    assert!(f.allowed("alice", "contact_lookup"), "withdrawing one contact keeps the category");
    f.store.record(&DecisionInput::new("alice", "device_contacts", Action::Grant, Source::Settings).with_scope("contact-42")).unwrap();
    f.record("alice", "device_contacts", Action::Withdraw, Source::Settings);
    f.grant("alice", "device_contacts");
    assert_eq!(
        f.reasons("alice", "contact_sync", Some("contact-42")),
        pairs(&[("scope_not_granted", "device_contacts")]),
        "withdrawing the category withdrew its scopes"
    );
    assert!(matches!(f.store.check("alice", "contact_sync", None), Err(Error::Scope { .. })));
    assert!(matches!(f.store.check("alice", "contact_lookup", Some("x")), Err(Error::Scope { .. })));
}

#[test]
fn right_to_object_for_legitimate_interest() {
    let f = Fixture::ucanywhere();
    f.record("alice", "contact_information", Action::Object, Source::Settings);
    assert_eq!(f.store.status("alice", "contact_information").unwrap().status, Status::Objected);
    f.record("alice", "contact_information", Action::WithdrawObjection, Source::Settings);
    assert_eq!(f.store.status("alice", "contact_information").unwrap().status, Status::NotRequired);
}

#[test]
fn bad_input_is_a_typed_error_naming_the_value_and_writes_nothing() {
    let f = Fixture::ucanywhere();
    let long = "s".repeat(300);
    let cases: Vec<(DecisionInput, &str)> = vec![
        (DecisionInput::new("alice", "nope", Action::Grant, Source::Settings), "unknown category 'nope'"),
        (DecisionInput::new("", "usage_statistics", Action::Grant, Source::Settings), "invalid subject ''"),
        (DecisionInput::new(&long, "usage_statistics", Action::Grant, Source::Settings), "300 bytes"),
        (DecisionInput::new("alice", "device_contacts", Action::Grant, Source::Settings).with_scope(""), "invalid scope ''"),
        (
            DecisionInput::new("alice", "traffic_data", Action::Grant, Source::Settings),
            "cannot grant category 'traffic_data': it rests on contract",
        ),
        (DecisionInput::new("alice", "contact_information", Action::Grant, Source::Settings), "rests on legitimate_interest"),
        (DecisionInput::new("alice", "usage_statistics", Action::Object, Source::Settings), "cannot object category 'usage_statistics'"),
        (
            DecisionInput::new("alice", "usage_statistics", Action::Expire, Source::Settings),
            "action 'expire' is recorded by the system only",
        ),
        (DecisionInput::new("alice", "usage_statistics", Action::Grant, Source::Import), "invalid source 'import'"),
        (
            DecisionInput::new("alice", "contact_information", Action::Object, Source::Settings).with_scope("x"),
            "an objection covers the whole category: it takes no scope",
        ),
    ];
    for (input, expected) in cases {
        let err = f.store.record(&input).unwrap_err();
        assert!(err.to_string().contains(expected), "expected '{expected}' in '{err}'");
        assert!(!err.is_store_problem());
    }
    assert!(f.store.history("alice").unwrap().is_empty());
    assert_eq!(f.store.verify().unwrap(), 0);
    assert!(matches!(f.store.check("alice", "teleport", None), Err(Error::UnknownFeature(x)) if x == "teleport"));
    assert!(matches!(f.store.status("alice", "nope"), Err(Error::UnknownCategory(_))));
}

#[test]
fn a_batch_commits_all_or_nothing() {
    let f = Fixture::ucanywhere();
    let dialog = |last_category: &str| {
        vec![
            DecisionInput::new("alice", "usage_statistics", Action::Grant, Source::Onboarding),
            DecisionInput::new("alice", "photos_media", Action::Refuse, Source::Onboarding),
            DecisionInput::new("alice", last_category, Action::Grant, Source::Onboarding),
        ]
    };
    let err = f.store.record_batch(&dialog("no_such_category")).unwrap_err();
    assert!(err.to_string().contains("no_such_category"));
    assert_eq!(f.store.status("alice", "usage_statistics").unwrap().status, Status::NotAsked);
    assert!(f.store.history("alice").unwrap().is_empty());
    let receipts = f.store.record_batch(&dialog("device_contacts")).unwrap();
    assert_eq!(receipts.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(f.store.status("alice", "photos_media").unwrap().status, Status::Refused);
    assert_eq!(f.store.verify().unwrap(), 3);
}

#[test]
fn receipts_are_strictly_sequenced_and_never_updated() {
    let f = Fixture::ucanywhere();
    let a = f.grant("alice", "usage_statistics");
    let b = f.record("alice", "usage_statistics", Action::Withdraw, Source::Settings);
    assert_eq!((a.seq, b.seq), (1, 2));
    assert_eq!(b.prev_hash, a.hash);
    assert_ne!(a.id, b.id);
    assert_eq!((a.policy_id.as_str(), a.policy_version.as_str(), a.purpose_version), ("ucanywhere", "2018-05-01", Some(1)));
    let history = f.store.history("alice").unwrap();
    assert_eq!(history, vec![a, b]);
}

#[test]
fn a_grant_whose_lifetime_ends_past_year_9999_states_the_last_instant_and_its_receipt_verifies() {
    // A clock far ahead (`--now 9999-06-01T00:00:00Z`): 13 months on is past what RFC 3339 can
    // write. The receipt said "valid until 1970-01-01T00:00:00Z" (in force, yet expired on paper)
    // and its export did not verify, as the time it printed was not the time it hashed.
    let f = Fixture::ucanywhere();
    f.clock.set(ts("9999-06-01T00:00:00Z"));
    let r = f.grant("alice", "usage_statistics");
    assert_eq!(r.valid_until, Some(ts("9999-12-31T23:59:59.999Z")), "{:?}", r.valid_until.map(|t| t.to_string()));
    assert_eq!(r.valid_until.unwrap().to_string(), "9999-12-31T23:59:59.999Z");
    assert!(f.allowed("alice", "usage_analytics"));
    let json = f.store.export_json("alice").unwrap();
    assert!(!json.contains("1970-01-01"), "{json}");
    let other = Fixture::ucanywhere();
    other.clock.set(ts("9999-06-02T00:00:00Z"));
    other.store.import_json(&json).unwrap();
    assert!(other.allowed("alice", "usage_analytics"));
}
