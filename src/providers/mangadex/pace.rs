//! Keeping to MangaDex's rate limit.
//!
//! MangaDex allows about 5 requests a second from one address, and stricter limits on some
//! endpoints, reported in `X-RateLimit-Limit`, `X-RateLimit-Remaining` and
//! `X-RateLimit-Retry-After` — a **Unix timestamp** (seconds), not a number of seconds. Every
//! request of one [`super::Mangadex`] goes through one [`Pace`]:
//!
//! - a `governor` limiter: a burst of 5, then 5 requests a second;
//! - a "paused until" instant, set when MangaDex answers 429 (until `X-RateLimit-Retry-After`,
//!   else 10 s) or reports `X-RateLimit-Remaining: 0` (until `X-RateLimit-Retry-After`, else 1 s).
//!   Requests made before it passes wait for it. The instant sits behind a plain mutex that is
//!   only held to read or move it, never while waiting.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::Quota;

pub use crate::providers::pace::MAX_PAUSE;
use crate::providers::pace::{Pacer, header_number};
use reqwest::header::HeaderMap;

/// Requests a second (MangaDex's global limit).
pub const PER_SECOND: u32 = 5;
/// Requests that may go at once after a quiet spell.
pub const BURST: u32 = 5;
/// How long to wait after a 429 that does not say until when.
pub const DEFAULT_PAUSE: Duration = Duration::from_secs(10);
/// How long to wait when the remaining count reaches 0 and the reset time is not given.
pub const EMPTY_PAUSE: Duration = Duration::from_secs(1);
/// Values of `X-RateLimit-Retry-After` below this are taken as seconds to wait, not a time (a
/// proxy or an older server may send a delay).
const EPOCH_FLOOR: i64 = 100_000_000;

/// The pacing shared by every request of one MangaDex account (see [`Pacer`]).
pub struct Pace(Pacer);

impl Default for Pace {
    fn default() -> Self {
        Pace::new()
    }
}

impl std::ops::Deref for Pace {
    type Target = Pacer;
    fn deref(&self) -> &Pacer {
        &self.0
    }
}

impl Pace {
    pub fn new() -> Pace {
        let per_second = NonZeroU32::new(PER_SECOND).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(BURST).unwrap_or(NonZeroU32::MIN);
        Pace(Pacer::new(
            "MangaDex",
            Quota::per_second(per_second).allow_burst(burst),
        ))
    }

    /// Reads an answer's rate-limit headers, pausing later requests when they say so. Returns
    /// the pause.
    pub fn observe(&self, status: u16, headers: &HeaderMap, now_unix: i64) -> Option<Duration> {
        self.0.hold(status, pause_from(status, headers, now_unix))
    }
}

/// How long until `X-RateLimit-Retry-After` (a Unix time; a small number is read as seconds),
/// when it says a time still to come.
pub fn retry_after(headers: &HeaderMap, now_unix: i64) -> Option<Duration> {
    let value = header_number(headers, "x-ratelimit-retry-after")?;
    let secs = if value < EPOCH_FLOOR {
        value
    } else {
        value.saturating_sub(now_unix)
    };
    (secs > 0).then(|| Duration::from_secs(secs.unsigned_abs()))
}

/// How long to hold requests after an answer with this status and these headers (pure): a 429
/// waits until `X-RateLimit-Retry-After` (else [`DEFAULT_PAUSE`]); `X-RateLimit-Remaining: 0`
/// waits until then too (else [`EMPTY_PAUSE`]). Between 1 s and [`MAX_PAUSE`].
pub fn pause_from(status: u16, headers: &HeaderMap, now_unix: i64) -> Option<Duration> {
    let until = retry_after(headers, now_unix);
    let pause = if status == 429 {
        until.unwrap_or(DEFAULT_PAUSE)
    } else if header_number(headers, "x-ratelimit-remaining") == Some(0) {
        // The header's time is in whole seconds: a reset a second or two away is the per-second
        // budget refilling (waiting for the rounded time would cost up to a second per burst).
        match until {
            Some(wait) if wait > Duration::from_secs(2) => wait,
            _ => EMPTY_PAUSE,
        }
    } else {
        return None;
    };
    Some(pause.clamp(Duration::from_secs(1), MAX_PAUSE))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;
    use tokio::time::Instant;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn a_429_waits_until_the_time_given() {
        let now = 1_700_000_000;
        let at = |t: i64| headers(&[("x-ratelimit-retry-after", &t.to_string())]);
        assert_eq!(
            pause_from(429, &at(now + 7), now),
            Some(Duration::from_secs(7))
        );
        // A time already past, or none: a short pause all the same.
        assert_eq!(pause_from(429, &at(now - 5), now), Some(DEFAULT_PAUSE));
        assert_eq!(pause_from(429, &HeaderMap::new(), now), Some(DEFAULT_PAUSE));
        assert_eq!(pause_from(429, &at(now + 999_999), now), Some(MAX_PAUSE));
        // A number of seconds (not a time) is read as such.
        assert_eq!(pause_from(429, &at(30), now), Some(Duration::from_secs(30)));
        assert_eq!(
            pause_from(429, &headers(&[("x-ratelimit-retry-after", "soon")]), now),
            Some(DEFAULT_PAUSE)
        );
    }

    #[test]
    fn an_empty_allowance_waits_for_the_reset() {
        let now = 1_700_000_000;
        let h = headers(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-limit", "40"),
            ("x-ratelimit-retry-after", &(now + 20).to_string()),
        ]);
        assert_eq!(pause_from(200, &h, now), Some(Duration::from_secs(20)));
        assert_eq!(
            pause_from(200, &headers(&[("x-ratelimit-remaining", "0")]), now),
            Some(EMPTY_PAUSE)
        );
        let h = headers(&[
            ("x-ratelimit-remaining", "39"),
            ("x-ratelimit-retry-after", &(now + 20).to_string()),
        ]);
        assert_eq!(pause_from(200, &h, now), None);
        assert_eq!(pause_from(200, &HeaderMap::new(), now), None);
    }

    #[tokio::test]
    async fn a_burst_goes_at_once_then_five_a_second() {
        let pace = Pace::new();
        let start = std::time::Instant::now();
        for _ in 0..BURST {
            pace.wait().await;
        }
        assert!(start.elapsed() < Duration::from_millis(150));
        for _ in 0..5 {
            pace.wait().await;
        }
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(900), "{took:?}");
    }

    #[tokio::test]
    async fn requests_wait_out_a_pause() {
        let pace = Pace::new();
        pace.pause_for(Duration::from_millis(300));
        pace.pause_for(Duration::from_millis(10));
        let start = Instant::now();
        pace.wait().await;
        assert!(start.elapsed() >= Duration::from_millis(300));
        assert!(pace.paused().is_none());
    }
}
