//! Changes the user made that the service has not confirmed yet. A change is written here before
//! anything is sent, so it survives a crash, a kill or a closed laptop.

use rusqlite::{OptionalExtension, Row, params};

use super::{Store, StoreError};
use crate::domain::{Change, MediaKind, Op, Service};

/// When to try an op again, and why it failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retry {
    pub attempts: u32,
    pub next_attempt_at_ms: i64,
    pub error: String,
}

const OP_COLUMNS: &str = "seq, service, kind, media_id, field, value, base, attempts";

fn op_from_row(row: &Row<'_>) -> rusqlite::Result<Option<Op>> {
    let service: String = row.get(1)?;
    let field: String = row.get(4)?;
    let service = match service.as_str() {
        "mal" => Service::Mal,
        "demo" => Service::Demo,
        _ => return Ok(None),
    };
    let change = match field.as_str() {
        "progress" => Change::Progress(row.get(5)?),
        _ => return Ok(None),
    };
    Ok(Some(Op {
        seq: row.get(0)?,
        service,
        kind: MediaKind::Anime,
        media_id: row.get::<_, i64>(3)? as u64,
        change,
        base: row.get(6)?,
        attempts: row.get(7)?,
    }))
}

impl Store {
    /// Records a change; returns its sequence number. Changes the service refused earlier for the
    /// same entry are superseded by it and dropped.
    pub fn enqueue(
        &mut self,
        service: Service,
        kind: MediaKind,
        media_id: u64,
        change: Change,
        base: u32,
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        let (field, value) = match change {
            Change::Progress(n) => ("progress", n),
        };
        let label = self.label.clone();
        let err = |source| StoreError::Sqlite {
            path: label.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(err)?;
        tx.execute(
            "DELETE FROM outbox WHERE service = ?1 AND kind = ?2 AND media_id = ?3 AND failed = 1",
            params![service.key(), kind.key(), media_id as i64],
        )
        .map_err(err)?;
        tx.execute(
            "INSERT INTO outbox (service, kind, media_id, field, value, base, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                service.key(),
                kind.key(),
                media_id as i64,
                field,
                value,
                base,
                now_ms
            ],
        )
        .map_err(err)?;
        let seq = tx.last_insert_rowid();
        tx.commit().map_err(err)?;
        Ok(seq)
    }

    /// Changes the service refused for good, oldest first, with the reason.
    pub fn refused(&self, service: Service) -> Result<Vec<(Op, String)>, StoreError> {
        let sql = format!(
            "SELECT {OP_COLUMNS}, COALESCE(last_error, '') FROM outbox
             WHERE service = ?1 AND failed = 1 ORDER BY seq"
        );
        let mut stmt = self.conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![service.key()], |row| {
                Ok(op_from_row(row)?.map(|op| (op, row.get::<_, String>(8).unwrap_or_default())))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            if let Some(pair) = row.map_err(|e| self.err(e))? {
                out.push(pair);
            }
        }
        Ok(out)
    }

    /// Puts an entry's refused changes back in the queue, to be tried at once. Returns how many.
    pub fn retry_refused(
        &mut self,
        service: Service,
        kind: MediaKind,
        media_id: u64,
    ) -> Result<usize, StoreError> {
        self.conn
            .execute(
                "UPDATE outbox SET failed = 0, attempts = 0, next_attempt_at = 0, last_error = NULL
                 WHERE service = ?1 AND kind = ?2 AND media_id = ?3 AND failed = 1",
                params![service.key(), kind.key(), media_id as i64],
            )
            .map_err(|e| self.err(e))
    }

    /// Forgets an entry's refused changes. Returns how many.
    pub fn drop_refused(
        &mut self,
        service: Service,
        kind: MediaKind,
        media_id: u64,
    ) -> Result<usize, StoreError> {
        self.conn
            .execute(
                "DELETE FROM outbox WHERE service = ?1 AND kind = ?2 AND media_id = ?3 AND failed = 1",
                params![service.key(), kind.key(), media_id as i64],
            )
            .map_err(|e| self.err(e))
    }

