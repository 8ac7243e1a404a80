//! The SQLite schema, its migrations (`PRAGMA user_version`), and opening a connection safely:
//! a file from a newer ConsentKit or another application is refused before anything is written.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::functions::FunctionFlags;
use rusqlite::{Connection, OpenFlags};

use crate::chain;
use crate::db;
use crate::error::{Error, Result};
use crate::model::{Action, Source};

/// The fixed codes that stand for actions and sources in the `events` table since schema v4, for
/// tools that read the file itself (never renumbered).
pub use crate::db::{action_code, source_code};

/// `PRAGMA application_id` of a ConsentKit store ("CKIT").
pub const APPLICATION_ID: i64 = 0x434B_4954;

/// One migration step.
enum Step {
    /// Plain SQL.
    Sql(&'static str),
    /// Schema v4, the compact row: rewrites the ledger ([`compact_rows`]).
    CompactRows,
    /// Schema v5, the binary state row: rewrites the state table
    /// ([`crate::state_proof::migrate_rows_to_binary`]).
    BinaryStateRows,
    /// Schema v6, the items' guardian flags: rewrites the state table from the verified history
    /// ([`crate::state_proof::migrate_item_guardian_flags`]).
    ItemGuardianFlags,
}

/// Migrations in order; migration `i` moves `user_version` from `i` to `i + 1`.
const MIGRATIONS: &[Step] = &[
    Step::Sql(
        // 1: the append-only ledger, the current state beside it, device OS permissions, metadata.
        r#"
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
    CREATE TABLE events (
        seq             INTEGER PRIMARY KEY,
        id              TEXT UNIQUE,
        subject         TEXT,
        category        TEXT,
        action          TEXT,
        scope           TEXT,
        source          TEXT,
        policy_id       TEXT,
        policy_version  TEXT,
        purpose_version INTEGER,
        at              INTEGER,
        valid_until     INTEGER,
        permission      TEXT,
        os_state        TEXT,
        detail          TEXT,
        content_hash    TEXT NOT NULL,
        prev_hash       TEXT NOT NULL,
        hash            TEXT NOT NULL,
        removed_by      INTEGER
    );
    CREATE INDEX events_by_subject ON events(subject, seq) WHERE subject IS NOT NULL;
    -- Append-only: rows are never deleted, and only turned into tombstones (content removed,
    -- link hashes kept) by an erasure or purge.
    CREATE TRIGGER events_append_only_delete BEFORE DELETE ON events
        BEGIN SELECT RAISE(ABORT, 'consentkit events are append-only'); END;
    CREATE TRIGGER events_append_only_update BEFORE UPDATE ON events
        WHEN NEW.removed_by IS NULL OR NEW.seq IS NOT OLD.seq OR NEW.hash IS NOT OLD.hash
          OR NEW.prev_hash IS NOT OLD.prev_hash OR NEW.content_hash IS NOT OLD.content_hash
        BEGIN SELECT RAISE(ABORT, 'consentkit events are append-only'); END;
    CREATE TABLE subjects (
        subject  TEXT PRIMARY KEY,
        state    TEXT NOT NULL,
        last_seq INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE os_permissions (
        permission TEXT PRIMARY KEY,
        state      TEXT NOT NULL,
        since      INTEGER NOT NULL,
        seq        INTEGER NOT NULL
    ) WITHOUT ROWID;
    "#,
    ),
    // 2: only the store's own erasure and purge records may tombstone an event. The row must be
    // live, keep its link hashes, lose all of its content, and be listed in the `removed_seqs` of
    // the erasure or purge record its `removed_by` names, written after it by the store (never
    // imported). `consentkit_claims` exists only on ConsentKit's own connections, so an UPDATE from
    // any other connection (the sqlite3 shell, the app's own SQLite) is refused outright.
    Step::Sql(
        r#"
    DROP TRIGGER events_append_only_update;
    CREATE TRIGGER events_append_only_update BEFORE UPDATE ON events
        WHEN OLD.removed_by IS NOT NULL OR NEW.removed_by IS NULL
          OR NEW.seq IS NOT OLD.seq OR NEW.hash IS NOT OLD.hash
          OR NEW.prev_hash IS NOT OLD.prev_hash OR NEW.content_hash IS NOT OLD.content_hash
          OR COALESCE(NEW.id, NEW.subject, NEW.category, NEW.action, NEW.scope, NEW.source, NEW.policy_id,
                      NEW.policy_version, NEW.purpose_version, NEW.at, NEW.valid_until, NEW.permission,
                      NEW.os_state, NEW.detail) IS NOT NULL
          OR NOT EXISTS (
              SELECT 1 FROM events AS claim
              WHERE claim.seq = NEW.removed_by AND claim.seq > OLD.seq AND claim.removed_by IS NULL
                AND ((claim.action = 'erasure' AND claim.source IN ('settings', 'support'))
                     OR (claim.action = 'purge' AND claim.source = 'system'))
                AND consentkit_claims(claim.hash, claim.detail, OLD.seq))
        BEGIN SELECT RAISE(ABORT, 'consentkit events are append-only: only an erasure or purge record removes an event'); END;
    "#,
    ),
    // 3: the events that name no subject (device OS permission changes, erasure and purge
    // records), by action: `history` interleaves the device's OS changes and `erasures_of` finds
    // erasure records through it instead of scanning the ledger. Few rows, so a small index.
    Step::Sql(
        r#"
    CREATE INDEX events_unattributed ON events(action, seq) WHERE subject IS NULL;
    "#,
    ),
    // 4: the compact row (about 190 bytes an event instead of 430, the same proof): see `compact_rows`.
    Step::CompactRows,
    // 5: the state table's rows in a compact binary encoding instead of JSON text (a quarter of
    // the size; opening decodes them without a text parser): see `SubjectState::to_row`.
    Step::BinaryStateRows,
    // 6: each item grant in a state row records whether a guardian made it (the binary row's
    // format 2), taken from the verified history: see `state_proof::migrate_item_guardian_flags`.
    Step::ItemGuardianFlags,
];

/// The schema-v4 ledger: each receipt field stored once and compactly (see `db.rs`), no stored
/// `prev_hash` (the previous row's `hash`), the hashes as 32-byte BLOBs, the catalog names
/// (category, policy id and version) as codes into the append-only `names`. The subject index
/// and the unattributed index hold `seq` as the rowid (no second copy).
const V4_TABLES: &str = r#"
    CREATE TABLE names (
        code INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE
    );
    CREATE TABLE events (
        seq             INTEGER PRIMARY KEY,
        id              BLOB UNIQUE,
        subject         TEXT,
        category        INTEGER,
        action          INTEGER,
        scope           TEXT,
        source          INTEGER,
        policy_id       INTEGER,
        policy_version  INTEGER,
        purpose_version INTEGER,
        at              INTEGER,
        valid_until     INTEGER,
        permission      TEXT,
        os_state        TEXT,
        detail          TEXT,
        content_hash    BLOB NOT NULL,
        hash            BLOB NOT NULL,
        removed_by      INTEGER
    );
"#;

/// The schema-v4 indexes and triggers (the v2 rules on the v4 row: the action and source of a
/// claiming record are codes, and `prev_hash` is no column); `names` is append-only too. An
/// insert may not reuse a sequence number or id: `INSERT OR REPLACE` deletes the row it
/// replaces without firing the delete trigger, so the insert trigger refuses it first.
fn v4_indexes_and_triggers() -> String {
    let (erasure, purge) = (db::action_code(Action::Erasure), db::action_code(Action::Purge));
    // The claiming sources: the one definition the Rust checks use too (`Source::ERASURE`, `PURGE`).
    let codes = |sources: &[Source]| sources.iter().map(|s| db::source_code(*s).to_string()).collect::<Vec<_>>().join(", ");
    let (erasure_sources, purge_sources) = (codes(&Source::ERASURE), codes(&Source::PURGE));
    format!(
        r#"
    CREATE INDEX events_by_subject ON events(subject) WHERE subject IS NOT NULL;
    CREATE INDEX events_unattributed ON events(action) WHERE subject IS NULL;
    CREATE TRIGGER events_append_only_delete BEFORE DELETE ON events
        BEGIN SELECT RAISE(ABORT, 'consentkit events are append-only'); END;
    CREATE TRIGGER events_append_only_update BEFORE UPDATE ON events
        WHEN OLD.removed_by IS NOT NULL OR NEW.removed_by IS NULL
          OR NEW.seq IS NOT OLD.seq OR NEW.hash IS NOT OLD.hash OR NEW.content_hash IS NOT OLD.content_hash
          OR COALESCE(NEW.id, NEW.subject, NEW.category, NEW.action, NEW.scope, NEW.source, NEW.policy_id,
                      NEW.policy_version, NEW.purpose_version, NEW.at, NEW.valid_until, NEW.permission,
                      NEW.os_state, NEW.detail) IS NOT NULL
          OR NOT EXISTS (
              SELECT 1 FROM events AS claim
              WHERE claim.seq = NEW.removed_by AND claim.seq > OLD.seq AND claim.removed_by IS NULL
                AND ((claim.action = {erasure} AND claim.source IN ({erasure_sources}))
                     OR (claim.action = {purge} AND claim.source IN ({purge_sources})))
                AND consentkit_claims(claim.hash, claim.detail, OLD.seq))
        BEGIN SELECT RAISE(ABORT, 'consentkit events are append-only: only an erasure or purge record removes an event'); END;
    CREATE TRIGGER events_append_only_insert BEFORE INSERT ON events
        WHEN EXISTS (SELECT 1 FROM events WHERE seq = NEW.seq OR id = NEW.id)
        BEGIN SELECT RAISE(ABORT, 'consentkit events are append-only: a sequence number or id is never reused'); END;
    CREATE TRIGGER names_append_only_delete BEFORE DELETE ON names
        BEGIN SELECT RAISE(ABORT, 'consentkit names are append-only'); END;
    CREATE TRIGGER names_append_only_update BEFORE UPDATE ON names
        BEGIN SELECT RAISE(ABORT, 'consentkit names are append-only'); END;
    CREATE TRIGGER names_append_only_insert BEFORE INSERT ON names
        WHEN EXISTS (SELECT 1 FROM names WHERE code = NEW.code OR name = NEW.name)
        BEGIN SELECT RAISE(ABORT, 'consentkit names are append-only'); END;
    "#
    )
}

/// Migration 4: moves the v3 ledger into the compact v4 row, inside the migration's transaction.
/// Every row is copied as it was (same seq, id, content and link hashes), then the whole new
/// chain is verified against the recorded head as `verify` does (content hashes, links, tombstone
/// claims). Fails closed: a v3 row that does not carry over exactly, or a chain that does not
/// verify, fails the migration, which rolls back and leaves the file as it was.
fn compact_rows(conn: &Connection) -> Result<u64> {
    conn.execute_batch(
        "DROP TRIGGER IF EXISTS events_append_only_delete; DROP TRIGGER IF EXISTS events_append_only_update;
         DROP INDEX IF EXISTS events_by_subject; DROP INDEX IF EXISTS events_unattributed;
         ALTER TABLE events RENAME TO events_v3;",
    )?;
    conn.execute_batch(V4_TABLES)?;
    let copied = db::copy_v3_events(conn)?;
    conn.execute_batch("DROP TABLE events_v3;")?;
    conn.execute_batch(&v4_indexes_and_triggers())?;
    let mut verifier = chain::Verifier::default();
    let mut broken = None;
    db::for_each_chain_row(conn, |row| match verifier.push(row) {
        Ok(()) => true,
        Err(b) => {
            broken = Some(b);
            false
        }
    })?;
    let checked = match broken {
        Some(b) => Err(b),
        None => verifier.finish(db::head(conn)?),
    };
    match checked {
        Ok(events) if events == copied => Ok(copied),
        Ok(events) => Err(Error::Corrupt(format!("migration to schema version 4 copied {copied} events but verified {events}"))),
        Err(b) => {
            log::error!("consentkit: not migrating to schema version 4: {b}");
            Err(Error::Tampered(b))
        }
    }
}

/// The schema version this build writes.
pub const LATEST: i64 = MIGRATIONS.len() as i64;

/// How to open a store file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// Create if missing, migrate, read and write.
    ReadWrite,
    /// Never create, migrate or change the file; a missing file is an error.
    ReadOnly,
}

/// How long a statement waits for another connection's or process's lock before it fails with
/// [`Error::Busy`] (SQLite's busy handler retries within this bound).
pub const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Largest WAL file kept after a checkpoint (bytes): a checkpointed WAL is truncated to this.
/// Above the size the WAL reaches in steady use (SQLite checkpoints at 1,000 frames of a 4 KiB
/// page and its 24-byte header, about 4.1 MB), so ordinary writes reuse the file's blocks instead
/// of truncating and regrowing it after every checkpoint (that cost a write a truncation and a
/// block allocation per checkpoint); a WAL grown past it by a large batch or a blocked
/// checkpoint is cut back to it. An erasure's scrub truncates the WAL to zero regardless.
pub const JOURNAL_SIZE_LIMIT: i64 = 5 << 20;

/// The durability settings of a read-write connection, as `(pragma, value)`: WAL with
/// `synchronous=FULL` everywhere, a bounded WAL, and on Apple platforms (`apple`)
/// `fullfsync`/`checkpoint_fullfsync`, without which `fsync` does not reach stable storage there.
pub fn durability_pragmas(apple: bool) -> Vec<(&'static str, String)> {
    let mut pragmas = vec![("synchronous", "FULL".to_string()), ("journal_size_limit", JOURNAL_SIZE_LIMIT.to_string())];
    if apple {
        pragmas.push(("fullfsync", "ON".to_string()));
        pragmas.push(("checkpoint_fullfsync", "ON".to_string()));
    }
    pragmas
}

/// `PRAGMA name = value`, for a pragma and a value of ours (constants, never caller text). Built
/// here rather than by rusqlite's generic `pragma_update`, whose value quoting formats every SQL
/// value type (floats included: about 8 KB of library for a handful of integer and keyword values).
fn set_pragma(conn: &Connection, name: &str, value: &str) -> rusqlite::Result<()> {
    conn.execute_batch(&format!("PRAGMA {name} = {value}"))
}

/// Keeps the `-wal` and `-shm` files when this connection closes last (SQLITE_FCNTL_PERSIST_WAL),
/// so a read-only opener (an app extension) can still open the file afterwards.
fn persist_wal(conn: &Connection) {
    let mut on: std::os::raw::c_int = 1;
    // SAFETY: a valid open handle, the "main" schema, and a pointer to an int as the opcode expects.
    let rc = unsafe {
        rusqlite::ffi::sqlite3_file_control(
            conn.handle(),
            c"main".as_ptr(),
            rusqlite::ffi::SQLITE_FCNTL_PERSIST_WAL,
            (&mut on as *mut std::os::raw::c_int).cast(),
        )
    };
    if rc != rusqlite::ffi::SQLITE_OK {
        log::warn!("consentkit: could not keep the WAL files for read-only openers (code {rc})");
    }
}

fn unavailable(path: &Path, why: impl Into<String>) -> Error {
    Error::StoreUnavailable { path: path.to_path_buf(), why: why.into() }
}

/// An SQLite error while opening: busy or locked (another connection holds the file past the
/// busy timeout) is [`Error::Busy`], retryable; anything else makes the store unavailable.
fn opening(path: &Path, e: rusqlite::Error) -> Error {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            Error::Busy("opening the store: another connection held the file past the busy timeout".into())
        }
        _ => unavailable(path, e.to_string()),
    }
}

