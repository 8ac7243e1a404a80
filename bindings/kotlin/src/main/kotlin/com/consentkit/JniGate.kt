package com.consentkit

import com.consentkit.ffi.CheckResult
import com.consentkit.ffi.ConsentKit
import com.consentkit.ffi.Reason
import com.consentkit.ffi.ReasonCode
import com.sun.jna.NativeLibrary
import java.time.Instant

/**
 * The JNI gate: a cache miss of [ConsentManager.check] asks the core through one hand-written
 * JNI call (`bindings/src/jni.rs`) instead of uniffi's JNA call, whose per-call JNA structures
 * dominate a check (`make bench-kotlin`). It answers exactly what uniffi's `check` answers, with
 * the core's `proofRemainingNanos` read in the same call just before the check; where
 * it cannot (the JNI symbols are not loaded, a closed store, an unknown feature, bad input, a
 * panic), [check] returns null and the caller asks through uniffi, which throws the typed error.
 */
internal object JniGate {
    private const val LAYOUT = 3 // jni.rs LAYOUT: the header below, with the proof slot
    private const val ANSWERED = 1L // the zeros of an array the entry never wrote are no answer
    private const val ALLOWED = 1L
    private const val LIMITED = 2L
    private const val HAS_VALID_UNTIL = 4L
    private const val PROOF_NANOS = 4
    private const val HEADER = 5
    private const val MAX_REASONS = 24
    private val codes = ReasonCode.entries

    /**
     * True when the JNI entry is loaded from the very library uniffi loaded through JNA (the same
     * file, so the same registry of stores); false means every check goes through uniffi.
     */
    val loaded: Boolean = load()

    private fun load(): Boolean {
        // The library JNA loaded for uniffi (the same name uniffi's bindings ask JNA for), loaded
        // again by the JVM so that its JNI symbols bind: the same file, so the same process image.
        val name = System.getProperty("uniffi.component.consentkit_ffi.libraryOverride") ?: "consentkit_ffi"
        val loadedByTheJvm = runCatching { System.load(NativeLibrary.getInstance(name).file.absolutePath) }.isSuccess ||
            runCatching { System.loadLibrary("consentkit_ffi") }.isSuccess // Android: the APK's lib/<abi>/
        return loadedByTheJvm && runCatching { layout() == LAYOUT }.getOrDefault(false)
    }

    /** [kit]'s token for [check], or -1 when the entry is not loaded. */
    fun tokenFor(kit: ConsentKit): Long = if (loaded) com.consentkit.ffi.jniGateToken(kit).toLong() else -1L

    /**
     * The core's answer through JNI with how long it stays proven current, or null: then ask
     * through uniffi (it answers or throws the typed error).
     */
    fun check(token: Long, subject: String, feature: String, scope: String?): ProvenAnswer? {
        if (token < 0) return null
        val out = LongArray(HEADER + MAX_REASONS)
        val categories = try {
            nativeCheck(token, subject, feature, scope, out)
        } catch (e: LinkageError) {
            return null
        }
        if (out[0] != ANSWERED) return null
        val flags = out[1]
        val count = out[3].toInt()
        val reasons = if (count == 0) {
            emptyList()
        } else {
            val ids = categories?.split('\n') ?: return null
            if (ids.size != count) return null
            List(count) { i -> Reason(codes.getOrNull(out[HEADER + i].toInt()) ?: return null, ids[i]) }
        }
        val validUntil = if (flags and HAS_VALID_UNTIL != 0L) Instant.ofEpochMilli(out[2]) else null
        val proofNanos = out[PROOF_NANOS]
        if (proofNanos < 0) return null
        return ProvenAnswer(CheckResult(feature, flags and ALLOWED != 0L, flags and LIMITED != 0L, reasons, validUntil), proofNanos)
    }

    /** The entry's `long[]` layout version (a no-argument JNI call: the bench's JNI floor). */
    @JvmStatic external fun layout(): Int

    @JvmStatic private external fun nativeCheck(token: Long, subject: String, feature: String, scope: String?, out: LongArray): String?
}
