//! The local database: the list cache, the outbox of changes not yet confirmed, and a few facts
//! per service. One thread owns the connection; everyone else talks to it through [`Db`].

mod cache;
mod change;
mod migrations;
mod outbox;

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

pub use crate::domain::Held;
pub use change::{Queued, Standing, Target};
pub use outbox::{NewOp, Retry};

/// A database problem, said plainly.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path}: {source}")]
    Sqlite {
        path: String,
        source: rusqlite::Error,
    },
    #[error("database {path}: {message}")]
    Schema { path: String, message: String },
    #[error("the database thread has stopped")]
    Closed,
}

impl StoreError {
    /// Another connection holds a lock this one could not wait out.
    pub fn is_busy(&self) -> bool {
        match self {
            StoreError::Sqlite { source, .. } => matches!(
                source.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            ),
            _ => false,
        }
    }

    /// The file is not a database, or its content is damaged.
    pub fn is_damage(&self) -> bool {
        match self {
            StoreError::Sqlite { source, .. } => matches!(
                source.sqlite_error_code(),
                Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt)
            ),
            _ => false,
        }
    }
}

/// What was done about a damaged database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// Where the damaged file is kept.
    pub copy: PathBuf,
    /// Queued changes read back from it.
    pub rescued: usize,
}

impl std::fmt::Display for Recovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the database was damaged and has been rebuilt ({} queued change{} kept; the list is fetched again; the old file is {})",
            self.rescued,
            if self.rescued == 1 { "" } else { "s" },
            self.copy.display()
        )
    }
}

/// What changed when another account logged in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSwitch {
    pub previous: String,
    pub current: String,
    /// Changes queued as `previous`, held back so they never reach `current`'s list.
    pub held: usize,
}

impl std::fmt::Display for AccountSwitch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "The list cached for {} was cleared.", self.previous)?;
        if self.held > 0 {
            write!(
                f,
                " {} change{} made as {} will not be sent to {} (log in as {} again to send {}).",
                self.held,
                if self.held == 1 { "" } else { "s" },
                self.previous,
                self.current,
                self.previous,
                if self.held == 1 { "it" } else { "them" },
            )?;
        }
        Ok(())
    }
}

/// The database, owned by one thread at a time.
pub struct Store {
    conn: Connection,
    label: String,
    /// This process's name on outbox leases and verifications (see `outbox::process_name`).
    owner: String,
}

