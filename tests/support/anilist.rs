//! A stateful fake of AniList: the GraphQL API (`POST /`) and the OAuth
//! server (`/api/v2/oauth/…`), served over real HTTP on `127.0.0.1` by axum.
//!
//! Built from AniList's documentation (AniList/ApiV2-GraphQL-Docs,
//! `docs/reference/**`, `docs/guide/**`) and the recorded responses in
//! `shared/api/fixtures/anilist/` (see `shared/api/NOTES.md` §2 and §4), not
//! from malt's code, so that it catches a client's mistakes:
//! - every request body `{"query","variables","operationName"}` is parsed with
//!   graphql-parser and validated against a schema transcribed from the docs:
//!   unknown fields (`Cannot query field "x" on type "Y".`), unknown arguments
//!   (`Unknown argument "a" on field "F" of type "Query".`), literals of the
//!   wrong type, scalar leafs without/with sub-selections, undefined, unused or
//!   mistyped variables (`Variable "$t" of type "String" used in position
//!   expecting type "MediaType".`), unknown fragments: all answer HTTP 400
//!   `{"data":null,"errors":[{"message","status":400,"locations"}]}`;
//!   variables are coerced like a GraphQL server does (`Int` is 32-bit, enums
//!   must be one of their values, `FuzzyDateInput` only has year/month/day);
//! - only the selected fields are answered, in selection order, with aliases,
//!   fragments, `@include`/`@skip` and field arguments (`score(format:)`,
//!   `description(asHtml:)`, `customLists(asArray:)`); fields of the schema the
//!   fake does not model answer `null` (`[]` for lists);
//! - JSON is written like PHP's `json_encode`: `/` as `\/`, non-ASCII as
//!   `\uXXXX`, a Float without fraction as an integer (`85`, `8.5`);
//! - an unknown, revoked or expired token on ANY request answers HTTP 400
//!   `{"errors":[{"message":"Invalid token","status":400,"locations":[…]}],"data":{"Root":null}}`
//!   (fixture `error-400-invalid-token.json`); `Viewer` and mutations without a
//!   token answer 401 `Unauthorized.`; a missing `Media`/`MediaList`/`User`
//!   answers 404 `Not Found.` with the root field `null`
//!   (fixture `error-404-not-found.json`); a `SaveMediaListEntry` that fails
//!   validation answers 400 `{"data":null,"errors":[{"message":"validation",…,"validation":{…}}]}`
//!   (fixture `error-400-validation.json`) and changes nothing;
//! - every API response carries `X-RateLimit-Limit`/`X-RateLimit-Remaining`;
//!   past the limit (90/min, or 30/min in "degraded" mode while the headers
//!   still say 90) the client gets a timeout answering 429 with `Retry-After`,
//!   `X-RateLimit-Reset` and the body of `error-429-too-many-requests.json`;
//! - entry ids (`MediaList.id`) are unrelated to media ids; `DeleteMediaListEntry`
//!   takes the entry id, anything else answers 403 "You are not authorized to
//!   modify this MediaList"; `MediaList(mediaId:)` without `userId` finds
//!   whoever's entry comes first, as the docs warn;
//! - `MediaListCollection` has one list per status ("Watching"/"Reading", …,
//!   `isCustomList: false`) and one per custom list (`status: null`,
//!   `isCustomList: true`); an entry is in its status list (unless
//!   `hiddenFromStatusLists`) and in each of its custom lists, so clients must
//!   dedupe; a user may split "Completed" by format (`isSplitCompletedList`);
//!   without `chunk` only the 11,000 most recently updated entries are served
//!   ([`FakeAnilist::set_collection_cap`]); private entries are only shown to
//!   their owner;
//! - scores are stored as 100-point raw values and served in the format of
//!   `score(format:)`, else the viewer's (else the owner's) `scoreFormat`;
//!   `SaveMediaListEntry(score:)` is read in the viewer's format;
//! - `Page` takes one data field besides `pageInfo` (docs); `perPage` is
//!   capped at 50; `pageInfo.total`/`lastPage` are inexact as the docs warn
//!   (only `hasNextPage` is reliable; see [`FakeAnilist::set_accurate_page_info`]);
//! - tokens are JWTs (`{"typ":"JWT","alg":"RS256","jti"}` /
//!   `{"aud","jti","iat","nbf","exp","sub","scopes":[]}`) valid for a year;
//!   there are no refresh tokens.
//!
//! OAuth (configure `auth_url = fake.auth_url()`, i.e. `{base}/api/v2/oauth`):
//! `GET {auth_url}/authorize?client_id&response_type=token[&state]` redirects
//! (302) to the app's registered redirect URI with
//! `#access_token=<jwt>&token_type=Bearer&expires_in=31536000[&state=…]`;
//! `response_type=code` redirects with `?code=…[&state=…]`, exchanged by
//! `POST {auth_url}/token` (JSON or form: grant_type, client_id, client_secret,
//! redirect_uri, code) for `{"token_type":"Bearer","expires_in":31536000,"access_token":"…"}`.
//! A wrong client id or a redirect URI other than the registered one answers
//! 401 `{"error":"invalid_client","message":"Client authentication failed"}`;
//! a bad or used code answers 400 `{"error":"invalid_request",…}`. An app
//! registered with AniList's pin page ([`PIN_URI`]) is sent to `{auth_url}/pin`,
//! an HTML page showing the token (or code) to copy.
//! Covers and avatars point at the fake itself (`{base}/file/…`, a tiny PNG).
//!
//! ```ignore
//! let fake = FakeAnilist::start().await; // or start_background() in a sync #[test]
//! fake.add_media(Media::anime(21, "One Piece", None).airing(1100, now + 3600));
//! let entry_id = fake.add_entry(DEFAULT_USER_ID, Entry::new(21, ListStatus::Current).progress(1099));
//! let token = fake.issue_token(DEFAULT_USER_ID);
//! // config: fake.config_toml(redirect_uri); POST to fake.api_url() with `Authorization: Bearer {token}`
//! assert_eq!(fake.entry(DEFAULT_USER_ID, 21).unwrap().progress, 1100);
//! assert_eq!(fake.graphql_requests()[0].root_fields, ["SaveMediaListEntry"]);
//! ```

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt::{self, Write as _};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use graphql_parser::Pos;
use graphql_parser::query as q;
use rand::RngExt;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::mal::{cover_png, encode, parse_urlencoded};

// ---------------------------------------------------------------------------
// Constants and exact bodies
// ---------------------------------------------------------------------------

/// The user every fake starts with (the one `viewer.json` shows).
pub const DEFAULT_USER_ID: u64 = 12345;
/// Name of [`DEFAULT_USER_ID`].
pub const DEFAULT_USER_NAME: &str = "UserName";
/// The app's registered redirect URI until [`FakeAnilist::set_redirect_uri`] /
/// [`FakeAnilist::config_toml`] changes it (malt's default).
pub const DEFAULT_REDIRECT_URI: &str = "http://127.0.0.1:53682/callback";
/// AniList's pin page; an app registered with it is sent to the fake's `{auth_url}/pin`.
pub const PIN_URI: &str = "https://anilist.co/api/v2/oauth/pin";
/// `expires_in` of every token: one year.
pub const TOKEN_LIFETIME: i64 = 31_536_000;
/// Body of a 429 (byte-equal to `error-429-too-many-requests.json`, compact).
pub const TOO_MANY_REQUESTS_BODY: &str =
    r#"{"data":null,"errors":[{"message":"Too Many Requests.","status":429}]}"#;
/// Token endpoint / authorize: unknown client, wrong secret or redirect URI (HTTP 401).
pub const INVALID_CLIENT_BODY: &str =
    r#"{"error":"invalid_client","message":"Client authentication failed"}"#;
/// Token endpoint: a grant other than `authorization_code` (HTTP 400).
pub const UNSUPPORTED_GRANT_TYPE_BODY: &str = r#"{"error":"unsupported_grant_type","message":"The authorization grant type is not supported by the authorization server.","hint":"Check that all required parameters have been provided"}"#;
/// What [`Fault::ServerError`] answers (HTTP 500).
pub const SERVER_ERROR_BODY: &str =
    r#"{"data":null,"errors":[{"message":"Internal Server Error","status":500}]}"#;
/// What [`Fault::BadGateway`] answers (HTTP 502, `text/html`).
pub const BAD_GATEWAY_HTML: &str = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n";
/// What [`Fault::MalformedJson`] answers (HTTP 200, `application/json`).
pub const MALFORMED_JSON_BODY: &str = r#"{"data":{"MediaListCollection":{"lists":[{"name":"Watch"#;

const INVALID_REQUEST_MESSAGE: &str = "The request is missing a required parameter, includes an invalid parameter value, includes a parameter more than once, or is otherwise malformed.";
const JSON_CT: &str = "application/json";
/// MediaListCollection serves at most this many entries without `chunk` (docs).
const COLLECTION_CAP: usize = 11_000;

// ---------------------------------------------------------------------------
// Public value types
// ---------------------------------------------------------------------------

/// A user's scoring system (`ScoreFormat`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScoreFormat {
    Point100,
    Point10Decimal,
    Point10,
    Point5,
    Point3,
}

impl ScoreFormat {
    pub const ALL: [ScoreFormat; 5] = [
        ScoreFormat::Point100,
        ScoreFormat::Point10Decimal,
        ScoreFormat::Point10,
        ScoreFormat::Point5,
        ScoreFormat::Point3,
    ];

    /// `POINT_100`, `POINT_10_DECIMAL`, …
    pub fn name(self) -> &'static str {
        match self {
            ScoreFormat::Point100 => "POINT_100",
            ScoreFormat::Point10Decimal => "POINT_10_DECIMAL",
            ScoreFormat::Point10 => "POINT_10",
            ScoreFormat::Point5 => "POINT_5",
            ScoreFormat::Point3 => "POINT_3",
        }
    }

    pub fn from_name(s: &str) -> Option<ScoreFormat> {
        ScoreFormat::ALL.into_iter().find(|f| f.name() == s)
    }

    /// The highest score of the format (validation: "may not be greater than").
    pub fn max(self) -> u32 {
        match self {
            ScoreFormat::Point100 => 100,
            ScoreFormat::Point10Decimal | ScoreFormat::Point10 => 10,
            ScoreFormat::Point5 => 5,
            ScoreFormat::Point3 => 3,
        }
    }

    /// A 100-point raw score as served in this format: 85 → 85, 8.5, 9, 4, 3.
    /// POINT_3 (smileys): 0 → 0, 1–35 → 1, 36–60 → 2, 61–100 → 3.
    pub fn raw_to_score(self, raw: u32) -> f64 {
        let r = f64::from(raw.min(100));
        match self {
            ScoreFormat::Point100 => r,
            ScoreFormat::Point10Decimal => r / 10.0,
            ScoreFormat::Point10 => (r / 10.0).round(),
            ScoreFormat::Point5 => (r / 20.0).round(),
            ScoreFormat::Point3 => match raw {
                0 => 0.0,
                1..=35 => 1.0,
                36..=60 => 2.0,
                _ => 3.0,
            },
        }
    }

    /// A score given in this format → 100-point raw (POINT_3: 1 → 35, 2 → 60, 3 → 85).
    pub fn score_to_raw(self, score: f64) -> u32 {
        let raw = match self {
            ScoreFormat::Point100 => score.round(),
            ScoreFormat::Point10Decimal => (score * 10.0).round(),
            ScoreFormat::Point10 => score.round() * 10.0,
            ScoreFormat::Point5 => score.round() * 20.0,
            ScoreFormat::Point3 => match score.round() as i64 {
                i64::MIN..=0 => 0.0,
                1 => 35.0,
                2 => 60.0,
                _ => 85.0,
            },
        };
        raw.clamp(0.0, 100.0) as u32
    }
}

/// `MediaType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MediaType {
    Anime,
    Manga,
}

impl MediaType {
    /// `ANIME` / `MANGA`.
    pub fn name(self) -> &'static str {
        match self {
            MediaType::Anime => "ANIME",
            MediaType::Manga => "MANGA",
        }
    }

    pub fn from_name(s: &str) -> Option<MediaType> {
        match s {
            "ANIME" => Some(MediaType::Anime),
            "MANGA" => Some(MediaType::Manga),
            _ => None,
        }
    }

    fn path(self) -> &'static str {
        match self {
            MediaType::Anime => "anime",
            MediaType::Manga => "manga",
        }
    }
}

/// `MediaListStatus`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ListStatus {
    Current,
    Planning,
    Completed,
    Dropped,
    Paused,
    Repeating,
}

impl ListStatus {
    pub const ALL: [ListStatus; 6] = [
        ListStatus::Current,
        ListStatus::Planning,
        ListStatus::Completed,
        ListStatus::Dropped,
        ListStatus::Paused,
        ListStatus::Repeating,
    ];

    /// `CURRENT`, `PLANNING`, …
    pub fn name(self) -> &'static str {
        match self {
            ListStatus::Current => "CURRENT",
            ListStatus::Planning => "PLANNING",
            ListStatus::Completed => "COMPLETED",
            ListStatus::Dropped => "DROPPED",
            ListStatus::Paused => "PAUSED",
            ListStatus::Repeating => "REPEATING",
        }
    }

    pub fn from_name(s: &str) -> Option<ListStatus> {
        ListStatus::ALL.into_iter().find(|st| st.name() == s)
    }

    /// The name of the status list in `MediaListCollection.lists`
    /// ("Watching"/"Reading", "Planning", "Completed", "Dropped", "Paused",
    /// "Rewatching"/"Rereading").
    pub fn list_name(self, kind: MediaType) -> &'static str {
        match (self, kind) {
            (ListStatus::Current, MediaType::Anime) => "Watching",
            (ListStatus::Current, MediaType::Manga) => "Reading",
            (ListStatus::Planning, _) => "Planning",
            (ListStatus::Completed, _) => "Completed",
            (ListStatus::Dropped, _) => "Dropped",
            (ListStatus::Paused, _) => "Paused",
            (ListStatus::Repeating, MediaType::Anime) => "Rewatching",
            (ListStatus::Repeating, MediaType::Manga) => "Rereading",
        }
    }
}

/// `FuzzyDate`: any part may be unknown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FuzzyDate {
    pub year: Option<i32>,
    pub month: Option<u32>,
    pub day: Option<u32>,
}

impl FuzzyDate {
    /// All parts unknown.
    pub const NONE: FuzzyDate = FuzzyDate {
        year: None,
        month: None,
        day: None,
    };

    pub fn ymd(year: i32, month: u32, day: u32) -> FuzzyDate {
        FuzzyDate {
            year: Some(year),
            month: Some(month),
            day: Some(day),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.year.is_none() && self.month.is_none() && self.day.is_none()
    }
}

/// Cover image URLs (`coverImage`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cover {
    pub extra_large: String,
    pub large: String,
    pub medium: String,
    pub color: Option<String>,
}

/// A title in the catalogue. Build with [`Media::anime`] / [`Media::manga`].
#[derive(Clone, Debug)]
pub struct Media {
    pub id: u64,
    pub id_mal: Option<u64>,
    pub kind: MediaType,
    /// `MediaFormat` (`TV`, `MOVIE`, `MANGA`, `NOVEL`, `ONE_SHOT`, …); `None` → `null`.
    pub format: Option<String>,
    /// `MediaStatus`: `FINISHED`, `RELEASING`, `NOT_YET_RELEASED`, `CANCELLED`, `HIATUS`.
    pub status: String,
    pub romaji: String,
    pub english: Option<String>,
    pub native: Option<String>,
    pub synonyms: Vec<String>,
    /// Served as is (AniList's contain `<br>`); `asHtml: true` also turns newlines into `<br>`.
    pub description: Option<String>,
    pub genres: Vec<String>,
    pub average_score: Option<u32>,
    pub mean_score: Option<u32>,
    pub popularity: u32,
    /// `None` = unknown (airing shows, ongoing manga): served as `null`.
    pub episodes: Option<u32>,
    pub duration: Option<u32>,
    pub chapters: Option<u32>,
    pub volumes: Option<u32>,
    pub start_date: FuzzyDate,
    pub end_date: FuzzyDate,
    /// `None` → URLs on the fake (`{base}/file/anilistcdn/media/{anime|manga}/cover/{size}/bx{id}.png`).
    pub cover: Option<Cover>,
    /// `nextAiringEpisode` as `(episode, airingAt unix seconds)`; `None` → `null`.
    pub next_airing: Option<(u32, i64)>,
    pub is_adult: bool,
    pub country: String,
}

impl Media {
    /// A finished TV anime.
    pub fn anime(id: u64, romaji: &str, episodes: Option<u32>) -> Media {
        Media {
            id,
            id_mal: None,
            kind: MediaType::Anime,
            format: Some("TV".to_string()),
            status: "FINISHED".to_string(),
            romaji: romaji.to_string(),
            english: None,
            native: None,
            synonyms: Vec::new(),
            description: None,
            genres: Vec::new(),
            average_score: None,
            mean_score: None,
            popularity: 0,
            episodes,
            duration: Some(24),
            chapters: None,
            volumes: None,
            start_date: FuzzyDate::NONE,
            end_date: FuzzyDate::NONE,
            cover: None,
            next_airing: None,
            is_adult: false,
            country: "JP".to_string(),
        }
    }

    /// A finished manga (format `MANGA`).
    pub fn manga(id: u64, romaji: &str, chapters: Option<u32>, volumes: Option<u32>) -> Media {
        Media {
            kind: MediaType::Manga,
            format: Some("MANGA".to_string()),
            episodes: None,
            duration: None,
            chapters,
            volumes,
            ..Media::anime(id, romaji, None)
        }
    }

    pub fn english(mut self, title: &str) -> Media {
        self.english = Some(title.to_string());
        self
    }

    pub fn native(mut self, title: &str) -> Media {
        self.native = Some(title.to_string());
        self
    }

    pub fn synonyms(mut self, names: &[&str]) -> Media {
        self.synonyms = names.iter().map(|s| s.to_string()).collect();
        self
    }

    /// `MediaFormat` (`TV`, `TV_SHORT`, `MOVIE`, `SPECIAL`, `OVA`, `ONA`, `MUSIC`,
    /// `MANGA`, `NOVEL`, `ONE_SHOT`).
    pub fn format(mut self, format: &str) -> Media {
        self.format = Some(format.to_string());
        self
    }

    /// `MediaStatus` (`FINISHED`, `RELEASING`, `NOT_YET_RELEASED`, `CANCELLED`, `HIATUS`).
    pub fn status(mut self, status: &str) -> Media {
        self.status = status.to_string();
        self
    }

    /// Releasing, next episode `episode` airs at `airing_at` (unix seconds).
    pub fn airing(mut self, episode: u32, airing_at: i64) -> Media {
        self.status = "RELEASING".to_string();
        self.next_airing = Some((episode, airing_at));
        self
    }

    pub fn description(mut self, text: &str) -> Media {
        self.description = Some(text.to_string());
        self
    }

    pub fn genres(mut self, names: &[&str]) -> Media {
        self.genres = names.iter().map(|s| s.to_string()).collect();
        self
    }

    pub fn average_score(mut self, score: u32) -> Media {
        self.average_score = Some(score);
        self
    }

    pub fn mean_score(mut self, score: u32) -> Media {
        self.mean_score = Some(score);
        self
    }

    pub fn popularity(mut self, n: u32) -> Media {
        self.popularity = n;
        self
    }

    pub fn start_date(mut self, date: FuzzyDate) -> Media {
        self.start_date = date;
        self
    }

    pub fn end_date(mut self, date: FuzzyDate) -> Media {
        self.end_date = date;
        self
    }

    /// The same URL for every cover size.
    pub fn cover(mut self, url: &str) -> Media {
        self.cover = Some(Cover {
            extra_large: url.to_string(),
            large: url.to_string(),
            medium: url.to_string(),
            color: None,
        });
        self
    }

    pub fn adult(mut self, yes: bool) -> Media {
        self.is_adult = yes;
        self
    }

    pub fn id_mal(mut self, id: u64) -> Media {
        self.id_mal = Some(id);
        self
    }

    fn titles(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.romaji.as_str())
            .chain(self.english.as_deref())
            .chain(self.native.as_deref())
            .chain(self.synonyms.iter().map(String::as_str))
    }
}

