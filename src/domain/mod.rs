//! Service-neutral types: what a list entry is and what a change to it is.

pub mod airing;
mod entry;
mod op;
mod score;

pub use entry::{ListEntry, ListState, Media, MediaKind, Service, Status};
pub use op::{Ack, Change, Field, Op, Patch};
pub use score::ScoreFormat;