/// Opens (and in read-write mode creates and migrates) a ConsentKit database.
pub fn open(path: &Path, mode: OpenMode) -> Result<Connection> {
    open_flagged(path, mode, true)
}

/// [`open`] for a file that must already exist (a store's second connection): never creates
/// one; a missing file makes the store unavailable.
pub fn open_existing(path: &Path, mode: OpenMode) -> Result<Connection> {
    open_flagged(path, mode, false)
}

fn open_flagged(path: &Path, mode: OpenMode, create: bool) -> Result<Connection> {
    let in_memory = path.as_os_str() == ":memory:" || path.to_str().is_some_and(|p| p.starts_with("file:") && p.contains("vfs=memdb"));
    if mode == OpenMode::ReadOnly && !in_memory && !path.exists() {
        return Err(unavailable(path, "no such file"));
    }
    let flags = match mode {
        OpenMode::ReadWrite if create => OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        OpenMode::ReadWrite => OpenFlags::SQLITE_OPEN_READ_WRITE,
        OpenMode::ReadOnly => OpenFlags::SQLITE_OPEN_READ_ONLY,
    } | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| unavailable(path, e.to_string()))?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    register_functions(&conn)?;
    // Read-only checks first: nothing below writes until we know the file is ours and not newer.
    let read = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0));
    let version = read("PRAGMA user_version").map_err(|e| opening(path, e))?;
    let app_id = read("PRAGMA application_id").map_err(|e| opening(path, e))?;
    let tables = read("SELECT count(*) FROM sqlite_master").map_err(|e| opening(path, e))?;
    if version > LATEST {
        return Err(Error::SchemaTooNew { path: path.to_path_buf(), found: version, supported: LATEST });
    }
    if app_id != APPLICATION_ID && (app_id != 0 || tables > 0) {
        return Err(unavailable(path, format!("not a ConsentKit database (application_id {app_id:#x}, {tables} objects)")));
    }
    set_pragma(&conn, "foreign_keys", "1")?;
    set_pragma(&conn, "secure_delete", "1")?;
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
    if mode == OpenMode::ReadOnly {
        if version < LATEST {
            return Err(unavailable(path, format!("schema version {version} needs a migration; open it read-write once")));
        }
        set_pragma(&conn, "query_only", "1")?;
        if !in_memory {
            persist_wal(&conn);
        }
        return Ok(conn);
    }
    // Durable: a committed transaction is on disk before the call returns (WAL + FULL sync).
    let journal: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0)).map_err(|e| opening(path, e))?;
    if !in_memory && !journal.eq_ignore_ascii_case("wal") {
        return Err(unavailable(path, format!("could not enable WAL (journal mode is {journal})")));
    }
    for (pragma, value) in durability_pragmas(cfg!(target_vendor = "apple")) {
        set_pragma(&conn, pragma, &value)?;
    }
    if !in_memory {
        persist_wal(&conn);
    }
    // Up to date (the common case): no exclusive transaction, so opening never waits for another
    // process's write. Older: migrate, which reads the version again under its exclusive lock.
    if version < LATEST || tables == 0 {
        migrate(&conn, path)?;
    }
    Ok(conn)
}

