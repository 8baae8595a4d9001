//! Tests of the AniList fake itself (plain reqwest, no malt code), against the
//! recorded fixtures of `shared/api/fixtures/anilist/`.

mod support;

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use support::anilist::{
    self, DEFAULT_USER_ID, DEFAULT_USER_NAME, Entry, FakeAnilist, Fault, FuzzyDate, ListStatus,
    Media, MediaType, ScoreFormat, User,
};

// ---------------------------------------------------------------------------
// The fixtures, verbatim (checked against shared/ when it is there)
// ---------------------------------------------------------------------------

const FX_SYNTAX: &str = r#"{
  "data": null,
  "errors": [
    {
      "message": "Cannot query field \"nonexistentField\" on type \"MediaList\".",
      "status": 400,
      "locations": [
        {
          "line": 4,
          "column": 5
        }
      ]
    }
  ]
}
"#;
const FX_INVALID_TOKEN: &str = r#"{"errors":[{"message":"Invalid token","status":400,"locations":[{"line":2,"column":3}]}],"data":{"MediaListCollection":null}}
"#;
const FX_UNKNOWN_ARGUMENT: &str = r#"{"data":null,"errors":[{"message":"Unknown argument \"repeat\" on field \"UpdateMediaListEntries\" of type \"Mutation\".","status":400,"locations":[{"line":1,"column":51}]}]}
"#;
const FX_VALIDATION: &str = r#"{
  "data": null,
  "errors": [
    {
      "message": "validation",
      "status": 400,
      "locations": [
        {
          "line": 2,
          "column": 3
        }
      ],
      "validation": {
        "id": [
          "The selected id is invalid."
        ],
        "score": [
          "The score may not be greater than 100."
        ]
      }
    }
  ]
}
"#;
const FX_NOT_FOUND: &str = r#"{
  "errors": [
    {
      "message": "Not Found.",
      "status": 404,
      "locations": [
        {
          "line": 2,
          "column": 3
        }
      ]
    }
  ],
  "data": {
    "User": null
  }
}
"#;
const FX_TOO_MANY: &str = r#"{
  "data": null,
  "errors": [
    {
      "message": "Too Many Requests.",
      "status": 429
    }
  ]
}
"#;
const FX_COLLECTION: &str = r#"{"data":{"MediaListCollection":{"lists":[{"name":"Planning","status":"PLANNING","isCustomList":false,"entries":[{"mediaId":136149,"progress":0},{"mediaId":141949,"progress":0}]},{"name":"Completed","status":"COMPLETED","isCustomList":false,"entries":[{"mediaId":140960,"progress":12},{"mediaId":120377,"progress":10}]},{"name":"Dropped","status":"DROPPED","isCustomList":false,"entries":[{"mediaId":124410,"progress":2},{"mediaId":121,"progress":50}]},{"name":"custom list","status":null,"isCustomList":true,"entries":[{"mediaId":105932,"progress":0},{"mediaId":113813,"progress":12}]},{"name":"Paused","status":"PAUSED","isCustomList":false,"entries":[{"mediaId":103871,"progress":4},{"mediaId":143270,"progress":6}]},{"name":"Watching","status":"CURRENT","isCustomList":false,"entries":[{"mediaId":98951,"progress":8}]}]}}}
"#;
const FX_SAVE: &str = r#"{
        "data": {
        "SaveMediaListEntry": {
            "id": 89949907,
            "status": "PLANNING",
            "progress": 0
        }
    }
}
"#;
const FX_VIEWER: &str = r#"{"data":{"Viewer":{"id":12345,"name":"UserName"}}}
"#;

const FIXTURES: [(&str, &str); 9] = [
    ("error-400-graphql-syntax.json", FX_SYNTAX),
    ("error-400-invalid-token.json", FX_INVALID_TOKEN),
    ("error-400-unknown-argument.json", FX_UNKNOWN_ARGUMENT),
    ("error-400-validation.json", FX_VALIDATION),
    ("error-404-not-found.json", FX_NOT_FOUND),
    ("error-429-too-many-requests.json", FX_TOO_MANY),
    ("mediaListCollection-anime.json", FX_COLLECTION),
    ("saveMediaListEntry-response.json", FX_SAVE),
    ("viewer.json", FX_VIEWER),
];

/// The fixture without whitespace outside strings (key order kept): what a
/// server writing compact JSON sends.
fn compact(text: &str) -> String {
    let (mut out, mut in_str, mut esc) = (String::new(), false, false);
    for c in text.chars() {
        if in_str {
            out.push(c);
            if esc {
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else if c == '"' {
                in_str = false;
            }
        } else if c == '"' {
            in_str = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}

#[test]
fn embedded_fixtures_match_the_repositorys_copies() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/anilist");
    for (name, text) in FIXTURES {
        let ours = std::fs::read_to_string(format!("{dir}/{name}")).unwrap();
        assert_eq!(
            text.trim_end(),
            ours.trim_end(),
            "{name} differs from tests/fixtures/"
        );
    }
}

#[test]
fn embedded_fixtures_match_shared() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/api/fixtures/anilist"
    );
    if !std::path::Path::new(dir).is_dir() {
        eprintln!("no {dir}; skipping");
        return;
    }
    for (name, text) in FIXTURES {
        let theirs = std::fs::read_to_string(format!("{dir}/{name}")).unwrap();
        assert_eq!(
            text.trim_end(),
            theirs.trim_end(),
            "{name} differs from shared/"
        );
    }
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    text: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap()
}

async fn send(fake: &FakeAnilist, token: Option<&str>, body: Value) -> Resp {
    let mut req = client().post(fake.api_url()).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    Resp {
        status: resp.status(),
        headers: resp.headers().clone(),
        text: resp.text().await.unwrap(),
    }
}

async fn gql(fake: &FakeAnilist, token: Option<&str>, query: &str, variables: Value) -> Resp {
    send(
        fake,
        token,
        json!({ "query": query, "variables": variables }),
    )
    .await
}

