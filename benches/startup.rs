//! How quickly malt shows a 5,000-entry list, how quickly `+` shows, how quiet it is when idle and
//! how much memory it takes. Run with `cargo bench --bench startup`; it prints a table of figures
//! against their targets and always exits 0 (a missed target is printed as `MISSED`, not hidden).
//!
//! Two levels are measured:
//! - in-process, precise: the library's own startup path (`Store::open`, `Db::spawn`,
//!   `tui::initial_model`, `update(Resize)`, one `view` drawn on a 120x40 `TestBackend`), and
//!   `update(+)` plus a redraw, each repeated many times;
//! - whole process, what a user sees: the release binary (`CARGO_BIN_EXE_malt`, which cargo builds
//!   with the bench profile for every bench) started in a private tmux server, with a temporary
//!   HOME holding a config, a token file and a database of 5,000 entries. The time to the list
//!   runs from releasing a shell (waiting on a FIFO) that `exec`s malt to the first output holding
//!   the first entry's title, as tmux copies it out with `pipe-pane`: no polling. The same start
//!   seen by polling `tmux capture-pane` (an upper bound) is shown beside it. `+` is sent with
//!   `tmux send-keys` and the bumped count found by polling `capture-pane`: an upper bound too. The
//!   rows marked "harness floor" show what the harness alone costs with a trivial program. Idle
//!   CPU is utime+stime from `/proc/PID/stat` over 10 s; peak memory is `VmHWM`.
//!
//! The network is down (a closed loopback port) for the plain start; the fake MyAnimeList of
//! `tests/support` answering every API request after 600 ms serves the rest.
//!
//! Without tmux only the in-process figures are measured.
//!
//! `MALT_BENCH_WRAP`, if set, is put before malt's path in the command the panes run (e.g. a script
//! that runs `heaptrack "$@"`), to profile malt in the same situations. The figures are then the
//! profiler's, not malt's.

#[path = "../tests/support/mod.rs"]
mod support;

use std::fmt::Display;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use malt::auth::{TokenFile, TokenSet};
use malt::config::{Config, KeyMap, Theme};
use malt::domain::{ListEntry, MediaKind, Service, Status};
use malt::providers::mal::Mal;
use malt::providers::{self, Provider};
use malt::store::{Db, Store};
use malt::tui::{self, App, Msg};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use support::mal::{Anime, DEFAULT_EXPIRES_IN, FakeMal};

const ENTRIES: usize = 5_000;
const COLS: u16 = 120;
const ROWS: u16 = 40;
/// Sorts first, so it is the selected row at start.
const FIRST_ID: u64 = 1;
const FIRST_TITLE: &str = "Aardvark Benchmark Opening";
const FIRST_PROGRESS: u32 = 7;
const SERVER_LATENCY: Duration = Duration::from_millis(600);

const START_ITERATIONS: usize = 60;
const PLUS_ITERATIONS: usize = 2_000;
const PROCESS_STARTS: usize = 20;
/// Starts against the slow server; all but the last quit at once, during the first fetch.
const ONLINE_STARTS: usize = 5;
const PRESSES: u32 = 5;
const IDLE: Duration = Duration::from_secs(10);
const SETTLE: Duration = Duration::from_secs(3);

const START_TARGET_MS: f64 = 20.0;
const PLUS_TARGET_MS: f64 = 16.0;
const IDLE_TARGET_PERCENT: f64 = 0.2;
const MEMORY_TARGET_MB: f64 = 20.0;

type Res<T> = Result<T, String>;

fn ctx<E: Display>(what: impl Display) -> impl FnOnce(E) -> String {
    move |e| format!("{what}: {e}")
}

fn main() {
    // `cargo bench` passes `--bench`; a name filter would mean nothing here.
    println!(
        "malt benchmark ({} cached entries, {COLS}x{ROWS} terminal)",
        thousands(ENTRIES)
    );
    // Other work on the machine shows in the figures; say how busy it was.
    let load_before = load_average();
    let mut table = Table::default();
    let mut notes: Vec<String> = Vec::new();
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => {
            println!("  cannot create a temporary directory: {e}");
            return;
        }
    };

    eprintln!("startup bench: in-process figures…");
    if let Err(e) = in_process(dir.path(), &mut table) {
        table.not_measured("start → list on screen (in-process)", &e);
    }

    match Command::new("tmux").arg("-V").output() {
        Ok(out) if out.status.success() => {
            eprintln!("startup bench: whole-process figures (about 45 s)…");
            if let Err(e) = whole_process(dir.path(), &mut table, &mut notes) {
                table.not_measured("whole-process figures", &e);
            }
        }
        _ => notes.push("tmux is not installed: only the in-process figures were measured".into()),
    }

    table.print();
    notes.push(format!(
        "load average before / after: {load_before} / {}",
        load_average()
    ));
    if std::env::var_os("MALT_BENCH_WRAP").is_some() {
        notes.push("MALT_BENCH_WRAP is set: the whole-process figures include the wrapper".into());
    }
    for note in notes {
        println!("  note: {note}");
    }
}

fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

// ---------------------------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------------------------

enum Verdict {
    Ok,
    Missed,
    Info,
    NotMeasured,
}

struct Line {
    label: String,
    figure: String,
    target: String,
    verdict: Verdict,
}

#[derive(Default)]
struct Table {
    lines: Vec<Line>,
}

impl Table {
    fn check(&mut self, label: &str, figure: String, value: f64, limit: f64, target: String) {
        let verdict = if value <= limit {
            Verdict::Ok
        } else {
            Verdict::Missed
        };
        self.lines.push(Line {
            label: label.into(),
            figure,
            target,
            verdict,
        });
    }

    fn time(&mut self, label: &str, stats: &Stats, limit_ms: f64) {
        self.check(
            label,
            stats.figure(),
            stats.worst_ms(),
            limit_ms,
            format!("target ≤ {limit_ms} ms"),
        );
    }

    fn info(&mut self, label: &str, figure: String) {
        self.lines.push(Line {
            label: label.into(),
            figure,
            target: String::new(),
            verdict: Verdict::Info,
        });
    }

    fn not_measured(&mut self, label: &str, why: &str) {
        self.lines.push(Line {
            label: label.into(),
            figure: format!("not measured: {why}"),
            target: String::new(),
            verdict: Verdict::NotMeasured,
        });
    }

    fn print(&self) {
        let mut lines: Vec<&Line> = self.lines.iter().collect();
        lines.sort_by_key(|l| rank(&l.label));
        let width = |f: fn(&Line) -> &str| {
            lines
                .iter()
                .filter(|l| !matches!(l.verdict, Verdict::NotMeasured))
                .map(|l| f(l).chars().count())
                .max()
                .unwrap_or(0)
        };
        let (lw, fw, tw) = (
            width(|l| &l.label),
            width(|l| &l.figure),
            width(|l| &l.target),
        );
        for l in lines {
            let verdict = match l.verdict {
                Verdict::Ok => "ok",
                Verdict::Missed => "MISSED",
                Verdict::Info | Verdict::NotMeasured => "",
            };
            let line = match l.verdict {
                Verdict::NotMeasured => format!("  {:<lw$}  {}", l.label, l.figure),
                _ => format!(
                    "  {:<lw$}  {:<fw$}  {:<tw$}  {verdict}",
                    l.label, l.figure, l.target
                ),
            };
            println!("{}", line.trim_end());
        }
    }
}

/// The order of the rows: by figure, whatever order they were measured in.
fn rank(label: &str) -> u8 {
    let order = [
        "start → list on screen (in-process",
        "  first run",
        "  HTTP client",
        "start → list on screen (whole",
        "  the same, seen by polling",
        "start → list on screen, server",
        "  harness floor: gate",
        "  harness floor: start",
        "+ → redraw (in-process",
        "+ → redraw, server",
        "  harness floor: key",
        "idle CPU",
        "peak memory",
    ];
    order
        .iter()
        .position(|p| label.starts_with(p))
        .unwrap_or(order.len()) as u8
}

struct Stats {
    median: Duration,
    p95: Duration,
    max: Duration,
    n: usize,
    /// Which figure the target is checked against.
    use_max: bool,
}

impl Stats {
    fn of(mut samples: Vec<Duration>) -> Stats {
        assert!(!samples.is_empty());
        samples.sort();
        let n = samples.len();
        Stats {
            median: samples[n / 2],
            p95: samples[(n * 95).div_ceil(100) - 1],
            max: samples[n - 1],
            n,
            use_max: false,
        }
    }

    /// For a few samples the p95 is the maximum: say so.
    fn few(samples: Vec<Duration>) -> Stats {
        Stats {
            use_max: true,
            ..Stats::of(samples)
        }
    }

    fn figure(&self) -> String {
        if self.use_max {
            format!("{} / {} (n={})", ms(self.median), ms(self.max), self.n)
        } else {
            format!("{} / {} (n={})", ms(self.median), ms(self.p95), self.n)
        }
    }

