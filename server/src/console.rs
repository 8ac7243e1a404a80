//! The support console: server-rendered pages (askama, no JavaScript) over the same queries as the
//! API (`query.rs`, `access_log.rs`), for the people who answer tickets.
//!
//! Security: sign-in with a role's token gives an HttpOnly, SameSite=Strict session cookie that
//! expires; every form that changes anything carries the session's CSRF token; a strict
//! Content-Security-Policy (no script at all, styles from this server only); every value is
//! escaped by the templates and control characters are shown as escapes; each page and action
//! appends to the access log; a subject is looked up by a POST form and then named by an opaque
//! handle, never by its identifier in a URL. Handles outlive sessions (bound to the token's
//! name), so an expired session signs in again and comes back to the same lookup.

// A handler's early exit is a whole page (sign-in, 403): returned as `Err(Response)` by design.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use consentkit_core::{Action, Status, Timestamp};
use serde::Deserialize;
use serde_json::json;

use crate::access_log;
use crate::api::App;
use crate::auth::Caller;
use crate::config::Role;
use crate::error::ApiError;
use crate::query::{self, DeviceEvent, SubjectView};

/// How long a session lasts without signing in again (the config's `console_session_seconds`).
pub const SESSION_TTL: Duration = Duration::from_secs(30 * 60);
/// How long a lookup handle stays valid for its actor.
pub const HANDLE_TTL: Duration = Duration::from_secs(8 * 60 * 60);
/// How many live lookup handles one actor holds at most: a further lookup retires that actor's
/// oldest, so a signed-in account looking subjects up in a loop cannot grow the table without end.
pub const HANDLES_PER_ACTOR: usize = 200;
/// The Content-Security-Policy of every console response.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
const COOKIE: &str = "ck_console";

struct Session {
    caller: Caller,
    csrf: String,
    expires: Instant,
}

struct Handle {
    subject: String,
    actor: String,
    expires: Instant,
}

pub use crate::lockout::{LOCKOUT_FAILURES, LOCKOUT_WINDOW};

/// Sessions, lookup handles and recent failed sign-ins per client address, in memory (a restart
/// signs everyone out).
pub struct Console {
    sessions: Mutex<HashMap<String, Session>>,
    handles: Mutex<HashMap<String, Handle>>,
    lockout: crate::lockout::SignInLockout,
    trusted_proxies: Vec<std::net::IpAddr>,
    session_ttl: Duration,
}

impl Console {
    /// A console whose sessions last `session_ttl`, taking no proxy's `X-Forwarded-For`.
    pub fn new(session_ttl: Duration) -> Console {
        Console {
            sessions: Mutex::default(),
            handles: Mutex::default(),
            lockout: Default::default(),
            trusted_proxies: Vec::new(),
            session_ttl,
        }
    }

    /// A new lookup handle for `actor`'s lookup of `subject`, valid for [`HANDLE_TTL`]. Expired
    /// handles go first; an actor who already holds [`HANDLES_PER_ACTOR`] loses the oldest.
    fn new_handle(&self, subject: String, actor: &str) -> String {
        let handle = random_id();
        let now = Instant::now();
        let mut handles = self.handles.lock().unwrap_or_else(|e| e.into_inner());
        handles.retain(|_, h| h.expires > now);
        let mut own: Vec<(Instant, String)> =
            handles.iter().filter(|(_, h)| h.actor == actor).map(|(k, h)| (h.expires, k.clone())).collect();
        if own.len() >= HANDLES_PER_ACTOR {
            own.sort();
            for (_, old) in own.iter().take(own.len() + 1 - HANDLES_PER_ACTOR) {
                handles.remove(old);
            }
        }
        handles.insert(handle.clone(), Handle { subject, actor: actor.to_string(), expires: now + HANDLE_TTL });
        handle
    }

    /// The same console, taking the client's address from `X-Forwarded-For` when the request
    /// comes from one of `proxies` (the config's `console_trusted_proxies`), for the lockout.
    pub fn trusting_proxies(mut self, proxies: Vec<std::net::IpAddr>) -> Console {
        self.trusted_proxies = proxies;
        self
    }
}

impl Default for Console {
    fn default() -> Console {
        Console::new(SESSION_TTL)
    }
}

fn random_id() -> String {
    crate::keys::random_bytes::<16>().map(|b| consentkit_core::chain::hex(&b)).unwrap_or_else(|_| uuid::Uuid::new_v4().simple().to_string())
}

/// Shows control characters (terminal escapes) and invisible format characters (bidirectional
/// overrides that reorder the rest of a line, zero-width spaces that make two ids look alike: the
/// core's `input::is_format_char`, as the support tool escapes them) as visible escapes; HTML
/// escaping is the templates'.
pub fn visible(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() || consentkit_core::input::is_format_char(c) { c.escape_default().collect() } else { c.to_string() })
        .collect()
}

