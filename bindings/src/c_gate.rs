//! The C gate: one hand-written C entry for the call a Swift cache miss makes, the check. Through
//! the uniffi Swift bindings a check copies each string into a `RustBuffer` (a call into Rust
//! each) and decodes the answer from another buffer; here it is one C call taking the strings as
//! pointer and length (borrowed, not copied) and writing the answer into caller-owned integers
//! and bytes (`make bench-swift` has both rows). The declarations are
//! `bindings/swift/Sources/ConsentKitFFIC/ConsentKitGate.h`, shipped beside uniffi's header.
//!
//! Swift (`CGate.swift`) registers its `RustConsentKit` once with [`c_gate_token`] (a uniffi
//! export) and passes the token to each check, as Kotlin's JNI gate does (`jni.rs`): a token is
//! checked against a registry of weak references, so an unknown or stale token is an answer
//! ([`UNKNOWN_TOKEN`]), never a dereference of a dangling pointer. The entry only answers what the
//! uniffi `check` answers: it calls the same check on the same store and encodes the result.
//! Anything else returns a non-zero status and writes no allow: a failed check ([`CHECK_FAILED`]:
//! closed, unknown feature, bad input, ... ; uniffi then throws the typed error), an answer that
//! does not fit ([`NO_ROOM`]), an unknown token, a bad argument or invalid UTF-8
//! ([`INVALID_ARGUMENT`]), a caught panic ([`PANICKED`]). Nothing panics across the boundary.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use consentkit_core::ReasonCode;

use crate::consent_kit::ConsentKit;
use crate::error::ConsentKitError;
use crate::gate_tokens::{lookup, register};
use crate::guard::ffi_export;
use crate::types::CheckResult;

/// The version of the answer's layout below; `ConsentKitGate.h` says `CONSENTKIT_GATE_LAYOUT`.
pub const LAYOUT: i32 = 2;
/// Status: answered; `words` and `text` hold the decision.
pub const ANSWERED: i32 = 0;
/// Status: the answer does not fit in `words`/`text`: ask through uniffi.
pub const NO_ROOM: i32 = 1;
/// Status: the check failed (closed, unknown feature, invalid input, ...): uniffi throws the typed error.
pub const CHECK_FAILED: i32 = 2;
/// Status: no live kit has this token.
pub const UNKNOWN_TOKEN: i32 = -1;
/// Status: a null pointer with a non-zero length, `words` too short for the header, or invalid UTF-8.
pub const INVALID_ARGUMENT: i32 = -2;
/// Status: a panic inside the entry was caught.
pub const PANICKED: i32 = -3;

/// `words[0]` flags, `[1]` valid_until millis (0 when none), `[2]` reason count n, `[3]` the
/// nanoseconds the answer stays proven current (the core's `proof_remaining`, read before the
/// check: a cache keeps the answer no longer), then n reason codes (positions in
/// `ReasonCode::ALL`), then n byte lengths of the reasons' categories, whose text follows one
/// after another in `text`.
pub const HEADER: usize = 4;
/// Flag: the feature may run.
pub const ALLOWED: i64 = 1;
/// Flag: allowed with partial OS access.
pub const LIMITED: i64 = 2;
/// Flag: `words[1]` holds valid_until.
pub const HAS_VALID_UNTIL: i64 = 4;

ffi_export! {
    /// Registers `kit` for the C gate entry (`consentkit_gate_check`) and returns its token
    /// (Swift's `CGate` only). The token holds no reference: once the kit is gone, checks with it
    /// answer `CONSENTKIT_GATE_UNKNOWN_TOKEN`.
    pub fn c_gate_token(kit: Arc<ConsentKit>) -> Result<u64, ConsentKitError> {
        Ok(register(&kit))
    }
}

/// The version of the entry's answer layout, so Swift can refuse a library it does not match
/// (a no-argument C call: the bench's C floor).
#[no_mangle]
pub extern "C" fn consentkit_gate_layout() -> i32 {
    LAYOUT
}

/// The number of reason codes (`words` codes are below it), so Swift can check its table.
#[no_mangle]
pub extern "C" fn consentkit_gate_reason_codes() -> i32 {
    ReasonCode::ALL.len() as i32
}

