//! The SDK side end to end: the `consentkit` support tool syncs a device's outbox to the real
//! server, verifies the signed head offline, and answers `--server` queries with the same tables
//! and JSON as for the local file.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use serde_json::Value;

/// The support tool's binary (built here if needed: it is another package of the workspace).
fn consentkit() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo).args(["build", "-q", "-p", "consentkit-cli"]).current_dir(root).output().unwrap();
    assert!(out.status.success(), "cannot build the support tool: {}", String::from_utf8_lossy(&out.stderr));
    let target = std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| root.join("target"));
    target.join("debug/consentkit")
}

fn run(bin: &Path, args: &[&str]) -> Output {
    Command::new(bin)
        .args(args)
        .env_remove("CONSENTKIT_SERVER")
        .env_remove("CONSENTKIT_TOKEN")
        .env_remove("CONSENTKIT_DB")
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn sync_verify_receipt_and_server_queries_print_what_the_local_file_prints() {
    let bin = consentkit();
    let pg = Pg::start();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&pg, dir.path());
    let db = dir.path().join("phone.db");
    let db = db.to_str().unwrap();
    let at = "--now=2026-03-01T10:00:00Z";
    ok(&run(&bin, &["--db", db, at, "grant", "alice", "photos_media", "--source", "onboarding"]));
    ok(&run(&bin, &["--db", db, at, "refuse", "alice", "usage_statistics", "--source", "onboarding"]));
    ok(&run(&bin, &["--db", db, at, "os", "photos", "granted"]));
    let head = dir.path().join("head.json");
    let out = ok(&run(
        &bin,
        &[
            "--db",
            db,
            "--server",
            &server.url,
            "--token",
            PHONE,
            "sync",
            "--device",
            "phone",
            "--batch",
            "2",
            "--receipt",
            head.to_str().unwrap(),
        ],
    ));
    assert!(out.contains("sent 3 receipts in 2 batches (3 new on the server); acknowledged up to seq 3"), "{out}");
    let again = ok(&run(&bin, &["--db", db, "--server", &server.url, "--token", PHONE, "sync", "--device", "phone"]));
    assert!(again.contains("nothing to send"), "{again}");

    // verify-receipt: offline, with the public key only.
    let public = std::fs::read_to_string(dir.path().join("keys/signing.pub")).unwrap();
    let out = ok(&run(&bin, &["--db", db, "verify-receipt", head.to_str().unwrap(), "--public-key", public.trim()]));
    assert!(out.contains("receipt verified") && out.contains("up to seq 3"), "{out}");
    let other = dir.path().join("other.db");
    ok(&run(&bin, &["--db", other.to_str().unwrap(), at, "grant", "bob", "photos_media", "--source", "onboarding"]));
    ok(&run(&bin, &["--db", other.to_str().unwrap(), at, "grant", "bob", "usage_statistics", "--source", "onboarding"]));
    ok(&run(&bin, &["--db", other.to_str().unwrap(), at, "grant", "bob", "device_contacts", "--source", "onboarding"]));
    let wrong = run(&bin, &["--db", other.to_str().unwrap(), "verify-receipt", head.to_str().unwrap(), "--public-key", public.trim()]);
    assert_eq!(wrong.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("not the same chain"), "{}", String::from_utf8_lossy(&wrong.stderr));
    let mut forged: Value = serde_json::from_str(&std::fs::read_to_string(&head).unwrap()).unwrap();
    forged["seq"] = serde_json::json!(2);
    std::fs::write(dir.path().join("forged.json"), forged.to_string()).unwrap();
    let bad = run(&bin, &["--db", db, "verify-receipt", dir.path().join("forged.json").to_str().unwrap(), "--public-key", public.trim()]);
    assert_eq!(bad.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("signature does not verify"));

    // The same tables and JSON from the server as from the file.
    let now = "--now=2026-03-02T00:00:00Z";
    let remote = ["--server", server.url.as_str(), "--token", SUPPORT, now];
    let local = ["--db", db, now];
    let both = |args: &[&str]| {
        let l = run(&bin, &[&local[..], args].concat());
        let r = run(&bin, &[&remote[..], args].concat());
        (l, r)
    };
    let (l, r) = both(&["status", "alice"]);
    assert_eq!(ok(&r), ok(&l), "status table");
    let (l, r) = both(&["--json", "status", "alice"]);
    let (l, r): (Value, Value) = (serde_json::from_str(&ok(&l)).unwrap(), serde_json::from_str(&ok(&r)).unwrap());
    assert_eq!(r["policy"], l["policy"]);
    for (a, b) in l["categories"].as_array().unwrap().iter().zip(r["categories"].as_array().unwrap()) {
        for key in ["id", "legal_basis", "status", "since"] {
            assert_eq!(a[key], b[key], "{key}");
        }
    }
    for feature in ["photo_sharing", "usage_analytics", "calling", "contact_lookup"] {
        let (l, r) = both(&["check", "alice", feature]);
        assert_eq!(r.status.code(), l.status.code(), "{feature} exit code");
        let (ls, rs) = (String::from_utf8_lossy(&l.stdout).to_string(), String::from_utf8_lossy(&r.stdout).to_string());
        assert!(rs.starts_with(&ls), "{feature}: remote\n{rs}\nlocal\n{ls}");
        let (l, r) = both(&["--json", "check", "alice", feature]);
        let (l, r): (Value, Value) = (serde_json::from_slice(&l.stdout).unwrap(), serde_json::from_slice(&r.stdout).unwrap());
        for key in ["feature", "allowed", "limited", "reasons"] {
            assert_eq!(r[key], l[key], "{feature} {key}");
        }
    }
    let (l, r) = both(&["history", "alice"]);
    let (l, r) = (ok(&l), ok(&r));
    let (ll, rl): (Vec<&str>, Vec<&str>) = (l.lines().collect(), r.lines().collect());
    assert_eq!(ll.len(), rl.len(), "local\n{l}\nremote\n{r}");
    for (a, b) in ll.iter().zip(&rl).skip(2) {
        assert!(b.starts_with(a.trim_end()) && b.trim_end().ends_with("phone"), "local\n{l}\nremote\n{r}");
    }

    // Export: the document itself, as for a local file; with --json inside the envelope.
    let dpo = ["--server", server.url.as_str(), "--token", DPO];
    let doc: Value = serde_json::from_str(&ok(&run(&bin, &[&dpo[..], &["export", "alice"]].concat()))).unwrap();
    assert_eq!(doc["format"], serde_json::json!("consentkit-server-export/1"), "{doc}");
    let mut wrapped: Value = serde_json::from_str(&ok(&run(&bin, &[&dpo[..], &["--json", "export", "alice"]].concat()))).unwrap();
    wrapped["document"]["exported_at"] = doc["exported_at"].clone();
    assert_eq!(wrapped["document"], doc, "the same document in the envelope (but for its time)");

    // Erasure through the tool; the device learns it at its next sync and erases locally.
    let support_erase = run(&bin, &["--server", server.url.as_str(), "--token", SUPPORT, "erase", "alice"]);
    assert_eq!(support_erase.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&support_erase.stderr).contains("needs the role dpo"));
    let out = ok(&run(&bin, &[&dpo[..], &["erase", "alice"]].concat()));
    assert!(out.contains("erased 2 events") && !out.contains("alice"), "{out}");
    ok(&run(&bin, &["--db", db, at, "withdraw", "alice", "photos_media", "--source", "settings"]));
    let out = ok(&run(&bin, &["--db", db, "--server", &server.url, "--token", PHONE, "sync", "--device", "phone"]));
    assert!(
        out.contains("erased alice on this device") && out.contains("sent 2 receipts in 2 batches"),
        "the withdrawal, then the local erasure record: {out}"
    );
    let local_after = ok(&run(&bin, &["--db", db, now, "--json", "status", "alice"]));
    assert!(!local_after.contains("\"withdrawn\"") && !local_after.contains("\"granted\""), "{local_after}");
    let out = ok(&run(&bin, &["--db", db, "--server", &server.url, "--token", PHONE, "sync", "--device", "phone"]));
    assert!(out.contains("nothing to send"), "{out}");
    // An erasure made on the device reaches the server at the next sync. On the real clock: the
    // syncs above wrote at it, and a grant more than 10 minutes behind the store's time is refused.
    let refused = run(&bin, &["--db", db, at, "grant", "carol", "photos_media", "--source", "onboarding"]);
    assert_eq!(refused.status.code(), Some(2), "a grant at a clock behind the store's time");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("behind the store's time"));
    ok(&run(&bin, &["--db", db, "grant", "carol", "photos_media", "--source", "onboarding"]));
    ok(&run(&bin, &["--db", db, "--server", &server.url, "--token", PHONE, "sync", "--device", "phone"]));
    ok(&run(&bin, &["--db", db, "erase", "carol"]));
    let out = ok(&run(&bin, &["--db", db, "--server", &server.url, "--token", PHONE, "--json", "sync", "--device", "phone"]));
    assert!(out.contains("\"erased_on_server\": 1"), "{out}");
    let carol = ok(&run(&bin, &[&dpo[..], &["--json", "status", "carol"]].concat()));
    assert!(!carol.contains("\"granted\""), "the server no longer holds carol's grant: {carol}");

    // Unreachable server, or a local-only command with --server: clear errors.
    let down = run(&bin, &["--server", "http://127.0.0.1:1", "--token", SUPPORT, "status", "alice"]);
    assert_eq!(down.status.code(), Some(5), "unreachable is temporary: run it again");
    assert!(String::from_utf8_lossy(&down.stderr).contains("cannot reach the server"));
    let local_only = run(&bin, &["--server", server.url.as_str(), "--token", SUPPORT, "purge"]);
    assert_eq!(local_only.status.code(), Some(2));
}

