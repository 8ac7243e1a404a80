package com.consentkit

import com.consentkit.ffi.ConsentKitException
import com.consentkit.ffi.OsState
import com.consentkit.ffi.ReasonCode
import com.consentkit.ffi.Source
import com.consentkit.testing.ManualClock
import com.consentkit.testing.openWithClock
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import java.io.File
import java.nio.file.Files
import java.time.Instant

/**
 * The JNI gate (`bindings/src/jni.rs`) answers exactly what uniffi's `check` answers, and falls
 * back to uniffi (typed errors) for everything else.
 */
class JniGateTest {
    private val dir: File = Files.createTempDirectory("consentkit").toFile()
    private val clock = ManualClock(Instant.parse("2026-01-15T09:00:00Z"))
    private val consent = ConsentManager.openWithClock(File(dir, "consent.db").path, null, clock)

    @AfterEach
    fun cleanUp() {
        consent.close()
        dir.deleteRecursively()
    }

    @Test
    fun `the JNI entry is loaded on this JVM, from the library uniffi uses`() {
        assertTrue(JniGate.loaded, "the JNI gate did not load: every cache miss would go through JNA")
        assertTrue(JniGate.tokenFor(consent.kit) >= 0)
    }

    @Test
    fun `every kind of answer is the same through JNI and through uniffi`() {
        val token = JniGate.tokenFor(consent.kit)
        var answered = 0
        fun same(subject: String, feature: String, scope: String? = null) {
            val viaUniffi = runCatching { consent.kit.check(subject, feature, scope) }
            val viaJni = JniGate.check(token, subject, feature, scope)?.decision
            val viaManager = runCatching { consent.check(subject, feature, scope) }
            viaUniffi.exceptionOrNull()?.let { error -> // e.g. a scope on a feature that takes none
                assertNull(viaJni, "$subject $feature $scope: JNI answered where uniffi threw $error")
                assertEquals(error.javaClass, viaManager.exceptionOrNull()?.javaClass, "the manager throws the same typed error")
                return
            }
            assertEquals(viaUniffi.getOrThrow(), viaJni, "$subject $feature $scope")
            assertEquals(viaUniffi.getOrThrow(), viaManager.getOrThrow())
            answered++
        }
        val features = listOf("contact_lookup", "contact_sync", "photo_sharing", "usage_analytics", "calling", "messaging", "business_directory")
        fun all(subject: String) = features.forEach { same(subject, it); same(subject, it, "item-1") }
        all("alice") // not asked, OS permissions not determined: several reasons
        consent.refuse("alice", "photos_media", Source.ONBOARDING)
        consent.grant("alice", "usage_statistics")
        consent.grant("alice", "device_contacts", scope = "item-1")
        consent.reportOsPermission(OsPermission.PHOTOS, OsState.LIMITED)
        consent.reportOsPermission(OsPermission.CONTACTS, OsState.DENIED)
        all("alice")
        consent.grant("alice", "photos_media")
        consent.reportOsPermission(OsPermission.CONTACTS, OsState.GRANTED)
        all("alice") // allowed with a validUntil, limited, scoped
        assertTrue(consent.check("alice", "photo_sharing").limited)
        assertTrue(consent.check("alice", "usage_analytics").validUntil != null)
        consent.markUnderAge("kid", true, Source.ONBOARDING)
        all("kid")
        consent.withdraw("alice", "usage_statistics")
        all("alice")
        clock.now = Instant.parse("2028-01-15T09:00:00Z") // every grant expired
        all("alice")
        assertTrue(consent.check("alice", "photo_sharing").reasons.any { it.code == ReasonCode.CONSENT_EXPIRED })
        assertTrue(answered >= 6 * features.size, "most checks were answers, not errors: $answered")
    }

    @Test
    fun `an answer carries how long it stays proven, read in the same call, within the bound`() {
        consent.grant("alice", "usage_statistics")
        val boundNanos = consent.kit.crossProcessBoundMillis().toLong() * 1_000_000L
        val answer = JniGate.check(JniGate.tokenFor(consent.kit), "alice", "usage_analytics", null)!!
        assertTrue(answer.decision.allowed)
        assertTrue(answer.proofNanos in 1..boundNanos, "a just-proven snapshot: ${answer.proofNanos} ns of $boundNanos")
        consent.suspend() // nothing proves the snapshot again
        val suspended = JniGate.check(JniGate.tokenFor(consent.kit), "alice", "usage_analytics", null)!!
        assertTrue(suspended.proofNanos <= answer.proofNanos, "the proof only runs down while suspended")
        consent.resume()
    }

    @Test
    fun `a store that failed closed denies through JNI as through uniffi`() {
        val damaged = File(dir, "damaged.db").apply { writeBytes(ByteArray(8192) { 7 }) }
        ConsentManager.open(damaged.path).use { closedGate ->
            val answer = JniGate.check(JniGate.tokenFor(closedGate.kit), "alice", "usage_analytics", null)!!.decision
            assertEquals(closedGate.kit.check("alice", "usage_analytics", null), answer)
            assertEquals(ReasonCode.STORE_UNAVAILABLE, answer.reasons.single().code)
        }
    }

    @Test
    fun `errors fall back to uniffi and stay typed`() {
        val token = JniGate.tokenFor(consent.kit)
        assertNull(JniGate.check(token, "alice", "no_such_feature", null))
        assertThrows<ConsentKitException.UnknownFeature> { consent.check("alice", "no_such_feature") }
        assertNull(JniGate.check(token, "", "calling", null))
        assertThrows<ConsentKitException.InvalidInput> { consent.check("", "calling") }
        assertNull(JniGate.check(Long.MAX_VALUE, "alice", "calling", null), "an unknown token answers nothing")
        assertNull(JniGate.check(-1, "alice", "calling", null))
        consent.kit.shutdown()
        assertNull(JniGate.check(token, "alice", "calling", null), "a closed store answers nothing")
        assertThrows<ConsentKitException.Closed> { consent.kit.check("alice", "calling", null) }
    }
}
