//! The command line: `malt` (the list screen), `malt --login`, `malt --demo`, and the commands for
//! scripts. One definition gives the parser, `--help`, the completions and the man page. Each
//! command is a thin front end (one file each) over the core: the rules of a change
//! (`domain::rules`), finding an entry (`library`), the store and its outbox, the sync worker.

mod add;
mod completions;
mod list;
mod output;
mod progress;
mod send;
mod set;
mod show;
mod status;
mod sync;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::app::Context;
use crate::domain::{MediaKind, Service, Status};
use crate::library::{Library, Miss, Pick};
use crate::providers::Provider;
use crate::store::Db;

const EXIT_CODES: &str = "\
Exit codes:
  0  done
  1  error (no login, no cache, a damaged config, a change refused, …)
  2  bad usage, or a query that names several entries
  3  queued but not yet delivered (network down, throttled, session expired): the next malt sends it";

/// A terminal tracker for your MyAnimeList, AniList and MangaDex lists: press + after an episode or chapter, and it is counted.
#[derive(Debug, Parser)]
#[command(
    name = "malt",
    version,
    about,
    after_help = EXIT_CODES,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// Log in to a service in the browser, store the session, and exit.
    #[arg(long, value_name = "SERVICE", num_args = 0..=1, default_missing_value = "mal")]
    pub login: Option<ServiceName>,

    /// With --login: print the login address and read the redirect URL (or code) from stdin,
    /// for machines without a browser (SSH).
    #[arg(long, requires = "login")]
    pub no_browser: bool,

    /// Try malt on a built-in sample list: no account, no network.
    #[arg(long, conflicts_with = "login")]
    pub demo: bool,

    /// Use this config file instead of $XDG_CONFIG_HOME/malt/config.toml.
    #[arg(long, value_name = "PATH", global = true)]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List entries from the cache (no network): by default what you are watching and reading.
    #[command(after_help = EXIT_CODES)]
    List(list::ListArgs),
    /// Show one entry, with everything the cache knows of it.
    #[command(after_help = EXIT_CODES)]
    Show(show::ShowArgs),
    /// Count episodes or chapters: `malt progress frieren +1`.
    #[command(after_help = EXIT_CODES)]
    Progress(progress::ProgressArgs),
    /// Change an entry's score, status, re-watching or dates.
    #[command(after_help = EXIT_CODES)]
    Set(set::SetArgs),
    /// Search the service and add a title to your list.
    #[command(after_help = EXIT_CODES)]
    Add(add::AddArgs),
    /// Fetch every list of every logged-in service and send the changes waiting.
    #[command(after_help = EXIT_CODES)]
    Sync(sync::SyncArgs),
    /// Who is logged in where, the last sync, and changes waiting, refused or in conflict.
    #[command(after_help = EXIT_CODES)]
    Status(status::StatusArgs),
    /// Log in to a service (the same as `malt --login SERVICE`).
    Login(LoginArgs),
    /// Print a completion script for a shell.
    Completions(completions::CompletionsArgs),
    /// Print the manual page (roff) on standard output.
    Man,
}

/// `malt login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The service to log in to.
    #[arg(default_value = "mal")]
    pub service: ServiceName,
    /// Print the login address and read the redirect URL (or code) from stdin.
    #[arg(long)]
    pub no_browser: bool,
}

/// Services malt knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ServiceName {
    /// MyAnimeList
    Mal,
    /// AniList
    Anilist,
    /// MangaDex (asks for the password; no browser)
    Mangadex,
}

impl ServiceName {
    pub fn service(self) -> Service {
        match self {
            ServiceName::Mal => Service::Mal,
            ServiceName::Anilist => Service::Anilist,
            ServiceName::Mangadex => Service::Mangadex,
        }
    }
}

/// `--kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum KindName {
    Anime,
    Manga,
}

impl KindName {
    pub fn kind(self) -> MediaKind {
        match self {
            KindName::Anime => MediaKind::Anime,
            KindName::Manga => MediaKind::Manga,
        }
    }
}

/// A status, as `--status` takes it and `--json` writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StatusName {
    /// Watching (anime) or reading (manga)
    #[value(alias = "current")]
    Watching,
    /// Reading (manga) or watching (anime)
    Reading,
    Completed,
    #[value(name = "on_hold", alias = "on-hold", alias = "paused")]
    OnHold,
    Dropped,
    /// Plan to watch (anime) or plan to read (manga)
    #[value(name = "plan_to_watch", alias = "plan-to-watch", alias = "planning")]
    PlanToWatch,
    /// Plan to read (manga) or plan to watch (anime)
    #[value(name = "plan_to_read", alias = "plan-to-read")]
    PlanToRead,
}

