//! Draws the model. Pure: the same model always draws the same screen.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row as TableRow, Table, Wrap};

use super::list::matched_chars;
use super::model::{DetailsPane, Link, Model, Overlay, Prompt, Row, Search};
use crate::config::Action;
use crate::domain::airing::{AiringState, countdown, local_label};
use crate::domain::{MediaKind, ScoreFormat, Status};

const SPINNER: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

/// The screen row of the status tabs.
pub const TABS_ROW: u16 = 1;
/// The screen row of the list's first line (after title, tabs and the table header).
pub const LIST_TOP: u16 = 3;

pub fn view(model: &Model, frame: &mut Frame) {
    let [title, tabs, list, status, hints] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    frame.render_widget(title_bar(model, title.width), title);
    frame.render_widget(tab_bar(model), tabs);
    draw_list(model, frame, list);
    frame.render_widget(status_bar(model), status);
    frame.render_widget(hint_bar(model), hints);
    match &model.overlay {
        Some(Overlay::Help) => draw_help(model, frame),
        Some(Overlay::Prompt(p)) => draw_prompt(model, p, frame),
        Some(Overlay::Details(pane)) => draw_details(model, pane, frame),
        Some(Overlay::Search(search)) => draw_search(model, search, frame),
        None => {}
    }
}

fn title_bar(model: &Model, width: u16) -> Line<'static> {
    let kinds: Vec<Span<'static>> = model
        .kinds
        .iter()
        .flat_map(|k| {
            let style = if *k == model.kind {
                Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
            } else {
                Style::new().add_modifier(Modifier::DIM)
            };
            [Span::raw(" "), Span::styled(k.label(), style)]
        })
        .collect();
    let left = " malt ·";
    let right = match &model.account {
        Some(name) => format!("{name} @ {} ", model.service.display_name()),
        None => format!("{} ", model.service.display_name()),
    };
    let kinds_width: usize = model.kinds.iter().map(|k| k.label().len() + 1).sum();
    let used = left.chars().count() + kinds_width + right.chars().count();
    // Where both do not fit, the account gives way to the list's name.
    let right = if used > usize::from(width) {
        String::new()
    } else {
        right
    };
    let gap = usize::from(width)
        .saturating_sub(left.chars().count() + kinds_width + right.chars().count());
    let mut spans = vec![Span::raw(left)];
    spans.extend(kinds);
    spans.push(Span::raw(" ".repeat(gap)));
    spans.push(Span::raw(right));
    Line::from(spans).style(model.theme.title)
}

/// The tabs' labels and where each starts and ends on the tab row.
pub fn tab_spans(model: &Model) -> Vec<(Status, String, u16, u16)> {
    let counts = model.tab_counts();
    let mut x = 1u16;
    Status::ALL
        .into_iter()
        .map(|s| {
            let label = format!(" {} {} ", s.label(model.kind), counts[s.index()]);
            let start = x;
            let width = label.chars().count() as u16;
            x = x.saturating_add(width + 1);
            (s, label, start, start.saturating_add(width))
        })
        .collect()
}

/// The tab under column `x`.
pub fn tab_at(model: &Model, x: u16) -> Option<Status> {
    tab_spans(model)
        .into_iter()
        .find(|(_, _, start, end)| (*start..*end).contains(&x))
        .map(|(s, ..)| s)
}

fn tab_bar(model: &Model) -> Line<'static> {
    let mut spans = vec![Span::raw(" ")];
    for (status, label, ..) in tab_spans(model) {
        let style = if status == model.tab {
            model.theme.tab_active
        } else {
            model.theme.tab
        };
        spans.push(Span::styled(label, style));
        spans.push(Span::raw(" "));
    }
    if model.sort != super::model::Sort::Title {
        spans.push(Span::styled(
            format!(" sorted by {}", model.sort.label()),
            model.theme.dim,
        ));
    }
    Line::from(spans)
}

fn progress_text(row: &Row) -> String {
    let total = row
        .entry
        .total
        .map_or_else(|| "?".to_string(), |t| t.to_string());
    format!("{} / {total}", row.entry.progress)
}

fn volumes_text(row: &Row) -> String {
    let total = row
        .entry
        .total_volumes
        .map_or_else(|| "?".to_string(), |t| t.to_string());
    format!("{} / {total}", row.entry.volumes)
}

/// Whether an episode of a show still airing has aired that the user has not watched (shown as a
/// marker; a finished show the user is behind on is not news).
fn new_episode(model: &Model, row: &Row) -> bool {
    if model.latest_chapters && row.entry.kind == MediaKind::Manga {
        // Chapters out that were not read yet.
        return row.entry.status == Status::Current
            && row
                .entry
                .total
                .is_some_and(|latest| latest > row.entry.progress);
    }
    row.entry.status == Status::Current
        && row
            .entry
            .media
            .schedule
            .as_ref()
            .filter(|s| s.state == AiringState::Airing)
            .and_then(|s| s.aired(model.now))
            .is_some_and(|aired| aired > row.entry.progress)
}

/// The next episode: its local time and a countdown.
fn next_airing(model: &Model, row: &Row) -> Option<String> {
    let next = row.entry.media.schedule.as_ref()?.next_episode(model.now)?;
    let number = next
        .number
        .map_or_else(String::new, |n| format!("ep {n} · "));
    let local = next.at.to_zoned_datetime(model.tz.clone());
    // Within the week the weekday says it; further off, the date.
    let when = if next.at.duration_since(model.now).as_hours() < 6 * 24 {
        local.strftime("%a %H:%M").to_string()
    } else {
        local.strftime("%-d %b").to_string()
    };
    Some(format!(
        "{number}{when} · {}",
        countdown(model.now, next.at)
    ))
}

