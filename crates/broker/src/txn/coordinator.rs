//! The registry of transactional ids and `__transaction_state`.
//!
//! Each transactional id with state lives in one tokio task (`task.rs`) that takes
//! requests from a channel in order and sleeps until its open transaction's timeout;
//! requests about an id without state are answered here, without a task.
//! `__transaction_state` is created on first use with
//! `transaction.state.log.num.partitions` partitions (compacted); at startup it is
//! replayed before the broker serves (a partition that was offline then, when it is
//! first used), and ids with an open or half-finished transaction get their task at
//! once, so a transaction a crash interrupted is finished (prepared) or times out and
//! aborts (open).

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use gregor_protocol::batch;
use gregor_protocol::records::RecordWalker;
use tokio::sync::{mpsc, oneshot};

use super::records::{decode_key, decode_value};
use super::state::{TxnMetadata, TxnState};
use super::task::{Task, RETRY_MIN_MS};
use super::{TxnConfig, TxnError, TxnLinks};
use crate::coordinator_partition::{self, Owner};
use crate::group::coordinator::OFFSETS_TOPIC;
use crate::partition::Partition;
use crate::replica_manager::ReplicaManager;

pub const TXN_TOPIC: &str = "__transaction_state";

pub(super) type Reply<T> = oneshot::Sender<Result<T, TxnError>>;

pub(super) enum Command {
    Init {
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
        tx: Reply<(i64, i16)>,
    },
    Add {
        producer_id: i64,
        epoch: i16,
        partitions: Vec<(String, i32)>,
        verify_only: bool,
        tx: Reply<()>,
    },
    End {
        producer_id: i64,
        epoch: i16,
        commit: bool,
        /// Transactions v2 (EndTxn v5 with `transaction.version` 2): bump the epoch.
        v2: bool,
        tx: Reply<(i64, i16)>,
    },
}

pub(super) type View = Arc<Mutex<HashMap<String, TxnMetadata>>>;
pub(super) type Registry = Arc<Mutex<HashMap<String, mpsc::Sender<Command>>>>;

/// How many times a request follows a transactional id whose task was unloading.
const SEND_ATTEMPTS: usize = 4;

pub struct TxnCoordinator {
    config: TxnConfig,
    /// Running tasks. A task whose id has no state (unknown, or expired) removes itself
    /// (see `Task::try_unload`), so ids a client only names cost nothing.
    txns: Registry,
    /// Every transactional id's metadata as its task last stored it (Describe/List).
    view: View,
    stopping: AtomicBool,
    /// `__transaction_state` partitions already replayed into `view`, with the leader
    /// epoch they were replayed under (led again under a new epoch: replayed again).
    replayed: Mutex<HashMap<i32, i32>>,
    /// Serialises late replays (a partition that comes back online).
    replay_lock: tokio::sync::Mutex<()>,
    /// What this coordinator and its tasks see of the broker. Tasks hold it weakly:
    /// they end once the broker (which owns this coordinator) is gone.
    links: Arc<TxnLinks>,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// Replays one `__transaction_state` partition: the newest record per id wins, a
/// tombstone (`None`) forgets the id.
fn replay_txn_partition(p: &Partition) -> HashMap<String, Option<TxnMetadata>> {
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
            let Some(Ok(id)) = rec.key.map(decode_key) else {
                continue;
            };
            match rec.value.map(|v| decode_value(&id, v)) {
                Some(Ok(m)) => {
                    out.insert(id, Some(m));
                }
                None => {
                    out.insert(id, None);
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "skipping __transaction_state record")
                }
            }
        }
    });
    if let Err(e) = replayed {
        tracing::warn!(partition = p.index, error = %e, "could not replay __transaction_state partition");
    }
    out
}

/// An id with an open or prepared transaction needs its task (timer, markers).
fn needs_task(m: &TxnMetadata) -> bool {
    m.state == TxnState::Ongoing || m.needs_completion()
}

