use std::sync::Arc;

use tokio::sync::mpsc::UnboundedSender;

use super::Event;
use crate::domain::Status;
use crate::providers::{Fetched, Provider};
use crate::store::Db;

/// Fetches every page of one status, stores it in the cache, and tells the UI.
pub async fn fetch_list(
    provider: Arc<dyn Provider>,
    db: Db,
    status: Status,
    events: UnboundedSender<Event>,
) {
    let progress = events.clone();
    let arrived = move |n: usize| {
        let _ = progress.send(Event::ListProgress(n));
    };
    let started = super::now_ms();
    let result = provider.fetch_list(status, &arrived).await;
    let event = match result {
        Ok(Fetched {
            entries,
            unreadable,
        }) => {
            let service = provider.service();
            let at = jiff::Timestamp::now();
            let stored = entries.clone();
            // With unreadable items, an entry missing from the answer may be one of them: keep it.
            let keep_missing = unreadable > 0;
            let saved = db
                .call(move |s| {
                    s.replace_entries(service, status, &stored, started, keep_missing)?;
                    s.set_meta(service, "last_sync", &at.to_string())
                })
                .await;
            if let Err(e) = saved {
                tracing::error!("cannot cache the list: {e}");
            }
            tracing::info!(entries = entries.len(), unreadable, "list fetched");
            Event::ListFetched {
                entries,
                unreadable,
                at,
            }
        }
        Err(error) => {
            tracing::warn!("list fetch failed: {error}");
            Event::ListFailed(error)
        }
    };
    let _ = events.send(event);
}
