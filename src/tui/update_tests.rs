use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};

use super::*;
use crate::config::KeyMap;
use crate::domain::Field;
use crate::domain::{Ack, ListState, Op, Patch, Service};
use crate::providers::{Details, Found};
use crate::store::Held;
use crate::tui::model::Sort;

const NOW: &str = "2024-11-25T12:00:00Z";
const TODAY: &str = "2024-11-25";
const A: MediaKind = MediaKind::Anime;
const M: MediaKind = MediaKind::Manga;

fn entry(id: u64, title: &str, progress: u32, total: Option<u32>) -> ListEntry {
    ListEntry::watching(id, title, progress, total, 0)
}

fn with_status(mut e: ListEntry, status: Status) -> ListEntry {
    e.status = status;
    e
}

fn manga(id: u64, title: &str, chapters: u32, volumes: u32) -> ListEntry {
    let mut e = ListEntry::new(id, M, title, Status::Current);
    e.progress = chapters;
    e.volumes = volumes;
    e
}

fn model(entries: Vec<ListEntry>) -> Model {
    let mut m = Model::new(
        Service::Mal,
        Some("me".into()),
        KeyMap::default(),
        jiff::tz::TimeZone::UTC,
    );
    m.load(entries, &[], &[]);
    update(&mut m, Msg::Clock(NOW.parse().unwrap()));
    m
}

fn key(c: char) -> Msg {
    let modifiers = if c.is_ascii_uppercase() {
        KeyModifiers::SHIFT
    } else {
        KeyModifiers::NONE
    };
    Msg::Key(KeyEvent::new(KeyCode::Char(c), modifiers))
}

fn code(code: KeyCode) -> Msg {
    let modifiers = if code == KeyCode::BackTab {
        KeyModifiers::SHIFT
    } else {
        KeyModifiers::NONE
    };
    Msg::Key(KeyEvent::new(code, modifiers))
}

/// Sends each character as a key press; returns every effect.
fn type_in(m: &mut Model, text: &str) -> Vec<Effect> {
    text.chars().flat_map(|c| update(m, key(c))).collect()
}

fn press(m: &mut Model, c: KeyCode, times: usize) -> Vec<Effect> {
    (0..times).flat_map(|_| update(m, code(c))).collect()
}

fn click(m: &mut Model, column: u16, row: u16) -> Vec<Effect> {
    update(
        m,
        Msg::Mouse(MouseEvent {
            kind: MouseEventKind::Down(MouseButton::Left),
            column,
            row,
            modifiers: KeyModifiers::NONE,
        }),
    )
}

fn wheel(m: &mut Model, kind: MouseEventKind) -> Vec<Effect> {
    update(
        m,
        Msg::Mouse(MouseEvent {
            kind,
            column: 10,
            row: 5,
            modifiers: KeyModifiers::NONE,
        }),
    )
}

/// The row of anime `id`.
fn row(m: &Model, id: u64) -> &Row {
    m.row((A, id)).expect("row")
}

/// Titles shown, in order.
fn shown(m: &Model) -> Vec<String> {
    m.visible
        .iter()
        .map(|&i| m.rows[i].entry.title.clone())
        .collect()
}

/// The queued changes: (id, change, base).
fn enqueued(effects: &[Effect]) -> Vec<(u64, Change, u32)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Enqueue {
                media_id,
                change,
                base,
                ..
            } => Some((*media_id, change.clone(), *base)),
            _ => None,
        })
        .collect()
}

/// The progress changes queued: (id, progress, base).
fn progress_enqueued(effects: &[Effect]) -> Vec<(u64, u32, u32)> {
    enqueued(effects)
        .into_iter()
        .filter_map(|(id, change, base)| match change {
            Change::Set(Patch {
                progress: Some(n), ..
            }) => Some((id, n, base)),
            _ => None,
        })
        .collect()
}

fn delivered(kind: MediaKind, id: u64, state: Option<ListState>) -> Msg {
    Msg::Sync(Event::Delivered {
        seq: 0,
        kind,
        media_id: id,
        state,
    })
}

/// The service holds `progress` for a watching entry.
fn holds(progress: u32) -> Option<ListState> {
    Ack::progress(progress).state
}

fn fetched(kind: MediaKind, entries: Vec<ListEntry>, unreadable: usize) -> Msg {
    Msg::Sync(Event::ListFetched {
        kind,
        entries,
        unreadable,
        score_format: None,
        at: jiff::Timestamp::UNIX_EPOCH,
    })
}

fn prompt(m: &Model) -> Option<&Prompt> {
    match &m.overlay {
        Some(Overlay::Prompt(p)) => Some(p),
        _ => None,
    }
}

fn search(m: &Model) -> &Search {
    match &m.overlay {
        Some(Overlay::Search(s)) => s,
        other => panic!("no search open: {other:?}"),
    }
}

fn found(id: u64, title: &str, total: Option<u32>) -> Found {
    let mut entry = ListEntry::new(id, A, title, Status::Planning);
    entry.total = total;
    Found {
        entry,
        year: Some(2023),
        mean: Some("8.50".into()),
    }
}

fn set(patch: Patch) -> Change {
    Change::Set(patch)
}

// ---------------------------------------------------------------------------------------------
// Ported from the single-list app.
// ---------------------------------------------------------------------------------------------

#[test]
fn three_pluses_show_at_once_and_queue_three_ordered_changes() {
    let mut m = model(vec![entry(1, "A", 5, Some(12))]);
    let mut effects = Vec::new();
    for _ in 0..3 {
        effects.extend(update(&mut m, key('+')));
    }
    assert_eq!(effects.len(), 3, "one request per keypress: {effects:?}");
    assert_eq!(
        enqueued(&effects),
        vec![
            (1, Change::progress(6), 5),
            (1, Change::progress(7), 6),
            (1, Change::progress(8), 7)
        ]
    );
    assert_eq!(row(&m, 1).entry.progress, 8);
    assert_eq!(row(&m, 1).confirmed.as_ref().map(|s| s.progress), Some(5));
    assert_eq!(m.pending(), 3);
    for n in [6, 7] {
        update(&mut m, delivered(A, 1, holds(n)));
        assert_eq!(
            row(&m, 1).entry.progress,
            8,
            "a confirmation of an older change must not roll back the screen"
        );
    }
    update(&mut m, delivered(A, 1, holds(8)));
    let r = row(&m, 1);
    assert_eq!(
        (
            r.entry.progress,
            r.confirmed.as_ref().map(|s| s.progress),
            m.pending()
        ),
        (8, Some(8), 0)
    );
}

#[test]
fn plus_stops_at_the_known_total_and_minus_at_zero() {
    let mut m = model(vec![
        entry(1, "Done", 12, Some(12)),
        entry(2, "Zero", 0, None),
    ]);
    assert!(update(&mut m, key('+')).is_empty());
    assert!(
        m.notice.as_deref().unwrap().contains("no more episodes"),
        "{:?}",
        m.notice
    );
    assert_eq!(row(&m, 1).entry.progress, 12);
    update(&mut m, key('j'));
    assert_eq!(m.selected_key(), Some((A, 2)));
    assert!(update(&mut m, key('-')).is_empty());
    assert!(m.notice.as_deref().unwrap().contains("episode 0"));
    assert_eq!(row(&m, 2).entry.progress, 0);
    // An unknown total does not cap.
    assert_eq!(
        progress_enqueued(&update(&mut m, key('+'))),
        vec![(2, 1, 0)]
    );
}

#[test]
fn minus_mirrors_plus() {
    let mut m = model(vec![entry(1, "A", 5, Some(12))]);
    assert_eq!(
        enqueued(&update(&mut m, key('-'))),
        vec![(1, Change::progress(4), 5)]
    );
    assert_eq!(row(&m, 1).entry.progress, 4);
}

#[test]
fn a_fetched_list_keeps_unconfirmed_changes_on_screen() {
    let mut m = model(vec![entry(1, "A", 5, Some(12)), entry(2, "B", 1, Some(3))]);
    update(&mut m, key('+'));
    let list = vec![
        entry(1, "A", 5, Some(12)),
        entry(2, "B", 2, Some(3)),
        entry(3, "C", 0, None),
    ];
    update(&mut m, fetched(A, list, 0));
    let mut rows: Vec<_> = m
        .rows
        .iter()
        .map(|r| (r.entry.id, r.entry.progress, r.pending))
        .collect();
    rows.sort_unstable();
    assert_eq!(rows, vec![(1, 6, 1), (2, 2, 0), (3, 0, 0)]);
    assert_eq!(m.link, Link::Online);
    assert_eq!(shown(&m), vec!["A", "B", "C"]);
}

#[test]
fn a_fetched_list_of_one_kind_leaves_the_other_alone() {
    let mut m = model(vec![
        entry(1, "A", 5, Some(12)),
        manga(1, "Berserk", 300, 40),
    ]);
    update(&mut m, fetched(A, vec![entry(1, "A", 6, Some(12))], 0));
    assert_eq!(row(&m, 1).entry.progress, 6);
    assert_eq!(m.row((M, 1)).map(|r| r.entry.progress), Some(300));
}

#[test]
fn a_list_read_before_a_confirmed_change_does_not_undo_it() {
    let mut m = model(vec![entry(1, "A", 5, Some(12)), entry(2, "B", 1, Some(3))]);
    assert_eq!(start(&mut m), vec![Effect::Fetch(A), Effect::Fetch(M)]);
    update(&mut m, key('+'));
    update(&mut m, delivered(A, 1, holds(6)));
    // The list was read before the PATCH landed, and arrives after its confirmation.
    let stale = vec![entry(1, "A", 5, Some(12)), entry(2, "B", 2, Some(3))];
    update(&mut m, fetched(A, stale, 0));
    let progress = |m: &Model, id| {
        let r = row(m, id);
        (r.entry.progress, r.confirmed.as_ref().map(|s| s.progress))
    };
    assert_eq!(progress(&m, 1), (6, Some(6)));
    assert_eq!(
        progress(&m, 2),
        (2, Some(2)),
        "entry 2 was not touched: the server's value wins"
    );
    update(&mut m, fetched(M, vec![], 0));
    assert!(m.fetching.is_none());
    // The next fetch is trusted again.
    assert_eq!(
        update(&mut m, key('r')),
        vec![Effect::Fetch(A), Effect::Fetch(M)]
    );
    update(&mut m, fetched(A, vec![entry(1, "A", 9, Some(12))], 0));
    assert_eq!(row(&m, 1).entry.progress, 9);
}

fn conflict(held: u32) -> Msg {
    Msg::Sync(Event::Conflict {
        kind: A,
        media_id: 1,
        mine: "episode 7".into(),
        theirs: "episode 9".into(),
        state: holds(9),
        held,
    })
}

