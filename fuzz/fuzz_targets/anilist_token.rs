//! An AniList token's expiry (`token_expiry`, `expires_at`), the token endpoint's answer
//! (`read_token_answer`) and what a user pastes after `malt --login anilist --no-browser`
//! (`parse_pasted_redirect`): never a panic; an expiry is positive and is a JWT's own `exp`; a
//! token answer gives the token only at 2xx and an error never repeats it; a pasted address gives
//! a code or token only with this login's state (or none, where that is allowed).
#![no_main]

use libfuzzer_sys::fuzz_target;
use malt::auth::redirect::{Bare, Redirect, RedirectError, StateCheck, parse_pasted_redirect};
use malt::providers::anilist::{expires_at, read_token_answer, token_expiry};
use serde_json::Value;
use url::Url;

const STATE: &str = "s7XyZ";

/// Known (see `a_wrong_state_in_the_query_refuses_a_fragment_token` in
/// `tests/anilist_hostile.rs`): a fragment with `=` replaces the query, state included. Set to
/// false once `parse_pasted_redirect` keeps the query.
const KNOWN_QUERY_STATE_DROPPED: bool = true;

/// Base64url without padding (the fuzz crate has no base64 dependency).
fn b64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(ABC[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// The address malt reads a paste as (`parse_pasted_redirect`'s own steps), and the query the
/// fragment replaced.
fn address(t: &str) -> Option<(Url, String)> {
    let (rebuilt, dropped) = match t.split_once('#') {
        Some((before, fragment)) if fragment.contains('=') => {
            let (base, query) = before.split_once('?').unwrap_or((before, ""));
            (format!("{base}?{fragment}"), query.to_string())
        }
        _ => (t.to_string(), String::new()),
    };
    let t = rebuilt.as_str();
    let url = if t.contains("://") {
        Url::parse(t).ok()?
    } else if t.starts_with('/') || t.starts_with('?') {
        Url::parse("http://127.0.0.1").ok()?.join(t).ok()?
    } else if t.contains('/') {
        Url::parse(&format!("http://{t}")).ok()?
    } else {
        Url::parse(&format!("http://127.0.0.1/?{t}")).ok()?
    };
    Some((url, dropped))
}

/// The `state` values of a pasted address, in the order malt meets them.
fn states(t: &str) -> Option<Vec<String>> {
    let read = |s: &str| {
        url::form_urlencoded::parse(s.as_bytes())
            .filter(|(k, _)| k == "state")
            .map(|(_, v)| v.into_owned())
            .collect::<Vec<_>>()
    };
    let (url, dropped) = address(t)?;
    let mut states = read(url.query().unwrap_or(""));
    if !KNOWN_QUERY_STATE_DROPPED {
        states.extend(read(&dropped));
    }
    Some(states)
}

/// The same body with the access token swapped for another of the same length.
fn swapped(o: &serde_json::Map<String, Value>, token: &str) -> Vec<u8> {
    let other: String = token
        .chars()
        .map(|c| if c == 'Q' { 'Z' } else { 'Q' })
        .collect();
    let mut o = o.clone();
    o.insert("access_token".into(), Value::String(other));
    serde_json::to_vec(&o).unwrap()
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // Expiry: of anything, and of the input as a JWT's payload.
    if let Some(t) = token_expiry(&text) {
        assert!(t > 0);
    }
    let _ = expires_at(&text, Some(u64::MAX), i64::MAX);
    let jwt = format!("e30.{}.c2ln", b64(data));
    let got = token_expiry(&jwt);
    if let Some(t) = got {
        assert!(t > 0);
    }
    if let Ok(Value::Object(claims)) = serde_json::from_slice::<Value>(data) {
        if let Some(exp) = claims.get("exp").and_then(Value::as_i64).filter(|e| *e > 0) {
            assert_eq!(got, Some(exp), "{jwt}");
        }
    }
    // The token endpoint's answer.
    for status in [200u16, 400, 401, 500] {
        match read_token_answer(status, data) {
            Ok((token, _)) => {
                assert!((200..300).contains(&status));
                assert!(!token.is_empty() && token.trim() == token, "{token:?}");
            }
            Err(e) => {
                assert!(!e.contains(['\n', '\r']), "{e:?}");
                // A token that shows in the error, and not in that of the same body with
                // another token, came from the body's access_token.
                let Ok(Value::Object(o)) = serde_json::from_slice::<Value>(data) else {
                    continue;
                };
                let Some(Value::String(token)) = o.get("access_token") else {
                    continue;
                };
                let token = token.trim();
                if token.chars().count() >= 8 && e.contains(token) {
                    let other = read_token_answer(status, &swapped(&o, token));
                    assert!(
                        other.is_err_and(|e| e.contains(token)),
                        "the access token in the error: {e}"
                    );
                }
            }
        }
    }
    // A pasted login.
    for check in [StateCheck::Required, StateCheck::IfPresent] {
        for bare in [Bare::Code, Bare::Token] {
            let got = match parse_pasted_redirect(&text, STATE, check, bare) {
                Ok(got) => got,
                Err(RedirectError::Denied(_)) => continue,
                Err(e) => {
                    let e = e.to_string();
                    assert!(!e.contains(['\n', '\r']), "{e:?}");
                    continue;
                }
            };
            let secret = match &got {
                Redirect::Code(c) => c,
                Redirect::Token { access_token, .. } => access_token,
            };
            assert!(!secret.is_empty(), "{text:?}");
            let t = text.trim();
            if !t.contains(['/', '?', '&', '=', '#']) {
                assert_eq!(secret, t, "a bare code or token is the trimmed input");
                assert_eq!(matches!(got, Redirect::Token { .. }), bare == Bare::Token);
                continue;
            }
            let states = states(t).expect("a login from an address malt cannot read");
            match states.first() {
                Some(s) => assert_eq!(s, STATE, "a login with another state: {text:?}"),
                None => assert_eq!(
                    check,
                    StateCheck::IfPresent,
                    "a login without state: {text:?}"
                ),
            }
        }
    }
});