/// A list entry (`MediaList`): what [`FakeAnilist::add_entry`] takes and what
/// [`FakeAnilist::entries`] returns. `id`, `user_id`, `created_at` and
/// `updated_at` are filled by the fake when 0.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The entry id (`MediaList.id`), unrelated to the media id.
    pub id: u64,
    pub user_id: u64,
    pub media_id: u64,
    pub status: ListStatus,
    /// 100-point score; 0 = none.
    pub score_raw: u32,
    pub progress: u32,
    pub progress_volumes: u32,
    pub repeat: u32,
    pub priority: u32,
    pub private: bool,
    pub notes: Option<String>,
    pub hidden_from_status_lists: bool,
    /// Names of the custom lists the entry is in.
    pub custom_lists: Vec<String>,
    pub started_at: FuzzyDate,
    pub completed_at: FuzzyDate,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Entry {
    pub fn new(media_id: u64, status: ListStatus) -> Entry {
        Entry {
            id: 0,
            user_id: 0,
            media_id,
            status,
            score_raw: 0,
            progress: 0,
            progress_volumes: 0,
            repeat: 0,
            priority: 0,
            private: false,
            notes: None,
            hidden_from_status_lists: false,
            custom_lists: Vec::new(),
            started_at: FuzzyDate::NONE,
            completed_at: FuzzyDate::NONE,
            created_at: 0,
            updated_at: 0,
        }
    }

    pub fn progress(mut self, n: u32) -> Entry {
        self.progress = n;
        self
    }

    pub fn volumes(mut self, n: u32) -> Entry {
        self.progress_volumes = n;
        self
    }

    /// 100-point score.
    pub fn score_raw(mut self, raw: u32) -> Entry {
        self.score_raw = raw;
        self
    }

    pub fn repeat(mut self, n: u32) -> Entry {
        self.repeat = n;
        self
    }

    /// In these custom lists (registered on the user when missing).
    pub fn custom_lists(mut self, names: &[&str]) -> Entry {
        self.custom_lists = names.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Hidden from the status lists (only in its custom lists).
    pub fn hidden(mut self) -> Entry {
        self.hidden_from_status_lists = true;
        self
    }

    pub fn private(mut self) -> Entry {
        self.private = true;
        self
    }

    pub fn notes(mut self, text: &str) -> Entry {
        self.notes = Some(text.to_string());
        self
    }

    pub fn started(mut self, date: FuzzyDate) -> Entry {
        self.started_at = date;
        self
    }

    pub fn completed(mut self, date: FuzzyDate) -> Entry {
        self.completed_at = date;
        self
    }

    /// `updatedAt` (unix seconds) instead of "now".
    pub fn updated_at(mut self, ts: i64) -> Entry {
        self.updated_at = ts;
        self
    }
}

/// A user's options for one list type (`MediaListTypeOptions`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypeOptions {
    pub custom_lists: Vec<String>,
    /// Order of the lists in `MediaListCollection.lists` (status list names and
    /// custom list names); lists not named come after, custom lists last.
    pub section_order: Vec<String>,
    /// `splitCompletedSectionByFormat`: "Completed TV", "Completed Movie", …
    pub split_completed: bool,
}

/// An AniList account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: u64,
    pub name: String,
    pub score_format: ScoreFormat,
    /// `rowOrder`: `score` (default), `title`, `updatedAt` or `id`; the order of
    /// entries inside each list.
    pub row_order: String,
    pub anime: TypeOptions,
    pub manga: TypeOptions,
}

impl User {
    /// POINT_10_DECIMAL (AniList's default), row order `score`, no custom lists.
    pub fn new(id: u64, name: &str) -> User {
        let order = |kind: MediaType| {
            [
                ListStatus::Current,
                ListStatus::Repeating,
                ListStatus::Completed,
                ListStatus::Paused,
                ListStatus::Dropped,
                ListStatus::Planning,
            ]
            .iter()
            .map(|s| s.list_name(kind).to_string())
            .collect()
        };
        User {
            id,
            name: name.to_string(),
            score_format: ScoreFormat::Point10Decimal,
            row_order: "score".to_string(),
            anime: TypeOptions {
                custom_lists: Vec::new(),
                section_order: order(MediaType::Anime),
                split_completed: false,
            },
            manga: TypeOptions {
                custom_lists: Vec::new(),
                section_order: order(MediaType::Manga),
                split_completed: false,
            },
        }
    }

    pub fn score_format(mut self, format: ScoreFormat) -> User {
        self.score_format = format;
        self
    }

    pub fn row_order(mut self, order: &str) -> User {
        self.row_order = order.to_string();
        self
    }

    pub fn custom_lists(mut self, kind: MediaType, names: &[&str]) -> User {
        self.options_mut(kind).custom_lists = names.iter().map(|s| s.to_string()).collect();
        self
    }

    pub fn split_completed(mut self, kind: MediaType, yes: bool) -> User {
        self.options_mut(kind).split_completed = yes;
        self
    }

    fn options(&self, kind: MediaType) -> &TypeOptions {
        match kind {
            MediaType::Anime => &self.anime,
            MediaType::Manga => &self.manga,
        }
    }

    fn options_mut(&mut self, kind: MediaType) -> &mut TypeOptions {
        match kind {
            MediaType::Anime => &mut self.anime,
            MediaType::Manga => &mut self.manga,
        }
    }
}

/// An injected failure for the next request(s) (see [`FakeAnilist::fail_next`]).
#[derive(Clone, Debug)]
pub enum Fault {
    /// HTTP 500, [`SERVER_ERROR_BODY`].
    ServerError,
    /// HTTP 502, an HTML page ([`BAD_GATEWAY_HTML`]) without rate-limit headers.
    BadGateway,
    /// HTTP 200, `application/json`, a truncated body ([`MALFORMED_JSON_BODY`]).
    MalformedJson,
    /// HTTP 429 with `Retry-After: retry_after`, `X-RateLimit-Reset` and
    /// [`TOO_MANY_REQUESTS_BODY`] (without exhausting the real limit).
    TooManyRequests { retry_after: u64 },
    /// Waits this long, then answers normally (to trip a client's timeout).
    Delay(Duration),
    /// HTTP 200: the normal answer plus `"errors":[{"message","status"}]`.
    ErrorsWithData { message: String, status: u16 },
    /// Anything: status, content type, body, extra headers.
    Raw {
        status: u16,
        content_type: String,
        body: String,
        headers: Vec<(String, String)>,
    },
}

/// One `POST` to the GraphQL endpoint, in arrival order.
#[derive(Clone, Debug)]
pub struct GqlRequest {
    /// `query`, `mutation`, `subscription`, or `""` when the body did not parse.
    pub operation: String,
    /// The operation's name (`query Name(…)`), if any.
    pub operation_name: Option<String>,
    /// Root field names (not aliases) of the operation, in order.
    pub root_fields: Vec<String>,
    /// `variables` as sent (`null` when absent).
    pub variables: Value,
    /// `query` as sent.
    pub query: String,
    /// The `Authorization` header as sent.
    pub authorization: Option<String>,
    /// HTTP status answered.
    pub status: u16,
    /// Body answered.
    pub response: String,
}

impl GqlRequest {
    /// Did the request carry an `Authorization` header?
    pub fn has_auth(&self) -> bool {
        self.authorization.is_some()
    }

    pub fn is_mutation(&self) -> bool {
        self.operation == "mutation"
    }

    /// Variable `name` as sent.
    pub fn var(&self, name: &str) -> Option<&Value> {
        self.variables.get(name)
    }
}

/// Any HTTP request received (but covers), in arrival order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Req {
    pub method: String,
    pub path: String,
    /// Raw query string without `?` (`""` if none).
    pub query: String,
    pub authorization: Option<String>,
}

/// Decodes the payload of a JWT (no signature check):
/// `{"aud","jti","iat","nbf","exp","sub","scopes"}`.
pub fn jwt_payload(token: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

// ---------------------------------------------------------------------------
// JSON out: ordered objects, written like PHP's json_encode
// ---------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq)]
enum J {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<J>),
    Obj(Vec<(String, J)>),
}

impl J {
    fn s(s: impl Into<String>) -> J {
        J::Str(s.into())
    }

    fn opt_s(s: Option<&str>) -> J {
        s.map_or(J::Null, J::s)
    }

    fn opt_u(n: Option<u32>) -> J {
        n.map_or(J::Null, |n| J::Int(i64::from(n)))
    }

    fn u(n: u64) -> J {
        J::Int(n as i64)
    }

    fn obj(pairs: Vec<(&str, J)>) -> J {
        J::Obj(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }

    fn strs<'a>(items: impl IntoIterator<Item = &'a String>) -> J {
        J::List(items.into_iter().map(|s| J::s(s.as_str())).collect())
    }

    fn write(&self, out: &mut String) {
        match self {
            J::Null => out.push_str("null"),
            J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            J::Int(i) => {
                let _ = write!(out, "{i}");
            }
            J::Float(f) => {
                if !f.is_finite() {
                    out.push_str("null");
                } else if f.fract() == 0.0 && f.abs() < 1e15 {
                    let _ = write!(out, "{}", *f as i64);
                } else {
                    let _ = write!(out, "{f}");
                }
            }
            J::Str(s) => write_str(s, out),
            J::List(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            J::Obj(pairs) => {
                out.push('{');
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_str(k, out);
                    out.push(':');
                    v.write(out);
                }
                out.push('}');
            }
        }
    }

    fn text(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }
}

/// PHP `json_encode` string escaping: `\/`, `\uXXXX` for non-ASCII (lowercase hex).
fn write_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' => out.push_str("\\/"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7f => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

// ---------------------------------------------------------------------------
// GraphQL errors
// ---------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct GErr {
    message: String,
    status: u16,
    locations: Vec<(usize, usize)>,
    validation: Option<Vec<(String, Vec<String>)>>,
}

impl GErr {
    fn new(message: impl Into<String>, status: u16, loc: (usize, usize)) -> GErr {
        GErr {
            message: message.into(),
            status,
            locations: vec![loc],
            validation: None,
        }
    }

    fn j(&self) -> J {
        let mut pairs = vec![
            ("message".to_string(), J::s(self.message.as_str())),
            ("status".to_string(), J::Int(i64::from(self.status))),
        ];
        if !self.locations.is_empty() {
            let locs = self
                .locations
                .iter()
                .map(|(l, c)| J::obj(vec![("line", J::u(*l as u64)), ("column", J::u(*c as u64))]))
                .collect();
            pairs.push(("locations".to_string(), J::List(locs)));
        }
        if let Some(v) = &self.validation {
            let fields = v
                .iter()
                .map(|(k, msgs)| (k.clone(), J::strs(msgs)))
                .collect();
            pairs.push(("validation".to_string(), J::Obj(fields)));
        }
        J::Obj(pairs)
    }
}

/// `{"data":null,"errors":[…]}` (request and validation errors: the docs' shape).
fn data_null_body(errors: &[GErr]) -> String {
    J::obj(vec![
        ("data", J::Null),
        ("errors", J::List(errors.iter().map(GErr::j).collect())),
    ])
    .text()
}

/// `{"errors":[…],"data":{…}}` (execution errors: the recorded shape).
fn errors_data_body(errors: &[GErr], data: J) -> String {
    J::obj(vec![
        ("errors", J::List(errors.iter().map(GErr::j).collect())),
        ("data", data),
    ])
    .text()
}

// ---------------------------------------------------------------------------
// Types and the schema (transcribed from docs/reference/**)
// ---------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq)]
enum TRef {
    Named(String),
    List(Box<TRef>),
    NonNull(Box<TRef>),
}

impl TRef {
    fn parse(s: &str) -> TRef {
        if let Some(inner) = s.strip_suffix('!') {
            TRef::NonNull(Box::new(TRef::parse(inner)))
        } else if let Some(inner) = s.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            TRef::List(Box::new(TRef::parse(inner)))
        } else {
            TRef::Named(s.to_string())
        }
    }

    fn from_ast(t: &q::Type<'_, String>) -> TRef {
        match t {
            q::Type::NamedType(n) => TRef::Named(n.clone()),
            q::Type::ListType(inner) => TRef::List(Box::new(TRef::from_ast(inner))),
            q::Type::NonNullType(inner) => TRef::NonNull(Box::new(TRef::from_ast(inner))),
        }
    }

    fn named(&self) -> &str {
        match self {
            TRef::Named(n) => n,
            TRef::List(i) | TRef::NonNull(i) => i.named(),
        }
    }

    fn is_list(&self) -> bool {
        match self {
            TRef::List(_) => true,
            TRef::NonNull(i) => i.is_list(),
            TRef::Named(_) => false,
        }
    }
}

impl fmt::Display for TRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TRef::Named(n) => f.write_str(n),
            TRef::List(i) => write!(f, "[{i}]"),
            TRef::NonNull(i) => write!(f, "{i}!"),
        }
    }
}

#[derive(Clone, Copy)]
enum ArgSpec {
    /// Exactly these arguments (name, type) exist.
    Strict(&'static [(&'static str, &'static str)]),
    /// A field the fake does not model: its arguments are not checked.
    Any,
}

#[derive(Clone, Copy)]
struct FieldDef {
    name: &'static str,
    ty: &'static str,
    args: ArgSpec,
}

const fn f(name: &'static str, ty: &'static str) -> FieldDef {
    FieldDef {
        name,
        ty,
        args: ArgSpec::Strict(&[]),
    }
}

const fn fa(
    name: &'static str,
    ty: &'static str,
    args: &'static [(&'static str, &'static str)],
) -> FieldDef {
    FieldDef {
        name,
        ty,
        args: ArgSpec::Strict(args),
    }
}

const fn fx(name: &'static str, ty: &'static str) -> FieldDef {
    FieldDef {
        name,
        ty,
        args: ArgSpec::Any,
    }
}

const MEDIA_ARGS: &[(&str, &str)] = &[
    ("id", "Int"),
    ("idMal", "Int"),
    ("startDate", "FuzzyDateInt"),
    ("endDate", "FuzzyDateInt"),
    ("season", "MediaSeason"),
    ("seasonYear", "Int"),
    ("type", "MediaType"),
    ("format", "MediaFormat"),
    ("status", "MediaStatus"),
    ("episodes", "Int"),
    ("duration", "Int"),
    ("chapters", "Int"),
    ("volumes", "Int"),
    ("isAdult", "Boolean"),
    ("genre", "String"),
    ("tag", "String"),
    ("minimumTagRank", "Int"),
    ("tagCategory", "String"),
    ("onList", "Boolean"),
    ("licensedBy", "String"),
    ("licensedById", "Int"),
    ("averageScore", "Int"),
    ("popularity", "Int"),
    ("source", "MediaSource"),
    ("countryOfOrigin", "CountryCode"),
    ("isLicensed", "Boolean"),
    ("search", "String"),
    ("id_not", "Int"),
    ("id_in", "[Int]"),
    ("id_not_in", "[Int]"),
    ("idMal_not", "Int"),
    ("idMal_in", "[Int]"),
    ("idMal_not_in", "[Int]"),
    ("startDate_greater", "FuzzyDateInt"),
    ("startDate_lesser", "FuzzyDateInt"),
    ("startDate_like", "String"),
    ("endDate_greater", "FuzzyDateInt"),
    ("endDate_lesser", "FuzzyDateInt"),
    ("endDate_like", "String"),
    ("format_in", "[MediaFormat]"),
    ("format_not", "MediaFormat"),
    ("format_not_in", "[MediaFormat]"),
    ("status_in", "[MediaStatus]"),
    ("status_not", "MediaStatus"),
    ("status_not_in", "[MediaStatus]"),
    ("episodes_greater", "Int"),
    ("episodes_lesser", "Int"),
    ("duration_greater", "Int"),
    ("duration_lesser", "Int"),
    ("chapters_greater", "Int"),
    ("chapters_lesser", "Int"),
    ("volumes_greater", "Int"),
    ("volumes_lesser", "Int"),
    ("genre_in", "[String]"),
    ("genre_not_in", "[String]"),
    ("tag_in", "[String]"),
    ("tag_not_in", "[String]"),
    ("tagCategory_in", "[String]"),
    ("tagCategory_not_in", "[String]"),
    ("licensedBy_in", "[String]"),
    ("licensedById_in", "[Int]"),
    ("averageScore_not", "Int"),
    ("averageScore_greater", "Int"),
    ("averageScore_lesser", "Int"),
    ("popularity_not", "Int"),
    ("popularity_greater", "Int"),
    ("popularity_lesser", "Int"),
    ("source_in", "[MediaSource]"),
    ("sort", "[MediaSort]"),
];

const MEDIA_LIST_ARGS: &[(&str, &str)] = &[
    ("id", "Int"),
    ("userId", "Int"),
    ("userName", "String"),
    ("type", "MediaType"),
    ("status", "MediaListStatus"),
    ("mediaId", "Int"),
    ("isFollowing", "Boolean"),
    ("notes", "String"),
    ("startedAt", "FuzzyDateInt"),
    ("completedAt", "FuzzyDateInt"),
    ("compareWithAuthList", "Boolean"),
    ("userId_in", "[Int]"),
    ("status_in", "[MediaListStatus]"),
    ("status_not_in", "[MediaListStatus]"),
    ("status_not", "MediaListStatus"),
    ("mediaId_in", "[Int]"),
    ("mediaId_not_in", "[Int]"),
    ("notes_like", "String"),
    ("startedAt_greater", "FuzzyDateInt"),
    ("startedAt_lesser", "FuzzyDateInt"),
    ("startedAt_like", "String"),
    ("completedAt_greater", "FuzzyDateInt"),
    ("completedAt_lesser", "FuzzyDateInt"),
    ("completedAt_like", "String"),
    ("sort", "[MediaListSort]"),
];

const COLLECTION_ARGS: &[(&str, &str)] = &[
    ("userId", "Int"),
    ("userName", "String"),
    ("type", "MediaType"),
    ("status", "MediaListStatus"),
    ("notes", "String"),
    ("startedAt", "FuzzyDateInt"),
    ("completedAt", "FuzzyDateInt"),
    ("forceSingleCompletedList", "Boolean"),
    ("chunk", "Int"),
    ("perChunk", "Int"),
    ("status_in", "[MediaListStatus]"),
    ("status_not_in", "[MediaListStatus]"),
    ("status_not", "MediaListStatus"),
    ("notes_like", "String"),
    ("startedAt_greater", "FuzzyDateInt"),
    ("startedAt_lesser", "FuzzyDateInt"),
    ("startedAt_like", "String"),
    ("completedAt_greater", "FuzzyDateInt"),
    ("completedAt_lesser", "FuzzyDateInt"),
    ("completedAt_like", "String"),
    ("sort", "[MediaListSort]"),
];

const SAVE_ARGS: &[(&str, &str)] = &[
    ("id", "Int"),
    ("mediaId", "Int"),
    ("status", "MediaListStatus"),
    ("score", "Float"),
    ("scoreRaw", "Int"),
    ("progress", "Int"),
    ("progressVolumes", "Int"),
    ("repeat", "Int"),
    ("priority", "Int"),
    ("private", "Boolean"),
    ("notes", "String"),
    ("hiddenFromStatusLists", "Boolean"),
    ("customLists", "[String]"),
    ("advancedScores", "[Float]"),
    ("startedAt", "FuzzyDateInput"),
    ("completedAt", "FuzzyDateInput"),
];

const UPDATE_MANY_ARGS: &[(&str, &str)] = &[
    ("status", "MediaListStatus"),
    ("score", "Float"),
    ("scoreRaw", "Int"),
    ("progress", "Int"),
    ("progressVolumes", "Int"),
    ("repeat", "Int"),
    ("priority", "Int"),
    ("private", "Boolean"),
    ("notes", "String"),
    ("hiddenFromStatusLists", "Boolean"),
    ("advancedScores", "[Float]"),
    ("startedAt", "FuzzyDateInput"),
    ("completedAt", "FuzzyDateInput"),
    ("ids", "[Int]"),
];

const USER_ARGS: &[(&str, &str)] = &[
    ("id", "Int"),
    ("name", "String"),
    ("isModerator", "Boolean"),
    ("search", "String"),
    ("sort", "[UserSort]"),
];

static QUERY_FIELDS: &[FieldDef] = &[
    fa("Page", "Page", &[("page", "Int"), ("perPage", "Int")]),
    fa("Media", "Media", MEDIA_ARGS),
    fx("MediaTrend", "MediaTrend"),
    fx("AiringSchedule", "AiringSchedule"),
    fx("Character", "Character"),
    fx("Staff", "Staff"),
    fa("MediaList", "MediaList", MEDIA_LIST_ARGS),
    fa(
        "MediaListCollection",
        "MediaListCollection",
        COLLECTION_ARGS,
    ),
    f("GenreCollection", "[String]"),
    fx("MediaTagCollection", "[MediaTag]"),
    fa("User", "User", USER_ARGS),
    f("Viewer", "User"),
    fx("Notification", "NotificationUnion"),
    fx("Studio", "Studio"),
    fx("Review", "Review"),
    fx("Activity", "ActivityUnion"),
    fx("ActivityReply", "ActivityReply"),
    fx("Following", "User"),
    fx("Follower", "User"),
    fx("Thread", "Thread"),
    fx("ThreadComment", "[ThreadComment]"),
    fx("Recommendation", "Recommendation"),
    fx("Like", "User"),
    fx("Markdown", "ParsedMarkdown"),
    f("AniChartUser", "AniChartUser"),
    f("SiteStatistics", "SiteStatistics"),
    fx("ExternalLinkSourceCollection", "[MediaExternalLink]"),
];

static MUTATION_FIELDS: &[FieldDef] = &[
    fa("SaveMediaListEntry", "MediaList", SAVE_ARGS),
    fa("UpdateMediaListEntries", "[MediaList]", UPDATE_MANY_ARGS),
    fa("DeleteMediaListEntry", "Deleted", &[("id", "Int")]),
    fa(
        "DeleteCustomList",
        "Deleted",
        &[("customList", "String"), ("type", "MediaType")],
    ),
];

static MEDIA_FIELDS: &[FieldDef] = &[
    f("id", "Int!"),
    f("idMal", "Int"),
    f("title", "MediaTitle"),
    f("type", "MediaType"),
    f("format", "MediaFormat"),
    fa("status", "MediaStatus", &[("version", "Int")]),
    fa("description", "String", &[("asHtml", "Boolean")]),
    f("startDate", "FuzzyDate"),
    f("endDate", "FuzzyDate"),
    f("season", "MediaSeason"),
    f("seasonYear", "Int"),
    f("seasonInt", "Int"),
    f("episodes", "Int"),
    f("duration", "Int"),
    f("chapters", "Int"),
    f("volumes", "Int"),
    f("countryOfOrigin", "CountryCode"),
    f("isLicensed", "Boolean"),
    fa("source", "MediaSource", &[("version", "Int")]),
    f("hashtag", "String"),
    f("trailer", "MediaTrailer"),
    f("updatedAt", "Int"),
    f("coverImage", "MediaCoverImage"),
    f("bannerImage", "String"),
    f("genres", "[String]"),
    f("synonyms", "[String]"),
    f("averageScore", "Int"),
    f("meanScore", "Int"),
    f("popularity", "Int"),
    f("isLocked", "Boolean"),
    f("trending", "Int"),
    f("favourites", "Int"),
    f("tags", "[MediaTag]"),
    f("relations", "MediaConnection"),
    fx("characters", "CharacterConnection"),
    fx("staff", "StaffConnection"),
    fx("studios", "StudioConnection"),
    f("isFavourite", "Boolean!"),
    f("isFavouriteBlocked", "Boolean!"),
    f("isAdult", "Boolean"),
    f("nextAiringEpisode", "AiringSchedule"),
    fx("airingSchedule", "AiringScheduleConnection"),
    fx("trends", "MediaTrendConnection"),
    f("externalLinks", "[MediaExternalLink]"),
    f("streamingEpisodes", "[MediaStreamingEpisode]"),
    f("rankings", "[MediaRank]"),
    f("mediaListEntry", "MediaList"),
    fx("reviews", "ReviewConnection"),
    fx("recommendations", "RecommendationConnection"),
    f("stats", "MediaStats"),
    f("siteUrl", "String"),
    f("autoCreateForumThread", "Boolean"),
    f("isRecommendationBlocked", "Boolean"),
    f("isReviewBlocked", "Boolean"),
    f("modNotes", "String"),
];

static MEDIA_TITLE_FIELDS: &[FieldDef] = &[
    fa("romaji", "String", &[("stylised", "Boolean")]),
    fa("english", "String", &[("stylised", "Boolean")]),
    fa("native", "String", &[("stylised", "Boolean")]),
    f("userPreferred", "String"),
];

static COVER_FIELDS: &[FieldDef] = &[
    f("extraLarge", "String"),
    f("large", "String"),
    f("medium", "String"),
    f("color", "String"),
];

static FUZZY_DATE_FIELDS: &[FieldDef] = &[f("year", "Int"), f("month", "Int"), f("day", "Int")];

static AIRING_FIELDS: &[FieldDef] = &[
    f("id", "Int!"),
    f("airingAt", "Int!"),
    f("timeUntilAiring", "Int!"),
    f("episode", "Int!"),
    f("mediaId", "Int!"),
    f("media", "Media"),
];

static MEDIA_LIST_FIELDS: &[FieldDef] = &[
    f("id", "Int!"),
    f("userId", "Int!"),
    f("mediaId", "Int!"),
    f("status", "MediaListStatus"),
    fa("score", "Float", &[("format", "ScoreFormat")]),
    f("progress", "Int"),
    f("progressVolumes", "Int"),
    f("repeat", "Int"),
    f("priority", "Int"),
    f("private", "Boolean"),
    f("notes", "String"),
    f("hiddenFromStatusLists", "Boolean"),
    fa("customLists", "Json", &[("asArray", "Boolean")]),
    f("advancedScores", "Json"),
    f("startedAt", "FuzzyDate"),
    f("completedAt", "FuzzyDate"),
    f("updatedAt", "Int"),
    f("createdAt", "Int"),
    f("media", "Media"),
    f("user", "User"),
];

static COLLECTION_FIELDS: &[FieldDef] = &[
    f("lists", "[MediaListGroup]"),
    f("user", "User"),
    f("hasNextChunk", "Boolean"),
    fa("statusLists", "[[MediaList]]", &[("asArray", "Boolean")]),
    fa("customLists", "[[MediaList]]", &[("asArray", "Boolean")]),
];

static GROUP_FIELDS: &[FieldDef] = &[
    f("entries", "[MediaList]"),
    f("name", "String"),
    f("isCustomList", "Boolean"),
    f("isSplitCompletedList", "Boolean"),
    f("status", "MediaListStatus"),
];

static USER_FIELDS: &[FieldDef] = &[
    f("id", "Int!"),
    f("name", "String!"),
    fa("about", "String", &[("asHtml", "Boolean")]),
    f("avatar", "UserAvatar"),
    f("bannerImage", "String"),
    f("isFollowing", "Boolean"),
    f("isFollower", "Boolean"),
    f("isBlocked", "Boolean"),
    f("bans", "Json"),
    f("options", "UserOptions"),
    f("mediaListOptions", "MediaListOptions"),
    fa("favourites", "Favourites", &[("page", "Int")]),
    f("statistics", "UserStatisticTypes"),
    f("unreadNotificationCount", "Int"),
    f("siteUrl", "String"),
    f("donatorTier", "Int"),
    f("donatorBadge", "String"),
    f("moderatorRoles", "[ModRole]"),
    f("createdAt", "Int"),
    f("updatedAt", "Int"),
    f("stats", "UserStats"),
    f("moderatorStatus", "String"),
    f("previousNames", "[UserPreviousName]"),
];

static AVATAR_FIELDS: &[FieldDef] = &[f("large", "String"), f("medium", "String")];

static USER_OPTIONS_FIELDS: &[FieldDef] = &[
    f("titleLanguage", "UserTitleLanguage"),
    f("displayAdultContent", "Boolean"),
    f("airingNotifications", "Boolean"),
    f("profileColor", "String"),
    f("notificationOptions", "[NotificationOption]"),
    f("timezone", "String"),
    f("activityMergeTime", "Int"),
    f("staffNameLanguage", "UserStaffNameLanguage"),
    f("restrictMessagesToFollowing", "Boolean"),
    f("disabledListActivity", "[ListActivityOption]"),
];

static LIST_OPTIONS_FIELDS: &[FieldDef] = &[
    f("scoreFormat", "ScoreFormat"),
    f("rowOrder", "String"),
    f("useLegacyLists", "Boolean"),
    f("animeList", "MediaListTypeOptions"),
    f("mangaList", "MediaListTypeOptions"),
    f("sharedTheme", "Json"),
    f("sharedThemeEnabled", "Boolean"),
];

static TYPE_OPTIONS_FIELDS: &[FieldDef] = &[
    f("sectionOrder", "[String]"),
    f("splitCompletedSectionByFormat", "Boolean"),
    f("theme", "Json"),
    f("customLists", "[String]"),
    f("advancedScoring", "[String]"),
    f("advancedScoringEnabled", "Boolean"),
];

static PAGE_FIELDS: &[FieldDef] = &[
    f("pageInfo", "PageInfo"),
    fx("users", "[User]"),
    fa("media", "[Media]", MEDIA_ARGS),
    fx("characters", "[Character]"),
    fx("staff", "[Staff]"),
    fx("studios", "[Studio]"),
    fa("mediaList", "[MediaList]", MEDIA_LIST_ARGS),
    fx("airingSchedules", "[AiringSchedule]"),
    fx("mediaTrends", "[MediaTrend]"),
    fx("notifications", "[NotificationUnion]"),
    fx("followers", "[User]"),
    fx("following", "[User]"),
    fx("activities", "[ActivityUnion]"),
    fx("activityReplies", "[ActivityReply]"),
    fx("threads", "[Thread]"),
    fx("threadComments", "[ThreadComment]"),
    fx("reviews", "[Review]"),
    fx("recommendations", "[Recommendation]"),
    fx("likes", "[User]"),
];

static PAGE_INFO_FIELDS: &[FieldDef] = &[
    f("total", "Int"),
    f("perPage", "Int"),
    f("currentPage", "Int"),
    f("lastPage", "Int"),
    f("hasNextPage", "Boolean"),
];

static DELETED_FIELDS: &[FieldDef] = &[f("deleted", "Boolean")];

/// Object types whose fields the fake knows (others: any sub-selection, `null`).
const MODELED: &[&str] = &[
    "Query",
    "Mutation",
    "Media",
    "MediaTitle",
    "MediaCoverImage",
    "FuzzyDate",
    "AiringSchedule",
    "MediaList",
    "MediaListCollection",
    "MediaListGroup",
    "User",
    "UserAvatar",
    "UserOptions",
    "MediaListOptions",
    "MediaListTypeOptions",
    "Page",
    "PageInfo",
    "Deleted",
];

fn fields_of(ty: &str) -> Option<&'static [FieldDef]> {
    Some(match ty {
        "Query" => QUERY_FIELDS,
        "Mutation" => MUTATION_FIELDS,
        "Media" => MEDIA_FIELDS,
        "MediaTitle" => MEDIA_TITLE_FIELDS,
        "MediaCoverImage" => COVER_FIELDS,
        "FuzzyDate" => FUZZY_DATE_FIELDS,
        "AiringSchedule" => AIRING_FIELDS,
        "MediaList" => MEDIA_LIST_FIELDS,
        "MediaListCollection" => COLLECTION_FIELDS,
        "MediaListGroup" => GROUP_FIELDS,
        "User" => USER_FIELDS,
        "UserAvatar" => AVATAR_FIELDS,
        "UserOptions" => USER_OPTIONS_FIELDS,
        "MediaListOptions" => LIST_OPTIONS_FIELDS,
        "MediaListTypeOptions" => TYPE_OPTIONS_FIELDS,
        "Page" => PAGE_FIELDS,
        "PageInfo" => PAGE_INFO_FIELDS,
        "Deleted" => DELETED_FIELDS,
        _ => return None,
    })
}

