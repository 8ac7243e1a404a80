//! Commit hooks past the cross-process bound, and reads handed from a hook to another thread.

mod common;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use consentkit_core::*;

/// A hook that outlives the cross-process bound (as a slow fsync or a slow hook would), then
/// checks: nothing else committed, so the check may still allow.
struct SlowCheckingHook {
    store: Mutex<Option<Arc<ConsentStore>>>,
    allowed: Mutex<Vec<bool>>,
}

impl CommitHook for SlowCheckingHook {
    fn committed(&self, _generation: u64) {
        let Some(store) = self.store.lock().unwrap().clone() else { return };
        std::thread::sleep(CROSS_PROCESS_BOUND + Duration::from_millis(100));
        let allowed = store.check("alice", "usage_analytics", None).map(|d| d.allowed).unwrap_or(false);
        self.allowed.lock().unwrap().push(allowed);
    }
}

#[test]
fn a_check_in_a_hook_past_the_bound_allows_when_no_other_connection_committed() {
    let f = Fixture::ucanywhere();
    let store = Arc::new(f.store);
    let hook = Arc::new(SlowCheckingHook { store: Mutex::new(Some(store.clone())), allowed: Mutex::new(Vec::new()) });
    let _registration = store.on_commit(hook.clone());
    store.record(&DecisionInput::new("alice", "usage_statistics", Action::Grant, Source::Settings)).unwrap();
    hook.store.lock().unwrap().take();
    assert_eq!(*hook.allowed.lock().unwrap(), [true], "the hook's own grant, proven current by data_version");
}

/// The same, but another connection commits a withdrawal while the hook runs: the hook cannot
/// catch up, so its check must deny.
struct WithdrawnMeanwhileHook {
    store: Mutex<Option<Arc<ConsentStore>>>,
    path: std::path::PathBuf,
    allowed: Mutex<Vec<bool>>,
}

impl CommitHook for WithdrawnMeanwhileHook {
    fn committed(&self, _generation: u64) {
        let Some(store) = self.store.lock().unwrap().clone() else { return };
        // Another process (here a plain connection) writes to the file: data_version moves.
        let other = rusqlite::Connection::open(&self.path).unwrap();
        other.execute_batch("PRAGMA user_version = user_version").unwrap();
        other.execute_batch("BEGIN IMMEDIATE; UPDATE meta SET value = value WHERE key = 'head_seq'; COMMIT;").unwrap();
        drop(other);
        std::thread::sleep(CROSS_PROCESS_BOUND + Duration::from_millis(100));
        let allowed = store.check("alice", "usage_analytics", None).map(|d| d.allowed).unwrap_or(false);
        self.allowed.lock().unwrap().push(allowed);
    }
}

#[test]
fn a_check_in_a_hook_past_the_bound_denies_when_another_connection_committed() {
    let f = Fixture::ucanywhere();
    let path = f.store.path().to_path_buf();
    let store = Arc::new(f.store);
    let hook = Arc::new(WithdrawnMeanwhileHook { store: Mutex::new(Some(store.clone())), path, allowed: Mutex::new(Vec::new()) });
    let _registration = store.on_commit(hook.clone());
    store.record(&DecisionInput::new("alice", "usage_statistics", Action::Grant, Source::Settings)).unwrap();
    hook.store.lock().unwrap().take();
    assert_eq!(*hook.allowed.lock().unwrap(), [false], "cannot tell what the other connection changed: deny");
}

/// A hook that hands a read to another thread and waits for it (as `runBlocking` on another
/// dispatcher does in Kotlin).
struct HandingOffHook {
    store: Mutex<Option<Arc<ConsentStore>>>,
    results: Mutex<Vec<String>>,
}

impl CommitHook for HandingOffHook {
    fn committed(&self, _generation: u64) {
        let Some(store) = self.store.lock().unwrap().clone() else { return };
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let pending = store.pending_sync(10).map(|p| p.len());
            let history = store.history("alice").map(|h| h.len());
            let _ = tx.send(format!("{pending:?} {history:?}"));
        });
        let got = rx.recv_timeout(Duration::from_secs(20)).unwrap_or_else(|_| "deadlocked".into());
        self.results.lock().unwrap().push(got);
    }
}

#[test]
fn a_hook_may_hand_a_read_to_another_thread_and_wait_for_it() {
    let f = Fixture::ucanywhere();
    let store = Arc::new(f.store);
    let hook = Arc::new(HandingOffHook { store: Mutex::new(Some(store.clone())), results: Mutex::new(Vec::new()) });
    let _registration = store.on_commit(hook.clone());
    store.record(&DecisionInput::new("alice", "usage_statistics", Action::Grant, Source::Settings)).unwrap();
    hook.store.lock().unwrap().take();
    assert_eq!(*hook.results.lock().unwrap(), ["Ok(1) Ok(1)"]);
}
