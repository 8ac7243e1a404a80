//! Ingest: a device's batch is checked with the core's own encoding (every content and link hash
//! recomputed), compared with what the server holds for that device (replay, gap, fork), and
//! stored in one transaction. A refused batch writes nothing.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::OnceLock;

use axum::http::StatusCode;
use consentkit_core::chain::{claimed_seqs, content_hash, link_hash, GENESIS};
use consentkit_core::{Action, Receipt, Source, Timestamp};
use serde_json::Value;

use crate::api::App;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::sql;
use crate::wire::{Batch, IngestReply, IngestStatus, SignedHead, BATCH_FORMAT, MAX_BATCH_RECEIPTS};

/// The field names of a receipt as the core serializes it (unknown fields are refused).
fn receipt_fields() -> &'static HashSet<String> {
    static FIELDS: OnceLock<HashSet<String>> = OnceLock::new();
    FIELDS.get_or_init(|| {
        let blank = Receipt::blank(Action::Grant, Source::System, "", "", Timestamp(0));
        match serde_json::to_value(blank) {
            Ok(Value::Object(map)) => map.keys().cloned().collect(),
            _ => HashSet::new(),
        }
    })
}

/// Parses a batch body; the error names the JSON path of the bad value.
pub fn parse_batch(body: &[u8]) -> Result<Batch, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| ApiError::malformed(format!("the body is not valid JSON: {e}")))?;
    if let Some(receipts) = value.get("receipts").and_then(Value::as_array) {
        for (i, r) in receipts.iter().enumerate() {
            if let Some(fields) = r.as_object() {
                if let Some(unknown) = fields.keys().find(|k| !receipt_fields().contains(*k)) {
                    return Err(ApiError::malformed(format!("unknown field '{}' at $.receipts[{i}]", short(unknown))));
                }
            }
        }
    }
    serde_path_to_error::deserialize(value).map_err(|e| ApiError::malformed(format!("malformed batch at $.{}: {}", e.path(), e.inner())))
}

/// A value as named in an error: at most 64 characters, control characters escaped.
pub fn short(text: &str) -> String {
    let head: String = text.chars().take(64).flat_map(char::escape_default).collect();
    if text.chars().count() > 64 {
        format!("{head}… ({} bytes)", text.len())
    } else {
        head
    }
}

/// A device id from a URL: 1 to 128 printable characters.
pub fn check_device(device: &str) -> Result<(), ApiError> {
    if device.is_empty() || device.chars().count() > 128 || device.chars().any(|c| c.is_control()) {
        return Err(ApiError::invalid(format!("device id '{}' must be 1 to 128 printable characters", short(device))));
    }
    Ok(())
}

/// How far ahead of the server's clock a device's clock may run before the times of its events
/// are not believed where they decide whether an event came after an erasure of its subject.
pub const CLOCK_AHEAD_TOLERANCE_MS: i64 = 5 * 60 * 1000;

fn forged(message: String) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "forged_receipt", message)
}

fn chain_error(code: &'static str, message: String, expected: u64) -> ApiError {
    let mut e = ApiError::new(StatusCode::CONFLICT, code, message);
    e.expected_seq = Some(expected);
    e
}

