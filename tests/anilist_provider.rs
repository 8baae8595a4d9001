//! The AniList provider, its session and the outbox worker against the stateful fake AniList
//! (`tests/support/anilist.rs`, built from AniList's docs and the recorded answers), everything
//! on 127.0.0.1. The MAL equivalent is `tests/mal_provider.rs`.
//!
//! Each test has its own fake and its own provider, so its own pace (a burst of 10 requests, then
//! one every 2 s): tests stay within the burst unless they are about the pace.

mod support;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use malt::auth::redirect::Redirect;
use malt::auth::{TokenFile, TokenSet};
use malt::config::{AnilistConfig, Config};
use malt::domain::airing::AiringState;
use malt::domain::{Change, ListEntry, ListState, MediaKind, Patch, ScoreFormat, Service, Status};
use malt::providers::anilist::{Anilist, authorize_url, finish_login};
use malt::providers::{Http, Provider, ProviderError, http_client};
use malt::store::{Db, Store};
use malt::sync::{Event, Worker, now_ms};
use serde_json::{Value, json};
use support::anilist::{
    self as fake, DEFAULT_REDIRECT_URI, DEFAULT_USER_ID, DEFAULT_USER_NAME, Entry, FakeAnilist,
    Fault, FuzzyDate, GqlRequest, ListStatus, Media, MediaType,
};
use tokio::sync::Notify;
use tokio::sync::mpsc::UnboundedReceiver;

const UID: u64 = DEFAULT_USER_ID;
const ANIME: MediaKind = MediaKind::Anime;
const MANGA: MediaKind = MediaKind::Manga;

struct Setup {
    fake: FakeAnilist,
    cfg: AnilistConfig,
    tokens: TokenFile,
    dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let fake = FakeAnilist::start().await;
    let dir = tempfile::tempdir().unwrap();
    let text = fake.config_toml(DEFAULT_REDIRECT_URI);
    let cfg = Config::parse(&dir.path().join("config.toml"), &text)
        .unwrap()
        .anilist
        .unwrap();
    let tokens = TokenFile::new(dir.path().join("anilist.json"));
    Setup {
        fake,
        cfg,
        tokens,
        dir,
    }
}

/// The `exp` of one of the fake's JWTs (whole seconds).
fn jwt_exp(token: &str) -> i64 {
    let exp = &fake::jwt_payload(token).unwrap()["exp"];
    exp.as_i64()
        .unwrap_or_else(|| exp.as_f64().unwrap().floor() as i64)
}

impl Setup {
    /// Writes `token` to the token file as `malt --login anilist` would (expiry = the JWT's).
    fn store_token(&self, token: &str) {
        self.tokens
            .save(&TokenSet {
                access_token: token.to_string(),
                refresh_token: String::new(),
                expires_at: jwt_exp(token),
            })
            .unwrap();
    }

    /// A year-long login stored, and a provider using it.
    fn logged_in(&self) -> Anilist {
        let token = self.fake.issue_token(UID);
        self.store_token(&token);
        self.provider()
    }

    fn provider(&self) -> Anilist {
        Anilist::new(&self.cfg, Http::default(), self.tokens.clone())
    }

    fn saves(&self) -> Vec<GqlRequest> {
        self.fake
            .graphql_requests()
            .into_iter()
            .filter(|r| r.root_fields.iter().any(|f| f == "SaveMediaListEntry"))
            .collect()
    }
}

fn by_id(entries: &[ListEntry], id: u64) -> &ListEntry {
    entries
        .iter()
        .find(|e| e.id == id)
        .unwrap_or_else(|| panic!("no entry {id} in {entries:?}"))
}

