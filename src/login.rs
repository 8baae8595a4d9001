//! `malt --login [mal|anilist|mangadex]`: the browser, paste or password login, from the
//! terminal's side.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use reqwest::Url;

use crate::auth::redirect::{self, Bare, Redirect, StateCheck};
use crate::auth::{TokenFile, pkce};
use crate::config::{AnilistConfig, MalConfig, MangadexConfig};
use crate::domain::Service;
use crate::providers::{self, anilist, mal, mangadex};

/// How the login comes back to malt.
enum Catch<'a> {
    /// The browser is sent to this loopback address, where malt listens.
    Listen(&'a Url),
    /// The user pastes what the browser shows: `expect` says what the browser goes to.
    Paste { expect: String },
}

/// Logs in to `service` as its config says, and stores the session. Returns the account name.
pub async fn login(
    ctx: &crate::app::Context,
    service: Service,
    no_browser: bool,
) -> Result<String, String> {
    let config = &ctx.config;
    match service {
        Service::Mal => {
            let cfg = config.require_mal().map_err(|e| e.to_string())?;
            login_mal(cfg, &ctx.files, no_browser).await
        }
        Service::Anilist => {
            let cfg = config.require_anilist().map_err(|e| e.to_string())?;
            login_anilist(cfg, &ctx.files, no_browser).await
        }
        Service::Mangadex => {
            let cfg = config.require_mangadex().map_err(|e| e.to_string())?;
            login_mangadex(cfg, &ctx.files).await
        }
        Service::Demo => Err("the demo needs no login: run `malt --demo`".into()),
    }
}

/// Logs in to MyAnimeList and stores the session. Returns the account name.
pub async fn login_mal(
    cfg: &MalConfig,
    files: &crate::paths::Files,
    no_browser: bool,
) -> Result<String, String> {
    let http = providers::http_client()?;
    let verifier = pkce::new_verifier();
    let state = pkce::new_state();
    let url = mal::authorize_url(cfg, &verifier, &state);
    let catch = if no_browser {
        Catch::Paste {
            expect: format!(
                "The browser then goes to an address starting with {} (the page may not load).",
                cfg.redirect_uri
            ),
        }
    } else {
        Catch::Listen(&cfg.redirect_uri)
    };
    let got = obtain(
        Service::Mal,
        &url,
        catch,
        &state,
        StateCheck::Required,
        Bare::Code,
    )
    .await?;
    let Redirect::Code(code) = got else {
        return Err("MyAnimeList sent no login code; run `malt --login` again".into());
    };
    let name = mal::finish_login(
        cfg,
        http,
        TokenFile::new(files.tokens(Service::Mal)),
        &code,
        &verifier,
    )
    .await
    .map_err(|e| e.to_string())?;
    logged_in(files, Service::Mal, &name);
    Ok(name)
}

/// Logs in to AniList and stores the token. Returns the account name.
///
/// Without a `client_secret` the implicit grant brings the token itself (in the redirect's
/// fragment, forwarded by the loopback page); with one, a code is exchanged. An app registered with
/// AniList's pin page, and `--no-browser`, show the token (or code) for the user to paste.
pub async fn login_anilist(
    cfg: &AnilistConfig,
    files: &crate::paths::Files,
    no_browser: bool,
) -> Result<String, String> {
    let http = providers::http_client()?;
    let state = pkce::new_state();
    let url = anilist::authorize_url(cfg, &state);
    let bare = if cfg.client_secret.is_some() {
        Bare::Code
    } else {
        Bare::Token
    };
    let catch = if cfg.uses_pin() {
        Catch::Paste {
            expect: "AniList then shows a token to copy.".into(),
        }
    } else if no_browser {
        Catch::Paste {
            expect: format!(
                "The browser then goes to an address starting with {} (the page may not load); it carries the login.",
                cfg.redirect_uri
            ),
        }
    } else {
        Catch::Listen(&cfg.redirect_uri)
    };
    let got = obtain(
        Service::Anilist,
        &url,
        catch,
        &state,
        StateCheck::IfPresent,
        bare,
    )
    .await?;
    let name = anilist::finish_login(
        cfg,
        http,
        TokenFile::new(files.tokens(Service::Anilist)),
        got,
    )
    .await?;
    logged_in(files, Service::Anilist, &name);
    Ok(name)
}

