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
