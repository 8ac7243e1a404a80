//! What every `ConsentStore` on one file shares within this process: the published snapshot, the
//! publish lock with the chain head that snapshot reflects, the listeners, the freshness of the
//! view of other processes' commits, the clock's high-water mark and the suspension flag.
//!
//! Sharing it is what makes a read-only store in the same process read the same snapshot as the
//! read-write one: a withdrawal is visible to both the moment the write returns.

use std::cell::RefCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::clock::{Clock, Monotonic, Timestamp};
use crate::gate::Snapshot;
use crate::observer::Registry;
use crate::policy::Policy;
use crate::state::SubjectState;
use crate::state_proof::{RowHash, StateSum};

/// How often each store asks SQLite whether another connection or process committed
/// (`PRAGMA data_version`). Chosen by measurement (see ARCHITECTURE.md): a probe costs a few
/// microseconds, so 20 probes a second stay far below 0.1 % of one core.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(50);

/// The cross-process bound: a check allows only from a snapshot proven current at most this long
/// ago. Past it (the probe thread starved, the store suspended, the file unreadable) the check
/// first refreshes inline, and denies if it cannot tell. So a withdrawal committed by another
/// process is honoured by every check that starts more than this after the withdrawal returned.
pub const CROSS_PROCESS_BOUND: Duration = Duration::from_millis(250);

/// The chain head a published snapshot reflects, with the sum of the state it serves (sealed
/// beside the head by every write, see [`crate::state_proof`]).
#[derive(Clone, Debug, Default)]
pub(crate) struct Head {
    pub(crate) seq: u64,
    pub(crate) hash: String,
    pub(crate) state_sum: StateSum,
}

/// The state-row hashes of the subjects written last, each with the state it was taken of, so
/// the next write of one of them takes its old row out of the state sum without serialising the
/// old state again. An entry counts only for the very state the snapshot holds (the same `Arc`):
/// a catch-up or reload that replaced the state makes it a miss, and the row is hashed anew.
#[derive(Default)]
pub(crate) struct RecentRows(Vec<(String, Arc<SubjectState>, RowHash)>);

impl RecentRows {
    /// Subjects remembered (the most recently written).
    const CAPACITY: usize = 16;

    /// The row hash of `subject` in exactly the state `state`, if remembered.
    pub(crate) fn get(&self, subject: &str, state: &Arc<SubjectState>) -> Option<RowHash> {
        self.0.iter().find(|(s, kept, _)| s == subject && Arc::ptr_eq(kept, state)).map(|(_, _, row)| *row)
    }

    /// Remembers `subject`'s row hash in `state` (the one just published), forgetting the oldest.
    pub(crate) fn put(&mut self, subject: &str, state: Arc<SubjectState>, row: RowHash) {
        self.forget(subject);
        if self.0.len() == Self::CAPACITY {
            self.0.remove(0);
        }
        self.0.push((subject.to_string(), state, row));
    }

    /// Forgets `subject` (its row was deleted).
    pub(crate) fn forget(&mut self, subject: &str) {
        self.0.retain(|(s, _, _)| s != subject);
    }
}

/// `published_seq` while a publish is under way.
const PUBLISHING: u64 = u64::MAX;

pub(crate) struct Shared {
    pub(crate) policy: Arc<Policy>,
    pub(crate) snapshot: ArcSwap<Snapshot>,
    /// The head sequence number `snapshot` reflects ([`PUBLISHING`] during a publish).
    published_seq: AtomicU64,
    /// The publish lock. Held by every write from its transaction's start to the end of its hooks,
    /// and by every catch-up, so snapshots are published in commit order.
    published: Mutex<Head>,
    pub(crate) registry: Arc<Registry>,
    /// The monotonic clock of the freshness test and of every confirmation ([`Monotonic`]).
    mono: Monotonic,
    /// [`CROSS_PROCESS_BOUND`] less the cheap reading's slack, in ns: the age a proof may show on
    /// the cheap reading before the exact one decides.
    fast_window: u64,
    /// Monotonic nanoseconds ([`Shared::mono_now`]) at which the published snapshot was last
    /// proven to reflect every commit to the file (0: never).
    confirmed_at: AtomicU64,
    /// The highest clock reading seen (epoch milliseconds); expiry is never evaluated before it.
    pub(crate) high_water: AtomicI64,
    /// The high-water mark last written to the file.
    pub(crate) persisted_high_water: AtomicI64,
    /// The greatest (store time - [`Clock::running_millis`]) seen, in ms: where the store's time
    /// stood, on the running clock's scale (`i64::MIN`: no running clock read yet).
    running_offset: AtomicI64,
    /// The store's time carried by the running clock ([`Shared::observe_running_time`]): the
    /// latest store time seen, moved on by the running time since; in memory only (a running
    /// clock's origin does not outlive the boot). Checks and statuses never evaluate before it.
    running_floor: AtomicI64,
    pub(crate) suspended: AtomicBool,
    /// Set when an erasure or purge could not checkpoint the WAL yet; the scrub is retried at the
    /// next opportunity (the next write, probe, read or open).
    pub(crate) scrub_pending: AtomicBool,
    /// Kept by writes, under the publish lock.
    pub(crate) recent_rows: Mutex<RecentRows>,
}

