//! Faults: the server SIGKILLed in the middle of a stream of batches, and PostgreSQL restarted
//! under a running server. Every acknowledged event is stored exactly once, the device's retry
//! completes the rest, and no request answers success for something not stored.

mod common;

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::*;
use consentkit_core::{Action, DecisionInput, Source};

fn fill(device: &Device, n: usize) {
    let decisions: Vec<DecisionInput> = (0..n)
        .map(|i| {
            let action = if (i / 50) % 2 == 0 { Action::Grant } else { Action::Withdraw };
            DecisionInput::new(&format!("user-{}", i % 50), "usage_statistics", action, Source::Settings)
        })
        .collect();
    for chunk in decisions.chunks(200) {
        device.store.record_batch(chunk).unwrap();
    }
}

fn phone_rows(pg: &Pg) -> (i64, i64, i64) {
    let out = pg.psql("postgres", "SELECT count(*), count(DISTINCT seq), coalesce(max(seq), 0) FROM device_chain WHERE device = 'phone'");
    let v: Vec<i64> = out.split('|').map(|x| x.parse().unwrap()).collect();
    (v[0], v[1], v[2])
}

#[test]
fn sigkill_mid_stream_loses_no_acknowledged_event_and_the_retry_completes() {
    let pg = Pg::start();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(&pg, dir.path(), serde_json::json!({}));
    let mut server = Server::start_with(&config);
    let phone = Arc::new(Device::new(dir.path(), "phone", PHONE, "2026-03-01T10:00:00Z"));
    let total = 2000u64;
    fill(&phone, total as usize);
    let acked = Arc::new(Mutex::new(0u64));
    let url = server.url.clone();
    let sender = {
        let (phone, acked) = (phone.clone(), acked.clone());
        thread::spawn(move || loop {
            let batch = phone.batch(50);
            if batch.receipts.is_empty() {
                return;
            }
            let r = post(&format!("{url}/v1/devices/phone/batches"), PHONE, &serde_json::to_value(&batch).unwrap());
            if r.status != 200 {
                return; // the server is gone
            }
            let seq = r.body["head"]["seq"].as_u64().unwrap();
            phone.store.ack_sync(seq).unwrap();
            *acked.lock().unwrap() = seq;
        })
    };
    while *acked.lock().unwrap() < 400 && !sender.is_finished() {
        thread::sleep(Duration::from_millis(5));
    }
    server.kill9();
    sender.join().unwrap();
    let acked = *acked.lock().unwrap();
    assert!(acked < total, "the kill landed mid-stream");
    let (rows, distinct, max) = phone_rows(&pg);
    assert!(max as u64 >= acked && rows == distinct && rows == max, "acked {acked}, stored rows {rows} distinct {distinct} max {max}");
    assert_eq!(pg.count("SELECT count(*) FROM events WHERE device = 'phone'"), rows, "every chain link has its event");

    // Restart; the device resends from its own cursor (which may repeat what was stored unacked).
    let server = Server::start_with(&config);
    phone.sync_all(&server);
    assert_eq!(phone_rows(&pg), (total as i64, total as i64, total as i64), "every event exactly once");
    assert_eq!(pg.count("SELECT count(DISTINCT id) FROM events WHERE device = 'phone'"), total as i64);
}

#[test]
fn postgres_restarted_under_the_server_fails_in_flight_requests_retryably_then_reconnects() {
    let pg = Pg::start();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&pg, dir.path());
    let phone = Arc::new(Device::new(dir.path(), "phone", PHONE, "2026-03-01T10:00:00Z"));
    let total = 3000u64;
    fill(&phone, total as usize);
    let replies = Arc::new(Mutex::new(Vec::<(u16, serde_json::Value)>::new()));
    // After 10 replies the sender waits until PostgreSQL is down, so some of its requests meet the
    // database down however fast this machine sends the rest.
    let database_down = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let url = server.url.clone();
    let sender = {
        let (phone, replies, database_down) = (phone.clone(), replies.clone(), database_down.clone());
        thread::spawn(move || {
            for _ in 0..100_000 {
                if replies.lock().unwrap().len() == 10 {
                    while !database_down.load(std::sync::atomic::Ordering::SeqCst) {
                        thread::sleep(Duration::from_millis(5));
                    }
                }
                let batch = phone.batch(20);
                if batch.receipts.is_empty() {
                    return;
                }
                let r = post(&format!("{url}/v1/devices/phone/batches"), PHONE, &serde_json::to_value(&batch).unwrap());
                if r.status == 200 {
                    phone.store.ack_sync(r.body["head"]["seq"].as_u64().unwrap()).unwrap();
                } else {
                    thread::sleep(Duration::from_millis(50));
                }
                replies.lock().unwrap().push((r.status, r.body));
            }
        })
    };
    while replies.lock().unwrap().len() < 10 {
        thread::sleep(Duration::from_millis(5));
    }
    pg.stop();
    database_down.store(true, std::sync::atomic::Ordering::SeqCst);
    let acked_when_down = phone.store.sync_acked().unwrap();
    thread::sleep(Duration::from_millis(1500));
    let seen_while_down = replies.lock().unwrap().len();
    pg.restart();
    sender.join().unwrap();

    let replies = replies.lock().unwrap();
    let failures: Vec<&(u16, serde_json::Value)> = replies.iter().filter(|(s, _)| *s != 200).collect();
    assert!(!failures.is_empty(), "some requests met the database down");
    for (status, body) in &failures {
        assert_eq!(*status, 503, "{body}");
        assert_eq!(body["retryable"], serde_json::json!(true), "{body}");
        assert_eq!(body["error"], serde_json::json!("database_unavailable"), "{body}");
    }
    assert!(replies.len() > seen_while_down, "the server answered again after the restart");
    assert!(acked_when_down < total);
    assert_eq!(phone.store.sync_acked().unwrap(), total, "the device's retries completed");
    assert_eq!(phone_rows(&pg), (total as i64, total as i64, total as i64), "every event exactly once");
    let health = get(&format!("{}/healthz", server.url), SUPPORT);
    assert_eq!(health.status, 200, "{}", health.text);
}
