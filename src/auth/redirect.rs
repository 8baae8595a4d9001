//! Catching the OAuth redirect: a one-shot HTTP listener on the loopback `redirect_uri`, or a
//! redirect URL (or bare code) pasted by the user.

use std::net::SocketAddr;
use std::time::Duration;

use reqwest::Url;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How a login attempt failed before any token was issued.
#[derive(Debug, thiserror::Error)]
pub enum RedirectError {
    #[error(
        "cannot listen on {addr} for the login redirect: {source} (is another malt --login running? change redirect_uri to another port, and register it for your API client)"
    )]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("the login was cancelled in the browser ({0})")]
    Denied(String),
    #[error("no login arrived within {} minutes; run `malt --login` again", .0.as_secs() / 60)]
    TimedOut(Duration),
    #[error("{0}")]
    BadPaste(String),
}

/// What a login redirect (or its pasted copy) carried: an authorization code to exchange, or
/// (the implicit grant) the access token itself.
#[derive(Clone, PartialEq, Eq)]
pub enum Redirect {
    Code(String),
    Token {
        access_token: String,
        /// Seconds, when the redirect said.
        expires_in: Option<u64>,
    },
}

impl std::fmt::Debug for Redirect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Redirect::Code(_) => f.write_str("Code(<redacted>)"),
            Redirect::Token { expires_in, .. } => f
                .debug_struct("Token")
                .field("access_token", &"<redacted>")
                .field("expires_in", expires_in)
                .finish(),
        }
    }
}

/// What a request to the listener carried.
#[derive(Debug, PartialEq, Eq)]
enum Callback {
    Code(String),
    Denied(String),
    WrongState,
    Nothing,
}

/// Binds the listener before the browser is opened, so the redirect cannot arrive too early.
pub async fn bind(redirect_uri: &Url) -> Result<TcpListener, RedirectError> {
    let host = redirect_uri.host_str().unwrap_or("127.0.0.1");
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = redirect_uri.port_or_known_default().unwrap_or(80);
    let addr = format!("{host}:{port}");
    let candidates: Vec<SocketAddr> = match host {
        "localhost" => vec![SocketAddr::from(([127, 0, 0, 1], port))],
        _ => host
            .parse()
            .map(|ip| vec![SocketAddr::new(ip, port)])
            .unwrap_or_default(),
    };
    let Some(sock) = candidates.into_iter().find(|a| a.ip().is_loopback()) else {
        return Err(RedirectError::Listen {
            addr,
            source: std::io::Error::other("redirect_uri is not a loopback address"),
        });
    };
    TcpListener::bind(sock)
        .await
        .map_err(|source| RedirectError::Listen { addr, source })
}

/// Waits for the browser to arrive with a code for this `state`. Requests for other paths or
/// without a code (a favicon) are answered and ignored; a wrong `state` is refused and the wait
/// goes on; a denial ends the wait.
pub async fn wait_for_code(
    listener: &TcpListener,
    redirect_uri: &Url,
    state: &str,
    give_up_after: Duration,
) -> Result<String, RedirectError> {
    let deadline = tokio::time::Instant::now() + give_up_after;
    loop {
        let accepted = tokio::time::timeout_at(deadline, listener.accept()).await;
        let Ok(accepted) = accepted else {
            return Err(RedirectError::TimedOut(give_up_after));
        };
        let Ok((stream, _)) = accepted else { continue };
        match tokio::time::timeout(
            Duration::from_secs(10),
            serve(stream, redirect_uri.path(), state),
        )
        .await
        {
            Ok(Ok(Callback::Code(code))) => return Ok(code),
            Ok(Ok(Callback::Denied(reason))) => return Err(RedirectError::Denied(reason)),
            Ok(Ok(Callback::WrongState)) => {
                tracing::warn!("login redirect with a wrong state refused");
            }
            _ => {}
        }
    }
}

async fn serve(mut stream: TcpStream, path: &str, state: &str) -> std::io::Result<Callback> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf);
    let target = head
        .lines()
        .next()
        .and_then(|line| {
            let mut parts = line.split_whitespace();
            (parts.next() == Some("GET"))
                .then(|| parts.next())
                .flatten()
        })
        .unwrap_or("");
    let callback = Url::parse("http://127.0.0.1")
        .and_then(|base| base.join(target))
        .ok()
        .filter(|url| url.path() == path)
        .map_or(Callback::Nothing, |url| classify(&url, state));
    let (status, body) = match &callback {
        Callback::Code(_) => (
            "200 OK",
            page(
                "Logged in",
                "malt has your login. You can close this tab and go back to the terminal.",
            ),
        ),
        Callback::Denied(_) => (
            "200 OK",
            page(
                "Login cancelled",
                "The login was cancelled. You can close this tab.",
            ),
        ),
        Callback::WrongState => (
            "400 Bad Request",
            page(
                "Login refused",
                "This login link does not belong to the login malt is waiting for. Start again with malt --login.",
            ),
        ),
        Callback::Nothing => (
            "404 Not Found",
            page("Not found", "malt is waiting for the login redirect."),
        ),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    let _ = stream.shutdown().await;
    Ok(callback)
}

