//! The store's lifecycle: opening a file (creating and migrating it), the fail-closed open,
//! quarantining a damaged file, and the registry of files open in this process (one read-write
//! store per file; every store of one file shares one snapshot).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};

use rusqlite::{Connection, Transaction, TransactionBehavior};

use super::refresh::Prober;
use super::shared::{Head, Shared};
use super::{file_id, lock, ConsentStore, LedgerSlot, Writer};
use crate::chain::GENESIS;
use crate::clock::{Clock, SystemClock, Timestamp};
use crate::db;
use crate::error::{Error, Result};
use crate::gate::{OsRecord, Snapshot, SubjectMap};
use crate::os_permission::OsPermission;
use crate::policy::Policy;
use crate::schema::{self, OpenMode};
use crate::state_proof;

/// A file open in this process: the state its stores share, how many stores hold it, and whether
/// a read-write store is one of them. Only `owners` says whether the file is open: a dropped
/// store's probe thread may keep its [`Shared`] alive for the moment of one probe, and a store
/// opened meanwhile must not see that dying state as an open one (it starts its own).
struct OpenEntry {
    shared: Weak<Shared>,
    read_write: bool,
    owners: usize,
}

/// Files open in this process. One read-write `ConsentStore` per file (a second would only
/// duplicate it); read-only stores of the same file join the same [`Shared`] state, so they read
/// the very snapshot the read-write store publishes.
static OPEN_FILES: Mutex<OpenFiles> = Mutex::new(OpenFiles(Vec::new()));

/// [`OPEN_FILES`]'s table, by canonical path: a list searched in order (a process holds a handful
/// of files at most), so the library carries no ordered map of paths for it.
struct OpenFiles(Vec<(PathBuf, OpenEntry)>);

impl OpenFiles {
    fn get(&self, key: &Path) -> Option<&OpenEntry> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, e)| e)
    }

    fn get_mut(&mut self, key: &Path) -> Option<&mut OpenEntry> {
        self.0.iter_mut().find(|(k, _)| k == key).map(|(_, e)| e)
    }

    fn remove(&mut self, key: &Path) {
        self.0.retain(|(k, _)| k != key);
    }

    /// The entry of `key`, added as `new` if there is none.
    fn entry(&mut self, key: &Path, new: OpenEntry) -> &mut OpenEntry {
        let at = match self.0.iter().position(|(k, _)| k == key) {
            Some(at) => at,
            None => {
                self.0.push((key.to_path_buf(), new));
                self.0.len() - 1
            }
        };
        &mut self.0[at].1
    }
}

/// This store's claim on its file; released when the store is dropped.
pub(super) struct OpenFile {
    key: Option<PathBuf>,
    read_write: bool,
}

impl OpenFile {
    pub(super) fn none() -> OpenFile {
        OpenFile { key: None, read_write: false }
    }
}

impl Drop for OpenFile {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            let mut files = lock(&OPEN_FILES);
            if let Some(entry) = files.get_mut(&key) {
                entry.owners = entry.owners.saturating_sub(1);
                if self.read_write {
                    entry.read_write = false;
                }
                if entry.owners == 0 {
                    files.remove(&key);
                }
            }
        }
    }
}

/// How long an open waits for a conflicting store of this process (read-write already, or another
/// policy version) to be released before it refuses with `StoreUnavailable`.
const RELEASE_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

fn is_memory(path: &Path) -> bool {
    path.as_os_str() == ":memory:"
}

