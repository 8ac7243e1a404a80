//! End-to-end tests of the real `consentkit` binary: every command, every exit code, the JSON
//! shapes, read-only queries, tampering and bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const NOW: &str = "2026-01-15T09:00:00Z";

struct Env {
    dir: tempfile::TempDir,
    db: PathBuf,
}

impl Env {
    /// A folder with no store in it (`--db` names a file that does not exist).
    fn without_store() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("support.db");
        Env { dir, db }
    }

    /// A new, empty store, created the one way there is: `consentkit init`.
    fn new() -> Env {
        let env = Env::without_store();
        env.ok(0, &["init"]);
        env
    }

    /// The names of the folder's files that start with `prefix`.
    fn files(&self, prefix: &str) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .filter(|n| n.starts_with(prefix))
            .collect();
        names.sort();
        names
    }

    fn run(&self, args: &[&str]) -> Output {
        let now: &[&str] = if args.contains(&"--now") { &[] } else { &["--now", NOW] };
        Command::new(env!("CARGO_BIN_EXE_consentkit"))
            .arg("--db")
            .arg(&self.db)
            .args(now)
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("CONSENTKIT_DB")
            .output()
            .unwrap()
    }

    /// Runs, asserts the exit code, returns stdout.
    fn ok(&self, code: i32, args: &[&str]) -> String {
        let out = self.run(args);
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(code), "{args:?}\nstdout: {stdout}\nstderr: {stderr}");
        stdout
    }

    fn json(&self, code: i32, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(code, &all)).unwrap()
    }

    /// Runs, asserts the exit code and that stderr is one line containing `needle`.
    fn fails(&self, code: i32, args: &[&str], needle: &str) {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: expected '{needle}' in '{stderr}'");
        if code != 2 || !stderr.starts_with("error:") {
            assert_eq!(stderr.trim_end().lines().count(), 1, "one line on stderr: {stderr}");
        }
    }

    fn seeded() -> Env {
        let env = Env::new();
        env.ok(0, &["grant", "alice", "usage_statistics", "--source", "onboarding"]);
        env.ok(0, &["grant", "alice", "device_contacts", "--source", "onboarding"]);
        env.ok(0, &["refuse", "alice", "photos_media", "--source", "onboarding"]);
        env.ok(0, &["os", "contacts", "granted"]);
        env
    }
}

/// The status of `category` in a `status --json` reply.
fn status_of(v: &Value, category: &str) -> String {
    let categories = v["categories"].as_array().unwrap();
    let c = categories.iter().find(|c| c["id"] == category).unwrap_or_else(|| panic!("no {category} in {v}"));
    c["status"].as_str().unwrap().to_string()
}

fn bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

#[test]
fn policy_lists_categories_and_features() {
    let env = Env::without_store();
    let out = env.ok(0, &["policy"]);
    for needle in ["device_contacts", "consent", "contacts", "P6Y", "contact_sync", "legitimate_interest"] {
        assert!(out.contains(needle), "{needle}");
    }
    let json = env.json(0, &["policy"]);
    assert_eq!(json["schema_version"], 1);
    assert_eq!(json["policy"]["categories"].as_array().unwrap().len(), 8);
    assert!(!env.db.exists(), "policy does not touch the store");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/wk360.json");
    let json = env.json(0, &["--policy", fixture.to_str().unwrap(), "policy"]);
    assert_eq!(json["policy"]["id"], "wk360");
}

#[test]
fn decisions_print_receipts() {
    let env = Env::new();
    let r = env.json(0, &["grant", "alice", "usage_statistics", "--source", "settings"]);
    assert_eq!((r["seq"].as_u64(), r["action"].as_str(), r["source"].as_str()), (Some(1), Some("grant"), Some("settings")));
    assert_eq!(r["at"], NOW);
    assert_eq!(r["hash"].as_str().unwrap().len(), 64);
    let human = env.ok(0, &["withdraw", "alice", "usage_statistics"]);
    assert!(human.contains("withdraw") && human.contains("support"), "{human}");
    env.ok(0, &["object", "alice", "contact_information"]);
    env.ok(0, &["withdraw-objection", "alice", "contact_information"]);
    env.ok(0, &["refuse", "bob", "photos_media", "--source", "onboarding"]);
    let scoped = env.json(0, &["grant", "alice", "device_contacts", "--scope", "contact-1", "--source", "settings"]);
    assert_eq!(scoped["scope"], "contact-1");
    let age = env.json(0, &["under-age", "kid"]);
    assert_eq!(age["receipt"]["action"], "age_status");
    env.ok(0, &["grant", "kid", "usage_statistics", "--source", "guardian"]);
    env.fails(2, &["grant", "kid", "photos_media", "--source", "settings"], "needs source 'guardian'");
    env.ok(0, &["under-age", "kid", "--clear"]);
}