/// Asserts a 200 without errors and returns `data`.
async fn data(fake: &FakeAnilist, token: Option<&str>, query: &str, variables: Value) -> Value {
    let r = gql(fake, token, query, variables).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let v = r.json();
    assert!(v.get("errors").is_none(), "{}", r.text);
    v["data"].clone()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn first_message(r: &Resp) -> String {
    r.json()["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// A fake with one user's anime list as in `mediaListCollection-anime.json`.
async fn fixture_list() -> (FakeAnilist, u64) {
    let fake = FakeAnilist::start().await;
    let uid = 777;
    fake.add_user(User::new(uid, "someone").row_order("id"));
    let rows: [(u64, ListStatus, u32, bool); 11] = [
        (136149, ListStatus::Planning, 0, false),
        (141949, ListStatus::Planning, 0, false),
        (140960, ListStatus::Completed, 12, false),
        (120377, ListStatus::Completed, 10, false),
        (124410, ListStatus::Dropped, 2, false),
        (121, ListStatus::Dropped, 50, false),
        (105932, ListStatus::Planning, 0, true),
        (113813, ListStatus::Completed, 12, true),
        (103871, ListStatus::Paused, 4, false),
        (143270, ListStatus::Paused, 6, false),
        (98951, ListStatus::Current, 8, false),
    ];
    for (id, status, progress, custom_only) in rows {
        fake.add_media(Media::anime(id, &format!("Anime {id}"), Some(12)));
        let mut e = Entry::new(id, status).progress(progress);
        if custom_only {
            e = e.custom_lists(&["custom list"]).hidden();
        }
        fake.add_entry(uid, e);
    }
    fake.set_section_order(
        uid,
        MediaType::Anime,
        &[
            "Planning",
            "Completed",
            "Dropped",
            "custom list",
            "Paused",
            "Watching",
        ],
    );
    (fake, uid)
}

// ---------------------------------------------------------------------------
// Error bodies, byte for byte
// ---------------------------------------------------------------------------

#[tokio::test]
async fn invalid_token_body_is_the_fixture() {
    let (fake, uid) = fixture_list().await;
    let query = "query ($userId: Int) {\n  MediaListCollection(userId: $userId, type: ANIME) {\n    lists { name }\n  }\n}";
    let vars = json!({ "userId": uid });
    let expired = fake.issue_expired_token(DEFAULT_USER_ID);
    let r = gql(&fake, Some(&expired), query, vars.clone()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.text, compact(FX_INVALID_TOKEN));
    assert!(r.header("x-ratelimit-remaining").is_some());

    // Unknown and revoked tokens: the same answer.
    let r = gql(&fake, Some("not.a.token"), query, vars.clone()).await;
    assert_eq!(r.text, compact(FX_INVALID_TOKEN));
    let valid = fake.issue_token(DEFAULT_USER_ID);
    assert_eq!(
        gql(&fake, Some(&valid), query, vars.clone()).await.status,
        StatusCode::OK
    );
    fake.revoke_tokens();
    let r = gql(&fake, Some(&valid), query, vars).await;
    assert_eq!(r.text, compact(FX_INVALID_TOKEN));

    // Any request, every root field (by its alias) null.
    let r = gql(
        &fake,
        Some(&expired),
        "{\n  a: Media(id: 121) { id }\n  Viewer { id }\n}",
        Value::Null,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.text,
        r#"{"errors":[{"message":"Invalid token","status":400,"locations":[{"line":2,"column":3}]}],"data":{"a":null,"Viewer":null}}"#
    );
}

#[tokio::test]
async fn not_found_body_is_the_fixture() {
    let fake = FakeAnilist::start().await;
    let r = gql(
        &fake,
        None,
        "query ($name: String) {\n  User(name: $name) { id name }\n}",
        json!({ "name": "nobody" }),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.text, compact(FX_NOT_FOUND));
    // The same shape for Media and MediaList.
    let r = gql(&fake, None, "{ Media(id: 1) { id } }", Value::Null).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        r.text,
        r#"{"errors":[{"message":"Not Found.","status":404,"locations":[{"line":1,"column":3}]}],"data":{"Media":null}}"#
    );
    let r = gql(
        &fake,
        None,
        "{ MediaList(userId: 12345, mediaId: 1) { id } }",
        Value::Null,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["data"], json!({ "MediaList": null }));
}

#[tokio::test]
async fn unknown_field_body_is_the_fixture() {
    let fake = FakeAnilist::start().await;
    let query = "query {\n  MediaList(id: 1) {\n    id\n    nonexistentField\n  }\n}";
    let r = gql(&fake, None, query, Value::Null).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.text, compact(FX_SYNTAX));
    // Unknown root fields too, and a real syntax error.
    let r = gql(&fake, None, "{ Anime(id: 1) { id } }", Value::Null).await;
    assert_eq!(
        first_message(&r),
        "Cannot query field \"Anime\" on type \"Query\"."
    );
    let r = gql(&fake, None, "mutation { Media(id: 1) { id } }", Value::Null).await;
    assert_eq!(
        first_message(&r),
        "Cannot query field \"Media\" on type \"Mutation\"."
    );
    let r = gql(&fake, None, "{ Media(id: 1) { id }", Value::Null).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.text,
        r#"{"data":null,"errors":[{"message":"Syntax Error: Expected }, found <EOF>","status":400,"locations":[{"line":1,"column":22}]}]}"#
    );
}

#[tokio::test]
async fn unknown_argument_body_is_the_fixture_shape() {
    let fake = FakeAnilist::start().await;
    // The recorded error names an argument UpdateMediaListEntries had no
    // longer; the same situation today, with the argument at line 1 column 51.
    let query = format!(
        "mutation ($n: Int) {{ SaveMediaListEntry({}rewatches: $n) {{ id }} }}",
        " ".repeat(10)
    );
    let token = fake.issue_token(DEFAULT_USER_ID);
    let r = gql(&fake, Some(&token), &query, json!({ "n": 1 })).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let expected = compact(FX_UNKNOWN_ARGUMENT)
        .replace("\\\"repeat\\\"", "\\\"rewatches\\\"")
        .replace("UpdateMediaListEntries", "SaveMediaListEntry");
    assert_eq!(r.text, expected);
    // Today's schema has `repeat` on UpdateMediaListEntries (docs/reference/mutation.md).
    let r = gql(
        &fake,
        Some(&token),
        "mutation ($ids: [Int]) { UpdateMediaListEntries(ids: $ids, repeat: 2) { id } }",
        json!({ "ids": [] }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // Unknown arguments on a query field.
    let r = gql(&fake, None, "{ Media(idd: 1) { id } }", Value::Null).await;
    assert_eq!(
        r.text,
        r#"{"data":null,"errors":[{"message":"Unknown argument \"idd\" on field \"Media\" of type \"Query\".","status":400,"locations":[{"line":1,"column":9}]}]}"#
    );
}

#[tokio::test]
async fn validation_body_is_the_fixture_and_changes_nothing() {
    let fake = FakeAnilist::start().await;
    fake.set_score_format(DEFAULT_USER_ID, ScoreFormat::Point100);
    fake.add_media(Media::anime(1, "Cowboy Bebop", Some(26)));
    fake.add_entry(
        DEFAULT_USER_ID,
        Entry::new(1, ListStatus::Current).progress(3),
    );
    let before = fake.entries(DEFAULT_USER_ID);
    let token = fake.issue_token(DEFAULT_USER_ID);
    let query = "mutation ($id: Int, $score: Float) {\n  SaveMediaListEntry(id: $id, score: $score) { id score }\n}";
    let r = gql(&fake, Some(&token), query, json!({ "id": 1, "score": 101 })).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.text, compact(FX_VALIDATION));
    assert_eq!(fake.entries(DEFAULT_USER_ID), before);

    // Another user's entry id is "invalid" too; an unknown media id has its own message.
    fake.add_user(User::new(2, "other"));
    let theirs = fake.add_entry(2, Entry::new(1, ListStatus::Planning));
    let r = gql(&fake, Some(&token), query, json!({ "id": theirs })).await;
    assert_eq!(
        r.json()["errors"][0]["validation"],
        json!({ "id": ["The selected id is invalid."] })
    );
    let r = gql(
        &fake,
        Some(&token),
        "mutation ($m: Int) {\n  SaveMediaListEntry(mediaId: $m, progress: 1) { id }\n}",
        json!({ "m": 999 }),
    )
    .await;
    assert_eq!(
        r.text,
        r#"{"data":null,"errors":[{"message":"validation","status":400,"locations":[{"line":2,"column":3}],"validation":{"mediaId":["The selected media id is invalid."]}}]}"#
    );
    assert_eq!(fake.entries(DEFAULT_USER_ID), before);
    assert_eq!(fake.entries(2).len(), 1);
}

#[tokio::test]
async fn rate_limit_headers_and_429_like_the_docs() {
    let fake = FakeAnilist::start().await;
    fake.set_rate_limit(3);
    fake.set_rate_window(Duration::from_secs(60), Duration::from_secs(1));
    let q = "{ Viewer { id } }";
    let token = fake.issue_token(DEFAULT_USER_ID);
    for remaining in ["2", "1", "0"] {
        let r = gql(&fake, Some(&token), q, Value::Null).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.header("x-ratelimit-limit"), Some("3"));
        assert_eq!(r.header("x-ratelimit-remaining"), Some(remaining));
        assert_eq!(r.header("retry-after"), None);
    }
    let r = gql(&fake, Some(&token), q, Value::Null).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.text, compact(FX_TOO_MANY));
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(r.header("x-ratelimit-limit"), Some("3"));
    assert_eq!(r.header("x-ratelimit-remaining"), Some("0"));
    let reset: i64 = r.header("x-ratelimit-reset").unwrap().parse().unwrap();
    assert!((now()..=now() + 2).contains(&reset), "{reset}");
    // The timeout holds, then lifts.
    let r = gql(&fake, Some(&token), q, Value::Null).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = gql(&fake, Some(&token), q, Value::Null).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("x-ratelimit-remaining"), Some("2"));
    let log = fake.graphql_requests();
    assert_eq!(log.len(), 6);
    assert_eq!(log.iter().filter(|r| r.status == 429).count(), 2);
    assert_eq!(log[3].root_fields, ["Viewer"]);
}

