//! Tests of the MyAnimeList fake itself, against the recorded fixtures.

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use support::mal::{self, Anime, FakeMal, Manga};

const VERIFIER: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~";
const REDIRECT: &str = "http://127.0.0.1:53682/callback";

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/mal/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect();
    k.sort();
    k
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn body_json(resp: reqwest::Response) -> Value {
    let text = resp.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Visits /authorize and returns (code, full Location).
async fn authorize(fake: &FakeMal, c: &reqwest::Client, state: Option<&str>) -> (String, String) {
    let mut q = vec![
        ("response_type", "code"),
        ("client_id", FakeMal::CLIENT_ID),
        ("redirect_uri", REDIRECT),
        ("code_challenge", VERIFIER),
        ("code_challenge_method", "plain"),
    ];
    if let Some(s) = state {
        q.push(("state", s));
    }
    let resp = c
        .get(format!("{}/authorize", fake.auth_url()))
        .query(&q)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let url = reqwest::Url::parse(&location).unwrap();
    let code = url
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("code in redirect");
    (code, location)
}

async fn exchange(fake: &FakeMal, c: &reqwest::Client, form: &[(&str, &str)]) -> reqwest::Response {
    c.post(format!("{}/token", fake.auth_url()))
        .form(form)
        .send()
        .await
        .unwrap()
}

async fn refresh(fake: &FakeMal, c: &reqwest::Client, token: &str) -> reqwest::Response {
    exchange(
        fake,
        c,
        &[
            ("client_id", FakeMal::CLIENT_ID),
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
        ],
    )
    .await
}

async fn login(fake: &FakeMal, c: &reqwest::Client) -> (String, String) {
    let (code, _) = authorize(fake, c, Some("s")).await;
    let resp = exchange(
        fake,
        c,
        &[
            ("client_id", FakeMal::CLIENT_ID),
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let v = body_json(resp).await;
    (
        v["access_token"].as_str().unwrap().to_string(),
        v["refresh_token"].as_str().unwrap().to_string(),
    )
}

async fn api_get(
    fake: &FakeMal,
    c: &reqwest::Client,
    token: &str,
    path_and_query: &str,
) -> reqwest::Response {
    c.get(format!("{}{path_and_query}", fake.api_url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn api_patch(
    fake: &FakeMal,
    c: &reqwest::Client,
    token: &str,
    id: u64,
    form: &[(&str, &str)],
) -> reqwest::Response {
    c.patch(format!("{}/anime/{id}/my_list_status", fake.api_url()))
        .bearer_auth(token)
        .form(form)
        .send()
        .await
        .unwrap()
}

fn anime(id: u64, nsfw: &'static str, status: &'static str) -> Anime {
    Anime {
        nsfw,
        status,
        ..Anime::new(id, &format!("Anime {id}"), 12)
    }
}

#[test]
fn repo_fixtures_match_shared() {
    let shared = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/api/fixtures/mal");
    let vendored = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/mal");
    if !std::path::Path::new(shared).is_dir() {
        eprintln!("no {shared}; skipping");
        return;
    }
    for entry in std::fs::read_dir(vendored).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let name = path.file_name().unwrap();
            let ours = std::fs::read(&path).unwrap();
            let theirs = std::fs::read(std::path::Path::new(shared).join(name)).unwrap();
            assert_eq!(ours, theirs, "{name:?} differs from shared/");
        }
    }
}

#[tokio::test]
async fn oauth_flow_pkce_plain_then_users_me() {
    let fake = FakeMal::start().await;
    fake.set_user("alice");
    let c = client();

    let (code, location) = authorize(&fake, &c, Some("st4te xyz")).await;
    assert!(
        location.starts_with(&format!("{REDIRECT}?code=")),
        "{location}"
    );
    assert!(location.ends_with("&state=st4te+xyz"), "{location}");
    let (_, no_state) = authorize(&fake, &c, None).await;
    assert!(!no_state.contains("state="), "{no_state}");

    let form = [
        ("client_id", FakeMal::CLIENT_ID),
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    let resp = exchange(&fake, &c, &form).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.unwrap();
    assert!(
        text.starts_with(r#"{"token_type":"Bearer","expires_in":2678400,"access_token":""#),
        "{text}"
    );
    let tok: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        keys(&tok),
        ["access_token", "expires_in", "refresh_token", "token_type"]
    );
    let access = tok["access_token"].as_str().unwrap();
    assert!(access.len() >= 40);
    assert!(tok["refresh_token"].as_str().unwrap().len() >= 40);

    // Codes are single use.
    let again = exchange(&fake, &c, &form).await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    assert_eq!(body_json(again).await["error"], "invalid_request");

    let me = api_get(&fake, &c, access, "/users/@me").await;
    assert_eq!(me.status(), StatusCode::OK);
    let me = body_json(me).await;
    assert_eq!(keys(&me), keys(&fixture("users-me.json")));
    assert_eq!(me["name"], "alice");

    let reqs = fake.requests();
    let last = reqs.last().unwrap();
    assert_eq!(
        (
            last.method.as_str(),
            last.path.as_str(),
            last.query.as_str()
        ),
        ("GET", "/v2/users/@me", "")
    );
    assert_eq!(
        last.authorization.as_deref(),
        Some(&*format!("Bearer {access}"))
    );
    assert_eq!(reqs[0].path, "/v1/oauth2/authorize");
    assert!(reqs[0].query.contains("code_challenge_method=plain"));
}

#[tokio::test]
async fn authorize_rejects_bad_requests() {
    let fake = FakeMal::start().await;
    let c = client();
    let url = format!("{}/authorize", fake.auth_url());
    let get = |q: Vec<(&'static str, &'static str)>| c.get(&url).query(&q).send();
    let ok = vec![
        ("response_type", "code"),
        ("client_id", FakeMal::CLIENT_ID),
        ("redirect_uri", REDIRECT),
        ("code_challenge", VERIFIER),
    ];
    // code_challenge_method defaults to plain.
    assert_eq!(get(ok.clone()).await.unwrap().status(), StatusCode::FOUND);

    let mut bad_client = ok.clone();
    bad_client[1] = ("client_id", "nope");
    let r = get(bad_client).await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(body_json(r).await["error"], "invalid_client");

    let mut short = ok.clone();
    short[3] = ("code_challenge", "too-short");
    assert_eq!(get(short).await.unwrap().status(), StatusCode::BAD_REQUEST);

    let mut s256 = ok.clone();
    s256.push(("code_challenge_method", "S256"));
    assert_eq!(get(s256).await.unwrap().status(), StatusCode::BAD_REQUEST);

    let mut token_type = ok.clone();
    token_type[0] = ("response_type", "token");
    assert_eq!(
        get(token_type).await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );

    fake.set_deny_authorization(true);
    let r = get(ok.clone()).await.unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    assert_eq!(
        r.headers()["location"],
        format!("{REDIRECT}?error=access_denied").as_str()
    );
}

#[tokio::test]
async fn token_errors_match_fixtures() {
    let fake = FakeMal::start().await;
    let c = client();
    let (code, _) = authorize(&fake, &c, None).await;
    let base = |verifier: Option<&'static str>| {
        let mut f = vec![
            ("client_id", FakeMal::CLIENT_ID),
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
        ];
        if let Some(v) = verifier {
            f.push(("code_verifier", v));
        }
        f
    };

    let wrong = "0000000000000000000000000000000000000000000000000000000000000000";
    let r = exchange(&fake, &c, &base(Some(wrong))).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        body_json(r).await,
        fixture("error-token-invalid_grant-code_verifier.json")
    );

    let r = exchange(&fake, &c, &base(None)).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        body_json(r).await,
        fixture("error-token-invalid_request-missing-code_verifier.json")
    );

    // Wrong redirect_uri.
    let mut other_redirect = base(Some(VERIFIER));
    other_redirect[3] = ("redirect_uri", "http://127.0.0.1:1/elsewhere");
    let r = exchange(&fake, &c, &other_redirect).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // Failed attempts don't burn the code (league revokes it on success only).
    let r = exchange(&fake, &c, &base(Some(VERIFIER))).await;
    assert_eq!(r.status(), StatusCode::OK);

    let r = exchange(
        &fake,
        &c,
        &[
            ("client_id", FakeMal::CLIENT_ID),
            ("grant_type", "password"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        body_json(r).await,
        serde_json::from_str::<Value>(mal::UNSUPPORTED_GRANT_TYPE_BODY).unwrap()
    );

    let r = c
        .post(format!("{}/token", fake.auth_url()))
        .json(&serde_json::json!({"grant_type": "refresh_token", "client_id": FakeMal::CLIENT_ID}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(body_json(r).await["error"], "invalid_request");

    let r = exchange(
        &fake,
        &c,
        &[
            ("client_id", "someone-else"),
            ("grant_type", "refresh_token"),
            ("refresh_token", "x"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        body_json(r).await,
        serde_json::json!({"error":"invalid_client","message":"Client authentication failed"})
    );
}

#[tokio::test]
async fn client_secret_is_enforced_when_set() {
    let fake = FakeMal::start().await;
    fake.set_client_secret(Some("s3cret"));
    let c = client();
    let (_, refresh_token) = fake.issue_tokens(3600);

    let r = refresh(&fake, &c, &refresh_token).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(body_json(r).await["error"], "invalid_client");

    // HTTP Basic works too.
    let r = c
        .post(format!("{}/token", fake.auth_url()))
        .basic_auth(FakeMal::CLIENT_ID, Some("s3cret"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh_token),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let new_refresh = body_json(r).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();

    let r = exchange(
        &fake,
        &c,
        &[
            ("client_id", FakeMal::CLIENT_ID),
            ("client_secret", "s3cret"),
            ("grant_type", "refresh_token"),
            ("refresh_token", &new_refresh),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(fake.refresh_count(), 2);
}

#[tokio::test]
async fn refresh_rotates_tokens() {
    let fake = FakeMal::start().await;
    let c = client();
    let (access1, refresh1) = login(&fake, &c).await;
    assert_eq!(fake.refresh_count(), 0);

    let r = refresh(&fake, &c, &refresh1).await;
    assert_eq!(r.status(), StatusCode::OK);
    let v = body_json(r).await;
    let (access2, refresh2) = (
        v["access_token"].as_str().unwrap().to_string(),
        v["refresh_token"].as_str().unwrap().to_string(),
    );
    assert_ne!(access1, access2);
    assert_ne!(refresh1, refresh2);
    assert_eq!(v["expires_in"], 2678400);
    assert_eq!(fake.refresh_count(), 1);

    // The used refresh token is revoked, and so is the access token issued with it.
    let r = refresh(&fake, &c, &refresh1).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        body_json(r).await,
        serde_json::from_str::<Value>(mal::REFRESH_REVOKED_BODY).unwrap()
    );
    assert_eq!(
        api_get(&fake, &c, &access1, "/users/@me").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        api_get(&fake, &c, &access2, "/users/@me").await.status(),
        StatusCode::OK
    );

    let r = refresh(&fake, &c, "garbage").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        body_json(r).await,
        fixture("error-token-refresh-cannot-decrypt.json")
    );

    fake.revoke_refresh_tokens();
    let r = refresh(&fake, &c, &refresh2).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        body_json(r).await,
        fixture("error-token-refresh-expired.json")
    );
    assert_eq!(fake.refresh_count(), 1);
}

#[tokio::test]
async fn invalid_access_token_gets_401_with_header() {
    let fake = FakeMal::start().await;
    let c = client();
    let (access, _) = fake.issue_tokens(3600);
    assert_eq!(
        api_get(&fake, &c, &access, "/users/@me").await.status(),
        StatusCode::OK
    );

    fake.expire_access_tokens();
    let check = |r: reqwest::Response| async move {
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            r.headers()["www-authenticate"],
            r#"Bearer error="invalid_token",error_description="The access token expired""#
        );
        assert_eq!(
            body_json(r).await,
            fixture("error-401-invalid_token-expired-access-token.json")
        );
    };
    check(api_get(&fake, &c, &access, "/users/@me").await).await;
    check(api_get(&fake, &c, "nonsense", "/users/@me/animelist").await).await;
    check(
        c.get(format!("{}/users/@me", fake.api_url()))
            .send()
            .await
            .unwrap(),
    )
    .await;
    // A client id is fine for public endpoints but not for @me.
    check(
        c.get(format!("{}/users/@me/animelist", fake.api_url()))
            .header("X-MAL-CLIENT-ID", FakeMal::CLIENT_ID)
            .send()
            .await
            .unwrap(),
    )
    .await;

    // expires_in is honoured: 0 = already expired.
    let (dead, _) = fake.issue_tokens(0);
    check(api_get(&fake, &c, &dead, "/users/@me").await).await;
    let (fresh, _) = fake.issue_tokens(60);
    assert_eq!(
        api_get(&fake, &c, &fresh, "/users/@me").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn list_page_shape_matches_fixture() {
    let fake = FakeMal::start().await;
    let c = client();
    let (tok, _) = fake.issue_tokens(3600);
    fake.add_anime(Anime {
        watched: 3,
        score: 7,
        ..Anime::new(967, "Hokuto no Ken", 109)
    });
    fake.add_anime(Anime::new(820, "Ginga Eiyuu Densetsu", 110));

    let r = api_get(&fake, &c, &tok, "/users/@me/animelist?nsfw=true").await;
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.unwrap();
    // Default covers live on the fake itself (http://127.0.0.1:…/images/…).
    assert!(
        text.contains(r"http:\/\/127.0.0.1"),
        "PHP-style escaping: {text}"
    );
    let page: Value = serde_json::from_str(&text).unwrap();
    let fx = fixture("user-animelist-page.json");
    assert_eq!(keys(&page), keys(&fx));
    assert_eq!(page["paging"], fx["paging"]); // {} on a single page
    let fx_item = &fx["data"][0];
    let items = page["data"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    for item in items {
        assert_eq!(keys(item), keys(fx_item));
        assert_eq!(keys(&item["node"]), keys(&fx_item["node"]));
        assert_eq!(
            keys(&item["node"]["main_picture"]),
            keys(&fx_item["node"]["main_picture"])
        );
        assert_eq!(keys(&item["list_status"]), keys(&fx_item["list_status"]));
    }
    let hokuto = items.iter().find(|i| i["node"]["id"] == 967).unwrap();
    assert_eq!(hokuto["node"]["title"], "Hokuto no Ken");
    assert_eq!(hokuto["list_status"]["num_episodes_watched"], 3);
    assert_eq!(hokuto["list_status"]["score"], 7);
    assert_eq!(hokuto["list_status"]["status"], "watching");

    // Requested fields appear, others stay absent.
    let r = api_get(
        &fake,
        &c,
        &tok,
        "/users/@me/animelist?nsfw=true&fields=num_episodes,media_type,list_status%7Bcomments,priority%7D",
    )
    .await;
    let page = body_json(r).await;
    let item = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["node"]["id"] == 967)
        .unwrap();
    assert_eq!(item["node"]["num_episodes"], 109);
    assert_eq!(item["node"]["media_type"], "tv");
    assert!(item["node"].get("mean").is_none());
    assert_eq!(item["list_status"]["comments"], "");
    assert_eq!(item["list_status"]["priority"], 0);
    assert!(item["list_status"].get("tags").is_none());

    // status filter
    fake.add_anime(anime(1, "white", "completed"));
    let page = body_json(
        api_get(
            &fake,
            &c,
            &tok,
            "/users/@me/animelist?status=completed&nsfw=1",
        )
        .await,
    )
    .await;
    let ids: Vec<u64> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["node"]["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [1]);
}

#[tokio::test]
async fn paging_2500_entries_with_limit_1000() {
    let fake = FakeMal::start().await;
    let c = client();
    let (tok, _) = fake.issue_tokens(3600);
    for id in 1..=2500 {
        fake.add_anime(anime(id, "white", "watching"));
    }
    let mut url = format!(
        "{}/users/@me/animelist?fields=list_status,num_episodes&limit=1000&nsfw=true",
        fake.api_url()
    );
    let mut seen = HashSet::new();
    let mut pages = 0;
    loop {
        let r = c.get(&url).bearer_auth(&tok).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let page = body_json(r).await;
        pages += 1;
        for item in page["data"].as_array().unwrap() {
            assert!(seen.insert(item["node"]["id"].as_u64().unwrap()));
        }
        let paging = &page["paging"];
        if pages > 1 {
            let prev = paging["previous"].as_str().expect("previous after page 1");
            assert!(prev.starts_with(&fake.api_url()), "{prev}");
        } else {
            assert!(paging.get("previous").is_none());
        }
        match paging.get("next") {
            Some(next) => {
                let next = next.as_str().unwrap();
                assert!(
                    next.starts_with(&format!(
                        "{}/users/@me/animelist?offset={}&",
                        fake.api_url(),
                        pages * 1000
                    )),
                    "{next}"
                );
                assert!(next.contains("fields=list_status%2Cnum_episodes"), "{next}");
                assert!(next.contains("limit=1000"), "{next}");
                assert!(next.contains("nsfw=true"), "{next}");
                url = next.to_string();
            }
            None => break,
        }
        assert!(pages < 10);
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 2500);
    assert_eq!(seen, (1..=2500).collect::<HashSet<u64>>());

    // limit is clamped to 1000; default is 100.
    let page =
        body_json(api_get(&fake, &c, &tok, "/users/@me/animelist?limit=5000&nsfw=true").await)
            .await;
    assert_eq!(page["data"].as_array().unwrap().len(), 1000);
    let page = body_json(api_get(&fake, &c, &tok, "/users/@me/animelist?nsfw=true").await).await;
    assert_eq!(page["data"].as_array().unwrap().len(), 100);
    assert!(
        page["paging"]["next"]
            .as_str()
            .unwrap()
            .contains("limit=100")
    );
    let r = api_get(&fake, &c, &tok, "/users/@me/animelist?limit=abc").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(body_json(r).await["error"], "bad_request");
}

#[tokio::test]
async fn nsfw_entries_are_hidden_without_nsfw_true() {
    let fake = FakeMal::start().await;
    let c = client();
    let (tok, _) = fake.issue_tokens(3600);
    fake.add_anime(anime(1, "white", "watching"));
    fake.add_anime(anime(2, "gray", "watching"));
    fake.add_anime(anime(3, "black", "watching"));
    let ids = |page: Value| -> Vec<u64> {
        let mut v: Vec<u64> = page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["node"]["id"].as_u64().unwrap())
            .collect();
        v.sort();
        v
    };
    for (q, want) in [
        ("", vec![1]),
        ("?nsfw=false", vec![1]),
        ("?nsfw=true", vec![1, 2, 3]),
        ("?nsfw=1", vec![1, 2, 3]),
    ] {
        let page =
            body_json(api_get(&fake, &c, &tok, &format!("/users/@me/animelist{q}")).await).await;
        assert_eq!(ids(page), want, "query {q:?}");
    }
}

#[tokio::test]
async fn patch_field_asymmetry_and_recording() {
    let fake = FakeMal::start().await;
    let c = client();
    let (tok, _) = fake.issue_tokens(3600);
    fake.add_anime(Anime::new(967, "Hokuto no Ken", 109));
    fake.add_to_catalogue(Anime::new(42, "Not yet listed", 12));
    let before = fake.updated_at(967).unwrap();

    let r = api_patch(
        &fake,
        &c,
        &tok,
        967,
        &[
            ("num_watched_episodes", "73"),
            ("status", "watching"),
            ("score", "8"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let v = body_json(r).await;
    assert_eq!(
        keys(&v),
        keys(&fixture("patch-anime-my_list_status-response.json"))
    );
    assert_eq!(v["num_episodes_watched"], 73);
    assert_eq!(v["score"], 8);
    assert_eq!(v["tags"], serde_json::json!([]));
    assert_eq!(fake.watched(967), Some(73));
    let after = fake.updated_at(967).unwrap();
    assert!(after > before, "{after} > {before}");
    assert_eq!(v["updated_at"], after.as_str());

    // The response's name is not accepted in a request.
    let r = api_patch(&fake, &c, &tok, 967, &[("num_episodes_watched", "74")]).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        body_json(r).await,
        serde_json::json!({"message":"This form should not contain extra fields.","error":"bad_request"})
    );
    assert_eq!(fake.watched(967), Some(73));

    // Invalid values change nothing.
    for bad in [
        ("score", "11"),
        ("num_watched_episodes", "x"),
        ("status", "reading"),
    ] {
        let r = api_patch(&fake, &c, &tok, 967, &[("num_watched_episodes", "80"), bad]).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad:?}");
        assert_eq!(body_json(r).await["error"], "bad_request");
    }
    assert_eq!(fake.watched(967), Some(73));

    // Upsert of a known anime; 404 for an unknown one.
    let r = api_patch(&fake, &c, &tok, 42, &[("num_watched_episodes", "1")]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(fake.watched(42), Some(1));
    let r = api_patch(&fake, &c, &tok, 999_999, &[("num_watched_episodes", "1")]).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        body_json(r).await,
        serde_json::json!({"message":"","error":"not_found"})
    );

    // A rejected (401) PATCH is not recorded.
    fake.expire_access_tokens();
    let r = api_patch(&fake, &c, &tok, 967, &[("num_watched_episodes", "100")]).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let patches = fake.patches();
    let summary: Vec<(u64, Option<&str>)> = patches
        .iter()
        .map(|p| (p.id, p.get("num_watched_episodes")))
        .collect();
    assert_eq!(
        summary,
        [
            (967, Some("73")),
            (967, None),
            (967, Some("80")),
            (967, Some("80")),
            (967, Some("80")),
            (42, Some("1")),
            (999_999, Some("1")),
        ]
    );
    assert_eq!(
        patches[0].form,
        [
            ("num_watched_episodes".to_string(), "73".to_string()),
            ("status".to_string(), "watching".to_string()),
            ("score".to_string(), "8".to_string()),
        ]
    );
}

#[tokio::test]
async fn patch_json_body_is_not_seen() {
    let fake = FakeMal::start().await;
    let c = client();
    let (tok, _) = fake.issue_tokens(3600);
    fake.add_anime(Anime::new(1, "Listed", 12));
    fake.add_to_catalogue(Anime::new(2, "Unlisted", 12));
    let send = |id: u64| {
        c.patch(format!("{}/anime/{id}/my_list_status", fake.api_url()))
            .bearer_auth(&tok)
            .json(&serde_json::json!({"num_watched_episodes": 5}))
            .send()
    };
    assert_eq!(
        send(1).await.unwrap().status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(fake.watched(1), Some(0));
    assert_eq!(send(2).await.unwrap().status(), StatusCode::OK);
    assert_eq!(fake.watched(2), Some(0));
    assert_eq!(fake.status(2).as_deref(), Some("plan_to_watch"));
}

#[tokio::test]
async fn delete_then_404() {
    let fake = FakeMal::start().await;
    let c = client();
    let (tok, _) = fake.issue_tokens(3600);
    fake.add_anime(Anime::new(5, "Five", 12));
    let del = || {
        c.delete(format!("{}/anime/5/my_list_status", fake.api_url()))
            .bearer_auth(&tok)
            .send()
    };
    let r = del().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(body_json(r).await, serde_json::json!([]));
    assert!(!fake.on_list(5));
    assert_eq!(del().await.unwrap().status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn website_edits_show_up() {
    let fake = FakeMal::start().await;
    let c = client();
    let (tok, _) = fake.issue_tokens(3600);
    fake.add_anime(Anime::new(7, "Seven", 12));
    let before = fake.updated_at(7).unwrap();
    fake.set_watched(7, 9);
    fake.set_status(7, "on_hold");
    fake.set_score(7, 6);
    let page = body_json(api_get(&fake, &c, &tok, "/users/@me/animelist").await).await;
    let ls = &page["data"][0]["list_status"];
    assert_eq!(ls["num_episodes_watched"], 9);
    assert_eq!(ls["status"], "on_hold");
    assert_eq!(ls["score"], 6);
    assert!(ls["updated_at"].as_str().unwrap() > before.as_str());
    fake.remove_from_list(7);
    let page = body_json(api_get(&fake, &c, &tok, "/users/@me/animelist").await).await;
    assert_eq!(page["data"], serde_json::json!([]));
}

#[tokio::test]
async fn details_and_search() {
    let fake = FakeMal::start().await;
    let c = client();
    let (tok, _) = fake.issue_tokens(3600);
    fake.add_anime(Anime {
        watched: 4,
        ..Anime::new(40748, "Jujutsu Kaisen", 24)
    });
    fake.add_to_catalogue(Anime::new(51009, "Jujutsu Kaisen 2nd Season", 23));

    let d = body_json(
        api_get(
            &fake,
            &c,
            &tok,
            "/anime/40748?fields=num_episodes,my_list_status",
        )
        .await,
    )
    .await;
    assert_eq!(d["num_episodes"], 24);
    assert_eq!(d["my_list_status"]["num_episodes_watched"], 4);
    let basic = fixture("anime-details-basic.json");
    for k in ["id", "title", "main_picture", "num_episodes"] {
        assert!(basic.get(k).is_some() && d.get(k).is_some(), "{k}");
    }
    let d = body_json(api_get(&fake, &c, &tok, "/anime/51009?fields=my_list_status").await).await;
    assert!(d.get("my_list_status").is_none());
    let r = api_get(&fake, &c, &tok, "/anime/1").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // Search works with a client id alone.
    let r = c
        .get(format!("{}/anime", fake.api_url()))
        .query(&[("q", "jujutsu"), ("limit", "1")])
        .header("X-MAL-CLIENT-ID", FakeMal::CLIENT_ID)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let page = body_json(r).await;
    let fx = fixture("anime-search-page.json");
    assert_eq!(keys(&page), keys(&fx));
    assert_eq!(keys(&page["data"][0]), keys(&fx["data"][0]));
    assert!(
        page["paging"]["next"]
            .as_str()
            .unwrap()
            .starts_with(&format!(
                "{}/anime?offset=1&q=jujutsu&limit=1",
                fake.api_url()
            ))
    );
    let r = api_get(&fake, &c, &tok, "/anime?q=ju").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(body_json(r).await, fixture("error-400-bad_request.json"));
}

#[tokio::test]
async fn fail_next_and_latency() {
    let fake = FakeMal::start().await;
    let c = client();
    let (tok, _) = fake.issue_tokens(3600);
    fake.fail_next(2, 403, mal::FORBIDDEN_BODY, "application/json");
    for _ in 0..2 {
        let r = api_get(&fake, &c, &tok, "/users/@me").await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert_eq!(body_json(r).await, fixture("error-403-forbidden.json"));
    }
    assert_eq!(
        api_get(&fake, &c, &tok, "/users/@me").await.status(),
        StatusCode::OK
    );

    fake.fail_next(1, 500, "<html><body>Oops</body></html>", "text/html");
    fake.fail_next_with_headers(1, 429, "slow down", "text/plain", &[("Retry-After", "2")]);
    let r = api_get(&fake, &c, &tok, "/users/@me").await;
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(r.headers()["content-type"], "text/html");
    assert_eq!(r.text().await.unwrap(), "<html><body>Oops</body></html>");
    let r = api_get(&fake, &c, &tok, "/users/@me").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()["retry-after"], "2");
    // Failed requests were still recorded.
    assert_eq!(
        fake.requests()
            .iter()
            .filter(|r| r.path == "/v2/users/@me")
            .count(),
        5
    );

    fake.fail_next_token(1, 503, "down", "text/plain");
    let (_, refresh_token) = fake.issue_tokens(3600);
    assert_eq!(
        refresh(&fake, &c, &refresh_token).await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        refresh(&fake, &c, &refresh_token).await.status(),
        StatusCode::OK
    );

    fake.set_latency(Duration::from_millis(300));
    let t = Instant::now();
    assert_eq!(
        api_get(&fake, &c, &tok, "/users/@me").await.status(),
        StatusCode::OK
    );
    assert!(t.elapsed() >= Duration::from_millis(300));
    // Not applied to the OAuth endpoints.
    fake.set_latency(Duration::from_secs(30));
    let t = Instant::now();
    let (_, r2) = fake.issue_tokens(3600);
    assert_eq!(refresh(&fake, &c, &r2).await.status(), StatusCode::OK);
    assert!(t.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn go_down_and_up() {
    let fake = FakeMal::start().await;
    let c = client();
    let (tok, _) = fake.issue_tokens(3600);
    // Warm a keep-alive connection.
    assert_eq!(
        api_get(&fake, &c, &tok, "/users/@me").await.status(),
        StatusCode::OK
    );
    fake.go_down();
    for _ in 0..2 {
        let err = c
            .get(format!("{}/users/@me", fake.api_url()))
            .bearer_auth(&tok)
            .send()
            .await
            .expect_err("server is down");
        drop(err);
    }
    let fresh = client();
    let err = fresh
        .get(format!("{}/users/@me", fake.api_url()))
        .send()
        .await
        .expect_err("server is down");
    assert!(err.is_connect(), "{err:?}");
    fake.go_up();
    assert_eq!(
        api_get(&fake, &c, &tok, "/users/@me").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        api_get(&fake, &fresh, &tok, "/users/@me").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn go_down_kills_a_slow_request() {
    let fake = FakeMal::start().await;
    let c = client();
    let (tok, _) = fake.issue_tokens(3600);
    fake.set_latency(Duration::from_millis(500));
    let req = tokio::spawn({
        let c = c.clone();
        let url = format!("{}/users/@me", fake.api_url());
        async move { c.get(url).bearer_auth(tok).send().await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    fake.go_down();
    assert!(req.await.unwrap().is_err());
}

#[test]
fn background_server_serves_sync_tests_until_dropped() {
    let fake = FakeMal::start_background();
    let (tok, _) = fake.issue_tokens(3600);
    fake.add_anime(Anime::new(1, "One", 12));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = format!("{}/users/@me/animelist", fake.api_url());
    let c = client();
    let status =
        rt.block_on(async { c.get(&url).bearer_auth(&tok).send().await.unwrap().status() });
    assert_eq!(status, StatusCode::OK);

    fake.go_down();
    assert!(
        rt.block_on(async { client().get(&url).send().await })
            .is_err()
    );
    fake.go_up();
    let status =
        rt.block_on(async { c.get(&url).bearer_auth(&tok).send().await.unwrap().status() });
    assert_eq!(status, StatusCode::OK);

    drop(fake);
    let err = rt
        .block_on(async { client().get(&url).send().await })
        .expect_err("dropped");
    assert!(err.is_connect(), "{err:?}");
}

// ---------------------------------------------------------------------------
// Manga, full PATCH, DELETE, details, search, covers
// ---------------------------------------------------------------------------

/// Drops every `updated_at` (it is "now" in the fake, a past time in fixtures).
fn without_updated_at(mut v: Value) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(m) => {
                m.remove("updated_at");
                m.values_mut().for_each(strip);
            }
            Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut v);
    v
}

fn fixture_text(name: &str) -> String {
    let path = format!("{}/tests/fixtures/mal/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

async fn manga_patch(
    fake: &FakeMal,
    c: &reqwest::Client,
    token: &str,
    id: u64,
    form: &[(&str, &str)],
) -> reqwest::Response {
    c.patch(format!("{}/manga/{id}/my_list_status", fake.api_url()))
        .bearer_auth(token)
        .form(form)
        .send()
        .await
        .unwrap()
}

/// GET with `X-MAL-CLIENT-ID` instead of a Bearer token.
async fn public_get(
    fake: &FakeMal,
    c: &reqwest::Client,
    client_id: &str,
    path_and_query: &str,
) -> reqwest::Response {
    c.get(format!("{}{path_and_query}", fake.api_url()))
        .header("X-MAL-CLIENT-ID", client_id)
        .send()
        .await
        .unwrap()
}

fn ids_of(page: &Value) -> Vec<u64> {
    page["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no data: {page}"))
        .iter()
        .map(|i| i["node"]["id"].as_u64().unwrap())
        .collect()
}

/// The two manga of `user-mangalist-page.json`, with the fixture's pictures.
fn seed_mangalist_fixture(fake: &FakeMal) {
    fake.add_manga(Manga {
        status: "completed",
        chapters_read: 108,
        volumes_read: 12,
        ..Manga::new(21, "Death Note", 108, 12).pictures(
            "https://api-cdn.myanimelist.net/images/manga/2/54453.jpg",
            "https://api-cdn.myanimelist.net/images/manga/2/54453l.jpg",
        )
    });
    fake.add_manga(
        Manga::new(401, "Kiseijuu", 64, 10)
            .chapters_read(5)
            .volumes_read(1)
            .pictures(
                "https://api-cdn.myanimelist.net/images/manga/2/188928.jpg",
                "https://api-cdn.myanimelist.net/images/manga/2/188928l.jpg",
            ),
    );
}

#[tokio::test]
async fn manga_list_page_matches_fixture() {
    let fake = FakeMal::start().await;
    let c = client();
    let (tok, _) = fake.issue_tokens(3600);
    seed_mangalist_fixture(&fake);

    let r = api_get(
        &fake,
        &c,
        &tok,
        "/users/@me/mangalist?sort=manga_title&nsfw=true",
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.unwrap();
    assert!(text.contains(r"https:\/\/api-cdn"), "PHP escaping: {text}");
    let page: Value = serde_json::from_str(&text).unwrap();
    let fx = fixture("user-mangalist-page.json");
    // Same keys everywhere, same values but the timestamps.
    assert_eq!(
        without_updated_at(page.clone()),
        without_updated_at(fx.clone())
    );
    for (item, fx_item) in page["data"]
        .as_array()
        .unwrap()
        .iter()
        .zip(fx["data"].as_array().unwrap())
    {
        assert_eq!(keys(&item["list_status"]), keys(&fx_item["list_status"]));
        assert!(
            item["list_status"]["updated_at"]
                .as_str()
                .unwrap()
                .ends_with("+00:00")
        );
    }
    assert_eq!(fake.chapters_read(21), Some(108));
    assert_eq!(fake.volumes_read(21), Some(12));
    assert_eq!(fake.manga_status(401).as_deref(), Some("reading"));
    assert!(fake.manga_on_list(401));
    // Anime and manga are separate lists.
    assert!(!fake.on_list(401));
    assert_eq!(fake.watched(21), None);

    // Fields, status filter and sorts work as for anime.
    let page = body_json(
        api_get(
            &fake,
            &c,
            &tok,
            "/users/@me/mangalist?fields=num_chapters,num_volumes,status,list_status%7Bpriority%7D&status=completed",
        )
        .await,
    )
    .await;
    assert_eq!(ids_of(&page), [21]);
    let item = &page["data"][0];
    assert_eq!(item["node"]["num_chapters"], 108);
    assert_eq!(item["node"]["num_volumes"], 12);
    assert_eq!(item["node"]["status"], "finished");
    assert!(item["node"].get("num_episodes").is_none());
    assert_eq!(item["list_status"]["priority"], 0);
    for bad in ["status=watching", "sort=anime_title", "limit=0", "offset=x"] {
        let r = api_get(&fake, &c, &tok, &format!("/users/@me/mangalist?{bad}")).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(body_json(r).await["error"], "bad_request");
    }

    // Website edits and the sort by score.
    fake.set_chapters_read(401, 6);
    fake.set_manga_status(401, "on_hold");
    fake.set_manga_score(401, 7);
    let page =
        body_json(api_get(&fake, &c, &tok, "/users/@me/mangalist?sort=list_score").await).await;
    assert_eq!(ids_of(&page), [401, 21]);
    let ls = &page["data"][0]["list_status"];
    assert_eq!(ls["num_chapters_read"], 6);
    assert_eq!(ls["status"], "on_hold");
    assert_eq!(ls["score"], 7);
    // Default order: latest update first.
    let page = body_json(api_get(&fake, &c, &tok, "/users/@me/mangalist").await).await;
    assert_eq!(ids_of(&page), [401, 21]);

    // @me needs a Bearer token.
    let r = public_get(&fake, &c, FakeMal::CLIENT_ID, "/users/@me/mangalist").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn manga_list_pages_and_nsfw_like_animelist() {
    let fake = FakeMal::start().await;
    let c = client();
    let (tok, _) = fake.issue_tokens(3600);
    for id in 1..=2500 {
        let nsfw = match id % 50 {
            0 => "gray",
            1 => "black",
            _ => "white",
        };
        fake.add_manga(Manga::new(id, &format!("Manga {id}"), 10, 1).nsfw(nsfw));
    }
    let mut url = format!(
        "{}/users/@me/mangalist?fields=list_status&limit=1000&nsfw=true",
        fake.api_url()
    );
    let mut seen = HashSet::new();
    let mut pages = 0;
    loop {
        let page = body_json(c.get(&url).bearer_auth(&tok).send().await.unwrap()).await;
        pages += 1;
        for id in ids_of(&page) {
            assert!(seen.insert(id));
        }
        match page["paging"].get("next") {
            Some(next) => {
                let next = next.as_str().unwrap();
                assert!(
                    next.starts_with(&format!(
                        "{}/users/@me/mangalist?offset={}&",
                        fake.api_url(),
                        pages * 1000
                    )),
                    "{next}"
                );
                url = next.to_string();
            }
            None => break,
        }
        assert!(pages < 10);
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, (1..=2500).collect::<HashSet<u64>>());

    // Without nsfw=true the gray/black ones vanish; limit is clamped to 1000.
    let page = body_json(api_get(&fake, &c, &tok, "/users/@me/mangalist?limit=5000").await).await;
    let ids = ids_of(&page);
    assert_eq!(ids.len(), 1000);
    assert!(ids.iter().all(|id| id % 50 > 1), "{ids:?}");
    let page = body_json(api_get(&fake, &c, &tok, "/users/@me/mangalist").await).await;
    assert_eq!(ids_of(&page).len(), 100);
    let next = page["paging"]["next"].as_str().unwrap();
    assert!(next.contains("limit=100"), "{next}");
}

#[tokio::test]
async fn manga_patch_matches_fixture_and_upserts() {
    let fake = FakeMal::start().await;
    let c = client();
    let (tok, _) = fake.issue_tokens(3600);
    fake.add_manga_to_catalogue(Manga::new(401, "Kiseijuu", 64, 10));

    let r = manga_patch(
        &fake,
        &c,
        &tok,
        401,
        &[
            ("status", "reading"),
            ("num_volumes_read", "1"),
            ("num_chapters_read", "5"),
            ("comments", "Migi"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let v = body_json(r).await;
    let fx = fixture("patch-manga-my_list_status-response.json");
    assert_eq!(keys(&v), keys(&fx));
    assert_eq!(without_updated_at(v.clone()), without_updated_at(fx));
    assert_eq!(
        v["updated_at"],
        fake.manga_updated_at(401).unwrap().as_str()
    );
    assert!(fake.manga_on_list(401));
    assert_eq!(fake.chapters_read(401), Some(5));
    assert_eq!(fake.volumes_read(401), Some(1));
    assert_eq!(fake.manga_score(401), Some(0));
    assert_eq!(fake.manga_rereading(401), Some(false));
    assert!(!fake.on_list(401), "not on the anime list");

    // Every field; dates set, then cleared by an empty string.
    let r = manga_patch(
        &fake,
        &c,
        &tok,
        401,
        &[
            ("status", "completed"),
            ("is_rereading", "true"),
            ("score", "10"),
            ("num_chapters_read", "64"),
            ("num_volumes_read", "10"),
            ("start_date", "2024-01-02"),
            ("finish_date", "2024-02-03"),
            ("priority", "2"),
            ("num_times_reread", "1"),
            ("reread_value", "5"),
            ("tags", "body horror, classic"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let v = body_json(r).await;
    assert_eq!(v["start_date"], "2024-01-02");
    assert_eq!(v["finish_date"], "2024-02-03");
    assert_eq!(v["tags"], serde_json::json!(["body horror", "classic"]));
    assert_eq!(v["comments"], "Migi");
    assert_eq!(v["is_rereading"], true);
    assert_eq!(fake.manga_rereading(401), Some(true));
    assert_eq!(
        fake.manga_dates(401),
        (Some("2024-01-02".into()), Some("2024-02-03".into()))
    );
    let r = manga_patch(&fake, &c, &tok, 401, &[("finish_date", "")]).await;
    let v = body_json(r).await;
    assert!(v.get("finish_date").is_none(), "{v}");
    assert_eq!(fake.manga_dates(401), (Some("2024-01-02".into()), None));

    // Invalid values: 400 naming the field, nothing changes.
    for (field, value) in [
        ("score", "11"),
        ("status", "watching"),
        ("num_chapters_read", "x"),
        ("num_volumes_read", "-1"),
        ("is_rereading", "maybe"),
        ("start_date", "2024-13-01"),
        ("finish_date", "2024-1-5"),
        ("priority", "3"),
    ] {
        let r = manga_patch(
            &fake,
            &c,
            &tok,
            401,
            &[("num_chapters_read", "1"), (field, value)],
        )
        .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{field}={value}");
        assert_eq!(
            r.text().await.unwrap(),
            format!(r#"{{"message":"invalid {field}","error":"bad_request"}}"#)
        );
    }
    assert_eq!(fake.chapters_read(401), Some(64));
    // Anime names are extra fields here.
    for field in [
        "num_watched_episodes",
        "is_rewatching",
        "num_episodes_watched",
    ] {
        let r = manga_patch(&fake, &c, &tok, 401, &[(field, "1")]).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(r.text().await.unwrap(), mal::EXTRA_FIELDS_BODY);
    }

    // Upsert without status: "plan_to_read" (assumed); unknown manga: 404.
    fake.add_manga_to_catalogue(Manga::new(2, "New", 0, 0));
    let r = manga_patch(&fake, &c, &tok, 2, &[("num_chapters_read", "3")]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(fake.manga_status(2).as_deref(), Some("plan_to_read"));
    let r = manga_patch(&fake, &c, &tok, 999, &[("num_chapters_read", "3")]).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(r.text().await.unwrap(), mal::NOT_FOUND_BODY);

    // The log tells manga from anime.
    fake.add_anime(Anime::new(401, "Kiseijuu: Sei no Kakuritsu", 24));
    assert_eq!(
        api_patch(&fake, &c, &tok, 401, &[("num_watched_episodes", "2")])
            .await
            .status(),
        StatusCode::OK
    );
    let patches = fake.patches();
    assert!(patches[..patches.len() - 1].iter().all(|p| p.is_manga()));
    assert_eq!(patches[0].kind, "manga");
    assert_eq!(patches[0].path, "/v2/manga/401/my_list_status");
    assert_eq!(patches[0].get("comments"), Some("Migi"));
    let last = patches.last().unwrap();
    assert!(last.is_anime());
    assert_eq!(
        (last.kind.as_str(), last.path.as_str(), last.id),
        ("anime", "/v2/anime/401/my_list_status", 401)
    );
    assert_eq!(fake.chapters_read(401), Some(64));
    assert_eq!(fake.watched(401), Some(2));
}

#[tokio::test]
async fn anime_patch_takes_every_field() {
    let fake = FakeMal::start().await;
    let c = client();
    let (tok, _) = fake.issue_tokens(3600);
    fake.add_anime(Anime::new(967, "Hokuto no Ken", 109));

    let r = api_patch(
        &fake,
        &c,
        &tok,
        967,
        &[
            ("status", "watching"),
            ("score", "8"),
            ("num_watched_episodes", "73"),
            ("comments", "You wa shock!"),
        ],
    )
    .await;
    let v = body_json(r).await;
    let fx = fixture("patch-anime-my_list_status-response.json");
    assert_eq!(without_updated_at(v), without_updated_at(fx.clone()));

    let r = api_patch(
        &fake,
        &c,
        &tok,
        967,
        &[
            ("status", "completed"),
            ("is_rewatching", "true"),
            ("score", "10"),
            ("num_watched_episodes", "109"),
            ("start_date", "2024-11-18"),
            ("finish_date", "2025-01-31"),
            ("priority", "1"),
            ("num_times_rewatched", "2"),
            ("rewatch_value", "4"),
            ("tags", "classic,80s"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let v = body_json(r).await;
    let mut want = keys(&fx);
    want.extend(["finish_date".to_string(), "start_date".to_string()]);
    want.sort();
    assert_eq!(keys(&v), want);
    assert_eq!(v["status"], "completed");
    assert_eq!(v["is_rewatching"], true);
    assert_eq!(v["num_times_rewatched"], 2);
    assert_eq!(v["rewatch_value"], 4);
    assert_eq!(v["priority"], 1);
    assert_eq!(v["tags"], serde_json::json!(["classic", "80s"]));
    assert_eq!(fake.status(967).as_deref(), Some("completed"));
    assert_eq!(fake.score(967), Some(10));
    assert_eq!(fake.rewatching(967), Some(true));
    assert_eq!(
        fake.dates(967),
        (Some("2024-11-18".into()), Some("2025-01-31".into()))
    );
    assert_eq!(
        fake.list_status_json("anime", 967).unwrap()["comments"],
        "You wa shock!"
    );

    // The list shows the dates when set (and only the requested extras).
    let page = body_json(api_get(&fake, &c, &tok, "/users/@me/animelist").await).await;
    let ls = &page["data"][0]["list_status"];
    assert_eq!(ls["start_date"], "2024-11-18");
    assert_eq!(ls["finish_date"], "2025-01-31");
    assert!(ls.get("comments").is_none());
    // An empty string clears a date.
    let r = api_patch(&fake, &c, &tok, 967, &[("start_date", "")]).await;
    assert!(body_json(r).await.get("start_date").is_none());
    let page = body_json(api_get(&fake, &c, &tok, "/users/@me/animelist").await).await;
    assert!(page["data"][0]["list_status"].get("start_date").is_none());

    for (field, value) in [
        ("score", "11"),
        ("score", "-1"),
        ("status", "reading"),
        ("status", ""),
        ("num_watched_episodes", "x"),
        ("is_rewatching", "yes"),
        ("start_date", "2024-02-30"),
        ("finish_date", "18/11/2024"),
        ("rewatch_value", "6"),
    ] {
        let r = api_patch(
            &fake,
            &c,
            &tok,
            967,
            &[("num_watched_episodes", "1"), (field, value)],
        )
        .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{field}={value}");
        assert_eq!(
            r.text().await.unwrap(),
            mal::invalid_field_body(field),
            "{field}={value}"
        );
    }
    assert_eq!(fake.watched(967), Some(109));
    assert_eq!(
        mal::invalid_field_body("score"),
        r#"{"message":"invalid score","error":"bad_request"}"#
    );

    // Upsert without status: "plan_to_watch" (assumed), with the dates given.
    fake.add_to_catalogue(Anime::new(5, "Five", 12));
    let r = api_patch(&fake, &c, &tok, 5, &[("start_date", "2025-05-05")]).await;
    let v = body_json(r).await;
    assert_eq!(v["status"], "plan_to_watch");
    assert_eq!(v["start_date"], "2025-05-05");
    assert_eq!(fake.dates(5), (Some("2025-05-05".into()), None));
}

#[tokio::test]
async fn delete_anime_and_manga_entries() {
    let fake = FakeMal::start().await;
    let c = client();
    let (tok, _) = fake.issue_tokens(3600);
    fake.add_anime(Anime::new(1, "One", 12));
    fake.add_manga(Manga::new(1, "One (manga)", 10, 1));
    let del = |kind: &'static str, id: u64| {
        c.delete(format!("{}/{kind}/{id}/my_list_status", fake.api_url()))
            .bearer_auth(&tok)
            .send()
    };

    let r = del("manga", 1).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap(), "[]");
    assert!(!fake.manga_on_list(1));
    assert!(fake.on_list(1), "the anime with the same id stays");
    let r = del("manga", 1).await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        r.text().await.unwrap(),
        r#"{"message":"","error":"not_found"}"#
    );

    let r = del("anime", 1).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap(), "[]");
    assert!(!fake.on_list(1));
    let r = del("anime", 42).await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(r.text().await.unwrap(), mal::NOT_FOUND_BODY);

    // A client id is not enough; rejected deletes are not recorded.
    let r = c
        .delete(format!("{}/anime/1/my_list_status", fake.api_url()))
        .header("X-MAL-CLIENT-ID", FakeMal::CLIENT_ID)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        fake.deletes(),
        [
            ("manga".to_string(), 1),
            ("manga".to_string(), 1),
            ("anime".to_string(), 1),
            ("anime".to_string(), 42),
        ]
    );
    // The titles stay known: PATCH puts them back.
    let r = manga_patch(&fake, &c, &tok, 1, &[("status", "reading")]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(fake.manga_on_list(1));
}

/// Jujutsu Kaisen as in `anime-details-full-with-my_list_status.json`.
fn jujutsu_kaisen(fx: &Value) -> Anime {
    Anime::new(40748, "Jujutsu Kaisen", 24)
        .pictures(
            fx["main_picture"]["medium"].as_str().unwrap(),
            fx["main_picture"]["large"].as_str().unwrap(),
        )
        .synonyms(&["Sorcery Fight", "JJK"])
        .alternative_titles("Jujutsu Kaisen", "呪術廻戦")
        .start_date("2020-10-03")
        .end_date("2021-03-27")
        .synopsis(fx["synopsis"].as_str().unwrap())
        .mean(8.51)
        .media_type("tv")
        .airing_status("finished_airing")
        .genres(&[
            "Action",
            "Award Winning",
            "School",
            "Shounen",
            "Supernatural",
        ])
        .start_season(2020, "fall")
        .broadcast("Saturday", "01:25")
        .episode_duration(1435)
        .rating("r")
        .watched(4)
        .list_dates(Some("2024-11-18"), None)
}

#[tokio::test]
async fn anime_details_honour_fields() {
    let fake = FakeMal::start().await;
    let c = client();
    let (tok, _) = fake.issue_tokens(3600);
    let fx = fixture("anime-details-full-with-my_list_status.json");
    fake.add_anime(jujutsu_kaisen(&fx));

    let supported = [
        "alternative_titles",
        "start_date",
        "end_date",
        "synopsis",
        "mean",
        "nsfw",
        "media_type",
        "status",
        "genres",
        "my_list_status",
        "num_episodes",
        "start_season",
        "broadcast",
        "average_episode_duration",
        "rating",
    ];
    let url = format!("/anime/40748?fields={}", supported.join(","));
    let d = body_json(api_get(&fake, &c, &tok, &url).await).await;
    let mut want: Vec<String> = supported.iter().map(|s| s.to_string()).collect();
    want.extend(["id", "title", "main_picture"].map(String::from));
    want.sort();
    assert_eq!(keys(&d), want);
    // Every value equals the recorded one (my_list_status but its timestamp).
    for k in &want {
        if k == "my_list_status" {
            assert_eq!(keys(&d[k]), keys(&fx[k]));
            assert_eq!(
                without_updated_at(d[k].clone()),
                without_updated_at(fx[k].clone())
            );
        } else {
            assert_eq!(d[k], fx[k], "{k}");
        }
    }

    // Only what is asked for.
    let d = body_json(api_get(&fake, &c, &tok, "/anime/40748").await).await;
    assert_eq!(keys(&d), ["id", "main_picture", "title"]);
    let d = body_json(api_get(&fake, &c, &tok, "/anime/40748?fields=mean,num_episodes,foo").await)
        .await;
    assert_eq!(
        keys(&d),
        ["id", "main_picture", "mean", "num_episodes", "title"]
    );

    // my_list_status: only to a Bearer token, only when on the list.
    let d = body_json(
        public_get(
            &fake,
            &c,
            FakeMal::CLIENT_ID,
            "/anime/40748?fields=my_list_status,num_episodes",
        )
        .await,
    )
    .await;
    assert!(d.get("my_list_status").is_none(), "{d}");
    assert_eq!(d["num_episodes"], 24);
    fake.remove_from_list(40748);
    let d = body_json(api_get(&fake, &c, &tok, "/anime/40748?fields=my_list_status").await).await;
    assert!(d.get("my_list_status").is_none(), "{d}");

    // Unknown totals are 0; the default status follows; unset fields stay out.
    fake.add_anime(
        Anime::new(7, "Still Airing", 0)
            .airing("Thursday", "23:30", "2025-04-03")
            .genres(&["Comedy", "Made Up"]),
    );
    let d = body_json(
        api_get(
            &fake,
            &c,
            &tok,
            "/anime/7?fields=num_episodes,status,broadcast,start_season,start_date,end_date,mean,genres,rating,media_type,synopsis,alternative_titles,my_list_status",
        )
        .await,
    )
    .await;
    assert_eq!(d["num_episodes"], 0);
    assert_eq!(d["status"], "currently_airing");
    assert_eq!(
        d["broadcast"],
        serde_json::json!({"day_of_the_week": "thursday", "start_time": "23:30"})
    );
    assert_eq!(
        d["start_season"],
        serde_json::json!({"year": 2025, "season": "spring"})
    );
    assert_eq!(d["start_date"], "2025-04-03");
    assert!(d.get("end_date").is_none());
    assert!(d.get("mean").is_none());
    assert_eq!(
        d["genres"],
        serde_json::json!([{"id": 4, "name": "Comedy"}, {"id": 1001, "name": "Made Up"}])
    );
    assert_eq!(d["rating"], "pg_13");
    assert_eq!(d["media_type"], "tv");
    assert_eq!(d["synopsis"], "");
    assert_eq!(
        d["alternative_titles"],
        serde_json::json!({"synonyms": [], "en": "Still Airing", "ja": ""})
    );
    assert_eq!(
        keys(&d["my_list_status"]),
        keys(&fixture("user-animelist-page.json")["data"][0]["list_status"])
    );

    let r = api_get(&fake, &c, &tok, "/anime/999").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(r.text().await.unwrap(), mal::NOT_FOUND_BODY);
    let r = c
        .get(format!("{}/anime/7", fake.api_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.headers()["www-authenticate"],
        mal::INVALID_TOKEN_WWW_AUTHENTICATE
    );
}

#[tokio::test]
async fn manga_details_honour_fields() {
    let fake = FakeMal::start().await;
    let c = client();
    let (tok, _) = fake.issue_tokens(3600);
    let fx = fixture("manga-details-full-with-my_list_status.json");
    fake.add_manga(
        Manga::new(148009, "Level Up with the Gods", 0, 0)
            .pictures(
                fx["main_picture"]["medium"].as_str().unwrap(),
                fx["main_picture"]["large"].as_str().unwrap(),
            )
            .synonyms(&["Leveling with the Gods", "Sin-gwa Hamkke Level Up"])
            .alternative_titles("Level Up with the Gods", "신과 함께 레벨업")
            .start_date("2021-08-14")
            .synopsis(fx["synopsis"].as_str().unwrap())
            .mean(7.65)
            .media_type("manhwa")
            .genres(&["Action", "Adventure", "Fantasy", "Time Travel"])
            .chapters_read(167)
            .score(9)
            .list_dates(Some("2025-05-13"), None),
    );
    let supported = [
        "alternative_titles",
        "start_date",
        "synopsis",
        "mean",
        "nsfw",
        "media_type",
        "status",
        "genres",
        "my_list_status",
        "num_chapters",
        "num_volumes",
    ];
    let url = format!("/manga/148009?fields={}", supported.join(","));
    let d = body_json(api_get(&fake, &c, &tok, &url).await).await;
    let mut want: Vec<String> = supported.iter().map(|s| s.to_string()).collect();
    want.extend(["id", "title", "main_picture"].map(String::from));
    want.sort();
    assert_eq!(keys(&d), want);
    for k in &want {
        if k == "my_list_status" {
            assert_eq!(keys(&d[k]), keys(&fx[k]));
            assert_eq!(
                without_updated_at(d[k].clone()),
                without_updated_at(fx[k].clone())
            );
        } else {
            assert_eq!(d[k], fx[k], "{k}");
        }
    }
    // Anime-only fields are not served for manga.
    let d = body_json(
        api_get(
            &fake,
            &c,
            &tok,
            "/manga/148009?fields=num_episodes,broadcast,start_season,rating,status",
        )
        .await,
    )
    .await;
    assert_eq!(keys(&d), ["id", "main_picture", "status", "title"]);
    assert_eq!(d["status"], "currently_publishing");

    // Kiseijuu as in manga-details-basic.json (authors included).
    let basic = fixture("manga-details-basic.json");
    fake.add_manga_to_catalogue(
        Manga::new(401, "Kiseijuu", 64, 10)
            .pictures(
                basic["main_picture"]["medium"].as_str().unwrap(),
                basic["main_picture"]["large"].as_str().unwrap(),
            )
            .synonyms(&["Parasite", "Parasitic Beasts"])
            .alternative_titles("Parasyte", "寄生獣")
            .media_type("manga")
            .author(2377, "Hitoshi", "Iwaaki", "Story & Art")
            .genre(1, "Action")
            .genre(40, "Psychological")
            .genre(24, "Sci-Fi")
            .genre(8, "Drama")
            .genre(14, "Horror")
            .genre(41, "Seinen")
            .publishing_status("finished"),
    );
    let d = body_json(
        public_get(
            &fake,
            &c,
            FakeMal::CLIENT_ID,
            "/manga/401?fields=alternative_titles,media_type,num_volumes,num_chapters,authors,genres,status,my_list_status",
        )
        .await,
    )
    .await;
    assert_eq!(d, basic);

    let r = api_get(&fake, &c, &tok, "/manga/1").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(r.text().await.unwrap(), mal::NOT_FOUND_BODY);
}

#[tokio::test]
async fn search_rules_match_mal() {
    let fake = FakeMal::start().await;
    let c = client();
    let (tok, _) = fake.issue_tokens(3600);
    let fx = fixture("anime-search-page.json");
    for (id, title, year, season) in [
        (967, "Hokuto no Ken", 1984, "fall"),
        (1356, "Hokuto no Ken 2", 1987, "spring"),
        (1358, "Hokuto no Ken Movie", 1986, "winter"),
        (1359, "Hokuto no Ken: Raoh Den", 2006, "spring"),
    ] {
        fake.add_to_catalogue(Anime::new(id, title, 1).start_season(year, season));
    }

    // Paging as recorded: offset first, then the parameters as sent.
    let r = c
        .get(format!("{}/anime", fake.api_url()))
        .query(&[
            ("fields", "rank,popularity,start_season"),
            ("limit", "3"),
            ("q", "hokuto no ken"),
        ])
        .header("X-MAL-CLIENT-ID", FakeMal::CLIENT_ID)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let page = body_json(r).await;
    assert_eq!(keys(&page), keys(&fx));
    assert_eq!(ids_of(&page), ids_of(&fx));
    for (item, fx_item) in page["data"]
        .as_array()
        .unwrap()
        .iter()
        .zip(fx["data"].as_array().unwrap())
    {
        assert_eq!(keys(item), ["node"]);
        assert_eq!(item["node"]["title"], fx_item["node"]["title"]);
        assert_eq!(
            item["node"]["start_season"],
            fx_item["node"]["start_season"]
        );
        for k in keys(&item["node"]) {
            assert!(fx_item["node"].get(&k).is_some(), "{k}");
        }
    }
    assert_eq!(
        page["paging"]["next"].as_str().unwrap(),
        fx["paging"]["next"]
            .as_str()
            .unwrap()
            .replace("https://api.myanimelist.net/v2", &fake.api_url())
    );

    // q of 3 to 64 characters; the 400 is byte-equal to the recording.
    let recorded = fixture_text("error-400-bad_request.json");
    let sixty_five = "a".repeat(65);
    for q in ["", "ab", "  ab  ", sixty_five.as_str()] {
        let r = api_get(&fake, &c, &tok, &format!("/anime?q={q}")).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{q:?}");
        assert_eq!(r.text().await.unwrap(), recorded.trim_end(), "{q:?}");
    }
    let r = api_get(&fake, &c, &tok, "/anime").await;
    assert_eq!(r.text().await.unwrap(), mal::INVALID_Q_BODY);
    let sixty_four = "a".repeat(64);
    let r = api_get(&fake, &c, &tok, &format!("/anime?q={sixty_four}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(body_json(r).await["data"], serde_json::json!([]));

    // limit up to 100; above, 400 invalid limit.
    let r = api_get(&fake, &c, &tok, "/anime?q=hokuto&limit=100").await;
    assert_eq!(ids_of(&body_json(r).await).len(), 4);
    for bad in ["101", "0", "x"] {
        let r = api_get(&fake, &c, &tok, &format!("/anime?q=hokuto&limit={bad}")).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(r.text().await.unwrap(), mal::INVALID_LIMIT_BODY);
    }

    // Case-insensitive, over alternative titles too, list entries included.
    fake.add_anime(
        Anime::new(40748, "Jujutsu Kaisen", 24)
            .synonyms(&["Sorcery Fight"])
            .alternative_titles("Jujutsu Kaisen", "呪術廻戦"),
    );
    for (q, want) in [
        ("HOKUTO no ken 2", vec![1356]),
        ("sorcery", vec![40748]),
        ("呪術廻", vec![40748]),
        ("raoh", vec![1359]),
    ] {
        let r = api_get(&fake, &c, &tok, &format!("/anime?q={q}")).await;
        assert_eq!(ids_of(&body_json(r).await), want, "{q}");
    }
    assert_eq!(fake.searches()[0], "hokuto no ken");
    assert_eq!(fake.searches().last().unwrap(), "raoh");
    assert!(fake.searches().contains(&"ab".to_string()));
    assert!(fake.search_log().iter().all(|(kind, _)| kind == "anime"));
}

#[tokio::test]
async fn search_hides_nsfw_and_my_list_status_needs_bearer() {
    let fake = FakeMal::start().await;
    let c = client();
    let (tok, _) = fake.issue_tokens(3600);
    fake.add_anime(Anime::new(1, "Kill la Kill", 24).nsfw("gray").watched(3));
    fake.add_to_catalogue(Anime::new(2, "Kill Me Baby", 13));
    fake.add_to_catalogue(Anime::new(3, "Killing Bites", 12).nsfw("black"));
    fake.add_manga(Manga::new(10, "Killing Stalking", 0, 0).nsfw("black"));
    fake.add_manga(Manga::new(11, "Kill Blue", 0, 0).chapters_read(12));

    for (q, want) in [
        ("/anime?q=kill", vec![2]),
        ("/anime?q=kill&nsfw=false", vec![2]),
        ("/anime?q=kill&nsfw=true", vec![1, 2, 3]),
        ("/manga?q=kill", vec![11]),
        ("/manga?q=kill&nsfw=true", vec![10, 11]),
    ] {
        let page = body_json(public_get(&fake, &c, FakeMal::CLIENT_ID, q).await).await;
        assert_eq!(ids_of(&page), want, "{q}");
    }

    // my_list_status: requested, Bearer, on the list.
    let page = body_json(
        api_get(
            &fake,
            &c,
            &tok,
            "/anime?q=kill&nsfw=true&fields=my_list_status",
        )
        .await,
    )
    .await;
    let nodes: Vec<&Value> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["node"])
        .collect();
    assert_eq!(nodes[0]["my_list_status"]["num_episodes_watched"], 3);
    assert!(nodes[1].get("my_list_status").is_none());
    let page = body_json(api_get(&fake, &c, &tok, "/anime?q=kill&nsfw=true").await).await;
    assert!(page["data"][0]["node"].get("my_list_status").is_none());
    let page = body_json(
        public_get(
            &fake,
            &c,
            FakeMal::CLIENT_ID,
            "/anime?q=kill&nsfw=true&fields=my_list_status",
        )
        .await,
    )
    .await;
    assert!(page["data"][0]["node"].get("my_list_status").is_none());
    let page = body_json(
        api_get(
            &fake,
            &c,
            &tok,
            "/manga?q=kill%20blue&fields=my_list_status,num_chapters",
        )
        .await,
    )
    .await;
    let node = &page["data"][0]["node"];
    assert_eq!(node["num_chapters"], 0);
    assert_eq!(node["my_list_status"]["num_chapters_read"], 12);
    assert_eq!(
        keys(&node["my_list_status"]),
        keys(&fixture("manga-details-full-with-my_list_status.json")["my_list_status"])
            .into_iter()
            .filter(|k| k != "start_date")
            .collect::<Vec<_>>()
    );
    let r = api_get(&fake, &c, &tok, "/manga?q=ki").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.text().await.unwrap(), mal::INVALID_Q_BODY);
    assert_eq!(
        fake.search_log().last().unwrap(),
        &("manga".to_string(), "ki".to_string())
    );
}

#[tokio::test]
async fn client_id_auth_for_public_endpoints() {
    let fake = FakeMal::start().await;
    let c = client();
    fake.add_to_catalogue(Anime::new(1, "Public Title", 12));
    fake.add_manga_to_catalogue(Manga::new(2, "Public Manga", 10, 1));
    let check_401 = |r: reqwest::Response| async move {
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            r.headers()["www-authenticate"],
            mal::INVALID_TOKEN_WWW_AUTHENTICATE
        );
        assert_eq!(
            body_json(r).await,
            fixture("error-401-invalid_token-expired-access-token.json")
        );
    };
    for path in ["/anime/1", "/manga/2", "/anime?q=public", "/manga?q=public"] {
        let r = public_get(&fake, &c, FakeMal::CLIENT_ID, path).await;
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        check_401(public_get(&fake, &c, "someone-else", path).await).await;
        check_401(
            c.get(format!("{}{path}", fake.api_url()))
                .send()
                .await
                .unwrap(),
        )
        .await;
        // A bad Bearer token is not rescued by a good client id.
        check_401(
            c.get(format!("{}{path}", fake.api_url()))
                .bearer_auth("expired")
                .header("X-MAL-CLIENT-ID", FakeMal::CLIENT_ID)
                .send()
                .await
                .unwrap(),
        )
        .await;
    }
    // Searches refused at the door are not recorded.
    assert_eq!(fake.searches(), ["public", "public"]);

    // The accepted client id can be changed; it applies to OAuth too.
    fake.set_client_id("my-app-id");
    assert_eq!(fake.client_id(), "my-app-id");
    check_401(public_get(&fake, &c, FakeMal::CLIENT_ID, "/anime/1").await).await;
    let r = public_get(&fake, &c, "my-app-id", "/anime/1").await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = c
        .get(format!("{}/authorize", fake.auth_url()))
        .query(&[
            ("response_type", "code"),
            ("client_id", FakeMal::CLIENT_ID),
            ("redirect_uri", REDIRECT),
            ("code_challenge", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let (_, refresh_token) = fake.issue_tokens(60);
    let r = refresh(&fake, &c, &refresh_token).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = exchange(
        &fake,
        &c,
        &[
            ("client_id", "my-app-id"),
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh_token),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn covers_are_served_by_the_fake() {
    let fake = FakeMal::start().await;
    let c = client();
    let (tok, _) = fake.issue_tokens(3600);
    fake.add_anime(Anime::new(5, "Five", 12));
    fake.add_manga(Manga::new(6, "Six", 10, 1));
    fake.add_anime(
        Anime::new(7, "Seven", 12).picture(&format!("{}/images/custom/7.png", fake.base())),
    );
    let before = fake.requests().len();

    let d = body_json(api_get(&fake, &c, &tok, "/anime/5").await).await;
    let medium = d["main_picture"]["medium"].as_str().unwrap().to_string();
    let large = d["main_picture"]["large"].as_str().unwrap().to_string();
    assert_eq!(medium, format!("{}/images/anime/5.png", fake.base()));
    assert_eq!(large, format!("{}/images/anime/5l.png", fake.base()));
    let d = body_json(api_get(&fake, &c, &tok, "/manga/6").await).await;
    assert_eq!(
        d["main_picture"]["medium"],
        format!("{}/images/manga/6.png", fake.base()).as_str()
    );
    let d = body_json(api_get(&fake, &c, &tok, "/anime/7").await).await;
    let custom = d["main_picture"]["large"].as_str().unwrap().to_string();
    assert_eq!(custom, format!("{}/images/custom/7.png", fake.base()));

    assert_eq!(fake.image_requests(), 0);
    for url in [&medium, &large, &custom] {
        // No auth needed, and latency/failures of the API do not apply.
        fake.fail_next(1, 500, "x", "text/plain");
        let r = c.get(url).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["content-type"], "image/png");
        let bytes = r.bytes().await.unwrap();
        assert_eq!(bytes.as_ref(), mal::cover_png().as_slice());
        assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert_eq!(&bytes[12..16], b"IHDR");
        assert_eq!(&bytes[16..24], [0, 0, 0, 2, 0, 0, 0, 3]); // 2×3
        assert!(bytes.ends_with(&[b'I', b'E', b'N', b'D', 0xAE, 0x42, 0x60, 0x82]));
    }
    assert_eq!(fake.image_requests(), 3);
    assert_eq!(
        fake.image_paths(),
        [
            "/images/anime/5.png",
            "/images/anime/5l.png",
            "/images/custom/7.png"
        ]
    );
    // Not in the API request log.
    assert_eq!(fake.requests().len(), before + 3);
    assert!(
        fake.requests()
            .iter()
            .all(|r| !r.path.starts_with("/images/"))
    );
}
