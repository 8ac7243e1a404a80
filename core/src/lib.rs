//! # ConsentKit core
//!
//! Records each subject's grants, refusals, withdrawals and objections for an app's data
//! categories in an append-only, hash-chained SQLite ledger, and answers from memory, fast and
//! fail-closed: may this feature run for this subject, now?
//!
//! Layers (see `ARCHITECTURE.md`): [`policy`] (the catalog) → [`store`] (writes: validate, append,
//! commit, publish) → [`gate`] (reads: an immutable [`gate::Snapshot`], no I/O) — with [`state`]
//! (the pure fold of events), [`chain`] (tamper evidence), [`rights`] (export, import, erasure,
//! purge), [`sync`] (the outbox) and [`observer`] (listeners).
//!
//! ```
//! use consentkit_core::{ConsentStore, DecisionInput, Policy, Action, Source};
//! let dir = tempfile::tempdir().unwrap();
//! let store = ConsentStore::open(dir.path().join("consent.db"), Policy::builtin()).unwrap();
//! assert!(!store.check("alice", "usage_analytics", None).unwrap().allowed); // fail closed
//! store.record(&DecisionInput::new("alice", "usage_statistics", Action::Grant, Source::Onboarding)).unwrap();
//! assert!(store.check("alice", "usage_analytics", None).unwrap().allowed);
//! ```

pub mod chain;
pub mod clock;
mod db;
pub mod error;
pub mod gate;
pub mod id;
pub mod input;
mod json_path;
pub mod model;
pub mod observer;
mod order;
pub mod os_permission;
pub mod policy;
mod queue;
pub mod receipt;
pub mod rights;
pub mod schema;
pub mod state;
pub mod state_proof;
pub mod store;
pub mod subject_map;
pub mod sync;
pub mod sync_client;
mod text;
pub mod validate;

pub use clock::{Clock, ManualClock, Period, SystemClock, Timestamp};
pub use error::{Error, Result};
pub use gate::{CategoryStatus, Decision, OsRecord, Reason, Snapshot};
pub use id::CatalogId;
pub use model::{Action, ChildrenRule, LegalBasis, OsState, ReasonCode, Source, Status};
pub use observer::{CommitHook, ConsentObserver, Registration, StatusChange, Watch};
pub use os_permission::OsPermission;
pub use policy::{Category, Feature, Policy};
pub use receipt::Receipt;
pub use rights::{ErasureReport, ExportDocument, PurgeReport};
pub use schema::OpenMode;
pub use store::{ConsentStore, DecisionInput, CROSS_PROCESS_BOUND, PROBE_INTERVAL};
pub use sync_client::{SyncBatch, SyncOutcome};
