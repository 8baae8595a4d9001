//! When the next episode of an airing anime comes out.
//!
//! Pure: everything here is computed from the facts a service gives about the show (MyAnimeList's
//! `status`, `start_date`, `broadcast{day_of_the_week,start_time}`, `num_episodes`, or AniList's
//! exact `nextAiringEpisode`) and a `now` passed in by the caller. No clock, no I/O.
//!
//! MyAnimeList's broadcast slot is in Japan time (Asia/Tokyo). Japan has no daylight saving
//! time, so a fixed UTC+09:00 offset is used and no time zone database is needed; that also makes
//! every week exactly 7 × 24 hours long, so the arithmetic below works in plain seconds.

use jiff::Timestamp;
use jiff::civil::{Date, Time};
use jiff::tz::{self, TimeZone};
use serde::{Deserialize, Serialize};

/// Seconds in a week.
const WEEK: i64 = 7 * 24 * 60 * 60;
/// Seconds in a day.
const DAY: i64 = 24 * 60 * 60;
/// Minutes in a day.
const DAY_MINUTES: u32 = 24 * 60;
/// Japan's offset from UTC, in hours (no DST).
const JST_HOURS: i8 = 9;

/// Where a show is in its run, as the service reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AiringState {
    NotYetAired,
    Airing,
    Finished,
}

impl AiringState {
    /// MyAnimeList's anime `status`: `not_yet_aired`, `currently_airing`, `finished_airing`.
    pub fn from_mal(s: &str) -> Option<AiringState> {
        match s {
            "not_yet_aired" => Some(AiringState::NotYetAired),
            "currently_airing" => Some(AiringState::Airing),
            "finished_airing" => Some(AiringState::Finished),
            _ => None,
        }
    }

    /// Name shown to people.
    pub fn label(self) -> &'static str {
        match self {
            AiringState::NotYetAired => "not yet aired",
            AiringState::Airing => "airing",
            AiringState::Finished => "finished",
        }
    }
}

/// The airing facts of one show.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    pub state: AiringState,
    /// First air date as the service gives it: `YYYY-MM-DD`, `YYYY-MM` or `YYYY` (Japan date).
    /// Only a full date lets episodes be numbered from the broadcast slot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date: Option<String>,
    /// Weekday of the broadcast in Japan time, `"monday"` … `"sunday"`. Anything else (MAL's
    /// `"other"`, absent) means there is no weekly slot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broadcast_day: Option<String>,
    /// Broadcast time in Japan time, `"HH:MM"`. Late-night hours of 24 and more are accepted
    /// (`"25:30"` is the next day's 01:30).
    ///
    /// When absent the slot is only known to the day: 00:00 JST of `broadcast_day` is used, so
    /// times and countdowns are then approximate (they can be up to a day early). A value that is
    /// present but malformed (`""`, `"ab:cd"`, `"25:99"`) means no usable slot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broadcast_time: Option<String>,
    /// Total number of episodes when known. `Some(0)` is treated as unknown, as MAL sends 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub episodes: Option<u32>,
    /// `(episode number, unix seconds)` of the next episode when the service knows it exactly
    /// (AniList's `nextAiringEpisode`). Takes precedence over the weekly slot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_exact: Option<(u32, i64)>,
}

/// An upcoming episode.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextEpisode {
    /// Its number, when the episodes can be counted.
    pub number: Option<u32>,
    /// When it airs. Serialized as an RFC 3339 string.
    #[serde(with = "rfc3339")]
    pub at: Timestamp,
}

/// A known airing time from which later episodes follow one per week.
#[derive(Clone, Copy, Debug)]
struct Anchor {
    /// The number of the episode airing at `at`; `None` when only the weekly slot is known.
    episode: Option<u32>,
    /// Unix seconds.
    at: i64,
}