/// A title with the filter's matched characters highlighted.
fn title_spans(model: &Model, title: &str) -> Vec<Span<'static>> {
    let matched = matched_chars(&model.filter.query, title);
    if matched.is_empty() {
        return vec![Span::raw(title.to_string())];
    }
    title
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if matched.binary_search(&i).is_ok() {
                Span::styled(c.to_string(), model.theme.match_highlight)
            } else {
                Span::raw(c.to_string())
            }
        })
        .collect()
}

fn empty_text(model: &Model) -> String {
    let refresh = first_key(model, Action::Refresh);
    if model.rows.is_empty() {
        if model.fetching.is_some() {
            "Loading your list…".to_string()
        } else if model.login_needed.is_some() {
            format!(
                "Log in to see your list: run `{}` in another terminal.",
                model.service.login_command()
            )
        } else if model.error.is_some() || model.trouble.is_some() {
            format!("Could not load your list (the reason is below). Press {refresh} to try again.")
        } else if let Link::Offline(_) = model.link {
            format!("Offline, and nothing is cached yet. Press {refresh} to try again.")
        } else {
            format!(
                "Nothing on your list yet. Press {} to search and add.",
                first_key(model, Action::Add)
            )
        }
    } else if !model.filter.query.is_empty() {
        format!(
            "Nothing in {} matches “{}”.",
            model.tab.label(model.kind),
            model.filter.query
        )
    } else {
        format!(
            "Nothing in {} {}.",
            model.kind.label().to_lowercase(),
            model.tab.label(model.kind)
        )
    }
}

fn draw_list(model: &Model, frame: &mut Frame, area: Rect) {
    if model.visible.is_empty() {
        let y = area.y + area.height / 2;
        let line = Rect::new(
            area.x,
            y.min(area.bottom().saturating_sub(1)),
            area.width,
            1,
        );
        frame.render_widget(
            Paragraph::new(empty_text(model))
                .centered()
                .style(model.theme.dim),
            line,
        );
        return;
    }
    let manga = model.kind == MediaKind::Manga;
    let extra = if manga { "Volumes" } else { "Next episode" };
    // On a narrow screen the title comes first: the last column gives way.
    let extra_width = match (manga, area.width) {
        (_, w) if w < 60 => 0,
        (true, _) if !model.volumes => 0,
        (true, _) => 9,
        (false, w) if w < 90 => 0,
        (false, _) => 30,
    };
    let score_header = if model.scores { "Score" } else { "" };
    let header =
        TableRow::new(["  Title", "Progress", score_header, extra]).style(model.theme.header);
    let visible = usize::from(area.height.saturating_sub(1));
    let rows = model
        .visible
        .iter()
        .enumerate()
        .skip(model.offset)
        .take(visible)
        .filter_map(|(line, &i)| model.rows.get(i).map(|row| (line, row)))
        .map(|(line, row)| {
            let selected = line == model.selected;
            let score = match model.score_format.show(row.entry.score) {
                shown if shown.is_empty() => "-".to_string(),
                shown => shown,
            };
            let mut title = vec![Span::raw(if selected { "› " } else { "  " })];
            title.extend(title_spans(model, &row.entry.title));
            // The space stays plain: only the marker itself is coloured.
            if row.entry.repeating {
                title.push(Span::raw(" "));
                title.push(Span::styled("↻", model.theme.dim));
            }
            if new_episode(model, row) {
                title.push(Span::raw(" "));
                title.push(Span::styled("●", model.theme.new_episode));
            }
            // The marker sits right after the count it qualifies.
            let progress = if row.pending > 0 {
                Line::from(vec![
                    Span::styled(progress_text(row), model.theme.pending),
                    Span::styled(" ↑", model.theme.pending),
                ])
            } else if row.refused.is_some() {
                Line::from(vec![
                    Span::raw(progress_text(row)),
                    Span::styled(" !", model.theme.error),
                ])
            } else {
                Line::from(progress_text(row))
            };
            let extra = if manga {
                volumes_text(row)
            } else {
                next_airing(model, row).unwrap_or_default()
            };
            let style = if selected {
                model.theme.selected
            } else {
                Style::new()
            };
            TableRow::new(vec![
                Cell::from(Line::from(title)),
                Cell::from(progress),
                Cell::from(Span::styled(score, model.theme.score)),
                Cell::from(Span::styled(extra, model.theme.dim)),
            ])
            .style(style)
        });
    let table = Table::new(
        rows,
        [
            Constraint::Fill(1),
            Constraint::Length(13),
            Constraint::Length(if model.scores { 5 } else { 0 }),
            Constraint::Length(extra_width),
        ],
    )
    .header(header)
    .column_spacing(2);
    frame.render_widget(table, area);
}

