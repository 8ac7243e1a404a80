//! The Rust core's benchmarks (`make bench-rust`). Every row runs ours and a reference in the same
//! process, interleaved round by round (so machine load hits both alike), and reports the medians,
//! their ratio and the goal. Prints a Markdown section on stdout for `scripts/bench-section.sh`;
//! progress goes to stderr. `cargo bench -p consentkit-core --bench perf -- WORD` runs only the
//! rows whose key contains WORD (keys: check, record, open, history, erasures, bytes, probe).

use std::collections::HashMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use consentkit_core::*;
use rusqlite::Connection;

/// One line of the table.
struct Row {
    key: &'static str,
    figure: String,
    ours: Duration,
    reference: Option<(String, Duration)>,
    goal: &'static str,
}

/// Medians of `rounds` interleaved rounds of `ours` and `reference`, each timed over `inner` calls.
fn interleaved(rounds: usize, inner: u32, mut ours: impl FnMut(), mut reference: impl FnMut()) -> (Duration, Duration) {
    let mut a = Vec::with_capacity(rounds);
    let mut b = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        for _ in 0..inner {
            ours();
        }
        a.push(t.elapsed() / inner);
        let t = Instant::now();
        for _ in 0..inner {
            reference();
        }
        b.push(t.elapsed() / inner);
    }
    (median(a), median(b))
}

/// Medians of `rounds` rounds in which each of `calls` runs `inner` times in turn (so a slow
/// spell of the disk or the machine hits all of them alike).
fn interleaved_many(rounds: usize, inner: u32, calls: &mut [&mut dyn FnMut()]) -> Vec<Duration> {
    let mut times = vec![Vec::with_capacity(rounds); calls.len()];
    for _ in 0..rounds {
        for (call, times) in calls.iter_mut().zip(times.iter_mut()) {
            let t = Instant::now();
            for _ in 0..inner {
                call();
            }
            times.push(t.elapsed() / inner);
        }
    }
    times.into_iter().map(median).collect()
}

/// [`interleaved`] for calls that return what they built (an open store, loaded rows): each is
/// kept until the round's timer stopped, so dropping it (closing) is not counted.
fn interleaved_kept<A, B>(
    rounds: usize,
    inner: u32,
    mut ours: impl FnMut() -> A,
    mut reference: impl FnMut() -> B,
) -> (Duration, Duration) {
    let mut a = Vec::with_capacity(rounds);
    let mut b = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let mut kept = Vec::with_capacity(inner as usize);
        let t = Instant::now();
        for _ in 0..inner {
            kept.push(ours());
        }
        a.push(t.elapsed() / inner);
        drop(kept);
        let mut kept = Vec::with_capacity(inner as usize);
        let t = Instant::now();
        for _ in 0..inner {
            kept.push(reference());
        }
        b.push(t.elapsed() / inner);
        drop(kept);
    }
    (median(a), median(b))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn fmt(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns < 10_000 {
        format!("{ns} ns")
    } else if ns < 10_000_000 {
        format!("{:.1} µs", ns as f64 / 1e3)
    } else {
        format!("{:.1} ms", ns as f64 / 1e6)
    }
}

/// A store of `subjects` subjects with `events_per_subject` decisions each (plus one contacts
/// grant each), written through the public API in batches of 1,000.
fn store_with(dir: &Path, name: &str, subjects: usize, events_per_subject: usize) -> (PathBuf, ConsentStore) {
    let path = dir.join(name);
    let store = ConsentStore::open(&path, Policy::builtin()).unwrap();
    store.set_os_permission(OsPermission::CONTACTS, OsState::Granted).unwrap();
    let mut batch = Vec::new();
    let flush = |batch: &mut Vec<DecisionInput>, force: bool| {
        if batch.len() >= 1000 || (force && !batch.is_empty()) {
            store.record_batch(batch).unwrap();
            batch.clear();
        }
    };
    for e in 0..events_per_subject {
        for s in 0..subjects {
            let action = if e.is_multiple_of(2) { Action::Grant } else { Action::Withdraw };
            batch.push(DecisionInput::new(&format!("user-{s}"), "usage_statistics", action, Source::Settings));
            flush(&mut batch, false);
        }
    }
    for s in 0..subjects {
        batch.push(DecisionInput::new(&format!("user-{s}"), "device_contacts", Action::Grant, Source::Settings));
        flush(&mut batch, false);
    }
    flush(&mut batch, true);
    (path, store)
}

