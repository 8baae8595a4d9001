//! AniList (GraphQL v2): the only module that knows AniList's address, documents and error shapes.
//!
//! - `query`: the GraphQL documents, the variables sent with them, and pure readers of answers;
//! - `login`: the authorize address, the code exchange, the JWT expiry;
//! - `pace`: the rate limit (at most 30 requests in any minute, pauses on 429).
//!
//! malt keys entries by the **media id**; AniList's own entry id is only looked up to delete an
//! entry. AniList tokens last a year and cannot be refreshed: the session here only loads the
//! stored token, notices when it has expired or was refused ("Invalid token"), and picks up a new
//! login made from another terminal.

mod login;
pub mod pace;
pub mod query;

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use jiff::tz::TimeZone;
use reqwest::Url;
use reqwest::header::ACCEPT;
use serde_json::{Value, json};

pub use login::{authorize_url, expires_at, finish_login, read_token_answer, token_expiry};

use self::pace::Pace;
use self::query::Viewer;
use super::{Details, Fetched, Found, Http, Provider, ProviderError, describe_transport};
use crate::auth::tokens::now_secs;
use crate::auth::{TokenFile, TokenSet};
use crate::config::AnilistConfig;
use crate::domain::{Ack, Change, ListState, MediaKind, ScoreFormat, Service};

/// Warn about the login's end this long before it.
pub const WARN_BEFORE_SECS: i64 = 14 * 24 * 3600;
/// The longest wait between two looks at the session.
const MAX_CHECK_SECS: i64 = 6 * 3600;
/// While the end of the login is being warned about, look at the token file this often (a new
/// login made elsewhere ends the warning).
const WARNING_CHECK_SECS: i64 = 300;
/// The shortest wait between two looks at the session.
const MIN_CHECK_SECS: i64 = 30;
/// The longest search query sent.
const MAX_QUERY_CHARS: usize = 100;

/// The stored login, as held by one [`Anilist`].
struct Held {
    tokens: Option<TokenSet>,
    /// The token set AniList refused or that expired, so that a new login (a changed file) can be
    /// told from the old one.
    refused: Option<TokenSet>,
    /// Counts the token sets taken up, so what was learnt with an older one (the account) is
    /// asked again.
    generation: u64,
}

/// An AniList session: the token file and the token taken from it. Nothing to refresh.
struct Session {
    file: TokenFile,
    held: Mutex<Held>,
}

