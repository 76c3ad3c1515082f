//! Pre-vote (Raft thesis §9.6, Kafka's KIP-996), which openraft 0.9 lacks.
//!
//! Without it, a voter that was paused, or cut off, wakes up with an expired election
//! timer, raises its term and asks for votes. It cannot win (its log is behind), but
//! the term it sends makes the leader step down, and the quorum has no controller until
//! another election completes: every broker's metadata stands still meanwhile, and a
//! broker that was the zombie keeps serving its stale view.
//!
//! So openraft's own election timer is off (`enable_elect: false`) and this module runs
//! it: after an election timeout without hearing from a leader, a voter first asks its
//! peers whether they *would* vote for it. A peer says yes only if it has not heard from
//! a leader for an election timeout itself (a leader: if it has lost its quorum) and the
//! candidate's log is at least as up to date as its own. Only with a majority of yeses
//! does the voter start a real election, which raises terms.

use std::sync::Mutex;
use std::time::Duration;

use openraft::{LogId, Raft, ServerState};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::TypeConfig;

/// "Would you vote for me at `term` with a log ending at `last_log_id`?"
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PreVoteRequest {
    pub(crate) term: u64,
    pub(crate) last_log_id: Option<LogId<u64>>,
}

/// When this voter last heard from a leader, and the election timeout it judges by.
pub(crate) struct ElectionTimer {
    timeout_min: Duration,
    timeout_max: Duration,
    last_contact: Mutex<Instant>,
    jitter: Mutex<u64>,
}

impl ElectionTimer {
    pub(crate) fn new(timeout_min: Duration, timeout_max: Duration, seed: u64) -> Self {
        Self {
            timeout_min,
            timeout_max: timeout_max.max(timeout_min),
            last_contact: Mutex::new(Instant::now()),
            // xorshift needs a non-zero state.
            jitter: Mutex::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
        }
    }

    /// A leader's append (or snapshot) was accepted, this voter granted a vote (its
    /// candidate gets a full timeout to take office), or this voter leads.
    pub(crate) fn heard_from_leader(&self) {
        if let Ok(mut t) = self.last_contact.lock() {
            *t = Instant::now();
        }
    }

    pub(crate) fn timeout_min(&self) -> Duration {
        self.timeout_min
    }

    /// Whether, at `now`, the election timeout has passed without a leader.
    fn expired_at(&self, now: Instant) -> bool {
        self.last_contact
            .lock()
            .map(|t| now.saturating_duration_since(*t) >= self.timeout_min)
            .unwrap_or(true)
    }

    pub(crate) fn expired(&self) -> bool {
        self.expired_at(Instant::now())
    }

    /// A random wait in [timeout_min, timeout_max): voters that lost their leader
    /// together do not all stand at once.
    pub(crate) fn next_wait(&self) -> Duration {
        let span = self
            .timeout_max
            .saturating_sub(self.timeout_min)
            .as_millis() as u64;
        let r = match self.jitter.lock() {
            Ok(mut s) => {
                let mut x = *s;
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *s = x;
                x
            }
            Err(_) => 0,
        };
        self.timeout_min + Duration::from_millis(if span == 0 { 0 } else { r % span })
    }

    /// A peer's pre-vote request: granted only if this voter has no leader either and
    /// the candidate's log is at least as up to date.
    pub(crate) fn answer(
        &self,
        raft: &Raft<TypeConfig>,
        my_last_log_id: Option<LogId<u64>>,
        req: &PreVoteRequest,
    ) -> bool {
        let (state, term, quorum_ack_ms) = {
            let m = raft.metrics();
            let m = m.borrow();
            (m.state, m.current_term, m.millis_since_quorum_ack)
        };
        if state == ServerState::Leader {
            // A leader still acknowledged by its quorum refuses (one just elected, with
            // no acknowledgement yet, too, unless that has lasted an election timeout).
            let fresh = quorum_ack_ms.map_or(!self.expired(), |ms| {
                u128::from(ms) < self.timeout_min.as_millis()
            });
            if fresh {
                return false;
            }
        } else if !self.expired() {
            return false;
        }
        if req.term < term {
            return false;
        }
        req.last_log_id >= my_last_log_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_fall_within_the_election_timeout_range() {
        let t = ElectionTimer::new(Duration::from_millis(100), Duration::from_millis(200), 3);
        let waits: Vec<Duration> = (0..50).map(|_| t.next_wait()).collect();
        assert!(waits
            .iter()
            .all(|w| *w >= Duration::from_millis(100) && *w < Duration::from_millis(200)));
        // Not all the same: the jitter spreads them.
        assert!(waits.iter().any(|w| *w != waits[0]));
    }

    #[test]
    fn the_timer_expires_only_after_a_timeout_without_a_leader() {
        let t = ElectionTimer::new(Duration::from_secs(100), Duration::from_secs(200), 1);
        let now = Instant::now();
        assert!(!t.expired_at(now));
        assert!(!t.expired());
        assert!(t.expired_at(now + Duration::from_secs(150)));
        t.heard_from_leader();
        assert!(!t.expired_at(now + Duration::from_secs(50)));
    }
}
