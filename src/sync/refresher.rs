use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;

use super::Event;
use crate::providers::Provider;

/// Keeps the session fresh for as long as the app runs: refreshes before the access token expires,
/// waits out network trouble, and tells the UI when only a new login helps.
pub async fn keep_fresh(provider: Arc<dyn Provider>, events: UnboundedSender<Event>) {
    let mut told = false;
    loop {
        let wait = match provider.keep_fresh().await {
            Ok(Some(wait)) => {
                told = false;
                wait
            }
            // Nothing to keep fresh: idle for the rest of the run (returning would read as a crash).
            Ok(None) => std::future::pending().await,
            Err(e) if e.needs_login() => {
                if !told {
                    let _ = events.send(Event::LoginNeeded(e));
                    told = true;
                }
                // Checks the token file only; a new `malt --login` is picked up here.
                Duration::from_secs(10)
            }
            Err(e) => {
                tracing::warn!("session refresh failed, will retry: {e}");
                Duration::from_secs(60)
            }
        };
        tokio::time::sleep(wait).await;
    }
}
