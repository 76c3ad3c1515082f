//! The next-generation consumer group protocol (KIP-848): members heartbeat with
//! ConsumerGroupHeartbeat, the coordinator computes the assignment, and each member
//! converges on its target on its own, without a group-wide barrier.
//!
//! # Epochs
//! - The *group epoch* moves whenever membership, a subscription or the metadata of a
//!   subscribed topic changes. Each move computes a new *target assignment*.
//! - Each member has a *member epoch*. A member moves to the target epoch once it has
//!   given up every partition it owns that is no longer in its target (incremental
//!   revocation). Partitions it gains are handed over only once their previous owner
//!   has released them, so no partition ever has two owners.
//! - A member that does not heartbeat within the session timeout, or does not revoke
//!   within its rebalance timeout, is removed; its partitions go to the others.
//!
//! This rebalances only the partitions that move: members whose target is unchanged
//! keep consuming throughout (the "rebalance storm" of the classic protocol does not
//! happen, since nobody stops for anybody else).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use uuid::Uuid;

use super::GroupError;

mod persist;
pub(crate) use persist::Stored;

/// Partitions by topic id.
pub type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

/// Topic name → (id, partition count), from the metadata image at heartbeat time.
pub type TopicsView = Arc<HashMap<String, (Uuid, i32)>>;

pub const ASSIGNORS: &[&str] = &["uniform", "range"];

/// A ConsumerGroupHeartbeat, decoded.
#[derive(Debug, Clone)]
pub struct ConsumerHeartbeat {
    pub member_id: String,
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub subscribed_topic_names: Option<Vec<String>>,
    pub subscribed_topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    pub owned: Option<Assignment>,
    pub client_id: String,
    pub client_host: String,
    pub topics: TopicsView,
    /// The group's own session timeout and heartbeat interval in ms (its GROUP
    /// configs), over the coordinator's defaults.
    pub timeouts: Option<(i32, i32)>,
}

#[derive(Debug, Clone, Default)]
pub struct ConsumerHeartbeatResponse {
    pub error: Option<GroupError>,
    pub error_message: Option<String>,
    pub member_id: String,
    pub member_epoch: i32,
    pub heartbeat_interval_ms: i32,
    pub assignment: Option<Assignment>,
}

#[derive(Debug, Clone)]
pub struct ConsumerMember {
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub subscribed: BTreeSet<String>,
    /// A regex subscription (ConsumerGroupHeartbeat v1), matched against topic names.
    regex: Option<regex::Regex>,
    pub assignor: Option<String>,
    rebalance_timeout: Duration,
    pub epoch: i32,
    previous_epoch: i32,
    /// What the member owns, as far as the coordinator has told it.
    pub assigned: Assignment,
    /// Partitions the member was asked to give up and has not yet confirmed.
    pending_revocation: Assignment,
    pub target: Assignment,
    last_sent: Option<Assignment>,
    session_deadline: Instant,
    revocation_deadline: Option<Instant>,
}

/// The KIP-848 side of a group.
#[derive(Default)]
pub struct ConsumerGroup {
    pub members: BTreeMap<String, ConsumerMember>,
    pub group_epoch: i32,
    pub target_epoch: i32,
    pub assignor: String,
    /// Metadata of the subscribed topics when the target was last computed.
    signature: BTreeMap<String, (Uuid, i32)>,
    topics: Option<TopicsView>,
    /// The group's records as last written to (or replayed from) `__consumer_offsets`.
    stored: Stored,
}

fn contains(a: &Assignment, topic: &Uuid, p: i32) -> bool {
    a.get(topic).is_some_and(|s| s.contains(&p))
}

fn minus(a: &Assignment, b: &Assignment) -> Assignment {
    let mut out = Assignment::new();
    for (t, ps) in a {
        let rest: BTreeSet<i32> = ps.iter().copied().filter(|p| !contains(b, t, *p)).collect();
        if !rest.is_empty() {
            out.insert(*t, rest);
        }
    }
    out
}

fn intersect(a: &Assignment, b: &Assignment) -> Assignment {
    let mut out = Assignment::new();
    for (t, ps) in a {
        let both: BTreeSet<i32> = ps.iter().copied().filter(|p| contains(b, t, *p)).collect();
        if !both.is_empty() {
            out.insert(*t, both);
        }
    }
    out
}

