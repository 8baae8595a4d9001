//! A stateful fake of MangaDex: the Keycloak token endpoint of
//! `auth.mangadex.org` and the API v5 of `api.mangadex.org`, both served over
//! real HTTP on `127.0.0.1` by axum.
//!
//! Built from MangaDex's documentation (api.mangadex.org/docs: personal
//! clients, limitations), Keycloak's sources (`TokenEndpoint`,
//! `ClientIdAndSecretAuthenticator`, `AuthenticationProcessor`, `TokenManager`)
//! and the recorded answers in `tests/fixtures/mangadex/` (see
//! `shared/api/NOTES.md` §3 and §4), not from malt's code, so that it catches a
//! client's mistakes.
//!
//! Auth (configure `auth_url = fake.auth_url()`, i.e.
//! `{base}/realms/mangadex/protocol/openid-connect`; the token endpoint is
//! `{auth_url}/token`):
//! - the body must be a form (`application/x-www-form-urlencoded`); anything
//!   else (JSON) has no form parameters: 400 `invalid_request` "Missing form
//!   parameter: grant_type", as Keycloak answers;
//! - `grant_type=password` with `client_id`, `client_secret`, `username`,
//!   `password` (or the client in `Authorization: Basic`); the answer is shaped
//!   like `oauth-token-password-grant-response.json` (same keys in the same
//!   order, `expires_in` 900, `client_type` "personal");
//! - a wrong password, an unknown user or a user who does not own the personal
//!   client: 401 [`INVALID_USER_CREDENTIALS_BODY`]; an unknown or not yet
//!   approved client: 401 [`INVALID_CLIENT_BODY`]; a wrong or missing secret:
//!   401 [`UNAUTHORIZED_CLIENT_BODY`] (Keycloak's own words);
//! - `grant_type=refresh_token` (+ client) rotates: the answer carries a new
//!   refresh token and the used one is refused afterwards (400
//!   [`STALE_TOKEN_BODY`]; see [`FakeMangadex::set_rotation`]); an expired one
//!   answers [`TOKEN_NOT_ACTIVE_BODY`], an unknown one
//!   [`INVALID_REFRESH_TOKEN_BODY`], one of a revoked session
//!   [`SESSION_NOT_ACTIVE_BODY`];
//! - access tokens live 900 s and refresh tokens `refresh_expires_in`
//!   (2,414,162 s as recorded) on the fake's clock, which tests move with
//!   [`FakeMangadex::advance_clock`]. Tokens are JWT-shaped (RS256 access,
//!   HS512 refresh) and only valid on this fake.
//!
//! API (configure `api_url = fake.api_url()`, i.e. `{base}`):
//! - `GET /manga/status[?status=]`, `GET|POST /manga/{id}/status`,
//!   `GET|POST /manga/{id}/read`, `GET /manga/read?ids[]=…[&grouped=true]` need
//!   `Authorization: Bearer <access token>`; without one: 401. A bad, unknown or
//!   expired token answers 401 on EVERY endpoint, public ones included;
//! - public: `GET /manga` (collection: `ids[]`, `title`, `contentRating[]`,
//!   `status[]`, `includes[]`, `limit` 1–100 (default 10!), `offset`;
//!   `contentRating[]` defaults to safe, suggestive, erotica — pornographic
//!   titles vanish even from an `ids[]` query unless asked for), `GET
//!   /manga/{id}[?includes[]=cover_art|author|artist]` (shaped like
//!   `manga-entity.json`), `GET /manga/{id}/aggregate[?translatedLanguage[]=…]`
//!   (each language `^[a-zA-Z\-]{2,5}$`, else 400: `es-la`, not `es-419`),
//!   `GET /chapter/{id}[?includes[]=manga|scanlation_group|user]` (shaped like
//!   `chapter-entity.json`); covers under `GET /covers/{manga}/{file}` (a tiny PNG);
//! - array parameters must be sent as `name[]=…`: a plain `ids=…` is a string
//!   to PHP and answers 400 "String value found, but an array is required";
//! - `POST /manga/{id}/status` takes JSON `{"status": one of [`STATUSES`] | null}`
//!   (null removes; ≤ 2 KB); `POST /manga/{id}/read` takes JSON
//!   `{"chapterIdsRead":[…],"chapterIdsUnread":[…]}` (either optional, ≤ 10 KB
//!   ([`READ_BODY_LIMIT`]), larger: 400 and nothing changes,
//!   `?updateHistory=` accepted); a chapter id that is not an upload of that
//!   manga answers 400 and changes nothing; both answer `{"result":"ok"}`;
//! - an unknown manga or chapter answers 404, an id that is not a UUID 400;
//!   an unknown route 404, a wrong method 405;
//! - errors are `{"result":"error","errors":[{"id","status","title","detail","context"}]}`
//!   (a fresh `id` each time, `context` null; the titles/details are this
//!   fake's words where no recording exists, see the `(&str, &str)` constants);
//! - maps are written like PHP's `json_encode` writes arrays: a map whose keys
//!   are `"0".."n-1"` in order is a JSON list, so an empty aggregate is
//!   `"volumes":[]`, a volume whose only chapter is "0" has `"chapters":[{…}]`,
//!   volumes "0" and "1" alone are a list, and empty `statuses` / grouped read
//!   markers are `[]`;
//! - the aggregate groups the uploads of a manga by (volume, chapter number):
//!   the first upload is `id`, the rest `others`; volume key "none" for no
//!   volume, chapter key "none" for no number; numbers are strings ("10.5").
//!   Order as recorded from the real API (kindlyfire/mdrss-ts#4): volumes
//!   ascending with "none" last, chapters DESCENDING inside a volume;
//! - every API response carries `X-RateLimit-Limit`, `X-RateLimit-Remaining`
//!   and `X-RateLimit-Retry-After` (a Unix timestamp, not seconds). Past the
//!   limit (a bucket of 5 refilled at 5/s by default, a little lenient on
//!   timing) the answer is 429 with the error shape.
//!
//! JSON is compact, UTF-8 unescaped (`/` stays `/`), keys in MangaDex's order.
//!
//! ```ignore
//! let fake = FakeMangadex::start().await; // or start_background() in a sync #[test]
//! fake.add_manga(Manga::new(MANGA, "Frieren").status("ongoing").cover("f.jpg"));
//! fake.add_chapters(MANGA, vec![Chapter::new(CH1, Some("1"), Some("1")), Chapter::new(CH2, Some("1"), Some("2"))]);
//! fake.set_status(MANGA, Some("reading"));
//! fake.mark_read(MANGA, &[CH1]);
//! // config: fake.config_toml(); password: DEFAULT_PASSWORD
//! // … the client marks chapter 2 read …
//! assert_eq!(fake.read_markers(MANGA), [CH1, CH2]);
//! ```

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::RngExt;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::mal::{cover_png, parse_urlencoded};
use super::net::{FakeListener, Gate, Net};

// ---------------------------------------------------------------------------
// Constants and exact bodies
// ---------------------------------------------------------------------------

/// The account every fake starts with.
pub const DEFAULT_USERNAME: &str = "malt-reader";
/// Its password.
pub const DEFAULT_PASSWORD: &str = "hunter2 but longer";
/// The default user's approved personal client.
pub const CLIENT_ID: &str = "personal-client-5c1b4a8e-2f3d-4e6a-9b7c-0d1e2f3a4b5c-7e3f9a1d";
/// Its secret.
pub const CLIENT_SECRET: &str = "Zq3vT8mKp2LxW9rYc4NbH7sJd1FgA6eU";
/// Path of the Keycloak realm's OpenID Connect endpoints (`auth_url` = base + this).
pub const REALM_PATH: &str = "/realms/mangadex/protocol/openid-connect";
/// Access token lifetime (`expires_in`): 15 minutes.
pub const ACCESS_LIFETIME: i64 = 900;
/// Refresh token lifetime (`refresh_expires_in`) as recorded.
pub const REFRESH_LIFETIME: i64 = 2_414_162;
/// The reading statuses MangaDex knows.
pub const STATUSES: [&str; 6] = [
    "reading",
    "on_hold",
    "plan_to_read",
    "dropped",
    "re_reading",
    "completed",
];
/// Content ratings.
pub const CONTENT_RATINGS: [&str; 4] = ["safe", "suggestive", "erotica", "pornographic"];

/// Password grant: wrong password, unknown user, or a user who does not own the client (401).
pub const INVALID_USER_CREDENTIALS_BODY: &str =
    r#"{"error":"invalid_grant","error_description":"Invalid user credentials"}"#;
/// Unknown client, or a personal client not approved yet (disabled in Keycloak) (401).
pub const INVALID_CLIENT_BODY: &str = r#"{"error":"invalid_client","error_description":"Invalid client or Invalid client credentials"}"#;
/// Wrong or missing client secret (401).
pub const UNAUTHORIZED_CLIENT_BODY: &str = r#"{"error":"unauthorized_client","error_description":"Invalid client or Invalid client credentials"}"#;
/// No `client_id` at all (400).
pub const MISSING_CLIENT_ID_BODY: &str =
    r#"{"error":"invalid_client","error_description":"Missing client_id parameter"}"#;
/// No `grant_type` form parameter — also what a JSON body gets (400).
pub const MISSING_GRANT_TYPE_BODY: &str =
    r#"{"error":"invalid_request","error_description":"Missing form parameter: grant_type"}"#;
/// A grant type Keycloak does not know (400).
pub const UNSUPPORTED_GRANT_TYPE_BODY: &str =
    r#"{"error":"unsupported_grant_type","error_description":"Unsupported grant_type"}"#;
/// Password grant without `username` (401).
pub const MISSING_USERNAME_BODY: &str =
    r#"{"error":"invalid_request","error_description":"Missing parameter: username"}"#;
/// A form parameter sent twice (400).
pub const DUPLICATED_PARAMETER_BODY: &str =
    r#"{"error":"invalid_request","error_description":"duplicated parameter"}"#;
/// Refresh grant without `refresh_token` (400).
pub const NO_REFRESH_TOKEN_BODY: &str =
    r#"{"error":"invalid_request","error_description":"No refresh token"}"#;
/// A refresh token the server never issued (400).
pub const INVALID_REFRESH_TOKEN_BODY: &str =
    r#"{"error":"invalid_grant","error_description":"Invalid refresh token"}"#;
/// A refresh token issued to another client (400).
pub const REFRESH_CLIENT_MISMATCH_BODY: &str = r#"{"error":"invalid_grant","error_description":"Invalid refresh token. Token client and authorized client don't match"}"#;
/// An expired refresh token (400).
pub const TOKEN_NOT_ACTIVE_BODY: &str =
    r#"{"error":"invalid_grant","error_description":"Token is not active"}"#;
/// A refresh token already used once (rotation) (400).
pub const STALE_TOKEN_BODY: &str = r#"{"error":"invalid_grant","error_description":"Stale token"}"#;
/// A refresh token whose session was revoked (400).
pub const SESSION_NOT_ACTIVE_BODY: &str =
    r#"{"error":"invalid_grant","error_description":"Session not active"}"#;

