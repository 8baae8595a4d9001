//! The commands for scripts (`malt list`, `show`, `progress`, `set`, `add`, `sync`, `status`,
//! `completions`, `man`): the real binary run with assert_cmd against the stateful fakes, each
//! test in a home of its own. Output is checked field by field; every bad input gets its exit
//! code and one sentence, and changes nothing.

mod support;

#[path = "e2e/harness.rs"]
mod harness;

use assert_cmd::Command;
use harness::{BIN, Home, seed};
use serde_json::Value;
use support::mal::{Anime, FakeMal, Manga};

/// `malt ARGS` in `home`'s environment, nothing on stdin.
fn malt(home: &Home, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_clear()
        .envs(home.env())
        .current_dir(home.path())
        .write_stdin("")
        .timeout(harness::TIMEOUT);
    cmd
}

/// A home logged in to `fake` (seeded with [`seed`]) whose list has been synced once.
fn synced_home(fake: &FakeMal) -> Home {
    seed(fake);
    let home = Home::for_fake(fake);
    home.log_in(fake);
    malt(&home, &["sync"]).assert().success();
    home
}

/// The output of a successful command as JSON.
fn json(home: &Home, args: &[&str]) -> Value {
    let out = malt(home, args)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    serde_json::from_slice(&out).unwrap_or_else(|e| {
        panic!(
            "{args:?} printed no JSON ({e}):\n{}",
            String::from_utf8_lossy(&out)
        )
    })
}

fn stdout(assert: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&assert.get_output().stdout).into_owned()
}

fn stderr(assert: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&assert.get_output().stderr).into_owned()
}

// ---------------------------------------------------------------------------------------------
// list / show
// ---------------------------------------------------------------------------------------------

#[test]
fn list_json_writes_every_documented_field() {
    let fake = FakeMal::start_background();
    let home = synced_home(&fake);
    let list = json(&home, &["list", "--json"]);
    let entries = list.as_array().expect("an array");
    let titles: Vec<&str> = entries
        .iter()
        .map(|e| e["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        titles,
        ["Bocchi the Rock!", "Kill la Kill", "Mushishi", "One Piece"],
        "the watching list, NSFW entry included, by title; Cowboy Bebop is completed"
    );
    let bocchi = &entries[0];
    assert_eq!(bocchi["service"], "mal");
    assert_eq!(bocchi["kind"], "anime");
    assert_eq!(bocchi["id"], 101);
    assert_eq!(bocchi["status"], "watching");
    assert_eq!(bocchi["progress"], 5);
    assert_eq!(bocchi["total"], 12);
    assert_eq!(bocchi["score"], 9);
    assert_eq!(bocchi["rewatching"], false);
    assert_eq!(bocchi["pending"], 0);
    assert!(bocchi["updated_at"].is_string(), "{bocchi}");
    let one_piece = &entries[3];
    assert_eq!(one_piece["total"], Value::Null, "MAL's 0 episodes: unknown");
    assert_eq!(one_piece["score"], Value::Null, "no score");
    let all = json(&home, &["list", "--status", "all", "--json"]);
    let bebop = all
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == 105)
        .expect("Cowboy Bebop with --status all");
    assert_eq!(bebop["status"], "completed");
    let completed = json(&home, &["list", "--status", "completed", "--json"]);
    assert_eq!(completed.as_array().unwrap().len(), 1);
    let manga = json(&home, &["list", "--kind", "manga", "--json"]);
    assert_eq!(manga, Value::Array(vec![]));
}

#[test]
fn list_reads_the_cache_and_asks_nothing_of_the_network() {
    let fake = FakeMal::start_background();
    let home = synced_home(&fake);
    let before = fake.requests().len();
    fake.go_down();
    let out = malt(&home, &["list"]).assert().success();
    let text = stdout(&out);
    for title in harness::TITLES {
        assert!(text.contains(title), "{title} missing:\n{text}");
    }
    assert!(text.contains("5 / 12"), "{text}");
    assert!(!text.contains('\u{1b}'), "no colours when piped:\n{text}");
    assert_eq!(fake.requests().len(), before, "no request");
}

