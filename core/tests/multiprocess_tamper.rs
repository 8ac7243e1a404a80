//! Several processes on one store file (issue #11), hostile cases: another process's `verify`
//! finds the state table forged. The test binary re-runs itself as that other process (`worker`,
//! an ignored test run only as a child), which prints `verify ok <n>` or `verify tampered`.

use std::io::Write;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

mod common;

use consentkit_core::*;
use rusqlite::Connection;

/// Not a test: the body of the other process. Opens the file read-write and verifies it.
#[test]
#[ignore = "runs only as a child process of the multi-process tests"]
fn worker() {
    let Ok(path) = std::env::var("CK_TAMPER_WORKER_DB") else { return };
    let store = ConsentStore::open(&path, Policy::builtin()).unwrap();
    let mut out = std::io::stdout().lock();
    match store.verify() {
        Ok(n) => writeln!(out, "\nverify ok {n}"),
        Err(Error::Tampered(_)) => writeln!(out, "\nverify tampered"),
        Err(e) => writeln!(out, "\nverify error {e}"),
    }
    .unwrap();
}

/// Runs the other process's `verify` to completion and returns its verdict line.
fn verify_in_another_process(path: &std::path::Path) -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "worker", "--ignored", "--nocapture", "--test-threads=1"])
        .env("CK_TAMPER_WORKER_DB", path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    stdout.lines().find(|l| l.starts_with("verify ")).map(str::to_string).unwrap_or_else(|| format!("no verdict: {stdout}"))
}

/// As a forger who read the source: alice's state row set back to granted, the digest resealed.
fn forge_alice_granted(path: &std::path::Path, granted_row: &[u8]) {
    let conn = Connection::open(path).unwrap();
    conn.execute("UPDATE subjects SET state=?1 WHERE subject='alice'", [granted_row]).unwrap();
    drop(conn);
    common::reseal_state_digest(path);
}

/// Process A serves a resealed forgery (the documented limit of the unkeyed digest, found only
/// by `verify`). The support tool's `verify` in process B finds it and invalidates the digest.
/// A must then stop allowing within the bound, and its next write must not seal the forged state
/// again (a later open would trust it without a walk).
#[test]
fn another_process_s_verify_finding_a_forged_state_stops_this_one_s_allows_and_its_reseal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("consent.db");
    let setup = ConsentStore::open(&path, Policy::builtin()).unwrap();
    setup.record(&DecisionInput::new("alice", "usage_statistics", Action::Grant, Source::Settings)).unwrap();
    let granted_row: Vec<u8> =
        Connection::open(&path).unwrap().query_row("SELECT state FROM subjects WHERE subject='alice'", [], |r| r.get(0)).unwrap();
    setup.record(&DecisionInput::new("alice", "usage_statistics", Action::Withdraw, Source::Settings)).unwrap();
    drop(setup);
    forge_alice_granted(&path, &granted_row);

    let a = ConsentStore::open_with(&path, Arc::new(Policy::builtin()), Arc::new(SystemClock), OpenMode::ReadWrite).unwrap();
    assert!(a.check("alice", "usage_analytics", None).unwrap().allowed, "precondition: the resealed forgery passes the open");

    assert_eq!(verify_in_another_process(&path), "verify tampered");
    // No allow once the bound (plus generous slack for the probe thread) has passed.
    std::thread::sleep(CROSS_PROCESS_BOUND + Duration::from_secs(1));
    assert!(
        !a.check("alice", "usage_analytics", None).unwrap().allowed,
        "another process proved the served state forged; this one still allows the withdrawn feature"
    );

    // A's next write must not seal its in-memory state over the file's invalidated digest.
    a.record(&DecisionInput::new("bob", "usage_statistics", Action::Grant, Source::Settings)).unwrap();
    assert!(!a.check("alice", "usage_analytics", None).unwrap().allowed);
    drop(a);
    let fresh = ConsentStore::open_with(&path, Arc::new(Policy::builtin()), Arc::new(SystemClock), OpenMode::ReadOnly).unwrap();
    assert!(!fresh.check("alice", "usage_analytics", None).unwrap().allowed, "a later open serves the history, not a resealed forgery");
    assert_eq!(fresh.verify().unwrap(), 3);
    drop(fresh);
    assert_eq!(verify_in_another_process(&path), "verify ok 3");
}

/// A forger edits and reseals the state table while process A has the file open (no chain event:
/// the head does not move). A's catch-up must not adopt the resealed table: it serves the
/// verified history's fold, and its next write leaves a table that verifies.
#[test]
fn a_state_table_resealed_while_open_is_not_adopted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("consent.db");
    let a = ConsentStore::open(&path, Policy::builtin()).unwrap();
    a.record(&DecisionInput::new("alice", "usage_statistics", Action::Grant, Source::Settings)).unwrap();
    let granted_row: Vec<u8> =
        Connection::open(&path).unwrap().query_row("SELECT state FROM subjects WHERE subject='alice'", [], |r| r.get(0)).unwrap();
    a.record(&DecisionInput::new("alice", "usage_statistics", Action::Withdraw, Source::Settings)).unwrap();
    assert!(!a.check("alice", "usage_analytics", None).unwrap().allowed);

    forge_alice_granted(&path, &granted_row);
    std::thread::sleep(CROSS_PROCESS_BOUND + Duration::from_secs(1));
    a.refresh().unwrap();
    assert!(!a.check("alice", "usage_analytics", None).unwrap().allowed, "a resealed edit made while open was adopted");

    a.record(&DecisionInput::new("bob", "usage_statistics", Action::Grant, Source::Settings)).unwrap();
    assert!(!a.check("alice", "usage_analytics", None).unwrap().allowed);
    assert_eq!(a.verify().unwrap(), 3, "the write rewrote the forged table from the history");
    drop(a);
    assert_eq!(verify_in_another_process(&path), "verify ok 3");
}
