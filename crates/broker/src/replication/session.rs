//! The follower's side of an incremental fetch session (KIP-227), as Kafka's
//! `FetchSessionHandler`: the first fetch to a leader lists every partition and asks for
//! a session (epoch 0); later fetches list only the partitions whose fetch position
//! changed since they were last sent, plus the ones this follower stopped fetching
//! (forgotten), and the leader answers only partitions with news. So a follower of
//! thousands of mostly idle partitions sends and receives a few entries per round, not
//! all of them.
//!
//! Any failure (a top-level error, a lost connection or answer) ends the session: the
//! next fetch is full again and names the old id with epoch 0, so the leader drops it
//! at once instead of keeping it until it is evicted.

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::fetch_session::next_epoch;

pub type PartitionKey = (Uuid, i32);

/// What a fetch says about one partition; a change means it is sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchState {
    pub fetch_offset: i64,
    pub last_fetched_epoch: i32,
    pub log_start_offset: i64,
    pub max_bytes: i32,
    pub current_leader_epoch: i32,
}

/// The next request's session fields and content.
#[derive(Debug, PartialEq, Eq)]
pub struct SessionPlan {
    pub session_id: i32,
    pub epoch: i32,
    /// The partitions to list in the request.
    pub partitions: Vec<(PartitionKey, FetchState)>,
    /// The partitions the leader's session should drop.
    pub forgotten: Vec<PartitionKey>,
}

/// One follower's session with one leader.
#[derive(Debug, Default)]
pub struct FetchSession {
    /// The leader's session id, 0 when there is none.
    id: i32,
    /// The epoch of the next incremental request (1 after the session opened).
    epoch: i32,
    /// What the leader's session holds for each partition (meaningful when `id != 0`).
    held: BTreeMap<PartitionKey, FetchState>,
    /// The partitions of the request in flight, the new `held` once it is answered.
    pending: Option<BTreeMap<PartitionKey, FetchState>>,
    /// A session to drop on the leader with the next full fetch (after a failure).
    close: i32,
}

impl FetchSession {
    /// The request for `wanted` (every partition this follower fetches from the leader
    /// now). The request's answer must be given to [`Self::answered`] or [`Self::failed`].
    pub fn plan(&mut self, wanted: BTreeMap<PartitionKey, FetchState>) -> SessionPlan {
        let plan = if self.id == 0 {
            SessionPlan {
                session_id: self.close,
                epoch: 0,
                partitions: wanted.iter().map(|(k, s)| (*k, *s)).collect(),
                forgotten: Vec::new(),
            }
        } else {
            SessionPlan {
                session_id: self.id,
                epoch: self.epoch,
                partitions: wanted
                    .iter()
                    .filter(|(k, s)| self.held.get(k) != Some(s))
                    .map(|(k, s)| (*k, *s))
                    .collect(),
                forgotten: self
                    .held
                    .keys()
                    .filter(|k| !wanted.contains_key(k))
                    .copied()
                    .collect(),
            }
        };
        self.pending = Some(wanted);
        plan
    }

    /// The leader answered the planned request with `error_code` at the top level and
    /// `session_id`.
    pub fn answered(&mut self, error_code: i16, session_id: i32) {
        let pending = self.pending.take();
        match pending {
            Some(next) if error_code == 0 && session_id != 0 => {
                if self.id == 0 {
                    // A full fetch that opened a session.
                    self.id = session_id;
                    self.epoch = 1;
                } else if session_id == self.id {
                    self.epoch = next_epoch(self.epoch);
                } else {
                    return self.failed();
                }
                self.held = next;
                self.close = 0;
            }
            // A full fetch the leader answered without a session (sessions disabled or
            // its cache full): fetch in full again next time, asking again.
            Some(_) if error_code == 0 && self.id == 0 => self.close = 0,
            _ => self.failed(),
        }
    }

    /// The request failed (an error, no answer): start over with a full fetch that
    /// closes this session on the leader.
    pub fn failed(&mut self) {
        if self.id != 0 {
            self.close = self.id;
        }
        self.id = 0;
        self.epoch = 0;
        self.held.clear();
        self.pending = None;
    }