fn modeled(ty: &str) -> Option<&'static str> {
    MODELED.iter().copied().find(|m| *m == ty)
}

fn field_def(ty: &str, name: &str) -> Option<&'static FieldDef> {
    fields_of(ty)?.iter().find(|d| d.name == name)
}

const SCALARS: &[&str] = &[
    "Int",
    "Float",
    "String",
    "Boolean",
    "ID",
    "Json",
    "CountryCode",
    "FuzzyDateInt",
];

/// Every enum of the schema (docs/reference/enum/).
const ENUMS: &[&str] = &[
    "ActivitySort",
    "ActivityType",
    "AiringSort",
    "CharacterRole",
    "CharacterSort",
    "ExternalLinkMediaType",
    "ExternalLinkType",
    "LikeableType",
    "MediaFormat",
    "MediaListSort",
    "MediaListStatus",
    "MediaRankType",
    "MediaRelation",
    "MediaSeason",
    "MediaSort",
    "MediaSource",
    "MediaStatus",
    "MediaTrendSort",
    "MediaType",
    "ModActionType",
    "ModRole",
    "NotificationType",
    "RecommendationRating",
    "RecommendationSort",
    "ReviewRating",
    "ReviewSort",
    "RevisionHistoryAction",
    "ScoreFormat",
    "SiteTrendSort",
    "StaffLanguage",
    "StaffSort",
    "StudioSort",
    "SubmissionSort",
    "SubmissionStatus",
    "ThreadCommentSort",
    "ThreadSort",
    "UserSort",
    "UserStaffNameLanguage",
    "UserStatisticsSort",
    "UserTitleLanguage",
];

/// Input object types of the schema (docs/reference/input/).
const INPUT_OBJECTS: &[&str] = &[
    "AiringScheduleInput",
    "AniChartHighlightInput",
    "CharacterNameInput",
    "FuzzyDateInput",
    "ListActivityOptionInput",
    "MediaExternalLinkInput",
    "MediaListOptionsInput",
    "MediaTitleInput",
    "NotificationOptionInput",
    "StaffNameInput",
];

fn enum_values(name: &str) -> Option<&'static [&'static str]> {
    Some(match name {
        "MediaType" => &["ANIME", "MANGA"],
        "MediaListStatus" => &[
            "CURRENT",
            "PLANNING",
            "COMPLETED",
            "DROPPED",
            "PAUSED",
            "REPEATING",
        ],
        "ScoreFormat" => &[
            "POINT_100",
            "POINT_10_DECIMAL",
            "POINT_10",
            "POINT_5",
            "POINT_3",
        ],
        "MediaFormat" => &[
            "TV", "TV_SHORT", "MOVIE", "SPECIAL", "OVA", "ONA", "MUSIC", "MANGA", "NOVEL",
            "ONE_SHOT",
        ],
        "MediaStatus" => &[
            "FINISHED",
            "RELEASING",
            "NOT_YET_RELEASED",
            "CANCELLED",
            "HIATUS",
        ],
        "MediaSeason" => &["WINTER", "SPRING", "SUMMER", "FALL"],
        "MediaSource" => &[
            "ORIGINAL",
            "MANGA",
            "LIGHT_NOVEL",
            "VISUAL_NOVEL",
            "VIDEO_GAME",
            "OTHER",
            "NOVEL",
            "DOUJINSHI",
            "ANIME",
            "WEB_NOVEL",
            "LIVE_ACTION",
            "GAME",
            "COMIC",
            "MULTIMEDIA_PROJECT",
            "PICTURE_BOOK",
        ],
        "MediaSort" => &[
            "ID",
            "ID_DESC",
            "TITLE_ROMAJI",
            "TITLE_ROMAJI_DESC",
            "TITLE_ENGLISH",
            "TITLE_ENGLISH_DESC",
            "TITLE_NATIVE",
            "TITLE_NATIVE_DESC",
            "TYPE",
            "TYPE_DESC",
            "FORMAT",
            "FORMAT_DESC",
            "START_DATE",
            "START_DATE_DESC",
            "END_DATE",
            "END_DATE_DESC",
            "SCORE",
            "SCORE_DESC",
            "POPULARITY",
            "POPULARITY_DESC",
            "TRENDING",
            "TRENDING_DESC",
            "EPISODES",
            "EPISODES_DESC",
            "DURATION",
            "DURATION_DESC",
            "STATUS",
            "STATUS_DESC",
            "CHAPTERS",
            "CHAPTERS_DESC",
            "VOLUMES",
            "VOLUMES_DESC",
            "UPDATED_AT",
            "UPDATED_AT_DESC",
            "SEARCH_MATCH",
            "FAVOURITES",
            "FAVOURITES_DESC",
        ],
        "MediaListSort" => &[
            "MEDIA_ID",
            "MEDIA_ID_DESC",
            "SCORE",
            "SCORE_DESC",
            "STATUS",
            "STATUS_DESC",
            "PROGRESS",
            "PROGRESS_DESC",
            "PROGRESS_VOLUMES",
            "PROGRESS_VOLUMES_DESC",
            "REPEAT",
            "REPEAT_DESC",
            "PRIORITY",
            "PRIORITY_DESC",
            "STARTED_ON",
            "STARTED_ON_DESC",
            "FINISHED_ON",
            "FINISHED_ON_DESC",
            "ADDED_TIME",
            "ADDED_TIME_DESC",
            "UPDATED_TIME",
            "UPDATED_TIME_DESC",
            "MEDIA_TITLE_ROMAJI",
            "MEDIA_TITLE_ROMAJI_DESC",
            "MEDIA_TITLE_ENGLISH",
            "MEDIA_TITLE_ENGLISH_DESC",
            "MEDIA_TITLE_NATIVE",
            "MEDIA_TITLE_NATIVE_DESC",
            "MEDIA_POPULARITY",
            "MEDIA_POPULARITY_DESC",
        ],
        _ => return None,
    })
}

fn input_fields(name: &str) -> Option<&'static [(&'static str, &'static str)]> {
    match name {
        "FuzzyDateInput" => Some(&[("year", "Int"), ("month", "Int"), ("day", "Int")]),
        _ => None,
    }
}

fn is_enum(name: &str) -> bool {
    ENUMS.contains(&name)
}

fn is_leaf(name: &str) -> bool {
    SCALARS.contains(&name) || is_enum(name)
}

fn is_input_type(name: &str) -> bool {
    is_leaf(name) || INPUT_OBJECTS.contains(&name)
}

/// Any type name the schema has (inputs and the outputs the fake knows of).
fn is_known_type(name: &str) -> bool {
    is_input_type(name)
        || modeled(name).is_some()
        || MODELED.iter().any(|ty| {
            fields_of(ty).is_some_and(|defs| defs.iter().any(|d| TRef::parse(d.ty).named() == name))
        })
}

// ---------------------------------------------------------------------------
// Source positions
// ---------------------------------------------------------------------------

/// graphql-parser counts a tab as 8 columns (and `\r` as none); GraphQL
/// servers count characters. Converts to the latter.
fn fix_pos(src: &str, p: Pos) -> (usize, usize) {
    let line = src.split('\n').nth(p.line.saturating_sub(1)).unwrap_or("");
    let (mut gp_col, mut chars) = (1usize, 0usize);
    for c in line.chars() {
        if gp_col >= p.column {
            break;
        }
        gp_col += match c {
            '\t' => 8,
            '\r' => 0,
            _ => 1,
        };
        chars += 1;
    }
    (p.line, chars + 1)
}

/// Position of argument `name` of the field that starts at `field`
/// (graphql-parser keeps no positions for arguments): scans the source.
/// Falls back to the field's position.
fn arg_pos(src: &str, field: (usize, usize), name: &str) -> (usize, usize) {
    let Some(line_text) = src.split('\n').nth(field.0.saturating_sub(1)) else {
        return field;
    };
    let line_start: usize = src
        .split('\n')
        .take(field.0.saturating_sub(1))
        .map(|l| l.len() + 1)
        .sum();
    let col_bytes: usize = line_text
        .chars()
        .take(field.1.saturating_sub(1))
        .map(char::len_utf8)
        .sum();
    let chars: Vec<char> = src[line_start + col_bytes..].chars().collect();
    let (mut line, mut col) = field;
    let (mut i, mut depth, mut in_args, mut after_dollar) = (0usize, 0i32, false, false);
    let advance = |c: char, line: &mut usize, col: &mut usize| {
        if c == '\n' {
            *line += 1;
            *col = 1;
        } else {
            *col += 1;
        }
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    advance(chars[i], &mut line, &mut col);
                    i += 1;
                }
                continue;
            }
            '"' => {
                let block = chars[i..].starts_with(&['"', '"', '"']);
                let skip = if block { 3 } else { 1 };
                for _ in 0..skip {
                    advance(chars[i], &mut line, &mut col);
                    i += 1;
                }
                while i < chars.len() {
                    if block && chars[i..].starts_with(&['"', '"', '"']) {
                        for _ in 0..3 {
                            advance(chars[i], &mut line, &mut col);
                            i += 1;
                        }
                        break;
                    }
                    if !block && chars[i] == '\\' && i + 1 < chars.len() {
                        advance(chars[i], &mut line, &mut col);
                        i += 1;
                    } else if !block && chars[i] == '"' {
                        advance(chars[i], &mut line, &mut col);
                        i += 1;
                        break;
                    }
                    advance(chars[i], &mut line, &mut col);
                    i += 1;
                }
                continue;
            }
            '(' => {
                depth += 1;
                in_args = true;
            }
            ')' => {
                depth -= 1;
                if in_args && depth == 0 {
                    return field;
                }
            }
            '{' if !in_args => return field,
            '[' | '{' => depth += 1,
            ']' | '}' => depth -= 1,
            '$' => after_dollar = true,
            c if c.is_ascii_alphabetic() || c == '_' => {
                let start = (line, col);
                let mut word = String::new();
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                    word.push(chars[i]);
                    advance(chars[i], &mut line, &mut col);
                    i += 1;
                }
                let was_var = std::mem::take(&mut after_dollar);
                if in_args && depth == 1 && !was_var && word == name {
                    let mut j = i;
                    while j < chars.len() && (chars[j].is_whitespace() || chars[j] == ',') {
                        j += 1;
                    }
                    if j < chars.len() && chars[j] == ':' {
                        return start;
                    }
                }
                continue;
            }
            _ => {}
        }
        advance(c, &mut line, &mut col);
        i += 1;
    }
    field
}

/// A graphql-parser error as a GraphQL server words it:
/// `Syntax Error: Expected Name, found <EOF>` at its position.
fn syntax_error(src: &str, err: &str) -> GErr {
    let text = err.trim_start_matches("query parse error: ");
    let mut lines = text.lines();
    let head = lines.next().unwrap_or("");
    let pos = head
        .strip_prefix("Parse error at ")
        .and_then(|p| p.split_once(':'))
        .and_then(|(l, c)| Some((l.trim().parse().ok()?, c.trim().parse().ok()?)))
        .map(|(line, column)| fix_pos(src, Pos { line, column }))
        .unwrap_or((1, 1));
    let (mut found, mut expected) = (None, None);
    for l in lines {
        if let Some(rest) = l.strip_prefix("Unexpected ") {
            found = Some(if rest == "end of input" {
                "<EOF>".to_string()
            } else {
                let t = rest.trim_matches('`');
                t.split('[').next().unwrap_or(t).to_string()
            });
        } else if let Some(rest) = l.strip_prefix("Expected ") {
            let first = rest.split(", ").next().unwrap_or(rest);
            expected = Some(first.split(" or ").next().unwrap_or(first).to_string());
        }
    }
    let message = match (expected, found) {
        (Some(e), Some(f)) => format!("Syntax Error: Expected {e}, found {f}"),
        (None, Some(f)) => format!("Syntax Error: Unexpected {f}"),
        (Some(e), None) => format!("Syntax Error: Expected {e}"),
        (None, None) => "Syntax Error".to_string(),
    };
    GErr::new(message, 400, pos)
}

