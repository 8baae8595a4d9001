//! `malt status`: per service, who is logged in, until when, the last sync, and the changes
//! waiting, refused or in conflict. From the files alone: no network.

use std::path::Path;

use clap::Args;
use serde::Serialize;

use super::output::{self, paint};
use super::{Exit, Failure, Outcome};
use crate::app::Context;
use crate::auth::TokenFile;
use crate::domain::Service;
use crate::store::Store;

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// One JSON array, an object per service (fields in README).
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct ServiceStatus {
    service: &'static str,
    /// The config has a table for it.
    configured: bool,
    logged_in: bool,
    account: Option<String>,
    /// When the login ends (RFC 3339); `null` when it is renewed in the background.
    session_ends: Option<String>,
    session_expired: bool,
    /// Why the saved login cannot be read, if it cannot.
    session_problem: Option<String>,
    last_sync: Option<String>,
    /// Changes waiting to be sent.
    pending: usize,
    /// Changes refused for good or held by a conflict, with the reason.
    held: Vec<HeldJson>,
}

#[derive(Serialize)]
struct HeldJson {
    kind: &'static str,
    /// The service's own id (MangaDex: the UUID).
    id: String,
    title: Option<String>,
    change: String,
    reason: String,
    conflict: bool,
}

pub async fn run(config: Option<&Path>, args: StatusArgs) -> Outcome {
    let ctx = Context::load(config).map_err(Failure::error)?;
    let (mut store, recovery) = ctx.open_store().map_err(Failure::error)?;
    if let Some(recovery) = recovery {
        output::warn(&recovery.to_string());
    }
    let mut all = Vec::new();
    for service in Service::LOGGABLE {
        all.push(service_status(&ctx, &mut store, service)?);
    }
    if args.json {
        output::print_json(&all)?;
        return Ok(Exit::Done);
    }
    let now = jiff::Timestamp::now();
    for s in all.iter().filter(|s| s.configured || s.logged_in) {
        print_one(s, now);
    }
    if !all.iter().any(|s| s.configured) {
        println!(
            "no service is set up in {}: see config.example.toml",
            ctx.config.path.display()
        );
    }
    Ok(Exit::Done)
}

fn service_status(
    ctx: &Context,
    store: &mut Store,
    service: Service,
) -> Result<ServiceStatus, Failure> {
    let configured = match service {
        Service::Mal => ctx.config.mal.is_some(),
        Service::Anilist => ctx.config.anilist.is_some(),
        Service::Mangadex => ctx.config.mangadex.is_some(),
        Service::Demo => false,
    };
    let path = ctx.files.tokens(service);
    let (mut logged_in, mut ends, mut expired, mut problem) = (false, None, false, None);
    if path.exists() {
        match TokenFile::new(path).load() {
            Ok(Some(tokens)) => {
                logged_in = true;
                if let Some(at) = tokens.login_ends_at() {
                    ends = jiff::Timestamp::from_second(at).ok();
                    expired = at <= jiff::Timestamp::now().as_second();
                }
            }
            Ok(None) => {}
            Err(e) => problem = Some(e.to_string()),
        }
    }
    let entries = store.entries(service)?;
    let provider = ctx.provider(service);
    let held = store
        .refused(service)?
        .into_iter()
        .map(|(op, held)| HeldJson {
            kind: op.kind.key(),
            id: provider.as_ref().map_or_else(
                || op.media_id.to_string(),
                |p| p.public_id(op.kind, op.media_id),
            ),
            title: entries
                .iter()
                .find(|e| e.kind == op.kind && e.id == op.media_id)
                .or(op.entry.as_deref())
                .map(|e| e.title.clone()),
            change: op.change.describe(op.kind, score_format(store, service)),
            reason: held.reason,
            conflict: held.conflict,
        })
        .collect();
    Ok(ServiceStatus {
        service: service.key(),
        configured,
        logged_in,
        account: store.meta(service, "account")?,
        session_ends: ends.map(|t| t.to_string()),
        session_expired: expired,
        session_problem: problem,
        last_sync: store.meta(service, "last_sync")?,
        pending: store.pending(service)?.len(),
        held,
    })
}

fn score_format(store: &Store, service: Service) -> crate::domain::ScoreFormat {
    store
        .meta(service, "score_format")
        .ok()
        .flatten()
        .and_then(|f| crate::domain::ScoreFormat::from_key(&f))
        .unwrap_or_default()
}

fn print_one(s: &ServiceStatus, now: jiff::Timestamp) {
    let Some(service) = Service::from_key(s.service) else {
        return;
    };
    let name = paint(output::BOLD, &format!("{:<12}", service.display_name()));
    let login = if let Some(problem) = &s.session_problem {
        paint(output::BAD, problem)
    } else if !s.logged_in {
        paint(
            output::WARN,
            &format!("not logged in: run `{}`", service.login_command()),
        )
    } else if s.session_expired {
        paint(
            output::BAD,
            &format!("session expired: run `{}`", service.login_command()),
        )
    } else {
        let who = s
            .account
            .as_deref()
            .map_or_else(|| "logged in".to_string(), |a| format!("logged in as {a}"));
        let until = match &s.session_ends {
            Some(at) => format!("login ends {}", local(at)),
            None => "login renewed in the background".into(),
        };
        format!("{who} · {until}")
    };
    anstream::println!("{name} {login}");
    let pad = " ".repeat(13);
    let synced = match &s.last_sync {
        Some(at) => format!("last sync {}", ago(at, now)),
        None => "never synced: run `malt sync`".into(),
    };
    let waiting = match s.pending {
        0 => "nothing waiting".to_string(),
        1 => paint(output::WARN, "1 change waiting"),
        n => paint(output::WARN, &format!("{n} changes waiting")),
    };
    anstream::println!("{pad}{synced} · {waiting}");
    for h in &s.held {
        let what = if h.conflict { "conflict" } else { "refused" };
        anstream::println!(
            "{pad}{} {}: {}: {}",
            paint(output::BAD, what),
            h.title.as_deref().unwrap_or("(unknown title)"),
            h.change,
            h.reason
        );
    }
}

/// An RFC 3339 instant as a local date and time.
fn local(at: &str) -> String {
    at.parse::<jiff::Timestamp>().map_or_else(
        |_| at.to_string(),
        |t| {
            t.to_zoned_datetime(jiff::tz::TimeZone::system())
                .strftime("%Y-%m-%d %H:%M")
                .to_string()
        },
    )
}

/// "2026-12-04 18:00 (5 min ago)".
fn ago(at: &str, now: jiff::Timestamp) -> String {
    let Ok(t) = at.parse::<jiff::Timestamp>() else {
        return at.to_string();
    };
    let secs = now.duration_since(t).as_secs();
    let rel = match secs {
        s if s < 60 => "just now".to_string(),
        s if s < 3600 => format!("{} min ago", s / 60),
        s if s < 86_400 => format!("{} h ago", s / 3600),
        s => format!("{} days ago", s / 86_400),
    };
    format!("{} ({rel})", local(at))
}
