//! What a change to an entry means: the rules every front end (the list screen, the shell
//! commands, the player trackers) follows. Pure functions of the entry as the user sees it.
//!
//! - The first count on a planned entry moves it to watching/reading; leaving 0 sets the start
//!   date (once).
//! - Counts stop at the known total and at 0.
//! - Reaching the last known episode offers completion (not for a title still coming out); a
//!   completion sets the finish date and the whole count, and ends a re-watch.
//! - Choosing "completed" from the statuses is a completion too.

use super::{ListEntry, MediaKind, Patch, ScoreFormat, Status};

/// Why a change cannot be made, in one sentence for the user.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// One more than the known total.
    #[error("{title} has no more {units} ({total} of {total} {done})", units = .kind.units(), done = done_word(*.kind))]
    NoMore {
        title: String,
        kind: MediaKind,
        total: u32,
    },
    /// One less than 0.
    #[error("{title} is at {unit} 0", unit = .kind.unit())]
    AtZero { title: String, kind: MediaKind },
    /// A count above the known total.
    #[error("{title} has {}", count_of(*.total, .kind.unit(), .kind.units()))]
    AboveTotal {
        title: String,
        kind: MediaKind,
        total: u32,
    },
    /// A volume count above the known total.
    #[error("{title} has {}", count_of(*.total, "volume", "volumes"))]
    VolumesAboveTotal { title: String, total: u32 },
    /// A count that does not fit.
    #[error("{count} is not a count malt can keep")]
    TooLarge { count: i64 },
    /// A score the account's format cannot hold.
    #[error("{text} is not a score in this account's format ({range}, or 0 for none)", range = .format.range())]
    BadScore { text: String, format: ScoreFormat },
    /// The service keeps no such thing.
    #[error("{service} lists keep no {what}")]
    NotKept {
        service: &'static str,
        what: &'static str,
    },
}

fn done_word(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Anime => "watched",
        MediaKind::Manga => "read",
    }
}

