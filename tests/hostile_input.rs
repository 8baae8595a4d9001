//! Hostile input for every parser of outside data: MAL's answers (list pages of anime and manga,
//! PATCH answers, the check before an offline change, search and details), the token endpoint's
//! answers, `config.toml` (with `[keys]`) and a pasted login redirect. Property tests, seeded from
//! the recorded MAL answers in `tests/fixtures/mal/`, plus regressions for what they found.
//!
//! 256 cases a property by default; `MALT_FUZZ_CASES=1000000 cargo test --release --test
//! hostile_input` makes a long run of it. The coverage-guided fuzz targets are in `fuzz/`.

use std::path::Path;

use malt::auth::oauth::parse_token_response;
use malt::auth::redirect::{RedirectError, parse_pasted};
use malt::config::{Action, Config, KeyMap};
use malt::domain::airing::{AiringState, Schedule};
use malt::domain::{ListEntry, ListState, Media, MediaKind, Patch, Status};
use malt::providers::mal::{
    ListPage, error_detail, parse_details, parse_list_page, parse_list_status, parse_my_status,
    parse_search, parse_user, search_query,
};
use malt::providers::{Details, Found, ProviderError};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Map, Value, json};

const LIST_PAGE: &[u8] = include_bytes!("fixtures/mal/user-animelist-page.json");
const MANGA_PAGE: &[u8] = include_bytes!("fixtures/mal/user-mangalist-page.json");
const PATCH: &[u8] = include_bytes!("fixtures/mal/patch-anime-my_list_status-response.json");
const MANGA_PATCH: &[u8] = include_bytes!("fixtures/mal/patch-manga-my_list_status-response.json");
const USER: &[u8] = include_bytes!("fixtures/mal/users-me.json");
const DETAILS: &[u8] = include_bytes!("fixtures/mal/anime-details-full-with-my_list_status.json");
const DETAILS_OFF_LIST: &[u8] = include_bytes!("fixtures/mal/anime-details-basic.json");
const MANGA_DETAILS: &[u8] =
    include_bytes!("fixtures/mal/manga-details-full-with-my_list_status.json");
const MANGA_DETAILS_OFF_LIST: &[u8] = include_bytes!("fixtures/mal/manga-details-basic.json");
const SEARCH: &[u8] = include_bytes!("fixtures/mal/anime-search-page.json");
/// Every recorded answer: each is a seed for "never panics".
const FIXTURES: &[&[u8]] = &[
    DETAILS_OFF_LIST,
    DETAILS,
    SEARCH,
    include_bytes!("fixtures/mal/error-400-bad_request.json"),
    include_bytes!("fixtures/mal/error-401-invalid_token-expired-access-token.json"),
    include_bytes!("fixtures/mal/error-403-forbidden.json"),
    include_bytes!("fixtures/mal/error-token-invalid_grant-code_verifier.json"),
    include_bytes!("fixtures/mal/error-token-invalid_request-missing-code_verifier.json"),
    include_bytes!("fixtures/mal/error-token-refresh-cannot-decrypt.json"),
    include_bytes!("fixtures/mal/error-token-refresh-expired.json"),
    include_bytes!("fixtures/mal/error-token-refresh-wrong-client.json"),
    MANGA_DETAILS_OFF_LIST,
    MANGA_DETAILS,
    PATCH,
    MANGA_PATCH,
    LIST_PAGE,
    MANGA_PAGE,
    USER,
];
/// The recorded answers that describe works (details and search): seeds for their parsers.
const WORKS: &[(&[u8], MediaKind)] = &[
    (DETAILS, MediaKind::Anime),
    (DETAILS_OFF_LIST, MediaKind::Anime),
    (MANGA_DETAILS, MediaKind::Manga),
    (MANGA_DETAILS_OFF_LIST, MediaKind::Manga),
    (SEARCH, MediaKind::Anime),
];
const CONFIG_PATH: &str = "/home/u/.config/malt/config.toml";

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("MALT_FUZZ_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(256),
        // No proptest-regressions/ files: found cases become explicit regression tests below.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn fixture_value(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

/// The recorded list page of a kind.
fn list_fixture(kind: MediaKind) -> &'static [u8] {
    match kind {
        MediaKind::Anime => LIST_PAGE,
        MediaKind::Manga => MANGA_PAGE,
    }
}

/// MAL's name for the count done in a list status of `kind`.
fn progress_key(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Anime => "num_episodes_watched",
        MediaKind::Manga => "num_chapters_read",
    }
}

/// MAL's name for the total of a work of `kind`.
fn total_key(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Anime => "num_episodes",
        MediaKind::Manga => "num_chapters",
    }
}

/// MAL's name for the rewatching / rereading flag of `kind`.
fn repeat_key(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Anime => "is_rewatching",
        MediaKind::Manga => "is_rereading",
    }
}

/// MAL's list status words, as MAL means them (both kinds' words are understood for either).
fn status_from_mal(word: &str) -> Option<Status> {
    Some(match word {
        "watching" | "reading" => Status::Current,
        "completed" => Status::Completed,
        "on_hold" => Status::OnHold,
        "dropped" => Status::Dropped,
        "plan_to_watch" | "plan_to_read" => Status::Planning,
        _ => return None,
    })
}

const STATUS_WORDS: &[&str] = &[
    "watching",
    "reading",
    "completed",
    "on_hold",
    "dropped",
    "plan_to_watch",
    "plan_to_read",
    // malt's own keys and near misses are not MAL's words.
    "current",
    "planning",
    "Watching",
    "on hold",
    "",
];

/// A few sent patches to read a PATCH answer against.
fn sent_patches() -> [Patch; 3] {
    [
        Patch::default(),
        Patch::progress(3),
        Patch {
            status: Some(Status::Completed),
            progress: Some(12),
            volumes: Some(2),
            score: Some(7),
            repeating: Some(true),
            start_date: Some("2024-01-02".into()),
            finish_date: Some("2024-02-03".into()),
        },
    ]
}

/// Every parser of a MAL or token-endpoint body, on one body. Must never panic.
fn feed_all(body: &[u8], status: u16, old_refresh: Option<&str>) {
    for kind in MediaKind::ALL {
        if let Ok(page) = parse_list_page(body, kind) {
            check_page(&page, kind);
        }
        for sent in sent_patches() {
            if let Ok(state) = parse_list_status(body, kind, &sent) {
                check_state(&state);
            }
        }
        if let Ok(Some(state)) = parse_my_status(body, kind) {
            check_state(&state);
        }
        if let Ok(found) = parse_search(body, kind) {
            check_found(&found, kind);
        }
        if let Ok(details) = parse_details(body, kind) {
            check_details(&details, kind);
        }
    }
    let _ = parse_user(body);
    let detail = error_detail(body);
    assert!(
        detail.is_empty() || detail == ", an HTML page" || detail.starts_with(": "),
        "{detail:?}"
    );
    check_query(&String::from_utf8_lossy(body));
    match parse_token_response(status, body, old_refresh) {
        Ok(t) => {
            assert!((200..300).contains(&status));
            assert!(!t.access_token.is_empty());
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

/// What every entry of a page that parsed must look like.
fn check_page(page: &ListPage, kind: MediaKind) {
    for e in &page.entries {
        check_entry(e, kind);
        check_state(&e.state());
    }
    assert_ne!(page.next.as_deref(), Some(""));
}

/// What every entry read from MAL must look like.
fn check_entry(e: &ListEntry, kind: MediaKind) {
    assert_eq!(e.kind, kind, "{e:?}");
    assert!(!e.title.is_empty(), "{e:?}");
    assert!(e.score <= 10, "{e:?}");
    assert_ne!(e.total, Some(0), "0 means unknown: {e:?}");
    assert_ne!(e.total_volumes, Some(0), "0 means unknown: {e:?}");
    if let Some(s) = &e.media.schedule {
        assert_eq!(kind, MediaKind::Anime, "a manga has no airing: {e:?}");
        assert_ne!(s.episodes, Some(0), "{e:?}");
    }
}

/// What every list state read from MAL must look like.
fn check_state(s: &ListState) {
    assert!(s.score <= 10, "{s:?}");
    assert_ne!(s.start_date.as_deref(), Some(""), "{s:?}");
    assert_ne!(s.finish_date.as_deref(), Some(""), "{s:?}");
}

/// A mean as shown: two decimals of a positive number.
fn check_mean(mean: &Option<String>) {
    if let Some(m) = mean {
        let (whole, decimals) = m.split_once('.').unwrap_or_else(|| panic!("{m:?}"));
        assert!(
            !whole.is_empty() && whole.bytes().all(|b| b.is_ascii_digit()),
            "{m:?}"
        );
        assert!(
            decimals.len() == 2 && decimals.bytes().all(|b| b.is_ascii_digit()),
            "{m:?}"
        );
    }
}

fn check_found(found: &[Found], kind: MediaKind) {
    for f in found {
        check_entry(&f.entry, kind);
        assert_eq!(f.entry.status, Status::Planning, "{f:?}");
        assert_eq!(
            f.entry.state(),
            ListEntry::new(0, kind, "x", Status::Planning).state()
        );
        check_mean(&f.mean);
    }
}

fn check_details(d: &Details, kind: MediaKind) {
    assert_eq!(d.kind, Some(kind));
    assert!(!d.title.is_empty(), "{d:?}");
    assert_ne!(d.total, Some(0), "{d:?}");
    assert_ne!(d.total_volumes, Some(0), "{d:?}");
    if let Some(alt) = &d.alt_title {
        assert!(!alt.trim().is_empty() && *alt != d.title, "{d:?}");
    }
    if let Some(s) = &d.synopsis {
        assert!(!s.trim().is_empty(), "{d:?}");
    }
    if let Some(state) = &d.state {
        assert!(!state.contains('_'), "{d:?}");
    }
    if let Some(s) = &d.schedule {
        assert_eq!(kind, MediaKind::Anime, "{d:?}");
        assert_ne!(s.episodes, Some(0), "{d:?}");
    }
    check_mean(&d.mean);
}

/// A search query as sent: trimmed, 3 to 64 characters, the start of what was typed.
fn check_query(typed: &str) {
    if let Some(q) = search_query(typed) {
        let n = q.chars().count();
        assert!((3..=64).contains(&n), "{q:?}");
        assert_eq!(q.trim(), q, "{q:?}");
        assert!(typed.trim().starts_with(&q), "{typed:?} → {q:?}");
    } else {
        let cut: String = typed.trim().chars().take(64).collect();
        assert!(cut.trim().chars().count() < 3, "{typed:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Structure-aware JSON: arbitrary values, and mutations of the recorded list page.

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
        prop::sample::select(vec![
            "watching",
            "reading",
            "completed",
            "on_hold",
            "dropped",
            "plan_to_watch",
            "plan_to_read",
            "currently_airing",
            "finished_airing",
            "not_yet_aired",
            "saturday",
            "23:30",
            "2024-01-02",
            "2021",
            "",
            "<html>",
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((field_name(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// Field names MAL and the token endpoint use, and some it does not.
fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "data", "paging", "next", "node", "id", "title", "num_episodes", "list_status",
            "my_list_status", "status", "score", "num_episodes_watched", "updated_at", "name",
            "error", "message", "error_description", "hint", "access_token", "refresh_token",
            "expires_in", "num_chapters", "num_volumes", "num_chapters_read", "num_volumes_read",
            "is_rewatching", "is_rereading", "start_date", "finish_date", "end_date", "media_type",
            "main_picture", "medium", "large", "broadcast", "day_of_the_week", "start_time",
            "start_season", "year", "mean", "synopsis", "genres", "alternative_titles", "en",
        ])
        .prop_map(String::from),
        1 => "[a-z_]{0,10}",
    ]
}

/// One step of a path into a JSON value.
#[derive(Clone, Debug)]
enum Seg {
    Key(String),
    Idx(usize),
}

fn paths(v: &Value, here: &mut Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
    out.push(here.clone());
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                here.push(Seg::Key(k.clone()));
                paths(child, here, out);
                here.pop();
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                here.push(Seg::Idx(i));
                paths(child, here, out);
                here.pop();
            }
        }
        _ => {}
    }
}

fn at<'a>(v: &'a mut Value, path: &[Seg]) -> &'a mut Value {
    path.iter().fold(v, |v, seg| match seg {
        Seg::Key(k) => &mut v[k.as_str()],
        Seg::Idx(i) => &mut v[*i],
    })
}

/// Raw JSON that `serde_json::Value` cannot hold, spliced in through a placeholder string.
const RAW: &[&str] = &[
    "18446744073709551616",
    "-9223372036854775809",
    "1e400",
    "-0",
    "1.0",
    "7.5",
    "1E2",
    "\"\\ud800\"",
    "\"\\u0000\"",
    "[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]",
];
const RAW_MARK: &str = "@@raw@@";

#[derive(Clone, Debug)]
enum Mutation {
    Remove,
    Null,
    Str(String),
    Int(i64),
    Float(f64),
    Raw(usize),
    Wrap,
    Unknown(String, Value),
    Replace(Value),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => Just(Mutation::Remove),
        3 => Just(Mutation::Null),
        2 => ".{0,8}".prop_map(Mutation::Str),
        2 => prop_oneof![any::<i64>(), -3i64..300, Just(i64::MIN), Just(u32::MAX as i64 + 1)]
            .prop_map(Mutation::Int),
        1 => any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Mutation::Float),
        2 => (0..RAW.len()).prop_map(Mutation::Raw),
        2 => Just(Mutation::Wrap),
        1 => (field_name(), arb_json()).prop_map(|(k, v)| Mutation::Unknown(k, v)),
        1 => arb_json().prop_map(Mutation::Replace),
    ]
}

