//! `malt list`: entries from the cache, as a table or as JSON.

use std::path::Path;

use clap::Args;

use super::output::{self, EntryJson, paint};
use super::{Exit, KindName, Opened, Outcome, ServiceName, StatusName};
use crate::domain::{Row, Status};
use crate::library::List;

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this service's list.
    #[arg(long, value_enum)]
    pub service: Option<ServiceName>,
    /// Only anime, or only manga.
    #[arg(long, value_enum)]
    pub kind: Option<KindName>,
    /// Entries with this status, or `all` (default: watching and reading).
    #[arg(long, value_name = "STATUS|all", value_parser = parse_status)]
    pub status: Option<StatusChoice>,
    /// One JSON array of entries (fields in README).
    #[arg(long)]
    pub json: bool,
}

/// `--status`: one status, or every one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusChoice {
    One(Status),
    All,
}

fn parse_status(text: &str) -> Result<StatusChoice, String> {
    if text.eq_ignore_ascii_case("all") {
        return Ok(StatusChoice::All);
    }
    <StatusName as clap::ValueEnum>::from_str(text, true)
        .map(|s| StatusChoice::One(s.status()))
        .map_err(|_| {
            "expected watching, reading, completed, on_hold, dropped, plan_to_watch, plan_to_read or all"
                .to_string()
        })
}

pub async fn run(config: Option<&Path>, args: ListArgs) -> Outcome {
    let opened = Opened::open(config, args.service)?;
    let library = opened.library().await?;
    let status = args.status.unwrap_or(StatusChoice::One(Status::Current));
    let kind = args.kind.map(KindName::kind);
    let mut chosen: Vec<(&List, &Row)> = library
        .lists
        .iter()
        .flat_map(|list| list.shown().map(move |row| (list, row)))
        .filter(|(_, r)| kind.is_none_or(|k| r.entry.kind == k))
        .filter(|(_, r)| match status {
            StatusChoice::All => true,
            StatusChoice::One(s) => r.entry.status == s,
        })
        .collect();
    // Service, kind, then title: the order the list screen shows.
    chosen.sort_by_cached_key(|(l, r)| {
        (
            l.service().key(),
            r.entry.kind,
            r.entry.status.index(),
            r.entry.title.to_lowercase(),
            r.entry.id,
        )
    });
    if args.json {
        let entries: Vec<EntryJson> = chosen.iter().map(|(l, r)| EntryJson::new(l, r)).collect();
        output::print_json(&entries)?;
        return Ok(Exit::Done);
    }
    print_table(
        &chosen,
        library.lists.len() > 1,
        status == StatusChoice::All,
    );
    Ok(Exit::Done)
}

/// One line per entry; on a terminal the titles are fitted to its width.
fn print_table(rows: &[(&List, &Row)], services: bool, statuses: bool) {
    if rows.is_empty() {
        anstream::eprintln!("{}", paint(output::DIM, "nothing to list"));
        return;
    }
    let cells: Vec<[String; 4]> = rows
        .iter()
        .map(|(l, r)| {
            [
                output::progress_text(r),
                output::score_text(l, r),
                if statuses {
                    r.entry.status.label(r.entry.kind).to_string()
                } else {
                    String::new()
                },
                if services {
                    l.service().short_name().to_string()
                } else {
                    String::new()
                },
            ]
        })
        .collect();
    let widest = |i: usize| {
        cells
            .iter()
            .map(|c| output::width(&c[i]))
            .max()
            .unwrap_or(0)
    };
    let widths = [widest(0), widest(1), widest(2), widest(3)];
    let titles: Vec<String> = rows
        .iter()
        .map(|(_, r)| format!("{}{}", r.entry.title, output::markers(r)))
        .collect();
    let longest = titles.iter().map(|t| output::width(t)).max().unwrap_or(0);
    let others: usize = widths.iter().filter(|w| **w > 0).map(|w| w + 2).sum();
    let title_width = if output::stdout_is_terminal() {
        let columns = crossterm::terminal::size().map_or(100, |(c, _)| usize::from(c));
        longest.min(columns.saturating_sub(others).max(20))
    } else {
        longest
    };
    for ((title, cell), (_, row)) in titles.iter().zip(&cells).zip(rows) {
        let mut line = String::new();
        if widths[3] > 0 {
            line.push_str(&paint(output::DIM, &output::fit(&cell[3], widths[3])));
            line.push_str("  ");
        }
        let shown = output::fit(title, title_width);
        line.push_str(&if row.refused.is_some() {
            paint(output::WARN, &shown)
        } else {
            shown
        });
        line.push_str("  ");
        line.push_str(&format!("{:>w$}", cell[0], w = widths[0]));
        if widths[1] > 0 {
            line.push_str("  ");
            line.push_str(&output::fit(&cell[1], widths[1]));
        }
        if widths[2] > 0 {
            line.push_str("  ");
            line.push_str(&paint(output::DIM, &cell[2]));
        }
        anstream::println!("{}", line.trim_end());
    }
}
