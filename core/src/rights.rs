//! The subject's rights: access and portability (`export`, `import`, GDPR Arts. 15 and 20),
//! erasure (Art. 17) and the retention purge. Erasure and purge leave tombstones so the chain
//! stays verifiable, and zero the removed bytes on disk (`secure_delete` + WAL truncation).

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::chain::{hex, receipt_is_sealed};
use crate::clock::Period;
use crate::clock::Timestamp;
use crate::db;
use crate::error::{Error, Result};
use crate::gate::{CategoryStatus, OsRecord};
use crate::input::{check_stored_subject, check_subject_in};
use crate::model::{Action, LegalBasis, OsState, Source};
use crate::os_permission::OsPermission;
use crate::receipt::Receipt;
use crate::state::{status_of, SubjectState};
use crate::store::ConsentStore;
use crate::validate;

/// The format tag of an export document.
pub const EXPORT_FORMAT: &str = "consentkit-export/1";

/// How many times an export reads a record that keeps changing under it before it gives up
/// with [`Error::Busy`].
const EXPORT_ATTEMPTS: u32 = 8;

/// A category as described in an export.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportedCategory {
    pub id: String,
    pub title: String,
    pub legal_basis: LegalBasis,
    pub purpose_version: u32,
    pub retention: Period,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_permission: Option<OsPermission>,
}

/// The policy part of an export.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportedPolicy {
    pub id: String,
    pub version: String,
    pub categories: Vec<ExportedCategory>,
}

/// One OS permission in an export.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportedOs {
    pub permission: OsPermission,
    pub state: OsState,
    pub since: Timestamp,
}

/// The portable copy of one subject's consent record (stable field names, RFC 3339 UTC times).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportDocument {
    /// Always [`EXPORT_FORMAT`].
    pub format: String,
    /// When the export was made.
    pub exported_at: Timestamp,
    /// The subject.
    pub subject: String,
    /// The policy in force at export.
    pub policy: ExportedPolicy,
    /// Marked under the age of digital consent.
    pub under_age: bool,
    /// Each category's status at export.
    pub state: Vec<CategoryStatus>,
    /// Every event of the subject, oldest first, with its receipt hashes.
    pub history: Vec<Receipt>,
    /// The device's OS permissions at export.
    pub os_permissions: Vec<ExportedOs>,
}

/// What an erasure did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasureReport {
    /// The erasure record (holds a keyed hash of the subject, never the subject).
    pub receipt: Receipt,
    /// How many events were erased.
    pub erased_events: u64,
    /// True if a reader kept the WAL from being checkpointed within the busy timeout: the erased
    /// content is gone from the database and from every read, but old page images remain in the
    /// WAL until the store finishes the scrub at its next opportunity (the next write, probe,
    /// open, or [`ConsentStore::finish_scrub`]). False: no byte of it remains on disk.
    pub scrub_pending: bool,
}

/// What a purge did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurgeReport {
    /// How many events were removed.
    pub removed_events: u64,
    /// The purge record, if anything was removed.
    pub receipt: Option<Receipt>,
    /// As [`ErasureReport::scrub_pending`]: removed content may remain in the WAL for now.
    pub scrub_pending: bool,
}

impl ConsentStore {
    /// The subject's portable record: policy, current state, full history with receipts, OS states.
    pub fn export(&self, subject: &str) -> Result<ExportDocument> {
        self.export_with_progress(subject, &mut |_, _| {})
    }

