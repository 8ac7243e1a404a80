//! The support tool against a consentkit-server: `sync` (send the local outbox, acknowledge what
//! the server stored, erase locally what the server erased), the queries with `--server` (the same
//! tables and JSON as for a local file, across the subject's devices), and `verify-receipt` (a
//! server's signed head checked against this device's chain with only the public key, offline).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use consentkit_core::{CategoryStatus, OpenMode, Receipt};
use consentkit_server::wire::{self, ErrorBody, IngestReply, SignedHead};
use serde_json::{json, Value};

use crate::args::{Cli, Command};
use crate::commands::open;
use crate::failure::{bad, Failure, BAD_INPUT, STORE, TEMPORARY};
use crate::outln;
use crate::output::{or_dash, paint, print_json, reason_lines, status_table, table};
use crate::text::escape;

/// `consentkit sync`'s arguments.
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// This device's id (its token is for this device only).
    #[arg(long, env = "CONSENTKIT_DEVICE")]
    pub device: String,
    /// Receipts per batch.
    #[arg(long, default_value_t = 100)]
    pub batch: u32,
    /// Write the last signed head here (for `verify-receipt`).
    #[arg(long)]
    pub receipt: Option<PathBuf>,
}

/// `consentkit verify-receipt`'s arguments.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The signed head (JSON, as `sync --receipt` writes it or a batch reply holding `head`).
    pub receipt: PathBuf,
    /// The server's ed25519 public key: 64 hex characters, or a file holding them.
    #[arg(long)]
    pub public_key: String,
    /// The device's receipts as a JSON array or batch (from seq 1) instead of the --db store.
    #[arg(long)]
    pub chain: Option<PathBuf>,
}

/// Exit code when the server is unreachable or unavailable (retry later).
const UNAVAILABLE: u8 = TEMPORARY;

fn client() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(30))).build().into()
}

fn token(cli: &Cli) -> Result<&str, Failure> {
    cli.token.as_deref().ok_or_else(|| bad("--server needs --token (or CONSENTKIT_TOKEN)"))
}

/// One HTTP call; a JSON body back, or a failure naming what the server said.
fn call(cli: &Cli, url: &str, path: &str, body: Option<&Value>) -> Result<Value, Failure> {
    let full = format!("{}{path}", url.trim_end_matches('/'));
    let auth = format!("Bearer {}", token(cli)?);
    let result = match body {
        Some(b) => client().post(&full).header("authorization", &auth).header("content-type", "application/json").send(b.to_string()),
        None => client().get(&full).header("authorization", &auth).call(),
    };
    let mut response = result.map_err(|e| Failure { code: UNAVAILABLE, message: format!("cannot reach the server at {url}: {e}") })?;
    let status = response.status().as_u16();
    let text =
        response.body_mut().read_to_string().map_err(|e| Failure { code: UNAVAILABLE, message: format!("the server's reply: {e}") })?;
    if status == 200 {
        return serde_json::from_str(&text)
            .map_err(|e| Failure { code: UNAVAILABLE, message: format!("the server's reply is not JSON: {e}") });
    }
    Err(server_failure(status, &text))
}

fn server_failure(status: u16, text: &str) -> Failure {
    match serde_json::from_str::<ErrorBody>(text) {
        Ok(e) => {
            // Retryable (503: nothing was confirmed) is temporary; a server error that says it is
            // not (a stored row it cannot read) would fail again: a store problem, the server's.
            let code = if e.retryable {
                UNAVAILABLE
            } else if status >= 500 {
                STORE
            } else {
                BAD_INPUT
            };
            let retry = if e.retryable { " (retryable)" } else { "" };
            Failure { code, message: format!("server: {} ({}){retry}", e.message, e.error) }
        }
        Err(_) => Failure { code: UNAVAILABLE, message: format!("server answered HTTP {status}") },
    }
}

