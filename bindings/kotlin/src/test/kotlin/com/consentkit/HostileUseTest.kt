package com.consentkit

import com.consentkit.ffi.ConsentKitException
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import kotlinx.coroutines.flow.first
import java.io.File
import java.nio.file.Files

/** What a hostile caller tries against the Kotlin API, each a defect found by review (rev-platform). */
class HostileUseTest : TempStoreTest("consentkit-hostile") {

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

    @Test
    fun `a changes Flow whose collection fails on a malformed subject keeps nothing registered`(): Unit = kotlinx.coroutines.runBlocking {
        repeat(50) {
            assertThrows<ConsentKitException.InvalidInput> { consent.changes(" alice").collect {} }
            assertThrows<ConsentKitException.InvalidInput> { consent.changes("bob\uD800").collect {} }
        }
        assertEquals(0, consent.liveFlows, "every failed collection was forgotten (each leaked its channel until close)")
        val first = kotlinx.coroutines.withTimeout(10_000) { consent.changes("alice").first() }
        assertEquals("user_information", first.category)
        assertEquals(0, consent.liveFlows, "a finished collection is forgotten too")
    }
}

/** A catalog's ids are any text without white space or control characters, not only ASCII. */
class NonAsciiCatalogTest {
    private val dir: File = Files.createTempDirectory("consentkit-unicode").toFile()
    // An emoji is outside the BMP (four UTF-8 bytes; modified UTF-8, which JNI strings use, writes it as a surrogate pair).
    private val photos = "fotos_\uD83D\uDCF8"
    private val stats = "statistiques_donn\u00e9es"
    private val policy = """
        {"id": "unicode", "version": "1", "consent_lifetime": "P12M", "reask_after_refusal": "P6M",
         "age_of_digital_consent": 16, "children": "not_served",
         "categories": [
           {"id": "$photos", "title": "Photos", "description": "d", "legal_basis": "consent", "retention": "P1Y"},
           {"id": "$stats", "title": "Stats", "description": "d", "legal_basis": "consent", "retention": "P1Y"}],
         "features": [{"id": "partage_\uD83D\uDCF8", "title": "Share", "categories": ["$photos", "$stats"]}]}
    """.trimIndent()
    private val consent = ConsentManager.open(File(dir, "consent.db").path, policy)

    @AfterEach
    fun cleanUp() {
        consent.close()
        dir.deleteRecursively()
    }

    @Test
    fun `a denial names non-ASCII categories exactly, through the JNI gate as through uniffi`() {
        assertTrue(JniGate.loaded)
        val feature = "partage_\uD83D\uDCF8"
        val viaUniffi = consent.kit.check("alice", feature, null)
        assertEquals(listOf(photos, stats), viaUniffi.reasons.map { it.category })
        val viaJni = JniGate.check(JniGate.tokenFor(consent.kit), "alice", feature, null)?.decision
        assertEquals(viaUniffi, viaJni, "the JNI gate's answer")
        assertEquals(viaUniffi, consent.check("alice", feature), "the manager's (cache miss)")
        assertEquals(viaUniffi, consent.check("alice", feature), "the manager's (cached)")
        consent.grant("alice", photos)
        assertEquals(listOf(stats), consent.check("alice", feature).reasons.map { it.category })
    }
}

/** The handle [ConsentManager.observe] returns, closed as AutoCloseable users do: more than once, and from its own callback. */
class ObserveHandleTest {
    private val dir: File = Files.createTempDirectory("consentkit-observe").toFile()
    private val consent = ConsentManager.open(File(dir, "consent.db").path)

    @AfterEach
    fun cleanUp() {
        consent.close()
        dir.deleteRecursively()
    }

    @Test
    fun `closing an observation twice, or after the manager closed, is a no-op`() {
        val told = java.util.concurrent.atomic.AtomicInteger()
        val observation = consent.observe("alice") { told.incrementAndGet() }
        observation.close()
        observation.close() // AutoCloseable users (use {}, a finally) may close again
        val other = consent.observe("alice") {}
        consent.close()
        other.close()
        other.close()
        assertTrue(told.get() <= 8, "nothing told after close: ${told.get()}")
    }

