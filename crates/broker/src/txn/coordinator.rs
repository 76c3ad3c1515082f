//! The registry of transactional ids, the task that owns each one, and
//! `__transaction_state`.
//!
//! Each transactional id lives in one tokio task that takes requests from a channel in
//! order and sleeps until its open transaction's timeout. `__transaction_state` is
//! created on first use with `transaction.state.log.num.partitions` partitions
//! (compacted); at startup it is replayed before the broker serves, and ids with an
//! open or half-finished transaction get their task at once, so a transaction a crash
//! interrupted is finished (prepared) or times out and aborts (open).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use gregor_protocol::batch::{self, Marker, NewRecord};
use gregor_protocol::compression::Codec;
use gregor_protocol::records::RecordWalker;
use gregor_storage::LogError;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::records::{decode_key, decode_value, encode_key, encode_value};
use super::state::{EndStep, InitStep, TxnMetadata, TxnState};
use super::{TxnConfig, TxnError};
use crate::broker::Broker;
use crate::coordinator_partition::{self, Owner};
use crate::error::ReplicaError;
use crate::group::coordinator::OFFSETS_TOPIC;
use crate::partition::Partition;
use crate::replica_manager::ReplicaManager;
use crate::util::now_ms;

pub const TXN_TOPIC: &str = "__transaction_state";

/// A failed marker write is tried again after this, doubling up to [`RETRY_MAX_MS`]
/// (and at once when a partition comes online).
const RETRY_MIN_MS: u64 = 100;
const RETRY_MAX_MS: u64 = 30_000;

type Reply<T> = oneshot::Sender<Result<T, TxnError>>;

enum Command {
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
        tx: Reply<()>,
    },
}