impl Schedule {
    /// The next episode at or after `now` (None when finished, no weekly slot, or all known
    /// episodes aired).
    ///
    /// An episode airing exactly at `now` is still "next". A show the service still calls "not
    /// yet aired" after its first slot has passed (statuses are updated late) is treated as
    /// airing. An airing show with a weekly slot but no full start date gets the next slot with
    /// no number; a not-yet-aired one without a full start date gets `None` (the week is
    /// unknown).
    pub fn next_episode(&self, now: Timestamp) -> Option<NextEpisode> {
        if self.state == AiringState::Finished {
            return None;
        }
        let anchor = self.anchor()?;
        let (number, at) = match anchor.episode {
            Some(first) => {
                let weeks = weeks_until(anchor.at, now).max(0);
                let number = first.checked_add(u32::try_from(weeks).ok()?)?;
                if self.total().is_some_and(|total| number > total) {
                    return None;
                }
                (
                    Some(number),
                    anchor.at.checked_add(weeks.checked_mul(WEEK)?)?,
                )
            }
            None => {
                if self.state == AiringState::NotYetAired {
                    return None;
                }
                let weeks = weeks_until(anchor.at, now);
                (None, anchor.at.checked_add(weeks.checked_mul(WEEK)?)?)
            }
        };
        Some(NextEpisode {
            number,
            at: Timestamp::from_second(at).ok()?,
        })
    }

    /// How many episodes have aired by `now` (estimate from the first broadcast slot on/after
    /// start_date, one per week, capped by `episodes`); None when it cannot be told (no full start
    /// date or no weekly slot). With `next_exact`, it is that episode − 1 (when `now` is before
    /// its time).
    ///
    /// An episode counts as aired once its start time is strictly before `now`, so `aired + 1`
    /// is the number [`Schedule::next_episode`] gives. When `now` is past `next_exact`'s time
    /// (stale data), later episodes are assumed to follow weekly from it. The state is not
    /// consulted: a finished show is estimated like any other.
    pub fn aired(&self, now: Timestamp) -> Option<u32> {
        let anchor = self.anchor()?;
        let first = anchor.episode?;
        let weeks = u32::try_from(weeks_until(anchor.at, now).max(0)).ok()?;
        let aired = first.saturating_sub(1).checked_add(weeks)?;
        Some(match self.total() {
            Some(total) => aired.min(total),
            None => aired,
        })
    }

    /// The total episode count, when known (0 is "unknown").
    fn total(&self) -> Option<u32> {
        self.episodes.filter(|&n| n > 0)
    }

    /// The best-known airing time: the exact next episode, else episode 1 at the first slot on or
    /// after the start date, else an unnumbered slot (the one in the week of the Unix epoch).
    fn anchor(&self) -> Option<Anchor> {
        if let Some((episode, at)) = self.next_exact
            && episode >= 1
            && Timestamp::from_second(at).is_ok()
        {
            return Some(Anchor {
                episode: Some(episode),
                at,
            });
        }
        let slot = self.slot()?;
        match self.start_date.as_deref().and_then(parse_full_date) {
            Some(date) => Some(Anchor {
                episode: Some(1),
                at: first_slot_on_or_after(date, slot)?,
            }),
            None => Some(Anchor {
                episode: None,
                at: slot_in_epoch_week(slot),
            }),
        }
    }

    /// The weekly slot, normalized so that late-night hours roll into the next day.
    fn slot(&self) -> Option<Slot> {
        let day = parse_weekday(self.broadcast_day.as_deref()?)?;
        let minutes = match self.broadcast_time.as_deref() {
            None => 0,
            Some(s) => parse_time(s)?,
        };
        Some(Slot {
            weekday: (day + minutes / DAY_MINUTES) % 7,
            minute_of_day: minutes % DAY_MINUTES,
        })
    }
}

/// A weekly broadcast slot in Japan time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot {
    /// Monday = 0 … Sunday = 6.
    weekday: u32,
    /// 0 ..= 1439.
    minute_of_day: u32,
}

/// Japan Standard Time as a fixed offset.
fn jst() -> TimeZone {
    TimeZone::fixed(tz::offset(JST_HOURS))
}

/// `"monday"` … `"sunday"` (any ASCII case) → Monday = 0 … Sunday = 6.
fn parse_weekday(s: &str) -> Option<u32> {
    const DAYS: [&str; 7] = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    let s = s.trim();
    DAYS.iter()
        .position(|day| day.eq_ignore_ascii_case(s))
        .and_then(|i| u32::try_from(i).ok())
}

