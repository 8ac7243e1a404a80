//! Time: UTC timestamps in milliseconds, an injectable clock, and calendar periods (ISO 8601 `P13M`).

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::{Month, OffsetDateTime};

/// A point in time, UTC, in milliseconds since the Unix epoch. Shown as RFC 3339.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The last instant RFC 3339 can write, `9999-12-31T23:59:59.999Z`: calendar arithmetic
    /// ([`Timestamp::plus`]) saturates here, so every time it makes prints as itself.
    pub const MAX: Timestamp = Timestamp(253_402_300_799_999);

    /// Milliseconds since the Unix epoch.
    pub fn millis(self) -> i64 {
        self.0
    }

    /// Parses RFC 3339 (`2026-11-23T10:00:00Z`, any offset; kept to millisecond precision).
    pub fn parse(text: &str) -> Result<Self, String> {
        // The form this crate writes (UTC, `Z`, no or three fraction digits) is read directly:
        // a store's open parses several per subject. Anything else goes through `time`.
        if let Some(t) = Self::parse_canonical(text) {
            return Ok(t);
        }
        let dt = OffsetDateTime::parse(text, &Rfc3339).map_err(|e| format!("'{text}' is not an RFC 3339 time: {e}"))?;
        Ok(Timestamp((dt.unix_timestamp_nanos() / 1_000_000) as i64))
    }

    /// `YYYY-MM-DDTHH:MM:SSZ` or `YYYY-MM-DDTHH:MM:SS.fZ` with 1 to 9 fraction digits (years
    /// 1970-9999, UTC: what [`Timestamp::to_rfc3339`] writes); `None` for any other text, valid or not.
    fn parse_canonical(text: &str) -> Option<Timestamp> {
        let b = text.as_bytes();
        if b.len() < 20 || b.len() > 30 || b[b.len() - 1] != b'Z' {
            return None;
        }
        let digits = |from: usize, n: usize| -> Option<i64> {
            b[from..from + n].iter().try_fold(0i64, |acc, &c| c.is_ascii_digit().then(|| acc * 10 + (c - b'0') as i64))
        };
        if b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
            return None;
        }
        let (year, month, day) = (digits(0, 4)?, digits(5, 2)?, digits(8, 2)?);
        let (hour, minute, second) = (digits(11, 2)?, digits(14, 2)?, digits(17, 2)?);
        let millis = match b.len() {
            20 => 0,
            21 => return None,
            n => {
                if b[19] != b'.' {
                    return None;
                }
                let fraction = n - 21;
                let all = digits(20, fraction)?;
                // Kept to millisecond precision, truncated like the general parser.
                if fraction >= 3 {
                    all / 10i64.pow(fraction as u32 - 3)
                } else {
                    all * 10i64.pow(3 - fraction as u32)
                }
            }
        };
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        if year < 1970 || !(1..=12).contains(&month) || day < 1 || day > month_days[month as usize - 1] {
            return None;
        }
        if hour > 23 || minute > 59 || second > 59 {
            return None;
        }
        // Days from the civil date (H. Hinnant's algorithm), proleptic Gregorian.
        let y = if month <= 2 { year - 1 } else { year };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (month + 9) % 12;
        let doy = (153 * mp + 2) / 5 + day - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        Some(Timestamp(((days * 86_400 + hour * 3600 + minute * 60 + second) * 1000) + millis))
    }

    /// The earliest time a receipt carries: the Unix epoch, `1970-01-01T00:00:00Z`.
    pub const MIN: Timestamp = Timestamp(0);

    /// True for the times a receipt can carry and RFC 3339 writes as themselves: years 1970 to
    /// 9999 ([`Timestamp::MIN`] to [`Timestamp::MAX`]).
    pub fn is_recordable(self) -> bool {
        (Self::MIN..=Self::MAX).contains(&self)
    }

    /// Refuses a clock reading outside [`Timestamp::is_recordable`] (a hand-set clock in the year
    /// 20000 or before 1970) with `InvalidInput` naming it: a write never stamps a time it cannot
    /// print as itself.
    pub fn check_recordable(self) -> crate::error::Result<()> {
        if self.is_recordable() {
            return Ok(());
        }
        Err(crate::error::Error::InvalidInput {
            what: "clock reading",
            value: format!("{} ms since 1970", self.0),
            why: "is outside the years 1970 to 9999 that a receipt can carry; set the clock to a real time".into(),
        })
    }

    fn datetime(self) -> Option<OffsetDateTime> {
        OffsetDateTime::from_unix_timestamp_nanos(self.0 as i128 * 1_000_000).ok()
    }

    /// RFC 3339 in UTC with millisecond precision when needed, e.g. `2026-11-23T10:00:00Z`. A time
    /// RFC 3339 cannot write (a year before 0 or after 9999) is shown as `@<millis>ms`, never as
    /// another time.
    pub fn to_rfc3339(self) -> String {
        self.datetime().and_then(|d| d.format(&Rfc3339).ok()).unwrap_or_else(|| format!("@{}ms", self.0))
    }

    /// This time plus a calendar period. Month arithmetic clamps to the month's last day
    /// (31 January + 1 month = 28 or 29 February). Saturates instead of overflowing.
    pub fn plus(self, period: Period) -> Timestamp {
        let Some(dt) = self.datetime() else { return Timestamp::MAX };
        let total_months = dt.year() as i64 * 12 + (dt.month() as i64 - 1) + period.months_total();
        let year = total_months.div_euclid(12);
        let month0 = total_months.rem_euclid(12) as u8;
        let Ok(year) = i32::try_from(year) else { return Timestamp::MAX };
        let Ok(month) = Month::try_from(month0 + 1) else { return Timestamp::MAX };
        let day = dt.day().min(month.length(year));
        let moved =
            dt.replace_day(1).and_then(|d| d.replace_year(year)).and_then(|d| d.replace_month(month)).and_then(|d| d.replace_day(day));
        match moved {
            Ok(d) => {
                let millis = (d.unix_timestamp_nanos() / 1_000_000) as i64;
                Timestamp(millis.saturating_add(period.days as i64 * 86_400_000).min(Timestamp::MAX.0))
            }
            Err(_) => Timestamp::MAX,
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        /// Reads the text in place when the format lends it (JSON without escapes): no `String`
        /// per timestamp (a store's open reads several per subject).
        struct Rfc3339Text;
        impl serde::de::Visitor<'_> for Rfc3339Text {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an RFC 3339 time")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Timestamp, E> {
                Timestamp::parse(text).map_err(E::custom)
            }
        }
        d.deserialize_str(Rfc3339Text)
    }
}

