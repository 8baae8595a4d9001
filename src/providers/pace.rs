//! Pacing requests to a service: a `governor` limiter for the steady rate, and a "paused until"
//! instant the service's answers can set (a 429, an empty allowance). Each service keeps its own
//! quota and reads its own headers (`anilist/pace.rs`, `mangadex/pace.rs`).
//!
//! The instant sits behind a plain mutex that is only held to read or move it, never while
//! waiting, so a waiting request blocks nobody.

use std::sync::Mutex;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::header::HeaderMap;
use tokio::time::Instant;

/// The longest pause a header can impose (a broken header must not stop malt for hours).
pub const MAX_PAUSE: Duration = Duration::from_secs(15 * 60);

/// The pacing shared by every request of one account.
pub struct Pacer {
    /// The service's name, for the log.
    service: &'static str,
    limiter: DefaultDirectRateLimiter,
    paused_until: Mutex<Option<Instant>>,
}

impl Pacer {
    pub fn new(service: &'static str, quota: Quota) -> Pacer {
        Pacer {
            service,
            limiter: RateLimiter::direct(quota),
            paused_until: Mutex::new(None),
        }
    }

    /// Waits until a request may be sent: past any pause, then a place in the limiter.
    pub async fn wait(&self) {
        loop {
            while let Some(until) = self.paused() {
                tokio::time::sleep_until(until).await;
            }
            self.limiter.until_ready().await;
            // A pause may have been set while this request queued for the limiter.
            if self.paused().is_none() {
                return;
            }
        }
    }

    /// When requests may go again, if they are paused now.
    pub fn paused(&self) -> Option<Instant> {
        let guard = self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
        guard.filter(|until| *until > Instant::now())
    }

    /// Holds every request for `wait` from now, at most [`MAX_PAUSE`] (a longer pause already
    /// set is kept).
    pub fn pause_for(&self, wait: Duration) {
        let until = Instant::now() + wait.min(MAX_PAUSE);
        let mut guard = self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none_or(|held| held < until) {
            *guard = Some(until);
        }
    }

    /// Pauses later requests for `pause` (what the service's headers said), logging why.
    /// Returns the pause.
    pub fn hold(&self, status: u16, pause: Option<Duration>) -> Option<Duration> {
        let pause = pause?;
        tracing::info!(
            status,
            seconds = pause.as_secs(),
            "{} rate limit reached; pausing requests",
            self.service
        );
        self.pause_for(pause);
        Some(pause)
    }
}

/// A header's value as a whole number.
pub fn header_number(headers: &HeaderMap, name: &str) -> Option<i64> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
}
