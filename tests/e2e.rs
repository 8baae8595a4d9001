//! End-to-end: the real `malt` binary, full-screen in tmux (or as a plain process for the commands
//! that are not full-screen), against the stateful fake MyAnimeList on 127.0.0.1.
//!
//! Every test has its own temp home (config, data, state) and its own tmux server. Where tmux is
//! missing, the full-screen tests print "skipping: tmux not installed" and pass.

mod support;

#[path = "e2e/harness.rs"]
mod harness;

use std::time::{Duration, Instant};

use harness::{
    Home, TIMEOUT, TITLES, Tmux, hint_line, list_synced, mode, patched, row, row_has, seed,
    status_bar, wait_until,
};
use support::mal::FakeMal;

/// Asserts that no token of the stored session appears in `text`.
fn assert_no_secret(home: &Home, text: &str, where_: &str) {
    let tokens = home.tokens().expect("tokens stored");
    for key in ["access_token", "refresh_token"] {
        let secret = tokens[key].as_str().unwrap();
        assert!(!secret.is_empty(), "{key} is empty");
        assert!(
            !text.contains(secret),
            "the {key} appears in {where_}:\n{text}"
        );
    }
}

/// The redirect the fake's /authorize answers for `url`: what a browser would be sent to.
fn authorize_redirect(url: &str) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .unwrap();
        let response = client.get(url).send().await.expect("GET /authorize");
        assert_eq!(response.status().as_u16(), 302, "authorize: {response:?}");
        response.headers()[reqwest::header::LOCATION]
            .to_str()
            .unwrap()
            .to_string()
    })
}

// ---------------------------------------------------------------------------------------------
// 1. Login
// ---------------------------------------------------------------------------------------------

#[test]
fn login_through_the_browser_stores_a_private_session_and_prints_no_secret() {
    let fake = FakeMal::start_background();
    fake.set_user("frieren_fan");
    seed(&fake);
    let home = Home::for_fake(&fake);
    home.install_browser();

    let out = home.run(&["--login"]);
    let all = format!("{}\n{}", out.stdout, out.stderr);
    assert!(out.status.success(), "malt --login failed:\n{all}");
    assert!(
        out.stdout
            .contains("Logged in to MyAnimeList as frieren_fan"),
        "{all}"
    );
    let opened = home.browser_calls();
    assert_eq!(opened.len(), 1, "the browser is opened once: {opened:?}");
    assert!(
        opened[0].starts_with(&format!("{}/authorize?", fake.auth_url())),
        "{opened:?}"
    );
    let sent_redirect = url::Url::parse(&opened[0])
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .map(|(_, v)| v.into_owned());
    assert_eq!(
        sent_redirect.as_deref(),
        Some(home.redirect_uri.as_str()),
        "the configured redirect_uri is sent"
    );

    assert_eq!(mode(&home.tokens_path()), 0o600, "token file mode");
    assert_no_secret(&home, &all, "the output of malt --login");
    let log = std::fs::read_to_string(home.log_path()).unwrap_or_default();
    assert_no_secret(&home, &log, "malt.log");

    // The stored session works, and the list screen knows who logged in.
    if harness::tmux_available() {
        let tmux = Tmux::start(&home, &[]);
        let screen = tmux.wait_for("the list and the account name", TIMEOUT, |s| {
            list_synced(s) && s.lines().next().is_some_and(|l| l.contains("frieren_fan"))
        });
        assert_no_secret(&home, &screen, "the screen");
        tmux.quit();
    }
}

#[test]
fn login_without_a_browser_reads_the_pasted_redirect() {
    let fake = FakeMal::start_background();
    fake.set_user("ssh_user");
    let home = Home::for_fake(&fake);
    home.install_browser();

    let mut malt = home.spawn(&["--login", "--no-browser"]);
    let shown = malt.wait_stdout("the paste prompt", |s| s.contains("Paste"));
    let url = shown
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("http"))
        .unwrap_or_else(|| panic!("no login address printed:\n{shown}"));
    assert!(
        url.starts_with(&format!("{}/authorize?", fake.auth_url())),
        "{shown}"
    );
    let location = authorize_redirect(url);
    assert!(location.starts_with(&home.redirect_uri), "{location}");
    malt.write_stdin(&format!("{location}\n"));
    let out = malt.finish(TIMEOUT);
    let all = format!("{}\n{}", out.stdout, out.stderr);
    assert!(
        out.status.success(),
        "malt --login --no-browser failed:\n{all}"
    );
    assert!(
        out.stdout.contains("Logged in to MyAnimeList as ssh_user"),
        "{all}"
    );
    assert!(
        home.browser_calls().is_empty(),
        "--no-browser must not open a browser: {:?}",
        home.browser_calls()
    );
    assert_eq!(mode(&home.tokens_path()), 0o600, "token file mode");
    assert_no_secret(&home, &all, "the output of malt --login --no-browser");
}

