//! `GET /users/@me/animelist` bodies: never a panic, and every entry that comes back is sane.
#![no_main]

use libfuzzer_sys::fuzz_target;
use malt::domain::Status;
use malt::providers::mal::parse_list_page;

fuzz_target!(|data: &[u8]| {
    let wanted = Status::ALL[data.len() % Status::ALL.len()];
    if let Ok(page) = parse_list_page(data, wanted) {
        for e in &page.entries {
            assert!(!e.title.is_empty(), "an entry without a title: {e:?}");
            assert!(e.score <= 10, "a score over 10: {e:?}");
            assert_ne!(e.total, Some(0), "0 episodes must mean unknown: {e:?}");
        }
        assert_ne!(page.next.as_deref(), Some(""), "an empty next link");
    }
});
