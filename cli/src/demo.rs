//! `consentkit demo`: a narrated walk through a UCAnywhere user's life on a fresh demo database.

use std::path::PathBuf;
use std::sync::Arc;

use consentkit_core::*;

use crate::args::Cli;
use crate::failure::{bad, Failure, STORE};
use crate::outln;
use crate::output::{format_table, or_dash, print_json};

const DAY: i64 = 86_400_000;
const DEMO_DB: &str = "consentkit-demo.db";

/// The demo's narration: printed as it goes, or, with `--json`, collected into steps.
struct Narration {
    json: bool,
    steps: Vec<serde_json::Value>,
    lines: Vec<String>,
}

impl Narration {
    fn step(&mut self, n: u32, title: &str, text: &str) {
        if self.json {
            self.steps.push(serde_json::json!({ "step": n, "title": title, "text": text, "lines": [] }));
        } else {
            outln!("\n== {n}. {title}\n{text}\n");
        }
    }

    fn say(&mut self, line: String) {
        if !self.json {
            outln!("{line}");
        } else if let Some(step) = self.steps.last_mut() {
            if let Some(lines) = step["lines"].as_array_mut() {
                lines.extend(line.lines().map(|l| serde_json::Value::from(l.to_string())));
            }
        } else {
            self.lines.extend(line.lines().map(str::to_string));
        }
    }

    fn status_table(&mut self, statuses: &[CategoryStatus]) {
        let rows: Vec<Vec<String>> =
            statuses.iter().map(|s| vec![s.category.clone(), s.legal_basis.to_string(), s.status.to_string(), or_dash(s.since)]).collect();
        for line in format_table(&["CATEGORY", "LEGAL BASIS", "STATUS", "SINCE"], &rows) {
            self.say(line);
        }
    }
}

macro_rules! say {
    ($n:expr, $($arg:tt)*) => { $n.say(format!($($arg)*)) };
}

fn decision_line(out: &mut Narration, store: &ConsentStore, subject: &str, feature: &str, scope: Option<&str>) -> Result<(), Failure> {
    let d = store.check(subject, feature, scope)?;
    let item = scope.map(|s| format!(" [{s}]")).unwrap_or_default();
    if d.allowed {
        say!(out, "  check {feature}{item}: ALLOWED{}", if d.limited { " (limited)" } else { "" });
    } else {
        let why: Vec<String> = d.reasons.iter().map(|r| format!("{} ({})", r.code, r.category)).collect();
        say!(out, "  check {feature}{item}: DENIED, {}", why.join(", "));
    }
    Ok(())
}

fn open(path: &PathBuf, policy: Policy, clock: &ManualClock) -> Result<ConsentStore, Failure> {
    Ok(ConsentStore::open_with(path, Arc::new(policy), Arc::new(clock.clone()), OpenMode::ReadWrite)?)
}

