//! The support console in a real browser: Debian's Chromium, headless, driven over W3C WebDriver
//! (chromedriver) with plain HTTP calls, against the real server and PostgreSQL. Each test saves a
//! screenshot of its last page under `target/console-screenshots/`.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use common::*;
use consentkit_core::{Action, OsPermission, OsState, Source};
use serde_json::{json, Value};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn chromedriver() -> PathBuf {
    for p in ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"] {
        if std::path::Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!("chromedriver is not installed: the console's browser suite needs Debian's chromium and chromium-driver (run scripts/ensure-chromium.sh as root, or make test-server)");
}

struct Browser {
    driver: Child,
    base: String,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver on a free port, trying another port if it does not come up (the port
    /// may be taken between `free_port` and chromedriver's bind).
    fn driver() -> (Child, String) {
        for _ in 0..3 {
            let port = free_port();
            let mut driver =
                Command::new(chromedriver()).arg(format!("--port={port}")).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
            let base = format!("http://127.0.0.1:{port}");
            for _ in 0..150 {
                if get_json(&format!("{base}/status")).is_some_and(|v| v["value"]["ready"] == json!(true)) {
                    return (driver, base);
                }
                if driver.try_wait().ok().flatten().is_some() {
                    break; // it exited (the port was taken): try another
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = driver.kill();
            let _ = driver.wait();
        }
        panic!("chromedriver did not become ready on three ports in a row");
    }

    /// A fresh headless Chromium session. Browsers start one at a time, with a generous wait and
    /// one retry: several cold Chromium starts at once on two cores (the very first one on a fresh
    /// machine also builds the font cache) can take longer than a request timeout.
    fn start() -> Browser {
        static STARTING: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _one_at_a_time = STARTING.lock().unwrap_or_else(|p| p.into_inner());
        let slow: ureq::Agent =
            ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(180))).build().into();
        let mut last_error = String::new();
        for _ in 0..2 {
            let (mut driver, base) = Browser::driver();
            let profile = tempfile::tempdir().unwrap();
            let caps = json!({ "capabilities": { "alwaysMatch": { "browserName": "chrome", "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
                         "--disable-dev-shm-usage", format!("--user-data-dir={}", profile.path().display()), "--window-size=1280,900"],
            } } } });
            let reply = slow.post(&format!("{base}/session")).send(caps.to_string()).map(|mut r| r.body_mut().read_to_string());
            match reply {
                Ok(Ok(text)) => {
                    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    if let Some(session) = v["value"]["sessionId"].as_str() {
                        return Browser { driver, base, session: session.to_string(), _profile: profile };
                    }
                    last_error = text;
                }
                Ok(Err(e)) => last_error = e.to_string(),
                Err(e) => last_error = e.to_string(),
            }
            let _ = driver.kill();
            let _ = driver.wait();
        }
        panic!("no browser session after two tries: {last_error}")
    }

    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let r = match method {
            "GET" => agent().get(&url).call(),
            "DELETE" => agent().delete(&url).call(),
            _ => agent().post(&url).send(body.unwrap_or(json!({})).to_string()),
        };
        let text = r.unwrap().body_mut().read_to_string().unwrap();
        serde_json::from_str::<Value>(&text).unwrap()["value"].clone()
    }

    fn go(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })));
    }

    fn url(&self) -> String {
        self.cmd("GET", "/url", None).as_str().unwrap().to_string()
    }

    fn source(&self) -> String {
        self.cmd("GET", "/source", None).as_str().unwrap().to_string()
    }

    fn all(&self, css: &str) -> Vec<String> {
        let v = self.cmd("POST", "/elements", Some(json!({ "using": "css selector", "value": css })));
        v.as_array().unwrap().iter().map(|e| e[ELEMENT].as_str().unwrap().to_string()).collect()
    }

    /// The first element matching `css`, waiting (up to 15 s, polling) for it to appear: a click
    /// that submits a form returns before the page it loads is there, even when the URL stays the same.
    fn one(&self, css: &str) -> String {
        for _ in 0..150 {
            let v = self.cmd("POST", "/element", Some(json!({ "using": "css selector", "value": css })));
            if let Some(id) = v[ELEMENT].as_str() {
                return id.to_string();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("no element {css} after 15 s on {}: {}", self.url(), self.source())
    }

    /// Runs `read` on the element matching `css`, looking it up again when the element went stale
    /// (the page was replaced between the lookup and the read).
    fn read_element(&self, css: &str, read: impl Fn(&str) -> Value) -> Value {
        for _ in 0..50 {
            let v = read(&self.one(css));
            if v.get("error").is_none() {
                return v;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("element {css} kept going stale on {}", self.url())
    }

    /// Waits (up to 15 s, polling) until an element matches `css`.
    fn wait_for(&self, css: &str) {
        for _ in 0..150 {
            if !self.all(css).is_empty() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn text(&self, css: &str) -> String {
        let v = self.read_element(css, |id| self.cmd("GET", &format!("/element/{id}/text"), None));
        v.as_str().unwrap_or_else(|| panic!("no text for {css}: {v}")).to_string()
    }

    fn value(&self, css: &str) -> String {
        let v = self.read_element(css, |id| self.cmd("GET", &format!("/element/{id}/property/value"), None));
        v.as_str().unwrap_or_default().to_string()
    }

    fn type_into(&self, css: &str, text: &str) {
        let id = self.one(css);
        self.cmd("POST", &format!("/element/{id}/value"), Some(json!({ "text": text })));
    }

    fn click(&self, css: &str) {
        let id = self.one(css);
        self.cmd("POST", &format!("/element/{id}/click"), None);
    }

    fn script(&self, script: &str) -> Value {
        self.cmd("POST", "/execute/sync", Some(json!({ "script": script, "args": [] })))
    }

    fn session_cookie(&self) -> Value {
        self.cmd("GET", "/cookie", None)
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == json!("ck_console"))
            .cloned()
            .unwrap_or(Value::Null)
    }

    fn resize(&self, width: u32, height: u32) {
        self.cmd("POST", "/window/rect", Some(json!({ "width": width, "height": height })));
    }

    fn screenshot(&self, name: &str) {
        let png = self.cmd("GET", "/screenshot", None);
        let bytes = base64::engine::general_purpose::STANDARD.decode(png.as_str().unwrap()).unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "a PNG");
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/console-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), bytes).unwrap();
    }

    /// Waits (up to 15 s, polling) until the current URL satisfies `done`: a click may return
    /// before the navigation it starts has finished.
    fn wait_url(&self, done: impl Fn(&str) -> bool) -> String {
        for _ in 0..150 {
            let url = self.url();
            if done(&url)
                && self.cmd("POST", "/execute/sync", Some(json!({ "script": "return document.readyState", "args": [] })))
                    == json!("complete")
            {
                return url;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.url()
    }

    fn sign_in(&self, server: &Server, token: &str) {
        self.go(&format!("{}/console/login", server.url));
        self.type_into("#token", token);
        self.click("#sign-in");
        self.wait_url(|u| !u.ends_with("/console/login"));
    }

    fn look_up(&self, subject: &str) {
        self.type_into("#subject", subject);
        assert_eq!(self.value("#subject"), subject, "typed into the lookup form");
        self.click("#look-up");
        self.wait_url(|u| u.contains("/console/subjects/"));
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = agent().delete(&format!("{}/session/{}", self.base, self.session)).call();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn get_json(url: &str) -> Option<Value> {
    let mut r = agent().get(url).call().ok()?;
    serde_json::from_str(&r.body_mut().read_to_string().ok()?).ok()
}

/// alice on a phone and a tablet: photos granted on the phone, refused on the tablet on 2026-01-15.
fn two_devices(server: &Server, dir: &std::path::Path, subject: &str) -> usize {
    let phone = Device::new(dir, "phone", PHONE, "2026-01-10T09:00:00Z");
    let tablet = Device::new(dir, "tablet", TABLET, "2026-01-15T18:30:00Z");
    phone.decide(subject, "photos_media", Action::Grant, Source::Onboarding);
    phone.decide(subject, "usage_statistics", Action::Grant, Source::Onboarding);
    phone.store.set_os_permission(OsPermission::PHOTOS, OsState::Granted).unwrap();
    tablet.store.set_os_permission(OsPermission::PHOTOS, OsState::Granted).unwrap();
    tablet.decide(subject, "photos_media", Action::Refuse, Source::Settings);
    phone.at("2026-02-01T08:00:00Z");
    phone.decide(subject, "usage_statistics", Action::Withdraw, Source::Settings);
    phone.sync_all(server);
    tablet.sync_all(server);
    6
}

#[test]
fn support_reads_statuses_explanations_and_one_timeline_mark_per_event_but_not_dpo_pages() {
    let pg = Pg::start();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&pg, dir.path());
    let events = two_devices(&server, dir.path(), "alice@example.com");
    let b = Browser::start();
    b.sign_in(&server, SUPPORT);
    assert!(b.url().ends_with("/console/lookup"), "{}", b.url());
    let unlabelled = b.script("return Array.from(document.querySelectorAll('input:not([type=hidden]), button')).filter(e => e.tagName == 'INPUT' ? e.labels.length == 0 : !e.textContent.trim()).length");
    assert_eq!(unlabelled, json!(0), "every field has a label, every button a name");
    let cookie = b.session_cookie();
    assert_eq!((cookie["httpOnly"].as_bool(), cookie["sameSite"].as_str()), (Some(true), Some("Strict")), "{cookie}");
    assert!(cookie["expiry"].as_u64().is_some(), "the session cookie expires: {cookie}");
    b.look_up("alice@example.com");
    let url = b.url();
    assert!(url.contains("/console/subjects/") && !url.contains("alice"), "{url}: {}", b.source());
    assert_eq!(b.text("#handle"), url.rsplit('/').next().unwrap());
    assert_eq!(b.text("tr[data-category=photos_media] .status"), "refused");
    assert!(b.text("tr[data-category=photos_media]").contains("tablet"));
    assert_eq!(b.text("tr[data-category=usage_statistics] .status"), "withdrawn");
    assert_eq!(b.text("tr[data-category=traffic_data] .status"), "not_required");
    let features = b.text("#features");
    assert!(features.contains("photo sharing is off because: consent to photos media refused on 2026-01-15 on the tablet"), "{features}");
    assert!(features.contains("calling is allowed"), "{features}");
    let devices = b.text("#devices");
    assert!(devices.contains("phone") && devices.contains("tablet") && devices.contains("photos granted"), "{devices}");
    assert_eq!(b.all("#timeline circle.mark").len(), events, "one mark per event");
    assert_eq!(b.all("#timeline circle.mark.deny").len(), 2, "the refusal and the withdrawal are marked as denials");
    assert_eq!(b.all("#events tbody tr").len(), events, "the same events as a table");

    // Readable at 320 px: nothing wider than the viewport but the scrolling table/picture boxes.
    b.resize(320, 800);
    let overflow = b.script("return document.documentElement.scrollWidth <= window.innerWidth + 1");
    let why = b.script("return [window.innerWidth, document.documentElement.scrollWidth, Array.from(document.querySelectorAll('body *')).filter(e => e.getBoundingClientRect().right > window.innerWidth + 1 && !e.closest('.scroll')).map(e => e.tagName + '#' + e.id + '.' + e.className + ':' + Math.round(e.getBoundingClientRect().right)).slice(0, 12)]");
    assert_eq!(overflow, json!(true), "the page fits 320 px: {why}");
    b.screenshot("subject-320px");
    b.resize(1280, 2000);
    b.screenshot("subject");
    b.resize(1280, 900);

    // Support cannot reach DPO or auditor pages.
    let handle = url.rsplit('/').next().unwrap().to_string();
    b.go(&format!("{}/console/subjects/{handle}/erase", server.url));
    assert!(b.text("#page-title").contains("Not allowed"), "{}", b.source());
    b.go(&format!("{}/console/audit", server.url));
    assert!(b.text("#page-title").contains("Not allowed"));
    assert!(b.text("main").contains("signed in as sam (support)"));
    b.screenshot("support-forbidden");
    // The refused page is a 403 with the console's headers.
    let r = agent()
        .get(&format!("{}/console/audit", server.url))
        .header("cookie", &format!("ck_console={}", cookie["value"].as_str().unwrap()))
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let csp = r.headers().get("content-security-policy").unwrap().to_str().unwrap().to_string();
    assert!(csp.contains("default-src 'none'") && !csp.contains("unsafe-inline") && !csp.contains("script-src"), "{csp}");
}

#[test]
fn dpo_exports_and_erases_with_a_confirmation_and_the_auditor_sees_every_line() {
    let pg = Pg::start();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&pg, dir.path());
    two_devices(&server, dir.path(), "alice@example.com");
    let b = Browser::start();
    b.sign_in(&server, DPO);
    b.look_up("alice@example.com");
    let page = b.url();
    // Export: the form's POST (with the session cookie and the page's CSRF token) downloads the JSON.
    let csrf = b.value("form[action$=export] input[name=csrf]");
    let cookie = b.session_cookie()["value"].as_str().unwrap().to_string();
    let mut r = agent()
        .post(&format!("{page}/export"))
        .header("cookie", &format!("ck_console={cookie}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .send(format!("csrf={csrf}"))
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers().get("content-disposition").unwrap().to_str().unwrap().starts_with("attachment"));
    let doc: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(doc["format"], json!("consentkit-server-export/1"));
    assert_eq!(doc["devices"].as_array().unwrap().len(), 2);
    // Every form that changes anything needs the page's token: without it (or with another),
    // export, erase and sign-out are refused and nothing happens.
    for (path, body) in [
        (format!("{page}/export"), String::new()),
        (format!("{page}/erase"), "csrf=0000".to_string()),
        (format!("{}/console/logout", server.url), String::new()),
    ] {
        let mut r = agent()
            .post(&path)
            .header("cookie", &format!("ck_console={cookie}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .send(body)
            .unwrap();
        assert_eq!(r.status().as_u16(), 403, "{path}");
        assert!(r.body_mut().read_to_string().unwrap().contains("CSRF"), "{path}");
    }
    assert_eq!(pg.count("SELECT count(*) FROM events WHERE has_subject"), 4, "a forged erase erased nothing");
    let still = agent().get(&page).header("cookie", &format!("ck_console={cookie}")).call().unwrap();
    assert_eq!(still.status().as_u16(), 200, "a forged sign-out did not end the session");

    // Erase: a confirmation naming what goes, then the receipt.
    b.click("#erase");
    b.wait_url(|u| u.ends_with("/erase"));
    let confirm = b.text("#confirm-text");
    assert!(confirm.contains("4 events") && confirm.contains("phone") && confirm.contains("tablet"), "{confirm}");
    assert_eq!(pg.count("SELECT count(*) FROM events WHERE has_subject"), 4, "nothing erased before the confirmation");
    b.click("#confirm-erase");
    assert!(b.text("#erased").contains("4 events were deleted"), "{}", b.source());
    assert!(b.text("#receipt").contains("signature"));
    assert!(!b.source().contains("alice"), "the receipt page does not name the subject");
    b.screenshot("erasure-receipt");
    assert_eq!(pg.count("SELECT count(*) FROM events WHERE has_subject"), 0);
    b.click("header button[type=submit]"); // sign out
    assert!(b.wait_url(|u| u.ends_with("/console/login")).ends_with("/console/login"));

    b.sign_in(&server, AUDITOR);
    b.go(&format!("{}/console/audit", server.url));
    b.wait_url(|u| u.ends_with("/console/audit"));
    assert!(b.text("#chain-status").starts_with("Chain intact"), "{}", b.text("#chain-status"));
    let actions: Vec<String> = b.text("#log tbody").lines().map(String::from).collect();
    let joined = actions.join("\n");
    for action in
        ["console_sign_in", "console_lookup_page", "console_subject", "export", "console_erase_confirm", "erase", "console_sign_out"]
    {
        assert!(joined.contains(&format!(" {action} ")), "no {action} line:\n{joined}");
    }
    assert!(joined.contains("dora (dpo)"));
    b.screenshot("access-log");
}

#[test]
fn stored_markup_is_text_forms_need_their_csrf_token_and_an_expired_session_returns_to_the_lookup() {
    let pg = Pg::start();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(&pg, dir.path(), json!({}));
    let server = Server::start_with(&config);
    let evil = "<script>alert('x')</script>";
    two_devices(&server, dir.path(), evil);
    // A sealed event whose category holds markup and a bidirectional override (the server stores it
    // as sent; a control character such as a terminal escape is refused at ingest, tests/hostile.rs).
    let phone = Device::new(dir.path(), "phone", PHONE, "2026-02-02T08:00:00Z");
    let last = phone.store.chain_rows().unwrap().pop().unwrap();
    let mut r = consentkit_core::Receipt::blank(
        Action::Grant,
        Source::Settings,
        "ucanywhere",
        "2018-05-01",
        consentkit_core::Timestamp::parse("2026-02-02T08:00:00Z").unwrap(),
    );
    r.id = "evil-1".into();
    r.seq = last.seq + 1;
    r.subject = Some(evil.into());
    r.category = Some("\u{202e}red<b>bold</b>".into());
    consentkit_core::chain::seal(&mut r, &last.hash);
    let sent = post(
        &format!("{}/v1/devices/phone/batches", server.url),
        PHONE,
        &serde_json::to_value(consentkit_server::wire::Batch::new("phone", vec![r])).unwrap(),
    );
    assert_eq!(sent.status, 200, "{}", sent.text);
    let b = Browser::start();
    b.sign_in(&server, SUPPORT);
    b.look_up(evil);
    let source = b.source();
    assert!(!source.contains("<script>") && !source.contains("<b>bold"), "markup is escaped");
    assert_eq!(b.script("return document.querySelectorAll('script, b').length"), json!(0), "no stored markup became an element");
    assert!(b.text("#events").contains("\\u{202e}red<b>bold</b>"), "the escape is shown as text: {}", b.text("#events"));
    assert_eq!(b.text("tr[data-category=photos_media] .status"), "refused", "the evil subject's page works");

    // CSRF: a form post without the page's token (or with another) is refused and does nothing.
    let cookie = b.session_cookie()["value"].as_str().unwrap().to_string();
    for body in ["subject=bob".to_string(), "subject=bob&csrf=0000".to_string()] {
        let mut r = agent()
            .post(&format!("{}/console/lookup", server.url))
            .header("cookie", &format!("ck_console={cookie}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .send(body)
            .unwrap();
        assert_eq!(r.status().as_u16(), 403);
        assert!(r.body_mut().read_to_string().unwrap().contains("CSRF"));
    }

    // Login CSRF: a sign-in posted from another site is refused and sets no session cookie.
    for (name, value) in [("origin", "http://evil.example"), ("sec-fetch-site", "cross-site")] {
        let mut r = agent()
            .post(&format!("{}/console/login", server.url))
            .header(name, value)
            .header("content-type", "application/x-www-form-urlencoded")
            .send(format!("token={SUPPORT}"))
            .unwrap();
        assert_eq!(r.status().as_u16(), 403, "{name}: {value}");
        assert!(r.headers().get("set-cookie").is_none(), "{name}: {value}: no session for a cross-site sign-in");
        assert!(r.body_mut().read_to_string().unwrap().contains("another site"));
    }

    // Wrong tokens stay on the sign-in page with a clear message.
    b.click("header button[type=submit]");
    b.wait_url(|u| u.ends_with("/console/login"));
    b.type_into("#token", "not-a-token");
    b.click("#sign-in");
    b.wait_for("#message");
    assert!(b.text("#message").contains("unknown token"), "{}", b.text("#message"));
    b.screenshot("sign-in-refused");

    // The session expires (a second server on the same database, with 5 s sessions, so that only
    // this part depends on the session's length): back to sign-in, and after it, back to the
    // same lookup.
    let mut short: Value = serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    short["console_session_seconds"] = json!(5);
    let short_config = config.with_file_name("server-short.json");
    std::fs::write(&short_config, short.to_string()).unwrap();
    let short = Server::start_with(&short_config);
    b.sign_in(&short, SUPPORT);
    b.look_up(evil);
    let subject_page = b.url();
    assert!(subject_page.starts_with(&short.url), "{subject_page}");
    std::thread::sleep(Duration::from_millis(5500));
    b.go(&subject_page);
    assert!(b.url().contains("/console/login?next="), "{}", b.url());
    b.wait_for("#message");
    assert!(b.text("#message").contains("session ended"));
    b.type_into("#token", SUPPORT);
    b.click("#sign-in");
    b.wait_url(|u| u == subject_page);
    assert_eq!(b.url(), subject_page, "the lookup survived the expired session");
    assert_eq!(b.text("tr[data-category=photos_media] .status"), "refused");
    b.screenshot("back-to-the-lookup-after-expiry");
}

/// Signs in over plain HTTP (no browser): the session cookie's value, or the refusal's status.
fn http_sign_in(server: &Server, token: &str) -> Result<String, u16> {
    let r = agent()
        .post(&format!("{}/console/login", server.url))
        .config()
        .max_redirects(0)
        .build()
        .header("content-type", "application/x-www-form-urlencoded")
        .send(format!("token={token}"))
        .unwrap();
    let cookie = r.headers().get("set-cookie").and_then(|v| v.to_str().ok()).and_then(|c| c.split(';').next()).map(String::from);
    match (r.status().as_u16(), cookie) {
        (303, Some(c)) => Ok(c),
        (status, _) => Err(status),
    }
}

/// Posts the sign-in form with `token` over a connection from the local address `from` (another
/// loopback address is another client), with `headers` added; the reply's status.
fn sign_in_from(server: &Server, from: &str, token: &str, headers: &[(&str, &str)]) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let addr: std::net::SocketAddr = server.url.trim_start_matches("http://").parse().unwrap();
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
        let mut stream = socket.connect(addr).await.unwrap();
        let body = format!("token={token}");
        let mut request = format!(
            "POST /console/login HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        request.push_str(&body);
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).await.unwrap();
        let text = String::from_utf8_lossy(&reply).to_string();
        text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("not an HTTP reply: {text}"))
    })
}

#[test]
fn failed_sign_ins_lock_out_their_own_address_only() {
    let pg = Pg::start();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&pg, dir.path());
    let limit = consentkit_server::console::LOCKOUT_FAILURES;
    for attempt in 1..limit {
        assert_eq!(sign_in_from(&server, "127.0.0.1", "not-a-token", &[]), 401, "attempt {attempt}");
    }
    assert_eq!(sign_in_from(&server, "127.0.0.1", "not-a-token", &[]), 429, "the address is locked at the limit");
    assert_eq!(sign_in_from(&server, "127.0.0.1", SUPPORT, &[]), 429, "even for a good token: the guesser gains nothing");
    assert_eq!(sign_in_from(&server, "127.0.0.2", SUPPORT, &[]), 303, "another support engineer still signs in");
    assert_eq!(sign_in_from(&server, "127.0.0.2", "typo", &[]), 401, "and a typo there is that address's first failure");
    // An X-Forwarded-For from a peer that is not a trusted proxy changes nothing.
    assert_eq!(sign_in_from(&server, "127.0.0.3", SUPPORT, &[("x-forwarded-for", "127.0.0.1")]), 303);

    // Behind a trusted reverse proxy (every client arrives from 127.0.0.1), the client it names.
    let behind = tempfile::tempdir().unwrap();
    let config = write_config(&pg, behind.path(), json!({ "console_trusted_proxies": ["127.0.0.1"] }));
    let proxied = Server::start_with(&config);
    let client = |ip: &'static str| [("x-forwarded-for", ip)];
    for attempt in 1..limit {
        assert_eq!(sign_in_from(&proxied, "127.0.0.1", "not-a-token", &client("203.0.113.5")), 401, "attempt {attempt}");
    }
    assert_eq!(sign_in_from(&proxied, "127.0.0.1", "not-a-token", &client("203.0.113.5")), 429);
    assert_eq!(sign_in_from(&proxied, "127.0.0.1", SUPPORT, &client("203.0.113.5")), 429);
    assert_eq!(sign_in_from(&proxied, "127.0.0.1", SUPPORT, &client("203.0.113.6")), 303, "another client behind the proxy");
    // A client reaching the server directly cannot pick its bucket with the header.
    for _ in 0..limit {
        sign_in_from(&proxied, "127.0.0.2", "not-a-token", &client("203.0.113.6"));
    }
    assert_eq!(sign_in_from(&proxied, "127.0.0.2", SUPPORT, &[]), 429, "the direct peer was locked");
    assert_eq!(sign_in_from(&proxied, "127.0.0.1", SUPPORT, &client("203.0.113.6")), 303, "the client it named was not");
}

fn http_page(server: &Server, cookie: &str, path: &str) -> (u16, String) {
    let r = agent().get(&format!("{}{path}", server.url)).config().max_redirects(0).build().header("cookie", cookie).call().unwrap();
    let location = r.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    (r.status().as_u16(), location)
}

#[test]
fn repeated_failed_sign_ins_lock_sign_in_and_a_session_ends_when_its_token_expires() {
    let pg = Pg::start();
    let dir = tempfile::tempdir().unwrap();
    const TEMPORARY: &str = "tok-temporary-support-0099";
    let expires = consentkit_core::Timestamp(consentkit_server::wire::now().millis() + 6_000);
    let h = consentkit_server::config::hash_token;
    let config = write_config(&pg, dir.path(), json!({}));
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    doc["tokens"].as_array_mut().unwrap().push(json!({
        "name": "temp support", "role": "support", "sha256": h(TEMPORARY), "expires": expires.to_string()
    }));
    std::fs::write(&config, doc.to_string()).unwrap();
    let server = Server::start_with(&config);

    // A session signed in with a token that expires ends with it, even before its own expiry.
    let cookie = http_sign_in(&server, TEMPORARY).expect("the temporary token signs in");
    assert_eq!(http_page(&server, &cookie, "/console/lookup").0, 200);
    while consentkit_server::wire::now() <= expires {
        std::thread::sleep(Duration::from_millis(200));
    }
    let (status, location) = http_page(&server, &cookie, "/console/lookup");
    assert_eq!((status, location.starts_with("/console/login")), (303, true), "{status} {location}");

    // Behind a TLS proxy the session cookie is Secure.
    let set_cookie = |proto: &str| {
        let r = agent()
            .post(&format!("{}/console/login", server.url))
            .config()
            .max_redirects(0)
            .build()
            .header("x-forwarded-proto", proto)
            .header("content-type", "application/x-www-form-urlencoded")
            .send(format!("token={SUPPORT}"))
            .unwrap();
        r.headers().get("set-cookie").unwrap().to_str().unwrap().to_string()
    };
    let behind_tls = set_cookie("https");
    assert!(behind_tls.contains("; Secure") && behind_tls.contains("HttpOnly") && behind_tls.contains("SameSite=Strict"), "{behind_tls}");
    assert!(!set_cookie("http").contains("Secure"), "plain HTTP (development on loopback) cannot carry a Secure cookie");

    // Failed sign-ins: each is logged; after the limit, sign-in from this address is locked, even
    // for a good token (other addresses: `failed_sign_ins_lock_out_their_own_address_only`).
    for attempt in 1..consentkit_server::console::LOCKOUT_FAILURES {
        assert_eq!(http_sign_in(&server, "not-a-token"), Err(401), "attempt {attempt}");
    }
    assert_eq!(http_sign_in(&server, "not-a-token"), Err(429), "the last failure within the window locks");
    assert_eq!(http_sign_in(&server, SUPPORT), Err(429), "locked for every token from here until the window passes");
    let log = get_auth(&format!("{}/v1/access-log", server.url), AUDITOR);
    let failed = log.matches("console_sign_in_failed").count();
    assert_eq!(failed, consentkit_server::console::LOCKOUT_FAILURES, "one access-log line per failed sign-in");
    assert!(!log.contains("not-a-token"), "the typed token is never logged");
}

fn get_auth(url: &str, token: &str) -> String {
    agent().get(url).header("authorization", &format!("Bearer {token}")).call().unwrap().body_mut().read_to_string().unwrap()
}

fn http_form(server: &Server, cookie: &str, path: &str, body: &str) -> (u16, String) {
    let mut r = agent()
        .post(&format!("{}{path}", server.url))
        .config()
        .max_redirects(0)
        .build()
        .header("cookie", cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .send(body.to_string())
        .unwrap();
    let location = r.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let text = r.body_mut().read_to_string().unwrap_or_default();
    (r.status().as_u16(), if location.is_empty() { text } else { location })
}

#[test]
fn a_form_posted_without_its_csrf_token_is_refused_and_the_attempt_is_in_the_access_log() {
    let AliceGrantedOnPhone { pg, dir: _dir, server, phone: _phone } = AliceGrantedOnPhone::start();
    let cookie = http_sign_in(&server, DPO).expect("the DPO signs in");
    let mut page = agent().get(&format!("{}/console/lookup", server.url)).header("cookie", &cookie).call().unwrap();
    let page = page.body_mut().read_to_string().unwrap();
    let csrf = page.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let (status, subject_page) = http_form(&server, &cookie, "/console/lookup", &format!("csrf={csrf}&subject=alice"));
    assert_eq!(status, 303);
    // A page elsewhere makes the DPO's browser post the erasure (its session cookie goes along
    // where SameSite is not honoured); it cannot know the form's token.
    let (status, body) = http_form(&server, &cookie, &format!("{subject_page}/erase"), "csrf=guessed");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("CSRF"), "{body}");
    assert_eq!(pg.count("SELECT count(*) FROM events"), 1, "nothing was erased");
    let (status, _) = http_form(&server, &cookie, "/console/lookup", "subject=bob");
    assert_eq!(status, 403);
    // Refused attempts on a bank's console are access events: the auditor sees each, by whom.
    let log: Value = serde_json::from_str(&get_auth(&format!("{}/v1/access-log", server.url), AUDITOR)).unwrap();
    let refused: Vec<(&str, &str)> = log["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["action"] == json!("console_csrf_refused"))
        .map(|l| (l["actor"].as_str().unwrap(), l["detail"].as_str().unwrap()))
        .collect();
    assert_eq!(refused.len(), 2, "{log}");
    assert!(refused.iter().all(|(actor, _)| *actor == "dora (dpo)"), "{refused:?}");
    assert!(refused.iter().any(|(_, d)| d.contains("Erasure")) && refused.iter().any(|(_, d)| d.contains("lookup")), "{refused:?}");
    assert!(!log.to_string().contains("alice") && !log.to_string().contains("bob"), "no identifier in the log");
}

#[test]
fn a_sign_in_refusal_speaks_of_the_token_typed_not_of_http_headers() {
    let pg = Pg::start();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&pg, dir.path());
    for typed in ["", "   ", "tok-with-a-newline%0Ainside", "caf%C3%A9"] {
        let mut r = agent()
            .post(&format!("{}/console/login", server.url))
            .config()
            .max_redirects(0)
            .build()
            .header("content-type", "application/x-www-form-urlencoded")
            .send(format!("token={typed}"))
            .unwrap();
        let page = r.body_mut().read_to_string().unwrap();
        assert_eq!(r.status().as_u16(), 401, "{typed}: {page}");
        assert!(page.contains("unknown token"), "{typed}: {page}");
        assert!(!page.contains("Authorization") && !page.contains("Bearer"), "{typed}: the console user typed no header: {page}");
    }
}

#[test]
fn the_subject_page_lists_categories_the_servers_policy_does_not_know_apart() {
    let pg = Pg::start();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&pg, dir.path());
    let phone = Device::with_policy(dir.path(), "phone", PHONE, "2026-03-01T10:00:00Z", newer_policy());
    phone.decide("alice", "health_data", Action::Grant, Source::Onboarding);
    phone.decide("alice", "photos_media", Action::Grant, Source::Onboarding);
    phone.decide("bob", "photos_media", Action::Grant, Source::Onboarding);
    phone.sync_all(&server);
    let cookie = http_sign_in(&server, SUPPORT).expect("support signs in");
    let mut page = agent().get(&format!("{}/console/lookup", server.url)).header("cookie", &cookie).call().unwrap();
    let page = page.body_mut().read_to_string().unwrap();
    let csrf = page.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let (status, subject_page) = http_form(&server, &cookie, "/console/lookup", &format!("csrf={csrf}&subject=alice"));
    assert_eq!(status, 303);
    let mut r = agent().get(&format!("{}{subject_page}", server.url)).header("cookie", &cookie).call().unwrap();
    let html = r.body_mut().read_to_string().unwrap();
    let notice = html.split("id=\"unknown-categories\"").nth(1).expect("a notice of the unknown category");
    let notice = notice.split("</div>").next().unwrap();
    assert!(notice.contains("health_data") && notice.contains("1 event(s)") && notice.contains("count for nothing"), "{notice}");
    assert!(html.contains("health_data (not in the server&#39;s policy)"), "the event row is marked: {html}");
    let statuses = html.split("id=\"statuses\"").nth(1).unwrap().split("</table>").next().unwrap();
    assert!(!statuses.contains("health_data"), "not among the policy's categories");
    // A subject with known categories only shows no such notice.
    let (status, bob_page) = http_form(&server, &cookie, "/console/lookup", &format!("csrf={csrf}&subject=bob"));
    assert_eq!(status, 303, "{bob_page}");
    let mut r = agent().get(&format!("{}{bob_page}", server.url)).header("cookie", &cookie).call().unwrap();
    assert!(!r.body_mut().read_to_string().unwrap().contains("unknown-categories"));
}