#[test]
fn support_cannot_grant() {
    let env = Env::new();
    env.fails(2, &["grant", "alice", "usage_statistics"], "cannot come from source 'support'");
    env.fails(2, &["grant", "alice", "usage_statistics"], "--source settings");
    // Nor by naming the OS settings: support staff act in no one's OS settings, and an OS setting
    // is a permission, not consent. Only the subject's own sources (or a guardian's) record a grant.
    env.fails(2, &["grant", "alice", "usage_statistics", "--source", "os_settings"], "cannot come from source 'os_settings'");
    let seeded = Env::seeded();
    let before = bytes(&seeded.db);
    seeded.fails(2, &["grant", "bob", "usage_statistics", "--source", "os_settings"], "--source settings");
    assert!(bytes(&seeded.db) == before, "nothing was recorded");
    for source in ["settings", "onboarding", "guardian"] {
        seeded.ok(0, &["grant", "bob", "usage_statistics", "--source", source]);
    }
}

#[test]
fn a_future_now_on_a_write_warns_and_later_grants_at_an_earlier_clock_are_refused_naming_both_times() {
    let env = Env::new();
    // A query with a future --now changes nothing and says nothing.
    let query = env.run(&["--now", "2099-01-01T00:00:00Z", "status", "alice"]);
    assert_eq!(query.status.code(), Some(0));
    assert!(query.stderr.is_empty(), "{}", String::from_utf8_lossy(&query.stderr));
    // A write with one warns, before writing, that the store's time moves there for good.
    let out = env.run(&["--now", "2099-01-01T00:00:00Z", "withdraw", "bob", "usage_statistics"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("warning: --now 2099-01-01T00:00:00Z is ahead of this machine's clock"), "{stderr}");
    // Quiet is quiet.
    let quiet = env.run(&["--now", "2099-01-02T00:00:00Z", "-q", "withdraw", "bob", "usage_statistics"]);
    assert_eq!(quiet.status.code(), Some(0));
    assert!(quiet.stderr.is_empty(), "{}", String::from_utf8_lossy(&quiet.stderr));
    // A grant at an earlier clock would outlive its lifetime: refused, both times named, nothing written.
    let before = bytes(&env.db);
    env.fails(2, &["grant", "alice", "usage_statistics", "--source", "settings"], "2099-01-02");
    env.fails(2, &["grant", "alice", "usage_statistics", "--source", "settings"], NOW);
    assert!(bytes(&env.db) == before, "nothing was recorded");
    // A withdrawal is never refused for the clock.
    env.ok(0, &["withdraw", "alice", "usage_statistics"]);
}

/// Every command that writes, with arguments it would accept on an existing store.
fn writes(doc: &str) -> Vec<Vec<&str>> {
    vec![
        vec!["grant", "alice", "usage_statistics", "--source", "settings"],
        vec!["refuse", "alice", "photos_media", "--source", "onboarding"],
        vec!["withdraw", "alice", "usage_statistics"],
        vec!["object", "alice", "contact_information"],
        vec!["withdraw-objection", "alice", "contact_information"],
        vec!["os", "contacts", "granted"],
        vec!["under-age", "kid"],
        vec!["erase", "alice"],
        vec!["purge"],
        vec!["import", doc],
        // sync acknowledges into the store: it opens it before it asks the server anything.
        vec!["--server", "http://127.0.0.1:9", "--token", "t", "sync", "--device", "phone"],
    ]
}

#[test]
fn a_write_on_a_path_with_no_store_creates_one_and_says_so_and_a_refused_write_leaves_no_file() {
    let seeded = Env::seeded();
    let doc = seeded.dir.path().join("alice.json");
    std::fs::write(&doc, seeded.ok(0, &["export", "alice"])).unwrap();
    for args in writes(doc.to_str().unwrap()) {
        let env = Env::without_store();
        let out = env.run(&args);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        if out.status.code() == Some(0) {
            let notice = format!("created a new store at {} (no file was there)", env.db.display());
            assert!(stderr.contains(&notice), "{args:?}: expected '{notice}' in '{stderr}'");
            assert!(env.db.is_file(), "{args:?}: the store was created");
            env.ok(0, &["verify"]);
        } else {
            // Refused (sync: no server at that port): nothing recorded, and no file left behind.
            assert!(!stderr.contains("created a new store"), "{args:?}: {stderr}");
            assert!(env.files("").is_empty(), "{args:?} left {:?}", env.files(""));
        }
    }
    // A write the store refuses removes the store it had just created; --quiet says nothing.
    let env = Env::without_store();
    env.fails(2, &["grant", "alice", "usage_statistics"], "cannot come from source 'support'");
    env.fails(2, &["grant", "alice", "usage_statistics", "--source", "nowhere"], "nowhere");
    env.fails(2, &["import", "/no/such/export.json"], "cannot read");
    assert!(env.files("").is_empty(), "left {:?}", env.files(""));
    let quiet = env.run(&["-q", "withdraw", "alice", "usage_statistics"]);
    assert_eq!(quiet.status.code(), Some(0));
    assert!(quiet.stderr.is_empty(), "{}", String::from_utf8_lossy(&quiet.stderr));
    // A query never creates one.
    let env = Env::without_store();
    env.fails(3, &["status", "alice"], "no store at");
    assert!(env.files("").is_empty());
}

#[test]
fn a_withdrawal_on_a_mistyped_db_says_it_created_a_new_store_naming_it_and_the_users_store_is_unchanged() {
    let env = Env::seeded();
    let before = bytes(&env.db);
    // A relative, mistyped --db: the notice names it as typed and where it resolved.
    let out = Command::new(env!("CARGO_BIN_EXE_consentkit"))
        .args(["--db", "suport.db", "--now", NOW, "withdraw", "alice", "usage_statistics"])
        .current_dir(env.dir.path())
        .env_remove("CONSENTKIT_DB")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let resolved = env.dir.path().join("suport.db");
    assert!(stderr.contains("created a new store at suport.db (") && stderr.contains(&resolved.display().to_string()), "{stderr}");
    assert!(stderr.contains("check --db (or CONSENTKIT_DB)"), "{stderr}");
    assert!(bytes(&env.db) == before, "the user's store is untouched");
    assert_eq!(status_of(&env.json(0, &["status", "alice"]), "usage_statistics"), "granted", "not withdrawn there");
    // Through a symlink whose target is missing: refused (SQLite would create the target).
    let link = env.dir.path().join("link.db");
    std::os::unix::fs::symlink(env.dir.path().join("gone.db"), &link).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_consentkit"))
        .arg("--db")
        .arg(&link)
        .args(["withdraw", "alice", "usage_statistics"])
        .env_remove("CONSENTKIT_DB")
        .current_dir(env.dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("symlink to nothing") && stderr.contains("CONSENTKIT_DB"), "{stderr}");
    assert_eq!(env.files("gone").len(), 0);
}

#[test]
fn init_creates_an_empty_store_once_for_its_policy() {
    let env = Env::without_store();
    let v = env.json(0, &["init"]);
    assert_eq!((v["created"].as_str(), v["policy"]["id"].as_str()), (env.db.to_str(), Some("ucanywhere")), "{v}");
    assert_eq!(env.json(0, &["verify"])["events"], 0, "a valid, empty store");
    assert_eq!(status_of(&env.json(0, &["status", "alice"]), "usage_statistics"), "not_asked");
    // A file already there, a store or not, is refused and left as it was.
    let before = bytes(&env.db);
    env.fails(2, &["init"], "a file already exists at");
    assert!(bytes(&env.db) == before);
    let notes = env.dir.path().join("notes.txt");
    std::fs::write(&notes, "not a store").unwrap();
    let out =
        Command::new(env!("CARGO_BIN_EXE_consentkit")).arg("--db").arg(&notes).arg("init").env_remove("CONSENTKIT_DB").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "not a store");
    // The human line, and the store bound to the policy it was made for.
    let wk = Env::without_store();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/wk360.json");
    let line = wk.ok(0, &["--policy", fixture.to_str().unwrap(), "init"]);
    assert!(line.contains("created an empty store at") && line.contains("wk360"), "{line}");
    wk.fails(3, &["withdraw", "alice", "usage_statistics"], "belongs to policy 'wk360'");
    // A folder that does not exist: a store problem, and nothing is made.
    let nowhere = Env { db: wk.dir.path().join("no-such-dir/support.db"), dir: tempfile::tempdir().unwrap() };
    nowhere.fails(3, &["init"], "cannot create a store at");
    assert!(!wk.dir.path().join("no-such-dir").exists());
}

