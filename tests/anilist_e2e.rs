//! AniList end to end: the real `malt` binary (a plain process for `--login anilist`, full-screen
//! in tmux for the list) against the stateful fake AniList (`tests/support/anilist.rs`) and, for
//! the two-service test, the fake MyAnimeList, both on 127.0.0.1.
//!
//! Each test does what a new user would do and looks at what they would see: the terminal's
//! output, the screen (`capture-pane`), and then what reached the fake (the GraphQL requests, in
//! order, with their variables) and what the fake's list holds afterwards.
//!
//! malt runs with `TZ=UTC`. Where tmux is missing, the full-screen tests print "skipping: tmux not
//! installed" and pass.

mod support;

#[path = "e2e/harness.rs"]
mod harness;

use std::time::{Duration, Instant};

use harness::{
    Home, Proc, TIMEOUT, Tmux, hint_line, http_get, mode, row, status_bar, tab_bar, title_bar,
    unix_now, wait_until,
};
use support::anilist::{
    DEFAULT_USER_ID, DEFAULT_USER_NAME, Entry, FakeAnilist, Fault, GqlRequest, ListStatus, Media,
    MediaType, PIN_URI, ScoreFormat, TOKEN_LIFETIME, jwt_payload,
};
use support::mal::{Anime, FakeMal};

/// How long to keep watching for a request that must not come.
const QUIET: Duration = Duration::from_millis(1200);

// ---------------------------------------------------------------------------------------------
// Starting malt
// ---------------------------------------------------------------------------------------------

/// A home whose config points at `fake` (implicit grant, loopback redirect), not logged in.
fn anilist_home(fake: &FakeAnilist) -> Home {
    let home = Home::new();
    home.write_config(&home.anilist_config(fake));
    home
}

/// A home logged in to `fake` as a user does it: `malt --login anilist --no-browser`, pasting
/// a year-long token (so malt also knows the account's name).
fn logged_in_home(fake: &FakeAnilist) -> Home {
    let home = anilist_home(fake);
    log_in_by_paste(&home, fake);
    home
}

/// `malt --login anilist --no-browser` with a fresh token of the fake's user pasted. Returns it.
fn log_in_by_paste(home: &Home, fake: &FakeAnilist) -> String {
    let token = fake.issue_token(DEFAULT_USER_ID);
    let (_, out) = paste_login(home, |_| token.clone());
    assert!(out.status.success(), "{}", all(&out));
    token
}

/// `malt --login --no-browser` (MyAnimeList), pasting the redirect the fake answers.
fn log_in_to_mal(home: &Home) {
    let mut malt = home.spawn(&["--login", "mal", "--no-browser"]);
    let shown = malt.wait_stdout("the paste prompt", |s| s.contains("Paste"));
    let location = authorize(&printed_url(&shown));
    malt.write_stdin(&format!("{location}\n"));
    let out = malt.finish(TIMEOUT);
    assert!(out.status.success(), "{}", all(&out));
}

/// malt's list in a 120×40 pane, in UTC.
fn start(home: &Home) -> Tmux {
    Tmux::start_with(home, &[], 120, 40, &[("TZ", "UTC")])
}

/// Starts malt and waits until the list shows every one of `titles`, synced, nothing pending.
fn start_synced(home: &Home, titles: &[&str]) -> Tmux {
    let tmux = start(home);
    tmux.wait_for("the synced list", TIMEOUT, |s| ready(s, titles));
    tmux
}

// ---------------------------------------------------------------------------------------------
// Reading the screen
// ---------------------------------------------------------------------------------------------

/// Every one of `titles` is on screen, the status bar says synced, nothing is on its way.
fn ready(s: &str, titles: &[&str]) -> bool {
    titles.iter().all(|t| row(s, t).is_some()) && settled(s)
}

/// Synced and nothing waiting for the service: no `↑` on a row, no "pending" on the bar.
fn settled(s: &str) -> bool {
    let bar = status_bar(s);
    bar.contains("synced")
        && !bar.contains("pending")
        && !bar.contains("waiting")
        && !s.contains(" ↑")
}

/// The words of `title`'s row.
fn words<'a>(screen: &'a str, title: &str) -> Vec<&'a str> {
    row(screen, title).map_or_else(Vec::new, |l| l.split_whitespace().collect())
}

/// Whether `title`'s row has `text` as one of its words.
fn has_word(screen: &str, title: &str, text: &str) -> bool {
    words(screen, title).contains(&text)
}

/// Fails (with the screen and malt's log) unless `ok`.
fn check(tmux: &Tmux, screen: &str, ok: bool, what: &str) {
    if !ok {
        tmux.fail(what, screen);
    }
}

/// The status bar starts with the name of the service shown (both services logged in).
fn shows_service(screen: &str, short: &str) -> bool {
    status_bar(screen)
        .trim_start()
        .starts_with(&format!("{short} │"))
}

// ---------------------------------------------------------------------------------------------
// What reached the fake
// ---------------------------------------------------------------------------------------------

/// Every `SaveMediaListEntry` the fake received (answered or not), in arrival order.
fn saves(fake: &FakeAnilist) -> Vec<GqlRequest> {
    fake.graphql_requests()
        .into_iter()
        .filter(|r| r.root_fields.iter().any(|f| f == "SaveMediaListEntry"))
        .collect()
}