#[test]
fn a_login_cancelled_in_the_browser_fails_cleanly() {
    let fake = FakeMal::start_background();
    fake.set_deny_authorization(true);
    let home = Home::for_fake(&fake);
    home.install_browser();
    let out = home.run(&["--login"]);
    let all = format!("{}\n{}", out.stdout, out.stderr);
    assert!(!out.status.success(), "{all}");
    assert!(out.stderr.contains("cancelled"), "{all}");
    assert_eq!(out.stderr.trim().lines().count(), 1, "{all}");
    assert!(!all.contains("panicked"), "{all}");
    assert_eq!(home.browser_calls().len(), 1);
    assert!(home.tokens().is_none(), "no session is stored");
}

#[test]
fn a_login_whose_redirect_port_is_taken_says_so() {
    let fake = FakeMal::start_background();
    let home = Home::for_fake(&fake);
    home.install_browser();
    let port = url::Url::parse(&home.redirect_uri).unwrap().port().unwrap();
    let _taken = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind the redirect port");
    let err = assert_one_line_error(&home, &["--login"]);
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(err.contains("redirect_uri"), "says what to change: {err}");
    assert!(
        home.browser_calls().is_empty(),
        "no browser without a listener"
    );
    assert!(home.tokens().is_none());
}

// ---------------------------------------------------------------------------------------------
// 2. The list
// ---------------------------------------------------------------------------------------------

