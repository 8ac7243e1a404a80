//! The Rust runner of the cross-language conformance suite (`tests/conformance/`), driving the
//! FFI object exactly as Kotlin and Swift do.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use consentkit_core::{Action, OsPermission, OsState, ReasonCode, Source, Status, Timestamp};
use consentkit_ffi::{os_permission_named, os_state_named, ConsentChoice, ConsentKit, ConsentKitError, TestClock};
use serde_json::{json, Value};

fn repo_tests() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests")
}

fn millis(text: &str) -> i64 {
    Timestamp::parse(text).unwrap().millis()
}

fn kind(e: &ConsentKitError) -> &'static str {
    match e {
        ConsentKitError::UnknownCategory(_) => "unknown_category",
        ConsentKitError::UnknownFeature(_) => "unknown_feature",
        ConsentKitError::InvalidInput(_) => "invalid_input",
        ConsentKitError::NotApplicable(_) => "not_applicable",
        ConsentKitError::GrantBySupport(_) => "grant_by_support",
        ConsentKitError::UnderAge(_) => "under_age",
        ConsentKitError::InvalidPolicy(_) => "invalid_policy",
        ConsentKitError::ImportRejected(_) => "import_rejected",
        ConsentKitError::SchemaTooNew(_) => "schema_too_new",
        ConsentKitError::StoreUnavailable(_) => "store_unavailable",
        ConsentKitError::Closed(_) => "closed",
        ConsentKitError::Internal(_) => "internal",
        ConsentKitError::Busy(_) => "busy",
        ConsentKitError::Suspended(_) => "suspended",
        ConsentKitError::WriteFromHook(_) => "write_from_hook",
    }
}

fn policy_json(reference: &str) -> Option<String> {
    (reference != "builtin").then(|| std::fs::read_to_string(repo_tests().join(reference)).unwrap())
}

fn s(step: &Value, key: &str) -> String {
    step[key].as_str().unwrap_or_else(|| panic!("step lacks '{key}': {step}")).to_string()
}

fn parse<T: std::str::FromStr<Err = String>>(step: &Value, key: &str) -> T {
    s(step, key).parse().unwrap()
}

fn opt(step: &Value, key: &str) -> Option<String> {
    step[key].as_str().map(String::from)
}

/// Runs one step; returns what the expectation compares (Null for writes) or the error.
fn run_step(kit: &ConsentKit, step: &Value) -> Result<Value, ConsentKitError> {
    let subject = || s(step, "subject");
    let category = || s(step, "category");
    let source = || parse::<Source>(step, "source");
    Ok(match step["do"].as_str().unwrap() {
        "grant" => kit.grant(subject(), category(), opt(step, "scope"), source()).map(|_| Value::Null)?,
        "refuse" => kit.refuse(subject(), category(), opt(step, "scope"), source()).map(|_| Value::Null)?,
        "withdraw" => kit.withdraw(subject(), category(), opt(step, "scope"), source()).map(|_| Value::Null)?,
        "object" => kit.object(subject(), category(), source()).map(|_| Value::Null)?,
        "withdraw_objection" => kit.withdraw_objection(subject(), category(), source()).map(|_| Value::Null)?,
        "batch" => {
            let decisions = step["decisions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| ConsentChoice {
                    subject: s(d, "subject"),
                    category: s(d, "category"),
                    action: parse::<Action>(d, "action"),
                    scope: opt(d, "scope"),
                    source: parse::<Source>(d, "source"),
                })
                .collect();
            kit.record_batch(decisions).map(|_| Value::Null)?
        }
        "os" => {
            // The platform's names go through the bindings' parsers: a bad id or state is an error.
            let permission = os_permission_named(s(step, "permission"))?;
            kit.set_os_permission(permission, os_state_named(s(step, "state"))?).map(|_| Value::Null)?
        }
        "os_state" => json!({ "state": kit.os_permission(os_permission_named(s(step, "permission"))?)?.as_str() }),
        "under_age" => kit.set_under_age(subject(), step["value"].as_bool().unwrap(), source()).map(|_| Value::Null)?,
        "erase" => kit.erase(subject(), source()).map(|_| Value::Null)?,
        "import" => kit.import_json(std::fs::read_to_string(repo_tests().join(s(step, "document"))).unwrap()).map(|_| Value::Null)?,
        "check" => {
            let d = kit.check(subject(), s(step, "feature"), opt(step, "scope"))?;
            let reasons: Vec<Value> = d.reasons.iter().map(|r| json!([r.code.as_str(), r.category])).collect();
            json!({ "allowed": d.allowed, "limited": d.limited, "reasons": reasons })
        }
        "status" => {
            let st = kit.status(subject(), category())?;
            json!({ "status": st.status.as_str(), "since": st.since.map(|t| t.millis()) })
        }
        "should_ask" => json!({ "value": kit.should_ask(subject(), category())? }),
        "verify" => {
            let v = kit.verify()?;
            json!({ "intact": v.intact, "events": v.events })
        }
        other => panic!("unknown step '{other}'"),
    })
}

