package com.consentkit

import com.consentkit.ffi.ConsentKit
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Assertions.fail
import org.junit.jupiter.api.Test
import java.io.BufferedReader
import java.io.File
import java.nio.file.Files
import java.util.concurrent.TimeUnit

/**
 * The second JVM of [CacheProofTest]: `ReadyToWithdraw <db> <subject>` opens the store, prints
 * `ready`, withdraws `usage_statistics` when it reads a line, and prints `ack <seq>`.
 */
object ReadyToWithdraw {
    @JvmStatic
    fun main(args: Array<String>) {
        ConsentManager.openStrict(args[0]).use { consent ->
            println("ready")
            System.out.flush()
            readln()
            println("ack ${consent.withdraw(args[1], "usage_statistics").seq}")
            System.out.flush()
        }
    }
}

/**
 * The gate cache keeps an answer no longer than the proof of the snapshot that gave it: the
 * cross-process bound counted from that proof, not from the cache miss. (Counted from the miss,
 * an answer from a snapshot proven 240 ms ago was served for 490 ms: a withdrawal another process
 * committed meanwhile could be ignored for almost twice the documented bound.)
 */
class CacheProofTest {
    private val dir: File = Files.createTempDirectory("consentkit-proof").toFile()
    private val path = File(dir, "consent.db").path

    @AfterEach
    fun cleanUp() {
        dir.deleteRecursively()
    }

    /** Through the JNI gate (its `long[]` carries the proof) or through uniffi (`proofRemainingNanos` first). */
    private fun open(jniGate: Boolean) = ConsentManager(ConsentKit.open(path, null), systemNow, jniGate) { error("not reopened") }

    /**
     * Suspended, nothing proves the snapshot again: checks answer from it while its proof lasts,
     * then deny. A miss once half the proof is gone makes an allow that must not be served past
     * the proof's end, although the entry is then younger than the bound. [between] runs after
     * suspend, before the miss. Returns how old the entry was when asked past the proof.
     */
    private fun allowCachedLateIsNotServedPastTheProof(consent: ConsentManager, between: () -> Unit = {}): Long {
        val boundNanos = consent.kit.crossProcessBoundMillis().toLong() * 1_000_000L
        consent.suspend()
        between()
        while (consent.kit.proofRemainingNanos().toLong() > boundNanos / 2) Thread.sleep(1)
        // An upper bound of the proof's end: the remaining time read before the clock.
        val proofEnds = consent.kit.proofRemainingNanos().toLong() + System.nanoTime()
        val cachedAt = System.nanoTime()
        if (!consent.isAllowed("alice", "usage_analytics")) return -1 // the proof ran out before the miss (a stalled thread)
        while (System.nanoTime() - proofEnds <= 0) Thread.sleep(1)
        val age = System.nanoTime() - cachedAt
        assertFalse(consent.isAllowed("alice", "usage_analytics"),
            "the proof ended, the entry is ${age / 1_000_000} ms old (bound ${boundNanos / 1_000_000} ms): no allow from the cache")
        return age
    }

    private fun inProcess(jniGate: Boolean) {
        open(jniGate).use { consent ->
            consent.grant("alice", "usage_statistics")
            repeat(5) {
                val age = allowCachedLateIsNotServedPastTheProof(consent)
                consent.resume()
                if (age >= 0) return
            }
            fail<Unit>("the proof ran out before the miss in every attempt")
        }
    }

    @Test
    fun `suspended, an allow cached late in the proof is not served past it, through the JNI gate`() {
        assertTrue(JniGate.loaded)
        inProcess(jniGate = true)
    }

    @Test
    fun `suspended, an allow cached late in the proof is not served past it, through uniffi`() = inProcess(jniGate = false)

    /**
     * The reported scenario: suspend; another process withdraws; a miss still inside the proof
     * allows from the stale snapshot; once the proof's bound has passed, isAllowed denies
     * although the cached entry is younger than the bound. After resume the withdrawal is seen.
     */
    @Test
    fun `a withdrawal another process made after the proof is honoured once the proof ends, not a bound after the miss`() {
        open(jniGate = true).use { consent ->
            consent.grant("alice", "usage_statistics")
            repeat(5) { attempt ->
                val java = File(System.getProperty("java.home"), "bin/java").path
                val classpath = System.getProperty("surefire.test.class.path") ?: System.getProperty("java.class.path")
                val command = mutableListOf(java, "-cp", classpath)
                System.getProperty("jna.library.path")?.let { command += "-Djna.library.path=$it" }
                command += listOf(ReadyToWithdraw::class.java.name, path, "alice")
                val other = ProcessBuilder(command).redirectErrorStream(true).start()
                val lines: BufferedReader = other.inputStream.bufferedReader()
                fun next(prefix: String): String = generateSequence { lines.readLine() }.first { it.startsWith(prefix) }
                next("ready")
                val age = allowCachedLateIsNotServedPastTheProof(consent) {
                    other.outputStream.write("\n".toByteArray())
                    other.outputStream.flush()
                    assertEquals("ack ${2 + 2 * attempt}", next("ack "))
                }
                assertTrue(other.waitFor(120, TimeUnit.SECONDS), "the other JVM finished")
                consent.resume() // catches up with the withdrawal
                assertFalse(consent.isAllowed("alice", "usage_analytics"), "resumed: the withdrawal is seen")
                if (age >= 0) return
                consent.grant("alice", "usage_statistics") // the proof ran out before the miss: again
            }
            fail<Unit>("the proof ran out before the miss in every attempt")
        }
    }
}