/// Error title/detail of an API request without a token on a user endpoint (401).
pub const NOT_LOGGED_IN: (&str, &str) = (
    "Unauthorized",
    "You need to be logged in to access this resource.",
);
/// Error title/detail of an API request with an unknown or expired token (401).
pub const BAD_TOKEN: (&str, &str) = ("Unauthorized", "Token validation failed.");
/// Error title/detail of `limit` outside 1–100 (400), as in mangadex-api's tests.
pub const INVALID_LIMIT: (&str, &str) = ("Invalid limit", "Limit must be between 1 and 100");
/// Error title/detail of the rate limit (429).
pub const RATE_LIMITED: (&str, &str) = (
    "Too Many Requests",
    "You have been rate limited. Please wait until the time given in X-RateLimit-Retry-After.",
);
/// What [`Fault::BadGateway`] answers (HTTP 502, `text/html`).
pub const BAD_GATEWAY_HTML: &str = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";
/// What [`Fault::Maintenance`] answers (HTTP 503, `text/html`).
pub const MAINTENANCE_HTML: &str = "<!DOCTYPE html>\n<html><head><title>MangaDex - Maintenance</title></head>\n<body><h1>MangaDex is currently under maintenance</h1><p>We will be back shortly.</p></body></html>\n";
/// What [`Fault::MalformedJson`] answers on the API (HTTP 200, `application/json`).
pub const MALFORMED_JSON_BODY: &str = r#"{"result":"ok","statuses":{"b019ea5d-5fe6-44d4-abb"#;
/// What [`Fault::MalformedJson`] answers on the token endpoint.
pub const MALFORMED_TOKEN_BODY: &str = r#"{"access_token":"eyJhbGciOiJSUzI1NiIsInR5cCIgOiAiSldU"#;
/// The site key [`Fault::CaptchaRequired`] sends in `X-Captcha-Sitekey`.
pub const CAPTCHA_SITEKEY: &str = "6LcQ2iQeAAAAAKwAG6lN3mEyhuM-JgROm0mxkD7e";

/// The largest `POST /manga/{id}/read` body taken: "The size of the body is limited to 10KB"
/// (MangaDex's OpenAPI spec), read as 10,000 bytes, the stricter of the two readings (about 256
/// chapter UUIDs).
pub const READ_BODY_LIMIT: usize = 10_000;

const JSON_CT: &str = "application/json";
const DEFAULT_CONTENT_RATINGS: [&str; 3] = ["safe", "suggestive", "erotica"];
const INCLUDES: [&str; 10] = [
    "manga",
    "chapter",
    "cover_art",
    "author",
    "artist",
    "scanlation_group",
    "tag",
    "user",
    "custom_list",
    "creator",
];
/// How early (in tokens) a request may come before the bucket refills: a client
/// pacing at exactly the limit is not refused for a few ms of jitter.
const RATE_SLACK: f64 = 0.15;
/// Timestamps of catalogue entries start here (2021-04-19T21:59:45Z).
const EPOCH_2021: i64 = 1_618_869_585;

// ---------------------------------------------------------------------------
// Public value types
// ---------------------------------------------------------------------------

/// A title in the catalogue. Build with [`Manga::new`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manga {
    /// UUID.
    pub id: String,
    /// `title`: language → title (usually one entry).
    pub title: Vec<(String, String)>,
    /// `altTitles`: each a one-entry map.
    pub alt_titles: Vec<(String, String)>,
    /// `description`: language → text (`{}` when empty).
    pub description: Vec<(String, String)>,
    /// `ongoing`, `completed`, `hiatus`, `cancelled`.
    pub status: String,
    /// `None` → `null`; `Some("")` → `""` (both happen).
    pub last_volume: Option<String>,
    pub last_chapter: Option<String>,
    /// `safe`, `suggestive`, `erotica`, `pornographic`.
    pub content_rating: String,
    pub original_language: String,
    /// `shounen`, `shoujo`, `josei`, `seinen` or `None`.
    pub publication_demographic: Option<String>,
    pub year: Option<u32>,
    /// Cover file name (`cover_art.attributes.fileName`); `None` → no cover relationship.
    pub cover_file: Option<String>,
    /// The cover_art relationship id.
    pub cover_id: String,
    pub author_id: String,
    pub author_name: String,
    /// `(id, name)` of the artist when someone else drew it; `None`: the author did (the
    /// `artist` relationship names the author).
    pub artist: Option<(String, String)>,
    /// `(name, group)`: `genre`, `theme`, `format`, `content`.
    pub tags: Vec<(String, String)>,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: u32,
}

impl Manga {
    /// An ongoing, safe, Japanese manga with `title` in English and no cover.
    /// Panics unless `id` is a UUID.
    pub fn new(id: &str, title: &str) -> Manga {
        assert!(is_uuid(id), "FakeMangadex: manga id {id:?} is not a UUID");
        Manga {
            id: id.to_ascii_lowercase(),
            title: vec![("en".to_string(), title.to_string())],
            alt_titles: Vec::new(),
            description: Vec::new(),
            status: "ongoing".to_string(),
            last_volume: None,
            last_chapter: None,
            content_rating: "safe".to_string(),
            original_language: "ja".to_string(),
            publication_demographic: None,
            year: None,
            cover_file: None,
            cover_id: uuid(),
            author_id: uuid(),
            author_name: "Some Author".to_string(),
            artist: None,
            tags: Vec::new(),
            created_at: EPOCH_2021,
            updated_at: EPOCH_2021 + 86_400,
            version: 1,
        }
    }

    /// Replaces the title map by `{lang: title}`.
    pub fn title_in(mut self, lang: &str, title: &str) -> Manga {
        self.title = vec![(lang.to_string(), title.to_string())];
        self
    }

    /// Adds `{lang: title}` to `altTitles`.
    pub fn alt_title(mut self, lang: &str, title: &str) -> Manga {
        self.alt_titles.push((lang.to_string(), title.to_string()));
        self
    }

    pub fn description(mut self, lang: &str, text: &str) -> Manga {
        self.description.push((lang.to_string(), text.to_string()));
        self
    }

    /// `ongoing`, `completed`, `hiatus`, `cancelled`.
    pub fn status(mut self, status: &str) -> Manga {
        self.status = status.to_string();
        self
    }

    /// `lastChapter` (`""` is served as `""`).
    pub fn last_chapter(mut self, chapter: &str) -> Manga {
        self.last_chapter = Some(chapter.to_string());
        self
    }

    pub fn last_volume(mut self, volume: &str) -> Manga {
        self.last_volume = Some(volume.to_string());
        self
    }

    /// `safe`, `suggestive`, `erotica`, `pornographic`.
    pub fn content_rating(mut self, rating: &str) -> Manga {
        self.content_rating = rating.to_string();
        self
    }

    /// The cover's file name (`{uuid}.jpg` on MangaDex).
    pub fn cover(mut self, file_name: &str) -> Manga {
        self.cover_file = Some(file_name.to_string());
        self
    }

    pub fn original_language(mut self, lang: &str) -> Manga {
        self.original_language = lang.to_string();
        self
    }

    pub fn demographic(mut self, demographic: &str) -> Manga {
        self.publication_demographic = Some(demographic.to_string());
        self
    }

    pub fn year(mut self, year: u32) -> Manga {
        self.year = Some(year);
        self
    }

    pub fn author(mut self, name: &str) -> Manga {
        self.author_name = name.to_string();
        self
    }

    /// An artist who is not the author.
    pub fn artist(mut self, name: &str) -> Manga {
        self.artist = Some((uuid(), name.to_string()));
        self
    }

    /// A tag `(name, group)`; group is `genre`, `theme`, `format` or `content`.
    pub fn tag(mut self, name: &str, group: &str) -> Manga {
        self.tags.push((name.to_string(), group.to_string()));
        self
    }

    fn all_titles(&self) -> impl Iterator<Item = &str> {
        self.title
            .iter()
            .chain(self.alt_titles.iter())
            .map(|(_, t)| t.as_str())
    }
}

/// An upload of a chapter (with its alternative uploads, `others`). Build with
/// [`Chapter::new`]; add with [`FakeMangadex::add_chapters`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chapter {
    /// UUID.
    pub id: String,
    /// Filled by [`FakeMangadex::add_chapters`].
    pub manga_id: String,
    /// `None` → `null` (aggregate key "none").
    pub volume: Option<String>,
    /// `None` → `null` (aggregate key "none"); may be fractional ("10.5").
    pub chapter: Option<String>,
    pub title: Option<String>,
    /// `translatedLanguage` (default `en`).
    pub language: String,
    /// Alternative uploads of the same chapter (same volume, number and
    /// language); each becomes a chapter of its own.
    pub others: Vec<String>,
    pub pages: u32,
    pub external_url: Option<String>,
    pub published_at: i64,
}

impl Chapter {
    /// An English upload. Panics unless `id` is a UUID.
    pub fn new(id: &str, volume: Option<&str>, chapter: Option<&str>) -> Chapter {
        assert!(is_uuid(id), "FakeMangadex: chapter id {id:?} is not a UUID");
        Chapter {
            id: id.to_ascii_lowercase(),
            manga_id: String::new(),
            volume: volume.map(str::to_string),
            chapter: chapter.map(str::to_string),
            title: None,
            language: "en".to_string(),
            others: Vec::new(),
            pages: 16,
            external_url: None,
            published_at: 0,
        }
    }

    /// `translatedLanguage`.
    pub fn language(mut self, lang: &str) -> Chapter {
        self.language = lang.to_string();
        self
    }

    /// Alternative uploads (UUIDs) of the same chapter.
    pub fn others(mut self, ids: &[&str]) -> Chapter {
        for id in ids {
            assert!(is_uuid(id), "FakeMangadex: chapter id {id:?} is not a UUID");
        }
        self.others = ids.iter().map(|s| s.to_ascii_lowercase()).collect();
        self
    }

    pub fn title(mut self, title: &str) -> Chapter {
        self.title = Some(title.to_string());
        self
    }

    /// An external chapter (`externalUrl`, no pages).
    pub fn external(mut self, url: &str) -> Chapter {
        self.external_url = Some(url.to_string());
        self.pages = 0;
        self
    }
}

/// A token pair as the token endpoint hands it out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
    /// `session_state`.
    pub session: String,
}

/// An injected failure (see [`FakeMangadex::fail_next`] / [`FakeMangadex::fail_next_auth`]).
#[derive(Clone, Debug)]
pub enum Fault {
    /// HTTP 500 with the error shape (token endpoint: `{"error":"unknown_error"}`).
    ServerError,
    /// HTTP 502, an nginx HTML page, no rate-limit headers.
    BadGateway,
    /// HTTP 200 `application/json`, a truncated body.
    MalformedJson,
    /// HTTP 503, an HTML maintenance page ([`MAINTENANCE_HTML`]), no rate-limit headers.
    Maintenance,
    /// HTTP 429 with `X-RateLimit-Retry-After: retry_at` (Unix seconds) and the
    /// error shape, whatever the real limiter says.
    TooManyRequests { retry_at: i64 },
    /// HTTP 403 `captcha_required_exception` with `X-Captcha-Sitekey`.
    CaptchaRequired,
    /// Waits this long, then answers normally.
    Delay(Duration),
    /// Anything: status, content type, body, extra headers.
    Raw {
        status: u16,
        content_type: String,
        body: String,
        headers: Vec<(String, String)>,
    },
}

