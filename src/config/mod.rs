//! `config.toml`: where it lives, what it holds, and a clear sentence for every mistake in it.

mod keymap;
mod theme;

use std::path::{Path, PathBuf};

use reqwest::Url;
use serde::Deserialize;

pub use keymap::{Action, KeyMap};
pub use theme::{Theme, from_env_no_color, parse_style};

pub const DEFAULT_REDIRECT_URI: &str = "http://127.0.0.1:53682/callback";
pub const MAL_API_URL: &str = "https://api.myanimelist.net/v2";
pub const MAL_AUTH_URL: &str = "https://myanimelist.net/v1/oauth2";
pub const ANILIST_API_URL: &str = "https://graphql.anilist.co";
pub const ANILIST_AUTH_URL: &str = "https://anilist.co/api/v2/oauth";
/// AniList's own page that shows the token to copy (an app registered with this redirect URL
/// logs in by pasting).
pub const ANILIST_PIN_URI: &str = "https://anilist.co/api/v2/oauth/pin";
pub const MANGADEX_API_URL: &str = "https://api.mangadex.org";
pub const MANGADEX_AUTH_URL: &str =
    "https://auth.mangadex.org/realms/mangadex/protocol/openid-connect";

/// A problem with the configuration, phrased as what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "no config file at {0}. Copy config.example.toml there and set [mal] client_id (README: \"Register a MyAnimeList API client\")."
    )]
    Missing(PathBuf),
    #[error("cannot read the config file {path}: {source}")]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: line {line}, column {column}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    Value { path: PathBuf, message: String },
    #[error(
        "cannot tell where your config directory is: set XDG_CONFIG_HOME or HOME, or pass --config PATH"
    )]
    NoConfigDir,
}

/// The whole configuration file.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub mal: Option<MalConfig>,
    pub anilist: Option<AnilistConfig>,
    /// An `[anilist]` table is there, every key still commented out (as in the example).
    anilist_unset: bool,
    pub mangadex: Option<MangadexConfig>,
    /// The same for `[mangadex]`.
    mangadex_unset: bool,
    pub keys: KeyMap,
    /// The `[theme]` as written; draw with [`Theme::effective`] to honour `NO_COLOR`.
    pub theme: Theme,
    /// Cover art in the details pane (`images = false` turns it off).
    pub images: bool,
}

/// A service's API client, from its table (`[mal]`, `[anilist]`), validated.
#[derive(Clone)]
pub struct ClientConfig {
    pub client_id: String,
    /// MyAnimeList "web" apps have one. On AniList, a secret makes the login use the
    /// authorization-code grant instead of the implicit grant.
    pub client_secret: Option<String>,
    /// A loopback address (on AniList also its pin page, [`ANILIST_PIN_URI`]).
    pub redirect_uri: Url,
    pub api_url: Url,
    pub auth_url: Url,
}

/// The `[mal]` table.
pub type MalConfig = ClientConfig;
/// The `[anilist]` table.
pub type AnilistConfig = ClientConfig;

impl ClientConfig {
    /// The app is registered with AniList's pin page: the token is pasted, never caught.
    pub fn uses_pin(&self) -> bool {
        self.redirect_uri.as_str() == ANILIST_PIN_URI
    }
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("redirect_uri", &self.redirect_uri.as_str())
            .field("api_url", &self.api_url.as_str())
            .field("auth_url", &self.auth_url.as_str())
            .finish()
    }
}

/// The `[mangadex]` table, validated: a personal API client of the account `username` (the
/// password is asked for at login and never stored).
#[derive(Clone)]
pub struct MangadexConfig {
    pub client_id: String,
    pub client_secret: String,
    pub username: String,
    pub api_url: Url,
    /// The Keycloak realm's OpenID Connect base; the token endpoint is `{auth_url}/token`.
    pub auth_url: Url,
    /// Chapter languages, in order of preference (`["en"]`).
    pub languages: Vec<String>,
}

