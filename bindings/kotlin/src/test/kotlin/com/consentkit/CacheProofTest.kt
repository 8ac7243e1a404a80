package com.consentkit

import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.fail
import org.junit.jupiter.api.Test
import java.io.File
import java.nio.file.Files

/**
 * The gate cache keeps an answer no longer than the proof of the snapshot that gave it: the
 * cross-process bound counted from that proof, not from the cache miss. (Counted from the miss,
 * an answer from a snapshot proven 240 ms ago was served for 490 ms: a withdrawal another process
 * committed meanwhile could be ignored for almost twice the documented bound.)
 */
class CacheProofTest {
    private val dir: File = Files.createTempDirectory("consentkit-proof").toFile()

    @AfterEach
    fun cleanUp() {
        dir.deleteRecursively()
    }

    @Test
    fun `suspended, an allow cached late in the proof is not served past the proof although the entry is younger than the bound`() {
        ConsentManager.openStrict(File(dir, "consent.db").path).use { consent ->
            consent.grant("alice", "usage_statistics")
            val boundNanos = consent.kit.crossProcessBoundMillis().toLong() * 1_000_000L
            // Suspended, nothing proves the snapshot again: checks answer from it while its proof
            // lasts, then deny. A miss when half of the proof is gone must not be cached longer.
            repeat(5) { attempt ->
                consent.suspend()
                while (consent.kit.proofRemainingNanos().toLong() > boundNanos / 2) Thread.sleep(1)
                // An upper bound of the proof's end: the remaining time read before the clock.
                val proofEnds = consent.kit.proofRemainingNanos().toLong() + System.nanoTime()
                val cachedAt = System.nanoTime()
                val feature = "usage_analytics"
                if (!consent.isAllowed("alice", feature)) { // the miss: answered within the proof, cached
                    consent.resume() // the proof ran out before the miss (a stalled thread): again
                    return@repeat
                }
                while (System.nanoTime() - proofEnds <= 0) Thread.sleep(1)
                val askedAfter = System.nanoTime() - cachedAt
                assertFalse(consent.isAllowed("alice", feature),
                    "attempt $attempt: the proof ended, the entry is ${askedAfter / 1_000_000} ms old (bound ${boundNanos / 1_000_000} ms): no allow from the cache")
                consent.resume()
                return
            }
            fail<Unit>("the proof ran out before the miss in every attempt")
        }
    }
}