    fn worst_ms(&self) -> f64 {
        let d = if self.use_max { self.max } else { self.p95 };
        d.as_secs_f64() * 1e3
    }
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Test data
// ---------------------------------------------------------------------------------------------

const WORDS: [&str; 16] = [
    "Blue",
    "Steel",
    "Garden",
    "Moon",
    "Knight",
    "Summer",
    "Echo",
    "Harbor",
    "Silent",
    "Tower",
    "Crimson",
    "Spirit",
    "Wandering",
    "Clockwork",
    "Lantern",
    "Voyage",
];

struct Item {
    id: u64,
    title: String,
    progress: u32,
    /// 0 = unknown.
    episodes: u32,
    score: u8,
}

fn items() -> Vec<Item> {
    (0..ENTRIES)
        .map(|i| {
            let id = i as u64 + FIRST_ID;
            if id == FIRST_ID {
                return Item {
                    id,
                    title: FIRST_TITLE.into(),
                    progress: FIRST_PROGRESS,
                    episodes: 0,
                    score: 8,
                };
            }
            let episodes = if i.is_multiple_of(7) {
                0
            } else {
                [12, 13, 24, 26, 50][i % 5]
            };
            Item {
                id,
                title: format!(
                    "{} {} no {} {}",
                    WORDS[i % 16],
                    WORDS[(i / 16) % 16],
                    WORDS[(i / 256) % 16],
                    i
                ),
                progress: if episodes == 0 {
                    (i % 40) as u32
                } else {
                    (i as u32) % episodes
                },
                episodes,
                score: (i % 11) as u8,
            }
        })
        .collect()
}

fn list_entries(items: &[Item]) -> Vec<ListEntry> {
    items
        .iter()
        .map(|it| ListEntry {
            progress: it.progress,
            total: (it.episodes > 0).then_some(it.episodes),
            score: it.score,
            updated_at: Some("2026-01-15T10:00:00+00:00".into()),
            ..ListEntry::new(it.id, MediaKind::Anime, &it.title, Status::Current)
        })
        .collect()
}

/// A database file holding the list, as a previous sync would have left it.
fn write_database(path: &Path, entries: &[ListEntry]) -> Res<()> {
    let mut store = Store::open(path).map_err(ctx("open the database"))?;
    store
        .replace_entries(Service::Mal, MediaKind::Anime, entries, i64::MAX, false)
        .and_then(|()| store.set_meta(Service::Mal, "account", "benchuser"))
        .and_then(|()| store.set_meta(Service::Mal, "last_sync", "2026-01-15T10:00:00Z"))
        .map_err(ctx("fill the database"))
}

fn config_text(api_url: &str, auth_url: &str) -> String {
    format!(
        "[mal]\nclient_id = \"{}\"\napi_url = \"{api_url}\"\nauth_url = \"{auth_url}\"\n",
        FakeMal::CLIENT_ID
    )
}

/// A loopback URL nothing listens on: connections are refused at once, like a network that is down.
fn closed_port_url() -> Res<String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(ctx("bind a port"))?;
    let port = listener.local_addr().map_err(ctx("local address"))?.port();
    drop(listener);
    Ok(format!("http://127.0.0.1:{port}"))
}

fn plus_key() -> Msg {
    Msg::Key(KeyEvent::new(KeyCode::Char('+'), KeyModifiers::NONE))
}

// ---------------------------------------------------------------------------------------------
// In-process
// ---------------------------------------------------------------------------------------------