fn reference_map(subjects: usize) -> HashMap<String, u64> {
    (0..subjects).map(|s| (format!("user-{s}"), s as u64)).collect()
}

/// Rounds and calls per round of the check rows: short rounds (about 0.2 ms of ours), many of
/// them, so a time slice lost to another process on this shared machine lands in few rounds
/// (the median drops them) instead of inflating the longer-running side of every round.
const CHECK_ROUNDS: usize = 401;
const CHECK_INNER: u32 = 2_000;

/// Checks: ours through the store (reads the system clock) against `HashMap<String, _>::get`.
fn check_rows(dir: &Path, rows: &mut Vec<Row>) {
    for (subjects, subject) in [(1usize, "user-0"), (10_000, "user-4242")] {
        eprintln!("check: building a {subjects}-subject store");
        let (_, store) = store_with(dir, &format!("check-{subjects}.db"), subjects, 1);
        let map = reference_map(subjects);
        let label = if subjects == 1 { "1 entry" } else { "10k entries" };
        assert!(store.check(subject, "contact_lookup", None).unwrap().allowed);
        let (ours, reference) = interleaved(
            CHECK_ROUNDS,
            CHECK_INNER,
            || {
                black_box(store.check(black_box(subject), "contact_lookup", None).unwrap());
            },
            || {
                black_box(map.get(black_box(subject)));
            },
        );
        rows.push(Row {
            key: "check",
            figure: format!("Rust `check`, allowed, {}", if subjects == 1 { "1 subject" } else { "10k subjects" }),
            ours,
            reference: Some((format!("`HashMap<String, u64>::get`, {label}"), reference)),
            goal: "<= 2x",
        });
        if subjects == 10_000 {
            let snapshot = store.snapshot();
            let now = store.now();
            let (ours, reference) = interleaved(
                CHECK_ROUNDS,
                CHECK_INNER,
                || {
                    black_box(snapshot.check(black_box(subject), "contact_lookup", None, now).unwrap());
                },
                || {
                    black_box(map.get(black_box(subject)));
                },
            );
            rows.push(Row {
                key: "check",
                figure: "`Snapshot::check` at a given time (the check without its clock read), 10k subjects".into(),
                ours,
                reference: Some(("`HashMap<String, u64>::get`, 10k entries".into(), reference)),
                goal: "<= 2x",
            });
            let (ours, reference) = interleaved(
                CHECK_ROUNDS,
                CHECK_INNER,
                || {
                    black_box(SystemTime::now());
                },
                || {
                    black_box(map.get(black_box(subject)));
                },
            );
            rows.push(Row {
                key: "check",
                figure: "the clock read every check at *now* needs (`SystemTime::now`)".into(),
                ours,
                reference: Some(("`HashMap<String, u64>::get`, 10k entries".into(), reference)),
                goal: "(the floor)",
            });
            // The floor of an allowed check of a recorded consent: the monotonic read the
            // freshness test needs, the wall-clock read the expiry needs, one map lookup.
            let floor = || {
                black_box(coarse_monotonic());
                black_box(SystemTime::now());
                black_box(map.get(black_box(subject)));
            };
            let (ours, reference) = interleaved(
                CHECK_ROUNDS,
                CHECK_INNER,
                || {
                    black_box(store.check(black_box(subject), "contact_lookup", None).unwrap());
                },
                floor,
            );
            rows.push(Row {
                key: "check",
                figure: "Rust `check`, allowed, 10k subjects, against its floor".into(),
                ours,
                reference: Some((
                    "the floor: the freshness test's monotonic read + `SystemTime::now` + `HashMap<String, u64>::get`, 10k entries".into(),
                    reference,
                )),
                goal: "close to 1 (<= 2x a bare get is below this floor)",
            });
            assert!(!store.check(subject, "photo_sharing", None).unwrap().allowed);
            let (ours, reference) = interleaved(
                CHECK_ROUNDS,
                CHECK_INNER,
                || {
                    black_box(store.check(black_box(subject), "photo_sharing", None).unwrap());
                },
                || {
                    black_box(map.get(black_box(subject)));
                },
            );
            rows.push(Row {
                key: "check",
                figure: "Rust `check`, denied (two reasons: not asked, OS permission not determined), 10k subjects".into(),
                ours,
                reference: Some(("`HashMap<String, u64>::get`, 10k entries".into(), reference)),
                goal: "<= 2x",
            });
            contention_row(Arc::new(store), subject, rows);
        }
    }
}

