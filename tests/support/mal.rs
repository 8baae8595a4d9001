//! A stateful fake of MyAnimeList's OAuth2 server (`/v1/oauth2/…`) and API v2
//! (`/v2/…`), served over real HTTP on `127.0.0.1` by axum.
//!
//! It copies the behaviour recorded in `shared/api/NOTES.md` §1 and the
//! fixtures in `shared/api/fixtures/mal/`, quirks included:
//! - PKCE is `plain` only (`code_verifier` must equal the `code_challenge`);
//! - token errors use league/oauth2-server's `{"error","message","hint"}` shape,
//!   refresh-token errors answer **401**;
//! - refresh tokens rotate: a used one is revoked, as is the access token issued
//!   with it;
//! - an invalid/expired access token answers 401 with
//!   `WWW-Authenticate: Bearer error="invalid_token",…` and `{"error":"invalid_token"}`;
//!   `@me` and `my_list_status` routes need a Bearer token, details and search
//!   also take `X-MAL-CLIENT-ID` (see [`FakeMal::set_client_id`]);
//! - lists and search silently omit `gray`/`black` (NSFW-flagged) titles unless
//!   `nsfw=true`;
//! - `paging.next`/`previous` are absolute URLs (`offset` first); `paging` is `{}`
//!   on a single page; lists clamp `limit` to 1000, search answers 400
//!   "invalid limit" above 100 and "invalid q" for a `q` outside 3–64 characters;
//! - anime PATCH takes `num_watched_episodes` but answers `num_episodes_watched`
//!   (manga uses the same names both ways); an unknown form field answers 400
//!   "This form should not contain extra fields." (so sending the response name
//!   is caught); an invalid value answers 400 `invalid <field>`; a non-form body
//!   is ignored like PHP does (a new entry is created with defaults, an
//!   existing one answers 500);
//! - details and search serve only the requested `fields` (plus `id`, `title`,
//!   `main_picture`); `my_list_status` only to a Bearer token and only for
//!   titles on the list; unknown totals are `0`;
//! - the manga list's `list_status` always carries `comments` and `tags` (as in
//!   the recorded `user-mangalist-page.json`), the anime list's only on request;
//! - JSON is served with PHP's `\/` escaping.
//!
//! Covers: titles without an explicit picture get `main_picture` URLs on the
//! fake itself (`{base}/images/anime/{id}.png`, `…/{id}l.png`); every
//! `GET /images/…` answers a tiny valid PNG ([`cover_png`]). Image requests are
//! counted by [`FakeMal::image_requests`] and are not in [`FakeMal::requests`].
//!
//! Default list order (no `sort`): `updated_at` descending, then id ascending;
//! `list_score` and `{anime|manga}_start_date` descending (no date last),
//! `{anime|manga}_title` and `_id` ascending.
//! Search results come in id order (MAL orders by relevance).
//!
//! ```ignore
//! let fake = FakeMal::start().await; // or FakeMal::start_background() in a sync #[test]
//! fake.add_anime(Anime { watched: 3, ..Anime::new(1, "Title", 12) });
//! fake.add_anime(Anime::new(2, "Airing", 0).airing("saturday", "23:30", "2025-04-05").mean(8.5));
//! fake.add_manga(Manga::new(3, "Manhwa", 0, 0).media_type("manhwa").chapters_read(167));
//! let (access, refresh) = fake.issue_tokens(3600); // or run the real /authorize + /token flow
//! // point the app at fake.api_url() / fake.auth_url() with FakeMal::CLIENT_ID, then:
//! assert_eq!(fake.patches()[0].get("num_watched_episodes"), Some("4"));
//! ```

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, OriginalUri, Path, RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use rand::RngExt;
use rand::distr::{Alphanumeric, SampleString};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

// ---------------------------------------------------------------------------
// Exact bodies (compact JSON; equal in value to the recorded fixtures).
// ---------------------------------------------------------------------------

/// `WWW-Authenticate` value sent with every 401 from the API.
pub const INVALID_TOKEN_WWW_AUTHENTICATE: &str =
    r#"Bearer error="invalid_token",error_description="The access token expired""#;
/// Body of an API 401 (fixture `error-401-invalid_token-expired-access-token.json`).
pub const INVALID_TOKEN_BODY: &str = r#"{"error":"invalid_token"}"#;
/// MAL's throttling / "DoS detected" answer (fixture `error-403-forbidden.json`); handy for `fail_next`.
pub const FORBIDDEN_BODY: &str = r#"{"message":"","error":"forbidden"}"#;
/// 404 body (unknown anime/manga, entry not on the list, unknown route).
pub const NOT_FOUND_BODY: &str = r#"{"message":"","error":"not_found"}"#;
/// 400 for a search `q` shorter than 3 or longer than 64 characters
/// (byte-equal to fixture `error-400-bad_request.json`).
pub const INVALID_Q_BODY: &str = r#"{"error":"bad_request","message":"invalid q"}"#;
/// 400 for a search `limit` above 100 (or not a positive number).
pub const INVALID_LIMIT_BODY: &str = r#"{"error":"bad_request","message":"invalid limit"}"#;
/// Generic 400 for an invalid PATCH value. No longer answered: the fake names
/// the field, see [`invalid_field_body`]. Kept for existing users.
pub const INVALID_CONTENT_BODY: &str = r#"{"message":"invalid content","error":"bad_request"}"#;
/// 400 for an unknown PATCH form field (real MAL text, e.g. for `num_episodes_watched`).
pub const EXTRA_FIELDS_BODY: &str =
    r#"{"message":"This form should not contain extra fields.","error":"bad_request"}"#;
/// 500 answered to a non-form PATCH on an entry already on the list.
pub const INTERNAL_ERROR_BODY: &str = r#"{"message":"","error":"internal_server_error"}"#;
/// Token endpoint: unknown client / wrong secret (HTTP 401).
pub const INVALID_CLIENT_BODY: &str =
    r#"{"error":"invalid_client","message":"Client authentication failed"}"#;
/// Token endpoint: missing/unknown `grant_type` (HTTP 400).
pub const UNSUPPORTED_GRANT_TYPE_BODY: &str = r#"{"error":"unsupported_grant_type","message":"The authorization grant type is not supported by the authorization server.","hint":"Check that all required parameters have been provided"}"#;
/// Token endpoint: garbage/unknown refresh token (HTTP 401, fixture `error-token-refresh-cannot-decrypt.json`).
pub const REFRESH_CANNOT_DECRYPT_BODY: &str = r#"{"error":"invalid_request","message":"The refresh token is invalid.","hint":"Cannot decrypt the refresh token"}"#;
/// Token endpoint: expired refresh token (HTTP 401, fixture `error-token-refresh-expired.json`).
pub const REFRESH_EXPIRED_BODY: &str = r#"{"error":"invalid_request","message":"The refresh token is invalid.","hint":"Token has expired"}"#;
/// Token endpoint: refresh token already used (rotated out) (HTTP 401, league's text).
pub const REFRESH_REVOKED_BODY: &str = r#"{"error":"invalid_request","message":"The refresh token is invalid.","hint":"Token has been revoked"}"#;
/// Token endpoint: `code_verifier` missing (HTTP 400, fixture `error-token-invalid_request-missing-code_verifier.json`).
pub const VERIFIER_MISSING_BODY: &str = r#"{"error":"invalid_request","message":"The request is missing a required parameter, includes an invalid parameter value, includes a parameter more than once, or is otherwise malformed.","hint":"Check the `code_verifier` parameter"}"#;
/// Token endpoint: `code_verifier` ≠ challenge (HTTP 400, fixture `error-token-invalid_grant-code_verifier.json`).
pub const VERIFIER_MISMATCH_BODY: &str = r#"{"error":"invalid_grant","message":"The provided authorization grant (e.g., authorization code, resource owner credentials) or refresh token is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client.","hint":"Failed to verify `code_verifier`."}"#;

/// 400 body for an invalid PATCH value of form field `field` (score 11,
/// unknown status, non-numeric count, malformed date…), in MAL's
/// `{"message","error"}` shape: `{"message":"invalid score","error":"bad_request"}`.
pub fn invalid_field_body(field: &str) -> String {
    #[derive(Serialize)]
    struct B<'a> {
        message: String,
        error: &'a str,
    }
    serde_json::to_string(&B {
        message: format!("invalid {field}"),
        error: "bad_request",
    })
    .expect("serialize")
}

const INVALID_REQUEST_MESSAGE: &str = "The request is missing a required parameter, includes an invalid parameter value, includes a parameter more than once, or is otherwise malformed.";
const JSON_CT: &str = "application/json; charset=UTF-8";
/// `expires_in` the real server sends (31 days).
pub const DEFAULT_EXPIRES_IN: u64 = 2_678_400;
const ANIME_STATUSES: [&str; 5] = [
    "watching",
    "completed",
    "on_hold",
    "dropped",
    "plan_to_watch",
];
const MANGA_STATUSES: [&str; 5] = ["reading", "completed", "on_hold", "dropped", "plan_to_read"];
const USER_ID: u64 = 4_592_783;

/// Genre ids as MAL numbers them (from the recorded fixtures and MAL's genre
/// pages); [`Anime::genres`]/[`Manga::genres`] look names up here.
const GENRE_IDS: [(&str, u32); 24] = [
    ("Action", 1),
    ("Adventure", 2),
    ("Comedy", 4),
    ("Mystery", 7),
    ("Drama", 8),
    ("Ecchi", 9),
    ("Fantasy", 10),
    ("Historical", 13),
    ("Horror", 14),
    ("Martial Arts", 17),
    ("Mecha", 18),
    ("Music", 19),
    ("Romance", 22),
    ("School", 23),
    ("Sci-Fi", 24),
    ("Shoujo", 25),
    ("Shounen", 27),
    ("Sports", 30),
    ("Slice of Life", 36),
    ("Supernatural", 37),
    ("Psychological", 40),
    ("Seinen", 42),
    ("Award Winning", 46),
    ("Time Travel", 79),
];

// ---------------------------------------------------------------------------
// Public value types
// ---------------------------------------------------------------------------

/// A manga author as `GET /manga/{id}?fields=authors` serves it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Author {
    pub id: u64,
    pub first_name: String,
    pub last_name: String,
    /// e.g. `"Story & Art"`.
    pub role: String,
}

