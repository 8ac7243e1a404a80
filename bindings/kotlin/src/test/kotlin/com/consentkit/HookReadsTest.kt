package com.consentkit

import com.consentkit.ffi.CommitListener
import com.consentkit.ffi.ConsentKitException
import com.consentkit.ffi.Status
import com.consentkit.testing.ManualClock
import com.consentkit.testing.openWithClock
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import java.io.File
import java.nio.file.Files
import java.time.Instant
import java.util.Collections
import java.util.concurrent.CountDownLatch
import java.util.concurrent.Executors
import java.util.concurrent.TimeUnit

/** Issue #9 item 7: commit hooks and observers may read (sync after each commit) without deadlock. */
class HookReadsTest {
    private val dir: File = Files.createTempDirectory("consentkit-hooks").toFile()
    private val clock = ManualClock(Instant.parse("2026-01-15T09:00:00Z"))
    private val consent = ConsentManager.openWithClock(File(dir, "consent.db").path, null, clock)
    private val pool = Executors.newSingleThreadExecutor()

    @AfterEach
    fun cleanUp() {
        pool.shutdownNow()
        consent.close()
        dir.deleteRecursively()
    }

    @Test
    fun `a commit listener may read everything and its writes are refused with a typed error`() {
        val seen = Collections.synchronizedList(mutableListOf<String>())
        val handle = consent.kit.onCommit(object : CommitListener {
            override fun onCommit(generation: ULong) {
                // "Sync after each commit": read the outbox, the history, the export, the proof.
                seen += "pending=${consent.pendingSync().size} history=${consent.history("alice").size} " +
                    "export=${consent.export("alice").isNotEmpty()} verify=${consent.verify().intact} " +
                    "allowed=${consent.isAllowed("alice", "usage_analytics")}"
                try {
                    consent.grant("bob", "usage_statistics")
                    seen += "write allowed"
                } catch (e: ConsentKitException.WriteFromHook) {
                    seen += "write refused"
                }
            }
        })
        val done = pool.submit { consent.grant("alice", "usage_statistics") }
        done.get(30, TimeUnit.SECONDS) // a deadlock fails here instead of hanging
        handle.unregister()
        handle.destroy()
        assertEquals(listOf("pending=1 history=1 export=true verify=true allowed=true", "write refused"), seen.toList())
        assertTrue(consent.history("bob").isEmpty(), "the refused write wrote nothing")
    }

    @Test
    fun `an observer may read while the app keeps writing`() {
        val read = CountDownLatch(1)
        val closer = consent.observe(null) { change ->
            if (change.status == Status.WITHDRAWN && consent.history(change.subject).size >= 2 && consent.pendingSync().isNotEmpty()) {
                read.countDown()
            }
        }
        pool.submit {
            repeat(5) {
                consent.grant("alice", "usage_statistics")
                consent.withdraw("alice", "usage_statistics")
            }
        }.get(30, TimeUnit.SECONDS)
        assertTrue(read.await(30, TimeUnit.SECONDS), "the observer read the history and the outbox")
        closer.close()
    }
}
