package com.consentkit

import com.sun.jna.Callback
import com.sun.jna.Native
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import java.util.Collections
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit

/**
 * A listener or log sink that throws a `Throwable` that is no `Exception` (an `AssertionError` from
 * `assert`, a `StackOverflowError`, any other `Error`) is handled as one that throws an exception:
 * uniffi's callback code catches only `Exception`, so such an error went past it to JNA, whose
 * default handler printed its text (app data) and told Rust the call succeeded, so ConsentKit
 * logged nothing at error. Now ConsentKit logs it, without its text, and JNA sees nothing.
 */
class ListenerErrorTest : TempStoreTest("consentkit-listener-error") {
    private val secret = "Secret4Qw"
    private val reachedJna: MutableList<Throwable> = Collections.synchronizedList(mutableListOf())
    private val jnaDefault: Callback.UncaughtExceptionHandler = Native.getCallbackExceptionHandler()

    init {
        Native.setCallbackExceptionHandler { _, e -> reachedJna += e }
    }

    @AfterEach
    fun restore() {
        Native.setCallbackExceptionHandler(jnaDefault)
        ConsentKitLog.uninstall()
        ConsentKitLog.level = LogLevel.WARN
    }

    @Test
    fun `an observer that throws an Error is logged at error without its text, and JNA never sees it`() {
        val records = Collections.synchronizedList(mutableListOf<LogRecord>())
        val logged = CountDownLatch(1)
        ConsentKitLog.install { r ->
            records += r
            if (r.level == LogLevel.ERROR && r.message.contains("listener threw")) logged.countDown()
        }
        val calls = CountDownLatch(1)
        val observation = consent.observe("alice") { calls.countDown(); throw ListenerBug("$secret: the listener failed") }
        consent.grant("alice", Category.USAGE_STATISTICS, Source.ONBOARDING)
        assertTrue(calls.await(10, TimeUnit.SECONDS), "the observer was called")
        assertTrue(logged.await(10, TimeUnit.SECONDS), "ConsentKit logged the failing observer at error: ${records.map { it.message }}")
        observation.close()
        assertEquals(emptyList<Throwable>(), reachedJna.toList(), "nothing reached JNA's handler")
        assertTrue(records.none { it.message.contains(secret) }, "the error's text is not logged")
        assertTrue(consent.isAllowed("alice", Feature.USAGE_ANALYTICS), "the write stands")
    }

    @Test
    fun `a log sink that throws an Error loses that record only, and JNA never sees it`() {
        ConsentKitLog.level = LogLevel.INFO
        val calls = CountDownLatch(1)
        ConsentKitLog.install { calls.countDown(); throw AssertionError(secret) }
        // An erasure logs at info (its count), on this thread, before it returns.
        consent.grant("bob", Category.USAGE_STATISTICS, Source.ONBOARDING)
        consent.erase("bob")
        assertTrue(calls.await(10, TimeUnit.SECONDS), "the sink was called")
        assertEquals(emptyList<Throwable>(), reachedJna.toList(), "nothing reached JNA's handler")
        assertEquals(Status.NOT_ASKED, consent.status("bob", Category.USAGE_STATISTICS).status, "the erasure stands")
    }
}

/** An `Error`, not an `Exception`: what a listener's bug (a failed `assert`, a stack overflow) throws. */
private class ListenerBug(message: String) : Error(message)
