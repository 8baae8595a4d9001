//! The built-in sample list behind `malt --demo`: the same screens, no account, no network.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use super::{Details, Fetched, Found, Provider, ProviderError};
use crate::domain::airing::{AiringState, Schedule};
use crate::domain::{Ack, Change, ListEntry, ListState, Media, MediaKind, Service, Status};

/// A sample work: id, kind, title, type, total, year, mean, genres, synopsis.
struct Work {
    id: u64,
    kind: MediaKind,
    title: &'static str,
    media_type: &'static str,
    total: Option<u32>,
    year: i32,
    mean: &'static str,
    genres: &'static [&'static str],
    synopsis: &'static str,
    /// Airing now: weeks since the first episode, weekday, JST time.
    airing: Option<(i64, &'static str, &'static str)>,
}

// A row of the sample table; named arguments would not read better.
#[allow(clippy::too_many_arguments)]
const fn anime(
    id: u64,
    title: &'static str,
    media_type: &'static str,
    total: Option<u32>,
    year: i32,
    mean: &'static str,
    genres: &'static [&'static str],
    synopsis: &'static str,
) -> Work {
    Work {
        id,
        kind: MediaKind::Anime,
        title,
        media_type,
        total,
        year,
        mean,
        genres,
        synopsis,
        airing: None,
    }
}

const fn manga(
    id: u64,
    title: &'static str,
    total: Option<u32>,
    year: i32,
    mean: &'static str,
    genres: &'static [&'static str],
    synopsis: &'static str,
) -> Work {
    Work {
        id,
        kind: MediaKind::Manga,
        title,
        media_type: "manga",
        total,
        year,
        mean,
        genres,
        synopsis,
        airing: None,
    }
}

const fn airing(mut w: Work, weeks: i64, day: &'static str, time: &'static str) -> Work {
    w.airing = Some((weeks, day, time));
    w
}

