package com.consentkit.bench

import com.consentkit.ConsentManager
import com.consentkit.JniGate
import com.consentkit.OsPermission
import com.consentkit.ffi.CheckResult
import com.consentkit.ffi.ConsentKit
import com.consentkit.ffi.OsState
import com.consentkit.ffi.Source
import java.io.File
import java.nio.ByteBuffer
import java.nio.channels.FileChannel
import java.nio.file.Files
import java.nio.file.StandardOpenOption

/**
 * `make bench-kotlin`: the Kotlin rows of BENCHMARKS.md, each against a reference measured in the
 * same JVM, interleaved round by round (ours, reference, ours, ...); each cell is the median of the
 * rounds. Writes the Markdown section to the file named by `-Dconsentkit.bench.out` (else stdout).
 * Not a test: timings belong to benchmarks, and no test asserts one.
 */
fun main() {
    val started = System.nanoTime()
    val dir = Files.createTempDirectory("consentkit-bench").toFile()
    val rows = mutableListOf<String>()
    try {
        val consent = ConsentManager.open(File(dir, "bench.db").path)
        val raw = ConsentKit.open(File(dir, "raw.db").path, null)
        SUBJECTS.forEach { consent.grant(it, "device_contacts") }
        raw.grant(SUBJECT, "device_contacts", null, Source.SETTINGS)
        consent.reportOsPermission(OsPermission.CONTACTS, OsState.GRANTED)
        raw.setOsPermission(OsPermission.CONTACTS.id, OsState.GRANTED)
        check(SUBJECTS.all { consent.isAllowed(it, FEATURE) } && raw.check(SUBJECT, FEATURE, null).allowed) { "the bench's check must be an allowed one" }

        // 1. the cached gate against a HashMap get, and the clock read a cached check needs; each
        // call takes the next of 16 subjects, so neither side's lookup can be hoisted out of the loop
        val map = HashMap<String, CheckResult>().apply { SUBJECTS.forEach { put(it, consent.check(it, FEATURE)) } }
        val (cached, mapGet) = interleaved(rounds = 9, iterations = 2_000_000,
            ours = { consent.isAllowed(SUBJECTS[it and 15], FEATURE) }, reference = { map[SUBJECTS[it and 15]]!!.allowed })
        val (clock, _) = interleaved(rounds = 9, iterations = 2_000_000,
            ours = { System.nanoTime() and 1L == 0L }, reference = { map[SUBJECTS[it and 15]]!!.allowed })
        rows += row("Kotlin cached `isAllowed` (allowed, repeated; 16 subjects in turn)", ns(cached), "Kotlin `HashMap<String, CheckResult>.get`, 16 entries ${ns(mapGet)}", cached / mapGet, "<= 2x")
        rows += row("`System.nanoTime()`, the one clock read a cached check makes (cross-process bound and expiry as one monotonic deadline)", ns(clock),
            "the same `HashMap` get ${ns(mapGet)}", clock / mapGet, "(the floor is map get + this clock read)")

        // 2. the uncached check (a cache miss) against the cheapest uniffi call there is, and the
        // same check through uniffi's JNA path (what every miss cost before the JNI gate)
        check(JniGate.loaded) { "the JNI gate did not load" }
        val (uncached, floor) = interleaved(rounds = 9, iterations = 20_000,
            ours = { consent.checkUncached(SUBJECT, FEATURE, null).allowed }, reference = { !raw.isClosed() })
        val (viaJna, floorAgain) = interleaved(rounds = 5, iterations = 5_000,
            ours = { raw.check(SUBJECT, FEATURE, null).allowed }, reference = { !raw.isClosed() })
        val (_, jniFloor) = interleaved(rounds = 9, iterations = 20_000,
            ours = { consent.checkUncached(SUBJECT, FEATURE, null).allowed }, reference = { JniGate.layout() > 0 })
        rows += row("Kotlin uncached check (a cache miss: `ConsentManager` through the JNI gate)", ns(uncached),
            "a no-argument uniffi call through JNA (`ConsentKit.isClosed()`) ${ns(floor)}", uncached / floor, "<= 2x that floor")
        rows += row("the same check through uniffi on JNA (every miss before the JNI gate)", ns(viaJna),
            "a no-argument uniffi call through JNA ${ns(floorAgain)}", viaJna / floorAgain,
            "the miss above must be >= 10x faster than this: it is ${"%.0f".format(viaJna / uncached)}x")
        rows += row("Kotlin uncached check through the JNI gate", ns(uncached),
            "a no-argument JNI call into the same library (`JniGate.layout()`) ${ns(jniFloor)}", uncached / jniFloor, "informational (the JNI floor)")

        // 3. a durable write and a read: ConsentKit against a plain Kotlin store
        val log = FileChannel.open(File(dir, "plain.log").toPath(), StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.APPEND)
        val line = "{\"seq\":1,\"subject\":\"$SUBJECT\",\"category\":\"usage_statistics\",\"action\":\"grant\",\"source\":\"settings\",\"at\":1768467600000}\n".toByteArray()
        val plain = HashMap<String, String>()
        val (write, plainWrite) = interleaved(rounds = 5, iterations = 60,
            ours = { consent.grant(SUBJECT, "usage_statistics").seq > 0UL },
            reference = {
                log.write(ByteBuffer.wrap(line))
                log.force(true)
                plain["$SUBJECT/usage_statistics"] = "granted"
                true
            })
        rows += row("Kotlin durable `grant` (one event, fsynced before return)", us(write),
            "plain Kotlin store: append the same event as a JSON line + `FileChannel.force(true)` ${us(plainWrite)} (sqlite-jdbc is not in the offline set)",
            write / plainWrite, "informational")
        val (read, plainRead) = interleaved(rounds = 9, iterations = 20_000,
            ours = { consent.status(SUBJECT, "usage_statistics").since != null }, reference = { plain["$SUBJECT/usage_statistics"] != null })
        rows += row("Kotlin `status(subject, category)` (in memory, through JNA)", ns(read),
            "plain Kotlin store: `HashMap` get of the same status ${ns(plainRead)}", read / plainRead, "informational")
        log.close()
        consent.close()
        raw.shutdown()
        raw.destroy()
    } finally {
        dir.deleteRecursively()
    }
    val seconds = (System.nanoTime() - started) / 1_000_000_000
    val text = buildString {
        appendLine("### Kotlin (`bindings/kotlin/src/test/kotlin/com/consentkit/bench/CheckBench.kt`)")
        appendLine()
        appendLine("JVM ${System.getProperty("java.version")}, the release cdylib through JNA ${com.sun.jna.Native.VERSION}. Ours and the reference run in the same JVM, interleaved round by round; each cell is the median of the rounds. Took $seconds s.")
        appendLine()
        appendLine("| figure | ours | reference, same run | ratio | goal | command |")
        appendLine("|---|---|---|---|---|---|")
        rows.forEach { appendLine(it) }
        appendLine()
        appendLine("Where the time goes: a cached hit is two map lookups (subject, then feature; a `String` caches its hash) and one `System.nanoTime()`, which the cross-process bound needs, so the floor is the map get plus that clock read, not the map get alone. A uniffi call on JNA allocates JNA `Structure`s (the call status, a `RustBuffer` per String argument and per answer), each a `com.sun.jna.Memory` registered in JNA's global map and cleaner (JFR: `Memory.<init>` -> `ConcurrentHashMap.put` on top), and makes a crossing per String argument: tens of microseconds per call on this machine, even with no argument. The JNI gate (`bindings/src/jni.rs`) is one JNI call with the three strings and a `long[]` for the answer.")
        appendLine()
        appendLine("Load average (1 min) at the end of the run: ${File("/proc/loadavg").takeIf { it.exists() }?.readText()?.substringBefore(' ') ?: "n/a"}; the machine is shared, so read the ratios.")
    }
    val out = System.getProperty("consentkit.bench.out")
    if (out.isNullOrEmpty()) print(text) else File(out).writeText(text).also { print(text) }
}

