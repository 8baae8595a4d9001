//! The only place the model changes. Pure: no I/O, no clock; work to do is returned as effects.

use crossterm::event::KeyEventKind;

use super::effect::Effect;
use super::model::{Fetching, Link, Model, Refusal, Row};
use super::msg::Msg;
use crate::config::Action;
use crate::domain::{Change, ListEntry};
use crate::providers::ProviderError;
use crate::sync::Event;

pub fn update(model: &mut Model, msg: Msg) -> Vec<Effect> {
    match msg {
        Msg::Key(key) => {
            if key.kind == KeyEventKind::Release {
                return Vec::new();
            }
            let action = model.keys.action(&key);
            if model.help {
                // Any key closes the help; quit still quits.
                model.help = false;
                if action == Some(Action::Quit) {
                    model.quit = true;
                }
                return Vec::new();
            }
            match action {
                Some(action) => act(model, action),
                None => Vec::new(),
            }
        }
        Msg::Resize(_, rows) => {
            // Title, table header, status bar and key hints take four rows.
            model.list_height = usize::from(rows.saturating_sub(4)).max(1);
            scroll_into_view(model);
            Vec::new()
        }
        Msg::Tick => {
            if let Some(f) = &mut model.fetching {
                f.frame = f.frame.wrapping_add(1);
            }
            Vec::new()
        }
        Msg::Sync(event) => on_sync(model, event),
        Msg::Shutdown => {
            model.quit = true;
            Vec::new()
        }
    }
}

fn act(model: &mut Model, action: Action) -> Vec<Effect> {
    model.notice = None;
    let last = model.rows.len().saturating_sub(1);
    let page = model.list_height.saturating_sub(1).max(1);
    match action {
        Action::Down => select(model, (model.selected + 1).min(last)),
        Action::Up => select(model, model.selected.saturating_sub(1)),
        Action::Top => select(model, 0),
        Action::Bottom => select(model, last),
        Action::PageDown => select(model, (model.selected + page).min(last)),
        Action::PageUp => select(model, model.selected.saturating_sub(page)),
        Action::Increment => return step(model, true),
        Action::Decrement => return step(model, false),
        Action::Refresh => return start_fetch(model),
        Action::Retry => return settle_refusal(model, true),
        Action::Discard => return settle_refusal(model, false),
        Action::Help => model.help = true,
        Action::Quit => model.quit = true,
    }
    Vec::new()
}

fn select(model: &mut Model, index: usize) {
    model.selected = index;
    scroll_into_view(model);
}

fn scroll_into_view(model: &mut Model) {
    let height = model.list_height.max(1);
    model.selected = model.selected.min(model.rows.len().saturating_sub(1));
    if model.selected < model.offset {
        model.offset = model.selected;
    } else if model.selected >= model.offset + height {
        model.offset = model.selected + 1 - height;
    }
    let max_offset = model.rows.len().saturating_sub(height);
    model.offset = model.offset.min(max_offset);
}

/// `+` or `-` on the selected entry: shown at once, queued as one change.
fn step(model: &mut Model, up: bool) -> Vec<Effect> {
    let Some(row) = model.rows.get_mut(model.selected) else {
        return Vec::new();
    };
    let base = row.entry.progress;
    let next = if up {
        row.entry.incremented(base)
    } else {
        base.checked_sub(1)
    };
    let Some(next) = next else {
        model.notice = Some(if up {
            format!("{} has no more episodes", row.entry.title)
        } else {
            format!("{} is at episode 0", row.entry.title)
        });
        return Vec::new();
    };
    // Sent without looking first only when the screen shows what the service holds: this run has
    // heard from it, nothing failed since, and the entry is not in conflict.
    let in_conflict = row.refused.as_ref().is_some_and(|r| r.conflict.is_some());
    let fresh = model.link == Link::Online && model.login_needed.is_none() && !in_conflict;
    row.entry.progress = next;
    row.pending += 1;
    row.refused = None;
    vec![Effect::Enqueue {
        kind: row.entry.kind,
        media_id: row.entry.id,
        change: Change::Progress(next),
        base,
        fresh,
    }]
}

