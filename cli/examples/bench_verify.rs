//! `make bench-cli`: `consentkit verify` on a store of 1 M events against the floor, a bare SQLite
//! scan of the same rows (every column of every event, in sequence order), each run as its own
//! process and timed from spawn to exit; peak memory (max RSS) of `verify` on 100 k and on 1 M
//! events shows whether it stays flat in the number of events. Prints the Markdown of the `cli`
//! section of BENCHMARKS.md (`make bench-cli` hands it to `scripts/bench-section.sh`, which adds
//! the machine and the date). No test asserts a time.
//!
//! Usage: `bench_verify CONSENTKIT_BIN [EVENTS]` (EVENTS default 1000000);
//! internally also `bench_verify --scan DB` (the reference process) and `bench_verify --build N`
//! (builds a store in a child, so this process stays small: on Linux a child's max RSS starts at
//! its parent's when it is spawned).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use consentkit_core::{Action, ConsentStore, DecisionInput, ManualClock, OpenMode, Policy, Source, Timestamp};

/// The same subjects in every store, so the stores differ in the number of events only (the
/// store's in-memory state grows with subjects, which is not what this measures).
const SUBJECTS: usize = 500;
const BATCH: usize = 200;
const RUNS: usize = 3;

/// The reference: reads every column of every event row in sequence order, as `verify` must.
fn scan(db: &Path) -> rusqlite::Result<()> {
    let conn = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut stmt = conn.prepare("SELECT * FROM events ORDER BY seq")?;
    let columns = stmt.column_count();
    let mut rows = stmt.query([])?;
    let (mut n, mut bytes) = (0u64, 0usize);
    while let Some(row) = rows.next()? {
        for i in 0..columns {
            bytes += match row.get_ref(i)? {
                rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => t.len(),
                _ => 8,
            };
        }
        n += 1;
    }
    println!("scanned {n} rows, {bytes} bytes");
    Ok(())
}

/// Builds (once; kept in target/bench-cli) a store of `events` events: [`SUBJECTS`] subjects
/// granting and withdrawing usage statistics in turn.
fn build_store(dir: &Path, events: usize) -> PathBuf {
    // The schema version is in the name: a store kept from an older build is not reused (`verify`
    // opens read-only, so it refuses a file that needs a migration).
    let version = consentkit_core::schema::LATEST;
    let db = dir.join(format!("verify-{events}-{SUBJECTS}-v{version}.db"));
    let done = dir.join(format!("verify-{events}-{SUBJECTS}-v{version}.done"));
    if db.exists() && done.exists() {
        return db;
    }
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let started = Instant::now();
    let clock = Arc::new(ManualClock::new(Timestamp::parse("2026-01-15T09:00:00Z").expect("a valid time")));
    let store = ConsentStore::open_with(&db, Arc::new(Policy::builtin()), clock, OpenMode::ReadWrite).expect("open the bench store");
    let mut written = 0;
    let mut round = 0;
    while written < events {
        let id = format!("bench-subject-{}", round % SUBJECTS);
        let batch: Vec<DecisionInput> = (0..BATCH.min(events - written))
            .map(|i| {
                let action = if i % 2 == 0 { Action::Grant } else { Action::Withdraw };
                DecisionInput::new(&id, "usage_statistics", action, Source::Settings)
            })
            .collect();
        written += store.record_batch(&batch).expect("record").len();
        round += 1;
    }
    drop(store);
    std::fs::write(&done, b"").expect("mark the store complete");
    eprintln!("built {db:?}: {written} events in {:.1?}", started.elapsed());
    db
}

/// Runs `cmd` to its end: (wall time from spawn to exit, peak resident memory in KiB).
fn measure(cmd: &mut Command) -> (Duration, u64) {
    let started = Instant::now();
    let child = cmd.stdout(std::process::Stdio::null()).spawn().expect("spawn");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value, and wait4 writes only through the two pointers.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let elapsed = started.elapsed();
    assert_eq!(waited, pid, "wait4");
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "{cmd:?} failed");
    std::mem::forget(child); // already reaped
    (elapsed, usage.ru_maxrss as u64)
}

