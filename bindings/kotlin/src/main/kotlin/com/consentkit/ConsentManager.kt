package com.consentkit

import com.consentkit.ffi.CategoryStatus
import com.consentkit.ffi.CommitListener
import com.consentkit.ffi.ConsentKit
import com.consentkit.ffi.ConsentKitException
import com.consentkit.ffi.ConsentListener
import com.consentkit.ffi.CheckResult
import com.consentkit.ffi.ConsentChoice
import com.consentkit.ffi.ErasureReport
import com.consentkit.ffi.ListenerHandle
import com.consentkit.ffi.OsState
import com.consentkit.ffi.PurgeReport
import com.consentkit.ffi.Receipt
import com.consentkit.ffi.Source
import com.consentkit.ffi.StatusChange
import com.consentkit.ffi.Unavailable
import com.consentkit.ffi.UnavailableKind
import com.consentkit.ffi.VerifyReport
import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.flow.SharingStarted
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.scan
import kotlinx.coroutines.flow.stateIn
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.NonCancellable
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.withContext
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.channels.SendChannel
import kotlinx.coroutines.channels.awaitClose
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.buffer
import kotlinx.coroutines.flow.callbackFlow
import java.time.Instant
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.atomic.AtomicBoolean
import java.util.concurrent.atomic.AtomicLong

/**
 * ConsentKit for Kotlin: records consent decisions durably and answers, fast and fail-closed,
 * whether a feature may run for a user now.
 *
 * Thread-safe. Every failure is a [ConsentKitException] subclass naming the bad value
 * (e.g. [ConsentKitException.UnknownFeature], [ConsentKitException.GrantBySupport]).
 *
 * [check] does not cross JNA on the hot path: decisions are cached on the Kotlin side and
 * invalidated synchronously by a commit listener before any write returns, and an allowed
 * decision is never served past its `validUntil` (a grant's expiry; on the system clock the time
 * left is measured when the answer is made and then counted on the monotonic clock, so a wall
 * clock set forward past it is honoured within the cross-process bound). So once [withdraw] has
 * returned, no thread sees the feature allowed. A withdrawal made by another process on the same
 * file (an `android:process` service, the support tool) is honoured within the core's
 * cross-process bound (250 ms): the core's probe invalidates this cache, and no entry is served
 * past the bound counted from the proof of the snapshot that answered it (a check answered from a
 * snapshot proven 200 ms ago is cached 50 ms at most).
 *
 * Threads: [check], [isAllowed], [status], [statuses], [shouldAsk], [osPermission],
 * [unavailable], [policyJson] and [changes] read memory only and are safe on the main thread.
 * Every other call touches the disk (writes fsync before returning): call it off the main
 * thread, or use its `suspend` twin on [Dispatchers.IO] through [suspending] (and [openSuspending]).
 *
 * Open **one manager per database file per process** and keep it for the app's lifetime (in your
 * `Application`): a second open of the same file while the first is open fails closed.
 *
 * Every method may throw a [ConsentKitException]; after [close], every call throws
 * [ConsentKitException.Closed].
 */