#[test]
fn show_finds_one_entry_by_a_fuzzy_title_or_its_id() {
    let fake = FakeMal::start_background();
    let home = synced_home(&fake);
    let shown = json(&home, &["show", "bocchi", "--json"]);
    assert_eq!(shown["id"], 101);
    assert_eq!(shown["title"], "Bocchi the Rock!");
    assert_eq!(shown["pending_changes"], Value::Array(vec![]));
    let by_id = json(&home, &["show", "mal:104", "--json"]);
    assert_eq!(by_id["title"], "Mushishi");
    let out = malt(&home, &["show", "kill la kill"]).assert().success();
    let text = stdout(&out);
    assert!(text.contains("Kill la Kill"), "{text}");
    assert!(text.contains("2 / 24"), "{text}");
    assert!(text.contains("mal:103"), "{text}");
}

// ---------------------------------------------------------------------------------------------
// progress
// ---------------------------------------------------------------------------------------------

#[test]
fn progress_plus_one_sends_exactly_one_request_and_says_it_was_saved() {
    let fake = FakeMal::start_background();
    let home = synced_home(&fake);
    let before = fake.requests().len();
    let out = malt(&home, &["progress", "bocchi", "+1"]).assert().code(0);
    let text = stdout(&out);
    assert!(
        text.contains("Bocchi the Rock!: episode 6 of 12") && text.contains("saved on MyAnimeList"),
        "{text}"
    );
    assert_eq!(
        fake.requests().len(),
        before + 1,
        "one request: the change (the list was fetched moments ago)"
    );
    assert_eq!(harness::patched(&fake, 101), ["6"]);
    let shown = json(&home, &["show", "mal:101", "--json"]);
    assert_eq!(shown["progress"], 6);
    assert_eq!(shown["pending"], 0);
}

#[test]
fn progress_counts_down_sets_counts_and_refuses_counts_above_the_total() {
    let fake = FakeMal::start_background();
    let home = synced_home(&fake);
    malt(&home, &["progress", "bocchi", "-1"]).assert().code(0);
    malt(&home, &["progress", "bocchi", "10"]).assert().code(0);
    assert_eq!(harness::patched(&fake, 101), ["4", "10"]);
    let before = fake.requests().len();
    let out = malt(&home, &["progress", "bocchi", "13"]).assert().code(2);
    assert!(
        stderr(&out).contains("Bocchi the Rock! has 12 episodes"),
        "{}",
        stderr(&out)
    );
    let out = malt(&home, &["progress", "bocchi", "+3"]).assert().code(2);
    assert!(stderr(&out).contains("has 12 episodes"), "{}", stderr(&out));
    let out = malt(&home, &["progress", "bocchi", "+0"]).assert().code(0);
    assert!(
        stdout(&out).contains("nothing to change"),
        "{}",
        stdout(&out)
    );
    assert_eq!(fake.requests().len(), before, "nothing sent");
    assert_eq!(fake.watched(101), Some(10));
}

