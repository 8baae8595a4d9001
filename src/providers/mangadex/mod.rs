//! MangaDex (API v5): the only module that knows MangaDex's addresses, answers and errors.
//!
//! - `api`: the addresses asked and bodies sent, and pure readers of the answers (the
//!   array-for-map quirk, chapter order, progress from read markers, error bodies);
//! - `login`: the password grant of a personal API client (Keycloak) and its refusals;
//! - `pace`: the rate limit (5 requests a second, pauses until `X-RateLimit-Retry-After`);
//! - `ids`: malt's `u64` ids for MangaDex's UUIDs, and the file that maps them back.
//!
//! MangaDex keeps no "chapters read" counter: the list holds a reading status per title, and the
//! chapters marked read. Progress is the position of the furthest read chapter in the order the
//! aggregate gives (in the configured languages); a progress change marks exactly the chapters
//! between read or unread, in one request, or several of at most 250 chapters for a long jump
//! (MangaDex takes 10 KB a request). What was learnt of a title (status, read markers,
//! chapter order) is kept in memory from the last fetch, so a change needs no lookups; after a
//! restart the first change of a title looks them up first.
//!
//! The access token lasts 15 minutes: the shared [`Session`] refreshes it before it expires (the
//! rotating refresh token saved before it is used), and once when MangaDex answers 401.

pub mod api;
pub mod ids;
mod login;
pub mod pace;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use reqwest::header::ACCEPT;
use reqwest::{Method, Url};
use serde_json::Value;

pub use login::{
    finish_login, keycloak_error, oauth_client, password_form, token_url, token_username,
};

use self::api::{Chapter, ReadingStatus};
use self::ids::IdMap;
use self::pace::Pace;
use super::{Details, Fetched, Found, Http, Provider, ProviderError, describe_transport};
use crate::auth::tokens::now_secs;
use crate::auth::{Session, TokenFile};
use crate::config::MangadexConfig;
use crate::domain::{Ack, Change, ListEntry, ListState, MediaKind, Service};

/// Aggregates asked for at once during a fetch (the pace keeps them to 5 a second).
const CONCURRENCY: usize = 3;
/// How often a request of a fetch is tried again after a 429 (the pace waits out the pause).
const THROTTLE_RETRIES: u32 = 3;
/// A 429 asking to wait longer than this ends the fetch instead.
const THROTTLE_PATIENCE: Duration = Duration::from_secs(60);

/// What malt knows of one title, from the last fetch or lookup.
#[derive(Clone, Default)]
struct Known {
    /// `Some(None)`: known not to be on the list.
    status: Option<Option<ReadingStatus>>,
    read: Option<HashSet<String>>,
    chapters: Option<Arc<Vec<Chapter>>>,
    /// When it was last learnt ([`Mangadex::clock`]): a fetch does not overwrite what a change
    /// made while it ran taught.
    learnt: u64,
}

/// Whether a request carries the login.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Auth {
    /// The user's list: reading statuses and read markers.
    User,
    /// Public data (titles, chapter lists, search, details): sent without the login, as
    /// MangaDex's authentication guide asks (it cannot cache an authenticated request), and a
    /// token MangaDex refuses cannot fail them.
    Public,
}

/// What a request brought back.
enum Answer {
    Data(Vec<u8>),
    /// 404, with MangaDex's words.
    NotFound(String),
}

impl Answer {
    fn found(self, gone: impl FnOnce(String) -> ProviderError) -> Result<Vec<u8>, ProviderError> {
        match self {
            Answer::Data(body) => Ok(body),
            Answer::NotFound(words) => Err(gone(words)),
        }
    }
}

fn no_longer_there(_: String) -> ProviderError {
    ProviderError::Rejected("MangaDex no longer has this title (404)".into())
}

/// A logged-in MangaDex account.
pub struct Mangadex {
    http: Http,
    api: Url,
    languages: Vec<String>,
    session: Session,
    pace: Pace,
    ids: IdMap,
    known: Mutex<HashMap<String, Known>>,
    /// Counts what was learnt, to order it.
    clock: std::sync::atomic::AtomicU64,
}