/// The gate check: may `feature` run for `subject` now (`scope`: the item of a per-item feature,
/// `has_scope` false for none)? Returns [`ANSWERED`] with the decision in `words` and `text`, or
/// another status (module doc), having written no allow: `words[0]` is 0 whenever `words` holds
/// at least one element and the status is not [`ANSWERED`].
///
/// # Safety
/// Each pointer is null with length 0, or valid for reads (`subject`, `feature`, `scope`) or
/// writes (`words`: `words_len` elements, `text`: `text_cap` bytes) of its length for the call.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn consentkit_gate_check(
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
) -> i32 {
    if words.is_null() {
        return INVALID_ARGUMENT;
    }
    if words_len < HEADER {
        if words_len > 0 {
            // SAFETY: non-null and valid for `words_len` (> 0) writes (the caller's contract).
            unsafe { *words = 0 };
        }
        return INVALID_ARGUMENT;
    }
    // SAFETY: non-null and valid for `words_len` writes (the caller's contract).
    let words = unsafe { std::slice::from_raw_parts_mut(words, words_len) };
    words[0] = 0; // no allow unless answered
    let text = match unsafe { bytes_mut(text, text_cap) } {
        Some(text) => text,
        None => return INVALID_ARGUMENT,
    };
    let status = catch_unwind(AssertUnwindSafe(|| {
        #[cfg(test)]
        crate::guard::tests::panic_if_armed();
        // SAFETY: the caller's contract for each (pointer, length).
        let (subject, feature) = unsafe { (utf8(subject, subject_len), utf8(feature, feature_len)) };
        let scope = if has_scope { unsafe { utf8(scope, scope_len) }.map(Some) } else { Some(None) };
        let (Some(subject), Some(feature), Some(scope)) = (subject, feature, scope) else {
            return INVALID_ARGUMENT;
        };
        let Some(kit) = lookup(token) else { return UNKNOWN_TOKEN };
        // Read before the check: the answer is proven current no longer than the snapshot it is
        // computed from was (a re-proof during the check only errs early).
        let Ok(proven) = kit.proof_remaining_nanos() else { return CHECK_FAILED };
        match kit.check_text(subject, feature, scope) {
            Ok(decision) => encode(&decision, i64::try_from(proven).unwrap_or(i64::MAX), words, text),
            Err(_) => CHECK_FAILED,
        }
    }));
    let status = status.unwrap_or(PANICKED);
    if status != ANSWERED {
        words[0] = 0;
    }
    status
}

/// Writes `decision`, proven current for `proven` nanoseconds, into `words` and `text`, or answers
/// [`NO_ROOM`] having set no flag.
fn encode(decision: &CheckResult, proven: i64, words: &mut [i64], text: &mut [u8]) -> i32 {
    let n = decision.reasons.len();
    if words.len() < HEADER + 2 * n {
        return NO_ROOM;
    }
    let mut used = 0;
    for (i, reason) in decision.reasons.iter().enumerate() {
        let Some(code) = ReasonCode::ALL.iter().position(|c| *c == reason.code) else { return NO_ROOM };
        let category = reason.category.as_str().as_bytes();
        let Some(room) = text.get_mut(used..used + category.len()) else { return NO_ROOM };
        room.copy_from_slice(category);
        used += category.len();
        words[HEADER + i] = code as i64;
        words[HEADER + n + i] = category.len() as i64;
    }
    words[1] = decision.valid_until.map_or(0, |t| t.millis());
    words[2] = n as i64;
    words[3] = proven;
    // The flags last: until here words[0] is 0, no allow.
    words[0] = if decision.allowed { ALLOWED } else { 0 }
        | if decision.limited { LIMITED } else { 0 }
        | if decision.valid_until.is_some() { HAS_VALID_UNTIL } else { 0 };
    ANSWERED
}

/// `len` bytes at `ptr` as text: "" for length 0, None for a null pointer with a length or bad UTF-8.
unsafe fn utf8<'a>(ptr: *const u8, len: usize) -> Option<&'a str> {
    if len == 0 {
        return Some("");
    }
    if ptr.is_null() {
        return None;
    }
    // SAFETY: non-null and valid for `len` reads (the caller's contract).
    std::str::from_utf8(unsafe { std::slice::from_raw_parts(ptr, len) }).ok()
}

