//! The only place the model changes. Pure: no I/O, no clock; work to do is returned as effects.

use crossterm::event::{
    KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEventKind,
};

use super::effect::Effect;
use super::list::{refresh, reselect, scroll_into_view};
use super::model::{
    Aside, DetailsPane, Fetching, Key, Link, Model, Overlay, Prompt, Refusal, Row, Search,
};
use super::msg::{Loaded, Msg};
use super::view;
use crate::config::Action;
use crate::domain::{Change, ListEntry, MediaKind, Service, Status, rules};
use crate::providers::ProviderError;
use crate::sync::Event;

/// Rows taken by everything but the list: title, tabs, table header, status bar, key hints.
pub const CHROME_ROWS: u16 = 5;

pub fn update(model: &mut Model, msg: Msg) -> Vec<Effect> {
    match msg {
        Msg::Key(key) => {
            if key.kind == KeyEventKind::Release {
                return Vec::new();
            }
            on_key(model, key)
        }
        Msg::Mouse(mouse) => {
            on_mouse(model, mouse);
            Vec::new()
        }
        Msg::Resize(cols, rows) => {
            model.width = cols;
            model.height = rows;
            model.list_height = usize::from(rows.saturating_sub(CHROME_ROWS)).max(1);
            scroll_into_view(model);
            Vec::new()
        }
        Msg::Clock(now) => {
            model.now = now;
            Vec::new()
        }
        Msg::Tick => {
            if let Some(f) = &mut model.fetching {
                f.frame = f.frame.wrapping_add(1);
            }
            Vec::new()
        }
        Msg::Sync(event) => {
            if model.switching.is_some() {
                // For the list about to be shown: it comes after that list.
                model.held_events.push(event);
                return Vec::new();
            }
            on_sync(model, event)
        }
        Msg::Elsewhere(service, event) => {
            elsewhere(model, service, event);
            Vec::new()
        }
        Msg::ServiceLoaded(loaded) => {
            if model.switching != Some(loaded.service) {
                return Vec::new();
            }
            switched(model, *loaded)
        }
        Msg::ServiceFailed { service, error } => {
            if model.switching == Some(service) {
                model.switching = None;
                model.held_events.clear();
                model.notice = None;
                model.error = Some(format!(
                    "cannot show the {} list: {error}",
                    service.display_name()
                ));
            }
            Vec::new()
        }
        Msg::Searched {
            kind,
            query,
            result,
        } => {
            if let Some(Overlay::Search(search)) = &mut model.overlay
                && search.kind == kind
                && search.sent.as_deref() == Some(query.as_str())
            {
                search.searching = false;
                search.selected = 0;
                search.results = Some(result);
            }
            Vec::new()
        }
        Msg::DetailsLoaded { key, result } => on_details(model, key, result.map(|d| *d)),
        Msg::CoverLoaded { key, cover } => {
            if let Some(Overlay::Details(pane)) = &mut model.overlay
                && pane.key == key
            {
                pane.cover = Some(cover);
            }
            Vec::new()
        }
        Msg::Shutdown => {
            model.quit = true;
            Vec::new()
        }
    }
}

fn on_key(model: &mut Model, key: KeyEvent) -> Vec<Effect> {
    let action = model.keys.action(&key);
    // Ctrl-C quits from anywhere, also while a search or a prompt takes the keys.
    if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
        model.quit = true;
        return Vec::new();
    }
    match model.overlay.take() {
        Some(Overlay::Help) => {
            // Any key closes the help; quit still quits.
            if action == Some(Action::Quit) && !is_esc(&key) {
                model.quit = true;
            }
            Vec::new()
        }
        Some(Overlay::Prompt(prompt)) => on_prompt(model, prompt, key),
        Some(Overlay::Details(pane)) => on_details_key(model, pane, key, action),
        Some(Overlay::Search(search)) => on_search_key(model, search, key),
        None if model.filter.editing => {
            on_filter_key(model, key);
            Vec::new()
        }
        None => match action {
            Some(action) => act(model, action),
            None if is_esc(&key) && !model.filter.query.is_empty() => {
                model.filter.query.clear();
                refresh(model);
                Vec::new()
            }
            None => Vec::new(),
        },
    }
}

fn is_esc(key: &KeyEvent) -> bool {
    key.code == KeyCode::Esc
}

/// A character typed into a text field (no Ctrl/Alt).
fn typed(key: &KeyEvent) -> Option<char> {
    match key.code {
        KeyCode::Char(c)
            if !key
                .modifiers
                .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT) =>
        {
            Some(c)
        }
        _ => None,
    }
}