/// One HTTP request (covers excepted), in arrival order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Req {
    pub method: String,
    pub path: String,
    /// Raw query string without `?` (`""` if none).
    pub query: String,
    /// Body as received (lossy UTF-8).
    pub body: String,
    /// Was there an `Authorization` header?
    pub auth: bool,
    /// The Bearer token, if the header was `Bearer …`.
    pub bearer: Option<String>,
    /// `Content-Type` as sent.
    pub content_type: Option<String>,
    /// HTTP status answered.
    pub status: u16,
}

impl Req {
    /// Query pairs, percent-decoded (`ids[]` keys kept as sent, decoded).
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        parse_urlencoded(&self.query)
    }

    /// Values of an array parameter (`name[]=…`).
    pub fn query_array(&self, name: &str) -> Vec<String> {
        let key = format!("{name}[]");
        self.query_pairs()
            .into_iter()
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| v)
            .collect()
    }

    /// The body as JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.body).ok()
    }

    /// The body as a form.
    pub fn form(&self) -> Vec<(String, String)> {
        parse_urlencoded(&self.body)
    }

    /// A request to the token endpoint?
    pub fn is_token(&self) -> bool {
        self.path.starts_with(REALM_PATH)
    }

    /// `grant_type` of a token request.
    pub fn grant_type(&self) -> Option<String> {
        first(&self.form(), "grant_type").map(str::to_string)
    }
}

// ---------------------------------------------------------------------------
// JSON out: ordered, with PHP's array/list rule
// ---------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq)]
enum J {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
    List(Vec<J>),
    /// Always an object (`{}` when empty).
    Obj(Vec<(String, J)>),
    /// A PHP array: a list when its keys are "0".."n-1" in order (`[]` when empty).
    Php(Vec<(String, J)>),
}

impl J {
    fn s(s: impl Into<String>) -> J {
        J::Str(s.into())
    }

    fn opt(s: Option<&str>) -> J {
        s.map_or(J::Null, J::s)
    }

    fn obj(pairs: Vec<(&str, J)>) -> J {
        J::Obj(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }

    fn map(pairs: &[(String, String)]) -> J {
        J::Obj(pairs.iter().map(|(k, v)| (k.clone(), J::s(v))).collect())
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
            J::Str(s) => write_str(s, out),
            J::List(items) => write_list(items.iter(), out),
            J::Obj(pairs) => write_obj(pairs, out),
            J::Php(pairs) => {
                if php_is_list(pairs) {
                    write_list(pairs.iter().map(|(_, v)| v), out);
                } else {
                    write_obj(pairs, out);
                }
            }
        }
    }

    fn text(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }
}

fn write_list<'a>(items: impl Iterator<Item = &'a J>, out: &mut String) {
    out.push('[');
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        item.write(out);
    }
    out.push(']');
}

fn write_obj(pairs: &[(String, J)], out: &mut String) {
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

/// PHP's `array_is_list`: keys exactly 0, 1, …, n-1 in that order (numeric
/// strings like "0" are integer keys in PHP; "01" or "1.5" are not).
fn php_is_list(pairs: &[(String, J)]) -> bool {
    pairs
        .iter()
        .enumerate()
        .all(|(i, (k, _))| *k == i.to_string())
}

fn write_str(s: &str, out: &mut String) {
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string()));
}

/// The error body: `{"result":"error","errors":[{"id","status","title","detail","context"}]}`.
pub fn error_body(status: u16, title: &str, detail: &str) -> String {
    J::obj(vec![
        ("result", J::s("error")),
        (
            "errors",
            J::List(vec![J::obj(vec![
                ("id", J::s(uuid())),
                ("status", J::Int(i64::from(status))),
                ("title", J::s(title)),
                ("detail", J::s(detail)),
                ("context", J::Null),
            ])]),
        ),
    ])
    .text()
}

fn ok_body() -> String {
    r#"{"result":"ok"}"#.to_string()
}

// ---------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------

struct User {
    id: String,
    password: String,
}

struct Client {
    secret: String,
    owner: String,
    approved: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Access,
    Refresh,
}

struct Tok {
    kind: Kind,
    username: String,
    client_id: String,
    session: String,
    exp: i64,
}

struct Session {
    active: bool,
    current_refresh: String,
}

struct Rate {
    per_second: u32,
    enabled: bool,
    tokens: f64,
    last: Option<Instant>,
}

struct RateHeaders {
    limit: u32,
    remaining: u32,
    retry_after: i64,
}

impl Rate {
    fn new() -> Rate {
        Rate {
            per_second: 5,
            enabled: true,
            tokens: 5.0,
            last: None,
        }
    }

    /// Counts one request: the headers to send, or the epoch to retry at.
    fn check(&mut self) -> Result<RateHeaders, (u32, i64)> {
        let limit = self.per_second.max(1);
        let cap = f64::from(limit);
        let now = Instant::now();
        self.tokens = match self.last {
            None => cap,
            Some(last) => (self.tokens + (now - last).as_secs_f64() * cap).min(cap),
        };
        self.last = Some(now);
        let epoch = unix_now_f64();
        if self.enabled && self.tokens < 1.0 - RATE_SLACK {
            let wait = (1.0 - RATE_SLACK - self.tokens) / cap;
            return Err((limit, (epoch + wait).ceil() as i64));
        }
        if self.enabled {
            // May go a little negative (the slack); the long-run rate stays the limit.
            self.tokens -= 1.0;
        }
        Ok(RateHeaders {
            limit,
            remaining: self.tokens.max(0.0).floor() as u32,
            retry_after: (epoch + (cap - self.tokens).max(0.0) / cap).ceil() as i64,
        })
    }
}

struct Failure {
    /// Requests still answered normally before this failure starts.
    skip: usize,
    remaining: usize,
    fault: Fault,
}

struct UserData {
    /// Reading statuses in the order they were first set.
    statuses: Vec<(String, String)>,
    /// Read chapter ids per manga, in the order they were marked.
    read: Vec<(String, Vec<String>)>,
}

impl UserData {
    fn new() -> UserData {
        UserData {
            statuses: Vec::new(),
            read: Vec::new(),
        }
    }

    fn set_status(&mut self, manga: &str, status: Option<&str>) {
        match status {
            None => self.statuses.retain(|(m, _)| m != manga),
            Some(s) => match self.statuses.iter_mut().find(|(m, _)| m == manga) {
                Some(entry) => entry.1 = s.to_string(),
                None => self.statuses.push((manga.to_string(), s.to_string())),
            },
        }
    }

    fn status(&self, manga: &str) -> Option<String> {
        self.statuses
            .iter()
            .find(|(m, _)| m == manga)
            .map(|(_, s)| s.clone())
    }

    fn markers(&self, manga: &str) -> Vec<String> {
        self.read
            .iter()
            .find(|(m, _)| m == manga)
            .map(|(_, ids)| ids.clone())
            .unwrap_or_default()
    }

    fn mark(&mut self, manga: &str, read: &[String], unread: &[String]) {
        let pos = match self.read.iter().position(|(m, _)| m == manga) {
            Some(p) => p,
            None => {
                self.read.push((manga.to_string(), Vec::new()));
                self.read.len() - 1
            }
        };
        let ids = &mut self.read[pos].1;
        for id in read {
            if !ids.contains(id) {
                ids.push(id.clone());
            }
        }
        ids.retain(|id| !unread.contains(id));
        if ids.is_empty() {
            self.read.remove(pos);
        }
    }
}

/// Chapter key → upload ids, in insertion order (one volume of the aggregate).
type ChapterGroups = Vec<(String, Vec<String>)>;

struct World {
    base: String,
    users: HashMap<String, User>,
    clients: HashMap<String, Client>,
    data: HashMap<String, UserData>,
    manga: Vec<Manga>,
    chapters: Vec<Chapter>,
    tokens: HashMap<String, Tok>,
    sessions: HashMap<String, Session>,
    rotation: bool,
    access_lifetime: i64,
    refresh_lifetime: i64,
    clock_offset: i64,
    last_issued: Option<Tokens>,
    rate: Rate,
    faults: VecDeque<Failure>,
    auth_faults: VecDeque<Failure>,
    latency: Duration,
    requests: Vec<Req>,
    images: Vec<String>,
    group_id: String,
    uploader_id: String,
    next_chapter_time: i64,
}

impl World {
    fn new(base: String) -> World {
        let mut users = HashMap::new();
        users.insert(
            DEFAULT_USERNAME.to_string(),
            User {
                id: uuid(),
                password: DEFAULT_PASSWORD.to_string(),
            },
        );
        let mut clients = HashMap::new();
        clients.insert(
            CLIENT_ID.to_string(),
            Client {
                secret: CLIENT_SECRET.to_string(),
                owner: DEFAULT_USERNAME.to_string(),
                approved: true,
            },
        );
        let mut data = HashMap::new();
        data.insert(DEFAULT_USERNAME.to_string(), UserData::new());
        World {
            base,
            users,
            clients,
            data,
            manga: Vec::new(),
            chapters: Vec::new(),
            tokens: HashMap::new(),
            sessions: HashMap::new(),
            rotation: true,
            access_lifetime: ACCESS_LIFETIME,
            refresh_lifetime: REFRESH_LIFETIME,
            clock_offset: 0,
            last_issued: None,
            rate: Rate::new(),
            faults: VecDeque::new(),
            auth_faults: VecDeque::new(),
            latency: Duration::ZERO,
            requests: Vec::new(),
            images: Vec::new(),
            group_id: uuid(),
            uploader_id: uuid(),
            next_chapter_time: EPOCH_2021 + 30 * 86_400,
        }
    }

    /// The fake's clock (Unix seconds): real time plus [`FakeMangadex::advance_clock`].
    fn now(&self) -> i64 {
        unix_now() + self.clock_offset
    }

    fn user_data(&mut self, username: &str) -> &mut UserData {
        self.data
            .entry(username.to_string())
            .or_insert_with(UserData::new)
    }

    fn manga_by_id(&self, id: &str) -> Option<&Manga> {
        self.manga.iter().find(|m| m.id == id)
    }

    fn chapter_by_id(&self, id: &str) -> Option<&Chapter> {
        self.chapters.iter().find(|c| c.id == id)
    }