/// `"H:MM"` / `"HH:MM"` → minutes after midnight. Hours up to 47 are accepted (late-night
/// listings such as `"25:30"`), so the result may exceed a day.
fn parse_time(s: &str) -> Option<u32> {
    let (hours, minutes) = s.trim().split_once(':')?;
    if !(1..=2).contains(&hours.len()) || minutes.len() != 2 {
        return None;
    }
    let hours = parse_digits(hours)?;
    let minutes = parse_digits(minutes)?;
    (hours < 48 && minutes < 60).then_some(hours * 60 + minutes)
}

/// ASCII digits only (no sign, no spaces) → number.
fn parse_digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `"YYYY-MM-DD"` → date; partial (`"YYYY-MM"`, `"YYYY"`) or malformed → None.
fn parse_full_date(s: &str) -> Option<Date> {
    let mut parts = s.trim().split('-');
    let (year, month, day) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || year.len() != 4 || month.len() != 2 || day.len() != 2 {
        return None;
    }
    let year = i16::try_from(parse_digits(year)?).ok()?;
    let month = i8::try_from(parse_digits(month)?).ok()?;
    let day = i8::try_from(parse_digits(day)?).ok()?;
    Date::new(year, month, day).ok()
}

/// Unix seconds of the first airing of `slot` whose Japan date is on or after `date`.
fn first_slot_on_or_after(date: Date, slot: Slot) -> Option<i64> {
    let midnight = jst()
        .to_timestamp(date.to_datetime(Time::midnight()))
        .ok()?
        .as_second();
    let weekday = u32::try_from(date.weekday().to_monday_zero_offset()).ok()?;
    let days_ahead = (slot.weekday + 7 - weekday) % 7;
    Some(midnight + i64::from(days_ahead) * DAY + i64::from(slot.minute_of_day) * 60)
}

/// Unix seconds of `slot` in the week of 1970-01-01 (a Thursday); any airing of the slot would
/// do, this one needs no date arithmetic.
fn slot_in_epoch_week(slot: Slot) -> i64 {
    const EPOCH_WEEKDAY: i64 = 3; // Thursday, Monday = 0
    (i64::from(slot.weekday) - EPOCH_WEEKDAY) * DAY + i64::from(slot.minute_of_day) * 60
        - i64::from(JST_HOURS) * 3600
}

/// The number of whole weeks to add to `anchor` (unix seconds) to reach the first airing at or
/// after `now`; negative when `now` is more than a week before `anchor`.
fn weeks_until(anchor: i64, now: Timestamp) -> i64 {
    let diff = now.as_second().saturating_sub(anchor);
    // `as_second` truncates toward zero; a fraction of a second past an airing is past it.
    let diff = if now.subsec_nanosecond() > 0 {
        diff.saturating_add(1)
    } else {
        diff
    };
    diff.div_euclid(WEEK) + i64::from(diff.rem_euclid(WEEK) != 0)
}

/// "in 2d 4h", "in 5h 12m", "in 12m", "in under a minute"; past or equal times → "now".
///
/// Units are whole (rounded down) and a trailing zero unit is left out: "in 3d", "in 1h".
pub fn countdown(now: Timestamp, at: Timestamp) -> String {
    if at <= now {
        return "now".to_string();
    }
    let minutes = at.duration_since(now).as_secs() / 60;
    if minutes == 0 {
        return "in under a minute".to_string();
    }
    let (days, hours, minutes) = (minutes / (24 * 60), minutes / 60 % 24, minutes % 60);
    match (days, hours, minutes) {
        (0, 0, m) => format!("in {m}m"),
        (0, h, 0) => format!("in {h}h"),
        (0, h, m) => format!("in {h}h {m}m"),
        (d, 0, _) => format!("in {d}d"),
        (d, h, _) => format!("in {d}d {h}h"),
    }
}

/// The time in the user's zone, e.g. "Sat 25 Nov 18:25" (abbreviated weekday, day, month, 24h
/// time). The day of the month is not padded ("Sun 5 Nov 09:00").
pub fn local_label(at: Timestamp, tz: &TimeZone) -> String {
    let zoned = at.to_zoned_datetime(tz.clone());
    jiff::fmt::strtime::format("%a %-d %b %H:%M", &zoned).unwrap_or_else(|_| zoned.to_string())
}

/// Serde for [`Timestamp`] as an RFC 3339 string (jiff's `serde` feature is not enabled).
mod rfc3339 {
    use jiff::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub fn serialize<S: Serializer>(at: &Timestamp, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(at)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("test timestamp")
    }

