//! Managing the whole list from the keyboard, end to end: the real `malt` binary, full-screen in
//! tmux, against the stateful fake MyAnimeList. Search and add, score, status, the completion
//! prompt, the first episode of a planned show, delete, the manga list, the filter, the details
//! pane with and without cover art, and the help with a rebinding.
//!
//! Every test checks both what the screen shows (`capture-pane`) and what reached the fake: the
//! requests themselves (one per keypress, with exactly the fields the change needs) and what the
//! fake's list holds afterwards.
//!
//! malt runs with `TZ=UTC`, so "today" in a start or finish date is the test's UTC date. The waits
//! are generous: these tests share two cores with other builds.

mod support;

#[path = "e2e/harness.rs"]
mod harness;

use std::time::{Duration, Instant};

use harness::{Home, Tmux, wait_until};
use support::mal::{Anime, FakeMal, Manga, Patch};

/// How long anything on screen or at the fake may take.
const WAIT: Duration = Duration::from_secs(45);

/// How long to keep watching for a request that must not come.
const QUIET: Duration = Duration::from_millis(2000);

// ---------------------------------------------------------------------------------------------
// Starting malt
// ---------------------------------------------------------------------------------------------

/// A home logged in to `fake`, whose config has `top` before the `[mal]` table and `tables`
/// after it.
fn home_with(fake: &FakeMal, top: &str, tables: &str) -> Home {
    let home = Home::new();
    home.write_config(&format!("{top}{}{tables}", home.mal_config(fake)));
    home.log_in(fake);
    home
}

/// malt in a 120×40 pane, in UTC.
fn start(home: &Home) -> Tmux {
    Tmux::start_with(home, &[], 120, 40, &[("TZ", "UTC")])
}

/// The list GETs (anime and manga) the fake has received.
fn list_fetches(fake: &FakeMal) -> usize {
    fake.requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.starts_with("/v2/users/@me/"))
        .count()
}

/// Starts malt and waits until this run has fetched both lists and shows `titles`, synced.
///
/// Waiting for this run's fetch, not just for a list on screen: with a cache, the first frame
/// already shows the cached list as "synced".
fn start_synced(home: &Home, fake: &FakeMal, titles: &[&str]) -> Tmux {
    let before = list_fetches(fake);
    let tmux = start(home);
    wait_until(&tmux, "this run's list fetches", WAIT, || {
        list_fetches(fake) >= before + 2
    });
    tmux.wait_for("the synced list", WAIT, ready(titles));
    tmux
}

/// Today's date in UTC, as malt writes it (`YYYY-MM-DD`).
fn today() -> String {
    jiff::Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .date()
        .to_string()
}

/// Whether `date` is today's UTC date (either side of a midnight the test ran across).
fn is_today(date: Option<&str>, before: &str) -> bool {
    date.is_some_and(|d| d == before || d == today())
}

// ---------------------------------------------------------------------------------------------
// Reading the screen
// ---------------------------------------------------------------------------------------------

/// The screen's lines, trailing blank rows dropped.
fn lines(screen: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = screen.lines().collect();
    while lines.last().is_some_and(|l| l.trim().is_empty()) {
        lines.pop();
    }
    lines
}

/// The status tabs (the second row).
fn tab_bar(screen: &str) -> &str {
    screen.lines().nth(1).unwrap_or("")
}

/// The count the tab bar shows for `label` ("Watching", "Plan to watch", …).
fn tab_count(screen: &str, label: &str) -> Option<usize> {
    let bar = tab_bar(screen);
    let at = bar.find(&format!(" {label} "))? + label.len() + 2;
    let digits: String = bar[at..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The status bar: the line above the key hints (the last line).
fn status_line(screen: &str) -> &str {
    let lines = lines(screen);
    lines.len().checked_sub(2).map_or("", |i| lines[i])
}

/// The key hints: the last line.
fn hint_bar(screen: &str) -> &str {
    lines(screen).last().copied().unwrap_or("")
}

/// The list's lines: between the table header (row 3) and the status bar.
fn list_lines(screen: &str) -> Vec<&str> {
    let lines = lines(screen);
    if lines.len() < 5 {
        return Vec::new();
    }
    lines[3..lines.len() - 2].to_vec()
}

/// The line showing exactly `title` as a table cell (selected or not): in the list, or in the
/// search results. "Mushishi" does not find "Mushishi Zoku Shou".
fn cell_row<'a>(lines: impl IntoIterator<Item = &'a str>, title: &str) -> Option<&'a str> {
    let selected = format!("› {title}  ");
    let plain = format!("  {title}  ");
    lines
        .into_iter()
        .find(|l| l.contains(&selected) || l.contains(&plain))
}

/// The list line of `title`.
fn list_row<'a>(screen: &'a str, title: &str) -> Option<&'a str> {
    cell_row(list_lines(screen), title)
}

/// Whether `title` is in the list and its line contains every one of `texts`.
fn list_has(screen: &str, title: &str, texts: &[&str]) -> bool {
    list_row(screen, title).is_some_and(|l| texts.iter().all(|t| l.contains(t)))
}

/// Whether `title` is the selected line of the list.
fn is_selected(screen: &str, title: &str) -> bool {
    list_row(screen, title).is_some_and(|l| l.contains(&format!("› {title}")))
}

/// The score column of `title`'s line (the last word when no next episode is shown).
fn score_of(screen: &str, title: &str) -> Option<String> {
    list_row(screen, title).and_then(|l| l.split_whitespace().last().map(str::to_string))
}

/// Titles of the list lines, among `titles`, in screen order.
fn shown<'a>(screen: &str, titles: &[&'a str]) -> Vec<&'a str> {
    let mut found: Vec<(usize, &str)> = titles
        .iter()
        .filter_map(|t| {
            list_lines(screen)
                .iter()
                .position(|l| cell_row([*l], t).is_some())
                .map(|i| (i, *t))
        })
        .collect();
    found.sort();
    found.into_iter().map(|(_, t)| t).collect()
}

/// The list is on screen with every one of `titles`, synced, nothing on its way.
fn ready<'a>(titles: &'a [&'a str]) -> impl Fn(&str) -> bool + 'a {
    move |s: &str| {
        titles.iter().all(|t| list_row(s, t).is_some())
            && status_line(s).contains("synced")
            && !status_line(s).contains("pending")
            && !s.contains('↑')
    }
}

/// Nothing is waiting for the service: no `↑` on a row, no "pending" on the bar.
fn settled(s: &str) -> bool {
    status_line(s).contains("synced") && !status_line(s).contains("pending") && !s.contains(" ↑")
}

// ---------------------------------------------------------------------------------------------
// What reached the fake
// ---------------------------------------------------------------------------------------------

fn patches_of(fake: &FakeMal, id: u64) -> Vec<Patch> {
    fake.patches().into_iter().filter(|p| p.id == id).collect()
}

/// The form field names of a PATCH, sorted.
fn fields(p: &Patch) -> Vec<&str> {
    let mut names: Vec<&str> = p.form.iter().map(|(k, _)| k.as_str()).collect();
    names.sort_unstable();
    names
}

/// Waits until the fake holds `n` PATCHes for `id`, then long enough for one more to arrive if
/// one were sent, and returns them.
fn exactly_patches(tmux: &Tmux, fake: &FakeMal, id: u64, n: usize) -> Vec<Patch> {
    wait_until(tmux, &format!("{n} PATCH(es) of {id}"), WAIT, || {
        patches_of(fake, id).len() >= n
    });
    std::thread::sleep(QUIET);
    let got = patches_of(fake, id);
    if got.len() != n {
        tmux.fail(
            &format!("expected exactly {n} PATCH(es) of {id}, got {got:#?}"),
            &tmux.screen(),
        );
    }
    got
}

/// Fails unless `cond` holds (showing the screen).
fn check(tmux: &Tmux, screen: &str, ok: bool, what: &str) {
    if !ok {
        tmux.fail(what, screen);
    }
}

/// Presses Escape and waits for `gone` to leave the screen. (A key sent right after Escape would be
/// read as Alt and that key, as a terminal would.)
fn escape(tmux: &Tmux, what: &str, gone: impl Fn(&str) -> bool) -> String {
    tmux.keys(&["Escape"]);
    tmux.wait_for(what, WAIT, |s| !gone(s))
}

// ---------------------------------------------------------------------------------------------
// 1. Search and add
// ---------------------------------------------------------------------------------------------

/// The search results' lines (inside the search box).
fn result_lines(screen: &str) -> Vec<&str> {
    lines(screen)
        .into_iter()
        .filter(|l| l.contains('│'))
        .collect()
}

fn result_row<'a>(screen: &'a str, title: &str) -> Option<&'a str> {
    cell_row(result_lines(screen), title)
}

