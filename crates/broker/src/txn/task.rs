//! The task that owns one transactional id: requests in order, the open transaction's
//! timeout, the idle id's expiration, and the markers of a prepared transaction
//! (retried with backoff, and at once when partitions change, until every one is
//! written). A task whose id has no state unloads itself.

use std::collections::BTreeSet;
use std::sync::{Arc, Weak};

use gregor_protocol::batch::{self, NewRecord};
use gregor_protocol::compression::Codec;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::coordinator::{lock, Command, Registry, View};
use super::records::{encode_key, encode_value};
use super::state::{EndStep, InitStep, TxnMetadata, TxnState, OVERFLOW_EPOCH};
use super::{TxnError, TxnLinks};
use crate::coordinator_partition::CoordinatorPartition;
use crate::util::now_ms;

/// A failed marker write is tried again after this, doubling up to [`RETRY_MAX_MS`]
/// (and at once when a partition comes online).
pub(super) const RETRY_MIN_MS: u64 = 100;
const RETRY_MAX_MS: u64 = 30_000;

/// The task owning one transactional id.
pub(super) struct Task {
    pub(super) id: String,
    pub(super) meta: Option<TxnMetadata>,
    pub(super) partition: CoordinatorPartition,
    pub(super) links: Weak<TxnLinks>,
    pub(super) view: View,
    /// The registry this task removes itself from when its id has no state.
    pub(super) registry: Registry,
    /// Bumped when partitions open or close: a marker waiting for an offline partition
    /// is retried at once when it comes back.
    pub(super) partitions_changed: tokio::sync::watch::Receiver<u64>,
    pub(super) max_timeout_ms: i32,
    pub(super) id_expiration_ms: i64,
    /// When to retry writing the markers of a prepared transaction.
    pub(super) retry_at: Option<Instant>,
    pub(super) retry_delay_ms: u64,
    /// Partitions that already have the prepared transaction's marker (a retry writes
    /// only the rest).
    pub(super) marked: BTreeSet<(String, i32)>,
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
    pub(super) async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
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
                        // A leadership change may let the write through: try again
                        // soon, but no sooner than the shortest back-off, so a burst of
                        // metadata changes does not become a busy loop of failed writes
                        // (seen as ~70 attempts a second in the seed 101 soak).
                        let soon = Instant::now() + std::time::Duration::from_millis(RETRY_MIN_MS);
                        self.retry_at = Some(self.retry_at.map_or(soon, |at| at.min(soon)));
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
                v2,
                tx,
            } => {
                let r = self.end(producer_id, epoch, commit, v2).await;
                let _ = tx.send(r);
            }
        }
    }

    /// Removes this stateless task from the registry. Under the registry lock the
    /// channel is closed (a sender still holding it gets its command back and looks the
    /// id up again) and whatever was queued before is drained: if anything was, the task
    /// registers a new channel and stays to serve it, so no command is lost. Senders
    /// push under the same lock (`TxnCoordinator::ask`), so nothing lands after the
    /// drain.
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

    fn links(&self) -> Result<Arc<TxnLinks>, TxnError> {
        self.links
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
        use crate::replication::ReplicatedAppendError as E;
        match self.partition.append(&bytes, &v).await {
            Ok(_) => Ok(()),
            // Kafka's mapping for a failed transaction-log write: the leadership moved
            // is NOT_COORDINATOR, too few replicas or a timeout COORDINATOR_NOT_AVAILABLE.
            Err(E::NotLeader(_)) => Err(TxnError::NotCoordinator),
            Err(E::NotEnoughReplicas(_) | E::Timeout(_)) => Err(TxnError::CoordinatorNotAvailable),
            Err(E::Log(e)) => Err(storage(e.to_string())),
        }
    }

    async fn init(
        &mut self,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
    ) -> Result<(i64, i16), TxnError> {
        if timeout_ms <= 0 || timeout_ms > self.max_timeout_ms {
            return Err(TxnError::InvalidTransactionTimeout);
        }
        let links = self.links()?;
        let new_id = || async {
            links
                .host
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

    async fn end(
        &mut self,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        v2: bool,
    ) -> Result<(i64, i16), TxnError> {
        let m = self
            .meta
            .clone()
            .ok_or(TxnError::InvalidProducerIdMapping)?;
        let now = now_ms();
        let step = if v2 {
            m.prepare_end_v2(producer_id, epoch, commit, now)?
        } else {
            m.prepare_end(producer_id, epoch, commit, now)?
        };
        match step {
            EndStep::Done => {}
            EndStep::Prepare(next) => {
                self.store(next).await?;
                crate::util::crash_point("txn-after-prepare");
                self.finish().await?;
            }
            EndStep::Resume => self.finish().await?,
        }
        self.meta
            .as_ref()
            .map(|m| (m.producer_id, m.producer_epoch))
            .ok_or(TxnError::InvalidProducerIdMapping)
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
        let written = match self.links() {
            Ok(links) => {
                let coordinator_epoch = self.partition.epoch;
                write_markers(&links, &m, commit, coordinator_epoch, &mut self.marked).await
            }
            Err(e) => Err(e),
        };
        let stored = match written {
            Ok(()) => match self.completion(&m).await {
                Ok(done) => self.store(done).await,
                Err(e) => Err(e),
            },
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

impl Task {
    /// The completed metadata; after a transactions-v2 end that exhausted the epoch,
    /// under a new producer id at epoch 0 (the old id's epochs are used up).
    async fn completion(&self, m: &TxnMetadata) -> Result<TxnMetadata, TxnError> {
        let mut done = m.complete(now_ms());
        if m.producer_epoch == OVERFLOW_EPOCH {
            let pid = self
                .links()?
                .host
                .next_producer_id()
                .await
                .map_err(|_| TxnError::CoordinatorNotAvailable)?;
            tracing::info!(transactional_id = %self.id, old = m.producer_id, new = pid, "producer epoch exhausted: moving to a new producer id");
            done.move_to_producer_id(pid);
        }
        Ok(done)
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Writes a commit or abort marker to every partition of the transaction not in
/// `marked` (skipping partitions whose topic was deleted): here for the partitions this
/// broker leads, with WriteTxnMarkers to the leaders of the others (see `markers`).
/// The group coordinator owning a `__consumer_offsets` partition applies or drops the
/// transaction's offsets when it writes the marker there. A partition that is offline
/// or leaderless is an error once the others are written: the caller retries until it
/// is back. Each marker carries the coordinator epoch: the leader epoch of the
/// `__transaction_state` partition that owns the id, as in Kafka (a marker from a
/// coordinator that has since moved is recognisable by its lower epoch).
async fn write_markers(
    links: &TxnLinks,
    m: &TxnMetadata,
    commit: bool,
    coordinator_epoch: i32,
    marked: &mut BTreeSet<(String, i32)>,
) -> Result<(), TxnError> {
    let spec = super::markers::MarkerSpec {
        producer_id: m.producer_id,
        producer_epoch: m.producer_epoch,
        commit,
        coordinator_epoch,
    };
    super::markers::write_all(links, &m.partitions, spec, marked)
        .await
        .map_err(TxnError::Storage)
}
