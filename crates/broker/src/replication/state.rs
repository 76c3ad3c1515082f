//! One partition's replication state as its leader sees it: the ISR (committed and
//! pending), each follower's log end and when it was last caught up, and the rules
//! that turn those into the high watermark and ISR changes (Kafka's `Partition` and
//! `Replica`; CLUSTER-NOTES §1).
//!
//! Pure data and decisions, no I/O: the partition calls these under its state lock and
//! acts on the results (publishes the high watermark, sends AlterPartition).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// A follower's fetch session's clock (on the leader): when its latest fetch round
/// began (ms). A round that skips a partition (nothing changed since the follower was
/// last found caught up there, see `fetch_session`) is still a fetch at the same
/// offset, with the leader's log end where it was: the follower was caught up then.
/// So a caught-up follower's `last_caught_up_ms` is the later of what its last full
/// look recorded and this clock, read when needed instead of written for every
/// skipped partition every round.
pub type FetchClock = Arc<AtomicI64>;

/// What the leader knows of one follower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Follower {
    /// The follower's log end offset (its last fetch offset); -1 until it fetches.
    pub log_end: i64,
    /// When the follower last had everything the leader had (ms).
    pub last_caught_up_ms: i64,
    /// The leader's log end at the follower's previous fetch, and when that was.
    pub last_fetch_leader_end: i64,
    pub last_fetch_ms: i64,
    /// The broker epoch its fetches carry (KIP-903), -1 until one does: AlterPartition
    /// names it, so a restarted follower cannot join the ISR on its old incarnation's
    /// fetch.
    pub broker_epoch: i64,
}

/// The metadata's view of a partition this broker hosts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Assignment {
    pub leader: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    /// With eligible leader replicas (KIP-966) on: the effective min ISR (the topic's
    /// `min.insync.replicas`, at most the replica count). The high watermark then stays
    /// put while the ISR is smaller, so every replica the controller moves to the ELR
    /// holds everything below it. `None`: the feature is off.
    pub strict_min_isr: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Leader,
    Follower,
}

/// What a metadata change did to this replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Became leader, or leads under a new leader epoch.
    BecameLeader,
    /// Became a follower, or follows under a new leader epoch (or a new leader).
    BecameFollower,
    /// Same role and epoch (the ISR or replicas may have changed).
    Unchanged,
}

#[derive(Debug, Clone, Default)]
pub struct ReplicaSet {
    pub me: i32,
    pub assignment: Assignment,
    /// The ISR an in-flight AlterPartition asks for; at most one in flight.
    pub pending_isr: Option<Vec<i32>>,
    pub followers: BTreeMap<i32, Follower>,
    /// The fetch session clock of each follower that was caught up when last looked
    /// at in a session round (see [`FetchClock`]).
    pub clocks: BTreeMap<i32, FetchClock>,
    /// The log end when this broker became leader in this epoch: a follower joins the
    /// ISR only once it reached it (KAFKA-7128).
    pub epoch_start_offset: i64,
    /// Whether the metadata's assignment was applied yet (the first one always counts
    /// as a transition).
    applied: bool,
}

impl ReplicaSet {
    pub fn new(me: i32) -> Self {
        Self {
            me,
            assignment: Assignment {
                leader: me,
                replicas: vec![me],
                isr: vec![me],
                ..Assignment::default()
            },
            ..Self::default()
        }
    }

    pub fn role(&self) -> Role {
        if self.assignment.leader == self.me {
            Role::Leader
        } else {
            Role::Follower
        }
    }