#[test]
fn the_last_episode_is_completed_only_when_asked() {
    let fake = FakeMal::start_background();
    fake.add_anime(Anime {
        watched: 10,
        ..Anime::new(201, "Mob Psycho 100", 12)
    });
    let home = Home::for_fake(&fake);
    home.log_in(&fake);
    malt(&home, &["sync"]).assert().success();
    let out = malt(&home, &["progress", "mob", "+1"]).assert().code(0);
    assert!(!stdout(&out).contains("last episode"), "{}", stdout(&out));
    let out = malt(&home, &["progress", "mob", "+1"]).assert().code(0);
    let text = stdout(&out);
    assert!(
        text.contains("That was the last episode: `malt set mal:201 --status completed`"),
        "{text}"
    );
    assert_eq!(fake.status(201).as_deref(), Some("watching"));
    // Back one, then forward with --complete: one request that also completes it.
    malt(&home, &["progress", "mob", "11"]).assert().code(0);
    let before = fake.patches().len();
    let out = malt(&home, &["progress", "mob", "+1", "--complete"])
        .assert()
        .code(0);
    assert!(
        stdout(&out).contains("episode 12 of 12, completed"),
        "{}",
        stdout(&out)
    );
    let sent = &fake.patches()[before..];
    assert_eq!(sent.len(), 1, "one request");
    assert_eq!(sent[0].get("status"), Some("completed"));
    assert_eq!(sent[0].get("num_watched_episodes"), Some("12"));
    assert!(sent[0].get("finish_date").is_some(), "{:?}", sent[0].form);
}

#[test]
fn the_first_count_of_a_planned_title_starts_it() {
    let fake = FakeMal::start_background();
    fake.add_anime(Anime {
        status: "plan_to_watch",
        ..Anime::new(301, "Mushishi Zoku Shou", 10)
    });
    let home = Home::for_fake(&fake);
    home.log_in(&fake);
    malt(&home, &["sync"]).assert().success();
    let out = malt(&home, &["progress", "mal:301", "+1"]).assert().code(0);
    assert!(
        stdout(&out).contains("episode 1 of 10, watching"),
        "{}",
        stdout(&out)
    );
    let sent = fake.patches();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].get("status"), Some("watching"));
    assert_eq!(sent[0].get("num_watched_episodes"), Some("1"));
    assert!(sent[0].get("start_date").is_some(), "{:?}", sent[0].form);
}

