//! The share coordinator (KIP-932): the durable home of share-partition state, in the
//! compacted internal topic `__share_group_state`.
//!
//! A share-partition's leader (where ShareFetch is served) keeps its in-flight
//! records in memory ([`super::partition`]). Every change it must not lose (an
//! acknowledgement, a released lock, an archived record) it writes here, and it reads
//! the state back when it takes the partition over: after a restart, or when another
//! broker becomes the partition's leader. That is what makes acknowledgements survive a
//! broker's death in a cluster: the state topic is replicated like any other, and a
//! write is answered only once the ISR has it (acks=all).
//!
//! - The coordinator of a share-partition is the leader of the `__share_group_state`
//!   partition that owns its key `"group:topicId:partition"` (Kafka's hash; the topic
//!   id as Kafka prints it), found with FindCoordinator key type 2.
//! - The share-partition leader talks to it with Kafka's inter-broker APIs
//!   (ReadShareGroupState, WriteShareGroupState, ...; [`crate::share::persister`]), or
//!   calls it directly when it is on the same broker.
//! - Writes carry the share-partition's leader epoch: a write from a leader older than
//!   the one that last read or wrote the state is FENCED_LEADER_EPOCH, so a deposed
//!   leader cannot overwrite its successor's state.
//! - The coordinator holds the latest state of the keys it owns in memory, replayed
//!   from the topic when it becomes the partition's leader (at startup, or later under a
//!   new leader epoch), and appends a whole snapshot per write.
//!
//! Invariant: the in-memory map only ever holds what the topic's ISR has.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use gregor_protocol::batch::{self, NewRecord};
use gregor_protocol::compression::Codec;
use gregor_protocol::records::RecordWalker;
use uuid::Uuid;

use crate::coordinator_partition::{self, CoordinatorPartition, Owner};
use crate::host::Host;
use crate::partition::Partition;
use crate::replica_manager::ReplicaManager;
use crate::util::now_ms;

pub const STATE_TOPIC: &str = "__share_group_state";

/// The share-partition key and durable state, and the `__share_group_state` record
/// codecs (pure, in `gregor-coordinator`).
pub use gregor_coordinator::share::state::{records, ShareState, StateBatch, StateKey};

/// Why a share-state operation failed; the handlers map it to Kafka's codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("This is not the correct coordinator.")]
    NotCoordinator,
    #[error("The coordinator is not available.")]
    CoordinatorNotAvailable,
    #[error("The coordinator is loading and hence can't process requests.")]
    CoordinatorLoadInProgress,
    #[error("The leader epoch in the request is older than the epoch on the broker.")]
    FencedLeaderEpoch,
    #[error("The state epoch in the request is older than the epoch on the broker.")]
    FencedStateEpoch,
    #[error("{0}")]
    InvalidRequest(String),
    #[error("share state could not be written: {0}")]
    Storage(String),
}

/// The coordinator's settings: `share.coordinator.state.topic.*`.
#[derive(Debug, Clone, Copy)]
pub struct StateConfig {
    pub partitions: i32,
    pub replication_factor: i16,
}

pub struct ShareStateCoordinator {
    config: StateConfig,
    /// What this coordinator sees of the broker (see `host`).
    host: Arc<Host>,
    /// The latest state of every key owned by a partition led here.
    states: Mutex<HashMap<StateKey, ShareState>>,
    /// `__share_group_state` partitions replayed into `states`, with the leader epoch
    /// they were replayed under (led again under a new epoch: replayed again).
    replayed: Mutex<HashMap<i32, i32>>,
    /// Serialises replays.
    replay_lock: tokio::sync::Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Replays one partition: the newest record per key wins, a tombstone forgets it.
fn replay_partition(p: &Partition) -> HashMap<StateKey, Option<ShareState>> {
    let mut out = HashMap::new();
    let mut scratch = Vec::new();
    let replayed = p.replay(|h, b| {
        if h.is_control() {
            return;
        }
        let Ok(data) = batch::records_section(h, b, &mut scratch, 64 << 20) else {
            return;
        };
        for rec in RecordWalker::new(data, h.record_count).flatten() {
            let key = match rec.key.map(records::decode_key) {
                Some(Ok(k)) => k,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "skipping __share_group_state record");
                    continue;
                }
                None => continue,
            };
            match rec.value.map(records::decode_value) {
                Some(Ok(s)) => {
                    out.insert(key, Some(s));
                }
                None => {
                    out.insert(key, None);
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "skipping __share_group_state record")
                }
            }
        }
    });
    if let Err(e) = replayed {
        tracing::warn!(partition = p.index, error = %e, "could not replay __share_group_state partition");
    }
    out
}

