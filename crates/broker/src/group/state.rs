//! One classic group's state machine, as Kafka's group coordinator runs it:
//!
//! ```text
//!            join                     all joined / rebalance timeout
//!  Empty ──────────► PreparingRebalance ─────────────────────► CompletingRebalance
//!    ▲                 ▲          ▲   (members left: Empty)         │ leader's SyncGroup
//!    │ last member     │ join,    │                                 ▼
//!    │ leaves/expires  │ leave,   └──────── join / leave / expiry ─ Stable
//!    └─────────────────┘ expiry
//!  any ── DeleteGroups / all offsets expired ──► Dead (a later join starts afresh)
//! ```
//!
//! Methods take the current time and return [`Effects`]: records to append to
//! `__consumer_offsets` and parked JoinGroup/SyncGroup answers to send once those
//! records are in the log. The caller (the group's task) owns the I/O; nothing here
//! blocks or awaits, which keeps the rules testable with a fake clock.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::time::Instant;

mod admin;
mod lifecycle;
mod membership;
mod offsets;
pub use lifecycle::{offsets_due_ms, Idle};

use super::consumer::{ConsumerGroup, ConsumerHeartbeat, ConsumerHeartbeatResponse};
use super::records::{GroupValue, MemberValue, OffsetValue, RecordKey};
use super::{
    CommitRequest, CommittedOffset, ConsumerGroupDescription, ConsumerMemberDescription,
    GroupConfig, GroupDescription, GroupError, JoinRequest, JoinResponse, JoinedMember,
    MemberDescription, MemberRef, SyncRequest, SyncResponse,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    /// The name Kafka uses in DescribeGroups and ListGroups.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// A parked answer, sent once the effects' records are durable.
pub enum Reply {
    Join(oneshot::Sender<JoinResponse>, JoinResponse),
    Sync(oneshot::Sender<SyncResponse>, SyncResponse),
}

/// What a command asks of the group's task: append these records (key, value or
/// tombstone), then send these replies.
#[derive(Default)]
pub struct Effects {
    pub records: Vec<(RecordKey, Option<Vec<u8>>)>,
    pub replies: Vec<Reply>,
}

struct Member {
    group_instance_id: Option<String>,
    client_id: String,
    client_host: String,
    session_timeout: Duration,
    rebalance_timeout: Duration,
    protocol_type: String,
    protocols: Vec<(String, Bytes)>,
    assignment: Bytes,
    awaiting_join: Option<oneshot::Sender<JoinResponse>>,
    awaiting_sync: Option<oneshot::Sender<SyncResponse>>,
    session_deadline: Instant,
}

impl Member {
    fn metadata(&self, protocol: Option<&str>) -> Bytes {
        protocol
            .and_then(|p| self.protocols.iter().find(|(n, _)| n == p))
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }
}

/// An offset to store, by (topic, partition).
pub type OffsetEntry = ((String, i32), StoredOffset);

/// A committed offset and where its record sits in `__consumer_offsets`: when a
/// transaction commits, its offset replaces the current one only if its record was
/// written later (Kafka's rule), so an older transactional commit never undoes a newer
/// plain one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredOffset {
    pub value: OffsetValue,
    /// The log offset of the record's batch (or the partition's log end just before it
    /// was written: the same order).
    pub appended_at: i64,
}

pub struct Group {
    pub id: String,
    config: Arc<GroupConfig>,
    state: GroupState,
    /// Wall-clock time of the last state change (`currentStateTimestamp`).
    state_since_ms: i64,
    protocol_type: Option<String>,
    protocol_name: Option<String>,
    generation: i32,
    leader: Option<String>,
    members: BTreeMap<String, Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED (KIP-394), until they join or expire.
    pending: HashMap<String, Instant>,
    /// `group.instance.id` → member id (KIP-345).
    static_members: HashMap<String, String>,
    rebalance_deadline: Option<Instant>,
    /// During `group.initial.rebalance.delay.ms`: whether a member joined in this round,
    /// and how much of the rebalance timeout is left to extend into.
    initial_delay: Option<(bool, Duration)>,
    offsets: BTreeMap<(String, i32), StoredOffset>,
    /// Offsets committed inside open transactions, by producer id: applied when the
    /// commit marker is written, dropped on abort.
    pending_txn: HashMap<i64, BTreeMap<(String, i32), StoredOffset>>,
    /// The log end of the group's `__consumer_offsets` partition before the command
    /// being applied: where its records will go ([`Group::at_log_position`]).
    log_position: i64,
    next_offset_check: Instant,
    /// KIP-848 members. A group is either classic or consumer: it takes the type of the
    /// protocol that joins it while it has no members.
    consumer: ConsumerGroup,
    is_consumer: bool,
}