private const val SUBJECT = "alice"
private const val FEATURE = "contact_lookup"
private val SUBJECTS = Array(16) { "user-$it" }

/** Keeps the JIT from dropping a measured call. */
@Volatile private var sink = 0

/** Nanoseconds per call of [op], timed over [iterations] calls. */
private inline fun perCall(iterations: Int, op: (Int) -> Boolean): Double {
    var hits = 0
    val t0 = System.nanoTime()
    for (i in 0 until iterations) if (op(i)) hits++
    val took = System.nanoTime() - t0
    sink += hits
    return took.toDouble() / iterations
}

/** Medians of [rounds] rounds of [ours] and [reference], alternating, after a warm-up of each. */
private inline fun interleaved(rounds: Int, iterations: Int, ours: (Int) -> Boolean, reference: (Int) -> Boolean): Pair<Double, Double> {
    perCall(iterations, ours)
    perCall(iterations, reference)
    val a = DoubleArray(rounds)
    val b = DoubleArray(rounds)
    for (r in 0 until rounds) {
        a[r] = perCall(iterations, ours)
        b[r] = perCall(iterations, reference)
    }
    a.sort()
    b.sort()
    return a[rounds / 2] to b[rounds / 2]
}

private fun ns(nanos: Double) = if (nanos < 100) "%.1f ns".format(nanos) else "%.0f ns".format(nanos)
private fun us(nanos: Double) = "%.1f µs".format(nanos / 1000)
private fun row(figure: String, ours: String, reference: String, ratio: Double, goal: String) =
    "| $figure | $ours | $reference | %.2fx | $goal | `make bench-kotlin` |".format(ratio)
