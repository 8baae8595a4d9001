//! The MAL provider, the session and the outbox worker against the stateful fake MAL, and the
//! provider's parsers against the recorded MAL answers in `tests/fixtures/mal/`.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use malt::auth::{TokenFile, TokenSet};
use malt::config::{Config, MalConfig};
use malt::domain::airing::{AiringState, Schedule};
use malt::domain::{Ack, Change, ListEntry, ListState, MediaKind, Patch, Service, Status};
use malt::providers::mal::{
    Mal, finish_login, parse_details, parse_list_page, parse_list_status, parse_my_status,
    parse_search, search_query,
};
use malt::providers::{Http, Provider, ProviderError, http_client};
use malt::store::{Db, NewOp, Store};
use malt::sync::{Event, Worker};
use support::mal::{Anime, FakeMal, Manga, Req};
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

/// A request's query as a map (the last value of a repeated key wins).
fn query(r: &Req) -> HashMap<String, String> {
    support::mal::parse_urlencoded(&r.query)
        .into_iter()
        .collect()
}

fn requests_to_path(fake: &FakeMal, path: &str) -> Vec<Req> {
    fake.requests()
        .into_iter()
        .filter(|r| r.path == path)
        .collect()
}

fn by_id(entries: &[ListEntry], id: u64) -> &ListEntry {
    entries
        .iter()
        .find(|e| e.id == id)
        .unwrap_or_else(|| panic!("no entry {id} in {entries:?}"))
}

/// A patch of the given fields (shorthand).
fn set(patch: Patch) -> Change {
    Change::Set(patch)
}

// ---------------------------------------------------------------------------------------------
// Fetching the lists

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
        .fetch_list(MediaKind::Anime, &move |n| log.lock().unwrap().push(n))
        .await
        .unwrap();
    assert_eq!(entries.unreadable, 0);
    let entries = entries.entries;
    assert_eq!(entries.len(), 2501, "every status, NSFW included");
    let mut ids: Vec<u64> = entries.iter().map(|e| e.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 2501, "every entry exactly once");
    assert_eq!(*seen.lock().unwrap(), vec![1000, 2000, 2501]);
    let e = by_id(&entries, 30);
    assert_eq!((e.progress, e.total), (2, None), "0 episodes means unknown");
    let e = by_id(&entries, 31);
    assert_eq!((e.progress, e.total), (3, Some(1)));
    assert_eq!(by_id(&entries, 9999).status, Status::Completed);
    assert!(entries.iter().all(|e| e.kind == MediaKind::Anime));

    let lists = requests_to_path(&s.fake, "/v2/users/@me/animelist");
    assert_eq!(lists.len(), 3);
    let first = query(&lists[0]);
    assert!(
        !first.contains_key("status"),
        "the whole list in one pass: {first:?}"
    );
    assert_eq!(first["limit"], "1000");
    assert_eq!(first["nsfw"], "true");
    assert_eq!(first["sort"], "anime_title");
    let fields: Vec<&str> = first["fields"].split(',').collect();
    assert!(
        fields.contains(&"num_episodes") && fields.contains(&"media_type"),
        "{fields:?}"
    );
    assert!(lists.iter().all(|r| {
        r.authorization
            .as_deref()
            .is_some_and(|a| a.starts_with("Bearer "))
    }));
    assert!(
        lists[1..].iter().all(|r| query(r)["nsfw"] == "true"),
        "the next pages keep nsfw=true"
    );
}

#[tokio::test]
async fn every_status_of_the_anime_list_comes_in_one_pass() {
    let s = setup().await;
    let statuses = [
        ("watching", Status::Current),
        ("completed", Status::Completed),
        ("on_hold", Status::OnHold),
        ("dropped", Status::Dropped),
        ("plan_to_watch", Status::Planning),
    ];
    for (i, (mal, _)) in statuses.iter().enumerate() {
        let id = i as u64 + 1;
        s.fake.add_anime(
            Anime::new(id, &format!("Show {id}"), 12)
                .list_status(mal)
                .watched(id as u32)
                .score(id as u8 + 3),
        );
    }
    s.fake.add_anime(
        Anime::new(6, "Again", 24)
            .list_status("watching")
            .rewatching(true)
            .watched(2)
            .list_dates(Some("2024-01-02"), Some("2024-03-04"))
            .media_type("ova"),
    );
    s.fake.add_anime(
        Anime::new(7, "Airing Now", 0)
            .airing("saturday", "23:30", "2025-04-05")
            .watched(1),
    );
    let mal = s.logged_in();
    let fetched = mal.fetch_list(MediaKind::Anime, &|_| {}).await.unwrap();
    assert_eq!(fetched.unreadable, 0);
    let entries = fetched.entries;
    assert_eq!(entries.len(), 7);
    for (i, (mal_word, status)) in statuses.iter().enumerate() {
        let e = by_id(&entries, i as u64 + 1);
        assert_eq!(e.status, *status, "{mal_word}");
        assert_eq!(e.progress, i as u32 + 1);
        assert_eq!(e.score, i as u8 + 4);
        assert_eq!(e.total, Some(12));
        assert!(!e.repeating);
        assert!(e.updated_at.is_some());
    }
    let again = by_id(&entries, 6);
    assert!(again.repeating, "is_rewatching");
    assert_eq!(again.start_date.as_deref(), Some("2024-01-02"));
    assert_eq!(again.finish_date.as_deref(), Some("2024-03-04"));
    assert_eq!(again.media.media_type.as_deref(), Some("ova"));
    assert_eq!(
        again.media.picture.as_deref(),
        Some(format!("{}/images/anime/6l.png", s.fake.base()).as_str()),
        "the large cover"
    );
    let airing = by_id(&entries, 7);
    assert_eq!(
        airing.media.schedule.as_deref(),
        Some(&Schedule {
            state: AiringState::Airing,
            start_date: Some("2025-04-05".into()),
            broadcast_day: Some("saturday".into()),
            broadcast_time: Some("23:30".into()),
            episodes: None,
            next_exact: None,
        })
    );
    assert_eq!(
        requests_to_path(&s.fake, "/v2/users/@me/animelist").len(),
        1,
        "one request for every status"
    );
    assert!(
        requests_to_path(&s.fake, "/v2/users/@me/mangalist").is_empty(),
        "the anime list does not fetch the manga list"
    );
}

#[tokio::test]
async fn the_manga_list_has_chapters_volumes_and_rereading() {
    let s = setup().await;
    s.fake.add_manga(
        Manga::new(1, "Berserk", 0, 0)
            .chapters_read(370)
            .volumes_read(41)
            .score(10)
            .media_type("manga")
            .publishing_status("on_hiatus"),
    );
    s.fake.add_manga(
        Manga::new(2, "Kiseijuu", 64, 10)
            .list_status("completed")
            .chapters_read(64)
            .volumes_read(10)
            .rereading(true)
            .list_dates(Some("2020-01-01"), Some("2020-02-01")),
    );
    s.fake.add_manga(
        Manga::new(3, "Held", 100, 10)
            .list_status("on_hold")
            .chapters_read(3),
    );
    s.fake
        .add_manga(Manga::new(4, "Gave Up", 20, 2).list_status("dropped"));
    s.fake.add_manga(
        Manga::new(5, "Someday", 30, 3)
            .list_status("plan_to_read")
            .nsfw("black"),
    );
    // The anime list is another list.
    s.fake
        .add_anime(Anime::new(1, "An Anime With the Same Id", 12));
    let mal = s.logged_in();
    let fetched = mal.fetch_list(MediaKind::Manga, &|_| {}).await.unwrap();
    assert_eq!(fetched.unreadable, 0);
    let entries = fetched.entries;
    assert_eq!(entries.len(), 5, "{entries:?}");
    assert!(entries.iter().all(|e| e.kind == MediaKind::Manga));

    let berserk = by_id(&entries, 1);
    assert_eq!(berserk.title, "Berserk");
    assert_eq!(berserk.status, Status::Current, "reading");
    assert_eq!((berserk.progress, berserk.total), (370, None));
    assert_eq!((berserk.volumes, berserk.total_volumes), (41, None));
    assert_eq!(berserk.score, 10);
    assert_eq!(berserk.media.media_type.as_deref(), Some("manga"));
    assert_eq!(
        berserk.media.schedule, None,
        "manga have no airing schedule"
    );

    let kiseijuu = by_id(&entries, 2);
    assert_eq!(kiseijuu.status, Status::Completed);
    assert_eq!((kiseijuu.progress, kiseijuu.total), (64, Some(64)));
    assert_eq!((kiseijuu.volumes, kiseijuu.total_volumes), (10, Some(10)));
    assert!(kiseijuu.repeating, "is_rereading");
    assert_eq!(kiseijuu.start_date.as_deref(), Some("2020-01-01"));
    assert_eq!(kiseijuu.finish_date.as_deref(), Some("2020-02-01"));

    assert_eq!(by_id(&entries, 3).status, Status::OnHold);
    assert_eq!(by_id(&entries, 3).progress, 3);
    assert_eq!(by_id(&entries, 4).status, Status::Dropped);
    assert_eq!(
        by_id(&entries, 5).status,
        Status::Planning,
        "plan_to_read, NSFW"
    );

    let lists = requests_to_path(&s.fake, "/v2/users/@me/mangalist");
    assert_eq!(lists.len(), 1);
    let q = query(&lists[0]);
    assert!(!q.contains_key("status"), "{q:?}");
    assert_eq!(q["sort"], "manga_title");
    assert_eq!(q["nsfw"], "true");
    assert_eq!(q["limit"], "1000");
    let fields: Vec<&str> = q["fields"].split(',').collect();
    assert!(
        fields.contains(&"num_chapters") && fields.contains(&"num_volumes"),
        "{fields:?}"
    );
    assert!(requests_to_path(&s.fake, "/v2/users/@me/animelist").is_empty());
    assert_eq!(mal.kinds(), &[MediaKind::Anime, MediaKind::Manga]);
}

