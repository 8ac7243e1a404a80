package com.consentkit

import com.consentkit.ffi.Action
import com.consentkit.ffi.ConsentKitException
import com.consentkit.ffi.ConsentChoice
import com.consentkit.ffi.OsState
import com.consentkit.ffi.ReasonCode
import com.consentkit.ffi.Source
import com.consentkit.ffi.Status
import com.consentkit.testing.ManualClock
import com.consentkit.testing.openWithClock
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.delay
import com.consentkit.ffi.StatusChange
import kotlinx.coroutines.flow.onEach
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import java.io.File
import java.nio.file.Files
import java.time.Instant
import java.util.concurrent.CountDownLatch
import java.util.concurrent.CyclicBarrier
import java.util.concurrent.Executors
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger

class ConsentManagerTest {
    private val dir: File = Files.createTempDirectory("consentkit").toFile()
    private val start = Instant.parse("2026-01-15T09:00:00Z")
    private val clock = ManualClock(start)
    private val consent = ConsentManager.openWithClock(File(dir, "consent.db").path, null, clock)

    @AfterEach
    fun cleanUp() {
        consent.close()
        dir.deleteRecursively()
    }

    @Test
    fun `fails closed, then grant allows and withdrawal denies at once`() {
        val denied = consent.check("alice", "usage_analytics")
        assertFalse(denied.allowed)
        assertEquals(ReasonCode.CONSENT_NOT_ASKED, denied.reasons.single().code)
        assertTrue(consent.isAllowed("alice", "calling"))
        assertTrue(consent.shouldAsk("alice", "usage_statistics"))
        val receipt = consent.grant("alice", "usage_statistics", Source.ONBOARDING)
        assertEquals(1UL, receipt.seq)
        assertEquals(64, receipt.hash.length)
        assertTrue(consent.isAllowed("alice", "usage_analytics"))
        assertTrue(consent.isAllowed("alice", "usage_analytics"), "served from the Kotlin cache")
        consent.withdraw("alice", "usage_statistics")
        val after = consent.check("alice", "usage_analytics")
        assertFalse(after.allowed, "the cache never outlives a withdrawal")
        assertEquals(ReasonCode.CONSENT_WITHDRAWN, after.reasons.single().code)
        assertEquals(Status.WITHDRAWN, consent.status("alice", "usage_statistics").status)
    }

    @Test
    fun `the cached gate honours expiry at its time`() {
        val receipt = consent.grant("alice", "usage_statistics")
        assertTrue(consent.isAllowed("alice", "usage_analytics"))
        clock.now = receipt.validUntil!!.minusMillis(1)
        assertTrue(consent.isAllowed("alice", "usage_analytics"))
        clock.now = receipt.validUntil!!
        assertEquals(ReasonCode.CONSENT_EXPIRED, consent.check("alice", "usage_analytics").reasons.single().code)
        assertEquals(1, consent.recordExpiries().size)
    }

    @Test
    fun `every decision kind, OS permissions, age and scopes`() {
        consent.refuse("alice", "photos_media", Source.ONBOARDING)
        assertEquals(Status.REFUSED, consent.status("alice", "photos_media").status)
        consent.objectTo("alice", "contact_information")
        assertEquals(Status.OBJECTED, consent.status("alice", "contact_information").status)
        consent.withdrawObjection("alice", "contact_information")
        assertEquals(Status.NOT_REQUIRED, consent.status("alice", "contact_information").status)
        consent.grant("alice", "device_contacts")
        assertEquals(ReasonCode.OS_PERMISSION_NOT_DETERMINED, consent.check("alice", "contact_lookup").reasons.single().code)
        assertNotNull(consent.reportOsPermission(OsPermission.CONTACTS, OsState.GRANTED))
        assertNull(consent.reportOsPermission(OsPermission.CONTACTS, OsState.GRANTED), "unchanged: not history")
        assertEquals(OsState.GRANTED, consent.osPermission(OsPermission.CONTACTS))
        assertTrue(consent.isAllowed("alice", "contact_lookup"))
        consent.grant("alice", "device_contacts", scope = "contact-1")
        assertTrue(consent.isAllowed("alice", "contact_sync", "contact-1"))
        assertEquals(ReasonCode.SCOPE_NOT_GRANTED, consent.check("alice", "contact_sync", "contact-2").reasons.single().code)
        consent.reportOsPermission(OsPermission.PHOTOS, OsState.LIMITED)
        consent.grant("alice", "photos_media")
        assertTrue(consent.check("alice", "photo_sharing").limited)
        consent.markUnderAge("kid", true, Source.ONBOARDING)
        assertThrows<ConsentKitException.UnderAge> { consent.grant("kid", "usage_statistics") }
        consent.grant("kid", "usage_statistics", Source.GUARDIAN)
        assertTrue(consent.isAllowed("kid", "usage_analytics"))
        assertTrue(consent.policyJson.contains("\"id\": \"ucanywhere\""))
        val statuses = consent.statuses("alice")
        assertEquals(8, statuses.size)
        val history = consent.history("alice")
        assertTrue(history.any { it.action == Action.OS_PERMISSION }, "device OS changes are in every subject's history")
    }

