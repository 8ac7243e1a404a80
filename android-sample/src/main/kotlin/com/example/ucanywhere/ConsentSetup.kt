package com.example.ucanywhere

import android.Manifest
import android.app.Application
import android.content.pm.PackageManager
import android.os.Build
import androidx.core.content.ContextCompat
import com.consentkit.*
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.launch

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
        // The stored OS states are the last ones reported, possibly before the process was ended
        // by a revocation in the OS settings: report them at every process start too (a process
        // started for background work never resumes an Activity). Until that report is stored,
        // gates that need an OS permission stay off (osReported).
        appScope.launch { reportOsPermissions() }
    }

    /** True once this process has reported the OS permissions (the stored ones may be an earlier process's). */
    @Volatile
    private var osReported = false

    private val appScope = CoroutineScope(SupervisorJob() + Dispatchers.Default)

    /**
     * Called at start-up (onCreate) and from every Activity.onResume, in a coroutine (e.g. `lifecycleScope.launch`): the user may
     * have changed permissions in the OS settings. A change is a write (fsync), so it runs on
     * Dispatchers.IO. Both permissions the built-in catalog names are reported: photos_media needs
     * `photos`, which never reported stays not_determined and keeps photo sharing off.
     */
    suspend fun reportOsPermissions() {
        fun granted(permission: String) = ContextCompat.checkSelfPermission(this, permission) == PackageManager.PERMISSION_GRANTED
        val io = consent.suspending()
        io.reportOsPermission(OsPermission.CONTACTS, if (granted(Manifest.permission.READ_CONTACTS)) OsState.GRANTED else OsState.DENIED)
        val photos = when {
            Build.VERSION.SDK_INT >= 33 && granted(Manifest.permission.READ_MEDIA_IMAGES) -> OsState.GRANTED
            // Android 14's partial access: only the photos the user selected.
            Build.VERSION.SDK_INT >= 34 && granted(Manifest.permission.READ_MEDIA_VISUAL_USER_SELECTED) -> OsState.LIMITED
            Build.VERSION.SDK_INT < 33 && granted(Manifest.permission.READ_EXTERNAL_STORAGE) -> OsState.GRANTED
            else -> OsState.DENIED
        }
        io.reportOsPermission(OsPermission.PHOTOS, photos)
        osReported = true
    }

    /**
     * The onboarding dialog's answers, saved together: a force-quit mid-dialog records nothing.
     * Call from a coroutine (e.g. lifecycleScope): the write runs on Dispatchers.IO.
     */
    suspend fun saveOnboarding(userId: String, contacts: Boolean, photos: Boolean, statistics: Boolean) {
        fun choice(category: Category, yes: Boolean) =
            ConsentChoice(userId, category, if (yes) Action.GRANT else Action.REFUSE, Source.ONBOARDING)
        consent.suspending().record(
            listOf(choice(Category.DEVICE_CONTACTS, contacts), choice(Category.PHOTOS_MEDIA, photos), choice(Category.USAGE_STATISTICS, statistics)),
        )
    }

    /**
     * The gate before each contact lookup: in memory, no I/O, safe on the main thread. Off until
     * this process has reported the OS permissions: a revocation in the OS settings ends the
     * process, and the state stored before it still says granted.
     */
    fun mayLookUpContacts(userId: String): Boolean = osReported && consent.isAllowed(userId, Feature.CONTACT_LOOKUP)

    /** The gate before an analytics event: in memory, no I/O, safe on the main thread. */
    fun track(userId: String, event: String) {
        if (consent.isAllowed(userId, Feature.USAGE_ANALYTICS)) Analytics.send(event)
    }
}

object Analytics {
    fun send(event: String) = android.util.Log.d("analytics", event)
}