use std::time::SystemTime;

/// The monotonic read the store's freshness test makes (`CLOCK_MONOTONIC_COARSE` on Linux and
/// Android, `Instant` elsewhere).
fn coarse_monotonic() -> u64 {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: a valid, writable timespec.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
        ts.tv_nsec as u64
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        Instant::now().elapsed().subsec_nanos() as u64
    }
}

/// A check while another thread commits, against the same check with no writer.
fn contention_row(store: Arc<ConsentStore>, subject: &str, rows: &mut Vec<Row>) {
    let alone = || {
        let t = Instant::now();
        for _ in 0..100_000 {
            black_box(store.check(black_box(subject), "contact_lookup", None).unwrap());
        }
        t.elapsed() / 100_000
    };
    let mut quiet = Vec::new();
    let mut busy = Vec::new();
    let mut writes = 0u64;
    for _ in 0..7 {
        quiet.push(alone());
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let (store, stop) = (store.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let action = if n.is_multiple_of(2) { Action::Withdraw } else { Action::Grant };
                    store.record(&DecisionInput::new("writer", "usage_statistics", action, Source::Settings)).unwrap();
                    n += 1;
                }
                n
            })
        };
        busy.push(alone());
        stop.store(true, Ordering::Relaxed);
        writes += writer.join().unwrap();
    }
    rows.push(Row {
        key: "check",
        figure: format!("Rust `check` while a writer thread commits ({writes} commits), 10k subjects"),
        ours: median(busy),
        reference: Some(("the same check with no writer".into(), median(quiet))),
        goal: "~1 (no lock shared with writers)",
    });
}

/// A bare durable insert, like for like with one `record`: one row of an event's size (about the
/// 190 bytes of our row: a 16-byte id, a subject, a few codes and times, two 32-byte hashes) into
/// its own table with the one index a per-subject lookup needs, in its own immediate transaction,
/// through a cached statement; WAL + `synchronous=FULL`, SQLite's default page size (ours too,
/// asserted), the same disk.
struct BareInsert {
    conn: Connection,
    n: i64,
    subjects: i64,
}

impl BareInsert {
    /// Rows for `subjects` subjects in turn, as the `record` it is measured against.
    fn new(path: &Path, subjects: usize) -> BareInsert {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
             CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, subject TEXT, payload BLOB);
             CREATE INDEX IF NOT EXISTS t_by_subject ON t (subject);",
        )
        .unwrap();
        BareInsert { conn, n: 0, subjects: subjects as i64 }
    }

    fn page_size(&self) -> i64 {
        self.conn.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap()
    }

    fn insert(&mut self) {
        self.n += 1;
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).unwrap();
        tx.prepare_cached("INSERT INTO t (subject, payload) VALUES (?1, ?2)")
            .unwrap()
            .execute(rusqlite::params![format!("user-{}", self.n % self.subjects), [0x5a_u8; 170]])
            .unwrap();
        tx.commit().unwrap();
    }
}