fn act(model: &mut Model, action: Action) -> Vec<Effect> {
    model.notice = None;
    let last = model.visible.len().saturating_sub(1);
    let page = model.list_height.saturating_sub(1).max(1);
    match action {
        Action::Down => select(model, (model.selected + 1).min(last)),
        Action::Up => select(model, model.selected.saturating_sub(1)),
        Action::Top => select(model, 0),
        Action::Bottom => select(model, last),
        Action::PageDown => select(model, (model.selected + page).min(last)),
        Action::PageUp => select(model, model.selected.saturating_sub(page)),
        Action::NextTab => switch_tab(model, (model.tab.index() + 1) % Status::ALL.len()),
        Action::PrevTab => switch_tab(
            model,
            (model.tab.index() + Status::ALL.len() - 1) % Status::ALL.len(),
        ),
        Action::SwitchKind => switch_kind(model),
        Action::SwitchService => return switch_service(model),
        Action::Increment => return step(model, true),
        Action::Decrement => return step(model, false),
        Action::SetCount => {
            if let Some(row) = model.selected_row() {
                let input = String::new();
                model.overlay = Some(Overlay::Prompt(Prompt::Count {
                    key: row.key(),
                    input,
                }));
            }
        }
        Action::Score if !model.scores => {
            model.notice = Some(format!(
                "{} lists keep no scores",
                model.service.display_name()
            ));
        }
        Action::Score => {
            if let Some(row) = model.selected_row() {
                model.overlay = Some(Overlay::Prompt(Prompt::Score {
                    key: row.key(),
                    choice: row.entry.score.min(model.score_format.max()),
                    typed: String::new(),
                }));
            }
        }
        Action::SetStatus => {
            if let Some(row) = model.selected_row() {
                model.overlay = Some(Overlay::Prompt(Prompt::Status {
                    key: row.key(),
                    choice: row.entry.status.index(),
                }));
            }
        }
        Action::Repeat => {
            if let Some(key) = model.selected_key() {
                let on = model.row(key).is_some_and(|r| !r.entry.repeating);
                return edit(model, key, Change::Set(rules::repeating(on)));
            }
        }
        Action::Delete => {
            if let Some(key) = model.selected_key() {
                model.overlay = Some(Overlay::Prompt(Prompt::Delete { key }));
            }
        }
        Action::Details => return open_details(model),
        Action::Add => {
            model.overlay = Some(Overlay::Search(Box::new(Search::new(model.kind))));
        }
        Action::Filter => model.filter.editing = true,
        Action::Sort => {
            model.sort = model.sort.next();
            refresh(model);
            model.notice = Some(format!("sorted by {}", model.sort.label()));
        }
        Action::Refresh => return start_fetch(model),
        Action::Retry => return settle_refusal(model, true),
        Action::Discard => return settle_refusal(model, false),
        Action::Help => model.overlay = Some(Overlay::Help),
        Action::Quit => model.quit = true,
    }
    Vec::new()
}

fn select(model: &mut Model, index: usize) {
    model.selected = index;
    scroll_into_view(model);
}

fn switch_tab(model: &mut Model, index: usize) {
    model.tab = Status::ALL[index.min(Status::ALL.len() - 1)];
    model.selected = 0;
    model.offset = 0;
    refresh(model);
}

/// Goes on to the next logged-in service: its list is read from the cache first.
fn switch_service(model: &mut Model) -> Vec<Effect> {
    if model.switching.is_some() {
        return Vec::new();
    }
    if model.services.len() < 2 {
        let other = Service::LOGGABLE
            .into_iter()
            .find(|s| *s != model.service)
            .unwrap_or(Service::Mal);
        model.notice = Some(format!(
            "only {} is logged in; `{}` adds {}",
            model.service.display_name(),
            other.login_command(),
            other.display_name()
        ));
        return Vec::new();
    }
    let at = model
        .services
        .iter()
        .position(|s| *s == model.service)
        .unwrap_or(0);
    let next = model.services[(at + 1) % model.services.len()];
    model.switching = Some(next);
    model.notice = Some(format!("opening {}…", next.display_name()));
    vec![Effect::SwitchService(next)]
}

/// A list synced longer ago than this is fetched again when switched to.
const STALE_AFTER: jiff::SignedDuration = jiff::SignedDuration::from_mins(10);

/// Shows the service switched to, keeping what is known of the one left.
fn switched(model: &mut Model, loaded: Loaded) -> Vec<Effect> {
    let mut take_aside =
        |service: Service| match model.asides.iter().position(|(s, _)| *s == service) {
            Some(i) => model.asides.remove(i).1,
            None => Aside::default(),
        };
    let arriving = take_aside(loaded.service);
    // Reports for the service left that came while switching are newer than the screen's.
    let latest = take_aside(model.service);
    let left = Aside {
        login_needed: latest.login_needed.or(model.login_needed.take()),
        session_warning: latest.session_warning.or(model.session_warning.take()),
        kind: Some(model.kind),
    };
    model.asides.push((model.service, left));
    let name = loaded.service.display_name();
    let stale = loaded
        .last_sync
        .is_none_or(|at| model.now.duration_since(at) > STALE_AFTER);
    if let Some(kind) = arriving.kind.filter(|k| loaded.kinds.contains(k)) {
        model.kind = kind;
    }
    show_service(model, loaded);
    model.switching = None;
    model.login_needed = arriving.login_needed;
    model.session_warning = arriving.session_warning;
    model.notice = Some(format!("showing {name}"));
    let mut effects = if stale {
        start(model)
    } else if model.pending() > 0 {
        vec![Effect::SendNow]
    } else {
        Vec::new()
    };
    for event in std::mem::take(&mut model.held_events) {
        effects.extend(on_sync(model, event));
    }
    effects
}

