package com.consentkit

import com.consentkit.ffi.Action
import com.consentkit.ffi.ConsentKitException
import com.consentkit.ffi.ConsentChoice
import com.consentkit.ffi.OsState
import com.consentkit.ffi.Source
import com.consentkit.testing.ManualClock
import com.consentkit.testing.openWithClock
import org.json.JSONArray
import org.json.JSONObject
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.DynamicTest
import org.junit.jupiter.api.TestFactory
import java.io.File
import java.nio.file.Files
import java.time.Instant

/** The Kotlin runner of tests/conformance: every scenario through [ConsentManager] (cached gate included). */
class ConformanceTest {
    private val repo = File(System.getProperty("consentkit.repo") ?: "../..")
    private val tests = File(repo, "tests")

    private fun millis(text: String) = Instant.parse(text).toEpochMilli()
    private fun policy(ref: String): String? = if (ref == "builtin") null else File(tests, ref).readText()
    private inline fun <reified E : Enum<E>> enumOf(text: String): E = enumValueOf(text.uppercase())
    private fun JSONObject.str(key: String): String? = if (has(key) && !isNull(key)) getString(key) else null

    /** ConsentKitException.UnknownCategory -> "unknown_category". */
    private fun kind(e: ConsentKitException) = e.javaClass.simpleName.replace(Regex("([a-z])([A-Z])"), "$1_$2").lowercase()

    private fun run(m: ConsentManager, step: JSONObject): JSONObject {
        val subject = { step.getString("subject") }
        val category = { step.getString("category") }
        val source = { enumOf<Source>(step.getString("source")) }
        val out = JSONObject()
        when (val op = step.getString("do")) {
            "grant" -> m.grant(subject(), category(), source(), step.str("scope"))
            "refuse" -> m.refuse(subject(), category(), source(), step.str("scope"))
            "withdraw" -> m.withdraw(subject(), category(), source(), step.str("scope"))
            "object" -> m.objectTo(subject(), category(), source())
            "withdraw_objection" -> m.withdrawObjection(subject(), category(), source())
            "batch" -> {
                val list = step.getJSONArray("decisions")
                m.record((0 until list.length()).map { i ->
                    val d = list.getJSONObject(i)
                    ConsentChoice(d.getString("subject"), d.getString("category"), enumOf<Action>(d.getString("action")), d.str("scope"), enumOf<Source>(d.getString("source")))
                })
            }
            "os" -> m.reportOsPermission(OsPermission(step.getString("permission")), OsStates.named(step.getString("state")))
            "os_state" -> out.put("state", m.osPermission(OsPermission(step.getString("permission"))).name.lowercase())
            "under_age" -> m.markUnderAge(subject(), step.getBoolean("value"), source())
            "erase" -> m.erase(subject(), source())
            "import" -> m.import(File(tests, step.getString("document")).readText())
            "check" -> {
                val d = m.check(subject(), step.getString("feature"), step.str("scope"))
                out.put("allowed", d.allowed).put("limited", d.limited)
                out.put("reasons", JSONArray(d.reasons.map { JSONArray(listOf(it.code.name.lowercase(), it.category)) }))
            }
            "status" -> {
                val s = m.status(subject(), category())
                out.put("status", s.status.name.lowercase()).put("since", s.since?.toEpochMilli() ?: JSONObject.NULL)
            }
            "should_ask" -> out.put("value", m.shouldAsk(subject(), category()))
            "verify" -> m.verify().let { out.put("intact", it.intact).put("events", it.events) }
            else -> error("unknown step $op")
        }
        return out
    }

    private fun compare(at: String, expect: JSONObject, got: JSONObject) {
        for (key in expect.keySet()) {
            val wanted = expect.get(key)
            val actual = got.opt(key)
            when {
                key == "since" && wanted is String -> assertEquals(millis(wanted), got.getLong("since"), "$at: since")
                wanted is JSONArray -> assertEquals(wanted.toString(), (actual as JSONArray).toString(), "$at: $key")
                wanted is Number -> assertEquals(wanted.toLong(), (actual as Number).toLong(), "$at: $key")
                else -> assertEquals(wanted, actual, "$at: $key")
            }
        }
    }

    @TestFactory
    fun scenarios(): List<DynamicTest> {
        val files = File(tests, "conformance/scenarios").listFiles { f -> f.name.endsWith(".json") }!!.sortedBy { it.name }
        assertTrue(files.size >= 25, "at least 25 scenarios")
        return files.map { file ->
            DynamicTest.dynamicTest(file.nameWithoutExtension) {
                val scenario = JSONObject(file.readText())
                val dir = Files.createTempDirectory("conformance").toFile()
                val db = File(dir, "c.db").path
                val clock = ManualClock(Instant.parse(scenario.getString("start")))
                var m = ConsentManager.openWithClock(db, policy(scenario.getString("policy")), clock)
                val steps = scenario.getJSONArray("steps")
                try {
                    for (i in 0 until steps.length()) {
                        val step = steps.getJSONObject(i)
                        val at = "${scenario.getString("name")} step $i (${step.getString("do")})"
                        step.str("at")?.let { clock.now = Instant.parse(it) }
                        when (step.getString("do")) {
                            "reopen" -> { m.close(); m = ConsentManager.openWithClock(db, policy(step.getString("policy")), clock); continue }
                            "open_damaged" -> {
                                m.close()
                                val damaged = File(dir, "damaged.db").apply { writeBytes(ByteArray(4096) { 0x5A }) }
                                m = ConsentManager.open(damaged.path, policy(scenario.getString("policy")))
                                assertTrue(m.unavailable != null)
                                continue
                            }
                        }
                        val expect = step.optJSONObject("expect") ?: JSONObject()
                        val result = runCatching { run(m, step) }
                        val error = result.exceptionOrNull()
                        when {
                            expect.has("error") -> {
                                assertTrue(error is ConsentKitException, "$at: expected error ${expect.get("error")}, got ${result.getOrNull() ?: error}")
                                assertEquals(expect.getString("error"), kind(error as ConsentKitException), "$at: ${error.message}")
                            }
                            error != null -> throw AssertionError("$at: unexpected error", error)
                            else -> compare(at, expect, result.getOrThrow())
                        }
                    }
                } finally {
                    m.close()
                    dir.deleteRecursively()
                }
            }
        }
    }
}
