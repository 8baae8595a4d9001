use serde::{Deserialize, Serialize};

use super::{ListEntry, ListState, MediaKind, ScoreFormat, Service, Status};

/// Fields of a list entry to set in one request. Only what is `Some` is sent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Patch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// Episodes watched / chapters read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<u32>,
    /// Volumes read (manga).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeating: Option<bool>,
    /// `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_date: Option<String>,
}

impl Patch {
    pub fn progress(n: u32) -> Patch {
        Patch {
            progress: Some(n),
            ..Patch::default()
        }
    }

    /// Lays the patch over an entry (what the screen shows while the change is on its way).
    pub fn apply_to(&self, entry: &mut ListEntry) {
        if let Some(s) = self.status {
            entry.status = s;
        }
        if let Some(n) = self.progress {
            entry.progress = n;
        }
        if let Some(n) = self.volumes {
            entry.volumes = n;
        }
        if let Some(n) = self.score {
            entry.score = n;
        }
        if let Some(r) = self.repeating {
            entry.repeating = r;
        }
        if let Some(d) = &self.start_date {
            entry.start_date = Some(d.clone());
        }
        if let Some(d) = &self.finish_date {
            entry.finish_date = Some(d.clone());
        }
    }
}

/// A change the user asked for, to be delivered to the service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
    /// Set these fields (adds the entry when it is not on the list).
    Set(Patch),
    /// Take the entry off the list.
    Remove,
}

/// The field a change is about, against which it is checked for edits made elsewhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// Whether the entry is on the list at all (a removal).
    Listed,
    Status,
    Progress,
    Volumes,
    Score,
    Repeating,
}

impl Change {
    /// Shorthand for a progress change.
    pub fn progress(n: u32) -> Change {
        Change::Set(Patch::progress(n))
    }

    /// The field the change is about (the first of those it sets, in this order: progress,
    /// volumes, status, score, rewatching).
    pub fn field(&self) -> Field {
        match self {
            Change::Remove => Field::Listed,
            Change::Set(p) if p.status.is_some() => Field::Status,
            Change::Set(p) if p.progress.is_some() => Field::Progress,
            Change::Set(p) if p.volumes.is_some() => Field::Volumes,
            Change::Set(p) if p.score.is_some() => Field::Score,
            Change::Set(_) => Field::Repeating,
        }
    }

    /// The value the change sets in its field, as [`Field::value`] counts it.
    pub fn value(&self) -> u32 {
        match self {
            Change::Remove => 0,
            Change::Set(p) => match self.field() {
                Field::Listed => 1,
                Field::Status => p.status.map_or(0, status_value),
                Field::Progress => p.progress.unwrap_or(0),
                Field::Volumes => p.volumes.unwrap_or(0),
                Field::Score => u32::from(p.score.unwrap_or(0)),
                Field::Repeating => u32::from(p.repeating.unwrap_or(false)),
            },
        }
    }

    /// Lays the change over an entry (a removal leaves it as it is: the row hides it).
    pub fn apply_to(&self, entry: &mut ListEntry) {
        if let Change::Set(p) = self {
            p.apply_to(entry);
        }
    }

    /// The change in a few words, for messages ("episode 8", "score 7", "removal"), scores in
    /// the account's format.
    pub fn describe(&self, kind: MediaKind, format: ScoreFormat) -> String {
        let value = self.value();
        match self {
            Change::Remove => "removal from the list".into(),
            Change::Set(p) => match self.field() {
                Field::Progress => format!("{} {value}", kind.unit()),
                Field::Volumes => format!("volume {value}"),
                Field::Status => p
                    .status
                    .map_or_else(String::new, |s| s.label(kind).to_lowercase()),
                Field::Score => score_words(format, value),
                Field::Repeating | Field::Listed => format!(
                    "{} {}",
                    repeating_word(kind),
                    if value == 1 { "on" } else { "off" }
                ),
            },
        }
    }
}

/// "score 8.5", "no score".
fn score_words(format: ScoreFormat, value: u32) -> String {
    match format.show(u8::try_from(value).unwrap_or(u8::MAX)) {
        shown if shown.is_empty() => "no score".into(),
        shown => format!("score {shown}"),
    }
}

/// "re-watching" or "re-reading".
fn repeating_word(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Anime => "re-watching",
        MediaKind::Manga => "re-reading",
    }
}

