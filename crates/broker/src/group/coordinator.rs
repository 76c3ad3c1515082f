//! The registry of groups, the task that owns each group, and `__consumer_offsets`.
//!
//! Each group lives in one tokio task that takes commands from a channel and sleeps until
//! the group's next deadline. A command is applied to the [`Group`] state machine, the
//! records it produced are appended to the group's `__consumer_offsets` partition, and
//! only then are the parked answers sent. Groups never share a lock, so a slow or
//! misbehaving group cannot stall another.
//!
//! `__consumer_offsets` is created on first use (as Kafka does), with
//! `offsets.topic.num.partitions` partitions and `cleanup.policy=compact`. At startup it
//! is replayed before the broker serves, and groups are spawned from what it holds when
//! they are first asked for.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use gregor_protocol::batch::{self, NewRecord};
use gregor_protocol::compression::Codec;
use gregor_protocol::records::RecordWalker;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::consumer::{ConsumerHeartbeat, ConsumerHeartbeatResponse};
use super::records::{GroupValue, OffsetValue, RecordKey};
use super::state::{
    apply_if_newer, offsets_due_ms, Effects, Group, GroupState, Idle, Reply, StoredOffset,
};
use super::{
    CommitRequest, CommittedOffset, ConsumerGroupDescription, GroupConfig, GroupDescription,
    GroupError, JoinRequest, JoinResponse, MemberRef, SyncRequest, SyncResponse,
};
use crate::broker::Broker;
use crate::coordinator_partition::{self, Owner};
use crate::partition::Partition;
use crate::replica_manager::ReplicaManager;
use crate::util::now_ms;

pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

type PartitionResults = Result<Vec<Result<(), GroupError>>, GroupError>;