/// Applies mutations at chosen places (the root itself is only ever given unknown fields, so the
/// result is still an object); returns the body text and how many raw splices it carries.
fn mutate(mut v: Value, steps: &[(Index, Mutation)]) -> String {
    let mut raws = Vec::new();
    for (pick, m) in steps {
        let mut all = Vec::new();
        paths(&v, &mut Vec::new(), &mut all);
        let path = pick.get(&all).clone();
        let Some((last, parent)) = path.split_last() else {
            if let (Mutation::Unknown(k, x), Value::Object(o)) = (m, &mut v) {
                o.insert(k.clone(), x.clone());
            }
            continue;
        };
        let parent = at(&mut v, parent);
        if let Mutation::Remove = m {
            match (parent, last) {
                (Value::Object(o), Seg::Key(k)) => {
                    o.remove(k);
                }
                (Value::Array(a), Seg::Idx(i)) => {
                    a.remove(*i);
                }
                _ => unreachable!(),
            }
            continue;
        }
        let slot = at(parent, std::slice::from_ref(last));
        *slot = match m {
            Mutation::Remove => unreachable!(),
            Mutation::Null => Value::Null,
            Mutation::Str(s) => Value::from(s.clone()),
            Mutation::Int(i) => Value::from(*i),
            Mutation::Float(f) => Value::from(*f),
            Mutation::Raw(r) => {
                raws.push(RAW[*r]);
                Value::from(RAW_MARK)
            }
            Mutation::Wrap => Value::Array(vec![slot.take()]),
            Mutation::Unknown(k, x) => match slot.take() {
                Value::Object(mut o) => {
                    o.insert(k.clone(), x.clone());
                    Value::Object(o)
                }
                other => other,
            },
            Mutation::Replace(x) => x.clone(),
        };
    }
    splice(&serde_json::to_string(&v).unwrap(), &mut raws.into_iter())
}

fn splice(text: &str, raws: &mut impl Iterator<Item = &'static str>) -> String {
    let mark = format!("\"{RAW_MARK}\"");
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(&mark) {
        out.push_str(&rest[..i]);
        out.push_str(raws.next().unwrap_or("null"));
        rest = &rest[i + mark.len()..];
    }
    out + rest
}

/// Items that MAL's list page of `kind` can never hold: each must be skipped, alone.
fn broken_item(kind: MediaKind) -> impl Strategy<Value = Value> {
    let good = move || fixture_value(list_fixture(kind))["data"][0].clone();
    let first_id = good()["node"]["id"].clone();
    let mut list_fields = vec![
        ("score", json!(256)),
        ("score", json!(-1)),
        ("score", json!("8")),
        ("score", json!(8.5)),
        (progress_key(kind), json!(-1)),
        (progress_key(kind), json!(4294967296u64)),
        (progress_key(kind), json!("3")),
        (progress_key(kind), Value::Null),
        (repeat_key(kind), json!("yes")),
        ("status", json!(1)),
        ("status", json!(["watching"])),
        ("status", Value::Null),
        ("status", json!("current")),
        ("status", json!("")),
        ("updated_at", json!(20210315)),
        ("start_date", json!(5)),
        ("finish_date", json!({})),
    ];
    if kind == MediaKind::Manga {
        list_fields.push(("num_volumes_read", json!(-1)));
        list_fields.push(("num_volumes_read", json!("1")));
    }
    let node_fields = vec![
        (total_key(kind), json!(-1)),
        (total_key(kind), json!("12")),
        (total_key(kind), json!(12.0)),
        ("num_volumes", json!(-2)),
        ("main_picture", json!("https://x/1.jpg")),
        ("main_picture", json!({"large": 5})),
        ("media_type", json!(5)),
        ("broadcast", json!("saturday")),
        ("broadcast", json!({"day_of_the_week": 6})),
        ("status", json!(["currently_airing"])),
        ("start_date", json!(2020)),
    ];
    prop_oneof![
        Just(Value::Null),
        any::<i64>().prop_map(Value::from),
        ".{0,8}".prop_map(Value::from),
        Just(json!([])),
        Just(json!({})),
        Just(
            json!({"list_status": {"status": "watching", "num_episodes_watched": 1, "num_chapters_read": 1}})
        ),
        prop_oneof![
            Just(json!(null)),
            Just(json!(first_id.to_string())),
            Just(json!(-1)),
            Just(json!(1.5)),
            Just(json!([first_id])),
            Just(json!({})),
        ]
        .prop_map(move |id| {
            let mut v = good();
            v["node"]["id"] = id;
            v
        }),
        Just({
            let mut v = good();
            v["node"].as_object_mut().unwrap().remove("id");
            v
        }),
        Just({
            let mut v = good();
            v["list_status"]
                .as_object_mut()
                .unwrap()
                .remove(progress_key(kind));
            v
        }),
        Just({
            let mut v = good();
            v["list_status"].as_object_mut().unwrap().remove("status");
            v
        }),
        Just({
            let mut v = good();
            v["node"] = json!(967);
            v
        }),
        (prop::sample::select(list_fields), any::<bool>()).prop_map(
            move |((field, bad), in_node)| {
                let mut v = good();
                if in_node {
                    let status = v["list_status"].take();
                    v.as_object_mut().unwrap().remove("list_status");
                    v["node"]["my_list_status"] = status;
                    v["node"]["my_list_status"][field] = bad;
                } else {
                    v["list_status"][field] = bad;
                }
                v
            }
        ),
        prop::sample::select(node_fields).prop_map(move |(field, bad)| {
            let mut v = good();
            v["node"][field] = bad;
            v
        }),
        Just({
            let mut v = good();
            v["list_status"] = json!("watching");
            v
        }),
    ]
}

/// How one optional field of a generated item is written.
#[derive(Clone, Debug)]
enum Field<T> {
    Missing,
    Null,
    Is(T),
}

fn field<T: std::fmt::Debug + Clone>(
    s: impl Strategy<Value = T>,
) -> impl Strategy<Value = Field<T>> {
    prop_oneof![
        1 => Just(Field::Missing),
        1 => Just(Field::Null),
        3 => s.prop_map(Field::Is),
    ]
}

fn put<T: Clone + Into<Value>>(obj: &mut Map<String, Value>, key: &str, f: &Field<T>) {
    match f {
        Field::Missing => {}
        Field::Null => {
            obj.insert(key.into(), Value::Null);
        }
        Field::Is(x) => {
            obj.insert(key.into(), x.clone().into());
        }
    }
}

fn get<T: Clone>(f: &Field<T>) -> Option<T> {
    match f {
        Field::Is(x) => Some(x.clone()),
        _ => None,
    }
}

/// A date as MAL writes it, or something else in its place.
fn date_str() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec!["2024-01-02", "2020-10-03", "2021", "2021-04", ""])
            .prop_map(String::from),
        1 => ".{0,12}",
    ]
}

/// A `list_status` / `my_list_status` object of one kind, field by field.
#[derive(Clone, Debug)]
struct GenStatus {
    status: Field<String>,
    score: Field<u8>,
    progress: Field<u32>,
    /// `num_volumes_read`, written for manga only.
    volumes: Field<u32>,
    /// The kind's own flag (`is_rewatching` / `is_rereading`).
    repeating: Field<bool>,
    /// The other kind's flag, which means nothing here.
    other_flag: Field<bool>,
    start_date: Field<String>,
    finish_date: Field<String>,
    updated_at: Field<String>,
    /// Fields malt does not read, with the types MAL gives them, and unknown ones.
    extra: Vec<(String, Value)>,
}