/// A status as a number for [`Field::Status`] (0: not on the list).
fn status_value(s: Status) -> u32 {
    s.index() as u32 + 1
}

impl Field {
    /// The field's value in what the service holds (`None`: not on the list), so a change's base
    /// can be compared with it. A status of 0 means "not on the list".
    pub fn value(self, state: Option<&ListState>) -> Option<u32> {
        match (self, state) {
            (Field::Listed, s) => Some(u32::from(s.is_some())),
            (Field::Status, None) => Some(0),
            (_, None) => None,
            (Field::Status, Some(s)) => Some(s.status.map_or(0, status_value)),
            (Field::Progress, Some(s)) => Some(s.progress),
            (Field::Volumes, Some(s)) => Some(s.volumes),
            (Field::Score, Some(s)) => Some(u32::from(s.score)),
            (Field::Repeating, Some(s)) => Some(u32::from(s.repeating)),
        }
    }

    /// The field's value in an entry as shown.
    pub fn of(self, entry: &ListEntry) -> u32 {
        let state = entry.state();
        self.value(Some(&state)).unwrap_or(0)
    }

    /// A value of this field in words, for conflict messages.
    pub fn describe(self, kind: MediaKind, format: ScoreFormat, value: u32) -> String {
        match self {
            Field::Listed if value == 0 => "not on the list".into(),
            Field::Listed => "on the list".into(),
            Field::Status => Status::ALL
                .get((value as usize).wrapping_sub(1))
                .map_or_else(
                    || "not on the list".into(),
                    |s| s.label(kind).to_lowercase(),
                ),
            Field::Progress => format!("{} {value}", kind.unit()),
            Field::Volumes => format!("volume {value}"),
            Field::Score => score_words(format, value),
            Field::Repeating if value == 1 => repeating_word(kind).into(),
            Field::Repeating => format!("not {}", repeating_word(kind)),
        }
    }
}

/// A queued change, as stored in the outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    /// Outbox sequence number: the order in which the user made the changes.
    pub seq: i64,
    pub service: Service,
    pub kind: MediaKind,
    pub media_id: u64,
    pub change: Change,
    /// The value of the change's field the change was based on (what the screen showed before
    /// it), as [`Field::value`] counts it.
    pub base: u32,
    /// How many times delivery was tried and failed.
    pub attempts: u32,
    /// The service was known to hold `base` when the change was made, so it can be sent without
    /// looking first. Changes made offline, or left from an earlier run, are checked before sending,
    /// so an edit made elsewhere meanwhile is never silently overwritten.
    pub verified: bool,
    /// For an entry added from search: the entry as it was shown, so the list can show it (and the
    /// cache can keep it) before the next fetch.
    pub entry: Option<Box<ListEntry>>,
    /// Everything the screen showed of the entry before the change (`None` for an addition), so
    /// every field the change sets is checked against edits made elsewhere, not only `base`'s.
    pub base_state: Option<ListState>,
}

impl Op {
    /// Whether the service still holds what the change was based on, in every field it sets.
    pub fn base_holds(&self, theirs: Option<&ListState>) -> bool {
        self.differing_field(theirs).is_none()
    }

    /// The first field the change sets that the service no longer holds as the change's base had
    /// it; `None` when the base still holds.
    pub fn differing_field(&self, theirs: Option<&ListState>) -> Option<Field> {
        self.change
            .differing_field(self.base, self.base_state.as_ref(), theirs)
    }
}

impl Change {
    /// The first field this change sets whose value in `theirs` is not what the change was based
    /// on (`base` for its own field, `base_state` for the others); `None` when the base holds.
    pub fn differing_field(
        &self,
        base: u32,
        base_state: Option<&ListState>,
        theirs: Option<&ListState>,
    ) -> Option<Field> {
        let field = self.field();
        if field.value(theirs) != Some(base) {
            return Some(field);
        }
        let (Change::Set(p), Some(base), Some(theirs)) = (self, base_state, theirs) else {
            return None;
        };
        [
            (p.status.is_some(), Field::Status),
            (p.progress.is_some(), Field::Progress),
            (p.volumes.is_some(), Field::Volumes),
            (p.score.is_some(), Field::Score),
            (p.repeating.is_some(), Field::Repeating),
        ]
        .into_iter()
        .find(|(set, f)| *set && f.value(Some(base)) != f.value(Some(theirs)))
        .map(|(_, f)| f)
    }
}

