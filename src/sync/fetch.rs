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
        let _ = progress.send(Event::ListProgress { kind, received: n });
    };
    let started = super::now_ms();
    let result = provider.fetch_list(kind, &arrived).await;
    let event = match result {
        Ok(Fetched {
            entries,
            unreadable,
            score_format,
        }) => {
            let service = provider.service();
            let at = jiff::Timestamp::now();
            // With unreadable items, an entry missing from the answer may be one of them: keep it.
            let keep_missing = unreadable > 0;
            // The list goes to the database thread and comes back for the screen: thousands of
            // entries are not copied.
            let saved = db
                .call(move |s| {
                    let saved = s
                        .replace_entries(service, kind, &entries, started, keep_missing)
                        .and_then(|()| s.set_meta(service, "last_sync", &at.to_string()))
                        .and_then(|()| match score_format {
                            Some(format) => s.set_meta(service, "score_format", format.key()),
                            None => Ok(()),
                        });
                    Ok((entries, saved))
                })
                .await;
            let entries = match saved {
                Ok((entries, Ok(()))) => entries,
                Ok((entries, Err(e))) => {
                    tracing::error!("cannot cache the list: {e}");
                    entries
                }
                Err(e) => {
                    tracing::error!("cannot cache the list: {e}");
                    let _ = events.send(Event::ListFailed {
                        kind,
                        error: crate::providers::ProviderError::Local(e.to_string()),
                    });
                    return;
                }
            };
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
                score_format,
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