    /// [`ConsentStore::export`], calling `progress(events read, events)` as the history is read
    /// (one indexed query: once it is in).
    pub fn export_with_progress(&self, subject: &str, progress: &mut dyn FnMut(u64, u64)) -> Result<ExportDocument> {
        // A subject an older version stored under an id new input refuses is still exported.
        check_stored_subject(subject)?;
        let policy = self.policy();
        let now = self.now();
        // The history is read from the ledger and the state from the snapshot: a write landing
        // between the two (another thread or process) would give a document whose stated state
        // its own history does not give, which every import refuses. So the state must be the
        // fold of the history read, or the export reads again.
        let mut attempts = 0;
        let (history, state, snap) = loop {
            let history = self.with_ledger(|l| db::subject_events(&l.conn, subject))?;
            progress(history.len() as u64, history.len() as u64);
            let state = self.view_waiting().statuses(subject, now)?;
            let snap = self.snapshot();
            let folded = SubjectState::fold(&history);
            let consistent = folded.under_age == snap.subjects.get(subject).is_some_and(|s| s.under_age)
                && state
                    .iter()
                    .all(|s| policy.category(&s.category).is_ok_and(|c| status_of(c, folded.categories.get(&c.id), now) == s.status));
            if consistent {
                break (history, state, snap);
            }
            attempts += 1;
            if attempts >= EXPORT_ATTEMPTS {
                return Err(Error::Busy(format!("exporting: the record kept changing during {EXPORT_ATTEMPTS} reads")));
            }
        };
        // Ordered by permission id. Each permission comes once and there are a few of them:
        // inserting in place costs a few bytes of library, where a sort costs about 5 KB.
        let mut os_permissions: Vec<ExportedOs> = Vec::new();
        for (p, OsRecord { state, since }) in snap.os.iter() {
            let at = os_permissions.partition_point(|o| o.permission < *p);
            os_permissions.insert(at, ExportedOs { permission: *p, state: *state, since: *since });
        }
        Ok(ExportDocument {
            format: EXPORT_FORMAT.into(),
            exported_at: now,
            subject: subject.into(),
            policy: ExportedPolicy {
                id: policy.id.clone(),
                version: policy.version.clone(),
                categories: policy
                    .categories
                    .iter()
                    .map(|c| ExportedCategory {
                        id: c.id.clone(),
                        title: c.title.clone(),
                        legal_basis: c.legal_basis,
                        purpose_version: c.purpose_version,
                        retention: c.retention,
                        os_permission: c.os_permission,
                    })
                    .collect(),
            },
            under_age: snap.subjects.get(subject).is_some_and(|s| s.under_age),
            state,
            history,
            os_permissions,
        })
    }

    /// [`ConsentStore::export`] as pretty JSON.
    pub fn export_json(&self, subject: &str) -> Result<String> {
        serde_json::to_string_pretty(&self.export(subject)?).map_err(|e| Error::Corrupt(e.to_string()))
    }

    /// Restores an exported history into this store (new device, reinstall). Events keep their
    /// ids and times and are appended with source `import` (the original source kept in `detail`).
    /// Each event replays through the same validation as a live write ([`crate::validate`]):
    /// action against legal basis, no grant by support, the under-age rules, scope rules and
    /// limits; its lifetime and purpose version come from this store's policy, never from the file,
    /// and it never changes this device's OS permission state (the document's `os_permissions` are
    /// for the reader only). Rejected whole, writing nothing and naming the first bad event, if the
    /// document is malformed, from another policy, has a receipt that does not verify or that a
    /// live write would refuse, does not fold to its stated state, or is already here.
    pub fn import_json(&self, json: &str) -> Result<Vec<Receipt>> {
        self.import_json_with_progress(json, &mut |_, _| {})
    }

    /// [`ConsentStore::import_json`], calling `progress(events replayed, events)` as it goes.
    pub fn import_json_with_progress(&self, json: &str, progress: &mut dyn FnMut(u64, u64)) -> Result<Vec<Receipt>> {
        let doc: ExportDocument =
            crate::json_path::from_str(json).map_err(|(path, why)| Error::Import(format!("malformed document at {path}: {why}")))?;
        self.import_with_progress(&doc, progress)
    }

    /// See [`ConsentStore::import_json`].
    pub fn import(&self, doc: &ExportDocument) -> Result<Vec<Receipt>> {
        self.import_with_progress(doc, &mut |_, _| {})
    }

