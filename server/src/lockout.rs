//! The console's sign-in lockout, per client address: [`LOCKOUT_FAILURES`] failed sign-ins from
//! one source within [`LOCKOUT_WINDOW`] lock sign-in from that source (even with a good token)
//! until the window has passed over them. Other sources sign in as usual, so one attacker cannot
//! lock every support engineer out.
//!
//! Why by address and not by account: the console signs in with a token alone (no account name),
//! and a failed attempt is an unknown token, which names no account. The address is the TCP peer's
//! (reliable), or, when that peer is a configured trusted proxy (`console_trusted_proxies`), the
//! client that proxy names in `X-Forwarded-For`; a header from anyone else is ignored, so a client
//! cannot pick its own bucket. IPv6 sources count by their /64 (what one host is usually given).
//!
//! There is no global lockout: it would be the denial of service this avoids. What is bounded
//! globally is memory: at most [`MAX_TRACKED_SOURCES`] sources are tracked; past that the one
//! whose last failure is oldest is forgotten (an attacker spraying that many addresses evades any
//! per-address count anyway; a `new-token` token is 256 random bits, so guessing one is hopeless).

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;

/// Failed sign-ins allowed from one source per [`LOCKOUT_WINDOW`] before it is locked.
pub const LOCKOUT_FAILURES: usize = 10;
/// The window over which a source's failed sign-ins are counted.
pub const LOCKOUT_WINDOW: Duration = Duration::from_secs(60);
/// The most sources whose failures are remembered at once (a memory bound, not a lockout).
pub const MAX_TRACKED_SOURCES: usize = 100_000;

/// Where a sign-in attempt comes from, as the lockout counts it: an IPv4 address, an IPv6 /64,
/// or `None` when the server was not told the peer (a router served without connection info).
pub type Source = Option<IpAddr>;

/// The source of a request from `peer` with `headers`, trusting `X-Forwarded-For` only from
/// `trusted_proxies`: then the rightmost address in it that is not itself a trusted proxy (the
/// one the outermost trusted proxy saw); a malformed header counts as the proxy itself.
pub fn source_of(peer: Option<SocketAddr>, headers: &HeaderMap, trusted_proxies: &[IpAddr]) -> Source {
    let peer = canonical(peer?.ip());
    let mut client = peer;
    if trusted_proxies.iter().any(|p| canonical(*p) == peer) {
        let forwarded: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|a| a.trim().parse::<IpAddr>().map(canonical))
            .collect::<Result<_, _>>()
            .unwrap_or_default();
        if let Some(first_untrusted) = forwarded.iter().rev().find(|a| !trusted_proxies.iter().any(|p| canonical(*p) == **a)) {
            client = *first_untrusted;
        }
    }
    Some(bucket(client))
}