    @Test
    fun `a batch commits all or nothing`() {
        val bad = listOf(
            ConsentChoice("alice", "usage_statistics", Action.GRANT, null, Source.ONBOARDING),
            ConsentChoice("alice", "nope", Action.GRANT, null, Source.ONBOARDING),
        )
        assertThrows<ConsentKitException.UnknownCategory> { consent.record(bad) }
        assertEquals(Status.NOT_ASKED, consent.status("alice", "usage_statistics").status)
        assertEquals(1, consent.record(bad.take(1)).size)
        assertTrue(consent.isAllowed("alice", "usage_analytics"))
    }

    @Test
    fun `errors arrive as typed exceptions naming the bad value`() {
        val unknownFeature = assertThrows<ConsentKitException.UnknownFeature> { consent.check("alice", "teleport") }
        assertTrue(unknownFeature.message!!.contains("'teleport'"))
        assertThrows<ConsentKitException.UnknownCategory> { consent.grant("alice", "nope") }
        val support = assertThrows<ConsentKitException.GrantBySupport> { consent.grant("alice", "usage_statistics", Source.SUPPORT) }
        assertTrue(support.message!!.contains("'support'"))
        assertThrows<ConsentKitException.NotApplicable> { consent.grant("alice", "traffic_data") }
        assertThrows<ConsentKitException.NotApplicable> { consent.check("alice", "contact_sync") }
        assertThrows<ConsentKitException.InvalidInput> { consent.grant("", "usage_statistics") }
        assertThrows<ConsentKitException.InvalidInput> { consent.grant("a".repeat(300), "usage_statistics") }
        val policy = assertThrows<ConsentKitException.InvalidPolicy> { ConsentManager.open(File(dir, "p.db").path, """{"id":"x"}""") }
        assertTrue(policy.message!!.contains("$"), policy.message)
        assertThrows<ConsentKitException.ImportRejected> { consent.import("{}") }
        assertEquals(0, consent.history("alice").size, "nothing written by any of them")
    }

    @Test
    fun `a damaged store fails closed, or throws when opened strictly`() {
        val damaged = File(dir, "damaged.db").apply { writeBytes(ByteArray(8192) { 7 }) }
        assertThrows<ConsentKitException.StoreUnavailable> { ConsentManager.openStrict(damaged.path) }
        ConsentManager.open(damaged.path).use { gate ->
            assertNotNull(gate.unavailable)
            assertEquals(ReasonCode.STORE_UNAVAILABLE, gate.check("alice", "usage_analytics").reasons.single().code)
            assertTrue(gate.isAllowed("alice", "calling"))
            assertThrows<ConsentKitException.StoreUnavailable> { gate.grant("alice", "usage_statistics") }
        }
        assertEquals(8192L, damaged.length(), "the damaged file is kept for inspection")
    }

    @Test
    fun `proof and rights - export, import, erase, purge, verify, sync`() {
        consent.grant("alice", "usage_statistics", Source.ONBOARDING)
        consent.withdraw("alice", "usage_statistics")
        val document = consent.export("alice")
        assertTrue(document.contains("\"format\": \"consentkit-export/1\""))
        ConsentManager.openWithClock(File(dir, "other.db").path, null, clock).use { other ->
            assertEquals(2, other.import(document).size)
            assertEquals(consent.statuses("alice"), other.statuses("alice"))
        }
        assertEquals(listOf(1UL, 2UL), consent.pendingSync(10).map { it.seq })
        consent.ackSync(1UL)
        assertEquals(listOf(2UL), consent.pendingSync().map { it.seq })
        val erased = consent.erase("alice", Source.SUPPORT)
        assertEquals(2L, erased.erasedEvents)
        // No reader held an old snapshot: the erasure scrubbed the WAL itself, and a later
        // finishScrub finds nothing left (the erased id is in neither file).
        assertEquals(false, erased.scrubPending)
        assertTrue(consent.finishScrub())
        assertTrue(runBlocking { consent.suspending().finishScrub() })
        assertEquals(Status.NOT_ASKED, consent.status("alice", "usage_statistics").status)
        assertEquals(0L, consent.purge().removedEvents)
        val report = consent.verify()
        assertTrue(report.intact)
        assertEquals(3L, report.events)
    }

