//! Hostile callers of the API, as a review's suite would be: a device token holder sealing receipts
//! no core writes (text PostgreSQL cannot hold, over-long or control-character values), requests
//! whose path or query the router cannot even decode, and ordinary clients spelling the bearer
//! scheme as RFC 9110 allows. Each gets a typed JSON 4xx naming the bad value, and nothing is stored.

mod common;

use common::*;
use consentkit_core::chain::{content_hash, link_hash, GENESIS};
use consentkit_core::{Action, Receipt, Source};
use consentkit_server::wire::Batch;
use serde_json::{json, Value};

fn stored(pg: &Pg) -> (i64, i64, i64) {
    (
        pg.count("SELECT count(*) FROM events"),
        pg.count("SELECT count(*) FROM device_chain"),
        pg.count("SELECT coalesce(sum(seq), 0) FROM device_heads"),
    )
}

/// Re-seals `receipts` as a forger holding the device's token would: every hash recomputed.
fn reseal(receipts: &mut [Receipt]) {
    let mut prev = GENESIS.to_string();
    for r in receipts.iter_mut() {
        r.prev_hash = prev.clone();
        r.content_hash = content_hash(r);
        r.hash = link_hash(&r.prev_hash, &r.content_hash);
        prev = r.hash.clone();
    }
}

fn assert_typed(what: &str, reply: &Reply, status: u16, names: &str) {
    assert_eq!(reply.status, status, "{what}: {}", reply.text);
    assert!(reply.body["error"].is_string(), "{what}: a JSON error body: {}", reply.text);
    let message = reply.body["message"].as_str().unwrap_or_default();
    assert!(message.contains(names), "{what}: the message should name '{names}': {message}");
    for leak in ["SELECT", "INSERT", "postgres", "panicked", "tokio", "src/", "axum"] {
        assert!(!reply.text.contains(leak), "{what}: leaks '{leak}': {}", reply.text);
    }
}

#[test]
fn sealed_receipt_text_that_no_core_writes_or_postgresql_cannot_hold_is_refused_naming_it_and_nothing_is_stored() {
    let pg = Pg::start();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&pg, dir.path());
    let phone = Device::new(dir.path(), "phone", PHONE, "2026-03-01T10:00:00Z");
    phone.decide("alice", "photos_media", Action::Grant, Source::Onboarding);
    phone.decide("alice", "device_contacts", Action::Grant, Source::Onboarding);
    let good = phone.store.pending_sync(10).unwrap();
    let url = format!("{}/v1/devices/phone/batches", server.url);

    type Edit = fn(&mut Receipt);
    let cases: Vec<(&str, Edit, &str)> = vec![
        ("NUL in a scope", |r| r.scope = Some("c1\u{0}x".into()), "scope"),
        ("NUL in a category", |r| r.category = Some("photos\u{0}media".into()), "category"),
        ("NUL in an id", |r| r.id = format!("{}\u{0}", r.id), "id"),
        ("NUL in a policy version", |r| r.policy_version = "1\u{0}".into(), "policy_version"),
        ("NUL in a policy id", |r| r.policy_id = "ucanywhere\u{0}".into(), "policy_id"),
        ("NUL in a detail", |r| r.detail = Some("{\"a\":\"\u{0}\"}".into()), "detail"),
        ("a terminal escape in a scope", |r| r.scope = Some("c1\u{1b}[2J".into()), "scope"),
        ("a scope of 100,000 bytes", |r| r.scope = Some("s".repeat(100_000)), "scope"),
        ("a category of 100,000 bytes", |r| r.category = Some("c".repeat(100_000)), "category"),
        ("an empty id", |r| r.id = String::new(), "id"),
    ];
    for (what, edit, names) in cases {
        let mut receipts = good.clone();
        edit(&mut receipts[1]);
        reseal(&mut receipts);
        let reply = post(&url, PHONE, &serde_json::to_value(Batch::new("phone", receipts)).unwrap());
        assert_typed(what, &reply, 422, names);
        assert!(reply.body["message"].as_str().unwrap().contains("seq 2"), "{what}: names the receipt: {}", reply.text);
        assert_eq!(stored(&pg), (0, 0, 0), "{what}: nothing was written");
    }
    // The device's own, unforged batch still goes through afterwards.
    let ok = post(&url, PHONE, &serde_json::to_value(Batch::new("phone", good)).unwrap());
    assert_eq!((ok.status, ok.body["stored"].as_u64()), (200, Some(2)), "{}", ok.text);
}