#[test]
fn os_command() {
    let env = Env::new();
    let r = env.json(0, &["os", "photos", "limited"]);
    let receipt = &r["receipt"];
    assert_eq!(
        (r["changed"].as_bool(), receipt["permission"].as_str(), receipt["os_state"].as_str()),
        (Some(true), Some("photos"), Some("limited"))
    );
    let again = env.json(0, &["os", "photos", "limited"]);
    assert_eq!(again["changed"], false);
    // Any catalog's permission id is accepted (camera is predefined); a malformed one is bad input.
    let camera = env.json(0, &["os", "camera", "granted"]);
    assert_eq!(camera["receipt"]["permission"], "camera");
    env.fails(2, &["os", "Camera!", "granted"], "OS permission 'Camera!' is not snake_case");
    env.fails(2, &["os", "photos", "maybe"], "unknown OS permission state 'maybe'");
}

#[test]
fn status_json_shape_and_table() {
    let env = Env::seeded();
    let s = env.json(0, &["status", "alice"]);
    assert_eq!(s["subject"], "alice");
    assert_eq!(s["policy"], serde_json::json!({ "id": "ucanywhere", "version": "2018-05-01" }));
    let cats = s["categories"].as_array().unwrap();
    assert_eq!(cats.len(), 8);
    let usage = cats.iter().find(|c| c["id"] == "usage_statistics").unwrap();
    assert_eq!(usage, &serde_json::json!({ "id": "usage_statistics", "legal_basis": "consent", "status": "granted", "since": NOW }));
    let traffic = cats.iter().find(|c| c["id"] == "traffic_data").unwrap();
    assert_eq!((traffic["status"].as_str(), traffic["since"].is_null()), (Some("not_required"), true));
    let table = env.ok(0, &["status", "alice"]);
    assert!(table.contains("CATEGORY") && table.contains("refused"));
    let never = env.json(0, &["status", "never-seen"]);
    assert!(never["categories"].as_array().unwrap().iter().any(|c| c["status"] == "not_asked"), "unknown subject: simply never asked");
}

