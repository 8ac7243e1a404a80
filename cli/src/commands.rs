//! Runs one store command: opens the store (read-only for queries), calls the core, prints.
//! Human output is escaped and aligned by `output`; JSON output is one object in the versioned
//! envelope (`schema_version`, see README "JSON output").

use std::path::Path;
use std::sync::Arc;

use consentkit_core::*;
use serde_json::json;

use crate::args::{Cli, Command, DecisionArgs};
use crate::failure::{bad, Failure, DENIED, OK, STORE};
use crate::outln;
use crate::output::{or_dash, paint, print_json, print_raw_json, reason_lines, receipt, status_table, table};
use crate::progress::LazyBar;
use crate::text::escape;

/// Loads `--policy` or the built-in catalog.
pub fn load_policy(cli: &Cli) -> Result<Policy, Failure> {
    match &cli.policy {
        None => Ok(Policy::builtin()),
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read policy file {}: {e}", path.display())))?;
            Policy::from_json(&text).map_err(|e| bad(format!("{}: {e}", path.display())))
        }
    }
}

/// The clock: `--now` or the system's.
pub fn clock(cli: &Cli) -> Result<Arc<dyn Clock>, Failure> {
    match &cli.now {
        None => Ok(Arc::new(SystemClock)),
        Some(text) => Ok(Arc::new(ManualClock::new(Timestamp::parse(text).map_err(|e| bad(format!("--now: {e}")))?))),
    }
}

fn parse<T: std::str::FromStr<Err = String>>(what: &str, text: &str) -> Result<T, Failure> {
    text.parse().map_err(|e: String| bad(format!("{what}: {e}")))
}

/// The `--db` file a write of this run created (no file was there), if any: [`run`] says so on
/// stderr when the command succeeds, and removes it again when the command fails.
static CREATED: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

/// Opens the `--db` store with `--policy` and `--now`, read-only or read-write. A query never
/// creates a store: a missing file is a [`missing_store`] failure (exit 3). A write on a path with
/// no file creates a new, empty store there (as `init` does), and [`run`] tells the user so on
/// stderr, naming the path, so a write typed against a mistyped `--db` does not pass unnoticed; a
/// dangling symlink is refused (SQLite would create a file at its target).
pub fn open(cli: &Cli, mode: OpenMode) -> Result<ConsentStore, Failure> {
    let (policy, clock) = (Arc::new(load_policy(cli)?), clock(cli)?);
    // `try_exists` follows symlinks: a dangling link reads as missing, but its own entry exists.
    if !cli.db.try_exists().unwrap_or(true) {
        if mode == OpenMode::ReadOnly || std::fs::symlink_metadata(&cli.db).is_ok() {
            return Err(missing_store(&cli.db, mode));
        }
        let _ = CREATED.set(cli.db.clone());
    }
    // An empty file (an app's store truncated, a `touch`) is no store: SQLite would take it as a
    // new database, so a write would set up a new store in it with no notice. Refused, untouched.
    if std::fs::metadata(&cli.db).is_ok_and(|m| m.is_file() && m.len() == 0) {
        let resolved = resolved_elsewhere(&cli.db).map_or(String::new(), |abs| format!(" ({})", abs.display()));
        let what = if mode == OpenMode::ReadWrite { "nothing was recorded" } else { "nothing was read" };
        return Err(Failure {
            code: STORE,
            message: format!(
                "the file at {:?}{resolved} is empty, not a store: {what}; check --db (or CONSENTKIT_DB), \
                 or remove the file and run the command again to create a new store there",
                cli.db
            ),
        });
    }
    if mode == OpenMode::ReadWrite {
        warn_if_ahead(cli, clock.now());
    }
    Ok(ConsentStore::open_with(&cli.db, policy, clock, mode)?)
}