    fn chapters_of<'a>(&'a self, manga: &'a str) -> impl Iterator<Item = &'a Chapter> + 'a {
        self.chapters.iter().filter(move |c| c.manga_id == manga)
    }

    /// Starts a session and mints its first pair.
    fn login(&mut self, username: &str, client_id: &str) -> Tokens {
        let session = uuid();
        let tokens = self.mint(username, client_id, &session);
        self.sessions.insert(
            session,
            Session {
                active: true,
                current_refresh: tokens.refresh.clone(),
            },
        );
        tokens
    }

    fn mint(&mut self, username: &str, client_id: &str, session: &str) -> Tokens {
        let now = self.now();
        let sub = self.users.get(username).map_or_else(uuid, |u| u.id.clone());
        let iss = format!("{}/realms/mangadex", self.base);
        let access = make_jwt(
            "RS256",
            &format!(
                r#"{{"exp":{},"iat":{now},"jti":"{}","iss":"{iss}","aud":"account","sub":"{sub}","typ":"Bearer","azp":"{client_id}","session_state":"{session}","scope":"groups email profile","sid":"{session}","email_verified":true,"preferred_username":"{username}"}}"#,
                now + self.access_lifetime,
                uuid()
            ),
        );
        let refresh = make_jwt(
            "HS512",
            &format!(
                r#"{{"exp":{},"iat":{now},"jti":"{}","iss":"{iss}","aud":"{iss}","sub":"{sub}","typ":"Refresh","azp":"{client_id}","session_state":"{session}","scope":"groups email profile","sid":"{session}"}}"#,
                now + self.refresh_lifetime,
                uuid()
            ),
        );
        for (token, kind, life) in [
            (&access, Kind::Access, self.access_lifetime),
            (&refresh, Kind::Refresh, self.refresh_lifetime),
        ] {
            self.tokens.insert(
                token.clone(),
                Tok {
                    kind,
                    username: username.to_string(),
                    client_id: client_id.to_string(),
                    session: session.to_string(),
                    exp: now + life,
                },
            );
        }
        let tokens = Tokens {
            access,
            refresh,
            session: session.to_string(),
        };
        self.last_issued = Some(tokens.clone());
        tokens
    }

    fn token_body(&self, t: &Tokens) -> String {
        J::obj(vec![
            ("access_token", J::s(t.access.as_str())),
            ("expires_in", J::Int(self.access_lifetime)),
            ("refresh_expires_in", J::Int(self.refresh_lifetime)),
            ("refresh_token", J::s(t.refresh.as_str())),
            ("token_type", J::s("Bearer")),
            ("not-before-policy", J::Int(0)),
            ("session_state", J::s(t.session.as_str())),
            ("scope", J::s("groups email profile")),
            ("client_type", J::s("personal")),
        ])
        .text()
    }

    /// The user a Bearer header stands for; `Err` when malformed, unknown, expired or revoked.
    fn bearer_user(&self, header: &str) -> Result<String, ()> {
        let token = bearer_of(header).ok_or(())?;
        let t = self.tokens.get(token).ok_or(())?;
        let live = t.kind == Kind::Access
            && t.exp > self.now()
            && self.sessions.get(&t.session).is_some_and(|s| s.active)
            && self.users.contains_key(&t.username);
        if live {
            Ok(t.username.clone())
        } else {
            Err(())
        }
    }

    // -- token endpoint ---------------------------------------------------------

    fn token_endpoint(&mut self, headers: &HeaderMap, body: &[u8]) -> (u16, String) {
        let is_form = header_str(headers, header::CONTENT_TYPE).is_some_and(|ct| {
            ct.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
        let form = if is_form {
            parse_urlencoded(&String::from_utf8_lossy(body))
        } else {
            Vec::new()
        };
        let f = |k: &str| first(&form, k).map(str::to_string);
        let Some(grant) = f("grant_type") else {
            return (400, MISSING_GRANT_TYPE_BODY.to_string());
        };
        if !matches!(
            grant.as_str(),
            "password" | "refresh_token" | "authorization_code" | "client_credentials"
        ) {
            return (400, UNSUPPORTED_GRANT_TYPE_BODY.to_string());
        }
        // Client authentication: form parameters, or HTTP Basic.
        let basic = header_str(headers, header::AUTHORIZATION).and_then(|h| basic_of(&h));
        let client_id = f("client_id").or_else(|| basic.as_ref().map(|b| b.0.clone()));
        let secret = f("client_secret").or_else(|| basic.as_ref().map(|b| b.1.clone()));
        let Some(client_id) = client_id else {
            return (400, MISSING_CLIENT_ID_BODY.to_string());
        };
        let (owner, ok_secret) = match self.clients.get(&client_id) {
            None => return (401, INVALID_CLIENT_BODY.to_string()),
            Some(c) if !c.approved => return (401, INVALID_CLIENT_BODY.to_string()),
            Some(c) => (c.owner.clone(), c.secret.clone()),
        };
        if secret.as_deref() != Some(ok_secret.as_str()) {
            return (401, UNAUTHORIZED_CLIENT_BODY.to_string());
        }
        let mut seen = BTreeSet::new();
        if form.iter().any(|(k, _)| !seen.insert(k.as_str())) {
            return (400, DUPLICATED_PARAMETER_BODY.to_string());
        }
        match grant.as_str() {
            "password" => {
                let Some(username) = f("username") else {
                    return (401, MISSING_USERNAME_BODY.to_string());
                };
                let password = f("password").unwrap_or_default();
                let ok = self.users.get(&username).is_some_and(|u| u.password == password);
                if !ok || username != owner {
                    return (401, INVALID_USER_CREDENTIALS_BODY.to_string());
                }
                let tokens = self.login(&username, &client_id);
                (200, self.token_body(&tokens))
            }
            "refresh_token" => {
                let Some(refresh) = f("refresh_token") else {
                    return (400, NO_REFRESH_TOKEN_BODY.to_string());
                };
                match self.refresh(&refresh, &client_id) {
                    Ok(tokens) => (200, self.token_body(&tokens)),
                    Err(body) => (400, body.to_string()),
                }
            }
            "client_credentials" => (
                401,
                r#"{"error":"unauthorized_client","error_description":"Client not enabled to retrieve service account"}"#.to_string(),
            ),
            _ => match f("code") {
                None => (
                    400,
                    r#"{"error":"invalid_request","error_description":"Missing parameter: code"}"#
                        .to_string(),
                ),
                Some(_) => (
                    400,
                    r#"{"error":"invalid_grant","error_description":"Code not valid"}"#.to_string(),
                ),
            },
        }
    }

    /// A refresh grant for `client_id`: the new pair, or the 400 body.
    fn refresh(&mut self, refresh: &str, client_id: &str) -> Result<Tokens, &'static str> {
        let now = self.now();
        let (username, session) = match self.tokens.get(refresh) {
            Some(t) if t.kind == Kind::Refresh => {
                if t.client_id != client_id {
                    return Err(REFRESH_CLIENT_MISMATCH_BODY);
                }
                if t.exp <= now {
                    return Err(TOKEN_NOT_ACTIVE_BODY);
                }
                (t.username.clone(), t.session.clone())
            }
            _ => return Err(INVALID_REFRESH_TOKEN_BODY),
        };
        match self.sessions.get(&session) {
            Some(s) if s.active => {
                if self.rotation && s.current_refresh != refresh {
                    return Err(STALE_TOKEN_BODY);
                }
            }
            _ => return Err(SESSION_NOT_ACTIVE_BODY),
        }
        let tokens = self.mint(&username, client_id, &session);
        if let Some(s) = self.sessions.get_mut(&session) {
            s.current_refresh = tokens.refresh.clone();
        }
        Ok(tokens)
    }

    // -- API ----------------------------------------------------------------------

    fn api(
        &mut self,
        method: &Method,
        path: &str,
        query: &str,
        auth: Option<&str>,
        body: &[u8],
    ) -> (u16, String) {
        let q = parse_urlencoded(query);
        let viewer = match auth {
            None => None,
            Some(h) => match self.bearer_user(h) {
                Ok(u) => Some(u),
                Err(()) => return err(401, BAD_TOKEN.0, BAD_TOKEN.1),
            },
        };
        let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let route = |allowed: &[&str]| -> Option<(u16, String)> {
            if allowed.contains(&method.as_str()) {
                None
            } else {
                Some(err(
                    405,
                    "Method Not Allowed",
                    &format!(
                        "No route found for \"{method} {path}\": Method Not Allowed (Allow: {})",
                        allowed.join(", ")
                    ),
                ))
            }
        };
        let need_user = || -> Result<String, (u16, String)> {
            viewer
                .clone()
                .ok_or_else(|| err(401, NOT_LOGGED_IN.0, NOT_LOGGED_IN.1))
        };
        macro_rules! try_out {
            ($e:expr) => {
                match $e {
                    Ok(v) => v,
                    Err(out) => return out,
                }
            };
        }
        match segs.as_slice() {
            ["manga"] => {
                if let Some(out) = route(&["GET"]) {
                    return out;
                }
                self.manga_list(&q)
            }
            ["manga", "status"] => {
                if let Some(out) = route(&["GET"]) {
                    return out;
                }
                let user = try_out!(need_user());
                self.statuses(&user, &q)
            }
            ["manga", "read"] => {
                if let Some(out) = route(&["GET"]) {
                    return out;
                }
                let user = try_out!(need_user());
                self.read_batch(&user, &q)
            }
            ["manga", id] => {
                if let Some(out) = route(&["GET"]) {
                    return out;
                }
                let m = try_out!(self.find_manga(id));
                let includes = try_out!(array(&q, "includes"));
                try_out!(check_includes(&includes));
                let data = self.manga_entity(&m, &includes);
                (200, entity_body(data))
            }
            ["manga", id, "aggregate"] => {
                if let Some(out) = route(&["GET"]) {
                    return out;
                }
                let m = try_out!(self.find_manga(id));
                let langs = try_out!(array(&q, "translatedLanguage"));
                try_out!(check_languages("translatedLanguage", &langs));
                let _groups = try_out!(array(&q, "groups"));
                (200, self.aggregate(&m.id, &langs))
            }
            ["manga", id, "status"] => {
                if let Some(out) = route(&["GET", "POST"]) {
                    return out;
                }
                let user = try_out!(need_user());
                let m = try_out!(self.find_manga(id));
                if method == Method::GET {
                    let status = self.user_data(&user).status(&m.id);
                    let body = J::obj(vec![
                        ("result", J::s("ok")),
                        ("status", J::opt(status.as_deref())),
                    ]);
                    (200, body.text())
                } else {
                    self.post_status(&user, &m.id, body)
                }
            }
            ["manga", id, "read"] => {
                if let Some(out) = route(&["GET", "POST"]) {
                    return out;
                }
                let user = try_out!(need_user());
                let m = try_out!(self.find_manga(id));
                if method == Method::GET {
                    let ids = self.user_data(&user).markers(&m.id);
                    let body = J::obj(vec![("result", J::s("ok")), ("data", J::strs(&ids))]);
                    (200, body.text())
                } else {
                    self.post_read(&user, &m.id, body)
                }
            }
            ["chapter", id] => {
                if let Some(out) = route(&["GET"]) {
                    return out;
                }
                if !is_uuid(id) {
                    return err(
                        400,
                        "Bad Request",
                        &format!("Error validating /id: \"{id}\" is not a valid UUID"),
                    );
                }
                let id = id.to_ascii_lowercase();
                let Some(c) = self.chapter_by_id(&id).cloned() else {
                    return err(
                        404,
                        "Not Found",
                        &format!("Chapter with id {id} could not be found"),
                    );
                };
                let includes = try_out!(array(&q, "includes"));
                try_out!(check_includes(&includes));
                (200, entity_body(self.chapter_entity(&c, &includes)))
            }
            _ => err(
                404,
                "Not Found",
                &format!("No route found for \"{method} {path}\""),
            ),
        }
    }

    fn find_manga(&self, id: &str) -> Result<Manga, (u16, String)> {
        if !is_uuid(id) {
            return Err(err(
                400,
                "Bad Request",
                &format!("Error validating /id: \"{id}\" is not a valid UUID"),
            ));
        }
        let id = id.to_ascii_lowercase();
        self.manga_by_id(&id).cloned().ok_or_else(|| {
            err(
                404,
                "Not Found",
                &format!("Manga with id {id} could not be found"),
            )
        })
    }

    fn manga_list(&self, q: &[(String, String)]) -> (u16, String) {
        let parsed = (|| -> Result<_, (u16, String)> {
            let limit = match first(q, "limit") {
                None => 10,
                Some(s) => match s.parse::<i64>() {
                    Ok(n) if (1..=100).contains(&n) => n,
                    _ => return Err(err(400, INVALID_LIMIT.0, INVALID_LIMIT.1)),
                },
            };
            let offset = match first(q, "offset") {
                None => 0,
                Some(s) => match s.parse::<i64>() {
                    Ok(n) if n >= 0 => n,
                    _ => {
                        return Err(err(
                            400,
                            "Bad Request",
                            "Error validating /offset: Must have a minimum value of 0",
                        ));
                    }
                },
            };
            if offset + limit > 10_000 {
                return Err(err(
                    400,
                    "Bad Request",
                    "Collection size limit reached: offset + limit must be less than or equal to 10000",
                ));
            }
            let ids = array(q, "ids")?;
            if ids.len() > 100 {
                return Err(err(
                    400,
                    "Bad Request",
                    "Error validating /ids: There must be a maximum of 100 items in the array",
                ));
            }
            for (i, id) in ids.iter().enumerate() {
                if !is_uuid(id) {
                    return Err(err(
                        400,
                        "Bad Request",
                        &format!("Error validating /ids/{i}: \"{id}\" is not a valid UUID"),
                    ));
                }
            }
            let ratings = array(q, "contentRating")?;
            check_enum("contentRating", &ratings, &CONTENT_RATINGS)?;
            let statuses = array(q, "status")?;
            check_enum(
                "status",
                &statuses,
                &["ongoing", "completed", "hiatus", "cancelled"],
            )?;
            let includes = array(q, "includes")?;
            check_includes(&includes)?;
            Ok((limit, offset, ids, ratings, statuses, includes))
        })();
        let (limit, offset, ids, ratings, statuses, includes) = match parsed {
            Ok(p) => p,
            Err(out) => return out,
        };
        let ratings: Vec<String> = if ratings.is_empty() {
            DEFAULT_CONTENT_RATINGS
                .iter()
                .map(|s| s.to_string())
                .collect()
        } else {
            ratings
        };
        let ids: Vec<String> = ids.iter().map(|s| s.to_ascii_lowercase()).collect();
        let title = first(q, "title").map(str::to_lowercase);
        let found: Vec<&Manga> = self
            .manga
            .iter()
            .filter(|m| ids.is_empty() || ids.contains(&m.id))
            .filter(|m| ratings.contains(&m.content_rating))
            .filter(|m| statuses.is_empty() || statuses.contains(&m.status))
            .filter(|m| {
                title
                    .as_deref()
                    .is_none_or(|t| m.all_titles().any(|x| x.to_lowercase().contains(t)))
            })
            .collect();
        let total = found.len() as i64;
        let data: Vec<J> = found
            .into_iter()
            .skip(offset as usize)
            .take(limit as usize)
            .map(|m| self.manga_entity(m, &includes))
            .collect();
        let body = J::obj(vec![
            ("result", J::s("ok")),
            ("response", J::s("collection")),
            ("data", J::List(data)),
            ("limit", J::Int(limit)),
            ("offset", J::Int(offset)),
            ("total", J::Int(total)),
        ]);
        (200, body.text())
    }

    fn statuses(&mut self, user: &str, q: &[(String, String)]) -> (u16, String) {
        let filter = first(q, "status").map(str::to_string);
        if let Some(s) = &filter
            && !STATUSES.contains(&s.as_str())
        {
            return enum_error("status", &STATUSES);
        }
        let pairs: Vec<(String, J)> = self
            .user_data(user)
            .statuses
            .iter()
            .filter(|(_, s)| filter.as_ref().is_none_or(|f| f == s))
            .map(|(m, s)| (m.clone(), J::s(s.as_str())))
            .collect();
        let body = J::obj(vec![("result", J::s("ok")), ("statuses", J::Php(pairs))]);
        (200, body.text())
    }

    fn read_batch(&mut self, user: &str, q: &[(String, String)]) -> (u16, String) {
        let ids = match array(q, "ids") {
            Ok(ids) => ids,
            Err(out) => return out,
        };
        if ids.is_empty() {
            return err(
                400,
                "Bad Request",
                "Error validating /ids: The property ids is required",
            );
        }
        if let Some(bad) = ids.iter().find(|id| !is_uuid(id)) {
            return err(
                400,
                "Bad Request",
                &format!("Error validating /ids: \"{bad}\" is not a valid UUID"),
            );
        }
        let grouped = matches!(first(q, "grouped"), Some("true" | "1"));
        let data = self.user_data(user);
        let mut seen = BTreeSet::new();
        let per_manga: Vec<(String, Vec<String>)> = ids
            .iter()
            .map(|id| id.to_ascii_lowercase())
            .filter(|id| seen.insert(id.clone()))
            .map(|id| {
                let markers = data.markers(&id);
                (id, markers)
            })
            .filter(|(_, m)| !m.is_empty())
            .collect();
        let data = if grouped {
            J::Php(
                per_manga
                    .iter()
                    .map(|(m, ids)| (m.clone(), J::strs(ids)))
                    .collect(),
            )
        } else {
            J::strs(per_manga.iter().flat_map(|(_, ids)| ids.iter()))
        };
        (
            200,
            J::obj(vec![("result", J::s("ok")), ("data", data)]).text(),
        )
    }

    fn post_status(&mut self, user: &str, manga: &str, body: &[u8]) -> (u16, String) {
        if body.len() > 2048 {
            return err(400, "Bad Request", "Request body is too large");
        }
        let Some(v) = parse_json_object(body) else {
            return err(
                400,
                "Bad Request",
                "Invalid JSON body: an object is required",
            );
        };
        let status = match v.get("status") {
            None => {
                return err(
                    400,
                    "Bad Request",
                    "Error validating /status: The property status is required",
                );
            }
            Some(Value::Null) => None,
            Some(Value::String(s)) if STATUSES.contains(&s.as_str()) => Some(s.clone()),
            Some(_) => return enum_error("status", &STATUSES),
        };
        self.user_data(user).set_status(manga, status.as_deref());
        (200, ok_body())
    }

    fn post_read(&mut self, user: &str, manga: &str, body: &[u8]) -> (u16, String) {
        if body.len() > READ_BODY_LIMIT {
            return err(400, "Bad Request", "Request body is too large");
        }
        let Some(v) = parse_json_object(body) else {
            return err(
                400,
                "Bad Request",
                "Invalid JSON body: an object is required",
            );
        };
        let mut lists: [Vec<String>; 2] = [Vec::new(), Vec::new()];
        for (slot, key) in ["chapterIdsRead", "chapterIdsUnread"].iter().enumerate() {
            match v.get(*key) {
                None => {}
                Some(Value::Array(items)) => {
                    for (i, item) in items.iter().enumerate() {
                        let Some(id) = item.as_str().filter(|s| is_uuid(s)) else {
                            return err(
                                400,
                                "Bad Request",
                                &format!("Error validating /{key}/{i}: must be a chapter UUID"),
                            );
                        };
                        let id = id.to_ascii_lowercase();
                        if !self.chapters_of(manga).any(|c| c.id == id) {
                            return err(
                                400,
                                "Bad Request",
                                &format!(
                                    "Chapter {id} does not exist or does not belong to manga {manga}"
                                ),
                            );
                        }
                        lists[slot].push(id);
                    }
                }
                Some(_) => {
                    return err(
                        400,
                        "Bad Request",
                        &format!("Error validating /{key}: an array is required"),
                    );
                }
            }
        }
        let [read, unread] = lists;
        self.user_data(user).mark(manga, &read, &unread);
        (200, ok_body())
    }

    /// `GET /manga/{id}/aggregate`.
    fn aggregate(&self, manga: &str, langs: &[String]) -> String {
        // (volume key, [(chapter key, [upload ids])]) in insertion order first.
        let mut vols: Vec<(String, ChapterGroups)> = Vec::new();
        for c in self.chapters_of(manga) {
            if !langs.is_empty() && !langs.contains(&c.language) {
                continue;
            }
            let vk = c.volume.clone().unwrap_or_else(|| "none".to_string());
            let ck = c.chapter.clone().unwrap_or_else(|| "none".to_string());
            let vi = match vols.iter().position(|(k, _)| *k == vk) {
                Some(i) => i,
                None => {
                    vols.push((vk, Vec::new()));
                    vols.len() - 1
                }
            };
            let chs = &mut vols[vi].1;
            match chs.iter_mut().find(|(k, _)| *k == ck) {
                Some((_, ids)) => ids.push(c.id.clone()),
                None => chs.push((ck, vec![c.id.clone()])),
            }
        }
        vols.sort_by(|a, b| volume_order(&a.0, &b.0));
        let volumes: Vec<(String, J)> = vols
            .into_iter()
            .map(|(vk, mut chs)| {
                chs.sort_by(|a, b| chapter_order(&a.0, &b.0));
                let count: usize = chs.iter().map(|(_, ids)| ids.len()).sum();
                let chapters: Vec<(String, J)> = chs
                    .into_iter()
                    .map(|(ck, ids)| {
                        let n = ids.len();
                        let j = J::obj(vec![
                            ("chapter", J::s(ck.as_str())),
                            ("id", J::s(ids[0].as_str())),
                            ("others", J::strs(&ids[1..])),
                            ("count", J::Int(n as i64)),
                        ]);
                        (ck, j)
                    })
                    .collect();
                let j = J::obj(vec![
                    ("volume", J::s(vk.as_str())),
                    ("count", J::Int(count as i64)),
                    ("chapters", J::Php(chapters)),
                ]);
                (vk, j)
            })
            .collect();
        J::obj(vec![("result", J::s("ok")), ("volumes", J::Php(volumes))]).text()
    }

    // -- entities -------------------------------------------------------------------

    fn manga_attributes(&self, m: &Manga) -> J {
        let mut langs: Vec<String> = Vec::new();
        for c in self.chapters_of(&m.id) {
            if !langs.contains(&c.language) {
                langs.push(c.language.clone());
            }
        }
        let latest = self.chapters_of(&m.id).last().map(|c| c.id.clone());
        let tags = m
            .tags
            .iter()
            .map(|(name, group)| {
                J::obj(vec![
                    ("id", J::s(name_uuid(name))),
                    ("type", J::s("tag")),
                    (
                        "attributes",
                        J::obj(vec![
                            ("name", J::obj(vec![("en", J::s(name.as_str()))])),
                            ("description", J::Obj(Vec::new())),
                            ("group", J::s(group.as_str())),
                            ("version", J::Int(1)),
                        ]),
                    ),
                    ("relationships", J::List(Vec::new())),
                ])
            })
            .collect();
        J::obj(vec![
            ("title", J::map(&m.title)),
            (
                "altTitles",
                J::List(
                    m.alt_titles
                        .iter()
                        .map(|(l, t)| J::Obj(vec![(l.clone(), J::s(t.as_str()))]))
                        .collect(),
                ),
            ),
            ("description", J::map(&m.description)),
            ("isLocked", J::Bool(false)),
            ("links", J::Obj(Vec::new())),
            ("originalLanguage", J::s(m.original_language.as_str())),
            ("lastVolume", J::opt(m.last_volume.as_deref())),
            ("lastChapter", J::opt(m.last_chapter.as_deref())),
            (
                "publicationDemographic",
                J::opt(m.publication_demographic.as_deref()),
            ),
            ("status", J::s(m.status.as_str())),
            ("year", m.year.map_or(J::Null, |y| J::Int(i64::from(y)))),
            ("contentRating", J::s(m.content_rating.as_str())),
            ("tags", J::List(tags)),
            ("state", J::s("published")),
            ("chapterNumbersResetOnNewVolume", J::Bool(false)),
            ("createdAt", J::s(fmt_time(m.created_at))),
            ("updatedAt", J::s(fmt_time(m.updated_at))),
            ("version", J::Int(i64::from(m.version))),
            ("availableTranslatedLanguages", J::strs(&langs)),
            ("latestUploadedChapter", J::opt(latest.as_deref())),
        ])
    }

    fn manga_entity(&self, m: &Manga, includes: &[String]) -> J {
        let inc = |k: &str| includes.iter().any(|i| i == k);
        let creator = |kind: &str| {
            let (id, name) = match (&m.artist, kind) {
                (Some((id, name)), "artist") => (id.as_str(), name.as_str()),
                _ => (m.author_id.as_str(), m.author_name.as_str()),
            };
            let mut pairs = vec![("id", J::s(id)), ("type", J::s(kind))];
            if inc(kind) {
                pairs.push(("attributes", author_attributes(name)));
            }
            J::obj(pairs)
        };
        let mut rels = vec![creator("author"), creator("artist")];
        if let Some(file) = &m.cover_file {
            let mut pairs = vec![
                ("id", J::s(m.cover_id.as_str())),
                ("type", J::s("cover_art")),
            ];
            if inc("cover_art") {
                pairs.push((
                    "attributes",
                    J::obj(vec![
                        ("description", J::s("")),
                        (
                            "volume",
                            J::opt(m.last_volume.as_deref().filter(|v| !v.is_empty())),
                        ),
                        ("fileName", J::s(file.as_str())),
                        ("locale", J::s(m.original_language.as_str())),
                        ("createdAt", J::s(fmt_time(m.created_at))),
                        ("updatedAt", J::s(fmt_time(m.updated_at))),
                        ("version", J::Int(1)),
                    ]),
                ));
            }
            rels.push(J::obj(pairs));
        }
        J::obj(vec![
            ("id", J::s(m.id.as_str())),
            ("type", J::s("manga")),
            ("attributes", self.manga_attributes(m)),
            ("relationships", J::List(rels)),
        ])
    }

    fn chapter_entity(&self, c: &Chapter, includes: &[String]) -> J {
        let inc = |k: &str| includes.iter().any(|i| i == k);
        let published = fmt_time(c.published_at);
        let attrs = J::obj(vec![
            ("volume", J::opt(c.volume.as_deref())),
            ("chapter", J::opt(c.chapter.as_deref())),
            ("title", J::opt(c.title.as_deref())),
            ("translatedLanguage", J::s(c.language.as_str())),
            ("externalUrl", J::opt(c.external_url.as_deref())),
            ("isUnavailable", J::Bool(false)),
            ("publishAt", J::s(published.as_str())),
            ("readableAt", J::s(published.as_str())),
            ("createdAt", J::s(published.as_str())),
            ("updatedAt", J::s(published.as_str())),
            ("pages", J::Int(i64::from(c.pages))),
            ("version", J::Int(1)),
        ]);
        let mut group = vec![
            ("id", J::s(self.group_id.as_str())),
            ("type", J::s("scanlation_group")),
        ];
        if inc("scanlation_group") {
            group.push(("attributes", group_attributes(&c.language)));
        }
        let mut manga = vec![("id", J::s(c.manga_id.as_str())), ("type", J::s("manga"))];
        if inc("manga")
            && let Some(m) = self.manga_by_id(&c.manga_id)
        {
            manga.push(("attributes", self.manga_attributes(m)));
        }
        let mut user = vec![
            ("id", J::s(self.uploader_id.as_str())),
            ("type", J::s("user")),
        ];
        if inc("user") {
            user.push((
                "attributes",
                J::obj(vec![
                    ("username", J::s("uploader")),
                    (
                        "roles",
                        J::List(vec![J::s("ROLE_MEMBER"), J::s("ROLE_GROUP_MEMBER")]),
                    ),
                    ("version", J::Int(1)),
                ]),
            ));
        }
        J::obj(vec![
            ("id", J::s(c.id.as_str())),
            ("type", J::s("chapter")),
            ("attributes", attrs),
            (
                "relationships",
                J::List(vec![J::obj(group), J::obj(manga), J::obj(user)]),
            ),
        ])
    }
}

