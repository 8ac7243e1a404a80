//! One validation for every decision that enters the ledger, whether a live write
//! (`check_decision`, from `record` and `record_batch`) or an event replayed from an export
//! document (`imported`, which calls the same check): the action must fit the category's legal basis, support may not grant, the
//! under-age rules hold, a scope is well-formed and only where a per-item feature uses it. The
//! fields the policy decides (purpose version, `valid_until`) are derived here, never taken from
//! the caller or the file; an imported event never carries an OS permission.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::error::{invalid, Error, Result};
use crate::input::{check_scope_in, check_subject_in, check_text};
use crate::model::{Action, ChildrenRule, LegalBasis, Source, Status};
use crate::policy::{Category, Policy};
use crate::receipt::Receipt;
use crate::state::SubjectState;

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

/// Refuses the sources only the SDK sets (`import`, `system`).
pub(crate) fn check_caller_source(source: Source) -> Result<()> {
    match source {
        Source::Import | Source::System => Err(invalid("source", source.as_str(), "is set by the SDK itself, not by callers")),
        _ => Ok(()),
    }
}

/// How far the clock may read behind the store's time for a grant still to be recorded: 10
/// minutes, the size of an NTP step back after a check at a clock a few minutes fast (every
/// check advances the store's time mark). Such a grant is stamped at the store's time and its
/// lifetime counts from there, so it lasts at most this much longer than from the real time.
pub const CLOCK_BEHIND_TOLERANCE_MS: i64 = 10 * 60 * 1000;

/// Refuses a grant made while the clock reads behind the store's time by more than
/// [`CLOCK_BEHIND_TOLERANCE_MS`] (`clock_reading` + tolerance < `store_time`): the clock was set
/// back, or the store's high-water mark came from a reading that was ahead. Stamped at the
/// store's time, the grant would last its lifetime from that time, not from the real one (a mark
/// at 2099 would make a 13-month consent last until 2100); counted from the clock's reading, it
/// would be expired when made. Every other action is recorded (withdrawing is never harder than
/// granting).
pub(crate) fn check_grant_time(action: Action, clock_reading: Timestamp, store_time: Timestamp) -> Result<()> {
    if action == Action::Grant && clock_reading.0.saturating_add(CLOCK_BEHIND_TOLERANCE_MS) < store_time.0 {
        return Err(Error::ClockBehind { clock: clock_reading, store_time });
    }
    Ok(())
}

/// Checks one decision against the policy and the subject's state so far (`state`: `None` when
/// the subject has no record). Returns the category. The same rules for live writes and imports.
pub(crate) fn check_decision<'p>(policy: &'p Policy, state: Option<&SubjectState>, d: &DecisionInput) -> Result<&'p Category> {
    // An id the store already holds (written by an older version that accepted `" alice"`) takes
    // the stored-id rule, so its user can still withdraw, refuse, object or grant again; only an
    // id new to the store must pass the strict check.
    check_subject_in(&d.subject, || state.is_some())?;
    if let Some(scope) = &d.scope {
        check_scope_in(scope, || state.is_some_and(|s| s.holds_scope(scope)))?;
    }
    let category = policy.category(&d.category)?;
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
    if let Some(scope) = d.scope.as_deref() {
        if category.legal_basis != LegalBasis::Consent {
            return Err(invalid("scope", &scope.escape_debug().to_string(), "an objection covers the whole category: it takes no scope"));
        }
        if !policy.is_per_item(&category.id) {
            let why = format!("no per-item feature uses category '{}': record the decision without a scope", category.id);
            return Err(invalid("scope", &scope.escape_debug().to_string(), why));
        }
    }
    if d.action == Action::Grant {
        if d.source == Source::Support {
            return Err(Error::GrantBySupport { subject: d.subject.clone(), category: category.id.clone() });
        }
        if !d.source.may_grant() {
            return Err(invalid(
                "source",
                d.source.as_str(),
                "never grants: a consent is given in the app (onboarding, settings) or by a guardian; an OS permission is not a consent",
            ));
        }
        if state.is_some_and(|s| s.under_age) {
            let age = policy.age_of_digital_consent;
            match policy.children {
                ChildrenRule::NotServed => {
                    return Err(Error::ChildrenNotServed { subject: d.subject.clone(), policy: policy.id.clone(), age })
                }
                ChildrenRule::GuardianConsent if d.source != Source::Guardian => {
                    return Err(Error::UnderAge { subject: d.subject.clone(), category: category.id.clone(), age })
                }
                _ => {}
            }
        }
    }
    Ok(category)
}

/// The (unsealed) event of a checked decision made at `at`, with the fields the policy derives:
/// the category's purpose version, and `valid_until` (a grant's lifetime, a refusal's re-ask time).
pub(crate) fn decision_event(policy: &Policy, category: &Category, d: &DecisionInput, at: Timestamp) -> Receipt {
    let mut r = Receipt::blank(d.action, d.source, &policy.id, &policy.version, at);
    r.subject = Some(d.subject.clone());
    r.category = Some(category.id.clone());
    r.scope = d.scope.clone();
    r.purpose_version = Some(category.purpose_version);
    r.valid_until = match (d.action, &d.scope) {
        (Action::Grant, _) => policy.consent_lifetime.map(|p| at.plus(p)),
        (Action::Refuse, None) => policy.reask_after_refusal.map(|p| at.plus(p)),
        _ => None,
    };
    r
}