#[test]
fn check_exit_codes_and_json() {
    let env = Env::seeded();
    let allowed = env.json(0, &["check", "alice", "contact_lookup"]);
    assert_eq!(
        allowed,
        serde_json::json!({ "schema_version": 1, "feature": "contact_lookup", "allowed": true, "limited": false, "reasons": [] })
    );
    let denied = env.json(1, &["check", "alice", "photo_sharing"]);
    assert_eq!(denied["allowed"], false);
    assert_eq!(denied["reasons"][0], serde_json::json!({ "code": "consent_refused", "category": "photos_media" }));
    assert_eq!(denied["reasons"][1]["code"], "os_permission_not_determined");
    assert!(env.ok(1, &["check", "nobody", "usage_analytics"]).contains("consent_not_asked"));
    env.ok(1, &["check", "alice", "contact_sync", "--scope", "c-9"]);
    env.fails(2, &["check", "alice", "teleport"], "unknown feature 'teleport'");
    env.fails(2, &["check", "alice", "contact_sync"], "check it with a scope");
    // Expiry follows --now.
    assert_eq!(
        env.json(1, &["--now", "2027-02-15T09:00:00Z", "check", "alice", "usage_analytics"])["reasons"][0]["code"],
        "consent_expired"
    );
}

#[test]
fn history_json_includes_os_changes() {
    let env = Env::seeded();
    let h = env.json(0, &["history", "alice"]);
    assert_eq!((h["schema_version"].as_u64(), h["subject"].as_str()), (Some(1), Some("alice")));
    let rows = h["events"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    for key in ["seq", "id", "category", "action", "scope", "source", "policy_version", "at", "hash"] {
        assert!(rows[0].get(key).is_some(), "{key}");
    }
    assert_eq!(rows[3]["action"], "os_permission");
    assert_eq!((rows[3]["permission"].as_str(), rows[3]["state"].as_str()), (Some("contacts"), Some("granted")));
    assert!(env.ok(0, &["history", "bob"]).contains("OS contacts -> granted"), "device changes concern every subject");
}

#[test]
fn export_import_erase_purge_verify() {
    let env = Env::seeded();
    let export = env.ok(0, &["export", "alice"]);
    let file = env.dir.path().join("alice.json");
    std::fs::write(&file, &export).unwrap();
    let other = Env::new();
    let imported = other.json(0, &["import", file.to_str().unwrap()]);
    assert_eq!((imported["subject"].as_str(), imported["imported"].as_u64()), (Some("alice"), Some(3)));
    assert_eq!(other.json(0, &["status", "alice"])["categories"], env.json(0, &["status", "alice"])["categories"]);
    other.fails(2, &["import", file.to_str().unwrap()], "already has records");
    std::fs::write(&file, export.replacen("\"refuse\"", "\"grant\"", 1)).unwrap();
    Env::new().fails(2, &["import", file.to_str().unwrap()], "does not verify");
    Env::new().fails(2, &["import", "/no/such/file.json"], "cannot read");

    let erased = env.json(0, &["erase", "alice"]);
    assert_eq!(erased["erased_events"], 3);
    assert_eq!(erased["receipt"]["action"], "erasure");
    assert!(!erased.to_string().contains("\"alice\""), "the erasure record does not name the subject");
    // Support asking "what happened to alice?" sees the erasure, not an empty history.
    let history = env.json(0, &["history", "alice"]);
    let events = history["events"].as_array().cloned().unwrap_or_default();
    assert!(events.iter().all(|e| e["action"] == "os_permission"), "only the device's OS events are left: {history}");
    assert_eq!(history["erasures"][0]["seq"], erased["receipt"]["seq"], "{history}");
    assert_eq!(history["erasures"][0]["source"], "support", "{history}");
    assert!(env.ok(0, &["history", "alice"]).contains(&format!("erasure record seq {}", erased["receipt"]["seq"])));
    assert_eq!(env.json(0, &["history", "bob"])["erasures"], serde_json::json!([]), "no erasure of bob");
    assert_eq!(env.json(0, &["verify"]), serde_json::json!({ "schema_version": 1, "intact": true, "events": 5 }));
    let purge = env.json(0, &["--now", "2040-01-01T00:00:00Z", "purge"]);
    assert_eq!(purge["removed_events"], 0, "nothing acknowledged by a backend yet, nothing purged");
    assert!(env.ok(0, &["purge"]).contains("purged 0 events"));
}

#[test]
fn query_commands_are_read_only() {
    let env = Env::seeded();
    env.ok(0, &["verify"]); // settle any WAL into the file first
    let db_before = bytes(&env.db);
    for args in [
        &["status", "alice"][..],
        &["check", "alice", "photo_sharing"],
        &["history", "alice"],
        &["export", "alice"],
        &["verify"],
        &["policy"],
    ] {
        let out = env.run(args);
        assert!(matches!(out.status.code(), Some(0) | Some(1)), "{args:?}");
        assert_eq!(bytes(&env.db), db_before, "{args:?} changed the database file");
    }
    let missing = Env::without_store();
    for args in [&["status", "alice"][..], &["check", "alice", "calling"], &["history", "alice"], &["export", "alice"], &["verify"]] {
        missing.fails(3, args, "no such file");
        assert!(!missing.db.exists(), "{args:?} created the database");
    }
}

#[test]
fn tampered_database_fails_verify_with_3() {
    let env = Env::seeded();
    let conn = rusqlite::Connection::open(&env.db).unwrap();
    conn.execute_batch("DROP TRIGGER events_append_only_update; UPDATE events SET action = 'grant' WHERE seq = 3;").unwrap();
    drop(conn);
    env.fails(3, &["verify"], "chain broken at seq 3");
    let json = env.run(&["--json", "verify"]);
    assert_eq!(json.status.code(), Some(3));
    let v: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!((v["intact"].as_bool(), v["first_bad_seq"].as_u64()), (Some(false), Some(3)));
}

#[test]
fn store_problems_exit_3() {
    let env = Env::without_store();
    std::fs::write(&env.db, vec![7u8; 4096]).unwrap();
    env.fails(3, &["status", "alice"], "unavailable");
    env.fails(3, &["grant", "alice", "usage_statistics", "--source", "settings"], "unavailable");
    let newer = Env::seeded();
    let conn = rusqlite::Connection::open(&newer.db).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    newer.fails(3, &["grant", "alice", "photos_media", "--source", "settings"], "schema version 99");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/wk360.json");
    Env::seeded().fails(3, &["--policy", fixture.to_str().unwrap(), "status", "alice"], "belongs to policy 'ucanywhere'");
}

#[test]
fn an_empty_file_at_db_is_no_store_a_query_says_so_and_a_write_records_nothing_in_it() {
    // A 0-byte file (an app's store truncated, a `touch`) is not the user's store: a withdrawal
    // typed against it must not silently set up a new store there with no notice, and a query
    // must not advise opening it read-write.
    let env = Env::without_store();
    std::fs::write(&env.db, b"").unwrap();
    env.fails(3, &["status", "alice"], "is empty");
    env.fails(3, &["withdraw", "alice", "usage_statistics"], "is empty");
    env.fails(3, &["grant", "alice", "usage_statistics", "--source", "settings"], "nothing was recorded");
    assert_eq!(bytes(&env.db), b"", "the file was left as it was");
    assert_eq!(env.files("support.db"), ["support.db"], "no -wal or -shm beside it");
}

#[test]
fn a_store_held_by_another_process_past_the_wait_exits_5_and_changes_nothing() {
    let env = Env::seeded();
    let before = env.json(0, &["history", "alice"]);
    // Another process (here a plain SQLite connection) holds the write lock past the bounded wait.
    let holder = rusqlite::Connection::open(&env.db).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    env.fails(5, &["withdraw", "alice", "usage_statistics", "--source", "settings"], "busy");
    holder.execute_batch("ROLLBACK").unwrap();
    drop(holder);
    assert_eq!(env.json(0, &["history", "alice"]), before, "the refused write changed nothing");
    env.ok(0, &["withdraw", "alice", "usage_statistics", "--source", "settings"]);
    let help = env.ok(0, &["--help"]);
    assert!(help.contains("5  temporary: the store stayed busy"), "{help}");
    // With --json, stdout carries the failure in the envelope too.
    let holder = rusqlite::Connection::open(&env.db).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let out = env.run(&["--json", "withdraw", "alice", "usage_statistics", "--source", "settings"]);
    holder.execute_batch("ROLLBACK").unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((out.status.code(), v["error"]["exit_code"].as_u64()), (Some(5), Some(5)), "{v}");
}

#[test]
fn with_json_a_failure_is_a_json_object_on_stdout_naming_the_exit_code() {
    let env = Env::seeded();
    let out = env.run(&["--json", "check", "alice", "teleport"]);
    assert_eq!(out.status.code(), Some(2));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(v["schema_version"], serde_json::json!(1));
    assert_eq!(v["error"]["exit_code"], serde_json::json!(2));
    assert!(v["error"]["message"].as_str().unwrap().contains("teleport"), "{v}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("teleport"), "the line on stderr stays");
    std::fs::write(&env.db, vec![7u8; 4096]).unwrap();
    let out = env.run(&["--json", "status", "alice"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((out.status.code(), v["error"]["exit_code"].as_u64()), (Some(3), Some(3)), "{v}");
}

#[test]
fn with_json_a_usage_error_is_a_json_object_on_stdout_too() {
    let env = Env::seeded();
    for (args, needle) in [
        (vec!["--json", "check", "alice"], "<FEATURE>"),
        (vec!["--json", "frobnicate"], "frobnicate"),
        (vec!["check", "alice", "usage_analytics", "--json", "--bogus"], "--bogus"),
    ] {
        let out = env.run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let v: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: stdout is not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)));
        assert_eq!(v["schema_version"], serde_json::json!(1), "{v}");
        assert_eq!(v["error"]["exit_code"], serde_json::json!(2), "{v}");
        assert!(v["error"]["message"].as_str().unwrap().contains(needle), "{args:?}: {v}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(needle), "{args:?}: the line on stderr stays");
    }
    // A `--json` that is a value (after `--`), not the flag, asks for no JSON; `--quiet` prints nothing.
    for args in [vec!["check", "alice", "--", "--json"], vec!["-q", "--json", "check", "alice"], vec!["--json", "--quiet", "frobnicate"]] {
        let out = env.run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}: {}", String::from_utf8_lossy(&out.stdout));
    }
}

#[test]
fn an_argument_that_is_not_utf8_is_named_and_changes_nothing() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let env = Env::seeded();
    let before = std::fs::read(&env.db).unwrap();
    let bad = OsStr::from_bytes(b"al\xffice");
    for json in [false, true] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_consentkit"));
        cmd.arg("--db").arg(&env.db).args(["--now", NOW]);
        if json {
            cmd.arg("--json");
        }
        let out = cmd.args(["withdraw"]).arg(bad).arg("usage_statistics").env_remove("CONSENTKIT_DB").output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(r"'al\xffice'"), "names the bad value: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        if json {
            let v: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert!(v["error"]["message"].as_str().unwrap().contains(r"'al\xffice'"), "{v}");
        }
    }
    assert!(std::fs::read(&env.db).unwrap() == before, "the store is unchanged");
}

