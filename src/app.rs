//! Starting up: the configuration, this user's files, the logged-in services, the log. Every
//! front end (the list screen, the shell commands) starts from a [`Context`].

use std::path::Path;
use std::sync::Arc;

use crate::config::{self, Config, KeyMap};
use crate::domain::{MediaKind, Service};
pub use crate::paths::Files;
use crate::providers::{
    self, Provider, anilist::Anilist, demo::Demo, mal::Mal, mangadex::Mangadex,
};
use crate::store::{Db, Recovery, Store};
use crate::tui;

/// The runtime every front end runs on: one worker thread for the background tasks (the list
/// screen itself runs on the main thread).
pub fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start: {e}"))
}

/// What every command starts from: the configuration, the files, one HTTP client.
pub struct Context {
    pub config: Config,
    pub files: Files,
    pub http: providers::Http,
}

impl Context {
    /// Reads the config (`path`, or the default one) and finds the data directory.
    pub fn load(path: Option<&Path>) -> Result<Context, String> {
        let config = load_config(path)?;
        let files = Files::locate()?;
        Ok(Context {
            config,
            files,
            http: providers::Http::default(),
        })
    }

    /// A service's API client, if its table is in the config and its login is saved.
    pub fn provider(&self, service: Service) -> Option<Arc<dyn Provider>> {
        let tokens = self.files.tokens(service);
        if !tokens.exists() {
            return None;
        }
        let file = crate::auth::TokenFile::new(tokens);
        let http = self.http.clone();
        match service {
            Service::Mal => self
                .config
                .mal
                .as_ref()
                .map(|c| Arc::new(Mal::new(c, http, file)) as Arc<dyn Provider>),
            Service::Anilist => self
                .config
                .anilist
                .as_ref()
                .map(|c| Arc::new(Anilist::new(c, http, file)) as Arc<dyn Provider>),
            Service::Mangadex => self.config.mangadex.as_ref().map(|c| {
                Arc::new(Mangadex::new(c, http, file, self.files.mangadex_ids()))
                    as Arc<dyn Provider>
            }),
            Service::Demo => None,
        }
    }

    /// Every configured service with a saved login, MyAnimeList first; when there is none, what
    /// to do about it.
    pub fn logged_in(&self) -> Result<Vec<Arc<dyn Provider>>, String> {
        if self.config.mal.is_none()
            && self.config.anilist.is_none()
            && self.config.mangadex.is_none()
        {
            return Err(self.config.no_service().to_string());
        }
        let logged_in: Vec<Arc<dyn Provider>> = Service::LOGGABLE
            .into_iter()
            .filter_map(|s| self.provider(s))
            .collect();
        if logged_in.is_empty() {
            return Err(self.not_logged_in());
        }
        Ok(logged_in)
    }

    /// "not logged in yet: run `malt --login` first", naming every configured service's login.
    fn not_logged_in(&self) -> String {
        let commands: Vec<String> = [
            (self.config.mal.is_some(), Service::Mal),
            (self.config.anilist.is_some(), Service::Anilist),
            (self.config.mangadex.is_some(), Service::Mangadex),
        ]
        .into_iter()
        .filter(|(configured, _)| *configured)
        .map(|(_, s)| format!("`{}` ({})", s.login_command(), s.display_name()))
        .collect();
        format!(
            "not logged in yet: run {} first (or `malt --demo` to look around)",
            commands.join(" or ")
        )
    }

    /// Opens the database; a damaged one is rebuilt (what was done is returned, to be said).
    pub fn open_store(&self) -> Result<(Store, Option<Recovery>), String> {
        Store::open_or_recover(&self.files.database()).map_err(|e| e.to_string())
    }
}

fn load_config(path: Option<&Path>) -> Result<Config, String> {
    let path = match path {
        Some(path) => path.to_path_buf(),
        None => config::default_path().map_err(|e| e.to_string())?,
    };
    Config::load(&path).map_err(|e| e.to_string())
}

/// `malt`: the full-screen list of every logged-in service.
pub async fn run_list(ctx: Context) -> Result<(), String> {
    let logged_in = ctx.logged_in()?;
    let (store, recovery) = ctx.open_store()?;
    let covers = ctx
        .config
        .images
        .then(|| covers_for(ctx.http.clone()))
        .flatten();
    let app = tui::App {
        providers: logged_in,
        db: Db::spawn(store),
        keys: ctx.config.keys,
        theme: ctx
            .config
            .theme
            .effective(crate::config::from_env_no_color()),
        covers,
        warning: recovery.map(|r| r.to_string()),
    };
    tui::run(app).await.map_err(|e| e.to_string())
}

/// `malt --demo`: the list screen on the built-in sample list.
pub async fn run_demo(config: Option<&Path>) -> Result<(), String> {
    // The demo needs no config; a present one still supplies key bindings and colours.
    let (keys, theme) = match load_config(config) {
        Ok(config) => (config.keys, config.theme),
        Err(e) if config.is_none() && !default_config_exists() => {
            tracing::debug!("demo without config: {e}");
            (KeyMap::default(), crate::config::Theme::default())
        }
        Err(e) => return Err(e),
    };
    let mut store = Store::open_in_memory().map_err(|e| e.to_string())?;
    let demo = Demo::default();
    // Seed the cache as if the list had been synced before, so the first frame shows it.
    let seed = demo.entries();
    for kind in MediaKind::ALL {
        store
            .replace_entries(Service::Demo, kind, &seed, i64::MAX, false)
            .map_err(|e| e.to_string())?;
    }
    store
        .set_meta(Service::Demo, "account", "demo")
        .map_err(|e| e.to_string())?;
    let app = tui::App {
        providers: vec![Arc::new(demo)],
        db: Db::spawn(store),
        keys,
        theme: theme.effective(crate::config::from_env_no_color()),
        // The demo has no cover art to show.
        covers: None,
        warning: None,
    };
    tui::run(app).await.map_err(|e| e.to_string())
}

/// The cover art cache, `$XDG_CACHE_HOME/malt/covers`.
fn covers_for(http: providers::Http) -> Option<crate::covers::Covers> {
    let dir = dirs::cache_dir()?.join("malt").join("covers");
    Some(crate::covers::Covers::new(dir, http))
}

fn default_config_exists() -> bool {
    config::default_path().is_ok_and(|p| p.exists())
}

/// Logs go to `$XDG_STATE_HOME/malt/malt.log`, never to the terminal. `MALT_LOG` sets malt's level
/// (e.g. `MALT_LOG=debug`); other crates stay at `warn`, so no HTTP library logs a request.
pub fn init_logging() -> Option<tracing_appender::non_blocking::WorkerGuard> {
    let dir = crate::paths::state_dir().ok()?;
    let path = dir.join("malt.log");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .ok()?;
    let _ = crate::paths::set_mode(&path, 0o600);
    // A small queue: the default one preallocates megabytes for a log that sees a few lines.
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(1024)
        .finish(file);
    let level = std::env::var("MALT_LOG")
        .ok()
        // `debug` or `malt=debug`: either way, malt's own level.
        .map(|l| l.trim().trim_start_matches("malt=").to_ascii_lowercase())
        .filter(|l| ["error", "warn", "info", "debug", "trace"].contains(&l.as_str()))
        .unwrap_or_else(|| "info".into());
    let filter = tracing_subscriber::EnvFilter::new(format!("warn,malt={level}"));
    tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .with_env_filter(filter)
        .try_init()
        .ok()?;
    Some(guard)
}
