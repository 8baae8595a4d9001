//! The MangaDex provider, its session and the outbox worker against the stateful fake MangaDex
//! (`tests/support/mangadex.rs`, built from MangaDex's docs and the recorded answers, not from
//! malt's code), everything on 127.0.0.1. The AniList equivalent is `tests/anilist_provider.rs`.
//!
//! Each test has its own fake and its own provider, so its own pace (a burst of 5 requests, then
//! 5 a second) and the fake's own 5-a-second bucket.

mod support;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use malt::auth::{TokenFile, TokenSet};
use malt::config::{Config, MangadexConfig};
use malt::domain::{Change, ListEntry, MediaKind, Patch, Service, Status};
use malt::providers::mangadex::{Mangadex, finish_login};
use malt::providers::{Http, Provider, ProviderError, http_client};
use malt::store::{Db, Store};
use malt::sync::{Event, Worker, now_ms};
use serde_json::{Value, json};
use support::mangadex::{
    CLIENT_ID, CLIENT_SECRET, Chapter, DEFAULT_PASSWORD, DEFAULT_USERNAME, FakeMangadex, Fault,
    Manga, Req,
};
use tokio::sync::Notify;
use tokio::sync::mpsc::UnboundedReceiver;

const MANGA: MediaKind = MediaKind::Manga;

// ---------------------------------------------------------------------------------------------
// Ids and titles

/// The UUID of test title `n`.
fn manga_uuid(n: u32) -> String {
    format!("{n:08x}-6d61-4e67-a000-0000000000aa")
}

/// The UUID of upload `k` of title `n`.
fn chapter_uuid(n: u32, k: u32) -> String {
    format!("{n:08x}-c4a9-4000-8000-{k:012x}")
}

/// malt's id of a MangaDex title, as the decision says: the UUID's first 16 hex digits.
fn mid(uuid: &str) -> u64 {
    let hex: String = uuid.chars().filter(|c| *c != '-').take(16).collect();
    u64::from_str_radix(&hex, 16).unwrap()
}

/// Title `n` with English chapters `(volume, chapter)` (uploads `n:1`, `n:2`, …). Returns the
/// title's UUID and its chapters' ids in the order given.
fn add_title(
    fake: &FakeMangadex,
    n: u32,
    title: &str,
    chapters: &[(Option<&str>, Option<&str>)],
) -> (String, Vec<String>) {
    let id = manga_uuid(n);
    fake.add_manga(Manga::new(&id, title).cover(&format!("cover-{n}.jpg")));
    let ids: Vec<String> = (1..=chapters.len() as u32)
        .map(|k| chapter_uuid(n, k))
        .collect();
    if !chapters.is_empty() {
        fake.add_chapters(
            &id,
            chapters
                .iter()
                .zip(&ids)
                .map(|((v, c), cid)| Chapter::new(cid, *v, *c))
                .collect(),
        );
    }
    (id, ids)
}

/// Chapters 1..=n in volume 1.
fn numbered(n: u32) -> Vec<(Option<&'static str>, Option<&'static str>)> {
    const NUMBERS: [&str; 12] = [
        "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12",
    ];
    NUMBERS[..n as usize]
        .iter()
        .map(|c| (Some("1"), Some(*c)))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Setup

struct Setup {
    fake: FakeMangadex,
    cfg: MangadexConfig,
    tokens: TokenFile,
    ids: PathBuf,
    dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let fake = FakeMangadex::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config::parse(&dir.path().join("config.toml"), &fake.config_toml())
        .unwrap()
        .mangadex
        .unwrap();
    Setup {
        tokens: TokenFile::new(dir.path().join("mangadex-tokens.json")),
        ids: dir.path().join("mangadex-ids.json"),
        fake,
        cfg,
        dir,
    }
}

impl Setup {
    /// `malt --login mangadex` with the right password.
    async fn login(&self) -> String {
        finish_login(
            &self.cfg,
            http_client().unwrap(),
            self.tokens.clone(),
            DEFAULT_PASSWORD,
        )
        .await
        .unwrap()
    }

    /// A provider on this setup's token and id files (a new value is a restart).
    fn provider(&self) -> Mangadex {
        Mangadex::new(
            &self.cfg,
            Http::default(),
            self.tokens.clone(),
            self.ids.clone(),
        )
    }

    async fn logged_in(&self) -> Mangadex {
        self.login().await;
        self.provider()
    }

    fn stored(&self) -> TokenSet {
        self.tokens.load().unwrap().expect("a stored login")
    }

    /// `METHOD path` of every API request from `from` on.
    fn asked(&self, from: usize) -> Vec<String> {
        self.fake.api_requests()[from..]
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }

    /// The `POST /manga/{id}/read` requests, in order.
    fn read_posts(&self, manga: &str) -> Vec<Req> {
        let path = format!("/manga/{manga}/read");
        self.fake
            .api_requests()
            .into_iter()
            .filter(|r| r.method == "POST" && r.path == path)
            .collect()
    }

    /// Fails if any secret (password, client secret, a token the fake issued) is in `text`.
    fn assert_no_secret(&self, text: &str) {
        let mut secrets = vec![DEFAULT_PASSWORD.to_string(), CLIENT_SECRET.to_string()];
        if let Some(t) = self.fake.last_issued() {
            secrets.push(t.access);
            secrets.push(t.refresh);
        }
        if let Ok(Some(t)) = self.tokens.load() {
            secrets.push(t.access_token);
            secrets.push(t.refresh_token);
        }
        for secret in secrets {
            assert!(!text.contains(&secret), "a secret in {text:?}");
            // No long piece of a token either.
            if secret.len() > 40 {
                assert!(!text.contains(&secret[..24]), "part of a token in {text:?}");
            }
        }
    }
}

fn by_id(entries: &[ListEntry], uuid: &str) -> ListEntry {
    entries
        .iter()
        .find(|e| e.id == mid(uuid))
        .cloned()
        .unwrap_or_else(|| panic!("no entry {uuid} in {entries:#?}"))
}

fn read_body(read: &[&str], unread: &[&str]) -> Value {
    let mut body = serde_json::Map::new();
    if !read.is_empty() {
        body.insert("chapterIdsRead".into(), json!(read));
    }
    if !unread.is_empty() {
        body.insert("chapterIdsUnread".into(), json!(unread));
    }
    Value::Object(body)
}

/// Whether a MangaDex API path is the user's (needs the login) rather than public data.
fn is_users(path: &str) -> bool {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    matches!(
        segs.as_slice(),
        ["manga", "status"] | ["manga", "read"] | ["manga", _, "status"] | ["manga", _, "read"]
    )
}

/// The user's endpoints were sent `access`, public ones no `Authorization` at all (MangaDex's
/// authentication guide: an authenticated request cannot be cached).
fn assert_login_only_on_the_users_endpoints(log: &[Req], access: &str) {
    for r in log {
        if is_users(&r.path) {
            assert_eq!(r.bearer.as_deref(), Some(access), "{} {}", r.method, r.path);
        } else {
            assert!(
                !r.auth,
                "the login sent with {} {}?{}",
                r.method, r.path, r.query
            );
        }
    }
}

fn now_secs() -> i64 {
    jiff::Timestamp::now().as_second()
}

// ---------------------------------------------------------------------------------------------
// Fetching the list

#[tokio::test]
async fn every_reading_status_arrives_with_its_title_cover_and_furthest_chapter_read() {
    let s = setup().await;
    let statuses = [
        ("reading", Status::Current, false),
        ("on_hold", Status::OnHold, false),
        ("plan_to_read", Status::Planning, false),
        ("dropped", Status::Dropped, false),
        ("re_reading", Status::Current, true),
        ("completed", Status::Completed, false),
    ];
    let mut titles = Vec::new();
    for (i, (word, _, _)) in statuses.iter().enumerate() {
        let n = i as u32 + 1;
        let (id, chapters) = add_title(&s.fake, n, &format!("Title {word}"), &numbered(4));
        s.fake.set_status(&id, Some(word));
        // Title n has its first n-1 chapters read (at most 4).
        let read: Vec<&str> = chapters.iter().take(i).map(String::as_str).collect();
        s.fake.mark_read(&id, &read);
        titles.push(id);
    }
    // Rated pornographic: MangaDex leaves it out unless asked for every rating.
    let (adult, _) = add_title(&s.fake, 7, "Adult title", &numbered(2));
    s.fake
        .edit_manga(&adult, |m| m.content_rating = "pornographic".into());
    s.fake.set_status(&adult, Some("reading"));

    let md = s.logged_in().await;
    let arrived = Mutex::new(Vec::new());
    let fetched = md
        .fetch_list(MANGA, &|n| arrived.lock().unwrap().push(n))
        .await
        .unwrap();
    assert_eq!(fetched.unreadable, 0);
    assert_eq!(fetched.score_format, None);
    assert_eq!(fetched.entries.len(), 7, "{:#?}", fetched.entries);
    for (i, ((word, status, repeating), id)) in statuses.iter().zip(&titles).enumerate() {
        let e = by_id(&fetched.entries, id);
        assert_eq!(e.title, format!("Title {word}"));
        assert_eq!(e.kind, MANGA);
        assert_eq!((e.status, e.repeating), (*status, *repeating), "{word}");
        assert_eq!(e.progress, (i as u32).min(4), "{word}: chapters read");
        assert_eq!(e.total, Some(4), "{word}: chapters out");
        assert_eq!((e.score, e.volumes, e.total_volumes), (0, 0, None));
        assert_eq!(
            e.media.picture.as_deref(),
            Some(format!("{}/covers/{id}/cover-{}.jpg.256.jpg", s.fake.base(), i + 1).as_str()),
        );
    }
    assert_eq!(by_id(&fetched.entries, &adult).title, "Adult title");
    assert_eq!(arrived.lock().unwrap().last(), Some(&7));

    // status, titles, read markers, then one aggregate per title; the login only on the user's
    // list (titles and chapters are public: MangaDex caches them only when asked without it).
    let log = s.fake.api_requests();
    let asked: Vec<String> = log
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        asked[..3],
        ["GET /manga/status", "GET /manga", "GET /manga/read"]
    );
    let mut aggregates: Vec<String> = asked[3..].to_vec();
    aggregates.sort();
    let mut want: Vec<String> = titles
        .iter()
        .chain([&adult])
        .map(|id| format!("GET /manga/{id}/aggregate"))
        .collect();
    want.sort();
    assert_eq!(aggregates, want);
    assert_login_only_on_the_users_endpoints(&log, &s.stored().access_token);
    for r in &log {
        assert_eq!(r.status, 200, "{} {}", r.path, r.query);
    }
    assert!(log[0].auth && !log[1].auth && log[2].auth && !log[3].auth);
    assert_eq!(log[1].query_array("ids").len(), 7);
    assert!(
        log[1]
            .query_array("contentRating")
            .contains(&"pornographic".to_string())
    );
    assert_eq!(log[2].query_array("ids").len(), 7);
    for r in &log[3..] {
        assert_eq!(r.query_array("translatedLanguage"), ["en"]);
    }

    // MangaDex keeps no anime: nothing is asked.
    let before = s.fake.api_requests().len();
    let anime = md.fetch_list(MediaKind::Anime, &|_| {}).await.unwrap();
    assert!(anime.entries.is_empty());
    assert_eq!(s.fake.api_requests().len(), before);
    assert_eq!(md.kinds(), &[MANGA]);
    assert_eq!(md.service(), Service::Mangadex);
    assert!(!md.keeps_scores() && !md.keeps_volumes() && md.total_is_latest());
}