#[test]
fn search_then_add_shows_the_entry_at_once_and_creates_it_with_one_patch() {
    require_tmux!();
    let fake = FakeMal::start_background();
    fake.add_anime(Anime::new(101, "Bocchi the Rock!", 12).watched(5));
    fake.add_anime(Anime::new(104, "Mushishi", 26).watched(5).mean(8.66));
    fake.add_to_catalogue(
        Anime::new(201, "Mushishi Zoku Shou", 10)
            .start_season(2014, "spring")
            .mean(8.7),
    );
    fake.add_to_catalogue(
        Anime::new(202, "Mushishi: Hihamukage", 1)
            .media_type("special")
            .start_date("2014-01-04")
            .mean(8.53),
    );
    fake.add_to_catalogue(Anime::new(203, "Frieren", 28));
    let home = home_with(&fake, "", "");
    let titles = ["Bocchi the Rock!", "Mushishi"];
    let tmux = start_synced(&home, &fake, &titles);

    tmux.type_text("a");
    tmux.wait_for("the search box", WAIT, |s| {
        s.contains("Add anime from MyAnimeList") && s.contains("Search: ▏")
    });
    tmux.type_text("mushi");
    let screen = tmux.wait_for("the query typed", WAIT, |s| s.contains("Search: mushi▏"));
    check(
        &tmux,
        &screen,
        fake.searches().is_empty(),
        "nothing is searched before Enter",
    );
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("the search results", WAIT, |s| {
        result_row(s, "Mushishi Zoku Shou").is_some()
            && result_row(s, "Mushishi: Hihamukage").is_some()
            && result_row(s, "Mushishi").is_some()
    });
    assert_eq!(
        fake.search_log(),
        [("anime".to_string(), "mushi".to_string())],
        "one search, as typed"
    );
    let zoku = result_row(&screen, "Mushishi Zoku Shou").unwrap();
    let words: Vec<&str> = zoku.split_whitespace().collect();
    for (text, what) in [
        ("TV", "the type"),
        ("10", "the episodes"),
        ("2014", "the year (start season)"),
        ("8.70", "the mean score"),
    ] {
        check(
            &tmux,
            &screen,
            words.contains(&text),
            &format!("{what} of a result: {text}"),
        );
    }
    check(
        &tmux,
        &screen,
        !zoku.contains('✓'),
        "a title not on the list is not marked as on it",
    );
    let special = result_row(&screen, "Mushishi: Hihamukage").unwrap();
    let words: Vec<&str> = special.split_whitespace().collect();
    check(
        &tmux,
        &screen,
        ["SPECIAL", "1", "2014", "8.53"]
            .iter()
            .all(|t| words.contains(t)),
        "type, episodes, year (start date) and mean of a special",
    );
    check(
        &tmux,
        &screen,
        result_row(&screen, "Mushishi").is_some_and(|l| l.contains("✓ Watching")),
        "a result already on the list shows ✓ Watching",
    );
    check(
        &tmux,
        &screen,
        result_row(&screen, "Frieren").is_none(),
        "only matching titles",
    );

    // The results come in id order: Mushishi (on the list) first, then Zoku Shou.
    tmux.keys(&["Down"]);
    tmux.wait_for("Zoku Shou selected", WAIT, |s| {
        result_row(s, "Mushishi Zoku Shou").is_some_and(|l| l.contains("› Mushishi Zoku Shou"))
    });
    tmux.keys(&["Enter"]);
    tmux.wait_for("the status menu, Plan to watch chosen", WAIT, |s| {
        s.contains("Add as:") && s.contains("› 5 Plan to watch")
    });
    for n in (1..=4).rev() {
        tmux.keys(&["Up"]);
        let chosen = format!("› {n} ");
        tmux.wait_for(&format!("choice {n}"), WAIT, |s| s.contains(&chosen));
    }
    let screen = tmux.screen();
    check(
        &tmux,
        &screen,
        screen.contains("› 1 Watching"),
        "Watching chosen",
    );
    check(
        &tmux,
        &screen,
        fake.patches().is_empty(),
        "nothing is sent before Enter",
    );

    // Slow answers: the entry must be on screen long before the service has it.
    fake.set_latency(Duration::from_millis(1500));
    let pressed = Instant::now();
    tmux.keys(&["Enter"]);
    // The whole frame, not its first lines while the rest of the popup is still on screen.
    let screen = tmux.wait_for("the new entry in the Watching tab", WAIT, |s| {
        list_has(s, "Mushishi Zoku Shou", &["0 / 10"])
            && !s.contains("Add as:")
            && !s.contains("choose the status")
            && !s.contains('└')
    });
    check(
        &tmux,
        &screen,
        patches_of(&fake, 201).is_empty(),
        &format!(
            "the entry appeared only after MyAnimeList answered ({:?} after Enter)",
            pressed.elapsed()
        ),
    );
    check(
        &tmux,
        &screen,
        is_selected(&screen, "Mushishi Zoku Shou"),
        "the added entry is selected",
    );
    check(
        &tmux,
        &screen,
        list_has(&screen, "Mushishi Zoku Shou", &["↑"]),
        "the addition is marked as not confirmed yet",
    );
    check(
        &tmux,
        &screen,
        tab_count(&screen, "Watching") == Some(3),
        "the Watching tab counts the new entry",
    );
    check(
        &tmux,
        &screen,
        status_line(&screen).contains("added Mushishi Zoku Shou to Watching"),
        "the status bar says what was added",
    );

    let sent = exactly_patches(&tmux, &fake, 201, 1);
    assert_eq!(
        sent[0].form,
        [("status".to_string(), "watching".to_string())],
        "the PATCH creates it as watching, nothing else"
    );
    assert_eq!(sent[0].path, "/v2/anime/201/my_list_status");
    assert_eq!(fake.patches().len(), 1, "no other entry changed");
    assert_eq!(fake.status(201).as_deref(), Some("watching"));
    assert_eq!(fake.watched(201), Some(0));
    // Before creating it, malt may look whether it is on the list already; nothing else.
    let other: Vec<String> = fake
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/201"))
        .filter(|r| !(r.method == "GET" && r.query.contains("my_list_status")))
        .filter(|r| r.method != "PATCH")
        .map(|r| format!("{} {}?{}", r.method, r.path, r.query))
        .collect();
    assert!(other.is_empty(), "unexpected requests about 201: {other:?}");
    fake.set_latency(Duration::ZERO);
    let screen = tmux.wait_for("the addition confirmed", WAIT, settled);
    check(
        &tmux,
        &screen,
        list_has(&screen, "Mushishi Zoku Shou", &["0 / 10"]),
        "the confirmed entry stays",
    );

    // Searching again: the new entry is now marked as on the list.
    tmux.type_text("a");
    tmux.wait_for("the search box", WAIT, |s| s.contains("Search: ▏"));
    tmux.type_text("zoku");
    tmux.wait_for("the query typed", WAIT, |s| s.contains("Search: zoku▏"));
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("the results", WAIT, |s| {
        result_row(s, "Mushishi Zoku Shou").is_some()
    });
    check(
        &tmux,
        &screen,
        result_row(&screen, "Mushishi Zoku Shou").is_some_and(|l| l.contains("✓ Watching")),
        "the added title shows ✓ Watching",
    );
    // Enter on a title already listed shows it there, and adds nothing.
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("back on the list", WAIT, |s| {
        !s.contains("Add anime from") && list_row(s, "Mushishi Zoku Shou").is_some()
    });
    check(
        &tmux,
        &screen,
        is_selected(&screen, "Mushishi Zoku Shou"),
        "the listed title is selected",
    );
    std::thread::sleep(QUIET);
    assert_eq!(fake.patches().len(), 1, "nothing more sent");
    tmux.quit();
}

