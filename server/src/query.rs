//! Support's questions across a subject's devices, answered with the core's own fold and gate:
//! the subject's events from every device are merged in one order (the tie rule below), folded by
//! `SubjectState::fold`, and checked by `Snapshot::check` against each device's OS permissions.
//!
//! **Tie rule.** Events are applied in order of their time `at`; among events of the same
//! millisecond (on different devices), the more restrictive one is applied last and so wins:
//! a refusal, withdrawal, expiry or objection beats a grant made at the same instant (fail closed).
//! Each device's own events keep their sequence order (its chain is the truth about its order);
//! remaining ties are ordered by device id, so the answer is deterministic.
//!
//! **A clock ahead.** An event is never placed after the moment the server received it: its
//! place in the order is the earlier of its `at` and its `received_at` ([`DeviceEvent::order_at`]).
//! A device whose clock runs ahead (the core keeps stamping at or after the highest time it has
//! seen) would otherwise outrank every later decision of the subject's other devices: its grant
//! dated 2099 would outlast a withdrawal made today on the phone.

use std::collections::HashMap;
use std::sync::Arc;

use consentkit_core::gate::{CategoryStatus, Decision, OsRecord, Reason, Snapshot};
use consentkit_core::state::SubjectState;
use consentkit_core::{Action, OsPermission, Policy, Receipt, Source, Timestamp};
use serde::Serialize;
use tokio_postgres::GenericClient;

use crate::error::ApiError;
use crate::sql;

/// An event and the device it came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeviceEvent {
    /// The device.
    pub device: String,
    /// The receipt, as the device sealed it (the subject restored from the caller's input).
    pub receipt: Receipt,
    /// When the server stored it (its own clock).
    pub received_at: Timestamp,
}

impl DeviceEvent {
    /// The event's time in the merge order: its `at`, but never after the server received it.
    pub fn order_at(&self) -> Timestamp {
        self.receipt.at.min(self.received_at)
    }
}

/// A device of the subject and its OS permission states.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeviceView {
    /// The device id.
    pub device: String,
    /// Its latest OS permission states.
    pub os: HashMap<OsPermission, OsRecord>,
}

/// Everything the server holds about one subject.
#[derive(Clone, Debug)]
pub struct SubjectView {
    /// The subject as typed by the caller.
    pub subject: String,
    /// Its events from every device, in the tie rule's order.
    pub events: Vec<DeviceEvent>,
    /// Its devices, by id.
    pub devices: Vec<DeviceView>,
}

/// 0 for events that can open access, 1 for those that close it (applied last on a tie).
pub fn restrictiveness(r: &Receipt) -> u8 {
    match r.action {
        Action::Refuse | Action::Withdraw | Action::Expire | Action::Object => 1,
        Action::AgeStatus => u8::from(r.detail_field("under_age").and_then(|v| v.as_bool()).unwrap_or(true)),
        _ => 0,
    }
}

/// Orders events by the tie rule (see the module doc): a merge of each device's events in its own
/// sequence order, taking next the earliest head, and on a tie of time the less restrictive first.
pub fn merge_order(events: &mut Vec<DeviceEvent>) {
    let mut lanes: std::collections::BTreeMap<String, std::collections::VecDeque<DeviceEvent>> = Default::default();
    events.sort_by_key(|e| e.receipt.seq);
    for e in events.drain(..) {
        lanes.entry(e.device.clone()).or_default().push_back(e);
    }
    loop {
        let next = lanes
            .iter()
            .filter_map(|(device, lane)| {
                lane.front().map(|e| ((e.order_at(), restrictiveness(&e.receipt), device.clone()), device.clone()))
            })
            .min()
            .map(|(_, device)| device);
        let Some(device) = next else { break };
        if let Some(e) = lanes.get_mut(&device).and_then(|l| l.pop_front()) {
            events.push(e);
        }
    }
}

fn unreadable(what: &str) -> ApiError {
    tracing::error!(column = what, "a stored event does not decode");
    ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, "internal", "a stored event could not be read")
}

fn parse<T: std::str::FromStr>(text: Option<String>, what: &str) -> Result<Option<T>, ApiError> {
    text.map(|t| t.parse().map_err(|_| unreadable(what))).transpose()
}

/// A stored event row (columns of `SUBJECT_EVENTS`) as a receipt of `subject`.
pub fn receipt_of(row: &tokio_postgres::Row, subject: Option<&str>) -> Result<DeviceEvent, ApiError> {
    let receipt = Receipt {
        id: row.get(2),
        seq: row.get::<_, i64>(1) as u64,
        subject: subject.map(String::from),
        category: row.get(3),
        action: parse(Some(row.get(4)), "action")?.ok_or_else(|| unreadable("action"))?,
        scope: row.get(5),
        source: parse(Some(row.get(6)), "source")?.ok_or_else(|| unreadable("source"))?,
        policy_id: row.get(7),
        policy_version: row.get(8),
        purpose_version: row.get::<_, Option<i32>>(9).map(|v| v as u32),
        at: Timestamp(row.get(10)),
        valid_until: row.get::<_, Option<i64>>(11).map(Timestamp),
        permission: parse(row.get(12), "permission")?,
        os_state: parse(row.get(13), "os_state")?,
        detail: row.get(14),
        content_hash: row.get(15),
        prev_hash: row.get(16),
        hash: row.get(17),
    };
    Ok(DeviceEvent { device: row.get(0), receipt, received_at: Timestamp(row.get(18)) })
}

