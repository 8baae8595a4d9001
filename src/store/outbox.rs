//! Changes the user made that the service has not confirmed yet. A change is written here before
//! anything is sent, so it survives a crash, a kill or a closed laptop.

use rusqlite::{OptionalExtension, Row, params};

use super::{Store, StoreError};
use crate::domain::{Ack, Change, Held, ListEntry, ListState, MediaKind, Op, Patch, Service};

/// A change to write to the outbox.
pub struct NewOp {
    pub service: Service,
    pub kind: MediaKind,
    pub media_id: u64,
    pub change: Change,
    /// See [`Op::base`].
    pub base: u32,
    pub now_ms: i64,
    /// See [`Op::verified`].
    pub verified: bool,
    /// See [`Op::entry`].
    pub entry: Option<ListEntry>,
    /// See [`Op::base_state`].
    pub base_state: Option<ListState>,
}

/// When to try an op again, and why it failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retry {
    pub attempts: u32,
    pub next_attempt_at_ms: i64,
    pub error: String,
}

pub(super) const OP_COLUMNS: &str = "seq, service, kind, media_id, field, value, base, attempts, verified_by, patch, entry, base_state";

/// This process's name on leases and verifications: `pid:start:nonce`, where `start` is when the
/// process started (so a reused pid is not mistaken for it).
pub(super) fn process_name() -> String {
    let pid = std::process::id();
    let start = process_state(pid).map_or(0, |(_, start)| start);
    format!("{pid}:{start}:{}", crate::auth::pkce::random_string(8))
}

/// A process's state letter and start time, from `/proc/PID/stat` (Linux only).
fn process_state(pid: u32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields resume after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

/// Whether the process named in a lease (`pid:start:nonce`) still runs: same pid, same start time,
/// not a zombie. A lease whose holder has died (killed, crashed) is free at once instead of when it
/// runs out. The caller has already recognised its own leases by the whole name.
fn lease_holder_alive(holder: &str) -> bool {
    let mut parts = holder.split(':');
    let (Some(pid), Some(start)) = (
        parts.next().and_then(|p| p.parse::<u32>().ok()),
        parts.next().and_then(|s| s.parse::<u64>().ok()),
    ) else {
        return false;
    };
    if !cfg!(target_os = "linux") {
        // Elsewhere a lease is only freed when it runs out.
        return true;
    }
    matches!(process_state(pid), Some((state, started)) if state != 'Z' && state != 'X' && started == start)
}

/// An outbox row as an [`Op`]; `owner` is this process's lease name, against which `verified_by` is
/// read.
pub(super) fn op_from_row(row: &Row<'_>, owner: &str) -> rusqlite::Result<Option<Op>> {
    let service: String = row.get(1)?;
    let kind: String = row.get(2)?;
    let field: String = row.get(4)?;
    let Some(service) = Service::from_key(&service) else {
        return Ok(None);
    };
    let Some(kind) = MediaKind::from_key(&kind) else {
        return Ok(None);
    };
    // A row this malt cannot read (written by a newer one) is left for that one.
    let change = match field.as_str() {
        "progress" => Change::progress(row.get(5)?),
        "set" => match row
            .get::<_, Option<String>>(9)?
            .and_then(|p| serde_json::from_str::<Patch>(&p).ok())
        {
            Some(patch) => Change::Set(patch),
            None => return Ok(None),
        },
        "remove" => Change::Remove,
        _ => return Ok(None),
    };
    let entry = row
        .get::<_, Option<String>>(10)?
        .and_then(|e| serde_json::from_str::<ListEntry>(&e).ok())
        .map(Box::new);
    Ok(Some(Op {
        seq: row.get(0)?,
        service,
        kind,
        media_id: row.get::<_, i64>(3)? as u64,
        change,
        base: row.get(6)?,
        attempts: row.get(7)?,
        verified: row.get::<_, Option<String>>(8)?.as_deref() == Some(owner),
        entry,
        base_state: row
            .get::<_, Option<String>>(11)?
            .and_then(|s| serde_json::from_str::<ListState>(&s).ok()),
    }))
}

/// Writes a change to the outbox in `tx` (see [`Store::insert_op`]); `owner` is this process's
/// name, recorded when the change's base is verified.
pub(super) fn insert(
    tx: &rusqlite::Transaction<'_>,
    owner: &str,
    new: NewOp,
) -> rusqlite::Result<i64> {
    let NewOp {
        service,
        kind,
        media_id,
        change,
        base,
        now_ms,
        verified,
        entry,
        base_state,
    } = new;
    let value = change.value();
    let (field, patch) = match &change {
        Change::Set(p) => ("set", serde_json::to_string(p).ok()),
        Change::Remove => ("remove", None),
    };
    let entry = entry.and_then(|e| serde_json::to_string(&e).ok());
    let base_state = base_state.and_then(|b| serde_json::to_string(&b).ok());
    tx.execute(
        "DELETE FROM outbox WHERE service = ?1 AND kind = ?2 AND media_id = ?3 AND failed = 1 AND account IS NULL",
        params![service.key(), kind.key(), media_id as i64],
    )?;
    tx.execute(
        "INSERT INTO outbox (service, kind, media_id, field, value, base, created_at, verified_by,
                             patch, entry, base_state)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            service.key(),
            kind.key(),
            media_id as i64,
            field,
            value,
            base,
            now_ms,
            verified.then_some(owner),
            patch,
            entry,
            base_state,
        ],
    )?;
    Ok(tx.last_insert_rowid())
}

