//! One partition this broker leads: its log, high watermark, waiting fetchers and the
//! group-commit flusher.
//!
//! Concurrency: the log sits behind a `std::sync::Mutex` held only for the append or read
//! syscalls, never across an `.await`. Offsets readers need without the lock (high
//! watermark, log start, log end) are atomics. Long-poll fetches register a `Notify` and
//! are woken by appends; fsyncs run on the blocking pool with the log unlocked.
//!
//! Under the lock only page-cache reads and writes of segment data happen. The small
//! file writes the log decides on there (producer snapshots at a roll, `.txnindex`
//! appends, recovery points) are queued by the log and performed on the blocking pool
//! once the lock is released ([`gregor_storage::DeferredWrites`]); the cleaner reads
//! its checkpoint and snapshot list, re-validates and indexes the cleaned segments and
//! fsyncs the directory without the lock, which covers only the renames of the swap.

use std::sync::atomic::{AtomicI32, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};

use std::path::PathBuf;

use gregor_storage::{AppendInfo, DeferredWrites, Log, LogError, ReplicaAppend};
use tokio::sync::{watch, Notify};
use uuid::Uuid;

use crate::log_dirs::LogDir;
use crate::replication::state::{Assignment, FetchClock, ReplicaSet, Transition};
use crate::topic_settings::TopicSettings;
use crate::util::now_ms;

/// What acks=all waiters watch: the high watermark and the leadership it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HwState {
    pub high_watermark: i64,
    pub leader_epoch: i32,
    pub leader: bool,
}

pub struct Partition {
    pub topic: String,
    pub topic_id: Uuid,
    pub index: i32,
    log: Mutex<Log>,
    /// The log's directory (fixed for its life), for reads that need no lock.
    dir: PathBuf,
    /// Writes the log queued under the lock, run on the blocking pool after it.
    deferred: Arc<DeferredWrites>,
    high_watermark: AtomicI64,
    /// The first offset of the oldest open transaction, or the high watermark: where
    /// read_committed consumers stop.
    last_stable_offset: AtomicI64,
    log_start_offset: AtomicI64,
    leader_epoch: AtomicI32,
    /// This broker leads the partition (the metadata says so); produce and client
    /// fetches are refused with NOT_LEADER_OR_FOLLOWER otherwise.
    leader: std::sync::atomic::AtomicBool,
    settings: RwLock<Arc<TopicSettings>>,
    waiters: Mutex<Vec<Weak<Notify>>>,
    /// Incremental fetch sessions holding this partition: woken on every change, and
    /// kept across wakeups (a session registers once, not once per round).
    watchers: Mutex<Vec<Weak<Notify>>>,
    /// Bumped after every change a fetch answer depends on (log end, high watermark,
    /// last stable offset, log start, leader epoch and leadership, the ISR, serving or
    /// not): a fetch session skips a partition whose version is the one it last found
    /// nothing new at (see `fetch_session`).
    version: AtomicU64,
    /// Offset below which data is fsynced.
    flushed: AtomicI64,
    /// Held by the one task running an fsync; others queue behind it and usually find
    /// their data covered when they get it (group commit).
    flush_lock: tokio::sync::Mutex<()>,
    /// The log end, readable without the log lock.
    log_end_offset: AtomicI64,
    /// The first offset of the oldest open transaction (`i64::MAX` when none).
    first_unstable: AtomicI64,
    /// Leader, ISR, followers' progress (see `replication::state`). Taken after the
    /// log lock when both are needed, never across an `.await`.
    replicas: Mutex<ReplicaSet>,
    /// Published on every high-watermark or leadership change (acks=all waits on it).
    hw_watch: watch::Sender<HwState>,
    /// The log directory the log lives in: a disk failure seen here takes it offline.
    log_dir: Arc<LogDir>,
}

