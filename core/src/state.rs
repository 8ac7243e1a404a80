//! A subject's current state, and the pure fold that derives it from events.
//! The store keeps this state in SQLite beside the ledger (same transaction) and in memory.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::model::{Action, LegalBasis, Source, Status};
use crate::policy::Category;
use crate::receipt::Receipt;

/// One granted item (scope) of a per-item category.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeGrant {
    /// When it was granted.
    pub at: Timestamp,
    /// When it expires, if the policy sets a consent lifetime.
    pub valid_until: Option<Timestamp>,
    /// The category's purpose version at the grant.
    pub purpose_version: u32,
    /// The grant came from a guardian (its effective source, [`Receipt::effective_source`], is
    /// [`Source::Guardian`]). False for a state read from a row of an older format, which did not
    /// record it (schema v1-v5; the migration to v6 takes it from the history).
    #[serde(default)]
    pub by_guardian: bool,
}

/// The recorded standing for one category, before time and policy changes are applied
/// (see [`CategoryState::effective_status`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryState {
    /// The status the last deciding event set (`granted`, `refused`, `withdrawn`, `expired`,
    /// `objected`, `not_required`, or `not_asked` when only scopes were recorded).
    pub status: Status,
    /// When that event happened.
    pub since: Timestamp,
    /// Its sequence number (the event that establishes the current status).
    pub seq: u64,
    /// The category's purpose version when it was decided.
    pub purpose_version: u32,
    /// Grant expiry, or the re-ask time of a refusal.
    pub valid_until: Option<Timestamp>,
    /// The grant came from a guardian.
    pub by_guardian: bool,
    /// Granted items (per-item features).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub scopes: BTreeMap<String, ScopeGrant>,
    /// Time of the latest event of any kind for this category (retention counts from here).
    pub last_interaction: Timestamp,
}

/// Everything recorded about one subject.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectState {
    /// Marked under the policy's age of digital consent.
    #[serde(default)]
    pub under_age: bool,
    /// Per category id.
    #[serde(default)]
    pub categories: BTreeMap<String, CategoryState>,
}

impl CategoryState {
    fn new(r: &Receipt) -> CategoryState {
        CategoryState {
            status: Status::NotAsked,
            since: r.at,
            seq: r.seq,
            purpose_version: r.purpose_version.unwrap_or(1),
            valid_until: None,
            by_guardian: false,
            scopes: BTreeMap::new(),
            last_interaction: r.at,
        }
    }

    /// The status as it stands at `now` under the loaded `category` (expiry and purpose bumps applied).
    #[inline]
    pub fn effective_status(&self, category: &Category, now: Timestamp) -> Status {
        match self.status {
            Status::Granted if self.purpose_version < category.purpose_version => Status::RenewalRequired,
            Status::Granted if self.valid_until.is_some_and(|t| t <= now) => Status::Expired,
            other => other,
        }
    }

    /// When the effective status began (the expiry time for a grant that ran out).
    pub fn effective_since(&self, category: &Category, now: Timestamp) -> Timestamp {
        match (self.effective_status(category, now), self.valid_until) {
            (Status::Expired, Some(t)) if self.status == Status::Granted => t,
            _ => self.since,
        }
    }

    /// True if `scope` is granted, unexpired and of the current purpose version at `now`.
    #[inline]
    pub fn scope_in_force(&self, scope: &str, category: &Category, now: Timestamp) -> bool {
        self.scopes.get(scope).is_some_and(|g| g.purpose_version >= category.purpose_version && g.valid_until.is_none_or(|t| t > now))
    }
}

/// Whether a recorded status was decided under `basis`. Consent actions (grant, refuse, withdraw,
/// expire, and item grants) are made under consent; an objection and its withdrawal under
/// legitimate interest. Nothing is decided under contract or legal obligation.
#[inline]
pub fn decided_under(status: Status, basis: LegalBasis) -> bool {
    match status {
        Status::NotAsked | Status::Granted | Status::Refused | Status::Withdrawn | Status::Expired | Status::RenewalRequired => {
            basis == LegalBasis::Consent
        }
        Status::Objected | Status::NotRequired => basis == LegalBasis::LegitimateInterest,
    }
}

