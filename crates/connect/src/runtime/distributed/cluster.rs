//! What one distributed worker shares between its herder loop, its REST handlers and
//! its task threads: the config state read from the config topic so far (only the
//! herder reads the topic; writers wait until the herder applied their records), the
//! statuses read from the status topic, and the group's current leader.

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

    /// Writes the statuses that changed since this worker last wrote them.
    pub fn publish(
        &self,
        worker_id: &str,
        current: Vec<(String, String, Option<String>)>,
    ) -> Result<(), DistError> {
        let generation = self.generation.load(Ordering::SeqCst);
        let mut published = lock(&self.published);
        let mut records: Vec<(String, Option<Vec<u8>>)> = Vec::new();
        for (k, s, t) in current {
            if published.get(&k) == Some(&(s.clone(), t.clone())) {
                continue;
            }
            let v = super::state::status_value(&s, t.as_deref(), worker_id, generation);
            published.insert(k.clone(), (s, t));
            records.push((k, Some(v)));
        }
        if records.is_empty() {
            return Ok(());
        }
        drop(published);
        let r = self.status.send(&records);
        if r.is_err() {
            // Publish again next time.
            let mut published = lock(&self.published);
            for (k, _) in &records {
                published.remove(k);
            }
        }
        r
    }

    /// Forgets what was published (after a rebalance, the statuses are written anew).
    pub fn forget_published(&self) {
        lock(&self.published).clear();
    }

    pub fn set_leader(&self, leader: Option<(String, String)>, me: bool) {
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

    /// The leader's URL, when a generation is complete.
    pub fn leader_url(&self) -> Option<String> {
        lock(&self.leader).as_ref().map(|(_, u)| u.clone())
    }
}
