//! Token endpoint answers: never a panic, and an error never repeats the access or refresh token
//! that was in the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use malt::auth::oauth::parse_token_response;
use serde_json::Value;

/// The status comes from the length, so the raw fixtures work as seeds; every body is also tried
/// as a success and as a refusal.
fn statuses(len: usize) -> [u16; 3] {
    const ODD: [u16; 8] = [0, 100, 204, 299, 300, 302, 429, 999];
    [200, 400, ODD[len % ODD.len()]]
}

fuzz_target!(|data: &[u8]| {
    for status in statuses(data.len()) {
        match parse_token_response(status, data, None) {
            Ok(t) => assert!(!t.access_token.is_empty()),
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
    // Secrets: the same body with each token replaced by another string of the same length.
    // A token that shows in the error of the first and not of the second came from the body.
    let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    for field in ["access_token", "refresh_token"] {
        let Some(Value::String(secret)) = obj.get(field) else {
            continue;
        };
        if secret.chars().count() < 8 {
            continue;
        }
        let other: String = secret
            .chars()
            .map(|c| if c == 'Q' { 'Z' } else { 'Q' })
            .collect();
        let mut swapped = obj.clone();
        swapped.insert(field.to_string(), Value::String(other));
        let a = serde_json::to_vec(&obj).unwrap();
        let b = serde_json::to_vec(&swapped).unwrap();
        for status in statuses(data.len()) {
            let (Err(ea), Err(eb)) = (
                parse_token_response(status, &a, Some("old-refresh-token")),
                parse_token_response(status, &b, Some("old-refresh-token")),
            ) else {
                continue;
            };
            let (ea, eb) = (ea.to_string(), eb.to_string());
            assert!(
                !ea.contains(secret.as_str()) || eb.contains(secret.as_str()),
                "{field} leaked into the error for HTTP {status}: {ea}"
            );
        }
    }
});
