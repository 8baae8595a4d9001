use serde::{Deserialize, Serialize};

use super::airing::Schedule;

/// Where a list lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Service {
    /// MyAnimeList (api.myanimelist.net v2).
    Mal,
    /// AniList (graphql.anilist.co).
    Anilist,
    /// MangaDex (api.mangadex.org v5).
    Mangadex,
    /// The built-in sample list of `malt --demo`.
    Demo,
}

impl Service {
    /// Stable key used in the database and file names.
    pub fn key(self) -> &'static str {
        match self {
            Service::Mal => "mal",
            Service::Anilist => "anilist",
            Service::Mangadex => "mangadex",
            Service::Demo => "demo",
        }
    }

    pub const ALL: [Service; 4] = [
        Service::Mal,
        Service::Anilist,
        Service::Mangadex,
        Service::Demo,
    ];

    pub fn from_key(key: &str) -> Option<Service> {
        Service::ALL.into_iter().find(|s| s.key() == key)
    }

    /// The services a user can log in to, in the order the app offers them.
    pub const LOGGABLE: [Service; 3] = [Service::Mal, Service::Anilist, Service::Mangadex];

    /// The command that logs in to this service.
    pub fn login_command(self) -> &'static str {
        match self {
            Service::Mal => "malt --login",
            Service::Anilist => "malt --login anilist",
            Service::Mangadex => "malt --login mangadex",
            Service::Demo => "malt --demo",
        }
    }

    /// Name shown to people.
    pub fn display_name(self) -> &'static str {
        match self {
            Service::Mal => "MyAnimeList",
            Service::Anilist => "AniList",
            Service::Mangadex => "MangaDex",
            Service::Demo => "Demo",
        }
    }

    /// Short name for tight places ("MAL says 7").
    pub fn short_name(self) -> &'static str {
        match self {
            Service::Mal => "MAL",
            Service::Anilist => "AniList",
            Service::Mangadex => "MangaDex",
            Service::Demo => "Demo",
        }
    }
}

/// What kind of work an entry tracks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum MediaKind {
    Anime,
    Manga,
}

impl MediaKind {
    pub const ALL: [MediaKind; 2] = [MediaKind::Anime, MediaKind::Manga];

    /// Stable key used in the database.
    pub fn key(self) -> &'static str {
        match self {
            MediaKind::Anime => "anime",
            MediaKind::Manga => "manga",
        }
    }

    pub fn from_key(key: &str) -> Option<MediaKind> {
        MediaKind::ALL.into_iter().find(|k| k.key() == key)
    }

    pub fn label(self) -> &'static str {
        match self {
            MediaKind::Anime => "Anime",
            MediaKind::Manga => "Manga",
        }
    }

    /// What progress counts: "episode" or "chapter".
    pub fn unit(self) -> &'static str {
        match self {
            MediaKind::Anime => "episode",
            MediaKind::Manga => "chapter",
        }
    }

    pub fn units(self) -> &'static str {
        match self {
            MediaKind::Anime => "episodes",
            MediaKind::Manga => "chapters",
        }
    }

    /// The other kind.
    pub fn other(self) -> MediaKind {
        match self {
            MediaKind::Anime => MediaKind::Manga,
            MediaKind::Manga => MediaKind::Anime,
        }
    }
}

/// The user's status for an entry, the same five for anime and manga (watching and reading are
/// both `Current`). Rewatching/rereading is a flag on the entry, shown as a marker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Status {
    Current,
    Completed,
    OnHold,
    Dropped,
    Planning,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::Current,
        Status::Completed,
        Status::OnHold,
        Status::Dropped,
        Status::Planning,
    ];

    /// Stable key used in the database.
    pub fn key(self) -> &'static str {
        match self {
            Status::Current => "current",
            Status::Completed => "completed",
            Status::OnHold => "on_hold",
            Status::Dropped => "dropped",
            Status::Planning => "planning",
        }
    }

    pub fn from_key(key: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.key() == key)
    }

    /// Position in [`Status::ALL`]: the tab order.
    pub fn index(self) -> usize {
        Status::ALL.iter().position(|s| *s == self).unwrap_or(0)
    }

    pub fn label(self, kind: MediaKind) -> &'static str {
        match (self, kind) {
            (Status::Current, MediaKind::Anime) => "Watching",
            (Status::Current, MediaKind::Manga) => "Reading",
            (Status::Completed, _) => "Completed",
            (Status::OnHold, _) => "On hold",
            (Status::Dropped, _) => "Dropped",
            (Status::Planning, MediaKind::Anime) => "Plan to watch",
            (Status::Planning, MediaKind::Manga) => "Plan to read",
        }
    }
}