/// `--server` as typed: an `http://` or `https://` URL with a host, else bad input naming it (a
/// mistyped argument, not a server to wait for: exit 2 at once, before the store is opened).
fn check_url(url: &str) -> Result<(), Failure> {
    let uri = ureq::http::Uri::try_from(url).ok();
    let scheme_ok =
        uri.as_ref().and_then(|u| u.scheme_str()).is_some_and(|s| s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https"));
    let host_ok = uri.as_ref().and_then(|u| u.host()).is_some_and(|h| !h.is_empty());
    if scheme_ok && host_ok {
        return Ok(());
    }
    Err(bad(format!("--server '{}' is not an http:// or https:// URL with a host (e.g. http://127.0.0.1:8080)", escape(url))))
}

/// Runs a query command against `url`; `None` for commands that have no server form.
pub fn query(cli: &Cli, url: &str) -> Result<Option<u8>, Failure> {
    check_url(url)?;
    let now = cli.now.as_ref().map(|n| json!(n));
    let code = match &cli.command {
        Command::Status { subject } => {
            let v = call(cli, url, "/v1/subjects/state", Some(&json!({ "subject": subject, "now": now })))?;
            print_status(cli, &v)?;
            0
        }
        Command::Check { subject, feature, scope } => {
            let body = json!({ "subject": subject, "feature": feature, "scope": scope, "now": now });
            let v = call(cli, url, "/v1/subjects/check", Some(&body))?;
            print_check(cli, subject, feature, &v)
        }
        Command::History { subject } => {
            let v = call(cli, url, "/v1/subjects/timeline", Some(&json!({ "subject": subject })))?;
            // An erasure empties the timeline of the events before it: its receipts say so.
            let erased = call(cli, url, "/v1/subjects/erasures", Some(&json!({ "subject": subject })))?;
            print_history(cli, subject, &v, &erased["erasures"]);
            0
        }
        Command::Export { subject } => {
            let v = call(cli, url, "/v1/subjects/export", Some(&json!({ "subject": subject })))?;
            // As for a local file: the document itself, or with --json inside the envelope.
            if cli.json {
                print_json(json!({ "document": v }));
            } else {
                crate::output::print_raw_json(&v);
            }
            0
        }
        Command::Erase { subject, .. } => {
            let v = call(cli, url, "/v1/subjects/erase", Some(&json!({ "subject": subject })))?;
            if cli.json {
                print_json(&v);
            } else {
                outln!("erased {} events of the subject on the server; the erasure receipt:", escape(&v["erased_events"].to_string()));
                let r = &v["receipt"];
                for key in ["id", "subject_key", "erased_at", "erased_events", "devices", "key_id", "signature"] {
                    let value = match &r[key] {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    outln!("{:<16} {}", key.replace('_', " "), escape(&value));
                }
            }
            0
        }
        Command::Sync(_) | Command::VerifyReceipt(_) => return Ok(None),
        _ => {
            // The URL may come from the environment rather than the command line.
            let flag =
                std::env::args_os().take_while(|a| a != "--").any(|a| a == "--server" || a.to_string_lossy().starts_with("--server="));
            let drop = if flag { "drop --server" } else { "unset CONSENTKIT_SERVER (it sets --server)" };
            return Err(bad(format!("this command works on a local file only: {drop}")));
        }
    };
    Ok(Some(code))
}

fn print_status(cli: &Cli, v: &Value) -> Result<(), Failure> {
    if cli.json {
        print_json(v);
        return Ok(());
    }
    let statuses: Vec<CategoryStatus> = v["categories"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            serde_json::from_value(
                json!({ "category": c["id"], "legal_basis": c["legal_basis"], "status": c["status"], "since": c["since"] }),
            )
        })
        .collect::<Result<_, _>>()
        .map_err(|e| Failure { code: UNAVAILABLE, message: format!("the server's state reply: {e}") })?;
    let subject = v["subject"].as_str().unwrap_or_default();
    outln!(
        "{} under policy {} {}\n",
        escape(subject),
        escape(v["policy"]["id"].as_str().unwrap_or_default()),
        escape(v["policy"]["version"].as_str().unwrap_or_default())
    );
    status_table(&statuses);
    for u in v["unknown_categories"].as_array().into_iter().flatten() {
        outln!(
            "\n{}: {} events (the last at {}) of a category the server's policy does not know; they count for nothing",
            escape(u["id"].as_str().unwrap_or_default()),
            u["events"],
            escape(u["last_at"].as_str().unwrap_or_default())
        );
    }
    // An erased subject reads as one never asked: the server's signed erasure receipts say which.
    erasure_lines(&v["erasures"], "the statuses above are those after it");
    Ok(())
}

fn reasons_of(v: &Value) -> Vec<(String, String)> {
    v["reasons"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| (r["code"].as_str().unwrap_or_default().into(), r["category"].as_str().unwrap_or_default().into()))
        .collect()
}

fn print_check(cli: &Cli, subject: &str, feature: &str, v: &Value) -> u8 {
    let allowed = v["allowed"].as_bool() == Some(true);
    if cli.json {
        print_json(v);
    } else if allowed {
        let limited = if v["limited"].as_bool() == Some(true) { " (limited OS access)" } else { "" };
        outln!("{} is {} for {}{limited}", escape(feature), paint("allowed", true), escape(subject));
    } else {
        outln!("{} is {} for {}:", escape(feature), paint("denied", false), escape(subject));
        reason_lines(&reasons_of(v));
        for d in v["devices"].as_array().into_iter().flatten() {
            let device = d["device"].as_str().unwrap_or_default();
            match d["allowed"].as_bool() {
                Some(true) => outln!("  on {}: allowed", escape(device)),
                _ => {
                    let why: Vec<String> = reasons_of(d).into_iter().map(|(c, cat)| format!("{c} ({cat})")).collect();
                    outln!("  on {}: denied: {}", escape(device), escape(&why.join(", ")));
                }
            }
        }
    }
    if allowed {
        0
    } else {
        1
    }
}

fn print_history(cli: &Cli, subject: &str, v: &Value, erasures: &Value) {
    if cli.json {
        print_json(json!({ "subject": subject, "events": v, "erasures": erasures }));
        return;
    }
    let text = |e: &Value, k: &str| e[k].as_str().map(String::from);
    let rows: Vec<Vec<String>> = v
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let what = match (text(e, "permission"), text(e, "state")) {
                (Some(p), Some(s)) => format!("OS {p} -> {s} (device)"),
                _ => or_dash(text(e, "category")),
            };
            vec![
                e["seq"].to_string(),
                or_dash(text(e, "at")),
                or_dash(text(e, "action")),
                what,
                or_dash(text(e, "scope")),
                or_dash(text(e, "source")),
                or_dash(text(e, "policy_version")),
                or_dash(text(e, "device")),
            ]
        })
        .collect();
    table(&["SEQ", "AT", "ACTION", "CATEGORY", "SCOPE", "SOURCE", "POLICY", "DEVICE"], &rows);
    erasure_lines(erasures, "the events before it were removed");
}