/// "1 episode", "24 episodes".
pub fn count_of(n: u32, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// The count after moving `by` from the entry's count (`+`: 1, `-`: -1, `malt progress X +3`: 3),
/// kept between 0 and the known total.
pub fn stepped(entry: &ListEntry, by: i64) -> Result<u32, RuleError> {
    let target = i64::from(entry.progress).saturating_add(by);
    if target < 0 {
        return Err(RuleError::AtZero {
            title: entry.title.clone(),
            kind: entry.kind,
        });
    }
    let target = u32::try_from(target).map_err(|_| RuleError::TooLarge { count: target })?;
    match entry.total {
        Some(total) if target > total && entry.progress >= total && by > 0 => {
            Err(RuleError::NoMore {
                title: entry.title.clone(),
                kind: entry.kind,
                total,
            })
        }
        Some(total) if target > total => Err(RuleError::AboveTotal {
            title: entry.title.clone(),
            kind: entry.kind,
            total,
        }),
        _ => Ok(target),
    }
}

/// The patch that sets the count done to `count` (and the volumes read, for manga where the
/// service keeps them); `None` when it is what the entry holds already. The first count moves a
/// planned entry to watching/reading; leaving 0 sets the start date.
pub fn progress(
    entry: &ListEntry,
    count: u32,
    volumes: Option<u32>,
    today: &str,
) -> Result<Option<Patch>, RuleError> {
    if let Some(total) = entry.total.filter(|t| count > *t) {
        return Err(RuleError::AboveTotal {
            title: entry.title.clone(),
            kind: entry.kind,
            total,
        });
    }
    if let (Some(v), Some(total)) = (volumes, entry.total_volumes)
        && v > total
    {
        return Err(RuleError::VolumesAboveTotal {
            title: entry.title.clone(),
            total,
        });
    }
    if count == entry.progress && volumes.is_none_or(|v| v == entry.volumes) {
        return Ok(None);
    }
    let mut patch = Patch::progress(count);
    patch.volumes = volumes.filter(|v| *v != entry.volumes);
    if count > entry.progress && entry.status == Status::Planning {
        patch.status = Some(Status::Current);
    }
    if count > 0 && entry.progress == 0 && entry.start_date.is_none() {
        patch.start_date = Some(today.to_string());
    }
    Ok(Some(patch))
}

/// Whether the entry, as it now stands, is at its last known episode or chapter and may be marked
/// completed: not already completed (unless re-watching, which completing ends), and not a title
/// still coming out (whose total is only its latest chapter).
pub fn completion_offered(entry: &ListEntry) -> bool {
    entry.total == Some(entry.progress)
        && entry.progress > 0
        && !entry.media.ongoing
        && (entry.status != Status::Completed || entry.repeating)
}

/// The patch that marks an entry completed: finish date, the whole count when known, a re-watch
/// ended (and the start date, when it was never started).
pub fn completion(entry: &ListEntry, today: &str) -> Patch {
    Patch {
        status: Some(Status::Completed),
        progress: entry.total.filter(|t| *t != entry.progress),
        volumes: entry.total_volumes.filter(|t| *t != entry.volumes),
        finish_date: Some(today.to_string()),
        start_date: (entry.start_date.is_none() && entry.progress == 0).then(|| today.to_string()),
        repeating: entry.repeating.then_some(false),
        ..Patch::default()
    }
}

/// A count change and, with `complete`, the completion it reaches, as one patch (one request).
pub fn progress_then_complete(
    entry: &ListEntry,
    count: u32,
    today: &str,
) -> Result<Option<Patch>, RuleError> {
    let Some(mut patch) = progress(entry, count, None, today)? else {
        return Ok(None);
    };
    let mut after = entry.clone();
    patch.apply_to(&mut after);
    if completion_offered(&after) {
        let done = completion(&after, today);
        patch.status = done.status;
        patch.finish_date = done.finish_date;
        patch.repeating = done.repeating;
        if patch.start_date.is_none() {
            patch.start_date = done.start_date;
        }
        if done.volumes.is_some() {
            patch.volumes = done.volumes;
        }
    }
    Ok(Some(patch))
}

/// The patch that moves an entry to `status` (completed: a completion); `None` when it is there.
pub fn status(entry: &ListEntry, status: Status, today: &str) -> Option<Patch> {
    if status == entry.status {
        return None;
    }
    Some(if status == Status::Completed {
        completion(entry, today)
    } else {
        Patch {
            status: Some(status),
            ..Patch::default()
        }
    })
}

/// The patch that adds a work found by search with `status`.
pub fn addition(entry: &ListEntry, status: Status, today: &str) -> Patch {
    if status == Status::Completed {
        completion(entry, today)
    } else {
        Patch {
            status: Some(status),
            ..Patch::default()
        }
    }
}

/// The patch that turns re-watching on or off.
pub fn repeating(on: bool) -> Patch {
    Patch {
        repeating: Some(on),
        ..Patch::default()
    }
}

/// The patch that sets the score (0: no score); `None` when the entry has it already.
pub fn score(entry: &ListEntry, score: u8) -> Option<Patch> {
    (score != entry.score).then(|| Patch {
        score: Some(score),
        ..Patch::default()
    })
}

/// Several fields set at once (`malt set`): each `Some` is a wish; `None` leaves the field.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Edits {
    pub status: Option<Status>,
    pub score: Option<u8>,
    pub repeating: Option<bool>,
    pub start_date: Option<String>,
    pub finish_date: Option<String>,
}

/// The one patch that makes `edits` (a status by [`status`]'s rule, so "completed" is a
/// completion); `None` when the entry holds them all already.
pub fn edits(entry: &ListEntry, edits: &Edits, today: &str) -> Option<Patch> {
    let mut patch = edits
        .status
        .and_then(|s| status(entry, s, today))
        .unwrap_or_default();
    if let Some(p) = edits.score.and_then(|s| score(entry, s)) {
        patch.score = p.score;
    }
    if let Some(on) = edits.repeating.filter(|on| *on != entry.repeating) {
        patch.repeating = Some(on);
    }
    if let Some(d) = edits
        .start_date
        .clone()
        .filter(|d| entry.start_date.as_ref() != Some(d))
    {
        patch.start_date = Some(d);
    }
    if let Some(d) = edits
        .finish_date
        .clone()
        .filter(|d| entry.finish_date.as_ref() != Some(d))
    {
        patch.finish_date = Some(d);
    }
    (patch != Patch::default()).then_some(patch)
}

