//! MangaDex ids are UUIDs; malt keys entries (and outbox changes) by a `u64`.
//!
//! The `u64` is derived from the UUID: its first 16 hex digits (dashes left out). The way back is
//! a map kept in memory and in a JSON file (`{"<u64>": "<uuid>", …}`), filled by every list fetch
//! and search, so a change queued offline can still be sent after a restart, before any fetch.
//! The file is a cache: a damaged one is set aside and rebuilt by the next fetch.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

/// A UUID as MangaDex writes it (lowercase, dashed), when `text` is one (in any case, with
/// surrounding spaces).
pub fn normalize(text: &str) -> Option<String> {
    let text = text.trim();
    let groups: Vec<&str> = text.split('-').collect();
    let lengths = [8, 4, 4, 4, 12];
    let ok = groups.len() == lengths.len()
        && groups
            .iter()
            .zip(lengths)
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()));
    ok.then(|| text.to_ascii_lowercase())
}

/// The `u64` malt keys a MangaDex title by: the first 16 hex digits of its UUID. `None` for
/// anything that is not a UUID.
pub fn derive(uuid: &str) -> Option<u64> {
    let uuid = normalize(uuid)?;
    let hex: String = uuid.chars().filter(|c| *c != '-').take(16).collect();
    u64::from_str_radix(&hex, 16).ok()
}

struct Inner {
    map: HashMap<u64, String>,
    /// The file has been read (it is read once, on first use).
    loaded: bool,
}

/// The map from malt's ids back to MangaDex's UUIDs, persisted in one file.
pub struct IdMap {
    path: PathBuf,
    inner: Mutex<Inner>,
}

