package com.consentkit

import com.consentkit.ffi.ConsentKitException
import com.consentkit.ffi.Source
import com.consentkit.testing.ManualClock
import com.consentkit.testing.openWithClock
import java.time.Instant
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import java.io.File
import java.nio.file.Files

/** Issue #9 item 13: strings that are not valid UTF-16 are a typed InvalidInput naming the value. */
class MalformedTextTest {
    private val dir: File = Files.createTempDirectory("consentkit-text").toFile()
    private val consent = ConsentManager.openWithClock(File(dir, "consent.db").path, null, ManualClock(Instant.parse("2026-01-15T09:00:00Z")))

    @AfterEach
    fun cleanUp() {
        consent.close()
        dir.deleteRecursively()
    }

    @Test
    fun `a subject with a lone high surrogate is InvalidInput naming it, and writes nothing`() {
        val e = assertThrows<ConsentKitException.InvalidInput> { consent.grant("ali\uD800ce", "usage_statistics", Source.ONBOARDING) }
        assertTrue(e.message!!.contains("subject 'ali\\uD800ce'"), e.message)
        assertTrue(e.message!!.contains("index 3"), e.message)
        assertEquals(0L, consent.verify().events, "nothing written")
    }

    @Test
    fun `a lone low surrogate, or a high one at the end, in any argument`() {
        assertThrows<ConsentKitException.InvalidInput> { consent.check("\uDC00alice", "usage_analytics") }
        assertThrows<ConsentKitException.InvalidInput> { consent.status("alice\uD83D", "usage_statistics") }
        val scope = assertThrows<ConsentKitException.InvalidInput> { consent.grant("alice", "device_contacts", scope = "c\uDFFF") }
        assertTrue(scope.message!!.contains("scope"), scope.message)
        val feature = assertThrows<ConsentKitException.InvalidInput> { consent.check("alice", "usage\uD800") }
        assertTrue(feature.message!!.contains("feature"), feature.message)
        assertThrows<ConsentKitException.InvalidInput> { consent.withdraw("\uD800", "usage_statistics") }
        assertThrows<ConsentKitException.InvalidInput> { consent.history("\uD800") }
        assertThrows<ConsentKitException.InvalidInput> { consent.erase("\uD800") }
        assertThrows<ConsentKitException.InvalidInput> { consent.import("{\"subject\": \"\uD800\"}") }
        assertThrows<ConsentKitException.InvalidInput> { consent.observe("\uD800") {} }
        assertEquals(0L, consent.verify().events, "nothing written")
    }

    @Test
    fun `a well-formed surrogate pair is text like any other`() {
        consent.grant("alice\uD83D\uDE00", "usage_statistics", Source.ONBOARDING)
        assertTrue(consent.isAllowed("alice\uD83D\uDE00", "usage_analytics"))
    }
}

/** The calls MalformedTextTest missed: the sync client and the OS permission ids and state names (rev-platform 2). */
class MalformedTextEverywhereTest : TempStoreTest("consentkit-text2") {

    @Test
    fun `a lone surrogate in a device id, a server reply, a permission id or a state name is InvalidInput naming it`() {
        consent.grant("alice", "usage_statistics", Source.ONBOARDING)
        val batch = consent.syncBatch("dev", 10)!!
        val calls: List<Pair<String, () -> Any?>> = listOf(
            "device" to { consent.syncBatch("dev\uD800") },
            "sync reply" to { consent.applySyncReply(batch, "{\"status\": \"\uD800\"}") },
            "erasure notices" to { consent.applyErasureNotices("{\"erase_events\": \"\uDC00\"}") },
            "OS permission" to { consent.reportOsPermission(OsPermission("camera\uD800"), OsState.GRANTED) },
            "OS permission" to { consent.osPermission(OsPermission("camera\uD800")) },
            "OS permission" to { OsPermission.parse("camera\uD800") },
            "OS permission state" to { OsStates.named("granted\uD800") },
        )
        for ((what, call) in calls) {
            val e = assertThrows<ConsentKitException.InvalidInput>(what) { call() }
            assertTrue(e.message!!.contains("$what '") && (e.message!!.contains("\\uD800") || e.message!!.contains("\\uDC00")), e.message)
        }
        assertEquals(1, consent.pendingSync().size, "nothing acknowledged, nothing erased")
        assertEquals(OsState.NOT_DETERMINED, consent.osPermission(OsPermission.CAMERA), "nothing reported")
    }
}