fn is_empty(a: &Assignment) -> bool {
    a.values().all(BTreeSet::is_empty)
}

impl ConsumerGroup {
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Kafka's consumer group states: Empty, Reconciling (someone has not reached its
    /// target yet) or Stable.
    pub fn state_name(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self.members.values().all(|m| {
            m.epoch == self.target_epoch
                && is_empty(&m.pending_revocation)
                && m.assigned == m.target
        }) {
            "Stable"
        } else {
            "Reconciling"
        }
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.members
            .values()
            .flat_map(|m| [Some(m.session_deadline), m.revocation_deadline])
            .flatten()
            .min()
    }

    /// Removes members whose session or revocation deadline passed.
    pub fn expire(&mut self, now: Instant) {
        let gone: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| {
                m.session_deadline <= now || m.revocation_deadline.is_some_and(|d| d <= now)
            })
            .map(|(id, _)| id.clone())
            .collect();
        if gone.is_empty() {
            return;
        }
        for id in gone {
            tracing::info!(member = %id, "consumer group member expired");
            self.members.remove(&id);
        }
        self.recompute_target();
    }

    pub fn heartbeat(
        &mut self,
        h: ConsumerHeartbeat,
        session_timeout: Duration,
        heartbeat_interval_ms: i32,
        now: Instant,
    ) -> ConsumerHeartbeatResponse {
        let fail = |e: GroupError, msg: &str| ConsumerHeartbeatResponse {
            error: Some(e),
            error_message: Some(msg.to_string()),
            member_id: h.member_id.clone(),
            member_epoch: h.member_epoch,
            heartbeat_interval_ms: 0,
            assignment: None,
        };
        // KIP-848 regex subscriptions are matched here, against whole topic names,
        // with the linear-time `regex` crate (Kafka uses RE2/J, the same family).
        let pattern = match h
            .subscribed_topic_regex
            .as_deref()
            .map(|r| regex::Regex::new(&format!("^(?:{r})$")))
        {
            None => None,
            Some(Ok(re)) => Some(re),
            Some(Err(_)) => {
                return fail(
                    GroupError::InvalidRegularExpression,
                    "SubscribedTopicRegex is not a valid regular expression.",
                )
            }
        };
        if let Some(a) = &h.server_assignor {
            if !ASSIGNORS.contains(&a.as_str()) {
                return fail(
                    GroupError::UnsupportedAssignor,
                    "ServerAssignor is not supported: use uniform or range.",
                );
            }
        }
        if h.member_epoch != 0 && h.member_id.is_empty() {
            return fail(GroupError::InvalidRequest, "MemberId can't be empty.");
        }
        if h.member_epoch < -2 {
            return fail(GroupError::InvalidRequest, "MemberEpoch is invalid.");
        }
        self.topics = Some(h.topics.clone());
        if h.member_epoch == -2 {
            // A static member leaving for now (KIP-848): it keeps its partitions until
            // its session expires, so the same group.instance.id coming back (under a
            // new member id) takes them over with no rebalance at all.
            let Some(m) = self.members.get_mut(&h.member_id) else {
                return fail(
                    GroupError::UnknownMemberId,
                    "The member is not in the group.",
                );
            };
            if m.instance_id.is_some() {
                m.session_deadline = now + session_timeout;
                m.last_sent = None;
                return ConsumerHeartbeatResponse {
                    member_id: h.member_id,
                    member_epoch: -2,
                    ..Default::default()
                };
            }
        }
        if h.member_epoch < 0 {
            // The member leaves: its partitions go to the others.
            if self.members.remove(&h.member_id).is_none() {
                return fail(
                    GroupError::UnknownMemberId,
                    "The member is not in the group.",
                );
            }
            self.recompute_target();
            return ConsumerHeartbeatResponse {
                member_id: h.member_id,
                member_epoch: h.member_epoch,
                ..Default::default()
            };
        }
        let mut changed = false;
        let id = if h.member_epoch == 0 {
            if h.subscribed_topic_names.is_none() && pattern.is_none() {
                return fail(
                    GroupError::InvalidRequest,
                    "SubscribedTopicNames must be set in first request.",
                );
            }
            if h.rebalance_timeout_ms < 0 {
                return fail(
                    GroupError::InvalidRequest,
                    "RebalanceTimeoutMs must be provided in first request.",
                );
            }
            let id = if h.member_id.is_empty() {
                Uuid::new_v4().simple().to_string()
            } else {
                h.member_id.clone()
            };
            // A static member coming back under a new id takes over its old entry.
            let previous = h.instance_id.as_ref().and_then(|iid| {
                self.members
                    .iter()
                    .find(|(mid, m)| m.instance_id.as_ref() == Some(iid) && **mid != id)
                    .map(|(mid, _)| mid.clone())
            });
            let inherited = previous.and_then(|p| self.members.remove(&p));
            let member = match inherited {
                Some(m) => m,
                None => {
                    changed = true;
                    ConsumerMember {
                        instance_id: h.instance_id.clone(),
                        rack_id: None,
                        client_id: String::new(),
                        client_host: String::new(),
                        subscribed: BTreeSet::new(),
                        regex: None,
                        assignor: None,
                        rebalance_timeout: Duration::ZERO,
                        epoch: 0,
                        previous_epoch: 0,
                        assigned: Assignment::new(),
                        pending_revocation: Assignment::new(),
                        target: Assignment::new(),
                        last_sent: None,
                        session_deadline: now,
                        revocation_deadline: None,
                    }
                }
            };
            // A member re-joining under its own id with epoch 0 has dropped whatever it
            // owned: it starts over. An inherited static entry keeps its partitions and
            // is sent its assignment again.
            let mut member = member;
            if self.members.contains_key(&id) {
                changed = true;
            }
            member.last_sent = None;
            self.members.insert(id.clone(), member);
            id
        } else {
            let Some(m) = self.members.get(&h.member_id) else {
                return fail(
                    GroupError::UnknownMemberId,
                    "The member is not in the group.",
                );
            };
            if h.member_epoch != m.epoch {
                let lost_response = h.member_epoch == m.previous_epoch
                    && h.owned
                        .as_ref()
                        .is_some_and(|o| is_empty(&minus(o, &m.assigned)));
                if !lost_response {
                    return fail(
                        GroupError::FencedMemberEpoch,
                        "The member epoch is fenced by the group coordinator.",
                    );
                }
            }
            h.member_id.clone()
        };
        let Some(m) = self.members.get_mut(&id) else {
            return fail(
                GroupError::UnknownMemberId,
                "The member is not in the group.",
            );
        };
        if let Some(re) = &pattern {
            m.regex = Some(re.clone());
        } else if h.subscribed_topic_names.is_some() {
            m.regex = None;
        }
        if let Some(re) = &m.regex {
            // Re-evaluated on every heartbeat, so newly created topics are picked up.
            let subscribed: BTreeSet<String> = h
                .topics
                .keys()
                .filter(|t| !t.starts_with("__") && re.is_match(t))
                .cloned()
                .collect();
            if subscribed != m.subscribed {
                m.subscribed = subscribed;
                changed = true;
            }
        } else if let Some(names) = &h.subscribed_topic_names {
            let subscribed: BTreeSet<String> = names.iter().cloned().collect();
            if subscribed != m.subscribed {
                m.subscribed = subscribed;
                changed = true;
            }
        }
        if h.server_assignor.is_some() && h.server_assignor != m.assignor {
            m.assignor = h.server_assignor.clone();
            changed = true;
        }
        if h.rebalance_timeout_ms >= 0 {
            m.rebalance_timeout = Duration::from_millis(h.rebalance_timeout_ms as u64);
        }
        if h.instance_id.is_some() {
            m.instance_id = h.instance_id.clone();
        }
        if h.rack_id.is_some() {
            m.rack_id = h.rack_id.clone();
        }
        m.client_id = h.client_id.clone();
        m.client_host = h.client_host.clone();
        m.session_deadline = now + session_timeout;
        if let Some(owned) = &h.owned {
            // The member confirmed what it still owns: revoked partitions it no longer
            // reports are released.
            if !is_empty(&m.pending_revocation)
                && is_empty(&intersect(owned, &m.pending_revocation))
            {
                m.pending_revocation.clear();
                m.revocation_deadline = None;
            }
        }
        if changed || self.signature_changed() {
            self.recompute_target();
        }
        self.reconcile(&id, now);
        let Some(m) = self.members.get_mut(&id) else {
            return fail(
                GroupError::UnknownMemberId,
                "The member is not in the group.",
            );
        };
        let send = m.last_sent.as_ref() != Some(&m.assigned);
        if send {
            m.last_sent = Some(m.assigned.clone());
        }
        ConsumerHeartbeatResponse {
            error: None,
            error_message: None,
            member_id: id,
            member_epoch: m.epoch,
            heartbeat_interval_ms,
            assignment: send.then(|| m.assigned.clone()),
        }
    }

    fn subscribed_signature(&self) -> BTreeMap<String, (Uuid, i32)> {
        let Some(topics) = &self.topics else {
            return BTreeMap::new();
        };
        self.members
            .values()
            .flat_map(|m| m.subscribed.iter())
            .filter_map(|t| topics.get(t).map(|meta| (t.clone(), *meta)))
            .collect()
    }

    fn signature_changed(&self) -> bool {
        self.subscribed_signature() != self.signature
    }

    /// Moves the group epoch and computes every member's target.
    fn recompute_target(&mut self) {
        self.group_epoch += 1;
        self.signature = self.subscribed_signature();
        // The assignor most members asked for; uniform by default.
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some(a) = &m.assignor {
                *votes.entry(a.as_str()).or_default() += 1;
            }
        }
        self.assignor = votes
            .into_iter()
            .max_by_key(|(_, n)| *n)
            .map_or("uniform", |(a, _)| a)
            .to_string();
        let targets = if self.assignor == "range" {
            self.assign_range()
        } else {
            self.assign_uniform()
        };
        for (id, m) in self.members.iter_mut() {
            m.target = targets.get(id).cloned().unwrap_or_default();
        }
        self.target_epoch = self.group_epoch;
    }

    /// Per topic, contiguous ranges of partitions over the subscribed members in
    /// member-id order (Kafka's range assignor).
    fn assign_range(&self) -> BTreeMap<String, Assignment> {
        let mut out: BTreeMap<String, Assignment> = BTreeMap::new();
        for (topic, (id, count)) in &self.signature {
            let members: Vec<&String> = self
                .members
                .iter()
                .filter(|(_, m)| m.subscribed.contains(topic))
                .map(|(mid, _)| mid)
                .collect();
            if members.is_empty() {
                continue;
            }
            let n = members.len() as i32;
            let (base, extra) = (count / n, count % n);
            let mut next = 0;
            for (i, mid) in members.iter().enumerate() {
                let take = base + i32::from((i as i32) < extra);
                let parts: BTreeSet<i32> = (next..next + take).collect();
                next += take;
                if !parts.is_empty() {
                    out.entry((*mid).clone()).or_default().insert(*id, parts);
                }
            }
        }
        out
    }

    /// Balanced and sticky: every member keeps what it had in its previous target, up
    /// to its fair share, and only the remainder moves (to the least loaded eligible
    /// member). This is what keeps a join or leave from moving more than it must.
    fn assign_uniform(&self) -> BTreeMap<String, Assignment> {
        let mut all: Vec<(String, Uuid, i32)> = Vec::new();
        for (topic, (id, count)) in &self.signature {
            for p in 0..*count {
                all.push((topic.clone(), *id, p));
            }
        }
        let n = self.members.len().max(1);
        let quota = all.len().div_ceil(n);
        let mut load: BTreeMap<&String, usize> = self.members.keys().map(|k| (k, 0)).collect();
        let mut out: BTreeMap<String, Assignment> = BTreeMap::new();
        let mut free = Vec::new();
        for (topic, id, p) in all {
            let keeper = self
                .members
                .iter()
                .find(|(_, m)| m.subscribed.contains(&topic) && contains(&m.target, &id, p));
            match keeper {
                Some((mid, _)) if load.get(mid).copied().unwrap_or(0) < quota => {
                    *load.entry(mid).or_default() += 1;
                    out.entry(mid.clone())
                        .or_default()
                        .entry(id)
                        .or_default()
                        .insert(p);
                }
                _ => free.push((topic, id, p)),
            }
        }
        for (topic, id, p) in free {
            let best = self
                .members
                .iter()
                .filter(|(_, m)| m.subscribed.contains(&topic))
                .min_by_key(|(mid, _)| load.get(mid).copied().unwrap_or(0))
                .map(|(mid, _)| mid);
            if let Some(mid) = best {
                *load.entry(mid).or_default() += 1;
                out.entry(mid.clone())
                    .or_default()
                    .entry(id)
                    .or_default()
                    .insert(p);
            }
        }
        out
    }

    /// Moves one member toward its target: first revoke what it must give up, then
    /// advance its epoch, then hand it the partitions nobody else still holds.
    fn reconcile(&mut self, id: &str, now: Instant) {
        let target_epoch = self.target_epoch;
        let held_by_others: Assignment = {
            let mut h = Assignment::new();
            for (mid, m) in &self.members {
                if mid == id {
                    continue;
                }
                for src in [&m.assigned, &m.pending_revocation] {
                    for (t, ps) in src {
                        h.entry(*t).or_default().extend(ps.iter().copied());
                    }
                }
            }
            h
        };
        let Some(m) = self.members.get_mut(id) else {
            return;
        };
        if !is_empty(&m.pending_revocation) {
            return;
        }
        let revoke = minus(&m.assigned, &m.target);
        if !is_empty(&revoke) {
            m.assigned = intersect(&m.assigned, &m.target);
            m.pending_revocation = revoke;
            m.revocation_deadline = Some(now + m.rebalance_timeout);
            return;
        }
        if m.epoch != target_epoch {
            m.previous_epoch = m.epoch;
            m.epoch = target_epoch;
        }
        for (t, ps) in minus(&m.target, &m.assigned) {
            for p in ps {
                if !contains(&held_by_others, &t, p) {
                    m.assigned.entry(t).or_default().insert(p);
                }
            }
        }
    }

    /// Topic names for the ids in an assignment (for describe).
    pub fn topic_name(&self, id: &Uuid) -> Option<String> {
        self.topics
            .as_ref()?
            .iter()
            .find(|(_, (tid, _))| tid == id)
            .map(|(n, _)| n.clone())
    }

    /// A commit or fetch from a member must carry its current epoch (KIP-848).
    pub fn check_member_epoch(&self, member_id: &str, epoch: i32) -> Result<(), GroupError> {
        let m = self
            .members
            .get(member_id)
            .ok_or(GroupError::UnknownMemberId)?;
        if epoch != m.epoch {
            return Err(GroupError::StaleMemberEpoch);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn topics() -> TopicsView {
        Arc::new([("t".to_string(), (Uuid::from_u128(7), 6))].into())
    }

    fn hb(member: &str, epoch: i32, owned: Option<Assignment>) -> ConsumerHeartbeat {
        ConsumerHeartbeat {
            member_id: member.into(),
            member_epoch: epoch,
            instance_id: None,
            rack_id: None,
            rebalance_timeout_ms: 10_000,
            subscribed_topic_names: (epoch == 0).then(|| vec!["t".to_string()]),
            subscribed_topic_regex: None,
            server_assignor: None,
            owned,
            client_id: "c".into(),
            client_host: "/h".into(),
            topics: topics(),
            timeouts: None,
        }
    }

    fn count(a: &Option<Assignment>) -> usize {
        a.as_ref()
            .map_or(0, |a| a.values().map(BTreeSet::len).sum())
    }

    #[test]
    fn a_join_revokes_only_what_moves_and_never_double_assigns() {
        let now = Instant::now();
        let s = Duration::from_secs(45);
        let mut g = ConsumerGroup::default();
        let a = g.heartbeat(hb("a", 0, None), s, 500, now);
        assert_eq!((a.member_epoch, count(&a.assignment)), (1, 6));
        let a_owned = a.assignment.clone();
        // B joins: the target splits 3/3, but B gets nothing until A lets go.
        let b = g.heartbeat(hb("b", 0, None), s, 500, now);
        assert_eq!(b.member_epoch, 2);
        assert_eq!(count(&b.assignment), 0);
        assert_eq!(g.state_name(), "Reconciling");
        // A is told to keep 3 (it revokes the other 3), still at epoch 1.
        let a2 = g.heartbeat(hb("a", 1, a_owned), s, 500, now);
        assert_eq!((a2.member_epoch, count(&a2.assignment)), (1, 3));
        // A confirms it now owns only those 3: it moves to epoch 2.
        let a3 = g.heartbeat(hb("a", 1, a2.assignment.clone()), s, 500, now);
        assert_eq!(a3.member_epoch, 2);
        assert!(
            a3.assignment.is_none(),
            "unchanged assignments are not resent"
        );
        // B now gets the released three.
        let b2 = g.heartbeat(hb("b", 2, Some(Assignment::new())), s, 500, now);
        assert_eq!(count(&b2.assignment), 3);
        assert_eq!(g.state_name(), "Stable");
        let mut union = BTreeSet::new();
        for m in g.members.values() {
            for ps in m.assigned.values() {
                for p in ps {
                    assert!(union.insert(*p), "partition {p} owned twice");
                }
            }
        }
        assert_eq!(union.len(), 6);
    }

    #[test]
    fn fencing_expiry_and_leave() {
        let now = Instant::now();
        let s = Duration::from_secs(1);
        let mut g = ConsumerGroup::default();
        let a = g.heartbeat(hb("a", 0, None), s, 500, now);
        assert_eq!(
            g.heartbeat(hb("a", 7, None), s, 500, now).error,
            Some(GroupError::FencedMemberEpoch)
        );
        assert_eq!(
            g.heartbeat(hb("zz", 1, None), s, 500, now).error,
            Some(GroupError::UnknownMemberId)
        );
        let _ = g.heartbeat(hb("b", 0, None), s, 500, now + Duration::from_millis(1500));
        // A never comes back: after its session it is gone and B gets everything.
        g.expire(now + Duration::from_secs(2));
        assert!(!g.members.contains_key("a"));
        let b = g.heartbeat(
            hb("b", g.members["b"].epoch, Some(Assignment::new())),
            s,
            500,
            now + Duration::from_secs(2),
        );
        assert_eq!(count(&b.assignment), 6);
        let left = g.heartbeat(hb("b", -1, None), s, 500, now);
        assert_eq!(left.member_epoch, -1);
        assert_eq!(g.state_name(), "Empty");
        assert_eq!(a.error, None);
    }

    #[test]
    fn regex_subscriptions_match_whole_names() {
        let now = Instant::now();
        let s = Duration::from_secs(45);
        let mut g = ConsumerGroup::default();
        let mut h = hb("a", 0, None);
        h.subscribed_topic_names = None;
        h.subscribed_topic_regex = Some("t|other".into());
        let r = g.heartbeat(h.clone(), s, 500, now);
        assert_eq!(count(&r.assignment), 6);
        h.subscribed_topic_regex = Some("(".into());
        h.member_id = "b".into();
        assert_eq!(
            g.heartbeat(h, s, 500, now).error,
            Some(GroupError::InvalidRegularExpression)
        );
    }

    #[test]
    fn a_static_member_leaving_for_now_keeps_its_partitions() {
        let now = Instant::now();
        let s = Duration::from_secs(45);
        let mut g = ConsumerGroup::default();
        let mut a = hb("a", 0, None);
        a.instance_id = Some("ia".into());
        let first = g.heartbeat(a.clone(), s, 500, now);
        let epoch = first.member_epoch;
        let owned = first.assignment.clone();
        let left = g.heartbeat(hb("a", -2, None), s, 500, now);
        assert_eq!(left.member_epoch, -2);
        // Back under a new member id: the same partitions, the same epoch, no new target.
        let mut back = hb("a2", 0, None);
        back.instance_id = Some("ia".into());
        let r = g.heartbeat(back, s, 500, now);
        assert_eq!((r.member_epoch, r.assignment), (epoch, owned));
        assert_eq!(g.group_epoch, 1, "no rebalance");
        // Without coming back, the session ends and the partitions are freed.
        g.expire(now + Duration::from_secs(60));
        assert!(g.is_empty());
    }

    #[test]
    fn range_assigns_contiguous_blocks() {
        let now = Instant::now();
        let s = Duration::from_secs(45);
        let mut g = ConsumerGroup::default();
        for id in ["a", "b", "c", "d"] {
            let mut h = hb(id, 0, None);
            h.server_assignor = Some("range".into());
            let _ = g.heartbeat(h, s, 500, now);
        }
        let sizes: Vec<usize> = g
            .members
            .values()
            .map(|m| m.target.values().map(BTreeSet::len).sum())
            .collect();
        assert_eq!(sizes, vec![2, 2, 1, 1]);
        assert_eq!(g.members["a"].target[&Uuid::from_u128(7)], [0, 1].into());
        let mut bad = hb("e", 0, None);
        bad.server_assignor = Some("magic".into());
        assert_eq!(
            g.heartbeat(bad, s, 500, now).error,
            Some(GroupError::UnsupportedAssignor)
        );
    }
}
