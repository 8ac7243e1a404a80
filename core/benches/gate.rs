//! Gate and start-up benchmarks. Prints ratios that must stay near 1:
//! - check with 10,000 subjects / check with 1 subject (the gate does not grow with the store)
//! - check while a writer thread commits / check alone (no lock contention with writers)
//! - open with 20,000 events of history / open with 200 (start-up does not grow with history)
//! - the cross-process probe: its cost, and the share of one core it takes at PROBE_INTERVAL

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use consentkit_core::*;
use criterion::{criterion_group, Criterion};

fn store_with(subjects: usize, events_per_subject: usize) -> (tempfile::TempDir, std::path::PathBuf, ConsentStore) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.db");
    let store = ConsentStore::open(&path, Policy::builtin()).unwrap();
    store.set_os_permission(OsPermission::Contacts, OsState::Granted).unwrap();
    let mut batch = Vec::new();
    for s in 0..subjects {
        for e in 0..events_per_subject {
            let action = if e % 2 == 0 { Action::Grant } else { Action::Withdraw };
            batch.push(DecisionInput::new(&format!("user-{s}"), "usage_statistics", action, Source::Settings));
            if batch.len() == 1000 {
                store.record_batch(&batch).unwrap();
                batch.clear();
            }
        }
        batch.push(DecisionInput::new(&format!("user-{s}"), "device_contacts", Action::Grant, Source::Settings));
    }
    store.record_batch(&batch).unwrap();
    (dir, path, store)
}

/// Median time of `f` over `runs` runs of `inner` iterations, per iteration.
fn per_iter(runs: usize, inner: u32, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..inner {
                f();
            }
            t.elapsed() / inner
        })
        .collect();
    times.sort();
    times[runs / 2]
}

fn bench_check(c: &mut Criterion) {
    let (_d1, _p1, small) = store_with(1, 1);
    let (_d2, _p2, large) = store_with(10_000, 1);
    c.bench_function("check/1 subject", |b| b.iter(|| small.check(black_box("user-0"), "contact_lookup", None).unwrap()));
    c.bench_function("check/10k subjects", |b| b.iter(|| large.check(black_box("user-4242"), "contact_lookup", None).unwrap()));
}

fn ratios() {
    let (_d1, _p1, small) = store_with(1, 1);
    let (_d2, _p2, large) = store_with(10_000, 1);
    let t_small = per_iter(21, 20_000, || {
        black_box(small.check("user-0", "contact_lookup", None).unwrap());
    });
    let t_large = per_iter(21, 20_000, || {
        black_box(large.check("user-4242", "contact_lookup", None).unwrap());
    });
    println!(
        "ratio check(10k subjects)/check(1 subject) = {:.2}  ({:?} vs {:?})",
        t_large.as_secs_f64() / t_small.as_secs_f64(),
        t_large,
        t_small
    );

    let store = Arc::new(large);
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
    let t_contended = per_iter(21, 20_000, || {
        black_box(store.check("user-4242", "contact_lookup", None).unwrap());
    });
    stop.store(true, Ordering::Relaxed);
    let writes = writer.join().unwrap();
    println!(
        "ratio check(during {writes} commits)/check(alone) = {:.2}  ({:?} vs {:?})",
        t_contended.as_secs_f64() / t_large.as_secs_f64(),
        t_contended,
        t_large
    );

    let (_d3, short_path, short) = store_with(100, 2);
    let (_d4, long_path, long) = store_with(100, 200);
    drop((short, long));
    let open = |p: &std::path::Path| per_iter(7, 3, || drop(black_box(ConsentStore::open(p, Policy::builtin()).unwrap())));
    let (t_short, t_long) = (open(&short_path), open(&long_path));
    println!(
        "ratio open(20,000 events)/open(200 events) = {:.2}  ({:?} vs {:?})",
        t_long.as_secs_f64() / t_short.as_secs_f64(),
        t_long,
        t_short
    );
}

fn bench_probe(c: &mut Criterion) {
    let (_d, path, store) = store_with(100, 1);
    c.bench_function("probe/nothing changed (data_version)", |b| b.iter(|| store.refresh().unwrap()));
    let other = rusqlite::Connection::open(&path).unwrap();
    c.bench_function("probe/another connection committed", |b| {
        b.iter(|| {
            other.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('bench', 'x')", []).unwrap();
            store.refresh().unwrap()
        })
    });
}

fn probe_ratios() {
    let (_d, _path, store) = store_with(10_000, 1);
    let t_probe = per_iter(21, 2_000, || store.refresh().unwrap());
    let t_check = per_iter(21, 20_000, || {
        black_box(store.check("user-4242", "contact_lookup", None).unwrap());
    });
    let snapshot = store.snapshot();
    let now = store.now();
    let t_bare = per_iter(21, 20_000, || {
        black_box(snapshot.check("user-4242", "contact_lookup", None, now).unwrap());
    });
    let per_second = 1.0 / PROBE_INTERVAL.as_secs_f64();
    println!(
        "cross-process probe = {:?} every {:?}: {:.4} % of one core; bound {:?}",
        t_probe,
        PROBE_INTERVAL,
        100.0 * t_probe.as_secs_f64() * per_second,
        CROSS_PROCESS_BOUND
    );
    println!(
        "ratio check(with freshness test and clock high-water mark)/Snapshot::check = {:.2}  ({:?} vs {:?}); a probe on every check would be {:.0}x the check",
        t_check.as_secs_f64() / t_bare.as_secs_f64(),
        t_check,
        t_bare,
        t_probe.as_secs_f64() / t_check.as_secs_f64()
    );
}

criterion_group!(benches, bench_check, bench_probe);

fn main() {
    benches();
    ratios();
    probe_ratios();
    Criterion::default().configure_from_args().final_summary();
}
