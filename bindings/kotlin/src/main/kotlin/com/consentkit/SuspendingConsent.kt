package com.consentkit

import com.consentkit.ffi.ConsentChoice
import com.consentkit.ffi.ConsentKitException
import com.consentkit.ffi.ErasureReport
import com.consentkit.ffi.OsState
import com.consentkit.ffi.PurgeReport
import com.consentkit.ffi.Receipt
import com.consentkit.ffi.Source
import com.consentkit.ffi.VerifyReport
import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.NonCancellable
import kotlinx.coroutines.withContext

/**
 * The calls of a [ConsentManager] that touch the disk, as `suspend` functions that run on
 * [dispatcher] (by default [Dispatchers.IO]), so a coroutine on the main thread never does the
 * fsync itself (Android StrictMode flags disk writes on the main thread). Same names, arguments,
 * results and errors as the blocking calls. Get one with [ConsentManager.suspending].
 *
 * Cancellation: a call, once made, is not cancelled with its caller. A withdrawal started by a
 * screen whose scope is then cancelled (the user left it) is still recorded; the cancelled caller
 * sees a `CancellationException` instead of the result.
 *
 * Not here because they are main-thread safe (memory only, no I/O): `check`, `isAllowed`,
 * `status`, `statuses`, `shouldAsk`, `osPermission`, `unavailable`, `policyJson`, `changes`.
 */