/// True when the decision is one that some legal basis takes (grant, refuse, withdraw under
/// consent; object, withdraw an objection under legitimate interest) and breaks no rule that holds
/// under every basis (support never grants).
fn decided_under_some_basis(d: &DecisionInput) -> bool {
    let some_basis = matches!(d.action, Action::Grant | Action::Refuse | Action::Withdraw | Action::Object | Action::WithdrawObjection);
    some_basis && !(d.action == Action::Grant && d.source == Source::Support)
}

/// Replays one event of an export document for `subject` as a live write would record it:
/// validated by [`check_decision`] (with the decision's original source) against the state the
/// replay has built so far, `valid_until` re-derived from the policy and the event's time, the
/// purpose version never above the policy's (the file can only lower it: renewal then required),
/// no OS permission fields, no `detail` but the SDK's own. `state` is the subject's state so far,
/// `now` this device's time (the store's), `clock_reading` its clock's own reading (a grant dated
/// after it is refused, see [`check_grant_time`]), `after` the previous event's time. Returns the (unsealed) event to
/// append: source `import`, the original source kept in `detail`.
pub(crate) fn imported(
    policy: &Policy,
    state: Option<&SubjectState>,
    now: Timestamp,
    clock_reading: Timestamp,
    subject: &str,
    r: &Receipt,
    after: Timestamp,
) -> Result<Receipt> {
    if uuid::Uuid::parse_str(&r.id).is_err() {
        return Err(invalid("event id", &r.id.escape_debug().to_string(), "is not a UUID"));
    }
    check_text("policy version", &r.policy_version)?;
    if r.permission.is_some() || r.os_state.is_some() {
        return Err(invalid("event", &r.id, "carries OS permission fields: the OS permission state comes only from this device"));
    }
    if r.at > now {
        return Err(invalid("event time", &r.at.to_string(), format!("is after this device's time {now}")));
    }
    if r.action == Action::Grant && r.at.0 > clock_reading.0.saturating_add(CLOCK_BEHIND_TOLERANCE_MS) {
        // Its lifetime, re-derived from its time, would run past the lifetime counted from now
        // (by more than the tolerance a live grant has).
        return Err(Error::ClockBehind { clock: clock_reading, store_time: r.at });
    }
    if r.at < after {
        return Err(invalid("event time", &r.at.to_string(), format!("is before the previous event's {after}")));
    }
    let original = match r.source {
        Source::Import => r.effective_source(),
        source => source,
    };
    if original == Source::Import {
        return Err(invalid("source", "import", "an imported event must name its original source"));
    }
    let mut detail: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    let mut event = match r.action {
        action if action.is_decision() => {
            let category = r.category.as_deref().ok_or_else(|| invalid("event", &r.id, "has no category"))?;
            let d = DecisionInput {
                subject: subject.to_string(),
                category: category.to_string(),
                action,
                scope: r.scope.clone(),
                source: original,
            };
            let category = match check_decision(policy, state, &d) {
                Ok(category) => category,
                // Recorded under another policy version, where the category may have rested on
                // another legal basis (an objection when it was legitimate interest): kept as
                // history, honest exports of older versions restore. It never counts under the
                // current basis (the fold reads a status only under the basis it was decided
                // under), so it allows nothing. Under the same version it is a forgery.
                Err(Error::NotApplicable { .. }) if r.policy_version != policy.version && decided_under_some_basis(&d) => {
                    if let Some(scope) = &d.scope {
                        check_scope_in(scope, || state.is_some_and(|s| s.holds_scope(scope)))?;
                    }
                    policy.category(&d.category)?
                }
                Err(e) => return Err(e),
            };
            let mut event = decision_event(policy, category, &d, r.at);
            event.purpose_version = Some(r.purpose_version.unwrap_or(1).min(category.purpose_version));
            event
        }
        Action::AgeStatus => {
            check_caller_source(original)?;
            let under_age = r.detail_field("under_age").and_then(|v| v.as_bool());
            let under_age = under_age.ok_or_else(|| invalid("event", &r.id, "is an age status without a boolean under_age"))?;
            if r.category.is_some() || r.scope.is_some() {
                return Err(invalid("event", &r.id, "is an age status with a category or scope"));
            }
            detail.insert("under_age".into(), under_age.into());
            let mut event = Receipt::blank(Action::AgeStatus, original, &policy.id, &policy.version, r.at);
            event.subject = Some(subject.to_string());
            event
        }
        Action::Expire => {
            // The SDK's own record that a grant ran out: only where this policy says it did.
            let category = policy.category(r.category.as_deref().unwrap_or_default())?;
            let granted = state.and_then(|s| s.categories.get(&category.id)).filter(|c| c.status == Status::Granted);
            let due = granted.and_then(|c| c.valid_until).is_some_and(|t| t <= r.at);
            if original != Source::System || r.scope.is_some() || category.legal_basis != LegalBasis::Consent || !due {
                return Err(invalid("event", &r.id, "is an expiry of no grant that had run out"));
            }
            let mut event = Receipt::blank(Action::Expire, Source::System, &policy.id, &policy.version, r.at);
            event.subject = Some(subject.to_string());
            event.category = Some(category.id.clone());
            event.purpose_version = granted.map(|c| c.purpose_version);
            event
        }
        other => return Err(Error::ReservedAction(other.to_string())),
    };
    detail.insert("original_source".into(), original.as_str().into());
    detail.insert("original_seq".into(), r.seq.into());
    detail.insert("original_hash".into(), r.hash.clone().into());
    event.id = r.id.clone();
    event.source = Source::Import;
    event.policy_version = r.policy_version.clone();
    event.detail = Some(serde_json::to_string(&detail).map_err(|e| Error::Corrupt(e.to_string()))?);
    Ok(event)
}