/// A calendar period in the ISO 8601 form `PnYnMnD` (e.g. `P6Y`, `P13M`, `P6M`, `P30D`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Period {
    pub years: u32,
    pub months: u32,
    pub days: u32,
}

impl Period {
    fn months_total(self) -> i64 {
        self.years as i64 * 12 + self.months as i64
    }

    /// True for `P0D`: a period of no length.
    pub fn is_zero(self) -> bool {
        self.years == 0 && self.months == 0 && self.days == 0
    }
}

impl FromStr for Period {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("'{text}' is not an ISO 8601 period like P6Y, P13M or P30D");
        let rest = text.strip_prefix('P').ok_or_else(bad)?;
        if rest.is_empty() {
            return Err(bad());
        }
        let mut period = Period::default();
        let mut number = String::new();
        let mut last_unit = 0u8;
        for c in rest.chars() {
            if c.is_ascii_digit() {
                number.push(c);
                continue;
            }
            let value: u32 = number.parse().map_err(|_| bad())?;
            number.clear();
            let unit = match c {
                'Y' => 1,
                'M' => 2,
                'D' => 3,
                _ => return Err(bad()),
            };
            if unit <= last_unit || value > 1200 {
                return Err(bad());
            }
            last_unit = unit;
            match unit {
                1 => period.years = value,
                2 => period.months = value,
                _ => period.days = value,
            }
        }
        if !number.is_empty() {
            return Err(bad());
        }
        Ok(period)
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_zero() {
            return f.write_str("P0D");
        }
        f.write_str("P")?;
        if self.years > 0 {
            write!(f, "{}Y", self.years)?;
        }
        if self.months > 0 {
            write!(f, "{}M", self.months)?;
        }
        if self.days > 0 {
            write!(f, "{}D", self.days)?;
        }
        Ok(())
    }
}

