//! Observers: called after commit, only on a real change, once at registration; a failing or
//! slow listener breaks neither writes nor other listeners. Commit hooks run before a write returns.

mod common;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use consentkit_core::*;

struct Collect(Mutex<Sender<StatusChange>>);
impl ConsentObserver for Collect {
    fn on_change(&self, change: &StatusChange) {
        self.0.lock().unwrap().send(change.clone()).unwrap();
    }
}

fn collector() -> (Arc<Collect>, Receiver<StatusChange>) {
    let (tx, rx) = channel();
    (Arc::new(Collect(Mutex::new(tx))), rx)
}

fn next(rx: &Receiver<StatusChange>) -> (String, String, Status) {
    let c = rx.recv_timeout(Duration::from_secs(5)).expect("a notification");
    (c.subject, c.category, c.status)
}

struct Panics;
impl ConsentObserver for Panics {
    fn on_change(&self, _: &StatusChange) {
        panic!("listener bug");
    }
}

struct Slow;
impl ConsentObserver for Slow {
    fn on_change(&self, _: &StatusChange) {
        std::thread::sleep(Duration::from_secs(2));
    }
}

#[test]
fn initial_state_then_only_real_changes() {
    let f = Fixture::ucanywhere();
    f.grant("alice", "photos_media");
    let (obs, rx) = collector();
    let _reg = f.store.observe(Watch::Subject("alice".into()), obs).unwrap();
    let initial: Vec<_> = (0..8).map(|_| next(&rx)).collect();
    assert_eq!(initial.len(), f.store.policy().categories.len());
    assert!(initial.contains(&("alice".into(), "photos_media".into(), Status::Granted)));
    assert!(initial.contains(&("alice".into(), "traffic_data".into(), Status::NotRequired)));
    f.grant("bob", "usage_statistics"); // other subject: not watched
    f.grant("alice", "photos_media"); // no change of status
    f.record("alice", "photos_media", Action::Withdraw, Source::Settings);
    assert_eq!(next(&rx), ("alice".into(), "photos_media".into(), Status::Withdrawn));
    assert!(rx.recv_timeout(Duration::from_millis(200)).is_err(), "nothing else");
}

#[test]
fn failing_and_slow_listeners_break_nothing() {
    let f = Fixture::ucanywhere();
    let _p = f.store.observe(Watch::All, Arc::new(Panics)).unwrap();
    let _s = f.store.observe(Watch::All, Arc::new(Slow)).unwrap();
    let (obs, rx) = collector();
    let _c = f.store.observe(Watch::All, obs).unwrap();
    let started = std::time::Instant::now();
    for i in 0..5 {
        f.grant(&format!("u{i}"), "usage_statistics");
    }
    // Waiting for the slow listener would take 5 x 2 s; 8 s leaves a loaded machine room to fsync.
    assert!(started.elapsed() < Duration::from_secs(8), "writes do not wait for a slow listener");
    let got: Vec<_> = (0..5).map(|_| next(&rx)).collect();
    assert!(got.iter().all(|(_, c, s)| c == "usage_statistics" && *s == Status::Granted));
    assert!(f.allowed("u4", "usage_analytics"));
}

#[test]
fn closing_a_registration_stops_notifications() {
    let f = Fixture::ucanywhere();
    let (obs, rx) = collector();
    let reg = f.store.observe(Watch::Subject("zed".into()), obs).unwrap();
    for _ in 0..8 {
        next(&rx);
    }
    reg.close();
    f.grant("zed", "usage_statistics");
    assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
}

struct Counter(AtomicU64);
impl CommitHook for Counter {
    fn committed(&self, generation: u64) {
        self.0.store(generation, Ordering::SeqCst);
    }
}

#[test]
fn commit_hooks_run_before_the_write_returns() {
    let f = Fixture::ucanywhere();
    let counter = Arc::new(Counter(AtomicU64::new(0)));
    let _h = f.store.on_commit(counter.clone());
    f.grant("alice", "usage_statistics");
    assert_eq!(counter.0.load(Ordering::SeqCst), 1);
    f.record("alice", "usage_statistics", Action::Withdraw, Source::Settings);
    assert_eq!(counter.0.load(Ordering::SeqCst), f.store.snapshot().generation);
}
