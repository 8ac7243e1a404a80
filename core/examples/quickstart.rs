//! The README's Rust quick start (`core/tests/readme_quickstart.rs` runs it and checks that the
//! README shows exactly this file).
use consentkit_core::{Action, ConsentStore, DecisionInput, OsPermission, OsState, Policy, Source};

pub fn main() -> consentkit_core::Result<()> {
    // The app's catalog (here the built-in UCAnywhere one; `Policy::from_json` reads your own).
    let dir = std::env::temp_dir().join(format!("consentkit-quickstart-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch folder");
    let store = ConsentStore::open(dir.join("consent.db"), Policy::builtin())?;

    // No record: a consent-gated feature is denied, with every reason.
    let decision = store.check("alice", "contact_lookup", None)?;
    assert!(!decision.allowed);
    println!("before: {:?}", decision.reasons.iter().map(|r| r.code.as_str()).collect::<Vec<_>>());

    // The user agrees in onboarding, and the OS grants the contacts permission: allowed.
    let receipt = store.record(&DecisionInput::new("alice", "device_contacts", Action::Grant, Source::Onboarding))?;
    let until = receipt.valid_until.map_or("never".to_string(), |t| t.to_string());
    println!("receipt seq {} valid until {until}", receipt.seq);
    store.set_os_permission(OsPermission::CONTACTS, OsState::Granted)?;
    assert!(store.check("alice", "contact_lookup", None)?.allowed);

    // Withdrawing is one call too; once it returns, every check denies.
    store.record(&DecisionInput::new("alice", "device_contacts", Action::Withdraw, Source::Settings))?;
    assert!(!store.check("alice", "contact_lookup", None)?.allowed);

    // What support sees: the status of each category, and the history.
    for s in store.statuses("alice")? {
        println!("{:<20} {:<20} {}", s.category, s.legal_basis.as_str(), s.status.as_str());
    }
    println!("{} events, chain intact: {} verified", store.history("alice")?.len(), store.verify()?);
    drop(store);
    std::fs::remove_dir_all(&dir).expect("the scratch folder removed");
    Ok(())
}