fn gen_status() -> impl Strategy<Value = GenStatus> {
    let status = prop_oneof![
        4 => prop::sample::select(STATUS_WORDS.to_vec()).prop_map(String::from),
        1 => ".{0,10}",
    ];
    let extra = prop::collection::vec(
        prop_oneof![
            (0u8..3).prop_map(|n| ("priority".to_string(), json!(n))),
            ".{0,10}".prop_map(|c| ("comments".to_string(), json!(c))),
            prop::collection::vec("[a-z]{0,6}", 0..3).prop_map(|t| ("tags".to_string(), json!(t))),
            any::<u32>().prop_map(|n| ("num_times_rewatched".to_string(), json!(n))),
            ("[a-z]{1,6}", arb_json()).prop_map(|(k, v)| (format!("x_{k}"), v)),
        ],
        0..3,
    );
    (
        (
            field(status),
            field(any::<u8>()),
            field(prop_oneof![0u32..30, any::<u32>()]),
            field(prop_oneof![0u32..30, any::<u32>()]),
            field(any::<bool>()),
            field(any::<bool>()),
        ),
        (
            field(date_str()),
            field(date_str()),
            field(".{0,25}"),
            extra,
        ),
    )
        .prop_map(
            |(
                (status, score, progress, volumes, repeating, other_flag),
                (start_date, finish_date, updated_at, extra),
            )| GenStatus {
                status,
                score,
                progress,
                volumes,
                repeating,
                other_flag,
                start_date,
                finish_date,
                updated_at,
                extra,
            },
        )
}

impl GenStatus {
    fn json(&self, kind: MediaKind) -> Value {
        let mut o = Map::new();
        for (k, v) in &self.extra {
            o.insert(k.clone(), v.clone());
        }
        put(&mut o, "status", &self.status);
        put(&mut o, "score", &self.score);
        put(&mut o, progress_key(kind), &self.progress);
        if kind == MediaKind::Manga {
            put(&mut o, "num_volumes_read", &self.volumes);
        }
        put(&mut o, repeat_key(kind), &self.repeating);
        put(&mut o, repeat_key(kind.other()), &self.other_flag);
        put(&mut o, "start_date", &self.start_date);
        put(&mut o, "finish_date", &self.finish_date);
        put(&mut o, "updated_at", &self.updated_at);
        Value::Object(o)
    }

    /// What the list holds, as MAL means this object (a count or volume count MAL leaves out is
    /// the one sent); `None` when there is no count at all, which is an error.
    fn expected(&self, kind: MediaKind, sent: &Patch) -> Option<ListState> {
        let progress = get(&self.progress).or(sent.progress)?;
        let volumes = match kind {
            MediaKind::Manga => get(&self.volumes),
            MediaKind::Anime => None,
        };
        Some(ListState {
            status: get(&self.status).and_then(|s| status_from_mal(&s)),
            progress,
            volumes: volumes.or(sent.volumes).unwrap_or(0),
            score: get(&self.score).unwrap_or(0).min(10),
            repeating: get(&self.repeating).unwrap_or(false),
            start_date: get(&self.start_date).filter(|d| !d.is_empty()),
            finish_date: get(&self.finish_date).filter(|d| !d.is_empty()),
            updated_at: get(&self.updated_at),
        })
    }
}

/// A sent patch: what the UI may send for a kind.
fn gen_patch(kind: MediaKind) -> impl Strategy<Value = Patch> {
    (
        prop::option::of(prop::sample::select(Status::ALL.to_vec())),
        prop::option::of(prop_oneof![0u32..30, any::<u32>()]),
        prop::option::of(0u32..30),
        prop::option::of(0u8..=10),
        prop::option::of(any::<bool>()),
        prop::option::of(date_str()),
        prop::option::of(date_str()),
    )
        .prop_map(
            move |(status, progress, volumes, score, repeating, start_date, finish_date)| Patch {
                status,
                progress,
                // Volumes are a manga's; an anime change never carries them.
                volumes: volumes.filter(|_| kind == MediaKind::Manga),
                score,
                repeating,
                start_date,
                finish_date,
            },
        )
}

/// The airing (publishing) status of a work, or something else.
fn airing_str() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "currently_airing", "finished_airing", "not_yet_aired", "finished",
            "currently_publishing", "on_hiatus", "",
        ])
        .prop_map(String::from),
        1 => ".{0,12}",
    ]
}

/// A `broadcast` object: day and time, each maybe missing or null.
fn broadcast() -> impl Strategy<Value = Field<(Field<String>, Field<String>)>> {
    let day = prop_oneof![
        3 => prop::sample::select(vec!["saturday", "Sunday", "other", ""]).prop_map(String::from),
        1 => ".{0,10}",
    ];
    let time = prop_oneof![
        3 => prop::sample::select(vec!["23:30", "01:25", "25:10", ""]).prop_map(String::from),
        1 => ".{0,6}",
    ];
    field((field(day), field(time)))
}

/// A `main_picture` object: medium and large, each maybe missing or null.
fn picture() -> impl Strategy<Value = Field<(Field<String>, Field<String>)>> {
    field((field(".{1,12}"), field(".{1,12}")))
}

fn pair_json(f: &Field<(Field<String>, Field<String>)>, a: &str, b: &str) -> Field<Value> {
    match f {
        Field::Missing => Field::Missing,
        Field::Null => Field::Null,
        Field::Is((x, y)) => {
            let mut o = Map::new();
            put(&mut o, a, x);
            put(&mut o, b, y);
            Field::Is(Value::Object(o))
        }
    }
}

/// The facts about a work an item, a search result or details carry.
#[derive(Clone, Debug)]
struct GenWork {
    kind: MediaKind,
    id: u64,
    /// Missing, empty or some text (MAL never sends a null title).
    title: Field<String>,
    total: Field<u32>,
    /// `num_volumes`, written for manga only.
    total_volumes: Field<u32>,
    media_type: Field<String>,
    airing: Field<String>,
    start_date: Field<String>,
    broadcast: Field<(Field<String>, Field<String>)>,
    picture: Field<(Field<String>, Field<String>)>,
}

fn gen_work(kind: MediaKind) -> impl Strategy<Value = GenWork> {
    (
        (
            any::<u64>(),
            prop_oneof![1 => Just(Field::Missing), 1 => Just(Field::Is(String::new())), 4 => ".{1,20}".prop_map(Field::Is)],
            field(prop_oneof![Just(0u32), 1u32..2000, any::<u32>()]),
            field(prop_oneof![Just(0u32), 1u32..100]),
            field(prop::sample::select(vec!["tv", "movie", "manga", "manhwa", ""]).prop_map(String::from)),
        ),
        (field(airing_str()), field(date_str()), broadcast(), picture()),
    )
        .prop_map(
            move |((id, title, total, total_volumes, media_type), (airing, start_date, broadcast, picture))| {
                GenWork {
                    kind,
                    id,
                    title,
                    total,
                    total_volumes,
                    media_type,
                    airing,
                    start_date,
                    broadcast,
                    picture,
                }
            },
        )
}

impl GenWork {
    fn node(&self) -> Map<String, Value> {
        let mut node = Map::new();
        node.insert("id".into(), self.id.into());
        put(&mut node, "title", &self.title);
        put(&mut node, total_key(self.kind), &self.total);
        if self.kind == MediaKind::Manga {
            put(&mut node, "num_volumes", &self.total_volumes);
        }
        put(&mut node, "media_type", &self.media_type);
        put(&mut node, "status", &self.airing);
        put(&mut node, "start_date", &self.start_date);
        put(
            &mut node,
            "broadcast",
            &pair_json(&self.broadcast, "day_of_the_week", "start_time"),
        );
        put(
            &mut node,
            "main_picture",
            &pair_json(&self.picture, "medium", "large"),
        );
        node
    }

    /// The title as malt shows it: `#id` when MAL has none.
    fn title(&self) -> String {
        match get(&self.title).filter(|t| !t.is_empty()) {
            Some(t) => t,
            None => format!("#{}", self.id),
        }
    }

    fn total(&self) -> Option<u32> {
        get(&self.total).filter(|n| *n > 0)
    }

    fn total_volumes(&self) -> Option<u32> {
        match self.kind {
            MediaKind::Manga => get(&self.total_volumes).filter(|n| *n > 0),
            MediaKind::Anime => None,
        }
    }

    /// Airing facts: for an anime whose status MAL names; none for a manga.
    fn schedule(&self) -> Option<Schedule> {
        if self.kind != MediaKind::Anime {
            return None;
        }
        let state = match get(&self.airing)?.as_str() {
            "currently_airing" => AiringState::Airing,
            "finished_airing" => AiringState::Finished,
            "not_yet_aired" => AiringState::NotYetAired,
            _ => return None,
        };
        let (day, time) = match &self.broadcast {
            Field::Is((day, time)) => (get(day), get(time)),
            _ => (None, None),
        };
        Some(Schedule {
            state,
            start_date: get(&self.start_date),
            broadcast_day: day,
            broadcast_time: time,
            episodes: self.total(),
            next_exact: None,
        })
    }

    /// The large cover, else the medium one.
    fn picture(&self) -> Option<String> {
        match &self.picture {
            Field::Is((medium, large)) => get(large).or_else(|| get(medium)),
            _ => None,
        }
    }

    fn media(&self) -> Media {
        Media {
            media_type: get(&self.media_type),
            picture: self.picture(),
            schedule: self.schedule().map(Box::new),
            ongoing: false,
        }
    }
}

#[derive(Clone, Debug)]
struct GenItem {
    work: GenWork,
    place: Place,
    status: GenStatus,
    other: GenStatus,
}

/// Where an item carries its list status.
#[derive(Clone, Copy, Debug)]
enum Place {
    Top,
    Node,
    /// Both: the top-level one wins.
    Both,
    /// `list_status: null` and the node's.
    TopNull,
    Neither,
}

fn gen_item(kind: MediaKind) -> impl Strategy<Value = GenItem> {
    (
        gen_work(kind),
        prop::sample::select(vec![
            Place::Top,
            Place::Node,
            Place::Both,
            Place::TopNull,
            Place::Neither,
        ]),
        gen_status(),
        gen_status(),
    )
        .prop_map(|(work, place, status, other)| GenItem {
            work,
            place,
            status,
            other,
        })
}

impl GenItem {
    fn json(&self) -> Value {
        let kind = self.work.kind;
        let mut node = self.work.node();
        let mut item = Map::new();
        match self.place {
            Place::Top => {
                item.insert("list_status".into(), self.status.json(kind));
            }
            Place::Node => {
                node.insert("my_list_status".into(), self.status.json(kind));
            }
            Place::Both => {
                item.insert("list_status".into(), self.status.json(kind));
                node.insert("my_list_status".into(), self.other.json(kind));
            }
            Place::TopNull => {
                item.insert("list_status".into(), Value::Null);
                node.insert("my_list_status".into(), self.status.json(kind));
            }
            Place::Neither => {}
        }
        item.insert("node".into(), Value::Object(node));
        Value::Object(item)
    }