impl Store {
    /// Records a change whose base has not been checked against the service (see
    /// [`Op::verified`]); returns its sequence number. Changes held back for the same entry are
    /// superseded by it and dropped.
    pub fn enqueue(
        &mut self,
        service: Service,
        kind: MediaKind,
        media_id: u64,
        change: Change,
        base: u32,
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        self.insert_op(NewOp {
            service,
            kind,
            media_id,
            change,
            base,
            now_ms,
            verified: false,
            entry: None,
            base_state: None,
        })
    }

    /// Records a change made while the screen showed what the service holds (a list fetched or a
    /// change confirmed this run, no failure since): it is sent without looking first.
    pub fn enqueue_fresh(
        &mut self,
        service: Service,
        kind: MediaKind,
        media_id: u64,
        change: Change,
        base: u32,
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        self.insert_op(NewOp {
            service,
            kind,
            media_id,
            change,
            base,
            now_ms,
            verified: true,
            entry: None,
            base_state: None,
        })
    }

    /// Records a change; returns its sequence number. Changes held back for the same entry are
    /// superseded by it and dropped.
    pub fn insert_op(&mut self, new: NewOp) -> Result<i64, StoreError> {
        let label = self.label.clone();
        let err = |source| StoreError::Sqlite {
            path: label.clone(),
            source,
        };
        let owner = self.owner.clone();
        let tx = self.write()?;
        let seq = insert(&tx, &owner, new).map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(seq)
    }

