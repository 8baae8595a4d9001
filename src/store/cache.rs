//! The list as the service last confirmed it.

use rusqlite::params;

use super::{Store, StoreError};
use crate::domain::{ListEntry, MediaKind, Service, Status};

impl Store {
    /// Every cached entry of one service and status, by title.
    pub fn entries(&self, service: Service, status: Status) -> Result<Vec<ListEntry>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, title, progress, total, score, updated_at FROM entries
                 WHERE service = ?1 AND kind = ?2 AND status = ?3
                 ORDER BY title COLLATE NOCASE, id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(
                params![service.key(), MediaKind::Anime.key(), status.key()],
                |r| {
                    Ok(ListEntry {
                        id: r.get::<_, i64>(0)? as u64,
                        kind: MediaKind::Anime,
                        title: r.get(1)?,
                        status,
                        progress: r.get(2)?,
                        total: r.get(3)?,
                        score: r.get(4)?,
                        updated_at: r.get(5)?,
                    })
                },
            )
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// Replaces the cached entries of one status with a freshly fetched list, in one transaction.
    /// An entry whose change was confirmed after `fetch_started_ms` keeps its confirmed progress:
    /// the list was read before that change reached the service. With `keep_missing` (the answer
    /// had items that could not be read), entries missing from `entries` stay as they were.
    pub fn replace_entries(
        &mut self,
        service: Service,
        status: Status,
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
        let newer: Vec<(i64, u32, i64)> = {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT id, progress, acked_at FROM entries
                     WHERE service = ?1 AND kind = ?2 AND acked_at > ?3",
                )
                .map_err(err)?;
            stmt.query_map(
                params![service.key(), MediaKind::Anime.key(), fetch_started_ms],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .map_err(err)?
            .collect::<Result<_, _>>()
            .map_err(err)?
        };
        if !keep_missing {
            tx.execute(
                "DELETE FROM entries WHERE service = ?1 AND kind = ?2 AND status = ?3",
                params![service.key(), MediaKind::Anime.key(), status.key()],
            )
            .map_err(err)?;
        }
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO entries
                     (service, kind, id, title, status, progress, total, score, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )
                .map_err(err)?;
            for e in entries {
                insert
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
                    ])
                    .map_err(err)?;
            }
            let mut keep = tx
                .prepare_cached(
                    "UPDATE entries SET progress = ?4, acked_at = ?5
                     WHERE service = ?1 AND kind = ?2 AND id = ?3",
                )
                .map_err(err)?;
            for (id, progress, acked_at) in newer {
                keep.execute(params![
                    service.key(),
                    MediaKind::Anime.key(),
                    id,
                    progress,
                    acked_at
                ])
                .map_err(err)?;
            }
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
                Status::Watching,
                &[entry(2, "beta", 1), entry(1, "Alpha", 3)],
                i64::MAX,
                false,
            )
            .unwrap();
        let got = store.entries(Service::Mal, Status::Watching).unwrap();
        assert_eq!(got, vec![entry(1, "Alpha", 3), entry(2, "beta", 1)]);
        store
            .replace_entries(
                Service::Mal,
                Status::Watching,
                &[entry(2, "beta", 2)],
                i64::MAX,
                false,
            )
            .unwrap();
        assert_eq!(
            store.entries(Service::Mal, Status::Watching).unwrap(),
            vec![entry(2, "beta", 2)]
        );
        assert!(
            store
                .entries(Service::Demo, Status::Watching)
                .unwrap()
                .is_empty()
        );
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
                    Status::Watching,
                    &[entry(5, "Kept", 4)],
                    i64::MAX,
                    false,
                )
                .unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(
            store.entries(Service::Mal, Status::Watching).unwrap(),
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
                Status::Watching,
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
                        Change::Progress(n),
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
                .replace_entries(Service::Mal, Status::Watching, &many, i64::MAX, false)
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
        assert_eq!(due[0].change, Change::Progress(1), "order kept");
        assert_eq!(store.pending(Service::Mal).unwrap().len(), 10);
        assert_eq!(
            store.meta(Service::Mal, "account").unwrap().as_deref(),
            Some("someone")
        );
        assert!(
            store
                .entries(Service::Mal, Status::Watching)
                .unwrap()
                .is_empty(),
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
