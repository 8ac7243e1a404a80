package com.consentkit

import com.consentkit.ffi.Action
import com.consentkit.ffi.ConsentChoice
import com.consentkit.ffi.ConsentKitException
import com.consentkit.ffi.OsState
import com.consentkit.ffi.Source
import com.consentkit.testing.ManualClock
import com.consentkit.testing.openWithClock
import org.json.JSONArray
import org.json.JSONObject
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import java.io.File
import java.nio.file.Files
import java.time.Instant
import java.util.Collections

/**
 * The log sink from Kotlin, and the privacy test: at [LogLevel.TRACE], every conformance scenario
 * with recognisable subject ids and scopes, plus export, import, erasure, purge, verify and
 * throwing listeners, must leave no subject id, scope or export document in the captured log.
 */
class LogPrivacyTest {
    private val tests = File(File(System.getProperty("consentkit.repo") ?: "../.."), "tests")
    private val subjectMark = "Subj7Zq"
    private val scopeMark = "Scope9Xk"

    private fun policy(ref: String): String? = if (ref == "builtin") null else File(tests, ref).readText()
    private inline fun <reified E : Enum<E>> enumOf(text: String): E = enumValueOf(text.uppercase())
    private fun JSONObject.str(key: String): String? = if (has(key) && !isNull(key)) getString(key) else null
    private fun usable(v: String) = v.isNotBlank() && v.length <= 40 && v.none { it.isISOControl() }

    /** Printable ASCII without a space at either end, at most 256 bytes: ids the core's rule always accepts. */
    private fun plainId(v: String) = v.isNotEmpty() && v.length <= 256 && v.all { it in ' '..'~' } && v.first() != ' ' && v.last() != ' '

    /**
     * Observes [subject] with a throwing listener, or returns null when the core refuses the id
     * (a scenario's malformed id, e.g. one with a zero-width space): the core decides, and only its
     * `InvalidInput` naming the subject is taken as a refusal; a refused well-formed id fails.
     */
    private fun observeUnlessRefused(m: ConsentManager, subject: String): AutoCloseable? = try {
        m.observe(subject) { c -> throw IllegalStateException("listener failed for ${c.subject}") }
    } catch (e: ConsentKitException.InvalidInput) {
        assertFalse(plainId(subject), "observe refused the well-formed id '$subject': ${e.message}")
        assertTrue(e.message.orEmpty().startsWith("invalid subject "), "observe('$subject') refused something else: ${e.message}")
        null
    }

    @AfterEach
    fun restore() {
        ConsentKitLog.uninstall()
        ConsentKitLog.level = LogLevel.WARN
    }

    /** Rewrites subjects and scopes to marked values; collects every value that must not be logged. */
    private fun mark(value: Any?, secrets: MutableList<String>) {
        when (value) {
            is JSONObject -> for (key in value.keySet().toList()) {
                val v = value.get(key)
                if ((key == "subject" || key == "scope") && v is String) {
                    val marked = if (!usable(v)) v else if (key == "subject") "$subjectMark-$v" else "$scopeMark-$v"
                    value.put(key, marked)
                    if (marked.trim().length >= 4) secrets += marked
                } else {
                    mark(v, secrets)
                }
            }
            is JSONArray -> for (i in 0 until value.length()) mark(value.get(i), secrets)
        }
    }

    /** Every subject and scope in a document an `import` step reads (imported as it is: it is sealed). */
    private fun documentSecrets(value: Any?, secrets: MutableList<String>) {
        when (value) {
            is JSONObject -> for (key in value.keySet()) {
                val v = value.get(key)
                if ((key == "subject" || key == "scope") && v is String) { if (v.trim().length >= 4) secrets += v } else documentSecrets(v, secrets)
            }
            is JSONArray -> for (i in 0 until value.length()) documentSecrets(value.get(i), secrets)
        }
    }

    private val steps = setOf("grant", "refuse", "withdraw", "object", "withdraw_objection", "batch", "os", "os_state", "under_age", "erase", "import", "check", "status", "should_ask", "verify")

    private fun drive(m: ConsentManager, step: JSONObject, secrets: MutableList<String>) {
        val subject = step.str("subject") ?: ""
        val category = step.str("category") ?: ""
        val source = step.str("source")?.let { enumOf<Source>(it) } ?: Source.SETTINGS
        assertTrue(step.getString("do") in steps, "unknown step ${step.getString("do")}")
        runCatching {
            when (step.getString("do")) {
                "grant" -> m.grant(subject, category, source, step.str("scope"))
                "refuse" -> m.refuse(subject, category, source, step.str("scope"))
                "withdraw" -> m.withdraw(subject, category, source, step.str("scope"))
                "object" -> m.objectTo(subject, category, source)
                "withdraw_objection" -> m.withdrawObjection(subject, category, source)
                "batch" -> {
                    val list = step.getJSONArray("decisions")
                    m.record((0 until list.length()).map { i ->
                        val d = list.getJSONObject(i)
                        ConsentChoice(d.getString("subject"), d.getString("category"), enumOf<Action>(d.getString("action")), d.str("scope"), enumOf<Source>(d.getString("source")))
                    })
                }
                "os" -> m.reportOsPermission(OsPermission(step.getString("permission")), OsStates.named(step.getString("state")))
                "os_state" -> m.osPermission(OsPermission(step.getString("permission")))
                "under_age" -> m.markUnderAge(subject, step.getBoolean("value"), source)
                "erase" -> m.erase(subject, source)
                "import" -> {
                    val document = File(tests, step.getString("document")).readText()
                    documentSecrets(JSONObject(document), secrets)
                    m.import(document)
                }
                "check" -> m.check(subject, step.getString("feature"), step.str("scope"))
                "status" -> m.status(subject, category)
                "should_ask" -> m.shouldAsk(subject, category)
                "verify" -> m.verify()
                else -> error("unknown step ${step.getString("do")}")
            }
        }
    }