const CATALOGUE: &[Work] = &[
    airing(
        anime(
            52991,
            "Sousou no Frieren",
            "tv",
            Some(28),
            2023,
            "9.30",
            &["Adventure", "Drama", "Fantasy"],
            "After the party that defeated the Demon King splits up, the elf mage Frieren, who will outlive them all, sets out to learn what her companions meant to her.",
        ),
        6,
        "friday",
        "23:00",
    ),
    anime(
        5114,
        "Fullmetal Alchemist: Brotherhood",
        "tv",
        Some(64),
        2009,
        "9.10",
        &["Action", "Adventure", "Drama", "Fantasy"],
        "Two brothers who lost their bodies to a forbidden alchemical ritual search for the Philosopher's Stone to set things right.",
    ),
    anime(
        9253,
        "Steins;Gate",
        "tv",
        Some(24),
        2011,
        "9.07",
        &["Drama", "Sci-Fi", "Suspense"],
        "A self-styled mad scientist discovers that his microwave can send messages into the past, and every message changes more than he wants.",
    ),
    anime(
        21,
        "One Piece",
        "tv",
        None,
        1999,
        "8.72",
        &["Action", "Adventure", "Fantasy"],
        "Monkey D. Luffy and his crew sail the Grand Line in search of the legendary treasure of the Pirate King.",
    ),
    anime(
        40748,
        "Jujutsu Kaisen",
        "tv",
        Some(24),
        2020,
        "8.51",
        &["Action", "Supernatural"],
        "A high schooler swallows a cursed finger and joins a school of sorcerers who fight the curses born of human malice.",
    ),
    airing(
        anime(
            50265,
            "Spy x Family Season 3",
            "tv",
            Some(12),
            2025,
            "8.60",
            &["Action", "Comedy"],
            "A spy, an assassin and a telepath keep up their make-believe family, each hiding the truth from the other two.",
        ),
        3,
        "saturday",
        "23:00",
    ),
    anime(
        44511,
        "Chainsaw Man",
        "tv",
        Some(12),
        2022,
        "8.46",
        &["Action", "Fantasy"],
        "Denji, drowning in his late father's debts, merges with his chainsaw devil and becomes a devil hunter.",
    ),
    anime(
        16498,
        "Shingeki no Kyojin",
        "tv",
        Some(25),
        2013,
        "8.55",
        &["Action", "Drama", "Suspense"],
        "Humanity lives behind enormous walls to hide from man-eating Titans, until one day the wall is breached.",
    ),
    anime(
        1535,
        "Death Note",
        "tv",
        Some(37),
        2006,
        "8.62",
        &["Supernatural", "Suspense"],
        "A student finds a notebook that kills anyone whose name is written in it, and a detective sets out to find him.",
    ),
    anime(
        20583,
        "Haikyuu!!",
        "tv",
        Some(25),
        2014,
        "8.44",
        &["Sports"],
        "A short but fearless middle-schooler joins his high school volleyball team, alongside the rival who once beat him.",
    ),
    anime(
        38000,
        "Kimetsu no Yaiba",
        "tv",
        Some(26),
        2019,
        "8.45",
        &["Action", "Fantasy"],
        "Tanjirou becomes a demon slayer to turn his sister, changed into a demon, human again.",
    ),
    anime(
        37521,
        "Vinland Saga",
        "tv",
        Some(24),
        2019,
        "8.76",
        &["Action", "Adventure", "Drama"],
        "Thorfinn follows the mercenary who killed his father, waiting for the chance of a duel, in eleventh-century Europe.",
    ),
    anime(
        11061,
        "Hunter x Hunter (2011)",
        "tv",
        Some(148),
        2011,
        "9.03",
        &["Action", "Adventure", "Fantasy"],
        "Gon sets out to become a Hunter and find the father who left to be one.",
    ),
    anime(
        30276,
        "One Punch Man",
        "tv",
        Some(12),
        2015,
        "8.49",
        &["Action", "Comedy"],
        "Saitama can defeat any enemy with one punch, and is bored out of his mind.",
    ),
    anime(
        32281,
        "Kimi no Na wa.",
        "movie",
        Some(1),
        2016,
        "8.82",
        &["Drama", "Romance", "Supernatural"],
        "A boy in Tokyo and a girl in the countryside wake up in each other's bodies.",
    ),
    anime(
        52034,
        "Oshi no Ko",
        "tv",
        Some(11),
        2023,
        "8.61",
        &["Drama", "Supernatural"],
        "A doctor is reborn as the child of the idol he adored, and learns what the entertainment industry hides.",
    ),
    anime(
        33352,
        "Violet Evergarden",
        "tv",
        Some(13),
        2018,
        "8.68",
        &["Drama", "Fantasy"],
        "A former soldier becomes a ghostwriter of letters to understand the last words her major said to her.",
    ),
    anime(
        918,
        "Gintama",
        "tv",
        Some(201),
        2006,
        "8.94",
        &["Action", "Comedy", "Sci-Fi"],
        "In an Edo occupied by aliens, a samurai takes odd jobs to pay the rent.",
    ),
    manga(
        2,
        "Berserk",
        None,
        1989,
        "9.47",
        &["Action", "Adventure", "Drama"],
        "Guts, a mercenary with a giant sword, fights the demons of his past and the friend who betrayed him.",
    ),
    manga(
        21,
        "Death Note",
        Some(108),
        2003,
        "8.69",
        &["Supernatural", "Suspense"],
        "A student finds a notebook that kills anyone whose name is written in it.",
    ),
    manga(
        1706,
        "JoJo no Kimyou na Bouken Part 7: Steel Ball Run",
        Some(96),
        2004,
        "9.31",
        &["Action", "Adventure"],
        "A horse race across nineteenth-century America hides a hunt for the relics of a saint.",
    ),
    manga(
        13,
        "One Piece",
        None,
        1997,
        "9.22",
        &["Action", "Adventure", "Fantasy"],
        "Luffy and his crew sail in search of the legendary treasure of the Pirate King.",
    ),
    manga(
        656,
        "Vagabond",
        Some(327),
        1998,
        "9.27",
        &["Action", "Adventure"],
        "The life of the swordsman Miyamoto Musashi, from a reckless youth to a searching master.",
    ),
    manga(
        401,
        "Kiseijuu",
        Some(64),
        1988,
        "8.56",
        &["Action", "Horror", "Sci-Fi"],
        "A parasite meant to take over a boy's brain ends up in his right hand instead.",
    ),
];