impl std::fmt::Debug for MangadexConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MangadexConfig")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("username", &self.username)
            .field("api_url", &self.api_url.as_str())
            .field("auth_url", &self.auth_url.as_str())
            .field("languages", &self.languages)
            .finish()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMangadex {
    client_id: Option<String>,
    client_secret: Option<String>,
    username: Option<String>,
    api_url: Option<String>,
    auth_url: Option<String>,
    languages: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    images: Option<bool>,
    mal: Option<RawMal>,
    anilist: Option<RawMal>,
    mangadex: Option<RawMangadex>,
    keys: Option<toml::Table>,
    theme: Option<theme::RawTheme>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMal {
    client_id: Option<String>,
    client_secret: Option<String>,
    redirect_uri: Option<String>,
    api_url: Option<String>,
    auth_url: Option<String>,
}

/// `$XDG_CONFIG_HOME/malt/config.toml`.
pub fn default_path() -> Result<PathBuf, ConfigError> {
    dirs::config_dir()
        .map(|d| d.join("malt").join("config.toml"))
        .ok_or(ConfigError::NoConfigDir)
}

impl Config {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ConfigError::Missing(path.to_path_buf()));
            }
            Err(source) => {
                return Err(ConfigError::Unreadable {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        Config::parse(path, &text)
    }

    /// Validates configuration text; `path` is only used in messages.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let (line, column) = e
                .span()
                .map(|span| line_column(text, span.start))
                .unwrap_or((1, 1));
            ConfigError::Invalid {
                path: path.to_path_buf(),
                line,
                column,
                // One line, whatever the file held (toml quotes keys it did not expect).
                message: e.message().split_whitespace().collect::<Vec<_>>().join(" "),
            }
        })?;
        let value_error = |message: String| ConfigError::Value {
            path: path.to_path_buf(),
            message,
        };
        let mal = raw
            .mal
            .map(|m| validate_mal(m).map_err(value_error))
            .transpose()?;
        // The example's table, copied with its keys still commented out, means "not used yet".
        let anilist_unset = raw.anilist.as_ref().is_some_and(|a| {
            a.client_id.is_none()
                && a.client_secret.is_none()
                && a.redirect_uri.is_none()
                && a.api_url.is_none()
                && a.auth_url.is_none()
        });
        let anilist = raw
            .anilist
            .filter(|_| !anilist_unset)
            .map(|a| validate_anilist(a).map_err(value_error))
            .transpose()?;
        let mangadex_unset = raw.mangadex.as_ref().is_some_and(|m| {
            m.client_id.is_none()
                && m.client_secret.is_none()
                && m.username.is_none()
                && m.api_url.is_none()
                && m.auth_url.is_none()
                && m.languages.is_none()
        });
        let mangadex = raw
            .mangadex
            .filter(|_| !mangadex_unset)
            .map(|m| validate_mangadex(m).map_err(value_error))
            .transpose()?;
        let keys = match raw.keys {
            Some(table) => KeyMap::from_table(&table).map_err(value_error)?,
            None => KeyMap::default(),
        };
        let theme = match raw.theme {
            Some(table) => Theme::from_raw(table).map_err(|(offset, message)| {
                let (line, column) = line_column(text, offset);
                ConfigError::Invalid {
                    path: path.to_path_buf(),
                    line,
                    column,
                    message,
                }
            })?,
            None => Theme::default(),
        };
        Ok(Config {
            path: path.to_path_buf(),
            mal,
            anilist,
            anilist_unset,
            mangadex,
            mangadex_unset,
            keys,
            theme,
            images: raw.images.unwrap_or(true),
        })
    }

    /// The `[mal]` table, or a sentence saying it must be added.
    pub fn require_mal(&self) -> Result<&MalConfig, ConfigError> {
        self.mal.as_ref().ok_or_else(|| ConfigError::Value {
            path: self.path.clone(),
            message:
                "there is no [mal] table: add one with your client_id (see config.example.toml)"
                    .into(),
        })
    }

    /// Why no service can be used, when no table is set up: what to add.
    pub fn no_service(&self) -> ConfigError {
        ConfigError::Value {
            path: self.path.clone(),
            message: if self.anilist_unset {
                ANILIST_NO_CLIENT_ID.into()
            } else if self.mangadex_unset {
                MANGADEX_INCOMPLETE.into()
            } else {
                "there is no [mal], [anilist] or [mangadex] table: add one with your API client (see config.example.toml)".into()
            },
        }
    }

    /// The `[mangadex]` table, or a sentence saying it must be added.
    pub fn require_mangadex(&self) -> Result<&MangadexConfig, ConfigError> {
        self.mangadex.as_ref().ok_or_else(|| ConfigError::Value {
            path: self.path.clone(),
            message: if self.mangadex_unset {
                MANGADEX_INCOMPLETE.into()
            } else {
                "there is no [mangadex] table: add one with your personal API client (see config.example.toml)"
                    .into()
            },
        })
    }

    /// The `[anilist]` table, or a sentence saying it must be added.
    pub fn require_anilist(&self) -> Result<&AnilistConfig, ConfigError> {
        self.anilist.as_ref().ok_or_else(|| ConfigError::Value {
            path: self.path.clone(),
            message: if self.anilist_unset {
                ANILIST_NO_CLIENT_ID.into()
            } else {
                "there is no [anilist] table: add one with your client_id (see config.example.toml)"
                    .into()
            },
        })
    }
}

