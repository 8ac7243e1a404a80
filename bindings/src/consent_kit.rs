//! `ConsentKit`: the one object apps hold. A thin layer over `consentkit_core::ConsentStore`;
//! safe to use from any thread. Every call is guarded: a panic becomes `ConsentKitError::Internal`.

use std::sync::Arc;

use consentkit_core::{
    Action, CategoryStatus, Clock, ConsentStore, Decision, DecisionInput, ErasureReport, Error, ManualClock, OpenMode, OsPermission,
    OsState, Policy, PurgeReport, Receipt, Source, SystemClock, Timestamp, Watch,
};

use crate::error::{guard, ConsentKitError};
use crate::listener::{CommitAdapter, CommitListener, ConsentListener, ListenerHandle, ObserverAdapter};
use crate::types::VerifyReport;

type Result<T> = std::result::Result<T, ConsentKitError>;

/// A clock that tests and conformance scenarios set by hand (epoch milliseconds).
#[derive(uniffi::Object)]
pub struct TestClock(ManualClock);

#[uniffi::export]
impl TestClock {
    /// A clock standing at `millis`.
    #[uniffi::constructor]
    pub fn new(millis: i64) -> Arc<Self> {
        Arc::new(TestClock(ManualClock::new(Timestamp(millis))))
    }
    /// Moves the clock to `millis`.
    pub fn set(&self, millis: i64) {
        self.0.set(Timestamp(millis))
    }
    /// The clock's time.
    pub fn now(&self) -> i64 {
        self.0.now().millis()
    }
}

/// The consent store of one app on one device.
#[derive(uniffi::Object)]
pub struct ConsentKit {
    store: ConsentStore,
}

fn policy_from(json: Option<String>) -> Result<Arc<Policy>> {
    Ok(Arc::new(match json {
        None => Policy::builtin(),
        Some(text) => Policy::from_json(&text)?,
    }))
}

impl ConsentKit {
    fn decide(&self, subject: String, category: String, action: Action, scope: Option<String>, source: Source) -> Result<Receipt> {
        guard(|| Ok(self.store.record(&DecisionInput { subject, category, action, scope, source })?))
    }
}

#[uniffi::export]
impl ConsentKit {
    /// Opens (creating if needed) the store at `path`, with the built-in UCAnywhere policy or a
    /// policy JSON. Throws if the store cannot be opened: see `open_fail_closed` for apps.
    #[uniffi::constructor]
    pub fn open(path: String, policy_json: Option<String>) -> Result<Arc<Self>> {
        guard(|| {
            crate::log::install();
            let store = ConsentStore::open_with(&path, policy_from(policy_json)?, Arc::new(SystemClock), OpenMode::ReadWrite)?;
            Ok(Arc::new(ConsentKit { store }))
        })
    }

    /// Opens the store; if it cannot be opened or read, returns a gate that denies every
    /// consent-gated feature with `StoreUnavailable` (`unavailable()` says why). Throws only for an
    /// invalid policy JSON.
    #[uniffi::constructor]
    pub fn open_fail_closed(path: String, policy_json: Option<String>) -> Result<Arc<Self>> {
        guard(|| {
            crate::log::install();
            let store = ConsentStore::open_fail_closed(&path, policy_from(policy_json)?, Arc::new(SystemClock));
            Ok(Arc::new(ConsentKit { store }))
        })
    }

    /// Opens the store on a hand-set clock (tests, conformance scenarios).
    #[uniffi::constructor]
    pub fn open_with_clock(path: String, policy_json: Option<String>, clock: Arc<TestClock>) -> Result<Arc<Self>> {
        guard(|| {
            crate::log::install();
            let clock: Arc<dyn Clock> = Arc::new(clock.0.clone());
            let store = ConsentStore::open_with(&path, policy_from(policy_json)?, clock, OpenMode::ReadWrite)?;
            Ok(Arc::new(ConsentKit { store }))
        })
    }

    /// Why the store is closed (fail-closed mode), or null when healthy.
    pub fn unavailable(&self) -> Option<String> {
        self.store.unavailable()
    }

    /// The policy in force, as JSON.
    pub fn policy_json(&self) -> String {
        self.store.policy().to_json()
    }

    /// The snapshot generation (bumped by every committed write).
    pub fn generation(&self) -> u64 {
        self.store.snapshot().generation
    }

    /// Records a grant (never from source `Support`).
    pub fn grant(&self, subject: String, category: String, scope: Option<String>, source: Source) -> Result<Receipt> {
        self.decide(subject, category, Action::Grant, scope, source)
    }

    /// Records a refusal.
    pub fn refuse(&self, subject: String, category: String, scope: Option<String>, source: Source) -> Result<Receipt> {
        self.decide(subject, category, Action::Refuse, scope, source)
    }

    /// Records a withdrawal. Once it returns, no check allows the feature.
    pub fn withdraw(&self, subject: String, category: String, scope: Option<String>, source: Source) -> Result<Receipt> {
        self.decide(subject, category, Action::Withdraw, scope, source)
    }

    /// Records an objection to a legitimate-interest category.
    pub fn object(&self, subject: String, category: String, source: Source) -> Result<Receipt> {
        self.decide(subject, category, Action::Object, None, source)
    }

