//! The list as the service last confirmed it.

use rusqlite::{Row, Transaction, params};

use super::{Store, StoreError};
use crate::domain::{ListEntry, ListState, Media, MediaKind, Service, Status};

/// The status of a tombstone: an entry whose removal the service confirmed.
const REMOVED: &str = "removed";

pub(super) const ENTRY_COLUMNS: &str = "kind, id, title, status, progress, total, score, updated_at, volumes, \
                             total_volumes, repeating, start_date, finish_date, media";

/// A cache row as an entry; `None` for a row this malt cannot read (written by a newer one).
pub(super) fn entry_from_row(r: &Row<'_>) -> rusqlite::Result<Option<ListEntry>> {
    let kind: String = r.get(0)?;
    let status: String = r.get(3)?;
    let (Some(kind), Some(status)) = (MediaKind::from_key(&kind), Status::from_key(&status)) else {
        return Ok(None);
    };
    let media: Option<String> = r.get(13)?;
    Ok(Some(ListEntry {
        id: r.get::<_, i64>(1)? as u64,
        kind,
        title: r.get(2)?,
        status,
        progress: r.get(4)?,
        total: r.get(5)?,
        score: r.get(6)?,
        updated_at: r.get(7)?,
        volumes: r.get(8)?,
        total_volumes: r.get(9)?,
        repeating: r.get(10)?,
        start_date: r.get(11)?,
        finish_date: r.get(12)?,
        // Facts about the work are a nicety: unreadable ones are fetched again.
        media: media
            .and_then(|m| serde_json::from_str::<Media>(&m).ok())
            .unwrap_or_default(),
    }))
}

