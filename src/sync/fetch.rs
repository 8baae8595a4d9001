use std::sync::Arc;

use tokio::sync::mpsc::UnboundedSender;

use super::Event;
use crate::domain::MediaKind;
use crate::providers::{Fetched, Provider};
use crate::store::Db;

/// Fetches every page of one kind's list, stores it in the cache, and tells the UI.
pub async fn fetch_list(
    provider: Arc<dyn Provider>,
    db: Db,
    kind: MediaKind,
    events: UnboundedSender<Event>,
) {
    let progress = events.clone();
    let arrived = move |n: usize| {
        let _ = progress.send(Event::ListProgress(n));
    };
    let started = super::now_ms();
    let result = provider.fetch_list(kind, &arrived).await;
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
                    s.replace_entries(service, kind, &stored, started, keep_missing)?;
                    s.set_meta(service, "last_sync", &at.to_string())
                })
                .await;
            if let Err(e) = saved {
                tracing::error!("cannot cache the list: {e}");
            }
            tracing::info!(
                kind = kind.key(),
                entries = entries.len(),
                unreadable,
                "list fetched"
            );
            Event::ListFetched {
                kind,
                entries,
                unreadable,
                at,
            }
        }
        Err(error) => {
            tracing::warn!("list fetch failed: {error}");
            Event::ListFailed { kind, error }
        }
    };
    let _ = events.send(event);
}