/// Checks a batch on its own: format, device, size, every hash, order and links inside the batch.
pub fn validate(batch: &Batch, device: &str, caller: &Caller) -> Result<(), ApiError> {
    if batch.format != BATCH_FORMAT {
        return Err(ApiError::invalid(format!("unknown batch format '{}' (expected '{BATCH_FORMAT}')", short(&batch.format))));
    }
    if caller.device.as_deref() != Some(device) {
        return Err(ApiError::forbidden(format!("token '{}' may not send batches for device '{}'", caller.name, short(device))));
    }
    if batch.device != device {
        return Err(ApiError::invalid(format!(
            "the batch is for device '{}' but was sent to device '{}'",
            short(&batch.device),
            short(device)
        )));
    }
    if batch.receipts.is_empty() {
        return Err(ApiError::invalid("the batch holds no receipts"));
    }
    if batch.receipts.len() > MAX_BATCH_RECEIPTS {
        return Err(ApiError::invalid(format!(
            "the batch holds {} receipts; at most {MAX_BATCH_RECEIPTS} are taken",
            batch.receipts.len()
        )));
    }
    let claimed: BTreeSet<u64> =
        batch.receipts.iter().filter(|r| matches!(r.action, Action::Erasure | Action::Purge)).flat_map(claimed_seqs).collect();
    let mut prev: Option<&Receipt> = None;
    for r in &batch.receipts {
        let at = format!("receipt seq {} (id {})", r.seq, short(&r.id));
        if r.seq == 0 {
            return Err(ApiError::invalid(format!("{at}: sequence numbers start at 1")));
        }
        if content_hash(r) != r.content_hash {
            return Err(forged(format!("{at} does not verify: its content_hash does not match its content")));
        }
        if link_hash(&r.prev_hash, &r.content_hash) != r.hash {
            return Err(forged(format!("{at} does not verify: its hash is not SHA-256(prev_hash || content_hash)")));
        }
        if r.seq == 1 && r.prev_hash != GENESIS {
            return Err(forged(format!("{at} is the first event but does not start from the genesis hash")));
        }
        check_texts(r, &at)?;
        // A receipt's subject is one the device's store already holds: the stored-id rule, so a
        // store an older version wrote with `" alice"` still syncs (and so does everything after
        // it in its chain, other users' withdrawals included).
        if let Some(s) = r.subject.as_deref() {
            consentkit_core::input::check_stored_subject(s).map_err(|e| ApiError::invalid(format!("{at}: {e}")))?;
        }
        if let Some(p) = prev {
            if r.seq <= p.seq {
                return Err(ApiError::invalid(format!("{at} comes after seq {}: receipts must be in increasing seq", p.seq)));
            }
            if r.seq == p.seq + 1 && r.prev_hash != p.hash {
                return Err(forged(format!("{at} does not link to receipt seq {} of the same batch", p.seq)));
            }
            if let Some(missing) = (p.seq + 1..r.seq).find(|s| !claimed.contains(s)) {
                return Err(chain_error(
                    "gap",
                    format!("{at} follows seq {}: seq {missing} is missing and no erasure or purge record of the batch claims it", p.seq),
                    missing,
                ));
            }
        }
        prev = Some(r);
    }
    Ok(())
}

/// Longest id, category id, policy id or policy version a receipt may carry (the core's
/// `policy::MAX_ID_BYTES`: a catalog's ids and version are at most that long, and a receipt id is
/// a UUID).
pub const MAX_RECEIPT_ID_BYTES: usize = consentkit_core::policy::MAX_ID_BYTES;

/// What a device's store can hold in a receipt's text fields, and PostgreSQL's `text` can store:
/// a sealed receipt whose hashes verify may still carry what no core writes (a NUL, which
/// PostgreSQL refuses, a terminal escape, a scope of 100 kB). Refused naming the field and its
/// value (escaped, shortened), before anything is written. The detail (the core's own JSON) may
/// be long, but never holds a NUL.
fn check_texts(r: &Receipt, at: &str) -> Result<(), ApiError> {
    let bad = |field: &str, value: &str, why: String| ApiError::invalid(format!("{at}: its {field} '{}' {why}", short(value)));
    // `free_text`: a catalog's version is free text (the core checks only its length), so only a NUL
    // is refused in it: refusing a device's batch holds back its later withdrawals too.
    let field = |field: &str, value: &str, may_be_empty: bool, free_text: bool| -> Result<(), ApiError> {
        if value.is_empty() && !may_be_empty {
            return Err(bad(field, value, "may not be empty".into()));
        }
        if value.len() > MAX_RECEIPT_ID_BYTES {
            return Err(bad(field, value, format!("is longer than {MAX_RECEIPT_ID_BYTES} bytes")));
        }
        if value.contains('\0') || (!free_text && value.chars().any(char::is_control)) {
            return Err(bad(field, value, "contains control characters".into()));
        }
        Ok(())
    };
    field("id", &r.id, false, false)?;
    if let Some(c) = r.category.as_deref() {
        field("category", c, false, false)?;
    }
    field("policy_id", &r.policy_id, true, false)?;
    field("policy_version", &r.policy_version, true, true)?;
    if let Some(scope) = r.scope.as_deref() {
        // The stored-id rule, as for subjects: a scope an older version's store holds syncs.
        consentkit_core::input::check_stored_scope(scope).map_err(|e| ApiError::invalid(format!("{at}: {e}")))?;
    }
    if let Some(detail) = r.detail.as_deref().filter(|d| d.contains('\0')) {
        return Err(bad("detail", detail, "contains a NUL character".into()));
    }
    Ok(())
}

