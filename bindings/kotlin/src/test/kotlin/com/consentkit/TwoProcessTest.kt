package com.consentkit

import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import java.io.File
import java.nio.file.Files
import java.util.concurrent.TimeUnit

/** The second JVM of [TwoProcessTest]: `SecondProcess <db> withdraw <subject>`; prints `ack <seq>`. */
object SecondProcess {
    @JvmStatic
    fun main(args: Array<String>) {
        ConsentManager.openStrict(args[0]).use { consent ->
            val receipt = when (args[1]) {
                "withdraw" -> consent.withdraw(args[2], "usage_statistics")
                "grant" -> consent.grant(args[2], "usage_statistics")
                else -> error("unknown op ${args[1]}")
            }
            println("ack ${receipt.seq}")
        }
    }
}

/** Issue #11: two JVMs on one store file. */
class TwoProcessTest {
    private val dir: File = Files.createTempDirectory("consentkit-2jvm").toFile()
    private val path = File(dir, "consent.db").path

    @AfterEach
    fun cleanUp() {
        dir.deleteRecursively()
    }

    private fun runSecondJvm(vararg args: String): String {
        val java = File(System.getProperty("java.home"), "bin/java").path
        val classpath = System.getProperty("surefire.test.class.path") ?: System.getProperty("java.class.path")
        val command = mutableListOf(java, "-cp", classpath)
        System.getProperty("jna.library.path")?.let { command += "-Djna.library.path=$it" }
        command += SecondProcess::class.java.name
        command += args
        val process = ProcessBuilder(command).redirectErrorStream(true).start()
        val output = process.inputStream.bufferedReader().readText()
        assertTrue(process.waitFor(120, TimeUnit.SECONDS), "the second JVM finished")
        assertEquals(0, process.exitValue(), output)
        return output.lines().single { it.startsWith("ack ") }
    }

    @Test
    fun `a withdrawal in another JVM is honoured by this one's isAllowed, cached path included, and this one's next write succeeds`() {
        ConsentManager.openStrict(path).use { a ->
            a.grant("alice", "usage_statistics")
            assertTrue(a.isAllowed("alice", "usage_analytics"))
            assertTrue(a.isAllowed("alice", "usage_analytics"), "now served from the Kotlin cache")

            assertEquals("ack 2", runSecondJvm(path, "withdraw", "alice"))
            val acknowledged = System.nanoTime()
            val boundNanos = a.kit.crossProcessBoundMillis().toLong() * 1_000_000L
            while (true) {
                val started = System.nanoTime()
                val allowed = a.isAllowed("alice", "usage_analytics")
                if (started - acknowledged > boundNanos) {
                    assertFalse(allowed, "past the bound, the other JVM's withdrawal is honoured")
                    break
                }
            }
            assertFalse(a.isAllowed("alice", "usage_analytics"), "and the cached path agrees")

            val next = a.grant("alice", "usage_statistics")
            assertEquals(3UL, next.seq, "this JVM's next write builds on the other's withdrawal")
            assertEquals(3, a.history("alice").size)
            assertTrue(a.verify().intact)
        }
    }
}
