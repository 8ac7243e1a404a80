//! Several processes on one store file (issue #11). The test binary re-runs itself as the other
//! processes: `worker` (an ignored test, run only as a child) writes on the file given in the
//! environment and prints one `ack <event id>` line per write that returned success.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::channel;
use std::sync::Arc;
use std::time::{Duration, Instant};

use consentkit_core::state::SubjectState;
use consentkit_core::*;

/// Starts this test binary as a worker process: `ops` is `grant-withdraw:<subject>:<n>` or
/// `withdraw:<subject>`.
fn spawn_worker(path: &std::path::Path, ops: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "worker", "--ignored", "--nocapture", "--test-threads=1"])
        .env("CK_WORKER_DB", path)
        .env("CK_WORKER_OPS", ops)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Not a test: the body of a worker process (see [`spawn_worker`]).
#[test]
#[ignore = "runs only as a child process of the multi-process tests"]
fn worker() {
    let (Ok(path), Ok(ops)) = (std::env::var("CK_WORKER_DB"), std::env::var("CK_WORKER_OPS")) else { return };
    let store = ConsentStore::open(&path, Policy::builtin()).unwrap();
    let mut out = std::io::stdout().lock();
    writeln!(out).unwrap(); // the harness printed "test worker ... " without a newline
    let parts: Vec<&str> = ops.split(':').collect();
    let decide = |action| DecisionInput::new(parts[1], "usage_statistics", action, Source::Settings);
    let mut report = |r: Result<Receipt>| {
        match r {
            Ok(r) => writeln!(out, "ack {}", r.id),
            Err(e) => writeln!(out, "err {}", if e.is_retryable() { "retryable" } else { "fatal" }).and_then(|_| writeln!(out, "msg {e}")),
        }
        .unwrap();
        out.flush().unwrap();
    };
    // As an app does: a retryable error (the file stayed busy past the bounded wait) is retried;
    // it changed nothing. Any other error is reported and fails the test.
    let record = |input: &DecisionInput| {
        let mut result = store.record(input);
        for _ in 0..20 {
            match &result {
                Err(e) if e.is_retryable() => result = store.record(input),
                _ => break,
            }
        }
        result
    };
    match parts[0] {
        "grant-withdraw" => {
            for i in 0..parts[2].parse::<usize>().unwrap() {
                let action = if i % 2 == 0 { Action::Grant } else { Action::Withdraw };
                report(record(&decide(action)));
            }
        }
        "withdraw" => report(record(&decide(Action::Withdraw))),
        other => panic!("unknown worker op {other}"),
    }
}

/// The worker's first result line (`ack ...` or `err ...`), skipping the test harness's own lines.
fn first_result(lines: &std::sync::mpsc::Receiver<String>) -> String {
    loop {
        let line = lines.recv_timeout(Duration::from_secs(120)).expect("the worker answered");
        if line.starts_with("ack ") || line.starts_with("err ") {
            return line;
        }
    }
}

/// Reads a worker's output lines on a thread.
fn lines_of(child: &mut Child) -> std::sync::mpsc::Receiver<String> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

#[test]
fn many_processes_many_writes_some_killed_nothing_lost_nothing_doubled() {
    const PROCESSES: usize = 4;
    const WRITES: usize = 40;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("consent.db");
    drop(ConsentStore::open(&path, Policy::builtin()).unwrap());
    let mut children: Vec<Child> = (0..PROCESSES).map(|p| spawn_worker(&path, &format!("grant-withdraw:user{p}:{WRITES}"))).collect();
    let outputs: Vec<_> = children.iter_mut().map(lines_of).collect();
    let mut acked: BTreeSet<String> = BTreeSet::new();
    let mut fatal = Vec::new();
    for (p, (child, lines)) in children.iter_mut().zip(&outputs).enumerate() {
        // Kill every other process after a few acknowledged writes, mid-stream.
        let kill_after = if p % 2 == 1 { Some(5) } else { None };
        let mut seen = 0;
        while let Ok(line) = lines.recv_timeout(Duration::from_secs(120)) {
            if let Some(id) = line.strip_prefix("ack ") {
                acked.insert(id.to_string());
                seen += 1;
                if Some(seen) == kill_after {
                    child.kill().unwrap(); // SIGKILL
                }
            } else if line == "err fatal" {
                fatal.push(line);
            } else if let Some(msg) = line.strip_prefix("msg ") {
                fatal.push(msg.to_string());
            }
        }
        child.wait().unwrap();
        // Anything the killed child printed before dying is an acknowledged write too.
        while let Ok(line) = lines.try_recv() {
            if let Some(id) = line.strip_prefix("ack ") {
                acked.insert(id.to_string());
            }
        }
    }
    assert!(fatal.is_empty(), "no write may fail because another process committed: {fatal:?}");
    assert!(acked.len() >= 2 * WRITES + 2 * 5, "{} acknowledged writes", acked.len());

    let store = ConsentStore::open(&path, Policy::builtin()).unwrap();
    let mut ids: BTreeMap<String, usize> = BTreeMap::new();
    for p in 0..PROCESSES {
        let subject = format!("user{p}");
        let history = store.history(&subject).unwrap();
        for r in &history {
            *ids.entry(r.id.clone()).or_default() += 1;
        }
        let folded = SubjectState::fold(&history);
        let stored = store.snapshot().subjects.get(&subject).map(|s| (**s).clone()).unwrap_or_default();
        assert_eq!(stored.categories, folded.categories, "state = fold(history) for {subject}");
    }
    for id in &acked {
        assert_eq!(ids.get(id), Some(&1), "acknowledged write {id} present exactly once");
    }
    assert!(ids.values().all(|n| *n == 1), "no event twice");
    let n = store.verify().unwrap();
    assert_eq!(n as usize, ids.len(), "the chain holds every event");
}