/// An IPv4-mapped IPv6 address as IPv4; others as they are.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// IPv4 as is; IPv6 cut to its /64.
fn bucket(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// Recent failed sign-ins per source.
#[derive(Default)]
pub struct SignInLockout {
    failures: Mutex<HashMap<Source, VecDeque<Instant>>>,
}

impl SignInLockout {
    /// Counts a failed sign-in from `source` at `now`; true when that source is now locked.
    pub fn failed(&self, source: Source, now: Instant) -> bool {
        let mut all = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if !all.contains_key(&source) && all.len() >= MAX_TRACKED_SOURCES {
            all.retain(|_, times| times.back().is_some_and(|t| now.duration_since(*t) < LOCKOUT_WINDOW));
            if all.len() >= MAX_TRACKED_SOURCES {
                let oldest = all.iter().min_by_key(|(_, times)| times.back().copied()).map(|(s, _)| *s);
                if let Some(oldest) = oldest {
                    all.remove(&oldest);
                }
            }
        }
        let times = all.entry(source).or_default();
        times.retain(|t| now.duration_since(*t) < LOCKOUT_WINDOW);
        times.push_back(now);
        times.len() >= LOCKOUT_FAILURES
    }

    /// True while `source` is locked at `now`: [`LOCKOUT_FAILURES`] of its failures fall within
    /// the window before `now`.
    pub fn locked(&self, source: Source, now: Instant) -> bool {
        let mut all = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let Some(times) = all.get_mut(&source) else { return false };
        times.retain(|t| now.duration_since(*t) < LOCKOUT_WINDOW);
        let locked = times.len() >= LOCKOUT_FAILURES;
        if times.is_empty() {
            all.remove(&source);
        }
        locked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Source {
        Some(text.parse().unwrap())
    }

    #[test]
    fn one_sources_failures_lock_that_source_only_and_the_lock_expires() {
        let lockout = SignInLockout::default();
        let start = Instant::now();
        let (a, b) = (ip("203.0.113.5"), ip("198.51.100.7"));
        for i in 1..LOCKOUT_FAILURES {
            assert!(!lockout.failed(a, start), "failure {i} does not lock yet");
            assert!(!lockout.locked(a, start));
        }
        assert!(lockout.failed(a, start), "the last failure within the window locks");
        assert!(lockout.locked(a, start + Duration::from_secs(59)), "locked for the rest of the window");
        assert!(!lockout.locked(b, start), "another source is not locked by a's failures");
        assert!(!lockout.failed(b, start), "and its own first failure does not lock it");
        assert!(!lockout.locked(a, start + LOCKOUT_WINDOW), "the lock expires once the window passed over the failures");
        assert!(!lockout.failed(a, start + LOCKOUT_WINDOW), "counting starts again from one");
    }

    #[test]
    fn failures_spread_over_more_than_the_window_never_lock() {
        let lockout = SignInLockout::default();
        let start = Instant::now();
        for i in 0..(3 * LOCKOUT_FAILURES) as u64 {
            assert!(!lockout.failed(ip("203.0.113.5"), start + Duration::from_secs(7 * i)), "failure {i}");
        }
    }

    #[test]
    fn the_source_is_the_peer_unless_a_trusted_proxy_names_the_client() {
        let peer = |a: &str| Some(SocketAddr::new(a.parse().unwrap(), 40000));
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "198.51.100.7, 10.0.0.2".parse().unwrap());
        let proxies: Vec<IpAddr> = vec!["10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap()];
        assert_eq!(source_of(peer("10.0.0.1"), &headers, &proxies), ip("198.51.100.7"), "the rightmost untrusted hop");
        assert_eq!(source_of(peer("192.0.2.9"), &headers, &proxies), ip("192.0.2.9"), "a header from anyone else is ignored");
        assert_eq!(source_of(peer("10.0.0.1"), &headers, &[]), ip("10.0.0.1"), "no proxy trusted: the peer");
        headers.insert("x-forwarded-for", "not an address".parse().unwrap());
        assert_eq!(source_of(peer("10.0.0.1"), &headers, &proxies), ip("10.0.0.1"), "a malformed header: the proxy itself");
        assert_eq!(source_of(peer("::ffff:192.0.2.9"), &HeaderMap::new(), &[]), ip("192.0.2.9"), "IPv4-mapped is IPv4");
        assert_eq!(source_of(peer("2001:db8:1:2:aaaa::1"), &HeaderMap::new(), &[]), ip("2001:db8:1:2::"), "IPv6 by /64");
        assert_eq!(source_of(None, &HeaderMap::new(), &proxies), None);
    }

    #[test]
    fn memory_is_bounded_without_locking_anyone() {
        let lockout = SignInLockout::default();
        let now = Instant::now();
        for i in 0..(MAX_TRACKED_SOURCES as u32 + 10) {
            assert!(!lockout.failed(Some(IpAddr::V4(i.into())), now));
        }
        assert!(lockout.failures.lock().unwrap().len() <= MAX_TRACKED_SOURCES);
    }
}
