//! The JNI gate: one hand-written JNI entry for the call a Kotlin cache miss makes, the check.
//! Through uniffi on JNA a check costs several crossings (the handle, a buffer per string, the
//! answer's buffer), each allocating JNA `Structure`s; here it is one JNI call taking the three
//! strings and writing the answer into a `long[]` (`make bench-kotlin` has both rows).
//!
//! Kotlin (`com.consentkit.JniGate`) registers its `ConsentKit` once with [`jni_gate_token`] (a
//! uniffi export) and passes the token to each check. The entry only answers what the uniffi
//! `check` answers: it calls [`ConsentKit::check`] (guarded) and encodes the result, with the
//! [`ConsentKit::proof_remaining_nanos`] read just before the check (how long Kotlin's cache may
//! keep the answer: the bound counted from the snapshot's proof, not from the check). Anything
//! else (an unknown token, a closed store, an unknown feature, a bad string, a panic) returns
//! [`FALL_BACK`], and Kotlin asks the same question through uniffi, which throws the typed error.
//! So a failure here never allows anything and never crosses the boundary as a panic.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use jni_sys::{jint, jlong, jlongArray, jobject, jsize, jstring, JNIEnv};

use crate::consent_kit::ConsentKit;
use crate::error::ConsentKitError;
use crate::gate_tokens::{lookup, register};
use crate::guard::ffi_export;
use crate::types::CheckResult;

/// The entry answered: `out` holds the answer (non-zero: an array the entry never wrote is no answer).
const ANSWERED: jlong = 1;
/// The entry could not answer: ask through uniffi (which answers or throws the typed error).
const FALL_BACK: jlong = 2;
/// `out[0]` status, `[1]` flags, `[2]` valid_until millis, `[3]` reason count, `[4]` the nanoseconds
/// the answer stays proven current (read before the check), then one code per reason.
const HEADER: usize = 5;
const ALLOWED: jlong = 1;
const LIMITED: jlong = 2;
const HAS_VALID_UNTIL: jlong = 4;

ffi_export! {
    /// Registers `kit` for the JNI gate entry and returns its token (Kotlin's `JniGate` only).
    /// The token holds no reference: once the kit is gone, checks with it fall back to uniffi.
    pub fn jni_gate_token(kit: Arc<ConsentKit>) -> Result<u64, ConsentKitError> {
        Ok(register(&kit))
    }
}

/// The version of the entry's `long[]` layout, so Kotlin can refuse a library it does not match.
#[no_mangle]
pub extern "system" fn Java_com_consentkit_JniGate_layout(_env: *mut JNIEnv, _class: jobject) -> jint {
    LAYOUT
}

/// The `long[]` layout version [`Java_com_consentkit_JniGate_layout`] reports (3: the proof slot `out[4]`).
const LAYOUT: jint = 3;

/// A check's answer with how long it stays proven current, in nanoseconds, read *before* the
/// check (so it never overstates the answer's proof). None for anything uniffi must report.
fn proven_check(kit: &ConsentKit, subject: String, feature: String, scope: Option<String>) -> Option<(u64, CheckResult)> {
    let proof_nanos = kit.proof_remaining_nanos().ok()?;
    Some((proof_nanos, kit.check(subject, feature, scope).ok()?))
}

/// The gate check for Kotlin: `JniGate.nativeCheck(token, subject, feature, scope, out)`. Returns the
/// reasons' categories joined by `\n` (null when there are none); `out[0]` says whether the entry
/// answered ([`ANSWERED`]) or Kotlin must ask through uniffi ([`FALL_BACK`]).
///
/// # Safety
/// Called by the JVM only, with a valid `env`, string references (`scope` may be null) and a
/// `long[]` of at least `HEADER` elements.
#[no_mangle]
pub unsafe extern "system" fn Java_com_consentkit_JniGate_nativeCheck(
    env: *mut JNIEnv,
    _class: jobject,
    token: jlong,
    subject: jstring,
    feature: jstring,
    scope: jstring,
    out: jlongArray,
) -> jstring {
    let answer = catch_unwind(AssertUnwindSafe(|| {
        let kit = lookup(token)?;
        let subject = string(env, subject)?;
        let feature = string(env, feature)?;
        let scope = if scope.is_null() { None } else { Some(string(env, scope)?) };
        proven_check(&kit, subject, feature, scope)
    }));
    match answer {
        Ok(Some((proof_nanos, decision))) => write(env, out, proof_nanos, &decision),
        _ => {
            set(env, out, &[FALL_BACK]);
            std::ptr::null_mut()
        }
    }
}

