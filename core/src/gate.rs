//! The gate: an immutable in-memory snapshot of every subject's state and the device's OS
//! permissions, and the pure `check` that answers "may this feature run for this subject, now?".
//! Checks read a snapshot only: no I/O, no lock.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::input::{check_scope, check_subject};
use crate::model::{ChildrenRule, LegalBasis, OsPermission, OsState, ReasonCode, Status};
use crate::policy::{Category, Policy};
use crate::state::{in_force, status_of, CategoryState, SubjectState};

/// The OS's current answer for one permission, and since when.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsRecord {
    /// Current state.
    pub state: OsState,
    /// When it was reported.
    pub since: Timestamp,
}

/// One reason a feature is denied, naming the category it concerns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    /// The reason code.
    pub code: ReasonCode,
    /// The category it concerns.
    pub category: String,
}

/// The answer of [`Snapshot::check`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// The feature checked.
    pub feature: String,
    /// True only if there is no reason to deny.
    pub allowed: bool,
    /// Allowed with partial OS access (iOS limited library, Android selected photos).
    pub limited: bool,
    /// Every reason it is denied (empty when allowed).
    pub reasons: Vec<Reason>,
    /// For an allowed decision: the earliest time it turns into a denial by time alone
    /// (a grant's expiry). A cache of this decision must not be used from then on.
    pub valid_until: Option<Timestamp>,
}

/// A category's status for a subject, as shown to support staff and apps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryStatus {
    /// Category id.
    pub category: String,
    /// Its legal basis.
    pub legal_basis: LegalBasis,
    /// The status at the time asked.
    pub status: Status,
    /// Since when (absent when never decided).
    pub since: Option<Timestamp>,
}

/// An immutable view of the store at one generation. Swapped atomically after each commit.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// The policy in force.
    pub policy: Arc<Policy>,
    /// Every subject's state.
    pub subjects: HashMap<String, Arc<SubjectState>>,
    /// The device's OS permissions (absent = never reported = not determined).
    pub os: HashMap<OsPermission, OsRecord>,
    /// Bumped by every committed write.
    pub generation: u64,
    /// Set when the store could not be opened or read: consent-gated features are denied.
    pub unavailable: Option<String>,
}

impl Snapshot {
    /// An empty snapshot for `policy`.
    pub fn empty(policy: Arc<Policy>) -> Snapshot {
        Snapshot { policy, subjects: HashMap::new(), os: HashMap::new(), generation: 0, unavailable: None }
    }

    /// The OS state of `permission` (`not_determined` if never reported).
    pub fn os_state(&self, permission: OsPermission) -> OsState {
        self.os.get(&permission).map_or(OsState::NotDetermined, |r| r.state)
    }

    /// The subject's record for `category` if it counts under the category's current legal basis.
    fn category_state(&self, subject: &str, category: &Category) -> Option<&CategoryState> {
        in_force(category, self.subjects.get(subject).and_then(|s| s.categories.get(&category.id)))
    }

    fn under_age(&self, subject: &str) -> bool {
        self.subjects.get(subject).is_some_and(|s| s.under_age)
    }

    /// May `feature` run for `subject` at `now`? `scope` names the single item for a per-item
    /// feature (and must be absent otherwise). Unknown feature or bad input: an error, not a denial.
    pub fn check(&self, subject: &str, feature: &str, scope: Option<&str>, now: Timestamp) -> Result<Decision> {
        let policy = &*self.policy;
        let feature = policy.feature(feature)?;
        check_subject(subject)?;
        match (feature.per_item, scope) {
            (true, None) => return Err(Error::Scope { feature: feature.id.clone(), why: "is granted per item: check it with a scope" }),
            (false, Some(_)) => {
                return Err(Error::Scope { feature: feature.id.clone(), why: "is not granted per item: check it without a scope" })
            }
            (_, Some(s)) => check_scope(s)?,
            _ => {}
        }
        let under_age = self.under_age(subject);
        let mut reasons = Vec::new();
        let mut limited = false;
        let mut valid_until: Option<Timestamp> = None;
        for category_id in &feature.categories {
            let category = policy.category(category_id)?;
            let mut deny = |code| reasons.push(Reason { code, category: category.id.clone() });
            let gated = !matches!(category.legal_basis, LegalBasis::Contract | LegalBasis::LegalObligation);
            if under_age && policy.children == ChildrenRule::NotServed {
                deny(ReasonCode::UnderAge);
            }
            if self.unavailable.is_some() {
                if gated {
                    deny(ReasonCode::StoreUnavailable);
                }
            } else {
                let state = self.category_state(subject, category);
                match status_of(category, state, now) {
                    Status::NotRequired => {}
                    Status::Granted => {
                        let state = state.filter(|s| s.status == Status::Granted);
                        if let Some(s) = state {
                            if under_age && !s.by_guardian && policy.children == ChildrenRule::GuardianConsent {
                                deny(ReasonCode::UnderAge);
                            }
                            valid_until = earliest(valid_until, s.valid_until);
                            if let Some(item) = scope {
                                if s.scope_in_force(item, category, now) {
                                    valid_until = earliest(valid_until, s.scopes.get(item).and_then(|g| g.valid_until));
                                } else {
                                    deny(ReasonCode::ScopeNotGranted);
                                }
                            }
                        }
                    }
                    status => deny(denial_for(status)),
                }
            }
            if let Some(permission) = category.os_permission {
                match self.os_state(permission) {
                    OsState::Granted => {}
                    OsState::Limited => limited = true,
                    OsState::Denied => deny(ReasonCode::OsPermissionDenied),
                    OsState::NotDetermined => deny(ReasonCode::OsPermissionNotDetermined),
                    OsState::Restricted => deny(ReasonCode::OsPermissionRestricted),
                }
            }
        }
        let allowed = reasons.is_empty();
        Ok(Decision {
            feature: feature.id.clone(),
            allowed,
            limited: allowed && limited,
            reasons,
            valid_until: if allowed { valid_until } else { None },
        })
    }