/// A literal printed as GraphQL source.
fn print_value(v: &q::Value<'_, String>) -> String {
    match v {
        q::Value::Variable(n) => format!("${n}"),
        q::Value::Int(n) => n.as_i64().map_or_else(String::new, |i| i.to_string()),
        q::Value::Float(f) => f.to_string(),
        q::Value::String(s) => serde_json::to_string(s).unwrap_or_default(),
        q::Value::Boolean(b) => b.to_string(),
        q::Value::Null => "null".to_string(),
        q::Value::Enum(e) => e.clone(),
        q::Value::List(items) => format!(
            "[{}]",
            items.iter().map(print_value).collect::<Vec<_>>().join(", ")
        ),
        q::Value::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{k}: {}", print_value(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

// ---------------------------------------------------------------------------
// Validation (before execution; every error is a 400)
// ---------------------------------------------------------------------------

type Doc<'q> = q::Document<'q, String>;
type Frag<'q> = q::FragmentDefinition<'q, String>;
type SelSet<'q> = q::SelectionSet<'q, String>;
type Field<'q> = q::Field<'q, String>;

/// The parts of an operation the fake needs.
struct Op<'q> {
    kind: &'static str,
    name: Option<&'q str>,
    vars: &'q [q::VariableDefinition<'q, String>],
    set: &'q SelSet<'q>,
    position: Option<Pos>,
}

fn operations<'q>(doc: &'q Doc<'q>) -> Vec<Op<'q>> {
    doc.definitions
        .iter()
        .filter_map(|d| match d {
            q::Definition::Operation(op) => Some(match op {
                q::OperationDefinition::SelectionSet(set) => Op {
                    kind: "query",
                    name: None,
                    vars: &[],
                    set,
                    position: None,
                },
                q::OperationDefinition::Query(x) => Op {
                    kind: "query",
                    name: x.name.as_deref(),
                    vars: &x.variable_definitions,
                    set: &x.selection_set,
                    position: Some(x.position),
                },
                q::OperationDefinition::Mutation(x) => Op {
                    kind: "mutation",
                    name: x.name.as_deref(),
                    vars: &x.variable_definitions,
                    set: &x.selection_set,
                    position: Some(x.position),
                },
                q::OperationDefinition::Subscription(x) => Op {
                    kind: "subscription",
                    name: x.name.as_deref(),
                    vars: &x.variable_definitions,
                    set: &x.selection_set,
                    position: Some(x.position),
                },
            }),
            q::Definition::Fragment(_) => None,
        })
        .collect()
}

fn fragments<'q>(doc: &'q Doc<'q>) -> HashMap<&'q str, &'q Frag<'q>> {
    doc.definitions
        .iter()
        .filter_map(|d| match d {
            q::Definition::Fragment(fr) => Some((fr.name.as_str(), fr)),
            q::Definition::Operation(_) => None,
        })
        .collect()
}

struct Validator<'q> {
    src: &'q str,
    frags: HashMap<&'q str, &'q Frag<'q>>,
    errors: Vec<GErr>,
    /// (variable, expected type or None for unchecked positions, where)
    uses: Vec<(String, Option<TRef>, (usize, usize))>,
    visited: HashSet<&'q str>,
    used_frags: HashSet<&'q str>,
}

fn validate<'q>(src: &'q str, doc: &'q Doc<'q>) -> Vec<GErr> {
    let mut v = Validator {
        src,
        frags: fragments(doc),
        errors: Vec::new(),
        uses: Vec::new(),
        visited: HashSet::new(),
        used_frags: HashSet::new(),
    };
    let ops = operations(doc);
    if ops.len() > 1 {
        for op in ops.iter().filter(|op| op.name.is_none()) {
            let loc = op.position.map_or((1, 1), |p| fix_pos(src, p));
            v.errors.push(GErr::new(
                "This anonymous operation must be the only defined operation.",
                400,
                loc,
            ));
        }
    }
    for op in &ops {
        v.operation(op);
    }
    for (name, fr) in &v.frags {
        if !v.used_frags.contains(name) {
            v.errors.push(GErr::new(
                format!("Fragment \"{name}\" is never used."),
                400,
                fix_pos(src, fr.position),
            ));
        }
    }
    v.errors
}

impl<'q> Validator<'q> {
    fn err(&mut self, message: String, loc: (usize, usize)) {
        self.errors.push(GErr::new(message, 400, loc));
    }

    fn operation(&mut self, op: &Op<'q>) {
        let root = match op.kind {
            "query" => "Query",
            "mutation" => "Mutation",
            _ => {
                let loc = op.position.map_or((1, 1), |p| fix_pos(self.src, p));
                self.err("Schema is not configured for subscriptions.".into(), loc);
                return;
            }
        };
        let mut defs: Vec<(&str, TRef, bool, (usize, usize))> = Vec::new();
        for vd in op.vars {
            let t = TRef::from_ast(&vd.var_type);
            let loc = fix_pos(self.src, vd.position);
            let named = t.named().to_string();
            if !is_known_type(&named) {
                self.err(format!("Unknown type \"{named}\"."), loc);
            } else if !is_input_type(&named) {
                self.err(
                    format!(
                        "Variable \"${}\" cannot be non-input type \"{t}\".",
                        vd.name
                    ),
                    loc,
                );
            } else if let Some(default) = &vd.default_value
                && !self.literal_ok(default, &t, loc)
            {
                self.err(
                    format!(
                        "Variable \"${}\" of type \"{t}\" has invalid default value {}.",
                        vd.name,
                        print_value(default)
                    ),
                    loc,
                );
            }
            defs.push((vd.name.as_str(), t, vd.default_value.is_some(), loc));
        }
        self.uses.clear();
        self.visited.clear();
        self.walk(op.set, Some(root));
        let in_op = op
            .name
            .map(|n| format!(" by operation \"{n}\""))
            .unwrap_or_default();
        let op_loc = op.position.map(|p| fix_pos(self.src, p));
        for (name, expected, loc) in std::mem::take(&mut self.uses) {
            match defs.iter().find(|d| d.0 == name) {
                None => {
                    let mut e = GErr::new(
                        format!("Variable \"${name}\" is not defined{in_op}."),
                        400,
                        loc,
                    );
                    e.locations.extend(op_loc);
                    self.errors.push(e);
                }
                Some((_, vt, has_default, dloc)) => {
                    if let Some(exp) = expected
                        && !var_fits(vt, &exp, *has_default)
                    {
                        let mut e = GErr::new(
                            format!(
                                "Variable \"${name}\" of type \"{vt}\" used in position expecting type \"{exp}\"."
                            ),
                            400,
                            *dloc,
                        );
                        e.locations.push(loc);
                        self.errors.push(e);
                    }
                }
            }
        }
        let used: HashSet<String> = self.collect_used_names(op);
        for (name, _, _, dloc) in &defs {
            if !used.contains(*name) {
                let in_op = op
                    .name
                    .map(|n| format!(" in operation \"{n}\""))
                    .unwrap_or_default();
                self.err(format!("Variable \"${name}\" is never used{in_op}."), *dloc);
            }
        }
    }

    /// Names of the variables an operation uses anywhere (fragments included).
    fn collect_used_names(&self, op: &Op<'q>) -> HashSet<String> {
        fn value(v: &q::Value<'_, String>, out: &mut HashSet<String>) {
            match v {
                q::Value::Variable(n) => {
                    out.insert(n.clone());
                }
                q::Value::List(items) => items.iter().for_each(|i| value(i, out)),
                q::Value::Object(m) => m.values().for_each(|i| value(i, out)),
                _ => {}
            }
        }
        fn set<'q>(
            s: &'q SelSet<'q>,
            frags: &HashMap<&'q str, &'q Frag<'q>>,
            seen: &mut HashSet<&'q str>,
            out: &mut HashSet<String>,
        ) {
            let dirs = |ds: &[q::Directive<'_, String>], out: &mut HashSet<String>| {
                for d in ds {
                    d.arguments.iter().for_each(|(_, v)| value(v, out));
                }
            };
            for item in &s.items {
                match item {
                    q::Selection::Field(f) => {
                        f.arguments.iter().for_each(|(_, v)| value(v, out));
                        dirs(&f.directives, out);
                        set(&f.selection_set, frags, seen, out);
                    }
                    q::Selection::FragmentSpread(sp) => {
                        dirs(&sp.directives, out);
                        if let Some(fr) = frags.get(sp.fragment_name.as_str())
                            && seen.insert(sp.fragment_name.as_str())
                        {
                            set(&fr.selection_set, frags, seen, out);
                        }
                    }
                    q::Selection::InlineFragment(i) => {
                        dirs(&i.directives, out);
                        set(&i.selection_set, frags, seen, out);
                    }
                }
            }
        }
        let mut out = HashSet::new();
        set(op.set, &self.frags, &mut HashSet::new(), &mut out);
        out
    }

    fn directives(&mut self, ds: &'q [q::Directive<'q, String>]) {
        for d in ds {
            let loc = fix_pos(self.src, d.position);
            if d.name != "include" && d.name != "skip" {
                self.err(format!("Unknown directive \"{}\".", d.name), loc);
                continue;
            }
            for (name, v) in &d.arguments {
                if name == "if" {
                    self.check_value(v, &TRef::parse("Boolean!"), loc);
                } else {
                    self.err(
                        format!("Unknown argument \"{name}\" on directive \"@{}\".", d.name),
                        loc,
                    );
                }
            }
            if !d.arguments.iter().any(|(n, _)| n == "if") {
                self.err(
                    format!(
                        "Directive \"@{}\" argument \"if\" of type \"Boolean!\" is required but not provided.",
                        d.name
                    ),
                    loc,
                );
            }
        }
    }

    fn walk(&mut self, set: &'q SelSet<'q>, ty: Option<&'static str>) {
        for item in &set.items {
            match item {
                q::Selection::Field(fld) => self.field(fld, ty),
                q::Selection::FragmentSpread(sp) => {
                    self.directives(&sp.directives);
                    let name = sp.fragment_name.as_str();
                    match self.frags.get(name).copied() {
                        None => self.err(
                            format!("Unknown fragment \"{name}\"."),
                            fix_pos(self.src, sp.position),
                        ),
                        Some(fr) => {
                            self.used_frags.insert(name);
                            if self.visited.insert(name) {
                                let q::TypeCondition::On(tc) = &fr.type_condition;
                                self.walk(&fr.selection_set, modeled(tc));
                            }
                        }
                    }
                }
                q::Selection::InlineFragment(inl) => {
                    self.directives(&inl.directives);
                    let t = match &inl.type_condition {
                        Some(q::TypeCondition::On(tc)) => modeled(tc),
                        None => ty,
                    };
                    self.walk(&inl.selection_set, t);
                }
            }
        }
    }

    fn field(&mut self, fld: &'q Field<'q>, ty: Option<&'static str>) {
        self.directives(&fld.directives);
        let loc = fix_pos(self.src, fld.position);
        if fld.name == "__typename" {
            return;
        }
        let Some(ty) = ty else {
            for (_, v) in &fld.arguments {
                self.record_vars(v, loc);
            }
            self.walk(&fld.selection_set, None);
            return;
        };
        let Some(def) = field_def(ty, &fld.name) else {
            self.err(
                format!("Cannot query field \"{}\" on type \"{ty}\".", fld.name),
                loc,
            );
            return;
        };
        match def.args {
            ArgSpec::Any => {
                for (_, v) in &fld.arguments {
                    self.record_vars(v, loc);
                }
            }
            ArgSpec::Strict(list) => {
                let mut seen = HashSet::new();
                for (name, v) in &fld.arguments {
                    let aloc = arg_pos(self.src, loc, name);
                    if !seen.insert(name.as_str()) {
                        self.err(
                            format!("There can be only one argument named \"{name}\"."),
                            aloc,
                        );
                    }
                    match list.iter().find(|(n, _)| n == name) {
                        None => self.err(
                            format!(
                                "Unknown argument \"{name}\" on field \"{}\" of type \"{ty}\".",
                                fld.name
                            ),
                            aloc,
                        ),
                        Some((_, t)) => self.check_value(v, &TRef::parse(t), aloc),
                    }
                }
            }
        }
        let t = TRef::parse(def.ty);
        let named = t.named();
        if is_leaf(named) {
            if !fld.selection_set.items.is_empty() {
                self.err(
                    format!(
                        "Field \"{}\" must not have a selection since type \"{}\" has no subfields.",
                        fld.name, def.ty
                    ),
                    loc,
                );
            }
        } else if fld.selection_set.items.is_empty() {
            self.err(
                format!(
                    "Field \"{}\" of type \"{}\" must have a sub selection.",
                    fld.name, def.ty
                ),
                loc,
            );
        } else {
            self.walk(&fld.selection_set, modeled(named));
        }
    }

    fn record_vars(&mut self, v: &q::Value<'_, String>, loc: (usize, usize)) {
        match v {
            q::Value::Variable(n) => self.uses.push((n.clone(), None, loc)),
            q::Value::List(items) => items.iter().for_each(|i| self.record_vars(i, loc)),
            q::Value::Object(m) => m.values().for_each(|i| self.record_vars(i, loc)),
            _ => {}
        }
    }

    fn check_value(&mut self, v: &q::Value<'_, String>, t: &TRef, loc: (usize, usize)) {
        if !self.literal_ok(v, t, loc) {
            self.err(format!("Expected type {t}, found {}.", print_value(v)), loc);
        }
    }

    /// Does literal `v` fit type `t`? Records the variables it holds.
    fn literal_ok(&mut self, v: &q::Value<'_, String>, t: &TRef, loc: (usize, usize)) -> bool {
        if let q::Value::Variable(n) = v {
            self.uses.push((n.clone(), Some(t.clone()), loc));
            return true;
        }
        match t {
            TRef::NonNull(inner) => !matches!(v, q::Value::Null) && self.literal_ok(v, inner, loc),
            TRef::List(inner) => match v {
                q::Value::Null => true,
                q::Value::List(items) => {
                    let mut ok = true;
                    for item in items {
                        ok &= self.literal_ok(item, inner, loc);
                    }
                    ok
                }
                other => self.literal_ok(other, inner, loc),
            },
            TRef::Named(n) => {
                if matches!(v, q::Value::Null) {
                    return true;
                }
                match n.as_str() {
                    "Int" | "FuzzyDateInt" => matches!(v, q::Value::Int(x)
                        if x.as_i64().is_some_and(|i| i32::try_from(i).is_ok())),
                    "Float" => matches!(v, q::Value::Int(_) | q::Value::Float(_)),
                    "String" | "CountryCode" => matches!(v, q::Value::String(_)),
                    "ID" => matches!(v, q::Value::String(_) | q::Value::Int(_)),
                    "Boolean" => matches!(v, q::Value::Boolean(_)),
                    "Json" => true,
                    e if is_enum(e) => match v {
                        q::Value::Enum(val) => {
                            enum_values(e).is_none_or(|vals| vals.contains(&val.as_str()))
                        }
                        _ => false,
                    },
                    other => match (input_fields(other), v) {
                        (Some(fields), q::Value::Object(m)) => {
                            let mut ok = true;
                            for (k, x) in m {
                                ok &= match fields.iter().find(|(n, _)| n == k) {
                                    Some((_, ft)) => self.literal_ok(x, &TRef::parse(ft), loc),
                                    None => false,
                                };
                            }
                            ok
                        }
                        (None, q::Value::Object(_)) => true,
                        _ => false,
                    },
                }
            }
        }
    }
}

/// May a variable of type `var` be used where `loc` is expected?
fn var_fits(var: &TRef, loc: &TRef, has_default: bool) -> bool {
    match (var, loc) {
        (TRef::NonNull(v), TRef::NonNull(l)) => var_fits(v, l, false),
        (TRef::NonNull(v), l) => var_fits(v, l, false),
        (v, TRef::NonNull(l)) => has_default && var_fits(v, l, false),
        (TRef::List(v), TRef::List(l)) => var_fits(v, l, false),
        (TRef::Named(a), TRef::Named(b)) => a == b,
        _ => false,
    }
}