struct Seen(std::sync::Mutex<Vec<StatusChange>>);

impl ConsentObserver for Seen {
    fn on_change(&self, change: &StatusChange) {
        self.0.lock().unwrap().push(change.clone());
    }
}

#[test]
fn another_process_s_withdrawal_is_honoured_within_the_bound_and_the_next_write_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("consent.db");
    let a = ConsentStore::open(&path, Policy::builtin()).unwrap();
    a.record(&DecisionInput::new("alice", "usage_statistics", Action::Grant, Source::Settings)).unwrap();
    assert!(a.check("alice", "usage_analytics", None).unwrap().allowed);
    let seen = Arc::new(Seen(Default::default()));
    let _observer = a.observe(Watch::Subject("alice".into()), seen.clone());

    let mut b = spawn_worker(&path, "withdraw:alice");
    let lines = lines_of(&mut b);
    let line = first_result(&lines);
    assert!(line.starts_with("ack "), "{line}");
    let acknowledged = Instant::now();
    b.wait().unwrap();
    // A checks in a loop; every check that starts after the bound must deny.
    let mut checks = 0u64;
    loop {
        let started = Instant::now();
        let allowed = a.check("alice", "usage_analytics", None).unwrap().allowed;
        checks += 1;
        if started.duration_since(acknowledged) > CROSS_PROCESS_BOUND {
            assert!(!allowed, "a check past the bound allowed what another process withdrew");
            break;
        }
    }
    assert!(checks > 0);
    // Observers were told when A noticed.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !seen.0.lock().unwrap().iter().any(|c| c.status == Status::Withdrawn) {
        assert!(Instant::now() < deadline, "the observer was not told of the other process's withdrawal");
        std::thread::sleep(Duration::from_millis(10));
    }
    // A's own next write succeeds and builds on B's withdrawal.
    let r = a.record(&DecisionInput::new("alice", "usage_statistics", Action::Grant, Source::Settings)).unwrap();
    assert_eq!(r.seq, 3);
    let history = a.history("alice").unwrap();
    assert_eq!(history.iter().map(|e| e.action).collect::<Vec<_>>(), [Action::Grant, Action::Withdraw, Action::Grant]);
    assert_eq!(a.verify().unwrap(), 3);
}

#[test]
fn a_write_validates_against_the_other_process_s_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("consent.db");
    let a = ConsentStore::open(&path, Policy::builtin()).unwrap();
    a.record(&DecisionInput::new("alice", "usage_statistics", Action::Grant, Source::Settings)).unwrap();
    a.suspend(); // no probe: A cannot notice B before its next write
    let mut b = spawn_worker(&path, "withdraw:alice");
    let lines = lines_of(&mut b);
    assert!(first_result(&lines).starts_with("ack "));
    b.wait().unwrap();
    let err = a.record(&DecisionInput::new("bob", "usage_statistics", Action::Grant, Source::Settings)).unwrap_err();
    assert!(matches!(err, Error::Suspended(_)), "{err}");
    assert!(err.is_retryable());
    a.resume().unwrap();
    assert!(!a.check("alice", "usage_analytics", None).unwrap().allowed, "resume caught up before returning");
    a.record(&DecisionInput::new("bob", "usage_statistics", Action::Grant, Source::Settings)).unwrap();
    assert_eq!(a.verify().unwrap(), 3);
}

#[test]
fn a_suspended_store_stops_allowing_after_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("consent.db");
    let a = ConsentStore::open(&path, Policy::builtin()).unwrap();
    a.record(&DecisionInput::new("alice", "usage_statistics", Action::Grant, Source::Settings)).unwrap();
    a.suspend();
    assert!(matches!(a.history("alice"), Err(Error::Suspended(_))), "no new transaction while suspended");
    std::thread::sleep(CROSS_PROCESS_BOUND + Duration::from_millis(50));
    assert!(!a.check("alice", "usage_analytics", None).unwrap().allowed, "cannot tell what other processes did: fail closed");
    a.resume().unwrap();
    assert!(a.check("alice", "usage_analytics", None).unwrap().allowed);
}

