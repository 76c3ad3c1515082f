//! The share coordinator: the registry of share groups, share-partitions and share
//! sessions that the handlers call, and the timer task that drives every deadline.
//!
//! All of it sits behind one `std::sync::Mutex`, taken for short synchronous sections
//! and never across an `.await` (a fetch takes a partition's log lock inside it, for
//! the batch headers and bytes of one read; nothing takes them the other way round).
//! Deadlines (acquisition locks, member sessions) are kept sorted by their owners; the
//! timer task sleeps until the earliest one and is woken early when a new, earlier one
//! may have appeared.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::Notify;
use uuid::Uuid;

use super::group::{Heartbeat, HeartbeatResult, Member, ShareGroup, TopicInfo};
use super::partition::{AcquiredRange, SharePartition};
use super::persist::{self, Snapshot, Store};
use super::session::{Session, SessionStep, Tp};
use super::{OffsetReset, ShareConfig, ShareError};
use crate::broker::Broker;
use crate::error::ReplicaError;
use crate::partition::Partition;

type Key = (String, Uuid, i32);

#[derive(Default)]
struct State {
    groups: BTreeMap<String, ShareGroup>,
    partitions: HashMap<Key, SharePartition>,
    sessions: HashMap<(String, String), Session>,
}

/// A share group as ShareGroupDescribe and ListGroups show it.
#[derive(Debug, Clone)]
pub struct ShareGroupInfo {
    pub group_id: String,
    pub state: &'static str,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub members: Vec<Member>,
}

/// One share-partition's start offset (DescribeShareGroupOffsets).
#[derive(Debug, Clone, Copy)]
pub struct ShareOffsets {
    pub topic_id: Uuid,
    pub partition: i32,
    pub start_offset: i64,
}

/// One partition's part of a ShareFetch answer.
#[derive(Debug, Default)]
pub struct PartitionFetch {
    pub error: Option<ReplicaError>,
    pub records: Option<Bytes>,
    pub acquired: Vec<AcquiredRange>,
}

/// What a fetch gave, partition by partition.
pub type FetchOutcome = Vec<(Tp, PartitionFetch)>;

/// Acknowledgement results, partition by partition.
pub type AckOutcome = Vec<(Tp, Result<(), ShareError>)>;

/// A batch of acknowledgements: first and last offset, and the types.
pub type AckBatch = (i64, i64, Vec<i8>);

pub struct ShareCoordinator {
    config: ShareConfig,
    state: Mutex<State>,
    /// Wakes the timer task: a deadline earlier than the one it sleeps to may exist.
    timer: Arc<Notify>,
    /// Parked share fetches, woken when records become available again.
    waiters: Mutex<Vec<Weak<Notify>>>,
    store: Store,
}

impl ShareCoordinator {
    /// Opens the coordinator and restores the share-partitions stored in `data_dir`.
    pub fn open(config: ShareConfig, data_dir: &std::path::Path) -> Self {
        let mut state = State::default();
        for s in persist::load(data_dir) {
            state.groups.entry(s.group.clone()).or_default();
            state.partitions.insert(
                (s.group, s.topic_id, s.partition),
                SharePartition::restore(s.spso, s.speo, s.entries),
            );
        }
        Self {
            config,
            state: Mutex::new(state),
            timer: Arc::new(Notify::new()),
            waiters: Mutex::new(Vec::new()),
            store: Store::open(data_dir),
        }
    }

