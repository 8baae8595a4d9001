//! `config.toml` text, `[keys]` included: never a panic, and every error names the file.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use malt::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("/fuzz/config.toml");
    if let Err(e) = Config::parse(path, text) {
        let msg = e.to_string();
        assert!(msg.starts_with("/fuzz/config.toml: "), "{msg}");
        // A newline can only come from the user's own strings (escapes, multi-line strings).
        // Known: those do reach the message (see tests/hostile_input.rs); anything else must not.
        if !text.contains('\\') && !text.contains("\"\"\"") && !text.contains("'''") {
            assert!(!msg.contains('\n'), "a multi-line error: {msg:?}");
        }
    }
});
