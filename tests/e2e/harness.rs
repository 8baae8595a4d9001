//! The end-to-end harness: a private home for malt's files ([`Home`]), the real binary run as a
//! plain process ([`Proc`]) or full-screen in a private tmux server ([`Tmux`]), and a few helpers to
//! read the screen, plus the seeded list and the small waits the end-to-end suites share.
//!
//! Each suite (`e2e`, `faults`, `durability`) is its own crate that includes this file with
//! `#[path]`, and none of them uses all of it.

#![allow(dead_code)]

use std::cell::RefCell;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::support::mal::{Anime, FakeMal};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_malt");

/// How long anything may take before a test gives up. Generous: these are not timing tests, and
/// they run in parallel on small machines.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// Whether tmux can be run here.
pub fn tmux_available() -> bool {
    Command::new("tmux")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Returns from the test (with a message) where tmux is missing.
#[macro_export]
macro_rules! require_tmux {
    () => {
        if !$crate::harness::tmux_available() {
            eprintln!("skipping: tmux not installed");
            return;
        }
    };
}

/// A port nobody listens on (for the login redirect): bound, read, released.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// Quotes `s` for `sh`.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Unix permission bits of a file.
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

// ---------------------------------------------------------------------------------------------
// Home
// ---------------------------------------------------------------------------------------------

/// A temp dir holding everything malt reads and writes: `$HOME`, the XDG dirs, and a `bin/` put
/// first on `PATH` (for a stand-in browser).
pub struct Home {
    dir: tempfile::TempDir,
    /// The loopback redirect URI in the config (a port that was free when the home was made).
    pub redirect_uri: String,
}

impl Home {
    /// An empty home: no config, no tokens.
    pub fn new() -> Home {
        let dir = tempfile::Builder::new()
            .prefix("malt-e2e-")
            .tempdir()
            .expect("temp dir");
        for sub in ["home", "config", "data", "state", "bin"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("create dir");
        }
        Home {
            dir,
            redirect_uri: format!("http://127.0.0.1:{}/callback", free_port()),
        }
    }

    /// A home whose config points at `fake`.
    pub fn for_fake(fake: &FakeMal) -> Home {
        let home = Home::new();
        home.write_config(&home.mal_config(fake));
        home
    }

    /// A `[mal]` table pointing at `fake`.
    pub fn mal_config(&self, fake: &FakeMal) -> String {
        format!(
            "[mal]\nclient_id = \"{}\"\napi_url = \"{}\"\nauth_url = \"{}\"\nredirect_uri = \"{}\"\n",
            FakeMal::CLIENT_ID,
            fake.api_url(),
            fake.auth_url(),
            self.redirect_uri
        )
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `$XDG_CONFIG_HOME/malt/config.toml`
    pub fn config_path(&self) -> PathBuf {
        self.path().join("config/malt/config.toml")
    }

    pub fn write_config(&self, text: &str) {
        let path = self.config_path();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
    }

    /// `$XDG_DATA_HOME/malt`
    pub fn data_dir(&self) -> PathBuf {
        self.path().join("data/malt")
    }

    pub fn tokens_path(&self) -> PathBuf {
        self.data_dir().join("mal-tokens.json")
    }

    /// Stores a session as `malt --login` would: tokens minted by the fake, valid for an hour.
    /// Returns `(access, refresh)`.
    pub fn log_in(&self, fake: &FakeMal) -> (String, String) {
        let (access, refresh) = fake.issue_tokens(3600);
        self.write_tokens(&access, &refresh, unix_now() + 3600);
        (access, refresh)
    }

    pub fn write_tokens(&self, access: &str, refresh: &str, expires_at: i64) {
        use std::os::unix::fs::PermissionsExt;
        let dir = self.data_dir();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let json = serde_json::json!({
            "access_token": access,
            "refresh_token": refresh,
            "expires_at": expires_at,
        });
        let path = self.tokens_path();
        std::fs::write(&path, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    /// The stored tokens, if any.
    pub fn tokens(&self) -> Option<serde_json::Value> {
        let bytes = std::fs::read(self.tokens_path()).ok()?;
        Some(serde_json::from_slice(&bytes).expect("token file is JSON"))
    }

    /// Puts an `xdg-open` first on `PATH` that notes its argument and fetches it with curl,
    /// following the fake's redirect to malt's loopback listener: a browser whose user says yes.
    pub fn install_browser(&self) {
        use std::os::unix::fs::PermissionsExt;
        let script = format!(
            "#!/bin/sh\nprintf '%s\\n' \"$1\" >> {}\nexec curl -s -L --noproxy '*' --max-time 20 -o /dev/null \"$1\"\n",
            sh_quote(&self.browser_log().display().to_string())
        );
        let path = self.path().join("bin/xdg-open");
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn browser_log(&self) -> PathBuf {
        self.path().join("browser.log")
    }

    /// Every address the stand-in browser was asked to open.
    pub fn browser_calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.browser_log())
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// `$XDG_STATE_HOME/malt/malt.log`
    pub fn log_path(&self) -> PathBuf {
        self.path().join("state/malt/malt.log")
    }

    /// malt's whole environment: nothing is inherited but `PATH` (with `bin/` first).
    pub fn env(&self) -> Vec<(String, String)> {
        let p = |sub: &str| self.path().join(sub).display().to_string();
        let path = format!(
            "{}:{}",
            p("bin"),
            std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into())
        );
        vec![
            ("PATH".into(), path),
            ("HOME".into(), p("home")),
            ("XDG_CONFIG_HOME".into(), p("config")),
            ("XDG_DATA_HOME".into(), p("data")),
            ("XDG_STATE_HOME".into(), p("state")),
            ("XDG_CACHE_HOME".into(), p("home/.cache")),
            ("LANG".into(), "C.UTF-8".into()),
            ("RUST_BACKTRACE".into(), "1".into()),
            ("MALT_LOG".into(), "malt=debug".into()),
            ("NO_PROXY".into(), "127.0.0.1,localhost".into()),
        ]
    }

    /// The binary with `args` and this home's environment (and no other).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env_clear()
            .envs(self.env())
            .current_dir(self.path());
        cmd
    }

    /// Runs the binary to the end with nothing on stdin.
    pub fn run(&self, args: &[&str]) -> Finished {
        let mut cmd = self.command(args);
        cmd.stdin(Stdio::null());
        Proc::spawn(cmd).finish(TIMEOUT)
    }

    /// Starts the binary with piped stdin/stdout/stderr.
    pub fn spawn(&self, args: &[&str]) -> Proc {
        let mut cmd = self.command(args);
        cmd.stdin(Stdio::piped());
        Proc::spawn(cmd)
    }
}

// ---------------------------------------------------------------------------------------------
// A plain process
// ---------------------------------------------------------------------------------------------

/// How a process ended.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// A running child whose output is collected in the background (so it never blocks on a full
/// pipe). Killed when dropped.
pub struct Proc {
    child: Child,
    stdout_rx: mpsc::Receiver<Vec<u8>>,
    stdout: Vec<u8>,
    stderr: Option<JoinHandle<Vec<u8>>>,
}

impl Proc {
    pub fn spawn(mut cmd: Command) -> Proc {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {BIN}: {e}"));
        let mut out = child.stdout.take().unwrap();
        let (tx, stdout_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        let mut err = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut all = Vec::new();
            let _ = err.read_to_end(&mut all);
            all
        });
        Proc {
            child,
            stdout_rx,
            stdout: Vec::new(),
            stderr: Some(stderr),
        }
    }

    fn drain(&mut self, wait: Duration) {
        if let Ok(chunk) = self.stdout_rx.recv_timeout(wait) {
            self.stdout.extend(chunk);
        }
        while let Ok(chunk) = self.stdout_rx.try_recv() {
            self.stdout.extend(chunk);
        }
    }

    /// Waits until stdout so far satisfies `pred`; returns it.
    pub fn wait_stdout(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            self.drain(Duration::from_millis(50));
            let text = String::from_utf8_lossy(&self.stdout).into_owned();
            if pred(&text) {
                return text;
            }
            if start.elapsed() > TIMEOUT {
                let _ = self.child.kill();
                panic!("timed out waiting for {what} on stdout; got:\n{text}");
            }
        }
    }

    pub fn write_stdin(&mut self, text: &str) {
        let stdin = self.child.stdin.as_mut().expect("stdin is piped");
        stdin.write_all(text.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// Closes stdin and waits for the end (killing the child after `timeout`).
    pub fn finish(mut self, timeout: Duration) -> Finished {
        drop(self.child.stdin.take());
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > timeout {
                let _ = self.child.kill();
                let _ = self.child.wait();
                self.drain(Duration::from_millis(100));
                let stderr = self.stderr.take().unwrap().join().unwrap_or_default();
                panic!(
                    "malt did not exit within {timeout:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                    String::from_utf8_lossy(&self.stdout),
                    String::from_utf8_lossy(&stderr)
                );
            }
            self.drain(Duration::from_millis(50));
        };
        // The reader ends at EOF, which may come after the exit is seen.
        while let Ok(chunk) = self.stdout_rx.recv_timeout(Duration::from_secs(5)) {
            self.stdout.extend(chunk);
        }
        let stderr = self.stderr.take().unwrap().join().unwrap_or_default();
        Finished {
            status,
            stdout: String::from_utf8_lossy(&self.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// tmux
// ---------------------------------------------------------------------------------------------

static NEXT_SOCKET: AtomicUsize = AtomicUsize::new(0);

/// malt running full-screen in a tmux server of its own (`-L` socket per instance, so parallel
/// tests never meet). After malt exits, the pane shows `EXITED <code>` and the terminal modes
/// (`TTY: icanon echo` when restored), and stays until the server is killed on drop.
pub struct Tmux {
    socket: String,
    log: PathBuf,
    /// How often [`Tmux::wait_for`] and [`wait_until`] look again.
    poll: Duration,
    /// Every distinct screen captured so far, when asked for with [`Tmux::keep_screens`].
    captures: Option<RefCell<Vec<String>>>,
}

impl Tmux {
    /// `malt ARGS` in a 120×40 pane.
    pub fn start(home: &Home, args: &[&str]) -> Tmux {
        Tmux::start_sized(home, args, 120, 40)
    }

    pub fn start_sized(home: &Home, args: &[&str], width: u16, height: u16) -> Tmux {
        Tmux::start_with(home, args, width, height, &[])
    }

    /// `malt ARGS` in a `width`×`height` pane, with `extra_env` set on top of the home's
    /// environment (a variable the home already sets is replaced).
    pub fn start_with(
        home: &Home,
        args: &[&str],
        width: u16,
        height: u16,
        extra_env: &[(&str, &str)],
    ) -> Tmux {
        let socket = format!(
            "malt-e2e-{}-{}",
            std::process::id(),
            NEXT_SOCKET.fetch_add(1, Ordering::SeqCst)
        );
        let mut env = home.env();
        for (k, v) in extra_env {
            env.retain(|(key, _)| key != k);
            env.push((k.to_string(), v.to_string()));
        }
        // `env -i`: malt sees this environment and the pane's TERM, nothing else.
        let mut line = String::from("env -i TERM=\"$TERM\"");
        for (k, v) in env {
            line.push_str(&format!(" {k}={}", sh_quote(&v)));
        }
        line.push(' ');
        line.push_str(&sh_quote(BIN));
        for arg in args {
            line.push(' ');
            line.push_str(&sh_quote(arg));
        }
        line.push_str(
            "; echo \"EXITED $?\"; printf 'TTY: '; \
             stty -a | tr ' ;' '\\n\\n' | grep -x -e icanon -e -icanon -e echo -e -echo | tr '\\n' ' '; \
             echo END; sleep 3600",
        );
        let tmux = Tmux {
            socket,
            log: home.log_path(),
            poll: Duration::from_millis(50),
            captures: None,
        };
        let out = tmux
            .command()
            .args(["new-session", "-d", "-s", "main"])
            .args(["-x", &width.to_string(), "-y", &height.to_string()])
            .arg(&line)
            .current_dir(home.path())
            .output()
            .expect("run tmux");
        assert!(
            out.status.success(),
            "tmux new-session failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        tmux
    }

    /// Looks at the screen (and at [`wait_until`]'s condition) every `every` instead of 50 ms.
    pub fn poll_every(mut self, every: Duration) -> Tmux {
        self.poll = every;
        self
    }

    /// Keeps every distinct screen captured from now on (see [`Tmux::captured`]).
    pub fn keep_screens(mut self) -> Tmux {
        self.captures = Some(RefCell::new(Vec::new()));
        self
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new("tmux");
        cmd.args(["-u", "-f", "/dev/null", "-L", &self.socket])
            .env_remove("TMUX")
            .env("SHELL", "/bin/sh");
        cmd
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = self.command().args(args).output().expect("run tmux");
        assert!(
            out.status.success(),
            "tmux {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keep(&self, screen: &str) {
        if let Some(captures) = &self.captures {
            let mut captures = captures.borrow_mut();
            if captures.last().is_none_or(|last| last != screen) {
                captures.push(screen.to_string());
            }
        }
    }

    /// What the pane shows now, one line per row.
    pub fn screen(&self) -> String {
        let screen = self.tmux(&["capture-pane", "-p", "-t", "main"]);
        self.keep(&screen);
        screen
    }

    /// The pane with its whole scrollback.
    pub fn history(&self) -> String {
        let screen = self.tmux(&["capture-pane", "-p", "-S", "-", "-E", "-", "-t", "main"]);
        self.keep(&screen);
        screen
    }

    /// Every distinct screen captured since [`Tmux::keep_screens`] (empty without it).
    pub fn captured(&self) -> String {
        self.captures
            .as_ref()
            .map(|c| c.borrow().join("\n"))
            .unwrap_or_default()
    }

    /// A tmux format (`#{alternate_on}`, …) of the pane.
    pub fn format(&self, format: &str) -> String {
        self.tmux(&["display-message", "-p", "-t", "main", format])
            .trim()
            .to_string()
    }

    /// Polls the screen (every 50 ms, see [`Tmux::poll_every`]) until `pred` holds; returns that
    /// screen. Panics after
    /// `timeout` with the last screen and the end of malt's log.
    pub fn wait_for(&self, what: &str, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if pred(&screen) {
                // A capture can catch a frame half written (the top redrawn, a popup's last lines
                // still below): what is returned is a second look that still matches.
                std::thread::sleep(Duration::from_millis(20));
                let settled = self.screen();
                if pred(&settled) {
                    return settled;
                }
                continue;
            }
            if start.elapsed() > timeout {
                self.fail(
                    &format!("timed out after {timeout:?} waiting for {what}"),
                    &screen,
                );
            }
            std::thread::sleep(self.poll);
        }
    }

    /// Panics with `message`, the screen and the end of malt's log.
    pub fn fail(&self, message: &str, screen: &str) -> ! {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        panic!(
            "{message}\n--- screen ---\n{screen}\n--- malt.log (last lines) ---\n{}",
            tail.join("\n")
        );
    }

    /// Sends tmux key names (`Down`, `C-c`, …).
    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "main"];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    /// Types `text` literally (`+`, `-`, `q` are characters, not key names).
    pub fn type_text(&self, text: &str) {
        self.tmux(&["send-keys", "-t", "main", "-l", text]);
    }

    /// Resizes the window (and so the pane): malt gets SIGWINCH.
    pub fn resize(&self, width: u16, height: u16) {
        self.tmux(&[
            "resize-window",
            "-t",
            "main",
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
        ]);
    }

    /// malt's exit code, once it has exited. (Found anywhere on a line: a terminal left in raw
    /// mode or on the alternate screen prints it wherever the cursor was.)
    pub fn exit_code(screen: &str) -> Option<i32> {
        let (_, after) = screen.split_once("EXITED ")?;
        let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    }

    /// The terminal modes printed after malt exited: `["icanon", "echo"]` when it restored them.
    pub fn tty_modes(screen: &str) -> Option<Vec<String>> {
        let (_, after) = screen.split_once("TTY:")?;
        let (modes, _) = after.split_once("END")?;
        Some(modes.split_whitespace().map(str::to_string).collect())
    }

    /// Waits for malt to exit; returns its exit code and the screen after it.
    pub fn wait_exit(&self) -> (i32, String) {
        let screen = self.wait_for("malt to exit", TIMEOUT, |s| {
            Tmux::exit_code(s).is_some() && Tmux::tty_modes(s).is_some()
        });
        (Tmux::exit_code(&screen).unwrap(), screen)
    }

    /// Quits with `q` and checks that malt exited 0.
    pub fn quit(&self) {
        self.quit_screen();
    }

    /// [`Tmux::quit`], and the terminal modes are back to `icanon echo`.
    pub fn quit_restored(&self) {
        let screen = self.quit_screen();
        if Tmux::tty_modes(&screen).unwrap() != ["icanon", "echo"] {
            self.fail("the terminal modes were not restored", &screen);
        }
    }

    /// Quits with `q`, fails unless malt exits 0, and returns the screen after it.
    fn quit_screen(&self) -> String {
        self.type_text("q");
        let (code, screen) = self.wait_exit();
        if code != 0 {
            self.fail(&format!("malt exited with {code} after q"), &screen);
        }
        screen
    }

    /// Fails if malt has exited (crashed) by now.
    pub fn assert_running(&self, screen: &str) {
        if Tmux::exit_code(screen).is_some() {
            self.fail("malt exited", screen);
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        // tmux leaves the socket file behind when its server is killed.
        let socket = self
            .command()
            .args(["display-message", "-p", "#{socket_path}"])
            .stderr(Stdio::null())
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|p| p.ends_with(&self.socket));
        let _ = self
            .command()
            .arg("kill-server")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Some(path) = socket {
            let _ = std::fs::remove_file(path);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reading the screen
// ---------------------------------------------------------------------------------------------

/// The line showing `title`.
pub fn row<'a>(screen: &'a str, title: &str) -> Option<&'a str> {
    screen.lines().find(|l| l.contains(title))
}

/// Whether the line showing `title` contains `text`.
pub fn row_has(screen: &str, title: &str, text: &str) -> bool {
    row(screen, title).is_some_and(|l| l.contains(text))
}

/// The title bar (the first line): ` malt · Anime Manga …  user @ MyAnimeList`.
pub fn title_bar(screen: &str) -> &str {
    screen.lines().next().unwrap_or("")
}

/// The status tabs (the second line): `  Watching 4   Completed 1   On hold 0 …`.
pub fn tab_bar(screen: &str) -> &str {
    screen.lines().nth(1).unwrap_or("")
}

/// Whether `line` is the key-hint line: `+/- episode` (or `chapter`) … `q quit`.
fn is_hint_line(line: &str) -> bool {
    (line.contains("episode") || line.contains("chapter")) && line.contains("quit")
}

/// The key-hint line (the last line of the layout).
pub fn hint_line(screen: &str) -> Option<&str> {
    screen.lines().rfind(|l| is_hint_line(l))
}

/// The status bar: the line above the key hints.
pub fn status_bar(screen: &str) -> &str {
    let lines: Vec<&str> = screen.lines().collect();
    lines
        .iter()
        .rposition(|l| is_hint_line(l))
        .and_then(|i| i.checked_sub(1))
        .map_or("", |i| lines[i])
}

// ---------------------------------------------------------------------------------------------
// The seeded list and waiting on the fake
// ---------------------------------------------------------------------------------------------

/// A list with an NSFW ("gray") entry, one whose episode count is unknown (MAL says 0), and one
/// that is completed (so on the Completed tab, not on the Watching tab malt opens on). Sorted by
/// title on the Watching tab: Bocchi, Kill la Kill, Mushishi, One Piece.
pub fn seed(fake: &FakeMal) {
    fake.add_anime(Anime {
        watched: 5,
        score: 9,
        ..Anime::new(101, "Bocchi the Rock!", 12)
    });
    fake.add_anime(Anime {
        watched: 3,
        ..Anime::new(102, "One Piece", 0)
    });
    fake.add_anime(Anime {
        nsfw: "gray",
        watched: 2,
        ..Anime::new(103, "Kill la Kill", 24)
    });
    fake.add_anime(Anime {
        watched: 5,
        ..Anime::new(104, "Mushishi", 26)
    });
    fake.add_anime(Anime {
        status: "completed",
        watched: 26,
        ..Anime::new(105, "Cowboy Bebop", 26)
    });
}

/// The titles [`seed`] puts on the Watching tab, in screen order.
pub const TITLES: [&str; 4] = ["Bocchi the Rock!", "Kill la Kill", "Mushishi", "One Piece"];

/// Every one of `titles` is on screen and the status bar says the list is synced.
pub fn synced(titles: &[&str]) -> impl Fn(&str) -> bool {
    move |s: &str| titles.iter().all(|t| s.contains(t)) && status_bar(s).contains("synced")
}

/// The whole seeded list is on screen and the status bar says it is synced.
pub fn list_synced(screen: &str) -> bool {
    synced(&TITLES)(screen)
}

/// `num_watched_episodes` of every PATCH the fake accepted for `id`, in arrival order.
pub fn patched(fake: &FakeMal, id: u64) -> Vec<String> {
    fake.patches()
        .into_iter()
        .filter(|p| p.id == id)
        .map(|p| p.get("num_watched_episodes").unwrap_or("?").to_string())
        .collect()
}

/// How many times the fake was asked for the anime list (each sync asks once for the anime list
/// and once for the manga list).
pub fn list_fetches(fake: &FakeMal) -> usize {
    fake.requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/animelist"))
        .count()
}

/// Polls `cond` (every 50 ms, see [`Tmux::poll_every`]); panics with `what` (and the screen)
/// after `timeout`.
pub fn wait_until(tmux: &Tmux, what: &str, timeout: Duration, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        if start.elapsed() > timeout {
            tmux.fail(&format!("timed out waiting for {what}"), &tmux.screen());
        }
        std::thread::sleep(tmux.poll);
    }
}

// ---------------------------------------------------------------------------------------------
// AniList
// ---------------------------------------------------------------------------------------------

impl Home {
    /// An `[anilist]` table pointing at `fake` (implicit grant), with this home's loopback
    /// redirect URI, which it registers with the fake as the app's.
    pub fn anilist_config(&self, fake: &crate::support::anilist::FakeAnilist) -> String {
        fake.config_toml(&self.redirect_uri)
    }

    /// `$XDG_DATA_HOME/malt/anilist-tokens.json`
    pub fn anilist_tokens_path(&self) -> PathBuf {
        self.data_dir().join("anilist-tokens.json")
    }

    /// Stores an AniList login as `malt --login anilist` does: `{access_token, refresh_token: "",
    /// expires_at}`, mode 0600, written to a temp file and renamed into place (a running malt
    /// reading it meanwhile sees the old file or the new one, never half of one).
    pub fn write_anilist_tokens(&self, access: &str, expires_at: i64) {
        use std::os::unix::fs::PermissionsExt;
        let dir = self.data_dir();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let json = serde_json::json!({
            "access_token": access,
            "refresh_token": "",
            "expires_at": expires_at,
        });
        let path = self.anilist_tokens_path();
        let tmp = dir.join(".anilist-tokens.json.test.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
    }

    /// The stored AniList login, if any.
    pub fn anilist_tokens(&self) -> Option<serde_json::Value> {
        let bytes = std::fs::read(self.anilist_tokens_path()).ok()?;
        Some(serde_json::from_slice(&bytes).expect("AniList token file is JSON"))
    }

    /// Logs in to `fake` as its default user with a token that ends at `exp` (Unix seconds), as
    /// `malt --login anilist` would store it. Returns the token.
    pub fn log_in_anilist_until(
        &self,
        fake: &crate::support::anilist::FakeAnilist,
        exp: i64,
    ) -> String {
        let token = fake.issue_token_expiring(crate::support::anilist::DEFAULT_USER_ID, exp);
        self.write_anilist_tokens(&token, exp);
        token
    }

    /// Logs in to `fake` as its default user for a year (AniList's token lifetime).
    pub fn log_in_anilist(&self, fake: &crate::support::anilist::FakeAnilist) -> String {
        self.log_in_anilist_until(fake, unix_now() + crate::support::anilist::TOKEN_LIFETIME)
    }

    /// Puts an `xdg-open` first on `PATH` that only notes the address it is asked to open (see
    /// [`Home::browser_calls`]): the test then plays the browser itself.
    pub fn install_noting_browser(&self) {
        use std::os::unix::fs::PermissionsExt;
        let script = format!(
            "#!/bin/sh\nprintf '%s\\n' \"$1\" >> {}\n",
            sh_quote(&self.browser_log().display().to_string())
        );
        let path = self.path().join("bin/xdg-open");
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// A plain HTTP/1.1 `GET` of `url` (`http://host:port/path?query`, no fragment), as a browser
/// sends it: nothing followed, the connection closed after the answer. Returns the status, the
/// headers (names lowercased) and the body.
pub fn http_get(url: &str) -> (u16, Vec<(String, String)>, String) {
    let parsed = url::Url::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
    assert_eq!(parsed.scheme(), "http", "{url}");
    assert!(
        parsed.fragment().is_none(),
        "a browser never sends a fragment: {url}"
    );
    let host = parsed.host_str().unwrap();
    let port = parsed.port_or_known_default().unwrap();
    let target = match parsed.query() {
        Some(q) => format!("{}?{q}", parsed.path()),
        None => parsed.path().to_string(),
    };
    let mut stream = std::net::TcpStream::connect((host, port))
        .unwrap_or_else(|e| panic!("connect to {host}:{port}: {e}"));
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: malt-e2e-browser\r\nAccept: text/html\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text.as_str(), ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status line from {url}:\n{text}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, body.to_string())
}