    /// The entry malt reads from this item, field by field as MAL means it; `None` when the item
    /// has no count done or no status MAL names (malt skips it rather than show a made-up 0 or
    /// put it in a tab it is not in).
    fn expected(&self) -> Option<ListEntry> {
        let kind = self.work.kind;
        if let Place::Neither = self.place {
            return None;
        }
        let state = self.status.expected(kind, &Patch::default())?;
        let mut media = self.work.media();
        // In the list, a finished show keeps no schedule.
        media.schedule.take_if(|s| s.state == AiringState::Finished);
        let mut entry = ListEntry {
            total: self.work.total(),
            total_volumes: self.work.total_volumes(),
            media,
            ..ListEntry::new(self.work.id, kind, &self.work.title(), state.status?)
        };
        entry.set_state(&state);
        Some(entry)
    }
}

fn page_of(items: Vec<Value>, next: Option<&str>) -> Vec<u8> {
    let paging = match next {
        Some(n) => json!({"next": n}),
        None => json!({}),
    };
    serde_json::to_vec(&json!({"data": items, "paging": paging})).unwrap()
}

/// A mean score and how malt shows it.
fn mean() -> impl Strategy<Value = Field<(Value, Option<String>)>> {
    field(prop_oneof![
        prop::sample::select(vec![
            (json!(8.51), Some("8.51")),
            (json!(7), Some("7.00")),
            (json!(5.5), Some("5.50")),
            (json!(9.999), Some("10.00")),
            (json!(0), None),
            (json!(0.0), None),
            (json!(-1.5), None),
        ])
        .prop_map(|(v, s)| (v, s.map(String::from))),
        (0.01f64..10.0).prop_map(|m| (json!(m), Some(format!("{m:.2}")))),
    ])
}

/// A start date and the year malt reads from it.
fn dated() -> impl Strategy<Value = Field<(String, Option<i32>)>> {
    field(
        prop::sample::select(vec![
            ("2021-08-14", Some(2021)),
            ("1998", Some(1998)),
            ("2020-10", Some(2020)),
            ("", None),
            ("abc", None),
            ("٢٠٢١-٠١-٠١", None),
            ("20x1-01-01", None),
        ])
        .prop_map(|(d, y)| (d.to_string(), y)),
    )
}

/// A search result or a work's details, beyond [`GenWork`].
#[derive(Clone, Debug)]
struct GenFound {
    work: GenWork,
    mean: Field<(Value, Option<String>)>,
    /// `start_season.year`.
    season: Field<Field<i32>>,
    dated: Field<(String, Option<i32>)>,
    end_date: Field<String>,
    synopsis: Field<String>,
    /// `alternative_titles.en`.
    en: Field<Field<String>>,
    /// Missing or names (MAL never sends `null` for a list).
    genres: Option<Vec<String>>,
}

fn gen_found(kind: MediaKind) -> impl Strategy<Value = GenFound> {
    (
        gen_work(kind),
        mean(),
        field(field(1917i32..2030)),
        dated(),
        field(date_str()),
        field(prop_oneof![
            prop::sample::select(vec!["", "  \n", "A story."]).prop_map(String::from),
            ".{0,30}",
        ]),
        field(field(prop_oneof![
            prop::sample::select(vec!["", " ", "Attack on Titan"]).prop_map(String::from),
            ".{0,12}",
        ])),
        prop::option::of(prop::collection::vec(".{0,10}", 0..4)),
    )
        .prop_map(
            |(work, mean, season, dated, end_date, synopsis, en, genres)| GenFound {
                work,
                mean,
                season,
                dated,
                end_date,
                synopsis,
                en,
                genres,
            },
        )
}

impl GenFound {
    fn node(&self) -> Map<String, Value> {
        let mut node = self.work.node();
        // The start date is the dated one here.
        node.remove("start_date");
        if let Field::Is((m, _)) = &self.mean {
            node.insert("mean".into(), m.clone());
        } else if let Field::Null = self.mean {
            node.insert("mean".into(), Value::Null);
        }
        match &self.season {
            Field::Missing => {}
            Field::Null => {
                node.insert("start_season".into(), Value::Null);
            }
            Field::Is(year) => {
                let mut s = Map::new();
                s.insert("season".into(), json!("fall"));
                put(&mut s, "year", year);
                node.insert("start_season".into(), Value::Object(s));
            }
        }
        match &self.dated {
            Field::Missing => {}
            Field::Null => {
                node.insert("start_date".into(), Value::Null);
            }
            Field::Is((d, _)) => {
                node.insert("start_date".into(), json!(d));
            }
        }
        put(&mut node, "end_date", &self.end_date);
        put(&mut node, "synopsis", &self.synopsis);
        match &self.en {
            Field::Missing => {}
            Field::Null => {
                node.insert("alternative_titles".into(), Value::Null);
            }
            Field::Is(en) => {
                let mut a = Map::new();
                a.insert("synonyms".into(), json!(["x"]));
                put(&mut a, "en", en);
                a.insert("ja".into(), json!(""));
                node.insert("alternative_titles".into(), Value::Object(a));
            }
        }
        if let Some(genres) = &self.genres {
            let g: Vec<Value> = genres
                .iter()
                .enumerate()
                .map(|(i, name)| json!({"id": i, "name": name}))
                .collect();
            node.insert("genres".into(), Value::Array(g));
        }
        node
    }

    fn start_date(&self) -> Option<String> {
        get(&self.dated).map(|(d, _)| d)
    }

    fn mean(&self) -> Option<String> {
        get(&self.mean).and_then(|(_, shown)| shown)
    }

    /// The work with the start date that was written.
    fn work(&self) -> GenWork {
        GenWork {
            start_date: match &self.dated {
                Field::Missing => Field::Missing,
                Field::Null => Field::Null,
                Field::Is((d, _)) => Field::Is(d.clone()),
            },
            ..self.work.clone()
        }
    }

    /// The search result malt makes of it: a planned entry, the year from the season, else from
    /// the start date.
    fn expected_found(&self) -> Found {
        let work = self.work();
        let year = match &self.season {
            Field::Is(Field::Is(y)) => Some(*y),
            _ => get(&self.dated).and_then(|(_, y)| y),
        };
        Found {
            entry: ListEntry {
                total: work.total(),
                total_volumes: work.total_volumes(),
                media: work.media(),
                ..ListEntry::new(work.id, work.kind, &work.title(), Status::Planning)
            },
            year,
            mean: self.mean(),
        }
    }

    fn expected_details(&self) -> Details {
        let work = self.work();
        let raw_title = get(&work.title).unwrap_or_default();
        Details {
            kind: Some(work.kind),
            id: work.id,
            title: work.title(),
            alt_title: match &self.en {
                Field::Is(en) => get(en).filter(|t| !t.trim().is_empty() && *t != raw_title),
                _ => None,
            },
            synopsis: get(&self.synopsis).filter(|s| !s.trim().is_empty()),
            media_type: get(&work.media_type),
            total: work.total(),
            total_volumes: work.total_volumes(),
            state: get(&work.airing).map(|s| s.replace('_', " ")),
            start_date: self.start_date(),
            end_date: get(&self.end_date),
            mean: self.mean(),
            // A genre without a name (blank) is not shown.
            genres: self
                .genres
                .clone()
                .unwrap_or_default()
                .into_iter()
                .filter(|g| !g.trim().is_empty())
                .collect(),
            schedule: work.schedule(),
            picture: work.picture(),
        }
    }
}

/// Search results MAL can never send: each is skipped.
fn broken_found() -> impl Strategy<Value = Value> {
    prop::sample::select(vec![
        Value::Null,
        json!(5),
        json!({}),
        json!({"node": 5}),
        json!({"node": {}}),
        json!({"node": {"id": "5"}}),
        json!({"node": {"id": -5, "title": "x"}}),
        json!({"node": {"id": 5, "mean": "8.1"}}),
        json!({"node": {"id": 5, "start_season": {"year": "2020"}}}),
        json!({"node": {"id": 5, "num_episodes": -1, "num_chapters": -1}}),
        json!({"node": {"id": 5, "main_picture": "x"}}),
    ])
}

// ---------------------------------------------------------------------------------------------
// Token answers.

/// A token that cannot be mistaken for any of malt's own words.
fn secret(prefix: &'static str) -> impl Strategy<Value = String> {
    "[A-Za-z0-9._~-]{12,40}".prop_map(move |s| format!("{prefix}{s}"))
}

fn token_field(secret: String) -> impl Strategy<Value = Field<Value>> {
    prop_oneof![
        4 => Just(Field::Is(Value::from(secret))),
        1 => Just(Field::Missing),
        1 => Just(Field::Null),
        1 => Just(Field::Is(Value::from(""))),
        1 => any::<i64>().prop_map(|n| Field::Is(Value::from(n))),
    ]
}

#[derive(Clone, Debug)]
struct GenToken {
    status: u16,
    access: String,
    refresh: String,
    access_field: Field<Value>,
    refresh_field: Field<Value>,
    expires: Field<Value>,
    error: Field<Value>,
    message: Field<Value>,
    hint: Field<Value>,
    message_key: &'static str,
    extra: Vec<(String, Value)>,
    old_refresh: Option<String>,
}

fn gen_token() -> impl Strategy<Value = GenToken> {
    (secret("AT"), secret("RT")).prop_flat_map(|(access, refresh)| {
        let words = || {
            prop_oneof![
                prop::sample::select(vec![
                    "invalid_grant",
                    "invalid_request",
                    "invalid_client",
                    "unsupported_grant_type",
                    "The refresh token is invalid.",
                    "Failed to verify `code_verifier`.",
                    "",
                ])
                .prop_map(Value::from),
                ".{0,20}".prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
            ]
        };
        (
            (
                prop_oneof![
                    3 => Just(200u16),
                    1 => prop::sample::select(vec![201u16, 204, 299, 300, 302, 400, 401, 403, 429, 500, 503, 0, 999]),
                    1 => any::<u16>(),
                ],
                Just(access.clone()),
                Just(refresh.clone()),
                token_field(access),
                token_field(refresh),
            ),
            (
                field(prop_oneof![
                    any::<u64>().prop_map(Value::from),
                    Just(Value::from(0)),
                    Just(Value::from(3600)),
                    any::<i64>().prop_map(Value::from),
                    Just(json!(3600.0)),
                    Just(json!("3600")),
                ]),
                field(words()),
                field(words()),
                field(words()),
                prop::sample::select(vec!["message", "error_description"]),
                prop::collection::vec((field_name(), arb_json()), 0..3),
                prop::option::of(secret("OLD")),
            ),
        )
            .prop_map(
                |(
                    (status, access, refresh, access_field, refresh_field),
                    (expires, error, message, hint, message_key, extra, old_refresh),
                )| GenToken {
                    status,
                    access,
                    refresh,
                    access_field,
                    refresh_field,
                    expires,
                    error,
                    message,
                    hint,
                    message_key,
                    extra,
                    old_refresh,
                },
            )
    })
}

