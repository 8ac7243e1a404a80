//! The server ledger against a real PostgreSQL 15 and the real binary: ingest (replay, gap, fork,
//! forgery), cross-device queries with the core's semantics, erasure reaching devices,
//! minimisation, roles, the access log, signed heads.

mod common;

use common::*;
use consentkit_core::chain::receipt_is_sealed;
use consentkit_core::{Action, Receipt, Source};
use consentkit_server::wire::{self, Batch, SignedHead};
use serde_json::{json, Value};

fn batches(server: &Server, device: &str) -> String {
    format!("{}/v1/devices/{device}/batches", server.url)
}

fn send(server: &Server, device: &str, token: &str, batch: &Batch) -> Reply {
    post(&batches(server, device), token, &serde_json::to_value(batch).unwrap())
}

fn events(pg: &Pg) -> i64 {
    pg.count("SELECT count(*) FROM events")
}

fn stored(pg: &Pg) -> (i64, i64, i64) {
    (events(pg), pg.count("SELECT count(*) FROM device_chain"), pg.count("SELECT coalesce(sum(seq), 0) FROM device_heads"))
}

fn public_key(server: &Server) -> ed25519_dalek::VerifyingKey {
    let r = get(&format!("{}/v1/public-key", server.url), SUPPORT);
    wire::parse_public_key(r.body["public_key"].as_str().unwrap()).unwrap()
}

fn lookup(server: &Server, what: &str, token: &str, body: Value) -> Reply {
    post(&format!("{}/v1/subjects/{what}", server.url), token, &body)
}

#[test]
fn ingest_is_idempotent_signs_the_head_and_the_receipt_verifies_offline() {
    let pg = Pg::start();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&pg, dir.path());
    let phone = Device::new(dir.path(), "phone", PHONE, "2026-03-01T10:00:00Z");
    phone.decide("alice", "photos_media", Action::Grant, Source::Onboarding);
    phone.decide("alice", "usage_statistics", Action::Refuse, Source::Onboarding);
    phone.decide("bob", "photos_media", Action::Grant, Source::Settings);
    let batch = phone.batch(50);
    let first = send(&server, "phone", PHONE, &batch);
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(
        (first.body["status"].as_str(), first.body["stored"].as_u64(), first.body["duplicates"].as_u64()),
        (Some("stored"), Some(3), Some(0))
    );
    let head: SignedHead = serde_json::from_value(first.body["head"].clone()).unwrap();
    assert_eq!((head.seq, head.hash.as_str()), (3, batch.receipts[2].hash.as_str()));

    let replay = send(&server, "phone", PHONE, &batch);
    assert_eq!(replay.status, 200, "{}", replay.text);
    assert_eq!((replay.body["stored"].as_u64(), replay.body["duplicates"].as_u64()), (Some(0), Some(3)));
    assert_eq!(replay.body["head"], first.body["head"], "a replay returns the same signed head");
    assert_eq!(stored(&pg), (3, 3, 3));

    // A partly overlapping batch stores only what is new.
    phone.decide("alice", "photos_media", Action::Withdraw, Source::Settings);
    let overlap = Batch::new("phone", phone.store.pending_sync(50).unwrap());
    let r = send(&server, "phone", PHONE, &overlap);
    assert_eq!((r.status, r.body["stored"].as_u64(), r.body["duplicates"].as_u64()), (200, Some(1), Some(3)), "{}", r.text);
    phone.store.ack_sync(r.body["head"]["seq"].as_u64().unwrap()).unwrap();
    assert!(phone.store.pending_sync(10).unwrap().is_empty());

    // Anyone with the public key checks the signed head against the device's own chain.
    let key = public_key(&server);
    let head: SignedHead = serde_json::from_value(r.body["head"].clone()).unwrap();
    let ok = wire::verify_receipt(&head, &key, phone.store.chain_rows().unwrap()).unwrap();
    assert_eq!((ok.seq, ok.chain_events), (4, 4));
    let mut forged = head.clone();
    forged.hash = batch.receipts[0].hash.clone();
    assert!(wire::verify_receipt(&forged, &key, phone.store.chain_rows().unwrap()).unwrap_err().contains("signature does not verify"));
    let other = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let self_signed = SignedHead::sign(&other, "phone", 4, &head.hash);
    assert!(
        wire::verify_receipt(&self_signed, &key, phone.store.chain_rows().unwrap()).is_err(),
        "a head signed by another key is refused"
    );
    let elsewhere = SignedHead::sign(&other, "phone", 2, &head.hash);
    assert!(wire::verify_receipt(&elsewhere, &other.verifying_key(), phone.store.chain_rows().unwrap())
        .unwrap_err()
        .contains("not the same chain"));
}

#[test]
fn a_gap_or_a_fork_is_refused_naming_the_expected_seq_and_writes_nothing() {
    let pg = Pg::start();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&pg, dir.path());
    let phone = Device::new(dir.path(), "phone", PHONE, "2026-03-01T10:00:00Z");
    for (c, a) in [
        ("photos_media", Action::Grant),
        ("device_contacts", Action::Grant),
        ("usage_statistics", Action::Refuse),
        ("photos_media", Action::Withdraw),
        ("device_contacts", Action::Withdraw),
    ] {
        phone.decide("alice", c, a, Source::Settings);
    }
    let all = phone.store.pending_sync(50).unwrap();
    let r = send(&server, "phone", PHONE, &Batch::new("phone", all[..2].to_vec()));
    assert_eq!(r.status, 200, "{}", r.text);
    let before = stored(&pg);

    let gap = send(&server, "phone", PHONE, &Batch::new("phone", all[3..].to_vec()));
    assert_eq!((gap.status, gap.body["error"].as_str(), gap.body["expected_seq"].as_u64()), (409, Some("gap"), Some(3)), "{}", gap.text);
    assert!(gap.body["message"].as_str().unwrap().contains("expects seq 3"), "{}", gap.text);
    let inner = send(&server, "phone", PHONE, &Batch::new("phone", vec![all[2].clone(), all[4].clone()]));
    assert_eq!(
        (inner.status, inner.body["error"].as_str(), inner.body["expected_seq"].as_u64()),
        (409, Some("gap"), Some(4)),
        "{}",
        inner.text
    );
    assert_eq!(stored(&pg), before, "a refused batch writes nothing");

    // Another store claiming to be the phone: same seqs, other content.
    let impostor = Device::new(&dir.path().join("x").tap_mkdir(), "phone", PHONE, "2026-03-01T11:00:00Z");
    impostor.decide("mallory", "photos_media", Action::Grant, Source::Onboarding);
    impostor.decide("mallory", "photos_media", Action::Grant, Source::Onboarding);
    impostor.decide("mallory", "photos_media", Action::Grant, Source::Onboarding);
    let fork = send(&server, "phone", PHONE, &impostor.batch(50));
    assert_eq!(
        (fork.status, fork.body["error"].as_str(), fork.body["expected_seq"].as_u64()),
        (409, Some("fork"), Some(3)),
        "{}",
        fork.text
    );
    assert!(fork.body["message"].as_str().unwrap().contains("seq 1"), "{}", fork.text);
    let late_fork = send(&server, "phone", PHONE, &Batch::new("phone", impostor.store.pending_sync(50).unwrap()[2..].to_vec()));
    assert_eq!((late_fork.status, late_fork.body["error"].as_str()), (409, Some("fork")), "{}", late_fork.text);
    assert_eq!(stored(&pg), before);

    let rest = send(&server, "phone", PHONE, &Batch::new("phone", all[2..].to_vec()));
    assert_eq!((rest.status, rest.body["stored"].as_u64()), (200, Some(3)), "{}", rest.text);
}

trait Mkdir {
    fn tap_mkdir(self) -> Self;
}
impl Mkdir for std::path::PathBuf {
    fn tap_mkdir(self) -> Self {
        std::fs::create_dir_all(&self).unwrap();
        self
    }
}

