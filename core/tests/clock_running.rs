//! A wall clock set back while the store runs: the store's time moves on with real time (the
//! clock's running clock, `Clock::running_millis`), so a grant ends at its real expiry, not when
//! the set-back clock reaches it. The running time never moves the persisted mark or a receipt.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use consentkit_core::*;

const DAY: i64 = 86_400_000;

/// A device clock under the test's hand: a wall clock that can be set back and forth, and a running
/// clock (like `CLOCK_BOOTTIME`) that only the passing of "real" time moves.
#[derive(Clone)]
struct DeviceClock {
    wall: Arc<AtomicI64>,
    running: Arc<AtomicI64>,
}

impl DeviceClock {
    fn new(at: Timestamp) -> DeviceClock {
        DeviceClock { wall: Arc::new(AtomicI64::new(at.millis())), running: Arc::new(AtomicI64::new(1_000)) }
    }
    /// Real time passes: both clocks move on.
    fn pass(&self, millis: i64) {
        self.wall.fetch_add(millis, Ordering::SeqCst);
        self.running.fetch_add(millis, Ordering::SeqCst);
    }
    /// The user sets the wall clock; no real time passes.
    fn set_wall(&self, at: Timestamp) {
        self.wall.store(at.millis(), Ordering::SeqCst);
    }
    fn wall(&self) -> Timestamp {
        Timestamp(self.wall.load(Ordering::SeqCst))
    }
}

impl Clock for DeviceClock {
    fn now(&self) -> Timestamp {
        self.wall()
    }
    fn running_millis(&self) -> Option<i64> {
        Some(self.running.load(Ordering::SeqCst))
    }
}

fn open(path: &Path, clock: &DeviceClock) -> ConsentStore {
    ConsentStore::open_with(path, Arc::new(Policy::builtin()), Arc::new(clock.clone()), OpenMode::ReadWrite).unwrap()
}

fn expired(store: &ConsentStore) -> bool {
    let d = store.check("alice", "usage_analytics", None).unwrap();
    !d.allowed && d.reasons.iter().any(|r| r.code.to_string() == "consent_expired")
}

/// Alice's grant, the clock run honestly to a day before its expiry, then set back 30 days.
/// Returns the grant's expiry.
fn grant_then_set_back(store: &ConsentStore, clock: &DeviceClock) -> Timestamp {
    let r = store.record(&DecisionInput::new("alice", "usage_statistics", Action::Grant, Source::Settings)).unwrap();
    let until = r.valid_until.expect("the built-in policy gives consents a lifetime");
    clock.pass(until.millis() - clock.wall().millis() - DAY);
    assert!(store.check("alice", "usage_analytics", None).unwrap().allowed, "a day before its expiry");
    clock.set_wall(Timestamp(clock.wall().millis() - 30 * DAY));
    assert!(store.check("alice", "usage_analytics", None).unwrap().allowed, "set back: still the day before");
    until
}

#[test]
fn a_clock_set_back_while_the_store_runs_does_not_keep_a_grant_past_its_real_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let clock = DeviceClock::new(ts("2026-01-15T09:00:00Z"));
    let store = open(&dir.path().join("consent.db"), &clock);
    let until = grant_then_set_back(&store, &clock);
    // Two real days pass: the grant's real expiry is a day behind us; the wall clock still reads
    // 28 days before it.
    clock.pass(2 * DAY);
    assert!(clock.wall() < until);
    store.refresh().unwrap();
    assert!(expired(&store), "allowed a day past the grant's real expiry: {:?}", store.check("alice", "usage_analytics", None));
    assert_eq!(store.status("alice", "usage_statistics").unwrap().status, Status::Expired);
    assert!(store.now() > until, "the store's time {} is not past the expiry {until}", store.now());
    assert!(store.should_ask("alice", "usage_statistics").unwrap(), "an expired consent is asked again");
}

#[test]
fn the_probe_thread_moves_the_store_s_time_on_without_any_call() {
    let dir = tempfile::tempdir().unwrap();
    let clock = DeviceClock::new(ts("2026-01-15T09:00:00Z"));
    let store = open(&dir.path().join("consent.db"), &clock);
    grant_then_set_back(&store, &clock);
    clock.pass(2 * DAY);
    // No refresh, no write: the probe thread (every PROBE_INTERVAL) carries the time on. The
    // deadline is generous for a loaded machine; the property is that it happens at all.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !expired(&store) {
        assert!(Instant::now() < deadline, "still allowed 20 s after the real expiry passed");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn after_a_restart_with_the_clock_still_set_back_the_running_time_counts_from_the_mark() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("consent.db");
    let clock = DeviceClock::new(ts("2026-01-15T09:00:00Z"));
    let store = open(&path, &clock);
    let until = grant_then_set_back(&store, &clock);
    drop(store);
    // Restarted: a new boot's running clock starts elsewhere; the wall clock still reads 29 days
    // before the expiry.
    clock.running.store(5, Ordering::SeqCst);
    let store = open(&path, &clock);
    assert!(store.check("alice", "usage_analytics", None).unwrap().allowed, "the mark is a day before the expiry");
    clock.pass(2 * DAY);
    assert!(clock.wall() < until);
    store.refresh().unwrap();
    assert!(expired(&store), "allowed past the real expiry after a restart");
}