struct Columns {
    subject_key: Vec<String>,
    seq: Vec<i64>,
    has_subject: Vec<bool>,
    id: Vec<String>,
    category: Vec<Option<String>>,
    action: Vec<String>,
    scope: Vec<Option<String>>,
    source: Vec<String>,
    policy_id: Vec<String>,
    policy_version: Vec<String>,
    purpose_version: Vec<Option<i32>>,
    at: Vec<i64>,
    valid_until: Vec<Option<i64>>,
    permission: Vec<Option<String>>,
    os_state: Vec<Option<String>>,
    detail: Vec<Option<String>>,
    content_hash: Vec<String>,
    prev_hash: Vec<String>,
    hash: Vec<String>,
}

impl Columns {
    fn new() -> Columns {
        Columns {
            subject_key: vec![],
            seq: vec![],
            has_subject: vec![],
            id: vec![],
            category: vec![],
            action: vec![],
            scope: vec![],
            source: vec![],
            policy_id: vec![],
            policy_version: vec![],
            purpose_version: vec![],
            at: vec![],
            valid_until: vec![],
            permission: vec![],
            os_state: vec![],
            detail: vec![],
            content_hash: vec![],
            prev_hash: vec![],
            hash: vec![],
        }
    }

    fn push(&mut self, key: String, r: &Receipt) {
        self.subject_key.push(key);
        self.seq.push(r.seq as i64);
        self.has_subject.push(r.subject.is_some());
        self.id.push(r.id.clone());
        self.category.push(r.category.clone());
        self.action.push(r.action.as_str().into());
        self.scope.push(r.scope.clone());
        self.source.push(r.source.as_str().into());
        self.policy_id.push(r.policy_id.clone());
        self.policy_version.push(r.policy_version.clone());
        self.purpose_version.push(r.purpose_version.map(|v| v as i32));
        self.at.push(r.at.millis());
        self.valid_until.push(r.valid_until.map(|t| t.millis()));
        self.permission.push(r.permission.map(|p| p.as_str().into()));
        self.os_state.push(r.os_state.map(|s| s.as_str().into()));
        self.detail.push(r.detail.clone());
        self.content_hash.push(r.content_hash.clone());
        self.prev_hash.push(r.prev_hash.clone());
        self.hash.push(r.hash.clone());
    }
}