#[test]
fn bad_input_and_bad_credentials_get_a_json_4xx_naming_the_problem_and_write_nothing() {
    let pg = Pg::start();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&pg, dir.path());
    let phone = Device::new(dir.path(), "phone", PHONE, "2026-03-01T10:00:00Z");
    phone.decide("alice", "photos_media", Action::Grant, Source::Onboarding);
    phone.decide("alice", "device_contacts", Action::Grant, Source::Onboarding);
    let good = serde_json::to_value(phone.batch(50)).unwrap();
    let url = batches(&server, "phone");

    let mut edited = good.clone();
    edited["receipts"][1]["category"] = json!("usage_statistics");
    let mut rehashed: Batch = serde_json::from_value(good.clone()).unwrap();
    rehashed.receipts[1].action = Action::Withdraw;
    rehashed.receipts[1].content_hash = consentkit_core::chain::content_hash(&rehashed.receipts[1]);
    let mut unknown_top = good.clone();
    unknown_top["extra"] = json!(1);
    let mut unknown_receipt = good.clone();
    unknown_receipt["receipts"][0]["approved_by"] = json!("me");
    let mut wrong_type = good.clone();
    wrong_type["receipts"][0]["seq"] = json!("one");
    let mut bad_time = good.clone();
    bad_time["receipts"][0]["at"] = json!("yesterday");
    let mut other_device = good.clone();
    other_device["device"] = json!("tablet");
    let huge = format!("{{\"format\":\"consentkit-batch/1\",\"device\":\"phone\",\"receipts\":[],\"pad\":\"{}\"}}", "x".repeat(300_000));

    let cases: Vec<(&str, Reply, u16, &str, &str)> = vec![
        ("malformed JSON", post_raw(&url, Some(PHONE), b"{\"format\": "), 400, "malformed", "not valid JSON"),
        ("unknown top-level field", post(&url, PHONE, &unknown_top), 400, "malformed", "extra"),
        ("unknown receipt field", post(&url, PHONE, &unknown_receipt), 400, "malformed", "approved_by"),
        ("wrong type", post(&url, PHONE, &wrong_type), 400, "malformed", "receipts[0].seq"),
        ("bad time", post(&url, PHONE, &bad_time), 400, "malformed", "yesterday"),
        ("edited content", post(&url, PHONE, &edited), 422, "forged_receipt", "content_hash"),
        (
            "re-hashed content, old link",
            post(&url, PHONE, &serde_json::to_value(&rehashed).unwrap()),
            422,
            "forged_receipt",
            "SHA-256(prev_hash",
        ),
        ("batch for another device", post(&url, PHONE, &other_device), 422, "invalid", "tablet"),
        ("token of another device", post(&url, TABLET, &good), 403, "forbidden", "phone"),
        ("support may not ingest", post(&url, SUPPORT, &good), 403, "forbidden", "device"),
        ("too large", post_raw(&url, Some(PHONE), huge.as_bytes()), 413, "too_large", "262144"),
        ("no token", post_raw(&url, None, good.to_string().as_bytes()), 401, "unauthorized", "Authorization"),
        ("unknown token", post(&url, "nope", &good), 401, "unauthorized", "unknown token"),
        ("expired token", lookup(&server, "state", EXPIRED, json!({ "subject": "alice" })), 401, "unauthorized", "expired"),
        ("lookup unknown field", lookup(&server, "state", SUPPORT, json!({ "subject": "alice", "id": 1 })), 400, "malformed", "id"),
        ("lookup wrong type", lookup(&server, "state", SUPPORT, json!({ "subject": 42 })), 400, "malformed", "subject"),
        ("lookup empty subject", lookup(&server, "state", SUPPORT, json!({ "subject": "" })), 422, "invalid", "subject"),
        (
            "unknown feature",
            lookup(&server, "check", SUPPORT, json!({ "subject": "alice", "feature": "teleport" })),
            422,
            "invalid",
            "teleport",
        ),
        ("support may not export", lookup(&server, "export", SUPPORT, json!({ "subject": "alice" })), 403, "forbidden", "dpo"),
        ("support may not erase", lookup(&server, "erase", SUPPORT, json!({ "subject": "alice" })), 403, "forbidden", "dpo"),
        ("device may not read", lookup(&server, "state", PHONE, json!({ "subject": "alice" })), 403, "forbidden", "support"),
        ("support may not read the access log", get(&format!("{}/v1/access-log", server.url), SUPPORT), 403, "forbidden", "auditor"),
    ];
    for (what, reply, status, code, names) in cases {
        assert_eq!(reply.status, status, "{what}: {}", reply.text);
        assert_eq!(reply.body["error"].as_str(), Some(code), "{what}: {}", reply.text);
        let message = reply.body["message"].as_str().unwrap_or_default();
        assert!(message.contains(names), "{what}: the message should name '{names}': {message}");
        for leak in ["SELECT", "INSERT", "postgres", "panicked", "tokio", "src/"] {
            assert!(!reply.text.contains(leak), "{what}: leaks '{leak}': {}", reply.text);
        }
    }
    assert_eq!(stored(&pg), (0, 0, 0), "nothing was written");
    assert_eq!(pg.count("SELECT count(*) FROM access_log"), 0, "refused reads log nothing");
    let ok = post(&url, PHONE, &good);
    assert_eq!(ok.status, 200, "{}", ok.text);
}

fn statuses(reply: &Reply) -> Vec<(String, String, Option<String>)> {
    reply.body["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (c["id"].as_str().unwrap().to_string(), c["status"].as_str().unwrap().to_string(), c["decided_on"].as_str().map(String::from))
        })
        .collect()
}

fn status_of(reply: &Reply, category: &str) -> (String, Option<String>) {
    let s = statuses(reply).into_iter().find(|(c, _, _)| c == category).unwrap();
    (s.1, s.2)
}

#[test]
fn state_across_devices_is_the_latest_decision_and_a_tie_denies() {
    let pg = Pg::start();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&pg, dir.path());
    let phone = Device::new(dir.path(), "phone", PHONE, "2026-03-01T10:00:00Z");
    let tablet = Device::new(dir.path(), "tablet", TABLET, "2026-03-01T10:00:00Z");
    phone.decide("alice", "photos_media", Action::Grant, Source::Onboarding);
    tablet.at("2026-03-02T09:00:00Z");
    tablet.decide("alice", "photos_media", Action::Withdraw, Source::Settings);
    phone.at("2026-03-03T09:00:00Z");
    phone.decide("alice", "device_contacts", Action::Grant, Source::Settings);
    // The same millisecond on both devices: a grant on one, a refusal on the other.
    phone.at("2026-03-04T12:00:00Z");
    tablet.at("2026-03-04T12:00:00Z");
    phone.decide("alice", "usage_statistics", Action::Grant, Source::Settings);
    tablet.decide("alice", "usage_statistics", Action::Refuse, Source::Settings);
    tablet.decide("alice", "contact_information", Action::Object, Source::Settings);
    phone.decide("alice", "contact_information", Action::WithdrawObjection, Source::Settings);
    // Sync in the "wrong" order: the tablet first.
    tablet.sync_all(&server);
    phone.sync_all(&server);
    let now = json!({ "subject": "alice", "now": "2026-03-05T00:00:00Z" });
    let r = lookup(&server, "state", SUPPORT, now.clone());
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(status_of(&r, "photos_media"), ("withdrawn".into(), Some("tablet".into())), "the later withdrawal on the tablet wins");
    assert_eq!(status_of(&r, "device_contacts"), ("granted".into(), Some("phone".into())));
    assert_eq!(status_of(&r, "usage_statistics"), ("refused".into(), Some("tablet".into())), "tie: the refusal wins");
    assert_eq!(status_of(&r, "contact_information"), ("objected".into(), Some("tablet".into())), "tie: the objection wins");
    let devices: Vec<&str> = r.body["devices"].as_array().unwrap().iter().map(|d| d["device"].as_str().unwrap()).collect();
    assert_eq!(devices, ["phone", "tablet"]);
    // The tie rule does not depend on the order events arrived in.
    let pg2 = Pg::start();
    let dir2 = tempfile::tempdir().unwrap();
    let server2 = Server::start(&pg2, dir2.path());
    for (d, t) in [(&phone, PHONE), (&tablet, TABLET)] {
        let all = Batch::new(
            &d.name,
            d.store
                .chain_rows()
                .unwrap()
                .into_iter()
                .filter_map(|r| match r.content {
                    consentkit_core::chain::RowContent::Event(e) => Some(*e),
                    _ => None,
                })
                .collect(),
        );
        assert_eq!(send(&server2, &d.name, t, &all).status, 200);
    }
    let r2 = lookup(&server2, "state", SUPPORT, now);
    assert_eq!(statuses(&r2), statuses(&r));
}

