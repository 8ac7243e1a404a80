package com.consentkit

import com.consentkit.ffi.ConsentKitException
import com.consentkit.ffi.ReasonCode
import com.consentkit.ffi.Source
import com.consentkit.ffi.UnavailableKind
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import java.io.File
import java.nio.file.Files

/** Issue #10 item 8: a typed reason for failing closed, and quarantine + reopen to recover. */
class RecoveryTest {
    private val dir: File = Files.createTempDirectory("consentkit-recovery").toFile()

    @AfterEach
    fun cleanUp() {
        dir.deleteRecursively()
    }

    /**
     * An empty path (an unset setting, a blank variable) fails closed saying so: it was reported as
     * "could not enable WAL (journal mode is delete)", SQLite's temporary database, which named
     * nothing the app could fix. Strictly opened, the same message in a typed error.
     */
    @Test
    fun `an empty path fails closed, saying the path is empty`() {
        val gate = ConsentManager.open("")
        val reason = gate.unavailableReason!!
        assertEquals(UnavailableKind.UNREADABLE, reason.kind)
        assertFalse(reason.canQuarantine, "nothing to move aside")
        assertTrue(reason.message.contains("the path is empty"), reason.message)
        assertFalse(gate.isAllowed("alice", Feature.USAGE_ANALYTICS))
        gate.close()
        val strict = assertThrows<ConsentKitException.StoreUnavailable> { ConsentManager.openStrict("") }
        assertTrue(strict.message.orEmpty().contains("the path is empty"), strict.message)
    }

    @Test
    fun `a damaged store says why, typed, and the app recovers with quarantine and reopen`() {
        val damaged = File(dir, "consent.db").apply { writeBytes(ByteArray(8192) { 7 }) }
        val gate = ConsentManager.open(damaged.path)
        val reason = gate.unavailableReason!!
        assertEquals(UnavailableKind.DAMAGED, reason.kind)
        assertTrue(reason.canQuarantine)
        assertTrue(reason.message.contains("consent.db"), reason.message)
        assertEquals(ReasonCode.STORE_UNAVAILABLE, gate.check("alice", Feature.USAGE_ANALYTICS).reasons.single().code)
        val (fresh, movedTo) = gate.quarantineAndReopen()
        fresh.use {
            assertEquals(8192L, File(movedTo).length(), "the damaged file is kept for support")
            assertNull(fresh.unavailableReason)
            assertNull(fresh.unavailable)
            fresh.grant("alice", Category.USAGE_STATISTICS, Source.ONBOARDING)
            assertTrue(fresh.isAllowed("alice", Feature.USAGE_ANALYTICS))
            assertThrows<ConsentKitException.Closed> { gate.check("alice", Feature.USAGE_ANALYTICS) }
            assertThrows<ConsentKitException.InvalidInput> { fresh.quarantineAndReopen() }
        }
    }

    @Test
    fun `a second manager on an open file is ALREADY_OPEN and never moves the live file`() {
        val path = File(dir, "consent.db").path
        ConsentManager.openStrict(path).use { first ->
            first.grant("alice", Category.USAGE_STATISTICS)
            ConsentManager.open(path).use { second ->
                assertEquals(UnavailableKind.ALREADY_OPEN, second.unavailableReason!!.kind)
                assertFalse(second.unavailableReason!!.canQuarantine)
                assertThrows<ConsentKitException.InvalidInput> { second.quarantineAndReopen() }
            }
            assertTrue(first.isAllowed("alice", Feature.USAGE_ANALYTICS))
        }
    }
}
