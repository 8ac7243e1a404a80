package com.consentkit.bench

import com.consentkit.ConsentManager
import com.consentkit.OsPermission
import com.consentkit.ffi.ConsentKit
import com.consentkit.ffi.OsState
import java.nio.file.Files

/**
 * `make bench-kotlin`: the gate check through the Kotlin cache versus a JNA call every time.
 * Prints nanoseconds per check and the ratio. Not a test: timings belong to benchmarks.
 */
fun main() {
    val dir = Files.createTempDirectory("bench").toFile()
    val consent = ConsentManager.open("${dir.path}/bench.db")
    val raw = ConsentKit.open("${dir.path}/raw.db", null)
    consent.grant("alice", "device_contacts")
    raw.grant("alice", "device_contacts", null, com.consentkit.ffi.Source.SETTINGS)
    consent.reportOsPermission(OsPermission.CONTACTS, OsState.GRANTED)
    raw.setOsPermission(OsPermission.CONTACTS.id, OsState.GRANTED)
    fun perCheck(iterations: Int, check: () -> Boolean): Double {
        repeat(iterations / 10) { check() } // warm-up
        val runs = (1..7).map {
            val t0 = System.nanoTime()
            repeat(iterations) { check() }
            (System.nanoTime() - t0).toDouble() / iterations
        }.sorted()
        return runs[3]
    }
    val jna = perCheck(50_000) { raw.check("alice", "contact_lookup", null).allowed }
    val cached = perCheck(2_000_000) { consent.isAllowed("alice", "contact_lookup") }
    println("kotlin check through JNA every call: %.0f ns".format(jna))
    println("kotlin check through the cached gate: %.0f ns".format(cached))
    println("ratio jna/cached = %.1f".format(jna / cached))
    consent.close()
    raw.destroy()
    dir.deleteRecursively()
}