/// `cap` writable bytes at `ptr`: empty for capacity 0, None for a null pointer with a capacity.
unsafe fn bytes_mut<'a>(ptr: *mut u8, cap: usize) -> Option<&'a mut [u8]> {
    if cap == 0 {
        return Some(&mut []);
    }
    if ptr.is_null() {
        return None;
    }
    // SAFETY: non-null and valid for `cap` writes (the caller's contract).
    Some(unsafe { std::slice::from_raw_parts_mut(ptr, cap) })
}

#[cfg(test)]
mod tests {
    use consentkit_core::{OsPermission, OsState, Reason, Source, Timestamp};

    use super::*;

    /// A test's outcome: a failed call is an `Err` (the test fails), never a panic in a helper.
    type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

    fn kit() -> TestResult<(tempfile::TempDir, Arc<ConsentKit>)> {
        let dir = tempfile::tempdir()?;
        let kit = ConsentKit::open(dir.path().join("a.db").to_string_lossy().into_owned(), None)?;
        Ok((dir, kit))
    }

    /// The entry called as Swift calls it, with room for `words_len` words and `text_cap` bytes.
    /// Starts `words[0]` at ALLOWED, so a non-answer that forgot to clear it shows.
    fn call(
        token: u64,
        subject: &[u8],
        feature: &[u8],
        scope: Option<&[u8]>,
        words_len: usize,
        text_cap: usize,
    ) -> (i32, Vec<i64>, Vec<u8>) {
        let mut words = vec![0i64; words_len];
        if let Some(first) = words.first_mut() {
            *first = ALLOWED;
        }
        let mut text = vec![0u8; text_cap];
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
        (status, words, text)
    }

    /// Decodes an answer as Swift does.
    fn decode(feature: &str, words: &[i64], text: &[u8]) -> Result<CheckResult, std::str::Utf8Error> {
        let n = words[2] as usize;
        let mut at = 0;
        let reasons = (0..n)
            .map(|i| {
                let len = words[HEADER + n + i] as usize;
                let category = std::str::from_utf8(&text[at..at + len])?;
                at += len;
                Ok(Reason { code: ReasonCode::ALL[words[HEADER + i] as usize], category: category.into() })
            })
            .collect::<Result<_, _>>()?;
        Ok(CheckResult {
            feature: feature.into(),
            allowed: words[0] & ALLOWED != 0,
            limited: words[0] & LIMITED != 0,
            reasons,
            valid_until: (words[0] & HAS_VALID_UNTIL != 0).then_some(Timestamp(words[1])),
        })
    }

    /// Asserts that the gate answers what uniffi answers: the same decision, or CHECK_FAILED (and
    /// no allow) where uniffi throws.
    fn same(kit: &ConsentKit, token: u64, subject: &str, feature: &str, scope: Option<&str>, when: &str) -> TestResult {
        let (status, words, text) = call(token, subject.as_bytes(), feature.as_bytes(), scope.map(str::as_bytes), 64, 1024);
        match kit.check(subject.into(), feature.into(), scope.map(String::from)) {
            Ok(decision) => assert_eq!((status, decode(feature, &words, &text)?), (ANSWERED, decision), "{when}: {feature} {scope:?}"),
            Err(e) => assert_eq!((status, words[0]), (CHECK_FAILED, 0), "{when}: {feature} {scope:?}: uniffi threw {e:?}"),
        }
        Ok(())
    }

    fn answer(token: u64, subject: &str, feature: &str, scope: Option<&str>) -> TestResult<CheckResult> {
        let (status, words, text) = call(token, subject.as_bytes(), feature.as_bytes(), scope.map(str::as_bytes), 64, 1024);
        assert_eq!(status, ANSWERED, "{subject} {feature} {scope:?}");
        Ok(decode(feature, &words, &text)?)
    }

