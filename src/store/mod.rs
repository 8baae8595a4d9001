//! The local database: the list cache, the outbox of changes not yet confirmed, and a few facts
//! per service. One thread owns the connection; everyone else talks to it through [`Db`].

mod cache;
mod migrations;
mod outbox;

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

pub use outbox::Retry;

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

/// The database, owned by one thread at a time.
pub struct Store {
    conn: Connection,
    label: String,
    /// This process's name on outbox leases: `pid:nonce`.
    owner: String,
}

impl Store {
    /// Opens (or creates) the database file: WAL, a busy timeout for a second process, mode 0600.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
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
        let owner = format!(
            "{}:{}",
            std::process::id(),
            crate::auth::pkce::random_string(8)
        );
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

/// The default database file.
pub fn default_path(data_dir: &Path) -> PathBuf {
    data_dir.join("malt.db")
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
