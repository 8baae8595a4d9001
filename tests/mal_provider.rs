//! The MAL provider, the session and the outbox worker against the stateful fake MAL.

mod support;

use std::sync::Arc;
use std::time::Duration;

use malt::auth::{TokenFile, TokenSet};
use malt::config::{Config, MalConfig};
use malt::domain::{Change, MediaKind, Service, Status};
use malt::providers::mal::{Mal, finish_login};
use malt::providers::{Http, Provider, ProviderError, http_client};
use malt::store::{Db, Store};
use malt::sync::{Event, Worker};
use support::mal::{Anime, FakeMal};
use tokio::sync::Notify;

struct Setup {
    fake: FakeMal,
    cfg: MalConfig,
    tokens: TokenFile,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let fake = FakeMal::start().await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[mal]\nclient_id = \"{}\"\napi_url = \"{}\"\nauth_url = \"{}\"\n",
        FakeMal::CLIENT_ID,
        fake.api_url(),
        fake.auth_url()
    );
    let cfg = Config::parse(&dir.path().join("config.toml"), &text)
        .unwrap()
        .mal
        .unwrap();
    let tokens = TokenFile::new(dir.path().join("mal-tokens.json"));
    Setup {
        fake,
        cfg,
        tokens,
        _dir: dir,
    }
}

impl Setup {
    /// Stores a valid session, as `malt --login` would have.
    fn logged_in(&self) -> Mal {
        let (access, refresh) = self.fake.issue_tokens(3600);
        self.tokens
            .save(&TokenSet::new(access, refresh, Duration::from_secs(3600)))
            .unwrap();
        self.provider()
    }

    fn provider(&self) -> Mal {
        Mal::new(&self.cfg, Http::default(), self.tokens.clone())
    }
}

#[tokio::test]
async fn fetch_follows_every_page_and_includes_nsfw_entries() {
    let s = setup().await;
    for id in 1..=2500u64 {
        let mut a = Anime::new(id, &format!("Title {id:04}"), (id % 30) as u32);
        a.watched = (id % 7) as u32;
        a.nsfw = match id % 3 {
            0 => "white",
            1 => "gray",
            _ => "black",
        };
        s.fake.add_anime(a);
    }
    let mut other = Anime::new(9999, "Finished Show", 12);
    other.status = "completed";
    s.fake.add_anime(other);
    let mal = s.logged_in();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let entries = mal
        .fetch_list(Status::Watching, &move |n| log.lock().unwrap().push(n))
        .await
        .unwrap();
    assert_eq!(entries.unreadable, 0);
    let entries = entries.entries;
    assert_eq!(entries.len(), 2500);
    let mut ids: Vec<u64> = entries.iter().map(|e| e.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 2500, "every entry exactly once");
    assert_eq!(*seen.lock().unwrap(), vec![1000, 2000, 2500]);
    let e = entries.iter().find(|e| e.id == 30).unwrap();
    assert_eq!((e.progress, e.total), (2, None), "0 episodes means unknown");
    let e = entries.iter().find(|e| e.id == 31).unwrap();
    assert_eq!((e.progress, e.total), (3, Some(1)));

    let lists: Vec<_> = s
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v2/users/@me/animelist")
        .collect();
    assert_eq!(lists.len(), 3);
    let first: std::collections::HashMap<String, String> =
        support::mal::parse_urlencoded(&lists[0].query)
            .into_iter()
            .collect();
    assert_eq!(first["status"], "watching");
    assert_eq!(first["limit"], "1000");
    assert_eq!(first["nsfw"], "true");
    let fields: Vec<&str> = first["fields"].split(',').collect();
    assert!(
        fields.contains(&"num_episodes") && fields.contains(&"my_list_status"),
        "{fields:?}"
    );
    assert!(lists.iter().all(|r| {
        r.authorization
            .as_deref()
            .is_some_and(|a| a.starts_with("Bearer "))
    }));
}

#[tokio::test]
async fn one_patch_per_change_with_mals_field_name() {
    let s = setup().await;
    let mut a = Anime::new(5114, "Fullmetal Alchemist: Brotherhood", 64);
    a.watched = 5;
    s.fake.add_anime(a);
    let mal = s.logged_in();
    let ack = mal
        .apply(MediaKind::Anime, 5114, Change::Progress(6))
        .await
        .unwrap();
    assert_eq!(ack.progress, 6);
    let patches = s.fake.patches();
    assert_eq!(patches.len(), 1);
    assert_eq!(patches[0].id, 5114);
    assert_eq!(patches[0].get("num_watched_episodes"), Some("6"));
    assert_eq!(s.fake.watched(5114), Some(6));
}