#[test]
fn a_device_whose_clock_runs_ahead_cannot_outlast_a_later_withdrawal_on_another_device() {
    let pg = Pg::start();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&pg, dir.path());
    // The tablet's clock is set decades ahead (by mistake, or by whoever holds its token): its
    // grant says 2099. The core keeps stamping at or after that mark, so every event it sends
    // claims to be the latest.
    let tablet = Device::new(dir.path(), "tablet", TABLET, "2099-01-01T00:00:00Z");
    tablet.decide("alice", "photos_media", Action::Grant, Source::Onboarding);
    tablet.store.set_os_permission(consentkit_core::OsPermission::PHOTOS, consentkit_core::OsState::Granted).unwrap();
    tablet.sync_all(&server);
    let photos = || status_of(&lookup(&server, "state", SUPPORT, json!({ "subject": "alice" })), "photos_media");
    assert_eq!(photos().0, "granted");
    // After the server stored that grant, alice withdraws on her phone, whose clock is right.
    let phone = Device::new(dir.path(), "phone", PHONE, "2026-01-01T00:00:00Z");
    phone.clock.set(consentkit_core::Timestamp(wire::now().millis() + 1000));
    phone.decide("alice", "photos_media", Action::Withdraw, Source::Settings);
    phone.sync_all(&server);
    assert_eq!(photos(), ("withdrawn".into(), Some("phone".into())), "the withdrawal made after the grant reached the server wins");
    let check = lookup(&server, "check", SUPPORT, json!({ "subject": "alice", "feature": "photo_sharing", "device": "tablet" }));
    assert_eq!((check.status, check.body["allowed"].clone()), (200, json!(false)), "{}", check.text);
    // The timeline still shows what each device said, in the order the server applies it.
    let t = lookup(&server, "timeline", SUPPORT, json!({ "subject": "alice" }));
    let order: Vec<(&str, &str)> = t
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["category"] == json!("photos_media"))
        .map(|e| (e["device"].as_str().unwrap(), e["action"].as_str().unwrap()))
        .collect();
    assert_eq!(order, [("tablet", "grant"), ("phone", "withdraw")], "{}", t.text);
}

#[test]
fn a_grant_sealed_as_the_core_never_records_it_gives_no_allow_on_the_server() {
    use consentkit_core::chain::{content_hash, link_hash, GENESIS};
    let pg = Pg::start();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&pg, dir.path());
    // Grants made in 2020: under the catalog's 13-month lifetime they ended in 2021.
    let phone = Device::new(dir.path(), "phone", PHONE, "2020-03-01T10:00:00Z");
    phone.decide("alice", "photos_media", Action::Grant, Source::Onboarding);
    phone.decide("alice", "usage_statistics", Action::Grant, Source::Onboarding);
    phone.decide("alice", "device_contacts", Action::Grant, Source::Onboarding);
    phone.decide("bob", "photos_media", Action::Grant, Source::Onboarding);
    // Whoever holds the phone's token reseals them: a lifetime to 9999, a grant "by support"
    // (the core refuses both), a grant with no end at all. The hashes are right again.
    let mut receipts = phone.store.pending_sync(10).unwrap();
    receipts[0].valid_until = Some(consentkit_core::Timestamp::parse("9999-01-01T00:00:00Z").unwrap());
    receipts[1].source = Source::Support;
    receipts[1].valid_until = None;
    receipts[2].valid_until = None;
    let mut prev = GENESIS.to_string();
    for r in receipts.iter_mut() {
        r.prev_hash = prev.clone();
        r.content_hash = content_hash(r);
        r.hash = link_hash(&r.prev_hash, &r.content_hash);
        prev = r.hash.clone();
    }
    let sent = send(&server, "phone", PHONE, &Batch::new("phone", receipts));
    assert_eq!(sent.status, 200, "{}", sent.text);
    let state = lookup(&server, "state", SUPPORT, json!({ "subject": "alice" }));
    assert_eq!(status_of(&state, "photos_media").0, "expired", "a sealed lifetime past the catalog's: {}", state.text);
    assert_eq!(status_of(&state, "usage_statistics").0, "not_asked", "a grant by support counts for nothing: {}", state.text);
    assert_eq!(status_of(&state, "device_contacts").0, "expired", "a grant sealed without an end: {}", state.text);
    assert_eq!(status_of(&lookup(&server, "state", SUPPORT, json!({ "subject": "bob" })), "photos_media").0, "expired", "honest");
    let check = lookup(&server, "check", SUPPORT, json!({ "subject": "alice", "feature": "photo_sharing" }));
    assert_eq!(check.body["allowed"], json!(false), "{}", check.text);
    // The export still carries the receipts as sealed (they verify), beside the state as read.
    let export = lookup(&server, "export", DPO, json!({ "subject": "alice" }));
    let history = export.body["devices"][0]["history"].as_array().unwrap();
    assert_eq!(history[0]["valid_until"], json!("9999-01-01T00:00:00Z"));
    let statuses: Vec<&str> = export.body["state"].as_array().unwrap().iter().map(|s| s["status"].as_str().unwrap()).collect();
    assert!(!statuses.contains(&"granted"), "{}", export.text);

    // A clock ahead does not stretch a lifetime either: a grant dated 2099 and received today
    // ends 13 months after today.
    let tablet = Device::new(dir.path(), "tablet", TABLET, "2099-01-01T00:00:00Z");
    tablet.decide("carol", "photos_media", Action::Grant, Source::Onboarding);
    tablet.sync_all(&server);
    assert_eq!(status_of(&lookup(&server, "state", SUPPORT, json!({ "subject": "carol" })), "photos_media").0, "granted");
    let later = wire::now().millis() + 400 * 24 * 3600 * 1000;
    let at = consentkit_core::Timestamp(later).to_string();
    let r = lookup(&server, "state", SUPPORT, json!({ "subject": "carol", "now": at }));
    assert_eq!(status_of(&r, "photos_media").0, "expired", "{}", r.text);
}

#[test]
fn a_device_store_holding_ids_an_older_version_accepted_syncs_and_they_can_be_looked_up_and_erased() {
    use consentkit_core::chain::{content_hash, link_hash, GENESIS};
    let pg = Pg::start();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&pg, dir.path());
    let phone = Device::new(dir.path(), "phone", PHONE, "2026-03-01T10:00:00Z");
    phone.decide("alice", "photos_media", Action::Grant, Source::Onboarding);
    phone.decide("old1", "usage_statistics", Action::Grant, Source::Onboarding);
    phone.decide("old2", "usage_statistics", Action::Grant, Source::Onboarding);
    phone.decide("bob", "photos_media", Action::Grant, Source::Onboarding);
    phone.decide("bob", "photos_media", Action::Withdraw, Source::Settings);
    // As an older version's store holds them: ids the new input rule refuses, sealed in its chain.
    let legacy = [" alice", "carol\u{200b}"];
    let mut receipts = phone.store.pending_sync(10).unwrap();
    receipts[1].subject = Some(legacy[0].into());
    receipts[2].subject = Some(legacy[1].into());
    let mut prev = GENESIS.to_string();
    for r in receipts.iter_mut() {
        r.prev_hash = prev.clone();
        r.content_hash = content_hash(r);
        r.hash = link_hash(&r.prev_hash, &r.content_hash);
        prev = r.hash.clone();
    }
    let sent = send(&server, "phone", PHONE, &Batch::new("phone", receipts));
    assert_eq!((sent.status, sent.body["stored"].as_u64()), (200, Some(5)), "{}", sent.text);
    let bob = lookup(&server, "state", SUPPORT, json!({ "subject": "bob" }));
    assert_eq!(status_of(&bob, "photos_media").0, "withdrawn", "the withdrawal after them arrived: {}", bob.text);
    for id in legacy {
        let state = lookup(&server, "state", SUPPORT, json!({ "subject": id }));
        assert_eq!(state.status, 200, "{}", state.text);
        assert_eq!(status_of(&state, "usage_statistics").0, "granted", "{id:?}: {}", state.text);
        let check = lookup(&server, "check", SUPPORT, json!({ "subject": id, "feature": "usage_analytics" }));
        assert_eq!((check.status, check.body["allowed"].clone()), (200, json!(true)), "{id:?}: {}", check.text);
        let export = lookup(&server, "export", DPO, json!({ "subject": id }));
        assert_eq!(export.status, 200, "{}", export.text);
        assert_eq!(export.body["devices"][0]["history"].as_array().unwrap().len(), 1, "{id:?}: {}", export.text);
    }
    let alice = lookup(&server, "state", SUPPORT, json!({ "subject": "alice" }));
    assert_eq!(status_of(&alice, "usage_statistics").0, "not_asked", "the real alice is someone else: {}", alice.text);
    let e = lookup(&server, "erase", DPO, json!({ "subject": legacy[0] }));
    assert_eq!((e.status, e.body["erased_events"].clone()), (200, json!(1)), "{}", e.text);
    let state = lookup(&server, "state", SUPPORT, json!({ "subject": legacy[0] }));
    assert_eq!(status_of(&state, "usage_statistics").0, "not_asked", "erased: {}", state.text);
    // A control character is still refused.
    let bad = lookup(&server, "state", SUPPORT, json!({ "subject": "a\u{1b}b" }));
    assert_eq!(bad.status, 422, "{}", bad.text);
}

