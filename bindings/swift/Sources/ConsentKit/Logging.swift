import Foundation
import ConsentKitFFI

/// A log record's severity: a level lets through itself and everything more severe.
public typealias LogLevel = ConsentKitFFI.LogLevel
/// One log record: its `level`, the Rust module that wrote it (`target`), and the `message`.
public typealias LogRecord = ConsentKitFFI.LogRecord

/// Where ConsentKit's log goes. Without a sink, records go to the unified log on Apple platforms
/// (subsystem `com.consentkit`, category the Rust module) and nowhere on Linux; with one, to the
/// sink only (`Logger`, a file, a test's capture). The default level is `.warn`.
///
/// No record at any level carries a subject id, a scope or an export document; a record that must
/// name a subject carries the store's salted subject reference.
///
/// ```swift
/// let logger = Logger(subsystem: "com.example.app", category: "ConsentKit")
/// ConsentKitLog.install { record in logger.log("\(record.message, privacy: .public)") }
/// ConsentKitLog.level = .info
/// ```
public enum ConsentKitLog {
    /// The level in force (`.warn` if it cannot be read); records less severe are not even formatted.
    public static var level: LogLevel {
        get { (try? logLevel()) ?? .warn }
        set { try? setLogLevel(level: newValue) }
    }

    /// Sends every record to `sink` instead of the platform's log. Called on whichever thread
    /// logged: keep it thread-safe and quick.
    public static func install(_ sink: @escaping @Sendable (LogRecord) -> Void) {
        try? setLogSink(sink: ClosureSink(sink))
    }

    /// Back to the platform's log (the unified log on Apple platforms, nothing on Linux).
    public static func uninstall() {
        try? setLogSink(sink: nil)
    }
}

final class ClosureSink: LogSink, @unchecked Sendable {
    private let sink: @Sendable (LogRecord) -> Void
    init(_ sink: @escaping @Sendable (LogRecord) -> Void) { self.sink = sink }
    func log(record: LogRecord) throws { sink(record) }
}
