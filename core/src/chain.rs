//! Tamper evidence: every event's canonical encoding is hashed (SHA-256) and linked to the
//! previous event's hash, one chain per store. Erased and purged events leave a tombstone that
//! keeps the link hashes (not the content) and is claimed by the erasure or purge record.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use sha2::{Digest, Sha256};

use crate::model::{Action, Source};
use crate::receipt::Receipt;

/// The hash that precedes the first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 0xf) as usize] as char);
    }
    out
}

/// The 32 bytes of a hash written as [`hex`] (64 lower-case hex digits); `None` for any other text,
/// so that decoding and re-encoding gives back exactly the same text.
pub fn hash_bytes(hex: &str) -> Option<[u8; 32]> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let text = hex.as_bytes();
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in text.chunks_exact(2).enumerate() {
        out[i] = (digit(pair[0])? << 4) | digit(pair[1])?;
    }
    Some(out)
}

/// SHA-256 of the canonical encoding of a receipt's content fields (everything but the hashes).
///
/// Encoding v1: the tag `consentkit-event-v1`, then each field in declaration order as a 4-byte
/// big-endian length and its UTF-8 bytes (numbers in decimal, times as epoch milliseconds),
/// an absent field as length `0xFFFFFFFF`. Unambiguous, and stable across languages.
pub fn content_hash(r: &Receipt) -> String {
    let mut h = Sha256::new();
    h.update(b"consentkit-event-v1");
    let mut field = |value: Option<&str>| match value {
        Some(v) => {
            h.update((v.len() as u32).to_be_bytes());
            h.update(v.as_bytes());
        }
        None => h.update(u32::MAX.to_be_bytes()),
    };
    field(Some(&r.id));
    field(Some(&r.seq.to_string()));
    field(r.subject.as_deref());
    field(r.category.as_deref());
    field(Some(r.action.as_str()));
    field(r.scope.as_deref());
    field(Some(r.source.as_str()));
    field(Some(&r.policy_id));
    field(Some(&r.policy_version));
    field(r.purpose_version.map(|v| v.to_string()).as_deref());
    field(Some(&r.at.millis().to_string()));
    field(r.valid_until.map(|t| t.millis().to_string()).as_deref());
    field(r.permission.map(|p| p.as_str()));
    field(r.os_state.map(|s| s.as_str()));
    field(r.detail.as_deref());
    hex(&h.finalize())
}

/// The chain link: SHA-256 over the previous hash and this content hash (both as hex text).
pub fn link_hash(prev_hash: &str, content_hash: &str) -> String {
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(content_hash.as_bytes());
    hex(&h.finalize())
}

/// Fills `content_hash`, `prev_hash` and `hash` of a receipt appended after `prev_hash`.
pub fn seal(r: &mut Receipt, prev_hash: &str) {
    r.content_hash = content_hash(r);
    r.prev_hash = prev_hash.to_string();
    r.hash = link_hash(prev_hash, &r.content_hash);
}

/// Checks a receipt on its own: its content hash and its link hash are consistent.
pub fn receipt_is_sealed(r: &Receipt) -> bool {
    content_hash(r) == r.content_hash && link_hash(&r.prev_hash, &r.content_hash) == r.hash
}

/// One row of the chain as stored: a full event, or the tombstone an erasure or purge left.
#[derive(Clone, Debug)]
pub struct ChainRow {
    /// Stored sequence number.
    pub seq: u64,
    /// What the row holds.
    pub content: RowContent,
    /// Stored content hash.
    pub content_hash: String,
    /// The previous row's link hash ([`GENESIS`] before the first row). Not stored (schema v4):
    /// read from the row before, so a reordered or re-hashed row breaks the link check.
    pub prev_hash: String,
    /// Stored link hash.
    pub hash: String,
}

/// The content of a chain row.
#[derive(Clone, Debug)]
pub enum RowContent {
    /// A full event.
    Event(Box<Receipt>),
    /// A tombstone left by an erasure or purge (link hashes only), naming the seq of the record
    /// that removed it.
    Tombstone { removed_by: u64 },
    /// A row whose columns no longer decode (edited by hand).
    Unreadable,
}

