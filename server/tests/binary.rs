//! The `consentkit-server` command line: help and version on stdout with exit 0, an unknown
//! command or a missing flag named on stderr with exit 2.

use std::process::Command;

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_consentkit-server")).args(args).output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn help_and_version_succeed_and_mistakes_are_named() {
    let (code, out, _) = run(&["--help"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("consentkit-server serve --config FILE") && out.contains("migrate"), "{out}");
    let (code, out, _) = run(&["--version"]);
    assert_eq!((code, out.trim()), (Some(0), format!("consentkit-server {}", env!("CARGO_PKG_VERSION")).as_str()));
    let (code, _, err) = run(&["serv"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("unknown command 'serv'") && err.contains("usage:"), "{err}");
    let (code, _, err) = run(&["serve"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("missing --config"), "{err}");
    let (code, _, err) = run(&[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("usage:"), "{err}");
}

fn config_with(tokens: serde_json::Value) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let db = "host=/nonexistent user=x dbname=x";
    let config = serde_json::json!({
        "listen": "127.0.0.1:0",
        "database": { "ingest": db, "support": db, "dpo": db, "auditor": db },
        "tokens": tokens,
    });
    let path = dir.path().join("server.json");
    std::fs::write(&path, config.to_string()).unwrap();
    (dir, path.to_str().unwrap().to_string())
}

#[test]
fn a_config_naming_two_tokens_alike_is_refused_before_serving() {
    let h = consentkit_server::config::hash_token;
    // The access log names the token: two tokens of one name (a support and a DPO "sam") would
    // make its lines ambiguous, and the console's lookups are bound to that name.
    let (_dir, path) = config_with(serde_json::json!([
        { "name": "sam", "role": "support", "sha256": h("one") },
        { "name": "sam", "role": "dpo", "sha256": h("two") },
    ]));
    let (code, _, err) = run(&["serve", "--config", &path]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("token 'sam'") && err.contains("name"), "{err}");
    let (_dir, path) = config_with(serde_json::json!([
        { "name": "sam", "role": "support", "sha256": h("one") },
        { "name": "dora", "role": "dpo", "sha256": h("one") },
    ]));
    let (code, _, err) = run(&["serve", "--config", &path]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("the same token is listed twice"), "{err}");
}

#[test]
fn keygen_over_a_folder_holding_one_of_its_keys_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("signing.key"), "an operator's existing key").unwrap();
    let (code, _, err) = run(&["keygen", "--dir", dir.path().to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("signing.key exists"), "{err}");
    // A new subject key beside the old signing key would pseudonymise every subject anew.
    assert!(!dir.path().join("subject.key").exists(), "keygen wrote subject.key before it refused");
    assert_eq!(std::fs::read_to_string(dir.path().join("signing.key")).unwrap(), "an operator's existing key");
}

#[test]
fn a_device_token_naming_an_id_no_device_can_sync_as_is_refused_before_serving() {
    let h = consentkit_server::config::hash_token;
    // The core takes a device id only as a URL path segment (A-Z a-z 0-9 - . _ ~): a token for
    // "alice phone" could never send a batch, which showed only at the device's first sync.
    for device in ["alice phone", "a/b", "a?b", "..", ""] {
        let (_dir, path) = config_with(serde_json::json!([
            { "name": "alice-phone", "role": "device", "device": device, "sha256": h("one") },
        ]));
        let (code, _, err) = run(&["serve", "--config", &path]);
        assert_eq!(code, Some(2), "{device}: {err}");
        assert!(err.contains("token 'alice-phone'") && err.contains("device"), "{device}: {err}");
    }
}