#[tokio::test]
async fn the_manga_list_follows_pages_too() {
    let s = setup().await;
    for id in 1..=1500u64 {
        s.fake.add_manga(
            Manga::new(id, &format!("Manga {id:04}"), 0, 0)
                .chapters_read(id as u32)
                .nsfw(if id % 2 == 0 { "white" } else { "gray" }),
        );
    }
    let mal = s.logged_in();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let fetched = mal
        .fetch_list(MediaKind::Manga, &move |n| log.lock().unwrap().push(n))
        .await
        .unwrap();
    assert_eq!(fetched.entries.len(), 1500);
    assert_eq!(*seen.lock().unwrap(), vec![1000, 1500]);
    assert_eq!(by_id(&fetched.entries, 1234).progress, 1234);
    assert_eq!(
        requests_to_path(&s.fake, "/v2/users/@me/mangalist").len(),
        2
    );
}

// ---------------------------------------------------------------------------------------------
// Changes

#[tokio::test]
async fn one_patch_per_change_with_mals_field_name() {
    let s = setup().await;
    let mut a = Anime::new(5114, "Fullmetal Alchemist: Brotherhood", 64);
    a.watched = 5;
    s.fake.add_anime(a);
    let mal = s.logged_in();
    let ack = mal
        .apply(MediaKind::Anime, 5114, &Change::progress(6))
        .await
        .unwrap();
    let state = ack.state.unwrap();
    assert_eq!(state.progress, 6);
    assert_eq!(state.status, Some(Status::Current));
    assert_eq!(state.updated_at, s.fake.updated_at(5114));
    let patches = s.fake.patches();
    assert_eq!(patches.len(), 1);
    assert_eq!(patches[0].id, 5114);
    assert!(patches[0].is_anime());
    assert_eq!(patches[0].path, "/v2/anime/5114/my_list_status");
    assert_eq!(
        patches[0].form,
        vec![("num_watched_episodes".to_string(), "6".to_string())],
        "only the field that changed"
    );
    assert_eq!(s.fake.watched(5114), Some(6));
}

#[tokio::test]
async fn a_patch_of_status_score_dates_and_rewatching_is_one_request() {
    let s = setup().await;
    s.fake.add_anime(
        Anime::new(1, "Show", 12)
            .watched(12)
            .score(6)
            .list_dates(Some("2024-01-01"), None),
    );
    let mal = s.logged_in();
    let change = set(Patch {
        status: Some(Status::Completed),
        score: Some(9),
        repeating: Some(true),
        start_date: Some("2024-01-05".into()),
        finish_date: Some("2024-02-10".into()),
        ..Patch::default()
    });
    let ack = mal.apply(MediaKind::Anime, 1, &change).await.unwrap();

    let patches = s.fake.patches();
    assert_eq!(patches.len(), 1);
    let p = &patches[0];
    assert_eq!(p.get("status"), Some("completed"));
    assert_eq!(p.get("score"), Some("9"));
    assert_eq!(p.get("is_rewatching"), Some("true"));
    assert_eq!(p.get("start_date"), Some("2024-01-05"));
    assert_eq!(p.get("finish_date"), Some("2024-02-10"));
    assert_eq!(
        p.get("num_watched_episodes"),
        None,
        "progress was not changed"
    );
    assert_eq!(p.form.len(), 5, "{:?}", p.form);

    assert_eq!(s.fake.status(1).as_deref(), Some("completed"));
    assert_eq!(s.fake.score(1), Some(9));
    assert_eq!(s.fake.rewatching(1), Some(true));
    assert_eq!(s.fake.watched(1), Some(12));
    assert_eq!(
        s.fake.dates(1),
        (Some("2024-01-05".into()), Some("2024-02-10".into()))
    );

    assert_eq!(
        ack,
        Ack {
            state: Some(ListState {
                status: Some(Status::Completed),
                progress: 12,
                volumes: 0,
                score: 9,
                repeating: true,
                start_date: Some("2024-01-05".into()),
                finish_date: Some("2024-02-10".into()),
                updated_at: s.fake.updated_at(1),
            })
        }
    );
    // And the check before an offline change reads the same.
    assert_eq!(mal.current(MediaKind::Anime, 1).await.unwrap(), ack.state);
}

#[tokio::test]
async fn the_first_plus_on_a_planned_show_is_one_patch_with_status_count_and_start_date() {
    let s = setup().await;
    s.fake
        .add_anime(Anime::new(1, "Planned", 12).list_status("plan_to_watch"));
    let mal = s.logged_in();
    let change = set(Patch {
        status: Some(Status::Current),
        progress: Some(1),
        start_date: Some("2026-05-01".into()),
        ..Patch::default()
    });
    let ack = mal.apply(MediaKind::Anime, 1, &change).await.unwrap();
    let patches = s.fake.patches();
    assert_eq!(patches.len(), 1, "one request");
    let form: HashMap<&str, &str> = patches[0]
        .form
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        form,
        HashMap::from([
            ("status", "watching"),
            ("num_watched_episodes", "1"),
            ("start_date", "2026-05-01"),
        ])
    );
    assert_eq!(s.fake.status(1).as_deref(), Some("watching"));
    assert_eq!(s.fake.watched(1), Some(1));
    assert_eq!(s.fake.dates(1), (Some("2026-05-01".into()), None));
    let state = ack.state.unwrap();
    assert_eq!(state.status, Some(Status::Current));
    assert_eq!(state.progress, 1);
    assert_eq!(state.start_date.as_deref(), Some("2026-05-01"));
    assert_eq!(state.finish_date, None);
}