/// Sends the selected entry's refused change again, or drops it.
fn settle_refusal(model: &mut Model, retry: bool) -> Vec<Effect> {
    let Some(row) = model.rows.get_mut(model.selected) else {
        return Vec::new();
    };
    let Some(refusal) = row.refused.take() else {
        model.notice = Some(format!("{} has no refused change", row.entry.title));
        return Vec::new();
    };
    let (kind, media_id) = (row.entry.kind, row.entry.id);
    model.error = None;
    if retry {
        // Also "keep mine" in a conflict: the waiting changes go out as they are.
        row.entry.progress = refusal.value;
        row.pending += refusal.count;
        vec![Effect::RetryRefused { kind, media_id }]
    } else {
        // "Keep theirs" in a conflict: the service's value is the truth.
        if let Some(Some(theirs)) = refusal.conflict {
            row.confirmed = theirs;
        }
        if row.pending == 0 {
            row.entry.progress = row.confirmed;
        }
        vec![Effect::DropRefused { kind, media_id }]
    }
}

fn start_fetch(model: &mut Model) -> Vec<Effect> {
    if model.fetching.is_some() {
        return Vec::new();
    }
    model.fetching = Some(Fetching::default());
    vec![Effect::Fetch(model.status)]
}

/// The first thing the runtime does: show the cache, then refresh it and send what is queued.
pub fn start(model: &mut Model) -> Vec<Effect> {
    let mut effects = start_fetch(model);
    if model.pending() > 0 {
        effects.push(Effect::SendNow);
    }
    effects
}

fn on_sync(model: &mut Model, event: Event) -> Vec<Effect> {
    match event {
        Event::ListProgress(n) => {
            if let Some(f) = &mut model.fetching {
                f.received = n;
            }
        }
        Event::ListFetched {
            entries,
            unreadable,
            at,
        } => {
            let meanwhile = model
                .fetching
                .take()
                .map(|f| f.confirmed_meanwhile)
                .unwrap_or_default();
            model.last_sync = Some(at);
            model.link = Link::Online;
            model.trouble = None;
            model.login_needed = None;
            merge(model, entries, &meanwhile, unreadable > 0);
            if unreadable > 0 {
                model.trouble = Some(format!(
                    "{unreadable} entr{} could not be read and keep{} {} last known values",
                    if unreadable == 1 { "y" } else { "ies" },
                    if unreadable == 1 { "s" } else { "" },
                    if unreadable == 1 { "its" } else { "their" },
                ));
            }
        }
        Event::ListFailed(error) => {
            model.fetching = None;
            let check = error.needs_login();
            failure(model, error);
            if check {
                return vec![Effect::CheckLogin];
            }
        }
        Event::Delivered {
            media_id, progress, ..
        } => {
            if let Some(f) = &mut model.fetching {
                f.confirmed_meanwhile.insert(media_id);
            }
            model.link = Link::Online;
            model.trouble = None;
            model.login_needed = None;
            if let Some(row) = model.row_mut(media_id) {
                row.pending = row.pending.saturating_sub(1);
                row.confirmed = progress;
                if row.pending == 0 {
                    row.entry.progress = progress;
                }
            }
            if model.pending() == 0 {
                model.retry = None;
            }
        }
        Event::Retrying { error, next_at, .. } => {
            model.retry = Some((error.to_string(), next_at));
            failure(model, error);
        }
        Event::Refused {
            media_id,
            value,
            error,
        } => {
            let reason = error.to_string();
            let retry = first_key(model, Action::Retry);
            let discard = first_key(model, Action::Discard);
            if let Some(row) = model.row_mut(media_id) {
                row.pending = row.pending.saturating_sub(1);
                if row.pending == 0 {
                    row.entry.progress = row.confirmed;
                }
                let count = row.refused.as_ref().map_or(0, |r| r.count) + 1;
                row.refused = Some(Refusal {
                    value,
                    count,
                    reason: reason.clone(),
                    conflict: None,
                });
                model.error = Some(format!(
                    "{} → {value} refused: {reason} ({retry} retry, {discard} drop)",
                    row.entry.title
                ));
            } else {
                model.error = Some(reason);
            }
        }
        Event::Conflict {
            media_id,
            mine,
            theirs,
            held,
        } => {
            let keep_mine = first_key(model, Action::Retry);
            let keep_theirs = first_key(model, Action::Discard);
            let service = model.service.display_name();
            if let Some(row) = model.row_mut(media_id) {
                row.pending = row.pending.saturating_sub(held);
                if let Some(theirs) = theirs {
                    row.confirmed = theirs;
                }
                let reason = match theirs {
                    Some(n) => format!("{service} says {n}, you set {mine}"),
                    None => format!("removed from your list on {service}, you set {mine}"),
                };
                let message = format!(
                    "{}: {reason} ({keep_mine} keep yours, {keep_theirs} keep {service}'s)",
                    row.entry.title
                );
                row.entry.progress = mine;
                row.refused = Some(Refusal {
                    value: mine,
                    count: held,
                    reason,
                    conflict: Some(theirs),
                });
                model.error = Some(message);
            }
        }
        Event::LoginNeeded(error) => {
            let first = model.login_needed.is_none();
            needs_login(model, &error);
            if first {
                return vec![Effect::CheckLogin];
            }
        }
        Event::LoginRestored => {
            model.login_needed = None;
            model.notice = Some("logged in again".into());
            let mut effects = start_fetch(model);
            effects.push(Effect::SendNow);
            return effects;
        }
        Event::StoreChanged {
            entries,
            pending,
            refused,
        } => {
            model.reload(entries, &pending, &refused);
            scroll_into_view(model);
        }
        Event::NotSaved { media_id, error } => {
            if let Some(row) = model.row_mut(media_id) {
                row.pending = row.pending.saturating_sub(1);
                if row.pending == 0 {
                    row.entry.progress = row.confirmed;
                }
            }
            model.error = Some(format!("change not saved: {error}"));
        }
    }
    Vec::new()
}

