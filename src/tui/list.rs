//! Which rows the list shows, in which order: the status tab, the title filter (fuzzy, with
//! nucleo-matcher) and the sort. Pure functions of the model.

use super::model::{Key, Model, Row, Sort};
use crate::domain::query::TitleQuery;

/// Recomputes the lines shown, keeping the selected entry selected when it is still shown.
pub fn refresh(model: &mut Model) {
    let selected = model.selected_key();
    model.visible = visible(model);
    reselect(model, selected);
}

/// Selects the entry with `key` if it is shown; otherwise keeps the position.
pub fn reselect(model: &mut Model, key: Option<Key>) {
    if let Some(i) = key.and_then(|k| {
        model
            .visible
            .iter()
            .position(|&i| model.rows.get(i).is_some_and(|r| r.key() == k))
    }) {
        model.selected = i;
    }
    scroll_into_view(model);
}

pub fn scroll_into_view(model: &mut Model) {
    let height = model.list_height.max(1);
    model.selected = model.selected.min(model.visible.len().saturating_sub(1));
    if model.selected < model.offset {
        model.offset = model.selected;
    } else if model.selected >= model.offset + height {
        model.offset = model.selected + 1 - height;
    }
    let max_offset = model.visible.len().saturating_sub(height);
    model.offset = model.offset.min(max_offset);
}

fn visible(model: &Model) -> Vec<usize> {
    let in_tab = |r: &Row| r.entry.kind == model.kind && r.entry.status == model.tab && !r.removing;
    if let Some(mut query) = TitleQuery::new(&model.filter.query) {
        let mut scored: Vec<(u32, usize)> = model
            .rows
            .iter()
            .enumerate()
            .filter(|(_, r)| in_tab(r))
            .filter_map(|(i, r)| {
                let score = query.score(&r.entry.title)?;
                Some((score, i))
            })
            .collect();
        // Best match first; equal matches in the chosen order.
        scored.sort_by(|a, b| {
            b.0.cmp(&a.0)
                .then_with(|| order(model, &model.rows[a.1], &model.rows[b.1]))
        });
        return scored.into_iter().map(|(_, i)| i).collect();
    }
    let mut shown: Vec<usize> = (0..model.rows.len())
        .filter(|&i| in_tab(&model.rows[i]))
        .collect();
    shown.sort_by(|&a, &b| order(model, &model.rows[a], &model.rows[b]));
    shown
}

/// The chosen order, title as the tie-breaker.
fn order(model: &Model, a: &Row, b: &Row) -> std::cmp::Ordering {
    let by_title = || {
        a.entry
            .title
            .to_lowercase()
            .cmp(&b.entry.title.to_lowercase())
            .then(a.entry.id.cmp(&b.entry.id))
    };
    match model.sort {
        Sort::Title => by_title(),
        Sort::Progress => b.entry.progress.cmp(&a.entry.progress).then_with(by_title),
        Sort::Score => b.entry.score.cmp(&a.entry.score).then_with(by_title),
        Sort::Updated => b
            .entry
            .updated_at
            .as_deref()
            .map(updated_key)
            .cmp(&a.entry.updated_at.as_deref().map(updated_key))
            .then_with(by_title),
        Sort::NextAiring => {
            let next = |r: &Row| {
                r.entry
                    .media
                    .schedule
                    .as_ref()
                    .and_then(|s| s.next_episode(model.now))
                    .map(|n| n.at)
            };
            // Soonest first; titles with no next episode after all the others.
            match (next(a), next(b)) {
                (Some(x), Some(y)) => x.cmp(&y).then_with(by_title),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => by_title(),
            }
        }
    }
}

/// `updated_at` as a comparable instant (services write different offsets); unreadable ones sort
/// as the oldest.
fn updated_key(s: &str) -> i64 {
    s.parse::<jiff::Timestamp>()
        .map_or(i64::MIN, |t| t.as_millisecond())
}

/// Positions (in characters) of `title` that the filter matched, for highlighting.
pub fn matched_chars(query: &str, title: &str) -> Vec<usize> {
    TitleQuery::new(query).map_or_else(Vec::new, |mut q| q.matched_chars(title))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::KeyMap;
    use crate::domain::{ListEntry, Service, Status};

    fn model(titles: &[&str]) -> Model {
        let mut m = Model::new(
            Service::Mal,
            None,
            KeyMap::default(),
            jiff::tz::TimeZone::UTC,
        );
        let entries = titles
            .iter()
            .enumerate()
            .map(|(i, t)| ListEntry::watching(i as u64 + 1, t, i as u32, None, (i % 3) as u8))
            .collect();
        m.load(entries, &[], &[]);
        m
    }

    fn shown(m: &Model) -> Vec<String> {
        m.visible
            .iter()
            .map(|&i| m.rows[i].entry.title.clone())
            .collect()
    }

    #[test]
    fn the_filter_is_fuzzy_and_puts_the_best_match_first() {
        let mut m = model(&[
            "Steins;Gate",
            "Shingeki no Kyojin",
            "Sousou no Frieren",
            "Gintama",
        ]);
        m.filter.query = "frrn".into();
        refresh(&mut m);
        assert_eq!(shown(&m), vec!["Sousou no Frieren"]);
        m.filter.query = "gate".into();
        refresh(&mut m);
        assert_eq!(shown(&m)[0], "Steins;Gate");
        m.filter.query = "zzz".into();
        refresh(&mut m);
        assert!(shown(&m).is_empty());
        assert_eq!(matched_chars("frrn", "Sousou no Frieren").len(), 4);
    }

    #[test]
    fn sorting_and_tabs() {
        let mut m = model(&["b", "a", "c"]);
        assert_eq!(shown(&m), vec!["a", "b", "c"]);
        m.sort = Sort::Progress;
        refresh(&mut m);
        assert_eq!(shown(&m), vec!["c", "a", "b"]);
        m.tab = Status::Completed;
        refresh(&mut m);
        assert!(shown(&m).is_empty());
    }

    #[test]
    fn filtering_thousands_of_titles_finds_the_matches() {
        let titles: Vec<String> = (0..5000)
            .map(|i| format!("Title number {i} of the list"))
            .collect();
        let refs: Vec<&str> = titles.iter().map(String::as_str).collect();
        let mut m = model(&refs);
        m.filter.query = "4999".into();
        refresh(&mut m);
        assert_eq!(
            m.rows[m.visible[0]].entry.title, "Title number 4999 of the list",
            "the exact match first"
        );
        assert!(m.visible.len() < 5000, "the others narrowed away");
    }
}
