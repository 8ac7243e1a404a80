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
    ] {
        assert!(!options.iter().any(|o| o == gone || o.starts_with(&format!("{gone}="))), "{gone} is still compiled in: {options:?}");
    }
    for kept in ["OMIT_LOAD_EXTENSION", "OMIT_SHARED_CACHE", "DQS=0"] {
        assert!(options.iter().any(|o| o == kept), "{kept} missing from {options:?}");
    }
}

#[test]
fn double_quoted_strings_are_identifiers_not_literals() {
    let conn = rusqlite::Connection::open_in_memory().expect("in-memory SQLite");
    conn.execute_batch("CREATE TABLE t (a TEXT)").expect("table");
    let err = conn.execute("INSERT INTO t VALUES (\"not a column\")", []).expect_err("a double-quoted string must not be a literal");
    assert!(err.to_string().contains("no such column"), "{err}");
}
