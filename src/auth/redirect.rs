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
    Got(Redirect),
    Denied(String),
    WrongState,
    /// The redirect address without a query: an implicit grant's token is in the fragment, which
    /// only the browser sees; the page sent back forwards it.
    Bare,
    Nothing,
}

/// How strictly the `state` a redirect carries is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateCheck {
    /// The redirect must carry our `state` (MyAnimeList always echoes it).
    Required,
    /// A redirect without `state` is taken (services that do not echo it); a wrong one is refused.
    IfPresent,
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
    loop {
        match wait_for_redirect(
            listener,
            redirect_uri,
            state,
            StateCheck::Required,
            give_up_after,
        )
        .await?
        {
            Redirect::Code(code) => return Ok(code),
            // A code was asked for; a token in its place is not ours.
            Redirect::Token { .. } => tracing::warn!("login redirect without a code ignored"),
        }
    }
}

/// Waits for the browser to arrive with a code or (implicit grant) an access token. A token in
/// the address's fragment is forwarded by a small script in the page served for the bare address.
pub async fn wait_for_redirect(
    listener: &TcpListener,
    redirect_uri: &Url,
    state: &str,
    check: StateCheck,
    give_up_after: Duration,
) -> Result<Redirect, RedirectError> {
    let deadline = tokio::time::Instant::now() + give_up_after;
    loop {
        let accepted = tokio::time::timeout_at(deadline, listener.accept()).await;
        let Ok(accepted) = accepted else {
            return Err(RedirectError::TimedOut(give_up_after));
        };
        let Ok((stream, _)) = accepted else { continue };
        match tokio::time::timeout(
            Duration::from_secs(10),
            serve(stream, redirect_uri.path(), state, check),
        )
        .await
        {
            Ok(Ok(Callback::Got(got))) => return Ok(got),
            Ok(Ok(Callback::Denied(reason))) => return Err(RedirectError::Denied(reason)),
            Ok(Ok(Callback::WrongState)) => {
                tracing::warn!("login redirect with a wrong state refused");
            }
            _ => {}
        }
    }
}