impl GenToken {
    fn body(&self) -> Vec<u8> {
        let mut o = Map::new();
        for (k, v) in &self.extra {
            // Extra fields never stand in for the ones under test.
            if !matches!(k.as_str(), "access_token" | "refresh_token" | "expires_in") {
                o.insert(k.clone(), v.clone());
            }
        }
        o.insert("token_type".into(), json!("Bearer"));
        put(&mut o, "access_token", &self.access_field);
        put(&mut o, "refresh_token", &self.refresh_field);
        put(&mut o, "expires_in", &self.expires);
        put(&mut o, "error", &self.error);
        put(&mut o, self.message_key, &self.message);
        put(&mut o, "hint", &self.hint);
        serde_json::to_vec(&Value::Object(o)).unwrap()
    }
}

// ---------------------------------------------------------------------------------------------
// Config text.

/// TOML-shaped text: mostly well-formed tables of malt's own keys with good and bad values (so
/// that validation is reached), sometimes loose lines from the same vocabulary, and noise.
fn toml_text() -> impl Strategy<Value = String> {
    let mal_key = prop::sample::select(vec![
        "client_secret",
        "redirect_uri",
        "redirect_uri",
        "api_url",
        "auth_url",
        "clientid",
    ]);
    let scalar = prop_oneof![
        6 => prop::sample::select(vec![
            r#""abc""#, r#""  ""#, r#""""#, r#""http://127.0.0.1:53682/callback""#,
            r#""http://[::1]:9/cb""#, r#""http://localhost/cb""#, r#""http://LOCALHOST:1""#,
            r#""https://127.0.0.1:1/""#, r#""http://127.0.0.1/cb""#, r#""https://example.com/x""#,
            r#""http://:80""#, r#""http://[::ffff:127.0.0.1]:5/""#, r#""http://0x7f.1:5/""#,
            r#""ftp://127.0.0.1:1/""#, r#""not a url""#, r#""mailto:x@y""#, r#""é""#, "1",
            "true", "'lit'", r#""\u00e9""#, r#"" http://127.0.0.1:5/ ""#, r#""ctrl-c""#,
        ])
        .prop_map(String::from),
        2 => r#""[^"\\\p{Cc}]{0,12}""#,
        1 => r#""(http|https|ftp)://[a-z0-9.:\[\]@%/?#-]{0,16}""#,
    ];
    let mal = (
        prop::option::weighted(0.85, scalar.clone()),
        prop::collection::btree_map(mal_key, scalar.clone(), 0..4),
    )
        .prop_map(|(id, m)| {
            let id = id.map(|v| format!("client_id = {v}\n")).unwrap_or_default();
            let lines: String = m.into_iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
            format!("[mal]\n{id}{lines}")
        });
    let keys = keys_table().prop_map(|table| {
        let mut root = toml::Table::new();
        root.insert("keys".into(), toml::Value::Table(table));
        toml::to_string(&root).unwrap()
    });
    let other = prop_oneof![
        6 => Just(""),
        2 => prop::sample::select(vec!["[anilist]\nx = 1\n", "[mangadex]\n", "# comment\n"]),
        1 => prop::sample::select(vec!["[other]\n", "top = 1\n", "[[keys]]\n", "[mal.sub]\n"]),
    ];
    let structured = (
        prop::option::weighted(0.8, mal),
        prop::option::weighted(0.5, keys),
        other,
        any::<bool>(),
    )
        .prop_map(|(mal, keys, other, keys_first)| {
            let (mal, keys) = (mal.unwrap_or_default(), keys.unwrap_or_default());
            if keys_first {
                format!("{other}{keys}{mal}")
            } else {
                format!("{other}{mal}{keys}")
            }
        });
    let key = prop_oneof![
        4 => prop::sample::select(
            ["client_id", "client_secret", "redirect_uri", "api_url", "auth_url", "clientid"]
                .into_iter()
                .map(String::from)
                .chain(Action::ALL.iter().map(|a| a.name().to_string()))
                .collect::<Vec<_>>()
        ),
        1 => "[a-z_]{1,8}",
        1 => r#""[^"\\]{0,6}""#,
    ];
    let value = prop_oneof![
        4 => scalar.clone(),
        1 => prop::collection::vec(scalar.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
        1 => prop::collection::vec((key.clone(), scalar), 0..3).prop_map(|kv| {
            let kv: Vec<_> = kv.into_iter().map(|(k, v)| format!("{k} = {v}")).collect();
            format!("{{{}}}", kv.join(", "))
        }),
    ];
    let line = prop_oneof![
        2 => prop::sample::select(vec![
            "[mal]", "[keys]", "[anilist]", "[mangadex]", "[other]", "[[keys]]", "[mal.sub]", "",
            "# comment", "[keys", "=", "\"", "'''",
        ])
        .prop_map(String::from),
        5 => (key, value).prop_map(|(k, v)| format!("{k} = {v}")),
        1 => ".{0,12}",
    ];
    let loose = prop::collection::vec(line, 0..12).prop_map(|lines| lines.join("\n"));
    prop_oneof![3 => structured, 1 => loose]
}

fn keys_value() -> impl Strategy<Value = toml::Value> {
    let spec = prop_oneof![
        3 => (
            prop::sample::select(vec!["", "", "ctrl-", "alt-", "CTRL-", "Alt-", "ctrl-alt-", "ctrl-ctrl-"]),
            prop_oneof![
                prop::sample::select(vec![
                    "j", "G", "+", "?", "down", "UP", "pgdn", "pageup", "shift-tab", "backtab",
                    "space", "enter", "esc", "tab", "backspace", "delete", "home", "end", "left",
                    "right", "", "-", "é", "ctrl", "alt-",
                ])
                .prop_map(String::from),
                any::<char>().prop_map(String::from),
            ],
        )
            .prop_map(|(m, k)| format!("{m}{k}")),
        1 => ".{0,8}",
    ];
    prop_oneof![
        3 => spec.clone().prop_map(toml::Value::String),
        2 => prop::collection::vec(spec.prop_map(toml::Value::String), 0..4).prop_map(toml::Value::Array),
        1 => prop_oneof![
            any::<i64>().prop_map(toml::Value::Integer),
            any::<bool>().prop_map(toml::Value::Boolean),
            Just(toml::Value::Array(vec![toml::Value::Integer(1)])),
            Just(toml::Value::Table(toml::Table::new())),
        ],
    ]
}

fn keys_table() -> impl Strategy<Value = toml::Table> {
    let name = prop_oneof![
        5 => prop::sample::select(Action::ALL.iter().map(|a| a.name().to_string()).collect::<Vec<_>>()),
        1 => ".{0,10}",
    ];
    prop::collection::vec((name, keys_value()), 0..8).prop_map(|kv| kv.into_iter().collect())
}

fn assert_config_error(text: &str, e: &malt::config::ConfigError) {
    let msg = e.to_string();
    assert!(msg.starts_with(&format!("{CONFIG_PATH}: ")), "{msg}");
    // A line break can only come from the user's own strings: escapes or multi-line strings.
    // Those do reach the message (see `config_errors_are_one_line_even_with_escapes`).
    if !text.contains('\\') && !text.contains("\"\"\"") && !text.contains("'''") {
        assert!(!msg.contains('\n'), "a multi-line error: {msg:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Login redirect.

fn state_str() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[A-Za-z0-9_-]{8,32}",
        1 => ".{1,12}",
    ]
}

fn redirect_base() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "http://127.0.0.1:53682/callback?",
        "http://localhost:53682/callback?",
        "https://example.com/elsewhere?",
        "/callback?",
        "?",
        "  http://[::1]:1/x?a=b&",
    ])
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512), status in any::<u16>(), old in prop::option::of(".{0,8}")) {
        feed_all(&body, status, old.as_deref());
    }

    #[test]
    fn fixture_bytes_with_random_edits_never_panic(
        which in 0..FIXTURES.len(),
        edits in prop::collection::vec((any::<Index>(), any::<u8>(), 0u8..3), 1..8),
        status in prop::sample::select(vec![200u16, 400, 401, 500]),
    ) {
        let mut body = FIXTURES[which].to_vec();
        for (at, byte, op) in edits {
            if body.is_empty() {
                body.push(byte);
                continue;
            }
            let i = at.index(body.len());
            match op {
                0 => body[i] = byte,
                1 => { body.remove(i); }
                _ => body.insert(i, byte),
            }
        }
        feed_all(&body, status, Some("old"));
    }

    #[test]
    fn arbitrary_json_never_panics(v in arb_json(), status in any::<u16>()) {
        feed_all(&serde_json::to_vec(&v).unwrap(), status, None);
    }

    /// Arbitrary JSON in the places MAL's answers have: a page's `data` items, a details body's
    /// fields, a list status's fields.
    #[test]
    fn arbitrary_json_in_mal_shapes_never_panics(
        items in prop::collection::vec(arb_json(), 0..4),
        fields in prop::collection::vec((field_name(), arb_json()), 0..8),
        id in prop_oneof![Just(json!(1)), any::<u64>().prop_map(Value::from), arb_json()],
    ) {
        feed_all(&page_of(items.clone(), None), 200, None);
        let wrapped: Vec<Value> = items.into_iter().map(|node| json!({"node": node})).collect();
        feed_all(&page_of(wrapped, Some("https://x/next")), 200, None);
        let mut o: Map<String, Value> = fields.into_iter().collect();
        o.insert("id".into(), id);
        feed_all(&serde_json::to_vec(&Value::Object(o.clone())).unwrap(), 200, None);
        let status = Value::Object(o);
        feed_all(&serde_json::to_vec(&json!({"id": 1, "my_list_status": status.clone()})).unwrap(), 200, None);
        feed_all(&page_of(vec![json!({"node": {"id": 1, "title": "t"}, "list_status": status})], None), 200, None);
    }

    /// The recorded list pages, with fields dropped, nulled, retyped, nested, added to and spliced
    /// with numbers out of range. Items are read one by one: the page says the same as its items
    /// said alone, and a page that is cut anywhere is an error.
    #[test]
    fn mutated_list_page_is_read_item_by_item(
        kind in prop::sample::select(MediaKind::ALL.to_vec()),
        steps in prop::collection::vec((any::<Index>(), mutation()), 1..6),
        cut in any::<Index>(),
    ) {
        let body = mutate(fixture_value(list_fixture(kind)), &steps);
        feed_all(body.as_bytes(), 200, None);
        // (A number out of f64's range is a syntax error for a `Value`, not for a skipped field.)
        if let (Ok(page), Ok(v)) = (parse_list_page(body.as_bytes(), kind), serde_json::from_str::<Value>(&body)) {
            let alone: Vec<ListEntry> = v["data"]
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .flat_map(|item| {
                            // A page whose only item is unreadable is an error (it must not
                            // empty the cache), so it contributes nothing here.
                            let one = page_of(vec![item.clone()], None);
                            parse_list_page(&one, kind).map(|p| p.entries).unwrap_or_default()
                        })
                        .collect()
                })
                .unwrap_or_default();
            prop_assert_eq!(page.entries, alone);
        }
        let cut = cut.index(body.len());
        prop_assert!(
            parse_list_page(&body.as_bytes()[..cut], kind).is_err(),
            "{}",
            String::from_utf8_lossy(&body.as_bytes()[..cut])
        );
    }

    /// The recorded search page, mutated: results are read one by one too (a page of unreadable
    /// results is no results, not an error), and a cut page is an error.
    #[test]
    fn mutated_search_page_is_read_result_by_result(
        kind in prop::sample::select(MediaKind::ALL.to_vec()),
        steps in prop::collection::vec((any::<Index>(), mutation()), 1..6),
        cut in any::<Index>(),
    ) {
        let body = mutate(fixture_value(SEARCH), &steps);
        feed_all(body.as_bytes(), 200, None);
        if let (Ok(found), Ok(v)) = (parse_search(body.as_bytes(), kind), serde_json::from_str::<Value>(&body)) {
            let alone: Vec<Found> = v["data"]
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .flat_map(|item| parse_search(&page_of(vec![item.clone()], None), kind).unwrap())
                        .collect()
                })
                .unwrap_or_default();
            prop_assert_eq!(found, alone);
        }
        let cut = cut.index(body.len());
        prop_assert!(parse_search(&body.as_bytes()[..cut], kind).is_err());
    }

    /// The recorded details, mutated: never a panic, and what is read is sane (checked by
    /// `feed_all`); a cut body is an error.
    #[test]
    fn mutated_details_never_panic(
        which in 0..WORKS.len(),
        steps in prop::collection::vec((any::<Index>(), mutation()), 1..6),
        cut in any::<Index>(),
    ) {
        let (fixture, kind) = WORKS[which];
        let body = mutate(fixture_value(fixture), &steps);
        feed_all(body.as_bytes(), 200, None);
        let cut = cut.index(body.len());
        prop_assert!(parse_details(&body.as_bytes()[..cut], kind).is_err());
        prop_assert!(parse_my_status(&body.as_bytes()[..cut], kind).is_err());
    }

    /// Broken items among good ones are skipped, and every good one is still read, in order.
    #[test]
    fn broken_items_do_not_hide_their_siblings(
        (kind, broken) in prop::sample::select(MediaKind::ALL.to_vec()).prop_flat_map(|kind| {
            (Just(kind), prop::collection::vec((any::<Index>(), broken_item(kind)), 1..5))
        }),
    ) {
        let good: Vec<Value> = fixture_value(list_fixture(kind))["data"].as_array().unwrap().clone();
        let expected = parse_list_page(&page_of(good.clone(), None), kind).unwrap().entries;
        prop_assert_eq!(expected.len(), good.len());
        let mut items = good;
        let n = broken.len();
        for (at, item) in broken {
            let i = at.index(items.len() + 1);
            items.insert(i, item);
        }
        let page = parse_list_page(&page_of(items, Some("https://x/next")), kind).unwrap();
        prop_assert_eq!(page.entries, expected);
        prop_assert_eq!(page.skipped, n);
        prop_assert_eq!(page.next.as_deref(), Some("https://x/next"));
    }

    /// Well-formed items in every shape MAL may use are read as MAL means them, anime and manga;
    /// among them, a total of 0, null or missing means the total is unknown.
    #[test]
    fn items_mean_what_mal_means(
        (kind, items) in prop::sample::select(MediaKind::ALL.to_vec())
            .prop_flat_map(|kind| (Just(kind), prop::collection::vec(gen_item(kind), 0..8))),
    ) {
        let body = page_of(items.iter().map(GenItem::json).collect(), None);
        let readable: Vec<(&GenItem, ListEntry)> =
            items.iter().filter_map(|i| i.expected().map(|e| (i, e))).collect();
        if !items.is_empty() && readable.is_empty() {
            // Nothing readable on a non-empty page is an error, so the cached list survives it.
            prop_assert!(parse_list_page(&body, kind).is_err());
            return Ok(());
        }
        let page = parse_list_page(&body, kind).unwrap();
        let expected: Vec<ListEntry> = readable.iter().map(|(_, e)| e.clone()).collect();
        prop_assert_eq!(&page.entries, &expected);
        prop_assert_eq!(page.skipped, items.len() - readable.len());
        for ((item, _), entry) in readable.iter().zip(&page.entries) {
            if !matches!(item.work.total, Field::Is(n) if n > 0) {
                prop_assert_eq!(entry.total, None);
            }
        }
        prop_assert_eq!(page.next, None);
        // And as the other kind's list, a page is never read as this kind's.
        if let Ok(other) = parse_list_page(&body, kind.other()) {
            prop_assert!(other.entries.iter().all(|e| e.kind == kind.other()));
        }
    }

    #[test]
    fn html_bodies_are_named_as_html(
        ws in "[ \t\r\n]{0,4}",
        rest in ".{0,60}",
        status in prop_oneof![200u16..300, 300u16..600],
    ) {
        let body = format!("{ws}<{rest}");
        let b = body.as_bytes();
        for kind in MediaKind::ALL {
            for err in [
                parse_list_page(b, kind).unwrap_err(),
                parse_list_status(b, kind, &Patch::progress(1)).unwrap_err(),
                parse_my_status(b, kind).unwrap_err(),
                parse_search(b, kind).unwrap_err(),
                parse_details(b, kind).unwrap_err(),
                parse_user(b).unwrap_err(),
            ] {
                prop_assert!(matches!(err, ProviderError::BadResponse(_)), "{:?}", err);
                prop_assert!(err.to_string().contains("HTML"), "{}", err);
            }
        }
        prop_assert_eq!(error_detail(b), ", an HTML page");
        let err = parse_token_response(status, b, Some("old")).unwrap_err().to_string();
        prop_assert!(err.contains("HTML"), "{}", err);
    }

    #[test]
    fn error_detail_prefers_message_then_error(
        error in prop::option::of(".{0,12}"),
        message in prop::option::of(".{0,12}"),
        extra in prop::collection::vec((field_name(), arb_json()), 0..3),
    ) {
        let mut o = Map::new();
        for (k, v) in extra {
            o.insert(k, v);
        }
        o.insert("error".into(), error.clone().into());
        o.insert("message".into(), message.clone().into());
        let detail = error_detail(&serde_json::to_vec(&Value::Object(o)).unwrap());
        // Shown on one line: runs of whitespace become one space; blank counts as absent.
        let one_line = |t: String| t.split_whitespace().collect::<Vec<_>>().join(" ");
        let expected = match (
            message.map(one_line).filter(|m| !m.is_empty()),
            error.map(one_line).filter(|e| !e.is_empty()),
        ) {
            (Some(m), _) => format!(": {m}"),
            (None, Some(e)) => format!(": {e}"),
            (None, None) => String::new(),
        };
        prop_assert_eq!(detail, expected);
    }

    /// `PATCH …/my_list_status` answers of every shape, against what was sent: the state is what
    /// MAL says, field by field; a count MAL leaves out is the one sent; with neither it is an
    /// error that says so.
    #[test]
    fn patch_answers_read_as_what_mal_holds(
        (kind, status, sent) in prop::sample::select(MediaKind::ALL.to_vec())
            .prop_flat_map(|kind| (Just(kind), gen_status(), gen_patch(kind))),
    ) {
        let body = serde_json::to_vec(&status.json(kind)).unwrap();
        match (status.expected(kind, &sent), parse_list_status(&body, kind, &sent)) {
            (Some(expected), Ok(state)) => prop_assert_eq!(state, expected),
            (None, Err(e)) => {
                prop_assert!(matches!(e, ProviderError::BadResponse(_)), "{:?}", e);
                prop_assert!(e.to_string().contains(kind.units()), "{}", e);
            }
            (expected, got) => prop_assert!(false, "expected {:?}, got {:?}", expected, got),
        }
    }

    /// The recorded PATCH answers with the count replaced: the count, else the one sent.
    #[test]
    fn recorded_patch_answers_give_the_count_or_the_one_sent(
        kind in prop::sample::select(MediaKind::ALL.to_vec()),
        done in field(any::<u32>()),
        sent in prop::option::of(any::<u32>()),
        extra in prop::collection::vec(("x_[a-z]{1,6}", arb_json()), 0..3),
    ) {
        let fixture = match kind {
            MediaKind::Anime => PATCH,
            MediaKind::Manga => MANGA_PATCH,
        };
        let mut o = fixture_value(fixture).as_object().unwrap().clone();
        o.remove(progress_key(kind));
        for (k, v) in extra {
            o.insert(k, v);
        }
        put(&mut o, progress_key(kind), &done);
        let body = serde_json::to_vec(&Value::Object(o)).unwrap();
        let sent = Patch { progress: sent, ..Patch::default() };
        match get(&done).or(sent.progress) {
            Some(n) => {
                let state = parse_list_status(&body, kind, &sent).unwrap();
                prop_assert_eq!(state.progress, n);
                prop_assert_eq!(state.status, Some(Status::Current));
            }
            None => prop_assert!(parse_list_status(&body, kind, &sent).is_err()),
        }
    }

    /// `GET /{anime|manga}/{id}?fields=my_list_status`: what the list holds, `None` when the work
    /// is not on the list, and an error when it is on the list without a count, or when the
    /// answer is not a work's details at all (no `id`).
    #[test]
    fn details_give_what_the_list_holds(
        kind in prop::sample::select(MediaKind::ALL.to_vec()),
        on_list in field(gen_status()),
        id in field(prop_oneof![any::<u64>().prop_map(Value::from), ".{0,5}".prop_map(Value::from)]),
        extra in prop::collection::vec(("x_[a-z]{1,6}", arb_json()), 0..3),
    ) {
        let fixture = match kind {
            MediaKind::Anime => DETAILS,
            MediaKind::Manga => MANGA_DETAILS,
        };
        let mut o = fixture_value(fixture).as_object().unwrap().clone();
        for (k, v) in extra {
            o.insert(k, v);
        }
        o.remove("my_list_status");
        o.remove("id");
        put(&mut o, "id", &id);
        match &on_list {
            Field::Is(s) => {
                o.insert("my_list_status".into(), s.json(kind));
            }
            Field::Null => {
                o.insert("my_list_status".into(), Value::Null);
            }
            Field::Missing => {}
        }
        let body = serde_json::to_vec(&Value::Object(o)).unwrap();
        let got = parse_my_status(&body, kind);
        if let Field::Missing = id {
            prop_assert!(got.is_err(), "no id: {:?}", got);
            return Ok(());
        }
        match &on_list {
            Field::Is(s) => match s.expected(kind, &Patch::default()) {
                Some(expected) => prop_assert_eq!(got.unwrap(), Some(expected)),
                None => prop_assert!(got.is_err(), "{:?}", got),
            },
            _ => prop_assert_eq!(got.unwrap(), None),
        }
    }

    /// Search answers of every shape: each readable result as MAL means it (a planned entry, the
    /// year from the season or the start date, the mean with two decimals), unreadable ones
    /// skipped, in order.
    #[test]
    fn search_results_mean_what_mal_means(
        (kind, results) in prop::sample::select(MediaKind::ALL.to_vec()).prop_flat_map(|kind| {
            (
                Just(kind),
                prop::collection::vec(
                    prop_oneof![4 => gen_found(kind).prop_map(Ok), 1 => broken_found().prop_map(Err)],
                    0..6,
                ),
            )
        }),
        next in prop::option::of(Just("https://x/next")),
    ) {
        let items: Vec<Value> = results
            .iter()
            .map(|r| match r {
                Ok(f) => json!({"node": Value::Object(f.node())}),
                Err(broken) => broken.clone(),
            })
            .collect();
        let expected: Vec<Found> = results
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .map(GenFound::expected_found)
            .collect();
        let found = parse_search(&page_of(items, next), kind).unwrap();
        prop_assert_eq!(found, expected);
    }

    /// Details answers of every shape, read as MAL means them.
    #[test]
    fn details_mean_what_mal_means(
        found in prop::sample::select(MediaKind::ALL.to_vec()).prop_flat_map(gen_found),
        extra in prop::collection::vec(("x_[a-z]{1,6}", arb_json()), 0..3),
    ) {
        let mut node = found.node();
        for (k, v) in extra {
            node.insert(k, v);
        }
        let body = serde_json::to_vec(&Value::Object(node)).unwrap();
        let kind = found.work.kind;
        prop_assert_eq!(parse_details(&body, kind).unwrap(), found.expected_details());
        // The same body holds no list status: not on the list.
        prop_assert_eq!(parse_my_status(&body, kind).unwrap(), None);
    }

    /// What is typed into search becomes a query MAL accepts, or nothing.
    #[test]
    fn search_queries_are_what_mal_accepts(typed in prop_oneof![".{0,80}", "[ a-z]{0,70}", "\\PC{60,70}"]) {
        check_query(&typed);
        if let Some(q) = search_query(&typed) {
            prop_assert_eq!(search_query(&q), Some(q.clone()), "a query is its own query");
        }
    }

    #[test]
    fn token_answers_never_panic(status in any::<u16>(), body in prop::collection::vec(any::<u8>(), 0..256), old in prop::option::of(".{0,10}")) {
        let _ = parse_token_response(status, &body, old.as_deref()).map_err(|e| e.to_string());
    }

    /// Token answers of every shape: a success gives exactly the tokens sent (the old refresh
    /// token when none came); an error never repeats a token that was in the body.
    #[test]
    fn token_answers_keep_secrets(t in gen_token()) {
        let body = t.body();
        let ok_status = (200..300).contains(&t.status);
        match parse_token_response(t.status, &body, t.old_refresh.as_deref()) {
            Ok(tokens) => {
                prop_assert!(ok_status);
                prop_assert_eq!(&tokens.access_token, &t.access);
                let expected_refresh = match (&t.refresh_field, &t.old_refresh) {
                    (Field::Is(Value::String(r)), _) if !r.is_empty() => r.clone(),
                    (_, Some(old)) => old.clone(),
                    _ => String::new(),
                };
                prop_assert_eq!(&tokens.refresh_token, &expected_refresh);
                let lifetime = match &t.expires {
                    Field::Is(Value::Number(n)) => n.as_u64().filter(|s| *s > 0).unwrap_or(3600),
                    _ => 3600,
                }
                .min(10 * 365 * 24 * 3600) as i64;
                let remaining = tokens.remaining();
                prop_assert!(remaining <= lifetime && remaining >= lifetime - 60, "{} vs {}", remaining, lifetime);
            }
            Err(e) => {
                let msg = e.to_string();
                prop_assert!(!msg.contains(&t.access), "access token in {:?}", msg);
                prop_assert!(!msg.contains(&t.refresh), "refresh token in {:?}", msg);
                if let Some(old) = &t.old_refresh {
                    prop_assert!(!msg.contains(old), "old refresh token in {:?}", msg);
                }
                let dbg = format!("{e:?}");
                prop_assert!(!dbg.contains(&t.access) && !dbg.contains(&t.refresh), "{}", dbg);
                // A well-formed 2xx answer with a token is never refused.
                let well_formed = matches!(&t.access_field, Field::Is(Value::String(a)) if !a.is_empty())
                    && matches!(&t.refresh_field, Field::Is(Value::String(_)) | Field::Missing | Field::Null)
                    && match &t.expires {
                        Field::Is(v) => v.is_u64(),
                        _ => true,
                    };
                prop_assert!(!(ok_status && well_formed), "refused a good answer: {}", msg);
            }
        }
    }

    #[test]
    fn arbitrary_config_text_never_panics(text in ".{0,200}") {
        if let Err(e) = Config::parse(Path::new(CONFIG_PATH), &text) {
            assert_config_error(&text, &e);
        }
    }

    #[test]
    fn toml_shaped_config_never_panics(text in toml_text()) {
        if let Err(e) = Config::parse(Path::new(CONFIG_PATH), &text) {
            assert_config_error(&text, &e);
        }
    }

    /// Random `[keys]` tables: never a panic; an accepted table binds exactly the keys written,
    /// a refused one is named in the message.
    #[test]
    fn random_keys_tables(table in keys_table()) {
        let direct = KeyMap::from_table(&table);
        let mut root = toml::Table::new();
        root.insert("keys".into(), toml::Value::Table(table.clone()));
        let text = toml::to_string(&root).unwrap();
        let parsed = Config::parse(Path::new(CONFIG_PATH), &text);
        match (&direct, &parsed) {
            (Ok(map), Ok(cfg)) => {
                prop_assert_eq!(map, &cfg.keys);
                // A key bound in the table leaves the defaults of the actions the table does not
                // name.
                let taken: Vec<_> = Action::ALL
                    .iter()
                    .filter(|a| table.contains_key(a.name()))
                    .flat_map(|a| map.keys_for(*a).iter())
                    .collect();
                for action in Action::ALL {
                    let written = match table.get(action.name()) {
                        Some(toml::Value::String(_)) => 1,
                        Some(toml::Value::Array(a)) => a.len(),
                        _ => KeyMap::default()
                            .keys_for(action)
                            .iter()
                            .filter(|k| !taken.contains(k))
                            .count(),
                    };
                    prop_assert_eq!(map.keys_for(action).len(), written);
                }
            }
            (Err(m), Err(e)) => {
                prop_assert!(m.starts_with("[keys] "), "{}", m);
                prop_assert_eq!(e.to_string(), format!("{CONFIG_PATH}: {m}"));
            }
            _ => prop_assert!(false, "from_table and Config::parse disagree: {:?} / {:?}", direct, parsed.map(|c| c.keys)),
        }
    }

    #[test]
    fn pasted_input_never_panics(input in ".{0,80}", state in ".{0,12}") {
        if let Ok(code) = parse_pasted(&input, &state) {
            prop_assert!(!code.is_empty());
        }
    }

    /// A pasted redirect address gives its code only when its state is this login's.
    #[test]
    fn pasted_address_gives_the_code_only_for_its_state(
        base in redirect_base(),
        code in ".{0,16}",
        ours in state_str(),
        theirs in prop::option::of(state_str()),
        noise in prop::collection::vec(("[a-z]{1,6}", ".{0,6}"), 0..3),
        code_first in any::<bool>(),
    ) {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &noise {
            if !matches!(k.as_str(), "code" | "state" | "error") {
                q.append_pair(k, v);
            }
        }
        let sent_state = theirs.clone().unwrap_or_else(|| ours.clone());
        if code_first {
            q.append_pair("code", &code);
            q.append_pair("state", &sent_state);
        } else {
            q.append_pair("state", &sent_state);
            q.append_pair("code", &code);
        }
        let input = format!("{base}{}", q.finish());
        let result = parse_pasted(&input, &ours);
        if sent_state == ours && !code.is_empty() {
            prop_assert_eq!(result.unwrap(), code);
        } else {
            prop_assert!(matches!(result, Err(RedirectError::BadPaste(_))), "{:?}", result);
        }
    }

    #[test]
    fn pasted_bare_codes_are_trimmed(pad in "[ \t\r\n]{0,3}", code in "[A-Za-z0-9._~-]{1,64}", state in ".{0,8}") {
        prop_assert_eq!(parse_pasted(&format!("{pad}{code}{pad}"), &state).unwrap(), code);
    }
}

