package com.consentkit

import com.consentkit.ffi.LogSink
import com.consentkit.ffi.logLevel
import com.consentkit.ffi.setLogLevel
import com.consentkit.ffi.setLogSink

/** A log record's severity: a level lets through itself and everything more severe. */
typealias LogLevel = com.consentkit.ffi.LogLevel

/** One log record: its [LogLevel], the Rust module that wrote it (`target`), and the message. */
typealias LogRecord = com.consentkit.ffi.LogRecord

/**
 * Where ConsentKit's log goes. Without a sink, records go to Logcat (tag `ConsentKit`) on Android
 * and nowhere on a desktop JVM; with one, to the sink only (Timber, SLF4J, a test's capture).
 * The default level is [LogLevel.WARN].
 *
 * No record at any level carries a subject id, a scope or an export document; a record that must
 * name a subject carries the store's salted subject reference.
 *
 * ```
 * ConsentKitLog.install { r -> Timber.tag("ConsentKit").log(priorityOf(r.level), r.message) }
 * ConsentKitLog.level = LogLevel.INFO
 * ```
 */
object ConsentKitLog {
    /** The level in force; records less severe are not even formatted. */
    var level: LogLevel
        get() = logLevel()
        set(value) = setLogLevel(value)

    /**
     * Sends every record to [sink] instead of the platform's log. Called on whichever thread
     * logged: keep it thread-safe and quick. An exception (or `Error`) from [sink] loses that
     * record only.
     */
    fun install(sink: (LogRecord) -> Unit) {
        setLogSink(object : LogSink {
            override fun log(record: LogRecord) {
                try {
                    sink(record)
                } catch (e: Throwable) {
                    // A failing sink must not fail the ConsentKit call that logged. Not only
                    // Exception: an Error would reach JNA, which prints its text (app data).
                }
            }
        })
    }

    /** Back to the platform's log (Logcat on Android, nothing on a desktop JVM). */
    fun uninstall() = setLogSink(null)
}