    /// Jujutsu Kaisen (MAL 40748): Saturday 01:25 JST from 2020-10-03, 24 episodes.
    fn jjk() -> Schedule {
        Schedule {
            state: AiringState::Airing,
            start_date: Some("2020-10-03".into()),
            broadcast_day: Some("saturday".into()),
            broadcast_time: Some("01:25".into()),
            episodes: Some(24),
            next_exact: None,
        }
    }

    fn weekly(day: &str, time: Option<&str>, start: Option<&str>) -> Schedule {
        Schedule {
            state: AiringState::Airing,
            start_date: start.map(Into::into),
            broadcast_day: Some(day.into()),
            broadcast_time: time.map(Into::into),
            episodes: None,
            next_exact: None,
        }
    }

    #[test]
    fn states_from_mal_and_labels() {
        assert_eq!(
            AiringState::from_mal("currently_airing"),
            Some(AiringState::Airing)
        );
        assert_eq!(
            AiringState::from_mal("finished_airing"),
            Some(AiringState::Finished)
        );
        assert_eq!(
            AiringState::from_mal("not_yet_aired"),
            Some(AiringState::NotYetAired)
        );
        assert_eq!(AiringState::from_mal("airing"), None);
        assert_eq!(AiringState::NotYetAired.label(), "not yet aired");
        assert_eq!(AiringState::Airing.label(), "airing");
        assert_eq!(AiringState::Finished.label(), "finished");
    }

    #[test]
    fn first_episode_and_week_boundary() {
        let s = jjk();
        // Saturday 01:25 JST is Friday 16:25 UTC.
        let ep1 = ts("2020-10-02T16:25:00Z");
        let ep2 = ts("2020-10-09T16:25:00Z");

        let before = ts("2020-09-01T00:00:00Z");
        assert_eq!(
            s.next_episode(before),
            Some(NextEpisode {
                number: Some(1),
                at: ep1
            })
        );
        assert_eq!(s.aired(before), Some(0));

        // Exactly at the slot, episode 1 is airing: still "next", not yet aired.
        assert_eq!(s.next_episode(ep1).and_then(|n| n.number), Some(1));
        assert_eq!(s.next_episode(ep1).map(|n| n.at), Some(ep1));
        assert_eq!(s.aired(ep1), Some(0));

        // One second later it has aired and episode 2 is a week away.
        let after = ts("2020-10-02T16:25:01Z");
        assert_eq!(
            s.next_episode(after),
            Some(NextEpisode {
                number: Some(2),
                at: ep2
            })
        );
        assert_eq!(s.aired(after), Some(1));

        // A minute before episode 2 / at it / a minute after.
        assert_eq!(s.aired(ts("2020-10-09T16:24:00Z")), Some(1));
        assert_eq!(s.next_episode(ts("2020-10-09T16:24:00Z")).unwrap().at, ep2);
        assert_eq!(s.aired(ep2), Some(1));
        assert_eq!(s.aired(ts("2020-10-09T16:26:00Z")), Some(2));
        assert_eq!(
            s.next_episode(ts("2020-10-09T16:26:00Z")),
            Some(NextEpisode {
                number: Some(3),
                at: ts("2020-10-16T16:25:00Z")
            })
        );

        // Sub-second after an airing counts as after it.
        let just_after = ep2
            .checked_add(jiff::SignedDuration::from_millis(1))
            .unwrap();
        assert_eq!(s.aired(just_after), Some(2));
        assert_eq!(s.next_episode(just_after).unwrap().number, Some(3));
    }

    #[test]
    fn jst_day_differs_from_utc_day() {
        // Thursday 23:30 JST is Thursday 14:30 UTC; Friday 08:00 JST is Thursday 23:00 UTC.
        let late = weekly("thursday", Some("23:30"), Some("2024-01-04"));
        let now = ts("2024-01-03T00:00:00Z");
        assert_eq!(
            late.next_episode(now).unwrap().at,
            ts("2024-01-04T14:30:00Z")
        );

        let early = weekly("friday", Some("08:00"), Some("2024-01-05"));
        let next = early.next_episode(now).unwrap();
        assert_eq!(next.at, ts("2024-01-04T23:00:00Z"));
        assert_eq!(next.number, Some(1));
        assert_eq!(
            jst().to_datetime(next.at).weekday(),
            jiff::civil::Weekday::Friday
        );
        assert_eq!(
            TimeZone::UTC.to_datetime(next.at).weekday(),
            jiff::civil::Weekday::Thursday
        );
    }

