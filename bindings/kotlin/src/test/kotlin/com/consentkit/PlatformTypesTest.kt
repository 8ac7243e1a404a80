package com.consentkit

import com.consentkit.ffi.CheckResult
import com.consentkit.ffi.ConsentChoice
import com.consentkit.ffi.ErasureReport
import com.consentkit.ffi.PurgeReport
import com.consentkit.ffi.Receipt
import com.consentkit.ffi.Source
import com.consentkit.ffi.VerifyReport
import com.consentkit.testing.ManualClock
import com.consentkit.testing.openWithClock
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import java.io.File
import java.nio.file.Files
import java.time.Duration
import java.time.Instant
import kotlin.reflect.KClass
import kotlin.reflect.KType
import kotlin.reflect.full.declaredMemberProperties
import kotlin.reflect.full.memberFunctions
import kotlin.reflect.full.memberProperties
import kotlin.reflect.full.companionObject

/** Issue #10 items 1 and 2: platform types, names that say what they are, no test API in the main surface. */
class PlatformTypesTest {
    private val dir: File = Files.createTempDirectory("consentkit-types").toFile()
    private val start = Instant.parse("2026-01-15T09:00:00Z")
    private val clock = ManualClock(start)
    private val consent = ConsentManager.openWithClock(File(dir, "consent.db").path, null, clock)

    @AfterEach
    fun cleanUp() {
        consent.close()
        dir.deleteRecursively()
    }

    @Test
    fun `times are java time Instants`() {
        val receipt: Receipt = consent.grant("alice", "usage_statistics", Source.ONBOARDING)
        assertEquals(start, receipt.at)
        val validUntil: Instant = receipt.validUntil!!
        assertEquals(Instant.parse("2027-02-15T09:00:00Z"), validUntil, "P13M from the grant")
        assertEquals(start, consent.status("alice", "usage_statistics").since)
        assertEquals(validUntil, consent.check("alice", "usage_analytics").validUntil)
        clock.advance(Duration.ofDays(400))
        assertEquals(start.plus(Duration.ofDays(400)), clock.now)
    }

    private fun KType.unsigned(): Boolean = classifier in setOf(ULong::class, UInt::class, UShort::class, UByte::class)

    @Test
    fun `no unsigned integers where a user counts things`() {
        val counts = mapOf(ErasureReport::class to "erasedEvents", PurgeReport::class to "removedEvents", VerifyReport::class to "events")
        for ((type, name) in counts) {
            assertEquals(Long::class, type.memberProperties.single { it.name == name }.returnType.classifier, "$type.$name")
        }
        val records: List<KClass<*>> = listOf(ErasureReport::class, PurgeReport::class, VerifyReport::class, CheckResult::class, Receipt::class)
        // Sequence numbers and purpose versions are identifiers, not counts: the only unsigned fields.
        val unsigned = records.flatMap { t -> t.declaredMemberProperties.filter { it.returnType.unsigned() }.map { "${t.simpleName}.${it.name}" } }
        assertEquals(listOf("Receipt.purposeVersion", "Receipt.seq", "VerifyReport.firstBadSeq"), unsigned.sorted())
        val api = ConsentManager::class.memberFunctions.flatMap { f -> f.parameters.drop(1).map { f.name to it } }
            .filter { (_, p) -> p.type.unsigned() }.map { (f, p) -> "$f(${p.name})" }
        assertEquals(listOf("ackSync(upToSeq)"), api)
        assertTrue(ConsentManager::class.memberFunctions.none { it.returnType.unsigned() })
    }

    @Test
    fun `the gate's answer and a recorded choice are named for what they are`() {
        val answer: CheckResult = consent.check("alice", "usage_analytics")
        assertEquals("usage_analytics", answer.feature)
        val choice = ConsentChoice("alice", "usage_statistics", com.consentkit.ffi.Action.GRANT, null, Source.ONBOARDING)
        assertEquals(1, consent.record(listOf(choice)).size)
        assertThrows<ClassNotFoundException> { Class.forName("com.consentkit.ffi.Decision") }
        assertThrows<ClassNotFoundException> { Class.forName("com.consentkit.ffi.DecisionInput") }
    }

    @Test
    fun `the hand-set clock is not in the public ConsentManager API`() {
        val mentionsClock = (ConsentManager::class.memberFunctions + ConsentManager::class.companionObject!!.memberFunctions)
            .filter { f -> f.name.contains("clock", ignoreCase = true) || f.parameters.any { "Clock" in it.type.toString() } }
            .map { it.name }
        assertEquals(emptyList<String>(), mentionsClock)
        assertEquals("com.consentkit.testing", ManualClock::class.java.packageName, "test fixtures live in their own package and jar")
    }

    /**
     * The generated `com.consentkit.ffi.TestClock` and `ConsentKit.openWithClock` stay in the main
     * jar (one generated file, and the tests of the shipped library use them): their KDoc, which an
     * IDE shows at every use, says they are for tests only and names the production way.
     */
    @Test
    fun `the generated test clock is marked for tests only where an IDE shows it`() {
        val repo = File(System.getProperty("consentkit.repo") ?: "../..")
        val generated = File(repo, "bindings/kotlin/target/generated-sources/uniffi/com/consentkit/ffi/consentkit_ffi.kt").readText()
        fun kdocBefore(declaration: String): String {
            val at = generated.indexOf(declaration)
            assertTrue(at >= 0, "no '$declaration' in the generated bindings")
            val start = generated.lastIndexOf("/**", at)
            return generated.substring(start, at)
        }
        for (declaration in listOf("open class TestClock", "fun `openWithClock`(")) {
            val kdoc = kdocBefore(declaration)
            assertTrue("FOR TESTS ONLY" in kdoc && "open_fail_closed" in kdoc, "$declaration: $kdoc")
        }
    }
}