#[tokio::test]
async fn degraded_mode_blocks_at_remaining_60() {
    let fake = FakeAnilist::start().await;
    fake.set_degraded(true);
    let mut last = String::new();
    for i in 0..30 {
        let r = gql(&fake, None, "{ GenreCollection }", Value::Null).await;
        assert_eq!(r.status, StatusCode::OK, "request {i}: {}", r.text);
        assert_eq!(r.header("x-ratelimit-limit"), Some("90"));
        last = r.header("x-ratelimit-remaining").unwrap().to_string();
    }
    assert_eq!(last, "60");
    let r = gql(&fake, None, "{ GenreCollection }", Value::Null).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.header("retry-after"), Some("60"));
    fake.reset_rate_limit();
    assert_eq!(
        gql(&fake, None, "{ GenreCollection }", Value::Null)
            .await
            .status,
        StatusCode::OK
    );
}

// ---------------------------------------------------------------------------
// Answers shaped like the recorded ones
// ---------------------------------------------------------------------------

#[tokio::test]
async fn viewer_is_the_fixture() {
    let fake = FakeAnilist::start().await;
    let token = fake.issue_token(DEFAULT_USER_ID);
    let r = gql(
        &fake,
        Some(&token),
        "query { Viewer { id name } }",
        Value::Null,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.text, compact(FX_VIEWER));
    assert_eq!(DEFAULT_USER_NAME, "UserName");
    let d = data(
        &fake,
        Some(&token),
        "{ Viewer { id mediaListOptions { scoreFormat rowOrder animeList { customLists sectionOrder } } } }",
        Value::Null,
    )
    .await;
    assert_eq!(
        d["Viewer"]["mediaListOptions"],
        json!({
            "scoreFormat": "POINT_10_DECIMAL",
            "rowOrder": "score",
            "animeList": {
                "customLists": [],
                "sectionOrder": ["Watching", "Rewatching", "Completed", "Paused", "Dropped", "Planning"]
            }
        })
    );
    // Without a token: 401 "Unauthorized." (AniList/docs#33).
    let r = gql(&fake, None, "query {\n  Viewer { id name }\n}", Value::Null).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.text,
        r#"{"errors":[{"message":"Unauthorized.","status":401,"locations":[{"line":2,"column":3}]}],"data":{"Viewer":null}}"#
    );
}

