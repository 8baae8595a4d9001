//! AniList list answers (`MediaListCollection`) and the answers holding one entry (`MediaList`,
//! `SaveMediaListEntry`), anime and manga, in every score format: never a panic; each work once,
//! of the kind asked, with a title, a score within the format, no total of 0, no airing for a
//! manga, no schedule for a finished show, dates `YYYY[-MM[-DD]]`; every error one line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use malt::domain::airing::AiringState;
use malt::domain::{ListState, MediaKind, ScoreFormat};
use malt::providers::ProviderError;
use malt::providers::anilist::query::{parse_collection, parse_current, parse_saved};

/// `YYYY`, `YYYY-MM` or `YYYY-MM-DD`, every part in range.
fn date_ok(date: &Option<String>) -> bool {
    let Some(d) = date else { return true };
    let parts: Vec<&str> = d.split('-').collect();
    let number = |s: &str, len: usize, lo: u32, hi: u32| {
        s.len() == len
            && s.bytes().all(|b| b.is_ascii_digit())
            && s.parse::<u32>().is_ok_and(|n| (lo..=hi).contains(&n))
    };
    match parts.as_slice() {
        [y] => number(y, 4, 1, 9999),
        [y, m] => number(y, 4, 1, 9999) && number(m, 2, 1, 12),
        [y, m, d] => number(y, 4, 1, 9999) && number(m, 2, 1, 12) && number(d, 2, 1, 31),
        _ => false,
    }
}

fn check_state(s: &ListState, format: ScoreFormat) {
    assert!(s.score <= format.max(), "{format:?}: {s:?}");
    assert!(date_ok(&s.start_date) && date_ok(&s.finish_date), "{s:?}");
    if let Some(t) = &s.updated_at {
        assert!(t.parse::<jiff_free::Stamp>().is_ok(), "{s:?}");
    }
}

/// An RFC 3339 time as malt writes it (`2024-01-02T03:04:05Z`), checked without jiff.
mod jiff_free {
    pub struct Stamp;
    impl std::str::FromStr for Stamp {
        type Err = ();
        fn from_str(s: &str) -> Result<Stamp, ()> {
            let ok = s.len() >= 20
                && s.ends_with('Z')
                && s.as_bytes()[4] == b'-'
                && s.as_bytes()[10] == b'T'
                && s.bytes().filter(|b| b.is_ascii_digit()).count() >= 14;
            if ok { Ok(Stamp) } else { Err(()) }
        }
    }
}

fn check_error(e: &ProviderError) {
    let text = e.to_string();
    assert!(!text.trim().is_empty(), "an empty error: {e:?}");
    assert!(
        !text.contains([
            '\n', '\r', '\u{0b}', '\u{0c}', '\u{85}', '\u{2028}', '\u{2029}'
        ]),
        "an error of more than one line: {text:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    for (kind, format) in [
        (MediaKind::Anime, ScoreFormat::Point100),
        (MediaKind::Manga, ScoreFormat::Point10Decimal),
        (MediaKind::Anime, ScoreFormat::Point10),
        (MediaKind::Manga, ScoreFormat::Point5),
        (MediaKind::Anime, ScoreFormat::Point3),
    ] {
        match parse_collection(data, kind, format) {
            Ok(c) => {
                let mut ids = std::collections::HashSet::new();
                for e in &c.entries {
                    assert!(ids.insert(e.id), "a work twice: {e:?}");
                    assert_eq!(e.kind, kind, "{e:?}");
                    assert!(!e.title.trim().is_empty(), "{e:?}");
                    assert_ne!(e.total, Some(0), "{e:?}");
                    assert_ne!(e.total_volumes, Some(0), "{e:?}");
                    if kind == MediaKind::Anime {
                        assert_eq!(e.total_volumes, None, "{e:?}");
                    }
                    if let Some(s) = &e.media.schedule {
                        assert_eq!(kind, MediaKind::Anime, "a manga with airing: {e:?}");
                        assert_ne!(s.state, AiringState::Finished, "{e:?}");
                        assert_ne!(s.episodes, Some(0), "{e:?}");
                        assert!(date_ok(&s.start_date), "{e:?}");
                    }
                    check_state(&e.state(), format);
                }
            }
            Err(e) => check_error(&e),
        }
        match parse_current(data, format) {
            Ok(Some(s)) => check_state(&s, format),
            Ok(None) => {}
            Err(e) => check_error(&e),
        }
        match parse_saved(data, format) {
            Ok(s) => check_state(&s, format),
            Err(e) => check_error(&e),
        }
    }
});