    /// Applies the metadata's assignment. `log_end` is the local log end (the new
    /// epoch's start when this broker becomes leader).
    pub fn apply(&mut self, a: &Assignment, log_end: i64, now_ms: i64) -> Transition {
        let old = std::mem::replace(&mut self.assignment, a.clone());
        let epoch_changed =
            !self.applied || old.leader_epoch != a.leader_epoch || old.leader != a.leader;
        self.applied = true;
        if self.pending_isr.is_some() && (old.partition_epoch != a.partition_epoch || epoch_changed)
        {
            // The change in flight was applied, or overtaken: either way it is over.
            self.pending_isr = None;
        }
        if a.leader != self.me {
            self.followers.clear();
            self.clocks.clear();
            return if epoch_changed || old.leader == self.me {
                Transition::BecameFollower
            } else {
                Transition::Unchanged
            };
        }
        // Followers that left the replica set are forgotten; new ones are tracked.
        self.followers.retain(|r, _| a.replicas.contains(r));
        self.clocks.retain(|r, _| a.replicas.contains(r));
        for &r in a.replicas.iter().filter(|&&r| r != self.me) {
            self.followers.entry(r).or_insert(Follower {
                log_end: -1,
                // ISR members get a full lag period to fetch from a new leader.
                last_caught_up_ms: if a.isr.contains(&r) { now_ms } else { 0 },
                last_fetch_leader_end: -1,
                last_fetch_ms: 0,
                broker_epoch: -1,
            });
        }
        if epoch_changed || old.leader != self.me {
            self.epoch_start_offset = log_end;
            self.clocks.clear();
            for (r, f) in self.followers.iter_mut() {
                f.log_end = -1;
                f.last_caught_up_ms = if a.isr.contains(r) { now_ms } else { 0 };
            }
            return Transition::BecameLeader;
        }
        Transition::Unchanged
    }

    /// The ISR the high watermark must wait for: the committed one plus members a
    /// pending change adds (pending removals still count).
    pub fn maximal_isr(&self) -> Vec<i32> {
        let mut out = self.assignment.isr.clone();
        if let Some(p) = &self.pending_isr {
            for r in p {
                if !out.contains(r) {
                    out.push(*r);
                }
            }
        }
        out
    }

    /// The high watermark the ISR supports: the smallest log end among the leader
    /// (`log_end`) and the followers of the maximal ISR; `None` while one of them has not
    /// fetched since this broker became leader, or while the ISR is below a strict min
    /// ISR (KIP-966's rule, as Kafka's `maybeIncrementLeaderHW`).
    pub fn high_watermark(&self, log_end: i64) -> Option<i64> {
        if self
            .assignment
            .strict_min_isr
            .is_some_and(|min| self.assignment.isr.len() < min)
        {
            return None;
        }
        let mut hw = log_end;
        for r in self.maximal_isr() {
            if r == self.me {
                continue;
            }
            let f = self.followers.get(&r)?;
            if f.log_end < 0 {
                return None;
            }
            hw = hw.min(f.log_end);
        }
        Some(hw)
    }

    /// Records a follower's fetch at `fetch_offset` when the leader's log ends at
    /// `log_end`. Returns the ISR to ask for if the follower should join it.
    pub fn record_fetch(
        &mut self,
        replica: i32,
        fetch_offset: i64,
        log_end: i64,
        high_watermark: i64,
        now_ms: i64,
    ) -> Option<Vec<i32>> {
        if self.role() != Role::Leader {
            return None;
        }
        let f = self.followers.get_mut(&replica)?;
        f.log_end = fetch_offset;
        if fetch_offset >= log_end {
            f.last_caught_up_ms = now_ms;
        } else if fetch_offset >= f.last_fetch_leader_end && f.last_fetch_leader_end >= 0 {
            f.last_caught_up_ms = f.last_caught_up_ms.max(f.last_fetch_ms);
        }
        f.last_fetch_leader_end = log_end;
        f.last_fetch_ms = now_ms;
        let caught_up = fetch_offset >= high_watermark && fetch_offset >= self.epoch_start_offset;
        if self.pending_isr.is_none() && !self.assignment.isr.contains(&replica) && caught_up {
            let mut isr = self.assignment.isr.clone();
            isr.push(replica);
            self.pending_isr = Some(isr.clone());
            return Some(isr);
        }
        None
    }

