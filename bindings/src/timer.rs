//! Observers see time: a status that changes by time alone (a grant reaching its `valid_until`
//! turns `expired`) is emitted to every live observer at its time, not only at the next write.
//! One timer thread per `ConsentKit`, started by the first observer: it sleeps until the earliest
//! `valid_until` among the watched subjects' grants (re-planned after every commit, every new
//! observer and every move of a test clock; at most a minute, so a device clock change is seen),
//! then tells each observer of every grant it was told of that has expired since.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, TryLockError, Weak};
use std::time::Duration;

use consentkit_core::{CommitHook, ConsentObserver, Registration, Snapshot, Status, StatusChange, Timestamp, Watch};

use crate::consent_kit::ConsentKit;
use crate::listener::ConsentListener;

/// The longest the timer sleeps without re-planning.
const MAX_SLEEP: Duration = Duration::from_secs(60);
/// How soon the timer looks again at a watcher whose listener was being called at its tick.
const BUSY_RETRY_MILLIS: i64 = 100;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What a watcher knows of one (subject, category): the status, the store generation it is from,
/// and whether the listener was told it (the timer tells only expiries of statuses told before).
type Known = HashMap<(String, String), (Status, u64, bool)>;

/// One observer as the timer sees it: what it was last told, per (subject, category).
pub(crate) struct Watcher {
    watch: Watch,
    listener: Arc<dyn ConsentListener>,
    told: Mutex<Known>,
    active: AtomicBool,
}

impl Watcher {
    pub(crate) fn new(watch: Watch, listener: Arc<dyn ConsentListener>) -> Arc<Self> {
        Arc::new(Watcher { watch, listener, told: Mutex::new(HashMap::new()), active: AtomicBool::new(true) })
    }

    /// Stops this watcher (its listener is unregistered).
    pub(crate) fn stop(&self) {
        self.active.store(false, Ordering::SeqCst);
    }

    fn tell(&self, told: &mut Known, change: &StatusChange) {
        told.insert((change.subject.clone(), change.category.clone()), (change.status, change.generation, true));
        // The listener's error text is the app's and may name the subject: not logged.
        if self.listener.on_change(change.clone()).is_err() {
            log::error!("consentkit: a listener threw at generation {}; it stays registered", change.generation);
        }
    }

    /// Emits what time changed since the last telling; returns the next time something will.
    fn tick(&self, snap: &Snapshot, now: Timestamp) -> Option<Timestamp> {
        if !self.active.load(Ordering::SeqCst) {
            return None;
        }
        let subjects: Vec<&String> = match &self.watch {
            Watch::Subject(s) => snap.subjects.get_key_value(s).map(|(k, _)| k).into_iter().collect(),
            Watch::All => snap.subjects.keys().collect(),
        };
        // The worker holds `told` while it calls the listener: a listener that blocks must hold up
        // only itself, never this thread's ticks of the other watchers. Busy: look again shortly.
        let mut told = match self.told.try_lock() {
            Ok(told) => told,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return Some(Timestamp(now.millis().saturating_add(BUSY_RETRY_MILLIS))),
        };
        let mut next: Option<Timestamp> = None;
        for subject in subjects {
            let Some(state) = snap.subjects.get(subject) else { continue };
            for cs in state.categories.values() {
                if let Some(t) = cs.valid_until.filter(|t| cs.status == Status::Granted && *t > now) {
                    next = Some(next.map_or(t, |n| n.min(t)));
                }
            }
            // Only what time alone changed: a grant the listener was told of, still the record in
            // force, now expired. Writes reach the listener through the core's queue, in commit
            // order; the timer never speaks for them, nor for a status not told yet.
            for status in snap.statuses(subject, now).unwrap_or_default() {
                let raw_grant = state.categories.get(&status.category).is_some_and(|cs| cs.status == Status::Granted);
                let key = (subject.clone(), status.category.clone());
                let was_granted = told.get(&key).is_some_and(|(was, _, told)| *was == Status::Granted && *told);
                if raw_grant && was_granted && status.status == Status::Expired {
                    let change = StatusChange {
                        subject: subject.clone(),
                        category: status.category,
                        status: status.status,
                        since: status.since,
                        generation: snap.generation,
                    };
                    self.tell(&mut told, &change);
                }
            }
        }
        next
    }
}