/// The record that counts for `category` under its *current* legal basis: `state` if it was
/// decided under that basis, else `None` (history under another basis never counts: a
/// withdrawn objection is no consent, a granted consent is no objection). One exception, fail
/// closed: under legitimate interest a consent *refused or withdrawn* (under another policy
/// version, e.g. by a process still on it) counts, as an objection. The state keeps one status
/// per category, so that "no" may hide an objection never withdrawn; `withdraw_objection` (or a
/// grant) lifts it.
#[inline]
pub fn in_force<'a>(category: &Category, state: Option<&'a CategoryState>) -> Option<&'a CategoryState> {
    state.filter(|s| {
        decided_under(s.status, category.legal_basis)
            || (category.legal_basis == LegalBasis::LegitimateInterest && matches!(s.status, Status::Refused | Status::Withdrawn))
    })
}

/// The status of a category for a subject with no (or this) record, at `now`, read under the
/// category's current legal basis (see [`in_force`]); under legitimate interest a consent
/// refused or withdrawn reads as an objection.
#[inline]
pub fn status_of(category: &Category, state: Option<&CategoryState>, now: Timestamp) -> Status {
    let state = in_force(category, state);
    match category.legal_basis {
        LegalBasis::Contract | LegalBasis::LegalObligation => Status::NotRequired,
        LegalBasis::LegitimateInterest => match state.map(|s| s.status) {
            Some(Status::Objected | Status::Refused | Status::Withdrawn) => Status::Objected,
            _ => Status::NotRequired,
        },
        LegalBasis::Consent => state.map_or(Status::NotAsked, |s| s.effective_status(category, now)),
    }
}

impl SubjectState {
    /// True when some category of this subject holds an item grant for `scope` (the store
    /// already knows the scope id: [`crate::input::check_scope_in`]).
    pub fn holds_scope(&self, scope: &str) -> bool {
        self.categories.values().any(|c| c.scopes.contains_key(scope))
    }

    /// Applies one event of this subject. Events are applied in sequence order; the result is
    /// the same whether built up write by write or folded from the whole history.
    pub fn apply(&mut self, r: &Receipt) {
        if r.action == Action::AgeStatus {
            self.under_age = r.detail_field("under_age").and_then(|v| v.as_bool()).unwrap_or(self.under_age);
            return;
        }
        let Some(category) = r.category.as_deref() else { return };
        let cs = self.categories.entry(category.to_string()).or_insert_with(|| CategoryState::new(r));
        cs.last_interaction = r.at;
        if let Some(scope) = r.scope.as_deref() {
            match r.action {
                Action::Grant => {
                    let grant = ScopeGrant {
                        at: r.at,
                        valid_until: r.valid_until,
                        purpose_version: r.purpose_version.unwrap_or(1),
                        by_guardian: r.effective_source() == Source::Guardian,
                    };
                    cs.scopes.insert(scope.to_string(), grant);
                }
                Action::Refuse | Action::Withdraw | Action::Expire => {
                    cs.scopes.remove(scope);
                }
                _ => {}
            }
            return;
        }
        let status = match r.action {
            Action::Grant => Status::Granted,
            Action::Refuse => Status::Refused,
            Action::Withdraw => Status::Withdrawn,
            Action::Expire => Status::Expired,
            Action::Object => Status::Objected,
            Action::WithdrawObjection => Status::NotRequired,
            _ => return,
        };
        cs.status = status;
        cs.since = r.at;
        cs.seq = r.seq;
        cs.purpose_version = r.purpose_version.unwrap_or(cs.purpose_version);
        cs.valid_until = r.valid_until;
        cs.by_guardian = status == Status::Granted && r.effective_source() == Source::Guardian;
        if matches!(status, Status::Refused | Status::Withdrawn | Status::Expired) {
            cs.scopes.clear();
        }
    }

    /// Folds a subject's whole history (in sequence order) into its state.
    pub fn fold<'a>(events: impl IntoIterator<Item = &'a Receipt>) -> SubjectState {
        let mut state = SubjectState::default();
        for r in events {
            state.apply(r);
        }
        state
    }
}

