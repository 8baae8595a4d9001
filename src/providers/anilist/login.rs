//! The last steps of `malt --login anilist`: the authorize address, trading a code for a token
//! (or taking the token the redirect brought), checking it, and storing it.
//!
//! AniList tokens last a year and cannot be refreshed: the stored [`TokenSet`] has no refresh
//! token, and its expiry comes from the token itself (a JWT's `exp`).

use base64::Engine;
use reqwest::Url;
use reqwest::header::ACCEPT;
use serde::Deserialize;
use serde_json::{Value, json};

use super::query;
use crate::auth::redirect::Redirect;
use crate::auth::tokens::now_secs;
use crate::auth::{TokenFile, TokenSet};
use crate::config::AnilistConfig;
use crate::providers::{ProviderError, describe_transport, looks_like_html, one_line};

/// How long a token is taken to last when neither it nor the login says (AniList's documented
/// lifetime: a year).
pub const DEFAULT_LIFETIME_SECS: i64 = 365 * 24 * 3600;

/// `base/name`, whether or not `base` ends in a slash.
fn endpoint(base: &Url, name: &str) -> Url {
    let mut url = base.clone();
    let path = format!("{}/{name}", base.path().trim_end_matches('/'));
    url.set_path(&path);
    url.set_query(None);
    url
}

/// The address a browser is sent to. Without a `client_secret`, the implicit grant
/// (`response_type=token`: the token comes back in the redirect's fragment, or on AniList's pin
/// page); with one, the authorization-code grant with the configured `redirect_uri`.
pub fn authorize_url(cfg: &AnilistConfig, state: &str) -> Url {
    let mut url = endpoint(&cfg.auth_url, "authorize");
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("client_id", &cfg.client_id);
        match cfg.client_secret {
            Some(_) => {
                q.append_pair("redirect_uri", cfg.redirect_uri.as_str());
                q.append_pair("response_type", "code");
            }
            None => {
                q.append_pair("response_type", "token");
            }
        }
        q.append_pair("state", state);
    }
    url
}

/// When an AniList token expires (Unix seconds), from its JWT payload's `exp` (the signature is
/// not checked: the token is only ever sent back to AniList). `None` for anything that is not a
/// JWT with a usable `exp`.
pub fn token_expiry(access_token: &str) -> Option<i64> {
    let mut parts = access_token.trim().split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    let payload = payload.trim_end_matches('=');
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    let exp = match claims.get("exp")? {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && *f > 0.0 && *f < 1e15)
                .map(|f| f as i64)
        }),
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite() && *f > 0.0 && *f < 1e15)
            .map(|f| f as i64),
        _ => None,
    }?;
    (exp > 0).then_some(exp)
}

/// When a new token expires: its own `exp`, else the lifetime the login gave, else a year.
pub fn expires_at(access_token: &str, expires_in: Option<u64>, now: i64) -> i64 {
    token_expiry(access_token)
        .or_else(|| {
            expires_in
                .and_then(|s| i64::try_from(s).ok())
                .map(|s| now.saturating_add(s))
        })
        .unwrap_or_else(|| now.saturating_add(DEFAULT_LIFETIME_SECS))
}

/// Reads the token endpoint's answer: the access token and its lifetime, or one sentence saying
/// why the login was refused (never the token).
pub fn read_token_answer(status: u16, body: &[u8]) -> Result<(String, Option<u64>), String> {
    #[derive(Deserialize)]
    struct Answer {
        access_token: Option<String>,
        expires_in: Option<Value>,
        error: Option<String>,
        message: Option<String>,
        hint: Option<String>,
        error_description: Option<String>,
    }
    if looks_like_html(body) {
        return Err(format!(
            "AniList refused the login (HTTP {status}, an HTML page)"
        ));
    }
    let answer: Answer = serde_json::from_slice(body).map_err(|_| {
        format!("AniList answered the login with something malt cannot read (HTTP {status})")
    })?;
    let success = (200..300).contains(&status);
    match answer.access_token.map(|t| t.trim().to_string()) {
        Some(token) if success && !token.is_empty() => {
            let lifetime = answer.expires_in.and_then(|v| match v {
                Value::Number(n) => n
                    .as_u64()
                    .or_else(|| n.as_f64().filter(|f| *f > 0.0).map(|f| f as u64)),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            });
            Ok((token, lifetime))
        }
        _ => {
            let why = [
                answer.message,
                answer.hint,
                answer.error_description,
                answer.error,
            ]
            .into_iter()
            .flatten()
            .map(|m| m.trim().to_string())
            .find(|m| !m.is_empty());
            Err(match why {
                Some(why) => format!("AniList refused the login: {}", one_line(&why)),
                None if success => "AniList did not send a token".into(),
                None => format!("AniList refused the login (HTTP {status})"),
            })
        }
    }
}

