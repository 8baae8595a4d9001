//! The user's lists on every logged-in service, as the cache and the outbox hold them (no network),
//! and the one way a front end names an entry: a title query, or a service's own id
//! (`mal:52991`, `anilist:154587`, `mangadex:UUID`).

use std::sync::Arc;

use crate::domain::query::{self, Found};
use crate::domain::tracked::track;
use crate::domain::{MediaKind, Row, ScoreFormat, Service};
use crate::providers::Provider;
use crate::store::{Db, StoreError};

/// One service's list.
pub struct List {
    pub provider: Arc<dyn Provider>,
    pub account: Option<String>,
    pub score_format: ScoreFormat,
    /// When the list was last fetched; `None`: never (nothing is cached).
    pub last_sync: Option<jiff::Timestamp>,
    /// Every entry, every kind and status, with the changes still on their way laid over.
    pub rows: Vec<Row>,
}

/// A list fetched this recently is taken to hold what the service holds: a change made to it is
/// sent without looking at the service first (as the list screen does after a fetch).
pub const FRESH_FOR: jiff::SignedDuration = jiff::SignedDuration::from_mins(10);

impl List {
    /// Whether the cached list counts as what the service holds now (see [`FRESH_FOR`]).
    pub fn is_fresh(&self, now: jiff::Timestamp) -> bool {
        self.last_sync
            .is_some_and(|at| now.duration_since(at) <= FRESH_FOR && at <= now)
    }

    pub fn service(&self) -> Service {
        self.provider.service()
    }

    /// The entries the user sees (a removal on its way hides one).
    pub fn shown(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(|r| !r.removing)
    }

    /// `mal:52991`: the service and its own id of the entry.
    pub fn reference(&self, row: &Row) -> String {
        format!(
            "{}:{}",
            self.service().key(),
            self.provider.public_id(row.entry.kind, row.entry.id)
        )
    }
}

/// The lists of several services.
pub struct Library {
    pub lists: Vec<List>,
}

/// An entry found by a query: which list, which row.
#[derive(Clone, Copy)]
pub struct Pick<'a> {
    pub list: &'a List,
    pub row: &'a Row,
}

/// Why a query names no single entry.
pub enum Miss<'a> {
    /// Nothing matches.
    Nothing,
    /// Several entries match equally well (at most 10, best first).
    Several(Vec<Pick<'a>>),
    /// `mal:…` with something that is not one of the service's ids.
    BadId { service: Service, text: String },
    /// `anilist:…` for a service that is not logged in (or not chosen).
    NotShown(Service),
}

impl Library {
    /// Reads every list of `providers` from the cache.
    pub async fn load(db: &Db, providers: &[Arc<dyn Provider>]) -> Result<Library, StoreError> {
        let mut lists = Vec::new();
        for provider in providers {
            let service = provider.service();
            let (account, last_sync, score_format, entries, pending, refused) = db
                .call(move |s| {
                    Ok((
                        s.meta(service, "account")?,
                        s.meta(service, "last_sync")?,
                        s.meta(service, "score_format")?,
                        s.entries(service)?,
                        s.pending(service)?,
                        s.refused(service)?,
                    ))
                })
                .await?;
            let score_format = score_format
                .and_then(|f| ScoreFormat::from_key(&f))
                .unwrap_or_default();
            lists.push(List {
                provider: provider.clone(),
                account,
                score_format,
                last_sync: last_sync.and_then(|at| at.parse().ok()),
                rows: track(entries, &pending, &refused, score_format),
            });
        }
        Ok(Library { lists })
    }

    /// Services whose list has never been fetched (nothing cached).
    pub fn never_synced(&self) -> Vec<Service> {
        self.lists
            .iter()
            .filter(|l| l.last_sync.is_none() && l.rows.is_empty())
            .map(List::service)
            .collect()
    }

    /// The entry `query` names among the entries of `kind` (any kind when `None`): `SERVICE:ID`
    /// exactly, or a title query (see [`query::find`]).
    pub fn find(&self, text: &str, kind: Option<MediaKind>) -> Result<Pick<'_>, Miss<'_>> {
        if let Some((prefix, id)) = text.trim().split_once(':')
            && let Some(service) = Service::from_key(&prefix.trim().to_ascii_lowercase())
        {
            let Some(list) = self.lists.iter().find(|l| l.service() == service) else {
                return Err(Miss::NotShown(service));
            };
            let bad = || Miss::BadId {
                service,
                text: id.trim().to_string(),
            };
            let media_id = list.provider.id_from_public(id).ok_or_else(bad)?;
            return list
                .shown()
                .find(|r| r.entry.id == media_id && kind.is_none_or(|k| r.entry.kind == k))
                .map(|row| Pick { list, row })
                .ok_or(Miss::Nothing);
        }
        let candidates: Vec<Pick<'_>> = self
            .lists
            .iter()
            .flat_map(|list| list.shown().map(move |row| Pick { list, row }))
            .filter(|p| kind.is_none_or(|k| p.row.entry.kind == k))
            .collect();
        match query::find(candidates.iter().map(|p| &p.row.entry), text) {
            Found::One(i) => Ok(candidates[i]),
            Found::Several(found) => Err(Miss::Several(
                found.into_iter().map(|i| candidates[i]).collect(),
            )),
            Found::Nothing => Err(Miss::Nothing),
        }
    }
}