/// What details/search can serve about a title besides its counts; shared by
/// [`Anime`] and [`Manga`] and usually filled through their builder methods.
/// `None`/empty means MAL has nothing: the field is then left out even when
/// requested, except where a default is given below.
#[derive(Clone, Debug, Default)]
pub struct Info {
    /// `synopsis` (`""` when `None`).
    pub synopsis: Option<String>,
    /// `alternative_titles.synonyms`; search matches them too.
    pub synonyms: Vec<String>,
    /// `alternative_titles.en` (default: the title); search matches it.
    pub title_en: Option<String>,
    /// `alternative_titles.ja` (default `""`); search matches it.
    pub title_ja: Option<String>,
    /// `media_type` (default `"tv"` / `"manga"`).
    pub media_type: Option<String>,
    /// The title's own `status`: anime `finished_airing | currently_airing |
    /// not_yet_aired`, manga `finished | currently_publishing |
    /// not_yet_published | on_hiatus | discontinued`. Default: from the total
    /// (0 = unknown → currently airing/publishing, else finished).
    pub media_status: Option<String>,
    /// `genres` as `(id, name)`.
    pub genres: Vec<(u32, String)>,
    pub mean: Option<f64>,
    /// `YYYY-MM-DD` (MAL also serves `YYYY-MM` and `YYYY`).
    pub start_date: Option<String>,
    pub end_date: Option<String>,
    /// Anime only: `(year, "winter" | "spring" | "summer" | "fall")`.
    pub start_season: Option<(u32, String)>,
    /// Anime only: `(day_of_the_week, start_time)`, e.g. `("saturday", "01:25")`.
    pub broadcast: Option<(String, String)>,
    /// Anime only, seconds (`0` when `None`).
    pub average_episode_duration: Option<u32>,
    /// Anime only: `g | pg | pg_13 | r | r+ | rx` (default from `nsfw`:
    /// white → `pg_13`, gray → `r+`, black → `rx`).
    pub rating: Option<String>,
    /// `(medium, large)`; `None` → URLs on the fake itself
    /// (`{base}/images/{anime|manga}/{id}.png` and `…/{id}l.png`).
    pub main_picture: Option<(String, String)>,
    /// Manga only.
    pub authors: Vec<Author>,
}

/// An anime known to the fake; `add_anime` also puts it on the user's list
/// with `status`, `watched`, `score`, `is_rewatching` and the list dates.
#[derive(Clone, Debug)]
pub struct Anime {
    pub id: u64,
    pub title: String,
    /// 0 = unknown (as MAL sends for airing shows).
    pub num_episodes: u32,
    /// `"white" | "gray" | "black"`; non-white entries vanish from lists and
    /// search without `nsfw=true`.
    pub nsfw: &'static str,
    /// List status: `watching | completed | on_hold | dropped | plan_to_watch`.
    pub status: &'static str,
    pub watched: u32,
    pub score: u8,
    pub is_rewatching: bool,
    /// The user's `start_date` / `finish_date` on the list (`YYYY-MM-DD`).
    pub started: Option<String>,
    pub finished: Option<String>,
    /// Details (synopsis, genres, airing…).
    pub info: Info,
}

impl Anime {
    /// SFW ("white") anime, `watching`, 0 watched, score 0, no details.
    pub fn new(id: u64, title: &str, num_episodes: u32) -> Anime {
        Anime {
            id,
            title: title.to_string(),
            num_episodes,
            nsfw: "white",
            status: "watching",
            watched: 0,
            score: 0,
            is_rewatching: false,
            started: None,
            finished: None,
            info: Info::default(),
        }
    }

    /// Airing: `broadcast` on `day` (`"saturday"`) at `time` (`"23:30"`),
    /// `start_date`, status `currently_airing`, and a `start_season` taken
    /// from the date unless one was set.
    pub fn airing(mut self, day: &str, time: &str, start_date: &str) -> Anime {
        self.info.broadcast = Some((day.to_ascii_lowercase(), time.to_string()));
        self.info.start_date = Some(start_date.to_string());
        self.info.media_status = Some("currently_airing".to_string());
        if self.info.start_season.is_none() {
            self.info.start_season = season_of(start_date);
        }
        self
    }

    /// `broadcast` alone.
    pub fn broadcast(mut self, day: &str, time: &str) -> Anime {
        self.info.broadcast = Some((day.to_ascii_lowercase(), time.to_string()));
        self
    }

    /// The show's `status` (`finished_airing | currently_airing | not_yet_aired`).
    pub fn airing_status(mut self, status: &str) -> Anime {
        self.info.media_status = Some(status.to_string());
        self
    }

    /// `start_season` (`season`: `winter | spring | summer | fall`).
    pub fn start_season(mut self, year: u32, season: &str) -> Anime {
        self.info.start_season = Some((year, season.to_string()));
        self
    }

    /// `average_episode_duration`, in seconds.
    pub fn episode_duration(mut self, secs: u32) -> Anime {
        self.info.average_episode_duration = Some(secs);
        self
    }

    /// `rating` (`g | pg | pg_13 | r | r+ | rx`).
    pub fn rating(mut self, rating: &str) -> Anime {
        self.info.rating = Some(rating.to_string());
        self
    }

    /// List: episodes watched.
    pub fn watched(mut self, n: u32) -> Anime {
        self.watched = n;
        self
    }

    /// List: `is_rewatching`.
    pub fn rewatching(mut self, yes: bool) -> Anime {
        self.is_rewatching = yes;
        self
    }
}

/// A manga known to the fake; `add_manga` also puts it on the user's list with
/// `status`, `chapters_read`, `volumes_read`, `score`, `is_rereading` and the
/// list dates.
#[derive(Clone, Debug)]
pub struct Manga {
    pub id: u64,
    pub title: String,
    /// 0 = unknown (as MAL sends for ongoing series).
    pub num_chapters: u32,
    /// 0 = unknown.
    pub num_volumes: u32,
    /// `"white" | "gray" | "black"`, as for [`Anime`].
    pub nsfw: &'static str,
    /// List status: `reading | completed | on_hold | dropped | plan_to_read`.
    /// (The publication status is [`Manga::publishing_status`].)
    pub status: &'static str,
    pub chapters_read: u32,
    pub volumes_read: u32,
    pub score: u8,
    pub is_rereading: bool,
    /// The user's `start_date` / `finish_date` on the list (`YYYY-MM-DD`).
    pub started: Option<String>,
    pub finished: Option<String>,
    /// Details (synopsis, genres, publication…).
    pub info: Info,
}

impl Manga {
    /// SFW ("white") manga, `reading`, nothing read, score 0, no details.
    pub fn new(id: u64, title: &str, num_chapters: u32, num_volumes: u32) -> Manga {
        Manga {
            id,
            title: title.to_string(),
            num_chapters,
            num_volumes,
            nsfw: "white",
            status: "reading",
            chapters_read: 0,
            volumes_read: 0,
            score: 0,
            is_rereading: false,
            started: None,
            finished: None,
            info: Info::default(),
        }
    }

    /// The manga's `status` (`finished | currently_publishing |
    /// not_yet_published | on_hiatus | discontinued`).
    pub fn publishing_status(mut self, status: &str) -> Manga {
        self.info.media_status = Some(status.to_string());
        self
    }

    /// Adds an author (`fields=authors`).
    pub fn author(mut self, id: u64, first_name: &str, last_name: &str, role: &str) -> Manga {
        self.info.authors.push(Author {
            id,
            first_name: first_name.to_string(),
            last_name: last_name.to_string(),
            role: role.to_string(),
        });
        self
    }

    /// List: chapters read.
    pub fn chapters_read(mut self, n: u32) -> Manga {
        self.chapters_read = n;
        self
    }

    /// List: volumes read.
    pub fn volumes_read(mut self, n: u32) -> Manga {
        self.volumes_read = n;
        self
    }

    /// List: `is_rereading`.
    pub fn rereading(mut self, yes: bool) -> Manga {
        self.is_rereading = yes;
        self
    }
}

/// Builder methods common to [`Anime`] and [`Manga`].
macro_rules! common_builders {
    ($t:ident) => {
        impl $t {
            /// `nsfw` flag (`white | gray | black`).
            pub fn nsfw(mut self, nsfw: &'static str) -> $t {
                self.nsfw = nsfw;
                self
            }

            /// List status (see the `status` field).
            pub fn list_status(mut self, status: &'static str) -> $t {
                self.status = status;
                self
            }

            /// List score (0–10).
            pub fn score(mut self, score: u8) -> $t {
                self.score = score;
                self
            }

            /// The user's list `start_date` / `finish_date` (`YYYY-MM-DD`).
            pub fn list_dates(mut self, started: Option<&str>, finished: Option<&str>) -> $t {
                self.started = started.map(str::to_string);
                self.finished = finished.map(str::to_string);
                self
            }

            /// `synopsis`.
            pub fn synopsis(mut self, text: &str) -> $t {
                self.info.synopsis = Some(text.to_string());
                self
            }

            /// `alternative_titles.synonyms`.
            pub fn synonyms(mut self, names: &[&str]) -> $t {
                self.info.synonyms = names.iter().map(|s| s.to_string()).collect();
                self
            }

            /// `alternative_titles.en` and `.ja`.
            pub fn alternative_titles(mut self, en: &str, ja: &str) -> $t {
                self.info.title_en = Some(en.to_string());
                self.info.title_ja = Some(ja.to_string());
                self
            }

            /// `media_type` (`tv | ova | movie | special | ona | music`,
            /// `manga | manhwa | manhua | novel | light_novel | one_shot | …`).
            pub fn media_type(mut self, media_type: &str) -> $t {
                self.info.media_type = Some(media_type.to_string());
                self
            }

            /// `genres` by name; ids as MAL numbers them (unknown names get
            /// ids from 1000 up).
            pub fn genres(mut self, names: &[&str]) -> $t {
                self.info.genres = names
                    .iter()
                    .enumerate()
                    .map(|(i, name)| (genre_id(name, i), name.to_string()))
                    .collect();
                self
            }

            /// Adds one genre with an explicit id.
            pub fn genre(mut self, id: u32, name: &str) -> $t {
                self.info.genres.push((id, name.to_string()));
                self
            }

            /// `mean` score.
            pub fn mean(mut self, mean: f64) -> $t {
                self.info.mean = Some(mean);
                self
            }

            /// `start_date` of the title (not of the list entry).
            pub fn start_date(mut self, date: &str) -> $t {
                self.info.start_date = Some(date.to_string());
                self
            }

            /// `end_date` of the title.
            pub fn end_date(mut self, date: &str) -> $t {
                self.info.end_date = Some(date.to_string());
                self
            }

            /// `main_picture` with the same URL as `medium` and `large`.
            pub fn picture(mut self, url: &str) -> $t {
                self.info.main_picture = Some((url.to_string(), url.to_string()));
                self
            }

            /// `main_picture` `{medium, large}`.
            pub fn pictures(mut self, medium: &str, large: &str) -> $t {
                self.info.main_picture = Some((medium.to_string(), large.to_string()));
                self
            }
        }
    };
}

common_builders!(Anime);
common_builders!(Manga);

fn genre_id(name: &str, index: usize) -> u32 {
    GENRE_IDS
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, id)| *id)
        .unwrap_or(1000 + index as u32)
}

/// `YYYY-MM…` → `(year, season)` as MAL names the seasons.
fn season_of(date: &str) -> Option<(u32, String)> {
    let year = date.get(0..4)?.parse().ok()?;
    let month: u32 = date.get(5..7)?.parse().ok()?;
    let season = match month {
        1..=3 => "winter",
        4..=6 => "spring",
        7..=9 => "summer",
        10..=12 => "fall",
        _ => return None,
    };
    Some((year, season.to_string()))
}

