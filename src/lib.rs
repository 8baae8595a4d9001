//! malt: a terminal tracker for anime lists.
//!
//! `domain` holds service-neutral types; `providers` one implementation of [`providers::Provider`]
//! per service; `auth` the login and session; `store` the SQLite cache and outbox; `sync` the
//! background work; `tui` the pure `update`/`view` and their runtime; `app` wires them together.

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod covers;
pub mod domain;
pub mod login;
pub mod paths;
pub mod providers;
pub mod store;
pub mod sync;
pub mod tui;