#[tokio::test]
async fn manga_patches_use_the_manga_field_names() {
    let s = setup().await;
    s.fake.add_manga(
        Manga::new(401, "Kiseijuu", 64, 10)
            .chapters_read(5)
            .volumes_read(1),
    );
    let mal = s.logged_in();
    let change = set(Patch {
        status: Some(Status::Current),
        progress: Some(12),
        volumes: Some(2),
        repeating: Some(true),
        score: Some(8),
        ..Patch::default()
    });
    let ack = mal.apply(MediaKind::Manga, 401, &change).await.unwrap();
    let patches = s.fake.patches();
    assert_eq!(patches.len(), 1);
    let p = &patches[0];
    assert!(p.is_manga(), "{p:?}");
    assert_eq!(p.path, "/v2/manga/401/my_list_status");
    assert_eq!(p.get("status"), Some("reading"));
    assert_eq!(p.get("num_chapters_read"), Some("12"));
    assert_eq!(p.get("num_volumes_read"), Some("2"));
    assert_eq!(p.get("is_rereading"), Some("true"));
    assert_eq!(p.get("score"), Some("8"));
    for anime_name in [
        "num_watched_episodes",
        "is_rewatching",
        "num_episodes_watched",
    ] {
        assert_eq!(p.get(anime_name), None, "{anime_name}");
    }
    assert_eq!(s.fake.chapters_read(401), Some(12));
    assert_eq!(s.fake.volumes_read(401), Some(2));
    assert_eq!(s.fake.manga_rereading(401), Some(true));
    assert_eq!(s.fake.manga_status(401).as_deref(), Some("reading"));
    assert_eq!(s.fake.manga_score(401), Some(8));
    assert!(!s.fake.on_list(401), "the anime list is untouched");
    let state = ack.state.unwrap();
    assert_eq!(
        (
            state.status,
            state.progress,
            state.volumes,
            state.repeating,
            state.score
        ),
        (Some(Status::Current), 12, 2, true, 8)
    );

    // Planned and completed manga use MAL's manga words.
    for (status, word) in [
        (Status::Planning, "plan_to_read"),
        (Status::Completed, "completed"),
        (Status::OnHold, "on_hold"),
        (Status::Dropped, "dropped"),
    ] {
        let ack = mal
            .apply(
                MediaKind::Manga,
                401,
                &set(Patch {
                    status: Some(status),
                    ..Patch::default()
                }),
            )
            .await
            .unwrap();
        assert_eq!(s.fake.patches().last().unwrap().get("status"), Some(word));
        assert_eq!(ack.state.unwrap().status, Some(status));
    }
    // A volume count means nothing for an anime: it is not sent (MAL would refuse the form).
    s.fake.add_anime(Anime::new(5, "Show", 12));
    mal.apply(
        MediaKind::Anime,
        5,
        &set(Patch {
            progress: Some(3),
            volumes: Some(2),
            ..Patch::default()
        }),
    )
    .await
    .unwrap();
    let last = s.fake.patches().last().unwrap().clone();
    assert_eq!(last.get("num_volumes_read"), None, "{last:?}");
    assert_eq!(s.fake.watched(5), Some(3));
}

#[tokio::test]
async fn adding_a_work_from_search_is_a_patch_that_puts_it_on_the_list() {
    let s = setup().await;
    s.fake.add_to_catalogue(Anime::new(10, "New Show", 13));
    s.fake
        .add_manga_to_catalogue(Manga::new(20, "New Manga", 0, 0));
    let mal = s.logged_in();
    let add = |status| {
        set(Patch {
            status: Some(status),
            ..Patch::default()
        })
    };
    assert_eq!(mal.current(MediaKind::Anime, 10).await.unwrap(), None);
    let ack = mal
        .apply(MediaKind::Anime, 10, &add(Status::Planning))
        .await
        .unwrap();
    assert_eq!(s.fake.status(10).as_deref(), Some("plan_to_watch"));
    let state = ack.state.unwrap();
    assert_eq!((state.status, state.progress), (Some(Status::Planning), 0));
    let ack = mal
        .apply(MediaKind::Manga, 20, &add(Status::Current))
        .await
        .unwrap();
    assert_eq!(s.fake.manga_status(20).as_deref(), Some("reading"));
    assert_eq!(ack.state.unwrap().status, Some(Status::Current));
    assert_eq!(
        mal.current(MediaKind::Manga, 20)
            .await
            .unwrap()
            .map(|s| s.status),
        Some(Some(Status::Current))
    );
}

#[tokio::test]
async fn delete_takes_the_entry_off_and_deleting_what_is_gone_counts_as_done() {
    let s = setup().await;
    s.fake.add_anime(Anime::new(1, "A", 12).watched(3));
    s.fake.add_manga(Manga::new(2, "M", 10, 1));
    let mal = s.logged_in();
    let ack = mal
        .apply(MediaKind::Anime, 1, &Change::Remove)
        .await
        .unwrap();
    assert_eq!(ack, Ack { state: None });
    assert!(!s.fake.on_list(1));
    // Already gone (removed here, or on the website): what the removal wanted.
    let again = mal
        .apply(MediaKind::Anime, 1, &Change::Remove)
        .await
        .unwrap();
    assert_eq!(again, Ack { state: None });
    // Never known to MAL at all: still nothing on the list.
    let unknown = mal
        .apply(MediaKind::Anime, 777, &Change::Remove)
        .await
        .unwrap();
    assert_eq!(unknown, Ack { state: None });
    let ack = mal
        .apply(MediaKind::Manga, 2, &Change::Remove)
        .await
        .unwrap();
    assert_eq!(ack, Ack { state: None });
    assert!(!s.fake.manga_on_list(2));
    assert_eq!(
        s.fake.deletes(),
        vec![
            ("anime".to_string(), 1),
            ("anime".to_string(), 1),
            ("anime".to_string(), 777),
            ("manga".to_string(), 2),
        ]
    );
    assert!(s.fake.patches().is_empty(), "a removal is not a PATCH");
    let deletes: Vec<String> = s
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .map(|r| r.path)
        .collect();
    assert_eq!(
        deletes,
        [
            "/v2/anime/1/my_list_status",
            "/v2/anime/1/my_list_status",
            "/v2/anime/777/my_list_status",
            "/v2/manga/2/my_list_status",
        ]
    );
    assert_eq!(mal.current(MediaKind::Anime, 1).await.unwrap(), None);

    // Other failures of a removal are failures.
    s.fake.add_anime(Anime::new(3, "C", 12));
    s.fake.fail_next(1, 500, "{}", "application/json");
    let err = mal
        .apply(MediaKind::Anime, 3, &Change::Remove)
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Server(_)), "{err:?}");
    assert!(s.fake.on_list(3));
    s.fake
        .fail_next(1, 403, support::mal::FORBIDDEN_BODY, "application/json");
    let err = mal
        .apply(MediaKind::Anime, 3, &Change::Remove)
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Throttled { .. }), "{err:?}");
    assert!(s.fake.on_list(3));
}

#[tokio::test]
async fn current_reads_what_the_list_holds_or_none() {
    let s = setup().await;
    s.fake.add_anime(
        Anime::new(1, "A", 12)
            .list_status("on_hold")
            .watched(4)
            .score(7)
            .rewatching(true)
            .list_dates(Some("2023-03-03"), None),
    );
    s.fake.add_to_catalogue(Anime::new(2, "Not Listed", 12));
    s.fake.add_manga(
        Manga::new(3, "M", 50, 5)
            .list_status("dropped")
            .chapters_read(9)
            .volumes_read(1)
            .rereading(true),
    );
    let mal = s.logged_in();
    assert_eq!(
        mal.current(MediaKind::Anime, 1).await.unwrap(),
        Some(ListState {
            status: Some(Status::OnHold),
            progress: 4,
            volumes: 0,
            score: 7,
            repeating: true,
            start_date: Some("2023-03-03".into()),
            finish_date: None,
            updated_at: s.fake.updated_at(1),
        })
    );
    assert_eq!(mal.current(MediaKind::Anime, 2).await.unwrap(), None);
    assert_eq!(
        mal.current(MediaKind::Manga, 3).await.unwrap(),
        Some(ListState {
            status: Some(Status::Dropped),
            progress: 9,
            volumes: 1,
            score: 0,
            repeating: true,
            start_date: None,
            finish_date: None,
            updated_at: s.fake.manga_updated_at(3),
        })
    );
    // An anime with manga 3's id is another work.
    assert!(
        mal.current(MediaKind::Anime, 3)
            .await
            .unwrap_err()
            .is_permanent()
    );
    let looks: Vec<HashMap<String, String>> = s
        .fake
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.starts_with("/v2/"))
        .map(query)
        .collect();
    assert!(
        looks
            .iter()
            .all(|q| q["fields"] == "my_list_status" && q["nsfw"] == "true"),
        "{looks:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Search and details

/// The catalogue the search tests look in.
fn search_catalogue(fake: &FakeMal) {
    fake.add_to_catalogue(
        Anime::new(5114, "Fullmetal Alchemist: Brotherhood", 64)
            .start_season(2009, "spring")
            .mean(9.1)
            .media_type("tv"),
    );
    fake.add_to_catalogue(
        Anime::new(121, "Fullmetal Alchemist", 51)
            .start_date("2003-10-04")
            .mean(8.11)
            .nsfw("gray"),
    );
    fake.add_to_catalogue(
        Anime::new(430, "Fullmetal Alchemist: The Conqueror of Shamballa", 1).media_type("movie"),
    );
    fake.add_to_catalogue(Anime::new(1, "Cowboy Bebop", 26));
    fake.add_manga_to_catalogue(
        Manga::new(25, "Fullmetal Alchemist", 116, 27)
            .start_date("2001-07-12")
            .mean(9.03),
    );
    fake.add_manga_to_catalogue(
        Manga::new(148009, "Level Up with the Gods", 0, 0)
            .media_type("manhwa")
            .start_date("2021-08-14"),
    );
}

/// A search result as the search pane shows it: id, title, total, year, mean, type.
type Shown<'a> = (
    u64,
    &'a str,
    Option<u32>,
    Option<i32>,
    Option<&'a str>,
    Option<&'a str>,
);

