//! MyAnimeList API v2: the only file that knows MAL's URLs, field names and error shapes.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::{Response, StatusCode, Url};
use serde::Deserialize;

use super::{
    Details, Fetched, Found, Http, Provider, ProviderError, describe_transport, looks_like_html,
};
use crate::auth::{OAuthClient, OAuthError, Session, TokenFile, TokenSet};
use crate::config::MalConfig;
use crate::domain::airing::{AiringState, Schedule};
use crate::domain::{
    Ack, Change, ListEntry, ListState, Media, MediaKind, Patch, ScoreFormat, Service, Status,
};

/// MAL's largest page for list endpoints.
const PAGE_LIMIT: u32 = 1000;
/// A guard against a server that keeps sending `paging.next`.
const MAX_PAGES: usize = 500;

/// A logged-in MyAnimeList account.
pub struct Mal {
    http: Http,
    api: String,
    /// For public data when the session has expired (`X-MAL-CLIENT-ID`).
    client_id: String,
    session: Arc<Session>,
}

/// The `authorize` URL a browser is sent to (PKCE `plain`: the challenge is the verifier).
pub fn authorize_url(cfg: &MalConfig, verifier: &str, state: &str) -> Url {
    let mut url = endpoint(&cfg.auth_url, "authorize");
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &cfg.client_id)
        .append_pair("redirect_uri", cfg.redirect_uri.as_str())
        .append_pair("code_challenge", verifier)
        .append_pair("code_challenge_method", "plain")
        .append_pair("state", state);
    url
}

/// The client of MAL's token endpoint.
pub fn oauth_client(cfg: &MalConfig, http: Http) -> OAuthClient {
    OAuthClient::new(
        http,
        endpoint(&cfg.auth_url, "token"),
        cfg.client_id.clone(),
        cfg.client_secret.clone(),
    )
}

/// `base/name`, whether or not `base` ends in a slash.
fn endpoint(base: &Url, name: &str) -> Url {
    let mut url = base.clone();
    let path = format!("{}/{name}", base.path().trim_end_matches('/'));
    url.set_path(&path);
    url.set_query(None);
    url
}

/// Trades the code from the redirect for tokens, asks who logged in, and stores the tokens.
/// Returns the account name.
pub async fn finish_login(
    cfg: &MalConfig,
    http: reqwest::Client,
    file: TokenFile,
    code: &str,
    verifier: &str,
) -> Result<String, LoginError> {
    let oauth = oauth_client(cfg, Http::from(http.clone()));
    let tokens = oauth
        .exchange_code(code, verifier, cfg.redirect_uri.as_str())
        .await
        .map_err(LoginError::Token)?;
    let name = who_am_i(&http, &cfg.api_url, &tokens).await?;
    file.save(&tokens)
        .map_err(|e| LoginError::Other(e.to_string()))?;
    Ok(name)
}

/// Why the last steps of a login failed.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("MyAnimeList refused the login: {0}")]
    Token(OAuthError),
    #[error("logged in, but MyAnimeList would not say who you are: {0}")]
    Api(ProviderError),
    #[error("{0}")]
    Other(String),
}

async fn who_am_i(
    http: &reqwest::Client,
    api_url: &Url,
    tokens: &TokenSet,
) -> Result<String, LoginError> {
    let response = http
        .get(endpoint(api_url, "users/@me"))
        .bearer_auth(&tokens.access_token)
        .send()
        .await
        .map_err(|e| LoginError::Api(ProviderError::Offline(describe_transport(&e))))?;
    let response = check(response).await.map_err(LoginError::Api)?;
    let body = read_body(response).await.map_err(LoginError::Api)?;
    parse_user(&body).map_err(LoginError::Api)
}

impl Mal {
    pub fn new(cfg: &MalConfig, http: Http, file: TokenFile) -> Mal {
        let session = Arc::new(Session::new(file, oauth_client(cfg, http.clone())));
        Mal {
            http,
            api: cfg.api_url.as_str().trim_end_matches('/').to_string(),
            client_id: cfg.client_id.clone(),
            session,
        }
    }

