package com.consentkit

import com.consentkit.ffi.ConsentKitException
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import java.io.File
import java.nio.file.Files

/** What a hostile caller tries against the Kotlin API, each a defect found by review (rev-platform). */
class HostileUseTest {
    private val dir: File = Files.createTempDirectory("consentkit-hostile").toFile()
    private val consent = ConsentManager.open(File(dir, "consent.db").path)

    @AfterEach
    fun cleanUp() {
        consent.close()
        dir.deleteRecursively()
    }

    @Test
    fun `a negative pendingSync limit is InvalidInput naming it, not every pending event`() {
        consent.grant("alice", Category.USAGE_STATISTICS)
        consent.grant("bob", Category.USAGE_STATISTICS)
        val e = assertThrows<ConsentKitException.InvalidInput> { consent.pendingSync(-1) }
        assertTrue(e.message!!.contains("-1"), e.message)
        assertThrows<ConsentKitException.InvalidInput> { consent.pendingSync(Int.MIN_VALUE) }
        assertEquals(0, consent.pendingSync(0).size)
        assertEquals(1, consent.pendingSync(1).size)
    }
}