/// The most reasons one answer's `long[]` carries (more: fall back to uniffi).
const MAX_WORDS: usize = 32;

/// The `long[]` words of an answer that stays proven current for `proof_nanos` (saturated to
/// `jlong`), or None when its reasons do not fit.
fn encode(proof_nanos: u64, decision: &CheckResult) -> Option<([jlong; MAX_WORDS], usize)> {
    if HEADER + decision.reasons.len() > MAX_WORDS {
        return None;
    }
    let flags = if decision.allowed { ALLOWED } else { 0 }
        | if decision.limited { LIMITED } else { 0 }
        | if decision.valid_until.is_some() { HAS_VALID_UNTIL } else { 0 };
    let mut words = [0 as jlong; MAX_WORDS];
    words[..HEADER].copy_from_slice(&[
        ANSWERED,
        flags,
        decision.valid_until.map_or(0, |t| t.millis()),
        decision.reasons.len() as jlong,
        jlong::try_from(proof_nanos).unwrap_or(jlong::MAX),
    ]);
    for (word, reason) in words[HEADER..].iter_mut().zip(&decision.reasons) {
        *word = reason.code as jlong;
    }
    Some((words, HEADER + decision.reasons.len()))
}

/// Encodes the answer into `out` and returns its reasons' categories, or falls back if `out` is too short.
unsafe fn write(env: *mut JNIEnv, out: jlongArray, proof_nanos: u64, decision: &CheckResult) -> jstring {
    let fns = &(**env).v1_2;
    let room = (fns.GetArrayLength)(env, out) as usize;
    let Some((words, n)) = encode(proof_nanos, decision).filter(|&(_, n)| n <= room) else {
        set(env, out, &[FALL_BACK]);
        return std::ptr::null_mut();
    };
    if decision.reasons.is_empty() {
        set(env, out, &words[..n]);
        return std::ptr::null_mut();
    }
    let categories: Vec<&str> = decision.reasons.iter().map(|r| r.category.as_str()).collect();
    // As UTF-16, the JVM's own encoding: a catalog's ids may be any text but white space and
    // control characters, and `NewStringUTF` reads modified UTF-8, which differs from UTF-8 for
    // every character outside the BMP (an emoji) and aborts on Android's CheckJNI.
    let text: Vec<u16> = categories.join("\n").encode_utf16().collect();
    let joined = (fns.NewString)(env, text.as_ptr(), text.len() as jsize);
    if !joined.is_null() {
        set(env, out, &words[..n]);
    } // else out of memory: an OutOfMemoryError is pending, no JNI call may follow; Kotlin sees it thrown
    joined
}

unsafe fn set(env: *mut JNIEnv, out: jlongArray, words: &[jlong]) {
    let fns = &(**env).v1_2;
    (fns.SetLongArrayRegion)(env, out, 0, words.len() as jsize, words.as_ptr());
}

