//! Listeners implemented in Kotlin or Swift (uniffi foreign traits), adapted to the core's traits.
//! A listener that throws is logged (without its message); it never breaks a write or another listener.

use std::sync::Arc;

use consentkit_core::{CommitHook, Registration, StatusChange};

use crate::error::ConsentKitError;
use crate::guard::ffi_export;
use crate::timer::Watcher;

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
    /// The observer's timer view (none for commit listeners).
    pub(crate) watcher: Option<Arc<Watcher>>,
}

ffi_export! {
impl ListenerHandle {
    /// Unregisters now; idempotent.
    pub fn unregister(&self) -> Result<(), ConsentKitError> {
        if let Some(w) = &self.watcher {
            w.stop();
        }
        self.registration.close();
        Ok(())
    }
}
}
