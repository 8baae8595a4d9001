//! One trait for every list service. Nothing outside `providers/<service>.rs` knows a service's URLs,
//! field names or error shapes.

pub mod anilist;
pub mod demo;
pub mod mal;
pub mod mangadex;
pub mod pace;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;

use crate::domain::airing::Schedule;
use crate::domain::{Ack, Change, ListEntry, ListState, MediaKind, ScoreFormat, Service};

/// Why a provider call failed, in words for the status bar. [`ProviderError::is_permanent`] tells
/// the outbox whether trying again can help.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    #[error("not logged in: run `malt --login`")]
    NotLoggedIn,
    #[error("session expired: run `malt --login` to sign in again")]
    SessionExpired,
    /// The saved login could not be read (the message says where the damaged copy is kept).
    #[error("{0}")]
    LoginDamaged(String),
    /// No answer: no network, DNS, refused connection, timeout.
    #[error("offline ({0})")]
    Offline(String),
    /// The service asks us to slow down; `wait` is how long when it said so.
    #[error("{message}")]
    Throttled {
        wait: Option<Duration>,
        message: String,
    },
    /// A passing failure on the service's side (5xx).
    #[error("{0}")]
    Server(String),
    /// The service refused this request for good (it will refuse it again).
    #[error("{0}")]
    Rejected(String),
    /// The answer could not be read.
    #[error("{0}")]
    BadResponse(String),
    /// Something on this machine (the token file).
    #[error("{0}")]
    Local(String),
}

impl ProviderError {
    /// Trying the same request again cannot succeed.
    pub fn is_permanent(&self) -> bool {
        matches!(self, ProviderError::Rejected(_))
    }

    /// The error in words for one service: a login problem names that service's login command.
    pub fn for_service(&self, service: Service) -> String {
        self.to_string()
            .replace("`malt --login`", &format!("`{}`", service.login_command()))
    }

    /// Only a new login helps.
    pub fn needs_login(&self) -> bool {
        matches!(
            self,
            ProviderError::NotLoggedIn
                | ProviderError::SessionExpired
                | ProviderError::LoginDamaged(_)
        )
    }
}

impl From<crate::auth::AuthError> for ProviderError {
    fn from(e: crate::auth::AuthError) -> Self {
        use crate::auth::AuthError;
        match e {
            AuthError::NotLoggedIn => ProviderError::NotLoggedIn,
            AuthError::SessionExpired => ProviderError::SessionExpired,
            AuthError::Offline(m) => ProviderError::Offline(m),
            AuthError::Storage(m) => ProviderError::Local(m),
            AuthError::Server(m) => ProviderError::Server(m),
            AuthError::Damaged(m) => ProviderError::LoginDamaged(m),
        }
    }
}

/// A fetched list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fetched {
    pub entries: Vec<ListEntry>,
    /// Items the service sent that could not be read. When there are any, entries missing from
    /// `entries` may be among them: the cache keeps what it knew of those.
    pub unreadable: usize,
    /// How the account scores, when the service lets the user choose (the entries' scores are
    /// counted in it).
    pub score_format: Option<ScoreFormat>,
}

/// A search result: the work as it would be added, with a few facts to choose by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// The work as a new list entry (status "plan to watch", nothing done yet).
    pub entry: ListEntry,
    pub year: Option<i32>,
    /// The service's mean score, as it shows it ("8.51").
    pub mean: Option<String>,
}

/// What the details pane shows about a work.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Details {
    pub kind: Option<MediaKind>,
    pub id: u64,
    pub title: String,
    /// The English title, when it differs.
    pub alt_title: Option<String>,
    pub synopsis: Option<String>,
    pub media_type: Option<String>,
    /// Episodes / chapters.
    pub total: Option<u32>,
    pub total_volumes: Option<u32>,
    /// Airing or publishing status, in words ("currently airing").
    pub state: Option<String>,
    pub start_date: Option<String>,
    pub end_date: Option<String>,
    pub mean: Option<String>,
    pub genres: Vec<String>,
    pub schedule: Option<Schedule>,
    /// Cover art address.
    pub picture: Option<String>,
}

/// A list service.
#[async_trait]
pub trait Provider: Send + Sync {
    fn service(&self) -> Service;

    /// The kinds of list the service keeps (anime, manga).
    fn kinds(&self) -> &'static [MediaKind];