    /// Records the broker epoch a follower's fetch carried (-1: none).
    pub fn note_broker_epoch(&mut self, replica: i32, broker_epoch: i64) {
        if let Some(f) = self.followers.get_mut(&replica) {
            if broker_epoch >= 0 {
                f.broker_epoch = broker_epoch;
            }
        }
    }

    /// [`Self::record_fetch`] for a fetch in a follower's fetch session whose previous
    /// round began at `previous_round_ms` (see [`FetchClock`]): the rounds since this
    /// partition was last looked at count as caught-up fetches first, and a follower
    /// caught up now is linked to the session's clock (unlinked otherwise).
    pub fn record_session_fetch(
        &mut self,
        replica: i32,
        fetch_offset: i64,
        log_end: i64,
        high_watermark: i64,
        now_ms: i64,
        session: Option<(&FetchClock, i64)>,
    ) -> Option<Vec<i32>> {
        if let Some((clock, previous)) = session {
            self.unlink_clock(replica, clock, previous);
        }
        // This fetch decides anew (a link to another session's clock is stale).
        self.clocks.remove(&replica);
        let expand = self.record_fetch(replica, fetch_offset, log_end, high_watermark, now_ms);
        if let Some((clock, _)) = session {
            if self.role() == Role::Leader
                && fetch_offset >= log_end
                && self.followers.contains_key(&replica)
            {
                self.clocks.insert(replica, clock.clone());
            }
        }
        expand
    }

    /// Unlinks `replica` from its session's clock, if linked to `clock`: the session's
    /// rounds up to the one that began at `previous_round_ms` found it caught up.
    pub fn unlink_clock(&mut self, replica: i32, clock: &FetchClock, previous_round_ms: i64) {
        if !self
            .clocks
            .get(&replica)
            .is_some_and(|c| Arc::ptr_eq(c, clock))
        {
            return;
        }
        self.clocks.remove(&replica);
        if let Some(f) = self.followers.get_mut(&replica) {
            if previous_round_ms > f.last_fetch_ms {
                f.last_caught_up_ms = f.last_caught_up_ms.max(previous_round_ms);
                f.last_fetch_ms = previous_round_ms;
            }
        }
    }

    /// `isr` with each member's broker epoch as AlterPartition sends it: this broker's
    /// own `my_epoch`, a follower's as its last fetch carried it, else -1 (unchecked).
    pub fn isr_with_epochs(&self, isr: &[i32], my_epoch: i64) -> Vec<(i32, i64)> {
        isr.iter()
            .map(|&r| {
                let epoch = if r == self.me {
                    my_epoch
                } else {
                    self.followers.get(&r).map_or(-1, |f| f.broker_epoch)
                };
                (r, epoch)
            })
            .collect()
    }

    /// The controller accepted the change in flight, which leaves the partition at
    /// `partition_epoch`: once the metadata has it (or it changed nothing), it is over.
    pub fn answered(&mut self, partition_epoch: i32) {
        if self.assignment.partition_epoch >= partition_epoch {
            self.pending_isr = None;
        }
    }

    /// When `replica` was last caught up: as recorded, or later if its fetch session
    /// went on fetching while nothing changed (see [`FetchClock`]).
    fn last_caught_up(&self, replica: i32, f: &Follower) -> i64 {
        let clock = self
            .clocks
            .get(&replica)
            .map_or(i64::MIN, |c| c.load(Ordering::Acquire));
        f.last_caught_up_ms.max(clock)
    }

