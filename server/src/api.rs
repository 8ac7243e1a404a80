//! The HTTP API: routes, the request body limit, JSON errors, and the request log (method, route,
//! status, time: no body, no path as sent, no subject identifier).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, Request, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use consentkit_core::{Policy, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::access_log::{self, AccessLine};
use crate::auth::{Caller, Tokens};
use crate::config::Role;
use crate::db::Pools;
use crate::error::ApiError;
use crate::ingest;
use crate::keys::Keys;
use crate::query::{self, SubjectView};
use crate::sql;
use crate::wire;

/// Everything a request needs.
pub struct App {
    /// The role pools.
    pub pools: Pools,
    /// The pseudonym and signing keys.
    pub keys: Keys,
    /// The policy queries are answered under.
    pub policy: Arc<Policy>,
    /// The bearer tokens.
    pub tokens: Tokens,
    /// The body size limit.
    pub max_body: usize,
    /// The console's sessions and lookup handles.
    pub console: crate::console::Console,
}

type Shared = State<Arc<App>>;

/// The router over an app.
pub fn router(app: Arc<App>) -> Router {
    let limit = app.max_body;
    Router::new()
        .merge(crate::console::routes())
        .route("/v1/devices/{device}/batches", post(ingest_batch))
        .route("/v1/devices/{device}/erasures", get(device_erasures))
        .route("/v1/subjects/state", post(state))
        .route("/v1/subjects/check", post(check))
        .route("/v1/subjects/timeline", post(timeline))
        .route("/v1/subjects/erasures", post(erasures))
        .route("/v1/subjects/export", post(export))
        .route("/v1/subjects/erase", post(erase))
        .route("/v1/access-log", get(access_log_all))
        .route("/v1/public-key", get(public_key))
        .route("/healthz", get(health))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn(log_request))
        .with_state(app)
}

/// The request line names the route (`/v1/devices/{device}/batches`), never the path as sent: a
/// path may hold what a caller typed by mistake (a subject id), a device id or a console handle.
async fn log_request(request: Request<Body>, next: Next) -> Response {
    let route = request.extensions().get::<axum::extract::MatchedPath>().map(|p| p.as_str().to_string());
    let (method, path) = (request.method().clone(), route.unwrap_or_else(|| "(no route)".into()));
    let started = Instant::now();
    let response = next.run(request).await;
    tracing::info!(%method, path = %path, status = response.status().as_u16(), ms = started.elapsed().as_secs_f64() * 1000.0, "request");
    response
}

async fn not_found(uri: axum::http::Uri) -> Response {
    // Under /console a person with a browser asked: the console's page, with its headers.
    if uri.path() == "/console" || uri.path().starts_with("/console/") {
        return crate::console::not_found_page();
    }
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint").into_response()
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this endpoint does not take this method")
}

fn body_of(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, ApiError> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", format!("the body is larger than the limit of {limit} bytes"))
        } else {
            ApiError::malformed("the body could not be read")
        }
    })
}

fn json_of<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::malformed(format!("the body is not valid JSON: {inner}"))
        } else {
            ApiError::malformed(format!("malformed request at $.{path}: {inner}"))
        }
    })?;
    // One JSON value and nothing after it: `{"subject":"a"}{"subject":"b"}` is not a request.
    de.end().map_err(|e| ApiError::malformed(format!("the body is not valid JSON: {e}")))?;
    Ok(value)
}

/// The `{device}` segment of a path, or a JSON 400 naming it (axum's own rejection is plain text,
/// e.g. for `%FF`, which is not UTF-8 once percent-decoded).
fn device_of(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    path.map(|Path(d)| d).map_err(|_| ApiError::malformed("the device id in the path is not valid percent-encoded UTF-8"))
}

async fn ingest_batch(
    State(app): Shared,
    device: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let caller = app.tokens.caller(&headers)?;
    caller.require(&[Role::Device], "sending batches")?;
    let device = device_of(device)?;
    ingest::check_device(&device)?;
    let bytes = body_of(body, app.max_body)?;
    let batch = ingest::parse_batch(&bytes)?;
    ingest::validate(&batch, &device, &caller)?;
    let reply = ingest::store(&app, &device, &batch).await?;
    Ok(Json(reply).into_response())
}

