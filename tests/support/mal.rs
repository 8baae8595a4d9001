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
//! - lists silently omit `gray`/`black` (NSFW-flagged) anime unless `nsfw=true`;
//! - `paging.next`/`previous` are absolute URLs (`offset` first); `paging` is `{}`
//!   on a single page; `limit` is clamped to 1000 (lists) / 100 (search);
//! - PATCH takes `num_watched_episodes` but answers `num_episodes_watched`; an
//!   unknown form field answers 400 "This form should not contain extra fields."
//!   (so sending the response name is caught); a non-form body is ignored like
//!   PHP does (a new entry is created with defaults, an existing one answers 500);
//! - JSON is served with PHP's `\/` escaping.
//!
//! Default list order (no `sort`): `updated_at` descending, then id ascending.
//!
//! ```ignore
//! let fake = FakeMal::start().await; // or FakeMal::start_background() in a sync #[test]
//! fake.add_anime(Anime { watched: 3, ..Anime::new(1, "Title", 12) });
//! let (access, refresh) = fake.issue_tokens(3600); // or run the real /authorize + /token flow
//! // point the app at fake.api_url() / fake.auth_url() with FakeMal::CLIENT_ID, then:
//! assert_eq!(fake.patches()[0].get("num_watched_episodes"), Some("4"));
//! ```

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use rand::RngExt;
use rand::distr::{Alphanumeric, SampleString};
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
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
/// 404 body (unknown anime, entry not on the list, unknown route).
pub const NOT_FOUND_BODY: &str = r#"{"message":"","error":"not_found"}"#;
/// 400 for an invalid PATCH value (score 11, non-numeric, unknown status…).
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
const USER_ID: u64 = 4_592_783;

// ---------------------------------------------------------------------------
// Public value types
// ---------------------------------------------------------------------------

/// An anime known to the fake; `add_anime` also puts it on the user's list
/// with `status`, `watched` and `score`.
#[derive(Clone, Debug)]
pub struct Anime {
    pub id: u64,
    pub title: String,
    /// 0 = unknown (as MAL sends for airing shows).
    pub num_episodes: u32,
    /// `"white" | "gray" | "black"`; non-white entries vanish from lists without `nsfw=true`.
    pub nsfw: &'static str,
    /// `watching | completed | on_hold | dropped | plan_to_watch`.
    pub status: &'static str,
    pub watched: u32,
    pub score: u8,
}

impl Anime {
    /// SFW ("white") anime, `watching`, 0 watched, score 0.
    pub fn new(id: u64, title: &str, num_episodes: u32) -> Anime {
        Anime {
            id,
            title: title.to_string(),
            num_episodes,
            nsfw: "white",
            status: "watching",
            watched: 0,
            score: 0,
        }
    }
}

/// One PATCH `/v2/anime/{id}/my_list_status` that passed auth, in arrival order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Patch {
    pub id: u64,
    /// Decoded form pairs, in the order sent (empty for a non-form body).
    pub form: Vec<(String, String)>,
}

impl Patch {
    /// First value of form field `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        first(&self.form, key)
    }
}

/// One request received (any path), in arrival order.
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

struct Title {
    title: String,
    num_episodes: u32,
    nsfw: &'static str,
}

