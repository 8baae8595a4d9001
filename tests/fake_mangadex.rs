//! Tests of the MangaDex fake itself (plain reqwest, no malt code), against the
//! recorded fixtures of `tests/fixtures/mangadex/` (copies of
//! `shared/api/fixtures/mangadex/`).

mod support;

use std::time::Duration;

use reqwest::header::HeaderMap;
use serde_json::{Map, Value, json};
use support::mangadex::{
    self, ACCESS_LIFETIME, BAD_TOKEN, CLIENT_ID, CLIENT_SECRET, Chapter, DEFAULT_PASSWORD,
    DEFAULT_USERNAME, FakeMangadex, Fault, INVALID_LIMIT, Manga, NOT_LOGGED_IN, REFRESH_LIFETIME,
};

// ---------------------------------------------------------------------------
// The fixtures (tests/fixtures/mangadex, checked against shared/ when present)
// ---------------------------------------------------------------------------

const FX_TOKEN: &str = include_str!("fixtures/mangadex/oauth-token-password-grant-response.json");
const FX_STATUSES: &str = include_str!("fixtures/mangadex/manga-status-all.json");
const FX_STATUS: &str = include_str!("fixtures/mangadex/manga-id-status.json");
const FX_READ: &str = include_str!("fixtures/mangadex/manga-id-read-markers.json");
const FX_AGGREGATE: &str = include_str!("fixtures/mangadex/manga-aggregate.json");
const FX_AGGREGATE_EMPTY: &str =
    include_str!("fixtures/mangadex/manga-aggregate-empty-volumes-array.json");
const FX_MANGA: &str = include_str!("fixtures/mangadex/manga-entity.json");
const FX_CHAPTER: &str = include_str!("fixtures/mangadex/chapter-entity.json");

const FIXTURES: [(&str, &str); 8] = [
    ("oauth-token-password-grant-response.json", FX_TOKEN),
    ("manga-status-all.json", FX_STATUSES),
    ("manga-id-status.json", FX_STATUS),
    ("manga-id-read-markers.json", FX_READ),
    ("manga-aggregate.json", FX_AGGREGATE),
    (
        "manga-aggregate-empty-volumes-array.json",
        FX_AGGREGATE_EMPTY,
    ),
    ("manga-entity.json", FX_MANGA),
    ("chapter-entity.json", FX_CHAPTER),
];

/// Ids of the recorded aggregate (`manga-aggregate.json`).
const CH0: &str = "01defbd2-ab44-4672-9236-ff71b82774e8";
const CH1: &str = "7729dc89-38bd-4e90-a566-e63558d28cfd";
const CH1_OTHERS: [&str; 2] = [
    "c30e8966-cef8-46c6-bc31-f24f6827bf84",
    "b5ced190-b89f-43e9-b915-7fc0e5596c71",
];
const CH2: &str = "68f1bce2-1ea3-4100-b8a5-3c182507906c";
const CH2_OTHERS: [&str; 2] = [
    "6fd96344-741d-4a6c-9ff0-0a177f459cbc",
    "b1ae77a4-d587-4fd7-8f32-d180c619d9bf",
];
const CH3: &str = "8ea939ec-02fb-4a4a-836c-ae09871c3354";
const CH3_OTHERS: [&str; 2] = [
    "cbe758e6-ea2e-4cb4-a621-df9e06181519",
    "f08c1906-b2a6-45fa-a26a-4cc3b1cf1dab",
];
/// Manga ids of `manga-status-all.json`.
const READING: &str = "b019ea5d-5fe6-44d4-abbc-f546f210884d";
const DROPPED: &str = "2394a5c7-1d2e-461f-acde-18726b9e37d6";
/// Nagatoro (`manga-entity.json`).
const NAGATORO: &str = "d86cf65b-5f6c-437d-a0af-19a31f94ec55";
/// Chapter ids of `manga-id-read-markers.json`.
const READ_IDS: [&str; 3] = [
    "00057883-357b-4734-9469-52967e59ef4c",
    "000b7978-d9bd-49ec-a8f6-a0737368415f",
    "0015b621-a175-47f5-81fb-5976c88e18c4",
];

fn fx(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

/// The fixture without whitespace outside strings (key order kept).
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
fn embedded_fixtures_match_shared() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/api/fixtures/mangadex"
    );
    if !std::path::Path::new(dir).is_dir() {
        eprintln!("no {dir}; skipping");
        return;
    }
    for (name, text) in FIXTURES {
        let theirs = std::fs::read_to_string(format!("{dir}/{name}")).unwrap();
        assert_eq!(text, theirs, "{name} differs from shared/");
    }
    let count = std::fs::read_dir(dir).unwrap().count();
    assert_eq!(
        count,
        FIXTURES.len(),
        "a fixture in shared/ is not vendored"
    );
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

struct Resp {
    status: u16,
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