/// A committed transaction's offset replaces the current one only if its record is
/// the later of the two in the log.
pub fn apply_if_newer(
    offsets: &mut BTreeMap<(String, i32), StoredOffset>,
    key: (String, i32),
    pending: StoredOffset,
) {
    if offsets
        .get(&key)
        .is_none_or(|cur| cur.appended_at < pending.appended_at)
    {
        offsets.insert(key, pending);
    }
}

fn reply_join(out: &mut Effects, m: &mut Member, resp: JoinResponse) {
    if let Some(tx) = m.awaiting_join.take() {
        out.replies.push(Reply::Join(tx, resp));
    }
}

fn reply_sync(out: &mut Effects, m: &mut Member, resp: SyncResponse) {
    if let Some(tx) = m.awaiting_sync.take() {
        out.replies.push(Reply::Sync(tx, resp));
    }
}

impl Group {
    pub fn new(id: String, config: Arc<GroupConfig>, now: Instant, now_ms: i64) -> Self {
        let check = Duration::from_millis(config.offsets_retention_check_interval_ms.max(1) as u64);
        Self {
            id,
            config,
            state: GroupState::Empty,
            state_since_ms: now_ms,
            protocol_type: None,
            protocol_name: None,
            generation: 0,
            leader: None,
            members: BTreeMap::new(),
            pending: HashMap::new(),
            static_members: HashMap::new(),
            rebalance_deadline: None,
            initial_delay: None,
            offsets: BTreeMap::new(),
            pending_txn: HashMap::new(),
            log_position: 0,
            next_offset_check: now + check,
            consumer: ConsumerGroup::default(),
            is_consumer: false,
        }
    }

    pub fn state(&self) -> GroupState {
        self.state
    }

    pub fn generation(&self) -> i32 {
        self.generation
    }

    pub fn protocol_type(&self) -> Option<&str> {
        self.protocol_type.as_deref()
    }

    /// Restores what `__consumer_offsets` holds for this group (replayed at startup).
    /// A stored membership comes back Stable, each member with a fresh session.
    pub fn restore(
        &mut self,
        group: Option<GroupValue>,
        offsets: Vec<(String, i32, StoredOffset)>,
        pending_txn: HashMap<i64, BTreeMap<(String, i32), StoredOffset>>,
        consumer: super::consumer::Stored,
        now: Instant,
    ) {
        for (topic, partition, stored) in offsets {
            self.offsets.insert((topic, partition), stored);
        }
        self.pending_txn = pending_txn;
        if !consumer.is_empty() {
            // A KIP-848 group: its members come back with their epochs and assignments
            // and a fresh session to heartbeat in.
            self.is_consumer = true;
            let session =
                Duration::from_millis(self.config.consumer_session_timeout_ms.max(1) as u64);
            self.consumer.restore(consumer, session, now);
        }
        let Some(g) = group else { return };
        self.protocol_type = (!g.protocol_type.is_empty()).then_some(g.protocol_type);
        self.generation = g.generation;
        self.protocol_name = g.protocol;
        self.leader = g.leader;
        if g.current_state_timestamp > 0 {
            self.state_since_ms = g.current_state_timestamp;
        }
        for m in g.members {
            let session = Duration::from_millis(m.session_timeout.max(0) as u64);
            if let Some(iid) = &m.group_instance_id {
                self.static_members.insert(iid.clone(), m.member_id.clone());
            }
            let protocol = self.protocol_name.clone().unwrap_or_default();
            self.members.insert(
                m.member_id,
                Member {
                    group_instance_id: m.group_instance_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                    session_timeout: session,
                    rebalance_timeout: Duration::from_millis(m.rebalance_timeout.max(0) as u64),
                    protocol_type: self.protocol_type.clone().unwrap_or_default(),
                    protocols: vec![(protocol, m.subscription)],
                    assignment: m.assignment,
                    awaiting_join: None,
                    awaiting_sync: None,
                    session_deadline: now + session,
                },
            );
        }
        self.state = if self.members.is_empty() {
            GroupState::Empty
        } else {
            GroupState::Stable
        };
    }

