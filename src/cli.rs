//! Command-line arguments.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

/// A terminal tracker for your MyAnimeList, AniList and MangaDex lists: press + after an episode or chapter, and it is counted.
#[derive(Debug, Parser)]
#[command(name = "malt", version, about)]
pub struct Cli {
    /// Log in to a service in the browser, store the session, and exit.
    #[arg(long, value_name = "SERVICE", num_args = 0..=1, default_missing_value = "mal")]
    pub login: Option<LoginService>,

    /// With --login: print the login address and read the redirect URL (or code) from stdin,
    /// for machines without a browser (SSH).
    #[arg(long, requires = "login")]
    pub no_browser: bool,

    /// Try malt on a built-in sample list: no account, no network.
    #[arg(long, conflicts_with = "login")]
    pub demo: bool,

    /// Use this config file instead of $XDG_CONFIG_HOME/malt/config.toml.
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
}

/// Services `--login` knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LoginService {
    /// MyAnimeList
    Mal,
    /// AniList
    Anilist,
    /// MangaDex (asks for the password; no browser)
    Mangadex,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_defaults_to_mal() {
        let cli = Cli::try_parse_from(["malt", "--login"]).unwrap();
        assert_eq!(cli.login, Some(LoginService::Mal));
        let cli = Cli::try_parse_from(["malt", "--login", "mal", "--no-browser"]).unwrap();
        assert!(cli.no_browser);
        let cli = Cli::try_parse_from(["malt", "--login", "anilist"]).unwrap();
        assert_eq!(cli.login, Some(LoginService::Anilist));
        let cli = Cli::try_parse_from(["malt", "--login", "mangadex"]).unwrap();
        assert_eq!(cli.login, Some(LoginService::Mangadex));
        assert!(Cli::try_parse_from(["malt", "--no-browser"]).is_err());
        assert!(Cli::try_parse_from(["malt", "--demo", "--login"]).is_err());
    }
}