impl Serialize for Period {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Period {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Where the store reads "now" from. Injectable so tests, scripts and the CLI's `--now` are exact.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> Timestamp;

    /// A cheap pair `(at_least, at_most)` bracketing what [`Clock::now`] would read at this
    /// instant, if the clock has one: a check whose answer is the same at every time up to
    /// `at_most` needs no exact reading. `None` (the default): always read [`Clock::now`].
    fn bracket(&self) -> Option<(Timestamp, Timestamp)> {
        None
    }
    /// Milliseconds, from any fixed origin, on a clock that runs with real time and that nobody
    /// sets (on Linux and Android `CLOCK_BOOTTIME`, which also counts deep sleep), if this clock
    /// has one. While a store runs, its time moves on by this clock's running time even when the
    /// wall clock ([`Clock::now`]) is set back, so a grant does not outlive its real expiry
    /// (`store::shared::Shared::observe_running_time`). `None` (the default, and
    /// [`ManualClock`]): the store's time follows [`Clock::now`] and the high-water mark alone, so
    /// a clock that stands still stands still.
    fn running_millis(&self) -> Option<i64> {
        None
    }
}

/// The system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl SystemClock {
    /// How far the coarse wall clock is trusted to lag the exact one (as for the monotonic one,
    /// see `clock::Monotonic`).
    pub const COARSE_SLACK: std::time::Duration = Monotonic::COARSE_SLACK;
}

impl Clock for SystemClock {
    /// On Linux and Android, `CLOCK_REALTIME_COARSE` (the wall clock as timekeeping last stored it,
    /// a vDSO read without the hardware counter): never ahead of the exact reading, behind it by
    /// a tick or a few; the bracket is that reading and it plus [`SystemClock::COARSE_SLACK`]. A
    /// clock set by the user moves the coarse reading at once, like the exact one.
    fn bracket(&self) -> Option<(Timestamp, Timestamp)> {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
            // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
            if unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) } != 0 || ts.tv_sec < 0 {
                return None;
            }
            // `time_t` and `c_long` are 32-bit on 32-bit Android: the casts are not all no-ops.
            #[allow(clippy::unnecessary_cast)]
            let low = (ts.tv_sec as i64).saturating_mul(1000).saturating_add(ts.tv_nsec as i64 / 1_000_000);
            Some((Timestamp(low), Timestamp(low.saturating_add(Self::COARSE_SLACK.as_millis() as i64))))
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            None
        }
    }

    /// `CLOCK_BOOTTIME` on Linux and Android (runs through suspension); elsewhere the process's
    /// [`std::time::Instant`] (on Apple platforms it stops while the device sleeps, so the store's
    /// time then lags real time: it only ever moves it later, never past the real time).
    fn running_millis(&self) -> Option<i64> {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            clock_nanos(libc::CLOCK_BOOTTIME).map(|n| (n / 1_000_000) as i64)
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            Some((Monotonic::instant_nanos() / 1_000_000) as i64)
        }
    }

    fn now(&self) -> Timestamp {
        // Integer milliseconds without `as_millis`'s 128-bit arithmetic (this runs on every check
        // of a recorded consent).
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| (d.as_secs() as i64).saturating_mul(1000).saturating_add(d.subsec_millis() as i64))
            .unwrap_or(0);
        Timestamp(millis)
    }
}