thread_local! {
    /// The publish locks this thread holds (by address): a hook that writes to the same store is
    /// refused instead of deadlocking.
    static HELD: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

impl Shared {
    pub(crate) fn new(policy: Arc<Policy>, snapshot: Snapshot, head: Head, high_water: i64) -> Arc<Shared> {
        Self::with_clock(policy, snapshot, head, high_water, Monotonic::new())
    }

    /// [`Shared::new`] on a given monotonic clock (tests compare the coarse and the precise one).
    pub(crate) fn with_clock(policy: Arc<Policy>, snapshot: Snapshot, head: Head, high_water: i64, mono: Monotonic) -> Arc<Shared> {
        let fast_window = (CROSS_PROCESS_BOUND.as_nanos() as u64).saturating_sub(mono.slack_nanos());
        Arc::new(Shared {
            policy,
            snapshot: ArcSwap::from_pointee(snapshot),
            published_seq: AtomicU64::new(head.seq),
            published: Mutex::new(head),
            registry: Arc::new(Registry::default()),
            mono,
            fast_window,
            confirmed_at: AtomicU64::new(mono.now_nanos().unwrap_or(0)),
            high_water: AtomicI64::new(high_water),
            persisted_high_water: AtomicI64::new(high_water),
            running_offset: AtomicI64::new(i64::MIN),
            running_floor: AtomicI64::new(i64::MIN),
            suspended: AtomicBool::new(false),
            scrub_pending: AtomicBool::new(false),
            recent_rows: Mutex::new(RecentRows::default()),
        })
    }

    fn key(&self) -> usize {
        self as *const Shared as usize
    }

    /// True if this thread holds the publish lock (it is running a write or its hooks).
    pub(crate) fn held_by_this_thread(&self) -> bool {
        let key = self.key();
        HELD.with(|h| h.borrow().contains(&key))
    }

    /// Takes the publish lock (blocking).
    pub(crate) fn lock(&self) -> PublishGuard<'_> {
        let guard = self.published.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let key = self.key();
        HELD.with(|h| h.borrow_mut().push(key));
        PublishGuard { guard, key }
    }

    /// Publishes `next` as the state of the chain up to `seq`. The caller holds the publish lock
    /// (or runs a hook of the thread that holds it).
    pub(crate) fn publish(&self, next: Snapshot, seq: u64) {
        self.published_seq.store(PUBLISHING, Ordering::SeqCst);
        self.snapshot.store(Arc::new(next));
        self.published_seq.store(seq, Ordering::SeqCst);
    }

    /// The published snapshot and the head sequence number it reflects, unless a publish is
    /// under way (then `None`: not comparable with a given head).
    pub(crate) fn snapshot_with_seq(&self) -> Option<(Arc<Snapshot>, u64)> {
        let before = self.published_seq.load(Ordering::SeqCst);
        let snapshot = self.snapshot.load_full();
        let after = self.published_seq.load(Ordering::SeqCst);
        (before == after && before != PUBLISHING).then_some((snapshot, before))
    }

    /// Takes the publish lock if it is free (a check never waits for a write).
    pub(crate) fn try_lock(&self) -> Option<PublishGuard<'_>> {
        let guard = match self.published.try_lock() {
            Ok(guard) => guard,
            Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        let key = self.key();
        HELD.with(|h| h.borrow_mut().push(key));
        Some(PublishGuard { guard, key })
    }

    /// A reading of this store's monotonic clock, taken when a proof begins (before the probe or
    /// the write reads the file), for [`Shared::confirm`]. `None` if the OS refused it.
    pub(crate) fn mono_now(&self) -> Option<u64> {
        self.mono.now_nanos()
    }

    /// Records that the published snapshot reflected every commit made before `at` (a
    /// [`Shared::mono_now`] reading; `None` confirms nothing).
    pub(crate) fn confirm(&self, at: Option<u64>) {
        if let Some(at) = at {
            self.confirmed_at.fetch_max(at, Ordering::Release);
        }
    }

    /// Withdraws the proof: the published snapshot no longer counts as current, so the next
    /// check refreshes first (and denies if it cannot).
    pub(crate) fn unconfirm(&self) {
        self.confirmed_at.store(0, Ordering::Release);
    }

    /// How much longer the published snapshot stays proven current (within
    /// [`CROSS_PROCESS_BOUND`]) from now, on the exact monotonic clock; zero when it is not proven
    /// or the clock cannot be read.
    pub(crate) fn proof_remaining(&self) -> Duration {
        let confirmed = self.confirmed_at.load(Ordering::Acquire);
        if confirmed == 0 {
            return Duration::ZERO;
        }
        match self.mono.precise_nanos() {
            Some(now) => Duration::from_nanos((CROSS_PROCESS_BOUND.as_nanos() as u64).saturating_sub(now.saturating_sub(confirmed))),
            None => Duration::ZERO,
        }
    }

    /// True while the snapshot is proven current within [`CROSS_PROCESS_BOUND`]. Lock-free, no
    /// system call on the usual path: one atomic load and one cheap clock read ([`Monotonic`]).
    /// The cheap reading never runs ahead (and a confirmation's reading only makes the proof look
    /// older), so a proof it shows younger than the bound less the slack is within the bound; an
    /// older one is judged on the exact clock. No reading: not fresh (fail closed).
    #[inline]
    pub(crate) fn is_fresh(&self) -> bool {
        let confirmed = self.confirmed_at.load(Ordering::Acquire);
        if confirmed == 0 {
            return false;
        }
        match self.mono.now_nanos() {
            Some(now) if now.saturating_sub(confirmed) <= self.fast_window => true,
            Some(_) => self.is_fresh_exactly(confirmed),
            None => false,
        }
    }

    #[cold]
    fn is_fresh_exactly(&self, confirmed: u64) -> bool {
        self.mono.precise_nanos().is_some_and(|now| now.saturating_sub(confirmed) <= CROSS_PROCESS_BOUND.as_nanos() as u64)
    }

    /// Makes the published snapshot's proof older than the bound: the next check refreshes first
    /// (tests: a stalled probe thread without sleeping through the bound).
    #[cfg(test)]
    pub(crate) fn age_proof_past_bound(&self) {
        let now = self.mono.precise_nanos().unwrap_or(0);
        self.confirmed_at.store(now.saturating_sub(CROSS_PROCESS_BOUND.as_nanos() as u64 + 1).max(1), Ordering::Release);
    }

    /// Makes the proof as old as `age` on the exact clock (tests: the window between the cheap
    /// reading's limit and the bound).
    #[cfg(test)]
    pub(crate) fn age_proof(&self, age: Duration) {
        let now = self.mono.precise_nanos().unwrap_or(0);
        self.confirmed_at.store(now.saturating_sub(age.as_nanos() as u64).max(1), Ordering::Release);
    }

    /// The clock reading `t`, but never before the high-water mark; does not advance the mark.
    pub(crate) fn at_least_high_water(&self, t: Timestamp) -> Timestamp {
        Timestamp(t.millis().max(self.high_water.load(Ordering::Relaxed)))
    }

    /// The clock reading `t`, but never before the high-water mark; advances the mark, though
    /// never past [`Timestamp::MAX`] (the year 9999): a reading no receipt can carry (a clock
    /// hand-set to the year 20000 for a moment) must not become the store's time, or no
    /// withdrawal could be recorded again. The answer at `t` itself is still evaluated at `t`.
    ///
    /// Nor before the running floor ([`Shared::observe_running_time`]): after the wall clock was
    /// set back, the store's time still moves on with real time. The floor does not advance the
    /// mark (see there).
    pub(crate) fn not_before_high_water(&self, t: Timestamp) -> Timestamp {
        let mark = self.high_water.load(Ordering::Relaxed);
        let floor = self.running_floor.load(Ordering::Relaxed);
        if t.millis() > mark {
            self.high_water.fetch_max(t.millis().min(Timestamp::MAX.millis()), Ordering::Relaxed);
            Timestamp(t.millis().max(floor))
        } else {
            Timestamp(mark.max(floor))
        }
    }

    /// `t`, but never before the running floor ([`Shared::observe_running_time`]); moves
    /// nothing.
    pub(crate) fn running_time(&self, t: Timestamp) -> Timestamp {
        Timestamp(t.millis().max(self.running_floor.load(Ordering::Relaxed)))
    }

    /// Moves the running floor on: reads `clock`'s running clock ([`Clock::running_millis`]; a
    /// clock without one, like [`crate::ManualClock`], leaves the floor alone) and its wall clock,
    /// and takes the store's time then (the wall reading, never before the mark) as a lower bound
    /// of the real time that moves on with the running clock. So a clock set back while the store
    /// runs holds the store's time at the last time it saw only for as long as no real time
    /// passes: a grant expires when its real expiry comes, not when the set-back clock reaches
    /// it. Run by every probe (each [`super::PROBE_INTERVAL`]) and by writes; a check only reads
    /// the floor (one atomic load), so it lags real time by at most a probe interval, or up to
    /// [`super::CROSS_PROCESS_BOUND`] when the probe thread starves (a check then refreshes,
    /// which runs this).
    ///
    /// The floor is in memory only and never advances the persisted mark: a wall clock that read
    /// ahead once (set forward by mistake, then back) already holds the mark ahead until the real
    /// time reaches it; carried on by running time and persisted, it would stay ahead for good.
    /// In this process it keeps expiry early by that much (fail closed) until the store closes.
    ///
    /// `wall` is `clock`'s wall reading, taken by the caller *before* this call (a write reads it
    /// once for its stamp and for this): the wall clock first, then the running clock, so a stall
    /// between the two readings (the thread preempted) puts the floor behind real time by the
    /// stall (until the next observation), never ahead of it for as long as the store runs.
    pub(crate) fn observe_running_time(&self, wall: Timestamp, clock: &dyn Clock) {
        let wall = wall.millis();
        let Some(running) = clock.running_millis() else { return };
        let store_time = wall.max(self.high_water.load(Ordering::Relaxed)).min(Timestamp::MAX.millis());
        let offset = store_time.saturating_sub(running);
        let offset = self.running_offset.fetch_max(offset, Ordering::Relaxed).max(offset);
        self.running_floor.fetch_max(running.saturating_add(offset).min(Timestamp::MAX.millis()), Ordering::Relaxed);
    }
}

