//! malt: a terminal tracker for anime and manga lists.
//!
//! The core: `domain` (service-neutral types and the rules of a change, finding entries by
//! title), `store` (the SQLite cache and outbox), `sync` (the outbox worker, list fetches, the
//! session refresher), `library` (every logged-in list, as the cache holds it), `providers` (one
//! implementation of [`providers::Provider`] per service) and `auth` (logins and sessions).
//! The front ends over it: `tui` (the full-screen list: a pure `update`/`view` and their runtime)
//! and `cli` (the command line and the commands for scripts). `app` starts them up.

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod covers;
pub mod domain;
pub mod library;
pub mod login;
pub mod paths;
pub mod providers;
pub mod store;
pub mod sync;
pub mod tui;
