//! Error bodies of the API (`error_detail`) and of the token endpoint (a non-2xx
//! `parse_token_response`): never a panic, and the detail has one of its three shapes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use malt::auth::oauth::parse_token_response;
use malt::providers::mal::error_detail;

fuzz_target!(|data: &[u8]| {
    let detail = error_detail(data);
    assert!(
        detail.is_empty() || detail == ", an HTML page" || detail.starts_with(": "),
        "unexpected detail {detail:?}"
    );
    for status in [400, 401, 403, 500] {
        let err = parse_token_response(status, data, Some("old-refresh"))
            .expect_err("a non-2xx answer must be an error");
        let _ = err.to_string();
    }
});
