use super::{MediaKind, Service};

/// A change the user asked for, to be delivered to the service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Set the number of episodes watched.
    Progress(u32),
}

/// A queued change, as stored in the outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    /// Outbox sequence number: the order in which the user made the changes.
    pub seq: i64,
    pub service: Service,
    pub kind: MediaKind,
    pub media_id: u64,
    pub change: Change,
    /// The value the change was based on (what the screen showed before it).
    pub base: u32,
    /// How many times delivery was tried and failed.
    pub attempts: u32,
    /// The service was known to hold `base` when the change was made, so it can be sent without
    /// looking first. Changes made offline, or left from an earlier run, are checked before sending,
    /// so an edit made elsewhere meanwhile is never silently overwritten.
    pub verified: bool,
}

/// What the service answered to a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ack {
    /// The progress the service now holds.
    pub progress: u32,
}