/// A write saves its time as the store's time, which never goes back (so a clock set back cannot
/// revive an expired grant): a `--now` ahead of this machine's clock moves it forward for every
/// app on the file, and their grants are refused until the real clock gets there. Said on
/// stderr (unless `--quiet`), once, before the write.
fn warn_if_ahead(cli: &Cli, now: Timestamp) {
    let real = SystemClock.now();
    if cli.now.is_some() && now.0 > real.0.saturating_add(60_000) && !cli.quiet {
        eprintln!(
            "consentkit: warning: --now {now} is ahead of this machine's clock ({real}): this write moves the \
             store's time there for good, and grants at the real time will be refused (clock behind) until then"
        );
    }
}

/// The failure of a command run on a path where no store exists (exit 3, "missing"), naming the
/// path as given and, if relative, where it resolved; for a write, how to create a store.
fn missing_store(path: &Path, mode: OpenMode) -> Failure {
    let resolved = resolved_elsewhere(path).map_or(String::new(), |abs| format!("{}: ", abs.display()));
    let mut message = format!("no store at {path:?} ({resolved}no such file)");
    if mode == OpenMode::ReadWrite {
        message.push_str(&format!(
            "; it is a symlink to nothing: nothing was recorded. Check --db (or CONSENTKIT_DB), \
             or create a new, empty store with `consentkit --db {path:?} init`"
        ));
    } else {
        message.push_str("; check --db (or CONSENTKIT_DB)");
    }
    Failure { code: STORE, message }
}

/// `consentkit init`: creates a new, empty store at `--db`, bound to `--policy`. A file already
/// there (a store or anything else) is refused with exit 2 and left as it was. The file is
/// created exclusively (`create_new`), so two `init`s or an app creating the same file at once
/// cannot both win; if the store then cannot be set up, the file is removed again unless it
/// holds a store someone else set up meanwhile.
fn init(cli: &Cli) -> Result<u8, Failure> {
    let (policy, clock) = (Arc::new(load_policy(cli)?), clock(cli)?);
    let path = &cli.db;
    match std::fs::OpenOptions::new().write(true).create_new(true).open(path) {
        Ok(file) => drop(file),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(bad(format!("a file already exists at {path:?}: init creates a new store only (nothing was changed)")));
        }
        Err(e) => return Err(Failure { code: STORE, message: format!("cannot create a store at {path:?}: {e}") }),
    }
    // SQLite takes the empty file as a new database; the core gives it the schema and the policy id.
    match ConsentStore::open_with(path, policy.clone(), clock, OpenMode::ReadWrite) {
        Ok(store) => drop(store),
        Err(e) => {
            // Only if still empty: an app may have set the file up (for another policy) meanwhile.
            remove_if_empty(cli, path);
            return Err(e.into());
        }
    }
    if cli.json {
        print_json(json!({ "created": path.to_string_lossy(), "policy": { "id": policy.id, "version": policy.version } }));
    } else {
        outln!(
            "created an empty store at {} for policy {} {}",
            escape(&path.display().to_string()),
            escape(&policy.id),
            escape(&policy.version)
        );
    }
    Ok(OK)
}

/// Removes a store file this run created, with its `-wal` and `-shm` files.
fn remove_store_files(path: &Path) {
    for suffix in ["-wal", "-shm", ""] {
        let _ = std::fs::remove_file(with_suffix(path, suffix));
    }
}

/// Runs a store command (everything but `demo`, `completions` and `man`, which `main` runs);
/// returns the exit code on success (0, or 1 for a denied check). A command that fails changes
/// nothing, so a store file it created is removed again if it still holds no event; one that
/// succeeded after creating the store says so on stderr (unless `--quiet`).
pub fn run(cli: &Cli) -> Result<u8, Failure> {
    let result = run_command(cli);
    match (&result, CREATED.get()) {
        (Err(_), Some(path)) => remove_if_empty(cli, path),
        (Ok(_), Some(path)) if !cli.quiet => eprintln!(
            "consentkit: created a new store at {} (no file was there); if you meant an existing store, check --db (or CONSENTKIT_DB)",
            escape(&describe_path(path))
        ),
        _ => {}
    }
    result
}

/// The path as given and, if relative, where it resolved.
fn describe_path(path: &Path) -> String {
    match resolved_elsewhere(path) {
        Some(abs) => format!("{} ({})", path.display(), abs.display()),
        None => path.display().to_string(),
    }
}