/// `GET /v1/devices/{device}/erasures`: this device's sequence numbers of events erased on the
/// server that its own erasure records have not claimed yet (`{"erase_events": [...]}`), for a
/// device with nothing to send. Every batch reply carries the same list.
async fn device_erasures(
    State(app): Shared,
    device: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = app.tokens.caller(&headers)?;
    caller.require(&[Role::Device], "reading a device's erasure notices")?;
    let device = device_of(device)?;
    ingest::check_device(&device)?;
    if caller.device.as_deref() != Some(device.as_str()) {
        return Err(ApiError::forbidden(format!(
            "token '{}' may not read the notices of device '{}'",
            caller.name,
            ingest::short(&device)
        )));
    }
    let erase_events = ingest::pending_erasures(&app, &device).await?;
    Ok(Json(json!({ "erase_events": erase_events })).into_response())
}

/// A lookup: the subject's identifier travels in the body, never in the URL.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Lookup {
    subject: String,
    #[serde(default)]
    feature: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    device: Option<String>,
    #[serde(default)]
    now: Option<Timestamp>,
}

/// The time a state or check is answered at: the request's `now` (`consentkit --now`), but never
/// before the server's clock, as a device never evaluates expiry before the highest clock reading
/// it has seen: a time set back does not revive an expired grant. A time ahead is taken.
fn query_time(asked: Option<Timestamp>) -> Timestamp {
    let now = wire::now();
    asked.map_or(now, |t| t.max(now))
}

/// The lookup in `body`; a field the route does not take (of `feature`, `scope`, `device`, `now`:
/// those not in `takes`) is refused with a 422 naming it, never silently ignored (a `now` sent to
/// the timeline would otherwise look honoured).
fn lookup(body: Result<Bytes, BytesRejection>, limit: usize, takes: &[&str]) -> Result<Lookup, ApiError> {
    let l: Lookup = json_of(&body_of(body, limit)?)?;
    let given = [("feature", l.feature.is_some()), ("scope", l.scope.is_some()), ("device", l.device.is_some()), ("now", l.now.is_some())];
    if let Some((field, _)) = given.iter().find(|(field, present)| *present && !takes.contains(field)) {
        let takes = if takes.is_empty() { "only 'subject'".to_string() } else { format!("'subject', '{}'", takes.join("', '")) };
        return Err(ApiError::invalid(format!("this lookup does not take the field '{field}' (it takes {takes})")));
    }
    // A lookup names a subject the ledger may hold from an older device (`" alice"`): the
    // stored-id rule, so support and the DPO can check, export and erase it.
    consentkit_core::input::check_stored_subject(&l.subject).map_err(|e| ApiError::invalid(e.to_string()))?;
    Ok(l)
}