async fn serve(
    mut stream: TcpStream,
    path: &str,
    state: &str,
    check: StateCheck,
) -> std::io::Result<Callback> {
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
        .map_or(Callback::Nothing, |url| match url.query() {
            None | Some("") => Callback::Bare,
            Some(_) => classify(&url, state, check),
        });
    let (status, body) = match &callback {
        Callback::Got(_) => (
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
        Callback::Bare => ("200 OK", FORWARD_FRAGMENT.to_string()),
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

/// The page served for the bare redirect address: an implicit grant puts the token in the
/// fragment (`#access_token=…`), which browsers never send; this script sends it back as a query.
const FORWARD_FRAGMENT: &str = "<!doctype html><html><head><meta charset=\"utf-8\"><title>malt: logging in</title></head>\
<body style=\"font-family:sans-serif;max-width:32em;margin:4em auto\"><h1>Logging in…</h1>\
<p id=\"m\">Passing the login to malt.</p>\
<noscript><p>This page needs JavaScript to hand the login to malt. Or copy this page's whole address and run <code>malt --login anilist --no-browser</code> to paste it.</p></noscript>\
<script>var h=window.location.hash.substring(1);\
if(h){window.location.replace(window.location.pathname+\"?\"+h);}\
else{document.getElementById(\"m\").textContent=\"malt is waiting for the login redirect.\";}</script></body></html>";

fn classify(url: &Url, state: &str, check: StateCheck) -> Callback {
    let get = |key: &str| {
        url.query_pairs()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
    };
    let states: Vec<String> = url
        .query_pairs()
        .filter(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .collect();
    // Every state given must be ours.
    let state_ok = if states.is_empty() {
        check == StateCheck::IfPresent
    } else {
        states.iter().all(|s| s == state)
    };
    if let Some(error) = get("error") {
        // A denial without a state cannot come from a forged link that matters: it only ends the wait.
        if state_ok || states.is_empty() {
            let reason = get("message")
                .or_else(|| get("error_description"))
                .unwrap_or(error);
            return Callback::Denied(crate::providers::one_line(
                &reason.replace(char::is_control, " "),
            ));
        }
        return Callback::WrongState;
    }
    if let Some(access_token) = get("access_token") {
        if access_token.is_empty() || !state_ok {
            return Callback::WrongState;
        }
        let expires_in = get("expires_in").and_then(|v| v.trim().parse().ok());
        return Callback::Got(Redirect::Token {
            access_token,
            expires_in,
        });
    }
    match get("code") {
        Some(code) if !code.is_empty() && state_ok => Callback::Got(Redirect::Code(code)),
        Some(_) => Callback::WrongState,
        None => Callback::Nothing,
    }
}

/// Reads what the user pasted: the whole redirect URL (whose `state` must match) or the bare code.
pub fn parse_pasted(input: &str, state: &str) -> Result<String, RedirectError> {
    match parse_pasted_redirect(input, state, StateCheck::Required, Bare::Code)? {
        Redirect::Code(code) => Ok(code),
        Redirect::Token { .. } => Err(RedirectError::BadPaste(
            "that address carries a token, not a login code; paste the address the browser went to after you allowed access".into(),
        )),
    }
}

/// What a bare pasted word (no address around it) is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bare {
    Code,
    /// The access token itself (an implicit grant, or a service's "copy this token" page).
    Token,
}

/// Reads what the user pasted: a redirect address with a code (`?code=…`) or a token
/// (`#access_token=…`, as an implicit grant sends it), that part alone, or the bare code/token.
pub fn parse_pasted_redirect(
    input: &str,
    state: &str,
    check: StateCheck,
    bare: Bare,
) -> Result<Redirect, RedirectError> {
    let input = input.trim();
    if input.is_empty() {
        return Err(RedirectError::BadPaste(
            "nothing was pasted; run `malt --login` with --no-browser again".into(),
        ));
    }
    // A code or token is a plain word; anything with these characters is (part of) an address.
    if input.contains(['/', '?', '&', '=', '#']) {
        // The fragment of an implicit grant reads like a query.
        let input = match input.split_once('#') {
            Some((before, fragment)) if fragment.contains('=') => match before.split_once('?') {
                // The query stays: a `state` in it is checked too.
                Some((base, query)) if !query.is_empty() => format!("{base}?{query}&{fragment}"),
                _ => format!("{}?{fragment}", before.split('?').next().unwrap_or(before)),
            },
            _ => input.to_string(),
        };
        let input = input.as_str();
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
        return match classify(&url, state, check) {
            Callback::Got(got) => Ok(got),
            Callback::Denied(reason) => Err(RedirectError::Denied(reason)),
            Callback::WrongState => Err(RedirectError::BadPaste(
                "that address belongs to another login attempt (its state does not match); use the URL printed above".into(),
            )),
            Callback::Bare | Callback::Nothing => Err(RedirectError::BadPaste("that address carries no login code or token".into())),
        };
    }
    if input.chars().any(char::is_whitespace) {
        return Err(RedirectError::BadPaste(
            "paste the redirect address, or the code or token alone".into(),
        ));
    }
    Ok(match bare {
        Bare::Code => Redirect::Code(input.to_string()),
        Bare::Token => Redirect::Token {
            access_token: input.to_string(),
            expires_in: None,
        },
    })
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

    #[test]
    fn pasted_implicit_grant_address_or_token() {
        let token = |r: Redirect| match r {
            Redirect::Token {
                access_token,
                expires_in,
            } => (access_token, expires_in),
            other => panic!("{other:?}"),
        };
        let got = parse_pasted_redirect(
            "http://127.0.0.1:53682/callback#access_token=eyJ.a.b&token_type=Bearer&expires_in=31536000",
            "s1",
            StateCheck::IfPresent,
            Bare::Token,
        )
        .unwrap();
        assert_eq!(token(got), ("eyJ.a.b".into(), Some(31_536_000)));
        let got = parse_pasted_redirect(
            "access_token=tok&state=s1",
            "s1",
            StateCheck::IfPresent,
            Bare::Token,
        )
        .unwrap();
        assert_eq!(token(got).0, "tok");
        let got =
            parse_pasted_redirect(" eyJ.x.y \n", "s1", StateCheck::IfPresent, Bare::Token).unwrap();
        assert_eq!(token(got).0, "eyJ.x.y");
        // A wrong state is refused even where a missing one is accepted.
        assert!(
            parse_pasted_redirect(
                "/callback#access_token=t&state=zz",
                "s1",
                StateCheck::IfPresent,
                Bare::Token
            )
            .is_err()
        );
        assert!(
            parse_pasted_redirect("/callback?code=c", "s1", StateCheck::Required, Bare::Code)
                .is_err()
        );
        assert_eq!(
            parse_pasted_redirect("/callback?code=c", "s1", StateCheck::IfPresent, Bare::Code)
                .unwrap(),
            Redirect::Code("c".into())
        );
        // MAL's paste takes codes only.
        assert!(parse_pasted("/callback?access_token=t&state=s1", "s1").is_err());
        // Debug output never shows the secret.
        let shown = format!(
            "{:?}",
            Redirect::Token {
                access_token: "secret-tok".into(),
                expires_in: None
            }
        );
        assert!(!shown.contains("secret-tok"), "{shown}");
    }

    #[tokio::test]
    async fn listener_forwards_an_implicit_grant_fragment() {
        let uri = Url::parse("http://127.0.0.1:0/callback").unwrap();
        let listener = bind(&uri).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::spawn(async move {
            // The browser first loads the bare address (the fragment stays in the browser)…
            let bare = get(addr, "/callback").await;
            // …and the page's script sends the fragment back as a query.
            let ok = get(
                addr,
                "/callback?access_token=tok&token_type=Bearer&expires_in=60",
            )
            .await;
            (bare, ok)
        });
        let got = wait_for_redirect(
            &listener,
            &uri,
            "s",
            StateCheck::IfPresent,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        assert_eq!(
            got,
            Redirect::Token {
                access_token: "tok".into(),
                expires_in: Some(60)
            }
        );
        let (bare, ok) = client.await.unwrap();
        assert!(bare.starts_with("HTTP/1.1 200"), "{bare}");
        assert!(bare.contains("location.hash"), "{bare}");
        assert!(ok.contains("You can close this tab"));
    }
}
