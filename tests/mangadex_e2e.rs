//! MangaDex end to end: the real `malt` binary (a plain process or in tmux for `--login
//! mangadex`, full-screen in tmux for the list) against the stateful fake MangaDex
//! (`tests/support/mangadex.rs`) and, for the two-service test, the fake MyAnimeList, both on
//! 127.0.0.1.
//!
//! Each test does what a user would do and looks at what they would see (the terminal, the
//! screen), then at what reached the fake (the requests, in order, with their bodies) and what
//! it holds afterwards: the reading statuses and the chapters marked read.
//!
//! Where tmux is missing, the full-screen tests print "skipping: tmux not installed" and pass.

mod support;

#[path = "e2e/harness.rs"]
mod harness;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use harness::{
    Finished, Home, TIMEOUT, Tmux, hint_line, mode, row, status_bar, tab_bar, title_bar, wait_until,
};
use serde_json::{Value, json};
use support::mal::{Anime, FakeMal};
use support::mangadex::{
    CLIENT_SECRET, Chapter, DEFAULT_PASSWORD, DEFAULT_USERNAME, FakeMangadex, Manga, Req,
};

/// How long to keep watching for a request that must not come.
const QUIET: Duration = Duration::from_millis(1200);

// ---------------------------------------------------------------------------------------------
// The catalogue and the list

/// Sousou no Frieren: reading, chapters 1–3 read of 1–6 (volume 1: 1–3, volume 2: 4–5, no volume
/// yet: 6), so `3 / 6` and `●`.
const FRIEREN: &str = "b019ea5d-5fe6-44d4-abbc-f546f210884d";
/// Blue Period: reading, every chapter out read (`5 / 5`, no `●`).
const BLUE: &str = "2394a5c7-1d2e-461f-acde-18726b9e37d6";
/// Dungeon Meshi: plan to read, nothing read (`0 / 4`).
const MESHI: &str = "d86cf65b-5f6c-437d-a0af-19a31f94ec55";
/// Vagabond: on hold (another tab).
const VAGABOND: &str = "5f6a8c2e-0d3b-4c7a-9e1f-2b3c4d5e6f70";

/// Upload `k` of a title (the title's first 8 hex digits, then `k`).
fn ch(manga: &str, k: u32) -> String {
    format!("{}-c4a9-4000-8000-{k:012x}", &manga[..8])
}

/// The chapter ids of Frieren in reading order.
fn frieren(k: u32) -> String {
    ch(FRIEREN, k)
}

fn seed(fake: &FakeMangadex) {
    fake.add_manga(
        Manga::new(FRIEREN, "Sousou no Frieren")
            .status("ongoing")
            .cover("frieren.jpg"),
    );
    fake.add_chapters(
        FRIEREN,
        vec![
            Chapter::new(&frieren(1), Some("1"), Some("1")),
            Chapter::new(&frieren(2), Some("1"), Some("2")).others(&[&ch(FRIEREN, 20)]),
            Chapter::new(&frieren(3), Some("1"), Some("3")),
            Chapter::new(&frieren(4), Some("2"), Some("4")),
            Chapter::new(&frieren(5), Some("2"), Some("5")),
            Chapter::new(&frieren(6), None, Some("6")),
            // Not in the configured languages: not counted.
            Chapter::new(&ch(FRIEREN, 7), None, Some("7")).language("fr"),
        ],
    );
    fake.set_status(FRIEREN, Some("reading"));
    fake.mark_read(FRIEREN, &[&frieren(1), &ch(FRIEREN, 20), &frieren(3)]);

    fake.add_manga(Manga::new(BLUE, "Blue Period").status("ongoing"));
    fake.add_chapters(
        BLUE,
        (1..=5)
            .map(|k| Chapter::new(&ch(BLUE, k), Some("1"), Some(&k.to_string())))
            .collect(),
    );
    fake.set_status(BLUE, Some("reading"));
    let all: Vec<String> = (1..=5).map(|k| ch(BLUE, k)).collect();
    fake.mark_read(BLUE, &all.iter().map(String::as_str).collect::<Vec<_>>());

    fake.add_manga(Manga::new(MESHI, "Dungeon Meshi").status("completed"));
    fake.add_chapters(
        MESHI,
        (1..=4)
            .map(|k| Chapter::new(&ch(MESHI, k), Some("1"), Some(&k.to_string())))
            .collect(),
    );
    fake.set_status(MESHI, Some("plan_to_read"));

    fake.add_manga(Manga::new(VAGABOND, "Vagabond").status("hiatus"));
    fake.add_chapters(
        VAGABOND,
        vec![Chapter::new(&ch(VAGABOND, 1), Some("1"), Some("1"))],
    );
    fake.set_status(VAGABOND, Some("on_hold"));
}