/// A score typed in the account's format ("8.5", "85", "0" for none).
pub fn parse_score(text: &str, format: ScoreFormat) -> Result<u8, RuleError> {
    if text.trim() == "0" {
        return Ok(0);
    }
    format.parse(text).ok_or_else(|| RuleError::BadScore {
        text: text.trim().to_string(),
        format,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TODAY: &str = "2026-12-04";

    fn entry(progress: u32, total: Option<u32>, status: Status) -> ListEntry {
        ListEntry {
            progress,
            total,
            ..ListEntry::new(1, MediaKind::Anime, "Frieren", status)
        }
    }

    #[test]
    fn counts_stop_at_the_total_and_at_zero() {
        let e = entry(27, Some(28), Status::Current);
        assert_eq!(stepped(&e, 1), Ok(28));
        let last = entry(28, Some(28), Status::Current);
        let err = stepped(&last, 1).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Frieren has no more episodes (28 of 28 watched)"
        );
        assert_eq!(
            stepped(&e, 5).unwrap_err().to_string(),
            "Frieren has 28 episodes"
        );
        let zero = entry(0, None, Status::Current);
        assert_eq!(
            stepped(&zero, -1).unwrap_err().to_string(),
            "Frieren is at episode 0"
        );
        assert_eq!(stepped(&zero, 1000), Ok(1000), "no total: no cap");
        assert!(matches!(
            stepped(&zero, i64::MAX),
            Err(RuleError::TooLarge { .. })
        ));
        let one = ListEntry {
            total: Some(1),
            ..ListEntry::new(2, MediaKind::Anime, "Movie", Status::Current)
        };
        assert_eq!(
            progress(&one, 2, None, TODAY).unwrap_err().to_string(),
            "Movie has 1 episode"
        );
    }

    #[test]
    fn the_first_count_on_a_planned_entry_starts_it() {
        let planned = entry(0, Some(12), Status::Planning);
        let patch = progress(&planned, 1, None, TODAY).unwrap().unwrap();
        assert_eq!(patch.status, Some(Status::Current));
        assert_eq!(patch.progress, Some(1));
        assert_eq!(patch.start_date.as_deref(), Some(TODAY));
        // Already started once: the date is kept.
        let started = ListEntry {
            start_date: Some("2026-01-01".into()),
            ..entry(0, Some(12), Status::Current)
        };
        let patch = progress(&started, 1, None, TODAY).unwrap().unwrap();
        assert_eq!(patch.start_date, None);
        assert_eq!(patch.status, None);
        // Going down never moves the status.
        let watching = entry(3, Some(12), Status::Current);
        assert_eq!(
            progress(&watching, 2, None, TODAY).unwrap(),
            Some(Patch::progress(2))
        );
        assert_eq!(progress(&watching, 3, None, TODAY).unwrap(), None);
    }

    #[test]
    fn volumes_are_checked_and_sent_only_when_they_change() {
        let manga = ListEntry {
            progress: 10,
            volumes: 2,
            total_volumes: Some(5),
            ..ListEntry::new(3, MediaKind::Manga, "Berserk", Status::Current)
        };
        assert_eq!(
            progress(&manga, 12, Some(6), TODAY)
                .unwrap_err()
                .to_string(),
            "Berserk has 5 volumes"
        );
        let p = progress(&manga, 12, Some(2), TODAY).unwrap().unwrap();
        assert_eq!(p.volumes, None);
        let p = progress(&manga, 10, Some(3), TODAY).unwrap().unwrap();
        assert_eq!(p.volumes, Some(3));
    }

    #[test]
    fn completion_is_offered_at_the_last_episode_only() {
        assert!(completion_offered(&entry(12, Some(12), Status::Current)));
        assert!(!completion_offered(&entry(11, Some(12), Status::Current)));
        assert!(!completion_offered(&entry(12, None, Status::Current)));
        assert!(!completion_offered(&entry(12, Some(12), Status::Completed)));
        let rewatch = ListEntry {
            repeating: true,
            ..entry(12, Some(12), Status::Completed)
        };
        assert!(completion_offered(&rewatch));
        let mut ongoing = entry(40, Some(40), Status::Current);
        ongoing.media.ongoing = true;
        assert!(!completion_offered(&ongoing));
    }

    #[test]
    fn a_completion_sets_the_finish_date_and_whole_count_and_ends_a_rewatch() {
        let e = ListEntry {
            repeating: true,
            start_date: Some("2026-01-01".into()),
            ..entry(7, Some(12), Status::Current)
        };
        let p = completion(&e, TODAY);
        assert_eq!(p.status, Some(Status::Completed));
        assert_eq!(p.progress, Some(12));
        assert_eq!(p.finish_date.as_deref(), Some(TODAY));
        assert_eq!(p.repeating, Some(false));
        assert_eq!(p.start_date, None);
        let never = entry(0, Some(1), Status::Planning);
        assert_eq!(completion(&never, TODAY).start_date.as_deref(), Some(TODAY));
        assert_eq!(status(&e, Status::Completed, TODAY), Some(p));
        assert_eq!(status(&e, Status::Current, TODAY), None);
        assert_eq!(
            status(&e, Status::Dropped, TODAY).unwrap().status,
            Some(Status::Dropped)
        );
    }

    #[test]
    fn progress_and_completion_go_as_one_patch() {
        let e = entry(11, Some(12), Status::Current);
        let p = progress_then_complete(&e, 12, TODAY).unwrap().unwrap();
        assert_eq!(p.progress, Some(12));
        assert_eq!(p.status, Some(Status::Completed));
        assert_eq!(p.finish_date.as_deref(), Some(TODAY));
        // Not at the end: only the count.
        let p = progress_then_complete(&e, 11, TODAY).unwrap();
        assert_eq!(p, None);
        let planned = entry(0, Some(1), Status::Planning);
        let p = progress_then_complete(&planned, 1, TODAY).unwrap().unwrap();
        assert_eq!(p.status, Some(Status::Completed));
        assert_eq!(p.start_date.as_deref(), Some(TODAY));
    }

    #[test]
    fn several_edits_make_one_patch_of_what_changes() {
        let e = ListEntry {
            score: 7,
            ..entry(3, Some(12), Status::Current)
        };
        let wish = Edits {
            status: Some(Status::Completed),
            score: Some(7),
            start_date: Some("2026-01-01".into()),
            ..Edits::default()
        };
        let p = edits(&e, &wish, TODAY).unwrap();
        assert_eq!(p.status, Some(Status::Completed));
        assert_eq!(p.progress, Some(12), "completed: the whole count");
        assert_eq!(p.score, None, "the score is 7 already");
        assert_eq!(p.start_date.as_deref(), Some("2026-01-01"));
        let same = Edits {
            score: Some(7),
            repeating: Some(false),
            ..Edits::default()
        };
        assert_eq!(edits(&e, &same, TODAY), None);
    }

    #[test]
    fn scores_are_read_in_the_accounts_format() {
        assert_eq!(parse_score("8.5", ScoreFormat::Point10Decimal), Ok(85));
        assert_eq!(parse_score("0", ScoreFormat::Point3), Ok(0));
        let err = parse_score("11", ScoreFormat::Point10).unwrap_err();
        assert_eq!(
            err.to_string(),
            "11 is not a score in this account's format (1–10, or 0 for none)"
        );
        let e = entry(1, None, Status::Current);
        assert_eq!(score(&e, 0), None);
        assert_eq!(score(&e, 7).unwrap().score, Some(7));
    }
}