#[test]
fn a_now_set_back_in_a_query_does_not_revive_an_expired_grant() {
    let pg = Pg::start();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&pg, dir.path());
    // A grant of 2020: under the catalog's 13-month lifetime it ended in 2021.
    let phone = Device::new(dir.path(), "phone", PHONE, "2020-03-01T10:00:00Z");
    phone.decide("alice", "photos_media", Action::Grant, Source::Onboarding);
    phone.store.set_os_permission(consentkit_core::OsPermission::PHOTOS, consentkit_core::OsState::Granted).unwrap();
    phone.sync_all(&server);
    assert_eq!(status_of(&lookup(&server, "state", SUPPORT, json!({ "subject": "alice" })), "photos_media").0, "expired");
    // `now` (consentkit --now) set back to when the grant was in force: as on a device, whose
    // expiry is never evaluated before the highest clock reading it has seen, the answer is
    // the one of the server's time, not an allow.
    let back = json!({ "subject": "alice", "feature": "photo_sharing", "now": "2020-06-01T00:00:00Z" });
    let check = lookup(&server, "check", SUPPORT, back);
    assert_eq!(check.status, 200, "{}", check.text);
    assert_eq!(check.body["allowed"], json!(false), "{}", check.text);
    assert!(check.text.contains("consent_expired"), "{}", check.text);
    let state = lookup(&server, "state", SUPPORT, json!({ "subject": "alice", "now": "2020-06-01T00:00:00Z" }));
    assert_eq!(status_of(&state, "photos_media").0, "expired", "{}", state.text);
    // A time ahead still asks "and then?".
    let ahead = json!({ "subject": "alice", "feature": "photo_sharing", "now": "2099-01-01T00:00:00Z" });
    assert_eq!(lookup(&server, "check", SUPPORT, ahead).body["allowed"], json!(false));
}

#[test]
fn one_device_answers_exactly_as_the_local_store_and_check_gives_every_reason_per_device() {
    let pg = Pg::start();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&pg, dir.path());
    let phone = Device::new(dir.path(), "phone", PHONE, "2026-03-01T10:00:00Z");
    phone.decide("alice", "photos_media", Action::Grant, Source::Onboarding);
    phone.decide("alice", "usage_statistics", Action::Refuse, Source::Onboarding);
    phone.store.set_os_permission(consentkit_core::OsPermission::PHOTOS, consentkit_core::OsState::Granted).unwrap();
    phone.store.set_under_age("carol", true, Source::Support).unwrap();
    phone.decide("carol", "device_contacts", Action::Grant, Source::Guardian);
    phone.sync_all(&server);
    let now = "2026-03-02T00:00:00Z";
    phone.at(now);
    for subject in ["alice", "carol", "nobody"] {
        let r = lookup(&server, "state", SUPPORT, json!({ "subject": subject, "now": now }));
        let local = phone.store.statuses(subject).unwrap();
        let remote: Vec<(String, String)> = statuses(&r).into_iter().map(|(c, s, _)| (c, s)).collect();
        let local: Vec<(String, String)> = local.iter().map(|s| (s.category.clone(), s.status.to_string())).collect();
        assert_eq!(remote, local, "{subject}");
        if subject == "nobody" {
            // No device of this subject is known to the server: its OS state is unknown, so denied.
            let r = lookup(&server, "check", SUPPORT, json!({ "subject": subject, "feature": "photo_sharing", "now": now }));
            assert_eq!(r.body["reasons"][1], json!({ "code": "os_permission_not_determined", "category": "photos_media" }));
            continue;
        }
        for feature in phone.store.policy().features.iter().filter(|f| !f.per_item) {
            let d = phone.store.check(subject, &feature.id, None).unwrap();
            let r = lookup(&server, "check", SUPPORT, json!({ "subject": subject, "feature": feature.id, "now": now }));
            assert_eq!(r.status, 200, "{}", r.text);
            assert_eq!(r.body["allowed"].as_bool(), Some(d.allowed), "{subject} {}", feature.id);
            let reasons: Vec<Value> = d.reasons.iter().map(|x| json!({ "code": x.code, "category": x.category })).collect();
            assert_eq!(r.body["reasons"], json!(reasons), "{subject} {}", feature.id);
        }
    }
    // A second device without the OS permission: denied overall, with the per-device answers.
    let tablet = Device::new(dir.path(), "tablet", TABLET, "2026-03-01T11:00:00Z");
    tablet.store.set_os_permission(consentkit_core::OsPermission::PHOTOS, consentkit_core::OsState::Denied).unwrap();
    tablet.decide("alice", "device_contacts", Action::Refuse, Source::Onboarding);
    tablet.sync_all(&server);
    let r = lookup(&server, "check", SUPPORT, json!({ "subject": "alice", "feature": "photo_sharing", "now": now }));
    assert_eq!(r.body["allowed"], json!(false), "{}", r.text);
    assert_eq!(r.body["reasons"], json!([{ "code": "os_permission_denied", "category": "photos_media" }]));
    let per: Vec<(String, bool)> = r.body["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["device"].as_str().unwrap().into(), d["allowed"].as_bool().unwrap()))
        .collect();
    assert_eq!(per, [("phone".to_string(), true), ("tablet".to_string(), false)]);
    let on_phone =
        lookup(&server, "check", SUPPORT, json!({ "subject": "alice", "feature": "photo_sharing", "device": "phone", "now": now }));
    assert_eq!(on_phone.body["allowed"], json!(true), "{}", on_phone.text);

    // The timeline holds both devices' events, with OS changes, in time order.
    let t = lookup(&server, "timeline", SUPPORT, json!({ "subject": "alice" }));
    let rows: Vec<(String, String)> =
        t.body.as_array().unwrap().iter().map(|e| (e["device"].as_str().unwrap().into(), e["action"].as_str().unwrap().into())).collect();
    assert_eq!(rows.len(), 5, "{}", t.text);
    assert!(rows.contains(&("tablet".into(), "os_permission".into())) && rows.contains(&("phone".into(), "grant".into())));
    let times: Vec<&str> = t.body.as_array().unwrap().iter().map(|e| e["at"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");

    // Export: every receipt of every device verifies with the core's encoding.
    let e = lookup(&server, "export", DPO, json!({ "subject": "alice" }));
    assert_eq!(e.status, 200, "{}", e.text);
    let mut n = 0;
    for d in e.body["devices"].as_array().unwrap() {
        for r in d["history"].as_array().unwrap() {
            let r: Receipt = serde_json::from_value(r.clone()).unwrap();
            assert!(receipt_is_sealed(&r) && r.subject.as_deref() == Some("alice"));
            n += 1;
        }
    }
    assert_eq!(n, 3);
}

#[test]
fn erasure_deletes_every_row_tells_each_device_and_keeps_only_a_pseudonym() {
    let pg = Pg::start();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&pg, dir.path());
    let phone = Device::new(dir.path(), "phone", PHONE, "2026-03-01T10:00:00Z");
    let tablet = Device::new(dir.path(), "tablet", TABLET, "2026-03-01T10:00:00Z");
    phone.decide("alice", "photos_media", Action::Grant, Source::Onboarding);
    phone.decide("bob", "photos_media", Action::Grant, Source::Onboarding);
    tablet.decide("alice", "device_contacts", Action::Grant, Source::Onboarding);
    phone.sync_all(&server);
    let tablet_unsent = tablet.batch(50);
    tablet.decide("alice", "usage_statistics", Action::Grant, Source::Onboarding);
    let sent = send(&server, "tablet", TABLET, &tablet_unsent);
    assert_eq!(sent.status, 200);
    // The tablet never got the reply (no ack): it will resend.

    let e = lookup(&server, "erase", DPO, json!({ "subject": "alice" }));
    assert_eq!(e.status, 200, "{}", e.text);
    assert_eq!(e.body["erased_events"], json!(2));
    assert_eq!(e.body["receipt"]["devices"], json!(["phone", "tablet"]));
    let state = lookup(&server, "state", SUPPORT, json!({ "subject": "alice" }));
    assert!(statuses(&state).iter().all(|(_, s, _)| s == "not_asked" || s == "not_required"), "{}", state.text);
    assert_eq!(pg.count("SELECT count(*) FROM erasures"), 1);
    assert_eq!(events(&pg), 1, "only bob's event is left");
    assert_eq!(pg.count("SELECT count(*) FROM subject_devices"), 1, "only bob's device row is left");
    assert_eq!(
        pg.count("SELECT count(*) FROM device_chain WHERE event_subject_key IS NOT NULL"),
        1,
        "the chain links keep their hashes but only bob's still names a subject"
    );

    // The tablet resends its unacknowledged batch and its newer event: told, nothing stored again.
    let r = tablet.sync_once(&server, 50);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], json!("subject_erased"));
    assert_eq!(r.body["erased_subjects"], json!(["alice"]));
    assert_eq!((r.body["duplicates"].as_u64(), r.body["suppressed"].as_u64(), r.body["stored"].as_u64()), (Some(1), Some(1), Some(0)));
    assert_eq!(events(&pg), 1);
    // The SDK erases locally, and its erasure record syncs like any event.
    tablet.store.erase("alice", Source::Support).unwrap();
    let r = tablet.sync_once(&server, 50);
    assert_eq!((r.status, r.body["status"].as_str(), r.body["stored"].as_u64()), (200, Some("stored"), Some(1)), "{}", r.text);
    // The phone is told too, the next time it syncs anything of alice's made before the erasure.
    phone.decide("alice", "photos_media", Action::Withdraw, Source::Settings);
    let r = phone.sync_once(&server, 50);
    assert_eq!((r.status, r.body["status"].as_str(), r.body["suppressed"].as_u64()), (200, Some("subject_erased"), Some(1)), "{}", r.text);
    // A replay of the old batch still stores nothing of alice.
    let replay = send(&server, "tablet", TABLET, &tablet_unsent);
    assert_eq!((replay.body["status"].as_str(), replay.body["stored"].as_u64()), (Some("subject_erased"), Some(0)));

    // Minimisation: the identifier is nowhere in the database or the server's log.
    let dump = std::process::Command::new(pg_bin().join("pg_dump"))
        .args(["-h", pg.socket_dir().to_str().unwrap(), "-p", &pg.port.to_string(), "-U", "postgres", "--data-only", "consentkit"])
        .output()
        .unwrap();
    let dump = String::from_utf8_lossy(&dump.stdout);
    assert!(dump.contains("COPY public.events"), "the dump is real");
    assert!(!dump.contains("alice") && !dump.contains("bob"), "a subject identifier is stored");
    let log = server.log();
    assert!(log.contains("/v1/subjects/erase"), "the log is real: {log}");
    assert!(!log.contains("alice") && !log.contains("bob"), "a subject identifier is logged: {log}");
}