/// Facts about the work itself (not the user's list), kept with the entry for the list's markers
/// and sorting.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Media {
    /// "tv", "movie", "manga", "manhwa", …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// Cover art address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picture: Option<String>,
    /// Airing facts, for anime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Box<Schedule>>,
    /// Still coming out, where the total is only the latest chapter so far (MangaDex): reading
    /// the last chapter out does not finish it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ongoing: bool,
}

/// What the user's list holds for one work: the part a change can touch.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListState {
    pub status: Option<Status>,
    /// Episodes watched / chapters read.
    pub progress: u32,
    /// Volumes read (manga).
    pub volumes: u32,
    /// 0 means "no score".
    pub score: u8,
    /// Rewatching / rereading.
    pub repeating: bool,
    pub start_date: Option<String>,
    pub finish_date: Option<String>,
    pub updated_at: Option<String>,
}

/// One title on the user's list, as the service last confirmed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListEntry {
    /// The service's id of the work (MAL anime or manga id).
    pub id: u64,
    pub kind: MediaKind,
    pub title: String,
    pub status: Status,
    /// Episodes watched / chapters read.
    pub progress: u32,
    /// Episodes / chapters in total; `None` when the service does not know yet.
    pub total: Option<u32>,
    /// Volumes read (manga).
    #[serde(default)]
    pub volumes: u32,
    #[serde(default)]
    pub total_volumes: Option<u32>,
    /// 0 means "no score"; counted in the account's [`ScoreFormat`](super::ScoreFormat).
    pub score: u8,
    /// Rewatching / rereading.
    #[serde(default)]
    pub repeating: bool,
    /// When the user started and finished, `YYYY-MM-DD` (or as precise as the service has it).
    #[serde(default)]
    pub start_date: Option<String>,
    #[serde(default)]
    pub finish_date: Option<String>,
    /// When the service last saw a change, as it reported it (RFC 3339).
    pub updated_at: Option<String>,
    #[serde(default)]
    pub media: Media,
}

impl ListEntry {
    /// A new entry of `kind` with nothing watched yet.
    pub fn new(id: u64, kind: MediaKind, title: &str, status: Status) -> ListEntry {
        ListEntry {
            id,
            kind,
            title: title.into(),
            status,
            progress: 0,
            total: None,
            volumes: 0,
            total_volumes: None,
            score: 0,
            repeating: false,
            start_date: None,
            finish_date: None,
            updated_at: None,
            media: Media::default(),
        }
    }

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
            progress,
            total,
            score,
            ..ListEntry::new(id, MediaKind::Anime, title, Status::Current)
        }
    }

    /// The progress after one more episode, or `None` when the known total is reached.
    pub fn incremented(&self, progress: u32) -> Option<u32> {
        match self.total {
            Some(total) if progress >= total => None,
            _ => progress.checked_add(1),
        }
    }

    /// The part of the entry a change can touch.
    pub fn state(&self) -> ListState {
        ListState {
            status: Some(self.status),
            progress: self.progress,
            volumes: self.volumes,
            score: self.score,
            repeating: self.repeating,
            start_date: self.start_date.clone(),
            finish_date: self.finish_date.clone(),
            updated_at: self.updated_at.clone(),
        }
    }

    /// Takes what the service holds (a state without a status leaves the status as it was).
    pub fn set_state(&mut self, state: &ListState) {
        if let Some(status) = state.status {
            self.status = status;
        }
        self.progress = state.progress;
        self.volumes = state.volumes;
        self.score = state.score;
        self.repeating = state.repeating;
        self.start_date = state.start_date.clone();
        self.finish_date = state.finish_date.clone();
        if state.updated_at.is_some() {
            self.updated_at = state.updated_at.clone();
        }
    }
}