/// The floor of our write in SQL alone: the same five pages a `record` writes, in one durable
/// transaction of plain cached statements (an event row of our size with a random 16-byte id
/// under a UNIQUE index and a subject index, the subject's state row upserted, the four metadata
/// values in one statement), without the validation, hashing, catch-up and publish around them.
struct BareFivePages {
    conn: Connection,
    n: i64,
    subjects: i64,
    state: String,
}

impl BareFivePages {
    fn new(path: &Path, subjects: usize) -> BareFivePages {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
             CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, id BLOB UNIQUE, subject TEXT, payload BLOB);
             CREATE INDEX IF NOT EXISTS events_by_subject ON events (subject) WHERE subject IS NOT NULL;
             CREATE TABLE IF NOT EXISTS subjects (subject TEXT PRIMARY KEY, state TEXT NOT NULL, last_seq INTEGER NOT NULL) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;",
        )
        .unwrap();
        // A state row of the size ours has (two categories).
        BareFivePages { conn, n: 0, subjects: subjects as i64, state: "s".repeat(460) }
    }

    fn write(&mut self) {
        self.n += 1;
        let subject = format!("user-{}", self.n % self.subjects);
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).unwrap();
        tx.prepare_cached("INSERT INTO events (seq, id, subject, payload) VALUES (?1, ?2, ?3, ?4)")
            .unwrap()
            .execute(rusqlite::params![self.n, uuid::Uuid::new_v4().as_bytes().to_vec(), subject, [0x5a_u8; 150]])
            .unwrap();
        tx.prepare_cached(
            "INSERT INTO subjects (subject, state, last_seq) VALUES (?1, ?2, ?3) \
             ON CONFLICT(subject) DO UPDATE SET state = excluded.state, last_seq = excluded.last_seq",
        )
        .unwrap()
        .execute(rusqlite::params![subject, self.state, self.n])
        .unwrap();
        tx.prepare_cached(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('head_seq', ?1), ('head_hash', ?2), ('state_digest', ?3), \
             ('time_high_water', ?4)",
        )
        .unwrap()
        .execute(rusqlite::params![self.n.to_string(), "h".repeat(64), "d".repeat(64), self.n.to_string()])
        .unwrap();
        tx.commit().unwrap();
    }
}

/// The WAL's checkpoint sequence number (its header's bytes 12..16), which moves each time the WAL
/// restarts after a checkpoint; 0 while there is no WAL.
fn wal_generation(db: &Path) -> u32 {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    std::fs::read(&wal).ok().filter(|h| h.len() >= 16).map_or(0, |h| u32::from_be_bytes([h[12], h[13], h[14], h[15]]))
}

/// Writes until the WAL of `db` has restarted after a checkpoint, so it has reached its steady
/// size: timed writes then reuse its blocks, as an app's do, instead of some growing the file
/// (a fresh file's first thousand frames each extend it, which on ext4 costs the fsync a
/// metadata commit: whichever side still grows would look slower).
fn warm_until_wal_restarts(db: &Path, mut write: impl FnMut()) {
    let start = wal_generation(db);
    for _ in 0..20_000 {
        write();
        if wal_generation(db) != start {
            return;
        }
    }
    panic!("the WAL of {db:?} never restarted");
}

/// Rounds of the record rows (20 writes each side a round): the disk's fsync latency on a shared
/// machine varies by round, and the median over many short rounds drops the disturbed ones.
const RECORD_ROUNDS: usize = 31;

