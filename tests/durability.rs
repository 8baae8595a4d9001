//! Durability of the outbox: malt killed with SIGKILL over and over while it delivers, two TUIs on
//! one data directory, two processes draining one outbox, several malts creating a new database at
//! once, and a change left behind by a killed run. The real binary, in tmux, against the stateful
//! fake MyAnimeList; the outbox is read and filled through the library.
//!
//! Where tmux is missing, the full-screen tests print "skipping: tmux not installed" and pass.

mod support;

#[path = "e2e/harness.rs"]
mod harness;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use harness::{Home, TIMEOUT, Tmux, row_has, status_bar, synced};
use malt::domain::{Change, ListEntry, MediaKind, Service, Status};
use malt::store::Store;
use support::mal::{Anime, FakeMal};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn db_path(home: &Home) -> PathBuf {
    home.data_dir().join("malt.db")
}

/// Queues `per_entry` changes for each of `ids` through the library, round-robin across the
/// entries: every entry goes 0 → 1 → … → `per_entry`, its changes interleaved with the others'.
fn prequeue(home: &Home, ids: &[u64], per_entry: u32) {
    let mut store = Store::open(&db_path(home)).expect("open the database");
    let now = malt::sync::now_ms();
    for n in 1..=per_entry {
        for &id in ids {
            store
                .enqueue(
                    Service::Mal,
                    MediaKind::Anime,
                    id,
                    Change::progress(n),
                    n - 1,
                    now,
                )
                .expect("enqueue");
        }
    }
    assert_eq!(
        store.pending(Service::Mal).unwrap().len(),
        ids.len() * per_entry as usize
    );
}

/// How many changes are still waiting in the outbox (refused ones included: none may be).
fn outbox_len(home: &Home) -> usize {
    let store = Store::open(&db_path(home)).expect("open the database");
    let refused = store.refused(Service::Mal).expect("read refused changes");
    assert!(refused.is_empty(), "changes were refused: {refused:?}");
    store.pending(Service::Mal).expect("read the outbox").len()
}

