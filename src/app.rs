//! Wires the pieces together for each command.

use std::path::PathBuf;
use std::sync::Arc;

use crate::cli::{Cli, LoginService};
use crate::config::{self, Config, KeyMap};
use crate::domain::{MediaKind, Service};
use crate::providers::{
    self, Provider, anilist::Anilist, demo::Demo, mal::Mal, mangadex::Mangadex,
};
use crate::store::{Db, Store};
use crate::tui;

/// Where this user's files are.
pub struct Files {
    pub data: PathBuf,
}

impl Files {
    pub fn locate() -> Result<Files, String> {
        let data = crate::paths::data_dir()
            .map_err(|e| format!("cannot create the data directory: {e}"))?;
        Ok(Files { data })
    }

    pub fn database(&self) -> PathBuf {
        crate::store::default_path(&self.data)
    }

    pub fn tokens(&self, service: Service) -> PathBuf {
        self.data.join(format!("{}-tokens.json", service.key()))
    }
}

/// Runs one command; the error is one sentence for the terminal.
pub fn run(cli: Cli) -> Result<(), String> {
    let _log = init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        // One worker for the background tasks; the list itself runs on the main thread.
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start: {e}"))?;
    if cli.demo {
        return runtime.block_on(run_demo(&cli));
    }
    let config = load_config(&cli)?;
    let files = Files::locate()?;
    match cli.login {
        Some(LoginService::Mal) => {
            let mal = config.require_mal().map_err(|e| e.to_string())?;
            let name = runtime.block_on(crate::login::login_mal(mal, &files, cli.no_browser))?;
            println!("Logged in to MyAnimeList as {name}");
            Ok(())
        }
        Some(LoginService::Anilist) => {
            let anilist = config.require_anilist().map_err(|e| e.to_string())?;
            let name =
                runtime.block_on(crate::login::login_anilist(anilist, &files, cli.no_browser))?;
            println!("Logged in to AniList as {name}");
            Ok(())
        }
        Some(LoginService::Mangadex) => {
            let mangadex = config.require_mangadex().map_err(|e| e.to_string())?;
            let name = runtime.block_on(crate::login::login_mangadex(mangadex, &files))?;
            println!("Logged in to MangaDex as {name}");
            Ok(())
        }
        None => runtime.block_on(run_list(config, files)),
    }
}

fn load_config(cli: &Cli) -> Result<Config, String> {
    let path = match &cli.config {
        Some(path) => path.clone(),
        None => config::default_path().map_err(|e| e.to_string())?,
    };
    Config::load(&path).map_err(|e| e.to_string())
}

async fn run_list(config: Config, files: Files) -> Result<(), String> {
    if config.mal.is_none() && config.anilist.is_none() && config.mangadex.is_none() {
        return Err(config.no_service().to_string());
    }
    let http = providers::Http::default();
    // Every configured service with a saved login, MyAnimeList first.
    let mut logged_in: Vec<Arc<dyn Provider>> = Vec::new();
    if let Some(mal) = &config.mal {
        let tokens = files.tokens(Service::Mal);
        if tokens.exists() {
            let file = crate::auth::TokenFile::new(tokens);
            logged_in.push(Arc::new(Mal::new(mal, http.clone(), file)));
        }
    }
    if let Some(anilist) = &config.anilist {
        let tokens = files.tokens(Service::Anilist);
        if tokens.exists() {
            let file = crate::auth::TokenFile::new(tokens);
            logged_in.push(Arc::new(Anilist::new(anilist, http.clone(), file)));
        }
    }
    if let Some(mangadex) = &config.mangadex {
        let tokens = files.tokens(Service::Mangadex);
        if tokens.exists() {
            let file = crate::auth::TokenFile::new(tokens);
            let ids = files.data.join("mangadex-ids.json");
            logged_in.push(Arc::new(Mangadex::new(mangadex, http.clone(), file, ids)));
        }
    }
    if logged_in.is_empty() {
        let commands: Vec<String> = [
            (config.mal.is_some(), Service::Mal),
            (config.anilist.is_some(), Service::Anilist),
            (config.mangadex.is_some(), Service::Mangadex),
        ]
        .into_iter()
        .filter(|(configured, _)| *configured)
        .map(|(_, s)| format!("`{}` ({})", s.login_command(), s.display_name()))
        .collect();
        return Err(format!(
            "not logged in yet: run {} first (or `malt --demo` to look around)",
            commands.join(" or ")
        ));
    }
    let (store, recovery) = Store::open_or_recover(&files.database()).map_err(|e| e.to_string())?;
    let covers = config.images.then(|| covers_for(http.clone())).flatten();
    let app = tui::App {
        providers: logged_in,
        db: Db::spawn(store),
        keys: config.keys,
        theme: config.theme.effective(crate::config::from_env_no_color()),
        covers,
        warning: recovery.map(|r| r.to_string()),
    };
    tui::run(app).await.map_err(|e| e.to_string())
}

async fn run_demo(cli: &Cli) -> Result<(), String> {
    // The demo needs no config; a present one still supplies key bindings and colours.
    let (keys, theme) = match load_config(cli) {
        Ok(config) => (config.keys, config.theme),
        Err(e) if cli.config.is_none() && !default_config_exists() => {
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
fn init_logging() -> Option<tracing_appender::non_blocking::WorkerGuard> {
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