impl StatusName {
    pub fn status(self) -> Status {
        match self {
            StatusName::Watching | StatusName::Reading => Status::Current,
            StatusName::Completed => Status::Completed,
            StatusName::OnHold => Status::OnHold,
            StatusName::Dropped => Status::Dropped,
            StatusName::PlanToWatch | StatusName::PlanToRead => Status::Planning,
        }
    }
}

/// How a command ended, as its exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Done = 0,
    Error = 1,
    Usage = 2,
    Queued = 3,
}

/// A command that could not do what was asked: one sentence for stderr, and the exit code.
#[derive(Debug)]
pub struct Failure {
    pub exit: Exit,
    pub message: String,
}

impl Failure {
    pub fn error(message: impl Into<String>) -> Failure {
        Failure {
            exit: Exit::Error,
            message: message.into(),
        }
    }

    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            exit: Exit::Usage,
            message: message.into(),
        }
    }
}

impl From<crate::store::StoreError> for Failure {
    fn from(e: crate::store::StoreError) -> Failure {
        Failure::error(e.to_string())
    }
}

type Outcome = Result<Exit, Failure>;

/// Runs what the command line asks for; returns the process's exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.command.is_some() {
        // A command whose reader has gone (`malt list | head -3`) ends quietly, as `cat` does,
        // instead of failing to print.
        #[cfg(unix)]
        // SAFETY: setting a signal's disposition to its default before any thread is started.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let _log = crate::app::init_logging();
    let outcome = run(cli);
    match outcome {
        Ok(exit) => ExitCode::from(exit as u8),
        Err(failure) => {
            output::error(&failure.message);
            ExitCode::from(failure.exit as u8)
        }
    }
}

fn run(cli: Cli) -> Outcome {
    let runtime = crate::app::runtime().map_err(Failure::error)?;
    let config = cli.config.as_deref();
    let login = match (&cli.command, cli.login) {
        (Some(Command::Login(args)), _) => Some((args.service, args.no_browser)),
        (_, Some(service)) => Some((service, cli.no_browser)),
        _ => None,
    };
    if let Some((service, no_browser)) = login {
        let ctx = Context::load(config).map_err(Failure::error)?;
        return runtime
            .block_on(crate::login::login(&ctx, service.service(), no_browser))
            .map(|name| {
                println!(
                    "Logged in to {} as {name}",
                    service.service().display_name()
                );
                Exit::Done
            })
            .map_err(Failure::error);
    }
    if cli.demo {
        return runtime
            .block_on(crate::app::run_demo(config))
            .map(|()| Exit::Done)
            .map_err(Failure::error);
    }
    match cli.command {
        None => {
            let ctx = Context::load(config).map_err(Failure::error)?;
            runtime
                .block_on(crate::app::run_list(ctx))
                .map(|()| Exit::Done)
                .map_err(Failure::error)
        }
        Some(Command::Completions(args)) => completions::completions(&args),
        Some(Command::Man) => completions::man(),
        Some(Command::Login(_)) => Ok(Exit::Done),
        Some(Command::List(args)) => runtime.block_on(list::run(config, args)),
        Some(Command::Show(args)) => runtime.block_on(show::run(config, args)),
        Some(Command::Progress(args)) => runtime.block_on(progress::run(config, args)),
        Some(Command::Set(args)) => runtime.block_on(set::run(config, args)),
        Some(Command::Add(args)) => runtime.block_on(add::run(config, args)),
        Some(Command::Sync(args)) => runtime.block_on(sync::run(config, args)),
        Some(Command::Status(args)) => runtime.block_on(status::run(config, args)),
    }
}

/// What a command works on: the logged-in services it is about, and the database.
pub struct Opened {
    pub ctx: Context,
    pub providers: Vec<Arc<dyn Provider>>,
    pub db: Db,
}

impl Opened {
    /// The config, the logged-in services (only `only` when given) and the database. A database
    /// that had to be rebuilt is said on stderr.
    pub fn open(
        config: Option<&std::path::Path>,
        only: Option<ServiceName>,
    ) -> Result<Opened, Failure> {
        let ctx = Context::load(config).map_err(Failure::error)?;
        let providers = match only.map(ServiceName::service) {
            Some(service) => match ctx.provider(service) {
                Some(p) => vec![p],
                None => return Err(Failure::error(not_logged_in_to(&ctx, service))),
            },
            None => ctx.logged_in().map_err(Failure::error)?,
        };
        let (store, recovery) = ctx.open_store().map_err(Failure::error)?;
        if let Some(recovery) = recovery {
            output::warn(&recovery.to_string());
        }
        Ok(Opened {
            ctx,
            providers,
            db: Db::spawn(store),
        })
    }

