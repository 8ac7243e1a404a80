//! ConsentKit's FFI layer (uniffi). Exposes the core's `ConsentStore` to Kotlin and Swift as one
//! thread-safe object, [`ConsentKit`], with the core's value types, one error enum
//! ([`ConsentKitError`], converted once at the boundary), and listeners implemented in the
//! foreign language. No call can panic across the boundary.

uniffi::setup_scaffolding!();

mod consent_kit;
mod error;
mod guard;
mod lifecycle;
mod listener;
mod os_permission;
mod recovery;
mod timer;
mod types;

pub use consent_kit::{ConsentKit, TestClock};
pub use error::ConsentKitError;
pub use os_permission::{os_permission_named, os_state_named};
pub use listener::{CommitListener, ConsentListener, ListenerHandle};
pub use recovery::{Unavailable, UnavailableKind};
pub use types::{CheckResult, ConsentChoice, ErasureReport, PurgeReport, VerifyReport};
