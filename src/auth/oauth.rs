//! The OAuth2 token endpoint: form-encoded POSTs and the errors it answers with.

use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;

use super::TokenSet;

/// What the token endpoint said, or why it could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// The server answered with an OAuth error (`error`, `message`/`error_description`, `hint`).
    #[error("{}", describe_refusal(.error, .message.as_deref(), .hint.as_deref(), *.status))]
    Refused {
        status: u16,
        error: String,
        message: Option<String>,
        hint: Option<String>,
    },
    #[error("cannot reach the login server: {0}")]
    Network(String),
    #[error("the login server sent an answer malt cannot read ({0})")]
    BadResponse(String),
    #[error("{0}")]
    Local(String),
}

fn describe_refusal(error: &str, message: Option<&str>, hint: Option<&str>, status: u16) -> String {
    let one_line = crate::providers::one_line;
    let (error, message, hint) = (one_line(error), message.map(one_line), hint.map(one_line));
    let (error, message, hint) = (error.as_str(), message.as_deref(), hint.as_deref());
    let what = match error {
        "invalid_client" => {
            "the client_id or client_secret is not accepted: check [mal] in your config against the API client on myanimelist.net".to_string()
        }
        "invalid_grant" if hint.is_some_and(|h| h.contains("code_verifier")) => {
            "the login code did not match this login attempt; run the login again".to_string()
        }
        "invalid_grant" => {
            "the login code was refused: it may have expired, been used already, or the redirect_uri in your config differs from the one registered for the API client".to_string()
        }
        "invalid_request" if message.is_some_and(|m| m.contains("refresh token")) => {
            "the saved session is no longer valid".to_string()
        }
        "unsupported_grant_type" => "the login server does not support this kind of login".to_string(),
        _ => match message {
            Some(m) if !m.is_empty() => m.trim_end_matches('.').to_string(),
            _ => format!("{error} (HTTP {status})"),
        },
    };
    match hint {
        Some(h) if !h.is_empty() => format!("{what} ({})", h.trim_end_matches('.')),
        _ => what,
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
    #[serde(alias = "error_description")]
    message: Option<String>,
    hint: Option<String>,
}

#[derive(Deserialize)]
struct TokenBody {
    access_token: String,
    /// Read loosely: servers differ in how they type these, and a token is usable either way.
    refresh_token: Option<serde_json::Value>,
    expires_in: Option<serde_json::Value>,
}

/// A client of one OAuth2 token endpoint.
#[derive(Clone)]
pub struct OAuthClient {
    http: crate::providers::Http,
    token_url: Url,
    client_id: String,
    client_secret: Option<String>,
}

impl OAuthClient {
    pub fn new(
        http: crate::providers::Http,
        token_url: Url,
        client_id: String,
        client_secret: Option<String>,
    ) -> Self {
        OAuthClient {
            http,
            token_url,
            client_id,
            client_secret,
        }
    }

    /// Trades an authorization code (with its PKCE verifier) for tokens.
    pub async fn exchange_code(
        &self,
        code: &str,
        verifier: &str,
        redirect_uri: &str,
    ) -> Result<TokenSet, OAuthError> {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", verifier),
            ("redirect_uri", redirect_uri),
        ];
        self.post(&form, None).await
    }

    /// Spends a refresh token for a new token set. Servers that do not rotate the refresh token
    /// leave the old one in place.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenSet, OAuthError> {
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ];
        self.post(&form, Some(refresh_token)).await
    }

    async fn post(
        &self,
        fields: &[(&str, &str)],
        old_refresh: Option<&str>,
    ) -> Result<TokenSet, OAuthError> {
        let mut form: Vec<(&str, &str)> = vec![("client_id", self.client_id.as_str())];
        if let Some(secret) = &self.client_secret {
            form.push(("client_secret", secret.as_str()));
        }
        form.extend_from_slice(fields);
        let http = self.http.client().map_err(OAuthError::Local)?;
        let response = http
            .post(self.token_url.clone())
            .form(&form)
            .send()
            .await
            .map_err(|e| OAuthError::Network(crate::providers::describe_transport(&e)))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| OAuthError::Network(crate::providers::describe_transport(&e)))?;
        parse_token_response(status, &body, old_refresh)
    }
}

/// Reads the token endpoint's answer: a token set, or the OAuth error it carries. A refresh answer
/// without a new refresh token keeps `old_refresh`.
pub fn parse_token_response(
    status: u16,
    body: &[u8],
    old_refresh: Option<&str>,
) -> Result<TokenSet, OAuthError> {
    let html = crate::providers::looks_like_html(body);
    if !(200..300).contains(&status) {
        return Err(match serde_json::from_slice::<ErrorBody>(body) {
            Ok(e) => OAuthError::Refused {
                status,
                error: e.error,
                message: e.message,
                hint: e.hint,
            },
            Err(_) => OAuthError::BadResponse(format!(
                "HTTP {status}{}",
                if html { ", an HTML page" } else { "" }
            )),
        });
    }
    let token: TokenBody = serde_json::from_slice(body).map_err(|_| {
        OAuthError::BadResponse(if html {
            "an HTML page instead of tokens".into()
        } else {
            "no access_token in the answer".into()
        })
    })?;
    if token.access_token.is_empty() {
        return Err(OAuthError::BadResponse("an empty access_token".into()));
    }
    let new_refresh = token
        .refresh_token
        .as_ref()
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty());
    let refresh_token = match (new_refresh, old_refresh) {
        (Some(new), _) => new.to_string(),
        (None, Some(old)) => old.to_string(),
        (None, None) => String::new(),
    };
    // Seconds as a number or a string. Clamp what a server may claim: at most ten years, and a
    // missing, zero or unreadable lifetime means an hour.
    let seconds = token.expires_in.as_ref().and_then(|v| match v {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    });
    let lifetime = match seconds {
        Some(secs) if secs >= 1.0 => secs.min(10.0 * 365.0 * 24.0 * 3600.0) as u64,
        _ => 3600,
    };
    Ok(TokenSet::new(
        token.access_token,
        refresh_token,
        Duration::from_secs(lifetime),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(body: &str) -> String {
        let e: ErrorBody = serde_json::from_str(body).unwrap();
        OAuthError::Refused {
            status: 400,
            error: e.error,
            message: e.message,
            hint: e.hint,
        }
        .to_string()
    }

    #[test]
    fn mal_error_bodies_read_well() {
        let verifier = refusal(include_str!(
            "../../tests/fixtures/mal/error-token-invalid_grant-code_verifier.json"
        ));
        assert!(
            verifier.contains("did not match this login attempt"),
            "{verifier}"
        );
        let expired = refusal(include_str!(
            "../../tests/fixtures/mal/error-token-refresh-expired.json"
        ));
        assert_eq!(
            expired,
            "the saved session is no longer valid (Token has expired)"
        );
        let client =
            refusal(r#"{"error":"invalid_client","message":"Client authentication failed"}"#);
        assert!(client.contains("client_id or client_secret"), "{client}");
        let keycloak =
            refusal(r#"{"error":"invalid_grant","error_description":"Invalid user credentials"}"#);
        assert!(keycloak.contains("refused"), "{keycloak}");
    }
}