/// Shows one service's list as the cache holds it, the view reset to its top.
pub fn show_service(model: &mut Model, loaded: Loaded) {
    model.service = loaded.service;
    model.account = loaded.account;
    if !loaded.kinds.contains(&model.kind) {
        model.kind = loaded.kinds.first().copied().unwrap_or(model.kind);
    }
    model.kinds = loaded.kinds;
    model.score_format = loaded.score_format;
    model.scores = loaded.scores;
    model.volumes = loaded.volumes;
    model.latest_chapters = loaded.latest_chapters;
    model.last_sync = loaded.last_sync;
    model.fetching = None;
    model.link = Link::Unknown;
    model.retry = None;
    model.error = None;
    model.trouble = None;
    model.overlay = None;
    model.declined.clear();
    model.filter = Default::default();
    model.selected = 0;
    model.offset = 0;
    model.load(loaded.entries, &loaded.pending, &loaded.refused);
    refresh(model);
}

/// A report from a logged-in service not shown: only what its session needs is kept (its list
/// is read from the cache when switched to).
fn elsewhere(model: &mut Model, service: Service, event: Event) {
    let aside = match model.asides.iter().position(|(s, _)| *s == service) {
        Some(i) => &mut model.asides[i].1,
        None => {
            model.asides.push((service, Aside::default()));
            match model.asides.last_mut() {
                Some((_, aside)) => aside,
                None => return,
            }
        }
    };
    match event {
        Event::LoginNeeded(error)
            if aside.login_needed.is_none() || matches!(error, ProviderError::LoginDamaged(_)) =>
        {
            aside.login_needed = Some(login_message(service, &error));
        }
        Event::LoginRestored => aside.login_needed = None,
        Event::SessionWarning(warning) => aside.session_warning = warning,
        _ => {}
    }
}

/// A login problem in words, with the command that logs in to this service.
fn login_message(service: Service, error: &ProviderError) -> String {
    error.for_service(service)
}

fn switch_kind(model: &mut Model) {
    if model.kinds.len() < 2 {
        model.notice = Some(format!(
            "{} keeps only {} lists",
            model.service.display_name(),
            model.kind.label().to_lowercase()
        ));
        return;
    }
    model.kind = model.kind.other();
    model.selected = 0;
    model.offset = 0;
    refresh(model);
}

/// Shows the entry with `key`: its kind and tab, selected.
fn go_to(model: &mut Model, key: Key) {
    let Some(status) = model.row(key).map(|r| r.entry.status) else {
        return;
    };
    model.kind = key.0;
    model.tab = status;
    if !model.filter.query.is_empty() {
        model.filter.query.clear();
    }
    model.visible.clear();
    refresh(model);
    reselect(model, Some(key));
}

/// Sends a change to one entry: shown at once, queued as one request.
fn edit(model: &mut Model, key: Key, change: Change) -> Vec<Effect> {
    let online = model.link == Link::Online && model.login_needed.is_none();
    let Some(row) = model.row_mut(key.0, key.1) else {
        return Vec::new();
    };
    // Sent without looking first only when the screen shows what the service holds: this run has
    // heard from it, nothing failed since, and the entry is not in conflict.
    let fresh = online && !row.in_conflict();
    let staged = row.stage(change);
    let effect = Effect::Enqueue {
        kind: key.0,
        media_id: key.1,
        change: staged.change,
        base: staged.base,
        fresh,
        entry: None,
        base_state: staged.base_state,
    };
    let selected = model.selected_key();
    refresh(model);
    // A row that moved to another tab (or was removed) leaves the selection where it was.
    if model.selected_key() != selected {
        scroll_into_view(model);
    }
    vec![effect]
}

/// `+` or `-` on the selected entry.
fn step(model: &mut Model, up: bool) -> Vec<Effect> {
    let Some(key) = model.selected_key() else {
        return Vec::new();
    };
    step_on(model, key, up)
}