/// Durable `record` against a bare rusqlite insert transaction on the same disk.
fn record_rows(dir: &Path, rows: &mut Vec<Row>) {
    for subjects in [1usize, 10_000] {
        eprintln!("record: building a {subjects}-subject store");
        let (path, store) = store_with(dir, &format!("record-{subjects}.db"), subjects, 1);
        let bare_path = dir.join(format!("bare-{subjects}.db"));
        let mut bare = BareInsert::new(&bare_path, subjects);
        let ours_page_size: i64 = Connection::open(&path).unwrap().query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
        assert_eq!(bare.page_size(), ours_page_size, "the reference and ours on the same page size");
        let mut n = 0u64;
        let mut record = || {
            n += 1;
            let action = if n.is_multiple_of(2) { Action::Grant } else { Action::Withdraw };
            store
                .record(&DecisionInput::new(&format!("user-{}", n as usize % subjects), "usage_statistics", action, Source::Settings))
                .unwrap();
        };
        // Where the floor is: ours against the same five pages written by SQL alone.
        let floor_path = dir.join(format!("floor-{subjects}.db"));
        let mut floor = BareFivePages::new(&floor_path, subjects);
        warm_until_wal_restarts(&path, &mut record);
        warm_until_wal_restarts(&bare_path, || bare.insert());
        warm_until_wal_restarts(&floor_path, || floor.write());
        let mut insert = || bare.insert();
        let mut floor_write = || floor.write();
        let times = interleaved_many(RECORD_ROUNDS, 20, &mut [&mut record, &mut insert, &mut floor_write]);
        let (ours, reference, floor_time) = (times[0], times[1], times[2]);
        rows.push(Row {
            key: "record",
            figure: format!("durable `record`, {subjects}-subject store"),
            ours,
            reference: Some((
                "bare rusqlite insert transaction (a row of our size, one index, cached statement), WAL + `synchronous=FULL`, same disk"
                    .into(),
                reference,
            )),
            goal: if subjects == 1 { "<= 1.2x" } else { "<= 1.3x (flat in subjects)" },
        });
        rows.push(Row {
            key: "record",
            figure: format!("durable `record`, {subjects}-subject store, against the SQL floor of its five pages"),
            ours,
            reference: Some((
                "the same five pages (event row, id index, subject index, state row, metadata) in one transaction of plain SQL, same disk"
                    .into(),
                floor_time,
            )),
            goal: "informational (the pages' floor)",
        });
    }
}

/// Start-up: open + first check at 10k subjects, and flat in history.
fn open_rows(dir: &Path, rows: &mut Vec<Row>) {
    eprintln!("open: building 10k-subject stores with 1 and 10 decisions per subject");
    let (short_path, short) = store_with(dir, "open-short.db", 10_000, 1);
    let (long_path, long) = store_with(dir, "open-long.db", 10_000, 10);
    drop((short, long));
    // Each call returns what it opened or loaded; it is dropped (closed) after the timer stopped.
    let open_check = |path: &Path| {
        let store = ConsentStore::open(path, Policy::builtin()).unwrap();
        black_box(store.check("user-4242", "contact_lookup", None).unwrap());
        store
    };
    let read_state = |path: &Path| {
        let conn = Connection::open(path).unwrap();
        {
            let mut stmt = conn.prepare("SELECT subject, state FROM subjects").unwrap();
            let mut rows = stmt.query([]).unwrap();
            while let Some(row) = rows.next().unwrap() {
                black_box((row.get_ref(0).unwrap().as_str().unwrap().len(), row.get_ref(1).unwrap().as_bytes().unwrap().len()));
            }
        }
        conn
    };
    let (ours, reference) = interleaved_kept(15, 1, || open_check(&short_path), || read_state(&short_path));
    rows.push(Row {
        key: "open",
        figure: "open + first check, 10k subjects".into(),
        ours,
        reference: Some(("bare rusqlite open + read every row of the state table".into(), reference)),
        goal: "<= 5 ms",
    });
    // What serving a proven table needs at least: every row read and its stored bytes hashed
    // (SHA-256 of exactly what the digest hashes: its length-framed parts, `row_hash` in
    // state_proof.rs, three 64-byte blocks a row here, not two of the bare bytes), the rows
    // kept by subject, all on one thread. (The store also checks that each binary row decodes,
    // without building it, and decodes a subject's row when it is first checked: the first
    // check here decodes one; and from 1,024 rows it checks and hashes on a second thread while
    // it reads, so where a core is free it can come in under this one-thread floor.)
    let read_hash_parse = |path: &Path| {
        use sha2::Digest;
        let conn = Connection::open(path).unwrap();
        let mut states = HashMap::new();
        {
            let mut stmt = conn.prepare("SELECT subject, state FROM subjects").unwrap();
            let mut rows = stmt.query([]).unwrap();
            while let Some(row) = rows.next().unwrap() {
                let (subject, stored) = (row.get_ref(0).unwrap().as_str().unwrap(), row.get_ref(1).unwrap().as_bytes().unwrap());
                let mut h = sha2::Sha256::new();
                for part in [b"consentkit-state-row-v1".as_slice(), b"subject", subject.as_bytes(), stored] {
                    h.update((part.len() as u32).to_be_bytes());
                    h.update(part);
                }
                black_box(h.finalize());
                states.insert(subject.to_string(), Box::<[u8]>::from(stored));
            }
        }
        (conn, states)
    };
    let (ours, reference) = interleaved_kept(15, 1, || open_check(&short_path), || read_hash_parse(&short_path));
    rows.push(Row {
        key: "open",
        figure: "open + first check, 10k subjects, against its floor".into(),
        ours,
        reference: Some((
            "bare rusqlite open + read every state row, SHA-256 of it as the digest frames it, keep it in a map by subject, one thread (the proven load's floor)".into(),
            reference,
        )),
        goal: "close to 1",
    });
    let (ours, reference) = interleaved_kept(15, 1, || open_check(&long_path), || open_check(&short_path));
    rows.push(Row {
        key: "open",
        figure: "open + first check, 10k subjects, 110k events of history".into(),
        ours,
        reference: Some(("the same with 20k events".into(), reference)),
        goal: "~1 (flat in history)",
    });
    // Closing is not part of the rows above; here it is, against the bare connection's close.
    let (mut closes, mut bare_closes) = (Vec::new(), Vec::new());
    for _ in 0..9 {
        let store = open_check(&short_path);
        let t = Instant::now();
        drop(store);
        closes.push(t.elapsed());
        let conn = read_state(&short_path);
        let t = Instant::now();
        drop(conn);
        bare_closes.push(t.elapsed());
    }
    rows.push(Row {
        key: "open",
        figure: "close after an open + check, 10k subjects (writes the clock's high-water mark, frees the snapshot)".into(),
        ours: median(closes),
        reference: Some(("the bare connection's close".into(), median(bare_closes))),
        goal: "informational",
    });
}