#[test]
fn bad_input_for_each_argument_exits_2() {
    let env = Env::seeded();
    let long = "x".repeat(300);
    env.fails(2, &["grant", "alice", "nope", "--source", "settings"], "unknown category 'nope'");
    env.fails(2, &["grant", "", "usage_statistics", "--source", "settings"], "invalid subject ''");
    env.fails(2, &["grant", &long, "usage_statistics", "--source", "settings"], "300 bytes");
    env.fails(2, &["grant", "alice", "device_contacts", "--scope", &long, "--source", "settings"], "invalid scope");
    env.fails(2, &["grant", "alice", "usage_statistics", "--source", "telepathy"], "unknown source 'telepathy'");
    env.fails(2, &["grant", "alice", "traffic_data", "--source", "settings"], "rests on contract");
    env.fails(2, &["erase", "alice", "--source", "guardian"], "invalid source 'guardian'");
    env.fails(2, &["--now", "yesterday", "status", "alice"], "'yesterday' is not an RFC 3339 time");
    env.fails(2, &["--policy", "/no/such/policy.json", "status", "alice"], "cannot read policy file");
    let broken = env.dir.path().join("broken.json");
    std::fs::write(
        &broken,
        r#"{"id":"x","version":"1","categories":[{"id":"a","title":"A","legal_basis":"concent","retention":"P1Y"}],"features":[]}"#,
    )
    .unwrap();
    env.fails(2, &["--policy", broken.to_str().unwrap(), "policy"], "$.categories[0].legal_basis");
    env.fails(2, &["frobnicate"], "unrecognized subcommand");
    env.fails(2, &["check", "alice"], "required");
}