    /// A Dead group that is used again starts over as a new, empty group.
    fn revive(&mut self, now: Instant, now_ms: i64) {
        if self.state == GroupState::Dead {
            *self = Group::new(self.id.clone(), self.config.clone(), now, now_ms);
        }
    }

    fn transition(&mut self, to: GroupState, now_ms: i64) {
        self.state = to;
        self.state_since_ms = now_ms;
    }

    /// The earliest time something is due: a session, a pending member id, the
    /// rebalance (or initial delay) deadline, or the offset-expiry check.
    pub fn next_deadline(&self) -> Instant {
        let mut next = self.next_offset_check;
        for m in self.members.values() {
            if m.awaiting_join.is_none() && m.awaiting_sync.is_none() {
                next = next.min(m.session_deadline);
            }
        }
        for d in self.pending.values() {
            next = next.min(*d);
        }
        if let Some(d) = self.rebalance_deadline {
            next = next.min(d);
        }
        if let Some(d) = self.consumer.next_deadline() {
            next = next.min(d);
        }
        next
    }

    // ----- JoinGroup -----

    pub fn join(
        &mut self,
        req: JoinRequest,
        tx: oneshot::Sender<JoinResponse>,
        now: Instant,
        now_ms: i64,
    ) -> Effects {
        let mut out = Effects::default();
        self.revive(now, now_ms);
        let fail =
            |out: &mut Effects, e: GroupError, tx: oneshot::Sender<JoinResponse>, id: String| {
                out.replies
                    .push(Reply::Join(tx, JoinResponse::error(e, id)));
            };
        if req.session_timeout_ms < self.config.min_session_timeout_ms
            || req.session_timeout_ms > self.config.max_session_timeout_ms
        {
            fail(
                &mut out,
                GroupError::InvalidSessionTimeout,
                tx,
                req.member_id,
            );
            return out;
        }
        // A KIP-848 group with members takes no classic ones (no online migration).
        if !self.consumer.is_empty() || !self.supports_protocols(&req.protocol_type, &req.protocols)
        {
            fail(
                &mut out,
                GroupError::InconsistentGroupProtocol,
                tx,
                req.member_id,
            );
            return out;
        }
        self.is_consumer = false;
        if req.member_id.is_empty() {
            if let Some(iid) = req.group_instance_id.clone() {
                if let Some(old) = self.static_members.get(&iid).cloned() {
                    return self.static_rejoin(old, req, tx, now, now_ms);
                }
                if self.members.len() >= self.config.max_size {
                    fail(&mut out, GroupError::GroupMaxSizeReached, tx, String::new());
                    return out;
                }
                let id = format!("{iid}-{}", uuid::Uuid::new_v4());
                self.add_member(&mut out, id, req, tx, now, now_ms);
                return out;
            }
            if self.members.len() + self.pending.len() >= self.config.max_size {
                fail(&mut out, GroupError::GroupMaxSizeReached, tx, String::new());
                return out;
            }
            let id = format!("{}-{}", req.client_id, uuid::Uuid::new_v4());
            if req.require_known_member_id {
                self.pending.insert(
                    id.clone(),
                    now + Duration::from_millis(req.session_timeout_ms as u64),
                );
                fail(&mut out, GroupError::MemberIdRequired, tx, id);
                return out;
            }
            self.add_member(&mut out, id, req, tx, now, now_ms);
            return out;
        }
        let id = req.member_id.clone();
        if self.pending.remove(&id).is_some() {
            self.add_member(&mut out, id, req, tx, now, now_ms);
            return out;
        }
        if !self.members.contains_key(&id) {
            let e = match &req.group_instance_id {
                Some(iid) if self.static_members.contains_key(iid) => GroupError::FencedInstanceId,
                _ => GroupError::UnknownMemberId,
            };
            fail(&mut out, e, tx, id);
            return out;
        }
        if let Some(iid) = &req.group_instance_id {
            if self.static_members.get(iid) != Some(&id) {
                fail(&mut out, GroupError::FencedInstanceId, tx, id);
                return out;
            }
        }
        match self.state {
            GroupState::PreparingRebalance => {
                self.update_member(&id, &req, tx, now);
                self.try_complete_join(&mut out, now, now_ms);
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                let unchanged = self
                    .members
                    .get(&id)
                    .is_some_and(|m| m.protocols == req.protocols);
                let is_leader = self.leader.as_deref() == Some(id.as_str());
                let immediate =
                    unchanged && (self.state == GroupState::CompletingRebalance || !is_leader);
                if immediate {
                    // A lost JoinGroup answer, or a follower re-joining with nothing
                    // new: answer with the current generation, no rebalance.
                    let resp = self.join_response(&id, is_leader);
                    if let Some(m) = self.members.get_mut(&id) {
                        m.session_deadline = now + m.session_timeout;
                    }
                    out.replies.push(Reply::Join(tx, resp));
                } else {
                    self.update_member(&id, &req, tx, now);
                    self.prepare_rebalance(&mut out, now, now_ms);
                }
            }
            GroupState::Empty | GroupState::Dead => {
                fail(&mut out, GroupError::UnknownMemberId, tx, id);
            }
        }
        out
    }

