//! Several processes on one store file (issue #11): what the other process does besides a plain
//! withdrawal. It erases the subject, denies an OS permission, or dies (SIGKILL) holding the
//! file's write lock mid-transaction; and this process's own probe is starved by a commit hook
//! that blocks. The test binary re-runs itself as the other process (`worker`, an ignored test
//! run only as a child), which prints `done` when its operation returned (or `holding` while it
//! holds the lock).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use consentkit_core::*;

/// Starts the other process with `op`: `withdraw:<subject>`, `erase:<subject>`,
/// `os-deny-contacts`, or `hold-lock` (a raw connection begins a write and never ends it).
fn spawn_worker(path: &std::path::Path, op: &str) -> (Child, Receiver<String>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "worker", "--ignored", "--nocapture", "--test-threads=1"])
        .env("CK_OTHERS_WORKER_DB", path)
        .env("CK_OTHERS_WORKER_OP", op)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Waits for the worker's result line (skipping the test harness's own output).
fn result_of(lines: &Receiver<String>) -> String {
    loop {
        let line = lines.recv_timeout(Duration::from_secs(60)).expect("the worker answered");
        if ["done", "holding", "err "].iter().any(|p| line.starts_with(p)) {
            return line;
        }
    }
}

/// A policy of the repository's test data.
fn policy(file: &str) -> Policy {
    let path = format!("{}/../tests/{file}", env!("CARGO_MANIFEST_DIR"));
    Policy::from_json(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Not a test: the body of the other process (see [`spawn_worker`]).
#[test]
#[ignore = "runs only as a child process of the multi-process tests"]
fn worker() {
    let (Ok(path), Ok(op)) = (std::env::var("CK_OTHERS_WORKER_DB"), std::env::var("CK_OTHERS_WORKER_OP")) else { return };
    let mut out = std::io::stdout().lock();
    writeln!(out).unwrap();
    if op == "hold-lock" {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("BEGIN IMMEDIATE; UPDATE meta SET value = value WHERE key = 'head_seq';").unwrap();
        writeln!(out, "holding").unwrap();
        out.flush().unwrap();
        std::thread::sleep(Duration::from_secs(600));
        return;
    }
    let store =
        ConsentStore::open(&path, if op.starts_with("refuse-v2") { policy("fixtures/milo_and_pi.json") } else { Policy::builtin() })
            .unwrap();
    let result = match op.split_once(':') {
        Some(("withdraw", s)) => store.record(&DecisionInput::new(s, "usage_statistics", Action::Withdraw, Source::Settings)).map(drop),
        Some(("erase", s)) => store.erase(s, Source::Support).map(drop),
        Some(("refuse-v2", s)) => {
            drop(store);
            let v2 = policy("conformance/policies/milo_and_pi_v2_basis_changes.json");
            let store = ConsentStore::open(&path, v2).unwrap();
            store.record(&DecisionInput::new(s, "marketing_post", Action::Refuse, Source::Settings)).map(drop)
        }
        _ if op == "os-deny-contacts" => store.set_os_permission(OsPermission::CONTACTS, OsState::Denied).map(drop),
        _ => panic!("unknown worker op {op}"),
    };
    match result {
        Ok(()) => writeln!(out, "done"),
        Err(e) => writeln!(out, "err {e}"),
    }
    .unwrap();
    out.flush().unwrap();
}

/// Checks in a loop from the moment the other process's change returned; every check that starts
/// more than the bound later must deny (a generous second of slack for the loop to get there).
fn no_allow_past_the_bound(a: &ConsentStore, subject: &str, feature: &str, returned: Instant) {
    let until = returned + CROSS_PROCESS_BOUND + Duration::from_secs(1);
    loop {
        let started = Instant::now();
        let allowed = a.check(subject, feature, None).unwrap().allowed;
        if started.duration_since(returned) > CROSS_PROCESS_BOUND {
            assert!(!allowed, "a check past the bound allowed {feature} for {subject} after the other process's change");
        }
        if started > until {
            break;
        }
    }
}

#[test]
fn another_process_s_erasure_is_honoured_within_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("consent.db");
    let a = ConsentStore::open(&path, Policy::builtin()).unwrap();
    a.record(&DecisionInput::new("alice", "usage_statistics", Action::Grant, Source::Settings)).unwrap();
    a.record(&DecisionInput::new("bob", "usage_statistics", Action::Grant, Source::Settings)).unwrap();
    let (mut b, lines) = spawn_worker(&path, "erase:alice");
    assert_eq!(result_of(&lines), "done");
    let returned = Instant::now();
    no_allow_past_the_bound(&a, "alice", "usage_analytics", returned);
    b.wait().unwrap();
    assert!(a.check("bob", "usage_analytics", None).unwrap().allowed, "the other subject is untouched");
    assert!(a.history("alice").unwrap().is_empty());
    // A's next write succeeds after the other process's removal, and the chain is intact.
    a.record(&DecisionInput::new("carol", "usage_statistics", Action::Grant, Source::Settings)).unwrap();
    a.verify().unwrap();
}

#[test]
fn another_process_s_os_permission_denial_is_honoured_within_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("consent.db");
    let a = ConsentStore::open(&path, Policy::builtin()).unwrap();
    a.set_os_permission(OsPermission::CONTACTS, OsState::Granted).unwrap();
    a.record(&DecisionInput::new("alice", "device_contacts", Action::Grant, Source::Settings)).unwrap();
    assert!(a.check("alice", "contact_lookup", None).unwrap().allowed, "precondition");
    let (mut b, lines) = spawn_worker(&path, "os-deny-contacts");
    assert_eq!(result_of(&lines), "done");
    let returned = Instant::now();
    no_allow_past_the_bound(&a, "alice", "contact_lookup", returned);
    b.wait().unwrap();
    assert_eq!(a.os_state(OsPermission::CONTACTS), OsState::Denied);
}

