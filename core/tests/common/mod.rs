//! Shared helpers for the core's integration tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use consentkit_core::*;

/// Parses an RFC 3339 time.
pub fn ts(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

/// A store in a temporary directory on a manual clock.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
    pub clock: ManualClock,
    pub store: ConsentStore,
}

impl Fixture {
    pub fn new(policy: Policy) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("consent.db");
        let clock = ManualClock::new(ts("2026-01-15T09:00:00Z"));
        let store = ConsentStore::open_with(&path, Arc::new(policy), Arc::new(clock.clone()), OpenMode::ReadWrite).unwrap();
        Fixture { dir, path, clock, store }
    }

    pub fn ucanywhere() -> Fixture {
        Fixture::new(Policy::builtin())
    }

    /// Closes and reopens the store (same file, same clock), optionally with another policy.
    pub fn reopen(&mut self, policy: Option<Policy>) {
        let policy = policy.unwrap_or_else(|| (**self.store.policy()).clone());
        let placeholder = ConsentStore::open_fail_closed(
            self.dir.path().join("placeholder-never-used/x.db"),
            Arc::new(policy.clone()),
            Arc::new(self.clock.clone()),
        );
        drop(std::mem::replace(&mut self.store, placeholder));
        self.store = ConsentStore::open_with(&self.path, Arc::new(policy), Arc::new(self.clock.clone()), OpenMode::ReadWrite).unwrap();
    }

    pub fn record(&self, subject: &str, category: &str, action: Action, source: Source) -> Receipt {
        self.store.record(&DecisionInput::new(subject, category, action, source)).unwrap()
    }

    pub fn grant(&self, subject: &str, category: &str) -> Receipt {
        self.record(subject, category, Action::Grant, Source::Settings)
    }

    /// The reason codes of a check, as (code, category) strings.
    pub fn reasons(&self, subject: &str, feature: &str, scope: Option<&str>) -> Vec<(String, String)> {
        let d = self.store.check(subject, feature, scope).unwrap();
        assert_eq!(d.allowed, d.reasons.is_empty());
        d.reasons.into_iter().map(|r| (r.code.to_string(), r.category.into())).collect()
    }

    pub fn allowed(&self, subject: &str, feature: &str) -> bool {
        self.store.check(subject, feature, None).unwrap().allowed
    }
}

/// A fixture catalog from the repository's `tests/fixtures/`.
pub fn fixture_policy(name: &str) -> Policy {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures").join(name);
    Policy::from_json(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

pub fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

/// Recomputes the state digest over the (edited) table, as a forger who read the source would.
pub fn reseal_state_digest(path: &std::path::Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn.prepare("SELECT subject, state FROM subjects").unwrap();
    let subjects: std::collections::HashMap<String, consentkit_core::state::SubjectState> = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?)))
        .unwrap()
        .map(|row| row.unwrap())
        .map(|(s, row)| (s, consentkit_core::state::SubjectState::from_row(&row).unwrap()))
        .collect();
    let mut stmt = conn.prepare("SELECT permission, state, since FROM os_permissions").unwrap();
    let os: std::collections::HashMap<OsPermission, OsRecord> = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?)))
        .unwrap()
        .map(|row| row.unwrap())
        .map(|(p, s, since)| (p.parse().unwrap(), OsRecord { state: s.parse().unwrap(), since: Timestamp(since) }))
        .collect();
    let meta = |k: &str| conn.query_row("SELECT value FROM meta WHERE key=?1", [k], |r| r.get::<_, String>(0)).unwrap();
    let digest = consentkit_core::state_proof::StateSum::of(&subjects, &os).seal(meta("head_seq").parse().unwrap(), &meta("head_hash"));
    conn.execute("UPDATE meta SET value=?1 WHERE key='state_digest'", [digest]).unwrap();
}