/// Reads what a new [`Shared`] starts from, in one read transaction: the head, every subject's
/// state, the OS states and the clock's high-water mark (never before the head event's time). The
/// recorded head must be the newest event row, and that row sealed (else `Tampered`). The state
/// table is served only if its digest matches the head, or if it equals the fold of the verified
/// history ([`state_proof::load_checked`]: re-sealed by a read-write opener, which then reads
/// again); a table that disagrees is `Tampered`, never rebuilt.
fn load(conn: &Connection, policy: &Arc<Policy>, writable: bool) -> Result<(Snapshot, Head, i64)> {
    let in_read_transaction = |f: &dyn Fn() -> Result<(Snapshot, Head, i64, bool)>| {
        conn.execute_batch("BEGIN DEFERRED")?;
        let result = f();
        let _ = conn.execute_batch("COMMIT");
        result
    };
    // The mark is never before the head event's sealed time: both mark rows deleted by hand
    // (or never written, by a build before the mark) must not let a clock set back revive what
    // expired before the newest write.
    let head_and_mark = || -> Result<((u64, String), i64)> {
        let head = db::current_head(conn)?.unwrap_or((0, GENESIS.to_string()));
        let mark = db::time_mark(conn)?.unwrap_or(i64::MIN).max(db::head_time(conn, head.0, &head.1)?.unwrap_or(i64::MIN));
        Ok((head, mark))
    };
    // The gate's maps are built once here from the checked state (see `crate::gate::SubjectMap`).
    let snapshot_of = |subjects: SubjectMap, os: HashMap<OsPermission, OsRecord>| {
        let mut snapshot = Snapshot::empty(policy.clone());
        snapshot.subjects = subjects;
        snapshot.os = os.into_iter().collect();
        snapshot
    };
    for attempt in 0..2 {
        let (snapshot, head, mark, sealed) = in_read_transaction(&|| {
            let ((seq, hash), mark) = head_and_mark()?;
            // One pass over the table: check each row decodes, hash its stored bytes for the
            // digest; a subject's state is decoded when it is first read.
            let (subjects, os, state_sum): (SubjectMap, _, _) = state_proof::read_table_lazy(conn)?;
            let (recorded_seq, recorded_hash) = db::head(conn)?.unwrap_or((0, GENESIS.to_string()));
            let empty = recorded_seq == 0 && subjects.is_empty() && os.is_empty();
            let sealed = empty || db::meta(conn, state_proof::DIGEST_KEY)? == Some(state_sum.seal(recorded_seq, &recorded_hash));
            Ok((snapshot_of(subjects, os), Head { seq, hash, state_sum }, mark, sealed))
        })?;
        if sealed {
            return Ok((snapshot, head, mark));
        }
        if !writable || attempt == 1 {
            break;
        }
        state_proof::load_checked(conn, true)?;
    }
    // The table is not proven: serve the fold of the verified history (a broken chain fails).
    let (snapshot, head, mark, _) = in_read_transaction(&|| {
        let ((seq, hash), mark) = head_and_mark()?;
        let (subjects, os, state_sum) = state_proof::load_checked(conn, false)?;
        Ok((snapshot_of(subjects.into_iter().collect(), os), Head { seq, hash, state_sum }, mark, true))
    })?;
    Ok((snapshot, head, mark))
}

impl ConsentStore {
    /// Opens (creating if needed) the store at `path` for `policy`, on the system clock.
    pub fn open(path: impl AsRef<Path>, policy: Policy) -> Result<ConsentStore> {
        Self::open_with(path, Arc::new(policy), Arc::new(SystemClock), OpenMode::ReadWrite)
    }