fn in_process(dir: &Path, table: &mut Table) -> Res<()> {
    let root = dir.join("in-process");
    fs::create_dir_all(&root).map_err(ctx("create a directory"))?;
    let db_path = root.join("malt.db");
    let entries = list_entries(&items());
    write_database(&db_path, &entries)?;

    let down = closed_port_url()?;
    let config = Config::parse(
        &root.join("config.toml"),
        &config_text(&format!("{down}/v2"), &format!("{down}/v1/oauth2")),
    )
    .map_err(ctx("config"))?;
    let mal = config.require_mal().map_err(ctx("config"))?;
    // Built by `app::run_list` before the first frame, so part of what a user waits for.
    let mut samples = Vec::new();
    for _ in 0..10 {
        let t0 = Instant::now();
        let client = providers::http_client()?;
        samples.push(t0.elapsed());
        drop(client);
    }
    table.info(
        "  HTTP client setup, `providers::http_client()` (in-process, after the first frame)",
        Stats::few(samples).figure(),
    );
    let provider: Arc<dyn Provider> = Arc::new(Mal::new(
        mal,
        providers::Http::default(),
        TokenFile::new(root.join("mal-tokens.json")),
    ));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ctx("tokio runtime"))?;

    // Start → list on screen.
    let start_once = || -> Res<(Duration, tui::Model, Terminal<TestBackend>)> {
        let t0 = Instant::now();
        let store = Store::open(&db_path).map_err(ctx("open"))?;
        let app = App {
            providers: vec![provider.clone()],
            db: Db::spawn(store),
            keys: KeyMap::default(),
            theme: Theme::default(),
            covers: None,
            warning: None,
        };
        let mut model = runtime
            .block_on(tui::initial_model(&app))
            .map_err(ctx("initial model"))?;
        tui::update(&mut model, Msg::Resize(COLS, ROWS));
        let mut terminal = Terminal::new(TestBackend::new(COLS, ROWS)).map_err(ctx("terminal"))?;
        terminal
            .draw(|f| tui::view(&model, f))
            .map_err(ctx("draw"))?;
        Ok((t0.elapsed(), model, terminal))
    };
    // The first run in this process pays for what later runs find cached (the time zone, SQLite's
    // and the allocator's warm-up): closer to what a fresh malt pays.
    let (first, model, terminal) = start_once()?;
    table.info("  first run in a fresh process (in-process)", ms(first));
    let screen = terminal.backend().to_string();
    if model.rows.len() != ENTRIES || !screen.contains(FIRST_TITLE) {
        return Err(format!(
            "the first screen does not show the list ({} rows):\n{screen}",
            model.rows.len()
        ));
    }
    let mut samples = Vec::with_capacity(START_ITERATIONS);
    for _ in 0..START_ITERATIONS {
        samples.push(start_once()?.0);
    }
    table.time(
        "start → list on screen (in-process, median/p95)",
        &Stats::of(samples),
        START_TARGET_MS,
    );

    // `+` → redraw on the 5,000-row model. The change's delivery is an effect handed back, so the
    // network is not part of this by design.
    let (_, mut model, mut terminal) = start_once()?;
    let mut samples = Vec::with_capacity(PLUS_ITERATIONS);
    let mut effects = 0;
    for _ in 0..PLUS_ITERATIONS {
        let t0 = Instant::now();
        effects += tui::update(&mut model, plus_key()).len();
        terminal
            .draw(|f| tui::view(&model, f))
            .map_err(ctx("draw"))?;
        samples.push(t0.elapsed());
    }
    let expected = format!("{} / ?", FIRST_PROGRESS + PLUS_ITERATIONS as u32);
    let screen = terminal.backend().to_string();
    if effects != PLUS_ITERATIONS || !screen.contains(&expected) {
        return Err(format!(
            "`+` did not show ({effects} effects, expected {expected}):\n{screen}"
        ));
    }
    table.time(
        "+ → redraw (in-process, median/p95)",
        &Stats::of(samples),
        PLUS_TARGET_MS,
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Whole process, in tmux
// ---------------------------------------------------------------------------------------------

/// A private tmux server (its own socket, no user config), killed when dropped.
struct Tmux {
    socket: String,
    /// The socket file, removed after the server is killed.
    socket_path: Option<PathBuf>,
}

impl Tmux {
    fn start() -> Res<Tmux> {
        let mut tmux = Tmux {
            socket: format!("malt-bench-{}", std::process::id()),
            socket_path: None,
        };
        // A session that holds the server up, so later sessions do not pay for starting it.
        tmux.run(&[
            "new-session",
            "-d",
            "-s",
            "hold",
            "-x",
            "120",
            "-y",
            "40",
            "sleep 3600",
        ])?;
        // The status line would take a row from malt; a dead pane stays, to read a failure.
        tmux.run(&["set-option", "-g", "status", "off"])?;
        tmux.run(&["set-option", "-g", "remain-on-exit", "on"])?;
        tmux.socket_path = tmux
            .run(&["display-message", "-p", "#{socket_path}"])
            .ok()
            .map(|p| PathBuf::from(p.trim()));
        Ok(tmux)
    }

    fn run(&self, args: &[&str]) -> Res<String> {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .output()
            .map_err(ctx("run tmux"))?;
        if !out.status.success() {
            return Err(format!(
                "tmux {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn new_session(&self, name: &str, command: &str) -> Res<()> {
        let (cols, rows) = (COLS.to_string(), ROWS.to_string());
        self.run(&[
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            &cols,
            "-y",
            &rows,
            command,
        ])
        .map(|_| ())
    }

    fn capture(&self, name: &str) -> Res<String> {
        self.run(&["capture-pane", "-p", "-t", name])
    }

    fn format(&self, name: &str, format: &str) -> Res<String> {
        self.run(&["display-message", "-p", "-t", name, format])
            .map(|s| s.trim().to_string())
    }

    fn send(&self, name: &str, text: &str) -> Res<()> {
        self.run(&["send-keys", "-t", name, "-l", text]).map(|_| ())
    }

    /// Polls the pane until `done` holds for its text; the time since `t0` when it did.
    fn wait_for(
        &self,
        name: &str,
        t0: Instant,
        timeout: Duration,
        what: &str,
        done: impl Fn(&str) -> bool,
    ) -> Res<Duration> {
        loop {
            let screen = self.capture(name)?;
            if done(&screen) {
                return Ok(t0.elapsed());
            }
            if t0.elapsed() > timeout {
                return Err(format!(
                    "{what} did not happen within {timeout:?}; the pane shows:\n{}",
                    screen.trim_end()
                ));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// The process in the pane (the shell `exec`s into `env`, which `exec`s malt).
    fn pid(&self, name: &str) -> Res<u32> {
        let pane: u32 = self
            .format(name, "#{pane_pid}")?
            .parse()
            .map_err(ctx("pane pid"))?;
        let comm = fs::read_to_string(format!("/proc/{pane}/comm")).unwrap_or_default();
        if comm.trim() == "malt" {
            return Ok(pane);
        }
        // Not exec'd after all (a wrapper): look for malt among the pane process's descendants.
        let mut queue = vec![pane];
        while let Some(p) = queue.pop() {
            let children =
                fs::read_to_string(format!("/proc/{p}/task/{p}/children")).unwrap_or_default();
            for c in children
                .split_whitespace()
                .filter_map(|c| c.parse::<u32>().ok())
            {
                if fs::read_to_string(format!("/proc/{c}/comm")).is_ok_and(|s| s.trim() == "malt") {
                    return Ok(c);
                }
                queue.push(c);
            }
        }
        Err(format!(
            "no malt process under pane pid {pane} ({})",
            comm.trim()
        ))
    }

    /// Quits malt with `q` and removes the session. `Some` says what went wrong.
    fn quit(&self, name: &str) -> Res<Option<String>> {
        let pid = self.pid(name)?;
        self.send(name, "q")?;
        let t0 = Instant::now();
        let problem = loop {
            match process_state(pid) {
                // tmux 3.3 now and then leaves a pane's process unreaped: read its exit code here.
                Some(('Z', code)) => break describe_wait_status(code),
                Some(_) => {}
                None => {
                    let status = self.format(name, "#{pane_dead_status}")?;
                    let signal = self.format(name, "#{pane_dead_signal}")?;
                    break match (status.as_str(), signal.as_str()) {
                        (_, s) if !s.is_empty() => Some(format!("killed by signal {s}")),
                        ("" | "0", _) => None,
                        (s, _) => Some(format!("exit status {s}")),
                    };
                }
            }
            if t0.elapsed() > Duration::from_secs(5) {
                break Some("still running 5 s after q".into());
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        self.run(&["kill-session", "-t", name])?;
        Ok(problem)
    }
}

/// Quits malt, noting anything wrong with how it ended.
fn quit(tmux: &Tmux, name: &str, what: &str, notes: &mut Vec<String>) -> Res<()> {
    if let Some(problem) = tmux.quit(name)? {
        notes.push(format!("malt ({what}): {problem}"));
    }
    Ok(())
}

/// The state letter and (for a zombie) the wait status of a process; `None` once it is reaped.
fn process_state(pid: u32) -> Option<(char, i64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    // Field 52, exit_code (fields[0] is field 3).
    let code = fields.get(49).and_then(|c| c.parse().ok()).unwrap_or(0);
    Some((state, code))
}

fn describe_wait_status(status: i64) -> Option<String> {
    match (status & 0x7f, (status >> 8) & 0xff) {
        (0, 0) => None,
        (0, code) => Some(format!("exit status {code}")),
        (signal, _) => Some(format!("killed by signal {signal}")),
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
        if let Some(path) = &self.socket_path {
            let _ = fs::remove_file(path);
        }
    }
}

fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A HOME with config, tokens and database, and the command that starts malt in it.
fn prepare_home(
    root: &Path,
    entries: &[ListEntry],
    config: &str,
    tokens: &TokenSet,
) -> Res<String> {
    let home = root.join("home");
    let (config_dir, data_dir, state_dir) =
        (root.join("config"), root.join("data"), root.join("state"));
    for d in [
        &home,
        &config_dir.join("malt"),
        &data_dir.join("malt"),
        &state_dir,
    ] {
        fs::create_dir_all(d).map_err(ctx(format!("create {}", d.display())))?;
    }
    fs::write(config_dir.join("malt").join("config.toml"), config)
        .map_err(ctx("write config.toml"))?;
    TokenFile::new(data_dir.join("malt").join("mal-tokens.json"))
        .save(tokens)
        .map_err(ctx("write the token file"))?;
    write_database(&data_dir.join("malt").join("malt.db"), entries)?;
    let var = |name: &str, p: &PathBuf| format!("{name}={}", sh_quote(&p.display().to_string()));
    Ok(format!(
        "exec env {} {} {} {} {}",
        var("HOME", &home),
        var("XDG_CONFIG_HOME", &config_dir),
        var("XDG_DATA_HOME", &data_dir),
        var("XDG_STATE_HOME", &state_dir),
        std::env::var("MALT_BENCH_WRAP").unwrap_or_default()
            + " "
            + &sh_quote(env!("CARGO_BIN_EXE_malt")),
    ))
}

fn thirty_days_tokens(access: &str, refresh: &str) -> TokenSet {
    TokenSet::new(
        access.into(),
        refresh.into(),
        Duration::from_secs(30 * 24 * 3600),
    )
}

/// A word of the first entry's title that ratatui writes in one piece (it moves the cursor over
/// unchanged blanks, so a whole title is not one run of bytes in the output).
const NEEDLE: &str = "Aardvark";

/// Starts `command` in a new session and polls `capture-pane` until the first entry's title is on
/// screen. Includes tmux's start of the pane and the polling: an upper bound.
fn launch_polled(tmux: &Tmux, name: &str, command: &str) -> Res<Duration> {
    let t0 = Instant::now();
    tmux.new_session(name, command)?;
    tmux.wait_for(name, t0, Duration::from_secs(15), "the list", |s| {
        s.contains(FIRST_TITLE)
    })
}

enum Seen {
    Opened,
    Found(Instant),
}

fn mkfifo(path: &Path) -> Res<()> {
    let status = Command::new("mkfifo")
        .arg(path)
        .status()
        .map_err(ctx("run mkfifo"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("mkfifo {} failed", path.display()))
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Starts `command` in a new session whose shell first waits on a FIFO (the gate), with the pane's
/// output copied by `tmux pipe-pane` to a FIFO read here. The time runs from opening the gate to
/// the first output containing [`NEEDLE`]: the shell's `exec` and malt's whole start, without
/// tmux's own start or any polling.
fn launch_gated(tmux: &Tmux, dir: &Path, name: &str, command: &str) -> Res<Duration> {
    let gate = dir.join(format!("{name}.gate"));
    let out = dir.join(format!("{name}.out"));
    mkfifo(&gate)?;
    mkfifo(&out)?;
    let (tx, rx) = std::sync::mpsc::channel();
    let reader_path = out.clone();
    std::thread::spawn(move || {
        use std::io::Read;
        // Blocks until `cat` opens the other end; ends when tmux closes the pipe.
        let Ok(mut fifo) = fs::File::open(&reader_path) else {
            return;
        };
        let _ = tx.send(Seen::Opened);
        let mut seen: Option<Vec<u8>> = Some(Vec::new());
        let mut buf = vec![0u8; 1 << 16];
        while let Ok(n @ 1..) = fifo.read(&mut buf) {
            let at = Instant::now();
            if let Some(acc) = &mut seen {
                acc.extend_from_slice(&buf[..n]);
                if find(acc, NEEDLE.as_bytes()) {
                    let _ = tx.send(Seen::Found(at));
                    seen = None;
                }
            }
        }
    });
    let gated = format!(
        "read x < {}; {command}",
        sh_quote(&gate.display().to_string())
    );
    tmux.new_session(name, &gated)?;
    let pipe = format!("cat > {}", sh_quote(&out.display().to_string()));
    tmux.run(&["pipe-pane", "-o", "-t", name, &pipe])?;
    match rx.recv_timeout(Duration::from_secs(5)) {
        Ok(Seen::Opened) => {}
        _ => return Err("tmux pipe-pane did not start copying the pane's output".into()),
    }
    let t0 = Instant::now();
    {
        use std::io::Write;
        let mut g = fs::OpenOptions::new()
            .write(true)
            .open(&gate)
            .map_err(ctx("open the gate"))?;
        g.write_all(b"go\n").map_err(ctx("open the gate"))?;
    }
    match rx.recv_timeout(Duration::from_secs(15)) {
        Ok(Seen::Found(at)) => Ok(at.duration_since(t0)),
        _ => Err(format!(
            "{NEEDLE} did not appear within 15 s; the pane shows:\n{}",
            tmux.capture(name).unwrap_or_default().trim_end()
        )),
    }
}

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// utime + stime of the whole process (every thread, live or gone), in clock ticks.
fn cpu_ticks(pid: u32) -> Res<u64> {
    let stat =
        fs::read_to_string(format!("/proc/{pid}/stat")).map_err(ctx("read /proc/PID/stat"))?;
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Field 3 (state) is fields[0]; utime is field 14, stime field 15.
    let get = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok());
    match (get(11), get(12)) {
        (Some(u), Some(s)) => Ok(u + s),
        _ => Err(format!("cannot read /proc/{pid}/stat: {stat}")),
    }
}

/// Context switches of the live threads: how often malt woke up (an approximation, as threads
/// that end take their counts with them).
fn context_switches(pid: u32) -> u64 {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| fs::read_to_string(t.path().join("status")).ok())
        .flat_map(|status| {
            status
                .lines()
                .filter(|l| {
                    l.starts_with("voluntary_ctxt_switches")
                        || l.starts_with("nonvoluntary_ctxt_switches")
                })
                .filter_map(|l| {
                    l.split_whitespace()
                        .nth(1)
                        .and_then(|v| v.parse::<u64>().ok())
                })
                .collect::<Vec<_>>()
        })
        .sum()
}

fn threads(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count())
}

struct Idle {
    percent: f64,
    ticks: u64,
    switches: u64,
    threads: usize,
}

fn measure_idle(pid: u32) -> Res<Idle> {
    let (c0, s0, t0) = (cpu_ticks(pid)?, context_switches(pid), Instant::now());
    std::thread::sleep(IDLE);
    let (c1, s1, wall) = (cpu_ticks(pid)?, context_switches(pid), t0.elapsed());
    let ticks = c1.saturating_sub(c0);
    Ok(Idle {
        percent: ticks as f64 / clock_ticks_per_second() / wall.as_secs_f64() * 100.0,
        ticks,
        switches: s1.saturating_sub(s0),
        threads: threads(pid),
    })
}

fn idle_row(table: &mut Table, label: &str, idle: &Idle) {
    table.check(
        label,
        format!(
            "{:.2} % ({} ticks, {} wakeups, {} threads)",
            idle.percent, idle.ticks, idle.switches, idle.threads
        ),
        idle.percent,
        IDLE_TARGET_PERCENT,
        format!("target ≤ {IDLE_TARGET_PERCENT} %"),
    );
}

/// VmHWM in MB (10^6 bytes).
fn peak_memory_mb(pid: u32) -> Res<f64> {
    let status =
        fs::read_to_string(format!("/proc/{pid}/status")).map_err(ctx("read /proc/PID/status"))?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb * 1024.0 / 1e6)
        .ok_or_else(|| "no VmHWM in /proc/PID/status".into())
}

/// The resident set now, by kind: what the peak is made of.
fn resident(pid: u32) -> String {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(0.0, |kb| kb * 1024.0 / 1e6)
    };
    format!(
        "{:.1} MB resident ({:.1} MB heap and stacks, {:.1} MB of the binary and libraries, {:.1} MB shared)",
        kb("VmRSS:"),
        kb("RssAnon:"),
        kb("RssFile:"),
        kb("RssShmem:")
    )
}

fn memory_row(table: &mut Table, label: &str, mb: f64) {
    table.check(
        label,
        format!("{mb:.1} MB"),
        mb,
        MEMORY_TARGET_MB,
        format!("target ≤ {MEMORY_TARGET_MB} MB"),
    );
}

/// The line of the first entry shows `progress / ?`.
fn first_row_shows(screen: &str, progress: u32) -> bool {
    let want = format!(" {progress} / ?");
    screen
        .lines()
        .any(|l| l.contains(FIRST_TITLE) && l.contains(&want))
}

fn whole_process(dir: &Path, table: &mut Table, notes: &mut Vec<String>) -> Res<()> {
    let items = items();
    let entries = list_entries(&items);
    let tmux = Tmux::start()?;

    let fifos = dir.join("fifos");
    fs::create_dir_all(&fifos).map_err(ctx("create a directory"))?;

    // What the harness costs on its own, with a program that prints the title at once.
    let trivial = format!(
        "exec sh -c {}",
        sh_quote(&format!(
            "printf '%s\\n' {}; exec cat",
            sh_quote(FIRST_TITLE)
        ))
    );
    let (mut floor_gated, mut floor_polled) = (Vec::new(), Vec::new());
    for i in 0..PROCESS_STARTS {
        let name = format!("floor-gated{i}");
        floor_gated.push(launch_gated(&tmux, &fifos, &name, &trivial)?);
        tmux.run(&["kill-session", "-t", &name])?;
        let name = format!("floor-polled{i}");
        floor_polled.push(launch_polled(&tmux, &name, &trivial)?);
        if i + 1 == PROCESS_STARTS {
            let mut keys = Vec::new();
            for k in 0..PRESSES {
                let t0 = Instant::now();
                let mark = format!("x{k}y");
                tmux.send(&name, &mark)?;
                keys.push(
                    tmux.wait_for(&name, t0, Duration::from_secs(5), "the echo", |s| {
                        s.contains(&mark)
                    })?,
                );
            }
            table.info(
                "  harness floor: key → echo by `cat` (send-keys, capture-pane polling)",
                Stats::few(keys).figure(),
            );
        }
        tmux.run(&["kill-session", "-t", &name])?;
    }
    table.info(
        "  harness floor: gate → output of `sh -c printf` (pipe-pane)",
        Stats::of(floor_gated).figure(),
    );
    table.info(
        "  harness floor: start → text of `sh -c printf` (capture-pane polling)",
        Stats::of(floor_polled).figure(),
    );

    // Network down: the port refuses connections.
    let down = closed_port_url()?;
    let command = prepare_home(
        &dir.join("offline"),
        &entries,
        &config_text(&format!("{down}/v2"), &format!("{down}/v1/oauth2")),
        &thirty_days_tokens("a", "r"),
    )?;
    let (mut gated, mut polled) = (Vec::new(), Vec::new());
    for i in 0..PROCESS_STARTS {
        let name = format!("offline-gated{i}");
        gated.push(launch_gated(&tmux, &fifos, &name, &command)?);
        let screen = tmux.capture(&name)?;
        if !screen.contains(FIRST_TITLE) {
            return Err(format!("malt's first screen lacks the list:\n{screen}"));
        }
        quit(&tmux, &name, &format!("offline run {i}"), notes)?;
        let name = format!("offline{i}");
        polled.push(launch_polled(&tmux, &name, &command)?);
        if i + 1 < PROCESS_STARTS {
            quit(&tmux, &name, &format!("offline run {i}"), notes)?;
        }
    }
    table.time(
        "start → list on screen (whole process, median/p95)",
        &Stats::of(gated),
        START_TARGET_MS,
    );
    table.info(
        "  the same, seen by polling capture-pane (upper bound)",
        Stats::of(polled).figure(),
    );
    let name = format!("offline{}", PROCESS_STARTS - 1);
    let size = tmux.format(&name, "#{pane_width}x#{pane_height}")?;
    if size != format!("{COLS}x{ROWS}") {
        notes.push(format!("the pane was {size}, not {COLS}x{ROWS}"));
    }
    let pid = tmux.pid(&name)?;
    tmux.wait_for(
        &name,
        Instant::now(),
        Duration::from_secs(15),
        "the offline notice",
        |s| s.contains("offline"),
    )?;
    std::thread::sleep(SETTLE);
    let offline_idle = measure_idle(pid)?;
    let offline_memory = peak_memory_mb(pid)?;
    notes.push(format!("offline, idle: {}", resident(pid)));
    quit(&tmux, &name, "offline, idle run", notes)?;

    // The fake MyAnimeList, answering every API request after 600 ms.
    let fake = FakeMal::start_background();
    for it in &items {
        fake.add_anime(Anime {
            watched: it.progress,
            score: it.score,
            ..Anime::new(it.id, &it.title, it.episodes)
        });
    }
    let (access, refresh) = fake.issue_tokens(DEFAULT_EXPIRES_IN);
    fake.set_latency(SERVER_LATENCY);
    let command = prepare_home(
        &dir.join("online"),
        &entries,
        &config_text(&fake.api_url(), &fake.auth_url()),
        &thirty_days_tokens(&access, &refresh),
    )?;
    let mut starts = Vec::new();
    for i in 0..ONLINE_STARTS {
        let name = format!("online{i}");
        starts.push(launch_gated(&tmux, &fifos, &name, &command)?);
        if i + 1 < ONLINE_STARTS {
            quit(&tmux, &name, &format!("online run {i}"), notes)?;
        }
    }
    table.time(
        "start → list on screen, server answering after 600 ms (median/max)",
        &Stats::few(starts),
        START_TARGET_MS,
    );
    let name = &format!("online{}", ONLINE_STARTS - 1);
    let pid = tmux.pid(name)?;
    // A person does not press a key the very millisecond the list appears; the fetch is still
    // waiting for its first page then.
    std::thread::sleep(Duration::from_millis(300));
    let mut presses = Vec::new();
    for k in 1..=PRESSES {
        let t0 = Instant::now();
        tmux.send(name, "+")?;
        presses.push(tmux.wait_for(
            name,
            t0,
            Duration::from_secs(10),
            "the bumped count",
            |s| first_row_shows(s, FIRST_PROGRESS + k),
        )?);
    }
    table.time(
        "+ → redraw, server answering after 600 ms (polled, median/max)",
        &Stats::few(presses),
        PLUS_TARGET_MS,
    );
    let t0 = Instant::now();
    let settled = tmux.wait_for(
        name,
        t0,
        Duration::from_secs(60),
        "the sync and the deliveries",
        |s| s.contains("synced") && !s.contains("pending") && !s.contains("syncing"),
    )?;
    let final_progress = FIRST_PROGRESS + PRESSES;
    let screen = tmux.capture(name)?;
    if fake.watched(FIRST_ID) != Some(final_progress) || !first_row_shows(&screen, final_progress) {
        notes.push(format!(
            "after the sync the server holds {:?} and the screen {} {final_progress}",
            fake.watched(FIRST_ID),
            if first_row_shows(&screen, final_progress) {
                "shows"
            } else {
                "does not show"
            },
        ));
    }
    notes.push(format!(
        "with the server answering after {} ms: the 5,000-entry fetch and {PRESSES} changes settled {:.1} s after the last +; the server received {} PATCHes and {} requests in all",
        SERVER_LATENCY.as_millis(),
        settled.as_secs_f64(),
        fake.patches().len(),
        fake.requests().len(),
    ));
    std::thread::sleep(SETTLE);
    let online_idle = measure_idle(pid)?;
    let online_memory = peak_memory_mb(pid)?;
    notes.push(format!("after the sync, idle: {}", resident(pid)));
    quit(&tmux, name, "online", notes)?;

    idle_row(
        table,
        "idle CPU over 10 s (offline, after the failed fetch)",
        &offline_idle,
    );
    idle_row(
        table,
        "idle CPU over 10 s (after a full sync and 5 changes)",
        &online_idle,
    );
    memory_row(table, "peak memory (VmHWM), offline start", offline_memory);
    memory_row(
        table,
        "peak memory (VmHWM), after a 5,000-entry sync",
        online_memory,
    );
    notes.push(
        "whole-process start: from releasing a shell that `exec`s malt to the title in malt's output as tmux reads it (pipe-pane); `+`: from `tmux send-keys` to the count seen by polling capture-pane, an upper bound (see the harness floor rows)"
            .into(),
    );
    Ok(())
}