    @Test
    fun `the Flow gives the current state, then changes after commit`(): Unit = runBlocking {
        consent.grant("alice", "photos_media")
        val seen = java.util.Collections.synchronizedList(mutableListOf<StatusChange>())
        val latch = CountDownLatch(9)
        val handle = consent.observe("alice") { change: StatusChange ->
            seen.add(change)
            latch.countDown()
        }
        consent.withdraw("alice", "photos_media")
        assertTrue(latch.await(5, TimeUnit.SECONDS))
        handle.close()
        assertEquals(Status.GRANTED, seen.first { it.category == "photos_media" }.status)
        assertEquals(Status.WITHDRAWN, seen.last().status)

        val flow = consent.changes("alice")
        val collected: List<StatusChange> = withTimeout(5_000) {
            val job = async { flow.take(9).toList() }
            delay(200)
            consent.grant("alice", "photos_media")
            job.await()
        }
        assertEquals(8, collected.take(8).map { it.category }.toSet().size, "one initial state per category")
        assertEquals("photos_media" to Status.GRANTED, collected.last().category to collected.last().status)
    }

    @Test
    fun `a changes Flow of a malformed subject fails with InvalidInput naming it, like observe`(): Unit = runBlocking {
        // A Flow is cold: it registers when collected, so collecting it throws the typed error (it
        // never completes silently as if there were no changes); Swift's changes(of:) throws at the call.
        for ((bad, shown) in listOf("" to "''", "   " to "'   '", "a\u0001b" to "a\\u{1}b", "s".repeat(300) to "300 bytes")) {
            val failure = assertThrows<ConsentKitException.InvalidInput>("changes('$bad')") {
                runBlocking { withTimeout(10_000) { consent.changes(bad).toList() } }
            }
            assertTrue(failure.message!!.contains("subject") && failure.message!!.contains(shown), "names the subject: ${failure.message}")
            assertThrows<ConsentKitException.InvalidInput>("observe('$bad')") { consent.observe(bad) { } }
        }
        // A subject with no record yet is valid: its current statuses, then its changes.
        val initial = CountDownLatch(8)
        val job = async(Dispatchers.Default) { consent.changes("nobody-yet").onEach { initial.countDown() }.take(9).toList() }
        assertTrue(initial.await(10, TimeUnit.SECONDS), "the 8 current statuses of a new subject")
        consent.grant("nobody-yet", "photos_media")
        val collected = withTimeout(10_000) { job.await() }
        assertEquals("photos_media" to Status.GRANTED, collected.last().category to collected.last().status)
    }

    @Test
    fun `a listener that throws breaks no write`() {
        val handle = consent.observe(null) { throw IllegalStateException("listener bug") }
        consent.grant("alice", "usage_statistics")
        assertTrue(consent.isAllowed("alice", "usage_analytics"))
        handle.close()
    }

    @Test
    fun `many threads - once a withdrawal returns, no thread sees the feature allowed`() {
        val threads = 8
        val pool = Executors.newFixedThreadPool(threads)
        val barrier = CyclicBarrier(threads)
        val violations = AtomicInteger() // allowed after the withdrawal returned: fail-open
        val deniedAfterGrant = java.util.concurrent.atomic.AtomicReference<String?>(null) // the first, with its reasons
        val futures = (0 until threads).map { t ->
            pool.submit {
                barrier.await()
                repeat(40) {
                    val me = "user-$t"
                    consent.grant(me, "usage_statistics")
                    val afterGrant = consent.check(me, "usage_analytics")
                    if (!afterGrant.allowed) deniedAfterGrant.compareAndSet(null, afterGrant.toString())
                    consent.withdraw(me, "usage_statistics")
                    if (consent.isAllowed(me, "usage_analytics")) violations.incrementAndGet()
                    // Another thread's subject: whatever it is, the call must be safe.
                    consent.check("user-${(t + 1) % threads}", "usage_analytics")
                }
            }
        }
        futures.forEach { it.get(60, TimeUnit.SECONDS) }
        pool.shutdown()
        assertEquals(0, violations.get(), "allowed after a withdrawal returned")
        assertEquals(null, deniedAfterGrant.get(), "denied right after the thread's own grant returned")
        assertEquals((threads * 80).toLong(), consent.verify().events)
    }

    @Test
    fun `a withdrawal on one thread is seen by a cached check on another`() {
        consent.grant("alice", "usage_statistics")
        val reader = Executors.newSingleThreadExecutor()
        assertTrue(reader.submit<Boolean> { consent.isAllowed("alice", "usage_analytics") }.get())
        consent.withdraw("alice", "usage_statistics")
        assertFalse(reader.submit<Boolean> { consent.isAllowed("alice", "usage_analytics") }.get())
        reader.shutdown()
    }
}
