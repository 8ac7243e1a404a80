//! The gate: an immutable in-memory snapshot of every subject's state and the device's OS
//! permissions, and the pure `check` that answers "may this feature run for this subject, now?".
//! Checks read a snapshot only: no I/O, no lock.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::id::CatalogId;
use crate::input::{check_scope_in, check_stored_subject, check_subject, check_subject_in};
use crate::model::{ChildrenRule, LegalBasis, OsState, ReasonCode, Status};
use crate::os_permission::OsPermission;
use crate::policy::{Category, Policy};
use crate::state::{in_force, status_of, CategoryState, ScopeGrant};

/// The hasher of the snapshot's maps: foldhash, seeded at random per process (and per map).
/// Subject ids come from the app (its own account ids), not from an attacker; foldhash is
/// several times faster than SipHash on short keys, and the random seed keeps colliding ids
/// from being precomputed. (rustc-hash was rejected: it has no seed, so collisions are trivial.)
pub type FastHash = foldhash::fast::RandomState;

pub use crate::subject_map::SubjectMap;

/// The device's OS permissions: one slot per [`OsPermission::index`], so a check reads it by index.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OsMap(Vec<Option<(OsPermission, OsRecord)>>);

impl OsMap {
    /// The reported state of `permission`, if any (`None` for a permission never reported).
    #[inline]
    pub fn get(&self, permission: &OsPermission) -> Option<&OsRecord> {
        self.0.get(permission.index()).and_then(|slot| slot.as_ref().map(|(_, r)| r))
    }

    /// Sets the reported state of `permission`.
    pub fn insert(&mut self, permission: OsPermission, record: OsRecord) {
        let index = permission.index();
        if self.0.len() <= index {
            self.0.resize(index + 1, None);
        }
        self.0[index] = Some((permission, record));
    }

    /// True when no permission was ever reported.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(Option::is_none)
    }

    /// Every reported permission, in index order (predefined ones first).
    pub fn iter(&self) -> impl Iterator<Item = (&OsPermission, &OsRecord)> {
        self.0.iter().filter_map(|slot| slot.as_ref().map(|(p, r)| (p, r)))
    }
}

impl FromIterator<(OsPermission, OsRecord)> for OsMap {
    fn from_iter<I: IntoIterator<Item = (OsPermission, OsRecord)>>(records: I) -> OsMap {
        let mut map = OsMap::default();
        for (permission, record) in records {
            map.insert(permission, record);
        }
        map
    }
}

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
    pub category: CatalogId,
}

/// The answer of [`Snapshot::check`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// The feature checked.
    pub feature: CatalogId,
    /// True only if there is no reason to deny.
    pub allowed: bool,
    /// Allowed with partial OS access (iOS limited library, Android selected photos) or iOS
    /// provisional notifications.
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
    pub subjects: SubjectMap,
    /// The device's OS permissions (absent = never reported = not determined).
    pub os: OsMap,
    /// Bumped by every committed write.
    pub generation: u64,
    /// Set when the store could not be opened or read: consent-gated features are denied.
    pub unavailable: Option<String>,
}

impl Snapshot {
    /// An empty snapshot for `policy`.
    pub fn empty(policy: Arc<Policy>) -> Snapshot {
        Snapshot { policy, subjects: SubjectMap::default(), os: OsMap::default(), generation: 0, unavailable: None }
    }