/// Trades an authorization code for a token.
async fn exchange_code(
    cfg: &AnilistConfig,
    http: &reqwest::Client,
    code: &str,
) -> Result<(String, Option<u64>), String> {
    let Some(secret) = cfg.client_secret.as_deref() else {
        return Err("AniList sent back a code, but [anilist] has no client_secret to trade it for a token: add the API client's secret to [anilist]".into());
    };
    let response = http
        .post(endpoint(&cfg.auth_url, "token"))
        .header(ACCEPT, "application/json")
        .json(&json!({
            "grant_type": "authorization_code",
            "client_id": cfg.client_id,
            "client_secret": secret,
            "redirect_uri": cfg.redirect_uri.as_str(),
            "code": code,
        }))
        .send()
        .await
        .map_err(|e| {
            format!(
                "cannot reach AniList to finish the login ({})",
                describe_transport(&e)
            )
        })?;
    let status = response.status().as_u16();
    let body = response.bytes().await.map_err(|e| {
        format!(
            "cannot reach AniList to finish the login ({})",
            describe_transport(&e)
        )
    })?;
    read_token_answer(status, &body)
}

/// Asks AniList who the token belongs to.
async fn who_am_i(
    cfg: &AnilistConfig,
    http: &reqwest::Client,
    token: &str,
) -> Result<query::Viewer, String> {
    let failed = |e: ProviderError| {
        match e {
        ProviderError::SessionExpired => {
            "AniList did not accept the token (Invalid token): log in again, and paste the whole token if you copy it by hand".to_string()
        }
        other => format!("logged in, but AniList would not say who you are: {other}"),
    }
    };
    let response = http
        .post(cfg.api_url.clone())
        .bearer_auth(token)
        .header(ACCEPT, "application/json")
        .json(&json!({ "query": query::VIEWER, "variables": {} }))
        .send()
        .await
        .map_err(|e| failed(ProviderError::Offline(describe_transport(&e))))?;
    let status = response.status().as_u16();
    let wait = super::pace::pause_from(status, response.headers(), now_secs());
    let body = response
        .bytes()
        .await
        .map_err(|e| failed(ProviderError::Offline(describe_transport(&e))))?;
    match query::classify(status, wait, &body) {
        query::Outcome::Ok => query::parse_viewer(&body).map_err(failed),
        query::Outcome::NotFound => Err(failed(ProviderError::BadResponse(
            "AniList did not find the account (404)".into(),
        ))),
        query::Outcome::Failed(e) => Err(failed(e)),
    }
}