fn validate_mal(raw: RawMal) -> Result<MalConfig, String> {
    let client_id = raw.client_id.unwrap_or_default().trim().to_string();
    if client_id.is_empty() {
        return Err("[mal] client_id is missing: create an API client at https://myanimelist.net/apiconfig and copy its Client ID here".into());
    }
    let client_secret = raw
        .client_secret
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    let redirect_uri = parse_url(
        "mal",
        "redirect_uri",
        raw.redirect_uri.as_deref(),
        DEFAULT_REDIRECT_URI,
    )?;
    check_loopback_redirect("mal", &redirect_uri)?;
    let api_url = parse_url("mal", "api_url", raw.api_url.as_deref(), MAL_API_URL)?;
    let auth_url = parse_url("mal", "auth_url", raw.auth_url.as_deref(), MAL_AUTH_URL)?;
    Ok(ClientConfig {
        client_id,
        client_secret,
        redirect_uri,
        api_url,
        auth_url,
    })
}

const MANGADEX_INCOMPLETE: &str = "[mangadex] needs client_id, client_secret and username: create a personal API client at https://mangadex.org/settings (API Clients) and copy its id and secret here";

fn validate_mangadex(raw: RawMangadex) -> Result<MangadexConfig, String> {
    let text = |v: Option<String>| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let (Some(client_id), Some(client_secret), Some(username)) = (
        text(raw.client_id),
        text(raw.client_secret),
        text(raw.username),
    ) else {
        return Err(MANGADEX_INCOMPLETE.into());
    };
    let api_url = parse_url(
        "mangadex",
        "api_url",
        raw.api_url.as_deref(),
        MANGADEX_API_URL,
    )?;
    let auth_url = parse_url(
        "mangadex",
        "auth_url",
        raw.auth_url.as_deref(),
        MANGADEX_AUTH_URL,
    )?;
    let mut languages: Vec<String> = raw
        .languages
        .unwrap_or_else(|| vec!["en".into()])
        .into_iter()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    languages.dedup();
    if languages.is_empty() {
        return Err("[mangadex] languages is empty: list at least one, like [\"en\"]".into());
    }
    if let Some(bad) = languages.iter().find(|l| !is_mangadex_language(l)) {
        return Err(format!(
            "[mangadex] languages: {bad:?} is not a MangaDex language code (2 to 5 letters or dashes, like \"en\" or \"pt-br\"; Latin-American Spanish is \"es-la\", not \"es-419\")"
        ));
    }
    Ok(MangadexConfig {
        client_id,
        client_secret,
        username,
        api_url,
        auth_url,
        languages,
    })
}

/// A language code as MangaDex writes them (`translatedLanguage[]` must match
/// `^[a-zA-Z\-]{2,5}$`, or every chapter list is refused with 400): `en`, `pt-br`, `es-la`, not
/// the BCP 47 `es-419`.
fn is_mangadex_language(code: &str) -> bool {
    (2..=5).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-')
}

const ANILIST_NO_CLIENT_ID: &str = "[anilist] client_id is missing: create an API client at https://anilist.co/settings/developer and copy its ID here";

fn validate_anilist(raw: RawMal) -> Result<AnilistConfig, String> {
    let client_id = raw.client_id.unwrap_or_default().trim().to_string();
    if client_id.is_empty() {
        return Err(ANILIST_NO_CLIENT_ID.into());
    }
    let client_secret = raw
        .client_secret
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    let redirect_uri = parse_url(
        "anilist",
        "redirect_uri",
        raw.redirect_uri.as_deref(),
        DEFAULT_REDIRECT_URI,
    )?;
    if redirect_uri.as_str() != ANILIST_PIN_URI {
        check_loopback_redirect("anilist", &redirect_uri).map_err(|e| {
            format!("{e}, or AniList's pin page {ANILIST_PIN_URI} to paste the token")
        })?;
    }
    let api_url = parse_url(
        "anilist",
        "api_url",
        raw.api_url.as_deref(),
        ANILIST_API_URL,
    )?;
    let auth_url = parse_url(
        "anilist",
        "auth_url",
        raw.auth_url.as_deref(),
        ANILIST_AUTH_URL,
    )?;
    Ok(ClientConfig {
        client_id,
        client_secret,
        redirect_uri,
        api_url,
        auth_url,
    })
}