// ---------------------------------------------------------------------------------------------
// Exhaustive and explicit cases.

/// Every strict prefix of a recorded answer (trailing whitespace aside) is an error, not a panic
/// and not a shorter answer.
#[test]
fn every_truncation_of_the_recorded_answers_is_an_error() {
    fn cut_points(body: &[u8]) -> std::ops::Range<usize> {
        let end = body.iter().rposition(|b| !b.is_ascii_whitespace()).unwrap() + 1;
        0..end
    }
    for kind in MediaKind::ALL {
        parse_list_page(list_fixture(kind), kind).unwrap();
        for body in [LIST_PAGE, MANGA_PAGE] {
            for n in cut_points(body) {
                assert!(parse_list_page(&body[..n], kind).is_err(), "{n}");
            }
        }
    }
    let sent = Patch::default();
    assert_eq!(
        parse_list_status(PATCH, MediaKind::Anime, &sent)
            .unwrap()
            .progress,
        73
    );
    let manga = parse_list_status(MANGA_PATCH, MediaKind::Manga, &sent).unwrap();
    assert_eq!((manga.progress, manga.volumes), (5, 1));
    for (body, kind) in [(PATCH, MediaKind::Anime), (MANGA_PATCH, MediaKind::Manga)] {
        for n in cut_points(body) {
            assert!(
                parse_list_status(&body[..n], kind, &Patch::progress(1)).is_err(),
                "{n}"
            );
        }
    }
    assert_eq!(
        parse_my_status(DETAILS, MediaKind::Anime)
            .unwrap()
            .map(|s| s.progress),
        Some(4)
    );
    assert_eq!(
        parse_my_status(MANGA_DETAILS, MediaKind::Manga)
            .unwrap()
            .map(|s| (s.progress, s.score)),
        Some((167, 9))
    );
    assert_eq!(
        parse_my_status(DETAILS_OFF_LIST, MediaKind::Anime).unwrap(),
        None
    );
    assert_eq!(
        parse_my_status(MANGA_DETAILS_OFF_LIST, MediaKind::Manga).unwrap(),
        None
    );
    for &(body, kind) in WORKS.iter().filter(|(body, _)| *body != SEARCH) {
        parse_details(body, kind).unwrap();
        for n in cut_points(body) {
            assert!(parse_my_status(&body[..n], kind).is_err(), "{n}");
            assert!(parse_details(&body[..n], kind).is_err(), "{n}");
        }
    }
    assert_eq!(parse_search(SEARCH, MediaKind::Anime).unwrap().len(), 3);
    for n in cut_points(SEARCH) {
        assert!(parse_search(&SEARCH[..n], MediaKind::Anime).is_err(), "{n}");
    }
    assert_eq!(parse_user(USER).unwrap(), "nstratos");
    for n in cut_points(USER) {
        assert!(parse_user(&USER[..n]).is_err(), "{n}");
    }
    let token = br#"{"token_type":"Bearer","expires_in":2678400,"access_token":"AT-1234567890","refresh_token":"RT-1234567890"}"#;
    parse_token_response(200, token, None).unwrap();
    for n in 0..token.len() {
        let err = parse_token_response(200, &token[..n], None)
            .unwrap_err()
            .to_string();
        assert!(!err.contains("1234567890"), "{err}");
    }
}