fn step_on(model: &mut Model, key: Key, up: bool) -> Vec<Effect> {
    let Some(entry) = model.row(key).map(|r| r.entry.clone()) else {
        return Vec::new();
    };
    let planned = rules::stepped(&entry, if up { 1 } else { -1 })
        .and_then(|next| rules::progress(&entry, next, None, &model.today()));
    let patch = match planned {
        Ok(Some(patch)) => patch,
        Ok(None) => return Vec::new(),
        Err(e) => {
            model.notice = Some(e.to_string());
            return Vec::new();
        }
    };
    let moved = patch.status;
    let effects = edit(model, key, Change::Set(patch));
    if let Some(status) = moved {
        model.notice = Some(format!(
            "{} moved to {}",
            entry.title,
            status.label(entry.kind)
        ));
    }
    if up {
        ask_completion(model, key);
    }
    effects
}

/// Reaching the last known episode asks, once, whether to mark the entry completed.
fn ask_completion(model: &mut Model, key: Key) {
    if model
        .row(key)
        .is_some_and(|row| rules::completion_offered(&row.entry))
        && !model.declined.contains(&key)
    {
        model.overlay = Some(Overlay::Prompt(Prompt::Complete { key }));
    }
}

fn on_prompt(model: &mut Model, prompt: Prompt, key: KeyEvent) -> Vec<Effect> {
    let entry_key = prompt.key();
    let Some(entry) = model.row(entry_key).map(|r| r.entry.clone()) else {
        return Vec::new();
    };
    let today = model.today();
    let keep = |model: &mut Model, p: Prompt| {
        model.overlay = Some(Overlay::Prompt(p));
        Vec::new()
    };
    match prompt {
        Prompt::Count { key: k, mut input } => match key.code {
            KeyCode::Esc => Vec::new(),
            KeyCode::Enter => {
                let mut numbers = input.split_whitespace().map(str::parse::<u32>);
                let count = numbers.next();
                let volumes = numbers.next();
                let (Some(Ok(count)), None | Some(Ok(_))) = (count, volumes.clone()) else {
                    model.notice = Some("type a number".into());
                    return keep(model, Prompt::Count { key: k, input });
                };
                // Volumes are counted for manga only, where the service keeps them.
                let volumes = volumes
                    .and_then(Result::ok)
                    .filter(|_| entry.kind == MediaKind::Manga && model.volumes);
                let patch = match rules::progress(&entry, count, volumes, &today) {
                    Ok(Some(patch)) => patch,
                    Ok(None) => return Vec::new(),
                    Err(e) => {
                        model.notice = Some(e.to_string());
                        return keep(model, Prompt::Count { key: k, input });
                    }
                };
                let effects = edit(model, k, Change::Set(patch));
                ask_completion(model, k);
                effects
            }
            KeyCode::Backspace => {
                input.pop();
                keep(model, Prompt::Count { key: k, input })
            }
            _ => {
                if let Some(c) = typed(&key).filter(|c| c.is_ascii_digit() || *c == ' ')
                    && input.len() < 12
                {
                    input.push(c);
                }
                keep(model, Prompt::Count { key: k, input })
            }
        },
        Prompt::Score {
            key: k,
            choice,
            mut typed,
        } => {
            let format = model.score_format;
            let choice = match key.code {
                KeyCode::Esc => return Vec::new(),
                KeyCode::Enter => {
                    return match rules::score(&entry, choice) {
                        Some(patch) => edit(model, k, Change::Set(patch)),
                        None => Vec::new(),
                    };
                }
                KeyCode::Down | KeyCode::Char('j') => {
                    typed.clear();
                    format.stepped(choice, false)
                }
                KeyCode::Up | KeyCode::Char('k') => {
                    typed.clear();
                    format.stepped(choice, true)
                }
                KeyCode::Backspace => {
                    typed.pop();
                    format.parse(&typed).unwrap_or(0)
                }
                KeyCode::Char(c)
                    if c.is_ascii_digit()
                        || (c == '.' && format == crate::domain::ScoreFormat::Point10Decimal) =>
                {
                    // Digits add up while they make a score ("1" then "0" is 10); one that
                    // does not starts a new number.
                    typed.push(c);
                    match format.parse(&typed) {
                        Some(n) => n,
                        None => {
                            typed = c.to_string();
                            format.parse(&typed).unwrap_or(choice)
                        }
                    }
                }
                _ => choice,
            };
            keep(
                model,
                Prompt::Score {
                    key: k,
                    choice,
                    typed,
                },
            )
        }
        Prompt::Status { key: k, choice } => {
            let last = Status::ALL.len() - 1;
            let choice = match key.code {
                KeyCode::Esc => return Vec::new(),
                KeyCode::Enter => {
                    let status = Status::ALL[choice.min(last)];
                    let Some(patch) = rules::status(&entry, status, &today) else {
                        return Vec::new();
                    };
                    let effects = edit(model, k, Change::Set(patch));
                    model.notice = Some(format!(
                        "{} moved to {}",
                        entry.title,
                        status.label(entry.kind)
                    ));
                    return effects;
                }
                KeyCode::Down | KeyCode::Char('j') => (choice + 1).min(last),
                KeyCode::Up | KeyCode::Char('k') => choice.saturating_sub(1),
                KeyCode::Char(c @ '1'..='5') => usize::from(c as u8 - b'1'),
                _ => choice,
            };
            keep(model, Prompt::Status { key: k, choice })
        }
        Prompt::Complete { key: k } => match key.code {
            KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter => {
                let effects = edit(model, k, Change::Set(rules::completion(&entry, &today)));
                model.notice = Some(format!("{} marked completed", entry.title));
                effects
            }
            KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => {
                model.declined.insert(k);
                Vec::new()
            }
            _ => keep(model, Prompt::Complete { key: k }),
        },
        Prompt::Delete { key: k } => match key.code {
            KeyCode::Char('y') | KeyCode::Char('Y') => {
                let effects = edit(model, k, Change::Remove);
                model.notice = Some(format!("{} removed from your list", entry.title));
                effects
            }
            _ => Vec::new(),
        },
    }
}