fn author_attributes(name: &str) -> J {
    let mut pairs = vec![
        ("name", J::s(name)),
        ("imageUrl", J::Null),
        ("biography", J::Obj(Vec::new())),
    ];
    for k in [
        "twitter",
        "pixiv",
        "melonBook",
        "fanBox",
        "booth",
        "namicomi",
        "nicoVideo",
        "skeb",
        "fantia",
        "tumblr",
        "youtube",
        "weibo",
        "naver",
        "website",
    ] {
        pairs.push((k, J::Null));
    }
    pairs.push(("createdAt", J::s(fmt_time(EPOCH_2021))));
    pairs.push(("updatedAt", J::s(fmt_time(EPOCH_2021))));
    pairs.push(("version", J::Int(1)));
    J::obj(pairs)
}

fn group_attributes(lang: &str) -> J {
    J::obj(vec![
        ("name", J::s("Fake Scans")),
        ("altNames", J::List(Vec::new())),
        ("locked", J::Bool(false)),
        ("website", J::Null),
        ("ircServer", J::Null),
        ("ircChannel", J::Null),
        ("discord", J::Null),
        ("contactEmail", J::Null),
        ("description", J::Null),
        ("twitter", J::Null),
        ("mangaUpdates", J::Null),
        ("focusedLanguages", J::List(vec![J::s(lang)])),
        ("official", J::Bool(false)),
        ("verified", J::Bool(false)),
        ("inactive", J::Bool(false)),
        ("publishDelay", J::Null),
        ("createdAt", J::s(fmt_time(EPOCH_2021))),
        ("updatedAt", J::s(fmt_time(EPOCH_2021))),
        ("version", J::Int(1)),
    ])
}

