//! `consentkit demo`: a narrated walk through a UCAnywhere user's life on a fresh demo database.

use std::path::PathBuf;
use std::sync::Arc;

use consentkit_core::*;

use crate::args::Cli;
use crate::commands::{Failure, STORE};
use crate::output::{or_dash, status_table};

const DAY: i64 = 86_400_000;
const DEMO_DB: &str = "consentkit-demo.db";

fn step(n: u32, title: &str, text: &str) {
    println!("\n== {n}. {title}\n{text}\n");
}

fn decision_line(store: &ConsentStore, subject: &str, feature: &str, scope: Option<&str>) -> Result<(), Failure> {
    let d = store.check(subject, feature, scope)?;
    let item = scope.map(|s| format!(" [{s}]")).unwrap_or_default();
    if d.allowed {
        println!("  check {feature}{item}: ALLOWED{}", if d.limited { " (limited)" } else { "" });
    } else {
        let why: Vec<String> = d.reasons.iter().map(|r| format!("{} ({})", r.code, r.category)).collect();
        println!("  check {feature}{item}: DENIED, {}", why.join(", "));
    }
    Ok(())
}

fn open(path: &PathBuf, policy: Policy, clock: &ManualClock) -> Result<ConsentStore, Failure> {
    Ok(ConsentStore::open_with(path, Arc::new(policy), Arc::new(clock.clone()), OpenMode::ReadWrite)?)
}

