//! The tool as a terminal program: closed pipes, escaped output, bounded one-line errors, tables
//! aligned by display width, progress and colour only on a terminal, `--quiet`, the versioned
//! JSON envelope of every command, completions, the man page, the version and the exit codes.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Stdio};
use std::sync::Arc;

use assert_cmd::Command;
use consentkit_core::{Action, ConsentStore, DecisionInput, ManualClock, OpenMode, OsPermission, OsState, Policy, Source, Timestamp};
use predicates::prelude::*;
use serde_json::Value;

const NOW: &str = "2026-01-15T09:00:00Z";
const BIN: &str = env!("CARGO_BIN_EXE_consentkit");

struct Env {
    dir: tempfile::TempDir,
    db: PathBuf,
}

impl Env {
    /// A folder with no store in it yet.
    fn without_store() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("support.db");
        Env { dir, db }
    }

    /// A new, empty store (`consentkit init`).
    fn new() -> Env {
        let env = Env::without_store();
        env.cmd().arg("init").assert().success();
        env
    }

    /// A store holding `pairs` grant/withdraw pairs of alice's usage statistics, written by the core.
    fn with_history(pairs: usize) -> Env {
        let env = Env::without_store();
        let clock = Arc::new(ManualClock::new(Timestamp::parse(NOW).unwrap()));
        let store = ConsentStore::open_with(&env.db, Arc::new(Policy::builtin()), clock, OpenMode::ReadWrite).unwrap();
        let batch: Vec<DecisionInput> = (0..pairs)
            .flat_map(|_| {
                [
                    DecisionInput::new("alice", "usage_statistics", Action::Grant, Source::Settings),
                    DecisionInput::new("alice", "usage_statistics", Action::Withdraw, Source::Settings),
                ]
            })
            .collect();
        for chunk in batch.chunks(2000) {
            store.record_batch(chunk).unwrap();
        }
        store.set_os_permission(OsPermission::CONTACTS, OsState::Granted).unwrap();
        env
    }

    fn cmd(&self) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.arg("--db").arg(&self.db).args(["--now", NOW]).current_dir(self.dir.path()).env_remove("CONSENTKIT_DB").env_remove("NO_COLOR");
        cmd
    }

    fn stdout(&self, args: &[&str]) -> String {
        let out = self.cmd().args(args).output().unwrap();
        assert!(out.status.code().is_some_and(|c| c <= 1), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs `args` on a pseudo-terminal (util-linux `script`), returning what the terminal showed.
    fn on_terminal(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        let mut line = format!("'{BIN}' --db '{}'", self.db.display());
        if !args.iter().any(|a| a.starts_with("--now")) {
            line.push_str(&format!(" --now {NOW}"));
        }
        for a in args {
            line.push_str(&format!(" '{a}'"));
        }
        let mut cmd = StdCommand::new("script");
        cmd.args(["-qec", &line, "/dev/null"]).env_remove("NO_COLOR").env("TERM", "xterm").stdin(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("util-linux `script` runs the tool on a pseudo-terminal");
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// Breaks the append-only triggers and rewrites alice's scope column to `scope`.
    fn plant_scope(&self, scope: &str) {
        let conn = rusqlite::Connection::open(&self.db).unwrap();
        conn.execute_batch("DROP TRIGGER IF EXISTS events_append_only_update;").unwrap();
        conn.execute("UPDATE events SET scope = ?1 WHERE seq = 1", [scope]).unwrap();
    }
}

fn workspace_version() -> String {
    let manifest = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml")).unwrap();
    let section = &manifest[manifest.find("[workspace.package]").unwrap()..];
    let line = section.lines().find(|l| l.trim_start().starts_with("version")).unwrap();
    line.split('"').nth(1).unwrap().to_string()
}

#[test]
fn a_closed_stdout_ends_the_tool_quietly() {
    let env = Env::with_history(3000);
    let mut child = StdCommand::new(BIN)
        .arg("--db")
        .arg(&env.db)
        .args(["history", "alice"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    child.stdout.as_mut().unwrap().read_exact(&mut first).unwrap();
    drop(child.stdout.take()); // like `| head -c 16`: the reader goes away mid-table
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "exit 0 on a closed pipe; stderr: {stderr}");
    assert_eq!(stderr, "", "no panic text");
    // And through a real shell pipeline.
    let out = StdCommand::new("bash")
        .args(["-c", &format!("set -o pipefail; '{BIN}' --db '{}' history alice | head -1", env.db.display())])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}

#[test]
fn stored_control_characters_are_shown_escaped_in_tables_and_receipts() {
    let env = Env::with_history(1);
    env.plant_scope("x\u{1b}]0;pwned\u{7}\u{1b}[2J\u{9b}31m\u{202e}");
    let table = env.stdout(&["history", "alice"]);
    for raw in ['\u{1b}', '\u{7}', '\u{9b}', '\u{202e}'] {
        assert!(!table.contains(raw), "raw {raw:?} in {table:?}");
    }
    assert!(table.contains("x\\x1b]0;pwned\\x07\\x1b[2J\\x9b31m\\u{202e}"), "{table}");
    let json = env.stdout(&["--json", "history", "alice"]);
    assert!(!json.contains('\u{1b}') && !json.contains('\u{9b}') && !json.contains('\u{202e}'), "{json:?}");
    let parsed: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed["events"][0]["scope"], "x\u{1b}]0;pwned\u{7}\u{1b}[2J\u{9b}31m\u{202e}", "JSON keeps the exact value");
    let export = env.stdout(&["export", "alice"]);
    assert!(!export.contains('\u{9b}') && !export.contains('\u{202e}'));
}

#[test]
fn errors_are_one_escaped_line_with_a_bounded_echo() {
    let env = Env::with_history(1);
    let long = "f".repeat(5000);
    let hostile = "a\u{1b}[31mred\nsecond line\u{9b}";
    for args in [
        vec!["check", "alice", long.as_str()],
        vec!["check", "alice", hostile],
        vec!["status", hostile],
        vec!["grant", hostile, "usage_statistics", "--source", "settings"],
        vec!["grant", "alice", hostile, "--source", "settings"],
        vec!["grant", "alice", "usage_statistics", "--source", hostile],
        vec!["os", hostile, "granted"],
        vec![hostile],
        vec!["--now", hostile, "status", "alice"],
    ] {
        let out = env.cmd().args(&args).output().unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: one line: {stderr:?}");
        assert!(stderr.starts_with("consentkit: "), "{stderr}");
        assert!(stderr.len() < 600, "bounded: {} bytes", stderr.len());
        for raw in ['\u{1b}', '\u{9b}'] {
            assert!(!stderr.contains(raw), "{args:?}: raw {raw:?} in {stderr:?}");
        }
    }
    env.cmd()
        .args(["check", "alice", &long])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(format!("unknown feature '{}… (5000 bytes)'", "f".repeat(64))));
}

#[test]
fn tables_align_cjk_and_emoji_scopes() {
    let env = Env::new();
    for scope in ["連絡先-1", "😀😀", "plain"] {
        env.cmd().args(["grant", "alice", "device_contacts", "--scope", scope, "--source", "settings"]).assert().success();
    }
    let table = env.stdout(&["history", "alice"]);
    // The SOURCE column starts at the same display column on every row.
    let source_column = |line: &str| {
        let at = line.find("settings").or_else(|| line.find("SOURCE")).unwrap();
        unicode_width::UnicodeWidthStr::width(&line[..at])
    };
    let lines: Vec<&str> = table.lines().filter(|l| !l.starts_with('-') && !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 4, "{table}");
    let header = source_column(lines[0]);
    for line in &lines[1..] {
        assert_eq!(source_column(line), header, "misaligned:\n{table}");
    }
}

#[test]
fn quiet_prints_nothing_and_the_exit_code_answers() {
    let env = Env::new();
    env.cmd().args(["-q", "grant", "alice", "usage_statistics", "--source", "settings"]).assert().success().stdout("");
    env.cmd().args(["--quiet", "check", "alice", "usage_analytics"]).assert().code(0).stdout("").stderr("");
    env.cmd().args(["--quiet", "check", "alice", "photo_sharing"]).assert().code(1).stdout("");
    env.cmd().args(["--quiet", "check", "alice", "teleport"]).assert().code(2).stdout("").stderr(predicate::str::contains("teleport"));
}

#[test]
fn progress_is_drawn_on_a_terminal_only() {
    let env = Env::with_history(6000);
    // Piped (as in every script): stderr stays empty, stdout is the result alone.
    let out = env.cmd().arg("verify").output().unwrap();
    assert_eq!((out.status.code(), String::from_utf8_lossy(&out.stderr).as_ref()), (Some(0), ""));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "chain intact: 12001 events verified\n");
    env.cmd().args(["--json", "verify"]).assert().success().stderr("");
    // On a terminal: a bar on stderr while the chain is walked, then the result.
    let shown = env.on_terminal(&["verify"], &[]);
    assert!(shown.contains("verifying"), "{shown:?}");
    assert!(shown.contains("chain intact: 12001 events verified"), "{shown:?}");
    let quiet = env.on_terminal(&["--quiet", "verify"], &[]);
    assert!(!quiet.contains("verifying") && !quiet.contains("chain intact"), "{quiet:?}");
    let json = env.on_terminal(&["--json", "verify"], &[]);
    assert!(!json.contains("verifying"), "{json:?}");
}

#[test]
fn import_export_and_purge_draw_a_bar_on_a_terminal_only() {
    let env = Env::with_history(6000);
    // Export: piped, the document alone; on a terminal, a bar over the subject's events.
    let piped = env.cmd().args(["export", "alice"]).output().unwrap();
    assert_eq!((piped.status.code(), String::from_utf8_lossy(&piped.stderr).as_ref()), (Some(0), ""));
    let doc = env.dir.path().join("alice.json");
    std::fs::write(&doc, &piped.stdout).unwrap();
    let shown = env.on_terminal(&["export", "alice"], &[]);
    assert!(shown.contains("exporting") && shown.contains("12000/12000 events"), "{:?}", &shown[..shown.len().min(400)]);
    // Import into another store: a bar over the document's events.
    let other = Env::new();
    let piped = other.cmd().args(["import", doc.to_str().unwrap()]).output().unwrap();
    assert_eq!((piped.status.code(), String::from_utf8_lossy(&piped.stderr).as_ref()), (Some(0), ""), "piped: no bar");
    let third = Env::new();
    let shown = third.on_terminal(&["import", doc.to_str().unwrap()], &[]);
    assert!(shown.contains("importing") && shown.contains("imported 12000 events"), "{:?}", &shown[shown.len().saturating_sub(400)..]);
    // Purge, years later, once the backend acknowledged everything: a bar over the candidates.
    let store = ConsentStore::open(&env.db, Policy::builtin()).unwrap();
    let head = store.pending_sync(100_000).unwrap().last().map_or(0, |r| r.seq);
    store.ack_sync(head).unwrap();
    drop(store);
    let later = "--now=2031-01-15T09:00:00Z";
    let shown = env.on_terminal(&[later, "purge"], &[]);
    assert!(shown.contains("purging") && shown.contains("purged"), "{:?}", &shown[shown.len().saturating_sub(400)..]);
    let quiet = env.on_terminal(&["--json", "verify"], &[]);
    assert!(!quiet.contains("verifying"), "--json draws no bar");
}

#[test]
fn colour_on_a_terminal_unless_no_color() {
    let env = Env::with_history(1);
    let coloured = env.on_terminal(&["check", "alice", "usage_analytics"], &[]);
    assert!(coloured.contains("\u{1b}[31mdenied\u{1b}[0m"), "{coloured:?}");
    let plain = env.on_terminal(&["check", "alice", "usage_analytics"], &[("NO_COLOR", "1")]);
    assert!(plain.contains("denied") && !plain.contains('\u{1b}'), "{plain:?}");
    let piped = env.stdout(&["check", "alice", "usage_analytics"]);
    assert!(!piped.contains('\u{1b}'), "{piped:?}");
}

#[test]
fn every_command_has_a_versioned_json_shape() {
    let env = Env::without_store();
    let export_file = env.dir.path().join("alice.json");
    let other = Env::new();
    let run = |env: &Env, args: &[&str], code: i32| -> Value {
        let out = env.cmd().arg("--json").args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(code), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        assert_eq!(v["schema_version"], 1, "{args:?}: {v}");
        v
    };
    run(&env, &["policy"], 0);
    run(&env, &["init"], 0);
    run(&env, &["grant", "alice", "usage_statistics", "--source", "settings"], 0);
    run(&env, &["refuse", "alice", "photos_media", "--source", "settings"], 0);
    run(&env, &["withdraw", "alice", "usage_statistics"], 0);
    run(&env, &["object", "alice", "contact_information"], 0);
    run(&env, &["withdraw-objection", "alice", "contact_information"], 0);
    run(&env, &["os", "contacts", "granted"], 0);
    run(&env, &["os", "contacts", "granted"], 0);
    run(&env, &["under-age", "kid"], 0);
    run(&env, &["status", "alice"], 0);
    run(&env, &["check", "alice", "usage_analytics"], 1);
    run(&env, &["history", "alice"], 0);
    let doc = run(&env, &["export", "alice"], 0);
    assert_eq!(doc["document"]["subject"], "alice");
    std::fs::write(&export_file, env.stdout(&["export", "alice"])).unwrap();
    run(&other, &["import", export_file.to_str().unwrap()], 0);
    run(&env, &["erase", "alice"], 0);
    run(&env, &["purge"], 0);
    run(&env, &["verify"], 0);
    let demo = run(&env, &["demo"], 0);
    assert_eq!(demo["steps"].as_array().map(Vec::len), Some(10), "{demo}");
}

#[test]
fn completions_man_page_version_and_exit_codes() {
    for (shell, needle) in [("bash", "complete -F"), ("zsh", "#compdef consentkit"), ("fish", "complete -c consentkit")] {
        Command::new(BIN).args(["completions", shell]).assert().success().stdout(
            predicate::str::contains(needle).and(predicate::str::contains("verify")).and(predicate::str::contains("withdraw-objection")),
        );
    }
    Command::new(BIN).args(["completions", "powershell"]).assert().code(2);
    Command::new(BIN).arg("man").assert().success().stdout(
        predicate::str::starts_with(".ie").or(predicate::str::contains(".TH consentkit")).and(predicate::str::contains("Exit codes")),
    );
    Command::new(BIN).arg("--version").assert().success().stdout(format!("consentkit {}\n", workspace_version()));
    let help = Command::new(BIN).arg("--help").output().unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    for line in
        ["0  success", "1  check: the feature is denied", "2  bad input or usage", "3  store problem", "4  output could not be written"]
    {
        assert!(help.contains(line), "--help lists '{line}':\n{help}");
    }
}
