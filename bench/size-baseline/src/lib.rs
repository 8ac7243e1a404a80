//! One exported call that opens a SQLite database and runs a query, so the linker keeps uniffi's
//! scaffolding and the SQLite engine: the floor under any uniffi library with bundled SQLite.
//! With feature `deps`, also the floor under ConsentKit's share: [`deps_floor`].
uniffi::setup_scaffolding!();

#[cfg(feature = "deps")]
mod deps_floor;

/// The SQLite version, read through a connection to `path` (keeps the engine linked).
#[uniffi::export]
pub fn sqlite_version_at(path: String) -> String {
    match rusqlite::Connection::open(path) {
        Ok(conn) => conn.query_row("SELECT sqlite_version()", [], |row| row.get::<_, String>(0)).unwrap_or_default(),
        Err(e) => e.to_string(),
    }
}