    /// Every change still waiting to be delivered (not given up on), oldest first.
    pub fn pending(&self, service: Service) -> Result<Vec<Op>, StoreError> {
        let sql = format!(
            "SELECT {OP_COLUMNS} FROM outbox WHERE service = ?1 AND failed = 0 ORDER BY seq"
        );
        self.select_ops(&sql, params![service.key()])
    }

    /// The changes that may be sent now: for each entry, only its oldest waiting change, and only
    /// once its back-off has passed. Later changes to an entry wait for the earlier ones.
    pub fn due(&self, service: Service, now_ms: i64) -> Result<Vec<Op>, StoreError> {
        let sql = format!(
            "SELECT {OP_COLUMNS} FROM outbox o
             WHERE o.service = ?1 AND o.failed = 0 AND o.next_attempt_at <= ?2
               AND o.seq = (SELECT MIN(p.seq) FROM outbox p
                            WHERE p.service = o.service AND p.kind = o.kind
                              AND p.media_id = o.media_id AND p.failed = 0)
             ORDER BY o.seq"
        );
        self.select_ops(&sql, params![service.key(), now_ms])
    }

    /// When the earliest waiting change may be tried again, if any is waiting.
    pub fn next_attempt_at(&self, service: Service) -> Result<Option<i64>, StoreError> {
        self.conn
            .query_row(
                "SELECT MIN(next_attempt_at) FROM outbox WHERE service = ?1 AND failed = 0",
                params![service.key()],
                |r| r.get(0),
            )
            .optional()
            .map(Option::flatten)
            .map_err(|e| self.err(e))
    }