#[test]
fn db_defaults_to_env_then_cwd() {
    let dir = tempfile::tempdir().unwrap();
    let run = |env_db: Option<&Path>, args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_consentkit"));
        cmd.args(args).current_dir(dir.path()).env_remove("CONSENTKIT_DB");
        if let Some(p) = env_db {
            cmd.env("CONSENTKIT_DB", p);
        }
        assert!(cmd.output().unwrap().status.success(), "{env_db:?} {args:?}");
    };
    let grant = ["grant", "a", "usage_statistics", "--source", "settings"];
    run(None, &["init"]);
    assert!(dir.path().join("consentkit.db").exists());
    run(None, &grant);
    let custom = dir.path().join("custom.db");
    run(Some(&custom), &["init"]);
    assert!(custom.exists());
    run(Some(&custom), &grant);
}

#[test]
fn demo_walks_through_a_users_life() {
    let env = Env::without_store();
    let out = Command::new(env!("CARGO_BIN_EXE_consentkit")).arg("demo").current_dir(env.dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "check usage_analytics: DENIED, consent_not_asked",
        "check contact_sync [contact:1001]: ALLOWED",
        "os_permission_denied (device_contacts)",
        "consent_withdrawn (usage_statistics)",
        "renewal_required (device_contacts)",
        "erased 5 events",
        "chain intact: 9 events verified",
    ] {
        assert!(text.contains(needle), "demo output lacks '{needle}'");
    }
    assert!(env.dir.path().join("consentkit-demo.db").exists());
}

