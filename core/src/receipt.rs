//! The receipt: one appended event of the ledger, as stored, exported and returned by every write.
//!
//! Field mapping to the Kantara Consent Receipt v1.1 and ISO/IEC TS 27560 consent record:
//! - `id` → Kantara `consentReceiptID` / 27560 record identifier (a UUID v4)
//! - `at` → Kantara `consentTimestamp` / 27560 event time
//! - `subject` → Kantara `piiPrincipalId` / 27560 PII principal
//! - `category` → Kantara `purposes[].piiCategory` / 27560 PII categories
//! - `action` → 27560 event type (given, refused, withdrawn, expired, objected)
//! - `policy_id`, `policy_version` → Kantara `policyUrl` and version / 27560 notice reference
//! - `purpose_version` → 27560 purpose (versioned); a bump requires renewed consent
//! - `source` → 27560 collection method (the dialog or channel that captured the decision)
//! - `valid_until` → 27560 expiry (for a grant) or the earliest re-ask time (for a refusal)
//! - `scope` → a per-item refinement of the purpose (e.g. one contact)
//! - `seq`, `prev_hash`, `hash` → 27560 record integrity (a SHA-256 hash chain, see [`crate::chain`])

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::model::{Action, OsState, Source};
use crate::os_permission::OsPermission;

/// One event of the append-only ledger with its proof. Never updated in place.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// Globally unique event id (UUID v4); idempotency key for the app's backend.
    pub id: String,
    /// Position in this store's chain, strictly increasing from 1.
    pub seq: u64,
    /// The account the decision belongs to; `None` for device-wide and system events.
    pub subject: Option<String>,
    /// The category decided on; `None` for device-wide and system events.
    pub category: Option<String>,
    /// What happened.
    pub action: Action,
    /// A single item the decision covers (e.g. one contact id), if any.
    pub scope: Option<String>,
    /// Where the decision came from.
    pub source: Source,
    /// The policy in force.
    pub policy_id: String,
    /// The policy version in force.
    pub policy_version: String,
    /// The category's purpose version in force.
    pub purpose_version: Option<u32>,
    /// When it happened (UTC).
    pub at: Timestamp,
    /// For a grant, when it expires; for a refusal, when the app may ask again.
    pub valid_until: Option<Timestamp>,
    /// For `os_permission` events: which permission.
    pub permission: Option<OsPermission>,
    /// For `os_permission` events: its new state.
    pub os_state: Option<OsState>,
    /// For system events, a small JSON object (erasure and purge details, age status, import origin).
    pub detail: Option<String>,
    /// Hex SHA-256 of the canonical encoding of the fields above.
    pub content_hash: String,
    /// Hex hash of the previous event (64 zeros for the first).
    pub prev_hash: String,
    /// Hex SHA-256 of `prev_hash ‖ content_hash`: the chain link.
    pub hash: String,
}

impl Receipt {
    /// An unsealed event of `action` under a policy at `at`, every optional field empty;
    /// the store fills the rest and seals it.
    pub fn blank(action: Action, source: Source, policy_id: &str, policy_version: &str, at: Timestamp) -> Receipt {
        Receipt {
            id: String::new(),
            seq: 0,
            subject: None,
            category: None,
            action,
            scope: None,
            source,
            policy_id: policy_id.to_string(),
            policy_version: policy_version.to_string(),
            purpose_version: None,
            at,
            valid_until: None,
            permission: None,
            os_state: None,
            detail: None,
            content_hash: String::new(),
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    /// A field of the `detail` JSON, if present.
    pub fn detail_field(&self, key: &str) -> Option<serde_json::Value> {
        let detail = self.detail.as_deref()?;
        let value: serde_json::Value = serde_json::from_str(detail).ok()?;
        value.get(key).cloned()
    }

    /// The source that made the decision: the original one for an imported event.
    pub fn effective_source(&self) -> Source {
        if self.source == Source::Import {
            if let Some(original) = self.detail_field("original_source").and_then(|v| v.as_str().and_then(|s| s.parse().ok())) {
                return original;
            }
        }
        self.source
    }
}
