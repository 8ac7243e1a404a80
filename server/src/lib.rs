//! # ConsentKit server
//!
//! The server ledger: devices send their outbox (`pending_sync`) as batches; the server checks
//! every hash with the core's encoding, stores the receipts in PostgreSQL under a keyed pseudonym
//! of the subject, signs each device's head, and answers support's questions across a subject's
//! devices with the core's own fold and gate. See `ARCHITECTURE.md` ("Server").
//!
//! Without the default `server` feature only [`wire`] is built: the batch format and the offline
//! check of a signed head, which the support tool uses.

pub mod wire;

#[cfg(feature = "server")]
pub mod access_log;
#[cfg(feature = "server")]
pub mod api;
#[cfg(feature = "server")]
pub mod auth;
#[cfg(feature = "server")]
pub mod config;
#[cfg(feature = "server")]
pub mod console;
#[cfg(feature = "server")]
pub mod db;
#[cfg(feature = "server")]
pub mod error;
#[cfg(feature = "server")]
pub mod ingest;
#[cfg(feature = "server")]
pub mod keys;
#[cfg(feature = "server")]
pub mod lockout;
#[cfg(feature = "server")]
pub mod query;
#[cfg(feature = "server")]
pub mod sql;