    pub fn config(&self) -> &ShareConfig {
        &self.config
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic under this lock is a bug, not input; keep serving what is there.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `group` is a share group here: it has members or had them, or this
    /// broker keeps share-partition state for it (the other group APIs refuse it).
    pub fn is_share_group(&self, group: &str) -> bool {
        let st = self.lock();
        st.groups.contains_key(group) || st.partitions.keys().any(|(g, _, _)| g == group)
    }

    /// Applies a ShareGroupHeartbeat. A member that leaves gives back its records.
    pub fn heartbeat(
        &self,
        group: &str,
        h: Heartbeat,
        topics: &TopicInfo,
    ) -> Result<HeartbeatResult, ShareError> {
        if group.is_empty() {
            return Err(ShareError::InvalidGroupId);
        }
        let member = h.member_id.clone();
        let leaving = h.member_epoch == -1;
        let mut st = self.lock();
        if !st.groups.contains_key(group) && h.member_epoch != 0 {
            return Err(if leaving {
                ShareError::GroupIdNotFound
            } else {
                ShareError::UnknownMemberId
            });
        }
        let now = Instant::now();
        let cfg = &self.config;
        let g = st.groups.entry(group.to_string()).or_default();
        let r = g.heartbeat(h, topics, now, cfg.session_timeout, cfg.max_size);
        if leaving && r.is_ok() {
            self.member_gone(&mut st, group, &member);
        }
        drop(st);
        self.timer.notify_one();
        r
    }

    /// Gives back everything `member` holds in `group` and ends its share session.
    fn member_gone(&self, st: &mut State, group: &str, member: &str) {
        st.sessions.remove(&(group.to_string(), member.to_string()));
        let mut released = false;
        let limits = self.config.limits;
        for ((g, t, p), sp) in st.partitions.iter_mut() {
            if g == group && sp.release_member(member, &limits) {
                released = true;
                self.store.save_later(snapshot(g, *t, *p, sp));
            }
        }
        if released {
            self.wake_fetches();
        }
    }

    pub fn list(&self) -> Vec<(String, &'static str)> {
        self.lock()
            .groups
            .iter()
            .map(|(id, g)| (id.clone(), g.state_name()))
            .collect()
    }

    pub fn describe(&self, group: &str) -> Option<ShareGroupInfo> {
        let st = self.lock();
        let g = st.groups.get(group)?;
        Some(ShareGroupInfo {
            group_id: group.to_string(),
            state: g.state_name(),
            group_epoch: g.group_epoch,
            assignment_epoch: g.assignment_epoch,
            members: g.members.values().cloned().collect(),
        })
    }

    /// The start offset of every share-partition of `group`; `None` if no such group.
    pub fn offsets(&self, group: &str) -> Option<Vec<ShareOffsets>> {
        let st = self.lock();
        st.groups.get(group)?;
        Some(
            st.partitions
                .iter()
                .filter(|((g, _, _), _)| g == group)
                .map(|((_, t, p), sp)| ShareOffsets {
                    topic_id: *t,
                    partition: *p,
                    start_offset: sp.start_offset(),
                })
                .collect(),
        )
    }

    /// Deletes an empty share group and its share-partitions.
    pub async fn delete(&self, group: &str) -> Result<(), ShareError> {
        let removed = {
            let mut st = self.lock();
            check_empty(&st, group)?;
            st.groups.remove(group);
            st.sessions.retain(|(g, _), _| g != group);
            let keys: Vec<Key> = st
                .partitions
                .keys()
                .filter(|(g, _, _)| g == group)
                .cloned()
                .collect();
            keys.into_iter()
                .filter_map(|k| {
                    st.partitions
                        .remove(&k)
                        .map(|sp| snapshot(&k.0, k.1, k.2, &sp))
                })
                .map(|s| self.store.remove(s))
                .collect::<Vec<_>>()
        };
        durable(removed).await
    }

    /// Moves share-partitions' start offsets (AlterShareGroupOffsets; the group must
    /// have no members). A share-partition named for the first time is created there.
    pub async fn alter_offsets(
        &self,
        group: &str,
        offsets: &[(Uuid, i32, i64)],
    ) -> Result<(), ShareError> {
        if group.is_empty() {
            return Err(ShareError::InvalidGroupId);
        }
        let saved = {
            let mut st = self.lock();
            if st.groups.get(group).is_some_and(|g| !g.members.is_empty()) {
                return Err(ShareError::NonEmptyGroup);
            }
            st.groups.entry(group.to_string()).or_default();
            let mut saved = Vec::new();
            for &(t, p, offset) in offsets {
                let sp = st
                    .partitions
                    .entry((group.to_string(), t, p))
                    .or_insert_with(|| SharePartition::new(offset));
                sp.reset(offset);
                saved.push(self.store.save(snapshot(group, t, p, sp)));
            }
            saved
        };
        durable(saved).await
    }

    /// Forgets a share group's share-partitions of the given topics
    /// (DeleteShareGroupOffsets; the group must have no members).
    pub async fn delete_offsets(&self, group: &str, topics: &[Uuid]) -> Result<(), ShareError> {
        if group.is_empty() {
            return Err(ShareError::InvalidGroupId);
        }
        let removed = {
            let mut st = self.lock();
            check_empty(&st, group)?;
            let keys: Vec<Key> = st
                .partitions
                .keys()
                .filter(|(g, t, _)| g == group && topics.contains(t))
                .cloned()
                .collect();
            keys.into_iter()
                .filter_map(|k| {
                    st.partitions
                        .remove(&k)
                        .map(|sp| snapshot(&k.0, k.1, k.2, &sp))
                })
                .map(|s| self.store.remove(s))
                .collect::<Vec<_>>()
        };
        durable(removed).await
    }

    /// Checks and advances `member`'s share session for a request with `epoch`, adding
    /// and forgetting partitions; returns the session's partitions. Epoch 0 opens a new
    /// session (only a fetch may), -1 is the closing request (the caller ends it with
    /// [`Self::close_session`] once its acknowledgements are applied). A fetch names the
    /// connection it came in on (`fetch_on`): the session it opens ends with it.
    pub fn session_step(
        &self,
        group: &str,
        member: &str,
        epoch: i32,
        added: &[Tp],
        forgotten: &[Tp],
        fetch_on: Option<u64>,
    ) -> Result<Vec<Tp>, ShareError> {
        let mut st = self.lock();
        let key = (group.to_string(), member.to_string());
        match (SessionStep::from_epoch(epoch), fetch_on) {
            (SessionStep::Open, None) => Err(ShareError::InvalidShareSessionEpoch),
            (SessionStep::Open, Some(connection)) => {
                let mut s = Session {
                    next_epoch: 1,
                    connection,
                    ..Session::default()
                };
                s.update(added, forgotten);
                let parts = s.partitions.iter().copied().collect();
                st.sessions.insert(key, s);
                Ok(parts)
            }
            (SessionStep::Close, _) => {
                let s = st
                    .sessions
                    .get(&key)
                    .ok_or(ShareError::ShareSessionNotFound)?;
                Ok(s.partitions.iter().copied().collect())
            }
            (SessionStep::Continue(e), _) => {
                let s = st
                    .sessions
                    .get_mut(&key)
                    .ok_or(ShareError::ShareSessionNotFound)?;
                s.advance(e)?;
                s.update(added, forgotten);
                Ok(s.partitions.iter().copied().collect())
            }
        }
    }

    /// A connection closed: the share sessions opened on it end and their members'
    /// acquired records go back to the others at once, as Kafka does, rather than
    /// after the acquisition lock (a client killed with records in hand).
    pub fn connection_closed(&self, connection: u64) {
        let mut st = self.lock();
        let gone: Vec<(String, String)> = st
            .sessions
            .iter()
            .filter(|(_, s)| s.connection == connection)
            .map(|(k, _)| k.clone())
            .collect();
        for (group, member) in gone {
            self.member_gone(&mut st, &group, &member);
        }
    }

    /// Ends `member`'s share session and gives back what it still holds.
    pub fn close_session(&self, group: &str, member: &str) {
        let mut st = self.lock();
        self.member_gone(&mut st, group, member);
    }

    /// Applies acknowledgements and waits until their effect is durable.
    pub async fn acknowledge(
        &self,
        group: &str,
        member: &str,
        acks: Vec<(Tp, Vec<AckBatch>)>,
    ) -> AckOutcome {
        let limits = self.config.limits;
        let mut out = Vec::with_capacity(acks.len());
        let mut pending = Vec::new();
        {
            let mut st = self.lock();
            for (tp, batches) in acks {
                let key = (group.to_string(), tp.0, tp.1);
                let Some(sp) = st.partitions.get_mut(&key) else {
                    out.push((tp, Err(ShareError::InvalidRecordState)));
                    continue;
                };
                let mut result = Ok(());
                for (first, last, types) in &batches {
                    if let Err(e) = sp.acknowledge(member, *first, *last, types, &limits) {
                        result = Err(e);
                    }
                }
                pending.push((out.len(), self.store.save(snapshot(group, tp.0, tp.1, sp))));
                out.push((tp, result));
            }
        }
        self.wake_fetches();
        for (i, rx) in pending {
            if !matches!(rx.await, Ok(true)) {
                if let Some(slot) = out.get_mut(i) {
                    slot.1 = Err(ShareError::Storage);
                }
            }
        }
        out
    }

    /// One attempt to acquire records for `member` from `parts` (each with its log
    /// and the offset it may be read below), at most `max_records` and `max_bytes`
    /// in all.
    pub fn fetch_once(
        &self,
        group: &str,
        member: &str,
        parts: &[(Tp, Arc<Partition>, i64)],
        max_records: usize,
        max_bytes: usize,
    ) -> FetchOutcome {
        let limits = self.config.limits;
        let reset = self.config.auto_offset_reset;
        let now = Instant::now();
        let mut out = Vec::with_capacity(parts.len());
        let mut records_left = max_records;
        let mut bytes_left = max_bytes;
        let mut st = self.lock();
        for (tp, p, upper) in parts {
            let mut pf = PartitionFetch::default();
            if records_left == 0 {
                out.push((*tp, pf));
                continue;
            }
            let key = (group.to_string(), tp.0, tp.1);
            let sp = st.partitions.entry(key).or_insert_with(|| {
                SharePartition::new(match reset {
                    OffsetReset::Earliest => p.log_start_offset(),
                    OffsetReset::Latest => p.high_watermark(),
                })
            });
            let before = sp.version();
            let first = bytes_left == max_bytes;
            match super::read::acquire(
                sp,
                p,
                member,
                records_left,
                bytes_left,
                first,
                *upper,
                self.config.read_committed,
                now,
                &limits,
            ) {
                Ok(a) => {
                    records_left = records_left.saturating_sub(a.count);
                    bytes_left = bytes_left.saturating_sub(a.records.len());
                    pf.records = Some(a.records.freeze());
                    pf.acquired = a.ranges;
                }
                Err(e) => pf.error = Some(e),
            }
            if sp.version() != before {
                self.store.save_later(snapshot(group, tp.0, tp.1, sp));
            }
            out.push((*tp, pf));
        }
        drop(st);
        self.timer.notify_one();
        out
    }

    /// Registers a parked fetch to be woken when records are released.
    pub fn register_waiter(&self, n: &Arc<Notify>) {
        if let Ok(mut w) = self.waiters.lock() {
            w.retain(|x| x.strong_count() > 0);
            w.push(Arc::downgrade(n));
        }
    }

    fn wake_fetches(&self) {
        let drained = match self.waiters.lock() {
            Ok(mut w) => std::mem::take(&mut *w),
            Err(_) => return,
        };
        for n in drained.iter().filter_map(Weak::upgrade) {
            n.notify_one();
        }
    }

    /// Expires what is due at `now`: acquisition locks and member sessions. Returns
    /// the next deadline.
    fn tick(&self, now: Instant, topics: &TopicInfo) -> Option<Instant> {
        let limits = self.config.limits;
        let mut st = self.lock();
        let mut released = false;
        for ((g, t, p), sp) in st.partitions.iter_mut() {
            if sp.expire(now, &limits) {
                released = true;
                self.store.save_later(snapshot(g, *t, *p, sp));
            }
        }
        let mut gone = Vec::new();
        for (id, g) in st.groups.iter_mut() {
            for m in g.expire(now, topics) {
                gone.push((id.clone(), m));
            }
        }
        for (g, m) in gone {
            tracing::info!(group = %g, member = %m, "share group member's session expired");
            self.member_gone(&mut st, &g, &m);
        }
        if released {
            self.wake_fetches();
        }
        let locks = st.partitions.values().filter_map(|sp| sp.next_deadline());
        let members = st.groups.values().filter_map(|g| g.next_deadline());
        locks.chain(members).min()
    }
}

/// A share group known here (members, or share-partition state) without members.
fn check_empty(st: &State, group: &str) -> Result<(), ShareError> {
    match st.groups.get(group) {
        Some(g) if !g.members.is_empty() => Err(ShareError::NonEmptyGroup),
        Some(_) => Ok(()),
        None if st.partitions.keys().any(|(g, _, _)| g == group) => Ok(()),
        None => Err(ShareError::GroupIdNotFound),
    }
}

fn snapshot(group: &str, topic_id: Uuid, partition: i32, sp: &SharePartition) -> Snapshot {
    Snapshot {
        group: group.to_string(),
        topic_id,
        partition,
        spso: sp.start_offset(),
        speo: sp.end_offset(),
        entries: sp.entries(),
    }
}

async fn durable(rxs: Vec<tokio::sync::oneshot::Receiver<bool>>) -> Result<(), ShareError> {
    let mut ok = true;
    for rx in rxs {
        ok &= matches!(rx.await, Ok(true));
    }
    ok.then_some(()).ok_or(ShareError::Storage)
}

/// The topics of the current metadata image, as the assignor sees them.
pub fn topic_info(broker: &Broker) -> TopicInfo {
    broker
        .metadata
        .image()
        .topics
        .iter()
        .map(|(name, t)| (name.clone(), (t.id, t.partitions.len() as i32)))
        .collect()
}

/// Starts the task that expires locks and sessions at their deadlines. It holds the
/// broker weakly and ends with it.
pub fn start_timer(broker: &Arc<Broker>) {
    let weak = Arc::downgrade(broker);
    let wake = broker.shares.timer.clone();
    tokio::spawn(async move {
        loop {
            let next = {
                let Some(b) = weak.upgrade() else { return };
                b.shares.tick(Instant::now(), &topic_info(&b))
            };
            match next {
                Some(at) => {
                    let at = tokio::time::Instant::from_std(at);
                    let _ = tokio::time::timeout_at(at, wake.notified()).await;
                }
                None => {
                    // Nothing is due; wake on a change, or look again now and then so
                    // a dropped broker ends this task.
                    let _ =
                        tokio::time::timeout(std::time::Duration::from_secs(60), wake.notified())
                            .await;
                }
            }
        }
    });
}
