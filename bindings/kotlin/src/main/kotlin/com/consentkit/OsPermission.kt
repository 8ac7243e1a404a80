package com.consentkit

import com.consentkit.ffi.ConsentKitException
import com.consentkit.ffi.osPermissionNamed
import com.consentkit.ffi.osStateNamed

/**
 * An OS permission a category of the catalog depends on, by its snake_case id (the catalog's
 * `os_permission`). The common ones are constants; another catalog's own permission is
 * `OsPermission("bluetooth_scan")`. The id is validated when it reaches the SDK: a bad one
 * (not snake_case, longer than 64 bytes) throws `ConsentKitException.InvalidInput` naming it.
 * A permission never reported reads as [OsState.NOT_DETERMINED] and denies.
 */
@JvmInline
value class OsPermission(val id: String) {
    override fun toString(): String = id

    /** The predefined permissions. */
    companion object {
        /** The address book (`READ_CONTACTS`). */
        val CONTACTS = OsPermission("contacts")
        /** Photos and media; Android 14's partial (user-selected) access is [OsState.LIMITED]. */
        val PHOTOS = OsPermission("photos")
        /** The camera. */
        val CAMERA = OsPermission("camera")
        /** The microphone (`RECORD_AUDIO`). */
        val MICROPHONE = OsPermission("microphone")
        /** The location; approximate (coarse) only is [OsState.LIMITED]. */
        val LOCATION = OsPermission("location")
        /** Notifications (`POST_NOTIFICATIONS`; iOS's provisional is [OsState.PROVISIONAL]). */
        val NOTIFICATIONS = OsPermission("notifications")
        /** The calendar. */
        val CALENDAR = OsPermission("calendar")
        /** iOS App Tracking Transparency (for catalogs shared with an iOS app). */
        val APP_TRACKING_TRANSPARENCY = OsPermission("app_tracking_transparency")

        /** Every predefined permission. */
        val PREDEFINED: List<OsPermission> =
            listOf(CONTACTS, PHOTOS, CAMERA, MICROPHONE, LOCATION, NOTIFICATIONS, CALENDAR, APP_TRACKING_TRANSPARENCY)

        /** The permission `id`, validated now: throws `ConsentKitException.InvalidInput` naming a bad id. */
        @JvmStatic
        @Throws(ConsentKitException::class)
        @JvmName("parse") // Java: not the mangled name a value-class result gets
        fun parse(id: String): OsPermission = OsPermission(osPermissionNamed(text("OS permission", id)))
    }
}

/** Platform state names. */
object OsStates {
    /**
     * The [OsState] with this snake_case name (`granted`, `limited`, `provisional`, `denied`,
     * `not_determined`, `restricted`); any other name throws `ConsentKitException.InvalidInput`
     * naming it, never an allow.
     */
    @JvmStatic
    @Throws(ConsentKitException::class)
    fun named(name: String): OsState = osStateNamed(text("OS permission state", name))
}