/// `history` and `erasures_of` at a large store, against the same calls at a small one.
fn support_rows(dir: &Path, rows: &mut Vec<Row>) {
    const SUBJECTS: usize = 20_000;
    const PER_SUBJECT: usize = 49;
    eprintln!("history: building a store of {} events", SUBJECTS * (PER_SUBJECT + 1));
    let t = Instant::now();
    let (large_path, large) = store_with(dir, "support-large.db", SUBJECTS, PER_SUBJECT);
    let events = large.verify().unwrap();
    eprintln!("  built and verified {events} events in {:?}", t.elapsed());
    let (small_path, small) = store_with(dir, "support-small.db", 20, PER_SUBJECT);
    for store in [&large, &small] {
        for s in 0..10 {
            store.erase(&format!("user-{s}"), Source::Support).unwrap();
        }
    }
    let small_events = small.verify().unwrap();
    let subject = "user-15";
    let (ours, reference) = interleaved(
        9,
        5,
        || {
            black_box(large.history(subject).unwrap());
        },
        || {
            black_box(small.history(subject).unwrap());
        },
    );
    rows.push(Row {
        key: "history",
        figure: format!("`history(subject)`, {events} events ({PER_SUBJECT} + 1 of them the subject's)"),
        ours,
        reference: Some((format!("the same subject's history at {small_events} events"), reference)),
        goal: "< 1 ms",
    });
    let (ours, reference) = interleaved(
        9,
        5,
        || {
            black_box(large.erasures_of("user-5").unwrap());
        },
        || {
            black_box(small.erasures_of("user-5").unwrap());
        },
    );
    rows.push(Row {
        key: "erasures",
        figure: format!("`erasures_of(subject)`, {events} events, 10 erasures"),
        ours,
        reference: Some((format!("the same at {small_events} events"), reference)),
        goal: "< 1 ms",
    });
    drop((large, small));
    let bytes = file_bytes(&large_path);
    rows.push(Row {
        key: "bytes",
        figure: format!("bytes per event on disk ({} bytes / {events} events, after a checkpoint)", bytes),
        ours: Duration::from_nanos(bytes / events),
        reference: None,
        goal: "<= 250",
    });
    let _ = small_path;
}

