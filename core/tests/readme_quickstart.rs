//! The README's Rust quick start is `core/examples/quickstart.rs`, word for word, and it runs.

#[path = "../examples/quickstart.rs"]
mod quickstart;

#[test]
fn the_readme_shows_the_quick_start_example_word_for_word() {
    let readme = include_str!("../../README.md");
    let section = readme.split("## Rust quick start").nth(1).expect("README has a \"## Rust quick start\" section");
    let block = section.split("```rust\n").nth(1).and_then(|b| b.split("\n```").next()).expect("a ```rust block in it");
    let example = include_str!("../examples/quickstart.rs");
    let body: String = example.lines().skip_while(|l| l.starts_with("//!")).collect::<Vec<_>>().join("\n");
    assert_eq!(block.trim(), body.trim(), "README's Rust quick start differs from core/examples/quickstart.rs");
}

#[test]
fn the_quick_start_runs() {
    quickstart::main().expect("the quick start runs to the end");
}

/// The README's fail-closed open, as written there, compiles and denies on a damaged file.
#[test]
fn the_readme_fail_closed_open_is_the_real_call_and_denies() {
    use consentkit_core::{ConsentStore, Policy, ReasonCode, SystemClock};
    use std::sync::Arc;
    let readme = include_str!("../../README.md").split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        readme.contains("`ConsentStore::open_fail_closed(path, Arc::new(policy), Arc::new(SystemClock))`"),
        "README names open_fail_closed with its arguments"
    );
    let dir = std::env::temp_dir().join(format!("consentkit-readme-fail-closed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch folder");
    let path = dir.join("consent.db");
    std::fs::write(&path, vec![7u8; 8192]).expect("a damaged file");
    let policy = Policy::builtin();
    let store = ConsentStore::open_fail_closed(path, Arc::new(policy), Arc::new(SystemClock));
    assert!(store.unavailable().is_some(), "unavailable() says why");
    let decision = store.check("alice", "usage_analytics", None).expect("a fail-closed store still answers");
    assert!(!decision.allowed);
    assert!(decision.reasons.iter().any(|r| r.code == ReasonCode::StoreUnavailable), "{:?}", decision.reasons);
    drop(store);
    std::fs::remove_dir_all(&dir).expect("the scratch folder removed");
}