/// The first place the chain does not hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChainBreak {
    /// The event's content no longer matches its hash (a column was edited).
    ContentMismatch { seq: u64 },
    /// The event does not link to the one before it (rows reordered, a hash edited).
    BrokenLink { seq: u64 },
    /// A sequence number is missing (a row was deleted from the middle).
    Missing { seq: u64 },
    /// The chain ends before the recorded head (rows deleted from the end).
    Truncated { seq: u64, head: u64 },
    /// The state table was derived from events up to `state_seq`, after the chain's end (rows
    /// deleted from the end and the recorded head moved back to the last row left); `seq` is the
    /// first missing one.
    StateAfterHead { seq: u64, state_seq: u64 },
    /// Events after the recorded head (rows appended outside ConsentKit, or the head moved back).
    BeyondHead { seq: u64, head: u64 },
    /// A tombstone that no erasure or purge record claims (content removed by hand).
    UnclaimedTombstone { seq: u64 },
    /// An event that an erasure or purge record claims to have removed is still (or again) there.
    RemovedEventPresent { seq: u64 },
    /// The state table (derived data) disagrees with the fold of the history; `seq` is the last
    /// event of the first subject or OS permission that differs.
    StateMismatch { seq: u64 },
    /// SQLite's own check (`PRAGMA quick_check`) finds the file damaged (a page, an index):
    /// `detail` is SQLite's first message. Not tied to an event: its `seq` is 0.
    FileDamaged { detail: String },
    /// The sealed copy of the clock's high-water mark (a `meta` row beside the chain) does not
    /// verify: it was edited by hand (a lowered mark would let a clock set back revive an expired
    /// grant). `value` is the copy as found (escaped). Not tied to an event: its `seq` is 0.
    TimeMarkEdited { value: String },
    /// The file no longer holds the chain a running store served up to its head `seq`: its head
    /// moved back, or the event at `seq` is another one. The file was rolled back or overwritten in
    /// place by another copy (an older backup restored with SQLite's backup API or `.restore`, a
    /// copy written on elsewhere): serving it would revive what the store's later events (a
    /// withdrawal that returned) changed.
    RolledBack { seq: u64 },
    /// A write's statement changed fewer rows than it writes (`what`): something in the file that
    /// is not ConsentKit's (a trigger added with the sqlite3 shell, `RAISE(IGNORE)`) made SQLite
    /// skip them without an error. The write is refused (rolled back) and the store closes, so
    /// no write returns success without being in the file. Not tied to an event: its `seq` is 0.
    WriteNotTaken { what: String },
}

impl ChainBreak {
    /// The first sequence number at which the chain fails.
    pub fn seq(&self) -> u64 {
        match *self {
            ChainBreak::ContentMismatch { seq }
            | ChainBreak::BrokenLink { seq }
            | ChainBreak::Missing { seq }
            | ChainBreak::Truncated { seq, .. }
            | ChainBreak::BeyondHead { seq, .. }
            | ChainBreak::StateAfterHead { seq, .. }
            | ChainBreak::UnclaimedTombstone { seq }
            | ChainBreak::RemovedEventPresent { seq }
            | ChainBreak::StateMismatch { seq }
            | ChainBreak::RolledBack { seq } => seq,
            ChainBreak::FileDamaged { .. } | ChainBreak::TimeMarkEdited { .. } | ChainBreak::WriteNotTaken { .. } => 0,
        }
    }
}

