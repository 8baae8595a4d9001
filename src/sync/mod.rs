//! Background work: the outbox worker that delivers changes, the session refresher, and list
//! fetches. They report to the UI through [`Event`]s and never block it.

mod deliver;
mod fetch;
mod refresher;
mod worker;

pub use deliver::{Delivery, await_delivery};
pub use fetch::fetch_list;
pub use refresher::keep_fresh;
pub use worker::{Worker, backoff};

use crate::domain::{ListEntry, ListState, MediaKind, Op, ScoreFormat};
use crate::providers::ProviderError;

/// What background work tells the UI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A list fetch has received this many entries of one kind so far.
    ListProgress { kind: MediaKind, received: usize },
    /// A list fetch finished and the cache holds the result.
    ListFetched {
        kind: MediaKind,
        entries: Vec<ListEntry>,
        /// Items that could not be read; entries missing from `entries` may be among them.
        unreadable: usize,
        /// How the account scores (when the service said).
        score_format: Option<ScoreFormat>,
        at: jiff::Timestamp,
    },
    ListFailed {
        kind: MediaKind,
        error: ProviderError,
    },
    /// The service confirmed a change.
    Delivered {
        seq: i64,
        kind: MediaKind,
        media_id: u64,
        /// What the service now holds; `None`: the entry is off the list.
        state: Option<ListState>,
    },
    /// A change could not be delivered now; it will be tried again at `next_at`.
    Retrying {
        media_id: u64,
        error: ProviderError,
        next_at: jiff::Timestamp,
    },
    /// The service refused a change for good.
    Refused {
        kind: MediaKind,
        media_id: u64,
        /// The change that was refused, in words ("episode 8").
        what: String,
        error: ProviderError,
    },
    /// The session needs a new login; changes stay queued.
    LoginNeeded(ProviderError),
    /// A new login has been found after the session had expired.
    LoginRestored,
    /// Something to know about a session that still works (it ends soon); `None` clears it.
    SessionWarning(Option<String>),
    /// Another malt process changed the database: the cache and the outbox as they now stand.
    StoreChanged {
        entries: Vec<ListEntry>,
        pending: Vec<Op>,
        refused: Vec<(Op, crate::store::Held)>,
    },
    /// What the service holds for an entry differs from what its waiting changes were based on
    /// (it was edited elsewhere): they are held back until the user keeps one side.
    Conflict {
        kind: MediaKind,
        media_id: u64,
        /// The user's latest value, in words ("episode 8").
        mine: String,
        /// The service's value, in words ("episode 7", "not on the list").
        theirs: String,
        /// What the service holds; `None` when the entry is no longer on the list.
        state: Option<ListState>,
        /// How many waiting changes are held back.
        held: u32,
    },
    /// A change could not even be written to the local database.
    NotSaved {
        kind: MediaKind,
        media_id: u64,
        error: String,
    },
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}