// ---------------------------------------------------------------------------------------------
// 2. Score
// ---------------------------------------------------------------------------------------------

#[test]
fn the_score_menu_sends_one_patch_with_the_score() {
    require_tmux!();
    let fake = FakeMal::start_background();
    fake.add_anime(Anime::new(101, "Bocchi the Rock!", 12).watched(5));
    fake.add_anime(Anime::new(104, "Mushishi", 26).watched(5).score(7));
    let home = home_with(&fake, "", "");
    let titles = ["Bocchi the Rock!", "Mushishi"];
    let tmux = start_synced(&home, &fake, &titles);
    let screen = tmux.screen();
    check(
        &tmux,
        &screen,
        score_of(&screen, "Mushishi").as_deref() == Some("7")
            && score_of(&screen, "Bocchi the Rock!").as_deref() == Some("-"),
        "scores 7 and - (none)",
    );

    tmux.type_text("j");
    tmux.wait_for("Mushishi selected", WAIT, |s| is_selected(s, "Mushishi"));
    tmux.type_text("s");
    let screen = tmux.wait_for("the score menu at 7", WAIT, |s| {
        s.contains("┌ Score") && s.contains("›  7  Good")
    });
    check(
        &tmux,
        &screen,
        screen.contains("│ Mushishi"),
        "the menu names the entry",
    );
    tmux.type_text("8");
    tmux.wait_for("8 chosen", WAIT, |s| s.contains("›  8  Very good"));
    check(
        &tmux,
        &tmux.screen(),
        fake.patches().is_empty(),
        "nothing sent before Enter",
    );
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("the score shown", WAIT, |s| {
        !s.contains("┌ Score") && score_of(s, "Mushishi").as_deref() == Some("8")
    });
    check(
        &tmux,
        &screen,
        list_has(&screen, "Mushishi", &["5 / 26"]),
        "the progress is unchanged",
    );
    let sent = exactly_patches(&tmux, &fake, 104, 1);
    assert_eq!(sent[0].form, [("score".to_string(), "8".to_string())]);
    assert_eq!(fake.patches().len(), 1, "only Mushishi changed");
    assert_eq!(fake.score(104), Some(8));
    assert_eq!(fake.watched(104), Some(5));
    assert_eq!(fake.score(101), Some(0));
    let screen = tmux.wait_for("the score confirmed", WAIT, settled);
    check(
        &tmux,
        &screen,
        score_of(&screen, "Mushishi").as_deref() == Some("8"),
        "the confirmed score stays",
    );

    // Choosing the score it already has sends nothing.
    tmux.type_text("s");
    tmux.wait_for("the score menu at 8", WAIT, |s| {
        s.contains("›  8  Very good")
    });
    tmux.keys(&["Enter"]);
    tmux.wait_for("the menu closed", WAIT, |s| !s.contains("┌ Score"));
    std::thread::sleep(QUIET);
    assert_eq!(fake.patches().len(), 1, "no PATCH for an unchanged score");
    tmux.quit();
}

// ---------------------------------------------------------------------------------------------
// 3. Status
// ---------------------------------------------------------------------------------------------

#[test]
fn a_status_change_moves_the_entry_to_its_tab_with_one_patch() {
    require_tmux!();
    let fake = FakeMal::start_background();
    fake.add_anime(Anime::new(101, "Bocchi the Rock!", 12).watched(5));
    fake.add_anime(Anime::new(104, "Mushishi", 26).watched(5));
    fake.add_anime(
        Anime::new(105, "Cowboy Bebop", 26)
            .watched(26)
            .list_status("completed"),
    );
    let home = home_with(&fake, "", "");
    let titles = ["Bocchi the Rock!", "Mushishi"];
    let tmux = start_synced(&home, &fake, &titles);
    let screen = tmux.screen();
    check(
        &tmux,
        &screen,
        tab_count(&screen, "Watching") == Some(2)
            && tab_count(&screen, "Completed") == Some(1)
            && tab_count(&screen, "On hold") == Some(0),
        "counts 2 / 1 / 0 in the tab bar",
    );

    tmux.type_text("j");
    tmux.wait_for("Mushishi selected", WAIT, |s| is_selected(s, "Mushishi"));
    tmux.type_text("S");
    tmux.wait_for("the status menu at Watching", WAIT, |s| {
        s.contains("┌ Status") && s.contains("› 1 Watching")
    });
    tmux.keys(&["Down"]);
    tmux.wait_for("Completed chosen", WAIT, |s| s.contains("› 2 Completed"));
    tmux.keys(&["Down"]);
    tmux.wait_for("On hold chosen", WAIT, |s| s.contains("› 3 On hold"));
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("Mushishi gone from Watching", WAIT, |s| {
        !s.contains("┌ Status") && list_row(s, "Mushishi").is_none()
    });
    check(
        &tmux,
        &screen,
        tab_count(&screen, "Watching") == Some(1) && tab_count(&screen, "On hold") == Some(1),
        "the counts follow: Watching 1, On hold 1",
    );
    check(
        &tmux,
        &screen,
        list_row(&screen, "Bocchi the Rock!").is_some(),
        "the other entry stays",
    );
    check(
        &tmux,
        &screen,
        status_line(&screen).contains("Mushishi moved to On hold"),
        "the status bar says where it went",
    );
    let sent = exactly_patches(&tmux, &fake, 104, 1);
    assert_eq!(
        sent[0].form,
        [("status".to_string(), "on_hold".to_string())]
    );
    assert_eq!(fake.status(104).as_deref(), Some("on_hold"));
    assert_eq!(fake.watched(104), Some(5));
    assert_eq!(fake.patches().len(), 1);

    tmux.keys(&["Tab"]);
    tmux.wait_for("the Completed tab", WAIT, |s| {
        list_has(s, "Cowboy Bebop", &["26 / 26"])
    });
    tmux.keys(&["Tab"]);
    let screen = tmux.wait_for("Mushishi in the On hold tab", WAIT, |s| {
        list_has(s, "Mushishi", &["5 / 26"])
    });
    check(
        &tmux,
        &screen,
        shown(&screen, &["Bocchi the Rock!", "Cowboy Bebop", "Mushishi"]) == ["Mushishi"],
        "only Mushishi is on hold",
    );
    let screen = tmux.wait_for("the change confirmed", WAIT, settled);
    check(
        &tmux,
        &screen,
        tab_count(&screen, "Watching") == Some(1) && tab_count(&screen, "On hold") == Some(1),
        "the counts stay after the confirmation",
    );
    tmux.quit();
}