/// The user's part of the sample list: id, kind, status, done, score, re-watching.
const LIST: &[(u64, MediaKind, Status, u32, u8, bool)] = &[
    (52991, MediaKind::Anime, Status::Current, 4, 10, false),
    (5114, MediaKind::Anime, Status::Completed, 64, 10, false),
    (9253, MediaKind::Anime, Status::Current, 12, 9, true),
    (21, MediaKind::Anime, Status::Current, 1071, 9, false),
    (40748, MediaKind::Anime, Status::Current, 20, 8, false),
    (50265, MediaKind::Anime, Status::Current, 1, 0, false),
    (44511, MediaKind::Anime, Status::Current, 11, 8, false),
    (16498, MediaKind::Anime, Status::OnHold, 4, 0, false),
    (1535, MediaKind::Anime, Status::Completed, 37, 9, false),
    (20583, MediaKind::Anime, Status::Current, 14, 8, false),
    (38000, MediaKind::Anime, Status::Planning, 0, 0, false),
    (37521, MediaKind::Anime, Status::Current, 22, 9, false),
    (11061, MediaKind::Anime, Status::Current, 100, 10, false),
    (30276, MediaKind::Anime, Status::Dropped, 7, 6, false),
    (32281, MediaKind::Anime, Status::Planning, 0, 0, false),
    (52034, MediaKind::Anime, Status::Current, 6, 8, false),
    (2, MediaKind::Manga, Status::Current, 364, 10, false),
    (21, MediaKind::Manga, Status::Completed, 108, 9, false),
    (1706, MediaKind::Manga, Status::Current, 40, 0, false),
    (13, MediaKind::Manga, Status::OnHold, 1000, 9, false),
    (656, MediaKind::Manga, Status::Planning, 0, 0, false),
];

/// A list held in memory, answering like a service would, a little slowly.
pub struct Demo {
    entries: Mutex<Vec<ListEntry>>,
    latency: Duration,
    /// When the demo started: airing dates are laid out around it, so a countdown always shows.
    now: jiff::Timestamp,
}

impl Default for Demo {
    fn default() -> Self {
        Demo::new(Duration::from_millis(350))
    }
}

impl Demo {
    pub fn new(latency: Duration) -> Demo {
        let now = jiff::Timestamp::now();
        let entries = LIST
            .iter()
            .filter_map(|&(id, kind, status, done, score, repeating)| {
                let work = CATALOGUE.iter().find(|w| w.id == id && w.kind == kind)?;
                let mut entry = entry_of(work, now);
                entry.status = status;
                entry.progress = done;
                entry.score = score;
                entry.repeating = repeating;
                Some(entry)
            })
            .collect();
        Demo {
            entries: Mutex::new(entries),
            latency,
            now,
        }
    }

