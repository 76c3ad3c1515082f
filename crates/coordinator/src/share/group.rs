//! A share group's membership and assignment (KIP-932 ShareGroupHeartbeat).
//!
//! Members join with epoch 0, heartbeat with their current epoch and leave with -1. The
//! coordinator assigns the subscribed topics' partitions itself: a share-partition may
//! go to several members at once (records, not partitions, are what members share), so
//! there is no revocation step: a new assignment takes effect at once.
//!
//! The assignor is uniform: each subscribed topic's partitions are dealt round-robin
//! to the members subscribed to it (sorted by member id), and when a topic has fewer
//! partitions than members, members wrap around so every member gets one.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use uuid::Uuid;

use super::ShareError;

/// A topic as the assignor sees it: id and partition count.
pub type TopicInfo = BTreeMap<String, (Uuid, i32)>;

/// topic id → partitions.
pub type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

#[derive(Debug, Clone)]
pub struct Member {
    pub member_id: String,
    pub epoch: i32,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub subscribed: BTreeSet<String>,
    pub assignment: Assignment,
    /// When its session ends without a heartbeat.
    pub deadline: Instant,
}

#[derive(Debug, Clone, Default)]
pub struct ShareGroup {
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub members: BTreeMap<String, Member>,
}

/// What a heartbeat carries, wire types resolved by the handler.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    pub member_id: String,
    pub member_epoch: i32,
    pub rack_id: Option<String>,
    pub subscribed: Option<Vec<String>>,
    pub client_id: String,
    pub client_host: String,
}

#[derive(Debug, Clone, Default)]
pub struct HeartbeatResult {
    pub member_id: String,
    pub member_epoch: i32,
    /// The member's partitions, when they changed (or it just joined).
    pub assignment: Option<Assignment>,
}

impl ShareGroup {
    pub fn state_name(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else {
            "Stable"
        }
    }

    /// Applies one heartbeat at `now`. `session` is how long the member lives without
    /// another; `max_size` is `group.share.max.size`.
    pub fn heartbeat(
        &mut self,
        h: Heartbeat,
        topics: &TopicInfo,
        now: Instant,
        session: std::time::Duration,
        max_size: usize,
    ) -> Result<HeartbeatResult, ShareError> {
        let deadline = now + session;
        let mut changed = false;
        match h.member_epoch {
            0 => {
                if h.member_id.is_empty() {
                    return Err(ShareError::InvalidRequest(
                        "MemberId can't be empty.".into(),
                    ));
                }
                let Some(subscribed) = h.subscribed.clone() else {
                    return Err(ShareError::InvalidRequest(
                        "SubscribedTopicNames must be set in first request.".into(),
                    ));
                };
                if !self.members.contains_key(&h.member_id) && self.members.len() >= max_size {
                    return Err(ShareError::GroupMaxSizeReached);
                }
                let m = self.members.entry(h.member_id.clone()).or_insert_with(|| {
                    changed = true;
                    Member {
                        member_id: h.member_id.clone(),
                        epoch: 0,
                        rack_id: None,
                        client_id: String::new(),
                        client_host: String::new(),
                        subscribed: BTreeSet::new(),
                        assignment: Assignment::new(),
                        deadline,
                    }
                });
                // A rejoin starts over: the client forgot what it had.
                m.epoch = 0;
                m.assignment.clear();
                changed = true;
                m.rack_id = h.rack_id;
                m.client_id = h.client_id;
                m.client_host = h.client_host;
                m.subscribed = subscribed.into_iter().collect();
                m.deadline = deadline;
            }
            -1 => {
                if self.members.remove(&h.member_id).is_none() {
                    return Err(ShareError::UnknownMemberId);
                }
                self.group_epoch += 1;
                self.rebalance(topics);
                return Ok(HeartbeatResult {
                    member_id: h.member_id,
                    member_epoch: -1,
                    assignment: None,
                });
            }
            epoch => {
                let m = self
                    .members
                    .get_mut(&h.member_id)
                    .ok_or(ShareError::UnknownMemberId)?;
                if epoch != m.epoch {
                    return Err(ShareError::FencedMemberEpoch);
                }
                m.deadline = deadline;
                if let Some(s) = h.subscribed {
                    let s: BTreeSet<String> = s.into_iter().collect();
                    if s != m.subscribed {
                        m.subscribed = s;
                        changed = true;
                    }
                }
            }
        }
        // Topics created or grown since the last assignment count as a change too.
        let target = self.compute(topics);
        let differs = self
            .members
            .iter()
            .any(|(id, m)| target.get(id).is_some_and(|a| *a != m.assignment));
        if changed || differs {
            self.group_epoch += 1;
            self.apply(target);
        }
        let m = self
            .members
            .get_mut(&h.member_id)
            .ok_or(ShareError::UnknownMemberId)?;
        let fresh = m.epoch != h.member_epoch || h.member_epoch == 0;
        if m.epoch == 0 {
            m.epoch = self.group_epoch;
        }
        Ok(HeartbeatResult {
            member_id: m.member_id.clone(),
            member_epoch: m.epoch,
            assignment: fresh.then(|| m.assignment.clone()),
        })
    }

