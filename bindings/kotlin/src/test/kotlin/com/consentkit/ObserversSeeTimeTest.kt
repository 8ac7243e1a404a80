package com.consentkit

import com.consentkit.ffi.Source
import com.consentkit.ffi.Status
import com.consentkit.testing.ManualClock
import com.consentkit.testing.openWithClock
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.cancel
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.flow.onEach
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Test
import java.io.File
import java.nio.file.Files
import java.time.Instant
import java.util.concurrent.CountDownLatch

/** Issue #10 item 7: observers are told of expiry at its time, and a StateFlow of statuses follows it. */
class ObserversSeeTimeTest {
    private val dir: File = Files.createTempDirectory("consentkit-time").toFile()
    private val clock = ManualClock(Instant.parse("2026-01-15T09:00:00Z"))
    private val consent = ConsentManager.openWithClock(File(dir, "consent.db").path, null, clock)

    @AfterEach
    fun cleanUp() {
        consent.close()
        dir.deleteRecursively()
    }

    @Test
    fun `a live Flow subscriber is told that a grant expired, at its time, with no write`(): Unit = runBlocking {
        val until = consent.grant("alice", Category.USAGE_STATISTICS, Source.ONBOARDING).validUntil!!
        val initial = CountDownLatch(8)
        val seen = async(Dispatchers.Default) { consent.changes("alice").onEach { initial.countDown() }.take(9).toList() }
        initial.await() // the eight initial states arrived: the subscription is live
        clock.now = until
        val last = withTimeout(30_000) { seen.await() }.last()
        assertEquals("usage_statistics" to Status.EXPIRED, last.category to last.status)
        assertEquals(until, last.since)
        assertEquals(1, consent.recordExpiries().size, "recordExpiries writes the event; no second emission needed")
    }

    @Test
    fun `statusesFlow starts at the current statuses and follows writes and time`(): Unit = runBlocking {
        val scope = CoroutineScope(Dispatchers.Default)
        val state = consent.statusesFlow("alice", scope)
        fun statusOf(list: List<com.consentkit.ffi.CategoryStatus>) = list.single { it.category == "usage_statistics" }.status
        assertEquals(Status.NOT_ASKED, statusOf(state.value))
        assertEquals(8, state.value.size)
        val until = consent.grant("alice", Category.USAGE_STATISTICS).validUntil!!
        withTimeout(30_000) { state.first { statusOf(it) == Status.GRANTED } }
        clock.now = until
        val expired = withTimeout(30_000) { state.first { statusOf(it) == Status.EXPIRED } }
        assertEquals(until, expired.single { it.category == "usage_statistics" }.since)
        scope.cancel()
    }
}
