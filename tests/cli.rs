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

/// The PATCHes the fake accepted, as `(id, field=value, …)`.
fn patches(fake: &FakeMal) -> Vec<(u64, Vec<(String, String)>)> {
    fake.patches()
        .into_iter()
        .map(|p| (p.id, p.form.clone()))
        .collect()
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
