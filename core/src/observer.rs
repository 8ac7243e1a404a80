//! Observers: listeners told of status changes after commit, each on its own worker thread so a
//! slow or failing listener never delays a write or another listener; and commit hooks, called
//! synchronously before a write returns (for caches that must never outlive a withdrawal).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::model::Status;
use crate::queue::{channel, Sender};

/// A category's status changed for a subject (or, at registration, its current status).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChange {
    /// The subject.
    pub subject: String,
    /// The category.
    pub category: String,
    /// Its status now.
    pub status: Status,
    /// Since when.
    pub since: Option<Timestamp>,
    /// The store generation that made the change.
    pub generation: u64,
}

/// A listener for status changes. Called on a worker thread owned by the registration.
pub trait ConsentObserver: Send + Sync {
    /// One change. A panic here is caught and logged.
    fn on_change(&self, change: &StatusChange);
}

/// Called synchronously after each new snapshot is published: on the writing thread after a
/// commit, before the write returns; on the thread that caught up (the probe thread, a check,
/// `refresh`) after another process's commit; and when the store closes itself (a state that
/// fails `verify`). Must be quick (bump a counter); a panic is caught and logged.
pub trait CommitHook: Send + Sync {
    /// The store is at `generation` now.
    fn committed(&self, generation: u64);
}

/// Which subjects an observer watches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Watch {
    /// One subject.
    Subject(String),
    /// Every subject.
    All,
}

impl Watch {
    fn covers(&self, subject: &str) -> bool {
        match self {
            Watch::Subject(s) => s == subject,
            Watch::All => true,
        }
    }
}

struct ObserverEntry {
    id: u64,
    watch: Watch,
    queue: Sender<Delivery>,
}

enum Delivery {
    Initial(StatusChange),
    Change(StatusChange),
}

/// The registered observers and hooks of one store.
#[derive(Default)]
pub(crate) struct Registry {
    next_id: AtomicU64,
    observers: Mutex<Vec<ObserverEntry>>,
    hooks: Mutex<Vec<(u64, Arc<dyn CommitHook>)>>,
}

/// Keeps a registration alive; dropping or closing it unregisters (and ends the worker thread).
pub struct Registration {
    id: u64,
    registry: Weak<Registry>,
}

impl Registration {
    /// Unregisters now.
    pub fn close(&self) {
        if let Some(r) = self.registry.upgrade() {
            lock(&r.observers).retain(|e| e.id != self.id);
            lock(&r.hooks).retain(|(id, _)| *id != self.id);
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.close();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Registry {
    /// Registers `observer`; `current` gives the initial state, computed under the registry lock
    /// so no change is lost between it and the first dispatch.
    pub(crate) fn observe(
        self: &Arc<Self>,
        watch: Watch,
        observer: Arc<dyn ConsentObserver>,
        current: impl FnOnce(&Watch) -> (u64, Vec<StatusChange>),
    ) -> Registration {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (queue, inbox) = channel::<Delivery>();
        let mut observers = lock(&self.observers);
        let (generation, initial) = current(&watch);
        for change in initial {
            let _ = queue.send(Delivery::Initial(change));
        }
        let spawned = std::thread::Builder::new().name("consentkit-observer".into()).spawn(move || {
            for delivery in inbox {
                let change = match delivery {
                    Delivery::Initial(c) => c,
                    // Already contained in the initial state.
                    Delivery::Change(c) if c.generation <= generation => continue,
                    Delivery::Change(c) => c,
                };
                if catch_unwind(AssertUnwindSafe(|| observer.on_change(&change))).is_err() {
                    log::error!("consentkit: an observer panicked at generation {}; it stays registered", change.generation);
                }
            }
        });
        if let Err(e) = spawned {
            log::error!("consentkit: could not start an observer thread: {e}");
        }
        observers.push(ObserverEntry { id, watch, queue });
        Registration { id, registry: Arc::downgrade(self) }
    }

    /// Adds a synchronous commit hook.
    pub(crate) fn hook(self: &Arc<Self>, hook: Arc<dyn CommitHook>) -> Registration {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        lock(&self.hooks).push((id, hook));
        Registration { id, registry: Arc::downgrade(self) }
    }

    /// Queues changes to every observer that watches their subject. Never blocks on a listener.
    pub(crate) fn dispatch(&self, changes: &[StatusChange]) {
        let observers = lock(&self.observers);
        for entry in observers.iter() {
            for change in changes.iter().filter(|c| entry.watch.covers(&c.subject)) {
                let _ = entry.queue.send(Delivery::Change(change.clone()));
            }
        }
    }

    /// Calls every commit hook on this thread.
    pub(crate) fn committed(&self, generation: u64) {
        let hooks: Vec<Arc<dyn CommitHook>> = lock(&self.hooks).iter().map(|(_, h)| h.clone()).collect();
        for hook in hooks {
            if catch_unwind(AssertUnwindSafe(|| hook.committed(generation))).is_err() {
                log::error!("consentkit: a commit hook panicked at generation {generation}");
            }
        }
    }
}
