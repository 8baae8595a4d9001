//! Finding entries by title: the fuzzy matcher behind the list's `/` filter, and the one query
//! every command that names an entry by title goes through (`malt progress frieren +1`).

use nucleo_matcher::pattern::{CaseMatching, Normalization, Pattern};
use nucleo_matcher::{Config, Matcher, Utf32Str};

use super::{ListEntry, Status};

/// A fuzzy title query (fzf-like: `frrn` finds "Sousou no Frieren"; case and accents ignored).
pub struct TitleQuery {
    pattern: Pattern,
    matcher: Matcher,
    buf: Vec<char>,
}

impl TitleQuery {
    /// `None` for a query of nothing but spaces.
    pub fn new(query: &str) -> Option<TitleQuery> {
        let query = query.trim();
        (!query.is_empty()).then(|| TitleQuery {
            pattern: Pattern::parse(query, CaseMatching::Ignore, Normalization::Smart),
            matcher: Matcher::new(Config::DEFAULT),
            buf: Vec::new(),
        })
    }

    /// How well `title` matches (higher is better); `None` when it does not.
    pub fn score(&mut self, title: &str) -> Option<u32> {
        self.pattern
            .score(Utf32Str::new(title, &mut self.buf), &mut self.matcher)
    }

    /// The positions (in characters) of `title` that the query matched, for highlighting.
    pub fn matched_chars(&mut self, title: &str) -> Vec<usize> {
        let mut indices = Vec::new();
        if self
            .pattern
            .indices(
                Utf32Str::new(title, &mut self.buf),
                &mut self.matcher,
                &mut indices,
            )
            .is_none()
        {
            return Vec::new();
        }
        indices.sort_unstable();
        indices.dedup();
        indices.into_iter().map(|i| i as usize).collect()
    }
}

/// A title with case, punctuation and spacing taken out, for telling an exact title from a
/// fuzzy match ("Steins;Gate" and "steins gate" are the same).
pub fn folded(title: &str) -> String {
    title
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// The fewest characters a search of the service is sent with (MyAnimeList refuses fewer).
pub const SEARCH_MIN_CHARS: usize = 3;

/// The text of a search of the service, trimmed; an error sentence when it is too short to send.
pub fn search_text(text: &str) -> Result<&str, String> {
    let text = text.trim();
    if text.chars().count() < SEARCH_MIN_CHARS {
        return Err(format!(
            "type at least {SEARCH_MIN_CHARS} characters to search"
        ));
    }
    Ok(text)
}

/// What a title query found among entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    /// One entry is the answer (its index).
    One(usize),
    /// Several match equally well: the candidates, best first (at most 10).
    Several(Vec<usize>),
    /// Nothing matches.
    Nothing,
}

/// The entry `query` names among `entries`:
/// 1. an entry whose whole title is the query (case, punctuation and spacing aside);
/// 2. otherwise the best fuzzy match;
/// 3. among equally good matches, the only one being watched/read now.
///
/// Anything else is [`Found::Several`]: a command must not guess which one was meant.
pub fn find<'a>(entries: impl IntoIterator<Item = &'a ListEntry>, query: &str) -> Found {
    let Some(mut q) = TitleQuery::new(query) else {
        return Found::Nothing;
    };
    let wanted = folded(query);
    let mut scored: Vec<(u32, usize, &ListEntry)> = entries
        .into_iter()
        .enumerate()
        .filter_map(|(i, e)| Some((q.score(&e.title)?, i, e)))
        .collect();
    if scored.is_empty() {
        return Found::Nothing;
    }
    let exact: Vec<usize> = scored
        .iter()
        .filter(|(_, _, e)| !wanted.is_empty() && folded(&e.title) == wanted)
        .map(|(_, i, _)| *i)
        .collect();
    if let [one] = exact.as_slice() {
        return Found::One(*one);
    }
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let best = scored[0].0;
    let top: Vec<&(u32, usize, &ListEntry)> = scored.iter().filter(|s| s.0 == best).collect();
    if let [one] = top.as_slice() {
        return Found::One(one.1);
    }
    let current: Vec<usize> = top
        .iter()
        .filter(|s| s.2.status == Status::Current)
        .map(|s| s.1)
        .collect();
    if let [one] = current.as_slice() {
        return Found::One(*one);
    }
    Found::Several(scored.iter().take(10).map(|s| s.1).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::MediaKind;

    fn list(items: &[(&str, Status)]) -> Vec<ListEntry> {
        items
            .iter()
            .enumerate()
            .map(|(i, (t, s))| ListEntry::new(i as u64 + 1, MediaKind::Anime, t, *s))
            .collect()
    }

    #[test]
    fn the_best_match_is_found_and_ties_are_not_guessed() {
        let l = list(&[
            ("Steins;Gate", Status::Completed),
            ("Sousou no Frieren", Status::Current),
            ("Shingeki no Kyojin", Status::Completed),
            ("Shingeki no Kyojin Season 2", Status::Completed),
        ]);
        assert_eq!(find(&l, "frrn"), Found::One(1));
        assert_eq!(find(&l, "steins gate"), Found::One(0), "exact title");
        assert_eq!(find(&l, "shingeki no kyojin"), Found::One(2), "exact title");
        match find(&l, "kyojin") {
            Found::Several(c) => assert_eq!(c.len(), 2),
            other => panic!("{other:?}"),
        }
        assert_eq!(find(&l, "zzzz"), Found::Nothing);
        assert_eq!(find(&l, "   "), Found::Nothing);
    }

    #[test]
    fn among_equal_matches_the_one_being_watched_wins() {
        let l = list(&[
            ("Frieren Season 2", Status::Planning),
            ("Frieren Season 1", Status::Current),
        ]);
        assert_eq!(find(&l, "frieren season"), Found::One(1));
    }

    #[test]
    fn matched_characters_are_reported_for_highlighting() {
        let mut q = TitleQuery::new("frrn").unwrap();
        assert_eq!(q.matched_chars("Sousou no Frieren").len(), 4);
        assert!(q.matched_chars("Gintama").is_empty());
        assert_eq!(folded("Steins;Gate 0!"), "steinsgate0");
    }
}
