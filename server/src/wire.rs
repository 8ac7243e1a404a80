//! The wire formats shared by the server and the SDK side (the support tool): the batch a device
//! sends, the server's reply, the signed head, error bodies, and the offline check of a signed head
//! against a device's chain. Built without the `server` feature too, so the CLI links no server code.

use consentkit_core::chain::{self, ChainRow, RowContent};
use consentkit_core::{Receipt, Timestamp};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The format tag of a batch (the core's: devices build batches with `ConsentStore::sync_batch`).
pub use consentkit_core::sync_client::BATCH_FORMAT;
/// The format tag of a signed head.
pub const SIGNED_HEAD_FORMAT: &str = "consentkit-signed-head/1";
/// The most receipts one batch may hold.
pub use consentkit_core::sync_client::MAX_BATCH_RECEIPTS;

/// What a device sends to `POST /v1/devices/{device}/batches`: receipts exactly as
/// `ConsentStore::pending_sync` returns them, oldest first, for one device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    /// Always [`BATCH_FORMAT`].
    pub format: String,
    /// The device the receipts come from (must match the URL and the device's token).
    pub device: String,
    /// The receipts, in increasing `seq`. Gaps are allowed only where an erasure or purge
    /// record of the same batch claims the missing sequence numbers.
    pub receipts: Vec<Receipt>,
}

impl Batch {
    /// A batch of `receipts` from `device`.
    pub fn new(device: &str, receipts: Vec<Receipt>) -> Batch {
        Batch { format: BATCH_FORMAT.into(), device: device.into(), receipts }
    }
}

/// The head of a device's chain as stored by the server, signed with the server's ed25519 key.
/// Deterministic: the same head always carries the same signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedHead {
    /// Always [`SIGNED_HEAD_FORMAT`].
    pub format: String,
    /// The device whose chain this is.
    pub device: String,
    /// The sequence number of the head (what the device passes to `ack_sync`).
    pub seq: u64,
    /// The link hash of the event at `seq`.
    pub hash: String,
    /// [`key_id`] of the signing key.
    pub key_id: String,
    /// Hex ed25519 signature over [`SignedHead::message`].
    pub signature: String,
}

impl SignedHead {
    /// The signed bytes: a tag, then device, seq and hash, NUL-separated.
    pub fn message(device: &str, seq: u64, hash: &str) -> Vec<u8> {
        format!("consentkit-signed-head-v1\0{device}\0{seq}\0{hash}").into_bytes()
    }

    /// Signs a head.
    pub fn sign(key: &SigningKey, device: &str, seq: u64, hash: &str) -> SignedHead {
        let signature = key.sign(&SignedHead::message(device, seq, hash));
        SignedHead {
            format: SIGNED_HEAD_FORMAT.into(),
            device: device.into(),
            seq,
            hash: hash.into(),
            key_id: key_id(&key.verifying_key()),
            signature: chain::hex(&signature.to_bytes()),
        }
    }

    /// Checks the signature with the server's public key alone.
    pub fn verify_signature(&self, key: &VerifyingKey) -> Result<(), String> {
        if self.format != SIGNED_HEAD_FORMAT {
            return Err(format!("unknown format '{}' (expected '{SIGNED_HEAD_FORMAT}')", self.format));
        }
        let bytes = unhex(&self.signature).ok_or_else(|| "the signature is not hex".to_string())?;
        let bytes: [u8; 64] = bytes.try_into().map_err(|_| "the signature is not 64 bytes".to_string())?;
        key.verify(&SignedHead::message(&self.device, self.seq, &self.hash), &Signature::from_bytes(&bytes))
            .map_err(|_| format!("the signature does not verify with key {}: the head was not signed by this server", key_id(key)))
    }
}

/// A short name of a public key: the first 8 bytes of its SHA-256, hex.
pub fn key_id(key: &VerifyingKey) -> String {
    chain::hex(&Sha256::digest(key.as_bytes())[..8])
}

/// Parses a public key from 64 hex characters.
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, String> {
    let bytes = unhex(text.trim()).ok_or_else(|| "the public key is not hex".to_string())?;
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| "the public key is not 32 bytes (64 hex characters)".to_string())?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| "the public key is not a valid ed25519 point".to_string())
}

/// Decodes lower- or upper-case hex.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