fn page(title: &str, text: &str) -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>malt: {title}</title></head>\
         <body style=\"font-family:sans-serif;max-width:32em;margin:4em auto\"><h1>{title}</h1><p>{text}</p></body></html>"
    )
}

fn classify(url: &Url, state: &str) -> Callback {
    let get = |key: &str| {
        url.query_pairs()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
    };
    let state_ok = get("state").as_deref() == Some(state);
    if let Some(error) = get("error") {
        // A denial without a state cannot come from a forged link that matters: it only ends the wait.
        if state_ok || get("state").is_none() {
            let reason = get("message")
                .or_else(|| get("error_description"))
                .unwrap_or(error);
            return Callback::Denied(reason);
        }
        return Callback::WrongState;
    }
    match get("code") {
        Some(code) if !code.is_empty() && state_ok => Callback::Code(code),
        Some(_) => Callback::WrongState,
        None => Callback::Nothing,
    }
}

/// Reads what the user pasted: the whole redirect URL (whose `state` must match) or the bare code.
pub fn parse_pasted(input: &str, state: &str) -> Result<String, RedirectError> {
    let input = input.trim();
    if input.is_empty() {
        return Err(RedirectError::BadPaste(
            "nothing was pasted; run `malt --login --no-browser` again".into(),
        ));
    }
    // A code is a plain token; anything with these characters is (part of) an address.
    if input.contains(['/', '?', '&', '=']) {
        let url = if input.contains("://") {
            Url::parse(input)
        } else if input.starts_with('/') || input.starts_with('?') {
            Url::parse("http://127.0.0.1").and_then(|b| b.join(input))
        } else if input.contains('/') {
            // An address bar shows `127.0.0.1:53682/callback?…` without the scheme.
            Url::parse(&format!("http://{input}"))
        } else {
            // Only the query: `code=…&state=…`.
            Url::parse(&format!("http://127.0.0.1/?{input}"))
        };
        let url = url.map_err(|_| {
            RedirectError::BadPaste(
                "that is not a URL malt can read; paste the whole address from the browser".into(),
            )
        })?;
        return match classify(&url, state) {
            Callback::Code(code) => Ok(code),
            Callback::Denied(reason) => Err(RedirectError::Denied(reason)),
            Callback::WrongState => Err(RedirectError::BadPaste(
                "that address belongs to another login attempt (its state does not match); use the URL printed above".into(),
            )),
            Callback::Nothing => Err(RedirectError::BadPaste("that address carries no login code".into())),
        };
    }
    if input.chars().any(char::is_whitespace) {
        return Err(RedirectError::BadPaste(
            "paste the redirect address or the code alone".into(),
        ));
    }
    Ok(input.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pasted_url_or_code() {
        assert_eq!(
            parse_pasted("http://127.0.0.1:53682/callback?code=abc&state=s1", "s1").unwrap(),
            "abc"
        );
        assert_eq!(parse_pasted("  abc123 \n", "s1").unwrap(), "abc123");
        assert!(parse_pasted("http://127.0.0.1:53682/callback?code=abc&state=zz", "s1").is_err());
        assert!(matches!(
            parse_pasted(
                "http://127.0.0.1:53682/callback?error=access_denied&state=s1",
                "s1"
            ),
            Err(RedirectError::Denied(_))
        ));
        assert!(parse_pasted("", "s1").is_err());
    }

    async fn get(addr: SocketAddr, target: &str) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn listener_ignores_noise_refuses_wrong_state_and_takes_the_code() {
        let uri = Url::parse("http://127.0.0.1:0/callback").unwrap();
        let listener = bind(&uri).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::spawn(async move {
            let favicon = get(addr, "/favicon.ico").await;
            let wrong = get(addr, "/callback?code=x&state=nope").await;
            let ok = get(addr, "/callback?code=right&state=good").await;
            (favicon, wrong, ok)
        });
        let code = wait_for_code(&listener, &uri, "good", Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(code, "right");
        let (favicon, wrong, ok) = client.await.unwrap();
        assert!(favicon.starts_with("HTTP/1.1 404"));
        assert!(wrong.starts_with("HTTP/1.1 400"));
        assert!(ok.contains("You can close this tab"));
    }

    #[tokio::test]
    async fn denial_ends_the_wait_and_silence_times_out() {
        let uri = Url::parse("http://127.0.0.1:0/callback").unwrap();
        let listener = bind(&uri).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { get(addr, "/callback?error=access_denied&state=s").await });
        let err = wait_for_code(&listener, &uri, "s", Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(err, RedirectError::Denied(_)), "{err}");
        let err = wait_for_code(&listener, &uri, "s", Duration::from_millis(50))
            .await
            .unwrap_err();
        assert!(matches!(err, RedirectError::TimedOut(_)));
    }
}