#[test]
fn a_path_or_query_the_router_cannot_decode_gets_a_json_4xx_and_the_bearer_scheme_is_case_insensitive() {
    let pg = Pg::start();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&pg, dir.path());
    // A device id that is not UTF-8 once percent-decoded.
    let reply = get(&format!("{}/v1/devices/%FF%FE/erasures", server.url), PHONE);
    assert_typed("a path segment that is not UTF-8", &reply, 400, "path");
    let reply = post_raw(&format!("{}/v1/devices/%C0/batches", server.url), Some(PHONE), b"{}");
    assert_typed("a batch to a device id that is not UTF-8", &reply, 400, "path");
    // RFC 9110 section 11.1: the authentication scheme is case-insensitive.
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let mut r = agent()
            .post(&format!("{}/v1/subjects/state", server.url))
            .header("authorization", &format!("{scheme} {SUPPORT}"))
            .header("content-type", "application/json")
            .send(json!({ "subject": "alice" }).to_string().as_bytes())
            .unwrap();
        let text = r.body_mut().read_to_string().unwrap();
        assert_eq!(r.status().as_u16(), 200, "scheme '{scheme}': {text}");
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(body["subject"], json!("alice"));
    }
}

#[test]
fn a_lookup_body_with_anything_after_its_json_value_is_malformed_and_reads_nothing() {
    let pg = Pg::start();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&pg, dir.path());
    for (what, body) in [
        ("a second value", &b"{\"subject\":\"alice\"}{\"subject\":\"bob\"}"[..]),
        ("trailing text", b"{\"subject\":\"alice\"} trailing"),
        ("a trailing comma", b"{\"subject\":\"alice\"},"),
    ] {
        let reply = post_raw(&format!("{}/v1/subjects/state", server.url), Some(SUPPORT), body);
        assert_typed(what, &reply, 400, "not valid JSON");
    }
    assert_eq!(pg.count("SELECT count(*) FROM access_log"), 0, "a refused body read no subject");
    let ok = post_raw(&format!("{}/v1/subjects/state", server.url), Some(SUPPORT), b"{\"subject\":\"alice\"}\n");
    assert_eq!(ok.status, 200, "trailing white space is still one value: {}", ok.text);
}

#[test]
fn every_console_address_even_one_that_does_not_exist_or_decode_answers_a_page_with_the_security_headers() {
    let pg = Pg::start();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&pg, dir.path());
    for (path, status) in [
        ("/console/no-such-page", 404),
        ("/console/subjects/%FF/erase", 400),
        ("/console/login?next=a&next=b", 400),
        ("/console/login", 200),
    ] {
        let mut r = agent().get(&format!("{}{path}", server.url)).call().unwrap();
        let header = |name: &str| r.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let (csp, frame, kind) = (header("content-security-policy"), header("x-frame-options"), header("content-type"));
        assert_eq!(r.status().as_u16(), status, "{path}");
        assert_eq!(csp, consentkit_server::console::CSP, "{path}: CSP");
        assert_eq!(frame, "DENY", "{path}: clickjacking");
        assert!(kind.starts_with("text/html"), "{path}: a page for the browser, not {kind}");
        let text = r.body_mut().read_to_string().unwrap();
        assert!(!text.contains("Invalid URL") && !text.contains("Failed to deserialize"), "{path}: axum's text: {text}");
    }
    // The API's own addresses still answer JSON.
    let reply = get(&format!("{}/v1/no-such-endpoint", server.url), SUPPORT);
    assert_eq!((reply.status, reply.body["error"].as_str()), (404, Some("not_found")), "{}", reply.text);
}

/// A console session over plain HTTP (no browser): sign in, return the cookie.
fn console_sign_in(server: &Server, token: &str) -> String {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).build().into();
    let r = agent
        .post(&format!("{}/console/login", server.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .send(format!("token={token}&next="))
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let cookie = r.headers().get("set-cookie").unwrap().to_str().unwrap();
    cookie.split(';').next().unwrap().to_string()
}

fn console_get(server: &Server, cookie: &str, path: &str) -> (u16, String, Option<String>) {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).build().into();
    let mut r = agent.get(&format!("{}{path}", server.url)).header("cookie", cookie).call().unwrap();
    let location = r.headers().get("location").map(|v| v.to_str().unwrap().to_string());
    (r.status().as_u16(), r.body_mut().read_to_string().unwrap(), location)
}

