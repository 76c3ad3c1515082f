//! The share-partition leader's side of durable share state: it reads a
//! share-partition's state from its share coordinator when it takes the partition over,
//! and writes every change it must not lose (Kafka's "persister").
//!
//! The coordinator may be this broker (a direct call) or another one
//! (ReadShareGroupState / WriteShareGroupState / DeleteShareGroupState over an
//! inter-broker connection). One writer task sends every write: writes queued while it
//! is busy go out together, the newest per share-partition wins, so there is never more
//! than one write of a share-partition in flight and they arrive in order. Whoever
//! waits on a write (an acknowledgement) is answered once the coordinator has it in
//! its ISR.
//!
//! State written by earlier versions in `<data dir>/__share_group_state/*.state`
//! ([`super::persist`]) is read once at startup and moved to the coordinator the first
//! time its share-partition is loaded.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use gregor_protocol::kp::messages::{
    delete_share_group_state_request as dreq, read_share_group_state_request as rreq,
    read_share_group_state_summary_request as sreq, write_share_group_state_request as wreq,
    DeleteShareGroupStateRequest, ReadShareGroupStateRequest, ReadShareGroupStateSummaryRequest,
    WriteShareGroupStateRequest,
};
use gregor_protocol::kp::protocol::StrBytes;
use gregor_protocol::kp::ResponseError;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use super::persist::{self, Snapshot};
use super::state::{
    ShareState, ShareStateCoordinator, StateBatch, StateError, StateKey, STATE_TOPIC,
};
use super::ShareError;
use crate::coordinator_partition::{self, Owner};
use crate::host::Host;
use crate::replication::client::BrokerClient;

const TIMEOUT: Duration = Duration::from_secs(30);

struct Job {
    key: StateKey,
    /// `None` deletes the share-partition's state.
    state: Option<ShareState>,
    done: Option<oneshot::Sender<bool>>,
}

/// Where a key's coordinator is.
enum Route {
    Local,
    Remote(i32),
}

pub struct Persister {
    tx: mpsc::UnboundedSender<Job>,
    rx: Mutex<Option<mpsc::UnboundedReceiver<Job>>>,
    /// Snapshots left by earlier versions, not yet moved to the coordinator.
    legacy: Mutex<HashMap<StateKey, Snapshot>>,
    data_dir: PathBuf,
    /// Idle inter-broker connections, by broker id (taken out while in use).
    clients: Arc<Mutex<HashMap<i32, BrokerClient>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Persister {
    pub fn open(data_dir: &std::path::Path) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let legacy = persist::load(data_dir)
            .into_iter()
            .map(|s| {
                (
                    StateKey {
                        group: s.group.clone(),
                        topic_id: s.topic_id,
                        partition: s.partition,
                    },
                    s,
                )
            })
            .collect();
        Self {
            tx,
            rx: Mutex::new(Some(rx)),
            legacy: Mutex::new(legacy),
            data_dir: data_dir.to_path_buf(),
            clients: Arc::default(),
        }
    }

    /// Groups with state left by an earlier version (they are share groups).
    pub fn legacy_groups(&self) -> Vec<String> {
        lock(&self.legacy).keys().map(|k| k.group.clone()).collect()
    }

    /// Starts the writer task; it holds the share coordinator (which the broker owns)
    /// weakly and ends with it.
    pub fn start(&self, coordinator: &Arc<ShareStateCoordinator>) {
        let Some(rx) = lock(&self.rx).take() else {
            return;
        };
        let weak = Arc::downgrade(coordinator);
        let clients = self.clients.clone();
        tokio::spawn(writer(weak, rx, clients));
    }

    /// Queues a write; the receiver answers once it is durable (false if it failed).
    pub fn save(&self, key: StateKey, state: ShareState) -> oneshot::Receiver<bool> {
        let (done, rx) = oneshot::channel();
        let _ = self.tx.send(Job {
            key,
            state: Some(state),
            done: Some(done),
        });
        rx
    }

    /// Queues a write nobody waits for.
    pub fn save_later(&self, key: StateKey, state: ShareState) {
        let _ = self.tx.send(Job {
            key,
            state: Some(state),
            done: None,
        });
    }