class SuspendingConsent internal constructor(
    private val consent: ConsentManager,
    private val dispatcher: CoroutineDispatcher,
) {
    // NonCancellable: a call, once made, runs to its end even if the caller's coroutine is cancelled
    // meanwhile (the user turned a switch off and left the screen). A plain withContext drops the
    // block unrun when the caller is cancelled before the dispatcher starts it: a withdrawal lost.
    private suspend fun <T> io(call: ConsentManager.() -> T): T = withContext(dispatcher + NonCancellable) { consent.call() }

    /** [ConsentManager.grant] on the I/O dispatcher. */
    @Throws(ConsentKitException::class)
    suspend fun grant(subject: String, category: String, source: Source = Source.SETTINGS, scope: String? = null): Receipt =
        io { grant(subject, category, source, scope) }

    /** [ConsentManager.grant] with a typed [Category], on the I/O dispatcher. */
    @Throws(ConsentKitException::class)
    suspend fun grant(subject: String, category: Category, source: Source = Source.SETTINGS, scope: String? = null): Receipt =
        io { grant(subject, category, source, scope) }

    /** [ConsentManager.refuse] on the I/O dispatcher. */
    @Throws(ConsentKitException::class)
    suspend fun refuse(subject: String, category: String, source: Source = Source.SETTINGS, scope: String? = null): Receipt =
        io { refuse(subject, category, source, scope) }

    /** [ConsentManager.refuse] with a typed [Category], on the I/O dispatcher. */
    @Throws(ConsentKitException::class)
    suspend fun refuse(subject: String, category: Category, source: Source = Source.SETTINGS, scope: String? = null): Receipt =
        io { refuse(subject, category, source, scope) }

    /** [ConsentManager.withdraw] on the I/O dispatcher; once it returns, no check allows the feature. */
    @Throws(ConsentKitException::class)
    suspend fun withdraw(subject: String, category: String, source: Source = Source.SETTINGS, scope: String? = null): Receipt =
        io { withdraw(subject, category, source, scope) }

    /** [ConsentManager.withdraw] with a typed [Category], on the I/O dispatcher. */
    @Throws(ConsentKitException::class)
    suspend fun withdraw(subject: String, category: Category, source: Source = Source.SETTINGS, scope: String? = null): Receipt =
        io { withdraw(subject, category, source, scope) }

    /** [ConsentManager.objectTo] on the I/O dispatcher. */
    @Throws(ConsentKitException::class)
    suspend fun objectTo(subject: String, category: String, source: Source = Source.SETTINGS): Receipt = io { objectTo(subject, category, source) }

    /** [ConsentManager.objectTo] with a typed [Category], on the I/O dispatcher. */
    @Throws(ConsentKitException::class)
    suspend fun objectTo(subject: String, category: Category, source: Source = Source.SETTINGS): Receipt = io { objectTo(subject, category, source) }

    /** [ConsentManager.withdrawObjection] on the I/O dispatcher. */
    @Throws(ConsentKitException::class)
    suspend fun withdrawObjection(subject: String, category: String, source: Source = Source.SETTINGS): Receipt =
        io { withdrawObjection(subject, category, source) }

    /** [ConsentManager.withdrawObjection] with a typed [Category], on the I/O dispatcher. */
    @Throws(ConsentKitException::class)
    suspend fun withdrawObjection(subject: String, category: Category, source: Source = Source.SETTINGS): Receipt =
        io { withdrawObjection(subject, category, source) }

    /** [ConsentManager.record] (one transaction: all or none) on the I/O dispatcher. */
    @Throws(ConsentKitException::class)
    suspend fun record(decisions: List<ConsentChoice>): List<Receipt> = io { record(decisions) }

    /** [ConsentManager.reportOsPermission] on the I/O dispatcher. */
    @Throws(ConsentKitException::class)
    suspend fun reportOsPermission(permission: OsPermission, state: OsState): Receipt? = io { reportOsPermission(permission, state) }

    /** [ConsentManager.markUnderAge] on the I/O dispatcher. */
    @Throws(ConsentKitException::class)
    suspend fun markUnderAge(subject: String, underAge: Boolean = true, source: Source = Source.SETTINGS): Receipt =
        io { markUnderAge(subject, underAge, source) }

    /** [ConsentManager.history] on the I/O dispatcher. */
    @Throws(ConsentKitException::class)
    suspend fun history(subject: String): List<Receipt> = io { history(subject) }

    /** [ConsentManager.export] on the I/O dispatcher. */
    @Throws(ConsentKitException::class)
    suspend fun export(subject: String): String = io { export(subject) }

    /** [ConsentManager.import] on the I/O dispatcher. */
    @Throws(ConsentKitException::class)
    suspend fun import(document: String): List<Receipt> = io { import(document) }

    /** [ConsentManager.erase] on the I/O dispatcher. */
    @Throws(ConsentKitException::class)
    suspend fun erase(subject: String, source: Source = Source.SETTINGS): ErasureReport = io { erase(subject, source) }

    /** [ConsentManager.purge] on the I/O dispatcher. */
    @Throws(ConsentKitException::class)
    suspend fun purge(): PurgeReport = io { purge() }

    /** [ConsentManager.finishScrub] on the I/O dispatcher. */
    @Throws(ConsentKitException::class)
    suspend fun finishScrub(): Boolean = io { finishScrub() }

    /** [ConsentManager.recordExpiries] on the I/O dispatcher. */
    @Throws(ConsentKitException::class)
    suspend fun recordExpiries(): List<Receipt> = io { recordExpiries() }

    /** [ConsentManager.verify] on the I/O dispatcher. */
    @Throws(ConsentKitException::class)
    suspend fun verify(): VerifyReport = io { verify() }

    /** [ConsentManager.pendingSync] on the I/O dispatcher. */
    @Throws(ConsentKitException::class)
    suspend fun pendingSync(limit: Int = 100): List<Receipt> = io { pendingSync(limit) }

    /** [ConsentManager.ackSync] on the I/O dispatcher. */
    @Throws(ConsentKitException::class)
    suspend fun ackSync(upToSeq: ULong): Unit = io { ackSync(upToSeq) }

    /** [ConsentManager.ackSync] with a signed sequence number, on the I/O dispatcher. */
    @Throws(ConsentKitException::class)
    suspend fun ackSync(upToSeq: Long): Unit = io { ackSync(upToSeq) }

    /** [ConsentManager.syncBatch] on the I/O dispatcher. */
    @Throws(ConsentKitException::class)
    suspend fun syncBatch(device: String, limit: Int = 100): SyncBatch? = io { syncBatch(device, limit) }

    /** [ConsentManager.applySyncReply] on the I/O dispatcher. */
    @Throws(ConsentKitException::class)
    suspend fun applySyncReply(batch: SyncBatch, replyJson: String): SyncOutcome = io { applySyncReply(batch, replyJson) }

    /** [ConsentManager.applyErasureNotices] on the I/O dispatcher. */
    @Throws(ConsentKitException::class)
    suspend fun applyErasureNotices(noticesJson: String): List<String> = io { applyErasureNotices(noticesJson) }

    /** [ConsentManager.refresh] (reads what other processes committed) on the I/O dispatcher. */
    @Throws(ConsentKitException::class)
    suspend fun refresh(): Unit = io { refresh() }

    /** [ConsentManager.suspend] (waits for a transaction in flight) on the I/O dispatcher. */
    @Throws(ConsentKitException::class)
    suspend fun suspend(): Unit = io { suspend() }

    /** [ConsentManager.resume] (catches up with other processes) on the I/O dispatcher. */
    @Throws(ConsentKitException::class)
    suspend fun resume(): Unit = io { resume() }

    /** [ConsentManager.quarantineAndReopen] (moves a file, opens a store) on the I/O dispatcher. */
    @Throws(ConsentKitException::class)
    suspend fun quarantineAndReopen(): Recovered {
        // A cancelled caller never receives the fresh manager: closed here, so it does not hold the file.
        val got = java.util.concurrent.atomic.AtomicReference<Recovered?>()
        try {
            return io { quarantineAndReopen().also(got::set) }
        } catch (e: kotlinx.coroutines.CancellationException) {
            got.get()?.manager?.close()
            throw e
        }
    }

    /** [ConsentManager.close] on the I/O dispatcher (it waits for calls in flight). */
    @Throws(ConsentKitException::class)
    suspend fun close(): Unit = io { close() }
}
