//! `ConsentStore`: the durable ledger plus the in-memory gate. Writes are serialised, committed
//! in one SQLite transaction each (event rows and current state together), then published as a
//! new immutable snapshot. Checks read the current snapshot without I/O or locks.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwap;
use rusqlite::{Connection, Transaction, TransactionBehavior};
use serde::{Deserialize, Serialize};

use crate::chain::{self, ChainBreak, Verifier, GENESIS};
use crate::clock::{Clock, SystemClock, Timestamp};
use crate::db;
use crate::error::{invalid, Error, Result};
use crate::gate::{CategoryStatus, Decision, OsRecord, Snapshot};
use crate::input::{check_scope, check_subject};
use crate::model::{Action, ChildrenRule, LegalBasis, OsPermission, OsState, Source, Status};
use crate::observer::{CommitHook, ConsentObserver, Registration, Registry, StatusChange, Watch};
use crate::policy::Policy;
use crate::receipt::Receipt;
use crate::schema::{self, OpenMode};
use crate::state::{status_of, SubjectState};

/// One decision to record: who, which category, what, where it came from, and optionally one item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionInput {
    /// The subject (account id).
    pub subject: String,
    /// The category id.
    pub category: String,
    /// One of the five decision actions.
    pub action: Action,
    /// A single item (e.g. a contact id) for per-item consent.
    #[serde(default)]
    pub scope: Option<String>,
    /// Where it came from.
    pub source: Source,
}

impl DecisionInput {
    /// A decision on a whole category.
    pub fn new(subject: &str, category: &str, action: Action, source: Source) -> Self {
        DecisionInput { subject: subject.into(), category: category.into(), action, scope: None, source }
    }

    /// The same decision for one item.
    pub fn with_scope(mut self, scope: &str) -> Self {
        self.scope = Some(scope.into());
        self
    }
}

pub(crate) struct Ledger {
    pub(crate) conn: Connection,
    head_seq: u64,
    head_hash: String,
    pub(crate) erasure_key: String,
}

/// The consent store of one app on one device. Thread-safe: share it behind an `Arc`.
pub struct ConsentStore {
    _open_file: OpenFile,
    path: PathBuf,
    policy: Arc<Policy>,
    clock: Arc<dyn Clock>,
    snapshot: ArcSwap<Snapshot>,
    ledger: Mutex<Option<Ledger>>,
    registry: Arc<Registry>,
}

/// A write in progress: appends sealed events inside one transaction and tracks the state they make.
pub(crate) struct WriteTx<'a> {
    pub(crate) conn: &'a Connection,
    pub(crate) policy: &'a Policy,
    pub(crate) now: Timestamp,
    pub(crate) base: &'a Snapshot,
    pub(crate) erasure_key: &'a str,
    next_seq: u64,
    prev_hash: String,
    subjects: BTreeMap<String, SubjectState>,
    removed: BTreeSet<String>,
    os: Vec<(OsPermission, OsRecord)>,
    receipts: Vec<Receipt>,
}

impl<'a> WriteTx<'a> {
    /// The subject's state as this write leaves it so far.
    pub(crate) fn subject(&self, subject: &str) -> Option<&SubjectState> {
        if self.removed.contains(subject) {
            return None;
        }
        self.subjects.get(subject).or_else(|| self.base.subjects.get(subject).map(|s| &**s))
    }

    /// A receipt skeleton for this policy at this time; `append` seals it.
    pub(crate) fn draft(&self, action: Action, source: Source) -> Receipt {
        Receipt::blank(action, source, &self.policy.id, &self.policy.version, self.now)
    }

    /// Seals, stores and applies one event.
    pub(crate) fn append(&mut self, mut r: Receipt) -> Result<Receipt> {
        if r.id.is_empty() {
            r.id = uuid::Uuid::new_v4().to_string();
        }
        r.seq = self.next_seq;
        chain::seal(&mut r, &self.prev_hash);
        db::insert_event(self.conn, &r)?;
        if let Some(subject) = r.subject.clone() {
            let base = self.subject(&subject).cloned().unwrap_or_default();
            self.removed.remove(&subject);
            self.subjects.entry(subject).or_insert(base).apply(&r);
        }
        if let (Some(p), Some(state)) = (r.permission, r.os_state) {
            self.os.push((p, OsRecord { state, since: r.at }));
        }
        self.next_seq += 1;
        self.prev_hash = r.hash.clone();
        self.receipts.push(r.clone());
        Ok(r)
    }