type View = Arc<Mutex<HashMap<String, TxnMetadata>>>;
type Registry = Arc<Mutex<HashMap<String, mpsc::Sender<Command>>>>;

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
    /// `__transaction_state` partitions already replayed into `view`.
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
    pub fn new(config: TxnConfig) -> Self {
        Self {
            config,
            txns: Arc::new(Mutex::new(HashMap::new())),
            view: Arc::new(Mutex::new(HashMap::new())),
            stopping: AtomicBool::new(false),
            replayed: Mutex::new(HashSet::new()),
            replay_lock: tokio::sync::Mutex::new(()),
        }
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
            replayed.insert(p.index);
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
    pub async fn resume(&self, broker: &Arc<Broker>) {
        let pending: Vec<String> = lock(&self.view)
            .iter()
            .filter(|(_, m)| needs_task(m))
            .map(|(id, _)| id.clone())
            .collect();
        for id in pending {
            if let Err(e) = self.handle(broker, &id, false).await {
                tracing::error!(transactional_id = %id, error = %e, "cannot resume transaction");
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
    async fn ensure_topic(&self, broker: &Arc<Broker>) -> Result<(), TxnError> {
        broker
            .ensure_internal_topic(TXN_TOPIC, self.config.state_partitions)
            .await
            .map_err(|_| TxnError::CoordinatorNotAvailable)
    }

    fn owner(&self, broker: &Broker, id: &str) -> Owner {
        coordinator_partition::owner(broker, TXN_TOPIC, id, self.config.state_partitions)
    }

    /// The task owning `id`: running, or spawned for an id with state (or, when
    /// `create`, for a new one). `None` for an unknown id that may not be created: the
    /// caller answers without a task. An id whose `__transaction_state` partition is
    /// offline is COORDINATOR_NOT_AVAILABLE.
    async fn handle(
        &self,
        broker: &Arc<Broker>,
        id: &str,
        create: bool,
    ) -> Result<Option<mpsc::Sender<Command>>, TxnError> {
        if self.stopping.load(Ordering::Acquire) {
            return Err(TxnError::CoordinatorNotAvailable);
        }
        if let Some(tx) = lock(&self.txns).get(id).filter(|t| !t.is_closed()) {
            return Ok(Some(tx.clone()));
        }
        let partition = match self.owner(broker, id) {
            Owner::Online(p) => Some(p),
            Owner::NoTopic(_) => None,
            Owner::Unavailable(_) => return Err(TxnError::CoordinatorNotAvailable),
        };
        if let Some(p) = &partition {
            self.ensure_replayed(broker, p).await?;
        }
        if !create && !lock(&self.view).contains_key(id) {
            return Ok(None);
        }
        let partition = match partition {
            Some(p) => p,
            None => {
                self.ensure_topic(broker).await?;
                let Owner::Online(p) = self.owner(broker, id) else {
                    return Err(TxnError::CoordinatorNotAvailable);
                };
                self.ensure_replayed(broker, &p).await?;
                p
            }
        };
        Ok(Some(self.spawn(broker, id, partition)))
    }

    /// The running task of `id`, or a new one from its stored state.
    fn spawn(
        &self,
        broker: &Arc<Broker>,
        id: &str,
        partition: Arc<Partition>,
    ) -> mpsc::Sender<Command> {
        let mut txns = lock(&self.txns);
        if let Some(tx) = txns.get(id).filter(|t| !t.is_closed()) {
            return tx.clone();
        }
        let task = Task {
            meta: lock(&self.view).get(id).cloned(),
            id: id.to_string(),
            partition,
            broker: Arc::downgrade(broker),
            view: self.view.clone(),
            registry: self.txns.clone(),
            partitions_changed: broker.replicas.subscribe(),
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
    async fn ensure_replayed(
        &self,
        broker: &Arc<Broker>,
        p: &Arc<Partition>,
    ) -> Result<(), TxnError> {
        if lock(&self.replayed).contains(&p.index) {
            return Ok(());
        }
        let _turn = self.replay_lock.lock().await;
        if lock(&self.replayed).contains(&p.index) {
            return Ok(());
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
        lock(&self.replayed).insert(p.index);
        tracing::info!(
            partition = p.index,
            resumed = resume.len(),
            "replayed __transaction_state partition"
        );
        for id in resume {
            self.spawn(broker, &id, p.clone());
        }
        Ok(())
    }

    async fn ask<T>(
        &self,
        broker: &Arc<Broker>,
        id: &str,
        create: bool,
        make: impl FnOnce(Reply<T>) -> Command,
    ) -> Result<T, TxnError> {
        if id.is_empty() {
            return Err(TxnError::InvalidProducerIdMapping);
        }
        validate_id(id)?;
        let (tx, rx) = oneshot::channel();
        let mut cmd = make(tx);
        for _ in 0..SEND_ATTEMPTS {
            // An id without state: the answer a task would give, without a task.
            let Some(handle) = self.handle(broker, id, create).await? else {
                return Err(TxnError::InvalidProducerIdMapping);
            };
            match handle.send(cmd).await {
                Ok(()) => return rx.await.map_err(|_| TxnError::CoordinatorNotAvailable)?,
                // The task unloaded itself between the lookup and the send: look again.
                Err(mpsc::error::SendError(back)) => cmd = back,
            }
        }
        Err(TxnError::CoordinatorNotAvailable)
    }

    /// InitProducerId with a transactional id: `(producer id, epoch)`.
    pub async fn init_producer(
        &self,
        broker: &Arc<Broker>,
        id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
    ) -> Result<(i64, i16), TxnError> {
        self.ask(broker, id, true, |tx| Command::Init {
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
        broker: &Arc<Broker>,
        id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: Vec<(String, i32)>,
        verify_only: bool,
    ) -> Result<(), TxnError> {
        self.ask(broker, id, false, |tx| Command::Add {
            producer_id,
            epoch,
            partitions,
            verify_only,
            tx,
        })
        .await
    }

    /// EndTxn: answered once every marker is written.
    pub async fn end_txn(
        &self,
        broker: &Arc<Broker>,
        id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
    ) -> Result<(), TxnError> {
        self.ask(broker, id, false, |tx| Command::End {
            producer_id,
            epoch,
            commit,
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
        let view = lock(&self.view);
        let m = view.get(id).ok_or(TxnError::InvalidProducerIdMapping)?;
        m.verify(producer_id, epoch, &(topic.to_string(), partition))
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
    pub async fn offsets_partition(
        &self,
        broker: &Arc<Broker>,
        group: &str,
    ) -> Result<(String, i32), TxnError> {
        broker
            .groups
            .offsets_partition(broker, group)
            .await
            .map(|p| (OFFSETS_TOPIC.to_string(), p))
            .map_err(|_| TxnError::CoordinatorNotAvailable)
    }
}

/// The task owning one transactional id.
struct Task {
    id: String,
    meta: Option<TxnMetadata>,
    partition: Arc<Partition>,
    broker: Weak<Broker>,
    view: View,
    /// The registry this task removes itself from when its id has no state.
    registry: Registry,
    /// Bumped when partitions open or close: a marker waiting for an offline partition
    /// is retried at once when it comes back.
    partitions_changed: tokio::sync::watch::Receiver<u64>,
    max_timeout_ms: i32,
    id_expiration_ms: i64,
    /// When to retry writing the markers of a prepared transaction.
    retry_at: Option<Instant>,
    retry_delay_ms: u64,
    /// Partitions that already have the prepared transaction's marker (a retry writes
    /// only the rest).
    marked: BTreeSet<(String, i32)>,
}

/// What unloading found.
enum Unload {
    /// The task is gone from the registry and its channel is closed: stop.
    Done,
    /// Commands were queued before the channel closed: the task stays, on a new
    /// channel, and serves them first.
    Stay(Vec<Command>),
}

impl Task {
    async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        if self
            .meta
            .as_ref()
            .is_some_and(TxnMetadata::needs_completion)
        {
            self.retry_at = Some(Instant::now());
        }
        loop {
            let deadline = self.deadline();
            let waiting_for_partitions = self.retry_at.is_some();
            tokio::select! {
                c = rx.recv() => match c {
                    Some(c) => self.apply(c).await,
                    None => return,
                },
                _ = sleep_until(deadline) => self.on_deadline().await,
                changed = self.partitions_changed.changed(), if waiting_for_partitions => {
                    if changed.is_ok() {
                        self.retry_at = Some(Instant::now());
                    }
                }
            }
            // An id with no state (never initialised, a failed init, expired) leaves
            // no task behind.
            while self.meta.is_none() && self.retry_at.is_none() {
                match self.try_unload(&mut rx) {
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
        match cmd {
            Command::Init {
                timeout_ms,
                expected,
                tx,
            } => {
                let r = self.init(timeout_ms, expected).await;
                let _ = tx.send(r);
            }
            Command::Add {
                producer_id,
                epoch,
                partitions,
                verify_only,
                tx,
            } => {
                let r = self.add(producer_id, epoch, &partitions, verify_only).await;
                let _ = tx.send(r);
            }
            Command::End {
                producer_id,
                epoch,
                commit,
                tx,
            } => {
                let r = self.end(producer_id, epoch, commit).await;
                let _ = tx.send(r);
            }
        }
    }

    /// Removes this stateless task from the registry. Under the registry lock the
    /// channel is closed (a sender still holding it gets its command back and looks the
    /// id up again) and whatever was queued before is drained: if anything was, the task
    /// registers a new channel and stays to serve it, so no command is lost.
    fn try_unload(&mut self, rx: &mut mpsc::Receiver<Command>) -> Unload {
        let mut registry = lock(&self.registry);
        rx.close();
        if registry.get(&self.id).is_some_and(mpsc::Sender::is_closed) {
            registry.remove(&self.id);
        }
        let mut queued = Vec::new();
        while let Ok(cmd) = rx.try_recv() {
            queued.push(cmd);
        }
        if queued.is_empty() {
            return Unload::Done;
        }
        let (tx, fresh) = mpsc::channel(64);
        *rx = fresh;
        // Only if no new task took the id meanwhile (the old entry was ours).
        registry.entry(self.id.clone()).or_insert(tx);
        Unload::Stay(queued)
    }

    /// The next timer: the open transaction's timeout, a marker retry, or the idle id's
    /// expiration.
    fn deadline(&self) -> Option<Instant> {
        if let Some(at) = self.retry_at {
            return Some(at);
        }
        let m = self.meta.as_ref()?;
        let expires = m
            .expires_at_ms()
            .or_else(|| m.idle_expires_at_ms(self.id_expiration_ms))?;
        let wait = expires.saturating_sub(now_ms()).max(0) as u64;
        // A huge configured expiration is "never", not an overflow.
        Instant::now().checked_add(std::time::Duration::from_millis(wait))
    }

    /// Schedules the next attempt at a failed write, backing off.
    fn retry_later(&mut self) {
        self.retry_at =
            Some(Instant::now() + std::time::Duration::from_millis(self.retry_delay_ms));
        self.retry_delay_ms = (self.retry_delay_ms * 2).min(RETRY_MAX_MS);
    }

    async fn on_deadline(&mut self) {
        self.retry_at = None;
        let now = now_ms();
        let Some(m) = self.meta.clone() else { return };
        if m.idle_expires_at_ms(self.id_expiration_ms)
            .is_some_and(|at| now >= at)
        {
            self.expire().await;
            return;
        }
        if m.expires_at_ms().is_some_and(|at| now >= at) {
            tracing::info!(transactional_id = %self.id, producer_id = m.producer_id, "transaction timed out: aborting it and fencing its producer");
            if self.store(m.prepare_fence_abort(now)).await.is_err() {
                self.retry_later();
                return;
            }
        }
        if self
            .meta
            .as_ref()
            .is_some_and(TxnMetadata::needs_completion)
        {
            let _ = self.finish().await;
        }
    }

    fn broker(&self) -> Result<Arc<Broker>, TxnError> {
        self.broker
            .upgrade()
            .ok_or(TxnError::CoordinatorNotAvailable)
    }

    /// `transactional.id.expiration.ms` passed with nothing open: a tombstone forgets the
    /// id (a later InitProducerId gets a new producer id).
    async fn expire(&mut self) {
        match self.append_record(None).await {
            Ok(()) => {
                tracing::info!(transactional_id = %self.id, "transactional id expired");
                lock(&self.view).remove(&self.id);
                self.meta = None;
            }
            Err(_) => self.retry_later(),
        }
    }

    /// Persists `next` to `__transaction_state` (waiting for an fsync when the flush
    /// policy asks for one, as a produce would), then adopts it.
    async fn store(&mut self, next: TxnMetadata) -> Result<(), TxnError> {
        self.append_record(Some(encode_value(&next))).await?;
        lock(&self.view).insert(self.id.clone(), next.clone());
        self.meta = Some(next);
        Ok(())
    }

    /// Appends this id's record (a tombstone for `None`) to its `__transaction_state`
    /// partition.
    async fn append_record(&self, value: Option<Vec<u8>>) -> Result<(), TxnError> {
        let key = encode_key(&self.id);
        let rec = NewRecord {
            key: Some(&key),
            value: value.as_deref(),
            timestamp: now_ms(),
            headers: &[],
        };
        let storage = |e: String| {
            tracing::error!(transactional_id = %self.id, error = %e, "cannot write __transaction_state");
            TxnError::Storage(e)
        };
        let bytes = batch::build(0, Codec::None, &[rec]).map_err(|e| storage(e.to_string()))?;
        let mut scratch = Vec::new();
        let v = batch::validate(&bytes, &mut scratch, usize::MAX)
            .map_err(|e| storage(e.to_string()))?;
        let (info, flush_due) = self
            .partition
            .append(&bytes, &v, None)
            .map_err(|e| storage(e.to_string()))?;
        if flush_due {
            self.partition
                .ensure_flushed(info.last_offset + 1)
                .await
                .map_err(|e| storage(e.to_string()))?;
        }
        Ok(())
    }

    async fn init(
        &mut self,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
    ) -> Result<(i64, i16), TxnError> {
        if timeout_ms <= 0 || timeout_ms > self.max_timeout_ms {
            return Err(TxnError::InvalidTransactionTimeout);
        }
        let broker = self.broker()?;
        let new_id = || async {
            broker
                .next_producer_id()
                .await
                .map_err(|_| TxnError::CoordinatorNotAvailable)
        };
        // At most twice: an open transaction is aborted first.
        for _ in 0..2 {
            let now = now_ms();
            let Some(m) = self.meta.clone() else {
                let pid = new_id().await?;
                self.store(TxnMetadata::new(&self.id, pid, timeout_ms, now))
                    .await?;
                return Ok((pid, 0));
            };
            match m.prepare_init(timeout_ms, expected, now)? {
                InitStep::AbortOngoing(next) => {
                    self.store(next).await?;
                    self.finish().await?;
                }
                InitStep::Ready(next) => {
                    let answer = (next.producer_id, next.producer_epoch);
                    self.store(next).await?;
                    return Ok(answer);
                }
                InitStep::NeedsNewProducerId(mut next) => {
                    next.producer_id = new_id().await?;
                    let answer = (next.producer_id, next.producer_epoch);
                    self.store(next).await?;
                    return Ok(answer);
                }
            }
        }
        Err(TxnError::ConcurrentTransactions)
    }

    async fn add(
        &mut self,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
        verify_only: bool,
    ) -> Result<(), TxnError> {
        let m = self
            .meta
            .clone()
            .ok_or(TxnError::InvalidProducerIdMapping)?;
        if verify_only {
            return partitions
                .iter()
                .try_for_each(|p| m.verify(producer_id, epoch, p));
        }
        match m.prepare_add(producer_id, epoch, partitions, now_ms())? {
            Some(next) => self.store(next).await,
            None => Ok(()),
        }
    }

    async fn end(&mut self, producer_id: i64, epoch: i16, commit: bool) -> Result<(), TxnError> {
        let m = self
            .meta
            .clone()
            .ok_or(TxnError::InvalidProducerIdMapping)?;
        match m.prepare_end(producer_id, epoch, commit, now_ms())? {
            EndStep::Done => Ok(()),
            EndStep::Prepare(next) => {
                self.store(next).await?;
                crate::util::crash_point("txn-after-prepare");
                self.finish().await
            }
            EndStep::Resume => self.finish().await,
        }
    }

    /// Writes the markers of a prepared transaction, then stores its completion. On
    /// failure (a partition offline, a write error) the transaction stays prepared and
    /// the task retries with backoff, and at once when a partition comes online: a
    /// marker is never skipped.
    async fn finish(&mut self) -> Result<(), TxnError> {
        let Some(m) = self.meta.clone().filter(TxnMetadata::needs_completion) else {
            return Ok(());
        };
        let commit = m.state == TxnState::PrepareCommit;
        let written = match self.broker() {
            Ok(broker) => write_markers(&broker, &m, commit, &mut self.marked).await,
            Err(e) => Err(e),
        };
        let stored = match written {
            Ok(()) => self.store(m.complete(now_ms())).await,
            Err(e) => Err(e),
        };
        match stored {
            Ok(()) => {
                self.marked.clear();
                self.retry_at = None;
                self.retry_delay_ms = RETRY_MIN_MS;
            }
            Err(_) => self.retry_later(),
        }
        stored
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

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Appends a commit or abort marker to every partition of the transaction not in
/// `marked` (skipping partitions whose topic was deleted), then has the group
/// coordinator apply or drop the transaction's offsets. A partition that is offline is
/// an error once the others are written: the caller retries until it is back.
async fn write_markers(
    broker: &Arc<Broker>,
    m: &TxnMetadata,
    commit: bool,
    marked: &mut BTreeSet<(String, i32)>,
) -> Result<(), TxnError> {
    let marker = if commit {
        Marker::Commit
    } else {
        Marker::Abort
    };
    let storage = |e: String| TxnError::Storage(e);
    let bytes = batch::build_marker(m.producer_id, m.producer_epoch, marker, 0, now_ms())
        .map_err(|e| storage(e.to_string()))?;
    let mut scratch = Vec::new();
    let v =
        batch::validate(&bytes, &mut scratch, usize::MAX).map_err(|e| storage(e.to_string()))?;
    let mut offsets = false;
    let mut offline = None;
    for (topic, index) in &m.partitions {
        offsets |= topic == OFFSETS_TOPIC;
        if marked.contains(&(topic.clone(), *index)) {
            continue;
        }
        let p = match broker.replicas.lookup(topic, *index) {
            Ok(p) => p,
            Err(ReplicaError::Offline) => {
                // The decision is stored: the other partitions get their markers now,
                // this one when it is back.
                tracing::warn!(%topic, partition = index, transactional_id = %m.transactional_id, "partition offline: its transaction marker waits for it");
                offline.get_or_insert_with(|| format!("{topic}-{index} is offline"));
                continue;
            }
            // The topic was deleted: nothing is left to close there.
            Err(_) => continue,
        };
        match p.append(&bytes, &v, None) {
            // The marker is as durable as a produce under the topic's flush policy.
            Ok((info, true)) => p
                .ensure_flushed(info.last_offset + 1)
                .await
                .map_err(|e| storage(e.to_string()))?,
            Ok(_) => {}
            Err(LogError::Producer(e)) => {
                // A newer epoch already closed it there: nothing is left open.
                tracing::warn!(%topic, partition = index, error = %e, "marker refused");
            }
            Err(e) => {
                tracing::error!(%topic, partition = index, error = %e, "cannot write a transaction marker");
                return Err(storage(e.to_string()));
            }
        }
        marked.insert((topic.clone(), *index));
    }
    if let Some(why) = offline {
        return Err(storage(why));
    }
    if offsets {
        broker
            .groups
            .complete_txn(broker, m.producer_id, commit)
            .await;
    }
    Ok(())
}
