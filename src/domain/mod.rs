//! The service-neutral core: what a list entry is, what a change to it is, the rules of a change,
//! the list as the user sees it, and finding entries by title. Every front end (the list screen,
//! the shell commands) goes through these.

pub mod airing;
mod entry;
mod op;
pub mod query;
pub mod rules;
mod score;
pub mod tracked;

pub use entry::{ListEntry, ListState, Media, MediaKind, Service, Status};
pub use op::{Ack, Change, Field, Held, Op, Patch};
pub use score::ScoreFormat;
pub use tracked::{Key, Refusal, Row, Staged};