/// A Java string as Rust text; None for a lone surrogate (uniffi then reports it).
unsafe fn string(env: *mut JNIEnv, text: jstring) -> Option<String> {
    if text.is_null() {
        return None;
    }
    let fns = &(**env).v1_2;
    let len = (fns.GetStringLength)(env, text);
    let mut units = vec![0u16; len.max(0) as usize];
    (fns.GetStringRegion)(env, text, 0, len, units.as_mut_ptr());
    String::from_utf16(&units).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_find_their_kit_and_a_dropped_kit_is_found_no_more() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let kit = ConsentKit::open(dir.path().join("a.db").to_string_lossy().into_owned(), None)?;
        let token = jni_gate_token(kit.clone())?;
        let again = jni_gate_token(kit.clone())?;
        assert_ne!(token, again, "each registration has its own token");
        assert!(Arc::ptr_eq(&lookup(token as jlong).ok_or("a live token found no kit")?, &kit));
        assert!(lookup(-1).is_none() && lookup(i64::MAX).is_none(), "unknown tokens find nothing");
        kit.shutdown()?;
        drop(kit);
        assert!(lookup(token as jlong).is_none(), "the token keeps no store alive");
        Ok(())
    }

    #[test]
    fn an_answer_carries_the_proof_read_before_its_check_in_slot_four() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let kit = ConsentKit::open(dir.path().join("a.db").to_string_lossy().into_owned(), None)?;
        kit.grant("alice".into(), "usage_statistics".into(), None, consentkit_core::Source::Settings)?;
        let bound_nanos = kit.cross_process_bound_millis()? * 1_000_000;
        let (proof_nanos, allowed) =
            proven_check(&kit, "alice".into(), "usage_analytics".into(), None).ok_or("the proven check of alice failed")?;
        assert!(allowed.allowed);
        assert!(proof_nanos > 0 && proof_nanos <= bound_nanos, "a proven snapshot, within the bound: {proof_nanos}");
        let (words, n) = encode(proof_nanos, &allowed).ok_or("the allowed answer did not encode")?;
        let valid_until = allowed.valid_until.ok_or("the allowed answer has no valid_until")?.millis();
        assert_eq!(words[..HEADER], [ANSWERED, ALLOWED | HAS_VALID_UNTIL, valid_until, 0, proof_nanos as jlong]);
        assert_eq!(n, HEADER);

        let (_, denied) = proven_check(&kit, "bob".into(), "usage_analytics".into(), None).ok_or("the proven check of bob failed")?;
        assert!(!denied.allowed && !denied.reasons.is_empty());
        let (words, n) = encode(u64::MAX, &denied).ok_or("the denied answer did not encode")?;
        assert_eq!(words[3], denied.reasons.len() as jlong);
        assert_eq!(words[4], jlong::MAX, "a proof longer than a jlong saturates, never wraps negative");
        let codes: Vec<jlong> = denied.reasons.iter().map(|r| r.code as jlong).collect();
        assert_eq!(words[HEADER..n], codes[..], "the reasons' codes follow the proof slot");
        kit.shutdown()?;
        Ok(())
    }

    /// Suspended, nothing proves the snapshot again: once its proof is older than the bound, the
    /// slot says 0 (Kotlin caches nothing) and the check itself denies.
    #[test]
    fn past_the_proof_the_slot_is_zero_and_the_answer_denies() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let kit = ConsentKit::open(dir.path().join("a.db").to_string_lossy().into_owned(), None)?;
        kit.grant("alice".into(), "usage_statistics".into(), None, consentkit_core::Source::Settings)?;
        kit.suspend()?;
        let bound = std::time::Duration::from_millis(kit.cross_process_bound_millis()?);
        // Waits out the proof (no timing is asserted: what holds after it is).
        while kit.proof_remaining_nanos()? > 0 {
            std::thread::sleep(bound / 10);
        }
        let (proof_nanos, decision) =
            proven_check(&kit, "alice".into(), "usage_analytics".into(), None).ok_or("the proven check of alice failed")?;
        assert_eq!(proof_nanos, 0);
        assert!(!decision.allowed, "past the bound, suspended: denied");
        assert_eq!(encode(proof_nanos, &decision).ok_or("the denied answer did not encode")?.0[4], 0);
        kit.shutdown()?;
        Ok(())
    }

    #[test]
    fn an_answer_with_more_reasons_than_words_is_not_encoded() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let kit = ConsentKit::open(dir.path().join("a.db").to_string_lossy().into_owned(), None)?;
        let (_, mut denied) = proven_check(&kit, "bob".into(), "usage_analytics".into(), None).ok_or("the proven check of bob failed")?;
        let reason = denied.reasons[0].clone();
        denied.reasons = vec![reason; MAX_WORDS - HEADER];
        assert!(encode(1, &denied).is_some(), "exactly full");
        denied.reasons.push(denied.reasons[0].clone());
        assert!(encode(1, &denied).is_none());
        kit.shutdown()?;
        Ok(())
    }

    #[test]
    fn the_token_export_is_guarded() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let kit = ConsentKit::open(dir.path().join("a.db").to_string_lossy().into_owned(), None)?;
        crate::guard::tests::arm_panic();
        assert!(matches!(jni_gate_token(kit), Err(ConsentKitError::Internal(m)) if m.contains("injected panic")));
        Ok(())
    }
}