#[test]
fn events_made_before_an_erasure_on_a_device_whose_clock_runs_ahead_are_not_stored_again() {
    let AliceGrantedOnPhone { pg: _pg, dir, server, phone: _phone } = AliceGrantedOnPhone::start();
    // The tablet's clock is years ahead; it records alice's grant before the erasure but has not
    // synced it yet.
    let tablet = Device::new(dir.path(), "tablet", TABLET, "2099-01-01T00:00:00Z");
    tablet.decide("alice", "device_contacts", Action::Grant, Source::Onboarding);
    tablet.decide("bob", "photos_media", Action::Grant, Source::Onboarding);
    let e = lookup(&server, "erase", DPO, json!({ "subject": "alice" }));
    assert_eq!(e.status, 200, "{}", e.text);
    // Its time says "after the erasure", but no event can have been made after the moment the
    // server received it: alice's grant is not stored again, and the tablet is told.
    let r = tablet.sync_once(&server, 50);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!((r.body["status"].as_str(), r.body["erased_subjects"].clone()), (Some("subject_erased"), json!(["alice"])), "{}", r.text);
    assert_eq!((r.body["suppressed"].as_u64(), r.body["stored"].as_u64()), (Some(1), Some(1)), "{}", r.text);
    let state = lookup(&server, "state", SUPPORT, json!({ "subject": "alice" }));
    assert!(statuses(&state).iter().all(|(_, s, _)| s == "not_asked" || s == "not_required"), "alice came back: {}", state.text);
    assert_eq!(status_of(&lookup(&server, "state", SUPPORT, json!({ "subject": "bob" })), "photos_media").0, "granted");
}

#[test]
fn at_the_most_verbose_level_the_server_logs_no_subject_scope_or_token() {
    let pg = Pg::start();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(&pg, dir.path(), json!({}));
    let server = Server::start_with_env(&config, &[("CONSENTKIT_LOG", "trace")]);
    let (subject, scope) = ("alice-qz7k@example.com", "contact-qz7k-0042");
    let phone = Device::new(dir.path(), "phone", PHONE, "2026-03-01T10:00:00Z");
    let grant = consentkit_core::DecisionInput::new(subject, "device_contacts", Action::Grant, Source::Onboarding).with_scope(scope);
    phone.store.record(&grant).unwrap();
    phone.decide(subject, "photos_media", Action::Grant, Source::Onboarding);
    phone.sync_all(&server);
    for (what, token) in [("state", SUPPORT), ("timeline", SUPPORT), ("export", DPO)] {
        assert_eq!(lookup(&server, what, token, json!({ "subject": subject })).status, 200);
    }
    let check = json!({ "subject": subject, "feature": "contact_sync", "scope": scope });
    assert_eq!(lookup(&server, "check", SUPPORT, check).status, 200);
    // The console: sign in (the token in a form), look the subject up (the identifier in a form).
    let no_redirect = |r: ureq::RequestBuilder<ureq::typestate::WithBody>| r.config().max_redirects(0).build();
    let login = no_redirect(agent().post(&format!("{}/console/login", server.url)))
        .header("content-type", "application/x-www-form-urlencoded")
        .send(format!("token={SUPPORT}"))
        .unwrap();
    assert_eq!(login.status().as_u16(), 303);
    let cookie = login.headers().get("set-cookie").unwrap().to_str().unwrap().split(';').next().unwrap().to_string();
    let page = agent()
        .get(&format!("{}/console/lookup", server.url))
        .header("cookie", &cookie)
        .call()
        .unwrap()
        .into_body()
        .read_to_string()
        .unwrap();
    let csrf = page.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let found = no_redirect(agent().post(&format!("{}/console/lookup", server.url)))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .send(format!("csrf={csrf}&subject={}", subject.replace('@', "%40")))
        .unwrap();
    assert_eq!(found.status().as_u16(), 303);
    let handle_page = found.headers().get("location").unwrap().to_str().unwrap().to_string();
    let subject_page = agent().get(&format!("{}{handle_page}", server.url)).header("cookie", &cookie).call().unwrap();
    assert_eq!(subject_page.status().as_u16(), 200);
    // Someone puts the identifier into a URL by mistake (the README's "never in a URL"): a 404,
    // and the request line names the route, not what was typed.
    assert_eq!(get(&format!("{}/v1/subjects/{subject}", server.url), SUPPORT).status, 404);
    assert_eq!(get(&format!("{}/v1/devices/{subject}/erasures", server.url), PHONE).status, 403);
    std::thread::sleep(std::time::Duration::from_millis(200)); // the log is written by the server
    let log = server.log();
    assert!(log.contains("TRACE") || log.contains("DEBUG"), "the level is really the most verbose");
    assert!(log.contains("/v1/devices/{device}/batches") && log.contains("status=404"), "request lines name the route: {log}");
    for secret in [subject, "alice-qz7k", scope, SUPPORT, DPO, PHONE] {
        let line = log.lines().find(|l| l.contains(secret));
        assert!(line.is_none(), "'{secret}' is in the server's log: {}", line.unwrap_or_default());
    }
}

