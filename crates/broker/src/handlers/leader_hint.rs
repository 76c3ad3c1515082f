//! KIP-951 leader discovery: a Produce (v10+) or Fetch (v12+ leader, v16+ endpoints)
//! refused with NOT_LEADER_OR_FOLLOWER or FENCED_LEADER_EPOCH names the partition's
//! current leader and epoch, and the response lists those leaders' endpoints on the
//! request's listener, so the client redirects at once instead of refreshing its
//! metadata first. Older versions carry neither (the encoder skips the tagged fields).

use std::collections::BTreeSet;
use std::sync::Arc;

use gregor_metadata::MetadataImage;
use gregor_protocol::kp::ResponseError;

use crate::cluster::LiveBroker;

/// The leaders named so far in one response.
pub struct LeaderHints {
    image: Arc<MetadataImage>,
    named: BTreeSet<i32>,
}

impl LeaderHints {
    pub fn new(image: Arc<MetadataImage>) -> Self {
        Self {
            image,
            named: BTreeSet::new(),
        }
    }

    /// The current leader and its epoch of `topic`/`partition` when `code` is an error
    /// that a leader change explains; `None` otherwise, or when no leader is known.
    pub fn leader(&mut self, topic: &str, partition: i32, code: i16) -> Option<(i32, i32)> {
        let moved = code == ResponseError::NotLeaderOrFollower.code()
            || code == ResponseError::FencedLeaderEpoch.code();
        if !moved {
            return None;
        }
        let p = self.image.topic(topic)?.partitions.get(&partition)?;
        if p.leader < 0 {
            return None;
        }
        self.named.insert(p.leader);
        Some((p.leader, p.leader_epoch))
    }

    /// The endpoints on `listener` of the leaders named (those that are live).
    pub fn endpoints(&self, listener: &str) -> Vec<LiveBroker> {
        if self.named.is_empty() {
            return Vec::new();
        }
        crate::cluster::live_brokers(&self.image, listener)
            .into_iter()
            .filter(|b| self.named.contains(&b.id))
            .collect()
    }
}
