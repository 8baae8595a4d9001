use serde::{Deserialize, Serialize};

/// Where a list lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Service {
    /// MyAnimeList (api.myanimelist.net v2).
    Mal,
    /// The built-in sample list of `malt --demo`.
    Demo,
}

impl Service {
    /// Stable key used in the database and file names.
    pub fn key(self) -> &'static str {
        match self {
            Service::Mal => "mal",
            Service::Demo => "demo",
        }
    }

    /// Name shown to people.
    pub fn display_name(self) -> &'static str {
        match self {
            Service::Mal => "MyAnimeList",
            Service::Demo => "Demo",
        }
    }
}

/// What kind of work an entry tracks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MediaKind {
    Anime,
}

impl MediaKind {
    pub fn key(self) -> &'static str {
        match self {
            MediaKind::Anime => "anime",
        }
    }
}

/// The user's status for an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Status {
    Watching,
    Completed,
    OnHold,
    Dropped,
    PlanToWatch,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::Watching,
        Status::Completed,
        Status::OnHold,
        Status::Dropped,
        Status::PlanToWatch,
    ];

    /// Stable key used in the database (equal to MAL's spelling).
    pub fn key(self) -> &'static str {
        match self {
            Status::Watching => "watching",
            Status::Completed => "completed",
            Status::OnHold => "on_hold",
            Status::Dropped => "dropped",
            Status::PlanToWatch => "plan_to_watch",
        }
    }

    pub fn from_key(key: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.key() == key)
    }

    pub fn label(self) -> &'static str {
        match self {
            Status::Watching => "Watching",
            Status::Completed => "Completed",
            Status::OnHold => "On hold",
            Status::Dropped => "Dropped",
            Status::PlanToWatch => "Plan to watch",
        }
    }
}

/// One title on the user's list, as the service last confirmed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListEntry {
    /// The service's id of the work (MAL anime id).
    pub id: u64,
    pub kind: MediaKind,
    pub title: String,
    pub status: Status,
    /// Episodes watched.
    pub progress: u32,
    /// Episodes in total; `None` when the service does not know yet.
    pub total: Option<u32>,
    /// 0 means "no score".
    pub score: u8,
    /// When the service last saw a change, as it reported it (RFC 3339).
    pub updated_at: Option<String>,
}

impl ListEntry {
    /// A watching anime entry, for tests.
    #[cfg(test)]
    pub fn watching(
        id: u64,
        title: &str,
        progress: u32,
        total: Option<u32>,
        score: u8,
    ) -> ListEntry {
        ListEntry {
            id,
            kind: MediaKind::Anime,
            title: title.into(),
            status: Status::Watching,
            progress,
            total,
            score,
            updated_at: None,
        }
    }

    /// The progress after one more episode, or `None` when the known total is reached.
    pub fn incremented(&self, progress: u32) -> Option<u32> {
        match self.total {
            Some(total) if progress >= total => None,
            _ => progress.checked_add(1),
        }
    }
}