/// A line for each of the server's erasure receipts in `erasures`, `what` saying what it means here.
fn erasure_lines(erasures: &Value, what: &str) {
    for e in erasures.as_array().into_iter().flatten() {
        let events = e["erased_events"].as_u64().unwrap_or_default();
        outln!(
            "\nerased on the server at {} (receipt {}, {events} event{} deleted): {what}",
            escape(e["erased_at"].as_str().unwrap_or_default()),
            escape(e["id"].as_str().unwrap_or_default()),
            if events == 1 { "" } else { "s" }
        );
    }
}

/// [`call`], retried a few times (with back-off) while the server is unavailable.
fn call_retrying(cli: &Cli, url: &str, path: &str, body: Option<&Value>) -> Result<Value, Failure> {
    let mut attempt = 0;
    loop {
        match call(cli, url, path, body) {
            Err(f) if f.code == UNAVAILABLE && attempt < 4 => {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(250 << attempt));
            }
            other => return other,
        }
    }
}

/// `consentkit sync --server URL --device ID`.
pub fn sync(cli: &Cli, a: &SyncArgs) -> Result<u8, Failure> {
    let url = cli.server.as_deref().ok_or_else(|| bad("sync needs --server URL"))?;
    check_url(url)?;
    let store = open(cli, OpenMode::ReadWrite)?;
    let (mut sent, mut batches, mut stored, mut erased) = (0u64, 0u64, 0u64, Vec::<String>::new());
    let mut erased_on_server = 0u64;
    let mut last: Option<SignedHead> = None;
    let mut asked_for_notices = false;
    let mut unknown_categories: Vec<String> = Vec::new();
    loop {
        // The batch and what a reply does come from the core, as for the Kotlin and Swift apps.
        let Some(batch) = store.sync_batch(&a.device, a.batch)? else {
            if asked_for_notices {
                break;
            }
            // Nothing (more) to send: ask for erasures made on the server since; their local
            // erasure records then go out in the next batch.
            asked_for_notices = true;
            let notices = call_retrying(cli, url, &format!("/v1/devices/{}/erasures", a.device), None)?;
            for subject in store.apply_erasure_notices(&notices.to_string())? {
                if !erased.contains(&subject) {
                    erased.push(subject);
                }
            }
            continue;
        };
        let body: Value = serde_json::from_str(&batch.json).map_err(|e| bad(e.to_string()))?;
        let reply = call_retrying(cli, url, &format!("/v1/devices/{}/batches", a.device), Some(&body))?;
        let signed: IngestReply = serde_json::from_value(reply.clone())
            .map_err(|e| Failure { code: UNAVAILABLE, message: format!("the server's reply: {e}") })?;
        let outcome = store
            .apply_sync_reply(&batch, &reply.to_string())
            .map_err(|e| Failure { code: STORE, message: format!("the server's reply was not applied: {e}") })?;
        for subject in outcome.erased_subjects {
            if !erased.contains(&subject) {
                erased.push(subject);
            }
        }
        for id in &signed.unknown_categories {
            if !unknown_categories.contains(id) {
                unknown_categories.push(id.clone());
            }
        }
        sent += batch.receipts.len() as u64;
        stored += outcome.stored;
        erased_on_server += outcome.erased_on_server;
        batches += 1;
        last = Some(signed.head);
    }
    if let (Some(path), Some(head)) = (&a.receipt, &last) {
        let text = serde_json::to_string_pretty(head).map_err(|e| bad(e.to_string()))?;
        std::fs::write(path, text).map_err(|e| bad(format!("cannot write {}: {e}", path.display())))?;
    }
    if cli.json {
        print_json(json!({
            "sent": sent,
            "batches": batches,
            "stored": stored,
            "head": last,
            "erased_locally": erased,
            "erased_on_server": erased_on_server,
            "unknown_categories": unknown_categories,
        }));
    } else {
        match &last {
            None => outln!("nothing to send: the outbox is empty"),
            Some(h) => outln!("sent {sent} receipts in {batches} batches ({stored} new on the server); acknowledged up to seq {}", h.seq),
        }
        for s in &erased {
            outln!("erased {} on this device: the server had erased them", escape(s));
        }
        if erased_on_server > 0 {
            let plural = if erased_on_server == 1 { "" } else { "s" };
            outln!("the server deleted its copies of {erased_on_server} event{plural} this device had erased");
        }
        if !unknown_categories.is_empty() {
            let ids: Vec<String> = unknown_categories.iter().map(|c| escape(c).into_owned()).collect();
            outln!(
                "warning: the server's policy does not know the categories {}: their events are stored there but count for nothing",
                ids.join(", ")
            );
        }
    }
    Ok(0)
}

