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
use super::persister::{from_batches, to_batches, Persister};
use super::session::{Session, SessionStep, Tp};
use super::state::{ShareState, ShareStateCoordinator, StateKey};
use super::{OffsetReset, ShareConfig, ShareError};
use crate::error::ReplicaError;
use crate::host::Host;
use crate::partition::Partition;

mod admin;

type Key = (String, Uuid, i32);

#[derive(Default)]
struct State {
    groups: BTreeMap<String, ShareGroup>,
    partitions: HashMap<Key, SharePartition>,
    sessions: HashMap<(String, String), Session>,
    /// The share-partitions loaded from their share coordinator, with the leader epoch
    /// they were loaded under and their state epoch. A partition led here again under
    /// a new epoch is loaded again: what is held of it may be stale.
    loaded: HashMap<Key, (i32, i32)>,
    /// The topics each group's members subscribed to since this broker started (what
    /// DescribeShareGroupOffsets covers when it names no topics; not persisted).
    subscribed: HashMap<String, std::collections::BTreeSet<String>>,
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
    persister: Persister,
    /// The share coordinator of the `__share_group_state` partitions led here.
    pub share_state: Arc<ShareStateCoordinator>,
    /// What this coordinator sees of the broker (see `host`).
    host: Arc<Host>,
}

impl ShareCoordinator {
    /// Opens the coordinator. Share-partition state is loaded from the share
    /// coordinator when a partition is first fetched ([`Self::ensure_loaded`]).
    pub fn open(config: ShareConfig, data_dir: &std::path::Path, host: Arc<Host>) -> Self {
        let persister = Persister::open(data_dir);
        let mut state = State::default();
        for g in persister.legacy_groups() {
            state.groups.entry(g).or_default();
        }
        let coordinator = Arc::new(ShareStateCoordinator::new(config.state, host.clone()));
        Self {
            config,
            state: Mutex::new(state),
            timer: Arc::new(Notify::new()),
            waiters: Mutex::new(Vec::new()),
            persister,
            share_state: coordinator,
            host,
        }
    }

    /// Starts the persister's writer and the timer (once the broker exists).
    pub fn start(self: &Arc<Self>) {
        self.persister.start(&self.share_state);
        start_timer(self);
    }