fn entity_body(data: J) -> String {
    J::obj(vec![
        ("result", J::s("ok")),
        ("response", J::s("entity")),
        ("data", data),
    ])
    .text()
}

fn err(status: u16, title: &str, detail: &str) -> (u16, String) {
    (status, error_body(status, title, detail))
}

fn enum_error(field: &str, values: &[&str]) -> (u16, String) {
    let list = values
        .iter()
        .map(|v| format!("\"{v}\""))
        .collect::<Vec<_>>()
        .join(",");
    err(
        400,
        "Bad Request",
        &format!("Error validating /{field}: Does not have a value in the enumeration [{list}]"),
    )
}

fn check_enum(field: &str, values: &[String], allowed: &[&str]) -> Result<(), (u16, String)> {
    for (i, v) in values.iter().enumerate() {
        if !allowed.contains(&v.as_str()) {
            return Err(enum_error(&format!("{field}/{i}"), allowed));
        }
    }
    Ok(())
}

/// MangaDex's language codes: `^[a-zA-Z\-]{2,5}$` (`en`, `pt-br`, `es-la`; not `es-419`). The
/// words are json-schema's (justinrainbow/json-schema, which also says "String value found, but
/// an array is required").
fn check_languages(field: &str, values: &[String]) -> Result<(), (u16, String)> {
    for (i, v) in values.iter().enumerate() {
        let ok =
            (2..=5).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-');
        if !ok {
            return Err(err(
                400,
                "Bad Request",
                &format!(
                    "Error validating /{field}/{i}: Does not match the regex pattern ^[a-zA-Z\\-]{{2,5}}$"
                ),
            ));
        }
    }
    Ok(())
}

fn check_includes(includes: &[String]) -> Result<(), (u16, String)> {
    check_enum("includes", includes, &INCLUDES)
}