#[tokio::test]
async fn an_expired_access_token_is_refreshed_once_saved_and_the_request_retried() {
    let s = setup().await;
    s.fake.add_anime(Anime::new(1, "A", 12));
    let mal = Arc::new(s.logged_in());
    let before = s.tokens.load().unwrap().unwrap();
    s.fake.expire_access_tokens();
    let mut tasks = Vec::new();
    for n in 1..=5 {
        let mal = mal.clone();
        tasks.push(tokio::spawn(async move {
            mal.fetch_list(Status::Watching, &|_| {}).await.map(|_| n)
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(
        s.fake.refresh_count(),
        1,
        "concurrent 401s cause one refresh"
    );
    let after = s.tokens.load().unwrap().unwrap();
    assert_ne!(
        after.refresh_token, before.refresh_token,
        "the rotated refresh token is stored"
    );
    assert_ne!(after.access_token, before.access_token);
    // The stored refresh token is the live one: a fresh session from the file can refresh again.
    s.fake.expire_access_tokens();
    let again = s.provider();
    again.fetch_list(Status::Watching, &|_| {}).await.unwrap();
    assert_eq!(s.fake.refresh_count(), 2);
}

#[tokio::test]
async fn two_processes_sharing_a_session_spend_the_rotating_refresh_token_once() {
    let s = setup().await;
    s.fake.add_anime(Anime::new(1, "A", 12));
    s.logged_in();
    // Two sessions over one token file, as two malt processes would have.
    let first = Arc::new(s.provider());
    let second = Arc::new(s.provider());
    first.fetch_list(Status::Watching, &|_| {}).await.unwrap();
    second.fetch_list(Status::Watching, &|_| {}).await.unwrap();
    s.fake.expire_access_tokens();
    let a = tokio::spawn({
        let p = first.clone();
        async move { p.fetch_list(Status::Watching, &|_| {}).await }
    });
    let b = tokio::spawn({
        let p = second.clone();
        async move { p.fetch_list(Status::Watching, &|_| {}).await }
    });
    a.await.unwrap().unwrap();
    b.await.unwrap().unwrap();
    assert_eq!(s.fake.refresh_count(), 1, "one refresh for both processes");
    // Both keep working with the one live token pair.
    first
        .apply(MediaKind::Anime, 1, Change::Progress(1))
        .await
        .unwrap();
    second
        .apply(MediaKind::Anime, 1, Change::Progress(2))
        .await
        .unwrap();
    assert_eq!(s.fake.refresh_count(), 1);
}

#[tokio::test]
async fn a_refused_refresh_means_login_again_and_a_new_login_is_picked_up() {
    let s = setup().await;
    s.fake.add_anime(Anime::new(1, "A", 12));
    let mal = s.logged_in();
    s.fake.expire_access_tokens();
    s.fake.revoke_refresh_tokens();
    let err = mal
        .apply(MediaKind::Anime, 1, Change::Progress(1))
        .await
        .unwrap_err();
    assert_eq!(err, ProviderError::SessionExpired);
    assert!(err.to_string().contains("malt --login"));
    assert!(s.fake.patches().is_empty());
    // Still expired, without asking the server again.
    assert_eq!(
        mal.keep_fresh().await.unwrap_err(),
        ProviderError::SessionExpired
    );
    // The user logs in again (another process writes the token file).
    let (access, refresh) = s.fake.issue_tokens(3600);
    s.tokens
        .save(&TokenSet::new(access, refresh, Duration::from_secs(3600)))
        .unwrap();
    mal.apply(MediaKind::Anime, 1, Change::Progress(1))
        .await
        .unwrap();
    assert_eq!(s.fake.watched(1), Some(1));
}

#[tokio::test]
async fn token_due_to_expire_is_refreshed_before_use() {
    let s = setup().await;
    let (access, refresh) = s.fake.issue_tokens(30);
    s.tokens
        .save(&TokenSet::new(access, refresh, Duration::from_secs(30)))
        .unwrap();
    let mal = s.provider();
    let wait = mal.keep_fresh().await.unwrap().unwrap();
    assert_eq!(s.fake.refresh_count(), 1);
    assert!(
        wait > Duration::from_secs(3600),
        "next check long after: {wait:?}"
    );
    let stored = s.tokens.load().unwrap().unwrap();
    assert!(stored.remaining() > 3600);
}

#[tokio::test]
async fn error_answers_become_clear_errors() {
    let s = setup().await;
    s.fake.add_anime(Anime::new(1, "A", 12));
    let mal = s.logged_in();
    let list = || mal.fetch_list(Status::Watching, &|_| {});

    s.fake.fail_next(
        1,
        403,
        r#"{"message":"","error":"forbidden"}"#,
        "application/json",
    );
    assert!(matches!(
        list().await,
        Err(ProviderError::Throttled { wait: None, .. })
    ));

    s.fake
        .fail_next_with_headers(1, 429, "{}", "application/json", &[("Retry-After", "7")]);
    assert!(matches!(
        list().await,
        Err(ProviderError::Throttled { wait: Some(w), .. }) if w == Duration::from_secs(7)
    ));

    s.fake.fail_next(
        1,
        503,
        "<html><body>Service Unavailable</body></html>",
        "text/html",
    );
    let err = list().await.unwrap_err();
    assert!(matches!(err, ProviderError::Server(_)), "{err:?}");
    assert!(err.to_string().contains("503"), "{err}");

    s.fake
        .fail_next(1, 200, "<html>maintenance</html>", "text/html");
    let err = list().await.unwrap_err();
    assert!(err.to_string().contains("HTML page"), "{err}");

    s.fake.fail_next(
        1,
        200,
        r#"{"data":[{"node":{"id":1,"title":"A""#,
        "application/json",
    );
    assert!(matches!(list().await, Err(ProviderError::BadResponse(_))));

    let err = mal
        .apply(MediaKind::Anime, 424242, Change::Progress(1))
        .await
        .unwrap_err();
    assert!(err.is_permanent(), "{err:?}");
    assert!(err.to_string().contains("404"), "{err}");

    s.fake.go_down();
    assert!(matches!(list().await, Err(ProviderError::Offline(_))));
    s.fake.go_up();
    assert_eq!(list().await.unwrap().entries.len(), 1);
}

#[tokio::test]
async fn the_worker_sends_queued_changes_in_order_one_at_a_time() {
    let s = setup().await;
    let mut a = Anime::new(1, "A", 24);
    a.watched = 5;
    s.fake.add_anime(a);
    s.fake.add_anime(Anime::new(2, "B", 12));
    s.fake.set_latency(Duration::from_millis(150));
    let provider: Arc<dyn Provider> = Arc::new(s.logged_in());
    let db = Db::spawn(Store::open_in_memory().unwrap());
    for (id, n) in [(1, 6), (1, 7), (2, 1), (1, 8)] {
        db.call(move |st| {
            st.enqueue(
                Service::Mal,
                MediaKind::Anime,
                id,
                Change::Progress(n),
                n - 1,
                0,
            )
        })
        .await
        .unwrap();
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let wake = Arc::new(Notify::new());
    let worker = tokio::spawn(
        Worker {
            provider,
            db: db.clone(),
            wake: wake.clone(),
            kick: Arc::new(Notify::new()),
            events: tx,
        }
        .run(),
    );
    let mut delivered = Vec::new();
    while delivered.len() < 4 {
        match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
            Ok(Some(Event::Delivered {
                media_id, progress, ..
            })) => delivered.push((media_id, progress)),
            Ok(Some(other)) => panic!("unexpected {other:?}"),
            _ => panic!("worker stalled after {delivered:?}"),
        }
    }
    worker.abort();
    let sent: Vec<(u64, String)> = s
        .fake
        .patches()
        .iter()
        .map(|p| {
            (
                p.id,
                p.get("num_watched_episodes").unwrap_or("").to_string(),
            )
        })
        .collect();
    let for_one: Vec<&str> = sent
        .iter()
        .filter(|(id, _)| *id == 1)
        .map(|(_, n)| n.as_str())
        .collect();
    assert_eq!(for_one, ["6", "7", "8"]);
    assert_eq!(sent.len(), 4, "exactly one PATCH per change");
    assert_eq!(s.fake.watched(1), Some(8));
    assert_eq!(s.fake.watched(2), Some(1));
    assert!(
        db.call(|st| st.pending(Service::Mal))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn the_worker_keeps_changes_through_an_outage_and_delivers_them_after() {
    let s = setup().await;
    s.fake.add_anime(Anime::new(1, "A", 24));
    let provider: Arc<dyn Provider> = Arc::new(s.logged_in());
    let db = Db::spawn(Store::open_in_memory().unwrap());
    s.fake
        .fail_next(1, 502, "<html>Bad Gateway</html>", "text/html");
    db.call(|st| st.enqueue(Service::Mal, MediaKind::Anime, 1, Change::Progress(1), 0, 0))
        .await
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let worker = tokio::spawn(
        Worker {
            provider,
            db: db.clone(),
            wake: Arc::new(Notify::new()),
            kick: Arc::new(Notify::new()),
            events: tx,
        }
        .run(),
    );
    let first = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(first, Event::Retrying { .. }), "{first:?}");
    assert_eq!(
        db.call(|st| st.pending(Service::Mal)).await.unwrap().len(),
        1
    );
    let second = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(second, Event::Delivered { progress: 1, .. }),
        "{second:?}"
    );
    worker.abort();
    assert_eq!(
        s.fake.patches().len(),
        1,
        "the failed attempt was answered before reaching the list"
    );
    assert_eq!(s.fake.watched(1), Some(1));
}

#[tokio::test]
async fn login_exchanges_the_code_with_its_verifier_and_stores_tokens_privately() {
    let s = setup().await;
    s.fake.set_user("Xinil");
    let verifier = malt::auth::pkce::new_verifier();
    let code = s.fake.mint_code(&verifier, s.cfg.redirect_uri.as_str());
    let name = finish_login(
        &s.cfg,
        http_client().unwrap(),
        s.tokens.clone(),
        &code,
        &verifier,
    )
    .await
    .unwrap();
    assert_eq!(name, "Xinil");
    let stored = s.tokens.load().unwrap().unwrap();
    assert!(
        stored.remaining() > 2_000_000,
        "expires_in from the answer is used"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(s.tokens.path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let code = s.fake.mint_code(&verifier, s.cfg.redirect_uri.as_str());
    let err = finish_login(
        &s.cfg,
        http_client().unwrap(),
        s.tokens.clone(),
        &code,
        &malt::auth::pkce::new_verifier(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("did not match this login attempt"), "{err}");
    assert!(!err.contains(&stored.access_token) && !err.contains(&stored.refresh_token));
}

/// Runs a worker over `db` until `n` events have arrived (or panics after 10 s of silence).
async fn worker_events(provider: Arc<dyn Provider>, db: &Db, n: usize) -> Vec<Event> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let worker = tokio::spawn(
        Worker {
            provider,
            db: db.clone(),
            wake: Arc::new(Notify::new()),
            kick: Arc::new(Notify::new()),
            events: tx,
        }
        .run(),
    );
    let mut events = Vec::new();
    while events.len() < n {
        match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
            Ok(Some(e)) => events.push(e),
            _ => panic!("worker stalled after {events:?}"),
        }
    }
    worker.abort();
    events
}

fn requests_to(fake: &FakeMal, method: &str, path: &str) -> usize {
    fake.requests()
        .iter()
        .filter(|r| r.method == method && r.path == path)
        .count()
}

#[tokio::test]
async fn a_change_made_while_online_is_one_request() {
    let s = setup().await;
    s.fake.add_anime(Anime {
        watched: 5,
        ..Anime::new(1, "A", 24)
    });
    let provider: Arc<dyn Provider> = Arc::new(s.logged_in());
    let db = Db::spawn(Store::open_in_memory().unwrap());
    db.call(|st| st.enqueue_fresh(Service::Mal, MediaKind::Anime, 1, Change::Progress(6), 5, 0))
        .await
        .unwrap();
    let events = worker_events(provider, &db, 1).await;
    assert!(
        matches!(events[0], Event::Delivered { progress: 6, .. }),
        "{events:?}"
    );
    assert_eq!(s.fake.requests().len(), 1, "{:?}", s.fake.requests());
}

#[tokio::test]
async fn an_edit_made_elsewhere_is_never_silently_overwritten() {
    let s = setup().await;
    s.fake.add_anime(Anime {
        watched: 5,
        ..Anime::new(1, "A", 24)
    });
    let provider: Arc<dyn Provider> = Arc::new(s.logged_in());
    let db = Db::spawn(Store::open_in_memory().unwrap());
    // Made offline on top of 5; meanwhile the website says 9.
    for n in [6, 7] {
        db.call(move |st| {
            st.enqueue(
                Service::Mal,
                MediaKind::Anime,
                1,
                Change::Progress(n),
                n - 1,
                0,
            )
        })
        .await
        .unwrap();
    }
    s.fake.set_watched(1, 9);
    let events = worker_events(provider.clone(), &db, 1).await;
    assert_eq!(
        events[0],
        Event::Conflict {
            media_id: 1,
            mine: 7,
            theirs: Some(9),
            held: 2
        }
    );
    assert!(s.fake.patches().is_empty());
    assert_eq!(s.fake.watched(1), Some(9));
    let held = db.call(|st| st.refused(Service::Mal)).await.unwrap();
    assert_eq!(held.len(), 2);
    assert!(held.iter().all(|(_, h)| h.conflict && h.theirs == Some(9)));
    assert!(
        db.call(|st| st.pending(Service::Mal))
            .await
            .unwrap()
            .is_empty()
    );

    // Keep mine: both changes go out as they were, in order; the service ends with mine.
    db.call(|st| st.retry_refused(Service::Mal, MediaKind::Anime, 1))
        .await
        .unwrap();
    let events = worker_events(provider, &db, 2).await;
    assert!(
        events.iter().all(|e| matches!(e, Event::Delivered { .. })),
        "{events:?}"
    );
    let sent: Vec<_> = s
        .fake
        .patches()
        .iter()
        .map(|p| p.get("num_watched_episodes").unwrap().to_string())
        .collect();
    assert_eq!(sent, ["6", "7"]);
    assert_eq!(s.fake.watched(1), Some(7));
}

#[tokio::test]
async fn keeping_the_services_side_of_a_conflict_drops_the_changes_and_takes_its_value() {
    let s = setup().await;
    s.fake.add_anime(Anime {
        watched: 5,
        ..Anime::new(1, "A", 24)
    });
    let provider: Arc<dyn Provider> = Arc::new(s.logged_in());
    let mut store = Store::open_in_memory().unwrap();
    let entry = provider
        .fetch_list(Status::Watching, &|_| {})
        .await
        .unwrap();
    store
        .replace_entries(Service::Mal, Status::Watching, &entry.entries, 0, false)
        .unwrap();
    let db = Db::spawn(store);
    db.call(|st| st.enqueue(Service::Mal, MediaKind::Anime, 1, Change::Progress(6), 5, 0))
        .await
        .unwrap();
    s.fake.remove_from_list(1);
    let events = worker_events(provider, &db, 1).await;
    assert!(
        matches!(
            events[0],
            Event::Conflict {
                theirs: None,
                mine: 6,
                ..
            }
        ),
        "{events:?}"
    );
    s.fake.add_anime(Anime {
        watched: 9,
        ..Anime::new(1, "A", 24)
    });
    assert_eq!(
        db.call(|st| st.drop_refused(Service::Mal, MediaKind::Anime, 1))
            .await
            .unwrap(),
        1
    );
    assert!(
        db.call(|st| st.refused(Service::Mal))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(s.fake.patches().is_empty(), "nothing was sent");
}

#[tokio::test]
async fn changes_an_earlier_run_sent_but_never_heard_back_from_are_not_sent_twice() {
    let s = setup().await;
    s.fake.add_anime(Anime {
        watched: 7,
        ..Anime::new(1, "A", 24)
    });
    let provider: Arc<dyn Provider> = Arc::new(s.logged_in());
    let db = Db::spawn(Store::open_in_memory().unwrap());
    // 6 and 7 reached the service before the last run was killed; 8 did not.
    for n in [6, 7, 8] {
        db.call(move |st| {
            st.enqueue(
                Service::Mal,
                MediaKind::Anime,
                1,
                Change::Progress(n),
                n - 1,
                0,
            )
        })
        .await
        .unwrap();
    }
    let events = worker_events(provider, &db, 3).await;
    let delivered: Vec<u32> = events
        .iter()
        .map(|e| match e {
            Event::Delivered { progress, .. } => *progress,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(delivered, [7, 7, 8]);
    let sent: Vec<_> = s
        .fake
        .patches()
        .iter()
        .map(|p| p.get("num_watched_episodes").unwrap().to_string())
        .collect();
    assert_eq!(sent, ["8"], "only the change that had not arrived is sent");
    assert_eq!(
        requests_to(&s.fake, "GET", "/v2/anime/1"),
        2,
        "one look before each unchecked change"
    );
}