/// Coerces the JSON `variables` to the operation's declared types.
fn coerce_variables(
    src: &str,
    defs: &[q::VariableDefinition<'_, String>],
    given: &serde_json::Map<String, Value>,
) -> Result<serde_json::Map<String, Value>, Vec<GErr>> {
    let mut out = serde_json::Map::new();
    let mut errors = Vec::new();
    for vd in defs {
        let t = TRef::from_ast(&vd.var_type);
        let loc = fix_pos(src, vd.position);
        let name = &vd.name;
        match given.get(name) {
            None => match &vd.default_value {
                Some(d) => {
                    out.insert(name.clone(), literal_json(d, &serde_json::Map::new()));
                }
                None if matches!(t, TRef::NonNull(_)) => errors.push(GErr::new(
                    format!("Variable \"${name}\" of required type \"{t}\" was not provided."),
                    400,
                    loc,
                )),
                None => {}
            },
            Some(Value::Null) if matches!(t, TRef::NonNull(_)) => errors.push(GErr::new(
                format!("Variable \"${name}\" of non-null type \"{t}\" must not be null."),
                400,
                loc,
            )),
            Some(v) => match coerce(v, &t) {
                Some(c) => {
                    out.insert(name.clone(), c);
                }
                None => errors.push(GErr::new(
                    format!(
                        "Variable \"${name}\" got invalid value {}; Expected type {t}.",
                        serde_json::to_string(v).unwrap_or_default()
                    ),
                    400,
                    loc,
                )),
            },
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn coerce(v: &Value, t: &TRef) -> Option<Value> {
    match t {
        TRef::NonNull(inner) => {
            if v.is_null() {
                None
            } else {
                coerce(v, inner)
            }
        }
        TRef::List(inner) => match v {
            Value::Null => Some(Value::Null),
            Value::Array(items) => items
                .iter()
                .map(|i| coerce(i, inner))
                .collect::<Option<Vec<_>>>()
                .map(Value::Array),
            other => coerce(other, inner).map(|c| Value::Array(vec![c])),
        },
        TRef::Named(n) => {
            if v.is_null() {
                return Some(Value::Null);
            }
            match n.as_str() {
                "Int" | "FuzzyDateInt" => {
                    let i = v.as_i64().or_else(|| {
                        v.as_f64()
                            .filter(|f| f.fract() == 0.0 && f.abs() < 1e15)
                            .map(|f| f as i64)
                    })?;
                    i32::try_from(i).ok().map(|i| Value::from(i64::from(i)))
                }
                "Float" => v.is_number().then(|| v.clone()),
                "String" | "CountryCode" => v.is_string().then(|| v.clone()),
                "ID" => match v {
                    Value::String(_) => Some(v.clone()),
                    Value::Number(n) if n.is_i64() => Some(Value::String(n.to_string())),
                    _ => None,
                },
                "Boolean" => v.is_boolean().then(|| v.clone()),
                "Json" => Some(v.clone()),
                e if is_enum(e) => {
                    let s = v.as_str()?;
                    enum_values(e)
                        .is_none_or(|vals| vals.contains(&s))
                        .then(|| v.clone())
                }
                other => {
                    let obj = v.as_object()?;
                    match input_fields(other) {
                        None => Some(v.clone()),
                        Some(fields) => {
                            let mut out = serde_json::Map::new();
                            for (k, x) in obj {
                                let (_, ft) = fields.iter().find(|(n, _)| n == k)?;
                                out.insert(k.clone(), coerce(x, &TRef::parse(ft))?);
                            }
                            Some(Value::Object(out))
                        }
                    }
                }
            }
        }
    }
}

/// A literal (with variables resolved from `vars`; absent ones → null) as JSON.
fn literal_json(v: &q::Value<'_, String>, vars: &serde_json::Map<String, Value>) -> Value {
    match v {
        q::Value::Variable(n) => vars.get(n).cloned().unwrap_or(Value::Null),
        q::Value::Int(n) => n.as_i64().map_or(Value::Null, Value::from),
        q::Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        q::Value::String(s) => Value::String(s.clone()),
        q::Value::Boolean(b) => Value::Bool(*b),
        q::Value::Null => Value::Null,
        q::Value::Enum(e) => Value::String(e.clone()),
        q::Value::List(items) => {
            Value::Array(items.iter().map(|i| literal_json(i, vars)).collect())
        }
        q::Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, x)| !matches!(x, q::Value::Variable(n) if !vars.contains_key(n)))
                .map(|(k, x)| (k.clone(), literal_json(x, vars)))
                .collect(),
        ),
    }
}

// ---------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------

struct Tok {
    user_id: u64,
    exp: i64,
    revoked: bool,
}

struct Code {
    user_id: u64,
    redirect_uri: String,
    expires: i64,
    used: bool,
}

/// AniList's limiter: a fixed window, then a timeout answering 429.
struct Rate {
    per_minute: u32,
    degraded: bool,
    window: Duration,
    timeout: Duration,
    window_start: Option<Instant>,
    count: u32,
    blocked_until: Option<Instant>,
}

enum RateCheck {
    Ok {
        limit: u32,
        remaining: u32,
    },
    Blocked {
        limit: u32,
        retry_after: u64,
        reset: i64,
    },
}

impl Rate {
    fn new() -> Rate {
        Rate {
            per_minute: 90,
            degraded: false,
            window: Duration::from_secs(60),
            timeout: Duration::from_secs(60),
            window_start: None,
            count: 0,
            blocked_until: None,
        }
    }

    /// Counts one request.
    fn check(&mut self) -> RateCheck {
        let now = Instant::now();
        let limit = self.per_minute;
        if let Some(until) = self.blocked_until {
            if now < until {
                let secs = ceil_secs(until - now);
                return RateCheck::Blocked {
                    limit,
                    retry_after: secs,
                    reset: unix_now() + secs as i64,
                };
            }
            self.blocked_until = None;
            self.window_start = None;
        }
        if self.window_start.is_none_or(|s| now >= s + self.window) {
            self.window_start = Some(now);
            self.count = 0;
        }
        self.count += 1;
        let actual = if self.degraded { limit.min(30) } else { limit };
        if self.count > actual {
            self.blocked_until = Some(now + self.timeout);
            let secs = ceil_secs(self.timeout);
            return RateCheck::Blocked {
                limit,
                retry_after: secs,
                reset: unix_now() + secs as i64,
            };
        }
        RateCheck::Ok {
            limit,
            remaining: limit.saturating_sub(self.count),
        }
    }
}

fn ceil_secs(d: Duration) -> u64 {
    (d.as_millis().div_ceil(1000) as u64).max(1)
}

struct Failure {
    remaining: usize,
    fault: Fault,
}

struct World {
    base: String,
    users: BTreeMap<u64, User>,
    media: BTreeMap<u64, Media>,
    entries: BTreeMap<u64, Entry>,
    next_entry_id: u64,
    tokens: HashMap<String, Tok>,
    codes: HashMap<String, Code>,
    client_id: String,
    client_secret: String,
    redirect_uri: String,
    login_user: u64,
    deny: bool,
    float_claims: bool,
    last_pin_token: Option<String>,
    rate: Rate,
    faults: VecDeque<Failure>,
    oauth_faults: VecDeque<Failure>,
    latency: Duration,
    gql_log: Vec<GqlRequest>,
    requests: Vec<Req>,
    images: Vec<String>,
    last_update: i64,
    collection_cap: usize,
    accurate_page_info: bool,
}

impl World {
    fn new(base: String) -> World {
        let mut users = BTreeMap::new();
        users.insert(
            DEFAULT_USER_ID,
            User::new(DEFAULT_USER_ID, DEFAULT_USER_NAME),
        );
        World {
            base,
            users,
            media: BTreeMap::new(),
            entries: BTreeMap::new(),
            next_entry_id: 389_000_000 + rand::rng().random_range(0..1_000_000u64),
            tokens: HashMap::new(),
            codes: HashMap::new(),
            client_id: FakeAnilist::CLIENT_ID.to_string(),
            client_secret: FakeAnilist::CLIENT_SECRET.to_string(),
            redirect_uri: DEFAULT_REDIRECT_URI.to_string(),
            login_user: DEFAULT_USER_ID,
            deny: false,
            float_claims: false,
            last_pin_token: None,
            rate: Rate::new(),
            faults: VecDeque::new(),
            oauth_faults: VecDeque::new(),
            latency: Duration::ZERO,
            gql_log: Vec::new(),
            requests: Vec::new(),
            images: Vec::new(),
            last_update: 0,
            collection_cap: COLLECTION_CAP,
            accurate_page_info: false,
        }
    }

    /// A fresh `updatedAt`, strictly later than any handed out before.
    fn bump(&mut self) -> i64 {
        let t = unix_now().max(self.last_update + 1);
        self.last_update = t;
        t
    }

    fn fresh_entry_id(&mut self) -> u64 {
        self.next_entry_id += rand::rng().random_range(1..=97u64);
        self.next_entry_id
    }

    fn mint_token(&mut self, user_id: u64, exp: i64) -> String {
        let iat = unix_now();
        let token = make_jwt(&self.client_id, user_id, iat, exp, self.float_claims);
        self.tokens.insert(
            token.clone(),
            Tok {
                user_id,
                exp,
                revoked: false,
            },
        );
        token
    }

    /// The user a Bearer token stands for; `None` when unknown, revoked or expired.
    fn token_user(&self, token: &str) -> Option<u64> {
        let t = self.tokens.get(token)?;
        (!t.revoked && unix_now() < t.exp && self.users.contains_key(&t.user_id))
            .then_some(t.user_id)
    }

    fn entry_of(&self, user_id: u64, media_id: u64) -> Option<u64> {
        self.entries
            .values()
            .find(|e| e.user_id == user_id && e.media_id == media_id)
            .map(|e| e.id)
    }

    fn kind_of(&self, media_id: u64) -> MediaType {
        self.media
            .get(&media_id)
            .map_or(MediaType::Anime, |m| m.kind)
    }

    /// Adds `e` for `user_id` (fresh id, timestamps), registering its custom lists.
    fn insert_entry(&mut self, user_id: u64, mut e: Entry, now: i64) -> u64 {
        let kind = self.kind_of(e.media_id);
        if let Some(user) = self.users.get_mut(&user_id) {
            let opts = user.options_mut(kind);
            for name in &e.custom_lists {
                if !opts.custom_lists.contains(name) {
                    opts.custom_lists.push(name.clone());
                }
            }
        }
        if e.id == 0 {
            e.id = self.fresh_entry_id();
        }
        e.user_id = user_id;
        if e.updated_at == 0 {
            e.updated_at = now;
        }
        if e.created_at == 0 {
            e.created_at = e.updated_at;
        }
        let id = e.id;
        self.entries.insert(id, e);
        id
    }

    fn cover_url(&self, m: &Media, size: &str) -> String {
        format!(
            "{}/file/anilistcdn/media/{}/cover/{size}/bx{}.png",
            self.base,
            m.kind.path(),
            m.id
        )
    }
}

fn take_fault(queue: &mut VecDeque<Failure>) -> Option<Fault> {
    let front = queue.front_mut()?;
    front.remaining -= 1;
    let fault = front.fault.clone();
    if front.remaining == 0 {
        queue.pop_front();
    }
    Some(fault)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------
// Execution
// ---------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Group {
    name: String,
    status: Option<ListStatus>,
    custom: bool,
    split: bool,
    entries: Vec<u64>,
}

#[derive(Clone, Debug)]
enum Obj {
    Root,
    Media(u64),
    Title(u64),
    Cover(u64),
    Date(FuzzyDate),
    Airing(u64),
    Entry(u64),
    Collection {
        user_id: u64,
        groups: Vec<Group>,
        has_next: bool,
    },
    Group(Group),
    User(u64),
    Avatar(u64),
    UserOptions,
    ListOptions(u64),
    TypeOptions(u64, MediaType),
    Page {
        page: u64,
        per_page: u64,
        total: u64,
        loc: (usize, usize),
    },
    PageInfo {
        page: u64,
        per_page: u64,
        total: u64,
    },
    Deleted(bool),
}

/// A resolved field before its sub-selection is applied.
enum R {
    J(J),
    Obj(Obj, &'static str),
    List(Vec<R>),
    Null,
}

type Args = BTreeMap<String, Value>;

fn a_int(a: &Args, k: &str) -> Option<i64> {
    a.get(k).and_then(Value::as_i64)
}

fn a_f64(a: &Args, k: &str) -> Option<f64> {
    a.get(k).and_then(Value::as_f64)
}

fn a_str<'a>(a: &'a Args, k: &str) -> Option<&'a str> {
    a.get(k).and_then(Value::as_str)
}

fn a_bool(a: &Args, k: &str) -> Option<bool> {
    a.get(k).and_then(Value::as_bool)
}

fn a_ints(a: &Args, k: &str) -> Option<Vec<i64>> {
    match a.get(k)? {
        Value::Array(items) => Some(items.iter().filter_map(Value::as_i64).collect()),
        Value::Null => None,
        v => v.as_i64().map(|i| vec![i]),
    }
}

fn a_strs(a: &Args, k: &str) -> Option<Vec<String>> {
    match a.get(k)? {
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
        ),
        Value::Null => None,
        v => v.as_str().map(|s| vec![s.to_string()]),
    }
}

fn fuzzy_from(v: &Value) -> FuzzyDate {
    let part = |k: &str| v.get(k).and_then(Value::as_i64);
    FuzzyDate {
        year: part("year").map(|y| y as i32),
        month: part("month").map(|m| m as u32),
        day: part("day").map(|d| d as u32),
    }
}

fn format_label(format: Option<&str>) -> Option<&'static str> {
    Some(match format? {
        "TV" => "TV",
        "TV_SHORT" => "TV Short",
        "MOVIE" => "Movie",
        "SPECIAL" => "Special",
        "OVA" => "OVA",
        "ONA" => "ONA",
        "MUSIC" => "Music",
        "MANGA" => "Manga",
        "NOVEL" => "Light Novel",
        "ONE_SHOT" => "One Shot",
        _ => return None,
    })
}

/// `(season, seasonYear)` from a start date (WINTER = December–February).
fn season_of(d: &FuzzyDate) -> Option<(&'static str, i32)> {
    let (year, month) = (d.year?, d.month?);
    Some(match month {
        12 => ("WINTER", year + 1),
        1 | 2 => ("WINTER", year),
        3..=5 => ("SPRING", year),
        6..=8 => ("SUMMER", year),
        _ => ("FALL", year),
    })
}

struct Exec<'a, 'q> {
    w: &'a mut World,
    src: &'q str,
    vars: serde_json::Map<String, Value>,
    frags: HashMap<&'q str, &'q Frag<'q>>,
    viewer: Option<u64>,
    errors: Vec<GErr>,
}

