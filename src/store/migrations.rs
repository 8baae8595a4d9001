//! Schema versions, applied in order and recorded in `PRAGMA user_version`.

use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    // 1: list cache, outbox, per-service facts.
    "CREATE TABLE entries (
        service    TEXT    NOT NULL,
        kind       TEXT    NOT NULL,
        id         INTEGER NOT NULL,
        title      TEXT    NOT NULL,
        status     TEXT    NOT NULL,
        progress   INTEGER NOT NULL,
        total      INTEGER,
        score      INTEGER NOT NULL DEFAULT 0,
        updated_at TEXT,
        PRIMARY KEY (service, kind, id)
    );
    CREATE TABLE outbox (
        seq             INTEGER PRIMARY KEY AUTOINCREMENT,
        service         TEXT    NOT NULL,
        kind            TEXT    NOT NULL,
        media_id        INTEGER NOT NULL,
        field           TEXT    NOT NULL,
        value           INTEGER NOT NULL,
        base            INTEGER NOT NULL,
        created_at      INTEGER NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL DEFAULT 0,
        last_error      TEXT,
        failed          INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX outbox_entry ON outbox (service, kind, media_id, seq);
    CREATE TABLE meta (
        service TEXT NOT NULL,
        key     TEXT NOT NULL,
        value   TEXT NOT NULL,
        PRIMARY KEY (service, key)
    );",
    // 2: outbox leases, so two malt processes never send the same change at once.
    "ALTER TABLE outbox ADD COLUMN lease_owner TEXT;
    ALTER TABLE outbox ADD COLUMN lease_until INTEGER NOT NULL DEFAULT 0;",
    // 3: when a change to an entry was last confirmed, so a list fetched before it cannot undo it.
    "ALTER TABLE entries ADD COLUMN acked_at INTEGER NOT NULL DEFAULT 0;",
    // 4: conflicts with edits made elsewhere.
    "ALTER TABLE outbox ADD COLUMN verified INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE outbox ADD COLUMN conflict INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE outbox ADD COLUMN theirs INTEGER;",
];

/// Brings the schema up to date. Refuses a database written by a newer malt.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<Result<(), String>> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version < 0 || version as usize > MIGRATIONS.len() {
        return Ok(Err(format!(
            "the database has schema version {version}, newer than this malt knows ({}); update malt",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(Ok(()))
}
