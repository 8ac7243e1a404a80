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
/// withdrawn objection is no consent, a consent is no objection).
#[inline]
pub fn in_force<'a>(category: &Category, state: Option<&'a CategoryState>) -> Option<&'a CategoryState> {
    state.filter(|s| decided_under(s.status, category.legal_basis))
}

/// The status of a category for a subject with no (or this) record, at `now`, read under the
/// category's current legal basis (see [`in_force`]).
#[inline]
pub fn status_of(category: &Category, state: Option<&CategoryState>, now: Timestamp) -> Status {
    let state = in_force(category, state);
    match category.legal_basis {
        LegalBasis::Contract | LegalBasis::LegalObligation => Status::NotRequired,
        LegalBasis::LegitimateInterest => match state.map(|s| s.status) {
            Some(Status::Objected) => Status::Objected,
            _ => Status::NotRequired,
        },
        LegalBasis::Consent => state.map_or(Status::NotAsked, |s| s.effective_status(category, now)),
    }
}

impl SubjectState {
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
                    let grant = ScopeGrant { at: r.at, valid_until: r.valid_until, purpose_version: r.purpose_version.unwrap_or(1) };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{LegalBasis, Source};
    use crate::policy::Category;

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