impl Mangadex {
    /// `ids`: the file that maps malt's ids back to MangaDex's UUIDs.
    pub fn new(cfg: &MangadexConfig, http: Http, tokens: TokenFile, ids: PathBuf) -> Mangadex {
        Mangadex {
            session: Session::new(tokens, oauth_client(cfg, http.clone())),
            http,
            api: cfg.api_url.clone(),
            languages: cfg.languages.clone(),
            pace: Pace::new(),
            ids: IdMap::new(ids),
            known: Mutex::new(HashMap::new()),
            clock: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn tick(&self) -> u64 {
        self.clock
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .saturating_add(1)
    }

    fn known(&self, uuid: &str) -> Known {
        let known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        known.get(uuid).cloned().unwrap_or_default()
    }

    fn learn(&self, uuid: &str, f: impl FnOnce(&mut Known)) {
        let now = self.tick();
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        let entry = known.entry(uuid.to_string()).or_default();
        f(entry);
        entry.learnt = now;
    }

    /// The UUID of the title malt calls `media_id`.
    fn uuid(&self, media_id: u64) -> Result<String, ProviderError> {
        self.ids.uuid(media_id).ok_or_else(|| {
            ProviderError::Local(
                "malt does not know this MangaDex title's id yet: refresh the list (r)".into(),
            )
        })
    }

    /// Sends one request, paced, and reads its status. On 401 the session is refreshed (once,
    /// however many requests were refused together) and the request sent again once.
    async fn call(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
        auth: Auth,
    ) -> Result<Answer, ProviderError> {
        let http = self.http.client().map_err(ProviderError::Local)?;
        let mut token = match auth {
            Auth::User => Some(self.session.access().await?),
            Auth::Public => None,
        };
        let mut refreshed = false;
        loop {
            self.pace.wait().await;
            let mut request = http
                .request(method.clone(), url.clone())
                .header(ACCEPT, "application/json");
            if let Some(body) = body {
                request = request.json(body);
            }
            if let Some(token) = &token {
                request = request.bearer_auth(token);
            }
            let response = request
                .send()
                .await
                .map_err(|e| ProviderError::Offline(describe_transport(&e)))?;
            let status = response.status().as_u16();
            let wait = self.pace.observe(status, response.headers(), now_secs());
            let captcha = response.headers().contains_key("x-captcha-sitekey");
            let bytes = response
                .bytes()
                .await
                .map_err(|e| ProviderError::Offline(describe_transport(&e)))?;
            if status == 401
                && !refreshed
                && let Some(rejected) = token.as_deref()
            {
                tracing::info!("MangaDex refused the access token (401); refreshing");
                token = Some(self.session.after_rejected(rejected).await?);
                refreshed = true;
                continue;
            }
            return match api::classify(status, wait, captcha, &bytes) {
                api::Outcome::Ok => Ok(Answer::Data(Vec::from(bytes))),
                api::Outcome::NotFound(words) => Ok(Answer::NotFound(words)),
                api::Outcome::Failed(e) => {
                    tracing::info!(status, path = url.path(), "MangaDex request failed: {e}");
                    Err(e)
                }
            };
        }
    }

    /// A GET tried again (after the pause) when MangaDex asks to slow down: a fetch is many
    /// requests, and one 429 should not lose the ones done.
    async fn get_patiently(&self, url: Url, auth: Auth) -> Result<Answer, ProviderError> {
        let mut tries = 0;
        loop {
            match self.call(Method::GET, url.clone(), None, auth).await {
                Err(ProviderError::Throttled { wait, .. })
                    if tries < THROTTLE_RETRIES && wait.is_some_and(|w| w <= THROTTLE_PATIENCE) =>
                {
                    tries += 1;
                }
                other => return other,
            }
        }
    }

    async fn post(&self, url: Url, body: &Value) -> Result<Answer, ProviderError> {
        self.call(Method::POST, url, Some(body), Auth::User).await
    }

    /// The title's chapters in reading order, as the aggregate gives them now (`None`: MangaDex
    /// no longer has the title).
    async fn fetch_chapters(&self, uuid: &str) -> Result<Option<Vec<Chapter>>, ProviderError> {
        let url = api::aggregate_url(&self.api, uuid, &self.languages);
        match self.get_patiently(url, Auth::Public).await? {
            Answer::NotFound(_) => Ok(None),
            Answer::Data(body) => api::parse_aggregate(&body).map(Some),
        }
    }

    /// The chapter order: the one in memory, else asked for.
    async fn chapters(&self, uuid: &str) -> Result<Arc<Vec<Chapter>>, ProviderError> {
        if let Some(chapters) = self.known(uuid).chapters {
            return Ok(chapters);
        }
        let Some(chapters) = self.fetch_chapters(uuid).await? else {
            return Err(no_longer_there(String::new()));
        };
        let chapters = Arc::new(chapters);
        self.learn(uuid, |k| k.chapters = Some(chapters.clone()));
        Ok(chapters)
    }

    /// The title's read markers, asked for now.
    async fn fetch_read(&self, uuid: &str) -> Result<HashSet<String>, ProviderError> {
        let read = match self
            .call(
                Method::GET,
                api::read_url(&self.api, uuid),
                None,
                Auth::User,
            )
            .await?
        {
            Answer::NotFound(_) => HashSet::new(),
            Answer::Data(body) => api::parse_read(&body)?,
        };
        self.learn(uuid, |k| k.read = Some(read.clone()));
        Ok(read)
    }

    /// The title's reading status, asked for now (`None`: not on the list).
    async fn fetch_status(&self, uuid: &str) -> Result<Option<ReadingStatus>, ProviderError> {
        let status = match self
            .call(
                Method::GET,
                api::status_url(&self.api, uuid),
                None,
                Auth::User,
            )
            .await?
        {
            Answer::NotFound(_) => None,
            Answer::Data(body) => api::parse_status(&body)?,
        };
        self.learn(uuid, |k| k.status = Some(status));
        Ok(status)
    }

    /// What a change needs to know of a title: its chapter order and read markers, and its
    /// status when `status` is asked for; from memory when known, else asked for.
    async fn prepare(
        &self,
        uuid: &str,
        status: bool,
    ) -> Result<(Option<ReadingStatus>, Arc<Vec<Chapter>>, HashSet<String>), ProviderError> {
        let known = self.known(uuid);
        let chapters = match known.chapters {
            Some(c) => c,
            None => self.chapters(uuid).await?,
        };
        let read = match known.read {
            Some(r) => r,
            None => self.fetch_read(uuid).await?,
        };
        let current = match known.status {
            Some(s) => s,
            None if status => self.fetch_status(uuid).await?,
            None => None,
        };
        Ok((current, chapters, read))
    }
}

#[async_trait]
impl Provider for Mangadex {
    fn service(&self) -> Service {
        Service::Mangadex
    }

    fn kinds(&self) -> &'static [MediaKind] {
        &[MediaKind::Manga]
    }

    async fn fetch_list(
        &self,
        kind: MediaKind,
        arrived: &(dyn Fn(usize) + Send + Sync),
    ) -> Result<Fetched, ProviderError> {
        if kind != MediaKind::Manga {
            return Ok(Fetched::default());
        }
        let started = self.tick();
        let body = self
            .get_patiently(api::statuses_url(&self.api), Auth::User)
            .await?
            .found(|_| {
                ProviderError::BadResponse("MangaDex did not find your reading list (404)".into())
            })?;
        let statuses = api::parse_statuses(&body)?;
        let mut unreadable = statuses.unreadable;
        let uuids: Vec<String> = statuses.list.iter().map(|(u, _)| u.clone()).collect();
        let ids = self.ids.remember(uuids.iter().map(String::as_str));

        let mut titles: HashMap<String, api::Manga> = HashMap::new();
        for batch in uuids.chunks(api::BATCH) {
            let url = api::manga_batch_url(&self.api, batch);
            let body = self.get_patiently(url, Auth::Public).await?.found(|_| {
                ProviderError::BadResponse("MangaDex did not find the titles (404)".into())
            })?;
            let (list, _) = api::parse_manga_list(&body)?;
            titles.extend(list.into_iter().map(|m| (m.id.clone(), m)));
        }

        let mut read: HashMap<String, HashSet<String>> = HashMap::new();
        for batch in uuids.chunks(api::BATCH) {
            let url = api::read_batch_url(&self.api, batch);
            let body = self.get_patiently(url, Auth::User).await?.found(|_| {
                ProviderError::BadResponse("MangaDex did not find the read markers (404)".into())
            })?;
            read.extend(api::parse_read_grouped(&body, batch)?);
        }

        // The chapter order of every title that can be shown, a few at once.
        let wanted: Vec<String> = uuids
            .iter()
            .filter(|u| titles.contains_key(*u))
            .cloned()
            .collect();
        let mut orders: HashMap<String, Arc<Vec<Chapter>>> = HashMap::new();
        let mut stream = futures_util::stream::iter(wanted)
            .map(|uuid| async move {
                let chapters = self.fetch_chapters(&uuid).await;
                (uuid, chapters)
            })
            .buffered(CONCURRENCY);
        while let Some((uuid, chapters)) = stream.next().await {
            match chapters {
                Ok(Some(chapters)) => {
                    orders.insert(uuid, Arc::new(chapters));
                }
                // Gone, or unreadable: counted below (the cache keeps what it knew).
                Ok(None) => tracing::warn!(uuid, "MangaDex has no chapter list for a listed title"),
                Err(ProviderError::BadResponse(e)) => {
                    tracing::warn!(
                        uuid,
                        "skipping a MangaDex title whose chapters malt cannot read: {e}"
                    );
                }
                Err(e) => return Err(e),
            }
            arrived(orders.len());
        }
        drop(stream);

        let mut entries: Vec<ListEntry> = Vec::with_capacity(uuids.len());
        let mut known: HashMap<String, Known> = HashMap::with_capacity(uuids.len());
        let empty = HashSet::new();
        for ((uuid, status), id) in statuses.list.iter().zip(ids) {
            let (Some(id), Some(manga), Some(chapters)) = (id, titles.get(uuid), orders.get(uuid))
            else {
                unreadable += 1;
                continue;
            };
            let marks = read.get(uuid).unwrap_or(&empty);
            entries.push(api::entry(manga, id, *status, chapters, marks, &self.api));
            known.insert(
                uuid.clone(),
                Known {
                    status: Some(Some(*status)),
                    read: Some(marks.clone()),
                    chapters: Some(chapters.clone()),
                    learnt: started,
                },
            );
        }
        {
            // What a change sent while the fetch ran taught is newer than what the fetch read.
            let mut held = self.known.lock().unwrap_or_else(|e| e.into_inner());
            for (uuid, newer) in held.drain().filter(|(_, k)| k.learnt > started) {
                known.insert(uuid, newer);
            }
            *held = known;
        }
        tracing::info!(
            entries = entries.len(),
            unreadable,
            "MangaDex reading list fetched"
        );
        Ok(Fetched {
            entries,
            unreadable,
            score_format: None,
        })
    }

    async fn apply(
        &self,
        kind: MediaKind,
        media_id: u64,
        change: &Change,
    ) -> Result<Ack, ProviderError> {
        if kind != MediaKind::Manga {
            return Err(ProviderError::Rejected("MangaDex keeps manga only".into()));
        }
        let uuid = self.uuid(media_id)?;
        let patch = match change {
            Change::Remove => {
                let body = api::status_body(None);
                // Not there (any more): what the removal wanted.
                self.post(api::status_url(&self.api, &uuid), &body).await?;
                self.learn(&uuid, |k| k.status = Some(None));
                return Ok(Ack { state: None });
            }
            Change::Set(patch) => patch,
        };
        let new_status = api::patch_status(patch);
        let (mut status, chapters, mut read) = self.prepare(&uuid, new_status.is_none()).await?;
        if patch.progress.is_some_and(|n| n > 0) && chapters.is_empty() {
            let languages = self.languages.join(", ");
            return Err(ProviderError::Rejected(format!(
                "MangaDex has no chapters of this title in {languages}: nothing to mark read"
            )));
        }
        // Each request that lands is remembered before the next is sent: a change tried again
        // after a failure (or a kill) between two of them sends only what is still missing.
        if let Some(s) = new_status.filter(|s| status != Some(*s)) {
            let body = api::status_body(Some(s));
            self.post(api::status_url(&self.api, &uuid), &body)
                .await?
                .found(no_longer_there)?;
            status = Some(s);
            self.learn(&uuid, |k| k.status = Some(Some(s)));
        }
        if let Some(n) = patch.progress {
            let marks = api::read_change(&chapters, &read, n);
            for part in api::read_parts(&marks) {
                self.post(api::read_url(&self.api, &uuid), &api::read_body(&part))
                    .await?
                    .found(no_longer_there)?;
                read.extend(part.read.iter().cloned());
                for id in &part.unread {
                    read.remove(id);
                }
                let now = read.clone();
                self.learn(&uuid, |k| k.read = Some(now));
            }
        }
        // Scores, volumes and dates are not kept by MangaDex: a patch of only those is answered
        // with what the list holds.
        Ok(Ack {
            state: Some(api::state(status, &chapters, &read)),
        })
    }

    async fn current(
        &self,
        kind: MediaKind,
        media_id: u64,
    ) -> Result<Option<ListState>, ProviderError> {
        if kind != MediaKind::Manga {
            return Ok(None);
        }
        let uuid = self.uuid(media_id)?;
        let Some(status) = self.fetch_status(&uuid).await? else {
            return Ok(None);
        };
        let read = self.fetch_read(&uuid).await?;
        let chapters = self.chapters(&uuid).await?;
        Ok(Some(api::state(Some(status), &chapters, &read)))
    }

    async fn search(&self, kind: MediaKind, query: &str) -> Result<Vec<Found>, ProviderError> {
        let Some(q) = api::search_query(query).filter(|_| kind == MediaKind::Manga) else {
            return Ok(Vec::new());
        };
        let body = match self
            .call(
                Method::GET,
                api::search_url(&self.api, &q),
                None,
                Auth::Public,
            )
            .await?
        {
            Answer::NotFound(_) => return Ok(Vec::new()),
            Answer::Data(body) => body,
        };
        let (list, _) = api::parse_manga_list(&body)?;
        let ids = self.ids.remember(list.iter().map(|m| m.id.as_str()));
        Ok(list
            .iter()
            .zip(ids)
            .filter_map(|(m, id)| Some(api::found(m, id?, &self.api)))
            .collect())
    }

    async fn details(&self, kind: MediaKind, media_id: u64) -> Result<Details, ProviderError> {
        if kind != MediaKind::Manga {
            return Err(ProviderError::Rejected("MangaDex keeps manga only".into()));
        }
        let uuid = self.uuid(media_id)?;
        let body = self
            .call(
                Method::GET,
                api::details_url(&self.api, &uuid),
                None,
                Auth::Public,
            )
            .await?
            .found(no_longer_there)?;
        let manga = api::parse_manga(&body)?;
        let count = self.known(&uuid).chapters.and_then(|c| api::total(&c));
        Ok(api::details(&manga, media_id, &self.api, count))
    }

    async fn keep_fresh(&self) -> Result<Option<Duration>, ProviderError> {
        Ok(Some(self.session.refresh_if_due().await?))
    }

    fn keeps_scores(&self) -> bool {
        false
    }

    fn keeps_volumes(&self) -> bool {
        false
    }

    fn total_is_latest(&self) -> bool {
        true
    }

    fn public_id(&self, _kind: MediaKind, media_id: u64) -> String {
        // Every listed title's UUID is in the map (a fetch fills it); the id's hex digits are the
        // UUID's first ones otherwise.
        self.ids
            .uuid(media_id)
            .unwrap_or_else(|| format!("{media_id:016x}"))
    }

    fn id_from_public(&self, text: &str) -> Option<u64> {
        let uuid = ids::normalize(text)?;
        let id = ids::derive(&uuid)?;
        // Another title that happens to share the id is not this one.
        match self.ids.uuid(id) {
            Some(known) if known != uuid => None,
            _ => Some(id),
        }
    }

    fn lands_in_parts(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::TokenSet;

    const A: &str = "b019ea5d-5fe6-44d4-abbc-f546f210884d";
    const B: &str = "2394a5c7-1d2e-461f-acde-18726b9e37d6";
    const CH1_OTHER: &str = "c30e8966-cef8-46c6-bc31-f24f6827bf84";
    const CH2: &str = "68f1bce2-1ea3-4100-b8a5-3c182507906c";
    const CH3: &str = "8ea939ec-02fb-4a4a-836c-ae09871c3354";

    /// A tiny MangaDex stand-in on 127.0.0.1 (API and token endpoint): two titles, the recorded
    /// aggregates, a reading list and read markers it keeps, and the requests it was sent. (The
    /// full fake, with MangaDex's quirks and limits, is in `tests/support/mangadex.rs`.)
    mod server {
        use std::collections::{BTreeMap, BTreeSet};
        use std::sync::{Arc, Mutex};

        use axum::body::Bytes;
        use axum::extract::State;
        use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
        use axum::response::{IntoResponse, Response};
        use serde_json::{Value, json};

        use super::{A, B, CH1_OTHER};
        use crate::providers::mangadex::api::fixture;

        #[derive(Clone, Debug)]
        pub struct Seen {
            pub method: String,
            pub path: String,
            pub query: Vec<(String, String)>,
            pub auth: Option<String>,
            pub body: String,
        }

        #[derive(Default)]
        pub struct World {
            pub seen: Vec<Seen>,
            pub statuses: BTreeMap<String, String>,
            pub read: BTreeMap<String, BTreeSet<String>>,
            /// The access token the API takes, and the refresh token the endpoint takes.
            pub access: String,
            pub refresh: String,
            pub throttle: bool,
        }

        #[derive(Clone)]
        pub struct Fake(pub Arc<Mutex<World>>);

        impl Fake {
            pub fn seen(&self) -> Vec<Seen> {
                self.0.lock().unwrap().seen.clone()
            }
            pub fn world(&self) -> std::sync::MutexGuard<'_, World> {
                self.0.lock().unwrap()
            }
            pub fn read(&self, manga: &str) -> Vec<String> {
                let w = self.world();
                w.read
                    .get(manga)
                    .map(|s| s.iter().cloned().collect())
                    .unwrap_or_default()
            }
        }

        fn error(status: StatusCode, title: &str, detail: &str) -> Response {
            let body = json!({"result": "error", "errors": [{"id": "e", "status": status.as_u16(),
                              "title": title, "detail": detail, "context": null}]});
            (status, axum::Json(body)).into_response()
        }

        fn manga(id: &str, title: &str) -> Value {
            json!({"id": id, "type": "manga",
                   "attributes": {"title": {"en": title}, "altTitles": [], "description": [],
                                  "year": 2020, "status": "ongoing", "tags": []},
                   "relationships": [{"id": "c", "type": "cover_art",
                                      "attributes": {"fileName": "f.jpg"}}]})
        }

        fn tokens(access: &str, refresh: &str) -> Value {
            json!({"access_token": access, "expires_in": 900, "refresh_expires_in": 2414162,
                   "refresh_token": refresh, "token_type": "Bearer", "not-before-policy": 0,
                   "session_state": "s", "scope": "groups email profile", "client_type": "personal"})
        }

        async fn token(fake: &Fake, form: &BTreeMap<String, String>) -> Response {
            let mut w = fake.world();
            if form.get("client_secret").map(String::as_str) != Some("s3cret") {
                return (StatusCode::UNAUTHORIZED, r#"{"error":"unauthorized_client","error_description":"Invalid client or Invalid client credentials"}"#).into_response();
            }
            match form.get("grant_type").map(String::as_str) {
                Some("password") if form.get("password").map(String::as_str) == Some("pw") => {
                    w.access = "tok1".into();
                    w.refresh = "r1".into();
                    axum::Json(tokens("tok1", "r1")).into_response()
                }
                Some("password") => (
                    StatusCode::UNAUTHORIZED,
                    r#"{"error":"invalid_grant","error_description":"Invalid user credentials"}"#,
                )
                    .into_response(),
                Some("refresh_token") if form.get("refresh_token") == Some(&w.refresh) => {
                    let n = w.refresh.trim_start_matches('r').parse::<u32>().unwrap() + 1;
                    w.access = format!("tok{n}");
                    w.refresh = format!("r{n}");
                    axum::Json(tokens(&w.access, &w.refresh)).into_response()
                }
                _ => (
                    StatusCode::BAD_REQUEST,
                    r#"{"error":"invalid_grant","error_description":"Token is not active"}"#,
                )
                    .into_response(),
            }
        }

        async fn answer(
            State(fake): State<Fake>,
            method: Method,
            uri: Uri,
            headers: HeaderMap,
            body: Bytes,
        ) -> Response {
            let query: Vec<(String, String)> =
                url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
                    .into_owned()
                    .collect();
            let auth = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let text = String::from_utf8_lossy(&body).to_string();
            fake.world().seen.push(super::server::Seen {
                method: method.to_string(),
                path: uri.path().to_string(),
                query: query.clone(),
                auth: auth.clone(),
                body: text.clone(),
            });
            if uri.path() == "/auth/token" {
                let form: BTreeMap<String, String> =
                    url::form_urlencoded::parse(&body).into_owned().collect();
                return token(&fake, &form).await;
            }
            if fake.world().throttle {
                let at = (jiff::Timestamp::now().as_second() + 2).to_string();
                return (
                    StatusCode::TOO_MANY_REQUESTS,
                    [
                        ("x-ratelimit-retry-after", at.as_str()),
                        ("x-ratelimit-remaining", "0"),
                    ],
                    r#"{"result":"error","errors":[{"status":429,"title":"Too Many Requests","detail":"slow down"}]}"#,
                )
                    .into_response();
            }
            let user = auth
                .as_deref()
                .map(|a| a.strip_prefix("Bearer ").unwrap_or(""));
            if let Some(token) = user
                && token != fake.world().access
            {
                return error(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized_http_exception",
                    "Token is invalid",
                );
            }
            let need_user = user.is_none()
                && uri.path() != "/manga"
                && !(uri.path().starts_with("/manga/") && uri.path().split('/').count() == 3)
                && !uri.path().ends_with("/aggregate");
            if need_user {
                return error(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized_http_exception",
                    "Not logged in",
                );
            }
            let array = |name: &str| -> Vec<String> {
                query
                    .iter()
                    .filter(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
                    .collect()
            };
            let segs: Vec<&str> = uri.path().trim_start_matches('/').split('/').collect();
            let mut w = fake.world();
            let known = |id: &str| id == A || id == B;
            let out = match (method.as_str(), segs.as_slice()) {
                ("GET", ["manga", "status"]) => {
                    if w.statuses.is_empty() {
                        json!({"result": "ok", "statuses": []})
                    } else {
                        json!({"result": "ok", "statuses": w.statuses})
                    }
                }
                ("GET", ["manga", "read"]) => {
                    let groups: BTreeMap<String, &BTreeSet<String>> = array("ids[]")
                        .into_iter()
                        .filter_map(|id| w.read.get(&id).filter(|s| !s.is_empty()).map(|s| (id, s)))
                        .collect();
                    if groups.is_empty() {
                        json!({"result": "ok", "data": []})
                    } else {
                        json!({"result": "ok", "data": groups})
                    }
                }
                ("GET", ["manga"]) => {
                    let ids = array("ids[]");
                    let title = query
                        .iter()
                        .find(|(k, _)| k == "title")
                        .map(|(_, v)| v.to_lowercase());
                    let mut data = Vec::new();
                    for (id, name) in [(A, "Alpha"), (B, "Beta")] {
                        let by_id = ids.is_empty() || ids.iter().any(|i| i == id);
                        let by_title = title
                            .as_ref()
                            .is_none_or(|t| name.to_lowercase().contains(t));
                        if by_id && by_title {
                            data.push(manga(id, name));
                        }
                    }
                    json!({"result": "ok", "response": "collection", "data": data,
                           "limit": 100, "offset": 0, "total": 2})
                }
                ("GET", ["manga", id]) if known(id) => {
                    json!({"result": "ok", "response": "entity", "data": manga(id, "Alpha")})
                }
                ("GET", ["manga", id, "aggregate"]) if known(id) => {
                    let name = if *id == A {
                        "manga-aggregate.json"
                    } else {
                        "manga-aggregate-empty-volumes-array.json"
                    };
                    serde_json::from_slice(&fixture(name)).unwrap()
                }
                ("GET", ["manga", id, "status"]) if known(id) => {
                    json!({"result": "ok", "status": w.statuses.get(*id)})
                }
                ("POST", ["manga", id, "status"]) if known(id) => {
                    let v: Value = serde_json::from_str(&text).unwrap();
                    match v["status"].as_str() {
                        Some(s) => w.statuses.insert(id.to_string(), s.to_string()),
                        None => w.statuses.remove(*id),
                    };
                    json!({"result": "ok"})
                }
                ("GET", ["manga", id, "read"]) if known(id) => {
                    let read: Vec<String> = w
                        .read
                        .get(*id)
                        .map(|s| s.iter().cloned().collect())
                        .unwrap_or_default();
                    json!({"result": "ok", "data": read})
                }
                ("POST", ["manga", id, "read"]) if known(id) => {
                    let v: Value = serde_json::from_str(&text).unwrap();
                    let set = w.read.entry(id.to_string()).or_default();
                    for c in v["chapterIdsRead"].as_array().into_iter().flatten() {
                        set.insert(c.as_str().unwrap().to_string());
                    }
                    for c in v["chapterIdsUnread"].as_array().into_iter().flatten() {
                        set.remove(c.as_str().unwrap());
                    }
                    json!({"result": "ok"})
                }
                _ => {
                    drop(w);
                    return error(
                        StatusCode::NOT_FOUND,
                        "not_found_http_exception",
                        "Not found",
                    );
                }
            };
            (
                [("x-ratelimit-limit", "5"), ("x-ratelimit-remaining", "4")],
                axum::Json(out),
            )
                .into_response()
        }

        pub async fn start() -> (String, Fake) {
            let world = World {
                statuses: BTreeMap::from([
                    (A.to_string(), "reading".to_string()),
                    (B.to_string(), "dropped".to_string()),
                ]),
                read: BTreeMap::from([(A.to_string(), BTreeSet::from([CH1_OTHER.to_string()]))]),
                access: "tok1".into(),
                refresh: "r1".into(),
                ..World::default()
            };
            let fake = Fake(Arc::new(Mutex::new(world)));
            let app = axum::Router::new()
                .fallback(answer)
                .with_state(fake.clone());
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
            (format!("http://{addr}"), fake)
        }
    }

    fn cfg(base: &str) -> MangadexConfig {
        let text = format!(
            "[mangadex]\nclient_id = \"personal-client-1\"\nclient_secret = \"s3cret\"\nusername = \"reader\"\napi_url = \"{base}\"\nauth_url = \"{base}/auth\"\n"
        );
        crate::config::Config::parse(std::path::Path::new("c.toml"), &text)
            .unwrap()
            .mangadex
            .unwrap()
    }

    struct Setup {
        md: Mangadex,
        fake: server::Fake,
        base: String,
        dir: tempfile::TempDir,
    }

    impl Setup {
        fn tokens(&self) -> TokenFile {
            TokenFile::new(self.dir.path().join("mangadex.json"))
        }
        fn ids(&self) -> PathBuf {
            self.dir.path().join("mangadex-ids.json")
        }
        fn again(&self) -> Mangadex {
            Mangadex::new(&cfg(&self.base), Http::default(), self.tokens(), self.ids())
        }
    }

    async fn logged_in() -> Setup {
        let (base, fake) = server::start().await;
        let dir = tempfile::tempdir().unwrap();
        let tokens = TokenFile::new(dir.path().join("mangadex.json"));
        tokens
            .save(&TokenSet::new(
                "tok1".into(),
                "r1".into(),
                Duration::from_secs(900),
            ))
            .unwrap();
        let md = Mangadex::new(
            &cfg(&base),
            Http::default(),
            tokens,
            dir.path().join("mangadex-ids.json"),
        );
        Setup {
            md,
            fake,
            base,
            dir,
        }
    }

    fn id(uuid: &str) -> u64 {
        ids::derive(uuid).unwrap()
    }

    fn pairs(seen: &server::Seen) -> Vec<(&str, &str)> {
        seen.query
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    #[tokio::test]
    async fn a_fetch_reads_statuses_titles_markers_and_chapters() {
        use crate::domain::Status;
        let s = logged_in().await;
        let counts = Mutex::new(Vec::new());
        let fetched =
            s.md.fetch_list(MediaKind::Manga, &|n| counts.lock().unwrap().push(n))
                .await
                .unwrap();
        assert_eq!(fetched.unreadable, 0);
        assert_eq!(fetched.score_format, None);
        let mut got: Vec<_> = fetched
            .entries
            .iter()
            .map(|e| (e.id, e.title.as_str(), e.status, e.progress, e.total))
            .collect();
        got.sort_by_key(|g| g.0);
        let mut want = vec![
            (id(A), "Alpha", Status::Current, 2, Some(4)),
            (id(B), "Beta", Status::Dropped, 0, None),
        ];
        want.sort_by_key(|g| g.0);
        assert_eq!(got, want);
        let alpha = fetched.entries.iter().find(|e| e.id == id(A)).unwrap();
        assert_eq!(
            alpha.media.picture.as_deref(),
            Some(format!("{}/covers/{A}/f.jpg.256.jpg", s.base).as_str())
        );
        assert_eq!(alpha.media.media_type.as_deref(), Some("manga"));
        assert_eq!(counts.lock().unwrap().last(), Some(&2));

        let seen = s.fake.seen();
        let paths: Vec<_> = seen
            .iter()
            .map(|r| (r.method.as_str(), r.path.as_str()))
            .collect();
        assert_eq!(
            paths[..3],
            [
                ("GET", "/manga/status"),
                ("GET", "/manga"),
                ("GET", "/manga/read")
            ]
        );
        let mut aggregates: Vec<_> = paths[3..].to_vec();
        aggregates.sort();
        let (pa, pb) = (
            format!("/manga/{A}/aggregate"),
            format!("/manga/{B}/aggregate"),
        );
        let mut expected = vec![("GET", pa.as_str()), ("GET", pb.as_str())];
        expected.sort();
        assert_eq!(aggregates, expected);
        // The login only with the user's list; titles and chapters are public.
        for r in &seen {
            let public = r.path == "/manga" || r.path.ends_with("/aggregate");
            let want = (!public).then_some("Bearer tok1");
            assert_eq!(r.auth.as_deref(), want, "{}", r.path);
        }
        assert_eq!(
            pairs(&seen[1]),
            vec![
                ("ids[]", B),
                ("ids[]", A),
                ("limit", "100"),
                ("includes[]", "cover_art"),
                ("contentRating[]", "safe"),
                ("contentRating[]", "suggestive"),
                ("contentRating[]", "erotica"),
                ("contentRating[]", "pornographic"),
            ]
        );
        assert_eq!(
            pairs(&seen[2]),
            vec![("ids[]", B), ("ids[]", A), ("grouped", "true")]
        );
        assert_eq!(pairs(&seen[3]), vec![("translatedLanguage[]", "en")]);
        // The ids are remembered on disk.
        let stored = ids::parse(&std::fs::read(s.ids()).unwrap()).unwrap();
        assert_eq!(stored.get(&id(A)).map(String::as_str), Some(A));
        assert_eq!(stored.len(), 2);
        // Anime: MangaDex keeps none.
        assert_eq!(
            s.md.fetch_list(MediaKind::Anime, &|_| {}).await,
            Ok(Fetched::default())
        );
    }

    #[tokio::test]
    async fn plus_plus_minus_sends_one_request_each_with_exactly_the_chapters() {
        use crate::domain::{Patch, Status};
        let s = logged_in().await;
        s.md.fetch_list(MediaKind::Manga, &|_| {}).await.unwrap();
        let before = s.fake.seen().len();
        let a = id(A);
        for (n, body) in [
            (3, format!(r#"{{"chapterIdsRead":["{CH2}"]}}"#)),
            (4, format!(r#"{{"chapterIdsRead":["{CH3}"]}}"#)),
            (3, format!(r#"{{"chapterIdsUnread":["{CH3}"]}}"#)),
        ] {
            let ack =
                s.md.apply(MediaKind::Manga, a, &Change::progress(n))
                    .await
                    .unwrap();
            let state = ack.state.unwrap();
            assert_eq!((state.status, state.progress), (Some(Status::Current), n));
            let last = s.fake.seen().pop().unwrap();
            assert_eq!(
                (last.method.as_str(), last.path.as_str()),
                ("POST", format!("/manga/{A}/read").as_str())
            );
            assert_eq!(last.body, body);
        }
        assert_eq!(s.fake.seen().len(), before + 3, "one request per change");
        let mut read = s.fake.read(A);
        read.sort();
        let mut want = vec![CH1_OTHER.to_string(), CH2.to_string()];
        want.sort();
        assert_eq!(read, want);

        // The same count again: nothing to send.
        let ack =
            s.md.apply(MediaKind::Manga, a, &Change::progress(3))
                .await
                .unwrap();
        assert_eq!(ack.state.unwrap().progress, 3);
        assert_eq!(s.fake.seen().len(), before + 3);
        // A score only: answered from what is known, nothing sent.
        let score = Change::Set(Patch {
            score: Some(8),
            ..Patch::default()
        });
        let ack = s.md.apply(MediaKind::Manga, a, &score).await.unwrap();
        assert_eq!(ack.state.unwrap().score, 0);
        assert_eq!(s.fake.seen().len(), before + 3);

        // The first `+` of a dropped title: the status, then the chapter.
        let first = Change::Set(Patch {
            status: Some(Status::Current),
            progress: Some(1),
            ..Patch::default()
        });
        let ack = s.md.apply(MediaKind::Manga, id(B), &first).await;
        assert!(
            matches!(&ack, Err(ProviderError::Rejected(m)) if m.contains("no chapters of this title in en")),
            "{ack:?}"
        );
        assert_eq!(
            s.fake.seen().len(),
            before + 3,
            "refused before anything is sent"
        );
        let reread = Change::Set(Patch {
            repeating: Some(true),
            ..Patch::default()
        });
        let ack =
            s.md.apply(MediaKind::Manga, a, &reread)
                .await
                .unwrap()
                .state
                .unwrap();
        assert_eq!(
            (ack.status, ack.repeating, ack.progress),
            (Some(Status::Current), true, 3)
        );
        let last = s.fake.seen().pop().unwrap();
        assert_eq!(last.path, format!("/manga/{A}/status"));
        assert_eq!(last.body, r#"{"status":"re_reading"}"#);

        // Removal: status null; then the title is not on the list.
        let ack =
            s.md.apply(MediaKind::Manga, a, &Change::Remove)
                .await
                .unwrap();
        assert_eq!(ack.state, None);
        assert_eq!(s.fake.seen().pop().unwrap().body, r#"{"status":null}"#);
        assert_eq!(s.md.current(MediaKind::Manga, a).await, Ok(None));
        assert!(!s.fake.world().statuses.contains_key(A));
    }

    #[tokio::test]
    async fn after_a_restart_a_change_looks_the_title_up_first() {
        let s = logged_in().await;
        s.md.fetch_list(MediaKind::Manga, &|_| {}).await.unwrap();
        let md = s.again();
        let before = s.fake.seen().len();
        let ack = md
            .apply(MediaKind::Manga, id(A), &Change::progress(3))
            .await
            .unwrap();
        assert_eq!(ack.state.unwrap().progress, 3);
        let seen = s.fake.seen();
        let asked: Vec<_> = seen[before..]
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect();
        assert_eq!(
            asked,
            vec![
                format!("GET /manga/{A}/aggregate"),
                format!("GET /manga/{A}/read"),
                format!("GET /manga/{A}/status"),
                format!("POST /manga/{A}/read"),
            ]
        );
        assert_eq!(
            seen.last().unwrap().body,
            format!(r#"{{"chapterIdsRead":["{CH2}"]}}"#)
        );
        // `current` asks for the status and markers again (they may have changed elsewhere).
        s.fake
            .world()
            .read
            .get_mut(A)
            .unwrap()
            .insert(CH3.to_string());
        let now = md.current(MediaKind::Manga, id(A)).await.unwrap().unwrap();
        assert_eq!(now.progress, 4);
        // A title never seen: said so, nothing sent.
        let before = s.fake.seen().len();
        assert!(matches!(
            md.apply(MediaKind::Manga, 42, &Change::progress(1)).await,
            Err(ProviderError::Local(m)) if m.contains("refresh the list")
        ));
        assert_eq!(s.fake.seen().len(), before);
    }

    #[tokio::test]
    async fn a_title_mangadex_no_longer_has_is_unreadable_then_refused() {
        let s = logged_in().await;
        let gone = "0a0b0c0d-1e1f-4a2b-8c3d-4e5f6a7b8c9d";
        s.fake
            .world()
            .statuses
            .insert(gone.to_string(), "reading".to_string());
        let fetched = s.md.fetch_list(MediaKind::Manga, &|_| {}).await.unwrap();
        assert_eq!((fetched.entries.len(), fetched.unreadable), (2, 1));
        // Its id is known all the same: a change is refused for good, a removal is done.
        let before = s.fake.seen().len();
        assert_eq!(
            s.md.apply(MediaKind::Manga, id(gone), &Change::progress(1))
                .await,
            Err(ProviderError::Rejected(
                "MangaDex no longer has this title (404)".into()
            ))
        );
        assert_eq!(
            s.fake.seen().len(),
            before + 1,
            "only the chapters were asked"
        );
        let ack =
            s.md.apply(MediaKind::Manga, id(gone), &Change::Remove)
                .await;
        assert_eq!(ack, Ok(Ack { state: None }));
    }

    #[tokio::test]
    async fn a_refused_token_is_refreshed_once_and_the_rotated_one_saved() {
        let s = logged_in().await;
        // The session was renewed on the server's side: tok1 is refused.
        s.fake.world().access = "elsewhere".into();
        let state = s.md.current(MediaKind::Manga, id(A)).await;
        // The id is not known yet (no fetch): the lookup is refused locally.
        assert!(matches!(state, Err(ProviderError::Local(_))));
        let fetched = s.md.fetch_list(MediaKind::Manga, &|_| {}).await.unwrap();
        assert_eq!(fetched.entries.len(), 2);
        let seen = s.fake.seen();
        assert_eq!(seen[0].auth.as_deref(), Some("Bearer tok1"));
        assert_eq!(seen[1].path, "/auth/token");
        let form: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(seen[1].body.as_bytes())
                .into_owned()
                .collect();
        assert_eq!(form["grant_type"], "refresh_token");
        assert_eq!(form["refresh_token"], "r1");
        assert_eq!(form["client_id"], "personal-client-1");
        assert_eq!(form["client_secret"], "s3cret");
        assert_eq!(seen[2].auth.as_deref(), Some("Bearer tok2"));
        let stored = s.tokens().load().unwrap().unwrap();
        assert_eq!(
            (stored.access_token.as_str(), stored.refresh_token.as_str()),
            ("tok2", "r2")
        );

        // Due soon: keep_fresh renews it, and says when to look again.
        s.tokens()
            .save(&TokenSet::new(
                "tok2".into(),
                "r2".into(),
                Duration::from_secs(100),
            ))
            .unwrap();
        let md = s.again();
        let wait = md.keep_fresh().await.unwrap().unwrap();
        assert!(
            wait >= Duration::from_secs(500) && wait <= Duration::from_secs(600),
            "{wait:?}"
        );
        assert_eq!(s.tokens().load().unwrap().unwrap().refresh_token, "r3");

        // A refresh token refused: the session has expired.
        s.fake.world().refresh = "gone".into();
        s.fake.world().access = "gone".into();
        assert_eq!(
            md.current(MediaKind::Manga, id(A)).await,
            Err(ProviderError::SessionExpired)
        );
    }

    #[tokio::test]
    async fn a_429_says_until_when_and_pauses_the_next_requests() {
        let s = logged_in().await;
        s.fake.world().throttle = true;
        match s.md.search(MediaKind::Manga, "alpha").await {
            Err(ProviderError::Throttled {
                wait: Some(wait),
                message,
            }) => {
                assert!(
                    wait >= Duration::from_secs(1) && wait <= Duration::from_secs(2),
                    "{wait:?}"
                );
                assert!(message.contains("429"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        s.fake.world().throttle = false;
        let start = std::time::Instant::now();
        let found = s.md.search(MediaKind::Manga, "alpha").await.unwrap();
        assert!(start.elapsed() >= Duration::from_millis(900));
        assert_eq!(found.len(), 1);
    }

    #[tokio::test]
    async fn search_and_details_are_public_and_remember_ids() {
        use crate::domain::Status;
        let s = logged_in().await;
        let found = s.md.search(MediaKind::Manga, "  alp ").await.unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].entry.id, id(A));
        assert_eq!(found[0].entry.status, Status::Planning);
        assert_eq!(found[0].year, Some(2020));
        let last = s.fake.seen().pop().unwrap();
        assert_eq!(last.auth, None, "no login sent for public data");
        let q: std::collections::HashMap<_, _> = last.query.iter().cloned().collect();
        assert_eq!(q["title"], "alp");
        assert_eq!(q["limit"], "20");
        assert_eq!(q["order[relevance]"], "desc");
        assert_eq!(s.md.search(MediaKind::Manga, "  ").await, Ok(Vec::new()));
        assert_eq!(s.md.search(MediaKind::Anime, "alpha").await, Ok(Vec::new()));

        let d = s.md.details(MediaKind::Manga, id(A)).await.unwrap();
        assert_eq!((d.id, d.title.as_str()), (id(A), "Alpha"));
        assert_eq!(d.state.as_deref(), Some("publishing"));
        let last = s.fake.seen().pop().unwrap();
        assert_eq!(last.path, format!("/manga/{A}"));
        assert_eq!(
            pairs(&last),
            vec![
                ("includes[]", "cover_art"),
                ("includes[]", "author"),
                ("includes[]", "artist")
            ]
        );
        assert_eq!(s.md.service(), Service::Mangadex);
        assert_eq!(s.md.kinds(), &[MediaKind::Manga]);
        assert!(!s.md.keeps_scores() && !s.md.keeps_volumes() && s.md.total_is_latest());
    }

    #[tokio::test]
    async fn a_login_stores_the_tokens_and_explains_a_refusal() {
        let (base, fake) = server::start().await;
        let dir = tempfile::tempdir().unwrap();
        let file = TokenFile::new(dir.path().join("mangadex.json"));
        let c = cfg(&base);
        let http = reqwest::Client::new();
        let e = finish_login(&c, http.clone(), file.clone(), "wrong-password")
            .await
            .unwrap_err();
        assert_eq!(e, "MangaDex refused the login: wrong username or password");
        assert_eq!(file.load().unwrap(), None);
        let name = finish_login(&c, http.clone(), file.clone(), "pw\n")
            .await
            .unwrap();
        assert_eq!(name, "reader");
        let stored = file.load().unwrap().unwrap();
        assert_eq!(
            (stored.access_token.as_str(), stored.refresh_token.as_str()),
            ("tok1", "r1")
        );
        assert!((stored.remaining() - 900).abs() < 60);
        let seen = fake.seen();
        let form: Vec<(String, String)> = url::form_urlencoded::parse(seen[1].body.as_bytes())
            .into_owned()
            .collect();
        assert_eq!(
            form,
            vec![
                ("grant_type".to_string(), "password".to_string()),
                ("username".into(), "reader".into()),
                ("password".into(), "pw".into()),
                ("client_id".into(), "personal-client-1".into()),
                ("client_secret".into(), "s3cret".into()),
            ]
        );
        let mut bad = c.clone();
        bad.client_secret = "old".into();
        let e = finish_login(&bad, http.clone(), file.clone(), "pw")
            .await
            .unwrap_err();
        assert!(e.contains("not approved yet"), "{e}");
        assert_eq!(
            finish_login(&c, http, file, "\n").await.unwrap_err(),
            "no password given: nothing was sent to MangaDex"
        );
    }
}
