//! The clock set back in one process while another, on the real clock, writes the same file and
//! its time mark is then deleted by hand: the first process's catch-up still takes the time the
//! file proves (the newest event's, sealed in the chain). The test binary re-runs itself as the
//! other process (`worker`, an ignored test run only as a child).

use std::io::Write;
use std::process::Command;
use std::sync::Arc;

use consentkit_core::*;
use rusqlite::Connection;

/// Not a test: the body of the other process. Opens the file read-write on the system clock and
/// records bob's refusal.
#[test]
#[ignore = "runs only as a child process of the multi-process tests"]
fn worker() {
    let Ok(path) = std::env::var("CK_CLOCK_WORKER_DB") else { return };
    let store = ConsentStore::open(&path, Policy::builtin()).unwrap();
    let r = store.record(&DecisionInput::new("bob", "usage_statistics", Action::Refuse, Source::Settings));
    writeln!(std::io::stdout().lock(), "\nworker {}", if r.is_ok() { "ok" } else { "failed" }).unwrap();
}

/// alice's grant of a year and a month ago has run out by the real clock. This process's clock
/// reads a day after the grant (set back); it is suspended (no probe), another process on the
/// real clock writes, both rows of the mark are deleted, and this process resumes (catches up).
/// Before, its time stayed at its own clock's (the file's mark gone) and it allowed alice again.
#[test]
fn a_catch_up_takes_the_newest_event_s_time_when_the_mark_rows_were_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("consent.db");
    let real = SystemClock.now();
    let granted_at = Timestamp(real.millis() - 400 * 86_400_000); // past the 13-month lifetime
    let clock = ManualClock::new(granted_at);
    let store = ConsentStore::open_with(&path, Arc::new(Policy::builtin()), Arc::new(clock.clone()), OpenMode::ReadWrite).unwrap();
    store.record(&DecisionInput::new("alice", "usage_statistics", Action::Grant, Source::Settings)).unwrap();
    clock.set(Timestamp(granted_at.millis() + 86_400_000));
    assert!(store.check("alice", "usage_analytics", None).unwrap().allowed, "valid by this process's clock");
    store.suspend();
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "worker", "--ignored", "--nocapture", "--test-threads=1"])
        .env("CK_CLOCK_WORKER_DB", &path)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("worker ok"), "{}", String::from_utf8_lossy(&out.stdout));
    Connection::open(&path).unwrap().execute_batch("DELETE FROM meta WHERE key IN ('time_high_water', 'time_high_water_seal')").unwrap();
    store.resume().unwrap();
    let d = store.check("alice", "usage_analytics", None).unwrap();
    assert!(!d.allowed, "an expired grant allowed again after a catch-up: {d:?}");
    assert_eq!(d.reasons[0].code, ReasonCode::ConsentExpired);
    assert!(store.now() >= real, "the store's time {} is before the other process's write at {real}", store.now());
}
