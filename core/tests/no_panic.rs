//! No input panics: arbitrary strings for every argument give Ok or a typed error.

mod common;
use common::*;
use consentkit_core::*;
use proptest::prelude::*;

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,300}",
        prop::sample::select(vec!["usage_statistics", "device_contacts", "contact_sync", "calling", "", " ", "\u{0}", "ü🙂"])
            .prop_map(String::from),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]
    #[test]
    fn arbitrary_arguments_never_panic(subject in any_text(), name in any_text(), scope in prop::option::of(any_text()), action in 0usize..10, source in 0usize..7) {
        let f = Fixture::ucanywhere();
        let input = DecisionInput { subject: subject.clone(), category: name.clone(), action: Action::ALL[action], scope: scope.clone(), source: Source::ALL[source] };
        let _ = f.store.record(&input);
        let _ = f.store.record_batch(&[input.clone(), input]);
        let _ = f.store.check(&subject, &name, scope.as_deref());
        let _ = f.store.status(&subject, &name);
        let _ = f.store.should_ask(&subject, &name);
        let _ = f.store.history(&subject);
        let _ = f.store.export(&subject);
        let _ = f.store.import_json(&name);
        let _ = f.store.erase(&subject, Source::ALL[source]);
        let _ = f.store.set_under_age(&subject, true, Source::ALL[source]);
        prop_assert!(f.store.verify().is_ok());
    }

    #[test]
    fn arbitrary_policy_json_never_panics(json in ".{0,400}", id in any_text()) {
        let _ = Policy::from_json(&json);
        let shaped = format!(r#"{{"id":{id:?},"version":"1","categories":[{{"id":{id:?},"title":"","legal_basis":"consent","retention":"P1Y"}}],"features":[{{"id":"f","categories":[{id:?}]}}]}}"#);
        let _ = Policy::from_json(&shaped);
    }
}
