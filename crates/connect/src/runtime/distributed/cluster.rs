//! What one distributed worker shares between its herder loop, its REST handlers and
//! its task threads: the config state read from the config topic so far (only the
//! herder reads the topic; writers wait until the herder applied their records), the
//! statuses read from the status topic, and the group's current leader.
//!
//! Status writes are fenced by generation, as Kafka's `KafkaStatusBackingStore` does:
//! a worker's first RUNNING (or RESTARTING) of an instance in a generation is written
//! as is (Kafka's `put`, on startup), any other state only if the status last read for
//! that key is this worker's own or has no newer generation (Kafka's `putSafe` and
//! `canWriteSafely`). So a worker dropped from the group (paused past its session
//! timeout) that wakes and revokes cannot overwrite the status of the instance's new
//! owner. The status topic is read to its end before such a write, so the check sees
//! what the new owner wrote while this worker was away.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value as J;

use super::log::TopicLog;
use super::state::ConfigState;
use super::{DistConfig, DistError};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// How long a REST write waits for the herder to apply its records.
const APPLY_DEADLINE: Duration = Duration::from_secs(30);

pub struct Cluster {
    pub config: DistConfig,
    /// This worker's REST URL (`http://host:port/`), as the group sees it.
    pub url: String,
    pub configs: TopicLog,
    pub status: TopicLog,
    state: Mutex<ConfigState>,
    applied: (Mutex<i64>, Condvar),
    statuses: Mutex<BTreeMap<String, J>>,
    /// (leader member id, leader URL) of the current generation.
    leader: Mutex<Option<(String, String)>>,
    /// Woken whenever the leader is set or cleared (REST writes wait on it).
    leader_changed: tokio::sync::Notify,
    is_leader: AtomicBool,
    pub generation: AtomicI32,
    /// What this worker last wrote to the status topic, per key.
    published: Mutex<BTreeMap<String, (String, Option<String>)>>,
    /// On the leader: the REST URL of the worker running each connector (task -1) and
    /// task in the current generation (where `POST .../tasks/{id}/restart` goes).
    owners: Mutex<BTreeMap<(String, i32), String>>,
}

impl Cluster {
    pub fn new(config: DistConfig, url: String, configs: TopicLog, status: TopicLog) -> Arc<Self> {
        Arc::new(Cluster {
            config,
            url,
            configs,
            status,
            state: Mutex::new(ConfigState::default()),
            applied: (Mutex::new(-1), Condvar::new()),
            statuses: Mutex::new(BTreeMap::new()),
            leader: Mutex::new(None),
            leader_changed: tokio::sync::Notify::new(),
            is_leader: AtomicBool::new(false),
            generation: AtomicI32::new(-1),
            published: Mutex::new(BTreeMap::new()),
            owners: Mutex::new(BTreeMap::new()),
        })
    }

    /// Reads the config topic to its end (herder only); returns the state and whether
    /// anything was read.
    pub fn read_configs(&self) -> Result<(ConfigState, bool), DistError> {
        let mut state = lock(&self.state);
        let mut any = false;
        let end = self.configs.read_to_end(|r| {
            any = true;
            state.apply(&String::from_utf8_lossy(r.key), r.value);
        })?;
        state.offset = end;
        let snapshot = state.clone();
        state.restarts.clear();
        Ok((snapshot, any))
    }

    /// The config state as applied (no restart requests).
    pub fn config_state(&self) -> ConfigState {
        let mut s = lock(&self.state).clone();
        s.restarts.clear();
        s
    }

    /// The herder marks the config offset up to which the worker applied records.
    pub fn mark_applied(&self, offset: i64) {
        let (m, cv) = &self.applied;
        *lock(m) = offset;
        cv.notify_all();
    }

