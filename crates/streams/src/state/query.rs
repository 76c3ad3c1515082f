//! Interactive queries: read-only views of a store across every task of this instance.
//! Tasks register their store maps when they are created and unregister them when they
//! are closed (a rebalance), so a handle always sees the partitions this instance owns.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::{split_window_key, window_key, SharedMap};
use crate::error::Result;
use crate::serde::SerdeRef;

/// (task id, map) of each live task holding a store.
type TaskMaps = Vec<(String, SharedMap)>;

/// store name → (task id, map) of each live task.
#[derive(Clone, Default)]
pub(crate) struct StoreRegistry {
    inner: Arc<Mutex<HashMap<String, TaskMaps>>>,
}

impl StoreRegistry {
    pub(crate) fn register(&self, store: &str, task: &str, map: SharedMap) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let list = g.entry(store.to_string()).or_default();
        list.retain(|(t, _)| t != task);
        list.push((task.to_string(), map));
    }

    pub(crate) fn unregister_task(&self, task: &str) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        for list in g.values_mut() {
            list.retain(|(t, _)| t != task);
        }
    }

    fn maps(&self, store: &str) -> Vec<SharedMap> {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.get(store)
            .map(|l| l.iter().map(|(_, m)| m.clone()).collect())
            .unwrap_or_default()
    }
}

/// A read-only key-value view of a store (every local partition).
pub struct ReadOnlyKeyValueStore<K, V> {
    pub(crate) name: String,
    pub(crate) registry: StoreRegistry,
    pub(crate) key_serde: SerdeRef<K>,
    pub(crate) value_serde: SerdeRef<V>,
}

impl<K, V> ReadOnlyKeyValueStore<K, V> {
    /// The value of `key`, if a local task holds it.
    pub fn get(&self, key: &K) -> Result<Option<V>> {
        let k = self.key_serde.serialize(&self.name, key)?;
        for m in self.registry.maps(&self.name) {
            let g = m.read().unwrap_or_else(|p| p.into_inner());
            if let Some(v) = g.get(&k) {
                return self.value_serde.deserialize(&self.name, Some(v)).map(Some);
            }
        }
        Ok(None)
    }

    /// Every entry held locally (unordered across partitions).
    pub fn all(&self) -> Result<Vec<(K, V)>> {
        let mut out = Vec::new();
        for m in self.registry.maps(&self.name) {
            let g = m.read().unwrap_or_else(|p| p.into_inner());
            for (k, v) in g.iter() {
                out.push((
                    self.key_serde.deserialize(&self.name, Some(k))?,
                    self.value_serde.deserialize(&self.name, Some(v))?,
                ));
            }
        }
        Ok(out)
    }

    /// The number of entries held locally.
    pub fn approximate_num_entries(&self) -> usize {
        self.registry
            .maps(&self.name)
            .iter()
            .map(|m| m.read().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }
}

/// A read-only view of a window store.
pub struct ReadOnlyWindowStore<K, V> {
    pub(crate) name: String,
    pub(crate) registry: StoreRegistry,
    pub(crate) key_serde: SerdeRef<K>,
    pub(crate) value_serde: SerdeRef<V>,
}

impl<K, V> ReadOnlyWindowStore<K, V> {
    /// The aggregate of `key` in the window starting at `window_start`.
    pub fn fetch(&self, key: &K, window_start: i64) -> Result<Option<V>> {
        let k = window_key(&self.key_serde.serialize(&self.name, key)?, window_start);
        for m in self.registry.maps(&self.name) {
            let g = m.read().unwrap_or_else(|p| p.into_inner());
            if let Some(v) = g.get(&k) {
                return self.value_serde.deserialize(&self.name, Some(v)).map(Some);
            }
        }
        Ok(None)
    }

    /// Every (window start, value) of `key` with `from <= start <= to`.
    pub fn fetch_range(&self, key: &K, from: i64, to: i64) -> Result<Vec<(i64, V)>> {
        let k = self.key_serde.serialize(&self.name, key)?;
        let (lo, hi) = (window_key(&k, from), window_key(&k, to));
        let mut out = Vec::new();
        for m in self.registry.maps(&self.name) {
            let g = m.read().unwrap_or_else(|p| p.into_inner());
            for (stored, v) in g.range(lo.clone()..=hi.clone()) {
                if let Some((_, start)) = split_window_key(stored) {
                    out.push((start, self.value_serde.deserialize(&self.name, Some(v))?));
                }
            }
        }
        out.sort_by_key(|(s, _)| *s);
        Ok(out)
    }
}
