package com.consentkit

import com.consentkit.ffi.CategoryStatus
import com.consentkit.ffi.CommitListener
import com.consentkit.ffi.ConsentKit
import com.consentkit.ffi.ConsentKitException
import com.consentkit.ffi.ConsentListener
import com.consentkit.ffi.Decision
import com.consentkit.ffi.DecisionInput
import com.consentkit.ffi.ErasureReport
import com.consentkit.ffi.ListenerHandle
import com.consentkit.ffi.OsPermission
import com.consentkit.ffi.OsState
import com.consentkit.ffi.PurgeReport
import com.consentkit.ffi.Receipt
import com.consentkit.ffi.Source
import com.consentkit.ffi.StatusChange
import com.consentkit.ffi.TestClock
import com.consentkit.ffi.VerifyReport
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.channels.awaitClose
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.buffer
import kotlinx.coroutines.flow.callbackFlow
import java.util.concurrent.ConcurrentHashMap
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
 * decision is never served past its `validUntil` (a grant's expiry). So once [withdraw] has
 * returned, no thread sees the feature allowed. A withdrawal made by another process on the same
 * file (an `android:process` service, the support tool) is honoured within the core's
 * cross-process bound (250 ms): the core's probe invalidates this cache, and no entry is served
 * longer than the bound anyway.
 *
 * Open one manager per database file and keep it for the app's lifetime.
 */
class ConsentManager private constructor(
    internal val kit: ConsentKit,
    private val nowMillis: () -> Long,
) : AutoCloseable {
    private class Cached(val generation: Long, val decision: Decision, val madeAtNanos: Long)
    private data class GateKey(val subject: String, val feature: String, val scope: String?)

    private val generation = AtomicLong(kit.generation().toLong())
    // Another process's commit reaches this cache through the commit listener (the core's probe
    // publishes it like a write); an entry older than the core's cross-process bound is re-asked
    // anyway, so a cache never serves an allow the core could no longer vouch for.
    private val freshNanos: Long = kit.crossProcessBoundMillis().toLong() * 1_000_000L
    private val decisions = ConcurrentHashMap<GateKey, Cached>()
    // The listener captures only the counter, never this manager or the Rust object: no cycle.
    private val commits: ListenerHandle = generation.let { counter ->
        kit.onCommit(object : CommitListener {
            override fun onCommit(generation: ULong) {
                counter.accumulateAndGet(generation.toLong(), ::maxOf)
            }
        })
    }

    companion object {
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
        fun open(path: String, policyJson: String? = null): ConsentManager =
            ConsentManager(ConsentKit.openFailClosed(path, policyJson), System::currentTimeMillis)

        /** Like [open], but throws [ConsentKitException.StoreUnavailable] or `SchemaTooNew` instead of failing closed. */
        @JvmStatic
        @JvmOverloads
        fun openStrict(path: String, policyJson: String? = null): ConsentManager =
            ConsentManager(ConsentKit.open(path, policyJson), System::currentTimeMillis)

        /** Opens on a hand-set clock (tests and conformance scenarios). */
        @JvmStatic
        fun openWithClock(path: String, policyJson: String?, clock: TestClock): ConsentManager =
            ConsentManager(ConsentKit.openWithClock(path, policyJson, clock)) { clock.now() }
    }

    /** Why the store is closed (fail-closed mode), or null when healthy. */
    val unavailable: String? get() = kit.unavailable()

    /** The policy in force, as JSON. */
    val policyJson: String get() = kit.policyJson()

    // ----- the gate -----

    /** May [feature] run for [subject] now? [scope] names the item of a per-item feature. */
    fun check(subject: String, feature: String, scope: String? = null): Decision {
        val key = GateKey(subject, feature, scope)
        val current = generation.get() // read before asking Rust: a commit in between makes the entry stale
        val nanos = System.nanoTime()
        decisions[key]?.let { hit ->
            val until = hit.decision.validUntil
            if (hit.generation == current && nanos - hit.madeAtNanos < freshNanos && (until == null || nowMillis() < until)) {
                return hit.decision
            }
        }
        val decision = kit.check(subject, feature, scope)
        if (decisions.size >= MAX_CACHED_DECISIONS) decisions.clear()
        decisions[key] = Cached(current, decision, nanos)
        return decision
    }

    /** Shorthand for `check(...).allowed`. */
    fun isAllowed(subject: String, feature: String, scope: String? = null): Boolean = check(subject, feature, scope).allowed

    /** One category's status and since when. */
    fun status(subject: String, category: String): CategoryStatus = kit.status(subject, category)

    /** Every category's status, in policy order. */
    fun statuses(subject: String): List<CategoryStatus> = kit.statuses(subject)

    /** Should the app show the consent prompt for [category] now? */
    fun shouldAsk(subject: String, category: String): Boolean = kit.shouldAsk(subject, category)

    // ----- decisions -----

    /** Records the subject's grant (never from [Source.SUPPORT]). */
    @JvmOverloads
    fun grant(subject: String, category: String, source: Source = Source.SETTINGS, scope: String? = null): Receipt =
        kit.grant(subject, category, scope, source)

    /** Records a refusal. */
    @JvmOverloads
    fun refuse(subject: String, category: String, source: Source = Source.SETTINGS, scope: String? = null): Receipt =
        kit.refuse(subject, category, scope, source)

    /** Records a withdrawal; once it returns, no check allows the feature. */
    @JvmOverloads
    fun withdraw(subject: String, category: String, source: Source = Source.SETTINGS, scope: String? = null): Receipt =
        kit.withdraw(subject, category, scope, source)

    /** Records an objection to a legitimate-interest category. */
    @JvmOverloads
    fun objectTo(subject: String, category: String, source: Source = Source.SETTINGS): Receipt = kit.`object`(subject, category, source)

    /** Records the withdrawal of an objection. */
    @JvmOverloads
    fun withdrawObjection(subject: String, category: String, source: Source = Source.SETTINGS): Receipt =
        kit.withdrawObjection(subject, category, source)

    /** Records a dialog's decisions in one transaction: all or none. */
    fun record(decisions: List<DecisionInput>): List<Receipt> = kit.recordBatch(decisions)

    /** Reports the OS permission state (from the permission callback or on resume); null if unchanged. */
    fun reportOsPermission(permission: OsPermission, state: OsState): Receipt? = kit.setOsPermission(permission, state)

    /** The device's current OS permission state as last reported. */
    fun osPermission(permission: OsPermission): OsState = kit.osPermission(permission)

    /** Marks (or unmarks) [subject] as under the age of digital consent. */
    @JvmOverloads
    fun markUnderAge(subject: String, underAge: Boolean = true, source: Source = Source.SETTINGS): Receipt =
        kit.setUnderAge(subject, underAge, source)

    // ----- proof and rights -----

    /** The subject's events, oldest first, with the device's OS permission changes. */
    fun history(subject: String): List<Receipt> = kit.history(subject)

    /** The subject's portable record (GDPR Arts. 15, 20) as JSON. */
    fun export(subject: String): String = kit.exportJson(subject)

    /** Restores an exported record; rejected whole ([ConsentKitException.ImportRejected]) if anything is wrong. */
    fun import(document: String): List<Receipt> = kit.importJson(document)

    /** Erases [subject] for good (GDPR Art. 17). */
    @JvmOverloads
    fun erase(subject: String, source: Source = Source.SETTINGS): ErasureReport = kit.erase(subject, source)

    /** Retention purge. */
    fun purge(): PurgeReport = kit.purge()

    /** Records expiry events for grants past their lifetime (checks deny them regardless). */
    fun recordExpiries(): List<Receipt> = kit.recordExpiries()

    /** Walks the hash chain. */
    fun verify(): VerifyReport = kit.verify()

    /** Events the app's backend has not acknowledged yet, oldest first. */
    @JvmOverloads
    fun pendingSync(limit: Int = 100): List<Receipt> = kit.pendingSync(limit.toUInt())

    /** Acknowledges events up to [upToSeq] after the backend stored them. */
    fun ackSync(upToSeq: ULong) = kit.ackSync(upToSeq)

    // ----- observing -----

    /**
     * Status changes of [subject] (or of everyone, with null): first the current status of each
     * category, then every change after commit. Collect on any dispatcher; unbuffered emissions
     * are never dropped.
     */
    @JvmOverloads
    fun changes(subject: String? = null): Flow<StatusChange> = callbackFlow {
        val handle = kit.observe(subject, object : ConsentListener {
            override fun onChange(change: StatusChange) {
                trySend(change)
            }
        })
        awaitClose {
            handle.unregister()
            handle.destroy()
        }
    }.buffer(Channel.UNLIMITED)

    /** Calls [listener] (on a background thread) for each status change; close the result to stop. */
    fun observe(subject: String?, listener: (StatusChange) -> Unit): AutoCloseable {
        val handle = kit.observe(subject, object : ConsentListener {
            override fun onChange(change: StatusChange) = listener(change)
        })
        return AutoCloseable {
            handle.unregister()
            handle.destroy()
        }
    }

    // ----- several processes, app lifecycle -----

    /**
     * Catches up with other processes' commits now (an `android:process` service, the support
     * tool). Checks do this by themselves within the core's cross-process bound; call it on resume.
     */
    fun refresh() = kit.refresh()

    /**
     * Before the process is suspended: waits for the transaction in flight and starts no new one
     * until [resume] (writes and ledger reads throw [ConsentKitException.Suspended]). Checks keep
     * answering from memory for the cross-process bound, then deny consent-gated features.
     */
    fun suspend() = kit.suspend()

    /** Ends [suspend]; catches up with what other processes committed meanwhile before it returns. */
    fun resume() = kit.resume()

    /** Releases the native store. */
    override fun close() {
        commits.unregister()
        commits.destroy()
        decisions.clear()
        kit.destroy()
    }
}