fn first_key(model: &Model, action: Action) -> String {
    model
        .keys
        .keys_for(action)
        .first()
        .map_or_else(|| action.name().to_string(), |k| k.label())
}

/// Several background tasks notice a missing login at once; the first word stays, unless a later
/// one says more (that the saved login was damaged, and where it is kept).
fn needs_login(model: &mut Model, error: &ProviderError) {
    if model.login_needed.is_none() || matches!(error, ProviderError::LoginDamaged(_)) {
        model.login_needed = Some(error.to_string());
    }
}

fn failure(model: &mut Model, error: ProviderError) {
    match error {
        ProviderError::Offline(reason) => model.link = Link::Offline(reason),
        e if e.needs_login() => needs_login(model, &e),
        e => model.trouble = Some(e.to_string()),
    }
}

/// Takes a freshly fetched list, keeping what the user changed and the service has not confirmed.
fn merge(
    model: &mut Model,
    mut entries: Vec<ListEntry>,
    confirmed_meanwhile: &std::collections::HashSet<u64>,
    keep_missing: bool,
) {
    // The same order as the cache: by title, ignoring case.
    entries.sort_by_cached_key(|e| (e.title.to_lowercase(), e.id));
    let selected_id = model.rows.get(model.selected).map(|r| r.entry.id);
    let mut old: std::collections::HashMap<u64, Row> =
        model.rows.drain(..).map(|r| (r.entry.id, r)).collect();
    model.rows = entries
        .into_iter()
        .map(|entry| {
            let mut confirmed = entry.progress;
            let prev = old.remove(&entry.id);
            if let Some(prev) = prev
                .as_ref()
                .filter(|p| confirmed_meanwhile.contains(&p.entry.id))
            {
                confirmed = prev.confirmed;
            }
            let entry = ListEntry {
                progress: confirmed,
                ..entry
            };
            match prev {
                // Unconfirmed changes, or a conflict: the user's value stays on screen.
                Some(prev)
                    if prev.pending > 0
                        || prev.refused.as_ref().is_some_and(|r| r.conflict.is_some()) =>
                {
                    Row {
                        entry: ListEntry {
                            progress: prev.entry.progress,
                            ..entry
                        },
                        confirmed,
                        pending: prev.pending,
                        refused: prev.refused,
                    }
                }
                Some(prev) => Row {
                    entry,
                    confirmed,
                    pending: 0,
                    refused: prev.refused,
                },
                None => Row {
                    entry,
                    confirmed,
                    pending: 0,
                    refused: None,
                },
            }
        })
        .collect();
    if keep_missing && !old.is_empty() {
        // Some items could not be read: the rows they may be keep what was known of them.
        model.rows.extend(old.into_values());
        model
            .rows
            .sort_by_cached_key(|r| (r.entry.title.to_lowercase(), r.entry.id));
    }
    if let Some(i) = selected_id.and_then(|id| model.rows.iter().position(|r| r.entry.id == id)) {
        model.selected = i;
    }
    scroll_into_view(model);
}

