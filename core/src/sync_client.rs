//! The device side of the sync protocol with the ConsentKit server (`server/`, README "Server"):
//! the batch a device sends, and what it does with the server's reply. The support tool and the
//! Kotlin/Swift bindings all use this, so every client applies a reply the same way, in the same
//! order: first erase locally what the server erased, then acknowledge. (An ack first could lose
//! the erasure if the app stopped in between; erasing first only costs a resend.)
//!
//! The SDK still does no networking: the app POSTs [`SyncBatch::json`] to
//! `/v1/devices/{device}/batches` with the device's token and hands the 200 reply's body to
//! [`ConsentStore::apply_sync_reply`]; with an empty outbox it GETs
//! `/v1/devices/{device}/erasures` and hands that body to [`ConsentStore::apply_erasure_notices`].

use std::collections::BTreeSet;

use serde::Deserialize;

use crate::chain::claimed_seqs;
use crate::error::{invalid, Error, Result};
use crate::model::{Action, Source};
use crate::receipt::Receipt;
use crate::store::ConsentStore;

/// The format tag of a batch.
pub const BATCH_FORMAT: &str = "consentkit-batch/1";
/// The most receipts one batch may hold (the server refuses more).
pub const MAX_BATCH_RECEIPTS: usize = 1000;

/// One batch of the outbox, ready to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncBatch {
    /// The device it is for.
    pub device: String,
    /// The receipts, oldest first: contiguous, or skipping only sequence numbers that an erasure
    /// or purge record of the same batch claims.
    pub receipts: Vec<Receipt>,
    /// The request body: `{"format": "consentkit-batch/1", "device", "receipts"}`.
    pub json: String,
}

impl SyncBatch {
    /// The last receipt's sequence number (what the server's reply must acknowledge).
    pub fn last_seq(&self) -> u64 {
        self.receipts.last().map_or(0, |r| r.seq)
    }
}

/// What applying a reply did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncOutcome {
    /// The outbox is acknowledged up to here.
    pub acked_seq: u64,
    /// Receipts the server newly stored.
    pub stored: u64,
    /// Subjects erased on this device because the server had erased them.
    pub erased_subjects: Vec<String>,
    /// Events of this device the server deleted because this device's erasure records list them.
    pub erased_on_server: u64,
}

#[derive(Deserialize)]
struct Reply {
    status: String,
    head: ReplyHead,
    #[serde(default)]
    stored: u64,
    #[serde(default)]
    erased_subjects: Vec<String>,
    #[serde(default)]
    erase_events: Vec<u64>,
    #[serde(default)]
    erased_on_server: u64,
}

#[derive(Deserialize)]
struct ReplyHead {
    device: String,
    seq: u64,
    hash: String,
}

#[derive(Deserialize)]
struct Notices {
    erase_events: Vec<u64>,
}

/// The first 64 characters of a document, escaped (a control or format character shows as
/// `\u{..}`): enough to see what was handed over, never the whole document.
fn excerpt(document: &str) -> String {
    let head: String = document.chars().take(64).collect();
    let shown = crate::input::escape(&head);
    if document.chars().count() > 64 {
        format!("{shown}… ({} bytes)", document.len())
    } else {
        shown
    }
}

fn bad_reply(reply_json: &str, why: impl std::fmt::Display) -> Error {
    Error::InvalidInput { what: "sync reply", value: excerpt(reply_json), why: format!("is not the server's reply to this batch: {why}") }
}

impl ConsentStore {
    /// The next batch of the outbox for `device` (at most `limit` receipts, at most
    /// [`MAX_BATCH_RECEIPTS`]), or `None` when everything is acknowledged. Erased events are never
    /// sent (their erasure record is): where the outbox skips sequence numbers, the batch extends
    /// to the record that claims them, so the server can tell an erasure from a lost event.
    /// `device` is a URL path segment ([`crate::input::check_device`]); a `limit` of 0 is
    /// `InvalidInput` (a batch holds at least one receipt).
    pub fn sync_batch(&self, device: &str, limit: u32) -> Result<Option<SyncBatch>> {
        crate::input::check_device(device)?;
        if limit == 0 {
            return Err(invalid("batch limit", "0", format!("must be 1 to {MAX_BATCH_RECEIPTS} receipts")));
        }
        let limit = limit.min(MAX_BATCH_RECEIPTS as u32);
        let receipts = self.next_batch(limit)?;
        if receipts.is_empty() {
            return Ok(None);
        }
        let json = serde_json::json!({ "format": BATCH_FORMAT, "device": device, "receipts": receipts }).to_string();
        Ok(Some(SyncBatch { device: device.to_string(), receipts, json }))
    }