impl ConsentObserver for Watcher {
    fn on_change(&self, change: &StatusChange) {
        if self.active.load(Ordering::SeqCst) {
            let mut told = lock(&self.told);
            // The timer ticks on the commit hook and may already have told this change, or a
            // newer one (a later withdrawal), before the worker delivers it: telling it again
            // would repeat it, or put a stale status after the newer one.
            let key = (change.subject.clone(), change.category.clone());
            if matches!(told.get(&key), Some((_, generation, true)) if *generation >= change.generation) {
                return;
            }
            self.tell(&mut told, change);
        }
    }
}

#[derive(Default)]
struct Plan {
    watchers: Vec<Weak<Watcher>>,
    started: bool,
    stopped: bool,
    poked: bool,
    commits: Option<Registration>,
}

/// The timer of one `ConsentKit`.
#[derive(Default)]
pub(crate) struct Timer {
    plan: Mutex<Plan>,
    wake: Condvar,
}

/// Re-plans the timer after each commit (a new grant may expire sooner).
struct Replan(Weak<Timer>);

impl CommitHook for Replan {
    fn committed(&self, _generation: u64) {
        if let Some(timer) = self.0.upgrade() {
            timer.poke();
        }
    }
}

impl Timer {
    /// Wakes the timer to re-plan now.
    pub(crate) fn poke(&self) {
        lock(&self.plan).poked = true;
        self.wake.notify_all();
    }

    /// Ends the timer thread (the kit is shutting down).
    pub(crate) fn stop(&self) {
        let mut plan = lock(&self.plan);
        plan.stopped = true;
        plan.commits = None;
        plan.watchers.clear();
        self.wake.notify_all();
    }

    /// Adds a watcher, starting the thread on first use.
    pub(crate) fn add(
        self: &Arc<Self>,
        kit: &Arc<ConsentKit>,
        watcher: &Arc<Watcher>,
        commits: impl FnOnce(Arc<dyn CommitHook>) -> Registration,
    ) {
        let mut plan = lock(&self.plan);
        plan.watchers.push(Arc::downgrade(watcher));
        plan.poked = true;
        if !plan.started && !plan.stopped {
            plan.started = true;
            plan.commits = Some(commits(Arc::new(Replan(Arc::downgrade(self)))));
            let (timer, kit) = (Arc::downgrade(self), Arc::downgrade(kit));
            let spawned = std::thread::Builder::new().name("consentkit-timer".into()).spawn(move || run(timer, kit));
            if let Err(e) = spawned {
                log::error!("consentkit: could not start the observer timer: {e}");
            }
        }
        drop(plan);
        self.wake.notify_all();
    }
}

fn run(timer: Weak<Timer>, kit: Weak<ConsentKit>) {
    loop {
        // Look at the store without holding the plan lock (commit hooks take it) and without
        // keeping the store past the look (so `shutdown` never waits for this thread).
        let sleep = {
            let Some(timer) = timer.upgrade() else { return };
            // The kit only for the moment of reading its snapshot: a kit the app drops while
            // watchers tick is released at once, not by this thread after them.
            let Some((snap, now)) = kit.upgrade().and_then(|kit| kit.snapshot_now()) else { return };
            let watchers: Vec<Arc<Watcher>> = {
                let mut plan = lock(&timer.plan);
                plan.watchers.retain(|w| w.upgrade().is_some_and(|w| w.active.load(Ordering::SeqCst)));
                plan.watchers.iter().filter_map(Weak::upgrade).collect()
            };
            let next = watchers.iter().filter_map(|w| w.tick(&snap, now)).min();
            next.map_or(MAX_SLEEP, |t| Duration::from_millis(u64::try_from(t.millis() - now.millis()).unwrap_or(0)).min(MAX_SLEEP))
        };
        let Some(timer) = timer.upgrade() else { return };
        let mut plan = lock(&timer.plan);
        if !plan.poked && !plan.stopped {
            plan = timer.wake.wait_timeout(plan, sleep).unwrap_or_else(|p| p.into_inner()).0;
        }
        if plan.stopped {
            return;
        }
        plan.poked = false;
    }
}