fn status_bar(model: &Model) -> Line<'static> {
    let sep = || Span::raw(" · ");
    let theme = &model.theme;
    let mut spans: Vec<Span<'static>> = vec![Span::raw(" ")];
    // With more than one service logged in, which one this is comes first.
    if model.services.len() > 1 {
        spans.push(Span::styled(
            model.service.short_name(),
            Style::new().add_modifier(Modifier::BOLD),
        ));
        spans.push(Span::raw(" │ "));
    }
    if let Some(f) = &model.fetching {
        spans.push(Span::raw(format!(
            "{} syncing… {} entries",
            SPINNER[f.frame % SPINNER.len()],
            f.received.iter().map(|(_, n)| n).sum::<usize>()
        )));
    } else if let Link::Offline(_) = model.link {
        spans.push(Span::styled("offline", theme.pending));
        // Waiting changes say more than the age of the list; both fit on a wide screen.
        if let (Some(at), None) = (model.last_sync, &model.retry) {
            spans.push(Span::raw(format!(
                " — showing the list from {}",
                clock(model, at)
            )));
        }
    } else if let Some(at) = model.last_sync {
        spans.push(Span::raw(format!("synced {}", clock(model, at))));
    } else {
        spans.push(Span::raw("not synced yet"));
    }
    let pending = model.pending();
    if pending > 0 {
        let offline = matches!(model.link, Link::Offline(_)) && model.fetching.is_none();
        spans.push(if offline && model.retry.is_some() {
            Span::raw(" — ")
        } else {
            sep()
        });
        let waiting = match &model.retry {
            Some((_, at)) => format!(
                "{pending} change{} waiting, next try at {}",
                if pending == 1 { "" } else { "s" },
                clock_seconds(model, *at)
            ),
            None => format!("{pending} pending"),
        };
        spans.push(Span::styled(waiting, theme.pending));
    }
    if let Some(login) = &model.login_needed {
        spans.push(sep());
        spans.push(Span::styled(login.clone(), theme.error));
    } else if let Some(error) = model.error.as_ref().or(model.trouble.as_ref()) {
        spans.push(sep());
        spans.push(Span::styled(error.clone(), theme.error));
    }
    for (service, aside) in &model.asides {
        if aside.login_needed.is_some() {
            spans.push(sep());
            spans.push(Span::styled(
                format!("{}: log in again", service.short_name()),
                theme.error,
            ));
        } else if aside.session_warning.is_some() {
            spans.push(sep());
            spans.push(Span::styled(
                format!("{}: login ends soon", service.short_name()),
                theme.pending,
            ));
        }
    }
    if let Some(warning) = &model.session_warning {
        spans.push(sep());
        spans.push(Span::styled(warning.clone(), theme.pending));
    }
    if let Some(notice) = &model.notice {
        spans.push(sep());
        spans.push(Span::raw(notice.clone()));
    }
    Line::from(spans).style(theme.status_bar)
}

fn clock(model: &Model, at: jiff::Timestamp) -> String {
    at.to_zoned_datetime(model.tz.clone())
        .strftime("%H:%M")
        .to_string()
}

fn clock_seconds(model: &Model, at: jiff::Timestamp) -> String {
    at.to_zoned_datetime(model.tz.clone())
        .strftime("%H:%M:%S")
        .to_string()
}

fn first_key(model: &Model, action: Action) -> String {
    model
        .keys
        .keys_for(action)
        .first()
        .map_or_else(|| "—".to_string(), |k| k.label())
}

fn hint_bar(model: &Model) -> Line<'static> {
    if model.filter.editing || !model.filter.query.is_empty() {
        let cursor = if model.filter.editing { "▏" } else { "" };
        let mut line = vec![
            Span::styled(" / ", model.theme.match_highlight),
            Span::raw(format!("{}{cursor}", model.filter.query)),
            Span::styled(
                format!(
                    "   {} match{}",
                    model.visible.len(),
                    if model.visible.len() == 1 { "" } else { "es" }
                ),
                model.theme.dim,
            ),
        ];
        if model.filter.editing {
            line.push(Span::styled("   Enter keep · Esc clear", model.theme.dim));
        }
        return Line::from(line);
    }
    let unit = model.kind.unit();
    let hint = |action, what: &str| (first_key(model, action), what.to_string());
    let steps = (
        format!(
            "{}/{}",
            first_key(model, Action::Increment),
            first_key(model, Action::Decrement)
        ),
        unit.to_string(),
    );
    // With two services logged in, the other one is a key away.
    let other = (model.services.len() > 1).then(|| {
        let next = model
            .services
            .iter()
            .position(|s| *s == model.service)
            .map_or(model.service, |i| {
                model.services[(i + 1) % model.services.len()]
            });
        hint(Action::SwitchService, next.short_name())
    });
    // By use; what does not fit gives way, but help and quit always show.
    let optional = [
        Some(steps),
        other,
        Some(hint(Action::Add, "add")),
        Some(hint(Action::Filter, "filter")),
        Some(hint(Action::Details, "details")),
        Some(hint(Action::NextTab, "status tab")),
    ]
    .into_iter()
    .flatten();
    let always = [hint(Action::Help, "all keys"), hint(Action::Quit, "quit")];
    let width = |(k, w): &(String, String)| k.chars().count() + w.chars().count() + 4;
    let mut room = usize::from(model.width)
        .saturating_sub(1)
        .saturating_sub(always.iter().map(width).sum());
    let mut hints = Vec::new();
    for h in optional {
        if width(&h) <= room {
            room -= width(&h);
            hints.push(h);
        }
    }
    hints.extend(always);
    let mut spans = vec![Span::raw(" ")];
    for (key, what) in hints {
        spans.push(Span::styled(key, model.theme.header));
        spans.push(Span::styled(format!(" {what}   "), model.theme.hint_bar));
    }
    Line::from(spans)
}

/// A box of at most `width`×`height` in the middle of `area`.
fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect::new(
        area.x + (area.width - width) / 2,
        area.y + (area.height - height) / 2,
        width,
        height,
    )
}

fn popup_block(model: &Model, title: &str) -> Block<'static> {
    Block::new()
        .borders(Borders::ALL)
        .border_style(model.theme.popup)
        .title(format!(" {title} "))
}

