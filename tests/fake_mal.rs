//! Tests of the MyAnimeList fake itself, against the recorded fixtures.

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use support::mal::{self, Anime, FakeMal};

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
    assert!(text.contains(r"https:\/\/"), "PHP-style escaping: {text}");
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
