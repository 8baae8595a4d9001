#![allow(dead_code)]
//! Test support shared by the integration tests.
//!
//! `mal` is a stateful fake of MyAnimeList's OAuth2 server and API v2
//! (see `shared/api/NOTES.md` §1 for the behaviour it copies).
//! `anilist` is a stateful fake of AniList's GraphQL API and OAuth server
//! (NOTES §2; it uses `mal`'s PNG and urlencoding helpers).
//! `mangadex` is a stateful fake of MangaDex's Keycloak token endpoint and API v5
//! (NOTES §3; auth_url `{base}/realms/mangadex/protocol/openid-connect`).

pub mod anilist;
pub mod mal;
pub mod mangadex;
pub mod net;
