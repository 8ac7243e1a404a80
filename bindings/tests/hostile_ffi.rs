//! Hostile calls through the FFI layer: every one answers or throws a typed error, none panics
//! (a panic would surface as `Internal`), and a refused call changes nothing.

use consentkit_core::Source;
use consentkit_ffi::*;

fn not_internal<T: std::fmt::Debug>(what: &str, r: Result<T, ConsentKitError>) {
    if let Err(ConsentKitError::Internal(m)) = &r {
        panic!("{what}: a panic or internal error crossed the FFI: {m}");
    }
}

#[test]
fn odd_paths_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    for path in
        ["".to_string(), "a\0b".to_string(), sub.to_string_lossy().into_owned(), "/proc/self/mem".into(), "/nonexistent-dir/x.db".into()]
    {
        not_internal(&format!("open {path:?}"), ConsentKit::open(path.clone(), None).map(|_| ()));
        match ConsentKit::open_fail_closed(path.clone(), None) {
            Ok(kit) => {
                not_internal("check", kit.check("alice".into(), "usage_analytics".into(), None));
                not_internal("quarantine", kit.quarantine());
                not_internal("reason", kit.unavailable_reason());
                let _ = kit.shutdown();
            }
            Err(e) => assert!(!matches!(e, ConsentKitError::Internal(_)), "{path:?}: {e:?}"),
        }
    }
}

#[test]
fn extreme_values_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db").to_string_lossy().into_owned();
    for at in [i64::MIN, -1, 0, 253_402_300_799_999, 253_402_300_800_000, i64::MAX] {
        let clock = TestClock::new(consentkit_core::Timestamp(at)).unwrap();
        let kit = match ConsentKit::open_with_clock(path.clone(), None, clock.clone()) {
            Ok(kit) => kit,
            Err(e) => {
                assert!(!matches!(e, ConsentKitError::Internal(_)), "{at}: {e:?}");
                continue;
            }
        };
        not_internal("grant", kit.grant("alice".into(), "usage_statistics".into(), None, Source::Settings));
        not_internal("withdraw", kit.withdraw("alice".into(), "usage_statistics".into(), None, Source::Settings));
        not_internal("check", kit.check("alice".into(), "usage_analytics".into(), None));
        not_internal("status", kit.statuses("alice".into()));
        not_internal("should_ask", kit.should_ask("alice".into(), "usage_statistics".into()));
        not_internal("export", kit.export_json("alice".into()));
        not_internal("expiries", kit.record_expiries());
        not_internal("purge", kit.purge());
        not_internal("verify", kit.verify());
        not_internal("ack", kit.ack_sync(u64::MAX));
        not_internal("pending", kit.pending_sync(u32::MAX));
        not_internal("batch", kit.sync_batch("d".into(), u32::MAX));
        not_internal("set", clock.set(consentkit_core::Timestamp(at.saturating_add(1))));
        not_internal("check after", kit.check("alice".into(), "usage_analytics".into(), None));
        kit.shutdown().unwrap();
    }
}

/// The reason a store failed closed is read from the cause, never from the path: an app whose
/// files live under a folder named `hashes`, `corrupt` or `busy` (a package name, a user name)
/// and whose store cannot be opened (here: the path is a folder) is told `Unreadable`, not
/// `Damaged`, so `quarantine` (which would move the file aside and lose its unsent withdrawals)
/// is refused and nothing is moved.
#[test]
fn the_reason_is_read_from_the_cause_not_from_the_path() {
    let dir = tempfile::tempdir().unwrap();
    for folder in ["com.hashicorp.app", "corrupt-files", "busybox", "malformed", "unlocked"] {
        let path = dir.path().join(folder).join("consent.db");
        std::fs::create_dir_all(&path).unwrap(); // a folder where the store should be
        let kit = ConsentKit::open_fail_closed(path.to_string_lossy().into_owned(), None).unwrap();
        let reason = kit.unavailable_reason().unwrap().expect("failed closed");
        assert_eq!(reason.kind, UnavailableKind::Unreadable, "{folder}: {}", reason.message);
        assert!(!reason.can_quarantine, "{folder}");
        assert!(matches!(kit.quarantine(), Err(ConsentKitError::InvalidInput(_))), "{folder}");
        assert!(path.is_dir(), "{folder}: nothing moved");
        assert!(!kit.check("alice".into(), "usage_analytics".into(), None).unwrap().allowed);
        kit.shutdown().unwrap();
    }
}