#[test]
fn a_conflict_shows_both_values_until_the_user_keeps_theirs() {
    let mut m = model(vec![entry(1, "A", 5, Some(12))]);
    update(&mut m, key('+'));
    update(&mut m, key('+'));
    update(&mut m, conflict(2));
    let r = row(&m, 1);
    assert_eq!(
        (
            r.entry.progress,
            r.confirmed.as_ref().map(|s| s.progress),
            m.pending()
        ),
        (7, Some(9), 0)
    );
    assert!(r.in_conflict());
    let bar = m.error.clone().unwrap();
    assert!(
        bar.contains("A: MAL says episode 9, you set episode 7 (R keep yours, x keep MAL's)"),
        "{bar}"
    );
    // A fetch does not hide the user's side.
    update(&mut m, key('r'));
    update(&mut m, fetched(A, vec![entry(1, "A", 9, Some(12))], 0));
    assert_eq!(row(&m, 1).entry.progress, 7);
    // x keeps the service's value.
    assert_eq!(
        update(&mut m, key('x')),
        vec![Effect::DropRefused {
            kind: A,
            media_id: 1
        }]
    );
    assert_eq!(row(&m, 1).entry.progress, 9);
    assert!(row(&m, 1).refused.is_none() && m.error.is_none());
}

#[test]
fn a_conflict_settled_with_keep_mine_sends_the_users_changes() {
    let mut m = model(vec![entry(1, "A", 5, Some(12))]);
    update(&mut m, key('+'));
    update(&mut m, key('+'));
    update(&mut m, conflict(2));
    assert_eq!(
        update(&mut m, key('R')),
        vec![Effect::RetryRefused {
            kind: A,
            media_id: 1
        }]
    );
    assert_eq!((row(&m, 1).entry.progress, m.pending()), (7, 2));
    assert!(m.error.is_none() && row(&m, 1).refused.is_none());
}

#[test]
fn a_change_made_in_a_conflict_is_not_sent_unchecked() {
    let mut m = model(vec![entry(1, "A", 5, Some(12))]);
    update(&mut m, fetched(A, vec![entry(1, "A", 5, Some(12))], 0));
    let fresh = |effects: &[Effect]| match effects {
        [Effect::Enqueue { fresh, .. }] => *fresh,
        other => panic!("{other:?}"),
    };
    assert!(
        fresh(&update(&mut m, key('+'))),
        "the screen shows what the service holds"
    );
    update(&mut m, conflict(1));
    assert!(!fresh(&update(&mut m, key('+'))));
}

