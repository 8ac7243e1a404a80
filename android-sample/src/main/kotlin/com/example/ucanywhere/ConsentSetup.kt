package com.example.ucanywhere

import android.Manifest
import android.app.Application
import android.content.pm.PackageManager
import androidx.core.content.ContextCompat
import com.consentkit.ConsentManager
import com.consentkit.OsPermission
import com.consentkit.ffi.Action
import com.consentkit.ffi.ConsentChoice
import com.consentkit.ffi.OsState
import com.consentkit.ffi.Source

/** One ConsentManager for the process, opened fail-closed at start-up. */
class UCAnywhereApp : Application() {
    lateinit var consent: ConsentManager
        private set

    override fun onCreate() {
        super.onCreate()
        consent = ConsentManager.open(filesDir.resolve("consent.db").path)
        consent.unavailable?.let { why ->
            // The record could not be read: features that need consent stay off. Tell the user and
            // offer to ask again; keep the damaged file for support.
            android.util.Log.e("consent", "consent store unavailable: $why")
        }
    }

    /** Call from every Activity.onResume: the user may have changed permissions in the OS settings. */
    fun reportOsPermissions() {
        val contacts = ContextCompat.checkSelfPermission(this, Manifest.permission.READ_CONTACTS)
        consent.reportOsPermission(
            OsPermission.CONTACTS,
            if (contacts == PackageManager.PERMISSION_GRANTED) OsState.GRANTED else OsState.DENIED,
        )
    }

    /** The onboarding dialog's answers, saved together: a force-quit mid-dialog records nothing. */
    fun saveOnboarding(userId: String, contacts: Boolean, photos: Boolean, statistics: Boolean) {
        fun decision(category: String, yes: Boolean) =
            ConsentChoice(userId, category, if (yes) Action.GRANT else Action.REFUSE, null, Source.ONBOARDING)
        consent.record(
            listOf(decision("device_contacts", contacts), decision("photos_media", photos), decision("usage_statistics", statistics)),
        )
    }

    /** The gate before an analytics event: in memory, no I/O, safe on the main thread. */
    fun track(userId: String, event: String) {
        if (consent.isAllowed(userId, "usage_analytics")) Analytics.send(event)
    }
}

object Analytics {
    fun send(event: String) = android.util.Log.d("analytics", event)
}