    #[test]
    fn answers_what_the_uniffi_check_answers_allowed_and_denied() -> TestResult {
        let (_dir, kit) = kit()?;
        let token = c_gate_token(kit.clone())?;
        let features = ["contact_lookup", "usage_analytics", "photo_sharing", "contact_sync", "calling"];
        let compare = |when: &str| -> TestResult {
            for f in features {
                for scope in [None, Some("contact-1")] {
                    same(&kit, token, "alice", f, scope, when)?;
                }
            }
            Ok(())
        };
        compare("nothing recorded (not asked, OS not determined)")?;
        kit.grant("alice".into(), "device_contacts".into(), None, Source::Settings)?;
        kit.grant("alice".into(), "usage_statistics".into(), None, Source::Settings)?;
        kit.refuse("alice".into(), "photos_media".into(), None, Source::Settings)?;
        kit.set_os_permission(OsPermission::CONTACTS, OsState::Granted)?;
        compare("granted and refused")?;
        let allowed = answer(token, "alice", "contact_lookup", None)?;
        assert!(allowed.allowed && allowed.reasons.is_empty() && allowed.valid_until.is_some(), "{allowed:?}");
        let refused = answer(token, "alice", "photo_sharing", None)?;
        assert!(!refused.allowed && refused.reasons.iter().any(|r| r.code == ReasonCode::ConsentRefused), "{refused:?}");
        kit.withdraw("alice".into(), "usage_statistics".into(), None, Source::Settings)?;
        assert!(!answer(token, "alice", "usage_analytics", None)?.allowed, "a returned withdrawal is seen at once");
        kit.object("alice".into(), "usage_statistics".into(), Source::Settings).ok();
        kit.set_os_permission(OsPermission::CONTACTS, OsState::Denied)?;
        kit.set_under_age("bob".into(), true, Source::Settings)?;
        compare("withdrawn, OS denied")?;
        same(&kit, token, "bob", "usage_analytics", None, "under age")?;
        Ok(())
    }

    #[test]
    fn a_failed_check_is_check_failed_and_no_allow() -> TestResult {
        let (_dir, kit) = kit()?;
        let token = c_gate_token(kit.clone())?;
        kit.grant("alice".into(), "usage_statistics".into(), None, Source::Settings)?;
        assert!(answer(token, "alice", "usage_analytics", None)?.allowed);
        let (status, words, _) = call(token, b"alice", b"teleport", None, 64, 64);
        assert_eq!((status, words[0]), (CHECK_FAILED, 0), "an unknown feature");
        assert!(
            matches!(kit.check("alice".into(), "teleport".into(), None), Err(ConsentKitError::UnknownFeature(_))),
            "uniffi throws the typed error"
        );
        kit.shutdown()?;
        let (status, words, _) = call(token, b"alice", b"usage_analytics", None, 64, 64);
        assert_eq!((status, words[0]), (CHECK_FAILED, 0), "a closed kit");
        assert!(matches!(kit.check("alice".into(), "usage_analytics".into(), None), Err(ConsentKitError::Closed(_))));
        Ok(())
    }

    #[test]
    fn unknown_tokens_and_dropped_kits_answer_unknown_token() -> TestResult {
        let (_dir, kit) = kit()?;
        kit.grant("alice".into(), "usage_statistics".into(), None, Source::Settings)?;
        let token = c_gate_token(kit.clone())?;
        assert_ne!(token, c_gate_token(kit.clone())?, "each registration has its own token");
        for bad in [u64::MAX, token + 1_000_000] {
            let (status, words, _) = call(bad, b"alice", b"usage_analytics", None, 64, 64);
            assert_eq!((status, words[0]), (UNKNOWN_TOKEN, 0));
        }
        kit.shutdown()?;
        drop(kit);
        let (status, words, _) = call(token, b"alice", b"usage_analytics", None, 64, 64);
        assert_eq!((status, words[0]), (UNKNOWN_TOKEN, 0), "the token keeps no store alive");
        Ok(())
    }

