//! MangaDex v5: the addresses asked, the bodies sent, and pure readers of the answers.
//!
//! MangaDex's answers come from PHP, which writes an empty map as `[]` and a map whose only key is
//! `"0"` as a one-element array: every map here is read from either form ([`Loose`],
//! [`Localized`]). Chapter and volume numbers are strings ("10.5"), sometimes missing (`"none"`,
//! `null`). Read markers are chapter UUIDs: a manga's progress is the position of the furthest
//! read chapter in the order the aggregate gives ([`order_chapters`], [`progress`]).

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Value, json};

use super::ids;
use crate::domain::{ListEntry, ListState, Media, MediaKind, Patch, Status};
use crate::providers::{Details, Found, ProviderError, looks_like_html, one_line};

/// Where covers are served from for the real API.
pub const UPLOADS_URL: &str = "https://uploads.mangadex.org";
/// Titles asked for at once (`GET /manga?ids[]=…`, `GET /manga/read?ids[]=…`): MangaDex's largest
/// page.
pub const BATCH: usize = 100;
/// Chapter ids sent in one `POST /manga/{id}/read`: MangaDex limits its body to 10 KB, about 256
/// UUIDs; 250 leave room for the keys.
pub const READ_BATCH: usize = 250;
/// Results asked for per search.
pub const SEARCH_LIMIT: u32 = 20;
/// The longest search query sent.
pub const MAX_QUERY_CHARS: usize = 100;
/// Every content rating: without them MangaDex leaves pornographic titles out of lists and
/// searches.
pub const CONTENT_RATINGS: [&str; 4] = ["safe", "suggestive", "erotica", "pornographic"];

// ---------------------------------------------------------------------------------------------
// Reading statuses

/// A reading status as MangaDex keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ReadingStatus {
    Reading,
    OnHold,
    PlanToRead,
    Dropped,
    ReReading,
    Completed,
}

impl ReadingStatus {
    pub const ALL: [ReadingStatus; 6] = [
        ReadingStatus::Reading,
        ReadingStatus::OnHold,
        ReadingStatus::PlanToRead,
        ReadingStatus::Dropped,
        ReadingStatus::ReReading,
        ReadingStatus::Completed,
    ];

    /// MangaDex's word for it.
    pub fn word(self) -> &'static str {
        match self {
            ReadingStatus::Reading => "reading",
            ReadingStatus::OnHold => "on_hold",
            ReadingStatus::PlanToRead => "plan_to_read",
            ReadingStatus::Dropped => "dropped",
            ReadingStatus::ReReading => "re_reading",
            ReadingStatus::Completed => "completed",
        }
    }

    pub fn from_word(word: &str) -> Option<ReadingStatus> {
        let word = word.trim();
        ReadingStatus::ALL
            .into_iter()
            .find(|s| s.word().eq_ignore_ascii_case(word))
    }

    /// malt's status (re-reading is "current" with the re-reading flag).
    pub fn status(self) -> Status {
        match self {
            ReadingStatus::Reading | ReadingStatus::ReReading => Status::Current,
            ReadingStatus::OnHold => Status::OnHold,
            ReadingStatus::PlanToRead => Status::Planning,
            ReadingStatus::Dropped => Status::Dropped,
            ReadingStatus::Completed => Status::Completed,
        }
    }

    pub fn repeating(self) -> bool {
        self == ReadingStatus::ReReading
    }

    pub fn from_status(status: Status) -> ReadingStatus {
        match status {
            Status::Current => ReadingStatus::Reading,
            Status::Completed => ReadingStatus::Completed,
            Status::OnHold => ReadingStatus::OnHold,
            Status::Dropped => ReadingStatus::Dropped,
            Status::Planning => ReadingStatus::PlanToRead,
        }
    }
}

/// The reading status a patch sets, if any. MangaDex keeps re-reading as a status of its own:
/// turning it on is `re_reading` (over "current", "completed" or no status); turning it off
/// without another status is `reading`.
pub fn patch_status(patch: &Patch) -> Option<ReadingStatus> {
    match (patch.status, patch.repeating) {
        (None | Some(Status::Current | Status::Completed), Some(true)) => {
            Some(ReadingStatus::ReReading)
        }
        (None, Some(false)) => Some(ReadingStatus::Reading),
        (None, None) => None,
        (Some(s), _) => Some(ReadingStatus::from_status(s)),
    }
}

// ---------------------------------------------------------------------------------------------
// Addresses and bodies

/// `base` with `segments` added to its path (whether or not it ends in a slash), no query.
pub fn endpoint(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    let mut path = base.path().trim_end_matches('/').to_string();
    for s in segments {
        path.push('/');
        path.push_str(s);
    }
    url.set_path(&path);
    url.set_query(None);
    url.set_fragment(None);
    url
}

fn add_ratings(url: &mut Url) {
    let mut q = url.query_pairs_mut();
    for r in CONTENT_RATINGS {
        q.append_pair("contentRating[]", r);
    }
}

/// `GET /manga/status`: every title on the list with its reading status.
pub fn statuses_url(base: &Url) -> Url {
    endpoint(base, &["manga", "status"])
}

/// `GET /manga?ids[]=…`: up to [`BATCH`] titles, with their cover, whatever their rating.
pub fn manga_batch_url(base: &Url, ids: &[String]) -> Url {
    let mut url = endpoint(base, &["manga"]);
    {
        let mut q = url.query_pairs_mut();
        for id in ids {
            q.append_pair("ids[]", id);
        }
        q.append_pair("limit", &BATCH.to_string());
        q.append_pair("includes[]", "cover_art");
    }
    add_ratings(&mut url);
    url
}

/// `GET /manga/read?ids[]=…&grouped=true`: the read markers of up to [`BATCH`] titles.
pub fn read_batch_url(base: &Url, ids: &[String]) -> Url {
    let mut url = endpoint(base, &["manga", "read"]);
    {
        let mut q = url.query_pairs_mut();
        for id in ids {
            q.append_pair("ids[]", id);
        }
        q.append_pair("grouped", "true");
    }
    url
}

/// `GET /manga/{id}/aggregate?translatedLanguage[]=…`: the volumes and chapters out in the
/// configured languages.
pub fn aggregate_url(base: &Url, manga: &str, languages: &[String]) -> Url {
    let mut url = endpoint(base, &["manga", manga, "aggregate"]);
    {
        let mut q = url.query_pairs_mut();
        for l in languages {
            q.append_pair("translatedLanguage[]", l);
        }
    }
    url
}

/// `GET`/`POST /manga/{id}/status`.
pub fn status_url(base: &Url, manga: &str) -> Url {
    endpoint(base, &["manga", manga, "status"])
}

/// `GET`/`POST /manga/{id}/read`.
pub fn read_url(base: &Url, manga: &str) -> Url {
    endpoint(base, &["manga", manga, "read"])
}

/// A query as sent: trimmed, at most [`MAX_QUERY_CHARS`]; `None` when nothing is left.
pub fn search_query(query: &str) -> Option<String> {
    let q: String = query.trim().chars().take(MAX_QUERY_CHARS).collect();
    let q = q.trim_end();
    (!q.is_empty()).then(|| q.to_string())
}

/// `GET /manga?title=…`: the best matches first, whatever their rating.
pub fn search_url(base: &Url, query: &str) -> Url {
    let mut url = endpoint(base, &["manga"]);
    url.query_pairs_mut()
        .append_pair("title", query)
        .append_pair("limit", &SEARCH_LIMIT.to_string())
        .append_pair("includes[]", "cover_art")
        .append_pair("order[relevance]", "desc");
    add_ratings(&mut url);
    url
}

/// `GET /manga/{id}?includes[]=cover_art&includes[]=author&includes[]=artist`: the cover, and
/// the names of who wrote and who drew it (without the includes only their ids come).
pub fn details_url(base: &Url, manga: &str) -> Url {
    let mut url = endpoint(base, &["manga", manga]);
    url.query_pairs_mut()
        .append_pair("includes[]", "cover_art")
        .append_pair("includes[]", "author")
        .append_pair("includes[]", "artist");
    url
}

/// The body of `POST /manga/{id}/status` (`null` takes the title off the list).
pub fn status_body(status: Option<ReadingStatus>) -> Value {
    json!({ "status": status.map(ReadingStatus::word) })
}

/// The chapters to mark read and unread for a progress change.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadChange {
    pub read: Vec<String>,
    pub unread: Vec<String>,
}

impl ReadChange {
    pub fn is_empty(&self) -> bool {
        self.read.is_empty() && self.unread.is_empty()
    }
}