/// Registers the SQL functions the schema's triggers call. `consentkit_claims(hash, detail, seq)`
/// is true when the record with link hash `hash` lists `seq` in its `detail`'s `removed_seqs`;
/// the last record's list is kept parsed, so an erasure of n events costs O(n), not O(n²).
fn register_functions(conn: &Connection) -> Result<()> {
    // The last record's list, sorted (binary search: no hash set compiled in for it).
    let parsed: Mutex<Option<(Vec<u8>, Vec<u64>)>> = Mutex::new(None);
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC | FunctionFlags::SQLITE_INNOCUOUS;
    conn.create_scalar_function("consentkit_claims", 3, flags, move |ctx| {
        // The hash only keys the cache: a BLOB since schema v4, hex text before.
        let hash = match ctx.get_raw(0) {
            rusqlite::types::ValueRef::Blob(b) | rusqlite::types::ValueRef::Text(b) => Some(b.to_vec()),
            _ => None,
        };
        let (Some(hash), Some(detail), Some(seq)) = (hash, ctx.get::<Option<String>>(1)?, ctx.get::<Option<i64>>(2)?) else {
            return Ok(false);
        };
        let mut parsed = parsed.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if parsed.as_ref().is_none_or(|(h, _)| *h != hash) {
            let mut seqs = chain::removed_seqs(&detail);
            crate::order::sort_by_less(&mut seqs, |a, b| a < b);
            *parsed = Some((hash, seqs));
        }
        Ok(parsed.as_ref().is_some_and(|(_, seqs)| u64::try_from(seq).is_ok_and(|s| seqs.binary_search(&s).is_ok())))
    })?;
    Ok(())
}

