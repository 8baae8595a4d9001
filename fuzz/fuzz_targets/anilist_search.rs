//! AniList search answers (`Page.media`), anime and manga: never a panic; a result is a new
//! planned entry of the kind asked with a title, no total of 0, no airing for a manga, and
//! AniList's score as a positive percentage.
#![no_main]

use libfuzzer_sys::fuzz_target;
use malt::domain::{ListEntry, MediaKind, Status};
use malt::providers::anilist::query::parse_search;

fuzz_target!(|data: &[u8]| {
    for kind in MediaKind::ALL {
        let found = match parse_search(data, kind) {
            Ok(found) => found,
            Err(e) => {
                let text = e.to_string();
                assert!(
                    !text.trim().is_empty() && !text.contains(['\n', '\r']),
                    "{text:?}"
                );
                continue;
            }
        };
        for f in &found {
            let e = &f.entry;
            assert_eq!(e.kind, kind, "{f:?}");
            assert_eq!(
                e.state(),
                ListEntry::new(0, kind, "x", Status::Planning).state(),
                "a search result is a new planned entry: {f:?}"
            );
            assert!(!e.title.trim().is_empty(), "{f:?}");
            assert_ne!(e.total, Some(0), "{f:?}");
            assert_ne!(e.total_volumes, Some(0), "{f:?}");
            if kind == MediaKind::Anime {
                assert_eq!(e.total_volumes, None, "{f:?}");
            }
            if let Some(s) = &e.media.schedule {
                assert_eq!(kind, MediaKind::Anime, "a manga with airing: {f:?}");
                assert_ne!(s.episodes, Some(0), "{f:?}");
            }
            if let Some(mean) = &f.mean {
                let n = mean.strip_suffix('%').expect("a percentage");
                assert!(n.parse::<u32>().is_ok_and(|n| n > 0), "{mean:?}");
            }
        }
    }
});