/// One PATCH `/v2/{anime|manga}/{id}/my_list_status` that passed auth, in
/// arrival order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Patch {
    pub id: u64,
    /// Decoded form pairs, in the order sent (empty for a non-form body).
    pub form: Vec<(String, String)>,
    /// `"anime"` or `"manga"`.
    pub kind: String,
    /// Request path, e.g. `/v2/manga/401/my_list_status`.
    pub path: String,
}

impl Patch {
    /// First value of form field `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        first(&self.form, key)
    }

    /// Is it a PATCH of an anime list entry?
    pub fn is_anime(&self) -> bool {
        self.kind == "anime"
    }

    /// Is it a PATCH of a manga list entry?
    pub fn is_manga(&self) -> bool {
        self.kind == "manga"
    }
}

/// One request received (any path but `/images/…`), in arrival order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Req {
    pub method: String,
    pub path: String,
    /// Raw query string without `?` (`""` if none).
    pub query: String,
    pub authorization: Option<String>,
}

// ---------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Anime,
    Manga,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Anime => "anime",
            Kind::Manga => "manga",
        }
    }

    fn statuses(self) -> &'static [&'static str; 5] {
        match self {
            Kind::Anime => &ANIME_STATUSES,
            Kind::Manga => &MANGA_STATUSES,
        }
    }

    /// Status of an entry a PATCH creates without sending `status`.
    /// ASSUMPTION: MAL's choice is unrecorded (it might be "watching"); the
    /// fake uses the "plan to" status.
    fn upsert_status(self) -> &'static str {
        match self {
            Kind::Anime => "plan_to_watch",
            Kind::Manga => "plan_to_read",
        }
    }

    /// Status of an entry a website edit (`set_watched`, …) creates.
    fn website_status(self) -> &'static str {
        match self {
            Kind::Anime => "watching",
            Kind::Manga => "reading",
        }
    }
}

/// A title in the catalogue (anime or manga).
struct Title {
    title: String,
    nsfw: &'static str,
    /// `num_episodes` / `num_chapters`.
    total: u32,
    /// `num_volumes` (manga).
    volumes: u32,
    info: Info,
}

impl From<&Anime> for Title {
    fn from(a: &Anime) -> Title {
        Title {
            title: a.title.clone(),
            nsfw: a.nsfw,
            total: a.num_episodes,
            volumes: 0,
            info: a.info.clone(),
        }
    }
}

impl From<&Manga> for Title {
    fn from(m: &Manga) -> Title {
        Title {
            title: m.title.clone(),
            nsfw: m.nsfw,
            total: m.num_chapters,
            volumes: m.num_volumes,
            info: m.info.clone(),
        }
    }
}

/// A list entry; anime and manga share it (`progress` = episodes watched or
/// chapters read, `repeating` = is_rewatching / is_rereading, …).
#[derive(Clone)]
struct Entry {
    status: String,
    score: u8,
    progress: u32,
    volumes: u32,
    repeating: bool,
    updated_at: i64,
    priority: u8,
    times_repeated: u32,
    repeat_value: u8,
    tags: Vec<String>,
    comments: String,
    start_date: Option<String>,
    finish_date: Option<String>,
}

impl Entry {
    fn new(status: &str, updated_at: i64) -> Entry {
        Entry {
            status: status.to_string(),
            score: 0,
            progress: 0,
            volumes: 0,
            repeating: false,
            updated_at,
            priority: 0,
            times_repeated: 0,
            repeat_value: 0,
            tags: Vec::new(),
            comments: String::new(),
            start_date: None,
            finish_date: None,
        }
    }
}

/// Catalogue and list of one kind.
#[derive(Default)]
struct Shelf {
    catalogue: BTreeMap<u64, Title>,
    list: BTreeMap<u64, Entry>,
}

struct Code {
    challenge: String,
    redirect_uri: String,
}

struct AccessToken {
    expires_at: Option<Instant>, // None = beyond Instant's range
    revoked: bool,
}

enum RefreshToken {
    Valid { access: String },
    Revoked,
    Expired,
}

#[derive(Clone)]
struct Failure {
    remaining: usize,
    status: u16,
    body: String,
    content_type: String,
    headers: Vec<(String, String)>,
}

struct World {
    user: String,
    client_id: String,
    client_secret: Option<String>,
    registered_redirect: Option<String>,
    deny_authorization: bool,
    token_expires_in: u64,
    anime: Shelf,
    manga: Shelf,
    codes: HashMap<String, Code>,
    access: HashMap<String, AccessToken>,
    refresh: HashMap<String, RefreshToken>,
    patches: Vec<Patch>,
    deletes: Vec<(String, u64)>,
    searches: Vec<(String, String)>,
    images: Vec<String>,
    requests: Vec<Req>,
    latency: Duration,
    fail_api: VecDeque<Failure>,
    fail_token: VecDeque<Failure>,
    refresh_count: usize,
    last_update: i64,
}

impl World {
    fn new() -> World {
        World {
            user: "fakeuser".to_string(),
            client_id: FakeMal::CLIENT_ID.to_string(),
            client_secret: None,
            registered_redirect: None,
            deny_authorization: false,
            token_expires_in: DEFAULT_EXPIRES_IN,
            anime: Shelf::default(),
            manga: Shelf::default(),
            codes: HashMap::new(),
            access: HashMap::new(),
            refresh: HashMap::new(),
            patches: Vec::new(),
            deletes: Vec::new(),
            searches: Vec::new(),
            images: Vec::new(),
            requests: Vec::new(),
            latency: Duration::ZERO,
            fail_api: VecDeque::new(),
            fail_token: VecDeque::new(),
            refresh_count: 0,
            last_update: 0,
        }
    }

    fn shelf(&self, kind: Kind) -> &Shelf {
        match kind {
            Kind::Anime => &self.anime,
            Kind::Manga => &self.manga,
        }
    }

    fn shelf_mut(&mut self, kind: Kind) -> &mut Shelf {
        match kind {
            Kind::Anime => &mut self.anime,
            Kind::Manga => &mut self.manga,
        }
    }

    /// A fresh `updated_at`, strictly later than any value handed out before.
    fn bump(&mut self) -> i64 {
        let t = unix_now().max(self.last_update + 1);
        self.last_update = t;
        t
    }

    fn mint(&mut self, expires_in: u64) -> (String, String) {
        let access = access_token();
        let refresh = refresh_token();
        let expires_at = Instant::now().checked_add(Duration::from_secs(expires_in));
        self.access.insert(
            access.clone(),
            AccessToken {
                expires_at,
                revoked: false,
            },
        );
        self.refresh.insert(
            refresh.clone(),
            RefreshToken::Valid {
                access: access.clone(),
            },
        );
        (access, refresh)
    }

    fn access_ok(&self, token: &str) -> bool {
        match self.access.get(token) {
            Some(t) => !t.revoked && t.expires_at.is_none_or(|at| Instant::now() < at),
            None => false,
        }
    }

    /// Puts a title on the list as `add_anime`/`add_manga` do (not a website
    /// edit: `updated_at` is "now", not bumped past earlier entries).
    fn add_to_list(&mut self, kind: Kind, id: u64, title: Title, mut entry: Entry) {
        let now = unix_now();
        self.last_update = self.last_update.max(now);
        entry.updated_at = now;
        let shelf = self.shelf_mut(kind);
        shelf.catalogue.insert(id, title);
        shelf.list.insert(id, entry);
    }

    /// The list entry for a website edit: created (`watching`/`reading`) if
    /// absent; `updated_at` bumped. Panics if the title was never added.
    fn website_edit(&mut self, kind: Kind, id: u64) -> &mut Entry {
        let now = self.bump();
        let shelf = self.shelf_mut(kind);
        assert!(
            shelf.catalogue.contains_key(&id),
            "FakeMal: {} {id} was never added",
            kind.name()
        );
        let e = shelf
            .list
            .entry(id)
            .or_insert_with(|| Entry::new(kind.website_status(), now));
        e.updated_at = now;
        e
    }
}

fn take_failure(queue: &mut VecDeque<Failure>) -> Option<Failure> {
    let front = queue.front_mut()?;
    front.remaining -= 1;
    let f = front.clone();
    if front.remaining == 0 {
        queue.pop_front();
    }
    Some(f)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

use super::net::{FakeListener, Gate, Net};

// ---------------------------------------------------------------------------
// FakeMal
// ---------------------------------------------------------------------------

/// The fake server. Dropping it stops serving.
pub struct FakeMal {
    base: String,
    state: Arc<Mutex<World>>,
    net: Arc<Net>,
    shutdown: Option<oneshot::Sender<()>>,
    /// Only for `start_background`: stops the private runtime, then joined.
    background: Option<super::net::Background>,
}

#[derive(Clone)]
struct App {
    state: Arc<Mutex<World>>,
    base: String,
}

impl App {
    fn world(&self) -> MutexGuard<'_, World> {
        lock(&self.state)
    }
}

impl FakeMal {
    /// The client id accepted by default (see `set_client_id`).
    pub const CLIENT_ID: &'static str = "fake-client-id";

    /// Binds `127.0.0.1:0` and serves on the current tokio runtime.
    pub async fn start() -> FakeMal {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("FakeMal: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local_addr");
        let net = Arc::new(Net {
            addr,
            handle: tokio::runtime::Handle::current(),
            gate: Mutex::new(Gate {
                listener: Some(listener),
                accept_waker: None,
                closed: false,
            }),
            epoch: AtomicU64::new(0),
            conns: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(0),
        });
        let base = format!("http://{addr}");
        let state = Arc::new(Mutex::new(World::new()));
        let app = App {
            state: state.clone(),
            base: base.clone(),
        };
        let (tx, rx) = oneshot::channel::<()>();
        let listener = FakeListener { net: net.clone() };
        tokio::spawn(async move {
            let _ = axum::serve(listener, router(app))
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await;
        });
        FakeMal {
            base,
            state,
            net,
            shutdown: Some(tx),
            background: None,
        }
    }

    /// Serves from a thread of its own with a private runtime, for sync
    /// `#[test]`s. Keeps serving until dropped.
    pub fn start_background() -> FakeMal {
        let (mut fake, background) = super::net::in_background("fake-mal", FakeMal::start);
        fake.background = Some(background);
        fake
    }

    /// `http://127.0.0.1:PORT`
    pub fn base(&self) -> String {
        self.base.clone()
    }

    /// `base + "/v2"`
    pub fn api_url(&self) -> String {
        format!("{}/v2", self.base)
    }

    /// `base + "/v1/oauth2"` (`…/authorize`, `…/token`).
    pub fn auth_url(&self) -> String {
        format!("{}/v1/oauth2", self.base)
    }