/// Runs the demo. Deterministic: its clock starts at `--now` (default 2026-01-15T09:00:00Z).
pub fn run(cli: &Cli) -> Result<u8, Failure> {
    let start = match &cli.now {
        Some(t) => Timestamp::parse(t).map_err(bad)?,
        None => Timestamp::parse("2026-01-15T09:00:00Z").map_err(bad)?,
    };
    let path = PathBuf::from(DEMO_DB);
    for suffix in ["", "-wal", "-shm"] {
        let file = PathBuf::from(format!("{DEMO_DB}{suffix}"));
        if file.exists() {
            std::fs::remove_file(&file).map_err(|e| Failure { code: STORE, message: format!("cannot reset {}: {e}", file.display()) })?;
        }
    }
    let clock = ManualClock::new(start);
    let mut out = Narration { json: cli.json, steps: Vec::new(), lines: Vec::new() };
    let alice = "alice@pcs-customer.example";
    let mut store = open(&path, Policy::builtin(), &clock)?;

    say!(out, "ConsentKit demo: one UCAnywhere user's consent, from first launch to erasure.");
    say!(out, "Demo database: {} (fresh). Clock starts at {start}.", path.display());

    out.step(1, "First launch: what must the app ask?",
        "Three of UCAnywhere's eight categories rest on consent; the others on contract or legitimate\ninterest. should_ask() tells the onboarding dialog which prompts to show:");
    for c in &store.policy().categories {
        let ask = store.should_ask(alice, &c.id)?;
        say!(out, "  {:<20} {:<20} {}", c.id, c.legal_basis.to_string(), if ask { "ASK" } else { "-" });
    }
    say!(out, "\nBefore any answer the gate fails closed:");
    decision_line(&mut out, &store, alice, "usage_analytics", None)?;
    decision_line(&mut out, &store, alice, "calling", None)?;

    out.step(
        2,
        "Onboarding: alice answers the dialog",
        "Her three answers commit in one transaction: all or none, so a force-quit mid-dialog records nothing.",
    );
    let receipts = store.record_batch(&[
        DecisionInput::new(alice, "device_contacts", Action::Grant, Source::Onboarding),
        DecisionInput::new(alice, "usage_statistics", Action::Grant, Source::Onboarding),
        DecisionInput::new(alice, "photos_media", Action::Refuse, Source::Onboarding),
    ])?;
    for r in &receipts {
        say!(
            out,
            "  receipt seq {} {:<8} {:<18} valid until {}  hash {}…",
            r.seq,
            r.action.to_string(),
            or_dash(r.category.as_ref()),
            or_dash(r.valid_until),
            &r.hash[..12]
        );
    }
    store.set_os_permission(OsPermission::CONTACTS, OsState::Granted)?;
    say!(out, "\nThe OS then reports the contacts permission granted:");
    decision_line(&mut out, &store, alice, "contact_lookup", None)?;
    decision_line(&mut out, &store, alice, "usage_analytics", None)?;
    decision_line(&mut out, &store, alice, "photo_sharing", None)?;

    clock.advance_millis(3 * DAY);
    out.step(3, "Sync a single contact", "The statement lets the user sync single contacts to the server: each is its own scoped grant.");
    store.record(&DecisionInput::new(alice, "device_contacts", Action::Grant, Source::Settings).with_scope("contact:1001"))?;
    decision_line(&mut out, &store, alice, "contact_sync", Some("contact:1001"))?;
    decision_line(&mut out, &store, alice, "contact_sync", Some("contact:2002"))?;

    clock.advance_millis(10 * DAY);
    out.step(4, "Alice turns contacts off in the OS settings",
        "An OS change is recorded (device-wide, in every subject's history) and feeds the gate; it never\nchanges the consent itself (Android resets permissions of unused apps: that is not a withdrawal).");
    store.set_os_permission(OsPermission::CONTACTS, OsState::Denied)?;
    decision_line(&mut out, &store, alice, "contact_lookup", None)?;
    say!(out, "  status of device_contacts: {}", store.status(alice, "device_contacts")?.status);

    clock.advance_millis(20 * DAY);
    out.step(
        5,
        "Alice withdraws usage statistics in the app's settings",
        "Withdrawal is as easy as giving: once the call returns, no check anywhere allows the feature.",
    );
    store.record(&DecisionInput::new(alice, "usage_statistics", Action::Withdraw, Source::Settings))?;
    decision_line(&mut out, &store, alice, "usage_analytics", None)?;

    clock.advance_millis(30 * DAY);
    out.step(6, "PCS changes what device contacts are used for",
        "The policy's purpose version for device_contacts goes from 1 to 2: the old grant no longer covers\nthe new purpose, so it needs renewal before the feature runs again.");
    let mut bumped = Policy::builtin();
    bumped.version = "2026-04-01".into();
    let mut value: serde_json::Value = serde_json::from_str(&bumped.to_json()).map_err(|e| bad(e.to_string()))?;
    if let Some(categories) = value["categories"].as_array_mut() {
        for c in categories.iter_mut().filter(|c| c["id"] == "device_contacts") {
            c["purpose_version"] = 2.into();
        }
    }
    let bumped = Policy::from_json(&value.to_string())?;
    drop(store);
    store = open(&path, bumped, &clock)?;
    store.set_os_permission(OsPermission::CONTACTS, OsState::Granted)?;
    decision_line(&mut out, &store, alice, "contact_lookup", None)?;
    say!(out, "  should_ask(device_contacts): {}", store.should_ask(alice, "device_contacts")?);

    clock.advance_millis(2 * DAY);
    out.step(
        7,
        "Support: \"why is photo sharing off, and what has alice agreed to?\"",
        "consentkit status alice / consentkit check alice photo_sharing:",
    );
    out.status_table(&store.statuses(alice)?);
    say!(out, "");
    decision_line(&mut out, &store, alice, "photo_sharing", None)?;

    out.step(8, "Alice asks for a copy of her data (GDPR Arts. 15 and 20)", "consentkit export alice > alice.json:");
    let doc = store.export(alice)?;
    say!(
        out,
        "  {} events with receipts, {} categories, {} OS permissions, exported at {}",
        doc.history.len(),
        doc.state.len(),
        doc.os_permissions.len(),
        doc.exported_at
    );

    clock.advance_millis(DAY);
    out.step(9, "Alice asks to be forgotten (GDPR Art. 17)",
        "Her events become tombstones (bytes zeroed on disk, WAL truncated); an erasure record keeps only a\nkeyed hash of her id, so support can confirm the erasure and the chain stays verifiable.");
    let report = store.erase(alice, Source::Support)?;
    say!(out, "  erased {} events; erasure record seq {} at {}", report.erased_events, report.receipt.seq, report.receipt.at);
    say!(out, "  status of usage_statistics now: {}", store.status(alice, "usage_statistics")?.status);
    say!(out, "  erasures on record for her id: {}", store.erasures_of(alice)?.len());

    out.step(10, "Verify the ledger", "consentkit verify walks the SHA-256 hash chain:");
    let n = store.verify()?;
    say!(out, "  chain intact: {n} events verified");
    say!(out, "\nDone. Explore the demo database yourself, e.g.: target/debug/consentkit --db {DEMO_DB} history {alice}\n(only the device's OS permission changes remain for her) or: target/debug/consentkit --db {DEMO_DB} verify");
    if out.json {
        print_json(serde_json::json!({ "database": DEMO_DB, "intro": out.lines, "steps": out.steps }));
    }
    Ok(0)
}