impl Session {
    fn new(file: TokenFile) -> Session {
        Session {
            file,
            held: Mutex::new(Held {
                tokens: None,
                refused: None,
                generation: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The token to send and its generation: the held one, or the stored one when none is held
    /// (a stored set that was refused before is not taken again). An expired token is set aside.
    fn tokens(&self) -> Result<(TokenSet, u64), ProviderError> {
        let mut held = self.lock();
        if held.tokens.is_none() {
            match self.file.load()? {
                Some(stored) if held.refused.as_ref() != Some(&stored) => {
                    held.tokens = Some(stored);
                    held.refused = None;
                    held.generation += 1;
                }
                Some(_) => return Err(ProviderError::SessionExpired),
                None if held.refused.is_some() => return Err(ProviderError::SessionExpired),
                None => return Err(ProviderError::NotLoggedIn),
            }
        }
        let Some(tokens) = held.tokens.clone() else {
            return Err(ProviderError::NotLoggedIn);
        };
        if tokens.expires_at <= now_secs() {
            tracing::info!("the AniList login has expired");
            held.refused = held.tokens.take();
            return Err(ProviderError::SessionExpired);
        }
        Ok((tokens, held.generation))
    }

    /// AniList refused `access_token`: it is not sent again (a new login is waited for).
    fn refuse(&self, access_token: &str) {
        let mut held = self.lock();
        if held
            .tokens
            .as_ref()
            .is_some_and(|t| t.access_token == access_token)
        {
            tracing::warn!("AniList refused the token (Invalid token); a new login is needed");
            held.refused = held.tokens.take();
        }
    }

    /// Takes up a newer login from the file (made from another terminal while this one still
    /// works), so a warning about the old one's end goes away.
    fn adopt_newer(&self) -> Result<(), ProviderError> {
        let stored = self.file.load()?;
        let mut held = self.lock();
        if let (Some(stored), Some(current)) = (stored, held.tokens.as_ref())
            && stored != *current
            && held.refused.as_ref() != Some(&stored)
            && stored.expires_at > current.expires_at
        {
            tracing::info!("a newer AniList login was found; using it");
            held.tokens = Some(stored);
            held.generation += 1;
        }
        Ok(())
    }

    fn expires_at(&self) -> Option<i64> {
        self.lock().tokens.as_ref().map(|t| t.expires_at)
    }
}

/// Whether a request must carry the login.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Auth {
    /// The user's list: no login, no request.
    Required,
    /// Public data (search, details): with the login when there is one, without when not.
    Optional,
}

/// What a request brought back.
enum Answer {
    Data(Vec<u8>),
    /// AniList's 404 "Not Found.".
    NotFound,
}

impl Answer {
    /// The data; a 404 is the error `gone` makes.
    fn found(self, gone: impl FnOnce() -> ProviderError) -> Result<Vec<u8>, ProviderError> {
        match self {
            Answer::Data(body) => Ok(body),
            Answer::NotFound => Err(gone()),
        }
    }
}

fn no_longer_there() -> ProviderError {
    ProviderError::Rejected("AniList no longer has this title (404)".into())
}

/// A logged-in AniList account.
pub struct Anilist {
    http: Http,
    api: Url,
    session: Session,
    pace: Pace,
    /// Who is logged in and how they score, with the token generation it was learnt with.
    viewer: Mutex<Option<(u64, Viewer)>>,
    /// How many entries one list answer holds at most (see [`Anilist::with_collection_cap`]).
    collection_cap: usize,
}

/// AniList answers a whole list with its 11,000 most recently updated entries at most.
pub const COLLECTION_CAP: usize = 11_000;
/// Chunks fetched at most for one list (500 each).
const MAX_CHUNKS: u32 = 200;

impl Anilist {
    pub fn new(cfg: &AnilistConfig, http: Http, file: TokenFile) -> Anilist {
        Anilist {
            http,
            api: cfg.api_url.clone(),
            session: Session::new(file),
            pace: Pace::new(),
            viewer: Mutex::new(None),
            collection_cap: COLLECTION_CAP,
        }
    }

    /// A list answer this long may have been cut at AniList's cap: the list is then fetched again
    /// in chunks. [`COLLECTION_CAP`] unless a test server caps lower.
    pub fn with_collection_cap(mut self, cap: usize) -> Anilist {
        self.collection_cap = cap.max(1);
        self
    }

    /// The whole list in chunks of 500, each work once (a chunk that adds nothing new ends it,
    /// whatever `hasNextChunk` says).
    async fn fetch_chunked(
        &self,
        user_id: u64,
        kind: MediaKind,
        format: ScoreFormat,
        arrived: &(dyn Fn(usize) + Send + Sync),
    ) -> Result<query::Collection, ProviderError> {
        let mut all = query::Collection::default();
        let mut seen = std::collections::HashSet::new();
        for chunk in 1..=MAX_CHUNKS {
            let body = self
                .post(
                    query::LIST_CHUNK,
                    query::list_chunk_variables(user_id, kind, format, chunk),
                    Auth::Required,
                )
                .await?
                .found(|| {
                    ProviderError::BadResponse("AniList did not find your list (404)".into())
                })?;
            let part = query::parse_collection(&body, kind, format)?;
            let before = all.entries.len();
            all.unreadable += part.unreadable;
            all.entries
                .extend(part.entries.into_iter().filter(|e| seen.insert(e.id)));
            arrived(all.entries.len());
            if !part.has_next_chunk || all.entries.len() == before {
                break;
            }
        }
        Ok(all)
    }

    /// Sends one document with its variables, paced, and reads the status and errors of the
    /// answer. A refused token is set aside; public data is then asked for again without it.
    async fn post(&self, doc: &str, variables: Value, auth: Auth) -> Result<Answer, ProviderError> {
        let tokens = match auth {
            Auth::Required => Some(self.session.tokens()?.0),
            Auth::Optional => self.session.tokens().ok().map(|(t, _)| t),
        };
        let token = tokens.as_ref().map(|t| t.access_token.as_str());
        match self.send(doc, &variables, token).await? {
            Outcome::Ok(body) => Ok(Answer::Data(body)),
            Outcome::NotFound => Ok(Answer::NotFound),
            Outcome::Failed(ProviderError::SessionExpired) => {
                if let Some(token) = token {
                    self.session.refuse(token);
                }
                if auth == Auth::Optional && token.is_some() {
                    return match self.send(doc, &variables, None).await? {
                        Outcome::Ok(body) => Ok(Answer::Data(body)),
                        Outcome::NotFound => Ok(Answer::NotFound),
                        Outcome::Failed(e) => Err(e),
                    };
                }
                Err(ProviderError::SessionExpired)
            }
            Outcome::Failed(e) => Err(e),
        }
    }

    async fn send(
        &self,
        doc: &str,
        variables: &Value,
        token: Option<&str>,
    ) -> Result<Outcome<Vec<u8>>, ProviderError> {
        let http = self.http.client().map_err(ProviderError::Local)?;
        self.pace.wait().await;
        let mut request = http
            .post(self.api.clone())
            .header(ACCEPT, "application/json")
            .json(&json!({ "query": doc, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .map_err(|e| ProviderError::Offline(describe_transport(&e)))?;
        let status = response.status().as_u16();
        let wait = self.pace.observe(status, response.headers(), now_secs());
        let body = response
            .bytes()
            .await
            .map_err(|e| ProviderError::Offline(describe_transport(&e)))?;
        Ok(match query::classify(status, wait, &body) {
            query::Outcome::Ok => Outcome::Ok(Vec::from(body)),
            query::Outcome::NotFound => Outcome::NotFound,
            query::Outcome::Failed(e) => {
                tracing::info!(status, "AniList request failed: {e}");
                Outcome::Failed(e)
            }
        })
    }

    /// Who is logged in: asked of AniList when `fresh`, or when not known for the token held.
    async fn viewer(&self, fresh: bool) -> Result<Viewer, ProviderError> {
        let (_, generation) = self.session.tokens()?;
        if !fresh {
            let cached = self.viewer.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((g, viewer)) = cached.as_ref()
                && *g == generation
            {
                return Ok(viewer.clone());
            }
        }
        let body = self
            .post(query::VIEWER, json!({}), Auth::Required)
            .await?
            .found(|| {
                ProviderError::BadResponse("AniList did not find the account (404)".into())
            })?;
        let viewer = query::parse_viewer(&body)?;
        *self.viewer.lock().unwrap_or_else(|e| e.into_inner()) = Some((generation, viewer.clone()));
        Ok(viewer)
    }
}

/// What [`Anilist::send`] got: the body to read, a 404, or a failure.
enum Outcome<T> {
    Ok(T),
    NotFound,
    Failed(ProviderError),
}

/// The account's score format, or AniList's 10-point scale when it did not say.
fn format_of(viewer: &Viewer) -> ScoreFormat {
    viewer.score_format.unwrap_or_else(|| {
        tracing::warn!("AniList did not say how the account scores; reading scores out of 10");
        ScoreFormat::Point10
    })
}

/// The warning shown while the login still works but ends within [`WARN_BEFORE_SECS`]
/// (pure: `now` and the zone are given).
pub fn expiry_warning(expires_at: i64, now: i64, tz: &TimeZone) -> Option<String> {
    let left = expires_at.saturating_sub(now);
    if left <= 0 || left > WARN_BEFORE_SECS {
        return None;
    }
    let end = jiff::Timestamp::from_second(expires_at)
        .ok()?
        .to_zoned_datetime(tz.clone());
    let today = jiff::Timestamp::from_second(now)
        .ok()?
        .to_zoned_datetime(tz.clone())
        .date();
    let days = today.until(end.date()).ok()?.get_days();
    let command = Service::Anilist.login_command();
    let when = match days {
        ..=0 => format!("today at {}", end.strftime("%H:%M")),
        1 => format!("tomorrow ({} {})", end.date(), end.strftime("%H:%M")),
        n => format!("in {n} days ({})", end.date()),
    };
    Some(format!(
        "AniList login ends {when}: run `{command}` to renew"
    ))
}

/// How long to wait before looking at the session again (at least 30 s, at most 6 h, and at
/// most an hour while its end is near).
pub fn next_check(expires_at: i64, now: i64) -> Duration {
    let left = expires_at.saturating_sub(now);
    let most = if left <= WARN_BEFORE_SECS {
        WARNING_CHECK_SECS
    } else {
        MAX_CHECK_SECS
    };
    let secs = left.clamp(MIN_CHECK_SECS, most.max(MIN_CHECK_SECS));
    Duration::from_secs(secs.unsigned_abs())
}

#[async_trait]
impl Provider for Anilist {
    fn service(&self) -> Service {
        Service::Anilist
    }

    fn kinds(&self) -> &'static [MediaKind] {
        &MediaKind::ALL
    }

    async fn fetch_list(
        &self,
        kind: MediaKind,
        arrived: &(dyn Fn(usize) + Send + Sync),
    ) -> Result<Fetched, ProviderError> {
        // Asked every time: the score format may have been changed on the website.
        let viewer = self.viewer(true).await?;
        let format = format_of(&viewer);
        let body = self
            .post(
                query::LIST,
                query::list_variables(viewer.id, kind, format),
                Auth::Required,
            )
            .await?
            .found(|| ProviderError::BadResponse("AniList did not find your list (404)".into()))?;
        let mut collection = query::parse_collection(&body, kind, format)?;
        arrived(collection.entries.len());
        if collection.entries.len() + collection.unreadable >= self.collection_cap {
            tracing::info!(
                entries = collection.entries.len(),
                "the list may be cut at AniList's cap; fetching it in chunks"
            );
            collection = self.fetch_chunked(viewer.id, kind, format, arrived).await?;
        }
        Ok(Fetched {
            entries: collection.entries,
            unreadable: collection.unreadable,
            score_format: Some(format),
        })
    }

    async fn apply(
        &self,
        kind: MediaKind,
        media_id: u64,
        change: &Change,
    ) -> Result<Ack, ProviderError> {
        let viewer = self.viewer(false).await?;
        let patch = match change {
            Change::Set(patch) => patch,
            Change::Remove => {
                // Deleting takes AniList's entry id: look it up first. Not listed: done.
                let lookup = self
                    .post(
                        query::ENTRY_ID,
                        query::entry_id_variables(viewer.id, media_id, kind),
                        Auth::Required,
                    )
                    .await?;
                let Answer::Data(body) = lookup else {
                    return Ok(Ack { state: None });
                };
                let Some(entry_id) = query::parse_entry_id(&body)? else {
                    return Ok(Ack { state: None });
                };
                let deleted = self
                    .post(
                        query::DELETE,
                        query::delete_variables(entry_id),
                        Auth::Required,
                    )
                    .await?;
                return match deleted {
                    Answer::NotFound => Ok(Ack { state: None }),
                    Answer::Data(body) if query::parse_deleted(&body)? => Ok(Ack { state: None }),
                    Answer::Data(_) => Err(ProviderError::Server(
                        "AniList did not remove the entry (deleted: false); will try again".into(),
                    )),
                };
            }
        };
        let format = format_of(&viewer);
        let variables = query::save_variables(media_id, kind, patch, format);
        let body = self
            .post(&query::save_document(&variables), variables, Auth::Required)
            .await?
            .found(no_longer_there)?;
        let state = query::parse_saved(&body, format)?;
        Ok(Ack { state: Some(state) })
    }

    async fn current(
        &self,
        kind: MediaKind,
        media_id: u64,
    ) -> Result<Option<ListState>, ProviderError> {
        let viewer = self.viewer(false).await?;
        let format = format_of(&viewer);
        let answer = self
            .post(
                query::MEDIA_LIST,
                query::media_list_variables(viewer.id, media_id, kind, format),
                Auth::Required,
            )
            .await?;
        match answer {
            Answer::NotFound => Ok(None),
            Answer::Data(body) => query::parse_current(&body, format),
        }
    }

    async fn search(&self, kind: MediaKind, query: &str) -> Result<Vec<Found>, ProviderError> {
        let q: String = query.trim().chars().take(MAX_QUERY_CHARS).collect();
        let q = q.trim_end();
        if q.is_empty() {
            return Ok(Vec::new());
        }
        match self
            .post(
                query::SEARCH,
                query::search_variables(q, kind),
                Auth::Optional,
            )
            .await?
        {
            Answer::NotFound => Ok(Vec::new()),
            Answer::Data(body) => query::parse_search(&body, kind),
        }
    }

    async fn details(&self, kind: MediaKind, media_id: u64) -> Result<Details, ProviderError> {
        let body = self
            .post(
                query::DETAILS,
                query::details_variables(media_id, kind),
                Auth::Optional,
            )
            .await?
            .found(no_longer_there)?;
        query::parse_details(&body, kind)
    }

    async fn keep_fresh(&self) -> Result<Option<Duration>, ProviderError> {
        // Nothing can be refreshed: make sure a login is held and has not expired, and take up a
        // newer one saved by another terminal.
        self.session.tokens()?;
        self.session.adopt_newer()?;
        let (tokens, _) = self.session.tokens()?;
        Ok(Some(next_check(tokens.expires_at, now_secs())))
    }

    fn session_warning(&self) -> Option<String> {
        let expires_at = self.session.expires_at()?;
        expiry_warning(expires_at, now_secs(), &TimeZone::system())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> AnilistConfig {
        crate::config::Config::parse(
            std::path::Path::new("c.toml"),
            "[anilist]\nclient_id = \"1\"\napi_url = \"http://127.0.0.1:9/graphql\"\n",
        )
        .unwrap()
        .anilist
        .unwrap()
    }

    fn tokens(access: &str, expires_at: i64) -> TokenSet {
        TokenSet {
            access_token: access.into(),
            refresh_token: String::new(),
            expires_at,
        }
    }

    #[test]
    fn the_warning_starts_two_weeks_before_the_end() {
        let utc = TimeZone::UTC;
        // 2025-01-01T12:00:00Z
        let now = 1_735_732_800;
        let day = 24 * 3600;
        assert_eq!(expiry_warning(now + 30 * day, now, &utc), None);
        assert_eq!(expiry_warning(now + 15 * day, now, &utc), None);
        assert_eq!(
            expiry_warning(now + 14 * day, now, &utc).as_deref(),
            Some("AniList login ends in 14 days (2025-01-15): run `malt --login anilist` to renew")
        );
        assert_eq!(
            expiry_warning(now + 2 * day, now, &utc).as_deref(),
            Some("AniList login ends in 2 days (2025-01-03): run `malt --login anilist` to renew")
        );
        assert_eq!(
            expiry_warning(now + day, now, &utc).as_deref(),
            Some(
                "AniList login ends tomorrow (2025-01-02 12:00): run `malt --login anilist` to renew"
            )
        );
        assert_eq!(
            expiry_warning(now + 3 * 3600, now, &utc).as_deref(),
            Some("AniList login ends today at 15:00: run `malt --login anilist` to renew")
        );
        // Past midnight is tomorrow, however few hours away.
        assert!(
            expiry_warning(now + 13 * 3600, now, &utc)
                .unwrap()
                .contains("tomorrow")
        );
        assert_eq!(expiry_warning(now, now, &utc), None, "expired: no warning");
    }

    #[test]
    fn the_session_is_looked_at_again_in_time() {
        let now = 1_000_000_000;
        assert_eq!(
            next_check(now + 365 * 24 * 3600, now),
            Duration::from_secs(6 * 3600)
        );
        // While the end is warned about: every 5 minutes (a renewal elsewhere ends the warning).
        assert_eq!(
            next_check(now + 10 * 24 * 3600, now),
            Duration::from_secs(300)
        );
        assert_eq!(next_check(now + 200, now), Duration::from_secs(200));
        assert_eq!(next_check(now + 5, now), Duration::from_secs(30));
    }

    #[tokio::test]
    async fn keep_fresh_reports_missing_expired_and_renewed_logins() {
        let dir = tempfile::tempdir().unwrap();
        let file = TokenFile::new(dir.path().join("anilist.json"));
        let anilist = Anilist::new(&cfg(), Http::default(), file.clone());
        assert_eq!(anilist.keep_fresh().await, Err(ProviderError::NotLoggedIn));
        assert_eq!(anilist.session_warning(), None);

        let now = now_secs();
        file.save(&tokens("old", now - 1)).unwrap();
        assert_eq!(
            anilist.keep_fresh().await,
            Err(ProviderError::SessionExpired)
        );
        assert_eq!(
            anilist.keep_fresh().await,
            Err(ProviderError::SessionExpired),
            "the same expired file stays expired"
        );

        // A new login from another terminal is picked up.
        file.save(&tokens("new", now + 3 * 24 * 3600)).unwrap();
        let wait = anilist.keep_fresh().await.unwrap().unwrap();
        assert!(wait <= Duration::from_secs(3600), "{wait:?}");
        assert!(
            anilist
                .session_warning()
                .unwrap()
                .starts_with("AniList login ends in ")
        );

        // Renewed again while the held one still works: the newer one is taken up.
        file.save(&tokens("newer", now + 365 * 24 * 3600)).unwrap();
        let wait = anilist.keep_fresh().await.unwrap().unwrap();
        assert_eq!(wait, Duration::from_secs(6 * 3600));
        assert_eq!(anilist.session_warning(), None);
    }

    #[tokio::test]
    async fn a_refused_token_is_not_used_again_until_a_new_login() {
        let dir = tempfile::tempdir().unwrap();
        let file = TokenFile::new(dir.path().join("anilist.json"));
        let session = Session::new(file.clone());
        let later = now_secs() + 3600;
        file.save(&tokens("first", later)).unwrap();
        let (t, g1) = session.tokens().unwrap();
        assert_eq!(t.access_token, "first");
        session.refuse("someone else's");
        assert!(session.tokens().is_ok());
        session.refuse("first");
        assert_eq!(session.tokens().unwrap_err(), ProviderError::SessionExpired);
        file.save(&tokens("second", later)).unwrap();
        let (t, g2) = session.tokens().unwrap();
        assert_eq!(t.access_token, "second");
        assert!(g2 > g1, "a new login is a new generation");
    }

    #[tokio::test]
    async fn empty_searches_send_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let file = TokenFile::new(dir.path().join("anilist.json"));
        let anilist = Anilist::new(&cfg(), Http::default(), file);
        assert_eq!(
            anilist.search(MediaKind::Anime, "   ").await,
            Ok(Vec::new())
        );
        assert_eq!(anilist.service(), Service::Anilist);
        assert_eq!(anilist.kinds(), &MediaKind::ALL);
    }

    /// A tiny AniList stand-in on 127.0.0.1: answers by the document's root field, records what
    /// it was sent. (The full fake, with AniList's state and quirks, is in `tests/support`.)
    mod server {
        use std::sync::{Arc, Mutex};

        use axum::body::Bytes;
        use axum::extract::State;
        use axum::http::{HeaderMap, StatusCode, header};
        use axum::response::{IntoResponse, Response};
        use serde_json::{Value, json};

        #[derive(Clone, Debug)]
        pub struct Seen {
            pub auth: Option<String>,
            pub content_type: Option<String>,
            pub accept: Option<String>,
            pub query: String,
            pub variables: Value,
        }

        #[derive(Clone, Copy, PartialEq, Eq)]
        pub enum Mode {
            Normal,
            InvalidToken,
            Throttle,
        }

        #[derive(Clone)]
        pub struct Fake {
            pub seen: Arc<Mutex<Vec<Seen>>>,
            pub mode: Arc<Mutex<Mode>>,
        }

        impl Fake {
            pub fn seen(&self) -> Vec<Seen> {
                self.seen.lock().unwrap().clone()
            }
            pub fn set_mode(&self, mode: Mode) {
                *self.mode.lock().unwrap() = mode;
            }
        }

        fn entry(media_id: u64, progress: u64) -> Value {
            json!({"id": 55, "mediaId": media_id, "status": "CURRENT", "score": 8.5,
                   "progress": progress, "progressVolumes": 0,
                   "startedAt": {"year": 2024, "month": 1, "day": 2},
                   "completedAt": {"year": null, "month": null, "day": null},
                   "updatedAt": 1700000000})
        }

        async fn answer(State(fake): State<Fake>, headers: HeaderMap, body: Bytes) -> Response {
            let text = |name| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            let request: Value = serde_json::from_slice(&body).unwrap();
            let seen = Seen {
                auth: text(header::AUTHORIZATION),
                content_type: text(header::CONTENT_TYPE),
                accept: text(header::ACCEPT),
                query: request["query"].as_str().unwrap().to_string(),
                variables: request["variables"].clone(),
            };
            fake.seen.lock().unwrap().push(seen.clone());
            let mode = *fake.mode.lock().unwrap();
            if mode == Mode::Throttle {
                return (
                    StatusCode::TOO_MANY_REQUESTS,
                    [("retry-after", "1"), ("x-ratelimit-remaining", "0")],
                    r#"{"data":null,"errors":[{"message":"Too Many Requests.","status":429}]}"#,
                )
                    .into_response();
            }
            if mode == Mode::InvalidToken && seen.auth.is_some() {
                return (
                    StatusCode::BAD_REQUEST,
                    r#"{"errors":[{"message":"Invalid token","status":400,"locations":[{"line":2,"column":3}]}],"data":{"Viewer":null}}"#,
                )
                    .into_response();
            }
            let q = seen.query.as_str();
            let v = &seen.variables;
            let not_found = || {
                (
                    StatusCode::NOT_FOUND,
                    r#"{"errors":[{"message":"Not Found.","status":404}],"data":{"MediaList":null}}"#,
                )
                    .into_response()
            };
            let data = if q.contains("Viewer") {
                json!({"Viewer": {"id": 7, "name": "Tester",
                       "mediaListOptions": {"scoreFormat": "POINT_10_DECIMAL"}}})
            } else if q.contains("MediaListCollection") {
                json!({"MediaListCollection": {"lists": [
                    {"name": "Watching", "isCustomList": false, "status": "CURRENT",
                     "entries": [{"mediaId": 1, "status": "CURRENT", "score": 8.5, "progress": 3,
                                  "media": {"id": 1, "title": {"userPreferred": "One"},
                                            "episodes": 12, "format": "TV", "status": "RELEASING",
                                            "nextAiringEpisode": {"airingAt": 1900000000, "episode": 4}}}]},
                    {"name": "Mine", "isCustomList": true, "status": null,
                     "entries": [{"mediaId": 1, "status": "CURRENT", "score": 8.5, "progress": 3},
                                 {"mediaId": 2, "status": "PAUSED", "score": 0, "progress": 1}]}
                ]}})
            } else if q.contains("SaveMediaListEntry") {
                json!({"SaveMediaListEntry": entry(v["mediaId"].as_u64().unwrap(),
                                                   v["progress"].as_u64().unwrap_or(0))})
            } else if q.contains("DeleteMediaListEntry") {
                json!({"DeleteMediaListEntry": {"deleted": v["id"] == 55}})
            } else if q.contains("MediaList(") {
                if v["mediaId"] != 1 {
                    return not_found();
                }
                if q.contains("{ id }") {
                    json!({"MediaList": {"id": 55}})
                } else {
                    json!({"MediaList": entry(1, 3)})
                }
            } else if q.contains("Page(") {
                json!({"Page": {"media": [{"id": 9, "title": {"romaji": "Found"},
                                           "startDate": {"year": 2020}, "averageScore": 71}]}})
            } else {
                return (StatusCode::BAD_REQUEST, "unknown document").into_response();
            };
            (
                [("x-ratelimit-remaining", "59"), ("x-ratelimit-limit", "90")],
                axum::Json(json!({ "data": data })),
            )
                .into_response()
        }

        /// The code grant's token endpoint: `good-code` with secret `s3cret` gets `tok`.
        async fn token(State(fake): State<Fake>, headers: HeaderMap, body: Bytes) -> Response {
            let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            fake.seen.lock().unwrap().push(Seen {
                auth: None,
                content_type: headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string),
                accept: headers
                    .get(header::ACCEPT)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string),
                query: "token".into(),
                variables: request.clone(),
            });
            if request["client_secret"] != "s3cret" {
                return (
                    StatusCode::UNAUTHORIZED,
                    r#"{"error":"invalid_client","message":"Client authentication failed"}"#,
                )
                    .into_response();
            }
            if request["code"] != "good-code" {
                return (
                    StatusCode::BAD_REQUEST,
                    r#"{"error":"invalid_request","message":"The authorization code is invalid","hint":"Authorization code has been revoked"}"#,
                )
                    .into_response();
            }
            axum::Json(
                json!({"token_type": "Bearer", "expires_in": 31536000, "access_token": "tok"}),
            )
            .into_response()
        }

        pub async fn start() -> (String, Fake) {
            let fake = Fake {
                seen: Arc::default(),
                mode: Arc::new(Mutex::new(Mode::Normal)),
            };
            let app = axum::Router::new()
                .route("/graphql", axum::routing::post(answer))
                .route("/oauth/token", axum::routing::post(token))
                .with_state(fake.clone());
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
            (format!("http://{addr}/graphql"), fake)
        }
    }

    async fn logged_in() -> (Anilist, server::Fake, tempfile::TempDir) {
        let (url, fake) = server::start().await;
        let mut c = cfg();
        c.api_url = Url::parse(&url).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = TokenFile::new(dir.path().join("anilist.json"));
        file.save(&tokens("tok", now_secs() + 300 * 24 * 3600))
            .unwrap();
        (Anilist::new(&c, Http::default(), file), fake, dir)
    }

    #[tokio::test]
    async fn a_fetch_asks_who_and_how_they_score_then_reads_every_list_once() {
        use crate::domain::Status;
        let (anilist, fake, _dir) = logged_in().await;
        let counts = Mutex::new(Vec::new());
        let fetched = anilist
            .fetch_list(MediaKind::Anime, &|n| counts.lock().unwrap().push(n))
            .await
            .unwrap();
        assert_eq!(fetched.score_format, Some(ScoreFormat::Point10Decimal));
        assert_eq!(fetched.unreadable, 0);
        let got: Vec<_> = fetched
            .entries
            .iter()
            .map(|e| (e.id, e.status, e.progress, e.score))
            .collect();
        assert_eq!(
            got,
            vec![(1, Status::Current, 3, 85), (2, Status::OnHold, 1, 0)]
        );
        assert_eq!(*counts.lock().unwrap(), vec![2]);
        let seen = fake.seen();
        assert_eq!(seen.len(), 2);
        for s in &seen {
            assert_eq!(s.auth.as_deref(), Some("Bearer tok"));
            assert_eq!(s.content_type.as_deref(), Some("application/json"));
            assert_eq!(s.accept.as_deref(), Some("application/json"));
        }
        assert_eq!(seen[0].query, query::VIEWER);
        assert_eq!(seen[1].query, query::LIST);
        assert_eq!(
            seen[1].variables,
            json!({"userId": 7, "type": "ANIME", "format": "POINT_10_DECIMAL"})
        );
        // The format is asked again on every fetch.
        anilist.fetch_list(MediaKind::Manga, &|_| {}).await.unwrap();
        assert_eq!(fake.seen().len(), 4);
    }

    #[tokio::test]
    async fn changes_are_one_request_each_and_removals_look_the_entry_up() {
        let (anilist, fake, _dir) = logged_in().await;
        let ack = anilist
            .apply(MediaKind::Anime, 1, &Change::progress(4))
            .await
            .unwrap();
        let state = ack.state.unwrap();
        assert_eq!((state.progress, state.score), (4, 85));
        assert_eq!(state.start_date.as_deref(), Some("2024-01-02"));
        let seen = fake.seen();
        assert_eq!(seen.len(), 2, "the account, then the change");
        assert_eq!(seen[1].query, query::save_document(&seen[1].variables));
        assert!(!seen[1].query.contains("$status"), "{}", seen[1].query);
        assert_eq!(
            seen[1].variables,
            json!({"mediaId": 1, "format": "POINT_10_DECIMAL", "progress": 4})
        );
        // The account is known now: one request per change.
        anilist
            .apply(MediaKind::Anime, 1, &Change::progress(5))
            .await
            .unwrap();
        assert_eq!(fake.seen().len(), 3);

        assert!(
            anilist
                .current(MediaKind::Anime, 1)
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(anilist.current(MediaKind::Anime, 2).await, Ok(None));

        let ack = anilist
            .apply(MediaKind::Anime, 1, &Change::Remove)
            .await
            .unwrap();
        assert_eq!(ack.state, None);
        let seen = fake.seen();
        assert_eq!(seen[seen.len() - 2].query, query::ENTRY_ID);
        assert_eq!(seen[seen.len() - 1].query, query::DELETE);
        assert_eq!(seen[seen.len() - 1].variables, json!({"id": 55}));
        // Not on the list: done, without a deletion.
        let before = fake.seen().len();
        let ack = anilist
            .apply(MediaKind::Anime, 2, &Change::Remove)
            .await
            .unwrap();
        assert_eq!(ack.state, None);
        assert_eq!(fake.seen().len(), before + 1);
    }

    #[tokio::test]
    async fn an_invalid_token_ends_the_session_but_not_public_data() {
        let (anilist, fake, _dir) = logged_in().await;
        fake.set_mode(server::Mode::InvalidToken);
        assert_eq!(
            anilist
                .apply(MediaKind::Anime, 1, &Change::progress(4))
                .await,
            Err(ProviderError::SessionExpired)
        );
        let before = fake.seen().len();
        assert_eq!(
            anilist.current(MediaKind::Anime, 1).await,
            Err(ProviderError::SessionExpired)
        );
        assert_eq!(
            fake.seen().len(),
            before,
            "a refused token is not sent again"
        );
        assert_eq!(
            anilist.keep_fresh().await,
            Err(ProviderError::SessionExpired)
        );
        let found = anilist.search(MediaKind::Anime, " found ").await.unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].mean.as_deref(), Some("71%"));
        let last = fake.seen().pop().unwrap();
        assert_eq!(
            last.auth, None,
            "public data is asked for without the login"
        );
        assert_eq!(last.variables["search"], "found");
    }

    #[tokio::test]
    async fn too_many_requests_pause_the_next_ones() {
        let (anilist, fake, _dir) = logged_in().await;
        fake.set_mode(server::Mode::Throttle);
        match anilist.search(MediaKind::Anime, "x").await {
            Err(ProviderError::Throttled { wait, .. }) => {
                assert_eq!(wait, Some(Duration::from_secs(1)));
            }
            other => panic!("{other:?}"),
        }
        fake.set_mode(server::Mode::Normal);
        let start = std::time::Instant::now();
        anilist.search(MediaKind::Anime, "x").await.unwrap();
        assert!(start.elapsed() >= Duration::from_millis(900));
    }

    #[tokio::test]
    async fn a_login_is_checked_before_it_is_stored() {
        use crate::auth::redirect::Redirect;
        let (url, fake) = server::start().await;
        let base = url.trim_end_matches("/graphql");
        let text = format!(
            "[anilist]\nclient_id = \"1\"\nclient_secret = \"s3cret\"\napi_url = \"{url}\"\nauth_url = \"{base}/oauth\"\n"
        );
        let c = crate::config::Config::parse(std::path::Path::new("c.toml"), &text)
            .unwrap()
            .anilist
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = TokenFile::new(dir.path().join("anilist.json"));
        let http = reqwest::Client::new();

        // The code grant: the code is traded, the token checked, then stored.
        let name = finish_login(
            &c,
            http.clone(),
            file.clone(),
            Redirect::Code("good-code".into()),
        )
        .await
        .unwrap();
        assert_eq!(name, "Tester");
        let stored = file.load().unwrap().unwrap();
        assert_eq!(stored.access_token, "tok");
        assert_eq!(stored.refresh_token, "");
        assert!((stored.expires_at - (now_secs() + 31_536_000)).abs() < 60);
        let seen = fake.seen();
        assert_eq!(seen[0].query, "token");
        assert_eq!(seen[0].content_type.as_deref(), Some("application/json"));
        assert_eq!(
            seen[0].variables,
            json!({"grant_type": "authorization_code", "client_id": "1", "client_secret": "s3cret",
                   "redirect_uri": "http://127.0.0.1:53682/callback", "code": "good-code"})
        );
        assert_eq!(seen[1].auth.as_deref(), Some("Bearer tok"));

        let refused = finish_login(&c, http.clone(), file.clone(), Redirect::Code("old".into()))
            .await
            .unwrap_err();
        assert_eq!(
            refused,
            "AniList refused the login: The authorization code is invalid"
        );

        // The implicit grant: the token itself; a refused one is not stored.
        std::fs::remove_file(file.path()).unwrap();
        fake.set_mode(server::Mode::InvalidToken);
        let e = finish_login(
            &c,
            http.clone(),
            file.clone(),
            Redirect::Token {
                access_token: "pasted-wrong".into(),
                expires_in: None,
            },
        )
        .await
        .unwrap_err();
        assert!(e.contains("Invalid token"), "{e}");
        assert!(!e.contains("pasted-wrong"));
        assert_eq!(file.load().unwrap(), None);
        fake.set_mode(server::Mode::Normal);
        let name = finish_login(
            &c,
            http,
            file.clone(),
            Redirect::Token {
                access_token: " pasted \n".into(),
                expires_in: Some(100),
            },
        )
        .await
        .unwrap();
        assert_eq!(name, "Tester");
        let stored = file.load().unwrap().unwrap();
        assert_eq!(stored.access_token, "pasted");
        assert!((stored.expires_at - (now_secs() + 100)).abs() < 60);
    }
}