// ---------------------------------------------------------------------------------------------
// 4. The completion prompt
// ---------------------------------------------------------------------------------------------

const COMPLETE_PROMPT: &str = "That was the last episode. Mark it completed?";

#[test]
fn the_last_episode_asks_and_yes_completes_with_a_finish_date() {
    require_tmux!();
    let fake = FakeMal::start_background();
    fake.add_anime(
        Anime::new(101, "Bocchi the Rock!", 12)
            .watched(11)
            .list_dates(Some("2024-01-02"), None),
    );
    fake.add_anime(Anime::new(104, "Mushishi", 26).watched(5));
    let home = home_with(&fake, "", "");
    let titles = ["Bocchi the Rock!", "Mushishi"];
    let tmux = start_synced(&home, &fake, &titles);
    let day = today();

    tmux.type_text("+");
    let screen = tmux.wait_for("the completion prompt", WAIT, |s| {
        s.contains(COMPLETE_PROMPT) && list_has(s, "Bocchi the Rock!", &["12 / 12"])
    });
    check(
        &tmux,
        &screen,
        screen.contains("┌ Completed?") && screen.contains("y yes · n no"),
        "the prompt's box and its keys",
    );
    let sent = exactly_patches(&tmux, &fake, 101, 1);
    assert_eq!(
        sent[0].form,
        [("num_watched_episodes".to_string(), "12".to_string())],
        "the + is one PATCH of the count alone"
    );
    check(
        &tmux,
        &tmux.screen(),
        tmux.screen().contains(COMPLETE_PROMPT),
        "the prompt waits for an answer",
    );

    tmux.type_text("y");
    let screen = tmux.wait_for("Bocchi gone from Watching", WAIT, |s| {
        !s.contains(COMPLETE_PROMPT) && list_row(s, "Bocchi the Rock!").is_none()
    });
    check(
        &tmux,
        &screen,
        tab_count(&screen, "Watching") == Some(1) && tab_count(&screen, "Completed") == Some(1),
        "counts: Watching 1, Completed 1",
    );
    check(
        &tmux,
        &screen,
        status_line(&screen).contains("Bocchi the Rock! marked completed"),
        "the status bar says so",
    );
    let sent = exactly_patches(&tmux, &fake, 101, 2);
    let done = &sent[1];
    assert_eq!(done.get("status"), Some("completed"), "{done:?}");
    assert!(
        is_today(done.get("finish_date"), &day),
        "finish_date is today ({day}): {done:?}"
    );
    assert!(
        done.get("num_watched_episodes").is_none_or(|n| n == "12"),
        "{done:?}"
    );
    assert_eq!(
        done.get("start_date"),
        None,
        "the start date is kept: {done:?}"
    );
    assert_eq!(fake.status(101).as_deref(), Some("completed"));
    let (started, finished) = fake.dates(101);
    assert_eq!(started.as_deref(), Some("2024-01-02"));
    assert!(is_today(finished.as_deref(), &day), "{finished:?}");

    tmux.keys(&["Tab"]);
    let screen = tmux.wait_for("Bocchi in the Completed tab", WAIT, |s| {
        list_has(s, "Bocchi the Rock!", &["12 / 12"])
    });
    check(
        &tmux,
        &screen,
        list_row(&screen, "Mushishi").is_none(),
        "only Bocchi is completed",
    );
    tmux.wait_for("the changes confirmed", WAIT, settled);
    assert_eq!(fake.patches().len(), 2, "nothing else sent");
    tmux.quit();
}

#[test]
fn no_to_the_completion_prompt_sends_no_status_and_is_not_asked_again() {
    require_tmux!();
    let fake = FakeMal::start_background();
    fake.add_anime(Anime::new(101, "Bocchi the Rock!", 12).watched(5));
    fake.add_anime(Anime::new(104, "Mushishi", 26).watched(25));
    let home = home_with(&fake, "", "");
    let titles = ["Bocchi the Rock!", "Mushishi"];
    let tmux = start_synced(&home, &fake, &titles);

    tmux.type_text("j");
    tmux.wait_for("Mushishi selected", WAIT, |s| is_selected(s, "Mushishi"));
    tmux.type_text("+");
    tmux.wait_for("the completion prompt", WAIT, |s| {
        s.contains(COMPLETE_PROMPT) && list_has(s, "Mushishi", &["26 / 26"])
    });
    tmux.type_text("n");
    let screen = tmux.wait_for("the prompt closed", WAIT, |s| !s.contains(COMPLETE_PROMPT));
    check(
        &tmux,
        &screen,
        list_has(&screen, "Mushishi", &["26 / 26"]) && tab_count(&screen, "Watching") == Some(2),
        "still watching, at 26 / 26",
    );
    exactly_patches(&tmux, &fake, 104, 1);

    tmux.type_text("-");
    tmux.wait_for("25 / 26", WAIT, |s| list_has(s, "Mushishi", &["25 / 26"]));
    tmux.type_text("+");
    tmux.wait_for("26 / 26 again", WAIT, |s| {
        list_has(s, "Mushishi", &["26 / 26"])
    });
    let sent = exactly_patches(&tmux, &fake, 104, 3);
    let screen = tmux.wait_for("the changes confirmed", WAIT, settled);
    check(
        &tmux,
        &screen,
        !screen.contains(COMPLETE_PROMPT),
        "not asked again after no",
    );
    let counts: Vec<Option<&str>> = sent.iter().map(|p| p.get("num_watched_episodes")).collect();
    assert_eq!(counts, [Some("26"), Some("25"), Some("26")]);
    assert!(
        sent.iter().all(|p| fields(p) == ["num_watched_episodes"]),
        "no status (nor anything else) sent: {sent:#?}"
    );
    assert_eq!(fake.status(104).as_deref(), Some("watching"));
    assert_eq!(fake.watched(104), Some(26));
    assert_eq!(fake.dates(104), (None, None));
    tmux.quit();
}

// ---------------------------------------------------------------------------------------------
// 5. The first episode of a planned show
// ---------------------------------------------------------------------------------------------