/// Why a change is held back from sending.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    pub reason: String,
    /// The change conflicts with an edit made elsewhere (rather than being refused).
    pub conflict: bool,
    /// In a conflict, what the service holds (`None`: the entry is no longer on the list).
    pub theirs: Option<u32>,
}

impl Op {
    /// Whether the service holds this change part of the way, as a change sent in several
    /// requests is found when it stopped between two of them (a failure, a kill): every field it
    /// sets still holds its base or already holds the change's value, the count may be anywhere
    /// between the two, something has moved, and not everything has arrived. `kept` says which
    /// fields the service keeps (the others never arrive and are left out).
    ///
    /// Only for services whose changes land in parts ([`crate::providers::Provider::lands_in_parts`]):
    /// elsewhere such a state is an edit made elsewhere.
    pub fn partly_landed(&self, theirs: Option<&ListState>, kept: impl Fn(Field) -> bool) -> bool {
        let (Change::Set(p), Some(theirs)) = (&self.change, theirs) else {
            return false;
        };
        let main = self.change.field();
        let set = [
            (Field::Status, p.status.map(status_value)),
            (Field::Progress, p.progress),
            (Field::Volumes, p.volumes),
            (Field::Score, p.score.map(u32::from)),
            (Field::Repeating, p.repeating.map(u32::from)),
        ];
        let (mut moved, mut arrived) = (false, true);
        for (field, target) in set {
            let Some(target) = target.filter(|_| kept(field)) else {
                continue;
            };
            let base = if field == main {
                Some(self.base)
            } else {
                self.base_state.as_ref().and_then(|b| field.value(Some(b)))
            };
            let (Some(base), Some(now)) = (base, field.value(Some(theirs))) else {
                return false;
            };
            arrived &= now == target;
            if now == base {
                continue;
            }
            let between =
                field == Field::Progress && (base.min(target)..=base.max(target)).contains(&now);
            if now != target && !between {
                return false;
            }
            moved = true;
        }
        moved && !arrived
    }
}

/// What the service answered to a change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ack {
    /// What the list now holds for the entry; `None` when it is no longer on the list.
    pub state: Option<ListState>,
}