enum Command {
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

type PendingTxnOffsets = HashMap<i64, BTreeMap<(String, i32), StoredOffset>>;

/// What replaying `__consumer_offsets` found for one group, or what an idle group left
/// when its task was unloaded.
#[derive(Default)]
struct Loaded {
    group: Option<GroupValue>,
    offsets: BTreeMap<(String, i32), StoredOffset>,
    /// Offsets of transactions with no marker yet, by producer id.
    pending: PendingTxnOffsets,
}

impl Loaded {
    /// When the sweep must give this group its task again (offset expiry).
    fn due_ms(&self, retention_ms: i64) -> Option<i64> {
        offsets_due_ms(self.group.as_ref(), &self.offsets, retention_ms)
    }
}

type Registry = Arc<Mutex<HashMap<String, mpsc::Sender<Command>>>>;
type Parked = Arc<Mutex<HashMap<String, Loaded>>>;

/// How many times a request follows a group whose task was unloading.
const SEND_ATTEMPTS: usize = 4;

pub struct GroupCoordinator {
    config: Arc<GroupConfig>,
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
    /// `__consumer_offsets` partitions already replayed into `loaded`.
    replayed: Mutex<HashSet<i32>>,
    /// Serialises late replays (a partition that comes back online).
    replay_lock: tokio::sync::Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl GroupCoordinator {
    pub fn new(config: GroupConfig) -> Self {
        Self {
            config: Arc::new(config),
            groups: Arc::new(Mutex::new(HashMap::new())),
            loaded: Arc::new(Mutex::new(HashMap::new())),
            stopping: std::sync::atomic::AtomicBool::new(false),
            txn_groups: Mutex::new(HashMap::new()),
            replayed: Mutex::new(HashSet::new()),
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
            replayed.insert(p.index);
        }
        drop(replayed);
        loaded.retain(|_, l| l.group.is_some() || !l.offsets.is_empty() || !l.pending.is_empty());
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
    async fn ensure_offsets_topic(&self, broker: &Arc<Broker>) -> Result<(), GroupError> {
        broker
            .ensure_internal_topic(OFFSETS_TOPIC, self.config.offsets_partitions)
            .await
            .map_err(|_| GroupError::CoordinatorNotAvailable)
    }

    /// The task owning `group`: running, restored from the replay, or (when `create`)
    /// new. `None` when the group does not exist and may not be created. A group whose
    /// `__consumer_offsets` partition is offline is COORDINATOR_NOT_AVAILABLE (its
    /// offsets may be there), whatever the request.
    async fn handle(
        &self,
        broker: &Arc<Broker>,
        group: &str,
        create: bool,
    ) -> Result<Option<mpsc::Sender<Command>>, GroupError> {
        if self.stopping.load(std::sync::atomic::Ordering::Acquire) {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        if let Some(tx) = lock(&self.groups).get(group).filter(|t| !t.is_closed()) {
            return Ok(Some(tx.clone()));
        }
        let partition = match self.owner(broker, group) {
            Owner::Online(p) => Some(p),
            Owner::NoTopic(_) => None,
            Owner::Unavailable(_) => return Err(GroupError::CoordinatorNotAvailable),
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
                self.ensure_offsets_topic(broker).await?;
                let Owner::Online(p) = self.owner(broker, group) else {
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
            state.restore(l.group, offsets, l.pending, Instant::now());
        }
        let (tx, rx) = mpsc::channel(256);
        let task = Task {
            group: state,
            partition,
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
    pub async fn expire_unloaded(&self, broker: &Arc<Broker>) {
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
            if running.len() >= IN_FLIGHT {
                running.join_next().await;
            }
            let broker = broker.clone();
            running.spawn(async move {
                let groups = &broker.groups;
                if let Err(e) = groups
                    .ask(&broker, &id, false, Command::ExpireOffsets)
                    .await
                {
                    tracing::warn!(group = %id, error = %e, "cannot clean up an unloaded group");
                }
            });
        }
        while running.join_next().await.is_some() {}
    }

    /// The `__consumer_offsets` partition that owns `group` (over the topic's partition
    /// count, never over the partitions that happen to be online).
    fn owner(&self, broker: &Broker, group: &str) -> Owner {
        coordinator_partition::owner(broker, OFFSETS_TOPIC, group, self.config.offsets_partitions)
    }

    /// Replays a `__consumer_offsets` partition that was not replayed at startup (it
    /// was offline then, or did not exist) before any of its groups gets a task, so a
    /// partition that comes back online brings its groups' offsets with it.
    async fn ensure_replayed(&self, p: &Arc<Partition>) -> Result<(), GroupError> {
        if lock(&self.replayed).contains(&p.index) {
            return Ok(());
        }
        let _turn = self.replay_lock.lock().await;
        if lock(&self.replayed).contains(&p.index) {
            return Ok(());
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
            let keep = l.group.is_some() || !l.offsets.is_empty() || !l.pending.is_empty();
            if !keep || running.contains_key(&group) || loaded.contains_key(&group) {
                continue;
            }
            for pid in l.pending.keys() {
                txn_groups.entry(*pid).or_default().insert(group.clone());
            }
            loaded.insert(group, l);
        }
        lock(&self.replayed).insert(p.index);
        Ok(())
    }

    async fn ask<T>(
        &self,
        broker: &Arc<Broker>,
        group: &str,
        create: bool,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<Option<T>, GroupError> {
        let (tx, rx) = oneshot::channel();
        let mut cmd = make(tx);
        for _ in 0..SEND_ATTEMPTS {
            let Some(handle) = self.handle(broker, group, create).await? else {
                return Ok(None);
            };
            match handle.send(cmd).await {
                Ok(()) => {
                    return rx
                        .await
                        .map(Some)
                        .map_err(|_| GroupError::CoordinatorNotAvailable)
                }
                // The task unloaded itself between the lookup and the send: its data
                // is back in `loaded`, look again.
                Err(mpsc::error::SendError(back)) => cmd = back,
            }
        }
        Err(GroupError::CoordinatorNotAvailable)
    }

    pub async fn join(&self, broker: &Arc<Broker>, group: &str, req: JoinRequest) -> JoinResponse {
        let member = req.member_id.clone();
        if let Err(e) = validate_group_id(group) {
            return JoinResponse::error(e, member);
        }
        match self
            .ask(broker, group, true, |tx| Command::Join(req, tx))
            .await
        {
            Ok(Some(r)) => r,
            Ok(None) => JoinResponse::error(GroupError::CoordinatorNotAvailable, member),
            Err(e) => JoinResponse::error(e, member),
        }
    }

    pub async fn sync(&self, broker: &Arc<Broker>, group: &str, req: SyncRequest) -> SyncResponse {
        if let Err(e) = validate_group_id(group) {
            return SyncResponse::error(e);
        }
        match self
            .ask(broker, group, false, |tx| Command::Sync(req, tx))
            .await
        {
            Ok(Some(r)) => r,
            Ok(None) => SyncResponse::error(GroupError::UnknownMemberId),
            Err(e) => SyncResponse::error(e),
        }
    }

    pub async fn heartbeat(
        &self,
        broker: &Arc<Broker>,
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
        self.ask(broker, group, false, cmd)
            .await?
            .unwrap_or(Err(GroupError::UnknownMemberId))
    }

    pub async fn leave(
        &self,
        broker: &Arc<Broker>,
        group: &str,
        members: Vec<MemberRef>,
    ) -> Result<Vec<Result<(), GroupError>>, GroupError> {
        validate_group_id(group)?;
        let n = members.len();
        Ok(self
            .ask(broker, group, false, |tx| Command::Leave(members, tx))
            .await?
            .unwrap_or_else(|| vec![Err(GroupError::UnknownMemberId); n]))
    }

    pub async fn commit(
        &self,
        broker: &Arc<Broker>,
        group: &str,
        req: CommitRequest,
    ) -> PartitionResults {
        validate_group_id(group)?;
        self.ask(broker, group, true, |tx| Command::Commit(req, tx))
            .await?
            .unwrap_or(Err(GroupError::CoordinatorNotAvailable))
    }

    /// Committed offsets. `member` (KIP-848, OffsetFetch v9) is a member id and epoch
    /// to validate against a consumer group.
    pub async fn fetch_offsets(
        &self,
        broker: &Arc<Broker>,
        group: &str,
        wanted: Option<Vec<(String, Vec<i32>)>>,
        member: Option<(String, i32)>,
    ) -> Result<Vec<CommittedOffset>, GroupError> {
        validate_group_id(group)?;
        let fallback = wanted.clone();
        match self
            .ask(broker, group, false, |tx| {
                Command::Fetch(wanted, member, tx)
            })
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
        broker: &Arc<Broker>,
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
            .ask(broker, group, true, |tx| Command::ConsumerHeartbeat(h, tx))
            .await
        {
            Ok(Some(r)) => r,
            Ok(None) => fail(GroupError::CoordinatorNotAvailable, &probe),
            Err(e) => fail(e, &probe),
        }
    }

    pub async fn consumer_describe(
        &self,
        broker: &Arc<Broker>,
        group: &str,
    ) -> Result<Option<ConsumerGroupDescription>, GroupError> {
        validate_group_id(group)?;
        Ok(self
            .ask(broker, group, false, Command::ConsumerDescribe)
            .await?
            .flatten())
    }

    pub async fn describe(
        &self,
        broker: &Arc<Broker>,
        group: &str,
    ) -> Result<Option<GroupDescription>, GroupError> {
        validate_group_id(group)?;
        Ok(self
            .ask(broker, group, false, Command::Describe)
            .await?
            .filter(|d| d.exists))
    }

    /// The `__consumer_offsets` partition of `group` (created on first use), which
    /// AddOffsetsToTxn adds to a transaction.
    pub async fn offsets_partition(
        &self,
        broker: &Arc<Broker>,
        group: &str,
    ) -> Result<i32, GroupError> {
        validate_group_id(group)?;
        self.ensure_offsets_topic(broker).await?;
        match self.owner(broker, group) {
            Owner::Online(p) => Ok(p.index),
            Owner::NoTopic(_) | Owner::Unavailable(_) => Err(GroupError::CoordinatorNotAvailable),
        }
    }

    /// TxnOffsetCommit: the offsets are written in the producer's transaction and held
    /// as pending until its marker.
    pub async fn txn_commit(
        &self,
        broker: &Arc<Broker>,
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
        self.ask(broker, group, true, |tx| Command::TxnCommit {
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
    pub async fn complete_txn(&self, broker: &Arc<Broker>, producer_id: i64, commit: bool) {
        let groups = lock(&self.txn_groups)
            .remove(&producer_id)
            .unwrap_or_default();
        for group in groups {
            let done = self
                .ask(broker, &group, false, |tx| Command::CompleteTxn {
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

    pub async fn delete(&self, broker: &Arc<Broker>, group: &str) -> Result<(), GroupError> {
        validate_group_id(group)?;
        self.ask(broker, group, false, Command::Delete)
            .await?
            .unwrap_or(Err(GroupError::GroupIdNotFound))
    }

    pub async fn delete_offsets(
        &self,
        broker: &Arc<Broker>,
        group: &str,
        wanted: Vec<(String, Vec<i32>)>,
    ) -> PartitionResults {
        validate_group_id(group)?;
        self.ask(broker, group, false, |tx| {
            Command::DeleteOffsets(wanted, tx)
        })
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
    pub async fn topic_deleted(&self, broker: &Arc<Broker>, topic: &str) {
        let mut ids: Vec<String> = lock(&self.groups).keys().cloned().collect();
        ids.extend(lock(&self.loaded).keys().cloned());
        ids.sort();
        ids.dedup();
        for id in ids {
            let t = topic.to_string();
            if let Err(e) = self
                .ask(broker, &id, false, |tx| Command::ForgetTopic(t, tx))
                .await
            {
                tracing::warn!(group = %id, topic, error = %e, "cannot drop offsets of a deleted topic");
            }
        }
    }

    /// Every existing group, described (ListGroups).
    pub async fn list(&self, broker: &Arc<Broker>) -> Vec<GroupDescription> {
        let mut ids: Vec<String> = lock(&self.groups).keys().cloned().collect();
        ids.extend(lock(&self.loaded).keys().cloned());
        ids.sort();
        ids.dedup();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Ok(Some(d)) = self.describe(broker, &id).await {
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

/// The task that owns one group while it has anything live.
struct Task {
    group: Group,
    partition: Arc<Partition>,
    /// The registry it removes itself from, and where it leaves its offsets, when idle.
    groups: Registry,
    loaded: Parked,
}

/// What unloading found.
enum Unload {
    /// The task is gone from the registry (its data, if any, is in `loaded`): stop.
    Done,
    /// Commands were queued before the channel closed: the task stays, on a new
    /// channel, and serves them first.
    Stay(Vec<Command>),
}

impl Task {
    async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        loop {
            let deadline = self.group.next_deadline();
            tokio::select! {
                c = rx.recv() => match c {
                    Some(Command::Unload) => {
                        let fx = self.group.unload();
                        finish(&mut self.group, &self.partition, fx).await;
                        return;
                    }
                    Some(c) => self.apply(c).await,
                    None => return,
                },
                _ = tokio::time::sleep_until(deadline) => {
                    let fx = self.group.on_deadline(Instant::now(), now_ms());
                    finish(&mut self.group, &self.partition, fx).await;
                }
            }
            while let Some(idle) = self.group.idle() {
                match try_unload(&self.groups, &self.loaded, &mut self.group, idle, &mut rx) {
                    Unload::Done => return,
                    Unload::Stay(queued) => {
                        for cmd in queued {
                            self.apply(cmd).await;
                        }
                    }
                }
            }
        }
    }

    async fn apply(&mut self, cmd: Command) {
        let (now, ms) = (Instant::now(), now_ms());
        let (group, partition) = (&mut self.group, &self.partition);
        match cmd {
            Command::Join(req, tx) => {
                let fx = group.join(req, tx, now, ms);
                finish(group, partition, fx).await;
            }
            Command::Sync(req, tx) => {
                let fx = group.sync(req, tx, now, ms);
                finish(group, partition, fx).await;
            }
            Command::Heartbeat {
                member,
                generation,
                tx,
            } => {
                let r = group.heartbeat(
                    &member.member_id,
                    member.group_instance_id.as_deref(),
                    generation,
                    now,
                );
                let _ = tx.send(r);
            }
            Command::Leave(members, tx) => {
                let (results, fx) = group.leave(&members, now, ms);
                finish(group, partition, fx).await;
                let _ = tx.send(results);
            }
            Command::Commit(req, tx) => {
                group.at_log_position(partition.high_watermark());
                let (results, fx) = group.commit(req, now, ms);
                let stored = write(partition, &fx.records).await;
                let _ = tx.send(stored.and(results));
            }
            Command::Fetch(wanted, member, tx) => {
                let r = group
                    .check_fetch(member.as_ref().map(|(m, e)| (m.as_str(), *e)))
                    .map(|()| group.fetch_offsets(wanted.as_deref()));
                let _ = tx.send(r);
            }
            Command::ConsumerHeartbeat(h, tx) => {
                let _ = tx.send(group.consumer_heartbeat(h, now, ms));
            }
            Command::ConsumerDescribe(tx) => {
                let _ = tx.send(group.consumer_describe());
            }
            Command::Unload => {
                // Handled by `run`, which stops the task.
                let fx = group.unload();
                finish(group, partition, fx).await;
            }
            Command::ForgetTopic(topic, tx) => {
                let fx = group.forget_topic(&topic);
                finish(group, partition, fx).await;
                let _ = tx.send(());
            }
            Command::ExpireOffsets(tx) => {
                let fx = group.expire_offsets_now(ms);
                finish(group, partition, fx).await;
                let _ = tx.send(());
            }
            Command::Describe(tx) => {
                let _ = tx.send(group.describe());
            }
            Command::Delete(tx) => {
                let (r, fx) = group.delete(ms);
                let stored = write(partition, &fx.records).await;
                let _ = tx.send(stored.and(r));
            }
            Command::DeleteOffsets(wanted, tx) => {
                let (r, fx) = group.delete_offsets(&wanted);
                let stored = write(partition, &fx.records).await;
                let _ = tx.send(stored.and(r));
            }
            Command::TxnCommit {
                producer_id,
                epoch,
                req,
                tx,
            } => {
                group.at_log_position(partition.high_watermark());
                let (r, fx, pending) = group.txn_commit(req, ms);
                let producer = batch::Producer {
                    id: producer_id,
                    epoch,
                    base_sequence: -1,
                    attributes: batch::ATTR_TRANSACTIONAL,
                };
                let stored = write_as(partition, &fx.records, producer).await;
                if stored.is_ok() {
                    group.add_pending(producer_id, pending);
                }
                let _ = tx.send(stored.and(r));
            }
            Command::CompleteTxn {
                producer_id,
                commit,
                tx,
            } => {
                group.complete_txn(producer_id, commit);
                let _ = tx.send(());
            }
        }
    }
}

/// Removes an idle group's task from the registry. Under the registry lock the channel
/// is closed (a sender still holding it gets its command back and looks the group up
/// again) and whatever was queued before is drained. If nothing was, the group's
/// offsets (for [`Idle::Park`]) go to `loaded` in the same critical section, so a lookup
/// finds either the task or the data, never neither. If something was queued, the task
/// registers a new channel and stays to serve it: no command is lost.
fn try_unload(
    groups: &Registry,
    loaded: &Parked,
    group: &mut Group,
    idle: Idle,
    rx: &mut mpsc::Receiver<Command>,
) -> Unload {
    let mut registry = lock(groups);
    rx.close();
    let mut queued = Vec::new();
    while let Ok(cmd) = rx.try_recv() {
        queued.push(cmd);
    }
    let ours = registry.get(&group.id).is_some_and(mpsc::Sender::is_closed);
    if !queued.is_empty() {
        let (tx, fresh) = mpsc::channel(256);
        *rx = fresh;
        if ours {
            registry.insert(group.id.clone(), tx);
        }
        return Unload::Stay(queued);
    }
    if ours {
        registry.remove(&group.id);
    }
    if idle == Idle::Park {
        let (value, offsets) = group.take_stored();
        lock(loaded).insert(
            group.id.clone(),
            Loaded {
                group: value,
                offsets,
                pending: HashMap::new(),
            },
        );
    }
    Unload::Done
}

/// Persists the effects' records (waiting for an fsync when the flush policy asks for
/// one), then sends the parked answers. If the records cannot be stored, SyncGroup
/// answers become errors and the generation is abandoned, so no member acts on an
/// assignment a restart would forget.
async fn finish(group: &mut Group, partition: &Partition, mut fx: Effects) {
    loop {
        let stored = write(partition, &fx.records).await;
        let failed = stored.is_err();
        for reply in std::mem::take(&mut fx.replies) {
            match reply {
                Reply::Join(tx, resp) => {
                    let _ = tx.send(resp);
                }
                Reply::Sync(tx, resp) if failed && resp.error.is_none() => {
                    let _ = tx.send(SyncResponse::error(GroupError::CoordinatorNotAvailable));
                }
                Reply::Sync(tx, resp) => {
                    let _ = tx.send(resp);
                }
            }
        }
        if !(failed && group.state() == GroupState::Stable) {
            return;
        }
        fx = group.assignment_not_stored(Instant::now(), now_ms());
    }
}

/// Appends records to the group's `__consumer_offsets` partition as one batch.
async fn write(
    partition: &Partition,
    records: &[(RecordKey, Option<Vec<u8>>)],
) -> Result<(), GroupError> {
    write_as(partition, records, batch::Producer::NONE).await
}

/// [`write`] as a producer: transactional offset commits carry the transaction's
/// producer id and epoch, so an older epoch is fenced by the partition. Like a
/// produce, the write waits for an fsync when the partition's flush policy
/// (`flush.messages`, `log.flush.interval.messages`) asks for one, so an answer sent
/// after it never describes a commit a crash could lose.
async fn write_as(
    partition: &Partition,
    records: &[(RecordKey, Option<Vec<u8>>)],
    producer: batch::Producer,
) -> Result<(), GroupError> {
    if records.is_empty() {
        return Ok(());
    }
    let keys: Vec<Vec<u8>> = records.iter().map(|(k, _)| k.encode()).collect();
    let ts = now_ms();
    let recs: Vec<NewRecord<'_>> = records
        .iter()
        .zip(&keys)
        .map(|((_, v), k)| NewRecord {
            key: Some(k),
            value: v.as_deref(),
            timestamp: ts,
            headers: &[],
        })
        .collect();
    let storage = |e: String| {
        tracing::error!(partition = partition.index, error = %e, "cannot write __consumer_offsets");
        GroupError::Storage(e)
    };
    let bytes =
        batch::build_as(0, Codec::None, &recs, producer).map_err(|e| storage(e.to_string()))?;
    let mut scratch = Vec::new();
    let v =
        batch::validate(&bytes, &mut scratch, usize::MAX).map_err(|e| storage(e.to_string()))?;
    let (info, flush_due) = match partition.append(&bytes, &v, None) {
        Ok(appended) => appended,
        Err(gregor_storage::LogError::Producer(_)) => return Err(GroupError::ProducerFenced),
        Err(e) => return Err(storage(e.to_string())),
    };
    if flush_due {
        partition
            .ensure_flushed(info.last_offset + 1)
            .await
            .map_err(|e| storage(e.to_string()))?;
    }
    Ok(())
}

/// Reads one `__consumer_offsets` partition from start to end into `out`. Offsets
/// written inside a transaction wait in `pending` for their producer's marker.
fn replay_partition(
    p: &Partition,
    scratch: &mut Vec<u8>,
    out: &mut HashMap<String, Loaded>,
) -> Result<(), String> {
    let mut failure = None;
    let mut in_txn: HashMap<i64, HashSet<String>> = HashMap::new();
    let mut marker_scratch = Vec::new();
    p.replay(|h, b| {
        if failure.is_some() {
            return;
        }
        if h.is_control() {
            let Some(marker) = batch::control_marker(b, &mut marker_scratch) else {
                return;
            };
            for group in in_txn.remove(&h.producer_id).unwrap_or_default() {
                let Some(l) = out.get_mut(&group) else {
                    continue;
                };
                let Some(pending) = l.pending.remove(&h.producer_id) else {
                    continue;
                };
                if marker == batch::Marker::Commit {
                    for (k, p) in pending {
                        apply_if_newer(&mut l.offsets, k, p);
                    }
                }
            }
            return;
        }
        let data = match batch::records_section(h, b, scratch, 256 << 20) {
            Ok(d) => d,
            Err(e) => {
                failure = Some(e.to_string());
                return;
            }
        };
        let txn = h.is_transactional().then_some(h.producer_id);
        for rec in RecordWalker::new(data, h.record_count) {
            match rec {
                Ok(rec) => apply_record(out, rec.key, rec.value, h.base_offset, txn, &mut in_txn),
                Err(e) => {
                    failure = Some(e.to_string());
                    return;
                }
            }
        }
    })
    .map_err(|e| e.to_string())?;
    failure.map_or(Ok(()), Err)
}

fn apply_record(
    out: &mut HashMap<String, Loaded>,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    appended_at: i64,
    txn: Option<i64>,
    in_txn: &mut HashMap<i64, HashSet<String>>,
) {
    let Some(key) = key else { return };
    let key = match RecordKey::decode(key) {
        Ok(k) => k,
        Err(e) => {
            tracing::warn!(error = %e, "skipping __consumer_offsets record");
            return;
        }
    };
    match key {
        RecordKey::Offset {
            group,
            topic,
            partition,
        } => {
            if let (Some(pid), Some(Ok(v))) = (txn, value.map(OffsetValue::decode)) {
                in_txn.entry(pid).or_default().insert(group.clone());
                let entry = out.entry(group).or_default();
                entry.pending.entry(pid).or_default().insert(
                    (topic, partition),
                    StoredOffset {
                        value: v,
                        appended_at,
                    },
                );
                return;
            }
            let entry = out.entry(group).or_default();
            match value.map(OffsetValue::decode) {
                Some(Ok(v)) => {
                    entry.offsets.insert(
                        (topic, partition),
                        StoredOffset {
                            value: v,
                            appended_at,
                        },
                    );
                }
                None => {
                    entry.offsets.remove(&(topic, partition));
                }
                Some(Err(e)) => tracing::warn!(error = %e, "skipping offset record"),
            }
        }
        RecordKey::Group { group } => match value.map(GroupValue::decode) {
            Some(Ok(v)) => out.entry(group).or_default().group = Some(v),
            None => {
                // A group tombstone ends the group: offsets before it were deleted too.
                out.remove(&group);
            }
            Some(Err(e)) => tracing::warn!(error = %e, "skipping group record"),
        },
    }
}
