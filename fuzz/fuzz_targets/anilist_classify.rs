//! What an AniList answer amounts to (`classify`) at several statuses, and the small readers
//! (`parse_viewer`, `parse_entry_id`, `parse_deleted`): never a panic; data only at 2xx; a 429
//! is a slow-down with the wait given (or an expired session when the body says so); a body that
//! says "Invalid token" is an expired session at 200 as at 400; every error one line.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use malt::providers::ProviderError;
use malt::providers::anilist::query::{
    Outcome, classify, parse_deleted, parse_entry_id, parse_viewer,
};

fn check_error(e: &ProviderError) {
    let text = e.to_string();
    assert!(!text.trim().is_empty(), "an empty error: {e:?}");
    assert!(
        !text.contains([
            '\n', '\r', '\u{0b}', '\u{0c}', '\u{85}', '\u{2028}', '\u{2029}'
        ]),
        "an error of more than one line: {text:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let wait = Some(Duration::from_secs(42));
    let mut expired_at = Vec::new();
    for status in [200u16, 201, 400, 401, 404, 429, 500, 503] {
        for wait in [None, wait] {
            match classify(status, wait, data) {
                Outcome::Ok => assert!((200..300).contains(&status), "data at HTTP {status}"),
                Outcome::NotFound => {}
                Outcome::Failed(e) => {
                    check_error(&e);
                    match &e {
                        ProviderError::Throttled { wait: w, .. } => assert_eq!(*w, wait),
                        ProviderError::SessionExpired => expired_at.push(status),
                        other => assert_ne!(status, 429, "a 429 read as {other:?}"),
                    }
                }
            }
        }
    }
    // The token is refused at 400 (AniList's status for it): it is refused at 500 too.
    if expired_at.contains(&400) {
        assert!(expired_at.contains(&500), "{expired_at:?}");
    }
    match parse_viewer(data) {
        Ok(v) => assert!(!v.name.trim().is_empty(), "{v:?}"),
        Err(e) => check_error(&e),
    }
    if let Err(e) = parse_entry_id(data) {
        check_error(&e);
    }
    if let Err(e) = parse_deleted(data) {
        check_error(&e);
    }
});