/// Logs in to MangaDex with the personal API client and the account's password, asked for here
/// (hidden in a terminal, one line from stdin otherwise) and never stored. Returns the username.
pub async fn login_mangadex(
    cfg: &MangadexConfig,
    files: &crate::paths::Files,
) -> Result<String, String> {
    let http = providers::http_client()?;
    let hidden = std::io::stdin().is_terminal();
    if hidden {
        print!("MangaDex password for {} (it is not shown): ", cfg.username);
        let _ = std::io::stdout().flush();
    }
    let password = tokio::task::spawn_blocking(move || {
        if hidden {
            read_hidden_line()
        } else {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).map(|_| line)
        }
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("cannot read the password: {e}"))?;
    // Only the line end goes: a password may begin or end with spaces.
    let password = password.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        return Err("no password was given; run `malt --login mangadex` again".into());
    }
    let name = mangadex::finish_login(
        cfg,
        http,
        TokenFile::new(files.tokens(Service::Mangadex)),
        password,
    )
    .await?;
    logged_in(files, Service::Mangadex, &name);
    Ok(name)
}

/// Sends the user to `url` and brings back what the service redirects with.
async fn obtain(
    service: Service,
    url: &Url,
    catch: Catch<'_>,
    state: &str,
    check: StateCheck,
    bare: Bare,
) -> Result<Redirect, String> {
    let name = service.display_name();
    match catch {
        Catch::Paste { expect } => {
            println!(
                "Open this address in a browser on any machine and log in to {name}:\n\n  {url}\n"
            );
            println!("{expect}");
            let what = match bare {
                Bare::Code => "that whole address (or just its code)",
                Bare::Token => "the token (or that whole address)",
            };
            // A token is the login itself (for a year): it is not shown as it is pasted.
            let hidden = bare == Bare::Token && std::io::stdin().is_terminal();
            print!(
                "Paste {what} here{}: ",
                if hidden { " (it is not shown)" } else { "" }
            );
            let _ = std::io::stdout().flush();
            let line = tokio::task::spawn_blocking(move || {
                if hidden {
                    read_hidden_line()
                } else {
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line).map(|_| line)
                }
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("cannot read what was pasted: {e}"))?;
            if hidden && !line.trim().is_empty() {
                println!("(received {} characters)", line.trim().chars().count());
            }
            redirect::parse_pasted_redirect(&line, state, check, bare).map_err(|e| e.to_string())
        }
        Catch::Listen(redirect_uri) => {
            let listener = redirect::bind(redirect_uri)
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "Opening your browser to log in to {name}. If it does not open, visit:\n\n  {url}\n"
            );
            if let Err(e) = open::that_detached(url.as_str()) {
                println!(
                    "(Could not start a browser: {e}. Open the address above by hand, or use --no-browser.)"
                );
            }
            println!(
                "Waiting for the login (up to {} minutes; Ctrl-C to give up)…",
                LOGIN_TIMEOUT.as_secs() / 60
            );
            redirect::wait_for_redirect(&listener, redirect_uri, state, check, LOGIN_TIMEOUT)
                .await
                .map_err(|e| e.to_string())
        }
    }
}

/// Reads one line from the terminal without echoing it (raw mode, restored on every way out).
/// Ctrl-C cancels.
fn read_hidden_line() -> std::io::Result<String> {
    use std::io::Read;
    struct Raw;
    impl Drop for Raw {
        fn drop(&mut self) {
            let _ = crossterm::terminal::disable_raw_mode();
        }
    }
    crossterm::terminal::enable_raw_mode()?;
    let _raw = Raw;
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    let mut stdin = std::io::stdin().lock();
    loop {
        if stdin.read(&mut byte)? == 0 {
            break;
        }
        match byte[0] {
            b'\r' | b'\n' => break,
            // Ctrl-C
            0x03 => {
                print!("\r\n");
                return Err(std::io::Error::new(
                    std::io::ErrorKind::Interrupted,
                    "cancelled",
                ));
            }
            // Ctrl-D on an empty line
            0x04 if line.is_empty() => break,
            // Backspace / Delete
            0x08 | 0x7f => {
                line.pop();
            }
            b => line.push(b),
        }
    }
    print!("\r\n");
    let _ = std::io::stdout().flush();
    Ok(String::from_utf8_lossy(&line).into_owned())
}

/// Records the account the tokens belong to. The tokens are saved: a database problem must not
/// fail the login.
fn logged_in(files: &crate::paths::Files, service: Service, name: &str) {
    match crate::store::Store::open(&files.database()) {
        Ok(mut store) => match store.switch_account(service, name) {
            Ok(Some(switch)) => println!("{switch}"),
            Ok(None) => {}
            Err(e) => tracing::warn!("cannot record the account name: {e}"),
        },
        Err(e) => tracing::warn!("cannot open the database: {e}"),
    }
    tracing::info!(account = %name, service = service.key(), "logged in");
}

/// How long the listener waits for the browser.
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(6 * 60);
