//! Making a change from the command line: decided by the core's rules against the entry as the
//! user sees it, written to the outbox, sent by the same worker as the list screen's, and the
//! outcome said in one line with its exit code.

use std::time::Duration;

use super::output::{self, paint};
use super::{Exit, Failure, Opened};
use crate::domain::{Change, Row};
use crate::library::List;
use crate::store::{Queued, Target};
use crate::sync::{Delivery, await_delivery};

/// Queues the change `decide` makes to `target` on `list`'s service (see
/// [`crate::store::Store::stage_change`]). `Ok(None)`: `decide` found nothing to change.
pub async fn stage<E>(
    opened: &Opened,
    list: &List,
    target: Target,
    decide: impl FnOnce(&Row) -> Result<Option<Change>, E> + Send + 'static,
) -> Result<Option<Queued>, Failure>
where
    E: std::fmt::Display + Send + 'static,
{
    let service = list.service();
    let format = list.score_format;
    let fresh = list.is_fresh(jiff::Timestamp::now());
    let now = crate::sync::now_ms();
    let staged = opened
        .db
        .call(move |s| s.stage_change(service, target, now, fresh, format, decide))
        .await?;
    staged.map_err(|e| Failure::usage(e.to_string()))
}

/// Waits up to `wait` for the change to reach the service and says what became of it:
/// `done` names the change ("Frieren: episode 13 of 28").
pub async fn deliver(
    opened: &Opened,
    list: &List,
    queued: &Queued,
    wait: Duration,
    done: &str,
) -> Exit {
    let name = list.service().display_name();
    let delivery = await_delivery(list.provider.clone(), opened.db.clone(), queued.seq, wait).await;
    match delivery {
        Delivery::Delivered => {
            anstream::println!(
                "{done} {}",
                paint(output::GOOD, &format!("— saved on {name}"))
            );
            Exit::Done
        }
        Delivery::Queued(reason) => {
            anstream::println!(
                "{done} {}",
                paint(
                    output::WARN,
                    &format!("— queued: will be sent by the next malt ({reason})")
                )
            );
            Exit::Queued
        }
        Delivery::Refused(reason) => {
            output::error(&format!(
                "{done}: {name} refused it: {reason} (kept; retry or drop it in `malt`)"
            ));
            Exit::Error
        }
        Delivery::Conflict(reason) => {
            output::error(&format!(
                "{done}: not sent, the entry was {reason}; open `malt` to keep one side"
            ));
            Exit::Error
        }
    }
}