fn parse_url(table: &str, key: &str, value: Option<&str>, default: &str) -> Result<Url, String> {
    let text = value.unwrap_or(default).trim();
    let url = Url::parse(text)
        .map_err(|e| format!("[{table}] {key} = {text:?} is not a valid URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!(
            "[{table}] {key} = {text:?} must be an http:// or https:// URL with a host"
        ));
    }
    Ok(url)
}

fn check_loopback_redirect(table: &str, url: &Url) -> Result<(), String> {
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    if url.scheme() != "http" || !loopback || matches!(url.port(), None | Some(0)) {
        return Err(format!(
            "[{table}] redirect_uri = \"{url}\" must be a loopback address with a port, like {DEFAULT_REDIRECT_URI} (and the same URL must be registered for your API client)"
        ));
    }
    Ok(())
}

/// 1-based line and column of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/cfg/config.toml"), text)
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let cfg = parse("[mal]\nclient_id = \"abc\"\n").unwrap();
        let mal = cfg.mal.unwrap();
        assert_eq!(mal.client_id, "abc");
        assert_eq!(mal.redirect_uri.as_str(), DEFAULT_REDIRECT_URI);
        assert_eq!(mal.api_url.as_str(), MAL_API_URL);
        assert_eq!(mal.auth_url.as_str(), MAL_AUTH_URL);
        assert!(mal.client_secret.is_none());
    }

    #[test]
    fn anilist_table_with_defaults_pin_page_and_mistakes() {
        let cfg = parse("[anilist]\nclient_id = \" 123 \"\n").unwrap();
        let al = cfg.anilist.as_ref().unwrap();
        assert_eq!(al.client_id, "123");
        assert_eq!(al.api_url.as_str(), "https://graphql.anilist.co/");
        assert_eq!(al.auth_url.as_str(), ANILIST_AUTH_URL);
        assert_eq!(al.redirect_uri.as_str(), DEFAULT_REDIRECT_URI);
        assert!(!al.uses_pin() && al.client_secret.is_none() && cfg.mal.is_none());
        let cfg = parse(&format!(
            "[anilist]\nclient_id = \"1\"\nredirect_uri = \"{ANILIST_PIN_URI}\"\n"
        ))
        .unwrap();
        assert!(cfg.anilist.unwrap().uses_pin());
        let msg =
            parse("[anilist]\nclient_id = \"1\"\nredirect_uri = \"https://example.com/cb\"\n")
                .unwrap_err()
                .to_string();
        assert!(
            msg.contains("[anilist] redirect_uri") && msg.contains("pin"),
            "{msg}"
        );
        let msg = parse("[anilist]\nclient_id = \"\"\n")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("[anilist] client_id is missing"), "{msg}");
        // The example's table with every key commented out: not configured, and said so.
        let cfg = parse("[anilist]\n").unwrap();
        assert!(cfg.anilist.is_none());
        let msg = cfg.require_anilist().unwrap_err().to_string();
        assert!(msg.contains("client_id is missing"), "{msg}");
        let msg = parse("")
            .unwrap()
            .require_anilist()
            .unwrap_err()
            .to_string();
        assert!(msg.contains("no [anilist] table"), "{msg}");
        let msg = parse("[anilist]\nclient_id = \"1\"\ntoken = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("token"), "{msg}");
    }

    #[test]
    fn mangadex_table_needs_the_client_and_username() {
        let cfg = parse(
            "[mangadex]\nclient_id = \"personal-client-1\"\nclient_secret = \"s3cret\"\nusername = \"reader\"\nlanguages = [\"en\", \"pt-br\"]\n",
        )
        .unwrap();
        let md = cfg.mangadex.as_ref().unwrap();
        assert_eq!(md.username, "reader");
        assert_eq!(md.languages, vec!["en".to_string(), "pt-br".to_string()]);
        assert_eq!(
            md.auth_url.as_str(),
            "https://auth.mangadex.org/realms/mangadex/protocol/openid-connect"
        );
        assert!(!format!("{md:?}").contains("s3cret"));
        let msg = parse("[mangadex]\nclient_id = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("needs client_id, client_secret and username"),
            "{msg}"
        );
        let msg = parse("[mangadex]\nclient_id = \"x\"\nclient_secret = \"y\"\nusername = \"z\"\nlanguages = []\n")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("languages is empty"), "{msg}");
        let languages = |list: &str| {
            parse(&format!("[mangadex]\nclient_id = \"x\"\nclient_secret = \"y\"\nusername = \"z\"\nlanguages = {list}\n"))
                .map(|c| c.mangadex.unwrap().languages)
                .map_err(|e| e.to_string())
        };
        // MangaDex's codes: ^[a-zA-Z\-]{2,5}$; anything else would make every chapter list fail.
        assert_eq!(
            languages(r#"["en", "es-419"]"#).unwrap_err(),
            r#"/cfg/config.toml: [mangadex] languages: "es-419" is not a MangaDex language code (2 to 5 letters or dashes, like "en" or "pt-br"; Latin-American Spanish is "es-la", not "es-419")"#
        );
        for bad in [r#"["e n"]"#, r#"["e"]"#, r#"["zh-hant"]"#, r#"["pt_br"]"#] {
            let msg = languages(bad).unwrap_err();
            assert!(
                msg.contains("is not a MangaDex language code"),
                "{bad}: {msg}"
            );
        }
        assert_eq!(
            languages(r#"["es-la", " pt-br ", "ja-ro", "zh-hk"]"#).unwrap(),
            ["es-la", "pt-br", "ja-ro", "zh-hk"]
        );
        let msg = parse("[mangadex]\npassword = \"no\"\n")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("password"), "{msg}");
        // Every key commented out: not configured, and said so.
        let cfg = parse("[mangadex]\n").unwrap();
        assert!(cfg.mangadex.is_none());
        assert!(
            cfg.require_mangadex()
                .unwrap_err()
                .to_string()
                .contains("needs client_id")
        );
        assert!(cfg.no_service().to_string().contains("needs client_id"));
    }

    #[test]
    fn invalid_toml_names_line_and_column() {
        let err = parse("[mal]\nclient_id = \"abc\"\nredirect_uri = \n").unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("/cfg/config.toml: line 3, column"), "{msg}");
    }

    #[test]
    fn missing_client_id_says_where_to_get_one() {
        let msg = parse("[mal]\n").unwrap_err().to_string();
        assert!(msg.contains("client_id is missing"), "{msg}");
        let msg = parse("[mal]\nclient_id = \"  \"\n")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("client_id is missing"), "{msg}");
    }

    #[test]
    fn malformed_urls_are_named() {
        let msg = parse("[mal]\nclient_id = \"a\"\napi_url = \"not a url\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("api_url = \"not a url\" is not a valid URL"),
            "{msg}"
        );
        let msg = parse("[mal]\nclient_id = \"a\"\nredirect_uri = \"https://example.com/cb\"\n")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("must be a loopback address"), "{msg}");
        let msg = parse("[mal]\nclient_id = \"a\"\nredirect_uri = \"http://127.0.0.1:0/cb\"\n")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("with a port"), "{msg}");
    }

    #[test]
    fn unknown_keys_are_reported() {
        let msg = parse("[mal]\nclientid = \"a\"\n").unwrap_err().to_string();
        assert!(msg.contains("unknown field `clientid`"), "{msg}");
    }

    #[test]
    fn theme_is_optional_and_applied_over_defaults() {
        let cfg = parse("").unwrap();
        assert_eq!(cfg.theme, Theme::default());
        let cfg = parse("[theme]\nselected = \"black on cyan\"\nerror = \"#ff0000\"\n").unwrap();
        let mut expected = Theme::default();
        expected.set("selected", "black on cyan").unwrap();
        expected.set("error", "#ff0000").unwrap();
        assert_eq!(cfg.theme, expected);
        assert_eq!(cfg.theme.pending, Theme::default().pending);
    }

    #[test]
    fn theme_mistakes_name_line_column_slot_and_word() {
        let msg = parse("[theme]\ntitle = \"bold\"\n  titel = \"red\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            msg.starts_with(
                "/cfg/config.toml: line 3, column 3: [theme] titel: no such slot (known: title, tab,"
            ),
            "{msg}"
        );
        let msg = parse("[theme]\npending = \"bold purple\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            msg.starts_with(
                "/cfg/config.toml: line 2, column 11: [theme] pending = \"bold purple\": \"purple\" is neither a colour nor a modifier"
            ),
            "{msg}"
        );
        let msg = parse("[theme]\nscore = 208\n").unwrap_err().to_string();
        assert!(
            msg.starts_with(
                "/cfg/config.toml: line 2, column 9: [theme] score: expected a style in quotes"
            ),
            "{msg}"
        );
        let msg = parse("[theme]\nerror = \"red\"\nerror = \"blue\"\n")
            .unwrap_err()
            .to_string();
        assert!(msg.starts_with("/cfg/config.toml: line 3, column"), "{msg}");
        let msg = parse("theme = \"dark\"\n").unwrap_err().to_string();
        assert!(msg.starts_with("/cfg/config.toml: line 1, column"), "{msg}");
        let msg = parse("[theme]\nb = \"x\"\na = \"y\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("line 2, column 1: [theme] b:"),
            "first in the file: {msg}"
        );
        for bad in [
            "[theme]\ntitle = \"bold\\npurple\"\n",
            "[theme]\n\"ti\\ntle\" = \"red\"\n",
        ] {
            let msg = parse(bad).unwrap_err().to_string();
            assert!(!msg.contains('\n'), "{msg:?}");
        }
    }

    #[test]
    fn secret_is_not_in_debug_output() {
        let cfg = parse("[mal]\nclient_id = \"a\"\nclient_secret = \"hunter2\"\n").unwrap();
        assert!(!format!("{cfg:?}").contains("hunter2"));
    }

    #[test]
    fn missing_file_is_a_sentence() {
        let msg = Config::load(Path::new("/nonexistent/malt.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("no config file at /nonexistent/malt.toml"),
            "{msg}"
        );
    }
}

