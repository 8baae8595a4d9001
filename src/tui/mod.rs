//! The full-screen list: a pure `update` and `view` (TEA), and the runtime that feeds them
//! messages and carries out their effects. Nothing here waits on the network or the disk.

pub mod effect;
pub mod list;
pub mod model;
pub mod msg;
pub mod update;
pub mod view;

use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{Event as TermEvent, EventStream};
use futures_util::StreamExt;
use tokio::sync::Notify;
use tokio::sync::mpsc::{self, UnboundedSender};

pub use effect::Effect;
pub use model::Model;
pub use msg::Msg;
pub use update::update;
pub use view::view;

use crate::config::{KeyMap, Theme};
use crate::covers::{Cover, Covers};
use crate::domain::{ListEntry, Op, ScoreFormat, Service};
use crate::providers::Provider;
use crate::store::{Db, Target};
use crate::sync::{self, Event};
pub use msg::Loaded;

/// What the list screen needs to run.
pub struct App {
    /// Every service logged in; the first one's list is shown first.
    pub providers: Vec<Arc<dyn Provider>>,
    pub db: Db,
    pub keys: KeyMap,
    /// Colours and styles, `NO_COLOR` already applied.
    pub theme: Theme,
    /// Where cover art comes from; `None` turns it off.
    pub covers: Option<Covers>,
    /// Something the user should know from the start (a database that was rebuilt).
    pub warning: Option<String>,
}

type Snapshot = (Vec<ListEntry>, Vec<Op>, Vec<(Op, crate::store::Held)>);

/// The cache and the outbox as they stand.
fn snapshot(
    store: &mut crate::store::Store,
    service: Service,
) -> Result<Snapshot, crate::store::StoreError> {
    Ok((
        store.entries(service)?,
        store.pending(service)?,
        store.refused(service)?,
    ))
}

/// Notices, within a second, when another malt process changes the database (a change queued
/// or delivered there, a new login), and shows it.
async fn watch_other_processes(
    db: Db,
    lanes: Vec<(Service, Arc<Notify>)>,
    events: UnboundedSender<(Service, Event)>,
) {
    let mut seen = db.call(|s| s.data_version()).await.ok();
    let mut every_second = tokio::time::interval(Duration::from_secs(1));
    every_second.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        every_second.tick().await;
        let now = db.call(|s| s.data_version()).await.ok();
        if now == seen {
            continue;
        }
        seen = now;
        for (service, wake) in &lanes {
            // Another process may have queued changes for this one to send.
            wake.notify_one();
            let service = *service;
            if let Ok((entries, pending, refused)) = db.call(move |s| snapshot(s, service)).await {
                let _ = events.send((
                    service,
                    Event::StoreChanged {
                        entries,
                        pending,
                        refused,
                    },
                ));
            }
        }
    }
}

/// Reads one service's list, outbox and account from the cache, for the screen.
pub async fn load_service(
    db: &Db,
    provider: &dyn Provider,
) -> Result<Loaded, crate::store::StoreError> {
    let service = provider.service();
    let kinds = provider.kinds().to_vec();
    let scores = provider.keeps_scores();
    let volumes = provider.keeps_volumes();
    let latest_chapters = provider.total_is_latest();
    db.call(move |s| {
        let (entries, pending, refused) = snapshot(s, service)?;
        Ok(Loaded {
            service,
            kinds,
            account: s.meta(service, "account")?,
            entries,
            pending,
            refused,
            last_sync: s.meta(service, "last_sync")?.and_then(|at| at.parse().ok()),
            score_format: s
                .meta(service, "score_format")?
                .and_then(|f| ScoreFormat::from_key(&f))
                .unwrap_or_default(),
            scores,
            volumes,
            latest_chapters,
        })
    })
    .await
}

