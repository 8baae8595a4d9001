//! The list as the user sees it: what the service last confirmed, with the changes still on their
//! way laid over it. Every front end shows (and changes) entries through these rows.

use super::{Change, Held, ListEntry, ListState, MediaKind, Op, ScoreFormat};

/// An entry is known by its kind and the service's id (anime and manga ids overlap).
pub type Key = (MediaKind, u64);

/// One entry: as shown, and what the service has confirmed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// The entry as the user sees it (with their latest changes).
    pub entry: ListEntry,
    /// What the service last confirmed; `None` while an added entry is not confirmed yet.
    pub confirmed: Option<ListState>,
    /// Changes sent or waiting that the service has not confirmed yet.
    pub pending: u32,
    /// A removal is waiting: the row is hidden.
    pub removing: bool,
    /// The change the service refused, if it did; kept until retried, dropped or superseded.
    pub refused: Option<Box<Refusal>>,
}

/// A change the service refused for good, or held back by a conflict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The change, in words ("episode 8").
    pub what: String,
    /// How many refused changes the entry has.
    pub count: u32,
    pub reason: String,
    /// A conflict with an edit made elsewhere (the reason names both values).
    pub conflict: bool,
    /// What was shown with the refused change, to show again when it is retried.
    pub shown: Option<ListState>,
}

/// A change laid over a row, ready for the outbox: what it was based on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Staged {
    pub change: Change,
    /// See [`Op::base`].
    pub base: u32,
    /// See [`Op::base_state`].
    pub base_state: Option<ListState>,
}

impl Row {
    pub fn new(entry: ListEntry) -> Row {
        Row {
            confirmed: Some(entry.state()),
            entry,
            pending: 0,
            removing: false,
            refused: None,
        }
    }

    pub fn key(&self) -> Key {
        (self.entry.kind, self.entry.id)
    }

    /// Shows what the service confirmed again (nothing of the user's is on its way).
    pub fn show_confirmed(&mut self) {
        if let Some(state) = &self.confirmed {
            self.entry.set_state(state);
        }
    }

    pub fn in_conflict(&self) -> bool {
        self.refused.as_ref().is_some_and(|r| r.conflict)
    }

    /// Makes `change` to the entry as shown: records what it is based on (the value of its field
    /// and everything shown, against which the service's state is checked before it is sent),
    /// shows it at once, and counts it as on its way. A refusal shown before is superseded.
    pub fn stage(&mut self, change: Change) -> Staged {
        let base = change.field().of(&self.entry);
        let base_state = Some(self.entry.state());
        change.apply_to(&mut self.entry);
        if change == Change::Remove {
            self.removing = true;
        }
        self.pending += 1;
        self.refused = None;
        Staged {
            change,
            base,
            base_state,
        }
    }

    /// Makes the change that adds this work to the list (see [`Row::stage`]). When it is not on
    /// the list as far as the user knows (`listed` false: not confirmed, or its removal is on its
    /// way), the change is based on "not on the list".
    pub fn stage_addition(&mut self, change: Change, listed: bool) -> Staged {
        self.removing = false;
        if listed {
            return self.stage(change);
        }
        change.apply_to(&mut self.entry);
        self.pending += 1;
        self.refused = None;
        Staged {
            change,
            base: 0,
            base_state: None,
        }
    }
}

/// The rows of a list: the cached `entries` with the refused and the `pending` changes laid over
/// them (additions not confirmed yet become rows of their own; removals on their way hide theirs).
/// `format` words refused scores.
pub fn track(
    entries: Vec<ListEntry>,
    pending: &[Op],
    refused: &[(Op, Held)],
    format: ScoreFormat,
) -> Vec<Row> {
    let mut rows: Vec<Row> = entries.into_iter().map(Row::new).collect();
    let mut index: std::collections::HashMap<Key, usize> =
        rows.iter().enumerate().map(|(i, r)| (r.key(), i)).collect();
    for (op, held) in refused {
        let Some(&i) = index.get(&(op.kind, op.media_id)) else {
            continue;
        };
        let row = &mut rows[i];
        let count = row.refused.as_ref().map_or(0, |r| r.count) + 1;
        let mut shown = row
            .refused
            .as_ref()
            .and_then(|r| r.shown.clone())
            .map_or_else(
                || row.entry.clone(),
                |s| {
                    let mut e = row.entry.clone();
                    e.set_state(&s);
                    e
                },
            );
        op.change.apply_to(&mut shown);
        row.refused = Some(Box::new(Refusal {
            what: op.change.describe(op.kind, format),
            count,
            reason: held.reason.clone(),
            conflict: held.conflict,
            shown: Some(shown.state()),
        }));
        if held.conflict {
            // Both sides stay visible: the row shows the user's value, the message the other.
            op.change.apply_to(&mut row.entry);
        }
    }
    for op in pending {
        let i = match index.get(&(op.kind, op.media_id)) {
            Some(&i) => i,
            None => match &op.entry {
                // Added from search, not confirmed yet.
                Some(entry) => {
                    let mut row = Row::new((**entry).clone());
                    row.confirmed = None;
                    rows.push(row);
                    index.insert((op.kind, op.media_id), rows.len() - 1);
                    rows.len() - 1
                }
                None => continue,
            },
        };
        let row = &mut rows[i];
        op.change.apply_to(&mut row.entry);
        if op.change == Change::Remove {
            row.removing = true;
        }
        row.pending += 1;
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Patch, Service, Status};

    fn op(seq: i64, id: u64, change: Change) -> Op {
        Op {
            seq,
            service: Service::Mal,
            kind: MediaKind::Anime,
            media_id: id,
            change,
            base: 0,
            attempts: 0,
            verified: false,
            entry: None,
            base_state: None,
        }
    }

    #[test]
    fn pending_changes_are_laid_over_the_cache() {
        let cached = vec![
            ListEntry {
                progress: 3,
                ..ListEntry::new(1, MediaKind::Anime, "A", Status::Current)
            },
            ListEntry::new(2, MediaKind::Anime, "B", Status::Current),
        ];
        let added = ListEntry::new(3, MediaKind::Anime, "C", Status::Planning);
        let pending = vec![
            op(1, 1, Change::progress(4)),
            op(2, 1, Change::progress(5)),
            op(3, 2, Change::Remove),
            Op {
                entry: Some(Box::new(added)),
                ..op(
                    4,
                    3,
                    Change::Set(Patch {
                        status: Some(Status::Planning),
                        ..Patch::default()
                    }),
                )
            },
        ];
        let rows = track(cached, &pending, &[], ScoreFormat::Point10);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].entry.progress, 5);
        assert_eq!(rows[0].pending, 2);
        assert_eq!(rows[0].confirmed.as_ref().map(|c| c.progress), Some(3));
        assert!(rows[1].removing);
        assert_eq!(rows[2].confirmed, None, "an addition not confirmed yet");
    }

    #[test]
    fn staging_records_the_base_and_shows_the_change() {
        let mut row = Row::new(ListEntry {
            progress: 7,
            ..ListEntry::new(1, MediaKind::Anime, "A", Status::Current)
        });
        let staged = row.stage(Change::progress(8));
        assert_eq!(staged.base, 7);
        assert_eq!(staged.base_state.map(|s| s.progress), Some(7));
        assert_eq!(row.entry.progress, 8);
        assert_eq!(row.pending, 1);
        let removal = row.stage(Change::Remove);
        assert_eq!(removal.base, 1, "on the list");
        assert!(row.removing);
    }
}
