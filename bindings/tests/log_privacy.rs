//! The log privacy test: at the most verbose level, every conformance scenario (with recognisable
//! subject ids and scopes), plus export, import, erasure, purge, verify and throwing listeners for
//! each subject, must leave no subject id, scope or export document in the captured log.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use consentkit_core::{Action, OsPermission, OsState, Source, StatusChange, Timestamp};
use consentkit_ffi::{
    set_log_level, set_log_sink, CommitListener, ConsentChoice, ConsentKit, ConsentKitError, ConsentListener, LogLevel, LogRecord, LogSink,
    TestClock,
};
use serde_json::Value;

/// Recognisable markers: every subject id and scope of the scenarios is rewritten to contain one.
const SUBJECT_MARK: &str = "Subj7Zq";
const SCOPE_MARK: &str = "Scope9Xk";

struct Capture(Mutex<Vec<LogRecord>>);

impl LogSink for Capture {
    fn log(&self, record: LogRecord) -> Result<(), ConsentKitError> {
        self.0.lock().unwrap().push(record);
        Ok(())
    }
}

/// A listener that fails with the subject in its message, as careless app code would.
struct Throws;

impl ConsentListener for Throws {
    fn on_change(&self, change: StatusChange) -> Result<(), ConsentKitError> {
        Err(ConsentKitError::Internal(format!("listener failed for {}", change.subject)))
    }
}

impl CommitListener for Throws {
    fn on_commit(&self, generation: u64) -> Result<(), ConsentKitError> {
        Err(ConsentKitError::Internal(format!("commit {generation} failed")))
    }
}

fn repo_tests() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests")
}

fn millis(text: &str) -> i64 {
    Timestamp::parse(text).unwrap().millis()
}

fn policy_json(reference: &str) -> Option<String> {
    (reference != "builtin").then(|| std::fs::read_to_string(repo_tests().join(reference)).unwrap())
}

fn usable(value: &str) -> bool {
    !value.trim().is_empty() && value.len() <= 40 && !value.chars().any(char::is_control)
}

/// Printable ASCII without a space at either end, at most 256 bytes: ids the core's rule always accepts.
fn plain_id(v: &str) -> bool {
    !v.is_empty() && v.len() <= 256 && v.bytes().all(|b| (b' '..=b'~').contains(&b)) && !v.starts_with(' ') && !v.ends_with(' ')
}

/// Observes `subject` with a throwing listener, or `None` when the core refuses the id (a
/// scenario's malformed id, e.g. one with a zero-width space): only its `InvalidInput` naming the
/// subject counts as a refusal; a refused well-formed id, or any other error, fails.
fn observe_unless_refused(kit: &Arc<ConsentKit>, subject: &str) -> Option<Arc<consentkit_ffi::ListenerHandle>> {
    match kit.clone().observe(Some(subject.to_string()), Arc::new(Throws)) {
        Ok(handle) => Some(handle),
        Err(ConsentKitError::InvalidInput(message)) => {
            assert!(!plain_id(subject), "observe refused the well-formed id {subject:?}: {message}");
            assert!(message.starts_with("invalid subject "), "observe({subject:?}) refused something else: {message}");
            None
        }
        Err(e) => panic!("observe({subject:?}): {e}"),
    }
}

/// Rewrites subjects and scopes to marked values; collects every value that must not be logged.
fn mark(value: &mut Value, secrets: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                match (key.as_str(), v.as_str()) {
                    ("subject", Some(s)) if usable(s) => *v = Value::from(format!("{SUBJECT_MARK}-{s}")),
                    ("scope", Some(s)) if usable(s) => *v = Value::from(format!("{SCOPE_MARK}-{s}")),
                    _ => mark(v, secrets),
                }
                if matches!(key.as_str(), "subject" | "scope") {
                    if let Some(s) = v.as_str().filter(|s| s.trim().len() >= 4) {
                        secrets.push(s.to_string());
                    }
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| mark(v, secrets)),
        _ => {}
    }
}

fn text(step: &Value, key: &str) -> String {
    step[key].as_str().unwrap_or_default().to_string()
}

fn opt(step: &Value, key: &str) -> Option<String> {
    step[key].as_str().map(String::from)
}

fn source(step: &Value) -> Source {
    step["source"].as_str().and_then(|s| s.parse().ok()).unwrap_or(Source::Settings)
}

