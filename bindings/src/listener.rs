//! Listeners implemented in Kotlin or Swift (uniffi foreign traits), adapted to the core's traits.
//! A listener that throws is logged (without its message); it never breaks a write or another listener.

use std::sync::Arc;

use consentkit_core::{CommitHook, ConsentObserver, Registration, StatusChange};

use crate::error::ConsentKitError;

/// Told of status changes after commit (and once at registration with the current state),
/// on a background thread owned by the registration.
#[uniffi::export(foreign)]
pub trait ConsentListener: Send + Sync {
    /// One change.
    fn on_change(&self, change: StatusChange) -> Result<(), ConsentKitError>;
}

/// Told synchronously, on the writing thread, that a write committed, before the write returns.
/// Must be quick (bump a counter); used by the Kotlin and Swift gate caches.
#[uniffi::export(foreign)]
pub trait CommitListener: Send + Sync {
    /// The store is at `generation` now.
    fn on_commit(&self, generation: u64) -> Result<(), ConsentKitError>;
}

pub(crate) struct ObserverAdapter(pub Arc<dyn ConsentListener>);

impl ConsentObserver for ObserverAdapter {
    fn on_change(&self, change: &StatusChange) {
        // The listener's error text is the app's and may name the subject: not logged.
        if self.0.on_change(change.clone()).is_err() {
            log::error!("consentkit: a listener threw at generation {}; it stays registered", change.generation);
        }
    }
}

pub(crate) struct CommitAdapter(pub Arc<dyn CommitListener>);

impl CommitHook for CommitAdapter {
    fn committed(&self, generation: u64) {
        if self.0.on_commit(generation).is_err() {
            log::error!("consentkit: a commit listener threw at generation {generation}");
        }
    }
}

/// A listener registration. `unregister()` (or destroying the handle) stops the listener.
#[derive(uniffi::Object)]
pub struct ListenerHandle {
    pub(crate) registration: Registration,
}

#[uniffi::export]
impl ListenerHandle {
    /// Unregisters now; idempotent.
    pub fn unregister(&self) {
        self.registration.close();
    }
}