#[cfg(test)]
mod example {
    use super::*;

    /// The shipped example must stay loadable and in step with what the code accepts.
    #[test]
    fn config_example_parses() {
        let text = include_str!("../../config.example.toml");
        let cfg = Config::parse(Path::new("config.example.toml"), text).unwrap();
        assert_eq!(cfg.keys, KeyMap::default());
        assert_eq!(cfg.theme, Theme::default());
        let uncommented: String = text
            .lines()
            .map(|l| {
                l.strip_prefix("# ")
                    .filter(|l| l.contains(" = "))
                    .unwrap_or(l)
            })
            .map(|l| format!("{l}\n"))
            .collect();
        let cfg = Config::parse(Path::new("config.example.toml"), &uncommented).unwrap();
        assert_eq!(
            cfg.keys,
            KeyMap::default(),
            "the commented keys must be the defaults"
        );
        assert_eq!(
            cfg.theme,
            Theme::default(),
            "the commented theme must be the defaults"
        );
        let mangadex = cfg.mangadex.clone().expect("the [mangadex] example parses");
        assert_eq!(mangadex.languages, vec!["en".to_string()]);
        assert_eq!(mangadex.api_url.as_str(), "https://api.mangadex.org/");
        let anilist = cfg.anilist.expect("the [anilist] example parses");
        assert_eq!(anilist.api_url.as_str(), "https://graphql.anilist.co/");
        assert_eq!(anilist.auth_url.as_str(), ANILIST_AUTH_URL);
        let listed: Vec<&str> = text
            .lines()
            .skip_while(|l| *l != "[theme]")
            .filter_map(|l| l.strip_prefix("# ")?.split_once(" = "))
            .map(|(name, _)| name.trim())
            .collect();
        assert_eq!(
            listed,
            Theme::slot_names().collect::<Vec<_>>(),
            "every theme slot, in order"
        );
        assert!(cfg.mal.unwrap().client_secret.is_some());
        assert!(cfg.images, "images = true is the default shown");
        let keys: Vec<&str> = text
            .lines()
            .skip_while(|l| *l != "[keys]")
            .take_while(|l| !l.starts_with("[theme]"))
            .filter_map(|l| l.strip_prefix("# ")?.split_once(" = "))
            .map(|(name, _)| name.trim())
            .collect();
        assert_eq!(
            keys,
            Action::ALL.iter().map(|a| a.name()).collect::<Vec<_>>(),
            "every action, in order"
        );
    }
}
