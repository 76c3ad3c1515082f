//! The registry of groups and `__consumer_offsets`.
//!
//! Each live group lives in one tokio task (`task.rs`) that takes commands from a
//! channel and sleeps until the group's next deadline. A command is applied to the
//! [`Group`] state machine, the records it produced are appended to the group's
//! `__consumer_offsets` partition, and only then are the parked answers sent. Groups
//! never share a lock, so a slow or misbehaving group cannot stall another. An idle
//! group's task unloads itself, leaving its data in `loaded`.
//!
//! `__consumer_offsets` is created on first use (as Kafka does), with
//! `offsets.topic.num.partitions` partitions and `cleanup.policy=compact`. At startup it
//! is replayed before the broker serves (a partition that was offline then, when it is
//! first used), and groups are spawned from what it holds when they are first asked for.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::consumer::{ConsumerHeartbeat, ConsumerHeartbeatResponse};
use super::replay::{replay_partition, Loaded};
use super::state::Group;
use super::task::Task;
use super::{
    CommitRequest, CommittedOffset, ConsumerGroupDescription, GroupConfig, GroupDescription,
    GroupError, JoinRequest, JoinResponse, MemberRef, SyncRequest, SyncResponse,
};
use crate::coordinator_partition::{self, Owner};
use crate::host::Host;
use crate::partition::Partition;
use crate::replica_manager::ReplicaManager;
use crate::util::now_ms;

pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

pub(super) type PartitionResults = Result<Vec<Result<(), GroupError>>, GroupError>;

pub(super) enum Command {
    Join(JoinRequest, oneshot::Sender<JoinResponse>),
    Sync(SyncRequest, oneshot::Sender<SyncResponse>),
    Heartbeat {
        member: MemberRef,
        generation: i32,
        tx: oneshot::Sender<Result<(), GroupError>>,
    },
    Leave(Vec<MemberRef>, oneshot::Sender<Vec<Result<(), GroupError>>>),
    Commit(CommitRequest, oneshot::Sender<PartitionResults>),
    Fetch(
        Option<Vec<(String, Vec<i32>)>>,
        Option<(String, i32)>,
        oneshot::Sender<Result<Vec<CommittedOffset>, GroupError>>,
    ),
    ConsumerHeartbeat(
        ConsumerHeartbeat,
        oneshot::Sender<ConsumerHeartbeatResponse>,
    ),
    ConsumerDescribe(oneshot::Sender<Option<ConsumerGroupDescription>>),
    ForgetTopic(String, oneshot::Sender<()>),
    /// Offset expiry now (the sweep of unloaded groups whose offsets fell due).
    ExpireOffsets(oneshot::Sender<()>),
    Unload,
    Describe(oneshot::Sender<GroupDescription>),
    Delete(oneshot::Sender<Result<(), GroupError>>),
    DeleteOffsets(Vec<(String, Vec<i32>)>, oneshot::Sender<PartitionResults>),
    TxnCommit {
        producer_id: i64,
        epoch: i16,
        req: CommitRequest,
        tx: oneshot::Sender<PartitionResults>,
    },
    CompleteTxn {
        producer_id: i64,
        commit: bool,
        tx: oneshot::Sender<()>,
    },
}

pub(super) type Registry = Arc<Mutex<HashMap<String, mpsc::Sender<Command>>>>;
pub(super) type Parked = Arc<Mutex<HashMap<String, Loaded>>>;

/// How many times a request follows a group whose task was unloading.
const SEND_ATTEMPTS: usize = 4;

