// Hand-written (committed), beside uniffi's generated ConsentKitFFIC.h: the C gate of
// bindings/src/c_gate.rs, the one C call a Swift cache miss makes to check a feature. The numbers
// below are checked against the Rust constants by `cargo test -p consentkit-ffi` (c_gate tests).
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// The version of the answer layout; the Swift wrapper uses the gate only when the library says the same.
#define CONSENTKIT_GATE_LAYOUT 2

// Statuses. Anything but ANSWERED leaves words[0] at 0: no allow.
#define CONSENTKIT_GATE_ANSWERED 0          // words and text hold the decision
#define CONSENTKIT_GATE_NO_ROOM 1           // the answer does not fit: ask through uniffi
#define CONSENTKIT_GATE_CHECK_FAILED 2      // closed, unknown feature, invalid input, ...: uniffi throws the typed error
#define CONSENTKIT_GATE_UNKNOWN_TOKEN (-1)  // no live store has this token
#define CONSENTKIT_GATE_INVALID_ARGUMENT (-2) // a null pointer with a length, words shorter than the header, invalid UTF-8
#define CONSENTKIT_GATE_PANICKED (-3)       // a panic was caught inside the entry

// The answer: words[0] flags, words[1] valid_until (epoch ms, when HAS_VALID_UNTIL), words[2] the
// reason count n, words[3] (PROOF_WORD) the nanoseconds the answer stays proven current (the core's
// proof_remaining, read before the check: a cache keeps the answer no longer), then n reason codes (the declaration order of ReasonCode, 0-based, below
// CONSENTKIT_GATE_REASON_CODES), then n byte lengths of the reasons' category ids, whose UTF-8
// text follows one after another in text. Room: HEADER + 2n words.
#define CONSENTKIT_GATE_HEADER 4
#define CONSENTKIT_GATE_PROOF_WORD 3
#define CONSENTKIT_GATE_ALLOWED 1
#define CONSENTKIT_GATE_LIMITED 2
#define CONSENTKIT_GATE_HAS_VALID_UNTIL 4
#define CONSENTKIT_GATE_REASON_CODES 12

#ifdef __cplusplus
extern "C" {
#endif

/// The answer layout version of the library (CONSENTKIT_GATE_LAYOUT when it matches this header).
int32_t consentkit_gate_layout(void);

/// The number of reason codes the library knows (CONSENTKIT_GATE_REASON_CODES when it matches).
int32_t consentkit_gate_reason_codes(void);

/// May `feature` run for `subject` now (`scope`: the item of a per-item feature when `has_scope`)?
/// `token`: from the uniffi export `cGateToken(kit:)`. Strings are UTF-8 given as pointer and
/// length (a length of 0 may come with any pointer); nothing is kept after the call. Returns a
/// status above; the decision is the one the uniffi `check` of the same store returns.
int32_t consentkit_gate_check(uint64_t token,
                              const uint8_t *_Nullable subject, size_t subject_len,
                              const uint8_t *_Nullable feature, size_t feature_len,
                              bool has_scope, const uint8_t *_Nullable scope, size_t scope_len,
                              int64_t *_Nullable words, size_t words_len,
                              uint8_t *_Nullable text, size_t text_cap);

#ifdef __cplusplus
}
#endif