/// Stores a validated batch in one transaction and returns the signed head of its last receipt.
pub async fn store(app: &App, device: &str, batch: &Batch) -> Result<IngestReply, ApiError> {
    let now = crate::wire::now().millis();
    let devkey = app.keys.device_key(device);
    let mut client = app.pools.ingest.get().await?;
    let tx = client.transaction().await?;
    tx.execute(sql::HEAD_INIT, &[&devkey, &device, &GENESIS, &now]).await?;
    let head = tx.query_one(sql::HEAD_LOCK, &[&devkey, &device]).await?;
    let (head_seq, head_hash): (i64, String) = (head.get(0), head.get(1));
    let head_seq = head_seq as u64;
    let receipts = &batch.receipts;
    let first = receipts[0].seq;
    let last = &receipts[receipts.len() - 1];

    let mut duplicates = 0u64;
    if first <= head_seq {
        let upto = last.seq.min(head_seq);
        let rows = tx.query(sql::CHAIN_RANGE, &[&devkey, &device, &(first as i64), &(upto as i64)]).await?;
        let stored: HashMap<u64, String> = rows.iter().map(|r| (r.get::<_, i64>(0) as u64, r.get(1))).collect();
        for r in receipts.iter().take_while(|r| r.seq <= head_seq) {
            if stored.get(&r.seq) != Some(&r.hash) {
                return Err(chain_error(
                    "fork",
                    format!(
                        "receipt seq {} differs from the event the server holds for device '{}' at seq {} (a fork); \
                         the server holds this device up to seq {head_seq} and expects seq {} next",
                        r.seq,
                        short(device),
                        r.seq,
                        head_seq + 1
                    ),
                    head_seq + 1,
                ));
            }
            duplicates += 1;
        }
    }
    let new: Vec<&Receipt> = receipts.iter().filter(|r| r.seq > head_seq).collect();
    if let Some(n0) = new.first() {
        if n0.seq == head_seq + 1 {
            if n0.prev_hash != head_hash {
                return Err(chain_error(
                    "fork",
                    format!("receipt seq {} does not link to the event the server holds at seq {head_seq} (a fork)", n0.seq),
                    head_seq + 1,
                ));
            }
        } else {
            let claimed: BTreeSet<u64> =
                receipts.iter().filter(|r| matches!(r.action, Action::Erasure | Action::Purge)).flat_map(claimed_seqs).collect();
            if (head_seq + 1..n0.seq).any(|s| !claimed.contains(&s)) {
                return Err(chain_error(
                    "gap",
                    format!(
                        "receipt seq {} leaves a gap: the server holds device '{}' up to seq {head_seq} and expects seq {} next",
                        n0.seq,
                        short(device),
                        head_seq + 1
                    ),
                    head_seq + 1,
                ));
            }
        }
    }

    // Subjects erased on the server: their events up to the erasure are not stored again.
    let mut subject_keys: HashMap<&str, String> = HashMap::new();
    for r in receipts {
        if let Some(s) = r.subject.as_deref() {
            subject_keys.entry(s).or_insert_with(|| app.keys.subject_key(s));
        }
    }
    let mut keys: Vec<&String> = subject_keys.values().collect();
    keys.sort();
    keys.dedup();
    for key in &keys {
        tx.execute(sql::SUBJECT_LOCK, &[key]).await?; // in one order: no deadlock between ingests
    }
    let mut erased_at: HashMap<String, i64> = HashMap::new();
    if !keys.is_empty() {
        for row in tx.query(sql::ERASED_AT, &[&keys]).await? {
            erased_at.insert(row.get(0), row.get(1));
        }
    }
    // An event dated after the moment it reached the server (a clock ahead, past the tolerance)
    // may have been made before the erasure: it is not believed and not stored (fail closed).
    let erased = |r: &Receipt| {
        r.subject
            .as_deref()
            .and_then(|s| erased_at.get(&subject_keys[s]))
            .is_some_and(|t| r.at.millis() <= *t || r.at.millis() > now + CLOCK_AHEAD_TOLERANCE_MS)
    };
    let mut erased_subjects: BTreeSet<String> = BTreeSet::new();
    for r in receipts.iter().filter(|r| erased(r)) {
        erased_subjects.extend(r.subject.clone());
    }

    let mut columns = Columns::new();
    let mut erased_on_server = 0u64;
    let mut suppressed = 0u64;
    let mut seen_subjects: BTreeSet<String> = BTreeSet::new();
    for r in &new {
        if erased(r) {
            suppressed += 1;
            continue;
        }
        let key = match r.subject.as_deref() {
            Some(s) => {
                seen_subjects.insert(subject_keys[s].clone());
                subject_keys[s].clone()
            }
            None => devkey.clone(),
        };
        columns.push(key, r);
    }
    if !new.is_empty() {
        let c = &columns;
        if !c.seq.is_empty() {
            tx.execute(
                sql::EVENTS_INSERT,
                &[
                    &c.subject_key,
                    &device,
                    &now,
                    &c.seq,
                    &c.has_subject,
                    &c.id,
                    &c.category,
                    &c.action,
                    &c.scope,
                    &c.source,
                    &c.policy_id,
                    &c.policy_version,
                    &c.purpose_version,
                    &c.at,
                    &c.valid_until,
                    &c.permission,
                    &c.os_state,
                    &c.detail,
                    &c.content_hash,
                    &c.prev_hash,
                    &c.hash,
                ],
            )
            .await?;
        }
        let seqs: Vec<i64> = new.iter().map(|r| r.seq as i64).collect();
        let content: Vec<&str> = new.iter().map(|r| r.content_hash.as_str()).collect();
        let prevs: Vec<&str> = new.iter().map(|r| r.prev_hash.as_str()).collect();
        let hashes: Vec<&str> = new.iter().map(|r| r.hash.as_str()).collect();
        let event_subjects: Vec<Option<&str>> = new.iter().map(|r| r.subject.as_deref().map(|s| subject_keys[s].as_str())).collect();
        tx.execute(sql::CHAIN_INSERT, &[&devkey, &device, &seqs, &content, &prevs, &hashes, &event_subjects]).await?;
        // An erasure made on the device removes the server's copies of the events it erased
        // (this device's only), in this transaction.
        for r in new.iter().filter(|r| r.action == Action::Erasure && !claimed_seqs(r).is_empty()) {
            let row = tx.query_one(sql::DEVICE_ERASE, &[&devkey, &device, &(r.seq as i64)]).await?;
            erased_on_server += row.get::<_, i64>(0) as u64;
        }
        // Erasure notices that this batch's erasure records answer are done.
        // (A purge record answers too: what the device purged it cannot erase any more.)
        let claimed: BTreeSet<i64> = new
            .iter()
            .filter(|r| matches!(r.action, Action::Erasure | Action::Purge))
            .flat_map(|r| claimed_seqs(r))
            .map(|s| s as i64)
            .collect();
        if !claimed.is_empty() {
            for row in tx.query(sql::DEVICE_ERASURES_OF, &[&devkey, &device]).await? {
                let (id, seqs): (String, Vec<i64>) = (row.get(0), row.get(1));
                let left: Vec<i64> = seqs.iter().copied().filter(|s| !claimed.contains(s)).collect();
                if left.is_empty() {
                    tx.execute(sql::DEVICE_ERASURE_DONE, &[&devkey, &device, &id]).await?;
                } else if left.len() < seqs.len() {
                    tx.execute(sql::DEVICE_ERASURE_SET, &[&devkey, &device, &id, &left]).await?;
                }
            }
        }
        if !seen_subjects.is_empty() {
            let subjects: Vec<&String> = seen_subjects.iter().collect();
            tx.execute(sql::SUBJECT_DEVICES_INSERT, &[&subjects, &device, &now]).await?;
        }
        for r in new.iter().filter(|r| r.action == Action::OsPermission) {
            if let (Some(p), Some(s)) = (r.permission, r.os_state) {
                tx.execute(sql::DEVICE_OS_UPSERT, &[&devkey, &device, &p.as_str(), &s.as_str(), &r.at.millis(), &(r.seq as i64)]).await?;
            }
        }
        let n_last = new[new.len() - 1];
        tx.execute(sql::HEAD_SET, &[&devkey, &device, &(n_last.seq as i64), &n_last.hash, &now]).await?;
    }
    let erase_events = erasures_in(&tx, &devkey, device).await?;
    tx.commit().await?;
    let unknown_categories = unknown_categories(&app.policy, receipts.iter().filter(|r| !erased(r)));
    if !unknown_categories.is_empty() {
        // The count only: a category id comes from the device and could hold anything.
        tracing::warn!(
            categories = unknown_categories.len(),
            "a batch holds events of categories the server's policy does not know; stored, they count for nothing"
        );
    }
    Ok(IngestReply {
        status: if erased_subjects.is_empty() { IngestStatus::Stored } else { IngestStatus::SubjectErased },
        head: SignedHead::sign(app.keys.signing(), device, last.seq, &last.hash),
        stored: columns.seq.len() as u64,
        duplicates,
        suppressed,
        erased_subjects: erased_subjects.into_iter().collect(),
        erased_on_server,
        erase_events,
        unknown_categories,
    })
}

