//! `malt add QUERY`: search the service and add a title, as `a` does in the list.

use std::path::Path;
use std::time::Duration;

use clap::Args;

use super::output::{self, paint};
use super::{Exit, Failure, KindName, Opened, Outcome, ServiceName, StatusName, send, today};
use crate::domain::{Change, MediaKind, Status, query, rules};
use crate::library::Library;
use crate::store::Target;

#[derive(Debug, Args)]
pub struct AddArgs {
    /// What to search the service for.
    pub query: String,
    /// The status to add it with (default: plan to watch / plan to read).
    #[arg(long, value_enum)]
    pub status: Option<StatusName>,
    /// The service to add it to (default: the first one logged in: MyAnimeList, AniList, MangaDex).
    #[arg(long, value_enum)]
    pub service: Option<ServiceName>,
    /// Anime or manga (default: anime where the service keeps anime).
    #[arg(long, value_enum)]
    pub kind: Option<KindName>,
    /// Add the N-th search result (as the list of results numbers them).
    #[arg(long, value_name = "N")]
    pub pick: Option<usize>,
    /// How long to wait for the service's answer, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub wait: u64,
}

/// Results listed when a search finds several.
const SHOWN: usize = 10;

pub async fn run(config: Option<&Path>, args: AddArgs) -> Outcome {
    let opened = Opened::open(config, args.service)?;
    let wanted = args.kind.map(KindName::kind);
    let provider = opened
        .providers
        .iter()
        .find(|p| wanted.is_none_or(|k| p.kinds().contains(&k)))
        .cloned()
        .ok_or_else(|| {
            Failure::usage(format!(
                "no logged-in service keeps {} lists",
                wanted.map_or("such", |k| k.key())
            ))
        })?;
    let kind = wanted
        .or_else(|| provider.kinds().first().copied())
        .unwrap_or(MediaKind::Anime);
    let text = query::search_text(&args.query).map_err(Failure::usage)?;
    let name = provider.service().display_name();
    let mut results = provider.search(kind, text).await.map_err(|e| {
        Failure::error(format!(
            "cannot search {name}: {}",
            e.for_service(provider.service())
        ))
    })?;
    if results.is_empty() {
        return Err(Failure::error(format!(
            "{name} found no {} for \"{text}\"",
            kind.key()
        )));
    }
    let chosen = match (args.pick, results.len()) {
        (None, 1) => results.remove(0),
        (None, _) => {
            let mut message = format!(
                "{name} found several {} for \"{text}\"; add one with --pick N:",
                kind.key()
            );
            let widest = results
                .iter()
                .take(SHOWN)
                .map(|f| output::width(&f.entry.title))
                .max()
                .unwrap_or(0);
            for (i, f) in results.iter().take(SHOWN).enumerate() {
                let mut facts = Vec::new();
                if let Some(t) = &f.entry.media.media_type {
                    facts.push(t.to_uppercase());
                }
                if let Some(y) = f.year {
                    facts.push(y.to_string());
                }
                if let Some(n) = f.entry.total {
                    facts.push(format!("{n} {}", kind.units()));
                }
                message.push_str(&format!(
                    "\n  {:>2}  {}  {}",
                    i + 1,
                    output::fit(&f.entry.title, widest),
                    paint(output::DIM, &facts.join(", "))
                ));
            }
            return Err(Failure::usage(message));
        }
        (Some(n), found) if n == 0 || n > found.min(SHOWN) => {
            return Err(Failure::usage(format!(
                "--pick {n}: choose one of 1 to {}",
                found.min(SHOWN)
            )));
        }
        (Some(n), _) => results.swap_remove(n - 1),
    };
    let library = Library::load(&opened.db, std::slice::from_ref(&provider)).await?;
    let Some(list) = library.lists.first() else {
        return Err(Failure::error("the list could not be read"));
    };
    let status = args.status.map_or(Status::Planning, StatusName::status);
    let title = chosen.entry.title.clone();
    let date = today();
    let queued = send::stage(&opened, list, Target::Adding(chosen.entry), move |row| {
        if row.confirmed.is_some() && !row.removing {
            return Ok(None);
        }
        Ok::<_, rules::RuleError>(Some(Change::Set(rules::addition(
            &row.entry, status, &date,
        ))))
    })
    .await?;
    let Some(queued) = queued else {
        println!("{title} is on your {name} list already: `malt set` changes it");
        return Ok(Exit::Done);
    };
    let done = format!(
        "{title}: added to {}",
        queued.row.entry.status.label(kind).to_lowercase()
    );
    Ok(send::deliver(
        &opened,
        list,
        &queued,
        Duration::from_secs(args.wait),
        &done,
    )
    .await)
}
