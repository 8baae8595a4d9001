//! Schema versions, applied in order and recorded in `PRAGMA user_version`.

use rusqlite::{Connection, TransactionBehavior};

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
        -- When a change to the entry was last confirmed (ms), so a list read before it cannot undo it.
        acked_at   INTEGER NOT NULL DEFAULT 0,
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
        -- 1: refused for good, or held back by a conflict; out of the retry loop.
        failed          INTEGER NOT NULL DEFAULT 0,
        -- The process sending it now (`pid:start:nonce`) and until when (ms).
        lease_owner     TEXT,
        lease_until     INTEGER NOT NULL DEFAULT 0,
        -- The process that saw the service hold `base`; only that process sends without looking.
        verified_by     TEXT,
        -- A conflict with an edit made elsewhere, and the service's value then (NULL: not listed).
        conflict        INTEGER NOT NULL DEFAULT 0,
        theirs          INTEGER,
        -- Set while held back because another account logged in: the account it was made as.
        account         TEXT
    );
    CREATE INDEX outbox_entry ON outbox (service, kind, media_id, seq);
    CREATE TABLE meta (
        service TEXT NOT NULL,
        key     TEXT NOT NULL,
        value   TEXT NOT NULL,
        PRIMARY KEY (service, key)
    );",
    // 2: manga, every status, the whole entry (volumes, rewatching, dates, media facts); changes
    // to any field, removals and additions.
    "UPDATE entries SET status = 'current' WHERE status = 'watching';
    UPDATE entries SET status = 'planning' WHERE status = 'plan_to_watch';
    ALTER TABLE entries ADD COLUMN volumes INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE entries ADD COLUMN total_volumes INTEGER;
    ALTER TABLE entries ADD COLUMN repeating INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE entries ADD COLUMN start_date TEXT;
    ALTER TABLE entries ADD COLUMN finish_date TEXT;
    -- Facts about the work (type, cover, airing), JSON.
    ALTER TABLE entries ADD COLUMN media TEXT;
    -- field 'set': the fields to set, JSON; field 'remove': a removal. ('progress' rows of
    -- schema 1 set the progress to `value`.)
    ALTER TABLE outbox ADD COLUMN patch TEXT;
    -- For an entry added from search: the entry as shown, JSON.
    ALTER TABLE outbox ADD COLUMN entry TEXT;
    -- In a conflict, what the service held for the entry (JSON; null: not on the list).
    ALTER TABLE outbox ADD COLUMN theirs_state TEXT;
    -- What the screen showed of the entry before the change (JSON), to check every field it sets.
    ALTER TABLE outbox ADD COLUMN base_state TEXT;",
];

/// Brings the schema up to date. Refuses a database written by a newer malt. Runs under the write
/// lock, so two malts opening a new database at once do not both create it.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<Result<(), String>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version < 0 || version as usize > MIGRATIONS.len() {
        return Ok(Err(format!(
            "the database has schema version {version}, newer than this malt knows ({}); update malt",
            MIGRATIONS.len()
        )));
    }
    if version as usize == MIGRATIONS.len() {
        return Ok(Ok(()));
    }
    for sql in MIGRATIONS.iter().skip(version as usize) {
        tx.execute_batch(sql)?;
    }
    tx.pragma_update(None, "user_version", MIGRATIONS.len() as i64)?;
    tx.commit()?;
    Ok(Ok(()))
}