#[tokio::test]
async fn the_aggregates_quirks_are_read_and_chapters_ordered_by_number() {
    let s = setup().await;
    // 1. Nothing out: `"volumes":[]`.
    let (empty, _) = add_title(&s.fake, 1, "Nothing out", &[]);
    // 2. Volume "0" holding only chapter "0", then volume "1": both maps are JSON arrays.
    let (zero, zero_ch) = add_title(
        &s.fake,
        2,
        "Starts at zero",
        &[
            (Some("0"), Some("0")),
            (Some("1"), Some("1")),
            (Some("1"), Some("2")),
        ],
    );
    // 3. Everything at once, uploaded out of order: "10.5", chapters without a volume, one without
    //    a number, an alternative upload, a French chapter (not in `languages`).
    let mixed = manga_uuid(3);
    s.fake.add_manga(Manga::new(&mixed, "Mixed bag"));
    let c = |k| chapter_uuid(3, k);
    s.fake.add_chapters(
        &mixed,
        vec![
            Chapter::new(&c(1), Some("2"), Some("11")),
            Chapter::new(&c(2), Some("1"), Some("2")).others(&[&c(20)]),
            Chapter::new(&c(3), Some("2"), Some("10.5")),
            Chapter::new(&c(4), None, Some("12")),
            Chapter::new(&c(5), Some("1"), Some("1")),
            Chapter::new(&c(6), None, None),
            Chapter::new(&c(7), Some("2"), Some("10")),
            Chapter::new(&c(8), Some("3"), Some("13")).language("fr"),
        ],
    );
    // Reading order: 1, 2 (or its alternative), 10, 10.5, 11, 12, the unnumbered one.
    // 4. On the list, but MangaDex no longer serves the title.
    let (gone, _) = add_title(&s.fake, 4, "Taken down", &numbered(2));
    for id in [&empty, &zero, &mixed, &gone] {
        s.fake.set_status(id, Some("reading"));
    }
    s.fake.mark_read(&zero, &[&zero_ch[1]]);
    // The alternative upload of chapter 2 and chapter 10.5 are read; 10 is not (a gap).
    s.fake.mark_read(&mixed, &[&c(20), &c(3)]);
    s.fake.remove_manga(&gone);

    // The quirks are there.
    let raw = |id: &str| {
        let url = format!(
            "{}/manga/{id}/aggregate?translatedLanguage[]=en",
            s.fake.api_url()
        );
        async move { reqwest::get(url).await.unwrap().text().await.unwrap() }
    };
    assert!(raw(&empty).await.contains(r#""volumes":[]"#));
    let zero_raw = raw(&zero).await;
    assert!(zero_raw.contains(r#""volumes":[{"#), "{zero_raw}");
    assert!(zero_raw.contains(r#""chapters":[{"#), "{zero_raw}");
    let mixed_raw = raw(&mixed).await;
    assert!(mixed_raw.contains(r#""none":{"#), "{mixed_raw}");
    assert!(mixed_raw.contains(r#""10.5":{"#), "{mixed_raw}");
    s.fake.clear_logs();
    s.fake.reset_rate_limit();

    let md = s.logged_in().await;
    let fetched = md.fetch_list(MANGA, &|_| {}).await.unwrap();
    assert_eq!(fetched.unreadable, 1, "the title MangaDex no longer serves");
    assert_eq!(fetched.entries.len(), 3, "{:#?}", fetched.entries);
    let e = by_id(&fetched.entries, &empty);
    assert_eq!((e.progress, e.total), (0, None), "nothing out");
    let e = by_id(&fetched.entries, &zero);
    assert_eq!((e.progress, e.total), (2, Some(3)), "chapters 0, 1, 2");
    let e = by_id(&fetched.entries, &mixed);
    assert_eq!(
        (e.progress, e.total),
        (4, Some(7)),
        "10.5 is the 4th of 1, 2, 10, 10.5, 11, 12, (none)"
    );

    // The order is what `+` and `-` follow: the next chapter is 11, then 12, then the unnumbered.
    let id = mid(&mixed);
    for (n, want) in [(5, c(1)), (6, c(4)), (7, c(6))] {
        let ack = md.apply(MANGA, id, &Change::progress(n)).await.unwrap();
        assert_eq!(ack.state.unwrap().progress, n);
        let last = s.read_posts(&mixed).pop().unwrap();
        assert_eq!(last.json(), Some(read_body(&[&want], &[])), "to {n}");
    }
    // Back to 1: chapters 2 (its alternative upload is what is read), 10.5, 11, 12 and the
    // unnumbered one are marked unread; 10 was never read.
    let ack = md.apply(MANGA, id, &Change::progress(1)).await.unwrap();
    assert_eq!(ack.state.unwrap().progress, 0, "chapter 1 was never read");
    let last = s.read_posts(&mixed).pop().unwrap();
    let unread: BTreeSet<String> = last.json().unwrap()["chapterIdsUnread"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let want: BTreeSet<String> = [c(20), c(3), c(1), c(4), c(6)].into_iter().collect();
    assert_eq!(unread, want);
    assert!(s.fake.read_set(&mixed).is_empty());
    assert_eq!(s.read_posts(&mixed).len(), 4);
}

#[tokio::test]
async fn a_list_of_150_titles_arrives_whole_in_batches_of_100() {
    let s = setup().await;
    let mut ids = Vec::new();
    for n in 1..=150u32 {
        let (id, chapters) = add_title(&s.fake, n, &format!("Title {n:03}"), &numbered(2));
        s.fake.set_status(&id, Some("reading"));
        if n % 2 == 0 {
            s.fake.mark_read(&id, &[&chapters[0]]);
        }
        ids.push(id);
    }
    // The fake's bucket is made roomy so that malt's own pace (5 a second) is all that holds the
    // 155 requests back: with MangaDex's 5 a second and its `X-RateLimit-Remaining: 0` pauses
    // (whole seconds) this fetch takes about a minute (see the report).
    s.fake.set_rate_limit(50);
    let md = s.logged_in().await;
    let started = Instant::now();
    let fetched = md.fetch_list(MANGA, &|_| {}).await.unwrap();
    let took = started.elapsed();
    eprintln!("150 titles fetched in {took:?}");
    assert!(
        took >= Duration::from_secs(25),
        "5 requests a second: {took:?}"
    );
    assert_eq!(fetched.unreadable, 0);
    assert_eq!(fetched.entries.len(), 150);
    for (n, id) in (1..=150u32).zip(&ids) {
        let e = by_id(&fetched.entries, id);
        assert_eq!(e.title, format!("Title {n:03}"));
        assert_eq!((e.progress, e.total), (u32::from(n % 2 == 0), Some(2)));
    }
    let log = s.fake.api_requests();
    let batches = |path: &str| -> Vec<usize> {
        log.iter()
            .filter(|r| r.path == path)
            .map(|r| r.query_array("ids").len())
            .collect()
    };
    assert_eq!(batches("/manga"), [100, 50]);
    assert_eq!(batches("/manga/read"), [100, 50]);
    assert_eq!(s.fake.count("GET", "/manga/status"), 1);
    assert!(log.iter().all(|r| r.status == 200), "no 429 on the way");
    let distinct: BTreeSet<u64> = fetched.entries.iter().map(|e| e.id).collect();
    assert_eq!(distinct.len(), 150);
}

#[tokio::test]
async fn an_empty_list_is_empty() {
    let s = setup().await;
    add_title(&s.fake, 1, "Not on the list", &numbered(1));
    let md = s.logged_in().await;
    let fetched = md.fetch_list(MANGA, &|_| {}).await.unwrap();
    assert_eq!(fetched.entries, []);
    assert_eq!(fetched.unreadable, 0);
    assert_eq!(s.asked(0), ["GET /manga/status"], "nothing else to ask");
}

// ---------------------------------------------------------------------------------------------
// Changing entries

/// A reading title with chapters 1..=6; chapter 2 has an alternative upload (`n:20`) and so has
/// chapter 4 (`n:40`). The first `read` chapters are read. Returns the UUID and a chapter id
/// finder.
fn reading_title(s: &Setup, n: u32, status: &str, read: usize) -> (String, impl Fn(u32) -> String) {
    let id = manga_uuid(n);
    s.fake.add_manga(Manga::new(&id, &format!("Title {n}")));
    let c = move |k| chapter_uuid(n, k);
    s.fake.add_chapters(
        &id,
        (1..=6u32)
            .map(|k| {
                let ch = Chapter::new(&c(k), Some("1"), Some(&k.to_string()));
                match k {
                    2 => ch.others(&[&c(20)]),
                    4 => ch.others(&[&c(40)]),
                    _ => ch,
                }
            })
            .collect(),
    );
    s.fake.set_status(&id, Some(status));
    let marks: Vec<String> = (1..=read as u32).map(c).collect();
    let marks: Vec<&str> = marks.iter().map(String::as_str).collect();
    s.fake.mark_read(&id, &marks);
    (id, c)
}

#[tokio::test]
async fn plus_plus_minus_is_one_read_post_each_with_exactly_the_next_chapter() {
    let s = setup().await;
    let (id, c) = reading_title(&s, 1, "reading", 2);
    let md = s.logged_in().await;
    let fetched = md.fetch_list(MANGA, &|_| {}).await.unwrap();
    assert_eq!(by_id(&fetched.entries, &id).progress, 2);
    let from = s.fake.api_requests().len();

    for (n, body) in [
        (3, read_body(&[&c(3)], &[])),
        (4, read_body(&[&c(4)], &[])),
        (3, read_body(&[], &[&c(4)])),
    ] {
        let ack = md
            .apply(MANGA, mid(&id), &Change::progress(n))
            .await
            .unwrap();
        let state = ack.state.unwrap();
        assert_eq!((state.status, state.progress), (Some(Status::Current), n));
        let last = s.fake.api_requests().pop().unwrap();
        assert_eq!(
            (last.method.as_str(), last.path.as_str()),
            ("POST", format!("/manga/{id}/read").as_str())
        );
        assert_eq!(last.json(), Some(body), "to {n}");
        assert_eq!(last.content_type.as_deref(), Some("application/json"));
        assert_eq!(last.status, 200);
    }
    assert_eq!(
        s.asked(from).len(),
        3,
        "one request per change: {:?}",
        s.asked(from)
    );
    assert_eq!(
        s.fake.read_set(&id),
        [c(1), c(2), c(3)].into_iter().collect::<BTreeSet<_>>()
    );

    // The same count again, or a score: nothing to send, the state as it is.
    for change in [
        Change::progress(3),
        Change::Set(Patch {
            score: Some(8),
            volumes: Some(2),
            ..Patch::default()
        }),
    ] {
        let ack = md.apply(MANGA, mid(&id), &change).await.unwrap();
        assert_eq!(ack.state.unwrap().progress, 3);
    }
    assert_eq!(s.asked(from).len(), 3);

    // Read elsewhere: chapter 4's alternative upload. `-` unmarks the upload that is read.
    s.fake.mark_read(&id, &[&c(40)]);
    let fetched = md.fetch_list(MANGA, &|_| {}).await.unwrap();
    assert_eq!(by_id(&fetched.entries, &id).progress, 4);
    let ack = md
        .apply(MANGA, mid(&id), &Change::progress(3))
        .await
        .unwrap();
    assert_eq!(ack.state.unwrap().progress, 3);
    assert_eq!(
        s.read_posts(&id).pop().unwrap().json(),
        Some(read_body(&[], &[&c(40)]))
    );
    assert_eq!(s.read_posts(&id).len(), 4);
    assert_eq!(
        s.fake.read_set(&id),
        [c(1), c(2), c(3)].into_iter().collect::<BTreeSet<_>>()
    );
    // Past the last chapter out: only what exists is marked.
    let ack = md
        .apply(MANGA, mid(&id), &Change::progress(9))
        .await
        .unwrap();
    assert_eq!(ack.state.unwrap().progress, 6);
    assert_eq!(
        s.read_posts(&id).pop().unwrap().json(),
        Some(read_body(&[&c(4), &c(5), &c(6)], &[]))
    );
}

#[tokio::test]
async fn the_first_plus_on_plan_to_read_sets_reading_then_marks_the_chapter() {
    let s = setup().await;
    let (id, c) = reading_title(&s, 1, "plan_to_read", 0);
    let md = s.logged_in().await;
    let fetched = md.fetch_list(MANGA, &|_| {}).await.unwrap();
    let entry = by_id(&fetched.entries, &id);
    assert_eq!((entry.status, entry.progress), (Status::Planning, 0));
    let from = s.fake.api_requests().len();

    // What the list screen sends for the first `+` of a planned title.
    let first = Change::Set(Patch {
        status: Some(Status::Current),
        progress: Some(1),
        start_date: Some("2025-01-02".into()),
        ..Patch::default()
    });
    let ack = md.apply(MANGA, mid(&id), &first).await.unwrap();
    let state = ack.state.unwrap();
    assert_eq!((state.status, state.progress), (Some(Status::Current), 1));
    let log = s.fake.api_requests();
    let sent: Vec<(String, Option<Value>)> = log[from..]
        .iter()
        .map(|r| (format!("{} {}", r.method, r.path), r.json()))
        .collect();
    assert_eq!(
        sent,
        [
            (
                format!("POST /manga/{id}/status"),
                Some(json!({"status": "reading"}))
            ),
            (
                format!("POST /manga/{id}/read"),
                Some(read_body(&[&c(1)], &[]))
            ),
        ]
    );
    assert_eq!(s.fake.status(&id).as_deref(), Some("reading"));
    assert_eq!(s.fake.read_markers(&id), [c(1)]);
}

#[tokio::test]
async fn status_changes_rereading_and_removal_are_status_posts() {
    let s = setup().await;
    let (id, _) = reading_title(&s, 1, "reading", 2);
    let md = s.logged_in().await;
    md.fetch_list(MANGA, &|_| {}).await.unwrap();
    let from = s.fake.api_requests().len();
    let status = |st: Status, repeating: Option<bool>| {
        Change::Set(Patch {
            status: Some(st),
            repeating,
            ..Patch::default()
        })
    };
    for (change, word, want) in [
        (
            status(Status::OnHold, None),
            "on_hold",
            (Status::OnHold, false),
        ),
        (
            status(Status::Dropped, None),
            "dropped",
            (Status::Dropped, false),
        ),
        (
            status(Status::Completed, None),
            "completed",
            (Status::Completed, false),
        ),
        (
            status(Status::Current, Some(true)),
            "re_reading",
            (Status::Current, true),
        ),
        (
            status(Status::Current, Some(false)),
            "reading",
            (Status::Current, false),
        ),
        (
            status(Status::Planning, None),
            "plan_to_read",
            (Status::Planning, false),
        ),
    ] {
        let state = md
            .apply(MANGA, mid(&id), &change)
            .await
            .unwrap()
            .state
            .unwrap();
        assert_eq!(
            (state.status, state.repeating),
            (Some(want.0), want.1),
            "{word}"
        );
        assert_eq!(state.progress, 2, "{word}: the chapters read are kept");
        let last = s.fake.api_requests().pop().unwrap();
        assert_eq!(last.path, format!("/manga/{id}/status"));
        assert_eq!(last.json(), Some(json!({ "status": word })));
        assert_eq!(s.fake.status(&id).as_deref(), Some(word));
    }
    assert_eq!(s.asked(from).len(), 6, "one request each");

    let ack = md.apply(MANGA, mid(&id), &Change::Remove).await.unwrap();
    assert_eq!(ack.state, None);
    let last = s.fake.api_requests().pop().unwrap();
    assert_eq!(last.path, format!("/manga/{id}/status"));
    assert_eq!(last.json(), Some(json!({ "status": null })));
    assert_eq!(s.fake.status(&id), None);
    assert_eq!(s.asked(from).len(), 7);
    assert_eq!(md.current(MANGA, mid(&id)).await, Ok(None));
    let fetched = md.fetch_list(MANGA, &|_| {}).await.unwrap();
    assert!(fetched.entries.is_empty());
}

#[tokio::test]
async fn current_asks_for_what_the_list_holds_now() {
    let s = setup().await;
    let (id, c) = reading_title(&s, 1, "reading", 1);
    let md = s.logged_in().await;
    md.fetch_list(MANGA, &|_| {}).await.unwrap();
    // Read and rated elsewhere.
    s.fake.mark_read(&id, &[&c(2), &c(3)]);
    s.fake.set_status(&id, Some("re_reading"));
    let now = md.current(MANGA, mid(&id)).await.unwrap().unwrap();
    assert_eq!(
        (now.status, now.repeating, now.progress),
        (Some(Status::Current), true, 3)
    );
    // The next `+` goes on from there.
    let ack = md
        .apply(MANGA, mid(&id), &Change::progress(4))
        .await
        .unwrap();
    assert_eq!(ack.state.unwrap().progress, 4);
    assert_eq!(
        s.read_posts(&id).pop().unwrap().json(),
        Some(read_body(&[&c(4)], &[]))
    );
}

#[tokio::test]
async fn search_and_details_need_no_login_and_remember_the_ids() {
    let s = setup().await;
    let frieren = manga_uuid(1);
    s.fake.add_manga(
        Manga::new(&frieren, "Sousou no Frieren")
            .alt_title("ja", "葬送のフリーレン")
            .description("en", "An elf mage outlives her party.")
            .year(2020)
            .cover("f.jpg")
            .tag("Fantasy", "genre")
            .last_chapter("")
            .status("ongoing"),
    );
    s.fake
        .add_manga(Manga::new(&manga_uuid(2), "Berserk").year(1989));
    s.fake.add_chapters(
        &frieren,
        vec![
            Chapter::new(&chapter_uuid(1, 1), Some("1"), Some("1")),
            Chapter::new(&chapter_uuid(1, 2), Some("1"), Some("2")),
        ],
    );
    // No login at all: search and details are public.
    let md = s.provider();
    let found = md.search(MANGA, "  frieren ").await.unwrap();
    assert_eq!(found.len(), 1, "{found:#?}");
    let f = &found[0];
    assert_eq!(f.entry.id, mid(&frieren));
    assert_eq!(f.entry.title, "Sousou no Frieren");
    assert_eq!(f.entry.status, Status::Planning);
    assert_eq!(f.entry.kind, MANGA);
    assert_eq!(f.year, Some(2020));
    assert_eq!(
        f.entry.media.picture.as_deref(),
        Some(format!("{}/covers/{frieren}/f.jpg.256.jpg", s.fake.base()).as_str())
    );
    let last = s.fake.api_requests().pop().unwrap();
    assert_eq!(last.path, "/manga");
    assert!(!last.auth, "no login sent for public data");
    assert!(
        last.query_pairs()
            .contains(&("title".into(), "frieren".into()))
    );
    assert!(md.search(MANGA, "   ").await.unwrap().is_empty());
    assert!(
        md.search(MediaKind::Anime, "frieren")
            .await
            .unwrap()
            .is_empty()
    );

    // Details of a title found, not on the list: its id is known from the search.
    let d = md.details(MANGA, mid(&frieren)).await.unwrap();
    assert_eq!(
        (d.id, d.title.as_str()),
        (mid(&frieren), "Sousou no Frieren")
    );
    assert_eq!(d.kind, Some(MANGA));
    assert_eq!(
        d.synopsis.as_deref(),
        Some("An elf mage outlives her party.")
    );
    assert_eq!(d.state.as_deref(), Some("publishing"));
    assert_eq!(d.genres, ["Fantasy"]);
    assert!(
        d.picture
            .as_deref()
            .is_some_and(|p| p.ends_with("f.jpg.512.jpg"))
    );
    let last = s.fake.api_requests().pop().unwrap();
    assert_eq!(last.path, format!("/manga/{frieren}"));
    assert!(!last.auth);
    assert_eq!(last.status, 200);

    // Added from the search (the outbox sends a status): the id is known without a fetch.
    s.login().await;
    let md = s.provider();
    let added = Change::Set(Patch {
        status: Some(Status::Planning),
        ..Patch::default()
    });
    let ack = md.apply(MANGA, mid(&frieren), &added).await.unwrap();
    assert_eq!(ack.state.unwrap().status, Some(Status::Planning));
    assert_eq!(s.fake.status(&frieren).as_deref(), Some("plan_to_read"));

    // A title malt never saw: said so, nothing sent.
    let before = s.fake.api_requests().len();
    let e = md
        .apply(MANGA, mid(&manga_uuid(9)), &Change::progress(1))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ProviderError::Local(m) if m.contains("refresh")),
        "{e:?}"
    );
    assert!(md.details(MANGA, 42).await.is_err());
    assert_eq!(s.fake.api_requests().len(), before);
}

#[tokio::test]
async fn public_data_is_asked_without_the_login_and_the_list_with_it() {
    let s = setup().await;
    let (id, c) = reading_title(&s, 1, "reading", 1);
    s.fake.edit_manga(&id, |m| {
        m.author_name = "Writer".into();
    });
    s.fake.edit_manga(&id, |m| *m = m.clone().artist("Painter"));
    let md = s.logged_in().await;
    md.fetch_list(MANGA, &|_| {}).await.unwrap();
    // After a restart, a change looks the title up first (chapters, markers), then marks.
    let md = s.provider();
    let ack = md
        .apply(MANGA, mid(&id), &Change::progress(2))
        .await
        .unwrap();
    assert_eq!(ack.state.unwrap().progress, 2);
    assert_eq!(s.fake.read_set(&id).len(), 2);
    assert!(s.fake.read_set(&id).contains(&c(2)));
    md.current(MANGA, mid(&id)).await.unwrap();
    md.search(MANGA, "title").await.unwrap();
    md.details(MANGA, mid(&id)).await.unwrap();

    let log = s.fake.api_requests();
    let asked: BTreeSet<String> = log
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    for want in [
        "GET /manga/status".to_string(),
        "GET /manga".into(),
        "GET /manga/read".into(),
        format!("GET /manga/{id}/aggregate"),
        format!("GET /manga/{id}/read"),
        format!("POST /manga/{id}/read"),
        format!("GET /manga/{id}/status"),
        format!("GET /manga/{id}"),
    ] {
        assert!(asked.contains(&want), "{want} not in {asked:?}");
    }
    assert_login_only_on_the_users_endpoints(&log, &s.stored().access_token);
    assert!(log.iter().all(|r| r.status == 200), "{log:#?}");

    // The details ask for the artist as well as the author (both are read).
    let details = log.last().unwrap();
    assert_eq!(details.path, format!("/manga/{id}"));
    assert_eq!(
        details.query_array("includes"),
        ["cover_art", "author", "artist"]
    );
}

// ---------------------------------------------------------------------------------------------
// The outbox worker

struct Running {
    events: UnboundedReceiver<Event>,
    kick: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

fn run_worker(provider: Arc<dyn Provider>, db: &Db) -> Running {
    let (tx, events) = tokio::sync::mpsc::unbounded_channel();
    let kick = Arc::new(Notify::new());
    let task = tokio::spawn(
        Worker {
            provider,
            db: db.clone(),
            wake: Arc::new(Notify::new()),
            kick: kick.clone(),
            events: tx,
        }
        .run(),
    );
    Running { events, kick, task }
}

impl Running {
    async fn next(&mut self) -> Event {
        match tokio::time::timeout(Duration::from_secs(10), self.events.recv()).await {
            Ok(Some(e)) => e,
            other => panic!("the worker said nothing: {other:?}"),
        }
    }

    /// The next event that is not a session warning.
    async fn next_news(&mut self) -> Event {
        loop {
            match self.next().await {
                Event::SessionWarning(_) => {}
                e => return e,
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn store(s: &Setup) -> Db {
    Db::spawn(Store::open(&s.dir.path().join("malt.db")).unwrap())
}

/// Queues `progress` for a title at `base`, as the list screen does (`fresh`: sent without
/// looking first).
async fn enqueue(db: &Db, uuid: &str, progress: u32, base: u32, fresh: bool) {
    let media_id = mid(uuid);
    db.call(move |st| {
        let change = Change::progress(progress);
        if fresh {
            st.enqueue_fresh(Service::Mangadex, MANGA, media_id, change, base, now_ms())
        } else {
            st.enqueue(Service::Mangadex, MANGA, media_id, change, base, now_ms())
        }
    })
    .await
    .unwrap();
}

async fn pending(db: &Db) -> usize {
    db.call(|st| st.pending(Service::Mangadex))
        .await
        .unwrap()
        .len()
}

fn delivered(e: &Event, uuid: &str) -> Option<u32> {
    match e {
        Event::Delivered {
            state: Some(state),
            media_id,
            kind: MediaKind::Manga,
            ..
        } if *media_id == mid(uuid) => Some(state.progress),
        _ => None,
    }
}

#[tokio::test]
async fn a_change_queued_before_a_restart_is_sent_without_fetching_the_list() {
    let s = setup().await;
    let (id, c) = reading_title(&s, 1, "reading", 2);
    let first = s.logged_in().await;
    first.fetch_list(MANGA, &|_| {}).await.unwrap();
    drop(first);
    let map: Value = serde_json::from_slice(&std::fs::read(&s.ids).unwrap()).unwrap();
    assert_eq!(map[mid(&id).to_string()], json!(id), "{map}");

    // malt quits with `+` and `+` queued; the next run starts with a new provider.
    let db = store(&s);
    enqueue(&db, &id, 3, 2, false).await;
    enqueue(&db, &id, 4, 3, false).await;
    let from = s.fake.api_requests().len();
    let provider: Arc<dyn Provider> = Arc::new(s.provider());
    let mut worker = run_worker(provider, &db);
    let one = worker.next_news().await;
    let two = worker.next_news().await;
    assert_eq!(
        (delivered(&one, &id), delivered(&two, &id)),
        (Some(3), Some(4)),
        "{one:?} {two:?}"
    );
    assert_eq!(pending(&db).await, 0);
    let asked = s.asked(from);
    assert!(
        !asked
            .iter()
            .any(|a| a == "GET /manga/status" || a == "GET /manga"),
        "no list fetch: {asked:?}"
    );
    let posts = s.read_posts(&id);
    assert_eq!(posts.len(), 2, "{asked:?}");
    assert_eq!(posts[0].json(), Some(read_body(&[&c(3)], &[])));
    assert_eq!(posts[1].json(), Some(read_body(&[&c(4)], &[])));
    assert_eq!(s.fake.read_set(&id).len(), 4);
}

#[tokio::test]
async fn three_quick_changes_are_three_posts_in_order() {
    let s = setup().await;
    let (id, c) = reading_title(&s, 1, "reading", 1);
    let md = s.logged_in().await;
    md.fetch_list(MANGA, &|_| {}).await.unwrap();
    let provider: Arc<dyn Provider> = Arc::new(md);
    let db = store(&s);
    for (n, base) in [(2, 1), (3, 2), (2, 3)] {
        enqueue(&db, &id, n, base, true).await;
    }
    let mut worker = run_worker(provider, &db);
    let mut got = Vec::new();
    while got.len() < 3 {
        let e = worker.next_news().await;
        got.push(delivered(&e, &id).unwrap_or_else(|| panic!("{e:?}")));
    }
    assert_eq!(got, [2, 3, 2]);
    let bodies: Vec<Option<Value>> = s.read_posts(&id).iter().map(Req::json).collect();
    assert_eq!(
        bodies,
        [
            Some(read_body(&[&c(2)], &[])),
            Some(read_body(&[&c(3)], &[])),
            Some(read_body(&[], &[&c(3)])),
        ]
    );
    assert_eq!(
        s.fake.read_set(&id),
        [c(1), c(2)].into_iter().collect::<BTreeSet<_>>()
    );
}

// ---------------------------------------------------------------------------------------------
// Long jumps: MangaDex takes at most 10 KB a request

/// Title `n` with `count` chapters (no volume, numbered 1..=count, upload `n:k` for chapter k),
/// `read` of them read.
fn long_title(s: &Setup, n: u32, count: u32, status: &str, read: u32) -> String {
    let id = manga_uuid(n);
    s.fake.add_manga(Manga::new(&id, &format!("Long {n}")));
    s.fake.add_chapters(
        &id,
        (1..=count)
            .map(|k| Chapter::new(&chapter_uuid(n, k), None, Some(&k.to_string())))
            .collect(),
    );
    s.fake.set_status(&id, Some(status));
    let marks: Vec<String> = (1..=read).map(|k| chapter_uuid(n, k)).collect();
    let marks: Vec<&str> = marks.iter().map(String::as_str).collect();
    s.fake.mark_read(&id, &marks);
    id
}

/// Chapters `from..=to` of title `n`.
fn chapters(n: u32, from: u32, to: u32) -> Vec<String> {
    (from..=to).map(|k| chapter_uuid(n, k)).collect()
}

/// The ids each read POST that MangaDex took marked read (or unread), in order; every POST's
/// body under MangaDex's limit.
fn landed_marks(s: &Setup, manga: &str, key: &str) -> Vec<Vec<String>> {
    s.read_posts(manga)
        .iter()
        .filter(|r| r.status == 200)
        .map(|r| {
            assert!(r.body.len() <= support::mangadex::READ_BODY_LIMIT);
            let body = r.json().unwrap();
            serde_json::from_value(body[key].clone()).unwrap()
        })
        .collect()
}

/// No chapter was marked by two requests that landed.
fn assert_no_chapter_sent_twice(parts: &[Vec<String>]) {
    let mut seen = BTreeSet::new();
    for id in parts.iter().flatten() {
        assert!(seen.insert(id.clone()), "{id} sent twice");
    }
}

#[tokio::test]
async fn a_jump_past_250_chapters_is_several_posts_in_order_each_under_10_kb() {
    let s = setup().await;
    let id = long_title(&s, 1, 600, "reading", 10);
    let md = s.logged_in().await;
    md.fetch_list(MANGA, &|_| {}).await.unwrap();

    // `e 600`: chapters 11..=600, 250 at a time from the first.
    let ack = md
        .apply(MANGA, mid(&id), &Change::progress(600))
        .await
        .unwrap();
    assert_eq!(ack.state.unwrap().progress, 600);
    assert_eq!(
        landed_marks(&s, &id, "chapterIdsRead"),
        [
            chapters(1, 11, 260),
            chapters(1, 261, 510),
            chapters(1, 511, 600)
        ]
    );
    assert_eq!(s.read_posts(&id).len(), 3, "every request taken");
    assert_eq!(s.fake.read_set(&id).len(), 600);

    // `e 0`: unmarked from the last chapter back, so each request moves the count down.
    let ack = md
        .apply(MANGA, mid(&id), &Change::progress(0))
        .await
        .unwrap();
    assert_eq!(ack.state.unwrap().progress, 0);
    let unread: Vec<Vec<String>> = s.read_posts(&id)[3..]
        .iter()
        .map(|r| serde_json::from_value(r.json().unwrap()["chapterIdsUnread"].clone()).unwrap())
        .collect();
    assert_eq!(
        unread,
        [
            chapters(1, 351, 600),
            chapters(1, 101, 350),
            chapters(1, 1, 100)
        ]
    );
    assert!(s.fake.read_set(&id).is_empty());
}

#[tokio::test]
async fn a_failure_between_two_posts_is_carried_on_without_sending_a_chapter_twice() {
    let s = setup().await;
    let id = long_title(&s, 1, 600, "reading", 0);
    let md = s.logged_in().await;
    md.fetch_list(MANGA, &|_| {}).await.unwrap();
    let provider: Arc<dyn Provider> = Arc::new(md);
    let db = store(&s);
    enqueue(&db, &id, 600, 0, true).await;
    // The first 250 chapters land; the second request fails.
    s.fake.fail_after(1, 1, Fault::ServerError);
    let mut worker = run_worker(provider, &db);
    let e = worker.next_news().await;
    assert!(matches!(e, Event::Retrying { .. }), "{e:?}");
    assert_eq!(s.fake.read_set(&id).len(), 250);
    assert_eq!(pending(&db).await, 1, "the change waits");

    // Tried again: MangaDex holds chapter 250, between where the change started and where it
    // goes: the change itself part of the way, not an edit made elsewhere. The rest is sent.
    db.call(|st| st.due_now(Service::Mangadex)).await.unwrap();
    worker.kick.notify_one();
    let e = worker.next_news().await;
    assert_eq!(delivered(&e, &id), Some(600), "{e:?}");
    assert_eq!(pending(&db).await, 0);
    let landed = landed_marks(&s, &id, "chapterIdsRead");
    assert_eq!(
        landed,
        [
            chapters(1, 1, 250),
            chapters(1, 251, 500),
            chapters(1, 501, 600)
        ]
    );
    assert_no_chapter_sent_twice(&landed);
    assert_eq!(s.fake.read_set(&id).len(), 600);
}

#[tokio::test]
async fn a_kill_between_two_posts_loses_nothing_and_the_next_run_sends_only_the_rest() {
    let s = setup().await;
    let id = long_title(&s, 1, 600, "plan_to_read", 0);
    let md = s.logged_in().await;
    md.fetch_list(MANGA, &|_| {}).await.unwrap();
    let planned = malt::domain::ListState {
        status: Some(Status::Planning),
        ..Default::default()
    };
    // `e 600` on a planned title: reading, and 600 chapters read.
    let change = Change::Set(Patch {
        status: Some(Status::Current),
        progress: Some(600),
        start_date: Some("2025-01-02".into()),
        ..Patch::default()
    });
    let db = store(&s);
    let (media_id, queued, base_state) = (mid(&id), change.clone(), planned.clone());
    db.call(move |st| {
        st.insert_op(malt::store::NewOp {
            service: Service::Mangadex,
            kind: MANGA,
            media_id,
            base: malt::domain::Field::Status
                .value(Some(&base_state))
                .unwrap(),
            change: queued,
            now_ms: now_ms(),
            verified: true,
            entry: None,
            base_state: Some(base_state),
        })
    })
    .await
    .unwrap();
    // The status and the first 250 chapters land, then malt is gone (the second request fails
    // and the worker is stopped while it waits: what MangaDex holds is what a kill leaves).
    s.fake.fail_after(2, 1, Fault::ServerError);
    let mut worker = run_worker(Arc::new(md), &db);
    let e = worker.next_news().await;
    assert!(matches!(e, Event::Retrying { .. }), "{e:?}");
    drop(worker);
    drop(db);
    assert_eq!(s.fake.status(&id).as_deref(), Some("reading"));
    assert_eq!(s.fake.read_set(&id).len(), 250);

    // The next run: a new process (the change is checked before it is sent), nothing in memory.
    let db = store(&s);
    db.call(|st| st.due_now(Service::Mangadex)).await.unwrap();
    let ops = db.call(|st| st.pending(Service::Mangadex)).await.unwrap();
    assert_eq!(ops.len(), 1, "nothing lost");
    assert!(!ops[0].verified);
    let from = s.fake.api_requests().len();
    let mut worker = run_worker(Arc::new(s.provider()), &db);
    let e = worker.next_news().await;
    let Event::Delivered {
        state: Some(state), ..
    } = &e
    else {
        panic!("{e:?}");
    };
    assert_eq!((state.status, state.progress), (Some(Status::Current), 600));
    assert_eq!(pending(&db).await, 0);
    // Looked up, then only the missing chapters: the status is not sent again, no chapter twice.
    let after: Vec<String> = s.asked(from);
    assert_eq!(
        after.iter().filter(|a| a.starts_with("POST")).count(),
        2,
        "{after:?}"
    );
    let statuses: Vec<Req> = s
        .fake
        .api_requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/status"))
        .collect();
    assert_eq!(statuses.len(), 1, "the status is sent once");
    let landed = landed_marks(&s, &id, "chapterIdsRead");
    assert_eq!(
        landed,
        [
            chapters(1, 1, 250),
            chapters(1, 251, 500),
            chapters(1, 501, 600)
        ]
    );
    assert_no_chapter_sent_twice(&landed);
    assert_eq!(s.fake.read_set(&id).len(), 600);
}

// ---------------------------------------------------------------------------------------------
// Logging in and the session

#[tokio::test]
async fn a_login_stores_the_tokens_and_explains_a_refusal_without_the_password() {
    let s = setup().await;
    let http = http_client().unwrap();
    let wrong = "not the password at all";
    let e = finish_login(&s.cfg, http.clone(), s.tokens.clone(), wrong)
        .await
        .unwrap_err();
    assert_eq!(e, "MangaDex refused the login: wrong username or password");
    assert!(!s.tokens.path().exists(), "nothing stored");

    // A client MangaDex has not approved yet, or whose secret is wrong.
    s.fake.set_client_approved(CLIENT_ID, false);
    let e = finish_login(&s.cfg, http.clone(), s.tokens.clone(), DEFAULT_PASSWORD)
        .await
        .unwrap_err();
    assert!(e.contains("not approved yet"), "{e}");
    s.assert_no_secret(&e);
    s.fake.set_client_approved(CLIENT_ID, true);
    let mut bad_secret = s.cfg.clone();
    bad_secret.client_secret = "an-old-secret".into();
    let e = finish_login(
        &bad_secret,
        http.clone(),
        s.tokens.clone(),
        DEFAULT_PASSWORD,
    )
    .await
    .unwrap_err();
    assert!(e.contains("secret"), "{e}");
    assert!(!e.contains("an-old-secret"), "{e}");
    // The login server down, or answering garbage.
    for (fault, words) in [
        (Fault::BadGateway, "trouble"),
        (Fault::MalformedJson, "MangaDex"),
        // A 500 with Keycloak's `{"error":"unknown_error"}` (see the report: said as a refusal).
        (Fault::ServerError, "MangaDex"),
    ] {
        s.fake.fail_next_auth(1, fault.clone());
        let e = finish_login(&s.cfg, http.clone(), s.tokens.clone(), DEFAULT_PASSWORD)
            .await
            .unwrap_err();
        assert!(e.contains(words), "{fault:?}: {e}");
        assert!(!e.contains('<') && !e.contains('\n'), "{fault:?}: {e}");
        assert!(!e.contains("eyJ"), "{fault:?}: a piece of a token in {e}");
        s.assert_no_secret(&e);
    }
    assert!(!s.tokens.path().exists(), "nothing stored");
    let logins = s.fake.login_count();

    let started = now_secs();
    let name = s.login().await;
    assert_eq!(name, DEFAULT_USERNAME);
    let issued = s.fake.last_issued().unwrap();
    let stored = s.stored();
    assert_eq!(stored.access_token, issued.access);
    assert_eq!(stored.refresh_token, issued.refresh);
    assert!(
        (stored.expires_at - (started + 900)).abs() <= 5,
        "15 minutes: {}",
        stored.expires_at - started
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(s.tokens.path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let file = std::fs::read_to_string(s.tokens.path()).unwrap();
    assert!(!file.contains(DEFAULT_PASSWORD) && !file.contains(CLIENT_SECRET));
    // The password grant, form-encoded, with the personal client.
    let grant = s.fake.token_requests().pop().unwrap();
    assert_eq!(
        grant.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    let mut form = grant.form();
    form.sort();
    let mut want: Vec<(String, String)> = [
        ("grant_type", "password"),
        ("username", DEFAULT_USERNAME),
        ("password", DEFAULT_PASSWORD),
        ("client_id", CLIENT_ID),
        ("client_secret", CLIENT_SECRET),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    want.sort();
    assert_eq!(form, want);
    // A password ending with the line's end (read from a pipe) is the same password.
    finish_login(
        &s.cfg,
        http,
        s.tokens.clone(),
        &format!("{DEFAULT_PASSWORD}\n"),
    )
    .await
    .unwrap();
    assert_eq!(s.fake.login_count(), logins + 2);
}

#[tokio::test]
async fn keep_fresh_renews_the_access_token_before_it_expires_and_saves_the_rotated_refresh_token()
{
    let s = setup().await;
    let _ = reading_title(&s, 1, "reading", 1);
    let md = s.logged_in().await;
    // Fresh: nothing to do for about 10 minutes (renewed 5 minutes before the end).
    let wait = md.keep_fresh().await.unwrap().unwrap();
    assert!(
        wait >= Duration::from_secs(590) && wait <= Duration::from_secs(600),
        "{wait:?}"
    );
    assert_eq!(s.fake.refresh_count(), 0);

    // Ten minutes later (the stored expiry says so): renewed.
    let old = s.stored();
    s.tokens
        .save(&TokenSet {
            expires_at: now_secs() + 290,
            ..old.clone()
        })
        .unwrap();
    let md = s.provider();
    let wait = md.keep_fresh().await.unwrap().unwrap();
    assert_eq!(s.fake.refresh_count(), 1);
    assert!(
        wait >= Duration::from_secs(590) && wait <= Duration::from_secs(600),
        "{wait:?}"
    );
    let new = s.stored();
    assert_ne!(new.access_token, old.access_token);
    assert_ne!(new.refresh_token, old.refresh_token, "rotated");
    assert_eq!(new.refresh_token, s.fake.last_issued().unwrap().refresh);
    assert!((new.remaining() - 900).abs() <= 5);
    let grant = s.fake.token_requests().pop().unwrap();
    let mut form = grant.form();
    form.sort();
    let mut want: Vec<(String, String)> = [
        ("grant_type", "refresh_token"),
        ("refresh_token", old.refresh_token.as_str()),
        ("client_id", CLIENT_ID),
        ("client_secret", CLIENT_SECRET),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    want.sort();
    assert_eq!(form, want);
    // The old refresh token is spent: MangaDex refuses it now.
    let e = s.fake.refresh_elsewhere(&old.refresh_token).unwrap_err();
    assert!(e.contains("Stale token"), "{e}");
    // The new access token is the one used (on the user's list; the last request, a chapter
    // list, is public).
    let from = s.fake.api_requests().len();
    md.fetch_list(MANGA, &|_| {}).await.unwrap();
    let first = s.fake.api_requests()[from].clone();
    assert_eq!(first.path, "/manga/status");
    assert_eq!(first.bearer.as_deref(), Some(new.access_token.as_str()));
    assert_eq!(s.fake.refresh_count(), 1);
}

#[tokio::test]
async fn an_access_token_refused_mid_run_is_renewed_once_and_the_change_sent() {
    let s = setup().await;
    let (id, c) = reading_title(&s, 1, "reading", 1);
    let md = s.logged_in().await;
    md.fetch_list(MANGA, &|_| {}).await.unwrap();
    let old = s.stored();
    // MangaDex ended the access token early (its clock, a restart of its side).
    s.fake.expire_access_tokens();
    let ack = md
        .apply(MANGA, mid(&id), &Change::progress(2))
        .await
        .unwrap();
    assert_eq!(ack.state.unwrap().progress, 2);
    let posts = s.read_posts(&id);
    assert_eq!(
        posts.iter().map(|r| r.status).collect::<Vec<_>>(),
        [401, 200]
    );
    assert_eq!(posts[0].bearer.as_deref(), Some(old.access_token.as_str()));
    let new = s.stored();
    assert_eq!(posts[1].bearer.as_deref(), Some(new.access_token.as_str()));
    assert_ne!(new.refresh_token, old.refresh_token);
    assert_eq!(s.fake.refresh_count(), 1);
    assert_eq!(s.fake.read_markers(&id), [c(1), c(2)]);
    // Another malt renewed the session (spending our refresh token) and our access token has
    // ended: the stored tokens are picked up, not refreshed again.
    s.fake.expire_access_tokens();
    let elsewhere = s.fake.refresh_elsewhere(&new.refresh_token).unwrap();
    s.tokens
        .save(&TokenSet {
            access_token: elsewhere.access.clone(),
            refresh_token: elsewhere.refresh.clone(),
            expires_at: now_secs() + 900,
        })
        .unwrap();
    let ack = md
        .apply(MANGA, mid(&id), &Change::progress(3))
        .await
        .unwrap();
    assert_eq!(ack.state.unwrap().progress, 3);
    let last = s.read_posts(&id).pop().unwrap();
    assert_eq!(last.status, 200);
    assert_eq!(last.bearer.as_deref(), Some(elsewhere.access.as_str()));
    assert_eq!(s.fake.refresh_count(), 1, "not refreshed again");
}

#[tokio::test]
async fn a_refused_refresh_is_an_expired_session_and_the_queue_waits_for_a_new_login() {
    let s = setup().await;
    let (id, c) = reading_title(&s, 1, "reading", 1);
    let md = s.logged_in().await;
    md.fetch_list(MANGA, &|_| {}).await.unwrap();
    let provider: Arc<dyn Provider> = Arc::new(md);
    let db = store(&s);
    // Logged out everywhere (the password changed, "log out of all sessions").
    s.fake.revoke_sessions();
    enqueue(&db, &id, 2, 1, true).await;
    enqueue(&db, &id, 3, 2, true).await;
    let mut worker = run_worker(provider.clone(), &db);
    let e = worker.next_news().await;
    let Event::LoginNeeded(error) = &e else {
        panic!("{e:?}");
    };
    assert_eq!(error, &ProviderError::SessionExpired);
    let text = error.to_string();
    assert!(text.contains("malt --login"), "{text}");
    s.assert_no_secret(&text);
    assert_eq!(pending(&db).await, 2, "nothing lost");
    assert!(s.fake.read_set(&id).len() == 1, "nothing marked");
    let refused = s.fake.token_requests().pop().unwrap();
    assert_eq!(refused.grant_type().as_deref(), Some("refresh_token"));
    assert_eq!(refused.status, 400);
    // The provider says the same to the refresher, and sends nothing more.
    let before = s.fake.requests().len();
    assert_eq!(
        provider.keep_fresh().await,
        Err(ProviderError::SessionExpired)
    );
    assert_eq!(
        provider.apply(MANGA, mid(&id), &Change::progress(2)).await,
        Err(ProviderError::SessionExpired)
    );
    assert_eq!(
        s.fake.requests().len(),
        before,
        "the dead session is not tried again"
    );

    // `malt --login mangadex` in another terminal; the app then sends everything now.
    s.login().await;
    db.call(|st| st.due_now(Service::Mangadex)).await.unwrap();
    worker.kick.notify_one();
    let one = worker.next_news().await;
    let two = worker.next_news().await;
    assert_eq!(
        (delivered(&one, &id), delivered(&two, &id)),
        (Some(2), Some(3)),
        "{one:?} {two:?}"
    );
    assert_eq!(pending(&db).await, 0);
    assert_eq!(s.fake.read_markers(&id), [c(1), c(2), c(3)]);
    let fresh = s.stored().access_token;
    let ok: Vec<Req> = s
        .read_posts(&id)
        .into_iter()
        .filter(|r| r.status == 200)
        .collect();
    assert_eq!(ok.len(), 2);
    assert!(
        ok.iter()
            .all(|r| r.bearer.as_deref() == Some(fresh.as_str()))
    );
}

// ---------------------------------------------------------------------------------------------
// Being a good client, and failures

#[tokio::test]
async fn a_429_says_how_long_until_the_epoch_in_x_ratelimit_retry_after() {
    let s = setup().await;
    let (id, _) = reading_title(&s, 1, "reading", 1);
    let md = s.logged_in().await;
    md.fetch_list(MANGA, &|_| {}).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let retry_at = now_secs() + 2;
    s.fake.force_429(1, retry_at);
    let e = md
        .apply(MANGA, mid(&id), &Change::progress(2))
        .await
        .unwrap_err();
    let throttled_at = Instant::now();
    let ProviderError::Throttled { wait, message } = &e else {
        panic!("{e:?}");
    };
    let wait = wait.expect("the wait is known");
    assert!(
        wait >= Duration::from_secs(1) && wait <= Duration::from_secs(2),
        "until {retry_at}: {wait:?}"
    );
    assert!(message.contains("429"), "{message}");
    s.assert_no_secret(message);
    assert!(!e.is_permanent());
    assert_eq!(
        malt::sync::backoff(1, &e),
        wait,
        "the outbox waits as asked"
    );
    assert_eq!(s.fake.read_set(&id).len(), 1);
    // The next request waits for that moment.
    md.apply(MANGA, mid(&id), &Change::progress(2))
        .await
        .unwrap();
    let waited = throttled_at.elapsed();
    assert!(
        waited + Duration::from_millis(100) >= wait,
        "{waited:?} < {wait:?}"
    );
    assert!(waited < Duration::from_secs(4), "{waited:?}");
    assert_eq!(s.fake.read_set(&id).len(), 2);

    // In a fetch, a 429 is waited out and the request sent again.
    s.fake.force_429(1, now_secs() + 1);
    let fetched = md.fetch_list(MANGA, &|_| {}).await.unwrap();
    assert_eq!(fetched.entries.len(), 1);
    let statuses: Vec<u16> = s
        .fake
        .api_requests()
        .iter()
        .filter(|r| r.path == "/manga/status")
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [200, 429, 200]);
}

#[tokio::test]
async fn server_errors_html_pages_and_garbage_are_clear_errors_without_secrets() {
    let s = setup().await;
    let (id, _) = reading_title(&s, 1, "reading", 1);
    let md = s.logged_in().await;
    md.fetch_list(MANGA, &|_| {}).await.unwrap();
    type Expected = fn(&ProviderError) -> bool;
    let cases: Vec<(Fault, Expected)> = vec![
        (Fault::ServerError, |e| {
            matches!(e, ProviderError::Server(_))
        }),
        (
            Fault::BadGateway,
            |e| matches!(e, ProviderError::Server(m) if m.contains("502")),
        ),
        (
            Fault::Maintenance,
            |e| matches!(e, ProviderError::Server(m) if m.contains("503")),
        ),
        (Fault::MalformedJson, |e| {
            matches!(e, ProviderError::BadResponse(_))
        }),
        (Fault::CaptchaRequired, |e| {
            e.to_string().to_lowercase().contains("captcha")
        }),
        (
            Fault::Raw {
                status: 400,
                content_type: "application/json".into(),
                body: support::mangadex::error_body(
                    400,
                    "Bad Request",
                    "Error validating /chapterIdsRead/0: must be a chapter UUID",
                ),
                headers: Vec::new(),
            },
            |e| {
                matches!(e, ProviderError::Rejected(m)
                    if m == "MangaDex: Bad Request: Error validating /chapterIdsRead/0: must be a chapter UUID")
            },
        ),
    ];
    for (fault, ok) in cases {
        // In a fetch (the first request) and in a change (the read POST; a 200 with a body cut
        // off is an accepted change there).
        let changes: &[bool] = if matches!(fault, Fault::MalformedJson) {
            &[true]
        } else {
            &[true, false]
        };
        for &fetch in changes {
            tokio::time::sleep(Duration::from_millis(400)).await;
            s.fake.fail_next(1, fault.clone());
            let e = if fetch {
                md.fetch_list(MANGA, &|_| {}).await.unwrap_err()
            } else {
                md.apply(MANGA, mid(&id), &Change::progress(2))
                    .await
                    .unwrap_err()
            };
            let text = e.to_string();
            assert!(ok(&e), "{fault:?} (fetch: {fetch}): {e:?}");
            assert!(
                !text.contains('<') && !text.contains('\n') && text.len() < 300,
                "{fault:?}: {text:?}"
            );
            assert!(!text.contains(r#"{"result""#), "{fault:?}: {text}");
            s.assert_no_secret(&text);
        }
    }
    assert_eq!(s.fake.read_set(&id).len(), 1, "nothing was marked");
    // Afterwards all is well.
    md.apply(MANGA, mid(&id), &Change::progress(2))
        .await
        .unwrap();
    assert_eq!(s.fake.read_set(&id).len(), 2);
    // A title MangaDex no longer has: a permanent refusal that says so.
    s.fake.remove_manga(&id);
    let e = md
        .apply(MANGA, mid(&id), &Change::progress(3))
        .await
        .unwrap_err();
    assert!(e.is_permanent(), "{e:?}");
    let gone = s.fake.api_requests().pop().unwrap();
    assert!(matches!(gone.status, 400 | 404), "{gone:?}");
    s.assert_no_secret(&e.to_string());
}