    /// The status of one category for a subject at `now`, and since when.
    pub fn status(&self, subject: &str, category: &str, now: Timestamp) -> Result<CategoryStatus> {
        check_subject(subject)?;
        let category = self.policy.category(category)?;
        Ok(self.status_in(subject, category, now))
    }

    fn status_in(&self, subject: &str, category: &Category, now: Timestamp) -> CategoryStatus {
        let state = self.category_state(subject, category);
        let status = status_of(category, state, now);
        let since = state.filter(|_| status != Status::NotAsked).map(|s| s.effective_since(category, now));
        CategoryStatus { category: category.id.clone(), legal_basis: category.legal_basis, status, since }
    }

    /// Every category's status for a subject, in policy order.
    pub fn statuses(&self, subject: &str, now: Timestamp) -> Result<Vec<CategoryStatus>> {
        check_subject(subject)?;
        Ok(self.policy.categories.iter().map(|c| self.status_in(subject, c, now)).collect())
    }

    /// Should the app show the consent prompt for this category now? True when never asked,
    /// renewal is required, the grant expired, or a refusal is older than the re-ask interval.
    /// False for categories that do not rest on consent, and while the store is unavailable.
    pub fn should_ask(&self, subject: &str, category: &str, now: Timestamp) -> Result<bool> {
        check_subject(subject)?;
        let category = self.policy.category(category)?;
        if category.legal_basis != LegalBasis::Consent || self.unavailable.is_some() {
            return Ok(false);
        }
        if self.under_age(subject) && self.policy.children == ChildrenRule::NotServed {
            return Ok(false);
        }
        let state = self.category_state(subject, category);
        Ok(match status_of(category, state, now) {
            Status::NotAsked | Status::RenewalRequired | Status::Expired => true,
            Status::Refused => state.and_then(|s| s.valid_until).is_some_and(|t| t <= now),
            _ => false,
        })
    }
}

fn earliest(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn denial_for(status: Status) -> ReasonCode {
    match status {
        Status::Refused => ReasonCode::ConsentRefused,
        Status::Withdrawn => ReasonCode::ConsentWithdrawn,
        Status::Expired => ReasonCode::ConsentExpired,
        Status::RenewalRequired => ReasonCode::RenewalRequired,
        Status::Objected => ReasonCode::Objected,
        // not_asked, and anything unforeseen: fail closed.
        _ => ReasonCode::ConsentNotAsked,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> Snapshot {
        Snapshot::empty(Arc::new(Policy::builtin()))
    }

    #[test]
    fn an_empty_snapshot_fails_closed() {
        let s = snapshot();
        let d = s.check("alice", "photo_sharing", None, Timestamp(0)).unwrap();
        let codes: Vec<ReasonCode> = d.reasons.iter().map(|r| r.code).collect();
        assert_eq!(codes, [ReasonCode::ConsentNotAsked, ReasonCode::OsPermissionNotDetermined]);
        assert!(!d.allowed && !d.limited && d.valid_until.is_none());
        assert!(s.check("alice", "calling", None, Timestamp(0)).unwrap().allowed);
    }

    #[test]
    fn an_unavailable_store_denies_all_but_contract_features() {
        let mut s = snapshot();
        s.unavailable = Some("disk on fire".into());
        let d = s.check("alice", "usage_analytics", None, Timestamp(0)).unwrap();
        assert_eq!(d.reasons, [Reason { code: ReasonCode::StoreUnavailable, category: "usage_statistics".into() }]);
        assert!(s.check("alice", "messaging", None, Timestamp(0)).unwrap().allowed);
        assert!(!s.should_ask("alice", "usage_statistics", Timestamp(0)).unwrap());
    }

    #[test]
    fn input_is_validated_before_anything_else() {
        let s = snapshot();
        assert!(matches!(s.check("alice", "nope", None, Timestamp(0)), Err(Error::UnknownFeature(_))));
        assert!(matches!(s.check("", "calling", None, Timestamp(0)), Err(Error::InvalidInput { .. })));
        assert!(matches!(s.check("alice", "contact_sync", Some(""), Timestamp(0)), Err(Error::InvalidInput { .. })));
        assert!(matches!(s.status("alice", "nope", Timestamp(0)), Err(Error::UnknownCategory(_))));
    }
}