#[derive(Clone)]
struct Entry {
    status: String,
    score: u8,
    watched: u32,
    is_rewatching: bool,
    updated_at: i64,
    priority: u8,
    num_times_rewatched: u32,
    rewatch_value: u8,
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
            watched: 0,
            is_rewatching: false,
            updated_at,
            priority: 0,
            num_times_rewatched: 0,
            rewatch_value: 0,
            tags: Vec::new(),
            comments: String::new(),
            start_date: None,
            finish_date: None,
        }
    }
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
    client_secret: Option<String>,
    registered_redirect: Option<String>,
    deny_authorization: bool,
    token_expires_in: u64,
    catalogue: BTreeMap<u64, Title>,
    list: BTreeMap<u64, Entry>,
    codes: HashMap<String, Code>,
    access: HashMap<String, AccessToken>,
    refresh: HashMap<String, RefreshToken>,
    patches: Vec<Patch>,
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
            client_secret: None,
            registered_redirect: None,
            deny_authorization: false,
            token_expires_in: DEFAULT_EXPIRES_IN,
            catalogue: BTreeMap::new(),
            list: BTreeMap::new(),
            codes: HashMap::new(),
            access: HashMap::new(),
            refresh: HashMap::new(),
            patches: Vec::new(),
            requests: Vec::new(),
            latency: Duration::ZERO,
            fail_api: VecDeque::new(),
            fail_token: VecDeque::new(),
            refresh_count: 0,
            last_update: 0,
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

    fn upsert_anime(&mut self, a: &Anime) {
        self.catalogue.insert(
            a.id,
            Title {
                title: a.title.clone(),
                num_episodes: a.num_episodes,
                nsfw: a.nsfw,
            },
        );
    }

    fn entry_mut(&mut self, id: u64) -> &mut Entry {
        assert!(
            self.catalogue.contains_key(&id),
            "FakeMal: anime {id} was never added"
        );
        if !self.list.contains_key(&id) {
            let now = self.bump();
            self.list.insert(id, Entry::new("watching", now));
        }
        self.list.get_mut(&id).expect("just inserted")
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

// ---------------------------------------------------------------------------
// Network plumbing: a listener that can be closed and reopened on the same
// port, and connections that die when the server "goes down".
// ---------------------------------------------------------------------------

struct Gate {
    listener: Option<TcpListener>,
    accept_waker: Option<Waker>,
    closed: bool,
}

struct Net {
    addr: SocketAddr,
    handle: tokio::runtime::Handle,
    gate: Mutex<Gate>,
    /// Bumped on every go_down; connections born in an older epoch are dead.
    epoch: AtomicU64,
    conns: Mutex<HashMap<u64, Waker>>,
    next_conn: AtomicU64,
}

impl Net {
    /// Stop listening (the port refuses connections) and kill open connections.
    fn down(&self, forever: bool) {
        {
            let mut g = lock(&self.gate);
            g.listener = None;
            g.closed |= forever;
            self.epoch.fetch_add(1, Ordering::SeqCst);
        }
        let wakers: Vec<Waker> = lock(&self.conns).drain().map(|(_, w)| w).collect();
        for w in wakers {
            w.wake();
        }
    }

    fn up(&self) {
        let mut g = lock(&self.gate);
        if g.closed || g.listener.is_some() {
            return;
        }
        let _rt = self.handle.enter();
        let std_listener = std::net::TcpListener::bind(self.addr)
            .unwrap_or_else(|e| panic!("FakeMal::go_up: cannot rebind {}: {e}", self.addr));
        std_listener.set_nonblocking(true).expect("set_nonblocking");
        g.listener = Some(TcpListener::from_std(std_listener).expect("register listener"));
        if let Some(w) = g.accept_waker.take() {
            w.wake();
        }
    }
}

struct FakeListener {
    net: Arc<Net>,
}

impl axum::serve::Listener for FakeListener {
    type Io = FakeIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (FakeIo, SocketAddr) {
        loop {
            let net = &self.net;
            let res = poll_fn(|cx| {
                let mut g = lock(&net.gate);
                g.accept_waker = Some(cx.waker().clone());
                match &g.listener {
                    Some(l) => l.poll_accept(cx).map(|r| {
                        let epoch = net.epoch.load(Ordering::SeqCst);
                        r.map(|(s, a)| (s, a, epoch))
                    }),
                    None => Poll::Pending,
                }
            })
            .await;
            match res {
                Ok((stream, addr, epoch)) => {
                    let _ = stream.set_nodelay(true);
                    let io = FakeIo {
                        inner: stream,
                        born: epoch,
                        id: net.next_conn.fetch_add(1, Ordering::SeqCst),
                        net: net.clone(),
                    };
                    return (io, addr);
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.net.addr)
    }
}

struct FakeIo {
    inner: TcpStream,
    born: u64,
    id: u64,
    net: Arc<Net>,
}

impl FakeIo {
    fn dead(&self) -> bool {
        self.net.epoch.load(Ordering::SeqCst) != self.born
    }
}

impl Drop for FakeIo {
    fn drop(&mut self) {
        lock(&self.net.conns).remove(&self.id);
    }
}

impl AsyncRead for FakeIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.dead() {
            return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
        }
        lock(&self.net.conns).insert(self.id, cx.waker().clone());
        if self.dead() {
            return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for FakeIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.dead() {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

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
    background: Option<(oneshot::Sender<()>, std::thread::JoinHandle<()>)>,
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
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("fake-mal".to_string())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("FakeMal: runtime");
                let (stop_tx, stop_rx) = oneshot::channel::<()>();
                let fake = rt.block_on(FakeMal::start());
                if tx.send((fake, stop_tx)).is_err() {
                    return;
                }
                rt.block_on(async {
                    let _ = stop_rx.await;
                });
                // Dropping the runtime cancels every connection task at once.
                drop(rt);
            })
            .expect("FakeMal: spawn thread");
        let (mut fake, stop_tx) = rx.recv().expect("FakeMal: background start failed");
        fake.background = Some((stop_tx, thread));
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

    /// Adds `a` to the catalogue and puts it on the user's list.
    pub fn add_anime(&self, a: Anime) {
        let mut w = self.world();
        w.upsert_anime(&a);
        let now = unix_now();
        w.last_update = w.last_update.max(now);
        let mut e = Entry::new(a.status, now);
        e.watched = a.watched;
        e.score = a.score;
        w.list.insert(a.id, e);
    }

    /// Adds `a` to the catalogue only (not on the list; PATCH upserts it).
    /// `status`, `watched` and `score` are ignored.
    pub fn add_to_catalogue(&self, a: Anime) {
        self.world().upsert_anime(&a);
    }

    /// `num_episodes_watched` of the list entry.
    pub fn watched(&self, id: u64) -> Option<u32> {
        self.world().list.get(&id).map(|e| e.watched)
    }

    /// List status of the entry (`watching`, …).
    pub fn status(&self, id: u64) -> Option<String> {
        self.world().list.get(&id).map(|e| e.status.clone())
    }

    /// Score of the entry.
    pub fn score(&self, id: u64) -> Option<u8> {
        self.world().list.get(&id).map(|e| e.score)
    }

    /// `updated_at` of the entry as served (`2021-03-16T07:36:44+00:00`).
    pub fn updated_at(&self, id: u64) -> Option<String> {
        self.world().list.get(&id).map(|e| fmt_time(e.updated_at))
    }

    /// Is the anime on the user's list?
    pub fn on_list(&self, id: u64) -> bool {
        self.world().list.contains_key(&id)
    }

    /// Simulates an edit on the website: sets episodes watched and bumps
    /// `updated_at`. Puts the anime on the list (`watching`) if absent; panics
    /// if it was never added.
    pub fn set_watched(&self, id: u64, n: u32) {
        let mut w = self.world();
        let now = w.bump();
        let e = w.entry_mut(id);
        e.watched = n;
        e.updated_at = now;
    }

    /// Website edit of the list status (see `set_watched`).
    pub fn set_status(&self, id: u64, status: &str) {
        assert!(ANIME_STATUSES.contains(&status), "bad status {status}");
        let mut w = self.world();
        let now = w.bump();
        let e = w.entry_mut(id);
        e.status = status.to_string();
        e.updated_at = now;
    }

    /// Website edit of the score (see `set_watched`).
    pub fn set_score(&self, id: u64, score: u8) {
        let mut w = self.world();
        let now = w.bump();
        let e = w.entry_mut(id);
        e.score = score;
        e.updated_at = now;
    }

    /// Website removal of the entry from the list (the anime stays known).
    pub fn remove_from_list(&self, id: u64) {
        self.world().list.remove(&id);
    }

    /// Every PATCH that passed auth, in arrival order.
    pub fn patches(&self) -> Vec<Patch> {
        self.world().patches.clone()
    }

    /// Every request received, in arrival order.
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
        .route("/anime", get(search))
        .route("/anime/{id}", get(details))
        .route(
            "/anime/{id}/my_list_status",
            patch(patch_status).delete(delete_status),
        )
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(app.clone(), api_gate));
    Router::new()
        .route("/v1/oauth2/authorize", get(authorize))
        .route("/v1/oauth2/token", post(token))
        .nest("/v2", api)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(app.clone(), record))
        .with_state(app)
}