    @Test
    fun `an observation closed from inside its own callback is told nothing more`() {
        val told = java.util.concurrent.atomic.AtomicInteger()
        val first = java.util.concurrent.CountDownLatch(1)
        val assigned = java.util.concurrent.CountDownLatch(1) // the first call may come before observe returns
        lateinit var observation: AutoCloseable
        observation = consent.observe("alice") {
            assigned.await()
            told.incrementAndGet()
            observation.close()
            observation.close()
            first.countDown()
        }
        assigned.countDown()
        assertTrue(first.await(10, java.util.concurrent.TimeUnit.SECONDS))
        consent.grant("alice", Category.USAGE_STATISTICS)
        val witness = java.util.concurrent.CountDownLatch(1)
        consent.observe("alice") { if (it.category == "usage_statistics") witness.countDown() }.use {
            assertTrue(witness.await(10, java.util.concurrent.TimeUnit.SECONDS))
        }
        assertEquals(1, told.get(), "closed in its first call: no later call")
    }
}

/** Many writers and many checkers at once, each writer on its own subject. */
class ManyWritersTest {
    private val dir: File = Files.createTempDirectory("consentkit-writers").toFile()
    private val consent = ConsentManager.open(File(dir, "consent.db").path)

    @AfterEach
    fun cleanUp() {
        consent.close()
        dir.deleteRecursively()
    }

    @Test
    fun `while four threads grant and withdraw, no check between a withdrawal's return and the next grant allows`() {
        val subjects = List(4) { "user-$it" }
        // Per subject: even = withdrawn (a withdrawal returned, no grant started since), odd = a grant may be in force.
        val phase = java.util.concurrent.atomic.AtomicLongArray(subjects.size)
        val stop = java.util.concurrent.atomic.AtomicBoolean(false)
        val violations = java.util.concurrent.atomic.AtomicInteger()
        val checks = java.util.concurrent.atomic.AtomicLong()
        val failures = java.util.concurrent.ConcurrentLinkedQueue<Throwable>()
        val writers = subjects.mapIndexed { i, subject ->
            Thread {
                try {
                    repeat(50) {
                        phase.incrementAndGet(i) // odd: granting
                        consent.grant(subject, Category.USAGE_STATISTICS)
                        consent.withdraw(subject, Category.USAGE_STATISTICS)
                        phase.incrementAndGet(i) // even: the withdrawal returned
                    }
                } catch (t: Throwable) {
                    failures += t
                }
            }
        }
        val checkers = List(4) { k ->
            Thread {
                try {
                    var n = 0
                    while (!stop.get()) {
                        val i = (n++ + k) % subjects.size
                        val before = phase.get(i)
                        val allowed = consent.isAllowed(subjects[i], Feature.USAGE_ANALYTICS)
                        if (allowed && before % 2 == 0L && phase.get(i) == before) violations.incrementAndGet()
                        checks.incrementAndGet()
                    }
                } catch (t: Throwable) {
                    failures += t
                }
            }
        }
        (writers + checkers).forEach { it.start() }
        writers.forEach { it.join() }
        stop.set(true)
        checkers.forEach { it.join() }
        assertTrue(failures.isEmpty(), failures.joinToString { it.toString() })
        assertEquals(0, violations.get(), "allowed after a withdrawal returned (of ${checks.get()} checks)")
        subjects.forEach { assertEquals(100, consent.history(it).size) }
        assertTrue(consent.verify().intact)
    }
}

/** An unknown id in an error message is escaped like a bad subject: no raw control character reaches a log line. */
class EscapedIdsTest {
    private val dir: File = Files.createTempDirectory("consentkit-escaped").toFile()
    private val consent = ConsentManager.open(File(dir, "consent.db").path)

    @AfterEach
    fun cleanUp() {
        consent.close()
        dir.deleteRecursively()
    }

    @Test
    fun `unknown feature and category ids with control characters are named escaped`() {
        val feature = assertThrows<ConsentKitException.UnknownFeature> { consent.check("alice", "usage_analytics\u0000\n\u001b[2J") }
        assertEquals("unknown feature 'usage_analytics\\0\\n\\u{1b}[2J'", feature.message)
        val category = assertThrows<ConsentKitException.UnknownCategory> { consent.grant("alice", "usage\nstatistics") }
        assertEquals("unknown category 'usage\\nstatistics'", category.message)
        assertThrows<ConsentKitException.UnknownCategory> { consent.status("alice", "x\u0000") }.also {
            assertTrue(it.message!!.none { c -> c.isISOControl() }, it.message)
        }
    }
}