/// Every subject and scope in a document an `import` step reads (imported as it is: it is sealed).
fn document_secrets(value: &Value, secrets: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v.as_str()) {
                    ("subject" | "scope", Some(s)) if s.trim().len() >= 4 => secrets.push(s.to_string()),
                    _ => document_secrets(v, secrets),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| document_secrets(v, secrets)),
        _ => {}
    }
}

/// Drives one step (results are the conformance runner's business; here only the log counts).
fn drive(kit: &ConsentKit, step: &Value, secrets: &mut Vec<String>) {
    let (subject, category, scope) = (text(step, "subject"), text(step, "category"), opt(step, "scope"));
    let _ = match step["do"].as_str().unwrap_or_default() {
        "grant" => kit.grant(subject, category, scope, source(step)).map(drop),
        "refuse" => kit.refuse(subject, category, scope, source(step)).map(drop),
        "withdraw" => kit.withdraw(subject, category, scope, source(step)).map(drop),
        "object" => kit.object(subject, category, source(step)).map(drop),
        "withdraw_objection" => kit.withdraw_objection(subject, category, source(step)).map(drop),
        "batch" => {
            let decisions = step["decisions"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|d| ConsentChoice {
                    subject: text(d, "subject"),
                    category: text(d, "category"),
                    action: d["action"].as_str().and_then(|a| a.parse::<Action>().ok()).unwrap_or(Action::Grant),
                    scope: opt(d, "scope"),
                    source: source(d),
                })
                .collect();
            kit.record_batch(decisions).map(drop)
        }
        "os" => {
            // A scenario's bad id or state is an error of the step, as on every platform.
            match (text(step, "permission").parse::<OsPermission>(), text(step, "state").parse::<OsState>()) {
                (Ok(permission), Ok(state)) => kit.set_os_permission(permission, state).map(drop),
                _ => Ok(()),
            }
        }
        "os_state" => {
            if let Ok(permission) = text(step, "permission").parse::<OsPermission>() {
                let _ = kit.os_permission(permission);
            }
            Ok(())
        }
        "under_age" => kit.set_under_age(subject, step["value"].as_bool().unwrap_or(true), source(step)).map(drop),
        "erase" => kit.erase(subject, source(step)).map(drop),
        "import" => {
            let document = std::fs::read_to_string(repo_tests().join(text(step, "document"))).unwrap();
            document_secrets(&serde_json::from_str(&document).unwrap(), secrets);
            kit.import_json(document).map(drop)
        }
        "check" => kit.check(subject, text(step, "feature"), scope).map(drop),
        "status" => kit.status(subject, category).map(drop),
        "should_ask" => kit.should_ask(subject, category).map(drop),
        "verify" => kit.verify().map(drop),
        other => panic!("unknown step '{other}'"),
    };
}

/// For each subject: history, export, import elsewhere, erasure; then purge and verify.
fn rights(kit: &ConsentKit, subjects: &[String], dir: &Path, policy: Option<String>, clock: &Arc<TestClock>) {
    for (i, subject) in subjects.iter().enumerate() {
        let _ = kit.history(subject.clone());
        let _ = kit.statuses(subject.clone());
        if let Ok(doc) = kit.export_json(subject.clone()) {
            let elsewhere = dir.join(format!("import-{i}.db")).to_string_lossy().to_string();
            let other = ConsentKit::open_with_clock(elsewhere, policy.clone(), clock.clone()).unwrap();
            let _ = other.import_json(doc.clone());
            let _ = other.import_json(doc.replacen("\"refuse\"", "\"grant\"", 1)); // a rejected import
            let _ = other.import_json(doc); // already there
        }
        let _ = kit.erase(subject.clone(), Source::Support);
    }
    clock.set(Timestamp(clock.now().unwrap().millis() + 20 * 365 * 86_400_000)).unwrap();
    let _ = kit.purge();
    let _ = kit.verify();
}