    /// Sends a request built by `build` with the current access token. On 401 the session is
    /// refreshed (once, however many requests were rejected together) and the request retried once.
    async fn send(
        &self,
        build: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Result<Response, ProviderError> {
        let http = self.http.client().map_err(ProviderError::Local)?;
        let token = self.session.access().await?;
        let response = build(&http, &token)
            .send()
            .await
            .map_err(|e| ProviderError::Offline(describe_transport(&e)))?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return check(response).await;
        }
        tracing::info!("access token rejected (401); refreshing");
        let token = self.session.after_rejected(&token).await?;
        let response = build(&http, &token)
            .send()
            .await
            .map_err(|e| ProviderError::Offline(describe_transport(&e)))?;
        if response.status() == StatusCode::UNAUTHORIZED {
            return Err(ProviderError::SessionExpired);
        }
        check(response).await
    }

    /// The `paging.next` link, always on the configured API server: the user's token is never sent
    /// elsewhere, and a server that names itself differently (a proxy, a test server) still works.
    fn rebase(&self, next: &str) -> Result<Url, ProviderError> {
        let bad = || {
            ProviderError::BadResponse("MyAnimeList sent a next-page link malt cannot read".into())
        };
        let next = Url::parse(next)
            .or_else(|_| Url::parse(&self.api).and_then(|api| api.join(next)))
            .map_err(|_| bad())?;
        let mut url = Url::parse(&self.api).map_err(|_| bad())?;
        url.set_path(next.path());
        url.set_query(next.query());
        Ok(url)
    }
}

/// Turns a non-success answer into an error, reading MAL's `{"error","message"}` body.
async fn check(response: Response) -> Result<Response, ProviderError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = response.bytes().await.unwrap_or_default();
    let detail = error_detail(&body);
    let code = status.as_u16();
    Err(match status {
        StatusCode::UNAUTHORIZED => ProviderError::SessionExpired,
        StatusCode::FORBIDDEN => ProviderError::Throttled {
            wait: None,
            message: "MyAnimeList refused the request (403 Forbidden, usually too many requests); waiting a few minutes".into(),
        },
        StatusCode::TOO_MANY_REQUESTS => ProviderError::Throttled {
            wait: retry_after,
            message: "MyAnimeList asks to slow down (429)".into(),
        },
        StatusCode::NOT_FOUND => ProviderError::Rejected(format!("MyAnimeList: not found (404{detail})")),
        s if s.is_server_error() => ProviderError::Server(format!("MyAnimeList is having trouble (HTTP {code}{detail})")),
        s if s.is_client_error() => ProviderError::Rejected(format!("MyAnimeList refused the change (HTTP {code}{detail})")),
        _ => ProviderError::Server(format!("MyAnimeList answered HTTP {code}{detail}")),
    })
}

/// A 404 on a work's own address means the work is gone from MyAnimeList.
fn gone(e: ProviderError) -> ProviderError {
    match e {
        ProviderError::Rejected(m) if m.contains("404") => {
            ProviderError::Rejected("MyAnimeList no longer has this title (404)".into())
        }
        other => other,
    }
}

/// `: message` from an error body, or a note that it was an HTML page.
pub fn error_detail(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct ErrorBody {
        error: Option<String>,
        message: Option<String>,
    }
    if looks_like_html(body) {
        return ", an HTML page".into();
    }
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody {
            message: Some(m), ..
        }) if !m.trim().is_empty() => format!(": {}", super::one_line(&m)),
        Ok(ErrorBody { error: Some(e), .. }) if !e.trim().is_empty() => {
            format!(": {}", super::one_line(&e))
        }
        _ => String::new(),
    }
}

async fn read_body(response: Response) -> Result<Vec<u8>, ProviderError> {
    response
        .bytes()
        .await
        // Usually the only owner: no copy.
        .map(Vec::from)
        .map_err(|e| ProviderError::Offline(describe_transport(&e)))
}

fn decode<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ProviderError> {
    serde_json::from_slice(body).map_err(|e| {
        ProviderError::BadResponse(if looks_like_html(body) {
            "MyAnimeList sent an HTML page instead of data".into()
        } else {
            format!("MyAnimeList sent data malt cannot read ({e})")
        })
    })
}

#[derive(Deserialize)]
struct Page<'a> {
    /// Items are kept as raw text and read one by one, so one bad item does not lose the page,
    /// and no generic JSON tree is built for thousands of them. Required: MAL always sends it
    /// (`[]` for an empty list), and a body without it is not a list page.
    #[serde(borrow)]
    data: Vec<&'a serde_json::value::RawValue>,
    #[serde(default)]
    paging: Paging,
}

