//! `GET /users/@me/animelist` and `mangalist` bodies: never a panic, and every entry that comes
//! back is sane.
#![no_main]

use libfuzzer_sys::fuzz_target;
use malt::domain::MediaKind;
use malt::providers::mal::parse_list_page;

fuzz_target!(|data: &[u8]| {
    for kind in MediaKind::ALL {
        let Ok(page) = parse_list_page(data, kind) else {
            continue;
        };
        for e in &page.entries {
            assert_eq!(e.kind, kind, "an entry of the other kind: {e:?}");
            assert!(!e.title.is_empty(), "an entry without a title: {e:?}");
            assert!(e.score <= 10, "a score over 10: {e:?}");
            assert_ne!(
                e.total,
                Some(0),
                "0 episodes or chapters must mean unknown: {e:?}"
            );
            assert_ne!(
                e.total_volumes,
                Some(0),
                "0 volumes must mean unknown: {e:?}"
            );
            assert_ne!(e.start_date.as_deref(), Some(""), "{e:?}");
            assert_ne!(e.finish_date.as_deref(), Some(""), "{e:?}");
            if let Some(s) = &e.media.schedule {
                assert_eq!(
                    kind,
                    MediaKind::Anime,
                    "a manga with an airing schedule: {e:?}"
                );
                assert_ne!(s.episodes, Some(0), "{e:?}");
            }
        }
        assert_ne!(page.next.as_deref(), Some(""), "an empty next link");
    }
});