#[test]
fn the_wal_files_stay_for_read_only_openers_when_the_last_writer_closes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("consent.db");
    let store = ConsentStore::open(&path, Policy::builtin()).unwrap();
    store.record(&DecisionInput::new("alice", "usage_statistics", Action::Grant, Source::Settings)).unwrap();
    drop(store);
    for suffix in ["-wal", "-shm"] {
        assert!(dir.path().join(format!("consent.db{suffix}")).exists(), "{suffix} kept (SQLITE_FCNTL_PERSIST_WAL)");
    }
    let ro = ConsentStore::open_with(&path, Arc::new(Policy::builtin()), Arc::new(SystemClock), OpenMode::ReadOnly).unwrap();
    assert!(ro.check("alice", "usage_analytics", None).unwrap().allowed);
}

struct SyncingHook {
    store: std::sync::Mutex<Option<Arc<ConsentStore>>>,
    results: std::sync::Mutex<Vec<String>>,
}

impl CommitHook for SyncingHook {
    fn committed(&self, _generation: u64) {
        let Some(store) = self.store.lock().unwrap().clone() else { return };
        let result = store.pending_sync(100).and_then(|p| match p.last() {
            Some(last) => store.ack_sync(last.seq).map(|_| format!("acked {}", last.seq)),
            None => Ok("nothing".into()),
        });
        self.results.lock().unwrap().push(result.unwrap_or_else(|e| format!("error: {e}")));
    }
}

#[test]
fn a_hook_syncs_after_another_process_s_commit_and_after_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("consent.db");
    let a = Arc::new(ConsentStore::open(&path, Policy::builtin()).unwrap());
    let hook = Arc::new(SyncingHook { store: std::sync::Mutex::new(Some(a.clone())), results: Default::default() });
    let _registration = a.on_commit(hook.clone());
    a.suspend(); // A notices B only inside its own next write (the catch-up path)
    let mut b = spawn_worker(&path, "withdraw:alice");
    let lines = lines_of(&mut b);
    assert!(first_result(&lines).starts_with("ack "));
    b.wait().unwrap();
    a.resume().unwrap(); // catch-up by refresh: hook told, syncs seq 1
    a.record(&DecisionInput::new("bob", "usage_statistics", Action::Grant, Source::Settings)).unwrap();
    let results = hook.results.lock().unwrap().clone();
    hook.store.lock().unwrap().take();
    assert_eq!(results, ["acked 1", "acked 2"], "the hook read and acknowledged the outbox each time");
    assert!(a.pending_sync(10).unwrap().is_empty());
}

/// The sealed state digest of the file, read raw (`meta.state_digest`).
fn sealed_digest(path: &std::path::Path) -> (String, u64, String) {
    let conn = rusqlite::Connection::open(path).unwrap();
    let meta = |key: &str| conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get::<_, String>(0)).unwrap();
    (meta("state_digest"), meta("head_seq").parse().unwrap(), meta("head_hash"))
}

/// The proof engineer's ask: when a store reloads another process's writes (catch-up), its state
/// sum follows, so its own next write seals a digest that matches the state table; a reopen then
/// serves the table as proven, without a walk and re-seal (the digest stays what was sealed).
#[test]
fn after_another_process_s_writes_this_one_s_next_write_seals_a_matching_digest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("consent.db");
    let a = ConsentStore::open(&path, Policy::builtin()).unwrap();
    a.record(&DecisionInput::new("alice", "usage_statistics", Action::Grant, Source::Settings)).unwrap();
    a.set_os_permission(OsPermission::CONTACTS, OsState::Granted).unwrap();
    for ops in ["grant-withdraw:bob:5", "withdraw:alice"] {
        let mut b = spawn_worker(&path, ops);
        let lines = lines_of(&mut b);
        assert!(first_result(&lines).starts_with("ack "));
        assert!(b.wait().unwrap().success());
    }
    // A's write catches up inside its transaction (bob's and alice's rows), then seals.
    a.record(&DecisionInput::new("carol", "usage_statistics", Action::Grant, Source::Settings)).unwrap();
    a.refresh().unwrap();
    assert!(!a.check("alice", "usage_analytics", None).unwrap().allowed);
    assert_eq!(a.verify().unwrap(), 9, "alice, the OS state, bob x5, alice, carol");
    drop(a);

    let (digest, seq, hash) = sealed_digest(&path);
    assert_eq!(seq, 9);
    let ro = ConsentStore::open_with(&path, Arc::new(Policy::builtin()), Arc::new(SystemClock), OpenMode::ReadOnly).unwrap();
    let snap = ro.snapshot();
    let subjects: std::collections::HashMap<String, Arc<SubjectState>> =
        snap.subjects.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let os: std::collections::HashMap<OsPermission, OsRecord> = snap.os.iter().map(|(p, r)| (*p, *r)).collect();
    assert_eq!(subjects.len(), 3);
    assert_eq!(digest, state_proof::StateSum::of(&subjects, &os).seal(seq, &hash), "the sealed digest is the sum of the state table");
    drop(ro);

    // A read-write reopen finds the digest matching: nothing re-sealed or rebuilt.
    let again = ConsentStore::open(&path, Policy::builtin()).unwrap();
    assert!(again.unavailable().is_none());
    drop(again);
    assert_eq!(sealed_digest(&path).0, digest, "the reopen did not need to re-seal");
}