/// The variables of a save, but `format` (which only says how the answer's score is written),
/// sorted by name.
fn set_fields(r: &GqlRequest) -> Vec<String> {
    let mut names: Vec<String> = r
        .variables
        .as_object()
        .map(|o| o.keys().filter(|k| *k != "format").cloned().collect())
        .unwrap_or_default();
    names.sort();
    names
}

/// Waits until the fake has received `n` saves, then long enough for one more to arrive if one
/// were sent, and returns them.
fn exactly_saves(tmux: &Tmux, fake: &FakeAnilist, n: usize) -> Vec<GqlRequest> {
    wait_until(tmux, &format!("{n} SaveMediaListEntry"), TIMEOUT, || {
        saves(fake).len() >= n
    });
    std::thread::sleep(QUIET);
    let got = saves(fake);
    if got.len() != n {
        let shown: Vec<String> = got
            .iter()
            .map(|r| format!("{} {}", r.status, r.variables))
            .collect();
        tmux.fail(
            &format!("expected exactly {n} SaveMediaListEntry, got {shown:#?}"),
            &tmux.screen(),
        );
    }
    got
}

/// The fake's GraphQL log in short: root fields, status, variables.
fn gql_log(fake: &FakeAnilist) -> String {
    fake.graphql_requests()
        .iter()
        .map(|r| format!("{:?} {} {}", r.root_fields, r.status, r.variables))
        .collect::<Vec<_>>()
        .join("\n")
}

