package com.consentkit

import com.consentkit.ffi.OsPermission
import com.consentkit.ffi.OsState
import com.consentkit.ffi.Source
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.launch

/** The README's Kotlin quick start, compiled and run by [QuickStartTest]. Keep both in step. */
fun quickStart(filesDir: String, userId: String, scope: CoroutineScope, sendAnalytics: () -> Unit) {
    // quick-start:begin
    val consent = ConsentManager.open("$filesDir/consent.db") // once per process (keep it in Application); fails closed
    if (consent.shouldAsk(userId, "usage_statistics")) {
        consent.grant(userId, "usage_statistics", Source.ONBOARDING) // the user tapped "Allow"
    }
    consent.reportOsPermission(OsPermission.CONTACTS, OsState.GRANTED) // from the permission callback
    if (consent.isAllowed(userId, "usage_analytics")) sendAnalytics() // in memory, no JNA call when cached
    scope.launch { consent.changes(userId).collect { println("${it.category}: ${it.status}") } }
    consent.withdraw(userId, "usage_statistics") // from the settings screen
    check(!consent.isAllowed(userId, "usage_analytics")) // denied the moment withdraw returns
    // quick-start:end
}
