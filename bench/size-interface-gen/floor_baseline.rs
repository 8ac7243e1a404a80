//! Appended by scripts/bench-size.sh to the generated interface floor: the baseline's own code
//! (bench/size-baseline), so the interface floor holds what the baseline holds plus the interface
//! and its size minus the baseline's is what the interface costs; with feature `deps`, also the
//! deps floor's code (bench/size-baseline/src/deps_floor.rs, copied without its uniffi export),
//! which makes the combined floor: the interface and every other dependency, in one library.
//! Plain C exports, not uniffi ones: the floor's uniffi exports must be exactly ConsentKit's (the
//! script checks). (The baseline's own uniffi exports, one-string functions, are not in the floor:
//! the measured floors are, if anything, that much too low.)

/// The SQLite version, read through a connection to the NUL-terminated `path`; returns its length.
///
/// # Safety
/// `path` is a valid NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn size_floor_sqlite_version_at(path: *const std::ffi::c_char) -> usize {
    let path = unsafe { std::ffi::CStr::from_ptr(path) }.to_string_lossy().into_owned();
    match rusqlite::Connection::open(path) {
        Ok(conn) => conn.query_row("SELECT sqlite_version()", [], |row| row.get::<_, String>(0)).map(|v| v.len()).unwrap_or_default(),
        Err(e) => e.to_string().len(),
    }
}

/// The deps floor's call on the NUL-terminated `json`; returns the length of its answer.
///
/// # Safety
/// `json` is a valid NUL-terminated string.
#[cfg(feature = "deps")]
#[no_mangle]
pub unsafe extern "C" fn size_floor_deps(json: *const std::ffi::c_char) -> usize {
    let json = unsafe { std::ffi::CStr::from_ptr(json) }.to_string_lossy().into_owned();
    crate::deps_floor::deps_floor(json).len()
}