    /// Queues the deletion of a share-partition's state.
    pub fn remove(&self, key: StateKey) -> oneshot::Receiver<bool> {
        let (done, rx) = oneshot::channel();
        let _ = self.tx.send(Job {
            key,
            state: None,
            done: Some(done),
        });
        rx
    }

    /// Reads a share-partition's state from its coordinator, as leader under
    /// `leader_epoch` (which fences older leaders' writes). Start offset -1: none.
    pub async fn load(
        &self,
        coordinator: &ShareStateCoordinator,
        key: &StateKey,
        leader_epoch: i32,
    ) -> Result<ShareState, ShareError> {
        let state = read(coordinator, &self.clients, key, leader_epoch).await?;
        if state.start_offset >= 0 {
            return Ok(state);
        }
        let Some(old) = lock(&self.legacy).get(key).cloned() else {
            return Ok(state);
        };
        // State an earlier version kept in a local file: move it to the coordinator.
        let moved = ShareState {
            leader_epoch,
            start_offset: old.spso,
            batches: to_batches(&old.entries),
            ..state
        };
        if !matches!(self.save(key.clone(), moved.clone()).await, Ok(true)) {
            return Err(ShareError::Storage);
        }
        lock(&self.legacy).remove(key);
        persist::remove_file(&self.data_dir, &old);
        tracing::info!(group = %key.group, partition = key.partition, "moved share-partition state to __share_group_state");
        Ok(moved)
    }
}

impl Persister {
    /// A share-partition's start offset from its coordinator (-1: no state).
    pub async fn summary(
        &self,
        coordinator: &ShareStateCoordinator,
        key: &StateKey,
    ) -> Result<i64, ShareError> {
        match route(coordinator, key)? {
            Route::Local => coordinator
                .summary(key)
                .await
                .map(|s| s.start_offset)
                .map_err(state_error),
            Route::Remote(node) => {
                let req = ReadShareGroupStateSummaryRequest::default()
                    .with_group_id(StrBytes::from_string(key.group.clone()))
                    .with_topics(vec![sreq::ReadStateSummaryData::default()
                        .with_topic_id(key.topic_id)
                        .with_partitions(vec![
                            sreq::PartitionData::default().with_partition(key.partition)
                        ])]);
                let resp = call(coordinator.host(), &self.clients, node, &req).await?;
                let p = resp
                    .results
                    .into_iter()
                    .flat_map(|t| t.partitions)
                    .find(|p| p.partition == key.partition)
                    .ok_or(ShareError::Storage)?;
                check(p.error_code)?;
                Ok(p.start_offset)
            }
        }
    }
}

/// Runs of consecutive offsets with the same state and delivery count (an acquired
/// record is stored as available: its lock does not survive a restart).
pub fn to_batches(entries: &[(i64, super::partition::RecordState, i16)]) -> Vec<StateBatch> {
    use super::partition::RecordState;
    let mut out: Vec<StateBatch> = Vec::new();
    for &(offset, state, count) in entries {
        let code = match state {
            RecordState::Acquired => RecordState::Available.code(),
            s => s.code(),
        } as i8;
        match out.last_mut() {
            Some(b)
                if b.last_offset + 1 == offset
                    && b.delivery_state == code
                    && b.delivery_count == count =>
            {
                b.last_offset = offset
            }
            _ => out.push(StateBatch {
                first_offset: offset,
                last_offset: offset,
                delivery_state: code,
                delivery_count: count,
            }),
        }
    }
    out
}

/// The per-offset entries of stored batches, at most `cap` of them (a damaged or
/// hostile batch cannot make the leader allocate without bound).
pub fn from_batches(
    batches: &[StateBatch],
    cap: usize,
) -> Vec<(i64, super::partition::RecordState, i16)> {
    let mut out = Vec::new();
    for b in batches {
        let Some(state) = u8::try_from(b.delivery_state)
            .ok()
            .and_then(super::partition::RecordState::from_code)
        else {
            continue;
        };
        let mut o = b.first_offset;
        while o <= b.last_offset && out.len() < cap {
            out.push((o, state, b.delivery_count));
            let Some(next) = o.checked_add(1) else { break };
            o = next;
        }
    }
    out
}

