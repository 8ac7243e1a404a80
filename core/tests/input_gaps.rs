//! Input that does not apply is a typed error that writes nothing: a scope where no per-item
//! feature uses the category, a scope on an objection, an invalid subject to observe.

mod common;
use std::sync::Arc;

use common::*;
use consentkit_core::*;

fn invalid_scope(f: &Fixture, input: DecisionInput, why: &str) {
    let before = std::fs::read(&f.path).unwrap();
    let err = f.store.record(&input).unwrap_err();
    assert!(matches!(&err, Error::InvalidInput { what: "scope", .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&format!("'{}'", input.scope.as_deref().unwrap())) && msg.contains(why), "expected '{why}' in: {msg}");
    assert_eq!(std::fs::read(&f.path).unwrap(), before, "nothing written");
}

#[test]
fn a_scope_is_refused_where_no_per_item_feature_uses_the_category() {
    let f = Fixture::ucanywhere();
    for action in [Action::Grant, Action::Refuse, Action::Withdraw] {
        for category in ["usage_statistics", "photos_media"] {
            let input = DecisionInput::new("alice", category, action, Source::Settings).with_scope("item-1");
            invalid_scope(&f, input, &format!("no per-item feature uses category '{category}'"));
        }
    }
    assert!(f.store.history("alice").unwrap().is_empty());
    assert!(f.store.pending_sync(10).unwrap().is_empty(), "nothing queued for sync");
    assert_eq!(f.store.verify().unwrap(), 0);
    // device_contacts has contact_sync (per item): its scopes are fine.
    f.store.record(&DecisionInput::new("alice", "device_contacts", Action::Grant, Source::Settings).with_scope("contact-42")).unwrap();
    // All or nothing in a batch.
    let batch = [
        DecisionInput::new("bob", "photos_media", Action::Grant, Source::Settings),
        DecisionInput::new("bob", "usage_statistics", Action::Grant, Source::Settings).with_scope("x"),
    ];
    assert!(matches!(f.store.record_batch(&batch), Err(Error::InvalidInput { what: "scope", .. })));
    assert!(f.store.history("bob").unwrap().is_empty());
}

#[test]
fn a_scoped_objection_is_invalid_input() {
    let f = Fixture::ucanywhere();
    for action in [Action::Object, Action::WithdrawObjection] {
        let input = DecisionInput::new("alice", "contact_information", action, Source::Settings).with_scope("x");
        invalid_scope(&f, input, "an objection covers the whole category");
    }
    assert_eq!(f.store.verify().unwrap(), 0);
}

struct Counter(std::sync::Mutex<usize>);
impl ConsentObserver for Counter {
    fn on_change(&self, _change: &StatusChange) {
        *self.0.lock().unwrap() += 1;
    }
}

#[test]
fn observing_an_invalid_subject_is_refused() {
    let f = Fixture::ucanywhere();
    let counter = Arc::new(Counter(std::sync::Mutex::new(0)));
    let long = "x".repeat(300);
    for subject in ["", "   ", "a\u{1b}[2Jb", long.as_str()] {
        let err = f.store.observe(Watch::Subject(subject.into()), counter.clone()).map(|_| ()).unwrap_err();
        assert!(matches!(&err, Error::InvalidInput { what: "subject", .. }), "{subject:?}: {err:?}");
        assert!(!err.to_string().chars().any(char::is_control), "{err}");
    }
    f.grant("alice", "usage_statistics");
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_eq!(*counter.0.lock().unwrap(), 0, "nothing was registered");
    let _ok = f.store.observe(Watch::Subject("alice".into()), counter.clone()).unwrap();
}
