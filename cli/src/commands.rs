//! Runs one command: opens the store (read-only for queries), calls the core, prints.

use std::sync::Arc;

use consentkit_core::*;
use serde_json::json;

use crate::args::{Cli, Command, DecisionArgs};
use crate::output::{or_dash, receipt, status_table, table};

/// A failed command: the exit code and one line for stderr.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

/// Exit code for bad input or usage.
pub const BAD_INPUT: u8 = 2;
/// Exit code for a store problem (missing, corrupt, tampered, newer schema).
pub const STORE: u8 = 3;

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        let code = if e.is_store_problem() { STORE } else { BAD_INPUT };
        let mut message = e.to_string();
        if matches!(e, Error::GrantBySupport { .. }) {
            message.push_str(" (pass --source settings, onboarding or guardian to record the subject's own grant)");
        }
        Failure { code, message }
    }
}

pub fn bad(message: impl Into<String>) -> Failure {
    Failure { code: BAD_INPUT, message: message.into() }
}

/// Loads `--policy` or the built-in catalog.
pub fn load_policy(cli: &Cli) -> Result<Policy, Failure> {
    match &cli.policy {
        None => Ok(Policy::builtin()),
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read policy file {}: {e}", path.display())))?;
            Policy::from_json(&text).map_err(|e| bad(format!("{}: {e}", path.display())))
        }
    }
}

/// The clock: `--now` or the system's.
pub fn clock(cli: &Cli) -> Result<Arc<dyn Clock>, Failure> {
    match &cli.now {
        None => Ok(Arc::new(SystemClock)),
        Some(text) => Ok(Arc::new(ManualClock::new(Timestamp::parse(text).map_err(|e| bad(format!("--now: {e}")))?))),
    }
}

fn parse<T: std::str::FromStr<Err = String>>(what: &str, text: &str) -> Result<T, Failure> {
    text.parse().map_err(|e: String| bad(format!("{what}: {e}")))
}

pub fn open(cli: &Cli, mode: OpenMode) -> Result<ConsentStore, Failure> {
    Ok(ConsentStore::open_with(&cli.db, Arc::new(load_policy(cli)?), clock(cli)?, mode)?)
}

pub fn print_json(value: &impl serde::Serialize) {
    println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
}

/// Runs the command; returns the exit code on success (0, or 1 for a denied check).
pub fn run(cli: &Cli) -> Result<u8, Failure> {
    if let Some(url) = &cli.server {
        if let Some(code) = crate::remote::query(cli, url)? {
            return Ok(code);
        }
    }
    match &cli.command {
        Command::Policy => policy(cli),
        Command::Grant(a) => decide(cli, a, Action::Grant),
        Command::Refuse(a) => decide(cli, a, Action::Refuse),
        Command::Withdraw(a) => decide(cli, a, Action::Withdraw),
        Command::Object(a) => decide(cli, a, Action::Object),
        Command::WithdrawObjection(a) => decide(cli, a, Action::WithdrawObjection),
        Command::Os { permission, state } => {
            let permission: OsPermission = parse("permission", permission)?;
            let state: OsState = parse("state", state)?;
            let store = open(cli, OpenMode::ReadWrite)?;
            match store.set_os_permission(permission, state)? {
                Some(r) if cli.json => print_json(&r),
                Some(r) => receipt(&r),
                None if cli.json => print_json(&json!({ "changed": false, "permission": permission, "state": state })),
                None => println!("{permission} is already {state}; nothing recorded"),
            }
            Ok(0)
        }
        Command::UnderAge { subject, clear, source } => {
            let source: Source = parse("source", source)?;
            let store = open(cli, OpenMode::ReadWrite)?;
            let r = store.set_under_age(subject, !clear, source)?;
            if cli.json {
                print_json(&r)
            } else {
                receipt(&r)
            }
            Ok(0)
        }
        Command::Status { subject } => status(cli, subject),
        Command::Check { subject, feature, scope } => check(cli, subject, feature, scope.as_deref()),
        Command::History { subject } => history(cli, subject),
        Command::Export { subject } => {
            let store = open(cli, OpenMode::ReadOnly)?;
            println!("{}", store.export_json(subject)?);
            Ok(0)
        }
        Command::Import { file } => {
            let text = std::fs::read_to_string(file).map_err(|e| bad(format!("cannot read {}: {e}", file.display())))?;
            let store = open(cli, OpenMode::ReadWrite)?;
            let receipts = store.import_json(&text)?;
            let subject = receipts.first().and_then(|r| r.subject.clone());
            if cli.json {
                print_json(&json!({ "subject": subject, "imported": receipts.len() }));
            } else {
                println!("imported {} events of {}", receipts.len(), or_dash(subject));
            }
            Ok(0)
        }
        Command::Erase { subject, source } => {
            let source: Source = parse("source", source)?;
            let store = open(cli, OpenMode::ReadWrite)?;
            let report = store.erase(subject, source)?;
            if cli.json {
                print_json(&report);
            } else {
                println!("erased {} events of the subject; the erasure record:", report.erased_events);
                receipt(&report.receipt);
            }
            Ok(0)
        }
        Command::Purge => {
            let store = open(cli, OpenMode::ReadWrite)?;
            let report = store.purge()?;
            if cli.json {
                print_json(&report);
            } else {
                println!("purged {} events past their retention period", report.removed_events);
                if let Some(r) = &report.receipt {
                    receipt(r);
                }
            }
            Ok(0)
        }
        Command::Verify => {
            let store = open(cli, OpenMode::ReadOnly)?;
            match store.verify() {
                Ok(n) => {
                    if cli.json {
                        print_json(&json!({ "intact": true, "events": n }))
                    } else {
                        println!("chain intact: {n} events verified")
                    }
                    Ok(0)
                }
                Err(Error::Tampered(b)) => {
                    if cli.json {
                        print_json(&json!({ "intact": false, "first_bad_seq": b.seq(), "error": b.to_string() }));
                    }
                    Err(Failure { code: STORE, message: b.to_string() })
                }
                Err(e) => Err(e.into()),
            }
        }
        Command::Sync(a) => crate::remote::sync(cli, a),
        Command::VerifyReceipt(a) => crate::remote::verify_receipt(cli, a),
        Command::Demo => crate::demo::run(cli),
    }
}