/// Values of the array parameter `name` (`name[]=…` or `name[3]=…`, as PHP
/// reads them). A plain `name=…` is a string to PHP: 400.
fn array(q: &[(String, String)], name: &str) -> Result<Vec<String>, (u16, String)> {
    if q.iter().any(|(k, _)| k == name) {
        return Err(err(
            400,
            "Bad Request",
            &format!("Error validating /{name}: String value found, but an array is required"),
        ));
    }
    Ok(q.iter()
        .filter(|(k, _)| {
            k.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix('['))
                .and_then(|rest| rest.strip_suffix(']'))
                .is_some_and(|inner| inner.is_empty() || inner.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(|(_, v)| v.clone())
        .collect())
}

/// Volumes: numbers ascending, other names after, "none" last.
fn volume_order(a: &str, b: &str) -> std::cmp::Ordering {
    key_order(a, b, false)
}

/// Chapters inside a volume: numbers DESCENDING, other names after, "none" last.
fn chapter_order(a: &str, b: &str) -> std::cmp::Ordering {
    key_order(a, b, true)
}

fn key_order(a: &str, b: &str, descending: bool) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let rank = |k: &str| -> (u8, f64) {
        if k == "none" {
            (2, 0.0)
        } else {
            match k.parse::<f64>() {
                Ok(n) if n.is_finite() => (0, n),
                _ => (1, 0.0),
            }
        }
    };
    let (ra, na) = rank(a);
    let (rb, nb) = rank(b);
    ra.cmp(&rb).then_with(|| {
        if ra == 0 {
            let o = na.partial_cmp(&nb).unwrap_or(Ordering::Equal);
            if descending { o.reverse() } else { o }
        } else {
            a.cmp(b)
        }
    })
}

fn parse_json_object(body: &[u8]) -> Option<serde_json::Map<String, Value>> {
    match serde_json::from_slice::<Value>(body).ok()? {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

fn take_fault(queue: &mut VecDeque<Failure>) -> Option<Fault> {
    let front = queue.front_mut()?;
    if front.skip > 0 {
        front.skip -= 1;
        return None;
    }
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

fn first<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn header_str(headers: &HeaderMap, name: HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The token of `Bearer <token>` (scheme case-insensitive).
fn bearer_of(header: &str) -> Option<&str> {
    let (scheme, token) = header.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// `(client_id, secret)` of `Basic base64(id:secret)`.
fn basic_of(header: &str) -> Option<(String, String)> {
    let (scheme, creds) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let bytes = STANDARD.decode(creds.trim()).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
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
    Router::new().fallback(handle).with_state(app)
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

fn with_rate(mut resp: Response, limit: u32, remaining: u32, retry_after: i64) -> Response {
    set_header(&mut resp, "x-ratelimit-limit", &limit.to_string());
    set_header(&mut resp, "x-ratelimit-remaining", &remaining.to_string());
    set_header(
        &mut resp,
        "x-ratelimit-retry-after",
        &retry_after.to_string(),
    );
    resp
}

fn too_many(limit: u32, retry_at: i64) -> Response {
    with_rate(
        raw(
            429,
            JSON_CT,
            error_body(429, RATE_LIMITED.0, RATE_LIMITED.1),
        ),
        limit,
        0,
        retry_at,
    )
}

/// Every request: covers, the token endpoint, or the API.
async fn handle(
    State(app): State<App>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    if path.starts_with("/covers/") {
        app.world().images.push(path);
        return ([(header::CONTENT_TYPE, "image/png")], cover_png()).into_response();
    }
    let query = uri.query().unwrap_or("").to_string();
    let authorization = header_str(&headers, header::AUTHORIZATION);
    let resp = if let Some(rest) = path.strip_prefix(REALM_PATH) {
        auth_endpoint(&app, &method, rest, &headers, &body).await
    } else {
        api_endpoint(
            &app,
            &method,
            &path,
            &query,
            authorization.as_deref(),
            &body,
        )
        .await
    };
    let req = Req {
        method: method.to_string(),
        path,
        query,
        body: String::from_utf8_lossy(&body).into_owned(),
        auth: authorization.is_some(),
        bearer: authorization
            .as_deref()
            .and_then(bearer_of)
            .map(str::to_string),
        content_type: header_str(&headers, header::CONTENT_TYPE),
        status: resp.status().as_u16(),
    };
    app.world().requests.push(req);
    resp
}

async fn auth_endpoint(
    app: &App,
    method: &Method,
    rest: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let fault = take_fault(&mut app.world().auth_faults);
    match fault {
        None => {}
        Some(Fault::Delay(d)) => tokio::time::sleep(d).await,
        Some(f) => {
            let mut resp = match f {
                Fault::ServerError => raw(500, JSON_CT, r#"{"error":"unknown_error"}"#.to_string()),
                Fault::MalformedJson => raw(200, JSON_CT, MALFORMED_TOKEN_BODY.to_string()),
                Fault::TooManyRequests { retry_at } => too_many(5, retry_at),
                other => fault_response(other),
            };
            set_header(&mut resp, "cache-control", "no-store");
            return resp;
        }
    }
    if rest != "/token" {
        return raw(
            404,
            JSON_CT,
            r#"{"error":"Unable to find matching target resource method"}"#.to_string(),
        );
    }
    if method != Method::POST {
        return raw(
            405,
            JSON_CT,
            r#"{"error":"HTTP 405 Method Not Allowed"}"#.to_string(),
        );
    }
    let (status, text) = app.world().token_endpoint(headers, body);
    let mut resp = raw(status, JSON_CT, text);
    set_header(&mut resp, "cache-control", "no-store");
    set_header(&mut resp, "pragma", "no-cache");
    resp
}

/// A fault's answer (without rate-limit headers).
fn fault_response(f: Fault) -> Response {
    match f {
        Fault::ServerError => raw(
            500,
            JSON_CT,
            error_body(500, "Internal Server Error", "An unexpected error occurred"),
        ),
        Fault::BadGateway => raw(502, "text/html", BAD_GATEWAY_HTML.to_string()),
        Fault::MalformedJson => raw(200, JSON_CT, MALFORMED_JSON_BODY.to_string()),
        Fault::Maintenance => {
            let mut r = raw(
                503,
                "text/html; charset=UTF-8",
                MAINTENANCE_HTML.to_string(),
            );
            set_header(&mut r, "retry-after", "300");
            r
        }
        Fault::TooManyRequests { retry_at } => too_many(5, retry_at),
        Fault::CaptchaRequired => {
            let mut r = raw(
                403,
                JSON_CT,
                error_body(
                    403,
                    "captcha_required_exception",
                    "A captcha must be solved before this request can be made",
                ),
            );
            set_header(&mut r, "x-captcha-sitekey", CAPTCHA_SITEKEY);
            r
        }
        Fault::Raw {
            status,
            content_type,
            body,
            headers,
        } => {
            let mut r = raw(status, &content_type, body);
            for (k, v) in &headers {
                set_header(&mut r, k, v);
            }
            r
        }
        Fault::Delay(_) => raw(500, JSON_CT, ok_body()),
    }
}

async fn api_endpoint(
    app: &App,
    method: &Method,
    path: &str,
    query: &str,
    authorization: Option<&str>,
    body: &[u8],
) -> Response {
    let latency = app.world().latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let (rate, fault) = {
        let mut w = app.world();
        match w.rate.check() {
            Err((limit, retry_at)) => return too_many(limit, retry_at),
            Ok(h) => (h, take_fault(&mut w.faults)),
        }
    };
    match fault {
        None => {}
        Some(Fault::Delay(d)) => tokio::time::sleep(d).await,
        Some(f @ (Fault::BadGateway | Fault::Maintenance | Fault::Raw { .. })) => {
            return fault_response(f);
        }
        Some(Fault::TooManyRequests { retry_at }) => return too_many(rate.limit, retry_at),
        Some(f) => {
            return with_rate(
                fault_response(f),
                rate.limit,
                rate.remaining,
                rate.retry_after,
            );
        }
    }
    let (status, text) = app.world().api(method, path, query, authorization, body);
    with_rate(
        raw(status, JSON_CT, text),
        rate.limit,
        rate.remaining,
        rate.retry_after,
    )
}

// ---------------------------------------------------------------------------
// Small helpers: time, ids, JWT
// ---------------------------------------------------------------------------

fn unix_now_f64() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn unix_now() -> i64 {
    unix_now_f64().floor() as i64
}

/// `2022-04-19T15:37:14+00:00`.
fn fmt_time(secs: i64) -> String {
    jiff::Timestamp::from_second(secs)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S+00:00").to_string())
        .unwrap_or_default()
}

/// A random version-4 UUID.
pub fn uuid() -> String {
    let mut b: [u8; 16] = rand::rng().random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    uuid_of(&b)
}

fn uuid_of(b: &[u8; 16]) -> String {
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// A stable UUID-shaped id for a name (tags).
fn name_uuid(name: &str) -> String {
    let mut b = [0u8; 16];
    for (i, byte) in name.bytes().enumerate() {
        b[i % 16] = b[i % 16].wrapping_mul(31).wrapping_add(byte);
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    uuid_of(&b)
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (hex, any case).
pub fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// Decodes the payload of a JWT-shaped token (no signature check).
pub fn jwt_payload(token: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn make_jwt(alg: &str, payload: &str) -> String {
    let mut rng = rand::rng();
    let kid: String = (0..22)
        .map(|_| {
            let c = rng.random_range(0..62u8);
            match c {
                0..=25 => (b'A' + c) as char,
                26..=51 => (b'a' + c - 26) as char,
                _ => (b'0' + c - 52) as char,
            }
        })
        .collect();
    let header = format!(r#"{{"alg":"{alg}","typ":"JWT","kid":"{kid}"}}"#);
    let sig_len = if alg == "RS256" { 256 } else { 64 };
    let signature: Vec<u8> = (0..sig_len).map(|_| rng.random::<u8>()).collect();
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

// ---------------------------------------------------------------------------
// FakeMangadex
// ---------------------------------------------------------------------------

/// The fake server. Dropping it stops serving.
pub struct FakeMangadex {
    base: String,
    state: Arc<Mutex<World>>,
    net: Arc<Net>,
    shutdown: Option<oneshot::Sender<()>>,
    /// Only for `start_background`: stops the private runtime, then joined.
    background: Option<super::net::Background>,
}

impl FakeMangadex {
    /// Binds `127.0.0.1:0` and serves on the current tokio runtime. The world
    /// starts with user [`DEFAULT_USERNAME`] / [`DEFAULT_PASSWORD`] owning the
    /// approved client [`CLIENT_ID`] / [`CLIENT_SECRET`], no manga, no tokens.
    pub async fn start() -> FakeMangadex {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("FakeMangadex: bind 127.0.0.1:0");
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
        FakeMangadex {
            base,
            state,
            net,
            shutdown: Some(tx),
            background: None,
        }
    }

    /// Serves from a thread of its own with a private runtime, for sync
    /// `#[test]`s. Keeps serving until dropped.
    pub fn start_background() -> FakeMangadex {
        let (mut fake, background) =
            super::net::in_background("fake-mangadex", FakeMangadex::start);
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

    /// The API base, like `https://api.mangadex.org`: `http://127.0.0.1:PORT`.
    pub fn api_url(&self) -> String {
        self.base.clone()
    }

    /// Like `https://auth.mangadex.org/realms/mangadex/protocol/openid-connect`:
    /// `http://127.0.0.1:PORT/realms/mangadex/protocol/openid-connect`.
    pub fn auth_url(&self) -> String {
        format!("{}{REALM_PATH}", self.base)
    }

    /// `{auth_url}/token`.
    pub fn token_url(&self) -> String {
        format!("{}/token", self.auth_url())
    }

    /// Like `https://uploads.mangadex.org/covers`: `{base}/covers`
    /// (`{covers_url}/{manga id}/{fileName}[.256.jpg|.512.jpg]` answers a PNG).
    pub fn covers_url(&self) -> String {
        format!("{}/covers", self.base)
    }

    /// A `[mangadex]` table for the default user and client, pointing at the fake.
    pub fn config_toml(&self) -> String {
        format!(
            "[mangadex]\nclient_id = \"{CLIENT_ID}\"\nclient_secret = \"{CLIENT_SECRET}\"\nusername = \"{DEFAULT_USERNAME}\"\napi_url = \"{}\"\nauth_url = \"{}\"\nlanguages = [\"en\"]\n",
            self.api_url(),
            self.auth_url()
        )
    }

    // -- accounts and clients ----------------------------------------------------

    /// Adds (or replaces the password of) an account.
    pub fn add_user(&self, username: &str, password: &str) {
        let mut w = self.world();
        let id = w.users.get(username).map_or_else(uuid, |u| u.id.clone());
        w.users.insert(
            username.to_string(),
            User {
                id,
                password: password.to_string(),
            },
        );
        w.user_data(username);
    }

    /// The account's password changes (existing sessions live on).
    pub fn set_password(&self, username: &str, password: &str) {
        self.add_user(username, password);
    }

    /// Registers a personal client owned by `owner`; `approved: false` is a
    /// requested client staff have not approved yet (it cannot log in).
    pub fn add_client(&self, client_id: &str, secret: &str, owner: &str, approved: bool) {
        self.world().clients.insert(
            client_id.to_string(),
            Client {
                secret: secret.to_string(),
                owner: owner.to_string(),
                approved,
            },
        );
    }

    /// Approves or un-approves a client (panics if unknown).
    pub fn set_client_approved(&self, client_id: &str, approved: bool) {
        let mut w = self.world();
        let c = w
            .clients
            .get_mut(client_id)
            .unwrap_or_else(|| panic!("FakeMangadex: no client {client_id}"));
        c.approved = approved;
    }

    /// A new secret for a client ("Regenerate secret"; panics if unknown).
    pub fn set_client_secret(&self, client_id: &str, secret: &str) {
        let mut w = self.world();
        let c = w
            .clients
            .get_mut(client_id)
            .unwrap_or_else(|| panic!("FakeMangadex: no client {client_id}"));
        c.secret = secret.to_string();
    }

    // -- tokens ---------------------------------------------------------------------

    /// A fresh session for `username` with the default client, as a password
    /// grant would give (not logged as a request).
    pub fn issue_tokens(&self, username: &str) -> Tokens {
        self.world().login(username, CLIENT_ID)
    }

    /// Uses `refresh` as another process would (another malt, a script): the
    /// session rotates, so that token is stale afterwards. Returns the new pair,
    /// or the token endpoint's 400 body.
    pub fn refresh_elsewhere(&self, refresh: &str) -> Result<Tokens, String> {
        let mut w = self.world();
        let client = w
            .tokens
            .get(refresh)
            .map_or_else(|| CLIENT_ID.to_string(), |t| t.client_id.clone());
        w.refresh(refresh, &client).map_err(str::to_string)
    }

    /// The pair the token endpoint (or `issue_tokens`) handed out last.
    pub fn last_issued(&self) -> Option<Tokens> {
        self.world().last_issued.clone()
    }

    /// Every access token issued so far expires now.
    pub fn expire_access_tokens(&self) {
        let mut w = self.world();
        let now = w.now();
        for t in w.tokens.values_mut().filter(|t| t.kind == Kind::Access) {
            t.exp = t.exp.min(now);
        }
    }

    /// Every refresh token issued so far expires now ("Token is not active").
    pub fn expire_refresh_tokens(&self) {
        let mut w = self.world();
        let now = w.now();
        for t in w.tokens.values_mut().filter(|t| t.kind == Kind::Refresh) {
            t.exp = t.exp.min(now);
        }
    }

    /// Every session ends (logout everywhere): access tokens answer 401,
    /// refresh tokens "Session not active".
    pub fn revoke_sessions(&self) {
        for s in self.world().sessions.values_mut() {
            s.active = false;
        }
    }

    /// `expires_in` of tokens issued from now on (default 900).
    pub fn set_access_lifetime(&self, secs: i64) {
        self.world().access_lifetime = secs;
    }

    /// `refresh_expires_in` of tokens issued from now on (default 2,414,162).
    pub fn set_refresh_lifetime(&self, secs: i64) {
        self.world().refresh_lifetime = secs;
    }

    /// Keycloak's "Revoke Refresh Token" (default true): a refresh token works
    /// once; after use only the new one does. False: old ones keep working.
    pub fn set_rotation(&self, on: bool) {
        self.world().rotation = on;
    }

    /// Moves the fake's clock (token expiry) forward by `secs`.
    pub fn advance_clock(&self, secs: i64) {
        self.world().clock_offset += secs;
    }

    /// The fake's clock, Unix seconds.
    pub fn now(&self) -> i64 {
        self.world().now()
    }

    /// Is `token` an access token the API accepts right now?
    pub fn access_token_valid(&self, token: &str) -> bool {
        self.world().bearer_user(&format!("Bearer {token}")).is_ok()
    }

    /// Successful refresh grants so far.
    pub fn refresh_count(&self) -> usize {
        self.count_grants("refresh_token", true)
    }

    /// Successful password grants so far.
    pub fn login_count(&self) -> usize {
        self.count_grants("password", true)
    }

    fn count_grants(&self, grant: &str, ok: bool) -> usize {
        self.world()
            .requests
            .iter()
            .filter(|r| r.is_token() && r.grant_type().as_deref() == Some(grant))
            .filter(|r| (r.status == 200) == ok)
            .count()
    }

    // -- catalogue ------------------------------------------------------------------

    /// Adds (or replaces) a title.
    pub fn add_manga(&self, manga: Manga) {
        let mut w = self.world();
        match w.manga.iter_mut().find(|m| m.id == manga.id) {
            Some(m) => *m = manga,
            None => w.manga.push(manga),
        }
    }

    /// Edits a title (panics if unknown).
    pub fn edit_manga(&self, id: &str, f: impl FnOnce(&mut Manga)) {
        let mut w = self.world();
        let m = w
            .manga
            .iter_mut()
            .find(|m| m.id == id)
            .unwrap_or_else(|| panic!("FakeMangadex: no manga {id}"));
        f(m);
    }

    /// Removes a title and its chapters (read markers and statuses stay, as
    /// on a real deletion).
    pub fn remove_manga(&self, id: &str) {
        let mut w = self.world();
        w.manga.retain(|m| m.id != id);
        w.chapters.retain(|c| c.manga_id != id);
    }

    /// The title as stored.
    pub fn manga(&self, id: &str) -> Option<Manga> {
        self.world().manga_by_id(id).cloned()
    }

    /// Uploads chapters to a manga (panics if the manga is unknown or an id is
    /// taken); each `others` id becomes an upload of the same chapter.
    /// Uploads are timestamped in order; the last is `latestUploadedChapter`.
    pub fn add_chapters(&self, manga_id: &str, chapters: Vec<Chapter>) {
        let mut w = self.world();
        assert!(
            w.manga_by_id(manga_id).is_some(),
            "FakeMangadex: manga {manga_id} was never added"
        );
        for mut c in chapters {
            let mut uploads = vec![c.id.clone()];
            uploads.extend(c.others.iter().cloned());
            c.manga_id = manga_id.to_string();
            for id in uploads {
                assert!(
                    w.chapter_by_id(&id).is_none(),
                    "FakeMangadex: chapter {id} already exists"
                );
                let mut upload = c.clone();
                upload.id = id;
                upload.others = Vec::new();
                upload.published_at = w.next_chapter_time;
                w.next_chapter_time += 3_600;
                w.chapters.push(upload);
            }
        }
    }

    /// Uploads one chapter.
    pub fn add_chapter(&self, manga_id: &str, chapter: Chapter) {
        self.add_chapters(manga_id, vec![chapter]);
    }

    /// Deletes an upload (read markers stay).
    pub fn remove_chapter(&self, id: &str) {
        self.world().chapters.retain(|c| c.id != id);
    }

    /// A chapter (one upload) as stored.
    pub fn chapter(&self, id: &str) -> Option<Chapter> {
        self.world().chapter_by_id(id).cloned()
    }

    // -- the user's list, as the website would change it -----------------------------

    /// Sets (`Some`) or removes (`None`) the default user's reading status.
    pub fn set_status(&self, manga_id: &str, status: Option<&str>) {
        self.set_status_for(DEFAULT_USERNAME, manga_id, status);
    }

    pub fn set_status_for(&self, username: &str, manga_id: &str, status: Option<&str>) {
        if let Some(s) = status {
            assert!(STATUSES.contains(&s), "FakeMangadex: unknown status {s}");
        }
        self.world()
            .user_data(username)
            .set_status(manga_id, status);
    }

    /// The default user's reading status of a manga.
    pub fn status(&self, manga_id: &str) -> Option<String> {
        self.status_for(DEFAULT_USERNAME, manga_id)
    }

    pub fn status_for(&self, username: &str, manga_id: &str) -> Option<String> {
        self.world().user_data(username).status(manga_id)
    }

    /// All the default user's statuses, in the order first set.
    pub fn statuses(&self) -> Vec<(String, String)> {
        self.statuses_for(DEFAULT_USERNAME)
    }

    pub fn statuses_for(&self, username: &str) -> Vec<(String, String)> {
        self.world().user_data(username).statuses.clone()
    }

    /// Marks chapters read for the default user (no validation: the website
    /// can mark uploads the API no longer serves).
    pub fn mark_read(&self, manga_id: &str, chapter_ids: &[&str]) {
        self.mark_read_for(DEFAULT_USERNAME, manga_id, chapter_ids);
    }

    pub fn mark_read_for(&self, username: &str, manga_id: &str, chapter_ids: &[&str]) {
        let ids: Vec<String> = chapter_ids.iter().map(|s| s.to_string()).collect();
        self.world().user_data(username).mark(manga_id, &ids, &[]);
    }

    /// Marks chapters unread for the default user.
    pub fn mark_unread(&self, manga_id: &str, chapter_ids: &[&str]) {
        self.mark_unread_for(DEFAULT_USERNAME, manga_id, chapter_ids);
    }

    pub fn mark_unread_for(&self, username: &str, manga_id: &str, chapter_ids: &[&str]) {
        let ids: Vec<String> = chapter_ids.iter().map(|s| s.to_string()).collect();
        self.world().user_data(username).mark(manga_id, &[], &ids);
    }

    /// The default user's read chapter ids of a manga, in the order marked.
    pub fn read_markers(&self, manga_id: &str) -> Vec<String> {
        self.read_markers_for(DEFAULT_USERNAME, manga_id)
    }

    pub fn read_markers_for(&self, username: &str, manga_id: &str) -> Vec<String> {
        self.world().user_data(username).markers(manga_id)
    }

    /// The default user's read chapter ids of a manga, sorted (for set comparisons).
    pub fn read_set(&self, manga_id: &str) -> BTreeSet<String> {
        self.read_markers(manga_id).into_iter().collect()
    }

    // -- faults and limits ------------------------------------------------------------

    /// The next `n` API requests that pass the rate limiter answer `fault`.
    pub fn fail_next(&self, n: usize, fault: Fault) {
        self.fail_after(0, n, fault);
    }

    /// After `skip` API requests answered normally, the next `n` answer `fault` (a failure in
    /// the middle of a run of requests).
    pub fn fail_after(&self, skip: usize, n: usize, fault: Fault) {
        if n > 0 {
            self.world().faults.push_back(Failure {
                skip,
                remaining: n,
                fault,
            });
        }
    }

    /// The next `n` requests to the token endpoint answer `fault`.
    pub fn fail_next_auth(&self, n: usize, fault: Fault) {
        if n > 0 {
            self.world().auth_faults.push_back(Failure {
                skip: 0,
                remaining: n,
                fault,
            });
        }
    }

    /// The next `n` API requests answer 429 with `X-RateLimit-Retry-After: retry_at`.
    pub fn force_429(&self, n: usize, retry_at: i64) {
        self.fail_next(n, Fault::TooManyRequests { retry_at });
    }

    /// Drops queued faults.
    pub fn clear_faults(&self) {
        let mut w = self.world();
        w.faults.clear();
        w.auth_faults.clear();
    }

    /// Requests per second (bucket size and refill rate; default 5).
    pub fn set_rate_limit(&self, per_second: u32) {
        let mut w = self.world();
        w.rate.per_second = per_second.max(1);
        w.rate.enabled = true;
        w.rate.tokens = f64::from(w.rate.per_second);
        w.rate.last = None;
    }

    /// No 429 from the limiter (headers are still sent).
    pub fn disable_rate_limit(&self) {
        self.world().rate.enabled = false;
    }

    /// A full bucket again.
    pub fn reset_rate_limit(&self) {
        let mut w = self.world();
        w.rate.tokens = f64::from(w.rate.per_second);
        w.rate.last = None;
    }

    /// Delay before every API answer.
    pub fn set_latency(&self, d: Duration) {
        self.world().latency = d;
    }

    // -- logs -------------------------------------------------------------------------

    /// Every request but covers, in arrival order (token endpoint included).
    pub fn requests(&self) -> Vec<Req> {
        self.world().requests.clone()
    }

    /// API requests only.
    pub fn api_requests(&self) -> Vec<Req> {
        self.requests()
            .into_iter()
            .filter(|r| !r.is_token())
            .collect()
    }

    /// Token endpoint requests only.
    pub fn token_requests(&self) -> Vec<Req> {
        self.requests().into_iter().filter(Req::is_token).collect()
    }

    /// How many requests had this method and exact path.
    pub fn count(&self, method: &str, path: &str) -> usize {
        self.world()
            .requests
            .iter()
            .filter(|r| r.method == method && r.path == path)
            .count()
    }

    /// Paths of the cover requests.
    pub fn image_requests(&self) -> Vec<String> {
        self.world().images.clone()
    }

    /// Empties the logs.
    pub fn clear_logs(&self) {
        let mut w = self.world();
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

impl Drop for FakeMangadex {
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