#[derive(Deserialize, Default)]
struct Paging {
    next: Option<String>,
}

#[derive(Deserialize)]
struct Item {
    node: Node,
    list_status: Option<MalListStatus>,
}

#[derive(Deserialize, Default)]
struct Picture {
    medium: Option<String>,
    large: Option<String>,
}

#[derive(Deserialize)]
struct Broadcast {
    day_of_the_week: Option<String>,
    start_time: Option<String>,
}

#[derive(Deserialize)]
struct Node {
    id: u64,
    #[serde(default)]
    title: String,
    num_episodes: Option<u32>,
    num_chapters: Option<u32>,
    num_volumes: Option<u32>,
    media_type: Option<String>,
    /// Airing (publishing) status of the work.
    status: Option<String>,
    start_date: Option<String>,
    broadcast: Option<Broadcast>,
    main_picture: Option<Picture>,
    my_list_status: Option<MalListStatus>,
}

/// A `list_status` / `my_list_status` object, anime or manga.
#[derive(Deserialize)]
struct MalListStatus {
    status: Option<String>,
    score: Option<u8>,
    num_episodes_watched: Option<u32>,
    num_chapters_read: Option<u32>,
    num_volumes_read: Option<u32>,
    is_rewatching: Option<bool>,
    is_rereading: Option<bool>,
    start_date: Option<String>,
    finish_date: Option<String>,
    updated_at: Option<String>,
}

impl MalListStatus {
    /// Episodes watched or chapters read.
    fn progress(&self, kind: MediaKind) -> Option<u32> {
        match kind {
            MediaKind::Anime => self.num_episodes_watched,
            MediaKind::Manga => self.num_chapters_read,
        }
    }

    fn state(&self, kind: MediaKind, progress: u32) -> ListState {
        ListState {
            status: self.status.as_deref().and_then(status_from_mal),
            progress,
            volumes: self.num_volumes_read.unwrap_or(0),
            score: self.score.unwrap_or(0).min(10),
            repeating: match kind {
                MediaKind::Anime => self.is_rewatching,
                MediaKind::Manga => self.is_rereading,
            }
            .unwrap_or(false),
            start_date: self.start_date.clone().filter(|d| !d.is_empty()),
            finish_date: self.finish_date.clone().filter(|d| !d.is_empty()),
            updated_at: self.updated_at.clone(),
        }
    }
}

/// MAL's word for a status (anime and manga spell two of them differently).
fn mal_status(kind: MediaKind, status: Status) -> &'static str {
    match (status, kind) {
        (Status::Current, MediaKind::Anime) => "watching",
        (Status::Current, MediaKind::Manga) => "reading",
        (Status::Completed, _) => "completed",
        (Status::OnHold, _) => "on_hold",
        (Status::Dropped, _) => "dropped",
        (Status::Planning, MediaKind::Anime) => "plan_to_watch",
        (Status::Planning, MediaKind::Manga) => "plan_to_read",
    }
}

fn status_from_mal(s: &str) -> Option<Status> {
    Some(match s {
        "watching" | "reading" => Status::Current,
        "completed" => Status::Completed,
        "on_hold" => Status::OnHold,
        "dropped" => Status::Dropped,
        "plan_to_watch" | "plan_to_read" => Status::Planning,
        _ => return None,
    })
}

/// `anime` or `manga` in MAL's paths.
fn path(kind: MediaKind) -> &'static str {
    kind.key()
}

/// The `fields` asked for with a list.
fn list_fields(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Anime => {
            "num_episodes,media_type,status,start_date,broadcast,my_list_status,list_status{start_date,finish_date}"
        }
        MediaKind::Manga => {
            "num_chapters,num_volumes,media_type,status,my_list_status,list_status{start_date,finish_date}"
        }
    }
}

