//! Draws the model. Pure: the same model always draws the same screen.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row as TableRow, Table, Wrap};

use super::model::{Link, Model, Row};
use crate::config::Action;

const SPINNER: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

pub fn view(model: &Model, frame: &mut Frame) {
    let [title, list, status, hints] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    frame.render_widget(title_bar(model, title.width), title);
    draw_list(model, frame, list);
    frame.render_widget(status_bar(model), status);
    frame.render_widget(hint_bar(model), hints);
    if model.help {
        draw_help(model, frame);
    }
}

fn title_bar(model: &Model, width: u16) -> Line<'static> {
    let left = format!(" malt · {} ({})", model.status.label(), model.rows.len());
    let right = match &model.account {
        Some(name) => format!("{name} @ {} ", model.service.display_name()),
        None => format!("{} ", model.service.display_name()),
    };
    let used = left.chars().count() + right.chars().count();
    // Where both do not fit, the account gives way to the list's name.
    let right = if used > usize::from(width) {
        String::new()
    } else {
        right
    };
    let gap = usize::from(width).saturating_sub(left.chars().count() + right.chars().count());
    Line::from(vec![
        Span::styled(left, Style::new().bold()),
        Span::raw(" ".repeat(gap)),
        Span::styled(right, Style::new().fg(Color::Cyan)),
    ])
    .style(Style::new().bg(Color::Rgb(30, 30, 46)).fg(Color::White))
}

fn progress_text(row: &Row) -> String {
    let total = row
        .entry
        .total
        .map_or_else(|| "?".to_string(), |t| t.to_string());
    format!("{} / {total}", row.entry.progress)
}

fn draw_list(model: &Model, frame: &mut Frame, area: Rect) {
    if model.rows.is_empty() {
        let text = if model.fetching.is_some() {
            "Loading your list…".to_string()
        } else if model.login_needed.is_some() {
            "Log in to see your list: run `malt --login` in another terminal.".to_string()
        } else if model.error.is_some() || model.trouble.is_some() {
            "Could not load your list (the reason is below). Press r to try again.".to_string()
        } else if let Link::Offline(_) = model.link {
            "Offline, and nothing is cached yet. Press r to try again.".to_string()
        } else {
            format!(
                "Nothing on your {} list. Press r to sync.",
                model.status.label().to_lowercase()
            )
        };
        let y = area.y + area.height / 2;
        let line = Rect::new(
            area.x,
            y.min(area.bottom().saturating_sub(1)),
            area.width,
            1,
        );
        frame.render_widget(Paragraph::new(text).centered().dim(), line);
        return;
    }
    let header =
        TableRow::new(["  Title", "Progress", "Score", ""]).style(Style::new().bold().underlined());
    let visible = usize::from(area.height.saturating_sub(1));
    let rows = model
        .rows
        .iter()
        .enumerate()
        .skip(model.offset)
        .take(visible)
        .map(|(i, row)| {
            let score = if row.entry.score == 0 {
                "-".to_string()
            } else {
                row.entry.score.to_string()
            };
            let mut style = Style::new();
            if i == model.selected {
                style = style
                    .bg(Color::Rgb(49, 50, 68))
                    .add_modifier(Modifier::BOLD);
            }
            // The marker sits right after the count it qualifies.
            let progress = if row.pending > 0 {
                Line::from(vec![
                    Span::styled(progress_text(row), Style::new().fg(Color::Yellow)),
                    Span::styled(" ↑", Style::new().fg(Color::Yellow)),
                ])
            } else if row.refused.is_some() {
                Line::from(vec![
                    Span::raw(progress_text(row)),
                    Span::styled(" !", Style::new().fg(Color::Red).bold()),
                ])
            } else {
                Line::from(progress_text(row))
            };
            TableRow::new(vec![
                Cell::from(format!(
                    "{}{}",
                    if i == model.selected { "› " } else { "  " },
                    row.entry.title
                )),
                Cell::from(progress),
                Cell::from(score),
            ])
            .style(style)
        });
    let table = Table::new(
        rows,
        [
            Constraint::Fill(1),
            Constraint::Length(13),
            Constraint::Length(5),
        ],
    )
    .header(header)
    .column_spacing(2);
    frame.render_widget(table, area);
}

