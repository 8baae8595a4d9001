use std::sync::Arc;
use std::time::Duration;

use rand::RngExt;
use tokio::sync::Notify;
use tokio::sync::mpsc::UnboundedSender;

use super::{Event, now_ms};
use crate::domain::{Ack, Change, Field, ListState, Op, ScoreFormat};
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
                Err(Undelivered::Held) => {}
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
    /// Refused for good, or held back by a conflict: nothing to wait for.
    Held,
    Later {
        error: ProviderError,
        wait: Duration,
    },
}

/// What looking at the service before sending an unchecked change found.
enum Check {
    /// The service holds the change's base: send it.
    Send,
    /// The service already holds this change (an earlier run sent it but ended before it heard
    /// back): recorded as delivered without sending again.
    Landed,
    /// The entry was edited elsewhere: its changes are held until the user keeps one side.
    Conflict,
}

impl Worker {
    /// Sends one change (checking the service first when the change is not verified) and records
    /// the outcome.
    async fn deliver(&self, op: &Op) -> Result<(), Undelivered> {
        if !op.verified {
            match self.check(op).await {
                Ok(Check::Send) => {}
                Ok(Check::Landed) => return Ok(()),
                Ok(Check::Conflict) => return Err(Undelivered::Held),
                Err(error) => return Err(self.failed(op, error).await),
            }
        }
        tracing::debug!(
            seq = op.seq,
            media_id = op.media_id,
            field = ?op.change.field(),
            value = op.change.value(),
            "sending change"
        );
        match self.provider.apply(op.kind, op.media_id, &op.change).await {
            Ok(ack) => {
                self.delivered(op, ack.state).await;
                Ok(())
            }
            Err(error) => Err(self.failed(op, error).await),
        }
    }

    /// Compares what the service holds now with what the entry's waiting changes were based on.
    async fn check(&self, op: &Op) -> Result<Check, ProviderError> {
        let state = match self.provider.current(op.kind, op.media_id).await {
            Ok(state) => state,
            // The title itself is gone from the service: for a removal, that is what it wanted.
            Err(e) if e.is_permanent() && op.change == Change::Remove => None,
            Err(e) => return Err(e),
        };
        let (service, kind, media_id) = (op.service, op.kind, op.media_id);
        let waiting = self
            .db
            .call(move |s| s.pending_for(service, kind, media_id))
            .await
            .map_err(|e| ProviderError::Local(e.to_string()))?;
        let field = op.change.field();
        let theirs = field.value(state.as_ref());
        let differs = op.differing_field(state.as_ref());
        // A change the service takes in several requests, stopped between two of them (a failure,
        // a kill): this change part of the way, not an edit made elsewhere. The rest is sent (the
        // provider sends only what is still missing).
        let partly = differs.is_some()
            && self.provider.lands_in_parts()
            && op.partly_landed(state.as_ref(), |f| match f {
                Field::Score => self.provider.keeps_scores(),
                Field::Volumes => self.provider.keeps_volumes(),
                _ => true,
            });
        if partly {
            tracing::info!(media_id, "a change from an earlier try had partly arrived");
        }
        if differs.is_none() || partly {
            let _ = self
                .db
                .call(move |s| s.set_verified(service, kind, media_id, true))
                .await;
            return Ok(Check::Send);
        }
        let landed = waiting
            .iter()
            .position(|o| o.change.field() == field && Some(o.change.value()) == theirs);
        if let Some(landed) = landed {
            tracing::info!(media_id, "changes from an earlier run had already arrived");
            for done in &waiting[..=landed] {
                self.delivered(done, state.clone()).await;
            }
            return Ok(Check::Landed);
        }
        let format = self.score_format().await;
        let mine = waiting.last().map_or_else(
            || op.change.describe(kind, format),
            |o| o.change.describe(kind, format),
        );
        // Name the field that was changed elsewhere (a status moved on the website, say, while
        // the change is about the count).
        let shown = differs.unwrap_or(field);
        let theirs_words = match shown.value(state.as_ref()) {
            Some(n) => shown.describe(kind, format, n),
            None => "not on the list".into(),
        };
        let reason = format!("changed elsewhere to {theirs_words} (yours: {mine})");
        tracing::warn!(
            media_id,
            ?field,
            ?theirs,
            "conflict with an edit made elsewhere"
        );
        let stored = state.clone();
        let _ = self
            .db
            .call(move |s| {
                s.mark_conflict(service, kind, media_id, theirs, stored.as_ref(), &reason)
            })
            .await;
        let _ = self.events.send(Event::Conflict {
            kind,
            media_id,
            mine,
            theirs: theirs_words,
            state,
            held: waiting.len() as u32,
        });
        Ok(Check::Conflict)
    }

    /// How the account scores, as the last list fetch found (for messages about scores).
    async fn score_format(&self) -> ScoreFormat {
        let service = self.provider.service();
        self.db
            .call(move |s| s.meta(service, "score_format"))
            .await
            .ok()
            .flatten()
            .and_then(|f| ScoreFormat::from_key(&f))
            .unwrap_or_default()
    }

    /// The service holds `state` for `op`'s entry: forget the change, tell the screen.
    async fn delivered(&self, op: &Op, state: Option<ListState>) {
        let done = op.clone();
        let ack = Ack {
            state: state.clone(),
        };
        if let Err(e) = self.db.call(move |s| s.complete(&done, &ack)).await {
            tracing::error!("cannot record a delivered change: {e}");
        }
        let _ = self.events.send(Event::Delivered {
            seq: op.seq,
            kind: op.kind,
            media_id: op.media_id,
            state,
        });
    }

    /// Records a failure: refused for good, or to be tried again after a back-off.
    async fn failed(&self, op: &Op, error: ProviderError) -> Undelivered {
        if error.is_permanent() {
            tracing::warn!(seq = op.seq, "change refused: {error}");
            let (seq, message) = (op.seq, error.to_string());
            let _ = self.db.call(move |s| s.mark_failed(seq, &message)).await;
            let format = self.score_format().await;
            let _ = self.events.send(Event::Refused {
                kind: op.kind,
                media_id: op.media_id,
                what: op.change.describe(op.kind, format),
                error,
            });
            return Undelivered::Held;
        }
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
        let (seq, service, kind, media_id) = (op.seq, op.service, op.kind, op.media_id);
        let _ = self
            .db
            .call(move |s| {
                s.reschedule(seq, &retry)?;
                // Time passes before the next try: look at the service again before sending.
                s.set_verified(service, kind, media_id, false)
            })
            .await;
        if !error.needs_login() {
            let _ = self.events.send(Event::Retrying {
                media_id: op.media_id,
                error: error.clone(),
                next_at: jiff::Timestamp::from_millisecond(next_at_ms)
                    .unwrap_or_else(|_| jiff::Timestamp::now()),
            });
        }
        Undelivered::Later { error, wait }
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