fn route(coordinator: &ShareStateCoordinator, key: &StateKey) -> Result<Route, ShareError> {
    let partitions = coordinator.config().partitions;
    match coordinator_partition::owner(
        coordinator.host(),
        STATE_TOPIC,
        &key.coordinator_key(),
        partitions,
    ) {
        Owner::Online(_) | Owner::NoTopic(_) => Ok(Route::Local),
        Owner::Elsewhere { leader, .. } => Ok(Route::Remote(leader)),
        Owner::Unavailable(_) => Err(ShareError::Storage),
    }
}

fn state_error(e: StateError) -> ShareError {
    tracing::debug!(error = %e, "share coordinator refused");
    ShareError::Storage
}

/// Sends `req` to broker `node` on a pooled connection (a new one if none is idle).
async fn call<R: gregor_protocol::kp::protocol::Request>(
    host: &Host,
    clients: &Mutex<HashMap<i32, BrokerClient>>,
    node: i32,
    req: &R,
) -> Result<R::Response, ShareError> {
    let idle = lock(clients).remove(&node);
    let mut client = match idle {
        Some(c) => c,
        None => {
            let endpoint = {
                let image = host.metadata.image();
                let e = image
                    .brokers
                    .get(&node)
                    .and_then(|b| b.endpoints.first())
                    .ok_or(ShareError::Storage)?;
                format!("{}:{}", e.host, e.port)
            };
            BrokerClient::connect(
                node,
                &endpoint,
                format!("gregor-share-{}", host.node_id),
                TIMEOUT,
                &host.inter_broker,
            )
            .await
            .map_err(|e| {
                tracing::debug!(node, error = %e, "share coordinator unreachable");
                ShareError::Storage
            })?
        }
    };
    let resp = client.call(req, 0, TIMEOUT).await.map_err(|e| {
        tracing::debug!(node, error = %e, "share coordinator call failed");
        ShareError::Storage
    })?;
    lock(clients).insert(node, client);
    Ok(resp)
}

fn check(code: i16) -> Result<(), ShareError> {
    match code {
        0 => Ok(()),
        c => {
            tracing::debug!(error = ?ResponseError::try_from_code(c), "share coordinator refused");
            Err(ShareError::Storage)
        }
    }
}

async fn read(
    coordinator: &ShareStateCoordinator,
    clients: &Mutex<HashMap<i32, BrokerClient>>,
    key: &StateKey,
    leader_epoch: i32,
) -> Result<ShareState, ShareError> {
    match route(coordinator, key)? {
        Route::Local => coordinator
            .read(key, leader_epoch)
            .await
            .map_err(state_error),
        Route::Remote(node) => {
            let req = ReadShareGroupStateRequest::default()
                .with_group_id(StrBytes::from_string(key.group.clone()))
                .with_topics(vec![rreq::ReadStateData::default()
                    .with_topic_id(key.topic_id)
                    .with_partitions(vec![rreq::PartitionData::default()
                        .with_partition(key.partition)
                        .with_leader_epoch(leader_epoch)])]);
            let resp = call(coordinator.host(), clients, node, &req).await?;
            let p = resp
                .results
                .into_iter()
                .flat_map(|t| t.partitions)
                .find(|p| p.partition == key.partition)
                .ok_or(ShareError::Storage)?;
            check(p.error_code)?;
            Ok(ShareState {
                snapshot_epoch: 0,
                state_epoch: p.state_epoch,
                leader_epoch,
                start_offset: p.start_offset,
                batches: p
                    .state_batches
                    .into_iter()
                    .map(|b| StateBatch {
                        first_offset: b.first_offset,
                        last_offset: b.last_offset,
                        delivery_state: b.delivery_state,
                        delivery_count: b.delivery_count,
                    })
                    .collect(),
            })
        }
    }
}

