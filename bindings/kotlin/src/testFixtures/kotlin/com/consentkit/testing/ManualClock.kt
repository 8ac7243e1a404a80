package com.consentkit.testing

import com.consentkit.ConsentManager
import com.consentkit.text
import com.consentkit.textOrNull
import com.consentkit.ffi.ConsentKit
import com.consentkit.ffi.ConsentKitException
import com.consentkit.ffi.TestClock
import java.time.Duration
import java.time.Instant

/**
 * A clock set by hand, for tests of code that uses ConsentKit (expiry, renewal, retention).
 * Ships in the `test-fixtures` artifact (`com.consentkit:consentkit-kotlin:<version>:test-fixtures`),
 * never in the main jar.
 */
class ManualClock(start: Instant) {
    internal val ffi = TestClock(start)

    /** The clock's time; setting it moves the clock (forwards or backwards). */
    var now: Instant
        get() = ffi.now()
        set(value) = ffi.set(value)

    /** Moves the clock forwards by [duration]. */
    fun advance(duration: Duration) {
        now = now.plus(duration)
    }
}

/**
 * Opens the store at [path] strictly (throws instead of failing closed) on [clock]: the test
 * counterpart of [ConsentManager.openStrict].
 */
@Throws(ConsentKitException::class)
fun ConsentManager.Companion.openWithClock(path: String, policyJson: String? = null, clock: ManualClock): ConsentManager =
    ConsentManager(ConsentKit.openWithClock(text("path", path), textOrNull("policy JSON", policyJson), clock.ffi), { clock.now }) {
        openWithClock(path, policyJson, clock)
    }