impl fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChainBreak::ContentMismatch { seq } => {
                write!(f, "chain broken at seq {seq}: the event's content does not match its hash (edited)")
            }
            ChainBreak::BrokenLink { seq } => {
                write!(f, "chain broken at seq {seq}: the event does not link to the one before it (reordered or re-hashed)")
            }
            ChainBreak::Missing { seq } => write!(f, "chain broken at seq {seq}: the event is missing (deleted)"),
            ChainBreak::Truncated { seq, head } => {
                write!(f, "chain broken at seq {seq}: the chain ends before its recorded head {head} (truncated)")
            }
            ChainBreak::StateAfterHead { seq, state_seq } => write!(
                f,
                "chain broken at seq {seq}: the state table records events up to seq {state_seq}, the chain ends before them (truncated)"
            ),
            ChainBreak::BeyondHead { seq, head } => {
                write!(
                    f,
                    "chain broken at seq {seq}: the event is after the recorded head {head} (appended by hand, or the head moved back)"
                )
            }
            ChainBreak::UnclaimedTombstone { seq } => {
                write!(f, "chain broken at seq {seq}: content removed without an erasure or purge record")
            }
            ChainBreak::RemovedEventPresent { seq } => {
                write!(f, "chain broken at seq {seq}: an event its erasure or purge record removed is present (restored)")
            }
            ChainBreak::StateMismatch { seq } => {
                write!(f, "state table edited: it disagrees with the history (first difference at the subject of seq {seq})")
            }
            ChainBreak::FileDamaged { detail } => write!(f, "the database file is damaged: SQLite's check says '{detail}'"),
            ChainBreak::TimeMarkEdited { value } => {
                write!(f, "the sealed copy '{value}' of the clock's high-water mark does not verify (edited)")
            }
            ChainBreak::RolledBack { seq } => write!(
                f,
                "chain broken at seq {seq}: the file no longer holds the event this store served at seq {seq} \
                 (rolled back, or overwritten in place by another copy such as an older backup)"
            ),
            ChainBreak::WriteNotTaken { what } => write!(
                f,
                "the file did not take the write of {what} (something not ConsentKit's in it, such as a trigger added by hand, \
                 skipped the rows): nothing was recorded"
            ),
        }
    }
}

/// True for the records that may claim tombstones: erasure and purge records the store wrote
/// itself (never an imported event, never any other action, whatever its `detail` says).
pub fn may_claim_tombstones(r: &Receipt) -> bool {
    match r.action {
        Action::Erasure => Source::ERASURE.contains(&r.source),
        Action::Purge => Source::PURGE.contains(&r.source),
        _ => false,
    }
}

/// Seqs an erasure or purge record claims to have removed: its `removed_seqs`, each before the
/// record itself. Empty for every other event (see [`may_claim_tombstones`]).
pub fn claimed_seqs(r: &Receipt) -> Vec<u64> {
    if !may_claim_tombstones(r) {
        return Vec::new();
    }
    r.detail.as_deref().map(removed_seqs).unwrap_or_default().into_iter().filter(|&s| s < r.seq).collect()
}

/// The `removed_seqs` list of an erasure or purge record's `detail` JSON (empty if absent or malformed).
pub fn removed_seqs(detail: &str) -> Vec<u64> {
    let value: Option<serde_json::Value> = serde_json::from_str(detail).ok();
    value
        .as_ref()
        .and_then(|v| v.get("removed_seqs"))
        .and_then(|v| v.as_array().map(|a| a.iter().filter_map(|x| x.as_u64()).collect()))
        .unwrap_or_default()
}

/// Walks chain rows in sequence order, one at a time (constant memory but for removed seqs).
#[derive(Debug)]
pub struct Verifier {
    prev: String,
    expected: u64,
    /// Tombstone seq → the seq of the record its row says removed it.
    tombstones: BTreeMap<u64, u64>,
    /// Claimed seq → the erasure or purge record claiming it.
    claimed: BTreeMap<u64, u64>,
    /// Seqs seen as full events (checked against later claims).
    live_claimed: BTreeSet<u64>,
}

impl Default for Verifier {
    fn default() -> Self {
        Verifier {
            prev: GENESIS.to_string(),
            expected: 1,
            tombstones: BTreeMap::new(),
            claimed: BTreeMap::new(),
            live_claimed: BTreeSet::new(),
        }
    }
}