    #[test]
    fn bad_arguments_and_invalid_utf8_are_invalid_argument_and_no_allow() -> TestResult {
        let (_dir, kit) = kit()?;
        kit.grant("alice".into(), "usage_statistics".into(), None, Source::Settings)?;
        let token = c_gate_token(kit.clone())?;
        for (subject, feature, scope) in [
            (&b"al\xffice"[..], &b"usage_analytics"[..], None),
            (b"alice", b"usage_\xc3", None),
            (b"alice", b"usage_analytics", Some(&b"\xed\xa0\x80"[..])), // a lone surrogate, encoded
        ] {
            let (status, words, _) = call(token, subject, feature, scope, 64, 64);
            assert_eq!((status, words[0]), (INVALID_ARGUMENT, 0), "{subject:?} {feature:?} {scope:?}");
        }
        let mut words = [ALLOWED; 8];
        let null = std::ptr::null();
        let status = unsafe {
            consentkit_gate_check(
                token,
                null,
                5,
                b"usage_analytics".as_ptr(),
                15,
                false,
                null,
                0,
                words.as_mut_ptr(),
                8,
                std::ptr::null_mut(),
                0,
            )
        };
        assert_eq!((status, words[0]), (INVALID_ARGUMENT, 0), "a null subject with a length");
        let status = unsafe {
            consentkit_gate_check(
                token,
                b"alice".as_ptr(),
                5,
                b"usage_analytics".as_ptr(),
                15,
                false,
                null,
                0,
                words.as_mut_ptr(),
                8,
                std::ptr::null_mut(),
                4,
            )
        };
        assert_eq!((status, words[0]), (INVALID_ARGUMENT, 0), "a null text buffer with a capacity");
        let status = unsafe {
            consentkit_gate_check(
                token,
                b"alice".as_ptr(),
                5,
                b"usage_analytics".as_ptr(),
                15,
                false,
                null,
                0,
                std::ptr::null_mut(),
                8,
                std::ptr::null_mut(),
                0,
            )
        };
        assert_eq!(status, INVALID_ARGUMENT, "null words");
        let (status, words, _) = call(token, b"alice", b"usage_analytics", None, HEADER - 1, 0);
        assert_eq!((status, words[0]), (INVALID_ARGUMENT, 0), "words shorter than the header");
        // An empty subject (length 0) is text like any other: the gate answers what uniffi answers.
        let (status, words, text) = call(token, b"", b"usage_analytics", None, 64, 64);
        match kit.check("".into(), "usage_analytics".into(), None) {
            Ok(decision) => assert_eq!((status, decode("usage_analytics", &words, &text)?), (ANSWERED, decision)),
            Err(_) => assert_eq!((status, words[0]), (CHECK_FAILED, 0)),
        }
        Ok(())
    }

    #[test]
    fn an_answer_that_does_not_fit_is_no_room_and_no_allow() -> TestResult {
        let (_dir, kit) = kit()?;
        let token = c_gate_token(kit.clone())?;
        let denied = kit.check("alice".into(), "photo_sharing".into(), None)?;
        let n = denied.reasons.len();
        assert!(n >= 2, "photo sharing is denied for two reasons: {denied:?}");
        let text: usize = denied.reasons.iter().map(|r| r.category.as_str().len()).sum();
        let (status, words, _) = call(token, b"alice", b"photo_sharing", None, HEADER + 2 * n - 1, 1024);
        assert_eq!((status, words[0]), (NO_ROOM, 0), "words too short");
        let (status, words, _) = call(token, b"alice", b"photo_sharing", None, HEADER + 2 * n, text - 1);
        assert_eq!((status, words[0]), (NO_ROOM, 0), "text too short");
        let (status, words, bytes) = call(token, b"alice", b"photo_sharing", None, HEADER + 2 * n, text);
        assert_eq!(status, ANSWERED, "exactly enough room");
        assert_eq!(decode("photo_sharing", &words, &bytes)?, denied);
        Ok(())
    }

    #[test]
    fn a_panic_inside_the_entry_is_caught() -> TestResult {
        let (_dir, kit) = kit()?;
        kit.grant("alice".into(), "usage_statistics".into(), None, Source::Settings)?;
        let token = c_gate_token(kit.clone())?;
        crate::guard::tests::arm_panic();
        let (status, words, _) = call(token, b"alice", b"usage_analytics", None, 64, 64);
        assert_eq!((status, words[0]), (PANICKED, 0));
        assert!(answer(token, "alice", "usage_analytics", None)?.allowed, "the next call answers");
        Ok(())
    }

