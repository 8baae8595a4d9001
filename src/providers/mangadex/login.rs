//! `malt --login mangadex`: the password grant of a MangaDex personal API client (Keycloak), and
//! the client the session refreshes its tokens with.
//!
//! The password is sent once, to the token endpoint, and never kept: not in the token file, not in
//! a message, not in the log.

use base64::Engine;
use reqwest::Url;
use serde::Deserialize;

use super::api::endpoint;
use crate::auth::oauth::parse_token_response;
use crate::auth::{OAuthClient, TokenFile};
use crate::config::MangadexConfig;
use crate::providers::{Http, describe_transport, looks_like_html, one_line};

/// The Keycloak token endpoint: `{auth_url}/token`.
pub fn token_url(cfg: &MangadexConfig) -> Url {
    endpoint(&cfg.auth_url, &["token"])
}

/// The client the session refreshes tokens with (`grant_type=refresh_token`, with the client id
/// and secret).
pub fn oauth_client(cfg: &MangadexConfig, http: Http) -> OAuthClient {
    OAuthClient::new(
        http,
        token_url(cfg),
        cfg.client_id.clone(),
        Some(cfg.client_secret.clone()),
    )
}

/// The form of the password grant.
pub fn password_form<'a>(cfg: &'a MangadexConfig, password: &'a str) -> [(&'a str, &'a str); 5] {
    [
        ("grant_type", "password"),
        ("username", cfg.username.as_str()),
        ("password", password),
        ("client_id", cfg.client_id.as_str()),
        ("client_secret", cfg.client_secret.as_str()),
    ]
}

/// Keycloak's refusal (`{"error","error_description"}`) as one sentence.
pub fn keycloak_error(status: u16, body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Refusal {
        error: Option<String>,
        error_description: Option<String>,
    }
    let clean = |t: &str| one_line(&t.replace(char::is_control, " "));
    let refusal = if looks_like_html(body) {
        None
    } else {
        serde_json::from_slice::<Refusal>(body).ok()
    };
    let Some(refusal) = refusal.filter(|r| r.error.is_some() || r.error_description.is_some())
    else {
        return if status >= 500 {
            format!("MangaDex's login server is having trouble (HTTP {status}); try again later")
        } else {
            format!(
                "MangaDex's login server answered HTTP {status} with something malt cannot read (is auth_url in [mangadex] right?)"
            )
        };
    };
    let error = refusal.error.as_deref().map(clean).unwrap_or_default();
    let description = refusal
        .error_description
        .as_deref()
        .map(clean)
        .filter(|d| !d.is_empty());
    if status >= 500 {
        let what = description.as_deref().unwrap_or(error.as_str());
        return format!(
            "MangaDex's login server is having trouble (HTTP {status}: {what}); try again later"
        );
    }
    let said = |d: &Option<String>| {
        format!(
            "MangaDex refused the login: {}",
            d.as_deref().unwrap_or(error.as_str())
        )
    };
    match error.as_str() {
        "invalid_grant"
            if description
                .as_deref()
                .is_none_or(|d| d.to_ascii_lowercase().contains("invalid user credentials")) =>
        {
            "MangaDex refused the login: wrong username or password".into()
        }
        "unauthorized_client" | "invalid_client" => {
            "MangaDex refused the login: the API client is not approved yet or its secret is wrong (check client_id and client_secret in [mangadex] against the client on mangadex.org → Settings → API Clients)".into()
        }
        _ => said(&description),
    }
}

/// The account name in a Keycloak access token (a JWT's `preferred_username`), when it is one.
pub fn token_username(access_token: &str) -> Option<String> {
    let payload = access_token.trim().split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let name = claims.get("preferred_username")?.as_str()?.trim();
    (!name.is_empty()).then(|| one_line(&name.replace(char::is_control, " ")))
}

