//! The life of one `ConsentKit`: the store it serves, the calls in flight on it, and `close`.
//! `close` refuses new calls, waits for the calls in flight to finish, then drops the store, so
//! when it returns the file is released and can be opened again at once. No lock on the call path:
//! a call is one atomic increment and one lock-free load.

use std::cell::Cell;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use consentkit_core::ConsentStore;

use crate::error::ConsentKitError;

thread_local! {
    /// How many calls this thread is inside (a listener called from a write is inside one).
    static DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// A store that can be closed while other threads use it.
pub(crate) struct Lifecycle {
    store: ArcSwapOption<ConsentStore>,
    calls: AtomicUsize,
    closed: AtomicBool,
    idle: Mutex<()>,
    finished: Condvar,
}

/// A call in flight: derefs to the store. Fields drop in order: the store reference first, then
/// the token that counts the call as finished, so `close` never drops the store while a call holds it.
pub(crate) struct InFlight<'a> {
    store: Arc<ConsentStore>,
    _call: CallToken<'a>,
}

impl Deref for InFlight<'_> {
    type Target = ConsentStore;
    fn deref(&self) -> &ConsentStore {
        &self.store
    }
}

/// Counts one call until dropped.
struct CallToken<'a>(&'a Lifecycle);

impl Drop for CallToken<'_> {
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
        self.0.leave();
    }
}

fn closed_error() -> ConsentKitError {
    ConsentKitError::Closed("this ConsentManager (its ConsentKit) was closed; open the store again to use it".into())
}

impl Lifecycle {
    pub(crate) fn new(store: ConsentStore) -> Self {
        Lifecycle {
            store: ArcSwapOption::from_pointee(store),
            calls: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            idle: Mutex::new(()),
            finished: Condvar::new(),
        }
    }

    /// Starts a call: the store, or `Closed` once `close` has begun.
    pub(crate) fn enter(&self) -> Result<InFlight<'_>, ConsentKitError> {
        self.calls.fetch_add(1, SeqCst);
        // SeqCst on both sides: either this call sees `closed`, or `close` sees this call.
        let store = if self.closed.load(SeqCst) { None } else { self.store.load_full() };
        match store {
            Some(store) => {
                DEPTH.with(|d| d.set(d.get() + 1));
                Ok(InFlight { store, _call: CallToken(self) })
            }
            None => {
                self.leave();
                Err(closed_error())
            }
        }
    }

    /// Ends a call. The last call to end after `close` began releases the store: that completes a
    /// close made from inside a call (which could not wait for it), and wakes a waiting close.
    fn leave(&self) {
        if self.calls.fetch_sub(1, SeqCst) == 1 && self.closed.load(SeqCst) {
            self.store.store(None);
            let _idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            self.finished.notify_all();
        }
    }

    /// True once `close` has begun.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(SeqCst)
    }

    /// Refuses new calls, waits for those in flight, and releases the store. Idempotent. From
    /// inside a call on this thread (a commit listener runs inside the write; the call may be this
    /// kit's or another's) it must not wait, since it may be waiting for itself: it refuses new
    /// calls at once and returns, and the store is released now if no call is in flight, else
    /// when the last one returns (see `leave`), so the file is never left claimed.
    pub(crate) fn close(&self) -> Result<(), ConsentKitError> {
        self.closed.store(true, SeqCst);
        if DEPTH.with(|d| d.get()) > 0 {
            // SeqCst with `leave`: either the last call's `leave` sees `closed` and releases, or
            // this load sees no call in flight.
            if self.calls.load(SeqCst) == 0 {
                self.store.store(None);
            }
            return Ok(());
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while self.calls.load(SeqCst) > 0 {
            // A timeout too, so a wake-up between the check and the wait is never lost for long.
            idle = self.finished.wait_timeout(idle, Duration::from_millis(20)).unwrap_or_else(|p| p.into_inner()).0;
        }
        drop(idle);
        self.store.store(None);
        Ok(())
    }
}