/// A store whose state row is damaged fails closed; the error the app gets may name the subject,
/// the log line must not (the decoder's message quotes the row).
fn damaged_state_fails_closed(dir: &Path, secrets: &mut Vec<String>) {
    let db = dir.join("state.db").to_string_lossy().to_string();
    let subject = format!("{SUBJECT_MARK}-state-row");
    let scope = format!("{SCOPE_MARK}-state-row");
    let kit = ConsentKit::open(db.clone(), None).unwrap();
    kit.grant(subject.clone(), "device_contacts".into(), Some(scope.clone()), Source::Settings).unwrap();
    drop(kit);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let damaged = format!("{{\"categories\": \"{scope}\"");
    assert_eq!(conn.execute("UPDATE subjects SET state = ?1 WHERE subject = ?2", [&damaged, &subject]).unwrap(), 1);
    drop(conn);
    let kit = ConsentKit::open_fail_closed(db, None).unwrap();
    assert!(kit.unavailable().unwrap().is_some_and(|why| why.contains("corrupt")), "{:?}", kit.unavailable());
    secrets.extend([subject, scope]);
}

#[test]
fn no_identifier_reaches_the_log_at_trace() {
    let capture = Arc::new(Capture(Mutex::new(Vec::new())));
    set_log_sink(Some(capture.clone())).unwrap();
    set_log_level(LogLevel::Trace).unwrap();

    let dir = repo_tests().join("conformance/scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.len() >= 25, "the conformance scenarios are there");
    let mut secrets = Vec::new();
    for file in &files {
        let mut scenario: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        let mut mine = Vec::new();
        mark(&mut scenario, &mut mine);
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("c.db").to_string_lossy().to_string();
        let clock = TestClock::new(Timestamp(millis(&text(&scenario, "start")))).unwrap();
        let policy = policy_json(&text(&scenario, "policy"));
        let mut kit = ConsentKit::open_with_clock(db.clone(), policy.clone(), clock.clone()).unwrap();
        let subjects: Vec<String> = {
            let mut s: Vec<String> = mine.iter().filter(|v| v.starts_with(SUBJECT_MARK)).cloned().collect();
            s.sort();
            s.dedup();
            s
        };
        let mut handles = vec![kit.clone().on_commit(Arc::new(Throws)).unwrap()];
        handles.extend(subjects.iter().filter_map(|s| observe_unless_refused(&kit, s)));
        handles.push(kit.clone().observe(None, Arc::new(Throws)).unwrap());
        for step in scenario["steps"].as_array().unwrap() {
            if let Some(at) = step["at"].as_str() {
                clock.set(Timestamp(millis(at))).unwrap();
            }
            match step["do"].as_str() {
                Some("reopen") => {
                    handles.clear();
                    // As the Kotlin and Swift managers do: shut down (stops the observer timer,
                    // which may hold the kit for a moment) before the file is opened again.
                    kit.shutdown().unwrap();
                    drop(kit);
                    kit = ConsentKit::open_with_clock(db.clone(), policy_json(&text(step, "policy")), clock.clone()).unwrap();
                }
                Some("open_damaged") => {
                    let damaged = tmp.path().join("damaged.db");
                    std::fs::write(&damaged, vec![0x5Au8; 4096]).unwrap();
                    kit = ConsentKit::open_fail_closed(damaged.to_string_lossy().into(), policy.clone()).unwrap();
                }
                _ => drive(&kit, step, &mut mine),
            }
        }
        rights(&kit, &subjects, tmp.path(), policy, &clock);
        for h in &handles {
            let _ = h.unregister();
        }
        secrets.extend(mine);
    }
    let tmp = tempfile::tempdir().unwrap();
    damaged_state_fails_closed(tmp.path(), &mut secrets);
    // Observers deliver on their own threads: let them drain before reading the log.
    std::thread::sleep(std::time::Duration::from_millis(200));
    set_log_sink(None).unwrap();
    set_log_level(LogLevel::Warn).unwrap();

    let records = std::mem::take(&mut *capture.0.lock().unwrap());
    let log: Vec<String> = records.iter().map(|r| format!("{:?} {} {}", r.level, r.target, r.message)).collect();
    let all = log.join("\n");
    // The capture works and sees the lifecycle lines worth logging.
    for expected in ["store opened", "erased", "retention purge", "failing closed: corrupt stored value", "listener threw"] {
        assert!(all.contains(expected), "the log lacks '{expected}':\n{all}");
    }
    assert!(secrets.len() > 50, "the scenarios' subjects and scopes were collected");
    for marker in [SUBJECT_MARK, SCOPE_MARK, "consentkit-export", "\"history\""] {
        assert!(!all.contains(marker), "'{marker}' in the log:\n{all}");
    }
    for secret in &secrets {
        assert!(!all.contains(secret.as_str()), "'{secret}' in the log:\n{all}");
    }
}