    /// Opens the store with an explicit clock and mode. Errors: missing (read-only), unreadable,
    /// not a ConsentKit file, newer schema, or another policy id; a second read-write store of a
    /// file already open read-write in this process; a store of a file open in this process with
    /// another version of the policy. Stores of one file in one process share one snapshot.
    pub fn open_with(path: impl AsRef<Path>, policy: Arc<Policy>, clock: Arc<dyn Clock>, mode: OpenMode) -> Result<ConsentStore> {
        let path = path.as_ref().to_path_buf();
        if path.as_os_str().is_empty() {
            // SQLite would open a private temporary database and fail later, saying "could not
            // enable WAL": name the actual mistake (an unset setting, a blank variable).
            return Err(Error::StoreUnavailable { path, why: "the path is empty: give the database file's path".into() });
        }
        let in_memory = is_memory(&path);
        // An in-memory store gets a named in-memory database (SQLite's memdb VFS, shared by name
        // within this process) so its read connection sees what the writer wrote.
        let db_path =
            if in_memory { PathBuf::from(format!("file:/consentkit-{}?vfs=memdb", uuid::Uuid::new_v4().simple())) } else { path.clone() };
        let conn = schema::open(&db_path, mode)?;
        let stored_policy = db::meta(&conn, "policy_id")?;
        if let Some(stored) = &stored_policy {
            if *stored != policy.id {
                return Err(Error::PolicyMismatch { path, stored: stored.clone(), given: policy.id.clone() });
            }
        }
        // The identity the chain itself seals: the newest event's policy id (every event carries
        // the store's), so a `policy_id` row edited or deleted by hand does not make another
        // policy's file open under this one. A file that holds records but no identity was edited
        // (a store records its policy when it is created): never adopted (which would also
        // overwrite its erasure key).
        if let Some((seq, hash)) = db::current_head(&conn)? {
            if let Some(head) = db::head_event(&conn, seq, &hash)? {
                if head.policy_id != policy.id {
                    return Err(Error::PolicyMismatch { path, stored: head.policy_id, given: policy.id.clone() });
                }
            }
        }
        let unidentified = |conn: &Connection| -> Result<Option<Error>> {
            let holds_records = db::meta(conn, "erasure_key")?.is_some() || db::last_event(conn)?.is_some();
            Ok(holds_records.then(|| Error::StoreUnavailable {
                path: path.clone(),
                why: "it holds records but no policy id (its meta row 'policy_id' was deleted): edited, refused".into(),
            }))
        };
        if stored_policy.is_none() {
            if let Some(e) = unidentified(&conn)? {
                return Err(e);
            }
        }
        if stored_policy.is_none() && mode == OpenMode::ReadWrite {
            // Another process may be creating the same file: set the identity only if still absent.
            let tx = Transaction::new_unchecked(&conn, TransactionBehavior::Immediate)?;
            match db::meta(&tx, "policy_id")? {
                Some(stored) if stored != policy.id => {
                    return Err(Error::PolicyMismatch { path, stored, given: policy.id.clone() });
                }
                Some(_) => {}
                None => {
                    if let Some(e) = unidentified(&tx)? {
                        return Err(e);
                    }
                    let key = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
                    db::set_meta(&tx, "policy_id", &policy.id)?;
                    db::set_meta(&tx, "erasure_key", &key)?;
                    db::set_meta(&tx, db::SCRUB_KEY, "clean:0")?;
                }
            }
            tx.commit()?;
        }
        let erasure_key = db::meta(&conn, "erasure_key")?.unwrap_or_default();
        let scrub_marked = mode == OpenMode::ReadWrite && db::scrub_marked_pending(&conn)?;
        // The read connection opens on the first read (history, export, verify, the outbox).
        let ledger = LedgerSlot::new(db_path.clone(), mode, erasure_key.clone(), if in_memory { None } else { file_id(&path) });

        let key =
            if in_memory { None } else { Some(std::fs::canonicalize(&path).map_err(|source| Error::Io { path: path.clone(), source })?) };
        let read_write = mode == OpenMode::ReadWrite;
        // A store the app has just dropped may still be held for a moment by a thread finishing a
        // call on it (the bindings' timer, a call in flight): a conflicting claim is waited for,
        // briefly, before the open is refused.
        let give_up = std::time::Instant::now() + RELEASE_WAIT;
        let (mut files, existing) = loop {
            let files = lock(&OPEN_FILES);
            let existing = key
                .as_ref()
                .and_then(|k| files.get(k))
                .filter(|e| e.owners > 0)
                .and_then(|e| e.shared.upgrade().map(|s| (s, e.read_write)));
            let conflict = match &existing {
                Some((_, true)) if read_write => true,
                Some((shared, _)) => *shared.policy != *policy,
                None => false,
            };
            if !conflict || std::time::Instant::now() >= give_up {
                break (files, existing);
            }
            drop(existing);
            drop(files);
            std::thread::sleep(std::time::Duration::from_millis(2));
        };
        let shared = match existing {
            Some((_, true)) if read_write => {
                return Err(Error::StoreUnavailable {
                    path,
                    why: "it is already open in this process (read-write): share that ConsentStore".into(),
                });
            }
            Some((shared, _)) if *shared.policy != *policy => {
                return Err(Error::StoreUnavailable {
                    path,
                    why: format!(
                        "it is already open in this process with policy version '{}', not '{}'",
                        shared.policy.version, policy.version
                    ),
                });
            }
            Some((shared, _)) => {
                if read_write {
                    // Joining read-only stores of this process: still do a read-write opener's
                    // duty (re-seal or rebuild a state table whose digest does not match).
                    load(&conn, &policy, true)?;
                }
                shared
            }
            None => {
                let (snapshot, head, high_water) = load(&conn, &policy, read_write)?;
                log::info!(
                    "consentkit: store opened ({mode:?}, schema version {}, {} events, {} subjects)",
                    crate::schema::LATEST,
                    head.seq,
                    snapshot.subjects.len()
                );
                Shared::new(policy.clone(), snapshot, head, high_water)
            }
        };
        if let Some(k) = &key {
            let entry = files.entry(k, OpenEntry { shared: Arc::downgrade(&shared), read_write: false, owners: 0 });
            entry.shared = Arc::downgrade(&shared);
            entry.read_write |= read_write;
            entry.owners += 1;
        }
        drop(files);
        let open_file = OpenFile { key, read_write };
        let writer = Arc::new(Mutex::new(Some(Writer { conn, data_version: None })));
        // The store's time from the mark just read moves on with real time from now on.
        shared.observe_running_time(clock.now(), &*clock);
        let prober = Prober::start(shared.clone(), writer.clone(), clock.clone(), mode);
        let store = ConsentStore {
            _open_file: open_file,
            _prober: Some(prober),
            path,
            mode,
            policy,
            clock,
            shared,
            writer,
            ledger: Mutex::new(Some(ledger)),
            erasure_key,
        };
        // Finish any scrub an earlier run (or a crash between a removal's commit and its
        // checkpoint) left pending: the file says whether one is, no checkpoint at an open
        // otherwise. Then, joining a file another store of this process opened first, catch up
        // (last, so the open returns with the snapshot just proven current).
        if scrub_marked {
            store.shared.scrub_pending.store(true, Ordering::Relaxed);
            store.finish_scrub();
        }
        store.refresh()?;
        Ok(store)
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
                    _open_file: OpenFile::none(),
                    _prober: None,
                    path: path.as_ref().to_path_buf(),
                    mode: OpenMode::ReadWrite,
                    shared: Shared::new(policy.clone(), snapshot, Head::default(), i64::MIN),
                    policy,
                    clock,
                    writer: Arc::new(Mutex::new(None)),
                    ledger: Mutex::new(None),
                    erasure_key: String::new(),
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
        // The file's name may hold an identifier (one store per user): the log names only the
        // suffix it was moved aside with; the caller gets the whole path.
        log::warn!("consentkit: damaged store quarantined (moved aside beside itself, suffix .corrupt-{})", now.millis());
        Ok(target)
    }
}