async fn record(State(app): State<App>, req: Request, next: Next) -> Response {
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

/// Latency, injected failures and Bearer auth for every `/v2` request.
async fn api_gate(State(app): State<App>, req: Request, next: Next) -> Response {
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
    let ok = match bearer {
        Some(tok) => app.world().access_ok(tok),
        None if !user_scoped => req
            .headers()
            .get("x-mal-client-id")
            .is_some_and(|v| v.as_bytes() == FakeMal::CLIENT_ID.as_bytes()),
        None => false,
    };
    if !ok {
        return (
            StatusCode::UNAUTHORIZED,
            [
                (header::WWW_AUTHENTICATE, INVALID_TOKEN_WWW_AUTHENTICATE),
                (header::CONTENT_TYPE, JSON_CT),
            ],
            INVALID_TOKEN_BODY,
        )
            .into_response();
    }
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
    match p("client_id") {
        None => return invalid_request(&param_hint("client_id")),
        Some(id) if id != FakeMal::CLIENT_ID => {
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
    if client_id != FakeMal::CLIENT_ID || !secret_ok {
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
struct NodeJson {
    id: u64,
    title: String,
    main_picture: Picture,
    #[serde(skip_serializing_if = "Option::is_none")]
    alternative_titles: Option<AltTitles>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nsfw: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    media_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    my_list_status: Option<ListStatusJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    num_episodes: Option<u32>,
}

#[derive(Serialize)]
struct ListStatusJson {
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

/// `fields=a,b,list_status{c,d}` → `{a: [], b: [], list_status: [c, d]}`.
fn parse_fields(s: &str) -> HashMap<String, Vec<String>> {
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

fn list_status_json(e: &Entry, extra: &[String], everything: bool) -> ListStatusJson {
    let want = |k: &str| everything || extra.iter().any(|x| x == k);
    ListStatusJson {
        status: e.status.clone(),
        score: e.score,
        num_episodes_watched: e.watched,
        is_rewatching: e.is_rewatching,
        updated_at: fmt_time(e.updated_at),
        start_date: e.start_date.clone(),
        finish_date: e.finish_date.clone(),
        priority: want("priority").then_some(e.priority),
        num_times_rewatched: want("num_times_rewatched").then_some(e.num_times_rewatched),
        rewatch_value: want("rewatch_value").then_some(e.rewatch_value),
        tags: want("tags").then(|| e.tags.clone()),
        comments: want("comments").then(|| e.comments.clone()),
    }
}

fn node_json(
    id: u64,
    t: &Title,
    fields: &HashMap<String, Vec<String>>,
    entry: Option<&Entry>,
) -> NodeJson {
    let has = |k: &str| fields.contains_key(k);
    NodeJson {
        id,
        title: t.title.clone(),
        main_picture: Picture {
            medium: format!(
                "https://api-cdn.myanimelist.net/images/anime/{}/{id}.jpg",
                id % 100
            ),
            large: format!(
                "https://api-cdn.myanimelist.net/images/anime/{}/{id}l.jpg",
                id % 100
            ),
        },
        alternative_titles: has("alternative_titles").then(|| AltTitles {
            synonyms: Vec::new(),
            en: t.title.clone(),
            ja: String::new(),
        }),
        nsfw: has("nsfw").then_some(t.nsfw),
        media_type: has("media_type").then_some("tv"),
        status: has("status").then_some(if t.num_episodes == 0 {
            "currently_airing"
        } else {
            "finished_airing"
        }),
        my_list_status: match (fields.get("my_list_status"), entry) {
            (Some(subs), Some(e)) => Some(list_status_json(e, subs, false)),
            _ => None,
        },
        num_episodes: has("num_episodes").then_some(t.num_episodes),
    }
}

fn nsfw_allowed(params: &[(String, String)]) -> bool {
    matches!(first(params, "nsfw"), Some("true") | Some("1"))
}

/// `(limit, offset)` with MAL's default 100 and the given maximum (clamped).
/// `Err` is the 400 message.
fn limit_offset(params: &[(String, String)], max: usize) -> Result<(usize, usize), &'static str> {
    let limit = match first(params, "limit") {
        None => 100.min(max),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n > 0 => n.min(max),
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
    let params = parse_urlencoded(q.as_deref().unwrap_or(""));
    let status = first(&params, "status").filter(|s| !s.is_empty());
    if let Some(s) = status
        && !ANIME_STATUSES.contains(&s)
    {
        return bad_request("invalid status");
    }
    let (limit, offset) = match limit_offset(&params, 1000) {
        Ok(v) => v,
        Err(message) => return bad_request(message),
    };
    let sort = first(&params, "sort").unwrap_or("");
    if !matches!(
        sort,
        "" | "list_score" | "list_updated_at" | "anime_title" | "anime_start_date" | "anime_id"
    ) {
        return bad_request("invalid sort");
    }
    let nsfw = nsfw_allowed(&params);
    let fields = parse_fields(first(&params, "fields").unwrap_or(""));
    let no_subs = Vec::new();
    let ls_subs = fields.get("list_status").unwrap_or(&no_subs);

    let w = app.world();
    if user != "@me" && user != w.user {
        return json_str(StatusCode::NOT_FOUND, NOT_FOUND_BODY);
    }
    let mut rows: Vec<(u64, &Entry, &Title)> = w
        .list
        .iter()
        .filter_map(|(id, e)| w.catalogue.get(id).map(|t| (*id, e, t)))
        .filter(|(_, e, _)| status.is_none_or(|s| e.status == s))
        .filter(|(_, _, t)| nsfw || t.nsfw == "white")
        .collect();
    match sort {
        "list_score" => rows.sort_by(|a, b| b.1.score.cmp(&a.1.score).then(a.0.cmp(&b.0))),
        "anime_title" => rows.sort_by(|a, b| a.2.title.cmp(&b.2.title).then(a.0.cmp(&b.0))),
        "anime_start_date" | "anime_id" => rows.sort_by_key(|r| r.0),
        _ => rows.sort_by(|a, b| b.1.updated_at.cmp(&a.1.updated_at).then(a.0.cmp(&b.0))),
    }
    let total = rows.len();
    let data = rows
        .iter()
        .skip(offset)
        .take(limit)
        .map(|(id, e, t)| ListItem {
            node: node_json(*id, t, &fields, None),
            list_status: list_status_json(e, ls_subs, false),
        })
        .collect();
    let page = Page {
        data,
        paging: paging(&app.base, uri.path(), &params, total, limit, offset),
    };
    json(StatusCode::OK, &page)
}

async fn search(
    State(app): State<App>,
    OriginalUri(uri): OriginalUri,
    RawQuery(q): RawQuery,
) -> Response {
    let params = parse_urlencoded(q.as_deref().unwrap_or(""));
    let query = first(&params, "q").unwrap_or("").trim().to_lowercase();
    if query.chars().count() < 3 {
        return bad_request("invalid q");
    }
    let (limit, offset) = match limit_offset(&params, 100) {
        Ok(v) => v,
        Err(message) => return bad_request(message),
    };
    let nsfw = nsfw_allowed(&params);
    let fields = parse_fields(first(&params, "fields").unwrap_or(""));
    let w = app.world();
    let hits: Vec<(u64, &Title)> = w
        .catalogue
        .iter()
        .filter(|(_, t)| t.title.to_lowercase().contains(&query))
        .filter(|(_, t)| nsfw || t.nsfw == "white")
        .map(|(id, t)| (*id, t))
        .collect();
    let total = hits.len();
    let data = hits
        .iter()
        .skip(offset)
        .take(limit)
        .map(|(id, t)| SearchItem {
            node: node_json(*id, t, &fields, w.list.get(id)),
        })
        .collect();
    let page = Page {
        data,
        paging: paging(&app.base, uri.path(), &params, total, limit, offset),
    };
    json(StatusCode::OK, &page)
}

async fn details(
    State(app): State<App>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let params = parse_urlencoded(q.as_deref().unwrap_or(""));
    let fields = parse_fields(first(&params, "fields").unwrap_or(""));
    let w = app.world();
    let Some((id, t)) = id
        .parse::<u64>()
        .ok()
        .and_then(|id| w.catalogue.get(&id).map(|t| (id, t)))
    else {
        return json_str(StatusCode::NOT_FOUND, NOT_FOUND_BODY);
    };
    json(StatusCode::OK, &node_json(id, t, &fields, w.list.get(&id)))
}

#[derive(Default)]
struct Update {
    status: Option<String>,
    is_rewatching: Option<bool>,
    score: Option<u8>,
    watched: Option<u32>,
    priority: Option<u8>,
    num_times_rewatched: Option<u32>,
    rewatch_value: Option<u8>,
    tags: Option<Vec<String>>,
    comments: Option<String>,
    start_date: Option<Option<String>>,
    finish_date: Option<Option<String>>,
}

/// Validates the whole form first, so an invalid request changes nothing.
/// `Err` is the 400 body.
fn parse_update(form: &[(String, String)]) -> Result<Update, &'static str> {
    fn num<T: std::str::FromStr + PartialOrd>(v: &str, max: T) -> Result<T, &'static str> {
        match v.parse::<T>() {
            Ok(n) if n <= max => Ok(n),
            _ => Err(INVALID_CONTENT_BODY),
        }
    }
    fn date(v: &str) -> Result<Option<String>, &'static str> {
        if v.is_empty() {
            return Ok(None);
        }
        v.parse::<jiff::civil::Date>()
            .map(|_| Some(v.to_string()))
            .map_err(|_| INVALID_CONTENT_BODY)
    }
    let mut u = Update::default();
    for (k, v) in form {
        match k.as_str() {
            "status" => {
                if !ANIME_STATUSES.contains(&v.as_str()) {
                    return Err(INVALID_CONTENT_BODY);
                }
                u.status = Some(v.clone());
            }
            "is_rewatching" => {
                u.is_rewatching = Some(match v.as_str() {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => return Err(INVALID_CONTENT_BODY),
                });
            }
            "score" => u.score = Some(num(v, 10u8)?),
            "num_watched_episodes" => u.watched = Some(num(v, u32::MAX)?),
            "priority" => u.priority = Some(num(v, 2u8)?),
            "num_times_rewatched" => u.num_times_rewatched = Some(num(v, u32::MAX)?),
            "rewatch_value" => u.rewatch_value = Some(num(v, 5u8)?),
            "tags" => {
                u.tags = Some(
                    v.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect(),
                );
            }
            "comments" => u.comments = Some(v.clone()),
            "start_date" => u.start_date = Some(date(v)?),
            "finish_date" => u.finish_date = Some(date(v)?),
            _ => return Err(EXTRA_FIELDS_BODY),
        }
    }
    Ok(u)
}

async fn patch_status(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
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
        parse_urlencoded(&String::from_utf8_lossy(&body))
    } else {
        Vec::new()
    };
    let mut w = app.world();
    w.patches.push(Patch {
        id,
        form: form.clone(),
    });
    if !w.catalogue.contains_key(&id) {
        return json_str(StatusCode::NOT_FOUND, NOT_FOUND_BODY);
    }
    if !is_form && w.list.contains_key(&id) {
        return json_str(StatusCode::INTERNAL_SERVER_ERROR, INTERNAL_ERROR_BODY);
    }
    let u = match parse_update(&form) {
        Ok(u) => u,
        Err(body) => return json_str(StatusCode::BAD_REQUEST, body),
    };
    let now = w.bump();
    let e = w
        .list
        .entry(id)
        .or_insert_with(|| Entry::new("plan_to_watch", now));
    if let Some(v) = u.status {
        e.status = v;
    }
    if let Some(v) = u.is_rewatching {
        e.is_rewatching = v;
    }
    if let Some(v) = u.score {
        e.score = v;
    }
    if let Some(v) = u.watched {
        e.watched = v;
    }
    if let Some(v) = u.priority {
        e.priority = v;
    }
    if let Some(v) = u.num_times_rewatched {
        e.num_times_rewatched = v;
    }
    if let Some(v) = u.rewatch_value {
        e.rewatch_value = v;
    }
    if let Some(v) = u.tags {
        e.tags = v;
    }
    if let Some(v) = u.comments {
        e.comments = v;
    }
    if let Some(v) = u.start_date {
        e.start_date = v;
    }
    if let Some(v) = u.finish_date {
        e.finish_date = v;
    }
    e.updated_at = now;
    let out = list_status_json(e, &[], true);
    json(StatusCode::OK, &out)
}

async fn delete_status(State(app): State<App>, Path(id): Path<String>) -> Response {
    let mut w = app.world();
    match id.parse::<u64>().ok().and_then(|id| w.list.remove(&id)) {
        Some(_) => raw(StatusCode::OK, JSON_CT, "[]".to_string()),
        None => json_str(StatusCode::NOT_FOUND, NOT_FOUND_BODY),
    }
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