    /// The session id in use (0: none), for tests and logs.
    pub fn id(&self) -> i32 {
        self.id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(p: i32) -> PartitionKey {
        (Uuid::from_u128(7), p)
    }

    fn st(offset: i64) -> FetchState {
        FetchState {
            fetch_offset: offset,
            last_fetched_epoch: 0,
            log_start_offset: 0,
            max_bytes: 1 << 20,
            current_leader_epoch: 3,
        }
    }

    fn wanted(parts: &[(i32, i64)]) -> BTreeMap<PartitionKey, FetchState> {
        parts.iter().map(|&(p, o)| (key(p), st(o))).collect()
    }

    #[test]
    fn opens_then_sends_only_changes_and_forgets() {
        let mut s = FetchSession::default();
        let first = s.plan(wanted(&[(0, 0), (1, 0), (2, 0)]));
        assert_eq!((first.session_id, first.epoch), (0, 0));
        assert_eq!(first.partitions.len(), 3);
        s.answered(0, 42);
        assert_eq!(s.id(), 42);

        // Partition 1 moved, partition 2 is no longer fetched here.
        let second = s.plan(wanted(&[(0, 0), (1, 5)]));
        assert_eq!((second.session_id, second.epoch), (42, 1));
        assert_eq!(second.partitions, vec![(key(1), st(5))]);
        assert_eq!(second.forgotten, vec![key(2)]);
        s.answered(0, 42);

        // Nothing changed: an empty incremental fetch with the next epoch.
        let third = s.plan(wanted(&[(0, 0), (1, 5)]));
        assert_eq!((third.session_id, third.epoch), (42, 2));
        assert!(third.partitions.is_empty() && third.forgotten.is_empty());

        // A new leader epoch is a change too.
        s.answered(0, 42);
        let mut w = wanted(&[(0, 0), (1, 5)]);
        if let Some(x) = w.get_mut(&key(0)) {
            x.current_leader_epoch = 4;
        }
        let fourth = s.plan(w);
        assert_eq!(fourth.partitions.len(), 1);
        assert_eq!(fourth.partitions[0].1.current_leader_epoch, 4);
    }

    #[test]
    fn a_failure_closes_the_session_with_the_next_full_fetch() {
        let mut s = FetchSession::default();
        s.plan(wanted(&[(0, 0), (1, 0)]));
        s.answered(0, 42);
        s.plan(wanted(&[(0, 3), (1, 0)]));
        // INVALID_FETCH_SESSION_EPOCH (71) at the top level.
        s.answered(71, 0);
        let full = s.plan(wanted(&[(0, 3), (1, 0)]));
        assert_eq!((full.session_id, full.epoch), (42, 0));
        assert_eq!(full.partitions.len(), 2);
        s.answered(0, 43);
        let next = s.plan(wanted(&[(0, 3), (1, 0)]));
        assert_eq!((next.session_id, next.epoch), (43, 1));
        assert!(next.partitions.is_empty());
    }

    #[test]
    fn a_leader_without_sessions_gets_full_fetches() {
        let mut s = FetchSession::default();
        s.plan(wanted(&[(0, 0)]));
        s.answered(0, 0);
        let again = s.plan(wanted(&[(0, 1)]));
        assert_eq!((again.session_id, again.epoch), (0, 0));
        assert_eq!(again.partitions.len(), 1);
        // A lost answer to an incremental fetch: the next one is full.
        s.answered(0, 9);
        s.plan(wanted(&[(0, 2)]));
        s.failed();
        let full = s.plan(wanted(&[(0, 2)]));
        assert_eq!((full.session_id, full.epoch), (9, 0));
    }

    #[test]
    fn a_different_session_id_in_an_incremental_answer_starts_over() {
        let mut s = FetchSession::default();
        s.plan(wanted(&[(0, 0)]));
        s.answered(0, 5);
        s.plan(wanted(&[(0, 1)]));
        s.answered(0, 6);
        assert_eq!(s.id(), 0);
    }
}
