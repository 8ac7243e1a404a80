//! The SQLite schema, its migrations (`PRAGMA user_version`), and opening a connection safely:
//! a file from a newer ConsentKit or another application is refused before anything is written.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Mutex;

use rusqlite::functions::FunctionFlags;
use rusqlite::{Connection, OpenFlags};

use crate::chain;
use crate::error::{Error, Result};

/// `PRAGMA application_id` of a ConsentKit store ("CKIT").
pub const APPLICATION_ID: i64 = 0x434B_4954;

/// Migrations in order; migration `i` moves `user_version` from `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
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
    // 2: only the store's own erasure and purge records may tombstone an event. The row must be
    // live, keep its link hashes, lose all of its content, and be listed in the `removed_seqs` of
    // the erasure or purge record its `removed_by` names, written after it by the store (never
    // imported). `consentkit_claims` exists only on ConsentKit's own connections, so an UPDATE from
    // any other connection (the sqlite3 shell, the app's own SQLite) is refused outright.
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
    // 3: the events that name no subject (device OS permission changes, erasure and purge
    // records), by action: `history` interleaves the device's OS changes and `erasures_of` finds
    // erasure records through it instead of scanning the ledger. Few rows, so a small index.
    r#"
    CREATE INDEX events_unattributed ON events(action, seq) WHERE subject IS NULL;
    "#,
];

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

fn unavailable(path: &Path, why: impl Into<String>) -> Error {
    Error::StoreUnavailable { path: path.to_path_buf(), why: why.into() }
}

/// Opens (and in read-write mode creates and migrates) a ConsentKit database.
pub fn open(path: &Path, mode: OpenMode) -> Result<Connection> {
    let in_memory = path.as_os_str() == ":memory:";
    if mode == OpenMode::ReadOnly && !in_memory && !path.exists() {
        return Err(unavailable(path, "no such file"));
    }
    let flags = match mode {
        OpenMode::ReadWrite => OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        OpenMode::ReadOnly => OpenFlags::SQLITE_OPEN_READ_ONLY,
    } | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| unavailable(path, e.to_string()))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    register_functions(&conn)?;
    // Read-only checks first: nothing below writes until we know the file is ours and not newer.
    let read = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0));
    let version = read("PRAGMA user_version").map_err(|e| unavailable(path, e.to_string()))?;
    let app_id = read("PRAGMA application_id").map_err(|e| unavailable(path, e.to_string()))?;
    let tables = read("SELECT count(*) FROM sqlite_master").map_err(|e| unavailable(path, e.to_string()))?;
    if version > LATEST {
        return Err(Error::SchemaTooNew { path: path.to_path_buf(), found: version, supported: LATEST });
    }
    if app_id != APPLICATION_ID && (app_id != 0 || tables > 0) {
        return Err(unavailable(path, format!("not a ConsentKit database (application_id {app_id:#x}, {tables} objects)")));
    }
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.pragma_update(None, "secure_delete", true)?;
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
    if mode == OpenMode::ReadOnly {
        if version < LATEST {
            return Err(unavailable(path, format!("schema version {version} needs a migration; open it read-write once")));
        }
        conn.pragma_update(None, "query_only", true)?;
        return Ok(conn);
    }
    // Durable: a committed transaction is on disk before the call returns (WAL + FULL sync).
    let journal: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if !in_memory && !journal.eq_ignore_ascii_case("wal") {
        return Err(unavailable(path, format!("could not enable WAL (journal mode is {journal})")));
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    migrate(&conn, path)?;
    Ok(conn)
}

/// Registers the SQL functions the schema's triggers call. `consentkit_claims(hash, detail, seq)`
/// is true when the record with link hash `hash` lists `seq` in its `detail`'s `removed_seqs`;
/// the last record's list is kept parsed, so an erasure of n events costs O(n), not O(n²).
fn register_functions(conn: &Connection) -> Result<()> {
    let parsed: Mutex<Option<(String, HashSet<u64>)>> = Mutex::new(None);
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC | FunctionFlags::SQLITE_INNOCUOUS;
    conn.create_scalar_function("consentkit_claims", 3, flags, move |ctx| {
        let (Some(hash), Some(detail), Some(seq)) =
            (ctx.get::<Option<String>>(0)?, ctx.get::<Option<String>>(1)?, ctx.get::<Option<i64>>(2)?)
        else {
            return Ok(false);
        };
        let mut parsed = parsed.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if parsed.as_ref().is_none_or(|(h, _)| *h != hash) {
            *parsed = Some((hash, chain::removed_seqs(&detail).into_iter().collect()));
        }
        Ok(parsed.as_ref().is_some_and(|(_, seqs)| u64::try_from(seq).is_ok_and(|s| seqs.contains(&s))))
    })?;
    Ok(())
}

/// Runs the pending migrations in one exclusive transaction (all or none).
fn migrate(conn: &Connection, path: &Path) -> Result<()> {
    conn.execute_batch("BEGIN EXCLUSIVE")?;
    let result = (|| {
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > LATEST {
            return Err(Error::SchemaTooNew { path: path.to_path_buf(), found: version, supported: LATEST });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            log::info!("consentkit: migrating {path:?} to schema version {}", i + 1);
            conn.execute_batch(sql)?;
        }
        if version < LATEST {
            conn.pragma_update(None, "application_id", APPLICATION_ID)?;
            conn.pragma_update(None, "user_version", LATEST)?;
        }
        Ok(())
    })();
    match result {
        Ok(()) => conn.execute_batch("COMMIT").map_err(Error::from),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
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
