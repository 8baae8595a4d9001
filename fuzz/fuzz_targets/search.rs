//! Search answers (`GET /anime?q=`, `/manga?q=`) and the query typed into search: never a panic;
//! a result is a sane planned entry; a query is 3 to 64 characters of what was typed, trimmed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use malt::domain::{MediaKind, Status};
use malt::providers::mal::{parse_search, search_query};

fuzz_target!(|data: &[u8]| {
    for kind in MediaKind::ALL {
        let Ok(found) = parse_search(data, kind) else {
            continue;
        };
        for f in &found {
            let e = &f.entry;
            assert_eq!(e.kind, kind, "{f:?}");
            assert_eq!(e.status, Status::Planning, "{f:?}");
            assert_eq!((e.progress, e.score), (0, 0), "{f:?}");
            assert!(!e.title.is_empty(), "{f:?}");
            assert_ne!(e.total, Some(0), "{f:?}");
            assert_ne!(e.total_volumes, Some(0), "{f:?}");
            if let Some(mean) = &f.mean {
                let (whole, decimals) = mean.split_once('.').expect("a mean with decimals");
                assert!(
                    whole.bytes().all(|b| b.is_ascii_digit()) && !whole.is_empty(),
                    "{mean:?}"
                );
                assert_eq!(decimals.len(), 2, "{mean:?}");
            }
            if e.media.schedule.is_some() {
                assert_eq!(kind, MediaKind::Anime, "{f:?}");
            }
        }
    }
    let typed = String::from_utf8_lossy(data);
    if let Some(q) = search_query(&typed) {
        assert!((3..=64).contains(&q.chars().count()), "{q:?}");
        assert_eq!(q.trim(), q, "{q:?}");
        assert!(typed.trim().starts_with(&q), "{typed:?} → {q:?}");
        assert_eq!(search_query(&q).as_deref(), Some(q.as_str()));
    }
});