/// Where a relative `path` resolves, when that differs from how it was given.
fn resolved_elsewhere(path: &Path) -> Option<std::path::PathBuf> {
    std::path::absolute(path).ok().filter(|abs| abs != path)
}

/// The store file's name with `suffix` (`-wal`, `-shm`, or "" for the file itself).
fn with_suffix(path: &Path, suffix: &str) -> std::ffi::OsString {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    name
}

/// Removes the store at `path` and its `-wal` and `-shm` files if its ledger is empty (every
/// store of this run is closed by now).
fn remove_if_empty(cli: &Cli, path: &Path) {
    let Ok(policy) = load_policy(cli) else { return };
    // Nothing at all in it yet (the main file and its WAL, where a first commit lands, both empty).
    let bytes = |suffix: &str| std::fs::metadata(with_suffix(path, suffix)).map_or(0, |m| m.len());
    let blank = bytes("") == 0 && bytes("-wal") == 0;
    let empty = blank
        || ConsentStore::open_with(path, Arc::new(policy), Arc::new(SystemClock), OpenMode::ReadOnly)
            .and_then(|store| store.verify())
            .is_ok_and(|events| events == 0);
    if empty {
        remove_store_files(path);
    }
}

fn run_command(cli: &Cli) -> Result<u8, Failure> {
    if let Some(url) = &cli.server {
        if let Some(code) = crate::remote::query(cli, url)? {
            return Ok(code);
        }
    }
    match &cli.command {
        Command::Init => init(cli),
        Command::Policy => policy(cli),
        Command::Grant(a) => decide(cli, a, Action::Grant),
        Command::Refuse(a) => decide(cli, a, Action::Refuse),
        Command::Withdraw(a) => decide(cli, a, Action::Withdraw),
        Command::Object(a) => decide(cli, a, Action::Object),
        Command::WithdrawObjection(a) => decide(cli, a, Action::WithdrawObjection),
        Command::Os { permission, state } => {
            let permission: OsPermission = parse("permission", permission)?;
            let state: OsState = parse("state", state)?;
            let store = open(cli, OpenMode::ReadWrite)?;
            match store.set_os_permission(permission, state)? {
                Some(r) if cli.json => print_json(json!({ "changed": true, "receipt": r })),
                Some(r) => receipt(&r),
                None if cli.json => print_json(json!({ "changed": false, "permission": permission, "state": state })),
                None => outln!("{permission} is already {state}; nothing recorded"),
            }
            Ok(0)
        }
        Command::UnderAge { subject, clear, source } => {
            let source: Source = parse("source", source)?;
            let store = open(cli, OpenMode::ReadWrite)?;
            let r = store.set_under_age(subject, !clear, source)?;
            if cli.json {
                print_json(json!({ "receipt": r }))
            } else {
                receipt(&r)
            }
            Ok(0)
        }
        Command::Status { subject } => status(cli, subject),
        Command::Check { subject, feature, scope } => check(cli, subject, feature, scope.as_deref()),
        Command::History { subject } => history(cli, subject),
        Command::Export { subject } => {
            let store = open(cli, OpenMode::ReadOnly)?;
            let mut bar = LazyBar::new("exporting");
            let doc = store.export_with_progress(subject, &mut |done, total| bar.set(done, total))?;
            drop(bar);
            if cli.json {
                print_json(json!({ "document": doc }));
            } else {
                print_raw_json(&doc);
            }
            Ok(0)
        }
        Command::Import { file } => {
            let text = std::fs::read_to_string(file).map_err(|e| bad(format!("cannot read {}: {e}", file.display())))?;
            let store = open(cli, OpenMode::ReadWrite)?;
            let mut bar = LazyBar::new("importing");
            let receipts = store.import_json_with_progress(&text, &mut |done, total| bar.set(done, total))?;
            drop(bar);
            let subject = receipts.first().and_then(|r| r.subject.clone());
            if cli.json {
                print_json(json!({ "subject": subject, "imported": receipts.len() }));
            } else {
                outln!("imported {} events of {}", receipts.len(), escape(&or_dash(subject)));
            }
            Ok(0)
        }
        Command::Erase { subject, source } => {
            let source: Source = parse("source", source)?;
            let store = open(cli, OpenMode::ReadWrite)?;
            let report = store.erase(subject, source)?;
            if cli.json {
                print_json(&report);
            } else {
                outln!("erased {} events of the subject; the erasure record:", report.erased_events);
                receipt(&report.receipt);
            }
            Ok(0)
        }
        Command::Purge => {
            let store = open(cli, OpenMode::ReadWrite)?;
            let mut bar = LazyBar::new("purging");
            let report = store.purge_with_progress(&mut |done, total| bar.set(done, total))?;
            drop(bar);
            if cli.json {
                print_json(&report);
            } else {
                outln!("purged {} events past their retention period", report.removed_events);
                if let Some(r) = &report.receipt {
                    receipt(r);
                }
            }
            Ok(0)
        }
        Command::Verify => verify(cli),
        Command::Sync(a) => crate::remote::sync(cli, a),
        Command::VerifyReceipt(a) => crate::remote::verify_receipt(cli, a),
        Command::Demo | Command::Completions { .. } | Command::Man => Err(bad("not a store command")),
    }
}

