//! ConsentKit's FFI layer (uniffi). Exposes the core's `ConsentStore` to Kotlin and Swift as one
//! thread-safe object, [`ConsentKit`], with the core's value types, one error enum
//! ([`ConsentKitError`], converted once at the boundary), and listeners implemented in the
//! foreign language. No call can panic across the boundary.

uniffi::setup_scaffolding!();

mod c_gate;
mod consent_kit;
mod error;
mod gate_tokens;
pub(crate) mod guard;
mod jni;
mod lifecycle;
mod listener;
mod log;
mod os_permission;
mod recovery;
mod timer;
mod types;

pub use c_gate::c_gate_token;
pub use consent_kit::{ConsentKit, TestClock};
pub use error::ConsentKitError;
pub use jni::jni_gate_token;
pub use listener::{CommitListener, ConsentListener, ListenerHandle};
pub use log::{log_level, set_log_level, set_log_sink, LogLevel, LogRecord, LogSink};
pub use os_permission::{os_permission_named, os_state_named};
pub use recovery::{Unavailable, UnavailableKind};
pub use types::{CheckResult, ConsentChoice, ErasureReport, PurgeReport, SyncBatch, SyncOutcome, VerifyReport};

guard::ffi_export! {
    /// The ConsentKit version of this library (the workspace's, shared by Cargo, Maven and SwiftPM).
    pub fn consentkit_version() -> Result<String, ConsentKitError> {
        Ok(env!("CARGO_PKG_VERSION").to_string())
    }
}
