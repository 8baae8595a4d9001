//! Keeping to AniList's rate limit.
//!
//! AniList documents 90 requests a minute, but says it is "currently in a degraded state" at 30 a
//! minute, which its headers do not show. Every request of one [`super::Anilist`] goes through one
//! [`Pace`]:
//!
//! - a `governor` limiter that lets a quiet session send a **burst of 10** at once (a fetch of
//!   both lists, a few quick keypresses) and then **one request every 3 s**: never more than
//!   10 + 20 = 30 requests in any minute, AniList's degraded limit;
//! - a "paused until" instant, set when AniList answers 429 (`Retry-After` seconds, else
//!   `X-RateLimit-Reset`, else 60 s) or reports `X-RateLimit-Remaining: 0` (until
//!   `X-RateLimit-Reset`, else 60 s). Requests made before it passes wait for it. The instant sits
//!   behind a plain mutex that is only held to read or move it, never while waiting, so a waiting
//!   request blocks nobody.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::Quota;

pub use crate::providers::pace::MAX_PAUSE;
use crate::providers::pace::{Pacer, header_number};
use reqwest::header::{HeaderMap, RETRY_AFTER};

/// Requests a minute after the burst (with the burst: at most 30 in any minute, AniList's
/// degraded limit).
pub const PER_MINUTE: u32 = 20;
/// Requests that may go at once after a quiet spell.
pub const BURST: u32 = 10;
/// How long to wait when AniList asks to slow down without saying for how long.
pub const DEFAULT_PAUSE: Duration = Duration::from_secs(60);

/// The pacing shared by every request of one AniList account (see [`Pacer`]).
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
        let per_minute = NonZeroU32::new(PER_MINUTE).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(BURST).unwrap_or(NonZeroU32::MIN);
        Pace(Pacer::new(
            "AniList",
            Quota::per_minute(per_minute).allow_burst(burst),
        ))
    }

    /// Reads an answer's rate-limit headers, pausing later requests when they say so. Returns
    /// the pause.
    pub fn observe(&self, status: u16, headers: &HeaderMap, now_unix: i64) -> Option<Duration> {
        self.0.hold(status, pause_from(status, headers, now_unix))
    }
}

/// How long to hold requests after an answer with this status and these headers (pure):
/// a 429 waits `Retry-After` seconds (else until `X-RateLimit-Reset`, else 60 s);
/// `X-RateLimit-Remaining: 0` waits until `X-RateLimit-Reset` (else 60 s). Between 1 s and
/// [`MAX_PAUSE`].
pub fn pause_from(status: u16, headers: &HeaderMap, now_unix: i64) -> Option<Duration> {
    let retry_after = headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let until_reset = header_number(headers, "x-ratelimit-reset")
        .map(|reset| reset.saturating_sub(now_unix))
        .filter(|secs| *secs > 0)
        .map(|secs| Duration::from_secs(secs.unsigned_abs()));
    let pause = if status == 429 {
        retry_after.or(until_reset).unwrap_or(DEFAULT_PAUSE)
    } else if header_number(headers, "x-ratelimit-remaining") == Some(0) {
        until_reset.unwrap_or(DEFAULT_PAUSE)
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
    fn a_429_waits_as_asked() {
        let now = 1_000_000;
        assert_eq!(
            pause_from(429, &headers(&[("retry-after", "30")]), now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            pause_from(429, &headers(&[("x-ratelimit-reset", "1000045")]), now),
            Some(Duration::from_secs(45))
        );
        assert_eq!(pause_from(429, &HeaderMap::new(), now), Some(DEFAULT_PAUSE));
        assert_eq!(
            pause_from(429, &headers(&[("retry-after", "999999")]), now),
            Some(MAX_PAUSE)
        );
        assert_eq!(
            pause_from(429, &headers(&[("retry-after", "0")]), now),
            Some(Duration::from_secs(1))
        );
    }

    #[test]
    fn remaining_zero_waits_for_the_reset() {
        let now = 1_000_000;
        assert_eq!(
            pause_from(
                200,
                &headers(&[
                    ("x-ratelimit-remaining", "0"),
                    ("x-ratelimit-reset", "1000020")
                ]),
                now
            ),
            Some(Duration::from_secs(20))
        );
        assert_eq!(
            pause_from(200, &headers(&[("x-ratelimit-remaining", "0")]), now),
            Some(DEFAULT_PAUSE)
        );
        assert_eq!(
            pause_from(200, &headers(&[("x-ratelimit-remaining", "59")]), now),
            None
        );
        assert_eq!(pause_from(200, &HeaderMap::new(), now), None);
        assert_eq!(
            pause_from(200, &headers(&[("x-ratelimit-remaining", "junk")]), now),
            None
        );
    }

    #[tokio::test]
    async fn a_burst_goes_at_once() {
        let pace = Pace::new();
        let start = std::time::Instant::now();
        for _ in 0..BURST {
            pace.wait().await;
        }
        assert!(start.elapsed() < Duration::from_secs(1));
    }

    #[tokio::test]
    async fn requests_wait_out_a_pause() {
        let pace = Pace::new();
        pace.pause_for(Duration::from_millis(300));
        // A shorter pause does not shorten it.
        pace.pause_for(Duration::from_millis(10));
        let start = Instant::now();
        pace.wait().await;
        assert!(start.elapsed() >= Duration::from_millis(300));
        assert!(pace.paused().is_none());
    }
}
