//! `PATCH …/my_list_status` answers, anime and manga, against a few sent changes: never a panic;
//! a count MAL leaves out is the one sent, and without either it is an error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use malt::domain::{MediaKind, Patch, Status};
use malt::providers::mal::parse_list_status;

fuzz_target!(|data: &[u8]| {
    let sent = [
        Patch::default(),
        Patch::progress(7),
        Patch {
            status: Some(Status::Completed),
            progress: Some(12),
            volumes: Some(2),
            score: Some(8),
            repeating: Some(true),
            start_date: Some("2024-01-02".into()),
            finish_date: Some("2024-02-03".into()),
        },
    ];
    for kind in MediaKind::ALL {
        let without = parse_list_status(data, kind, &sent[0]);
        for patch in &sent {
            let Ok(state) = parse_list_status(data, kind, patch) else {
                continue;
            };
            assert!(state.score <= 10, "a score over 10: {state:?}");
            assert_ne!(state.start_date.as_deref(), Some(""), "{state:?}");
            // What MAL said wins over what was sent.
            if let Ok(told) = &without {
                assert_eq!(state.progress, told.progress, "{state:?} / {told:?}");
            }
        }
    }
});