#[test]
fn the_list_shows_every_watching_entry_nsfw_included() {
    require_tmux!();
    let fake = FakeMal::start_background();
    seed(&fake);
    let home = Home::for_fake(&fake);
    home.log_in(&fake);

    let tmux = Tmux::start(&home, &[]);
    let screen = tmux.wait_for("the synced list", TIMEOUT, list_synced);
    let check = |ok: bool, what: &str| {
        if !ok {
            tmux.fail(what, &screen);
        }
    };
    check(
        row_has(&screen, "Kill la Kill", "2 / 24"),
        "the NSFW entry with its progress",
    );
    check(
        row_has(&screen, "One Piece", "3 / ?"),
        "`3 / ?` for an unknown episode count",
    );
    check(row_has(&screen, "Bocchi the Rock!", "5 / 12"), "5 / 12");
    check(
        row(&screen, "Bocchi the Rock!").is_some_and(|l| l.trim_end().ends_with(" 9")),
        "the score",
    );
    check(
        row_has(&screen, "Bocchi the Rock!", "›"),
        "the first entry (by title) is selected",
    );
    check(
        !screen.contains("Cowboy Bebop"),
        "a completed entry is not on the Watching list",
    );
    check(
        harness::tab_bar(&screen).contains("Watching 4"),
        "the Watching tab counts four entries",
    );
    check(
        harness::tab_bar(&screen).contains("Completed 1"),
        "the Completed tab counts the completed entry",
    );
    let order: Vec<usize> = TITLES.iter().map(|t| screen.find(t).unwrap()).collect();
    check(order.is_sorted(), "entries sorted by title");
    tmux.quit();

    // Everything malt keeps is private: the data dir 0700, the database (and its WAL) 0600.
    assert_eq!(mode(&home.data_dir()), 0o700, "data dir mode");
    let files: Vec<_> = std::fs::read_dir(home.data_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(
        files.iter().any(|f| f.ends_with("malt.db")),
        "the database: {files:?}"
    );
    for file in files {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    assert_eq!(mode(&home.log_path()), 0o600, "log file mode");
}

// ---------------------------------------------------------------------------------------------
// 3. Three quick `+`
// ---------------------------------------------------------------------------------------------

#[test]
fn three_quick_pluses_show_at_once_and_send_three_ordered_patches() {
    require_tmux!();
    let fake = FakeMal::start_background();
    seed(&fake);
    let home = Home::for_fake(&fake);
    home.log_in(&fake);
    let tmux = Tmux::start(&home, &[]);
    tmux.wait_for("the synced list", TIMEOUT, list_synced);

    // Mushishi (5 / 26) is the third row.
    tmux.type_text("jj");
    tmux.wait_for("Mushishi selected", TIMEOUT, |s| {
        row_has(s, "Mushishi", "›") && !row_has(s, "Bocchi the Rock!", "›")
    });
    fake.set_latency(Duration::from_millis(600));
    tmux.type_text("+++");
    let screen = tmux.wait_for("8 / 26 on screen", TIMEOUT, |s| {
        row_has(s, "Mushishi", "8 / 26")
    });
    // Each PATCH takes 600 ms and they go one after another: the screen must not have waited.
    let sent = patched(&fake, 104);
    if sent.len() >= 3 {
        tmux.fail(
            &format!("the new count appeared only after the service answered: {sent:?}"),
            &screen,
        );
    }
    if !row_has(&screen, "Mushishi", "↑") {
        tmux.fail("an unconfirmed change is marked ↑", &screen);
    }

    // While the changes are confirmed one by one, the screen keeps showing 8.
    let start = Instant::now();
    loop {
        let screen = tmux.screen();
        if !row_has(&screen, "Mushishi", "8 / 26") {
            tmux.fail("the count went back while changes were confirmed", &screen);
        }
        let done = !row_has(&screen, "Mushishi", "↑") && !status_bar(&screen).contains("pending");
        if done && patched(&fake, 104).len() >= 3 {
            break;
        }
        if start.elapsed() > TIMEOUT {
            tmux.fail(
                &format!("changes not confirmed; PATCHes: {:?}", patched(&fake, 104)),
                &screen,
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Long enough for a fourth PATCH to arrive, if one were sent.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(patched(&fake, 104), ["6", "7", "8"]);
    assert_eq!(fake.watched(104), Some(8));
    assert!(
        fake.patches().iter().all(|p| p.id == 104),
        "only the selected entry changes: {:?}",
        fake.patches()
    );
    tmux.quit();
}

// ---------------------------------------------------------------------------------------------
// 4. Offline, and stopped mid-change
// ---------------------------------------------------------------------------------------------

#[test]
fn offline_restart_shows_the_cache_and_delivers_the_change_later() {
    require_tmux!();
    let fake = FakeMal::start_background();
    seed(&fake);
    let home = Home::for_fake(&fake);
    home.log_in(&fake);

    let first = Tmux::start(&home, &[]);
    first.wait_for("the synced list", TIMEOUT, list_synced);
    first.quit();
    drop(first);

    fake.go_down();
    let offline = Tmux::start(&home, &[]);
    let screen = offline.wait_for("the cached list, offline", TIMEOUT, |s| {
        TITLES.iter().all(|t| s.contains(t)) && status_bar(s).contains("offline")
    });
    if !row_has(&screen, "Bocchi the Rock!", "5 / 12") || !row_has(&screen, "One Piece", "3 / ?") {
        offline.fail("the cached progress", &screen);
    }
    offline.type_text("+");
    offline.wait_for("the change shown and waiting", TIMEOUT, |s| {
        let bar = status_bar(s);
        row_has(s, "Bocchi the Rock!", "6 / 12")
            && (bar.contains("1 pending") || bar.contains("1 change waiting"))
    });
    offline.quit();
    drop(offline);
    assert!(fake.patches().is_empty(), "{:?}", fake.patches());
    assert_eq!(fake.watched(101), Some(5));

    fake.go_up();
    // Slow answers: whatever shows first comes from the cache and the outbox, not the service.
    fake.set_latency(Duration::from_millis(1500));
    let online = Tmux::start(&home, &[]);
    let screen = online.wait_for("the cached list", TIMEOUT, |s| {
        TITLES.iter().all(|t| s.contains(t))
    });
    if !row_has(&screen, "Bocchi the Rock!", "6 / 12") || !row_has(&screen, "Bocchi", "↑") {
        online.fail(
            "the queued change is shown (and marked ↑) from the first frame",
            &screen,
        );
    }
    assert!(fake.patches().is_empty(), "{:?}", fake.patches());
    wait_until(&online, "the queued change to arrive", TIMEOUT, || {
        fake.watched(101) == Some(6)
    });
    online.wait_for("synced, nothing pending", TIMEOUT, |s| {
        let bar = status_bar(s);
        bar.contains("synced")
            && !bar.contains("pending")
            && !bar.contains("waiting")
            && row_has(s, "Bocchi the Rock!", "6 / 12")
            && !row_has(s, "Bocchi the Rock!", "↑")
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(patched(&fake, 101), ["6"], "exactly one PATCH");
    online.quit();
}

#[test]
fn sigterm_restores_the_terminal_and_keeps_the_queued_change() {
    require_tmux!();
    let fake = FakeMal::start_background();
    seed(&fake);
    let home = Home::for_fake(&fake);
    home.log_in(&fake);
    let tmux = Tmux::start(&home, &[]);
    tmux.wait_for("the synced list", TIMEOUT, list_synced);

    // The change is still on its way when malt is told to stop.
    fake.set_latency(Duration::from_secs(5));
    tmux.type_text("+");
    tmux.wait_for("6 / 12, waiting", TIMEOUT, |s| {
        row_has(s, "Bocchi the Rock!", "6 / 12") && row_has(s, "Bocchi", "↑")
    });
    // The pane runs `sh -c '… env -i … malt …'`; env execs malt, the shell's only child.
    let shell = tmux.format("#{pane_pid}");
    let children = std::process::Command::new("pgrep")
        .args(["-P", &shell])
        .output()
        .expect("run pgrep");
    let children = String::from_utf8_lossy(&children.stdout).into_owned();
    let pid = children
        .lines()
        .map(str::trim)
        .find(|pid| {
            std::fs::read_link(format!("/proc/{pid}/exe"))
                .is_ok_and(|exe| exe.to_string_lossy().starts_with(harness::BIN))
        })
        .unwrap_or_else(|| panic!("no malt under the pane's shell {shell}: {children:?}"))
        .to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("run kill");
    assert!(killed.success());
    let (code, screen) = tmux.wait_exit();
    if code != 0 {
        tmux.fail(&format!("exit code {code} after SIGTERM"), &screen);
    }
    if screen.contains("Bocchi") || tmux.format("#{alternate_on}") != "0" {
        tmux.fail("the alternate screen was left", &screen);
    }
    assert_eq!(Tmux::tty_modes(&screen).unwrap(), ["icanon", "echo"]);
    drop(tmux);

    fake.set_latency(Duration::ZERO);
    let tmux = Tmux::start(&home, &[]);
    wait_until(&tmux, "the queued change to arrive", TIMEOUT, || {
        fake.watched(101) == Some(6)
    });
    tmux.wait_for("nothing pending", TIMEOUT, |s| {
        !status_bar(s).contains("pending") && !row_has(s, "Bocchi", "↑")
    });
    // The PATCH cut off by the exit may or may not have reached the service; either way it said 6.
    let sent = patched(&fake, 101);
    assert!(
        !sent.is_empty() && sent.len() <= 2 && sent.iter().all(|n| n == "6"),
        "{sent:?}"
    );
    tmux.quit();
}

/// On a start with a cached list, the list is on screen at once, and a key pressed then counts:
/// none may be lost while malt asks the terminal about its graphics (the answer comes on the same
/// input as the keys, and a terminal that does not answer keeps malt asking for two seconds).
#[test]
fn a_key_pressed_as_soon_as_the_cached_list_shows_is_not_lost() {
    require_tmux!();
    let fake = FakeMal::start_background();
    seed(&fake);
    let home = Home::for_fake(&fake);
    home.log_in(&fake);
    let first = Tmux::start(&home, &[]);
    first.wait_for("the synced list", TIMEOUT, list_synced);
    first.quit();
    drop(first);

    let tmux = Tmux::start(&home, &[]);
    tmux.wait_for("the cached list", TIMEOUT, |s| {
        TITLES.iter().all(|t| s.contains(t)) && row_has(s, "Bocchi the Rock!", "›")
    });
    tmux.type_text("j");
    tmux.wait_for(
        "the selection to move (the `j` pressed as the list appeared is lost)",
        TIMEOUT,
        |s| row_has(s, "Kill la Kill", "›"),
    );
    tmux.wait_for("the synced list", TIMEOUT, list_synced);
    tmux.quit();
}

// ---------------------------------------------------------------------------------------------
// 5. and 6. Sessions
// ---------------------------------------------------------------------------------------------

#[test]
fn an_expired_access_token_is_refreshed_and_the_change_lands() {
    require_tmux!();
    let fake = FakeMal::start_background();
    seed(&fake);
    let home = Home::for_fake(&fake);
    let (_, old_refresh) = home.log_in(&fake);
    let tmux = Tmux::start(&home, &[]);
    tmux.wait_for("the synced list", TIMEOUT, list_synced);
    assert_eq!(fake.refresh_count(), 0);

    fake.expire_access_tokens();
    tmux.type_text("+");
    wait_until(&tmux, "the change to land", TIMEOUT, || {
        fake.watched(101) == Some(6)
    });
    let screen = tmux.wait_for("the change confirmed", TIMEOUT, |s| {
        row_has(s, "Bocchi the Rock!", "6 / 12") && !row_has(s, "Bocchi the Rock!", "↑")
    });
    let bar = status_bar(&screen);
    if !bar.contains("synced") || bar.contains(" · ") {
        tmux.fail("a status bar with nothing but `synced`", &screen);
    }
    for bad in ["expired", "login", "error", "refused", "not saved"] {
        if screen.to_lowercase().contains(bad) {
            tmux.fail(&format!("no {bad:?} on screen"), &screen);
        }
    }
    assert_eq!(fake.refresh_count(), 1);
    assert_eq!(patched(&fake, 101), ["6"]);
    let tokens = home.tokens().unwrap();
    let new_refresh = tokens["refresh_token"].as_str().unwrap();
    assert_ne!(
        new_refresh, old_refresh,
        "the rotated refresh token is saved"
    );
    assert_eq!(mode(&home.tokens_path()), 0o600);
    tmux.quit();
}

#[test]
fn an_expired_session_says_log_in_and_keeps_the_change() {
    require_tmux!();
    let fake = FakeMal::start_background();
    seed(&fake);
    let home = Home::for_fake(&fake);
    home.log_in(&fake);
    let tmux = Tmux::start(&home, &[]);
    tmux.wait_for("the synced list", TIMEOUT, list_synced);

    fake.expire_access_tokens();
    fake.revoke_refresh_tokens();
    tmux.type_text("+");
    let screen = tmux.wait_for("`session expired` and `malt --login`", TIMEOUT, |s| {
        let bar = status_bar(s);
        bar.contains("session expired") && bar.contains("malt --login")
    });
    if !row_has(&screen, "Bocchi the Rock!", "6 / 12") {
        tmux.fail("the change stays on screen", &screen);
    }
    // Still running and answering keys.
    tmux.keys(&["Down"]);
    let screen = tmux.wait_for("the selection to move", TIMEOUT, |s| {
        row_has(s, "Kill la Kill", "›")
    });
    if Tmux::exit_code(&screen).is_some() {
        tmux.fail("malt exited", &screen);
    }
    assert!(fake.patches().is_empty(), "{:?}", fake.patches());
    tmux.quit();
    drop(tmux);

    // A new login (fresh tokens on disk), a new start: the queued change is delivered. The slow
    // server leaves time to see the first frame, which must already show the queued change.
    home.log_in(&fake);
    fake.set_latency(Duration::from_millis(800));
    let tmux = Tmux::start(&home, &[]);
    let screen = tmux.wait_for("the cached list", TIMEOUT, |s| {
        TITLES.iter().all(|t| s.contains(t))
    });
    if !row_has(&screen, "Bocchi the Rock!", "6 / 12") || !row_has(&screen, "Bocchi", "↑") {
        tmux.fail("the queued change is shown from the first frame", &screen);
    }
    wait_until(&tmux, "the queued change to arrive", TIMEOUT, || {
        fake.watched(101) == Some(6)
    });
    tmux.wait_for("nothing pending, no login message", TIMEOUT, |s| {
        let bar = status_bar(s);
        !bar.contains("pending") && !bar.contains("expired") && !row_has(s, "Bocchi", "↑")
    });
    assert_eq!(patched(&fake, 101), ["6"]);
    tmux.quit();
}

#[test]
fn a_new_login_while_malt_runs_is_picked_up() {
    require_tmux!();
    let fake = FakeMal::start_background();
    seed(&fake);
    let home = Home::for_fake(&fake);
    home.log_in(&fake);
    let tmux = Tmux::start(&home, &[]);
    tmux.wait_for("the synced list", TIMEOUT, list_synced);

    fake.expire_access_tokens();
    fake.revoke_refresh_tokens();
    tmux.type_text("+");
    tmux.wait_for("`session expired`", TIMEOUT, |s| {
        status_bar(s).contains("session expired")
    });
    // `malt --login` in another terminal writes a new session; the running malt uses it.
    home.log_in(&fake);
    wait_until(&tmux, "the queued change to arrive", TIMEOUT, || {
        fake.watched(101) == Some(6)
    });
    let screen = tmux.wait_for("the login message gone, nothing pending", TIMEOUT, |s| {
        let bar = status_bar(s);
        !bar.contains("expired") && !bar.contains("pending") && !row_has(s, "Bocchi", "↑")
    });
    if !row_has(&screen, "Bocchi the Rock!", "6 / 12") {
        tmux.fail("the delivered count", &screen);
    }
    assert_eq!(patched(&fake, 101), ["6"]);
    tmux.quit();
}

/// The usual way a session ends: malt was not run for weeks, the access token has expired and so
/// has the refresh token. malt says to log in; the user runs `malt --login` in another terminal.
/// The running malt notices the new session (its refresher reads the token file every 10 s while
/// a login is needed), so the message must go and the list must sync without a keypress.
#[test]
fn a_login_elsewhere_clears_session_expired_and_syncs() {
    require_tmux!();
    let fake = FakeMal::start_background();
    seed(&fake);
    let home = Home::for_fake(&fake);
    let (access, refresh) = fake.issue_tokens(0);
    home.write_tokens(&access, &refresh, harness::unix_now() - 60);
    fake.revoke_refresh_tokens();
    let tmux = Tmux::start(&home, &[]);
    tmux.wait_for("`session expired` and `malt --login`", TIMEOUT, |s| {
        let bar = status_bar(s);
        bar.contains("session expired") && bar.contains("malt --login")
    });

    home.log_in(&fake);
    tmux.wait_for("the message gone and the list synced", TIMEOUT, |s| {
        list_synced(s) && !status_bar(s).contains("expired")
    });
    tmux.quit();
}

// ---------------------------------------------------------------------------------------------
// 7. Config and login mistakes
// ---------------------------------------------------------------------------------------------

/// A failed start: non-zero, one line on stderr, no panic or backtrace, nothing on stdout.
fn assert_one_line_error(home: &Home, args: &[&str]) -> String {
    let out = home.run(args);
    let all = format!("stdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    assert!(!out.status.success(), "{all}");
    assert_eq!(out.stderr.trim().lines().count(), 1, "one line:\n{all}");
    for bad in ["panicked", "stack backtrace", "Backtrace", "RUST_BACKTRACE"] {
        assert!(!all.contains(bad), "{bad:?} in\n{all}");
    }
    assert!(out.stdout.trim().is_empty(), "{all}");
    out.stderr
}

#[test]
fn no_config_file_is_one_clear_line() {
    let home = Home::new();
    let err = assert_one_line_error(&home, &[]);
    assert!(err.contains("config.toml"), "{err}");
    assert!(err.contains("client_id"), "{err}");
    assert!(
        err.contains(&home.config_path().display().to_string()),
        "says where the file belongs: {err}"
    );
}

#[test]
fn config_without_a_login_says_to_run_malt_login() {
    let fake = FakeMal::start_background();
    let home = Home::for_fake(&fake);
    let err = assert_one_line_error(&home, &[]);
    assert!(err.contains("malt --login"), "{err}");
    assert!(fake.requests().is_empty(), "{:?}", fake.requests());
}

#[test]
fn invalid_toml_names_line_and_column() {
    let home = Home::new();
    home.write_config("[mal]\nclient_id = \"abc\"\nredirect_uri = \n");
    let err = assert_one_line_error(&home, &[]);
    assert!(err.contains("line 3"), "{err}");
    assert!(err.contains("column"), "{err}");
    assert!(err.contains("config.toml"), "{err}");
}

#[test]
fn config_flag_reads_that_file() {
    let fake = FakeMal::start_background();
    let home = Home::new();
    let elsewhere = home.path().join("elsewhere.toml");
    let elsewhere = elsewhere.to_str().unwrap();
    // Missing: the message names the file asked for.
    let err = assert_one_line_error(&home, &["--config", elsewhere]);
    assert!(err.contains(elsewhere), "{err}");
    // Present and valid (and no default config): malt gets as far as asking for a login.
    std::fs::write(elsewhere, home.mal_config(&fake)).unwrap();
    let err = assert_one_line_error(&home, &["--config", elsewhere]);
    assert!(err.contains("malt --login"), "{err}");
}

#[test]
fn a_corrupt_database_is_kept_aside_and_the_list_fetched_again() {
    require_tmux!();
    let fake = FakeMal::start_background();
    seed(&fake);
    let home = Home::for_fake(&fake);
    home.log_in(&fake);
    let db = home.data_dir().join("malt.db");
    let junk = "this is not a database, just some text ".repeat(20);
    std::fs::write(&db, &junk).unwrap();
    let tmux = Tmux::start(&home, &[]);
    let screen = tmux.wait_for("the rebuilt, synced list", TIMEOUT, list_synced);
    if !status_bar(&screen).contains("database was damaged") {
        tmux.fail("the status bar says what happened", &screen);
    }
    tmux.quit();
    let kept: Vec<_> = std::fs::read_dir(home.data_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("malt.db.damaged-")
        })
        .collect();
    assert_eq!(kept.len(), 1, "one copy of the bad file is kept");
    assert_eq!(std::fs::read_to_string(kept[0].path()).unwrap(), junk);
    assert_eq!(mode(&db) & 0o777, 0o600);
}

#[test]
fn a_damaged_token_file_says_log_in_again() {
    require_tmux!();
    let fake = FakeMal::start_background();
    seed(&fake);
    let home = Home::for_fake(&fake);
    home.log_in(&fake);
    std::fs::write(home.tokens_path(), "{\"access_token\": \"abc").unwrap();
    let tmux = Tmux::start(&home, &[]);
    tmux.wait_for("`damaged` and `malt --login`", TIMEOUT, |s| {
        let bar = status_bar(s);
        bar.contains("damaged") && bar.contains("malt --login")
    });
    tmux.quit();
    assert!(fake.patches().is_empty());
    // The damaged file is kept for inspection, out of the way of the next login.
    let kept: Vec<_> = std::fs::read_dir(home.data_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("mal-tokens.json.damaged-")
        })
        .collect();
    assert_eq!(kept.len(), 1);
    assert_eq!(
        std::fs::read_to_string(kept[0].path()).unwrap(),
        "{\"access_token\": \"abc"
    );
    assert!(!home.tokens_path().exists());
}

#[test]
fn help_and_version() {
    let home = Home::new();
    let out = home.run(&["--version"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        out.stdout.trim(),
        format!("malt {}", env!("CARGO_PKG_VERSION"))
    );
    let out = home.run(&["--help"]);
    assert!(out.status.success(), "{out:?}");
    for flag in ["--login", "--no-browser", "--demo", "--config", "--version"] {
        assert!(out.stdout.contains(flag), "{flag} in\n{}", out.stdout);
    }
}

// ---------------------------------------------------------------------------------------------
// 8. Demo
// ---------------------------------------------------------------------------------------------

#[test]
fn demo_shows_the_sample_list_counts_and_restores_the_terminal() {
    require_tmux!();
    let home = Home::new();
    let tmux = Tmux::start(&home, &["--demo"]);
    // Sorted by title, Chainsaw Man (11 / 12) comes first and is selected.
    tmux.wait_for("the sample list", TIMEOUT, |s| {
        s.contains("Sousou no Frieren") && row_has(s, "Chainsaw Man", "› ")
    });
    assert_eq!(tmux.format("#{alternate_on}"), "1", "full-screen");
    tmux.type_text("+");
    tmux.wait_for(
        "12 / 12 and the question whether it is completed",
        TIMEOUT,
        |s| {
            row_has(s, "Chainsaw Man", "12 / 12")
                && s.contains("That was the last episode. Mark it completed?")
        },
    );
    // Not yet: it stays on the Watching tab, and `+` has nowhere to go.
    tmux.type_text("n");
    tmux.wait_for("the question gone", TIMEOUT, |s| {
        !s.contains("Mark it completed?") && row_has(s, "Chainsaw Man", "12 / 12")
    });
    tmux.type_text("+");
    tmux.wait_for("a notice that there are no more episodes", TIMEOUT, |s| {
        status_bar(s).contains("no more episodes") && row_has(s, "Chainsaw Man", "12 / 12")
    });

    tmux.type_text("q");
    let (code, screen) = tmux.wait_exit();
    if code != 0 {
        tmux.fail(&format!("exit code {code}"), &screen);
    }
    if screen.contains("Sousou no Frieren") {
        tmux.fail(
            "the list stays on screen: the alternate screen was not left",
            &screen,
        );
    }
    assert_eq!(tmux.format("#{alternate_on}"), "0", "alternate screen left");
    assert_eq!(tmux.format("#{cursor_flag}"), "1", "cursor shown again");
    let modes = Tmux::tty_modes(&screen).unwrap();
    assert_eq!(modes, ["icanon", "echo"], "raw mode left:\n{screen}");
}

// ---------------------------------------------------------------------------------------------
// 9. Resize
// ---------------------------------------------------------------------------------------------

/// The frame fills exactly `width`×`height`: title bar on the first line, the status tabs on the
/// second, key hints on the last, the status bar above them, and list rows (with the header) in
/// between.
fn laid_out(screen: &str, width: usize, height: usize, list_rows: usize) -> bool {
    let lines: Vec<&str> = screen.lines().collect();
    lines.len() == height
        && lines.iter().all(|l| l.chars().count() <= width)
        && lines[0].starts_with(" malt · Anime Manga")
        && lines[1].trim_start().starts_with("Watching 10")
        && lines[2].contains("Title")
        && lines[3..3 + list_rows].iter().all(|l| l.contains(" / "))
        && lines[3 + list_rows..height - 2]
            .iter()
            .all(|l| l.trim().is_empty())
        && status_bar(screen) == lines[height - 2]
        && hint_line(screen) == Some(lines[height - 1])
        && screen.matches("malt ·").count() == 1
        && screen.matches("Title").count() == 1
}

#[test]
fn resizing_redraws_at_the_new_size() {
    require_tmux!();
    let home = Home::new();
    // 10 sample entries on the Watching tab: 40 rows show them all.
    let tmux = Tmux::start(&home, &["--demo"]);
    tmux.wait_for("the sample list laid out at 120×40", TIMEOUT, |s| {
        laid_out(s, 120, 40, 10) && status_bar(s).contains("synced")
    });

    // 12 rows leave 7 for the list: fewer than the entries.
    tmux.resize(60, 12);
    let screen = tmux.wait_for("the list laid out at 60×12", TIMEOUT, |s| {
        laid_out(s, 60, 12, 7)
    });
    if row(&screen, "Chainsaw Man").is_none() || row(&screen, "Jujutsu Kaisen").is_none() {
        tmux.fail(
            "the titles stay readable at 60 columns (the other columns leave room for them)",
            &screen,
        );
    }
    if !row_has(&screen, "Chainsaw Man", "›") {
        tmux.fail("the selected entry stays in view", &screen);
    }
    // Moving to the bottom scrolls within the smaller list.
    tmux.type_text("G");
    tmux.wait_for("the last entry selected and visible", TIMEOUT, |s| {
        laid_out(s, 60, 12, 7) && row_has(s, "Vinland Saga", "›")
    });

    // Tiny, then large again: no crash, and a full redraw.
    tmux.resize(24, 5);
    tmux.wait_for("a tiny frame", TIMEOUT, |s| {
        let lines: Vec<&str> = s.lines().collect();
        lines.len() == 5 && lines[0].starts_with(" malt ·") && lines[4].contains("quit")
    });
    tmux.resize(100, 30);
    let screen = tmux.wait_for("the list laid out at 100×30", TIMEOUT, |s| {
        laid_out(s, 100, 30, 10)
    });
    if !row_has(&screen, "Vinland Saga", "›") {
        tmux.fail("the selection survives resizing", &screen);
    }
    if row(&screen, "Sousou no Frieren").is_none() {
        tmux.fail("every entry shown again", &screen);
    }
    // Ctrl-C quits too, and cleanly.
    tmux.keys(&["C-c"]);
    let (code, screen) = tmux.wait_exit();
    if code != 0 || Tmux::tty_modes(&screen).unwrap() != ["icanon", "echo"] {
        tmux.fail("Ctrl-C: exit 0 and the terminal restored", &screen);
    }
}

/// Quits, takes the service down, makes one `+` on Bocchi offline, quits again, and brings the
/// service back with Bocchi edited on the website to `theirs`.
fn offline_change_then_web_edit(fake: &FakeMal, home: &Home, theirs: u32) {
    let first = Tmux::start(home, &[]);
    first.wait_for("the synced list", TIMEOUT, list_synced);
    first.quit();
    drop(first);
    fake.go_down();
    let offline = Tmux::start(home, &[]);
    offline.wait_for("offline", TIMEOUT, |s| status_bar(s).contains("offline"));
    offline.type_text("+");
    offline.wait_for("the change waiting", TIMEOUT, |s| {
        row_has(s, "Bocchi the Rock!", "6 / 12")
    });
    offline.quit();
    drop(offline);
    fake.set_watched(101, theirs);
    fake.go_up();
}

#[test]
fn a_website_edit_made_while_offline_is_shown_and_the_user_keeps_the_websites() {
    require_tmux!();
    let fake = FakeMal::start_background();
    seed(&fake);
    let home = Home::for_fake(&fake);
    home.log_in(&fake);
    offline_change_then_web_edit(&fake, &home, 9);

    let tmux = Tmux::start(&home, &[]);
    let screen = tmux.wait_for("both values", TIMEOUT, |s| {
        status_bar(s).contains("MAL says episode 9, you set episode 6")
    });
    if !row_has(&screen, "Bocchi the Rock!", "6 / 12 !") {
        tmux.fail("the row shows the user's value, marked", &screen);
    }
    if !status_bar(&screen).contains("R keep yours, x keep MAL's") {
        tmux.fail("the bar says how to choose", &screen);
    }
    tmux.type_text("x");
    tmux.wait_for("the website's value", TIMEOUT, |s| {
        row_has(s, "Bocchi the Rock!", "9 / 12") && !row_has(s, "Bocchi the Rock!", "12 !")
    });
    tmux.quit();
    assert!(fake.patches().is_empty(), "{:?}", fake.patches());
    assert_eq!(fake.watched(101), Some(9));

    // The choice is remembered: the next start shows the website's value and sends nothing, also
    // once it has heard from the service (the cached list says "synced" from the first frame).
    let fetched = harness::list_fetches(&fake);
    let again = Tmux::start(&home, &[]);
    wait_until(&again, "the list fetched again", TIMEOUT, || {
        harness::list_fetches(&fake) > fetched
    });
    again.wait_for("the synced list", TIMEOUT, |s| {
        list_synced(s) && row_has(s, "Bocchi the Rock!", "9 / 12")
    });
    again.quit();
    assert!(fake.patches().is_empty());
}

#[test]
fn a_website_edit_made_while_offline_is_shown_and_the_user_keeps_theirs() {
    require_tmux!();
    let fake = FakeMal::start_background();
    seed(&fake);
    let home = Home::for_fake(&fake);
    home.log_in(&fake);
    offline_change_then_web_edit(&fake, &home, 9);

    let tmux = Tmux::start(&home, &[]);
    tmux.wait_for("both values", TIMEOUT, |s| {
        status_bar(s).contains("MAL says episode 9, you set episode 6")
    });
    tmux.type_text("R");
    wait_until(&tmux, "the user's value to land", TIMEOUT, || {
        fake.watched(101) == Some(6)
    });
    tmux.wait_for("confirmed", TIMEOUT, |s| {
        row_has(s, "Bocchi the Rock!", "6 / 12")
            && !row_has(s, "Bocchi the Rock!", "↑")
            && !row_has(s, "Bocchi the Rock!", "12 !")
    });
    tmux.quit();
    assert_eq!(patched(&fake, 101), ["6"]);
}

#[test]
fn logging_in_as_another_account_never_sends_it_the_first_accounts_changes() {
    require_tmux!();
    let fake = FakeMal::start_background();
    fake.set_user("alice");
    seed(&fake);
    let home = Home::for_fake(&fake);
    home.install_browser();
    assert!(home.run(&["--login"]).status.success());
    // alice makes a change while MyAnimeList is unreachable.
    let first = Tmux::start(&home, &[]);
    first.wait_for("the synced list", TIMEOUT, list_synced);
    first.quit();
    drop(first);
    fake.go_down();
    let offline = Tmux::start(&home, &[]);
    offline.wait_for("offline", TIMEOUT, |s| status_bar(s).contains("offline"));
    offline.type_text("+");
    offline.wait_for("the change waiting", TIMEOUT, |s| {
        row_has(s, "Bocchi the Rock!", "6 / 12")
    });
    offline.quit();
    drop(offline);
    fake.go_up();

    // bob logs in on the same machine.
    fake.set_user("bob");
    let out = home.run(&["--login"]);
    assert!(out.status.success(), "{}", out.stderr);
    assert!(
        out.stdout.contains("Logged in to MyAnimeList as bob"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("1 change made as alice will not be sent to bob"),
        "{}",
        out.stdout
    );
    let bob = Tmux::start(&home, &[]);
    bob.wait_for("bob's synced list", TIMEOUT, |s| {
        list_synced(s) && s.lines().next().is_some_and(|l| l.contains("bob"))
    });
    std::thread::sleep(Duration::from_millis(1500));
    bob.quit();
    assert!(fake.patches().is_empty(), "{:?}", fake.patches());
}
