package quickstart

import com.consentkit.*
import com.consentkit.testing.ManualClock
import com.consentkit.testing.openWithClock
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import java.nio.file.Files
import java.time.Duration
import java.time.Instant

/**
 * The README's "Tests of your app" as a client's test: the hand-set clock comes from the
 * `test-fixtures` classifier (a test-scope dependency), never from the main jar.
 */
class ManualClockClientTest {
    @Test
    fun `a grant runs out on the hand-set clock`() {
        val dir = Files.createTempDirectory("quickstart-client-clock").toFile()
        val clock = ManualClock(Instant.parse("2026-01-15T09:00:00Z"))
        val consent = ConsentManager.openWithClock("$dir/consent.db", clock = clock)
        val receipt = consent.grant("alice", Category.USAGE_STATISTICS, Source.ONBOARDING)
        assertTrue(consent.isAllowed("alice", Feature.USAGE_ANALYTICS))
        clock.now = receipt.validUntil!!.plus(Duration.ofSeconds(1))
        assertFalse(consent.isAllowed("alice", Feature.USAGE_ANALYTICS), "denied once the grant's lifetime is over")
        assertEquals(Status.EXPIRED, consent.status("alice", Category.USAGE_STATISTICS).status)
        consent.close()
        dir.deleteRecursively()
    }
}
