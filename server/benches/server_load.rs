//! `make bench-server`: the server on loopback with a real PostgreSQL 15 on this machine.
//!
//! An open-loop load generator sends a bounded number of batches at a fixed rate (each latency is
//! measured from the batch's scheduled time, so a slow server cannot hide its tail by slowing the
//! sender), beside the same inserts as bare SQL through the same driver (tokio-postgres, the floor).
//! Then 1 M events are bulk-loaded with `generate_series` and a subject's state, check and export
//! are timed, beside the bare SQL read of the same rows. Prints a Markdown section (BENCHMARKS.md).

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use consentkit_core::chain::{seal, GENESIS};
use consentkit_core::{Action, Receipt, Source, Timestamp};
use consentkit_server::wire::Batch;
use serde_json::json;

const BATCH: usize = 50;
const LANES: usize = 40;

/// A device's chain of `n` sealed receipts (made with the core's own encoding).
fn chain(device: usize, n: usize) -> Vec<Receipt> {
    let mut prev = GENESIS.to_string();
    (1..=n)
        .map(|seq| {
            let action = if seq % 3 == 0 { Action::Withdraw } else { Action::Grant };
            let mut r =
                Receipt::blank(action, Source::Settings, "ucanywhere", "2018-05-01", Timestamp(1_770_000_000_000 + seq as i64 * 1000));
            r.id = format!("dev{device}-{seq}");
            r.seq = seq as u64;
            r.subject = Some(format!("load-user-{device}-{}", seq % 25));
            r.category = Some(["photos_media", "usage_statistics", "device_contacts"][seq % 3].to_string());
            r.purpose_version = Some(1);
            seal(&mut r, &prev);
            prev = r.hash.clone();
            r
        })
        .collect()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

struct Run {
    events_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: usize,
}

/// Sends `per_lane` jobs on each of `LANES` lanes, job k of all lanes scheduled at `k * LANES / rate`
/// seconds (lane offsets spread evenly); each lane runs its jobs in order. Latency from schedule.
fn open_loop(rate: f64, per_lane: usize, events_per_job: usize, job: Arc<dyn Fn(usize, usize) -> bool + Send + Sync>) -> Run {
    let start = Instant::now() + Duration::from_millis(200);
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(Mutex::new(0usize));
    let threads: Vec<_> = (0..LANES)
        .map(|lane| {
            let (job, latencies, errors) = (job.clone(), latencies.clone(), errors.clone());
            std::thread::spawn(move || {
                for k in 0..per_lane {
                    let slot = k * LANES + lane;
                    let scheduled = start + Duration::from_secs_f64(slot as f64 / rate);
                    if let Some(wait) = scheduled.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    if !job(lane, k) {
                        *errors.lock().unwrap() += 1;
                    }
                    latencies.lock().unwrap().push(scheduled.elapsed().as_secs_f64() * 1000.0);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let mut l = latencies.lock().unwrap().clone();
    l.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let jobs = l.len();
    let errors = *errors.lock().unwrap();
    Run { events_per_s: (jobs * events_per_job) as f64 / elapsed, p50_ms: percentile(&l, 0.5), p99_ms: percentile(&l, 0.99), errors }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn main() {
    std::env::set_var("CONSENTKIT_LOG", "warn");
    let quick = std::env::args().any(|a| a == "--quick");
    let per_lane = if quick { 10 } else { 75 }; // 40 lanes x 75 = 3000 batches = 150,000 events
    let rate = 200.0; // batches/s: 10,000 events/s at 50 a batch
    let pg = Pg::start();
    let dir = tempfile::tempdir().unwrap();
    let mut database = serde_json::Map::new();
    for (k, user) in
        [("ingest", "consentkit_ingest"), ("support", "consentkit_support"), ("dpo", "consentkit_dpo"), ("auditor", "consentkit_auditor")]
    {
        database.insert(k.into(), json!(pg.conninfo(user)));
    }
    database.insert("pool_size".into(), json!(16));
    let mut tokens = Vec::new();
    for lane in 0..LANES {
        tokens.push(json!({ "name": format!("dev{lane}"), "role": "device", "device": format!("dev{lane}"), "sha256": consentkit_server::config::hash_token(&format!("tok-dev-{lane}")) }));
    }
    tokens.push(json!({ "name": "support", "role": "support", "sha256": consentkit_server::config::hash_token(SUPPORT) }));
    tokens.push(json!({ "name": "dpo", "role": "dpo", "sha256": consentkit_server::config::hash_token(DPO) }));
    let config = write_config(&pg, dir.path(), json!({ "database": database, "tokens": tokens, "max_body_bytes": 4_194_304 }));
    let server = Server::start_with(&config);
    let url = server.url.clone();

    // ----- ingest through the API, open loop -----
    let chains: Arc<Vec<Vec<Receipt>>> = Arc::new((0..LANES).map(|d| chain(d, per_lane * BATCH)).collect());
    let bodies: Arc<Vec<Vec<String>>> = Arc::new(
        chains
            .iter()
            .enumerate()
            .map(|(d, c)| c.chunks(BATCH).map(|b| serde_json::to_string(&Batch::new(&format!("dev{d}"), b.to_vec())).unwrap()).collect())
            .collect(),
    );
    let api = {
        let (bodies, url) = (bodies.clone(), url.clone());
        let agents: Arc<Vec<ureq::Agent>> = Arc::new((0..LANES).map(|_| agent()).collect());
        open_loop(
            rate,
            per_lane,
            BATCH,
            Arc::new(move |lane, k| {
                let r = agents[lane]
                    .post(&format!("{url}/v1/devices/dev{lane}/batches"))
                    .header("authorization", &format!("Bearer tok-dev-{lane}"))
                    .header("content-type", "application/json")
                    .send(bodies[lane][k].as_str());
                matches!(r, Ok(ref resp) if resp.status() == 200)
            }),
        )
    };
    let stored = pg.count("SELECT count(*) FROM events");

    // ----- the floor: the same rows inserted as bare SQL through the same driver -----
    let rt = Arc::new(runtime());
    let pool = consentkit_server::db::pool(&pg.conninfo("postgres"), 16).unwrap();
    rt.block_on(async { pool.get().await.unwrap().batch_execute("CREATE TABLE floor (LIKE events INCLUDING ALL)").await.unwrap() });
    let floor = {
        let (rt, pool, chains) = (rt.clone(), pool.clone(), chains.clone());
        open_loop(
            rate,
            per_lane,
            BATCH,
            Arc::new(move |lane, k| {
                let rows = &chains[lane][k * BATCH..(k + 1) * BATCH];
                rt.block_on(async {
                    let Ok(mut client) = pool.get().await else { return false };
                    let Ok(tx) = client.transaction().await else { return false };
                    let col = |f: &dyn Fn(&Receipt) -> String| rows.iter().map(f).collect::<Vec<String>>();
                    let seqs: Vec<i64> = rows.iter().map(|r| r.seq as i64).collect();
                    let ats: Vec<i64> = rows.iter().map(|r| r.at.millis()).collect();
                    let keys = col(&|r| r.subject.clone().unwrap_or_default());
                    let ok = tx
                        .execute(
                            "INSERT INTO floor (subject_key, device, seq, has_subject, id, category, action, source, policy_id, policy_version, at, \
                             content_hash, prev_hash, hash, received_at) SELECT u.k, $2, u.s, true, u.id, u.c, u.a, 'settings', 'p', '1', u.at, u.ch, u.ph, u.h, 0 \
                             FROM unnest($1::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::text[], $9::text[], $10::text[]) \
                             AS u (k, s, id, c, a, at, ch, ph, h)",
                            &[
                                &keys,
                                &format!("dev{lane}"),
                                &seqs,
                                &col(&|r| r.id.clone()),
                                &col(&|r| r.category.clone().unwrap_or_default()),
                                &col(&|r| r.action.as_str().to_string()),
                                &ats,
                                &col(&|r| r.content_hash.clone()),
                                &col(&|r| r.prev_hash.clone()),
                                &col(&|r| r.hash.clone()),
                            ],
                        )
                        .await
                        .is_ok();
                    ok && tx.commit().await.is_ok()
                })
            }),
        )
    };

    // ----- 1 M events bulk-loaded (generate_series), then reads -----
    let total_events = if quick { 100_000 } else { 1_000_000 };
    let loaded = Instant::now();
    pg.psql(
        "postgres",
        &format!(
            "INSERT INTO events (subject_key, device, seq, has_subject, id, category, action, source, policy_id, policy_version, purpose_version, at, \
             content_hash, prev_hash, hash, received_at) \
             SELECT md5((i % 100000)::text), 'bulk' || (i % 100000), i, true, md5(i::text), \
             (ARRAY['photos_media','usage_statistics','device_contacts'])[1 + i % 3], (ARRAY['grant','withdraw'])[1 + i % 2], 'settings', \
             'ucanywhere', '2018-05-01', 1, 1770000000000 + i, md5(i::text), md5(i::text), md5(i::text), 0 FROM generate_series(1, {}) AS i; ANALYZE events",
            total_events - stored as usize
        ),
    );
    let load_s = loaded.elapsed().as_secs_f64();
    let in_db = pg.count("SELECT count(*) FROM events");
    let subjects: Vec<String> = (0..LANES).flat_map(|d| (0..25).map(move |u| format!("load-user-{d}-{u}"))).collect();
    let subjects = Arc::new(subjects);
    let read = |path: &'static str, body: Arc<dyn Fn(&str) -> serde_json::Value + Send + Sync>, token: &'static str| {
        let (subjects, url) = (subjects.clone(), url.clone());
        let agents: Arc<Vec<ureq::Agent>> = Arc::new((0..LANES).map(|_| agent()).collect());
        open_loop(
            200.0,
            if quick { 5 } else { 25 },
            1,
            Arc::new(move |lane, k| {
                let subject = &subjects[(lane * 25 + k) % subjects.len()];
                let r = agents[lane]
                    .post(&format!("{url}{path}"))
                    .header("authorization", &format!("Bearer {token}"))
                    .header("content-type", "application/json")
                    .send(body(subject).to_string());
                matches!(r, Ok(ref resp) if resp.status() == 200)
            }),
        )
    };
    let state = read("/v1/subjects/state", Arc::new(|s| json!({ "subject": s })), SUPPORT);
    let check = read("/v1/subjects/check", Arc::new(|s| json!({ "subject": s, "feature": "photo_sharing" })), SUPPORT);
    let export = read("/v1/subjects/export", Arc::new(|s| json!({ "subject": s })), DPO);
    let keys = consentkit_server::keys::Keys::load(&consentkit_server::config::Config::load(&config).unwrap()).unwrap();
    let bare = {
        let (rt, pool, subjects) = (rt.clone(), pool.clone(), subjects.clone());
        let keys = Arc::new(keys);
        open_loop(
            200.0,
            if quick { 5 } else { 25 },
            1,
            Arc::new(move |lane, k| {
                let key = keys.subject_key(&subjects[(lane * 25 + k) % subjects.len()]);
                rt.block_on(async {
                    let Ok(client) = pool.get().await else { return false };
                    client.query(consentkit_server::sql::SUBJECT_EVENTS, &[&key]).await.is_ok_and(|rows| !rows.is_empty())
                })
            }),
        )
    };
    // ----- console pages (a person: one after another), with 1 M events stored -----
    let pages = console_pages(&url, &subjects, if quick { 20 } else { 100 });
    drop(server);

    let ratio = |a: f64, b: f64| if b > 0.0 { format!("{:.1}x", a / b) } else { "-".into() };
    let errors = api.errors + floor.errors + state.errors + check.errors + export.errors + bare.errors;
    println!("## Server ledger (`make bench-server`)\n");
    println!(
        "Open loop: {LANES} devices, {} batches of {BATCH} events at {rate} batches/s ({:.0} events/s offered) to `consentkit-server` on \
         loopback, PostgreSQL 15 on the same 2 cores (fsync and synchronous_commit on). Latency is measured from each request's scheduled \
         time. The floor is the same rows inserted as bare SQL (one transaction per batch, `unnest`) through the same driver and pool.\n",
        LANES * per_lane,
        rate * BATCH as f64
    );
    println!("| ingest | events/s | p50 | p99 | goal |");
    println!("|---|---|---|---|---|");
    println!(
        "| API (hash check, replay/fork check, chain, head, signature) | {:.0} | {:.1} ms | {:.1} ms | ≥ 10,000 events/s, p99 < 100 ms |",
        api.events_per_s, api.p50_ms, api.p99_ms
    );
    println!("| bare SQL insert, same driver (floor) | {:.0} | {:.1} ms | {:.1} ms | |", floor.events_per_s, floor.p50_ms, floor.p99_ms);
    println!("| ratio API / floor (p99) | | | {} | |\n", ratio(api.p99_ms, floor.p99_ms));
    println!(
        "Then {in_db} events in `events` ({:.1} s to bulk-load with `generate_series`, not through the API); {} reads at 200/s from {LANES} lanes:\n",
        load_s,
        LANES * if quick { 5 } else { 25 }
    );
    println!("| read | p50 | p99 | goal |");
    println!("|---|---|---|---|");
    println!("| state (all categories, with access-log line) | {:.1} ms | {:.1} ms | p99 < 10 ms |", state.p50_ms, state.p99_ms);
    println!(
        "| check `photo_sharing` (per device, with access-log line) | {:.1} ms | {:.1} ms | p99 < 10 ms |",
        check.p50_ms, check.p99_ms
    );
    println!("| export of one subject | {:.1} ms | {:.1} ms | < 100 ms |", export.p50_ms, export.p99_ms);
    println!("| bare SQL read of the subject's events, same driver (floor) | {:.1} ms | {:.1} ms | |", bare.p50_ms, bare.p99_ms);
    println!("| ratio state / floor (p99) | | {} | |", ratio(state.p99_ms, bare.p99_ms));
    println!("\nConsole pages (one after another, as a person clicks), same 1 M events:\n");
    println!("| page | p50 | p99 | goal |");
    println!("|---|---|---|---|");
    for (name, (p50, p99)) in &pages {
        println!("| {name} | {p50:.1} ms | {p99:.1} ms | < 200 ms |");
    }
    println!("\nFailed requests: {errors}. Events stored through the API: {stored}.");
}

/// Signs in to the console as support and times the lookup form, the lookup and the subject page.
fn console_pages(url: &str, subjects: &[String], n: usize) -> Vec<(&'static str, (f64, f64))> {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).build().into();
    let r = agent
        .post(&format!("{url}/console/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .send(format!("token={SUPPORT}"))
        .unwrap();
    let cookie = r.headers().get("set-cookie").unwrap().to_str().unwrap().split(';').next().unwrap().to_string();
    let (mut form, mut lookup, mut page) = (Vec::new(), Vec::new(), Vec::new());
    for subject in subjects.iter().take(n) {
        let t = Instant::now();
        let mut r = agent.get(&format!("{url}/console/lookup")).header("cookie", &cookie).call().unwrap();
        let html = r.body_mut().read_to_string().unwrap();
        form.push(t.elapsed().as_secs_f64() * 1000.0);
        let csrf = html.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
        let t = Instant::now();
        let r = agent
            .post(&format!("{url}/console/lookup"))
            .header("cookie", &cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .send(format!("csrf={csrf}&subject={subject}"))
            .unwrap();
        lookup.push(t.elapsed().as_secs_f64() * 1000.0);
        let location = r.headers().get("location").unwrap().to_str().unwrap().to_string();
        let t = Instant::now();
        let r = agent.get(&format!("{url}{location}")).header("cookie", &cookie).call().unwrap();
        assert_eq!(r.status().as_u16(), 200);
        page.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let stats = |mut v: Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        (percentile(&v, 0.5), percentile(&v, 0.99))
    };
    vec![
        ("lookup form", stats(form)),
        ("lookup (POST, redirect to the handle)", stats(lookup)),
        ("subject page (statuses, features, timeline)", stats(page)),
    ]
}