#[tokio::test]
async fn search_sends_nsfw_and_reads_type_total_year_and_mean() {
    let s = setup().await;
    search_catalogue(&s.fake);
    s.fake
        .add_anime(Anime::new(1, "Cowboy Bebop", 26).watched(3));
    let mal = s.logged_in();
    let found = mal.search(MediaKind::Anime, "  Fullmetal  ").await.unwrap();
    let got: Vec<Shown> = found
        .iter()
        .map(|f| {
            (
                f.entry.id,
                f.entry.title.as_str(),
                f.entry.total,
                f.year,
                f.mean.as_deref(),
                f.entry.media.media_type.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                121,
                "Fullmetal Alchemist",
                Some(51),
                Some(2003),
                Some("8.11"),
                Some("tv")
            ),
            (
                430,
                "Fullmetal Alchemist: The Conqueror of Shamballa",
                Some(1),
                None,
                None,
                Some("movie")
            ),
            (
                5114,
                "Fullmetal Alchemist: Brotherhood",
                Some(64),
                Some(2009),
                Some("9.10"),
                Some("tv")
            ),
        ],
        "the NSFW one included; the year from the season, else the start date"
    );
    for f in &found {
        assert_eq!(f.entry.kind, MediaKind::Anime);
        assert_eq!(f.entry.status, Status::Planning, "a new entry is planned");
        assert_eq!((f.entry.progress, f.entry.score), (0, 0));
        assert!(f.entry.media.picture.is_some());
    }
    let searches = requests_to_path(&s.fake, "/v2/anime");
    assert_eq!(searches.len(), 1);
    let q = query(&searches[0]);
    assert_eq!(q["q"], "Fullmetal", "trimmed");
    assert_eq!(q["nsfw"], "true");
    let limit: u32 = q["limit"].parse().unwrap();
    assert!((1..=100).contains(&limit), "MAL refuses a limit over 100");
    let fields: Vec<&str> = q["fields"].split(',').collect();
    for wanted in ["media_type", "num_episodes", "start_season", "mean"] {
        assert!(fields.contains(&wanted), "{wanted} in {fields:?}");
    }
    assert!(
        searches[0]
            .authorization
            .as_deref()
            .is_some_and(|a| a.starts_with("Bearer ")),
        "signed in"
    );

    let manga = mal.search(MediaKind::Manga, "alchemist").await.unwrap();
    assert_eq!(manga.len(), 1);
    let m = &manga[0];
    assert_eq!(m.entry.kind, MediaKind::Manga);
    assert_eq!(
        (m.entry.id, m.entry.total, m.entry.total_volumes),
        (25, Some(116), Some(27))
    );
    assert_eq!((m.year, m.mean.as_deref()), (Some(2001), Some("9.03")));
    assert_eq!(m.entry.status, Status::Planning);
    let manhwa = mal.search(MediaKind::Manga, "level up").await.unwrap();
    assert_eq!(manhwa.len(), 1);
    assert_eq!(
        (manhwa[0].entry.total, manhwa[0].entry.total_volumes),
        (None, None),
        "0 chapters means unknown"
    );
    assert_eq!(manhwa[0].entry.media.media_type.as_deref(), Some("manhwa"));
    assert_eq!(
        s.fake.search_log(),
        vec![
            ("anime".to_string(), "Fullmetal".to_string()),
            ("manga".to_string(), "alchemist".to_string()),
            ("manga".to_string(), "level up".to_string()),
        ]
    );
    assert!(
        mal.search(MediaKind::Anime, "nothing like it")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn search_queries_are_trimmed_to_64_characters_and_short_ones_are_not_sent() {
    let s = setup().await;
    search_catalogue(&s.fake);
    let mal = s.logged_in();
    let long = format!("Fullmetal {}", "x".repeat(100));
    mal.search(MediaKind::Anime, &long).await.unwrap();
    let sent = s.fake.searches();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].chars().count(), 64, "{:?}", sent[0]);
    assert!(long.starts_with(&sent[0]));
    // Characters, not bytes.
    let wide = "é".repeat(80);
    mal.search(MediaKind::Anime, &wide).await.unwrap();
    assert_eq!(s.fake.searches()[1], "é".repeat(64));
    // The cut never leaves a trailing space for MAL to count.
    let spaced = format!("{}  tail", "a".repeat(63));
    mal.search(MediaKind::Anime, &spaced).await.unwrap();
    assert_eq!(s.fake.searches()[2], "a".repeat(63));

    let before = s.fake.requests().len();
    for short in ["", "  ", "ab", "  ab  ", "é", "\t\n x"] {
        let err = mal.search(MediaKind::Anime, short).await.unwrap_err();
        assert!(
            matches!(err, ProviderError::Rejected(_)),
            "{short:?}: {err:?}"
        );
        assert!(err.to_string().contains('3'), "{err}");
        let err = mal.search(MediaKind::Manga, short).await.unwrap_err();
        assert!(
            matches!(err, ProviderError::Rejected(_)),
            "{short:?}: {err:?}"
        );
    }
    assert_eq!(
        s.fake.requests().len(),
        before,
        "no request for a short query"
    );
    assert_eq!(s.fake.searches().len(), 3);
    // Exactly three is enough.
    mal.search(MediaKind::Anime, " bEb ").await.unwrap();
    assert_eq!(s.fake.searches()[3], "bEb");

    assert_eq!(search_query("  ab "), None);
    assert_eq!(search_query(" abc ").as_deref(), Some("abc"));
    assert_eq!(search_query(&"y".repeat(65)).map(|q| q.len()), Some(64));
}

#[tokio::test]
async fn search_and_details_work_with_the_client_id_after_the_session_expired() {
    let s = setup().await;
    search_catalogue(&s.fake);
    s.fake
        .add_anime(Anime::new(1, "Cowboy Bebop", 26).synopsis("Space cowboys."));
    let mal = s.logged_in();
    s.fake.revoke_refresh_tokens();
    s.fake.expire_access_tokens();

    let found = mal.search(MediaKind::Anime, "fullmetal").await.unwrap();
    assert_eq!(found.len(), 3, "NSFW too, with the client id");
    let details = mal.details(MediaKind::Anime, 1).await.unwrap();
    assert_eq!(details.title, "Cowboy Bebop");
    assert_eq!(details.synopsis.as_deref(), Some("Space cowboys."));
    let manga = mal.search(MediaKind::Manga, "fullmetal").await.unwrap();
    assert_eq!(manga.len(), 1);

    let answered: Vec<Req> = s
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v2/anime" || r.path == "/v2/manga" || r.path == "/v2/anime/1")
        .collect();
    let last_three = &answered[answered.len() - 3..];
    assert!(
        last_three.iter().all(|r| r.authorization.is_none()),
        "the client id alone: {answered:?}"
    );
    assert!(
        last_three.iter().all(|r| query(r)["nsfw"] == "true"),
        "{last_three:?}"
    );
    // Once the session is known to be over, it is not tried again for each search.
    let before = s.fake.requests().len();
    mal.search(MediaKind::Anime, "bebop").await.unwrap();
    assert_eq!(s.fake.requests().len(), before + 1);

    // The user's own list still needs a login.
    assert_eq!(
        mal.fetch_list(MediaKind::Anime, &|_| {}).await.unwrap_err(),
        ProviderError::SessionExpired
    );

    // Never logged in: public data all the same.
    let fresh = tempfile::tempdir().unwrap();
    let never = Mal::new(
        &s.cfg,
        Http::default(),
        TokenFile::new(fresh.path().join("none.json")),
    );
    assert_eq!(
        never.search(MediaKind::Anime, "bebop").await.unwrap().len(),
        1
    );
    assert_eq!(never.details(MediaKind::Anime, 1).await.unwrap().id, 1);
    assert!(
        never
            .fetch_list(MediaKind::Anime, &|_| {})
            .await
            .unwrap_err()
            .needs_login()
    );

    // A client id MAL does not know is refused, as an error, not as an empty result.
    s.fake.set_client_id("another-client");
    let err = mal.search(MediaKind::Anime, "bebop").await.unwrap_err();
    assert!(err.needs_login() || !err.to_string().is_empty(), "{err:?}");
}

