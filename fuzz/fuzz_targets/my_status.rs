//! `GET /{anime|manga}/{id}?fields=my_list_status` answers (the check before sending a change made
//! offline): never a panic, and a state that is read is sane.
#![no_main]

use libfuzzer_sys::fuzz_target;
use malt::domain::MediaKind;
use malt::providers::mal::parse_my_status;

fuzz_target!(|data: &[u8]| {
    for kind in MediaKind::ALL {
        if let Ok(Some(state)) = parse_my_status(data, kind) {
            assert!(state.score <= 10, "a score over 10: {state:?}");
            assert_ne!(state.start_date.as_deref(), Some(""), "{state:?}");
            assert_ne!(state.finish_date.as_deref(), Some(""), "{state:?}");
        }
    }
});