/// A progress change as the requests that carry it, in the order to send them, each at most
/// [`READ_BATCH`] ids: chapters to mark read from the first (so each request that lands moves the
/// progress up to where it ends), chapters to mark unread from the last (so each moves it down).
/// Stopped between two of them, the list holds a progress between the two counts, and what is
/// still missing is the [`read_change`] from there.
pub fn read_parts(change: &ReadChange) -> Vec<ReadChange> {
    let read = change.read.chunks(READ_BATCH).map(|ids| ReadChange {
        read: ids.to_vec(),
        unread: Vec::new(),
    });
    let unread = change.unread.rchunks(READ_BATCH).map(|ids| ReadChange {
        read: Vec::new(),
        unread: ids.to_vec(),
    });
    read.chain(unread).collect()
}

/// The body of `POST /manga/{id}/read`: only the lists that hold something.
pub fn read_body(change: &ReadChange) -> Value {
    let mut body = serde_json::Map::new();
    if !change.read.is_empty() {
        body.insert("chapterIdsRead".into(), json!(change.read));
    }
    if !change.unread.is_empty() {
        body.insert("chapterIdsUnread".into(), json!(change.unread));
    }
    Value::Object(body)
}

/// Where a title's cover is: on MangaDex's uploads host for the real API, under `api` otherwise
/// (a test server). `size` is 256 or 512 (thumbnails).
pub fn cover_url(api: &Url, manga: &str, file: &str, size: u32) -> String {
    let api_text = api.as_str().trim_end_matches('/');
    let name = format!("{file}.{size}.jpg");
    if api_text == crate::config::MANGADEX_API_URL {
        format!("{UPLOADS_URL}/covers/{manga}/{name}")
    } else {
        format!("{api_text}/covers/{manga}/{name}")
    }
}

// ---------------------------------------------------------------------------------------------
// Answers: errors

/// What a request brought back.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// 404, with MangaDex's words.
    NotFound(String),
    Failed(ProviderError),
}

/// MangaDex's own words from an error body (`{"result":"error","errors":[{"title","detail"}]}`):
/// the first error's `TITLE: DETAIL`, on one line without control characters.
pub fn error_words(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let errors = value.get("errors")?.as_array()?;
    errors.iter().find_map(|e| {
        let text = |k: &str| {
            e.get(k)
                .and_then(Value::as_str)
                .map(clean)
                .filter(|t| !t.is_empty())
        };
        match (text("title"), text("detail")) {
            (Some(t), Some(d)) if t != d => Some(format!("{t}: {d}")),
            (Some(t), _) => Some(t),
            (None, Some(d)) => Some(d),
            (None, None) => None,
        }
    })
}

/// A server's text on one line, without control characters (they would reach the log).
fn clean(text: &str) -> String {
    one_line(&text.replace(char::is_control, " "))
}

fn mentions_captcha(body: &[u8]) -> bool {
    body.windows(7).any(|w| w.eq_ignore_ascii_case(b"captcha"))
}

/// Reads an answer's status: what to do with the body, or why it failed. `wait` is the pause the
/// rate-limit headers asked for; `captcha` whether `X-Captcha-Sitekey` came with it.
pub fn classify(status: u16, wait: Option<Duration>, captcha: bool, body: &[u8]) -> Outcome {
    use Outcome::Failed;
    if (200..300).contains(&status) {
        return Outcome::Ok;
    }
    let html = looks_like_html(body);
    let words = if html { None } else { error_words(body) };
    let said = |fallback: String| {
        words
            .as_ref()
            .map_or(fallback, |w| format!("MangaDex: {w}"))
    };
    let page = if html { ", an HTML page" } else { "" };
    match status {
        401 => Failed(ProviderError::SessionExpired),
        403 if captcha || mentions_captcha(body) => Failed(ProviderError::Server(
            "MangaDex asks for a captcha: open mangadex.org in a browser, solve it, then try again"
                .into(),
        )),
        // An HTML page is a proxy's refusal (it may pass); MangaDex's own refusal is for good.
        403 if html => Failed(ProviderError::Server(
            "MangaDex refused the request (403, an HTML page); will try again".into(),
        )),
        403 => Failed(ProviderError::Rejected(said(
            "MangaDex refused the request (403 Forbidden)".into(),
        ))),
        404 => Outcome::NotFound(said("MangaDex: not found (404)".into())),
        429 => Failed(ProviderError::Throttled {
            wait,
            message: match wait {
                Some(w) => format!(
                    "MangaDex asks to slow down (429); waiting {} s",
                    w.as_secs().max(1)
                ),
                None => "MangaDex asks to slow down (429)".into(),
            },
        }),
        s if s >= 500 => Failed(ProviderError::Server(match &words {
            Some(w) => format!("MangaDex is having trouble (HTTP {s}: {w})"),
            None => format!("MangaDex is having trouble (HTTP {s}{page})"),
        })),
        s if s >= 400 => Failed(ProviderError::Rejected(said(format!(
            "MangaDex refused the request (HTTP {s}{page})"
        )))),
        s => Failed(ProviderError::BadResponse(format!(
            "MangaDex answered HTTP {s}{page}"
        ))),
    }
}

/// Why serde refused a body, without quoting the body.
fn reason(e: &serde_json::Error) -> String {
    let what = match e.classify() {
        serde_json::error::Category::Io => "cut off",
        serde_json::error::Category::Syntax => "not JSON",
        serde_json::error::Category::Data => "unexpected fields",
        serde_json::error::Category::Eof => "cut off",
    };
    format!("{what} at line {} column {}", e.line(), e.column())
}

fn bad(what: &str, body: &[u8], why: impl fmt::Display) -> ProviderError {
    ProviderError::BadResponse(if looks_like_html(body) {
        format!("MangaDex sent an HTML page instead of {what}")
    } else {
        format!("MangaDex sent {what} malt cannot read ({why})")
    })
}

fn decode<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T, ProviderError> {
    serde_json::from_slice(body).map_err(|e| bad(what, body, reason(&e)))
}

/// The field `key` of a JSON object body: `Ok(None)` when the object lacks it (`null` is
/// `Some(Value::Null)`), an error when the body is not an object.
fn field(body: &[u8], what: &str, key: &str) -> Result<Option<Value>, ProviderError> {
    let mut object: serde_json::Map<String, Value> = decode(body, what)?;
    Ok(object.remove(key))
}

// ---------------------------------------------------------------------------------------------
// Maps that may come as arrays

/// A map's values (or an array's elements) in the order sent; an element that is not a `T` is left
/// out; `null`, `[]`, `{}` and any other type read as none.
#[derive(Clone, Debug, PartialEq)]
pub struct Loose<T>(pub Vec<T>);

impl<T> Default for Loose<T> {
    fn default() -> Self {
        Loose(Vec::new())
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Loose<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: DeserializeOwned> Visitor<'de> for V<T> {
            type Value = Loose<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map or an array")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some((_, v)) = map.next_entry::<de::IgnoredAny, Value>()? {
                    out.extend(T::deserialize(v).ok());
                }
                Ok(Loose(out))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = seq.next_element::<Value>()? {
                    out.extend(T::deserialize(v).ok());
                }
                Ok(Loose(out))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Loose(Vec::new()))
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Loose(Vec::new()))
            }
            fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
                d.deserialize_any(self)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Loose(Vec::new()))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Loose(Vec::new()))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Loose(Vec::new()))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Loose(Vec::new()))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Loose(Vec::new()))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// Text in several languages (`{"en": "…", "ja-ro": "…"}`), in the order sent. Also read from an
/// array of such maps (`altTitles`), and from `[]` (PHP's empty map). Values that are not text are
/// left out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Localized(pub Vec<(String, String)>);

impl Localized {
    /// The text in `lang` (the first such one), when it says something.
    pub fn get(&self, lang: &str) -> Option<&str> {
        self.0
            .iter()
            .filter(|(l, _)| l.eq_ignore_ascii_case(lang))
            .map(|(_, t)| t.trim())
            .find(|t| !t.is_empty())
    }

    /// The first text that says something.
    pub fn first(&self) -> Option<&str> {
        self.0.iter().map(|(_, t)| t.trim()).find(|t| !t.is_empty())
    }
}

