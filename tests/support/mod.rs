#![allow(dead_code)]
//! Test support shared by the integration tests.
//!
//! `mal` is a stateful fake of MyAnimeList's OAuth2 server and API v2
//! (see `shared/api/NOTES.md` §1 for the behaviour it copies).

pub mod mal;