    /// Writes config records, then waits until the herder applied them.
    pub fn write_configs(&self, records: &[(String, Option<Vec<u8>>)]) -> Result<(), DistError> {
        self.configs.send(records)?;
        let end = self.configs.end_offset()?;
        let (m, cv) = &self.applied;
        let deadline = Instant::now() + APPLY_DEADLINE;
        let mut applied = lock(m);
        while *applied < end {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(DistError::Kafka(format!(
                    "the config write was not applied within {APPLY_DEADLINE:?}"
                )));
            }
            applied = cv
                .wait_timeout(applied, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        Ok(())
    }

    /// Reads the status topic to its end.
    pub fn read_statuses(&self) -> Result<(), DistError> {
        let mut read: Vec<(String, Option<J>)> = Vec::new();
        self.status.read_to_end(|r| {
            read.push((
                String::from_utf8_lossy(r.key).into_owned(),
                r.value.and_then(|v| serde_json::from_slice(v).ok()),
            ));
        })?;
        let mut statuses = lock(&self.statuses);
        for (k, v) in read {
            match v {
                Some(v) => statuses.insert(k, v),
                None => statuses.remove(&k),
            };
        }
        Ok(())
    }

    pub fn status_of(&self, key: &str) -> Option<J> {
        lock(&self.statuses).get(key).cloned()
    }

    /// Writes the statuses that changed since this worker last wrote them, fenced by
    /// generation (see the module docs); a fenced status is dropped, not retried.
    pub fn publish(
        &self,
        worker_id: &str,
        current: Vec<(String, String, Option<String>)>,
    ) -> Result<(), DistError> {
        let changed: Vec<(String, String, Option<String>)> = {
            let published = lock(&self.published);
            current
                .into_iter()
                .filter(|(k, s, t)| published.get(k) != Some(&(s.clone(), t.clone())))
                .collect()
        };
        if changed.is_empty() {
            return Ok(());
        }
        // A safe write must see what other workers wrote meanwhile.
        self.read_statuses()?;
        let generation = self.generation.load(Ordering::SeqCst);
        let mut published = lock(&self.published);
        let mut records: Vec<(String, Option<Vec<u8>>)> = Vec::new();
        for (k, s, t) in changed {
            let first = !published.contains_key(&k);
            if first && s == "UNASSIGNED" {
                // A task not started yet: Kafka writes nothing until it runs (or fails).
                continue;
            }
            let startup = first && (s == "RUNNING" || s == "RESTARTING");
            let newer = (!startup)
                .then(|| self.newer_owner(&k, worker_id, generation))
                .flatten();
            published.insert(k.clone(), (s.clone(), t.clone()));
            if let Some((owner, g)) = newer {
                tracing::info!(
                    "not writing status {s} of {k} for generation {generation}: \
                     {owner} wrote it in generation {g}"
                );
                continue;
            }
            let v = super::state::status_value(&s, t.as_deref(), worker_id, generation);
            records.push((k, Some(v)));
        }
        drop(published);
        self.send_statuses(records)
    }

    /// Kafka's `onRestart`: RESTARTING for the instances about to restart, written as is.
    pub fn put_restarting(&self, worker_id: &str, keys: &[String]) -> Result<(), DistError> {
        let generation = self.generation.load(Ordering::SeqCst);
        let mut published = lock(&self.published);
        let records = keys
            .iter()
            .map(|k| {
                published.insert(k.clone(), ("RESTARTING".to_string(), None));
                let v = super::state::status_value("RESTARTING", None, worker_id, generation);
                (k.clone(), Some(v))
            })
            .collect();
        drop(published);
        self.send_statuses(records)
    }

    fn send_statuses(&self, records: Vec<(String, Option<Vec<u8>>)>) -> Result<(), DistError> {
        if records.is_empty() {
            return Ok(());
        }
        let r = self.status.send(&records);
        if r.is_ok() {
            // This worker's view shows its own writes at once (the next read of the
            // topic applies everything in the log's order anyway).
            let mut statuses = lock(&self.statuses);
            for (k, v) in &records {
                if let Some(j) = v.as_deref().and_then(|v| serde_json::from_slice(v).ok()) {
                    statuses.insert(k.clone(), j);
                }
            }
        } else {
            // Publish again next time.
            let mut published = lock(&self.published);
            for (k, _) in &records {
                published.remove(k);
            }
        }
        r
    }

    /// (worker, generation) of the status last read for `key` when another worker wrote
    /// it in a newer generation than `generation`: a write of ours would be stale.
    fn newer_owner(&self, key: &str, worker_id: &str, generation: i32) -> Option<(String, i64)> {
        newer_writer(lock(&self.statuses).get(key)?, worker_id, generation)
    }

    /// Forgets what was published (after a rebalance, the statuses are written anew).
    pub fn forget_published(&self) {
        lock(&self.published).clear();
    }

    pub fn set_leader(&self, leader: Option<(String, String)>, me: bool) {
        if leader.is_none() {
            lock(&self.owners).clear();
        }
        *lock(&self.leader) = leader;
        self.is_leader.store(me, Ordering::SeqCst);
        self.leader_changed.notify_waiters();
    }

    /// Notified when the leader changes; create the future before reading the leader.
    pub fn leader_changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.leader_changed.notified()
    }

    pub fn is_leader(&self) -> bool {
        self.is_leader.load(Ordering::SeqCst)
    }

    /// The leader records who runs what in the generation it assigned.
    pub fn set_owners(&self, owners: BTreeMap<(String, i32), String>) {
        *lock(&self.owners) = owners;
    }

    /// On the leader: the REST URL of the worker running a task of the current generation.
    pub fn owner_url(&self, connector: &str, task: i32) -> Option<String> {
        lock(&self.owners)
            .get(&(connector.to_string(), task))
            .cloned()
    }

    /// The leader's URL, when a generation is complete.
    pub fn leader_url(&self) -> Option<String> {
        lock(&self.leader).as_ref().map(|(_, u)| u.clone())
    }
}

/// Kafka's `canWriteSafely`, negated: `Some((writer, its generation))` when `current`
/// (a status value as read) was written by another worker in a newer generation.
fn newer_writer(current: &J, worker_id: &str, generation: i32) -> Option<(String, i64)> {
    let owner = current["worker_id"].as_str().unwrap_or_default();
    let g = current["generation"].as_i64()?;
    (owner != worker_id && g > i64::from(generation)).then(|| (owner.to_string(), g))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_of_a_newer_generation_by_another_worker_fences_the_write() {
        let v: J = serde_json::from_slice(&super::super::state::status_value(
            "RUNNING", None, "b:2", 7,
        ))
        .unwrap();
        // Older generation, other worker: fenced.
        assert_eq!(newer_writer(&v, "a:1", 6), Some(("b:2".to_string(), 7)));
        // Same or newer generation, or our own status: written.
        assert_eq!(newer_writer(&v, "a:1", 7), None);
        assert_eq!(newer_writer(&v, "a:1", 8), None);
        assert_eq!(newer_writer(&v, "b:2", 1), None);
        // A status without a generation does not fence.
        assert_eq!(
            newer_writer(&serde_json::json!({"worker_id": "b:2"}), "a:1", 0),
            None
        );
    }
}