fn verify(cli: &Cli) -> Result<u8, Failure> {
    let store = open(cli, OpenMode::ReadOnly)?;
    let mut bar = LazyBar::new("verifying");
    let result = store.verify_with_progress(&mut |done, total| bar.set(done, total));
    drop(bar);
    match result {
        Ok(n) => {
            if cli.json {
                print_json(json!({ "intact": true, "events": n }))
            } else {
                outln!("chain intact: {n} events verified")
            }
            Ok(0)
        }
        Err(Error::Tampered(b)) => {
            if cli.json {
                print_json(json!({ "intact": false, "first_bad_seq": b.seq(), "error": b.to_string() }));
            }
            Err(Failure { code: STORE, message: b.to_string() })
        }
        Err(e) => Err(e.into()),
    }
}

fn policy(cli: &Cli) -> Result<u8, Failure> {
    let policy = load_policy(cli)?;
    if cli.json {
        let catalog: serde_json::Value = serde_json::from_str(&policy.to_json()).map_err(|e| bad(e.to_string()))?;
        print_json(json!({ "policy": catalog }));
        return Ok(0);
    }
    outln!("{} {} ({})\n", escape(&policy.id), escape(&policy.version), escape(&policy.name));
    let rows: Vec<Vec<String>> = policy
        .categories
        .iter()
        .map(|c| {
            vec![c.id.clone(), c.legal_basis.to_string(), or_dash(c.os_permission), c.retention.to_string(), c.purpose_version.to_string()]
        })
        .collect();
    table(&["CATEGORY", "LEGAL BASIS", "OS PERMISSION", "RETENTION", "PURPOSE"], &rows);
    outln!();
    let rows: Vec<Vec<String>> = policy
        .features
        .iter()
        .map(|f| vec![f.id.clone(), f.categories.join(", "), if f.per_item { "yes".into() } else { "no".into() }])
        .collect();
    table(&["FEATURE", "NEEDS", "PER ITEM"], &rows);
    outln!(
        "\nconsent lifetime {}, re-ask after refusal {}, age of digital consent {} ({})",
        or_dash(policy.consent_lifetime),
        or_dash(policy.reask_after_refusal),
        policy.age_of_digital_consent,
        policy.children
    );
    Ok(0)
}

fn decide(cli: &Cli, a: &DecisionArgs, action: Action) -> Result<u8, Failure> {
    let source: Source = parse("source", &a.source)?;
    if action == Action::Grant && source == Source::OsSettings {
        // The core takes it (an app may mirror a toggle of its own in the OS settings app); from
        // support staff it would be a grant by support under another name.
        return Err(bad(format!(
            "a grant of '{}' for subject '{}' cannot come from source 'os_settings' here: support staff act in no one's OS settings \
             (pass --source settings, onboarding or guardian to record the subject's own grant)",
            a.category, a.subject
        )));
    }
    let store = open(cli, OpenMode::ReadWrite)?;
    let mut input = DecisionInput::new(&a.subject, &a.category, action, source);
    input.scope = a.scope.clone();
    let r = store.record(&input)?;
    if cli.json {
        print_json(&r)
    } else {
        receipt(&r)
    }
    Ok(0)
}

