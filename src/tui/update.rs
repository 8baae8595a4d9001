//! The only place the model changes. Pure: no I/O, no clock; work to do is returned as effects.

use crossterm::event::KeyEventKind;

use super::effect::Effect;
use super::model::{Fetching, Link, Model, Row};
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
    row.entry.progress = next;
    row.pending += 1;
    row.refused = None;
    vec![Effect::Enqueue {
        kind: row.entry.kind,
        media_id: row.entry.id,
        change: Change::Progress(next),
        base,
    }]
}

fn start_fetch(model: &mut Model) -> Vec<Effect> {
    if model.fetching.is_some() {
        return Vec::new();
    }
    model.fetching = Some(Fetching::default());
    vec![Effect::Fetch(model.status)]
}

/// The first thing the runtime does: show the cache, then refresh it.
pub fn start(model: &mut Model) -> Vec<Effect> {
    start_fetch(model)
}

fn on_sync(model: &mut Model, event: Event) -> Vec<Effect> {
    match event {
        Event::ListProgress(n) => {
            if let Some(f) = &mut model.fetching {
                f.received = n;
            }
        }
        Event::ListFetched { entries, at } => {
            model.fetching = None;
            model.last_sync = Some(at);
            model.link = Link::Online;
            model.login_needed = None;
            merge(model, entries);
        }
        Event::ListFailed(error) => {
            model.fetching = None;
            failure(model, error);
        }
        Event::Delivered { media_id, progress, .. } => {
            model.link = Link::Online;
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
        Event::Refused { media_id, error } => {
            let message = error.to_string();
            if let Some(row) = model.row_mut(media_id) {
                row.pending = row.pending.saturating_sub(1);
                if row.pending == 0 {
                    row.entry.progress = row.confirmed;
                }
                row.refused = Some(message.clone());
                model.error = Some(format!("{}: {message}", row.entry.title));
            } else {
                model.error = Some(message);
            }
        }
        Event::LoginNeeded(error) => model.login_needed = Some(error.to_string()),
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

fn failure(model: &mut Model, error: ProviderError) {
    match error {
        ProviderError::Offline(reason) => model.link = Link::Offline(reason),
        e if e.needs_login() => model.login_needed = Some(e.to_string()),
        e => model.error = Some(e.to_string()),
    }
}

/// Takes a freshly fetched list, keeping what the user changed and the service has not confirmed.
fn merge(model: &mut Model, mut entries: Vec<ListEntry>) {
    // The same order as the cache: by title, ignoring case.
    entries.sort_by_cached_key(|e| (e.title.to_lowercase(), e.id));
    let selected_id = model.rows.get(model.selected).map(|r| r.entry.id);
    let mut old: std::collections::HashMap<u64, Row> =
        model.rows.drain(..).map(|r| (r.entry.id, r)).collect();
    model.rows = entries
        .into_iter()
        .map(|entry| {
            let confirmed = entry.progress;
            match old.remove(&entry.id) {
                Some(prev) if prev.pending > 0 => Row {
                    entry: ListEntry {
                        progress: prev.entry.progress,
                        ..entry
                    },
                    confirmed,
                    pending: prev.pending,
                    refused: prev.refused,
                },
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
    if let Some(id) = selected_id {
        if let Some(i) = model.rows.iter().position(|r| r.entry.id == id) {
            model.selected = i;
        }
    }
    scroll_into_view(model);
}