impl Verifier {
    /// Checks the next row.
    pub fn push(&mut self, row: ChainRow) -> Result<(), ChainBreak> {
        if row.seq != self.expected {
            return Err(if row.seq > self.expected {
                ChainBreak::Missing { seq: self.expected }
            } else {
                ChainBreak::BrokenLink { seq: row.seq }
            });
        }
        if row.prev_hash != self.prev || link_hash(&self.prev, &row.content_hash) != row.hash {
            return Err(ChainBreak::BrokenLink { seq: row.seq });
        }
        match &row.content {
            RowContent::Event(event) => {
                if event.seq != row.seq || content_hash(event) != row.content_hash {
                    return Err(ChainBreak::ContentMismatch { seq: row.seq });
                }
                for seq in claimed_seqs(event) {
                    if !self.tombstones.contains_key(&seq) {
                        self.live_claimed.insert(seq);
                    }
                    self.claimed.insert(seq, row.seq);
                }
            }
            RowContent::Tombstone { removed_by } => {
                self.tombstones.insert(row.seq, *removed_by);
            }
            RowContent::Unreadable => return Err(ChainBreak::ContentMismatch { seq: row.seq }),
        }
        self.prev = row.hash;
        self.expected += 1;
        Ok(())
    }

    /// Ends the walk against the recorded head (seq, hash); returns how many rows were checked.
    pub fn finish(self, head: Option<(u64, String)>) -> Result<u64, ChainBreak> {
        let last = self.expected - 1;
        if let Some((head_seq, head_hash)) = head {
            if head_seq > last {
                return Err(ChainBreak::Truncated { seq: last + 1, head: head_seq });
            }
            if head_seq == last && head_hash != self.prev {
                return Err(ChainBreak::BrokenLink { seq: last });
            }
        }
        // Every tombstone is claimed by the very record its row names, and every claim is a tombstone.
        let unclaimed = self.tombstones.iter().find(|(seq, by)| self.claimed.get(seq) != Some(by)).map(|(seq, _)| *seq);
        let restored = self.live_claimed.first().copied();
        match (unclaimed, restored) {
            (Some(a), Some(b)) if b < a => Err(ChainBreak::RemovedEventPresent { seq: b }),
            (Some(seq), _) => Err(ChainBreak::UnclaimedTombstone { seq }),
            (None, Some(seq)) => Err(ChainBreak::RemovedEventPresent { seq }),
            (None, None) => Ok(last),
        }
    }
}