#[test]
fn a_local_write_refused_for_a_server_set_in_the_environment_names_the_variable() {
    let env = Env::seeded();
    let before = bytes(&env.db);
    let out = Command::new(env!("CARGO_BIN_EXE_consentkit"))
        .arg("--db")
        .arg(&env.db)
        .args(["--now", NOW, "withdraw", "alice", "usage_statistics"])
        .env_remove("CONSENTKIT_DB")
        .env("CONSENTKIT_SERVER", "http://127.0.0.1:9")
        .env("CONSENTKIT_TOKEN", "t")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("CONSENTKIT_SERVER"), "says where the server came from: {stderr}");
    assert!(bytes(&env.db) == before);
}

/// An open that finds the state digest unsealed (after a migration, a lost digest, a reseal)
/// walks the chain and re-seals it. It read the table, the head and the chain in separate
/// statements, so another process's commit landing between them made a healthy file read as
/// truncated, and that run failed closed (exit 3). Two tool runs at a time, each writing, one of
/// them unsealing the digest first: every run succeeds and the chain stays intact.
#[test]
fn runs_that_walk_the_chain_while_another_process_writes_never_read_a_healthy_file_as_tampered() {
    let env = Env::new();
    for i in 0..150 {
        env.ok(0, &["-q", "grant", &format!("u{i}"), "usage_statistics", "--source", "settings"]);
    }
    let db = env.db.clone();
    let dir = env.dir.path().to_path_buf();
    let run = move |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_consentkit"))
            .arg("--db")
            .arg(&db)
            .args(args)
            .current_dir(&dir)
            .env_remove("CONSENTKIT_DB")
            .output()
            .unwrap()
    };
    let other = {
        let run = run.clone();
        std::thread::spawn(move || {
            let mut failures = Vec::new();
            for _ in 0..40 {
                for action in ["grant", "withdraw"] {
                    let out = run(&["-q", action, "w1", "usage_statistics", "--source", "settings"]);
                    if out.status.code() != Some(0) {
                        failures.push(String::from_utf8_lossy(&out.stderr).to_string());
                    }
                }
            }
            failures
        })
    };
    let raw = rusqlite::Connection::open(&env.db).unwrap();
    raw.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    let mut failures = Vec::new();
    for _ in 0..40 {
        raw.execute("UPDATE meta SET value = 'x' WHERE key = 'state_digest'", []).unwrap();
        let out = run(&["-q", "grant", "u1", "usage_statistics", "--source", "settings"]);
        if out.status.code() != Some(0) {
            failures.push(String::from_utf8_lossy(&out.stderr).to_string());
        }
    }
    failures.extend(other.join().unwrap());
    assert!(failures.is_empty(), "runs on a healthy file failed: {failures:?}");
    env.ok(0, &["verify"]);
}