#[test]
fn another_process_killed_holding_the_write_lock_neither_wedges_nor_changes_anything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("consent.db");
    let a = ConsentStore::open(&path, Policy::builtin()).unwrap();
    a.record(&DecisionInput::new("alice", "usage_statistics", Action::Grant, Source::Settings)).unwrap();
    let (mut b, lines) = spawn_worker(&path, "hold-lock");
    assert_eq!(result_of(&lines), "holding");
    // While B holds the lock, a write of A is refused as retryable, changing nothing.
    let err = a.record(&DecisionInput::new("bob", "usage_statistics", Action::Grant, Source::Settings)).unwrap_err();
    assert!(err.is_retryable(), "{err}");
    b.kill().unwrap(); // SIGKILL mid-transaction
    b.wait().unwrap();
    // Not wedged: the next write succeeds, nothing of B's transaction is there, the chain intact.
    let r = a.record(&DecisionInput::new("bob", "usage_statistics", Action::Grant, Source::Settings)).unwrap();
    assert_eq!(r.seq, 2);
    a.refresh().unwrap();
    assert!(a.check("alice", "usage_analytics", None).unwrap().allowed);
    assert_eq!(a.verify().unwrap(), 2);
}

/// A commit hook of this process blocks (holding the publish lock, so the probe thread cannot
/// catch up); meanwhile another process withdraws. Checks on other threads must not keep allowing.
struct BlockingHook(Mutex<Option<Receiver<()>>>);

impl CommitHook for BlockingHook {
    fn committed(&self, _generation: u64) {
        if let Some(release) = self.0.lock().unwrap().take() {
            let _ = release.recv_timeout(Duration::from_secs(60));
        }
    }
}

