//! `malt progress QUERY (+N|-N|N)`: count episodes or chapters, as `+`/`-`/`e` do in the list.

use std::path::Path;
use std::time::Duration;

use clap::Args;

use super::{Exit, KindName, Opened, Outcome, ServiceName, pick, send, today};
use crate::domain::{Change, rules};
use crate::store::Target;

#[derive(Debug, Args)]
pub struct ProgressArgs {
    /// A title (fuzzy, as the list's `/` filter), or `mal:ID`, `anilist:ID`, `mangadex:UUID`.
    pub query: String,
    /// `+1` one more, `-1` one less, `12` that many done.
    #[arg(allow_hyphen_values = true, value_parser = parse_count)]
    pub count: Count,
    /// Look only at this service's list.
    #[arg(long, value_enum)]
    pub service: Option<ServiceName>,
    /// Look only at anime, or only at manga.
    #[arg(long, value_enum)]
    pub kind: Option<KindName>,
    /// Reaching the last episode also marks the entry completed (in the same request).
    #[arg(long)]
    pub complete: bool,
    /// How long to wait for the service's answer, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub wait: u64,
}

/// The count asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Count {
    /// `+N` / `-N`.
    By(i64),
    /// `N`.
    To(u32),
}

fn parse_count(text: &str) -> Result<Count, String> {
    let text = text.trim();
    let bad = || format!("\"{text}\" is not a count: write +1, -1 or a number such as 12");
    let digits = |d: &str| {
        (!d.is_empty() && d.chars().all(|c| c.is_ascii_digit()))
            .then(|| d.parse::<u32>().ok())
            .flatten()
            .ok_or_else(bad)
    };
    if let Some(rest) = text.strip_prefix('+') {
        Ok(Count::By(i64::from(digits(rest)?)))
    } else if let Some(rest) = text.strip_prefix('-') {
        Ok(Count::By(-i64::from(digits(rest)?)))
    } else {
        Ok(Count::To(digits(text)?))
    }
}

pub async fn run(config: Option<&Path>, args: ProgressArgs) -> Outcome {
    let opened = Opened::open(config, args.service)?;
    let library = opened.library().await?;
    let found = pick(&library, &args.query, args.kind.map(KindName::kind))?;
    let list = found.list;
    let entry = &found.row.entry;
    let (title, kind) = (entry.title.clone(), entry.kind);
    let reference = list.reference(found.row);
    let (count, complete, date) = (args.count, args.complete, today());
    let queued = send::stage(
        &opened,
        list,
        Target::Listed((kind, entry.id)),
        move |row| {
            let e = &row.entry;
            let target = match count {
                Count::By(by) => rules::stepped(e, by)?,
                Count::To(n) => n,
            };
            let patch = if complete {
                rules::progress_then_complete(e, target, &date)?
            } else {
                rules::progress(e, target, None, &date)?
            };
            Ok::<_, rules::RuleError>(patch.map(Change::Set))
        },
    )
    .await?;
    let Some(queued) = queued else {
        println!(
            "{title} is at {} {} already: nothing to change",
            kind.unit(),
            entry.progress
        );
        return Ok(Exit::Done);
    };
    let after = &queued.row.entry;
    let of = after.total.map_or_else(String::new, |t| format!(" of {t}"));
    let mut done = format!("{title}: {} {}{of}", kind.unit(), after.progress);
    if let Change::Set(patch) = &queued.staged.change
        && let Some(status) = patch.status
    {
        done.push_str(&format!(", {}", status.label(kind).to_lowercase()));
    }
    let exit = send::deliver(
        &opened,
        list,
        &queued,
        Duration::from_secs(args.wait),
        &done,
    )
    .await;
    if !complete && rules::completion_offered(after) {
        println!(
            "That was the last {}: `malt set {reference} --status completed` marks it completed.",
            kind.unit()
        );
    }
    Ok(exit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_read_with_their_sign() {
        assert_eq!(parse_count("+1"), Ok(Count::By(1)));
        assert_eq!(parse_count("-2"), Ok(Count::By(-2)));
        assert_eq!(parse_count("12"), Ok(Count::To(12)));
        for bad in ["", "+", "one", "1.5", "+-1", "99999999999", " + 1"] {
            assert!(parse_count(bad).is_err(), "{bad}");
        }
    }
}