impl IdMap {
    pub fn new(path: PathBuf) -> IdMap {
        IdMap {
            path,
            inner: Mutex::new(Inner {
                map: HashMap::new(),
                loaded: false,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads the file's pairs: those whose key is the UUID's derived id. A file that is not such a
    /// map is set aside (logged) and read as empty.
    fn read_file(&self) -> HashMap<u64, String> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return HashMap::new(),
            Err(e) => {
                tracing::warn!(path = %self.path.display(), "cannot read the MangaDex id map: {e}");
                return HashMap::new();
            }
        };
        match parse(&bytes) {
            Some(map) => map,
            None => {
                let copy = crate::paths::set_aside(&self.path);
                tracing::warn!(copy = ?copy, "the MangaDex id map was damaged; it is rebuilt by the next fetch");
                HashMap::new()
            }
        }
    }

    fn ensure_loaded(&self, inner: &mut Inner) {
        if !inner.loaded {
            let stored = self.read_file();
            for (id, uuid) in stored {
                inner.map.entry(id).or_insert(uuid);
            }
            inner.loaded = true;
        }
    }

    /// The UUID of the title malt calls `id`. Not known in memory: the file is read again (another
    /// malt may have learnt it).
    pub fn uuid(&self, id: u64) -> Option<String> {
        let mut inner = self.lock();
        self.ensure_loaded(&mut inner);
        if let Some(uuid) = inner.map.get(&id) {
            return Some(uuid.clone());
        }
        let stored = self.read_file();
        for (k, v) in stored {
            inner.map.entry(k).or_insert(v);
        }
        inner.map.get(&id).cloned()
    }

    /// Learns these UUIDs, and writes the file when one was new. Returns the id of each (`None`
    /// for one that is not a UUID). Two UUIDs with the same id (60 random bits alike): the first
    /// keeps it, the other is `None`.
    pub fn remember<'a>(&self, uuids: impl IntoIterator<Item = &'a str>) -> Vec<Option<u64>> {
        let mut inner = self.lock();
        self.ensure_loaded(&mut inner);
        let mut added = false;
        let ids = uuids
            .into_iter()
            .map(|text| {
                let uuid = normalize(text)?;
                let id = derive(&uuid)?;
                match inner.map.get(&id) {
                    Some(known) if *known == uuid => Some(id),
                    Some(known) => {
                        tracing::warn!(%known, other = %uuid, id, "two MangaDex titles share an id; the second is left out");
                        None
                    }
                    None => {
                        inner.map.insert(id, uuid);
                        added = true;
                        Some(id)
                    }
                }
            })
            .collect();
        if added {
            self.write(&mut inner);
        }
        ids
    }

    /// Merges what the file holds now (another malt may have written it) and writes the union.
    fn write(&self, inner: &mut Inner) {
        for (k, v) in self.read_file() {
            inner.map.entry(k).or_insert(v);
        }
        let sorted: std::collections::BTreeMap<String, &String> =
            inner.map.iter().map(|(k, v)| (k.to_string(), v)).collect();
        let result = serde_json::to_vec_pretty(&sorted)
            .map_err(std::io::Error::other)
            .and_then(|bytes| {
                if let Some(dir) = self.path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                crate::paths::write_private_atomic(&self.path, &bytes)
            });
        if let Err(e) = result {
            // Not fatal: the map is still in memory, and the next fetch writes it again.
            tracing::warn!(path = %self.path.display(), "cannot save the MangaDex id map: {e}");
        }
    }
}

/// Reads the file's text: `None` when it is not a JSON object; pairs whose key is not the UUID's
/// id are left out.
pub fn parse(bytes: &[u8]) -> Option<HashMap<u64, String>> {
    let raw: HashMap<String, serde_json::Value> = serde_json::from_slice(bytes).ok()?;
    Some(
        raw.into_iter()
            .filter_map(|(k, v)| {
                let id: u64 = k.trim().parse().ok()?;
                let uuid = normalize(v.as_str()?)?;
                (derive(&uuid) == Some(id)).then_some((id, uuid))
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "d86cf65b-5f6c-437d-a0af-19a31f94ec55";
    const B: &str = "b019ea5d-5fe6-44d4-abbc-f546f210884d";

    #[test]
    fn the_id_is_the_first_sixteen_hex_digits() {
        assert_eq!(derive(A), Some(0xd86c_f65b_5f6c_437d));
        assert_eq!(derive(&A.to_uppercase()), derive(A));
        assert_eq!(derive(&format!(" {A}\n")), derive(A));
        for bad in [
            "",
            "d86cf65b5f6c437da0af19a31f94ec55",
            "d86cf65b-5f6c-437d-a0af-19a31f94ec5",
            "d86cf65b-5f6c-437d-a0af-19a31f94ec5g",
            "d86cf65b-5f6c-437d-a0af-19a31f94ec55-",
            "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz",
            "+86cf65b-5f6c-437d-a0af-19a31f94ec55",
        ] {
            assert_eq!(derive(bad), None, "{bad:?}");
        }
        assert_eq!(normalize(&A.to_uppercase()).as_deref(), Some(A));
    }

    #[test]
    fn uuids_are_remembered_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mangadex-ids.json");
        let map = IdMap::new(path.clone());
        let ids = map.remember([A, "junk", B, A]);
        assert_eq!(ids, vec![derive(A), None, derive(B), derive(A)]);
        assert_eq!(map.uuid(derive(A).unwrap()).as_deref(), Some(A));

        let again = IdMap::new(path.clone());
        assert_eq!(again.uuid(derive(B).unwrap()).as_deref(), Some(B));
        assert_eq!(again.uuid(42), None);

        // Learnt by another malt after this one read the file.
        let other = IdMap::new(path.clone());
        let c = "2394a5c7-1d2e-461f-acde-18726b9e37d6";
        other.remember([c]);
        assert_eq!(again.uuid(derive(c).unwrap()).as_deref(), Some(c));
        // Writing keeps what the other wrote.
        let d = "01defbd2-ab44-4672-9236-ff71b82774e8";
        map.remember([d]);
        let stored = parse(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(stored.len(), 4);
    }

    #[test]
    fn a_damaged_file_is_set_aside_and_a_wrong_pair_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ids.json");
        std::fs::write(&path, b"{not json").unwrap();
        let map = IdMap::new(path.clone());
        assert_eq!(map.uuid(1), None);
        let kept: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(kept.iter().any(|n| n.contains("damaged")), "{kept:?}");

        let text = format!(r#"{{"1": "{A}", "{}": "{B}", "x": 3}}"#, derive(B).unwrap());
        let parsed = parse(text.as_bytes()).unwrap();
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[&derive(B).unwrap()], B);
        assert_eq!(parse(b"[1,2]"), None);
    }

    #[test]
    fn a_shared_id_keeps_the_first_title() {
        let dir = tempfile::tempdir().unwrap();
        let map = IdMap::new(dir.path().join("ids.json"));
        let twin = "d86cf65b-5f6c-437d-ffff-ffffffffffff";
        assert_eq!(derive(twin), derive(A));
        assert_eq!(map.remember([A, twin]), vec![derive(A), None]);
        assert_eq!(map.uuid(derive(A).unwrap()).as_deref(), Some(A));
    }
}
