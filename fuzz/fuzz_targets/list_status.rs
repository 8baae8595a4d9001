//! `PATCH …/my_list_status` answers: never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use malt::providers::mal::parse_list_status;

fuzz_target!(|data: &[u8]| {
    let _ = parse_list_status(data);
});
