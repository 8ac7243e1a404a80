//! The bundled SQLite is built with `.cargo/config.toml`'s LIBSQLITE3_FLAGS: the features the
//! store never uses are compiled out (library size), and double-quoted strings are not literals.

fn compile_options() -> Vec<String> {
    let conn = rusqlite::Connection::open_in_memory().expect("in-memory SQLite");
    let mut stmt = conn.prepare("PRAGMA compile_options").expect("pragma");
    let rows = stmt.query_map([], |r| r.get::<_, String>(0)).expect("rows");
    rows.map(|r| r.expect("option")).collect()
}

#[test]
fn unused_sqlite_features_are_compiled_out() {
    let options = compile_options();
    for gone in [
        "ENABLE_FTS3",
        "ENABLE_FTS5",
        "ENABLE_RTREE",
        "ENABLE_DBSTAT_VTAB",
        "ENABLE_STAT4",
        "ENABLE_COLUMN_METADATA",
        "ENABLE_LOAD_EXTENSION",
        "ENABLE_MEMORY_MANAGEMENT",
        "SOUNDEX",
    ] {
        assert!(!options.iter().any(|o| o == gone || o.starts_with(&format!("{gone}="))), "{gone} is still compiled in: {options:?}");
    }
    for kept in [
        "OMIT_LOAD_EXTENSION",
        "OMIT_SHARED_CACHE",
        "DQS=0",
        "OMIT_JSON",
        "OMIT_DATETIME_FUNCS",
        "OMIT_UTF16",
        "OMIT_DECLTYPE",
        "OMIT_AUTHORIZATION",
        "OMIT_INCRBLOB",
        "LIKE_DOESNT_MATCH_BLOBS",
    ] {
        assert!(options.iter().any(|o| o == kept), "{kept} missing from {options:?}");
    }
    // SQLITE_OMIT_TRACE is not among the listed options; with it, sqlite3_expanded_sql is NULL.
    let conn = rusqlite::Connection::open_in_memory().expect("in-memory SQLite");
    assert_eq!(conn.prepare("SELECT 1").expect("statement").expanded_sql(), None, "tracing is still compiled in");
}

#[test]
fn double_quoted_strings_are_identifiers_not_literals() {
    let conn = rusqlite::Connection::open_in_memory().expect("in-memory SQLite");
    conn.execute_batch("CREATE TABLE t (a TEXT)").expect("table");
    let err = conn.execute("INSERT INTO t VALUES (\"not a column\")", []).expect_err("a double-quoted string must not be a literal");
    assert!(err.to_string().contains("no such column"), "{err}");
}

#[test]
fn the_json_and_date_sql_functions_are_not_built_and_what_the_store_uses_still_is() {
    let conn = rusqlite::Connection::open_in_memory().expect("in-memory SQLite");
    for call in ["SELECT json('{}')", "SELECT json_extract('{\"a\":1}', '$.a')", "SELECT date('now')", "SELECT strftime('%s', 'now')"] {
        let err = conn.query_row(call, [], |r| r.get::<_, rusqlite::types::Value>(0)).expect_err(call);
        assert!(err.to_string().contains("no such function"), "{call}: {err}");
    }
    // What the store's SQL relies on: upsert, RETURNING, STRICT and WITHOUT ROWID tables, CHECK,
    // triggers with RAISE, table-valued pragmas, hex() and zeroblob().
    conn.execute_batch(
        "CREATE TABLE t (k TEXT PRIMARY KEY, n INTEGER NOT NULL CHECK (n >= 0)) STRICT, WITHOUT ROWID;
         CREATE TRIGGER t_no_delete BEFORE DELETE ON t BEGIN SELECT RAISE(ABORT, 'append-only'); END;
         INSERT INTO t VALUES ('a', 1) ON CONFLICT (k) DO UPDATE SET n = n + 1;
         INSERT INTO t VALUES ('a', 1) ON CONFLICT (k) DO UPDATE SET n = n + 1;",
    )
    .expect("schema features");
    let n: i64 = conn.query_row("UPDATE t SET n = n + 1 WHERE k = 'a' RETURNING n", [], |r| r.get(0)).expect("returning");
    assert_eq!(n, 3);
    assert!(conn.execute("DELETE FROM t", []).expect_err("trigger").to_string().contains("append-only"));
    let columns: i64 = conn.query_row("SELECT count(*) FROM pragma_table_info('t')", [], |r| r.get(0)).expect("pragma table");
    assert_eq!(columns, 2);
    let text: String = conn.query_row("SELECT hex(zeroblob(2))", [], |r| r.get(0)).expect("hex");
    assert_eq!(text, "0000");
}