    /// The OS state of `permission` (`not_determined` if never reported).
    #[inline]
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
        self.check_with(subject, feature, scope, || now)
    }

    /// [`Snapshot::check`] reading the time from `now` only if the answer depends on it (a grant
    /// or item with an expiry), and at most once. The store's gate passes its clock here.
    pub fn check_with(&self, subject: &str, feature: &str, scope: Option<&str>, now: impl FnOnce() -> Timestamp) -> Result<Decision> {
        let policy = &*self.policy;
        let (feature, plan) = policy.feature_plan(feature)?;
        // One lookup of the subject serves the age rule and every category. A subject found here
        // was validated when it was written (by this version strictly; by an older one with the
        // stored-id rule, e.g. `" alice"`: its check answers from its own records, as every other
        // operation on it does), so only a subject without a record is checked.
        let record = self.subjects.get(subject);
        if record.is_none() {
            check_subject(subject)?;
        }
        match (feature.per_item, scope) {
            (true, None) => return Err(Error::Scope { feature: feature.id.clone(), why: "is granted per item: check it with a scope" }),
            (false, Some(_)) => {
                return Err(Error::Scope { feature: feature.id.clone(), why: "is not granted per item: check it without a scope" })
            }
            // For a subject the store holds, a scope of the stored-id rule is answered from its
            // records (granted only if an item grant holds that very id).
            (_, Some(s)) => check_scope_in(s, || record.is_some())?,
            _ => {}
        }
        let mut clock = LazyTime::new(now);
        let under_age = record.is_some_and(|s| s.under_age);
        let mut reasons = Vec::new();
        let mut limited = false;
        let mut valid_until: Option<Timestamp> = None;
        for &index in plan.categories.iter() {
            let category = &policy.categories[index];
            let mut deny = |code| reasons.push(Reason { code, category: policy.category_name(index).clone() });
            let gated = !matches!(category.legal_basis, LegalBasis::Contract | LegalBasis::LegalObligation);
            if under_age && policy.children == ChildrenRule::NotServed {
                deny(ReasonCode::UnderAge);
            }
            if self.unavailable.is_some() {
                if gated {
                    deny(ReasonCode::StoreUnavailable);
                }
            } else {
                let state = in_force(category, record.and_then(|s| s.categories.get(&category.id)));
                match status_at(category, state, &mut clock) {
                    Status::NotRequired => {}
                    Status::Granted => {
                        let state = state.filter(|s| s.status == Status::Granted);
                        if let Some(s) = state {
                            let guardian_rule = under_age && policy.children == ChildrenRule::GuardianConsent;
                            if guardian_rule && !s.by_guardian {
                                deny(ReasonCode::UnderAge);
                            }
                            valid_until = earliest(valid_until, s.valid_until);
                            if let Some(item) = scope {
                                // For a subject under age, an item counts only if a guardian granted
                                // it, and no earlier than the guardian's grant of the category (the
                                // rule before item grants recorded who made them, kept so that nothing
                                // it denied is allowed now). A child's own item, made before the age
                                // mark, never counts: the guardian grants it again.
                                let grant = s.scopes.get(item);
                                let guardians = |g: &ScopeGrant| !guardian_rule || (g.by_guardian && g.at >= s.since);
                                if s.scope_in_force(item, category, clock.get()) && grant.is_some_and(guardians) {
                                    valid_until = earliest(valid_until, grant.and_then(|g| g.valid_until));
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
                    // Partial access (limited library, partial photos) and provisional
                    // notifications let the feature run, flagged so the app can adapt.
                    OsState::Limited | OsState::Provisional => limited = true,
                    OsState::Denied => deny(ReasonCode::OsPermissionDenied),
                    OsState::NotDetermined => deny(ReasonCode::OsPermissionNotDetermined),
                    OsState::Restricted => deny(ReasonCode::OsPermissionRestricted),
                }
            }
        }
        let allowed = reasons.is_empty();
        Ok(Decision {
            feature: plan.id.clone(),
            allowed,
            limited: allowed && limited,
            reasons,
            valid_until: if allowed { valid_until } else { None },
        })
    }

    /// [`Snapshot::check_with`] for a clock with a cheap upper bound (`at_most`, read at most
    /// once, and only if the answer depends on time; `None`: no bound, read `now`). Every
    /// time-dependent condition of a check (a grant's or an item's expiry) can only turn an
    /// allow into a denial as time passes, so an allow at a time no earlier than the exact one is
    /// the exact answer; any other answer that consulted the bound is recomputed at `now`.
    pub fn check_bracketed(
        &self,
        subject: &str,
        feature: &str,
        scope: Option<&str>,
        at_most: impl FnOnce() -> Option<Timestamp>,
        now: impl FnOnce() -> Timestamp,
    ) -> Result<Decision> {
        let now = std::cell::Cell::new(Some(now));
        // Taken once: the first run reads it only without a bound, the second only after one.
        let exact = || now.take().map_or(Timestamp(i64::MAX), |read| read());
        let used_bound = std::cell::Cell::new(false);
        let first = self.check_with(subject, feature, scope, || match at_most() {
            Some(bound) => {
                used_bound.set(true);
                bound
            }
            None => exact(),
        })?;
        if first.allowed || !used_bound.get() {
            return Ok(first);
        }
        self.check_with(subject, feature, scope, exact)
    }

    /// The status of one category for a subject at `now`, and since when.
    /// A subject id an older version stored and new input refuses is still read
    /// ([`check_stored_subject`]).
    pub fn status(&self, subject: &str, category: &str, now: Timestamp) -> Result<CategoryStatus> {
        check_stored_subject(subject)?;
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
    /// Read like [`Snapshot::status`].
    pub fn statuses(&self, subject: &str, now: Timestamp) -> Result<Vec<CategoryStatus>> {
        check_stored_subject(subject)?;
        Ok(self.policy.categories.iter().map(|c| self.status_in(subject, c, now)).collect())
    }

    /// Should the app show the consent prompt for this category now? True when never asked,
    /// renewal is required, the grant expired, or a refusal is older than the re-ask interval;
    /// for a subject under age under `guardian_consent`, also while the grant in force is not a
    /// guardian's (the child's own, from before the age mark: the gate denies it).
    /// False for categories that do not rest on consent, while the store is unavailable, and for
    /// a subject under age where the policy does not serve children.
    pub fn should_ask(&self, subject: &str, category: &str, now: Timestamp) -> Result<bool> {
        check_subject_in(subject, || self.subjects.get(subject).is_some())?;
        let category = self.policy.category(category)?;
        if category.legal_basis != LegalBasis::Consent || self.unavailable.is_some() {
            return Ok(false);
        }
        if self.under_age(subject) && self.policy.children == ChildrenRule::NotServed {
            return Ok(false);
        }
        let state = self.category_state(subject, category);
        let guardian_rule = self.under_age(subject) && self.policy.children == ChildrenRule::GuardianConsent;
        Ok(match status_of(category, state, now) {
            Status::NotAsked | Status::RenewalRequired | Status::Expired => true,
            // The child's own grant from before the age mark: the gate denies it (`under_age`),
            // so the guardian is asked.
            Status::Granted => guardian_rule && !state.is_some_and(|s| s.by_guardian),
            Status::Refused => state.and_then(|s| s.valid_until).is_some_and(|t| t <= now),
            _ => false,
        })
    }
}

/// The time of a check, read from the clock the first time it is needed and then kept.
struct LazyTime<F> {
    read: Option<F>,
    at: Timestamp,
}

impl<F: FnOnce() -> Timestamp> LazyTime<F> {
    fn new(read: F) -> Self {
        LazyTime { read: Some(read), at: Timestamp(i64::MIN) }
    }

    #[inline]
    fn get(&mut self) -> Timestamp {
        if let Some(read) = self.read.take() {
            self.at = read();
        }
        self.at
    }
}

/// [`status_of`] at the check's time. The clock is read for a recorded consent, the only status
/// that changes with time (expiry); contract, legal obligation and legitimate interest never
/// depend on it, nor does a consent never recorded (not asked), so those checks skip the read.
#[inline]
fn status_at<F: FnOnce() -> Timestamp>(category: &Category, state: Option<&CategoryState>, clock: &mut LazyTime<F>) -> Status {
    let at = if category.legal_basis == LegalBasis::Consent && state.is_some() { clock.get() } else { Timestamp(i64::MIN) };
    status_of(category, state, at)
}

#[inline]
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
    fn os_permissions_are_kept_per_permission() {
        let mut os = OsMap::default();
        assert!(OsPermission::PREDEFINED.iter().all(|p| os.get(p).is_none()));
        for (i, p) in OsPermission::PREDEFINED.iter().enumerate() {
            os.insert(*p, OsRecord { state: OsState::Denied, since: Timestamp(i as i64) });
        }
        os.insert(OsPermission::PHOTOS, OsRecord { state: OsState::Limited, since: Timestamp(9) });
        assert_eq!(os.get(&OsPermission::PHOTOS), Some(&OsRecord { state: OsState::Limited, since: Timestamp(9) }));
        assert_eq!(os.get(&OsPermission::CONTACTS).map(|r| r.state), Some(OsState::Denied));
        let listed: Vec<OsPermission> = os.iter().map(|(p, _)| *p).collect();
        assert_eq!(listed, OsPermission::PREDEFINED);
        let own = OsPermission::parse("gate_test_own_permission").unwrap();
        assert_eq!(os.get(&own), None);
        os.insert(own, OsRecord { state: OsState::Provisional, since: Timestamp(10) });
        assert_eq!(os.get(&own).map(|r| r.state), Some(OsState::Provisional));
    }

    #[test]
    fn the_clock_is_read_only_when_the_answer_depends_on_it() {
        let mut s = snapshot();
        let policy = s.policy.clone();
        let mut state = crate::state::SubjectState::default();
        let grant = crate::receipt::Receipt {
            subject: Some("alice".into()),
            category: Some("usage_statistics".into()),
            purpose_version: Some(1),
            valid_until: Some(Timestamp(1000)),
            ..crate::receipt::Receipt::blank(
                crate::model::Action::Grant,
                crate::model::Source::Settings,
                &policy.id,
                &policy.version,
                Timestamp(0),
            )
        };
        state.apply(&grant);
        s.subjects.insert("alice".into(), Arc::new(state));
        let reads = std::cell::Cell::new(0);
        let at = |t: i64| {
            let reads = &reads;
            move || {
                reads.set(reads.get() + 1);
                Timestamp(t)
            }
        };
        // A contract feature and a consent never recorded do not depend on the time.
        assert!(s.check_with("alice", "calling", None, at(0)).unwrap().allowed);
        assert!(!s.check_with("bob", "usage_analytics", None, at(0)).unwrap().allowed);
        assert_eq!(reads.get(), 0);
        // A recorded consent does: read once, and the expiry applies at its time.
        let d = s.check_with("alice", "usage_analytics", None, at(999)).unwrap();
        assert!(d.allowed && d.valid_until == Some(Timestamp(1000)));
        assert_eq!(reads.get(), 1);
        let d = s.check_with("alice", "usage_analytics", None, at(1000)).unwrap();
        assert_eq!(d.reasons, [Reason { code: ReasonCode::ConsentExpired, category: "usage_statistics".into() }]);
        assert_eq!(d.feature, "usage_analytics");
    }

    #[test]
    fn a_bracketed_check_answers_as_the_exact_clock_would() {
        let mut s = snapshot();
        let policy = s.policy.clone();
        let grant = crate::receipt::Receipt {
            subject: Some("alice".into()),
            category: Some("usage_statistics".into()),
            purpose_version: Some(1),
            valid_until: Some(Timestamp(1000)),
            ..crate::receipt::Receipt::blank(
                crate::model::Action::Grant,
                crate::model::Source::Settings,
                &policy.id,
                &policy.version,
                Timestamp(0),
            )
        };
        let mut state = crate::state::SubjectState::default();
        state.apply(&grant);
        s.subjects.insert("alice".into(), Arc::new(state));
        let exact_reads = std::cell::Cell::new(0);
        let check = |bound: Option<i64>, exact: i64| {
            let d = s
                .check_bracketed(
                    "alice",
                    "usage_analytics",
                    None,
                    || bound.map(Timestamp),
                    || {
                        exact_reads.set(exact_reads.get() + 1);
                        Timestamp(exact)
                    },
                )
                .unwrap();
            assert_eq!(d, s.check("alice", "usage_analytics", None, Timestamp(exact)).unwrap(), "bound {bound:?}, exact {exact}");
            d.allowed
        };
        // Far from the expiry: allowed on the bound alone, the exact clock not read.
        assert!(check(Some(900), 899));
        assert_eq!(exact_reads.get(), 0);
        // The bound reaches the expiry: the exact clock decides (still before it, then at it).
        assert!(check(Some(1000), 999));
        assert_eq!(exact_reads.get(), 1);
        assert!(!check(Some(1100), 1000));
        assert_eq!(exact_reads.get(), 2);
        // No bound: the exact clock, once.
        assert!(!check(None, 1000) && check(None, 10));
        assert_eq!(exact_reads.get(), 4);
        // An answer that does not depend on time reads neither.
        let d = s.check_bracketed("bob", "usage_analytics", None, || panic!("no bound needed"), || panic!("no time needed")).unwrap();
        assert!(!d.allowed);
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
