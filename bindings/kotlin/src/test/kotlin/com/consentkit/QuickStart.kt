// The README's Kotlin quick start, compiled and run by QuickStartTest: the imports and the body
// between the markers are compared with the README block line by line. Keep both in step.
// This file is deliberately in another package: it sees only what `import com.consentkit.*` gives.
package quickstart

import com.consentkit.*
import kotlinx.coroutines.launch

fun quickStart(filesDir: String, userId: String, scope: kotlinx.coroutines.CoroutineScope, sendAnalytics: () -> Unit) {
    // quick-start:begin
    val consent = ConsentManager.open("$filesDir/consent.db") // once per process (keep it in Application); fails closed
    if (consent.shouldAsk(userId, Category.USAGE_STATISTICS)) {
        consent.grant(userId, Category.USAGE_STATISTICS, Source.ONBOARDING) // the user tapped "Allow"
    }
    consent.reportOsPermission(OsPermission.CONTACTS, OsState.GRANTED) // from the permission callback
    if (consent.isAllowed(userId, Feature.USAGE_ANALYTICS)) sendAnalytics() // in memory, main-thread safe
    scope.launch { consent.changes(userId).collect { println("${it.category}: ${it.status}") } }
    scope.launch { consent.suspending().withdraw(userId, Category.USAGE_STATISTICS) } // disk write off the main thread
    // quick-start:end
}