    /// The sample list as it stands.
    pub fn entries(&self) -> Vec<ListEntry> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<ListEntry>> {
        // The list is plain data: a panic elsewhere cannot leave it half-changed.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The schedule of a sample show that started `weeks` weeks before `now`.
fn schedule_of(work: &Work, now: jiff::Timestamp) -> Option<Schedule> {
    let (weeks, day, time) = work.airing?;
    let start = now
        .checked_sub(jiff::SignedDuration::from_hours(24 * 7 * weeks))
        .ok()?
        .to_zoned_datetime(jiff::tz::TimeZone::fixed(jiff::tz::offset(9)))
        .date();
    Some(Schedule {
        state: AiringState::Airing,
        start_date: Some(start.to_string()),
        broadcast_day: Some(day.into()),
        broadcast_time: Some(time.into()),
        episodes: work.total,
        next_exact: None,
    })
}

fn entry_of(work: &Work, now: jiff::Timestamp) -> ListEntry {
    ListEntry {
        total: work.total,
        media: Media {
            media_type: Some(work.media_type.into()),
            picture: None,
            schedule: schedule_of(work, now).map(Box::new),
            ongoing: false,
        },
        ..ListEntry::new(work.id, work.kind, work.title, Status::Planning)
    }
}

#[async_trait]
impl Provider for Demo {
    fn service(&self) -> Service {
        Service::Demo
    }

    fn kinds(&self) -> &'static [MediaKind] {
        &MediaKind::ALL
    }

    async fn fetch_list(
        &self,
        kind: MediaKind,
        arrived: &(dyn Fn(usize) + Send + Sync),
    ) -> Result<Fetched, ProviderError> {
        let all: Vec<ListEntry> = self
            .lock()
            .iter()
            .filter(|e| e.kind == kind)
            .cloned()
            .collect();
        // Two "pages", as a real service would send them.
        let half = all.len() / 2;
        tokio::time::sleep(self.latency).await;
        arrived(half);
        tokio::time::sleep(self.latency).await;
        arrived(all.len());
        Ok(Fetched {
            entries: all,
            unreadable: 0,
            score_format: None,
        })
    }

    async fn apply(
        &self,
        kind: MediaKind,
        media_id: u64,
        change: &Change,
    ) -> Result<Ack, ProviderError> {
        tokio::time::sleep(self.latency).await;
        let mut entries = self.lock();
        let at = entries
            .iter()
            .position(|e| e.id == media_id && e.kind == kind);
        match (change, at) {
            (Change::Remove, Some(i)) => {
                entries.remove(i);
                Ok(Ack { state: None })
            }
            (Change::Remove, None) => Ok(Ack { state: None }),
            (Change::Set(patch), Some(i)) => {
                patch.apply_to(&mut entries[i]);
                Ok(Ack {
                    state: Some(entries[i].state()),
                })
            }
            (Change::Set(patch), None) => {
                let work = CATALOGUE
                    .iter()
                    .find(|w| w.id == media_id && w.kind == kind)
                    .ok_or_else(|| {
                        ProviderError::Rejected("this title is not in the demo catalogue".into())
                    })?;
                let mut entry = entry_of(work, self.now);
                patch.apply_to(&mut entry);
                let state = entry.state();
                entries.push(entry);
                Ok(Ack { state: Some(state) })
            }
        }
    }

    async fn current(
        &self,
        kind: MediaKind,
        media_id: u64,
    ) -> Result<Option<ListState>, ProviderError> {
        tokio::time::sleep(self.latency).await;
        Ok(self
            .lock()
            .iter()
            .find(|e| e.id == media_id && e.kind == kind)
            .map(ListEntry::state))
    }

    async fn search(&self, kind: MediaKind, query: &str) -> Result<Vec<Found>, ProviderError> {
        tokio::time::sleep(self.latency).await;
        let q = query.trim().to_lowercase();
        Ok(CATALOGUE
            .iter()
            .filter(|w| w.kind == kind && w.title.to_lowercase().contains(&q))
            .map(|w| Found {
                entry: entry_of(w, self.now),
                year: Some(w.year),
                mean: Some(w.mean.into()),
            })
            .collect())
    }

    async fn details(&self, kind: MediaKind, media_id: u64) -> Result<Details, ProviderError> {
        tokio::time::sleep(self.latency).await;
        let w = CATALOGUE
            .iter()
            .find(|w| w.id == media_id && w.kind == kind)
            .ok_or_else(|| ProviderError::Rejected("not in the demo catalogue".into()))?;
        let schedule = schedule_of(w, self.now);
        Ok(Details {
            kind: Some(kind),
            id: w.id,
            title: w.title.into(),
            alt_title: None,
            synopsis: Some(w.synopsis.into()),
            media_type: Some(w.media_type.into()),
            total: w.total,
            total_volumes: None,
            state: Some(
                match (kind, &schedule, w.total) {
                    (MediaKind::Anime, Some(_), _) => "currently airing",
                    (MediaKind::Anime, None, None) => "currently airing",
                    (MediaKind::Anime, None, Some(_)) => "finished airing",
                    (MediaKind::Manga, _, None) => "publishing",
                    (MediaKind::Manga, _, Some(_)) => "finished",
                }
                .into(),
            ),
            start_date: schedule
                .as_ref()
                .and_then(|s| s.start_date.clone())
                .or_else(|| Some(w.year.to_string())),
            end_date: None,
            mean: Some(w.mean.into()),
            genres: w.genres.iter().map(|g| g.to_string()).collect(),
            schedule,
            picture: None,
        })
    }

    async fn keep_fresh(&self) -> Result<Option<Duration>, ProviderError> {
        Ok(None)
    }
}
