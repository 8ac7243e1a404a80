//! The decision-writing operations: record a decision (or a batch), the OS permission state,
//! the under-age flag, and expiry events; with the validation of a decision ([`decide`]).

use serde::{Deserialize, Serialize};

use super::{ConsentStore, WriteTx};
use crate::error::{invalid, Error, Result};
use crate::input::{check_scope, check_subject};
use crate::model::{Action, ChildrenRule, LegalBasis, OsPermission, OsState, Source, Status};
use crate::receipt::Receipt;

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

impl ConsentStore {
    /// Records one decision. Validated first; an invalid one writes nothing.
    pub fn record(&self, decision: &DecisionInput) -> Result<Receipt> {
        let (_, mut receipts) = self.write(|w| decide(w, decision))?;
        receipts.pop().ok_or_else(|| Error::Corrupt("a decision produced no event".into()))
    }

    /// Records several decisions in one transaction: all of them, or (on any error) none.
    pub fn record_batch(&self, decisions: &[DecisionInput]) -> Result<Vec<Receipt>> {
        let (_, receipts) = self.write(|w| decisions.iter().try_for_each(|d| decide(w, d)))?;
        Ok(receipts)
    }

    /// Records the device's OS permission state (device-wide: every subject). Returns the event,
    /// or `None` if the state did not change (repeated reports are not history).
    pub fn set_os_permission(&self, permission: OsPermission, state: OsState) -> Result<Option<Receipt>> {
        let (_, mut receipts) = self.write(|w| {
            if w.base.os.get(&permission).map(|r| r.state) == Some(state) {
                return Ok(());
            }
            let mut r = w.draft(Action::OsPermission, Source::OsSettings);
            r.permission = Some(permission);
            r.os_state = Some(state);
            w.append(r).map(|_| ())
        })?;
        Ok(receipts.pop())
    }

    /// Marks (or unmarks) a subject as under the policy's age of digital consent.
    pub fn set_under_age(&self, subject: &str, under_age: bool, source: Source) -> Result<Receipt> {
        check_subject(subject)?;
        check_caller_source(source)?;
        let (_, mut receipts) = self.write(|w| {
            let mut r = w.draft(Action::AgeStatus, source);
            r.subject = Some(subject.to_string());
            r.detail = Some(serde_json::json!({ "under_age": under_age }).to_string());
            w.append(r).map(|_| ())
        })?;
        receipts.pop().ok_or_else(|| Error::Corrupt("no event".into()))
    }

    /// Appends an `expire` event for every grant whose lifetime has ended, so history shows it.
    /// (Checks deny expired grants at their expiry time whether or not this has run.)
    pub fn record_expiries(&self) -> Result<Vec<Receipt>> {
        let (_, receipts) = self.write(|w| {
            let mut due = Vec::new();
            for (subject, state) in &w.base.subjects {
                for (category, cs) in &state.categories {
                    if cs.status == Status::Granted && cs.valid_until.is_some_and(|t| t <= w.now) {
                        due.push((subject.clone(), category.clone(), cs.purpose_version));
                    }
                }
            }
            due.sort();
            for (subject, category, purpose_version) in due {
                let mut r = w.draft(Action::Expire, Source::System);
                r.subject = Some(subject);
                r.category = Some(category);
                r.purpose_version = Some(purpose_version);
                w.append(r)?;
            }
            Ok(())
        })?;
        Ok(receipts)
    }
}

fn check_caller_source(source: Source) -> Result<()> {
    match source {
        Source::Import | Source::System => Err(invalid("source", source.as_str(), "is set by the SDK itself, not by callers")),
        _ => Ok(()),
    }
}

/// Validates one decision against the policy and the subject's state, then appends it.
fn decide(w: &mut WriteTx, d: &DecisionInput) -> Result<()> {
    check_subject(&d.subject)?;
    if let Some(scope) = &d.scope {
        check_scope(scope)?;
    }
    let category = w.policy.category(&d.category)?;
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
    if d.scope.is_some() && category.legal_basis != LegalBasis::Consent {
        return Err(invalid("scope", d.scope.as_deref().unwrap_or_default(), "only consent decisions take a scope"));
    }
    if d.action == Action::Grant {
        if d.source == Source::Support {
            return Err(Error::GrantBySupport { subject: d.subject.clone(), category: category.id.clone() });
        }
        if w.subject(&d.subject).is_some_and(|s| s.under_age) {
            let age = w.policy.age_of_digital_consent;
            match w.policy.children {
                ChildrenRule::NotServed => {
                    return Err(Error::ChildrenNotServed { subject: d.subject.clone(), policy: w.policy.id.clone(), age })
                }
                ChildrenRule::GuardianConsent if d.source != Source::Guardian => {
                    return Err(Error::UnderAge { subject: d.subject.clone(), category: category.id.clone(), age })
                }
                _ => {}
            }
        }
    }
    let mut r = w.draft(d.action, d.source);
    r.subject = Some(d.subject.clone());
    r.category = Some(category.id.clone());
    r.scope = d.scope.clone();
    r.purpose_version = Some(category.purpose_version);
    r.valid_until = match (d.action, &d.scope) {
        (Action::Grant, _) => w.policy.consent_lifetime.map(|p| w.now.plus(p)),
        (Action::Refuse, None) => w.policy.reask_after_refusal.map(|p| w.now.plus(p)),
        _ => None,
    };
    w.append(r)?;
    Ok(())
}
