package com.consentkit

import com.consentkit.ffi.ConsentKitException
import com.consentkit.testing.ManualClock
import com.consentkit.testing.openWithClock
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import java.io.File
import java.nio.file.Files
import java.time.Instant

/** Issue #10 item 9: OS permissions named by the catalog, from Kotlin. */
class OsPermissionTest {
    private val repo = File(System.getProperty("consentkit.repo") ?: "../..")
    private val dir = Files.createTempDirectory("osperm").toFile()
    private val catalog = File(repo, "tests/conformance/policies/fieldtrip_os_permissions.json").readText()
    private val consent = ConsentManager.openWithClock(File(dir, "c.db").path, catalog, ManualClock(Instant.parse("2026-01-15T09:00:00Z")))

    @AfterEach
    fun tearDown() {
        consent.close()
        dir.deleteRecursively()
    }

    /**
     * What the README tells apps to plan for: the last reported state survives a restart, so a
     * permission revoked while the app was not running reads as granted until the app reports it
     * again at launch; the report then denies at once.
     */
    @Test
    fun `the last reported state survives a reopen until the app reports again`() {
        val path = File(dir, "restart.db").path
        ConsentManager.openStrict(path).use {
            it.grant("alice", Category.DEVICE_CONTACTS, Source.ONBOARDING)
            it.reportOsPermission(OsPermission.CONTACTS, OsState.GRANTED)
        }
        ConsentManager.openStrict(path).use {
            assertEquals(OsState.GRANTED, it.osPermission(OsPermission.CONTACTS), "stored, not reset at open")
            assertTrue(it.isAllowed("alice", Feature.CONTACT_LOOKUP), "the stored state counts until a new report")
            it.reportOsPermission(OsPermission.CONTACTS, OsState.DENIED) // the launch-time report
            assertFalse(it.isAllowed("alice", Feature.CONTACT_LOOKUP))
        }
    }

    @Test
    fun `predefined constants are the catalog ids`() {
        assertEquals(
            listOf("contacts", "photos", "camera", "microphone", "location", "notifications", "calendar", "app_tracking_transparency"),
            OsPermission.PREDEFINED.map { it.id },
        )
        assertEquals(OsPermission.CAMERA, OsPermission.parse("camera"))
    }

    @Test
    fun `a permission never reported denies, a catalog's own id works like a predefined one`() {
        consent.grant("alice", "beacons")
        consent.grant("alice", "scanning")
        val beacons = OsPermission("bluetooth_scan")
        assertEquals(OsState.NOT_DETERMINED, consent.osPermission(beacons))
        assertEquals(ReasonCode.OS_PERMISSION_NOT_DETERMINED, consent.check("alice", "beacon_guide").reasons.single().code)
        consent.reportOsPermission(beacons, OsState.GRANTED)
        assertTrue(consent.isAllowed("alice", "beacon_guide"))
        assertFalse(consent.isAllowed("alice", "scan_ticket"), "camera never reported")
        consent.reportOsPermission(OsPermission.CAMERA, OsState.GRANTED)
        assertTrue(consent.isAllowed("alice", "scan_ticket"))
    }

    @Test
    fun `provisional notifications and partial photos allow, flagged limited`() {
        consent.grant("alice", "reminders")
        consent.grant("alice", "trip_photos")
        consent.reportOsPermission(OsPermission.NOTIFICATIONS, OsState.PROVISIONAL)
        consent.reportOsPermission(OsPermission.PHOTOS, OsState.LIMITED)
        for (feature in listOf("remind", "share_photos")) {
            val d = consent.check("alice", feature)
            assertTrue(d.allowed && d.limited, feature)
        }
        assertFalse(consent.check("bob", "remind").allowed, "an OS grant never stands in for consent")
    }

    @Test
    fun `a bad id or state name is InvalidInput naming it and changes nothing`() {
        consent.grant("alice", "beacons")
        val bad = assertThrows<ConsentKitException.InvalidInput> { consent.reportOsPermission(OsPermission("Bluetooth Scan"), OsState.GRANTED) }
        assertTrue(bad.message!!.contains("Bluetooth Scan"), bad.message)
        assertThrows<ConsentKitException.InvalidInput> { OsPermission.parse("x".repeat(65)) }
        val state = assertThrows<ConsentKitException.InvalidInput> { OsStates.named("authorized_always") }
        assertTrue(state.message!!.contains("authorized_always"), state.message)
        assertEquals(OsState.PROVISIONAL, OsStates.named("provisional"))
        assertFalse(consent.isAllowed("alice", "beacon_guide"))
    }
}
