package com.consentkit

// Every type of the public API, reachable from `import com.consentkit.*` (defined in the
// generated com.consentkit.ffi bindings). Catch specific errors through
// `com.consentkit.ffi.ConsentKitException.<Kind>` (Kotlin resolves no nested class through an alias).

/** Where a decision came from (onboarding, settings, support, guardian, ...). */
typealias Source = com.consentkit.ffi.Source
/** A recorded action (grant, refuse, withdraw, object, ...). */
typealias Action = com.consentkit.ffi.Action
/** A category's status (granted, refused, withdrawn, expired, ...). */
typealias Status = com.consentkit.ffi.Status
/** A category's legal basis. */
typealias LegalBasis = com.consentkit.ffi.LegalBasis
/** The state of an OS permission (`PROVISIONAL` and `LIMITED` allow, flagged `limited`). */
typealias OsState = com.consentkit.ffi.OsState
/** Why the gate denied, per category. */
typealias Reason = com.consentkit.ffi.Reason
/** The code of a [Reason]. */
typealias ReasonCode = com.consentkit.ffi.ReasonCode
/** The gate's answer: allowed, limited, every reason, valid until when. */
typealias CheckResult = com.consentkit.ffi.CheckResult
/** One choice of a user, for [ConsentManager.record]. */
typealias ConsentChoice = com.consentkit.ffi.ConsentChoice

/**
 * A [ConsentChoice] with a typed [Category] of the built-in catalog, as every other call takes one
 * (Swift: `ConsentChoice(_:category:action:source:scope:)`): `ConsentChoice(userId,
 * Category.USAGE_STATISTICS, Action.GRANT, Source.ONBOARDING)`.
 */
fun ConsentChoice(subject: String, category: Category, action: Action, source: Source, scope: String? = null): ConsentChoice =
    com.consentkit.ffi.ConsentChoice(subject, category.id, action, scope, source)
/** A category's status and since when. */
typealias CategoryStatus = com.consentkit.ffi.CategoryStatus
/** One event of the ledger, as stored and exported. */
typealias Receipt = com.consentkit.ffi.Receipt
/** A status change told to observers. */
typealias StatusChange = com.consentkit.ffi.StatusChange
/** What an erasure did. */
typealias ErasureReport = com.consentkit.ffi.ErasureReport
/** What a purge did. */
typealias PurgeReport = com.consentkit.ffi.PurgeReport
/** The result of walking the hash chain. */
typealias VerifyReport = com.consentkit.ffi.VerifyReport
/** Why the store failed closed, typed. */
typealias Unavailable = com.consentkit.ffi.Unavailable
/** The kind of an [Unavailable]. */
typealias UnavailableKind = com.consentkit.ffi.UnavailableKind
/** Every ConsentKit failure (subclasses name the kind). */
typealias ConsentKitException = com.consentkit.ffi.ConsentKitException

/** One batch of the outbox for the ConsentKit server ([ConsentManager.syncBatch]). */
typealias SyncBatch = com.consentkit.ffi.SyncBatch

/** What applying the server's reply did ([ConsentManager.applySyncReply]). */
typealias SyncOutcome = com.consentkit.ffi.SyncOutcome