/// The first byte of a state row in the binary encoding ([`SubjectState::to_row`], schema v6: each
/// item grant ends in its guardian flag). Never `{`, so a row holding JSON text (as schema
/// versions 1-4 stored it) is told apart.
const ROW_FORMAT: u8 = 2;

/// The first byte of the binary row of schema v5 ([`ROW_FORMAT`] without the items' guardian
/// flags). Still read, so the migration to v6 and the proof of an unproven table can decode it;
/// never written.
const ROW_FORMAT_V5: u8 = 1;

/// The fixed code of each status in a state row (never renumbered; a new status gets a new code).
const STATUS_CODES: [(Status, u8); 8] = [
    (Status::NotRequired, 0),
    (Status::NotAsked, 1),
    (Status::Granted, 2),
    (Status::Refused, 3),
    (Status::Withdrawn, 4),
    (Status::Expired, 5),
    (Status::RenewalRequired, 6),
    (Status::Objected, 7),
];

fn status_code(status: Status) -> u8 {
    STATUS_CODES.iter().find(|(s, _)| *s == status).map_or(u8::MAX, |(_, c)| *c)
}

/// Writes a state row (see [`SubjectState::to_row`]).
struct RowWriter(Vec<u8>);

impl RowWriter {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }
    fn text(&mut self, t: &str) {
        self.varint(t.len() as u64);
        self.0.extend_from_slice(t.as_bytes());
    }
    fn time(&mut self, t: Timestamp) {
        self.0.extend_from_slice(&t.0.to_le_bytes());
    }
    fn optional_time(&mut self, t: Option<Timestamp>) {
        match t {
            Some(t) => {
                self.0.push(1);
                self.time(t);
            }
            None => self.0.push(0),
        }
    }
}

/// Reads a state row strictly: only what [`RowWriter`] writes is accepted (minimal varints,
/// ids in increasing order, no byte left over), so a row decodes to a state that encodes back to
/// the very same bytes.
struct RowReader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> RowReader<'a> {
    #[cold]
    fn fail<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("state row: {what} at byte {}", self.at))
    }
    #[inline]
    fn byte(&mut self) -> Result<u8, String> {
        match self.bytes.get(self.at) {
            Some(&b) => {
                self.at += 1;
                Ok(b)
            }
            None => self.fail("ends early"),
        }
    }
    #[inline]
    fn flag(&mut self) -> Result<bool, String> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => self.fail("a flag that is neither 0 nor 1"),
        }
    }
    #[inline]
    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            if shift == 63 && b > 1 {
                return self.fail("a number too large");
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                if b == 0 && shift > 0 {
                    return self.fail("a number not in its shortest form");
                }
                return Ok(v);
            }
        }
        self.fail("a number too long")
    }
    #[inline]
    fn small(&mut self) -> Result<u32, String> {
        let v = self.varint()?;
        u32::try_from(v).or_else(|_| self.fail("a purpose version too large"))
    }
    #[inline]
    fn text(&mut self) -> Result<&'a str, String> {
        let len = self.varint()?;
        let end = usize::try_from(len).ok().and_then(|l| self.at.checked_add(l)).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else { return self.fail("a text longer than the row") };
        let text = std::str::from_utf8(&self.bytes[self.at..end]).or_else(|_| self.fail("a text that is not UTF-8"))?;
        self.at = end;
        Ok(text)
    }
    #[inline]
    fn time(&mut self) -> Result<Timestamp, String> {
        match self.bytes.get(self.at..self.at + 8) {
            Some(b) => {
                let mut w = [0u8; 8];
                w.copy_from_slice(b);
                self.at += 8;
                Ok(Timestamp(i64::from_le_bytes(w)))
            }
            None => self.fail("ends early"),
        }
    }
    #[inline]
    fn optional_time(&mut self) -> Result<Option<Timestamp>, String> {
        Ok(if self.flag()? { Some(self.time()?) } else { None })
    }
    #[inline]
    fn status(&mut self) -> Result<Status, String> {
        let code = self.byte()?;
        match STATUS_CODES.iter().find(|(_, c)| *c == code) {
            Some((s, _)) => Ok(*s),
            None => {
                self.at -= 1;
                self.fail(&format!("unknown status code {code}"))
            }
        }
    }
}

