package com.example.ucanywhere

import android.Manifest
import android.app.Application
import android.content.pm.PackageManager
import androidx.core.content.ContextCompat
import com.consentkit.*

/** One ConsentManager for the process, opened fail-closed at start-up. */
class UCAnywhereApp : Application() {
    lateinit var consent: ConsentManager
        private set

    override fun onCreate() {
        super.onCreate()
        consent = ConsentManager.open(filesDir.resolve("consent.db").path)
        consent.unavailableReason?.let { why ->
            // The record could not be read: features that need consent stay off.
            android.util.Log.e("consent", "consent store unavailable (${why.kind}): ${why.message}")
            // A damaged file: move it aside (kept for support) and start afresh; ask the user again.
            if (why.canQuarantine) consent = consent.quarantineAndReopen().manager
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
    /** Call from a coroutine (e.g. lifecycleScope): the write runs on Dispatchers.IO. */
    suspend fun saveOnboarding(userId: String, contacts: Boolean, photos: Boolean, statistics: Boolean) {
        fun choice(category: Category, yes: Boolean) =
            ConsentChoice(userId, category.id, if (yes) Action.GRANT else Action.REFUSE, null, Source.ONBOARDING)
        consent.suspending().record(
            listOf(choice(Category.DEVICE_CONTACTS, contacts), choice(Category.PHOTOS_MEDIA, photos), choice(Category.USAGE_STATISTICS, statistics)),
        )
    }

    /** The gate before an analytics event: in memory, no I/O, safe on the main thread. */
    fun track(userId: String, event: String) {
        if (consent.isAllowed(userId, Feature.USAGE_ANALYTICS)) Analytics.send(event)
    }
}

object Analytics {
    fun send(event: String) = android.util.Log.d("analytics", event)
}