fn open_details(model: &mut Model) -> Vec<Effect> {
    let Some(key) = model.selected_key() else {
        return Vec::new();
    };
    model.overlay = Some(Overlay::Details(Box::new(DetailsPane {
        key,
        details: None,
        cover: None,
        scroll: 0,
    })));
    vec![Effect::LoadDetails { key }]
}

fn on_details(
    model: &mut Model,
    key: Key,
    result: Result<crate::providers::Details, String>,
) -> Vec<Effect> {
    let Some(Overlay::Details(pane)) = &mut model.overlay else {
        return Vec::new();
    };
    if pane.key != key {
        return Vec::new();
    }
    let picture = result.as_ref().ok().and_then(|d| d.picture.clone());
    pane.details = Some(result);
    match picture {
        Some(url) if model.images => {
            let (cols, rows) = view::cover_cells(model.width, model.height);
            if cols == 0 || rows == 0 {
                return Vec::new();
            }
            vec![Effect::LoadCover {
                key,
                url,
                cols,
                rows,
            }]
        }
        _ => Vec::new(),
    }
}

fn on_details_key(
    model: &mut Model,
    mut pane: Box<DetailsPane>,
    key: KeyEvent,
    action: Option<Action>,
) -> Vec<Effect> {
    match (key.code, action) {
        (KeyCode::Esc | KeyCode::Enter, _) | (_, Some(Action::Details)) => {}
        (_, Some(Action::Quit)) => {}
        (_, Some(Action::Down)) => {
            pane.scroll = pane.scroll.saturating_add(1);
            model.overlay = Some(Overlay::Details(pane));
        }
        (_, Some(Action::Up)) => {
            pane.scroll = pane.scroll.saturating_sub(1);
            model.overlay = Some(Overlay::Details(pane));
        }
        // Progress can be kept while reading about the entry.
        (_, Some(action @ (Action::Increment | Action::Decrement))) => {
            let key = pane.key;
            model.overlay = Some(Overlay::Details(pane));
            let effects = step_on(model, key, action == Action::Increment);
            return effects;
        }
        _ => model.overlay = Some(Overlay::Details(pane)),
    }
    Vec::new()
}

fn on_search_key(model: &mut Model, mut search: Box<Search>, key: KeyEvent) -> Vec<Effect> {
    let found = search
        .results
        .as_ref()
        .and_then(|r| r.as_ref().ok())
        .map_or(0, Vec::len);
    if let Some(choice) = search.choosing {
        let last = Status::ALL.len() - 1;
        match key.code {
            KeyCode::Esc => search.choosing = None,
            KeyCode::Down | KeyCode::Char('j') => search.choosing = Some((choice + 1).min(last)),
            KeyCode::Up | KeyCode::Char('k') => search.choosing = Some(choice.saturating_sub(1)),
            KeyCode::Char(c @ '1'..='5') => search.choosing = Some(usize::from(c as u8 - b'1')),
            KeyCode::Enter => return add_found(model, &search, Status::ALL[choice.min(last)]),
            _ => {}
        }
        model.overlay = Some(Overlay::Search(search));
        return Vec::new();
    }
    let mut effects = Vec::new();
    match key.code {
        KeyCode::Esc => return Vec::new(),
        KeyCode::Down => search.selected = (search.selected + 1).min(found.saturating_sub(1)),
        KeyCode::Up => search.selected = search.selected.saturating_sub(1),
        KeyCode::Tab | KeyCode::BackTab if model.kinds.len() > 1 => {
            search.kind = search.kind.other();
            search.results = None;
            search.sent = None;
            search.searching = false;
        }
        KeyCode::Backspace => {
            search.input.pop();
        }
        KeyCode::Enter => {
            let query = search.input.trim().to_string();
            let stale = search.sent.as_deref() != Some(query.as_str());
            if stale || search.results.as_ref().is_some_and(Result::is_err) {
                if let Err(short) = crate::domain::query::search_text(&query) {
                    search.results = Some(Err(short));
                } else {
                    search.sent = Some(query.clone());
                    search.searching = true;
                    search.results = None;
                    search.selected = 0;
                    effects.push(Effect::Search {
                        kind: search.kind,
                        query,
                    });
                }
            } else if let Some(f) = search
                .results
                .as_ref()
                .and_then(|r| r.as_ref().ok())
                .and_then(|r| r.get(search.selected))
            {
                let key = (f.entry.kind, f.entry.id);
                if model.row(key).is_some_and(|r| !r.removing) {
                    // Already on the list: show it there.
                    go_to(model, key);
                    return Vec::new();
                }
                search.choosing = Some(Status::Planning.index());
            }
        }
        _ => {
            if let Some(c) = typed(&key)
                && search.input.chars().count() < 100
            {
                search.input.push(c);
            }
        }
    }
    model.overlay = Some(Overlay::Search(search));
    effects
}