impl<'a, 'q> Exec<'a, 'q> {
    fn included(&self, ds: &[q::Directive<'_, String>]) -> bool {
        ds.iter().all(|d| {
            let cond = d
                .arguments
                .iter()
                .find(|(n, _)| n == "if")
                .map(|(_, v)| literal_json(v, &self.vars))
                .and_then(|v| v.as_bool())
                .unwrap_or(false);
            match d.name.as_str() {
                "skip" => !cond,
                "include" => cond,
                _ => true,
            }
        })
    }

    fn collect(&self, sets: &[&'q SelSet<'q>], ty: &str) -> Vec<(String, Vec<&'q Field<'q>>)> {
        let mut out: Vec<(String, Vec<&'q Field<'q>>)> = Vec::new();
        let mut seen = HashSet::new();
        for s in sets {
            self.collect_into(s, ty, &mut out, &mut seen);
        }
        out
    }

    fn collect_into(
        &self,
        set: &'q SelSet<'q>,
        ty: &str,
        out: &mut Vec<(String, Vec<&'q Field<'q>>)>,
        seen: &mut HashSet<&'q str>,
    ) {
        let applies = |tc: &str| tc == ty || modeled(tc).is_none();
        for item in &set.items {
            match item {
                q::Selection::Field(fld) => {
                    if !self.included(&fld.directives) {
                        continue;
                    }
                    let key = fld.alias.clone().unwrap_or_else(|| fld.name.clone());
                    match out.iter_mut().find(|(k, _)| *k == key) {
                        Some(slot) => slot.1.push(fld),
                        None => out.push((key, vec![fld])),
                    }
                }
                q::Selection::FragmentSpread(sp) => {
                    if !self.included(&sp.directives) || !seen.insert(sp.fragment_name.as_str()) {
                        continue;
                    }
                    if let Some(fr) = self.frags.get(sp.fragment_name.as_str()).copied() {
                        let q::TypeCondition::On(tc) = &fr.type_condition;
                        if applies(tc) {
                            self.collect_into(&fr.selection_set, ty, out, seen);
                        }
                    }
                }
                q::Selection::InlineFragment(inl) => {
                    if !self.included(&inl.directives) {
                        continue;
                    }
                    match &inl.type_condition {
                        Some(q::TypeCondition::On(tc)) if !applies(tc) => {}
                        _ => self.collect_into(&inl.selection_set, ty, out, seen),
                    }
                }
            }
        }
    }

    fn args_of(&self, fld: &Field<'_>) -> Args {
        fld.arguments
            .iter()
            .filter(|(_, v)| !matches!(v, q::Value::Variable(n) if !self.vars.contains_key(n)))
            .map(|(k, v)| (k.clone(), literal_json(v, &self.vars)))
            .collect()
    }

    fn complete(&mut self, r: R, sets: &[&'q SelSet<'q>]) -> J {
        match r {
            R::J(j) => j,
            R::Null => J::Null,
            R::List(items) => J::List(items.into_iter().map(|i| self.complete(i, sets)).collect()),
            R::Obj(obj, ty) => self.complete_obj(obj, ty, sets),
        }
    }

    fn complete_obj(&mut self, obj: Obj, ty: &'static str, sets: &[&'q SelSet<'q>]) -> J {
        let fields = self.collect(sets, ty);
        let obj = match obj {
            Obj::Page {
                page,
                per_page,
                loc,
                ..
            } => {
                let data_fields = fields
                    .iter()
                    .filter(|(_, fs)| !matches!(fs[0].name.as_str(), "pageInfo" | "__typename"))
                    .count();
                if data_fields > 1 {
                    self.errors.push(GErr::new(
                        "Only one data field can be queried per Page (besides pageInfo).",
                        400,
                        loc,
                    ));
                    return J::Null;
                }
                let total = fields
                    .iter()
                    .find_map(|(_, fs)| match fs[0].name.as_str() {
                        "media" => Some(self.find_media(&self.args_of(fs[0])).len()),
                        "mediaList" => Some(self.find_entries(&self.args_of(fs[0])).len()),
                        _ => None,
                    })
                    .unwrap_or(0) as u64;
                Obj::Page {
                    page,
                    per_page,
                    total,
                    loc,
                }
            }
            other => other,
        };
        let mut out = Vec::with_capacity(fields.len());
        for (key, fs) in fields {
            let fld = fs[0];
            let value = if fld.name == "__typename" {
                J::s(ty)
            } else {
                let args = self.args_of(fld);
                let loc = fix_pos(self.src, fld.position);
                let r = self
                    .resolve(&obj, fld.name.as_str(), &args, loc)
                    .unwrap_or_else(|| fallback(ty, &fld.name));
                let subs: Vec<&'q SelSet<'q>> = fs.iter().map(|f| &f.selection_set).collect();
                self.complete(r, &subs)
            };
            out.push((key, value));
        }
        J::Obj(out)
    }

    fn unauthorized(&mut self, loc: (usize, usize)) -> R {
        self.errors.push(GErr::new("Unauthorized.", 401, loc));
        R::Null
    }

    fn not_found(&mut self, loc: (usize, usize)) -> R {
        self.errors.push(GErr::new("Not Found.", 404, loc));
        R::Null
    }

    fn validation(&mut self, fields: Vec<(String, Vec<String>)>, loc: (usize, usize)) -> R {
        let mut e = GErr::new("validation", 400, loc);
        e.validation = Some(fields);
        self.errors.push(e);
        R::Null
    }

    /// `None`: a field the fake does not model (see [`fallback`]).
    fn resolve(&mut self, obj: &Obj, name: &str, a: &Args, loc: (usize, usize)) -> Option<R> {
        match obj {
            Obj::Root => self.root_field(name, a, loc),
            Obj::Media(id) => self.media_field(*id, name, a),
            Obj::Title(id) => {
                let m = self.w.media.get(id)?;
                Some(R::J(match name {
                    "romaji" | "userPreferred" => J::s(m.romaji.as_str()),
                    "english" => J::opt_s(m.english.as_deref()),
                    "native" => J::opt_s(m.native.as_deref()),
                    _ => return None,
                }))
            }
            Obj::Cover(id) => {
                let m = self.w.media.get(id)?;
                let url = |size: &str, given: Option<&String>| {
                    J::s(given.cloned().unwrap_or_else(|| self.w.cover_url(m, size)))
                };
                let c = m.cover.as_ref();
                Some(R::J(match name {
                    "extraLarge" => url("extraLarge", c.map(|c| &c.extra_large)),
                    "large" => url("large", c.map(|c| &c.large)),
                    "medium" => url("medium", c.map(|c| &c.medium)),
                    "color" => J::opt_s(c.and_then(|c| c.color.as_deref())),
                    _ => return None,
                }))
            }
            Obj::Date(d) => Some(R::J(match name {
                "year" => d.year.map_or(J::Null, |y| J::Int(i64::from(y))),
                "month" => J::opt_u(d.month),
                "day" => J::opt_u(d.day),
                _ => return None,
            })),
            Obj::Airing(id) => {
                let m = self.w.media.get(id)?;
                let (episode, at) = m.next_airing?;
                Some(match name {
                    "id" => R::J(J::u(id * 1000 + u64::from(episode))),
                    "airingAt" => R::J(J::Int(at)),
                    "timeUntilAiring" => R::J(J::Int(at - unix_now())),
                    "episode" => R::J(J::Int(i64::from(episode))),
                    "mediaId" => R::J(J::u(*id)),
                    "media" => R::Obj(Obj::Media(*id), "Media"),
                    _ => return None,
                })
            }
            Obj::Entry(id) => self.entry_field(*id, name, a),
            Obj::Collection {
                user_id,
                groups,
                has_next,
            } => Some(match name {
                "lists" => R::List(
                    groups
                        .iter()
                        .map(|g| R::Obj(Obj::Group(g.clone()), "MediaListGroup"))
                        .collect(),
                ),
                "user" => R::Obj(Obj::User(*user_id), "User"),
                "hasNextChunk" => R::J(J::Bool(*has_next)),
                _ => return None,
            }),
            Obj::Group(g) => Some(match name {
                "entries" => R::List(
                    g.entries
                        .iter()
                        .map(|id| R::Obj(Obj::Entry(*id), "MediaList"))
                        .collect(),
                ),
                "name" => R::J(J::s(g.name.as_str())),
                "isCustomList" => R::J(J::Bool(g.custom)),
                "isSplitCompletedList" => R::J(J::Bool(g.split)),
                "status" => R::J(g.status.map_or(J::Null, |s| J::s(s.name()))),
                _ => return None,
            }),
            Obj::User(id) => self.user_field(*id, name),
            Obj::Avatar(id) => Some(R::J(match name {
                "large" | "medium" => J::s(format!(
                    "{}/file/anilistcdn/user/avatar/{name}/b{id}.png",
                    self.w.base
                )),
                _ => return None,
            })),
            Obj::UserOptions => Some(R::J(match name {
                "titleLanguage" => J::s("ROMAJI"),
                "displayAdultContent" => J::Bool(false),
                "airingNotifications" => J::Bool(true),
                "profileColor" => J::s("blue"),
                "activityMergeTime" => J::Int(720),
                "staffNameLanguage" => J::s("ROMAJI_WESTERN"),
                "restrictMessagesToFollowing" => J::Bool(false),
                _ => return None,
            })),
            Obj::ListOptions(id) => {
                let u = self.w.users.get(id)?;
                Some(match name {
                    "scoreFormat" => R::J(J::s(u.score_format.name())),
                    "rowOrder" => R::J(J::s(u.row_order.as_str())),
                    "useLegacyLists" | "sharedThemeEnabled" => R::J(J::Bool(false)),
                    "animeList" => R::Obj(
                        Obj::TypeOptions(*id, MediaType::Anime),
                        "MediaListTypeOptions",
                    ),
                    "mangaList" => R::Obj(
                        Obj::TypeOptions(*id, MediaType::Manga),
                        "MediaListTypeOptions",
                    ),
                    _ => return None,
                })
            }
            Obj::TypeOptions(id, kind) => {
                let o = self.w.users.get(id)?.options(*kind);
                Some(R::J(match name {
                    "sectionOrder" => J::strs(&o.section_order),
                    "splitCompletedSectionByFormat" => J::Bool(o.split_completed),
                    "customLists" => J::strs(&o.custom_lists),
                    "advancedScoringEnabled" => J::Bool(false),
                    _ => return None,
                }))
            }
            Obj::Page {
                page,
                per_page,
                total,
                ..
            } => {
                let (page, per_page, total) = (*page, *per_page, *total);
                let slice = |ids: Vec<u64>| -> Vec<u64> {
                    ids.into_iter()
                        .skip(((page - 1) * per_page) as usize)
                        .take(per_page as usize)
                        .collect()
                };
                Some(match name {
                    "pageInfo" => R::Obj(
                        Obj::PageInfo {
                            page,
                            per_page,
                            total,
                        },
                        "PageInfo",
                    ),
                    "media" => R::List(
                        slice(self.find_media(a))
                            .into_iter()
                            .map(|id| R::Obj(Obj::Media(id), "Media"))
                            .collect(),
                    ),
                    "mediaList" => R::List(
                        slice(self.find_entries(a))
                            .into_iter()
                            .map(|id| R::Obj(Obj::Entry(id), "MediaList"))
                            .collect(),
                    ),
                    _ => return None,
                })
            }
            Obj::PageInfo {
                page,
                per_page,
                total,
            } => {
                let has_next = page * per_page < *total;
                let (total, last) = if self.w.accurate_page_info {
                    (*total, total.div_ceil(*per_page).max(1))
                } else {
                    // docs: "total and lastPage are not currently accurate":
                    // what was shown so far, plus a page when there is more.
                    let shown = (*total).min(page * per_page);
                    let more = u64::from(has_next);
                    (shown + more * per_page, *page + more)
                };
                Some(R::J(match name {
                    "total" => J::u(total),
                    "perPage" => J::u(*per_page),
                    "currentPage" => J::u(*page),
                    "lastPage" => J::u(last),
                    "hasNextPage" => J::Bool(has_next),
                    _ => return None,
                }))
            }
            Obj::Deleted(d) => Some(R::J(match name {
                "deleted" => J::Bool(*d),
                _ => return None,
            })),
        }
    }

    fn root_field(&mut self, name: &str, a: &Args, loc: (usize, usize)) -> Option<R> {
        Some(match name {
            "Viewer" => match self.viewer {
                Some(v) => R::Obj(Obj::User(v), "User"),
                None => self.unauthorized(loc),
            },
            "User" => {
                let found = if let Some(id) = a_int(a, "id") {
                    self.w.users.get(&(id as u64)).map(|u| u.id)
                } else if let Some(n) = a_str(a, "name") {
                    self.w
                        .users
                        .values()
                        .find(|u| u.name.eq_ignore_ascii_case(n))
                        .map(|u| u.id)
                } else if let Some(s) = a_str(a, "search") {
                    let s = s.to_lowercase();
                    self.w
                        .users
                        .values()
                        .find(|u| u.name.to_lowercase().contains(&s))
                        .map(|u| u.id)
                } else {
                    None
                };
                match found {
                    Some(id) => R::Obj(Obj::User(id), "User"),
                    None => self.not_found(loc),
                }
            }
            "Media" => match self.find_media(a).first() {
                Some(id) => R::Obj(Obj::Media(*id), "Media"),
                None => self.not_found(loc),
            },
            "MediaList" => match self.find_entries(a).first() {
                Some(id) => R::Obj(Obj::Entry(*id), "MediaList"),
                None => self.not_found(loc),
            },
            "MediaListCollection" => self.collection(a, loc),
            "Page" => R::Obj(
                Obj::Page {
                    page: a_int(a, "page").unwrap_or(1).max(1) as u64,
                    per_page: a_int(a, "perPage").unwrap_or(50).clamp(1, 50) as u64,
                    total: 0,
                    loc,
                },
                "Page",
            ),
            "SaveMediaListEntry"
            | "UpdateMediaListEntries"
            | "DeleteMediaListEntry"
            | "DeleteCustomList" => {
                let Some(viewer) = self.viewer else {
                    return Some(self.unauthorized(loc));
                };
                match name {
                    "SaveMediaListEntry" => self.save(viewer, a, loc),
                    "UpdateMediaListEntries" => self.update_many(viewer, a, loc),
                    "DeleteMediaListEntry" => self.delete(viewer, a, loc),
                    _ => self.delete_custom_list(viewer, a),
                }
            }
            _ => return None,
        })
    }

    fn media_field(&self, id: u64, name: &str, a: &Args) -> Option<R> {
        let m = self.w.media.get(&id)?;
        let anime = m.kind == MediaType::Anime;
        let season = if anime {
            season_of(&m.start_date)
        } else {
            None
        };
        Some(match name {
            "id" => R::J(J::u(m.id)),
            "idMal" => R::J(m.id_mal.map_or(J::Null, J::u)),
            "title" => R::Obj(Obj::Title(id), "MediaTitle"),
            "type" => R::J(J::s(m.kind.name())),
            "format" => R::J(J::opt_s(m.format.as_deref())),
            "status" => R::J(J::s(m.status.as_str())),
            "description" => {
                let html = a_bool(a, "asHtml") == Some(true);
                R::J(m.description.as_ref().map_or(J::Null, |d| {
                    J::s(if html {
                        d.replace('\n', "<br>\n")
                    } else {
                        d.clone()
                    })
                }))
            }
            "startDate" => R::Obj(Obj::Date(m.start_date), "FuzzyDate"),
            "endDate" => R::Obj(Obj::Date(m.end_date), "FuzzyDate"),
            "season" => R::J(season.map_or(J::Null, |(s, _)| J::s(s))),
            "seasonYear" => R::J(season.map_or(J::Null, |(_, y)| J::Int(i64::from(y)))),
            "episodes" => R::J(J::opt_u(m.episodes)),
            "duration" => R::J(J::opt_u(m.duration)),
            "chapters" => R::J(J::opt_u(m.chapters)),
            "volumes" => R::J(J::opt_u(m.volumes)),
            "countryOfOrigin" => R::J(J::s(m.country.as_str())),
            "isLicensed" => R::J(J::Bool(true)),
            "updatedAt" => R::J(J::Int(1_700_000_000)),
            "coverImage" => R::Obj(Obj::Cover(id), "MediaCoverImage"),
            "genres" => R::J(J::strs(&m.genres)),
            "synonyms" => R::J(J::strs(&m.synonyms)),
            "averageScore" => R::J(J::opt_u(m.average_score)),
            "meanScore" => R::J(J::opt_u(m.mean_score)),
            "popularity" => R::J(J::Int(i64::from(m.popularity))),
            "trending" | "favourites" => R::J(J::Int(0)),
            "isLocked" | "isFavourite" | "isFavouriteBlocked" => R::J(J::Bool(false)),
            "isAdult" => R::J(J::Bool(m.is_adult)),
            "nextAiringEpisode" => match m.next_airing {
                Some(_) => R::Obj(Obj::Airing(id), "AiringSchedule"),
                None => R::Null,
            },
            "mediaListEntry" => match self.viewer.and_then(|v| self.w.entry_of(v, id)) {
                Some(e) => R::Obj(Obj::Entry(e), "MediaList"),
                None => R::Null,
            },
            "siteUrl" => R::J(J::s(format!("https://anilist.co/{}/{id}", m.kind.path()))),
            _ => return None,
        })
    }

    fn entry_field(&self, id: u64, name: &str, a: &Args) -> Option<R> {
        let e = self.w.entries.get(&id)?;
        let kind = self.w.kind_of(e.media_id);
        let owner = self.w.users.get(&e.user_id);
        Some(R::J(match name {
            "id" => J::u(e.id),
            "userId" => J::u(e.user_id),
            "mediaId" => J::u(e.media_id),
            "status" => J::s(e.status.name()),
            "score" => {
                let format = a_str(a, "format")
                    .and_then(ScoreFormat::from_name)
                    .or_else(|| {
                        self.viewer
                            .and_then(|v| self.w.users.get(&v))
                            .map(|u| u.score_format)
                    })
                    .or_else(|| owner.map(|u| u.score_format))
                    .unwrap_or(ScoreFormat::Point100);
                J::Float(format.raw_to_score(e.score_raw))
            }
            "progress" => J::Int(i64::from(e.progress)),
            "progressVolumes" => J::Int(i64::from(e.progress_volumes)),
            "repeat" => J::Int(i64::from(e.repeat)),
            "priority" => J::Int(i64::from(e.priority)),
            "private" => J::Bool(e.private),
            "notes" => J::opt_s(e.notes.as_deref()),
            "hiddenFromStatusLists" => J::Bool(e.hidden_from_status_lists),
            "customLists" => {
                let names = owner
                    .map(|u| u.options(kind).custom_lists.clone())
                    .unwrap_or_default();
                if names.is_empty() {
                    J::Null
                } else if a_bool(a, "asArray") == Some(true) {
                    J::List(
                        names
                            .iter()
                            .map(|n| {
                                J::obj(vec![
                                    ("name", J::s(n.as_str())),
                                    ("enabled", J::Bool(e.custom_lists.contains(n))),
                                ])
                            })
                            .collect(),
                    )
                } else {
                    J::Obj(
                        names
                            .iter()
                            .map(|n| (n.clone(), J::Bool(e.custom_lists.contains(n))))
                            .collect(),
                    )
                }
            }
            "startedAt" => return Some(R::Obj(Obj::Date(e.started_at), "FuzzyDate")),
            "completedAt" => return Some(R::Obj(Obj::Date(e.completed_at), "FuzzyDate")),
            "updatedAt" => J::Int(e.updated_at),
            "createdAt" => J::Int(e.created_at),
            "media" => return Some(R::Obj(Obj::Media(e.media_id), "Media")),
            "user" => return Some(R::Obj(Obj::User(e.user_id), "User")),
            _ => return None,
        }))
    }

    fn user_field(&self, id: u64, name: &str) -> Option<R> {
        let u = self.w.users.get(&id)?;
        Some(match name {
            "id" => R::J(J::u(u.id)),
            "name" => R::J(J::s(u.name.as_str())),
            "avatar" => R::Obj(Obj::Avatar(id), "UserAvatar"),
            "isFollowing" | "isFollower" | "isBlocked" => R::J(J::Bool(false)),
            "options" => R::Obj(Obj::UserOptions, "UserOptions"),
            "mediaListOptions" => R::Obj(Obj::ListOptions(id), "MediaListOptions"),
            "unreadNotificationCount" | "donatorTier" => R::J(J::Int(0)),
            "siteUrl" => R::J(J::s(format!("https://anilist.co/user/{}", u.name))),
            "createdAt" => R::J(J::Int(1_600_000_000)),
            "updatedAt" => R::J(J::Int(1_700_000_000)),
            _ => return None,
        })
    }

    /// Media matching `Media`/`Page.media` arguments, in answer order.
    fn find_media(&self, a: &Args) -> Vec<u64> {
        let search = a_str(a, "search").map(str::to_lowercase);
        let viewer_has = |id: u64| {
            self.viewer
                .is_some_and(|v| self.w.entry_of(v, id).is_some())
        };
        let status_in = a_strs(a, "status_in");
        let status_not_in = a_strs(a, "status_not_in");
        let format_in = a_strs(a, "format_in");
        let format_not_in = a_strs(a, "format_not_in");
        let mut hits: Vec<&Media> = self
            .w
            .media
            .values()
            .filter(|m| {
                let id = m.id as i64;
                let fmt = m.format.as_deref();
                a_int(a, "id").is_none_or(|x| x == id)
                    && a_int(a, "id_not").is_none_or(|x| x != id)
                    && a_ints(a, "id_in").is_none_or(|xs| xs.contains(&id))
                    && a_ints(a, "id_not_in").is_none_or(|xs| !xs.contains(&id))
                    && a_int(a, "idMal").is_none_or(|x| m.id_mal.map(|v| v as i64) == Some(x))
                    && a_ints(a, "idMal_in")
                        .is_none_or(|xs| m.id_mal.is_some_and(|v| xs.contains(&(v as i64))))
                    && a_str(a, "type").is_none_or(|t| m.kind.name() == t)
                    && a_str(a, "format").is_none_or(|x| fmt == Some(x))
                    && a_str(a, "format_not").is_none_or(|x| fmt != Some(x))
                    && format_in
                        .as_ref()
                        .is_none_or(|xs| fmt.is_some_and(|f| xs.iter().any(|x| x == f)))
                    && format_not_in
                        .as_ref()
                        .is_none_or(|xs| !fmt.is_some_and(|f| xs.iter().any(|x| x == f)))
                    && a_str(a, "status").is_none_or(|x| m.status == x)
                    && a_str(a, "status_not").is_none_or(|x| m.status != x)
                    && status_in.as_ref().is_none_or(|xs| xs.contains(&m.status))
                    && status_not_in
                        .as_ref()
                        .is_none_or(|xs| !xs.contains(&m.status))
                    && a_bool(a, "isAdult").is_none_or(|b| m.is_adult == b)
                    && a_str(a, "genre")
                        .is_none_or(|g| m.genres.iter().any(|x| x.eq_ignore_ascii_case(g)))
                    && a_bool(a, "onList").is_none_or(|b| viewer_has(m.id) == b)
                    && search.as_deref().is_none_or(|s| title_matches(m, s))
            })
            .collect();
        let sort = a_strs(a, "sort").and_then(|s| s.into_iter().next());
        let rank = |m: &Media| -> u8 {
            let Some(s) = search.as_deref() else { return 0 };
            if m.titles().any(|t| t.to_lowercase() == s) {
                0
            } else if m.titles().any(|t| t.to_lowercase().starts_with(s)) {
                1
            } else {
                2
            }
        };
        match sort.as_deref() {
            Some("ID_DESC") => hits.sort_by_key(|m| std::cmp::Reverse(m.id)),
            Some("TITLE_ROMAJI") => hits.sort_by_key(|m| (m.romaji.to_lowercase(), m.id)),
            Some("TITLE_ROMAJI_DESC") => {
                hits.sort_by_key(|m| std::cmp::Reverse(m.romaji.to_lowercase()))
            }
            Some("POPULARITY") => hits.sort_by_key(|m| (m.popularity, m.id)),
            Some("POPULARITY_DESC") | Some("TRENDING_DESC") => {
                hits.sort_by(|x, y| y.popularity.cmp(&x.popularity).then(x.id.cmp(&y.id)))
            }
            Some("SCORE") => hits.sort_by_key(|m| (m.average_score, m.id)),
            Some("SCORE_DESC") => {
                hits.sort_by(|x, y| y.average_score.cmp(&x.average_score).then(x.id.cmp(&y.id)))
            }
            Some("START_DATE") => hits.sort_by_key(|m| (m.start_date, m.id)),
            Some("START_DATE_DESC") => {
                hits.sort_by(|x, y| y.start_date.cmp(&x.start_date).then(x.id.cmp(&y.id)))
            }
            Some("ID") => hits.sort_by_key(|m| m.id),
            _ if search.is_some() => hits.sort_by(|x, y| {
                rank(x)
                    .cmp(&rank(y))
                    .then(y.popularity.cmp(&x.popularity))
                    .then(x.id.cmp(&y.id))
            }),
            _ => hits.sort_by_key(|m| m.id),
        }
        hits.into_iter().map(|m| m.id).collect()
    }

    /// Entries matching `MediaList`/`Page.mediaList` arguments (private ones
    /// only for their owner), in answer order.
    fn find_entries(&self, a: &Args) -> Vec<u64> {
        let by_name = a_str(a, "userName").map(|n| {
            self.w
                .users
                .values()
                .find(|u| u.name.eq_ignore_ascii_case(n))
                .map_or(0, |u| u.id)
        });
        let status_in = a_strs(a, "status_in");
        let status_not_in = a_strs(a, "status_not_in");
        let mut hits: Vec<&Entry> = self
            .w
            .entries
            .values()
            .filter(|e| {
                let status = e.status.name().to_string();
                let notes = e.notes.as_deref().unwrap_or("").to_lowercase();
                (!e.private || self.viewer == Some(e.user_id))
                    && a_int(a, "id").is_none_or(|x| e.id as i64 == x)
                    && a_int(a, "userId").is_none_or(|x| e.user_id as i64 == x)
                    && by_name.is_none_or(|x| e.user_id == x)
                    && a_ints(a, "userId_in").is_none_or(|xs| xs.contains(&(e.user_id as i64)))
                    && a_str(a, "type").is_none_or(|t| self.w.kind_of(e.media_id).name() == t)
                    && a_str(a, "status").is_none_or(|x| status == x)
                    && a_str(a, "status_not").is_none_or(|x| status != x)
                    && status_in.as_ref().is_none_or(|xs| xs.contains(&status))
                    && status_not_in
                        .as_ref()
                        .is_none_or(|xs| !xs.contains(&status))
                    && a_int(a, "mediaId").is_none_or(|x| e.media_id as i64 == x)
                    && a_ints(a, "mediaId_in").is_none_or(|xs| xs.contains(&(e.media_id as i64)))
                    && a_ints(a, "mediaId_not_in")
                        .is_none_or(|xs| !xs.contains(&(e.media_id as i64)))
                    && a_str(a, "notes").is_none_or(|x| notes.contains(&x.to_lowercase()))
                    && a_str(a, "notes_like").is_none_or(|x| notes.contains(&x.to_lowercase()))
            })
            .collect();
        let sort = a_strs(a, "sort").and_then(|s| s.into_iter().next());
        self.sort_entries(&mut hits, sort.as_deref(), "id");
        hits.into_iter().map(|e| e.id).collect()
    }

    /// Orders entries by a `MediaListSort` value, else by a user's `rowOrder`.
    fn sort_entries(&self, es: &mut [&Entry], sort: Option<&str>, row_order: &str) {
        let title = |e: &Entry| {
            self.w
                .media
                .get(&e.media_id)
                .map(|m| m.romaji.to_lowercase())
                .unwrap_or_default()
        };
        match sort {
            Some("MEDIA_ID") => es.sort_by_key(|e| (e.media_id, e.id)),
            Some("MEDIA_ID_DESC") => es.sort_by_key(|e| std::cmp::Reverse(e.media_id)),
            Some("SCORE") => es.sort_by_key(|e| (e.score_raw, e.id)),
            Some("SCORE_DESC") => {
                es.sort_by(|x, y| y.score_raw.cmp(&x.score_raw).then(x.id.cmp(&y.id)))
            }
            Some("PROGRESS") => es.sort_by_key(|e| (e.progress, e.id)),
            Some("PROGRESS_DESC") => {
                es.sort_by(|x, y| y.progress.cmp(&x.progress).then(x.id.cmp(&y.id)))
            }
            Some("UPDATED_TIME") => es.sort_by_key(|e| (e.updated_at, e.id)),
            Some("UPDATED_TIME_DESC") => {
                es.sort_by(|x, y| y.updated_at.cmp(&x.updated_at).then(y.id.cmp(&x.id)))
            }
            Some("ADDED_TIME") => es.sort_by_key(|e| (e.created_at, e.id)),
            Some("ADDED_TIME_DESC") => {
                es.sort_by(|x, y| y.created_at.cmp(&x.created_at).then(y.id.cmp(&x.id)))
            }
            Some("MEDIA_TITLE_ROMAJI") => es.sort_by_key(|e| (title(e), e.id)),
            Some("MEDIA_TITLE_ROMAJI_DESC") => es.sort_by_key(|e| std::cmp::Reverse(title(e))),
            Some(_) => es.sort_by_key(|e| e.id),
            None => match row_order {
                "score" => es.sort_by(|x, y| {
                    y.score_raw
                        .cmp(&x.score_raw)
                        .then(title(x).cmp(&title(y)))
                        .then(x.id.cmp(&y.id))
                }),
                "title" => es.sort_by_key(|e| (title(e), e.id)),
                "updatedAt" => {
                    es.sort_by(|x, y| y.updated_at.cmp(&x.updated_at).then(y.id.cmp(&x.id)))
                }
                _ => es.sort_by_key(|e| e.id),
            },
        }
    }

    fn collection(&mut self, a: &Args, loc: (usize, usize)) -> R {
        let mut v: Vec<(String, Vec<String>)> = Vec::new();
        let user = match (a_int(a, "userId"), a_str(a, "userName")) {
            (Some(id), _) => self.w.users.get(&(id as u64)).map(|u| u.id),
            (None, Some(n)) => self
                .w
                .users
                .values()
                .find(|u| u.name.eq_ignore_ascii_case(n))
                .map(|u| u.id),
            (None, None) => {
                v.push((
                    "userId".into(),
                    vec!["The user id field is required when user name is not present.".into()],
                ));
                v.push((
                    "userName".into(),
                    vec!["The user name field is required when user id is not present.".into()],
                ));
                None
            }
        };
        let kind = a_str(a, "type").and_then(MediaType::from_name);
        if kind.is_none() {
            v.push(("type".into(), vec!["The type field is required.".into()]));
        }
        if !v.is_empty() {
            return self.validation(v, loc);
        }
        let (Some(uid), Some(kind)) = (user, kind) else {
            return self.not_found(loc);
        };
        let Some(owner) = self.w.users.get(&uid).cloned() else {
            return self.not_found(loc);
        };
        let owner_view = self.viewer == Some(uid);
        let status_in = a_strs(a, "status_in");
        let status_not_in = a_strs(a, "status_not_in");
        let mut es: Vec<&Entry> = self
            .w
            .entries
            .values()
            .filter(|e| {
                let status = e.status.name().to_string();
                let notes = e.notes.as_deref().unwrap_or("").to_lowercase();
                e.user_id == uid
                    && self.w.kind_of(e.media_id) == kind
                    && (owner_view || !e.private)
                    && a_str(a, "status").is_none_or(|x| status == x)
                    && a_str(a, "status_not").is_none_or(|x| status != x)
                    && status_in.as_ref().is_none_or(|xs| xs.contains(&status))
                    && status_not_in
                        .as_ref()
                        .is_none_or(|xs| !xs.contains(&status))
                    && a_str(a, "notes").is_none_or(|x| notes.contains(&x.to_lowercase()))
                    && a_str(a, "notes_like").is_none_or(|x| notes.contains(&x.to_lowercase()))
            })
            .collect();
        let has_next = match a_int(a, "chunk") {
            Some(chunk) => {
                let per = a_int(a, "perChunk").unwrap_or(500).clamp(1, 500) as usize;
                let start = (chunk.max(1) as usize - 1) * per;
                es.sort_by_key(|e| e.id);
                let more = es.len() > start + per;
                es = es.into_iter().skip(start).take(per).collect();
                more
            }
            None => {
                es.sort_by(|x, y| y.updated_at.cmp(&x.updated_at).then(y.id.cmp(&x.id)));
                es.truncate(self.w.collection_cap);
                false
            }
        };
        let opts = owner.options(kind);
        let split = opts.split_completed && a_bool(a, "forceSingleCompletedList") != Some(true);
        let mut groups: Vec<(Group, Vec<&Entry>)> = Vec::new();
        for e in &es {
            let mut targets: Vec<Group> = Vec::new();
            if !e.hidden_from_status_lists {
                let label = if split && e.status == ListStatus::Completed {
                    let fmt = self
                        .w
                        .media
                        .get(&e.media_id)
                        .and_then(|m| m.format.as_deref());
                    format_label(fmt).map(|l| format!("Completed {l}"))
                } else {
                    None
                };
                targets.push(Group {
                    split: label.is_some(),
                    name: label.unwrap_or_else(|| e.status.list_name(kind).to_string()),
                    status: Some(e.status),
                    custom: false,
                    entries: Vec::new(),
                });
            }
            for name in &e.custom_lists {
                if opts.custom_lists.contains(name) {
                    targets.push(Group {
                        name: name.clone(),
                        status: None,
                        custom: true,
                        split: false,
                        entries: Vec::new(),
                    });
                }
            }
            for t in targets {
                match groups
                    .iter_mut()
                    .find(|(g, _)| g.name == t.name && g.custom == t.custom)
                {
                    Some((_, members)) => members.push(e),
                    None => groups.push((t, vec![e])),
                }
            }
        }
        let sort = a_strs(a, "sort").and_then(|s| s.into_iter().next());
        let position = |g: &Group| -> usize {
            let key = if g.split {
                "Completed"
            } else {
                g.name.as_str()
            };
            if let Some(i) = opts.section_order.iter().position(|s| s == key) {
                return i;
            }
            let base = opts.section_order.len();
            match opts.custom_lists.iter().position(|c| *c == g.name) {
                Some(i) if g.custom => base + i,
                _ => base + opts.custom_lists.len(),
            }
        };
        groups.sort_by_key(|(g, _)| position(g));
        let mut out = Vec::with_capacity(groups.len());
        for (mut g, mut members) in groups {
            self.sort_entries(&mut members, sort.as_deref(), &owner.row_order);
            g.entries = members.iter().map(|e| e.id).collect();
            out.push(g);
        }
        R::Obj(
            Obj::Collection {
                user_id: uid,
                groups: out,
                has_next,
            },
            "MediaListCollection",
        )
    }

    /// Validation shared by SaveMediaListEntry and UpdateMediaListEntries.
    fn check_values(&self, a: &Args, format: ScoreFormat, v: &mut Vec<(String, Vec<String>)>) {
        if let Some(s) = a_f64(a, "score") {
            if s < 0.0 {
                v.push(("score".into(), vec!["The score must be at least 0.".into()]));
            } else if s > f64::from(format.max()) {
                v.push((
                    "score".into(),
                    vec![format!(
                        "The score may not be greater than {}.",
                        format.max()
                    )],
                ));
            }
        }
        if let Some(r) = a_int(a, "scoreRaw") {
            if r < 0 {
                v.push((
                    "scoreRaw".into(),
                    vec!["The score raw must be at least 0.".into()],
                ));
            } else if r > 100 {
                v.push((
                    "scoreRaw".into(),
                    vec!["The score raw may not be greater than 100.".into()],
                ));
            }
        }
        for (key, label) in [
            ("progress", "progress"),
            ("progressVolumes", "progress volumes"),
            ("repeat", "repeat"),
            ("priority", "priority"),
        ] {
            if a_int(a, key).is_some_and(|n| n < 0) {
                v.push((key.into(), vec![format!("The {label} must be at least 0.")]));
            }
        }
    }

    fn save(&mut self, viewer: u64, a: &Args, loc: (usize, usize)) -> R {
        let format = self.w.users[&viewer].score_format;
        let mut v: Vec<(String, Vec<String>)> = Vec::new();
        let id = a_int(a, "id");
        let media_id = a_int(a, "mediaId");
        let existing = match id {
            Some(id) => {
                let found = self
                    .w
                    .entries
                    .get(&(id as u64))
                    .filter(|e| e.user_id == viewer)
                    .map(|e| e.id);
                if found.is_none() {
                    v.push(("id".into(), vec!["The selected id is invalid.".into()]));
                }
                found
            }
            None => None,
        };
        match media_id {
            Some(m) if m < 0 || !self.w.media.contains_key(&(m as u64)) => v.push((
                "mediaId".into(),
                vec!["The selected media id is invalid.".into()],
            )),
            None if id.is_none() => v.push((
                "mediaId".into(),
                vec!["The media id field is required when id is not present.".into()],
            )),
            _ => {}
        }
        self.check_values(a, format, &mut v);
        if !v.is_empty() {
            return self.validation(v, loc);
        }
        let now = self.w.bump();
        let entry_id =
            match existing.or_else(|| media_id.and_then(|m| self.w.entry_of(viewer, m as u64))) {
                Some(eid) => eid,
                None => {
                    let mid = media_id.unwrap_or(0) as u64;
                    self.w.insert_entry(
                        viewer,
                        Entry::new(mid, ListStatus::Current).updated_at(now),
                        now,
                    )
                }
            };
        self.apply(viewer, entry_id, a, format, now);
        R::Obj(Obj::Entry(entry_id), "MediaList")
    }

    fn apply(&mut self, viewer: u64, entry_id: u64, a: &Args, format: ScoreFormat, now: i64) {
        let kind = self
            .w
            .entries
            .get(&entry_id)
            .map_or(MediaType::Anime, |e| self.w.kind_of(e.media_id));
        let lists = self.w.users[&viewer].options(kind).custom_lists.clone();
        let Some(e) = self.w.entries.get_mut(&entry_id) else {
            return;
        };
        let u = |k: &str| a_int(a, k).map(|n| n.max(0) as u32);
        if let Some(s) = a_str(a, "status").and_then(ListStatus::from_name) {
            e.status = s;
        }
        if let Some(raw) = u("scoreRaw") {
            e.score_raw = raw;
        } else if let Some(s) = a_f64(a, "score") {
            e.score_raw = format.score_to_raw(s);
        }
        if let Some(n) = u("progress") {
            e.progress = n;
        }
        if let Some(n) = u("progressVolumes") {
            e.progress_volumes = n;
        }
        if let Some(n) = u("repeat") {
            e.repeat = n;
        }
        if let Some(n) = u("priority") {
            e.priority = n;
        }
        if let Some(b) = a_bool(a, "private") {
            e.private = b;
        }
        if let Some(b) = a_bool(a, "hiddenFromStatusLists") {
            e.hidden_from_status_lists = b;
        }
        match a.get("notes") {
            Some(Value::String(s)) => e.notes = Some(s.clone()),
            Some(Value::Null) => e.notes = None,
            _ => {}
        }
        if let Some(names) = a_strs(a, "customLists") {
            e.custom_lists = lists
                .iter()
                .filter(|l| names.contains(l))
                .cloned()
                .collect();
        }
        if let Some(d) = a.get("startedAt") {
            e.started_at = fuzzy_from(d);
        }
        if let Some(d) = a.get("completedAt") {
            e.completed_at = fuzzy_from(d);
        }
        e.updated_at = now;
    }

    fn update_many(&mut self, viewer: u64, a: &Args, loc: (usize, usize)) -> R {
        let format = self.w.users[&viewer].score_format;
        let ids = a_ints(a, "ids").unwrap_or_default();
        let mut v: Vec<(String, Vec<String>)> = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            let own = self.w.entries.get(&(*id as u64)).map(|e| e.user_id);
            if own != Some(viewer) {
                v.push((
                    format!("ids.{i}"),
                    vec![format!("The selected ids.{i} is invalid.")],
                ));
            }
        }
        self.check_values(a, format, &mut v);
        if !v.is_empty() {
            return self.validation(v, loc);
        }
        let now = self.w.bump();
        for id in &ids {
            self.apply(viewer, *id as u64, a, format, now);
        }
        R::List(
            ids.into_iter()
                .map(|id| R::Obj(Obj::Entry(id as u64), "MediaList"))
                .collect(),
        )
    }