    /// Loads, from their share coordinator, the share-partitions of `group` among
    /// `parts` that are not loaded under their current leader epoch. A partition whose
    /// state cannot be read stays unloaded: it serves nothing until a later fetch loads
    /// it (never a fresh start that would redeliver acknowledged records).
    pub async fn ensure_loaded(&self, group: &str, parts: &[(Tp, Arc<Partition>, i64)]) {
        for (tp, p, _) in parts {
            let key = (group.to_string(), tp.0, tp.1);
            let epoch = p.leader_epoch();
            if self.lock().loaded.get(&key).map(|l| l.0) == Some(epoch) {
                continue;
            }
            let skey = StateKey {
                group: group.to_string(),
                topic_id: tp.0,
                partition: tp.1,
            };
            let stored = match self.persister.load(&self.share_state, &skey, epoch).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(group, partition = tp.1, error = %e, "share-partition state not available");
                    continue;
                }
            };
            let sp = if stored.start_offset >= 0 {
                let entries = from_batches(&stored.batches, self.config.limits.max_in_flight * 2);
                let speo = stored
                    .batches
                    .iter()
                    .map(|b| b.last_offset.saturating_add(1))
                    .max()
                    .unwrap_or(stored.start_offset);
                SharePartition::restore(stored.start_offset, speo, entries)
            } else {
                SharePartition::new(match self.group_config(group).auto_offset_reset {
                    OffsetReset::Earliest => p.log_start_offset(),
                    OffsetReset::Latest => p.high_watermark(),
                })
            };
            let mut st = self.lock();
            if st.loaded.get(&key).map(|l| l.0) == Some(epoch) {
                continue; // another fetch loaded it meanwhile, and may have acquired
            }
            st.loaded.insert(key.clone(), (epoch, stored.state_epoch));
            st.groups.entry(group.to_string()).or_default();
            st.partitions.insert(key, sp);
        }
    }

    /// The settings for `group`: the broker's, with the group's own configs applied.
    pub fn group_config(&self, group: &str) -> ShareConfig {
        self.config
            .with_group(self.host.metadata.image().group_configs.get(group))
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
        st.groups.contains_key(group)
            || st.partitions.keys().any(|(g, _, _)| g == group)
            || self.share_state.groups().iter().any(|g| g == group)
    }

    /// Applies a ShareGroupHeartbeat. A member that leaves gives back its records.
    pub fn heartbeat(
        &self,
        group: &str,
        h: Heartbeat,
        topics: &TopicInfo,
        cfg: &ShareConfig,
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
        if let Some(ts) = &h.subscribed {
            st.subscribed
                .entry(group.to_string())
                .or_default()
                .extend(ts.iter().cloned());
        }
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
        let State {
            partitions,
            loaded,
            sessions,
            ..
        } = st;
        for (k, sp) in partitions.iter_mut() {
            if k.0 == group && sp.release_member(member, &limits) {
                released = true;
                let (key, state) = durable_state(loaded, k, sp);
                self.persister.save_later(key, state);
            }
        }
        // A share-partition nobody holds records of and no share session of the group
        // fetches is unloaded: its state is with its share coordinator, and the next
        // fetch reads it back (so a reset of the offsets made through another broker
        // while the group was empty is seen).
        let in_use: std::collections::BTreeSet<Tp> = sessions
            .iter()
            .filter(|((g, _), _)| g == group)
            .flat_map(|(_, s)| s.partitions.iter().copied())
            .collect();
        let idle: Vec<Key> = partitions
            .iter()
            .filter(|(k, sp)| {
                k.0 == group && sp.next_deadline().is_none() && !in_use.contains(&(k.1, k.2))
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in idle {
            partitions.remove(&k);
            loaded.remove(&k);
        }
        if released {
            self.wake_fetches();
        }
    }

    pub fn list(&self) -> Vec<(String, &'static str)> {
        let st = self.lock();
        let mut out: Vec<(String, &'static str)> = st
            .groups
            .iter()
            .map(|(id, g)| (id.clone(), g.state_name()))
            .collect();
        // Groups whose state this broker coordinates but that nobody consumed since
        // it started (membership is not persisted): empty share groups.
        for g in self.share_state.groups() {
            if !st.groups.contains_key(&g) {
                out.push((g, "Empty"));
            }
        }
        out
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
        renew: bool,
        cfg: &ShareConfig,
    ) -> AckOutcome {
        let limits = cfg.limits;
        let renew_at = renew.then(Instant::now);
        let mut out = Vec::with_capacity(acks.len());
        let mut pending = Vec::new();
        {
            let mut st = self.lock();
            let State {
                partitions, loaded, ..
            } = &mut *st;
            for (tp, batches) in acks {
                let key = (group.to_string(), tp.0, tp.1);
                let Some(sp) = partitions.get_mut(&key) else {
                    out.push((tp, Err(ShareError::InvalidRecordState)));
                    continue;
                };
                let mut result = Ok(());
                let before = sp.version();
                for (first, last, types) in &batches {
                    if let Err(e) =
                        sp.acknowledge_or_renew(member, *first, *last, types, renew_at, &limits)
                    {
                        result = Err(e);
                    }
                }
                if sp.version() == before {
                    // Only renewals (or nothing): no new state to make durable.
                    out.push((tp, result));
                    continue;
                }
                let (k, state) = durable_state(loaded, &key, sp);
                pending.push((out.len(), self.persister.save(k, state)));
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
        cfg: &ShareConfig,
    ) -> FetchOutcome {
        let limits = cfg.limits;
        let now = Instant::now();
        let mut out = Vec::with_capacity(parts.len());
        let mut records_left = max_records;
        let mut bytes_left = max_bytes;
        let mut st = self.lock();
        let State {
            partitions, loaded, ..
        } = &mut *st;
        for (tp, p, upper) in parts {
            let mut pf = PartitionFetch::default();
            if records_left == 0 {
                out.push((*tp, pf));
                continue;
            }
            let key = (group.to_string(), tp.0, tp.1);
            // Only a share-partition loaded under the current leader epoch is served.
            if loaded.get(&key).map(|l| l.0) != Some(p.leader_epoch()) {
                out.push((*tp, pf));
                continue;
            }
            let Some(sp) = partitions.get_mut(&key) else {
                out.push((*tp, pf));
                continue;
            };
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
                cfg.read_committed,
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
                let (k, state) = durable_state(loaded, &key, sp);
                self.persister.save_later(k, state);
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
        let State {
            partitions, loaded, ..
        } = &mut *st;
        for (k, sp) in partitions.iter_mut() {
            if sp.expire(now, &limits) {
                released = true;
                let (key, state) = durable_state(loaded, k, sp);
                self.persister.save_later(key, state);
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

fn state_key(k: &Key) -> StateKey {
    StateKey {
        group: k.0.clone(),
        topic_id: k.1,
        partition: k.2,
    }
}

/// What a share-partition writes to its share coordinator: its start offset and
/// in-flight records, under the leader and state epochs it was loaded with (leader
/// epoch -1 for one never loaded here: AlterShareGroupOffsets).
fn durable_state(
    loaded: &HashMap<Key, (i32, i32)>,
    k: &Key,
    sp: &SharePartition,
) -> (StateKey, ShareState) {
    let (leader_epoch, state_epoch) = loaded.get(k).copied().unwrap_or((-1, 0));
    (
        state_key(k),
        ShareState {
            snapshot_epoch: 0,
            state_epoch,
            leader_epoch,
            start_offset: sp.start_offset(),
            batches: to_batches(&sp.entries()),
        },
    )
}

async fn durable(rxs: Vec<tokio::sync::oneshot::Receiver<bool>>) -> Result<(), ShareError> {
    let mut ok = true;
    for rx in rxs {
        ok &= matches!(rx.await, Ok(true));
    }
    ok.then_some(()).ok_or(ShareError::Storage)
}

/// The topics of the current metadata image, as the assignor sees them.
pub fn topic_info(host: &Host) -> TopicInfo {
    host.metadata
        .image()
        .topics
        .iter()
        .map(|(name, t)| (name.clone(), (t.id, t.partitions.len() as i32)))
        .collect()
}

/// Starts the task that expires locks and sessions at their deadlines. It holds the
/// coordinator (which the broker owns) weakly and ends with it.
fn start_timer(shares: &Arc<ShareCoordinator>) {
    let weak = Arc::downgrade(shares);
    let wake = shares.timer.clone();
    tokio::spawn(async move {
        loop {
            let next = {
                let Some(b) = weak.upgrade() else { return };
                b.tick(Instant::now(), &topic_info(&b.host))
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
