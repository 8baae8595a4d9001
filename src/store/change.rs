//! A change made by a front end that does not hold the list in memory (the shell commands): read
//! the entry as the user sees it, decide the change by the core's rules, and queue it, all in one
//! write transaction, so two commands run at once never both build on the same count.

use rusqlite::{OptionalExtension, params};

use super::cache::{ENTRY_COLUMNS, entry_from_row};
use super::outbox::{NewOp, OP_COLUMNS, insert, op_from_row};
use super::{Store, StoreError};
use crate::domain::tracked::track;
use crate::domain::{Change, Held, Key, ListEntry, Op, Row, ScoreFormat, Service, Staged};

/// A change written to the outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Queued {
    pub seq: i64,
    pub staged: Staged,
    /// The entry as the user sees it with the change.
    pub row: Row,
}

/// Where a queued change stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Standing {
    /// No longer in the outbox: the service confirmed it.
    Gone,
    /// Waiting to be sent (again); the last failure, if any.
    Waiting {
        attempts: u32,
        last_error: Option<String>,
    },
    /// Refused for good, or held back by a conflict with an edit made elsewhere.
    Held(Held),
}

/// What a change is about: an entry on the list, or a work to add.
pub enum Target {
    Listed(Key),
    /// A work found by search, as it would be added.
    Adding(ListEntry),
}

impl Store {
    /// The entry as the user sees it: the cache, with its waiting and refused changes laid over
    /// (`None`: not on the list, nor being added).
    pub fn row(
        &self,
        service: Service,
        key: Key,
        format: ScoreFormat,
    ) -> Result<Option<Row>, StoreError> {
        read_row(&self.conn, &self.owner, service, key, format).map_err(|e| self.err(e))
    }

    /// Makes a change to one entry, atomically: `decide` is given the entry as the user sees it
    /// now (for [`Target::Adding`], the work as found when it is not on the list) and answers the
    /// change to make by the core's rules, or `None`. The change is laid over the entry (see
    /// [`Row::stage`]) and written to the outbox in the same write transaction. `verified`: the
    /// cache is known to hold what the service holds (see [`Op::verified`]).
    /// `Ok(Err(_))` is `decide`'s refusal; nothing was written.
    pub fn stage_change<E>(
        &mut self,
        service: Service,
        target: Target,
        now_ms: i64,
        verified: bool,
        format: ScoreFormat,
        decide: impl FnOnce(&Row) -> Result<Option<Change>, E>,
    ) -> Result<Result<Option<Queued>, E>, StoreError> {
        let label = self.label.clone();
        let err = |source| StoreError::Sqlite {
            path: label.clone(),
            source,
        };
        let owner = self.owner.clone();
        let tx = self.write()?;
        let key = match &target {
            Target::Listed(key) => *key,
            Target::Adding(found) => (found.kind, found.id),
        };
        let existing = read_row(&tx, &owner, service, key, format).map_err(err)?;
        let (mut row, listed) = match (existing, &target) {
            (Some(row), Target::Adding(_)) => {
                let listed = row.confirmed.is_some() && !row.removing;
                (row, Some(listed))
            }
            (Some(row), Target::Listed(_)) => (row, None),
            (None, Target::Adding(found)) => {
                let mut row = Row::new(found.clone());
                row.confirmed = None;
                (row, Some(false))
            }
            (None, Target::Listed(_)) => {
                return Ok(Ok(None));
            }
        };
        let change = match decide(&row) {
            Ok(Some(change)) => change,
            Ok(None) => return Ok(Ok(None)),
            Err(e) => return Ok(Err(e)),
        };
        let staged = match listed {
            Some(listed) => row.stage_addition(change, listed),
            None => row.stage(change),
        };
        let new = NewOp {
            service,
            kind: key.0,
            media_id: key.1,
            change: staged.change.clone(),
            base: staged.base,
            now_ms,
            // An addition is always checked first: it may have been added elsewhere.
            verified: verified && listed.is_none() && !row.in_conflict(),
            entry: listed.map(|_| row.entry.clone()),
            base_state: staged.base_state.clone(),
        };
        let seq = insert(&tx, &owner, new).map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(Ok(Some(Queued { seq, staged, row })))
    }

    /// Where the change `seq` stands.
    pub fn standing(&self, seq: i64) -> Result<Standing, StoreError> {
        let found = self
            .conn
            .query_row(
                "SELECT failed, attempts, last_error, conflict, theirs FROM outbox WHERE seq = ?1",
                [seq],
                |r| {
                    Ok((
                        r.get::<_, bool>(0)?,
                        r.get::<_, u32>(1)?,
                        r.get::<_, Option<String>>(2)?,
                        r.get::<_, bool>(3)?,
                        r.get::<_, Option<u32>>(4)?,
                    ))
                },
            )
            .optional()
            .map_err(|e| self.err(e))?;
        Ok(match found {
            None => Standing::Gone,
            Some((false, attempts, last_error, _, _)) => Standing::Waiting {
                attempts,
                last_error,
            },
            Some((true, _, reason, conflict, theirs)) => Standing::Held(Held {
                reason: reason.unwrap_or_default(),
                conflict,
                theirs,
            }),
        })
    }
}