    /// Every list from the cache; an error when none has been fetched yet.
    pub async fn library(&self) -> Result<Library, Failure> {
        let library = Library::load(&self.db, &self.providers).await?;
        let never = library.never_synced();
        if never.len() == library.lists.len() {
            return Err(Failure::error(
                "nothing is cached yet: run `malt sync` first (or `malt` to open the list)",
            ));
        }
        for service in never {
            output::warn(&format!(
                "nothing cached for {} yet: run `malt sync`",
                service.display_name()
            ));
        }
        Ok(library)
    }
}

/// Why a service's list cannot be used: its table is missing, or its login.
fn not_logged_in_to(ctx: &Context, service: Service) -> String {
    let configured = match service {
        Service::Mal => ctx.config.mal.is_some(),
        Service::Anilist => ctx.config.anilist.is_some(),
        Service::Mangadex => ctx.config.mangadex.is_some(),
        Service::Demo => false,
    };
    if configured {
        format!(
            "not logged in to {}: run `{}` first",
            service.display_name(),
            service.login_command()
        )
    } else {
        format!(
            "{} is not set up: add a [{}] table to {} (see config.example.toml)",
            service.display_name(),
            service.key(),
            ctx.config.path.display()
        )
    }
}

/// The one entry `query` names, or why there is none (ambiguous: exit 2 with the candidates).
pub fn pick<'a>(
    library: &'a Library,
    query: &str,
    kind: Option<MediaKind>,
) -> Result<Pick<'a>, Failure> {
    if query.trim().is_empty() {
        return Err(Failure::usage(
            "the query is empty: name a title, or `mal:ID`",
        ));
    }
    library.find(query, kind).map_err(|miss| match miss {
        Miss::Nothing => Failure::error(format!("nothing on your list matches \"{}\"", query.trim())),
        Miss::Several(picks) => {
            let mut message = format!(
                "\"{}\" matches several entries; name one by its id (or narrow with --service/--kind):",
                query.trim()
            );
            for p in picks {
                message.push_str(&format!(
                    "\n  {}  {}  ({}, {})",
                    p.list.reference(p.row),
                    p.row.entry.title,
                    p.row.entry.kind.key(),
                    p.row.entry.status.label(p.row.entry.kind).to_lowercase()
                ));
            }
            Failure::usage(message)
        }
        Miss::BadId { service, text } => Failure::usage(format!(
            "\"{text}\" is not a {} id",
            service.display_name()
        )),
        Miss::NotShown(service) => Failure::usage(format!(
            "{} is not among the services this command looks at (logged in, and chosen with --service)",
            service.display_name()
        )),
    })
}

/// Today in the user's time zone, `YYYY-MM-DD` (the dates a change sets).
pub fn today() -> String {
    jiff::ZonedDateTime::now().date().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn login_defaults_to_mal() {
        let cli = Cli::try_parse_from(["malt", "--login"]).unwrap();
        assert_eq!(cli.login, Some(ServiceName::Mal));
        let cli = Cli::try_parse_from(["malt", "--login", "mal", "--no-browser"]).unwrap();
        assert!(cli.no_browser);
        let cli = Cli::try_parse_from(["malt", "--login", "anilist"]).unwrap();
        assert_eq!(cli.login, Some(ServiceName::Anilist));
        let cli = Cli::try_parse_from(["malt", "--login", "mangadex"]).unwrap();
        assert_eq!(cli.login, Some(ServiceName::Mangadex));
        assert!(Cli::try_parse_from(["malt", "--no-browser"]).is_err());
        assert!(Cli::try_parse_from(["malt", "--demo", "--login"]).is_err());
        assert!(Cli::try_parse_from(["malt", "--login", "list"]).is_err());
        let cli = Cli::try_parse_from(["malt", "login", "anilist", "--no-browser"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Login(LoginArgs {
                service: ServiceName::Anilist,
                no_browser: true
            }))
        ));
    }

    #[test]
    fn progress_takes_signed_and_plain_counts() {
        for (arg, ok) in [("+1", true), ("-1", true), ("12", true), ("-3", true)] {
            let parsed = Cli::try_parse_from(["malt", "progress", "frieren", arg]);
            assert_eq!(parsed.is_ok(), ok, "{arg}");
        }
        let cli =
            Cli::try_parse_from(["malt", "list", "--status", "plan_to_watch", "--json"]).unwrap();
        assert!(matches!(cli.command, Some(Command::List(_))));
        assert!(Cli::try_parse_from(["malt", "list", "--status", "someday"]).is_err());
        assert!(Cli::try_parse_from(["malt", "list", "--service", "kitsu"]).is_err());
    }
}