    /// The ISR to ask for if followers lagged more than `lag_max_ms`: without them.
    pub fn shrink(&mut self, now_ms: i64, lag_max_ms: i64) -> Option<Vec<i32>> {
        if self.role() != Role::Leader || self.pending_isr.is_some() {
            return None;
        }
        let lagging: Vec<i32> = self
            .assignment
            .isr
            .iter()
            .copied()
            .filter(|&r| r != self.me)
            .filter(|r| {
                self.followers
                    .get(r)
                    .is_none_or(|f| now_ms.saturating_sub(self.last_caught_up(*r, f)) > lag_max_ms)
            })
            .collect();
        if lagging.is_empty() {
            return None;
        }
        let isr: Vec<i32> = self
            .assignment
            .isr
            .iter()
            .copied()
            .filter(|r| !lagging.contains(r))
            .collect();
        self.pending_isr = Some(isr.clone());
        Some(isr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assignment(leader: i32, epoch: i32, isr: &[i32]) -> Assignment {
        Assignment {
            leader,
            leader_epoch: epoch,
            partition_epoch: epoch,
            replicas: vec![1, 2, 3],
            isr: isr.to_vec(),
            strict_min_isr: None,
        }
    }

    #[test]
    fn a_strict_min_isr_holds_the_high_watermark_while_the_isr_is_below_it() {
        // KIP-966: with ELRs on (min ISR 2), an ISR of the leader alone does not move
        // the high watermark; without (None) it does, as before.
        let mut s = ReplicaSet::new(1);
        let alone = Assignment {
            strict_min_isr: Some(2),
            ..assignment(1, 1, &[1])
        };
        s.apply(&alone, 10, 0);
        assert_eq!(s.high_watermark(12), None, "ISR 1 < min ISR 2");
        let pair = Assignment {
            partition_epoch: 2,
            strict_min_isr: Some(2),
            ..assignment(1, 1, &[1, 2])
        };
        s.apply(&pair, 12, 1);
        s.record_fetch(2, 12, 12, 10, 2);
        assert_eq!(s.high_watermark(12), Some(12), "back at min ISR");
        let mut old = ReplicaSet::new(1);
        old.apply(&assignment(1, 1, &[1]), 10, 0);
        assert_eq!(old.high_watermark(12), Some(12));
    }

    #[test]
    fn the_high_watermark_waits_for_every_isr_member() {
        let mut s = ReplicaSet::new(1);
        assert_eq!(
            s.apply(&assignment(1, 1, &[1, 2, 3]), 10, 0),
            Transition::BecameLeader
        );
        assert_eq!(s.high_watermark(12), None, "followers not heard from yet");
        s.record_fetch(2, 12, 12, 10, 1);
        assert_eq!(s.high_watermark(12), None);
        s.record_fetch(3, 11, 12, 10, 1);
        assert_eq!(s.high_watermark(12), Some(11));
        s.record_fetch(3, 12, 12, 11, 2);
        assert_eq!(s.high_watermark(12), Some(12));
    }

    #[test]
    fn a_lagging_follower_is_shrunk_out_and_rejoins_once_caught_up() {
        let mut s = ReplicaSet::new(1);
        s.apply(&assignment(1, 1, &[1, 2, 3]), 0, 0);
        s.record_fetch(2, 0, 0, 0, 0);
        s.record_fetch(3, 0, 0, 0, 0);
        // 3 keeps fetching behind the leader's end; 2 keeps up.
        s.record_fetch(2, 5, 5, 0, 20_000);
        s.record_fetch(3, 1, 5, 0, 20_000);
        s.record_fetch(3, 5, 9, 0, 40_000);
        s.record_fetch(2, 9, 9, 0, 40_000);
        assert_eq!(
            s.shrink(40_000, 30_000),
            None,
            "3 was caught up as of its last fetch"
        );
        assert_eq!(s.shrink(60_000, 30_000), Some(vec![1, 2]));
        assert_eq!(s.shrink(60_000, 30_000), None, "one change in flight");
        s.apply(
            &Assignment {
                partition_epoch: 2,
                isr: vec![1, 2],
                ..assignment(1, 1, &[1, 2])
            },
            9,
            60_000,
        );
        assert!(s.pending_isr.is_none());
        assert_eq!(s.record_fetch(3, 4, 9, 9, 61_000), None, "below the HW");
        assert_eq!(s.record_fetch(3, 9, 9, 9, 62_000), Some(vec![1, 2, 3]));
        // Pending additions count for the high watermark.
        s.record_fetch(2, 9, 12, 9, 62_000);
        assert_eq!(s.high_watermark(12), Some(9));
    }

    /// A caught-up follower whose fetch session skips the partition (nothing changed)
    /// stays in the ISR while the session keeps fetching; one without a session, or
    /// whose session stopped, or that fell behind, is shrunk out after the lag time.
    #[test]
    fn a_skipped_caught_up_follower_stays_in_the_isr() {
        let mut s = ReplicaSet::new(1);
        s.apply(&assignment(1, 1, &[1, 2, 3]), 10, 0);
        let clock: FetchClock = Arc::new(AtomicI64::new(1_000));
        // Both caught up at 1 s; 2 in a session round (which began at 1 s), 3 not.
        s.record_session_fetch(2, 10, 10, 10, 1_000, Some((&clock, i64::MIN)));
        s.record_session_fetch(3, 10, 10, 10, 1_000, None);
        // 2's session keeps fetching, skipping the partition: only its clock moves.
        clock.store(40_000, Ordering::Release);
        assert_eq!(
            s.shrink(41_000, 30_000),
            Some(vec![1, 2]),
            "3 lagged, 2 did not"
        );
        s.apply(
            &Assignment {
                partition_epoch: 2,
                ..assignment(1, 1, &[1, 2])
            },
            10,
            41_000,
        );
        assert_eq!(s.shrink(69_000, 30_000), None);
        // The leader appended at 50 s; the next round (at 60 s) finds 2 behind: it was
        // last caught up at the round before (40 s).
        clock.store(60_000, Ordering::Release);
        s.record_session_fetch(2, 10, 11, 10, 60_000, Some((&clock, 40_000)));
        assert_eq!(s.shrink(69_000, 30_000), None);
        assert_eq!(s.shrink(71_000, 30_000), Some(vec![1]));
        // Caught up again in a session that then stops fetching: its clock stops too.
        let mut t = ReplicaSet::new(1);
        t.apply(&assignment(1, 1, &[1, 2]), 10, 0);
        let stopped: FetchClock = Arc::new(AtomicI64::new(5_000));
        t.record_session_fetch(2, 10, 10, 10, 5_000, Some((&stopped, i64::MIN)));
        assert_eq!(t.shrink(34_000, 30_000), None);
        assert_eq!(t.shrink(36_000, 30_000), Some(vec![1]));
    }

    #[test]
    fn alter_partition_names_each_members_broker_epoch_as_its_fetch_carried_it() {
        let mut s = ReplicaSet::new(1);
        s.apply(&assignment(1, 1, &[1, 2]), 0, 0);
        s.note_broker_epoch(2, 40);
        s.note_broker_epoch(3, -1);
        s.note_broker_epoch(9, 7);
        assert_eq!(
            s.isr_with_epochs(&[1, 2, 3], 12),
            vec![(1, 12), (2, 40), (3, -1)]
        );
        // An accepted change that the metadata already holds is over; a newer one is not.
        s.pending_isr = Some(vec![1, 2, 3]);
        s.answered(2);
        assert!(s.pending_isr.is_some());
        s.answered(1);
        assert!(s.pending_isr.is_none());
    }

    #[test]
    fn leadership_changes_reset_followers_and_record_the_epoch_start() {
        let mut s = ReplicaSet::new(1);
        s.apply(&assignment(2, 1, &[1, 2, 3]), 7, 0);
        assert_eq!(s.role(), Role::Follower);
        assert!(s.followers.is_empty());
        assert_eq!(
            s.apply(&assignment(1, 2, &[1, 3]), 9, 5),
            Transition::BecameLeader
        );
        assert_eq!(s.epoch_start_offset, 9);
        assert_eq!(s.record_fetch(2, 8, 9, 8, 6), None, "below the epoch start");
        assert_eq!(
            s.apply(&assignment(3, 3, &[1, 3]), 9, 7),
            Transition::BecameFollower
        );
    }
}