    fn world(&self) -> MutexGuard<'_, World> {
        lock(&self.state)
    }

    /// `None` (default): an "other"-type app without secret; `Some`: the token
    /// endpoint requires exactly this `client_secret` (body or HTTP Basic).
    pub fn set_client_secret(&self, secret: Option<&str>) {
        self.world().client_secret = secret.map(str::to_string);
    }

    /// The app's registered redirect URI. `None` (default): any `redirect_uri`
    /// is accepted at authorize but must then be given. `Some`: authorize
    /// requires it (or uses it when omitted).
    pub fn set_registered_redirect_uri(&self, uri: Option<&str>) {
        self.world().registered_redirect = uri.map(str::to_string);
    }

    /// When true, `/authorize` redirects with `error=access_denied` (user clicked "deny").
    pub fn set_deny_authorization(&self, deny: bool) {
        self.world().deny_authorization = deny;
    }

    /// `expires_in` of tokens issued by the token endpoint (default 2678400).
    /// Access tokens really expire after it.
    pub fn set_token_expires_in(&self, secs: u64) {
        self.world().token_expires_in = secs;
    }

    /// Name answered by `/users/@me` (default `"fakeuser"`).
    pub fn set_user(&self, name: &str) {
        self.world().user = name.to_string();
    }

    /// The client id accepted by `/authorize`, `/token` and (as
    /// `X-MAL-CLIENT-ID`) by details and search. Default [`FakeMal::CLIENT_ID`].
    pub fn set_client_id(&self, id: &str) {
        self.world().client_id = id.to_string();
    }

    /// The client id currently accepted (see `set_client_id`).
    pub fn client_id(&self) -> String {
        self.world().client_id.clone()
    }

    // -- anime --------------------------------------------------------------

    /// Adds `a` to the catalogue and puts it on the user's list.
    pub fn add_anime(&self, a: Anime) {
        let mut e = Entry::new(a.status, 0);
        e.progress = a.watched;
        e.score = a.score;
        e.repeating = a.is_rewatching;
        e.start_date = a.started.clone();
        e.finish_date = a.finished.clone();
        self.world()
            .add_to_list(Kind::Anime, a.id, Title::from(&a), e);
    }

    /// Adds `a` to the catalogue only (not on the list; PATCH upserts it).
    /// The list fields (`status`, `watched`, `score`, …) are ignored.
    pub fn add_to_catalogue(&self, a: Anime) {
        self.world().anime.catalogue.insert(a.id, Title::from(&a));
    }

    fn entry<T>(&self, kind: Kind, id: u64, f: impl FnOnce(&Entry) -> T) -> Option<T> {
        self.world().shelf(kind).list.get(&id).map(f)
    }

    /// `num_episodes_watched` of the list entry.
    pub fn watched(&self, id: u64) -> Option<u32> {
        self.entry(Kind::Anime, id, |e| e.progress)
    }

    /// List status of the entry (`watching`, …).
    pub fn status(&self, id: u64) -> Option<String> {
        self.entry(Kind::Anime, id, |e| e.status.clone())
    }

    /// Score of the entry.
    pub fn score(&self, id: u64) -> Option<u8> {
        self.entry(Kind::Anime, id, |e| e.score)
    }

    /// `is_rewatching` of the entry.
    pub fn rewatching(&self, id: u64) -> Option<bool> {
        self.entry(Kind::Anime, id, |e| e.repeating)
    }

    /// The entry's `(start_date, finish_date)`; `(None, None)` when not on the list.
    pub fn dates(&self, id: u64) -> (Option<String>, Option<String>) {
        self.entry(Kind::Anime, id, |e| {
            (e.start_date.clone(), e.finish_date.clone())
        })
        .unwrap_or_default()
    }

    /// `updated_at` of the entry as served (`2021-03-16T07:36:44+00:00`).
    pub fn updated_at(&self, id: u64) -> Option<String> {
        self.entry(Kind::Anime, id, |e| fmt_time(e.updated_at))
    }

    /// Is the anime on the user's list?
    pub fn on_list(&self, id: u64) -> bool {
        self.world().anime.list.contains_key(&id)
    }

    /// Simulates an edit on the website: sets episodes watched and bumps
    /// `updated_at`. Puts the anime on the list (`watching`) if absent; panics
    /// if it was never added.
    pub fn set_watched(&self, id: u64, n: u32) {
        self.world().website_edit(Kind::Anime, id).progress = n;
    }

    /// Website edit of the list status (see `set_watched`).
    pub fn set_status(&self, id: u64, status: &str) {
        assert!(ANIME_STATUSES.contains(&status), "bad status {status}");
        self.world().website_edit(Kind::Anime, id).status = status.to_string();
    }

    /// Website edit of the score (see `set_watched`).
    pub fn set_score(&self, id: u64, score: u8) {
        self.world().website_edit(Kind::Anime, id).score = score;
    }

    /// Website removal of the entry from the list (the anime stays known).
    pub fn remove_from_list(&self, id: u64) {
        self.world().anime.list.remove(&id);
    }

    // -- manga --------------------------------------------------------------

    /// Adds `m` to the catalogue and puts it on the user's list. Panics if
    /// `m.status` is not a manga list status.
    pub fn add_manga(&self, m: Manga) {
        assert!(
            MANGA_STATUSES.contains(&m.status),
            "Manga::status is the list status ({MANGA_STATUSES:?}), not {:?}; \
             use .publishing_status(..) for the publication status",
            m.status
        );
        let mut e = Entry::new(m.status, 0);
        e.progress = m.chapters_read;
        e.volumes = m.volumes_read;
        e.score = m.score;
        e.repeating = m.is_rereading;
        e.start_date = m.started.clone();
        e.finish_date = m.finished.clone();
        self.world()
            .add_to_list(Kind::Manga, m.id, Title::from(&m), e);
    }

    /// Adds `m` to the catalogue only (not on the list; PATCH upserts it).
    /// The list fields are ignored.
    pub fn add_manga_to_catalogue(&self, m: Manga) {
        self.world().manga.catalogue.insert(m.id, Title::from(&m));
    }

    /// `num_chapters_read` of the manga list entry.
    pub fn chapters_read(&self, id: u64) -> Option<u32> {
        self.entry(Kind::Manga, id, |e| e.progress)
    }

    /// `num_volumes_read` of the manga list entry.
    pub fn volumes_read(&self, id: u64) -> Option<u32> {
        self.entry(Kind::Manga, id, |e| e.volumes)
    }

    /// List status of the manga entry (`reading`, …).
    pub fn manga_status(&self, id: u64) -> Option<String> {
        self.entry(Kind::Manga, id, |e| e.status.clone())
    }

    /// Score of the manga entry.
    pub fn manga_score(&self, id: u64) -> Option<u8> {
        self.entry(Kind::Manga, id, |e| e.score)
    }

    /// `is_rereading` of the manga entry.
    pub fn manga_rereading(&self, id: u64) -> Option<bool> {
        self.entry(Kind::Manga, id, |e| e.repeating)
    }

    /// The manga entry's `(start_date, finish_date)`; `(None, None)` when not on the list.
    pub fn manga_dates(&self, id: u64) -> (Option<String>, Option<String>) {
        self.entry(Kind::Manga, id, |e| {
            (e.start_date.clone(), e.finish_date.clone())
        })
        .unwrap_or_default()
    }

    /// `updated_at` of the manga entry as served.
    pub fn manga_updated_at(&self, id: u64) -> Option<String> {
        self.entry(Kind::Manga, id, |e| fmt_time(e.updated_at))
    }

    /// Is the manga on the user's list?
    pub fn manga_on_list(&self, id: u64) -> bool {
        self.world().manga.list.contains_key(&id)
    }

    /// Website edit: chapters read (bumps `updated_at`; puts the manga on the
    /// list as `reading` if absent; panics if it was never added).
    pub fn set_chapters_read(&self, id: u64, n: u32) {
        self.world().website_edit(Kind::Manga, id).progress = n;
    }

    /// Website edit: volumes read (see `set_chapters_read`).
    pub fn set_volumes_read(&self, id: u64, n: u32) {
        self.world().website_edit(Kind::Manga, id).volumes = n;
    }

    /// Website edit of the manga list status (see `set_chapters_read`).
    pub fn set_manga_status(&self, id: u64, status: &str) {
        assert!(MANGA_STATUSES.contains(&status), "bad status {status}");
        self.world().website_edit(Kind::Manga, id).status = status.to_string();
    }

    /// Website edit of the manga score (see `set_chapters_read`).
    pub fn set_manga_score(&self, id: u64, score: u8) {
        self.world().website_edit(Kind::Manga, id).score = score;
    }

    /// Website removal of the manga from the list (it stays known).
    pub fn remove_manga_from_list(&self, id: u64) {
        self.world().manga.list.remove(&id);
    }

    // -- logs ---------------------------------------------------------------

    /// The entry's full `list_status` as a PATCH would answer it (`kind`:
    /// `"anime"` or `"manga"`), or `None` when not on the list.
    pub fn list_status_json(&self, kind: &str, id: u64) -> Option<serde_json::Value> {
        let kind = match kind {
            "anime" => Kind::Anime,
            "manga" => Kind::Manga,
            other => panic!("FakeMal: kind must be \"anime\" or \"manga\", not {other:?}"),
        };
        self.entry(kind, id, |e| {
            serde_json::to_value(list_status_json(kind, e, &[], true)).expect("serialize")
        })
    }

    /// Every PATCH (anime and manga) that passed auth, in arrival order; see
    /// [`Patch::kind`].
    pub fn patches(&self) -> Vec<Patch> {
        self.world().patches.clone()
    }

    /// Every DELETE of a list entry that passed auth, as `(kind, id)` with
    /// `kind` `"anime"` or `"manga"`, in arrival order (404s included).
    pub fn deletes(&self) -> Vec<(String, u64)> {
        self.world().deletes.clone()
    }

    /// The `q` of every search (anime and manga) that passed auth, as sent
    /// (rejected ones included), in arrival order.
    pub fn searches(&self) -> Vec<String> {
        self.world()
            .searches
            .iter()
            .map(|(_, q)| q.clone())
            .collect()
    }

    /// Like `searches`, as `(kind, q)`.
    pub fn search_log(&self) -> Vec<(String, String)> {
        self.world().searches.clone()
    }

    /// Number of `GET /images/…` requests served.
    pub fn image_requests(&self) -> usize {
        self.world().images.len()
    }

    /// Paths of the `/images/…` requests, in arrival order.
    pub fn image_paths(&self) -> Vec<String> {
        self.world().images.clone()
    }

    /// Every request received (but `/images/…`), in arrival order.
    pub fn requests(&self) -> Vec<Req> {
        self.world().requests.clone()
    }

    /// Delay before every `/v2` answer (not the OAuth endpoints).
    pub fn set_latency(&self, d: Duration) {
        self.world().latency = d;
    }

    /// Mints a valid `(access, refresh)` pair as if a login had happened; the
    /// access token expires after `expires_in` seconds (0 = already expired).
    pub fn issue_tokens(&self, expires_in: u64) -> (String, String) {
        self.world().mint(expires_in)
    }

    /// Mints an authorization code as if `/authorize` had been visited.
    pub fn mint_code(&self, challenge: &str, redirect_uri: &str) -> String {
        let code = auth_code();
        self.world().codes.insert(
            code.clone(),
            Code {
                challenge: challenge.to_string(),
                redirect_uri: redirect_uri.to_string(),
            },
        );
        code
    }

    /// Every access token issued so far now answers 401 invalid_token.
    pub fn expire_access_tokens(&self) {
        for t in self.world().access.values_mut() {
            t.revoked = true;
        }
    }

    /// Every refresh token issued so far now answers 401 "Token has expired".
    pub fn revoke_refresh_tokens(&self) {
        for t in self.world().refresh.values_mut() {
            *t = RefreshToken::Expired;
        }
    }

    /// The next `n` `/v2` requests (recorded, after latency, before auth)
    /// answer `status` with this body and content type instead.
    pub fn fail_next(&self, n: usize, status: u16, body: &str, content_type: &str) {
        self.fail_next_with_headers(n, status, body, content_type, &[]);
    }

    /// `fail_next` with extra headers (e.g. `("Retry-After", "2")`).
    pub fn fail_next_with_headers(
        &self,
        n: usize,
        status: u16,
        body: &str,
        content_type: &str,
        headers: &[(&str, &str)],
    ) {
        if n == 0 {
            return;
        }
        self.world()
            .fail_api
            .push_back(failure(n, status, body, content_type, headers));
    }

    /// Like `fail_next`, for the next `n` requests to `/v1/oauth2/token`.
    pub fn fail_next_token(&self, n: usize, status: u16, body: &str, content_type: &str) {
        if n == 0 {
            return;
        }
        self.world()
            .fail_token
            .push_back(failure(n, status, body, content_type, &[]));
    }

    /// Number of successful `refresh_token` grants.
    pub fn refresh_count(&self) -> usize {
        self.world().refresh_count
    }

    /// Closes the listening socket (connections are refused) and kills open
    /// connections (keep-alive ones included). State is kept.
    pub fn go_down(&self) {
        self.net.down(false);
    }

    /// Listens again on the same port after `go_down`.
    pub fn go_up(&self) {
        self.net.up();
    }
}

