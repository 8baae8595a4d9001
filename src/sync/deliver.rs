//! Waiting for one queued change to be delivered, for front ends that exit once they know (the
//! shell commands). The change goes through the same outbox worker as the list screen's: in
//! order, once, checked for edits made elsewhere; another malt (a running list screen) may be
//! the one that sends it — the outbox's leases see to it that only one does.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::sync::mpsc;

use super::{Event, Worker};
use crate::domain::Service;
use crate::providers::Provider;
use crate::store::{Db, Standing};

/// What became of a queued change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// The service confirmed it.
    Delivered,
    /// Still in the outbox, to be sent by the next malt that runs (or the one running): why.
    Queued(String),
    /// The service refused it for good: its reason.
    Refused(String),
    /// The entry was changed elsewhere meanwhile: both values. The change is held until the user
    /// keeps one side (in the list screen).
    Conflict(String),
}

/// How often the outbox is looked at while waiting (another process may deliver the change).
const LOOK_EVERY: Duration = Duration::from_millis(100);

/// Sends what `provider`'s outbox holds, in order, until the change `seq` is settled or `wait`
/// has passed, and says what became of it. The worker stops when this returns; what it had not
/// sent stays queued.
pub async fn await_delivery(
    provider: Arc<dyn Provider>,
    db: Db,
    seq: i64,
    wait: Duration,
) -> Delivery {
    let service = provider.service();
    // A new process: what waits out an earlier one's back-off may be tried at once.
    if let Err(e) = db.call(move |s| s.due_now(service)).await {
        tracing::warn!("cannot reschedule the outbox: {e}");
    }
    let (events, mut reports) = mpsc::unbounded_channel();
    let worker = tokio::spawn(
        Worker {
            provider,
            db: db.clone(),
            wake: Arc::new(Notify::new()),
            kick: Arc::new(Notify::new()),
            events,
        }
        .run(),
    );
    let outcome = watch(service, &db, seq, wait, &mut reports).await;
    worker.abort();
    outcome
}

async fn watch(
    service: Service,
    db: &Db,
    seq: i64,
    wait: Duration,
    reports: &mut mpsc::UnboundedReceiver<Event>,
) -> Delivery {
    let deadline = tokio::time::Instant::now() + wait;
    let name = service.display_name();
    let mut look = tokio::time::interval(LOOK_EVERY);
    look.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The reason a passing failure gave, said if the wait runs out.
    let mut trouble: Option<String> = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => {
                return Delivery::Queued(trouble.unwrap_or_else(|| format!("no answer from {name} yet")));
            }
            report = reports.recv() => match report {
                Some(Event::LoginNeeded(error)) => return Delivery::Queued(error.for_service(service)),
                Some(Event::Retrying { error, next_at, .. }) => {
                    let reason = error.for_service(service);
                    // Worth waiting for only when the next try comes before the wait is over.
                    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                    let until = next_at.duration_since(jiff::Timestamp::now());
                    if until.is_negative() || until.unsigned_abs() < left {
                        trouble = Some(reason);
                    } else {
                        return Delivery::Queued(reason);
                    }
                }
                Some(_) => {}
                None => return Delivery::Queued(trouble.unwrap_or_else(|| "the outbox worker stopped".into())),
            },
            _ = look.tick() => {}
        }
        match db.call(move |s| s.standing(seq)).await {
            Ok(Standing::Gone) => return Delivery::Delivered,
            Ok(Standing::Held(held)) if held.conflict => return Delivery::Conflict(held.reason),
            Ok(Standing::Held(held)) => return Delivery::Refused(held.reason),
            Ok(Standing::Waiting { .. }) => {}
            Err(e) => return Delivery::Queued(format!("cannot read the outbox: {e}")),
        }
    }
}