fn draw_help(model: &Model, frame: &mut Frame) {
    let bindings: Vec<(String, &str)> = Action::ALL
        .into_iter()
        .map(|action| {
            let keys: Vec<String> = model
                .keys
                .keys_for(action)
                .iter()
                .map(|k| k.label())
                .collect();
            (keys.join(" "), action.description())
        })
        .collect();
    let footer = [
        " ↑ not confirmed  ! refused  ● new episode/chapter  ↻ re-watching",
        " Mouse: click selects, the wheel scrolls. Any key closes this help.",
    ];
    let area = frame.area();
    // One column when it fits the height, two side by side otherwise.
    let columns = if bindings.len() + footer.len() + 3 > usize::from(area.height) {
        2
    } else {
        1
    };
    let per_column = bindings.len().div_ceil(columns);
    let cell = |(keys, what): &(String, &str)| {
        vec![
            Span::styled(format!("{keys:>13}"), model.theme.header),
            Span::raw(format!("  {what:<24}")),
        ]
    };
    let mut lines: Vec<Line> = (0..per_column)
        .map(|row| {
            let mut spans = Vec::new();
            for column in 0..columns {
                if let Some(b) = bindings.get(column * per_column + row) {
                    spans.extend(cell(b));
                }
            }
            Line::from(spans)
        })
        .collect();
    lines.push(Line::raw(""));
    lines.extend(footer.iter().map(|f| Line::styled(*f, model.theme.dim)));
    let width = if columns == 2 { 80 } else { 72 };
    let popup = centered(area, width, lines.len() as u16 + 2);
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(popup_block(model, "Keys")),
        popup,
    );
}

/// Lines of a menu, the chosen one marked.
fn menu<'a>(model: &Model, items: impl Iterator<Item = String>, chosen: usize) -> Vec<Line<'a>> {
    items
        .enumerate()
        .map(|(i, item)| {
            if i == chosen {
                Line::styled(format!(" › {item} "), model.theme.selected)
            } else {
                Line::raw(format!("   {item} "))
            }
        })
        .collect()
}

const SCORES: [&str; 11] = [
    "no score",
    "Appalling",
    "Horrible",
    "Very bad",
    "Bad",
    "Average",
    "Fine",
    "Good",
    "Very good",
    "Great",
    "Masterpiece",
];

/// The score prompt in the account's format: a menu of every score for the short scales, the
/// number typed for the 100-point and decimal ones.
fn score_prompt<'a>(
    model: &Model,
    choice: u8,
    typed: &str,
) -> (&'static str, Vec<Line<'a>>, &'static str) {
    let format = model.score_format;
    let label = |n: u8| -> String {
        match format {
            ScoreFormat::Point10 => format!("{n:>2}  {}", SCORES[usize::from(n.min(10))]),
            _ if n == 0 => "no score".to_string(),
            ScoreFormat::Point3 => {
                format!("{}  {}", format.show(n), SMILEYS[usize::from(n.min(3))])
            }
            _ => format!("{n}  {}", format.show(n)),
        }
    };
    if format.is_menu() {
        let max = format.max();
        return (
            "Score",
            menu(
                model,
                (0..=max).rev().map(label),
                usize::from(max - choice.min(max)),
            ),
            if max >= 10 {
                "↑/↓ or 0-9 choose · Enter set · Esc cancel"
            } else {
                "↑/↓ or digits choose · Enter set · Esc cancel"
            },
        );
    }
    let shown = if choice == 0 {
        "no score".to_string()
    } else {
        format.show(choice)
    };
    // What was typed, or the score being changed (nothing when there is none).
    let input = match (typed.is_empty(), choice) {
        (false, _) => typed.to_string(),
        (true, 0) => String::new(),
        (true, _) => format.show(choice),
    };
    (
        "Score",
        vec![
            Line::raw(format!(" Score ({}, 0 for none):", format.range())),
            Line::raw(format!(" > {input}▏")),
            Line::raw(format!(" = {shown}")),
        ],
        "type a score · ↑/↓ change · Enter set · Esc cancel",
    )
}

const SMILEYS: [&str; 4] = ["", "disliked", "average", "liked"];

fn draw_prompt(model: &Model, prompt: &Prompt, frame: &mut Frame) {
    let Some(row) = model.row(prompt.key()) else {
        return;
    };
    let entry = &row.entry;
    let (title, mut lines, hint): (&str, Vec<Line>, &str) = match prompt {
        Prompt::Count { input, .. } => {
            let what = match entry.kind {
                MediaKind::Manga if model.volumes => "Chapters read, then volumes read (e.g. 52 6)",
                MediaKind::Manga => "Chapters read",
                MediaKind::Anime => "Episodes watched",
            };
            let of = entry
                .total
                .map_or_else(String::new, |t| format!(" (of {t})"));
            (
                "Set count",
                vec![
                    Line::raw(format!(" {what}{of}:")),
                    Line::raw(format!(" > {input}▏")),
                ],
                "Enter set · Esc cancel",
            )
        }
        Prompt::Score { choice, typed, .. } => score_prompt(model, *choice, typed),
        Prompt::Status { choice, .. } => (
            "Status",
            menu(
                model,
                Status::ALL
                    .iter()
                    .enumerate()
                    .map(|(i, s)| format!("{} {}", i + 1, s.label(entry.kind))),
                *choice,
            ),
            "↑/↓ choose · Enter set · Esc cancel",
        ),
        Prompt::Complete { .. } => (
            "Completed?",
            vec![Line::raw(format!(
                " That was the last {}. Mark it completed?",
                entry.kind.unit()
            ))],
            "y yes · n no",
        ),
        Prompt::Delete { .. } => (
            "Remove",
            vec![Line::raw(format!(
                " Remove it from your {} list?",
                model.service.display_name()
            ))],
            "y remove · any other key keeps it",
        ),
    };
    lines.insert(
        0,
        Line::styled(format!(" {}", entry.title), model.theme.header),
    );
    lines.insert(1, Line::raw(""));
    lines.push(Line::raw(""));
    lines.push(Line::styled(format!(" {hint}"), model.theme.dim));
    let width = lines
        .iter()
        .map(|l| l.width() as u16 + 3)
        .max()
        .unwrap_or(20)
        .max(30);
    let popup = centered(frame.area(), width, lines.len() as u16 + 2);
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).block(popup_block(model, title)),
        popup,
    );
}