pub struct GroupCoordinator {
    config: Arc<GroupConfig>,
    /// What this coordinator sees of the broker (see `host`).
    host: Arc<Host>,
    /// Groups with a running task: those with members, a rebalance, pending member ids
    /// or open transactions' offsets. An idle group's task unloads itself (see
    /// [`try_unload`]), so the number of tasks follows live groups, not every group id
    /// a client has named.
    groups: Registry,
    /// Groups without a task: replayed at startup and not asked for yet, or unloaded
    /// when idle with committed offsets (their data only; bounded by the offsets
    /// `__consumer_offsets` holds, which expire under `offsets.retention.minutes`).
    loaded: Parked,
    /// Set once the broker is stopping: no group gets a new task.
    stopping: std::sync::atomic::AtomicBool,
    /// Producer id → groups holding offsets of its open transaction.
    txn_groups: Mutex<HashMap<i64, HashSet<String>>>,
    /// `__consumer_offsets` partitions already replayed into `loaded`, with the leader
    /// epoch they were replayed under: a partition this broker leads again under a new
    /// epoch is replayed again (its groups moved away and back; what is held is stale).
    replayed: Mutex<HashMap<i32, i32>>,
    /// Serialises late replays (a partition that comes back online).
    replay_lock: tokio::sync::Mutex<()>,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl GroupCoordinator {
    pub fn new(config: GroupConfig, host: Arc<Host>) -> Self {
        Self {
            config: Arc::new(config),
            host,
            groups: Arc::new(Mutex::new(HashMap::new())),
            loaded: Arc::new(Mutex::new(HashMap::new())),
            stopping: std::sync::atomic::AtomicBool::new(false),
            txn_groups: Mutex::new(HashMap::new()),
            replayed: Mutex::new(HashMap::new()),
            replay_lock: tokio::sync::Mutex::new(()),
        }
    }

    pub fn config(&self) -> &GroupConfig {
        &self.config
    }

    /// Replays every `__consumer_offsets` partition (startup, before serving). The
    /// newest record per key wins; tombstones delete. Unreadable records are skipped
    /// with a warning rather than stopping the broker.
    pub fn load(&self, replicas: &ReplicaManager) {
        let Some(topic) = replicas.topic(OFFSETS_TOPIC) else {
            return;
        };
        let mut loaded: HashMap<String, Loaded> = HashMap::new();
        let mut scratch = Vec::new();
        let mut replayed = lock(&self.replayed);
        for p in topic.partitions.values() {
            if let Err(e) = replay_partition(p, &mut scratch, &mut loaded) {
                tracing::warn!(partition = p.index, error = %e, "could not replay __consumer_offsets partition");
            }
            replayed.insert(p.index, p.leader_epoch());
        }
        drop(replayed);
        loaded.retain(|_, l| l.has_data());
        let mut txn_groups = lock(&self.txn_groups);
        for (group, l) in &loaded {
            for pid in l.pending.keys() {
                txn_groups.entry(*pid).or_default().insert(group.clone());
            }
        }
        drop(txn_groups);
        tracing::info!(groups = loaded.len(), "replayed __consumer_offsets");
        *lock(&self.loaded) = loaded;
    }

    /// Creates `__consumer_offsets` if it does not exist yet.
    async fn ensure_offsets_topic(&self) -> Result<(), GroupError> {
        self.host
            .ensure_internal_topic(
                OFFSETS_TOPIC,
                self.config.offsets_partitions,
                self.host.cluster.offsets_replication_factor,
            )
            .await
            .map_err(|_| GroupError::CoordinatorNotAvailable)
    }

    /// The task owning `group`: running, restored from the replay, or (when `create`)
    /// new. `None` when the group does not exist and may not be created. A group whose
    /// `__consumer_offsets` partition is offline is COORDINATOR_NOT_AVAILABLE (its
    /// offsets may be there), whatever the request.
    async fn handle(
        &self,
        group: &str,
        create: bool,
    ) -> Result<Option<mpsc::Sender<Command>>, GroupError> {
        if self.stopping.load(std::sync::atomic::Ordering::Acquire) {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        let owner = self.owner(group);
        match &owner {
            Owner::Elsewhere { .. } => return Err(GroupError::NotCoordinator),
            // Led here again under a new epoch: stale tasks go before one is handed out.
            Owner::Online(p) => self.ensure_replayed(p).await?,
            _ => {}
        }
        if let Some(tx) = lock(&self.groups).get(group).filter(|t| !t.is_closed()) {
            return Ok(Some(tx.clone()));
        }
        let partition = match owner {
            Owner::Online(p) => Some(p),
            Owner::NoTopic(_) => None,
            Owner::Elsewhere { .. } => return Err(GroupError::NotCoordinator),
            // In the image but not open here: either its log failed to open, or the
            // topic's creation is still being applied. Wait for any application in
            // flight (creating the topic again queues behind it), then look again.
            Owner::Unavailable(_) => {
                self.ensure_offsets_topic().await?;
                match self.owner(group) {
                    Owner::Online(p) => Some(p),
                    Owner::Elsewhere { .. } => return Err(GroupError::NotCoordinator),
                    _ => return Err(GroupError::CoordinatorNotAvailable),
                }
            }
        };
        if let Some(p) = &partition {
            self.ensure_replayed(p).await?;
        }
        // Both maps under the registry lock: a task moves its data to `loaded` (and a
        // new task takes it back) inside that lock, so the group is always in one of
        // them; two separate looks could miss it between them.
        let known = {
            let groups = lock(&self.groups);
            if let Some(tx) = groups.get(group).filter(|t| !t.is_closed()) {
                return Ok(Some(tx.clone()));
            }
            lock(&self.loaded).contains_key(group)
        };
        if !known && !create {
            return Ok(None);
        }
        let partition = match partition {
            Some(p) => p,
            None => {
                self.ensure_offsets_topic().await?;
                let Owner::Online(p) = self.owner(group) else {
                    return Err(GroupError::CoordinatorNotAvailable);
                };
                self.ensure_replayed(&p).await?;
                p
            }
        };
        let mut groups = lock(&self.groups);
        if let Some(tx) = groups.get(group).filter(|t| !t.is_closed()) {
            return Ok(Some(tx.clone()));
        }
        let mut state = Group::new(
            group.to_string(),
            self.config.clone(),
            Instant::now(),
            now_ms(),
        );
        if let Some(l) = lock(&self.loaded).remove(group) {
            let offsets = l.offsets.into_iter().map(|((t, p), v)| (t, p, v)).collect();
            state.restore(l.group, offsets, l.pending, l.consumer, Instant::now());
        }
        let (tx, rx) = mpsc::channel(256);
        let task = Task {
            group: state,
            partition: crate::coordinator_partition::CoordinatorPartition::new(partition),
            groups: self.groups.clone(),
            loaded: self.loaded.clone(),
        };
        tokio::spawn(task.run(rx));
        groups.insert(group.to_string(), tx.clone());
        Ok(Some(tx))
    }

    /// Running group tasks (tests and diagnostics: it follows the live groups, not
    /// every group id a client has named).
    pub fn loaded_count(&self) -> usize {
        lock(&self.groups).len()
    }

    /// Groups kept as data only (idle, with committed offsets).
    pub fn parked_count(&self) -> usize {
        lock(&self.loaded).len()
    }

    /// The periodic cleanup of groups without a task: each one whose first offset is
    /// due (or that has no offsets left) gets its task back for one cleanup pass, after
    /// which it unloads again, or is forgotten once nothing is left. Run every
    /// `offsets.retention.check.interval.ms`; a few groups at a time.
    pub async fn expire_unloaded(self: &Arc<Self>) {
        const IN_FLIGHT: usize = 32;
        let now = now_ms();
        let retention = self.config.offsets_retention_ms;
        let due: Vec<String> = lock(&self.loaded)
            .iter()
            .filter(|(_, l)| l.due_ms(retention).is_some_and(|at| at <= now))
            .map(|(id, _)| id.clone())
            .collect();
        let mut running = tokio::task::JoinSet::new();
        for id in due {
            if self.stopping.load(std::sync::atomic::Ordering::Acquire) {
                break;
            }
            if running.len() >= IN_FLIGHT {
                running.join_next().await;
            }
            let groups = self.clone();
            running.spawn(async move {
                if let Err(e) = groups.ask(&id, false, Command::ExpireOffsets).await {
                    tracing::warn!(group = %id, error = %e, "cannot clean up an unloaded group");
                }
            });
        }
        while running.join_next().await.is_some() {}
    }

    /// The `__consumer_offsets` partition that owns `group` (over the topic's partition
    /// count, never over the partitions that happen to be online).
    fn owner(&self, group: &str) -> Owner {
        coordinator_partition::owner(
            &self.host,
            OFFSETS_TOPIC,
            group,
            self.config.offsets_partitions,
        )
    }

    /// Replays a `__consumer_offsets` partition that was not replayed at startup (it
    /// was offline then, or did not exist) before any of its groups gets a task, so a
    /// partition that comes back online brings its groups' offsets with it.
    async fn ensure_replayed(&self, p: &Arc<Partition>) -> Result<(), GroupError> {
        let epoch = p.leader_epoch();
        if lock(&self.replayed).get(&p.index) == Some(&epoch) {
            return Ok(());
        }
        let _turn = self.replay_lock.lock().await;
        let previous = lock(&self.replayed).get(&p.index).copied();
        if previous == Some(epoch) {
            return Ok(());
        }
        if previous.is_some() {
            self.forget_partition(p.index);
        }
        let part = p.clone();
        let out = tokio::task::spawn_blocking(move || {
            let mut out = HashMap::new();
            // As at startup: what could be read is served, the rest is skipped.
            if let Err(e) = replay_partition(&part, &mut Vec::new(), &mut out) {
                tracing::warn!(partition = part.index, error = %e, "could not replay __consumer_offsets partition");
            }
            out
        })
        .await
        .map_err(|e| GroupError::Storage(e.to_string()))?;
        let running = lock(&self.groups);
        let mut loaded = lock(&self.loaded);
        let mut txn_groups = lock(&self.txn_groups);
        for (group, l) in out {
            let keep = l.has_data();
            if !keep || running.contains_key(&group) || loaded.contains_key(&group) {
                continue;
            }
            for pid in l.pending.keys() {
                txn_groups.entry(*pid).or_default().insert(group.clone());
            }
            loaded.insert(group, l);
        }
        lock(&self.replayed).insert(p.index, epoch);
        Ok(())
    }

    /// Drops what this broker holds of the groups of `__consumer_offsets` partition
    /// `index` (running tasks and parked data): the partition's leadership moved away
    /// and back, so the log is the truth again.
    fn forget_partition(&self, index: i32) {
        let count = coordinator_partition::partition_count(
            &self.host,
            OFFSETS_TOPIC,
            self.config.offsets_partitions,
        );
        let mine = |g: &String| super::records::partition_for(g, count) == index;
        lock(&self.groups).retain(|g, _| !mine(g));
        lock(&self.loaded).retain(|g, _| !mine(g));
        tracing::info!(
            partition = index,
            "dropped stale group state: the partition's leadership changed"
        );
    }

    async fn ask<T>(
        &self,
        group: &str,
        create: bool,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<Option<T>, GroupError> {
        let (tx, rx) = oneshot::channel();
        let mut cmd = make(tx);
        let mut attempts = 0;
        while attempts < SEND_ATTEMPTS {
            let Some(handle) = self.handle(group, create).await? else {
                return Ok(None);
            };
            // The send happens under the registry lock, where an unloading task closes
            // its channel and drains what was queued (`task::try_unload`): a command is
            // either drained and served, or refused and looked up again. An async send
            // could take its slot before the close and deliver after the drain, into a
            // channel about to be dropped, and its answer would never come.
            let sent = {
                let _registry = lock(&self.groups);
                handle.try_send(cmd)
            };
            match sent {
                Ok(()) => {
                    return rx
                        .await
                        .map(Some)
                        .map_err(|_| GroupError::CoordinatorNotAvailable)
                }
                // The task unloaded itself between the lookup and the send: its data
                // is back in `loaded`, look again.
                Err(mpsc::error::TrySendError::Closed(back)) => {
                    cmd = back;
                    attempts += 1;
                }
                // A busy group: wait (parked, not polling) until its queue has room,
                // give the slot back and send under the lock again.
                Err(mpsc::error::TrySendError::Full(back)) => {
                    cmd = back;
                    if handle.reserve().await.is_err() {
                        attempts += 1;
                    }
                }
            }
        }
        Err(GroupError::CoordinatorNotAvailable)
    }

    pub async fn join(&self, group: &str, req: JoinRequest) -> JoinResponse {
        let member = req.member_id.clone();
        if let Err(e) = validate_group_id(group) {
            return JoinResponse::error(e, member);
        }
        match self.ask(group, true, |tx| Command::Join(req, tx)).await {
            Ok(Some(r)) => r,
            Ok(None) => JoinResponse::error(GroupError::CoordinatorNotAvailable, member),
            Err(e) => JoinResponse::error(e, member),
        }
    }

    pub async fn sync(&self, group: &str, req: SyncRequest) -> SyncResponse {
        if let Err(e) = validate_group_id(group) {
            return SyncResponse::error(e);
        }
        match self.ask(group, false, |tx| Command::Sync(req, tx)).await {
            Ok(Some(r)) => r,
            Ok(None) => SyncResponse::error(GroupError::UnknownMemberId),
            Err(e) => SyncResponse::error(e),
        }
    }

    pub async fn heartbeat(
        &self,
        group: &str,
        member: MemberRef,
        generation: i32,
    ) -> Result<(), GroupError> {
        validate_group_id(group)?;
        let cmd = |tx| Command::Heartbeat {
            member,
            generation,
            tx,
        };
        self.ask(group, false, cmd)
            .await?
            .unwrap_or(Err(GroupError::UnknownMemberId))
    }

    pub async fn leave(
        &self,
        group: &str,
        members: Vec<MemberRef>,
    ) -> Result<Vec<Result<(), GroupError>>, GroupError> {
        validate_group_id(group)?;
        let n = members.len();
        Ok(self
            .ask(group, false, |tx| Command::Leave(members, tx))
            .await?
            .unwrap_or_else(|| vec![Err(GroupError::UnknownMemberId); n]))
    }

    pub async fn commit(&self, group: &str, req: CommitRequest) -> PartitionResults {
        validate_group_id(group)?;
        self.ask(group, true, |tx| Command::Commit(req, tx))
            .await?
            .unwrap_or(Err(GroupError::CoordinatorNotAvailable))
    }

    /// Committed offsets. `member` (KIP-848, OffsetFetch v9) is a member id and epoch
    /// to validate against a consumer group.
    pub async fn fetch_offsets(
        &self,
        group: &str,
        wanted: Option<Vec<(String, Vec<i32>)>>,
        member: Option<(String, i32)>,
    ) -> Result<Vec<CommittedOffset>, GroupError> {
        validate_group_id(group)?;
        let fallback = wanted.clone();
        match self
            .ask(group, false, |tx| Command::Fetch(wanted, member, tx))
            .await?
        {
            Some(r) => r,
            // No such group: no offsets, -1 for every requested partition.
            None => Ok(fallback
                .unwrap_or_default()
                .into_iter()
                .flat_map(|(topic, ps)| {
                    ps.into_iter().map(move |partition| CommittedOffset {
                        topic: topic.clone(),
                        partition,
                        offset: -1,
                        leader_epoch: -1,
                        metadata: String::new(),
                        unstable: false,
                    })
                })
                .collect()),
        }
    }

    pub async fn consumer_heartbeat(
        &self,
        group: &str,
        h: ConsumerHeartbeat,
    ) -> ConsumerHeartbeatResponse {
        let fail = |e: GroupError, h: &ConsumerHeartbeat| ConsumerHeartbeatResponse {
            error: Some(e),
            member_id: h.member_id.clone(),
            member_epoch: h.member_epoch,
            ..Default::default()
        };
        if group.is_empty() {
            let mut r = fail(GroupError::InvalidRequest, &h);
            r.error_message = Some("GroupId can't be empty.".into());
            return r;
        }
        if let Err(e) = validate_group_id(group) {
            return fail(e, &h);
        }
        let probe = h.clone();
        match self
            .ask(group, true, |tx| Command::ConsumerHeartbeat(h, tx))
            .await
        {
            Ok(Some(r)) => r,
            Ok(None) => fail(GroupError::CoordinatorNotAvailable, &probe),
            Err(e) => fail(e, &probe),
        }
    }

    pub async fn consumer_describe(
        &self,
        group: &str,
    ) -> Result<Option<ConsumerGroupDescription>, GroupError> {
        validate_group_id(group)?;
        Ok(self
            .ask(group, false, Command::ConsumerDescribe)
            .await?
            .flatten())
    }

    pub async fn describe(&self, group: &str) -> Result<Option<GroupDescription>, GroupError> {
        validate_group_id(group)?;
        Ok(self
            .ask(group, false, Command::Describe)
            .await?
            .filter(|d| d.exists))
    }

    /// The `__consumer_offsets` partition of `group` (created on first use), which
    /// AddOffsetsToTxn adds to a transaction.
    pub async fn offsets_partition(&self, group: &str) -> Result<i32, GroupError> {
        validate_group_id(group)?;
        self.ensure_offsets_topic().await?;
        // Only the index: the transaction coordinator that asks is often not the
        // group's coordinator (Kafka: `partitionFor(groupId)`); the markers reach the
        // partition's leader wherever it is.
        match self.owner(group) {
            Owner::Online(p) => Ok(p.index),
            Owner::NoTopic(index) | Owner::Unavailable(index) | Owner::Elsewhere { index, .. } => {
                Ok(index)
            }
        }
    }

    /// TxnOffsetCommit: the offsets are written in the producer's transaction and held
    /// as pending until its marker.
    pub async fn txn_commit(
        &self,
        group: &str,
        producer_id: i64,
        epoch: i16,
        req: CommitRequest,
    ) -> PartitionResults {
        validate_group_id(group)?;
        lock(&self.txn_groups)
            .entry(producer_id)
            .or_default()
            .insert(group.to_string());
        self.ask(group, true, |tx| Command::TxnCommit {
            producer_id,
            epoch,
            req,
            tx,
        })
        .await?
        .unwrap_or(Err(GroupError::CoordinatorNotAvailable))
    }

    /// A transaction's marker was written to `__consumer_offsets`: every group holding
    /// its offsets applies (commit) or drops (abort) them before this returns.
    pub async fn complete_txn(&self, producer_id: i64, commit: bool) {
        let groups = lock(&self.txn_groups)
            .remove(&producer_id)
            .unwrap_or_default();
        for group in groups {
            let done = self
                .ask(&group, false, |tx| Command::CompleteTxn {
                    producer_id,
                    commit,
                    tx,
                })
                .await;
            if let Err(e) = done {
                tracing::warn!(%group, producer_id, error = %e, "could not complete transactional offsets");
            }
        }
    }

    pub async fn delete(&self, group: &str) -> Result<(), GroupError> {
        validate_group_id(group)?;
        self.ask(group, false, Command::Delete)
            .await?
            .unwrap_or(Err(GroupError::GroupIdNotFound))
    }

    pub async fn delete_offsets(
        &self,
        group: &str,
        wanted: Vec<(String, Vec<i32>)>,
    ) -> PartitionResults {
        validate_group_id(group)?;
        self.ask(group, false, |tx| Command::DeleteOffsets(wanted, tx))
            .await?
            .unwrap_or(Err(GroupError::GroupIdNotFound))
    }

    /// The broker is stopping: every group answers its parked requests and its task
    /// ends. Later requests get COORDINATOR_NOT_AVAILABLE.
    pub async fn shutdown(&self) {
        self.stopping
            .store(true, std::sync::atomic::Ordering::Release);
        let handles: Vec<mpsc::Sender<Command>> =
            lock(&self.groups).drain().map(|(_, h)| h).collect();
        for h in handles {
            let _ = h.send(Command::Unload).await;
        }
    }

    /// A deleted topic's committed offsets are removed from every group.
    pub async fn topic_deleted(&self, topic: &str) {
        let mut ids: Vec<String> = lock(&self.groups).keys().cloned().collect();
        ids.extend(lock(&self.loaded).keys().cloned());
        ids.sort();
        ids.dedup();
        for id in ids {
            let t = topic.to_string();
            if let Err(e) = self.ask(&id, false, |tx| Command::ForgetTopic(t, tx)).await {
                tracing::warn!(group = %id, topic, error = %e, "cannot drop offsets of a deleted topic");
            }
        }
    }

    /// Every existing group, described (ListGroups).
    pub async fn list(&self) -> Vec<GroupDescription> {
        let mut ids: Vec<String> = lock(&self.groups).keys().cloned().collect();
        ids.extend(lock(&self.loaded).keys().cloned());
        ids.sort();
        ids.dedup();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Ok(Some(d)) = self.describe(&id).await {
                out.push(d);
            }
        }
        out
    }
}

/// An empty group id, or one too long for the `__consumer_offsets` key schema (an
/// int16-length string), is INVALID_GROUP_ID.
fn validate_group_id(group: &str) -> Result<(), GroupError> {
    if group.is_empty() || group.len() > i16::MAX as usize {
        return Err(GroupError::InvalidGroupId);
    }
    Ok(())
}

/// The transaction coordinator's view of this coordinator (see `crate::txn::TxnOffsets`).
impl crate::txn::TxnOffsets for GroupCoordinator {
    fn offsets_partition<'a>(&'a self, group: &'a str) -> crate::txn::BoxFuture<'a, Option<i32>> {
        Box::pin(async move { GroupCoordinator::offsets_partition(self, group).await.ok() })
    }

    fn complete_txn(&self, producer_id: i64, commit: bool) -> crate::txn::BoxFuture<'_, ()> {
        Box::pin(GroupCoordinator::complete_txn(self, producer_id, commit))
    }
}
