//! The decision-writing operations: record a decision (or a batch), the OS permission state,
//! the under-age flag, and expiry events. A decision is validated by [`crate::validate`].

use super::{ConsentStore, WriteTx};
use crate::error::{Error, Result};
use crate::input::check_subject_in;
use crate::model::{Action, LegalBasis, OsState, Source, Status};
use crate::os_permission::OsPermission;
use crate::receipt::Receipt;
use crate::validate::{self, check_caller_source, DecisionInput};

impl ConsentStore {
    /// Records one decision. Validated first; an invalid one writes nothing. The receipt's time is
    /// the store's time ([`ConsentStore::now`]): the clock's reading, or the store's high-water
    /// mark when the clock reads behind it. A grant while the clock reads behind the mark by more
    /// than [`validate::CLOCK_BEHIND_TOLERANCE_MS`] is refused ([`Error::ClockBehind`]; within
    /// it, it is stamped at the mark); refusals, withdrawals and objections are always recorded.
    pub fn record(&self, decision: &DecisionInput) -> Result<Receipt> {
        let (_, mut receipts) = self.write(|w| decide(w, decision))?;
        receipts.pop().ok_or_else(|| Error::Corrupt("a decision produced no event".into()))
    }

    /// Records several decisions in one transaction: all of them, or (on any error) none. A grant
    /// refused because the clock reads behind the store's time by more than
    /// [`validate::CLOCK_BEHIND_TOLERANCE_MS`] ([`Error::ClockBehind`]) refuses the whole batch
    /// like any bad item, withdrawals in it included: record withdrawals on their own (they are
    /// always recorded), or retry the batch without the grant.
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
        check_caller_source(source)?;
        let (_, mut receipts) = self.write(|w| {
            // A subject the store already holds takes the stored-id rule (see `check_subject_in`).
            check_subject_in(subject, || w.subject(subject).is_some())?;
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
                    let consent = w.policy.category(category).is_ok_and(|c| c.legal_basis == LegalBasis::Consent);
                    if consent && cs.status == Status::Granted && cs.valid_until.is_some_and(|t| t <= w.now) {
                        due.push((subject.clone(), category.clone(), cs.purpose_version));
                    }
                }
            }
            crate::order::sort_by_less(&mut due, |a, b| a < b);
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

/// Validates one live decision against the policy and the subject's state
/// ([`validate::check_decision`], the same check an import replays), then appends it.
fn decide(w: &mut WriteTx, d: &DecisionInput) -> Result<()> {
    let category = validate::check_decision(w.policy, w.subject(&d.subject), d)?;
    validate::check_grant_time(d.action, w.clock_reading, w.now)?;
    let event = validate::decision_event(w.policy, category, d, w.now);
    // Stamped at the mark while the running floor is past it (the clock set back within the
    // tolerance of the mark, long ago in real time): a grant already expired at the time checks
    // use would be recorded, its receipt saying until when, and denied at once. Refused instead.
    if event.action == Action::Grant && event.valid_until.is_some_and(|until| until <= w.check_time) {
        return Err(Error::ClockBehind { clock: w.clock_reading, store_time: w.check_time });
    }
    w.append(event)?;
    Ok(())
}