    #[test]
    fn start_date_not_on_broadcast_day() {
        // Starts on a Wednesday; the first Saturday slot on or after it is episode 1.
        let s = weekly("saturday", Some("01:25"), Some("2024-01-03"));
        let next = s.next_episode(ts("2024-01-01T00:00:00Z")).unwrap();
        assert_eq!(next.number, Some(1));
        assert_eq!(next.at, ts("2024-01-05T16:25:00Z")); // Sat 6 Jan 01:25 JST
    }

    #[test]
    fn late_night_hours_roll_into_next_day() {
        // Friday "25:25" is Saturday 01:25.
        let a = weekly("friday", Some("25:25"), Some("2020-10-03"));
        let b = jjk();
        let now = ts("2020-09-01T00:00:00Z");
        assert_eq!(
            a.next_episode(now).unwrap().at,
            b.next_episode(now).unwrap().at
        );
        // "24:30" on Sunday is Monday 00:30 (wraps the week).
        let c = weekly("sunday", Some("24:30"), Some("2024-01-01"));
        let next = c.next_episode(ts("2023-12-31T00:00:00Z")).unwrap();
        assert_eq!(next.at, ts("2023-12-31T15:30:00Z")); // Mon 1 Jan 00:30 JST
        assert_eq!(next.number, Some(1));
    }

    #[test]
    fn missing_time_uses_midnight_jst() {
        let s = weekly("saturday", None, Some("2020-10-03"));
        let next = s.next_episode(ts("2020-09-01T00:00:00Z")).unwrap();
        assert_eq!(next.at, ts("2020-10-02T15:00:00Z"));
    }

    #[test]
    fn not_yet_aired() {
        let mut s = jjk();
        s.state = AiringState::NotYetAired;
        let now = ts("2020-09-15T00:00:00Z");
        assert_eq!(
            s.next_episode(now),
            Some(NextEpisode {
                number: Some(1),
                at: ts("2020-10-02T16:25:00Z")
            })
        );
        assert_eq!(s.aired(now), Some(0));

        // Without a full start date the week is unknown.
        s.start_date = Some("2020-10".into());
        assert_eq!(s.next_episode(now), None);
        assert_eq!(s.aired(now), None);
        s.start_date = None;
        assert_eq!(s.next_episode(now), None);
    }

    #[test]
    fn stale_not_yet_aired_status_counts_on() {
        let mut s = jjk();
        s.state = AiringState::NotYetAired;
        let now = ts("2020-10-03T00:00:00Z"); // after episode 1
        assert_eq!(s.next_episode(now).unwrap().number, Some(2));
        assert_eq!(s.aired(now), Some(1));
    }

    #[test]
    fn nothing_next() {
        let now = ts("2020-11-01T00:00:00Z");

        let mut finished = jjk();
        finished.state = AiringState::Finished;
        assert_eq!(finished.next_episode(now), None);

        let mut no_broadcast = jjk();
        no_broadcast.broadcast_day = None;
        no_broadcast.broadcast_time = None;
        assert_eq!(no_broadcast.next_episode(now), None);
        assert_eq!(no_broadcast.aired(now), None);

        let mut other_day = jjk();
        other_day.broadcast_day = Some("other".into());
        assert_eq!(other_day.next_episode(now), None);
        assert_eq!(other_day.aired(now), None);

        for partial in [
            "2020-10",
            "2020",
            "",
            "2020-10-3",
            "2020-13-01",
            "2021-02-29",
        ] {
            let mut s = jjk();
            s.start_date = Some(partial.into());
            assert_eq!(s.aired(now), None, "{partial:?}");
            // Still airing on a known weekday: the slot is known, its number isn't.
            let next = s.next_episode(now).expect(partial);
            assert_eq!(next.number, None);
            assert_eq!(next.at, ts("2020-11-06T16:25:00Z"));
        }
    }

