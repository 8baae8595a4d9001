use std::sync::Arc;
use std::time::Duration;

use rand::RngExt;
use tokio::sync::Notify;
use tokio::sync::mpsc::UnboundedSender;

use super::{Event, now_ms};
use crate::domain::{Change, Op};
use crate::providers::{Provider, ProviderError};
use crate::store::{Db, Retry};

/// Delivers the outbox: one request per change, in order per entry, never two at once for an
/// entry, with back-off on failure.
pub struct Worker {
    pub provider: Arc<dyn Provider>,
    pub db: Db,
    /// Rung after a change is written to the outbox.
    pub wake: Arc<Notify>,
    /// Rung to end a back-off early: everything waiting is to be tried now.
    pub kick: Arc<Notify>,
    pub events: UnboundedSender<Event>,
}

/// How long a claimed change is reserved for this process: longer than one delivery can take
/// (two 30-second requests around a refresh).
const LEASE_MS: i64 = 120_000;

async fn sleep_or_forever(wait: Option<Duration>) {
    match wait {
        Some(wait) => tokio::time::sleep(wait).await,
        None => std::future::pending().await,
    }
}

/// How long to wait before the next try of a change that failed `attempts` times with `error`:
/// exponential from 2 s up to 5 minutes with jitter; minutes when the service throttles;
/// exactly the service's word when it says how long.
pub fn backoff(attempts: u32, error: &ProviderError) -> Duration {
    match error {
        ProviderError::Throttled {
            wait: Some(wait), ..
        } => return *wait,
        ProviderError::Throttled { wait: None, .. } => {
            let minutes = 5u64.saturating_mul(1 << attempts.saturating_sub(1).min(3));
            return Duration::from_secs(minutes * 60);
        }
        // Until a new login arrives; `LoginRestored` sends everything at once.
        e if e.needs_login() => return Duration::from_secs(30),
        _ => {}
    }
    let base = 2f64 * 2f64.powi(attempts.saturating_sub(1).min(16) as i32);
    let capped = base.min(300.0);
    let jitter = rand::rng().random_range(0.8..1.2);
    Duration::from_secs_f64(capped * jitter)
}

impl Worker {
    pub async fn run(self) {
        let service = self.provider.service();
        let mut login_reported = false;
        loop {
            let now = now_ms();
            let claimed = self
                .db
                .call(move |s| s.claim_next(service, now, LEASE_MS))
                .await;
            let op = match claimed {
                Ok(Some(op)) => op,
                Ok(None) => {
                    self.idle().await;
                    continue;
                }
                Err(e) => {
                    tracing::error!("outbox unreadable: {e}");
                    self.pause(Duration::from_secs(5)).await;
                    continue;
                }
            };
            match self.deliver(&op).await {
                Ok(()) => login_reported = false,
                Err(Undelivered::Refused) => {}
                Err(Undelivered::Later { error, wait }) => {
                    if error.needs_login() && !login_reported {
                        let _ = self.events.send(Event::LoginNeeded(error));
                        login_reported = true;
                    }
                    // The next change would meet the same trouble (no network, throttling, no
                    // login): the whole queue waits, not just this change.
                    self.pause(wait).await;
                }
            }
        }
    }

    /// Waits until the earliest waiting change is due, or something new is queued.
    async fn idle(&self) {
        let service = self.provider.service();
        let next = self
            .db
            .call(move |s| s.next_attempt_at(service))
            .await
            .ok()
            .flatten();
        let wait = next.map(|at| Duration::from_millis((at - now_ms()).clamp(0, 3_600_000) as u64));
        tokio::select! {
            _ = sleep_or_forever(wait) => {}
            _ = self.wake.notified() => {}
            _ = self.kick.notified() => {}
        }
    }

    /// Waits out a back-off. New changes wait too; only a kick (a new login, a restart) ends it early.
    async fn pause(&self, wait: Duration) {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = self.kick.notified() => {}
        }
    }
}

/// Why a change was not delivered, and for a passing reason, how long to wait.
enum Undelivered {
    Refused,
    Later {
        error: ProviderError,
        wait: Duration,
    },
}

impl Worker {
    /// Sends one change and records the outcome.
    async fn deliver(&self, op: &Op) -> Result<(), Undelivered> {
        let Change::Progress(value) = op.change;
        tracing::debug!(
            seq = op.seq,
            media_id = op.media_id,
            value,
            "sending change"
        );
        match self.provider.apply(op.kind, op.media_id, op.change).await {
            Ok(ack) => {
                let done = op.clone();
                if let Err(e) = self.db.call(move |s| s.complete(&done, ack.progress)).await {
                    tracing::error!("cannot record a delivered change: {e}");
                }
                let _ = self.events.send(Event::Delivered {
                    seq: op.seq,
                    media_id: op.media_id,
                    progress: ack.progress,
                });
                Ok(())
            }
            Err(error) if error.is_permanent() => {
                tracing::warn!(seq = op.seq, "change refused: {error}");
                let (seq, message) = (op.seq, error.to_string());
                let _ = self.db.call(move |s| s.mark_failed(seq, &message)).await;
                let _ = self.events.send(Event::Refused {
                    media_id: op.media_id,
                    value,
                    error,
                });
                Err(Undelivered::Refused)
            }
            Err(error) => {
                // A login problem is not the change's fault: it does not count as an attempt.
                let attempts = if error.needs_login() {
                    op.attempts
                } else {
                    op.attempts + 1
                };
                let wait = backoff(attempts.max(1), &error);
                let next_at_ms = now_ms() + wait.as_millis() as i64;
                tracing::info!(
                    seq = op.seq,
                    attempts,
                    wait_ms = wait.as_millis() as u64,
                    "change not delivered: {error}"
                );
                let retry = Retry {
                    attempts,
                    next_attempt_at_ms: next_at_ms,
                    error: error.to_string(),
                };
                let seq = op.seq;
                let _ = self.db.call(move |s| s.reschedule(seq, &retry)).await;
                if !error.needs_login() {
                    let _ = self.events.send(Event::Retrying {
                        media_id: op.media_id,
                        error: error.clone(),
                        next_at: jiff::Timestamp::from_millisecond(next_at_ms)
                            .unwrap_or_else(|_| jiff::Timestamp::now()),
                    });
                }
                Err(Undelivered::Later { error, wait })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_obeys_the_service() {
        let offline = ProviderError::Offline("x".into());
        let first = backoff(1, &offline).as_secs_f64();
        assert!((1.6..=2.4).contains(&first), "{first}");
        assert!(backoff(30, &offline) <= Duration::from_secs(360));
        let told = ProviderError::Throttled {
            wait: Some(Duration::from_secs(17)),
            message: String::new(),
        };
        assert_eq!(backoff(3, &told), Duration::from_secs(17));
        let forbidden = ProviderError::Throttled {
            wait: None,
            message: String::new(),
        };
        assert!(backoff(1, &forbidden) >= Duration::from_secs(300));
    }
}