/// Runs the pending migrations in one exclusive transaction (all or none; durable at COMMIT,
/// as every write). A ledger rewritten into the compact row is then vacuumed, so the file shrinks
/// to the new size (best effort: the migration has committed either way).
fn migrate(conn: &Connection, path: &Path) -> Result<()> {
    conn.execute_batch("BEGIN EXCLUSIVE")?;
    let mut compacted = 0;
    let result = (|| {
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > LATEST {
            return Err(Error::SchemaTooNew { path: path.to_path_buf(), found: version, supported: LATEST });
        }
        for (i, step) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            log::info!("consentkit: migrating the store to schema version {}", i + 1);
            match step {
                Step::Sql(sql) => conn.execute_batch(sql)?,
                Step::CompactRows => compacted = compact_rows(conn)?,
                // The rewritten (smaller) rows leave the table's pages part empty: vacuumed too.
                Step::BinaryStateRows => compacted += crate::state_proof::migrate_rows_to_binary(conn)?,
                // One byte more per item grant: nothing to give back.
                Step::ItemGuardianFlags => {
                    crate::state_proof::migrate_item_guardian_flags(conn)?;
                }
            }
        }
        if version < LATEST {
            set_pragma(conn, "application_id", &APPLICATION_ID.to_string())?;
            set_pragma(conn, "user_version", &LATEST.to_string())?;
        }
        Ok(())
    })();
    match result {
        Ok(()) => conn.execute_batch("COMMIT")?,
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(e);
        }
    }
    if compacted > 0 {
        if let Err(e) = conn.execute_batch("VACUUM; PRAGMA wal_checkpoint(TRUNCATE);") {
            // No path in a log line: it may hold a user's name or id.
            log::warn!(
                "consentkit: migrated the store to the compact row; the file shrinks at a later VACUUM ({})",
                Error::from(e).log_summary()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_migrates_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        drop(open(&path, OpenMode::ReadWrite).unwrap());
        let conn = open(&path, OpenMode::ReadOnly).unwrap();
        let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(v, LATEST);
        assert!(conn.execute("INSERT INTO meta VALUES ('a','b')", []).is_err(), "read-only");
    }

    #[test]
    fn newer_schema_is_refused_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        drop(open(&path, OpenMode::ReadWrite).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", LATEST + 1).unwrap();
        conn.pragma_update(None, "journal_mode", "DELETE").unwrap();
        drop(conn);
        let before = std::fs::read(&path).unwrap();
        let err = open(&path, OpenMode::ReadWrite).unwrap_err();
        assert!(matches!(err, Error::SchemaTooNew { found, .. } if found == LATEST + 1), "{err}");
        assert!(err.to_string().contains(&format!("schema version {}", LATEST + 1)));
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    #[test]
    fn foreign_and_garbage_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let other = dir.path().join("other.db");
        Connection::open(&other).unwrap().execute_batch("CREATE TABLE t(x)").unwrap();
        assert!(open(&other, OpenMode::ReadWrite).unwrap_err().to_string().contains("not a ConsentKit database"));
        let garbage = dir.path().join("garbage.db");
        std::fs::write(&garbage, b"this is not sqlite at all, just some bytes to fill a page..").unwrap();
        assert!(matches!(open(&garbage, OpenMode::ReadWrite), Err(Error::StoreUnavailable { .. })));
        assert!(open(&dir.path().join("missing.db"), OpenMode::ReadOnly).unwrap_err().to_string().contains("no such file"));
    }
}
