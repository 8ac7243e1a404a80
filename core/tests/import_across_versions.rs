//! An honest export made under an older policy version restores under a newer one even where a
//! category changed its legal basis: the old decisions are kept as history and count for nothing
//! under the new basis. Under the same version, a decision the basis does not take stays a forgery.

mod common;
use common::*;
use consentkit_core::*;

fn policy(file: &str) -> Policy {
    let path = format!("{}/../tests/{file}", env!("CARGO_MANIFEST_DIR"));
    Policy::from_json(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn an_objection_made_under_legitimate_interest_restores_after_the_category_became_consent() {
    let v1 = policy("fixtures/milo_and_pi.json");
    let v2 = policy("conformance/policies/milo_and_pi_v2_basis_changes.json");
    assert_ne!(v1.version, v2.version);
    assert_eq!(v1.category("marketing_post").unwrap().legal_basis, LegalBasis::LegitimateInterest);
    assert_eq!(v2.category("marketing_post").unwrap().legal_basis, LegalBasis::Consent);
    let old = Fixture::new(v1);
    old.record("alice", "marketing_post", Action::Object, Source::Settings);
    old.record("alice", "marketing_post", Action::WithdrawObjection, Source::Settings);
    let doc = old.store.export("alice").unwrap();

    let new = Fixture::new(v2.clone());
    new.clock.set(ts("2026-01-16T09:00:00Z"));
    new.store.import(&doc).unwrap();
    let status = new.store.status("alice", "marketing_post").unwrap().status;
    assert_eq!(status, Status::NotAsked, "the old objection counts for nothing under consent");
    assert!(new.store.should_ask("alice", "marketing_post").unwrap());
    for feature in v2.features.iter().filter(|f| f.categories.iter().any(|c| c == "marketing_post")) {
        assert!(!new.store.check("alice", &feature.id, None).map(|d| d.allowed).unwrap_or(false), "{} is not allowed", feature.id);
    }
    // And the restored store's own export restores again, on yet another device.
    let again = new.store.export("alice").unwrap();
    let third = Fixture::new(v2);
    third.clock.set(ts("2026-01-17T09:00:00Z"));
    third.store.import(&again).unwrap();
    assert_eq!(third.store.history("alice").unwrap().iter().filter(|r| r.subject.is_some()).count(), 2);
}

#[test]
fn under_the_same_version_an_objection_on_a_consent_category_is_still_refused() {
    let f = Fixture::ucanywhere();
    f.record("alice", "contact_information", Action::Object, Source::Settings);
    let mut doc = f.store.export("alice").unwrap();
    let objection = doc.history.iter_mut().find(|r| r.action == Action::Object).unwrap();
    objection.category = Some("usage_statistics".into());
    let mut prev = consentkit_core::chain::GENESIS.to_string();
    for r in &mut doc.history {
        consentkit_core::chain::seal(r, &prev);
        prev = r.hash.clone();
    }
    doc.state.clear();
    let target = Fixture::ucanywhere();
    let err = target.store.import(&doc).unwrap_err();
    assert!(err.to_string().contains("cannot object category 'usage_statistics'"), "{err}");
    assert!(target.store.history("alice").unwrap().is_empty());
}