class ConsentManager internal constructor(
    internal val kit: ConsentKit,
    private val now: () -> Instant,
    /** False: every cache miss asks through uniffi, as where the JNI gate is not loaded (tests of that path). */
    jniGate: Boolean = true,
    /** How to open this store again (same path, policy, clock) after a quarantine. */
    private val reopen: () -> ConsentManager,
) : AutoCloseable {
    private val generation = AtomicLong(kit.generation().toLong())
    // Another process's commit reaches this cache through the commit listener (the core's probe
    // publishes it like a write); an entry is re-asked anyway once the proof of the snapshot that
    // answered it is older than the core's cross-process bound (never later than the bound from
    // its making), so a cache never serves an allow the core could no longer vouch for.
    private val freshNanos: Long = kit.crossProcessBoundMillis().toLong() * 1_000_000L
    private val decisions = GateCache(MAX_CACHED_DECISIONS)
    // This store's token for the JNI gate (-1: not loaded, checks go through uniffi).
    private val gateToken: Long = if (jniGate) JniGate.tokenFor(kit) else -1L
    // On the system clock a cached entry's expiry is a deadline on the monotonic clock, so a hit
    // reads one clock; a hand-set clock (tests) is asked on every hit as well.
    private val handSetClock: Boolean = now !== systemNow
    private val closed = AtomicBoolean(false)
    private val flows: MutableSet<SendChannel<StatusChange>> = ConcurrentHashMap.newKeySet()
    /** How many [changes] collections are registered (tests: a failed one keeps none). */
    internal val liveFlows: Int get() = flows.size
    // The listener captures only the counter, never this manager or the Rust object: no cycle.
    private val commits: ListenerHandle = generation.let { counter ->
        kit.onCommit(object : CommitListener {
            override fun onCommit(generation: ULong) {
                counter.accumulateAndGet(generation.toLong(), ::maxOf)
            }
        })
    }

    companion object {
        /** The ConsentKit version of the native library (the same in Cargo, Maven and SwiftPM). */
        @JvmStatic
        @get:Throws(ConsentKitException::class)
        val version: String get() = com.consentkit.ffi.consentkitVersion()

        /** Most decisions kept in the gate cache; past it the cache starts afresh. */
        const val MAX_CACHED_DECISIONS = 4096

        /**
         * Opens the store at [path] (created if missing) with the built-in UCAnywhere policy or
         * [policyJson]. Never fails for a damaged store: the gate then denies every consent-gated
         * feature with `STORE_UNAVAILABLE` and [unavailable] says why.
         * @throws ConsentKitException.InvalidPolicy if [policyJson] is malformed.
         */
        @JvmStatic
        @JvmOverloads
        @Throws(ConsentKitException::class)
        fun open(path: String, policyJson: String? = null): ConsentManager =
            ConsentManager(ConsentKit.openFailClosed(text("path", path), textOrNull("policy JSON", policyJson)), systemNow) { open(path, policyJson) }

        /**
         * [open] on [Dispatchers.IO] (opening reads the file): for a coroutine on the main thread.
         * @throws ConsentKitException.InvalidPolicy if [policyJson] is malformed.
         */
        @Throws(ConsentKitException::class)
        suspend fun openSuspending(path: String, policyJson: String? = null, dispatcher: CoroutineDispatcher = Dispatchers.IO): ConsentManager {
            // A caller cancelled while the open ran never receives the manager: it is closed here,
            // or it would hold the file until collected and every later open would be ALREADY_OPEN.
            val opened = java.util.concurrent.atomic.AtomicReference<ConsentManager?>()
            try {
                return withContext(dispatcher + NonCancellable) { open(path, policyJson).also(opened::set) }
            } catch (e: CancellationException) {
                opened.get()?.close()
                throw e
            }
        }

        /** Like [open], but throws [ConsentKitException.StoreUnavailable] or `SchemaTooNew` instead of failing closed. */
        @JvmStatic
        @JvmOverloads
        @Throws(ConsentKitException::class)
        fun openStrict(path: String, policyJson: String? = null): ConsentManager =
            ConsentManager(ConsentKit.open(text("path", path), textOrNull("policy JSON", policyJson)), systemNow) { open(path, policyJson) }

    }

    /**
     * The disk-touching calls as `suspend` functions on [Dispatchers.IO] (or [dispatcher]):
     * `consent.suspending().withdraw(user, Category.USAGE_STATISTICS)` from a coroutine on the main thread.
     */
    @JvmOverloads
    @Throws(ConsentKitException::class)
    fun suspending(dispatcher: CoroutineDispatcher = Dispatchers.IO): SuspendingConsent = SuspendingConsent(this, dispatcher)

    /** Why the store is closed (fail-closed mode), or null when healthy. */
    @get:Throws(ConsentKitException::class)
    val unavailable: String? get() = kit.unavailable()

    /**
     * Why the store failed closed, typed ([UnavailableKind]: damaged, newer schema, other policy,
     * already open, busy, unreadable), or null when healthy. Memory only.
     */
    @get:Throws(ConsentKitException::class)
    val unavailableReason: Unavailable? get() = kit.unavailableReason()

    /**
     * Recovers from a damaged store: moves the file aside (kept for support, named in
     * [Recovered.quarantinedAt]), closes this manager, and opens a fresh store at the same path.
     * The user's consents are lost with the damaged file: ask again.
     * @throws ConsentKitException.InvalidInput if the store is healthy or not damaged
     *   ([Unavailable.canQuarantine] false: e.g. already open elsewhere, or a newer app's data).
     */
    @Throws(ConsentKitException::class)
    fun quarantineAndReopen(): Recovered {
        val moved = kit.quarantine()
        close()
        return Recovered(reopen(), moved)
    }

    /** The policy in force, as JSON. */
    @get:Throws(ConsentKitException::class)
    val policyJson: String get() = kit.policyJson()

    // ----- the gate -----

    /**
     * May [feature] run for [subject] now? [scope] names the item of a per-item feature.
     * A repeated check is answered from memory without crossing JNA and without allocating, as
     * long as nothing was committed since (here or, within the cross-process bound, elsewhere) and
     * the answer's `validUntil` has not come.
     */
    @Throws(ConsentKitException::class)
    @JvmOverloads
    fun check(subject: String, feature: String, scope: String? = null): CheckResult {
        if (closed.get()) throw closedError()
        val current = generation.get() // read before asking Rust: a commit in between makes the entry stale
        val nanos = System.nanoTime() // read before the proof's remaining time: the deadline errs early
        val hit = decisions.get(subject, feature, scope)
        if (hit != null && hit.generation == current && nanos - hit.deadlineNanos < 0) {
            val until = hit.decision.validUntil
            if (!handSetClock || until == null || now() < until) return hit.decision
        }
        val answer = checkProven(subject, feature, scope)
        decisions.put(subject, feature, scope, GateCache.Entry(current, answer.decision, deadline(nanos, answer)))
        return answer.decision
    }

    /**
     * The core's answer, always across the FFI, never from or into the cache (a cache miss):
     * through the JNI gate where it is loaded, else (and for every error) through uniffi.
     */
    internal fun checkUncached(subject: String, feature: String, scope: String?): CheckResult = checkProven(subject, feature, scope).decision

    /**
     * [checkUncached] with how long its answer stays proven current, read before the check: in
     * the JNI gate's one call, or through uniffi (`proofRemainingNanos`, then `check`).
     */
    internal fun checkProven(subject: String, feature: String, scope: String?): ProvenAnswer {
        text("subject", subject)
        text("feature", feature)
        textOrNull("scope", scope)
        JniGate.check(gateToken, subject, feature, scope)?.let { return it }
        val proofNanos = kit.proofRemainingNanos().toLong().let { if (it < 0) Long.MAX_VALUE else it } // a ULong past Long.MAX_VALUE
        return ProvenAnswer(kit.check(subject, feature, scope), proofNanos)
    }

    /**
     * Until when (monotonic nanoseconds) an answer asked at [madeAtNanos] may be served: while
     * its proof lasts (never longer than the cross-process bound), and never past the answer's
     * `validUntil` (its remaining time measured on the wall clock now, after the answer was made,
     * so the deadline errs early).
     */
    private fun deadline(madeAtNanos: Long, answer: ProvenAnswer): Long {
        val provenNanos = minOf(answer.proofNanos, freshNanos)
        val until = answer.decision.validUntil ?: return madeAtNanos + provenNanos
        val leftMillis = until.toEpochMilli() - now().toEpochMilli()
        return madeAtNanos + if (leftMillis >= provenNanos / 1_000_000L) provenNanos else maxOf(leftMillis, 0L) * 1_000_000L
    }

    /** Shorthand for `check(...).allowed`. */
    @Throws(ConsentKitException::class)
    @JvmOverloads
    fun isAllowed(subject: String, feature: String, scope: String? = null): Boolean = check(subject, feature, scope).allowed

    /** One category's status and since when. */
    @Throws(ConsentKitException::class)
    fun status(subject: String, category: String): CategoryStatus = kit.status(text("subject", subject), text("category", category))

    /** Every category's status, in policy order. */
    @Throws(ConsentKitException::class)
    fun statuses(subject: String): List<CategoryStatus> = kit.statuses(text("subject", subject))

    /** Should the app show the consent prompt for [category] now? */
    @Throws(ConsentKitException::class)
    fun shouldAsk(subject: String, category: String): Boolean = kit.shouldAsk(text("subject", subject), text("category", category))

    // ----- decisions -----

    /** Records the subject's grant (never from [Source.SUPPORT]). */
    @Throws(ConsentKitException::class)
    @JvmOverloads
    fun grant(subject: String, category: String, source: Source = Source.SETTINGS, scope: String? = null): Receipt =
        kit.grant(text("subject", subject), text("category", category), textOrNull("scope", scope), source)

    /** Records a refusal. */
    @Throws(ConsentKitException::class)
    @JvmOverloads
    fun refuse(subject: String, category: String, source: Source = Source.SETTINGS, scope: String? = null): Receipt =
        kit.refuse(text("subject", subject), text("category", category), textOrNull("scope", scope), source)

    /** Records a withdrawal; once it returns, no check allows the feature. */
    @Throws(ConsentKitException::class)
    @JvmOverloads
    fun withdraw(subject: String, category: String, source: Source = Source.SETTINGS, scope: String? = null): Receipt =
        kit.withdraw(text("subject", subject), text("category", category), textOrNull("scope", scope), source)

    /** Records an objection to a legitimate-interest category. */
    @Throws(ConsentKitException::class)
    @JvmOverloads
    fun objectTo(subject: String, category: String, source: Source = Source.SETTINGS): Receipt = kit.`object`(text("subject", subject), text("category", category), source)

    /** Records the withdrawal of an objection. */
    @Throws(ConsentKitException::class)
    @JvmOverloads
    fun withdrawObjection(subject: String, category: String, source: Source = Source.SETTINGS): Receipt =
        kit.withdrawObjection(text("subject", subject), text("category", category), source)

    /** Records a dialog's decisions in one transaction: all or none. */
    @Throws(ConsentKitException::class)
    fun record(decisions: List<ConsentChoice>): List<Receipt> = kit.recordBatch(decisions.onEach { text("subject", it.subject); text("category", it.category); textOrNull("scope", it.scope) })

    /** Reports the OS permission state (from the permission callback or on resume); null if unchanged. */
    @Throws(ConsentKitException::class)
    @JvmName("reportOsPermission") // Java: not the mangled name a value-class parameter gets
    fun reportOsPermission(permission: OsPermission, state: OsState): Receipt? = kit.setOsPermission(text("OS permission", permission.id), state)

    /** The device's current OS permission state as last reported. */
    @Throws(ConsentKitException::class)
    @JvmName("osPermission")
    fun osPermission(permission: OsPermission): OsState = kit.osPermission(text("OS permission", permission.id))

    /** Marks (or unmarks) [subject] as under the age of digital consent. */
    @Throws(ConsentKitException::class)
    @JvmOverloads
    fun markUnderAge(subject: String, underAge: Boolean = true, source: Source = Source.SETTINGS): Receipt =
        kit.setUnderAge(text("subject", subject), underAge, source)

    // ----- the same, with the typed ids of the built-in catalog (Category.X, Feature.Y) -----

    /** [check] with a typed [Feature]. */
    @Throws(ConsentKitException::class)
    fun check(subject: String, feature: Feature, scope: String? = null): CheckResult = check(subject, feature.id, scope)

    /** [isAllowed] with a typed [Feature]; in memory when cached, safe on the main thread. */
    @Throws(ConsentKitException::class)
    fun isAllowed(subject: String, feature: Feature, scope: String? = null): Boolean = check(subject, feature.id, scope).allowed

    /** [status] with a typed [Category]. */
    @Throws(ConsentKitException::class)
    fun status(subject: String, category: Category): CategoryStatus = status(subject, category.id)

    /** [shouldAsk] with a typed [Category]. */
    @Throws(ConsentKitException::class)
    fun shouldAsk(subject: String, category: Category): Boolean = shouldAsk(subject, category.id)

    /** [grant] with a typed [Category]. */
    @Throws(ConsentKitException::class)
    fun grant(subject: String, category: Category, source: Source = Source.SETTINGS, scope: String? = null): Receipt =
        grant(subject, category.id, source, scope)

    /** [refuse] with a typed [Category]. */
    @Throws(ConsentKitException::class)
    fun refuse(subject: String, category: Category, source: Source = Source.SETTINGS, scope: String? = null): Receipt =
        refuse(subject, category.id, source, scope)

    /** [withdraw] with a typed [Category]. */
    @Throws(ConsentKitException::class)
    fun withdraw(subject: String, category: Category, source: Source = Source.SETTINGS, scope: String? = null): Receipt =
        withdraw(subject, category.id, source, scope)

    /** [objectTo] with a typed [Category]. */
    @Throws(ConsentKitException::class)
    fun objectTo(subject: String, category: Category, source: Source = Source.SETTINGS): Receipt = objectTo(subject, category.id, source)

    /** [withdrawObjection] with a typed [Category]. */
    @Throws(ConsentKitException::class)
    fun withdrawObjection(subject: String, category: Category, source: Source = Source.SETTINGS): Receipt =
        withdrawObjection(subject, category.id, source)

    // ----- proof and rights -----

    /** The subject's events, oldest first, with the device's OS permission changes. */
    @Throws(ConsentKitException::class)
    fun history(subject: String): List<Receipt> = kit.history(text("subject", subject))

    /** The subject's portable record (GDPR Arts. 15, 20) as JSON. */
    @Throws(ConsentKitException::class)
    fun export(subject: String): String = kit.exportJson(text("subject", subject))

    /** Restores an exported record; rejected whole ([ConsentKitException.ImportRejected]) if anything is wrong. */
    @Throws(ConsentKitException::class)
    fun import(document: String): List<Receipt> = kit.importJson(text("document", document))

    /** Erases [subject] for good (GDPR Art. 17). */
    @Throws(ConsentKitException::class)
    @JvmOverloads
    fun erase(subject: String, source: Source = Source.SETTINGS): ErasureReport = kit.erase(text("subject", subject), source)

    /** Retention purge. */
    @Throws(ConsentKitException::class)
    fun purge(): PurgeReport = kit.purge()

    /**
     * Finishes the WAL scrub an erasure or purge left pending ([ErasureReport.scrubPending],
     * [PurgeReport.scrubPending]: a reader held an old snapshot) now, instead of at the next write,
     * probe or open. True when no erased content remains in the WAL. Blocking (a checkpoint that
     * may wait for readers): call it off the main thread, or through [suspending].
     */
    @Throws(ConsentKitException::class)
    fun finishScrub(): Boolean = kit.finishScrub()

    /** Records expiry events for grants past their lifetime (checks deny them regardless). */
    @Throws(ConsentKitException::class)
    fun recordExpiries(): List<Receipt> = kit.recordExpiries()

    /** Walks the hash chain. */
    @Throws(ConsentKitException::class)
    fun verify(): VerifyReport = kit.verify()

    /** Events the app's backend has not acknowledged yet, oldest first, at most [limit]. A negative [limit] throws `InvalidInput`. */
    @Throws(ConsentKitException::class)
    @JvmOverloads
    fun pendingSync(limit: Int = 100): List<Receipt> {
        // Int.toUInt() wraps: -1 would ask for 4,294,967,295 events (every one), not fail.
        if (limit < 0) throw ConsentKitException.InvalidInput("the pendingSync limit $limit is negative")
        return kit.pendingSync(limit.toUInt())
    }

    /** Acknowledges events up to [upToSeq] after the backend stored them. */
    @Throws(ConsentKitException::class)
    fun ackSync(upToSeq: ULong) = kit.ackSync(upToSeq)

    /**
     * [ackSync] with a signed sequence number, callable from Java by its name (Kotlin's `ULong`
     * overload is name-mangled on the JVM). A negative number throws `InvalidInput`.
     */
    @Throws(ConsentKitException::class)
    fun ackSync(upToSeq: Long) {
        if (upToSeq < 0) throw ConsentKitException.InvalidInput("the sequence number $upToSeq is negative")
        kit.ackSync(upToSeq.toULong())
    }

    /**
     * The next batch of the outbox for the ConsentKit server (`consentkit-server`), at most [limit]
     * receipts (1 to 1000; 0 or below throws `InvalidInput`, above 1000 gives 1000), or null when
     * everything is acknowledged. POST [SyncBatch.json] to `/v1/devices/{device}/batches` with the
     * device's token, then pass the 200 reply's body to [applySyncReply].
     */
    @Throws(ConsentKitException::class)
    @JvmOverloads
    fun syncBatch(device: String, limit: Int = 100): SyncBatch? {
        // Not coerced: 0 or below is bad input (as the core refuses 0), never a batch of one.
        if (limit < 1) throw ConsentKitException.InvalidInput("invalid batch limit '$limit': must be 1 to 1000 receipts")
        return kit.syncBatch(text("device", device), limit.toUInt()) // above 1000: the core sends 1000
    }

    /**
     * Applies the server's reply to [batch]: erases on this device whatever the server erased, then
     * acknowledges the batch. A reply for another batch throws `InvalidInput` and acknowledges nothing.
     */
    @Throws(ConsentKitException::class)
    fun applySyncReply(batch: SyncBatch, replyJson: String): SyncOutcome {
        text("batch device", batch.device)
        text("batch hash", batch.lastHash)
        text("batch JSON", batch.json)
        return kit.applySyncReply(batch, text("sync reply", replyJson))
    }

    /**
     * With nothing to send: applies the body of `GET /v1/devices/{device}/erasures`, erasing the
     * subjects the server erased; returns them. Their erasure records are then in [syncBatch].
     */
    @Throws(ConsentKitException::class)
    fun applyErasureNotices(noticesJson: String): List<String> = kit.applyErasureNotices(text("erasure notices", noticesJson))

    // ----- observing -----

    /**
     * Status changes of [subject] (or of everyone, with null): first the current status of each
     * category, then every change after commit. Collect on any dispatcher; unbuffered emissions
     * are never dropped. A grant that runs out is emitted as `EXPIRED` at its time, with no write.
     * Completes when the manager closes (at once if it already is). The Flow is cold: a malformed
     * [subject] (empty, over-long, control characters; for a subject the store does not hold yet, also
     * whitespace at either end or invisible format characters) makes its collection throw
     * [ConsentKitException.InvalidInput] naming it, as [observe] does at once; any other id is
     * valid (a subject with no record yet gets its current statuses, then its changes).
     */
    @Throws(ConsentKitException::class)
    @JvmOverloads
    fun changes(subject: String? = null): Flow<StatusChange> = callbackFlow {
        flows.add(channel)
        if (closed.get()) {
            flows.remove(channel)
            channel.close() // collected after close: completes at once
            return@callbackFlow
        }
        val handle = try {
            kit.observe(textOrNull("subject", subject), object : ConsentListener {
                override fun onChange(change: StatusChange) {
                    trySend(change)
                }
            })
        } catch (e: ConsentKitException.Closed) {
            flows.remove(channel)
            channel.close() // the manager closed meanwhile
            return@callbackFlow
        } catch (e: Throwable) {
            flows.remove(channel) // a malformed subject: this collection fails, and keeps nothing registered
            throw e
        }
        awaitClose {
            flows.remove(channel)
            handle.unregister()
            handle.destroy()
        }
    }.buffer(Channel.UNLIMITED)

    /**
     * The current statuses of [subject], every category in policy order, as a [StateFlow] for a
     * settings screen: it starts at [statuses] and follows every change, including a grant
     * turning `EXPIRED` at its time. Collected in [scope]; stops with it or when the manager closes.
     */
    @Throws(ConsentKitException::class)
    fun statusesFlow(subject: String, scope: CoroutineScope): StateFlow<List<CategoryStatus>> {
        val initial = statuses(subject)
        return changes(subject)
            .scan(initial) { list, change ->
                list.map { if (it.category == change.category) it.copy(status = change.status, since = change.since) else it }
            }
            .stateIn(scope, SharingStarted.Eagerly, initial)
    }

    /**
     * Calls [listener] (on a background thread, possibly before this returns) with the current
     * status of each category, then for each status change; close the result to stop. Closing it
     * is idempotent, and works from inside [listener] and after the manager closed. A [listener]
     * that throws (an exception or an `Error`) stays registered; ConsentKit logs that it threw, at
     * error, without its message.
     */
    @Throws(ConsentKitException::class)
    fun observe(subject: String?, listener: (StatusChange) -> Unit): AutoCloseable {
        val handle = kit.observe(textOrNull("subject", subject), object : ConsentListener {
            override fun onChange(change: StatusChange) {
                try {
                    listener(change)
                } catch (e: Exception) {
                    throw e // uniffi's callback code catches it: logged at error, without its text
                } catch (e: Throwable) {
                    // An Error (a failed `assert`, a stack overflow) would pass uniffi's catch to JNA, which prints its
                    // text and tells Rust the call succeeded: hand it over as an exception instead.
                    throw RuntimeException("the listener threw ${e.javaClass.name}")
                }
            }
        })
        // Once only: a second unregister on the destroyed handle threw IllegalStateException.
        val open = AtomicBoolean(true)
        return AutoCloseable {
            if (open.compareAndSet(true, false)) {
                handle.unregister()
                handle.destroy()
            }
        }
    }

    // ----- several processes, app lifecycle -----

    /**
     * Catches up with other processes' commits now (an `android:process` service, the support
     * tool). Checks do this by themselves within the core's cross-process bound; call it on resume.
     */
    @Throws(ConsentKitException::class)
    fun refresh() = kit.refresh()

    /**
     * Before the process is suspended: waits for the transaction in flight and starts no new one
     * until [resume] (writes and ledger reads throw [ConsentKitException.Suspended]). Checks keep
     * answering from memory for the cross-process bound, then deny consent-gated features.
     */
    @Throws(ConsentKitException::class)
    fun suspend() = kit.suspend()

    /** Ends [suspend]; catches up with what other processes committed meanwhile before it returns. */
    @Throws(ConsentKitException::class)
    fun resume() = kit.resume()

    /** True between [suspend] and [resume]. */
    @get:Throws(ConsentKitException::class)
    val isSuspended: Boolean
        get() = kit.isSuspended()

    /**
     * Closes the store. Idempotent. Calls in flight on other threads finish first; when this
     * returns the database file is released (an immediate [open] of the same path works), every
     * [changes] Flow has completed, and every later call throws [ConsentKitException.Closed].
     * From a listener it works the same. From inside a call on the same thread (a commit listener
     * of the generated `ConsentKit.onCommit`, which runs inside the write) it cannot wait for that
     * call: later calls throw `Closed` at once and the file is released when the call returns.
     */
    @Throws(ConsentKitException::class)
    override fun close() {
        if (closed.compareAndSet(false, true)) {
            decisions.clear()
            flows.forEach { it.close() }
            flows.clear()
        }
        // The native object is freed by its cleaner once unreachable; closing it releases the file
        // now, and a racing call gets a typed Closed error, never "already destroyed". Every close
        // (a second one too, on another thread) waits there until the file is free: returning early
        // would let an immediate reopen find it still open and fail closed.
        kit.shutdown()
    }
}

/** The system clock: on it the cache serves an answer until a monotonic deadline (see [ConsentManager.check]). */
internal val systemNow: () -> Instant = Instant::now

private fun closedError() = ConsentKitException.Closed("this ConsentManager was closed; open the store again to use it")

/** The result of [ConsentManager.quarantineAndReopen]: the fresh manager and where the damaged file went. */
data class Recovered(val manager: ConsentManager, val quarantinedAt: String)
