//! How the commands write: plain lines (coloured only on a terminal, never with `NO_COLOR`), the
//! JSON shape of an entry (documented in README, "Commands for scripts"), and messages on stderr.

use std::io::{IsTerminal, Write};

use anstyle::{AnsiColor, Style};
use serde::Serialize;
use serde_json::Value;

use crate::domain::{MediaKind, Row, ScoreFormat, Status};
use crate::library::List;

pub const DIM: Style = Style::new().dimmed();
pub const BOLD: Style = Style::new().bold();
pub const GOOD: Style = AnsiColor::Green.on_default();
pub const WARN: Style = AnsiColor::Yellow.on_default();
pub const BAD: Style = AnsiColor::Red.on_default().bold();

/// `text` in `style` (the style is dropped by `anstream` where colours are off).
pub fn paint(style: Style, text: &str) -> String {
    format!("{}{text}{}", style.render(), style.render_reset())
}

/// An error, on stderr: `malt: …`.
pub fn error(message: &str) {
    anstream::eprintln!("{} {message}", paint(BAD, "malt:"));
}

/// A warning that does not stop the command, on stderr.
pub fn warn(message: &str) {
    anstream::eprintln!("{} {message}", paint(WARN, "malt:"));
}

/// Whether standard output is a terminal (tables are fitted to its width there).
pub fn stdout_is_terminal() -> bool {
    std::io::stdout().is_terminal()
}

/// Prints `value` as JSON on stdout: indented on a terminal, compact for a program (as `gh` does).
pub fn print_json(value: &impl Serialize) -> Result<(), super::Failure> {
    let text = if stdout_is_terminal() {
        serde_json::to_string_pretty(value)
    } else {
        serde_json::to_string(value)
    }
    .map_err(|e| super::Failure::error(format!("cannot write JSON: {e}")))?;
    let mut out = std::io::stdout().lock();
    // A closed pipe (`malt list --json | head -c 10`) is not an error worth a word.
    let _ = writeln!(out, "{text}");
    Ok(())
}

/// A status as `--status` takes it and `--json` writes it.
pub fn status_key(status: Status, kind: MediaKind) -> &'static str {
    match (status, kind) {
        (Status::Current, MediaKind::Anime) => "watching",
        (Status::Current, MediaKind::Manga) => "reading",
        (Status::Completed, _) => "completed",
        (Status::OnHold, _) => "on_hold",
        (Status::Dropped, _) => "dropped",
        (Status::Planning, MediaKind::Anime) => "plan_to_watch",
        (Status::Planning, MediaKind::Manga) => "plan_to_read",
    }
}

/// A score as a number in the account's format (8.5 on a decimal scale, 85 of 100, 4 stars);
/// `null` for none, or where the list keeps no scores.
pub fn score_value(score: u8, format: ScoreFormat, kept: bool) -> Value {
    if score == 0 || !kept {
        return Value::Null;
    }
    match format {
        ScoreFormat::Point10Decimal => serde_json::json!(format.to_points(score)),
        _ => serde_json::json!(score.min(format.max())),
    }
}

/// One entry as `list --json` and `show --json` write it.
#[derive(Serialize)]
pub struct EntryJson {
    pub service: &'static str,
    pub kind: &'static str,
    /// The service's own id: a number, or MangaDex's UUID.
    pub id: Value,
    pub title: String,
    pub status: &'static str,
    pub progress: u32,
    pub total: Option<u32>,
    /// Manga: volumes read and in all (where the service keeps them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volumes: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_volumes: Option<u32>,
    pub score: Value,
    pub rewatching: bool,
    pub start_date: Option<String>,
    pub finish_date: Option<String>,
    /// Changes made that the service has not confirmed yet.
    pub pending: u32,
    /// A change the service refused, or a conflict with an edit made elsewhere: why.
    pub refused: Option<String>,
    pub updated_at: Option<String>,
}

impl EntryJson {
    pub fn new(list: &List, row: &Row) -> EntryJson {
        let e = &row.entry;
        let provider = &list.provider;
        let public = provider.public_id(e.kind, e.id);
        let id = public
            .parse::<u64>()
            .map_or_else(|_| Value::String(public.clone()), Value::from);
        let manga_volumes = e.kind == MediaKind::Manga && provider.keeps_volumes();
        EntryJson {
            service: list.service().key(),
            kind: e.kind.key(),
            id,
            title: e.title.clone(),
            status: status_key(e.status, e.kind),
            progress: e.progress,
            total: e.total,
            volumes: manga_volumes.then_some(e.volumes),
            total_volumes: if manga_volumes { e.total_volumes } else { None },
            score: score_value(e.score, list.score_format, provider.keeps_scores()),
            rewatching: e.repeating,
            start_date: e.start_date.clone(),
            finish_date: e.finish_date.clone(),
            pending: row.pending,
            refused: row.refused.as_ref().map(|r| r.reason.clone()),
            updated_at: e.updated_at.clone(),
        }
    }
}

/// "12 / 28", "12 / ?" (the total unknown).
pub fn progress_text(row: &Row) -> String {
    let e = &row.entry;
    match e.total {
        Some(total) => format!("{} / {total}", e.progress),
        None => format!("{} / ?", e.progress),
    }
}

/// A score in the account's format ("8.5", "★★★★"); empty for none.
pub fn score_text(list: &List, row: &Row) -> String {
    if !list.provider.keeps_scores() {
        return String::new();
    }
    list.score_format.show(row.entry.score)
}

/// The markers after a title: `↻` re-watching, `↑2` changes on their way, `!` refused.
pub fn markers(row: &Row) -> String {
    let mut out = String::new();
    if row.entry.repeating {
        out.push_str(" ↻");
    }
    if row.pending > 0 {
        out.push_str(&format!(" ↑{}", row.pending));
    }
    if row.refused.is_some() {
        out.push_str(" !");
    }
    out
}

/// `text` cut to `width` columns with `…`, or padded to it.
pub fn fit(text: &str, width: usize) -> String {
    use unicode_width::UnicodeWidthChar;
    let mut out = String::new();
    let mut used = 0;
    let total: usize = text.chars().map(|c| c.width().unwrap_or(0)).sum();
    if total <= width {
        out.push_str(text);
        used = total;
    } else {
        for c in text.chars() {
            let w = c.width().unwrap_or(0);
            if used + w + 1 > width {
                break;
            }
            out.push(c);
            used += w;
        }
        out.push('…');
        used += 1;
    }
    out.push_str(&" ".repeat(width.saturating_sub(used)));
    out
}

/// The width of `text` in terminal columns.
pub fn width(text: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_are_numbers_in_the_accounts_format() {
        assert_eq!(
            score_value(85, ScoreFormat::Point10Decimal, true),
            serde_json::json!(8.5)
        );
        assert_eq!(
            score_value(85, ScoreFormat::Point100, true),
            serde_json::json!(85)
        );
        assert_eq!(
            score_value(4, ScoreFormat::Point5, true),
            serde_json::json!(4)
        );
        assert_eq!(score_value(0, ScoreFormat::Point10, true), Value::Null);
        assert_eq!(score_value(7, ScoreFormat::Point10, false), Value::Null);
    }

    #[test]
    fn titles_are_fitted_to_their_column() {
        assert_eq!(fit("Frieren", 10), "Frieren   ");
        assert_eq!(fit("Sousou no Frieren", 10), "Sousou no…");
        assert_eq!(width(&fit("葬送のフリーレン", 9)), 9);
        assert_eq!(
            status_key(Status::Planning, MediaKind::Manga),
            "plan_to_read"
        );
    }
}