#[test]
fn a_blocking_commit_hook_does_not_keep_a_withdrawal_by_another_process_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("consent.db");
    let a = Arc::new(ConsentStore::open(&path, Policy::builtin()).unwrap());
    a.record(&DecisionInput::new("alice", "usage_statistics", Action::Grant, Source::Settings)).unwrap();
    let (release, released) = channel();
    let hook = Arc::new(BlockingHook(Mutex::new(Some(released))));
    let _registration = a.on_commit(hook);
    let writer = {
        let a = a.clone();
        std::thread::spawn(move || a.record(&DecisionInput::new("bob", "usage_statistics", Action::Grant, Source::Settings)).map(drop))
    };
    while a.snapshot().subjects.get("bob").is_none() {
        std::thread::yield_now(); // bob's write published; its hook now blocks
    }
    let (mut b, lines) = spawn_worker(&path, "withdraw:alice");
    assert_eq!(result_of(&lines), "done");
    let returned = Instant::now();
    no_allow_past_the_bound(&a, "alice", "usage_analytics", returned);
    b.wait().unwrap();
    release.send(()).unwrap();
    writer.join().unwrap().unwrap();
    a.refresh().unwrap();
    assert!(!a.check("alice", "usage_analytics", None).unwrap().allowed);
    assert_eq!(a.verify().unwrap(), 3);
}

/// Process A runs policy v1, where `marketing_post` rests on legitimate interest, and alice
/// objected. Process B already runs v2 (the category became consent) and records her refusal.
/// The state keeps one status per category: A must not read the refusal as "no objection" and
/// allow the postal catalogue she objected to (and refused).
#[test]
fn a_refusal_by_a_process_on_another_policy_version_does_not_lift_an_objection() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("consent.db");
    let a = ConsentStore::open(&path, policy("fixtures/milo_and_pi.json")).unwrap();
    assert!(a.check("alice", "postal_catalogue", None).unwrap().allowed, "precondition: legitimate interest, no objection");
    a.record(&DecisionInput::new("alice", "marketing_post", Action::Object, Source::Settings)).unwrap();
    assert!(!a.check("alice", "postal_catalogue", None).unwrap().allowed);
    let (mut b, lines) = spawn_worker(&path, "refuse-v2:alice");
    assert_eq!(result_of(&lines), "done");
    b.wait().unwrap();
    a.refresh().unwrap();
    assert_eq!(a.history("alice").unwrap().last().map(|r| r.action), Some(Action::Refuse), "A sees B's refusal");
    assert!(!a.check("alice", "postal_catalogue", None).unwrap().allowed, "an objection hidden behind a refusal still denies");
    assert_eq!(a.status("alice", "marketing_post").unwrap().status, Status::Objected);
    // Withdrawing the objection is what lifts it.
    a.record(&DecisionInput::new("alice", "marketing_post", Action::WithdrawObjection, Source::Settings)).unwrap();
    assert!(a.check("alice", "postal_catalogue", None).unwrap().allowed);
}

/// A read-only opener (an app extension) in this process; the other process withdraws, then
/// erases: the read-only store honours both within the bound.
#[test]
fn a_read_only_store_honours_another_process_s_withdrawal_and_erasure_within_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("consent.db");
    let setup = ConsentStore::open(&path, Policy::builtin()).unwrap();
    for s in ["alice", "bob"] {
        setup.record(&DecisionInput::new(s, "usage_statistics", Action::Grant, Source::Settings)).unwrap();
    }
    drop(setup);
    let ro = ConsentStore::open_with(&path, Arc::new(Policy::builtin()), Arc::new(SystemClock), OpenMode::ReadOnly).unwrap();
    assert!(ro.check("alice", "usage_analytics", None).unwrap().allowed && ro.check("bob", "usage_analytics", None).unwrap().allowed);
    let (mut b, lines) = spawn_worker(&path, "withdraw:alice");
    assert_eq!(result_of(&lines), "done");
    no_allow_past_the_bound(&ro, "alice", "usage_analytics", Instant::now());
    b.wait().unwrap();
    let (mut b, lines) = spawn_worker(&path, "erase:bob");
    assert_eq!(result_of(&lines), "done");
    no_allow_past_the_bound(&ro, "bob", "usage_analytics", Instant::now());
    b.wait().unwrap();
    assert_eq!(ro.verify().unwrap(), ro.chain_rows().unwrap().len() as u64);
}