#[test]
fn every_support_read_and_erasure_appends_a_verifiable_access_log_line() {
    let AliceGrantedOnPhone { pg, dir: _dir, server, phone: _phone } = AliceGrantedOnPhone::start();
    let alice = json!({ "subject": "alice" });
    assert_eq!(lookup(&server, "state", SUPPORT, alice.clone()).status, 200);
    assert_eq!(lookup(&server, "check", SUPPORT, json!({ "subject": "alice", "feature": "photo_sharing" })).status, 200);
    assert_eq!(lookup(&server, "timeline", SUPPORT, alice.clone()).status, 200);
    assert_eq!(lookup(&server, "state", SUPPORT, json!({ "subject": "bob" })).status, 200);
    assert_eq!(lookup(&server, "export", DPO, alice.clone()).status, 200);
    assert_eq!(lookup(&server, "erase", DPO, alice.clone()).status, 200);
    let log = get(&format!("{}/v1/access-log", server.url), AUDITOR);
    assert_eq!(log.status, 200, "{}", log.text);
    assert_eq!(log.body["chain"]["intact"], json!(true), "{}", log.text);
    // Six reads and erasures on two subjects' chains, and this read of the log on the auditor's.
    assert_eq!((log.body["chain"]["lines"].as_u64(), log.body["chain"]["chains"].as_u64()), (Some(7), Some(3)));
    let mut actions: Vec<(String, String)> = log.body["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["actor"].as_str().unwrap().into(), l["action"].as_str().unwrap().into()))
        .collect();
    actions.sort();
    let expected = [
        ("aude (auditor)", "access_log"),
        ("dora (dpo)", "erase"),
        ("dora (dpo)", "export"),
        ("sam (support)", "check"),
        ("sam (support)", "state"),
        ("sam (support)", "state"),
        ("sam (support)", "timeline"),
    ];
    assert_eq!(actions, expected.map(|(a, b)| (a.to_string(), b.to_string())));
    assert!(!log.text.contains("alice"), "the log holds pseudonyms only");

    // No read without its line: the read role cannot write the log any other way, and edits show.
    assert!(pg.try_psql("consentkit_support", "UPDATE access_log SET actor = 'x'").unwrap_err().contains("permission denied"));
    assert!(pg.try_psql("consentkit_dpo", "DELETE FROM access_log").unwrap_err().contains("permission denied"));
    pg.psql("postgres", "UPDATE access_log SET actor = 'someone else' WHERE action = 'check'");
    let log = get(&format!("{}/v1/access-log", server.url), AUDITOR);
    assert_eq!(log.body["chain"]["intact"], json!(false));
    assert!(log.body["chain"]["problem"].as_str().unwrap().contains("edited"), "{}", log.text);
    pg.psql("postgres", "DELETE FROM access_log WHERE action = 'check'");
    let log = get(&format!("{}/v1/access-log", server.url), AUDITOR);
    assert!(log.body["chain"]["problem"].as_str().unwrap().contains("deleted"), "{}", log.text);
}

#[test]
fn a_refused_read_that_still_tells_something_about_the_subject_has_its_access_log_line() {
    let AliceGrantedOnPhone { pg: _pg, dir: _dir, server, phone: _phone } = AliceGrantedOnPhone::start();
    // "Does alice use a tablet?": the refusal answers it (she has no events from one), so the
    // probe is a read of alice's data like any other and needs its line.
    let probe = lookup(&server, "check", SUPPORT, json!({ "subject": "alice", "feature": "photo_sharing", "device": "tablet" }));
    assert_eq!(probe.status, 422, "{}", probe.text);
    assert!(probe.text.contains("no events from device 'tablet'"), "{}", probe.text);
    let log = get(&format!("{}/v1/access-log", server.url), AUDITOR);
    assert_eq!(log.body["chain"]["intact"], json!(true), "{}", log.text);
    let lines: Vec<(&str, &str, &str)> = log.body["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["action"] != "access_log")
        .map(|l| (l["actor"].as_str().unwrap(), l["action"].as_str().unwrap(), l["detail"].as_str().unwrap()))
        .collect();
    assert_eq!(lines.len(), 1, "{}", log.text);
    assert_eq!((lines[0].0, lines[0].1), ("sam (support)", "check"), "{}", log.text);
    assert!(
        lines[0].2.contains("tablet") && lines[0].2.contains("invalid"),
        "the line says what was asked and that it was refused: {}",
        lines[0].2
    );
    // A request refused before any data is read (no feature, no such feature) says nothing about alice.
    for body in [json!({ "subject": "alice" }), json!({ "subject": "alice", "feature": "teleport" })] {
        assert_eq!(lookup(&server, "check", SUPPORT, body).status, 422);
    }
    let log = get(&format!("{}/v1/access-log", server.url), AUDITOR);
    let reads = log.body["lines"].as_array().unwrap().iter().filter(|l| l["action"] != "access_log").count();
    assert_eq!(reads, 1, "{}", log.text);
}

#[test]
fn reading_the_access_log_is_itself_an_audited_access_with_its_own_line() {
    let pg = Pg::start();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&pg, dir.path());
    let url = format!("{}/v1/access-log", server.url);
    let before = consentkit_server::wire::now();
    let first = get(&url, AUDITOR);
    assert_eq!(first.status, 200, "{}", first.text);
    // The answer already holds the line of the read that produced it (committed first).
    let lines = first.body["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 1, "{}", first.text);
    let line = &lines[0];
    assert_eq!(
        (line["actor"].as_str(), line["role"].as_str(), line["action"].as_str()),
        (Some("aude (auditor)"), Some("auditor"), Some("access_log")),
        "{line}"
    );
    assert!(line["detail"].as_str().unwrap().contains("all_lines"), "what was asked: {line}");
    let at = consentkit_core::Timestamp::parse(line["at"].as_str().unwrap()).unwrap();
    assert!(at >= before && at <= consentkit_server::wire::now(), "when: {at}");
    assert_eq!(first.body["chain"]["intact"], json!(true));
    // Each read adds its line to the reader's chain, which verifies like every other.
    let second = get(&url, AUDITOR);
    let reads: Vec<i64> = second.body["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["action"] == "access_log")
        .map(|l| l["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(reads, [1, 2], "{}", second.text);
    assert_eq!((second.body["chain"]["intact"].as_bool(), second.body["chain"]["chains"].as_u64()), (Some(true), Some(1)));
    assert_eq!(pg.count("SELECT count(*) FROM access_log WHERE action = 'access_log'"), 2);
    // A refused read of the log (not an auditor) reads nothing and so logs nothing.
    assert_eq!(get(&url, SUPPORT).status, 403);
    assert_eq!(pg.count("SELECT count(*) FROM access_log"), 2);
}

#[test]
fn database_roles_refuse_what_the_server_role_must_never_do() {
    let AliceGrantedOnPhone { pg, dir: _dir, server: _server, phone: _phone } = AliceGrantedOnPhone::start();
    for (role, sql) in [
        ("consentkit_ingest", "UPDATE events SET action = 'withdraw'"),
        ("consentkit_ingest", "DELETE FROM events"),
        ("consentkit_ingest", "TRUNCATE events"),
        ("consentkit_ingest", "UPDATE device_chain SET hash = 'x'"),
        ("consentkit_ingest", "DELETE FROM erasures"),
        ("consentkit_support", "INSERT INTO events SELECT * FROM events"),
        ("consentkit_support", "DELETE FROM events"),
        ("consentkit_dpo", "UPDATE events SET action = 'grant'"),
        ("consentkit_auditor", "SELECT count(*) FROM events"),
        ("consentkit_auditor", "INSERT INTO access_log SELECT * FROM access_log"),
    ] {
        let err = pg.try_psql(role, sql).unwrap_err();
        assert!(err.contains("permission denied"), "{role}: {sql}: {err}");
    }
    assert_eq!(events(&pg), 1);
    assert_eq!(pg.psql("consentkit_ingest", "SELECT count(*) FROM events"), "1", "the ingest role still reads and inserts");
}

#[test]
fn events_erased_on_the_device_before_sync_leave_a_gap_its_erasure_record_claims() {
    let pg = Pg::start();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&pg, dir.path());
    let phone = Device::new(dir.path(), "phone", PHONE, "2026-03-01T10:00:00Z");
    phone.decide("alice", "photos_media", Action::Grant, Source::Onboarding);
    phone.decide("alice", "usage_statistics", Action::Grant, Source::Onboarding);
    phone.decide("bob", "photos_media", Action::Grant, Source::Onboarding);
    phone.store.erase("alice", Source::Settings).unwrap();
    let pending = phone.store.pending_sync(50).unwrap();
    assert_eq!(pending.iter().map(|r| r.seq).collect::<Vec<_>>(), [3, 4], "the outbox skips the erased events");
    // Without its erasure record the gap is refused; with it, accepted.
    let alone = send(&server, "phone", PHONE, &Batch::new("phone", pending[..1].to_vec()));
    assert_eq!(
        (alone.status, alone.body["error"].as_str(), alone.body["expected_seq"].as_u64()),
        (409, Some("gap"), Some(1)),
        "{}",
        alone.text
    );
    let r = phone.sync_once(&server, 50);
    assert_eq!((r.status, r.body["stored"].as_u64()), (200, Some(2)), "{}", r.text);
    assert_eq!(pg.count("SELECT count(*) FROM device_chain"), 2);
    let bob = lookup(&server, "state", SUPPORT, json!({ "subject": "bob" }));
    assert_eq!(status_of(&bob, "photos_media").0, "granted");
    let alice = lookup(&server, "state", SUPPORT, json!({ "subject": "alice" }));
    assert_eq!(status_of(&alice, "photos_media").0, "not_asked");
}

#[test]
fn an_erasure_made_on_the_device_removes_that_devices_copies_on_the_server_once_synced() {
    let pg = Pg::start();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&pg, dir.path());
    let phone = Device::new(dir.path(), "phone", PHONE, "2026-03-01T10:00:00Z");
    let tablet = Device::new(dir.path(), "tablet", TABLET, "2026-03-01T11:00:00Z");
    phone.decide("alice", "photos_media", Action::Grant, Source::Onboarding);
    phone.decide("alice", "usage_statistics", Action::Grant, Source::Onboarding);
    phone.decide("bob", "photos_media", Action::Grant, Source::Onboarding);
    tablet.decide("carol", "device_contacts", Action::Grant, Source::Onboarding);
    phone.sync_all(&server);
    tablet.sync_all(&server);
    let subject_events = || pg.count("SELECT count(*) FROM events WHERE has_subject");
    assert_eq!(subject_events(), 4);
    assert_eq!(status_of(&lookup(&server, "state", SUPPORT, json!({ "subject": "alice" })), "photos_media").0, "granted");

    // alice (on the phone only) erases her data in the app: its erasure record, once synced,
    // deletes the phone's copies of her events on the server in the same transaction; bob's and
    // the tablet's stay.
    let report = phone.store.erase("alice", Source::Settings).unwrap();
    assert_eq!(report.erased_events, 2);
    let r = phone.sync_once(&server, 50);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!((r.body["stored"].as_u64(), r.body["erased_on_server"].as_u64()), (Some(1), Some(2)), "{}", r.text);
    assert_eq!(subject_events(), 2, "bob's event and the tablet's event of carol are left");
    let alice = lookup(&server, "state", SUPPORT, json!({ "subject": "alice" }));
    assert_eq!(status_of(&alice, "photos_media").0, "not_asked", "{}", alice.text);
    assert_eq!(status_of(&lookup(&server, "state", SUPPORT, json!({ "subject": "carol" })), "device_contacts").0, "granted");
    assert_eq!(status_of(&lookup(&server, "state", SUPPORT, json!({ "subject": "bob" })), "photos_media").0, "granted");
    assert_eq!(pg.count("SELECT count(*) FROM events WHERE has_subject AND device = 'phone'"), 1, "only bob's is left of the phone's");
    assert_eq!(pg.count("SELECT count(*) FROM subject_devices WHERE device = 'phone'"), 1, "alice is no longer listed on the phone");
    // The erasure record itself stays (the phone's own chain), and the chain still verifies on sync.
    assert_eq!(pg.count("SELECT count(*) FROM device_chain WHERE device = 'phone'"), 4);
    phone.decide("bob", "usage_statistics", Action::Grant, Source::Settings);
    let next = phone.sync_once(&server, 50);
    assert_eq!(
        (next.status, next.body["stored"].as_u64(), next.body["erased_on_server"].as_u64()),
        (200, Some(1), Some(0)),
        "{}",
        next.text
    );

    // The ingest role still cannot delete events by itself: only through the device-erase function,
    // and that only removes what a device's own erasure record lists.
    let err = pg.try_psql("consentkit_ingest", "DELETE FROM events").unwrap_err();
    assert!(err.contains("permission denied"), "{err}");
    let tablet_key = pg.psql("postgres", "SELECT subject_key FROM device_heads WHERE device = 'tablet'");
    for seq in [0, 1, 2, 99] {
        let erased = pg.psql("consentkit_ingest", &format!("SELECT consentkit_device_erase('{tablet_key}', 'tablet', {seq})"));
        assert_eq!(erased, "0", "seq {seq} of the tablet is no stored erasure record: nothing is deleted");
    }
    assert_eq!(subject_events(), 3);
}

#[test]
fn a_server_erasure_reaches_every_device_that_had_synced_the_subject_even_with_nothing_of_it_to_send() {
    let pg = Pg::start();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&pg, dir.path());
    // Clocks after the server's: nothing these devices send is "made before the erasure", so only
    // the erasure notices can tell them.
    let phone = Device::new(dir.path(), "phone", PHONE, "2030-01-01T10:00:00Z");
    let tablet = Device::new(dir.path(), "tablet", TABLET, "2030-01-01T10:00:00Z");
    phone.decide("alice", "photos_media", Action::Grant, Source::Onboarding);
    phone.decide("alice", "usage_statistics", Action::Grant, Source::Onboarding);
    tablet.decide("alice", "device_contacts", Action::Grant, Source::Onboarding);
    assert!(phone.sync_as_app(&server).is_empty());
    assert!(tablet.sync_as_app(&server).is_empty());
    let allowed = |d: &Device, feature: &str| d.store.check("alice", feature, None).unwrap().allowed;
    phone.store.set_os_permission(consentkit_core::OsPermission::PHOTOS, consentkit_core::OsState::Granted).unwrap();
    assert!(allowed(&phone, "photo_sharing"), "before the erasure the phone allows photo sharing");

    let e = lookup(&server, "erase", DPO, json!({ "subject": "alice" }));
    assert_eq!((e.status, e.body["erased_events"].as_u64()), (200, Some(3)), "{}", e.text);
    assert_eq!(pg.count("SELECT count(*) FROM device_erasures"), 2, "one notice per device");

    // The phone sends something else (bob): the reply lists its erased events; the core erases
    // alice before acknowledging, and the erasure record goes out and answers the notice.
    phone.decide("bob", "photos_media", Action::Grant, Source::Onboarding);
    assert_eq!(phone.sync_as_app(&server), ["alice"]);
    assert!(phone.store.history("alice").unwrap().iter().all(|r| r.subject.is_none()), "alice is gone from the phone");
    assert_eq!(phone.store.status("alice", "photos_media").unwrap().status.as_str(), "not_asked");
    assert!(!allowed(&phone, "photo_sharing"), "the erased grant no longer allows anything on the phone");
    // The tablet has nothing to send: the notices endpoint tells it.
    assert_eq!(tablet.sync_as_app(&server), ["alice"]);
    assert_eq!(tablet.store.status("alice", "device_contacts").unwrap().status.as_str(), "not_asked");
    assert_eq!(pg.count("SELECT count(*) FROM device_erasures"), 0, "both devices' erasure records answered their notices");
    assert_eq!(status_of(&lookup(&server, "state", SUPPORT, json!({ "subject": "bob" })), "photos_media").0, "granted");
    // Nothing more to tell; and a device may read only its own notices.
    assert!(phone.sync_as_app(&server).is_empty());
    let other = agent()
        .get(&format!("{}/v1/devices/tablet/erasures", server.url))
        .header("authorization", &format!("Bearer {PHONE}"))
        .call()
        .unwrap();
    assert_eq!(other.status().as_u16(), 403);
}

#[test]
fn a_sync_reply_for_another_batch_is_refused_and_acknowledges_nothing() {
    let pg = Pg::start();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&pg, dir.path());
    let phone = Device::new(dir.path(), "phone", PHONE, "2030-01-01T10:00:00Z");
    phone.decide("alice", "photos_media", Action::Grant, Source::Onboarding);
    phone.decide("alice", "usage_statistics", Action::Grant, Source::Onboarding);
    let first = phone.store.sync_batch("phone", 1).unwrap().unwrap();
    let reply = post(&format!("{}/v1/devices/phone/batches", server.url), PHONE, &serde_json::from_str(&first.json).unwrap());
    let mut wide = phone.store.sync_batch("phone", 50).unwrap().unwrap();
    assert_eq!(wide.last_seq(), 2);
    for bad in [reply.text.replace("\"seq\":1", "\"seq\":2"), "not json".to_string(), "{}".to_string()] {
        let err = phone.store.apply_sync_reply(&wide, &bad).unwrap_err();
        assert!(err.to_string().contains("sync reply"), "{err}");
    }
    wide.device = "tablet".into();
    assert!(phone.store.apply_sync_reply(&wide, &reply.text).is_err());
    assert_eq!(phone.store.sync_acked().unwrap(), 0, "nothing was acknowledged");
    assert_eq!(phone.store.apply_sync_reply(&first, &reply.text).unwrap().acked_seq, 1);
}

#[test]
fn an_erasure_on_one_device_never_lets_another_devices_older_grant_count_on_the_server() {
    let pg = Pg::start();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&pg, dir.path());
    let phone = Device::new(dir.path(), "phone", PHONE, "2026-03-01T10:00:00Z");
    let tablet = Device::new(dir.path(), "tablet", TABLET, "2026-03-02T10:00:00Z");
    phone.decide("alice", "photos_media", Action::Grant, Source::Onboarding); // t1, phone
    tablet.decide("alice", "photos_media", Action::Withdraw, Source::Settings); // t2 > t1, tablet
    phone.sync_all(&server);
    tablet.sync_all(&server);
    let photos = || status_of(&lookup(&server, "state", SUPPORT, json!({ "subject": "alice" })), "photos_media").0;
    assert_eq!(photos(), "withdrawn");
    // alice erases on the tablet only. Deleting the tablet's copies would leave the phone's older
    // grant as the latest decision on the server: the server keeps them (fail closed).
    tablet.store.erase("alice", Source::Settings).unwrap();
    let r = tablet.sync_once(&server, 50);
    assert_eq!((r.status, r.body["erased_on_server"].as_u64()), (200, Some(0)), "{}", r.text);
    assert_eq!(photos(), "withdrawn", "the withdrawal still counts on the server");
    let check = lookup(&server, "check", SUPPORT, json!({ "subject": "alice", "feature": "photo_sharing" }));
    assert_eq!(check.body["allowed"], json!(false), "{}", check.text);
}