/// The publish lock, held; while alive, this thread is known to hold it.
pub(crate) struct PublishGuard<'a> {
    guard: MutexGuard<'a, Head>,
    key: usize,
}

impl Deref for PublishGuard<'_> {
    type Target = Head;
    fn deref(&self) -> &Head {
        &self.guard
    }
}

impl DerefMut for PublishGuard<'_> {
    fn deref_mut(&mut self) -> &mut Head {
        &mut self.guard
    }
}

impl Drop for PublishGuard<'_> {
    fn drop(&mut self) {
        let key = self.key;
        HELD.with(|h| {
            let mut held = h.borrow_mut();
            if let Some(i) = held.iter().rposition(|k| *k == key) {
                held.remove(i);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(mono: Monotonic) -> Arc<Shared> {
        let policy = Arc::new(Policy::builtin());
        Shared::with_clock(policy.clone(), Snapshot::empty(policy), Head::default(), 0, mono)
    }

    #[test]
    fn a_remembered_row_counts_only_for_the_very_state_it_was_taken_of() {
        let mut sum = StateSum::default();
        let row = sum.add_subject_row("alice", &SubjectState::default().to_row());
        let state = Arc::new(SubjectState::default());
        let mut recent = RecentRows::default();
        recent.put("alice", state.clone(), row);
        assert_eq!(recent.get("alice", &state), Some(row));
        assert_eq!(recent.get("alice", &Arc::new(SubjectState::default())), None, "an equal state reloaded (a catch-up): a miss");
        assert_eq!(recent.get("bob", &state), None);
        for i in 0..RecentRows::CAPACITY {
            recent.put(&format!("user-{i}"), state.clone(), row);
        }
        assert_eq!(recent.get("alice", &state), None, "the oldest is forgotten");
        recent.forget("user-3");
        assert_eq!(recent.get("user-3", &state), None, "an erased subject is forgotten");
        assert_eq!(recent.get("user-4", &state), Some(row));
    }

    #[test]
    fn the_bound_is_decided_on_the_exact_clock_whatever_the_cheap_one_says() {
        for mono in [Monotonic::new(), Monotonic::precise()] {
            let s = shared(mono);
            assert!(s.is_fresh(), "proven at creation");
            // Past the bound: never fresh, on either reading (age only grows).
            s.age_proof_past_bound();
            assert!(!s.is_fresh());
            s.age_proof(CROSS_PROCESS_BOUND * 4);
            assert!(!s.is_fresh());
            // Younger than the bound but past the cheap reading's window: the exact clock says
            // fresh (a few tries, in case this thread is descheduled for the remaining 50 ms).
            let between = CROSS_PROCESS_BOUND - Duration::from_millis(50);
            assert!(between.as_nanos() as u64 > s.fast_window || mono.slack_nanos() == 0);
            assert!(
                (0..5).any(|_| {
                    s.age_proof(between);
                    s.is_fresh()
                }),
                "a proof younger than the bound is fresh"
            );
            // A confirmation moves the proof forward; one without a reading changes nothing.
            s.age_proof_past_bound();
            s.confirm(None);
            assert!(!s.is_fresh());
            s.confirm(s.mono_now());
            assert!(s.is_fresh());
        }
    }
}