    /// Drops a subject's current state (erasure).
    pub(crate) fn remove_subject(&mut self, subject: &str) {
        self.subjects.remove(subject);
        self.removed.insert(subject.to_string());
    }
}

/// Files open read-write in this process. One `ConsentStore` per file: a second one would keep
/// its own snapshot (and the Kotlin/Swift caches on it) that the first one's withdrawals never reach.
static OPEN_FILES: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

/// This store's claim on its file; released when the store is dropped.
struct OpenFile(Option<PathBuf>);

impl OpenFile {
    fn claim(path: &Path) -> Result<OpenFile> {
        if path.as_os_str() == ":memory:" {
            return Ok(OpenFile(None));
        }
        let key = std::fs::canonicalize(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
        if !lock(&OPEN_FILES).insert(key.clone()) {
            return Err(Error::StoreUnavailable {
                path: path.to_path_buf(),
                why: "it is already open in this process: share that ConsentStore (a second one would not see its writes)".into(),
            });
        }
        Ok(OpenFile(Some(key)))
    }
}

impl Drop for OpenFile {
    fn drop(&mut self) {
        if let Some(key) = self.0.take() {
            lock(&OPEN_FILES).remove(&key);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl ConsentStore {
    /// Opens (creating if needed) the store at `path` for `policy`, on the system clock.
    pub fn open(path: impl AsRef<Path>, policy: Policy) -> Result<ConsentStore> {
        Self::open_with(path, Arc::new(policy), Arc::new(SystemClock), OpenMode::ReadWrite)
    }

    /// Opens the store with an explicit clock and mode. Errors: missing (read-only), unreadable,
    /// not a ConsentKit file, newer schema, or another policy id.
    pub fn open_with(path: impl AsRef<Path>, policy: Arc<Policy>, clock: Arc<dyn Clock>, mode: OpenMode) -> Result<ConsentStore> {
        let path = path.as_ref().to_path_buf();
        let conn = schema::open(&path, mode)?;
        let open_file = if mode == OpenMode::ReadWrite { OpenFile::claim(&path)? } else { OpenFile(None) };
        let stored_policy = db::meta(&conn, "policy_id")?;
        let mut erasure_key = db::meta(&conn, "erasure_key")?;
        match (&stored_policy, mode) {
            (Some(stored), _) if *stored != policy.id => {
                return Err(Error::PolicyMismatch { path, stored: stored.clone(), given: policy.id.clone() })
            }
            (None, OpenMode::ReadWrite) => {
                let key = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
                let tx = Transaction::new_unchecked(&conn, TransactionBehavior::Immediate)?;
                db::set_meta(&tx, "policy_id", &policy.id)?;
                db::set_meta(&tx, "erasure_key", &key)?;
                tx.commit()?;
                erasure_key = Some(key);
            }
            _ => {}
        }
        // Append after the recorded head even if rows were cut off, so a truncation stays visible.
        let (head_seq, head_hash) = match (db::head(&conn)?, db::last_event(&conn)?) {
            (Some(head), Some(last)) if last.0 > head.0 => last,
            (Some(head), _) => head,
            (None, Some(last)) => last,
            (None, None) => (0, GENESIS.to_string()),
        };
        let mut snapshot = Snapshot::empty(policy.clone());
        snapshot.subjects = db::load_subjects(&conn)?;
        snapshot.os = db::load_os(&conn)?;
        log::info!(
            "consentkit: store opened ({mode:?}, schema version {}, {head_seq} events, {} subjects)",
            crate::schema::LATEST,
            snapshot.subjects.len()
        );
        let ledger = Ledger { conn, head_seq, head_hash, erasure_key: erasure_key.unwrap_or_default() };
        Ok(ConsentStore {
            _open_file: open_file,
            path,
            policy,
            clock,
            snapshot: ArcSwap::from_pointee(snapshot),
            ledger: Mutex::new(Some(ledger)),
            registry: Arc::new(Registry::default()),
        })
    }

    /// Opens the store, or, if that fails, returns a closed store whose gate denies every
    /// consent-gated feature with `store_unavailable` and whose writes fail. Never fails itself;
    /// [`ConsentStore::unavailable`] tells the app what went wrong. The damaged file is left as it is.
    pub fn open_fail_closed(path: impl AsRef<Path>, policy: Arc<Policy>, clock: Arc<dyn Clock>) -> ConsentStore {
        match Self::open_with(path.as_ref(), policy.clone(), clock.clone(), OpenMode::ReadWrite) {
            Ok(store) => store,
            Err(e) => {
                log::error!("consentkit: store unavailable, failing closed: {e}");
                let mut snapshot = Snapshot::empty(policy.clone());
                snapshot.unavailable = Some(e.to_string());
                ConsentStore {
                    _open_file: OpenFile(None),
                    path: path.as_ref().to_path_buf(),
                    policy,
                    clock,
                    snapshot: ArcSwap::from_pointee(snapshot),
                    ledger: Mutex::new(None),
                    registry: Arc::new(Registry::default()),
                }
            }
        }
    }

    /// Moves a damaged store file (and its `-wal`/`-shm`) aside to `<path>.corrupt-<millis>` so the
    /// app can start afresh and keep the damaged file for inspection. Returns the new path.
    pub fn quarantine(path: impl AsRef<Path>, now: Timestamp) -> Result<PathBuf> {
        let path = path.as_ref();
        let target = PathBuf::from(format!("{}.corrupt-{}", path.display(), now.millis()));
        for suffix in ["", "-wal", "-shm"] {
            let from = PathBuf::from(format!("{}{suffix}", path.display()));
            if from.exists() {
                let to = PathBuf::from(format!("{}{suffix}", target.display()));
                std::fs::rename(&from, &to).map_err(|source| Error::Io { path: from.clone(), source })?;
            }
        }
        log::warn!("consentkit: damaged store quarantined to {target:?}");
        Ok(target)
    }

    /// Why the store is closed, or `None` when it is healthy.
    pub fn unavailable(&self) -> Option<String> {
        self.snapshot.load().unavailable.clone()
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The policy in force.
    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }

    /// The store's clock reading.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The current immutable snapshot (lock-free).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    // ----- the gate (in memory, no I/O, no lock) -----

    /// May `feature` run for `subject` now? See [`Snapshot::check`].
    pub fn check(&self, subject: &str, feature: &str, scope: Option<&str>) -> Result<Decision> {
        self.snapshot.load().check(subject, feature, scope, self.clock.now())
    }

    /// One category's status for a subject.
    pub fn status(&self, subject: &str, category: &str) -> Result<CategoryStatus> {
        self.snapshot.load().status(subject, category, self.clock.now())
    }

    /// Every category's status for a subject, in policy order.
    pub fn statuses(&self, subject: &str) -> Result<Vec<CategoryStatus>> {
        self.snapshot.load().statuses(subject, self.clock.now())
    }

    /// Should the app show the consent prompt for this category now?
    pub fn should_ask(&self, subject: &str, category: &str) -> Result<bool> {
        self.snapshot.load().should_ask(subject, category, self.clock.now())
    }

    /// The device's current state of an OS permission.
    pub fn os_state(&self, permission: OsPermission) -> OsState {
        self.snapshot.load().os_state(permission)
    }

    // ----- writes -----

    /// Runs `build` in one immediate transaction; commits, publishes the new snapshot, runs the
    /// commit hooks and queues observer notifications, in that order, before returning.
    /// An error anywhere rolls everything back: nothing is written, nothing is published.
    pub(crate) fn write<T>(&self, build: impl FnOnce(&mut WriteTx) -> Result<T>) -> Result<(T, Vec<Receipt>)> {
        let mut guard = lock(&self.ledger);
        let ledger = guard.as_mut().ok_or_else(|| Error::Closed(self.unavailable().unwrap_or_default()))?;
        let base = self.snapshot.load_full();
        let now = self.clock.now();
        let tx = Transaction::new_unchecked(&ledger.conn, TransactionBehavior::Immediate)?;
        let mut w = WriteTx {
            conn: &tx,
            policy: &self.policy,
            now,
            base: &base,
            erasure_key: &ledger.erasure_key,
            next_seq: ledger.head_seq + 1,
            prev_hash: ledger.head_hash.clone(),
            subjects: BTreeMap::new(),
            removed: BTreeSet::new(),
            os: Vec::new(),
            receipts: Vec::new(),
        };
        let value = build(&mut w)?;
        let WriteTx { subjects, removed, os, receipts, next_seq, prev_hash, .. } = w;
        if receipts.is_empty() {
            return Ok((value, receipts));
        }
        let last_seq = next_seq - 1;
        for (subject, state) in &subjects {
            db::put_subject(&tx, subject, state, last_seq)?;
        }
        for subject in &removed {
            db::delete_subject(&tx, subject)?;
        }
        for (permission, record) in &os {
            db::put_os(&tx, *permission, *record, last_seq)?;
        }
        db::set_meta(&tx, "head_seq", &last_seq.to_string())?;
        db::set_meta(&tx, "head_hash", &prev_hash)?;
        tx.commit()?;
        ledger.head_seq = last_seq;
        ledger.head_hash = prev_hash;

        let mut next = (*base).clone();
        let touched: BTreeSet<String> = subjects.keys().chain(removed.iter()).cloned().collect();
        for subject in &removed {
            next.subjects.remove(subject);
        }
        for (subject, state) in subjects {
            next.subjects.insert(subject, Arc::new(state));
        }
        for (permission, record) in os {
            next.os.insert(permission, record);
        }
        next.generation += 1;
        let changes = status_changes(&base, &next, &touched, now);
        let generation = next.generation;
        self.snapshot.store(Arc::new(next));
        self.registry.committed(generation);
        self.registry.dispatch(&changes);
        drop(guard);
        Ok((value, receipts))
    }

    /// Records one decision. Validated first; an invalid one writes nothing.
    pub fn record(&self, decision: &DecisionInput) -> Result<Receipt> {
        let (_, mut receipts) = self.write(|w| decide(w, decision))?;
        receipts.pop().ok_or_else(|| Error::Corrupt("a decision produced no event".into()))
    }

    /// Records several decisions in one transaction: all of them, or (on any error) none.
    pub fn record_batch(&self, decisions: &[DecisionInput]) -> Result<Vec<Receipt>> {
        let (_, receipts) = self.write(|w| decisions.iter().try_for_each(|d| decide(w, d)))?;
        Ok(receipts)
    }

    /// Records the device's OS permission state (device-wide: every subject). Returns the event,
    /// or `None` if the state did not change (repeated reports are not history).
    pub fn set_os_permission(&self, permission: OsPermission, state: OsState) -> Result<Option<Receipt>> {
        let (_, mut receipts) = self.write(|w| {
            if w.base.os.get(&permission).map(|r| r.state) == Some(state) {
                return Ok(());
            }
            let mut r = w.draft(Action::OsPermission, Source::OsSettings);
            r.permission = Some(permission);
            r.os_state = Some(state);
            w.append(r).map(|_| ())
        })?;
        Ok(receipts.pop())
    }

    /// Marks (or unmarks) a subject as under the policy's age of digital consent.
    pub fn set_under_age(&self, subject: &str, under_age: bool, source: Source) -> Result<Receipt> {
        check_subject(subject)?;
        check_caller_source(source)?;
        let (_, mut receipts) = self.write(|w| {
            let mut r = w.draft(Action::AgeStatus, source);
            r.subject = Some(subject.to_string());
            r.detail = Some(serde_json::json!({ "under_age": under_age }).to_string());
            w.append(r).map(|_| ())
        })?;
        receipts.pop().ok_or_else(|| Error::Corrupt("no event".into()))
    }

    /// Appends an `expire` event for every grant whose lifetime has ended, so history shows it.
    /// (Checks deny expired grants at their expiry time whether or not this has run.)
    pub fn record_expiries(&self) -> Result<Vec<Receipt>> {
        let (_, receipts) = self.write(|w| {
            let mut due = Vec::new();
            for (subject, state) in &w.base.subjects {
                for (category, cs) in &state.categories {
                    if cs.status == Status::Granted && cs.valid_until.is_some_and(|t| t <= w.now) {
                        due.push((subject.clone(), category.clone(), cs.purpose_version));
                    }
                }
            }
            due.sort();
            for (subject, category, purpose_version) in due {
                let mut r = w.draft(Action::Expire, Source::System);
                r.subject = Some(subject);
                r.category = Some(category);
                r.purpose_version = Some(purpose_version);
                w.append(r)?;
            }
            Ok(())
        })?;
        Ok(receipts)
    }

    // ----- observers -----

    /// Registers a listener for status changes of one subject or all. It is called once per
    /// category at registration with the current state, then after each commit that changes a status.
    pub fn observe(&self, watch: Watch, observer: Arc<dyn ConsentObserver>) -> Registration {
        let snapshot = &self.snapshot;
        let clock = &self.clock;
        self.registry.observe(watch, observer, |watch| {
            let snap = snapshot.load_full();
            let now = clock.now();
            let subjects: Vec<String> = match watch {
                Watch::Subject(s) => vec![s.clone()],
                Watch::All => {
                    let mut all: Vec<String> = snap.subjects.keys().cloned().collect();
                    all.sort();
                    all
                }
            };
            let mut initial = Vec::new();
            for subject in subjects {
                for c in snap.statuses(&subject, now).unwrap_or_default() {
                    initial.push(StatusChange {
                        subject: subject.clone(),
                        category: c.category,
                        status: c.status,
                        since: c.since,
                        generation: snap.generation,
                    });
                }
            }
            (snap.generation, initial)
        })
    }

    /// Registers a hook called synchronously after every commit, before the write returns.
    /// It must be quick and must not write to the store.
    pub fn on_commit(&self, hook: Arc<dyn CommitHook>) -> Registration {
        self.registry.hook(hook)
    }

    // ----- reads from the ledger -----

    /// Runs `f` on the ledger connection (reads that need SQLite: history, export, verify).
    pub(crate) fn with_ledger<T>(&self, f: impl FnOnce(&Ledger) -> Result<T>) -> Result<T> {
        let guard = lock(&self.ledger);
        let ledger = guard.as_ref().ok_or_else(|| Error::Closed(self.unavailable().unwrap_or_default()))?;
        f(ledger)
    }

    /// A subject's history, oldest first, with the device's OS permission changes interleaved.
    pub fn history(&self, subject: &str) -> Result<Vec<Receipt>> {
        check_subject(subject)?;
        self.with_ledger(|l| db::subject_history(&l.conn, subject))
    }

    /// Walks the whole hash chain. `Ok(n)`: n events checked and intact; `Err(Error::Tampered)` names
    /// the first broken sequence number.
    pub fn verify(&self) -> Result<u64> {
        self.verify_with_progress(&mut |_, _| {})
    }

    /// [`ConsentStore::verify`], calling `progress(rows checked, head sequence number)` every
    /// 4096 rows (for a progress bar; the walk streams, so memory does not grow with history).
    pub fn verify_with_progress(&self, progress: &mut dyn FnMut(u64, u64)) -> Result<u64> {
        self.with_ledger(|l| {
            let mut verifier = Verifier::default();
            let mut broken: Option<ChainBreak> = None;
            let mut rows = 0u64;
            db::for_each_chain_row(&l.conn, |row| match verifier.push(row) {
                Ok(()) => {
                    rows += 1;
                    if rows.is_multiple_of(4096) {
                        progress(rows, l.head_seq);
                    }
                    true
                }
                Err(b) => {
                    broken = Some(b);
                    false
                }
            })?;
            if let Some(b) = broken {
                return Err(Error::Tampered(b));
            }
            verifier.finish(db::head(&l.conn)?).map_err(Error::Tampered)
        })
    }
}

/// The statuses that differ between two snapshots for the touched subjects.
fn status_changes(before: &Snapshot, after: &Snapshot, touched: &BTreeSet<String>, now: Timestamp) -> Vec<StatusChange> {
    let mut changes = Vec::new();
    for subject in touched {
        for category in &after.policy.categories {
            let old = status_of(category, before.subjects.get(subject).and_then(|s| s.categories.get(&category.id)), now);
            let state = after.subjects.get(subject).and_then(|s| s.categories.get(&category.id));
            let new = status_of(category, state, now);
            if old != new {
                let since = state.map(|s| s.effective_since(category, now));
                changes.push(StatusChange {
                    subject: subject.clone(),
                    category: category.id.clone(),
                    status: new,
                    since,
                    generation: after.generation,
                });
            }
        }
    }
    changes
}

fn check_caller_source(source: Source) -> Result<()> {
    match source {
        Source::Import | Source::System => Err(invalid("source", source.as_str(), "is set by the SDK itself, not by callers")),
        _ => Ok(()),
    }
}

/// Validates one decision against the policy and the subject's state, then appends it.
fn decide(w: &mut WriteTx, d: &DecisionInput) -> Result<()> {
    check_subject(&d.subject)?;
    if let Some(scope) = &d.scope {
        check_scope(scope)?;
    }
    let category = w.policy.category(&d.category)?;
    if !d.action.is_decision() {
        return Err(Error::ReservedAction(d.action.to_string()));
    }
    check_caller_source(d.source)?;
    let not_applicable = |hint: &'static str| Error::NotApplicable {
        action: d.action.to_string(),
        category: category.id.clone(),
        basis: category.legal_basis.to_string(),
        hint,
    };
    match (category.legal_basis, d.action) {
        (LegalBasis::Consent, Action::Grant | Action::Refuse | Action::Withdraw) => {}
        (LegalBasis::Consent, _) => return Err(not_applicable(" (consent is refused or withdrawn; objection is for legitimate interest)")),
        (LegalBasis::LegitimateInterest, Action::Object | Action::WithdrawObjection) => {}
        (LegalBasis::LegitimateInterest, _) => {
            return Err(not_applicable(" (no consent is asked: record an objection or withdraw_objection instead)"))
        }
        _ => return Err(not_applicable(" (no consent is needed and there is no right to object)")),
    }
    if d.scope.is_some() && category.legal_basis != LegalBasis::Consent {
        return Err(invalid("scope", d.scope.as_deref().unwrap_or_default(), "only consent decisions take a scope"));
    }
    if d.action == Action::Grant {
        if d.source == Source::Support {
            return Err(Error::GrantBySupport { subject: d.subject.clone(), category: category.id.clone() });
        }
        if w.subject(&d.subject).is_some_and(|s| s.under_age) {
            let age = w.policy.age_of_digital_consent;
            match w.policy.children {
                ChildrenRule::NotServed => {
                    return Err(Error::ChildrenNotServed { subject: d.subject.clone(), policy: w.policy.id.clone(), age })
                }
                ChildrenRule::GuardianConsent if d.source != Source::Guardian => {
                    return Err(Error::UnderAge { subject: d.subject.clone(), category: category.id.clone(), age })
                }
                _ => {}
            }
        }
    }
    let mut r = w.draft(d.action, d.source);
    r.subject = Some(d.subject.clone());
    r.category = Some(category.id.clone());
    r.scope = d.scope.clone();
    r.purpose_version = Some(category.purpose_version);
    r.valid_until = match (d.action, &d.scope) {
        (Action::Grant, _) => w.policy.consent_lifetime.map(|p| w.now.plus(p)),
        (Action::Refuse, None) => w.policy.reask_after_refusal.map(|p| w.now.plus(p)),
        _ => None,
    };
    w.append(r)?;
    Ok(())
}