#[test]
fn an_ambiguous_query_lists_the_candidates_and_changes_nothing() {
    let fake = FakeMal::start_background();
    fake.add_anime(Anime {
        watched: 1,
        ..Anime::new(401, "Mushishi", 26)
    });
    fake.add_anime(Anime {
        watched: 2,
        ..Anime::new(402, "Mushishi Zoku Shou", 10)
    });
    let home = Home::for_fake(&fake);
    home.log_in(&fake);
    malt(&home, &["sync"]).assert().success();
    let before = fake.requests().len();
    let out = malt(&home, &["progress", "mushi", "+1"]).assert().code(2);
    let err = stderr(&out);
    assert!(err.contains("matches several entries"), "{err}");
    assert!(err.contains("mal:401") && err.contains("mal:402"), "{err}");
    // The exact title is not ambiguous.
    malt(&home, &["progress", "mushishi", "+1"])
        .assert()
        .code(0);
    assert_eq!(harness::patched(&fake, 401), ["2"]);
    assert_eq!(fake.requests().len(), before + 1);
    let out = malt(&home, &["progress", "zzzz", "+1"]).assert().code(1);
    assert!(
        stderr(&out).contains("nothing on your list matches \"zzzz\""),
        "{}",
        stderr(&out)
    );
    malt(&home, &["progress", "  ", "+1"]).assert().code(2);
    let out = malt(&home, &["progress", "mal:abc", "+1"]).assert().code(2);
    assert!(
        stderr(&out).contains("not a MyAnimeList id"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn offline_a_change_is_queued_with_exit_3_and_sent_by_the_next_malt() {
    let fake = FakeMal::start_background();
    let home = synced_home(&fake);
    fake.go_down();
    let out = malt(&home, &["progress", "bocchi", "+1", "--wait", "3"])
        .assert()
        .code(3);
    let text = stdout(&out);
    assert!(
        text.contains("queued: will be sent by the next malt") && text.contains("offline"),
        "{text}"
    );
    let shown = json(&home, &["show", "bocchi", "--json"]);
    assert_eq!(shown["progress"], 6, "shown with the change");
    assert_eq!(shown["pending"], 1);
    assert_eq!(shown["pending_changes"][0], "episode 6");
    fake.go_up();
    let out = malt(&home, &["sync"]).assert().code(0);
    assert!(stdout(&out).contains("1 change sent"), "{}", stdout(&out));
    assert_eq!(harness::patched(&fake, 101), ["6"], "sent once");
    assert_eq!(json(&home, &["show", "bocchi", "--json"])["pending"], 0);
}

#[test]
fn a_refused_change_exits_1_with_the_services_reason() {
    let fake = FakeMal::start_background();
    let home = synced_home(&fake);
    let body = std::fs::read_to_string("tests/fixtures/mal/error-400-bad_request.json").unwrap();
    fake.fail_next(1, 400, &body, "application/json");
    let out = malt(&home, &["set", "bocchi", "--score", "7"])
        .assert()
        .code(1);
    let err = stderr(&out);
    assert!(err.contains("MyAnimeList refused it"), "{err}");
    let status = json(&home, &["status", "--json"]);
    let mal = &status[0];
    assert_eq!(mal["held"][0]["title"], "Bocchi the Rock!");
    assert_eq!(mal["held"][0]["conflict"], false);
}

/// Makes the cached list look as if it was fetched an hour ago.
fn age_the_cache(home: &Home) {
    let db = rusqlite::Connection::open(home.data_dir().join("malt.db")).unwrap();
    let hour_ago = (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1)).to_string();
    db.execute(
        "UPDATE meta SET value = ?1 WHERE service = 'mal' AND key = 'last_sync'",
        [hour_ago],
    )
    .unwrap();
}

#[test]
fn an_edit_made_on_the_website_is_never_overwritten() {
    let fake = FakeMal::start_background();
    let home = synced_home(&fake);
    age_the_cache(&home);
    fake.set_watched(101, 7);
    let out = malt(&home, &["progress", "bocchi", "+1"]).assert().code(1);
    let err = stderr(&out);
    assert!(
        err.contains("changed elsewhere to episode 7 (yours: episode 6)"),
        "{err}"
    );
    assert!(fake.patches().is_empty(), "nothing overwritten");
    let status = json(&home, &["status", "--json"]);
    assert_eq!(status[0]["held"][0]["conflict"], true);
}

#[test]
fn an_old_cache_is_checked_with_one_look_before_the_change() {
    let fake = FakeMal::start_background();
    let home = synced_home(&fake);
    age_the_cache(&home);
    let before = fake.requests().len();
    malt(&home, &["progress", "bocchi", "+1"]).assert().code(0);
    let asked: Vec<String> = fake.requests()[before..]
        .iter()
        .map(|r| r.method.clone())
        .collect();
    assert_eq!(asked, ["GET", "PATCH"]);
}

// ---------------------------------------------------------------------------------------------
// set / add
// ---------------------------------------------------------------------------------------------

#[test]
fn set_changes_several_fields_in_one_request_and_checks_each() {
    let fake = FakeMal::start_background();
    let home = synced_home(&fake);
    let out = malt(
        &home,
        &[
            "set",
            "kill la kill",
            "--score",
            "8",
            "--start",
            "2026-11-01",
        ],
    )
    .assert()
    .code(0);
    assert!(
        stdout(&out).contains("Kill la Kill: score 8, started 2026-11-01"),
        "{}",
        stdout(&out)
    );
    let sent = fake.patches();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].get("score"), Some("8"));
    assert_eq!(sent[0].get("start_date"), Some("2026-11-01"));
    malt(&home, &["set", "mal:103", "--status", "completed"])
        .assert()
        .code(0);
    assert_eq!(fake.status(103).as_deref(), Some("completed"));
    assert_eq!(
        fake.watched(103),
        Some(24),
        "completion sets the whole count"
    );
    malt(&home, &["set", "mal:103", "--rewatching", "on"])
        .assert()
        .code(0);
    assert_eq!(fake.rewatching(103), Some(true));
    let before = fake.requests().len();
    let out = malt(&home, &["set", "mal:103", "--score", "11"])
        .assert()
        .code(2);
    assert!(
        stderr(&out).contains("11 is not a score in this account's format (1–10, or 0 for none)"),
        "{}",
        stderr(&out)
    );
    let out = malt(&home, &["set", "mal:103", "--finish", "2026-02-30"])
        .assert()
        .code(2);
    assert!(stderr(&out).contains("is not a date"), "{}", stderr(&out));
    malt(&home, &["set", "mal:103"]).assert().code(2);
    let out = malt(&home, &["set", "mal:103", "--score", "8"])
        .assert()
        .code(0);
    assert!(
        stdout(&out).contains("nothing to change"),
        "{}",
        stdout(&out)
    );
    assert_eq!(fake.requests().len(), before, "nothing sent");
}