    /// The service confirmed `op`: forget it and remember the confirmed value in the cache.
    pub fn complete(&mut self, op: &Op, confirmed_progress: u32) -> Result<(), StoreError> {
        let label = self.label.clone();
        let err = |source| StoreError::Sqlite {
            path: label.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(err)?;
        tx.execute("DELETE FROM outbox WHERE seq = ?1", params![op.seq])
            .map_err(err)?;
        tx.execute(
            "UPDATE entries SET progress = ?1 WHERE service = ?2 AND kind = ?3 AND id = ?4",
            params![
                confirmed_progress,
                op.service.key(),
                op.kind.key(),
                op.media_id as i64
            ],
        )
        .map_err(err)?;
        tx.commit().map_err(err)
    }

    /// Delivery failed for a passing reason: try again later.
    pub fn reschedule(&mut self, seq: i64, retry: &Retry) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE outbox SET attempts = ?2, next_attempt_at = ?3, last_error = ?4 WHERE seq = ?1",
                params![seq, retry.attempts, retry.next_attempt_at_ms, retry.error],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Every waiting change may be tried now, whatever its back-off (a new login, a restart).
    pub fn due_now(&mut self, service: Service) -> Result<usize, StoreError> {
        self.conn
            .execute(
                "UPDATE outbox SET next_attempt_at = 0 WHERE service = ?1 AND failed = 0",
                params![service.key()],
            )
            .map_err(|e| self.err(e))
    }

    /// The service refused the change for good: keep it, but out of the retry loop.
    pub fn mark_failed(&mut self, seq: i64, error: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE outbox SET failed = 1, last_error = ?2 WHERE seq = ?1",
                params![seq, error],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    fn select_ops(&self, sql: &str, args: impl rusqlite::Params) -> Result<Vec<Op>, StoreError> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(|e| self.err(e))?;
        let rows = stmt.query_map(args, op_from_row).map_err(|e| self.err(e))?;
        let mut ops = Vec::new();
        for row in rows {
            // Rows this version does not understand (written by a newer malt) are left alone.
            if let Some(op) = row.map_err(|e| self.err(e))? {
                ops.push(op);
            }
        }
        Ok(ops)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> Store {
        Store::open_in_memory().unwrap()
    }

    fn push(s: &mut Store, id: u64, n: u32) -> i64 {
        s.enqueue(
            Service::Mal,
            MediaKind::Anime,
            id,
            Change::Progress(n),
            n - 1,
            0,
        )
        .unwrap()
    }

    fn values(ops: &[Op]) -> Vec<(u64, u32)> {
        ops.iter()
            .map(|o| match o.change {
                Change::Progress(n) => (o.media_id, n),
            })
            .collect()
    }

    #[test]
    fn due_gives_only_the_oldest_change_per_entry() {
        let mut s = store();
        push(&mut s, 1, 6);
        push(&mut s, 1, 7);
        push(&mut s, 2, 3);
        push(&mut s, 1, 8);
        assert_eq!(
            values(&s.due(Service::Mal, 0).unwrap()),
            vec![(1, 6), (2, 3)]
        );
        assert_eq!(s.pending(Service::Mal).unwrap().len(), 4);
    }

    #[test]
    fn complete_moves_to_the_next_change_in_order() {
        let mut s = store();
        push(&mut s, 1, 6);
        push(&mut s, 1, 7);
        let first = s.due(Service::Mal, 0).unwrap().remove(0);
        s.complete(&first, 6).unwrap();
        assert_eq!(values(&s.due(Service::Mal, 0).unwrap()), vec![(1, 7)]);
    }

    #[test]
    fn a_backing_off_change_holds_back_later_ones_of_the_same_entry() {
        let mut s = store();
        let seq = push(&mut s, 1, 6);
        push(&mut s, 1, 7);
        push(&mut s, 2, 1);
        s.reschedule(
            seq,
            &Retry {
                attempts: 1,
                next_attempt_at_ms: 5_000,
                error: "offline".into(),
            },
        )
        .unwrap();
        assert_eq!(values(&s.due(Service::Mal, 1_000).unwrap()), vec![(2, 1)]);
        assert_eq!(s.next_attempt_at(Service::Mal).unwrap(), Some(0));
        assert_eq!(
            values(&s.due(Service::Mal, 5_000).unwrap()),
            vec![(1, 6), (2, 1)]
        );
    }

    #[test]
    fn refused_changes_can_be_retried_dropped_or_superseded() {
        let mut s = store();
        let seq = push(&mut s, 1, 6);
        s.mark_failed(seq, "invalid content").unwrap();
        let refused = s.refused(Service::Mal).unwrap();
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].1, "invalid content");
        assert_eq!(
            s.retry_refused(Service::Mal, MediaKind::Anime, 1).unwrap(),
            1
        );
        assert_eq!(values(&s.due(Service::Mal, 0).unwrap()), vec![(1, 6)]);
        s.mark_failed(seq, "invalid content").unwrap();
        assert_eq!(
            s.drop_refused(Service::Mal, MediaKind::Anime, 1).unwrap(),
            1
        );
        assert!(s.refused(Service::Mal).unwrap().is_empty());
        let seq = push(&mut s, 1, 6);
        s.mark_failed(seq, "x").unwrap();
        push(&mut s, 1, 2);
        assert!(
            s.refused(Service::Mal).unwrap().is_empty(),
            "a new change supersedes refused ones"
        );
        assert_eq!(values(&s.pending(Service::Mal).unwrap()), vec![(1, 2)]);
    }

    #[test]
    fn failed_changes_leave_the_loop() {
        let mut s = store();
        let seq = push(&mut s, 1, 6);
        push(&mut s, 1, 7);
        s.mark_failed(seq, "not on your list").unwrap();
        assert_eq!(values(&s.due(Service::Mal, 0).unwrap()), vec![(1, 7)]);
        assert_eq!(values(&s.pending(Service::Mal).unwrap()), vec![(1, 7)]);
    }
}