/// Builds the first model from the cache and the outbox.
pub async fn initial_model(app: &App) -> color_eyre::Result<Model> {
    let Some(first) = app.providers.first() else {
        return Err(color_eyre::eyre::eyre!(
            "not logged in to any service: run `malt --login` first"
        ));
    };
    let loaded = load_service(&app.db, first.as_ref()).await?;
    let mut model = Model::new(
        loaded.service,
        loaded.account.clone(),
        app.keys.clone(),
        jiff::tz::TimeZone::system(),
    );
    model.services = app.providers.iter().map(|p| p.service()).collect();
    model.theme = app.theme.clone();
    model.images = app.covers.is_some();
    model.now = jiff::Timestamp::now();
    update::show_service(&mut model, loaded);
    model.error = app.warning.clone();
    Ok(model)
}

/// Runs the list screen until the user quits. The terminal is restored on every way out,
/// including a panic.
pub async fn run(app: App) -> color_eyre::Result<()> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return Err(color_eyre::eyre::eyre!(
            "the list needs a terminal: run malt in a terminal window, not with its input or output redirected"
        ));
    }
    let mut model = initial_model(&app).await?;
    let mut terminal = match ratatui::try_init() {
        Ok(terminal) => terminal,
        Err(e) => {
            ratatui::restore();
            return Err(color_eyre::eyre::eyre!(
                "cannot take over the terminal: {e}"
            ));
        }
    };
    let mouse =
        crossterm::execute!(std::io::stdout(), crossterm::event::EnableMouseCapture).is_ok();
    if mouse {
        // On a panic too: mouse reports left on would litter the shell.
        let restore = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableMouseCapture);
            restore(info);
        }));
    }
    let result = event_loop(&mut terminal, &mut model, &app).await;
    if mouse {
        let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableMouseCapture);
    }
    ratatui::restore();
    // Let changes still being written reach the outbox before the process ends.
    let _ = app.db.call(|_| Ok(())).await;
    result
}

/// One logged-in service's background work: who sends its changes and keeps its session.
struct Lane {
    provider: Arc<dyn Provider>,
    wake: Arc<Notify>,
    /// Ends the worker's back-off.
    kick: Arc<Notify>,
    /// Wakes the session refresher.
    recheck: Arc<Notify>,
    /// Reports of this service's background work (tagged with the service on the way to the UI).
    events: UnboundedSender<Event>,
}

impl Lane {
    fn new(provider: Arc<dyn Provider>, tagged: UnboundedSender<(Service, Event)>) -> Lane {
        let (events, mut reports) = mpsc::unbounded_channel();
        let service = provider.service();
        tokio::spawn(async move {
            while let Some(event) = reports.recv().await {
                if tagged.send((service, event)).is_err() {
                    break;
                }
            }
        });
        Lane {
            provider,
            wake: Arc::new(Notify::new()),
            kick: Arc::new(Notify::new()),
            recheck: Arc::new(Notify::new()),
            events,
        }
    }
}

struct Runtime {
    lanes: Vec<Lane>,
    db: Db,
    /// Answers to the UI's own requests (search, details, cover art, another service's list).
    msgs: UnboundedSender<Msg>,
    covers: Option<Arc<Covers>>,
    /// How to draw images on this terminal (when cover art is on).
    picker: Option<Arc<ratatui_image::picker::Picker>>,
}

impl Runtime {
    /// Carries out an effect for the service whose list is shown.
    fn perform(&self, effect: Effect, service: Service) {
        let Some(lane) = self.lanes.iter().find(|l| l.provider.service() == service) else {
            tracing::error!(service = service.key(), "no such service running");
            return;
        };
        self.perform_in(lane, effect);
    }

