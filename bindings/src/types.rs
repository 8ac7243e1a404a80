//! The core's value types, exposed as they are (uniffi "remote" types: the definitions below
//! mirror the core's and generate only FFI code). Times cross as epoch milliseconds (UTC).

use consentkit_core::{
    Action, CategoryStatus, Decision, DecisionInput, ErasureReport, LegalBasis, OsPermission, OsState, PurgeReport, Reason, ReasonCode,
    Receipt, Source, Status, StatusChange, Timestamp,
};

uniffi::custom_type!(Timestamp, i64, {
    remote,
    lower: |t| t.millis(),
    try_lift: |millis| Ok(Timestamp(millis)),
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
pub enum OsPermission {
    Contacts,
    Photos,
}

#[uniffi::remote(Enum)]
pub enum OsState {
    Granted,
    Limited,
    Denied,
    NotDetermined,
    Restricted,
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
    pub category: String,
}

#[uniffi::remote(Record)]
pub struct Decision {
    pub feature: String,
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

#[uniffi::remote(Record)]
pub struct DecisionInput {
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

#[uniffi::remote(Record)]
pub struct ErasureReport {
    pub receipt: Receipt,
    pub erased_events: u64,
    pub scrub_pending: bool,
}

#[uniffi::remote(Record)]
pub struct PurgeReport {
    pub removed_events: u64,
    pub receipt: Option<Receipt>,
    pub scrub_pending: bool,
}

/// The result of walking the hash chain.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct VerifyReport {
    /// True when every event's hash and link hold.
    pub intact: bool,
    /// How many events were checked (when intact).
    pub events: u64,
    /// The first sequence number that does not hold (when broken).
    pub first_bad_seq: Option<u64>,
    /// What is wrong (when broken).
    pub message: Option<String>,
}
