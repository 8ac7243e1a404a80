//! One version everywhere (#16 item 4): the Cargo workspace, the library's own
//! `consentkit_version()`, the Kotlin package's POM, the README's client project and install
//! lines, and the top of CHANGELOG.md agree.
//! The Swift side: `ConsentManager.version` is `consentkit_version()` (VersionTests.swift checks it
//! against Cargo.toml), and bindings/swift/release.sh writes a release manifest only for this version
//! (bindings/swift/test-release.sh checks the manifest's tag URL and its refusal of another version).

use std::path::Path;

fn repo(file: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

#[test]
fn cargo_ffi_maven_and_changelog_agree() {
    let cargo = env!("CARGO_PKG_VERSION");
    assert_eq!(consentkit_ffi::consentkit_version().unwrap(), cargo);
    let pom = repo("bindings/kotlin/pom.xml");
    let after_artifact = &pom[pom.find("<artifactId>consentkit-kotlin</artifactId>").expect("the POM names the artifact")..];
    let version = after_artifact.split("<version>").nth(1).and_then(|v| v.split("</version>").next()).expect("a project version");
    assert_eq!(version, cargo, "bindings/kotlin/pom.xml");
    let client = repo("bindings/kotlin/client/pom.xml");
    let pinned = client.split("<consentkit.version>").nth(1).and_then(|v| v.split("</consentkit.version>").next());
    assert_eq!(pinned, Some(cargo), "bindings/kotlin/client/pom.xml (the README's client project) depends on this version");
    let readme = repo("README.md");
    for needle in [format!("from: \"{cargo}\""), format!("consentkit-kotlin:{cargo}:test-fixtures"), format!("from `{cargo}`")] {
        assert!(readme.contains(&needle), "README.md names this version: {needle}");
    }
    for line in readme.lines().filter(|l| l.contains("from: \"") || l.contains("consentkit-kotlin:")) {
        assert!(line.contains(cargo), "README.md names another version: {line}");
    }
    let changelog = repo("CHANGELOG.md");
    let first = changelog.lines().find(|l| l.starts_with("## ")).expect("a version heading");
    assert_eq!(first.trim_start_matches("## ").split_whitespace().next(), Some(cargo), "CHANGELOG.md starts with this version");
}