impl Drop for FakeMal {
    fn drop(&mut self) {
        self.net.down(true);
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some((stop, thread)) = self.background.take() {
            let _ = stop.send(());
            let _ = thread.join();
        }
    }
}

fn failure(
    n: usize,
    status: u16,
    body: &str,
    content_type: &str,
    headers: &[(&str, &str)],
) -> Failure {
    Failure {
        remaining: n,
        status,
        body: body.to_string(),
        content_type: content_type.to_string(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

// ---------------------------------------------------------------------------
// Router and middleware
// ---------------------------------------------------------------------------

fn router(app: App) -> Router {
    let api = Router::new()
        .route("/users/{user}", get(user_info))
        .route("/users/{user}/animelist", get(animelist))
        .route("/users/{user}/mangalist", get(mangalist))
        .route("/anime", get(anime_search))
        .route("/anime/{id}", get(anime_details))
        .route(
            "/anime/{id}/my_list_status",
            patch(anime_patch).delete(anime_delete),
        )
        .route("/manga", get(manga_search))
        .route("/manga/{id}", get(manga_details))
        .route(
            "/manga/{id}/my_list_status",
            patch(manga_patch).delete(manga_delete),
        )
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(app.clone(), api_gate));
    Router::new()
        .route("/v1/oauth2/authorize", get(authorize))
        .route("/v1/oauth2/token", post(token))
        .route("/images/{*path}", get(image))
        .nest("/v2", api)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(app.clone(), record))
        .with_state(app)
}

/// Logs every request but the covers (counted apart by `image`).
async fn record(State(app): State<App>, req: Request, next: Next) -> Response {
    if req.uri().path().starts_with("/images/") {
        return next.run(req).await;
    }
    let r = Req {
        method: req.method().to_string(),
        path: req.uri().path().to_string(),
        query: req.uri().query().unwrap_or("").to_string(),
        authorization: req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    };
    app.world().requests.push(r);
    next.run(req).await
}

/// How a `/v2` request authenticated (a request extension set by `api_gate`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Auth {
    Bearer,
    ClientId,
}

/// Latency, injected failures and auth for every `/v2` request: a valid
/// Bearer token, or (not for `@me` and `my_list_status`) the client id in
/// `X-MAL-CLIENT-ID`.
async fn api_gate(State(app): State<App>, mut req: Request, next: Next) -> Response {
    let (failure, latency) = {
        let mut w = app.world();
        (take_failure(&mut w.fail_api), w.latency)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if let Some(f) = failure {
        return failure_response(&f);
    }
    let path = req.uri().path();
    let user_scoped = path.contains("users/") || path.ends_with("/my_list_status");
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, tok) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| tok.trim())
        });
    let auth = match bearer {
        Some(tok) => app.world().access_ok(tok).then_some(Auth::Bearer),
        None if !user_scoped => {
            let client_id = app.world().client_id.clone();
            req.headers()
                .get("x-mal-client-id")
                .is_some_and(|v| v.as_bytes() == client_id.as_bytes())
                .then_some(Auth::ClientId)
        }
        None => None,
    };
    let Some(auth) = auth else {
        return (
            StatusCode::UNAUTHORIZED,
            [
                (header::WWW_AUTHENTICATE, INVALID_TOKEN_WWW_AUTHENTICATE),
                (header::CONTENT_TYPE, JSON_CT),
            ],
            INVALID_TOKEN_BODY,
        )
            .into_response();
    };
    req.extensions_mut().insert(auth);
    next.run(req).await
}

fn failure_response(f: &Failure) -> Response {
    let mut resp = raw(
        StatusCode::from_u16(f.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &f.content_type,
        f.body.clone(),
    );
    for (k, v) in &f.headers {
        if let (Ok(k), Ok(v)) = (
            axum::http::HeaderName::try_from(k.as_str()),
            axum::http::HeaderValue::try_from(v.as_str()),
        ) {
            resp.headers_mut().insert(k, v);
        }
    }
    resp
}

fn raw(status: StatusCode, content_type: &str, body: String) -> Response {
    let mut resp = (status, body).into_response();
    if let Ok(v) = axum::http::HeaderValue::try_from(content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    resp
}

fn json_str(status: StatusCode, body: &str) -> Response {
    raw(status, JSON_CT, body.to_string())
}

/// Serializes like PHP's `json_encode` (`/` escaped as `\/`).
fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    let s = serde_json::to_string(value)
        .expect("serialize")
        .replace('/', "\\/");
    raw(status, JSON_CT, s)
}

async fn not_found() -> Response {
    json_str(StatusCode::NOT_FOUND, NOT_FOUND_BODY)
}

fn bad_request(message: &str) -> Response {
    #[derive(Serialize)]
    struct B<'a> {
        error: &'a str,
        message: &'a str,
    }
    json(
        StatusCode::BAD_REQUEST,
        &B {
            error: "bad_request",
            message,
        },
    )
}

#[derive(Serialize)]
struct OAuthError<'a> {
    error: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<&'a str>,
}

fn invalid_request(hint: &str) -> Response {
    json(
        StatusCode::BAD_REQUEST,
        &OAuthError {
            error: "invalid_request",
            message: INVALID_REQUEST_MESSAGE,
            hint: Some(hint),
        },
    )
}

fn param_hint(name: &str) -> String {
    format!("Check the `{name}` parameter")
}

// ---------------------------------------------------------------------------
// OAuth2
// ---------------------------------------------------------------------------