/// Runs `answer` over the subject's view in one support or DPO transaction that also appends the
/// access log line; the answer leaves only if both committed. An answer refused for the request
/// (a 4xx, e.g. a device the subject has no events from) read the subject's data too and its
/// refusal tells something about it: its line is appended and committed as well, with the
/// error's code in `detail.refused`.
pub(crate) async fn logged_read<T>(
    app: &App,
    caller: &Caller,
    subject: &str,
    action: &str,
    detail: Value,
    answer: impl AsyncFnOnce(&tokio_postgres::Transaction<'_>, SubjectView) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    let pool = if caller.role == Role::Dpo { &app.pools.dpo } else { &app.pools.support };
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let t: &tokio_postgres::Transaction<'_> = &tx;
    let view = query::load(t, &app.keys, subject).await?;
    let result = answer(t, view).await;
    let detail = match &result {
        Err(e) if e.status.is_server_error() => return result,
        Err(e) => {
            let mut d = detail;
            if let Value::Object(map) = &mut d {
                map.insert("refused".into(), json!(e.code));
            }
            d
        }
        Ok(_) => detail,
    };
    access_log::append(t, &app.keys.subject_key(subject), caller, action, detail).await?;
    tx.commit().await?;
    result
}

fn policy_json(p: &Policy) -> Value {
    json!({ "id": p.id, "version": p.version })
}

async fn state(State(app): Shared, headers: HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Response, ApiError> {
    let caller = app.tokens.caller(&headers)?;
    caller.require(&[Role::Support, Role::Dpo], "reading a subject's state")?;
    let l = lookup(body, app.max_body, &["now"])?;
    let now = query_time(l.now);
    let policy = app.policy.clone();
    let key = app.keys.subject_key(&l.subject);
    let value = logged_read(&app, &caller, &l.subject, "state", json!({}), async |tx, view| {
        let statuses = view.statuses(&policy, now)?;
        let erasures = erasure_receipts(tx, &key).await?;
        let categories: Vec<Value> = statuses
            .iter()
            .map(|(s, device)| json!({ "id": s.category, "legal_basis": s.legal_basis, "status": s.status, "since": s.since, "decided_on": device }))
            .collect();
        Ok(json!({
            "subject": view.subject,
            "policy": policy_json(&policy),
            "categories": categories,
            "devices": devices_json(&view),
            "unknown_categories": view.unknown_categories(&policy),
            "erasures": erasures,
        }))
    })
    .await?;
    Ok(Json(value).into_response())
}

/// The signed receipts of the server-side erasures of the subject whose pseudonym is `key`,
/// oldest first: an erased subject reads as one never asked, and these tell the two apart.
pub(crate) async fn erasure_receipts(tx: &tokio_postgres::Transaction<'_>, key: &str) -> Result<Vec<Value>, ApiError> {
    let mut receipts = Vec::new();
    for row in tx.query(sql::ERASURES_OF, &[&key]).await? {
        let text: String = row.get(0);
        let receipt: Value = serde_json::from_str(&text).map_err(|_| {
            tracing::error!("a stored erasure receipt does not decode");
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "a stored erasure receipt could not be read")
        })?;
        receipts.push(receipt);
    }
    Ok(receipts)
}

fn devices_json(view: &SubjectView) -> Vec<Value> {
    view.devices
        .iter()
        .map(|d| {
            let mut os: Vec<_> = d.os.iter().map(|(p, r)| json!({ "permission": p, "state": r.state, "since": r.since })).collect();
            os.sort_by_key(|v| v["permission"].as_str().unwrap_or_default().to_string());
            json!({ "device": d.device, "os_permissions": os })
        })
        .collect()
}

fn decision_json(d: &consentkit_core::Decision) -> Value {
    let reasons: Vec<_> = d.reasons.iter().map(|r| json!({ "code": r.code, "category": r.category })).collect();
    json!({ "feature": d.feature, "allowed": d.allowed, "limited": d.limited, "reasons": reasons })
}

async fn check(State(app): Shared, headers: HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Response, ApiError> {
    let caller = app.tokens.caller(&headers)?;
    caller.require(&[Role::Support, Role::Dpo], "checking a feature")?;
    let l = lookup(body, app.max_body, &["feature", "scope", "device", "now"])?;
    let feature = l.feature.clone().ok_or_else(|| ApiError::invalid("a check needs a 'feature'"))?;
    let now = query_time(l.now);
    let policy = app.policy.clone();
    // A feature the catalog does not have is refused before anything of the subject is read.
    policy.feature(&feature).map_err(|e| ApiError::invalid(e.to_string()))?;
    // So is a device id no device can have (empty, over 128 characters, a control character):
    // nothing is read, and no access-log line keeps the text as typed.
    if let Some(device) = l.device.as_deref() {
        ingest::check_device(device)?;
    }
    let detail = json!({ "feature": feature, "device": l.device });
    let value = logged_read(&app, &caller, &l.subject, "check", detail, async |_, view| {
        let (overall, per_device) = view.check(&policy, &feature, l.scope.as_deref(), l.device.as_deref(), now)?;
        let mut v = decision_json(&overall);
        v["devices"] = per_device
            .iter()
            .map(|(device, d)| {
                let mut x = decision_json(d);
                x["device"] = json!(device);
                x
            })
            .collect();
        Ok(v)
    })
    .await?;
    Ok(Json(value).into_response())
}

async fn timeline(State(app): Shared, headers: HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Response, ApiError> {
    let caller = app.tokens.caller(&headers)?;
    caller.require(&[Role::Support, Role::Dpo], "reading a subject's timeline")?;
    let l = lookup(body, app.max_body, &[])?;
    let keys = &app.keys;
    let policy = app.policy.clone();
    let rows = logged_read(&app, &caller, &l.subject, "timeline", json!({}), async |tx, view| {
        let events = query::timeline(tx, keys, &view).await?;
        Ok(events
            .iter()
            .map(|e| {
                let r = &e.receipt;
                let mut v = json!({
                    "seq": r.seq, "id": r.id, "category": r.category, "action": r.action, "scope": r.scope,
                    "source": r.source, "policy_version": r.policy_version, "at": r.at, "hash": r.hash, "device": e.device,
                });
                if let (Some(p), Some(s)) = (r.permission, r.os_state) {
                    v["permission"] = json!(p);
                    v["state"] = json!(s);
                }
                // A category the server's policy does not know: shown, marked, counted for nothing.
                if r.category.as_deref().is_some_and(|c| policy.category(c).is_err()) {
                    v["unknown_category"] = json!(true);
                }
                v
            })
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(Json(rows).into_response())
}

/// The subject's erasure receipts (signed, oldest first): what `consentkit --server history` shows
/// under the timeline, which an erasure has emptied of the events before it.
async fn erasures(State(app): Shared, headers: HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Response, ApiError> {
    let caller = app.tokens.caller(&headers)?;
    caller.require(&[Role::Support, Role::Dpo], "reading a subject's erasures")?;
    let l = lookup(body, app.max_body, &[])?;
    let key = app.keys.subject_key(&l.subject);
    let value = logged_read(&app, &caller, &l.subject, "erasures", json!({}), async |tx, view| {
        Ok(json!({ "subject": view.subject, "erasures": erasure_receipts(tx, &key).await? }))
    })
    .await?;
    Ok(Json(value).into_response())
}

/// The format tag of a server export.
pub const SERVER_EXPORT_FORMAT: &str = "consentkit-server-export/1";

async fn export(State(app): Shared, headers: HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Response, ApiError> {
    let caller = app.tokens.caller(&headers)?;
    caller.require(&[Role::Dpo], "exporting a subject")?;
    let l = lookup(body, app.max_body, &[])?;
    Ok(Json(export_document(&app, &caller, &l.subject).await?).into_response())
}

/// The subject's export document (Arts. 15, 20), with its access-log line.
pub(crate) async fn export_document(app: &App, caller: &Caller, subject: &str) -> Result<Value, ApiError> {
    let now = wire::now();
    let policy = app.policy.clone();
    logged_read(app, caller, subject, "export", json!({}), async |_, view| {
        let state = view.state(&policy);
        let statuses = view.statuses(&policy, now)?;
        let mut devices = Vec::new();
        for d in &view.devices {
            let mut history: Vec<_> = view.events.iter().filter(|e| e.device == d.device).map(|e| &e.receipt).collect();
            history.sort_by_key(|r| r.seq);
            let mut os: Vec<_> = d.os.iter().map(|(p, r)| json!({ "permission": p, "state": r.state, "since": r.since })).collect();
            os.sort_by_key(|v| v["permission"].as_str().unwrap_or_default().to_string());
            devices.push(json!({ "device": d.device, "os_permissions": os, "history": history }));
        }
        Ok(json!({
            "format": SERVER_EXPORT_FORMAT,
            "exported_at": now,
            "subject": view.subject,
            "policy": policy_json(&policy),
            "under_age": state.under_age,
            "state": statuses.iter().map(|(s, _)| s).collect::<Vec<_>>(),
            "unknown_categories": view.unknown_categories(&policy),
            "devices": devices,
        }))
    })
    .await
}

/// The receipt of a server-side erasure: the subject's pseudonym, never its identifier, signed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ErasureReceipt {
    /// Always `consentkit-server-erasure/1`.
    pub format: String,
    /// A fresh UUID.
    pub id: String,
    /// The subject's pseudonym.
    pub subject_key: String,
    /// When.
    pub erased_at: Timestamp,
    /// Events deleted.
    pub erased_events: u64,
    /// The devices that had events of the subject (each is told at its next sync).
    pub devices: Vec<String>,
    /// The signing key's id.
    pub key_id: String,
    /// Hex ed25519 signature over `consentkit-server-erasure-v1\0id\0subject_key\0erased_at_ms\0erased_events`.
    pub signature: String,
}

async fn erase(State(app): Shared, headers: HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Response, ApiError> {
    let caller = app.tokens.caller(&headers)?;
    caller.require(&[Role::Dpo], "erasing a subject")?;
    let l = lookup(body, app.max_body, &[])?;
    let (erased_events, receipt) = erase_subject(&app, &caller, &l.subject).await?;
    Ok(Json(json!({ "erased_events": erased_events, "receipt": receipt })).into_response())
}

/// Deletes every row of the subject in one transaction with its access-log line and a signed
/// erasure receipt holding only the pseudonym.
pub(crate) async fn erase_subject(app: &App, caller: &Caller, subject: &str) -> Result<(u64, ErasureReceipt), ApiError> {
    use ed25519_dalek::Signer;
    let key = app.keys.subject_key(subject);
    let mut client = app.pools.dpo.get().await?;
    let tx = client.transaction().await?;
    tx.execute(sql::SUBJECT_LOCK, &[&key]).await?;
    let devices: Vec<String> = tx.query(sql::SUBJECT_DEVICES, &[&key]).await?.iter().map(|r| r.get(0)).collect();
    access_log::append(&tx, &key, caller, "erase", json!({ "devices": devices.len() })).await?;
    // Each device that sent events of the subject is told, by its own sequence numbers (the
    // server cannot name the subject to it), until its erasure records claim them.
    let mut per_device: std::collections::BTreeMap<String, Vec<i64>> = std::collections::BTreeMap::new();
    for row in tx.query(sql::SUBJECT_EVENT_SEQS, &[&key]).await? {
        per_device.entry(row.get(0)).or_default().push(row.get(1));
    }
    let erased_events = tx.execute(sql::EVENTS_DELETE, &[&key]).await?;
    tx.execute(sql::SUBJECT_DEVICES_DELETE, &[&key]).await?;
    let id = uuid::Uuid::new_v4().to_string();
    let erased_at = wire::now();
    let message = format!("consentkit-server-erasure-v1\0{id}\0{key}\0{}\0{erased_events}", erased_at.millis());
    let signature = consentkit_core::chain::hex(&app.keys.signing().sign(message.as_bytes()).to_bytes());
    let receipt = ErasureReceipt {
        format: "consentkit-server-erasure/1".into(),
        id: id.clone(),
        subject_key: key.clone(),
        erased_at,
        erased_events,
        devices,
        key_id: wire::key_id(&app.keys.public()),
        signature,
    };
    let text = serde_json::to_string(&receipt)
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "cannot encode the receipt"))?;
    tx.execute(sql::ERASURE_INSERT, &[&key, &id, &erased_at.millis(), &(erased_events as i64), &text]).await?;
    for (device, seqs) in &per_device {
        let devkey = app.keys.device_key(device);
        tx.execute(sql::CHAIN_FORGET_SUBJECT, &[&devkey, device, &key]).await?;
        tx.execute(sql::DEVICE_ERASURE_INSERT, &[&devkey, device, &id, seqs, &erased_at.millis()]).await?;
    }
    tx.commit().await?;
    Ok((erased_events, receipt))
}

/// Appends one access-log line in a transaction of its own and commits it, for an access that
/// reads no subject's data (a console page, the access log itself) on `key`'s chain (an actor's
/// pseudonym, [`Keys::actor_key`]). The auditor's database role may only read the log, so an
/// auditor's line is written through the support role, which may append to it (never edit it).
pub(crate) async fn log_alone(app: &App, key: &str, caller: &Caller, action: &str, detail: Value) -> Result<(), ApiError> {
    let pool = if caller.role == Role::Dpo { &app.pools.dpo } else { &app.pools.support };
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    access_log::append(&tx, key, caller, action, detail).await?;
    tx.commit().await?;
    Ok(())
}

/// Every access-log line and the verification of every chain, for `caller` (an auditor) doing
/// `action` (`access_log` through the API, `console_audit` in the console). Reading the log is
/// itself an audited access: its line (who, when, what was asked) is committed first, on the
/// caller's own chain, so no answer leaves without it and the answer holds that line too.
pub(crate) async fn access_log_and_status(
    app: &App,
    caller: &Caller,
    action: &str,
) -> Result<(Vec<AccessLine>, access_log::ChainStatus), ApiError> {
    log_alone(app, &app.keys.actor_key(&caller.name), caller, action, json!({ "read": "all_lines" })).await?;
    let client = app.pools.auditor.get().await?;
    let lines: Vec<AccessLine> = client.query(sql::ACCESS_LOG_ALL, &[]).await?.iter().map(access_log::line_of).collect();
    let heads: HashMap<String, (i64, String)> =
        client.query(sql::ACCESS_HEADS_ALL, &[]).await?.iter().map(|r| (r.get(0), (r.get(1), r.get(2)))).collect();
    let status = access_log::verify(&lines, &heads);
    Ok((lines, status))
}

async fn access_log_all(State(app): Shared, headers: HeaderMap) -> Result<Response, ApiError> {
    let caller = app.tokens.caller(&headers)?;
    caller.require(&[Role::Auditor], "reading the access log")?;
    let (lines, status) = access_log_and_status(&app, &caller, "access_log").await?;
    Ok(Json(json!({ "chain": status, "lines": lines })).into_response())
}

async fn public_key(State(app): Shared) -> Response {
    let key = app.keys.public();
    Json(json!({ "algorithm": "ed25519", "public_key": consentkit_core::chain::hex(key.as_bytes()), "key_id": wire::key_id(&key) }))
        .into_response()
}

async fn health(State(app): Shared) -> Result<Response, ApiError> {
    let client = app.pools.support.get().await?;
    client.query_one(sql::PING, &[]).await?;
    Ok(Json(json!({ "ok": true })).into_response())
}