/** close() called on two threads at once: each returns only once the file is free. */
class ConcurrentCloseTest {
    private val dir: File = Files.createTempDirectory("consentkit-close").toFile()
    private val path = File(dir, "consent.db").path

    @AfterEach
    fun cleanUp() {
        ConsentKitLog.uninstall()
        ConsentKitLog.level = LogLevel.WARN
        dir.deleteRecursively()
    }

    @Test
    fun `a second close while the first waits for a call in flight also waits, so a reopen after it is healthy`() {
        val consent = ConsentManager.open(path)
        consent.grant("alice", Category.USAGE_STATISTICS)
        // A call held in flight: an erase whose log record the sink holds until released.
        val inFlight = java.util.concurrent.CountDownLatch(1)
        val release = java.util.concurrent.CountDownLatch(1)
        ConsentKitLog.level = LogLevel.INFO
        ConsentKitLog.install { record ->
            if (record.message.contains("erased")) {
                inFlight.countDown()
                release.await()
            }
        }
        val eraser = Thread { consent.erase("alice") }.apply { start() }
        assertTrue(inFlight.await(30, java.util.concurrent.TimeUnit.SECONDS), "the erase is in flight")
        val first = Thread { consent.close() }.apply { start() }
        while (!consent.kit.isClosed()) Thread.yield() // the first close has begun and waits for the erase
        var reopened: ConsentManager? = null
        val second = Thread {
            consent.close()
            reopened = ConsentManager.open(path)
        }.apply { start() }
        // Wait for the second close to return or to wait as the first does (how long is no assertion).
        second.join(2_000)
        release.countDown()
        listOf(eraser, first, second).forEach { it.join() }
        val again = reopened!!
        try {
            assertEquals(null, again.unavailableReason, "the file was free when the second close returned")
            assertEquals(0, again.history("alice").count { it.action == Action.GRANT }, "the erase in flight finished first")
        } finally {
            again.close()
        }
    }
}

/** Bad sync limits and the Java view of the OS permission calls (rev-platform 2). */
class SyncLimitAndJavaTest : TempStoreTest("consentkit-hostile2") {

    @Test
    fun `a syncBatch limit of 0 or below is InvalidInput naming it, not a batch of one`() {
        consent.grant("alice", Category.USAGE_STATISTICS)
        for (limit in listOf(0, -1, Int.MIN_VALUE)) {
            val e = assertThrows<ConsentKitException.InvalidInput>("limit $limit") { consent.syncBatch("dev", limit) }
            assertTrue(e.message!!.contains("'$limit'"), e.message)
        }
        assertEquals(1L, consent.syncBatch("dev", 5000)!!.count, "above 1000 is at most 1000, as the core takes it")
        assertEquals(1, consent.pendingSync().size, "nothing acknowledged")
    }

    @Test
    fun `Java callers find reportOsPermission, osPermission and the state names by name, declaring ConsentKitException`() {
        val manager = ConsentManager::class.java
        val report = manager.getMethod("reportOsPermission", String::class.java, OsState::class.java)
        val read = manager.getMethod("osPermission", String::class.java)
        assertTrue(report.exceptionTypes.contains(ConsentKitException::class.java))
        report.invoke(consent, "camera", OsState.DENIED)
        assertEquals(OsState.DENIED, read.invoke(consent, "camera"))
        val named = OsStates::class.java.getMethod("named", String::class.java)
        assertTrue(java.lang.reflect.Modifier.isStatic(named.modifiers), "OsStates.named is static for Java")
        assertTrue(named.exceptionTypes.contains(ConsentKitException::class.java))
        assertEquals(OsState.LIMITED, named.invoke(null, "limited"))
        val parse = OsPermission::class.java.getMethod("parse", String::class.java)
        assertTrue(java.lang.reflect.Modifier.isStatic(parse.modifiers), "OsPermission.parse is static for Java")
        assertTrue(parse.exceptionTypes.contains(ConsentKitException::class.java))
    }
}
