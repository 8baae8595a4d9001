//! Details answers (`GET /anime/{id}`, `/manga/{id}` with the details fields): never a panic, and
//! what the details pane would show is sane.
#![no_main]

use libfuzzer_sys::fuzz_target;
use malt::domain::MediaKind;
use malt::providers::mal::parse_details;

fuzz_target!(|data: &[u8]| {
    for kind in MediaKind::ALL {
        let Ok(d) = parse_details(data, kind) else {
            continue;
        };
        assert_eq!(d.kind, Some(kind));
        assert!(!d.title.is_empty(), "{d:?}");
        assert_ne!(d.total, Some(0), "{d:?}");
        assert_ne!(d.total_volumes, Some(0), "{d:?}");
        if let Some(alt) = &d.alt_title {
            assert!(!alt.trim().is_empty() && *alt != d.title, "{d:?}");
        }
        if let Some(s) = &d.synopsis {
            assert!(!s.trim().is_empty(), "{d:?}");
        }
        if let Some(s) = &d.schedule {
            assert_eq!(
                kind,
                MediaKind::Anime,
                "a manga with an airing schedule: {d:?}"
            );
            assert_ne!(s.episodes, Some(0), "{d:?}");
        }
        if let Some(mean) = &d.mean {
            assert!(
                mean.parse::<f64>().is_ok_and(|m| m > 0.0 || mean == "0.00"),
                "{mean:?}"
            );
        }
    }
});