impl Node {
    /// The facts about the work this node carries.
    fn media(&self, kind: MediaKind) -> Media {
        let schedule = match (kind, self.status.as_deref().and_then(AiringState::from_mal)) {
            (MediaKind::Anime, Some(state)) => Some(Schedule {
                state,
                start_date: self.start_date.clone(),
                broadcast_day: self
                    .broadcast
                    .as_ref()
                    .and_then(|b| b.day_of_the_week.clone()),
                broadcast_time: self.broadcast.as_ref().and_then(|b| b.start_time.clone()),
                episodes: self.num_episodes.filter(|n| *n > 0),
                next_exact: None,
            }),
            _ => None,
        };
        Media {
            media_type: self.media_type.clone(),
            picture: self
                .main_picture
                .as_ref()
                .and_then(|p| p.large.clone().or_else(|| p.medium.clone())),
            schedule: schedule.map(Box::new),
            ongoing: false,
        }
    }

    fn total(&self, kind: MediaKind) -> Option<u32> {
        // MAL says 0 when it does not know the number yet.
        match kind {
            MediaKind::Anime => self.num_episodes,
            MediaKind::Manga => self.num_chapters,
        }
        .filter(|n| *n > 0)
    }

    fn title(&self) -> String {
        if self.title.is_empty() {
            format!("#{}", self.id)
        } else {
            self.title.clone()
        }
    }
}

/// One page of a list answer: the entries malt can read, and the link to the next page.
#[derive(Debug, PartialEq, Eq)]
pub struct ListPage {
    pub entries: Vec<ListEntry>,
    pub next: Option<String>,
    /// Items on the page that could not be read.
    pub skipped: usize,
}

/// Reads a `GET /users/@me/animelist` (or `mangalist`) answer. Items that cannot be read are
/// skipped (and logged); a body that is not a list page at all is an error.
pub fn parse_list_page(body: &[u8], kind: MediaKind) -> Result<ListPage, ProviderError> {
    let page: Page = decode(body)?;
    let items = page.data.len();
    let entries: Vec<ListEntry> = page
        .data
        .into_iter()
        .filter_map(|v| entry_from_item(v, kind))
        .collect();
    if items > 0 && entries.is_empty() {
        // Emptying the cached list on a page of nonsense would lose it.
        return Err(ProviderError::BadResponse(
            "MyAnimeList sent a list malt cannot read any entry of".into(),
        ));
    }
    Ok(ListPage {
        skipped: items - entries.len(),
        entries,
        next: page.paging.next.filter(|n| !n.is_empty()),
    })
}

/// Reads a `PATCH …/my_list_status` answer: what MAL now holds. A count MAL leaves out is taken
/// from what was sent.
pub fn parse_list_status(
    body: &[u8],
    kind: MediaKind,
    sent: &Patch,
) -> Result<ListState, ProviderError> {
    let status: MalListStatus = decode(body)?;
    let progress = status.progress(kind).or(sent.progress).ok_or_else(|| {
        ProviderError::BadResponse(format!(
            "MyAnimeList did not say how many {} are done",
            kind.units()
        ))
    })?;
    let mut state = status.state(kind, progress);
    if status.num_volumes_read.is_none() {
        state.volumes = sent.volumes.unwrap_or(0);
    }
    Ok(state)
}

/// Reads a `GET /anime/{id}?fields=my_list_status` answer: what the user's list holds, or `None`
/// when the work is not on it.
pub fn parse_my_status(body: &[u8], kind: MediaKind) -> Result<Option<ListState>, ProviderError> {
    #[derive(Deserialize)]
    struct Details {
        /// Required, whatever its type: an answer without it is not a work's details (and must
        /// not read as "not on your list").
        #[serde(rename = "id")]
        _id: serde::de::IgnoredAny,
        my_list_status: Option<MalListStatus>,
    }
    let details: Details = decode(body)?;
    match details.my_list_status {
        None => Ok(None),
        Some(s) => match s.progress(kind) {
            Some(n) => Ok(Some(s.state(kind, n))),
            None => Err(ProviderError::BadResponse(format!(
                "MyAnimeList did not say how many {} are done",
                kind.units()
            ))),
        },
    }
}

/// Reads a `GET /users/@me` answer: the account name.
pub fn parse_user(body: &[u8]) -> Result<String, ProviderError> {
    #[derive(Deserialize)]
    struct Me {
        name: String,
    }
    let me: Me = decode(body)?;
    Ok(me.name)
}