#[cfg(test)]
mod tests {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    use super::*;
    use crate::config::KeyMap;
    use crate::domain::{MediaKind, Service, Status};

    fn entry(id: u64, title: &str, progress: u32, total: Option<u32>) -> ListEntry {
        ListEntry::watching(id, title, progress, total, 0)
    }

    fn model(entries: Vec<ListEntry>) -> Model {
        let mut m = Model::new(
            Service::Mal,
            Some("me".into()),
            KeyMap::default(),
            jiff::tz::TimeZone::UTC,
        );
        m.load(entries, &[], &[]);
        m
    }

    fn key(c: char) -> Msg {
        Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
    }

    fn enqueued(effects: &[Effect]) -> Vec<(u64, u32, u32)> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Enqueue {
                    media_id,
                    change: Change::Progress(n),
                    base,
                    ..
                } => Some((*media_id, *n, *base)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn three_pluses_show_at_once_and_queue_three_ordered_changes() {
        let mut m = model(vec![entry(1, "A", 5, Some(12))]);
        let mut effects = Vec::new();
        for _ in 0..3 {
            effects.extend(update(&mut m, key('+')));
        }
        assert_eq!(enqueued(&effects), vec![(1, 6, 5), (1, 7, 6), (1, 8, 7)]);
        assert_eq!(m.rows[0].entry.progress, 8);
        assert_eq!(m.rows[0].confirmed, 5);
        assert_eq!(m.pending(), 3);
        for n in [6, 7] {
            update(
                &mut m,
                Msg::Sync(Event::Delivered {
                    seq: 0,
                    media_id: 1,
                    progress: n,
                }),
            );
            assert_eq!(
                m.rows[0].entry.progress, 8,
                "a confirmation of an older change must not roll back the screen"
            );
        }
        update(
            &mut m,
            Msg::Sync(Event::Delivered {
                seq: 0,
                media_id: 1,
                progress: 8,
            }),
        );
        assert_eq!(
            (m.rows[0].entry.progress, m.rows[0].confirmed, m.pending()),
            (8, 8, 0)
        );
    }

    #[test]
    fn plus_stops_at_the_known_total_and_minus_at_zero() {
        let mut m = model(vec![
            entry(1, "Done", 12, Some(12)),
            entry(2, "Zero", 0, None),
        ]);
        assert!(update(&mut m, key('+')).is_empty());
        assert!(m.notice.as_deref().unwrap().contains("no more episodes"));
        assert_eq!(m.rows[0].entry.progress, 12);
        update(&mut m, key('j'));
        assert!(update(&mut m, key('-')).is_empty());
        assert_eq!(m.rows[1].entry.progress, 0);
        // An unknown total does not cap.
        assert_eq!(enqueued(&update(&mut m, key('+'))), vec![(2, 1, 0)]);
    }

    #[test]
    fn minus_mirrors_plus() {
        let mut m = model(vec![entry(1, "A", 5, Some(12))]);
        assert_eq!(enqueued(&update(&mut m, key('-'))), vec![(1, 4, 5)]);
        assert_eq!(m.rows[0].entry.progress, 4);
    }

    #[test]
    fn a_fetched_list_keeps_unconfirmed_changes_on_screen() {
        let mut m = model(vec![entry(1, "A", 5, Some(12)), entry(2, "B", 1, Some(3))]);
        update(&mut m, key('+'));
        let fetched = vec![
            entry(1, "A", 5, Some(12)),
            entry(2, "B", 2, Some(3)),
            entry(3, "C", 0, None),
        ];
        update(
            &mut m,
            Msg::Sync(Event::ListFetched {
                unreadable: 0,
                entries: fetched,
                at: jiff::Timestamp::UNIX_EPOCH,
            }),
        );
        let shown: Vec<_> = m
            .rows
            .iter()
            .map(|r| (r.entry.id, r.entry.progress, r.pending))
            .collect();
        assert_eq!(shown, vec![(1, 6, 1), (2, 2, 0), (3, 0, 0)]);
        assert_eq!(m.link, Link::Online);
    }

    #[test]
    fn a_list_read_before_a_confirmed_change_does_not_undo_it() {
        let mut m = model(vec![entry(1, "A", 5, Some(12)), entry(2, "B", 1, Some(3))]);
        update::start(&mut m);
        update(&mut m, key('+'));
        update(
            &mut m,
            Msg::Sync(Event::Delivered {
                seq: 1,
                media_id: 1,
                progress: 6,
            }),
        );
        // The list was read before the PATCH landed, and arrives after its confirmation.
        let stale = vec![entry(1, "A", 5, Some(12)), entry(2, "B", 2, Some(3))];
        update(
            &mut m,
            Msg::Sync(Event::ListFetched {
                unreadable: 0,
                entries: stale,
                at: jiff::Timestamp::UNIX_EPOCH,
            }),
        );
        let shown: Vec<_> = m
            .rows
            .iter()
            .map(|r| (r.entry.progress, r.confirmed))
            .collect();
        assert_eq!(
            shown,
            vec![(6, 6), (2, 2)],
            "entry 2 was not touched: the server's value wins"
        );
        // The next fetch is trusted again.
        update(&mut m, key('r'));
        update(
            &mut m,
            Msg::Sync(Event::ListFetched {
                unreadable: 0,
                entries: vec![entry(1, "A", 9, Some(12))],
                at: jiff::Timestamp::UNIX_EPOCH,
            }),
        );
        assert_eq!(m.rows[0].entry.progress, 9);
    }

    #[test]
    fn a_conflict_shows_both_values_until_the_user_keeps_one() {
        let mut m = model(vec![entry(1, "A", 5, Some(12))]);
        update::start(&mut m);
        update(&mut m, key('+'));
        update(&mut m, key('+'));
        let conflict = Event::Conflict {
            media_id: 1,
            mine: 7,
            theirs: Some(9),
            held: 2,
        };
        update(&mut m, Msg::Sync(conflict.clone()));
        assert_eq!(
            (m.rows[0].entry.progress, m.rows[0].confirmed, m.pending()),
            (7, 9, 0)
        );
        let bar = m.error.clone().unwrap();
        assert!(
            bar.contains("MyAnimeList says 9, you set 7 (R keep yours, x keep MyAnimeList's)"),
            "{bar}"
        );
        // A fetch does not hide the user's side.
        update(&mut m, key('r'));
        update(
            &mut m,
            Msg::Sync(Event::ListFetched {
                unreadable: 0,
                entries: vec![entry(1, "A", 9, Some(12))],
                at: jiff::Timestamp::UNIX_EPOCH,
            }),
        );
        assert_eq!(m.rows[0].entry.progress, 7);
        // x keeps the service's value.
        assert_eq!(
            update(&mut m, key('x')),
            vec![Effect::DropRefused {
                kind: MediaKind::Anime,
                media_id: 1
            }]
        );
        assert_eq!(m.rows[0].entry.progress, 9);
        // Or, the other way, R sends the user's changes.
        update(&mut m, Msg::Sync(conflict));
        let effects = update(
            &mut m,
            Msg::Key(KeyEvent::new(KeyCode::Char('R'), KeyModifiers::SHIFT)),
        );
        assert_eq!(
            effects,
            vec![Effect::RetryRefused {
                kind: MediaKind::Anime,
                media_id: 1
            }]
        );
        assert_eq!((m.rows[0].entry.progress, m.pending()), (7, 2));
    }

    #[test]
    fn entries_that_could_not_be_read_keep_their_last_known_values() {
        let mut m = model(vec![entry(1, "A", 5, Some(12)), entry(2, "B", 1, Some(3))]);
        update(&mut m, key('r'));
        update(
            &mut m,
            Msg::Sync(Event::ListFetched {
                unreadable: 1,
                entries: vec![entry(2, "B", 2, Some(3))],
                at: jiff::Timestamp::UNIX_EPOCH,
            }),
        );
        let shown: Vec<_> = m
            .rows
            .iter()
            .map(|r| (r.entry.id, r.entry.progress))
            .collect();
        assert_eq!(shown, vec![(1, 5), (2, 2)]);
        assert!(
            m.trouble
                .as_deref()
                .unwrap()
                .contains("1 entry could not be read")
        );
        // A clean sync clears the remark and trusts the list again.
        update(&mut m, key('r'));
        update(
            &mut m,
            Msg::Sync(Event::ListFetched {
                unreadable: 0,
                entries: vec![entry(2, "B", 2, Some(3))],
                at: jiff::Timestamp::UNIX_EPOCH,
            }),
        );
        assert_eq!(m.rows.len(), 1);
        assert!(m.trouble.is_none());
    }

    #[test]
    fn passing_trouble_leaves_the_bar_once_things_work() {
        let mut m = model(vec![entry(1, "A", 5, Some(12))]);
        update(&mut m, key('+'));
        update(
            &mut m,
            Msg::Sync(Event::Retrying {
                media_id: 1,
                error: ProviderError::Server("MyAnimeList is having trouble (HTTP 500)".into()),
                next_at: jiff::Timestamp::UNIX_EPOCH,
            }),
        );
        assert!(m.trouble.is_some());
        update(
            &mut m,
            Msg::Sync(Event::Delivered {
                seq: 1,
                media_id: 1,
                progress: 6,
            }),
        );
        assert!(m.trouble.is_none() && m.retry.is_none());
    }

    #[test]
    fn loading_lays_queued_changes_over_the_cache() {
        let mut m = Model::new(
            Service::Mal,
            None,
            KeyMap::default(),
            jiff::tz::TimeZone::UTC,
        );
        let op = |seq, n| crate::domain::Op {
            seq,
            service: Service::Mal,
            kind: MediaKind::Anime,
            media_id: 1,
            change: Change::Progress(n),
            base: n - 1,
            attempts: 0,
            verified: false,
        };
        m.load(vec![entry(1, "A", 5, Some(12))], &[op(1, 6), op(2, 7)], &[]);
        assert_eq!(
            (m.rows[0].entry.progress, m.rows[0].confirmed, m.pending()),
            (7, 5, 2)
        );
    }

    #[test]
    fn a_refused_change_rolls_back_to_what_the_service_holds() {
        let mut m = model(vec![entry(1, "A", 5, Some(12))]);
        update(&mut m, key('+'));
        update(
            &mut m,
            Msg::Sync(Event::Refused {
                media_id: 1,
                value: 6,
                error: ProviderError::Rejected("gone".into()),
            }),
        );
        assert_eq!(m.rows[0].entry.progress, 5);
        assert_eq!(
            m.rows[0].refused.as_ref().map(|r| r.reason.as_str()),
            Some("gone")
        );
        let error = m.error.clone().unwrap();
        assert!(
            error.contains("A → 6 refused: gone (R retry, x drop)"),
            "{error}"
        );

        // R puts it back in the queue and shows it pending again.
        assert_eq!(
            update(
                &mut m,
                Msg::Key(KeyEvent::new(KeyCode::Char('R'), KeyModifiers::SHIFT))
            ),
            vec![Effect::RetryRefused {
                kind: MediaKind::Anime,
                media_id: 1
            }]
        );
        assert_eq!((m.rows[0].entry.progress, m.rows[0].pending), (6, 1));
        assert!(m.rows[0].refused.is_none() && m.error.is_none());

        // Refused again, then x drops it and the screen shows what the service holds.
        update(
            &mut m,
            Msg::Sync(Event::Refused {
                media_id: 1,
                value: 6,
                error: ProviderError::Rejected("gone".into()),
            }),
        );
        assert_eq!(
            update(&mut m, key('x')),
            vec![Effect::DropRefused {
                kind: MediaKind::Anime,
                media_id: 1
            }]
        );
        assert_eq!((m.rows[0].entry.progress, m.rows[0].pending), (5, 0));
        assert!(update(&mut m, key('x')).is_empty());
        assert!(m.notice.as_deref().unwrap().contains("no refused change"));
    }

    #[test]
    fn offline_and_expired_sessions_are_remembered() {
        let mut m = model(vec![entry(1, "A", 5, None)]);
        update(
            &mut m,
            Msg::Sync(Event::ListFailed(ProviderError::Offline(
                "cannot connect".into(),
            ))),
        );
        assert!(matches!(m.link, Link::Offline(_)));
        update(
            &mut m,
            Msg::Sync(Event::LoginNeeded(ProviderError::SessionExpired)),
        );
        assert!(m.login_needed.as_deref().unwrap().contains("malt --login"));
        update(
            &mut m,
            Msg::Sync(Event::Delivered {
                seq: 1,
                media_id: 1,
                progress: 5,
            }),
        );
        assert!(m.login_needed.is_none());
        assert_eq!(m.link, Link::Online);
    }

    #[test]
    fn a_new_login_clears_the_warning_and_syncs_at_once() {
        let mut m = model(vec![entry(1, "A", 5, None)]);
        update::start(&mut m);
        let effects = update(
            &mut m,
            Msg::Sync(Event::ListFailed(ProviderError::SessionExpired)),
        );
        assert_eq!(effects, vec![Effect::CheckLogin]);
        assert!(m.login_needed.is_some());
        update(&mut m, key('+'));
        let effects = update(&mut m, Msg::Sync(Event::LoginRestored));
        assert_eq!(
            effects,
            vec![Effect::Fetch(Status::Watching), Effect::SendNow]
        );
        assert!(m.login_needed.is_none());
    }

    #[test]
    fn refresh_starts_one_fetch_at_a_time() {
        let mut m = model(vec![]);
        assert_eq!(update::start(&mut m), vec![Effect::Fetch(Status::Watching)]);
        assert!(update(&mut m, key('r')).is_empty());
        update(&mut m, Msg::Sync(Event::ListProgress(40)));
        assert_eq!(m.fetching.as_ref().map(|f| f.received), Some(40));
        update(
            &mut m,
            Msg::Sync(Event::ListFailed(ProviderError::Server("500".into()))),
        );
        assert_eq!(
            update(&mut m, key('r')),
            vec![Effect::Fetch(Status::Watching)]
        );
    }

    #[test]
    fn moving_scrolls_the_list() {
        let entries = (0..50)
            .map(|i| entry(i, &format!("T{i:02}"), 0, None))
            .collect();
        let mut m = model(entries);
        update(&mut m, Msg::Resize(80, 14)); // 10 list rows
        for _ in 0..12 {
            update(&mut m, key('j'));
        }
        assert_eq!((m.selected, m.offset), (12, 3));
        update(&mut m, key('k'));
        assert_eq!((m.selected, m.offset), (11, 3));
        update(
            &mut m,
            Msg::Key(KeyEvent::new(KeyCode::Char('G'), KeyModifiers::SHIFT)),
        );
        assert_eq!((m.selected, m.offset), (49, 40));
        update(&mut m, key('g'));
        assert_eq!((m.selected, m.offset), (0, 0));
    }

    #[test]
    fn help_opens_and_any_key_closes_it_and_q_quits() {
        let mut m = model(vec![entry(1, "A", 5, None)]);
        update(&mut m, key('?'));
        assert!(m.help);
        assert!(
            update(&mut m, key('+')).is_empty(),
            "keys go to the help while it is open"
        );
        assert!(!m.help);
        update(&mut m, key('q'));
        assert!(m.quit);
    }

    use super::super::update;
}