/// The category ids of `receipts` that `policy` does not have, sorted and once each.
pub fn unknown_categories<'r>(policy: &consentkit_core::Policy, receipts: impl Iterator<Item = &'r Receipt>) -> Vec<String> {
    let ids: BTreeSet<&str> = receipts.filter_map(|r| r.category.as_deref()).filter(|c| policy.category(c).is_err()).collect();
    ids.into_iter().map(String::from).collect()
}

/// The device's pending erasure notices, as one sorted list of its sequence numbers.
async fn erasures_in(tx: &deadpool_postgres::Transaction<'_>, devkey: &str, device: &str) -> Result<Vec<u64>, ApiError> {
    let mut seqs: BTreeSet<u64> = BTreeSet::new();
    for row in tx.query(sql::DEVICE_ERASURES_OF, &[&devkey, &device]).await? {
        seqs.extend(row.get::<_, Vec<i64>>(1).into_iter().map(|s| s as u64));
    }
    Ok(seqs.into_iter().collect())
}

/// [`erasures_in`] in a transaction of its own (`GET /v1/devices/{device}/erasures`).
pub async fn pending_erasures(app: &App, device: &str) -> Result<Vec<u64>, ApiError> {
    let devkey = app.keys.device_key(device);
    let mut client = app.pools.ingest.get().await?;
    let tx = client.transaction().await?;
    let seqs = erasures_in(&tx, &devkey, device).await?;
    tx.commit().await?;
    Ok(seqs)
}