async fn write(
    coordinator: &ShareStateCoordinator,
    clients: &Mutex<HashMap<i32, BrokerClient>>,
    key: &StateKey,
    state: Option<ShareState>,
) -> Result<(), ShareError> {
    match route(coordinator, key)? {
        Route::Local => match state {
            Some(s) => coordinator.write(key, s).await,
            None => coordinator.delete(key).await,
        }
        .map_err(state_error),
        Route::Remote(node) => {
            let group = StrBytes::from_string(key.group.clone());
            let code = match state {
                Some(s) => {
                    let req = WriteShareGroupStateRequest::default()
                        .with_group_id(group)
                        .with_topics(vec![wreq::WriteStateData::default()
                            .with_topic_id(key.topic_id)
                            .with_partitions(vec![wreq::PartitionData::default()
                                .with_partition(key.partition)
                                .with_state_epoch(s.state_epoch)
                                .with_leader_epoch(s.leader_epoch)
                                .with_start_offset(s.start_offset)
                                .with_state_batches(
                                    s.batches
                                        .iter()
                                        .map(|b| {
                                            wreq::StateBatch::default()
                                                .with_first_offset(b.first_offset)
                                                .with_last_offset(b.last_offset)
                                                .with_delivery_state(b.delivery_state)
                                                .with_delivery_count(b.delivery_count)
                                        })
                                        .collect(),
                                )])]);
                    let resp = call(coordinator.host(), clients, node, &req).await?;
                    resp.results
                        .into_iter()
                        .flat_map(|t| t.partitions)
                        .find(|p| p.partition == key.partition)
                        .map(|p| p.error_code)
                }
                None => {
                    let req = DeleteShareGroupStateRequest::default()
                        .with_group_id(group)
                        .with_topics(vec![dreq::DeleteStateData::default()
                            .with_topic_id(key.topic_id)
                            .with_partitions(vec![
                                dreq::PartitionData::default().with_partition(key.partition)
                            ])]);
                    let resp = call(coordinator.host(), clients, node, &req).await?;
                    resp.results
                        .into_iter()
                        .flat_map(|t| t.partitions)
                        .find(|p| p.partition == key.partition)
                        .map(|p| p.error_code)
                }
            };
            check(code.ok_or(ShareError::Storage)?)
        }
    }
}

async fn writer(
    coordinator: Weak<ShareStateCoordinator>,
    mut rx: mpsc::UnboundedReceiver<Job>,
    clients: Arc<Mutex<HashMap<i32, BrokerClient>>>,
) {
    while let Some(first) = rx.recv().await {
        let mut latest: HashMap<StateKey, Option<ShareState>> = HashMap::new();
        let mut waiting: Vec<(StateKey, oneshot::Sender<bool>)> = Vec::new();
        let mut job = Some(first);
        while let Some(j) = job.take().or_else(|| rx.try_recv().ok()) {
            latest.insert(j.key.clone(), j.state);
            if let Some(d) = j.done {
                waiting.push((j.key, d));
            }
        }
        let Some(b) = coordinator.upgrade() else {
            return;
        };
        let mut set = JoinSet::new();
        for (key, state) in latest {
            let (b, clients) = (b.clone(), clients.clone());
            set.spawn(async move {
                let mut r = write(&b, &clients, &key, state.clone()).await;
                if r.is_err() {
                    // The coordinator may just have moved: one more try on fresh metadata.
                    r = write(&b, &clients, &key, state).await;
                }
                if let Err(e) = &r {
                    tracing::warn!(group = %key.group, partition = key.partition, error = %e, "share-partition state not written");
                }
                (key, r.is_ok())
            });
        }
        drop(b);
        let mut ok = HashMap::new();
        while let Some(res) = set.join_next().await {
            if let Ok((key, r)) = res {
                ok.insert(key, r);
            }
        }
        for (key, done) in waiting {
            let _ = done.send(ok.get(&key).copied().unwrap_or(false));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::partition::RecordState as S;
    use super::*;

    #[test]
    fn entries_become_runs_and_back() {
        let entries = vec![
            (10, S::Acknowledged, 1),
            (11, S::Acknowledged, 1),
            (12, S::Acquired, 2),
            (13, S::Available, 2),
            (15, S::Archived, 5),
        ];
        let batches = to_batches(&entries);
        assert_eq!(batches.len(), 3);
        assert_eq!((batches[1].first_offset, batches[1].last_offset), (12, 13));
        let back = from_batches(&batches, 100);
        assert_eq!(back[2], (12, S::Available, 2));
        assert_eq!(back.len(), 5);
        let hostile = [StateBatch {
            first_offset: 0,
            last_offset: i64::MAX,
            delivery_state: 0,
            delivery_count: 1,
        }];
        assert_eq!(from_batches(&hostile, 1000).len(), 1000);
    }
}