/// What ingest did with a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IngestStatus {
    /// Every receipt is stored (or was already: a replay).
    Stored,
    /// Stored, but some receipts belong to subjects erased on the server: they were not stored,
    /// and the device must erase those subjects locally (`erased_subjects`).
    SubjectErased,
}

/// The reply to an accepted batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestReply {
    /// `stored` or `subject_erased`.
    pub status: IngestStatus,
    /// The batch's last receipt as stored, signed: pass `head.seq` to `ack_sync`.
    pub head: SignedHead,
    /// Receipts newly stored.
    pub stored: u64,
    /// Receipts the server already had (a replay).
    pub duplicates: u64,
    /// Receipts of erased subjects, not stored.
    pub suppressed: u64,
    /// Subjects of this batch that were erased on the server (the device should erase them too).
    pub erased_subjects: Vec<String>,
    /// Events of this device that the server deleted because an erasure record of this batch
    /// (an erasure made on the device) lists them. 0 from a server that predates the field.
    #[serde(default)]
    pub erased_on_server: u64,
    /// This device's sequence numbers of events erased on the server that its erasure records
    /// have not claimed yet: erase their subjects locally (`ConsentStore::apply_sync_reply`).
    #[serde(default)]
    pub erase_events: Vec<u64>,
    /// A warning, not an error: the category ids of this batch's events that the server's policy
    /// does not know (the device runs a newer or another policy), sorted. Those events are stored
    /// and keep the chain whole, but they count for nothing in the server's answers (they allow
    /// nothing) until the server's policy has the category; support views list them apart.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unknown_categories: Vec<String>,
}

/// The body of every error reply (4xx and 5xx).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A stable snake_case code (`gap`, `fork`, `forged_receipt`, `malformed`, `unauthorized`, ...).
    pub error: String,
    /// One sentence naming the problem.
    pub message: String,
    /// For `gap` and `fork`: the sequence number the server expects next from this device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_seq: Option<u64>,
    /// True when the same request may succeed later (the database was unavailable).
    pub retryable: bool,
}

/// The result of [`verify_receipt`]: how many chain rows were checked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReceiptCheck {
    /// The device named by the signed head.
    pub device: String,
    /// The signed sequence number.
    pub seq: u64,
    /// Chain rows checked (from 1 up to the signed seq).
    pub chain_events: u64,
    /// The key that signed it.
    pub key_id: String,
}

/// Checks, offline, that `head` is signed by `key` and that the device chain `rows` (from seq 1,
/// as `ConsentStore::chain_rows` gives them) is intact and holds `head.hash` at `head.seq`.
pub fn verify_receipt(head: &SignedHead, key: &VerifyingKey, rows: Vec<ChainRow>) -> Result<ReceiptCheck, String> {
    head.verify_signature(key)?;
    let mut verifier = chain::Verifier::default();
    let mut at_seq: Option<String> = None;
    for row in rows {
        if row.seq > head.seq {
            break;
        }
        if row.seq == head.seq {
            at_seq = Some(row.hash.clone());
        }
        verifier.push(row).map_err(|b| format!("the device chain does not hold: {b}"))?;
    }
    let Some(hash) = at_seq else {
        return Err(format!("the device chain ends before the signed seq {}", head.seq));
    };
    if hash != head.hash {
        return Err(format!("the device's event {} has hash {hash}, the server signed {}: not the same chain", head.seq, head.hash));
    }
    let checked = verifier.finish(None).map_err(|b| format!("the device chain does not hold: {b}"))?;
    Ok(ReceiptCheck { device: head.device.clone(), seq: head.seq, chain_events: checked, key_id: key_id(key) })
}

/// Chain rows from full receipts (e.g. the receipts a device sent, concatenated from seq 1).
pub fn rows_of(receipts: &[Receipt]) -> Vec<ChainRow> {
    receipts
        .iter()
        .map(|r| ChainRow {
            seq: r.seq,
            content: RowContent::Event(Box::new(r.clone())),
            content_hash: r.content_hash.clone(),
            prev_hash: r.prev_hash.clone(),
            hash: r.hash.clone(),
        })
        .collect()
}

/// A timestamp in the replies.
pub fn now() -> Timestamp {
    let millis = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    Timestamp(millis)
}
