//! A store's file name may hold an identifier (one store per user: `consent-<userId>.db`), so no
//! log line names the path: not the migration, the fail-closed open, nor the quarantine.

use std::sync::{Arc, Mutex};

use consentkit_core::*;

struct Capture(Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, record: &log::Record) {
        self.0.lock().unwrap().push(format!("{} {}", record.level(), record.args()));
    }
    fn flush(&self) {}
}

#[test]
fn migration_fail_closed_open_and_quarantine_log_no_path() {
    let capture: &'static Capture = Box::leak(Box::new(Capture(Mutex::new(Vec::new()))));
    log::set_logger(capture).unwrap();
    log::set_max_level(log::LevelFilter::Trace);
    let dir = tempfile::tempdir().unwrap();

    // A v3 store (migrated at open) in a file named after its user.
    let v3 = dir.path().join("consent-alice@example.com.db");
    std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/store-v3.db"), &v3).unwrap();
    drop(ConsentStore::open(&v3, Policy::builtin()).unwrap());

    // A damaged one: opened fail-closed, then quarantined.
    let bad = dir.path().join("consent-bob@example.com.db");
    std::fs::write(&bad, vec![0x5Au8; 4096]).unwrap();
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(Timestamp(1_768_467_600_000)));
    let closed = ConsentStore::open_fail_closed(&bad, Arc::new(Policy::builtin()), clock);
    assert!(closed.unavailable().is_some());
    drop(closed);
    let moved = ConsentStore::quarantine(&bad, Timestamp(1_768_467_600_000)).unwrap();
    assert!(moved.exists());

    let lines = capture.0.lock().unwrap().clone();
    assert!(lines.iter().any(|l| l.contains("migrating")), "the migration is logged: {lines:#?}");
    assert!(lines.iter().any(|l| l.contains("quarantined")), "the quarantine is logged: {lines:#?}");
    for line in &lines {
        assert!(!line.contains("alice@example.com") && !line.contains("bob@example.com"), "a line names the path: {line}");
        assert!(!line.contains(dir.path().to_str().unwrap()), "a line names the folder: {line}");
    }
}