/// Loads a subject's events and devices (inside the caller's transaction).
pub async fn load(db: &impl GenericClient, keys: &crate::keys::Keys, subject: &str) -> Result<SubjectView, ApiError> {
    let key = keys.subject_key(subject);
    let mut events = Vec::new();
    for row in db.query(sql::SUBJECT_EVENTS, &[&key]).await? {
        events.push(receipt_of(&row, Some(subject))?);
    }
    merge_order(&mut events);
    let mut devices = Vec::new();
    for row in db.query(sql::SUBJECT_DEVICES, &[&key]).await? {
        let device: String = row.get(0);
        let devkey = keys.device_key(&device);
        let mut os = HashMap::new();
        for r in db.query(sql::DEVICE_OS_STATES, &[&devkey, &device]).await? {
            let (p, s): (Option<OsPermission>, _) = (parse(Some(r.get(0)), "permission")?, parse(Some(r.get(1)), "os_state")?);
            if let (Some(p), Some(state)) = (p, s) {
                os.insert(p, OsRecord { state, since: Timestamp(r.get(2)) });
            }
        }
        devices.push(DeviceView { device, os });
    }
    Ok(SubjectView { subject: subject.to_string(), events, devices })
}

/// The timeline: the subject's events and its devices' OS permission changes, in the tie rule's order.
pub async fn timeline(db: &impl GenericClient, keys: &crate::keys::Keys, view: &SubjectView) -> Result<Vec<DeviceEvent>, ApiError> {
    let mut events = view.events.clone();
    for d in &view.devices {
        for row in db.query(sql::DEVICE_OS_EVENTS, &[&keys.device_key(&d.device), &d.device]).await? {
            events.push(receipt_of(&row, None)?);
        }
    }
    merge_order(&mut events);
    Ok(events)
}

/// The sources a live write of the core accepts for a grant (support never grants; import and
/// system are the SDK's own).
fn may_grant(source: Source) -> bool {
    matches!(source, Source::Onboarding | Source::Settings | Source::OsSettings | Source::Guardian)
}

/// The event as the fold reads it under the server's policy, or `None` when it counts for nothing.
/// A device's token holder seals whatever it likes, so what the core's policy derives is derived
/// again: a grant from a source that never grants counts for nothing, and a grant's `valid_until`
/// is never later than its lifetime under this policy from [`DeviceEvent::order_at`] (a lifetime
/// sealed longer, or none, and a clock ahead, do not stretch it). The stored receipt is unchanged
/// (exports still verify); only the answer is read this way.
pub fn as_policy_reads<'e>(policy: &Policy, e: &'e DeviceEvent) -> Option<std::borrow::Cow<'e, Receipt>> {
    let r = &e.receipt;
    if r.action != Action::Grant {
        return Some(std::borrow::Cow::Borrowed(r));
    }
    if !may_grant(r.effective_source()) {
        return None;
    }
    let Some(lifetime) = policy.consent_lifetime else { return Some(std::borrow::Cow::Borrowed(r)) };
    let end = e.order_at().plus(lifetime);
    if r.valid_until.is_some_and(|t| t <= end) {
        return Some(std::borrow::Cow::Borrowed(r));
    }
    let mut capped = r.clone();
    capped.valid_until = Some(end);
    Some(std::borrow::Cow::Owned(capped))
}

/// A category of the subject's events that the server's policy does not know (a device on a
/// newer or another policy): its events are kept (the chain and the proof stay whole) but count
/// for nothing, so support sees them apart from the policy's categories instead of not at all.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UnknownCategory {
    /// The category id as the device recorded it.
    pub id: String,
    /// How many of the subject's events name it.
    pub events: u64,
    /// The latest of those events' times.
    pub last_at: Timestamp,
    /// The devices they came from, sorted.
    pub devices: Vec<String>,
}

impl SubjectView {
    /// The categories of the subject's events that `policy` does not know, by id.
    pub fn unknown_categories(&self, policy: &Policy) -> Vec<UnknownCategory> {
        let mut found: std::collections::BTreeMap<&str, UnknownCategory> = Default::default();
        for e in &self.events {
            let Some(id) = e.receipt.category.as_deref().filter(|c| policy.category(c).is_err()) else { continue };
            let u = found.entry(id).or_insert_with(|| UnknownCategory { id: id.into(), events: 0, last_at: e.receipt.at, devices: vec![] });
            u.events += 1;
            u.last_at = u.last_at.max(e.receipt.at);
            if !u.devices.contains(&e.device) {
                u.devices.push(e.device.clone());
                u.devices.sort();
            }
        }
        found.into_values().collect()
    }

    /// The folded state across devices, each event read under `policy` ([`as_policy_reads`]).
    pub fn state(&self, policy: &Policy) -> SubjectState {
        let read: Vec<_> = self.events.iter().filter_map(|e| as_policy_reads(policy, e)).collect();
        SubjectState::fold(read.iter().map(|r| r.as_ref()))
    }