#[test]
fn every_recorded_answer_survives_every_parser() {
    for body in FIXTURES {
        for status in [200, 400, 401, 403, 500] {
            feed_all(body, status, Some("old"));
        }
    }
    let example = include_str!("../config.example.toml");
    Config::parse(Path::new(CONFIG_PATH), example).unwrap();
    for n in 0..=example.len() {
        if example.is_char_boundary(n)
            && let Err(e) = Config::parse(Path::new(CONFIG_PATH), &example[..n])
        {
            assert_config_error(&example[..n], &e);
        }
    }
}

#[test]
fn recorded_mal_errors_read_as_details() {
    let detail = |name: &[u8]| error_detail(name);
    assert_eq!(
        detail(include_bytes!("fixtures/mal/error-400-bad_request.json")),
        ": invalid q"
    );
    assert_eq!(
        detail(include_bytes!(
            "fixtures/mal/error-401-invalid_token-expired-access-token.json"
        )),
        ": invalid_token"
    );
    assert_eq!(
        detail(include_bytes!("fixtures/mal/error-403-forbidden.json")),
        ": forbidden"
    );
}

#[test]
fn numbers_out_of_range_skip_the_item_not_the_page() {
    let good = fixture_value(LIST_PAGE)["data"][0].clone();
    let n = fixture_value(LIST_PAGE)["data"].as_array().unwrap().len();
    for (field, raw) in [
        ("id", "18446744073709551616"),
        ("id", "-1"),
        ("num_episodes", "4294967296"),
        ("num_episodes", "12.0"),
    ] {
        let mut v = fixture_value(LIST_PAGE);
        let mut item = good.clone();
        item["node"][field] = Value::from(RAW_MARK);
        v["data"].as_array_mut().unwrap().push(item);
        let body = splice(
            &serde_json::to_string(&v).unwrap(),
            &mut std::iter::once(raw),
        );
        let page = parse_list_page(body.as_bytes(), MediaKind::Anime).unwrap();
        assert_eq!(page.entries.len(), n, "{field} = {raw}");
    }
}

