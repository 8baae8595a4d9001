use super::model::Key;
use crate::domain::{Change, ListEntry, ListState, MediaKind, Service};

/// Work `update` asks the runtime to do. Effects are data, so `update` stays pure and testable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Write a change to the outbox, then wake the worker to send it.
    Enqueue {
        kind: MediaKind,
        media_id: u64,
        change: Change,
        /// See `Op::base`.
        base: u32,
        /// The screen showed what the service holds (see `Op::verified`).
        fresh: bool,
        /// An entry added from search, as shown.
        entry: Option<Box<ListEntry>>,
        /// See `Op::base_state`.
        base_state: Option<ListState>,
    },
    /// Fetch one kind's whole list from the service.
    Fetch(MediaKind),
    /// Try every waiting change now, whatever its back-off.
    SendNow,
    /// Have the session checked now (a request found it expired).
    CheckLogin,
    /// Put an entry's refused changes back in the queue.
    RetryRefused { kind: MediaKind, media_id: u64 },
    /// Forget an entry's refused changes.
    DropRefused { kind: MediaKind, media_id: u64 },
    /// Search the service.
    Search { kind: MediaKind, query: String },
    /// Load what the details pane shows.
    LoadDetails { key: Key },
    /// Read another logged-in service's list from the cache, to show it.
    SwitchService(Service),
    /// Load cover art to fit `cols`×`rows` cells.
    LoadCover {
        key: Key,
        url: String,
        cols: u16,
        rows: u16,
    },
}