    #[test]
    fn airing_without_start_date_gets_unnumbered_slot() {
        let s = weekly("wednesday", Some("22:00"), None);
        // Wed 22:00 JST = Wed 13:00 UTC; 2024-05-15 is a Wednesday.
        let at_slot = ts("2024-05-15T13:00:00Z");
        assert_eq!(
            s.next_episode(at_slot),
            Some(NextEpisode {
                number: None,
                at: at_slot
            })
        );
        assert_eq!(
            s.next_episode(ts("2024-05-15T13:00:01Z")).unwrap().at,
            ts("2024-05-22T13:00:00Z")
        );
        assert_eq!(
            s.next_episode(ts("2024-05-10T00:00:00Z")).unwrap().at,
            at_slot
        );
        assert_eq!(s.aired(at_slot), None);
    }

    #[test]
    fn capped_at_total_episodes() {
        let s = jjk(); // 24 episodes: episode 24 is 23 weeks after 2020-10-02T16:25Z.
        let ep24 = ts("2021-03-12T16:25:00Z");
        assert_eq!(
            s.next_episode(ts("2021-03-10T00:00:00Z")),
            Some(NextEpisode {
                number: Some(24),
                at: ep24
            })
        );
        assert_eq!(s.aired(ep24), Some(23));
        let after = ts("2021-03-12T16:25:01Z");
        assert_eq!(s.aired(after), Some(24));
        assert_eq!(s.next_episode(after), None);
        assert_eq!(s.aired(ts("2030-01-01T00:00:00Z")), Some(24));

        // 0 is "unknown", not "none".
        let mut unknown = jjk();
        unknown.episodes = Some(0);
        assert_eq!(unknown.next_episode(after).unwrap().number, Some(25));
        assert_eq!(unknown.aired(after), Some(24));
    }

    #[test]
    fn exact_next_episode() {
        let at = ts("2024-05-15T13:00:00Z");
        let s = Schedule {
            state: AiringState::Airing,
            start_date: None,
            broadcast_day: None,
            broadcast_time: None,
            episodes: Some(12),
            next_exact: Some((7, at.as_second())),
        };
        let now = ts("2024-05-14T00:00:00Z");
        assert_eq!(
            s.next_episode(now),
            Some(NextEpisode {
                number: Some(7),
                at
            })
        );
        assert_eq!(s.aired(now), Some(6));
        assert_eq!(s.aired(at), Some(6));

        // Stale: past its time, the following weeks are assumed.
        let later = ts("2024-05-16T00:00:00Z");
        assert_eq!(s.aired(later), Some(7));
        assert_eq!(
            s.next_episode(later),
            Some(NextEpisode {
                number: Some(8),
                at: ts("2024-05-22T13:00:00Z")
            })
        );

        // Exact beats the weekly estimate.
        let mut both = jjk();
        both.next_exact = Some((3, at.as_second()));
        assert_eq!(both.next_episode(now).unwrap().number, Some(3));
        assert_eq!(both.next_episode(now).unwrap().at, at);
        assert_eq!(both.aired(now), Some(2));

        // Finished wins over everything.
        let mut finished = s.clone();
        finished.state = AiringState::Finished;
        assert_eq!(finished.next_episode(now), None);

        // Nonsense exact data falls back to the slot (none here).
        let mut bad = s.clone();
        bad.next_exact = Some((0, at.as_second()));
        assert_eq!(bad.next_episode(now), None);
        bad.next_exact = Some((7, i64::MAX));
        assert_eq!(bad.next_episode(now), None);
        assert_eq!(bad.aired(now), None);
    }

    #[test]
    fn malformed_values_give_none() {
        let now = ts("2020-11-01T00:00:00Z");
        for time in [
            "25:99", "", "ab:cd", "48:00", "1:5", "01:255", "-1:30", "+1:30", "01:2a", "0125",
            "01:25:00", ":",
        ] {
            let mut s = jjk();
            s.broadcast_time = Some(time.into());
            assert_eq!(s.next_episode(now), None, "{time:?}");
            assert_eq!(s.aired(now), None, "{time:?}");
        }
        for day in ["", "sat", "saturdays", "土曜日"] {
            let mut s = jjk();
            s.broadcast_day = Some(day.into());
            assert_eq!(s.next_episode(now), None, "{day:?}");
        }
        // Accepted variants.
        let mut s = jjk();
        s.broadcast_day = Some("Saturday".into());
        s.broadcast_time = Some("1:25".into());
        assert_eq!(s.next_episode(now), jjk().next_episode(now));
    }