fn status_bar(model: &Model) -> Line<'static> {
    let sep = || Span::raw(" · ").dim();
    let mut spans: Vec<Span<'static>> = vec![Span::raw(" ")];
    if let Some(f) = &model.fetching {
        spans.push(Span::styled(
            format!(
                "{} syncing… {} entries",
                SPINNER[f.frame % SPINNER.len()],
                f.received
            ),
            Style::new().fg(Color::Cyan),
        ));
    } else if let Link::Offline(_) = model.link {
        spans.push(Span::styled(
            "offline",
            Style::new().fg(Color::Yellow).bold(),
        ));
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
        spans.push(Span::raw("not synced yet").dim());
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
        spans.push(Span::styled(waiting, Style::new().fg(Color::Yellow)));
    }
    if let Some(login) = &model.login_needed {
        spans.push(sep());
        spans.push(Span::styled(
            login.clone(),
            Style::new().fg(Color::Red).bold(),
        ));
    } else if let Some(error) = model.error.as_ref().or(model.trouble.as_ref()) {
        spans.push(sep());
        spans.push(Span::styled(error.clone(), Style::new().fg(Color::Red)));
    }
    if let Some(notice) = &model.notice {
        spans.push(sep());
        spans.push(Span::raw(notice.clone()));
    }
    Line::from(spans)
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
    let hints = [
        (
            format!(
                "{}/{}",
                first_key(model, Action::Increment),
                first_key(model, Action::Decrement)
            ),
            "episode",
        ),
        (
            format!(
                "{}/{}",
                first_key(model, Action::Down),
                first_key(model, Action::Up)
            ),
            "move",
        ),
        (first_key(model, Action::Refresh), "sync"),
        (first_key(model, Action::Help), "help"),
        (first_key(model, Action::Quit), "quit"),
    ];
    let mut spans = vec![Span::raw(" ")];
    for (key, what) in hints {
        spans.push(Span::styled(key, Style::new().fg(Color::Cyan).bold()));
        spans.push(Span::raw(format!(" {what}   ")).dim());
    }
    Line::from(spans)
}

fn draw_help(model: &Model, frame: &mut Frame) {
    let lines: Vec<Line> = Action::ALL
        .into_iter()
        .map(|action| {
            let keys: Vec<String> = model
                .keys
                .keys_for(action)
                .iter()
                .map(|k| k.label())
                .collect();
            Line::from(vec![
                Span::styled(
                    format!("{:>14}", keys.join(" ")),
                    Style::new().fg(Color::Cyan).bold(),
                ),
                Span::raw("  "),
                Span::raw(action.description()),
            ])
        })
        .chain([
            Line::raw(""),
            Line::from(" ↑ not confirmed yet   ! refused (see status bar)").dim(),
            Line::from(" Any key closes this help.").dim(),
        ])
        .collect();
    let area = frame.area();
    let width = 54.min(area.width);
    let height = (lines.len() as u16 + 2).min(area.height);
    let popup = Rect::new(
        area.x + (area.width - width) / 2,
        area.y + (area.height - height) / 2,
        width,
        height,
    );
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::new().borders(Borders::ALL).title(" Keys ")),
        popup,
    );
}

#[cfg(test)]
mod tests {
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use super::*;
    use crate::config::KeyMap;
    use crate::domain::{ListEntry, Service};
    use crate::tui::model::Fetching;

    fn entry(id: u64, title: &str, progress: u32, total: Option<u32>, score: u8) -> ListEntry {
        ListEntry::watching(id, title, progress, total, score)
    }

    fn sample() -> Model {
        let mut m = Model::new(
            Service::Mal,
            Some("fakeuser".into()),
            KeyMap::default(),
            jiff::tz::TimeZone::UTC,
        );
        m.load(
            vec![
                entry(52991, "Sousou no Frieren", 17, Some(28), 10),
                entry(21, "One Piece", 1071, None, 9),
                entry(9253, "Steins;Gate", 12, Some(24), 0),
                entry(1, "Refused One", 3, Some(12), 6),
            ],
            &[],
            &[],
        );
        m.rows[1].entry.progress = 1072;
        m.rows[1].pending = 1;
        m.rows[3].refused = Some(crate::tui::model::Refusal {
            value: 4,
            count: 1,
            reason: "gone".into(),
            conflict: None,
        });
        m.selected = 1;
        m.last_sync = Some("2026-11-25T09:41:00Z".parse().unwrap());
        m
    }

    fn draw(model: &Model, width: u16, height: u16) -> String {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal.draw(|f| view(model, f)).unwrap();
        terminal.backend().to_string()
    }

    #[test]
    fn list_with_pending_and_refused_entries() {
        insta::assert_snapshot!(draw(&sample(), 80, 10));
    }

    #[test]
    fn syncing_shows_spinner_and_count() {
        let mut m = sample();
        m.fetching = Some(Fetching {
            received: 1000,
            frame: 3,
            ..Default::default()
        });
        insta::assert_snapshot!(draw(&m, 80, 10));
    }

    #[test]
    fn offline_with_changes_waiting() {
        let mut m = sample();
        m.link = Link::Offline("cannot connect".into());
        m.retry = Some(("offline".into(), "2026-11-25T09:45:07Z".parse().unwrap()));
        insta::assert_snapshot!(draw(&m, 80, 10));
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
        insta::assert_snapshot!(draw(&m, 60, 7));
    }

    #[test]
    fn help_lists_the_bindings_in_force() {
        let table: toml::Table = toml::from_str("increment = [\"l\", \"+\"]").unwrap();
        let mut m = sample();
        m.keys = KeyMap::from_table(&table).unwrap();
        m.help = true;
        insta::assert_snapshot!(draw(&m, 80, 20));
    }

    #[test]
    fn narrow_terminal_does_not_break() {
        insta::assert_snapshot!(draw(&sample(), 30, 6));
        insta::assert_snapshot!(draw(&sample(), 1, 1));
    }
}