/// [`Tmux::wait_for`], failing with the fake's GraphQL log too.
fn wait_screen(tmux: &Tmux, fake: &FakeAnilist, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    loop {
        let screen = tmux.screen();
        if pred(&screen) {
            return tmux.wait_for(what, TIMEOUT, &pred);
        }
        if start.elapsed() > TIMEOUT {
            tmux.fail(
                &format!(
                    "timed out after {TIMEOUT:?} waiting for {what}\n--- AniList requests ---\n{}",
                    gql_log(fake)
                ),
                &screen,
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The progress the fake's list holds for `media_id`.
fn progress(fake: &FakeAnilist, media_id: u64) -> Option<u32> {
    fake.entry(DEFAULT_USER_ID, media_id).map(|e| e.progress)
}

// ---------------------------------------------------------------------------------------------
// Logging in (plain processes)
// ---------------------------------------------------------------------------------------------

/// Asserts that `secret` appears nowhere in `text`.
fn assert_hidden(secret: &str, text: &str, where_: &str) {
    assert!(secret.len() > 20, "not a token: {secret:?}");
    assert!(
        !text.contains(secret),
        "the token appears in {where_}:\n{text}"
    );
}

/// The address a login prints for the browser (the first line starting with `http`).
fn printed_url(shown: &str) -> String {
    shown
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("http"))
        .unwrap_or_else(|| panic!("no login address printed:\n{shown}"))
        .to_string()
}

/// What the fake's `/authorize` redirects a browser to for `url` (not followed).
fn authorize(url: &str) -> String {
    let (status, headers, body) = http_get(url);
    assert_eq!(status, 302, "GET /authorize: {headers:?}\n{body}");
    headers
        .into_iter()
        .find(|(k, _)| k == "location")
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no Location from /authorize"))
}

/// `key` of a query or fragment string.
fn param(pairs: &str, key: &str) -> Option<String> {
    url::form_urlencoded::parse(pairs.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

/// Runs `malt --login anilist --no-browser`, pastes `paste` once the prompt shows, and waits for
/// the end. Returns what was printed before the prompt and how it ended.
fn paste_login(home: &Home, paste: impl FnOnce(&str) -> String) -> (String, harness::Finished) {
    let mut malt: Proc = home.spawn(&["--login", "anilist", "--no-browser"]);
    let shown = malt.wait_stdout("the paste prompt", |s| s.contains("Paste"));
    let line = paste(&shown);
    malt.write_stdin(&format!("{line}\n"));
    (shown, malt.finish(TIMEOUT))
}

/// The whole output of a finished process, for messages.
fn all(out: &harness::Finished) -> String {
    format!(
        "status {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status, out.stdout, out.stderr
    )
}

/// The login stored: mode 0600, the token the fake issued last, `expires_at` = the JWT's `exp`,
/// no refresh token. Returns the token.
fn assert_stored_login(home: &Home, fake: &FakeAnilist) -> String {
    let path = home.anilist_tokens_path();
    assert_eq!(mode(&path), 0o600, "token file mode");
    assert_eq!(mode(&home.data_dir()), 0o700, "data dir mode");
    let stored = home.anilist_tokens().expect("the login is stored");
    let token = stored["access_token"]
        .as_str()
        .expect("access_token")
        .to_string();
    let exp = jwt_payload(&token).expect("a JWT")["exp"]
        .as_i64()
        .expect("exp");
    assert_eq!(stored["expires_at"].as_i64(), Some(exp), "{stored}");
    assert_eq!(stored["refresh_token"].as_str(), Some(""), "{stored}");
    let year = unix_now() + TOKEN_LIFETIME;
    assert!((year - exp).abs() < 120, "a year-long token: exp {exp}");
    // The stored token works.
    assert!(
        fake.graphql_requests()
            .iter()
            .any(
                |r| r.authorization.as_deref() == Some(&format!("Bearer {token}"))
                    && r.root_fields == ["Viewer"]
                    && r.status == 200
            ),
        "the login asked AniList who the token belongs to"
    );
    token
}

#[test]
fn login_through_the_browser_catches_the_token_from_the_fragment() {
    let fake = FakeAnilist::start_background();
    let home = anilist_home(&fake);
    home.install_noting_browser();

    let mut malt = home.spawn(&["--login", "anilist"]);
    let shown = malt.wait_stdout("the wait for the browser", |s| {
        s.contains("Waiting for the login")
    });
    assert!(shown.contains("log in to AniList"), "{shown}");
    let start = Instant::now();
    while home.browser_calls().is_empty() {
        assert!(start.elapsed() < TIMEOUT, "no browser was opened:\n{shown}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let opened = home.browser_calls();
    assert_eq!(opened.len(), 1, "the browser is opened once: {opened:?}");
    assert_eq!(
        printed_url(&shown),
        opened[0],
        "the address printed is the one opened"
    );
    let asked = url::Url::parse(&opened[0]).unwrap();
    assert!(
        opened[0].starts_with(&format!("{}/authorize?", fake.auth_url())),
        "{opened:?}"
    );
    let query = asked.query().unwrap_or("");
    assert_eq!(
        param(query, "client_id").as_deref(),
        Some(FakeAnilist::CLIENT_ID)
    );
    assert_eq!(param(query, "response_type").as_deref(), Some("token"));
    let state = param(query, "state").expect("a state");

    // The browser: AniList approves and redirects with the token in the fragment.
    let location = authorize(&opened[0]);
    let (base, fragment) = location
        .split_once('#')
        .unwrap_or_else(|| panic!("no fragment in {location}"));
    assert_eq!(
        base, home.redirect_uri,
        "sent to the registered redirect URI"
    );
    let token = param(fragment, "access_token").expect("access_token in the fragment");
    // AniList's docs do not say the implicit grant echoes `state`; where it does, it is ours.
    if let Some(echoed) = param(fragment, "state") {
        assert_eq!(echoed, state);
    }
    // A browser loads the address without its fragment: malt's page must forward it.
    let (status, _, page) = http_get(base);
    assert_eq!(status, 200, "{page}");
    for script in ["location.hash", "location.replace", "<script>"] {
        assert!(
            page.contains(script),
            "the page forwards the fragment ({script}):\n{page}"
        );
    }
    assert_hidden(&token, &page, "the forwarding page");
    // …and its script asks again with the fragment as the query.
    let (status, _, done) = http_get(&format!("{base}?{fragment}"));
    assert_eq!(status, 200, "{done}");
    assert!(done.contains("You can close this tab"), "{done}");

    let out = malt.finish(TIMEOUT);
    assert!(out.status.success(), "{}", all(&out));
    assert!(
        out.stdout
            .contains(&format!("Logged in to AniList as {DEFAULT_USER_NAME}")),
        "{}",
        all(&out)
    );
    let stored = assert_stored_login(&home, &fake);
    assert_eq!(stored, token, "the token from the fragment is stored");
    assert_hidden(&token, &all(&out), "the output of malt --login anilist");
    let log = std::fs::read_to_string(home.log_path()).unwrap_or_default();
    assert_hidden(&token, &log, "malt.log");
    assert_eq!(
        fake.count_root("Viewer"),
        1,
        "one request: who the token belongs to"
    );
}

#[test]
fn login_without_a_browser_takes_a_pasted_token_address_or_code_and_refuses_garbage() {
    let fake = FakeAnilist::start_background();

    // 1. AniList's pin page: the user copies the token it shows.
    let home = Home::new();
    home.install_noting_browser();
    home.write_config(&fake.config_toml(PIN_URI));
    let mut pin_token = String::new();
    let (shown, out) = paste_login(&home, |shown| {
        let url = printed_url(shown);
        assert!(
            url.starts_with(&format!("{}/authorize?", fake.auth_url())),
            "{shown}"
        );
        let location = authorize(&url);
        assert!(location.starts_with(&fake.pin_url()), "{location}");
        // The page is loaded without the fragment; the fake shows the token in the textarea.
        let (status, _, page) = http_get(location.split('#').next().unwrap());
        assert_eq!(status, 200);
        let start = page.find("readonly").expect("the token box");
        let text = &page[start..];
        let token =
            text[text.find('>').unwrap() + 1..text.find("</textarea>").unwrap()].to_string();
        assert!(token.starts_with("ey"), "a JWT on the pin page: {token:?}");
        pin_token = token.clone();
        token
    });
    assert!(
        shown.contains("AniList then shows a token to copy"),
        "{shown}"
    );
    assert!(out.status.success(), "{}", all(&out));
    assert!(
        out.stdout
            .contains(&format!("Logged in to AniList as {DEFAULT_USER_NAME}")),
        "{}",
        all(&out)
    );
    assert_eq!(assert_stored_login(&home, &fake), pin_token);
    assert_hidden(&pin_token, &all(&out), "the output of the pin login");
    assert!(
        home.browser_calls().is_empty(),
        "--no-browser opens nothing"
    );

    // 2. A loopback redirect URI, no browser: the token alone, as `issue_token` gives it.
    let home = anilist_home(&fake);
    home.install_noting_browser();
    let token = fake.issue_token(DEFAULT_USER_ID);
    let (shown, out) = paste_login(&home, |_| format!("  {token}  "));
    assert!(
        shown.contains("Paste the token (or that whole address)"),
        "{shown}"
    );
    assert!(out.status.success(), "{}", all(&out));
    assert!(
        out.stdout.contains("Logged in to AniList as UserName"),
        "{}",
        all(&out)
    );
    assert_eq!(assert_stored_login(&home, &fake), token);
    assert!(
        home.browser_calls().is_empty(),
        "--no-browser opens nothing"
    );

    // …or the whole address the browser went to, fragment and all.
    let home = anilist_home(&fake);
    let mut pasted = String::new();
    let (_, out) = paste_login(&home, |shown| {
        let location = authorize(&printed_url(shown));
        assert!(location.contains("#access_token="), "{location}");
        pasted = param(location.split_once('#').unwrap().1, "access_token").unwrap();
        location
    });
    assert!(out.status.success(), "{}", all(&out));
    assert_eq!(assert_stored_login(&home, &fake), pasted);
    assert_hidden(
        &pasted,
        &all(&out),
        "the output of the pasted-address login",
    );

    // 3. Garbage: a word that is no token, and a sentence. One clear line, nothing stored.
    for (garbage, expect) in [
        ("notatoken123", "did not accept the token"),
        ("i do not know", "paste the redirect address"),
    ] {
        let home = anilist_home(&fake);
        let (_, out) = paste_login(&home, |_| garbage.to_string());
        assert!(
            !out.status.success(),
            "{garbage:?} logged in:\n{}",
            all(&out)
        );
        assert!(out.stderr.contains(expect), "{garbage:?}:\n{}", all(&out));
        assert_eq!(
            out.stderr.trim().lines().count(),
            1,
            "one line:\n{}",
            all(&out)
        );
        assert!(!all(&out).contains("panicked"), "{}", all(&out));
        assert!(
            !home.anilist_tokens_path().exists(),
            "nothing stored for {garbage:?}"
        );
    }

    // 4. The code grant (a client secret configured): the redirect address with `?code=`.
    let home = Home::new();
    home.write_config(&fake.config_toml_with_secret(&home.redirect_uri));
    let token_posts = || {
        fake.requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/oauth/token"))
            .count()
    };
    let before = token_posts();
    let (_, out) = paste_login(&home, |shown| {
        let url = printed_url(shown);
        let query = url::Url::parse(&url)
            .unwrap()
            .query()
            .unwrap_or("")
            .to_string();
        assert_eq!(
            param(&query, "response_type").as_deref(),
            Some("code"),
            "{url}"
        );
        assert_eq!(
            param(&query, "redirect_uri").as_deref(),
            Some(home.redirect_uri.as_str())
        );
        assert!(
            !url.contains(FakeAnilist::CLIENT_SECRET),
            "the secret is never in the address"
        );
        let location = authorize(&url);
        assert!(
            location.starts_with(&format!("{}?code=", home.redirect_uri)),
            "{location}"
        );
        location
    });
    assert!(out.status.success(), "{}", all(&out));
    assert!(
        out.stdout.contains("Logged in to AniList as UserName"),
        "{}",
        all(&out)
    );
    assert_eq!(token_posts(), before + 1, "the code is traded once");
    let token = assert_stored_login(&home, &fake);
    assert_hidden(&token, &all(&out), "the output of the code login");
    assert!(
        !all(&out).contains(FakeAnilist::CLIENT_SECRET),
        "the secret is never shown"
    );
}

/// In a real terminal the pasted token is the login for a year: it is not echoed, and the
/// terminal is left as it was.
#[test]
fn a_token_pasted_in_a_terminal_is_not_shown() {
    require_tmux!();
    let fake = FakeAnilist::start_background();
    let home = anilist_home(&fake);
    let tmux = Tmux::start(&home, &["--login", "anilist", "--no-browser"]);
    tmux.wait_for("the paste prompt", TIMEOUT, |s| {
        s.contains("Paste the token (or that whole address) here")
    });
    let token = fake.issue_token(DEFAULT_USER_ID);
    tmux.type_text(&token);
    tmux.keys(&["Enter"]);
    let (code, screen) = tmux.wait_exit();
    if code != 0 {
        tmux.fail(&format!("exit code {code}"), &screen);
    }
    check(
        &tmux,
        &screen,
        screen.contains("Logged in to AniList as UserName"),
        "logged in",
    );
    // The screen wraps long lines: no 30 characters of the token may be on it.
    let flat: String = tmux.history().lines().map(str::trim_end).collect();
    let shown = (0..token.len() - 30).find(|&i| flat.contains(&token[i..i + 30]));
    check(
        &tmux,
        &screen,
        shown.is_none(),
        &format!("the pasted token is not echoed (found at {shown:?})"),
    );
    check(
        &tmux,
        &screen,
        Tmux::tty_modes(&screen).is_some_and(|m| m == ["icanon", "echo"]),
        "the terminal modes are restored",
    );
    assert_eq!(assert_stored_login(&home, &fake), token);
}

// ---------------------------------------------------------------------------------------------
// The list
// ---------------------------------------------------------------------------------------------

/// Frieren (airing, 11 / 28, next episode 12), Fullmetal Alchemist (10 / 64, 8.5, also in a
/// custom list), Death Note (3 / 37, only in a custom list), Berserk (manga, 364 chapters and 42
/// volumes read, 10.0). The account scores POINT_10_DECIMAL (AniList's default). Returns when
/// Frieren's next episode airs.
fn seed(fake: &FakeAnilist) -> i64 {
    let airs = unix_now() + 2 * 86_400 + 5 * 3600 + 1800;
    fake.add_media(Media::anime(154587, "Sousou no Frieren", Some(28)).airing(12, airs));
    fake.add_media(Media::anime(
        5114,
        "Fullmetal Alchemist: Brotherhood",
        Some(64),
    ));
    fake.add_media(Media::anime(1535, "Death Note", Some(37)));
    fake.add_media(Media::manga(30002, "Berserk", None, None).status("RELEASING"));
    fake.add_entry(
        DEFAULT_USER_ID,
        Entry::new(154587, ListStatus::Current).progress(11),
    );
    fake.add_entry(
        DEFAULT_USER_ID,
        Entry::new(5114, ListStatus::Current)
            .progress(10)
            .score_raw(85)
            .custom_lists(&["Favourites"]),
    );
    fake.add_custom_list(DEFAULT_USER_ID, MediaType::Anime, "Favourites");
    fake.add_custom_list(DEFAULT_USER_ID, MediaType::Anime, "Rewatch later");
    fake.add_entry(
        DEFAULT_USER_ID,
        Entry::new(1535, ListStatus::Current)
            .progress(3)
            .custom_lists(&["Rewatch later"])
            .hidden(),
    );
    fake.add_entry(
        DEFAULT_USER_ID,
        Entry::new(30002, ListStatus::Current)
            .progress(364)
            .volumes(42)
            .score_raw(100),
    );
    airs
}

const ANIME: [&str; 3] = [
    "Death Note",
    "Fullmetal Alchemist: Brotherhood",
    "Sousou no Frieren",
];

#[test]
fn the_list_shows_anime_and_manga_custom_lists_once_scores_and_the_next_episode() {
    require_tmux!();
    let fake = FakeAnilist::start_background();
    let airs = seed(&fake);
    let home = logged_in_home(&fake);
    let tmux = start_synced(&home, &ANIME);
    let screen = tmux.screen();

    check(
        &tmux,
        &screen,
        title_bar(&screen).contains("UserName @ AniList"),
        "the title bar names the account and the service",
    );
    check(
        &tmux,
        &screen,
        !status_bar(&screen).contains('│'),
        "one service logged in: the status bar names none",
    );
    check(
        &tmux,
        &screen,
        tab_bar(&screen).contains("Watching 3"),
        "three entries watched, the custom-list-only one included",
    );
    let fma_rows = screen.lines().filter(|l| l.contains("Fullmetal")).count();
    check(
        &tmux,
        &screen,
        fma_rows == 1,
        &format!("an entry in a status list and a custom list shows once ({fma_rows} rows)"),
    );
    check(
        &tmux,
        &screen,
        row(&screen, "Death Note").is_some_and(|l| l.contains("3 / 37")),
        "the entry only in a custom list, 3 / 37",
    );
    check(
        &tmux,
        &screen,
        row(&screen, "Fullmetal").is_some_and(|l| l.contains("10 / 64"))
            && has_word(&screen, "Fullmetal", "8.5"),
        "POINT_10_DECIMAL: 85 shows as 8.5",
    );
    check(
        &tmux,
        &screen,
        has_word(&screen, "Death Note", "-") && has_word(&screen, "Sousou no Frieren", "-"),
        "no score shows as -",
    );
    let at = jiff::Timestamp::from_second(airs)
        .unwrap()
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .strftime("%a %H:%M")
        .to_string();
    let next = format!("ep 12 · {at} · in 2d 5h");
    check(
        &tmux,
        &screen,
        row(&screen, "Sousou no Frieren")
            .is_some_and(|l| l.contains("11 / 28") && l.contains(&next)),
        &format!("the next episode from nextAiringEpisode: {next:?}"),
    );
    check(
        &tmux,
        &screen,
        !row(&screen, "Sousou no Frieren").is_some_and(|l| l.contains('●')),
        "no new-episode marker: episode 11 is the last aired",
    );
    check(
        &tmux,
        &screen,
        row(&screen, "Fullmetal").is_some_and(|l| !l.contains("ep ")),
        "a finished show has no next episode",
    );

    tmux.type_text("m");
    let screen = tmux.wait_for("the manga list", TIMEOUT, |s| {
        row(s, "Berserk").is_some() && row(s, "Frieren").is_none()
    });
    check(
        &tmux,
        &screen,
        tab_bar(&screen).contains("Reading 1"),
        "the manga tabs: Reading 1",
    );
    check(
        &tmux,
        &screen,
        row(&screen, "Berserk").is_some_and(|l| l.contains("364 / ?") && l.contains("42 / ?"))
            && has_word(&screen, "Berserk", "10.0"),
        "chapters, volumes and the score 10.0",
    );
    check(
        &tmux,
        &screen,
        hint_line(&screen).is_some_and(|h| h.contains("chapter")),
        "the hints speak of chapters",
    );
    tmux.type_text("m");
    tmux.wait_for("back on the anime list", TIMEOUT, |s| ready(s, &ANIME));

    // Reading the list took the viewer and one collection per kind; nothing was written.
    let roots: Vec<String> = fake
        .graphql_requests()
        .iter()
        .flat_map(|r| r.root_fields.clone())
        .collect();
    assert!(
        roots
            .iter()
            .all(|r| r == "Viewer" || r == "MediaListCollection"),
        "{roots:?}"
    );
    assert_eq!(fake.count_root("MediaListCollection"), 2, "{roots:?}");
    assert!(fake.graphql_requests().iter().all(|r| r.status == 200));
    tmux.quit_restored();
}

// ---------------------------------------------------------------------------------------------
// Changing entries
// ---------------------------------------------------------------------------------------------

/// Selects `title` by moving down from the top (the list is sorted by title).
fn select(tmux: &Tmux, title: &str, downs: usize) {
    for _ in 0..downs {
        tmux.type_text("j");
    }
    tmux.wait_for(&format!("{title} selected"), TIMEOUT, |s| {
        row(s, title).is_some_and(|l| l.contains(&format!("› {title}")))
    });
}

#[test]
fn plus_plus_minus_sends_three_ordered_saves_with_the_progress_only() {
    require_tmux!();
    let fake = FakeAnilist::start_background();
    seed(&fake);
    let home = logged_in_home(&fake);
    let tmux = start_synced(&home, &ANIME);
    // Death Note, Fullmetal Alchemist, Sousou no Frieren.
    select(&tmux, "Fullmetal Alchemist: Brotherhood", 1);
    let before = fake.graphql_requests().len();

    tmux.type_text("+");
    tmux.wait_for("11 / 64", TIMEOUT, |s| {
        row(s, "Fullmetal").is_some_and(|l| l.contains("11 / 64"))
    });
    tmux.type_text("+");
    tmux.wait_for("12 / 64", TIMEOUT, |s| {
        row(s, "Fullmetal").is_some_and(|l| l.contains("12 / 64"))
    });
    tmux.type_text("-");
    let sent = exactly_saves(&tmux, &fake, 3);
    let progress_sent: Vec<Option<i64>> = sent
        .iter()
        .map(|r| r.var("progress").and_then(|v| v.as_i64()))
        .collect();
    assert_eq!(progress_sent, [Some(11), Some(12), Some(11)], "in order");
    for r in &sent {
        assert_eq!(
            set_fields(r),
            ["mediaId", "progress"],
            "only the progress: {}",
            r.variables
        );
        assert_eq!(r.var("mediaId").and_then(|v| v.as_u64()), Some(5114));
        assert_eq!(r.status, 200, "{}", r.response);
        assert!(r.is_mutation());
    }
    let after: Vec<Vec<String>> = fake.graphql_requests()[before..]
        .iter()
        .map(|r| r.root_fields.clone())
        .collect();
    assert!(
        after.iter().all(|r| r == &["SaveMediaListEntry"]),
        "nothing but the three saves: {after:?}"
    );
    let entry = fake.entry(DEFAULT_USER_ID, 5114).unwrap();
    assert_eq!(entry.progress, 11);
    assert_eq!(entry.score_raw, 85, "the score is untouched");
    assert_eq!(entry.status, ListStatus::Current);
    assert_eq!(
        entry.custom_lists,
        ["Favourites"],
        "the custom lists are untouched"
    );
    let screen = tmux.wait_for("11 / 64, confirmed", TIMEOUT, |s| {
        settled(s) && row(s, "Fullmetal").is_some_and(|l| l.contains("11 / 64") && !l.contains('↑'))
    });
    check(
        &tmux,
        &screen,
        has_word(&screen, "Fullmetal", "8.5"),
        "the score still 8.5",
    );
    tmux.quit();
}

#[test]
fn a_decimal_score_typed_in_the_prompt_is_saved_as_8_5() {
    require_tmux!();
    let fake = FakeAnilist::start_background();
    seed(&fake);
    fake.set_score_format(DEFAULT_USER_ID, ScoreFormat::Point10Decimal);
    fake.website_edit(DEFAULT_USER_ID, 1535, |e| e.score_raw = 70);
    let home = logged_in_home(&fake);
    let tmux = start_synced(&home, &ANIME);
    let screen = tmux.screen();
    check(
        &tmux,
        &screen,
        has_word(&screen, "Death Note", "7.0"),
        "70 shows as 7.0",
    );

    // Death Note is the first row.
    tmux.type_text("s");
    let screen = tmux.wait_for("the score prompt at 7.0", TIMEOUT, |s| {
        s.contains("┌ Score") && s.contains(" > 7.0▏") && s.contains(" = 7.0")
    });
    check(
        &tmux,
        &screen,
        screen.contains("0.1–10.0"),
        "the prompt gives the range",
    );
    check(
        &tmux,
        &screen,
        screen.contains("│ Death Note"),
        "the prompt names the entry",
    );
    tmux.type_text("8.5");
    tmux.wait_for("8.5 typed", TIMEOUT, |s| {
        s.contains(" > 8.5▏") && s.contains(" = 8.5")
    });
    check(
        &tmux,
        &tmux.screen(),
        saves(&fake).is_empty(),
        "nothing sent before Enter",
    );
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("8.5 on the row", TIMEOUT, |s| {
        !s.contains("┌ Score") && has_word(s, "Death Note", "8.5")
    });
    check(
        &tmux,
        &screen,
        row(&screen, "Death Note").is_some_and(|l| l.contains("3 / 37")),
        "the progress is unchanged",
    );
    let sent = exactly_saves(&tmux, &fake, 1);
    assert_eq!(
        set_fields(&sent[0]),
        ["mediaId", "score"],
        "{}",
        sent[0].variables
    );
    assert_eq!(sent[0].var("score").and_then(|v| v.as_f64()), Some(8.5));
    assert_eq!(sent[0].var("mediaId").and_then(|v| v.as_u64()), Some(1535));
    let entry = fake.entry(DEFAULT_USER_ID, 1535).unwrap();
    assert_eq!(entry.score_raw, 85, "8.5 of POINT_10_DECIMAL is 85 of 100");
    assert_eq!(entry.progress, 3);
    assert!(
        entry.hidden_from_status_lists,
        "still only in its custom list"
    );
    let screen = tmux.wait_for("the score confirmed", TIMEOUT, |s| {
        settled(s) && has_word(s, "Death Note", "8.5")
    });
    check(
        &tmux,
        &screen,
        has_word(&screen, "Fullmetal", "8.5"),
        "the other score as it was",
    );
    tmux.quit();
}

// ---------------------------------------------------------------------------------------------
// Both services
// ---------------------------------------------------------------------------------------------

#[test]
fn v_switches_between_the_mal_and_anilist_lists_and_each_plus_goes_to_its_own_service() {
    require_tmux!();
    let mal = FakeMal::start_background();
    mal.set_user("mal_user");
    mal.add_anime(Anime::new(101, "Bocchi the Rock!", 12).watched(5));
    let anilist = FakeAnilist::start_background();
    seed(&anilist);
    let home = Home::new();
    home.write_config(&format!(
        "{}\n{}",
        home.mal_config(&mal),
        home.anilist_config(&anilist)
    ));
    log_in_to_mal(&home);
    log_in_by_paste(&home, &anilist);

    let tmux = start(&home);
    let screen = tmux.wait_for("the MAL list, synced", TIMEOUT, |s| {
        ready(s, &["Bocchi the Rock!"]) && shows_service(s, "MAL")
    });
    check(
        &tmux,
        &screen,
        title_bar(&screen).contains("mal_user @ MyAnimeList"),
        "the MAL account in the title bar",
    );
    check(
        &tmux,
        &screen,
        hint_line(&screen).is_some_and(|h| h.contains("v AniList")),
        "the hints offer `v AniList`",
    );
    check(
        &tmux,
        &screen,
        row(&screen, "Frieren").is_none(),
        "only the MAL list",
    );

    tmux.type_text("v");
    let screen = wait_screen(&tmux, &anilist, "the AniList list, synced", |s| {
        shows_service(s, "AniList") && ready(s, &ANIME)
    });
    check(
        &tmux,
        &screen,
        title_bar(&screen).contains("UserName @ AniList"),
        "the AniList account in the title bar",
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
        "only the AniList list",
    );
    check(
        &tmux,
        &screen,
        has_word(&screen, "Fullmetal", "8.5"),
        "AniList scores in their format",
    );

    // Death Note is the first row.
    tmux.type_text("+");
    wait_until(&tmux, "the AniList save", TIMEOUT, || {
        progress(&anilist, 1535) == Some(4)
    });
    tmux.wait_for("4 / 37, confirmed", TIMEOUT, |s| {
        settled(s) && row(s, "Death Note").is_some_and(|l| l.contains("4 / 37"))
    });
    assert_eq!(saves(&anilist).len(), 1);
    assert!(
        mal.patches().is_empty(),
        "nothing reached MAL: {:?}",
        mal.patches()
    );

    tmux.type_text("v");
    let screen = tmux.wait_for("the MAL list again", TIMEOUT, |s| {
        shows_service(s, "MAL") && row(s, "Bocchi the Rock!").is_some_and(|l| l.contains("5 / 12"))
    });
    check(
        &tmux,
        &screen,
        hint_line(&screen).is_some_and(|h| h.contains("v AniList")),
        "the hints offer `v AniList` again",
    );
    tmux.type_text("+");
    wait_until(&tmux, "the MAL PATCH", TIMEOUT, || {
        mal.watched(101) == Some(6)
    });
    tmux.wait_for("6 / 12, confirmed", TIMEOUT, |s| {
        shows_service(s, "MAL")
            && settled(s)
            && row(s, "Bocchi the Rock!").is_some_and(|l| l.contains("6 / 12"))
    });
    std::thread::sleep(QUIET);
    assert_eq!(mal.patches().len(), 1, "{:?}", mal.patches());
    assert_eq!(saves(&anilist).len(), 1, "nothing more reached AniList");
    assert_eq!(progress(&anilist, 1535), Some(4));
    tmux.quit();
}

// ---------------------------------------------------------------------------------------------
// Sessions
// ---------------------------------------------------------------------------------------------

#[test]
fn a_revoked_token_keeps_the_change_until_a_new_login_elsewhere_delivers_it() {
    require_tmux!();
    let fake = FakeAnilist::start_background();
    seed(&fake);
    let home = logged_in_home(&fake);
    let tmux = start_synced(&home, &ANIME);

    fake.revoke_tokens();
    // Death Note (3 / 37) is the first row.
    tmux.type_text("+");
    let screen = tmux.wait_for(
        "session expired, with the AniList login command",
        TIMEOUT,
        |s| status_bar(s).contains("session expired: run `malt --login anilist`"),
    );
    check(
        &tmux,
        &screen,
        row(&screen, "Death Note").is_some_and(|l| l.contains("4 / 37") && l.contains('↑')),
        "the change stays on screen, marked ↑",
    );
    check(
        &tmux,
        &screen,
        status_bar(&screen).contains("1 pending")
            || status_bar(&screen).contains("1 change waiting"),
        "one change waiting",
    );
    let refused = saves(&fake);
    assert_eq!(refused.len(), 1, "one try with the revoked token");
    assert_eq!(refused[0].status, 400);
    assert!(
        refused[0].response.contains("Invalid token"),
        "{}",
        refused[0].response
    );
    assert_eq!(progress(&fake, 1535), Some(3));
    // Still running and answering keys, and trying nothing more with the refused token.
    tmux.type_text("j");
    tmux.wait_for("the selection to move", TIMEOUT, |s| {
        row(s, "Fullmetal").is_some_and(|l| l.contains("› Fullmetal"))
    });
    std::thread::sleep(QUIET);
    assert_eq!(saves(&fake).len(), 1, "the refused token is not sent again");

    // In another terminal: `malt --login anilist --no-browser`, pasting a new token.
    let token = log_in_by_paste(&home, &fake);
    let logged_in = Instant::now();
    wait_until(&tmux, "the queued change to arrive", TIMEOUT, || {
        progress(&fake, 1535) == Some(4)
    });
    let took = logged_in.elapsed();
    assert!(
        took < Duration::from_secs(12),
        "delivered {took:?} after the new login"
    );
    let screen = tmux.wait_for("the login message gone, nothing pending", TIMEOUT, |s| {
        settled(s) && !status_bar(s).contains("expired")
    });
    check(
        &tmux,
        &screen,
        row(&screen, "Death Note").is_some_and(|l| l.contains("4 / 37")),
        "the delivered count",
    );
    let delivered: Vec<GqlRequest> = saves(&fake)
        .into_iter()
        .filter(|r| r.status == 200)
        .collect();
    assert_eq!(delivered.len(), 1, "delivered once");
    assert_eq!(
        delivered[0].authorization.as_deref(),
        Some(format!("Bearer {token}").as_str())
    );
    assert_eq!(
        delivered[0].var("progress").and_then(|v| v.as_i64()),
        Some(4)
    );
    eprintln!("delivered {took:?} after the new login");
    tmux.quit();
}

#[test]
fn a_login_ending_in_5_days_is_warned_about_on_the_status_bar() {
    require_tmux!();
    let fake = FakeAnilist::start_background();
    seed(&fake);
    let home = anilist_home(&fake);
    let exp = unix_now() + 5 * 86_400;
    home.log_in_anilist_until(&fake, exp);
    let tmux = start(&home);
    let screen = tmux.wait_for("the list and the warning", TIMEOUT, |s| {
        ready(s, &ANIME) && status_bar(s).contains("AniList login ends in 5 days")
    });
    let date = jiff::Timestamp::from_second(exp)
        .unwrap()
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .date()
        .to_string();
    let bar = status_bar(&screen);
    check(
        &tmux,
        &screen,
        bar.contains(&date),
        &format!("the day it ends: {date}"),
    );
    check(
        &tmux,
        &screen,
        bar.contains("`malt --login anilist`"),
        "the command that renews it",
    );
    check(&tmux, &screen, !bar.contains("expired"), "it still works");
    tmux.quit();
}

#[test]
fn a_429_with_retry_after_2_is_waited_out_and_the_change_delivered_once() {
    require_tmux!();
    let fake = FakeAnilist::start_background();
    seed(&fake);
    let home = logged_in_home(&fake);
    let tmux = start_synced(&home, &ANIME);

    fake.fail_next(1, Fault::TooManyRequests { retry_after: 2 });
    // Death Note (3 / 37) is the first row.
    tmux.type_text("+");
    wait_until(&tmux, "the first save", TIMEOUT, || {
        !saves(&fake).is_empty()
    });
    let throttled_at = Instant::now();
    let first = saves(&fake).remove(0);
    assert_eq!(
        first.status, 429,
        "the first save meets the 429: {}",
        first.response
    );
    let screen = tmux.screen();
    check(
        &tmux,
        &screen,
        row(&screen, "Death Note").is_some_and(|l| l.contains("4 / 37") && l.contains('↑')),
        "the change shows, marked ↑, while it waits",
    );
    wait_until(&tmux, "the change delivered", TIMEOUT, || {
        progress(&fake, 1535) == Some(4)
    });
    let waited = throttled_at.elapsed();
    let sent = exactly_saves(&tmux, &fake, 2);
    assert_eq!(
        sent.iter().map(|r| r.status).collect::<Vec<_>>(),
        [429, 200],
        "one 429, then one delivery"
    );
    assert!(
        sent.iter()
            .all(|r| r.var("progress").and_then(|v| v.as_i64()) == Some(4)),
        "both say 4"
    );
    assert!(
        waited >= Duration::from_millis(1700),
        "the retry came {waited:?} after the 429 (Retry-After: 2)"
    );
    assert!(
        waited < Duration::from_secs(8),
        "the retry came {waited:?} after the 429 (Retry-After: 2)"
    );
    tmux.wait_for("confirmed", TIMEOUT, |s| {
        settled(s) && row(s, "Death Note").is_some_and(|l| l.contains("4 / 37"))
    });
    eprintln!("retried {waited:?} after the 429");
    tmux.quit();
}
