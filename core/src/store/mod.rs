//! `ConsentStore`: the durable ledger plus the in-memory gate. Writes are serialised, committed
//! in one SQLite transaction each (event rows and current state together), then published as a
//! new immutable snapshot. Checks read the current snapshot without I/O or locks.
//!
//! One concept per module: `open` (the store's lifecycle: open, fail-closed, quarantine, the
//! one-store-per-file claim), `write` (the write path: `WriteTx`, commit, publish, notify),
//! `record` (the decision-writing operations), `read` (reads that need SQLite). This module
//! holds the handle itself, the gate (reads of the snapshot) and listener registration.

mod open;
mod read;
mod record;
mod write;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwap;
use rusqlite::Connection;

use crate::clock::{Clock, Timestamp};
use crate::error::Result;
use crate::gate::{CategoryStatus, Decision, Snapshot};
use crate::input::check_subject;
use crate::model::{OsState};
use crate::os_permission::OsPermission;
use crate::observer::{CommitHook, ConsentObserver, Registration, Registry, StatusChange, Watch};
use crate::policy::Policy;
use crate::state_proof::StateSum;

pub use crate::validate::DecisionInput;
pub(crate) use write::WriteTx;

use open::OpenFile;

pub(crate) struct Ledger {
    pub(crate) conn: Connection,
    head_seq: u64,
    head_hash: String,
    pub(crate) erasure_key: String,
    /// The sum of the state table as committed (see [`crate::state_proof`]).
    state_sum: StateSum,
}

/// The consent store of one app on one device. Thread-safe: share it behind an `Arc`.
pub struct ConsentStore {
    _open_file: OpenFile,
    path: PathBuf,
    policy: Arc<Policy>,
    clock: Arc<dyn Clock>,
    snapshot: ArcSwap<Snapshot>,
    ledger: Mutex<Option<Ledger>>,
    registry: Arc<Registry>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl ConsentStore {
    /// Why the store is closed, or `None` when it is healthy.
    pub fn unavailable(&self) -> Option<String> {
        self.snapshot.load().unavailable.clone()
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The policy in force.
    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }

    /// The store's clock reading.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The current immutable snapshot (lock-free).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    // ----- the gate (in memory, no I/O, no lock) -----

    /// May `feature` run for `subject` now? See [`Snapshot::check`].
    pub fn check(&self, subject: &str, feature: &str, scope: Option<&str>) -> Result<Decision> {
        self.snapshot.load().check_with(subject, feature, scope, || self.clock.now())
    }

    /// One category's status for a subject.
    pub fn status(&self, subject: &str, category: &str) -> Result<CategoryStatus> {
        self.snapshot.load().status(subject, category, self.clock.now())
    }

    /// Every category's status for a subject, in policy order.
    pub fn statuses(&self, subject: &str) -> Result<Vec<CategoryStatus>> {
        self.snapshot.load().statuses(subject, self.clock.now())
    }

    /// Should the app show the consent prompt for this category now?
    pub fn should_ask(&self, subject: &str, category: &str) -> Result<bool> {
        self.snapshot.load().should_ask(subject, category, self.clock.now())
    }

    /// The device's current state of an OS permission.
    pub fn os_state(&self, permission: OsPermission) -> OsState {
        self.snapshot.load().os_state(permission)
    }

    // ----- observers -----

    /// Registers a listener for status changes of one subject or all. It is called once per
    /// category at registration with the current state, then after each commit that changes a status.
    /// A subject that no write would accept (empty, too long, control characters) is refused with
    /// `InvalidInput`, registering nothing.
    pub fn observe(&self, watch: Watch, observer: Arc<dyn ConsentObserver>) -> Result<Registration> {
        if let Watch::Subject(subject) = &watch {
            check_subject(subject)?;
        }
        let snapshot = &self.snapshot;
        let clock = &self.clock;
        Ok(self.registry.observe(watch, observer, |watch| {
            let snap = snapshot.load_full();
            let now = clock.now();
            let subjects: Vec<String> = match watch {
                Watch::Subject(s) => vec![s.clone()],
                Watch::All => {
                    let mut all: Vec<String> = snap.subjects.keys().cloned().collect();
                    all.sort();
                    all
                }
            };
            let mut initial = Vec::new();
            for subject in subjects {
                for c in snap.statuses(&subject, now).unwrap_or_default() {
                    initial.push(StatusChange {
                        subject: subject.clone(),
                        category: c.category,
                        status: c.status,
                        since: c.since,
                        generation: snap.generation,
                    });
                }
            }
            (snap.generation, initial)
        }))
    }

    /// Registers a hook called synchronously after every commit, before the write returns.
    /// It must be quick and must not write to the store.
    pub fn on_commit(&self, hook: Arc<dyn CommitHook>) -> Registration {
        self.registry.hook(hook)
    }
}
