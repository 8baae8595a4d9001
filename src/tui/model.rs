use crate::config::KeyMap;
use crate::domain::{Change, ListEntry, Op, Service, Status};
use crate::store::Held;

/// One line of the list: the entry as shown, and what the service has confirmed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// The entry with the progress the user sees (their latest change).
    pub entry: ListEntry,
    /// The progress the service last confirmed.
    pub confirmed: u32,
    /// Changes sent or waiting that the service has not confirmed yet.
    pub pending: u32,
    /// The change the service refused, if it did; kept until retried, dropped or superseded.
    pub refused: Option<Refusal>,
}

/// A change the service refused for good.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The progress that was refused.
    pub value: u32,
    /// How many refused changes the entry has.
    pub count: u32,
    pub reason: String,
    /// `Some` when this is a conflict with an edit made elsewhere: the service's value (`None` when
    /// the entry is no longer on the list there).
    pub conflict: Option<Option<u32>>,
}

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
    pub received: usize,
    pub frame: usize,
    /// Entries whose change the service confirmed while the list was being read: the list may
    /// predate that change, so their confirmed value is kept.
    pub confirmed_meanwhile: std::collections::HashSet<u64>,
}

/// Everything the screen shows. Changed only by `update`.
#[derive(Clone, Debug)]
pub struct Model {
    pub service: Service,
    pub account: Option<String>,
    pub status: Status,
    pub rows: Vec<Row>,
    pub selected: usize,
    /// First row shown.
    pub offset: usize,
    /// Rows the list area can show.
    pub list_height: usize,
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
    pub help: bool,
    pub quit: bool,
    pub keys: KeyMap,
    /// Times are shown in this zone.
    pub tz: jiff::tz::TimeZone,
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
            account,
            status: Status::Watching,
            rows: Vec::new(),
            selected: 0,
            offset: 0,
            list_height: 20,
            fetching: None,
            last_sync: None,
            link: Link::Unknown,
            retry: None,
            login_needed: None,
            error: None,
            trouble: None,
            notice: None,
            help: false,
            quit: false,
            keys,
            tz,
        }
    }

    /// Fills the list from the cache, with the changes still in the outbox laid over it.
    pub fn load(&mut self, entries: Vec<ListEntry>, pending: &[Op], refused: &[(Op, Held)]) {
        self.rows = entries
            .into_iter()
            .map(|entry| Row {
                confirmed: entry.progress,
                entry,
                pending: 0,
                refused: None,
            })
            .collect();
        for (op, held) in refused {
            if let Some(row) = self.rows.iter_mut().find(|r| r.entry.id == op.media_id) {
                let Change::Progress(value) = op.change;
                let count = row.refused.as_ref().map_or(0, |r| r.count) + 1;
                row.refused = Some(Refusal {
                    value,
                    count,
                    reason: held.reason.clone(),
                    conflict: held.conflict.then_some(held.theirs),
                });
                if held.conflict {
                    // Both sides stay visible: the row shows the user's value, the bar the other.
                    row.entry.progress = value;
                }
            }
        }
        for op in pending {
            if let Some(row) = self.rows.iter_mut().find(|r| r.entry.id == op.media_id) {
                let Change::Progress(value) = op.change;
                row.entry.progress = value;
                row.pending += 1;
            }
        }
        self.selected = self.selected.min(self.rows.len().saturating_sub(1));
    }

    /// Takes the cache and outbox as another process left them, keeping the selection.
    pub fn reload(&mut self, entries: Vec<ListEntry>, pending: &[Op], refused: &[(Op, Held)]) {
        let selected = self.rows.get(self.selected).map(|r| r.entry.id);
        self.load(entries, pending, refused);
        if let Some(i) = selected.and_then(|id| self.rows.iter().position(|r| r.entry.id == id)) {
            self.selected = i;
        }
    }

    /// Changes not yet confirmed by the service.
    pub fn pending(&self) -> u32 {
        self.rows.iter().map(|r| r.pending).sum()
    }

    pub fn row_mut(&mut self, media_id: u64) -> Option<&mut Row> {
        self.rows.iter_mut().find(|r| r.entry.id == media_id)
    }
}