#[test]
fn the_first_plus_on_a_planned_show_starts_watching_it_with_one_patch() {
    require_tmux!();
    let fake = FakeMal::start_background();
    fake.add_anime(Anime::new(101, "Bocchi the Rock!", 12).watched(5));
    fake.add_anime(Anime::new(105, "Cowboy Bebop", 26).list_status("plan_to_watch"));
    let home = home_with(&fake, "", "");
    let tmux = start_synced(&home, &fake, &["Bocchi the Rock!"]);
    let day = today();

    // Shift-Tab from Watching wraps to the last tab.
    tmux.keys(&["BTab"]);
    let screen = tmux.wait_for("the Plan to watch tab", WAIT, |s| {
        list_has(s, "Cowboy Bebop", &["0 / 26"])
    });
    check(
        &tmux,
        &screen,
        tab_count(&screen, "Plan to watch") == Some(1) && tab_count(&screen, "Watching") == Some(1),
        "counts: Watching 1, Plan to watch 1",
    );
    tmux.type_text("+");
    let screen = tmux.wait_for("Cowboy Bebop moved to Watching", WAIT, |s| {
        list_row(s, "Cowboy Bebop").is_none()
    });
    check(
        &tmux,
        &screen,
        tab_count(&screen, "Plan to watch") == Some(0) && tab_count(&screen, "Watching") == Some(2),
        "counts: Watching 2, Plan to watch 0",
    );
    let sent = exactly_patches(&tmux, &fake, 105, 1);
    let p = &sent[0];
    assert_eq!(
        fields(p),
        ["num_watched_episodes", "start_date", "status"],
        "{p:?}"
    );
    assert_eq!(p.get("status"), Some("watching"));
    assert_eq!(p.get("num_watched_episodes"), Some("1"));
    assert!(
        is_today(p.get("start_date"), &day),
        "start_date today: {p:?}"
    );
    assert_eq!(fake.status(105).as_deref(), Some("watching"));
    assert_eq!(fake.watched(105), Some(1));
    assert!(is_today(fake.dates(105).0.as_deref(), &day));

    tmux.keys(&["Tab"]);
    let screen = tmux.wait_for("Cowboy Bebop in Watching", WAIT, |s| {
        list_has(s, "Cowboy Bebop", &["1 / 26"])
    });
    check(
        &tmux,
        &screen,
        list_row(&screen, "Bocchi the Rock!").is_some(),
        "next to the other show",
    );
    tmux.wait_for("the change confirmed", WAIT, settled);
    assert_eq!(fake.patches().len(), 1);
    tmux.quit();
}

// ---------------------------------------------------------------------------------------------
// 6. Delete
// ---------------------------------------------------------------------------------------------

const DELETE_PROMPT: &str = "Remove it from your MyAnimeList list?";

#[test]
fn delete_asks_first_and_yes_sends_one_delete() {
    require_tmux!();
    let fake = FakeMal::start_background();
    fake.add_anime(Anime::new(101, "Bocchi the Rock!", 12).watched(5));
    fake.add_anime(Anime::new(103, "Kill la Kill", 24).watched(2));
    fake.add_anime(Anime::new(104, "Mushishi", 26).watched(5));
    let home = home_with(&fake, "", "");
    let titles = ["Bocchi the Rock!", "Kill la Kill", "Mushishi"];
    let tmux = start_synced(&home, &fake, &titles);

    // No: nothing happens.
    tmux.type_text("d");
    let screen = tmux.wait_for("the delete prompt", WAIT, |s| s.contains(DELETE_PROMPT));
    check(
        &tmux,
        &screen,
        screen.contains("│ Bocchi the Rock!"),
        "the prompt names the selected entry",
    );
    tmux.type_text("n");
    let screen = tmux.wait_for("the prompt closed", WAIT, |s| !s.contains(DELETE_PROMPT));
    check(
        &tmux,
        &screen,
        shown(&screen, &titles) == titles,
        "no answered no: every entry stays",
    );

    // Yes: the row goes at once, one DELETE.
    tmux.type_text("j");
    tmux.wait_for("Kill la Kill selected", WAIT, |s| {
        is_selected(s, "Kill la Kill")
    });
    tmux.type_text("d");
    let screen = tmux.wait_for("the delete prompt", WAIT, |s| s.contains(DELETE_PROMPT));
    check(
        &tmux,
        &screen,
        screen.contains("│ Kill la Kill"),
        "the prompt names Kill la Kill",
    );
    tmux.type_text("y");
    let screen = tmux.wait_for("Kill la Kill gone", WAIT, |s| {
        !s.contains(DELETE_PROMPT) && list_row(s, "Kill la Kill").is_none()
    });
    check(
        &tmux,
        &screen,
        tab_count(&screen, "Watching") == Some(2),
        "the Watching count drops to 2",
    );
    check(
        &tmux,
        &screen,
        status_line(&screen).contains("Kill la Kill removed from your list"),
        "the status bar says so",
    );
    wait_until(&tmux, "the DELETE", WAIT, || !fake.deletes().is_empty());
    std::thread::sleep(QUIET);
    assert_eq!(
        fake.deletes(),
        [("anime".to_string(), 103)],
        "one DELETE, of Kill la Kill only"
    );
    assert!(fake.patches().is_empty(), "no PATCH");
    assert!(!fake.on_list(103), "the fake no longer has it");
    assert!(fake.on_list(101) && fake.on_list(104));
    tmux.wait_for("the removal confirmed", WAIT, settled);

    // A sync does not bring it back.
    let before = list_fetches(&fake);
    tmux.type_text("r");
    wait_until(&tmux, "the lists fetched again", WAIT, || {
        list_fetches(&fake) >= before + 2
    });
    // Time for the answers to reach the screen.
    std::thread::sleep(QUIET);
    let screen = tmux.wait_for(
        "synced again",
        WAIT,
        ready(&["Bocchi the Rock!", "Mushishi"]),
    );
    check(
        &tmux,
        &screen,
        list_row(&screen, "Kill la Kill").is_none() && tab_count(&screen, "Watching") == Some(2),
        "still gone after a sync",
    );
    assert_eq!(fake.deletes().len(), 1);
    tmux.quit();
}

// ---------------------------------------------------------------------------------------------
// 7. Manga
// ---------------------------------------------------------------------------------------------

