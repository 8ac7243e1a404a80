//! The two other catalogs load and gate correctly: the SDK is not hard-wired to UCAnywhere.

mod common;
use common::*;
use consentkit_core::*;

#[test]
fn milo_and_pi_cookie_classes_and_marketing_channels() {
    let f = Fixture::new(fixture_policy("milo_and_pi.json"));
    assert!(f.allowed("shopper", "site_session"), "strictly necessary cookies need no consent");
    assert!(f.allowed("shopper", "checkout"), "contract + legal obligation");
    for (feature, category) in [
        ("site_analytics", "cookies_performance"),
        ("remember_preferences", "cookies_functionality"),
        ("personalised_ads", "cookies_targeting"),
        ("email_newsletter", "marketing_email"),
        ("sms_offers", "marketing_sms"),
    ] {
        assert_eq!(f.reasons("shopper", feature, None), pairs(&[("consent_not_asked", category)]));
    }
    f.store
        .record_batch(&[
            DecisionInput::new("shopper", "cookies_performance", Action::Grant, Source::Onboarding),
            DecisionInput::new("shopper", "cookies_targeting", Action::Refuse, Source::Onboarding),
            DecisionInput::new("shopper", "marketing_email", Action::Grant, Source::Onboarding),
        ])
        .unwrap();
    assert!(f.allowed("shopper", "site_analytics"));
    assert_eq!(f.reasons("shopper", "personalised_ads", None), pairs(&[("consent_refused", "cookies_targeting")]));
    // Post marketing rests on legitimate interest: allowed until the customer opts out.
    assert!(f.allowed("shopper", "postal_catalogue"));
    f.record("shopper", "marketing_post", Action::Object, Source::Support);
    assert_eq!(f.reasons("shopper", "postal_catalogue", None), pairs(&[("objected", "marketing_post")]));
    // 12-month lifetime in this catalog.
    f.clock.advance_millis(366 * 86_400_000);
    assert_eq!(f.reasons("shopper", "email_newsletter", None), pairs(&[("consent_expired", "marketing_email")]));
}

#[test]
fn wk360_serves_nobody_under_16() {
    let f = Fixture::new(fixture_policy("wk360.json"));
    assert_eq!(f.store.policy().children, ChildrenRule::NotServed);
    assert!(f.allowed("client", "hosted_login"));
    assert!(f.allowed("client", "newsletter"), "legitimate interest until objected");
    f.record("client", "email_marketing", Action::Object, Source::Support);
    assert_eq!(f.reasons("client", "newsletter", None), pairs(&[("objected", "email_marketing")]));
    f.store.set_under_age("teen", true, Source::Support).unwrap();
    let err = f.store.record(&DecisionInput::new("teen", "analytics_data", Action::Grant, Source::Guardian)).unwrap_err();
    assert!(matches!(err, Error::ChildrenNotServed { age: 16, .. }), "{err}");
    assert_eq!(f.reasons("teen", "hosted_login", None), pairs(&[("under_age", "login_data")]));
    assert!(!f.store.should_ask("teen", "analytics_data").unwrap());
    assert!(f.store.check("client", "ucanywhere_feature", None).is_err());
}

#[test]
fn a_store_belongs_to_one_policy() {
    let f = Fixture::new(fixture_policy("wk360.json"));
    let path = f.path.clone();
    drop(f.store);
    let err = ConsentStore::open(&path, Policy::builtin()).err().unwrap();
    assert!(matches!(err, Error::PolicyMismatch { .. }), "{err}");
    assert!(err.to_string().contains("'wk360'") && err.to_string().contains("'ucanywhere'"));
}

#[test]
fn a_file_is_open_once_per_process() {
    let f = Fixture::ucanywhere();
    let err = ConsentStore::open(&f.path, Policy::builtin()).err().unwrap();
    assert!(err.to_string().contains("already open in this process"), "{err}");
    let closed = ConsentStore::open_fail_closed(&f.path, std::sync::Arc::new(Policy::builtin()), std::sync::Arc::new(SystemClock));
    assert!(!closed.check("alice", "usage_analytics", None).unwrap().allowed, "a second store fails closed");
    let path = f.path.clone();
    let dir = f.dir;
    drop(f.store);
    assert!(ConsentStore::open(&path, Policy::builtin()).is_ok(), "released when the first store is dropped");
    drop(dir);
}