/// Verifies a whole chain held in memory (see [`Verifier`]).
pub fn verify(rows: impl IntoIterator<Item = ChainRow>, head: Option<(u64, String)>) -> Result<u64, ChainBreak> {
    let mut v = Verifier::default();
    for row in rows {
        v.push(row)?;
    }
    v.finish(head)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;
    use crate::model::{Action, Source};

    fn event(seq: u64, action: Action) -> Receipt {
        Receipt {
            id: format!("id-{seq}"),
            seq,
            subject: Some("alice".into()),
            category: Some("usage_statistics".into()),
            purpose_version: Some(1),
            ..Receipt::blank(action, Source::Settings, "p", "1", Timestamp(seq as i64 * 1000))
        }
    }

    fn chain(n: u64) -> Vec<ChainRow> {
        let mut prev = GENESIS.to_string();
        (1..=n)
            .map(|seq| {
                let mut e = event(seq, if seq % 2 == 0 { Action::Withdraw } else { Action::Grant });
                seal(&mut e, &prev);
                prev = e.hash.clone();
                ChainRow {
                    seq,
                    content_hash: e.content_hash.clone(),
                    prev_hash: e.prev_hash.clone(),
                    hash: e.hash.clone(),
                    content: RowContent::Event(Box::new(e)),
                }
            })
            .collect()
    }

    fn head(rows: &[ChainRow]) -> Option<(u64, String)> {
        rows.last().map(|r| (r.seq, r.hash.clone()))
    }

    #[test]
    fn intact_chain_verifies() {
        let rows = chain(5);
        let h = head(&rows);
        assert_eq!(verify(rows, h), Ok(5));
        assert_eq!(verify(Vec::new(), None), Ok(0));
    }

    #[test]
    fn each_tamper_is_found_at_its_seq() {
        let rows = chain(6);
        let h = head(&rows);
        let mut edited = rows.clone();
        if let RowContent::Event(e) = &mut edited[3].content {
            e.action = Action::Grant;
        }
        assert_eq!(verify(edited, h.clone()), Err(ChainBreak::ContentMismatch { seq: 4 }));

        let mut deleted = rows.clone();
        deleted.remove(2);
        assert_eq!(verify(deleted, h.clone()), Err(ChainBreak::Missing { seq: 3 }));

        let mut swapped = rows.clone();
        let (a, b) = (swapped[1].clone(), swapped[2].clone());
        swapped[1] = ChainRow { seq: 2, ..b };
        swapped[2] = ChainRow { seq: 3, ..a };
        assert_eq!(verify(swapped, h.clone()), Err(ChainBreak::BrokenLink { seq: 2 }));

        let mut truncated = rows.clone();
        truncated.truncate(4);
        assert_eq!(verify(truncated, h.clone()), Err(ChainBreak::Truncated { seq: 5, head: 6 }));

        let mut tomb = rows.clone();
        tomb[1].content = RowContent::Tombstone { removed_by: 6 };
        assert_eq!(verify(tomb, h), Err(ChainBreak::UnclaimedTombstone { seq: 2 }));
    }

    /// A chain of `n` events where `claimer` (at seq `n`) claims `claims`, those rows tombstoned by it.
    fn with_claim(n: u64, claimer: Receipt, claims: &[u64]) -> (Vec<ChainRow>, Option<(u64, String)>) {
        let mut rows = chain(n - 1);
        let mut e = Receipt { seq: n, detail: Some(serde_json::json!({ "removed_seqs": claims }).to_string()), ..claimer };
        seal(&mut e, &rows.last().unwrap().hash);
        rows.push(ChainRow {
            seq: n,
            content_hash: e.content_hash.clone(),
            prev_hash: e.prev_hash.clone(),
            hash: e.hash.clone(),
            content: RowContent::Event(Box::new(e)),
        });
        for seq in claims {
            rows[*seq as usize - 1].content = RowContent::Tombstone { removed_by: n };
        }
        let h = head(&rows);
        (rows, h)
    }

    #[test]
    fn only_the_stores_own_erasure_and_purge_records_claim_tombstones() {
        let erasure = Receipt { id: "x".into(), ..Receipt::blank(Action::Erasure, Source::Support, "p", "1", Timestamp(9000)) };
        let (rows, h) = with_claim(5, erasure.clone(), &[2, 3]);
        assert_eq!(verify(rows, h), Ok(5));
        let purge = Receipt { source: Source::System, action: Action::Purge, ..erasure.clone() };
        let (rows, h) = with_claim(5, purge, &[1]);
        assert_eq!(verify(rows, h), Ok(5));
        // A decision, or an "erasure" that came in by import, carrying removed_seqs claims nothing.
        for forged in [event(5, Action::Withdraw), Receipt { source: Source::Import, ..erasure.clone() }] {
            let (rows, h) = with_claim(5, forged, &[2]);
            assert_eq!(verify(rows, h), Err(ChainBreak::UnclaimedTombstone { seq: 2 }));
        }
        // A claim of a later seq is no claim; a tombstone must name its own claimer.
        let (mut rows, h) = with_claim(5, erasure.clone(), &[2]);
        rows[1].content = RowContent::Tombstone { removed_by: 4 };
        assert_eq!(verify(rows, h), Err(ChainBreak::UnclaimedTombstone { seq: 2 }));
        // An event its erasure removed, put back with its original content.
        let original = chain(5);
        let (mut rows, h) = with_claim(5, erasure, &[2, 3]);
        rows[2] = original[2].clone();
        assert_eq!(verify(rows, h), Err(ChainBreak::RemovedEventPresent { seq: 3 }));
    }

    #[test]
    fn hashes_round_trip_between_hex_and_bytes() {
        let h = content_hash(&event(1, Action::Grant));
        assert_eq!(hex(&hash_bytes(&h).unwrap()), h);
        assert_eq!(hash_bytes(GENESIS), Some([0; 32]));
        for bad in ["", &h[..62], &h.to_uppercase(), &format!("{}g", &h[..63]), &format!("{h}00")] {
            assert_eq!(hash_bytes(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn encoding_is_unambiguous() {
        let mut a = event(1, Action::Grant);
        let mut b = a.clone();
        a.subject = Some("ab".into());
        a.category = Some("c".into());
        b.subject = Some("a".into());
        b.category = Some("bc".into());
        assert_ne!(content_hash(&a), content_hash(&b));
        let mut c = a.clone();
        c.scope = Some(String::new());
        assert_ne!(content_hash(&a), content_hash(&c));
    }
}