    fn next_batch(&self, limit: u32) -> Result<Vec<Receipt>> {
        let (acked, pending) = self.pending_with_cursor(limit)?;
        if pending.iter().enumerate().all(|(i, r)| r.seq == acked + 1 + i as u64) {
            return Ok(pending);
        }
        let (acked, wide) = self.pending_with_cursor(MAX_BATCH_RECEIPTS as u32)?;
        let mut missing: Vec<u64> = Vec::new();
        let mut expected = acked + 1;
        for (i, r) in wide.iter().enumerate() {
            missing.extend(expected..r.seq);
            expected = r.seq + 1;
            if matches!(r.action, Action::Erasure | Action::Purge) {
                let claimed = claimed_seqs(r);
                missing.retain(|s| !claimed.contains(s));
            }
            if missing.is_empty() && i + 1 >= pending.len() {
                return Ok(wide[..=i].to_vec());
            }
        }
        Err(Error::Corrupt(format!(
            "the outbox skips seq {} and no erasure or purge record within the next {MAX_BATCH_RECEIPTS} events claims it",
            missing.first().copied().unwrap_or(expected)
        )))
    }

    /// Applies the server's 200 reply to `batch`: erases locally every subject the server erased
    /// (those it names, and those of this device's events it lists as erased), then acknowledges
    /// the outbox up to the reply's head. A reply that does not acknowledge exactly this batch's
    /// last receipt (another device, another seq or hash, not JSON) is refused with
    /// `InvalidInput` and changes nothing.
    pub fn apply_sync_reply(&self, batch: &SyncBatch, reply_json: &str) -> Result<SyncOutcome> {
        let last = batch.receipts.last().ok_or_else(|| bad_reply(reply_json, "the batch it answers is empty"))?;
        self.apply_sync_reply_to(&batch.device, last.seq, &last.hash, reply_json)
    }

    /// [`ConsentStore::apply_sync_reply`] for a batch known by its device and its last receipt's
    /// sequence number and hash (what the platform bindings keep of a [`SyncBatch`]).
    pub fn apply_sync_reply_to(&self, device: &str, last_seq: u64, last_hash: &str, reply_json: &str) -> Result<SyncOutcome> {
        let reply: Reply = serde_json::from_str(reply_json).map_err(|e| bad_reply(reply_json, e))?;
        if reply.head.device != device || reply.head.seq != last_seq || reply.head.hash != last_hash {
            return Err(bad_reply(
                reply_json,
                format!(
                    "it acknowledges seq {} of device '{}', the batch ends at seq {last_seq} of device '{device}'",
                    reply.head.seq, reply.head.device
                ),
            ));
        }
        if reply.status != "stored" && reply.status != "subject_erased" {
            return Err(bad_reply(reply_json, format!("unknown status '{}'", crate::input::escape(&reply.status))));
        }
        let mut erased: BTreeSet<String> = reply.erased_subjects.iter().cloned().collect();
        erased.extend(self.subjects_of_events(&reply.erase_events)?);
        for subject in &erased {
            self.erase_if_present(subject)?;
        }
        self.ack_sync(reply.head.seq)?;
        Ok(SyncOutcome {
            acked_seq: reply.head.seq,
            stored: reply.stored,
            erased_subjects: erased.into_iter().collect(),
            erased_on_server: reply.erased_on_server,
        })
    }

    /// Applies the body of `GET /v1/devices/{device}/erasures` (`{"erase_events": [seq, ...]}`):
    /// erases locally the subjects of this device's events that the server erased. Returns them.
    /// Their erasure records then wait in the outbox like any event: sending them tells the
    /// server the erasure reached this device.
    pub fn apply_erasure_notices(&self, notices_json: &str) -> Result<Vec<String>> {
        let notices: Notices = serde_json::from_str(notices_json).map_err(|e| Error::InvalidInput {
            what: "erasure notices",
            value: excerpt(notices_json),
            why: format!("are not the server's notices: {e}"),
        })?;
        let subjects = self.subjects_of_events(&notices.erase_events)?;
        for subject in &subjects {
            self.erase_if_present(subject)?;
        }
        Ok(subjects.into_iter().collect())
    }

    /// The subjects of this store's events with these sequence numbers (erased ones have none).
    fn subjects_of_events(&self, seqs: &[u64]) -> Result<BTreeSet<String>> {
        if seqs.is_empty() {
            return Ok(BTreeSet::new());
        }
        self.with_ledger(|l| {
            let mut stmt = l.conn.prepare_cached("SELECT subject FROM events WHERE seq = ?1 AND subject IS NOT NULL")?;
            let mut subjects = BTreeSet::new();
            for seq in seqs {
                let Ok(seq) = i64::try_from(*seq) else { continue };
                if let Some(subject) = stmt.query_row([seq], |r| r.get::<_, String>(0)).map(Some).or_else(no_row)? {
                    subjects.insert(subject);
                }
            }
            Ok(subjects)
        })
    }

    /// Erases `subject` on the server's instruction, unless nothing of it is left here.
    fn erase_if_present(&self, subject: &str) -> Result<()> {
        let held = self.with_ledger(|l| crate::db::subject_seqs(&l.conn, subject))?;
        if held.is_empty() && !self.snapshot().subjects.contains_key(subject) {
            return Ok(());
        }
        self.erase(subject, Source::Support).map(|_| ())
    }
}

fn no_row<T>(e: rusqlite::Error) -> rusqlite::Result<Option<T>> {
    match e {
        rusqlite::Error::QueryReturnedNoRows => Ok(None),
        other => Err(other),
    }
}
