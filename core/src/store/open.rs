//! The store's lifecycle: opening a file (creating and migrating it), the fail-closed open,
//! quarantining a damaged file, and the one-`ConsentStore`-per-file claim of this process.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use rusqlite::{Transaction, TransactionBehavior};

use super::{lock, ConsentStore, Ledger};
use crate::chain::GENESIS;
use crate::clock::{Clock, SystemClock, Timestamp};
use crate::db;
use crate::error::{Error, Result};
use crate::gate::Snapshot;
use crate::observer::Registry;
use crate::policy::Policy;
use crate::schema::{self, OpenMode};
use crate::state_proof;

/// Files open read-write in this process. One `ConsentStore` per file: a second one would keep
/// its own snapshot (and the Kotlin/Swift caches on it) that the first one's withdrawals never reach.
static OPEN_FILES: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());
/// This store's claim on its file; released when the store is dropped.
pub(super) struct OpenFile(Option<PathBuf>);

impl OpenFile {
    fn claim(path: &Path) -> Result<OpenFile> {
        if path.as_os_str() == ":memory:" {
            return Ok(OpenFile(None));
        }
        let key = std::fs::canonicalize(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
        if !lock(&OPEN_FILES).insert(key.clone()) {
            return Err(Error::StoreUnavailable {
                path: path.to_path_buf(),
                why: "it is already open in this process: share that ConsentStore (a second one would not see its writes)".into(),
            });
        }
        Ok(OpenFile(Some(key)))
    }
}

impl Drop for OpenFile {
    fn drop(&mut self) {
        if let Some(key) = self.0.take() {
            lock(&OPEN_FILES).remove(&key);
        }
    }
}

impl ConsentStore {
    /// Opens (creating if needed) the store at `path` for `policy`, on the system clock.
    pub fn open(path: impl AsRef<Path>, policy: Policy) -> Result<ConsentStore> {
        Self::open_with(path, Arc::new(policy), Arc::new(SystemClock), OpenMode::ReadWrite)
    }

    /// Opens the store with an explicit clock and mode. Errors: missing (read-only), unreadable,
    /// not a ConsentKit file, newer schema, or another policy id.
    pub fn open_with(path: impl AsRef<Path>, policy: Arc<Policy>, clock: Arc<dyn Clock>, mode: OpenMode) -> Result<ConsentStore> {
        let path = path.as_ref().to_path_buf();
        let conn = schema::open(&path, mode)?;
        let open_file = if mode == OpenMode::ReadWrite { OpenFile::claim(&path)? } else { OpenFile(None) };
        let stored_policy = db::meta(&conn, "policy_id")?;
        let mut erasure_key = db::meta(&conn, "erasure_key")?;
        match (&stored_policy, mode) {
            (Some(stored), _) if *stored != policy.id => {
                return Err(Error::PolicyMismatch { path, stored: stored.clone(), given: policy.id.clone() })
            }
            (None, OpenMode::ReadWrite) => {
                let key = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
                let tx = Transaction::new_unchecked(&conn, TransactionBehavior::Immediate)?;
                db::set_meta(&tx, "policy_id", &policy.id)?;
                db::set_meta(&tx, "erasure_key", &key)?;
                tx.commit()?;
                erasure_key = Some(key);
            }
            _ => {}
        }
        // Append after the recorded head even if rows were cut off, so a truncation stays visible.
        let (head_seq, head_hash) = match (db::head(&conn)?, db::last_event(&conn)?) {
            (Some(head), Some(last)) if last.0 > head.0 => last,
            (Some(head), _) => head,
            (None, Some(last)) => last,
            (None, None) => (0, GENESIS.to_string()),
        };
        let mut snapshot = Snapshot::empty(policy.clone());
        let (subjects, os, state_sum) = state_proof::load_checked(&conn, mode == OpenMode::ReadWrite)?;
        snapshot.subjects = subjects.into_iter().collect();
        snapshot.os = os.into_iter().collect();
        log::info!(
            "consentkit: store opened ({mode:?}, schema version {}, {head_seq} events, {} subjects)",
            crate::schema::LATEST,
            snapshot.subjects.len()
        );
        let ledger = Ledger { conn, head_seq, head_hash, erasure_key: erasure_key.unwrap_or_default(), state_sum };
        Ok(ConsentStore {
            _open_file: open_file,
            path,
            policy,
            clock,
            snapshot: ArcSwap::from_pointee(snapshot),
            ledger: Mutex::new(Some(ledger)),
            registry: Arc::new(Registry::default()),
        })
    }

    /// Opens the store, or, if that fails, returns a closed store whose gate denies every
    /// consent-gated feature with `store_unavailable` and whose writes fail. Never fails itself;
    /// [`ConsentStore::unavailable`] tells the app what went wrong. The damaged file is left as it is.
    pub fn open_fail_closed(path: impl AsRef<Path>, policy: Arc<Policy>, clock: Arc<dyn Clock>) -> ConsentStore {
        match Self::open_with(path.as_ref(), policy.clone(), clock.clone(), OpenMode::ReadWrite) {
            Ok(store) => store,
            Err(e) => {
                log::error!("consentkit: failing closed: {}", e.log_summary());
                let mut snapshot = Snapshot::empty(policy.clone());
                snapshot.unavailable = Some(e.to_string());
                ConsentStore {
                    _open_file: OpenFile(None),
                    path: path.as_ref().to_path_buf(),
                    policy,
                    clock,
                    snapshot: ArcSwap::from_pointee(snapshot),
                    ledger: Mutex::new(None),
                    registry: Arc::new(Registry::default()),
                }
            }
        }
    }

    /// Moves a damaged store file (and its `-wal`/`-shm`) aside to `<path>.corrupt-<millis>` so the
    /// app can start afresh and keep the damaged file for inspection. Returns the new path.
    pub fn quarantine(path: impl AsRef<Path>, now: Timestamp) -> Result<PathBuf> {
        let path = path.as_ref();
        let target = PathBuf::from(format!("{}.corrupt-{}", path.display(), now.millis()));
        for suffix in ["", "-wal", "-shm"] {
            let from = PathBuf::from(format!("{}{suffix}", path.display()));
            if from.exists() {
                let to = PathBuf::from(format!("{}{suffix}", target.display()));
                std::fs::rename(&from, &to).map_err(|source| Error::Io { path: from.clone(), source })?;
            }
        }
        log::warn!("consentkit: damaged store quarantined to {target:?}");
        Ok(target)
    }
}
