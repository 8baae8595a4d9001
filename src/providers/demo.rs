//! The built-in sample list behind `malt --demo`: the same screens, no account, no network.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use super::{Fetched, Provider, ProviderError};
use crate::domain::{Ack, Change, ListEntry, MediaKind, Service, Status};

const SAMPLE: &[(u64, &str, u32, Option<u32>, u8)] = &[
    (52991, "Sousou no Frieren", 17, Some(28), 10),
    (5114, "Fullmetal Alchemist: Brotherhood", 52, Some(64), 10),
    (9253, "Steins;Gate", 12, Some(24), 9),
    (21, "One Piece", 1071, None, 9),
    (40748, "Jujutsu Kaisen", 20, Some(24), 8),
    (50265, "Spy x Family", 9, Some(12), 8),
    (44511, "Chainsaw Man", 11, Some(12), 8),
    (16498, "Shingeki no Kyojin", 4, Some(25), 0),
    (1535, "Death Note", 30, Some(37), 9),
    (20583, "Haikyuu!!", 14, Some(25), 8),
    (38000, "Kimetsu no Yaiba", 0, Some(26), 0),
    (37521, "Vinland Saga", 22, Some(24), 9),
    (49387, "Vinland Saga Season 2", 5, Some(24), 0),
    (51009, "Jujutsu Kaisen 2nd Season", 2, Some(23), 0),
    (11061, "Hunter x Hunter (2011)", 100, Some(148), 10),
    (30276, "One Punch Man", 7, Some(12), 7),
    (32281, "Kimi no Na wa.", 0, Some(1), 0),
    (52034, "Oshi no Ko", 6, Some(11), 8),
];

/// A list held in memory, answering like a service would, a little slowly.
pub struct Demo {
    entries: Mutex<Vec<ListEntry>>,
    latency: Duration,
}

impl Default for Demo {
    fn default() -> Self {
        Demo::new(Duration::from_millis(350))
    }
}

impl Demo {
    pub fn new(latency: Duration) -> Demo {
        let entries = SAMPLE
            .iter()
            .map(|&(id, title, progress, total, score)| ListEntry {
                id,
                kind: MediaKind::Anime,
                title: title.to_string(),
                status: Status::Watching,
                progress,
                total,
                score,
                updated_at: None,
            })
            .collect();
        Demo {
            entries: Mutex::new(entries),
            latency,
        }
    }

    /// The sample list as it stands.
    pub fn entries(&self) -> Vec<ListEntry> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<ListEntry>> {
        // The list is plain data: a panic elsewhere cannot leave it half-changed.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl Provider for Demo {
    fn service(&self) -> Service {
        Service::Demo
    }

    async fn fetch_list(
        &self,
        status: Status,
        arrived: &(dyn Fn(usize) + Send + Sync),
    ) -> Result<Fetched, ProviderError> {
        let all: Vec<ListEntry> = self
            .lock()
            .iter()
            .filter(|e| e.status == status)
            .cloned()
            .collect();
        // Two "pages", as a real service would send them.
        let half = all.len() / 2;
        tokio::time::sleep(self.latency).await;
        arrived(half);
        tokio::time::sleep(self.latency).await;
        arrived(all.len());
        Ok(Fetched {
            entries: all,
            unreadable: 0,
        })
    }

    async fn apply(
        &self,
        _kind: MediaKind,
        media_id: u64,
        change: Change,
    ) -> Result<Ack, ProviderError> {
        tokio::time::sleep(self.latency).await;
        let Change::Progress(progress) = change;
        let mut entries = self.lock();
        let entry = entries
            .iter_mut()
            .find(|e| e.id == media_id)
            .ok_or_else(|| ProviderError::Rejected("this title is not in the demo list".into()))?;
        entry.progress = progress;
        Ok(Ack { progress })
    }

    async fn current(&self, _kind: MediaKind, media_id: u64) -> Result<Option<u32>, ProviderError> {
        tokio::time::sleep(self.latency).await;
        Ok(self
            .lock()
            .iter()
            .find(|e| e.id == media_id)
            .map(|e| e.progress))
    }

    async fn keep_fresh(&self) -> Result<Option<Duration>, ProviderError> {
        Ok(None)
    }
}
