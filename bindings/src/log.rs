//! Where ConsentKit's log records go. The core logs through the `log` facade; this module is that
//! facade's one logger inside the library. Records go to the app's sink when one is installed
//! (`set_log_sink`: Timber, `Logger`, a test's capture), otherwise to the platform's log: Logcat on
//! Android (tag `ConsentKit`), the unified log on Apple platforms (subsystem `com.consentkit`,
//! category the record's target), nowhere on other hosts. The default level is `Warn`.
//!
//! Privacy: no record at any level carries a subject identifier, a scope, or an export document;
//! where a record must name a subject it uses the store's salted subject reference (a keyed hash
//! derived from the store's per-file secret), never the id. The privacy tests (Rust, Kotlin,
//! Swift) run the conformance scenarios at `Trace` and fail on any identifier in the log.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Once, RwLock};

use log::{LevelFilter, Log, Metadata, Record};

use crate::error::ConsentKitError;
use crate::guard::ffi_export;

/// How severe a log record is; a level lets through itself and everything more severe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, uniffi::Enum)]
pub enum LogLevel {
    /// Something failed (a store failing closed, a listener that threw).
    Error,
    /// Something the app should look at (a checkpoint blocked by a reader). The default.
    Warn,
    /// Lifecycle: store opened, migration, erasure and purge counts.
    Info,
    /// Detail for debugging.
    Debug,
    /// Everything.
    Trace,
}

impl LogLevel {
    fn filter(self) -> LevelFilter {
        match self {
            LogLevel::Error => LevelFilter::Error,
            LogLevel::Warn => LevelFilter::Warn,
            LogLevel::Info => LevelFilter::Info,
            LogLevel::Debug => LevelFilter::Debug,
            LogLevel::Trace => LevelFilter::Trace,
        }
    }

    fn of(level: log::Level) -> LogLevel {
        match level {
            log::Level::Error => LogLevel::Error,
            log::Level::Warn => LogLevel::Warn,
            log::Level::Info => LogLevel::Info,
            log::Level::Debug => LogLevel::Debug,
            log::Level::Trace => LogLevel::Trace,
        }
    }
}

/// One log record as a sink receives it.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct LogRecord {
    /// Its severity.
    pub level: LogLevel,
    /// The Rust module that wrote it (e.g. `consentkit_core::store`): a logger tag or category.
    pub target: String,
    /// The message, one line, free of identifiers.
    pub message: String,
}

/// Receives ConsentKit's log records, implemented in Kotlin or Swift. Called on whichever thread
/// logged (a writer, an observer thread): must be thread-safe and quick. A sink that throws loses
/// that record and nothing else; a record logged from inside the sink is dropped.
#[uniffi::export(foreign)]
pub trait LogSink: Send + Sync {
    /// One record.
    fn log(&self, record: LogRecord) -> Result<(), ConsentKitError>;
}

ffi_export! {
    /// Sends ConsentKit's log records to `sink` instead of the platform's log; `None` goes back to
    /// the platform's log.
    pub fn set_log_sink(sink: Option<Arc<dyn LogSink>>) -> Result<(), ConsentKitError> {
        install();
        *SINK.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = sink;
        Ok(())
    }

    /// Lets through records at `level` and more severe (default `Warn`).
    pub fn set_log_level(level: LogLevel) -> Result<(), ConsentKitError> {
        install();
        log::set_max_level(level.filter());
        Ok(())
    }

    /// The level in force.
    pub fn log_level() -> Result<LogLevel, ConsentKitError> {
        install();
        Ok(match log::max_level() {
            LevelFilter::Off | LevelFilter::Error => LogLevel::Error,
            LevelFilter::Warn => LogLevel::Warn,
            LevelFilter::Info => LogLevel::Info,
            LevelFilter::Debug => LogLevel::Debug,
            LevelFilter::Trace => LogLevel::Trace,
        })
    }
}

/// Makes this module the `log` facade's logger at the default level, once (opening a store and
/// every call above do it). If the process already had another logger, records go there.
pub(crate) fn install() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        if log::set_logger(&ROUTER).is_ok() {
            log::set_max_level(LevelFilter::Warn);
        }
    });
}

static SINK: RwLock<Option<Arc<dyn LogSink>>> = RwLock::new(None);
static ROUTER: Router = Router;

thread_local! {
    /// Set while this thread is inside a sink: records the sink itself causes are dropped.
    static IN_SINK: Cell<bool> = const { Cell::new(false) };
}

struct Router;

