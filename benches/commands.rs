//! The commands for scripts, whole process: how long `malt list --json` takes over a 5,000-entry
//! cache (the release binary, started and ended each time, output read to the end), and how many
//! requests `malt progress QUERY +1` costs against the fake MyAnimeList. Run with
//! `cargo bench --bench commands`; it prints its figures against their targets and always exits 0
//! (a missed target is printed as `MISSED`).

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use malt::auth::{TokenFile, TokenSet};
use malt::domain::{ListEntry, MediaKind, Service, Status};
use malt::store::Store;
use support::mal::{Anime, FakeMal};

const ENTRIES: usize = 5_000;
const RUNS: usize = 30;
const LIST_TARGET_MS: f64 = 30.0;

type Res<T> = Result<T, String>;

fn main() {
    println!("malt commands benchmark ({ENTRIES} cached entries)");
    match list_json() {
        Ok((median, min, max, bytes)) => println!(
            "  {:<52} {:>8.1} ms  (min {min:.1}, max {max:.1}; {bytes} bytes of JSON)  target ≤ {LIST_TARGET_MS} ms  {}",
            "malt list --json --status all, whole process (median)",
            median,
            verdict(median <= LIST_TARGET_MS)
        ),
        Err(e) => println!("  malt list --json: not measured: {e}"),
    }
    match progress_requests() {
        Ok((requests, methods)) => println!(
            "  {:<52} {:>8}     ({methods})  target 1  {}",
            "requests of `malt progress QUERY +1` after a sync",
            requests,
            verdict(requests == 1)
        ),
        Err(e) => println!("  malt progress: not measured: {e}"),
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok { "ok" } else { "MISSED" }
}

/// A private home: `(root, environment)`.
fn home(root: &Path, config: &str) -> Res<Vec<(String, PathBuf)>> {
    let env = vec![
        ("HOME".to_string(), root.join("home")),
        ("XDG_CONFIG_HOME".to_string(), root.join("config")),
        ("XDG_DATA_HOME".to_string(), root.join("data")),
        ("XDG_STATE_HOME".to_string(), root.join("state")),
    ];
    for (_, dir) in &env {
        std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    }
    let config_dir = root.join("config/malt");
    std::fs::create_dir_all(&config_dir).map_err(|e| e.to_string())?;
    std::fs::write(config_dir.join("config.toml"), config).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(root.join("data/malt")).map_err(|e| e.to_string())?;
    Ok(env)
}

fn malt(env: &[(String, PathBuf)], args: &[&str]) -> Res<Output> {
    Command::new(env!("CARGO_BIN_EXE_malt"))
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("NO_PROXY", "127.0.0.1")
        .output()
        .map_err(|e| format!("run malt: {e}"))
}

fn tokens() -> TokenSet {
    TokenSet::new(
        "bench-access".into(),
        "bench-refresh".into(),
        Duration::from_secs(3600),
    )
}

/// `malt list --json --status all` over a cache of [`ENTRIES`] entries, network down.
fn list_json() -> Res<(f64, f64, f64, usize)> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let root = dir.path().to_path_buf();
    // `MALT_BENCH_KEEP=1` keeps the home, to profile malt in it.
    if std::env::var_os("MALT_BENCH_KEEP").is_some() {
        println!(
            "  (the 5,000-entry home is kept in {})",
            dir.keep().display()
        );
    }
    let root = root.as_path();
    let config = "[mal]\nclient_id = \"bench\"\napi_url = \"http://127.0.0.1:9/v2\"\n";
    let env = home(root, config)?;
    let data = root.join("data/malt");
    TokenFile::new(data.join("mal-tokens.json"))
        .save(&tokens())
        .map_err(|e| e.to_string())?;
    let entries: Vec<ListEntry> = (0..ENTRIES)
        .map(|i| ListEntry {
            progress: (i % 24) as u32,
            total: Some(24),
            score: (i % 11) as u8,
            updated_at: Some("2026-01-15T10:00:00+00:00".into()),
            ..ListEntry::new(
                i as u64 + 1,
                if i % 4 == 0 {
                    MediaKind::Manga
                } else {
                    MediaKind::Anime
                },
                &format!("Benchmark title number {i}"),
                Status::ALL[i % 5],
            )
        })
        .collect();
    let mut store = Store::open(&data.join("malt.db")).map_err(|e| e.to_string())?;
    for kind in MediaKind::ALL {
        store
            .replace_entries(Service::Mal, kind, &entries, i64::MAX, false)
            .map_err(|e| e.to_string())?;
    }
    store
        .set_meta(Service::Mal, "last_sync", "2026-01-15T10:00:00Z")
        .map_err(|e| e.to_string())?;
    drop(store);
    let mut times = Vec::new();
    let mut bytes = 0;
    for _ in 0..RUNS {
        let start = Instant::now();
        let out = malt(&env, &["list", "--json", "--status", "all"])?;
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        let parsed: serde_json::Value =
            serde_json::from_slice(&out.stdout).map_err(|e| format!("not JSON: {e}"))?;
        let n = parsed.as_array().map_or(0, Vec::len);
        if n != ENTRIES {
            return Err(format!("{n} entries listed, not {ENTRIES}"));
        }
        bytes = out.stdout.len();
    }
    times.sort_by(f64::total_cmp);
    Ok((times[RUNS / 2], times[0], times[RUNS - 1], bytes))
}

/// `malt sync`, then `malt progress … +1`: the requests the second one made.
fn progress_requests() -> Res<(usize, String)> {
    let fake = FakeMal::start_background();
    fake.add_anime(Anime {
        watched: 3,
        ..Anime::new(7, "Bocchi the Rock!", 12)
    });
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let config = format!(
        "[mal]\nclient_id = \"{}\"\napi_url = \"{}\"\nauth_url = \"{}\"\n",
        FakeMal::CLIENT_ID,
        fake.api_url(),
        fake.auth_url()
    );
    let env = home(dir.path(), &config)?;
    let (access, refresh) = fake.issue_tokens(3600);
    TokenFile::new(dir.path().join("data/malt/mal-tokens.json"))
        .save(&TokenSet::new(access, refresh, Duration::from_secs(3600)))
        .map_err(|e| e.to_string())?;
    let synced = malt(&env, &["sync"])?;
    if !synced.status.success() {
        return Err(String::from_utf8_lossy(&synced.stderr).into_owned());
    }
    let before = fake.requests().len();
    let out = malt(&env, &["progress", "bocchi", "+1"])?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let made = &fake.requests()[before..];
    let methods: Vec<String> = made
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    Ok((made.len(), methods.join(", ")))
}