/// `consentkit verify-receipt RECEIPT --public-key KEY [--chain FILE]`.
pub fn verify_receipt(cli: &Cli, a: &VerifyArgs) -> Result<u8, Failure> {
    let read = |p: &PathBuf| std::fs::read_to_string(p).map_err(|e| bad(format!("cannot read {}: {e}", p.display())));
    let doc: Value = serde_json::from_str(&read(&a.receipt)?).map_err(|e| bad(format!("{}: {e}", a.receipt.display())))?;
    let doc = if doc.get("head").is_some() { doc["head"].clone() } else { doc };
    let head: SignedHead = serde_json::from_value(doc).map_err(|e| bad(format!("{} is not a signed head: {e}", a.receipt.display())))?;
    let key_text = if std::path::Path::new(&a.public_key).is_file() { read(&PathBuf::from(&a.public_key))? } else { a.public_key.clone() };
    let key = wire::parse_public_key(&key_text).map_err(|e| bad(format!("--public-key: {e}")))?;
    let rows = match &a.chain {
        Some(path) => {
            let v: Value = serde_json::from_str(&read(path)?).map_err(|e| bad(format!("{}: {e}", path.display())))?;
            let v = if v.get("receipts").is_some() { v["receipts"].clone() } else { v };
            let receipts: Vec<Receipt> =
                serde_json::from_value(v).map_err(|e| bad(format!("{}: not a list of receipts: {e}", path.display())))?;
            wire::rows_of(&receipts)
        }
        None => open(cli, OpenMode::ReadOnly)?.chain_rows()?,
    };
    match wire::verify_receipt(&head, &key, rows) {
        Ok(check) => {
            if cli.json {
                print_json(
                    json!({ "verified": true, "device": check.device, "seq": check.seq, "chain_events": check.chain_events, "key_id": check.key_id }),
                );
            } else {
                outln!(
                    "receipt verified: the server (key {}) holds device {} up to seq {}, and this chain holds that head ({} events checked)",
                    check.key_id, check.device, check.seq, check.chain_events
                );
            }
            Ok(0)
        }
        Err(why) => {
            if cli.json {
                print_json(json!({ "verified": false, "error": why }));
            }
            Err(Failure { code: STORE, message: format!("receipt does not verify: {why}") })
        }
    }
}
