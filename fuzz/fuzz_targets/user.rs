//! `GET /users/@me` answers: never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use malt::providers::mal::parse_user;

fuzz_target!(|data: &[u8]| {
    let _ = parse_user(data);
});