    /// Whether a joining member's protocols fit: an empty group takes any non-empty
    /// set; otherwise the type must match and one protocol must be shared by everyone.
    fn supports_protocols(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if protocol_type.is_empty() || protocols.is_empty() {
            return false;
        }
        if self.members.is_empty() {
            return true;
        }
        if self.protocol_type.as_deref() != Some(protocol_type) {
            return false;
        }
        protocols.iter().any(|(name, _)| {
            self.members
                .values()
                .all(|m| m.protocols.iter().any(|(n, _)| n == name))
        })
    }

    fn add_member(
        &mut self,
        out: &mut Effects,
        id: String,
        req: JoinRequest,
        tx: oneshot::Sender<JoinResponse>,
        now: Instant,
        now_ms: i64,
    ) {
        if self.members.is_empty() {
            self.protocol_type = Some(req.protocol_type.clone());
        }
        if let Some(iid) = &req.group_instance_id {
            self.static_members.insert(iid.clone(), id.clone());
        }
        let session = Duration::from_millis(req.session_timeout_ms as u64);
        self.members.insert(
            id.clone(),
            Member {
                group_instance_id: req.group_instance_id,
                client_id: req.client_id,
                client_host: req.client_host,
                session_timeout: session,
                rebalance_timeout: Duration::from_millis(req.rebalance_timeout_ms.max(0) as u64),
                protocol_type: req.protocol_type,
                protocols: req.protocols,
                assignment: Bytes::new(),
                awaiting_join: Some(tx),
                awaiting_sync: None,
                session_deadline: now + session,
            },
        );
        if self.leader.is_none() {
            self.leader = Some(id);
        }
        if let Some((joined, _)) = self.initial_delay.as_mut() {
            *joined = true;
        }
        match self.state {
            GroupState::PreparingRebalance => self.try_complete_join(out, now, now_ms),
            _ => self.prepare_rebalance(out, now, now_ms),
        }
    }

    fn update_member(
        &mut self,
        id: &str,
        req: &JoinRequest,
        tx: oneshot::Sender<JoinResponse>,
        now: Instant,
    ) {
        if let Some(m) = self.members.get_mut(id) {
            m.protocols = req.protocols.clone();
            m.session_timeout = Duration::from_millis(req.session_timeout_ms as u64);
            m.rebalance_timeout = Duration::from_millis(req.rebalance_timeout_ms.max(0) as u64);
            m.client_id = req.client_id.clone();
            m.client_host = req.client_host.clone();
            m.session_deadline = now + m.session_timeout;
            // A second JoinGroup from the same member replaces the first; the first
            // one's connection gets an error when its sender is dropped.
            m.awaiting_join = Some(tx);
        }
    }

