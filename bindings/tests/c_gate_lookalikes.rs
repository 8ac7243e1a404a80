//! The C gate (`consentkit_gate_check`) with ids that differ from a granted one only by NUL,
//! trailing space, Unicode normalization or case, and with very long ids: never an allow, and
//! every answered denial carries its reasons (support staff read them).

use consentkit_core::Source;
use consentkit_ffi::*;

extern "C" {
    fn consentkit_gate_check(
        token: u64,
        subject: *const u8,
        subject_len: usize,
        feature: *const u8,
        feature_len: usize,
        has_scope: bool,
        scope: *const u8,
        scope_len: usize,
        words: *mut i64,
        words_len: usize,
        text: *mut u8,
        text_cap: usize,
    ) -> i32;
}

const ANSWERED: i32 = 0;
const ALLOWED: i64 = 1;

/// (status, allowed, reason count) of one C gate call; `words[0]` starts at ALLOWED so a
/// non-answer that forgot to clear it shows.
fn gate(token: u64, subject: &[u8], feature: &[u8], scope: Option<&[u8]>) -> (i32, bool, i64) {
    let mut words = vec![0i64; 64];
    words[0] = ALLOWED;
    let mut text = vec![0u8; 4096];
    let (scope_ptr, scope_len) = scope.map_or((std::ptr::null(), 0), |s| (s.as_ptr(), s.len()));
    let status = unsafe {
        consentkit_gate_check(
            token,
            subject.as_ptr(),
            subject.len(),
            feature.as_ptr(),
            feature.len(),
            scope.is_some(),
            scope_ptr,
            scope_len,
            words.as_mut_ptr(),
            words.len(),
            text.as_mut_ptr(),
            text.len(),
        )
    };
    (status, words[0] & ALLOWED != 0, words[2])
}

fn denied(token: u64, subject: &[u8], feature: &[u8], scope: Option<&[u8]>) {
    let (status, allowed, reasons) = gate(token, subject, feature, scope);
    let what =
        format!("{:?} {:?} {:?}", String::from_utf8_lossy(subject), String::from_utf8_lossy(feature), scope.map(String::from_utf8_lossy));
    assert!(!allowed, "{what}: allowed (status {status})");
    if status == ANSWERED {
        assert!(reasons > 0, "{what}: a denial without reasons");
    }
}

#[test]
fn look_alike_and_long_ids_are_never_allowed_through_the_c_gate() {
    let dir = tempfile::tempdir().unwrap();
    let kit = ConsentKit::open(dir.path().join("a.db").to_string_lossy().into_owned(), None).unwrap();
    let token = c_gate_token(kit.clone()).unwrap();
    let nfc = "jos\u{e9}";
    kit.grant(nfc.into(), "usage_statistics".into(), None, Source::Settings).unwrap();
    kit.grant(nfc.into(), "device_contacts".into(), None, Source::Settings).unwrap();
    kit.grant(nfc.into(), "device_contacts".into(), Some("contact-1".into()), Source::Settings).unwrap();
    kit.set_os_permission(consentkit_core::OsPermission::CONTACTS, consentkit_core::OsState::Granted).unwrap();
    assert_eq!(gate(token, nfc.as_bytes(), b"usage_analytics", None), (ANSWERED, true, 0));
    assert_eq!(gate(token, nfc.as_bytes(), b"contact_sync", Some(b"contact-1")), (ANSWERED, true, 0));

    let long = "x".repeat(100_000);
    let subjects: Vec<Vec<u8>> = vec![
        "jose\u{301}".into(),
        "JOS\u{c9}".into(),
        "Jos\u{e9}".into(),
        format!("{nfc} ").into(),
        format!(" {nfc}").into(),
        format!("{nfc}\0").into(),
        "jos\0\u{e9}".into(),
        format!("{nfc}\u{200b}").into(),
        format!("{nfc}{}", "x".repeat(300)).into(),
        long.clone().into(),
        Vec::new(),
    ];
    for subject in &subjects {
        denied(token, subject, b"usage_analytics", None);
        denied(token, subject, b"contact_sync", Some(b"contact-1"));
    }
    for feature in ["usage_analytics ", "usage_analytics\0", "Usage_analytics", "USAGE_ANALYTICS", "", long.as_str()] {
        denied(token, nfc.as_bytes(), feature.as_bytes(), None);
    }
    for scope in ["contact-1 ", "contact-1\0", "Contact-1", "", long.as_str()] {
        denied(token, nfc.as_bytes(), b"contact_sync", Some(scope.as_bytes()));
    }
    // No scope on a per-item feature, a scope on a whole-category one.
    denied(token, nfc.as_bytes(), b"contact_sync", None);
    denied(token, nfc.as_bytes(), b"usage_analytics", Some(b"contact-1"));

    // Once a withdrawal has returned, the gate denies, with its reason.
    kit.withdraw(nfc.into(), "usage_statistics".into(), None, Source::Settings).unwrap();
    let (status, allowed, reasons) = gate(token, nfc.as_bytes(), b"usage_analytics", None);
    assert_eq!((status, allowed, reasons), (ANSWERED, false, 1));
    kit.withdraw(nfc.into(), "device_contacts".into(), None, Source::Settings).unwrap();
    let (status, allowed, reasons) = gate(token, nfc.as_bytes(), b"contact_sync", Some(b"contact-1"));
    assert_eq!((status, allowed), (ANSWERED, false));
    assert!(reasons >= 1);
    kit.shutdown().unwrap();
}