#[test]
fn the_running_time_never_moves_the_mark_or_a_receipt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("consent.db");
    let start = ts("2026-01-15T09:00:00Z");
    let clock = DeviceClock::new(start);
    let store = open(&path, &clock);
    // The wall clock reads an hour ahead for a moment (the store reads it), then is put right.
    clock.set_wall(Timestamp(start.millis() + 3_600_000));
    assert_eq!(store.now(), Timestamp(start.millis() + 3_600_000));
    clock.set_wall(start);
    // 55 real minutes later the wall clock is 5 minutes behind the mark: within the tolerance, so a
    // grant is recorded, stamped at the mark (the highest wall reading), not at the running floor
    // (the mark plus 55 minutes), which would keep grants refused for as long as the process runs.
    clock.pass(55 * 60_000);
    let r = store.record(&DecisionInput::new("bob", "usage_statistics", Action::Grant, Source::Settings)).unwrap();
    assert_eq!(r.at, Timestamp(start.millis() + 3_600_000), "stamped at the mark");
    assert!(store.check("bob", "usage_analytics", None).unwrap().allowed);
    drop(store);
    // The persisted mark is that wall reading, not the floor: after a restart, store time is the mark.
    let store = open(&path, &clock);
    assert_eq!(store.now(), Timestamp(start.millis() + 3_600_000));
    assert!(store.check("bob", "usage_analytics", None).unwrap().allowed);
}

#[test]
fn a_clock_without_a_running_clock_stands_still() {
    let f = Fixture::ucanywhere();
    f.grant("alice", "usage_statistics");
    let mark = f.store.now();
    f.clock.set(Timestamp(mark.millis() - DAY));
    std::thread::sleep(Duration::from_millis(120));
    f.store.refresh().unwrap();
    assert_eq!(f.store.now(), mark, "a manual clock's store time moved with real time");
}

/// A device clock whose thread is stalled once between two readings (preempted on a loaded
/// device): the next running-clock reading is taken, then `stall` of real time passes before
/// anything else reads a clock.
#[derive(Clone)]
struct StallingClock {
    device: DeviceClock,
    stall: Arc<AtomicI64>,
}

impl Clock for StallingClock {
    fn now(&self) -> Timestamp {
        self.device.now()
    }
    fn running_millis(&self) -> Option<i64> {
        let running = self.device.running_millis();
        let stall = self.stall.swap(0, Ordering::SeqCst);
        if stall > 0 {
            self.device.pass(stall);
        }
        running
    }
}

#[test]
fn a_stall_between_the_two_clock_readings_never_puts_the_store_s_time_ahead_of_an_honest_clock() {
    let dir = tempfile::tempdir().unwrap();
    let device = DeviceClock::new(ts("2026-01-15T09:00:00Z"));
    let clock = StallingClock { device: device.clone(), stall: Arc::new(AtomicI64::new(0)) };
    let store =
        ConsentStore::open_with(dir.path().join("consent.db"), Arc::new(Policy::builtin()), Arc::new(clock.clone()), OpenMode::ReadWrite)
            .unwrap();
    let r = store.record(&DecisionInput::new("alice", "usage_statistics", Action::Grant, Source::Settings)).unwrap();
    let until = r.valid_until.unwrap();
    // The wall clock is never touched: it reads real time throughout.
    device.pass(until.millis() - device.wall().millis() - 10_000);
    // An observation of the running time (here a refresh's probe; any probe) stalls 3 s between
    // its two readings.
    clock.stall.store(3_000, Ordering::SeqCst);
    store.refresh().unwrap();
    device.pass(5_000);
    store.refresh().unwrap();
    // Two honest seconds before the expiry.
    assert_eq!(device.wall(), Timestamp(until.millis() - 2_000));
    assert!(store.now() <= device.wall(), "the store's time {} is ahead of the honest clock {}", store.now(), device.wall());
    assert!(store.check("alice", "usage_analytics", None).unwrap().allowed, "expired early on an honest clock");
    assert_eq!(store.status("alice", "usage_statistics").unwrap().status, Status::Granted);
}

#[test]
fn a_grant_already_expired_at_the_running_time_is_refused_not_recorded_as_granted() {
    let dir = tempfile::tempdir().unwrap();
    let start = ts("2026-01-15T09:00:00Z");
    let clock = DeviceClock::new(start);
    let store = open(&dir.path().join("consent.db"), &clock);
    let lifetime = {
        let r = store.record(&DecisionInput::new("bob", "usage_statistics", Action::Grant, Source::Settings)).unwrap();
        r.valid_until.unwrap().millis() - r.at.millis()
    };
    // The wall clock is set back by more than a consent's lifetime, and the device then runs on,
    // store open, until the wall clock is 5 minutes behind the mark (within the tolerance).
    clock.set_wall(Timestamp(start.millis() - lifetime - DAY));
    clock.pass(lifetime + DAY - 5 * 60_000);
    store.refresh().unwrap();
    assert!(store.now().millis() > start.millis() + lifetime, "the store's time moved on with real time");
    // A grant now would be stamped at the mark (the start) and end a consent lifetime later, a
    // day before the store's time: recorded, its receipt saying "granted until", and denied by
    // every check at once. It is refused, naming the clock and the store's time.
    let grant = DecisionInput::new("alice", "usage_statistics", Action::Grant, Source::Settings);
    match store.record(&grant) {
        Err(Error::ClockBehind { clock: reading, store_time }) => {
            assert_eq!(reading, clock.wall());
            assert_eq!(store_time, store.now());
        }
        other => panic!("a grant born expired: {other:?} (check: {:?})", store.check("alice", "usage_analytics", None)),
    }
    assert!(store.history("alice").unwrap_or_default().is_empty(), "nothing written");
    // A withdrawal is still recorded (stamped at the mark).
    store.record(&DecisionInput::new("bob", "usage_statistics", Action::Withdraw, Source::Settings)).unwrap();
}
