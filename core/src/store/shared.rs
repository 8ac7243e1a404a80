//! What every `ConsentStore` on one file shares within this process: the published snapshot, the
//! publish lock with the chain head that snapshot reflects, the listeners, the freshness of the
//! view of other processes' commits, the clock's high-water mark and the suspension flag.
//!
//! Sharing it is what makes a read-only store in the same process read the same snapshot as the
//! read-write one: a withdrawal is visible to both the moment the write returns.

use std::cell::RefCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use crate::clock::Timestamp;
use crate::gate::Snapshot;
use crate::observer::Registry;
use crate::policy::Policy;
use crate::state_proof::StateSum;

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
    /// Monotonic milliseconds ([`mono_millis`]) at which the published snapshot was last proven to
    /// reflect every commit to the file.
    confirmed_at: AtomicU64,
    /// The highest clock reading seen (epoch milliseconds); expiry is never evaluated before it.
    pub(crate) high_water: AtomicI64,
    /// The high-water mark last written to the file.
    pub(crate) persisted_high_water: AtomicI64,
    pub(crate) suspended: AtomicBool,
    /// Set when an erasure or purge could not checkpoint the WAL yet; the scrub is retried at the
    /// next opportunity (the next write, probe, read or open).
    pub(crate) scrub_pending: AtomicBool,
}

thread_local! {
    /// The publish locks this thread holds (by address): a hook that writes to the same store is
    /// refused instead of deadlocking.
    static HELD: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

/// Milliseconds on a monotonic clock private to this process (never goes back).
pub(crate) fn mono_millis() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

impl Shared {
    pub(crate) fn new(policy: Arc<Policy>, snapshot: Snapshot, head: Head, high_water: i64) -> Arc<Shared> {
        Arc::new(Shared {
            policy,
            snapshot: ArcSwap::from_pointee(snapshot),
            published_seq: AtomicU64::new(head.seq),
            published: Mutex::new(head),
            registry: Arc::new(Registry::default()),
            confirmed_at: AtomicU64::new(mono_millis()),
            high_water: AtomicI64::new(high_water),
            persisted_high_water: AtomicI64::new(high_water),
            suspended: AtomicBool::new(false),
            scrub_pending: AtomicBool::new(false),
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

    /// Records that the published snapshot reflected every commit made before `at` (monotonic).
    pub(crate) fn confirm(&self, at: u64) {
        self.confirmed_at.fetch_max(at, Ordering::Release);
    }

    /// True while the snapshot is proven current within [`CROSS_PROCESS_BOUND`]. Lock-free.
    pub(crate) fn is_fresh(&self) -> bool {
        let confirmed = self.confirmed_at.load(Ordering::Acquire);
        mono_millis().saturating_sub(confirmed) <= CROSS_PROCESS_BOUND.as_millis() as u64
    }

    /// The clock reading `t`, but never before the high-water mark; does not advance the mark.
    pub(crate) fn at_least_high_water(&self, t: Timestamp) -> Timestamp {
        Timestamp(t.millis().max(self.high_water.load(Ordering::Relaxed)))
    }

    /// The clock reading `t`, but never before the high-water mark; advances the mark.
    pub(crate) fn not_before_high_water(&self, t: Timestamp) -> Timestamp {
        let mark = self.high_water.load(Ordering::Relaxed);
        if t.millis() > mark {
            self.high_water.fetch_max(t.millis(), Ordering::Relaxed);
            t
        } else {
            Timestamp(mark)
        }
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