fn console_lookup(server: &Server, cookie: &str, subject: &str) -> String {
    let (_, page, _) = console_get(server, cookie, "/console/lookup");
    let csrf = page.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).build().into();
    let form = format!("csrf={csrf}&subject={}", subject.bytes().map(|b| format!("%{b:02X}")).collect::<String>());
    let r = agent
        .post(&format!("{}/console/lookup", server.url))
        .header("cookie", cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .send(form)
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    r.headers().get("location").unwrap().to_str().unwrap().to_string()
}

#[test]
fn a_bidirectional_override_or_zero_width_space_from_a_device_is_shown_as_an_escape_in_the_console() {
    let pg = Pg::start();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&pg, dir.path());
    let phone = Device::new(dir.path(), "phone", PHONE, "2026-03-01T10:00:00Z");
    phone.decide("alice", "photos_media", Action::Grant, Source::Onboarding);
    phone.decide("alice", "photos_media", Action::Refuse, Source::Settings);
    // A category id a device's catalog may carry (no control character) that reorders text:
    // "\u{202e}atad_htlaeh" displays as "health_data" mirrored if the override is kept.
    let mut receipts = phone.store.pending_sync(10).unwrap();
    receipts[1].category = Some("\u{202e}atad_htlaeh".into());
    receipts.push(Receipt { seq: 3, category: Some("zero\u{200b}width".into()), ..receipts[0].clone() });
    reseal(&mut receipts);
    let reply =
        post(&format!("{}/v1/devices/phone/batches", server.url), PHONE, &serde_json::to_value(Batch::new("phone", receipts)).unwrap());
    assert_eq!(reply.status, 200, "{}", reply.text);
    let cookie = console_sign_in(&server, SUPPORT);
    let subject = console_lookup(&server, &cookie, "alice");
    let (status, page, _) = console_get(&server, &cookie, &subject);
    assert_eq!(status, 200, "{page}");
    for (raw, shown) in [('\u{202e}', "\\u{202e}atad_htlaeh"), ('\u{200b}', "zero\\u{200b}width")] {
        assert!(!page.contains(raw), "U+{:04X} reaches the page as itself", raw as u32);
        assert!(page.contains(shown), "shown as an escape ({shown}): {page}");
    }
}

#[test]
fn a_signed_out_request_for_a_console_path_holding_any_other_text_returns_to_sign_in_then_the_lookup() {
    let pg = Pg::start();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&pg, dir.path());
    for (path, next) in [
        ("/console/subjects/0a1b2c/erase", "console~subjects~0a1b2c~erase"),
        ("/console/subjects/%0d%0aSet-Cookie:%20x=1", "console~lookup"),
        ("/console/subjects/%22%3E%3Cscript%3E/erase", "console~lookup"),
        ("/console/subjects/x%3Fnext%3D%2F%2Fevil.example", "console~lookup"),
        ("/console/subjects/a%20b", "console~lookup"),
    ] {
        let (status, _, location) = console_get(&server, "ck_console=none", path);
        assert_eq!(status, 303, "{path}");
        assert_eq!(location.as_deref(), Some(format!("/console/login?next={next}").as_str()), "{path}");
        let (status, page, _) = console_get(&server, "", &format!("/console/login?next={next}"));
        assert_eq!(status, 200, "{path}: the sign-in page opens: {page}");
    }
}

#[test]
fn a_check_naming_a_device_id_no_device_can_have_is_refused_before_the_subject_is_read_and_logs_nothing() {
    let AliceGrantedOnPhone { pg, dir: _dir, server, phone: _phone } = AliceGrantedOnPhone::start();
    let url = format!("{}/v1/subjects/check", server.url);
    // As an unknown feature is: the request is refused for what it is, nothing of the subject is
    // read, and no access-log line keeps the typed text (here up to the body limit, or text that
    // could reorder a line where the log is shown).
    for (what, device) in
        [("an empty device", String::new()), ("a 100,000-byte device", "d".repeat(100_000)), ("a control character", "ph\u{1b}one".into())]
    {
        let reply = post(&url, SUPPORT, &json!({ "subject": "alice", "feature": "photo_sharing", "device": device }));
        assert_typed(what, &reply, 422, "device id");
        assert_eq!(pg.count("SELECT count(*) FROM access_log"), 0, "{what}: nothing of the subject was read: {}", reply.text);
    }
    let ok = post(&url, SUPPORT, &json!({ "subject": "alice", "feature": "photo_sharing", "device": "phone" }));
    assert_eq!(ok.status, 200, "{}", ok.text);
}

