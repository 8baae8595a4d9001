//! `malt sync`: fetch every list of every logged-in service into the cache and send the changes
//! waiting in the outbox, with a progress bar on a terminal and a one-line summary.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::{Notify, mpsc};

use super::output::{self, paint};
use super::{Exit, Opened, Outcome, ServiceName};
use crate::domain::{MediaKind, Service};
use crate::sync::{Event, Worker, fetch_list, now_ms};

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Only this service.
    #[arg(long, value_enum)]
    pub service: Option<ServiceName>,
}

/// What one service's sync came to.
#[derive(Default)]
struct Tally {
    fetched: Vec<(MediaKind, usize)>,
    failed: Vec<String>,
    sent: usize,
    refused: usize,
    conflicts: usize,
    /// Why changes are still waiting (the latest passing failure).
    trouble: Option<String>,
}

pub async fn run(config: Option<&Path>, args: SyncArgs) -> Outcome {
    let opened = Opened::open(config, args.service)?;
    let bars = if std::io::stderr().is_terminal() {
        MultiProgress::with_draw_target(ProgressDrawTarget::stderr())
    } else {
        MultiProgress::with_draw_target(ProgressDrawTarget::hidden())
    };
    let style = ProgressStyle::with_template("{spinner} {prefix:.bold} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    let (events, mut reports) = mpsc::unbounded_channel::<(Service, Event)>();
    let mut progress: HashMap<(Service, MediaKind), ProgressBar> = HashMap::new();
    let mut fetching = 0usize;
    let mut workers = Vec::new();
    for provider in &opened.providers {
        let service = provider.service();
        // Each service's reports, tagged with it.
        let (tx, mut rx) = mpsc::unbounded_channel();
        let tagged = events.clone();
        tokio::spawn(async move {
            while let Some(event) = rx.recv().await {
                if tagged.send((service, event)).is_err() {
                    break;
                }
            }
        });
        // Everything waiting is tried now, whatever an earlier run's back-off said.
        opened.db.call(move |s| s.due_now(service)).await?;
        for &kind in provider.kinds() {
            let bar = bars.add(
                ProgressBar::new_spinner()
                    .with_style(style.clone())
                    .with_prefix(format!("{} {}", service.display_name(), kind.key()))
                    .with_message("fetching…"),
            );
            bar.enable_steady_tick(Duration::from_millis(100));
            progress.insert((service, kind), bar);
            fetching += 1;
            tokio::spawn(fetch_list(
                provider.clone(),
                opened.db.clone(),
                kind,
                tx.clone(),
            ));
        }
        workers.push(tokio::spawn(
            Worker {
                provider: provider.clone(),
                db: opened.db.clone(),
                wake: Arc::new(Notify::new()),
                kick: Arc::new(Notify::new()),
                events: tx,
            }
            .run(),
        ));
    }
    drop(events);
    let mut tallies: HashMap<Service, Tally> = HashMap::new();
    let mut look = tokio::time::interval(Duration::from_millis(200));
    let services: Vec<Service> = opened.providers.iter().map(|p| p.service()).collect();
    loop {
        tokio::select! {
            Some((service, event)) = reports.recv() => {
                let tally = tallies.entry(service).or_default();
                if count(tally, &progress, service, event) {
                    fetching = fetching.saturating_sub(1);
                }
            }
            _ = look.tick() => {
                if fetching == 0 && nothing_due(&opened, &services).await {
                    break;
                }
            }
        }
    }
    for worker in workers {
        worker.abort();
    }
    let _ = bars.clear();
    summarize(&opened, &services, &tallies).await
}

/// Takes one report into the tally; `true` when a fetch has ended.
fn count(
    tally: &mut Tally,
    progress: &HashMap<(Service, MediaKind), ProgressBar>,
    service: Service,
    event: Event,
) -> bool {
    match event {
        Event::ListProgress { kind, received } => {
            if let Some(bar) = progress.get(&(service, kind)) {
                bar.set_message(format!("{received} entries…"));
            }
            false
        }
        Event::ListFetched { kind, entries, .. } => {
            if let Some(bar) = progress.get(&(service, kind)) {
                bar.finish_with_message(format!("{} entries", entries.len()));
            }
            tally.fetched.push((kind, entries.len()));
            true
        }
        Event::ListFailed { kind, error } => {
            let reason = error.for_service(service);
            if let Some(bar) = progress.get(&(service, kind)) {
                bar.abandon_with_message(reason.clone());
            }
            tally.failed.push(format!(
                "{} {}: {reason}",
                service.display_name(),
                kind.key()
            ));
            true
        }
        Event::Delivered { .. } => {
            tally.sent += 1;
            false
        }
        Event::Refused { .. } => {
            tally.refused += 1;
            false
        }
        Event::Conflict { held, .. } => {
            tally.conflicts += held as usize;
            false
        }
        Event::Retrying { error, .. } | Event::LoginNeeded(error) => {
            tally.trouble = Some(error.for_service(service));
            false
        }
        _ => false,
    }
}

/// Whether no service has a change that could be sent now (all sent, waiting out a failure, or
/// in another malt's hands).
async fn nothing_due(opened: &Opened, services: &[Service]) -> bool {
    for &service in services {
        let due = opened
            .db
            .call(move |s| s.due(service, now_ms()).map(|d| d.len()))
            .await;
        if !matches!(due, Ok(0)) {
            return false;
        }
    }
    true
}

async fn summarize(
    opened: &Opened,
    services: &[Service],
    tallies: &HashMap<Service, Tally>,
) -> Outcome {
    let empty = Tally::default();
    let mut parts = Vec::new();
    let mut failed = Vec::new();
    let (mut sent, mut refused, mut conflicts, mut waiting) = (0, 0, 0, 0);
    let mut trouble = None;
    for &service in services {
        let tally = tallies.get(&service).unwrap_or(&empty);
        let mut fetched = tally.fetched.clone();
        fetched.sort();
        let lists: Vec<String> = fetched
            .iter()
            .map(|(kind, n)| format!("{n} {}", kind.key()))
            .collect();
        if !lists.is_empty() {
            parts.push(format!("{} {}", service.display_name(), lists.join(", ")));
        }
        failed.extend(tally.failed.iter().cloned());
        sent += tally.sent;
        refused += tally.refused;
        conflicts += tally.conflicts;
        waiting += opened
            .db
            .call(move |s| s.pending(service).map(|p| p.len()))
            .await?;
        if tally.trouble.is_some() {
            trouble.clone_from(&tally.trouble);
        }
    }
    let mut line = if parts.is_empty() {
        "nothing fetched".to_string()
    } else {
        format!("synced: {}", parts.join("; "))
    };
    line.push_str(&format!(
        " · {sent} change{} sent",
        if sent == 1 { "" } else { "s" }
    ));
    if waiting > 0 {
        let why = trouble.map_or_else(String::new, |t| format!(" ({t})"));
        line.push_str(&paint(output::WARN, &format!(", {waiting} waiting{why}")));
    }
    if refused + conflicts > 0 {
        line.push_str(&paint(
            output::BAD,
            &format!(
                ", {} refused or in conflict (see `malt status`)",
                refused + conflicts
            ),
        ));
    }
    anstream::println!("{line}");
    for f in &failed {
        output::error(f);
    }
    Ok(if !failed.is_empty() || refused + conflicts > 0 {
        Exit::Error
    } else if waiting > 0 {
        Exit::Queued
    } else {
        Exit::Done
    })
}