#[test]
fn changes_made_before_hearing_from_the_service_are_checked_first() {
    let mut m = model(vec![entry(1, "A", 5, Some(12))]);
    match update(&mut m, key('+')).as_slice() {
        [Effect::Enqueue { fresh, entry, .. }] => {
            assert!(!fresh);
            assert!(entry.is_none());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn entries_that_could_not_be_read_keep_their_last_known_values() {
    let mut m = model(vec![entry(1, "A", 5, Some(12)), entry(2, "B", 1, Some(3))]);
    update(&mut m, fetched(A, vec![entry(2, "B", 2, Some(3))], 1));
    let mut rows: Vec<_> = m
        .rows
        .iter()
        .map(|r| (r.entry.id, r.entry.progress))
        .collect();
    rows.sort_unstable();
    assert_eq!(rows, vec![(1, 5), (2, 2)]);
    assert!(
        m.trouble
            .as_deref()
            .unwrap()
            .contains("1 anime entry could not be read"),
        "{:?}",
        m.trouble
    );
    // A clean sync clears the remark and trusts the list again.
    update(&mut m, fetched(A, vec![entry(2, "B", 2, Some(3))], 0));
    assert_eq!(m.rows.len(), 1);
    assert!(m.trouble.is_none());
}

#[test]
fn passing_trouble_leaves_the_bar_once_things_work() {
    let mut m = model(vec![entry(1, "A", 5, Some(12))]);
    update(&mut m, key('+'));
    update(
        &mut m,
        Msg::Sync(Event::Retrying {
            media_id: 1,
            error: ProviderError::Server("MyAnimeList is having trouble (HTTP 500)".into()),
            next_at: jiff::Timestamp::UNIX_EPOCH,
        }),
    );
    assert!(m.trouble.is_some() && m.retry.is_some());
    update(&mut m, delivered(A, 1, holds(6)));
    assert!(m.trouble.is_none() && m.retry.is_none());
}

fn op(seq: i64, change: Change, base: u32) -> Op {
    Op {
        seq,
        service: Service::Mal,
        kind: A,
        media_id: 1,
        change,
        base,
        attempts: 0,
        verified: false,
        entry: None,
        base_state: None,
    }
}

#[test]
fn loading_lays_queued_changes_over_the_cache() {
    let mut m = Model::new(
        Service::Mal,
        None,
        KeyMap::default(),
        jiff::tz::TimeZone::UTC,
    );
    m.load(
        vec![entry(1, "A", 5, Some(12))],
        &[op(1, Change::progress(6), 5), op(2, Change::progress(7), 6)],
        &[],
    );
    let r = row(&m, 1);
    assert_eq!(
        (
            r.entry.progress,
            r.confirmed.as_ref().map(|s| s.progress),
            m.pending()
        ),
        (7, Some(5), 2)
    );
    assert_eq!(m.visible.len(), 1);
}

#[test]
fn loading_shows_queued_additions_and_hides_queued_removals() {
    let mut m = Model::new(
        Service::Mal,
        None,
        KeyMap::default(),
        jiff::tz::TimeZone::UTC,
    );
    let mut added = op(
        1,
        set(Patch {
            status: Some(Status::Planning),
            ..Patch::default()
        }),
        0,
    );
    added.media_id = 7;
    added.entry = Some(Box::new(with_status(
        entry(7, "New", 0, None),
        Status::Planning,
    )));
    let removal = op(2, Change::Remove, 1);
    m.load(vec![entry(1, "A", 5, Some(12))], &[added, removal], &[]);
    assert!(row(&m, 7).confirmed.is_none() && row(&m, 7).pending == 1);
    assert!(row(&m, 1).removing);
    assert!(m.visible.is_empty(), "the removal is hidden");
    assert_eq!(m.tab_counts(), [0, 0, 0, 0, 1]);
}

#[test]
fn a_refused_change_rolls_back_to_what_the_service_holds() {
    let mut m = model(vec![entry(1, "A", 5, Some(12))]);
    update(&mut m, key('+'));
    let refused = || {
        Msg::Sync(Event::Refused {
            kind: A,
            media_id: 1,
            what: "episode 6".into(),
            error: ProviderError::Rejected("gone".into()),
        })
    };
    update(&mut m, refused());
    assert_eq!(row(&m, 1).entry.progress, 5);
    assert_eq!(
        row(&m, 1).refused.as_ref().map(|r| r.reason.as_str()),
        Some("gone")
    );
    let error = m.error.clone().unwrap();
    assert!(
        error.contains("A: episode 6 refused: gone (R retry, x drop)"),
        "{error}"
    );

    // R puts it back in the queue and shows it pending again.
    assert_eq!(
        update(&mut m, key('R')),
        vec![Effect::RetryRefused {
            kind: A,
            media_id: 1
        }]
    );
    assert!(row(&m, 1).refused.is_none() && m.error.is_none());
    assert_eq!(
        (row(&m, 1).entry.progress, row(&m, 1).pending),
        (6, 1),
        "the retried change is shown again, as it was before the refusal"
    );

    // Refused again, then x drops it and the screen shows what the service holds.
    update(&mut m, refused());
    assert_eq!(
        update(&mut m, key('x')),
        vec![Effect::DropRefused {
            kind: A,
            media_id: 1
        }]
    );
    assert_eq!((row(&m, 1).entry.progress, row(&m, 1).pending), (5, 0));
    assert!(update(&mut m, key('x')).is_empty());
    assert!(m.notice.as_deref().unwrap().contains("no refused change"));
}

#[test]
fn a_refused_addition_dropped_with_x_leaves_the_list() {
    let mut m = model(vec![entry(1, "A", 5, Some(12))]);
    let effects = add_from_search(&mut m, found(50, "Fifty", Some(12)), None);
    assert_eq!(enqueued(&effects).len(), 1);
    update(
        &mut m,
        Msg::Sync(Event::Refused {
            kind: A,
            media_id: 50,
            what: "plan to watch".into(),
            error: ProviderError::Rejected("no such anime".into()),
        }),
    );
    assert!(
        m.row((A, 50)).is_some(),
        "kept, marked refused, until dealt with"
    );
    assert_eq!(m.selected_key(), Some((A, 50)));
    update(&mut m, key('x'));
    assert!(m.row((A, 50)).is_none());
}

#[test]
fn offline_and_expired_sessions_are_remembered() {
    let mut m = model(vec![entry(1, "A", 5, None)]);
    update(
        &mut m,
        Msg::Sync(Event::ListFailed {
            kind: A,
            error: ProviderError::Offline("cannot connect".into()),
        }),
    );
    assert!(matches!(m.link, Link::Offline(_)));
    let effects = update(
        &mut m,
        Msg::Sync(Event::LoginNeeded(ProviderError::SessionExpired)),
    );
    assert_eq!(effects, vec![Effect::CheckLogin]);
    assert!(m.login_needed.as_deref().unwrap().contains("malt --login"));
    // Told again: checked only once.
    assert!(
        update(
            &mut m,
            Msg::Sync(Event::LoginNeeded(ProviderError::SessionExpired))
        )
        .is_empty()
    );
    update(&mut m, delivered(A, 1, holds(5)));
    assert!(m.login_needed.is_none());
    assert_eq!(m.link, Link::Online);
}

#[test]
fn a_new_login_clears_the_warning_and_syncs_at_once() {
    let mut m = model(vec![entry(1, "A", 5, None)]);
    start(&mut m);
    for (kind, first) in [(A, true), (M, false)] {
        let effects = update(
            &mut m,
            Msg::Sync(Event::ListFailed {
                kind,
                error: ProviderError::SessionExpired,
            }),
        );
        // One check is enough for both lists.
        assert_eq!(effects.contains(&Effect::CheckLogin), first, "{effects:?}");
    }
    assert!(m.login_needed.is_some());
    assert!(m.fetching.is_none());
    update(&mut m, key('+'));
    let effects = update(&mut m, Msg::Sync(Event::LoginRestored));
    assert_eq!(
        effects,
        vec![Effect::Fetch(A), Effect::Fetch(M), Effect::SendNow]
    );
    assert!(m.login_needed.is_none());
}

#[test]
fn refresh_starts_one_fetch_at_a_time() {
    let mut m = model(vec![]);
    assert_eq!(start(&mut m), vec![Effect::Fetch(A), Effect::Fetch(M)]);
    assert!(update(&mut m, key('r')).is_empty());
    update(
        &mut m,
        Msg::Sync(Event::ListProgress {
            kind: A,
            received: 40,
        }),
    );
    update(
        &mut m,
        Msg::Sync(Event::ListProgress {
            kind: M,
            received: 7,
        }),
    );
    update(
        &mut m,
        Msg::Sync(Event::ListProgress {
            kind: A,
            received: 45,
        }),
    );
    let received: usize = m
        .fetching
        .as_ref()
        .map(|f| f.received.iter().map(|(_, n)| n).sum())
        .unwrap_or(0);
    assert_eq!(received, 52, "both lists counted, each by its latest word");
    update(
        &mut m,
        Msg::Sync(Event::ListFailed {
            kind: A,
            error: ProviderError::Server("500".into()),
        }),
    );
    assert!(
        update(&mut m, key('r')).is_empty(),
        "the manga list is still on its way"
    );
    update(&mut m, fetched(M, vec![], 0));
    assert_eq!(
        update(&mut m, key('r')),
        vec![Effect::Fetch(A), Effect::Fetch(M)]
    );
}

#[test]
fn start_sends_what_is_queued() {
    let mut m = Model::new(
        Service::Mal,
        None,
        KeyMap::default(),
        jiff::tz::TimeZone::UTC,
    );
    m.load(
        vec![entry(1, "A", 5, Some(12))],
        &[op(1, Change::progress(6), 5)],
        &[],
    );
    assert_eq!(
        start(&mut m),
        vec![Effect::Fetch(A), Effect::Fetch(M), Effect::SendNow]
    );
}

#[test]
fn moving_scrolls_the_list() {
    let entries = (0..50)
        .map(|i| entry(i, &format!("T{i:02}"), 0, None))
        .collect();
    let mut m = model(entries);
    update(&mut m, Msg::Resize(80, 15)); // 10 list rows
    assert_eq!(m.list_height, 10);
    for _ in 0..12 {
        update(&mut m, key('j'));
    }
    assert_eq!((m.selected, m.offset), (12, 3));
    update(&mut m, key('k'));
    assert_eq!((m.selected, m.offset), (11, 3));
    update(&mut m, key('G'));
    assert_eq!((m.selected, m.offset), (49, 40));
    update(&mut m, key('g'));
    assert_eq!((m.selected, m.offset), (0, 0));
    update(&mut m, code(KeyCode::PageDown));
    assert_eq!(m.selected, 9);
}

#[test]
fn help_opens_and_any_key_closes_it_and_q_quits() {
    let mut m = model(vec![entry(1, "A", 5, None)]);
    update(&mut m, key('?'));
    assert_eq!(m.overlay, Some(Overlay::Help));
    assert!(
        update(&mut m, key('+')).is_empty(),
        "keys go to the help while it is open"
    );
    assert!(m.overlay.is_none());
    assert_eq!(row(&m, 1).entry.progress, 5);
    assert!(!m.quit);
    update(&mut m, key('?'));
    update(&mut m, code(KeyCode::Esc));
    assert!(m.overlay.is_none() && !m.quit);
    update(&mut m, key('q'));
    assert!(m.quit);
}

#[test]
fn the_store_changed_by_another_process_keeps_the_selection() {
    let mut m = model(vec![
        entry(1, "Alpha", 5, None),
        entry(2, "Beta", 1, None),
        entry(3, "Gamma", 0, None),
    ]);
    update(&mut m, key('j'));
    assert_eq!(m.selected_key(), Some((A, 2)));
    let entries = vec![
        entry(4, "Aardvark", 0, None),
        entry(1, "Alpha", 5, None),
        entry(2, "Beta", 3, None),
        entry(3, "Gamma", 0, None),
    ];
    update(
        &mut m,
        Msg::Sync(Event::StoreChanged {
            entries,
            pending: vec![op(1, Change::progress(6), 5)],
            refused: vec![],
        }),
    );
    assert_eq!(m.selected_key(), Some((A, 2)));
    assert_eq!(m.selected, 2);
    assert_eq!(row(&m, 2).entry.progress, 3);
    assert_eq!((row(&m, 1).entry.progress, row(&m, 1).pending), (6, 1));
}

#[test]
fn a_store_change_shows_refusals_and_conflicts_left_by_another_process() {
    let mut m = model(vec![entry(1, "A", 5, Some(12))]);
    let held = Held {
        reason: "MAL says episode 9, you set episode 7".into(),
        conflict: true,
        theirs: Some(9),
    };
    update(
        &mut m,
        Msg::Sync(Event::StoreChanged {
            entries: vec![entry(1, "A", 9, Some(12))],
            pending: vec![],
            refused: vec![(op(1, Change::progress(7), 5), held)],
        }),
    );
    let r = row(&m, 1);
    assert!(r.in_conflict());
    assert_eq!(
        r.entry.progress, 7,
        "the user's side is shown, the service's is confirmed"
    );
    assert_eq!(r.confirmed.as_ref().map(|s| s.progress), Some(9));
}

#[test]
fn a_change_that_could_not_be_saved_is_undone_and_said() {
    let mut m = model(vec![entry(1, "A", 5, Some(12))]);
    update(&mut m, key('+'));
    update(
        &mut m,
        Msg::Sync(Event::NotSaved {
            kind: A,
            media_id: 1,
            error: "disk full".into(),
        }),
    );
    assert_eq!((row(&m, 1).entry.progress, m.pending()), (5, 0));
    assert!(m.error.as_deref().unwrap().contains("disk full"));
}

#[test]
fn key_releases_are_ignored() {
    let mut m = model(vec![entry(1, "A", 5, Some(12))]);
    let mut release = KeyEvent::new(KeyCode::Char('+'), KeyModifiers::NONE);
    release.kind = crossterm::event::KeyEventKind::Release;
    assert!(update(&mut m, Msg::Key(release)).is_empty());
    assert_eq!(row(&m, 1).entry.progress, 5);
}

// ---------------------------------------------------------------------------------------------
// Issue 4: tabs, kinds, editing, search, details, mouse.
// ---------------------------------------------------------------------------------------------

fn tabbed() -> Model {
    model(vec![
        entry(1, "Frieren", 5, Some(28)),
        entry(2, "One Piece", 1071, None),
        with_status(entry(3, "FMA Brotherhood", 64, Some(64)), Status::Completed),
        with_status(entry(4, "Monster", 20, Some(74)), Status::OnHold),
        with_status(entry(5, "Steins;Gate", 0, Some(24)), Status::Planning),
        with_status(entry(6, "Haikyuu", 0, Some(25)), Status::Planning),
        manga(1, "Berserk", 364, 41),
        with_status(manga(2, "Vagabond", 0, 0), Status::Planning),
    ])
}

#[test]
fn tab_and_shift_tab_cycle_the_status_tabs() {
    let mut m = tabbed();
    assert_eq!(m.tab, Status::Current);
    assert_eq!(shown(&m), vec!["Frieren", "One Piece"]);
    assert_eq!(m.tab_counts(), [2, 1, 1, 0, 2]);
    update(&mut m, key('j'));
    update(&mut m, code(KeyCode::Tab));
    assert_eq!(m.tab, Status::Completed);
    assert_eq!(shown(&m), vec!["FMA Brotherhood"]);
    assert_eq!(m.selected, 0, "a new tab starts at the top");
    update(&mut m, code(KeyCode::Tab));
    assert_eq!((m.tab, shown(&m)), (Status::OnHold, vec!["Monster".into()]));
    update(&mut m, code(KeyCode::Tab));
    assert_eq!(m.tab, Status::Dropped);
    assert!(m.visible.is_empty() && m.selected_row().is_none());
    assert!(
        update(&mut m, key('+')).is_empty(),
        "nothing selected, nothing changed"
    );
    update(&mut m, code(KeyCode::Tab));
    assert_eq!(m.tab, Status::Planning);
    assert_eq!(shown(&m), vec!["Haikyuu", "Steins;Gate"]);
    update(&mut m, code(KeyCode::Tab));
    assert_eq!(m.tab, Status::Current, "Tab wraps around");
    update(&mut m, code(KeyCode::BackTab));
    assert_eq!(m.tab, Status::Planning, "Shift-Tab wraps back");
    update(&mut m, code(KeyCode::BackTab));
    assert_eq!(m.tab, Status::Dropped);
    update(&mut m, code(KeyCode::Right));
    assert_eq!(m.tab, Status::Planning);
    update(&mut m, code(KeyCode::Left));
    assert_eq!(m.tab, Status::Dropped);
}

#[test]
fn m_switches_between_anime_and_manga() {
    let mut m = tabbed();
    update(&mut m, key('m'));
    assert_eq!(m.kind, M);
    assert_eq!(m.tab, Status::Current);
    assert_eq!(shown(&m), vec!["Berserk"]);
    assert_eq!(m.tab_counts(), [1, 0, 0, 0, 1]);
    assert_eq!(m.selected_key(), Some((M, 1)));
    update(&mut m, key('m'));
    assert_eq!(m.kind, A);
    assert_eq!(shown(&m), vec!["Frieren", "One Piece"]);
}

#[test]
fn m_does_nothing_where_the_service_keeps_one_kind() {
    let mut m = tabbed();
    m.kinds = vec![A];
    update(&mut m, key('m'));
    assert_eq!(m.kind, A);
    assert!(m.notice.is_some());
}

#[test]
fn the_first_plus_on_a_planned_entry_starts_it_in_one_request() {
    let mut m = tabbed();
    update(&mut m, code(KeyCode::BackTab));
    assert_eq!(m.tab, Status::Planning);
    update(&mut m, key('j'));
    assert_eq!(m.selected_key(), Some((A, 5)));
    let effects = update(&mut m, key('+'));
    assert_eq!(m.today(), TODAY);
    let started = set(Patch {
        status: Some(Status::Current),
        progress: Some(1),
        start_date: Some(TODAY.into()),
        ..Patch::default()
    });
    // Based on the entry as it was, in the field the change is checked against.
    let base = started.field().of(&with_status(
        entry(5, "Steins;Gate", 0, Some(24)),
        Status::Planning,
    ));
    assert_eq!(enqueued(&effects), vec![(5, started, base)]);
    assert_eq!(effects.len(), 1);
    let r = row(&m, 5);
    assert_eq!((r.entry.status, r.entry.progress), (Status::Current, 1));
    assert_eq!(r.entry.start_date.as_deref(), Some(TODAY));
    // It left the plan-to-watch tab for the watching one.
    assert_eq!(shown(&m), vec!["Haikyuu"]);
    assert_eq!(m.tab_counts(), [3, 1, 1, 0, 1]);
    update(&mut m, code(KeyCode::Tab));
    assert!(shown(&m).contains(&"Steins;Gate".to_string()));
    // The next + is only progress: started already.
    update(&mut m, key('j'));
    update(&mut m, key('j'));
    assert_eq!(m.selected_key(), Some((A, 5)));
    assert_eq!(
        enqueued(&update(&mut m, key('+'))),
        vec![(5, Change::progress(2), 1)]
    );
}

#[test]
fn progress_leaving_zero_sets_the_start_date_once() {
    let mut m = model(vec![entry(1, "A", 0, Some(12))]);
    let effects = update(&mut m, key('+'));
    assert_eq!(
        enqueued(&effects),
        vec![(
            1,
            set(Patch {
                progress: Some(1),
                start_date: Some(TODAY.into()),
                ..Patch::default()
            }),
            0
        )]
    );
    update(&mut m, key('-'));
    assert_eq!(
        enqueued(&update(&mut m, key('+'))),
        vec![(1, Change::progress(1), 0)],
        "the start date is kept"
    );
}

#[test]
fn reaching_the_last_episode_asks_to_complete_and_yes_completes() {
    let mut m = model(vec![entry(1, "A", 11, Some(12)), entry(2, "B", 1, None)]);
    let effects = update(&mut m, key('+'));
    assert_eq!(progress_enqueued(&effects), vec![(1, 12, 11)]);
    assert_eq!(prompt(&m), Some(&Prompt::Complete { key: (A, 1) }));
    // Other keys leave the question open.
    assert!(update(&mut m, key('+')).is_empty());
    assert_eq!(prompt(&m), Some(&Prompt::Complete { key: (A, 1) }));
    let effects = update(&mut m, key('y'));
    assert_eq!(
        enqueued(&effects),
        vec![(
            1,
            set(Patch {
                status: Some(Status::Completed),
                finish_date: Some(TODAY.into()),
                ..Patch::default()
            }),
            Field::Status.of(&entry(1, "A", 12, Some(12)))
        )]
    );
    assert_eq!(effects.len(), 1);
    assert!(m.overlay.is_none());
    let r = row(&m, 1);
    assert_eq!(r.entry.status, Status::Completed);
    assert_eq!(r.entry.finish_date.as_deref(), Some(TODAY));
    assert_eq!(r.pending, 2);
    assert_eq!(shown(&m), vec!["B"], "it moved to the completed tab");
    assert_eq!(m.tab_counts()[Status::Completed.index()], 1);
}

#[test]
fn no_to_the_completion_question_is_not_asked_again() {
    let mut m = model(vec![entry(1, "A", 11, Some(12))]);
    update(&mut m, key('+'));
    assert!(update(&mut m, key('n')).is_empty());
    assert!(m.overlay.is_none());
    assert!(m.declined.contains(&(A, 1)));
    assert_eq!(row(&m, 1).entry.status, Status::Current);
    update(&mut m, key('-'));
    let effects = update(&mut m, key('+'));
    assert_eq!(progress_enqueued(&effects), vec![(1, 12, 11)]);
    assert!(m.overlay.is_none(), "declined once: not asked again");
}

#[test]
fn e_sets_the_count_typed() {
    let mut m = model(vec![entry(1, "A", 5, Some(12))]);
    update(&mut m, key('e'));
    assert!(matches!(
        prompt(&m),
        Some(Prompt::Count { key: (A, 1), .. })
    ));
    press(&mut m, KeyCode::Backspace, 3);
    type_in(&mut m, "8x");
    assert!(
        matches!(prompt(&m), Some(Prompt::Count { input, .. }) if input == "8"),
        "only digits are typed: {:?}",
        m.overlay
    );
    let effects = update(&mut m, code(KeyCode::Enter));
    assert_eq!(enqueued(&effects), vec![(1, Change::progress(8), 5)]);
    assert!(m.overlay.is_none());
    assert_eq!(row(&m, 1).entry.progress, 8);
}

#[test]
fn typing_after_e_replaces_the_count_shown() {
    // The prompt opens showing the current count; what the user types is the new count, not
    // digits appended to the old one (5 then "7" is 7, never 57).
    let mut m = model(vec![entry(1, "A", 5, None)]);
    update(&mut m, key('e'));
    type_in(&mut m, "7");
    let effects = update(&mut m, code(KeyCode::Enter));
    assert_eq!(enqueued(&effects), vec![(1, Change::progress(7), 5)]);
}

#[test]
fn e_refuses_more_than_the_total() {
    let mut m = model(vec![entry(1, "A", 5, Some(12))]);
    update(&mut m, key('e'));
    press(&mut m, KeyCode::Backspace, 3);
    type_in(&mut m, "13");
    assert!(update(&mut m, code(KeyCode::Enter)).is_empty());
    assert!(
        m.notice.as_deref().unwrap().contains("12 episodes"),
        "{:?}",
        m.notice
    );
    assert!(
        matches!(prompt(&m), Some(Prompt::Count { .. })),
        "the prompt stays to be corrected"
    );
    assert_eq!(row(&m, 1).entry.progress, 5);
    // Esc cancels.
    assert!(update(&mut m, code(KeyCode::Esc)).is_empty());
    assert!(m.overlay.is_none());
    assert_eq!(m.pending(), 0);
}

#[test]
fn e_to_the_last_episode_asks_to_complete() {
    let mut m = model(vec![entry(1, "A", 5, Some(12))]);
    update(&mut m, key('e'));
    press(&mut m, KeyCode::Backspace, 3);
    type_in(&mut m, "12");
    let effects = update(&mut m, code(KeyCode::Enter));
    assert_eq!(progress_enqueued(&effects), vec![(1, 12, 5)]);
    assert_eq!(prompt(&m), Some(&Prompt::Complete { key: (A, 1) }));
}

#[test]
fn e_on_manga_sets_chapters_and_volumes() {
    let mut m = model(vec![manga(1, "Berserk", 40, 4)]);
    update(&mut m, key('m'));
    update(&mut m, key('e'));
    assert!(
        matches!(prompt(&m), Some(Prompt::Count { key: (M, 1), .. })),
        "{:?}",
        m.overlay
    );
    press(&mut m, KeyCode::Backspace, 10);
    type_in(&mut m, "52 6");
    let effects = update(&mut m, code(KeyCode::Enter));
    assert_eq!(
        enqueued(&effects),
        vec![(
            1,
            set(Patch {
                progress: Some(52),
                volumes: Some(6),
                ..Patch::default()
            }),
            40
        )]
    );
    let r = m.row((M, 1)).unwrap();
    assert_eq!((r.entry.progress, r.entry.volumes), (52, 6));
}

#[test]
fn e_with_nothing_changed_sends_nothing() {
    let mut m = model(vec![entry(1, "A", 5, Some(12))]);
    update(&mut m, key('e'));
    press(&mut m, KeyCode::Backspace, 3);
    type_in(&mut m, "5");
    assert!(update(&mut m, code(KeyCode::Enter)).is_empty());
    assert!(m.overlay.is_none());
}

fn score_choice(m: &Model) -> Option<u8> {
    match prompt(m) {
        Some(Prompt::Score { choice, .. }) => Some(*choice),
        _ => None,
    }
}

fn score(n: u8) -> Change {
    set(Patch {
        score: Some(n),
        ..Patch::default()
    })
}

#[test]
fn s_sets_the_score_from_a_menu() {
    let mut m = model(vec![entry(1, "A", 5, Some(12))]);
    update(&mut m, key('s'));
    assert_eq!(score_choice(&m), Some(0));
    update(&mut m, key('7'));
    assert_eq!(score_choice(&m), Some(7));
    let effects = update(&mut m, code(KeyCode::Enter));
    assert_eq!(enqueued(&effects), vec![(1, score(7), 0)]);
    assert_eq!(row(&m, 1).entry.score, 7);
    assert!(m.overlay.is_none());

    // Arrows move from the current score, within 0–10.
    update(&mut m, key('s'));
    assert_eq!(score_choice(&m), Some(7));
    press(&mut m, KeyCode::Up, 5);
    assert_eq!(score_choice(&m), Some(10));
    press(&mut m, KeyCode::Down, 1);
    let effects = update(&mut m, code(KeyCode::Enter));
    assert_eq!(enqueued(&effects), vec![(1, score(9), 7)]);

    // "1" then "0" is 10.
    update(&mut m, key('s'));
    type_in(&mut m, "10");
    assert_eq!(score_choice(&m), Some(10));
    let effects = update(&mut m, code(KeyCode::Enter));
    assert_eq!(enqueued(&effects), vec![(1, score(10), 9)]);

    // Esc changes nothing.
    update(&mut m, key('s'));
    update(&mut m, key('3'));
    assert!(update(&mut m, code(KeyCode::Esc)).is_empty());
    assert!(m.overlay.is_none());
    assert_eq!(row(&m, 1).entry.score, 10);

    // The same score again sends nothing.
    update(&mut m, key('s'));
    assert!(update(&mut m, code(KeyCode::Enter)).is_empty());
    assert_eq!(m.pending(), 3);
}

#[test]
fn zero_typed_in_the_score_menu_clears_a_score_of_one() {
    // "1" then "0" is 10 only when the 1 was typed; the menu opening on a score of 1 is not a
    // typed 1.
    let mut m = model(vec![ListEntry::watching(1, "A", 5, Some(12), 1)]);
    update(&mut m, key('s'));
    update(&mut m, key('0'));
    assert_eq!(score_choice(&m), Some(0));
    let effects = update(&mut m, code(KeyCode::Enter));
    assert_eq!(enqueued(&effects), vec![(1, score(0), 1)]);
}

#[test]
fn s_status_menu_moves_the_entry_and_completing_fills_the_count_and_date() {
    let mut m = model(vec![entry(1, "A", 5, Some(12)), entry(2, "B", 1, None)]);
    update(&mut m, key('S'));
    assert_eq!(
        prompt(&m),
        Some(&Prompt::Status {
            key: (A, 1),
            choice: 0
        })
    );
    update(&mut m, code(KeyCode::Down));
    assert_eq!(
        prompt(&m),
        Some(&Prompt::Status {
            key: (A, 1),
            choice: 1
        })
    );
    let effects = update(&mut m, code(KeyCode::Enter));
    let completed = set(Patch {
        status: Some(Status::Completed),
        progress: Some(12),
        finish_date: Some(TODAY.into()),
        ..Patch::default()
    });
    let base = completed.field().of(&entry(1, "A", 5, Some(12)));
    assert_eq!(enqueued(&effects), vec![(1, completed, base)]);
    let r = row(&m, 1);
    assert_eq!(
        (
            r.entry.status,
            r.entry.progress,
            r.entry.finish_date.as_deref()
        ),
        (Status::Completed, 12, Some(TODAY))
    );
    assert_eq!(shown(&m), vec!["B"]);
    assert!(m.notice.as_deref().unwrap().contains("moved to Completed"));

    // Digits choose; another status sends only the status.
    update(&mut m, key('S'));
    update(&mut m, key('3'));
    let effects = update(&mut m, code(KeyCode::Enter));
    assert_eq!(
        enqueued(&effects),
        vec![(
            2,
            set(Patch {
                status: Some(Status::OnHold),
                ..Patch::default()
            }),
            Field::Status.of(&entry(2, "B", 1, None))
        )]
    );
    assert!(m.visible.is_empty());

    // Esc, or the same status, sends nothing.
    update(&mut m, code(KeyCode::Tab));
    update(&mut m, key('S'));
    assert!(update(&mut m, code(KeyCode::Enter)).is_empty());
    update(&mut m, key('S'));
    update(&mut m, key('5'));
    assert!(update(&mut m, code(KeyCode::Esc)).is_empty());
    assert_eq!(m.pending(), 2);
}

#[test]
fn completing_a_manga_fills_chapters_and_volumes() {
    let mut e = manga(1, "Berserk", 300, 30);
    e.total = Some(380);
    e.total_volumes = Some(42);
    let mut m = model(vec![e]);
    update(&mut m, key('m'));
    update(&mut m, key('S'));
    update(&mut m, key('2'));
    let effects = update(&mut m, code(KeyCode::Enter));
    match enqueued(&effects).as_slice() {
        [(1, Change::Set(p), _)] => {
            assert_eq!(p.status, Some(Status::Completed));
            assert_eq!((p.progress, p.volumes), (Some(380), Some(42)));
            assert_eq!(p.finish_date.as_deref(), Some(TODAY));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn w_turns_rewatching_on_and_off() {
    let mut m = model(vec![entry(1, "A", 5, Some(12))]);
    let on = set(Patch {
        repeating: Some(true),
        ..Patch::default()
    });
    let off = set(Patch {
        repeating: Some(false),
        ..Patch::default()
    });
    assert_eq!(enqueued(&update(&mut m, key('w'))), vec![(1, on, 0)]);
    assert!(row(&m, 1).entry.repeating);
    assert_eq!(enqueued(&update(&mut m, key('w'))), vec![(1, off, 1)]);
    assert!(!row(&m, 1).entry.repeating);
}

#[test]
fn d_then_y_removes_the_entry() {
    let mut m = model(vec![entry(1, "A", 5, Some(12)), entry(2, "B", 1, None)]);
    assert!(update(&mut m, key('d')).is_empty());
    assert_eq!(prompt(&m), Some(&Prompt::Delete { key: (A, 1) }));
    let effects = update(&mut m, key('y'));
    assert_eq!(enqueued(&effects), vec![(1, Change::Remove, 1)]);
    assert!(m.overlay.is_none());
    assert!(row(&m, 1).removing);
    assert_eq!(shown(&m), vec!["B"], "hidden at once");
    assert_eq!(m.tab_counts()[0], 1);
    assert_eq!(m.selected_key(), Some((A, 2)));
    // The service confirms: it holds nothing for it any more.
    update(&mut m, delivered(A, 1, None));
    assert!(m.row((A, 1)).is_none());
    assert_eq!(m.pending(), 0);
    assert_eq!(shown(&m), vec!["B"]);
}

#[test]
fn d_then_anything_else_keeps_the_entry() {
    let mut m = model(vec![entry(1, "A", 5, Some(12))]);
    update(&mut m, key('d'));
    assert!(update(&mut m, key('n')).is_empty());
    assert!(m.overlay.is_none());
    assert!(!row(&m, 1).removing);
    update(&mut m, key('d'));
    assert!(update(&mut m, code(KeyCode::Esc)).is_empty());
    assert_eq!(shown(&m), vec!["A"]);
    assert_eq!(m.pending(), 0);
}

#[test]
fn a_removal_that_fetches_confirm_stays_hidden() {
    let mut m = model(vec![entry(1, "A", 5, Some(12))]);
    update(&mut m, key('d'));
    update(&mut m, key('y'));
    // A list read before the removal still has it; the removal is on its way.
    update(&mut m, fetched(A, vec![entry(1, "A", 5, Some(12))], 0));
    assert!(m.visible.is_empty());
    assert!(row(&m, 1).removing);
}

#[test]
fn slash_filters_as_you_type() {
    let mut m = model(vec![
        entry(1, "Steins;Gate", 0, None),
        entry(2, "Shingeki no Kyojin", 0, None),
        entry(3, "Sousou no Frieren", 0, None),
        entry(4, "Gintama", 0, None),
    ]);
    update(&mut m, key('/'));
    assert!(m.filter.editing);
    // Keys go to the filter, not to actions.
    let effects = type_in(&mut m, "frrn");
    assert!(effects.is_empty());
    assert_eq!(m.filter.query, "frrn");
    assert_eq!(shown(&m), vec!["Sousou no Frieren"], "fuzzy");
    assert_eq!(m.selected_key(), Some((A, 3)));
    update(&mut m, code(KeyCode::Enter));
    assert!(!m.filter.editing);
    assert_eq!(m.filter.query, "frrn", "Enter keeps the filter");
    assert_eq!(shown(&m), vec!["Sousou no Frieren"]);
    // Keys act again, on the filtered list.
    assert_eq!(
        progress_enqueued(&update(&mut m, key('+'))),
        vec![(3, 1, 0)]
    );
    // Esc clears it.
    update(&mut m, code(KeyCode::Esc));
    assert!(m.filter.query.is_empty());
    assert_eq!(shown(&m).len(), 4);

    update(&mut m, key('/'));
    type_in(&mut m, "gq");
    assert!(m.visible.is_empty());
    assert!(!m.quit, "q was typed, not pressed");
    update(&mut m, code(KeyCode::Backspace));
    assert_eq!(m.filter.query, "g");
    assert!(!m.visible.is_empty());
    update(&mut m, code(KeyCode::Esc));
    assert!(!m.filter.editing && m.filter.query.is_empty());
    assert_eq!(shown(&m).len(), 4);
}

#[test]
fn o_cycles_the_sort() {
    let mut a = entry(1, "A", 1, None);
    a.score = 5;
    a.updated_at = Some("2024-01-01T00:00:00Z".into());
    let mut b = entry(2, "B", 9, None);
    b.score = 7;
    b.updated_at = Some("2023-01-01T00:00:00Z".into());
    let mut c = entry(3, "C", 3, None);
    c.score = 9;
    c.updated_at = Some("2024-06-01T00:00:00+02:00".into());
    let mut m = model(vec![b, c, a]);
    assert_eq!(m.sort, Sort::Title);
    assert_eq!(shown(&m), vec!["A", "B", "C"]);
    update(&mut m, key('o'));
    assert_eq!(m.sort, Sort::Progress);
    assert_eq!(shown(&m), vec!["B", "C", "A"]);
    assert!(m.notice.as_deref().unwrap().contains("progress"));
    update(&mut m, key('o'));
    assert_eq!(m.sort, Sort::Score);
    assert_eq!(shown(&m), vec!["C", "B", "A"]);
    update(&mut m, key('o'));
    assert_eq!(m.sort, Sort::Updated);
    assert_eq!(shown(&m), vec!["C", "A", "B"]);
    update(&mut m, key('o'));
    assert_eq!(m.sort, Sort::NextAiring);
    update(&mut m, key('o'));
    assert_eq!(m.sort, Sort::Title);
    assert_eq!(shown(&m), vec!["A", "B", "C"]);
}

#[test]
fn sorting_keeps_the_selected_entry_selected() {
    let mut m = model(vec![entry(1, "A", 1, None), entry(2, "B", 9, None)]);
    assert_eq!(m.selected_key(), Some((A, 1)));
    update(&mut m, key('o'));
    assert_eq!(m.selected_key(), Some((A, 1)));
    assert_eq!(m.selected, 1);
}

/// Opens search, sends `query`, answers with `results`.
fn searched(m: &mut Model, query: &str, results: Vec<Found>) {
    update(m, key('a'));
    type_in(m, query);
    let effects = update(m, code(KeyCode::Enter));
    assert_eq!(
        effects,
        vec![Effect::Search {
            kind: search(m).kind,
            query: query.into()
        }]
    );
    let kind = search(m).kind;
    update(
        m,
        Msg::Searched {
            kind,
            query: query.into(),
            result: Ok(results),
        },
    );
}

/// Searches, and adds the only result with the status typed (`None`: the default).
fn add_from_search(m: &mut Model, result: Found, status: Option<char>) -> Vec<Effect> {
    searched(m, "fifty", vec![result]);
    assert!(update(m, code(KeyCode::Enter)).is_empty());
    if let Some(c) = status {
        update(m, key(c));
    }
    update(m, code(KeyCode::Enter))
}

#[test]
fn a_search_needs_three_characters() {
    let mut m = model(vec![entry(1, "A", 5, Some(12))]);
    update(&mut m, key('a'));
    assert_eq!(search(&m).kind, A);
    assert!(search(&m).editing);
    type_in(&mut m, "ab");
    assert!(update(&mut m, code(KeyCode::Enter)).is_empty());
    assert!(
        matches!(&search(&m).results, Some(Err(e)) if e.contains("at least 3")),
        "{:?}",
        search(&m).results
    );
    assert!(!search(&m).searching);
    type_in(&mut m, " ");
    assert!(
        update(&mut m, code(KeyCode::Enter)).is_empty(),
        "spaces do not count"
    );
    type_in(&mut m, "c");
    assert_eq!(
        update(&mut m, code(KeyCode::Enter)),
        vec![Effect::Search {
            kind: A,
            query: "ab c".into()
        }]
    );
    assert!(search(&m).searching);
}

#[test]
fn search_results_arrive_and_stale_ones_are_ignored() {
    let mut m = model(vec![entry(1, "A", 5, Some(12))]);
    update(&mut m, key('a'));
    type_in(&mut m, "fri");
    update(&mut m, code(KeyCode::Enter));
    type_in(&mut m, "eren");
    assert_eq!(
        update(&mut m, code(KeyCode::Enter)),
        vec![Effect::Search {
            kind: A,
            query: "frieren".into()
        }]
    );
    // The answer to the first query comes late.
    update(
        &mut m,
        Msg::Searched {
            kind: A,
            query: "fri".into(),
            result: Ok(vec![found(9, "Fri", None)]),
        },
    );
    assert!(search(&m).searching);
    assert!(search(&m).results.is_none());
    // An answer for the other kind is not this one either.
    update(
        &mut m,
        Msg::Searched {
            kind: M,
            query: "frieren".into(),
            result: Ok(vec![found(9, "Fri", None)]),
        },
    );
    assert!(search(&m).results.is_none());
    update(
        &mut m,
        Msg::Searched {
            kind: A,
            query: "frieren".into(),
            result: Ok(vec![
                found(52991, "Sousou no Frieren", Some(28)),
                found(56885, "Frieren 2", None),
            ]),
        },
    );
    let s = search(&m);
    assert!(!s.searching);
    assert_eq!(
        s.results.as_ref().map(|r| r.as_ref().map(Vec::len)),
        Some(Ok(2))
    );
    update(&mut m, code(KeyCode::Down));
    update(&mut m, code(KeyCode::Down));
    assert_eq!(search(&m).selected, 1, "stops at the last result");
    update(&mut m, code(KeyCode::Up));
    assert_eq!(search(&m).selected, 0);
    // Esc closes.
    assert!(update(&mut m, code(KeyCode::Esc)).is_empty());
    assert!(m.overlay.is_none());
}

#[test]
fn tab_in_search_switches_to_manga() {
    let mut m = model(vec![]);
    update(&mut m, key('a'));
    type_in(&mut m, "berserk");
    update(&mut m, code(KeyCode::Tab));
    assert_eq!(search(&m).kind, M);
    assert_eq!(
        update(&mut m, code(KeyCode::Enter)),
        vec![Effect::Search {
            kind: M,
            query: "berserk".into()
        }]
    );
    assert_eq!(m.kind, A, "the list shown does not change");
}

#[test]
fn enter_on_a_result_chooses_a_status_and_adds_it() {
    let mut m = tabbed();
    searched(&mut m, "fifty", vec![found(50, "Fifty", Some(12))]);
    assert!(update(&mut m, code(KeyCode::Enter)).is_empty());
    assert_eq!(
        search(&m).choosing,
        Some(Status::Planning.index()),
        "plan to watch is the default"
    );
    let effects = update(&mut m, code(KeyCode::Enter));
    let added = set(Patch {
        status: Some(Status::Planning),
        ..Patch::default()
    });
    match effects.as_slice() {
        [
            Effect::Enqueue {
                kind,
                media_id,
                change,
                base,
                fresh,
                entry: Some(shown),
                base_state,
            },
        ] => {
            assert_eq!((*kind, *media_id, *base, *fresh), (A, 50, 0, false));
            assert_eq!(
                base_state, &None,
                "an addition is based on not being listed"
            );
            assert_eq!(change, &added);
            assert_eq!(shown.title, "Fifty");
            assert_eq!(shown.status, Status::Planning);
        }
        other => panic!("{other:?}"),
    }
    assert!(m.overlay.is_none());
    assert_eq!(m.tab, Status::Planning);
    assert_eq!(m.selected_key(), Some((A, 50)));
    assert!(shown(&m).contains(&"Fifty".to_string()));
    let r = row(&m, 50);
    assert!(r.confirmed.is_none() && r.pending == 1);
    assert!(m.notice.as_deref().unwrap().contains("added Fifty"));
    // The service confirms the addition.
    let state = ListState {
        status: Some(Status::Planning),
        ..ListState::default()
    };
    update(&mut m, delivered(A, 50, Some(state.clone())));
    assert_eq!(row(&m, 50).confirmed, Some(state));
    assert_eq!(m.pending(), 0);
}

#[test]
fn a_result_added_as_watching_goes_to_that_tab() {
    let mut m = tabbed();
    update(&mut m, code(KeyCode::Tab));
    assert_eq!(m.tab, Status::Completed);
    searched(&mut m, "fifty", vec![found(50, "Fifty", None)]);
    update(&mut m, code(KeyCode::Enter));
    press(&mut m, KeyCode::Up, 10);
    assert_eq!(search(&m).choosing, Some(0));
    let effects = update(&mut m, code(KeyCode::Enter));
    assert_eq!(
        enqueued(&effects),
        vec![(
            50,
            set(Patch {
                status: Some(Status::Current),
                ..Patch::default()
            }),
            0
        )]
    );
    assert_eq!(m.tab, Status::Current);
    assert_eq!(m.selected_key(), Some((A, 50)));
}

#[test]
fn an_added_entry_is_based_on_not_being_on_the_list() {
    // Whatever the status chosen, an addition is checked against "not on the list": its base
    // must be what the service holds, in the change's field, for an entry it does not have
    // (otherwise the check before sending sees a conflict that is not there).
    for status in ['1', '2', '3', '4', '5'] {
        let mut m = model(vec![]);
        let effects = add_from_search(&mut m, found(50, "Fifty", Some(12)), Some(status));
        let [(50, change, base)] = <[_; 1]>::try_from(enqueued(&effects)).expect("one change")
        else {
            panic!("{effects:?}");
        };
        assert_eq!(
            change.field().value(None),
            Some(base),
            "status {status}: {change:?} based on {base}"
        );
    }
}

#[test]
fn a_result_added_as_completed_is_completed_today() {
    let mut m = model(vec![]);
    let effects = add_from_search(&mut m, found(50, "Fifty", Some(12)), Some('2'));
    assert_eq!(enqueued(&effects).len(), 1);
    let r = row(&m, 50);
    assert_eq!(r.entry.status, Status::Completed);
    assert_eq!(r.entry.progress, 12);
    assert_eq!(r.entry.finish_date.as_deref(), Some(TODAY));
    assert_eq!(m.tab, Status::Completed);
}

#[test]
fn enter_on_a_result_already_on_the_list_goes_to_it() {
    let mut m = tabbed();
    update(&mut m, code(KeyCode::BackTab));
    update(&mut m, key('/'));
    type_in(&mut m, "hai");
    update(&mut m, code(KeyCode::Enter));
    searched(
        &mut m,
        "frieren",
        vec![found(50, "Fifty", None), found(1, "Frieren", Some(28))],
    );
    update(&mut m, code(KeyCode::Down));
    assert!(update(&mut m, code(KeyCode::Enter)).is_empty());
    assert!(m.overlay.is_none());
    assert_eq!((m.kind, m.tab), (A, Status::Current));
    assert!(m.filter.query.is_empty(), "the filter would hide it");
    assert_eq!(m.selected_key(), Some((A, 1)));
    assert_eq!(m.pending(), 0);
}

#[test]
fn re_adding_an_entry_whose_removal_is_on_its_way_is_based_on_the_removal() {
    let mut m = model(vec![entry(50, "Fifty", 5, Some(12))]);
    update(&mut m, key('d'));
    update(&mut m, key('y'));
    assert!(m.visible.is_empty());
    let effects = add_from_search(&mut m, found(50, "Fifty", Some(12)), None);
    let changes = enqueued(&effects);
    assert_eq!(changes.len(), 1, "{effects:?}");
    let (_, change, base) = &changes[0];
    assert_eq!(
        change,
        &set(Patch {
            status: Some(Status::Planning),
            ..Patch::default()
        })
    );
    // When it is sent, the removal has landed: the service has nothing for it.
    assert_eq!(*base, 0, "based on the entry not being on the list");
    assert!(!row(&m, 50).removing);
    assert_eq!(m.selected_key(), Some((A, 50)));
}

#[test]
fn enter_opens_the_details_and_the_cover_is_loaded_when_it_fits() {
    let mut m = model(vec![entry(1, "A", 5, Some(12))]);
    update(&mut m, Msg::Resize(120, 40));
    let effects = update(&mut m, code(KeyCode::Enter));
    assert_eq!(effects, vec![Effect::LoadDetails { key: (A, 1) }]);
    assert!(matches!(&m.overlay, Some(Overlay::Details(p)) if p.details.is_none()));
    let details = Details {
        kind: Some(A),
        id: 1,
        title: "A".into(),
        picture: Some("https://cdn.example/images/1l.jpg".into()),
        ..Details::default()
    };
    // Details of another entry (a pane closed meanwhile) are not shown.
    assert!(
        update(
            &mut m,
            Msg::DetailsLoaded {
                key: (A, 2),
                result: Ok(Box::new(details.clone()))
            }
        )
        .is_empty()
    );
    assert!(matches!(&m.overlay, Some(Overlay::Details(p)) if p.details.is_none()));
    let effects = update(
        &mut m,
        Msg::DetailsLoaded {
            key: (A, 1),
            result: Ok(Box::new(details.clone())),
        },
    );
    match effects.as_slice() {
        [
            Effect::LoadCover {
                key,
                url,
                cols,
                rows,
            },
        ] => {
            assert_eq!(*key, (A, 1));
            assert_eq!(url, "https://cdn.example/images/1l.jpg");
            assert!(*cols > 0 && *rows > 0);
            assert_eq!((*cols, *rows), view::cover_cells(120, 40));
        }
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(&m.overlay, Some(Overlay::Details(p)) if p.details.as_ref().and_then(|d| d.as_ref().ok()).map(|d| d.picture.clone()) == Some(details.picture.clone()))
    );
    // j/k scroll; + still counts; Esc closes.
    update(&mut m, key('j'));
    assert!(matches!(&m.overlay, Some(Overlay::Details(p)) if p.scroll == 1));
    assert_eq!(
        progress_enqueued(&update(&mut m, key('+'))),
        vec![(1, 6, 5)]
    );
    assert!(matches!(m.overlay, Some(Overlay::Details(_))));
    assert!(update(&mut m, code(KeyCode::Esc)).is_empty());
    assert!(m.overlay.is_none());
    assert!(!m.quit);
}

#[test]
fn no_cover_is_loaded_when_images_are_off_or_the_screen_is_small() {
    let details = Details {
        id: 1,
        title: "A".into(),
        picture: Some("https://cdn.example/images/1l.jpg".into()),
        ..Details::default()
    };
    let loaded = |m: &mut Model| {
        update(
            m,
            Msg::DetailsLoaded {
                key: (A, 1),
                result: Ok(Box::new(details.clone())),
            },
        )
    };
    let mut m = model(vec![entry(1, "A", 5, Some(12))]);
    m.images = false;
    update(&mut m, Msg::Resize(120, 40));
    update(&mut m, code(KeyCode::Enter));
    assert!(loaded(&mut m).is_empty());
    assert!(matches!(&m.overlay, Some(Overlay::Details(p)) if p.details.is_some()));

    let mut m = model(vec![entry(1, "A", 5, Some(12))]);
    update(&mut m, Msg::Resize(50, 14));
    update(&mut m, code(KeyCode::Enter));
    assert!(loaded(&mut m).is_empty());

    // And none when the work has no picture.
    let mut m = model(vec![entry(1, "A", 5, Some(12))]);
    update(&mut m, Msg::Resize(120, 40));
    update(&mut m, code(KeyCode::Enter));
    let effects = update(
        &mut m,
        Msg::DetailsLoaded {
            key: (A, 1),
            result: Err("offline".into()),
        },
    );
    assert!(effects.is_empty());
}

#[test]
fn a_click_on_a_line_selects_it() {
    let mut m = model(
        (1..=5)
            .map(|i| entry(i, &format!("T{i}"), 0, None))
            .collect(),
    );
    update(&mut m, Msg::Resize(80, 24));
    assert!(click(&mut m, 10, view::LIST_TOP + 2).is_empty());
    assert_eq!(m.selected_key(), Some((A, 3)));
    // Below the last line: nothing.
    click(&mut m, 10, view::LIST_TOP + 7);
    assert_eq!(m.selected_key(), Some((A, 3)));
    // The table header is not a line.
    click(&mut m, 10, view::LIST_TOP - 1);
    assert_eq!(m.selected_key(), Some((A, 3)));
    // Clicks under an overlay do nothing.
    update(&mut m, key('?'));
    click(&mut m, 10, view::LIST_TOP);
    assert_eq!(m.selected_key(), Some((A, 3)));
}

#[test]
fn a_click_on_a_line_of_a_scrolled_list_selects_that_line() {
    let mut m = model(
        (0..40)
            .map(|i| entry(i, &format!("T{i:02}"), 0, None))
            .collect(),
    );
    update(&mut m, Msg::Resize(80, 15)); // 10 list lines: screen rows 3..=12
    // The status bar under the list is not a line, though the list goes on below it.
    click(&mut m, 10, 15 - 2);
    assert_eq!(m.selected_key(), Some((A, 0)));
    click(&mut m, 10, view::LIST_TOP + 9);
    assert_eq!(m.selected_key(), Some((A, 9)));
    update(&mut m, key('G'));
    assert_eq!(m.offset, 30);
    click(&mut m, 10, view::LIST_TOP);
    assert_eq!(m.selected_key(), Some((A, 30)));
}

#[test]
fn a_click_on_a_tab_switches_to_it() {
    let mut m = tabbed();
    // "  Watching 2   Completed 1   On hold 1 …"
    click(&mut m, 17, view::TABS_ROW);
    assert_eq!(m.tab, Status::Completed);
    let (_, _, start, _) = view::tab_spans(&m)[Status::Planning.index()].clone();
    click(&mut m, start + 1, view::TABS_ROW);
    assert_eq!(m.tab, Status::Planning);
    click(&mut m, 3, view::TABS_ROW);
    assert_eq!(m.tab, Status::Current);
}

#[test]
fn the_wheel_scrolls() {
    let mut m = model(
        (0..10)
            .map(|i| entry(i, &format!("T{i}"), 0, None))
            .collect(),
    );
    wheel(&mut m, MouseEventKind::ScrollDown);
    assert_eq!(m.selected, 3);
    wheel(&mut m, MouseEventKind::ScrollDown);
    wheel(&mut m, MouseEventKind::ScrollDown);
    wheel(&mut m, MouseEventKind::ScrollDown);
    assert_eq!(m.selected, 9, "stops at the last line");
    wheel(&mut m, MouseEventKind::ScrollUp);
    assert_eq!(m.selected, 6);
    // In the details pane the wheel scrolls the text.
    update(&mut m, code(KeyCode::Enter));
    wheel(&mut m, MouseEventKind::ScrollDown);
    assert!(matches!(&m.overlay, Some(Overlay::Details(p)) if p.scroll == 1));
    assert_eq!(m.selected, 6);
}

#[test]
fn the_help_closes_on_any_key() {
    for k in [
        code(KeyCode::Esc),
        key('?'),
        key('x'),
        code(KeyCode::Enter),
        key('a'),
    ] {
        let mut m = model(vec![entry(1, "A", 5, Some(12))]);
        update(&mut m, key('?'));
        assert!(update(&mut m, k.clone()).is_empty(), "{k:?}");
        assert!(m.overlay.is_none(), "{k:?}");
        assert!(!m.quit);
    }
}

#[test]
fn the_clock_sets_today_in_the_users_zone() {
    let mut m = model(vec![]);
    update(&mut m, Msg::Clock("2024-11-25T23:30:00Z".parse().unwrap()));
    assert_eq!(m.today(), "2024-11-25");
    m.tz = jiff::tz::TimeZone::fixed(jiff::tz::offset(9));
    assert_eq!(m.today(), "2024-11-26");
}

#[test]
fn tick_animates_only_while_fetching_and_shutdown_quits() {
    let mut m = model(vec![]);
    update(&mut m, Msg::Tick);
    assert!(m.fetching.is_none());
    start(&mut m);
    update(&mut m, Msg::Tick);
    assert_eq!(m.fetching.as_ref().map(|f| f.frame), Some(1));
    update(&mut m, Msg::Shutdown);
    assert!(m.quit);
}

#[test]
fn plus_in_the_details_pane_counts_for_the_entry_shown() {
    let mut m = model(vec![entry(1, "A", 5, Some(12)), entry(2, "B", 1, None)]);
    assert_eq!(
        update(&mut m, code(KeyCode::Enter)),
        vec![Effect::LoadDetails { key: (A, 1) }]
    );
    // While the pane is open, a sync finds A completed elsewhere: it leaves the watching tab.
    update(
        &mut m,
        fetched(
            A,
            vec![
                with_status(entry(1, "A", 5, Some(12)), Status::Completed),
                entry(2, "B", 1, None),
            ],
            0,
        ),
    );
    assert!(matches!(&m.overlay, Some(Overlay::Details(p)) if p.key == (A, 1)));
    let effects = update(&mut m, key('+'));
    assert_eq!(
        progress_enqueued(&effects),
        vec![(1, 6, 5)],
        "the pane shows A: + counts an episode of A, not of the line selected under it"
    );
    assert_eq!(row(&m, 2).entry.progress, 1);
}

#[test]
fn enter_while_a_new_search_is_on_its_way_does_not_pick_from_the_old_results() {
    let mut m = model(vec![]);
    searched(
        &mut m,
        "frieren",
        vec![found(52991, "Sousou no Frieren", Some(28))],
    );
    press(&mut m, KeyCode::Backspace, 7);
    type_in(&mut m, "berserk");
    assert_eq!(
        update(&mut m, code(KeyCode::Enter)),
        vec![Effect::Search {
            kind: A,
            query: "berserk".into()
        }]
    );
    // The answer has not come yet: the results shown are not those of "berserk".
    let effects = update(&mut m, code(KeyCode::Enter));
    assert!(effects.is_empty(), "{effects:?}");
    assert_eq!(
        search(&m).choosing,
        None,
        "Frieren must not be offered for adding as a result of \"berserk\""
    );
    assert!(m.row((A, 52991)).is_none());
}

#[test]
fn enter_again_while_waiting_does_not_send_the_search_twice() {
    let mut m = model(vec![]);
    update(&mut m, key('a'));
    type_in(&mut m, "ab");
    update(&mut m, code(KeyCode::Enter));
    type_in(&mut m, "c");
    assert_eq!(update(&mut m, code(KeyCode::Enter)).len(), 1);
    assert!(
        update(&mut m, code(KeyCode::Enter)).is_empty(),
        "one request per query"
    );
}

#[test]
fn finishing_a_rewatch_asks_to_complete_and_ends_the_rewatch() {
    let mut done = entry(1, "A", 11, Some(12));
    done.status = Status::Completed;
    done.repeating = true;
    let mut m = model(vec![done]);
    m.tab = Status::Completed;
    crate::tui::list::refresh(&mut m);
    update(&mut m, Msg::Clock("2026-11-25T10:00:00Z".parse().unwrap()));
    update(&mut m, key('+'));
    assert!(
        matches!(m.overlay, Some(Overlay::Prompt(Prompt::Complete { .. }))),
        "{:?}",
        m.overlay
    );
    let effects = update(&mut m, key('y'));
    let patch = match effects.as_slice() {
        [
            Effect::Enqueue {
                change: Change::Set(p),
                ..
            },
        ] => p.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(patch.repeating, Some(false));
    assert_eq!(patch.finish_date.as_deref(), Some("2026-11-25"));
}

#[test]
fn ctrl_c_quits_from_a_search_and_from_the_filter() {
    let ctrl_c = Msg::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
    let mut m = model(vec![entry(1, "A", 5, None)]);
    update(&mut m, key('a'));
    assert!(matches!(m.overlay, Some(Overlay::Search(_))));
    update(&mut m, ctrl_c.clone());
    assert!(m.quit);
    let mut m = model(vec![entry(1, "A", 5, None)]);
    update(&mut m, key('/'));
    update(&mut m, ctrl_c);
    assert!(m.quit);
}

#[test]
fn a_list_read_before_a_removal_landed_does_not_bring_the_entry_back() {
    let mut m = model(vec![entry(1, "A", 5, None), entry(2, "B", 1, None)]);
    start(&mut m);
    update(&mut m, key('d'));
    update(&mut m, key('y'));
    update(&mut m, delivered(A, 1, None));
    assert!(m.row((A, 1)).is_none(), "gone once MAL confirmed");
    // The anime list was read before the removal reached MyAnimeList.
    update(
        &mut m,
        fetched(A, vec![entry(1, "A", 5, None), entry(2, "B", 1, None)], 0),
    );
    assert!(m.row((A, 1)).is_none(), "not brought back");
    assert!(m.row((A, 2)).is_some());
}

#[test]
fn volumes_over_the_known_total_are_refused_in_the_count_prompt() {
    let mut manga = ListEntry::new(7, M, "Kiseijuu", Status::Current);
    manga.progress = 5;
    manga.total = Some(64);
    manga.total_volumes = Some(10);
    let mut m = model(vec![manga]);
    m.kind = M;
    crate::tui::list::refresh(&mut m);
    update(&mut m, key('e'));
    for c in "6 11".chars() {
        update(&mut m, key(c));
    }
    assert!(update(&mut m, code(KeyCode::Enter)).is_empty());
    assert!(m.notice.as_deref().unwrap().contains("10 volumes"));
    assert!(matches!(
        m.overlay,
        Some(Overlay::Prompt(Prompt::Count { .. }))
    ));
}

#[test]
fn scores_are_typed_and_shown_in_the_accounts_format() {
    use crate::domain::ScoreFormat;
    // 100-point: typed digits add up; ↑/↓ move by 5.
    let mut m = model(vec![entry(1, "A", 5, Some(12))]);
    m.score_format = ScoreFormat::Point100;
    update(&mut m, key('s'));
    type_in(&mut m, "85");
    assert_eq!(score_choice(&m), Some(85));
    press(&mut m, KeyCode::Up, 1);
    assert_eq!(score_choice(&m), Some(90));
    // A digit that would go past 100 starts a new number.
    type_in(&mut m, "9");
    assert_eq!(score_choice(&m), Some(9));
    type_in(&mut m, "9");
    assert_eq!(score_choice(&m), Some(99));
    let effects = update(&mut m, code(KeyCode::Enter));
    assert_eq!(enqueued(&effects), vec![(1, score(99), 0)]);

    // Decimal: "8.5" is 85 tenths; Backspace takes the last character back.
    let mut m = model(vec![entry(1, "A", 5, Some(12))]);
    m.score_format = ScoreFormat::Point10Decimal;
    update(&mut m, key('s'));
    type_in(&mut m, "8.57");
    assert_eq!(
        score_choice(&m),
        Some(70),
        "8.57 is not a score: 7 (.0) starts anew"
    );
    press(&mut m, KeyCode::Backspace, 1);
    type_in(&mut m, "8.5");
    assert_eq!(score_choice(&m), Some(85));
    let effects = update(&mut m, code(KeyCode::Enter));
    assert_eq!(enqueued(&effects), vec![(1, score(85), 0)]);

    // Stars: a menu of 0–5, a "." does nothing.
    let mut m = model(vec![entry(1, "A", 5, Some(12))]);
    m.score_format = ScoreFormat::Point5;
    update(&mut m, key('s'));
    press(&mut m, KeyCode::Up, 9);
    assert_eq!(score_choice(&m), Some(5));
    type_in(&mut m, ".");
    assert_eq!(score_choice(&m), Some(5));
    type_in(&mut m, "7");
    assert_eq!(score_choice(&m), Some(5), "7 stars is not a score");
    type_in(&mut m, "3");
    assert_eq!(score_choice(&m), Some(3));

    // A score kept from a wider format opens within this one's range.
    let mut m = model(vec![ListEntry {
        score: 80,
        ..entry(1, "A", 5, Some(12))
    }]);
    m.score_format = ScoreFormat::Point3;
    update(&mut m, key('s'));
    assert_eq!(score_choice(&m), Some(3));
}

fn loaded(service: Service, entries: Vec<ListEntry>) -> Box<Loaded> {
    Box::new(Loaded {
        service,
        kinds: MediaKind::ALL.to_vec(),
        account: Some(format!("{}-user", service.key())),
        entries,
        pending: Vec::new(),
        refused: Vec::new(),
        last_sync: None,
        score_format: crate::domain::ScoreFormat::Point100,
        scores: true,
        volumes: true,
        latest_chapters: false,
    })
}

#[test]
fn v_switches_between_logged_in_services() {
    let mut m = model(vec![entry(1, "MAL show", 5, Some(12))]);
    // Alone: says how to add the other.
    assert!(update(&mut m, key('v')).is_empty());
    assert!(
        m.notice
            .as_deref()
            .unwrap()
            .contains("malt --login anilist")
    );

    m.services = vec![Service::Mal, Service::Anilist];
    let effects = update(&mut m, key('v'));
    assert_eq!(effects, vec![Effect::SwitchService(Service::Anilist)]);
    assert_eq!(m.active(), Service::Anilist);
    // A second press while the list is read does nothing.
    assert!(update(&mut m, key('v')).is_empty());
    // A report for AniList that comes before its list waits for it.
    update(&mut m, delivered(MediaKind::Anime, 7, holds(3)));
    // One from MAL (now in the background) only keeps what its session needs.
    update(
        &mut m,
        Msg::Elsewhere(
            Service::Mal,
            Event::LoginNeeded(ProviderError::SessionExpired),
        ),
    );
    let effects = update(
        &mut m,
        Msg::ServiceLoaded(loaded(
            Service::Anilist,
            vec![entry(7, "AniList show", 2, Some(12))],
        )),
    );
    assert_eq!(m.service, Service::Anilist);
    assert_eq!(m.account.as_deref(), Some("anilist-user"));
    assert_eq!(m.score_format, crate::domain::ScoreFormat::Point100);
    assert_eq!(shown(&m), vec!["AniList show"]);
    // Never synced: fetched at once.
    assert!(
        effects.contains(&Effect::Fetch(MediaKind::Anime)),
        "{effects:?}"
    );
    // The held report was applied after the list.
    assert_eq!(row(&m, 7).entry.progress, 3);
    assert!(m.login_needed.is_none());
    assert!(
        m.asides[0]
            .1
            .login_needed
            .as_deref()
            .unwrap()
            .contains("`malt --login`"),
        "{:?}",
        m.asides
    );

    // AniList's own expired session names its own login command.
    update(
        &mut m,
        Msg::Sync(Event::LoginNeeded(ProviderError::SessionExpired)),
    );
    assert!(
        m.login_needed
            .as_deref()
            .unwrap()
            .contains("`malt --login anilist`"),
        "{:?}",
        m.login_needed
    );

    // Back to MAL: its aside comes back with it, AniList's goes aside.
    update(&mut m, key('v'));
    let mut back = loaded(Service::Mal, vec![entry(1, "MAL show", 5, Some(12))]);
    back.last_sync = Some(m.now);
    back.score_format = crate::domain::ScoreFormat::Point10;
    let effects = update(&mut m, Msg::ServiceLoaded(back));
    assert!(
        !effects.iter().any(|e| matches!(e, Effect::Fetch(_))),
        "synced just now: {effects:?}"
    );
    assert_eq!(m.service, Service::Mal);
    assert!(
        m.login_needed
            .as_deref()
            .unwrap()
            .contains("`malt --login`")
    );
    assert_eq!(m.asides.len(), 1);
    assert_eq!(m.asides[0].0, Service::Anilist);

    // A list that cannot be read leaves the screen as it was, and says why.
    update(&mut m, key('v'));
    update(
        &mut m,
        Msg::ServiceFailed {
            service: Service::Anilist,
            error: "disk on fire".into(),
        },
    );
    assert_eq!(m.service, Service::Mal);
    assert_eq!(m.switching, None);
    assert!(m.error.as_deref().unwrap().contains("disk on fire"));
    // A late list for a switch no longer wanted is dropped.
    update(
        &mut m,
        Msg::ServiceLoaded(loaded(Service::Anilist, Vec::new())),
    );
    assert_eq!(m.service, Service::Mal);
}

#[test]
fn a_list_without_scores_or_volumes_offers_neither() {
    let mut m = model(vec![manga(9, "Berserk", 52, 0)]);
    m.kind = MediaKind::Manga;
    m.service = Service::Mangadex;
    m.scores = false;
    m.volumes = false;
    crate::tui::list::refresh(&mut m);
    assert!(update(&mut m, key('s')).is_empty());
    assert!(m.overlay.is_none());
    assert_eq!(m.notice.as_deref(), Some("MangaDex lists keep no scores"));
    // "53 6": the volumes are not sent.
    update(&mut m, key('e'));
    type_in(&mut m, "53 6");
    let effects = update(&mut m, code(KeyCode::Enter));
    assert_eq!(
        enqueued(&effects),
        vec![(9, Change::progress(53), 52)],
        "{effects:?}"
    );
}

#[test]
fn a_snapshot_of_mangadex_columns_and_new_chapter_marker() {
    use ratatui::{Terminal, backend::TestBackend};
    let mut m = model(vec![
        manga(9, "Berserk", 52, 0),
        manga(10, "Dungeon Meshi", 97, 0),
    ]);
    for row in &mut m.rows {
        row.entry.total = Some(if row.entry.id == 9 { 60 } else { 97 });
    }
    m.kind = MediaKind::Manga;
    m.service = Service::Mangadex;
    m.scores = false;
    m.volumes = false;
    m.latest_chapters = true;
    crate::tui::list::refresh(&mut m);
    update(&mut m, Msg::Resize(80, 8));
    let mut terminal = Terminal::new(TestBackend::new(80, 8)).unwrap();
    terminal.draw(|f| crate::tui::view(&m, f)).unwrap();
    let screen = terminal.backend().to_string();
    let berserk = screen.lines().find(|l| l.contains("Berserk")).unwrap();
    assert!(
        berserk.contains("Berserk ●") && berserk.contains("52 / 60"),
        "{screen}"
    );
    let meshi = screen
        .lines()
        .find(|l| l.contains("Dungeon Meshi"))
        .unwrap();
    assert!(!meshi.contains('●'), "all read: {screen}");
    assert!(
        !screen.contains("Score") && !screen.contains("Volumes"),
        "{screen}"
    );
}

#[test]
fn each_service_comes_back_on_the_list_it_was_left_on() {
    let mut m = model(vec![entry(1, "MAL show", 5, Some(12))]);
    m.services = vec![Service::Mal, Service::Mangadex];
    // MAL shows anime; MangaDex keeps manga only.
    update(&mut m, key('v'));
    let mut md = loaded(Service::Mangadex, vec![manga(9, "Berserk", 52, 0)]);
    md.kinds = vec![MediaKind::Manga];
    update(&mut m, Msg::ServiceLoaded(md));
    assert_eq!(m.kind, MediaKind::Manga);
    assert_eq!(shown(&m), vec!["Berserk"]);
    update(&mut m, key('v'));
    update(
        &mut m,
        Msg::ServiceLoaded(loaded(
            Service::Mal,
            vec![entry(1, "MAL show", 5, Some(12))],
        )),
    );
    assert_eq!(m.kind, MediaKind::Anime, "back on MAL's anime list");
    assert_eq!(shown(&m), vec!["MAL show"]);
}

#[test]
fn the_latest_chapter_of_a_title_still_coming_out_does_not_ask_to_complete() {
    let mut ongoing = manga(9, "Frieren", 5, 0);
    ongoing.total = Some(6);
    ongoing.media.ongoing = true;
    let mut m = model(vec![ongoing]);
    m.kind = MediaKind::Manga;
    crate::tui::list::refresh(&mut m);
    update(&mut m, key('+'));
    assert!(m.overlay.is_none(), "{:?}", m.overlay);
    // Finished: asked.
    let mut done = manga(9, "Frieren", 5, 0);
    done.total = Some(6);
    let mut m = model(vec![done]);
    m.kind = MediaKind::Manga;
    crate::tui::list::refresh(&mut m);
    update(&mut m, key('+'));
    assert!(matches!(
        m.overlay,
        Some(Overlay::Prompt(Prompt::Complete { .. }))
    ));
}