#[test]
fn pasted_redirect_with_a_denial() {
    let denied = parse_pasted(
        "http://127.0.0.1:53682/callback?error=access_denied&message=no+thanks&state=s1",
        "s1",
    );
    assert!(
        matches!(&denied, Err(RedirectError::Denied(m)) if m == "no thanks"),
        "{denied:?}"
    );
    // A denial for another login attempt is not ours to report.
    assert!(matches!(
        parse_pasted("/callback?error=access_denied&state=other", "s1"),
        Err(RedirectError::BadPaste(_))
    ));
    let long = "x".repeat(100_000);
    assert_eq!(parse_pasted(&long, "s1").unwrap(), long);
}

#[test]
fn token_lifetimes_are_clamped() {
    let body = |expires: &str| {
        format!(r#"{{"access_token":"AT-0123456789","refresh_token":"","expires_in":{expires}}}"#)
    };
    let ten_years = 10 * 365 * 24 * 3600;
    for (expires, lifetime) in [
        ("18446744073709551615", ten_years),
        ("0", 3600),
        ("null", 3600),
        ("1", 1),
    ] {
        let t = parse_token_response(200, body(expires).as_bytes(), Some("RT-old")).unwrap();
        assert!(
            (lifetime - 60..=lifetime).contains(&t.remaining()),
            "{expires}: {}",
            t.remaining()
        );
        assert_eq!(t.refresh_token, "RT-old");
    }
}

// ---------------------------------------------------------------------------------------------
// Bugs this file found, now fixed in `src/`; kept as regression tests.

/// FOUND: a 200 answer without `data` (`{}`, `{"error":"…"}`, or any other object, and even `[]`)
/// reads as an empty list page, and `sync::fetch_list` then replaces the cached list of that status
/// with nothing. `src/providers/mal.rs`, `struct Page`: `#[serde(default)] data`. MAL always sends
/// `data` (`"data": []` for an empty list), so it should be required.
#[test]
fn a_body_without_data_is_not_an_empty_list() {
    for body in [
        &b"{}"[..],
        br#"{"error":"not_found","message":"user not found"}"#,
        br#"{"name":"nstratos"}"#,
        b"[]",
    ] {
        for kind in MediaKind::ALL {
            assert!(
                parse_list_page(body, kind).is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
            // Nor is it a search with no results.
            assert!(
                parse_search(body, kind).is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}

/// FOUND: the same for the check before sending a change made offline: a 200 answer that is not an
/// anime's details at all (`{}`, `{"error":"not_found"}`) reads as "not on your list", and the
/// worker then holds the change as "removed from the list elsewhere". `src/providers/mal.rs`,
/// `parse_my_progress` (now `parse_my_status`): `struct Details` had only the optional
/// `my_list_status`. MAL always sends the work's `id`; it is now required. The details pane's
/// parser requires it too.
#[test]
fn a_body_that_is_not_anime_details_is_not_off_the_list() {
    for body in [&b"{}"[..], br#"{"error":"not_found"}"#, br#"{"data":[]}"#] {
        for kind in MediaKind::ALL {
            assert!(
                parse_my_status(body, kind).is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
            assert!(
                parse_details(body, kind).is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}

/// FOUND: config errors span several lines when a string in the file holds a line break: the
/// `[keys]` messages (`src/config/keymap.rs`, `KeyMap::from_table`: `{name}` and `"{s}"`), the URL
/// messages (`src/config/mod.rs`, `parse_url`: `"{text}"` — `Url::parse` itself drops the line break,
/// so the URL is accepted or refused on other grounds) and toml's own `unknown field` message. Quote
/// them with `{:?}` (or `escape_default`) instead.
#[test]
fn config_errors_are_one_line_even_with_escapes() {
    for text in [
        "[keys]\nup = \"a\\nb\"\n",
        "[keys]\n\"up\\n\" = \"k\"\n",
        "[mal]\nclient_id = \"x\"\napi_url = \"ftp://x\\ny\"\n",
        "[mal]\n\"client_id\\n\" = \"x\"\n",
    ] {
        let msg = Config::parse(Path::new(CONFIG_PATH), text)
            .unwrap_err()
            .to_string();
        assert!(!msg.contains('\n'), "{text:?} gives {msg:?}");
    }
}

/// FOUND: a redirect address pasted without its scheme (what a browser's address bar shows) is
/// taken as a bare code, whatever its state: `src/auth/redirect.rs`, `parse_pasted` only reads an
/// address that contains `://` or starts with `/` or `?`. The "code" then fails at the token
/// endpoint with a misleading "login code was refused". Anything with `?`, `&`, `=` or `/` cannot
/// be a bare code: read it as `http://{input}` (or refuse it).
#[test]
fn pasted_address_without_scheme_is_read_as_an_address() {
    for input in [
        "127.0.0.1:53682/callback?code=abc&state=other",
        "localhost:53682/callback?code=abc&state=other",
        "code=abc&state=other",
    ] {
        assert!(parse_pasted(input, "s1").is_err(), "{input}");
    }
    assert_eq!(
        parse_pasted("127.0.0.1:53682/callback?code=abc&state=s1", "s1").ok(),
        Some("abc".to_string())
    );
}

/// FOUND: a 2xx token answer that has its access token but another field of an unexpected type
/// (`"expires_in": "3600"`, `3600.0` or `-1`, `"refresh_token": 5`) fails the whole login with "no
/// access_token in the answer", which is untrue. `src/auth/oauth.rs`, `parse_token_response`: the
/// `serde_json::from_slice::<TokenBody>` error is mapped to that one sentence. Some servers send
/// `expires_in` as a string; reading it leniently (unknown → an hour, as for a missing one) or at
/// least saying which field is unreadable would fix it.
#[test]
fn a_token_answer_with_an_odd_field_is_not_called_tokenless() {
    for body in [
        r#"{"access_token":"AT-0123456789","expires_in":"3600"}"#,
        r#"{"access_token":"AT-0123456789","expires_in":3600.0}"#,
        r#"{"access_token":"AT-0123456789","expires_in":-1}"#,
        r#"{"access_token":"AT-0123456789","refresh_token":5}"#,
    ] {
        if let Err(e) = parse_token_response(200, body.as_bytes(), None) {
            let msg = e.to_string();
            assert!(!msg.contains("no access_token"), "{body}: {msg}");
        }
    }
}
