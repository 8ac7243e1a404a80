//! `ConsentKit`: the one object apps hold. A thin layer over `consentkit_core::ConsentStore`;
//! safe to use from any thread. Every call is guarded: a panic becomes `ConsentKitError::Internal`.

use std::sync::{Arc, Mutex, Weak};

use consentkit_core::{
    Action, CategoryStatus, Clock, ConsentStore, Error, ManualClock, OpenMode, OsPermission, OsState, Policy, Receipt, Snapshot, Source,
    SystemClock, Timestamp, Watch,
};

use crate::error::ConsentKitError;
use crate::guard::ffi_export;
use crate::lifecycle::{InFlight, Lifecycle};
use crate::listener::{CommitAdapter, CommitListener, ConsentListener, ListenerHandle};
use crate::recovery::{classify, Unavailable, UnavailableKind};
use crate::timer::{Timer, Watcher};
use crate::types::{count, CheckResult, ConsentChoice, ErasureReport, PurgeReport, SyncBatch, SyncOutcome, VerifyReport};

type Result<T> = std::result::Result<T, ConsentKitError>;

/// FOR TESTS ONLY, never a production clock: a clock that tests and conformance scenarios set by
/// hand, so a store opened on it takes whatever time the test sets for expiry, renewal and
/// retention. Apps open stores with `open` or `open_fail_closed`, which use the system clock.
/// The Kotlin and Swift wrappers keep it out of their public API (Kotlin: `ManualClock` in the
/// `test-fixtures` artifact; Swift: `@_spi(Testing) import ConsentKit`).
#[derive(uniffi::Object)]
pub struct TestClock {
    clock: ManualClock,
    /// The observer timers of the kits opened on this clock: moving the clock re-plans them.
    timers: Mutex<Vec<Weak<Timer>>>,
}

ffi_export! {
impl TestClock {
    /// A clock standing at `at`.
    #[uniffi::constructor]
    pub fn new(at: Timestamp) -> Result<Arc<Self>> {
        Ok(Arc::new(TestClock { clock: ManualClock::new(at), timers: Mutex::new(Vec::new()) }))
    }
    /// Moves the clock to `at`.
    pub fn set(&self, at: Timestamp) -> Result<()> {
        self.clock.set(at);
        let timers: Vec<Arc<Timer>> = {
            let mut timers = self.timers.lock().unwrap_or_else(|p| p.into_inner());
            timers.retain(|t| t.strong_count() > 0);
            timers.iter().filter_map(Weak::upgrade).collect()
        };
        timers.iter().for_each(|t| t.poke());
        Ok(())
    }
    /// The clock's time.
    pub fn now(&self) -> Result<Timestamp> {
        Ok(self.clock.now())
    }
}
}

/// The consent store of one app on one device.
#[derive(uniffi::Object)]
pub struct ConsentKit {
    life: Lifecycle,
    /// Why the store failed closed (set by `open_fail_closed` only).
    reason: Option<Unavailable>,
    path: String,
    timer: Arc<Timer>,
}

fn policy_from(json: Option<String>) -> Result<Arc<Policy>> {
    Ok(Arc::new(match json {
        None => Policy::builtin(),
        Some(text) => Policy::from_json(&text)?,
    }))
}

impl ConsentKit {
    fn serving(store: ConsentStore, reason: Option<Unavailable>, path: String) -> Arc<Self> {
        Arc::new(ConsentKit { life: Lifecycle::new(store), reason, path, timer: Arc::default() })
    }

    /// The current snapshot and clock reading, or `None` once closed (for the observer timer).
    pub(crate) fn snapshot_now(&self) -> Option<(Arc<Snapshot>, Timestamp)> {
        let store = self.store().ok()?;
        Some((store.snapshot(), store.now()))
    }

    /// The store for one call, or `Closed`.
    fn store(&self) -> Result<InFlight<'_>> {
        self.life.enter()
    }

    /// The gate check on borrowed text: the uniffi `check` and the C gate (`c_gate.rs`) both answer through it.
    pub(crate) fn check_text(&self, subject: &str, feature: &str, scope: Option<&str>) -> Result<CheckResult> {
        Ok(self.store()?.check(subject, feature, scope)?)
    }

    fn decide(&self, subject: String, category: String, action: Action, scope: Option<String>, source: Source) -> Result<Receipt> {
        Ok(self.store()?.record(&ConsentChoice { subject, category, action, scope, source })?)
    }
}

