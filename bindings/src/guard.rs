//! The panic guard and the one way to export a call: [`ffi_export!`]. Every exported function and
//! method is written inside `ffi_export!`, which wraps its body in [`guard`], so no export can
//! forget it: a panic anywhere below becomes `ConsentKitError::Internal` instead of crossing the
//! boundary (Swift would crash in its `try!`, Kotlin would see a bare `InternalException`).
//! A test refuses `#[uniffi::export]` written anywhere else in this crate (foreign traits excepted).

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::error::ConsentKitError;

/// Runs one FFI call, turning a panic into `ConsentKitError::Internal` instead of a crash.
pub(crate) fn guard<T>(call: impl FnOnce() -> Result<T, ConsentKitError>) -> Result<T, ConsentKitError> {
    catch_unwind(AssertUnwindSafe(|| {
        #[cfg(test)]
        tests::panic_if_armed();
        call()
    }))
    .unwrap_or_else(|panic| Err(caught(panic)))
}

/// The error a caught panic becomes. Not generic and never inlined: one copy for every export
/// (each export's own code is then just the call and its unwinding edge).
#[cold]
#[inline(never)]
fn caught(panic: Box<dyn Any + Send>) -> ConsentKitError {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    // The payload may hold caller data (a subject in a formatted message): the log gets none of it.
    log::error!("consentkit: panic caught at the FFI boundary; returned as Internal");
    ConsentKitError::Internal(format!("internal error (please report): {what}"))
}

/// Exports an `impl` block's methods (or free functions) through uniffi with every body run
/// under [`guard`]. Each function must return `Result<T>` (`Result<T, ConsentKitError>`); its body
/// is the closure's body, so `?` converts core errors. Also lists the exported names in
/// `GUARDED_EXPORTS` (an inherent constant) for the coverage test.
macro_rules! ffi_export {
    (impl $ty:ident { $( $(#[$meta:meta])* pub fn $name:ident ( $($params:tt)* ) -> $ret:ty $body:block )* }) => {
        #[uniffi::export]
        impl $ty {
            $( $(#[$meta])* pub fn $name ( $($params)* ) -> $ret { $crate::guard::guard(move || $body) } )*
        }
        impl $ty {
            /// The names of this type's exports, all guarded (for the coverage test).
            #[allow(dead_code)]
            pub(crate) const GUARDED_EXPORTS: &'static [&'static str] = &[$(stringify!($name)),*];
        }
    };
    ($( $(#[$meta:meta])* pub fn $name:ident ( $($params:tt)* ) -> $ret:ty $body:block )*) => {
        $( #[uniffi::export] $(#[$meta])* pub fn $name ( $($params)* ) -> $ret { $crate::guard::guard(move || $body) } )*
    };
}
pub(crate) use ffi_export;

#[cfg(test)]
pub(crate) mod tests {
    use std::cell::Cell;

    use super::*;

    thread_local! {
        static ARMED: Cell<bool> = const { Cell::new(false) };
    }

    /// Makes the next guarded call on this thread panic inside its guard.
    pub(crate) fn arm_panic() {
        ARMED.with(|a| a.set(true));
    }

    pub(crate) fn panic_if_armed() {
        if ARMED.with(|a| a.replace(false)) {
            panic!("injected panic");
        }
    }

    #[test]
    fn a_panic_becomes_an_internal_error() {
        let result: Result<(), ConsentKitError> = guard(|| panic!("boom"));
        assert!(matches!(result, Err(ConsentKitError::Internal(m)) if m.contains("boom")));
        let result: Result<(), ConsentKitError> = guard(|| std::panic::panic_any(42_u8));
        assert!(matches!(result, Err(ConsentKitError::Internal(m)) if m.contains("unknown panic")));
    }

    /// Structural: `#[uniffi::export]` appears only in `ffi_export!` (this file), so every export of
    /// the crate, in every source file present or future, runs under the guard.
    #[test]
    fn every_export_goes_through_the_guarded_macro() -> Result<(), Box<dyn std::error::Error>> {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut offenders = Vec::new();
        let mut files = 0;
        for entry in std::fs::read_dir(&src)? {
            let path = entry?.path();
            if path.extension().is_none_or(|e| e != "rs") || path.ends_with("guard.rs") {
                continue;
            }
            files += 1;
            let text = std::fs::read_to_string(&path)?;
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                let unguarded = code.contains("uniffi::export") && !code.contains("uniffi::export(foreign)");
                if unguarded {
                    offenders.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                }
            }
        }
        assert!(files >= 4, "read the sources in {}", src.display());
        assert!(offenders.is_empty(), "exports outside ffi_export! (unguarded):\n{}", offenders.join("\n"));
        Ok(())
    }
}