    /// Changes held back, oldest first: refused by the service for good, or in conflict with an
    /// edit made elsewhere.
    pub fn refused(&self, service: Service) -> Result<Vec<(Op, Held)>, StoreError> {
        let sql = format!(
            "SELECT {OP_COLUMNS}, COALESCE(last_error, ''), conflict, theirs FROM outbox
             WHERE service = ?1 AND failed = 1 AND account IS NULL ORDER BY seq"
        );
        let mut stmt = self.conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![service.key()], |row| {
                let held = Held {
                    reason: row.get::<_, String>(12).unwrap_or_default(),
                    conflict: row.get(13)?,
                    theirs: row.get(14)?,
                };
                Ok(op_from_row(row, &self.owner)?.map(|op| (op, held)))
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
                "UPDATE outbox SET failed = 0, attempts = 0, next_attempt_at = 0, last_error = NULL,
                                   verified_by = ?4, conflict = 0, theirs = NULL, theirs_state = NULL
                 WHERE service = ?1 AND kind = ?2 AND media_id = ?3 AND failed = 1 AND account IS NULL",
                params![service.key(), kind.key(), media_id as i64, self.owner],
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
        let label = self.label.clone();
        let err = |source| StoreError::Sqlite {
            path: label.clone(),
            source,
        };
        let key = params![service.key(), kind.key(), media_id as i64];
        let tx = self.write()?;
        // Keeping the service's side of a conflict: the cache takes what it holds.
        let theirs: Option<String> = tx
            .query_row(
                "SELECT theirs_state FROM outbox WHERE service = ?1 AND kind = ?2 AND media_id = ?3
                   AND failed = 1 AND account IS NULL AND conflict = 1 AND theirs_state IS NOT NULL
                 ORDER BY seq DESC LIMIT 1",
                key,
                |r| r.get(0),
            )
            .optional()
            .map_err(err)?;
        if let Some(theirs) =
            theirs.and_then(|t| serde_json::from_str::<Option<ListState>>(&t).ok())
        {
            let now = jiff::Timestamp::now().as_millisecond();
            super::cache::confirm(&tx, service, kind, media_id, theirs.as_ref(), None, now)
                .map_err(err)?;
        }
        let n = tx
            .execute(
                "DELETE FROM outbox WHERE service = ?1 AND kind = ?2 AND media_id = ?3 AND failed = 1 AND account IS NULL",
                key,
            )
            .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(n)
    }

    /// The entry's waiting changes, oldest first.
    pub fn pending_for(
        &self,
        service: Service,
        kind: MediaKind,
        media_id: u64,
    ) -> Result<Vec<Op>, StoreError> {
        let sql = format!(
            "SELECT {OP_COLUMNS} FROM outbox
             WHERE service = ?1 AND kind = ?2 AND media_id = ?3 AND failed = 0 ORDER BY seq"
        );
        self.select_ops(&sql, params![service.key(), kind.key(), media_id as i64])
    }

    /// Marks whether the entry's waiting changes may be sent without looking first.
    pub fn set_verified(
        &mut self,
        service: Service,
        kind: MediaKind,
        media_id: u64,
        verified: bool,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE outbox SET verified_by = ?4 WHERE service = ?1 AND kind = ?2 AND media_id = ?3 AND failed = 0",
                params![service.key(), kind.key(), media_id as i64, verified.then_some(self.owner.as_str())],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// The service's value changed elsewhere since the entry's waiting changes were made: hold
    /// them all back until the user keeps one side.
    pub fn mark_conflict(
        &mut self,
        service: Service,
        kind: MediaKind,
        media_id: u64,
        theirs: Option<u32>,
        state: Option<&ListState>,
        reason: &str,
    ) -> Result<(), StoreError> {
        let state = serde_json::to_string(&state).ok();
        self.conn
            .execute(
                "UPDATE outbox SET failed = 1, conflict = 1, theirs = ?4, last_error = ?5,
                                   theirs_state = ?6, lease_owner = NULL, lease_until = 0
                 WHERE service = ?1 AND kind = ?2 AND media_id = ?3 AND failed = 0",
                params![
                    service.key(),
                    kind.key(),
                    media_id as i64,
                    theirs,
                    reason,
                    state
                ],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Every change still waiting to be delivered (not given up on), oldest first.
    pub fn pending(&self, service: Service) -> Result<Vec<Op>, StoreError> {
        let sql = format!(
            "SELECT {OP_COLUMNS} FROM outbox WHERE service = ?1 AND failed = 0 ORDER BY seq"
        );
        self.select_ops(&sql, params![service.key()])
    }

    /// The changes that may be sent now, oldest first: for each entry only its oldest waiting
    /// change, only once its back-off has passed, and only when no other live malt holds its lease.
    /// Later changes to an entry wait for the earlier ones. Read-only.
    pub fn due(&mut self, service: Service, now_ms: i64) -> Result<Vec<Op>, StoreError> {
        self.due_ops(service, now_ms, None)
    }

    /// Claims the oldest change that may be sent now (see [`Store::due`]) and leases it to this
    /// process for `lease_ms`, so no other malt sends it meanwhile.
    pub fn claim_next(
        &mut self,
        service: Service,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Option<Op>, StoreError> {
        Ok(self
            .due_ops(service, now_ms, Some(lease_ms))?
            .into_iter()
            .next())
    }

    fn due_ops(
        &mut self,
        service: Service,
        now_ms: i64,
        lease_ms: Option<i64>,
    ) -> Result<Vec<Op>, StoreError> {
        let sql = format!(
            "SELECT {OP_COLUMNS}, COALESCE(o.lease_owner, ''), o.lease_until FROM outbox o
             WHERE o.service = ?1 AND o.failed = 0 AND o.next_attempt_at <= ?2
               AND o.seq = (SELECT MIN(p.seq) FROM outbox p
                            WHERE p.service = o.service AND p.kind = o.kind
                              AND p.media_id = o.media_id AND p.failed = 0)
             ORDER BY o.seq"
        );
        let owner = self.owner.clone();
        let label = self.label.clone();
        let err = |source| StoreError::Sqlite {
            path: label.clone(),
            source,
        };
        let tx = self.write()?;
        let mut claimed = Vec::new();
        {
            let mut stmt = tx.prepare_cached(&sql).map_err(err)?;
            let rows = stmt
                .query_map(params![service.key(), now_ms], |row| {
                    Ok((
                        op_from_row(row, &owner)?,
                        row.get::<_, String>(12)?,
                        row.get::<_, i64>(13)?,
                    ))
                })
                .map_err(err)?;
            for row in rows {
                let (op, holder, until) = row.map_err(err)?;
                let free = until <= now_ms
                    || holder.is_empty()
                    || holder == owner
                    || !lease_holder_alive(&holder);
                if let (Some(op), true) = (op, free) {
                    claimed.push(op);
                    if lease_ms.is_some() {
                        break;
                    }
                }
            }
            if let (Some(lease_ms), Some(op)) = (lease_ms, claimed.first()) {
                tx.execute(
                    "UPDATE outbox SET lease_owner = ?2, lease_until = ?3 WHERE seq = ?1",
                    params![op.seq, owner, now_ms + lease_ms],
                )
                .map_err(err)?;
            }
        }
        tx.commit().map_err(err)?;
        Ok(claimed)
    }

    /// When a waiting change may next be claimed (its back-off over, and any lease another
    /// process holds on it run out), if any is waiting.
    pub fn next_attempt_at(&self, service: Service) -> Result<Option<i64>, StoreError> {
        self.conn
            .query_row(
                "SELECT MIN(MAX(next_attempt_at, CASE WHEN lease_owner IS NULL OR lease_owner = ?2
                                                      THEN 0 ELSE lease_until END))
                 FROM outbox WHERE service = ?1 AND failed = 0",
                params![service.key(), self.owner],
                |r| r.get(0),
            )
            .optional()
            .map(Option::flatten)
            .map_err(|e| self.err(e))
    }

    /// The service confirmed `op`: forget it and remember what the service now holds.
    pub fn complete(&mut self, op: &Op, ack: &Ack) -> Result<(), StoreError> {
        let label = self.label.clone();
        let err = |source| StoreError::Sqlite {
            path: label.clone(),
            source,
        };
        let tx = self.write()?;
        tx.execute("DELETE FROM outbox WHERE seq = ?1", params![op.seq])
            .map_err(err)?;
        super::cache::confirm(
            &tx,
            op.service,
            op.kind,
            op.media_id,
            ack.state.as_ref(),
            op.entry.as_deref(),
            jiff::Timestamp::now().as_millisecond(),
        )
        .map_err(err)?;
        tx.commit().map_err(err)
    }

    /// Delivery failed for a passing reason: try again later.
    pub fn reschedule(&mut self, seq: i64, retry: &Retry) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE outbox SET attempts = ?2, next_attempt_at = ?3, last_error = ?4,
                                   lease_owner = NULL, lease_until = 0
                 WHERE seq = ?1",
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
                "UPDATE outbox SET failed = 1, last_error = ?2, lease_owner = NULL, lease_until = 0
                 WHERE seq = ?1",
                params![seq, error],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    fn select_ops(&self, sql: &str, args: impl rusqlite::Params) -> Result<Vec<Op>, StoreError> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(args, |row| op_from_row(row, &self.owner))
            .map_err(|e| self.err(e))?;
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
            Change::progress(n),
            n - 1,
            0,
        )
        .unwrap()
    }

    #[test]
    fn every_service_keeps_its_own_queue() {
        let mut s = store();
        for (i, service) in Service::ALL.into_iter().enumerate() {
            s.enqueue(service, MediaKind::Anime, 7, Change::progress(3), 2, 0)
                .unwrap();
            assert_eq!(s.pending(service).unwrap().len(), 1, "{service:?}");
            assert_eq!(
                s.claim_next(service, 0, 1000).unwrap().map(|o| o.service),
                Some(service)
            );
            let all: usize = Service::ALL
                .iter()
                .map(|sv| s.pending(*sv).unwrap().len())
                .sum();
            assert_eq!(all, i + 1);
        }
    }

    fn values(ops: &[Op]) -> Vec<(u64, u32)> {
        ops.iter().map(|o| (o.media_id, o.change.value())).collect()
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
        s.complete(&first, &crate::domain::Ack::progress(6))
            .unwrap();
        assert_eq!(values(&s.due(Service::Mal, 0).unwrap()), vec![(1, 7)]);
    }

    #[test]
    fn a_list_fetched_before_a_confirmation_does_not_undo_it() {
        use crate::domain::ListEntry;
        let mut s = store();
        let entry = |progress| ListEntry::watching(1, "A", progress, None, 0);
        s.replace_entries(Service::Mal, MediaKind::Anime, &[entry(5)], 0, false)
            .unwrap();
        push(&mut s, 1, 6);
        let fetch_started = jiff::Timestamp::now().as_millisecond() - 1;
        let op = s.due(Service::Mal, 0).unwrap().remove(0);
        s.complete(&op, &crate::domain::Ack::progress(6)).unwrap();
        // The fetch read the list before the change landed.
        s.replace_entries(
            Service::Mal,
            MediaKind::Anime,
            &[entry(5)],
            fetch_started,
            false,
        )
        .unwrap();
        assert_eq!(s.entries(Service::Mal).unwrap()[0].progress, 6);
        // A fetch started after the confirmation is the truth (say, an edit on the website).
        let later = jiff::Timestamp::now().as_millisecond() + 1;
        s.replace_entries(Service::Mal, MediaKind::Anime, &[entry(9)], later, false)
            .unwrap();
        assert_eq!(s.entries(Service::Mal).unwrap()[0].progress, 9);
    }

    #[test]
    fn a_list_fetched_before_a_removal_does_not_bring_the_entry_back() {
        use crate::domain::{Ack, ListEntry};
        let mut s = store();
        let entry = ListEntry::watching(1, "A", 5, None, 0);
        let other = ListEntry::watching(2, "B", 1, None, 0);
        s.replace_entries(
            Service::Mal,
            MediaKind::Anime,
            &[entry.clone(), other.clone()],
            0,
            false,
        )
        .unwrap();
        s.enqueue(Service::Mal, MediaKind::Anime, 1, Change::Remove, 1, 0)
            .unwrap();
        let fetch_started = jiff::Timestamp::now().as_millisecond() - 1;
        let op = s.due(Service::Mal, 0).unwrap().remove(0);
        s.complete(&op, &Ack { state: None }).unwrap();
        let ids = |s: &Store| -> Vec<u64> {
            s.entries(Service::Mal)
                .unwrap()
                .into_iter()
                .map(|e| e.id)
                .collect()
        };
        assert_eq!(ids(&s), vec![2], "gone at once");
        // The fetch read the list before the removal landed.
        s.replace_entries(
            Service::Mal,
            MediaKind::Anime,
            &[entry.clone(), other.clone()],
            fetch_started,
            false,
        )
        .unwrap();
        assert_eq!(ids(&s), vec![2], "not brought back");
        // A fetch started later is the truth (added again on the website, say).
        let later = jiff::Timestamp::now().as_millisecond() + 1;
        s.replace_entries(
            Service::Mal,
            MediaKind::Anime,
            &[entry, other],
            later,
            false,
        )
        .unwrap();
        assert_eq!(ids(&s), vec![1, 2]);
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
        assert_eq!(refused[0].1.reason, "invalid content");
        assert!(!refused[0].1.conflict);
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
    fn a_claimed_change_is_not_given_to_another_process_until_its_lease_ends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("malt.db");
        let mut a = Store::open(&path).unwrap();
        let mut b = Store::open(&path).unwrap();
        let init_started = process_state(1).expect("pid 1 runs").1;
        b.owner = format!("1:{init_started}:other"); // pid 1 is always alive
        push(&mut a, 1, 6);
        push(&mut a, 1, 7);
        push(&mut a, 2, 1);
        let first = b.claim_next(Service::Mal, 1_000, 60_000).unwrap().unwrap();
        assert_eq!(values(std::slice::from_ref(&first)), vec![(1, 6)]);
        // Entry 1 is held by b: a may only take entry 2, and not entry 1's later change.
        assert_eq!(values(&a.due(Service::Mal, 2_000).unwrap()), vec![(2, 1)]);
        assert_eq!(a.next_attempt_at(Service::Mal).unwrap(), Some(0));
        // b delivers; the next change of entry 1 becomes available to anyone.
        b.complete(&first, &crate::domain::Ack::progress(6))
            .unwrap();
        assert_eq!(
            values(&a.due(Service::Mal, 2_000).unwrap()),
            vec![(1, 7), (2, 1)]
        );
        // A lease that ran out is free again.
        let held = b.claim_next(Service::Mal, 3_000, 1_000).unwrap().unwrap();
        assert_eq!(values(std::slice::from_ref(&held)), vec![(1, 7)]);
        assert_eq!(values(&a.due(Service::Mal, 3_500).unwrap()), vec![(2, 1)]);
        assert_eq!(
            values(&a.due(Service::Mal, 4_000).unwrap()),
            vec![(1, 7), (2, 1)]
        );
    }

    #[test]
    fn only_the_process_that_verified_a_change_trusts_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("malt.db");
        let mut a = Store::open(&path).unwrap();
        let mut b = Store::open(&path).unwrap();
        a.enqueue_fresh(Service::Mal, MediaKind::Anime, 1, Change::progress(6), 5, 0)
            .unwrap();
        assert!(a.due(Service::Mal, 0).unwrap()[0].verified);
        assert!(
            !b.due(Service::Mal, 0).unwrap()[0].verified,
            "another (or a later) malt looks first"
        );
        a.set_verified(Service::Mal, MediaKind::Anime, 1, false)
            .unwrap();
        assert!(!a.due(Service::Mal, 0).unwrap()[0].verified);
    }

