//! The core's value types, exposed as they are (uniffi "remote" types: the definitions below
//! mirror the core's and generate only FFI code), under the names the platforms see. Times cross
//! as epoch milliseconds (UTC) and arrive as `java.time.Instant` in Kotlin (`bindings/uniffi.toml`).
//! Counts cross as signed 64-bit integers (Kotlin `Long`, Swift `Int64`), never unsigned.

pub use consentkit_core::Decision as CheckResult;
pub use consentkit_core::DecisionInput as ConsentChoice;
use consentkit_core::{
    Action, CatalogId, CategoryStatus, ErasureReport as CoreErasureReport, LegalBasis, OsPermission, OsState,
    PurgeReport as CorePurgeReport, Reason, ReasonCode, Receipt, Source, Status, StatusChange, Timestamp,
};

uniffi::custom_type!(Timestamp, i64, {
    remote,
    lower: |t| t.millis(),
    try_lift: |millis| Ok(Timestamp(millis)),
});

// A feature or category id in an answer: a string on the foreign side.
uniffi::custom_type!(CatalogId, String, {
    remote,
    lower: |id| id.into(),
    try_lift: |text| Ok(CatalogId::from(text)),
});

#[uniffi::remote(Enum)]
pub enum LegalBasis {
    Consent,
    Contract,
    LegitimateInterest,
    LegalObligation,
}

#[uniffi::remote(Enum)]
pub enum Action {
    Grant,
    Refuse,
    Withdraw,
    Object,
    WithdrawObjection,
    Expire,
    OsPermission,
    AgeStatus,
    Erasure,
    Purge,
}

#[uniffi::remote(Enum)]
pub enum Source {
    Onboarding,
    Settings,
    OsSettings,
    Support,
    Guardian,
    Import,
    System,
}

#[uniffi::remote(Enum)]
pub enum Status {
    NotRequired,
    NotAsked,
    Granted,
    Refused,
    Withdrawn,
    Expired,
    RenewalRequired,
    Objected,
}

#[uniffi::remote(Enum)]
pub enum ReasonCode {
    ConsentNotAsked,
    ConsentRefused,
    ConsentWithdrawn,
    ConsentExpired,
    RenewalRequired,
    Objected,
    ScopeNotGranted,
    OsPermissionDenied,
    OsPermissionNotDetermined,
    OsPermissionRestricted,
    UnderAge,
    StoreUnavailable,
}

#[uniffi::remote(Record)]
pub struct Reason {
    pub code: ReasonCode,
    pub category: CatalogId,
}

/// The gate's answer: may `feature` run now, and if not, every reason (core `Decision`).
#[uniffi::remote(Record)]
pub struct CheckResult {
    pub feature: CatalogId,
    pub allowed: bool,
    pub limited: bool,
    pub reasons: Vec<Reason>,
    pub valid_until: Option<Timestamp>,
}

#[uniffi::remote(Record)]
pub struct CategoryStatus {
    pub category: String,
    pub legal_basis: LegalBasis,
    pub status: Status,
    pub since: Option<Timestamp>,
}

#[uniffi::remote(Record)]
pub struct Receipt {
    pub id: String,
    pub seq: u64,
    pub subject: Option<String>,
    pub category: Option<String>,
    pub action: Action,
    pub scope: Option<String>,
    pub source: Source,
    pub policy_id: String,
    pub policy_version: String,
    pub purpose_version: Option<u32>,
    pub at: Timestamp,
    pub valid_until: Option<Timestamp>,
    pub permission: Option<OsPermission>,
    pub os_state: Option<OsState>,
    pub detail: Option<String>,
    pub content_hash: String,
    pub prev_hash: String,
    pub hash: String,
}

/// One choice a user made, to record (core `DecisionInput`; a batch records several at once).
#[uniffi::remote(Record)]
pub struct ConsentChoice {
    pub subject: String,
    pub category: String,
    pub action: Action,
    pub scope: Option<String>,
    pub source: Source,
}

#[uniffi::remote(Record)]
pub struct StatusChange {
    pub subject: String,
    pub category: String,
    pub status: Status,
    pub since: Option<Timestamp>,
    pub generation: u64,
}

/// What an erasure did: its receipt and how many events it erased.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct ErasureReport {
    /// The erasure record.
    pub receipt: Receipt,
    /// How many of the subject's events were erased.
    pub erased_events: i64,
    /// True when the erased content may still sit in SQLite's write-ahead log (a reader blocked
    /// the checkpoint); it is scrubbed at the next opportunity, or now by `finish_scrub()`.
    pub scrub_pending: bool,
}

impl From<CoreErasureReport> for ErasureReport {
    fn from(r: CoreErasureReport) -> Self {
        ErasureReport { receipt: r.receipt, erased_events: count(r.erased_events), scrub_pending: r.scrub_pending }
    }
}

/// What a retention purge did.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct PurgeReport {
    /// How many events were removed.
    pub removed_events: i64,
    /// The purge record, when anything was removed.
    pub receipt: Option<Receipt>,
    /// True when the removed content may still sit in SQLite's write-ahead log (see
    /// [`ErasureReport::scrub_pending`]).
    pub scrub_pending: bool,
}

impl From<CorePurgeReport> for PurgeReport {
    fn from(r: CorePurgeReport) -> Self {
        PurgeReport { removed_events: count(r.removed_events), receipt: r.receipt, scrub_pending: r.scrub_pending }
    }
}

/// A count as the platforms' signed integer (saturating: no store holds 2^63 events).
pub(crate) fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The result of walking the hash chain.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct VerifyReport {
    /// True when every event's hash and link hold.
    pub intact: bool,
    /// How many events were checked (when intact).
    pub events: i64,
    /// The first sequence number that does not hold (when broken).
    pub first_bad_seq: Option<u64>,
    /// What is wrong (when broken).
    pub message: Option<String>,
}

/// One batch of the outbox for the ConsentKit server: POST `json` to
/// `/v1/devices/{device}/batches` with the device's token, then hand the reply to
/// `apply_sync_reply` with this batch.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct SyncBatch {
    /// The device it is for.
    pub device: String,
    /// The request body.
    pub json: String,
    /// How many receipts it holds.
    pub count: i64,
    /// The last receipt's sequence number (the reply must acknowledge exactly it).
    pub last_seq: u64,
    /// The last receipt's link hash.
    pub last_hash: String,
}

impl From<consentkit_core::SyncBatch> for SyncBatch {
    fn from(b: consentkit_core::SyncBatch) -> Self {
        let (last_seq, last_hash) = b.receipts.last().map(|r| (r.seq, r.hash.clone())).unwrap_or_default();
        SyncBatch { count: count(b.receipts.len() as u64), device: b.device, json: b.json, last_seq, last_hash }
    }
}

/// What applying the server's reply did.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct SyncOutcome {
    /// The outbox is acknowledged up to here.
    pub acked_seq: u64,
    /// Receipts the server newly stored.
    pub stored: i64,
    /// Subjects erased on this device because the server had erased them.
    pub erased_subjects: Vec<String>,
    /// Events of this device the server deleted because its erasure records list them.
    pub erased_on_server: i64,
}

impl From<consentkit_core::SyncOutcome> for SyncOutcome {
    fn from(o: consentkit_core::SyncOutcome) -> Self {
        SyncOutcome {
            acked_seq: o.acked_seq,
            stored: count(o.stored),
            erased_subjects: o.erased_subjects,
            erased_on_server: count(o.erased_on_server),
        }
    }
}