/// Runs the demo. Deterministic: its clock starts at `--now` (default 2026-01-15T09:00:00Z).
pub fn run(cli: &Cli) -> Result<u8, Failure> {
    let start = match &cli.now {
        Some(t) => Timestamp::parse(t).map_err(crate::commands::bad)?,
        None => Timestamp::parse("2026-01-15T09:00:00Z").map_err(crate::commands::bad)?,
    };
    let path = PathBuf::from(DEMO_DB);
    for suffix in ["", "-wal", "-shm"] {
        let file = PathBuf::from(format!("{DEMO_DB}{suffix}"));
        if file.exists() {
            std::fs::remove_file(&file).map_err(|e| Failure { code: STORE, message: format!("cannot reset {}: {e}", file.display()) })?;
        }
    }
    let clock = ManualClock::new(start);
    let alice = "alice@pcs-customer.example";
    let mut store = open(&path, Policy::builtin(), &clock)?;

    println!("ConsentKit demo: one UCAnywhere user's consent, from first launch to erasure.");
    println!("Demo database: {} (fresh). Clock starts at {start}.", path.display());

    step(1, "First launch: what must the app ask?",
        "Three of UCAnywhere's eight categories rest on consent; the others on contract or legitimate\ninterest. should_ask() tells the onboarding dialog which prompts to show:");
    for c in &store.policy().categories {
        let ask = store.should_ask(alice, &c.id)?;
        println!("  {:<20} {:<20} {}", c.id, c.legal_basis.to_string(), if ask { "ASK" } else { "-" });
    }
    println!("\nBefore any answer the gate fails closed:");
    decision_line(&store, alice, "usage_analytics", None)?;
    decision_line(&store, alice, "calling", None)?;

    step(
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
        println!(
            "  receipt seq {} {:<8} {:<18} valid until {}  hash {}…",
            r.seq,
            r.action.to_string(),
            or_dash(r.category.as_ref()),
            or_dash(r.valid_until),
            &r.hash[..12]
        );
    }
    store.set_os_permission(OsPermission::CONTACTS, OsState::Granted)?;
    println!("\nThe OS then reports the contacts permission granted:");
    decision_line(&store, alice, "contact_lookup", None)?;
    decision_line(&store, alice, "usage_analytics", None)?;
    decision_line(&store, alice, "photo_sharing", None)?;

    clock.advance_millis(3 * DAY);
    step(3, "Sync a single contact", "The statement lets the user sync single contacts to the server: each is its own scoped grant.");
    store.record(&DecisionInput::new(alice, "device_contacts", Action::Grant, Source::Settings).with_scope("contact:1001"))?;
    decision_line(&store, alice, "contact_sync", Some("contact:1001"))?;
    decision_line(&store, alice, "contact_sync", Some("contact:2002"))?;

    clock.advance_millis(10 * DAY);
    step(4, "Alice turns contacts off in the OS settings",
        "An OS change is recorded (device-wide, in every subject's history) and feeds the gate; it never\nchanges the consent itself (Android resets permissions of unused apps: that is not a withdrawal).");
    store.set_os_permission(OsPermission::CONTACTS, OsState::Denied)?;
    decision_line(&store, alice, "contact_lookup", None)?;
    println!("  status of device_contacts: {}", store.status(alice, "device_contacts")?.status);

    clock.advance_millis(20 * DAY);
    step(
        5,
        "Alice withdraws usage statistics in the app's settings",
        "Withdrawal is as easy as giving: once the call returns, no check anywhere allows the feature.",
    );
    store.record(&DecisionInput::new(alice, "usage_statistics", Action::Withdraw, Source::Settings))?;
    decision_line(&store, alice, "usage_analytics", None)?;

    clock.advance_millis(30 * DAY);
    step(6, "PCS changes what device contacts are used for",
        "The policy's purpose version for device_contacts goes from 1 to 2: the old grant no longer covers\nthe new purpose, so it needs renewal before the feature runs again.");
    let mut bumped = Policy::builtin();
    bumped.version = "2026-04-01".into();
    let mut value: serde_json::Value = serde_json::from_str(&bumped.to_json()).map_err(|e| crate::commands::bad(e.to_string()))?;
    if let Some(categories) = value["categories"].as_array_mut() {
        for c in categories.iter_mut().filter(|c| c["id"] == "device_contacts") {
            c["purpose_version"] = 2.into();
        }
    }
    let bumped = Policy::from_json(&value.to_string())?;
    drop(store);
    store = open(&path, bumped, &clock)?;
    store.set_os_permission(OsPermission::CONTACTS, OsState::Granted)?;
    decision_line(&store, alice, "contact_lookup", None)?;
    println!("  should_ask(device_contacts): {}", store.should_ask(alice, "device_contacts")?);

    clock.advance_millis(2 * DAY);
    step(
        7,
        "Support: \"why is photo sharing off, and what has alice agreed to?\"",
        "consentkit status alice / consentkit check alice photo_sharing:",
    );
    status_table(&store.statuses(alice)?);
    println!();
    decision_line(&store, alice, "photo_sharing", None)?;

    step(8, "Alice asks for a copy of her data (GDPR Arts. 15 and 20)", "consentkit export alice > alice.json:");
    let doc = store.export(alice)?;
    println!(
        "  {} events with receipts, {} categories, {} OS permissions, exported at {}",
        doc.history.len(),
        doc.state.len(),
        doc.os_permissions.len(),
        doc.exported_at
    );

    clock.advance_millis(DAY);
    step(9, "Alice asks to be forgotten (GDPR Art. 17)",
        "Her events become tombstones (bytes zeroed on disk, WAL truncated); an erasure record keeps only a\nkeyed hash of her id, so support can confirm the erasure and the chain stays verifiable.");
    let report = store.erase(alice, Source::Support)?;
    println!("  erased {} events; erasure record seq {} at {}", report.erased_events, report.receipt.seq, report.receipt.at);
    println!("  status of usage_statistics now: {}", store.status(alice, "usage_statistics")?.status);
    println!("  erasures on record for her id: {}", store.erasures_of(alice)?.len());

    step(10, "Verify the ledger", "consentkit verify walks the SHA-256 hash chain:");
    let n = store.verify()?;
    println!("  chain intact: {n} events verified");
    println!("\nDone. Explore the demo database yourself, e.g.: target/debug/consentkit --db {DEMO_DB} history {alice}\n(only the device's OS permission changes remain for her) or: target/debug/consentkit --db {DEMO_DB} verify");
    Ok(0)
}