/// The console's routes (mounted under `/console`).
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/console", get(|| async { redirect("/console/lookup") }))
        .route("/console/login", get(login_page).post(login))
        .route("/console/logout", post(logout))
        .route("/console/lookup", get(lookup_page).post(lookup))
        .route("/console/subjects/{handle}", get(subject_page))
        .route("/console/subjects/{handle}/export", post(export))
        .route("/console/subjects/{handle}/erase", get(erase_confirm).post(erase))
        .route("/console/audit", get(audit_page))
        .route("/console/static/console.css", get(css))
        .layer(axum::middleware::map_response(console_response))
}

/// Every console response has the security headers, and a request axum refused before any handler
/// ran (a path or query that does not decode, e.g. `/console/subjects/%FF`, `?next=a&next=b`) is
/// shown as the console's own error page, not as axum's plain text.
async fn console_response(response: Response) -> Response {
    let plain = response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|t| t.starts_with("text/plain"));
    if plain && response.status().is_client_error() {
        return html(
            response.status(),
            ErrorPage {
                title: "Bad request".into(),
                message: "This address or form could not be read: go back to the lookup and try again.".into(),
                signed_in: false,
            },
        );
    }
    secure(response)
}

/// The page for a console address that does not exist (the API's fallback answers JSON elsewhere).
pub fn not_found_page() -> Response {
    html(
        StatusCode::NOT_FOUND,
        ErrorPage { title: "Page not found".into(), message: "The console has no such page.".into(), signed_in: false },
    )
}

fn secure(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn html(status: StatusCode, page: impl Template) -> Response {
    match page.render() {
        Ok(body) => secure((status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()),
        Err(_) => secure((StatusCode::INTERNAL_SERVER_ERROR, "the page could not be rendered").into_response()),
    }
}

fn redirect(to: &str) -> Response {
    secure((StatusCode::SEE_OTHER, [(header::LOCATION, to.to_string())]).into_response())
}

async fn css() -> Response {
    secure(([(header::CONTENT_TYPE, "text/css; charset=utf-8")], include_str!("../templates/console.css")).into_response())
}

fn cookie_of(headers: &HeaderMap) -> Option<String> {
    let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
    cookies.split(';').filter_map(|c| c.trim().strip_prefix(&format!("{COOKIE}="))).map(String::from).next()
}

/// The signed-in user of a request, or the sign-in page that brings them back to `here`.
fn session(app: &App, headers: &HeaderMap, here: &str) -> Result<(Caller, String), Response> {
    // Back here after the sign-in, when `here` is a path `safe_next` takes back; any other text (a
    // handle typed with `?`, `"`, a CR LF) returns to the lookup, never into the Location header.
    let back = || {
        let next = here.trim_start_matches('/').replace('/', "~");
        let next = if safe_next(Some(&next)) == here { next } else { "console~lookup".into() };
        redirect(&format!("/console/login?next={next}"))
    };
    let Some(id) = cookie_of(headers) else { return Err(back()) };
    let mut sessions = app.console.sessions.lock().unwrap_or_else(|e| e.into_inner());
    match sessions.get(&id) {
        Some(s) if s.expires > Instant::now() && s.caller.expires.is_none_or(|t| t > crate::wire::now()) => {
            Ok((s.caller.clone(), s.csrf.clone()))
        }
        Some(_) => {
            sessions.remove(&id);
            Err(back())
        }
        None => Err(back()),
    }
}

/// The 403 page (logged: a refused attempt is an access event too).
async fn forbidden(app: &App, caller: &Caller, what: &str) -> Response {
    if let Err(e) = log_action(app, &app.keys.actor_key(&caller.name), caller, "console_forbidden", json!({ "page": what })).await {
        return failure(e);
    }
    html(
        StatusCode::FORBIDDEN,
        ErrorPage {
            title: "Not allowed".into(),
            message: format!("{what} is not open to your role: you are signed in as {} ({}).", visible(&caller.name), caller.role.as_str()),
            signed_in: true,
        },
    )
}

fn failure(e: ApiError) -> Response {
    let status = e.status;
    html(status, ErrorPage { title: "Something went wrong".into(), message: e.message, signed_in: true })
}

/// The form's CSRF token against the session's (in constant time); a refusal is an access event
/// too, appended under the signed-in actor with the page it was aimed at (`what`).
async fn check_csrf(app: &App, caller: &Caller, expected: &str, given: &str, what: &str) -> Result<(), Response> {
    if expected.is_empty() || expected.len() != given.len() || expected.bytes().zip(given.bytes()).fold(0u8, |a, (x, y)| a | (x ^ y)) != 0 {
        if let Err(e) = log_action(app, &app.keys.actor_key(&caller.name), caller, "console_csrf_refused", json!({ "page": what })).await {
            return Err(failure(e));
        }
        return Err(html(
            StatusCode::FORBIDDEN,
            ErrorPage {
                title: "Form expired".into(),
                message: "This form's security token is missing or wrong (CSRF): reload the page and try again.".into(),
                signed_in: true,
            },
        ));
    }
    Ok(())
}

// ----- templates -----

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    title: String,
    message: String,
    signed_in: bool,
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    next: String,
    message: String,
}

#[derive(Template)]
#[template(path = "lookup.html")]
struct LookupPage {
    user: String,
    role: String,
    csrf: String,
    message: String,
}

/// A category row of the subject page.
pub struct CategoryRow {
    pub id: String,
    pub title: String,
    pub legal_basis: String,
    pub status: String,
    pub since: String,
    pub device: String,
}

/// A device row.
pub struct DeviceRow {
    pub device: String,
    pub permissions: Vec<(String, String, String)>,
}

/// A feature and why it is on or off.
pub struct FeatureRow {
    pub id: String,
    pub allowed: bool,
    pub explanation: String,
}

/// One mark of the timeline picture.
pub struct Mark {
    pub x: f64,
    pub y: f64,
    pub class: String,
    pub label: String,
}

/// One row label of the picture.
pub struct Lane {
    pub y: f64,
    pub label: String,
}

/// One event of the table below the picture.
pub struct EventRow {
    pub at: String,
    pub device: String,
    pub category: String,
    pub action: String,
    pub source: String,
}

#[derive(Template)]
#[template(path = "subject.html")]
struct SubjectPage {
    user: String,
    role: String,
    csrf: String,
    handle: String,
    is_dpo: bool,
    categories: Vec<CategoryRow>,
    devices: Vec<DeviceRow>,
    features: Vec<FeatureRow>,
    lanes: Vec<Lane>,
    marks: Vec<Mark>,
    events: Vec<EventRow>,
    /// Categories of the subject's events the server's policy does not know: (id, events, last
    /// event, devices), all escaped.
    unknown: Vec<(String, u64, String, String)>,
    /// The subject's erasures on the server: (when, receipt id, events deleted), escaped.
    erasures: Vec<(String, String, u64)>,
    width: u32,
    height: u32,
    first: String,
    last: String,
}

#[derive(Template)]
#[template(path = "erase.html")]
struct ErasePage {
    user: String,
    role: String,
    csrf: String,
    handle: String,
    events: usize,
    devices: Vec<String>,
    done: bool,
    receipt: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    user: String,
    role: String,
    csrf: String,
    intact: bool,
    lines: u64,
    chains: u64,
    problem: String,
    rows: Vec<access_log::AccessLine>,
}

// ----- sign in and out -----

#[derive(Deserialize)]
struct NextQuery {
    #[serde(default)]
    next: Option<String>,
}

fn safe_next(next: Option<&str>) -> String {
    match next {
        // Only a console path of this server (never `//host`: no open redirect).
        Some(n) if n.starts_with("console~") && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '~' || c == '-' || c == '_') => {
            format!("/{}", n.replace('~', "/"))
        }
        _ => "/console/lookup".into(),
    }
}