    /// The core's snapshot for this subject with one device's OS permissions (none: never reported).
    pub fn snapshot(&self, policy: &Arc<Policy>, state: &Arc<SubjectState>, device: Option<&DeviceView>) -> Snapshot {
        let mut snapshot = Snapshot::empty(policy.clone());
        snapshot.subjects.insert(self.subject.clone(), state.clone());
        if let Some(d) = device {
            snapshot.os = d.os.iter().map(|(p, r)| (*p, *r)).collect();
        }
        snapshot
    }

    /// Every category's status across devices, and the device whose event decided it.
    pub fn statuses(&self, policy: &Arc<Policy>, now: Timestamp) -> Result<Vec<(CategoryStatus, Option<String>)>, ApiError> {
        let state = Arc::new(self.state(policy));
        let statuses = self.snapshot(policy, &state, None).statuses(&self.subject, now).map_err(|e| ApiError::invalid(e.to_string()))?;
        let mut decided_on: HashMap<&str, &str> = HashMap::new();
        for e in &self.events {
            let r = &e.receipt;
            if let (Some(c), None, true) = (r.category.as_deref(), r.scope.as_deref(), r.action.is_decision() || r.action == Action::Expire)
            {
                decided_on.insert(c, &e.device);
            }
        }
        Ok(statuses
            .into_iter()
            .map(|s| {
                let device = s.since.and(decided_on.get(s.category.as_str()).map(|d| d.to_string()));
                (s, device)
            })
            .collect())
    }

    /// `check` on each device (its OS permissions) with the cross-device consent state. The overall
    /// answer is allowed only if allowed on every device; its reasons are the union, in order.
    pub fn check(
        &self,
        policy: &Arc<Policy>,
        feature: &str,
        scope: Option<&str>,
        only: Option<&str>,
        now: Timestamp,
    ) -> Result<(Decision, Vec<(String, Decision)>), ApiError> {
        let state = Arc::new(self.state(policy));
        let devices: Vec<&DeviceView> = match only {
            Some(d) => {
                let found = self.devices.iter().find(|v| v.device == d);
                vec![found
                    .ok_or_else(|| ApiError::invalid(format!("the subject has no events from device '{}'", crate::ingest::short(d))))?]
            }
            None => self.devices.iter().collect(),
        };
        let run = |d: Option<&DeviceView>| {
            self.snapshot(policy, &state, d).check(&self.subject, feature, scope, now).map_err(|e| ApiError::invalid(e.to_string()))
        };
        if devices.is_empty() {
            return Ok((run(None)?, Vec::new()));
        }
        let mut per_device = Vec::new();
        for d in devices {
            per_device.push((d.device.clone(), run(Some(d))?));
        }
        let mut reasons: Vec<Reason> = Vec::new();
        for (_, d) in &per_device {
            for r in &d.reasons {
                if !reasons.contains(r) {
                    reasons.push(r.clone());
                }
            }
        }
        let allowed = per_device.iter().all(|(_, d)| d.allowed);
        let overall = Decision {
            feature: per_device[0].1.feature.clone(),
            allowed,
            limited: allowed && per_device.iter().any(|(_, d)| d.limited),
            reasons,
            valid_until: if allowed { per_device.iter().filter_map(|(_, d)| d.valid_until).min() } else { None },
        };
        Ok((overall, per_device))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(device: &str, seq: u64, at: i64, action: Action) -> DeviceEvent {
        let mut receipt = Receipt::blank(action, Source::Settings, "p", "1", Timestamp(at));
        receipt.seq = seq;
        receipt.subject = Some("alice".into());
        receipt.category = Some("c".into());
        DeviceEvent { device: device.into(), receipt, received_at: Timestamp(i64::MAX) }
    }

    fn order(events: &[DeviceEvent]) -> Vec<(String, u64)> {
        events.iter().map(|e| (e.device.clone(), e.receipt.seq)).collect()
    }

    #[test]
    fn ties_put_the_restrictive_event_last_and_each_device_keeps_its_own_order() {
        let mut events = vec![
            event("tablet", 1, 1000, Action::Refuse),
            event("phone", 1, 1000, Action::Grant),
            event("phone", 2, 500, Action::Withdraw), // the phone's clock went back: still after its seq 1
            event("tablet", 2, 2000, Action::Grant),
        ];
        merge_order(&mut events);
        assert_eq!(order(&events), [("phone".into(), 1), ("phone".into(), 2), ("tablet".into(), 1), ("tablet".into(), 2)]);
        let mut tie = vec![event("a", 1, 1000, Action::Withdraw), event("b", 1, 1000, Action::Grant)];
        merge_order(&mut tie);
        assert_eq!(order(&tie), [("b".into(), 1), ("a".into(), 1)], "the withdrawal is applied last, whatever the device names");
        let state = SubjectState::fold(tie.iter().map(|e| &e.receipt));
        assert_eq!(state.categories["c"].status, consentkit_core::Status::Withdrawn);
    }
}