fn compare(name: &str, i: usize, step: &Value, got: Result<Value, ConsentKitError>) {
    let expect = &step["expect"];
    let at = format!("{name} step {i} ({})", step["do"]);
    match (expect.get("error"), got) {
        (Some(wanted), Err(e)) => assert_eq!(kind(&e), wanted.as_str().unwrap(), "{at}: {e}"),
        (Some(wanted), Ok(v)) => panic!("{at}: expected error {wanted}, got {v}"),
        (None, Err(e)) => panic!("{at}: unexpected error {e}"),
        (None, Ok(v)) => {
            for (key, wanted) in expect.as_object().into_iter().flatten() {
                let wanted = match (key.as_str(), wanted) {
                    ("since", Value::String(t)) => Value::from(millis(t)),
                    _ => wanted.clone(),
                };
                assert_eq!(v[key], wanted, "{at}: field '{key}'");
            }
        }
    }
}

#[test]
fn every_scenario_passes_through_the_ffi() {
    let dir = repo_tests().join("conformance/scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.len() >= 25, "at least 25 scenarios, found {}", files.len());
    let mut statuses = HashSet::new();
    let mut reasons = HashSet::new();
    let mut os_reported = HashSet::new();
    for file in &files {
        let scenario: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        let name = s(&scenario, "name");
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("c.db").to_string_lossy().to_string();
        let clock = TestClock::new(Timestamp(millis(&s(&scenario, "start")))).unwrap();
        let open = |path: &str, policy: &str| ConsentKit::open_with_clock(path.into(), policy_json(policy), clock.clone()).unwrap();
        let mut kit: Arc<ConsentKit> = open(&db, &s(&scenario, "policy"));
        for (i, step) in scenario["steps"].as_array().unwrap().iter().enumerate() {
            if let Some(at) = step["at"].as_str() {
                clock.set(Timestamp(millis(at))).unwrap();
            }
            match step["do"].as_str() {
                Some("reopen") => {
                    // As the Kotlin and Swift managers do on close: shut down, then let go.
                    kit.shutdown().unwrap();
                    drop(kit);
                    kit = open(&db, &s(step, "policy"));
                    continue;
                }
                Some("open_damaged") => {
                    let damaged = tmp.path().join("damaged.db");
                    std::fs::write(&damaged, vec![0x5Au8; 4096]).unwrap();
                    kit = ConsentKit::open_fail_closed(damaged.to_string_lossy().into(), policy_json(&s(&scenario, "policy"))).unwrap();
                    assert!(kit.unavailable().unwrap().is_some());
                    continue;
                }
                _ => {}
            }
            let got = run_step(&kit, step);
            if let (Some("os"), Ok(_)) = (step["do"].as_str(), &got) {
                os_reported.insert(s(step, "permission"));
                os_reported.insert(s(step, "state"));
            }
            if let Ok(v) = &got {
                statuses.extend(v["status"].as_str().map(String::from));
                reasons.extend(v["reasons"].as_array().into_iter().flatten().map(|r| r[0].as_str().unwrap().to_string()));
            }
            compare(&name, i, step, got);
        }
    }
    for status in Status::ALL {
        assert!(statuses.contains(status.as_str()), "no scenario shows status {status}");
    }
    for reason in ReasonCode::ALL {
        assert!(reasons.contains(reason.as_str()), "no scenario shows reason {reason}");
    }
    for permission in OsPermission::PREDEFINED {
        assert!(os_reported.contains(permission.as_str()), "no scenario reports OS permission {permission}");
    }
    for state in OsState::ALL {
        assert!(os_reported.contains(state.as_str()), "no scenario reports OS state {state}");
    }
}
