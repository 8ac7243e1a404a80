//! Nothing lost: a write that returned Ok survives kill -9; a damaged file fails closed with a
//! typed error; the state always equals the fold of the history, also after reopening.

mod common;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;

use common::*;
use consentkit_core::*;
use proptest::prelude::*;

const CHILD_ENV: &str = "CONSENTKIT_KILL_TEST_DB";

/// Child side of the kill test: writes forever, printing each sequence number once its write returned.
#[test]
fn kill_test_child_writer() {
    let Ok(path) = std::env::var(CHILD_ENV) else { return };
    let store = ConsentStore::open(&path, Policy::builtin()).unwrap();
    let mut out = std::io::stdout().lock();
    for i in 0u64.. {
        let action = if i % 2 == 0 { Action::Grant } else { Action::Withdraw };
        let r = store.record(&DecisionInput::new(&format!("user-{}", i % 7), "usage_statistics", action, Source::Settings)).unwrap();
        writeln!(out, "{} {} {}", r.seq, r.id, action).unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn sigkill_loses_no_write_that_returned() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kill.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "kill_test_child_writer", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut reported = Vec::new();
    while reported.len() < 150 {
        let line = lines.next().expect("child ended early").unwrap();
        let mut parts = line.split_whitespace();
        let (Some(seq), Some(id), Some(action)) = (parts.next(), parts.next(), parts.next()) else { continue };
        let Ok(seq) = seq.parse::<u64>() else { continue };
        reported.push((seq, id.to_string(), action.to_string()));
    }
    child.kill().unwrap(); // SIGKILL on Unix: no destructor, no flush, mid-write
    child.wait().unwrap();
    let store = ConsentStore::open(&path, Policy::builtin()).unwrap();
    let n = store.verify().expect("chain intact after kill -9");
    assert!(n >= reported.len() as u64);
    for (seq, id, action) in &reported {
        let subject = format!("user-{}", (seq - 1) % 7);
        let history = store.history(&subject).unwrap();
        let event = history.iter().find(|e| e.seq == *seq).unwrap_or_else(|| panic!("reported write {seq} was lost"));
        assert_eq!((&event.id, event.action.as_str()), (id, action.as_str()));
    }
    // The state table agrees with the last event of each subject.
    for k in 0..7 {
        let subject = format!("user-{k}");
        let last = store.history(&subject).unwrap().into_iter().last().unwrap();
        let expected = if last.action == Action::Grant { Status::Granted } else { Status::Withdrawn };
        assert_eq!(store.status(&subject, "usage_statistics").unwrap().status, expected);
    }
}

fn damaged_store_fails_closed(bytes: Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("damaged.db");
    std::fs::write(&path, &bytes).unwrap();
    let policy = Arc::new(Policy::builtin());
    let err = match ConsentStore::open_with(&path, policy.clone(), Arc::new(SystemClock), OpenMode::ReadWrite) {
        Err(e) => e,
        Ok(store) => store.verify().err().or_else(|| store.statuses("alice").err()).expect("damage must be reported"),
    };
    assert!(err.is_store_problem(), "{err}");
    let store = ConsentStore::open_fail_closed(&path, policy, Arc::new(SystemClock));
    if store.unavailable().is_some() {
        let d = store.check("alice", "usage_analytics", None).unwrap();
        assert!(!d.allowed);
        assert_eq!(d.reasons[0].code, ReasonCode::StoreUnavailable);
        assert!(store.check("alice", "calling", None).unwrap().allowed, "contract features stay allowed");
        assert!(matches!(
            store.record(&DecisionInput::new("a", "usage_statistics", Action::Grant, Source::Settings)),
            Err(Error::Closed(_))
        ));
        assert!(!store.should_ask("alice", "usage_statistics").unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "the damaged file is kept as it was");
        let moved = ConsentStore::quarantine(&path, Timestamp(1)).unwrap();
        assert!(moved.exists() && !path.exists());
    }
}

#[test]
fn garbage_file_gives_typed_error_and_closed_gate() {
    damaged_store_fails_closed(b"SQLite format 3\0 but then nothing that makes sense ......".repeat(100));
    damaged_store_fails_closed(vec![0xAB; 8192]);
}

#[test]
fn truncated_file_gives_typed_error_and_closed_gate() {
    let f = Fixture::ucanywhere();
    for i in 0..200 {
        f.grant(&format!("user-{i}"), "usage_statistics");
    }
    let path = f.path.clone();
    drop(f.store);
    let full = std::fs::read(&path).unwrap();
    assert!(full.len() > 8192);
    for cut in [100, 4096 + 17, full.len() / 2] {
        damaged_store_fails_closed(full[..cut].to_vec());
    }
}

#[test]
fn many_threads_write_and_check_at_once() {
    let f = Fixture::ucanywhere();
    let store = Arc::new(f.store);
    let mut handles = Vec::new();
    for t in 0..4 {
        let store = store.clone();
        handles.push(std::thread::spawn(move || {
            for i in 0..50 {
                let subject = format!("t{t}");
                store.record(&DecisionInput::new(&subject, "usage_statistics", Action::Grant, Source::Settings)).unwrap();
                assert!(store.check(&subject, "usage_analytics", None).unwrap().allowed, "own grant visible at once");
                store.record(&DecisionInput::new(&subject, "usage_statistics", Action::Withdraw, Source::Settings)).unwrap();
                assert!(
                    !store.check(&subject, "usage_analytics", None).unwrap().allowed,
                    "withdrawal visible the moment it returns (i={i})"
                );
            }
        }));
    }
    for _ in 0..2 {
        let store = store.clone();
        handles.push(std::thread::spawn(move || {
            for _ in 0..20_000 {
                for t in 0..4 {
                    store.check(&format!("t{t}"), "usage_analytics", None).unwrap();
                }
            }
        }));
    }
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(store.verify().unwrap(), 400);
}

fn arb_decision() -> impl Strategy<Value = DecisionInput> {
    let subjects = prop::sample::select(vec!["alice", "bob"]);
    let consent = prop::sample::select(vec!["usage_statistics", "device_contacts"]);
    let actions = prop::sample::select(vec![Action::Grant, Action::Refuse, Action::Withdraw]);
    let scopes = prop::option::weighted(0.3, prop::sample::select(vec!["c1", "c2"]));
    let consent_decision = (subjects.clone(), consent, actions, scopes).prop_map(|(s, c, a, scope)| DecisionInput {
        subject: s.into(),
        category: c.into(),
        action: a,
        // Only device_contacts has a per-item feature (contact_sync): only its decisions take a scope.
        scope: scope.filter(|_| c == "device_contacts").map(String::from),
        source: Source::Settings,
    });
    let objection = (subjects, prop::bool::ANY).prop_map(|(s, o)| {
        DecisionInput::new(s, "contact_information", if o { Action::Object } else { Action::WithdrawObjection }, Source::Settings)
    });
    prop_oneof![4 => consent_decision, 1 => objection]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]
    #[test]
    fn state_is_the_fold_of_history(steps in prop::collection::vec((arb_decision(), 0i64..40 * 86_400_000), 1..30)) {
        let mut f = Fixture::ucanywhere();
        for (decision, pause) in &steps {
            f.clock.advance_millis(*pause);
            f.store.record(decision).unwrap();
        }
        for round in 0..2 {
            for subject in ["alice", "bob"] {
                let history = f.store.history(subject).unwrap();
                let folded = state::SubjectState::fold(&history);
                let snapshot = f.store.snapshot();
                let live = snapshot.subjects.get(subject).map(|s| (**s).clone()).unwrap_or_default();
                prop_assert_eq!(&folded, &live, "round {}", round);
                for c in &f.store.policy().categories {
                    let now = f.store.now();
                    prop_assert_eq!(state::status_of(c, folded.categories.get(&c.id), now), f.store.status(subject, &c.id).unwrap().status);
                }
            }
            f.reopen(None);
        }
        prop_assert_eq!(f.store.verify().unwrap(), steps.len() as u64);
    }
}
