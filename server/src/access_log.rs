//! The access log: one hash chain per subject pseudonym (no global order, so it distributes with
//! the subject), appended in the same transaction as the read or erasure it records, so no answer
//! leaves the server without its line. The auditor walks every chain.

use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio_postgres::Transaction;

use consentkit_core::chain::{hex, GENESIS};
use consentkit_core::Timestamp;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::sql;

/// One line of the access log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AccessLine {
    /// The subject's pseudonym.
    pub subject_key: String,
    /// Position in that subject's access chain, from 1.
    pub seq: i64,
    /// When (UTC).
    pub at: Timestamp,
    /// The token's name.
    pub actor: String,
    /// The token's role.
    pub role: String,
    /// What was done (`state`, `check`, `timeline`, `export`, `erase`).
    pub action: String,
    /// A small JSON object (e.g. the feature checked); never the subject's identifier.
    pub detail: String,
    /// The previous line's hash.
    pub prev_hash: String,
    /// This line's hash.
    pub hash: String,
}

/// The hash of a line: SHA-256 over a tag and each field, length-prefixed.
pub fn line_hash(l: &AccessLine) -> String {
    let mut h = Sha256::new();
    h.update(b"consentkit-access-v1");
    for field in [&l.subject_key, &l.seq.to_string(), &l.at.millis().to_string(), &l.actor, &l.role, &l.action, &l.detail, &l.prev_hash] {
        h.update((field.len() as u32).to_be_bytes());
        h.update(field.as_bytes());
    }
    hex(&h.finalize())
}

/// Appends a line for `caller` doing `action` on `subject_key`, inside `tx`.
pub async fn append(
    tx: &Transaction<'_>,
    subject_key: &str,
    caller: &Caller,
    action: &str,
    detail: serde_json::Value,
) -> Result<AccessLine, ApiError> {
    tx.execute(sql::ACCESS_HEAD_INIT, &[&subject_key, &GENESIS]).await?;
    let head = tx.query_one(sql::ACCESS_HEAD_LOCK, &[&subject_key]).await?;
    let (seq, prev): (i64, String) = (head.get(0), head.get(1));
    let mut line = AccessLine {
        subject_key: subject_key.to_string(),
        seq: seq + 1,
        at: crate::wire::now(),
        actor: caller.name.clone(),
        role: caller.role.as_str().to_string(),
        action: action.to_string(),
        detail: detail.to_string(),
        prev_hash: prev,
        hash: String::new(),
    };
    line.hash = line_hash(&line);
    tx.execute(
        sql::ACCESS_INSERT,
        &[
            &line.subject_key,
            &line.seq,
            &line.at.millis(),
            &line.actor,
            &line.role,
            &line.action,
            &line.detail,
            &line.prev_hash,
            &line.hash,
        ],
    )
    .await?;
    tx.execute(sql::ACCESS_HEAD_SET, &[&subject_key, &line.seq, &line.hash]).await?;
    Ok(line)
}

/// Builds a line from a row of `ACCESS_LOG_*`.
pub fn line_of(row: &tokio_postgres::Row) -> AccessLine {
    AccessLine {
        subject_key: row.get(0),
        seq: row.get(1),
        at: Timestamp(row.get(2)),
        actor: row.get(3),
        role: row.get(4),
        action: row.get(5),
        detail: row.get(6),
        prev_hash: row.get(7),
        hash: row.get(8),
    }
}

/// The auditor's verdict over the whole log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChainStatus {
    /// True when every subject's chain holds from 1 to its head.
    pub intact: bool,
    /// Lines checked.
    pub lines: u64,
    /// Subject chains checked.
    pub chains: u64,
    /// The first problem found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// Walks lines ordered by (subject_key, seq) against the recorded heads.
pub fn verify(lines: &[AccessLine], heads: &std::collections::HashMap<String, (i64, String)>) -> ChainStatus {
    let mut status = ChainStatus { intact: true, lines: 0, chains: 0, problem: None };
    let fail = |mut s: ChainStatus, why: String| {
        s.intact = false;
        s.problem = Some(why);
        s
    };
    let mut i = 0;
    let mut seen = std::collections::HashSet::new();
    while i < lines.len() {
        let key = &lines[i].subject_key;
        seen.insert(key.clone());
        status.chains += 1;
        let mut prev = GENESIS.to_string();
        let mut expected = 1;
        while i < lines.len() && &lines[i].subject_key == key {
            let l = &lines[i];
            let at = format!("chain {}… line {}", &key[..12.min(key.len())], l.seq);
            if l.seq != expected {
                return fail(status, format!("{at}: expected line {expected} (a line was deleted or inserted)"));
            }
            if l.prev_hash != prev {
                return fail(status, format!("{at}: does not link to the line before it"));
            }
            if line_hash(l) != l.hash {
                return fail(status, format!("{at}: its content does not match its hash (edited)"));
            }
            prev = l.hash.clone();
            expected += 1;
            status.lines += 1;
            i += 1;
        }
        match heads.get(key) {
            Some((seq, hash)) if *seq == expected - 1 && *hash == prev => {}
            _ => {
                return fail(
                    status,
                    format!("chain {}…: ends at line {} but its head says otherwise (truncated)", &key[..12.min(key.len())], expected - 1),
                )
            }
        }
    }
    if let Some((key, _)) = heads.iter().find(|(k, (seq, _))| *seq > 0 && !seen.contains(*k)) {
        return fail(status, format!("chain {}…: its head names lines that are gone (deleted)", &key[..12.min(key.len())]));
    }
    status
}