    fn delete(&mut self, viewer: u64, a: &Args, loc: (usize, usize)) -> R {
        let own = a_int(a, "id")
            .and_then(|id| self.w.entries.get(&(id as u64)))
            .filter(|e| e.user_id == viewer)
            .map(|e| e.id);
        match own {
            Some(id) => {
                self.w.entries.remove(&id);
                R::Obj(Obj::Deleted(true), "Deleted")
            }
            None => {
                self.errors.push(GErr::new(
                    "You are not authorized to modify this MediaList",
                    403,
                    loc,
                ));
                R::Null
            }
        }
    }

    fn delete_custom_list(&mut self, viewer: u64, a: &Args) -> R {
        let (Some(name), Some(kind)) = (
            a_str(a, "customList").map(str::to_string),
            a_str(a, "type").and_then(MediaType::from_name),
        ) else {
            return R::Obj(Obj::Deleted(false), "Deleted");
        };
        let existed = match self.w.users.get_mut(&viewer) {
            Some(u) => {
                let o = u.options_mut(kind);
                let before = o.custom_lists.len();
                o.custom_lists.retain(|c| *c != name);
                o.section_order.retain(|c| *c != name);
                before != o.custom_lists.len()
            }
            None => false,
        };
        let kinds: HashMap<u64, MediaType> =
            self.w.media.iter().map(|(id, m)| (*id, m.kind)).collect();
        for e in self.w.entries.values_mut() {
            if e.user_id == viewer && kinds.get(&e.media_id) == Some(&kind) {
                e.custom_lists.retain(|c| *c != name);
            }
        }
        R::Obj(Obj::Deleted(existed), "Deleted")
    }
}

/// What a field the fake does not model answers: `[]` for lists, `false` for
/// non-null booleans, else `null`.
fn fallback(ty: &str, name: &str) -> R {
    match field_def(ty, name).map(|d| d.ty) {
        Some(t) if TRef::parse(t).is_list() => R::J(J::List(Vec::new())),
        Some("Boolean!") => R::J(J::Bool(false)),
        _ => R::Null,
    }
}

/// Case-insensitive: the whole query in one title, or every word of it in some title.
fn title_matches(m: &Media, query_lower: &str) -> bool {
    let titles: Vec<String> = m.titles().map(str::to_lowercase).collect();
    titles.iter().any(|t| t.contains(query_lower))
        || query_lower
            .split_whitespace()
            .all(|w| titles.iter().any(|t| t.contains(w)))
}

// ---------------------------------------------------------------------------
// One GraphQL request
// ---------------------------------------------------------------------------

struct Outcome {
    status: u16,
    body: String,
    operation: String,
    operation_name: Option<String>,
    root_fields: Vec<String>,
    variables: Value,
    query: String,
}

/// A request-level error (no operation ran): `{"data":null,"errors":[{"message","status":400}]}`.
fn request_error(message: &str) -> String {
    J::obj(vec![
        ("data", J::Null),
        (
            "errors",
            J::List(vec![J::obj(vec![
                ("message", J::s(message)),
                ("status", J::Int(400)),
            ])]),
        ),
    ])
    .text()
}

/// Root field names of an operation (fragments at the root included).
fn root_names<'q>(set: &'q SelSet<'q>, frags: &HashMap<&'q str, &'q Frag<'q>>) -> Vec<String> {
    let mut out = Vec::new();
    for item in &set.items {
        match item {
            q::Selection::Field(f) => out.push(f.name.clone()),
            q::Selection::FragmentSpread(sp) => {
                if let Some(fr) = frags.get(sp.fragment_name.as_str()) {
                    out.extend(root_names(&fr.selection_set, frags));
                }
            }
            q::Selection::InlineFragment(i) => out.extend(root_names(&i.selection_set, frags)),
        }
    }
    out
}

/// What the log needs from a body, without running it.
fn peek(body: &[u8]) -> Outcome {
    let mut out = Outcome {
        status: 0,
        body: String::new(),
        operation: String::new(),
        operation_name: None,
        root_fields: Vec::new(),
        variables: Value::Null,
        query: String::new(),
    };
    let Ok(req) = serde_json::from_slice::<Value>(body) else {
        return out;
    };
    out.variables = req.get("variables").cloned().unwrap_or(Value::Null);
    let Some(query) = req.get("query").and_then(Value::as_str) else {
        return out;
    };
    out.query = query.to_string();
    if let Ok(doc) = graphql_parser::parse_query::<String>(query) {
        let ops = operations(&doc);
        let name = req.get("operationName").and_then(Value::as_str);
        let op = match name {
            Some(n) => ops.iter().find(|o| o.name == Some(n)),
            None => ops.first(),
        };
        if let Some(op) = op {
            out.operation = op.kind.to_string();
            out.operation_name = op.name.map(str::to_string);
            out.root_fields = root_names(op.set, &fragments(&doc));
        }
    }
    out
}

/// Parses, validates and runs one request body against the world.
/// `extra`: an error to add to a 200 answer ([`Fault::ErrorsWithData`]).
fn run_graphql(
    w: &mut World,
    authorization: Option<&str>,
    content_type: Option<&str>,
    body: &[u8],
    extra: Option<(&str, u16)>,
) -> Outcome {
    let mut out = peek(body);
    out.status = 400;
    if !content_type.is_some_and(|ct| ct.to_ascii_lowercase().starts_with("application/json")) {
        out.body = request_error("Must provide query string.");
        return out;
    }
    let Ok(req) = serde_json::from_slice::<Value>(body) else {
        out.body = request_error("Could not parse JSON body.");
        return out;
    };
    let Some(query) = req.get("query").and_then(Value::as_str) else {
        out.body = request_error("Must provide query string.");
        return out;
    };
    let given = match req.get("variables") {
        None | Some(Value::Null) => serde_json::Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(m)) => m,
            _ => {
                out.body = request_error("Variables are invalid JSON.");
                return out;
            }
        },
        Some(_) => {
            out.body = request_error("Variables are invalid JSON.");
            return out;
        }
    };
    let op_name = req.get("operationName").and_then(Value::as_str);
    let doc = match graphql_parser::parse_query::<String>(query) {
        Ok(d) => d,
        Err(e) => {
            out.body = data_null_body(&[syntax_error(query, &e.to_string())]);
            return out;
        }
    };
    let errors = validate(query, &doc);
    if !errors.is_empty() {
        out.body = data_null_body(&errors);
        return out;
    }
    let ops = operations(&doc);
    let op = match op_name {
        Some(n) => ops.iter().find(|o| o.name == Some(n)),
        None if ops.len() == 1 => ops.first(),
        None => None,
    };
    let Some(op) = op else {
        out.body = request_error(&match op_name {
            Some(n) => format!("Unknown operation named \"{n}\"."),
            None if ops.is_empty() => "Must provide an operation.".to_string(),
            None => {
                "Must provide operation name if query contains multiple operations.".to_string()
            }
        });
        return out;
    };
    let vars = match coerce_variables(query, op.vars, &given) {
        Ok(v) => v,
        Err(errs) => {
            out.body = data_null_body(&errs);
            return out;
        }
    };
    let root_ty = if op.kind == "mutation" {
        "Mutation"
    } else {
        "Query"
    };
    let mut ex = Exec {
        w,
        src: query,
        vars,
        frags: fragments(&doc),
        viewer: None,
        errors: Vec::new(),
    };
    if let Some(header) = authorization {
        let token = header
            .trim()
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim());
        match token.and_then(|t| ex.w.token_user(t)) {
            Some(uid) => ex.viewer = Some(uid),
            None => {
                let fields = ex.collect(&[op.set], root_ty);
                let loc = fields
                    .first()
                    .map_or((1, 1), |(_, fs)| fix_pos(query, fs[0].position));
                let data = J::Obj(fields.into_iter().map(|(k, _)| (k, J::Null)).collect());
                out.body = errors_data_body(&[GErr::new("Invalid token", 400, loc)], data);
                return out;
            }
        }
    }
    let data = ex.complete_obj(Obj::Root, root_ty, &[op.set]);
    let mut errors = std::mem::take(&mut ex.errors);
    if let Some((message, status)) = extra {
        errors.push(GErr {
            message: message.to_string(),
            status,
            locations: Vec::new(),
            validation: None,
        });
        out.status = 200;
        out.body = errors_data_body(&errors, data);
    } else if errors.is_empty() {
        out.status = 200;
        out.body = J::obj(vec![("data", data)]).text();
    } else if errors.iter().any(|e| e.validation.is_some()) {
        out.status = 400;
        out.body = data_null_body(&errors);
    } else {
        out.status = errors[0].status;
        out.body = errors_data_body(&errors, data);
    }
    out
}

// ---------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------

#[derive(Clone)]
struct App {
    state: Arc<Mutex<World>>,
}

impl App {
    fn world(&self) -> MutexGuard<'_, World> {
        lock(&self.state)
    }
}

fn router(app: App) -> Router {
    Router::new()
        .route("/", post(graphql))
        .route("/api/v2/oauth/authorize", get(authorize))
        .route("/api/v2/oauth/token", post(token))
        .route("/api/v2/oauth/pin", get(pin))
        .route("/file/{*path}", get(image))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(app.clone(), record))
        .with_state(app)
}

/// Logs every request but the covers (counted apart by `image`).
async fn record(State(app): State<App>, req: Request, next: Next) -> Response {
    if !req.uri().path().starts_with("/file/") {
        let r = Req {
            method: req.method().to_string(),
            path: req.uri().path().to_string(),
            query: req.uri().query().unwrap_or("").to_string(),
            authorization: header_str(req.headers(), header::AUTHORIZATION),
        };
        app.world().requests.push(r);
    }
    next.run(req).await
}