impl SubjectState {
    /// The state as the state table stores it (schema v6): a compact binary row, written and
    /// read without a text parser, about a quarter of the JSON's size. Layout: the format byte
    /// `2`; a flags byte (bit 0: under age); the number of categories, then each in id order: its
    /// id, status code, `since`, `seq`, purpose version, `valid_until`, the guardian flag,
    /// `last_interaction`, and its granted items in id order (id, `at`, `valid_until`, purpose
    /// version, the item's guardian flag). Numbers are LEB128 varints, times 8-byte little-endian
    /// milliseconds, an absent time a `0` flag byte (`1` and the time when present), a flag a
    /// `0` or `1` byte, ids a varint length and UTF-8. (Format `1`, schema v5, is the same
    /// without the items' guardian flags.)
    pub fn to_row(&self) -> Vec<u8> {
        let mut w = RowWriter(Vec::with_capacity(16 + self.categories.len() * 64));
        w.0.push(ROW_FORMAT);
        w.0.push(u8::from(self.under_age));
        w.varint(self.categories.len() as u64);
        for (id, c) in &self.categories {
            w.text(id);
            w.0.push(status_code(c.status));
            w.time(c.since);
            w.varint(c.seq);
            w.varint(u64::from(c.purpose_version));
            w.optional_time(c.valid_until);
            w.0.push(u8::from(c.by_guardian));
            w.time(c.last_interaction);
            w.varint(c.scopes.len() as u64);
            for (item, g) in &c.scopes {
                w.text(item);
                w.time(g.at);
                w.optional_time(g.valid_until);
                w.varint(u64::from(g.purpose_version));
                w.0.push(u8::from(g.by_guardian));
            }
        }
        w.0
    }

    /// Reads a state row: the binary row [`SubjectState::to_row`] writes, the binary row of
    /// schema v5 (format `1`), or the JSON text that schema versions 1-4 stored (a row starting
    /// with `{`). The older two do not record who granted an item: their item grants read as not
    /// a guardian's (fail closed). Only the current format encodes back to the bytes it was read
    /// from. The error names where the row is damaged, never its content.
    pub fn from_row(bytes: &[u8]) -> Result<SubjectState, String> {
        match bytes.first() {
            // Through `&str`: one serde_json reader (`StrRead`) for the whole library, not a second
            // copy of the parser for `&[u8]` (about 15 KB).
            Some(b'{') => std::str::from_utf8(bytes)
                .map_err(|e| format!("state row (JSON text): {e}"))
                .and_then(|text| serde_json::from_str(text).map_err(|e| format!("state row (JSON text): {e}"))),
            Some(&ROW_FORMAT) => Self::from_binary_row(bytes),
            Some(&ROW_FORMAT_V5) => Self::read_binary_row(bytes, true, false),
            Some(other) => Err(format!("state row: unknown format {other}")),
            None => Err("state row: empty".into()),
        }
    }

    fn from_binary_row(bytes: &[u8]) -> Result<SubjectState, String> {
        Self::read_binary_row(bytes, true, true)
    }

    /// Reads a binary row; `build`: into a state, else only checking it (no allocation; the
    /// result is then an empty state). `item_flags`: the row is of the current format (each item
    /// ends in its guardian flag), else of format `1` (no item flag: read as false).
    fn read_binary_row(bytes: &[u8], build: bool, item_flags: bool) -> Result<SubjectState, String> {
        let mut r = RowReader { bytes, at: 1 };
        let under_age = r.flag()?;
        let mut categories = BTreeMap::new();
        let mut last: Option<&str> = None;
        for _ in 0..r.varint()? {
            let id = r.text()?;
            if last.is_some_and(|l| l >= id) {
                return r.fail("categories out of order");
            }
            last = Some(id);
            let (status, since, seq, purpose_version) = (r.status()?, r.time()?, r.varint()?, r.small()?);
            let (valid_until, by_guardian, last_interaction) = (r.optional_time()?, r.flag()?, r.time()?);
            let mut scopes = BTreeMap::new();
            let mut last_item: Option<&str> = None;
            for _ in 0..r.varint()? {
                let item = r.text()?;
                if last_item.is_some_and(|l| l >= item) {
                    return r.fail("items out of order");
                }
                last_item = Some(item);
                let (at, valid_until, purpose_version) = (r.time()?, r.optional_time()?, r.small()?);
                let by_guardian = item_flags && r.flag()?;
                if build {
                    scopes.insert(item.to_string(), ScopeGrant { at, valid_until, purpose_version, by_guardian });
                }
            }
            if build {
                let state = CategoryState { status, since, seq, purpose_version, valid_until, by_guardian, scopes, last_interaction };
                categories.insert(id.to_string(), state);
            }
        }
        if r.at != bytes.len() {
            return r.fail("bytes after the end");
        }
        Ok(SubjectState { under_age, categories })
    }
}