    #[test]
    fn extreme_dates_do_not_panic() {
        let mut s = jjk();
        s.start_date = Some("9999-12-31".into());
        s.broadcast_time = Some("47:59".into());
        assert_eq!(s.next_episode(Timestamp::MAX), None);
        assert_eq!(s.next_episode(Timestamp::MIN), None);
        let _ = s.aired(Timestamp::MAX);
        let _ = jjk().next_episode(Timestamp::MAX);
        let _ = jjk().aired(Timestamp::MAX);
        let _ = jjk().next_episode(Timestamp::MIN);
        let _ = weekly("monday", None, None).next_episode(Timestamp::MAX);
        let _ = weekly("monday", None, None).next_episode(Timestamp::MIN);
    }

    #[test]
    fn countdown_texts() {
        let now = ts("2024-01-01T00:00:00Z");
        let after = |secs: i64| Timestamp::from_second(now.as_second() + secs).unwrap();
        assert_eq!(countdown(now, after(2 * 86400 + 4 * 3600 + 59)), "in 2d 4h");
        assert_eq!(
            countdown(now, after(2 * 86400 + 4 * 3600 + 30 * 60)),
            "in 2d 4h"
        );
        assert_eq!(countdown(now, after(3 * 86400 + 5 * 60)), "in 3d");
        assert_eq!(countdown(now, after(5 * 3600 + 12 * 60 + 30)), "in 5h 12m");
        assert_eq!(countdown(now, after(3600)), "in 1h");
        assert_eq!(countdown(now, after(12 * 60)), "in 12m");
        assert_eq!(countdown(now, after(60)), "in 1m");
        assert_eq!(countdown(now, after(59)), "in under a minute");
        assert_eq!(
            countdown(
                now,
                now.checked_add(jiff::SignedDuration::from_millis(1))
                    .unwrap()
            ),
            "in under a minute"
        );
        assert_eq!(countdown(now, now), "now");
        assert_eq!(countdown(now, after(-3600)), "now");
    }

    #[test]
    fn local_label_formats() {
        let at = ts("2023-11-25T09:25:00Z");
        assert_eq!(local_label(at, &TimeZone::UTC), "Sat 25 Nov 09:25");
        assert_eq!(local_label(at, &jst()), "Sat 25 Nov 18:25");
        assert_eq!(
            local_label(ts("2023-11-05T09:00:00Z"), &TimeZone::UTC),
            "Sun 5 Nov 09:00"
        );
    }

    #[test]
    fn local_label_across_dst() {
        // A POSIX rule needs no time zone database; the real zone is checked too when the
        // system has one.
        let mut zones = vec![TimeZone::posix("EST5EDT,M3.2.0,M11.1.0").expect("POSIX zone")];
        zones.extend(TimeZone::get("America/New_York").ok());
        for new_york in &zones {
            // JJK episode 1, Sat 3 Oct 01:25 JST: summer time (UTC−4).
            assert_eq!(
                local_label(ts("2020-10-02T16:25:00Z"), new_york),
                "Fri 2 Oct 12:25"
            );
            // Same slot after the clocks went back on 1 Nov (UTC−5).
            assert_eq!(
                local_label(ts("2020-11-06T16:25:00Z"), new_york),
                "Fri 6 Nov 11:25"
            );
        }
    }

    #[test]
    fn serde_round_trip() {
        let s = Schedule {
            next_exact: Some((3, 1_700_000_000)),
            ..jjk()
        };
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<Schedule>(&json).unwrap(), s);

        let minimal: Schedule = serde_json::from_str(r#"{"state":"Airing"}"#).unwrap();
        assert_eq!(minimal.start_date, None);

        let next = jjk().next_episode(ts("2020-09-01T00:00:00Z")).unwrap();
        let json = serde_json::to_string(&next).unwrap();
        assert_eq!(json, r#"{"number":1,"at":"2020-10-02T16:25:00Z"}"#);
        assert_eq!(serde_json::from_str::<NextEpisode>(&json).unwrap(), next);
    }
}