#[test]
fn sync_and_server_status_name_a_category_the_servers_policy_does_not_know() {
    let bin = consentkit();
    let pg = Pg::start();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&pg, dir.path());
    let policy = dir.path().join("newer.json");
    std::fs::write(&policy, newer_policy().to_json()).unwrap();
    let db = dir.path().join("phone.db");
    let local = ["--db", db.to_str().unwrap(), "--policy", policy.to_str().unwrap(), "--now=2026-03-01T10:00:00Z"];
    ok(&run(&bin, &[&local[..], &["init"]].concat()));
    ok(&run(&bin, &[&local[..], &["grant", "alice", "health_data", "--source", "onboarding"]].concat()));
    let sync = ["--server", server.url.as_str(), "--token", PHONE, "sync", "--device", "phone"];
    let out = ok(&run(&bin, &[&local[..], &sync[..]].concat()));
    assert!(out.contains("warning: the server's policy does not know the categories health_data"), "{out}");
    let status = ok(&run(&bin, &["--server", server.url.as_str(), "--token", SUPPORT, "status", "alice"]));
    assert!(
        status.contains("health_data: 1 events (the last at 2026-03-01T10:00:00Z)") && status.contains("count for nothing"),
        "{status}"
    );
}

#[test]
fn status_from_the_server_names_a_server_side_erasure_so_support_can_tell_it_from_never_asked() {
    let bin = consentkit();
    let AliceGrantedOnPhone { pg: _pg, dir: _dir, server, phone: _phone } = AliceGrantedOnPhone::start();
    let url = server.url.as_str();
    let before = ok(&run(&bin, &["--server", url, "--token", SUPPORT, "status", "alice"]));
    assert!(!before.contains("erased"), "{before}");
    let erased = ok(&run(&bin, &["--server", url, "--token", DPO, "--json", "erase", "alice"]));
    let erased: Value = serde_json::from_str(&erased).unwrap();
    let id = erased["receipt"]["id"].as_str().unwrap_or_else(|| panic!("{erased}")).to_string();
    let after = ok(&run(&bin, &["--server", url, "--token", SUPPORT, "status", "alice"]));
    assert!(after.contains("photos_media") && after.contains("not_asked"), "{after}");
    let line = after.lines().find(|l| l.contains("erased on the server")).unwrap_or_else(|| panic!("the erasure is named: {after}"));
    assert!(line.contains(&id) && line.contains("1 event"), "{line}");
    let json: Value = serde_json::from_str(&ok(&run(&bin, &["--server", url, "--token", SUPPORT, "--json", "status", "alice"]))).unwrap();
    assert_eq!(json["erasures"][0]["id"], Value::from(id));
}