#[tokio::test]
async fn media_list_collection_is_the_fixture() {
    let (fake, uid) = fixture_list().await;
    let query = "query ($userId: Int, $type: MediaType) { MediaListCollection(userId: $userId, type: $type) { lists { name status isCustomList entries { mediaId progress } } } }";
    let r = gql(
        &fake,
        None,
        query,
        json!({ "userId": uid, "type": "ANIME" }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.text, compact(FX_COLLECTION));
    // By name, case-insensitively; the manga list is empty.
    let d = data(
        &fake,
        None,
        "{ MediaListCollection(userName: \"SOMEONE\", type: MANGA) { lists { name } hasNextChunk user { id } } }",
        Value::Null,
    )
    .await;
    assert_eq!(
        d["MediaListCollection"],
        json!({ "lists": [], "hasNextChunk": false, "user": { "id": uid } })
    );
}

#[tokio::test]
async fn entries_appear_in_status_and_custom_lists() {
    let fake = FakeAnilist::start().await;
    for id in 1..=3 {
        fake.add_media(Media::anime(id, &format!("Show {id}"), Some(12)));
    }
    let both = fake.add_entry(
        DEFAULT_USER_ID,
        Entry::new(1, ListStatus::Current)
            .progress(3)
            .custom_lists(&["Favourites"]),
    );
    let hidden = fake.add_entry(
        DEFAULT_USER_ID,
        Entry::new(2, ListStatus::Completed)
            .custom_lists(&["Favourites"])
            .hidden(),
    );
    let secret = fake.add_entry(
        DEFAULT_USER_ID,
        Entry::new(3, ListStatus::Current).private(),
    );
    assert!(
        both > 1000 && hidden > 1000 && secret > 1000,
        "entry ids are not media ids"
    );
    let query = "query ($u: Int) { MediaListCollection(userId: $u, type: ANIME) { lists { name isCustomList status entries { id mediaId customLists hiddenFromStatusLists } } } }";
    let vars = json!({ "u": DEFAULT_USER_ID });
    let token = fake.issue_token(DEFAULT_USER_ID);
    let d = data(&fake, Some(&token), query, vars.clone()).await;
    let lists = d["MediaListCollection"]["lists"]
        .as_array()
        .unwrap()
        .clone();
    let names: Vec<&str> = lists.iter().map(|l| l["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Watching", "Favourites"]);
    let ids = |l: &Value| -> Vec<u64> {
        l["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_u64().unwrap())
            .collect()
    };
    let mut watching = ids(&lists[0]);
    watching.sort();
    let mut expected = vec![both, secret];
    expected.sort();
    assert_eq!(watching, expected);
    assert_eq!(ids(&lists[1]), [both, hidden]);
    assert_eq!(lists[1]["status"], Value::Null);
    assert_eq!(lists[1]["isCustomList"], true);
    assert_eq!(
        lists[1]["entries"][0]["customLists"],
        json!({ "Favourites": true })
    );
    // Someone else (no token) does not see the private entry.
    let d = data(&fake, None, query, vars.clone()).await;
    assert_eq!(ids(&d["MediaListCollection"]["lists"][0]), [both]);
    // customLists(asArray: true).
    let d = data(
        &fake,
        None,
        "query ($u: Int) { MediaList(userId: $u, mediaId: 2) { customLists(asArray: true) } }",
        vars,
    )
    .await;
    assert_eq!(
        d["MediaList"]["customLists"],
        json!([{ "name": "Favourites", "enabled": true }])
    );
}

#[tokio::test]
async fn split_completed_lists_chunks_and_the_cap() {
    let fake = FakeAnilist::start().await;
    fake.add_media(Media::anime(1, "A Show", Some(12)));
    fake.add_media(Media::anime(2, "A Movie", Some(1)).format("MOVIE"));
    fake.add_media(Media::anime(3, "Another Show", Some(12)));
    fake.add_media(Media::anime(4, "Planned", Some(12)));
    for id in 1..=3 {
        fake.add_entry(DEFAULT_USER_ID, Entry::new(id, ListStatus::Completed));
    }
    fake.add_entry(DEFAULT_USER_ID, Entry::new(4, ListStatus::Planning));
    fake.set_split_completed(DEFAULT_USER_ID, MediaType::Anime, true);
    let query = "query ($u: Int, $single: Boolean, $chunk: Int, $per: Int) { MediaListCollection(userId: $u, type: ANIME, forceSingleCompletedList: $single, chunk: $chunk, perChunk: $per) { hasNextChunk lists { name status isSplitCompletedList entries { mediaId } } } }";
    let d = data(&fake, None, query, json!({ "u": DEFAULT_USER_ID })).await;
    assert_eq!(
        d["MediaListCollection"]["lists"],
        json!([
            { "name": "Completed TV", "status": "COMPLETED", "isSplitCompletedList": true,
              "entries": [{ "mediaId": 1 }, { "mediaId": 3 }] },
            { "name": "Completed Movie", "status": "COMPLETED", "isSplitCompletedList": true,
              "entries": [{ "mediaId": 2 }] },
            { "name": "Planning", "status": "PLANNING", "isSplitCompletedList": false,
              "entries": [{ "mediaId": 4 }] }
        ])
    );
    let d = data(
        &fake,
        None,
        query,
        json!({ "u": DEFAULT_USER_ID, "single": true }),
    )
    .await;
    assert_eq!(d["MediaListCollection"]["lists"][0]["name"], "Completed");
    assert_eq!(
        d["MediaListCollection"]["lists"][0]["entries"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    // Chunks of 3 over 4 entries.
    let vars =
        |chunk: i64| json!({ "u": DEFAULT_USER_ID, "single": true, "chunk": chunk, "per": 3 });
    let count = |d: &Value| -> usize {
        d["MediaListCollection"]["lists"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["entries"].as_array().unwrap().len())
            .sum()
    };
    let d1 = data(&fake, None, query, vars(1)).await;
    assert_eq!(d1["MediaListCollection"]["hasNextChunk"], true);
    assert_eq!(count(&d1), 3);
    let d2 = data(&fake, None, query, vars(2)).await;
    assert_eq!(d2["MediaListCollection"]["hasNextChunk"], false);
    assert_eq!(count(&d2), 1);

    // Without chunks, only the most recently updated `cap` entries.
    fake.set_collection_cap(2);
    fake.set_progress(DEFAULT_USER_ID, 4, 1);
    let d = data(
        &fake,
        None,
        query,
        json!({ "u": DEFAULT_USER_ID, "single": true }),
    )
    .await;
    assert_eq!(count(&d), 2);
    assert!(
        d["MediaListCollection"]["lists"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["name"] == "Planning")
    );
}

#[tokio::test]
async fn save_media_list_entry_is_the_fixture_and_upserts() {
    let fake = FakeAnilist::start().await;
    fake.add_media(Media::anime(101, "Frieren", Some(28)));
    let token = fake.issue_token(DEFAULT_USER_ID);
    let query = "mutation ($mediaId: Int, $status: MediaListStatus, $progress: Int) { SaveMediaListEntry(mediaId: $mediaId, status: $status, progress: $progress) { id status progress } }";
    let r = gql(
        &fake,
        Some(&token),
        query,
        json!({ "mediaId": 101, "status": "PLANNING" }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let id = r.json()["data"]["SaveMediaListEntry"]["id"]
        .as_u64()
        .unwrap();
    assert_ne!(id, 101);
    assert_eq!(
        r.text,
        compact(FX_SAVE).replace("89949907", &id.to_string())
    );
    let created = fake.entry(DEFAULT_USER_ID, 101).unwrap();
    assert_eq!(created.id, id);
    assert!(created.updated_at >= now() - 5);

    // Same mediaId again: the same entry; the status is kept.
    let r = gql(
        &fake,
        Some(&token),
        query,
        json!({ "mediaId": 101, "progress": 3 }),
    )
    .await;
    assert_eq!(
        r.json()["data"]["SaveMediaListEntry"],
        json!({ "id": id, "status": "PLANNING", "progress": 3 })
    );
    let after = fake.entry(DEFAULT_USER_ID, 101).unwrap();
    assert!(after.updated_at > created.updated_at);
    assert_eq!(fake.entries(DEFAULT_USER_ID).len(), 1);

    // By entry id, with dates and a status change that keeps everything else.
    let d = data(
        &fake,
        Some(&token),
        "mutation ($id: Int, $d: FuzzyDateInput) { SaveMediaListEntry(id: $id, status: CURRENT, startedAt: $d) { mediaId status progress startedAt { year month day } completedAt { year month day } } }",
        json!({ "id": id, "d": { "year": 2025, "month": 4 } }),
    )
    .await;
    assert_eq!(
        d["SaveMediaListEntry"],
        json!({
            "mediaId": 101, "status": "CURRENT", "progress": 3,
            "startedAt": { "year": 2025, "month": 4, "day": null },
            "completedAt": { "year": null, "month": null, "day": null }
        })
    );
    let e = fake.entry(DEFAULT_USER_ID, 101).unwrap();
    assert_eq!(
        e.started_at,
        FuzzyDate {
            year: Some(2025),
            month: Some(4),
            day: None
        }
    );

    // A new entry without status is CURRENT.
    fake.add_media(Media::anime(102, "Other", None));
    let d = data(&fake, Some(&token), query, json!({ "mediaId": 102 })).await;
    assert_eq!(d["SaveMediaListEntry"]["status"], "CURRENT");
    assert_ne!(d["SaveMediaListEntry"]["id"].as_u64().unwrap(), id);

    // Mutations need a token.
    let r = gql(&fake, None, query, json!({ "mediaId": 101 })).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(first_message(&r), "Unauthorized.");
    assert_eq!(r.json()["data"], json!({ "SaveMediaListEntry": null }));
}

#[tokio::test]
async fn scores_follow_the_format() {
    let fake = FakeAnilist::start().await;
    fake.add_media(Media::anime(5, "Scored", Some(12)));
    let eid = fake.add_entry(
        DEFAULT_USER_ID,
        Entry::new(5, ListStatus::Completed).score_raw(85),
    );
    let token = fake.issue_token(DEFAULT_USER_ID);
    let r = gql(
        &fake,
        Some(&token),
        "query ($id: Int) { MediaList(id: $id) { a: score(format: POINT_100) b: score(format: POINT_10_DECIMAL) c: score(format: POINT_10) d: score(format: POINT_5) e: score(format: POINT_3) own: score } }",
        json!({ "id": eid }),
    )
    .await;
    assert_eq!(
        r.text,
        r#"{"data":{"MediaList":{"a":85,"b":8.5,"c":9,"d":4,"e":3,"own":8.5}}}"#
    );
    // Saving reads the score in the viewer's format.
    let save =
        "mutation ($m: Int, $s: Float) { SaveMediaListEntry(mediaId: $m, score: $s) { score } }";
    let d = data(&fake, Some(&token), save, json!({ "m": 5, "s": 7.5 })).await;
    assert_eq!(d["SaveMediaListEntry"]["score"], 7.5);
    assert_eq!(fake.entry(DEFAULT_USER_ID, 5).unwrap().score_raw, 75);
    let r = gql(&fake, Some(&token), save, json!({ "m": 5, "s": 11 })).await;
    assert_eq!(
        r.json()["errors"][0]["validation"],
        json!({ "score": ["The score may not be greater than 10."] })
    );
    fake.set_score_format(DEFAULT_USER_ID, ScoreFormat::Point3);
    let d = data(&fake, Some(&token), save, json!({ "m": 5, "s": 2 })).await;
    assert_eq!(d["SaveMediaListEntry"]["score"], 2);
    assert_eq!(fake.entry(DEFAULT_USER_ID, 5).unwrap().score_raw, 60);
    fake.set_score_format(DEFAULT_USER_ID, ScoreFormat::Point5);
    let d = data(
        &fake,
        Some(&token),
        "mutation { SaveMediaListEntry(mediaId: 5, scoreRaw: 50) { score scoreRaw: score(format: POINT_100) } }",
        Value::Null,
    )
    .await;
    assert_eq!(
        d["SaveMediaListEntry"],
        json!({ "score": 3, "scoreRaw": 50 })
    );
    for (format, raw, shown) in [
        (ScoreFormat::Point10Decimal, 0, 0.0),
        (ScoreFormat::Point10, 85, 9.0),
        (ScoreFormat::Point5, 85, 4.0),
        (ScoreFormat::Point3, 35, 1.0),
        (ScoreFormat::Point3, 36, 2.0),
        (ScoreFormat::Point3, 61, 3.0),
    ] {
        assert_eq!(format.raw_to_score(raw), shown, "{format:?} {raw}");
    }
}

#[tokio::test]
async fn answers_only_the_selection_with_aliases_fragments_and_arguments() {
    let fake = FakeAnilist::start().await;
    fake.add_media(
        Media::anime(1, "Kaubôi Bibappu", Some(26))
            .english("Cowboy Bebop")
            .native("カウボーイビバップ")
            .description("Space.\nCowboys.")
            .start_date(FuzzyDate::ymd(1998, 4, 3))
            .genres(&["Action", "Sci-Fi"])
            .average_score(86),
    );
    let query = r#"
        query ($id: Int, $withGenres: Boolean!) {
          m: Media(id: $id, type: ANIME) {
            ...Basics
            ... on Media { seasonYear season }
            description(asHtml: false)
            html: description(asHtml: true)
            genres @include(if: $withGenres)
            averageScore @skip(if: true)
            nextAiringEpisode { episode }
            mediaListEntry { id }
          }
        }
        fragment Basics on Media { id title { english native } id }
    "#;
    let r = gql(&fake, None, query, json!({ "id": 1, "withGenres": true })).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.text,
        concat!(
            r#"{"data":{"m":{"id":1,"title":{"english":"Cowboy Bebop","native":"\u30ab\u30a6\u30dc\u30fc\u30a4\u30d3\u30d0\u30c3\u30d7"},"#,
            r#""seasonYear":1998,"season":"SPRING","description":"Space.\nCowboys.","html":"Space.<br>\nCowboys.","#,
            r#""genres":["Action","Sci-Fi"],"nextAiringEpisode":null,"mediaListEntry":null}}}"#
        )
    );
    // Slashes escaped like PHP; unmodelled fields answer null / [].
    let r = gql(
        &fake,
        None,
        "{ Media(id: 1) { siteUrl coverImage { large } bannerImage tags { name } studios { nodes { name } } } }",
        Value::Null,
    )
    .await;
    assert!(
        r.text
            .contains(r#""siteUrl":"https:\/\/anilist.co\/anime\/1""#),
        "{}",
        r.text
    );
    let v = r.json();
    let cover = v["data"]["Media"]["coverImage"]["large"].as_str().unwrap();
    assert_eq!(v["data"]["Media"]["tags"], json!([]));
    assert_eq!(v["data"]["Media"]["studios"], Value::Null);
    // The cover is served by the fake.
    let png = client().get(cover).send().await.unwrap();
    assert_eq!(png.status(), StatusCode::OK);
    assert_eq!(png.headers()["content-type"], "image/png");
    assert_eq!(fake.image_requests(), 1);
}

#[tokio::test]
async fn queries_must_be_valid_against_the_schema() {
    let fake = FakeAnilist::start().await;
    let cases: [(&str, Value, &str); 12] = [
        (
            "query ($type: String) { MediaListCollection(userId: 1, type: $type) { lists { name } } }",
            json!({ "type": "ANIME" }),
            "Variable \"$type\" of type \"String\" used in position expecting type \"MediaType\".",
        ),
        (
            "query ($type: MediaType!) { MediaListCollection(userId: 1, type: $type) { lists { name } } }",
            json!({}),
            "Variable \"$type\" of required type \"MediaType!\" was not provided.",
        ),
        (
            "query ($type: MediaType) { MediaListCollection(userId: 1, type: $type) { lists { name } } }",
            json!({ "type": "anime" }),
            "Variable \"$type\" got invalid value \"anime\"; Expected type MediaType.",
        ),
        (
            "query ($id: Int) { Media(id: $id) { id } }",
            json!({ "id": 3_000_000_000u64 }),
            "Variable \"$id\" got invalid value 3000000000; Expected type Int.",
        ),
        (
            "query ($id: Int, $page: Int) { Media(id: $id) { id } }",
            json!({ "id": 1 }),
            "Variable \"$page\" is never used.",
        ),
        (
            "query { Media(id: $id) { id } }",
            json!({}),
            "Variable \"$id\" is not defined.",
        ),
        (
            "{ Media(id: 1) { title } }",
            Value::Null,
            "Field \"title\" of type \"MediaTitle\" must have a sub selection.",
        ),
        (
            "{ Media(id: 1) { id { x } } }",
            Value::Null,
            "Field \"id\" must not have a selection since type \"Int!\" has no subfields.",
        ),
        (
            "{ Media(type: \"ANIME\") { id } }",
            Value::Null,
            "Expected type MediaType, found \"ANIME\".",
        ),
        (
            "{ MediaListCollection(userId: 1, type: ANIMU) { lists { name } } }",
            Value::Null,
            "Expected type MediaType, found ANIMU.",
        ),
        (
            "{ Media(id: 1) { ...Missing } }",
            Value::Null,
            "Unknown fragment \"Missing\".",
        ),
        (
            "mutation { SaveMediaListEntry(mediaId: 1, startedAt: { year: 2024, week: 3 }) { id } }",
            Value::Null,
            "Expected type FuzzyDateInput, found {week: 3, year: 2024}.",
        ),
    ];
    for (query, vars, message) in cases {
        let r = gql(&fake, None, query, vars).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}: {}", r.text);
        let v = r.json();
        assert_eq!(v["data"], Value::Null, "{query}");
        assert_eq!(v["errors"][0]["message"], message, "{query}: {}", r.text);
        assert_eq!(v["errors"][0]["status"], 400);
    }
    // Not JSON, or no query.
    let r = client()
        .post(fake.api_url())
        .body("query=%7B%7D")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = send(&fake, None, json!({ "variables": {} })).await;
    assert_eq!(first_message(&r), "Must provide query string.");
}

#[tokio::test]
async fn search_pages_and_lookups() {
    let fake = FakeAnilist::start().await;
    fake.add_media(
        Media::anime(11757, "Sword Art Online", Some(25))
            .synonyms(&["SAO"])
            .popularity(900),
    );
    fake.add_media(Media::anime(20594, "Sword Art Online II", Some(24)).popularity(500));
    fake.add_media(
        Media::anime(5, "Kimetsu no Yaiba", Some(26))
            .english("Demon Slayer")
            .popularity(1000),
    );
    fake.add_media(Media::manga(53718, "Sword Art Online", Some(10), Some(2)));
    fake.add_media(Media::anime(9, "Sword Adult", Some(2)).adult(true));
    let query = "query ($s: String, $type: MediaType, $page: Int, $per: Int) { Page(page: $page, perPage: $per) { pageInfo { total perPage currentPage lastPage hasNextPage } media(search: $s, type: $type, isAdult: false) { id } } }";
    let d = data(
        &fake,
        None,
        query,
        json!({ "s": "sword art", "type": "ANIME", "page": 1, "per": 1 }),
    )
    .await;
    assert_eq!(
        d["Page"],
        json!({
            "pageInfo": { "total": 2, "perPage": 1, "currentPage": 1, "lastPage": 2, "hasNextPage": true },
            "media": [{ "id": 11757 }]
        })
    );
    let d = data(
        &fake,
        None,
        query,
        json!({ "s": "sword art", "type": "ANIME", "page": 2, "per": 1 }),
    )
    .await;
    assert_eq!(d["Page"]["media"], json!([{ "id": 20594 }]));
    assert_eq!(d["Page"]["pageInfo"]["hasNextPage"], false);
    // Synonyms and English titles, case-insensitive; perPage capped at 50.
    let d = data(&fake, None, query, json!({ "s": "sao", "per": 500 })).await;
    assert_eq!(d["Page"]["media"], json!([{ "id": 11757 }]));
    assert_eq!(d["Page"]["pageInfo"]["perPage"], 50);
    let d = data(&fake, None, query, json!({ "s": "DEMON slayer" })).await;
    assert_eq!(d["Page"]["media"], json!([{ "id": 5 }]));
    // Media(search:) and Media(id, type).
    let d = data(&fake, None, "{ Media(search: \"sword art online\", type: MANGA) { id format chapters volumes episodes } }", Value::Null).await;
    assert_eq!(
        d["Media"],
        json!({ "id": 53718, "format": "MANGA", "chapters": 10, "volumes": 2, "episodes": null })
    );
    let r = gql(
        &fake,
        None,
        "{ Media(id: 11757, type: MANGA) { id } }",
        Value::Null,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn media_list_lookup_then_delete_by_entry_id() {
    let fake = FakeAnilist::start().await;
    fake.add_media(Media::anime(21, "One Piece", None).airing(1100, now() + 3600));
    fake.add_user(User::new(1, "early"));
    let theirs = fake.add_entry(1, Entry::new(21, ListStatus::Current).progress(50));
    let mine = fake.add_entry(
        DEFAULT_USER_ID,
        Entry::new(21, ListStatus::Current).progress(1099),
    );
    let token = fake.issue_token(DEFAULT_USER_ID);
    // Without userId, whoever's entry comes first (the docs' warning).
    let d = data(
        &fake,
        Some(&token),
        "{ MediaList(mediaId: 21) { id userId } }",
        Value::Null,
    )
    .await;
    assert_eq!(d["MediaList"], json!({ "id": theirs, "userId": 1 }));
    let lookup = "query ($u: Int, $m: Int) { MediaList(userId: $u, mediaId: $m) { id media { nextAiringEpisode { episode airingAt timeUntilAiring } } } }";
    let vars = json!({ "u": DEFAULT_USER_ID, "m": 21 });
    let d = data(&fake, Some(&token), lookup, vars.clone()).await;
    assert_eq!(d["MediaList"]["id"], mine);
    let next = &d["MediaList"]["media"]["nextAiringEpisode"];
    assert_eq!(next["episode"], 1100);
    assert!((3590..=3600).contains(&next["timeUntilAiring"].as_i64().unwrap()));
    // Media.mediaListEntry is the viewer's.
    let d = data(
        &fake,
        Some(&token),
        "{ Media(id: 21) { mediaListEntry { id progress } } }",
        Value::Null,
    )
    .await;
    assert_eq!(
        d["Media"]["mediaListEntry"],
        json!({ "id": mine, "progress": 1099 })
    );

    let delete = "mutation ($id: Int) {\n  DeleteMediaListEntry(id: $id) { deleted }\n}";
    for wrong in [21, theirs] {
        let r = gql(&fake, Some(&token), delete, json!({ "id": wrong })).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
        assert_eq!(
            r.text,
            r#"{"errors":[{"message":"You are not authorized to modify this MediaList","status":403,"locations":[{"line":2,"column":3}]}],"data":{"DeleteMediaListEntry":null}}"#
        );
    }
    assert_eq!(fake.entries(1).len(), 1);
    let d = data(&fake, Some(&token), delete, json!({ "id": mine })).await;
    assert_eq!(d, json!({ "DeleteMediaListEntry": { "deleted": true } }));
    assert!(fake.entry(DEFAULT_USER_ID, 21).is_none());
    let r = gql(&fake, Some(&token), lookup, vars).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(first_message(&r), "Not Found.");
}

#[tokio::test]
async fn website_edits_and_request_log() {
    let fake = FakeAnilist::start().await;
    fake.add_media(Media::manga(30013, "One Piece", None, None));
    fake.add_entry(
        DEFAULT_USER_ID,
        Entry::new(30013, ListStatus::Current)
            .progress(1000)
            .updated_at(1_600_000_000),
    );
    fake.set_progress(DEFAULT_USER_ID, 30013, 1001);
    let e = fake.entry(DEFAULT_USER_ID, 30013).unwrap();
    assert_eq!(e.progress, 1001);
    assert!(e.updated_at >= now() - 5);
    fake.set_status(DEFAULT_USER_ID, 30013, ListStatus::Paused);
    assert!(fake.entry(DEFAULT_USER_ID, 30013).unwrap().updated_at > e.updated_at);
    let token = fake.issue_token(DEFAULT_USER_ID);
    let d = data(
        &fake,
        Some(&token),
        "query Lists($u: Int, $t: MediaType) { MediaListCollection(userId: $u, type: $t) { lists { name entries { progress } } } }",
        json!({ "u": DEFAULT_USER_ID, "t": "MANGA" }),
    )
    .await;
    assert_eq!(
        d["MediaListCollection"]["lists"],
        json!([{ "name": "Paused", "entries": [{ "progress": 1001 }] }])
    );
    assert!(fake.remove_entry(DEFAULT_USER_ID, 30013));
    assert!(fake.entries(DEFAULT_USER_ID).is_empty());
    let log = fake.graphql_requests();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].operation, "query");
    assert_eq!(log[0].operation_name.as_deref(), Some("Lists"));
    assert_eq!(log[0].root_fields, ["MediaListCollection"]);
    assert_eq!(log[0].var("t"), Some(&json!("MANGA")));
    assert!(log[0].has_auth());
    assert_eq!(
        log[0].authorization.as_deref(),
        Some(&*format!("Bearer {token}"))
    );
    assert_eq!(log[0].status, 200);
    assert_eq!(fake.count_root("MediaListCollection"), 1);
    assert_eq!(fake.requests()[0].path, "/");
}

// ---------------------------------------------------------------------------
// Faults
// ---------------------------------------------------------------------------

#[tokio::test]
async fn injected_faults() {
    let fake = FakeAnilist::start().await;
    let q = "{ GenreCollection }";
    fake.fail_next(1, Fault::ServerError);
    fake.fail_next(1, Fault::BadGateway);
    fake.fail_next(1, Fault::MalformedJson);
    fake.fail_next(1, Fault::TooManyRequests { retry_after: 7 });
    fake.fail_next(
        1,
        Fault::ErrorsWithData {
            message: "Something went wrong".into(),
            status: 500,
        },
    );
    let r = gql(&fake, None, q, Value::Null).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(r.text, anilist::SERVER_ERROR_BODY);
    assert!(r.header("x-ratelimit-limit").is_some());
    let r = gql(&fake, None, q, Value::Null).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert!(r.text.starts_with("<html>"));
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    let r = gql(&fake, None, q, Value::Null).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(serde_json::from_str::<Value>(&r.text).is_err());
    let r = gql(&fake, None, q, Value::Null).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.header("retry-after"), Some("7"));
    assert_eq!(r.text, compact(FX_TOO_MANY));
    let r = gql(&fake, None, q, Value::Null).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.text,
        r#"{"errors":[{"message":"Something went wrong","status":500}],"data":{"GenreCollection":[]}}"#
    );
    // Back to normal.
    assert_eq!(
        data(&fake, None, q, Value::Null).await,
        json!({ "GenreCollection": [] })
    );

    // A delay beyond the client's timeout.
    fake.fail_next(1, Fault::Delay(Duration::from_millis(800)));
    let started = Instant::now();
    let err = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .no_proxy()
        .build()
        .unwrap()
        .post(fake.api_url())
        .json(&json!({ "query": q }))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert!(started.elapsed() < Duration::from_millis(700));
    let statuses: Vec<u16> = fake.graphql_requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses[..6], [500, 502, 200, 429, 200, 200]);
}

// ---------------------------------------------------------------------------
// OAuth
// ---------------------------------------------------------------------------

fn location(resp: &reqwest::Response) -> String {
    resp.headers()["location"].to_str().unwrap().to_string()
}

fn fragment_param(url: &str, key: &str) -> Option<String> {
    let (_, frag) = url.split_once('#')?;
    frag.split('&')
        .find_map(|p| p.strip_prefix(&format!("{key}=")).map(str::to_string))
}

#[tokio::test]
async fn implicit_grant_redirects_with_the_token_in_the_fragment() {
    let fake = FakeAnilist::start().await;
    let redirect = "http://127.0.0.1:45821/callback";
    let config = fake.config_toml(redirect);
    let table: toml::Table = toml::from_str(&config).unwrap();
    assert_eq!(
        table["anilist"]["client_id"].as_str(),
        Some(FakeAnilist::CLIENT_ID)
    );
    assert_eq!(table["anilist"]["redirect_uri"].as_str(), Some(redirect));
    assert_eq!(table["anilist"]["api_url"].as_str(), Some(&*fake.api_url()));
    assert_eq!(
        table["anilist"]["auth_url"].as_str(),
        Some(&*fake.auth_url())
    );
    let c = client();
    let resp = c
        .get(format!("{}/authorize", fake.auth_url()))
        .query(&[
            ("client_id", FakeAnilist::CLIENT_ID),
            ("response_type", "token"),
            ("state", "s t"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND);
    let loc = location(&resp);
    assert!(
        loc.starts_with(&format!("{redirect}#access_token=")),
        "{loc}"
    );
    assert!(
        loc.ends_with("&token_type=Bearer&expires_in=31536000&state=s+t"),
        "{loc}"
    );
    let token = fragment_param(&loc, "access_token").unwrap();
    let claims = anilist::jwt_payload(&token).unwrap();
    assert_eq!(claims["sub"], "12345");
    assert_eq!(claims["aud"], FakeAnilist::CLIENT_ID);
    assert_eq!(claims["scopes"], json!([]));
    let exp = claims["exp"].as_i64().unwrap();
    assert!((now() + 31_536_000 - 5..=now() + 31_536_000).contains(&exp));
    assert_eq!(claims["iat"], claims["nbf"]);
    let header: Value =
        serde_json::from_slice(&base64_url(token.split('.').next().unwrap())).unwrap();
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "JWT");
    let r = gql(&fake, Some(&token), "{ Viewer { name } }", Value::Null).await;
    assert_eq!(r.text, r#"{"data":{"Viewer":{"name":"UserName"}}}"#);

    // Wrong client id, or a redirect URI that is not the registered one.
    for query in [
        vec![("client_id", "999"), ("response_type", "token")],
        vec![
            ("client_id", FakeAnilist::CLIENT_ID),
            ("response_type", "token"),
            ("redirect_uri", "http://127.0.0.1:1/other"),
        ],
    ] {
        let resp = c
            .get(format!("{}/authorize", fake.auth_url()))
            .query(&query)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(resp.text().await.unwrap(), anilist::INVALID_CLIENT_BODY);
    }
    // Denied.
    fake.set_deny_authorization(true);
    let resp = c
        .get(format!("{}/authorize", fake.auth_url()))
        .query(&[
            ("client_id", FakeAnilist::CLIENT_ID),
            ("response_type", "token"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        fragment_param(&location(&resp), "error").as_deref(),
        Some("access_denied")
    );
}

fn base64_url(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}

#[tokio::test]
async fn code_grant_exchange_and_its_errors() {
    let fake = FakeAnilist::start().await;
    let redirect = "http://127.0.0.1:45822/callback";
    let config = fake.config_toml_with_secret(redirect);
    assert!(config.contains(&format!(
        "client_secret = \"{}\"",
        FakeAnilist::CLIENT_SECRET
    )));
    fake.add_user(User::new(4242, "coder"));
    fake.set_login_user(4242);
    let c = client();
    let resp = c
        .get(format!("{}/authorize", fake.auth_url()))
        .query(&[
            ("client_id", FakeAnilist::CLIENT_ID),
            ("redirect_uri", redirect),
            ("response_type", "code"),
            ("state", "xyz"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND);
    let loc = location(&resp);
    let url = reqwest::Url::parse(&loc).unwrap();
    assert_eq!(&loc[..redirect.len()], redirect);
    let q: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    assert_eq!(q[0].0, "code");
    assert_eq!(q[1], ("state".to_string(), "xyz".to_string()));
    let code = q[0].1.clone();
    let exchange = |secret: &str, code: &str| {
        c.post(format!("{}/token", fake.auth_url()))
            .json(&json!({
                "grant_type": "authorization_code",
                "client_id": FakeAnilist::CLIENT_ID,
                "client_secret": secret,
                "redirect_uri": redirect,
                "code": code,
            }))
            .send()
    };
    let bad = exchange("wrong", &code).await.unwrap();
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(bad.text().await.unwrap(), anilist::INVALID_CLIENT_BODY);
    let ok = exchange(FakeAnilist::CLIENT_SECRET, &code).await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let text = ok.text().await.unwrap();
    assert!(
        text.starts_with(r#"{"token_type":"Bearer","expires_in":31536000,"access_token":""#),
        "{text}"
    );
    let v: Value = serde_json::from_str(&text).unwrap();
    let token = v["access_token"].as_str().unwrap();
    assert_eq!(anilist::jwt_payload(token).unwrap()["sub"], "4242");
    let r = gql(&fake, Some(token), "{ Viewer { id } }", Value::Null).await;
    assert_eq!(r.json()["data"]["Viewer"]["id"], 4242);
    // Codes are single use; garbage codes are refused.
    for (code, hint) in [
        (code.as_str(), "Authorization code has been revoked"),
        ("def502000000", "Cannot decrypt the authorization code"),
    ] {
        let again = exchange(FakeAnilist::CLIENT_SECRET, code).await.unwrap();
        assert_eq!(again.status(), StatusCode::BAD_REQUEST);
        let v: Value = again.json().await.unwrap();
        assert_eq!(v["error"], "invalid_request");
        assert_eq!(v["hint"], hint);
    }
    // Other grants are not supported (no refresh tokens on AniList).
    let r = c
        .post(format!("{}/token", fake.auth_url()))
        .json(&json!({ "grant_type": "refresh_token", "refresh_token": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        r.text().await.unwrap(),
        anilist::UNSUPPORTED_GRANT_TYPE_BODY
    );
}

#[tokio::test]
async fn pin_flow_shows_the_token_on_a_page() {
    let fake = FakeAnilist::start().await;
    fake.set_redirect_uri(anilist::PIN_URI);
    let c = client();
    let resp = c
        .get(format!(
            "{}/authorize?client_id={}&response_type=token",
            fake.auth_url(),
            FakeAnilist::CLIENT_ID
        ))
        .send()
        .await
        .unwrap();
    let loc = location(&resp);
    assert!(
        loc.starts_with(&format!("{}#access_token=", fake.pin_url())),
        "{loc}"
    );
    let token = fragment_param(&loc, "access_token").unwrap();
    let page = c.get(&loc).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    assert!(html.contains(&format!(">{token}</textarea>")), "{html}");
}

#[tokio::test]
async fn token_expiry_is_readable_and_enforced() {
    let fake = FakeAnilist::start().await;
    let exp = now() + 2;
    let token = fake.issue_token_expiring(DEFAULT_USER_ID, exp);
    let claims = anilist::jwt_payload(&token).unwrap();
    assert_eq!(claims["exp"].as_i64(), Some(exp));
    assert_eq!(claims["sub"], "12345");
    assert_eq!(
        gql(&fake, Some(&token), "{ Viewer { id } }", Value::Null)
            .await
            .status,
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = gql(&fake, Some(&token), "{ Viewer { id } }", Value::Null).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(first_message(&r), "Invalid token");
    // Passport-style fractional claims, on request.
    fake.set_float_claims(true);
    let claims = anilist::jwt_payload(&fake.issue_token(DEFAULT_USER_ID)).unwrap();
    assert!(claims["exp"].is_f64(), "{claims}");
}

#[test]
fn background_server_serves_sync_tests_until_dropped() {
    let fake = FakeAnilist::start_background();
    let url = fake.api_url();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let status = rt.block_on(async {
        client()
            .post(&url)
            .json(&json!({ "query": "{ GenreCollection }" }))
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, StatusCode::OK);
    drop(fake);
    let err = rt.block_on(async {
        client()
            .post(&url)
            .json(&json!({ "query": "{ GenreCollection }" }))
            .send()
            .await
    });
    assert!(err.is_err());
}

#[tokio::test]
async fn graphql_details_operations_typename_positions() {
    let fake = FakeAnilist::start().await;
    fake.add_media(Media::anime(1, "One", Some(1)));
    // Several operations: operationName picks one; without it, an error.
    let doc =
        "query A { Media(id: 1) { id } }\nquery B { Media(id: 1) { __typename title { romaji } } }";
    let r = send(&fake, None, json!({ "query": doc, "operationName": "B" })).await;
    assert_eq!(
        r.text,
        r#"{"data":{"Media":{"__typename":"Media","title":{"romaji":"One"}}}}"#
    );
    let r = send(&fake, None, json!({ "query": doc })).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        first_message(&r),
        "Must provide operation name if query contains multiple operations."
    );
    // Variables sent as a JSON string are read too.
    let r = send(
        &fake,
        None,
        json!({ "query": "query ($id: Int) { Media(id: $id) { id } }", "variables": "{\"id\": 1}" }),
    )
    .await;
    assert_eq!(r.text, r#"{"data":{"Media":{"id":1}}}"#);
    // Columns count characters (a tab is one), comments are skipped.
    let r = gql(
        &fake,
        None,
        "# list\nquery {\n\tMedia(id: 1) {\n\t\tid # the id\n\t\tnope\n\t}\n}",
        Value::Null,
    )
    .await;
    assert_eq!(
        r.json()["errors"][0]["locations"],
        json!([{ "line": 5, "column": 3 }])
    );
    let r = gql(
        &fake,
        None,
        "query {\n  Media(\n    id: 1 # comment (with parens)\n    mystery: \"a, b: c\"\n  ) { id }\n}",
        Value::Null,
    )
    .await;
    assert_eq!(
        r.json()["errors"][0],
        json!({
            "message": "Unknown argument \"mystery\" on field \"Media\" of type \"Query\".",
            "status": 400,
            "locations": [{ "line": 4, "column": 5 }]
        })
    );
}

#[tokio::test]
async fn pages_take_one_data_field_and_page_info_is_inexact() {
    let fake = FakeAnilist::start().await;
    for id in 1..=5 {
        fake.add_media(Media::anime(id, &format!("Show {id}"), Some(12)));
        fake.add_entry(
            DEFAULT_USER_ID,
            Entry::new(id, ListStatus::Current).progress(id as u32),
        );
    }
    let q = "query ($p: Int) { Page(page: $p, perPage: 2) { pageInfo { total lastPage hasNextPage } mediaList(userId: 12345, type: ANIME, sort: PROGRESS_DESC) { mediaId } } }";
    let d = data(&fake, None, q, json!({ "p": 1 })).await;
    assert_eq!(
        d["Page"],
        json!({
            "pageInfo": { "total": 4, "lastPage": 2, "hasNextPage": true },
            "mediaList": [{ "mediaId": 5 }, { "mediaId": 4 }]
        })
    );
    let d = data(&fake, None, q, json!({ "p": 3 })).await;
    assert_eq!(
        d["Page"],
        json!({
            "pageInfo": { "total": 5, "lastPage": 3, "hasNextPage": false },
            "mediaList": [{ "mediaId": 1 }]
        })
    );
    fake.set_accurate_page_info(true);
    let d = data(&fake, None, q, json!({ "p": 1 })).await;
    assert_eq!(
        d["Page"]["pageInfo"],
        json!({ "total": 5, "lastPage": 3, "hasNextPage": true })
    );
    let r = gql(
        &fake,
        None,
        "{ Page { pageInfo { total } media { id } mediaList(userId: 12345) { id } } }",
        Value::Null,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["data"], json!({ "Page": null }));
}

#[tokio::test]
async fn bulk_updates_and_custom_list_deletion() {
    let fake = FakeAnilist::start().await;
    fake.add_media(Media::manga(1, "Berserk", None, None));
    fake.add_media(Media::manga(2, "Vagabond", Some(327), Some(37)));
    let a = fake.add_entry(
        DEFAULT_USER_ID,
        Entry::new(1, ListStatus::Current).custom_lists(&["Seinen"]),
    );
    let b = fake.add_entry(
        DEFAULT_USER_ID,
        Entry::new(2, ListStatus::Current).custom_lists(&["Seinen"]),
    );
    let token = fake.issue_token(DEFAULT_USER_ID);
    let d = data(
        &fake,
        Some(&token),
        "mutation ($ids: [Int]) { UpdateMediaListEntries(ids: $ids, status: PAUSED) { id status } }",
        json!({ "ids": [a, b] }),
    )
    .await;
    assert_eq!(
        d["UpdateMediaListEntries"],
        json!([{ "id": a, "status": "PAUSED" }, { "id": b, "status": "PAUSED" }])
    );
    let d = data(
        &fake,
        Some(&token),
        "mutation { DeleteCustomList(customList: \"Seinen\", type: MANGA) { deleted } }",
        Value::Null,
    )
    .await;
    assert_eq!(d["DeleteCustomList"]["deleted"], true);
    assert!(
        fake.entries(DEFAULT_USER_ID)
            .iter()
            .all(|e| e.custom_lists.is_empty())
    );
    assert!(
        fake.user(DEFAULT_USER_ID)
            .unwrap()
            .manga
            .custom_lists
            .is_empty()
    );
    // Custom lists on save: unknown names are ignored.
    fake.add_custom_list(DEFAULT_USER_ID, MediaType::Manga, "Classics");
    let d = data(
        &fake,
        Some(&token),
        "mutation { SaveMediaListEntry(mediaId: 2, customLists: [\"Classics\", \"Nope\"], progressVolumes: 5) { customLists progressVolumes } }",
        Value::Null,
    )
    .await;
    assert_eq!(
        d["SaveMediaListEntry"],
        json!({ "customLists": { "Classics": true }, "progressVolumes": 5 })
    );
}

#[tokio::test]
async fn go_down_and_up_keeps_state() {
    let fake = FakeAnilist::start().await;
    let token = fake.issue_token(DEFAULT_USER_ID);
    assert_eq!(
        gql(&fake, Some(&token), "{ Viewer { id } }", Value::Null)
            .await
            .status,
        StatusCode::OK
    );
    fake.go_down();
    let err = client()
        .post(fake.api_url())
        .json(&json!({ "query": "{ Viewer { id } }" }))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect() || err.is_request(), "{err}");
    fake.go_up();
    let r = gql(&fake, Some(&token), "{ Viewer { id } }", Value::Null).await;
    assert_eq!(r.text, r#"{"data":{"Viewer":{"id":12345}}}"#);
}

#[tokio::test]
async fn typical_client_queries_work() {
    let fake = FakeAnilist::start().await;
    let soon = now() + 7200;
    fake.add_media(
        Media::anime(154587, "Sousou no Frieren", Some(28))
            .english("Frieren: Beyond Journey's End")
            .native("葬送のフリーレン")
            .id_mal(52991)
            .airing(5, soon)
            .start_date(FuzzyDate::ymd(2023, 9, 29)),
    );
    fake.add_media(Media::manga(30002, "Berserk", None, None).status("RELEASING"));
    fake.add_entry(
        DEFAULT_USER_ID,
        Entry::new(154587, ListStatus::Repeating)
            .progress(4)
            .score_raw(90)
            .repeat(1)
            .started(FuzzyDate::ymd(2024, 1, 2)),
    );
    fake.add_entry(
        DEFAULT_USER_ID,
        Entry::new(30002, ListStatus::Current)
            .progress(370)
            .volumes(40),
    );
    let token = fake.issue_token(DEFAULT_USER_ID);
    let viewer = data(
        &fake,
        Some(&token),
        "query { Viewer { id name mediaListOptions { scoreFormat } } }",
        Value::Null,
    )
    .await;
    assert_eq!(
        viewer,
        json!({ "Viewer": { "id": 12345, "name": "UserName", "mediaListOptions": { "scoreFormat": "POINT_10_DECIMAL" } } })
    );
    let list = "query ($userId: Int, $type: MediaType) { MediaListCollection(userId: $userId, type: $type) {
        lists { name isCustomList status entries { id mediaId status progress progressVolumes score repeat updatedAt
          startedAt { year month day } completedAt { year month day }
          media { id idMal title { romaji english native userPreferred } episodes chapters volumes status format
                  coverImage { large } nextAiringEpisode { airingAt timeUntilAiring episode } } } } } }";
    let d = data(
        &fake,
        Some(&token),
        list,
        json!({ "userId": 12345, "type": "ANIME" }),
    )
    .await;
    let e = &d["MediaListCollection"]["lists"][0]["entries"][0];
    assert_eq!(d["MediaListCollection"]["lists"][0]["name"], "Rewatching");
    assert_eq!(e["status"], "REPEATING");
    assert_eq!(e["score"], 9);
    assert_eq!(
        e["startedAt"],
        json!({ "year": 2024, "month": 1, "day": 2 })
    );
    assert_eq!(e["media"]["idMal"], 52991);
    assert_eq!(e["media"]["episodes"], 28);
    assert_eq!(e["media"]["chapters"], Value::Null);
    assert_eq!(e["media"]["status"], "RELEASING");
    assert_eq!(e["media"]["nextAiringEpisode"]["airingAt"], soon);
    assert_eq!(e["media"]["title"]["native"], "葬送のフリーレン");
    let d = data(
        &fake,
        Some(&token),
        list,
        json!({ "userId": 12345, "type": "MANGA" }),
    )
    .await;
    let e = &d["MediaListCollection"]["lists"][0]["entries"][0];
    assert_eq!(d["MediaListCollection"]["lists"][0]["name"], "Reading");
    assert_eq!(
        (e["progress"].as_u64(), e["progressVolumes"].as_u64()),
        (Some(370), Some(40))
    );
    assert_eq!(e["media"]["chapters"], Value::Null);

    let save = "mutation ($mediaId: Int, $status: MediaListStatus, $progress: Int, $score: Float, $repeat: Int, $startedAt: FuzzyDateInput, $completedAt: FuzzyDateInput) {
        SaveMediaListEntry(mediaId: $mediaId, status: $status, progress: $progress, score: $score, repeat: $repeat, startedAt: $startedAt, completedAt: $completedAt) { id mediaId status progress score updatedAt } }";
    let d = data(
        &fake,
        Some(&token),
        save,
        json!({ "mediaId": 154587, "progress": 5 }),
    )
    .await;
    assert_eq!(d["SaveMediaListEntry"]["status"], "REPEATING");
    assert_eq!(d["SaveMediaListEntry"]["progress"], 5);
    let d = data(
        &fake,
        Some(&token),
        save,
        json!({ "mediaId": 154587, "status": "COMPLETED", "completedAt": { "year": 2024, "month": 3, "day": 1 } }),
    )
    .await;
    assert_eq!(d["SaveMediaListEntry"]["status"], "COMPLETED");
    let e = fake.entry(DEFAULT_USER_ID, 154587).unwrap();
    assert_eq!((e.progress, e.repeat, e.score_raw), (5, 1, 90));
    assert_eq!(e.completed_at, FuzzyDate::ymd(2024, 3, 1));
    let search = "query ($search: String, $type: MediaType) { Page(perPage: 10) { media(search: $search, type: $type, sort: SEARCH_MATCH) { id title { userPreferred } format episodes chapters } } }";
    let d = data(
        &fake,
        Some(&token),
        search,
        json!({ "search": "frieren", "type": "ANIME" }),
    )
    .await;
    assert_eq!(d["Page"]["media"][0]["id"], 154587);
}