/// The Reading tab, sorted by title.
const READING: [&str; 2] = ["Blue Period", "Sousou no Frieren"];

// ---------------------------------------------------------------------------------------------
// Homes and logging in

/// A home whose config points at `fake`, not logged in.
fn mangadex_home(fake: &FakeMangadex) -> Home {
    let home = Home::new();
    home.write_config(&fake.config_toml());
    home
}

fn tokens_path(home: &Home) -> PathBuf {
    home.data_dir().join("mangadex-tokens.json")
}

fn stored_tokens(home: &Home) -> Option<Value> {
    let bytes = std::fs::read(tokens_path(home)).ok()?;
    Some(serde_json::from_slice(&bytes).expect("the token file is JSON"))
}

fn stored(home: &Home, key: &str) -> String {
    stored_tokens(home).expect("a stored login")[key]
        .as_str()
        .expect(key)
        .to_string()
}

/// `malt --login mangadex` with `input` on stdin (a pipe, not a terminal).
fn login_by_pipe(home: &Home, input: &str) -> Finished {
    let mut malt = home.spawn(&["--login", "mangadex"]);
    malt.write_stdin(input);
    malt.finish(TIMEOUT)
}

/// A home logged in to `fake` as a user does it (the password piped in).
fn logged_in_home(fake: &FakeMangadex) -> Home {
    let home = mangadex_home(fake);
    let out = login_by_pipe(&home, &format!("{DEFAULT_PASSWORD}\n"));
    assert!(out.status.success(), "{}", all(&out));
    home
}

fn all(out: &Finished) -> String {
    format!(
        "status {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status, out.stdout, out.stderr
    )
}

