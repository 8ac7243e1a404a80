package com.consentkit

import com.consentkit.ffi.Action
import com.consentkit.ffi.ConsentChoice
import com.consentkit.ffi.ConsentKitException
import com.consentkit.ffi.OsState
import com.consentkit.ffi.Source
import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.Runnable
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNotEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import java.io.File
import java.nio.file.Files
import java.util.concurrent.Executors
import java.util.concurrent.atomic.AtomicInteger
import kotlin.coroutines.CoroutineContext
import kotlin.reflect.KParameter
import kotlin.reflect.full.declaredMemberFunctions
import kotlin.reflect.full.memberFunctions

/** Issue #10 item 4: suspend variants of every disk-touching call, off the caller's thread. */
class SuspendingTest {
    private val dir: File = Files.createTempDirectory("consentkit-suspend").toFile()
    private val consent = ConsentManager.openStrict(File(dir, "consent.db").path)

    @AfterEach
    fun cleanUp() {
        consent.close()
        dir.deleteRecursively()
    }

    /** Runs on its own thread and counts dispatches, with the thread names the calls ran on. */
    private class Recording : CoroutineDispatcher() {
        val pool = Executors.newSingleThreadExecutor { Thread(it, "recording-io") }
        val dispatches = AtomicInteger()
        override fun dispatch(context: CoroutineContext, block: Runnable) {
            dispatches.incrementAndGet()
            pool.execute(block)
        }
    }

    /** Holds every dispatched block until the test runs it. */
    private class Held : CoroutineDispatcher() {
        val blocks = java.util.concurrent.LinkedBlockingQueue<Runnable>()
        override fun dispatch(context: CoroutineContext, block: Runnable) {
            blocks.add(block)
        }
        fun runAll() {
            while (true) (blocks.poll() ?: return).run()
        }
    }

    @Test
    fun `a withdrawal whose caller is cancelled before the dispatcher runs it is still recorded`(): Unit = runBlocking {
        consent.grant("alice", Category.USAGE_STATISTICS)
        assertTrue(consent.isAllowed("alice", Feature.USAGE_ANALYTICS))
        val held = Held()
        // The user turned the switch off and left the screen: its scope is cancelled while the write waits for a thread.
        val screen = launch(start = kotlinx.coroutines.CoroutineStart.UNDISPATCHED) {
            consent.suspending(held).withdraw("alice", Category.USAGE_STATISTICS)
        }
        screen.cancel()
        held.runAll()
        screen.join()
        assertFalse(consent.isAllowed("alice", Feature.USAGE_ANALYTICS), "the withdrawal was recorded, not dropped with the screen")
        assertEquals(listOf(Action.GRANT, Action.WITHDRAW), consent.history("alice").map { it.action })
    }

    @Test
    fun `an openSuspending whose caller is cancelled after the open ran leaves the file free`(): Unit = runBlocking {
        val other = File(dir, "other.db").path
        val held = Held()
        val screen = launch(start = kotlinx.coroutines.CoroutineStart.UNDISPATCHED) { ConsentManager.openSuspending(other, dispatcher = held) }
        held.runAll() // the open runs; its result waits for this (busy) thread
        screen.cancel() // the caller goes away before it gets the manager
        screen.join()
        ConsentManager.open(other).use { again ->
            assertEquals(null, again.unavailableReason, "the manager nobody received was closed, not left holding the file")
        }
    }

    @Test
    fun `suspend writes and reads run on the given dispatcher, not the caller's thread`(): Unit = runBlocking {
        val io = Recording()
        val s = consent.suspending(io)
        val caller = Thread.currentThread()
        consent.observe(null) { }.close()
        s.grant("alice", Category.USAGE_STATISTICS, Source.ONBOARDING)
        assertTrue(consent.isAllowed("alice", Feature.USAGE_ANALYTICS), "the cached gate sees the suspend write at once")
        s.record(listOf(ConsentChoice("bob", "photos_media", Action.REFUSE, null, Source.ONBOARDING)))
        s.reportOsPermission(OsPermission.CONTACTS, OsState.GRANTED)
        s.markUnderAge("kid")
        assertEquals(1, s.history("alice").count { it.action == Action.GRANT })
        assertTrue(s.export("alice").contains("consentkit-export/1"))
        assertTrue(s.verify().intact)
        assertEquals(consent.pendingSync(), s.pendingSync())
        assertEquals(4, s.pendingSync().size, "grant, refusal, OS permission, age")
        s.ackSync(1UL)
        s.withdraw("alice", "usage_statistics")
        assertFalse(consent.isAllowed("alice", "usage_analytics"))
        assertEquals(1L, s.erase("bob").erasedEvents)
        assertTrue(io.dispatches.get() >= 12, "every call dispatched: ${io.dispatches.get()}")
        assertEquals(caller, Thread.currentThread())
        io.pool.shutdown()
    }

    @Test
    fun `errors arrive typed from the suspend variants, and the default is Dispatchers IO`(): Unit = runBlocking {
        assertThrows<ConsentKitException.UnknownCategory> { consent.suspending().grant("alice", "nope") }
        val other = ConsentManager.openSuspending(File(dir, "other.db").path)
        var ranOn = ""
        kotlinx.coroutines.withContext(Dispatchers.IO) { ranOn = Thread.currentThread().name }
        assertNotEquals("", ranOn)
        other.suspending().close()
        assertThrows<ConsentKitException.Closed> { other.suspending().grant("alice", "usage_statistics") }
    }

    @Test
    fun `every disk-touching call has a suspend twin with the same parameters`() {
        val memoryOnly = setOf("check", "isAllowed", "status", "statuses", "shouldAsk", "osPermission", "changes", "statusesFlow", "observe", "suspending")
        fun sig(params: List<KParameter>) = params.filter { it.kind == KParameter.Kind.VALUE }.map { it.type }
        val blocking = ConsentManager::class.declaredMemberFunctions
            .filter { it.visibility == kotlin.reflect.KVisibility.PUBLIC && it.name !in memoryOnly }
            .map { it.name to sig(it.parameters) }.toSet()
        val suspending = SuspendingConsent::class.memberFunctions.filter { it.isSuspend }.map { it.name to sig(it.parameters) }.toSet()
        assertEquals(emptySet<Any>(), blocking - suspending, "blocking calls without a suspend twin")
    }
}