async fn login_page(Query(q): Query<NextQuery>) -> Response {
    let next = q.next.unwrap_or_default();
    let message = if next.is_empty() { String::new() } else { "Sign in to continue (your session ended).".into() };
    html(StatusCode::OK, LoginPage { next, message })
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
    #[serde(default)]
    next: String,
}

/// True when the browser says the request came from another site (login CSRF: a page elsewhere
/// posting its own token to sign the victim's browser in as someone else). Current browsers send
/// `Sec-Fetch-Site` on every request, and it decides; older ones only `Origin`, which decides
/// unless it is `null` (what the console's `no-referrer` policy makes browsers send). A request
/// with neither (a script, curl) is not a browser being misused and is judged by its token alone.
fn cross_site(headers: &HeaderMap) -> bool {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_ascii_lowercase);
    if let Some(site) = text("sec-fetch-site") {
        return site != "same-origin" && site != "none";
    }
    match (text("origin"), text("host")) {
        (Some(origin), _) if origin == "null" => false,
        (Some(origin), Some(host)) => origin.split_once("://").map(|(_, h)| h) != Some(host.as_str()),
        (Some(_), None) => true,
        _ => false,
    }
}

/// The actor of failed sign-ins in the access log (no token was recognised, so nobody is named).
const FAILED_SIGN_IN_ACTOR: &str = "(failed sign-in)";

fn failed_sign_in() -> Caller {
    Caller { name: FAILED_SIGN_IN_ACTOR.into(), role: Role::Support, device: None, expires: None }
}

/// The page while sign-in is locked after too many failures.
fn locked_out(next: String) -> Response {
    let message = format!(
        "Sign-in from this address is locked: {LOCKOUT_FAILURES} failed sign-ins within {} s. Wait a minute, then try again.",
        LOCKOUT_WINDOW.as_secs()
    );
    let mut response = html(StatusCode::TOO_MANY_REQUESTS, LoginPage { next, message });
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
    response
}

