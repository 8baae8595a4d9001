use crate::domain::{Change, MediaKind, Status};

/// Work `update` asks the runtime to do. Effects are data, so `update` stays pure and testable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Write a change to the outbox, then wake the worker to send it.
    Enqueue {
        kind: MediaKind,
        media_id: u64,
        change: Change,
        base: u32,
        /// The screen showed what the service holds (see `Op::verified`).
        fresh: bool,
    },
    /// Fetch the list with this status from the service.
    Fetch(Status),
    /// Try every waiting change now, whatever its back-off.
    SendNow,
    /// Have the session checked now (a request found it expired).
    CheckLogin,
    /// Put an entry's refused changes back in the queue.
    RetryRefused { kind: MediaKind, media_id: u64 },
    /// Forget an entry's refused changes.
    DropRefused { kind: MediaKind, media_id: u64 },
}