/// Where the details pane goes on a `cols`×`rows` screen.
pub fn details_area(cols: u16, rows: u16) -> Rect {
    let width = cols.saturating_sub(4).clamp(20.min(cols), 110);
    let height = rows.saturating_sub(2).clamp(6.min(rows), 34);
    centered(Rect::new(0, 0, cols, rows), width, height)
}

/// The cells the cover art gets in the details pane (0×0 when the screen is too small for it).
pub fn cover_cells(cols: u16, rows: u16) -> (u16, u16) {
    let area = details_area(cols, rows);
    let inner_w = area.width.saturating_sub(2);
    let inner_h = area.height.saturating_sub(2);
    if inner_w < 60 || inner_h < 10 {
        return (0, 0);
    }
    ((inner_w / 3).min(28), inner_h.min(20))
}

fn draw_details(model: &Model, pane: &DetailsPane, frame: &mut Frame) {
    let area = details_area(frame.area().width, frame.area().height);
    frame.render_widget(Clear, area);
    let row = model.row(pane.key);
    let title = row.map_or_else(String::new, |r| r.entry.title.clone());
    let block = popup_block(model, &title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let (cover_w, cover_h) = cover_cells(frame.area().width, frame.area().height);
    let text_area = if let Some(cover) = pane.cover.as_ref().filter(|_| cover_w > 0) {
        let [art, _, text] = Layout::horizontal([
            Constraint::Length(cover_w),
            Constraint::Length(2),
            Constraint::Fill(1),
        ])
        .areas(inner);
        cover.render(
            frame,
            Rect::new(art.x, art.y, art.width, art.height.min(cover_h)),
        );
        text
    } else {
        inner
    };
    let label = |s: &str| Span::styled(format!("{s:<12}"), model.theme.dim);
    let mut lines: Vec<Line> = Vec::new();
    if let Some(row) = row {
        let e = &row.entry;
        let mut mine = format!(
            "{} · {} {}",
            e.status.label(e.kind),
            e.kind.units(),
            progress_text(row)
        );
        if e.score > 0 {
            mine.push_str(&format!(" · score {}", model.score_format.show(e.score)));
        }
        if e.kind == MediaKind::Manga && model.volumes {
            mine.push_str(&format!(" · volumes {}", volumes_text(row)));
        }
        if e.repeating {
            mine.push_str(match e.kind {
                MediaKind::Anime => " · re-watching",
                MediaKind::Manga => " · re-reading",
            });
        }
        lines.push(Line::from(vec![label("Your list"), Span::raw(mine)]));
        if let Some(d) = &e.start_date {
            let finished = e
                .finish_date
                .as_deref()
                .map_or_else(String::new, |f| format!(", finished {f}"));
            lines.push(Line::from(vec![
                label(""),
                Span::raw(format!("started {d}{finished}")),
            ]));
        }
    }
    match &pane.details {
        None => lines.push(Line::styled("Loading…", model.theme.dim)),
        Some(Err(e)) => lines.push(Line::styled(
            format!("Could not load the details: {e}"),
            model.theme.error,
        )),
        Some(Ok(d)) => {
            if let Some(alt) = &d.alt_title {
                lines.insert(0, Line::styled(alt.clone(), model.theme.dim));
            }
            let kind = d.kind.unwrap_or(pane.key.0);
            let mut facts = Vec::new();
            if let Some(t) = &d.media_type {
                facts.push(t.replace('_', " ").to_uppercase());
            }
            if let Some(n) = d.total {
                facts.push(format!("{n} {}", kind.units()));
            }
            if let Some(v) = d.total_volumes {
                facts.push(format!("{v} volumes"));
            }
            if let Some(s) = &d.state {
                facts.push(s.clone());
            }
            lines.push(Line::from(vec![
                label("Type"),
                Span::raw(facts.join(" · ")),
            ]));
            let dates = match (&d.start_date, &d.end_date) {
                (Some(a), Some(b)) => format!("{a} to {b}"),
                (Some(a), None) => format!("from {a}"),
                (None, Some(b)) => format!("until {b}"),
                (None, None) => "unknown".into(),
            };
            let aired = if kind == MediaKind::Manga {
                "Published"
            } else {
                "Aired"
            };
            lines.push(Line::from(vec![label(aired), Span::raw(dates)]));
            if let Some(m) = &d.mean {
                lines.push(Line::from(vec![label("Mean score"), Span::raw(m.clone())]));
            }
            if !d.genres.is_empty() {
                lines.push(Line::from(vec![
                    label("Genres"),
                    Span::raw(d.genres.join(", ")),
                ]));
            }
            if let Some(next) = d.schedule.as_ref().and_then(|s| s.next_episode(model.now)) {
                let number = next
                    .number
                    .map_or_else(|| "Next episode".into(), |n| format!("Episode {n}"));
                lines.push(Line::from(vec![
                    label("Next"),
                    Span::styled(
                        format!(
                            "{number}: {} ({})",
                            local_label(next.at, &model.tz),
                            countdown(model.now, next.at)
                        ),
                        model.theme.new_episode,
                    ),
                ]));
            }
            if let Some(synopsis) = &d.synopsis {
                lines.push(Line::raw(""));
                for para in synopsis.lines() {
                    lines.push(Line::raw(para.to_string()));
                }
            }
        }
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        "j/k scroll · +/- progress · Esc close",
        model.theme.dim,
    ));
    frame.render_widget(
        Paragraph::new(Text::from(lines))
            .wrap(Wrap { trim: false })
            .scroll((pane.scroll, 0)),
        text_area,
    );
}

