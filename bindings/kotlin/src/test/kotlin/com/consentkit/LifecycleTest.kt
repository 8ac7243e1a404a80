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
import org.junit.jupiter.api.Assertions.assertFalse
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

    /** An app closing from its listener (a "delete my account" flow reacting to a change). */
    @Test
    fun `close from inside a listener releases the file, and the store opens again`() {
        val consent = ConsentManager.openStrict(path)
        val closedInside = CountDownLatch(1)
        val failure = AtomicReference<Throwable?>(null)
        consent.observe("alice") { change ->
            if (change.category == "usage_statistics" && change.status == com.consentkit.ffi.Status.GRANTED) {
                try { consent.close() } catch (e: Throwable) { failure.set(e) }
                closedInside.countDown()
            }
        }
        consent.grant("alice", "usage_statistics")
        assertTrue(closedInside.await(10, java.util.concurrent.TimeUnit.SECONDS), "the listener ran and close() returned")
        assertNull(failure.get(), "close() inside a listener: ${failure.get()}")
        assertThrows<ConsentKitException.Closed> { consent.isAllowed("alice", "usage_analytics") }
        ConsentManager.openStrict(path).use { again -> assertTrue(again.isAllowed("alice", "usage_analytics")) }
    }

    /**
     * A close from inside a call on the same thread (a commit listener runs inside the write) cannot
     * wait for that call: it refuses new calls at once and releases the file when the call returns,
     * with no error, no deadlock and no claim left on the file.
     */
    @Test
    fun `close from inside a call on the same thread completes when the call returns`() {
        val consent = ConsentManager.openStrict(path)
        val failure = AtomicReference<Throwable?>(null)
        val insideRefused = AtomicReference<Throwable?>(null)
        val hook = consent.kit.onCommit(object : com.consentkit.ffi.CommitListener {
            override fun onCommit(generation: ULong) {
                try { consent.close() } catch (e: Throwable) { failure.set(e) }
                insideRefused.set(runCatching { consent.statuses("bob") }.exceptionOrNull())
            }
        })
        consent.grant("alice", "usage_statistics") // the write that was running completes and is kept
        assertNull(failure.get(), "close() inside the write's commit listener: ${failure.get()}")
        assertTrue(insideRefused.get() is ConsentKitException.Closed, "a new call after close() is refused at once: ${insideRefused.get()}")
        assertThrows<ConsentKitException.Closed> { consent.grant("bob", "usage_statistics") }
        assertTrue(consent.kit.isClosed())
        ConsentManager.openStrict(path).use { again -> assertTrue(again.isAllowed("alice", "usage_analytics")) }
        hook.destroy()
        consent.close() // idempotent from outside too
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

    @Test
    fun `suspend starts no transaction until resume, with a typed error, and resume catches up`() {
        val consent = ConsentManager.openStrict(path)
        consent.grant("alice", "usage_statistics", Source.ONBOARDING)
        assertFalse(consent.isSuspended)
        consent.suspend()
        consent.suspend() // idempotent
        assertTrue(consent.isSuspended)
        val refused = assertThrows<ConsentKitException.Suspended> { consent.withdraw("alice", "usage_statistics") }
        assertTrue(refused.message!!.contains("suspended"), refused.message)
        assertThrows<ConsentKitException.Suspended> { consent.history("alice") }
        assertThrows<ConsentKitException.Suspended> { consent.refresh() }
        assertTrue(consent.isAllowed("alice", "usage_analytics"), "checks answer from memory within the bound")
        consent.resume()
        assertFalse(consent.isSuspended)
        assertEquals(1, consent.history("alice").size, "the refused withdrawal changed nothing")
        consent.withdraw("alice", "usage_statistics")
        assertFalse(consent.isAllowed("alice", "usage_analytics"))
        runBlocking {
            consent.suspending().suspend()
            assertTrue(consent.isSuspended)
            consent.suspending().resume()
            consent.suspending().refresh()
        }
        consent.close()
        assertThrows<ConsentKitException.Closed> { consent.suspend() }
    }
}