impl<'de> Deserialize<'de> for Localized {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        fn push(out: &mut Vec<(String, String)>, lang: String, v: Value) {
            if let Value::String(text) = v {
                out.push((lang, text));
            }
        }
        impl<'de> Visitor<'de> for V {
            type Value = Localized;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of language codes to text")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Localized, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    push(&mut out, k, v);
                }
                Ok(Localized(out))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Localized, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = seq.next_element::<Value>()? {
                    if let Value::Object(map) = v {
                        for (k, v) in map {
                            push(&mut out, k, v);
                        }
                    }
                }
                Ok(Localized(out))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Localized, E> {
                Ok(Localized::default())
            }
            fn visit_none<E: de::Error>(self) -> Result<Localized, E> {
                Ok(Localized::default())
            }
            fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Localized, D2::Error> {
                d.deserialize_any(self)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Localized, E> {
                Ok(Localized::default())
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Localized, E> {
                Ok(Localized::default())
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Localized, E> {
                Ok(Localized::default())
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Localized, E> {
                Ok(Localized::default())
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Localized, E> {
                Ok(Localized::default())
            }
        }
        d.deserialize_any(V)
    }
}

/// A string or a number as text, trimmed; `None` for anything else or nothing.
fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A UUID as MangaDex writes it, or the trimmed text when it is not one (kept so it still
/// matches itself).
fn id_of(text: &str) -> String {
    ids::normalize(text).unwrap_or_else(|| text.trim().to_string())
}

// ---------------------------------------------------------------------------------------------
// Answers: the list

/// `GET /manga/status`: every title with a status, and how many could not be read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Statuses {
    pub list: Vec<(String, ReadingStatus)>,
    pub unreadable: usize,
}

/// Reads `GET /manga/status` (`statuses` is a map of UUID to status; `[]` when the list is empty).
pub fn parse_statuses(body: &[u8]) -> Result<Statuses, ProviderError> {
    let Some(statuses) = field(body, "a reading list", "statuses")? else {
        return Err(bad("a reading list", body, "no statuses in it"));
    };
    let mut out = Statuses::default();
    let pairs: Vec<(String, Value)> = match statuses {
        Value::Object(map) => map.into_iter().collect(),
        Value::Array(items) if items.is_empty() => Vec::new(),
        Value::Null => Vec::new(),
        _ => {
            return Err(bad(
                "a reading list",
                body,
                "statuses is not a map of titles",
            ));
        }
    };
    for (id, status) in pairs {
        let read = ids::normalize(&id).zip(status.as_str().and_then(ReadingStatus::from_word));
        match read {
            Some(pair) => out.list.push(pair),
            None => {
                tracing::warn!("skipping a MangaDex reading status malt cannot read");
                out.unreadable += 1;
            }
        }
    }
    Ok(out)
}

/// Reads `GET /manga/{id}/status`: the title's status, `None` when it is not on the list.
pub fn parse_status(body: &[u8]) -> Result<Option<ReadingStatus>, ProviderError> {
    // Required (`null` when not listed): an answer without it is not this one.
    match field(body, "a reading status", "status")? {
        None => Err(bad("a reading status", body, "no status in it")),
        Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => ReadingStatus::from_word(&s)
            .map(Some)
            .ok_or_else(|| bad("a reading status", body, "an unknown status")),
        Some(_) => Err(bad("a reading status", body, "an unknown status")),
    }
}

fn strings(v: &Value) -> HashSet<String> {
    match v {
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .map(id_of)
            .filter(|s| !s.is_empty())
            .collect(),
        Value::String(s) if !s.trim().is_empty() => HashSet::from([id_of(s)]),
        _ => HashSet::new(),
    }
}

/// Reads `GET /manga/{id}/read`: the chapters marked read.
pub fn parse_read(body: &[u8]) -> Result<HashSet<String>, ProviderError> {
    match field(body, "read markers", "data")? {
        Some(Value::Object(groups)) => Ok(groups.values().flat_map(strings).collect()),
        Some(v @ Value::Array(_)) => Ok(strings(&v)),
        Some(Value::Null) => Ok(HashSet::new()),
        _ => Err(bad("read markers", body, "no data in them")),
    }
}

/// Reads `GET /manga/read?ids[]=…&grouped=true`: the chapters marked read, per title asked for
/// (a title without any is left out). An array instead of the map is taken for a single title
/// asked for, and `[]` for no markers at all.
pub fn parse_read_grouped(
    body: &[u8],
    asked: &[String],
) -> Result<HashMap<String, HashSet<String>>, ProviderError> {
    match field(body, "read markers", "data")? {
        Some(Value::Object(groups)) => Ok(groups
            .into_iter()
            .map(|(manga, v)| (id_of(&manga), strings(&v)))
            .collect()),
        Some(Value::Array(items)) if items.is_empty() => Ok(HashMap::new()),
        Some(v @ Value::Array(_)) if asked.len() == 1 => {
            Ok(HashMap::from([(id_of(&asked[0]), strings(&v))]))
        }
        Some(Value::Null) => Ok(HashMap::new()),
        Some(Value::Array(_)) => Err(bad("read markers", body, "not grouped by title")),
        _ => Err(bad("read markers", body, "no data in them")),
    }
}

// ---------------------------------------------------------------------------------------------
// Chapters and progress

/// A chapter as the aggregate lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawChapter {
    /// `None` for "none" or missing.
    pub volume: Option<String>,
    pub chapter: Option<String>,
    pub id: String,
    /// Other uploads of the same chapter (other groups, other languages).
    pub others: Vec<String>,
}

/// A chapter in reading order: the id that stands for it, and every other upload of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chapter {
    pub volume: Option<String>,
    pub number: Option<String>,
    pub id: String,
    pub others: Vec<String>,
}

impl Chapter {
    /// Every upload of the chapter, the one that stands for it first.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.id.as_str()).chain(self.others.iter().map(String::as_str))
    }

    /// Read when any upload of it is marked read.
    pub fn is_read(&self, read: &HashSet<String>) -> bool {
        self.ids().any(|id| read.contains(id))
    }
}

/// A volume or chapter number as given: `None` for nothing, `""` or `"none"`.
fn number_text(v: Option<&Value>) -> Option<String> {
    let text = text_of(v?)?;
    (!text.eq_ignore_ascii_case("none") && !text.eq_ignore_ascii_case("null")).then_some(text)
}

/// Reads `GET /manga/{id}/aggregate` into reading order ([`order_chapters`]). Volumes and
/// chapters may be maps or arrays; a chapter without an id is left out.
pub fn parse_aggregate(body: &[u8]) -> Result<Vec<Chapter>, ProviderError> {
    let Some(volumes) = field(body, "a chapter list", "volumes")? else {
        return Err(bad("a chapter list", body, "no volumes in it"));
    };
    let entries = |v: Value| -> Vec<(Option<String>, Value)> {
        match v {
            Value::Object(map) => map.into_iter().map(|(k, v)| (Some(k), v)).collect(),
            Value::Array(items) => items.into_iter().map(|v| (None, v)).collect(),
            _ => Vec::new(),
        }
    };
    let mut raw = Vec::new();
    for (key, volume) in entries(volumes) {
        let Value::Object(mut volume) = volume else {
            continue;
        };
        let number = match volume.get("volume") {
            Some(v) => number_text(Some(v)),
            None => key.and_then(|k| number_text(Some(&Value::String(k)))),
        };
        let chapters = volume.remove("chapters").unwrap_or(Value::Null);
        for (key, chapter) in entries(chapters) {
            let Some(id) = chapter.get("id").and_then(Value::as_str).map(id_of) else {
                continue;
            };
            if id.is_empty() {
                continue;
            }
            let chapter_number = match chapter.get("chapter") {
                Some(v) => number_text(Some(v)),
                None => key.and_then(|k| number_text(Some(&Value::String(k)))),
            };
            let others = match chapter.get("others") {
                Some(Value::Array(items)) => items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(id_of)
                    .filter(|s| !s.is_empty())
                    .collect(),
                _ => Vec::new(),
            };
            raw.push(RawChapter {
                volume: number.clone(),
                chapter: chapter_number,
                id,
                others,
            });
        }
    }
    Ok(order_chapters(raw))
}

/// How a number sorts: numbered ones first by value ("10" < "10.5" < "10a" < "11"), then the
/// others by their text.
struct NumberKey<'a> {
    /// No leading number at all (`None`, "Extra").
    missing: bool,
    value: f64,
    text: &'a str,
}

