//! The floor under ConsentKit's share (feature `deps`): one exported call that uses each of the
//! core's other dependencies once, the way the core does (serde derive both ways through
//! serde_json, compact and pretty, and a `Value`; RFC 3339 parse and format; SHA-256; a UUID v4;
//! an `ArcSwap` snapshot; a foldhash map; a SQL scalar function; a `thiserror` error; a log line;
//! the coarse monotonic clock), so what ConsentKit costs above this build is its own code.
use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;

/// A small document with the field kinds the core's types have.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Doc {
    id: String,
    at: String,
    seq: u64,
    note: Option<String>,
    tags: Vec<String>,
}

/// The floor's error (thiserror-derived, as the core's).
#[derive(Debug, thiserror::Error)]
enum FloorError {
    #[error("bad document: {0}")]
    Json(#[from] serde_json::Error),
    #[error("bad time: {0}")]
    Time(String),
    #[error("sqlite: {0}")]
    Sql(#[from] rusqlite::Error),
}

fn run(json: &str) -> Result<String, FloorError> {
    let mut doc: Doc = serde_json::from_str(json)?;
    let at = time::OffsetDateTime::parse(&doc.at, &Rfc3339).map_err(|e| FloorError::Time(e.to_string()))?;
    doc.at = at.format(&Rfc3339).map_err(|e| FloorError::Time(e.to_string()))?;
    doc.id = uuid::Uuid::new_v4().hyphenated().to_string();
    let hash: String = Sha256::digest(json.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    let snapshot = arc_swap::ArcSwap::from_pointee(doc.clone());
    snapshot.store(Arc::new(doc));
    let mut map: HashMap<String, u64, foldhash::fast::RandomState> = HashMap::default();
    map.insert(hash.clone(), snapshot.load().seq);
    let conn = rusqlite::Connection::open_in_memory()?;
    conn.create_scalar_function("floor_len", 1, rusqlite::functions::FunctionFlags::SQLITE_DETERMINISTIC, |ctx| {
        Ok(ctx.get::<String>(0)?.len() as i64)
    })?;
    let len: i64 = conn.query_row("SELECT floor_len(?1)", [&hash], |row| row.get(0))?;
    let detail = serde_json::json!({ "len": len, "seen": map.get(&hash), "mono": coarse_seconds() }).to_string();
    let value: serde_json::Value = serde_json::from_str(&detail)?;
    log::info!("floor: {value}");
    let current = snapshot.load_full();
    Ok(serde_json::to_string_pretty(&*current)? + &serde_json::to_string(&*current)?)
}

/// `json` parsed as a document, stamped and written back (or the error's message).
#[uniffi::export]
pub fn deps_floor(json: String) -> String {
    run(&json).unwrap_or_else(|e| e.to_string())
}

/// The coarse monotonic clock the core's gate reads (Linux and Android; 0 elsewhere).
fn coarse_seconds() -> i64 {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: `ts` is a valid, writable timespec.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
        ts.tv_sec as i64
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        0
    }
}