#[tokio::test]
async fn details_read_synopsis_genres_broadcast_mean_and_the_english_title() {
    let s = setup().await;
    s.fake.add_anime(
        Anime::new(1, "Shingeki no Kyojin", 0)
            .airing("Sunday", "00:10", "2025-04-06")
            .synopsis("Walls.\n\nTitans.")
            .genres(&["Action", "Drama", "Mystery"])
            .mean(8.5)
            .alternative_titles("Attack on Titan", "進撃の巨人")
            .media_type("tv")
            .end_date("2025-09-28"),
    );
    s.fake.add_to_catalogue(
        Anime::new(2, "Same Title", 12)
            .mean(7.0)
            .airing_status("finished_airing")
            .broadcast("other", ""),
    );
    s.fake.add_manga_to_catalogue(
        Manga::new(3, "Vagabond", 327, 37)
            .publishing_status("on_hiatus")
            .genres(&["Action", "Historical", "Seinen"])
            .mean(9.27)
            .alternative_titles("Vagabond", "バガボンド")
            .start_date("1998-09-03")
            .media_type("manga")
            .synopsis("A swordsman."),
    );
    let mal = s.logged_in();

    let d = mal.details(MediaKind::Anime, 1).await.unwrap();
    assert_eq!(d.kind, Some(MediaKind::Anime));
    assert_eq!(d.id, 1);
    assert_eq!(d.title, "Shingeki no Kyojin");
    assert_eq!(d.alt_title.as_deref(), Some("Attack on Titan"));
    assert_eq!(d.synopsis.as_deref(), Some("Walls.\n\nTitans."));
    assert_eq!(d.genres, ["Action", "Drama", "Mystery"]);
    assert_eq!(d.mean.as_deref(), Some("8.50"));
    assert_eq!(d.media_type.as_deref(), Some("tv"));
    assert_eq!(d.total, None, "0 episodes: not known yet");
    assert_eq!(d.state.as_deref(), Some("currently airing"));
    assert_eq!(d.start_date.as_deref(), Some("2025-04-06"));
    assert_eq!(d.end_date.as_deref(), Some("2025-09-28"));
    assert_eq!(
        d.schedule,
        Some(Schedule {
            state: AiringState::Airing,
            start_date: Some("2025-04-06".into()),
            broadcast_day: Some("sunday".into()),
            broadcast_time: Some("00:10".into()),
            episodes: None,
            next_exact: None,
        })
    );
    assert_eq!(
        d.picture,
        Some(format!("{}/images/anime/1l.png", s.fake.base()))
    );
    let sent = requests_to_path(&s.fake, "/v2/anime/1");
    let q = query(&sent[0]);
    assert_eq!(q["nsfw"], "true");
    let fields: Vec<&str> = q["fields"].split(',').collect();
    for wanted in [
        "synopsis",
        "genres",
        "broadcast",
        "mean",
        "alternative_titles",
        "status",
    ] {
        assert!(fields.contains(&wanted), "{wanted} in {fields:?}");
    }

    let d = mal.details(MediaKind::Anime, 2).await.unwrap();
    assert_eq!(d.alt_title, None, "the English title is the title");
    assert_eq!(d.mean.as_deref(), Some("7.00"));
    assert_eq!(d.total, Some(12));
    assert_eq!(d.state.as_deref(), Some("finished airing"));
    assert_eq!(d.synopsis, None, "MAL's empty synopsis is none");
    assert!(d.genres.is_empty());
    let schedule = d.schedule.unwrap();
    assert_eq!(schedule.state, AiringState::Finished);
    assert_eq!(schedule.broadcast_day.as_deref(), Some("other"));
    assert_eq!(schedule.episodes, Some(12));

    let m = mal.details(MediaKind::Manga, 3).await.unwrap();
    assert_eq!(m.kind, Some(MediaKind::Manga));
    assert_eq!(m.title, "Vagabond");
    assert_eq!(m.alt_title, None);
    assert_eq!((m.total, m.total_volumes), (Some(327), Some(37)));
    assert_eq!(m.state.as_deref(), Some("on hiatus"));
    assert_eq!(m.mean.as_deref(), Some("9.27"));
    assert_eq!(m.genres, ["Action", "Historical", "Seinen"]);
    assert_eq!(m.schedule, None);
    assert_eq!(m.start_date.as_deref(), Some("1998-09-03"));
    assert_eq!(m.synopsis.as_deref(), Some("A swordsman."));
    assert_eq!(m.media_type.as_deref(), Some("manga"));
}