    /// KIP-345: a static member coming back under a new member id replaces the old
    /// one. In a stable group with unchanged metadata this is no rebalance at all.
    fn static_rejoin(
        &mut self,
        old: String,
        req: JoinRequest,
        tx: oneshot::Sender<JoinResponse>,
        now: Instant,
        now_ms: i64,
    ) -> Effects {
        let mut out = Effects::default();
        let Some(mut member) = self.members.remove(&old) else {
            self.static_members
                .remove(req.group_instance_id.as_deref().unwrap_or_default());
            self.add_member(
                &mut out,
                format!("{}-{}", req.client_id, uuid::Uuid::new_v4()),
                req,
                tx,
                now,
                now_ms,
            );
            return out;
        };
        let iid = req.group_instance_id.clone().unwrap_or_default();
        let new_id = format!("{iid}-{}", uuid::Uuid::new_v4());
        // The old incarnation's parked requests are fenced.
        if let Some(t) = member.awaiting_join.take() {
            out.replies.push(Reply::Join(
                t,
                JoinResponse::error(GroupError::FencedInstanceId, old.clone()),
            ));
        }
        if let Some(t) = member.awaiting_sync.take() {
            out.replies.push(Reply::Sync(
                t,
                SyncResponse::error(GroupError::FencedInstanceId),
            ));
        }
        let unchanged = member.protocols == req.protocols;
        member.client_id = req.client_id.clone();
        member.client_host = req.client_host.clone();
        member.session_timeout = Duration::from_millis(req.session_timeout_ms as u64);
        member.rebalance_timeout = Duration::from_millis(req.rebalance_timeout_ms.max(0) as u64);
        member.session_deadline = now + member.session_timeout;
        member.protocols = req.protocols.clone();
        self.members.insert(new_id.clone(), member);
        self.static_members.insert(iid, new_id.clone());
        let was_leader = self.leader.as_deref() == Some(old.as_str());
        if was_leader {
            self.leader = Some(new_id.clone());
        }
        match self.state {
            GroupState::Stable if unchanged => {
                // Persist the new member id so a restart keeps it, then hand back the
                // current generation. A returning leader does not get to reassign
                // (KIP-814: skip_assignment) since nothing changed.
                out.records.push(self.group_record(now_ms));
                let mut resp =
                    self.join_response(&new_id, was_leader && req.supports_skip_assignment);
                resp.skip_assignment = was_leader && req.supports_skip_assignment;
                if was_leader && !req.supports_skip_assignment {
                    resp.leader = String::new();
                }
                out.replies.push(Reply::Join(tx, resp));
            }
            GroupState::PreparingRebalance => {
                if let Some(m) = self.members.get_mut(&new_id) {
                    m.awaiting_join = Some(tx);
                }
                self.try_complete_join(&mut out, now, now_ms);
            }
            _ => {
                if let Some(m) = self.members.get_mut(&new_id) {
                    m.awaiting_join = Some(tx);
                }
                self.prepare_rebalance(&mut out, now, now_ms);
            }
        }
        out
    }

