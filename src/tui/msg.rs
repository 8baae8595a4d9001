use crossterm::event::{KeyEvent, MouseEvent};

use super::model::Key;
use crate::covers::Cover;
use crate::domain::{ListEntry, MediaKind, Op, ScoreFormat, Service};
use crate::providers::{Details, Found};
use crate::store::Held;
use crate::sync::Event;

/// One service's list as the cache holds it, to show when switching to it.
#[derive(Clone, Debug, PartialEq)]
pub struct Loaded {
    pub service: Service,
    pub kinds: Vec<MediaKind>,
    pub account: Option<String>,
    pub entries: Vec<ListEntry>,
    pub pending: Vec<Op>,
    pub refused: Vec<(Op, Held)>,
    pub last_sync: Option<jiff::Timestamp>,
    pub score_format: ScoreFormat,
    /// The list keeps scores.
    pub scores: bool,
    /// The list keeps volumes read.
    pub volumes: bool,
    /// A manga's total is its latest chapter (see `Provider::total_is_latest`).
    pub latest_chapters: bool,
}

/// Everything that can change the model.
#[derive(Clone, Debug, PartialEq)]
pub enum Msg {
    Key(KeyEvent),
    Mouse(MouseEvent),
    /// The terminal's new size (columns, rows).
    Resize(u16, u16),
    /// The time now (sent by the runtime before anything else it passes on).
    Clock(jiff::Timestamp),
    /// Animation step; only sent while something is animating.
    Tick,
    /// Background work of the service shown reported.
    Sync(Event),
    /// Background work of another logged-in service reported.
    Elsewhere(Service, Event),
    /// Another service's list, read from the cache, to show now.
    ServiceLoaded(Box<Loaded>),
    /// Another service's list could not be read from the cache.
    ServiceFailed {
        service: Service,
        error: String,
    },
    /// A search finished.
    Searched {
        kind: MediaKind,
        query: String,
        result: Result<Vec<Found>, String>,
    },
    /// The details of an entry arrived.
    DetailsLoaded {
        key: Key,
        result: Result<Box<Details>, String>,
    },
    /// Cover art for the details pane is ready.
    CoverLoaded {
        key: Key,
        cover: Cover,
    },
    /// The terminal went away, or the process was asked to stop.
    Shutdown,
}