fn draw_search(model: &Model, search: &Search, frame: &mut Frame) {
    let area = details_area(frame.area().width, frame.area().height);
    frame.render_widget(Clear, area);
    let title = format!(
        "Add {} from {}",
        search.kind.label().to_lowercase(),
        model.service.display_name()
    );
    let block = popup_block(model, &title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [input, results, hint] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(inner);
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(" Search: ", model.theme.header),
            Span::raw(format!("{}▏", search.input)),
        ])),
        input,
    );
    let hint_text = if search.choosing.is_some() {
        " ↑/↓ choose the status · Enter add · Esc back"
    } else if model.kinds.len() > 1 {
        " Enter search / add · ↑/↓ choose · Tab anime/manga · Esc close"
    } else {
        " Enter search / add · ↑/↓ choose · Esc close"
    };
    frame.render_widget(Paragraph::new(hint_text).style(model.theme.dim), hint);
    let found = match &search.results {
        _ if search.searching => {
            frame.render_widget(
                Paragraph::new(" Searching…").style(model.theme.dim),
                results,
            );
            return;
        }
        None => {
            frame.render_widget(
                Paragraph::new(" Type a title (at least 3 characters) and press Enter.")
                    .style(model.theme.dim),
                results,
            );
            return;
        }
        Some(Err(e)) => {
            frame.render_widget(
                Paragraph::new(format!(" {e}"))
                    .style(model.theme.error)
                    .wrap(Wrap { trim: false }),
                results,
            );
            return;
        }
        Some(Ok(found)) if found.is_empty() => {
            frame.render_widget(
                Paragraph::new(format!(
                    " Nothing found for “{}”.",
                    search.sent.clone().unwrap_or_default()
                ))
                .style(model.theme.dim),
                results,
            );
            return;
        }
        Some(Ok(found)) => found,
    };
    let height = usize::from(results.height.saturating_sub(1)).max(1);
    let first = search.selected.saturating_sub(height - 1);
    let rows = found
        .iter()
        .enumerate()
        .skip(first)
        .take(height)
        .map(|(i, f)| {
            let e = &f.entry;
            let on_list = model
                .row((e.kind, e.id))
                .filter(|r| !r.removing)
                .map_or_else(String::new, |r| {
                    format!("✓ {}", r.entry.status.label(e.kind))
                });
            let total = e.total.map_or_else(|| "?".into(), |t| t.to_string());
            let style = if i == search.selected {
                model.theme.selected
            } else {
                Style::new()
            };
            TableRow::new(vec![
                Cell::from(format!(
                    "{}{}",
                    if i == search.selected { "› " } else { "  " },
                    e.title
                )),
                Cell::from(
                    e.media
                        .media_type
                        .as_deref()
                        .unwrap_or("")
                        .replace('_', " ")
                        .to_uppercase(),
                ),
                Cell::from(total),
                Cell::from(f.year.map_or_else(String::new, |y| y.to_string())),
                Cell::from(f.mean.clone().unwrap_or_else(|| "-".into())),
                Cell::from(Span::styled(on_list, model.theme.new_episode)),
            ])
            .style(style)
        });
    let units = if search.kind == MediaKind::Manga {
        "Ch."
    } else {
        "Eps"
    };
    let table = Table::new(
        rows,
        [
            Constraint::Fill(1),
            Constraint::Length(7),
            Constraint::Length(5),
            Constraint::Length(4),
            Constraint::Length(5),
            Constraint::Length(16),
        ],
    )
    .header(
        TableRow::new(["  Title", "Type", units, "Year", "Mean", "On your list"])
            .style(model.theme.header),
    )
    .column_spacing(1);
    frame.render_widget(table, results);
    if let Some(choice) = search.choosing {
        let kind = search.kind;
        let mut lines = vec![Line::styled(" Add as:", model.theme.header)];
        lines.extend(menu(
            model,
            Status::ALL
                .iter()
                .enumerate()
                .map(|(i, s)| format!("{} {}", i + 1, s.label(kind))),
            choice,
        ));
        let popup = centered(frame.area(), 24, lines.len() as u16 + 2);
        frame.render_widget(Clear, popup);
        frame.render_widget(
            Paragraph::new(lines).block(popup_block(model, "Status")),
            popup,
        );
    }
}

#[cfg(test)]
mod tests {
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use super::*;
    use crate::config::{KeyMap, Theme};
    use crate::domain::airing::{AiringState, Schedule};
    use crate::domain::{ListEntry, Service};
    use crate::providers::{Details, Found};
    use crate::tui::model::{DetailsPane, Fetching, Filter, Refusal, Sort};

    fn entry(id: u64, title: &str, progress: u32, total: Option<u32>, score: u8) -> ListEntry {
        ListEntry::watching(id, title, progress, total, score)
    }

    const NOW: &str = "2026-11-25T09:41:00Z";

    fn airing() -> Schedule {
        Schedule {
            state: AiringState::Airing,
            start_date: Some("2026-10-03".into()),
            broadcast_day: Some("saturday".into()),
            broadcast_time: Some("23:30".into()),
            episodes: Some(24),
            next_exact: None,
        }
    }