    fn perform_in(&self, lane: &Lane, effect: Effect) {
        let service = lane.provider.service();
        match effect {
            Effect::Enqueue {
                kind,
                media_id,
                change,
                base,
                fresh,
                entry,
                base_state,
            } => {
                let now = sync::now_ms();
                // An addition is checked against the service itself before it is sent.
                let adding = entry.is_some();
                let target = match entry {
                    Some(entry) => Target::Adding(*entry),
                    None => Target::Listed((kind, media_id)),
                };
                // Written against the entry as the database holds it: when another malt (a
                // command from the shell) changed it since the screen last looked, the change is
                // not built on an old count but refused, and the screen shows the entry again.
                let stage = move |s: &mut crate::store::Store| {
                    s.stage_change(service, target, now, fresh, ScoreFormat::default(), |row| {
                        let theirs = row.entry.state();
                        match change.differing_field(base, base_state.as_ref(), Some(&theirs)) {
                            Some(_) if !adding => Err(()),
                            _ => Ok(Some(change)),
                        }
                    })
                };
                // Submitted in keypress order; the database thread keeps that order.
                let written = self.db.submit(stage);
                let wake = lane.wake.clone();
                let events = lane.events.clone();
                let db = self.db.clone();
                tokio::spawn(async move {
                    let error = match written.await {
                        Ok(Ok(Ok(_))) => {
                            wake.notify_one();
                            return;
                        }
                        Ok(Ok(Err(()))) => {
                            "it was changed in another malt meanwhile; it is shown as it is now"
                                .to_string()
                        }
                        Ok(Err(e)) => e.to_string(),
                        Err(_) => "the database has stopped".into(),
                    };
                    let _ = events.send(Event::NotSaved {
                        kind,
                        media_id,
                        error,
                    });
                    if let Ok((entries, pending, refused)) =
                        db.call(move |s| snapshot(s, service)).await
                    {
                        let _ = events.send(Event::StoreChanged {
                            entries,
                            pending,
                            refused,
                        });
                    }
                });
            }
            Effect::RetryRefused { kind, media_id } => {
                let written = self
                    .db
                    .submit(move |s| s.retry_refused(service, kind, media_id));
                let wake = lane.wake.clone();
                tokio::spawn(async move {
                    if let Ok(Ok(_)) = written.await {
                        wake.notify_one();
                    }
                });
            }
            Effect::DropRefused { kind, media_id } => {
                // Nothing waits for the answer: a failure leaves the refusal to be shown next start.
                drop(
                    self.db
                        .submit(move |s| s.drop_refused(service, kind, media_id)),
                );
            }
            Effect::SendNow => {
                let written = self.db.submit(move |s| s.due_now(service));
                let kick = lane.kick.clone();
                tokio::spawn(async move {
                    if let Ok(Ok(_)) = written.await {
                        kick.notify_one();
                    }
                });
            }
            Effect::CheckLogin => lane.recheck.notify_one(),
            Effect::Fetch(kind) => {
                tokio::spawn(sync::fetch_list(
                    lane.provider.clone(),
                    self.db.clone(),
                    kind,
                    lane.events.clone(),
                ));
            }
            Effect::Search { kind, query } => {
                let provider = lane.provider.clone();
                let msgs = self.msgs.clone();
                tokio::spawn(async move {
                    let result = provider
                        .search(kind, &query)
                        .await
                        .map_err(|e| e.to_string());
                    let _ = msgs.send(Msg::Searched {
                        kind,
                        query,
                        result,
                    });
                });
            }
            Effect::LoadDetails { key } => {
                let provider = lane.provider.clone();
                let msgs = self.msgs.clone();
                tokio::spawn(async move {
                    let result = provider
                        .details(key.0, key.1)
                        .await
                        .map(Box::new)
                        .map_err(|e| e.to_string());
                    let _ = msgs.send(Msg::DetailsLoaded { key, result });
                });
            }
            Effect::SwitchService(to) => {
                let Some(lane) = self.lanes.iter().find(|l| l.provider.service() == to) else {
                    return;
                };
                let provider = lane.provider.clone();
                let db = self.db.clone();
                let msgs = self.msgs.clone();
                tokio::spawn(async move {
                    let msg = match load_service(&db, provider.as_ref()).await {
                        Ok(loaded) => Msg::ServiceLoaded(Box::new(loaded)),
                        Err(e) => Msg::ServiceFailed {
                            service: to,
                            error: e.to_string(),
                        },
                    };
                    let _ = msgs.send(msg);
                });
            }
            Effect::LoadCover {
                key,
                url,
                cols,
                rows,
            } => {
                let (Some(covers), Some(picker)) = (self.covers.clone(), self.picker.clone())
                else {
                    return;
                };
                let msgs = self.msgs.clone();
                tokio::spawn(async move {
                    let image = match covers.load(&url).await {
                        Ok(image) => image,
                        Err(e) => {
                            // The pane reads fine without it.
                            tracing::info!("no cover art: {e}");
                            return;
                        }
                    };
                    let made =
                        tokio::task::spawn_blocking(move || Cover::new(&picker, image, cols, rows))
                            .await;
                    match made {
                        Ok(Ok(cover)) => {
                            let _ = msgs.send(Msg::CoverLoaded { key, cover });
                        }
                        Ok(Err(e)) => tracing::info!("cover art not shown: {e}"),
                        Err(e) => tracing::warn!("cover art task failed: {e}"),
                    }
                });
            }
        }
    }
}

async fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    model: &mut Model,
    app: &App,
) -> color_eyre::Result<()> {
    let (events_tx, mut events_rx) = mpsc::unbounded_channel();
    let (msgs_tx, mut msgs_rx) = mpsc::unbounded_channel();
    let lanes: Vec<Lane> = app
        .providers
        .iter()
        .map(|p| Lane::new(p.clone(), events_tx.clone()))
        .collect();
    let mut tasks = Vec::new();
    for lane in &lanes {
        tasks.push((
            "the sync worker",
            tokio::spawn(
                sync::Worker {
                    provider: lane.provider.clone(),
                    db: app.db.clone(),
                    wake: lane.wake.clone(),
                    kick: lane.kick.clone(),
                    events: lane.events.clone(),
                }
                .run(),
            ),
        ));
        tasks.push((
            "the session refresher",
            tokio::spawn(sync::keep_fresh(
                lane.provider.clone(),
                lane.events.clone(),
                lane.recheck.clone(),
            )),
        ));
    }
    tasks.push((
        "the database watcher",
        tokio::spawn(watch_other_processes(
            app.db.clone(),
            lanes
                .iter()
                .map(|l| (l.provider.service(), l.wake.clone()))
                .collect(),
            events_tx.clone(),
        )),
    ));
    let runtime = Runtime {
        lanes,
        db: app.db.clone(),
        msgs: msgs_tx,
        covers: app.covers.clone().map(Arc::new),
        picker: app
            .covers
            .as_ref()
            .map(|_| Arc::new(crate::covers::picker())),
    };
    let mut background = Background { tasks };
    let mut inbox = Inbox {
        events: &mut events_rx,
        msgs: &mut msgs_rx,
    };
    let result = drive(terminal, model, &runtime, &mut inbox, &mut background).await;
    for (_, task) in &background.tasks {
        task.abort();
    }
    result
}

/// The long-running tasks. They only end by panicking, which must not go unnoticed: a dead worker
/// would leave changes unsent while the screen looks fine.
struct Background {
    tasks: Vec<(&'static str, tokio::task::JoinHandle<()>)>,
}

impl Background {
    async fn failed(&mut self) -> color_eyre::Report {
        if self.tasks.is_empty() {
            return std::future::pending().await;
        }
        let (outcome, i, _) =
            futures_util::future::select_all(self.tasks.iter_mut().map(|(_, task)| task)).await;
        let what = self.tasks[i].0;
        match outcome {
            Err(e) if e.is_panic() => {
                let payload = e.into_panic();
                let text = payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "no message".into());
                color_eyre::eyre::eyre!(
                    "{what} crashed ({text}); your changes are kept and will be sent on the next start"
                )
            }
            _ => color_eyre::eyre::eyre!(
                "{what} stopped unexpectedly; your changes are kept and will be sent on the next start"
            ),
        }
    }
}