#[test]
fn events_of_a_category_the_servers_policy_does_not_know_are_kept_named_and_allow_nothing() {
    let pg = Pg::start();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&pg, dir.path());
    let phone = Device::with_policy(dir.path(), "phone", PHONE, "2026-03-01T10:00:00Z", newer_policy());
    phone.decide("alice", "health_data", Action::Grant, Source::Onboarding);
    phone.decide("alice", "photos_media", Action::Refuse, Source::Onboarding);
    // Ingest stores the whole chain (a refusal would block every later event of the device, its
    // withdrawals too) and answers with a typed warning naming the id.
    let batch = phone.batch(50);
    let reply = send(&server, "phone", PHONE, &batch);
    assert_eq!((reply.status, reply.body["stored"].as_u64()), (200, Some(2)), "{}", reply.text);
    assert_eq!(reply.body["unknown_categories"], json!(["health_data"]), "{}", reply.text);
    let typed: wire::IngestReply = serde_json::from_value(reply.body.clone()).unwrap();
    assert_eq!(typed.unknown_categories, ["health_data"]);
    let replay = send(&server, "phone", PHONE, &batch);
    assert_eq!(replay.body["unknown_categories"], json!(["health_data"]), "a replay says the same: {}", replay.text);
    phone.store.ack_sync(batch.receipts.last().unwrap().seq).unwrap();
    // A batch of known categories only carries no warning.
    phone.decide("alice", "usage_statistics", Action::Refuse, Source::Settings);
    let plain = send(&server, "phone", PHONE, &phone.batch(50));
    assert_eq!((plain.status, plain.body.get("unknown_categories")), (200, None), "{}", plain.text);

    // Support sees it, apart from the policy's categories, in the state, the timeline and the export.
    let alice = json!({ "subject": "alice" });
    let state = lookup(&server, "state", SUPPORT, alice.clone());
    assert!(statuses(&state).iter().all(|(c, _, _)| c != "health_data"), "not one of the policy's categories: {}", state.text);
    let unknown = &state.body["unknown_categories"];
    assert_eq!(unknown.as_array().map(Vec::len), Some(1), "{}", state.text);
    assert_eq!((unknown[0]["id"].as_str(), unknown[0]["events"].as_u64()), (Some("health_data"), Some(1)));
    assert_eq!((unknown[0]["last_at"].as_str(), unknown[0]["devices"].clone()), (Some("2026-03-01T10:00:00Z"), json!(["phone"])));
    let timeline = lookup(&server, "timeline", SUPPORT, alice.clone());
    let marked: Vec<(&str, bool)> = timeline
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["category"].as_str().unwrap_or("-"), e["unknown_category"] == json!(true)))
        .collect();
    assert_eq!(marked, [("health_data", true), ("photos_media", false), ("usage_statistics", false)], "{}", timeline.text);
    let export = lookup(&server, "export", DPO, alice.clone());
    assert_eq!(export.body["unknown_categories"][0]["id"], "health_data", "{}", export.text);

    // It allows nothing: every feature of the server's policy answers as for a subject with no
    // events of it, and the newer policy's feature is not one the server answers for.
    phone.decide("bob", "photos_media", Action::Refuse, Source::Onboarding);
    phone.decide("bob", "usage_statistics", Action::Refuse, Source::Settings);
    phone.sync_all(&server);
    for f in &consentkit_core::Policy::builtin().features {
        let scope = if f.per_item { json!("c-1") } else { Value::Null };
        let ask = |subject: &str| lookup(&server, "check", SUPPORT, json!({ "subject": subject, "feature": f.id, "scope": scope }));
        let (a, b) = (ask("alice"), ask("bob"));
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(
            (a.body["allowed"].clone(), a.body["reasons"].clone()),
            (b.body["allowed"].clone(), b.body["reasons"].clone()),
            "{}",
            f.id
        );
    }
    let health = lookup(&server, "check", SUPPORT, json!({ "subject": "alice", "feature": "health_sync" }));
    assert_eq!((health.status, health.body["error"].as_str()), (422, Some("invalid")), "{}", health.text);
    assert!(!server.log().contains("health_data"), "the log names no id a device sent (only a count)");
}