#[tokio::test]
async fn details_of_a_work_mal_does_not_have_is_a_clear_404() {
    let s = setup().await;
    let mal = s.logged_in();
    for kind in MediaKind::ALL {
        let err = mal.details(kind, 999_999).await.unwrap_err();
        assert!(err.is_permanent(), "{err:?}");
        assert!(err.to_string().contains("404"), "{err}");
        assert!(
            err.to_string().contains("no longer has this title"),
            "{err}"
        );
    }
    // With the client id alone too.
    s.fake.revoke_refresh_tokens();
    s.fake.expire_access_tokens();
    let err = mal.details(MediaKind::Anime, 999_999).await.unwrap_err();
    assert!(err.is_permanent(), "{err:?}");
    assert!(err.to_string().contains("404"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// The recorded answers, read by the pure parsers

const ANIME_PAGE: &[u8] = include_bytes!("fixtures/mal/user-animelist-page.json");
const MANGA_PAGE: &[u8] = include_bytes!("fixtures/mal/user-mangalist-page.json");
const ANIME_DETAILS: &[u8] =
    include_bytes!("fixtures/mal/anime-details-full-with-my_list_status.json");
const ANIME_DETAILS_BASIC: &[u8] = include_bytes!("fixtures/mal/anime-details-basic.json");
const MANGA_DETAILS: &[u8] =
    include_bytes!("fixtures/mal/manga-details-full-with-my_list_status.json");
const MANGA_DETAILS_BASIC: &[u8] = include_bytes!("fixtures/mal/manga-details-basic.json");
const ANIME_PATCH: &[u8] = include_bytes!("fixtures/mal/patch-anime-my_list_status-response.json");
const MANGA_PATCH: &[u8] = include_bytes!("fixtures/mal/patch-manga-my_list_status-response.json");
const ANIME_SEARCH: &[u8] = include_bytes!("fixtures/mal/anime-search-page.json");

#[test]
fn the_recorded_list_pages_read_as_mal_means_them() {
    let page = parse_list_page(ANIME_PAGE, MediaKind::Anime).unwrap();
    assert_eq!(page.skipped, 0);
    assert_eq!(page.next, None);
    let hnk = by_id(&page.entries, 967);
    assert_eq!(hnk.title, "Hokuto no Ken");
    assert_eq!(hnk.status, Status::Current);
    assert_eq!(hnk.progress, 73);
    assert_eq!(hnk.kind, MediaKind::Anime);
    assert_eq!(
        hnk.media.picture.as_deref(),
        Some("https://api-cdn.myanimelist.net/images/anime/8/18502l.jpg")
    );

    let page = parse_list_page(MANGA_PAGE, MediaKind::Manga).unwrap();
    assert_eq!(page.skipped, 0);
    assert_eq!(page.next, None);
    let entries = page.entries;
    assert_eq!(entries.len(), 2);
    let death_note = by_id(&entries, 21);
    assert_eq!(death_note.title, "Death Note");
    assert_eq!(death_note.kind, MediaKind::Manga);
    assert_eq!(death_note.status, Status::Completed);
    assert_eq!((death_note.progress, death_note.volumes), (108, 12));
    assert!(!death_note.repeating);
    assert_eq!(
        death_note.updated_at.as_deref(),
        Some("2021-03-15T09:29:02+00:00")
    );
    let kiseijuu = by_id(&entries, 401);
    assert_eq!(kiseijuu.status, Status::Current, "reading");
    assert_eq!((kiseijuu.progress, kiseijuu.volumes), (5, 1));
    assert_eq!(kiseijuu.total, None, "not asked for in this recording");
    assert_eq!(
        kiseijuu.media.picture.as_deref(),
        Some("https://api-cdn.myanimelist.net/images/manga/2/188928l.jpg")
    );
}

#[test]
fn the_recorded_patch_answers_read_as_list_states() {
    let anime = parse_list_status(ANIME_PATCH, MediaKind::Anime, &Patch::progress(73)).unwrap();
    assert_eq!(
        anime,
        ListState {
            status: Some(Status::Current),
            progress: 73,
            volumes: 0,
            score: 8,
            repeating: false,
            start_date: None,
            finish_date: None,
            updated_at: Some("2021-03-16T07:36:44+00:00".into()),
        }
    );
    // What MAL says wins over what was sent.
    let anime = parse_list_status(ANIME_PATCH, MediaKind::Anime, &Patch::progress(1)).unwrap();
    assert_eq!(anime.progress, 73);
    let manga = parse_list_status(MANGA_PATCH, MediaKind::Manga, &Patch::default()).unwrap();
    assert_eq!(
        manga,
        ListState {
            status: Some(Status::Current),
            progress: 5,
            volumes: 1,
            score: 0,
            repeating: false,
            start_date: None,
            finish_date: None,
            updated_at: Some("2021-03-22T18:15:09+00:00".into()),
        }
    );
    // The anime answer has no chapter count: as a manga answer it says nothing of the chapters.
    assert!(parse_list_status(ANIME_PATCH, MediaKind::Manga, &Patch::default()).is_err());
    assert_eq!(
        parse_list_status(ANIME_PATCH, MediaKind::Manga, &Patch::progress(9))
            .unwrap()
            .progress,
        9
    );
}

#[test]
fn the_recorded_details_read_as_details_and_list_states() {
    let jjk = parse_details(ANIME_DETAILS, MediaKind::Anime).unwrap();
    assert_eq!(jjk.kind, Some(MediaKind::Anime));
    assert_eq!(jjk.id, 40748);
    assert_eq!(jjk.title, "Jujutsu Kaisen");
    assert_eq!(jjk.alt_title, None, "the English title is the same");
    assert!(
        jjk.synopsis
            .as_deref()
            .is_some_and(|s| s.starts_with("Idly indulging")),
        "{:?}",
        jjk.synopsis
    );
    assert_eq!(jjk.media_type.as_deref(), Some("tv"));
    assert_eq!(jjk.total, Some(24));
    assert_eq!(jjk.state.as_deref(), Some("finished airing"));
    assert_eq!(jjk.start_date.as_deref(), Some("2020-10-03"));
    assert_eq!(jjk.end_date.as_deref(), Some("2021-03-27"));
    assert_eq!(jjk.mean.as_deref(), Some("8.51"));
    assert_eq!(
        jjk.genres,
        [
            "Action",
            "Award Winning",
            "School",
            "Shounen",
            "Supernatural"
        ]
    );
    assert_eq!(
        jjk.schedule,
        Some(Schedule {
            state: AiringState::Finished,
            start_date: Some("2020-10-03".into()),
            broadcast_day: Some("saturday".into()),
            broadcast_time: Some("01:25".into()),
            episodes: Some(24),
            next_exact: None,
        })
    );
    assert_eq!(
        jjk.picture.as_deref(),
        Some("https://myanimelist.net/images/anime/1171/109222l.webp")
    );
    assert_eq!(
        parse_my_status(ANIME_DETAILS, MediaKind::Anime).unwrap(),
        Some(ListState {
            status: Some(Status::Current),
            progress: 4,
            volumes: 0,
            score: 0,
            repeating: false,
            start_date: Some("2024-11-18".into()),
            finish_date: None,
            updated_at: Some("2026-04-18T03:11:08+00:00".into()),
        })
    );

    let hnk = parse_details(ANIME_DETAILS_BASIC, MediaKind::Anime).unwrap();
    assert_eq!(hnk.title, "Hokuto no Ken");
    assert_eq!(hnk.alt_title.as_deref(), Some("Fist of the North Star"));
    assert_eq!(hnk.total, Some(109));
    assert_eq!(hnk.synopsis, None);
    assert_eq!(hnk.mean, None);
    assert_eq!(hnk.schedule, None, "no airing status asked for");
    assert_eq!(hnk.genres.len(), 5);
    assert_eq!(
        parse_my_status(ANIME_DETAILS_BASIC, MediaKind::Anime).unwrap(),
        None
    );

    let gods = parse_details(MANGA_DETAILS, MediaKind::Manga).unwrap();
    assert_eq!(gods.kind, Some(MediaKind::Manga));
    assert_eq!(gods.id, 148009);
    assert_eq!(gods.title, "Level Up with the Gods");
    assert_eq!(gods.alt_title, None);
    assert_eq!(gods.media_type.as_deref(), Some("manhwa"));
    assert_eq!(
        (gods.total, gods.total_volumes),
        (None, None),
        "0 means unknown"
    );
    assert_eq!(gods.state.as_deref(), Some("currently publishing"));
    assert_eq!(gods.mean.as_deref(), Some("7.65"));
    assert_eq!(
        gods.genres,
        ["Action", "Adventure", "Fantasy", "Time Travel"]
    );
    assert_eq!(gods.schedule, None, "a manga has no airing schedule");
    assert_eq!(gods.start_date.as_deref(), Some("2021-08-14"));
    assert_eq!(
        parse_my_status(MANGA_DETAILS, MediaKind::Manga).unwrap(),
        Some(ListState {
            status: Some(Status::Current),
            progress: 167,
            volumes: 0,
            score: 9,
            repeating: false,
            start_date: Some("2025-05-13".into()),
            finish_date: None,
            updated_at: Some("2026-04-29T01:16:18+00:00".into()),
        })
    );

    let kiseijuu = parse_details(MANGA_DETAILS_BASIC, MediaKind::Manga).unwrap();
    assert_eq!(kiseijuu.alt_title.as_deref(), Some("Parasyte"));
    assert_eq!(
        (kiseijuu.total, kiseijuu.total_volumes),
        (Some(64), Some(10))
    );
    assert_eq!(kiseijuu.state.as_deref(), Some("finished"));
    assert_eq!(kiseijuu.genres.len(), 6);
    assert_eq!(
        parse_my_status(MANGA_DETAILS_BASIC, MediaKind::Manga).unwrap(),
        None
    );
}

#[test]
fn the_recorded_search_page_reads_as_found_works() {
    let found = parse_search(ANIME_SEARCH, MediaKind::Anime).unwrap();
    let got: Vec<(u64, &str, Option<i32>)> = found
        .iter()
        .map(|f| (f.entry.id, f.entry.title.as_str(), f.year))
        .collect();
    assert_eq!(
        got,
        [
            (967, "Hokuto no Ken", Some(1984)),
            (1356, "Hokuto no Ken 2", Some(1987)),
            (1358, "Hokuto no Ken Movie", Some(1986)),
        ]
    );
    assert!(
        found
            .iter()
            .all(|f| f.mean.is_none() && f.entry.total.is_none())
    );
    assert!(found.iter().all(|f| f.entry.status == Status::Planning));
}

// ---------------------------------------------------------------------------------------------
// The session

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
        let kind = MediaKind::ALL[n % 2];
        tasks.push(tokio::spawn(async move {
            mal.fetch_list(kind, &|_| {}).await.map(|_| n)
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
    again.fetch_list(MediaKind::Anime, &|_| {}).await.unwrap();
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
    first.fetch_list(MediaKind::Anime, &|_| {}).await.unwrap();
    second.fetch_list(MediaKind::Anime, &|_| {}).await.unwrap();
    s.fake.expire_access_tokens();
    let a = tokio::spawn({
        let p = first.clone();
        async move { p.fetch_list(MediaKind::Anime, &|_| {}).await }
    });
    let b = tokio::spawn({
        let p = second.clone();
        async move { p.fetch_list(MediaKind::Manga, &|_| {}).await }
    });
    a.await.unwrap().unwrap();
    b.await.unwrap().unwrap();
    assert_eq!(s.fake.refresh_count(), 1, "one refresh for both processes");
    // Both keep working with the one live token pair.
    first
        .apply(MediaKind::Anime, 1, &Change::progress(1))
        .await
        .unwrap();
    second
        .apply(MediaKind::Anime, 1, &Change::progress(2))
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
        .apply(MediaKind::Anime, 1, &Change::progress(1))
        .await
        .unwrap_err();
    assert_eq!(err, ProviderError::SessionExpired);
    assert!(err.to_string().contains("malt --login"));
    assert!(s.fake.patches().is_empty());
    assert_eq!(
        mal.apply(MediaKind::Anime, 1, &Change::Remove)
            .await
            .unwrap_err(),
        ProviderError::SessionExpired,
        "a removal needs the login too"
    );
    assert!(s.fake.deletes().is_empty());
    assert_eq!(
        mal.current(MediaKind::Anime, 1).await.unwrap_err(),
        ProviderError::SessionExpired
    );
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
    mal.apply(MediaKind::Anime, 1, &Change::progress(1))
        .await
        .unwrap();
    assert_eq!(s.fake.watched(1), Some(1));
    // Signed in again, search uses the token again.
    s.fake.add_to_catalogue(Anime::new(2, "Bebop", 26));
    mal.search(MediaKind::Anime, "bebop").await.unwrap();
    let last = s.fake.requests().pop().unwrap();
    assert!(last.authorization.is_some(), "{last:?}");
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
    let list = || mal.fetch_list(MediaKind::Anime, &|_| {});

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

    // Not a list page at all: an error, not an empty list.
    s.fake.fail_next(1, 200, "{}", "application/json");
    assert!(matches!(list().await, Err(ProviderError::BadResponse(_))));

    let err = mal
        .apply(MediaKind::Anime, 424242, &Change::progress(1))
        .await
        .unwrap_err();
    assert!(err.is_permanent(), "{err:?}");
    assert!(err.to_string().contains("404"), "{err}");

    // A value MAL refuses: refused for good, with MAL's words.
    s.fake.fail_next(
        1,
        400,
        r#"{"message":"invalid score","error":"bad_request"}"#,
        "application/json",
    );
    let err = mal
        .apply(
            MediaKind::Anime,
            1,
            &set(Patch {
                score: Some(7),
                ..Patch::default()
            }),
        )
        .await
        .unwrap_err();
    assert!(err.is_permanent(), "{err:?}");
    assert!(err.to_string().contains("invalid score"), "{err}");

    // A PATCH answer that is not a list status.
    s.fake.fail_next(1, 200, "[]", "application/json");
    let err = mal
        .apply(MediaKind::Anime, 1, &Change::progress(2))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::BadResponse(_)), "{err:?}");

    // Search and details map errors the same way.
    s.fake
        .fail_next(1, 400, support::mal::INVALID_Q_BODY, "application/json");
    let err = mal.search(MediaKind::Anime, "abc").await.unwrap_err();
    assert!(
        err.is_permanent() && err.to_string().contains("invalid q"),
        "{err}"
    );
    s.fake
        .fail_next(1, 502, "<html>Bad Gateway</html>", "text/html");
    let err = mal.details(MediaKind::Anime, 1).await.unwrap_err();
    assert!(matches!(err, ProviderError::Server(_)), "{err:?}");
    s.fake
        .fail_next(1, 200, "<html>maintenance</html>", "text/html");
    let err = mal.search(MediaKind::Manga, "abc").await.unwrap_err();
    assert!(err.to_string().contains("HTML page"), "{err}");

    s.fake.go_down();
    assert!(matches!(list().await, Err(ProviderError::Offline(_))));
    assert!(matches!(
        mal.search(MediaKind::Anime, "abc").await,
        Err(ProviderError::Offline(_))
    ));
    s.fake.go_up();
    assert_eq!(list().await.unwrap().entries.len(), 1);
}

// ---------------------------------------------------------------------------------------------
// The outbox worker

/// The service's progress in a `Delivered` event.
fn delivered_progress(e: &Event) -> Option<u32> {
    match e {
        Event::Delivered { state, .. } => state.as_ref().map(|s| s.progress),
        _ => None,
    }
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
                Change::progress(n),
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
            Ok(Some(
                e @ Event::Delivered {
                    media_id,
                    kind: MediaKind::Anime,
                    ..
                },
            )) => delivered.push((media_id, delivered_progress(&e).unwrap())),
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
    db.call(|st| st.enqueue(Service::Mal, MediaKind::Anime, 1, Change::progress(1), 0, 0))
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
    assert_eq!(delivered_progress(&second), Some(1), "{second:?}");
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
    db.call(|st| st.enqueue_fresh(Service::Mal, MediaKind::Anime, 1, Change::progress(6), 5, 0))
        .await
        .unwrap();
    let events = worker_events(provider, &db, 1).await;
    assert_eq!(delivered_progress(&events[0]), Some(6), "{events:?}");
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
                Change::progress(n),
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
            kind: MediaKind::Anime,
            media_id: 1,
            mine: "episode 7".into(),
            theirs: "episode 9".into(),
            state: Some(ListState {
                status: Some(Status::Current),
                progress: 9,
                updated_at: s.fake.updated_at(1),
                ..ListState::default()
            }),
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
    let fetched = provider
        .fetch_list(MediaKind::Anime, &|_| {})
        .await
        .unwrap();
    store
        .replace_entries(Service::Mal, MediaKind::Anime, &fetched.entries, 0, false)
        .unwrap();
    let db = Db::spawn(store);
    db.call(|st| st.enqueue(Service::Mal, MediaKind::Anime, 1, Change::progress(6), 5, 0))
        .await
        .unwrap();
    s.fake.remove_from_list(1);
    let events = worker_events(provider, &db, 1).await;
    assert!(
        matches!(
            &events[0],
            Event::Conflict {
                state: None,
                mine,
                theirs,
                ..
            } if mine == "episode 6" && theirs == "not on the list"
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
    assert!(
        db.call(|st| st.entries(Service::Mal))
            .await
            .unwrap()
            .is_empty(),
        "the cache takes the service's side: not on the list"
    );
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
                Change::progress(n),
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
        .map(|e| delivered_progress(e).unwrap_or_else(|| panic!("unexpected {e:?}")))
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

#[tokio::test]
async fn the_worker_delivers_manga_changes_and_removals() {
    let s = setup().await;
    s.fake.add_manga(
        Manga::new(401, "Kiseijuu", 64, 10)
            .chapters_read(5)
            .volumes_read(1),
    );
    s.fake.add_anime(Anime::new(1, "A", 12).watched(2));
    let provider: Arc<dyn Provider> = Arc::new(s.logged_in());
    let db = Db::spawn(Store::open_in_memory().unwrap());
    db.call(|st| {
        st.enqueue_fresh(
            Service::Mal,
            MediaKind::Manga,
            401,
            Change::Set(Patch {
                progress: Some(6),
                volumes: Some(2),
                ..Patch::default()
            }),
            5,
            0,
        )?;
        st.enqueue_fresh(Service::Mal, MediaKind::Anime, 1, Change::Remove, 1, 0)
    })
    .await
    .unwrap();
    let events = worker_events(provider, &db, 2).await;
    let manga = events
        .iter()
        .find_map(|e| match e {
            Event::Delivered {
                kind: MediaKind::Manga,
                media_id: 401,
                state,
                ..
            } => Some(state.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{events:?}"))
        .unwrap();
    assert_eq!((manga.progress, manga.volumes), (6, 2));
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::Delivered {
                kind: MediaKind::Anime,
                media_id: 1,
                state: None,
                ..
            }
        )),
        "{events:?}"
    );
    assert_eq!(s.fake.chapters_read(401), Some(6));
    assert_eq!(s.fake.volumes_read(401), Some(2));
    assert!(!s.fake.on_list(1));
    assert_eq!(s.fake.deletes(), [("anime".to_string(), 1)]);
}

#[tokio::test]
async fn a_removal_made_offline_of_an_entry_already_gone_is_done_without_a_request() {
    let s = setup().await;
    s.fake.add_anime(Anime::new(1, "A", 12).watched(2));
    let provider: Arc<dyn Provider> = Arc::new(s.logged_in());
    let db = Db::spawn(Store::open_in_memory().unwrap());
    db.call(|st| st.enqueue(Service::Mal, MediaKind::Anime, 1, Change::Remove, 1, 0))
        .await
        .unwrap();
    s.fake.remove_from_list(1);
    let events = worker_events(provider, &db, 1).await;
    assert!(
        matches!(
            events[0],
            Event::Delivered {
                media_id: 1,
                state: None,
                ..
            }
        ),
        "{events:?}"
    );
    assert!(s.fake.deletes().is_empty(), "nothing left to delete");
    assert!(
        db.call(|st| st.pending(Service::Mal))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn an_entry_added_from_search_while_offline_is_checked_then_added_and_cached() {
    let s = setup().await;
    s.fake.add_to_catalogue(Anime::new(10, "New Show", 13));
    let provider: Arc<dyn Provider> = Arc::new(s.logged_in());
    let found = provider
        .search(MediaKind::Anime, "new show")
        .await
        .unwrap()
        .remove(0);
    let db = Db::spawn(Store::open_in_memory().unwrap());
    let entry = found.entry.clone();
    db.call(move |st| {
        st.insert_op(NewOp {
            service: Service::Mal,
            kind: MediaKind::Anime,
            media_id: 10,
            change: Change::Set(Patch {
                status: Some(Status::Planning),
                ..Patch::default()
            }),
            base: 0,
            now_ms: 0,
            verified: false,
            entry: Some(entry),
            base_state: None,
        })
    })
    .await
    .unwrap();
    let events = worker_events(provider, &db, 1).await;
    assert!(
        matches!(
            &events[0],
            Event::Delivered {
                media_id: 10,
                state: Some(ListState {
                    status: Some(Status::Planning),
                    ..
                }),
                ..
            }
        ),
        "{events:?}"
    );
    assert_eq!(s.fake.status(10).as_deref(), Some("plan_to_watch"));
    assert_eq!(
        requests_to(&s.fake, "GET", "/v2/anime/10"),
        1,
        "looked first"
    );
    assert_eq!(s.fake.patches().len(), 1);
    let cached = db.call(|st| st.entries(Service::Mal)).await.unwrap();
    assert_eq!(cached.len(), 1, "{cached:?}");
    assert_eq!(cached[0].id, 10);
    assert_eq!(cached[0].title, "New Show");
    assert_eq!(cached[0].status, Status::Planning);
    assert_eq!(cached[0].total, Some(13));
}

/// A `+` made offline on a planned show (status and count in one change) is not sent when the show
/// was dropped on the website meanwhile: the check looks at every field the change sets, and the
/// conflict names the status.
#[tokio::test]
async fn an_offline_first_plus_does_not_undo_a_status_changed_on_the_website() {
    let s = setup().await;
    s.fake
        .add_anime(Anime::new(10, "Planned", 12).list_status("dropped"));
    let provider: Arc<dyn Provider> = Arc::new(s.logged_in());
    let db = Db::spawn(Store::open_in_memory().unwrap());
    let planned = ListState {
        status: Some(Status::Planning),
        ..ListState::default()
    };
    db.call(move |st| {
        st.insert_op(NewOp {
            service: Service::Mal,
            kind: MediaKind::Anime,
            media_id: 10,
            change: Change::Set(Patch {
                status: Some(Status::Current),
                progress: Some(1),
                start_date: Some("2026-11-25".into()),
                ..Patch::default()
            }),
            // Checked on the status: planned (5) when the change was made.
            base: 5,
            now_ms: 0,
            verified: false,
            entry: None,
            base_state: Some(planned),
        })
    })
    .await
    .unwrap();
    let events = worker_events(provider, &db, 1).await;
    match &events[0] {
        Event::Conflict { theirs, .. } => assert_eq!(theirs, "dropped"),
        other => panic!("{other:?}"),
    }
    assert!(s.fake.patches().is_empty(), "nothing overwritten");
    assert_eq!(s.fake.status(10).as_deref(), Some("dropped"));
}

/// The same when the website kept the show planned but set a count: the change sets the count too,
/// so it is held rather than sent.
#[tokio::test]
async fn an_offline_first_plus_does_not_undo_a_count_set_on_the_website() {
    let s = setup().await;
    s.fake.add_anime(
        Anime::new(10, "Planned", 12)
            .list_status("plan_to_watch")
            .watched(3),
    );
    let provider: Arc<dyn Provider> = Arc::new(s.logged_in());
    let db = Db::spawn(Store::open_in_memory().unwrap());
    let planned = ListState {
        status: Some(Status::Planning),
        ..ListState::default()
    };
    db.call(move |st| {
        st.insert_op(NewOp {
            service: Service::Mal,
            kind: MediaKind::Anime,
            media_id: 10,
            change: Change::Set(Patch {
                status: Some(Status::Current),
                progress: Some(1),
                ..Patch::default()
            }),
            base: 5,
            now_ms: 0,
            verified: false,
            entry: None,
            base_state: Some(planned),
        })
    })
    .await
    .unwrap();
    let events = worker_events(provider, &db, 1).await;
    match &events[0] {
        Event::Conflict { theirs, .. } => assert_eq!(theirs, "episode 3"),
        other => panic!("{other:?}"),
    }
    assert!(s.fake.patches().is_empty(), "nothing overwritten");
    assert_eq!(s.fake.watched(10), Some(3));
}

/// A manga's rereading flag is called "re-reading" in messages, not "re-watching" (found by this
/// test; the words once ignored the kind).
#[tokio::test]
async fn a_refused_manga_reread_is_called_rereading() {
    let s = setup().await;
    s.fake
        .add_manga(Manga::new(401, "Kiseijuu", 64, 10).chapters_read(5));
    let provider: Arc<dyn Provider> = Arc::new(s.logged_in());
    let db = Db::spawn(Store::open_in_memory().unwrap());
    db.call(|st| {
        st.enqueue_fresh(
            Service::Mal,
            MediaKind::Manga,
            401,
            Change::Set(Patch {
                repeating: Some(true),
                ..Patch::default()
            }),
            0,
            0,
        )
    })
    .await
    .unwrap();
    s.fake.fail_next(
        1,
        400,
        r#"{"message":"invalid is_rereading","error":"bad_request"}"#,
        "application/json",
    );
    let events = worker_events(provider, &db, 1).await;
    match &events[0] {
        Event::Refused { kind, what, .. } => {
            assert_eq!(*kind, MediaKind::Manga);
            assert_eq!(what, "re-reading on");
        }
        other => panic!("unexpected {other:?}"),
    }
}

/// A removal made offline (checked before it is sent) of a title MyAnimeList no longer has at all
/// counts as done, as the same removal sent directly does (found by this test: the 404 of the
/// check once read as a refusal).
#[tokio::test]
async fn an_offline_removal_of_a_title_mal_no_longer_has_is_done() {
    let s = setup().await;
    let provider: Arc<dyn Provider> = Arc::new(s.logged_in());
    let db = Db::spawn(Store::open_in_memory().unwrap());
    // Title 777 is on the cached list, but MyAnimeList has deleted it (404 on every address).
    db.call(|st| st.enqueue(Service::Mal, MediaKind::Anime, 777, Change::Remove, 1, 0))
        .await
        .unwrap();
    let events = worker_events(provider, &db, 1).await;
    assert!(
        matches!(
            events[0],
            Event::Delivered {
                media_id: 777,
                state: None,
                ..
            }
        ),
        "{events:?}"
    );
    assert!(
        db.call(|st| st.refused(Service::Mal))
            .await
            .unwrap()
            .is_empty()
    );
}
