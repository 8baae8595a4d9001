//! What a user pastes after `malt --login --no-browser`: never a panic, a code is never empty, a
//! bare code never has spaces, and a redirect URL gives its code only with the right state.
#![no_main]

use libfuzzer_sys::fuzz_target;
use malt::auth::redirect::parse_pasted;
use url::Url;

const STATE: &str = "s7XyZ";

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(code) = parse_pasted(input, STATE) {
        assert!(!code.is_empty());
        let t = input.trim();
        if t.contains("://") || t.starts_with('/') || t.starts_with('?') {
            let url = Url::parse(t)
                .or_else(|_| Url::parse("http://127.0.0.1").and_then(|b| b.join(t)))
                .expect("a code came from an address that does not parse");
            let state = url
                .query_pairs()
                .find(|(k, _)| k == "state")
                .map(|(_, v)| v);
            assert_eq!(
                state.as_deref(),
                Some(STATE),
                "a code without the right state: {input:?}"
            );
        } else {
            assert_eq!(code, t, "a bare code is the trimmed input");
            assert!(!code.chars().any(char::is_whitespace), "{code:?}");
        }
    }
});