/// One list item as a [`ListEntry`]; `None` (and a log line) for an item malt cannot read.
fn entry_from_item(raw: &serde_json::value::RawValue, kind: MediaKind) -> Option<ListEntry> {
    let item: Item = match serde_json::from_str(raw.get()) {
        Ok(item) => item,
        Err(e) => {
            tracing::warn!("skipping a list item malt cannot read: {e}");
            return None;
        }
    };
    let Item {
        mut node,
        list_status,
    } = item;
    let list = list_status.or_else(|| node.my_list_status.take());
    // Without the count done the entry cannot be shown truthfully, and a `+` on a made-up 0 would
    // overwrite the real count. Without a status it would land in a tab it is not in.
    let state = list
        .as_ref()
        .and_then(|l| l.progress(kind).map(|n| l.state(kind, n)));
    let Some((state, status)) = state.and_then(|s| s.status.map(|st| (s, st))) else {
        tracing::warn!(
            id = node.id,
            "skipping a list item without its status or count"
        );
        return None;
    };
    let mut media = node.media(kind);
    // Only a show still to air has a schedule worth keeping in the list: thousands of finished
    // ones would each carry one for nothing.
    media.schedule.take_if(|s| s.state == AiringState::Finished);
    let mut entry = ListEntry {
        total: node.total(kind),
        total_volumes: node.num_volumes.filter(|n| *n > 0),
        media,
        ..ListEntry::new(node.id, kind, &node.title(), status)
    };
    entry.set_state(&state);
    Some(entry)
}

/// Reads a search answer (`GET /anime?q=`).
pub fn parse_search(body: &[u8], kind: MediaKind) -> Result<Vec<Found>, ProviderError> {
    #[derive(Deserialize)]
    struct SearchItem {
        node: SearchNode,
    }
    #[derive(Deserialize)]
    struct SearchNode {
        #[serde(flatten)]
        node: Node,
        mean: Option<f64>,
        start_season: Option<Season>,
    }
    #[derive(Deserialize)]
    struct Season {
        year: Option<i32>,
    }
    let page: Page = decode(body)?;
    let mut found = Vec::new();
    for raw in page.data {
        let item: SearchItem = match serde_json::from_str(raw.get()) {
            Ok(item) => item,
            Err(e) => {
                tracing::warn!("skipping a search result malt cannot read: {e}");
                continue;
            }
        };
        let SearchNode {
            node,
            mean,
            start_season,
        } = item.node;
        let year = start_season.and_then(|s| s.year).or_else(|| {
            node.start_date
                .as_deref()
                .and_then(|d| d.get(..4))
                .and_then(|y| y.parse().ok())
        });
        found.push(Found {
            entry: ListEntry {
                total: node.total(kind),
                total_volumes: node.num_volumes.filter(|n| *n > 0),
                media: node.media(kind),
                ..ListEntry::new(node.id, kind, &node.title(), Status::Planning)
            },
            year,
            mean: mean
                .filter(|m| m.is_finite() && *m > 0.0)
                .map(|m| format!("{m:.2}")),
        });
    }
    Ok(found)
}

/// Reads a details answer (`GET /anime/{id}` with the details fields).
pub fn parse_details(body: &[u8], kind: MediaKind) -> Result<Details, ProviderError> {
    #[derive(Deserialize)]
    struct Raw {
        #[serde(flatten)]
        node: Node,
        synopsis: Option<String>,
        alternative_titles: Option<AltTitles>,
        end_date: Option<String>,
        mean: Option<f64>,
        /// `null`, and genres without a name, read as none.
        genres: Option<Vec<Option<Genre>>>,
    }
    #[derive(Deserialize)]
    struct AltTitles {
        en: Option<String>,
    }
    #[derive(Deserialize)]
    struct Genre {
        name: Option<String>,
    }
    let raw: Raw = decode(body)?;
    let media = raw.node.media(kind);
    Ok(Details {
        kind: Some(kind),
        id: raw.node.id,
        title: raw.node.title(),
        alt_title: raw
            .alternative_titles
            .and_then(|a| a.en)
            .filter(|t| !t.trim().is_empty() && *t != raw.node.title),
        synopsis: raw.synopsis.filter(|s| !s.trim().is_empty()),
        media_type: raw.node.media_type.clone(),
        total: raw.node.total(kind),
        total_volumes: raw.node.num_volumes.filter(|n| *n > 0),
        state: raw.node.status.as_deref().map(|s| s.replace('_', " ")),
        start_date: raw.node.start_date.clone(),
        end_date: raw.end_date,
        mean: raw
            .mean
            .filter(|m| m.is_finite() && *m > 0.0)
            .map(|m| format!("{m:.2}")),
        genres: raw
            .genres
            .unwrap_or_default()
            .into_iter()
            .flatten()
            .filter_map(|g| g.name)
            .filter(|n| !n.trim().is_empty())
            .collect(),
        schedule: media.schedule.map(|s| *s),
        picture: media.picture,
    })
}

