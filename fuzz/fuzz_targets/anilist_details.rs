//! AniList details answers (`Media`), anime and manga, and the description's markup: never a
//! panic; a title, no total of 0, no blank or repeated English title, a tidy synopsis, no state
//! word with `_`, trimmed genres, no airing for a manga, a score as a positive percentage.
#![no_main]

use libfuzzer_sys::fuzz_target;
use malt::domain::MediaKind;
use malt::providers::anilist::query::{parse_details, plain_text};

/// Plain text as `plain_text` leaves it: no line ending in spaces, no more than one blank line.
fn tidy(text: &str) -> bool {
    !text.contains("\n\n\n")
        && !text.starts_with('\n')
        && !text.ends_with('\n')
        && text.split('\n').all(|l| l.trim_end() == l)
}

fuzz_target!(|data: &[u8]| {
    for kind in MediaKind::ALL {
        let d = match parse_details(data, kind) {
            Ok(d) => d,
            Err(e) => {
                let text = e.to_string();
                assert!(
                    !text.trim().is_empty() && !text.contains(['\n', '\r']),
                    "{text:?}"
                );
                continue;
            }
        };
        assert_eq!(d.kind, Some(kind));
        assert!(!d.title.trim().is_empty(), "{d:?}");
        assert_ne!(d.total, Some(0), "{d:?}");
        assert_ne!(d.total_volumes, Some(0), "{d:?}");
        if let Some(alt) = &d.alt_title {
            assert!(!alt.trim().is_empty() && *alt != d.title, "{d:?}");
        }
        if let Some(s) = &d.synopsis {
            assert!(!s.trim().is_empty() && tidy(s), "{d:?}");
        }
        if let Some(state) = &d.state {
            assert!(!state.contains('_'), "{d:?}");
        }
        for g in &d.genres {
            assert!(!g.is_empty() && g.trim() == g, "{d:?}");
        }
        if let Some(s) = &d.schedule {
            assert_eq!(kind, MediaKind::Anime, "a manga with airing: {d:?}");
            assert_ne!(s.episodes, Some(0), "{d:?}");
        }
        if let Some(mean) = &d.mean {
            let n = mean.strip_suffix('%').expect("a percentage");
            assert!(n.parse::<u32>().is_ok_and(|n| n > 0), "{mean:?}");
        }
    }
    let html = String::from_utf8_lossy(data);
    let text = plain_text(&html);
    assert!(tidy(&text), "{html:?} → {text:?}");
    if !html.contains(['<', '&']) {
        let words = |s: &str| s.split_whitespace().collect::<String>();
        assert_eq!(words(&text), words(&html), "text without markup lost words");
    }
});