#[test]
fn the_manga_list_shows_volumes_and_plus_sends_chapters() {
    require_tmux!();
    let fake = FakeMal::start_background();
    fake.add_anime(Anime::new(101, "Bocchi the Rock!", 12).watched(5));
    fake.add_manga(
        Manga::new(401, "Berserk", 0, 0)
            .chapters_read(364)
            .volumes_read(41),
    );
    fake.add_manga(
        Manga::new(402, "Yotsuba&!", 120, 15)
            .chapters_read(50)
            .volumes_read(5),
    );
    fake.add_manga(
        Manga::new(403, "Monster", 162, 18)
            .chapters_read(162)
            .volumes_read(18)
            .list_status("completed"),
    );
    fake.add_manga_to_catalogue(
        Manga::new(404, "Yotsuba to Hako", 3, 1)
            .start_date("2003-01-01")
            .mean(7.1),
    );
    let home = home_with(&fake, "", "");
    let tmux = start_synced(&home, &fake, &["Bocchi the Rock!"]);

    tmux.type_text("m");
    let screen = tmux.wait_for("the manga list", WAIT, |s| {
        list_row(s, "Yotsuba&!").is_some() && list_row(s, "Berserk").is_some()
    });
    check(
        &tmux,
        &screen,
        tab_count(&screen, "Reading") == Some(2)
            && tab_count(&screen, "Completed") == Some(1)
            && tab_count(&screen, "Plan to read") == Some(0),
        "manga tabs: Reading 2, Completed 1, Plan to read 0",
    );
    check(
        &tmux,
        &screen,
        screen.lines().nth(2).is_some_and(|h| h.contains("Volumes")),
        "the table header has a Volumes column",
    );
    check(
        &tmux,
        &screen,
        list_has(&screen, "Yotsuba&!", &["50 / 120", "5 / 15"]),
        "chapters and volumes of Yotsuba&!",
    );
    check(
        &tmux,
        &screen,
        list_has(&screen, "Berserk", &["364 / ?", "41 / ?"]),
        "unknown totals shown as ?",
    );
    check(
        &tmux,
        &screen,
        list_row(&screen, "Bocchi the Rock!").is_none() && list_row(&screen, "Monster").is_none(),
        "no anime, no completed manga on the Reading tab",
    );
    check(
        &tmux,
        &screen,
        hint_bar(&screen).contains("+/- chapter"),
        "the hints speak of chapters",
    );

    tmux.type_text("j");
    tmux.wait_for("Yotsuba&! selected", WAIT, |s| is_selected(s, "Yotsuba&!"));
    tmux.type_text("+");
    tmux.wait_for("51 / 120", WAIT, |s| {
        list_has(s, "Yotsuba&!", &["51 / 120", "5 / 15"])
    });
    let sent = exactly_patches(&tmux, &fake, 402, 1);
    let p = &sent[0];
    assert!(p.is_manga(), "{p:?}");
    assert_eq!(p.path, "/v2/manga/402/my_list_status");
    assert_eq!(
        p.form,
        [("num_chapters_read".to_string(), "51".to_string())],
        "chapters, not episodes"
    );
    assert_eq!(fake.chapters_read(402), Some(51));
    assert_eq!(fake.volumes_read(402), Some(5));
    assert_eq!(fake.patches().len(), 1);
    let screen = tmux.wait_for("the change confirmed", WAIT, |s| {
        !s.contains(" ↑") && !status_line(s).contains("pending")
    });
    check(
        &tmux,
        &screen,
        list_has(&screen, "Yotsuba&!", &["51 / 120", "5 / 15"]),
        "the confirmed count stays",
    );

    // Search and add a manga: the search is over manga, the PATCH a manga one.
    tmux.type_text("a");
    tmux.wait_for("the manga search", WAIT, |s| {
        s.contains("Add manga from MyAnimeList") && s.contains("Search: ▏")
    });
    tmux.type_text("yotsuba");
    tmux.wait_for("the query typed", WAIT, |s| s.contains("Search: yotsuba▏"));
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("the results", WAIT, |s| {
        result_row(s, "Yotsuba to Hako").is_some() && result_row(s, "Yotsuba&!").is_some()
    });
    assert_eq!(
        fake.search_log(),
        [("manga".to_string(), "yotsuba".to_string())]
    );
    let words: Vec<&str> = result_row(&screen, "Yotsuba to Hako")
        .unwrap()
        .split_whitespace()
        .collect();
    check(
        &tmux,
        &screen,
        ["MANGA", "3", "2003", "7.10"]
            .iter()
            .all(|t| words.contains(t)),
        "type, chapters, year and mean of a manga",
    );
    check(
        &tmux,
        &screen,
        result_row(&screen, "Yotsuba&!").is_some_and(|l| l.contains("✓ Reading")),
        "the listed manga shows ✓ Reading",
    );
    tmux.keys(&["Down"]);
    tmux.wait_for("Yotsuba to Hako selected", WAIT, |s| {
        result_row(s, "Yotsuba to Hako").is_some_and(|l| l.contains("› Yotsuba to Hako"))
    });
    tmux.keys(&["Enter"]);
    tmux.wait_for("the status menu", WAIT, |s| s.contains("Add as:"));
    tmux.type_text("3");
    tmux.wait_for("On hold chosen", WAIT, |s| s.contains("› 3 On hold"));
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("the new manga in the On hold tab", WAIT, |s| {
        list_has(s, "Yotsuba to Hako", &["0 / 3", "0 / 1"])
    });
    check(
        &tmux,
        &screen,
        tab_count(&screen, "On hold") == Some(1) && tab_count(&screen, "Reading") == Some(2),
        "counts: Reading 2, On hold 1",
    );
    let sent = exactly_patches(&tmux, &fake, 404, 1);
    assert!(sent[0].is_manga(), "{:?}", sent[0]);
    assert_eq!(
        sent[0].form,
        [("status".to_string(), "on_hold".to_string())]
    );
    assert_eq!(fake.manga_status(404).as_deref(), Some("on_hold"));
    assert!(!fake.on_list(404), "not added to the anime list");
    tmux.wait_for("the addition confirmed", WAIT, |s| {
        !s.contains(" ↑") && !status_line(s).contains("pending")
    });

    tmux.keys(&["BTab"]);
    tmux.wait_for("the Completed tab", WAIT, |s| {
        list_row(s, "Monster").is_some()
    });
    tmux.keys(&["BTab"]);
    tmux.wait_for("the Reading tab", WAIT, |s| {
        list_row(s, "Yotsuba&!").is_some()
    });

    // And back to anime.
    tmux.type_text("m");
    let screen = tmux.wait_for("the anime list", WAIT, |s| {
        list_row(s, "Bocchi the Rock!").is_some()
    });
    check(
        &tmux,
        &screen,
        list_row(&screen, "Yotsuba&!").is_none()
            && screen
                .lines()
                .nth(2)
                .is_some_and(|h| h.contains("Next episode")),
        "anime columns again",
    );
    tmux.quit();
}

// ---------------------------------------------------------------------------------------------
// 8. Filter
// ---------------------------------------------------------------------------------------------

#[test]
fn the_filter_narrows_as_typed_and_escape_restores_the_list() {
    require_tmux!();
    let fake = FakeMal::start_background();
    let titles = [
        "Bocchi the Rock!",
        "Kill la Kill",
        "Mushishi",
        "One Piece",
        "Steins;Gate",
    ];
    for (i, t) in titles.iter().enumerate() {
        fake.add_anime(Anime::new(301 + i as u64, t, 12).watched(1));
    }
    let home = home_with(&fake, "", "");
    let tmux = start_synced(&home, &fake, &titles);

    tmux.type_text("/");
    tmux.wait_for("the filter line", WAIT, |s| {
        hint_bar(s).contains("/ ▏") && hint_bar(s).contains("5 matches")
    });
    tmux.type_text("s");
    let screen = tmux.wait_for("two matches", WAIT, |s| hint_bar(s).contains("2 matches"));
    check(
        &tmux,
        &screen,
        {
            let mut got = shown(&screen, &titles);
            got.sort_unstable();
            got == ["Mushishi", "Steins;Gate"]
        },
        "“s” leaves Mushishi and Steins;Gate",
    );
    check(
        &tmux,
        &screen,
        hint_bar(&screen).contains("/ s▏"),
        "the query is shown as typed",
    );
    tmux.type_text("h");
    let screen = tmux.wait_for("one match", WAIT, |s| hint_bar(s).contains("1 match"));
    check(
        &tmux,
        &screen,
        shown(&screen, &titles) == ["Mushishi"],
        "“sh” leaves Mushishi",
    );
    check(
        &tmux,
        &screen,
        is_selected(&screen, "Mushishi"),
        "the match is selected",
    );
    tmux.type_text("z");
    let screen = tmux.wait_for("no match", WAIT, |s| hint_bar(s).contains("0 matches"));
    check(
        &tmux,
        &screen,
        shown(&screen, &titles).is_empty() && screen.contains("Nothing in Watching matches"),
        "nothing matches “shz”, and the list says so",
    );
    tmux.keys(&["BSpace"]);
    tmux.wait_for("one match again", WAIT, |s| hint_bar(s).contains("1 match"));

    let screen = escape(&tmux, "the filter cleared", |s| {
        hint_bar(s).contains("match")
    });
    check(
        &tmux,
        &screen,
        shown(&screen, &titles) == titles,
        "Esc restores the whole list, in order",
    );
    check(
        &tmux,
        &screen,
        hint_bar(&screen).contains("a add"),
        "the usual key hints are back",
    );

    // Enter keeps the filter (keys move the selection again); Esc then clears it.
    tmux.type_text("/sh");
    tmux.wait_for("one match", WAIT, |s| hint_bar(s).contains("1 match"));
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("the filter kept", WAIT, |s| {
        hint_bar(s).contains("/ sh") && !hint_bar(s).contains('▏')
    });
    check(
        &tmux,
        &screen,
        shown(&screen, &titles) == ["Mushishi"],
        "still filtered after Enter",
    );
    let screen = escape(&tmux, "the kept filter cleared", |s| {
        hint_bar(s).contains("match")
    });
    check(
        &tmux,
        &screen,
        shown(&screen, &titles) == titles,
        "Esc clears a kept filter",
    );
    assert!(fake.searches().is_empty() && fake.patches().is_empty());
    tmux.quit();
}