async fn login(
    State(app): State<Arc<App>>,
    request_headers: HeaderMap,
    extensions: axum::http::Extensions,
    form: Result<Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    if cross_site(&request_headers) {
        return html(
            StatusCode::FORBIDDEN,
            LoginPage { next: String::new(), message: "Sign-in refused: the form was posted from another site (CSRF).".into() },
        );
    }
    let Ok(Form(form)) = form else {
        return html(StatusCode::BAD_REQUEST, LoginPage { next: String::new(), message: "The sign-in form was incomplete.".into() });
    };
    // Failed sign-ins lock the address they come from, never everyone (see `lockout`).
    let peer = extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0);
    let source = crate::lockout::source_of(peer, &request_headers, &app.console.trusted_proxies);
    if app.console.lockout.locked(source, Instant::now()) {
        return locked_out(form.next);
    }
    let refused = match app.tokens.by_token(form.token.trim()) {
        Ok(c) if c.role != Role::Device => Ok(c),
        Ok(_) => Err((StatusCode::FORBIDDEN, "Device tokens cannot sign in to the console.".to_string())),
        Err(e) => Err((StatusCode::UNAUTHORIZED, format!("Sign-in refused: {}.", e.message))),
    };
    let caller = match refused {
        Ok(c) => c,
        Err((status, message)) => {
            // A failed sign-in is an access event too; too many in a row lock sign-in for a while.
            let locked = app.console.lockout.failed(source, Instant::now());
            let detail = json!({ "reason": message, "locked": locked });
            if let Err(e) =
                log_action(&app, &app.keys.actor_key(FAILED_SIGN_IN_ACTOR), &failed_sign_in(), "console_sign_in_failed", detail).await
            {
                return failure(e);
            }
            if locked {
                return locked_out(form.next);
            }
            return html(status, LoginPage { next: form.next, message });
        }
    };
    let id = random_id();
    let csrf = random_id();
    let actor_key = app.keys.actor_key(&caller.name);
    let logged = log_action(&app, &actor_key, &caller, "console_sign_in", json!({})).await;
    if let Err(e) = logged {
        return failure(e);
    }
    app.console
        .sessions
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id.clone(), Session { caller, csrf, expires: Instant::now() + app.console.session_ttl });
    let mut response = redirect(&safe_next(Some(&form.next)));
    // Behind a TLS-terminating proxy (X-Forwarded-Proto: https) the cookie is Secure: never sent
    // over plain HTTP. Served directly (a loopback address in development), it cannot be.
    let secure = request_headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()).is_some_and(|p| p.eq_ignore_ascii_case("https"));
    let cookie = format!(
        "{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/console; Max-Age={}{}",
        app.console.session_ttl.as_secs(),
        if secure { "; Secure" } else { "" }
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    form: Result<Form<CsrfForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let (caller, csrf) = match session(&app, &headers, "/console/lookup") {
        Ok(s) => s,
        Err(r) => return r,
    };
    let given = form.map(|f| f.0.csrf).unwrap_or_default();
    if let Err(r) = check_csrf(&app, &caller, &csrf, &given, "Sign-out").await {
        return r;
    }
    if let Some(id) = cookie_of(&headers) {
        app.console.sessions.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
    }
    let _ = log_action(&app, &app.keys.actor_key(&caller.name), &caller, "console_sign_out", json!({})).await;
    let mut response = redirect("/console/login");
    response
        .headers_mut()
        .insert(header::SET_COOKIE, HeaderValue::from_static("ck_console=; HttpOnly; SameSite=Strict; Path=/console; Max-Age=0"));
    response
}

/// Appends an access-log line on its own (pages that read no subject data).
async fn log_action(app: &App, key: &str, caller: &Caller, action: &str, detail: serde_json::Value) -> Result<(), ApiError> {
    crate::api::log_alone(app, key, caller, action, detail).await
}

// ----- lookup -----

async fn lookup_page(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let (caller, csrf) = match session(&app, &headers, "/console/lookup") {
        Ok(s) => s,
        Err(r) => return r,
    };
    if let Err(e) = log_action(&app, &app.keys.actor_key(&caller.name), &caller, "console_lookup_page", json!({})).await {
        return failure(e);
    }
    html(StatusCode::OK, LookupPage { user: visible(&caller.name), role: caller.role.as_str().into(), csrf, message: String::new() })
}

#[derive(Deserialize)]
struct LookupForm {
    #[serde(default)]
    csrf: String,
    subject: String,
}