impl TxnCoordinator {
    pub fn new(config: TxnConfig, links: TxnLinks) -> Self {
        Self {
            links: Arc::new(links),
            config,
            txns: Arc::new(Mutex::new(HashMap::new())),
            view: Arc::new(Mutex::new(HashMap::new())),
            stopping: AtomicBool::new(false),
            replayed: Mutex::new(HashMap::new()),
            replay_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// Of `partitions`, those a remote coordinator has not yet added to the transaction
    /// of `(producer_id, epoch)` at this broker's request.
    pub fn not_yet_added_remotely(
        &self,
        producer_id: i64,
        epoch: i16,
        partitions: Vec<(String, i32)>,
    ) -> Vec<(String, i32)> {
        let added = lock(&self.links.remote_added);
        match added.get(&(producer_id, epoch)) {
            Some(known) => partitions
                .into_iter()
                .filter(|p| !known.contains(p))
                .collect(),
            None => partitions,
        }
    }

    /// Records that a remote coordinator added `partitions` to the transaction.
    pub fn added_remotely(&self, producer_id: i64, epoch: i16, partitions: &[(String, i32)]) {
        lock(&self.links.remote_added)
            .entry((producer_id, epoch))
            .or_default()
            .extend(partitions.iter().cloned());
    }

    /// The producer's transaction ended (a marker was written here).
    pub fn forget_remote(&self, producer_id: i64) {
        self.links.forget_remote(producer_id);
    }

    /// Writes a transaction marker to `topic`-`index`, which this broker must lead
    /// (WriteTxnMarkers from another broker's coordinator; see `markers::write_local`).
    pub async fn write_marker(
        &self,
        topic: &str,
        index: i32,
        spec: super::markers::MarkerSpec,
    ) -> Result<(), gregor_protocol::kp::ResponseError> {
        super::markers::write_local(&self.links, topic, index, spec).await
    }

    /// Adds `partitions` to `id`'s open transaction on broker `coordinator` (see
    /// `remote::add_partitions`).
    pub async fn add_partitions_remote(
        &self,
        coordinator: i32,
        id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: Vec<(String, i32)>,
        verify_only: bool,
    ) -> Result<(), TxnError> {
        super::remote::add_partitions(
            &self.links.host,
            coordinator,
            id,
            producer_id,
            epoch,
            partitions,
            verify_only,
        )
        .await
    }

    /// Replays `__transaction_state` (startup, before serving): the newest record per
    /// transactional id wins.
    pub fn load(&self, replicas: &ReplicaManager) {
        let Some(topic) = replicas.topic(TXN_TOPIC) else {
            return;
        };
        let mut view = HashMap::new();
        let mut replayed = lock(&self.replayed);
        for p in topic.partitions.values() {
            view.extend(
                replay_txn_partition(p)
                    .into_iter()
                    .filter_map(|(id, m)| Some((id, m?))),
            );
            replayed.insert(p.index, p.leader_epoch());
        }
        drop(replayed);
        tracing::info!(
            transactional_ids = view.len(),
            "replayed __transaction_state"
        );
        *lock(&self.view) = view;
    }

    /// Gives every transactional id with an open or prepared transaction its task, so
    /// timeouts run and prepared transactions are completed (after a restart).
    pub async fn resume(&self) {
        let pending: Vec<String> = lock(&self.view)
            .iter()
            .filter(|(_, m)| needs_task(m))
            .map(|(id, _)| id.clone())
            .collect();
        for id in pending {
            match self.handle(&id, false).await {
                Ok(_) => {}
                // Another broker leads its partition: that coordinator resumes it.
                Err(TxnError::NotCoordinator) => {}
                Err(e) => {
                    tracing::error!(transactional_id = %id, error = %e, "cannot resume transaction")
                }
            }
        }
    }

    /// `__transaction_state` partitions this broker now leads under an epoch it has not
    /// replayed: their leadership just came here.
    pub fn newly_led(&self) -> Vec<Arc<Partition>> {
        let Some(topic) = self.links.host.replicas.topic(TXN_TOPIC) else {
            return Vec::new();
        };
        let replayed = lock(&self.replayed);
        topic
            .partitions
            .values()
            .filter(|p| p.is_leader() && replayed.get(&p.index) != Some(&p.leader_epoch()))
            .cloned()
            .collect()
    }

    /// Takes over the ids of partitions whose leadership came here (Kafka's
    /// `onElection`): replays them and resumes their open and prepared transactions, so
    /// a transaction whose producer is gone still times out and a prepared one gets its
    /// markers, though no client asks this coordinator about them.
    pub async fn take_over(&self, partitions: Vec<Arc<Partition>>) {
        if self.stopping.load(Ordering::Acquire) {
            return;
        }
        for p in partitions {
            if let Err(e) = self.ensure_replayed(&p).await {
                tracing::warn!(partition = p.index, error = %e, "cannot take over __transaction_state partition");
            }
        }
    }

    /// Stops handing out tasks; running tasks end when their channels close.
    pub fn shutdown(&self) {
        self.stopping.store(true, Ordering::Release);
        lock(&self.txns).clear();
    }

    /// Running transactional-id tasks (tests and diagnostics: it returns to the number
    /// of ids with state once a client stops naming unknown ones).
    pub fn loaded_count(&self) -> usize {
        lock(&self.txns).len()
    }

    /// Creates `__transaction_state` if it does not exist yet.
    async fn ensure_topic(&self) -> Result<(), TxnError> {
        self.links
            .host
            .ensure_internal_topic(
                TXN_TOPIC,
                self.config.state_partitions,
                self.links.host.cluster.txn_replication_factor,
            )
            .await
            .map_err(|_| TxnError::CoordinatorNotAvailable)
    }

    /// The broker that coordinates `id`, when it is not this one.
    pub fn coordinator_elsewhere(&self, id: &str) -> Option<i32> {
        match self.owner(id) {
            Owner::Elsewhere { leader, .. } => Some(leader),
            _ => None,
        }
    }

    fn owner(&self, id: &str) -> Owner {
        coordinator_partition::owner(
            &self.links.host,
            TXN_TOPIC,
            id,
            self.config.state_partitions,
        )
    }

    /// The task owning `id`: running, or spawned for an id with state (or, when
    /// `create`, for a new one). `None` for an unknown id that may not be created: the
    /// caller answers without a task. An id whose `__transaction_state` partition is
    /// offline is COORDINATOR_NOT_AVAILABLE.
    async fn handle(
        &self,
        id: &str,
        create: bool,
    ) -> Result<Option<mpsc::Sender<Command>>, TxnError> {
        if self.stopping.load(Ordering::Acquire) {
            return Err(TxnError::CoordinatorNotAvailable);
        }
        let owner = self.owner(id);
        match &owner {
            Owner::Elsewhere { .. } => return Err(TxnError::NotCoordinator),
            // Led here again under a new epoch: stale tasks go before one is handed out.
            Owner::Online(p) => self.ensure_replayed(p).await?,
            _ => {}
        }
        if let Some(tx) = lock(&self.txns).get(id).filter(|t| !t.is_closed()) {
            return Ok(Some(tx.clone()));
        }
        let partition = match owner {
            Owner::Online(p) => Some(p),
            Owner::NoTopic(_) => None,
            Owner::Elsewhere { .. } => return Err(TxnError::NotCoordinator),
            // In the image but not open here: its log failed to open, or the topic's
            // creation is still being applied. Wait for an application in flight
            // (creating the topic again queues behind it), then look again.
            Owner::Unavailable(_) => {
                self.ensure_topic().await?;
                match self.owner(id) {
                    Owner::Online(p) => Some(p),
                    _ => return Err(TxnError::CoordinatorNotAvailable),
                }
            }
        };
        if let Some(p) = &partition {
            self.ensure_replayed(p).await?;
        }
        if !create && !lock(&self.view).contains_key(id) {
            return Ok(None);
        }
        let partition = match partition {
            Some(p) => p,
            None => {
                self.ensure_topic().await?;
                let Owner::Online(p) = self.owner(id) else {
                    return Err(TxnError::CoordinatorNotAvailable);
                };
                self.ensure_replayed(&p).await?;
                p
            }
        };
        Ok(Some(self.spawn(id, partition)))
    }

    /// The running task of `id`, or a new one from its stored state.
    fn spawn(&self, id: &str, partition: Arc<Partition>) -> mpsc::Sender<Command> {
        let mut txns = lock(&self.txns);
        if let Some(tx) = txns.get(id).filter(|t| !t.is_closed()) {
            return tx.clone();
        }
        let task = Task {
            meta: lock(&self.view).get(id).cloned(),
            id: id.to_string(),
            partition: crate::coordinator_partition::CoordinatorPartition::new(partition),
            links: Arc::downgrade(&self.links),
            view: self.view.clone(),
            registry: self.txns.clone(),
            partitions_changed: self.links.host.replicas.subscribe(),
            max_timeout_ms: self.config.max_timeout_ms,
            id_expiration_ms: self.config.id_expiration_ms,
            retry_at: None,
            retry_delay_ms: RETRY_MIN_MS,
            marked: BTreeSet::new(),
        };
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(task.run(rx));
        txns.insert(id.to_string(), tx.clone());
        tx
    }

    /// Replays a `__transaction_state` partition that was not replayed at startup (it
    /// was offline then, or did not exist) before any of its ids gets a task, then
    /// resumes its open and prepared transactions, as a startup would.
    async fn ensure_replayed(&self, p: &Arc<Partition>) -> Result<(), TxnError> {
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
            // The leadership moved away and back: what is held of its ids is stale.
            let count = coordinator_partition::partition_count(
                &self.links.host,
                TXN_TOPIC,
                self.config.state_partitions,
            );
            let mine = |id: &String| crate::group::records::partition_for(id, count) == p.index;
            lock(&self.txns).retain(|id, _| !mine(id));
            lock(&self.view).retain(|id, _| !mine(id));
        }
        let part = p.clone();
        let found = tokio::task::spawn_blocking(move || replay_txn_partition(&part))
            .await
            .map_err(|e| TxnError::Storage(e.to_string()))?;
        let mut resume = Vec::new();
        {
            let running = lock(&self.txns);
            let mut view = lock(&self.view);
            for (id, m) in found {
                let Some(m) = m else { continue };
                if running.contains_key(&id) || view.contains_key(&id) {
                    continue;
                }
                if needs_task(&m) {
                    resume.push(id.clone());
                }
                view.insert(id, m);
            }
        }
        lock(&self.replayed).insert(p.index, epoch);
        tracing::info!(
            partition = p.index,
            resumed = resume.len(),
            "replayed __transaction_state partition"
        );
        for id in resume {
            self.spawn(&id, p.clone());
        }
        Ok(())
    }

    async fn ask<T>(
        &self,
        id: &str,
        create: bool,
        make: impl FnOnce(Reply<T>) -> Command,
    ) -> Result<T, TxnError> {
        if id.is_empty() {
            return Err(TxnError::EmptyTransactionalId);
        }
        validate_id(id)?;
        let (tx, rx) = oneshot::channel();
        let mut cmd = make(tx);
        let mut attempts = 0;
        while attempts < SEND_ATTEMPTS {
            // An id without state: the answer a task would give, without a task.
            let Some(handle) = self.handle(id, create).await? else {
                return Err(TxnError::InvalidProducerIdMapping);
            };
            // Sent under the registry lock, where an unloading task closes and drains
            // its channel (`task::try_unload`): a command is either drained and served
            // or refused. An async send could take its slot before the close and
            // deliver after the drain, and its answer would never come.
            let sent = {
                let _registry = lock(&self.txns);
                handle.try_send(cmd)
            };
            match sent {
                Ok(()) => return rx.await.map_err(|_| TxnError::CoordinatorNotAvailable)?,
                // The task unloaded itself between the lookup and the send: look again.
                Err(mpsc::error::TrySendError::Closed(back)) => {
                    cmd = back;
                    attempts += 1;
                }
                // A busy id: wait (parked) until its queue has room, then send again.
                Err(mpsc::error::TrySendError::Full(back)) => {
                    cmd = back;
                    if handle.reserve().await.is_err() {
                        attempts += 1;
                    }
                }
            }
        }
        Err(TxnError::CoordinatorNotAvailable)
    }

    /// InitProducerId with a transactional id: `(producer id, epoch)`.
    pub async fn init_producer(
        &self,
        id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
    ) -> Result<(i64, i16), TxnError> {
        self.ask(id, true, |tx| Command::Init {
            timeout_ms,
            expected,
            tx,
        })
        .await
    }

    /// AddPartitionsToTxn (and AddOffsetsToTxn, with the group's offsets partition).
    /// With `verify_only` (KIP-890), only checks they are in the open transaction.
    pub async fn add_partitions(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: Vec<(String, i32)>,
        verify_only: bool,
    ) -> Result<(), TxnError> {
        self.ask(id, false, |tx| Command::Add {
            producer_id,
            epoch,
            partitions,
            verify_only,
            tx,
        })
        .await
    }

    /// EndTxn: answered once every marker is written, with the id's producer id and
    /// epoch after it (bumped under transactions v2, `v2`).
    pub async fn end_txn(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        v2: bool,
    ) -> Result<(i64, i16), TxnError> {
        self.ask(id, false, |tx| Command::End {
            producer_id,
            epoch,
            commit,
            v2,
            tx,
        })
        .await
    }

    /// KIP-890 verification on the produce path: a transactional batch may only go to a
    /// partition its producer's open transaction holds (checked against the stored
    /// state, without a round trip to the id's task). This closes the "hanging
    /// transaction" hole: a late batch can never open a transaction no marker will end.
    pub fn verify_produce(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        topic: &str,
        partition: i32,
    ) -> Result<(), TxnError> {
        if self.coordinator_elsewhere(id).is_some() {
            // The id's coordinator is another broker: its state is not here to check
            // against (Kafka asks it with AddPartitionsToTxn verifyOnly; Gregor does
            // not yet, and accepts the batch as Kafka before 3.6 did).
            return Ok(());
        }
        let view = lock(&self.view);
        let m = view.get(id).ok_or(TxnError::InvalidProducerIdMapping)?;
        m.verify(producer_id, epoch, &(topic.to_string(), partition))
    }

    /// Makes this broker's view of `id` current: when its `__transaction_state`
    /// partition is led here under an epoch not yet replayed (the leadership moved away
    /// and back), that partition is replayed first. Nothing to do for an id coordinated
    /// elsewhere, or already current.
    pub async fn ensure_current(&self, id: &str) -> Result<(), TxnError> {
        if let Owner::Online(p) = self.owner(id) {
            self.ensure_replayed(&p).await?;
        }
        Ok(())
    }

    /// The current metadata of one transactional id (DescribeTransactions).
    pub fn describe(&self, id: &str) -> Option<TxnMetadata> {
        lock(&self.view).get(id).cloned()
    }

    /// Every transactional id's metadata (ListTransactions).
    pub fn list(&self) -> Vec<TxnMetadata> {
        let mut all: Vec<TxnMetadata> = lock(&self.view).values().cloned().collect();
        all.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        all
    }

    /// The `__consumer_offsets` partition a group's transactional offsets go to.
    pub async fn offsets_partition(&self, group: &str) -> Result<(String, i32), TxnError> {
        self.links
            .offsets
            .offsets_partition(group)
            .await
            .map(|p| (OFFSETS_TOPIC.to_string(), p))
            .ok_or(TxnError::CoordinatorNotAvailable)
    }
}

/// A transactional id must fit `TransactionLogKey`'s string (an int16 length): a longer
/// one is refused rather than truncated (two long ids would share one key).
pub fn validate_id(id: &str) -> Result<(), TxnError> {
    if id.len() > i16::MAX as usize {
        return Err(TxnError::TransactionalIdTooLong);
    }
    Ok(())
}