/// A stored binary state row that was checked to decode ([`ValidRow::check`]), kept as its bytes
/// and decoded when first used: opening a store checks and hashes every row but builds the state
/// (a map per subject) only for the subjects it is asked about.
#[derive(Clone, Debug)]
pub(crate) struct ValidRow(Box<[u8]>);

impl ValidRow {
    /// The row if it is a binary row of the current format that decodes (checked without building
    /// the state); else `None`, and the caller decodes it at once (JSON text, format `1`) or
    /// reports the error.
    pub(crate) fn check(row: &[u8]) -> Option<ValidRow> {
        (row.first() == Some(&ROW_FORMAT) && SubjectState::read_binary_row(row, false, true).is_ok()).then(|| ValidRow(row.into()))
    }

    /// The state. The bytes are immutable and were checked by the very reader that decodes them,
    /// so this cannot fail; the fallback (the subject as never recorded, under age, and an error
    /// logged) only keeps this from being a panic.
    pub(crate) fn decode(&self) -> SubjectState {
        SubjectState::from_binary_row(&self.0).unwrap_or_else(|e| {
            log::error!("consentkit: a checked state row did not decode ({e}); its subject is denied");
            SubjectState { under_age: true, categories: BTreeMap::new() }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{LegalBasis, Source};
    use crate::policy::Category;

    /// A state with every field in use: several categories, items, absent and present times,
    /// negative and large values, non-ASCII ids.
    fn rich_state(seed: u64) -> SubjectState {
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut state = SubjectState { under_age: next() % 2 == 0, ..Default::default() };
        for c in 0..(next() % 6) {
            let mut scopes = BTreeMap::new();
            for i in 0..(next() % 4) {
                let valid_until = (next() % 2 == 0).then(|| Timestamp(next() as i64));
                scopes.insert(
                    format!("item-{i}-ü{}", next() % 1000),
                    ScopeGrant {
                        at: Timestamp(-(next() as i64 >> 3)),
                        valid_until,
                        purpose_version: next() as u32,
                        by_guardian: next() % 2 == 0,
                    },
                );
            }
            let category = CategoryState {
                status: Status::ALL[(next() % Status::ALL.len() as u64) as usize],
                since: Timestamp(next() as i64),
                seq: next() >> (next() % 64),
                purpose_version: (next() >> 40) as u32,
                valid_until: (next() % 3 != 0).then(|| Timestamp(next() as i64 >> 1)),
                by_guardian: next() % 2 == 0,
                scopes,
                last_interaction: Timestamp(i64::MIN + (next() % 10) as i64),
            };
            state.categories.insert(format!("category_{c}_{}", next() % 100), category);
        }
        state
    }

    #[test]
    fn a_state_row_decodes_to_the_state_it_was_encoded_from_and_back_to_the_same_bytes() {
        for seed in 0..2000 {
            let state = rich_state(seed);
            let row = state.to_row();
            assert_eq!(row[0], ROW_FORMAT);
            let decoded = SubjectState::from_row(&row).unwrap();
            assert_eq!(decoded, state, "seed {seed}");
            assert_eq!(decoded.to_row(), row, "seed {seed}: one encoding per state");
        }
        assert_eq!(SubjectState::from_row(&SubjectState::default().to_row()).unwrap(), SubjectState::default());
    }

    #[test]
    fn a_state_row_keeps_each_item_s_guardian_flag() {
        let state = SubjectState::fold(&[
            event(1, Action::Grant, None, Source::Guardian),
            event(2, Action::Grant, Some("by-guardian"), Source::Guardian),
            event(3, Action::Grant, Some("by-child"), Source::Settings),
        ]);
        let scopes = &state.categories["c"].scopes;
        assert!(scopes["by-guardian"].by_guardian && !scopes["by-child"].by_guardian);
        let row = state.to_row();
        let decoded = SubjectState::from_row(&row).unwrap();
        assert_eq!(decoded, state);
        assert_eq!(decoded.to_row(), row);
        // The items' flags are the last byte of each item ("by-child" sorts first): set to 1, the
        // child's item reads as a guardian's (a different state, a different row); any other byte
        // is no flag.
        let by_child_flag = row.windows(8).position(|w| w == b"by-child").unwrap() + 8 + 8 + 1 + 8 + 1;
        assert_eq!(row[by_child_flag], 0);
        let mut flipped = row.clone();
        flipped[by_child_flag] = 1;
        assert!(SubjectState::from_row(&flipped).unwrap().categories["c"].scopes["by-child"].by_guardian);
        flipped[by_child_flag] = 2;
        assert!(SubjectState::from_row(&flipped).unwrap_err().contains("neither 0 nor 1"));
        assert_eq!(*row.last().unwrap(), 1, "the guardian's item, last in id order, ends the row");
    }

    /// kid's row as the schema-v5 code wrote it (`core/tests/fixtures/store-v5.db`): the guardian
    /// granted the category, the child an item (contact-1), then the subject was marked under age.
    const V5_ROW: &str = "0101010F6465766963655F636F6E746163747302804622A79B0100000201018096789EA301000001E03023A79B01000001\
                          09636F6E746163742D31E03023A79B01000001E080799EA301000001";

    fn unhex(hex: &str) -> Vec<u8> {
        let hex: String = hex.split_whitespace().collect();
        (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn a_schema_v5_row_still_decodes_with_no_item_a_guardian_s() {
        let v5 = unhex(V5_ROW);
        assert_eq!(v5[0], ROW_FORMAT_V5);
        let state = SubjectState::from_row(&v5).unwrap();
        let c = &state.categories["device_contacts"];
        assert!(state.under_age && c.by_guardian && c.status == Status::Granted);
        let item = &c.scopes["contact-1"];
        assert!(!item.by_guardian, "an item of a v5 row reads as not a guardian's");
        assert_eq!((item.purpose_version, item.valid_until.is_some()), (1, true));
        // Written back in this format: one flag byte more, and not the bytes it was read from (so
        // an open proves such a row by the history, like JSON text).
        let row = state.to_row();
        assert_eq!((row[0], row.len()), (ROW_FORMAT, v5.len() + 1));
        assert_eq!(&row[1..], &[&v5[1..], &[0]].concat()[..]);
        assert_eq!(SubjectState::from_row(&row).unwrap(), state);
        assert!(ValidRow::check(&v5).is_none() && ValidRow::check(&row).is_some());
        // A v5 row is read strictly too.
        for len in 0..v5.len() {
            assert!(SubjectState::from_row(&v5[..len]).is_err(), "{len}");
        }
        assert!(SubjectState::from_row(&[&v5[..], &[0]].concat()).unwrap_err().contains("after the end"));
    }

    #[test]
    fn the_binary_row_is_much_smaller_than_the_json_text() {
        let state = rich_state(7);
        assert!(state.categories.len() > 1);
        let (row, json) = (state.to_row().len(), serde_json::to_string(&state).unwrap().len());
        assert!(row * 2 < json, "{row} bytes vs {json} bytes of JSON");
    }

    #[test]
    fn every_status_has_its_own_row_code() {
        let codes: std::collections::HashSet<u8> = Status::ALL.iter().map(|s| status_code(*s)).collect();
        assert_eq!(codes.len(), Status::ALL.len());
        assert!(!codes.contains(&u8::MAX));
    }

    #[test]
    fn a_json_text_row_as_schema_v4_stored_it_still_decodes() {
        // (Times a JSON text can hold: RFC 3339, years 1970-9999; the binary row holds any.)
        let state = SubjectState::fold(&[
            event(1, Action::Grant, None, Source::Settings),
            event(2, Action::Grant, Some("contact-1"), Source::Settings),
            event(3, Action::Grant, Some("contact-2"), Source::Guardian),
        ]);
        assert_eq!(state.categories["c"].scopes.len(), 2);
        let json = serde_json::to_string(&state).unwrap();
        assert_eq!(SubjectState::from_row(json.as_bytes()).unwrap(), state);
        let err = SubjectState::from_row(b"{\"categories\": \"secret-item\"").unwrap_err();
        assert!(err.contains("JSON"), "{err}");
        // A JSON row that is not UTF-8 is a damaged row (it is read as text), not a panic.
        let err = SubjectState::from_row(b"{\"categories\": {\"\xff\": 1}}").unwrap_err();
        assert!(err.contains("JSON text") && err.contains("utf-8"), "{err}");
    }

    #[test]
    fn a_damaged_row_is_an_error_naming_where_never_a_state() {
        let mut state = rich_state(3);
        state.categories.insert(
            "secret-category".into(),
            rich_state(5)
                .categories
                .into_values()
                .next()
                .unwrap_or_else(|| CategoryState::new(&event(1, Action::Grant, None, Source::Settings))),
        );
        let row = state.to_row();
        // Every truncation fails (a row ends exactly where its last field does).
        for len in 0..row.len() {
            let err = SubjectState::from_row(&row[..len]).unwrap_err();
            assert!(err.starts_with("state row") && !err.contains("secret"), "{len}: {err}");
        }
        let mut longer = row.clone();
        longer.push(0);
        assert!(SubjectState::from_row(&longer).unwrap_err().contains("after the end"));
        let mut format = row.clone();
        format[0] = 9;
        assert!(SubjectState::from_row(&format).unwrap_err().contains("unknown format 9"));
        let mut flag = row.clone();
        flag[1] = 2;
        assert!(SubjectState::from_row(&flag).unwrap_err().contains("neither 0 nor 1"));
        // One category whose status byte is not a status.
        let one = SubjectState {
            categories: BTreeMap::from([("c".to_string(), CategoryState::new(&event(1, Action::Grant, None, Source::Settings)))]),
            ..Default::default()
        };
        let mut bad = one.to_row();
        assert_eq!(&bad[..6], &[ROW_FORMAT, 0, 1, 1, b'c', status_code(Status::NotAsked)]);
        bad[5] = 200;
        assert!(SubjectState::from_row(&bad).unwrap_err().contains("unknown status code 200"));
        // A number not in its shortest form (the category count 1 written as 0x81 0x00).
        let mut long_count = one.to_row();
        long_count.splice(2..3, [0x81, 0x00]);
        assert!(SubjectState::from_row(&long_count).unwrap_err().contains("shortest form"));
        // Categories out of order, or the same one twice: not a row the store writes.
        let two = SubjectState {
            categories: BTreeMap::from([("a".to_string(), one.categories["c"].clone()), ("b".to_string(), one.categories["c"].clone())]),
            ..Default::default()
        };
        let row = two.to_row();
        let entry = (row.len() - 3) / 2;
        let mut swapped = row[..3].to_vec();
        swapped.extend_from_slice(&row[3 + entry..]);
        swapped.extend_from_slice(&row[3..3 + entry]);
        assert!(SubjectState::from_row(&swapped).unwrap_err().contains("out of order"));
        let mut twice = row[..3 + entry].to_vec();
        twice.extend_from_slice(&row[3..3 + entry]);
        assert!(SubjectState::from_row(&twice).unwrap_err().contains("out of order"));
    }

    fn event(seq: u64, action: Action, scope: Option<&str>, source: Source) -> Receipt {
        Receipt {
            id: format!("e{seq}"),
            seq,
            subject: Some("alice".into()),
            category: Some("c".into()),
            scope: scope.map(String::from),
            purpose_version: Some(1),
            valid_until: (action == Action::Grant).then_some(Timestamp(100_000)),
            ..Receipt::blank(action, source, "p", "1", Timestamp(seq as i64 * 1000))
        }
    }

    fn category(purpose_version: u32) -> Category {
        Category {
            id: "c".into(),
            title: "C".into(),
            description: String::new(),
            legal_basis: LegalBasis::Consent,
            os_permission: None,
            retention: "P1Y".parse().unwrap(),
            purpose_version,
        }
    }

    #[test]
    fn fold_tracks_status_since_scopes_and_guardian() {
        let s = SubjectState::fold(&[
            event(1, Action::Grant, Some("x"), Source::Settings),
            event(2, Action::Grant, None, Source::Guardian),
            event(3, Action::Grant, Some("y"), Source::Settings),
            event(4, Action::Withdraw, Some("x"), Source::Settings),
        ]);
        let c = &s.categories["c"];
        assert_eq!((c.status, c.since, c.seq, c.by_guardian), (Status::Granted, Timestamp(2000), 2, true));
        assert_eq!(c.scopes.keys().collect::<Vec<_>>(), ["y"]);
        assert_eq!(c.last_interaction, Timestamp(4000));
        let after =
            SubjectState::fold(&[event(1, Action::Grant, Some("x"), Source::Settings), event(2, Action::Withdraw, None, Source::Settings)]);
        assert!(after.categories["c"].scopes.is_empty(), "withdrawing the category withdraws its scopes");
    }

    #[test]
    fn effective_status_applies_expiry_and_purpose_bumps_at_read_time() {
        let s = SubjectState::fold(&[event(1, Action::Grant, None, Source::Settings)]);
        let c = &s.categories["c"];
        assert_eq!(status_of(&category(1), Some(c), Timestamp(99_999)), Status::Granted);
        assert_eq!(status_of(&category(1), Some(c), Timestamp(100_000)), Status::Expired);
        assert_eq!(c.effective_since(&category(1), Timestamp(100_000)), Timestamp(100_000));
        assert_eq!(status_of(&category(2), Some(c), Timestamp(0)), Status::RenewalRequired);
        assert_eq!(status_of(&category(1), None, Timestamp(0)), Status::NotAsked);
        let mut contract = category(1);
        contract.legal_basis = LegalBasis::Contract;
        assert_eq!(status_of(&contract, Some(c), Timestamp(0)), Status::NotRequired);
    }

    #[test]
    fn a_status_counts_only_under_the_basis_it_was_decided_under() {
        let mut li = category(1);
        li.legal_basis = LegalBasis::LegitimateInterest;
        let objected = SubjectState::fold(&[event(1, Action::Object, None, Source::Support)]);
        let cleared = SubjectState::fold(&[
            event(1, Action::Object, None, Source::Support),
            event(2, Action::WithdrawObjection, None, Source::Settings),
        ]);
        let granted = SubjectState::fold(&[event(1, Action::Grant, None, Source::Settings)]);
        let (objected, cleared, granted) = (&objected.categories["c"], &cleared.categories["c"], &granted.categories["c"]);
        assert_eq!(status_of(&li, Some(objected), Timestamp(0)), Status::Objected);
        assert_eq!(status_of(&li, Some(cleared), Timestamp(0)), Status::NotRequired);
        assert_eq!(status_of(&li, Some(granted), Timestamp(0)), Status::NotRequired, "a consent is no objection");
        // A consent refused or withdrawn may hide an objection never withdrawn: fail closed.
        let refused =
            SubjectState::fold(&[event(1, Action::Object, None, Source::Support), event(2, Action::Refuse, None, Source::Settings)]);
        assert_eq!(status_of(&li, Some(&refused.categories["c"]), Timestamp(0)), Status::Objected, "a refusal does not lift an objection");
        // The same records once the category rests on consent: only the grant counts.
        let consent = category(1);
        assert_eq!(status_of(&consent, Some(cleared), Timestamp(0)), Status::NotAsked, "a withdrawn objection is no consent");
        assert_eq!(status_of(&consent, Some(objected), Timestamp(0)), Status::NotAsked);
        assert_eq!(status_of(&consent, Some(granted), Timestamp(0)), Status::Granted);
        assert!(in_force(&consent, Some(cleared)).is_none() && in_force(&li, Some(granted)).is_none());
        for basis in [LegalBasis::Contract, LegalBasis::LegalObligation] {
            let mut c = category(1);
            c.legal_basis = basis;
            for s in [objected, cleared, granted] {
                assert!(in_force(&c, Some(s)).is_none());
                assert_eq!(status_of(&c, Some(s), Timestamp(0)), Status::NotRequired);
            }
        }
    }
}