/// A clock that stands still until told to move; shareable across threads.
#[derive(Clone, Debug)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock standing at `at`.
    pub fn new(at: Timestamp) -> Self {
        ManualClock(Arc::new(AtomicI64::new(at.0)))
    }
    /// Moves the clock to `at` (forwards or backwards).
    pub fn set(&self, at: Timestamp) {
        self.0.store(at.0, Ordering::SeqCst)
    }
    /// Moves the clock forward by `millis`.
    pub fn advance_millis(&self, millis: i64) {
        self.0.fetch_add(millis, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

/// The monotonic clock the store's freshness test reads on every check (see
/// `store::shared::Shared::is_fresh`), in nanoseconds on a process-wide scale that never goes back.
///
/// On Linux and Android the cheap reading ([`Monotonic::now_nanos`]) is `CLOCK_MONOTONIC_COARSE`:
/// the kernel's `CLOCK_MONOTONIC` (the clock of [`std::time::Instant`]) as timekeeping last stored
/// it, read from the vDSO without touching the hardware counter (a few ns instead of ~20). Why it
/// is sound for the cross-process bound:
/// - its error is one-sided: a reading is never ahead of the true monotonic time, and it never
///   goes back. A confirmation stamped with it (taken before the probe reads the file) is therefore
///   never later than the true start of the proof: it can only make the proof look older.
/// - it lags by the time since timekeeping's last update: one tick (`clock_getres`, 1-10 ms)
///   normally, a few ticks on a loaded virtual machine (the kernel hands the update to another CPU
///   once the one doing it stalls for a few ticks). A check therefore trusts the cheap reading only
///   up to the bound less [`Monotonic::slack_nanos`] (100 ms, ten ticks even at 100 Hz); between
///   that and the bound it reads the precise `CLOCK_MONOTONIC` ([`Monotonic::precise_nanos`]), so
///   the bound itself is decided on the exact clock.
/// - like `Instant`, it runs while the process is stopped or its threads starve, so a stalled probe
///   thread or a suspended app shows up as an old proof.
///
/// Elsewhere (Apple platforms, where `Instant` already reads the commpage without a system call) both
/// readings are `Instant`, with no slack.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Monotonic {
    source: MonoSource,
}

#[derive(Clone, Copy, Debug)]
enum MonoSource {
    /// `CLOCK_MONOTONIC_COARSE`, checked against `CLOCK_MONOTONIC`.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    Coarse,
    /// [`std::time::Instant`].
    Precise,
}

/// The origin of [`MonoSource::Precise`] readings (process-wide, so every store's readings compare).
fn precise_epoch() -> std::time::Instant {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(std::time::Instant::now)
}

#[cfg(any(target_os = "linux", target_os = "android"))]
#[inline]
fn clock_nanos(clock: libc::clockid_t) -> Option<u64> {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    (rc == 0).then(|| (ts.tv_sec as u64).wrapping_mul(1_000_000_000).wrapping_add(ts.tv_nsec as u64))
}

impl Monotonic {
    /// How far a cheap reading is allowed to lag the true time before a check asks the precise clock.
    pub(crate) const COARSE_SLACK: std::time::Duration = std::time::Duration::from_millis(100);

    /// The cheapest sound clock of this platform (see the type's documentation).
    pub(crate) fn new() -> Monotonic {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            if clock_nanos(libc::CLOCK_MONOTONIC_COARSE).is_some() && clock_nanos(libc::CLOCK_MONOTONIC).is_some() {
                return Monotonic { source: MonoSource::Coarse };
            }
        }
        Self::precise()
    }

    /// [`std::time::Instant`] for both readings (no slack), on every platform.
    pub(crate) fn precise() -> Monotonic {
        precise_epoch();
        Monotonic { source: MonoSource::Precise }
    }

    /// The cheap reading: nanoseconds since an origin fixed for the process, never ahead of
    /// [`Monotonic::precise_nanos`] and behind it by at most [`Monotonic::slack_nanos`] (see the
    /// type's documentation); never less than an earlier reading. `None` only if the OS refused the
    /// reading (then the caller must assume the worst: a check treats its proof as old, a probe
    /// confirms nothing).
    #[inline]
    pub(crate) fn now_nanos(&self) -> Option<u64> {
        match self.source {
            #[cfg(any(target_os = "linux", target_os = "android"))]
            MonoSource::Coarse => clock_nanos(libc::CLOCK_MONOTONIC_COARSE),
            MonoSource::Precise => Some(Self::instant_nanos()),
        }
    }

    /// The exact reading, on the same scale as [`Monotonic::now_nanos`].
    pub(crate) fn precise_nanos(&self) -> Option<u64> {
        match self.source {
            #[cfg(any(target_os = "linux", target_os = "android"))]
            MonoSource::Coarse => clock_nanos(libc::CLOCK_MONOTONIC),
            MonoSource::Precise => Some(Self::instant_nanos()),
        }
    }

    /// `Instant` readings from an origin an hour before the first one (so a reading minus the
    /// bound is never below the origin).
    fn instant_nanos() -> u64 {
        const OFFSET: u64 = 3_600_000_000_000;
        let d = precise_epoch().elapsed();
        d.as_secs().wrapping_mul(1_000_000_000).wrapping_add(d.subsec_nanos() as u64).wrapping_add(OFFSET)
    }

    /// How far a cheap reading may be trusted to lag the exact one (0 when they are the same clock).
    pub(crate) fn slack_nanos(&self) -> u64 {
        match self.source {
            #[cfg(any(target_os = "linux", target_os = "android"))]
            MonoSource::Coarse => Self::COARSE_SLACK.as_nanos() as u64,
            MonoSource::Precise => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    #[test]
    fn the_system_clock_s_bracket_holds_its_exact_reading() {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        for _ in 0..10_000 {
            let before = SystemClock.now();
            let (low, high) = SystemClock.bracket().expect("Linux has CLOCK_REALTIME_COARSE");
            let after = SystemClock.now();
            // Truncated to milliseconds alike; never ahead, and the exact reading not past `high`.
            assert!(low <= after, "coarse {low:?} ahead of {after:?}");
            assert!(before <= high, "{before:?} past the bracket's top {high:?}");
        }
        assert!(ManualClock::new(Timestamp(5)).bracket().is_none(), "other clocks are read exactly");
    }

    #[test]
    fn the_system_clock_s_running_clock_runs_on_and_a_manual_clock_has_none() {
        let before = SystemClock.running_millis().expect("the system clock has a running clock");
        std::thread::sleep(std::time::Duration::from_millis(30));
        let after = SystemClock.running_millis().expect("a reading");
        // Whole milliseconds of a clock that ran at least 30 ms.
        assert!(after >= before + 29, "ran {} ms over a 30 ms sleep", after - before);
        assert!(ManualClock::new(Timestamp(5)).running_millis().is_none(), "a manual clock stands still");
    }

    #[test]
    fn the_cheap_monotonic_reading_is_never_ahead_of_the_exact_one_and_lags_within_the_slack() {
        for mono in [Monotonic::new(), Monotonic::precise()] {
            let mut last = 0;
            for _ in 0..10_000 {
                let before = mono.precise_nanos().expect("a reading");
                let cheap = mono.now_nanos().expect("a reading");
                let after = mono.precise_nanos().expect("a reading");
                assert!(cheap >= last, "went back: {last} then {cheap}");
                assert!(cheap <= after, "cheap reading {cheap} ahead of the exact {after}");
                assert!(cheap + mono.slack_nanos() >= before, "cheap reading {cheap} lags {before} by more than the slack");
                last = cheap;
            }
        }
        #[cfg(any(target_os = "linux", target_os = "android"))]
        assert!(matches!(Monotonic::new().source, MonoSource::Coarse), "Linux has CLOCK_MONOTONIC_COARSE");
    }

    #[test]
    fn the_canonical_form_is_read_like_the_general_parser_reads_it() {
        let general = |text: &str| {
            let dt = OffsetDateTime::parse(text, &Rfc3339).unwrap();
            Timestamp((dt.unix_timestamp_nanos() / 1_000_000) as i64)
        };
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for i in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Up to the year 9999, whole seconds and milliseconds alike.
            let millis = (x % 253_402_300_799_000) as i64;
            let t = Timestamp(if i % 2 == 0 { millis - millis % 1000 } else { millis });
            let text = t.to_rfc3339();
            assert_eq!(Timestamp::parse_canonical(&text), Some(t), "{text}");
            assert_eq!(general(&text), t, "{text}");
        }
        for leap in [
            "2024-02-29T00:00:00Z",
            "2000-02-29T12:00:00.500Z",
            "2000-02-29T12:00:00.5Z",
            "2001-03-01T00:00:00.123456789Z",
            "1970-01-01T00:00:00Z",
        ] {
            assert_eq!(Timestamp::parse_canonical(leap), Some(general(leap)), "{leap}");
        }
        // Not the canonical form: left to the general parser (which accepts or names the text).
        for other in ["2026-11-23T11:15:30+01:00", "2026-11-23 10:15:30Z", "1969-12-31T23:59:59Z"] {
            assert_eq!(Timestamp::parse_canonical(other), None, "{other}");
            assert_eq!(Timestamp::parse(other).unwrap(), general(other), "{other}");
        }
        for bad in [
            "2026-11-23T10:15:30.Z",
            "2023-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-11-23T24:00:00Z",
            "2026-11-23T10:61:00Z",
            "2026-1x-23T10:15:30Z",
        ] {
            assert_eq!(Timestamp::parse_canonical(bad), None, "{bad}");
            assert!(Timestamp::parse(bad).unwrap_err().contains(bad), "{bad}");
        }
    }

    #[test]
    fn rfc3339_round_trip() {
        let t = ts("2026-11-23T10:15:30Z");
        assert_eq!(t.to_rfc3339(), "2026-11-23T10:15:30Z");
        assert_eq!(ts("2026-11-23T11:15:30+01:00"), t);
        assert!(Timestamp::parse("yesterday").unwrap_err().contains("yesterday"));
    }

    #[test]
    fn period_parse_and_display() {
        let p: Period = "P6Y".parse().unwrap();
        assert_eq!(p, Period { years: 6, months: 0, days: 0 });
        assert_eq!("P1Y2M3D".parse::<Period>().unwrap().to_string(), "P1Y2M3D");
        for bad in ["", "P", "6Y", "P6", "PM", "P2D1Y", "P1W", "P99999Y"] {
            let err = bad.parse::<Period>().unwrap_err();
            assert!(err.contains(bad), "{err}");
        }
    }

    #[test]
    fn calendar_months_clamp_to_month_end() {
        let p = Period { years: 0, months: 13, days: 0 };
        assert_eq!(ts("2026-01-31T08:00:00Z").plus(p), ts("2027-02-28T08:00:00Z"));
        assert_eq!(ts("2026-11-23T00:00:00Z").plus(p), ts("2027-12-23T00:00:00Z"));
        let six_years = Period { years: 6, months: 0, days: 0 };
        assert_eq!(ts("2024-02-29T00:00:00Z").plus(six_years), ts("2030-02-28T00:00:00Z"));
        assert_eq!(ts("2026-01-01T00:00:00Z").plus(Period { days: 30, ..Default::default() }), ts("2026-01-31T00:00:00Z"));
    }

    #[test]
    fn manual_clock_moves() {
        let c = ManualClock::new(Timestamp(1000));
        c.advance_millis(500);
        assert_eq!(c.now(), Timestamp(1500));
        c.set(Timestamp(7));
        assert_eq!(c.now(), Timestamp(7));
    }
}