#[test]
fn after_a_server_erasure_the_state_support_reads_names_the_signed_erasure_receipt() {
    // An erased subject's state is that of one never asked: without the erasure named, support
    // cannot tell "erased on request" from "never had data" (the local `history` names its
    // erasure records; the server kept its receipts but showed none).
    let AliceGrantedOnPhone { pg: _pg, dir: _dir, server, phone: _phone } = AliceGrantedOnPhone::start();
    let state = |token: &str| post(&format!("{}/v1/subjects/state", server.url), token, &json!({ "subject": "alice" }));
    let before = state(SUPPORT);
    assert_eq!(before.body["erasures"], json!([]), "none yet: {}", before.text);
    let erased = post(&format!("{}/v1/subjects/erase", server.url), DPO, &json!({ "subject": "alice" }));
    assert_eq!(erased.status, 200, "{}", erased.text);
    for token in [SUPPORT, DPO] {
        let after = state(token);
        assert_eq!(after.status, 200, "{}", after.text);
        let erasures = after.body["erasures"].as_array().unwrap_or_else(|| panic!("erasures listed: {}", after.text));
        assert_eq!(erasures.len(), 1, "{}", after.text);
        assert_eq!(erasures[0]["id"], erased.body["receipt"]["id"]);
        assert_eq!(erasures[0]["erased_events"], json!(1));
        assert_eq!(erasures[0]["signature"], erased.body["receipt"]["signature"], "the signed receipt itself");
    }
    // Another subject's state names none of alice's erasures.
    let bob = post(&format!("{}/v1/subjects/state", server.url), SUPPORT, &json!({ "subject": "bob" }));
    assert_eq!(bob.body["erasures"], json!([]), "{}", bob.text);
}

#[test]
fn the_console_subject_page_of_an_erased_subject_names_the_erasure() {
    let AliceGrantedOnPhone { pg: _pg, dir: _dir, server, phone: _phone } = AliceGrantedOnPhone::start();
    let cookie = console_sign_in(&server, SUPPORT);
    let (status, page, _) = console_get(&server, &cookie, &console_lookup(&server, &cookie, "alice"));
    assert_eq!(status, 200, "{page}");
    assert!(!page.contains("id=\"erasures\""), "not erased yet: {page}");
    let erased = post(&format!("{}/v1/subjects/erase", server.url), DPO, &json!({ "subject": "alice" }));
    let id = erased.body["receipt"]["id"].as_str().unwrap_or_else(|| panic!("{}", erased.text)).to_string();
    let (status, page, _) = console_get(&server, &cookie, &console_lookup(&server, &cookie, "alice"));
    assert_eq!(status, 200, "{page}");
    let notice = page.split("id=\"erasures\"").nth(1).unwrap_or_else(|| panic!("the erasure is named: {page}"));
    assert!(notice.contains(&id) && notice.contains("1 event(s) deleted"), "{notice}");
}

#[test]
fn a_resealed_withdraw_objection_or_support_grant_on_a_consent_category_allows_nothing() {
    // A device token holder re-seals receipts no core writes for a consent category: a
    // `withdraw_objection` (never consent) and a grant "by support" (support never grants).
    let pg = Pg::start();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&pg, dir.path());
    let phone = Device::new(dir.path(), "phone", PHONE, "2026-03-01T10:00:00Z");
    phone.decide("alice", "usage_statistics", Action::Refuse, Source::Onboarding);
    phone.decide("alice", "usage_statistics", Action::Refuse, Source::Onboarding);
    let mut receipts = phone.store.pending_sync(10).unwrap();
    receipts[0].action = Action::WithdrawObjection;
    receipts[1].action = Action::Grant;
    receipts[1].source = Source::Support;
    receipts[1].valid_until = Some(consentkit_core::Timestamp::parse("2030-01-01T00:00:00Z").unwrap());
    reseal(&mut receipts);
    let reply =
        post(&format!("{}/v1/devices/phone/batches", server.url), PHONE, &serde_json::to_value(Batch::new("phone", receipts)).unwrap());
    if reply.status == 200 {
        let check =
            post(&format!("{}/v1/subjects/check", server.url), SUPPORT, &json!({ "subject": "alice", "feature": "usage_analytics" }));
        assert_eq!(check.status, 200, "{}", check.text);
        assert_eq!(check.body["allowed"], json!(false), "nothing the core would refuse opens the feature: {}", check.text);
    } else {
        assert_typed("a resealed receipt no core writes", &reply, 422, "seq");
        assert_eq!(stored(&pg), (0, 0, 0));
    }
}