    /// Records the withdrawal of an objection.
    pub fn withdraw_objection(&self, subject: String, category: String, source: Source) -> Result<Receipt> {
        self.decide(subject, category, Action::WithdrawObjection, None, source)
    }

    /// Records several decisions in one transaction: all or none.
    pub fn record_batch(&self, decisions: Vec<DecisionInput>) -> Result<Vec<Receipt>> {
        guard(|| Ok(self.store.record_batch(&decisions)?))
    }

    /// Reports the device's OS permission state; returns the event, or null if unchanged.
    pub fn set_os_permission(&self, permission: OsPermission, state: OsState) -> Result<Option<Receipt>> {
        guard(|| Ok(self.store.set_os_permission(permission, state)?))
    }

    /// The device's current state of an OS permission.
    pub fn os_permission(&self, permission: OsPermission) -> OsState {
        self.store.os_state(permission)
    }

    /// Marks (or unmarks) a subject as under the age of digital consent.
    pub fn set_under_age(&self, subject: String, under_age: bool, source: Source) -> Result<Receipt> {
        guard(|| Ok(self.store.set_under_age(&subject, under_age, source)?))
    }

    /// May `feature` run for `subject` now? In memory, no I/O. `scope` for per-item features.
    pub fn check(&self, subject: String, feature: String, scope: Option<String>) -> Result<Decision> {
        guard(|| Ok(self.store.check(&subject, &feature, scope.as_deref())?))
    }

    /// One category's status.
    pub fn status(&self, subject: String, category: String) -> Result<CategoryStatus> {
        guard(|| Ok(self.store.status(&subject, &category)?))
    }

    /// Every category's status, in policy order.
    pub fn statuses(&self, subject: String) -> Result<Vec<CategoryStatus>> {
        guard(|| Ok(self.store.statuses(&subject)?))
    }

    /// Should the app show the consent prompt for this category now?
    pub fn should_ask(&self, subject: String, category: String) -> Result<bool> {
        guard(|| Ok(self.store.should_ask(&subject, &category)?))
    }

    /// The subject's events, oldest first, with the device's OS permission changes.
    pub fn history(&self, subject: String) -> Result<Vec<Receipt>> {
        guard(|| Ok(self.store.history(&subject)?))
    }

    /// The subject's portable record as JSON.
    pub fn export_json(&self, subject: String) -> Result<String> {
        guard(|| Ok(self.store.export_json(&subject)?))
    }

    /// Restores an exported record; rejected whole (nothing written) if anything is wrong.
    pub fn import_json(&self, document: String) -> Result<Vec<Receipt>> {
        guard(|| Ok(self.store.import_json(&document)?))
    }

    /// Erases a subject for good; returns the erasure receipt.
    pub fn erase(&self, subject: String, source: Source) -> Result<ErasureReport> {
        guard(|| Ok(self.store.erase(&subject, source)?))
    }

    /// Retention purge.
    pub fn purge(&self) -> Result<PurgeReport> {
        guard(|| Ok(self.store.purge()?))
    }

    /// Appends `expire` events for grants past their lifetime (checks deny them regardless).
    pub fn record_expiries(&self) -> Result<Vec<Receipt>> {
        guard(|| Ok(self.store.record_expiries()?))
    }

    /// Walks the hash chain. A broken chain is a report, not an exception; a store problem throws.
    pub fn verify(&self) -> Result<VerifyReport> {
        guard(|| match self.store.verify() {
            Ok(events) => Ok(VerifyReport { intact: true, events, first_bad_seq: None, message: None }),
            Err(Error::Tampered(b)) => {
                Ok(VerifyReport { intact: false, events: 0, first_bad_seq: Some(b.seq()), message: Some(b.to_string()) })
            }
            Err(e) => Err(e.into()),
        })
    }

    /// The oldest events the app's backend has not acknowledged.
    pub fn pending_sync(&self, limit: u32) -> Result<Vec<Receipt>> {
        guard(|| Ok(self.store.pending_sync(limit)?))
    }

    /// Marks events up to `up_to_seq` as sent.
    pub fn ack_sync(&self, up_to_seq: u64) -> Result<()> {
        guard(|| Ok(self.store.ack_sync(up_to_seq)?))
    }

    /// Listens to one subject (or all, with null). Called once per category with the current state.
    /// An invalid subject (empty, too long, control characters) throws `InvalidInput`.
    pub fn observe(&self, subject: Option<String>, listener: Arc<dyn ConsentListener>) -> Result<Arc<ListenerHandle>> {
        let watch = subject.map_or(Watch::All, Watch::Subject);
        guard(|| Ok(Arc::new(ListenerHandle { registration: self.store.observe(watch, Arc::new(ObserverAdapter(listener)))? })))
    }

    /// Registers a listener called synchronously after each commit, before the write returns.
    pub fn on_commit(&self, listener: Arc<dyn CommitListener>) -> Arc<ListenerHandle> {
        Arc::new(ListenerHandle { registration: self.store.on_commit(Arc::new(CommitAdapter(listener))) })
    }
}
