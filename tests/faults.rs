//! Faults, end to end: the real `malt` binary, full-screen in tmux, against the fake MyAnimeList
//! made to fail in the ways the real one does (5xx pages, refused connections, throttling, 429 with
//! `Retry-After`, unreadable list pages, a change refused for good, a session that ends mid-queue,
//! a server that hangs). Each test ends with a clear message on screen and the change either still
//! queued or delivered exactly once after the fault clears.
//!
//! The last test runs a whole session with debug logging and checks that no token, and not the
//! client secret, appears in anything malt wrote outside the token file.
//!
//! Five of these first failed, each on a bug named in its doc comment (since fixed): a passing
//! error that stayed on the bar after things worked again (twice), a `null` episode count read as
//! 0, an unreadable list item that silently vanished, and a new login that was not noticed when it
//! landed while the old session's refresh was being refused.
//!
//! malt runs here with `TZ=UTC` (see [`start_pane`]) so the `next try at HH:MM:SS` it shows can
//! be compared with the test's own clock.

mod support;

#[path = "e2e/harness.rs"]
mod harness;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use harness::{
    Home, Proc, TIMEOUT, Tmux, list_synced, patched, row_has, seed, status_bar, wait_until,
};
use support::mal::{FORBIDDEN_BODY, FakeMal, INTERNAL_ERROR_BODY, NOT_FOUND_BODY};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Every PATCH request that reached the fake for `id`, answered or failed on purpose.
fn patch_requests(fake: &FakeMal, id: u64) -> usize {
    let path = format!("/v2/anime/{id}/my_list_status");
    fake.requests()
        .iter()
        .filter(|r| r.method == "PATCH" && r.path == path)
        .count()
}

/// malt in a `width`×`height` pane, its environment the home's plus `TZ=UTC` plus `extra`
/// (`MALT_LOG=debug`), the screen looked at every 20 ms.
fn start_pane(home: &Home, extra: &[(&str, &str)], width: u16, height: u16) -> Tmux {
    let mut env = vec![("TZ", "UTC")];
    env.extend_from_slice(extra);
    Tmux::start_with(home, &[], width, height, &env).poll_every(Duration::from_millis(20))
}

/// 120×40, no extra environment.
fn plain(home: &Home) -> Tmux {
    start_pane(home, &[], 120, 40)
}

// ---------------------------------------------------------------------------------------------
// Reading the retry time
// ---------------------------------------------------------------------------------------------

/// UTC seconds since midnight of `t` (malt runs with `TZ=UTC`).
fn clock_of(t: jiff::Timestamp) -> i64 {
    t.as_second().rem_euclid(86_400)
}

/// Seconds from `since` (a moment the test noted) to the `next try at HH:MM:SS` in `bar`;
/// `None` when the bar shows no such time. The time shown has whole seconds, so the answer is
/// up to a second short.
fn next_try_after(bar: &str, since: jiff::Timestamp) -> Option<i64> {
    let (_, after) = bar.split_once("next try at ")?;
    let clock: String = after.chars().take(8).collect();
    let mut parts = clock.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, s) = (parts.next()??, parts.next()??, parts.next()??);
    let shown = h * 3600 + m * 60 + s;
    let mut ahead = (shown - clock_of(since)).rem_euclid(86_400);
    if ahead > 43_200 {
        ahead -= 86_400;
    }
    Some(ahead)
}

