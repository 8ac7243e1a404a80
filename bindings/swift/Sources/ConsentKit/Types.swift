import ConsentKitFFI

// The value types apps name, from the generated bindings. The wrapper does not re-export the
// generated module, so its internals (`FfiConverter*`, `RustBuffer`, the Rust object) stay out of
// app code and autocomplete; these aliases are the public names.

/// The answer of a gate check: allowed or not, and every reason it is not (naming its category).
public typealias CheckResult = ConsentKitFFI.CheckResult
/// One reason a check was denied: what failed, and for which category.
public typealias Reason = ConsentKitFFI.Reason
/// What failed in a denied check (`.consentWithdrawn`, `.osPermissionDenied`, ...).
public typealias ReasonCode = ConsentKitFFI.ReasonCode
/// One category's status for a subject, and since when.
public typealias CategoryStatus = ConsentKitFFI.CategoryStatus
/// Where a category stands for a subject: `.granted`, `.withdrawn`, `.renewalRequired`, ...
public typealias Status = ConsentKitFFI.Status
/// The legal basis of a category (GDPR Art. 6): consent, contract, legitimate interest, obligation.
public typealias LegalBasis = ConsentKitFFI.LegalBasis
/// What a recorded event did (grant, refuse, withdraw, ...).
public typealias Action = ConsentKitFFI.Action
/// Who or what a decision came from (`.onboarding`, `.settings`, `.support`, `.guardian`, ...).
public typealias Source = ConsentKitFFI.Source
/// One choice a user made, to record in a batch (`ConsentManager.record(_:)`): subject, category,
/// action, scope, source.
public typealias ConsentChoice = ConsentKitFFI.ConsentChoice
/// A recorded event as stored and exported: sequence number, times and hash-chain links.
public typealias Receipt = ConsentKitFFI.Receipt
/// A category's status changed for a subject (or, on subscribing, its current status).
public typealias StatusChange = ConsentKitFFI.StatusChange
/// What an erasure removed, with its receipt.
public typealias ErasureReport = ConsentKitFFI.ErasureReport
/// What a retention purge removed, with its receipt.
public typealias PurgeReport = ConsentKitFFI.PurgeReport
/// The result of walking the hash chain.
public typealias VerifyReport = ConsentKitFFI.VerifyReport
/// The state of an OS permission as the OS reports it: `.limited` (limited library, partial
/// photos, reduced accuracy) and `.provisional` (quiet notifications) allow, flagged `limited`.
public typealias OSPermissionState = ConsentKitFFI.OsState
/// Why a store opened fail-closed: the kind of problem, the core's message, and whether
/// `quarantineAndReopen()` is the way to recover.
public typealias Unavailable = ConsentKitFFI.Unavailable
/// The kind of problem of a fail-closed store (`.damaged`, `.schemaTooNew`, `.alreadyOpen`, ...).
public typealias UnavailableKind = ConsentKitFFI.UnavailableKind
/// Every failure a ConsentKit call throws; each case's message names the bad value.
public typealias ConsentKitError = ConsentKitFFI.ConsentKitError
/// A clock set by hand, for tests and the conformance scenarios. Not part
/// of the app-facing API: `@_spi(Testing) import ConsentKit` to use it.
@_spi(Testing) public typealias TestClock = ConsentKitFFI.TestClock

/// One batch of the outbox for the ConsentKit server (`ConsentManager.syncBatch(device:limit:)`).
public typealias SyncBatch = ConsentKitFFI.SyncBatch

/// What applying the server's reply did (`ConsentManager.applySyncReply(_:reply:)`).
public typealias SyncOutcome = ConsentKitFFI.SyncOutcome