#[test]
fn add_lists_several_hits_and_adds_the_one_picked() {
    let fake = FakeMal::start_background();
    let home = synced_home(&fake);
    fake.add_to_catalogue(Anime::new(52991, "Sousou no Frieren", 28));
    fake.add_to_catalogue(Anime::new(59978, "Sousou no Frieren 2nd Season", 10));
    let before = fake.patches().len();
    let out = malt(&home, &["add", "frieren"]).assert().code(2);
    let err = stderr(&out);
    assert!(err.contains("add one with --pick N"), "{err}");
    assert!(
        err.contains("1  Sousou no Frieren") && err.contains("2  Sousou no Frieren 2nd Season"),
        "{err}"
    );
    assert_eq!(fake.patches().len(), before);
    let picked = if err.find("1  Sousou no Frieren 2nd").is_some() {
        "2"
    } else {
        "1"
    };
    let out = malt(
        &home,
        &["add", "frieren", "--pick", picked, "--status", "watching"],
    )
    .assert()
    .code(0);
    assert!(
        stdout(&out).contains("Sousou no Frieren: added to watching"),
        "{}",
        stdout(&out)
    );
    assert!(fake.on_list(52991));
    assert_eq!(fake.status(52991).as_deref(), Some("watching"));
    let listed = json(&home, &["show", "mal:52991", "--json"]);
    assert_eq!(listed["status"], "watching");
    let out = malt(&home, &["add", "frieren", "--pick", picked])
        .assert()
        .code(0);
    assert!(
        stdout(&out).contains("on your MyAnimeList list already"),
        "{}",
        stdout(&out)
    );
    malt(&home, &["add", "frieren", "--pick", "9"])
        .assert()
        .code(2);
    let out = malt(&home, &["add", "fr"]).assert().code(2);
    assert!(
        stderr(&out).contains("at least 3 characters"),
        "{}",
        stderr(&out)
    );
}

// ---------------------------------------------------------------------------------------------
// sync / status
// ---------------------------------------------------------------------------------------------

#[test]
fn sync_fetches_every_list_and_says_so_in_one_line() {
    let fake = FakeMal::start_background();
    seed(&fake);
    fake.add_manga(Manga::new(2, "Berserk", 0, 0));
    let home = Home::for_fake(&fake);
    home.log_in(&fake);
    let out = malt(&home, &["sync"]).assert().code(0);
    let text = stdout(&out);
    assert_eq!(
        text.trim(),
        "synced: MyAnimeList 5 anime, 1 manga · 0 changes sent",
        "{text}"
    );
    assert!(
        stderr(&out).is_empty(),
        "no progress bar when not a terminal"
    );
    fake.go_down();
    let out = malt(&home, &["sync"]).assert().code(1);
    assert!(stderr(&out).contains("offline"), "{}", stderr(&out));
}