    /// [`ConsentStore::import`], calling `progress(events replayed, events)` every 1024 events
    /// and at the end.
    pub fn import_with_progress(&self, doc: &ExportDocument, progress: &mut dyn FnMut(u64, u64)) -> Result<Vec<Receipt>> {
        let bad = |why: String| Err(Error::Import(why));
        if doc.format != EXPORT_FORMAT {
            return bad(format!("unknown format '{}' (expected '{EXPORT_FORMAT}')", doc.format.escape_debug()));
        }
        let policy = self.policy().clone();
        if doc.policy.id != policy.id {
            return bad(format!("document is for policy '{}', this store is for '{}'", doc.policy.id.escape_debug(), policy.id));
        }
        // The strict rule for a subject new to this store; a subject it already holds (an older
        // version's `" alice"`) takes the stored-id rule, as every operation on it does.
        check_subject_in(&doc.subject, || self.snapshot().subjects.get(&doc.subject).is_some())
            .map_err(|e| Error::Import(e.to_string()))?;
        let mut seen = HashSet::new();
        let mut last_seq = 0;
        for r in &doc.history {
            // The document's text is escaped in every message (a forged one may carry control
            // characters to the terminal or log that shows the error).
            let at = format!("receipt seq {} (id {})", r.seq, r.id.escape_debug());
            if !receipt_is_sealed(r) {
                return bad(format!("{at} does not verify: its hash does not match its content"));
            }
            if r.subject.as_deref() != Some(doc.subject.as_str()) {
                return bad(format!("{at} belongs to another subject"));
            }
            if r.policy_id != policy.id {
                return bad(format!("{at} is for policy '{}'", r.policy_id.escape_debug()));
            }
            if let Some(c) = &r.category {
                policy.category(c).map_err(|e| Error::Import(format!("{at}: {e}")))?;
            }
            if !(r.action.is_decision() || matches!(r.action, Action::Expire | Action::AgeStatus)) {
                return bad(format!("{at} has action '{}', which is not a subject's event", r.action));
            }
            if r.seq <= last_seq || !seen.insert(r.id.clone()) {
                return bad(format!("{at} is out of order or repeated"));
            }
            last_seq = r.seq;
        }
        let folded = SubjectState::fold(&doc.history);
        if folded.under_age != doc.under_age {
            return bad(format!("under_age {} does not match the history", doc.under_age));
        }
        // The stated state must be what the document's own history gives under the policy it was
        // exported with (legal basis and purpose version as the document states them): a backup
        // from before an app update restores, and the replay below reads it under this policy.
        for stated in &doc.state {
            let current = policy.category(&stated.category).map_err(|e| Error::Import(e.to_string()))?;
            let mut category = current.clone();
            if let Some(exported) = doc.policy.categories.iter().find(|c| c.id == current.id) {
                category.legal_basis = exported.legal_basis;
                category.purpose_version = exported.purpose_version;
            }
            let derived = status_of(&category, folded.categories.get(&category.id), doc.exported_at);
            if derived != stated.status {
                return bad(format!("state of '{}' is '{}' but its history gives '{}'", stated.category, stated.status, derived));
            }
        }
        let (_, receipts) = self.write(|w| {
            if w.subject(&doc.subject).is_some() {
                return Err(Error::Import(format!("subject '{}' already has records in this store", doc.subject)));
            }
            // An event this store erased is not brought back by a document from before the
            // erasure (a replay would restore what the subject withdrew and asked to forget).
            let erased = erased_event_ids(w.conn)?;
            // Every event replays through the same validation as a live write, against the state
            // the replay has built so far; the first bad one rejects the whole document.
            let mut after = Timestamp(i64::MIN);
            let total = doc.history.len() as u64;
            for (i, r) in doc.history.iter().enumerate() {
                if i % 1024 == 0 {
                    progress(i as u64, total);
                }
                let at = format!("receipt seq {} (id {})", r.seq, r.id.escape_debug());
                if db::event_by_id(w.conn, &r.id)?.is_some() {
                    return Err(Error::Import(format!("event {} is already in this store", r.id.escape_debug())));
                }
                if let Some(erasure) = erased.get(r.id.as_str()) {
                    return Err(Error::Import(format!(
                        "{at} was erased from this store (erasure record seq {erasure}): a document from before an erasure does not restore it"
                    )));
                }
                let event = validate::imported(w.policy, w.subject(&doc.subject), w.now, w.clock_reading, &doc.subject, r, after)
                    .map_err(|e| Error::Import(format!("{at}: {e}")))?;
                after = event.at;
                w.append(event)?;
            }
            progress(total, total);
            Ok(())
        })?;
        Ok(receipts)
    }

    /// The keyed hash that stands for a subject in erasure records: support can confirm an
    /// erasure from the subject id without the record holding the id.
    pub fn subject_ref(&self, subject: &str) -> Result<String> {
        self.with_ledger(|l| Ok(subject_ref(&l.erasure_key, subject)))
    }

    /// Erases a subject for good: events become tombstones (content zeroed on disk), the state is
    /// deleted, the WAL is checkpointed and truncated (a reader in the way: the report says
    /// `scrub_pending` and the store finishes the scrub later). Leaves an erasure record holding a keyed
    /// hash of the subject and the erased events' ids (so the app's backend can erase its copies).
    /// Afterwards the subject reads as never asked.
    pub fn erase(&self, subject: &str, source: Source) -> Result<ErasureReport> {
        // A subject an older version stored under an id new input refuses can still be erased.
        check_stored_subject(subject)?;
        if !Source::ERASURE.contains(&source) {
            let allowed: Vec<&str> = Source::ERASURE.iter().map(|s| s.as_str()).collect();
            let why = format!("an erasure comes from the subject or support: source must be one of {}", allowed.join(", "));
            return Err(crate::error::invalid("source", source.as_str(), why));
        }
        let (count, mut receipts) = self.write(|w| {
            let events = db::subject_seqs(w.conn, subject)?;
            // The stored-id rule is for a subject the store holds; an id it does not hold (nothing
            // to erase) takes the strict rule, so a bad id records no erasure.
            crate::input::check_subject_in(subject, || !events.is_empty() || w.subject(subject).is_some())?;
            let seqs: Vec<u64> = events.iter().map(|(s, _)| *s).collect();
            let ids: Vec<&str> = events.iter().map(|(_, id)| id.as_str()).collect();
            let mut r = w.draft(Action::Erasure, source);
            r.detail = Some(
                serde_json::json!({
                    "subject_ref": subject_ref(w.erasure_key, subject),
                    "removed_seqs": seqs,
                    "removed_event_ids": ids,
                })
                .to_string(),
            );
            let record = w.append(r)?;
            db::remove_events(w.conn, &seqs, record.seq)?;
            w.remove_subject(subject);
            Ok(seqs.len() as u64)
        })?;
        // Committed: from here on nothing may turn this into an error.
        let scrub_pending = !self.scrub_after_removal();
        if let Ok(reference) = self.subject_ref(subject) {
            log::info!("consentkit: erased {count} events of subject ref {}", &reference[..16.min(reference.len())]);
        }
        let receipt = receipts.pop().ok_or_else(|| Error::Internal("an erasure committed without its record".into()))?;
        Ok(ErasureReport { receipt, erased_events: count, scrub_pending })
    }

