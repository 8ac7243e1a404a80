package com.consentkit

import com.consentkit.ffi.OsState
import com.consentkit.ffi.ReasonCode
import com.consentkit.testing.ManualClock
import com.consentkit.testing.openWithClock
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertSame
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import java.io.File
import java.nio.file.Files
import java.time.Instant

/** The gate cache's keys (subject, feature, scope) and its bound; its invalidation is tested in ConsentManagerTest and TwoProcessTest. */
class GateCacheTest {
    private val dir: File = Files.createTempDirectory("consentkit").toFile()
    private val clock = ManualClock(Instant.parse("2026-01-15T09:00:00Z"))
    private val consent = ConsentManager.openWithClock(File(dir, "consent.db").path, null, clock)

    @AfterEach
    fun cleanUp() {
        consent.close()
        dir.deleteRecursively()
    }

    @Test
    fun `an answer cached for one subject, feature or scope is never served for another`() {
        consent.reportOsPermission(OsPermission.CONTACTS, OsState.GRANTED)
        consent.grant("alice", "device_contacts", scope = "contact-1")
        consent.grant("alice", "device_contacts")
        repeat(2) { // the second round is answered from the cache
            assertTrue(consent.isAllowed("alice", "contact_sync", "contact-1"))
            assertEquals(ReasonCode.SCOPE_NOT_GRANTED, consent.check("alice", "contact_sync", "contact-2").reasons.single().code)
            assertTrue(consent.isAllowed("alice", "contact_lookup"))
            assertFalse(consent.isAllowed("bob", "contact_lookup"))
            assertFalse(consent.isAllowed("alice", "usage_analytics"))
        }
        // Equal ids in other String instances find the same entries.
        assertTrue(consent.isAllowed(String("alice".toCharArray()), String("contact_lookup".toCharArray())))
    }

    @Test
    fun `entries are kept per subject, feature and scope, replaced in place, and the bound starts afresh`() {
        val cache = GateCache(limit = 3)
        val allowed = consent.check("alice", "calling")
        val a = GateCache.Entry(1, allowed, 0)
        val b = GateCache.Entry(2, allowed, 0)
        cache.put("alice", "calling", null, a)
        cache.put("alice", "calling", "x", b)
        assertSame(a, cache.get("alice", "calling", null))
        assertSame(b, cache.get("alice", "calling", "x"))
        assertNull(cache.get("alice", "calling", "y"))
        assertNull(cache.get("alice", "messaging", null))
        assertNull(cache.get("bob", "calling", null))
        cache.put("alice", "calling", null, b)
        assertSame(b, cache.get("alice", "calling", null), "replaced")
        assertEquals(2, cache.count, "a replacement is not a new entry")
        cache.put("bob", "calling", null, a)
        assertEquals(3, cache.count)
        cache.put("carol", "calling", null, a) // past the bound: afresh, then this one
        assertEquals(1, cache.count)
        assertNull(cache.get("alice", "calling", null))
        assertSame(a, cache.get("carol", "calling", null))
    }
}