    #[test]
    fn a_lease_held_by_a_dead_process_is_free_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("malt.db");
        let mut a = Store::open(&path).unwrap();
        let mut dead = Store::open(&path).unwrap();
        dead.owner = format!("{}:0:gone", u32::MAX - 7); // no such pid
        push(&mut a, 1, 6);
        dead.claim_next(Service::Mal, 0, 3_600_000)
            .unwrap()
            .unwrap();
        assert_eq!(values(&a.due(Service::Mal, 1).unwrap()), vec![(1, 6)]);
        // An earlier process with our own pid (a restart that got the same pid) is dead too.
        let started = process_state(std::process::id()).unwrap().1;
        dead.owner = format!(
            "{}:{}:earlier",
            std::process::id(),
            started.saturating_sub(1)
        );
        dead.claim_next(Service::Mal, 0, 3_600_000)
            .unwrap()
            .unwrap();
        assert_eq!(values(&a.due(Service::Mal, 1).unwrap()), vec![(1, 6)]);
    }

    #[test]
    fn another_connection_s_commit_changes_the_data_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("malt.db");
        let mut a = Store::open(&path).unwrap();
        let b = Store::open(&path).unwrap();
        let before = b.data_version().unwrap();
        push(&mut a, 1, 1);
        assert_ne!(b.data_version().unwrap(), before);
        let mine = a.data_version().unwrap();
        push(&mut a, 1, 2);
        assert_eq!(a.data_version().unwrap(), mine, "own commits do not count");
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