#[test]
fn a_lookup_field_the_route_does_not_take_is_refused_naming_it_never_ignored() {
    let AliceGrantedOnPhone { pg: _pg, dir: _dir, server, phone: _phone } = AliceGrantedOnPhone::start();
    for (what, token, field, value) in [
        ("timeline", SUPPORT, "now", json!("2020-01-01T00:00:00Z")),
        ("state", SUPPORT, "feature", json!("photo_sharing")),
        ("state", SUPPORT, "device", json!("phone")),
        ("erasures", SUPPORT, "scope", json!("contact-1")),
        ("export", DPO, "now", json!("2020-01-01T00:00:00Z")),
        ("erase", DPO, "feature", json!("photo_sharing")),
    ] {
        let mut body = json!({ "subject": "alice" });
        body[field] = value;
        let r = lookup(&server, what, token, body);
        assert_eq!(r.status, 422, "{what} with {field}: {}", r.text);
        assert!(r.text.contains(&format!("'{field}'")), "the field is named: {}", r.text);
    }
    // Nothing was erased by the refused erase, and each route still takes what it takes.
    let state = lookup(&server, "state", SUPPORT, json!({ "subject": "alice", "now": "2026-03-05T00:00:00Z" }));
    assert_eq!(state.status, 200, "{}", state.text);
    assert_eq!(state.body["erasures"], json!([]), "{}", state.text);
    let check = lookup(&server, "check", SUPPORT, json!({ "subject": "alice", "feature": "photo_sharing", "device": "phone" }));
    assert_eq!(check.status, 200, "{}", check.text);
}