impl ShareStateCoordinator {
    pub fn new(config: StateConfig, host: Arc<Host>) -> Self {
        Self {
            config,
            host,
            states: Mutex::new(HashMap::new()),
            replayed: Mutex::new(HashMap::new()),
            replay_lock: tokio::sync::Mutex::new(()),
        }
    }

    pub fn config(&self) -> StateConfig {
        self.config
    }

    /// What this coordinator sees of the broker (the share-partition leader's persister
    /// routes and calls through it).
    pub fn host(&self) -> &Arc<Host> {
        &self.host
    }

    /// Replays the partitions led here (startup, before serving).
    pub fn load(&self, replicas: &ReplicaManager) {
        let Some(topic) = replicas.topic(STATE_TOPIC) else {
            return;
        };
        let mut states = HashMap::new();
        let mut replayed = lock(&self.replayed);
        for p in topic.partitions.values() {
            if !p.is_leader() {
                continue;
            }
            states.extend(
                replay_partition(p)
                    .into_iter()
                    .filter_map(|(k, s)| Some((k, s?))),
            );
            replayed.insert(p.index, p.leader_epoch());
        }
        drop(replayed);
        tracing::info!(
            share_partitions = states.len(),
            "replayed __share_group_state"
        );
        *lock(&self.states) = states;
    }

    /// The owning partition of `key`, online and replayed here.
    async fn partition(&self, key: &StateKey) -> Result<CoordinatorPartition, StateError> {
        let ck = key.coordinator_key();
        let mut owner =
            coordinator_partition::owner(&self.host, STATE_TOPIC, &ck, self.config.partitions);
        if let Owner::NoTopic(_) = owner {
            self.host
                .ensure_internal_topic(
                    STATE_TOPIC,
                    self.config.partitions,
                    self.config.replication_factor,
                )
                .await
                .map_err(|_| StateError::CoordinatorNotAvailable)?;
            owner =
                coordinator_partition::owner(&self.host, STATE_TOPIC, &ck, self.config.partitions);
        }
        let p = match owner {
            Owner::Online(p) => p,
            Owner::Elsewhere { .. } => return Err(StateError::NotCoordinator),
            Owner::Unavailable(_) | Owner::NoTopic(_) => {
                return Err(StateError::CoordinatorNotAvailable)
            }
        };
        if !p.is_leader() {
            return Err(StateError::NotCoordinator);
        }
        let epoch = self.ensure_replayed(&p).await?;
        Ok(CoordinatorPartition {
            partition: p,
            epoch,
        })
    }

    /// Replays a partition not replayed under its current leader epoch; returns that
    /// epoch.
    async fn ensure_replayed(&self, p: &Arc<Partition>) -> Result<i32, StateError> {
        let epoch = p.leader_epoch();
        if lock(&self.replayed).get(&p.index) == Some(&epoch) {
            return Ok(epoch);
        }
        let _turn = self.replay_lock.lock().await;
        if lock(&self.replayed).get(&p.index) == Some(&epoch) {
            return Ok(epoch);
        }
        let count =
            coordinator_partition::partition_count(&self.host, STATE_TOPIC, self.config.partitions);
        let index = p.index;
        let part = p.clone();
        let found = tokio::task::spawn_blocking(move || replay_partition(&part))
            .await
            .map_err(|e| StateError::Storage(e.to_string()))?;
        {
            let mut states = lock(&self.states);
            // Whatever was held for this partition's keys is stale now.
            states.retain(|k, _| {
                crate::group::records::partition_for(&k.coordinator_key(), count) != index
            });
            states.extend(found.into_iter().filter_map(|(k, s)| Some((k, s?))));
        }
        lock(&self.replayed).insert(index, epoch);
        tracing::info!(
            partition = index,
            epoch,
            "replayed __share_group_state partition"
        );
        Ok(epoch)
    }

    async fn append(
        &self,
        cp: &CoordinatorPartition,
        key: &StateKey,
        value: Option<&ShareState>,
    ) -> Result<(), StateError> {
        let k = records::encode_key(key);
        let v = value.map(records::encode_value);
        let rec = NewRecord {
            key: Some(&k),
            value: v.as_deref(),
            timestamp: now_ms(),
            headers: &[],
        };
        let storage = |e: String| {
            tracing::error!(group = %key.group, error = %e, "cannot write __share_group_state");
            StateError::Storage(e)
        };
        let bytes = batch::build(0, Codec::None, &[rec]).map_err(|e| storage(e.to_string()))?;
        let mut scratch = Vec::new();
        let v = batch::validate(&bytes, &mut scratch, usize::MAX)
            .map_err(|e| storage(e.to_string()))?;
        use crate::replication::ReplicatedAppendError as E;
        match cp.append(&bytes, &v).await {
            Ok(_) => Ok(()),
            Err(E::NotLeader(_)) => Err(StateError::NotCoordinator),
            Err(E::NotEnoughReplicas(_) | E::Timeout(_)) => {
                Err(StateError::CoordinatorNotAvailable)
            }
            Err(E::Log(e)) => Err(storage(e.to_string())),
        }
    }

