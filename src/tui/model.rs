use std::collections::HashSet;

use crate::config::{KeyMap, Theme};
use crate::covers::Cover;
use crate::domain::{Held, ListEntry, MediaKind, Op, ScoreFormat, Service, Status};
pub use crate::domain::{Key, Refusal, Row};
use crate::providers::{Details, Found};

/// How the last contact with the service went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Link {
    /// Nothing heard yet this run.
    Unknown,
    Online,
    /// Could not reach the service; the list shown is the cached one.
    Offline(String),
}

/// A list fetch in progress.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Fetching {
    /// Kinds still being fetched.
    pub remaining: Vec<MediaKind>,
    /// Entries received so far, per kind (both lists are fetched at once).
    pub received: Vec<(MediaKind, usize)>,
    pub frame: usize,
    /// Entries whose change the service confirmed while the list was being read: the list may
    /// predate that change, so their confirmed state is kept.
    pub confirmed_meanwhile: HashSet<Key>,
    /// A kind's fetch in this round failed or had unreadable items: the others' success must not
    /// clear what was said about it.
    pub troubled: bool,
}

/// The order of the list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Sort {
    #[default]
    Title,
    Progress,
    Score,
    Updated,
    NextAiring,
}

impl Sort {
    pub const ALL: [Sort; 5] = [
        Sort::Title,
        Sort::Progress,
        Sort::Score,
        Sort::Updated,
        Sort::NextAiring,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Sort::Title => "title",
            Sort::Progress => "progress",
            Sort::Score => "score",
            Sort::Updated => "last updated",
            Sort::NextAiring => "next airing",
        }
    }

    pub fn next(self) -> Sort {
        let i = Sort::ALL.iter().position(|s| *s == self).unwrap_or(0);
        Sort::ALL[(i + 1) % Sort::ALL.len()]
    }
}

/// The title filter typed after `/`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Filter {
    pub query: String,
    /// Keys go to the query (until Enter or Esc).
    pub editing: bool,
}

/// A question about one entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Prompt {
    /// Type the count done.
    Count { key: Key, input: String },
    /// Pick a score in the account's format (a menu, or a typed number for the 100-point and
    /// decimal formats).
    Score {
        key: Key,
        choice: u8,
        /// Digits typed so far ("1" then "0" is 10).
        typed: String,
    },
    /// Pick a status.
    Status { key: Key, choice: usize },
    /// The last known episode is reached: mark completed?
    Complete { key: Key },
    /// Remove from the list?
    Delete { key: Key },
}

impl Prompt {
    pub fn key(&self) -> Key {
        match self {
            Prompt::Count { key, .. }
            | Prompt::Score { key, .. }
            | Prompt::Status { key, .. }
            | Prompt::Complete { key }
            | Prompt::Delete { key } => *key,
        }
    }
}

/// The details pane of one entry.
#[derive(Clone, Debug, PartialEq)]
pub struct DetailsPane {
    pub key: Key,
    /// `None` while loading.
    pub details: Option<Result<Details, String>>,
    pub cover: Option<Cover>,
    /// Lines scrolled down.
    pub scroll: u16,
}

/// Search over the service, to add a title.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Search {
    pub kind: MediaKind,
    pub input: String,
    /// Keys go to the query; otherwise they move in the results.
    pub editing: bool,
    /// The query whose results are shown (or awaited).
    pub sent: Option<String>,
    pub searching: bool,
    pub results: Option<Result<Vec<Found>, String>>,
    pub selected: usize,
    /// Choosing the status to add the selected result with.
    pub choosing: Option<usize>,
}

impl Search {
    /// An empty search of `kind`, ready for typing.
    pub fn new(kind: MediaKind) -> Search {
        Search {
            kind,
            input: String::new(),
            editing: true,
            sent: None,
            searching: false,
            results: None,
            selected: 0,
            choosing: None,
        }
    }
}

/// What is drawn over the list.
#[derive(Clone, Debug, PartialEq)]
pub enum Overlay {
    Help,
    Prompt(Prompt),
    Details(Box<DetailsPane>),
    Search(Box<Search>),
}

/// A logged-in service not shown: what its session needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Aside {
    pub login_needed: Option<String>,
    pub session_warning: Option<String>,
    /// The list (anime or manga) shown when the service was left, shown again on return.
    pub kind: Option<MediaKind>,
}

