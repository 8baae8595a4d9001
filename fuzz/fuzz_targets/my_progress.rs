//! `GET /anime/{id}?fields=my_list_status` answers (the check before sending a change made
//! offline): never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use malt::providers::mal::parse_my_progress;

fuzz_target!(|data: &[u8]| {
    let _ = parse_my_progress(data);
});