/// Adds the selected search result with `status`: shown at once, queued as one request.
fn add_found(model: &mut Model, search: &Search, status: Status) -> Vec<Effect> {
    let Some(found) = search
        .results
        .as_ref()
        .and_then(|r| r.as_ref().ok())
        .and_then(|r| r.get(search.selected))
    else {
        return Vec::new();
    };
    let today = model.today();
    let mut entry = found.entry.clone();
    let patch = rules::addition(&entry, status, &today);
    let key = (entry.kind, entry.id);
    let listed = match model.row_index(key.0, key.1) {
        // A removal of it may still be on its way: the row comes back.
        Some(i) => model.rows[i].confirmed.is_some() && !model.rows[i].removing,
        None => {
            entry.status = status;
            let mut row = Row::new(entry.clone());
            row.confirmed = None;
            model.rows.push(row);
            false
        }
    };
    let title = entry.title.clone();
    let Some((staged, shown)) = model.row_mut(key.0, key.1).map(|row| {
        let staged = row.stage_addition(Change::Set(patch), listed);
        (staged, row.entry.clone())
    }) else {
        return Vec::new();
    };
    go_to(model, key);
    model.notice = Some(format!("added {title} to {}", status.label(key.0)));
    vec![Effect::Enqueue {
        kind: key.0,
        media_id: key.1,
        change: staged.change,
        base: staged.base,
        // Checked first: it may be on the list already, added elsewhere.
        fresh: false,
        entry: Some(Box::new(shown)),
        base_state: staged.base_state,
    }]
}

fn on_filter_key(model: &mut Model, key: KeyEvent) {
    match key.code {
        KeyCode::Esc => {
            model.filter.editing = false;
            model.filter.query.clear();
        }
        KeyCode::Enter | KeyCode::Down | KeyCode::Up => model.filter.editing = false,
        KeyCode::Backspace => {
            model.filter.query.pop();
        }
        _ => {
            if let Some(c) = typed(&key)
                && model.filter.query.chars().count() < 100
            {
                model.filter.query.push(c);
            }
        }
    }
    model.selected = 0;
    model.offset = 0;
    refresh(model);
    model.selected = 0;
    scroll_into_view(model);
}

fn on_mouse(model: &mut Model, mouse: crossterm::event::MouseEvent) {
    match mouse.kind {
        MouseEventKind::ScrollDown => {
            if let Some(Overlay::Details(pane)) = &mut model.overlay {
                pane.scroll = pane.scroll.saturating_add(1);
            } else if model.overlay.is_none() {
                let last = model.visible.len().saturating_sub(1);
                select(model, (model.selected + 3).min(last));
            }
        }
        MouseEventKind::ScrollUp => {
            if let Some(Overlay::Details(pane)) = &mut model.overlay {
                pane.scroll = pane.scroll.saturating_sub(1);
            } else if model.overlay.is_none() {
                select(model, model.selected.saturating_sub(3));
            }
        }
        MouseEventKind::Down(MouseButton::Left) if model.overlay.is_none() => {
            if mouse.row == view::TABS_ROW {
                if let Some(status) = view::tab_at(model, mouse.column) {
                    switch_tab(model, status.index());
                }
            } else if mouse.row >= view::LIST_TOP {
                let line = model.offset + usize::from(mouse.row - view::LIST_TOP);
                if line < model.visible.len() && line < model.offset + model.list_height {
                    select(model, line);
                }
            }
        }
        _ => {}
    }
}