/// Where background work and the UI's own requests report.
struct Inbox<'a> {
    /// Background work of every service, tagged with the service.
    events: &'a mut mpsc::UnboundedReceiver<(Service, Event)>,
    msgs: &'a mut mpsc::UnboundedReceiver<Msg>,
}

async fn drive(
    terminal: &mut ratatui::DefaultTerminal,
    model: &mut Model,
    runtime: &Runtime,
    inbox: &mut Inbox<'_>,
    background: &mut Background,
) -> color_eyre::Result<()> {
    let size = terminal.size()?;
    update(model, Msg::Clock(jiff::Timestamp::now()));
    update(model, Msg::Resize(size.width, size.height));
    terminal.draw(|f| view(model, f))?;
    for effect in update::start(model) {
        runtime.perform(effect, model.service);
    }
    let mut input = EventStream::new();
    let mut ticker = tokio::time::interval(Duration::from_millis(100));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    // Countdowns to the next episode move on once a minute.
    let mut minute = tokio::time::interval(Duration::from_secs(60));
    minute.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    minute.reset();
    let (_keep_open, mut stop) = shutdown_signals();
    loop {
        let animating = model.fetching.is_some();
        let msg = tokio::select! {
            term = input.next() => match term {
                Some(Ok(TermEvent::Key(key))) => Msg::Key(key),
                Some(Ok(TermEvent::Resize(w, h))) => Msg::Resize(w, h),
                Some(Ok(TermEvent::Mouse(mouse))) => Msg::Mouse(mouse),
                Some(Ok(_)) => continue,
                // The terminal is gone: nothing more can be shown or typed.
                Some(Err(_)) | None => Msg::Shutdown,
            },
            Some((service, event)) = inbox.events.recv() => {
                if service == model.active() {
                    Msg::Sync(event)
                } else {
                    Msg::Elsewhere(service, event)
                }
            }
            Some(msg) = inbox.msgs.recv() => msg,
            _ = ticker.tick(), if animating => Msg::Tick,
            _ = minute.tick() => Msg::Tick,
            _ = stop.recv() => Msg::Shutdown,
            report = background.failed() => return Err(report),
        };
        // Countdowns and the dates of changes read the clock from the model.
        update(model, Msg::Clock(jiff::Timestamp::now()));
        // Effects are for the list shown once the message is handled: only a completed switch
        // changes it, and what that asks for (the fetch, sending the queue) is for the list
        // switched to.
        let effects = update(model, msg);
        let service = model.service;
        for effect in effects {
            runtime.perform(effect, service);
        }
        if model.quit {
            return Ok(());
        }
        terminal.draw(|f| view(model, f))?;
    }
}

/// SIGTERM and SIGHUP (a closed terminal window) end the app cleanly.
fn shutdown_signals() -> (mpsc::Sender<()>, mpsc::Receiver<()>) {
    let (tx, rx) = mpsc::channel(1);
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        for kind in [SignalKind::terminate(), SignalKind::hangup()] {
            if let Ok(mut sig) = signal(kind) {
                let tx = tx.clone();
                tokio::spawn(async move {
                    sig.recv().await;
                    let _ = tx.send(()).await;
                });
            }
        }
    }
    (tx, rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_crashed_background_task_ends_the_app_with_a_report() {
        // (The panic's own message is printed by the test's panic hook; that is expected.)
        let mut background = Background {
            tasks: vec![
                (
                    "the session refresher",
                    tokio::spawn(std::future::pending()),
                ),
                (
                    "the sync worker",
                    tokio::spawn(async { panic!("outbox exploded") }),
                ),
                ("the database watcher", tokio::spawn(std::future::pending())),
            ],
        };
        let report = tokio::time::timeout(Duration::from_secs(5), background.failed())
            .await
            .expect("a crash is noticed at once")
            .to_string();
        assert!(
            report.contains("the sync worker crashed (outbox exploded)"),
            "{report}"
        );
        assert!(report.contains("your changes are kept"), "{report}");
    }
}