impl<'a> NumberKey<'a> {
    fn of(text: Option<&'a str>) -> NumberKey<'a> {
        let Some(text) = text else {
            return NumberKey {
                missing: true,
                value: 0.0,
                text: "",
            };
        };
        let value = leading_number(text);
        NumberKey {
            missing: value.is_none(),
            value: value.unwrap_or(0.0),
            text,
        }
    }

    fn cmp(&self, other: &NumberKey) -> Ordering {
        self.missing
            .cmp(&other.missing)
            .then(self.value.total_cmp(&other.value))
            .then(self.text.cmp(other.text))
    }
}

/// The number a chapter's text starts with ("10.5" → 10.5, "10a" → 10, "Extra" → none).
fn leading_number(text: &str) -> Option<f64> {
    let text = text.trim();
    if let Ok(v) = text.parse::<f64>()
        && v.is_finite()
    {
        return Some(v);
    }
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    if digits == 0 {
        return None;
    }
    let mut end = digits;
    let rest = &text[digits..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let more = fraction
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(fraction.len());
        if more > 0 {
            end += 1 + more;
        }
    }
    text[..end].parse::<f64>().ok().filter(|v| v.is_finite())
}

/// The key under which two listings of one chapter are recognised: the exact number ("10" and
/// "10.0" alike); `None` for chapters without one.
fn same_chapter_key(text: Option<&str>) -> Option<String> {
    let v = text?.trim().parse::<f64>().ok().filter(|v| v.is_finite())?;
    Some(format!("{v}"))
}

/// Puts chapters in reading order: by volume (numbered ones by value, "none" last), then by
/// chapter number (numerically: "10.5" between 10 and 11; chapters without a number after the
/// numbered ones), then by id (stable whatever order they came in).
///
/// A chapter listed both in a numbered volume and without a volume (an upload that did not say its
/// volume) is one chapter: the later listing's uploads become `others` of the first. An upload
/// listed twice counts once.
pub fn order_chapters(mut raw: Vec<RawChapter>) -> Vec<Chapter> {
    raw.sort_by(|a, b| {
        NumberKey::of(a.volume.as_deref())
            .cmp(&NumberKey::of(b.volume.as_deref()))
            .then_with(|| {
                NumberKey::of(a.chapter.as_deref()).cmp(&NumberKey::of(b.chapter.as_deref()))
            })
            .then_with(|| a.id.cmp(&b.id))
            .then_with(|| a.others.cmp(&b.others))
    });
    let mut out: Vec<Chapter> = Vec::with_capacity(raw.len());
    let mut seen: HashSet<String> = HashSet::new();
    let mut by_number: HashMap<String, usize> = HashMap::new();
    for c in raw {
        let uploads: Vec<String> = std::iter::once(c.id)
            .chain(c.others)
            .filter(|id| !id.is_empty() && seen.insert(id.clone()))
            .collect();
        let Some((first, rest)) = uploads.split_first() else {
            continue;
        };
        let key = same_chapter_key(c.chapter.as_deref());
        if let Some(k) = &key
            && let Some(&i) = by_number.get(k)
            && (c.volume.is_none() || out[i].volume.is_none())
        {
            out[i].others.extend(uploads);
            continue;
        }
        if let Some(k) = key {
            by_number.entry(k).or_insert(out.len());
        }
        out.push(Chapter {
            volume: c.volume,
            number: c.chapter,
            id: first.clone(),
            others: rest.to_vec(),
        });
    }
    out
}

/// The number of chapters in the order; `None` when there are none (nothing out in the
/// configured languages, or an empty aggregate).
pub fn total(chapters: &[Chapter]) -> Option<u32> {
    (!chapters.is_empty()).then(|| u32::try_from(chapters.len()).unwrap_or(u32::MAX))
}

/// The 1-based position of the furthest chapter read (0: none read).
pub fn progress(chapters: &[Chapter], read: &HashSet<String>) -> u32 {
    chapters
        .iter()
        .rposition(|c| c.is_read(read))
        .map_or(0, |i| u32::try_from(i + 1).unwrap_or(u32::MAX))
}

/// The markers that move the progress to `to` (at most the number of chapters): going up, the
/// chapters after the furthest read up to `to` are marked read (one id each); going down, every
/// read upload of the chapters after `to` up to the furthest read is marked unread. Chapters
/// left unread below the furthest read (gaps) are left as they are.
pub fn read_change(chapters: &[Chapter], read: &HashSet<String>, to: u32) -> ReadChange {
    let from = progress(chapters, read) as usize;
    let to = (to as usize).min(chapters.len());
    let mut change = ReadChange::default();
    match to.cmp(&from) {
        Ordering::Greater => {
            change.read = chapters[from..to].iter().map(|c| c.id.clone()).collect();
        }
        Ordering::Less => {
            change.unread = chapters[to..from]
                .iter()
                .flat_map(Chapter::ids)
                .filter(|id| read.contains(*id))
                .map(str::to_string)
                .collect();
        }
        Ordering::Equal => {}
    }
    change
}

/// What the list holds for a title: its status, and the progress its read markers make.
pub fn state(
    status: Option<ReadingStatus>,
    chapters: &[Chapter],
    read: &HashSet<String>,
) -> ListState {
    ListState {
        status: status.map(ReadingStatus::status),
        progress: progress(chapters, read),
        repeating: status.is_some_and(ReadingStatus::repeating),
        ..ListState::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Titles

/// What malt shows of a title.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manga {
    /// The UUID.
    pub id: String,
    pub title: String,
    /// The English title, when the title shown is not.
    pub alt_title: Option<String>,
    pub description: Option<String>,
    pub year: Option<i32>,
    /// Publication status ("ongoing", "completed", "hiatus", "cancelled").
    pub status: Option<String>,
    pub tags: Vec<String>,
    pub last_chapter: Option<String>,
    pub last_volume: Option<String>,
    pub original_language: Option<String>,
    /// The cover's file name (with `includes[]=cover_art`).
    pub cover_file: Option<String>,
    /// Authors and artists (with `includes[]=author` and `includes[]=artist`).
    pub authors: Vec<String>,
}

#[derive(Deserialize)]
struct RawManga {
    id: String,
    #[serde(default)]
    attributes: Option<RawAttributes>,
    #[serde(default)]
    relationships: Loose<Value>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RawAttributes {
    title: Localized,
    alt_titles: Localized,
    description: Localized,
    year: Value,
    status: Value,
    tags: Loose<Value>,
    last_chapter: Value,
    last_volume: Value,
    original_language: Value,
}

impl RawManga {
    fn read(self) -> Option<Manga> {
        let id = ids::normalize(&self.id)?;
        let a = self.attributes.unwrap_or_default();
        let english = a.title.get("en");
        let title = english
            .or_else(|| a.title.first())
            .or_else(|| a.alt_titles.get("en"))
            .or_else(|| a.alt_titles.first())
            .map_or_else(|| format!("MangaDex title {}", &id[..8]), str::to_string);
        let alt_title = match english {
            Some(_) => None,
            None => a
                .alt_titles
                .0
                .iter()
                .filter(|(l, _)| l.eq_ignore_ascii_case("en"))
                .map(|(_, t)| t.trim())
                .find(|t| !t.is_empty() && *t != title)
                .map(str::to_string),
        };
        let description = a
            .description
            .get("en")
            .or_else(|| a.description.first())
            .map(str::to_string);
        let year = match &a.year {
            Value::Number(n) => n.as_i64().and_then(|y| i32::try_from(y).ok()),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
        .filter(|y| *y > 0);
        // Genres first, then themes, formats and the rest, each in the order given.
        let mut tags: Vec<(u8, String)> = a
            .tags
            .0
            .iter()
            .filter_map(|t| {
                let attributes = t.get("attributes")?;
                let name = Localized::deserialize(attributes.get("name")?).ok()?;
                let name = name.get("en").or_else(|| name.first())?.to_string();
                let rank = match attributes.get("group").and_then(Value::as_str) {
                    Some("genre") => 0,
                    Some("theme") => 1,
                    Some("format") => 2,
                    _ => 3,
                };
                Some((rank, clean(&name)))
            })
            .collect();
        tags.sort_by_key(|(rank, _)| *rank);
        let mut cover_file = None;
        let mut authors: Vec<String> = Vec::new();
        for r in &self.relationships.0 {
            let kind = r.get("type").and_then(Value::as_str).unwrap_or("");
            let attributes = r.get("attributes");
            match kind {
                "cover_art" if cover_file.is_none() => {
                    cover_file = attributes
                        .and_then(|a| a.get("fileName"))
                        .and_then(Value::as_str)
                        .map(str::trim)
                        // A file name, never a path or an address.
                        .filter(|f| !f.is_empty() && !f.contains(['/', '\\', '?', '#']))
                        .map(str::to_string);
                }
                "author" | "artist" => {
                    if let Some(name) = attributes.and_then(|a| a.get("name")).and_then(text_of)
                        && !authors.contains(&name)
                    {
                        authors.push(name);
                    }
                }
                _ => {}
            }
        }
        Some(Manga {
            title: clean(&title),
            alt_title: alt_title.map(|t| clean(&t)),
            description,
            year,
            status: text_of(&a.status),
            tags: tags.into_iter().map(|(_, t)| t).collect(),
            last_chapter: text_of(&a.last_chapter),
            last_volume: text_of(&a.last_volume),
            original_language: text_of(&a.original_language),
            cover_file,
            authors,
            id,
        })
    }
}

/// Reads a collection of titles (`GET /manga?…`): those malt can read, and how many it cannot.
pub fn parse_manga_list(body: &[u8]) -> Result<(Vec<Manga>, usize), ProviderError> {
    #[derive(Deserialize)]
    struct Answer {
        data: Loose<Value>,
    }
    #[derive(Deserialize)]
    struct Check {
        /// Required: a body without it is not a collection.
        #[serde(rename = "data")]
        _data: de::IgnoredAny,
    }
    decode::<Check>(body, "a list of titles")?;
    let answer: Answer = decode(body, "a list of titles")?;
    let mut unreadable = 0;
    let mut out = Vec::new();
    for item in answer.data.0 {
        match RawManga::deserialize(item).ok().and_then(RawManga::read) {
            Some(m) => out.push(m),
            None => {
                tracing::warn!("skipping a MangaDex title malt cannot read");
                unreadable += 1;
            }
        }
    }
    Ok((out, unreadable))
}

/// Reads one title (`GET /manga/{id}`).
pub fn parse_manga(body: &[u8]) -> Result<Manga, ProviderError> {
    #[derive(Deserialize)]
    struct Answer {
        data: RawManga,
    }
    let answer: Answer = decode(body, "a title")?;
    answer
        .data
        .read()
        .ok_or_else(|| bad("a title", body, "its id is not a UUID"))
}

/// The list entry of a title: its status, and the progress its read markers make in `chapters`.
pub fn entry(
    manga: &Manga,
    id: u64,
    status: ReadingStatus,
    chapters: &[Chapter],
    read: &HashSet<String>,
    api: &Url,
) -> ListEntry {
    let mut entry = ListEntry {
        total: total(chapters),
        media: media(manga, api),
        ..ListEntry::new(id, MediaKind::Manga, &manga.title, status.status())
    };
    entry.set_state(&state(Some(status), chapters, read));
    entry
}

fn media(manga: &Manga, api: &Url) -> Media {
    Media {
        media_type: Some("manga".into()),
        picture: manga
            .cover_file
            .as_deref()
            .map(|f| cover_url(api, &manga.id, f, 256)),
        schedule: None,
        // Only a completed or cancelled title can be finished by reading its last chapter.
        ongoing: !matches!(manga.status.as_deref(), Some("completed" | "cancelled")),
    }
}

/// A search result: the title as it would be added (plan to read).
pub fn found(manga: &Manga, id: u64, api: &Url) -> Found {
    Found {
        entry: ListEntry {
            media: media(manga, api),
            ..ListEntry::new(id, MediaKind::Manga, &manga.title, Status::Planning)
        },
        year: manga.year,
        mean: None,
    }
}

/// A publication status in words.
pub fn publication_words(status: &str) -> String {
    match status {
        "ongoing" => "publishing".into(),
        "completed" => "finished".into(),
        "hiatus" => "on hiatus".into(),
        "cancelled" => "cancelled".into(),
        other => clean(&other.replace('_', " ")),
    }
}

fn whole_number(text: Option<&str>) -> Option<u32> {
    text?.trim().parse::<u32>().ok().filter(|n| *n > 0)
}

/// What the details pane shows. `chapters`: the count of chapters in the reading order, when
/// known; else the last chapter of a finished work.
pub fn details(manga: &Manga, id: u64, api: &Url, chapters: Option<u32>) -> Details {
    Details {
        kind: Some(MediaKind::Manga),
        id,
        title: manga.title.clone(),
        alt_title: manga.alt_title.clone(),
        synopsis: manga.description.clone(),
        media_type: Some("manga".into()),
        total: chapters.or_else(|| whole_number(manga.last_chapter.as_deref())),
        total_volumes: whole_number(manga.last_volume.as_deref()),
        state: manga.status.as_deref().map(publication_words),
        start_date: manga.year.map(|y| y.to_string()),
        end_date: None,
        mean: None,
        genres: manga.tags.clone(),
        schedule: None,
        picture: manga
            .cover_file
            .as_deref()
            .map(|f| cover_url(api, &manga.id, f, 512)),
    }
}

/// A recorded MangaDex answer: from `tests/fixtures/mangadex` when vendored there, else from the
/// shared notes beside the project.
#[cfg(test)]
pub(crate) fn fixture(name: &str) -> Vec<u8> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::read(root.join("tests/fixtures/mangadex").join(name))
        .or_else(|_| std::fs::read(root.join("../shared/api/fixtures/mangadex").join(name)))
        .unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn api() -> Url {
        Url::parse("https://api.mangadex.org").unwrap()
    }

    fn raw(volume: Option<&str>, chapter: Option<&str>, id: &str, others: &[&str]) -> RawChapter {
        RawChapter {
            volume: volume.map(str::to_string),
            chapter: chapter.map(str::to_string),
            id: id.into(),
            others: others.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn numbers(chapters: &[Chapter]) -> Vec<Option<&str>> {
        chapters.iter().map(|c| c.number.as_deref()).collect()
    }

    fn set(ids: &[&str]) -> HashSet<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn every_fixture_parses() {
        let statuses = parse_statuses(&fixture("manga-status-all.json")).unwrap();
        assert_eq!(statuses.unreadable, 0);
        let mut list = statuses.list.clone();
        list.sort();
        assert_eq!(
            list,
            vec![
                (
                    "2394a5c7-1d2e-461f-acde-18726b9e37d6".to_string(),
                    ReadingStatus::Dropped
                ),
                (
                    "b019ea5d-5fe6-44d4-abbc-f546f210884d".to_string(),
                    ReadingStatus::Reading
                ),
            ]
        );
        assert_eq!(
            parse_status(&fixture("manga-id-status.json")),
            Ok(Some(ReadingStatus::Reading))
        );
        let read = parse_read(&fixture("manga-id-read-markers.json")).unwrap();
        assert_eq!(read.len(), 3);
        assert!(read.contains("00057883-357b-4734-9469-52967e59ef4c"));

        let chapters = parse_aggregate(&fixture("manga-aggregate.json")).unwrap();
        assert_eq!(
            numbers(&chapters),
            vec![Some("0"), Some("1"), Some("2"), Some("3")]
        );
        assert_eq!(chapters[0].id, "01defbd2-ab44-4672-9236-ff71b82774e8");
        assert_eq!(chapters[1].id, "7729dc89-38bd-4e90-a566-e63558d28cfd");
        assert_eq!(chapters[1].others.len(), 2);
        assert_eq!(
            parse_aggregate(&fixture("manga-aggregate-empty-volumes-array.json")),
            Ok(Vec::new())
        );

        let manga = parse_manga(&fixture("manga-entity.json")).unwrap();
        assert_eq!(manga.id, "d86cf65b-5f6c-437d-a0af-19a31f94ec55");
        assert_eq!(manga.title, "Ijiranaide, Nagatoro-san");
        assert_eq!(
            manga.alt_title.as_deref(),
            Some("Don't Toy With Me, Miss Nagatoro!")
        );
        assert!(
            manga
                .description
                .as_deref()
                .unwrap()
                .starts_with("Naoto Hachiouji")
        );
        assert_eq!(manga.year, Some(2017));
        assert_eq!(manga.status.as_deref(), Some("completed"));
        assert_eq!(manga.last_chapter.as_deref(), Some("154"));
        assert_eq!(manga.last_volume.as_deref(), Some("20"));
        assert_eq!(
            manga.cover_file.as_deref(),
            Some("5e4a4e0e-b2a6-4e7e-8e6e-169a8d26c7a8.jpg")
        );
        assert_eq!(manga.authors, vec!["774 (Nanashi)".to_string()]);
        assert_eq!(
            manga.tags,
            vec!["Romance", "Comedy", "Slice of Life", "School Life", "Gyaru"]
        );
        let d = details(&manga, 7, &api(), None);
        assert_eq!(d.total, Some(154));
        assert_eq!(d.total_volumes, Some(20));
        assert_eq!(d.state.as_deref(), Some("finished"));
        assert_eq!(d.start_date.as_deref(), Some("2017"));
        assert_eq!(
            d.picture.as_deref(),
            Some(
                "https://uploads.mangadex.org/covers/d86cf65b-5f6c-437d-a0af-19a31f94ec55/5e4a4e0e-b2a6-4e7e-8e6e-169a8d26c7a8.jpg.512.jpg"
            )
        );

        // The chapter entity is not read by malt, but its embedded manga is a title like any.
        let chapter: Value = serde_json::from_slice(&fixture("chapter-entity.json")).unwrap();
        let embedded = chapter["data"]["relationships"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["type"] == "manga")
            .unwrap();
        let body = json!({"result": "ok", "data": [embedded]}).to_string();
        let (list, unreadable) = parse_manga_list(body.as_bytes()).unwrap();
        assert_eq!(unreadable, 0);
        assert_eq!(
            list[0].title,
            "Don't Toy With Me, Miss Nagatoro!: Comic Anthology"
        );
        assert_eq!(list[0].alt_title, None, "the title is English already");
        assert_eq!(list[0].last_chapter, None, "an empty lastChapter is none");

        // The token answer is read by the shared OAuth reader.
        let tokens = crate::auth::oauth::parse_token_response(
            200,
            &fixture("oauth-token-password-grant-response.json"),
            None,
        )
        .unwrap();
        assert_eq!(tokens.access_token, "sessiontoken");
        assert_eq!(tokens.refresh_token, "refreshtoken");
        assert!((tokens.remaining() - 900).abs() < 60);
    }

    #[test]
    fn aggregate_maps_may_be_arrays_and_numbers_missing() {
        let body = br#"{"result":"ok","volumes":{
            "none":{"volume":"none","count":2,"chapters":{
                "12":{"chapter":"12","id":"c12","others":[],"count":1},
                "none":{"chapter":"none","id":"cx","others":["cx2"],"count":2}}},
            "2":{"volume":"2","count":2,"chapters":[
                {"chapter":"10.5","id":"c105","others":[],"count":1},
                {"chapter":"11","id":"c11","count":1}]},
            "1":{"volume":"1","count":3,"chapters":{
                "10":{"chapter":"10","id":"c10","others":["c10b"],"count":2},
                "9":{"chapter":"9","id":"c9","others":[],"count":1},
                "bad":{"chapter":"8"}}}}}"#;
        let chapters = parse_aggregate(body).unwrap();
        assert_eq!(
            numbers(&chapters),
            vec![
                Some("9"),
                Some("10"),
                Some("10.5"),
                Some("11"),
                Some("12"),
                None
            ]
        );
        assert_eq!(chapters[5].others, vec!["cx2".to_string()]);
        assert_eq!(chapters[4].volume, None);
        // `chapters` as a one-element array (PHP's map with the only key "0"), numbers as JSON
        // numbers, and odd types, all read.
        let body = br#"{"volumes":[{"volume":1,"chapters":[{"chapter":0,"id":"a","others":null}]},
                        {"volume":"2","chapters":"junk"}, 7]}"#;
        let chapters = parse_aggregate(body).unwrap();
        assert_eq!(chapters.len(), 1);
        assert_eq!(chapters[0].number.as_deref(), Some("0"));
        assert_eq!(chapters[0].volume.as_deref(), Some("1"));
        assert_eq!(parse_aggregate(br#"{"volumes":null}"#), Ok(Vec::new()));
        assert_eq!(parse_aggregate(br#"{"volumes":{}}"#), Ok(Vec::new()));
        assert!(matches!(
            parse_aggregate(br#"{"result":"ok"}"#),
            Err(ProviderError::BadResponse(_))
        ));
        assert!(matches!(
            parse_aggregate(b"<html>502</html>"),
            Err(ProviderError::BadResponse(m)) if m.contains("HTML")
        ));
    }

    #[test]
    fn chapters_sort_by_number_with_fractions_and_odd_ones_last() {
        let chapters = order_chapters(vec![
            raw(Some("1"), Some("2"), "b", &[]),
            raw(Some("1"), Some("10"), "j", &[]),
            raw(Some("1"), Some("1"), "a", &[]),
            raw(Some("1"), Some("10a"), "k", &[]),
            raw(Some("1"), Some("9.5"), "i", &[]),
            raw(Some("1"), None, "z2", &[]),
            raw(Some("1"), Some("Extra"), "z1", &[]),
            raw(Some("1"), None, "z0", &[]),
        ]);
        assert_eq!(
            numbers(&chapters),
            vec![
                Some("1"),
                Some("2"),
                Some("9.5"),
                Some("10"),
                Some("10a"),
                None,
                None,
                Some("Extra")
            ]
        );
        // Missing numbers are stable by id.
        assert_eq!(chapters[5].id, "z0");
        assert_eq!(chapters[6].id, "z2");
        // Volumes by value, "none" last, "10" after "9".
        let chapters = order_chapters(vec![
            raw(None, Some("30"), "n", &[]),
            raw(Some("10"), Some("20"), "t", &[]),
            raw(Some("9"), Some("19"), "s", &[]),
        ]);
        assert_eq!(numbers(&chapters), vec![Some("19"), Some("20"), Some("30")]);
    }

    #[test]
    fn a_chapter_listed_without_its_volume_is_one_chapter() {
        let chapters = order_chapters(vec![
            raw(Some("1"), Some("3"), "v3", &["v3b"]),
            raw(None, Some("3"), "n3", &["n3b"]),
            raw(None, Some("3.0"), "n30", &[]),
            raw(None, Some("4"), "n4", &[]),
            // Listed twice: counted once.
            raw(None, Some("5"), "v3", &[]),
        ]);
        assert_eq!(numbers(&chapters), vec![Some("3"), Some("4")]);
        assert_eq!(chapters[0].others, vec!["v3b", "n3", "n3b", "n30"]);
        // Numbered volumes that repeat a number (numbering restarts) stay apart.
        let chapters = order_chapters(vec![
            raw(Some("1"), Some("1"), "a", &[]),
            raw(Some("2"), Some("1"), "b", &[]),
        ]);
        assert_eq!(chapters.len(), 2);
    }

    fn four() -> Vec<Chapter> {
        order_chapters(vec![
            raw(Some("1"), Some("1"), "c1", &["c1b"]),
            raw(Some("1"), Some("2"), "c2", &["c2b"]),
            raw(Some("1"), Some("3"), "c3", &[]),
            raw(Some("1"), Some("4"), "c4", &["c4b", "c4c"]),
        ])
    }

    #[test]
    fn progress_is_the_furthest_chapter_read_by_any_upload() {
        let chapters = four();
        assert_eq!(progress(&chapters, &set(&[])), 0);
        assert_eq!(progress(&chapters, &set(&["c1"])), 1);
        assert_eq!(progress(&chapters, &set(&["c2b"])), 2, "another upload");
        assert_eq!(progress(&chapters, &set(&["c1", "c3"])), 3, "a gap");
        assert_eq!(progress(&chapters, &set(&["elsewhere"])), 0);
        assert_eq!(total(&chapters), Some(4));
        assert_eq!(total(&[]), None);
        let s = state(Some(ReadingStatus::ReReading), &chapters, &set(&["c4c"]));
        assert_eq!(
            (s.status, s.progress, s.repeating),
            (Some(Status::Current), 4, true)
        );
    }

    #[test]
    fn a_progress_change_marks_exactly_the_chapters_between() {
        let chapters = four();
        // Up: the chapters after the furthest read, one id each.
        assert_eq!(
            read_change(&chapters, &set(&["c1"]), 3),
            ReadChange {
                read: vec!["c2".into(), "c3".into()],
                unread: vec![]
            }
        );
        // Up over a gap below: the gap is left alone.
        assert_eq!(
            read_change(&chapters, &set(&["c1", "c3"]), 4).read,
            vec!["c4".to_string()]
        );
        // Beyond the last chapter: up to it.
        assert_eq!(read_change(&chapters, &set(&[]), 9).read.len(), 4);
        // Down: every read upload of the chapters after the new position.
        assert_eq!(
            read_change(&chapters, &set(&["c1", "c2b", "c4", "c4c", "x"]), 1),
            ReadChange {
                read: vec![],
                unread: vec!["c2b".into(), "c4".into(), "c4c".into()]
            }
        );
        assert!(read_change(&chapters, &set(&["c2"]), 2).is_empty());
        assert_eq!(
            read_body(&read_change(&chapters, &set(&["c2"]), 3)),
            json!({"chapterIdsRead": ["c3"]})
        );
        assert_eq!(
            read_body(&read_change(&chapters, &set(&["c2"]), 0)),
            json!({"chapterIdsUnread": ["c2"]})
        );
    }

    #[test]
    fn statuses_read_from_a_map_or_an_empty_array() {
        assert_eq!(
            parse_statuses(br#"{"result":"ok","statuses":[]}"#),
            Ok(Statuses::default())
        );
        let s = parse_statuses(
            br#"{"statuses":{"B019EA5D-5fe6-44d4-abbc-f546f210884d":"re_reading",
                "not-a-uuid":"reading","2394a5c7-1d2e-461f-acde-18726b9e37d6":"binge",
                "01defbd2-ab44-4672-9236-ff71b82774e8":null}}"#,
        )
        .unwrap();
        assert_eq!(
            s.list,
            vec![(
                "b019ea5d-5fe6-44d4-abbc-f546f210884d".to_string(),
                ReadingStatus::ReReading
            )]
        );
        assert_eq!(s.unreadable, 3);
        assert!(parse_statuses(br#"{"result":"ok"}"#).is_err());
        assert!(parse_statuses(br#"{"statuses":["x"]}"#).is_err());
        assert_eq!(parse_status(br#"{"result":"ok","status":null}"#), Ok(None));
        assert!(parse_status(br#"{"result":"ok"}"#).is_err());
        assert!(parse_status(br#"{"status":"binge"}"#).is_err());
    }

    #[test]
    fn statuses_map_both_ways() {
        for s in ReadingStatus::ALL {
            assert_eq!(ReadingStatus::from_word(s.word()), Some(s));
        }
        let p = |status: Option<Status>, repeating: Option<bool>| {
            patch_status(&Patch {
                status,
                repeating,
                ..Patch::default()
            })
        };
        assert_eq!(p(None, None), None);
        assert_eq!(
            p(Some(Status::Planning), None),
            Some(ReadingStatus::PlanToRead)
        );
        assert_eq!(
            p(Some(Status::Current), Some(true)),
            Some(ReadingStatus::ReReading)
        );
        assert_eq!(p(None, Some(true)), Some(ReadingStatus::ReReading));
        assert_eq!(p(None, Some(false)), Some(ReadingStatus::Reading));
        assert_eq!(
            p(Some(Status::Dropped), Some(true)),
            Some(ReadingStatus::Dropped)
        );
        assert_eq!(status_body(None), json!({"status": null}));
        assert_eq!(
            status_body(Some(ReadingStatus::OnHold)),
            json!({"status": "on_hold"})
        );
    }

    #[test]
    fn read_markers_grouped_or_not() {
        let asked = vec![
            "b019ea5d-5fe6-44d4-abbc-f546f210884d".to_string(),
            "2394a5c7-1d2e-461f-acde-18726b9e37d6".to_string(),
        ];
        let got = parse_read_grouped(
            br#"{"result":"ok","data":{"b019ea5d-5fe6-44d4-abbc-f546f210884d":["x","y"]}}"#,
            &asked,
        )
        .unwrap();
        assert_eq!(got[&asked[0]], set(&["x", "y"]));
        assert!(!got.contains_key(&asked[1]));
        assert_eq!(
            parse_read_grouped(br#"{"result":"ok","data":[]}"#, &asked),
            Ok(HashMap::new())
        );
        let one = parse_read_grouped(br#"{"data":["x"]}"#, &asked[..1]).unwrap();
        assert_eq!(one[&asked[0]], set(&["x"]));
        assert!(parse_read_grouped(br#"{"data":["x"]}"#, &asked).is_err());
        assert!(parse_read_grouped(br#"{"result":"ok"}"#, &asked).is_err());
        assert_eq!(
            parse_read(br#"{"data":{"m":["a"],"n":["b"]}}"#),
            Ok(set(&["a", "b"]))
        );
    }

    #[test]
    fn titles_fall_back_and_odd_fields_do_not_lose_the_title() {
        let body = br#"{"result":"ok","data":[
            {"id":"b019ea5d-5fe6-44d4-abbc-f546f210884d","attributes":{"title":[],
              "altTitles":[{"ja":"x"},{"en":"English"}],"description":[],"year":"1999",
              "tags":{"0":{"attributes":{"name":{"en":"Action"},"group":"genre"}}},
              "lastChapter":12,"status":"hiatus"},
             "relationships":[{"type":"cover_art","attributes":{"fileName":"../../etc"}}]},
            {"id":"2394a5c7-1d2e-461f-acde-18726b9e37d6","attributes":null,"relationships":{}},
            {"id":"nope","attributes":{}},
            {"attributes":{}},
            "junk"]}"#;
        let (list, unreadable) = parse_manga_list(body).unwrap();
        assert_eq!(unreadable, 3);
        assert_eq!(list[0].title, "English");
        assert_eq!(list[0].alt_title, None);
        assert_eq!(list[0].year, Some(1999));
        assert_eq!(list[0].tags, vec!["Action"]);
        assert_eq!(list[0].last_chapter.as_deref(), Some("12"));
        assert_eq!(list[0].cover_file, None, "a path is not a file name");
        assert_eq!(list[0].description, None);
        assert_eq!(list[1].title, "MangaDex title 2394a5c7");
        assert!(parse_manga_list(br#"{"result":"ok"}"#).is_err());
        assert_eq!(parse_manga_list(br#"{"data":[]}"#), Ok((Vec::new(), 0)));
    }

    #[test]
    fn list_entries_search_results_and_covers() {
        let manga = parse_manga(&fixture("manga-entity.json")).unwrap();
        let chapters = four();
        let e = entry(
            &manga,
            9,
            ReadingStatus::OnHold,
            &chapters,
            &set(&["c2"]),
            &api(),
        );
        assert_eq!(
            (e.id, e.kind, e.status, e.progress, e.total),
            (9, MediaKind::Manga, Status::OnHold, 2, Some(4))
        );
        assert_eq!(e.media.media_type.as_deref(), Some("manga"));
        assert!(
            e.media
                .picture
                .as_deref()
                .unwrap()
                .ends_with(".jpg.256.jpg")
        );
        let f = found(&manga, 9, &Url::parse("http://127.0.0.1:4000/").unwrap());
        assert_eq!(f.entry.status, Status::Planning);
        assert_eq!(f.year, Some(2017));
        assert_eq!(f.mean, None);
        assert_eq!(
            f.entry.media.picture.as_deref(),
            Some(
                "http://127.0.0.1:4000/covers/d86cf65b-5f6c-437d-a0af-19a31f94ec55/5e4a4e0e-b2a6-4e7e-8e6e-169a8d26c7a8.jpg.256.jpg"
            )
        );
        assert_eq!(details(&manga, 9, &api(), Some(160)).total, Some(160));
    }

    #[test]
    fn addresses_carry_every_parameter() {
        let base = Url::parse("http://127.0.0.1:4000/api/").unwrap();
        let ids = vec!["a".to_string(), "b".to_string()];
        let url = manga_batch_url(&base, &ids);
        assert_eq!(url.path(), "/api/manga");
        let q: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        let q: Vec<(&str, &str)> = q.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            q,
            vec![
                ("ids[]", "a"),
                ("ids[]", "b"),
                ("limit", "100"),
                ("includes[]", "cover_art"),
                ("contentRating[]", "safe"),
                ("contentRating[]", "suggestive"),
                ("contentRating[]", "erotica"),
                ("contentRating[]", "pornographic"),
            ]
        );
        let url = read_batch_url(&base, &ids);
        assert_eq!(url.path(), "/api/manga/read");
        assert!(url.query().unwrap().ends_with("grouped=true"));
        let url = aggregate_url(&base, "m", &["en".into(), "pt-br".into()]);
        assert_eq!(url.path(), "/api/manga/m/aggregate");
        let q: Vec<_> = url.query_pairs().into_owned().collect();
        assert_eq!(
            q,
            vec![
                ("translatedLanguage[]".into(), "en".into()),
                ("translatedLanguage[]".into(), "pt-br".into())
            ]
        );
        let api = Url::parse("https://api.mangadex.org").unwrap();
        assert_eq!(
            statuses_url(&api).as_str(),
            "https://api.mangadex.org/manga/status"
        );
        assert_eq!(status_url(&api, "m").path(), "/manga/m/status");
        assert_eq!(read_url(&api, "m").path(), "/manga/m/read");
        let url = search_url(&api, "a&b=c");
        let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
        assert_eq!(q["title"], "a&b=c");
        assert_eq!(q["limit"], "20");
        assert_eq!(
            details_url(&api, "m").as_str(),
            "https://api.mangadex.org/manga/m?includes%5B%5D=cover_art&includes%5B%5D=author&includes%5B%5D=artist"
        );
        assert_eq!(search_query("  "), None);
        assert_eq!(
            search_query(&"x".repeat(500)).unwrap().len(),
            MAX_QUERY_CHARS
        );
    }

    #[test]
    fn a_long_jump_is_sent_250_chapters_a_request_in_order() {
        let ids: Vec<String> = (0..600)
            .map(|i| format!("00000000-0000-4000-8000-{i:012}"))
            .collect();
        let up = ReadChange {
            read: ids.clone(),
            unread: Vec::new(),
        };
        let parts = read_parts(&up);
        let sizes: Vec<usize> = parts.iter().map(|p| p.read.len()).collect();
        assert_eq!(sizes, [250, 250, 100]);
        let sent: Vec<String> = parts.iter().flat_map(|p| p.read.clone()).collect();
        assert_eq!(sent, ids, "from the first chapter on");
        for p in &parts {
            assert!(p.unread.is_empty());
            // Under MangaDex's 10 KB, however it counts a KB.
            assert!(read_body(p).to_string().len() < 10_000);
        }
        // Down: from the last chapter back, each request in order inside.
        let down = ReadChange {
            read: Vec::new(),
            unread: ids.clone(),
        };
        let parts = read_parts(&down);
        let firsts: Vec<&str> = parts.iter().map(|p| p.unread[0].as_str()).collect();
        assert_eq!(firsts, [&ids[350], &ids[100], &ids[0]]);
        assert_eq!(parts[0].unread, ids[350..]);
        assert_eq!(parts[2].unread, ids[..100]);
        // Small changes are one request as they were; nothing to change is none.
        let one = ReadChange {
            read: ids[..3].to_vec(),
            unread: Vec::new(),
        };
        assert_eq!(read_parts(&one), vec![one]);
        let full = ReadChange {
            read: ids[..READ_BATCH].to_vec(),
            unread: Vec::new(),
        };
        assert_eq!(read_parts(&full), vec![full]);
        assert!(read_parts(&ReadChange::default()).is_empty());
    }

    #[test]
    fn error_bodies_become_one_line() {
        let body = br#"{"result":"error","errors":[{"id":"1","status":400,"title":"Bad Request",
            "detail":"Error validating \/ids: \nnot a uuid","context":null}]}"#;
        assert_eq!(
            classify(400, None, false, body),
            Outcome::Failed(ProviderError::Rejected(
                "MangaDex: Bad Request: Error validating /ids: not a uuid".into()
            ))
        );
        let nf =
            br#"{"result":"error","errors":[{"status":404,"title":"Not found","detail":null}]}"#;
        assert_eq!(
            classify(404, None, false, nf),
            Outcome::NotFound("MangaDex: Not found".into())
        );
        assert_eq!(
            classify(401, None, false, b""),
            Outcome::Failed(ProviderError::SessionExpired)
        );
        assert!(matches!(
            classify(403, None, true, br#"{"result":"error","errors":[]}"#),
            Outcome::Failed(ProviderError::Server(m)) if m.contains("captcha")
        ));
        assert!(matches!(
            classify(403, None, false,
                br#"{"result":"error","errors":[{"title":"captcha_required_exception","detail":"x"}]}"#),
            Outcome::Failed(ProviderError::Server(m)) if m.contains("captcha")
        ));
        assert_eq!(
            classify(
                403,
                None,
                false,
                br#"{"errors":[{"title":"Forbidden","detail":"No"}]}"#
            ),
            Outcome::Failed(ProviderError::Rejected("MangaDex: Forbidden: No".into()))
        );
        assert!(matches!(
            classify(503, None, false, b"<html>down</html>"),
            Outcome::Failed(ProviderError::Server(m)) if m == "MangaDex is having trouble (HTTP 503, an HTML page)"
        ));
        assert!(matches!(
            classify(400, None, false, b"{"),
            Outcome::Failed(ProviderError::Rejected(m)) if m == "MangaDex refused the request (HTTP 400)"
        ));
        assert_eq!(classify(204, None, false, b""), Outcome::Ok);
    }

    #[test]
    fn a_429_says_how_long_to_wait() {
        let now = 1_700_000_000;
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(
            "x-ratelimit-retry-after",
            (now + 12).to_string().parse().unwrap(),
        );
        let wait = super::super::pace::pause_from(429, &h, now);
        assert_eq!(wait, Some(Duration::from_secs(12)));
        assert_eq!(
            classify(429, wait, false, br#"{"result":"error","errors":[]}"#),
            Outcome::Failed(ProviderError::Throttled {
                wait: Some(Duration::from_secs(12)),
                message: "MangaDex asks to slow down (429); waiting 12 s".into()
            })
        );
    }

    #[test]
    fn no_reader_quotes_the_body() {
        let secret = "SECRET-VALUE";
        let bodies = [
            format!(r#"{{"statuses": "{secret}"}}"#),
            format!(r#"{{"status": "{secret}"}}"#),
            format!(r#"{{"volumes": 1, "x": "{secret}""#),
            format!(r#"{{"data": {{"id": 5, "t": "{secret}"}}}}"#),
        ];
        for body in &bodies {
            let errors = [
                parse_statuses(body.as_bytes()).err(),
                parse_status(body.as_bytes()).err(),
                parse_aggregate(body.as_bytes()).err(),
                parse_manga(body.as_bytes()).err(),
            ];
            for e in errors.into_iter().flatten() {
                assert!(!e.to_string().contains(secret), "{e}");
            }
        }
    }

    fn arb_number() -> impl Strategy<Value = Option<String>> {
        prop_oneof![
            3 => (0u32..40).prop_map(|n| Some(n.to_string())),
            2 => (0u32..40, 1u32..10).prop_map(|(n, f)| Some(format!("{n}.{f}"))),
            1 => Just(None),
            1 => Just(Some("none".to_string())),
            1 => Just(Some("Extra".to_string())),
        ]
    }

    fn arb_chapters() -> impl Strategy<Value = Vec<RawChapter>> {
        proptest::collection::vec(
            (
                prop_oneof![
                    3 => (1u32..5).prop_map(|v| Some(v.to_string())),
                    1 => Just(None),
                ],
                arb_number(),
                0usize..3,
            ),
            0..25,
        )
        .prop_map(|items| {
            items
                .into_iter()
                .enumerate()
                .map(|(i, (volume, chapter, others))| RawChapter {
                    volume,
                    chapter: chapter.filter(|c| c != "none"),
                    id: format!("id{i:03}"),
                    others: (0..others).map(|o| format!("id{i:03}-{o}")).collect(),
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn the_order_does_not_depend_on_the_order_given(
            chapters in arb_chapters(),
            seed in any::<u64>(),
        ) {
            let ordered = order_chapters(chapters.clone());
            let mut shuffled = chapters.clone();
            // A cheap deterministic shuffle.
            let n = shuffled.len();
            let mut s = seed;
            for i in (1..n).rev() {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                shuffled.swap(i, (s >> 33) as usize % (i + 1));
            }
            prop_assert_eq!(&order_chapters(shuffled), &ordered);
            // No upload is lost or counted twice.
            let given: usize = chapters.iter().map(|c| 1 + c.others.len()).sum();
            let kept: usize = ordered.iter().map(|c| 1 + c.others.len()).sum();
            prop_assert_eq!(given, kept);
            // Within a volume, numbered chapters ascend and the unnumbered come after them.
            for pair in ordered.windows(2) {
                if pair[0].volume == pair[1].volume {
                    let (a, b) = (
                        NumberKey::of(pair[0].number.as_deref()),
                        NumberKey::of(pair[1].number.as_deref()),
                    );
                    prop_assert!(a.cmp(&b) != Ordering::Greater);
                }
            }
        }

        #[test]
        fn a_progress_change_lands_where_asked(
            chapters in arb_chapters(),
            read_mask in proptest::collection::vec(any::<bool>(), 0..80),
            to in 0u32..30,
        ) {
            let ordered = order_chapters(chapters);
            let all: Vec<String> = ordered
                .iter()
                .flat_map(|c| c.ids().map(str::to_string).collect::<Vec<_>>())
                .collect();
            let mut read: HashSet<String> = all
                .iter()
                .zip(read_mask.iter().chain(std::iter::repeat(&false)))
                .filter(|(_, r)| **r)
                .map(|(id, _)| id.clone())
                .collect();
            let from = progress(&ordered, &read);
            let change = read_change(&ordered, &read, to);
            prop_assert!(change.read.is_empty() || change.unread.is_empty());
            for id in &change.read {
                prop_assert!(!read.contains(id));
            }
            for id in &change.unread {
                prop_assert!(read.contains(id));
            }
            read.extend(change.read.iter().cloned());
            for id in &change.unread {
                read.remove(id);
            }
            let now = progress(&ordered, &read);
            let target = to.min(ordered.len() as u32);
            if target >= from {
                prop_assert_eq!(now, target);
            } else {
                // Going down leaves gaps below as they were: at most the target.
                prop_assert!(now <= target);
                prop_assert!(ordered[target as usize..].iter().all(|c| !c.is_read(&read)));
            }
        }

        #[test]
        fn readers_never_panic(body in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_statuses(&body);
            let _ = parse_status(&body);
            let _ = parse_read(&body);
            let _ = parse_read_grouped(&body, &[]);
            let _ = parse_aggregate(&body);
            let _ = parse_manga(&body);
            let _ = parse_manga_list(&body);
            let _ = classify(400, None, false, &body);
            let _ = error_words(&body);
        }
    }
}