/// The longest query MAL accepts (longer ones are answered "400 invalid q").
const MAX_QUERY_CHARS: usize = 64;
/// The shortest query MAL accepts.
pub const MIN_QUERY_CHARS: usize = 3;

/// A query as MAL accepts it: trimmed, at most 64 characters; `None` when too short to send.
pub fn search_query(query: &str) -> Option<String> {
    let q: String = query.trim().chars().take(MAX_QUERY_CHARS).collect();
    let q = q.trim_end().to_string();
    (q.chars().count() >= MIN_QUERY_CHARS).then_some(q)
}

impl Mal {
    fn url(&self, path: &str) -> Result<Url, ProviderError> {
        Url::parse(&format!("{}/{path}", self.api))
            .map_err(|e| ProviderError::Local(format!("api_url: {e}")))
    }

    /// A GET of public data: with the user's token while the session is good, with the client id
    /// alone (`X-MAL-CLIENT-ID`) when it is not.
    async fn get_public(&self, url: Url) -> Result<Vec<u8>, ProviderError> {
        let signed_in = self
            .send(|http, token| http.get(url.clone()).bearer_auth(token))
            .await;
        let response = match signed_in {
            Err(e) if e.needs_login() => {
                let http = self.http.client().map_err(ProviderError::Local)?;
                let response = http
                    .get(url.clone())
                    .header("X-MAL-CLIENT-ID", &self.client_id)
                    .send()
                    .await
                    .map_err(|e| ProviderError::Offline(describe_transport(&e)))?;
                check(response).await?
            }
            other => other?,
        };
        read_body(response).await
    }
}

#[async_trait]
impl Provider for Mal {
    fn service(&self) -> Service {
        Service::Mal
    }

