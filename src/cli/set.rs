//! `malt set QUERY --score/--status/--rewatching/--start/--finish`: one change, one request.

use std::path::Path;
use std::time::Duration;

use clap::{ArgGroup, Args, ValueEnum};

use super::{Exit, Failure, KindName, Opened, Outcome, ServiceName, StatusName, pick, send, today};
use crate::domain::{Change, rules};
use crate::store::Target;

#[derive(Debug, Args)]
#[command(group(
    ArgGroup::new("what")
        .required(true)
        .multiple(true)
        .args(["score", "status", "rewatching", "start", "finish"])
))]
pub struct SetArgs {
    /// A title (fuzzy, as the list's `/` filter), or `mal:ID`, `anilist:ID`, `mangadex:UUID`.
    pub query: String,
    /// The score in your account's format (`8`, `8.5`, `85`, stars `4`, smileys `1`–`3`); 0 for none.
    #[arg(long, value_name = "X", allow_hyphen_values = true)]
    pub score: Option<String>,
    /// The new status (completed also sets the finish date and the whole count).
    #[arg(long, value_enum)]
    pub status: Option<StatusName>,
    /// Re-watching (re-reading) on or off.
    #[arg(long, value_enum, value_name = "on|off")]
    pub rewatching: Option<OnOff>,
    /// When you started: YYYY-MM-DD, or `today`.
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    pub start: Option<String>,
    /// When you finished: YYYY-MM-DD, or `today`.
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    pub finish: Option<String>,
    /// Look only at this service's list.
    #[arg(long, value_enum)]
    pub service: Option<ServiceName>,
    /// Look only at anime, or only at manga.
    #[arg(long, value_enum)]
    pub kind: Option<KindName>,
    /// How long to wait for the service's answer, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub wait: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

/// A date as the services keep it (`YYYY-MM-DD`); `today` in the user's time zone.
pub fn parse_date(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("today") {
        return Ok(today());
    }
    text.parse::<jiff::civil::Date>()
        .map(|d| d.to_string())
        .map_err(|_| format!("\"{text}\" is not a date: write YYYY-MM-DD, or today"))
}

pub async fn run(config: Option<&Path>, args: SetArgs) -> Outcome {
    let opened = Opened::open(config, args.service)?;
    let library = opened.library().await?;
    let found = pick(&library, &args.query, args.kind.map(KindName::kind))?;
    let list = found.list;
    let entry = &found.row.entry;
    let service = list.service();
    // The score is read in the account's format before anything is queued.
    let score = match &args.score {
        None => None,
        Some(_) if !list.provider.keeps_scores() => {
            return Err(Failure::usage(
                rules::RuleError::NotKept {
                    service: service.display_name(),
                    what: "scores",
                }
                .to_string(),
            ));
        }
        Some(text) => Some(
            rules::parse_score(text, list.score_format)
                .map_err(|e| Failure::usage(e.to_string()))?,
        ),
    };
    let wish = rules::Edits {
        status: args.status.map(StatusName::status),
        score,
        repeating: args.rewatching.map(|o| o == OnOff::On),
        start_date: args.start.clone(),
        finish_date: args.finish.clone(),
    };
    let date = today();
    let queued = send::stage(
        &opened,
        list,
        Target::Listed((entry.kind, entry.id)),
        move |row| {
            Ok::<_, rules::RuleError>(rules::edits(&row.entry, &wish, &date).map(Change::Set))
        },
    )
    .await?;
    let Some(queued) = queued else {
        println!("{}: nothing to change", entry.title);
        return Ok(Exit::Done);
    };
    let done = format!("{}: {}", entry.title, describe(&queued, list));
    Ok(send::deliver(
        &opened,
        list,
        &queued,
        Duration::from_secs(args.wait),
        &done,
    )
    .await)
}

/// What a set changes, in words: "score 8.5, completed, finished 2026-12-04".
fn describe(queued: &crate::store::Queued, list: &crate::library::List) -> String {
    let Change::Set(p) = &queued.staged.change else {
        return "removal".into();
    };
    let kind = queued.row.entry.kind;
    let mut parts = Vec::new();
    if let Some(s) = p.status {
        parts.push(s.label(kind).to_lowercase());
    }
    if let Some(n) = p.progress {
        parts.push(format!("{} {n}", kind.unit()));
    }
    if let Some(score) = p.score {
        let shown = list.score_format.show(score);
        parts.push(if shown.is_empty() {
            "no score".into()
        } else {
            format!("score {shown}")
        });
    }
    if let Some(on) = p.repeating {
        let word = match kind {
            crate::domain::MediaKind::Anime => "re-watching",
            crate::domain::MediaKind::Manga => "re-reading",
        };
        parts.push(format!("{word} {}", if on { "on" } else { "off" }));
    }
    if let Some(d) = &p.start_date {
        parts.push(format!("started {d}"));
    }
    if let Some(d) = &p.finish_date {
        parts.push(format!("finished {d}"));
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_checked() {
        assert_eq!(parse_date("2026-02-28"), Ok("2026-02-28".into()));
        assert_eq!(parse_date("today"), Ok(today()));
        assert!(parse_date("2026-02-30").is_err());
        assert!(parse_date("yesterday").is_err());
    }
}