async fn lookup(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    form: Result<Form<LookupForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let (caller, csrf) = match session(&app, &headers, "/console/lookup") {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Ok(Form(form)) = form else { return lookup_error(&caller, csrf, "Type the subject's identifier.") };
    if let Err(r) = check_csrf(&app, &caller, &csrf, &form.csrf, "The lookup").await {
        return r;
    }
    if !matches!(caller.role, Role::Support | Role::Dpo) {
        return forbidden(&app, &caller, "Looking up a subject").await;
    }
    // The stored-id rule, as the API's lookups (a subject an older device synced as `" alice"`).
    if let Err(e) = consentkit_core::input::check_stored_subject(&form.subject) {
        return lookup_error(&caller, csrf, &visible(&e.to_string()));
    }
    let handle = app.console.new_handle(form.subject, &caller.name);
    redirect(&format!("/console/subjects/{handle}"))
}

fn lookup_error(caller: &Caller, csrf: String, message: &str) -> Response {
    html(
        StatusCode::UNPROCESSABLE_ENTITY,
        LookupPage { user: visible(&caller.name), role: caller.role.as_str().into(), csrf, message: message.into() },
    )
}

fn subject_of(app: &App, handle: &str, caller: &Caller) -> Option<String> {
    let handles = app.console.handles.lock().unwrap_or_else(|e| e.into_inner());
    handles.get(handle).filter(|h| h.actor == caller.name && h.expires > Instant::now()).map(|h| h.subject.clone())
}

fn unknown_handle() -> Response {
    html(
        StatusCode::NOT_FOUND,
        ErrorPage {
            title: "Lookup not found".into(),
            message: "This lookup has expired or belongs to someone else: look the subject up again.".into(),
            signed_in: true,
        },
    )
}

// ----- the subject page -----

fn day(t: Timestamp) -> String {
    t.to_rfc3339().chars().take(10).collect()
}

fn humane(id: &str) -> String {
    id.replace('_', " ")
}

fn explanation(
    view: &SubjectView,
    app: &App,
    decision: &consentkit_core::Decision,
    per_device: &[(String, consentkit_core::Decision)],
    now: Timestamp,
) -> String {
    if decision.allowed {
        return if decision.limited { "allowed, with limited OS access".into() } else { "allowed".into() };
    }
    let statuses = view.statuses(&app.policy, now).unwrap_or_default();
    let mut parts: Vec<String> = Vec::new();
    for r in &decision.reasons {
        let part = match r.code {
            consentkit_core::ReasonCode::OsPermissionDenied
            | consentkit_core::ReasonCode::OsPermissionNotDetermined
            | consentkit_core::ReasonCode::OsPermissionRestricted => {
                let devices: Vec<String> =
                    per_device.iter().filter(|(_, d)| d.reasons.contains(r)).map(|(name, _)| visible(name)).collect();
                let on =
                    if devices.is_empty() { "no device has reported it".to_string() } else { format!("on the {}", devices.join(", the ")) };
                format!(
                    "the {} OS permission is {} {on}",
                    humane(&r.category),
                    humane(r.code.as_str().trim_start_matches("os_permission_"))
                )
            }
            _ => {
                let found = statuses.iter().find(|(s, _)| s.category == r.category);
                match found {
                    Some((s, Some(device))) if s.since.is_some() => {
                        let on = visible(device);
                        format!("{} on {} on the {on}", status_words(s.status, &r.category), s.since.map(day).unwrap_or_default())
                    }
                    _ => format!("{} ({})", status_words(Status::NotAsked, &r.category), humane(r.code.as_str())),
                }
            }
        };
        if !parts.contains(&part) {
            parts.push(part);
        }
    }
    format!("off because: {}", parts.join("; "))
}

fn status_words(status: Status, category: &str) -> String {
    let c = humane(category);
    match status {
        Status::Refused => format!("consent to {c} refused"),
        Status::Withdrawn => format!("consent to {c} withdrawn"),
        Status::Expired => format!("consent to {c} expired"),
        Status::RenewalRequired => format!("consent to {c} needs renewal"),
        Status::Objected => format!("objection to {c}"),
        _ => format!("consent to {c} never asked"),
    }
}

fn mark_class(action: Action) -> &'static str {
    match action {
        Action::Grant | Action::WithdrawObjection => "grant",
        Action::Refuse | Action::Withdraw | Action::Expire => "deny",
        Action::Object => "object",
        _ => "other",
    }
}

/// Lays the timeline out: one lane per category of the policy's (`categories`), then one per
/// category of the events that the policy does not have (named as stored, marked as unknown, its
/// marks uncoloured: they count for nothing), and one for OS permissions; one mark per event.
pub fn picture(events: &[DeviceEvent], categories: &[String]) -> (Vec<Lane>, Vec<Mark>, u32, u32) {
    let (left, width, lane_h) = (170.0, 640.0, 28.0);
    let mut lanes_ids: Vec<String> = categories.to_vec();
    let mut labels: Vec<String> = categories.iter().map(|c| humane(c)).collect();
    for c in events.iter().filter_map(|e| e.receipt.category.as_deref()) {
        if !lanes_ids.iter().any(|l| l == c) {
            lanes_ids.push(c.to_string());
            labels.push(format!("{} (not in the server's policy)", visible(c)));
        }
    }
    let known = categories.len();
    if events.iter().any(|e| e.receipt.category.is_none()) {
        lanes_ids.push("OS permissions".into());
        labels.push("OS permissions".into());
    }
    let lanes: Vec<Lane> = labels.into_iter().enumerate().map(|(i, label)| Lane { y: 20.0 + i as f64 * lane_h, label }).collect();
    let (min, max) = events.iter().fold((i64::MAX, i64::MIN), |(a, b), e| (a.min(e.receipt.at.millis()), b.max(e.receipt.at.millis())));
    // No events (a subject the server holds nothing of): min > max, and no mark uses the span.
    let span = max.saturating_sub(min).max(1) as f64;
    let marks = events
        .iter()
        .map(|e| {
            let r = &e.receipt;
            // Every category has its lane (added above); OS permission events take the last one.
            let lane = match &r.category {
                Some(c) => lanes_ids.iter().position(|l| l == c).unwrap_or(lanes_ids.len() - 1),
                None => lanes_ids.len() - 1,
            };
            let unknown = lane >= known && r.category.is_some();
            let x = if min == max { left + width / 2.0 } else { left + (r.at.millis() - min) as f64 / span * width };
            let what = match (r.permission, r.os_state) {
                (Some(p), Some(s)) => format!("{p} {s}"),
                _ => format!("{} {}", r.action, r.category.as_deref().map(humane).unwrap_or_default()),
            };
            Mark {
                x,
                y: 20.0 + lane as f64 * lane_h,
                class: if unknown { "other".into() } else { mark_class(r.action).into() },
                label: visible(&format!("{} on the {}: {what}", r.at, e.device)),
            }
        })
        .collect();
    (lanes, marks, (left + width + 30.0) as u32, (30.0 + lanes_ids.len() as f64 * lane_h) as u32)
}