impl Store {
    /// Opens (or creates) the database file: WAL, a busy timeout for a second process, mode 0600.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        // Several malts starting at once on a new database race to switch it to WAL and create the
        // schema; SQLite answers some of those races with "busy" at once, without waiting. Try
        // again for a few seconds before calling it an error.
        retry_busy(|| Store::open_once(path))
    }

    fn open_once(path: &Path) -> Result<Store, StoreError> {
        let label = path.display().to_string();
        let existed = path.exists();
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        )
        .map_err(|source| StoreError::Sqlite {
            path: label.clone(),
            source,
        })?;
        if !existed {
            let _ = crate::paths::set_mode(path, 0o600);
        }
        Store::init(conn, label, true)
    }

    /// Opens the database; a damaged one is kept aside (`malt.db.damaged-…`), a new one made, and
    /// the queued changes and facts that can still be read from the damaged one carried over.
    pub fn open_or_recover(path: &Path) -> Result<(Store, Option<Recovery>), StoreError> {
        let damage = match retry_busy(|| Store::open_once(path).and_then(|s| s.check().map(|()| s)))
        {
            Ok(store) => return Ok((store, None)),
            Err(e) if e.is_damage() => e,
            Err(e) => return Err(e),
        };
        tracing::warn!("database damaged, rebuilding: {damage}");
        let set_aside = |e: std::io::Error| StoreError::Schema {
            path: path.display().to_string(),
            message: format!("damaged, and it cannot be moved aside: {e}"),
        };
        let copy = crate::paths::set_aside(path).map_err(set_aside)?;
        let wal = |p: &Path| PathBuf::from(format!("{}-wal", p.display()));
        if wal(path).exists() {
            std::fs::rename(wal(path), wal(&copy)).map_err(set_aside)?;
        }
        let _ = std::fs::remove_file(format!("{}-shm", path.display()));
        // Read what can be read from a scratch copy, so the kept file stays as it was found.
        let scratch = PathBuf::from(format!("{}.salvage", path.display()));
        let (ops, meta) = match std::fs::copy(&copy, &scratch) {
            Ok(_) => {
                if wal(&copy).exists() {
                    let _ = std::fs::copy(wal(&copy), wal(&scratch));
                }
                salvage(&scratch)
            }
            Err(_) => (Vec::new(), Vec::new()),
        };
        for leftover in [
            scratch.clone(),
            wal(&scratch),
            PathBuf::from(format!("{}-shm", scratch.display())),
        ] {
            let _ = std::fs::remove_file(leftover);
        }
        let mut store = Store::open(path)?;
        let rescued = store.restore(&ops, &meta)?;
        Ok((store, Some(Recovery { copy, rescued })))
    }

    /// Reads every table through, so a damaged file shows itself at start.
    pub fn check(&self) -> Result<(), StoreError> {
        for table in ["entries", "outbox", "meta"] {
            self.conn
                .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| {
                    r.get::<_, i64>(0)
                })
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    fn restore(
        &mut self,
        ops: &[SalvagedOp],
        meta: &[(String, String, String)],
    ) -> Result<usize, StoreError> {
        let label = self.label.clone();
        let err = |source| StoreError::Sqlite {
            path: label.clone(),
            source,
        };
        let tx = self.write()?;
        for op in ops {
            tx.execute(
                "INSERT INTO outbox (service, kind, media_id, field, value, base, created_at, failed, last_error, account, patch, entry, base_state)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                rusqlite::params![
                    op.service, op.kind, op.media_id, op.field, op.value, op.base, op.created_at, op.failed, op.last_error, op.account,
                    op.patch, op.entry, op.base_state
                ],
            )
            .map_err(err)?;
        }
        for (service, key, value) in meta {
            // The last sync time belonged to the lost cache.
            if key != "last_sync" {
                tx.execute(
                    "INSERT OR REPLACE INTO meta (service, key, value) VALUES (?1, ?2, ?3)",
                    (service, key, value),
                )
                .map_err(err)?;
            }
        }
        tx.commit().map_err(err)?;
        Ok(ops.len())
    }

    /// A private in-memory database (the demo).
    pub fn open_in_memory() -> Result<Store, StoreError> {
        let label = ":memory:".to_string();
        let conn = Connection::open_in_memory().map_err(|source| StoreError::Sqlite {
            path: label.clone(),
            source,
        })?;
        Store::init(conn, label, false)
    }

    fn init(mut conn: Connection, label: String, wal: bool) -> Result<Store, StoreError> {
        let sqlite = |source| StoreError::Sqlite {
            path: label.clone(),
            source,
        };
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(sqlite)?;
        // 1 MiB of page cache (SQLite's default is 2): the list is read once at start and written
        // once per sync, so a larger cache buys nothing but resident memory.
        conn.pragma_update(None, "cache_size", -1024)
            .map_err(sqlite)?;
        if wal {
            conn.pragma_update(None, "journal_mode", "WAL")
                .map_err(sqlite)?;
            conn.pragma_update(None, "synchronous", "NORMAL")
                .map_err(sqlite)?;
        }
        migrations::migrate(&mut conn)
            .map_err(sqlite)?
            .map_err(|message| StoreError::Schema {
                path: label.clone(),
                message,
            })?;
        let owner = outbox::process_name();
        Ok(Store { conn, label, owner })
    }

    /// Starts a write transaction that takes the write lock at once (`BEGIN IMMEDIATE`), so two
    /// processes never both read, then both write.
    fn write(&mut self) -> Result<rusqlite::Transaction<'_>, StoreError> {
        let label = self.label.clone();
        self.conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|source| StoreError::Sqlite {
                path: label,
                source,
            })
    }

    /// Changes whenever another connection (another malt) commits to the database.
    pub fn data_version(&self) -> Result<i64, StoreError> {
        self.conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.label.clone(),
            source,
        }
    }

    /// Records who is logged in. When it is another account than before, that account's cache is
    /// dropped and its waiting changes are held back (refused, with the reason), so nothing made as
    /// one account is ever sent to another; they go out again if that account logs back in.
    pub fn switch_account(
        &mut self,
        service: crate::domain::Service,
        name: &str,
    ) -> Result<Option<AccountSwitch>, StoreError> {
        let label = self.label.clone();
        let err = |source| StoreError::Sqlite {
            path: label.clone(),
            source,
        };
        let previous = self.meta(service, "account")?;
        let tx = self.write()?;
        let mut switch = None;
        if let Some(previous) = previous.filter(|p| p != name) {
            tx.execute("DELETE FROM entries WHERE service = ?1", [service.key()])
                .map_err(err)?;
            tx.execute(
                "DELETE FROM meta WHERE service = ?1 AND key IN ('last_sync', 'score_format')",
                [service.key()],
            )
            .map_err(err)?;
            let reason = format!("made as {previous}; log in as {previous} to send it");
            let held = tx
                .execute(
                    "UPDATE outbox SET failed = 1, last_error = ?2, account = ?3,
                                       lease_owner = NULL, lease_until = 0
                     WHERE service = ?1 AND failed = 0",
                    rusqlite::params![service.key(), reason, previous],
                )
                .map_err(err)?;
            switch = Some(AccountSwitch {
                previous,
                current: name.to_string(),
                held,
            });
        }
        // Changes held back for this account when it logged out are its own again.
        tx.execute(
            "UPDATE outbox SET failed = 0, last_error = NULL, account = NULL, next_attempt_at = 0
             WHERE service = ?1 AND account = ?2",
            rusqlite::params![service.key(), name],
        )
        .map_err(err)?;
        tx.execute(
            "INSERT INTO meta (service, key, value) VALUES (?1, 'account', ?2)
             ON CONFLICT (service, key) DO UPDATE SET value = excluded.value",
            rusqlite::params![service.key(), name],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(switch)
    }

    /// A per-service fact (account name, last sync time).
    pub fn meta(
        &self,
        service: crate::domain::Service,
        key: &str,
    ) -> Result<Option<String>, StoreError> {
        use rusqlite::OptionalExtension;
        self.conn
            .query_row(
                "SELECT value FROM meta WHERE service = ?1 AND key = ?2",
                (service.key(), key),
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    pub fn set_meta(
        &self,
        service: crate::domain::Service,
        key: &str,
        value: &str,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO meta (service, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (service, key) DO UPDATE SET value = excluded.value",
                (service.key(), key, value),
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }
}

/// Runs `attempt` again while another connection holds a lock it could not wait out, for up to
/// five seconds.
fn retry_busy<T>(mut attempt: impl FnMut() -> Result<T, StoreError>) -> Result<T, StoreError> {
    let mut tries = 0;
    loop {
        match attempt() {
            Err(e) if e.is_busy() && tries < 50 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            other => return other,
        }
    }
}

/// An outbox row read back from a damaged database.
struct SalvagedOp {
    service: String,
    kind: String,
    media_id: i64,
    field: String,
    value: i64,
    base: i64,
    created_at: i64,
    failed: i64,
    last_error: Option<String>,
    account: Option<String>,
    patch: Option<String>,
    entry: Option<String>,
    base_state: Option<String>,
}

/// Reads what can still be read of the outbox and the facts from a damaged database, row by row,
/// stopping at the first unreadable one.
fn salvage(path: &Path) -> (Vec<SalvagedOp>, Vec<(String, String, String)>) {
    let mut ops = Vec::new();
    let mut meta = Vec::new();
    // A truncated file still claims its old size in the header, and SQLite then reports every
    // table as malformed. Clearing the header's "version-valid-for" field (bytes 92..96) makes it
    // size the file by what is really there, so the pages that survived can be read.
    {
        use std::io::{Seek, SeekFrom, Write};
        if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(path)
            && f.metadata().is_ok_and(|m| m.len() >= 100)
            && f.seek(SeekFrom::Start(92)).is_ok()
        {
            let _ = f.write_all(&[0; 4]);
        }
    }
    let Ok(conn) = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE) else {
        return (ops, meta);
    };
    let select = |extra: &str| {
        format!(
            "SELECT service, kind, media_id, field, value, base, created_at, failed, last_error, account, {extra}
             FROM outbox ORDER BY seq"
        )
    };
    // A database of schema 1 has no `patch`, `entry` and `base_state` columns.
    if let Ok(mut stmt) = conn
        .prepare(&select("patch, entry, base_state"))
        .or_else(|_| conn.prepare(&select("NULL, NULL, NULL")))
        && let Ok(mut rows) = stmt.query([])
    {
        while let Ok(Some(row)) = rows.next() {
            let op = (|| {
                Ok::<_, rusqlite::Error>(SalvagedOp {
                    service: row.get(0)?,
                    kind: row.get(1)?,
                    media_id: row.get(2)?,
                    field: row.get(3)?,
                    value: row.get(4)?,
                    base: row.get(5)?,
                    created_at: row.get(6)?,
                    failed: row.get(7)?,
                    last_error: row.get(8)?,
                    account: row.get(9)?,
                    patch: row.get(10)?,
                    entry: row.get(11)?,
                    base_state: row.get(12)?,
                })
            })();
            match op {
                Ok(op) => ops.push(op),
                Err(_) => break,
            }
        }
    }
    if let Ok(mut stmt) = conn.prepare("SELECT service, key, value FROM meta")
        && let Ok(mut rows) = stmt.query([])
    {
        while let Ok(Some(row)) = rows.next() {
            match (row.get(0), row.get(1), row.get(2)) {
                (Ok(s), Ok(k), Ok(v)) => meta.push((s, k, v)),
                _ => break,
            }
        }
    }
    (ops, meta)
}

type Job = Box<dyn FnOnce(&mut Store) + Send>;

/// A handle to the thread that owns the [`Store`]. Jobs run one at a time, in the order submitted.
#[derive(Clone)]
pub struct Db {
    tx: std::sync::mpsc::Sender<Job>,
}

impl Db {
    pub fn spawn(mut store: Store) -> Db {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("malt-db".into())
            .spawn(move || {
                for job in rx {
                    job(&mut store);
                }
            })
            .map(|_| ())
            .unwrap_or_else(|e| tracing::error!("cannot start the database thread: {e}"));
        Db { tx }
    }

    /// Queues `f` without waiting; the answer arrives on the returned receiver.
    /// Jobs submitted from one task run in the order they were submitted.
    pub fn submit<R, F>(&self, f: F) -> oneshot::Receiver<Result<R, StoreError>>
    where
        R: Send + 'static,
        F: FnOnce(&mut Store) -> Result<R, StoreError> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let job: Job = Box::new(move |store| {
            let _ = reply.send(f(store));
        });
        // If the thread is gone, `reply` is dropped and the receiver reports it.
        let _ = self.tx.send(job);
        rx
    }

    /// Runs `f` on the database thread and waits for its answer.
    pub async fn call<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Store) -> Result<R, StoreError> + Send + 'static,
    {
        self.submit(f).await.unwrap_or(Err(StoreError::Closed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Change, ListEntry, MediaKind, Service};

    #[test]
    fn another_account_never_gets_the_previous_ones_changes() {
        let mut s = Store::open_in_memory().unwrap();
        assert_eq!(s.switch_account(Service::Mal, "alice").unwrap(), None);
        let entry = ListEntry::watching(1, "A", 5, None, 0);
        s.replace_entries(Service::Mal, MediaKind::Anime, &[entry], 0, false)
            .unwrap();
        s.enqueue(Service::Mal, MediaKind::Anime, 1, Change::progress(6), 5, 0)
            .unwrap();

        let switch = s.switch_account(Service::Mal, "bob").unwrap().unwrap();
        assert_eq!(switch.held, 1);
        assert!(
            switch
                .to_string()
                .contains("1 change made as alice will not be sent to bob"),
            "{switch}"
        );
        assert!(s.entries(Service::Mal).unwrap().is_empty());
        assert!(
            s.due(Service::Mal, 0).unwrap().is_empty(),
            "nothing of alice's goes to bob"
        );
        assert!(
            s.refused(Service::Mal).unwrap().is_empty(),
            "nor can bob retry it by mistake"
        );
        // bob's own change to the same anime does not sweep alice's away.
        s.enqueue(Service::Mal, MediaKind::Anime, 1, Change::progress(1), 0, 0)
            .unwrap();
        assert_eq!(
            s.drop_refused(Service::Mal, MediaKind::Anime, 1).unwrap(),
            0
        );
        let bobs = s.due(Service::Mal, 0).unwrap();
        s.complete(&bobs[0], &crate::domain::Ack::progress(1))
            .unwrap();

        // alice is back: her change is hers to send again.
        let back = s.switch_account(Service::Mal, "alice").unwrap().unwrap();
        assert_eq!(back.held, 0);
        let due = s.due(Service::Mal, 0).unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].change, Change::progress(6));
        // Logging in again as the same account changes nothing.
        assert_eq!(s.switch_account(Service::Mal, "alice").unwrap(), None);
        assert_eq!(s.due(Service::Mal, 0).unwrap().len(), 1);
    }
}