fn header_str(headers: &HeaderMap, name: HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn raw(status: u16, content_type: &str, body: String) -> Response {
    let mut resp = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        body,
    )
        .into_response();
    if let Ok(v) = HeaderValue::try_from(content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    resp
}

fn set_header(resp: &mut Response, name: &str, value: &str) {
    if let (Ok(k), Ok(v)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
        resp.headers_mut().insert(k, v);
    }
}

fn with_rate(mut resp: Response, limit: u32, remaining: u32) -> Response {
    set_header(&mut resp, "x-ratelimit-limit", &limit.to_string());
    set_header(&mut resp, "x-ratelimit-remaining", &remaining.to_string());
    resp
}

fn too_many(limit: u32, retry_after: u64, reset: i64) -> Response {
    let mut resp = with_rate(
        raw(429, JSON_CT, TOO_MANY_REQUESTS_BODY.to_string()),
        limit,
        0,
    );
    set_header(&mut resp, "retry-after", &retry_after.to_string());
    set_header(&mut resp, "x-ratelimit-reset", &reset.to_string());
    resp
}

async fn not_found() -> Response {
    raw(
        404,
        "text/html; charset=UTF-8",
        "<!DOCTYPE html><html><head><title>Not Found</title></head><body><h1>404 Not Found</h1></body></html>".to_string(),
    )
}

fn log_request(
    app: &App,
    out: Outcome,
    authorization: Option<String>,
    status: u16,
    response: &str,
) {
    app.world().gql_log.push(GqlRequest {
        operation: out.operation,
        operation_name: out.operation_name,
        root_fields: out.root_fields,
        variables: out.variables,
        query: out.query,
        authorization,
        status,
        response: response.to_string(),
    });
}

/// `POST /`: latency, rate limit, injected faults, then the query.
async fn graphql(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let latency = app.world().latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let authorization = header_str(&headers, header::AUTHORIZATION);
    let content_type = header_str(&headers, header::CONTENT_TYPE);
    let (rate, fault) = {
        let mut w = app.world();
        (w.rate.check(), take_fault(&mut w.faults))
    };
    let (limit, remaining) = match rate {
        RateCheck::Blocked {
            limit,
            retry_after,
            reset,
        } => {
            log_request(
                &app,
                peek(&body),
                authorization,
                429,
                TOO_MANY_REQUESTS_BODY,
            );
            return too_many(limit, retry_after, reset);
        }
        RateCheck::Ok { limit, remaining } => (limit, remaining),
    };
    let mut extra = None;
    match fault {
        None => {}
        Some(Fault::Delay(d)) => tokio::time::sleep(d).await,
        Some(Fault::ErrorsWithData { message, status }) => extra = Some((message, status)),
        Some(fault) => {
            let (status, ct, text, rate_headers, extra_headers) = match fault {
                Fault::ServerError => (
                    500,
                    JSON_CT.to_string(),
                    SERVER_ERROR_BODY.to_string(),
                    true,
                    vec![],
                ),
                Fault::BadGateway => (
                    502,
                    "text/html".to_string(),
                    BAD_GATEWAY_HTML.to_string(),
                    false,
                    vec![],
                ),
                Fault::MalformedJson => (
                    200,
                    JSON_CT.to_string(),
                    MALFORMED_JSON_BODY.to_string(),
                    true,
                    vec![],
                ),
                Fault::TooManyRequests { retry_after } => {
                    log_request(
                        &app,
                        peek(&body),
                        authorization,
                        429,
                        TOO_MANY_REQUESTS_BODY,
                    );
                    return too_many(limit, retry_after, unix_now() + retry_after as i64);
                }
                Fault::Raw {
                    status,
                    content_type,
                    body: text,
                    headers,
                } => (status, content_type, text, false, headers),
                Fault::Delay(_) | Fault::ErrorsWithData { .. } => unreachable!(),
            };
            log_request(&app, peek(&body), authorization, status, &text);
            let mut resp = raw(status, &ct, text);
            for (k, v) in &extra_headers {
                set_header(&mut resp, k, v);
            }
            return if rate_headers {
                with_rate(resp, limit, remaining)
            } else {
                resp
            };
        }
    }
    let out = {
        let mut w = app.world();
        run_graphql(
            &mut w,
            authorization.as_deref(),
            content_type.as_deref(),
            &body,
            extra.as_ref().map(|(m, s)| (m.as_str(), *s)),
        )
    };
    let (status, text) = (out.status, out.body.clone());
    log_request(&app, out, authorization, status, &text);
    with_rate(raw(status, JSON_CT, text), limit, remaining)
}

// ---------------------------------------------------------------------------
// OAuth
// ---------------------------------------------------------------------------

fn first<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn invalid_request(hint: &str) -> Response {
    let body = J::obj(vec![
        ("error", J::s("invalid_request")),
        ("message", J::s(INVALID_REQUEST_MESSAGE)),
        ("hint", J::s(hint)),
    ])
    .text();
    raw(400, JSON_CT, body)
}

fn oauth_fault(fault: &Fault) -> Option<Response> {
    Some(match fault {
        Fault::ServerError => raw(500, JSON_CT, SERVER_ERROR_BODY.to_string()),
        Fault::BadGateway => raw(502, "text/html", BAD_GATEWAY_HTML.to_string()),
        Fault::MalformedJson => raw(200, JSON_CT, r#"{"token_type":"Bearer","expi"#.to_string()),
        Fault::TooManyRequests { retry_after } => {
            let mut r = raw(429, JSON_CT, TOO_MANY_REQUESTS_BODY.to_string());
            set_header(&mut r, "retry-after", &retry_after.to_string());
            r
        }
        Fault::Raw {
            status,
            content_type,
            body,
            headers,
        } => {
            let mut r = raw(*status, content_type, body.clone());
            for (k, v) in headers {
                set_header(&mut r, k, v);
            }
            r
        }
        Fault::Delay(_) | Fault::ErrorsWithData { .. } => return None,
    })
}

/// `GET {auth_url}/authorize`: approves at once as the login user.
async fn authorize(State(app): State<App>, RawQuery(query): RawQuery) -> Response {
    let params = parse_urlencoded(query.as_deref().unwrap_or(""));
    let p = |k: &str| first(&params, k);
    let mut w = app.world();
    if p("client_id") != Some(w.client_id.as_str()) {
        return raw(401, JSON_CT, INVALID_CLIENT_BODY.to_string());
    }
    if p("redirect_uri").is_some_and(|r| r != w.redirect_uri) {
        return raw(401, JSON_CT, INVALID_CLIENT_BODY.to_string());
    }
    let own_pin = format!("{}/api/v2/oauth/pin", w.base);
    let pin = w.redirect_uri == PIN_URI || w.redirect_uri == own_pin;
    let target = if pin { own_pin } else { w.redirect_uri.clone() };
    let implicit = match p("response_type") {
        Some("token") => true,
        Some("code") => false,
        _ => return raw(400, JSON_CT, UNSUPPORTED_GRANT_TYPE_BODY.to_string()),
    };
    let denied = "The resource owner or authorization server denied the request.";
    let mut out: Vec<(&str, String)> = if w.deny {
        vec![
            ("error", "access_denied".to_string()),
            ("error_description", denied.to_string()),
            ("hint", "The user denied the request".to_string()),
            ("message", denied.to_string()),
        ]
    } else if implicit {
        let user = w.login_user;
        let token = w.mint_token(user, unix_now() + TOKEN_LIFETIME);
        if pin {
            w.last_pin_token = Some(token.clone());
        }
        vec![
            ("access_token", token),
            ("token_type", "Bearer".to_string()),
            ("expires_in", TOKEN_LIFETIME.to_string()),
        ]
    } else {
        let code = format!("def50200{}", hex(240));
        let c = Code {
            user_id: w.login_user,
            redirect_uri: w.redirect_uri.clone(),
            expires: unix_now() + 600,
            used: false,
        };
        w.codes.insert(code.clone(), c);
        vec![("code", code)]
    };
    if let Some(state) = p("state") {
        out.push(("state", state.to_string()));
    }
    let params = out
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let location = if implicit {
        format!("{target}#{params}")
    } else {
        let sep = if target.contains('?') { '&' } else { '?' };
        format!("{target}{sep}{params}")
    };
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

/// `POST {auth_url}/token`: the authorization-code grant (JSON or form body).
async fn token(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let fault = take_fault(&mut app.world().oauth_faults);
    match &fault {
        Some(Fault::Delay(d)) => tokio::time::sleep(*d).await,
        Some(f) => {
            if let Some(resp) = oauth_fault(f) {
                return resp;
            }
        }
        None => {}
    }
    let json = header_str(&headers, header::CONTENT_TYPE)
        .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("application/json"));
    let fields: Vec<(String, String)> = if json {
        serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v.as_object().cloned())
            .map(|m| {
                m.into_iter()
                    .map(|(k, v)| match v {
                        Value::String(s) => (k, s),
                        other => (k, other.to_string()),
                    })
                    .collect()
            })
            .unwrap_or_default()
    } else {
        parse_urlencoded(&String::from_utf8_lossy(&body))
    };
    let f = |k: &str| first(&fields, k).map(str::to_string);
    if f("grant_type").as_deref() != Some("authorization_code") {
        return raw(400, JSON_CT, UNSUPPORTED_GRANT_TYPE_BODY.to_string());
    }
    let Some(client_id) = f("client_id") else {
        return invalid_request("Check the `client_id` parameter");
    };
    let mut w = app.world();
    if client_id != w.client_id || f("client_secret").as_deref() != Some(w.client_secret.as_str()) {
        return raw(401, JSON_CT, INVALID_CLIENT_BODY.to_string());
    }
    let redirect = f("redirect_uri");
    match &redirect {
        Some(r) if *r != w.redirect_uri => {
            return raw(401, JSON_CT, INVALID_CLIENT_BODY.to_string());
        }
        None => return invalid_request("Check the `redirect_uri` parameter"),
        Some(_) => {}
    }
    let Some(code) = f("code") else {
        return invalid_request("Check the `code` parameter");
    };
    let now = unix_now();
    let user = match w.codes.get_mut(&code) {
        None => return invalid_request("Cannot decrypt the authorization code"),
        Some(c) if c.used => return invalid_request("Authorization code has been revoked"),
        Some(c) if c.expires < now => return invalid_request("Authorization code has expired"),
        Some(c) if Some(&c.redirect_uri) != redirect.as_ref() => {
            return invalid_request("Invalid redirect URI");
        }
        Some(c) => {
            c.used = true;
            c.user_id
        }
    };
    let access = w.mint_token(user, now + TOKEN_LIFETIME);
    let body = J::obj(vec![
        ("token_type", J::s("Bearer")),
        ("expires_in", J::Int(TOKEN_LIFETIME)),
        ("access_token", J::s(access)),
    ])
    .text();
    raw(200, JSON_CT, body)
}

/// `GET {auth_url}/pin`: the page that shows the token (implicit grant: the
/// last token sent here, or the fragment in a real browser) or `?code=`.
async fn pin(State(app): State<App>, RawQuery(query): RawQuery) -> Response {
    let params = parse_urlencoded(query.as_deref().unwrap_or(""));
    let shown = first(&params, "code")
        .map(str::to_string)
        .or_else(|| app.world().last_pin_token.clone())
        .unwrap_or_default();
    let shown: String = shown
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
        .collect();
    let page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Auth Pin · AniList</title></head>\n<body>\n<h1>Auth Pin</h1>\n<p>Copy the token below and paste it into the application.</p>\n<textarea id=\"token\" readonly rows=\"8\" cols=\"80\">{shown}</textarea>\n<script>\nvar m = /access_token=([^&]+)/.exec(window.location.hash);\nif (m) {{ document.getElementById('token').value = decodeURIComponent(m[1]); }}\n</script>\n</body></html>\n"
    );
    raw(200, "text/html; charset=UTF-8", page)
}

/// `GET /file/…`: every cover and avatar is the same tiny PNG.
async fn image(State(app): State<App>, OriginalUri(uri): OriginalUri) -> Response {
    app.world().images.push(uri.path().to_string());
    ([(header::CONTENT_TYPE, "image/png")], cover_png()).into_response()
}

// ---------------------------------------------------------------------------
// Small helpers: time, random, JWT
// ---------------------------------------------------------------------------

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn hex(n_bytes: usize) -> String {
    let mut rng = rand::rng();
    (0..n_bytes)
        .map(|_| format!("{:02x}", rng.random::<u8>()))
        .collect()
}

/// A JWT shaped like AniList's (Laravel Passport): RS256 header with `jti`,
/// payload `{"aud","jti","iat","nbf","exp","sub","scopes":[]}`, random signature.
fn make_jwt(client_id: &str, user_id: u64, iat: i64, exp: i64, float_claims: bool) -> String {
    let mut rng = rand::rng();
    let jti = hex(40);
    let micros = rng.random_range(1..1_000_000u32);
    let t = |secs: i64| {
        if float_claims {
            format!("{secs}.{micros:06}")
        } else {
            secs.to_string()
        }
    };
    let header = format!(r#"{{"typ":"JWT","alg":"RS256","jti":"{jti}"}}"#);
    let payload = format!(
        r#"{{"aud":"{client_id}","jti":"{jti}","iat":{},"nbf":{},"exp":{},"sub":"{user_id}","scopes":[]}}"#,
        t(iat),
        t(iat),
        t(exp)
    );
    let signature: Vec<u8> = (0..256).map(|_| rng.random::<u8>()).collect();
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

use super::net::{FakeListener, Gate, Net};

// ---------------------------------------------------------------------------
// FakeAnilist
// ---------------------------------------------------------------------------

/// The fake server. Dropping it stops serving.
pub struct FakeAnilist {
    base: String,
    state: Arc<Mutex<World>>,
    net: Arc<Net>,
    shutdown: Option<oneshot::Sender<()>>,
    /// Only for `start_background`: stops the private runtime, then joined.
    background: Option<super::net::Background>,
}

impl FakeAnilist {
    /// The app's client id (AniList's are numbers).
    pub const CLIENT_ID: &'static str = "4242";
    /// The app's client secret (see [`FakeAnilist::set_client_secret`]).
    pub const CLIENT_SECRET: &'static str = "fAkEaNiLiStSeCrEt0123456789abcdefghijklmn";

    /// Binds `127.0.0.1:0` and serves on the current tokio runtime. The world
    /// starts with user [`DEFAULT_USER_ID`] ("UserName", POINT_10_DECIMAL),
    /// no media, no entries, no tokens.
    pub async fn start() -> FakeAnilist {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("FakeAnilist: bind 127.0.0.1:0");
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
        let state = Arc::new(Mutex::new(World::new(base.clone())));
        let app = App {
            state: state.clone(),
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
        FakeAnilist {
            base,
            state,
            net,
            shutdown: Some(tx),
            background: None,
        }
    }

    /// Serves from a thread of its own with a private runtime, for sync
    /// `#[test]`s. Keeps serving until dropped.
    pub fn start_background() -> FakeAnilist {
        let (mut fake, background) = super::net::in_background("fake-anilist", FakeAnilist::start);
        fake.background = Some(background);
        fake
    }

    fn world(&self) -> MutexGuard<'_, World> {
        lock(&self.state)
    }

    /// `http://127.0.0.1:PORT`
    pub fn base(&self) -> String {
        self.base.clone()
    }

    /// The GraphQL endpoint, POSTed to as is: `http://127.0.0.1:PORT/`.
    pub fn api_url(&self) -> String {
        format!("{}/", self.base)
    }

    /// `http://127.0.0.1:PORT/api/v2/oauth` (`…/authorize`, `…/token`, `…/pin`).
    pub fn auth_url(&self) -> String {
        format!("{}/api/v2/oauth", self.base)
    }

    /// `{auth_url}/pin`, where an app registered with [`PIN_URI`] is sent.
    pub fn pin_url(&self) -> String {
        format!("{}/pin", self.auth_url())
    }

    /// An `[anilist]` table pointing at the fake, without a client secret
    /// (implicit grant). Registers `redirect_uri` as the app's redirect URI.
    pub fn config_toml(&self, redirect_uri: &str) -> String {
        self.set_redirect_uri(redirect_uri);
        format!(
            "[anilist]\nclient_id = \"{}\"\nredirect_uri = \"{redirect_uri}\"\napi_url = \"{}\"\nauth_url = \"{}\"\n",
            Self::CLIENT_ID,
            self.api_url(),
            self.auth_url()
        )
    }

    /// Like [`FakeAnilist::config_toml`], with `client_secret` (code grant).
    pub fn config_toml_with_secret(&self, redirect_uri: &str) -> String {
        let secret = self.world().client_secret.clone();
        let mut text = self.config_toml(redirect_uri);
        text.push_str(&format!("client_secret = \"{secret}\"\n"));
        text
    }

    // -- users ----------------------------------------------------------------

    /// Adds (or replaces) an account.
    pub fn add_user(&self, user: User) {
        self.world().users.insert(user.id, user);
    }

    /// The account as stored.
    pub fn user(&self, id: u64) -> Option<User> {
        self.world().users.get(&id).cloned()
    }

    fn with_user(&self, id: u64, f: impl FnOnce(&mut User)) {
        let mut w = self.world();
        let u = w
            .users
            .get_mut(&id)
            .unwrap_or_else(|| panic!("FakeAnilist: no user {id}"));
        f(u);
    }

    /// The user's `scoreFormat` (changes how every score is read and served).
    pub fn set_score_format(&self, user_id: u64, format: ScoreFormat) {
        self.with_user(user_id, |u| u.score_format = format);
    }

    /// The user's `rowOrder` (`score`, `title`, `updatedAt`, `id`).
    pub fn set_row_order(&self, user_id: u64, order: &str) {
        self.with_user(user_id, |u| u.row_order = order.to_string());
    }

    /// Registers a custom list of the user.
    pub fn add_custom_list(&self, user_id: u64, kind: MediaType, name: &str) {
        self.with_user(user_id, |u| {
            let o = u.options_mut(kind);
            if !o.custom_lists.iter().any(|c| c == name) {
                o.custom_lists.push(name.to_string());
            }
        });
    }

    /// `splitCompletedSectionByFormat` of the user's list.
    pub fn set_split_completed(&self, user_id: u64, kind: MediaType, yes: bool) {
        self.with_user(user_id, |u| u.options_mut(kind).split_completed = yes);
    }

    /// The order of `MediaListCollection.lists` (status and custom list names).
    pub fn set_section_order(&self, user_id: u64, kind: MediaType, names: &[&str]) {
        self.with_user(user_id, |u| {
            u.options_mut(kind).section_order = names.iter().map(|s| s.to_string()).collect();
        });
    }

    // -- media ----------------------------------------------------------------

    /// Adds (or replaces) a title in the catalogue.
    pub fn add_media(&self, media: Media) {
        self.world().media.insert(media.id, media);
    }

    /// Edits a title (panics if unknown).
    pub fn edit_media(&self, id: u64, f: impl FnOnce(&mut Media)) {
        let mut w = self.world();
        f(w.media
            .get_mut(&id)
            .unwrap_or_else(|| panic!("FakeAnilist: no media {id}")));
    }

    /// `nextAiringEpisode` as `(episode, airingAt)`, or `None`.
    pub fn set_next_airing(&self, id: u64, next: Option<(u32, i64)>) {
        self.edit_media(id, |m| m.next_airing = next);
    }

    // -- entries --------------------------------------------------------------

    /// Puts `entry` on `user_id`'s list and returns its (fresh) entry id.
    /// Panics if the media or the user is unknown or already on that list.
    pub fn add_entry(&self, user_id: u64, entry: Entry) -> u64 {
        let mut w = self.world();
        assert!(
            w.media.contains_key(&entry.media_id),
            "FakeAnilist: media {} was never added",
            entry.media_id
        );
        assert!(
            w.users.contains_key(&user_id),
            "FakeAnilist: no user {user_id}"
        );
        assert!(
            w.entry_of(user_id, entry.media_id).is_none(),
            "FakeAnilist: media {} is already on user {user_id}'s list",
            entry.media_id
        );
        let now = unix_now();
        w.last_update = w.last_update.max(now);
        w.insert_entry(user_id, entry, now)
    }

    /// Every entry of the user (anime and manga), by entry id.
    pub fn entries(&self, user_id: u64) -> Vec<Entry> {
        self.world()
            .entries
            .values()
            .filter(|e| e.user_id == user_id)
            .cloned()
            .collect()
    }

    /// The user's entry for `media_id`.
    pub fn entry(&self, user_id: u64, media_id: u64) -> Option<Entry> {
        let w = self.world();
        w.entry_of(user_id, media_id)
            .and_then(|id| w.entries.get(&id).cloned())
    }

    /// An entry by its entry id.
    pub fn entry_by_id(&self, id: u64) -> Option<Entry> {
        self.world().entries.get(&id).cloned()
    }

    /// An edit "on the website": changes the user's entry for `media_id` and
    /// bumps its `updatedAt` past every earlier one. Panics if absent.
    pub fn website_edit(&self, user_id: u64, media_id: u64, f: impl FnOnce(&mut Entry)) {
        let mut w = self.world();
        let id = w.entry_of(user_id, media_id).unwrap_or_else(|| {
            panic!("FakeAnilist: media {media_id} not on user {user_id}'s list")
        });
        let now = w.bump();
        if let Some(e) = w.entries.get_mut(&id) {
            f(e);
            e.updated_at = now;
        }
    }

    /// Website edit of the progress.
    pub fn set_progress(&self, user_id: u64, media_id: u64, progress: u32) {
        self.website_edit(user_id, media_id, |e| e.progress = progress);
    }

    /// Website edit of the status.
    pub fn set_status(&self, user_id: u64, media_id: u64, status: ListStatus) {
        self.website_edit(user_id, media_id, |e| e.status = status);
    }

    /// Website removal of the entry; `true` if it was there.
    pub fn remove_entry(&self, user_id: u64, media_id: u64) -> bool {
        let mut w = self.world();
        match w.entry_of(user_id, media_id) {
            Some(id) => w.entries.remove(&id).is_some(),
            None => false,
        }
    }

    // -- tokens and OAuth -----------------------------------------------------

    /// A valid token for `user_id`, as a login would give (a year long).
    pub fn issue_token(&self, user_id: u64) -> String {
        self.issue_token_expiring(user_id, unix_now() + TOKEN_LIFETIME)
    }

    /// A token whose `exp` is `exp` (unix seconds); it answers "Invalid token" from then on.
    pub fn issue_token_expiring(&self, user_id: u64, exp: i64) -> String {
        self.world().mint_token(user_id, exp)
    }

    /// A token that expired yesterday.
    pub fn issue_expired_token(&self, user_id: u64) -> String {
        self.issue_token_expiring(user_id, unix_now() - 86_400)
    }

    /// Every token issued so far now answers "Invalid token" (access revoked).
    pub fn revoke_tokens(&self) {
        for t in self.world().tokens.values_mut() {
            t.revoked = true;
        }
    }

    /// The secret the token endpoint requires (default [`FakeAnilist::CLIENT_SECRET`]).
    pub fn set_client_secret(&self, secret: &str) {
        self.world().client_secret = secret.to_string();
    }

    /// The app's registered redirect URI (default [`DEFAULT_REDIRECT_URI`]);
    /// [`PIN_URI`] sends the browser to the fake's pin page.
    pub fn set_redirect_uri(&self, uri: &str) {
        self.world().redirect_uri = uri.to_string();
    }

    /// The account `/authorize` logs in as (default [`DEFAULT_USER_ID`]).
    pub fn set_login_user(&self, user_id: u64) {
        self.world().login_user = user_id;
    }

    /// When true, `/authorize` redirects with `error=access_denied`.
    pub fn set_deny_authorization(&self, deny: bool) {
        self.world().deny = deny;
    }

    /// When true, new tokens carry `iat`/`nbf`/`exp` with microseconds
    /// (`1700000000.123456`), as newer Passport versions write them.
    pub fn set_float_claims(&self, yes: bool) {
        self.world().float_claims = yes;
    }

    // -- faults and limits ----------------------------------------------------

    /// The next `n` GraphQL requests (after latency and the rate limit) answer `fault`.
    pub fn fail_next(&self, n: usize, fault: Fault) {
        if n > 0 {
            self.world().faults.push_back(Failure {
                remaining: n,
                fault,
            });
        }
    }

    /// The next `n` requests to `{auth_url}/token` answer `fault`.
    pub fn fail_next_oauth(&self, n: usize, fault: Fault) {
        if n > 0 {
            self.world().oauth_faults.push_back(Failure {
                remaining: n,
                fault,
            });
        }
    }

    /// Delay before every GraphQL answer.
    pub fn set_latency(&self, d: Duration) {
        self.world().latency = d;
    }

    /// Requests per window (default 90, as the headers say).
    pub fn set_rate_limit(&self, per_minute: u32) {
        self.world().rate.per_minute = per_minute;
    }

    /// Degraded mode: only 30 requests per window pass while the headers
    /// still say the full limit (429 once `X-RateLimit-Remaining` is 60 of 90).
    pub fn set_degraded(&self, yes: bool) {
        self.world().rate.degraded = yes;
    }

    /// The window the limit counts in (default 60 s) and the timeout after
    /// exceeding it (default 60 s), shorter for fast tests.
    pub fn set_rate_window(&self, window: Duration, timeout: Duration) {
        let mut w = self.world();
        w.rate.window = window;
        w.rate.timeout = timeout;
    }

    /// Forgets the requests counted and any timeout.
    pub fn reset_rate_limit(&self) {
        let mut w = self.world();
        w.rate.window_start = None;
        w.rate.count = 0;
        w.rate.blocked_until = None;
    }

    /// `PageInfo.total`/`lastPage` exact (default false: like AniList's, only
    /// `hasNextPage` can be trusted; `total` is what was shown so far plus a
    /// page when there is more, `lastPage` the current page plus one).
    pub fn set_accurate_page_info(&self, yes: bool) {
        self.world().accurate_page_info = yes;
    }

    /// How many entries `MediaListCollection` serves without `chunk` (default 11,000).
    pub fn set_collection_cap(&self, n: usize) {
        self.world().collection_cap = n;
    }

    // -- logs -------------------------------------------------------------------

    /// Every GraphQL request, in arrival order (rate-limited and faulted ones included).
    pub fn graphql_requests(&self) -> Vec<GqlRequest> {
        self.world().gql_log.clone()
    }

    /// How many GraphQL requests had `root` among their root fields.
    pub fn count_root(&self, root: &str) -> usize {
        self.world()
            .gql_log
            .iter()
            .filter(|r| r.root_fields.iter().any(|f| f == root))
            .count()
    }

    /// Every HTTP request (but covers), in arrival order.
    pub fn requests(&self) -> Vec<Req> {
        self.world().requests.clone()
    }

    /// Number of `GET /file/…` (cover/avatar) requests.
    pub fn image_requests(&self) -> usize {
        self.world().images.len()
    }

    /// Empties the request logs.
    pub fn clear_logs(&self) {
        let mut w = self.world();
        w.gql_log.clear();
        w.requests.clear();
        w.images.clear();
    }

    /// Closes the listening socket and kills open connections (state is kept).
    pub fn go_down(&self) {
        self.net.down(false);
    }

    /// Listens again on the same port after `go_down`.
    pub fn go_up(&self) {
        self.net.up();
    }
}

impl Drop for FakeAnilist {
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
