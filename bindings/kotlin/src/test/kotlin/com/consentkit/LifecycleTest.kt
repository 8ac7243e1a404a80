package com.consentkit

import com.consentkit.ffi.ConsentKitException
import com.consentkit.ffi.Source
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import java.io.File
import java.lang.reflect.Modifier
import java.nio.file.Files
import java.util.concurrent.CountDownLatch
import java.util.concurrent.atomic.AtomicBoolean
import java.util.concurrent.atomic.AtomicReference

/** Issue #10 items 5 and 6: close is idempotent, frees the file at once, and later calls are typed errors. */
class LifecycleTest {
    private val dir: File = Files.createTempDirectory("consentkit-life").toFile()
    private val path = File(dir, "consent.db").path

    @AfterEach
    fun cleanUp() {
        dir.deleteRecursively()
    }

    @Test
    fun `close is idempotent and every call after it throws Closed, cached checks included`() {
        val consent = ConsentManager.openStrict(path)
        consent.grant("alice", "usage_statistics", Source.ONBOARDING)
        assertTrue(consent.isAllowed("alice", "usage_analytics")) // now cached on the Kotlin side
        consent.close()
        consent.close()
        assertThrows<ConsentKitException.Closed> { consent.isAllowed("alice", "usage_analytics") }
        assertThrows<ConsentKitException.Closed> { consent.check("alice", "usage_analytics") }
        assertThrows<ConsentKitException.Closed> { consent.withdraw("alice", "usage_statistics") }
        assertThrows<ConsentKitException.Closed> { consent.statuses("alice") }
        assertThrows<ConsentKitException.Closed> { consent.unavailable }
        assertThrows<ConsentKitException.Closed> { consent.history("alice") }
        assertThrows<ConsentKitException.Closed> { consent.observe("alice") {} }
        ConsentManager.openStrict(path).use { again -> assertTrue(again.isAllowed("alice", "usage_analytics")) }
    }

    @Test
    fun `after close returns the file is free even with calls in flight`() {
        repeat(10) { round ->
            val consent = ConsentManager.openStrict(path)
            val started = CountDownLatch(1)
            val stop = AtomicBoolean(false)
            val unexpected = AtomicReference<Throwable?>(null)
            val writer = Thread {
                var i = 0
                while (!stop.get()) {
                    try {
                        consent.grant("user-$round-${i++}", "usage_statistics")
                        started.countDown()
                    } catch (e: ConsentKitException.Closed) {
                        started.countDown()
                        break
                    } catch (e: Throwable) {
                        unexpected.set(e)
                        started.countDown()
                        break
                    }
                }
            }.apply { start() }
            started.await()
            consent.close()
            ConsentManager.open(path).use { again ->
                assertNull(again.unavailable, "reopened at once, not failed closed (round $round)")
                again.grant("check-$round", "usage_statistics")
            }
            stop.set(true)
            writer.join()
            assertNull(unexpected.get(), "a racing call gets Closed, nothing else: ${unexpected.get()}")
        }
    }

    @Test
    fun `changes Flow completes when the manager closes`(): Unit = runBlocking {
        val consent = ConsentManager.openStrict(path)
        val started = CountDownLatch(8)
        val collected = async(Dispatchers.Default) {
            consent.changes("alice").also { }.let { flow ->
                val seen = mutableListOf<String>()
                flow.collect { seen.add(it.category); started.countDown() }
                seen
            }
        }
        started.await()
        consent.close()
        val seen = withTimeout(10_000) { collected.await() }
        assertEquals(8, seen.size, "the initial states, then completion")
        assertTrue(consent.changes("alice").let { f -> runCatching { withTimeout(10_000) { f.toList() } } }.let { it.isSuccess && it.getOrThrow().isEmpty() },
            "a Flow collected after close completes at once")
    }

    @Test
    fun `every public method declares ConsentKitException for Java callers`() {
        val undeclared = ConsentManager::class.java.declaredMethods
            .filter { Modifier.isPublic(it.modifiers) && !it.isSynthetic && !it.name.contains('$') }
            .filter { it.name !in setOf("equals", "hashCode", "toString") }
            .filter { ConsentKitException::class.java !in it.exceptionTypes }
            .map { it.name }
        assertEquals(emptyList<String>(), undeclared)
    }
}