    fn kinds(&self) -> &'static [MediaKind] {
        &MediaKind::ALL
    }

    async fn fetch_list(
        &self,
        kind: MediaKind,
        arrived: &(dyn Fn(usize) + Send + Sync),
    ) -> Result<Fetched, ProviderError> {
        let mut url = self.url(&format!("users/@me/{}list", path(kind)))?;
        url.query_pairs_mut()
            .append_pair("fields", list_fields(kind))
            .append_pair("sort", &format!("{}_title", path(kind)))
            .append_pair("limit", &PAGE_LIMIT.to_string())
            .append_pair("nsfw", "true");
        let mut entries: Vec<ListEntry> = Vec::new();
        let mut unreadable = 0;
        let mut seen = std::collections::HashSet::new();
        for _ in 0..MAX_PAGES {
            let response = self
                .send(|http, token| http.get(url.clone()).bearer_auth(token))
                .await?;
            let page = parse_list_page(&read_body(response).await?, kind)?;
            unreadable += page.skipped;
            for entry in page.entries {
                // Entries can shift between pages while the list changes; keep each once.
                if seen.insert(entry.id) {
                    entries.push(entry);
                }
            }
            arrived(entries.len());
            let Some(next) = page.next else {
                return Ok(Fetched {
                    entries,
                    unreadable,
                    // MyAnimeList scores 0–10, whatever the account.
                    score_format: Some(ScoreFormat::Point10),
                });
            };
            let next = self.rebase(&next)?;
            if next == url {
                return Err(ProviderError::BadResponse(
                    "MyAnimeList sent the same page again as the next one; stopped".into(),
                ));
            }
            url = next;
        }
        Err(ProviderError::BadResponse(format!(
            "MyAnimeList kept sending more pages (over {MAX_PAGES}); stopped"
        )))
    }

    async fn apply(
        &self,
        kind: MediaKind,
        media_id: u64,
        change: &Change,
    ) -> Result<Ack, ProviderError> {
        let url = format!("{}/{}/{media_id}/my_list_status", self.api, path(kind));
        let patch = match change {
            Change::Remove => {
                let result = self
                    .send(|http, token| http.delete(&url).bearer_auth(token))
                    .await;
                return match result {
                    Ok(_) => Ok(Ack { state: None }),
                    // Not on the list (any more): what the removal wanted.
                    Err(ProviderError::Rejected(m)) if m.contains("404") => Ok(Ack { state: None }),
                    Err(e) => Err(e),
                };
            }
            Change::Set(patch) => patch,
        };
        let mut form: Vec<(&str, String)> = Vec::new();
        if let Some(s) = patch.status {
            form.push(("status", mal_status(kind, s).to_string()));
        }
        if let Some(n) = patch.progress {
            // MAL's anime request field is `num_watched_episodes`; its answer calls it
            // `num_episodes_watched`.
            let name = match kind {
                MediaKind::Anime => "num_watched_episodes",
                MediaKind::Manga => "num_chapters_read",
            };
            form.push((name, n.to_string()));
        }
        if let Some(n) = patch.volumes.filter(|_| kind == MediaKind::Manga) {
            form.push(("num_volumes_read", n.to_string()));
        }
        if let Some(n) = patch.score {
            form.push(("score", n.min(10).to_string()));
        }
        if let Some(r) = patch.repeating {
            let name = match kind {
                MediaKind::Anime => "is_rewatching",
                MediaKind::Manga => "is_rereading",
            };
            form.push((name, r.to_string()));
        }
        if let Some(d) = &patch.start_date {
            form.push(("start_date", d.clone()));
        }
        if let Some(d) = &patch.finish_date {
            form.push(("finish_date", d.clone()));
        }
        let response = self
            .send(|http, token| http.patch(&url).bearer_auth(token).form(&form))
            .await
            .map_err(gone)?;
        let state = parse_list_status(&read_body(response).await?, kind, patch)?;
        Ok(Ack { state: Some(state) })
    }

    async fn current(
        &self,
        kind: MediaKind,
        media_id: u64,
    ) -> Result<Option<ListState>, ProviderError> {
        let mut url = self.url(&format!("{}/{media_id}", path(kind)))?;
        url.query_pairs_mut()
            .append_pair("fields", "my_list_status")
            .append_pair("nsfw", "true");
        let response = self
            .send(|http, token| http.get(url.clone()).bearer_auth(token))
            .await
            .map_err(gone)?;
        parse_my_status(&read_body(response).await?, kind)
    }

    async fn search(&self, kind: MediaKind, query: &str) -> Result<Vec<Found>, ProviderError> {
        let Some(q) = search_query(query) else {
            return Err(ProviderError::Rejected(format!(
                "type at least {MIN_QUERY_CHARS} characters to search"
            )));
        };
        let mut url = self.url(path(kind))?;
        let fields = match kind {
            MediaKind::Anime => {
                "media_type,num_episodes,start_season,mean,status,start_date,broadcast"
            }
            MediaKind::Manga => "media_type,num_chapters,num_volumes,start_date,mean,status",
        };
        url.query_pairs_mut()
            .append_pair("q", &q)
            .append_pair("limit", "30")
            .append_pair("fields", fields)
            .append_pair("nsfw", "true");
        parse_search(&self.get_public(url).await?, kind)
    }

    async fn details(&self, kind: MediaKind, media_id: u64) -> Result<Details, ProviderError> {
        let mut url = self.url(&format!("{}/{media_id}", path(kind)))?;
        let fields = match kind {
            MediaKind::Anime => {
                "alternative_titles,synopsis,media_type,num_episodes,status,start_date,end_date,mean,genres,broadcast"
            }
            MediaKind::Manga => {
                "alternative_titles,synopsis,media_type,num_chapters,num_volumes,status,start_date,end_date,mean,genres"
            }
        };
        url.query_pairs_mut()
            .append_pair("fields", fields)
            .append_pair("nsfw", "true");
        parse_details(&self.get_public(url).await.map_err(gone)?, kind)
    }

    async fn keep_fresh(&self) -> Result<Option<Duration>, ProviderError> {
        Ok(Some(self.session.refresh_if_due().await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> MalConfig {
        crate::config::Config::parse(
            std::path::Path::new("c.toml"),
            "[mal]\nclient_id = \"cid\"\n",
        )
        .unwrap()
        .mal
        .unwrap()
    }

    #[test]
    fn authorize_url_carries_pkce_plain() {
        let url = authorize_url(&cfg(), "verifier-x", "state-y");
        assert_eq!(url.path(), "/v1/oauth2/authorize");
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["client_id"], "cid");
        assert_eq!(q["code_challenge"], "verifier-x");
        assert_eq!(q["code_challenge_method"], "plain");
        assert_eq!(q["state"], "state-y");
        assert_eq!(q["redirect_uri"], "http://127.0.0.1:53682/callback");
    }

    #[test]
    fn next_page_links_stay_on_the_configured_server() {
        let file = TokenFile::new(std::env::temp_dir().join("malt-unused-tokens.json"));
        let mut c = cfg();
        c.api_url = Url::parse("http://127.0.0.1:9/v2").unwrap();
        let mal = Mal::new(&c, Http::default(), file);
        let next = mal
            .rebase("https://api.myanimelist.net/v2/users/@me/animelist?offset=1000&limit=1000&nsfw=true")
            .unwrap();
        assert_eq!(
            next.as_str(),
            "http://127.0.0.1:9/v2/users/@me/animelist?offset=1000&limit=1000&nsfw=true"
        );
        let evil = mal.rebase("https://evil.example/steal?x=1").unwrap();
        assert_eq!(evil.host_str(), Some("127.0.0.1"));
    }

    #[test]
    fn recorded_list_page_parses() {
        let page = parse_list_page(
            include_bytes!("../../tests/fixtures/mal/user-animelist-page.json"),
            MediaKind::Anime,
        )
        .unwrap();
        let entries = page.entries;
        assert!(!entries.is_empty());
        assert!(entries.iter().all(|e| !e.title.is_empty()));
    }

    #[test]
    fn zero_episodes_means_unknown_nulls_are_tolerated_and_bad_items_skipped() {
        let body = br#"{"data":[
            {"node": {"id": 1, "title": "Ongoing", "num_episodes": 0},
             "list_status": {"status": "watching", "score": null, "num_episodes_watched": 3}},
            {"node": {"id": "x"}},
            {"node": {"id": 2, "title": "Fine", "num_episodes": 12}, "list_status": {"status": "on_hold", "num_episodes_watched": 4}},
            {"node": {"id": 3, "title": "No status", "num_episodes": 12}, "list_status": {"num_episodes_watched": 4}}
        ], "paging": {}}"#;
        let page = parse_list_page(body, MediaKind::Anime).unwrap();
        let got: Vec<_> = page
            .entries
            .iter()
            .map(|e| (e.id, e.total, e.score, e.progress))
            .collect();
        assert_eq!(got, vec![(1, None, 0, 3), (2, Some(12), 0, 4)]);
        assert_eq!(page.next, None);
    }

    #[test]
    fn patch_response_uses_the_other_field_name() {
        let s: MalListStatus = serde_json::from_str(include_str!(
            "../../tests/fixtures/mal/patch-anime-my_list_status-response.json"
        ))
        .unwrap();
        assert!(s.num_episodes_watched.is_some());
    }

    #[test]
    fn details_tolerate_null_genres_and_nameless_ones() {
        let d = parse_details(
            br#"{"id": 1, "title": "X", "genres": null}"#,
            MediaKind::Anime,
        )
        .unwrap();
        assert!(d.genres.is_empty());
        let d = parse_details(
            br#"{"id": 1, "title": "X", "genres": [{"id": 1}, null, {"id": 2, "name": "Drama"}]}"#,
            MediaKind::Anime,
        )
        .unwrap();
        assert_eq!(d.genres, vec!["Drama".to_string()]);
    }

    #[test]
    fn error_details_read_mal_bodies_and_html() {
        assert_eq!(
            error_detail(br#"{"error":"bad_request","message":"invalid q"}"#),
            ": invalid q"
        );
        assert_eq!(
            error_detail(br#"{"message":"","error":"forbidden"}"#),
            ": forbidden"
        );
        assert_eq!(
            error_detail(b"  <html><body>blocked</body></html>"),
            ", an HTML page"
        );
        assert_eq!(error_detail(b"garbage"), "");
    }
}