fn status(cli: &Cli, subject: &str) -> Result<u8, Failure> {
    let store = open(cli, OpenMode::ReadOnly)?;
    let statuses = store.statuses(subject)?;
    let policy = store.policy();
    if cli.json {
        let categories: Vec<_> = statuses
            .iter()
            .map(|s| json!({ "id": s.category, "legal_basis": s.legal_basis, "status": s.status, "since": s.since }))
            .collect();
        print_json(json!({ "subject": subject, "policy": { "id": policy.id, "version": policy.version }, "categories": categories }));
    } else {
        outln!("{} under policy {} {}\n", escape(subject), escape(&policy.id), escape(&policy.version));
        status_table(&statuses);
    }
    Ok(0)
}

fn check(cli: &Cli, subject: &str, feature: &str, scope: Option<&str>) -> Result<u8, Failure> {
    let store = open(cli, OpenMode::ReadOnly)?;
    let d = store.check(subject, feature, scope)?;
    if cli.json {
        let reasons: Vec<_> = d.reasons.iter().map(|r| json!({ "code": r.code, "category": r.category })).collect();
        print_json(json!({ "feature": d.feature, "allowed": d.allowed, "limited": d.limited, "reasons": reasons }));
    } else if d.allowed {
        let limited = if d.limited { " (limited OS access)" } else { "" };
        outln!("{} is {} for {}{limited}", escape(feature), paint("allowed", true), escape(subject));
    } else {
        outln!("{} is {} for {}:", escape(feature), paint("denied", false), escape(subject));
        let reasons: Vec<(String, String)> = d.reasons.iter().map(|r| (r.code.to_string(), r.category.to_string())).collect();
        reason_lines(&reasons);
    }
    Ok(if d.allowed { OK } else { DENIED })
}

fn history(cli: &Cli, subject: &str) -> Result<u8, Failure> {
    let store = open(cli, OpenMode::ReadOnly)?;
    let events = store.history(subject)?;
    // An erasure removes the subject's events and keeps a record that names no one; support
    // staff asking "what happened?" about an erased user see that record, not an empty list.
    let erasures = store.erasures_of(subject)?;
    if cli.json {
        let rows: Vec<_> = events
            .iter()
            .map(|e| {
                let mut v = json!({
                    "seq": e.seq, "id": e.id, "category": e.category, "action": e.action, "scope": e.scope,
                    "source": e.source, "policy_version": e.policy_version, "at": e.at, "hash": e.hash,
                });
                if let (Some(p), Some(s)) = (e.permission, e.os_state) {
                    v["permission"] = json!(p);
                    v["state"] = json!(s);
                }
                v
            })
            .collect();
        let erasures: Vec<_> =
            erasures.iter().map(|e| json!({ "seq": e.seq, "id": e.id, "source": e.source, "at": e.at, "hash": e.hash })).collect();
        print_json(json!({ "subject": subject, "events": rows, "erasures": erasures }));
    } else {
        let rows: Vec<Vec<String>> = events
            .iter()
            .map(|e| {
                let what = match (e.permission, e.os_state) {
                    (Some(p), Some(s)) => format!("OS {p} -> {s} (device)"),
                    _ => or_dash(e.category.as_ref()),
                };
                vec![
                    e.seq.to_string(),
                    e.at.to_string(),
                    e.action.to_string(),
                    what,
                    or_dash(e.scope.as_ref()),
                    e.source.to_string(),
                    e.policy_version.clone(),
                ]
            })
            .collect();
        table(&["SEQ", "AT", "ACTION", "CATEGORY", "SCOPE", "SOURCE", "POLICY"], &rows);
        for e in &erasures {
            outln!("erased at {} (erasure record seq {}, source {}): the events before it were removed", e.at, e.seq, e.source);
        }
    }
    Ok(0)
}