impl Ack {
    /// The service holds `progress` (and defaults for the rest), for tests.
    #[cfg(test)]
    pub fn progress(progress: u32) -> Ack {
        Ack {
            state: Some(ListState {
                status: Some(Status::Current),
                progress,
                ..ListState::default()
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_is_checked_against_its_own_field() {
        let listed = ListState {
            status: Some(Status::Current),
            progress: 7,
            score: 8,
            ..ListState::default()
        };
        let progress = Change::progress(8);
        assert_eq!(progress.field(), Field::Progress);
        assert_eq!(Field::Progress.value(Some(&listed)), Some(7));
        assert_eq!(Field::Progress.value(None), None);
        let add = Change::Set(Patch {
            status: Some(Status::Planning),
            ..Patch::default()
        });
        assert_eq!(add.field(), Field::Status);
        assert_eq!(Field::Status.value(None), Some(0), "not listed is status 0");
        assert_eq!(add.value(), 5);
        assert_eq!(Change::Remove.field(), Field::Listed);
        assert_eq!(Field::Listed.value(Some(&listed)), Some(1));
        assert_eq!(Field::Listed.value(None), Some(0));
        let ten = ScoreFormat::Point10;
        assert_eq!(Field::Score.describe(MediaKind::Anime, ten, 8), "score 8");
        assert_eq!(
            Field::Score.describe(MediaKind::Anime, ScoreFormat::Point10Decimal, 85),
            "score 8.5"
        );
        assert_eq!(Field::Score.describe(MediaKind::Anime, ten, 0), "no score");
        assert_eq!(Field::Status.describe(MediaKind::Manga, ten, 1), "reading");
        assert_eq!(
            Change::progress(3).describe(MediaKind::Manga, ten),
            "chapter 3"
        );
    }

    #[test]
    fn every_field_a_change_sets_is_checked_against_the_service() {
        let planned = ListState {
            status: Some(Status::Planning),
            ..ListState::default()
        };
        // The first `+` on a planned show sets the status and the count.
        let first_plus = Op {
            seq: 1,
            service: Service::Mal,
            kind: MediaKind::Anime,
            media_id: 1,
            change: Change::Set(Patch {
                status: Some(Status::Current),
                progress: Some(1),
                ..Patch::default()
            }),
            base: 5,
            attempts: 0,
            verified: false,
            entry: None,
            base_state: Some(planned.clone()),
        };
        assert!(first_plus.base_holds(Some(&planned)));
        // Dropped on the website meanwhile: not overwritten.
        let dropped = ListState {
            status: Some(Status::Dropped),
            ..planned.clone()
        };
        assert_eq!(
            first_plus.differing_field(Some(&dropped)),
            Some(Field::Status)
        );
        // Still planned, but a count was set on the website: not overwritten either.
        let counted = ListState {
            progress: 3,
            ..planned.clone()
        };
        assert_eq!(
            first_plus.differing_field(Some(&counted)),
            Some(Field::Progress)
        );
        // A score the change does not touch may differ.
        let scored = ListState {
            score: 9,
            ..planned.clone()
        };
        assert!(first_plus.base_holds(Some(&scored)));
        assert!(!first_plus.base_holds(None), "removed elsewhere");
        assert_eq!(
            Change::Set(Patch {
                repeating: Some(true),
                ..Patch::default()
            })
            .describe(MediaKind::Manga, ScoreFormat::Point10),
            "re-reading on"
        );
    }

    #[test]
    fn a_change_found_part_of_the_way_there_is_told_from_an_edit_made_elsewhere() {
        let planned = ListState {
            status: Some(Status::Planning),
            ..ListState::default()
        };
        let at = |status: Status, progress: u32| ListState {
            status: Some(status),
            progress,
            ..ListState::default()
        };
        let op = |change: Change, base: u32, base_state: Option<ListState>| Op {
            seq: 1,
            service: Service::Mangadex,
            kind: MediaKind::Manga,
            media_id: 1,
            change,
            base,
            attempts: 0,
            verified: false,
            entry: None,
            base_state,
        };
        let all = |_: Field| true;
        // `e 600` on a title read to chapter 10, sent 250 chapters a request.
        let jump = op(Change::progress(600), 10, Some(at(Status::Current, 10)));
        let partly = |n: u32| jump.partly_landed(Some(&at(Status::Current, n)), all);
        assert!(!partly(10), "nothing arrived: the base holds");
        assert!(partly(260) && partly(510) && partly(599));
        assert!(!partly(600), "all arrived: landed, not part of the way");
        assert!(
            !partly(9) && !partly(601),
            "outside the jump: an edit made elsewhere"
        );
        assert!(!jump.partly_landed(None, all), "removed elsewhere");
        // Down: `e 0` from 600, unmarked from the last chapter down.
        let down = op(Change::progress(0), 600, None);
        assert!(down.partly_landed(Some(&at(Status::Current, 350)), all));
        assert!(!down.partly_landed(Some(&at(Status::Current, 700)), all));
        // As for the base, a field the change does not set may differ.
        assert!(jump.partly_landed(Some(&at(Status::Dropped, 260)), all));

        // The first `+` of a planned title: the status first, then the chapters.
        let first = op(
            Change::Set(Patch {
                status: Some(Status::Current),
                progress: Some(600),
                score: Some(8),
                start_date: Some("2025-01-02".into()),
                ..Patch::default()
            }),
            status_value(Status::Planning),
            Some(planned.clone()),
        );
        // The score never arrives where no scores are kept.
        let no_scores = |f: Field| f != Field::Score;
        let partly = |s: ListState| first.partly_landed(Some(&s), no_scores);
        assert!(partly(at(Status::Current, 0)), "the status only");
        assert!(partly(at(Status::Current, 250)));
        assert!(!partly(at(Status::Current, 600)), "all arrived");
        assert!(!partly(planned.clone()), "nothing arrived");
        // Chapters read elsewhere on the way cannot be told from ours: the rest is sent all the
        // same (it only marks the chapters after them).
        assert!(partly(at(Status::Planning, 250)));
        assert!(!partly(at(Status::OnHold, 250)), "another status");
        // Where scores are kept, a score that has not arrived keeps it from having arrived.
        assert!(first.partly_landed(Some(&at(Status::Current, 600)), all));
        // A removal is one request.
        assert!(!op(Change::Remove, 1, None).partly_landed(None, all));
    }
}