/// A `--server` that is not an http(s) URL is a mistyped argument, not a server to wait for:
/// exit 2 naming it, at once (no retries), nothing sent and the store unchanged. It was exit 5
/// ("temporary: run the command again") after `sync` had retried it for seconds.
#[test]
fn a_server_url_that_is_not_http_is_bad_input_naming_it_and_changes_nothing() {
    let env = Env::seeded();
    let before = bytes(&env.db);
    for url in ["127.0.0.1:8080", "ftp://127.0.0.1:8080", "not a url", "http://", "localhost"] {
        let started = std::time::Instant::now();
        env.fails(2, &["--server", url, "--token", "t", "status", "alice"], &format!("--server '{url}'"));
        env.fails(2, &["--server", url, "--token", "t", "sync", "--device", "phone"], &format!("--server '{url}'"));
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "{url}: refused at once, not retried");
        assert!(bytes(&env.db) == before, "{url}: the store is untouched");
    }
    let out = env.run(&["--json", "--server", "localhost", "--token", "t", "check", "alice", "calling"]);
    assert_eq!(out.status.code(), Some(2));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["exit_code"], 2, "{v}");
    // A sync to a missing store with a bad URL leaves no file behind either.
    let empty = Env::without_store();
    empty.fails(2, &["--server", "localhost:1", "--token", "t", "sync", "--device", "phone"], "--server 'localhost:1'");
    assert!(empty.files("support.db").is_empty(), "no store created: {:?}", empty.files(""));
}

/// `--help` says what the tool does: a write on a missing --db creates the store (it said "it must
/// exist (only `init` creates one)"), `os` takes any catalog's permission id (it said "contacts
/// or photos", yet `os camera granted` is recorded) and the state `provisional`.
#[test]
fn help_describes_what_db_and_os_accept() {
    let env = Env::without_store();
    let help = env.ok(0, &["os", "--help"]);
    assert!(!help.contains("only `init` creates one"), "{help}");
    assert!(help.contains("a write on a path with no") && help.contains("creates a new store"), "{help}");
    assert!(help.contains("provisional") && help.contains("camera") && help.contains("any other id"), "{help}");
    for state in ["granted", "limited", "provisional", "denied", "not_determined", "restricted"] {
        assert!(help.contains(state), "{state}: {help}");
    }
}