/// The fastest of [`RUNS`] runs and the highest peak memory.
fn best(cmd: &mut Command) -> (Duration, u64) {
    let runs: Vec<(Duration, u64)> = (0..RUNS).map(|_| measure(cmd)).collect();
    (runs.iter().map(|r| r.0).min().unwrap_or_default(), runs.iter().map(|r| r.1).max().unwrap_or_default())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--scan") {
        scan(Path::new(&args[2])).expect("scan");
        return;
    }
    if args.get(1).map(String::as_str) == Some("--build") {
        let (dir, n) = (PathBuf::from(&args[2]), args[3].parse().expect("a number of events"));
        println!("{}", build_store(&dir, n).display());
        return;
    }
    let Some(bin) = args.get(1) else {
        eprintln!("usage: bench_verify CONSENTKIT_BIN [EVENTS]");
        std::process::exit(2);
    };
    let events: usize = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(1_000_000);
    let small = (events / 10).max(1);
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-cli");
    std::fs::create_dir_all(&dir).expect("bench dir");
    let me = std::env::current_exe().expect("own path");

    let mut rows = Vec::new();
    for n in [small, events] {
        let built = Command::new(&me).arg("--build").arg(&dir).arg(n.to_string()).output().expect("build the store");
        assert!(built.status.success(), "building the store failed: {}", String::from_utf8_lossy(&built.stderr));
        eprint!("{}", String::from_utf8_lossy(&built.stderr));
        let db = PathBuf::from(String::from_utf8_lossy(&built.stdout).trim());
        let (ours, ours_rss) = best(Command::new(bin).arg("--db").arg(&db).arg("verify"));
        let (floor, floor_rss) = best(Command::new(&me).arg("--scan").arg(&db));
        eprintln!("{n} events: verify {ours:.2?} ({ours_rss} KiB), scan {floor:.2?} ({floor_rss} KiB)");
        rows.push((n, ours, ours_rss, floor, floor_rss));
    }
    let version = consentkit_core::schema::LATEST;
    let mut body = format!(
        "### `consentkit verify` against a bare SQLite scan (`make bench-cli`)\n\n\
         Command: `consentkit --db target/bench-cli/verify-N-{SUBJECTS}-v{version}.db verify` (release build; N events of {SUBJECTS} subjects, schema version {version}); reference: a process that opens \
         the same file read-only and reads every column of every event row in sequence order (`SELECT * FROM events ORDER \
         BY seq`), the floor for any check of the whole chain. Each figure is the fastest of {RUNS} runs, spawn to exit; \
         memory is the peak resident set (max RSS, which on Linux starts at the spawning process's, about 2 MiB here).\n\n\
         | events | ours: verify | reference: bare scan | ratio | verify max RSS | scan max RSS |\n|---|---|---|---|---|---|\n"
    );
    for (n, ours, ours_rss, floor, floor_rss) in &rows {
        body.push_str(&format!(
            "| {n} | {:.2} s | {:.2} s | {:.1}× | {:.1} MiB | {:.1} MiB |\n",
            ours.as_secs_f64(),
            floor.as_secs_f64(),
            ours.as_secs_f64() / floor.as_secs_f64().max(1e-9),
            *ours_rss as f64 / 1024.0,
            *floor_rss as f64 / 1024.0
        ));
    }
    let load = std::fs::read_to_string("/proc/loadavg").ok().and_then(|l| l.split_whitespace().next().map(String::from));
    if let Some(load) = load {
        body.push_str(&format!(
            "\nLoad average (1 min) at the end of the run: {load}; the machine is shared, so read the ratio, not the seconds.\n"
        ));
    }
    let (small_rss, big_rss) = (rows[0].2 as f64, rows[1].2 as f64);
    body.push_str(&format!(
        "\nMemory in the number of events: verify's peak at {} events is {:.2}× its peak at {} events ({}× the events).\n",
        rows[1].0,
        big_rss / small_rss.max(1.0),
        rows[0].0,
        rows[1].0 / rows[0].0.max(1)
    ));
    println!("{body}");
}