ffi_export! {
impl ConsentKit {
    /// Opens (creating if needed) the store at `path`, with the built-in UCAnywhere policy or a
    /// policy JSON. Throws if the store cannot be opened: see `open_fail_closed` for apps.
    #[uniffi::constructor]
    pub fn open(path: String, policy_json: Option<String>) -> Result<Arc<Self>> {
        crate::log::install();
        let store = ConsentStore::open_with(&path, policy_from(policy_json)?, Arc::new(SystemClock), OpenMode::ReadWrite)?;
        Ok(ConsentKit::serving(store, None, path))
    }

    /// Opens the store; if it cannot be opened or read, returns a gate that denies every
    /// consent-gated feature with `StoreUnavailable` (`unavailable()` says why). Throws only for an
    /// invalid policy JSON.
    #[uniffi::constructor]
    pub fn open_fail_closed(path: String, policy_json: Option<String>) -> Result<Arc<Self>> {
        crate::log::install();
        let policy = policy_from(policy_json)?;
        let (store, reason) = match ConsentStore::open_with(&path, policy.clone(), Arc::new(SystemClock), OpenMode::ReadWrite) {
            Ok(store) => (store, None),
            // Opened again fail-closed for the closed gate; the typed reason is the first failure's.
            Err(e) => (ConsentStore::open_fail_closed(&path, policy, Arc::new(SystemClock)), Some(classify(&e))),
        };
        let reason = reason.filter(|_| store.unavailable().is_some());
        Ok(ConsentKit::serving(store, reason, path))
    }

    /// FOR TESTS ONLY: opens the store on a hand-set `TestClock` (tests, conformance scenarios).
    /// Apps use `open` or `open_fail_closed` (the system clock).
    #[uniffi::constructor]
    pub fn open_with_clock(path: String, policy_json: Option<String>, clock: Arc<TestClock>) -> Result<Arc<Self>> {
        crate::log::install();
        let manual: Arc<dyn Clock> = Arc::new(clock.clock.clone());
        let store = ConsentStore::open_with(&path, policy_from(policy_json)?, manual, OpenMode::ReadWrite)?;
        let kit = ConsentKit::serving(store, None, path);
        clock.timers.lock().unwrap_or_else(|p| p.into_inner()).push(Arc::downgrade(&kit.timer));
        Ok(kit)
    }

    /// Why the store is closed (fail-closed mode), or null when healthy.
    pub fn unavailable(&self) -> Result<Option<String>> {
        Ok(self.store()?.unavailable())
    }

    /// Why the store failed closed, typed (null when healthy).
    pub fn unavailable_reason(&self) -> Result<Option<Unavailable>> {
        let store = self.store()?;
        Ok(store.unavailable().map(|message| {
            self.reason.clone().unwrap_or(Unavailable { kind: UnavailableKind::Unreadable, message, can_quarantine: false })
        }))
    }

    /// Moves this failed-closed store's damaged file (and its `-wal`/`-shm`) aside to
    /// `<path>.corrupt-<millis>` and returns that path; then open the path again for a fresh
    /// store. Refused (`InvalidInput`) for a healthy store or a reason that is not `Damaged`
    /// (moving a file that another manager has open, or a newer app's data, would lose it).
    pub fn quarantine(&self) -> Result<String> {
        let store = self.store()?;
        match self.unavailable_reason()? {
            Some(reason) if reason.can_quarantine => {
                let moved = ConsentStore::quarantine(&self.path, store.now())?;
                Ok(moved.to_string_lossy().into_owned())
            }
            Some(reason) => Err(ConsentKitError::InvalidInput(format!(
                "the store at '{}' is not damaged ({:?}): quarantine would lose it; {}",
                self.path, reason.kind, reason.message
            ))),
            None => Err(ConsentKitError::InvalidInput(format!("the store at '{}' is healthy: nothing to quarantine", self.path))),
        }
    }

    /// The policy in force, as JSON.
    pub fn policy_json(&self) -> Result<String> {
        Ok(self.store()?.policy().to_json())
    }

    /// The snapshot generation (bumped by every committed write).
    pub fn generation(&self) -> Result<u64> {
        Ok(self.store()?.snapshot().generation)
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
    pub fn record_batch(&self, decisions: Vec<ConsentChoice>) -> Result<Vec<Receipt>> {
        Ok(self.store()?.record_batch(&decisions)?)
    }

    /// Reports the device's OS permission state; returns the event, or null if unchanged.
    pub fn set_os_permission(&self, permission: OsPermission, state: OsState) -> Result<Option<Receipt>> {
        Ok(self.store()?.set_os_permission(permission, state)?)
    }

    /// The device's current state of an OS permission.
    pub fn os_permission(&self, permission: OsPermission) -> Result<OsState> {
        Ok(self.store()?.os_state(permission))
    }

    /// Marks (or unmarks) a subject as under the age of digital consent.
    pub fn set_under_age(&self, subject: String, under_age: bool, source: Source) -> Result<Receipt> {
        Ok(self.store()?.set_under_age(&subject, under_age, source)?)
    }

    /// May `feature` run for `subject` now? In memory, no I/O. `scope` for per-item features.
    pub fn check(&self, subject: String, feature: String, scope: Option<String>) -> Result<CheckResult> {
        self.check_text(&subject, &feature, scope.as_deref())
    }

    /// Nanoseconds the answers a check gives now stay proven current (the cross-process bound
    /// counted from the snapshot's last proof; 0 when past it). A cache of check answers reads this
    /// before the check and keeps the answer no longer.
    pub fn proof_remaining_nanos(&self) -> Result<u64> {
        Ok(u64::try_from(self.store()?.proof_remaining().as_nanos()).unwrap_or(u64::MAX))
    }

    /// One category's status.
    pub fn status(&self, subject: String, category: String) -> Result<CategoryStatus> {
        Ok(self.store()?.status(&subject, &category)?)
    }

    /// Every category's status, in policy order.
    pub fn statuses(&self, subject: String) -> Result<Vec<CategoryStatus>> {
        Ok(self.store()?.statuses(&subject)?)
    }

    /// Should the app show the consent prompt for this category now?
    pub fn should_ask(&self, subject: String, category: String) -> Result<bool> {
        Ok(self.store()?.should_ask(&subject, &category)?)
    }

    /// The subject's events, oldest first, with the device's OS permission changes.
    pub fn history(&self, subject: String) -> Result<Vec<Receipt>> {
        Ok(self.store()?.history(&subject)?)
    }

    /// The subject's portable record as JSON.
    pub fn export_json(&self, subject: String) -> Result<String> {
        Ok(self.store()?.export_json(&subject)?)
    }

    /// Restores an exported record; rejected whole (nothing written) if anything is wrong.
    pub fn import_json(&self, document: String) -> Result<Vec<Receipt>> {
        Ok(self.store()?.import_json(&document)?)
    }

    /// Erases a subject for good; returns the erasure receipt.
    pub fn erase(&self, subject: String, source: Source) -> Result<ErasureReport> {
        Ok(self.store()?.erase(&subject, source)?.into())
    }

    /// Retention purge.
    pub fn purge(&self) -> Result<PurgeReport> {
        Ok(self.store()?.purge()?.into())
    }

    /// Appends `expire` events for grants past their lifetime (checks deny them regardless).
    pub fn record_expiries(&self) -> Result<Vec<Receipt>> {
        Ok(self.store()?.record_expiries()?)
    }

    /// Walks the hash chain. A broken chain is a report, not an exception; a store problem throws.
    pub fn verify(&self) -> Result<VerifyReport> {
        match self.store()?.verify() {
            Ok(events) => Ok(VerifyReport { intact: true, events: count(events), first_bad_seq: None, message: None }),
            Err(Error::Tampered(b)) => {
                Ok(VerifyReport { intact: false, events: 0, first_bad_seq: Some(b.seq()), message: Some(b.to_string()) })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The oldest events the app's backend has not acknowledged.
    pub fn pending_sync(&self, limit: u32) -> Result<Vec<Receipt>> {
        Ok(self.store()?.pending_sync(limit)?)
    }

    /// Marks events up to `up_to_seq` as sent.
    pub fn ack_sync(&self, up_to_seq: u64) -> Result<()> {
        Ok(self.store()?.ack_sync(up_to_seq)?)
    }

    /// The next batch of the outbox for the ConsentKit server, or null when everything is
    /// acknowledged (README "Server"). At most `limit` receipts (1 to 1000).
    pub fn sync_batch(&self, device: String, limit: u32) -> Result<Option<SyncBatch>> {
        Ok(self.store()?.sync_batch(&device, limit)?.map(SyncBatch::from))
    }

    /// Applies the server's 200 reply to `batch`: erases locally what the server erased, then
    /// acknowledges. A reply for another batch throws `InvalidInput` and acknowledges nothing.
    pub fn apply_sync_reply(&self, batch: SyncBatch, reply_json: String) -> Result<SyncOutcome> {
        Ok(self.store()?.apply_sync_reply_to(&batch.device, batch.last_seq, &batch.last_hash, &reply_json)?.into())
    }

    /// Applies the body of `GET /v1/devices/{device}/erasures`: erases locally the subjects of
    /// this device's events the server erased; returns them. Their erasure records then sync.
    pub fn apply_erasure_notices(&self, notices_json: String) -> Result<Vec<String>> {
        Ok(self.store()?.apply_erasure_notices(&notices_json)?)
    }

    /// Listens to one subject (or all, with null). Called once per category with the current state.
    /// An invalid subject (empty, too long, control characters) throws `InvalidInput`.
    /// A grant that runs out is told as `expired` at its time (the observer timer), with no write.
    pub fn observe(self: Arc<Self>, subject: Option<String>, listener: Arc<dyn ConsentListener>) -> Result<Arc<ListenerHandle>> {
        let watch = subject.map_or(Watch::All, Watch::Subject);
        let store = self.store()?;
        let watcher = Watcher::new(watch.clone(), listener);
        let registration = store.observe(watch, watcher.clone())?;
        self.timer.add(&self, &watcher, |hook| store.on_commit(hook));
        Ok(Arc::new(ListenerHandle { registration, watcher: Some(watcher) }))
    }

    /// Registers a listener called synchronously after each commit, before the write returns.
    pub fn on_commit(&self, listener: Arc<dyn CommitListener>) -> Result<Arc<ListenerHandle>> {
        Ok(Arc::new(ListenerHandle { registration: self.store()?.on_commit(Arc::new(CommitAdapter(listener))), watcher: None }))
    }

    /// Catches up with other processes' commits now (another process of the app, an app
    /// extension, the support tool). Checks do this by themselves within
    /// `cross_process_bound_millis`; call it when the app returns to the foreground.
    pub fn refresh(&self) -> Result<()> {
        Ok(self.store()?.refresh()?)
    }

    /// iOS: call before the app is suspended (`applicationDidEnterBackground`, a background task's
    /// expiration handler). Waits for the transaction in flight, then starts no new one (writes and
    /// ledger reads fail with `Suspended`) until `resume`, so no SQLite lock is held while
    /// suspended (0xDEAD10CC). Checks answer from memory for `cross_process_bound_millis`, then
    /// deny consent-gated features. Idempotent.
    pub fn suspend(&self) -> Result<()> {
        self.store()?.suspend();
        Ok(())
    }

    /// Ends `suspend`: catches up with what other processes committed meanwhile, then returns.
    pub fn resume(&self) -> Result<()> {
        Ok(self.store()?.resume()?)
    }

    /// True between `suspend` and `resume`.
    pub fn is_suspended(&self) -> Result<bool> {
        Ok(self.store()?.is_suspended())
    }

    /// Finishes an erasure's pending WAL scrub now (see `ErasureReport.scrub_pending`); true when
    /// no erased content remains in the WAL.
    pub fn finish_scrub(&self) -> Result<bool> {
        Ok(self.store()?.finish_scrub())
    }

    /// The cross-process bound in milliseconds: a check allows only from a state proven current at
    /// most this long ago. Caches above the FFI must not serve an entry older than this.
    pub fn cross_process_bound_millis(&self) -> Result<u64> {
        Ok(consentkit_core::CROSS_PROCESS_BOUND.as_millis() as u64)
    }

    /// Closes the store: new calls throw `Closed`, calls in flight finish first, and when this
    /// returns the file is released (it can be opened again at once). Idempotent. Called from
    /// inside a call on the same thread (a commit listener), it returns at once and the file is
    /// released when that call returns.
    /// (Named `shutdown`: the generated Kotlin object already has `close()`, which frees the handle.)
    pub fn shutdown(&self) -> Result<()> {
        self.timer.stop();
        self.life.close()
    }

    /// True once `shutdown` was called.
    pub fn is_closed(&self) -> Result<bool> {
        Ok(self.life.is_closed())
    }
}
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use consentkit_core::StatusChange;

    use super::*;
    use crate::guard::tests::arm_panic;

    /// A test's result: an error from the code under test, a missing value or a panicked thread
    /// fails the test with its message (`?`), never a panic (no `unwrap` in bindings/src).
    type TestResult<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

    /// A test listener's lock poisoned (a panic while it was held) is an error, not a second panic.
    fn poisoned<G>(_: std::sync::PoisonError<G>) -> ConsentKitError {
        ConsentKitError::Internal("a test listener's lock is poisoned".into())
    }

    struct Quiet;
    impl ConsentListener for Quiet {
        fn on_change(&self, _: StatusChange) -> Result<()> {
            Ok(())
        }
    }
    impl CommitListener for Quiet {
        fn on_commit(&self, _: u64) -> Result<()> {
            Ok(())
        }
    }

    fn internal<T>(name: &str, result: Result<T>) -> TestResult<String> {
        match result {
            Err(ConsentKitError::Internal(m)) if m.contains("injected panic") => Ok(name.to_string()),
            Err(e) => Err(format!("{name}: expected the injected panic as Internal, got {e:?}").into()),
            Ok(_) => Err(format!("{name}: the injected panic was not raised: not under the guard").into()),
        }
    }

    /// Every export, run with a panic injected inside its guard, reports `Internal`; and the
    /// calls below cover every name the `ffi_export!` blocks export, so a new export must join them.
    #[test]
    fn every_export_turns_a_panic_into_internal() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
        let clock = TestClock::new(Timestamp(1_768_467_600_000))?;
        let kit = ConsentKit::open_with_clock(path("a.db"), None, clock.clone())?;
        let handle = kit.on_commit(Arc::new(Quiet))?;
        let s = || "alice".to_string();
        let c = || "usage_statistics".to_string();
        let mut covered = BTreeSet::new();
        macro_rules! run {
            ($name:literal, $call:expr) => {{
                arm_panic();
                covered.insert(internal($name, $call)?);
            }};
        }
        run!("new", TestClock::new(Timestamp(0)));
        run!("set", clock.set(Timestamp(0)));
        run!("now", clock.now());
        run!("open", ConsentKit::open(path("b.db"), None));
        run!("open_fail_closed", ConsentKit::open_fail_closed(path("c.db"), None));
        run!("open_with_clock", ConsentKit::open_with_clock(path("d.db"), None, clock.clone()));
        run!("unavailable", kit.unavailable());
        run!("policy_json", kit.policy_json());
        run!("unavailable_reason", kit.unavailable_reason());
        run!("quarantine", kit.quarantine());
        run!("generation", kit.generation());
        run!("grant", kit.grant(s(), c(), None, Source::Settings));
        run!("refuse", kit.refuse(s(), c(), None, Source::Settings));
        run!("withdraw", kit.withdraw(s(), c(), None, Source::Settings));
        run!("object", kit.object(s(), "contact_information".into(), Source::Settings));
        run!("withdraw_objection", kit.withdraw_objection(s(), "contact_information".into(), Source::Settings));
        run!("record_batch", kit.record_batch(vec![]));
        run!("set_os_permission", kit.set_os_permission(OsPermission::CONTACTS, OsState::Granted));
        run!("os_permission", kit.os_permission(OsPermission::CONTACTS));
        run!("set_under_age", kit.set_under_age(s(), true, Source::Settings));
        run!("check", kit.check(s(), "usage_analytics".into(), None));
        run!("status", kit.status(s(), c()));
        run!("statuses", kit.statuses(s()));
        run!("should_ask", kit.should_ask(s(), c()));
        run!("history", kit.history(s()));
        run!("export_json", kit.export_json(s()));
        run!("import_json", kit.import_json("{}".into()));
        run!("erase", kit.erase(s(), Source::Settings));
        run!("purge", kit.purge());
        run!("record_expiries", kit.record_expiries());
        run!("verify", kit.verify());
        run!("pending_sync", kit.pending_sync(1));
        run!("ack_sync", kit.ack_sync(0));
        run!("sync_batch", kit.sync_batch("phone".into(), 1));
        let batch = SyncBatch { device: "phone".into(), json: String::new(), count: 0, last_seq: 0, last_hash: String::new() };
        run!("apply_sync_reply", kit.apply_sync_reply(batch, "{}".into()));
        run!("apply_erasure_notices", kit.apply_erasure_notices("{}".into()));
        run!("observe", kit.clone().observe(Some(s()), Arc::new(Quiet)));
        run!("on_commit", kit.on_commit(Arc::new(Quiet)));
        run!("unregister", handle.unregister());
        run!("refresh", kit.refresh());
        run!("suspend", kit.suspend());
        run!("resume", kit.resume());
        run!("is_suspended", kit.is_suspended());
        run!("finish_scrub", kit.finish_scrub());
        run!("cross_process_bound_millis", kit.cross_process_bound_millis());
        run!("proof_remaining_nanos", kit.proof_remaining_nanos());
        run!("is_closed", kit.is_closed());
        run!("shutdown", kit.shutdown());

        let exported: BTreeSet<String> = [TestClock::GUARDED_EXPORTS, ConsentKit::GUARDED_EXPORTS, ListenerHandle::GUARDED_EXPORTS]
            .concat()
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(covered, exported, "every export is exercised under an injected panic");
        // Nothing was half-done: the store still works and recorded none of the panicked writes.
        assert!(kit.history(s())?.is_empty());
        assert!(!kit.check(s(), "usage_analytics".into(), None)?.allowed);
        Ok(())
    }

    struct Blocking {
        entered: std::sync::mpsc::Sender<()>,
        release: Mutex<std::sync::mpsc::Receiver<()>>,
    }
    impl CommitListener for Blocking {
        fn on_commit(&self, _: u64) -> Result<()> {
            let _ = self.entered.send(());
            let _ = self.release.lock().map_err(poisoned)?.recv();
            Ok(())
        }
    }

    #[test]
    fn close_is_idempotent_and_every_call_after_it_is_closed() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("a.db").to_string_lossy().into_owned();
        let kit = ConsentKit::open(path.clone(), None)?;
        kit.grant("alice".into(), "usage_statistics".into(), None, Source::Settings)?;
        kit.shutdown()?;
        kit.shutdown()?;
        assert!(kit.is_closed()?);
        assert!(matches!(kit.check("alice".into(), "usage_analytics".into(), None), Err(ConsentKitError::Closed(_))));
        assert!(matches!(kit.unavailable(), Err(ConsentKitError::Closed(_))));
        assert!(matches!(kit.withdraw("alice".into(), "usage_statistics".into(), None, Source::Settings), Err(ConsentKitError::Closed(_))));
        // The file is free at once, and the grant is there.
        let again = ConsentKit::open(path, None)?;
        assert!(again.check("alice".into(), "usage_analytics".into(), None)?.allowed);
        Ok(())
    }

    #[test]
    fn close_waits_for_a_call_in_flight_then_the_file_is_free() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("a.db").to_string_lossy().into_owned();
        let kit = ConsentKit::open(path.clone(), None)?;
        let (entered_tx, entered) = std::sync::mpsc::channel();
        let (release, release_rx) = std::sync::mpsc::channel();
        let _hook = kit.on_commit(Arc::new(Blocking { entered: entered_tx, release: Mutex::new(release_rx) }))?;
        let writer = {
            let kit = kit.clone();
            std::thread::spawn(move || kit.grant("alice".into(), "usage_statistics".into(), None, Source::Settings))
        };
        entered.recv()?; // the grant is in flight, inside its commit hook
        let closer = {
            let kit = kit.clone();
            std::thread::spawn(move || kit.shutdown())
        };
        while !kit.is_closed()? {
            std::thread::yield_now();
        }
        assert!(matches!(kit.status("alice".into(), "usage_statistics".into()), Err(ConsentKitError::Closed(_))), "no new call starts");
        assert!(!closer.is_finished(), "close waits for the call in flight");
        release.send(())?;
        closer.join().map_err(|_| "the closer thread panicked")??;
        assert!(writer.join().map_err(|_| "the writer thread panicked")?.is_ok(), "the call in flight finished normally");
        let again = ConsentKit::open(path, None)?;
        assert!(again.unavailable()?.is_none(), "an immediate reopen works");
        assert!(again.check("alice".into(), "usage_analytics".into(), None)?.allowed);
        Ok(())
    }

    struct ClosesItself(Mutex<Option<Arc<ConsentKit>>>, Mutex<Option<Result<()>>>);
    impl CommitListener for ClosesItself {
        fn on_commit(&self, _: u64) -> Result<()> {
            if let Some(kit) = self.0.lock().map_err(poisoned)?.take() {
                *self.1.lock().map_err(poisoned)? = Some(kit.shutdown());
            }
            Ok(())
        }
    }

    /// A close from inside a call on the same thread cannot wait for that call: it closes to new
    /// calls at once and the store is released when the call returns (no deadlock, no file left
    /// claimed: it used to be refused with `InvalidInput`, leaving the store open).
    #[test]
    fn close_from_inside_a_hook_completes_when_the_call_returns() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("a.db").to_string_lossy().into_owned();
        let kit = ConsentKit::open(path.clone(), None)?;
        let hook = Arc::new(ClosesItself(Mutex::new(Some(kit.clone())), Mutex::new(None)));
        let h = kit.on_commit(hook.clone())?;
        kit.grant("alice".into(), "usage_statistics".into(), None, Source::Settings)?;
        assert!(matches!(hook.1.lock().map_err(|_| "the hook's result lock is poisoned")?.take(), Some(Ok(()))));
        assert!(kit.is_closed()?);
        assert!(matches!(kit.grant("bob".into(), "usage_statistics".into(), None, Source::Settings), Err(ConsentKitError::Closed(_))));
        drop(h);
        let again = ConsentKit::open(path, None)?;
        assert!(again.unavailable()?.is_none(), "the file was released");
        assert!(again.check("alice".into(), "usage_analytics".into(), None)?.allowed, "the write in flight was kept");
        drop(kit);
        Ok(())
    }

    /// Closing another kit from inside this kit's call: that kit has no call in flight on this
    /// thread, so its store is released before `shutdown` returns.
    #[test]
    fn close_of_another_kit_from_inside_a_hook_releases_it_at_once() -> TestResult {
        let dir = tempfile::tempdir()?;
        let other_path = dir.path().join("b.db").to_string_lossy().into_owned();
        let kit = ConsentKit::open(dir.path().join("a.db").to_string_lossy().into_owned(), None)?;
        let other = ConsentKit::open(other_path.clone(), None)?;
        other.grant("alice".into(), "usage_statistics".into(), None, Source::Settings)?;
        let hook = Arc::new(ClosesItself(Mutex::new(Some(other.clone())), Mutex::new(None)));
        let _h = kit.on_commit(hook.clone())?;
        kit.grant("alice".into(), "usage_statistics".into(), None, Source::Settings)?;
        assert!(matches!(hook.1.lock().map_err(|_| "the hook's result lock is poisoned")?.take(), Some(Ok(()))));
        assert!(other.is_closed()? && !kit.is_closed()?);
        let again = ConsentKit::open(other_path, None)?;
        assert!(again.unavailable()?.is_none(), "the other file was released");
        assert!(again.check("alice".into(), "usage_analytics".into(), None)?.allowed);
        Ok(())
    }
}