impl Partition {
    /// A partition hosted by broker `me`. Until [`Partition::apply_assignment`] says
    /// otherwise it is its own only replica, with the high watermark at the log end.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        me: i32,
        topic: String,
        topic_id: Uuid,
        index: i32,
        mut log: Log,
        leader_epoch: i32,
        settings: Arc<TopicSettings>,
        log_dir: Arc<LogDir>,
    ) -> Self {
        log.set_defer_writes(true);
        let end = log.log_end_offset();
        let unstable = log.first_unstable_offset().unwrap_or(i64::MAX);
        let stable = unstable.min(end);
        Self {
            topic,
            topic_id,
            index,
            log_end_offset: AtomicI64::new(end),
            first_unstable: AtomicI64::new(unstable),
            replicas: Mutex::new(ReplicaSet::new(me)),
            hw_watch: watch::Sender::new(HwState {
                high_watermark: end,
                leader_epoch,
                leader: true,
            }),
            high_watermark: AtomicI64::new(end),
            last_stable_offset: AtomicI64::new(stable),
            log_start_offset: AtomicI64::new(log.log_start_offset()),
            flushed: AtomicI64::new(log.recovery_point()),
            dir: log.dir().to_path_buf(),
            deferred: log.deferred_writes(),
            log: Mutex::new(log),
            leader_epoch: AtomicI32::new(leader_epoch),
            leader: std::sync::atomic::AtomicBool::new(true),
            settings: RwLock::new(settings),
            waiters: Mutex::new(Vec::new()),
            watchers: Mutex::new(Vec::new()),
            version: AtomicU64::new(0),
            flush_lock: tokio::sync::Mutex::new(()),
            log_dir,
        }
    }

    /// The log directory this partition lives in.
    pub fn log_dir(&self) -> &Arc<LogDir> {
        &self.log_dir
    }

    /// Whether the partition's log directory is online (it may serve).
    pub fn dir_online(&self) -> bool {
        self.log_dir.is_online()
    }

    /// Its log directory failed: no longer leader here, and acks=all waiters and parked
    /// fetches wake (to answer with an error rather than wait out their timeouts).
    pub fn stop_serving(&self) {
        self.set_leader(false);
        self.hw_watch.send_modify(|s| s.leader = false);
        self.changed();
        self.wake_waiters();
    }

    /// The partition is no longer hosted here (its topic was deleted, or the replica
    /// moved to other brokers): sessions that still hold it look it up again.
    pub fn retire(&self) {
        self.changed();
        self.wake_waiters();
    }

    /// The change counter (see the `version` field). Read it before the state it
    /// vouches for.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::SeqCst)
    }

    /// Publishes a change (after it is visible).
    fn changed(&self) {
        self.version.fetch_add(1, Ordering::SeqCst);
    }

    /// Passes `r` through; a disk failure in it takes the log directory offline (every
    /// partition in it stops serving, see `log_dirs`).
    pub fn checked<T>(&self, r: Result<T, LogError>) -> Result<T, LogError> {
        if let Err(e) = &r {
            if self.log_dir.note_error(e) {
                tracing::error!(topic = %self.topic, partition = self.index, error = %e, "disk failure in this partition's log directory");
            }
        }
        r
    }

    /// Locks the log. A poisoned lock (a panic while appending) is reported as a storage
    /// error rather than propagated as a panic.
    pub fn log(&self) -> Result<MutexGuard<'_, Log>, LogError> {
        self.log.lock().map_err(|_| LogError::Corrupt {
            path: format!("{}-{}", self.topic, self.index),
            reason: "log lock poisoned".into(),
        })
    }

    /// Performs the writes the log queued under the lock, on the blocking pool (inline
    /// outside a runtime). Call after releasing the lock.
    fn run_deferred(&self) {
        if self.deferred.is_empty() {
            return;
        }
        let deferred = self.deferred.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn_blocking(move || deferred.run());
            }
            Err(_) => deferred.run(),
        }
    }

    pub fn high_watermark(&self) -> i64 {
        self.high_watermark.load(Ordering::Acquire)
    }
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset.load(Ordering::Acquire)
    }
    pub fn last_stable_offset(&self) -> i64 {
        self.last_stable_offset.load(Ordering::Acquire)
    }
    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch.load(Ordering::Acquire)
    }
    pub fn set_leader_epoch(&self, epoch: i32) {
        self.leader_epoch.store(epoch, Ordering::Release);
    }
    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::Acquire)
    }
    pub fn set_leader(&self, leader: bool) {
        self.leader.store(leader, Ordering::Release);
    }
    pub fn settings(&self) -> Arc<TopicSettings> {
        match self.settings.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }
    pub fn set_settings(&self, s: Arc<TopicSettings>) -> Result<(), LogError> {
        self.log()?.set_config(s.log_config.clone());
        match self.settings.write() {
            Ok(mut g) => *g = s,
            Err(p) => *p.into_inner() = s,
        }
        Ok(())
    }

    /// Appends a validated batch (as leader) and advances the high watermark as far as
    /// the ISR allows, waking parked fetches. Returns whether the flush policy wants an
    /// fsync.
    pub fn append(
        &self,
        bytes: &[u8],
        v: &gregor_protocol::batch::ValidatedBatch,
        log_append_time: Option<i64>,
    ) -> Result<(AppendInfo, bool), LogError> {
        self.checked(self.append_inner(bytes, v, log_append_time))
    }

    fn append_inner(
        &self,
        bytes: &[u8],
        v: &gregor_protocol::batch::ValidatedBatch,
        log_append_time: Option<i64>,
    ) -> Result<(AppendInfo, bool), LogError> {
        let now = now_ms();
        let (info, flush_due) = {
            let mut log = self.log()?;
            let info = log.append(bytes, v, self.leader_epoch(), log_append_time, now)?;
            self.note_log_end(&log);
            (info, log.flush_due(now))
        };
        self.run_deferred();
        if info.duplicate {
            // A retried batch already in the log: nothing new to announce (its ack still
            // follows the flush policy).
            return Ok((info, flush_due));
        }
        self.changed();
        self.advance_high_watermark();
        self.wake_waiters();
        Ok((info, flush_due))
    }

    /// Records the log end and open-transaction start (under the log lock).
    fn note_log_end(&self, log: &Log) {
        self.first_unstable.store(
            log.first_unstable_offset().unwrap_or(i64::MAX),
            Ordering::Release,
        );
        self.log_end_offset
            .store(log.log_end_offset(), Ordering::Release);
    }

    pub fn log_end_offset(&self) -> i64 {
        self.log_end_offset.load(Ordering::Acquire)
    }

    /// Moves the high watermark to `hw` if that is higher (or, with `allow_lower`, to
    /// a lower value: a follower truncating), and the last stable offset with it. The
    /// stable offset is stored first, so a reader never sees it above an open
    /// transaction.
    fn publish_high_watermark(&self, hw: i64, allow_lower: bool) {
        let current = self.high_watermark();
        let target = if hw > current || (allow_lower && hw < current) {
            hw
        } else {
            current
        };
        let unstable = self.first_unstable.load(Ordering::Acquire);
        let stable = unstable.min(target);
        let stable_moved = self.last_stable_offset.swap(stable, Ordering::AcqRel) != stable;
        if target != current {
            self.high_watermark.store(target, Ordering::Release);
            self.changed();
            self.hw_watch.send_modify(|s| s.high_watermark = target);
            self.wake_waiters();
        } else if stable_moved {
            self.changed();
            self.wake_waiters();
        }
    }

    /// Where the high watermark starts for a replicated partition just opened: its log
    /// start, not its log end, since the tail may not be on the other replicas; the
    /// leader moves it up as followers fetch, a follower as the leader tells it.
    pub fn start_high_watermark_at_log_start(&self) {
        self.publish_high_watermark(self.log_start_offset(), true);
    }

    /// As leader: the high watermark becomes the smallest log end in the ISR.
    pub fn advance_high_watermark(&self) {
        let end = self.log_end_offset();
        let hw = match self.replicas.lock() {
            Ok(r) if r.role() == crate::replication::state::Role::Leader => r.high_watermark(end),
            _ => None,
        };
        self.publish_high_watermark(hw.unwrap_or(i64::MIN), false);
    }

    /// Applies the metadata's view of this partition: leader, epochs, replicas, ISR.
    /// Becoming leader records the new epoch's start in the epoch cache before any
    /// write (KAFKA-7415).
    pub fn apply_assignment(&self, a: &Assignment) -> Result<Transition, LogError> {
        let transition = {
            let mut log = self.log()?;
            let end = log.log_end_offset();
            let t = match self.replicas.lock() {
                Ok(mut r) => r.apply(a, end, now_ms()),
                Err(_) => Transition::Unchanged,
            };
            if t == Transition::BecameLeader {
                log.assign_epoch(a.leader_epoch, end);
            }
            t
        };
        self.run_deferred();
        self.set_leader_epoch(a.leader_epoch);
        let leader = a.leader == self.replica_id();
        self.set_leader(leader);
        self.hw_watch.send_modify(|s| {
            s.leader = leader;
            s.leader_epoch = a.leader_epoch;
        });
        if leader {
            self.advance_high_watermark();
        }
        // Parked fetches and sessions re-check leadership, epoch and ISR.
        self.changed();
        self.wake_waiters();
        Ok(transition)
    }

    /// As a newly elected leader: whether the high watermark is still below the start
    /// of this leader's epoch (it learns where the ISR is only as followers fetch). Until
    /// then the latest offset it could name might be lower than one a client already saw
    /// from the previous leader: Kafka answers OFFSET_NOT_AVAILABLE, and so do we.
    pub fn high_watermark_below_epoch_start(&self) -> bool {
        let hw = self.high_watermark();
        self.replicas.lock().is_ok_and(|r| {
            r.role() == crate::replication::state::Role::Leader && r.epoch_start_offset > hw
        })
    }

    /// As leader: each follower's log end as of its last fetch (-1 before one).
    pub fn follower_log_ends(&self) -> Vec<(i32, i64)> {
        self.replicas.lock().map_or_else(
            |_| Vec::new(),
            |r| r.followers.iter().map(|(&id, f)| (id, f.log_end)).collect(),
        )
    }

    /// This broker's id.
    pub fn replica_id(&self) -> i32 {
        self.replicas.lock().map(|r| r.me).unwrap_or(-1)
    }

    /// The committed ISR and the metadata's assignment.
    pub fn assignment(&self) -> Assignment {
        self.replicas
            .lock()
            .map(|r| r.assignment.clone())
            .unwrap_or_default()
    }

    /// Watches the high watermark and leadership (acks=all).
    pub fn watch_high_watermark(&self) -> watch::Receiver<HwState> {
        self.hw_watch.subscribe()
    }

    /// As leader: a follower fetched from `fetch_offset`. Returns the ISR to ask the
    /// controller for when the follower has caught up and should join it.
    /// `broker_epoch` is the one the fetch carried (KIP-903; -1 when it had none). In a
    /// fetch session, `session` is its clock and when its previous round began (see
    /// `replication::state::FetchClock`).
    pub fn record_follower_fetch(
        &self,
        replica: i32,
        broker_epoch: i64,
        fetch_offset: i64,
        session: Option<(&FetchClock, i64)>,
    ) -> Option<Vec<i32>> {
        let end = self.log_end_offset();
        let hw = self.high_watermark();
        let expand = match self.replicas.lock() {
            Ok(mut r) => {
                r.note_broker_epoch(replica, broker_epoch);
                r.record_session_fetch(replica, fetch_offset, end, hw, now_ms(), session)
            }
            Err(_) => None,
        };
        self.advance_high_watermark();
        expand
    }

    /// As leader: `replica` stopped fetching this partition in the fetch session whose
    /// clock is `clock` (its previous round began at `previous_round_ms`).
    pub fn end_fetch_session(&self, replica: i32, clock: &FetchClock, previous_round_ms: i64) {
        if let Ok(mut r) = self.replicas.lock() {
            r.unlink_clock(replica, clock, previous_round_ms);
        }
    }

    /// As leader: the ISR without followers that lagged longer than `lag_max_ms`, if any
    /// did (the change is then pending until the controller answers).
    pub fn shrink_isr(&self, lag_max_ms: i64) -> Option<Vec<i32>> {
        self.replicas.lock().ok()?.shrink(now_ms(), lag_max_ms)
    }

    /// `isr` with its members' broker epochs, as AlterPartition sends it (see
    /// [`crate::replication::state::ReplicaSet::isr_with_epochs`]).
    pub fn isr_with_epochs(&self, isr: &[i32], my_epoch: i64) -> Vec<(i32, i64)> {
        self.replicas
            .lock()
            .map(|r| r.isr_with_epochs(isr, my_epoch))
            .unwrap_or_default()
    }

    /// The controller accepted the AlterPartition in flight; it leaves the partition at
    /// `partition_epoch`.
    pub fn alter_partition_answered(&self, partition_epoch: i32) {
        if let Ok(mut r) = self.replicas.lock() {
            r.answered(partition_epoch);
        }
    }

    /// The AlterPartition in flight failed: another may be sent.
    pub fn alter_partition_failed(&self) {
        if let Ok(mut r) = self.replicas.lock() {
            r.pending_isr = None;
        }
        // A caught-up follower outside the ISR is proposed again at its next fetch,
        // which its fetch session must therefore not skip.
        self.changed();
    }

    /// As follower: appends the leader's batches byte for byte, then takes the leader's
    /// high watermark (capped at the local log end) and log start offset.
    pub fn append_replica(
        &self,
        records: &[u8],
        leader_high_watermark: i64,
        leader_log_start: i64,
    ) -> Result<ReplicaAppend, LogError> {
        self.checked(self.append_replica_inner(records, leader_high_watermark, leader_log_start))
    }

    fn append_replica_inner(
        &self,
        records: &[u8],
        leader_high_watermark: i64,
        leader_log_start: i64,
    ) -> Result<ReplicaAppend, LogError> {
        let now = now_ms();
        let (appended, end) = {
            let mut log = self.log()?;
            let appended = if records.is_empty() {
                ReplicaAppend::default()
            } else {
                log.append_replica(records, now)?
            };
            self.note_log_end(&log);
            (appended, log.log_end_offset())
        };
        self.run_deferred();
        if leader_log_start > self.log_start_offset() && leader_log_start <= end {
            self.delete_records(leader_log_start)?;
        }
        self.publish_high_watermark(leader_high_watermark.min(end), false);
        if appended.batches > 0 {
            self.changed();
            self.wake_waiters();
        }
        Ok(appended)
    }

    /// As follower: removes the log's tail from `offset` on (it diverged from the
    /// leader's). The high watermark comes down with it if it was above.
    pub fn truncate_to(&self, offset: i64) -> Result<(), LogError> {
        self.truncate_with(|log| log.truncate_to(offset, now_ms()))
    }

    /// As follower: empties the log and restarts it at `offset` (the leader's log start
    /// is past everything this replica has).
    pub fn truncate_fully_and_start_at(&self, offset: i64) -> Result<(), LogError> {
        self.truncate_with(|log| log.truncate_fully_and_start_at(offset, now_ms()))
    }

    fn truncate_with(
        &self,
        f: impl FnOnce(&mut Log) -> Result<Vec<PathBuf>, LogError>,
    ) -> Result<(), LogError> {
        let doomed = {
            let mut log = self.log()?;
            let doomed = self.checked(f(&mut log))?;
            self.note_log_end(&log);
            self.log_start_offset
                .store(log.log_start_offset(), Ordering::Release);
            doomed
        };
        self.run_deferred();
        self.changed();
        let end = self.log_end_offset();
        if self.high_watermark() > end {
            self.publish_high_watermark(end, true);
        }
        remove_later(doomed, self.settings().file_delete_delay_ms);
        Ok(())
    }

    /// As follower: the largest epoch at or below `epoch` and where it ends here.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> Result<(i32, i64), LogError> {
        Ok(self.log()?.end_offset_for_epoch(epoch))
    }

    /// The newest leader epoch in the log (what a follower's fetch names as its last
    /// fetched epoch).
    pub fn latest_epoch(&self) -> Result<Option<i32>, LogError> {
        Ok(self.log()?.epochs().latest_epoch())
    }

    /// Calls `f` with every batch from the log start to the log end, in order: how the
    /// coordinators replay their internal topics at startup (the log lock is held).
    pub fn replay(
        &self,
        mut f: impl FnMut(&gregor_protocol::batch::BatchHeader, &[u8]),
    ) -> Result<(), LogError> {
        let log = self.log()?;
        let end = log.log_end_offset();
        let mut offset = log.log_start_offset();
        while offset < end {
            let read = log.read(offset, 1 << 20, true, end)?;
            let mut at = 0;
            let mut advanced = false;
            while let Some(rest) = read.bytes.get(at..).filter(|r| !r.is_empty()) {
                let Ok(h) = gregor_protocol::batch::BatchHeader::parse(rest) else {
                    break;
                };
                let Some(b) = rest.get(..h.total_size()) else {
                    break;
                };
                at += h.total_size();
                offset = h.last_offset() + 1;
                advanced = true;
                f(&h, b);
            }
            if !advanced {
                break;
            }
        }
        Ok(())
    }

    /// DeleteRecords: moves the log start offset to `offset` (already checked against
    /// the high watermark). Returns the new low watermark; the removed segments' files
    /// are deleted after `file.delete.delay.ms`.
    pub fn delete_records(&self, offset: i64) -> Result<i64, LogError> {
        let (start, doomed) = self.checked(self.log()?.delete_records_before(offset))?;
        self.log_start_offset.fetch_max(start, Ordering::AcqRel);
        self.changed();
        remove_later(doomed, self.settings().file_delete_delay_ms);
        Ok(start)
    }

    /// Forgets producers idle past `producer.id.expiration.ms` with no open transaction
    /// here (the periodic sweep). Returns how many went.
    pub fn remove_expired_producers(&self, now_ms: i64) -> Result<usize, LogError> {
        Ok(self.log()?.remove_expired_producers(now_ms))
    }

    /// Retention by `retention.ms` and `retention.bytes`, for `cleanup.policy=delete`.
    pub fn apply_retention(&self, now_ms: i64) -> Result<(), LogError> {
        let s = self.settings();
        if !s.delete {
            return Ok(());
        }
        let (start, doomed) = {
            let mut log = self.log()?;
            let doomed =
                self.checked(log.apply_retention(s.retention_ms, s.retention_bytes, now_ms))?;
            (log.log_start_offset(), doomed)
        };
        if self.log_start_offset.fetch_max(start, Ordering::AcqRel) < start {
            self.changed();
        }
        remove_later(doomed, s.file_delete_delay_ms);
        Ok(())
    }

    /// One log-cleaner pass (see `gregor_storage::cleaner`): plan under the lock, build
    /// the cleaned segments on the blocking pool without it (producers keep
    /// appending), swap them in under the lock. Returns bytes before and after, or
    /// `None` when the log was not cleanable.
    pub async fn clean(
        self: &Arc<Self>,
        max_map_entries: usize,
    ) -> Result<Option<(u64, u64)>, LogError> {
        let s = self.settings();
        if !s.compact {
            return Ok(None);
        }
        let cfg = gregor_storage::CleanerConfig {
            min_cleanable_ratio: s.min_cleanable_ratio,
            min_compaction_lag_ms: s.min_compaction_lag_ms,
            max_compaction_lag_ms: s.max_compaction_lag_ms,
            delete_retention_ms: s.delete_retention_ms,
            max_map_entries,
        };
        let now = now_ms();
        let started = std::time::Instant::now();
        let dir = self.dir.clone();
        let inputs = blocking(move || Ok(gregor_storage::CleanInputs::read(&dir))).await?;
        let Some(plan) = self.log()?.clean_plan_with(&cfg, now, inputs) else {
            return Ok(None);
        };
        let before: u64 = plan.segments.iter().map(|p| p.size).sum();
        let interval = s.log_config.index_interval_bytes;
        // Build, re-validate and index the cleaned segments, and make them durable,
        // all without the lock.
        let (prepared, after, removed) = blocking(move || {
            let built = gregor_storage::build_cleaned(&plan, &cfg, now)?;
            let after: u64 = built.segments.iter().map(|c| c.cleaned_size).sum::<u64>()
                + before.saturating_sub(built.segments.iter().map(|c| c.original_size).sum());
            let removed = built.records_removed;
            let prepared = gregor_storage::PreparedSwap::prepare(&plan.dir, built, interval)?;
            Ok((prepared, after, removed))
        })
        .await?;
        // Under the lock: renames only.
        let swap_started = std::time::Instant::now();
        let finish = self.log()?.swap_prepared(prepared)?;
        let locked_us = swap_started.elapsed().as_micros() as u64;
        let doomed = blocking(move || finish.finish()).await?;
        remove_later(doomed, s.file_delete_delay_ms);
        let ms = started.elapsed().as_millis() as u64;
        tracing::info!(topic = %self.topic, partition = self.index, before, after, removed, ms, locked_us, "cleaned log");
        Ok(Some((before, after)))
    }

    /// The dirty ratio the cleaner would act on now, if the log is cleanable.
    pub fn cleanable_ratio(&self) -> Option<f64> {
        let s = self.settings();
        if !s.compact {
            return None;
        }
        let cfg = gregor_storage::CleanerConfig {
            min_cleanable_ratio: s.min_cleanable_ratio,
            min_compaction_lag_ms: s.min_compaction_lag_ms,
            max_compaction_lag_ms: s.max_compaction_lag_ms,
            delete_retention_ms: s.delete_retention_ms,
            max_map_entries: 0,
        };
        // The checkpoint is read before the lock is taken.
        let inputs = gregor_storage::CleanInputs::read_checkpoint(&self.dir);
        self.log()
            .ok()?
            .clean_plan_with(&cfg, now_ms(), inputs)
            .map(|p| p.dirty_ratio)
    }

    /// Registers a fetch that waits for new data here.
    pub fn register_waiter(&self, n: &Arc<Notify>) {
        if let Ok(mut w) = self.waiters.lock() {
            w.retain(|x| x.strong_count() > 0);
            w.push(Arc::downgrade(n));
        }
    }

    /// Registers a fetch session's `Notify`, woken on every change until the session
    /// is gone (a weak reference: a dropped session unregisters itself).
    pub fn register_watcher(&self, n: &Arc<Notify>) {
        if let Ok(mut w) = self.watchers.lock() {
            w.retain(|x| x.strong_count() > 0);
            if !w.iter().any(|x| std::ptr::eq(x.as_ptr(), Arc::as_ptr(n))) {
                w.push(Arc::downgrade(n));
            }
        }
    }

    fn wake_waiters(&self) {
        if let Ok(mut w) = self.watchers.lock() {
            w.retain(|x| match x.upgrade() {
                Some(n) => {
                    n.notify_one();
                    true
                }
                None => false,
            });
        }
        let drained: Vec<Weak<Notify>> = match self.waiters.lock() {
            Ok(mut w) if !w.is_empty() => std::mem::take(&mut *w),
            _ => return,
        };
        for n in drained.iter().filter_map(Weak::upgrade) {
            n.notify_one();
        }
    }

    /// Makes everything below `upto` durable, sharing fsyncs between concurrent callers.
    pub async fn ensure_flushed(&self, upto: i64) -> Result<(), LogError> {
        loop {
            if self.flushed.load(Ordering::Acquire) >= upto {
                return Ok(());
            }
            let _turn = self.flush_lock.lock().await;
            if self.flushed.load(Ordering::Acquire) >= upto {
                return Ok(());
            }
            let flushed = self.flush_now().await;
            self.checked(flushed)?;
        }
    }

    /// Runs one fsync of everything appended so far (the caller holds `flush_lock` or is
    /// the background flusher).
    async fn flush_now(&self) -> Result<(), LogError> {
        let handle = self.log()?.flush_handle()?;
        let upto = handle.upto;
        let synced = tokio::task::spawn_blocking(move || handle.sync()).await;
        match synced {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e.into()),
            Err(join) => return Err(LogError::Io(std::io::Error::other(join.to_string()))),
        }
        self.log()?.mark_flushed(upto, now_ms())?;
        self.run_deferred();
        self.flushed.fetch_max(upto, Ordering::AcqRel);
        Ok(())
    }

    /// Background flush for `flush.ms` and rolled segments.
    pub async fn flush_if_needed(&self) -> Result<(), LogError> {
        if !self.log()?.needs_flush(now_ms()) {
            return Ok(());
        }
        let _turn = self.flush_lock.lock().await;
        let flushed = self.flush_now().await;
        self.checked(flushed)
    }
}

/// Runs blocking storage work on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, LogError> + Send + 'static,
) -> Result<T, LogError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| LogError::Io(std::io::Error::other(e.to_string())))?
}

/// Removes renamed (`*.deleted`) segment files after `delay_ms`, Kafka's
/// `file.delete.delay.ms`: a timer, not a poll. Files left by a stop are removed at the
/// next start.
fn remove_later(paths: Vec<std::path::PathBuf>, delay_ms: i64) {
    if paths.is_empty() {
        return;
    }
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    handle.spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(delay_ms.max(0) as u64)).await;
        for p in paths {
            if let Err(e) = tokio::fs::remove_file(&p).await {
                tracing::warn!(path = %p.display(), error = %e, "could not remove deleted segment file");
            }
        }
    });
}

/// Test seams: observing a partition from outside without changing it.
impl Partition {
    /// Long-poll fetches registered here and still waiting (their `Notify` alive).
    #[doc(hidden)]
    pub fn live_waiters(&self) -> usize {
        self.waiters
            .lock()
            .map(|w| w.iter().filter(|n| n.strong_count() > 0).count())
            .unwrap_or(0)
    }
}