/// Finishes a login: takes the token the redirect brought (implicit grant) or trades the code for
/// one, checks it by asking who is logged in, and only then stores it. Returns the account name;
/// an error is one readable sentence (it never holds a token).
pub async fn finish_login(
    cfg: &AnilistConfig,
    http: reqwest::Client,
    file: TokenFile,
    got: Redirect,
) -> Result<String, String> {
    let (token, expires_in) = match got {
        Redirect::Code(code) => exchange_code(cfg, &http, code.trim()).await?,
        Redirect::Token {
            access_token,
            expires_in,
        } => (access_token.trim().to_string(), expires_in),
    };
    if token.is_empty() {
        return Err("the login brought no token: run `malt --login anilist` again".into());
    }
    let viewer = who_am_i(cfg, &http, &token).await?;
    let tokens = TokenSet {
        expires_at: expires_at(&token, expires_in, now_secs()),
        access_token: token,
        // AniList has no refresh tokens.
        refresh_token: String::new(),
    };
    file.save(&tokens).map_err(|e| e.to_string())?;
    tracing::info!(
        account = %viewer.name,
        expires_at = tokens.expires_at,
        "AniList login stored"
    );
    Ok(viewer.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(secret: Option<&str>) -> AnilistConfig {
        let mut text = String::from("[anilist]\nclient_id = \"4242\"\n");
        if let Some(s) = secret {
            text.push_str(&format!("client_secret = \"{s}\"\n"));
        }
        crate::config::Config::parse(std::path::Path::new("c.toml"), &text)
            .unwrap()
            .anilist
            .unwrap()
    }

    fn jwt(payload: &str) -> String {
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.{}",
            e.encode(br#"{"typ":"JWT","alg":"RS256"}"#),
            e.encode(payload),
            e.encode(b"signature")
        )
    }

    #[test]
    fn the_implicit_grant_asks_for_a_token() {
        let url = authorize_url(&cfg(None), "st4te");
        assert_eq!(
            url.as_str().split('?').next(),
            Some("https://anilist.co/api/v2/oauth/authorize")
        );
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q["client_id"], "4242");
        assert_eq!(q["response_type"], "token");
        assert_eq!(q["state"], "st4te");
        assert!(!q.contains_key("redirect_uri"));
    }

    #[test]
    fn with_a_secret_the_code_grant_is_used() {
        let url = authorize_url(&cfg(Some("s3cret")), "st4te");
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["redirect_uri"], "http://127.0.0.1:53682/callback");
        assert_eq!(q["state"], "st4te");
        assert!(!url.as_str().contains("s3cret"));
    }

    #[test]
    fn token_expiry_reads_the_jwt_exp() {
        assert_eq!(
            token_expiry(&jwt(r#"{"sub":"1","exp":1767225600}"#)),
            Some(1_767_225_600)
        );
        // Laravel Passport writes its times with microseconds.
        assert_eq!(
            token_expiry(&jwt(r#"{"exp":1767225600.123456,"iat":1735689600.1}"#)),
            Some(1_767_225_600)
        );
        assert_eq!(
            token_expiry(&jwt(r#"{"exp":"1767225600"}"#)),
            Some(1_767_225_600)
        );
    }

    #[test]
    fn token_expiry_never_panics_on_junk() {
        for junk in [
            "",
            ".",
            "..",
            "abc",
            "a.b",
            "a.b.c",
            "a.!!!.c",
            "a.\u{1F600}.c",
            &jwt("not json"),
            &jwt(r#"{"sub":"1"}"#),
            &jwt(r#"{"exp":null}"#),
            &jwt(r#"{"exp":-5}"#),
            &jwt(r#"{"exp":1e300}"#),
            &jwt(r#"{"exp":"soon"}"#),
            &jwt(r#"{"exp":[1]}"#),
            &jwt("[]"),
        ] {
            assert_eq!(token_expiry(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn a_new_token_expires_when_it_says_else_when_the_login_says_else_in_a_year() {
        let now = 1_700_000_000;
        let t = jwt(r#"{"exp":1800000000}"#);
        assert_eq!(expires_at(&t, Some(10), now), 1_800_000_000);
        assert_eq!(
            expires_at("opaque", Some(31_536_000), now),
            now + 31_536_000
        );
        assert_eq!(expires_at("opaque", None, now), now + DEFAULT_LIFETIME_SECS);
    }

    #[test]
    fn token_answers_are_read_and_refusals_explained() {
        assert_eq!(
            read_token_answer(
                200,
                br#"{"token_type":"Bearer","expires_in":31536000,"access_token":"tok"}"#
            ),
            Ok(("tok".to_string(), Some(31_536_000)))
        );
        assert_eq!(
            read_token_answer(
                401,
                br#"{"error":"invalid_client","message":"Client authentication failed"}"#
            ),
            Err("AniList refused the login: Client authentication failed".to_string())
        );
        assert_eq!(
            read_token_answer(
                400,
                br#"{"error":"invalid_request","hint":"Check the `code` parameter"}"#
            ),
            Err("AniList refused the login: Check the `code` parameter".to_string())
        );
        assert_eq!(
            read_token_answer(500, b"<html>oops</html>"),
            Err("AniList refused the login (HTTP 500, an HTML page)".to_string())
        );
        assert_eq!(
            read_token_answer(200, br#"{"token_type":"Bearer"}"#),
            Err("AniList did not send a token".to_string())
        );
        // A token in an error answer is not taken, nor repeated.
        let e = read_token_answer(400, br#"{"access_token":"SECRET"}"#).unwrap_err();
        assert!(!e.contains("SECRET"));
    }
}