#[test]
fn status_says_who_is_logged_in_and_what_waits_without_a_secret() {
    let fake = FakeMal::start_background();
    fake.set_user("alice");
    seed(&fake);
    let home = Home::for_fake(&fake);
    let out = malt(&home, &["status"]).assert().code(0);
    assert!(
        stdout(&out).contains("not logged in: run `malt --login`"),
        "{}",
        stdout(&out)
    );
    let (access, refresh) = home.log_in(&fake);
    malt(&home, &["sync"]).assert().code(0);
    fake.go_down();
    malt(&home, &["progress", "bocchi", "+1", "--wait", "1"])
        .assert()
        .code(3);
    let out = malt(&home, &["status"]).assert().code(0);
    let text = stdout(&out);
    assert!(text.contains("MyAnimeList"), "{text}");
    assert!(text.contains("login renewed in the background"), "{text}");
    assert!(text.contains("1 change waiting"), "{text}");
    let status = json(&home, &["status", "--json"]);
    assert_eq!(status[0]["service"], "mal");
    assert_eq!(status[0]["logged_in"], true);
    assert_eq!(status[0]["pending"], 1);
    assert_eq!(status[0]["session_ends"], Value::Null);
    assert!(status[0]["last_sync"].is_string());
    for args in [
        vec!["status"],
        vec!["status", "--json"],
        vec!["list", "--json"],
        vec!["show", "bocchi", "--json"],
        vec!["progress", "bocchi", "+1", "--wait", "1"],
        vec!["sync"],
    ] {
        let output = malt(&home, &args).output().unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            !all.contains(&access) && !all.contains(&refresh),
            "a token in the output of {args:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------------------------------

#[test]
fn every_bad_input_is_one_sentence_with_its_exit_code() {
    let fake = FakeMal::start_background();
    seed(&fake);
    let home = Home::for_fake(&fake);
    // Not logged in.
    let out = malt(&home, &["list"]).assert().code(1);
    assert!(
        stderr(&out).contains("not logged in yet: run `malt --login`"),
        "{}",
        stderr(&out)
    );
    home.log_in(&fake);
    // Logged in, nothing cached.
    let out = malt(&home, &["list"]).assert().code(1);
    assert!(
        stderr(&out).contains("run `malt sync` first"),
        "{}",
        stderr(&out)
    );
    let out = malt(&home, &["progress", "bocchi", "+1"]).assert().code(1);
    assert!(
        stderr(&out).contains("run `malt sync` first"),
        "{}",
        stderr(&out)
    );
    malt(&home, &["sync"]).assert().code(0);
    // Usage.
    for args in [
        vec!["list", "--service", "kitsu"],
        vec!["list", "--status", "someday"],
        vec!["list", "--kind", "novel"],
        vec!["progress", "bocchi", "one"],
        vec!["progress", "bocchi"],
        vec!["frobnicate"],
    ] {
        let out = malt(&home, &args).assert().code(2);
        assert!(!stderr(&out).is_empty(), "{args:?} said nothing");
    }
    // A service that is not set up.
    let out = malt(&home, &["list", "--service", "anilist"])
        .assert()
        .code(1);
    assert!(
        stderr(&out).contains("AniList is not set up"),
        "{}",
        stderr(&out)
    );
    // A damaged config.
    home.write_config("[mal\nclient_id = ");
    let out = malt(&home, &["list"]).assert().code(1);
    let err = stderr(&out);
    assert!(err.contains("config.toml: line 1"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one sentence: {err}");
}

#[test]
fn a_piped_or_no_color_output_has_no_escape_codes() {
    let fake = FakeMal::start_background();
    let home = synced_home(&fake);
    for args in [vec!["list"], vec!["status"], vec!["show", "bocchi"]] {
        let out = malt(&home, &args).env("NO_COLOR", "1").assert().code(0);
        assert!(!stdout(&out).contains('\u{1b}'), "{args:?}");
    }
    let out = malt(&home, &["progress", "zzz", "+1"]).assert().code(1);
    assert!(!stderr(&out).contains('\u{1b}'));
}

// ---------------------------------------------------------------------------------------------
// Completions and the manual page
// ---------------------------------------------------------------------------------------------

#[test]
fn the_completions_parse_and_the_man_page_renders() {
    let home = Home::new();
    let out = malt(&home, &["completions", "bash"]).assert().code(0);
    let script = home.path().join("malt.bash");
    std::fs::write(&script, &out.get_output().stdout).unwrap();
    let checked = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .expect("bash");
    assert!(checked.status.success(), "{checked:?}");
    let text = stdout(&out);
    assert!(
        text.contains("progress") && text.contains("--json"),
        "subcommands completed"
    );
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let out = malt(&home, &["completions", shell]).assert().code(0);
        assert!(stdout(&out).contains("malt"), "{shell}");
    }
    malt(&home, &["completions", "tcsh"]).assert().code(2);
    let out = malt(&home, &["man"]).assert().code(0);
    let page = home.path().join("malt.1");
    std::fs::write(&page, &out.get_output().stdout).unwrap();
    let rendered = std::process::Command::new("man")
        .arg("-l")
        .arg(&page)
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "80")
        .output()
        .expect("man");
    assert!(rendered.status.success(), "{rendered:?}");
    let text = String::from_utf8_lossy(&rendered.stdout);
    assert!(text.contains("malt") && text.contains("progress"), "{text}");
    assert!(text.contains("Exit codes"), "{text}");
}

// ---------------------------------------------------------------------------------------------
// The list screen and the commands at once
// ---------------------------------------------------------------------------------------------

#[test]
fn a_change_made_from_the_shell_shows_in_the_running_list_and_is_sent_once() {
    require_tmux!();
    let fake = FakeMal::start_background();
    let home = synced_home(&fake);
    let tmux = harness::Tmux::start(&home, &[]);
    tmux.wait_for("the list, synced", harness::TIMEOUT, harness::list_synced);
    let requests_before = fake.patches().len();
    let started = std::time::Instant::now();
    malt(&home, &["progress", "bocchi", "+1"]).assert().code(0);
    let screen = tmux.wait_for("the new count in the list", harness::TIMEOUT, |s| {
        harness::row_has(s, "Bocchi the Rock!", "6 / 12")
            && !harness::row_has(s, "Bocchi the Rock!", "↑")
    });
    eprintln!("shown {:?} after the command started", started.elapsed());
    assert!(harness::list_synced(&screen));
    assert_eq!(
        fake.patches().len(),
        requests_before + 1,
        "exactly one request"
    );
    assert_eq!(harness::patched(&fake, 101), ["6"]);
    tmux.quit_restored();
}

#[test]
fn the_list_and_many_commands_at_once_send_each_change_once_and_in_order() {
    require_tmux!();
    let fake = FakeMal::start_background();
    let home = synced_home(&fake);
    // Slow answers, so that the commands' changes overlap in the outbox.
    fake.set_latency(std::time::Duration::from_millis(150));
    let tmux = harness::Tmux::start(&home, &[]);
    tmux.wait_for("the list, synced", harness::TIMEOUT, harness::list_synced);
    let runs: Vec<std::thread::JoinHandle<i32>> = (0..5)
        .map(|_| {
            let mut cmd = malt(&home, &["progress", "bocchi", "+1", "--wait", "15"]);
            std::thread::spawn(move || cmd.output().map_or(-1, |o| o.status.code().unwrap_or(-1)))
        })
        .collect();
    // The list's own + in the middle of them.
    tmux.keys(&["+"]);
    let codes: Vec<i32> = runs.into_iter().map(|r| r.join().unwrap()).collect();
    assert!(codes.iter().all(|c| *c == 0), "{codes:?}");
    // The list's + is built on the count the database holds, or, when a command changed it in the
    // moment before, refused with a word (never sent on top of an old count).
    let screen = tmux.wait_for("every change confirmed", harness::TIMEOUT, |s| {
        (harness::row_has(s, "Bocchi the Rock!", "11 / 12")
            || (harness::row_has(s, "Bocchi the Rock!", "10 / 12")
                && s.contains("changed in another malt meanwhile")))
            && !harness::row_has(s, "Bocchi the Rock!", "↑")
    });
    let sent = harness::patched(&fake, 101);
    let expected: Vec<String> = (6..=(5 + sent.len() as u32))
        .map(|n| n.to_string())
        .collect();
    assert_eq!(sent, expected, "each change once, in order:\n{screen}");
    assert!(sent.len() == 5 || sent.len() == 6, "{sent:?}");
    assert_eq!(fake.watched(101), Some(5 + sent.len() as u32));
    tmux.quit_restored();
}

// ---------------------------------------------------------------------------------------------
// More than one service
// ---------------------------------------------------------------------------------------------

#[test]
fn with_mal_and_anilist_each_entry_is_named_by_its_service_and_scored_in_its_format() {
    use support::anilist::{DEFAULT_USER_ID, Entry, FakeAnilist, ListStatus, Media};
    let mal = FakeMal::start_background();
    mal.add_anime(Anime {
        watched: 5,
        ..Anime::new(52991, "Sousou no Frieren", 28)
    });
    let anilist = FakeAnilist::start_background();
    anilist.add_media(Media::anime(154587, "Sousou no Frieren", Some(28)));
    anilist.add_entry(
        DEFAULT_USER_ID,
        Entry::new(154587, ListStatus::Current)
            .progress(11)
            .score_raw(85),
    );
    let home = Home::new();
    home.write_config(&format!(
        "{}\n{}",
        home.mal_config(&mal),
        home.anilist_config(&anilist)
    ));
    home.log_in(&mal);
    home.log_in_anilist(&anilist);
    let out = malt(&home, &["sync"]).assert().code(0);
    assert!(
        stdout(&out).contains("MyAnimeList 1 anime, 0 manga; AniList 1 anime, 0 manga"),
        "{}",
        stdout(&out)
    );
    let list = json(&home, &["list", "--json"]);
    let services: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["service"].as_str().unwrap())
        .collect();
    assert_eq!(services, ["anilist", "mal"]);
    assert_eq!(list[0]["score"], 8.5, "AniList's 10-point decimal format");
    assert_eq!(list[0]["id"], 154587);
    // The same title on both: not guessed.
    let out = malt(&home, &["progress", "frieren", "+1"]).assert().code(2);
    let err = stderr(&out);
    assert!(
        err.contains("mal:52991") && err.contains("anilist:154587"),
        "{err}"
    );
    malt(
        &home,
        &["progress", "frieren", "+1", "--service", "anilist"],
    )
    .assert()
    .code(0);
    assert_eq!(
        anilist.entry(DEFAULT_USER_ID, 154587).map(|e| e.progress),
        Some(12)
    );
    assert!(mal.patches().is_empty(), "MyAnimeList untouched");
    malt(&home, &["set", "anilist:154587", "--score", "9.5"])
        .assert()
        .code(0);
    assert_eq!(
        json(&home, &["show", "anilist:154587", "--json"])["score"],
        9.5
    );
    let out = malt(&home, &["set", "anilist:154587", "--score", "95"])
        .assert()
        .code(2);
    assert!(stderr(&out).contains("0.1–10.0"), "{}", stderr(&out));
    malt(&home, &["progress", "mal:52991", "+1"])
        .assert()
        .code(0);
    assert_eq!(mal.watched(52991), Some(6));
}

#[test]
fn login_is_also_a_command() {
    let home = Home::new();
    home.write_config("[mal]\nclient_id = \"x\"\n");
    let out = malt(&home, &["login", "anilist"]).assert().code(1);
    assert!(
        stderr(&out).contains("there is no [anilist] table"),
        "{}",
        stderr(&out)
    );
    malt(&home, &["login", "kitsu"]).assert().code(2);
}
