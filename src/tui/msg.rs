use crossterm::event::{KeyEvent, MouseEvent};

use super::model::Key;
use crate::covers::Cover;
use crate::domain::MediaKind;
use crate::providers::{Details, Found};
use crate::sync::Event;

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
    /// Background work reported.
    Sync(Event),
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