#[test]
fn history_from_the_server_names_a_server_side_erasure_under_the_emptied_timeline() {
    let bin = consentkit();
    let AliceGrantedOnPhone { pg: _pg, dir: _dir, server, phone: _phone } = AliceGrantedOnPhone::start();
    let url = server.url.as_str();
    let before = ok(&run(&bin, &["--server", url, "--token", SUPPORT, "history", "alice"]));
    assert!(before.contains("photos_media") && !before.contains("erased"), "{before}");
    let erased = ok(&run(&bin, &["--server", url, "--token", DPO, "--json", "erase", "alice"]));
    let erased: Value = serde_json::from_str(&erased).unwrap();
    let id = erased["receipt"]["id"].as_str().unwrap_or_else(|| panic!("{erased}")).to_string();
    let after = ok(&run(&bin, &["--server", url, "--token", SUPPORT, "history", "alice"]));
    assert!(!after.contains("photos_media"), "the events are gone: {after}");
    let line = after.lines().find(|l| l.contains("erased on the server")).unwrap_or_else(|| panic!("the erasure is named: {after}"));
    assert!(line.contains(&id) && line.contains("1 event deleted") && line.contains("events before it were removed"), "{line}");
    let json: Value = serde_json::from_str(&ok(&run(&bin, &["--server", url, "--token", SUPPORT, "--json", "history", "alice"]))).unwrap();
    assert_eq!(json["events"], serde_json::json!([]), "{json}");
    assert_eq!(json["erasures"][0]["id"], Value::from(id.as_str()), "{json}");
    assert_eq!(json["erasures"][0]["signature"], erased["receipt"]["signature"], "the signed receipt itself");
    // Another subject's history names none of alice's erasures; a device's token reads none.
    let bob: Value = serde_json::from_str(&ok(&run(&bin, &["--server", url, "--token", SUPPORT, "--json", "history", "bob"]))).unwrap();
    assert_eq!(bob["erasures"], serde_json::json!([]), "{bob}");
    let phone = run(&bin, &["--server", url, "--token", PHONE, "history", "alice"]);
    assert_ne!(phone.status.code(), Some(0), "a device token may not read a subject's erasures");
}

#[test]
fn a_server_error_that_is_not_retryable_is_exit_3_not_run_it_again() {
    // A stored event the server cannot read (here: its action column damaged) is 500 `internal`,
    // retryable false: running the command again cannot help, so it is not exit 5 ("temporary").
    let bin = consentkit();
    let AliceGrantedOnPhone { pg, dir: _dir, server, phone: _phone } = AliceGrantedOnPhone::start();
    pg.psql("postgres", "UPDATE events SET action = 'bogus'");
    let out = run(&bin, &["--server", &server.url, "--token", SUPPORT, "status", "alice"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("could not be read") && !stderr.contains("retryable"), "{stderr}");
}