    /// Every entry of one kind, every status, all pages. `arrived` is told how many entries have
    /// come so far.
    async fn fetch_list(
        &self,
        kind: MediaKind,
        arrived: &(dyn Fn(usize) + Send + Sync),
    ) -> Result<Fetched, ProviderError>;

    /// Sends one change; answers with what the service now holds.
    async fn apply(
        &self,
        kind: MediaKind,
        media_id: u64,
        change: &Change,
    ) -> Result<Ack, ProviderError>;

    /// What the service holds for an entry now (`None`: it is not on the list), to check a change
    /// made offline against edits made elsewhere before sending it.
    async fn current(
        &self,
        kind: MediaKind,
        media_id: u64,
    ) -> Result<Option<ListState>, ProviderError>;

    /// Works whose title matches `query`.
    async fn search(&self, kind: MediaKind, query: &str) -> Result<Vec<Found>, ProviderError>;

    /// Everything the details pane shows about a work.
    async fn details(&self, kind: MediaKind, media_id: u64) -> Result<Details, ProviderError>;

    /// Renews the session when it is about to expire. Returns when to call again, or `None` when
    /// the service's session never needs renewing.
    async fn keep_fresh(&self) -> Result<Option<Duration>, ProviderError>;

    /// Whether the list keeps a score per entry (MangaDex's reading list does not).
    fn keeps_scores(&self) -> bool {
        true
    }

    /// Whether a manga's total is the latest chapter out (MangaDex) rather than the length of a
    /// finished work: then fewer read than the total means new chapters to read, marked `●`.
    fn total_is_latest(&self) -> bool {
        false
    }

    /// Whether the list keeps the volumes read of a manga (MangaDex's reading list does not).
    fn keeps_volumes(&self) -> bool {
        true
    }

    /// The service's own id of a work, as its website and its users write it (MangaDex: the
    /// UUID; elsewhere the number malt keys it by).
    fn public_id(&self, _kind: MediaKind, media_id: u64) -> String {
        media_id.to_string()
    }

    /// malt's id of a work from the service's own id (`mal:52991`, `mangadex:UUID`), when `text`
    /// is one.
    fn id_from_public(&self, text: &str) -> Option<u64> {
        text.trim().parse().ok().filter(|id| *id > 0)
    }

    /// Whether one change may reach the service in several requests (MangaDex: a reading status,
    /// then the chapters to mark, at most 250 a request). A change found part of the way there
    /// (stopped between two of them by a failure or a kill) is then carried on rather than taken
    /// for an edit made elsewhere: see [`crate::domain::Op::partly_landed`]. `apply` must then send
    /// only what the service does not hold yet.
    fn lands_in_parts(&self) -> bool {
        false
    }

    /// Something the user should know about the session while it still works ("the AniList
    /// login ends in 9 days"), checked after each [`Provider::keep_fresh`].
    fn session_warning(&self) -> Option<String> {
        None
    }
}

/// A transport failure in a few words, without the URL (which may carry more than it should).
pub fn describe_transport(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "the server did not answer in time"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "the answer was cut off"
    } else if e.is_request() {
        "the request could not be sent"
    } else {
        "network error"
    };
    match e.url().and_then(|u| u.host_str()) {
        Some(host) => format!("{what} to {host}"),
        None => what.to_string(),
    }
}

/// A server's words on one line, at most 200 characters: they end up in the status bar.
pub fn one_line(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

/// Whether a body is an HTML page rather than the JSON an API should send.
pub fn looks_like_html(body: &[u8]) -> bool {
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .map_or(&[][..], |i| &body[i..]);
    start.first() == Some(&b'<')
}

/// The HTTP client every provider shares, built on first use: loading the system's certificates
/// takes milliseconds the first frame should not wait for. Clones share one client.
#[derive(Clone, Default)]
pub struct Http(Arc<OnceLock<Result<reqwest::Client, String>>>);

impl Http {
    pub fn client(&self) -> Result<reqwest::Client, String> {
        self.0.get_or_init(http_client).clone()
    }
}

impl From<reqwest::Client> for Http {
    fn from(client: reqwest::Client) -> Http {
        Http(Arc::new(OnceLock::from(Ok(client))))
    }
}

/// A new HTTP client: connect and request timeouts, a proper User-Agent.
pub fn http_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .user_agent(concat!(
            "malt/",
            env!("CARGO_PKG_VERSION"),
            " (terminal list tracker)"
        ))
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| format!("cannot set up HTTPS: {e}"))
}