fn now_secs() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// The names of the arguments given to `SaveMediaListEntry` in a document.
fn save_arguments(doc: &str) -> Vec<String> {
    use graphql_parser::query::{Definition, OperationDefinition, Selection};
    let parsed = graphql_parser::parse_query::<&str>(doc).unwrap();
    let Definition::Operation(OperationDefinition::Mutation(m)) = &parsed.definitions[0] else {
        panic!("not a mutation: {doc}");
    };
    m.selection_set
        .items
        .iter()
        .find_map(|s| match s {
            Selection::Field(f) if f.name == "SaveMediaListEntry" => {
                Some(f.arguments.iter().map(|(n, _)| n.to_string()).collect())
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no SaveMediaListEntry in {doc}"))
}

/// The root fields of every request the fake received, for failure messages.
fn roots(log: &[GqlRequest]) -> Vec<String> {
    log.iter().map(|r| r.root_fields.join(",")).collect()
}

fn variable_names(r: &GqlRequest) -> Vec<String> {
    r.variables.as_object().unwrap().keys().cloned().collect()
}

/// A fake date as malt writes it (`YYYY-MM-DD`, `YYYY-MM`, `YYYY`).
fn date_text(d: FuzzyDate) -> Option<String> {
    let y = d.year?;
    Some(match (d.month, d.day) {
        (Some(m), Some(day)) => format!("{y:04}-{m:02}-{day:02}"),
        (Some(m), None) => format!("{y:04}-{m:02}"),
        _ => format!("{y:04}"),
    })
}

/// What malt should read for an entry the fake holds (a 100-point raw score read in `format`).
fn state_of(e: &Entry, format: ScoreFormat) -> ListState {
    let (status, repeating) = match e.status {
        ListStatus::Current => (Status::Current, false),
        ListStatus::Repeating => (Status::Current, true),
        ListStatus::Planning => (Status::Planning, false),
        ListStatus::Completed => (Status::Completed, false),
        ListStatus::Dropped => (Status::Dropped, false),
        ListStatus::Paused => (Status::OnHold, false),
    };
    let score = match format {
        ScoreFormat::Point100 => e.score_raw as u8,
        ScoreFormat::Point10Decimal => e.score_raw as u8,
        ScoreFormat::Point10 => fake::ScoreFormat::Point10.raw_to_score(e.score_raw) as u8,
        ScoreFormat::Point5 => fake::ScoreFormat::Point5.raw_to_score(e.score_raw) as u8,
        ScoreFormat::Point3 => fake::ScoreFormat::Point3.raw_to_score(e.score_raw) as u8,
    };
    ListState {
        status: Some(status),
        progress: e.progress,
        volumes: e.progress_volumes,
        score,
        repeating,
        start_date: date_text(e.started_at),
        finish_date: date_text(e.completed_at),
        updated_at: Some(
            jiff::Timestamp::from_second(e.updated_at)
                .unwrap()
                .to_string(),
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Fetching the lists

#[tokio::test]
async fn the_anime_list_has_every_status_once_with_totals_schedules_and_dates() {
    let s = setup().await;
    let soon = now_secs() + 3 * 24 * 3600;
    let statuses = [
        (ListStatus::Current, Status::Current, false),
        (ListStatus::Planning, Status::Planning, false),
        (ListStatus::Completed, Status::Completed, false),
        (ListStatus::Dropped, Status::Dropped, false),
        (ListStatus::Paused, Status::OnHold, false),
        (ListStatus::Repeating, Status::Current, true),
    ];
    for (i, (status, _, _)) in statuses.iter().enumerate() {
        let id = 101 + i as u64;
        s.fake
            .add_media(Media::anime(id, &format!("Show {id}"), Some(12)));
        s.fake.add_entry(
            UID,
            Entry::new(id, *status).progress(i as u32 + 1).score_raw(85),
        );
    }
    // In its status list and in a custom list.
    s.fake.add_media(
        Media::anime(201, "Airing Show", None)
            .airing(5, soon)
            .format("ONA"),
    );
    s.fake.add_entry(
        UID,
        Entry::new(201, ListStatus::Current)
            .progress(4)
            .custom_lists(&["Favourites", "Seasonal"])
            .started(FuzzyDate::ymd(2024, 1, 2))
            .completed(FuzzyDate {
                year: Some(2024),
                month: Some(3),
                day: None,
            })
            .updated_at(1_700_000_000),
    );
    // Hidden from the status lists: only in a custom list, with its own status.
    s.fake
        .add_media(Media::anime(202, "Hidden Show", Some(24)).status("NOT_YET_RELEASED"));
    s.fake.add_entry(
        UID,
        Entry::new(202, ListStatus::Dropped)
            .progress(2)
            .custom_lists(&["Secret"])
            .hidden(),
    );
    // "Completed" split by format ("Completed TV", …) is still a status list.
    s.fake.set_split_completed(UID, MediaType::Anime, true);
    // Manga stay out of the anime list.
    s.fake
        .add_media(Media::manga(900, "A Manga", Some(10), Some(2)));
    s.fake
        .add_entry(UID, Entry::new(900, ListStatus::Current).progress(3));

    let anilist = s.logged_in();
    let arrived = Mutex::new(Vec::new());
    let fetched = anilist
        .fetch_list(ANIME, &|n| arrived.lock().unwrap().push(n))
        .await
        .unwrap();
    assert_eq!(fetched.unreadable, 0);
    assert_eq!(fetched.score_format, Some(ScoreFormat::Point10Decimal));
    let entries = &fetched.entries;
    assert_eq!(entries.len(), 8, "{entries:?}");
    let ids: BTreeSet<u64> = entries.iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), 8, "each work once");
    assert_eq!(*arrived.lock().unwrap(), vec![8]);
    assert!(entries.iter().all(|e| e.kind == ANIME));

    for (i, (al, status, repeating)) in statuses.iter().enumerate() {
        let e = by_id(entries, 101 + i as u64);
        assert_eq!(
            (e.status, e.repeating, e.progress),
            (*status, *repeating, i as u32 + 1),
            "{al:?}"
        );
        assert_eq!(e.score, 85, "8.5 in POINT_10_DECIMAL is 85 tenths");
        assert_eq!(e.total, Some(12));
        assert_eq!(e.media.media_type.as_deref(), Some("tv"));
        assert_eq!(e.media.schedule, None, "finished shows carry no schedule");
        assert!(
            e.media
                .picture
                .as_deref()
                .is_some_and(|p| p.starts_with(&s.fake.base())),
            "{:?}",
            e.media.picture
        );
    }

    let airing = by_id(entries, 201);
    assert_eq!(airing.status, Status::Current);
    assert_eq!(airing.total, None, "episodes null = unknown");
    assert_eq!(airing.media.media_type.as_deref(), Some("ona"));
    let schedule = airing.media.schedule.as_deref().unwrap();
    assert_eq!(schedule.state, AiringState::Airing);
    assert_eq!(schedule.next_exact, Some((5, soon)));
    assert_eq!(schedule.episodes, None);
    assert_eq!(airing.start_date.as_deref(), Some("2024-01-02"));
    assert_eq!(airing.finish_date.as_deref(), Some("2024-03"));
    assert_eq!(airing.updated_at.as_deref(), Some("2023-11-14T22:13:20Z"));

    let hidden = by_id(entries, 202);
    assert_eq!(
        (hidden.status, hidden.progress, hidden.total),
        (Status::Dropped, 2, Some(24))
    );
    assert_eq!(
        hidden.media.schedule.as_deref().map(|s| s.state),
        Some(AiringState::NotYetAired)
    );

    // The fake really sent 201 three times (status list and two custom lists) and 202 once.
    let log = s.fake.graphql_requests();
    assert_eq!(
        log.len(),
        2,
        "the account, then the whole list in one request"
    );
    assert_eq!(log[0].root_fields, ["Viewer"]);
    assert_eq!(log[1].root_fields, ["MediaListCollection"]);
    assert_eq!(log[1].var("userId"), Some(&json!(UID)));
    assert_eq!(log[1].var("type"), Some(&json!("ANIME")));
    assert!(log[1].response.contains("\"name\":\"Completed TV\""));
    assert_eq!(log[1].response.matches("\"mediaId\":201,").count(), 3);
    assert_eq!(log[1].response.matches("\"mediaId\":202,").count(), 1);
    assert!(
        !log[1].response.contains("\"mediaId\":900,"),
        "no manga in the anime list"
    );
}

#[tokio::test]
async fn the_manga_list_has_chapters_volumes_and_rereading() {
    let s = setup().await;
    s.fake
        .add_media(Media::manga(30, "Berserk", None, None).status("RELEASING"));
    s.fake
        .add_media(Media::manga(31, "Monster", Some(162), Some(18)).format("MANGA"));
    s.fake
        .add_media(Media::manga(32, "Spice and Wolf", Some(100), Some(23)).format("NOVEL"));
    s.fake.add_entry(
        UID,
        Entry::new(30, ListStatus::Current)
            .progress(370)
            .volumes(41),
    );
    s.fake.add_entry(
        UID,
        Entry::new(31, ListStatus::Repeating)
            .progress(20)
            .volumes(2)
            .score_raw(90)
            .repeat(1),
    );
    s.fake.add_entry(
        UID,
        Entry::new(32, ListStatus::Paused)
            .progress(5)
            .custom_lists(&["Novels"]),
    );
    s.fake.add_media(Media::anime(1, "An Anime", Some(12)));
    s.fake.add_entry(UID, Entry::new(1, ListStatus::Current));
    let anilist = s.logged_in();
    let fetched = anilist.fetch_list(MANGA, &|_| {}).await.unwrap();
    assert_eq!(fetched.unreadable, 0);
    let entries = &fetched.entries;
    assert_eq!(entries.len(), 3, "{entries:?}");
    assert!(entries.iter().all(|e| e.kind == MANGA));

    let ongoing = by_id(entries, 30);
    assert_eq!(
        (ongoing.status, ongoing.progress, ongoing.volumes),
        (Status::Current, 370, 41)
    );
    assert_eq!((ongoing.total, ongoing.total_volumes), (None, None));
    assert_eq!(
        ongoing.media.schedule, None,
        "manga have no airing schedule"
    );

    let reread = by_id(entries, 31);
    assert_eq!(
        (reread.status, reread.repeating, reread.score),
        (Status::Current, true, 90)
    );
    assert_eq!((reread.total, reread.total_volumes), (Some(162), Some(18)));
    assert_eq!((reread.progress, reread.volumes), (20, 2));

    let novel = by_id(entries, 32);
    assert_eq!(novel.status, Status::OnHold);
    assert_eq!(novel.media.media_type.as_deref(), Some("novel"));

    let log = s.fake.graphql_requests();
    assert_eq!(log[1].var("type"), Some(&json!("MANGA")));
}

#[tokio::test]
async fn scores_are_read_and_written_in_each_of_the_five_formats() {
    let s = setup().await;
    s.fake.add_media(Media::anime(1, "Scored", Some(12)));
    s.fake
        .add_entry(UID, Entry::new(1, ListStatus::Completed).score_raw(85));
    let token = s.fake.issue_token(UID);
    s.store_token(&token);
    // (format, what raw 85 reads as, a score to write, the raw score it becomes)
    let cases = [
        (
            fake::ScoreFormat::Point100,
            ScoreFormat::Point100,
            85,
            70,
            70,
        ),
        (
            fake::ScoreFormat::Point10Decimal,
            ScoreFormat::Point10Decimal,
            85,
            72,
            72,
        ),
        (fake::ScoreFormat::Point10, ScoreFormat::Point10, 9, 7, 70),
        (fake::ScoreFormat::Point5, ScoreFormat::Point5, 4, 4, 80),
        (fake::ScoreFormat::Point3, ScoreFormat::Point3, 3, 2, 60),
    ];
    for (theirs, ours, read, write, raw) in cases {
        s.fake.set_score_format(UID, theirs);
        s.fake.website_edit(UID, 1, |e| e.score_raw = 85);
        // A provider of its own for each format: its own burst.
        let anilist = s.provider();
        let fetched = anilist.fetch_list(ANIME, &|_| {}).await.unwrap();
        assert_eq!(fetched.score_format, Some(ours), "{theirs:?}");
        assert_eq!(fetched.entries[0].score, read, "raw 85 read in {theirs:?}");

        let ack = anilist
            .apply(
                ANIME,
                1,
                &Change::Set(Patch {
                    score: Some(write),
                    ..Patch::default()
                }),
            )
            .await
            .unwrap();
        let held = s.fake.entry(UID, 1).unwrap();
        assert_eq!(held.score_raw, raw, "{write} written in {theirs:?}");
        assert_eq!(ack.state.unwrap().score, write, "{theirs:?}");
        let save = s.saves().pop().unwrap();
        assert_eq!(save_arguments(&save.query), ["mediaId", "score"]);
        assert_eq!(save.var("format"), Some(&json!(theirs.name())));
    }
    // POINT_10_DECIMAL sends AniList's own number: 7.2, not 72.
    let sent: Vec<Value> = s
        .saves()
        .iter()
        .map(|r| r.var("score").cloned().unwrap())
        .collect();
    assert_eq!(sent[1], json!(7.2));
    assert_eq!(sent[0].as_f64(), Some(70.0));
    assert_eq!(sent[2].as_f64(), Some(7.0));
}

#[tokio::test]
async fn a_list_of_two_thousand_entries_arrives_whole() {
    let s = setup().await;
    let statuses = ListStatus::ALL;
    for id in 1..=2000u64 {
        s.fake.add_media(Media::anime(
            id,
            &format!("Title {id:04}"),
            Some((id % 30) as u32 + 1),
        ));
        let mut entry = Entry::new(id, statuses[id as usize % statuses.len()])
            .progress((id % 7) as u32)
            .score_raw((id % 101) as u32);
        if id % 10 == 0 {
            entry = entry.custom_lists(&["Picked"]);
        }
        s.fake.add_entry(UID, entry);
    }
    let anilist = s.logged_in();
    let arrived = Mutex::new(Vec::new());
    let fetched = anilist
        .fetch_list(ANIME, &|n| arrived.lock().unwrap().push(n))
        .await
        .unwrap();
    assert_eq!(fetched.unreadable, 0);
    assert_eq!(fetched.entries.len(), 2000);
    let ids: BTreeSet<u64> = fetched.entries.iter().map(|e| e.id).collect();
    assert_eq!(ids, (1..=2000).collect::<BTreeSet<u64>>());
    assert_eq!(arrived.lock().unwrap().last(), Some(&2000));
    let held = s.fake.entries(UID);
    for e in &fetched.entries {
        let theirs = held.iter().find(|h| h.media_id == e.id).unwrap();
        assert_eq!(e.progress, theirs.progress);
        assert_eq!(u32::from(e.score), theirs.score_raw, "{}", e.id);
    }
    assert_eq!(s.fake.count_root("MediaListCollection"), 1);
}

/// AniList serves at most 11,000 entries of a `MediaListCollection` asked for without `chunk`
/// (the most recently updated ones); the fake's cap is lowered to 100 here.
#[tokio::test]
async fn a_list_beyond_anilists_collection_cap_arrives_whole() {
    let s = setup().await;
    s.fake.set_collection_cap(100);
    for id in 1..=150u64 {
        s.fake
            .add_media(Media::anime(id, &format!("Title {id:03}"), Some(12)));
        s.fake.add_entry(
            UID,
            Entry::new(id, ListStatus::Completed).updated_at(1_600_000_000 + id as i64),
        );
    }
    // The provider is told the (lowered) cap, as it knows AniList's.
    let anilist = s.logged_in().with_collection_cap(100);
    let arrived = std::sync::Mutex::new(Vec::new());
    let fetched = anilist
        .fetch_list(ANIME, &|n| arrived.lock().unwrap().push(n))
        .await
        .unwrap();
    assert!(
        fetched.entries.len() == 150 || fetched.unreadable > 0,
        "{} of 150 entries, and nothing says some are missing: the cache would drop the oldest 50",
        fetched.entries.len()
    );
    let mut ids: Vec<u64> = fetched.entries.iter().map(|e| e.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids, (1..=150).collect::<Vec<_>>(), "each work once");
    assert_eq!(fetched.unreadable, 0);
    // One capped answer, then the chunks (500 each: one).
    assert_eq!(s.fake.count_root("MediaListCollection"), 2);
    assert_eq!(arrived.lock().unwrap().last(), Some(&150));
    // Below the cap, one answer is the whole list.
    s.fake.clear_logs();
    let small = s.logged_in().with_collection_cap(1000);
    assert_eq!(
        small
            .fetch_list(ANIME, &|_| {})
            .await
            .unwrap()
            .entries
            .len(),
        100
    );
    assert_eq!(s.fake.count_root("MediaListCollection"), 1);
}

// ---------------------------------------------------------------------------------------------
// Changes

#[tokio::test]
async fn a_plus_is_exactly_one_save_with_the_media_id_and_progress_only() {
    let s = setup().await;
    s.fake
        .add_media(Media::anime(21, "One Piece", None).airing(1100, now_secs() + 3600));
    let entry_id = s.fake.add_entry(
        UID,
        Entry::new(21, ListStatus::Current)
            .progress(5)
            .score_raw(80)
            .started(FuzzyDate::ymd(2024, 1, 2))
            .notes("keep me"),
    );
    let anilist = s.logged_in();
    anilist.fetch_list(ANIME, &|_| {}).await.unwrap();
    s.fake.clear_logs();
    let before = s.fake.entry(UID, 21).unwrap();

    let ack = anilist
        .apply(ANIME, 21, &Change::progress(6))
        .await
        .unwrap();

    let log = s.fake.graphql_requests();
    assert_eq!(log.len(), 1, "one request: {:?}", roots(&log));
    let r = &log[0];
    assert_eq!(r.status, 200, "{}", r.response);
    assert_eq!(r.operation, "mutation");
    assert_eq!(r.root_fields, ["SaveMediaListEntry"]);
    assert_eq!(save_arguments(&r.query), ["mediaId", "progress"]);
    assert_eq!(r.var("mediaId"), Some(&json!(21)));
    assert_eq!(r.var("progress"), Some(&json!(6)));
    // `format` only says how the answer's score is read (`score(format: $format)`).
    assert_eq!(variable_names(r), ["format", "mediaId", "progress"]);
    assert!(!r.query.contains("$status") && !r.query.contains("$score"));

    let after = s.fake.entry(UID, 21).unwrap();
    assert_eq!(after.id, entry_id);
    assert_eq!(
        after,
        Entry {
            progress: 6,
            updated_at: after.updated_at,
            ..before
        },
        "only the progress changed"
    );
    assert_eq!(
        ack.state,
        Some(state_of(&after, ScoreFormat::Point10Decimal)),
        "the Ack holds what AniList holds"
    );

    // Without a fetch first, the account is asked once, then one request per change.
    let other = s.provider();
    s.fake.clear_logs();
    other.apply(ANIME, 21, &Change::progress(7)).await.unwrap();
    other.apply(ANIME, 21, &Change::progress(8)).await.unwrap();
    assert_eq!(
        roots(&s.fake.graphql_requests()),
        ["Viewer", "SaveMediaListEntry", "SaveMediaListEntry"]
    );
    assert_eq!(s.fake.entry(UID, 21).unwrap().progress, 8);
}

#[tokio::test]
async fn status_dates_completion_rewatching_score_and_volumes_are_saved_as_asked() {
    let s = setup().await;
    s.fake.add_media(Media::anime(1, "Planned", Some(12)));
    s.fake.add_media(Media::anime(2, "Watching", Some(24)));
    s.fake.add_media(Media::anime(3, "Done", Some(13)));
    s.fake
        .add_media(Media::manga(4, "A Manga", Some(100), Some(10)));
    s.fake.add_entry(UID, Entry::new(1, ListStatus::Planning));
    s.fake
        .add_entry(UID, Entry::new(2, ListStatus::Current).progress(20));
    s.fake
        .add_entry(UID, Entry::new(3, ListStatus::Completed).progress(13));
    s.fake
        .add_entry(UID, Entry::new(4, ListStatus::Current).progress(10));
    let anilist = s.logged_in();
    let format = ScoreFormat::Point10Decimal;

    // PLANNING → CURRENT with a start date.
    let ack = anilist
        .apply(
            ANIME,
            1,
            &Change::Set(Patch {
                status: Some(Status::Current),
                progress: Some(1),
                start_date: Some("2024-05-06".into()),
                ..Patch::default()
            }),
        )
        .await
        .unwrap();
    let held = s.fake.entry(UID, 1).unwrap();
    assert_eq!(held.status, ListStatus::Current);
    assert_eq!(held.progress, 1);
    assert_eq!(held.started_at, FuzzyDate::ymd(2024, 5, 6));
    assert_eq!(ack.state, Some(state_of(&held, format)));
    let save = s.saves().pop().unwrap();
    assert_eq!(
        save_arguments(&save.query),
        ["mediaId", "status", "progress", "startedAt"]
    );
    assert_eq!(save.var("status"), Some(&json!("CURRENT")));
    assert_eq!(
        save.var("startedAt"),
        Some(&json!({"year": 2024, "month": 5, "day": 6}))
    );

    // Completed: full progress and a finish date.
    let ack = anilist
        .apply(
            ANIME,
            2,
            &Change::Set(Patch {
                status: Some(Status::Completed),
                progress: Some(24),
                finish_date: Some("2024-06-07".into()),
                ..Patch::default()
            }),
        )
        .await
        .unwrap();
    let held = s.fake.entry(UID, 2).unwrap();
    assert_eq!(
        (held.status, held.progress, held.completed_at),
        (ListStatus::Completed, 24, FuzzyDate::ymd(2024, 6, 7))
    );
    let state = ack.state.unwrap();
    assert_eq!(state, state_of(&held, format));
    assert_eq!(state.status, Some(Status::Completed));
    assert_eq!(state.finish_date.as_deref(), Some("2024-06-07"));

    // Re-watching is AniList's REPEATING; turning it off is CURRENT.
    let ack = anilist
        .apply(
            ANIME,
            3,
            &Change::Set(Patch {
                repeating: Some(true),
                progress: Some(0),
                ..Patch::default()
            }),
        )
        .await
        .unwrap();
    assert_eq!(
        s.saves().pop().unwrap().var("status"),
        Some(&json!("REPEATING"))
    );
    let held = s.fake.entry(UID, 3).unwrap();
    assert_eq!((held.status, held.progress), (ListStatus::Repeating, 0));
    let state = ack.state.unwrap();
    assert_eq!(
        (state.status, state.repeating),
        (Some(Status::Current), true)
    );
    anilist
        .apply(
            ANIME,
            3,
            &Change::Set(Patch {
                repeating: Some(false),
                ..Patch::default()
            }),
        )
        .await
        .unwrap();
    assert_eq!(s.fake.entry(UID, 3).unwrap().status, ListStatus::Current);

    // A score of 8.5 is sent as 8.5 and read back as 85 tenths.
    let ack = anilist
        .apply(
            ANIME,
            2,
            &Change::Set(Patch {
                score: Some(85),
                ..Patch::default()
            }),
        )
        .await
        .unwrap();
    assert_eq!(s.saves().pop().unwrap().var("score"), Some(&json!(8.5)));
    assert_eq!(s.fake.entry(UID, 2).unwrap().score_raw, 85);
    assert_eq!(ack.state.unwrap().score, 85);

    // Manga volumes are progressVolumes.
    let ack = anilist
        .apply(
            MANGA,
            4,
            &Change::Set(Patch {
                progress: Some(12),
                volumes: Some(3),
                ..Patch::default()
            }),
        )
        .await
        .unwrap();
    let save = s.saves().pop().unwrap();
    assert_eq!(
        save_arguments(&save.query),
        ["mediaId", "progress", "progressVolumes"]
    );
    let held = s.fake.entry(UID, 4).unwrap();
    assert_eq!((held.progress, held.progress_volumes), (12, 3));
    assert_eq!(ack.state, Some(state_of(&held, format)));
    assert!(
        s.fake.graphql_requests().iter().all(|r| r.status == 200),
        "every document is valid for AniList"
    );
}

#[tokio::test]
async fn adding_removing_and_looking_up_entries() {
    let s = setup().await;
    s.fake.add_media(Media::anime(77, "New Find", Some(12)));
    s.fake.add_media(Media::anime(78, "Staying", Some(12)));
    s.fake.add_media(Media::anime(79, "Going", Some(12)));
    let staying = s
        .fake
        .add_entry(UID, Entry::new(78, ListStatus::Current).progress(3));
    let going = s
        .fake
        .add_entry(UID, Entry::new(79, ListStatus::Dropped).progress(1));
    let anilist = s.logged_in();

    // Not on the list: the save puts it there under a new entry id.
    assert_eq!(anilist.current(ANIME, 77).await, Ok(None));
    let ack = anilist
        .apply(
            ANIME,
            77,
            &Change::Set(Patch {
                status: Some(Status::Planning),
                ..Patch::default()
            }),
        )
        .await
        .unwrap();
    let added = s.fake.entry(UID, 77).expect("added to the list");
    assert_ne!(added.id, 77, "AniList's entry id is not the media id");
    assert!(added.id != staying && added.id != going);
    assert_eq!(added.status, ListStatus::Planning);
    assert_eq!(ack.state.as_ref().unwrap().status, Some(Status::Planning));
    let current = anilist.current(ANIME, 77).await.unwrap();
    assert_eq!(current, ack.state);
    assert_eq!(current, Some(state_of(&added, ScoreFormat::Point10Decimal)));

    // Remove: the entry id is looked up, then exactly that entry is deleted.
    s.fake.clear_logs();
    let ack = anilist.apply(ANIME, 79, &Change::Remove).await.unwrap();
    assert_eq!(ack.state, None);
    let log = s.fake.graphql_requests();
    assert_eq!(log.len(), 2, "{:?}", roots(&log));
    assert_eq!(log[0].root_fields, ["MediaList"]);
    assert_eq!(log[0].var("mediaId"), Some(&json!(79)));
    assert_eq!(log[0].var("userId"), Some(&json!(UID)));
    assert_eq!(log[1].root_fields, ["DeleteMediaListEntry"]);
    assert_eq!(log[1].var("id"), Some(&json!(going)));
    assert_eq!(log[1].status, 200);
    let left: BTreeSet<u64> = s.fake.entries(UID).iter().map(|e| e.media_id).collect();
    assert_eq!(left, BTreeSet::from([77, 78]));
    assert_eq!(s.fake.entry_by_id(staying).unwrap().progress, 3);

    // Already gone: done, without a deletion.
    s.fake.clear_logs();
    let ack = anilist.apply(ANIME, 79, &Change::Remove).await.unwrap();
    assert_eq!(ack.state, None);
    assert_eq!(s.fake.count_root("DeleteMediaListEntry"), 0);
    assert_eq!(s.fake.graphql_requests().len(), 1);
    assert_eq!(anilist.current(ANIME, 79).await, Ok(None));

    // A work AniList does not have is refused for good, in AniList's words.
    let refused = anilist
        .apply(ANIME, 999_999, &Change::progress(1))
        .await
        .unwrap_err();
    assert_eq!(
        refused,
        ProviderError::Rejected(
            "AniList refused the change: The selected media id is invalid.".into()
        )
    );
    assert!(refused.is_permanent());
    assert_eq!(s.fake.entries(UID).len(), 2);
}

// ---------------------------------------------------------------------------------------------
// Search and details

fn catalogue(fake: &FakeAnilist) {
    fake.add_media(
        Media::anime(20, "Naruto", Some(220))
            .start_date(FuzzyDate::ymd(2002, 10, 3))
            .average_score(79)
            .popularity(500),
    );
    fake.add_media(
        Media::anime(1735, "Naruto: Shippuuden", Some(500))
            .english("Naruto Shippuden")
            .start_date(FuzzyDate::ymd(2007, 2, 15))
            .mean_score(82)
            .popularity(400),
    );
    fake.add_media(
        Media::anime(666, "Naruto Adult Parody", Some(2))
            .format("OVA")
            .adult(true)
            .popularity(1),
    );
    fake.add_media(Media::manga(30011, "Naruto", Some(700), Some(72)));
    fake.add_media(
        Media::anime(
            5114,
            "Hagane no Renkinjutsushi: FULLMETAL ALCHEMIST",
            Some(64),
        )
        .english("Fullmetal Alchemist: Brotherhood")
        .description("Two brothers<br><br>\n<i>Edward</i> &amp; Alphonse &quot;Al&quot;")
        .genres(&["Action", "Adventure", "Drama"])
        .average_score(85)
        .start_date(FuzzyDate::ymd(2009, 4, 5))
        .end_date(FuzzyDate::ymd(2010, 7, 4)),
    );
}

fn check_search_and_details(found: &[malt::providers::Found], details: &malt::providers::Details) {
    let ids: Vec<u64> = found.iter().map(|f| f.entry.id).collect();
    assert!(ids.contains(&20) && ids.contains(&1735), "{ids:?}");
    assert!(ids.contains(&666), "adult titles are included: {ids:?}");
    assert!(!ids.contains(&30011), "no manga in an anime search");
    let naruto = found.iter().find(|f| f.entry.id == 20).unwrap();
    assert_eq!(naruto.entry.status, Status::Planning);
    assert_eq!(naruto.entry.kind, ANIME);
    assert_eq!(naruto.entry.title, "Naruto");
    assert_eq!(naruto.entry.total, Some(220));
    assert_eq!(naruto.year, Some(2002));
    assert_eq!(naruto.mean.as_deref(), Some("79%"));
    let shippuden = found.iter().find(|f| f.entry.id == 1735).unwrap();
    assert_eq!(shippuden.mean.as_deref(), Some("82%"));

    assert_eq!(details.id, 5114);
    assert_eq!(
        details.synopsis.as_deref(),
        Some("Two brothers\n\nEdward & Alphonse \"Al\"")
    );
    assert_eq!(
        details.alt_title.as_deref(),
        Some("Fullmetal Alchemist: Brotherhood")
    );
    assert_eq!(details.genres, ["Action", "Adventure", "Drama"]);
    assert_eq!(details.mean.as_deref(), Some("85%"));
    assert_eq!(details.total, Some(64));
    assert_eq!(details.state.as_deref(), Some("finished"));
    assert_eq!(details.start_date.as_deref(), Some("2009-04-05"));
    assert_eq!(details.end_date.as_deref(), Some("2010-07-04"));
}

#[tokio::test]
async fn search_and_details_read_what_the_user_chooses_by() {
    let s = setup().await;
    catalogue(&s.fake);
    let airs = now_secs() + 7200;
    s.fake
        .add_media(Media::anime(21, "One Piece", None).airing(1100, airs));
    let anilist = s.logged_in();
    let found = anilist.search(ANIME, "  naruto ").await.unwrap();
    let details = anilist.details(ANIME, 5114).await.unwrap();
    check_search_and_details(&found, &details);

    let log = s.fake.graphql_requests();
    assert_eq!(log[0].root_fields, ["Page"]);
    assert_eq!(log[0].var("search"), Some(&json!("naruto")));
    assert_eq!(log[0].var("type"), Some(&json!("ANIME")));
    assert!(
        !log[0].query.contains("isAdult") && log[0].var("isAdult").is_none(),
        "adult titles are not filtered out"
    );
    assert_eq!(log[1].root_fields, ["Media"]);

    let airing = anilist.details(ANIME, 21).await.unwrap();
    assert_eq!(airing.state.as_deref(), Some("currently airing"));
    assert_eq!(airing.total, None);
    let schedule = airing.schedule.unwrap();
    assert_eq!(schedule.state, AiringState::Airing);
    assert_eq!(schedule.next_exact, Some((1100, airs)));

    let manga = anilist.search(MANGA, "naruto").await.unwrap();
    assert_eq!(
        manga.iter().map(|f| f.entry.id).collect::<Vec<_>>(),
        [30011]
    );
    assert_eq!(manga[0].entry.total_volumes, Some(72));
    assert_eq!(anilist.search(ANIME, "zzzz nothing").await, Ok(Vec::new()));
    assert!(
        matches!(
            anilist.details(ANIME, 424_242).await,
            Err(ProviderError::Rejected(_))
        ),
        "a work AniList does not have"
    );
}

#[tokio::test]
async fn search_and_details_work_without_a_login_and_with_a_refused_token() {
    let s = setup().await;
    catalogue(&s.fake);

    // Nobody logged in.
    let anonymous = s.provider();
    let found = anonymous.search(ANIME, "naruto").await.unwrap();
    let details = anonymous.details(ANIME, 5114).await.unwrap();
    check_search_and_details(&found, &details);
    assert!(s.fake.graphql_requests().iter().all(|r| !r.has_auth()));

    // A token AniList refuses: asked again without it, and not sent again after.
    let anilist = s.logged_in();
    s.fake.revoke_tokens();
    s.fake.clear_logs();
    let found = anilist.search(ANIME, "naruto").await.unwrap();
    let details = anilist.details(ANIME, 5114).await.unwrap();
    check_search_and_details(&found, &details);
    let log = s.fake.graphql_requests();
    assert_eq!(log.len(), 3, "{:?}", roots(&log));
    assert!(log[0].has_auth() && log[0].status == 400);
    assert!(log[0].response.contains("Invalid token"));
    assert!(!log[1].has_auth() && log[1].status == 200);
    assert!(!log[2].has_auth() && log[2].status == 200);
    assert_eq!(
        anilist.fetch_list(ANIME, &|_| {}).await,
        Err(ProviderError::SessionExpired)
    );
}

// ---------------------------------------------------------------------------------------------
// The session

#[tokio::test]
async fn an_expired_login_is_session_expired_everywhere_but_public_data() {
    let s = setup().await;
    catalogue(&s.fake);
    s.fake.add_media(Media::anime(1, "Listed", Some(12)));
    s.fake
        .add_entry(UID, Entry::new(1, ListStatus::Current).progress(2));
    let expired = s.fake.issue_expired_token(UID);
    s.store_token(&expired);
    let anilist = s.provider();

    let errors = [
        anilist.fetch_list(ANIME, &|_| {}).await.unwrap_err(),
        anilist.fetch_list(MANGA, &|_| {}).await.unwrap_err(),
        anilist
            .apply(ANIME, 1, &Change::progress(3))
            .await
            .unwrap_err(),
        anilist.apply(ANIME, 1, &Change::Remove).await.unwrap_err(),
        anilist.current(ANIME, 1).await.unwrap_err(),
        anilist.keep_fresh().await.unwrap_err(),
    ];
    for e in &errors {
        assert_eq!(*e, ProviderError::SessionExpired);
        assert!(e.needs_login() && !e.is_permanent());
        let text = e.to_string();
        assert!(text.contains("`malt --login`"), "{text}");
        // What the screen shows for AniList.
        let shown = text.replace(
            "`malt --login`",
            &format!("`{}`", Service::Anilist.login_command()),
        );
        assert!(shown.contains("`malt --login anilist`"), "{shown}");
        assert!(!text.contains(&expired) && !format!("{e:?}").contains(&expired));
    }
    assert_eq!(
        anilist.session_warning(),
        None,
        "expired: nothing to warn of"
    );
    assert!(
        s.fake.graphql_requests().is_empty(),
        "an expired token is not sent"
    );
    assert_eq!(s.fake.entry(UID, 1).unwrap().progress, 2);

    let found = anilist.search(ANIME, "naruto").await.unwrap();
    let details = anilist.details(ANIME, 5114).await.unwrap();
    check_search_and_details(&found, &details);
    assert!(s.fake.graphql_requests().iter().all(|r| !r.has_auth()));
}

#[tokio::test]
async fn a_token_revoked_mid_run_is_session_expired_until_a_new_login_is_written() {
    let s = setup().await;
    catalogue(&s.fake);
    s.fake.add_media(Media::anime(1, "Listed", Some(12)));
    s.fake
        .add_entry(UID, Entry::new(1, ListStatus::Current).progress(2));
    let anilist = s.logged_in();
    assert_eq!(
        anilist
            .fetch_list(ANIME, &|_| {})
            .await
            .unwrap()
            .entries
            .len(),
        1
    );

    s.fake.revoke_tokens();
    assert_eq!(
        anilist.apply(ANIME, 1, &Change::progress(3)).await,
        Err(ProviderError::SessionExpired)
    );
    let last = s.fake.graphql_requests().pop().unwrap();
    assert_eq!(last.status, 400, "AniList's answer to a revoked token");
    assert!(last.response.contains("\"message\":\"Invalid token\""));
    assert_eq!(s.fake.entry(UID, 1).unwrap().progress, 2);
    let sent = s.fake.graphql_requests().len();
    assert_eq!(
        anilist.current(ANIME, 1).await,
        Err(ProviderError::SessionExpired)
    );
    assert_eq!(
        anilist.keep_fresh().await,
        Err(ProviderError::SessionExpired)
    );
    assert_eq!(
        s.fake.graphql_requests().len(),
        sent,
        "a refused token is not sent again"
    );

    // A new login from another terminal: keep_fresh takes it up, without a restart.
    let second = s.fake.issue_token(UID);
    s.store_token(&second);
    assert_eq!(
        anilist.keep_fresh().await,
        Ok(Some(Duration::from_secs(6 * 3600)))
    );
    let ack = anilist.apply(ANIME, 1, &Change::progress(3)).await.unwrap();
    assert_eq!(ack.state.unwrap().progress, 3);
    let last = s.fake.graphql_requests().pop().unwrap();
    assert_eq!(
        last.authorization.as_deref(),
        Some(format!("Bearer {second}").as_str())
    );

    // Refused again, and a new login written: the next call takes it up by itself.
    s.fake.revoke_tokens();
    assert_eq!(
        anilist.apply(ANIME, 1, &Change::progress(4)).await,
        Err(ProviderError::SessionExpired)
    );
    let third = s.fake.issue_token(UID);
    s.store_token(&third);
    let ack = anilist.apply(ANIME, 1, &Change::progress(4)).await.unwrap();
    assert_eq!(ack.state.unwrap().progress, 4);
    assert_eq!(s.fake.entry(UID, 1).unwrap().progress, 4);
    let last = s.fake.graphql_requests().pop().unwrap();
    assert_eq!(
        last.authorization.as_deref(),
        Some(format!("Bearer {third}").as_str())
    );
}

#[tokio::test]
async fn keep_fresh_and_the_warning_before_the_login_ends() {
    let s = setup().await;
    let anilist = s.provider();
    assert_eq!(anilist.keep_fresh().await, Err(ProviderError::NotLoggedIn));
    assert_eq!(anilist.session_warning(), None);

    // A year-long login: looked at again in 6 hours, no warning.
    let year = s.fake.issue_token(UID);
    s.store_token(&year);
    assert_eq!(
        anilist.keep_fresh().await,
        Ok(Some(Duration::from_secs(6 * 3600)))
    );
    assert_eq!(anilist.session_warning(), None);

    // A damaged token file is reported (and set aside); the login held goes on working.
    std::fs::write(s.tokens.path(), b"{ not json").unwrap();
    match anilist.keep_fresh().await {
        Err(ProviderError::LoginDamaged(m)) => {
            assert!(m.contains("`malt --login`"), "{m}");
            assert!(!m.contains(&year));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        anilist.keep_fresh().await,
        Ok(Some(Duration::from_secs(6 * 3600)))
    );

    // A login that ends in 5 days: warned about, looked at hourly.
    let other = s.provider();
    let soon = s
        .fake
        .issue_token_expiring(UID, now_secs() + 5 * 24 * 3600 + 600);
    s.store_token(&soon);
    let wait = other.keep_fresh().await.unwrap().unwrap();
    assert!(wait <= Duration::from_secs(3600), "{wait:?}");
    let warning = other.session_warning().unwrap();
    assert!(warning.starts_with("AniList login ends in "), "{warning}");
    assert!(
        warning.contains(" 5 days") || warning.contains(" 4 days"),
        "{warning}"
    );
    assert!(warning.contains("`malt --login anilist`"), "{warning}");
    assert!(!warning.contains(&soon));
    // It still works.
    s.fake.add_media(Media::anime(1, "A", Some(1)));
    assert!(other.fetch_list(ANIME, &|_| {}).await.is_ok());

    // A new login made elsewhere ends the warning.
    let renewed = s.fake.issue_token(UID);
    s.store_token(&renewed);
    assert_eq!(
        other.keep_fresh().await,
        Ok(Some(Duration::from_secs(6 * 3600)))
    );
    assert_eq!(other.session_warning(), None);
    other.fetch_list(ANIME, &|_| {}).await.unwrap();
    let last = s.fake.graphql_requests().pop().unwrap();
    assert_eq!(
        last.authorization.as_deref(),
        Some(format!("Bearer {renewed}").as_str())
    );
}

// ---------------------------------------------------------------------------------------------
// A good client

#[tokio::test]
async fn every_request_is_a_json_post_with_the_bearer_token() {
    let s = setup().await;
    catalogue(&s.fake);
    s.fake
        .add_entry(UID, Entry::new(20, ListStatus::Current).progress(1));
    let anilist = s.logged_in();
    let token = s.tokens.load().unwrap().unwrap().access_token;
    anilist.fetch_list(ANIME, &|_| {}).await.unwrap();
    anilist
        .apply(ANIME, 20, &Change::progress(2))
        .await
        .unwrap();
    anilist.current(ANIME, 20).await.unwrap();
    anilist.search(ANIME, "naruto").await.unwrap();
    anilist.details(ANIME, 20).await.unwrap();
    anilist.apply(ANIME, 20, &Change::Remove).await.unwrap();
    let log = s.fake.graphql_requests();
    assert_eq!(
        roots(&log),
        [
            "Viewer",
            "MediaListCollection",
            "SaveMediaListEntry",
            "MediaList",
            "Page",
            "Media",
            "MediaList",
            "DeleteMediaListEntry"
        ]
    );
    let bearer = format!("Bearer {token}");
    for r in &log {
        assert_eq!(r.authorization.as_deref(), Some(bearer.as_str()));
        // The fake answers 400 "Must provide query string." to anything but application/json.
        assert_eq!(r.status, 200, "{:?}: {}", r.root_fields, r.response);
    }
    let http = s.fake.requests();
    assert_eq!(http.len(), 8);
    assert!(http.iter().all(|r| r.method == "POST" && r.path == "/"));
}

#[tokio::test]
async fn a_429_is_throttled_with_the_wait_and_the_next_request_waits_it_out() {
    let s = setup().await;
    s.fake.add_media(Media::anime(1, "A", Some(12)));
    let anilist = s.logged_in();
    let token = s.tokens.load().unwrap().unwrap().access_token;
    s.fake
        .fail_next(1, Fault::TooManyRequests { retry_after: 1 });
    let e = anilist.details(ANIME, 1).await.unwrap_err();
    match &e {
        ProviderError::Throttled { wait, message } => {
            assert_eq!(*wait, Some(Duration::from_secs(1)));
            assert!(message.contains("429"), "{message}");
            assert!(!message.contains(&token));
        }
        other => panic!("{other:?}"),
    }
    assert!(!e.is_permanent());
    assert_eq!(
        malt::sync::backoff(1, &e),
        Duration::from_secs(1),
        "the outbox waits as asked"
    );
    let start = Instant::now();
    anilist.details(ANIME, 1).await.unwrap();
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");

    // X-RateLimit-Remaining: 0 pauses until X-RateLimit-Reset.
    let reset = now_secs() + 2;
    s.fake.fail_next(
        1,
        Fault::Raw {
            status: 200,
            content_type: "application/json".into(),
            body: r#"{"data":{"Media":{"id":1,"title":{"romaji":"A"}}}}"#.into(),
            headers: vec![
                ("x-ratelimit-limit".into(), "90".into()),
                ("x-ratelimit-remaining".into(), "0".into()),
                ("x-ratelimit-reset".into(), reset.to_string()),
            ],
        },
    );
    assert_eq!(anilist.details(ANIME, 1).await.unwrap().title, "A");
    let start = Instant::now();
    anilist.details(ANIME, 1).await.unwrap();
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
    assert!(waited < Duration::from_secs(4), "{waited:?}");
    assert!(
        s.fake
            .graphql_requests()
            .iter()
            .skip(1)
            .all(|r| r.status == 200)
    );
}

#[tokio::test]
async fn in_degraded_mode_requests_beyond_the_burst_go_one_every_two_seconds() {
    let s = setup().await;
    s.fake.set_degraded(true);
    s.fake.add_media(Media::anime(1, "A", Some(12)));
    let anilist = s.logged_in();
    let start = Instant::now();
    let mut done = Vec::new();
    for _ in 0..12 {
        anilist.details(ANIME, 1).await.unwrap();
        done.push(start.elapsed());
    }
    assert!(done[9] < Duration::from_secs(1), "the burst: {done:?}");
    assert!(
        done[10] - done[9] >= Duration::from_millis(1500),
        "{done:?}"
    );
    assert!(
        done[11] - done[10] >= Duration::from_millis(1900),
        "{done:?}"
    );
    assert!(done[11] < Duration::from_secs(8), "{done:?}");
    let log = s.fake.graphql_requests();
    assert_eq!(log.len(), 12);
    assert!(log.iter().all(|r| r.status == 200), "no 429");
}

/// AniList's degraded limit is 30 requests a minute (then a minute's timeout); malt's pace (one
/// every 2 s after a burst of 10) lets 40 through in the first minute of a busy spell: request 31
/// is refused after ~42 s. Takes ~62 s once fixed; run with `--ignored`.
#[tokio::test]
#[ignore = "slow (62 s): run with --ignored after touching the pacing"]
async fn a_busy_minute_stays_within_the_degraded_limit() {
    let s = setup().await;
    s.fake.set_degraded(true);
    s.fake.add_media(Media::anime(1, "A", Some(12)));
    let anilist = s.logged_in();
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < Duration::from_secs(62) {
        if let Err(e) = anilist.details(ANIME, 1).await {
            panic!(
                "request {} after {:?} was refused: {e}",
                n + 1,
                start.elapsed()
            );
        }
        n += 1;
    }
    assert!(n <= 31, "{n} requests in 62 s");
}

// ---------------------------------------------------------------------------------------------
// Faults

#[tokio::test]
async fn error_answers_become_clear_errors_and_never_show_the_token() {
    let s = setup().await;
    s.fake.add_media(Media::anime(1, "A", Some(12)));
    let anilist = s.logged_in();
    let token = s.tokens.load().unwrap().unwrap().access_token;
    let mut errors = Vec::new();

    s.fake.fail_next(1, Fault::ServerError);
    let e = anilist.details(ANIME, 1).await.unwrap_err();
    assert!(
        matches!(&e, ProviderError::Server(m) if m.contains("500")),
        "{e:?}"
    );
    errors.push(e);

    s.fake.fail_next(1, Fault::BadGateway);
    let e = anilist.details(ANIME, 1).await.unwrap_err();
    match &e {
        ProviderError::Server(m) | ProviderError::BadResponse(m) => {
            assert!(m.contains("502"), "{m}");
            assert!(!m.contains('<') && !m.contains("cloudflare"), "{m}");
            assert!(m.starts_with("AniList "), "{m}");
        }
        other => panic!("{other:?}"),
    }
    errors.push(e);

    s.fake.fail_next(1, Fault::MalformedJson);
    let e = anilist.fetch_list(ANIME, &|_| {}).await.unwrap_err();
    assert!(
        matches!(&e, ProviderError::BadResponse(m) if m.starts_with("AniList sent data malt cannot read")),
        "{e:?}"
    );
    errors.push(e);

    s.fake.fail_next(
        1,
        Fault::Raw {
            status: 403,
            content_type: "text/html".into(),
            body: "<!DOCTYPE html><html><body><h1>Access denied</h1></body></html>".into(),
            headers: vec![],
        },
    );
    let e = anilist.details(ANIME, 1).await.unwrap_err();
    assert!(
        matches!(&e, ProviderError::BadResponse(m) if m.contains("HTML") && !m.contains('<')),
        "{e:?}"
    );
    errors.push(e);

    // A 200 can carry errors: they are the answer.
    s.fake.fail_next(
        1,
        Fault::ErrorsWithData {
            message: "Internal Server Error".into(),
            status: 500,
        },
    );
    let e = anilist.details(ANIME, 1).await.unwrap_err();
    assert!(
        matches!(&e, ProviderError::Server(m) if m.contains("Internal Server Error")),
        "{e:?}"
    );
    errors.push(e);
    s.fake.fail_next(
        1,
        Fault::ErrorsWithData {
            message: "Something went wrong".into(),
            status: 400,
        },
    );
    let e = anilist.details(ANIME, 1).await.unwrap_err();
    assert!(
        matches!(&e, ProviderError::Rejected(m) if m.contains("Something went wrong")),
        "{e:?}"
    );
    errors.push(e);

    // The server goes away: the kept-alive connection dies, then connections are refused.
    s.fake.go_down();
    let e = anilist.details(ANIME, 1).await.unwrap_err();
    assert!(
        matches!(&e, ProviderError::Offline(m) if m.ends_with("to 127.0.0.1")),
        "{e:?}"
    );
    errors.push(e);
    let e = anilist.fetch_list(ANIME, &|_| {}).await.unwrap_err();
    assert_eq!(
        e,
        ProviderError::Offline("cannot connect to 127.0.0.1".into())
    );
    errors.push(e);
    s.fake.go_up();
    assert_eq!(anilist.details(ANIME, 1).await.unwrap().title, "A");

    for e in &errors {
        let text = e.to_string();
        assert!(!text.is_empty());
        assert!(!text.contains(&token) && !format!("{e:?}").contains(&token));
        assert!(!text.contains('\n'), "{text}");
    }
}

#[tokio::test]
async fn an_answer_slower_than_the_client_timeout_is_offline() {
    let s = setup().await;
    s.fake.add_media(Media::anime(1, "A", Some(12)));
    let token = s.fake.issue_token(UID);
    s.store_token(&token);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let anilist = Anilist::new(&s.cfg, Http::from(client), s.tokens.clone());
    s.fake.fail_next(1, Fault::Delay(Duration::from_secs(2)));
    let start = Instant::now();
    let e = anilist.details(ANIME, 1).await.unwrap_err();
    assert!(start.elapsed() < Duration::from_millis(1500));
    match &e {
        ProviderError::Offline(m) => {
            assert!(m.contains("did not answer in time"), "{m}");
            assert!(!m.contains(&token));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(anilist.details(ANIME, 1).await.unwrap().title, "A");
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
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn store(s: &Setup) -> Db {
    Db::spawn(Store::open(&s.dir.path().join("malt.db")).unwrap())
}

async fn enqueue(db: &Db, media_id: u64, progress: u32, fresh: bool) {
    db.call(move |st| {
        let change = Change::progress(progress);
        if fresh {
            st.enqueue_fresh(
                Service::Anilist,
                ANIME,
                media_id,
                change,
                progress - 1,
                now_ms(),
            )
        } else {
            st.enqueue(
                Service::Anilist,
                ANIME,
                media_id,
                change,
                progress - 1,
                now_ms(),
            )
        }
    })
    .await
    .unwrap();
}

async fn pending(db: &Db) -> usize {
    db.call(|st| st.pending(Service::Anilist))
        .await
        .unwrap()
        .len()
}

fn delivered_progress(e: &Event) -> Option<u32> {
    match e {
        Event::Delivered {
            state: Some(state),
            media_id: 21,
            ..
        } => Some(state.progress),
        _ => None,
    }
}

fn one_piece(s: &Setup, progress: u32) {
    s.fake
        .add_media(Media::anime(21, "One Piece", None).airing(1100, now_secs() + 3600));
    s.fake
        .add_entry(UID, Entry::new(21, ListStatus::Current).progress(progress));
}

#[tokio::test]
async fn three_quick_pluses_are_three_saves_in_order() {
    let s = setup().await;
    one_piece(&s, 5);
    s.fake.set_latency(Duration::from_millis(50));
    let provider: Arc<dyn Provider> = Arc::new(s.logged_in());
    let db = store(&s);
    for n in [6, 7, 8] {
        enqueue(&db, 21, n, true).await;
    }
    let mut worker = run_worker(provider, &db);
    let mut delivered = Vec::new();
    while delivered.len() < 3 {
        let e = worker.next().await;
        delivered.push(delivered_progress(&e).unwrap_or_else(|| panic!("{e:?}")));
    }
    assert_eq!(delivered, [6, 7, 8]);
    let sent: Vec<(Value, Value)> = s
        .saves()
        .iter()
        .map(|r| {
            (
                r.var("mediaId").cloned().unwrap(),
                r.var("progress").cloned().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        sent,
        [
            (json!(21), json!(6)),
            (json!(21), json!(7)),
            (json!(21), json!(8))
        ]
    );
    assert!(
        s.saves()
            .iter()
            .all(|r| save_arguments(&r.query) == ["mediaId", "progress"])
    );
    assert_eq!(s.fake.count_root("Viewer"), 1);
    assert_eq!(
        s.fake.graphql_requests().len(),
        4,
        "the account once, then one request per change"
    );
    assert_eq!(s.fake.entry(UID, 21).unwrap().progress, 8);
    assert_eq!(pending(&db).await, 0);
}

#[tokio::test]
async fn a_plus_made_while_anilist_is_down_is_delivered_when_it_is_back() {
    let s = setup().await;
    one_piece(&s, 5);
    let provider: Arc<dyn Provider> = Arc::new(s.logged_in());
    let db = store(&s);
    s.fake.go_down();
    enqueue(&db, 21, 6, false).await;
    let mut worker = run_worker(provider, &db);
    match worker.next().await {
        Event::Retrying {
            media_id: 21,
            error: ProviderError::Offline(_),
            ..
        } => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(pending(&db).await, 1, "kept");
    assert!(s.fake.graphql_requests().is_empty());
    s.fake.go_up();
    let e = worker.next().await;
    assert_eq!(delivered_progress(&e), Some(6), "{e:?}");
    assert_eq!(s.fake.entry(UID, 21).unwrap().progress, 6);
    assert_eq!(s.saves().len(), 1);
    assert_eq!(pending(&db).await, 0);
}

#[tokio::test]
async fn an_expired_session_keeps_the_queue_until_a_new_login() {
    let s = setup().await;
    one_piece(&s, 5);
    let expired = s.fake.issue_expired_token(UID);
    s.store_token(&expired);
    let provider: Arc<dyn Provider> = Arc::new(s.provider());
    let db = store(&s);
    enqueue(&db, 21, 6, true).await;
    enqueue(&db, 21, 7, true).await;
    let mut worker = run_worker(provider, &db);
    assert_eq!(
        worker.next().await,
        Event::LoginNeeded(ProviderError::SessionExpired)
    );
    assert_eq!(pending(&db).await, 2, "nothing lost");
    assert!(s.fake.graphql_requests().is_empty(), "nothing sent");

    // `malt --login anilist` in another terminal; the app then sends everything now.
    let fresh = s.fake.issue_token(UID);
    s.store_token(&fresh);
    db.call(|st| st.due_now(Service::Anilist)).await.unwrap();
    worker.kick.notify_one();
    let first = worker.next().await;
    let second = worker.next().await;
    assert_eq!(
        (delivered_progress(&first), delivered_progress(&second)),
        (Some(6), Some(7)),
        "{first:?} {second:?}"
    );
    assert_eq!(s.fake.entry(UID, 21).unwrap().progress, 7);
    assert_eq!(pending(&db).await, 0);
    let bearer = format!("Bearer {fresh}");
    assert!(
        s.fake
            .graphql_requests()
            .iter()
            .all(|r| r.authorization.as_deref() == Some(bearer.as_str()))
    );
}

#[tokio::test]
async fn an_offline_plus_on_an_entry_edited_on_the_website_is_a_conflict() {
    let s = setup().await;
    one_piece(&s, 5);
    let provider: Arc<dyn Provider> = Arc::new(s.logged_in());
    let db = store(&s);
    enqueue(&db, 21, 6, false).await;
    s.fake.website_edit(UID, 21, |e| e.progress = 9);
    let mut worker = run_worker(provider, &db);
    match worker.next().await {
        Event::Conflict {
            kind: MediaKind::Anime,
            media_id: 21,
            mine,
            theirs,
            state,
            held,
        } => {
            assert_eq!(mine, "episode 6");
            assert_eq!(theirs, "episode 9");
            assert_eq!(held, 1);
            let theirs_held = s.fake.entry(UID, 21).unwrap();
            assert_eq!(
                state,
                Some(state_of(&theirs_held, ScoreFormat::Point10Decimal))
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(
        s.saves().is_empty(),
        "the website's edit is not overwritten"
    );
    assert_eq!(s.fake.entry(UID, 21).unwrap().progress, 9);
    let held = db.call(|st| st.refused(Service::Anilist)).await.unwrap();
    assert_eq!(held.len(), 1);
    assert!(held[0].1.conflict);
    assert_eq!(held[0].1.theirs, Some(9));
    assert_eq!(pending(&db).await, 0);
}

#[tokio::test]
async fn a_plus_an_earlier_run_sent_without_hearing_back_is_not_sent_twice() {
    let s = setup().await;
    one_piece(&s, 5);
    let provider: Arc<dyn Provider> = Arc::new(s.logged_in());
    let db = store(&s);
    enqueue(&db, 21, 6, false).await;
    // It reached AniList, but malt ended before the answer came.
    s.fake.set_progress(UID, 21, 6);
    let mut worker = run_worker(provider, &db);
    let e = worker.next().await;
    assert_eq!(delivered_progress(&e), Some(6), "{e:?}");
    assert!(s.saves().is_empty(), "not sent again");
    assert_eq!(pending(&db).await, 0);
}

// ---------------------------------------------------------------------------------------------
// Logging in

/// The `Location` of the fake's answer to the browser opening `url` (not followed).
async fn redirected(url: &reqwest::Url) -> String {
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let answer = browser.get(url.clone()).send().await.unwrap();
    assert_eq!(answer.status(), 302, "{:?}", answer.text().await);
    answer.headers()["location"].to_str().unwrap().to_string()
}

/// The parameters of a query or fragment.
fn params(text: &str) -> Vec<(String, String)> {
    reqwest::Url::parse(&format!("http://x/?{text}"))
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn param(pairs: &[(String, String)], key: &str) -> Option<String> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}

#[tokio::test]
async fn an_implicit_login_takes_the_token_from_the_redirect_fragment() {
    let s = setup().await;
    assert_eq!(s.cfg.client_secret, None);
    for float_claims in [false, true] {
        s.fake.set_float_claims(float_claims);
        let url = authorize_url(&s.cfg, "st4te");
        let location = redirected(&url).await;
        let (target, fragment) = location.split_once('#').unwrap();
        assert_eq!(target, DEFAULT_REDIRECT_URI);
        let got = params(fragment);
        assert_eq!(param(&got, "state").as_deref(), Some("st4te"));
        let token = param(&got, "access_token").unwrap();
        let expires_in = param(&got, "expires_in").map(|v| v.parse().unwrap());
        assert_eq!(expires_in, Some(31_536_000));

        let name = finish_login(
            &s.cfg,
            http_client().unwrap(),
            s.tokens.clone(),
            Redirect::Token {
                access_token: token.clone(),
                expires_in,
            },
        )
        .await
        .unwrap();
        assert_eq!(name, DEFAULT_USER_NAME);
        let stored = s.tokens.load().unwrap().unwrap();
        assert_eq!(stored.access_token, token);
        assert_eq!(stored.refresh_token, "");
        assert_eq!(
            stored.expires_at,
            jwt_exp(&token),
            "expires_at is the JWT's exp"
        );
    }
    // The stored login works.
    s.fake.add_media(Media::anime(1, "A", Some(1)));
    s.fake.add_entry(UID, Entry::new(1, ListStatus::Planning));
    let fetched = s.provider().fetch_list(ANIME, &|_| {}).await.unwrap();
    assert_eq!(fetched.entries.len(), 1);
}

#[tokio::test]
async fn a_code_login_trades_the_code_with_the_secret_and_a_bad_secret_stores_nothing() {
    let s = setup().await;
    let text = s.fake.config_toml_with_secret(DEFAULT_REDIRECT_URI);
    let cfg = Config::parse(&s.dir.path().join("config.toml"), &text)
        .unwrap()
        .anilist
        .unwrap();
    let code_for = |cfg: &AnilistConfig| {
        let url = authorize_url(cfg, "c0de-state");
        async move {
            let location = redirected(&url).await;
            let (target, query) = location.split_once('?').unwrap();
            assert_eq!(target, DEFAULT_REDIRECT_URI);
            let got = params(query);
            assert_eq!(param(&got, "state").as_deref(), Some("c0de-state"));
            param(&got, "code").unwrap()
        }
    };

    // A wrong secret: a readable refusal, no token file.
    let mut wrong = cfg.clone();
    wrong.client_secret = Some("not-the-secret".into());
    let code = code_for(&wrong).await;
    let e = finish_login(
        &wrong,
        http_client().unwrap(),
        s.tokens.clone(),
        Redirect::Code(code.clone()),
    )
    .await
    .unwrap_err();
    assert_eq!(e, "AniList refused the login: Client authentication failed");
    assert!(!e.contains(&code) && !e.contains("not-the-secret"));
    assert!(!s.tokens.path().exists(), "no token file written");

    // The right secret.
    let code = code_for(&cfg).await;
    let name = finish_login(
        &cfg,
        http_client().unwrap(),
        s.tokens.clone(),
        Redirect::Code(code.clone()),
    )
    .await
    .unwrap();
    assert_eq!(name, DEFAULT_USER_NAME);
    let stored = s.tokens.load().unwrap().unwrap();
    assert_eq!(stored.expires_at, jwt_exp(&stored.access_token));
    assert!(stored.expires_at > now_secs() + 364 * 24 * 3600);
    let token_requests: Vec<_> = s
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.path == "/api/v2/oauth/token")
        .collect();
    assert_eq!(token_requests.len(), 2);

    // A code is good once.
    let e = finish_login(
        &cfg,
        http_client().unwrap(),
        s.tokens.clone(),
        Redirect::Code(code),
    )
    .await
    .unwrap_err();
    assert!(e.starts_with("AniList refused the login: "), "{e}");
    assert_eq!(
        s.tokens.load().unwrap().unwrap(),
        stored,
        "the working login is kept"
    );
    // The stored login works.
    s.fake.add_media(Media::anime(1, "A", Some(1)));
    let anilist = Anilist::new(&cfg, Http::default(), s.tokens.clone());
    assert!(anilist.fetch_list(ANIME, &|_| {}).await.is_ok());
}