    /// Erasure records for a subject (confirms "an erasure happened on DATE").
    pub fn erasures_of(&self, subject: &str) -> Result<Vec<Receipt>> {
        let reference = self.subject_ref(subject)?;
        let erasures = self.with_ledger(|l| db::unattributed_events(&l.conn, Action::Erasure))?;
        let matches = |r: &Receipt| r.detail_field("subject_ref").and_then(|v| v.as_str().map(String::from)) == Some(reference.clone());
        Ok(erasures.into_iter().filter(matches).collect())
    }

    /// Removes events older than their category's retention period counted from the subject's
    /// last interaction with that category, keeping the event that establishes each current status
    /// and every event not yet acknowledged by the app's backend. The chain stays verifiable, and
    /// each purged subject's state becomes the fold of its remaining history (a per-item grant
    /// whose event was purged is no longer in force: no record, no allow).
    pub fn purge(&self) -> Result<PurgeReport> {
        self.purge_with_progress(&mut |_, _| {})
    }

    /// [`ConsentStore::purge`], calling `progress(events looked at, candidate events)` every 1024
    /// candidates and at the end.
    pub fn purge_with_progress(&self, progress: &mut dyn FnMut(u64, u64)) -> Result<PurgeReport> {
        let acked = self.sync_acked()?;
        let (removed, mut receipts) = self.write(|w| {
            let mut seqs = Vec::new();
            let mut subjects = std::collections::BTreeSet::new();
            let candidates = db::retention_candidates(w.conn, acked)?;
            let total = candidates.len() as u64;
            for (i, (seq, subject, category, _)) in candidates.into_iter().enumerate() {
                if i % 1024 == 0 {
                    progress(i as u64, total);
                }
                let (Some(state), Ok(cat)) = (w.subject(&subject), w.policy.category(&category)) else { continue };
                let Some(cs) = state.categories.get(&category) else { continue };
                // Keep the event that establishes the current status; a record of items only
                // (no status decided) keeps nothing.
                let establishes = seq == cs.seq && cs.status != crate::model::Status::NotAsked;
                if !establishes && cs.last_interaction.plus(cat.retention) <= w.now {
                    seqs.push(seq);
                    subjects.insert(subject);
                }
            }
            progress(total, total);
            if seqs.is_empty() {
                return Ok(0);
            }
            let mut r = w.draft(Action::Purge, Source::System);
            r.detail = Some(serde_json::json!({ "removed_seqs": seqs }).to_string());
            let record = w.append(r)?;
            db::remove_events(w.conn, &seqs, record.seq)?;
            // The state stays the fold of what remains (items whose grants were purged are gone).
            for subject in &subjects {
                w.refold_subject(subject)?;
            }
            Ok(seqs.len() as u64)
        })?;
        let scrub_pending = removed > 0 && !self.scrub_after_removal();
        log::info!("consentkit: retention purge removed {removed} events");
        Ok(PurgeReport { removed_events: removed, receipt: receipts.pop(), scrub_pending })
    }
}

/// The ids of the events this store's erasure records removed, each with the record's seq.
fn erased_event_ids(conn: &rusqlite::Connection) -> Result<HashMap<String, u64>> {
    let mut ids = HashMap::new();
    for record in db::unattributed_events(conn, Action::Erasure)? {
        let removed = record.detail_field("removed_event_ids");
        for id in removed.as_ref().and_then(|v| v.as_array()).into_iter().flatten().filter_map(|v| v.as_str()) {
            ids.insert(id.to_string(), record.seq);
        }
    }
    Ok(ids)
}

fn subject_ref(key: &str, subject: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"consentkit-subject-ref-v1\0");
    h.update(key.as_bytes());
    h.update(b"\0");
    h.update(subject.as_bytes());
    hex(&h.finalize())
}