    /// ReadShareGroupState: the stored state (start offset -1 when there is none). A
    /// newer leader epoch is recorded first, which fences the previous leader's
    /// writes.
    pub async fn read(&self, key: &StateKey, leader_epoch: i32) -> Result<ShareState, StateError> {
        let cp = self.partition(key).await?;
        let stored = lock(&self.states).get(key).cloned();
        match stored {
            None => Ok(ShareState {
                leader_epoch,
                start_offset: -1,
                ..ShareState::default()
            }),
            Some(s) if leader_epoch > s.leader_epoch => {
                let mut next = s;
                next.leader_epoch = leader_epoch;
                next.snapshot_epoch = next.snapshot_epoch.wrapping_add(1);
                self.append(&cp, key, Some(&next)).await?;
                lock(&self.states).insert(key.clone(), next.clone());
                Ok(next)
            }
            Some(s) => Ok(s),
        }
    }

    /// ReadShareGroupStateSummary: the stored state without its batches.
    pub async fn summary(&self, key: &StateKey) -> Result<ShareState, StateError> {
        self.partition(key).await?;
        Ok(lock(&self.states)
            .get(key)
            .map(|s| ShareState {
                batches: Vec::new(),
                ..s.clone()
            })
            .unwrap_or(ShareState {
                start_offset: -1,
                ..ShareState::default()
            }))
    }

    /// WriteShareGroupState: replaces the stored state once the ISR has it.
    pub async fn write(&self, key: &StateKey, mut state: ShareState) -> Result<(), StateError> {
        let cp = self.partition(key).await?;
        let stored = lock(&self.states).get(key).cloned();
        if let Some(s) = &stored {
            if state.leader_epoch >= 0 && state.leader_epoch < s.leader_epoch {
                return Err(StateError::FencedLeaderEpoch);
            }
            if state.state_epoch < s.state_epoch {
                return Err(StateError::FencedStateEpoch);
            }
            state.leader_epoch = state.leader_epoch.max(s.leader_epoch);
            state.snapshot_epoch = s.snapshot_epoch.wrapping_add(1);
        }
        self.append(&cp, key, Some(&state)).await?;
        lock(&self.states).insert(key.clone(), state);
        Ok(())
    }

    /// InitializeShareGroupState: a new state epoch and start offset, no batches.
    pub async fn initialize(
        &self,
        key: &StateKey,
        state_epoch: i32,
        start_offset: i64,
    ) -> Result<(), StateError> {
        let cp = self.partition(key).await?;
        let stored = lock(&self.states).get(key).cloned();
        if stored.as_ref().is_some_and(|s| state_epoch < s.state_epoch) {
            return Err(StateError::FencedStateEpoch);
        }
        let state = ShareState {
            snapshot_epoch: stored
                .as_ref()
                .map_or(0, |s| s.snapshot_epoch.wrapping_add(1)),
            state_epoch,
            leader_epoch: stored.as_ref().map_or(-1, |s| s.leader_epoch),
            start_offset,
            batches: Vec::new(),
        };
        self.append(&cp, key, Some(&state)).await?;
        lock(&self.states).insert(key.clone(), state);
        Ok(())
    }

    /// DeleteShareGroupState: a tombstone.
    pub async fn delete(&self, key: &StateKey) -> Result<(), StateError> {
        let cp = self.partition(key).await?;
        if !lock(&self.states).contains_key(key) {
            return Ok(());
        }
        self.append(&cp, key, None).await?;
        lock(&self.states).remove(key);
        Ok(())
    }

    /// Every key of `group` held here with its start offset (describe and list on a
    /// node that coordinates them; complete on a single node).
    pub fn offsets_of(&self, group: &str) -> Vec<(Uuid, i32, i64)> {
        lock(&self.states)
            .iter()
            .filter(|(k, _)| k.group == group)
            .map(|(k, s)| (k.topic_id, k.partition, s.start_offset))
            .collect()
    }

    /// The groups with state held here.
    pub fn groups(&self) -> Vec<String> {
        let mut g: Vec<String> = lock(&self.states).keys().map(|k| k.group.clone()).collect();
        g.sort();
        g.dedup();
        g
    }
}