/// Waits until the outbox is empty; fails with the screens of `panes` otherwise.
fn wait_outbox_empty(home: &Home, panes: &[&Tmux], timeout: Duration) {
    let start = Instant::now();
    loop {
        let left = outbox_len(home);
        if left == 0 {
            return;
        }
        if start.elapsed() > timeout {
            for (i, pane) in panes.iter().enumerate().skip(1) {
                eprintln!("--- screen of malt #{} ---\n{}", i + 1, pane.screen());
            }
            panes[0].fail(
                &format!("{left} changes still queued after {timeout:?}"),
                &panes[0].screen(),
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `num_watched_episodes` of every PATCH the fake received, by entry, in arrival order.
fn patch_values(fake: &FakeMal) -> BTreeMap<u64, Vec<u32>> {
    let mut by_id: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
    for p in fake.patches() {
        let value = p
            .get("num_watched_episodes")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("a PATCH without a readable num_watched_episodes: {p:?}"));
        by_id.entry(p.id).or_default().push(value);
    }
    by_id
}

/// The pid of the parent process of `pid`, and its command name.
fn stat(pid: u32) -> Option<(u32, String)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid …`; comm may hold spaces and parentheses.
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text[open + 1..close].to_string();
    let mut rest = text[close + 1..].split_whitespace();
    let _state = rest.next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some((ppid, comm))
}

/// Every process below `root` (children, grandchildren, …).
fn descendants(root: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    for dir in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        if let Some(pid) = dir.file_name().to_str().and_then(|s| s.parse::<u32>().ok())
            && let Some((ppid, _)) = stat(pid)
        {
            parent_of.push((pid, ppid));
        }
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            parent_of
                .iter()
                .filter(|(_, ppid)| *ppid == parent)
                .map(|(pid, _)| *pid),
        );
        i += 1;
    }
    found.remove(0);
    found
}

/// Whether `pid` is the malt binary under test (after `env` has exec'd it).
fn is_malt(pid: u32) -> bool {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .is_ok_and(|exe| exe.to_string_lossy().starts_with(harness::BIN))
}

/// The pid of the malt running in `tmux`'s pane (a shell runs `env -i … malt`; env execs malt).
fn malt_pid(tmux: &Tmux) -> u32 {
    let shell: u32 = tmux
        .format("#{pane_pid}")
        .parse()
        .expect("tmux gives the pane's pid");
    let start = Instant::now();
    loop {
        if let Some(pid) = descendants(shell).into_iter().find(|&p| is_malt(p)) {
            return pid;
        }
        if start.elapsed() > TIMEOUT {
            tmux.fail(
                &format!("no malt process under the pane's shell {shell}"),
                &tmux.screen(),
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Whether `pid` still exists and has not exited (a zombie counts as gone).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(text) => text
            .rfind(')')
            .and_then(|i| text[i + 1..].split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Sends SIGKILL to `pid` and waits until it is gone and reaped by the pane's shell.
fn kill_9(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -9 {pid} failed");
    let start = Instant::now();
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        assert!(
            start.elapsed() < TIMEOUT,
            "malt ({pid}) still there after kill -9 (alive: {})",
            alive(pid)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A small deterministic PRNG (xorshift64*), seeded per round.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> XorShift {
        XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-ish in `lo..=hi`.
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

// ---------------------------------------------------------------------------------------------
// 1. kill -9, twenty times, while the outbox drains
// ---------------------------------------------------------------------------------------------

#[test]
fn kill_9_mid_delivery_loses_no_change_and_never_goes_back() {
    require_tmux!();
    const ENTRIES: u64 = 20;
    const PER_ENTRY: u32 = 5;
    const ROUNDS: u64 = 20;
    let fake = FakeMal::start_background();
    let ids: Vec<u64> = (1..=ENTRIES).map(|i| 500 + i).collect();
    for &id in &ids {
        fake.add_anime(Anime::new(id, &format!("Durable {id}"), 24));
    }
    let home = Home::for_fake(&fake);
    home.log_in(&fake);
    prequeue(&home, &ids, PER_ENTRY);
    // Slow enough that the 100 changes take most of the 20 rounds to deliver, so the kills land
    // mid-queue (at 60 ms the outbox was empty after 9 of the 20 rounds).
    fake.set_latency(Duration::from_millis(120));

    let mut kills_mid_queue = 0;
    for round in 0..ROUNDS {
        let wait = Duration::from_millis(XorShift::new(round + 1).between(100, 1500));
        let before = outbox_len(&home);
        let tmux = Tmux::start(&home, &[]);
        let started = Instant::now();
        let pid = malt_pid(&tmux);
        std::thread::sleep(wait.saturating_sub(started.elapsed()));
        kill_9(pid);
        drop(tmux);
        let after = outbox_len(&home);
        if after > 0 {
            kills_mid_queue += 1;
        }
        eprintln!(
            "round {round:2}: killed after {:4} ms; outbox {before:3} -> {after:3}; {} PATCHes so far",
            wait.as_millis(),
            fake.patches().len()
        );
    }

    let tmux = Tmux::start(&home, &[]);
    wait_outbox_empty(&home, &[&tmux], Duration::from_secs(40));
    let titles: Vec<String> = ids.iter().map(|id| format!("Durable {id}")).collect();
    let titles: Vec<&str> = titles.iter().map(String::as_str).collect();
    tmux.wait_for("the list, nothing pending", TIMEOUT, |s| {
        synced(&titles)(s) && !s.contains('↑') && !status_bar(s).contains("pending")
    });
    tmux.quit();

    let sent = patch_values(&fake);
    let mut repeats = 0;
    let mut problems = Vec::new();
    for &id in &ids {
        let values = sent.get(&id).cloned().unwrap_or_default();
        if fake.watched(id) != Some(PER_ENTRY) {
            problems.push(format!(
                "{id}: the fake holds {:?}, not {PER_ENTRY}",
                fake.watched(id)
            ));
        }
        if let Some(bad) = values.iter().find(|v| !(1..=PER_ENTRY).contains(v)) {
            problems.push(format!("{id}: sent {bad}, never queued: {values:?}"));
        }
        if values.windows(2).any(|w| w[1] < w[0]) {
            problems.push(format!("{id}: PATCHes went back: {values:?}"));
        }
        for n in 1..=PER_ENTRY {
            if !values.contains(&n) {
                problems.push(format!(
                    "{id}: the change to {n} was never sent: {values:?}"
                ));
            }
        }
        repeats += values.windows(2).filter(|w| w[0] == w[1]).count();
    }
    let strangers: Vec<u64> = sent
        .keys()
        .filter(|id| !ids.contains(id))
        .copied()
        .collect();
    if !strangers.is_empty() {
        problems.push(format!("PATCHes for entries never changed: {strangers:?}"));
    }
    let left = outbox_len(&home);
    if left != 0 {
        problems.push(format!("{left} changes left in the outbox"));
    }
    eprintln!(
        "kill -9: {} PATCHes for {} changes, {repeats} repeated (a kill between the service \
         applying a change and malt recording it); {kills_mid_queue} of {ROUNDS} kills left \
         changes queued",
        fake.patches().len(),
        ids.len() * PER_ENTRY as usize
    );
    assert!(
        problems.is_empty(),
        "{}\nall PATCHes: {sent:?}",
        problems.join("\n")
    );
    assert!(
        kills_mid_queue >= 10,
        "the kills should land while changes are still queued ({kills_mid_queue} did)"
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Two TUIs on one data directory
// ---------------------------------------------------------------------------------------------

/// Waits until `title`'s row in `pane` shows `count`; returns whether it was first seen still
/// unconfirmed (`↑`), and how long it took.
fn wait_row_count(pane: &Tmux, title: &str, count: &str) -> (bool, Duration) {
    let start = Instant::now();
    let screen = pane.wait_for(&format!("{title} at {count}"), TIMEOUT, |s| {
        row_has(s, title, count)
    });
    (row_has(&screen, title, "↑"), start.elapsed())
}

#[test]
fn two_tuis_on_one_data_dir_see_each_other_and_send_each_change_once() {
    require_tmux!();
    let fake = FakeMal::start_background();
    // Sorted by title: Alpha, Beta, Gamma.
    fake.add_anime(Anime::new(201, "Alpha Entry", 12));
    fake.add_anime(Anime::new(202, "Beta Entry", 12));
    fake.add_anime(Anime::new(203, "Gamma Entry", 12));
    let titles = ["Alpha Entry", "Beta Entry", "Gamma Entry"];
    let home = Home::for_fake(&fake);
    home.log_in(&fake);

    // One after the other: two malts creating a new database at once is test 4.
    let a = Tmux::start(&home, &[]);
    a.wait_for("A: the synced list", TIMEOUT, synced(&titles));
    let b = Tmux::start(&home, &[]);
    b.wait_for("B: the synced list", TIMEOUT, synced(&titles));
    assert!(fake.patches().is_empty(), "{:?}", fake.patches());

    // Slow enough that the change is still unconfirmed when B first sees it (B looks every second).
    fake.set_latency(Duration::from_millis(2500));
    a.wait_for("A: Alpha selected", TIMEOUT, |s| {
        row_has(s, "Alpha Entry", "›")
    });
    a.type_text("+");
    a.wait_for("A: Alpha at 1, unconfirmed", TIMEOUT, |s| {
        row_has(s, "Alpha Entry", "1 / 12") && row_has(s, "Alpha Entry", "↑")
    });
    let (pending_first, took) = wait_row_count(&b, "Alpha Entry", "1 / 12");
    if took > Duration::from_millis(3000) {
        b.fail(
            &format!("B showed A's change only after {took:?}"),
            &b.screen(),
        );
    }
    if !pending_first {
        b.fail(
            "B showed A's change as confirmed at once: it should first be ↑",
            &b.screen(),
        );
    }
    for (name, pane) in [("A", &a), ("B", &b)] {
        pane.wait_for(&format!("{name}: Alpha confirmed"), TIMEOUT, |s| {
            row_has(s, "Alpha Entry", "1 / 12")
                && !row_has(s, "Alpha Entry", "↑")
                && !status_bar(s).contains("pending")
        });
    }
    assert_eq!(fake.watched(201), Some(1));

    // Now the other way round, on another entry.
    b.type_text("j");
    b.wait_for("B: Beta selected", TIMEOUT, |s| {
        row_has(s, "Beta Entry", "›") && !row_has(s, "Alpha Entry", "›")
    });
    b.type_text("+");
    b.wait_for("B: Beta at 1", TIMEOUT, |s| {
        row_has(s, "Beta Entry", "1 / 12")
    });
    let (pending_first, took) = wait_row_count(&a, "Beta Entry", "1 / 12");
    if took > Duration::from_millis(3000) {
        a.fail(
            &format!("A showed B's change only after {took:?}"),
            &a.screen(),
        );
    }
    if !pending_first {
        a.fail(
            "A showed B's change as confirmed at once: it should first be ↑",
            &a.screen(),
        );
    }
    for (name, pane) in [("A", &a), ("B", &b)] {
        pane.wait_for(&format!("{name}: Beta confirmed"), TIMEOUT, |s| {
            row_has(s, "Beta Entry", "1 / 12")
                && !row_has(s, "Beta Entry", "↑")
                && !status_bar(s).contains("pending")
        });
    }
    assert_eq!(fake.watched(202), Some(1));

    // Long enough for a second PATCH of either change to arrive, if the other worker sent one.
    fake.set_latency(Duration::ZERO);
    std::thread::sleep(Duration::from_millis(2000));
    let sent: Vec<(u64, String)> = fake
        .patches()
        .into_iter()
        .map(|p| {
            let v = p.get("num_watched_episodes").unwrap_or("?").to_string();
            (p.id, v)
        })
        .collect();
    assert_eq!(
        sent,
        [(201, "1".to_string()), (202, "1".to_string())],
        "one PATCH per keypress, in order"
    );
    assert_eq!(outbox_len(&home), 0);
    a.quit();
    b.quit();
}

// ---------------------------------------------------------------------------------------------
// 3. Two processes draining one outbox
// ---------------------------------------------------------------------------------------------

#[test]
fn two_processes_draining_one_outbox_send_each_change_once_in_order() {
    require_tmux!();
    const PER_ENTRY: u32 = 10;
    let fake = FakeMal::start_background();
    let ids: Vec<u64> = (301..=306).collect();
    for &id in &ids {
        fake.add_anime(Anime::new(id, &format!("Shared {id}"), 24));
    }
    let home = Home::for_fake(&fake);
    home.log_in(&fake);
    prequeue(&home, &ids, PER_ENTRY);
    fake.set_latency(Duration::from_millis(50));

    let a = Tmux::start(&home, &[]);
    let b = Tmux::start(&home, &[]);
    let (pid_a, pid_b) = (malt_pid(&a), malt_pid(&b));
    assert_ne!(pid_a, pid_b);
    wait_outbox_empty(&home, &[&a, &b], Duration::from_secs(30));
    // Both are still running: neither gave up halfway.
    assert!(alive(pid_a) && alive(pid_b), "a malt died while draining");
    // A stray resend would arrive within a few latencies.
    std::thread::sleep(Duration::from_millis(500));

    let sent = patch_values(&fake);
    let want: Vec<u32> = (1..=PER_ENTRY).collect();
    let mut problems = Vec::new();
    for &id in &ids {
        let values = sent.get(&id).cloned().unwrap_or_default();
        if values != want {
            problems.push(format!("{id}: PATCHes {values:?}, expected {want:?}"));
        }
        if fake.watched(id) != Some(PER_ENTRY) {
            problems.push(format!(
                "{id}: the fake holds {:?}, not {PER_ENTRY}",
                fake.watched(id)
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(fake.patches().len(), ids.len() * PER_ENTRY as usize);
    a.quit();
    b.quit();
}

// ---------------------------------------------------------------------------------------------
// 4. Several malts started at once on a new data directory
// ---------------------------------------------------------------------------------------------

/// Two terminals opened at once on a fresh install both create the database. Each process gets
/// as far as opening it (and creating the schema) and then stops, as it has no terminal: that
/// must be the only complaint, never a database error.
#[test]
fn several_malts_starting_at_once_on_a_new_data_dir_all_open_the_database() {
    const HOMES: usize = 4;
    const PROCESSES: usize = 6;
    let fake = FakeMal::start_background();
    let mut failures = Vec::new();
    for round in 0..HOMES {
        let home = Home::for_fake(&fake);
        home.log_in(&fake);
        assert!(!db_path(&home).exists());
        let procs: Vec<harness::Proc> = (0..PROCESSES)
            .map(|_| {
                let mut cmd = home.command(&[]);
                // No backtrace for the expected "needs a terminal" error: resolving one takes a
                // debug build most of a second, six at once on two cores much longer.
                cmd.env("RUST_BACKTRACE", "0")
                    .stdin(std::process::Stdio::null());
                harness::Proc::spawn(cmd)
            })
            .collect();
        for (i, proc) in procs.into_iter().enumerate() {
            let out = proc.finish(TIMEOUT);
            let said = out.stderr.trim().to_string();
            if !said.contains("needs a terminal") || said.contains("database") {
                failures.push(format!("home {round}, process {i}: {said}"));
            }
        }
        // And the database they made is whole.
        assert_eq!(outbox_len(&home), 0);
    }
    assert!(
        failures.is_empty(),
        "{} of {} malts started at once on a new data directory failed:\n{}",
        failures.len(),
        HOMES * PROCESSES,
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// 5. A change an earlier run left behind is checked again on restart
// ---------------------------------------------------------------------------------------------

/// An earlier run queued a change while its screen was fresh (so it was to be sent without
/// looking first) and was killed before sending it; meanwhile the entry was edited on the
/// website. On restart the change must be checked against the service (`due_now`: "time has
/// passed since they were made, so each entry is checked against the service first"), found in
/// conflict and held, never sent over the edit made elsewhere.
#[test]
fn a_change_left_by_a_killed_run_is_checked_before_it_is_sent() {
    require_tmux!();
    let fake = FakeMal::start_background();
    fake.add_anime(Anime {
        watched: 2,
        ..Anime::new(701, "Edited Elsewhere", 24)
    });
    let home = Home::for_fake(&fake);
    home.log_in(&fake);
    {
        // The earlier run had fetched the list (2 watched), and `+` made it 3.
        let mut store = Store::open(&db_path(&home)).expect("open the database");
        let cached = ListEntry {
            progress: 2,
            total: Some(24),
            ..ListEntry::new(701, MediaKind::Anime, "Edited Elsewhere", Status::Current)
        };
        let now = malt::sync::now_ms();
        store
            .replace_entries(Service::Mal, MediaKind::Anime, &[cached], now, false)
            .expect("cache the list");
        store
            .enqueue_fresh(
                Service::Mal,
                MediaKind::Anime,
                701,
                Change::progress(3),
                2,
                malt::sync::now_ms(),
            )
            .expect("enqueue");
    }
    // The user then watched more on another device.
    fake.set_watched(701, 7);

    let tmux = Tmux::start(&home, &[]);
    let start = Instant::now();
    let held = loop {
        let store = Store::open(&db_path(&home)).expect("open the database");
        if store.pending(Service::Mal).unwrap().is_empty() {
            break store.refused(Service::Mal).unwrap();
        }
        if start.elapsed() > TIMEOUT {
            tmux.fail(
                "the queued change was neither sent nor held",
                &tmux.screen(),
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    std::thread::sleep(Duration::from_millis(300));
    let sent = patch_values(&fake);
    if !sent.is_empty() || fake.watched(701) != Some(7) {
        tmux.fail(
            &format!(
                "the change from the earlier run was sent without a check and overwrote the \
                 edit made elsewhere: PATCHes {sent:?}, the service now holds {:?} (was 7)",
                fake.watched(701)
            ),
            &tmux.screen(),
        );
    }
    assert_eq!(held.len(), 1, "{held:?}");
    assert!(held[0].1.conflict, "held as a conflict: {held:?}");
    assert_eq!(held[0].1.theirs, Some(7), "{held:?}");
    // The screen shows both values and how to choose.
    tmux.wait_for("the conflict on the bar", TIMEOUT, |s| {
        status_bar(s).contains("MAL says episode 7, you set episode 3")
            && row_has(s, "Edited Elsewhere", "3 / 24 !")
    });
    tmux.quit();
}