// ---------------------------------------------------------------------------------------------
// 9. Details and cover art
// ---------------------------------------------------------------------------------------------

/// Mushishi with everything the details pane shows.
fn detailed(fake: &FakeMal, picture: Option<&str>) {
    let mut mushishi = Anime::new(104, "Mushishi", 26)
        .watched(5)
        .score(9)
        .synopsis("Ginko wanders the land, studying the mushi.")
        .genres(&["Adventure", "Mystery", "Slice of Life"])
        .mean(8.66)
        .start_date("2005-10-23")
        .end_date("2006-06-19")
        .list_dates(Some("2024-03-01"), None);
    if let Some(url) = picture {
        mushishi = mushishi.picture(url);
    }
    fake.add_anime(mushishi);
    fake.add_anime(Anime::new(101, "Bocchi the Rock!", 12).watched(5));
}

/// The details GETs of `id` (not the `my_list_status` look-ups).
fn details_requests(fake: &FakeMal, id: u64) -> usize {
    fake.requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path == format!("/v2/anime/{id}"))
        .filter(|r| r.query.contains("synopsis"))
        .count()
}

/// Opens the details of the selected Mushishi and waits for them.
fn open_details(tmux: &Tmux) -> String {
    tmux.keys(&["Enter"]);
    tmux.wait_for("the details of Mushishi", WAIT, |s| {
        s.contains("Ginko wanders the land") && s.contains("Mean score")
    })
}

fn details_closed(s: &str) -> bool {
    !s.contains("Ginko wanders") && list_row(s, "Mushishi").is_some()
}

fn covers_dir(home: &Home) -> std::path::PathBuf {
    home.path().join("home/.cache/malt/covers")
}

fn cached_covers(home: &Home) -> Vec<String> {
    std::fs::read_dir(covers_dir(home))
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn details_show_synopsis_genres_and_mean_and_images_off_loads_no_cover() {
    require_tmux!();
    let fake = FakeMal::start_background();
    detailed(&fake, None);
    let home = home_with(&fake, "images = false\n\n", "");
    let titles = ["Bocchi the Rock!", "Mushishi"];
    let tmux = start_synced(&home, &fake, &titles);
    tmux.type_text("j");
    tmux.wait_for("Mushishi selected", WAIT, |s| is_selected(s, "Mushishi"));

    let screen = open_details(&tmux);
    let has_line = |words: &[&str]| screen.lines().any(|l| words.iter().all(|w| l.contains(w)));
    check(
        &tmux,
        &screen,
        screen.contains("┌ Mushishi "),
        "the pane is titled with the entry",
    );
    check(
        &tmux,
        &screen,
        has_line(&["Mean score", "8.66"]),
        "the mean score",
    );
    check(
        &tmux,
        &screen,
        has_line(&["Genres", "Adventure, Mystery, Slice of Life"]),
        "the genres",
    );
    check(
        &tmux,
        &screen,
        has_line(&["Type", "TV", "26 episodes", "finished airing"]),
        "type, episodes and airing status",
    );
    check(
        &tmux,
        &screen,
        has_line(&["Aired", "2005-10-23 to 2006-06-19"]),
        "the airing dates",
    );
    check(
        &tmux,
        &screen,
        has_line(&["Your list", "Watching", "5 / 26", "score 9"]),
        "the user's own entry",
    );
    check(
        &tmux,
        &screen,
        has_line(&["started 2024-03-01"]),
        "the user's start date",
    );
    check(
        &tmux,
        &screen,
        has_line(&["Ginko wanders the land, studying the mushi."]),
        "the synopsis",
    );
    assert_eq!(details_requests(&fake, 104), 1, "one details request");

    let screen = escape(&tmux, "the pane closed", |s| s.contains("Ginko wanders"));
    check(
        &tmux,
        &screen,
        details_closed(&screen) && is_selected(&screen, "Mushishi"),
        "Esc closes the pane, back on the list",
    );
    std::thread::sleep(QUIET);
    assert_eq!(
        fake.image_requests(),
        0,
        "images = false: no cover requested"
    );
    assert!(
        cached_covers(&home).is_empty(),
        "nothing cached: {:?}",
        cached_covers(&home)
    );
    tmux.quit();
}

#[test]
fn a_cover_is_downloaded_once_and_then_read_from_the_disk_cache() {
    require_tmux!();
    let fake = FakeMal::start_background();
    let url = format!("{}/images/anime/covers/104.png", fake.base());
    detailed(&fake, Some(&url));
    let home = home_with(&fake, "images = true\n\n", "");
    let titles = ["Bocchi the Rock!", "Mushishi"];

    {
        let tmux = start_synced(&home, &fake, &titles);
        assert_eq!(fake.image_requests(), 0, "no cover before the pane opens");
        tmux.type_text("j");
        tmux.wait_for("Mushishi selected", WAIT, |s| is_selected(s, "Mushishi"));
        open_details(&tmux);
        wait_until(&tmux, "the cover requested", WAIT, || {
            fake.image_requests() >= 1
        });
        wait_until(&tmux, "the cover cached", WAIT, || {
            !cached_covers(&home).is_empty()
        });
        assert_eq!(fake.image_paths(), ["/images/anime/covers/104.png"]);
        let cached = cached_covers(&home);
        assert_eq!(cached.len(), 1, "{cached:?}");
        assert!(cached[0].ends_with(".png"), "{cached:?}");
        assert_eq!(
            harness::mode(&covers_dir(&home)),
            0o700,
            "the cover cache is private"
        );

        // Closed and opened again: the details are asked again, the cover is not.
        escape(&tmux, "the pane closed", |s| s.contains("Ginko wanders"));
        open_details(&tmux);
        wait_until(&tmux, "the details asked again", WAIT, || {
            details_requests(&fake, 104) >= 2
        });
        std::thread::sleep(QUIET);
        assert_eq!(fake.image_requests(), 1, "the cover is downloaded once");
        escape(&tmux, "the pane closed", |s| s.contains("Ginko wanders"));
        tmux.quit();
    }

    // Another run reads it from the disk.
    let tmux = start_synced(&home, &fake, &titles);
    tmux.type_text("j");
    tmux.wait_for("Mushishi selected", WAIT, |s| is_selected(s, "Mushishi"));
    open_details(&tmux);
    wait_until(&tmux, "the details asked", WAIT, || {
        details_requests(&fake, 104) >= 3
    });
    std::thread::sleep(QUIET);
    assert_eq!(
        fake.image_requests(),
        1,
        "the next run uses the cached cover"
    );
    escape(&tmux, "the pane closed", |s| s.contains("Ginko wanders"));
    tmux.quit();
}

// ---------------------------------------------------------------------------------------------
// 10. Help
// ---------------------------------------------------------------------------------------------

/// The help line describing `what`: its keys, before the description.
fn help_keys<'a>(screen: &'a str, what: &str) -> Option<&'a str> {
    let line = screen.lines().find(|l| l.contains(what))?;
    let before = &line[..line.find(what)?];
    Some(
        before
            .trim_start_matches(|c: char| c.is_whitespace() || c == '│')
            .trim(),
    )
}

