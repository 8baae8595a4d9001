//! `malt show QUERY`: one entry, with everything the cache knows of it.

use std::path::Path;

use clap::Args;
use serde::Serialize;

use super::output::{self, EntryJson, paint};
use super::{Exit, KindName, Opened, Outcome, ServiceName, pick};

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// A title (fuzzy, as the list's `/` filter), or `mal:ID`, `anilist:ID`, `mangadex:UUID`.
    pub query: String,
    /// Look only at this service's list.
    #[arg(long, value_enum)]
    pub service: Option<ServiceName>,
    /// Look only at anime, or only at manga.
    #[arg(long, value_enum)]
    pub kind: Option<KindName>,
    /// The entry as JSON (the fields of `list --json`, and a few more).
    #[arg(long)]
    pub json: bool,
}

/// `show --json`: the entry as `list --json` writes it, and what else the cache knows.
#[derive(Serialize)]
struct ShowJson {
    #[serde(flatten)]
    entry: EntryJson,
    media_type: Option<String>,
    /// The changes not yet confirmed, in words, oldest first.
    pending_changes: Vec<String>,
    /// The next episode: its number (when known) and when it airs (RFC 3339).
    next_episode: Option<NextJson>,
    last_sync: Option<String>,
}

#[derive(Serialize)]
struct NextJson {
    number: Option<u32>,
    at: String,
}

pub async fn run(config: Option<&Path>, args: ShowArgs) -> Outcome {
    let opened = Opened::open(config, args.service)?;
    let library = opened.library().await?;
    let found = pick(&library, &args.query, args.kind.map(KindName::kind))?;
    let (list, row) = (found.list, found.row);
    let e = &row.entry;
    let (service, kind, id) = (list.service(), e.kind, e.id);
    let format = list.score_format;
    let pending: Vec<String> = opened
        .db
        .call(move |s| s.pending_for(service, kind, id))
        .await?
        .iter()
        .map(|op| op.change.describe(kind, format))
        .collect();
    let now = jiff::Timestamp::now();
    let next = e.media.schedule.as_ref().and_then(|s| s.next_episode(now));
    if args.json {
        let shown = ShowJson {
            entry: EntryJson::new(list, row),
            media_type: e.media.media_type.clone(),
            pending_changes: pending,
            next_episode: next.map(|n| NextJson {
                number: n.number,
                at: n.at.to_string(),
            }),
            last_sync: list.last_sync.map(|t| t.to_string()),
        };
        output::print_json(&shown)?;
        return Ok(Exit::Done);
    }
    let label = |name: &str| paint(output::DIM, &format!("{name:<10}"));
    anstream::println!(
        "{}  {}",
        paint(output::BOLD, &e.title),
        paint(
            output::DIM,
            &format!("{} · {}", list.reference(row), kind.label())
        ),
    );
    let mut status = e.status.label(kind).to_string();
    if e.repeating {
        status.push_str(match kind {
            crate::domain::MediaKind::Anime => " (re-watching)",
            crate::domain::MediaKind::Manga => " (re-reading)",
        });
    }
    anstream::println!("{} {status}", label("status"));
    anstream::println!(
        "{} {} {}",
        label("progress"),
        output::progress_text(row),
        kind.units()
    );
    if kind == crate::domain::MediaKind::Manga && list.provider.keeps_volumes() {
        let total = e.total_volumes.map_or("?".to_string(), |t| t.to_string());
        anstream::println!("{} {} / {total}", label("volumes"), e.volumes);
    }
    if list.provider.keeps_scores() {
        let score = output::score_text(list, row);
        anstream::println!(
            "{} {}",
            label("score"),
            if score.is_empty() { "none" } else { &score }
        );
    }
    for (name, date) in [("started", &e.start_date), ("finished", &e.finish_date)] {
        if let Some(date) = date {
            anstream::println!("{} {date}", label(name));
        }
    }
    if let Some(t) = &e.media.media_type {
        anstream::println!("{} {t}", label("type"));
    }
    if let Some(n) = next {
        let local = n.at.to_zoned_datetime(jiff::tz::TimeZone::system());
        let number = n
            .number
            .map_or_else(String::new, |n| format!("episode {n}, "));
        anstream::println!(
            "{} {number}{}",
            label("next"),
            local.strftime("%a %Y-%m-%d %H:%M")
        );
    }
    if let Some(updated) = &e.updated_at {
        anstream::println!("{} {updated}", label("updated"));
    }
    if !pending.is_empty() {
        anstream::println!(
            "{} {}",
            label("pending"),
            paint(
                output::WARN,
                &format!("not confirmed yet: {}", pending.join(", "))
            )
        );
    }
    if let Some(refused) = &row.refused {
        let what = if refused.conflict {
            "conflict"
        } else {
            "refused"
        };
        anstream::println!(
            "{} {}",
            label(what),
            paint(
                output::BAD,
                &format!("{}: {}", refused.what, refused.reason)
            )
        );
    }
    Ok(Exit::Done)
}