/// Fails if the password, the client secret or any token the fake issued is in `text`.
fn assert_no_secret(fake: &FakeMangadex, home: &Home, text: &str, where_: &str) {
    let mut secrets = vec![DEFAULT_PASSWORD.to_string(), CLIENT_SECRET.to_string()];
    if let Some(t) = fake.last_issued() {
        secrets.extend([t.access, t.refresh]);
    }
    if let Some(t) = stored_tokens(home) {
        for key in ["access_token", "refresh_token"] {
            secrets.extend(t[key].as_str().map(str::to_string));
        }
    }
    for secret in secrets {
        assert!(
            !text.contains(&secret),
            "a secret appears in {where_}:\n{text}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The screen

/// malt's list in a 120×40 pane, in UTC.
fn start(home: &Home) -> Tmux {
    Tmux::start_with(home, &[], 120, 40, &[("TZ", "UTC")])
}

fn start_synced(home: &Home, titles: &[&str]) -> Tmux {
    let tmux = start(home);
    tmux.wait_for("the synced list", TIMEOUT, |s| ready(s, titles));
    tmux
}

/// Every one of `titles` is on screen, synced, nothing on its way.
fn ready(s: &str, titles: &[&str]) -> bool {
    titles.iter().all(|t| row(s, t).is_some()) && settled(s)
}

/// Synced and nothing waiting for the service: no `↑` on a row, no "pending" on the bar.
fn settled(s: &str) -> bool {
    let bar = status_bar(s);
    bar.contains("synced")
        && !bar.contains("pending")
        && !bar.contains("waiting")
        && !s.contains('↑')
}

fn row_has(s: &str, title: &str, text: &str) -> bool {
    row(s, title).is_some_and(|l| l.contains(text))
}

fn check(tmux: &Tmux, screen: &str, ok: bool, what: &str) {
    if !ok {
        tmux.fail(what, screen);
    }
}

/// The status bar starts with the name of the service shown (several logged in).
fn shows_service(screen: &str, short: &str) -> bool {
    status_bar(screen)
        .trim_start()
        .starts_with(&format!("{short} │"))
}

/// Selects `title` by moving down from the top.
fn select(tmux: &Tmux, title: &str, downs: usize) {
    for _ in 0..downs {
        tmux.type_text("j");
    }
    tmux.wait_for(&format!("{title} selected"), TIMEOUT, |s| {
        row_has(s, title, &format!("› {title}"))
    });
}

// ---------------------------------------------------------------------------------------------
// What reached the fake

/// The `POST /manga/{manga}/read` requests, in order.
fn read_posts(fake: &FakeMangadex, manga: &str) -> Vec<Req> {
    let path = format!("/manga/{manga}/read");
    fake.api_requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == path)
        .collect()
}

/// Waits until `n` read POSTs for `manga` came, then long enough for one more; returns them.
fn exactly_read_posts(tmux: &Tmux, fake: &FakeMangadex, manga: &str, n: usize) -> Vec<Req> {
    wait_until(tmux, &format!("{n} POST /manga/…/read"), TIMEOUT, || {
        read_posts(fake, manga).len() >= n
    });
    std::thread::sleep(QUIET);
    let got = read_posts(fake, manga);
    if got.len() != n {
        let shown: Vec<String> = got
            .iter()
            .map(|r| format!("{} {}", r.status, r.body))
            .collect();
        tmux.fail(
            &format!(
                "expected exactly {n} read POSTs, got {shown:#?}\n{}",
                api_log(fake)
            ),
            &tmux.screen(),
        );
    }
    got
}

fn api_log(fake: &FakeMangadex) -> String {
    fake.requests()
        .iter()
        .map(|r| format!("{} {} {} {}", r.status, r.method, r.path, r.body))
        .collect::<Vec<_>>()
        .join("\n")
}

fn marks(read: &[&str], unread: &[&str]) -> Value {
    let mut body = serde_json::Map::new();
    if !read.is_empty() {
        body.insert("chapterIdsRead".into(), json!(read));
    }
    if !unread.is_empty() {
        body.insert("chapterIdsUnread".into(), json!(unread));
    }
    Value::Object(body)
}

fn read_set(fake: &FakeMangadex, manga: &str) -> Vec<String> {
    fake.read_set(manga).into_iter().collect()
}

fn sorted(ids: &[String]) -> Vec<String> {
    let mut ids = ids.to_vec();
    ids.sort();
    ids
}

// ---------------------------------------------------------------------------------------------
// Logging in

#[test]
fn login_in_a_terminal_asks_for_the_password_without_showing_it() {
    require_tmux!();
    let fake = FakeMangadex::start_background();
    let home = mangadex_home(&fake);
    let tmux = Tmux::start(&home, &["--login", "mangadex"]);
    tmux.wait_for("the password prompt", TIMEOUT, |s| {
        s.contains(&format!(
            "MangaDex password for {DEFAULT_USERNAME} (it is not shown):"
        ))
    });
    tmux.type_text(DEFAULT_PASSWORD);
    tmux.keys(&["Enter"]);
    let (code, screen) = tmux.wait_exit();
    if code != 0 {
        tmux.fail(&format!("exit code {code}"), &screen);
    }
    check(
        &tmux,
        &screen,
        screen.contains(&format!("Logged in to MangaDex as {DEFAULT_USERNAME}")),
        "logged in",
    );
    let history = tmux.history();
    check(
        &tmux,
        &history,
        !history.contains(DEFAULT_PASSWORD) && !history.contains("hunter2"),
        "the password is not echoed",
    );
    check(
        &tmux,
        &screen,
        Tmux::tty_modes(&screen).is_some_and(|m| m == ["icanon", "echo"]),
        "the terminal modes are restored",
    );
    assert_eq!(mode(&tokens_path(&home)), 0o600, "token file mode");
    let issued = fake.last_issued().unwrap();
    assert_eq!(stored(&home, "access_token"), issued.access);
    assert_eq!(stored(&home, "refresh_token"), issued.refresh);
    assert_eq!(fake.login_count(), 1);
    let grant = fake.token_requests().pop().unwrap();
    assert!(
        grant
            .form()
            .contains(&("password".into(), DEFAULT_PASSWORD.into())),
        "the password as typed"
    );
    let file = std::fs::read_to_string(tokens_path(&home)).unwrap();
    assert!(
        !file.contains(DEFAULT_PASSWORD),
        "the password is not stored"
    );
    let log = std::fs::read_to_string(home.log_path()).unwrap_or_default();
    assert_no_secret(&fake, &home, &log, "malt.log");
}

#[test]
fn login_reads_the_password_from_a_pipe_and_a_wrong_one_stores_nothing() {
    let fake = FakeMangadex::start_background();
    let home = mangadex_home(&fake);

    // A wrong password: a readable refusal, exit status 1, no token file.
    let out = login_by_pipe(&home, "not my password\n");
    assert!(!out.status.success(), "{}", all(&out));
    assert!(
        out.stderr
            .contains("malt: MangaDex refused the login: wrong username or password"),
        "{}",
        all(&out)
    );
    assert!(!out.stderr.contains("not my password"), "{}", all(&out));
    assert!(!out.stdout.contains("not my password"), "{}", all(&out));
    assert!(!tokens_path(&home).exists(), "no token file");
    // Nothing typed: nothing sent.
    let asked = fake.token_requests().len();
    let out = login_by_pipe(&home, "");
    assert!(!out.status.success(), "{}", all(&out));
    assert!(out.stderr.contains("no password"), "{}", all(&out));
    assert_eq!(fake.token_requests().len(), asked, "nothing sent");

    // The right one, from a pipe: no prompt, logged in.
    let out = login_by_pipe(&home, &format!("{DEFAULT_PASSWORD}\n"));
    assert!(out.status.success(), "{}", all(&out));
    assert!(
        out.stdout
            .contains(&format!("Logged in to MangaDex as {DEFAULT_USERNAME}")),
        "{}",
        all(&out)
    );
    assert_eq!(mode(&tokens_path(&home)), 0o600);
    assert_eq!(
        stored(&home, "access_token"),
        fake.last_issued().unwrap().access
    );
    let text = format!(
        "{}\n{}",
        all(&out),
        std::fs::read_to_string(home.log_path()).unwrap_or_default()
    );
    assert_no_secret(&fake, &home, &text, "the output and malt.log");
}

// ---------------------------------------------------------------------------------------------
// The list and progress: the test

#[test]
fn plus_plus_minus_marks_the_next_chapter_read_then_unread_and_the_fake_holds_exactly_that() {
    require_tmux!();
    let fake = FakeMangadex::start_background();
    seed(&fake);
    let home = logged_in_home(&fake);
    let tmux = start_synced(&home, &READING);
    let screen = tmux.screen();
    check(
        &tmux,
        &screen,
        title_bar(&screen).contains(&format!("{DEFAULT_USERNAME} @ MangaDex")),
        "the title bar names the account and MangaDex",
    );
    check(
        &tmux,
        &screen,
        tab_bar(&screen).contains("Reading 2"),
        "the Reading tab holds two",
    );
    check(
        &tmux,
        &screen,
        row_has(&screen, "Sousou no Frieren", "3 / 6")
            && row_has(&screen, "Sousou no Frieren", "●"),
        "Frieren: 3 read of 6 out (the French chapter not counted), newer chapters marked ●",
    );
    check(
        &tmux,
        &screen,
        row_has(&screen, "Blue Period", "5 / 5") && !row_has(&screen, "Blue Period", "●"),
        "Blue Period: all read, no marker",
    );
    check(
        &tmux,
        &screen,
        hint_line(&screen).is_some_and(|h| h.contains("chapter")),
        "the hints speak of chapters",
    );
    let header = screen.lines().nth(2).unwrap_or("");
    check(
        &tmux,
        &screen,
        header.contains("Progress") && !header.contains("Score") && !header.contains("Volumes"),
        "MangaDex keeps no scores or volumes: no such columns",
    );
    check(
        &tmux,
        &screen,
        title_bar(&screen).contains("Manga") && !title_bar(&screen).contains("Anime"),
        "manga only",
    );
    check(
        &tmux,
        &screen,
        !status_bar(&screen).contains('│'),
        "one service logged in: the status bar names none",
    );
    let before = fake.api_requests().len();

    // Blue Period, Sousou no Frieren.
    select(&tmux, "Sousou no Frieren", 1);
    tmux.type_text("+");
    tmux.wait_for("4 / 6", TIMEOUT, |s| {
        row_has(s, "Sousou no Frieren", "4 / 6")
    });
    tmux.type_text("+");
    tmux.wait_for("5 / 6", TIMEOUT, |s| {
        row_has(s, "Sousou no Frieren", "5 / 6")
    });
    tmux.type_text("-");
    let posts = exactly_read_posts(&tmux, &fake, FRIEREN, 3);
    let bodies: Vec<Option<Value>> = posts.iter().map(Req::json).collect();
    assert_eq!(
        bodies,
        [
            Some(marks(&[&frieren(4)], &[])),
            Some(marks(&[&frieren(5)], &[])),
            Some(marks(&[], &[&frieren(5)])),
        ],
        "the next chapter read, the one after read, then unread, in order"
    );
    assert!(posts.iter().all(|r| r.status == 200), "{}", api_log(&fake));
    let after: Vec<String> = fake.api_requests()[before..]
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(
        after
            .iter()
            .all(|r| *r == format!("POST /manga/{FRIEREN}/read")),
        "nothing but the three POSTs: {after:?}"
    );
    // One chapter more read than before: exactly chapters 1 (2's other upload) 3 and 4.
    assert_eq!(
        read_set(&fake, FRIEREN),
        sorted(&[frieren(1), ch(FRIEREN, 20), frieren(3), frieren(4)])
    );
    assert_eq!(fake.status(FRIEREN).as_deref(), Some("reading"));
    let screen = tmux.wait_for("4 / 6, confirmed", TIMEOUT, |s| {
        settled(s) && row_has(s, "Sousou no Frieren", "4 / 6")
    });
    check(
        &tmux,
        &screen,
        row_has(&screen, "Sousou no Frieren", "●"),
        "chapters 5 and 6 still unread: ●",
    );
    tmux.quit_restored();
}

#[test]
fn the_first_plus_on_a_plan_to_read_title_moves_it_to_reading_and_marks_chapter_1() {
    require_tmux!();
    let fake = FakeMangadex::start_background();
    seed(&fake);
    let home = logged_in_home(&fake);
    let tmux = start_synced(&home, &READING);
    // The Plan to read tab is the last: one step back from the first.
    tmux.keys(&["BTab"]);
    let screen = tmux.wait_for("the Plan to read tab", TIMEOUT, |s| {
        row_has(s, "Dungeon Meshi", "0 / 4")
    });
    check(
        &tmux,
        &screen,
        !row_has(&screen, "Dungeon Meshi", "●"),
        "not being read: no marker",
    );
    let before = fake.api_requests().len();
    tmux.type_text("+");
    wait_until(&tmux, "chapter 1 marked read", TIMEOUT, || {
        !fake.read_set(MESHI).is_empty()
    });
    std::thread::sleep(QUIET);
    let sent: Vec<(String, Option<Value>)> = fake.api_requests()[before..]
        .iter()
        .map(|r| (format!("{} {} {}", r.status, r.method, r.path), r.json()))
        .collect();
    assert_eq!(
        sent,
        [
            (
                format!("200 POST /manga/{MESHI}/status"),
                Some(json!({"status": "reading"}))
            ),
            (
                format!("200 POST /manga/{MESHI}/read"),
                Some(marks(&[&ch(MESHI, 1)], &[]))
            ),
        ]
    );
    assert_eq!(fake.status(MESHI).as_deref(), Some("reading"));
    assert_eq!(read_set(&fake, MESHI), [ch(MESHI, 1)]);
    // It is on the Reading tab now, 1 / 4 with newer chapters out.
    tmux.keys(&["Tab"]);
    let screen = tmux.wait_for("Dungeon Meshi on the Reading tab", TIMEOUT, |s| {
        settled(s) && row_has(s, "Dungeon Meshi", "1 / 4")
    });
    check(
        &tmux,
        &screen,
        tab_bar(&screen).contains("Reading 3"),
        "three being read",
    );
    check(&tmux, &screen, row_has(&screen, "Dungeon Meshi", "●"), "●");
    tmux.quit();
}

// ---------------------------------------------------------------------------------------------
// Sessions

#[test]
fn the_session_is_renewed_in_the_background_and_a_refused_renewal_waits_for_a_new_login() {
    require_tmux!();
    let fake = FakeMangadex::start_background();
    seed(&fake);
    // Access tokens that end within the 5 minutes malt renews them ahead.
    fake.set_access_lifetime(240);
    let home = logged_in_home(&fake);
    // The renewed ones last the usual 15 minutes: renewed once, at the start.
    fake.set_access_lifetime(900);
    let first_refresh = stored(&home, "refresh_token");
    let tmux = start_synced(&home, &READING);

    // 1. Renewed in the background, before any key: the rotated tokens are stored.
    wait_until(&tmux, "a refresh", TIMEOUT, || fake.refresh_count() >= 1);
    wait_until(&tmux, "the rotated tokens stored", TIMEOUT, || {
        stored_tokens(&home).is_some_and(|t| {
            t["refresh_token"].as_str() == fake.last_issued().map(|t| t.refresh).as_deref()
        })
    });
    assert_ne!(stored(&home, "refresh_token"), first_refresh);
    let e = fake.refresh_elsewhere(&first_refresh).unwrap_err();
    assert!(
        e.contains("Stale token"),
        "the old refresh token is spent: {e}"
    );

    // 2. MangaDex ends the access token early: `+` is still delivered (401, renewed, sent again).
    fake.expire_access_tokens();
    select(&tmux, "Sousou no Frieren", 1);
    tmux.type_text("+");
    let posts = exactly_read_posts(&tmux, &fake, FRIEREN, 2);
    assert_eq!(
        posts.iter().map(|r| r.status).collect::<Vec<_>>(),
        [401, 200],
        "{}",
        api_log(&fake)
    );
    assert_eq!(posts[1].json(), Some(marks(&[&frieren(4)], &[])));
    tmux.wait_for("4 / 6, confirmed", TIMEOUT, |s| {
        settled(s) && row_has(s, "Sousou no Frieren", "4 / 6")
    });
    assert_eq!(
        posts[1].bearer.as_deref(),
        Some(fake.last_issued().unwrap().access.as_str())
    );

    // 3. Logged out everywhere: the renewal is refused; the change waits, the bar says what to do.
    fake.revoke_sessions();
    tmux.type_text("+");
    let screen = tmux.wait_for(
        "session expired, with the MangaDex login command",
        TIMEOUT,
        |s| status_bar(s).contains("session expired: run `malt --login mangadex`"),
    );
    check(
        &tmux,
        &screen,
        row_has(&screen, "Sousou no Frieren", "5 / 6")
            && row_has(&screen, "Sousou no Frieren", "↑"),
        "the change stays on screen, marked ↑",
    );
    check(
        &tmux,
        &screen,
        status_bar(&screen).contains("1 pending")
            || status_bar(&screen).contains("1 change waiting"),
        "one change waiting",
    );
    assert_eq!(read_set(&fake, FRIEREN).len(), 4, "nothing marked");
    let refused = read_posts(&fake, FRIEREN).len();
    std::thread::sleep(QUIET);
    assert_eq!(
        read_posts(&fake, FRIEREN).len(),
        refused,
        "not tried again meanwhile"
    );

    // `malt --login mangadex` in another terminal: the change is delivered.
    let out = login_by_pipe(&home, &format!("{DEFAULT_PASSWORD}\n"));
    assert!(out.status.success(), "{}", all(&out));
    let logged_in = Instant::now();
    wait_until(&tmux, "the waiting change delivered", TIMEOUT, || {
        fake.read_set(FRIEREN).contains(&frieren(5))
    });
    let took = logged_in.elapsed();
    assert!(
        took < Duration::from_secs(12),
        "delivered {took:?} after the new login"
    );
    let screen = tmux.wait_for("the login message gone, nothing pending", TIMEOUT, |s| {
        settled(s) && !status_bar(s).contains("expired") && row_has(s, "Sousou no Frieren", "5 / 6")
    });
    let ok: Vec<Req> = read_posts(&fake, FRIEREN)
        .into_iter()
        .filter(|r| r.status == 200)
        .collect();
    assert_eq!(ok.len(), 2, "delivered once: {}", api_log(&fake));
    assert_eq!(ok[1].json(), Some(marks(&[&frieren(5)], &[])));
    let log = std::fs::read_to_string(home.log_path()).unwrap_or_default();
    assert_no_secret(
        &fake,
        &home,
        &format!("{screen}\n{log}"),
        "the screen and malt.log",
    );
    eprintln!("delivered {took:?} after the new login");
    tmux.quit();
}

// ---------------------------------------------------------------------------------------------
// Two services

#[test]
fn with_mal_and_mangadex_logged_in_v_switches_and_each_plus_reaches_only_its_service() {
    require_tmux!();
    let mal = FakeMal::start_background();
    mal.set_user("mal_user");
    mal.add_anime(Anime::new(101, "Bocchi the Rock!", 12).watched(5));
    let fake = FakeMangadex::start_background();
    seed(&fake);
    let home = Home::new();
    home.write_config(&format!(
        "{}\n{}",
        home.mal_config(&mal),
        fake.config_toml()
    ));
    home.log_in(&mal);
    let out = login_by_pipe(&home, &format!("{DEFAULT_PASSWORD}\n"));
    assert!(out.status.success(), "{}", all(&out));

    let tmux = start(&home);
    let screen = tmux.wait_for("the MAL list, synced", TIMEOUT, |s| {
        ready(s, &["Bocchi the Rock!"]) && shows_service(s, "MAL")
    });
    check(
        &tmux,
        &screen,
        hint_line(&screen).is_some_and(|h| h.contains("v MangaDex")),
        "the hints offer `v MangaDex`",
    );
    check(
        &tmux,
        &screen,
        row(&screen, "Frieren").is_none(),
        "only the MAL list",
    );

    tmux.type_text("v");
    let screen = tmux.wait_for("the MangaDex list, synced", TIMEOUT, |s| {
        shows_service(s, "MangaDex") && ready(s, &READING)
    });
    check(
        &tmux,
        &screen,
        title_bar(&screen).contains(&format!("{DEFAULT_USERNAME} @ MangaDex")),
        "the MangaDex account in the title bar",
    );
    check(
        &tmux,
        &screen,
        hint_line(&screen).is_some_and(|h| h.contains("v MAL")),
        "the hints offer `v MAL` back",
    );
    check(
        &tmux,
        &screen,
        row(&screen, "Bocchi").is_none(),
        "only the MangaDex list",
    );
    check(
        &tmux,
        &screen,
        row_has(&screen, "Sousou no Frieren", "3 / 6"),
        "read / latest",
    );

    select(&tmux, "Sousou no Frieren", 1);
    tmux.type_text("+");
    let posts = exactly_read_posts(&tmux, &fake, FRIEREN, 1);
    assert_eq!(posts[0].json(), Some(marks(&[&frieren(4)], &[])));
    tmux.wait_for("4 / 6, confirmed", TIMEOUT, |s| {
        settled(s) && row_has(s, "Sousou no Frieren", "4 / 6")
    });
    assert!(
        mal.patches().is_empty(),
        "nothing reached MAL: {:?}",
        mal.patches()
    );

    tmux.type_text("v");
    let screen = tmux.wait_for("MAL again", TIMEOUT, |s| {
        shows_service(s, "MAL") && tab_bar(s).contains("Plan to")
    });
    // MangaDex keeps manga only; MAL comes back on the anime list it was left on.
    assert!(
        tab_bar(&screen).contains("Watching"),
        "MAL's anime list again: {screen}"
    );
    tmux.wait_for("the MAL anime list again", TIMEOUT, |s| {
        shows_service(s, "MAL") && row_has(s, "Bocchi the Rock!", "5 / 12")
    });
    tmux.type_text("+");
    wait_until(&tmux, "the MAL PATCH", TIMEOUT, || {
        mal.watched(101) == Some(6)
    });
    tmux.wait_for("6 / 12, confirmed", TIMEOUT, |s| {
        shows_service(s, "MAL") && settled(s) && row_has(s, "Bocchi the Rock!", "6 / 12")
    });
    std::thread::sleep(QUIET);
    assert_eq!(mal.patches().len(), 1, "{:?}", mal.patches());
    assert_eq!(
        read_posts(&fake, FRIEREN).len(),
        1,
        "nothing more reached MangaDex"
    );
    assert_eq!(
        fake.api_requests()
            .iter()
            .filter(|r| r.method == "POST")
            .count(),
        1,
        "{}",
        api_log(&fake)
    );
    tmux.quit();
}