fn policy(cli: &Cli) -> Result<u8, Failure> {
    let policy = load_policy(cli)?;
    if cli.json {
        println!("{}", policy.to_json());
        return Ok(0);
    }
    println!("{} {} ({})\n", policy.id, policy.version, policy.name);
    let rows: Vec<Vec<String>> = policy
        .categories
        .iter()
        .map(|c| {
            vec![c.id.clone(), c.legal_basis.to_string(), or_dash(c.os_permission), c.retention.to_string(), c.purpose_version.to_string()]
        })
        .collect();
    table(&["CATEGORY", "LEGAL BASIS", "OS PERMISSION", "RETENTION", "PURPOSE"], &rows);
    println!();
    let rows: Vec<Vec<String>> = policy
        .features
        .iter()
        .map(|f| vec![f.id.clone(), f.categories.join(", "), if f.per_item { "yes".into() } else { "no".into() }])
        .collect();
    table(&["FEATURE", "NEEDS", "PER ITEM"], &rows);
    println!(
        "\nconsent lifetime {}, re-ask after refusal {}, age of digital consent {} ({})",
        or_dash(policy.consent_lifetime),
        or_dash(policy.reask_after_refusal),
        policy.age_of_digital_consent,
        policy.children
    );
    Ok(0)
}

fn decide(cli: &Cli, a: &DecisionArgs, action: Action) -> Result<u8, Failure> {
    let source: Source = parse("source", &a.source)?;
    let store = open(cli, OpenMode::ReadWrite)?;
    let mut input = DecisionInput::new(&a.subject, &a.category, action, source);
    input.scope = a.scope.clone();
    let r = store.record(&input)?;
    if cli.json {
        print_json(&r)
    } else {
        receipt(&r)
    }
    Ok(0)
}

pub fn status(cli: &Cli, subject: &str) -> Result<u8, Failure> {
    let store = open(cli, OpenMode::ReadOnly)?;
    let statuses = store.statuses(subject)?;
    let policy = store.policy();
    if cli.json {
        let categories: Vec<_> = statuses
            .iter()
            .map(|s| json!({ "id": s.category, "legal_basis": s.legal_basis, "status": s.status, "since": s.since }))
            .collect();
        print_json(&json!({ "subject": subject, "policy": { "id": policy.id, "version": policy.version }, "categories": categories }));
    } else {
        println!("{subject} under policy {} {}\n", policy.id, policy.version);
        status_table(&statuses);
    }
    Ok(0)
}

pub fn check(cli: &Cli, subject: &str, feature: &str, scope: Option<&str>) -> Result<u8, Failure> {
    let store = open(cli, OpenMode::ReadOnly)?;
    let d = store.check(subject, feature, scope)?;
    if cli.json {
        let reasons: Vec<_> = d.reasons.iter().map(|r| json!({ "code": r.code, "category": r.category })).collect();
        print_json(&json!({ "feature": d.feature, "allowed": d.allowed, "limited": d.limited, "reasons": reasons }));
    } else if d.allowed {
        println!("{feature} is allowed for {subject}{}", if d.limited { " (limited OS access)" } else { "" });
    } else {
        println!("{feature} is denied for {subject}:");
        for r in &d.reasons {
            println!("  {:<30} {}", r.code.to_string(), r.category);
        }
    }
    Ok(if d.allowed { 0 } else { 1 })
}

fn history(cli: &Cli, subject: &str) -> Result<u8, Failure> {
    let store = open(cli, OpenMode::ReadOnly)?;
    let events = store.history(subject)?;
    if cli.json {
        let rows: Vec<_> = events
            .iter()
            .map(|e| {
                let mut v = json!({
                    "seq": e.seq, "id": e.id, "category": e.category, "action": e.action, "scope": e.scope,
                    "source": e.source, "policy_version": e.policy_version, "at": e.at, "hash": e.hash,
                });
                if let (Some(p), Some(s)) = (e.permission, e.os_state) {
                    v["permission"] = json!(p);
                    v["state"] = json!(s);
                }
                v
            })
            .collect();
        print_json(&rows);
    } else {
        let rows: Vec<Vec<String>> = events
            .iter()
            .map(|e| {
                let what = match (e.permission, e.os_state) {
                    (Some(p), Some(s)) => format!("OS {p} -> {s} (device)"),
                    _ => or_dash(e.category.as_ref()),
                };
                vec![
                    e.seq.to_string(),
                    e.at.to_string(),
                    e.action.to_string(),
                    what,
                    or_dash(e.scope.as_ref()),
                    e.source.to_string(),
                    e.policy_version.clone(),
                ]
            })
            .collect();
        table(&["SEQ", "AT", "ACTION", "CATEGORY", "SCOPE", "SOURCE", "POLICY"], &rows);
    }
    Ok(0)
}
