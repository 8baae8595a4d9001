use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::sync::mpsc::UnboundedSender;

use super::Event;
use crate::providers::Provider;

/// Keeps the session fresh for as long as the app runs: refreshes before the access token expires,
/// waits out network trouble, tells the UI when only a new login helps, and when a new login (from
/// another terminal) has arrived. `recheck` wakes it early, e.g. when a request found the session
/// expired.
pub async fn keep_fresh(
    provider: Arc<dyn Provider>,
    events: UnboundedSender<Event>,
    recheck: Arc<Notify>,
) {
    let mut told = false;
    let mut warned = None;
    loop {
        let checked = provider.keep_fresh().await;
        if checked.is_ok() {
            let warning = provider.session_warning();
            if warning != warned {
                let _ = events.send(Event::SessionWarning(warning.clone()));
                warned = warning;
            }
        }
        let wait = match checked {
            Ok(Some(wait)) => {
                if told {
                    tracing::info!("a new login was found; resuming");
                    let _ = events.send(Event::LoginRestored);
                    told = false;
                }
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
                Duration::from_secs(5)
            }
            Err(e) => {
                tracing::warn!("session refresh failed, will retry: {e}");
                Duration::from_secs(60)
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            // Woken because a request found the session expired: whatever the next look finds, the
            // screen is showing that, so a session found working again must be announced.
            _ = recheck.notified() => told = true,
        }
    }
}