    fn sample() -> Model {
        let mut m = Model::new(
            Service::Mal,
            Some("fakeuser".into()),
            KeyMap::default(),
            jiff::tz::TimeZone::UTC,
        );
        m.now = NOW.parse().unwrap();
        let mut frieren = entry(52991, "Sousou no Frieren", 5, Some(24), 10);
        frieren.media.schedule = Some(Box::new(airing()));
        let mut steins = entry(9253, "Steins;Gate", 12, Some(24), 0);
        steins.repeating = true;
        let mut berserk = ListEntry::new(2, MediaKind::Manga, "Berserk", Status::Current);
        berserk.progress = 364;
        berserk.volumes = 41;
        let mut done = entry(5114, "Fullmetal Alchemist: Brotherhood", 64, Some(64), 10);
        done.status = Status::Completed;
        m.load(
            vec![
                frieren,
                entry(21, "One Piece", 1071, None, 9),
                steins,
                entry(1, "Refused One", 3, Some(12), 6),
                berserk,
                done,
            ],
            &[],
            &[],
        );
        let i = m.row_index(MediaKind::Anime, 21).unwrap();
        m.rows[i].entry.progress = 1072;
        m.rows[i].pending = 1;
        let i = m.row_index(MediaKind::Anime, 1).unwrap();
        m.rows[i].refused = Some(Box::new(Refusal {
            shown: None,
            what: "episode 4".into(),
            count: 1,
            reason: "gone".into(),
            conflict: false,
        }));
        crate::tui::list::refresh(&mut m);
        m.selected = 1;
        m.last_sync = Some(NOW.parse().unwrap());
        m
    }

    fn draw(model: &Model, width: u16, height: u16) -> String {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal.draw(|f| view(model, f)).unwrap();
        terminal.backend().to_string()
    }

    #[test]
    fn list_with_tabs_markers_and_countdown() {
        insta::assert_snapshot!(draw(&sample(), 100, 10));
    }

    #[test]
    fn only_a_show_still_airing_gets_the_new_episode_marker() {
        let mut m = sample();
        let i = m.row_index(MediaKind::Anime, 52991).unwrap();
        let mut finished = airing();
        finished.state = AiringState::Finished;
        m.rows[i].entry.media.schedule = Some(Box::new(finished));
        let screen = draw(&m, 100, 10);
        let line = screen
            .lines()
            .find(|l| l.contains("Sousou no Frieren"))
            .unwrap();
        assert!(!line.contains('●'), "{line}");
        // The same show still airing, five episodes behind, is marked.
        let screen = draw(&sample(), 100, 10);
        let line = screen
            .lines()
            .find(|l| l.contains("Sousou no Frieren"))
            .unwrap();
        assert!(line.contains('●'), "{line}");
    }

    #[test]
    fn manga_tab_shows_volumes() {
        let mut m = sample();
        m.kind = MediaKind::Manga;
        crate::tui::list::refresh(&mut m);
        insta::assert_snapshot!(draw(&m, 100, 8));
    }

    #[test]
    fn completed_tab_sorted_by_score() {
        let mut m = sample();
        m.tab = Status::Completed;
        m.sort = Sort::Score;
        crate::tui::list::refresh(&mut m);
        insta::assert_snapshot!(draw(&m, 100, 8));
    }

    #[test]
    fn filter_highlights_and_counts_matches() {
        let mut m = sample();
        m.filter = Filter {
            query: "stns".into(),
            editing: true,
        };
        crate::tui::list::refresh(&mut m);
        insta::assert_snapshot!(draw(&m, 100, 8));
    }

    #[test]
    fn syncing_shows_spinner_and_count() {
        let mut m = sample();
        m.fetching = Some(Fetching {
            received: vec![(MediaKind::Anime, 900), (MediaKind::Manga, 100)],
            frame: 3,
            ..Default::default()
        });
        insta::assert_snapshot!(draw(&m, 100, 10));
    }

    #[test]
    fn offline_with_changes_waiting() {
        let mut m = sample();
        m.link = Link::Offline("cannot connect".into());
        m.retry = Some(("offline".into(), "2026-11-25T09:45:07Z".parse().unwrap()));
        insta::assert_snapshot!(draw(&m, 100, 10));
    }

    #[test]
    fn expired_session_says_how_to_log_in() {
        let mut m = sample();
        m.login_needed = Some(crate::providers::ProviderError::SessionExpired.to_string());
        insta::assert_snapshot!(draw(&m, 100, 8));
    }

    #[test]
    fn empty_list_while_loading() {
        let mut m = Model::new(
            Service::Mal,
            None,
            KeyMap::default(),
            jiff::tz::TimeZone::UTC,
        );
        m.fetching = Some(Fetching::default());
        insta::assert_snapshot!(draw(&m, 80, 7));
    }

    #[test]
    fn help_lists_the_bindings_in_force() {
        let table: toml::Table = toml::from_str("increment = [\"l\", \"+\"]").unwrap();
        let mut m = sample();
        m.keys = KeyMap::from_table(&table).unwrap();
        m.overlay = Some(Overlay::Help);
        insta::assert_snapshot!(draw(&m, 90, 36));
    }

    #[test]
    fn prompts() {
        let mut m = sample();
        let key = (MediaKind::Anime, 52991);
        for (name, prompt) in [
            (
                "count",
                Prompt::Count {
                    key,
                    input: "7".into(),
                },
            ),
            (
                "score",
                Prompt::Score {
                    key,
                    choice: 8,
                    typed: String::new(),
                },
            ),
            ("status", Prompt::Status { key, choice: 2 }),
            ("complete", Prompt::Complete { key }),
            ("delete", Prompt::Delete { key }),
        ] {
            m.overlay = Some(Overlay::Prompt(prompt));
            insta::assert_snapshot!(format!("prompt_{name}"), draw(&m, 80, 20));
        }
    }