fn pkce_ok(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

async fn authorize(State(app): State<App>, RawQuery(q): RawQuery) -> Response {
    let params = parse_urlencoded(q.as_deref().unwrap_or(""));
    let p = |k: &str| first(&params, k).map(str::to_string);
    let expected_client = app.world().client_id.clone();
    match p("client_id") {
        None => return invalid_request(&param_hint("client_id")),
        Some(id) if id != expected_client => {
            return json_str(StatusCode::BAD_REQUEST, INVALID_CLIENT_BODY);
        }
        Some(_) => {}
    }
    let mut w = app.world();
    let redirect_uri = match (p("redirect_uri"), w.registered_redirect.clone()) {
        (Some(given), Some(reg)) if given != reg => {
            return json_str(StatusCode::BAD_REQUEST, INVALID_CLIENT_BODY);
        }
        (Some(given), _) => given,
        (None, Some(reg)) => reg,
        (None, None) => return invalid_request(&param_hint("redirect_uri")),
    };
    if p("response_type").as_deref() != Some("code") {
        return invalid_request(&param_hint("response_type"));
    }
    let state = p("state");
    let challenge = match p("code_challenge") {
        None => return invalid_request(&param_hint("code_challenge")),
        Some(c) if !pkce_ok(&c) => {
            return invalid_request("Code challenge must follow the specifications of RFC-7636.");
        }
        Some(c) => c,
    };
    match p("code_challenge_method").as_deref() {
        None | Some("plain") => {}
        Some(_) => return invalid_request("Code challenge method must be `plain`"),
    }
    let sep = if redirect_uri.contains('?') { '&' } else { '?' };
    let mut location = if w.deny_authorization {
        format!("{redirect_uri}{sep}error=access_denied")
    } else {
        let code = auth_code();
        w.codes.insert(
            code.clone(),
            Code {
                challenge,
                redirect_uri: redirect_uri.clone(),
            },
        );
        format!("{redirect_uri}{sep}code={}", encode(&code))
    };
    if let Some(state) = state {
        location.push_str("&state=");
        location.push_str(&encode(&state));
    }
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, b64) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(base64_decode(b64.trim())?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

#[derive(Serialize)]
struct TokenJson {
    token_type: &'static str,
    expires_in: u64,
    access_token: String,
    refresh_token: String,
}

async fn token(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(f) = take_failure(&mut app.world().fail_token) {
        return failure_response(&f);
    }
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    if !is_form {
        return invalid_request(&param_hint("grant_type"));
    }
    let form = parse_urlencoded(&String::from_utf8_lossy(&body));
    let f = |k: &str| first(&form, k).map(str::to_string);
    let grant = f("grant_type");
    if !matches!(
        grant.as_deref(),
        Some("authorization_code") | Some("refresh_token")
    ) {
        return json_str(StatusCode::BAD_REQUEST, UNSUPPORTED_GRANT_TYPE_BODY);
    }
    let (client_id, client_secret) = match basic_credentials(&headers) {
        Some((id, secret)) => (Some(id), Some(secret)),
        None => (f("client_id"), f("client_secret")),
    };
    let Some(client_id) = client_id else {
        return invalid_request(&param_hint("client_id"));
    };
    let mut w = app.world();
    let secret_ok = match &w.client_secret {
        None => true,
        Some(s) => client_secret.as_deref() == Some(s.as_str()),
    };
    if client_id != w.client_id || !secret_ok {
        return json_str(StatusCode::UNAUTHORIZED, INVALID_CLIENT_BODY);
    }
    let expires_in = w.token_expires_in;
    if grant.as_deref() == Some("authorization_code") {
        let Some(code) = f("code") else {
            return invalid_request(&param_hint("code"));
        };
        let Some(stored) = w.codes.get(&code) else {
            // Unknown or already used (codes are single use).
            return invalid_request("Authorization code has been revoked");
        };
        if f("redirect_uri").as_deref() != Some(stored.redirect_uri.as_str()) {
            return invalid_request("Invalid redirect URI");
        }
        let Some(verifier) = f("code_verifier") else {
            return json_str(StatusCode::BAD_REQUEST, VERIFIER_MISSING_BODY);
        };
        if !pkce_ok(&verifier) {
            return invalid_request("Code Verifier must follow the specifications of RFC-7636.");
        }
        if verifier != stored.challenge {
            return json_str(StatusCode::BAD_REQUEST, VERIFIER_MISMATCH_BODY);
        }
        w.codes.remove(&code);
        let (access_token, refresh_token) = w.mint(expires_in);
        return json(
            StatusCode::OK,
            &TokenJson {
                token_type: "Bearer",
                expires_in,
                access_token,
                refresh_token,
            },
        );
    }
    // refresh_token grant
    let Some(old) = f("refresh_token") else {
        return invalid_request(&param_hint("refresh_token"));
    };
    let old_access = match w.refresh.get(&old) {
        None => return json_str(StatusCode::UNAUTHORIZED, REFRESH_CANNOT_DECRYPT_BODY),
        Some(RefreshToken::Expired) => {
            return json_str(StatusCode::UNAUTHORIZED, REFRESH_EXPIRED_BODY);
        }
        Some(RefreshToken::Revoked) => {
            return json_str(StatusCode::UNAUTHORIZED, REFRESH_REVOKED_BODY);
        }
        Some(RefreshToken::Valid { access }) => access.clone(),
    };
    w.refresh.insert(old, RefreshToken::Revoked);
    if let Some(a) = w.access.get_mut(&old_access) {
        a.revoked = true;
    }
    w.refresh_count += 1;
    let (access_token, refresh_token) = w.mint(expires_in);
    json(
        StatusCode::OK,
        &TokenJson {
            token_type: "Bearer",
            expires_in,
            access_token,
            refresh_token,
        },
    )
}

// ---------------------------------------------------------------------------
// API v2 JSON shapes
// ---------------------------------------------------------------------------

#[derive(Serialize)]
struct Picture {
    medium: String,
    large: String,
}

#[derive(Serialize)]
struct AltTitles {
    synonyms: Vec<String>,
    en: String,
    ja: String,
}

#[derive(Serialize)]
struct GenreJson {
    id: u32,
    name: String,
}

#[derive(Serialize)]
struct SeasonJson {
    year: u32,
    season: String,
}

#[derive(Serialize)]
struct BroadcastJson {
    day_of_the_week: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    start_time: String,
}

#[derive(Serialize)]
struct AuthorNodeJson {
    id: u64,
    first_name: String,
    last_name: String,
}

#[derive(Serialize)]
struct AuthorJson {
    node: AuthorNodeJson,
    role: String,
}

/// A title as details, search and list nodes serve it; keys in MAL's order.
#[derive(Serialize)]
struct NodeJson {
    id: u64,
    title: String,
    main_picture: Picture,
    #[serde(skip_serializing_if = "Option::is_none")]
    alternative_titles: Option<AltTitles>,
    #[serde(skip_serializing_if = "Option::is_none")]
    start_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    synopsis: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mean: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nsfw: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    media_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    genres: Option<Vec<GenreJson>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    my_list_status: Option<ListStatusJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    num_episodes: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    num_chapters: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    num_volumes: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    start_season: Option<SeasonJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    broadcast: Option<BroadcastJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    average_episode_duration: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rating: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    authors: Option<Vec<AuthorJson>>,
}

#[derive(Serialize)]
struct AnimeListStatusJson {
    status: String,
    score: u8,
    num_episodes_watched: u32,
    is_rewatching: bool,
    updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    start_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finish_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    priority: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    num_times_rewatched: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rewatch_value: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    comments: Option<String>,
}

#[derive(Serialize)]
struct MangaListStatusJson {
    status: String,
    is_rereading: bool,
    num_volumes_read: u32,
    num_chapters_read: u32,
    score: u8,
    updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    start_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finish_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    priority: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    num_times_reread: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reread_value: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    comments: Option<String>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum ListStatusJson {
    Anime(AnimeListStatusJson),
    Manga(MangaListStatusJson),
}

#[derive(Serialize)]
struct ListItem {
    node: NodeJson,
    list_status: ListStatusJson,
}

#[derive(Serialize)]
struct SearchItem {
    node: NodeJson,
}

#[derive(Serialize, Default)]
struct Paging {
    #[serde(skip_serializing_if = "Option::is_none")]
    previous: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

#[derive(Serialize)]
struct Page<T> {
    data: Vec<T>,
    paging: Paging,
}

/// Requested fields: name → sub-fields.
type Fields = HashMap<String, Vec<String>>;

/// `fields=a,b,list_status{c,d}` → `{a: [], b: [], list_status: [c, d]}`.
fn parse_fields(s: &str) -> Fields {
    fn split_top(s: &str) -> Vec<&str> {
        let mut out = Vec::new();
        let (mut depth, mut start) = (0usize, 0usize);
        for (i, c) in s.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth = depth.saturating_sub(1),
                ',' if depth == 0 => {
                    out.push(&s[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        out.push(&s[start..]);
        out
    }
    let mut map = HashMap::new();
    for part in split_top(s) {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (name, subs) = match part.split_once('{') {
            Some((name, rest)) => {
                let inner = rest.strip_suffix('}').unwrap_or(rest);
                let subs = split_top(inner)
                    .into_iter()
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
                (name.trim(), subs)
            }
            None => (part, Vec::new()),
        };
        map.insert(name.to_string(), subs);
    }
    map
}

/// `list_status` / `my_list_status` of an entry: the base keys, the dates when
/// set, and the optional keys named in `extra` (all of them if `everything`,
/// as a PATCH answers).
fn list_status_json(kind: Kind, e: &Entry, extra: &[String], everything: bool) -> ListStatusJson {
    let want = |k: &str| everything || extra.iter().any(|x| x == k);
    let tags = want("tags").then(|| e.tags.clone());
    let comments = want("comments").then(|| e.comments.clone());
    let priority = want("priority").then_some(e.priority);
    match kind {
        Kind::Anime => ListStatusJson::Anime(AnimeListStatusJson {
            status: e.status.clone(),
            score: e.score,
            num_episodes_watched: e.progress,
            is_rewatching: e.repeating,
            updated_at: fmt_time(e.updated_at),
            start_date: e.start_date.clone(),
            finish_date: e.finish_date.clone(),
            priority,
            num_times_rewatched: want("num_times_rewatched").then_some(e.times_repeated),
            rewatch_value: want("rewatch_value").then_some(e.repeat_value),
            tags,
            comments,
        }),
        Kind::Manga => ListStatusJson::Manga(MangaListStatusJson {
            status: e.status.clone(),
            is_rereading: e.repeating,
            num_volumes_read: e.volumes,
            num_chapters_read: e.progress,
            score: e.score,
            updated_at: fmt_time(e.updated_at),
            start_date: e.start_date.clone(),
            finish_date: e.finish_date.clone(),
            priority,
            num_times_reread: want("num_times_reread").then_some(e.times_repeated),
            reread_value: want("reread_value").then_some(e.repeat_value),
            tags,
            comments,
        }),
    }
}

/// The title's own `status`, explicit or derived from its total.
fn media_status(kind: Kind, t: &Title) -> String {
    if let Some(s) = &t.info.media_status {
        return s.clone();
    }
    match (kind, t.total) {
        (Kind::Anime, 0) => "currently_airing",
        (Kind::Anime, _) => "finished_airing",
        (Kind::Manga, 0) => "currently_publishing",
        (Kind::Manga, _) => "finished",
    }
    .to_string()
}

/// A title with the requested `fields`. `entry` is the user's list entry,
/// given only to Bearer-authenticated requests (for `my_list_status`).
fn node_json(
    base: &str,
    kind: Kind,
    id: u64,
    t: &Title,
    fields: &Fields,
    entry: Option<&Entry>,
) -> NodeJson {
    let has = |k: &str| fields.contains_key(k);
    let anime = kind == Kind::Anime;
    let info = &t.info;
    let (medium, large) = info.main_picture.clone().unwrap_or_else(|| {
        (
            format!("{base}/images/{}/{id}.png", kind.name()),
            format!("{base}/images/{}/{id}l.png", kind.name()),
        )
    });
    NodeJson {
        id,
        title: t.title.clone(),
        main_picture: Picture { medium, large },
        alternative_titles: has("alternative_titles").then(|| AltTitles {
            synonyms: info.synonyms.clone(),
            en: info.title_en.clone().unwrap_or_else(|| t.title.clone()),
            ja: info.title_ja.clone().unwrap_or_default(),
        }),
        start_date: info.start_date.clone().filter(|_| has("start_date")),
        end_date: info.end_date.clone().filter(|_| has("end_date")),
        synopsis: has("synopsis").then(|| info.synopsis.clone().unwrap_or_default()),
        mean: info.mean.filter(|_| has("mean")),
        nsfw: has("nsfw").then_some(t.nsfw),
        media_type: has("media_type").then(|| {
            info.media_type
                .clone()
                .unwrap_or_else(|| if anime { "tv" } else { "manga" }.to_string())
        }),
        status: has("status").then(|| media_status(kind, t)),
        genres: has("genres").then(|| {
            info.genres
                .iter()
                .map(|(id, name)| GenreJson {
                    id: *id,
                    name: name.clone(),
                })
                .collect()
        }),
        my_list_status: match (fields.get("my_list_status"), entry) {
            (Some(subs), Some(e)) => Some(list_status_json(kind, e, subs, false)),
            _ => None,
        },
        num_episodes: (anime && has("num_episodes")).then_some(t.total),
        num_chapters: (!anime && has("num_chapters")).then_some(t.total),
        num_volumes: (!anime && has("num_volumes")).then_some(t.volumes),
        start_season: info
            .start_season
            .as_ref()
            .filter(|_| anime && has("start_season"))
            .map(|(year, season)| SeasonJson {
                year: *year,
                season: season.clone(),
            }),
        broadcast: info
            .broadcast
            .as_ref()
            .filter(|_| anime && has("broadcast"))
            .map(|(day, time)| BroadcastJson {
                day_of_the_week: day.clone(),
                start_time: time.clone(),
            }),
        average_episode_duration: (anime && has("average_episode_duration"))
            .then(|| info.average_episode_duration.unwrap_or(0)),
        rating: (anime && has("rating")).then(|| {
            info.rating.clone().unwrap_or_else(|| {
                match t.nsfw {
                    "black" => "rx",
                    "gray" => "r+",
                    _ => "pg_13",
                }
                .to_string()
            })
        }),
        authors: (!anime && has("authors")).then(|| {
            info.authors
                .iter()
                .map(|a| AuthorJson {
                    node: AuthorNodeJson {
                        id: a.id,
                        first_name: a.first_name.clone(),
                        last_name: a.last_name.clone(),
                    },
                    role: a.role.clone(),
                })
                .collect()
        }),
    }
}

fn nsfw_allowed(params: &[(String, String)]) -> bool {
    matches!(first(params, "nsfw"), Some("true") | Some("1"))
}

/// `(limit, offset)` with MAL's default 100 and the given maximum: above it,
/// `limit` is clamped (`clamp`, lists) or refused (search). `Err` is the 400
/// message.
fn limit_offset(
    params: &[(String, String)],
    max: usize,
    clamp: bool,
) -> Result<(usize, usize), &'static str> {
    let limit = match first(params, "limit") {
        None => 100.min(max),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n > 0 && (clamp || n <= max) => n.min(max),
            _ => return Err("invalid limit"),
        },
    };
    let offset = match first(params, "offset") {
        None => 0,
        Some(v) => v.parse::<usize>().map_err(|_| "invalid offset")?,
    };
    Ok((limit, offset))
}

/// Absolute URL of another page: `offset` first, the other parameters as sent.
fn page_url(
    base: &str,
    path: &str,
    params: &[(String, String)],
    offset: usize,
    limit: usize,
) -> String {
    let mut pairs = vec![("offset".to_string(), offset.to_string())];
    let mut had_limit = false;
    for (k, v) in params {
        match k.as_str() {
            "offset" => {}
            "limit" => {
                had_limit = true;
                pairs.push((k.clone(), limit.to_string()));
            }
            _ => pairs.push((k.clone(), v.clone())),
        }
    }
    if !had_limit {
        pairs.push(("limit".to_string(), limit.to_string()));
    }
    let query: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    format!("{base}{path}?{}", query.join("&"))
}

fn paging(
    base: &str,
    path: &str,
    params: &[(String, String)],
    total: usize,
    limit: usize,
    offset: usize,
) -> Paging {
    Paging {
        previous: (offset > 0)
            .then(|| page_url(base, path, params, offset.saturating_sub(limit), limit)),
        next: (offset.saturating_add(limit) < total)
            .then(|| page_url(base, path, params, offset + limit, limit)),
    }
}

// ---------------------------------------------------------------------------
// API v2 handlers
// ---------------------------------------------------------------------------

#[derive(Serialize)]
struct UserJson {
    id: u64,
    name: String,
    gender: &'static str,
    location: &'static str,
    joined_at: &'static str,
    picture: String,
}

async fn user_info(State(app): State<App>, Path(user): Path<String>) -> Response {
    let w = app.world();
    if user != "@me" {
        return json_str(StatusCode::NOT_FOUND, NOT_FOUND_BODY);
    }
    json(
        StatusCode::OK,
        &UserJson {
            id: USER_ID,
            name: w.user.clone(),
            gender: "",
            location: "",
            joined_at: "2015-05-03T11:42:57+00:00",
            picture: format!(
                "https://api-cdn.myanimelist.net/images/userimages/{USER_ID}.jpg?t=1615832400"
            ),
        },
    )
}

async fn animelist(
    State(app): State<App>,
    Path(user): Path<String>,
    OriginalUri(uri): OriginalUri,
    RawQuery(q): RawQuery,
) -> Response {
    list_page(&app, Kind::Anime, &user, uri.path(), q.as_deref())
}

async fn mangalist(
    State(app): State<App>,
    Path(user): Path<String>,
    OriginalUri(uri): OriginalUri,
    RawQuery(q): RawQuery,
) -> Response {
    list_page(&app, Kind::Manga, &user, uri.path(), q.as_deref())
}

enum Sort {
    UpdatedAt,
    Score,
    Title,
    StartDate,
    Id,
}

/// `GET /users/{user}/animelist|mangalist`.
fn list_page(app: &App, kind: Kind, user: &str, path: &str, q: Option<&str>) -> Response {
    let params = parse_urlencoded(q.unwrap_or(""));
    let status = first(&params, "status").filter(|s| !s.is_empty());
    if let Some(s) = status
        && !kind.statuses().contains(&s)
    {
        return bad_request("invalid status");
    }
    let (limit, offset) = match limit_offset(&params, 1000, true) {
        Ok(v) => v,
        Err(message) => return bad_request(message),
    };
    let sort = match first(&params, "sort").unwrap_or("") {
        "" | "list_updated_at" => Sort::UpdatedAt,
        "list_score" => Sort::Score,
        other => match other
            .strip_prefix(kind.name())
            .and_then(|rest| rest.strip_prefix('_'))
        {
            Some("title") => Sort::Title,
            Some("start_date") => Sort::StartDate,
            Some("id") => Sort::Id,
            _ => return bad_request("invalid sort"),
        },
    };
    let nsfw = nsfw_allowed(&params);
    let fields = parse_fields(first(&params, "fields").unwrap_or(""));
    let mut ls_subs = fields.get("list_status").cloned().unwrap_or_default();
    if kind == Kind::Manga {
        // As recorded (user-mangalist-page.json): the manga list always
        // carries comments and tags.
        ls_subs.extend(["comments".to_string(), "tags".to_string()]);
    }

    let w = app.world();
    if user != "@me" && user != w.user {
        return json_str(StatusCode::NOT_FOUND, NOT_FOUND_BODY);
    }
    let shelf = w.shelf(kind);
    let mut rows: Vec<(u64, &Entry, &Title)> = shelf
        .list
        .iter()
        .filter_map(|(id, e)| shelf.catalogue.get(id).map(|t| (*id, e, t)))
        .filter(|(_, e, _)| status.is_none_or(|s| e.status == s))
        .filter(|(_, _, t)| nsfw || t.nsfw == "white")
        .collect();
    match sort {
        Sort::Score => rows.sort_by(|a, b| b.1.score.cmp(&a.1.score).then(a.0.cmp(&b.0))),
        Sort::Title => rows.sort_by(|a, b| a.2.title.cmp(&b.2.title).then(a.0.cmp(&b.0))),
        // Latest first; titles without a date last.
        Sort::StartDate => rows.sort_by(|a, b| {
            (b.2.info.start_date)
                .cmp(&a.2.info.start_date)
                .then(a.0.cmp(&b.0))
        }),
        Sort::Id => rows.sort_by_key(|r| r.0),
        Sort::UpdatedAt => {
            rows.sort_by(|a, b| b.1.updated_at.cmp(&a.1.updated_at).then(a.0.cmp(&b.0)))
        }
    }
    let total = rows.len();
    let data = rows
        .iter()
        .skip(offset)
        .take(limit)
        .map(|(id, e, t)| ListItem {
            node: node_json(&app.base, kind, *id, t, &fields, None),
            list_status: list_status_json(kind, e, &ls_subs, false),
        })
        .collect();
    let page = Page {
        data,
        paging: paging(&app.base, path, &params, total, limit, offset),
    };
    json(StatusCode::OK, &page)
}

async fn anime_search(
    State(app): State<App>,
    Extension(auth): Extension<Auth>,
    OriginalUri(uri): OriginalUri,
    RawQuery(q): RawQuery,
) -> Response {
    search(&app, Kind::Anime, auth, uri.path(), q.as_deref())
}

async fn manga_search(
    State(app): State<App>,
    Extension(auth): Extension<Auth>,
    OriginalUri(uri): OriginalUri,
    RawQuery(q): RawQuery,
) -> Response {
    search(&app, Kind::Manga, auth, uri.path(), q.as_deref())
}

/// Case-insensitive substring match over the title and its alternative titles.
fn title_matches(t: &Title, query_lower: &str) -> bool {
    std::iter::once(&t.title)
        .chain(&t.info.synonyms)
        .chain(&t.info.title_en)
        .chain(&t.info.title_ja)
        .any(|s| s.to_lowercase().contains(query_lower))
}

/// `GET /anime|manga?q=…`.
fn search(app: &App, kind: Kind, auth: Auth, path: &str, q: Option<&str>) -> Response {
    let params = parse_urlencoded(q.unwrap_or(""));
    let raw_q = first(&params, "q").unwrap_or("").to_string();
    let mut w = app.world();
    w.searches.push((kind.name().to_string(), raw_q.clone()));
    let query = raw_q.trim().to_lowercase();
    if !(3..=64).contains(&query.chars().count()) {
        return json_str(StatusCode::BAD_REQUEST, INVALID_Q_BODY);
    }
    let (limit, offset) = match limit_offset(&params, 100, false) {
        Ok(v) => v,
        Err(message) => return bad_request(message),
    };
    let nsfw = nsfw_allowed(&params);
    let fields = parse_fields(first(&params, "fields").unwrap_or(""));
    let shelf = w.shelf(kind);
    let hits: Vec<(u64, &Title)> = shelf
        .catalogue
        .iter()
        .filter(|(_, t)| title_matches(t, &query))
        .filter(|(_, t)| nsfw || t.nsfw == "white")
        .map(|(id, t)| (*id, t))
        .collect();
    let total = hits.len();
    let data = hits
        .iter()
        .skip(offset)
        .take(limit)
        .map(|(id, t)| {
            let entry = (auth == Auth::Bearer).then(|| shelf.list.get(id)).flatten();
            SearchItem {
                node: node_json(&app.base, kind, *id, t, &fields, entry),
            }
        })
        .collect();
    let page = Page {
        data,
        paging: paging(&app.base, path, &params, total, limit, offset),
    };
    json(StatusCode::OK, &page)
}

async fn anime_details(
    State(app): State<App>,
    Extension(auth): Extension<Auth>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    details(&app, Kind::Anime, auth, &id, q.as_deref())
}

async fn manga_details(
    State(app): State<App>,
    Extension(auth): Extension<Auth>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    details(&app, Kind::Manga, auth, &id, q.as_deref())
}

/// `GET /anime|manga/{id}`.
fn details(app: &App, kind: Kind, auth: Auth, id: &str, q: Option<&str>) -> Response {
    let params = parse_urlencoded(q.unwrap_or(""));
    let fields = parse_fields(first(&params, "fields").unwrap_or(""));
    let w = app.world();
    let shelf = w.shelf(kind);
    let Some((id, t)) = id
        .parse::<u64>()
        .ok()
        .and_then(|id| shelf.catalogue.get(&id).map(|t| (id, t)))
    else {
        return json_str(StatusCode::NOT_FOUND, NOT_FOUND_BODY);
    };
    let entry = (auth == Auth::Bearer)
        .then(|| shelf.list.get(&id))
        .flatten();
    json(
        StatusCode::OK,
        &node_json(&app.base, kind, id, t, &fields, entry),
    )
}

#[derive(Default)]
struct Update {
    status: Option<String>,
    repeating: Option<bool>,
    score: Option<u8>,
    progress: Option<u32>,
    volumes: Option<u32>,
    priority: Option<u8>,
    times_repeated: Option<u32>,
    repeat_value: Option<u8>,
    tags: Option<Vec<String>>,
    comments: Option<String>,
    start_date: Option<Option<String>>,
    finish_date: Option<Option<String>>,
}

/// Form field names of a kind's PATCH (request names).
fn form_fields(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Anime => &[
            "status",
            "is_rewatching",
            "score",
            "num_watched_episodes",
            "priority",
            "num_times_rewatched",
            "rewatch_value",
            "tags",
            "comments",
            "start_date",
            "finish_date",
        ],
        Kind::Manga => &[
            "status",
            "is_rereading",
            "score",
            "num_volumes_read",
            "num_chapters_read",
            "priority",
            "num_times_reread",
            "reread_value",
            "tags",
            "comments",
            "start_date",
            "finish_date",
        ],
    }
}

/// `YYYY-MM-DD`, a real calendar date.
fn valid_date(v: &str) -> bool {
    let b = v.as_bytes();
    let shape = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    shape
        && match (v[0..4].parse(), v[5..7].parse(), v[8..10].parse()) {
            (Ok(y), Ok(m), Ok(d)) => jiff::civil::Date::new(y, m, d).is_ok(),
            _ => false,
        }
}

/// Validates the whole form first, so an invalid request changes nothing.
/// `Err` is the 400 body: extra fields first, then the first invalid value.
fn parse_update(kind: Kind, form: &[(String, String)]) -> Result<Update, String> {
    fn num<T: std::str::FromStr + PartialOrd>(k: &str, v: &str, max: T) -> Result<T, String> {
        match v.parse::<T>() {
            Ok(n) if n <= max => Ok(n),
            _ => Err(invalid_field_body(k)),
        }
    }
    fn flag(k: &str, v: &str) -> Result<bool, String> {
        match v {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            _ => Err(invalid_field_body(k)),
        }
    }
    fn date(k: &str, v: &str) -> Result<Option<String>, String> {
        if v.is_empty() {
            Ok(None)
        } else if valid_date(v) {
            Ok(Some(v.to_string()))
        } else {
            Err(invalid_field_body(k))
        }
    }
    let known = form_fields(kind);
    if form.iter().any(|(k, _)| !known.contains(&k.as_str())) {
        return Err(EXTRA_FIELDS_BODY.to_string());
    }
    let mut u = Update::default();
    for (k, v) in form {
        let (k, v) = (k.as_str(), v.as_str());
        match k {
            "status" => {
                if !kind.statuses().contains(&v) {
                    return Err(invalid_field_body(k));
                }
                u.status = Some(v.to_string());
            }
            "is_rewatching" | "is_rereading" => u.repeating = Some(flag(k, v)?),
            "score" => u.score = Some(num(k, v, 10u8)?),
            "num_watched_episodes" | "num_chapters_read" => u.progress = Some(num(k, v, u32::MAX)?),
            "num_volumes_read" => u.volumes = Some(num(k, v, u32::MAX)?),
            "priority" => u.priority = Some(num(k, v, 2u8)?),
            "num_times_rewatched" | "num_times_reread" => {
                u.times_repeated = Some(num(k, v, u32::MAX)?)
            }
            "rewatch_value" | "reread_value" => u.repeat_value = Some(num(k, v, 5u8)?),
            "tags" => {
                u.tags = Some(
                    v.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect(),
                );
            }
            "comments" => u.comments = Some(v.to_string()),
            "start_date" => u.start_date = Some(date(k, v)?),
            "finish_date" => u.finish_date = Some(date(k, v)?),
            _ => return Err(EXTRA_FIELDS_BODY.to_string()),
        }
    }
    Ok(u)
}

impl Update {
    fn apply(self, e: &mut Entry) {
        if let Some(v) = self.status {
            e.status = v;
        }
        if let Some(v) = self.repeating {
            e.repeating = v;
        }
        if let Some(v) = self.score {
            e.score = v;
        }
        if let Some(v) = self.progress {
            e.progress = v;
        }
        if let Some(v) = self.volumes {
            e.volumes = v;
        }
        if let Some(v) = self.priority {
            e.priority = v;
        }
        if let Some(v) = self.times_repeated {
            e.times_repeated = v;
        }
        if let Some(v) = self.repeat_value {
            e.repeat_value = v;
        }
        if let Some(v) = self.tags {
            e.tags = v;
        }
        if let Some(v) = self.comments {
            e.comments = v;
        }
        if let Some(v) = self.start_date {
            e.start_date = v;
        }
        if let Some(v) = self.finish_date {
            e.finish_date = v;
        }
    }
}

async fn anime_patch(
    State(app): State<App>,
    Path(id): Path<String>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    patch_status(&app, Kind::Anime, &id, uri.path(), &headers, &body)
}

async fn manga_patch(
    State(app): State<App>,
    Path(id): Path<String>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    patch_status(&app, Kind::Manga, &id, uri.path(), &headers, &body)
}

/// `PATCH /anime|manga/{id}/my_list_status`: upsert, answer the full list_status.
fn patch_status(
    app: &App,
    kind: Kind,
    id: &str,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return json_str(StatusCode::NOT_FOUND, NOT_FOUND_BODY);
    };
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    // Like PHP, a body that is not form-encoded is simply not seen.
    let form = if is_form {
        parse_urlencoded(&String::from_utf8_lossy(body))
    } else {
        Vec::new()
    };
    let mut w = app.world();
    w.patches.push(Patch {
        id,
        form: form.clone(),
        kind: kind.name().to_string(),
        path: path.to_string(),
    });
    if !w.shelf(kind).catalogue.contains_key(&id) {
        return json_str(StatusCode::NOT_FOUND, NOT_FOUND_BODY);
    }
    if !is_form && w.shelf(kind).list.contains_key(&id) {
        return json_str(StatusCode::INTERNAL_SERVER_ERROR, INTERNAL_ERROR_BODY);
    }
    let u = match parse_update(kind, &form) {
        Ok(u) => u,
        Err(body) => return raw(StatusCode::BAD_REQUEST, JSON_CT, body),
    };
    let now = w.bump();
    // Upsert; a new entry without `status` gets the ASSUMED "plan to" status
    // (see `Kind::upsert_status`).
    let e = w
        .shelf_mut(kind)
        .list
        .entry(id)
        .or_insert_with(|| Entry::new(kind.upsert_status(), now));
    u.apply(e);
    e.updated_at = now;
    json(StatusCode::OK, &list_status_json(kind, e, &[], true))
}

async fn anime_delete(State(app): State<App>, Path(id): Path<String>) -> Response {
    delete_status(&app, Kind::Anime, &id)
}

async fn manga_delete(State(app): State<App>, Path(id): Path<String>) -> Response {
    delete_status(&app, Kind::Manga, &id)
}

/// `DELETE /anime|manga/{id}/my_list_status`: `[]`, or 404 when not on the list.
fn delete_status(app: &App, kind: Kind, id: &str) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return json_str(StatusCode::NOT_FOUND, NOT_FOUND_BODY);
    };
    let mut w = app.world();
    w.deletes.push((kind.name().to_string(), id));
    match w.shelf_mut(kind).list.remove(&id) {
        Some(_) => raw(StatusCode::OK, JSON_CT, "[]".to_string()),
        None => json_str(StatusCode::NOT_FOUND, NOT_FOUND_BODY),
    }
}

/// `GET /images/…`: every cover is the same tiny PNG.
async fn image(State(app): State<App>, OriginalUri(uri): OriginalUri) -> Response {
    app.world().images.push(uri.path().to_string());
    ([(header::CONTENT_TYPE, "image/png")], cover_png()).into_response()
}

// ---------------------------------------------------------------------------
// Small helpers: urlencoding, base64, time, random tokens
// ---------------------------------------------------------------------------

fn first<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Decodes `application/x-www-form-urlencoded` (also query strings).
pub fn parse_urlencoded(s: &str) -> Vec<(String, String)> {
    fn decode(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < b.len() => {
                    let hex = std::str::from_utf8(&b[i + 1..i + 3])
                        .ok()
                        .and_then(|h| u8::from_str_radix(h, 16).ok());
                    match hex {
                        Some(v) => {
                            out.push(v);
                            i += 2;
                        }
                        None => out.push(b'%'),
                    }
                }
                c => out.push(c),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// Percent-encodes like PHP's `urlencode` (space → `+`).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32)
    }
    let s = s.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &c in s {
        acc = (acc << 6) | val(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

fn unix_now() -> i64 {
    jiff::Timestamp::now().as_second()
}

fn fmt_time(secs: i64) -> String {
    jiff::Timestamp::from_second(secs)
        .expect("timestamp in range")
        .strftime("%Y-%m-%dT%H:%M:%S+00:00")
        .to_string()
}

fn hex(n_bytes: usize) -> String {
    let mut rng = rand::rng();
    (0..n_bytes)
        .map(|_| format!("{:02x}", rng.random::<u8>()))
        .collect()
}

/// JWT-looking, ~700 bytes (real ones are ~1,000).
fn access_token() -> String {
    let mut rng = rand::rng();
    format!(
        "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.{}.{}-{}_{}",
        Alphanumeric.sample_string(&mut rng, 400),
        Alphanumeric.sample_string(&mut rng, 100),
        Alphanumeric.sample_string(&mut rng, 100),
        Alphanumeric.sample_string(&mut rng, 60),
    )
}

/// `def50200…` hex like league's encrypted refresh tokens.
fn refresh_token() -> String {
    format!("def50200{}", hex(350))
}

fn auth_code() -> String {
    format!("def50200{}", hex(120))
}

/// A valid 2×3 RGB PNG, built here (stored deflate block, real CRCs), served
/// for every `/images/…` path.
pub fn cover_png() -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut c = 0xFFFF_FFFFu32;
        for &b in bytes {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        !c
    }
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let crc = crc32(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    }
    const WIDTH: u32 = 2;
    const HEIGHT: u32 = 3;
    // Scanlines: filter byte 0, then RGB pixels.
    let mut pixels = Vec::new();
    for y in 0..HEIGHT {
        pixels.push(0u8);
        for x in 0..WIDTH {
            pixels.extend_from_slice(&[(40 + 150 * x) as u8, (60 * y) as u8, 160]);
        }
    }
    // zlib: header, one final stored block, Adler-32.
    let len = pixels.len() as u16;
    let mut zlib = vec![0x78, 0x01, 0x01];
    zlib.extend_from_slice(&len.to_le_bytes());
    zlib.extend_from_slice(&(!len).to_le_bytes());
    zlib.extend_from_slice(&pixels);
    let (mut a, mut b) = (1u32, 0u32);
    for &p in &pixels {
        a = (a + u32::from(p)) % 65_521;
        b = (b + a) % 65_521;
    }
    zlib.extend_from_slice(&((b << 16) | a).to_be_bytes());

    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&WIDTH.to_be_bytes());
    ihdr.extend_from_slice(&HEIGHT.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB, deflate, no filter/interlace
    chunk(&mut png, b"IHDR", &ihdr);
    chunk(&mut png, b"IDAT", &zlib);
    chunk(&mut png, b"IEND", &[]);
    png
}