    fn join_response(&self, member_id: &str, with_members: bool) -> JoinResponse {
        let protocol = self.protocol_name.as_deref();
        let members = if with_members {
            self.members
                .iter()
                .map(|(id, m)| JoinedMember {
                    member_id: id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    metadata: m.metadata(protocol),
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinResponse {
            error: None,
            generation_id: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            skip_assignment: false,
            member_id: member_id.to_string(),
            members,
        }
    }

    fn prepare_rebalance(&mut self, out: &mut Effects, now: Instant, now_ms: i64) {
        if self.state == GroupState::CompletingRebalance {
            // Members waiting for an assignment of the generation being abandoned.
            for m in self.members.values_mut() {
                m.assignment = Bytes::new();
                reply_sync(out, m, SyncResponse::error(GroupError::RebalanceInProgress));
            }
        }
        let max_rebalance = self
            .members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or_default();
        let delay = Duration::from_millis(self.config.initial_rebalance_delay_ms.max(0) as u64);
        if self.state == GroupState::Empty && !delay.is_zero() {
            self.initial_delay = Some((false, max_rebalance.saturating_sub(delay)));
            self.rebalance_deadline =
                Some(now + delay.min(max_rebalance.max(Duration::from_millis(1))));
        } else {
            self.initial_delay = None;
            self.rebalance_deadline = Some(now + max_rebalance);
        }
        self.transition(GroupState::PreparingRebalance, now_ms);
        self.try_complete_join(out, now, now_ms);
    }

    fn try_complete_join(&mut self, out: &mut Effects, now: Instant, now_ms: i64) {
        if self.state != GroupState::PreparingRebalance || self.initial_delay.is_some() {
            return;
        }
        if self.pending.is_empty() && self.members.values().all(|m| m.awaiting_join.is_some()) {
            self.complete_join(out, now, now_ms);
        }
    }

    fn complete_join(&mut self, out: &mut Effects, now: Instant, now_ms: i64) {
        self.rebalance_deadline = None;
        self.initial_delay = None;
        let gone: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| m.awaiting_join.is_none())
            .map(|(id, _)| id.clone())
            .collect();
        for id in gone {
            self.drop_member(out, &id);
        }
        self.generation += 1;
        if self.members.is_empty() {
            self.protocol_name = None;
            self.leader = None;
            self.transition(GroupState::Empty, now_ms);
            out.records.push(self.group_record(now_ms));
            return;
        }
        self.protocol_name = self.select_protocol();
        if !self
            .leader
            .as_ref()
            .is_some_and(|l| self.members.contains_key(l))
        {
            self.leader = self.members.keys().next().cloned();
        }
        self.transition(GroupState::CompletingRebalance, now_ms);
        let leader = self.leader.clone().unwrap_or_default();
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let resp = self.join_response(&id, id == leader);
            if let Some(m) = self.members.get_mut(&id) {
                m.session_deadline = now + m.session_timeout;
                reply_join(out, m, resp);
            }
        }
    }

    /// The protocol every member supports that most members prefer (each votes for its
    /// first supported choice); ties go to the earlier member's preference.
    fn select_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        let candidates: Vec<&String> = first
            .protocols
            .iter()
            .map(|(n, _)| n)
            .filter(|n| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(x, _)| x == *n))
            })
            .collect();
        let mut votes: Vec<(&String, usize)> = candidates.iter().map(|c| (*c, 0)).collect();
        for m in self.members.values() {
            if let Some((vote, _)) = m.protocols.iter().find(|(n, _)| candidates.contains(&n)) {
                if let Some(v) = votes.iter_mut().find(|(c, _)| *c == vote) {
                    v.1 += 1;
                }
            }
        }
        let best = votes.iter().map(|(_, n)| *n).max()?;
        votes
            .into_iter()
            .find(|(_, n)| *n == best)
            .map(|(c, _)| c.clone())
    }

    /// Removes a member without triggering anything (the caller decides).
    fn drop_member(&mut self, out: &mut Effects, id: &str) {
        if let Some(mut m) = self.members.remove(id) {
            if let Some(iid) = &m.group_instance_id {
                if self.static_members.get(iid).map(String::as_str) == Some(id) {
                    self.static_members.remove(iid);
                }
            }
            reply_join(
                out,
                &mut m,
                JoinResponse::error(GroupError::UnknownMemberId, id.to_string()),
            );
            reply_sync(
                out,
                &mut m,
                SyncResponse::error(GroupError::UnknownMemberId),
            );
        }
        if self.leader.as_deref() == Some(id) {
            self.leader = self.members.keys().next().cloned();
        }
    }

    /// A member leaves (LeaveGroup) or its session expires: the others rebalance.
    fn remove_member(&mut self, out: &mut Effects, id: &str, now: Instant, now_ms: i64) {
        self.drop_member(out, id);
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(out, now, now_ms)
            }
            GroupState::PreparingRebalance => self.try_complete_join(out, now, now_ms),
            GroupState::Empty | GroupState::Dead => {}
        }
    }
}

/// Topics in a consumer-protocol subscription (`ConsumerProtocolSubscription`: version,
/// then an array of topic names). Unreadable metadata subscribes to nothing.
fn subscribed_topics(metadata: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    if metadata.len() < 6 {
        return out;
    }
    let count = i32::from_be_bytes([metadata[2], metadata[3], metadata[4], metadata[5]]);
    let mut pos = 6;
    for _ in 0..count.max(0) {
        let Some(len) = metadata.get(pos..pos + 2) else {
            break;
        };
        let len = i16::from_be_bytes([len[0], len[1]]);
        pos += 2;
        let Some(name) = (len >= 0)
            .then(|| metadata.get(pos..pos + len as usize))
            .flatten()
        else {
            break;
        };
        out.push(String::from_utf8_lossy(name).into_owned());
        pos += len as usize;
    }
    out
}

#[cfg(test)]
mod tests;