/// Stores a new session as `malt --login` does: written beside the token file, then renamed over
/// it (a reader never sees half a file).
fn log_in_atomically(home: &Home, fake: &FakeMal) {
    use std::os::unix::fs::PermissionsExt;
    let (access, refresh) = fake.issue_tokens(3600);
    let json = serde_json::json!({
        "access_token": access,
        "refresh_token": refresh,
        "expires_at": harness::unix_now() + 3600,
    });
    let path = home.tokens_path();
    let tmp = path.with_extension("json.test-tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
}

/// A running malt on a synced, seeded list (Bocchi the Rock! selected).
fn synced_malt(fake: &FakeMal) -> (Home, Tmux) {
    seed(fake);
    let home = Home::for_fake(fake);
    home.log_in(fake);
    let pane = plain(&home);
    pane.wait_for("the synced list", TIMEOUT, list_synced);
    (home, pane)
}

const HTML_ERROR_PAGE: &str = "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\
     <body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>\n";

/// A Cloudflare-style block page, the HTML form of MyAnimeList's throttling.
const HTML_BLOCK_PAGE: &str = "<!DOCTYPE html>\n<html><head><title>Access denied</title></head>\
     <body><h1>Sorry, you have been blocked</h1><p>You are unable to access myanimelist.net</p>\
     </body></html>\n";

// ---------------------------------------------------------------------------------------------
// 1. 5xx on the PATCH
// ---------------------------------------------------------------------------------------------

/// For each `(status, body, content type)`: one `+` on Bocchi meets the failure, the bar shows
/// the change waiting with a retry time ≈2 s ahead and the HTTP status, and the retry lands it,
/// exactly once.
fn server_errors_are_retried(cases: &[(u16, &str, &str)]) {
    require_tmux!();
    let fake = FakeMal::start_background();
    let (_home, pane) = synced_malt(&fake);
    let mut sent: Vec<String> = Vec::new();
    for (i, &(status, body, content_type)) in cases.iter().enumerate() {
        let value = 6 + i as u32;
        let html = body.trim_start().starts_with('<');
        let requests_before = patch_requests(&fake, 101);
        fake.fail_next(1, status, body, content_type);
        let pressed_at = jiff::Timestamp::now();
        pane.type_text("+");
        let pressed = Instant::now();
        let screen = pane.wait_for(
            &format!("the change waiting after HTTP {status}"),
            TIMEOUT,
            |s| {
                let bar = status_bar(s);
                bar.contains("1 change waiting, next try at")
                    && bar.contains(&format!("HTTP {status}"))
            },
        );
        let bar = status_bar(&screen);
        if html && !bar.contains("HTML") {
            pane.fail("the bar says the answer was an HTML page", &screen);
        }
        let ahead = next_try_after(bar, pressed_at).unwrap();
        if !(1..=5).contains(&ahead) {
            pane.fail(
                &format!(
                    "the next try is {ahead} s after the `+`; the first back-off is about 2 s"
                ),
                &screen,
            );
        }
        if !row_has(&screen, "Bocchi the Rock!", &format!("{value} / 12 ↑")) {
            pane.fail("the change stays on screen, marked ↑", &screen);
        }
        assert_eq!(patched(&fake, 101), sent, "nothing landed yet");

        wait_until(&pane, "the retried change to land", TIMEOUT, || {
            fake.watched(101) == Some(value)
        });
        let took = pressed.elapsed();
        assert!(
            took >= Duration::from_millis(1400),
            "HTTP {status}: retried after {took:?}, before the ≈2 s back-off"
        );
        pane.wait_for("the change confirmed", TIMEOUT, |s| {
            let bar = status_bar(s);
            row_has(s, "Bocchi the Rock!", &format!("{value} / 12"))
                && !row_has(s, "Bocchi the Rock!", "↑")
                && !bar.contains("waiting")
                && bar.contains("synced")
        });
        sent.push(value.to_string());
        assert_eq!(
            patched(&fake, 101),
            sent,
            "HTTP {status}: exactly one PATCH landed"
        );
        assert_eq!(
            patch_requests(&fake, 101),
            requests_before + 2,
            "HTTP {status}: the failed PATCH and one retry"
        );
    }
    // Long enough for a duplicate to arrive, if one were sent.
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(patched(&fake, 101), sent);
    pane.quit_restored();
}

#[test]
fn http_500_json_and_html_wait_then_land_once() {
    server_errors_are_retried(&[
        (500, INTERNAL_ERROR_BODY, "application/json; charset=UTF-8"),
        (500, HTML_ERROR_PAGE, "text/html"),
    ]);
}

#[test]
fn http_502_html_and_json_wait_then_land_once() {
    server_errors_are_retried(&[
        (502, HTML_ERROR_PAGE, "text/html"),
        (
            502,
            r#"{"message":"","error":"bad_gateway"}"#,
            "application/json",
        ),
    ]);
}

#[test]
fn http_503_html_and_json_wait_then_land_once() {
    server_errors_are_retried(&[
        (503, HTML_ERROR_PAGE, "text/html; charset=utf-8"),
        (
            503,
            r#"{"message":"Service Unavailable","error":"service_unavailable"}"#,
            "application/json",
        ),
    ]);
}

/// After a 500 the bar says MyAnimeList is having trouble; once the retry has landed, nothing is
/// wrong any more and the bar must not keep saying so (`Model::error` is documented as "the
/// latest error, until something succeeds or another comes").
#[test]
fn a_passing_server_error_leaves_the_bar_once_the_change_lands() {
    require_tmux!();
    let fake = FakeMal::start_background();
    let (_home, pane) = synced_malt(&fake);
    fake.fail_next(1, 500, INTERNAL_ERROR_BODY, "application/json");
    pane.type_text("+");
    pane.wait_for("the 500 on the bar", TIMEOUT, |s| {
        status_bar(s).contains("HTTP 500")
    });
    wait_until(&pane, "the retried change to land", TIMEOUT, || {
        fake.watched(101) == Some(6)
    });
    pane.wait_for("the change confirmed", TIMEOUT, |s| {
        row_has(s, "Bocchi the Rock!", "6 / 12") && !row_has(s, "Bocchi the Rock!", "↑")
    });
    // The UI may take a frame to settle.
    std::thread::sleep(Duration::from_millis(300));
    let screen = pane.screen();
    let bar = status_bar(&screen);
    if bar.contains("HTTP 500") || bar.contains("having trouble") {
        pane.fail(
            "the change has landed, but the bar still says MyAnimeList is having trouble",
            &screen,
        );
    }
    assert_eq!(patched(&fake, 101), ["6"]);
    pane.quit_restored();
}

// ---------------------------------------------------------------------------------------------
// 2. Connection refused
// ---------------------------------------------------------------------------------------------

#[test]
fn connection_refused_while_running_waits_offline_then_lands() {
    require_tmux!();
    let fake = FakeMal::start_background();
    let (_home, pane) = synced_malt(&fake);
    fake.go_down();
    let pressed_at = jiff::Timestamp::now();
    pane.type_text("+");
    let screen = pane.wait_for("`offline` and the change waiting", TIMEOUT, |s| {
        let bar = status_bar(s);
        bar.contains("offline") && bar.contains("1 change waiting, next try at")
    });
    if !row_has(&screen, "Bocchi the Rock!", "6 / 12 ↑") {
        pane.fail("the change stays on screen, marked ↑", &screen);
    }
    let ahead = next_try_after(status_bar(&screen), pressed_at).unwrap();
    if !(1..=5).contains(&ahead) {
        pane.fail(
            &format!("next try {ahead} s after the `+`, not ≈2 s"),
            &screen,
        );
    }
    // The cached list stays.
    if !row_has(&screen, "Mushishi", "5 / 26") || !row_has(&screen, "One Piece", "3 / ?") {
        pane.fail("the cached list stays on screen", &screen);
    }
    assert!(fake.patches().is_empty(), "{:?}", fake.patches());

    fake.go_up();
    wait_until(&pane, "the change to land", TIMEOUT, || {
        fake.watched(101) == Some(6)
    });
    pane.wait_for("online again, nothing waiting", TIMEOUT, |s| {
        let bar = status_bar(s);
        bar.contains("synced")
            && !bar.contains("offline")
            && !bar.contains("waiting")
            && !row_has(s, "Bocchi the Rock!", "↑")
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(patched(&fake, 101), ["6"], "exactly one PATCH");
    pane.quit_restored();
}

// ---------------------------------------------------------------------------------------------
// 3. Throttling: 403
// ---------------------------------------------------------------------------------------------

/// A 403 (MyAnimeList's throttling) on the PATCH: the bar says MyAnimeList refused, likely too
/// many requests, and that malt waits minutes; the next try shown is ≥ 4 minutes ahead and
/// nothing is sent for a few seconds.
fn throttled_by_403(body: &str, content_type: &str) {
    require_tmux!();
    let fake = FakeMal::start_background();
    seed(&fake);
    let home = Home::for_fake(&fake);
    home.log_in(&fake);
    // Wide enough for the whole message (at 120 columns its end is cut off).
    let pane = start_pane(&home, &[], 200, 30);
    pane.wait_for("the synced list", TIMEOUT, list_synced);
    fake.fail_next(1, 403, body, content_type);
    pane.type_text("+");
    let pressed_at = jiff::Timestamp::now();
    let screen = pane.wait_for("the 403 on the bar", TIMEOUT, |s| {
        let bar = status_bar(s);
        bar.contains("next try at") && bar.contains("403")
    });
    let after_403 = fake.requests().len();
    let bar = status_bar(&screen).to_string();
    for words in ["refused", "too many requests", "minutes"] {
        if !bar.contains(words) {
            pane.fail(&format!("the bar says {words:?}"), &screen);
        }
    }
    // Checked against the test's clock now, as the brief asks: at least 4 minutes ahead.
    let ahead = next_try_after(&bar, jiff::Timestamp::now()).unwrap();
    let after_press = next_try_after(&bar, pressed_at).unwrap();
    if ahead < 240 || after_press > 400 {
        pane.fail(
            &format!("the next try is {ahead} s ahead; throttling waits minutes"),
            &screen,
        );
    }
    if !row_has(&screen, "Bocchi the Rock!", "6 / 12 ↑") {
        pane.fail("the change stays on screen, marked ↑", &screen);
    }
    // Nothing is sent while throttled, and the screen keeps working.
    std::thread::sleep(Duration::from_secs(3));
    pane.type_text("j");
    let screen = pane.wait_for("the selection to move", TIMEOUT, |s| {
        row_has(s, "Kill la Kill", "›")
    });
    let requests = fake.requests();
    assert_eq!(
        requests.len(),
        after_403,
        "requests sent while throttled: {:?}",
        &requests[after_403..]
    );
    if !row_has(&screen, "Bocchi the Rock!", "6 / 12 ↑") || !status_bar(&screen).contains("waiting")
    {
        pane.fail("the change still waits", &screen);
    }
    assert!(fake.patches().is_empty(), "{:?}", fake.patches());
    assert_eq!(fake.watched(101), Some(5));
    pane.quit_restored();
}

#[test]
fn throttling_403_json_waits_minutes_and_sends_nothing() {
    throttled_by_403(FORBIDDEN_BODY, "application/json; charset=UTF-8");
}

#[test]
fn throttling_403_html_block_page_waits_minutes_and_sends_nothing() {
    throttled_by_403(HTML_BLOCK_PAGE, "text/html; charset=UTF-8");
}

// ---------------------------------------------------------------------------------------------
// 4. 429 with Retry-After
// ---------------------------------------------------------------------------------------------

#[test]
fn http_429_with_retry_after_is_waited_out_exactly() {
    require_tmux!();
    let fake = FakeMal::start_background();
    let (_home, pane) = synced_malt(&fake);
    fake.fail_next_with_headers(
        1,
        429,
        r#"{"message":"Too Many Requests","error":"too_many_requests"}"#,
        "application/json",
        &[("Retry-After", "2")],
    );
    let pressed_at = jiff::Timestamp::now();
    pane.type_text("+");
    // The 429 is answered at once; note when it arrived.
    wait_until(&pane, "the PATCH to be answered 429", TIMEOUT, || {
        patch_requests(&fake, 101) == 1
    });
    let throttled_at = Instant::now();
    let screen = pane.wait_for("the 429 on the bar", TIMEOUT, |s| {
        let bar = status_bar(s);
        bar.contains("1 change waiting, next try at") && bar.contains("429")
    });
    let ahead = next_try_after(status_bar(&screen), pressed_at).unwrap();
    if !(1..=4).contains(&ahead) {
        pane.fail(&format!("next try {ahead} s after the `+`, not 2"), &screen);
    }
    wait_until(&pane, "the change to land", TIMEOUT, || {
        fake.watched(101) == Some(6)
    });
    let waited = throttled_at.elapsed();
    assert!(
        waited >= Duration::from_millis(1500),
        "sent again {waited:?} after a 429 asking for 2 s"
    );
    assert!(
        waited <= Duration::from_secs(8),
        "sent again only {waited:?} after a 429 asking for 2 s"
    );
    pane.wait_for("the change confirmed", TIMEOUT, |s| {
        !row_has(s, "Bocchi the Rock!", "↑") && !status_bar(s).contains("waiting")
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(patched(&fake, 101), ["6"], "exactly one PATCH landed");
    assert_eq!(patch_requests(&fake, 101), 2, "the 429 and one retry");
    pane.quit_restored();
}

// ---------------------------------------------------------------------------------------------
// 5. Unreadable list pages
// ---------------------------------------------------------------------------------------------

/// A list page as the fake serves it, with `mushishi` as Mushishi's item.
///
/// A sync asks for the anime list and the manga list at once, and the fake's `fail_next` answers
/// whichever request comes first; so the items carry both kinds' fields (episodes and chapters)
/// and [`sync_with_page`] serves the page to both requests: each kind reads it the same way,
/// whichever request arrives first. (The seeded list has no manga: on the Watching tab of the
/// anime list, which the tests look at, only the anime answer shows.)
fn page_with_mushishi(mushishi: &str) -> String {
    let item = |id: u64, title: &str, total: u32, watched: u32| {
        format!(
            r#"{{"node":{{"id":{id},"title":"{title}","num_episodes":{total},"num_chapters":{total}}},"list_status":{{"status":"watching","score":0,"num_episodes_watched":{watched},"num_chapters_read":{watched},"is_rewatching":false,"updated_at":"2026-01-01T00:00:00+00:00"}}}}"#
        )
    };
    format!(
        r#"{{"data":[{},{},{},{}],"paging":{{}}}}"#,
        item(101, "Bocchi the Rock!", 12, 5),
        item(103, "Kill la Kill", 24, 2),
        mushishi,
        item(102, "One Piece", 0, 3)
    )
}

/// The cached list, unchanged.
fn cached_list_shown(screen: &str) -> bool {
    row_has(screen, "Bocchi the Rock!", "5 / 12")
        && row_has(screen, "Kill la Kill", "2 / 24")
        && row_has(screen, "Mushishi", "5 / 26")
        && row_has(screen, "One Piece", "3 / ?")
}

/// A sync fetches the anime list and the manga list at once; here one of the two answers (whichever
/// request reaches the fake first) cannot be read. The other list syncs fine, but that must not
/// hide the failure: the bar says so, and the cached list stays.
#[test]
fn unreadable_list_pages_say_so_and_keep_the_cached_list() {
    require_tmux!();
    let fake = FakeMal::start_background();
    let (_home, pane) = synced_malt(&fake);
    let truncated = page_with_mushishi(
        r#"{"node":{"id":104,"title":"Mushishi","num_episodes":26},"list_status":{"status":"watching","num_episodes_wat"#,
    );
    let truncated = &truncated[..truncated.find("num_episodes_wat").unwrap() + 16];
    let html = "<!DOCTYPE html>\n<html><head><title>MyAnimeList.net</title></head><body>\
                <h1>Under maintenance</h1></body></html>";
    let cases: [(&str, &str, &str); 2] = [
        (truncated, "application/json; charset=UTF-8", "cannot read"),
        (html, "text/html; charset=UTF-8", "HTML"),
    ];
    for (body, content_type, says) in cases {
        fake.fail_next(1, 200, body, content_type);
        pane.type_text("r");
        let screen = pane.wait_for(&format!("an error saying {says:?}"), TIMEOUT, |s| {
            let bar = status_bar(s);
            bar.contains(says) && !bar.contains("syncing")
        });
        pane.assert_running(&screen);
        if !cached_list_shown(&screen) {
            pane.fail("the cached list stays", &screen);
        }
    }
    // Still answering keys.
    pane.type_text("j");
    pane.wait_for("the selection to move", TIMEOUT, |s| {
        row_has(s, "Kill la Kill", "›")
    });
    pane.quit_restored();
}

/// Answers the next sync's two list fetches (anime and manga) with `page` (200, JSON), presses
/// `r`, and returns the screen once that sync is over.
fn sync_with_page(pane: &Tmux, fake: &FakeMal, page: &str) -> String {
    let fetches = |fake: &FakeMal, list: &str| {
        fake.requests()
            .iter()
            .filter(|r| r.path.ends_with(list))
            .count()
    };
    let before = (fetches(fake, "/animelist"), fetches(fake, "/mangalist"));
    fake.fail_next(2, 200, page, "application/json; charset=UTF-8");
    pane.type_text("r");
    wait_until(pane, "both list fetches", TIMEOUT, || {
        fetches(fake, "/animelist") > before.0 && fetches(fake, "/mangalist") > before.1
    });
    // The `syncing` frame is drawn by now; wait for the result.
    std::thread::sleep(Duration::from_millis(150));
    pane.wait_for("the fetch to finish", TIMEOUT, |s| {
        !status_bar(s).contains("syncing")
    })
}

/// An unreadable list page puts an error on the bar (one of the sync's two fetches, the other
/// fine: see the test above); once a whole sync succeeds again, the error is old news and must go
/// (`Model::trouble`: "the latest passing trouble, until a request succeeds again").
#[test]
fn a_list_error_leaves_the_bar_after_a_good_sync() {
    require_tmux!();
    let fake = FakeMal::start_background();
    let (_home, pane) = synced_malt(&fake);
    fake.fail_next(
        1,
        200,
        "<html><body>Under maintenance</body></html>",
        "text/html",
    );
    pane.type_text("r");
    pane.wait_for("the HTML error", TIMEOUT, |s| {
        let bar = status_bar(s);
        bar.contains("HTML") && !bar.contains("syncing")
    });
    let requests = fake.requests().len();
    pane.type_text("r");
    wait_until(&pane, "the next fetch", TIMEOUT, || {
        fake.requests().len() > requests
    });
    std::thread::sleep(Duration::from_millis(300));
    let screen = pane.wait_for("the good sync done", TIMEOUT, |s| {
        let bar = status_bar(s);
        bar.contains("synced") && !bar.contains("syncing")
    });
    if status_bar(&screen).contains("HTML") {
        pane.fail(
            "the list has synced again, but the bar still shows the old error",
            &screen,
        );
    }
    pane.quit_restored();
}

/// Syncs a page whose Mushishi item is `mushishi` (the other items good): Mushishi must keep its
/// cached `5 / 26`, or the bar must mention it or say something could not be read; otherwise the
/// test fails with `lost`.
fn an_odd_item_is_kept_or_reported(mushishi: &str, lost: &str) {
    require_tmux!();
    let fake = FakeMal::start_background();
    let (_home, pane) = synced_malt(&fake);
    let page = page_with_mushishi(mushishi);
    let screen = sync_with_page(&pane, &fake, &page);
    pane.assert_running(&screen);
    let kept = row_has(&screen, "Mushishi", "5 / 26");
    let said = status_bar(&screen).contains("Mushishi") || status_bar(&screen).contains("read");
    if !kept && !said {
        pane.fail(lost, &screen);
    }
    pane.quit_restored();
}

/// One item of an otherwise good page has `null` where MyAnimeList always sends a number (the
/// episodes watched). malt must not show (and cache) that as 0, which the next `+` would send to
/// MyAnimeList as 1: the cached value stays, or the screen says the item could not be read.
#[test]
fn a_null_episode_count_in_one_item_is_not_read_as_zero() {
    an_odd_item_is_kept_or_reported(
        r#"{"node":{"id":104,"title":"Mushishi","num_episodes":26,"num_chapters":26},"list_status":{"status":"watching","score":0,"num_episodes_watched":null,"num_chapters_read":null,"is_rewatching":false,"updated_at":"2026-01-01T00:00:00+00:00"}}"#,
        "Mushishi's episode count (null in the answer) silently became something else",
    );
}

/// One item of an otherwise good page cannot be read at all (`null` id). The entry must not
/// silently vanish from the list (and the cache): it stays, or the screen says so.
#[test]
fn an_unreadable_item_does_not_silently_vanish_from_the_list() {
    an_odd_item_is_kept_or_reported(
        r#"{"node":{"id":null,"title":"Mushishi","num_episodes":26,"num_chapters":26},"list_status":{"status":"watching","score":0,"num_episodes_watched":5,"num_chapters_read":5,"is_rewatching":false,"updated_at":"2026-01-01T00:00:00+00:00"}}"#,
        "Mushishi (unreadable in the answer) vanished from the list without a word",
    );
}

// ---------------------------------------------------------------------------------------------
// 6. Refused for good
// ---------------------------------------------------------------------------------------------

#[test]
fn a_refused_change_is_marked_and_x_drops_it_and_r_sends_it_again() {
    require_tmux!();
    let fake = FakeMal::start_background();
    let (_home, pane) = synced_malt(&fake);

    // Bocchi: refused, then dropped with `x`.
    fake.fail_next(1, 404, NOT_FOUND_BODY, "application/json; charset=UTF-8");
    pane.type_text("+");
    let screen = pane.wait_for("Bocchi marked `!` with the reason", TIMEOUT, |s| {
        row_has(s, "Bocchi the Rock!", "5 / 12 !") && status_bar(s).contains("R retry, x drop")
    });
    let bar = status_bar(&screen);
    if !bar.contains("404") || !bar.contains("refused") {
        pane.fail("the bar gives the reason (404, refused)", &screen);
    }
    if row_has(&screen, "Bocchi the Rock!", "↑") {
        pane.fail("a refused change is not shown as on its way", &screen);
    }
    pane.type_text("x");
    let screen = pane.wait_for("the server's value, unmarked", TIMEOUT, |s| {
        row_has(s, "Bocchi the Rock!", "5 / 12")
            && !row_has(s, "Bocchi the Rock!", "12 !")
            && !status_bar(s).contains("refused")
    });
    pane.assert_running(&screen);
    std::thread::sleep(Duration::from_millis(500));
    assert!(fake.patches().is_empty(), "{:?}", fake.patches());
    assert_eq!(fake.watched(101), Some(5));
    assert_eq!(
        patch_requests(&fake, 101),
        1,
        "a dropped change is not sent again"
    );

    // Kill la Kill: refused, then sent again with `R` once the fault is gone.
    pane.type_text("j");
    pane.wait_for("Kill la Kill selected", TIMEOUT, |s| {
        row_has(s, "Kill la Kill", "›")
    });
    fake.fail_next(1, 404, NOT_FOUND_BODY, "application/json; charset=UTF-8");
    pane.type_text("+");
    pane.wait_for("Kill la Kill marked `!`", TIMEOUT, |s| {
        row_has(s, "Kill la Kill", "2 / 24 !") && status_bar(s).contains("R retry, x drop")
    });
    assert!(fake.patches().is_empty());
    pane.type_text("R");
    wait_until(&pane, "the change sent again to land", TIMEOUT, || {
        fake.watched(103) == Some(3)
    });
    pane.wait_for("Kill la Kill confirmed", TIMEOUT, |s| {
        row_has(s, "Kill la Kill", "3 / 24")
            && !row_has(s, "Kill la Kill", "24 !")
            && !row_has(s, "Kill la Kill", "↑")
            && !status_bar(s).contains("refused")
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(patched(&fake, 103), ["3"], "exactly one PATCH landed");
    assert_eq!(
        patch_requests(&fake, 103),
        2,
        "the refused one and the retry"
    );
    pane.quit_restored();
}

// ---------------------------------------------------------------------------------------------
// 7. Session expired mid-queue
// ---------------------------------------------------------------------------------------------

#[test]
fn a_session_expired_mid_queue_drains_in_order_after_a_new_login() {
    require_tmux!();
    let fake = FakeMal::start_background();
    let (home, pane) = synced_malt(&fake);
    fake.expire_access_tokens();
    fake.revoke_refresh_tokens();
    pane.type_text("+");
    pane.wait_for("6 / 12 on screen", TIMEOUT, |s| {
        row_has(s, "Bocchi the Rock!", "6 / 12")
    });
    pane.type_text("+");
    let screen = pane.wait_for("`session expired` and `malt --login`", TIMEOUT, |s| {
        let bar = status_bar(s);
        bar.contains("session expired") && bar.contains("malt --login")
    });
    let screen = if row_has(&screen, "Bocchi the Rock!", "7 / 12 ↑") {
        screen
    } else {
        pane.wait_for("both changes waiting", TIMEOUT, |s| {
            row_has(s, "Bocchi the Rock!", "7 / 12 ↑") && status_bar(s).contains("2 ")
        })
    };
    pane.assert_running(&screen);
    assert!(fake.patches().is_empty(), "{:?}", fake.patches());

    // `malt --login` in another terminal: the running malt picks it up and sends both, in order.
    // (A person takes seconds to log in; a login written within milliseconds of the expiry races
    // malt's session refresher, which is the next test.)
    std::thread::sleep(Duration::from_millis(700));
    log_in_atomically(&home, &fake);
    let logged_in = Instant::now();
    wait_until(
        &pane,
        "both changes to land",
        Duration::from_secs(15),
        || patched(&fake, 101).len() >= 2,
    );
    let took = logged_in.elapsed();
    assert!(
        took <= Duration::from_secs(10),
        "drained {took:?} after the login"
    );
    pane.wait_for("nothing waiting, no login message", TIMEOUT, |s| {
        let bar = status_bar(s);
        !bar.contains("expired")
            && !bar.contains("waiting")
            && !bar.contains("pending")
            && row_has(s, "Bocchi the Rock!", "7 / 12")
            && !row_has(s, "Bocchi the Rock!", "↑")
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(patched(&fake, 101), ["6", "7"], "in order, each once");
    assert_eq!(fake.watched(101), Some(7));
    pane.quit_restored();
}

/// A TCP relay in front of the fake's login server that can hold back the server's answers: the
/// test decides when malt hears back from the token endpoint.
struct HoldingRelay {
    addr: std::net::SocketAddr,
    hold: Arc<(Mutex<bool>, Condvar)>,
}

impl HoldingRelay {
    fn start(upstream: std::net::SocketAddr) -> HoldingRelay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the relay");
        let addr = listener.local_addr().unwrap();
        let hold = Arc::new((Mutex::new(false), Condvar::new()));
        let gate = hold.clone();
        // Ends with the test process; each connection's pumps end when malt or the fake closes it.
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                let (client_in, server_out) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || pump(client_in, server_out, None));
                let gate = gate.clone();
                std::thread::spawn(move || pump(server, client, Some(gate)));
            }
        });
        HoldingRelay { addr, hold }
    }

    /// `http://127.0.0.1:PORT/v1/oauth2`, to use as `auth_url`.
    fn auth_url(&self) -> String {
        format!("http://{}/v1/oauth2", self.addr)
    }

    /// While set, nothing the server sends reaches malt.
    fn hold(&self, on: bool) {
        let (held, changed) = &*self.hold;
        *held.lock().unwrap() = on;
        changed.notify_all();
    }
}

/// Copies `from` to `to`; with a gate, waits while it is held before passing anything on.
fn pump(mut from: TcpStream, mut to: TcpStream, gate: Option<Arc<(Mutex<bool>, Condvar)>>) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(gate) = &gate {
            let (held, changed) = &**gate;
            let mut held = held.lock().unwrap();
            while *held {
                held = changed.wait(held).unwrap();
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Write);
}

/// A new login that lands while malt is finding out that the old session has ended: after its
/// refresh request has gone out (the token file was read just before), before the refusal
/// arrives. A relay holds the refusal back until the new login is stored, so the order is
/// certain. The README promises "the running malt notices within seconds and sends what waited";
/// malt's session refresher looks at the token file every 5 s while a login is needed.
#[test]
fn a_login_landing_while_the_refresh_is_refused_is_picked_up() {
    require_tmux!();
    let fake = FakeMal::start_background();
    seed(&fake);
    let upstream = fake.base().trim_start_matches("http://").parse().unwrap();
    let relay = HoldingRelay::start(upstream);
    let home = Home::new();
    home.write_config(&format!(
        "[mal]\nclient_id = \"{}\"\napi_url = \"{}\"\nauth_url = \"{}\"\nredirect_uri = \"{}\"\n",
        FakeMal::CLIENT_ID,
        fake.api_url(),
        relay.auth_url(),
        home.redirect_uri
    ));
    home.log_in(&fake);
    let pane = plain(&home);
    pane.wait_for("the synced list", TIMEOUT, list_synced);

    fake.expire_access_tokens();
    fake.revoke_refresh_tokens();
    relay.hold(true);
    pane.type_text("+");
    wait_until(&pane, "the refresh request", TIMEOUT, || {
        fake.requests()
            .iter()
            .any(|r| r.method == "POST" && r.path.ends_with("/token"))
    });
    // malt read the token file before asking; `malt --login` in another terminal stores a new
    // session now, and then malt hears that its old refresh token was refused.
    log_in_atomically(&home, &fake);
    let logged_in = Instant::now();
    relay.hold(false);
    while fake.watched(101) != Some(6) {
        if logged_in.elapsed() > Duration::from_secs(12) {
            pane.fail(
                &format!(
                    "a new login was stored {:?} ago and not used; PATCHes: {:?}",
                    logged_in.elapsed(),
                    patched(&fake, 101)
                ),
                &pane.screen(),
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    pane.wait_for("no login message, nothing waiting", TIMEOUT, |s| {
        let bar = status_bar(s);
        !bar.contains("expired") && !bar.contains("pending") && !row_has(s, "Bocchi", "↑")
    });
    assert_eq!(patched(&fake, 101), ["6"]);
    pane.quit_restored();
}

// ---------------------------------------------------------------------------------------------
// 8. A hung server
// ---------------------------------------------------------------------------------------------

#[test]
fn a_hung_server_does_not_freeze_the_screen() {
    require_tmux!();
    let fake = FakeMal::start_background();
    let (_home, pane) = synced_malt(&fake);
    fake.set_latency(Duration::from_secs(8));
    pane.type_text("+");
    let pressed = Instant::now();
    pane.wait_for("6 / 12 ↑", TIMEOUT, |s| {
        row_has(s, "Bocchi the Rock!", "6 / 12 ↑")
    });
    assert!(
        pressed.elapsed() < Duration::from_secs(1),
        "the count took {:?} to show",
        pressed.elapsed()
    );
    // The PATCH is on its way and hangs.
    wait_until(&pane, "the PATCH to reach the server", TIMEOUT, || {
        patch_requests(&fake, 101) == 1
    });
    for (key, title) in [
        ("j", "Kill la Kill"),
        ("j", "Mushishi"),
        ("k", "Kill la Kill"),
    ] {
        pane.type_text(key);
        let pressed = Instant::now();
        pane.wait_for(&format!("{title} selected"), TIMEOUT, |s| {
            row_has(s, title, "›")
        });
        let took = pressed.elapsed();
        assert!(
            took < Duration::from_secs(1),
            "{key}: the selection moved after {took:?} while a request hung"
        );
    }
    let screen = pane.screen();
    if !row_has(&screen, "Bocchi the Rock!", "6 / 12 ↑") {
        pane.fail("the change is still on its way", &screen);
    }
    assert!(fake.patches().is_empty(), "{:?}", fake.patches());
    // Quitting does not wait for the hung request either.
    let quitting = Instant::now();
    pane.quit_restored();
    assert!(
        quitting.elapsed() < Duration::from_secs(3),
        "quitting took {:?}",
        quitting.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------
// Part 2: no secret anywhere
// ---------------------------------------------------------------------------------------------

const CLIENT_SECRET: &str = "s3cr3t-client-secret-value";

/// Every file under `dir`, recursively.
fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// The `Bearer` tokens malt sent, as the fake saw them.
fn bearer_tokens(fake: &FakeMal) -> Vec<String> {
    fake.requests()
        .into_iter()
        .filter_map(|r| r.authorization)
        .filter_map(|a| a.strip_prefix("Bearer ").map(str::to_string))
        .collect()
}

/// The stored tokens now.
fn stored_tokens(home: &Home) -> Vec<String> {
    let tokens = home.tokens().expect("tokens stored");
    ["access_token", "refresh_token"]
        .iter()
        .map(|k| tokens[*k].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_whole_session_with_debug_logging_writes_no_secret_outside_the_token_file() {
    require_tmux!();
    let debug: &[(&str, &str)] = &[("MALT_LOG", "debug")];
    let fake = FakeMal::start_background();
    fake.set_client_secret(Some(CLIENT_SECRET));
    seed(&fake);
    let home = Home::new();
    home.write_config(&format!(
        "{}client_secret = \"{CLIENT_SECRET}\"\n",
        home.mal_config(&fake)
    ));
    home.install_browser();
    let mut secrets: Vec<String> = Vec::new();
    let mut written: Vec<(String, String)> = Vec::new();

    // Login through the stand-in browser.
    let mut cmd = home.command(&["--login"]);
    cmd.stdin(Stdio::null());
    for (k, v) in debug {
        cmd.env(k, v);
    }
    let out = Proc::spawn(cmd).finish(TIMEOUT);
    let login_output = format!("{}\n{}", out.stdout, out.stderr);
    assert!(out.status.success(), "malt --login failed:\n{login_output}");
    written.push(("the output of malt --login".into(), login_output));
    secrets.extend(stored_tokens(&home));

    let pane = start_pane(&home, debug, 120, 40).keep_screens();
    pane.wait_for("the synced list", TIMEOUT, list_synced);

    // `+`, delivered.
    pane.type_text("+");
    wait_until(&pane, "the first change to land", TIMEOUT, || {
        fake.watched(101) == Some(6)
    });

    // The access token expires: refreshed, the change lands, the new tokens are stored.
    fake.expire_access_tokens();
    pane.type_text("+");
    wait_until(&pane, "the change after a refresh to land", TIMEOUT, || {
        fake.watched(101) == Some(7)
    });
    assert_eq!(fake.refresh_count(), 1);
    let refreshed = stored_tokens(&home);
    assert!(
        refreshed.iter().all(|t| !secrets.contains(t)),
        "new tokens stored after the refresh"
    );
    secrets.extend(refreshed);

    // A 500: waits, then lands.
    fake.fail_next(1, 500, INTERNAL_ERROR_BODY, "application/json");
    pane.type_text("+");
    pane.wait_for("the 500 on the bar", TIMEOUT, |s| {
        status_bar(s).contains("HTTP 500")
    });
    wait_until(&pane, "the change after a 500 to land", TIMEOUT, || {
        fake.watched(101) == Some(8)
    });

    // The refresh token is refused: the session has expired.
    fake.expire_access_tokens();
    fake.revoke_refresh_tokens();
    pane.type_text("+");
    pane.wait_for("`session expired`", TIMEOUT, |s| {
        let bar = status_bar(s);
        bar.contains("session expired") && bar.contains("malt --login")
    });
    pane.screen();
    pane.quit_restored();
    pane.history();
    written.push(("the screen".into(), pane.captured()));

    let sent = bearer_tokens(&fake);
    assert!(
        sent.contains(&secrets[0]) && sent.contains(&secrets[2]),
        "the access tokens from the login and the refresh were both used"
    );
    secrets.extend(sent);
    secrets.sort();
    secrets.dedup();
    assert!(
        secrets.len() >= 4,
        "two logins' worth of tokens: {}",
        secrets.len()
    );
    assert!(secrets.iter().all(|s| s.len() >= 32));

    // Every file malt may have written, but the token file and the config the user wrote.
    let mut files = Vec::new();
    for dir in ["data", "state", "home"] {
        files_under(&home.path().join(dir), &mut files);
    }
    files.push(home.path().join("browser.log"));
    let tokens_path = home.tokens_path();
    let mut saw_log = false;
    let mut saw_db = false;
    for file in files.iter().filter(|f| **f != tokens_path) {
        let Ok(bytes) = std::fs::read(file) else {
            continue;
        };
        saw_log |= file.ends_with("malt.log");
        saw_db |= file.ends_with("malt.db");
        written.push((
            file.display().to_string(),
            String::from_utf8_lossy(&bytes).into_owned(),
        ));
    }
    assert!(saw_log && saw_db, "the log and the database: {files:?}");
    let log = std::fs::read_to_string(home.log_path()).unwrap();
    assert!(
        log.contains("DEBUG"),
        "MALT_LOG=debug logs at debug level:\n{log}"
    );

    for (where_, text) in &written {
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "a token ({}…) appears in {where_}",
                &secret[..12]
            );
        }
        assert!(
            !text.contains(CLIENT_SECRET),
            "the client secret appears in {where_}"
        );
    }
}