/// The database file's size after folding the WAL into it.
fn file_bytes(path: &Path) -> u64 {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
    drop(conn);
    std::fs::metadata(path).unwrap().len()
}

/// The cross-process probe (`refresh`: one `PRAGMA data_version`, and a catch-up when another
/// connection committed) against the check it keeps honest; the figure names the share of one
/// core the probe thread takes at `PROBE_INTERVAL`.
fn probe_rows(dir: &Path, rows: &mut Vec<Row>) {
    eprintln!("probe: building a 10000-subject store");
    let (path, store) = store_with(dir, "probe.db", 10_000, 1);
    let subject = "user-4242";
    let (ours, reference) = interleaved(
        21,
        2_000,
        || store.refresh().unwrap(),
        || {
            black_box(store.check(black_box(subject), "contact_lookup", None).unwrap());
        },
    );
    let share = 100.0 * ours.as_secs_f64() / PROBE_INTERVAL.as_secs_f64();
    rows.push(Row {
        key: "probe",
        figure: format!(
            "cross-process probe, nothing changed (every {:?}: {share:.4} % of one core; bound {:?})",
            PROBE_INTERVAL, CROSS_PROCESS_BOUND
        ),
        ours,
        reference: Some(("Rust `check`, allowed, 10k subjects".into(), reference)),
        goal: "< 0.1 % of a core",
    });
    let other = Connection::open(&path).unwrap();
    let (ours, reference) = interleaved(
        11,
        200,
        || {
            other.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('bench', 'x')", []).unwrap();
            store.refresh().unwrap()
        },
        || {
            other.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('bench', 'x')", []).unwrap();
        },
    );
    rows.push(Row {
        key: "probe",
        figure: "cross-process probe after another connection committed (no consent change), 10k subjects".into(),
        ours,
        reference: Some(("that other connection's commit alone".into(), reference)),
        goal: "informational",
    });
}

fn main() {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with("--")).unwrap_or_default();
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let started = Instant::now();
    let mut rows = Vec::new();
    let wanted = |key: &str| filter.is_empty() || key.contains(filter.as_str());
    if wanted("check") {
        check_rows(dir.path(), &mut rows);
    }
    if wanted("record") {
        record_rows(dir.path(), &mut rows);
    }
    if wanted("open") {
        open_rows(dir.path(), &mut rows);
    }
    if wanted("history") || wanted("erasures") || wanted("bytes") {
        support_rows(dir.path(), &mut rows);
    }
    if wanted("probe") {
        probe_rows(dir.path(), &mut rows);
    }
    println!("### Rust core (`core/benches/perf.rs`)\n");
    println!(
        "Ours and the reference run in the same process, interleaved round by round; each cell is the median of the rounds. \
         The command of a row re-runs just that row's group. Took {:.0} s.\n",
        started.elapsed().as_secs_f64()
    );
    println!("| figure | ours | reference, same run | ratio | goal | command |");
    println!("|---|---|---|---|---|---|");
    for r in &rows {
        let command = format!("`make bench-rust ROWS={}`", r.key);
        match (&r.reference, r.key) {
            (_, "bytes") => println!("| {} | {} B | | | {} | {command} |", r.figure, r.ours.as_nanos(), r.goal),
            (Some((what, reference)), _) => println!(
                "| {} | {} | {} {} | {:.2}x | {} | {command} |",
                r.figure,
                fmt(r.ours),
                what,
                fmt(*reference),
                r.ours.as_secs_f64() / reference.as_secs_f64(),
                r.goal
            ),
            (None, _) => println!("| {} | {} | | | {} | {command} |", r.figure, fmt(r.ours), r.goal),
        }
    }
}