impl Log for Router {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) || IN_SINK.with(Cell::get) {
            return;
        }
        let sink = SINK.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        match sink {
            Some(sink) => {
                let record = LogRecord {
                    level: LogLevel::of(record.level()),
                    target: record.target().to_string(),
                    message: record.args().to_string(),
                };
                IN_SINK.with(|flag| flag.set(true));
                // A sink that throws or panics loses this record; logging never fails a call.
                let _ = catch_unwind(AssertUnwindSafe(|| sink.log(record)));
                IN_SINK.with(|flag| flag.set(false));
            }
            None => {
                if let Some(platform) = platform::logger() {
                    let _ = catch_unwind(AssertUnwindSafe(|| platform.log(record)));
                }
            }
        }
    }

    fn flush(&self) {}
}

/// The platform's log, chosen at compile time. Only the host variant builds on this project's CI;
/// the Android and Apple variants are kept minimal and follow the crates' documented APIs.
mod platform {
    #[cfg(target_os = "android")]
    pub fn logger() -> Option<&'static dyn log::Log> {
        use std::sync::OnceLock;
        static LOGCAT: OnceLock<android_logger::AndroidLogger> = OnceLock::new();
        // The router filters by level; Logcat takes whatever passes.
        Some(LOGCAT.get_or_init(|| {
            android_logger::AndroidLogger::new(
                android_logger::Config::default().with_tag("ConsentKit").with_max_level(log::LevelFilter::Trace),
            )
        }))
    }

    #[cfg(all(target_vendor = "apple", not(target_os = "android")))]
    pub fn logger() -> Option<&'static dyn log::Log> {
        use std::sync::OnceLock;
        static UNIFIED: OnceLock<oslog::OsLogger> = OnceLock::new();
        Some(UNIFIED.get_or_init(|| oslog::OsLogger::new("com.consentkit")))
    }

    #[cfg(not(any(target_os = "android", target_vendor = "apple")))]
    pub fn logger() -> Option<&'static dyn log::Log> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    struct Capture(Mutex<Vec<LogRecord>>);

    impl LogSink for Capture {
        fn log(&self, record: LogRecord) -> Result<(), ConsentKitError> {
            self.0.lock().map_err(|_| ConsentKitError::Internal("the capture's lock is poisoned".into()))?.push(record);
            Ok(())
        }
    }

    struct Throws;

    impl LogSink for Throws {
        fn log(&self, _: LogRecord) -> Result<(), ConsentKitError> {
            log::error!("logged from inside the sink");
            panic!("a sink that panics");
        }
    }

    // One test: the logger, the sink and the level are process-wide. Other tests of this binary
    // log at the same time (panics turned into errors, recovery), so only this test's records,
    // marked, are compared.
    const MARK: &str = "[log-test]";

    fn ours(capture: &Capture) -> Result<Vec<LogRecord>, Box<dyn std::error::Error>> {
        let records = capture.0.lock().map_err(|_| "the capture's lock is poisoned")?;
        Ok(records.iter().filter(|r| r.message.starts_with(MARK)).cloned().collect())
    }

    #[test]
    fn records_reach_the_sink_at_the_level_set() -> Result<(), Box<dyn std::error::Error>> {
        install();
        assert_eq!(log_level()?, LogLevel::Warn, "default level");
        let capture = Arc::new(Capture(Mutex::new(Vec::new())));
        set_log_sink(Some(capture.clone()))?;
        log::info!(target: "consentkit_core::store", "{MARK} below the default level");
        log::warn!(target: "consentkit_core::rights", "{MARK} checkpoint blocked");
        set_log_level(LogLevel::Trace)?;
        assert_eq!(log_level()?, LogLevel::Trace);
        log::trace!(target: "consentkit_core::store", "{MARK} now visible");
        set_log_level(LogLevel::Error)?;
        log::warn!("{MARK} hidden again");
        assert_eq!(
            ours(&capture)?,
            vec![
                LogRecord {
                    level: LogLevel::Warn,
                    target: "consentkit_core::rights".into(),
                    message: format!("{MARK} checkpoint blocked")
                },
                LogRecord { level: LogLevel::Trace, target: "consentkit_core::store".into(), message: format!("{MARK} now visible") },
            ]
        );
        capture.0.lock().map_err(|_| "the capture's lock is poisoned")?.clear();
        set_log_sink(Some(Arc::new(Throws)))?;
        log::error!("{MARK} lost, and nothing else happens");
        set_log_sink(Some(capture.clone()))?;
        log::error!("{MARK} the next record arrives");
        assert_eq!(ours(&capture)?.len(), 1);
        set_log_sink(None)?;
        log::error!("{MARK} to the platform log (nowhere on this host)");
        assert_eq!(ours(&capture)?.len(), 1);
        set_log_level(LogLevel::Warn)?;
        Ok(())
    }
}
