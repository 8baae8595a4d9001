//! `malt --login`: the browser (or paste) login, from the terminal's side.

use std::io::Write;
use std::time::Duration;

use crate::auth::{TokenFile, pkce, redirect};
use crate::config::MalConfig;
use crate::domain::Service;
use crate::providers::{self, mal};

/// How long the listener waits for the browser.
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(6 * 60);

/// Logs in to MyAnimeList and stores the session. Returns the account name.
pub async fn login_mal(
    cfg: &MalConfig,
    files: &crate::app::Files,
    no_browser: bool,
) -> Result<String, String> {
    let http = providers::http_client()?;
    let verifier = pkce::new_verifier();
    let state = pkce::new_state();
    let url = mal::authorize_url(cfg, &verifier, &state);
    let code = if no_browser {
        println!(
            "Open this address in a browser on any machine and log in to MyAnimeList:\n\n  {url}\n"
        );
        println!(
            "The browser then goes to an address starting with {} (the page may not load).",
            cfg.redirect_uri
        );
        print!("Paste that whole address (or just its code) here: ");
        let _ = std::io::stdout().flush();
        let line = tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).map(|_| line)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("cannot read the pasted address: {e}"))?;
        redirect::parse_pasted(&line, &state).map_err(|e| e.to_string())?
    } else {
        let listener = redirect::bind(&cfg.redirect_uri)
            .await
            .map_err(|e| e.to_string())?;
        println!(
            "Opening your browser to log in to MyAnimeList. If it does not open, visit:\n\n  {url}\n"
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
        redirect::wait_for_code(&listener, &cfg.redirect_uri, &state, LOGIN_TIMEOUT)
            .await
            .map_err(|e| e.to_string())?
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
    // The tokens are saved: a database problem must not fail the login.
    match crate::store::Store::open(&files.database()) {
        Ok(mut store) => match store.switch_account(Service::Mal, &name) {
            Ok(Some(switch)) => println!("{switch}"),
            Ok(None) => {}
            Err(e) => tracing::warn!("cannot record the account name: {e}"),
        },
        Err(e) => tracing::warn!("cannot open the database: {e}"),
    }
    tracing::info!(account = %name, "logged in to MyAnimeList");
    Ok(name)
}