async fn subject_page(State(app): State<Arc<App>>, headers: HeaderMap, Path(handle): Path<String>) -> Response {
    let here = format!("/console/subjects/{handle}");
    let (caller, csrf) = match session(&app, &headers, &here) {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !matches!(caller.role, Role::Support | Role::Dpo) {
        return forbidden(&app, &caller, "A subject's page").await;
    }
    let Some(subject) = subject_of(&app, &handle, &caller) else { return unknown_handle() };
    let now = crate::wire::now();
    let app2 = app.clone();
    let key = app.keys.subject_key(&subject);
    let result = crate::api::logged_read(&app, &caller, &subject, "console_subject", json!({}), async |tx, view| {
        let timeline = query::timeline(tx, &app2.keys, &view).await?;
        let erasures = crate::api::erasure_receipts(tx, &key).await?;
        Ok((view, timeline, erasures))
    })
    .await;
    let (view, timeline, erasures) = match result {
        Ok(v) => v,
        Err(e) => return failure(e),
    };
    let policy = &app.policy;
    let statuses = match view.statuses(policy, now) {
        Ok(s) => s,
        Err(e) => return failure(e),
    };
    let categories = statuses
        .iter()
        .map(|(s, device)| CategoryRow {
            id: s.category.clone(),
            title: policy.category(&s.category).map(|c| c.title.clone()).unwrap_or_default(),
            legal_basis: humane(s.legal_basis.as_str()),
            status: s.status.as_str().into(),
            since: s.since.map(|t| t.to_string()).unwrap_or_else(|| "-".into()),
            device: device.clone().map(|d| visible(&d)).unwrap_or_else(|| "-".into()),
        })
        .collect();
    let devices = view
        .devices
        .iter()
        .map(|d| {
            let mut permissions: Vec<(String, String, String)> =
                d.os.iter().map(|(p, r)| (p.as_str().into(), humane(r.state.as_str()), r.since.to_string())).collect();
            permissions.sort();
            DeviceRow { device: visible(&d.device), permissions }
        })
        .collect();
    let mut features = Vec::new();
    for f in policy.features.iter().filter(|f| !f.per_item) {
        if let Ok((decision, per_device)) = view.check(policy, &f.id, None, None, now) {
            features.push(FeatureRow {
                id: humane(&f.id),
                allowed: decision.allowed,
                explanation: explanation(&view, &app, &decision, &per_device, now),
            });
        }
    }
    let category_ids: Vec<String> = policy
        .categories
        .iter()
        .filter(|c| timeline.iter().any(|e| e.receipt.category.as_deref() == Some(&c.id)))
        .map(|c| c.id.clone())
        .collect();
    let (lanes, marks, width, height) = picture(&timeline, &category_ids);
    let events = timeline
        .iter()
        .map(|e| EventRow {
            at: e.receipt.at.to_string(),
            device: visible(&e.device),
            category: match (e.receipt.permission, e.receipt.os_state) {
                (Some(p), Some(s)) => format!("OS {p} -> {s}"),
                _ => match e.receipt.category.as_deref() {
                    Some(c) if policy.category(c).is_err() => format!("{} (not in the server's policy)", visible(c)),
                    Some(c) => visible(c),
                    None => "-".into(),
                },
            },
            action: e.receipt.action.as_str().into(),
            source: e.receipt.source.as_str().into(),
        })
        .collect();
    let unknown = view
        .unknown_categories(policy)
        .into_iter()
        .map(|u| (visible(&u.id), u.events, u.last_at.to_string(), visible(&u.devices.join(", "))))
        .collect();
    let first = timeline.first().map(|e| day(e.receipt.at)).unwrap_or_default();
    let last = timeline.last().map(|e| day(e.receipt.at)).unwrap_or_default();
    html(
        StatusCode::OK,
        SubjectPage {
            user: visible(&caller.name),
            role: caller.role.as_str().into(),
            csrf,
            handle,
            is_dpo: caller.role == Role::Dpo,
            categories,
            devices,
            features,
            lanes,
            marks,
            events,
            unknown,
            erasures: erasures
                .iter()
                .map(|e| {
                    let text = |k: &str| visible(e[k].as_str().unwrap_or_default());
                    (text("erased_at"), text("id"), e["erased_events"].as_u64().unwrap_or_default())
                })
                .collect(),
            width,
            height,
            first,
            last,
        },
    )
}

// ----- export and erasure (DPO) -----

/// What every DPO page checks first, in this order: a live session (else the sign-in page, back
/// here after it), the form's CSRF token for a POST (`token` given), the DPO role (else a logged
/// refusal naming `what`), and the subject behind the handle. Returns the caller, the session's
/// CSRF token and the subject.
async fn dpo_subject(
    app: &Arc<App>,
    headers: &HeaderMap,
    here: &str,
    handle: &str,
    token: Option<String>,
    what: &str,
) -> Result<(Caller, String, String), Response> {
    let (caller, csrf) = session(app, headers, here)?;
    if let Some(given) = token {
        check_csrf(app, &caller, &csrf, &given, what).await?;
    }
    if caller.role != Role::Dpo {
        return Err(forbidden(app, &caller, what).await);
    }
    let Some(subject) = subject_of(app, handle, &caller) else { return Err(unknown_handle()) };
    Ok((caller, csrf, subject))
}

async fn export(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(handle): Path<String>,
    form: Result<Form<CsrfForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let here = format!("/console/subjects/{handle}");
    let token = Some(form.map(|f| f.0.csrf).unwrap_or_default());
    let (caller, _, subject) = match dpo_subject(&app, &headers, &here, &handle, token, "Export").await {
        Ok(s) => s,
        Err(r) => return r,
    };
    match crate::api::export_document(&app, &caller, &subject).await {
        Ok(doc) => {
            let body = serde_json::to_string_pretty(&doc).unwrap_or_default();
            secure(
                (
                    [
                        (header::CONTENT_TYPE, "application/json"),
                        (header::CONTENT_DISPOSITION, "attachment; filename=\"consentkit-export.json\""),
                    ],
                    body,
                )
                    .into_response(),
            )
        }
        Err(e) => failure(e),
    }
}

async fn erase_confirm(State(app): State<Arc<App>>, headers: HeaderMap, Path(handle): Path<String>) -> Response {
    let here = format!("/console/subjects/{handle}/erase");
    let (caller, csrf, subject) = match dpo_subject(&app, &headers, &here, &handle, None, "Erasure").await {
        Ok(s) => s,
        Err(r) => return r,
    };
    match crate::api::logged_read(&app, &caller, &subject, "console_erase_confirm", json!({}), async |_, view| Ok(view)).await {
        Ok(view) => html(
            StatusCode::OK,
            ErasePage {
                user: visible(&caller.name),
                role: caller.role.as_str().into(),
                csrf,
                handle,
                events: view.events.len(),
                devices: view.devices.iter().map(|d| visible(&d.device)).collect(),
                done: false,
                receipt: Vec::new(),
            },
        ),
        Err(e) => failure(e),
    }
}

async fn erase(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(handle): Path<String>,
    form: Result<Form<CsrfForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let here = format!("/console/subjects/{handle}/erase");
    let token = Some(form.map(|f| f.0.csrf).unwrap_or_default());
    let (caller, csrf, subject) = match dpo_subject(&app, &headers, &here, &handle, token, "Erasure").await {
        Ok(s) => s,
        Err(r) => return r,
    };
    match crate::api::erase_subject(&app, &caller, &subject).await {
        Ok((count, r)) => html(
            StatusCode::OK,
            ErasePage {
                user: visible(&caller.name),
                role: caller.role.as_str().into(),
                csrf,
                handle,
                events: count as usize,
                devices: r.devices.iter().map(|d| visible(d)).collect(),
                done: true,
                receipt: vec![
                    ("receipt".into(), r.id.clone()),
                    ("erased at".into(), r.erased_at.to_string()),
                    ("events erased".into(), r.erased_events.to_string()),
                    ("subject pseudonym".into(), r.subject_key.clone()),
                    ("signed by key".into(), r.key_id.clone()),
                    ("signature".into(), r.signature.clone()),
                ],
            },
        ),
        Err(e) => failure(e),
    }
}

// ----- the auditor -----

async fn audit_page(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let (caller, csrf) = match session(&app, &headers, "/console/audit") {
        Ok(s) => s,
        Err(r) => return r,
    };
    if caller.role != Role::Auditor {
        return forbidden(&app, &caller, "The access log").await;
    }
    // Its line ("console_audit") is committed before the log is read, by the shared reader.
    match crate::api::access_log_and_status(&app, &caller, "console_audit").await {
        Ok((mut rows, status)) => {
            rows.sort_by_key(|r| std::cmp::Reverse(r.at));
            for r in &mut rows {
                r.actor = visible(&r.actor);
            }
            html(
                StatusCode::OK,
                AuditPage {
                    user: visible(&caller.name),
                    role: caller.role.as_str().into(),
                    csrf,
                    intact: status.intact,
                    lines: status.lines,
                    chains: status.chains,
                    problem: status.problem.unwrap_or_default(),
                    rows,
                },
            )
        }
        Err(e) => failure(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_in_returns_only_to_console_paths() {
        assert_eq!(safe_next(Some("console~subjects~abc123")), "/console/subjects/abc123");
        for bad in ["~evil.example", "~~evil.example", "console~x?y", "https:~~evil", "", "other~page"] {
            assert_eq!(safe_next(Some(bad)), "/console/lookup", "{bad}");
        }
    }

    #[test]
    fn control_characters_are_shown_as_escapes() {
        assert_eq!(visible("a\u{1b}[31mb\n"), "a\\u{1b}[31mb\\n");
        assert_eq!(visible("<b>ok</b>"), "<b>ok</b>", "HTML escaping is the templates' job");
        assert_eq!(visible("tab\u{202e}let"), "tab\\u{202e}let", "a bidirectional override cannot reorder the page");
        assert_eq!(visible("phone\u{200b}"), "phone\\u{200b}", "nor a zero-width space pass for another id");
        assert_eq!(visible("Téléphone 📱"), "Téléphone 📱");
    }

    #[test]
    fn an_actor_holds_a_bounded_number_of_lookup_handles_and_loses_the_oldest() {
        let console = Console::new(SESSION_TTL);
        let live = |actor: &str| {
            let handles = console.handles.lock().unwrap_or_else(|e| e.into_inner());
            handles.values().filter(|h| h.actor == actor).count()
        };
        let first = console.new_handle("alice".into(), "support-1");
        let other = console.new_handle("bob".into(), "support-2");
        let mut last = String::new();
        for i in 0..HANDLES_PER_ACTOR + 50 {
            last = console.new_handle(format!("subject-{i}"), "support-1");
        }
        assert_eq!(live("support-1"), HANDLES_PER_ACTOR, "the table stops growing at the cap");
        let handles = console.handles.lock().unwrap_or_else(|e| e.into_inner());
        assert!(!handles.contains_key(&first), "the actor's oldest handle went first");
        assert!(handles.get(&last).is_some_and(|h| h.subject == format!("subject-{}", HANDLES_PER_ACTOR + 49)), "the newest stays");
        assert!(handles.get(&other).is_some_and(|h| h.subject == "bob"), "another actor's handle is untouched");
    }

    fn event(category: Option<&str>, at: i64, action: Action) -> DeviceEvent {
        let mut receipt = consentkit_core::Receipt::blank(action, consentkit_core::Source::Onboarding, "p", "1", Timestamp(at));
        receipt.subject = Some("alice".into());
        receipt.category = category.map(String::from);
        DeviceEvent { device: "phone".into(), receipt, received_at: Timestamp(at) }
    }

    #[test]
    fn an_unknown_category_gets_its_own_lane_never_a_policy_category_s() {
        // A grant of a category the server's policy does not know (the app runs a newer policy)
        // must not be drawn as a grant mark on the lane of a category the policy has.
        let events = [
            event(Some("device_contacts"), 1000, Action::Refuse),
            event(Some("health_data"), 2000, Action::Grant),
            event(Some("x\u{202e}y"), 2500, Action::Grant),
        ];
        let (lanes, marks, _, height) = picture(&events, &["device_contacts".to_string()]);
        let labels: Vec<&str> = lanes.iter().map(|l| l.label.as_str()).collect();
        assert_eq!(
            labels,
            ["device contacts", "health_data (not in the server's policy)", "x\\u{202e}y (not in the server's policy)"],
            "one lane each, named as stored (escaped), marked as unknown"
        );
        assert_eq!(marks[0].y, lanes[0].y);
        assert_eq!(marks[1].y, lanes[1].y, "the unknown category's mark is on its own lane");
        assert_eq!(marks[2].y, lanes[2].y);
        assert_eq!(marks[1].class, "other", "and not coloured as a grant: it counts for nothing");
        assert!(f64::from(height) > lanes[2].y, "the picture is tall enough for every lane");
    }

    #[test]
    fn a_subject_with_no_events_gets_an_empty_picture_not_a_panic() {
        // A lookup of a subject the server holds nothing of (a typo, a new user, an erased one):
        // the time span of no events overflowed, and the debug build README's setup runs panicked.
        let (lanes, marks, _, _) = picture(&[], &[]);
        assert!(lanes.is_empty() && marks.is_empty());
        let one = [event(Some("device_contacts"), 1000, Action::Grant)];
        let (_, marks, _, _) = picture(&one, &["device_contacts".to_string()]);
        assert_eq!(marks.len(), 1);
        assert!(marks[0].x.is_finite());
    }
}
