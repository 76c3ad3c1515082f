//! State stores. Every store of a task is an ordered map held in memory (shared with
//! interactive queries through an `RwLock`), persisted to the task's embedded `redb`
//! database at each commit together with the changelog offset it reflects (the
//! checkpoint), and mirrored record by record into a compacted changelog topic.
//!
//! Layout:
//! - `mod.rs`: [`Store`] (one store of one task: map, dirty set, pending changelog records)
//! - `persist.rs`: the task's redb database (load, checkpointed flush)
//! - `query.rs`: read-only handles for interactive queries

mod persist;
mod query;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

pub(crate) use persist::LocalState;
pub(crate) use query::StoreRegistry;
pub use query::{ReadOnlyKeyValueStore, ReadOnlyWindowStore};

pub(crate) type Map = BTreeMap<Vec<u8>, Vec<u8>>;
pub(crate) type SharedMap = Arc<RwLock<Map>>;

/// What a topology declares about a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StoreKind {
    KeyValue,
    /// Windows whose start is older than stream time minus `retention_ms` are dropped.
    Window {
        retention_ms: i64,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct StoreSpec {
    pub(crate) name: String,
    pub(crate) kind: StoreKind,
}

impl StoreSpec {
    /// The changelog topic without the `<application.id>-` prefix.
    pub(crate) fn changelog_suffix(&self) -> String {
        format!("{}-changelog", self.name)
    }
}

/// One store of one task.
pub(crate) struct Store {
    pub(crate) spec: StoreSpec,
    pub(crate) data: SharedMap,
    /// Keys changed since the last flush to the local database (`None` = deleted).
    pub(crate) dirty: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Changelog records not yet handed to the producer: (changelog key, value).
    pub(crate) pending_changelog: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

/// Window store keys sort by key, then by window start: `len(key) u32 | key | start`,
/// the start with its sign bit flipped so that big-endian bytes sort like the numbers.
pub(crate) fn window_key(key: &[u8], start: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 12);
    out.extend_from_slice(&u32::try_from(key.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(&((start as u64) ^ (1 << 63)).to_be_bytes());
    out
}

/// Splits a window store key back into (key, start).
pub(crate) fn split_window_key(stored: &[u8]) -> Option<(&[u8], i64)> {
    let len = u32::from_be_bytes(stored.get(..4)?.try_into().ok()?) as usize;
    let key = stored.get(4..4 + len)?;
    let ts: [u8; 8] = stored.get(4 + len..)?.try_into().ok()?;
    Some((key, (u64::from_be_bytes(ts) ^ (1 << 63)) as i64))
}

/// The changelog key of a window store entry: Kafka's layout, key bytes then the start.
fn window_changelog_key(key: &[u8], start: i64) -> Vec<u8> {
    let mut out = key.to_vec();
    out.extend_from_slice(&start.to_be_bytes());
    out
}

impl Store {
    pub(crate) fn new(spec: StoreSpec, initial: Map) -> Self {
        Store {
            spec,
            data: Arc::new(RwLock::new(initial)),
            dirty: BTreeMap::new(),
            pending_changelog: Vec::new(),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Map> {
        self.data.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_raw(&mut self, stored_key: Vec<u8>, value: Option<Vec<u8>>, changelog_key: Vec<u8>) {
        {
            let mut map = self.data.write().unwrap_or_else(|p| p.into_inner());
            match &value {
                Some(v) => map.insert(stored_key.clone(), v.clone()),
                None => map.remove(&stored_key),
            };
        }
        self.pending_changelog.push((changelog_key, value.clone()));
        self.dirty.insert(stored_key, value);
    }

    // ---- key-value ----

    pub(crate) fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.read().get(key).cloned()
    }

    pub(crate) fn put(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        let changelog_key = key.clone();
        self.write_raw(key, value, changelog_key);
    }

    /// Every entry whose key sorts before `bound`, in key order.
    pub(crate) fn entries_below(&self, bound: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.read()
            .range::<[u8], _>((std::ops::Bound::Unbounded, std::ops::Bound::Excluded(bound)))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Every entry with `lo <= key <= hi`, in key order.
    pub(crate) fn entries_between(&self, lo: &[u8], hi: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.read()
            .range::<[u8], _>((std::ops::Bound::Included(lo), std::ops::Bound::Included(hi)))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Every entry whose key starts with `prefix`, in key order.
    pub(crate) fn entries_with_prefix(&self, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.read()
            .range::<[u8], _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Drops sessions (window entries whose value starts with the session end) that ended
    /// before `min_end`. Local only, like [`expire_windows`](Self::expire_windows).
    pub(crate) fn expire_sessions(&mut self, min_end: i64) {
        let expired: Vec<Vec<u8>> = self
            .read()
            .iter()
            .filter(|(_, v)| {
                v.get(..8)
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .is_some_and(|b| i64::from_be_bytes(b) < min_end)
            })
            .map(|(k, _)| k.clone())
            .collect();
        let mut map = self.data.write().unwrap_or_else(|p| p.into_inner());
        for k in expired {
            map.remove(&k);
            self.dirty.insert(k, None);
        }
    }

    // ---- window ----

    pub(crate) fn fetch_window(&self, key: &[u8], start: i64) -> Option<Vec<u8>> {
        self.read().get(&window_key(key, start)).cloned()
    }

    pub(crate) fn put_window(&mut self, key: &[u8], start: i64, value: Option<Vec<u8>>) {
        self.write_raw(
            window_key(key, start),
            value,
            window_changelog_key(key, start),
        );
    }

    /// Drops windows that started before `min_start` (retention). Local only: the
    /// changelog topic keeps them until compaction, and a restore applies the same rule.
    pub(crate) fn expire_windows(&mut self, min_start: i64) {
        let expired: Vec<Vec<u8>> = self
            .read()
            .keys()
            .filter(|k| split_window_key(k).is_some_and(|(_, s)| s < min_start))
            .cloned()
            .collect();
        if expired.is_empty() {
            return;
        }
        let mut map = self.data.write().unwrap_or_else(|p| p.into_inner());
        for k in expired {
            map.remove(&k);
            self.dirty.insert(k, None);
        }
    }

    /// Applies one changelog record during restoration (no new changelog record).
    pub(crate) fn restore(&mut self, changelog_key: &[u8], value: Option<Vec<u8>>) {
        let stored_key = match self.spec.kind {
            StoreKind::KeyValue => changelog_key.to_vec(),
            StoreKind::Window { .. } => {
                let Some(split) = changelog_key.len().checked_sub(8) else {
                    return;
                };
                let (key, ts) = changelog_key.split_at(split);
                let mut start = [0u8; 8];
                start.copy_from_slice(ts);
                window_key(key, i64::from_be_bytes(start))
            }
        };
        let mut map = self.data.write().unwrap_or_else(|p| p.into_inner());
        match &value {
            Some(v) => map.insert(stored_key.clone(), v.clone()),
            None => map.remove(&stored_key),
        };
        drop(map);
        self.dirty.insert(stored_key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_keys_sort_by_key_then_time() {
        let a = window_key(b"ab", -5);
        let b = window_key(b"ab", 7);
        let c = window_key(b"ac", -100);
        assert!(a < b && b < c);
        assert_eq!(split_window_key(&b), Some((&b"ab"[..], 7)));
        assert_eq!(split_window_key(&a), Some((&b"ab"[..], -5)));
    }

    #[test]
    fn window_restore_matches_put() {
        let spec = StoreSpec {
            name: "w".into(),
            kind: StoreKind::Window { retention_ms: 10 },
        };
        let mut s = Store::new(spec.clone(), Map::new());
        s.put_window(b"k", 60_000, Some(vec![1]));
        let (ck, v) = s.pending_changelog[0].clone();
        let mut r = Store::new(spec, Map::new());
        r.restore(&ck, v);
        assert_eq!(r.fetch_window(b"k", 60_000), Some(vec![1]));
    }
}