    #[test]
    fn the_answer_carries_the_proof_remaining_read_before_the_check() -> TestResult {
        let (_dir, kit) = kit()?;
        kit.grant("alice".into(), "usage_statistics".into(), None, Source::Settings)?;
        let token = c_gate_token(kit.clone())?;
        let bound = u64::try_from(consentkit_core::CROSS_PROCESS_BOUND.as_nanos())?;
        let (status, words, _) = call(token, b"alice", b"usage_analytics", None, 64, 64);
        assert_eq!((status, words[0] & ALLOWED), (ANSWERED, ALLOWED));
        assert!(words[3] > 0 && words[3] as u64 <= bound, "freshly opened: proven for up to the bound: {}", words[3]);
        // Suspended, nothing proves the snapshot again: the word counts down with the proof.
        kit.suspend()?;
        let before = kit.proof_remaining_nanos()?;
        let (status, words, _) = call(token, b"alice", b"usage_analytics", None, 64, 64);
        let after = kit.proof_remaining_nanos()?;
        assert_eq!(status, ANSWERED);
        let proven = words[3] as u64;
        assert!(after <= proven && proven <= before, "{after} <= {proven} <= {before}: read within the call, from the same proof");
        assert!(proven < bound, "not the whole bound: the proof is older than the call");
        // A denied answer carries it too.
        let (status, words, _) = call(token, b"alice", b"photo_sharing", None, 64, 1024);
        assert_eq!((status, words[0] & ALLOWED), (ANSWERED, 0));
        assert!(words[3] as u64 <= proven);
        kit.resume()?;
        kit.shutdown()?;
        let (status, words, _) = call(token, b"alice", b"usage_analytics", None, 64, 64);
        assert_eq!((status, words[0]), (CHECK_FAILED, 0), "closed: no proof, no answer");
        Ok(())
    }

    #[test]
    fn the_layout_and_the_reason_codes_are_what_the_header_says() -> TestResult {
        let header = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/swift/Sources/ConsentKitFFIC/ConsentKitGate.h"))?;
        for (name, value) in [
            ("CONSENTKIT_GATE_LAYOUT", LAYOUT as i64),
            ("CONSENTKIT_GATE_ANSWERED", ANSWERED as i64),
            ("CONSENTKIT_GATE_NO_ROOM", NO_ROOM as i64),
            ("CONSENTKIT_GATE_CHECK_FAILED", CHECK_FAILED as i64),
            ("CONSENTKIT_GATE_UNKNOWN_TOKEN", UNKNOWN_TOKEN as i64),
            ("CONSENTKIT_GATE_INVALID_ARGUMENT", INVALID_ARGUMENT as i64),
            ("CONSENTKIT_GATE_PANICKED", PANICKED as i64),
            ("CONSENTKIT_GATE_HEADER", HEADER as i64),
            ("CONSENTKIT_GATE_PROOF_WORD", 3),
            ("CONSENTKIT_GATE_ALLOWED", ALLOWED),
            ("CONSENTKIT_GATE_LIMITED", LIMITED),
            ("CONSENTKIT_GATE_HAS_VALID_UNTIL", HAS_VALID_UNTIL),
            ("CONSENTKIT_GATE_REASON_CODES", ReasonCode::ALL.len() as i64),
        ] {
            let line = header
                .lines()
                .find(|l| l.starts_with(&format!("#define {name} ")))
                .ok_or_else(|| format!("{name} is not defined in the header"))?;
            let value_text = line.split_whitespace().nth(2).ok_or_else(|| format!("{name} has no value in the header"))?;
            let defined: i64 = value_text.trim_matches(|c| c == '(' || c == ')').parse()?;
            assert_eq!(defined, value, "{name}");
        }
        assert_eq!(consentkit_gate_layout(), LAYOUT);
        assert_eq!(LAYOUT, 2, "layout 2: the proof word");
        assert_eq!(consentkit_gate_reason_codes(), 12);
        // Swift's table (CGate.swift) lists the codes in this order.
        let names: Vec<&str> = ReasonCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names[0], "consent_not_asked");
        assert_eq!(names[11], "store_unavailable");
        Ok(())
    }

    #[test]
    fn the_token_export_is_guarded() -> TestResult {
        let (_dir, kit) = kit()?;
        crate::guard::tests::arm_panic();
        assert!(matches!(c_gate_token(kit), Err(ConsentKitError::Internal(m)) if m.contains("injected panic")));
        Ok(())
    }
}
