//! Service-neutral types: what a list entry is and what a change to it is.

mod entry;
mod op;

pub use entry::{ListEntry, MediaKind, Service, Status};
pub use op::{Ack, Change, Op};