#[test]
fn help_lists_the_bindings_in_force_including_a_rebinding() {
    require_tmux!();
    let fake = FakeMal::start_background();
    fake.add_anime(Anime::new(101, "Bocchi the Rock!", 12).watched(5));
    let home = home_with(
        &fake,
        "",
        "\n[keys]\nscore = \"z\"\nadd = [\"a\", \"ctrl-n\"]\n",
    );
    let tmux = start_synced(&home, &fake, &["Bocchi the Rock!"]);

    tmux.type_text("?");
    // The whole popup, not the first lines of a frame still being written.
    let screen = tmux.wait_for("the whole help", WAIT, |s| {
        s.contains("┌ Keys") && s.contains("Any key closes this help.")
    });
    for (what, keys) in [
        ("set the score", "z"),
        ("search and add a title", "a Ctrl-n"),
        ("move down", "j ↓"),
        ("move up", "k ↑"),
        ("one more episode/chapter", "+"),
        ("change the status", "S"),
        ("remove from the list", "d"),
        ("details of the entry", "Enter"),
        ("filter by title", "/"),
        ("anime list / manga list", "m"),
        ("show or hide this help", "?"),
    ] {
        let got = help_keys(&screen, what);
        check(
            &tmux,
            &screen,
            got == Some(keys),
            &format!("help: “{what}” bound to “{keys}”, got {got:?}"),
        );
    }
    check(
        &tmux,
        &screen,
        help_keys(&screen, "quit").is_some_and(|k| k.starts_with('q')),
        "help: quit",
    );
    check(
        &tmux,
        &screen,
        screen.contains("Any key closes this help."),
        "how to close it",
    );

    // Any key closes it; the rebinding is in force and the old key does nothing.
    let screen = escape(&tmux, "the help closed", |s| s.contains("┌ Keys"));
    check(
        &tmux,
        &screen,
        list_row(&screen, "Bocchi the Rock!").is_some(),
        "back on the list",
    );
    tmux.type_text("s");
    std::thread::sleep(Duration::from_millis(800));
    let screen = tmux.screen();
    check(
        &tmux,
        &screen,
        !screen.contains("┌ Score"),
        "s no longer opens the score menu",
    );
    tmux.type_text("z");
    tmux.wait_for("the score menu on z", WAIT, |s| s.contains("┌ Score"));
    escape(&tmux, "the score menu closed", |s| s.contains("┌ Score"));
    tmux.keys(&["C-n"]);
    tmux.wait_for("the search on Ctrl-n", WAIT, |s| {
        s.contains("Add anime from MyAnimeList")
    });
    escape(&tmux, "the search closed", |s| s.contains("Add anime from"));
    assert!(fake.patches().is_empty());
    tmux.quit();
}

// ---------------------------------------------------------------------------------------------
// 11. Keys typed at start-up
// ---------------------------------------------------------------------------------------------

/// With a cache, the first frame shows the list (and "synced" with the last sync's time) at once.
/// A key typed then must count: it is the list the user sees.
///
/// First failed on a bug (since fixed in `covers::picker`): with cover art on, malt drew that
/// first frame and then asked the terminal about graphics, reading the terminal's input for up to
/// two seconds (the whole two in tmux) and throwing away the keys it found there.
#[test]
fn keys_typed_as_soon_as_the_cached_list_shows_are_not_lost() {
    require_tmux!();
    let fake = FakeMal::start_background();
    fake.add_anime(Anime::new(101, "Bocchi the Rock!", 12).watched(5));
    fake.add_anime(Anime::new(104, "Mushishi", 26).watched(5));
    let home = home_with(&fake, "", "");
    let titles = ["Bocchi the Rock!", "Mushishi"];
    start_synced(&home, &fake, &titles).quit();

    let tmux = start(&home);
    tmux.wait_for("the cached list", WAIT, |s| {
        titles.iter().all(|t| list_row(s, t).is_some())
    });
    tmux.type_text("j");
    tmux.wait_for("Mushishi selected", WAIT, |s| is_selected(s, "Mushishi"));
    tmux.type_text("+");
    tmux.wait_for("6 / 26", WAIT, |s| list_has(s, "Mushishi", &["6 / 26"]));
    let sent = exactly_patches(&tmux, &fake, 104, 1);
    assert_eq!(sent[0].get("num_watched_episodes"), Some("6"));
    tmux.quit();
}

// ---------------------------------------------------------------------------------------------
// 12. A standard 80×24 terminal
// ---------------------------------------------------------------------------------------------

/// Every action's description in the help, in `Action::ALL` order.
const HELP: [&str; 26] = [
    "move down",
    "move up",
    "go to the top",
    "go to the bottom",
    "one page down",
    "one page up",
    "next status tab",
    "previous status tab",
    "anime list / manga list",
    "next service's list",
    "one more episode/chapter",
    "one less episode/chapter",
    "type the count",
    "set the score",
    "change the status",
    "re-watching on/off",
    "remove from the list",
    "details of the entry",
    "search and add a title",
    "filter by title",
    "change the sort order",
    "sync the list now",
    "retry / keep your change",
    "drop / keep theirs",
    "show or hide this help",
    "quit",
];

/// On a standard 80×24 terminal the help shows every binding and how to close it (it once was
/// one column cut at the 24th row).
#[test]
fn the_help_shows_every_binding_on_an_80x24_terminal() {
    require_tmux!();
    let fake = FakeMal::start_background();
    fake.add_anime(Anime::new(101, "Bocchi the Rock!", 12).watched(5));
    let home = home_with(&fake, "", "");
    let before = list_fetches(&fake);
    let tmux = Tmux::start_with(&home, &[], 80, 24, &[("TZ", "UTC")]);
    wait_until(&tmux, "the list fetches", WAIT, || {
        list_fetches(&fake) >= before + 2
    });
    tmux.wait_for("the synced list", WAIT, ready(&["Bocchi the Rock!"]));
    tmux.type_text("?");
    // The whole popup, not the first lines of a frame still being written.
    let screen = tmux.wait_for("the whole help", WAIT, |s| {
        s.contains("┌ Keys") && s.contains("Any key closes this help.")
    });
    let missing: Vec<&str> = HELP
        .iter()
        .copied()
        .filter(|what| {
            let padded = format!("  {what} ");
            let bordered = format!("  {what}│");
            !screen
                .lines()
                .any(|l| l.contains(&padded) || l.contains(&bordered))
        })
        .collect();
    check(
        &tmux,
        &screen,
        missing.is_empty(),
        &format!("bindings missing from the help at 80×24: {missing:?}"),
    );
    check(
        &tmux,
        &screen,
        screen.contains("Any key closes this help."),
        "the help says how to close it",
    );
    escape(&tmux, "the help closed", |s| s.contains("┌ Keys"));
    tmux.quit();
}

/// On an 80-column terminal the key hints keep "q quit" (they once ran to 85 columns and lost it).
#[test]
fn the_key_hints_keep_quit_on_an_80_column_terminal() {
    require_tmux!();
    let fake = FakeMal::start_background();
    fake.add_anime(Anime::new(101, "Bocchi the Rock!", 12).watched(5));
    let home = home_with(&fake, "", "");
    let before = list_fetches(&fake);
    let tmux = Tmux::start_with(&home, &[], 80, 24, &[("TZ", "UTC")]);
    wait_until(&tmux, "the list fetches", WAIT, || {
        list_fetches(&fake) >= before + 2
    });
    let screen = tmux.wait_for("the synced list", WAIT, ready(&["Bocchi the Rock!"]));
    check(
        &tmux,
        &screen,
        hint_bar(&screen).contains("q quit"),
        "the key hints show how to quit",
    );
    tmux.quit();
}