    @Test
    fun aSinkReceivesRecordsAtTheLevelSet() {
        assertEquals(LogLevel.WARN, ConsentKitLog.level, "default level")
        val got = Collections.synchronizedList(mutableListOf<LogRecord>())
        ConsentKitLog.install { got += it }
        val dir = Files.createTempDirectory("log").toFile()
        try {
            ConsentManager.open(File(dir, "a.db").path).close()
            assertTrue(got.none { it.message.contains("store opened") }, "info is below the default level: $got")
            ConsentKitLog.level = LogLevel.INFO
            assertEquals(LogLevel.INFO, ConsentKitLog.level)
            ConsentManager.open(File(dir, "a.db").path).close()
            assertTrue(got.any { it.level == LogLevel.INFO && it.message.contains("store opened") && it.target.startsWith("consentkit_core") }, "$got")
            // A throwing sink loses its record and breaks nothing.
            ConsentKitLog.install { throw IllegalStateException("sink down") }
            ConsentManager.open(File(dir, "a.db").path).use { assertTrue(it.verify().intact) }
        } finally {
            dir.deleteRecursively()
        }
    }

    @Test
    fun noIdentifierReachesTheLogAtTrace() {
        val got = Collections.synchronizedList(mutableListOf<LogRecord>())
        ConsentKitLog.install { got += it }
        ConsentKitLog.level = LogLevel.TRACE
        val secrets = mutableListOf<String>()
        val files = File(tests, "conformance/scenarios").listFiles { f -> f.name.endsWith(".json") }!!.sortedBy { it.name }
        assertTrue(files.size >= 25, "the conformance scenarios are there")
        for (file in files) {
            val scenario = JSONObject(file.readText())
            val mine = mutableListOf<String>()
            mark(scenario, mine)
            val dir = Files.createTempDirectory("privacy").toFile()
            val db = File(dir, "c.db").path
            val clock = ManualClock(Instant.parse(scenario.getString("start")))
            val pol = policy(scenario.getString("policy"))
            var m = ConsentManager.openWithClock(db, pol, clock)
            val subjects = mine.filter { it.startsWith(subjectMark) }.distinct()
            val listeners = subjects.mapNotNull { s -> observeUnlessRefused(m, s) }.toMutableList()
            try {
                val steps = scenario.getJSONArray("steps")
                for (i in 0 until steps.length()) {
                    val step = steps.getJSONObject(i)
                    step.str("at")?.let { clock.now = Instant.parse(it) }
                    when (step.getString("do")) {
                        "reopen" -> { listeners.forEach { it.close() }; listeners.clear(); m.close(); m = ConsentManager.openWithClock(db, policy(step.getString("policy")), clock) }
                        "open_damaged" -> {
                            m.close()
                            val damaged = File(dir, "damaged.db").apply { writeBytes(ByteArray(4096) { 0x5A }) }
                            m = ConsentManager.open(damaged.path, pol)
                        }
                        else -> drive(m, step, mine)
                    }
                }
                subjects.forEachIndexed { i, s ->
                    runCatching { m.history(s); m.statuses(s) }
                    runCatching {
                        val doc = m.export(s)
                        ConsentManager.openWithClock(File(dir, "import-$i.db").path, pol, clock).use { other ->
                            runCatching { other.import(doc) }
                            runCatching { other.import(doc.replaceFirst("\"refuse\"", "\"grant\"")) }
                        }
                    }
                    runCatching { m.erase(s, Source.SUPPORT) }
                }
                clock.now = clock.now.plusMillis(20L * 365 * 86_400_000)
                runCatching { m.purge() }
                runCatching { m.verify() }
            } finally {
                listeners.forEach { it.close() }
                m.close()
                dir.deleteRecursively()
            }
            secrets += mine
        }
        Thread.sleep(200) // observer threads drain
        ConsentKitLog.uninstall()
        val log = synchronized(got) { got.joinToString("\n") { "${it.level} ${it.target} ${it.message}" } }
        for (expected in listOf("store opened", "erased", "retention purge", "failing closed")) {
            assertTrue(log.contains(expected), "the log lacks '$expected':\n$log")
        }
        assertTrue(secrets.size > 50, "the scenarios' subjects and scopes were collected")
        for (marker in listOf(subjectMark, scopeMark, "consentkit-export", "\"history\"")) {
            assertFalse(log.contains(marker), "'$marker' in the log:\n$log")
        }
        for (secret in secrets.distinct()) {
            assertFalse(log.contains(secret), "'$secret' in the log:\n$log")
        }
    }
}