/// Everything the screen shows. Changed only by `update`.
#[derive(Clone, Debug)]
pub struct Model {
    /// The service whose list is shown.
    pub service: Service,
    /// Every service logged in, in the order the switch key goes through them.
    pub services: Vec<Service>,
    pub account: Option<String>,
    /// How the account scores (scores are shown and edited in it).
    pub score_format: ScoreFormat,
    /// The service keeps scores (the score column and prompt are shown).
    pub scores: bool,
    /// The service keeps volumes read (the volumes column is shown).
    pub volumes: bool,
    /// A manga's total is its latest chapter: fewer read means new chapters (`●`).
    pub latest_chapters: bool,
    /// The session still works but needs attention soon (it ends in a few days).
    pub session_warning: Option<String>,
    /// The service being switched to, until its list has been read from the cache.
    pub switching: Option<Service>,
    /// Reports for the service being switched to that came before its list: replayed after it.
    pub held_events: Vec<crate::sync::Event>,
    /// What is known about the sessions of the other logged-in services.
    pub asides: Vec<(Service, Aside)>,
    /// The kinds of list the service keeps.
    pub kinds: Vec<MediaKind>,
    /// The list shown: anime or manga, and which status tab.
    pub kind: MediaKind,
    pub tab: Status,
    /// Every entry of every kind and status.
    pub rows: Vec<Row>,
    /// Indexes into `rows` of the lines shown, in order (tab, filter and sort applied).
    pub visible: Vec<usize>,
    /// Position in `visible`.
    pub selected: usize,
    /// First line shown.
    pub offset: usize,
    /// Lines the list area can show.
    pub list_height: usize,
    /// The terminal's size.
    pub width: u16,
    pub height: u16,
    pub sort: Sort,
    pub filter: Filter,
    pub fetching: Option<Fetching>,
    pub last_sync: Option<jiff::Timestamp>,
    pub link: Link,
    /// A change is waiting for another try: why, and when.
    pub retry: Option<(String, jiff::Timestamp)>,
    /// Set when only a new login helps.
    pub login_needed: Option<String>,
    /// The latest lasting error (a refused change, a conflict, a rebuilt database), until the user
    /// deals with it or another comes.
    pub error: Option<String>,
    /// The latest passing trouble (a server error, throttling, an unreadable answer), until a
    /// request succeeds again.
    pub trouble: Option<String>,
    /// A passing remark (e.g. "already at the last episode").
    pub notice: Option<String>,
    pub overlay: Option<Overlay>,
    /// Entries whose "mark completed?" was answered no this run: not asked again.
    pub declined: HashSet<Key>,
    /// Cover art is wanted in the details pane.
    pub images: bool,
    pub quit: bool,
    pub keys: KeyMap,
    pub theme: Theme,
    /// Times are shown in this zone.
    pub tz: jiff::tz::TimeZone,
    /// The time, as the runtime last set it (dates of changes, countdowns).
    pub now: jiff::Timestamp,
}

impl Model {
    pub fn new(
        service: Service,
        account: Option<String>,
        keys: KeyMap,
        tz: jiff::tz::TimeZone,
    ) -> Model {
        Model {
            service,
            services: vec![service],
            account,
            score_format: ScoreFormat::default(),
            scores: true,
            volumes: true,
            latest_chapters: false,
            session_warning: None,
            switching: None,
            held_events: Vec::new(),
            asides: Vec::new(),
            kinds: MediaKind::ALL.to_vec(),
            kind: MediaKind::Anime,
            tab: Status::Current,
            rows: Vec::new(),
            visible: Vec::new(),
            selected: 0,
            offset: 0,
            list_height: 20,
            width: 80,
            height: 24,
            sort: Sort::Title,
            filter: Filter::default(),
            fetching: None,
            last_sync: None,
            link: Link::Unknown,
            retry: None,
            login_needed: None,
            error: None,
            trouble: None,
            notice: None,
            overlay: None,
            declined: HashSet::new(),
            images: true,
            quit: false,
            keys,
            theme: Theme::default(),
            tz,
            now: jiff::Timestamp::UNIX_EPOCH,
        }
    }

    /// The service whose reports are for the screen: the one shown, or the one being switched to.
    pub fn active(&self) -> Service {
        self.switching.unwrap_or(self.service)
    }

    /// Fills the list from the cache, with the changes still in the outbox laid over it.
    pub fn load(&mut self, entries: Vec<ListEntry>, pending: &[Op], refused: &[(Op, Held)]) {
        self.rows = crate::domain::tracked::track(entries, pending, refused, self.score_format);
        super::list::refresh(self);
    }

    /// Takes the cache and outbox as another process left them, keeping the selection.
    pub fn reload(&mut self, entries: Vec<ListEntry>, pending: &[Op], refused: &[(Op, Held)]) {
        let selected = self.selected_key();
        self.load(entries, pending, refused);
        super::list::reselect(self, selected);
    }

    /// Changes not yet confirmed by the service.
    pub fn pending(&self) -> u32 {
        self.rows.iter().map(|r| r.pending).sum()
    }

    pub fn row_index(&self, kind: MediaKind, id: u64) -> Option<usize> {
        self.rows
            .iter()
            .position(|r| r.entry.id == id && r.entry.kind == kind)
    }

    pub fn row_mut(&mut self, kind: MediaKind, id: u64) -> Option<&mut Row> {
        self.rows
            .iter_mut()
            .find(|r| r.entry.id == id && r.entry.kind == kind)
    }

    pub fn row(&self, key: Key) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.entry.kind == key.0 && r.entry.id == key.1)
    }

    /// The row under the selection.
    pub fn selected_row(&self) -> Option<&Row> {
        self.visible
            .get(self.selected)
            .and_then(|&i| self.rows.get(i))
    }

    pub fn selected_key(&self) -> Option<Key> {
        self.selected_row().map(Row::key)
    }

    /// How many entries of the shown kind each status has (hidden removals not counted).
    pub fn tab_counts(&self) -> [usize; 5] {
        let mut counts = [0; 5];
        for row in &self.rows {
            if row.entry.kind == self.kind && !row.removing {
                counts[row.entry.status.index()] += 1;
            }
        }
        counts
    }

    /// Today in the user's zone, `YYYY-MM-DD`.
    pub fn today(&self) -> String {
        self.now
            .to_zoned_datetime(self.tz.clone())
            .date()
            .to_string()
    }
}