#[cfg(test)]
mod lifecycle_race_tests {
    use super::*;

    /// A test's result: an error from the code under test, a missing value or a panicked thread
    /// fails the test with its message (`?`), never a panic (no `unwrap` in bindings/src).
    type TestResult<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

    #[test]
    fn reopen_right_after_shutdown_with_a_writer_racing() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("a.db").to_string_lossy().into_owned();
        for round in 0..30 {
            let kit = ConsentKit::open(path.clone(), None)?;
            let w = {
                let kit = kit.clone();
                std::thread::spawn(move || -> Result<()> {
                    let mut i = 0;
                    loop {
                        i += 1;
                        match kit.grant(format!("u{round}-{i}"), "usage_statistics".into(), None, Source::Settings) {
                            Ok(_) => {}
                            Err(ConsentKitError::Closed(_)) => return Ok(()),
                            Err(e) => return Err(e),
                        }
                    }
                })
            };
            std::thread::sleep(std::time::Duration::from_millis(5));
            kit.shutdown()?;
            let again = ConsentKit::open(path.clone(), None);
            assert!(again.is_ok(), "round {round}: {:?}", again.err());
            drop(again);
            w.join().map_err(|_| format!("round {round}: the writer thread panicked"))?.map_err(|e| format!("round {round}: {e:?}"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod recovery_tests {
    use super::*;

    /// A test's result: an error from the code under test, a missing value or a panicked thread
    /// fails the test with its message (`?`), never a panic (no `unwrap` in bindings/src).
    type TestResult<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

    #[test]
    fn a_damaged_store_says_why_typed_and_can_be_quarantined_and_reopened() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("a.db");
        std::fs::write(&path, vec![7u8; 8192])?;
        let p = path.to_string_lossy().into_owned();
        let kit = ConsentKit::open_fail_closed(p.clone(), None)?;
        let reason = kit.unavailable_reason()?.ok_or("a damaged store has no unavailable reason")?;
        assert_eq!(reason.kind, UnavailableKind::Damaged, "{reason:?}");
        assert!(reason.can_quarantine && reason.message.contains("a.db"), "{reason:?}");
        let moved = kit.quarantine()?;
        assert!(moved.contains(".corrupt-") && std::fs::read(&moved)?.len() == 8192, "the damaged file is kept");
        kit.shutdown()?;
        let fresh = ConsentKit::open_fail_closed(p, None)?;
        assert!(fresh.unavailable_reason()?.is_none());
        fresh.grant("alice".into(), "usage_statistics".into(), None, Source::Settings)?;
        assert!(matches!(fresh.quarantine(), Err(ConsentKitError::InvalidInput(_))), "a healthy store is never moved");
        Ok(())
    }

    #[test]
    fn a_second_open_in_this_process_is_already_open_and_not_quarantined() -> TestResult {
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("a.db").to_string_lossy().into_owned();
        let first = ConsentKit::open(p.clone(), None)?;
        let second = ConsentKit::open_fail_closed(p.clone(), None)?;
        assert_eq!(second.unavailable_reason()?.ok_or("a second open has no unavailable reason")?.kind, UnavailableKind::AlreadyOpen);
        assert!(matches!(second.quarantine(), Err(ConsentKitError::InvalidInput(_))));
        assert!(std::path::Path::new(&p).exists(), "the live store's file stays where it is");
        assert!(first.unavailable()?.is_none());
        Ok(())
    }

    #[test]
    fn other_policies_and_newer_schemas_are_typed() -> TestResult {
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("a.db").to_string_lossy().into_owned();
        ConsentKit::open(p.clone(), None)?.shutdown()?;
        let other = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/wk360.json"))?;
        let kit = ConsentKit::open_fail_closed(p, Some(other))?;
        assert_eq!(
            kit.unavailable_reason()?.ok_or("a store of another policy has no unavailable reason")?.kind,
            UnavailableKind::PolicyMismatch
        );
        let e = Error::SchemaTooNew { path: "x".into(), found: 9, supported: 1 };
        assert_eq!(crate::recovery::classify(&e).kind, UnavailableKind::SchemaTooNew);
        Ok(())
    }
}

#[cfg(test)]
mod timer_tests {
    use std::sync::mpsc::{channel, Receiver, Sender};
    use std::time::Duration;

    use consentkit_core::{Status, StatusChange};

    use super::*;

    /// A test's result: an error from the code under test, a missing value or a panicked thread
    /// fails the test with its message (`?`), never a panic (no `unwrap` in bindings/src).
    type TestResult<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

    /// A test listener's lock poisoned (a panic while it was held) is an error, not a second panic.
    fn poisoned<G>(_: std::sync::PoisonError<G>) -> ConsentKitError {
        ConsentKitError::Internal("a test listener's lock is poisoned".into())
    }

    struct Channel(Mutex<Sender<StatusChange>>);
    impl ConsentListener for Channel {
        fn on_change(&self, change: StatusChange) -> Result<()> {
            let _ = self.0.lock().map_err(poisoned)?.send(change);
            Ok(())
        }
    }

    fn listen(kit: &Arc<ConsentKit>, subject: Option<&str>) -> TestResult<(Arc<ListenerHandle>, Receiver<StatusChange>)> {
        let (tx, rx) = channel();
        Ok((kit.clone().observe(subject.map(String::from), Arc::new(Channel(Mutex::new(tx))))?, rx))
    }

    /// Waits (bounded, not timed) for the next change of `category`.
    fn next_of(rx: &Receiver<StatusChange>, category: &str) -> TestResult<StatusChange> {
        loop {
            let c = rx.recv_timeout(Duration::from_secs(30)).map_err(|e| format!("no change of {category} was emitted: {e}"))?;
            if c.category == category {
                return Ok(c);
            }
        }
    }

    #[test]
    fn an_expiry_is_emitted_at_its_time_without_a_write() -> TestResult {
        let dir = tempfile::tempdir()?;
        let clock = TestClock::new(Timestamp(1_768_467_600_000))?;
        let kit = ConsentKit::open_with_clock(dir.path().join("a.db").to_string_lossy().into(), None, clock.clone())?;
        let receipt = kit.grant("alice".into(), "usage_statistics".into(), None, Source::Settings)?;
        let until = receipt.valid_until.ok_or("the grant has no valid_until")?;
        let (_one, alice) = listen(&kit, Some("alice"))?;
        let (_all, everyone) = listen(&kit, None)?;
        assert_eq!(next_of(&alice, "usage_statistics")?.status, Status::Granted, "the initial state");
        assert_eq!(next_of(&everyone, "usage_statistics")?.status, Status::Granted);
        clock.set(Timestamp(until.millis() - 1))?;
        clock.set(until)?;
        let expired = next_of(&alice, "usage_statistics")?;
        assert_eq!((expired.status, expired.since), (Status::Expired, Some(until)));
        assert_eq!(next_of(&everyone, "usage_statistics")?.status, Status::Expired, "observers of everyone too");
        assert_eq!(kit.record_expiries()?.len(), 1);
        // Renewing after the expiry is a change again; the expiry is told once, not twice.
        kit.grant("alice".into(), "usage_statistics".into(), None, Source::Settings)?;
        assert_eq!(next_of(&alice, "usage_statistics")?.status, Status::Granted);
        kit.shutdown()?;
        Ok(())
    }

    #[test]
    fn each_commit_is_told_once_and_in_order_though_the_timer_ticks_on_it() -> TestResult {
        // The timer ticks on every commit hook and may tell a change before the observer's worker
        // delivers it; the worker must then neither repeat it nor tell an older status after it.
        let dir = tempfile::tempdir()?;
        let kit = ConsentKit::open(dir.path().join("a.db").to_string_lossy().into(), None)?;
        let (_handle, alice) = listen(&kit, Some("alice"))?;
        let mut generations = vec![next_of(&alice, "usage_statistics")?.generation];
        for i in 0..100 {
            if i % 2 == 0 {
                kit.grant("alice".into(), "usage_statistics".into(), None, Source::Settings)?;
            } else {
                kit.withdraw("alice".into(), "usage_statistics".into(), None, Source::Settings)?;
            }
        }
        let last = kit.generation()?;
        while generations.last() != Some(&last) {
            let change = next_of(&alice, "usage_statistics")?;
            let previous = *generations.last().ok_or("no generation recorded")?;
            assert!(change.generation > previous, "told again or out of order: {change:?} after {generations:?}");
            generations.push(change.generation);
        }
        kit.shutdown()?;
        assert!(alice.try_iter().all(|c| c.category != "usage_statistics"), "nothing after the last commit");
        Ok(())
    }

    /// A kit on a test clock in `dir` where alice granted `usage_statistics`, and the instant that
    /// grant expires.
    fn alice_granted_usage_statistics(dir: &tempfile::TempDir) -> TestResult<(Arc<ConsentKit>, Arc<TestClock>, Timestamp)> {
        let clock = TestClock::new(Timestamp(1_768_467_600_000))?;
        let kit = ConsentKit::open_with_clock(dir.path().join("a.db").to_string_lossy().into(), None, clock.clone())?;
        let until = kit
            .grant("alice".into(), "usage_statistics".into(), None, Source::Settings)?
            .valid_until
            .ok_or("the grant has no valid_until")?;
        Ok((kit, clock, until))
    }

    /// Blocks in its first call until released (an app's listener stuck on a lock or a dialog).
    struct Stuck(Mutex<Receiver<()>>);
    impl ConsentListener for Stuck {
        fn on_change(&self, _: StatusChange) -> Result<()> {
            let _ = self.0.lock().map_err(poisoned)?.recv();
            Ok(())
        }
    }

    /// A listener that blocks holds up only itself: another observer is still told that a grant
    /// expired, at its time (the timer never waits on a listener that is being called).
    #[test]
    fn a_blocked_listener_does_not_hold_up_the_expiry_told_to_another() -> TestResult {
        let dir = tempfile::tempdir()?;
        let (kit, clock, until) = alice_granted_usage_statistics(&dir)?;
        let (release, stuck) = channel();
        let _stuck = kit.clone().observe(Some("alice".into()), Arc::new(Stuck(Mutex::new(stuck))))?;
        let (_other, alice) = listen(&kit, Some("alice"))?;
        assert_eq!(next_of(&alice, "usage_statistics")?.status, Status::Granted);
        clock.set(until)?;
        let expired = next_of(&alice, "usage_statistics")?;
        assert_eq!(expired.status, Status::Expired, "told while the other listener is still blocked");
        drop(release);
        kit.shutdown()?;
        Ok(())
    }

    #[test]
    fn an_unregistered_observer_is_told_nothing_more() -> TestResult {
        let dir = tempfile::tempdir()?;
        let (kit, clock, until) = alice_granted_usage_statistics(&dir)?;
        let (handle, alice) = listen(&kit, Some("alice"))?;
        let (_other, witness) = listen(&kit, Some("alice"))?;
        next_of(&alice, "usage_statistics")?;
        assert_eq!(next_of(&witness, "usage_statistics")?.status, Status::Granted);
        handle.unregister()?;
        clock.set(until)?;
        assert_eq!(next_of(&witness, "usage_statistics")?.status, Status::Expired);
        assert!(alice.try_iter().all(|c| c.status != Status::Expired), "nothing after unregister");
        Ok(())
    }
}