    fn header_i64(&self, name: &str) -> i64 {
        self.header(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no numeric {name}: {:?}", self.headers))
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .user_agent("malt-tests/0")
        .build()
        .unwrap()
}

async fn finish(resp: reqwest::Response) -> Resp {
    Resp {
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
        text: resp.text().await.unwrap(),
    }
}

async fn get(fake: &FakeMangadex, path: &str, token: Option<&str>) -> Resp {
    let mut req = client().get(format!("{}{path}", fake.api_url()));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    finish(req.send().await.unwrap()).await
}

async fn post(fake: &FakeMangadex, path: &str, token: Option<&str>, body: Value) -> Resp {
    let mut req = client()
        .post(format!("{}{path}", fake.api_url()))
        .json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    finish(req.send().await.unwrap()).await
}

async fn token_form(fake: &FakeMangadex, form: &[(&str, &str)]) -> Resp {
    finish(
        client()
            .post(fake.token_url())
            .form(form)
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn password_grant(fake: &FakeMangadex, username: &str, password: &str) -> Resp {
    token_form(
        fake,
        &[
            ("grant_type", "password"),
            ("username", username),
            ("password", password),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ],
    )
    .await
}

async fn refresh_grant(fake: &FakeMangadex, refresh: &str) -> Resp {
    token_form(
        fake,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ],
    )
    .await
}

/// Logs the default user in: `(access, refresh)`.
async fn login(fake: &FakeMangadex) -> (String, String) {
    let r = password_grant(fake, DEFAULT_USERNAME, DEFAULT_PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    (
        v["access_token"].as_str().unwrap().to_string(),
        v["refresh_token"].as_str().unwrap().to_string(),
    )
}

/// A fake without a rate limit (for tests making many requests).
async fn fake() -> FakeMangadex {
    let fake = FakeMangadex::start().await;
    fake.disable_rate_limit();
    fake
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Asserts the MangaDex error shape and returns `(title, detail)`.
fn assert_error(r: &Resp, status: u16) -> (String, String) {
    assert_eq!(r.status, status, "{}", r.text);
    let v = r.json();
    assert_eq!(v["result"], "error", "{}", r.text);
    let errors = v["errors"].as_array().expect("errors list");
    assert_eq!(errors.len(), 1);
    let e = errors[0].as_object().unwrap();
    let keys: Vec<&str> = e.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["context", "detail", "id", "status", "title"],
        "{}",
        r.text
    );
    assert!(mangadex::is_uuid(e["id"].as_str().unwrap()));
    assert_eq!(e["status"], json!(status));
    assert!(e["context"].is_null());
    (
        e["title"].as_str().unwrap().to_string(),
        e["detail"].as_str().unwrap().to_string(),
    )
}

/// Keys whose object values are free-form maps (language → text, site → link):
/// only "object of strings" is compared.
const FREE_MAPS: [&str; 6] = [
    "title",
    "description",
    "links",
    "biography",
    "name",
    "altTitles",
];

/// Same keys (recursively) and JSON types as the fixture; `null` on either
/// side matches anything; array items are matched by `type` when they have one.
fn same_shape(ours: &Value, theirs: &Value, path: &str) -> Result<(), String> {
    let key = path.rsplit('.').next().unwrap_or("");
    match (ours, theirs) {
        (Value::Null, _) | (_, Value::Null) => Ok(()),
        (Value::Object(o), Value::Object(_)) if FREE_MAPS.contains(&key) => {
            if o.values().all(Value::is_string) {
                Ok(())
            } else {
                Err(format!("{path}: not a map of strings: {ours}"))
            }
        }
        (Value::Array(o), Value::Array(_)) if key == "altTitles" => o
            .iter()
            .all(|x| {
                x.as_object()
                    .is_some_and(|m| m.values().all(Value::is_string))
            })
            .then_some(())
            .ok_or_else(|| format!("{path}: not a list of maps: {ours}")),
        (Value::Object(o), Value::Object(t)) => {
            let ok: Vec<&String> = o.keys().collect();
            let tk: Vec<&String> = t.keys().collect();
            if ok != tk {
                return Err(format!("{path}: keys {ok:?} != fixture {tk:?}"));
            }
            for (k, v) in o {
                same_shape(v, &t[k], &format!("{path}.{k}"))?;
            }
            Ok(())
        }
        (Value::Array(o), Value::Array(t)) => {
            for (i, item) in o.iter().enumerate() {
                let counterpart = match item.get("type") {
                    Some(ty) => t.iter().find(|x| x.get("type") == Some(ty)),
                    None => t.first(),
                };
                match counterpart {
                    Some(c) => same_shape(item, c, &format!("{path}[{i}]"))?,
                    None if t.is_empty() => {}
                    None => return Err(format!("{path}[{i}]: no {item} in the fixture")),
                }
            }
            Ok(())
        }
        (Value::String(_), Value::String(_))
        | (Value::Number(_), Value::Number(_))
        | (Value::Bool(_), Value::Bool(_)) => Ok(()),
        _ => Err(format!("{path}: {ours} vs fixture {theirs}")),
    }
}

/// The aggregate with PHP's lists turned back into maps (keyed by the
/// `volume`/`chapter` field, which must equal the key in a map).
fn normalize_aggregate(v: &Value) -> Value {
    fn keyed(v: &Value, field: &str) -> Map<String, Value> {
        match v {
            Value::Array(items) => items
                .iter()
                .map(|x| (x[field].as_str().unwrap().to_string(), x.clone()))
                .collect(),
            Value::Object(m) => {
                for (k, x) in m {
                    assert_eq!(x[field].as_str(), Some(k.as_str()), "key != {field}");
                }
                m.clone()
            }
            other => panic!("not a map or list: {other}"),
        }
    }
    let mut vols = keyed(&v["volumes"], "volume");
    for vol in vols.values_mut() {
        vol["chapters"] = Value::Object(keyed(&vol["chapters"], "chapter"));
    }
    json!({ "result": v["result"], "volumes": vols })
}

/// The manga and uploads of `manga-aggregate.json`.
fn add_fixture_aggregate(fake: &FakeMangadex, manga: &str) {
    fake.add_manga(Manga::new(manga, "Aggregate"));
    fake.add_chapters(
        manga,
        vec![
            Chapter::new(CH0, Some("0"), Some("0")),
            Chapter::new(CH1, Some("1"), Some("1")).others(&CH1_OTHERS),
            Chapter::new(CH2, Some("1"), Some("2")).others(&CH2_OTHERS),
            Chapter::new(CH3, Some("1"), Some("3")).others(&CH3_OTHERS),
        ],
    );
}

// ---------------------------------------------------------------------------
// Auth: the token endpoint
// ---------------------------------------------------------------------------

#[tokio::test]
async fn password_grant_answers_like_the_fixture() {
    let fake = fake().await;
    let r = password_grant(&fake, DEFAULT_USERNAME, DEFAULT_PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let ours = r.json();
    let theirs = fx(FX_TOKEN);
    // Same keys, in the same order, with the same types.
    let keys: Vec<&String> = ours.as_object().unwrap().keys().collect();
    let fixture_keys: Vec<&String> = theirs.as_object().unwrap().keys().collect();
    assert_eq!(keys, fixture_keys);
    let mut at = 0;
    for k in compact(FX_TOKEN)
        .split("\":")
        .filter_map(|s| s.rsplit('"').next())
    {
        if k.is_empty() || !theirs.as_object().unwrap().contains_key(k) {
            continue;
        }
        let pos = r.text.find(&format!("\"{k}\":")).unwrap();
        assert!(pos >= at, "{k} out of order in {}", r.text);
        at = pos;
    }
    same_shape(&ours, &theirs, "token").unwrap();
    for k in [
        "expires_in",
        "token_type",
        "not-before-policy",
        "scope",
        "client_type",
    ] {
        assert_eq!(ours[k], theirs[k], "{k}");
    }
    assert_eq!(ours["expires_in"], ACCESS_LIFETIME);
    assert_eq!(ours["refresh_expires_in"], REFRESH_LIFETIME);
    assert!(mangadex::is_uuid(ours["session_state"].as_str().unwrap()));
    // JWT-shaped tokens carrying the same session and a 15-minute lifetime.
    let access = mangadex::jwt_payload(ours["access_token"].as_str().unwrap()).unwrap();
    let refresh = mangadex::jwt_payload(ours["refresh_token"].as_str().unwrap()).unwrap();
    assert_eq!(access["typ"], "Bearer");
    assert_eq!(refresh["typ"], "Refresh");
    assert_eq!(access["azp"], CLIENT_ID);
    assert_eq!(access["sid"], ours["session_state"]);
    assert_eq!(access["preferred_username"], DEFAULT_USERNAME);
    assert_eq!(
        access["exp"].as_i64().unwrap() - access["iat"].as_i64().unwrap(),
        900
    );
    // The token opens the user endpoints.
    let token = ours["access_token"].as_str().unwrap();
    assert_eq!(get(&fake, "/manga/status", Some(token)).await.status, 200);
    assert_eq!(fake.login_count(), 1);
    assert_eq!(fake.last_issued().unwrap().access, token);
    // HTTP Basic client authentication works too.
    let r = finish(
        client()
            .post(fake.token_url())
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .form(&[
                ("grant_type", "password"),
                ("username", DEFAULT_USERNAME),
                ("password", DEFAULT_PASSWORD),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn login_errors_are_keycloaks() {
    let fake = fake().await;
    let wrong_password = password_grant(&fake, DEFAULT_USERNAME, "nope").await;
    assert_eq!(wrong_password.status, 401);
    assert_eq!(wrong_password.text, mangadex::INVALID_USER_CREDENTIALS_BODY);
    assert_eq!(
        wrong_password.json(),
        json!({ "error": "invalid_grant", "error_description": "Invalid user credentials" })
    );
    let unknown_user = password_grant(&fake, "nobody", DEFAULT_PASSWORD).await;
    assert_eq!(
        (unknown_user.status, unknown_user.text.as_str()),
        (401, mangadex::INVALID_USER_CREDENTIALS_BODY)
    );

    let form = |id: &'static str, secret: Option<&'static str>| {
        let mut f = vec![
            ("grant_type", "password"),
            ("username", DEFAULT_USERNAME),
            ("password", DEFAULT_PASSWORD),
            ("client_id", id),
        ];
        if let Some(s) = secret {
            f.push(("client_secret", s));
        }
        f
    };
    let r = token_form(&fake, &form(CLIENT_ID, Some("wrong-secret"))).await;
    assert_eq!(
        (r.status, r.text.as_str()),
        (401, mangadex::UNAUTHORIZED_CLIENT_BODY)
    );
    let r = token_form(&fake, &form(CLIENT_ID, None)).await;
    assert_eq!(
        (r.status, r.text.as_str()),
        (401, mangadex::UNAUTHORIZED_CLIENT_BODY)
    );
    let r = token_form(&fake, &form("personal-client-unknown", Some(CLIENT_SECRET))).await;
    assert_eq!(
        (r.status, r.text.as_str()),
        (401, mangadex::INVALID_CLIENT_BODY)
    );

    // A requested client staff have not approved yet.
    fake.add_client(
        "personal-client-pending",
        "pending-secret",
        DEFAULT_USERNAME,
        false,
    );
    let r = token_form(
        &fake,
        &form("personal-client-pending", Some("pending-secret")),
    )
    .await;
    assert_eq!(
        (r.status, r.text.as_str()),
        (401, mangadex::INVALID_CLIENT_BODY)
    );
    fake.set_client_approved("personal-client-pending", true);
    let r = token_form(
        &fake,
        &form("personal-client-pending", Some("pending-secret")),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);

    // Only the owner of a personal client can use it.
    fake.add_user("someone-else", "their password");
    let r = password_grant(&fake, "someone-else", "their password").await;
    assert_eq!(
        (r.status, r.text.as_str()),
        (401, mangadex::INVALID_USER_CREDENTIALS_BODY)
    );

    // A JSON body has no form parameters.
    let r = finish(
        client()
            .post(fake.token_url())
            .json(&json!({
                "grant_type": "password", "username": DEFAULT_USERNAME, "password": DEFAULT_PASSWORD,
                "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET
            }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (r.status, r.text.as_str()),
        (400, mangadex::MISSING_GRANT_TYPE_BODY)
    );
    let r = token_form(&fake, &[("grant_type", "magic"), ("client_id", CLIENT_ID)]).await;
    assert_eq!(
        (r.status, r.text.as_str()),
        (400, mangadex::UNSUPPORTED_GRANT_TYPE_BODY)
    );
    let r = token_form(
        &fake,
        &[
            ("grant_type", "password"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ],
    )
    .await;
    assert_eq!(
        (r.status, r.text.as_str()),
        (401, mangadex::MISSING_USERNAME_BODY)
    );
    let r = finish(client().get(fake.token_url()).send().await.unwrap()).await;
    assert_eq!(r.status, 405);

    assert_eq!(fake.login_count(), 1);
    let failed = fake
        .token_requests()
        .iter()
        .filter(|r| r.status != 200)
        .count();
    assert_eq!(failed, 11);
}

#[tokio::test]
async fn refresh_tokens_rotate() {
    let fake = fake().await;
    let (access1, refresh1) = login(&fake).await;
    let r = refresh_grant(&fake, &refresh1).await;
    assert_eq!(r.status, 200, "{}", r.text);
    same_shape(&r.json(), &fx(FX_TOKEN), "refresh").unwrap();
    let v = r.json();
    let (access2, refresh2) = (
        v["access_token"].as_str().unwrap().to_string(),
        v["refresh_token"].as_str().unwrap().to_string(),
    );
    assert_ne!(access2, access1);
    assert_ne!(refresh2, refresh1);
    assert_eq!(v["expires_in"], 900);

    // The used refresh token is refused from now on; the new one works once.
    let r = refresh_grant(&fake, &refresh1).await;
    assert_eq!(
        (r.status, r.text.as_str()),
        (400, mangadex::STALE_TOKEN_BODY)
    );
    assert_eq!(
        r.json(),
        json!({ "error": "invalid_grant", "error_description": "Stale token" })
    );
    let r = refresh_grant(&fake, &refresh2).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let refresh3 = r.json()["refresh_token"].as_str().unwrap().to_string();
    let r = refresh_grant(&fake, &refresh2).await;
    assert_eq!(r.text, mangadex::STALE_TOKEN_BODY);
    // Access tokens already handed out stay valid until they expire.
    assert!(fake.access_token_valid(&access1));
    assert_eq!(
        get(&fake, "/manga/status", Some(&access1)).await.status,
        200
    );

    // Unknown tokens, another client's tokens.
    let r = refresh_grant(&fake, "not-a-token").await;
    assert_eq!(
        (r.status, r.text.as_str()),
        (400, mangadex::INVALID_REFRESH_TOKEN_BODY)
    );
    let r = refresh_grant(&fake, &access2).await;
    assert_eq!(r.text, mangadex::INVALID_REFRESH_TOKEN_BODY);
    fake.add_client("personal-client-two", "two", DEFAULT_USERNAME, true);
    let r = token_form(
        &fake,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh3),
            ("client_id", "personal-client-two"),
            ("client_secret", "two"),
        ],
    )
    .await;
    assert_eq!(
        (r.status, r.text.as_str()),
        (400, mangadex::REFRESH_CLIENT_MISMATCH_BODY)
    );
    let r = token_form(
        &fake,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ],
    )
    .await;
    assert_eq!(r.text, mangadex::NO_REFRESH_TOKEN_BODY);

    // Without rotation, old refresh tokens keep working.
    fake.set_rotation(false);
    let r = refresh_grant(&fake, &refresh3).await;
    assert_eq!(r.status, 200);
    let r = refresh_grant(&fake, &refresh3).await;
    assert_eq!(r.status, 200);
    fake.set_rotation(true);

    // Another process refreshes first: our refresh token is stale.
    let (_, mine) = login(&fake).await;
    let theirs = fake.refresh_elsewhere(&mine).unwrap();
    let r = refresh_grant(&fake, &mine).await;
    assert_eq!(
        (r.status, r.text.as_str()),
        (400, mangadex::STALE_TOKEN_BODY)
    );
    assert_eq!(refresh_grant(&fake, &theirs.refresh).await.status, 200);
    assert_eq!(
        fake.refresh_elsewhere("nope").unwrap_err(),
        mangadex::INVALID_REFRESH_TOKEN_BODY
    );

    // A revoked session: refresh refused, access tokens 401.
    fake.revoke_sessions();
    let r = refresh_grant(&fake, &refresh3).await;
    assert_eq!(
        (r.status, r.text.as_str()),
        (400, mangadex::SESSION_NOT_ACTIVE_BODY)
    );
    let r = get(&fake, "/manga/status", Some(&access2)).await;
    assert_error(&r, 401);
    assert_eq!(fake.refresh_count(), 5);
}

#[tokio::test]
async fn access_tokens_last_fifteen_minutes() {
    let fake = fake().await;
    let (access, refresh) = login(&fake).await;
    assert_eq!(get(&fake, "/manga/status", Some(&access)).await.status, 200);
    // (A few seconds of margin: the real clock ticks on under the fake's.)
    fake.advance_clock(ACCESS_LIFETIME - 5);
    assert_eq!(get(&fake, "/manga/status", Some(&access)).await.status, 200);
    fake.advance_clock(6);
    let r = get(&fake, "/manga/status", Some(&access)).await;
    assert_eq!(
        assert_error(&r, 401),
        (BAD_TOKEN.0.into(), BAD_TOKEN.1.into())
    );
    assert!(r.header("x-ratelimit-limit").is_some());
    // An expired token is refused on public endpoints too; no token is fine there.
    assert_error(&get(&fake, "/manga", Some(&access)).await, 401);
    assert_eq!(get(&fake, "/manga", None).await.status, 200);
    // Without a token, user endpoints say so.
    let r = get(&fake, "/manga/status", None).await;
    assert_eq!(
        assert_error(&r, 401),
        (NOT_LOGGED_IN.0.into(), NOT_LOGGED_IN.1.into())
    );

    // The refresh token outlives it.
    let r = refresh_grant(&fake, &refresh).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let access2 = r.json()["access_token"].as_str().unwrap().to_string();
    let refresh2 = r.json()["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(
        get(&fake, "/manga/status", Some(&access2)).await.status,
        200
    );
    fake.expire_access_tokens();
    assert_error(&get(&fake, "/manga/status", Some(&access2)).await, 401);

    // Until refresh_expires_in.
    fake.advance_clock(REFRESH_LIFETIME);
    let r = refresh_grant(&fake, &refresh2).await;
    assert_eq!(
        (r.status, r.text.as_str()),
        (400, mangadex::TOKEN_NOT_ACTIVE_BODY)
    );
    // Shorter lifetimes for tests that want them.
    fake.set_access_lifetime(60);
    let (access3, _) = login(&fake).await;
    let r = refresh_grant(&fake, &fake.last_issued().unwrap().refresh).await;
    assert_eq!(r.json()["expires_in"], 60);
    fake.advance_clock(61);
    assert!(!fake.access_token_valid(&access3));
}

// ---------------------------------------------------------------------------
// Reading statuses
// ---------------------------------------------------------------------------

#[tokio::test]
async fn statuses_match_the_fixtures() {
    let fake = fake().await;
    let (token, _) = login(&fake).await;
    // No statuses yet: PHP's empty array.
    let r = get(&fake, "/manga/status", Some(&token)).await;
    assert_eq!(r.text, r#"{"result":"ok","statuses":[]}"#);

    fake.add_manga(Manga::new(READING, "Reading"));
    fake.add_manga(Manga::new(DROPPED, "Dropped"));
    fake.set_status(READING, Some("reading"));
    fake.set_status(DROPPED, Some("dropped"));
    let r = get(&fake, "/manga/status", Some(&token)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), fx(FX_STATUSES));
    assert_eq!(r.text, compact(FX_STATUSES));
    let r = get(&fake, &format!("/manga/{READING}/status"), Some(&token)).await;
    assert_eq!(r.json(), fx(FX_STATUS));
    assert_eq!(r.text, compact(FX_STATUS));

    let r = get(&fake, "/manga/status?status=dropped", Some(&token)).await;
    assert_eq!(
        r.json(),
        json!({ "result": "ok", "statuses": { DROPPED: "dropped" } })
    );
    let r = get(&fake, "/manga/status?status=plan_to_read", Some(&token)).await;
    assert_eq!(r.text, r#"{"result":"ok","statuses":[]}"#);
    let (_, detail) = assert_error(
        &get(&fake, "/manga/status?status=read", Some(&token)).await,
        400,
    );
    assert!(detail.contains("enumeration"), "{detail}");

    // Not on the list: null; not a manga: 404.
    fake.set_status(DROPPED, None);
    let r = get(&fake, &format!("/manga/{DROPPED}/status"), Some(&token)).await;
    assert_eq!(r.text, r#"{"result":"ok","status":null}"#);
    let unknown = mangadex::uuid();
    assert_error(
        &get(&fake, &format!("/manga/{unknown}/status"), Some(&token)).await,
        404,
    );
}

#[tokio::test]
async fn posting_a_status_changes_the_list() {
    let fake = fake().await;
    let (token, _) = login(&fake).await;
    fake.add_manga(Manga::new(NAGATORO, "Nagatoro"));
    let path = format!("/manga/{NAGATORO}/status");
    for status in mangadex::STATUSES {
        let r = post(&fake, &path, Some(&token), json!({ "status": status })).await;
        assert_eq!((r.status, r.text.as_str()), (200, r#"{"result":"ok"}"#));
        assert_eq!(fake.status(NAGATORO).as_deref(), Some(status));
    }
    let r = post(&fake, &path, Some(&token), json!({ "status": "reading" })).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        fake.statuses(),
        [(NAGATORO.to_string(), "reading".to_string())]
    );

    // Refused: an unknown status, a missing key, a non-JSON body; nothing changes.
    let (_, detail) = assert_error(
        &post(
            &fake,
            &path,
            Some(&token),
            json!({ "status": "reading_now" }),
        )
        .await,
        400,
    );
    assert!(
        detail.contains("Does not have a value in the enumeration"),
        "{detail}"
    );
    assert_error(&post(&fake, &path, Some(&token), json!({})).await, 400);
    let r = finish(
        client()
            .post(format!("{}{path}", fake.api_url()))
            .bearer_auth(&token)
            .form(&[("status", "dropped")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(&r, 400);
    assert_eq!(fake.status(NAGATORO).as_deref(), Some("reading"));
    assert_error(
        &post(&fake, &path, None, json!({ "status": "dropped" })).await,
        401,
    );

    // null removes the status.
    let r = post(&fake, &path, Some(&token), json!({ "status": null })).await;
    assert_eq!(r.status, 200);
    assert_eq!(fake.status(NAGATORO), None);
    assert!(fake.statuses().is_empty());
    let unknown = mangadex::uuid();
    assert_error(
        &post(
            &fake,
            &format!("/manga/{unknown}/status"),
            Some(&token),
            json!({ "status": "reading" }),
        )
        .await,
        404,
    );
    let logged = fake.api_requests();
    let last_post = logged.iter().rfind(|r| r.method == "POST").unwrap();
    assert_eq!(last_post.json(), Some(json!({ "status": "reading" })));
    assert!(last_post.auth);
    assert_eq!(last_post.bearer.as_deref(), Some(token.as_str()));
    assert_eq!(last_post.status, 404);
}

// ---------------------------------------------------------------------------
// Read markers
// ---------------------------------------------------------------------------

#[tokio::test]
async fn read_markers_match_the_fixture() {
    let fake = fake().await;
    let (token, _) = login(&fake).await;
    fake.add_manga(Manga::new(NAGATORO, "Nagatoro"));
    fake.add_chapters(
        NAGATORO,
        READ_IDS
            .iter()
            .enumerate()
            .map(|(i, id)| Chapter::new(id, Some("1"), Some(&(i + 1).to_string())))
            .collect(),
    );
    let path = format!("/manga/{NAGATORO}/read");
    let r = get(&fake, &path, Some(&token)).await;
    assert_eq!(r.text, r#"{"result":"ok","data":[]}"#);

    let r = post(
        &fake,
        &path,
        Some(&token),
        json!({ "chapterIdsRead": READ_IDS }),
    )
    .await;
    assert_eq!((r.status, r.text.as_str()), (200, r#"{"result":"ok"}"#));
    let r = get(&fake, &path, Some(&token)).await;
    assert_eq!(r.json(), fx(FX_READ));
    assert_eq!(r.text, compact(FX_READ));
    assert_eq!(fake.read_markers(NAGATORO), READ_IDS);

    // Grouped: a map by manga id (titles without markers left out); flat otherwise.
    let other = mangadex::uuid();
    fake.add_manga(Manga::new(&other, "Other"));
    let q = format!("/manga/read?ids[]={NAGATORO}&ids[]={other}");
    let r = get(&fake, &format!("{q}&grouped=true"), Some(&token)).await;
    assert_eq!(
        r.json(),
        json!({ "result": "ok", "data": { NAGATORO: READ_IDS } })
    );
    let r = get(&fake, &q, Some(&token)).await;
    assert_eq!(r.json(), fx(FX_READ));
    let r = get(
        &fake,
        &format!("/manga/read?ids[]={other}&grouped=true"),
        Some(&token),
    )
    .await;
    assert_eq!(r.text, r#"{"result":"ok","data":[]}"#);
    // Percent-encoded brackets (what reqwest's .query() sends) are the same thing.
    let r = finish(
        client()
            .get(format!("{}/manga/read", fake.api_url()))
            .query(&[("ids[]", NAGATORO), ("grouped", "true")])
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.json()["data"][NAGATORO], json!(READ_IDS));
    // ids without brackets is a string to PHP.
    assert_error(
        &get(&fake, &format!("/manga/read?ids={NAGATORO}"), Some(&token)).await,
        400,
    );
    assert_error(
        &get(&fake, "/manga/read?grouped=true", Some(&token)).await,
        400,
    );
    assert_error(&get(&fake, &q, None).await, 401);

    // Unread, both at once.
    let r = post(
        &fake,
        &path,
        Some(&token),
        json!({ "chapterIdsRead": [], "chapterIdsUnread": [READ_IDS[1], READ_IDS[2]] }),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(fake.read_markers(NAGATORO), [READ_IDS[0]]);

    // Unknown chapters, chapters of another manga, bad types: 400, nothing changes.
    let stranger = mangadex::uuid();
    let (_, detail) = assert_error(
        &post(
            &fake,
            &path,
            Some(&token),
            json!({ "chapterIdsRead": [READ_IDS[1], stranger] }),
        )
        .await,
        400,
    );
    assert!(detail.contains(&stranger), "{detail}");
    let foreign = mangadex::uuid();
    fake.add_chapter(&other, Chapter::new(&foreign, None, Some("1")));
    assert_error(
        &post(
            &fake,
            &path,
            Some(&token),
            json!({ "chapterIdsRead": [foreign] }),
        )
        .await,
        400,
    );
    assert_error(
        &post(
            &fake,
            &path,
            Some(&token),
            json!({ "chapterIdsRead": READ_IDS[1] }),
        )
        .await,
        400,
    );
    assert_error(
        &post(
            &fake,
            &path,
            Some(&token),
            json!({ "chapterIdsRead": ["12"] }),
        )
        .await,
        400,
    );
    assert_eq!(fake.read_markers(NAGATORO), [READ_IDS[0]]);

    // The website marks too.
    fake.mark_read(NAGATORO, &[READ_IDS[2]]);
    assert_eq!(fake.read_markers(NAGATORO), [READ_IDS[0], READ_IDS[2]]);
    fake.mark_unread(NAGATORO, &[READ_IDS[0], READ_IDS[2]]);
    assert!(fake.read_markers(NAGATORO).is_empty());
    let r = post(
        &fake,
        &format!("{path}?updateHistory=true"),
        Some(&token),
        json!({ "chapterIdsRead": [READ_IDS[1]] }),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(fake.read_set(NAGATORO).len(), 1);
}

#[tokio::test]
async fn a_read_body_over_10_kb_is_refused_and_changes_nothing() {
    let fake = fake().await;
    let (token, _) = login(&fake).await;
    let manga = mangadex::uuid();
    fake.add_manga(Manga::new(&manga, "Long"));
    let ids: Vec<String> = (0..300).map(|_| mangadex::uuid()).collect();
    fake.add_chapters(
        &manga,
        ids.iter()
            .enumerate()
            .map(|(i, id)| Chapter::new(id, None, Some(&(i + 1).to_string())))
            .collect(),
    );
    let path = format!("/manga/{manga}/read");
    // 300 ids: about 11.7 KB.
    let body = json!({ "chapterIdsRead": ids });
    assert!(body.to_string().len() > mangadex::READ_BODY_LIMIT);
    let (title, detail) = assert_error(&post(&fake, &path, Some(&token), body).await, 400);
    assert_eq!(
        (title.as_str(), detail.as_str()),
        ("Bad Request", "Request body is too large")
    );
    assert!(fake.read_markers(&manga).is_empty());
    // 250 ids: under 10,000 bytes, taken.
    let body = json!({ "chapterIdsRead": ids[..250] });
    assert!(body.to_string().len() < 10_000);
    let r = post(&fake, &path, Some(&token), body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(fake.read_markers(&manga).len(), 250);
}

#[tokio::test]
async fn a_language_code_mangadex_does_not_write_is_a_400() {
    let fake = fake().await;
    let manga = mangadex::uuid();
    fake.add_manga(Manga::new(&manga, "Languages"));
    let la = mangadex::uuid();
    fake.add_chapter(&manga, Chapter::new(&la, None, Some("1")).language("es-la"));
    let aggregate = |langs: &str| format!("/manga/{manga}/aggregate?{langs}");
    for bad in ["es-419", "e", "english", "pt_br", "zh-hant"] {
        let r = get(
            &fake,
            &aggregate(&format!(
                "translatedLanguage[]=en&translatedLanguage[]={bad}"
            )),
            None,
        )
        .await;
        let (_, detail) = assert_error(&r, 400);
        assert_eq!(
            detail,
            r"Error validating /translatedLanguage/1: Does not match the regex pattern ^[a-zA-Z\-]{2,5}$",
            "{bad}"
        );
    }
    for good in ["es-la", "pt-br", "EN", "ja-ro"] {
        let r = get(
            &fake,
            &aggregate(&format!("translatedLanguage[]={good}")),
            None,
        )
        .await;
        assert_eq!(r.status, 200, "{good}: {}", r.text);
    }
    let r = get(&fake, &aggregate("translatedLanguage[]=es-la"), None).await;
    assert_eq!(
        r.json()["volumes"]["none"]["chapters"]["1"]["id"],
        json!(la)
    );
}

// ---------------------------------------------------------------------------
// Aggregate
// ---------------------------------------------------------------------------

#[tokio::test]
async fn aggregate_matches_the_fixture_with_phps_quirks() {
    let fake = fake().await;
    let manga = mangadex::uuid();
    add_fixture_aggregate(&fake, &manga);
    let r = get(&fake, &format!("/manga/{manga}/aggregate"), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        normalize_aggregate(&r.json()),
        normalize_aggregate(&fx(FX_AGGREGATE))
    );
    // A volume whose only chapter is "0": its chapters are a list.
    assert!(
        r.text.contains(&format!(
            r#"{{"volume":"0","count":1,"chapters":[{{"chapter":"0","id":"{CH0}","others":[],"count":1}}]}}"#
        )),
        "{}",
        r.text
    );
    // Volumes "0" and "1" in order: a list too, as PHP writes it.
    assert!(
        r.text
            .starts_with(r#"{"result":"ok","volumes":[{"volume":"0""#),
        "{}",
        r.text
    );
    // Chapters come highest first inside a volume (a map: keys "3","2","1").
    assert!(
        r.text.contains(&format!(
            r#"{{"volume":"1","count":9,"chapters":{{"3":{{"chapter":"3","id":"{CH3}","others":["{}","{}"],"count":3}},"2":"#,
            CH3_OTHERS[0], CH3_OTHERS[1]
        )),
        "{}",
        r.text
    );
    let with_lang = get(
        &fake,
        &format!("/manga/{manga}/aggregate?translatedLanguage[]=en"),
        None,
    )
    .await;
    assert_eq!(with_lang.text, r.text);

    // Nothing in the language asked for, or no chapters at all: "volumes":[].
    let r = get(
        &fake,
        &format!("/manga/{manga}/aggregate?translatedLanguage[]=fr"),
        None,
    )
    .await;
    assert_eq!(r.text, compact(FX_AGGREGATE_EMPTY));
    assert_eq!(r.text, r#"{"result":"ok","volumes":[]}"#);
    let bare = mangadex::uuid();
    fake.add_manga(Manga::new(&bare, "No chapters"));
    let r = get(&fake, &format!("/manga/{bare}/aggregate"), None).await;
    assert_eq!(r.text, compact(FX_AGGREGATE_EMPTY));
    assert_eq!(r.json(), fx(FX_AGGREGATE_EMPTY));

    let unknown = mangadex::uuid();
    assert_error(
        &get(&fake, &format!("/manga/{unknown}/aggregate"), None).await,
        404,
    );
    assert_error(&get(&fake, "/manga/not-a-uuid/aggregate", None).await, 400);
}

#[tokio::test]
async fn aggregate_numbers_are_strings_none_and_fractions() {
    let fake = fake().await;
    let manga = mangadex::uuid();
    fake.add_manga(Manga::new(&manga, "Numbers"));
    let ids: Vec<String> = (0..9).map(|_| mangadex::uuid()).collect();
    fake.add_chapters(
        &manga,
        vec![
            Chapter::new(&ids[0], Some("1"), Some("10")),
            Chapter::new(&ids[1], Some("1"), Some("11")),
            Chapter::new(&ids[2], Some("1"), Some("10.5")),
            Chapter::new(&ids[3], None, Some("12")),
            Chapter::new(&ids[4], None, None),
            Chapter::new(&ids[5], Some("1"), Some("11")).language("fr"),
            // A later upload of the same chapter joins the first one's `others`.
            Chapter::new(&ids[6], Some("1"), Some("10")),
            Chapter::new(&ids[7], None, None).title("Extra"),
            Chapter::new(&ids[8], Some("2"), Some("1")).language("fr"),
        ],
    );
    let r = get(
        &fake,
        &format!("/manga/{manga}/aggregate?translatedLanguage[]=en"),
        None,
    )
    .await;
    let expected = format!(
        concat!(
            r#"{{"result":"ok","volumes":{{"#,
            r#""1":{{"volume":"1","count":4,"chapters":{{"#,
            r#""11":{{"chapter":"11","id":"{i1}","others":[],"count":1}},"#,
            r#""10.5":{{"chapter":"10.5","id":"{i2}","others":[],"count":1}},"#,
            r#""10":{{"chapter":"10","id":"{i0}","others":["{i6}"],"count":2}}}}}},"#,
            r#""none":{{"volume":"none","count":3,"chapters":{{"#,
            r#""12":{{"chapter":"12","id":"{i3}","others":[],"count":1}},"#,
            r#""none":{{"chapter":"none","id":"{i4}","others":["{i7}"],"count":2}}}}}}}}}}"#
        ),
        i0 = ids[0],
        i1 = ids[1],
        i2 = ids[2],
        i3 = ids[3],
        i4 = ids[4],
        i6 = ids[6],
        i7 = ids[7],
    );
    assert_eq!(r.text, expected);

    // Every language: the French uploads join in (one as an alternative upload of 11).
    let r = get(&fake, &format!("/manga/{manga}/aggregate"), None).await;
    let v = r.json();
    assert_eq!(
        v["volumes"]["1"]["chapters"]["11"]["others"],
        json!([ids[5]])
    );
    // Volume "2" has one chapter "1": a map (its key is not "0").
    assert!(r.text.contains(&format!(
        r#""2":{{"volume":"2","count":1,"chapters":{{"1":{{"chapter":"1","id":"{}""#,
        ids[8]
    )));
    // Volume order: 1, 2, none.
    let p1 = r.text.find(r#""volume":"1""#).unwrap();
    let p2 = r.text.find(r#""volume":"2""#).unwrap();
    let pn = r.text.find(r#""volume":"none""#).unwrap();
    assert!(p1 < p2 && p2 < pn, "{}", r.text);
    // The chapter entity has null volume/chapter where the aggregate says "none".
    let r = get(&fake, &format!("/chapter/{}", ids[4]), None).await;
    let attrs = &r.json()["data"]["attributes"];
    assert_eq!(
        (attrs["volume"].clone(), attrs["chapter"].clone()),
        (Value::Null, Value::Null)
    );
}

// ---------------------------------------------------------------------------
// Entities and collections
// ---------------------------------------------------------------------------

fn nagatoro() -> Manga {
    Manga::new(NAGATORO, "Ijiranaide, Nagatoro-san")
        .title_in("ja-ro", "Ijiranaide, Nagatoro-san")
        .alt_title("en", "Don't Toy With Me, Miss Nagatoro")
        .alt_title("ja", "イジらないで、長瀞さん")
        .description("en", "A sadistic young girl named Nagatoro.")
        .status("completed")
        .last_volume("20")
        .last_chapter("154")
        .content_rating("suggestive")
        .demographic("shounen")
        .year(2017)
        .cover("5e4a4e0e-b2a6-4e7e-8e6e-169a8d26c7a8.jpg")
        .author("774 (Nanashi)")
        .tag("Romance", "genre")
        .tag("Comedy", "genre")
}

#[tokio::test]
async fn manga_entity_has_the_fixtures_shape() {
    let fake = fake().await;
    fake.add_manga(nagatoro());
    let ch = mangadex::uuid();
    fake.add_chapter(NAGATORO, Chapter::new(&ch, Some("20"), Some("154")));
    let r = get(
        &fake,
        &format!("/manga/{NAGATORO}?includes[]=cover_art&includes[]=author&includes[]=artist"),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let ours = r.json();
    let theirs = fx(FX_MANGA);
    same_shape(&ours, &theirs, "manga").unwrap();
    let data = &ours["data"];
    let types: Vec<&str> = data["relationships"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["author", "artist", "cover_art"]);
    // The author drew it: the artist is the same person.
    assert_eq!(
        data["relationships"][0]["id"],
        data["relationships"][1]["id"]
    );
    assert_eq!(
        data["relationships"][1]["attributes"]["name"],
        "774 (Nanashi)"
    );
    assert_eq!(
        data["relationships"][2]["attributes"]["fileName"],
        "5e4a4e0e-b2a6-4e7e-8e6e-169a8d26c7a8.jpg"
    );
    assert_eq!(
        data["attributes"]["title"],
        json!({ "ja-ro": "Ijiranaide, Nagatoro-san" })
    );
    assert_eq!(data["attributes"]["lastChapter"], "154");
    assert_eq!(data["attributes"]["status"], "completed");
    assert_eq!(data["attributes"]["latestUploadedChapter"], json!(ch));
    assert_eq!(
        data["attributes"]["availableTranslatedLanguages"],
        json!(["en"])
    );
    // UTF-8 as is, slashes unescaped.
    assert!(r.text.contains("イジらないで、長瀞さん"));
    // Without includes: references only.
    let r = get(&fake, &format!("/manga/{NAGATORO}"), None).await;
    for rel in r.json()["data"]["relationships"].as_array().unwrap() {
        let keys: Vec<&String> = rel.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["id", "type"]);
    }
    assert_error(
        &get(
            &fake,
            &format!("/manga/{NAGATORO}?includes[]=everything"),
            None,
        )
        .await,
        400,
    );
    let unknown = mangadex::uuid();
    let (title, _) = assert_error(&get(&fake, &format!("/manga/{unknown}"), None).await, 404);
    assert_eq!(title, "Not Found");
    assert_error(&get(&fake, "/manga/12345", None).await, 400);

    // Drawn by someone else: the artist is another person, named only with includes[]=artist.
    let drawn = mangadex::uuid();
    fake.add_manga(
        Manga::new(&drawn, "Drawn")
            .author("Writer")
            .artist("Painter"),
    );
    async fn names(
        fake: &FakeMangadex,
        manga: &str,
        includes: &str,
    ) -> Vec<(String, Option<String>)> {
        let r = get(fake, &format!("/manga/{manga}?{includes}"), None).await;
        r.json()["data"]["relationships"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["type"].as_str().unwrap().to_string(),
                    r["attributes"]["name"].as_str().map(str::to_string),
                )
            })
            .collect()
    }
    assert_eq!(
        names(&fake, &drawn, "includes[]=author&includes[]=artist").await,
        [
            ("author".to_string(), Some("Writer".to_string())),
            ("artist".to_string(), Some("Painter".to_string())),
        ]
    );
    assert_eq!(
        names(&fake, &drawn, "includes[]=author").await,
        [
            ("author".to_string(), Some("Writer".to_string())),
            ("artist".to_string(), None),
        ]
    );
}

#[tokio::test]
async fn chapter_entity_has_the_fixtures_shape() {
    let fake = fake().await;
    fake.add_manga(nagatoro());
    let id = "4eb9d5c6-53b7-4e5b-8b1c-da3e1a0f6ed0";
    fake.add_chapter(
        NAGATORO,
        Chapter::new(id, Some("4"), Some("14")).title("Nagatoro-San vs Senpai"),
    );
    let r = get(
        &fake,
        &format!("/chapter/{id}?includes[]=manga&includes[]=scanlation_group&includes[]=user"),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    same_shape(&r.json(), &fx(FX_CHAPTER), "chapter").unwrap();
    let data = &r.json()["data"];
    assert_eq!(data["attributes"]["chapter"], "14");
    assert_eq!(data["attributes"]["volume"], "4");
    assert_eq!(data["attributes"]["translatedLanguage"], "en");
    let manga_rel = data["relationships"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "manga")
        .unwrap();
    assert_eq!(manga_rel["id"], NAGATORO);
    assert_eq!(manga_rel["attributes"]["status"], "completed");
    let unknown = mangadex::uuid();
    assert_error(&get(&fake, &format!("/chapter/{unknown}"), None).await, 404);
}

#[tokio::test]
async fn manga_collections_filter_page_and_hide_pornographic_titles() {
    let fake = fake().await;
    fake.add_manga(nagatoro());
    let a = mangadex::uuid();
    let b = mangadex::uuid();
    fake.add_manga(Manga::new(&a, "Frieren").cover("frieren.jpg"));
    fake.add_manga(Manga::new(&b, "Secret").content_rating("pornographic"));
    let ids = format!("ids[]={NAGATORO}&ids[]={a}&ids[]={b}");

    let r = get(
        &fake,
        &format!("/manga?{ids}&includes[]=cover_art&includes[]=author&includes[]=artist"),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["data", "limit", "offset", "response", "result", "total"]
    );
    assert_eq!(
        (
            v["response"].clone(),
            v["limit"].clone(),
            v["offset"].clone(),
            v["total"].clone()
        ),
        (json!("collection"), json!(10), json!(0), json!(2))
    );
    for m in v["data"].as_array().unwrap() {
        same_shape(m, &fx(FX_MANGA)["data"], "item").unwrap();
    }
    let r = get(
        &fake,
        &format!(
            "/manga?{ids}&contentRating[]=safe&contentRating[]=suggestive&contentRating[]=erotica&contentRating[]=pornographic"
        ),
        None,
    )
    .await;
    assert_eq!(r.json()["total"], 3);

    // Paging.
    let r = get(&fake, &format!("/manga?{ids}&limit=1&offset=1"), None).await;
    let v = r.json();
    assert_eq!(
        (v["limit"].clone(), v["total"].clone()),
        (json!(1), json!(2))
    );
    assert_eq!(v["data"][0]["id"], json!(a));
    let many: Vec<String> = (0..12).map(|_| mangadex::uuid()).collect();
    for (i, id) in many.iter().enumerate() {
        fake.add_manga(Manga::new(id, &format!("Bulk {i}")));
    }
    let query: String = many.iter().map(|id| format!("ids[]={id}&")).collect();
    let r = get(&fake, &format!("/manga?{query}"), None).await;
    let v = r.json();
    assert_eq!(
        (v["data"].as_array().unwrap().len(), v["total"].clone()),
        (10, json!(12))
    );
    let r = get(&fake, &format!("/manga?{query}limit=100"), None).await;
    assert_eq!(r.json()["data"].as_array().unwrap().len(), 12);

    // Limits.
    for bad in ["101", "0", "-1", "ten"] {
        let r = get(&fake, &format!("/manga?{ids}&limit={bad}"), None).await;
        assert_eq!(
            assert_error(&r, 400),
            (INVALID_LIMIT.0.into(), INVALID_LIMIT.1.into())
        );
    }
    assert_error(&get(&fake, "/manga?offset=9995&limit=10", None).await, 400);
    assert_error(&get(&fake, &format!("/manga?ids={a}"), None).await, 400);
    assert_error(&get(&fake, "/manga?contentRating[]=spicy", None).await, 400);

    // Title search: case-insensitive, over titles and altTitles.
    let r = get(&fake, "/manga?title=miss%20NAGATORO", None).await;
    let v = r.json();
    assert_eq!(v["total"], 1);
    assert_eq!(v["data"][0]["id"], NAGATORO);
    let r = get(&fake, "/manga?title=frier", None).await;
    assert_eq!(r.json()["data"][0]["id"], json!(a));
    let r = get(&fake, "/manga?title=secret", None).await;
    assert_eq!(r.json()["total"], 0);
    let r = get(&fake, "/manga?title=nothing-like-it", None).await;
    assert_eq!(r.json()["data"], json!([]));
}

// ---------------------------------------------------------------------------
// Rate limit
// ---------------------------------------------------------------------------

#[tokio::test]
async fn rate_limit_answers_429_with_an_epoch() {
    let fake = FakeMangadex::start().await;
    fake.set_rate_limit(2);
    let before = now();
    let r1 = get(&fake, "/manga", None).await;
    let r2 = get(&fake, "/manga", None).await;
    for (r, remaining) in [(&r1, 1), (&r2, 0)] {
        assert_eq!(r.status, 200);
        assert_eq!(r.header_i64("x-ratelimit-limit"), 2);
        assert_eq!(r.header_i64("x-ratelimit-remaining"), remaining);
        assert!(r.header_i64("x-ratelimit-retry-after") >= before);
    }
    let r3 = get(&fake, "/manga", None).await;
    let (title, _) = assert_error(&r3, 429);
    assert_eq!(title, mangadex::RATE_LIMITED.0);
    let retry_at = r3.header_i64("x-ratelimit-retry-after");
    assert!(retry_at > before, "{retry_at} is not after {before}");
    assert!(retry_at <= now() + 2, "{retry_at} is too far");
    assert_eq!(r3.header_i64("x-ratelimit-remaining"), 0);
    // Waiting until then is enough.
    let wait = (retry_at * 1000) as u128;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    tokio::time::sleep(Duration::from_millis(
        wait.saturating_sub(now_ms) as u64 + 20,
    ))
    .await;
    assert_eq!(get(&fake, "/manga", None).await.status, 200);

    // Forced 429s with a given epoch.
    fake.disable_rate_limit();
    let at = now() + 30;
    fake.force_429(2, at);
    for _ in 0..2 {
        let r = get(&fake, "/manga", None).await;
        assert_error(&r, 429);
        assert_eq!(r.header_i64("x-ratelimit-retry-after"), at);
    }
    let r = get(&fake, "/manga/status", None).await;
    assert_error(&r, 401);
    assert!(r.header("x-ratelimit-retry-after").is_some());
    // The token endpoint is another host: no API limit there.
    for _ in 0..3 {
        let r = password_grant(&fake, DEFAULT_USERNAME, "wrong").await;
        assert_eq!(r.status, 401);
    }
}

#[tokio::test]
async fn a_client_pacing_at_five_per_second_is_not_refused() {
    let fake = FakeMangadex::start().await;
    let mut statuses = Vec::new();
    for i in 0..12 {
        if i >= 5 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        statuses.push(get(&fake, "/manga", None).await.status);
    }
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    // But ten at once are too many: the bucket holds five.
    fake.reset_rate_limit();
    let c = client();
    let url = format!("{}/manga", fake.api_url());
    let sends = (0..10).map(|_| c.get(&url).send());
    let statuses: Vec<u16> = futures_util::future::join_all(sends)
        .await
        .into_iter()
        .map(|r| r.unwrap().status().as_u16())
        .collect();
    let accepted = statuses.iter().filter(|s| **s == 200).count();
    assert!((5..10).contains(&accepted), "{statuses:?}");
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 429),
        "{statuses:?}"
    );
}

// ---------------------------------------------------------------------------
// Errors, faults, plumbing
// ---------------------------------------------------------------------------

#[tokio::test]
async fn errors_have_mangadex_shape() {
    let fake = fake().await;
    let (token, _) = login(&fake).await;
    assert_error(&get(&fake, "/manga/status", None).await, 401);
    assert_error(&get(&fake, "/manga/status", Some("garbage")).await, 401);
    let r = finish(
        client()
            .get(format!("{}/manga/status", fake.api_url()))
            .header("Authorization", token.clone())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(&r, 401);
    assert_error(&get(&fake, "/nowhere", None).await, 404);
    let r = finish(
        client()
            .delete(format!("{}/manga/{NAGATORO}/read", fake.api_url()))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(&r, 405);
    // Every error has a fresh id.
    let a = get(&fake, "/nowhere", None).await.json();
    let b = get(&fake, "/nowhere", None).await.json();
    assert_ne!(a["errors"][0]["id"], b["errors"][0]["id"]);
    assert_eq!(
        mangadex::error_body(400, "T", "D").len(),
        r#"{"result":"error","errors":[{"id":"","status":400,"title":"T","detail":"D","context":null}]}"#.len() + 36
    );
}

#[tokio::test]
async fn faults_are_served() {
    let fake = fake().await;
    fake.fail_next(1, Fault::ServerError);
    let r = get(&fake, "/manga", None).await;
    assert_error(&r, 500);
    assert!(r.header("x-ratelimit-limit").is_some());

    fake.fail_next(1, Fault::BadGateway);
    let r = get(&fake, "/manga", None).await;
    assert_eq!(
        (r.status, r.header("content-type")),
        (502, Some("text/html"))
    );
    assert!(r.text.contains("502 Bad Gateway"));
    assert!(r.header("x-ratelimit-limit").is_none());

    fake.fail_next(1, Fault::MalformedJson);
    let r = get(&fake, "/manga", None).await;
    assert_eq!(r.status, 200);
    assert!(serde_json::from_str::<Value>(&r.text).is_err());

    fake.fail_next(1, Fault::Maintenance);
    let r = get(&fake, "/manga", None).await;
    assert_eq!(r.status, 503);
    assert!(r.text.contains("maintenance"));

    fake.fail_next(1, Fault::CaptchaRequired);
    let r = get(&fake, "/manga", None).await;
    let (title, _) = assert_error(&r, 403);
    assert_eq!(title, "captcha_required_exception");
    assert_eq!(
        r.header("x-captcha-sitekey"),
        Some(mangadex::CAPTCHA_SITEKEY)
    );

    fake.fail_next(
        1,
        Fault::Raw {
            status: 418,
            content_type: "text/plain".into(),
            body: "teapot".into(),
            headers: vec![("x-extra".into(), "1".into())],
        },
    );
    let r = get(&fake, "/manga", None).await;
    assert_eq!(
        (r.status, r.text.as_str(), r.header("x-extra")),
        (418, "teapot", Some("1"))
    );

    // Delay: a short client timeout fails, the next request is normal.
    fake.fail_next(1, Fault::Delay(Duration::from_millis(600)));
    let slow = client()
        .get(format!("{}/manga", fake.api_url()))
        .timeout(Duration::from_millis(150))
        .send()
        .await;
    assert!(slow.is_err());
    assert_eq!(get(&fake, "/manga", None).await.status, 200);

    // In the middle of a run: two normal answers, then the fault, then normal again.
    fake.fail_after(2, 1, Fault::ServerError);
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(get(&fake, "/manga", None).await.status);
    }
    assert_eq!(statuses, [200, 200, 500, 200]);

    // Several in a row, then normal again.
    fake.fail_next(2, Fault::ServerError);
    assert_eq!(get(&fake, "/manga", None).await.status, 500);
    assert_eq!(get(&fake, "/manga", None).await.status, 500);
    assert_eq!(get(&fake, "/manga", None).await.status, 200);

    // The token endpoint has its own queue.
    fake.fail_next_auth(1, Fault::ServerError);
    let r = password_grant(&fake, DEFAULT_USERNAME, DEFAULT_PASSWORD).await;
    assert_eq!(
        (r.status, r.text.as_str()),
        (500, r#"{"error":"unknown_error"}"#)
    );
    fake.fail_next_auth(1, Fault::MalformedJson);
    let r = password_grant(&fake, DEFAULT_USERNAME, DEFAULT_PASSWORD).await;
    assert_eq!(r.status, 200);
    assert!(serde_json::from_str::<Value>(&r.text).is_err());
    let (token, _) = login(&fake).await;
    assert!(fake.access_token_valid(&token));

    // Down and up again on the same port.
    fake.go_down();
    assert!(
        client()
            .get(format!("{}/manga", fake.api_url()))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .is_err()
    );
    fake.go_up();
    assert_eq!(get(&fake, "/manga", None).await.status, 200);
}

#[tokio::test]
async fn covers_and_the_request_log() {
    let fake = fake().await;
    fake.add_manga(nagatoro());
    let cover = format!(
        "{}/{NAGATORO}/5e4a4e0e-b2a6-4e7e-8e6e-169a8d26c7a8.jpg.256.jpg",
        fake.covers_url()
    );
    let resp = client().get(&cover).send().await.unwrap();
    assert_eq!(resp.headers()["content-type"], "image/png");
    assert!(resp.bytes().await.unwrap().starts_with(b"\x89PNG"));
    assert_eq!(fake.image_requests().len(), 1);

    let (token, _) = login(&fake).await;
    get(
        &fake,
        &format!("/manga?ids[]={NAGATORO}&limit=5"),
        Some(&token),
    )
    .await;
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2);
    assert!(reqs[0].is_token());
    assert_eq!(reqs[0].grant_type().as_deref(), Some("password"));
    assert_eq!(
        reqs[0].content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert!(!reqs[0].auth);
    let api = &reqs[1];
    assert_eq!(
        (api.method.as_str(), api.path.as_str(), api.status),
        ("GET", "/manga", 200)
    );
    assert_eq!(api.query_array("ids"), [NAGATORO]);
    assert!(api.auth);
    assert_eq!(api.bearer.as_deref(), Some(token.as_str()));
    assert_eq!(fake.count("GET", "/manga"), 1);
    assert_eq!(fake.api_requests().len(), 1);
    fake.clear_logs();
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn config_toml_points_at_the_fake() {
    let fake = fake().await;
    let table: toml::Table = toml::from_str(&fake.config_toml()).unwrap();
    let md = table["mangadex"].as_table().unwrap();
    assert_eq!(md["client_id"].as_str(), Some(CLIENT_ID));
    assert_eq!(md["client_secret"].as_str(), Some(CLIENT_SECRET));
    assert_eq!(md["username"].as_str(), Some(DEFAULT_USERNAME));
    assert_eq!(md["api_url"].as_str(), Some(fake.api_url().as_str()));
    assert_eq!(md["auth_url"].as_str(), Some(fake.auth_url().as_str()));
    assert_eq!(md["languages"], toml::Value::Array(vec!["en".into()]));
    assert_eq!(fake.token_url(), format!("{}/token", fake.auth_url()));
    assert!(
        fake.auth_url()
            .ends_with("/realms/mangadex/protocol/openid-connect")
    );
}

#[test]
fn background_fake_serves_sync_tests() {
    let fake = FakeMangadex::start_background();
    fake.add_manga(nagatoro());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let r = rt.block_on(get(&fake, &format!("/manga/{NAGATORO}"), None));
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["data"]["id"], NAGATORO);
    drop(fake);
}