/// Logs in with the account's password (the password grant of the personal client in `cfg`) and
/// stores the tokens. Returns the account name; an error is one readable sentence (never the
/// password, never a token).
pub async fn finish_login(
    cfg: &MangadexConfig,
    http: reqwest::Client,
    file: TokenFile,
    password: &str,
) -> Result<String, String> {
    // A password read from a pipe may end with the line's end, which no one can type in it.
    let password = password.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        return Err("no password given: nothing was sent to MangaDex".into());
    }
    let hide = |text: String| {
        if password.len() >= 3 && text.contains(password) {
            text.replace(password, "…")
        } else {
            text
        }
    };
    let unreachable = |e: reqwest::Error| {
        format!(
            "cannot reach MangaDex's login server ({})",
            describe_transport(&e)
        )
    };
    let response = http
        .post(token_url(cfg))
        .header(reqwest::header::ACCEPT, "application/json")
        .form(&password_form(cfg, password))
        .send()
        .await
        .map_err(unreachable)?;
    let status = response.status().as_u16();
    let body = response.bytes().await.map_err(unreachable)?;
    if !(200..300).contains(&status) {
        tracing::info!(status, "MangaDex refused the login");
        return Err(hide(keycloak_error(status, &body)));
    }
    let tokens = parse_token_response(status, &body, None)
        .map_err(|e| hide(format!("MangaDex's login server: {e}")))?;
    if tokens.refresh_token.is_empty() {
        // Without one the session would end in 15 minutes.
        return Err("MangaDex's login server sent no refresh token; try again".into());
    }
    file.save(&tokens).map_err(|e| e.to_string())?;
    let name = token_username(&tokens.access_token).unwrap_or_else(|| cfg.username.clone());
    tracing::info!(account = %name, expires_at = tokens.expires_at, "MangaDex login stored");
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(api: &str, auth: &str) -> MangadexConfig {
        let text = format!(
            "[mangadex]\nclient_id = \"personal-client-1\"\nclient_secret = \"s3cret\"\nusername = \"reader\"\napi_url = \"{api}\"\nauth_url = \"{auth}\"\n"
        );
        crate::config::Config::parse(std::path::Path::new("c.toml"), &text)
            .unwrap()
            .mangadex
            .unwrap()
    }

    #[test]
    fn the_token_endpoint_is_under_auth_url() {
        let c = cfg(
            "https://api.mangadex.org",
            "https://auth.mangadex.org/realms/mangadex/protocol/openid-connect",
        );
        assert_eq!(
            token_url(&c).as_str(),
            "https://auth.mangadex.org/realms/mangadex/protocol/openid-connect/token"
        );
        let c = cfg("http://127.0.0.1:1/", "http://127.0.0.1:1/auth/");
        assert_eq!(token_url(&c).as_str(), "http://127.0.0.1:1/auth/token");
        let form = password_form(&c, "pw");
        assert_eq!(
            form,
            [
                ("grant_type", "password"),
                ("username", "reader"),
                ("password", "pw"),
                ("client_id", "personal-client-1"),
                ("client_secret", "s3cret"),
            ]
        );
    }

    #[test]
    fn keycloak_errors_become_sentences() {
        assert_eq!(
            keycloak_error(
                401,
                br#"{"error":"invalid_grant","error_description":"Invalid user credentials"}"#
            ),
            "MangaDex refused the login: wrong username or password"
        );
        for e in ["unauthorized_client", "invalid_client"] {
            let body = format!(
                r#"{{"error":"{e}","error_description":"Invalid client or Invalid client credentials"}}"#
            );
            let m = keycloak_error(401, body.as_bytes());
            assert!(m.contains("not approved yet or its secret is wrong"), "{m}");
        }
        assert_eq!(
            keycloak_error(
                400,
                br#"{"error":"invalid_grant","error_description":"Account disabled"}"#
            ),
            "MangaDex refused the login: Account disabled"
        );
        assert_eq!(
            keycloak_error(400, br#"{"error":"No such user"}"#),
            "MangaDex refused the login: No such user"
        );
        assert_eq!(
            keycloak_error(
                400,
                br#"{"error":"invalid_request","error_description":"Missing\nparameter:\tusername"}"#
            ),
            "MangaDex refused the login: Missing parameter: username"
        );
        assert!(keycloak_error(502, b"<html>bad gateway</html>").contains("having trouble"));
        assert_eq!(
            keycloak_error(500, br#"{"error":"unknown_error"}"#),
            "MangaDex's login server is having trouble (HTTP 500: unknown_error); try again later"
        );
        assert!(keycloak_error(404, b"<html>nope</html>").contains("auth_url"));
        assert!(keycloak_error(400, b"{}").contains("cannot read"));
    }

    #[test]
    fn the_account_name_comes_from_the_token_when_it_says() {
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let jwt = format!(
            "{}.{}.sig",
            e.encode(br#"{"alg":"RS256"}"#),
            e.encode(br#"{"exp":1,"preferred_username":"Reader42"}"#)
        );
        assert_eq!(token_username(&jwt).as_deref(), Some("Reader42"));
        for junk in ["sessiontoken", "", "a.b.c", "a..c", "a.!!!.c"] {
            assert_eq!(token_username(junk), None, "{junk:?}");
        }
    }
}