/// Writes (or overwrites) one cache row.
pub(super) fn put_entry(
    tx: &Transaction<'_>,
    service: Service,
    e: &ListEntry,
    acked_at: i64,
) -> rusqlite::Result<()> {
    let media = serde_json::to_string(&e.media).ok();
    tx.prepare_cached(
        "INSERT OR REPLACE INTO entries
         (service, kind, id, title, status, progress, total, score, updated_at, volumes,
          total_volumes, repeating, start_date, finish_date, media, acked_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
    )?
    .execute(params![
        service.key(),
        e.kind.key(),
        e.id as i64,
        e.title,
        e.status.key(),
        e.progress,
        e.total,
        e.score,
        e.updated_at,
        e.volumes,
        e.total_volumes,
        e.repeating,
        e.start_date,
        e.finish_date,
        media,
        acked_at,
    ])?;
    Ok(())
}

/// Records what the service confirmed for an entry: its new state, or (`None`) that it is off
/// the list. `added` is the entry as shown when it was added from search, for an entry the cache
/// does not hold yet.
pub(super) fn confirm(
    tx: &Transaction<'_>,
    service: Service,
    kind: MediaKind,
    id: u64,
    state: Option<&ListState>,
    added: Option<&ListEntry>,
    now_ms: i64,
) -> rusqlite::Result<()> {
    let Some(state) = state else {
        // Kept as a tombstone (a status no reader knows, so it is never shown) until the next
        // list fetched after it: a list read before the removal must not bring the entry back.
        tx.execute(
            "UPDATE entries SET status = ?4, acked_at = ?5 WHERE service = ?1 AND kind = ?2 AND id = ?3",
            params![service.key(), kind.key(), id as i64, REMOVED, now_ms],
        )?;
        return Ok(());
    };
    let current = tx
        .prepare_cached(&format!(
            "SELECT {ENTRY_COLUMNS} FROM entries WHERE service = ?1 AND kind = ?2 AND id = ?3"
        ))?
        .query_row(
            params![service.key(), kind.key(), id as i64],
            entry_from_row,
        )
        .ok()
        .flatten();
    if let Some(mut entry) = current.or_else(|| added.cloned()) {
        entry.set_state(state);
        put_entry(tx, service, &entry, now_ms)?;
    }
    Ok(())
}

impl Store {
    /// Every cached entry of one service, anime and manga, every status, by title.
    pub fn entries(&self, service: Service) -> Result<Vec<ListEntry>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {ENTRY_COLUMNS} FROM entries WHERE service = ?1"
            ))
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![service.key()], entry_from_row)
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            if let Some(entry) = row.map_err(|e| self.err(e))? {
                out.push(entry);
            }
        }
        // Sorted here rather than by SQLite, whose sorter would hold a second copy of the list.
        out.sort_by_cached_key(|e| (e.title.to_lowercase(), e.id));
        Ok(out)
    }

    /// Replaces the cached entries of one kind (every status) with a freshly fetched list, in one
    /// transaction. An entry whose change was confirmed after `fetch_started_ms` keeps what was
    /// confirmed: the list was read before that change reached the service. With `keep_missing`
    /// (the answer had items that could not be read), entries missing from `entries` stay as
    /// they were.
    pub fn replace_entries(
        &mut self,
        service: Service,
        kind: MediaKind,
        entries: &[ListEntry],
        fetch_started_ms: i64,
        keep_missing: bool,
    ) -> Result<(), StoreError> {
        let label = self.label.clone();
        let err = |source| StoreError::Sqlite {
            path: label.clone(),
            source,
        };
        let tx = self.write()?;
        let newer: Vec<(ListEntry, i64)> = {
            let mut stmt = tx
                .prepare_cached(&format!(
                    "SELECT {ENTRY_COLUMNS}, acked_at FROM entries
                     WHERE service = ?1 AND kind = ?2 AND acked_at > ?3"
                ))
                .map_err(err)?;
            let rows = stmt
                .query_map(params![service.key(), kind.key(), fetch_started_ms], |r| {
                    Ok(entry_from_row(r)?.map(|e| (e, r.get::<_, i64>(14).unwrap_or(0))))
                })
                .map_err(err)?;
            let mut newer = Vec::new();
            for row in rows {
                newer.extend(row.map_err(err)?);
            }
            newer
        };
        // Removals confirmed after the list was read: it may still have them.
        let removed: Vec<i64> = {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT id FROM entries
                     WHERE service = ?1 AND kind = ?2 AND status = ?3 AND acked_at > ?4",
                )
                .map_err(err)?;
            stmt.query_map(
                params![service.key(), kind.key(), REMOVED, fetch_started_ms],
                |r| r.get(0),
            )
            .map_err(err)?
            .collect::<Result<_, _>>()
            .map_err(err)?
        };
        if !keep_missing {
            tx.execute(
                "DELETE FROM entries WHERE service = ?1 AND kind = ?2",
                params![service.key(), kind.key()],
            )
            .map_err(err)?;
        }
        for e in entries.iter().filter(|e| e.kind == kind) {
            put_entry(&tx, service, e, 0).map_err(err)?;
        }
        for (mut kept, acked_at) in newer {
            // The list's facts about the work are newer; the user's part was confirmed later.
            if let Some(fetched) = entries.iter().find(|e| e.id == kept.id && e.kind == kind) {
                let state = kept.state();
                kept = fetched.clone();
                kept.set_state(&state);
            }
            put_entry(&tx, service, &kept, acked_at).map_err(err)?;
        }
        for id in removed {
            tx.execute(
                "DELETE FROM entries WHERE service = ?1 AND kind = ?2 AND id = ?3",
                params![service.key(), kind.key(), id],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: u64, title: &str, progress: u32) -> ListEntry {
        ListEntry::watching(id, title, progress, Some(12), 7)
    }

    #[test]
    fn replace_then_read_back_sorted() {
        let mut store = Store::open_in_memory().unwrap();
        store
            .replace_entries(
                Service::Mal,
                MediaKind::Anime,
                &[entry(2, "beta", 1), entry(1, "Alpha", 3)],
                i64::MAX,
                false,
            )
            .unwrap();
        let got = store.entries(Service::Mal).unwrap();
        assert_eq!(got, vec![entry(1, "Alpha", 3), entry(2, "beta", 1)]);
        store
            .replace_entries(
                Service::Mal,
                MediaKind::Anime,
                &[entry(2, "beta", 2)],
                i64::MAX,
                false,
            )
            .unwrap();
        assert_eq!(
            store.entries(Service::Mal).unwrap(),
            vec![entry(2, "beta", 2)]
        );
        assert!(store.entries(Service::Demo).unwrap().is_empty());
    }

    #[test]
    fn file_database_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("malt.db");
        {
            let mut store = Store::open(&path).unwrap();
            store
                .replace_entries(
                    Service::Mal,
                    MediaKind::Anime,
                    &[entry(5, "Kept", 4)],
                    i64::MAX,
                    false,
                )
                .unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(
            store.entries(Service::Mal).unwrap(),
            vec![entry(5, "Kept", 4)]
        );
    }

    #[test]
    fn a_file_that_is_not_a_database_is_kept_aside_and_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("malt.db");
        let junk = b"this is not sqlite, just some text that is long enough to matter".repeat(10);
        std::fs::write(&path, &junk).unwrap();
        let (mut store, recovery) = Store::open_or_recover(&path).unwrap();
        let recovery = recovery.expect("recovered");
        assert_eq!(recovery.rescued, 0);
        assert_eq!(
            std::fs::read(&recovery.copy).unwrap(),
            junk,
            "the bad file is kept as it was"
        );
        assert!(recovery.to_string().contains("damaged"));
        store
            .replace_entries(
                Service::Mal,
                MediaKind::Anime,
                &[entry(1, "A", 1)],
                i64::MAX,
                false,
            )
            .unwrap();
        // A healthy database opens with nothing to report.
        drop(store);
        assert!(Store::open_or_recover(&path).unwrap().1.is_none());
    }

    #[test]
    fn a_truncated_database_keeps_the_queued_changes_it_can_read() {
        use crate::domain::Change;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("malt.db");
        {
            let mut store = Store::open(&path).unwrap();
            for n in 1..=10 {
                store
                    .enqueue(
                        Service::Mal,
                        MediaKind::Anime,
                        7,
                        Change::progress(n),
                        n - 1,
                        0,
                    )
                    .unwrap();
            }
            store.set_meta(Service::Mal, "account", "someone").unwrap();
            let many: Vec<_> = (0..5000)
                .map(|i| entry(100 + i, &format!("Title {i:05} with some length"), 0))
                .collect();
            store
                .replace_entries(Service::Mal, MediaKind::Anime, &many, i64::MAX, false)
                .unwrap();
        } // closing checkpoints the WAL into the file
        let len = std::fs::metadata(&path).unwrap().len();
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(len / 2).unwrap();
        drop(file);
        let (mut store, recovery) = Store::open_or_recover(&path).unwrap();
        let recovery = recovery.expect("the damage is noticed at open");
        assert_eq!(recovery.rescued, 10);
        let due = store.due(Service::Mal, 0).unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].change, Change::progress(1), "order kept");
        assert_eq!(store.pending(Service::Mal).unwrap().len(), 10);
        assert_eq!(
            store.meta(Service::Mal, "account").unwrap().as_deref(),
            Some("someone")
        );
        assert!(
            store.entries(Service::Mal).unwrap().is_empty(),
            "the cache is fetched again"
        );
    }

    #[test]
    fn a_file_that_is_not_a_database_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("malt.db");
        std::fs::write(
            &path,
            b"this is not sqlite, just some text that is long enough to matter",
        )
        .unwrap();
        let err = Store::open(&path).err().expect("must fail");
        assert!(err.to_string().contains("malt.db"), "{err}");
    }
}