/// Sends the selected entry's refused change again, or drops it.
fn settle_refusal(model: &mut Model, retry: bool) -> Vec<Effect> {
    let Some(key) = model.selected_key() else {
        return Vec::new();
    };
    let (kind, media_id) = key;
    let Some(row) = model.row_mut(kind, media_id) else {
        return Vec::new();
    };
    let Some(refusal) = row.refused.take() else {
        let title = row.entry.title.clone();
        model.notice = Some(format!("{title} has no refused change"));
        return Vec::new();
    };
    if retry {
        model.error = None;
        let Some(row) = model.row_mut(kind, media_id) else {
            return Vec::new();
        };
        // Also "keep mine" in a conflict: the waiting changes go out as they are.
        row.pending += refusal.count;
        if let Some(shown) = &refusal.shown {
            row.entry.set_state(shown);
        }
        return vec![Effect::RetryRefused { kind, media_id }];
    }
    // "Keep theirs" in a conflict: the service's state is the truth.
    model.error = None;
    let Some(row) = model.row_mut(kind, media_id) else {
        return Vec::new();
    };
    if row.pending == 0 {
        row.removing = false;
        if row.confirmed.is_none() {
            // An addition that was refused: it was never on the list.
            if let Some(i) = model.row_index(kind, media_id) {
                model.rows.remove(i);
            }
        } else {
            row.show_confirmed();
        }
    }
    refresh(model);
    vec![Effect::DropRefused { kind, media_id }]
}

fn start_fetch(model: &mut Model) -> Vec<Effect> {
    if model.fetching.is_some() {
        return Vec::new();
    }
    model.fetching = Some(Fetching {
        remaining: model.kinds.clone(),
        ..Fetching::default()
    });
    model.kinds.iter().map(|k| Effect::Fetch(*k)).collect()
}

/// The first thing the runtime does: show the cache, then refresh it and send what is queued.
pub fn start(model: &mut Model) -> Vec<Effect> {
    refresh(model);
    let mut effects = start_fetch(model);
    if model.pending() > 0 {
        effects.push(Effect::SendNow);
    }
    effects
}

/// One fewer change on its way for a row; when none is left, the row shows what the service
/// holds (or goes, when the service holds nothing).
fn settle(model: &mut Model, key: Key, by: u32) {
    let Some(i) = model.row_index(key.0, key.1) else {
        return;
    };
    let row = &mut model.rows[i];
    row.pending = row.pending.saturating_sub(by);
    if row.pending == 0 && !row.in_conflict() {
        if row.confirmed.is_none() && row.refused.is_none() {
            model.rows.remove(i);
            return;
        }
        row.removing = false;
        row.show_confirmed();
    }
}