    /// Removes members whose session ended by `now`; their ids.
    pub fn expire(&mut self, now: Instant, topics: &TopicInfo) -> Vec<String> {
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| m.deadline <= now)
            .map(|m| m.member_id.clone())
            .collect();
        for id in &gone {
            self.members.remove(id);
        }
        if !gone.is_empty() {
            self.group_epoch += 1;
            self.rebalance(topics);
        }
        gone
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.members.values().map(|m| m.deadline).min()
    }

    fn rebalance(&mut self, topics: &TopicInfo) {
        let target = self.compute(topics);
        self.apply(target);
    }

    /// Adopts a target: a member whose partitions change moves to the group epoch.
    fn apply(&mut self, mut target: BTreeMap<String, Assignment>) {
        self.assignment_epoch = self.group_epoch;
        for (id, m) in self.members.iter_mut() {
            let a = target.remove(id).unwrap_or_default();
            if a != m.assignment || m.epoch == 0 {
                m.assignment = a;
                m.epoch = self.group_epoch;
            }
        }
    }

    /// The uniform assignment of every subscribed topic to its subscribers.
    fn compute(&self, topics: &TopicInfo) -> BTreeMap<String, Assignment> {
        let mut out: BTreeMap<String, Assignment> = self
            .members
            .keys()
            .map(|id| (id.clone(), Assignment::new()))
            .collect();
        let names: BTreeSet<&String> = self.members.values().flat_map(|m| &m.subscribed).collect();
        for name in names {
            let Some((id, count)) = topics.get(name) else {
                continue;
            };
            let subs: Vec<&String> = self
                .members
                .values()
                .filter(|m| m.subscribed.contains(name))
                .map(|m| &m.member_id)
                .collect();
            if subs.is_empty() || *count <= 0 {
                continue;
            }
            let slots = subs.len().max(*count as usize);
            for i in 0..slots {
                let member = subs[i % subs.len()];
                let partition = (i % *count as usize) as i32;
                if let Some(a) = out.get_mut(member) {
                    a.entry(*id).or_default().insert(partition);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn hb(id: &str, epoch: i32, topics: Option<&[&str]>) -> Heartbeat {
        Heartbeat {
            member_id: id.into(),
            member_epoch: epoch,
            rack_id: None,
            subscribed: topics.map(|t| t.iter().map(|s| s.to_string()).collect()),
            client_id: "c".into(),
            client_host: "/h".into(),
        }
    }

    #[test]
    fn members_share_a_single_partition_and_leave() {
        let t = Uuid::new_v4();
        let topics: TopicInfo = [("t".to_string(), (t, 1))].into_iter().collect();
        let now = Instant::now();
        let s = Duration::from_secs(45);
        let mut g = ShareGroup::default();
        let a = g
            .heartbeat(hb("a", 0, Some(&["t"])), &topics, now, s, 10)
            .unwrap();
        assert_eq!(a.member_epoch, 1);
        assert_eq!(a.assignment.unwrap()[&t], BTreeSet::from([0]));
        let b = g
            .heartbeat(hb("b", 0, Some(&["t"])), &topics, now, s, 10)
            .unwrap();
        assert_eq!(b.assignment.unwrap()[&t], BTreeSet::from([0]));
        // a's partitions did not change: its epoch stays, no assignment is sent.
        let a2 = g.heartbeat(hb("a", 1, None), &topics, now, s, 10).unwrap();
        assert_eq!(a2.member_epoch, 1);
        assert!(a2.assignment.is_none());
        assert_eq!(
            g.heartbeat(hb("a", 7, None), &topics, now, s, 10)
                .unwrap_err(),
            ShareError::FencedMemberEpoch
        );
        assert_eq!(
            g.heartbeat(hb("a", -1, None), &topics, now, s, 10)
                .unwrap()
                .member_epoch,
            -1
        );
        assert_eq!(g.members.len(), 1);
        assert_eq!(
            g.heartbeat(hb("c", 0, Some(&["t"])), &topics, now, s, 1)
                .unwrap_err(),
            ShareError::GroupMaxSizeReached
        );
    }

    #[test]
    fn partitions_are_dealt_and_sessions_expire() {
        let t = Uuid::new_v4();
        let topics: TopicInfo = [("t".to_string(), (t, 4))].into_iter().collect();
        let now = Instant::now();
        let s = Duration::from_secs(1);
        let mut g = ShareGroup::default();
        g.heartbeat(hb("a", 0, Some(&["t"])), &topics, now, s, 10)
            .unwrap();
        g.heartbeat(hb("b", 0, Some(&["t"])), &topics, now + s / 2, s, 10)
            .unwrap();
        assert_eq!(g.members["a"].assignment[&t], BTreeSet::from([0, 2]));
        assert_eq!(g.members["b"].assignment[&t], BTreeSet::from([1, 3]));
        assert_eq!(g.next_deadline(), Some(now + s));
        assert_eq!(g.expire(now + s, &topics), vec!["a".to_string()]);
        assert_eq!(g.members["b"].assignment[&t], BTreeSet::from([0, 1, 2, 3]));
    }
}