    fn details() -> Details {
        Details {
            kind: Some(MediaKind::Anime),
            id: 52991,
            title: "Sousou no Frieren".into(),
            alt_title: Some("Frieren: Beyond Journey's End".into()),
            synopsis: Some(
                "An elf mage outlives her companions.\n\nShe sets out to understand them.".into(),
            ),
            media_type: Some("tv".into()),
            total: Some(24),
            total_volumes: None,
            state: Some("currently airing".into()),
            start_date: Some("2026-10-03".into()),
            end_date: None,
            mean: Some("9.30".into()),
            genres: vec!["Adventure".into(), "Drama".into()],
            schedule: Some(airing()),
            picture: None,
        }
    }

    #[test]
    fn details_pane_loading_and_loaded() {
        let mut m = sample();
        let key = (MediaKind::Anime, 52991);
        m.overlay = Some(Overlay::Details(Box::new(DetailsPane {
            key,
            details: None,
            cover: None,
            scroll: 0,
        })));
        insta::assert_snapshot!("details_loading", draw(&m, 90, 20));
        m.overlay = Some(Overlay::Details(Box::new(DetailsPane {
            key,
            details: Some(Ok(details())),
            cover: None,
            scroll: 0,
        })));
        insta::assert_snapshot!("details_loaded", draw(&m, 90, 20));
    }

    #[test]
    fn search_results_and_status_choice() {
        let mut m = sample();
        let mut frieren = ListEntry::new(
            52991,
            MediaKind::Anime,
            "Sousou no Frieren",
            Status::Planning,
        );
        frieren.total = Some(24);
        frieren.media.media_type = Some("tv".into());
        let mut new = ListEntry::new(
            33352,
            MediaKind::Anime,
            "Violet Evergarden",
            Status::Planning,
        );
        new.total = Some(13);
        new.media.media_type = Some("tv".into());
        let mut search = Search {
            kind: MediaKind::Anime,
            input: "evergarden".into(),
            editing: true,
            sent: Some("evergarden".into()),
            searching: false,
            results: Some(Ok(vec![
                Found {
                    entry: new,
                    year: Some(2018),
                    mean: Some("8.68".into()),
                },
                Found {
                    entry: frieren,
                    year: Some(2023),
                    mean: Some("9.30".into()),
                },
            ])),
            selected: 0,
            choosing: None,
        };
        m.overlay = Some(Overlay::Search(Box::new(search.clone())));
        insta::assert_snapshot!("search_results", draw(&m, 100, 16));
        search.choosing = Some(4);
        m.overlay = Some(Overlay::Search(Box::new(search.clone())));
        insta::assert_snapshot!("search_choose_status", draw(&m, 100, 16));
        search.results = Some(Err("type at least 3 characters to search".into()));
        search.choosing = None;
        m.overlay = Some(Overlay::Search(Box::new(search)));
        insta::assert_snapshot!("search_error", draw(&m, 100, 16));
    }

    #[test]
    fn no_color_keeps_the_selection_visible() {
        let mut m = sample();
        m.theme = Theme::default().no_color();
        let mut terminal = Terminal::new(TestBackend::new(100, 8)).unwrap();
        terminal.draw(|f| view(&m, f)).unwrap();
        let buffer = terminal.backend().buffer();
        let mut colours = 0;
        for cell in buffer.content() {
            if cell.fg != ratatui::style::Color::Reset || cell.bg != ratatui::style::Color::Reset {
                colours += 1;
            }
        }
        assert_eq!(colours, 0, "NO_COLOR: no colour at all");
        // The selected line (the third list line) is still marked.
        let selected_row = LIST_TOP + 1;
        let cell = &buffer[(5, selected_row)];
        assert!(cell.modifier.contains(Modifier::REVERSED), "{cell:?}");
    }

    #[test]
    fn narrow_terminal_does_not_break() {
        insta::assert_snapshot!(draw(&sample(), 30, 6));
        insta::assert_snapshot!(draw(&sample(), 1, 1));
        let mut m = sample();
        m.overlay = Some(Overlay::Search(Box::new(Search::new(MediaKind::Anime))));
        draw(&m, 12, 4);
        m.overlay = Some(Overlay::Prompt(Prompt::Score {
            typed: String::new(),
            key: (MediaKind::Anime, 52991),
            choice: 3,
        }));
        draw(&m, 5, 3);
        m.overlay = Some(Overlay::Details(Box::new(DetailsPane {
            key: (MediaKind::Anime, 52991),
            details: Some(Ok(details())),
            cover: None,
            scroll: 40,
        })));
        draw(&m, 9, 5);
    }

    #[test]
    fn anilist_beside_mal_in_its_own_score_format() {
        let mut m = sample();
        m.service = Service::Anilist;
        m.services = vec![Service::Mal, Service::Anilist];
        m.account = Some("alice".into());
        m.score_format = crate::domain::ScoreFormat::Point10Decimal;
        for (i, row) in m.rows.iter_mut().enumerate() {
            row.entry.score = [85, 0, 100, 7][i % 4];
        }
        m.session_warning = Some(
            "AniList login ends in 9 days (Dec 4): run `malt --login anilist` to renew".into(),
        );
        m.asides = vec![(
            Service::Mal,
            crate::tui::model::Aside {
                login_needed: Some("session expired".into()),
                session_warning: None,
                kind: None,
            },
        )];
        insta::assert_snapshot!("anilist_list", draw(&m, 130, 10));
        let key = m.rows[0].key();
        m.overlay = Some(Overlay::Prompt(Prompt::Score {
            key,
            choice: 85,
            typed: "8.5".into(),
        }));
        insta::assert_snapshot!("anilist_decimal_score_prompt", draw(&m, 100, 14));
        m.score_format = crate::domain::ScoreFormat::Point5;
        m.overlay = Some(Overlay::Prompt(Prompt::Score {
            key,
            choice: 4,
            typed: String::new(),
        }));
        insta::assert_snapshot!("anilist_stars_score_prompt", draw(&m, 100, 14));
    }
}
