package com.consentkit

import com.consentkit.ffi.ConsentKitException
import com.consentkit.testing.ManualClock
import com.consentkit.testing.openWithClock
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import java.io.File
import java.nio.file.Files
import java.time.Instant

/**
 * The device side of sync with the ConsentKit server, as an Android app drives it: the batch to
 * POST, and the reply applied (erase what the server erased, then acknowledge). The replies here
 * are what the server sends (server/tests run the same against the real server).
 */
class SyncClientTest {
    private val dir: File = Files.createTempDirectory("consentkit-sync").toFile()
    private val clock = ManualClock(Instant.parse("2026-01-15T09:00:00Z"))
    private val consent = ConsentManager.openWithClock(File(dir, "consent.db").path, null, clock)

    @AfterEach
    fun cleanUp() {
        consent.close()
        dir.deleteRecursively()
    }

    private fun reply(batch: SyncBatch, eraseEvents: List<ULong> = emptyList()) =
        """{"status":"stored","head":{"format":"consentkit-signed-head/1","device":"${batch.device}","seq":${batch.lastSeq},""" +
            """"hash":"${batch.lastHash}","key_id":"k","signature":"s"},"stored":${batch.count},"duplicates":0,"suppressed":0,""" +
            """"erased_subjects":[],"erased_on_server":0,"erase_events":[${eraseEvents.joinToString(",")}]}"""

    @Test
    fun `a batch is sent, a reply for another batch acknowledges nothing, the right one acknowledges it`() {
        consent.grant("alice", "usage_statistics")
        consent.grant("bob", "usage_statistics")
        val batch = consent.syncBatch("phone")!!
        assertEquals(2L, batch.count)
        assertTrue(batch.json.contains("\"format\":\"consentkit-batch/1\"") && batch.json.contains("\"device\":\"phone\""), batch.json)
        val wrong = batch.copy(lastSeq = 1uL)
        val e = assertThrows<ConsentKitException.InvalidInput> { consent.applySyncReply(batch, reply(wrong)) }
        assertTrue(e.message!!.contains("sync reply"), e.message)
        assertEquals(2, consent.pendingSync().size, "nothing was acknowledged")
        assertEquals(2uL, consent.applySyncReply(batch, reply(batch)).ackedSeq)
        assertNull(consent.syncBatch("phone"), "everything is acknowledged")
    }

    @Test
    fun `Java acknowledges with a long by the method's own name`() {
        consent.grant("alice", "usage_statistics")
        val javaVisible = ConsentManager::class.java.getMethod("ackSync", java.lang.Long.TYPE)
        javaVisible.invoke(consent, 1L)
        assertEquals(0, consent.pendingSync().size)
        assertThrows<ConsentKitException.InvalidInput> { consent.ackSync(-1L) }
    }

    @Test
    fun `events the server erased are erased here before the ack, and their erasure record goes out next`() {
        val aliceGrant = consent.grant("alice", "usage_statistics")
        consent.grant("bob", "usage_statistics")
        assertTrue(consent.check("alice", "usage_analytics").allowed)
        val batch = consent.syncBatch("phone", 50)!!
        val outcome = consent.applySyncReply(batch, reply(batch, listOf(aliceGrant.seq)))
        assertEquals(listOf("alice"), outcome.erasedSubjects)
        assertEquals(Status.NOT_ASKED, consent.status("alice", "usage_statistics").status)
        assertTrue(!consent.check("alice", "usage_analytics").allowed, "the erased grant allows nothing, cached or not")
        assertTrue(consent.check("bob", "usage_analytics").allowed)
        val next = consent.syncBatch("phone")!!
        assertTrue(next.json.contains("\"action\":\"erasure\""), next.json)
        // With nothing to send, the notices endpoint's body does the same.
        consent.applySyncReply(next, reply(next))
        val bobGrant = consent.history("bob").first { it.subject == "bob" }
        assertEquals(listOf("bob"), consent.applyErasureNotices("""{"erase_events":[${bobGrant.seq}]}"""))
        assertTrue(!consent.check("bob", "usage_analytics").allowed)
        assertThrows<ConsentKitException.InvalidInput> { consent.applyErasureNotices("not json") }
    }
}