fn on_sync(model: &mut Model, event: Event) -> Vec<Effect> {
    match event {
        Event::ListProgress { kind, received } => {
            if let Some(f) = &mut model.fetching {
                match f.received.iter_mut().find(|(k, _)| *k == kind) {
                    Some(slot) => slot.1 = received,
                    None => f.received.push((kind, received)),
                }
            }
        }
        Event::ListFetched {
            kind,
            entries,
            unreadable,
            score_format,
            at,
        } => {
            if let Some(format) = score_format {
                model.score_format = format;
            }
            let (meanwhile, troubled) = match &mut model.fetching {
                Some(f) => {
                    f.remaining.retain(|k| *k != kind);
                    let meanwhile = f.confirmed_meanwhile.clone();
                    let troubled = f.troubled;
                    f.troubled |= unreadable > 0;
                    if f.remaining.is_empty() {
                        model.fetching = None;
                    }
                    (meanwhile, troubled)
                }
                None => Default::default(),
            };
            model.last_sync = Some(at);
            model.login_needed = None;
            if !troubled {
                // Another list of this round failed: what was said about it stays.
                model.link = Link::Online;
                model.trouble = None;
            }
            merge(model, kind, entries, &meanwhile, unreadable > 0);
            if unreadable > 0 {
                model.trouble = Some(format!(
                    "{unreadable} {} entr{} could not be read and keep{} {} last known values",
                    kind.label().to_lowercase(),
                    if unreadable == 1 { "y" } else { "ies" },
                    if unreadable == 1 { "s" } else { "" },
                    if unreadable == 1 { "its" } else { "their" },
                ));
            }
        }
        Event::ListFailed { kind, error } => {
            if let Some(f) = &mut model.fetching {
                f.remaining.retain(|k| *k != kind);
                f.troubled = true;
                if f.remaining.is_empty() {
                    model.fetching = None;
                }
            }
            let check = error.needs_login() && model.login_needed.is_none();
            failure(model, error);
            if check {
                return vec![Effect::CheckLogin];
            }
        }
        Event::Delivered {
            kind,
            media_id,
            state,
            ..
        } => {
            if let Some(f) = &mut model.fetching {
                f.confirmed_meanwhile.insert((kind, media_id));
            }
            model.link = Link::Online;
            model.trouble = None;
            model.login_needed = None;
            if let Some(row) = model.row_mut(kind, media_id) {
                row.confirmed = state;
            }
            settle(model, (kind, media_id), 1);
            refresh(model);
            if model.pending() == 0 {
                model.retry = None;
            }
        }
        Event::Retrying { error, next_at, .. } => {
            model.retry = Some((error.to_string(), next_at));
            failure(model, error);
        }
        Event::Refused {
            kind,
            media_id,
            what,
            error,
        } => {
            let reason = error.to_string();
            let retry = first_key(model, Action::Retry);
            let discard = first_key(model, Action::Discard);
            match model.row_mut(kind, media_id) {
                Some(row) => {
                    let count = row.refused.as_ref().map_or(0, |r| r.count) + 1;
                    row.refused = Some(Box::new(Refusal {
                        what: what.clone(),
                        count,
                        reason: reason.clone(),
                        conflict: false,
                        shown: Some(row.entry.state()),
                    }));
                    model.error = Some(format!(
                        "{}: {what} refused: {reason} ({retry} retry, {discard} drop)",
                        row.entry.title
                    ));
                    settle(model, (kind, media_id), 1);
                }
                None => model.error = Some(reason),
            }
            refresh(model);
        }
        Event::Conflict {
            kind,
            media_id,
            mine,
            theirs,
            state,
            held,
        } => {
            let keep_mine = first_key(model, Action::Retry);
            let keep_theirs = first_key(model, Action::Discard);
            let service = model.service.short_name();
            if let Some(row) = model.row_mut(kind, media_id) {
                row.pending = row.pending.saturating_sub(held);
                row.confirmed = state;
                let reason = format!("{service} says {theirs}, you set {mine}");
                let message = format!(
                    "{}: {reason} ({keep_mine} keep yours, {keep_theirs} keep {service}'s)",
                    row.entry.title
                );
                row.refused = Some(Box::new(Refusal {
                    what: mine,
                    count: held,
                    reason,
                    conflict: true,
                    shown: Some(row.entry.state()),
                }));
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
        Event::SessionWarning(warning) => model.session_warning = warning,
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
        }
        Event::NotSaved {
            kind,
            media_id,
            error,
        } => {
            settle(model, (kind, media_id), 1);
            refresh(model);
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
        model.login_needed = Some(login_message(model.service, error));
    }
}

fn failure(model: &mut Model, error: ProviderError) {
    match error {
        ProviderError::Offline(reason) => model.link = Link::Offline(reason),
        e if e.needs_login() => needs_login(model, &e),
        e => model.trouble = Some(e.to_string()),
    }
}

/// Takes a freshly fetched list of one kind, keeping what the user changed and the service has
/// not confirmed.
fn merge(
    model: &mut Model,
    kind: MediaKind,
    entries: Vec<ListEntry>,
    confirmed_meanwhile: &std::collections::HashSet<Key>,
    keep_missing: bool,
) {
    let selected = model.selected_key();
    // Rows are large and lists long: they are updated where they are, found by an index, and no
    // second copy of the list is built.
    let index: std::collections::HashMap<u64, usize> = model
        .rows
        .iter()
        .enumerate()
        .filter(|(_, r)| r.entry.kind == kind)
        .map(|(i, r)| (r.entry.id, i))
        .collect();
    let mut answered = vec![false; model.rows.len()];
    for fetched in entries.into_iter().filter(|e| e.kind == kind) {
        let Some(&i) = index.get(&fetched.id) else {
            // Not shown, yet confirmed while the list was read: removed meanwhile.
            if !confirmed_meanwhile.contains(&(kind, fetched.id)) {
                model.rows.push(Row::new(fetched));
            }
            continue;
        };
        answered[i] = true;
        let prev = &mut model.rows[i];
        let mut row = Row::new(fetched);
        if confirmed_meanwhile.contains(&prev.key()) {
            // The list was read before that change arrived: keep what it confirmed.
            row.confirmed = prev.confirmed.take();
            row.show_confirmed();
        }
        if prev.pending > 0 || prev.in_conflict() {
            // Unconfirmed changes, or a conflict: the user's values stay on screen.
            row.entry.set_state(&prev.entry.state());
            row.removing = prev.removing;
        }
        row.pending = prev.pending;
        row.refused = prev.refused.take();
        *prev = row;
    }
    // Rows the answer does not have go, except additions on their way, refused changes, and
    // (when items could not be read) what was known.
    let mut at = 0;
    model.rows.retain(|r| {
        let keep = r.entry.kind != kind
            || answered.get(at).is_none_or(|a| *a)
            || keep_missing
            || r.pending > 0
            || r.refused.is_some();
        at += 1;
        keep
    });
    model.visible.clear();
    refresh(model);
    reselect(model, selected);
}

#[cfg(test)]
#[path = "update_tests.rs"]
mod tests;