/// See [`Store::row`]; reads through `conn` (a connection or a transaction).
fn read_row(
    conn: &rusqlite::Connection,
    owner: &str,
    service: Service,
    key: Key,
    format: ScoreFormat,
) -> rusqlite::Result<Option<Row>> {
    let args = params![service.key(), key.0.key(), key.1 as i64];
    let cached = conn
        .prepare_cached(&format!(
            "SELECT {ENTRY_COLUMNS} FROM entries WHERE service = ?1 AND kind = ?2 AND id = ?3"
        ))?
        .query_row(args, entry_from_row)
        .optional()?
        .flatten();
    let ops = |failed: bool| -> rusqlite::Result<Vec<(Op, Held)>> {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {OP_COLUMNS}, COALESCE(last_error, ''), conflict, theirs FROM outbox
             WHERE service = ?1 AND kind = ?2 AND media_id = ?3 AND failed = ?4
               AND account IS NULL ORDER BY seq"
        ))?;
        let rows = stmt.query_map(
            params![service.key(), key.0.key(), key.1 as i64, failed],
            |row| {
                let held = Held {
                    reason: row.get(12)?,
                    conflict: row.get(13)?,
                    theirs: row.get(14)?,
                };
                Ok(op_from_row(row, owner)?.map(|op| (op, held)))
            },
        )?;
        let mut out = Vec::new();
        for row in rows {
            out.extend(row?);
        }
        Ok(out)
    };
    let refused = ops(true)?;
    let pending: Vec<Op> = ops(false)?.into_iter().map(|(op, _)| op).collect();
    let rows = track(cached.into_iter().collect(), &pending, &refused, format);
    Ok(rows.into_iter().find(|r| r.key() == key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{MediaKind, Status, rules};

    fn store_with(progress: u32) -> Store {
        let mut s = Store::open_in_memory().unwrap();
        let e = ListEntry {
            progress,
            total: Some(12),
            ..ListEntry::new(7, MediaKind::Anime, "Frieren", Status::Current)
        };
        s.replace_entries(Service::Mal, MediaKind::Anime, &[e], 0, false)
            .unwrap();
        s
    }

    fn plus_one(s: &mut Store) -> Result<Option<Queued>, rules::RuleError> {
        s.stage_change(
            Service::Mal,
            Target::Listed((MediaKind::Anime, 7)),
            0,
            false,
            ScoreFormat::Point10,
            |row| {
                let next = rules::stepped(&row.entry, 1)?;
                Ok(rules::progress(&row.entry, next, None, "2026-12-04")?.map(Change::Set))
            },
        )
        .unwrap()
    }

    #[test]
    fn each_change_builds_on_the_ones_still_waiting() {
        let mut s = store_with(10);
        let first = plus_one(&mut s).unwrap().unwrap();
        assert_eq!(first.staged.base, 10);
        assert_eq!(first.row.entry.progress, 11);
        let second = plus_one(&mut s).unwrap().unwrap();
        assert_eq!(second.staged.base, 11, "based on the first, not the cache");
        assert_eq!(second.row.pending, 2);
        let third = plus_one(&mut s).unwrap_err();
        assert_eq!(
            third.to_string(),
            "Frieren has no more episodes (12 of 12 watched)"
        );
        assert_eq!(s.pending(Service::Mal).unwrap().len(), 2, "nothing written");
        assert!(matches!(
            s.standing(first.seq).unwrap(),
            Standing::Waiting { attempts: 0, .. }
        ));
        s.mark_failed(first.seq, "no").unwrap();
        assert!(matches!(s.standing(first.seq).unwrap(), Standing::Held(h) if h.reason == "no"));
        assert_eq!(s.standing(999).unwrap(), Standing::Gone);
    }

    #[test]
    fn an_addition_is_based_on_not_being_listed() {
        let mut s = store_with(0);
        let found = ListEntry::new(8, MediaKind::Anime, "Mushishi", Status::Planning);
        let queued = s
            .stage_change(
                Service::Mal,
                Target::Adding(found),
                0,
                false,
                ScoreFormat::Point10,
                |row| {
                    Ok::<_, rules::RuleError>(Some(Change::Set(rules::addition(
                        &row.entry,
                        Status::Current,
                        "2026-12-04",
                    ))))
                },
            )
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(queued.staged.base, 0);
        assert_eq!(queued.staged.base_state, None);
        let row = s
            .row(Service::Mal, (MediaKind::Anime, 8), ScoreFormat::Point10)
            .unwrap()
            .unwrap();
        assert_eq!(
            row.entry.status,
            Status::Current,
            "shown before it is confirmed"
        );
        assert_eq!(row.confirmed, None);
        // A title not on the list and not being added: nothing to change.
        let none = s
            .stage_change(
                Service::Mal,
                Target::Listed((MediaKind::Anime, 9)),
                0,
                false,
                ScoreFormat::Point10,
                |_| Ok::<_, rules::RuleError>(Some(Change::progress(1))),
            )
            .unwrap()
            .unwrap();
        assert_eq!(none, None);
    }
}
