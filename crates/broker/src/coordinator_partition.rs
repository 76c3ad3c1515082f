//! Which partition of an internal topic (`__consumer_offsets`, `__transaction_state`)
//! owns a group id or a transactional id.
//!
//! Kafka's rule is `Utils.abs(id.hashCode) % partitionCount`, where the count is the
//! topic's partition count in the metadata (or the configured
//! `offsets.topic.num.partitions` / `transaction.state.log.num.partitions` before the
//! topic exists). It is never the number of partitions that happen to be online: if one
//! partition is offline, only the ids it owns are unavailable (COORDINATOR_NOT_AVAILABLE)
//! and every other id keeps its partition, so its records stay where they were written.

use std::sync::Arc;

use crate::group::records::partition_for;
use crate::host::Host;
use crate::partition::Partition;

/// Where an id's coordinator records live.
pub enum Owner {
    /// The internal topic does not exist yet (it is created on first use); the id
    /// will belong to this partition.
    NoTopic(i32),
    /// The owning partition, open on this broker.
    Online(Arc<Partition>),
    /// The owning partition exists but is not open here (its log failed to open, or
    /// the topic is still being opened), or it has no leader: the id's coordinator is
    /// not available.
    Unavailable(i32),
    /// Another broker leads the owning partition: it is the coordinator (NOT_COORDINATOR
    /// here).
    Elsewhere { index: i32, leader: i32 },
}

/// The partition count `key`s are spread over: the topic's, from the metadata image,
/// or `configured` before the topic exists.
pub fn partition_count(host: &Host, topic: &str, configured: i32) -> i32 {
    host.metadata
        .image()
        .topic(topic)
        .map_or(configured, |t| t.partitions.len() as i32)
        .max(1)
}

/// The partition of `topic` that owns `key`, and whether it is online.
pub fn owner(host: &Host, topic: &str, key: &str, configured: i32) -> Owner {
    let index = partition_for(key, partition_count(host, topic, configured));
    let image = host.metadata.image();
    let Some(t) = image.topic(topic) else {
        return Owner::NoTopic(index);
    };
    match t.partitions.get(&index).map(|p| p.leader) {
        Some(leader) if leader < 0 => return Owner::Unavailable(index),
        Some(leader) if leader != host.node_id => return Owner::Elsewhere { index, leader },
        _ => {}
    }
    match host.replicas.partition(topic, index) {
        Some(p) => Owner::Online(p),
        None => Owner::Unavailable(index),
    }
}

/// A coordinator's handle on the internal-topic partition it writes to, with the
/// coordinator epoch: the partition's leader epoch when the coordinator took it over.
/// Writes go through [`CoordinatorPartition::append`], which refuses them once the
/// leadership moved on (even if it came back: the state the writer holds may be
/// stale), and waits for the ISR (acks=all).
#[derive(Clone)]
pub struct CoordinatorPartition {
    pub partition: Arc<Partition>,
    pub epoch: i32,
}

/// How long a coordinator's write waits for the ISR (Kafka's
/// `offsets.commit.timeout.ms` default).
pub const WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(5_000);

impl CoordinatorPartition {
    pub fn new(partition: Arc<Partition>) -> Self {
        let epoch = partition.leader_epoch();
        Self { partition, epoch }
    }

    /// Whether this broker still leads the partition under the epoch the coordinator
    /// took it at (a coordinator whose partition moved, even away and back, is stale).
    pub fn is_current(&self) -> bool {
        self.partition.is_leader() && self.partition.leader_epoch() == self.epoch
    }

    /// Appends a batch the coordinator built and waits for the ISR to have it.
    pub async fn append(
        &self,
        bytes: &[u8],
        v: &gregor_protocol::batch::ValidatedBatch,
    ) -> Result<gregor_storage::AppendInfo, crate::replication::ReplicatedAppendError> {
        crate::replication::append_replicated(&self.partition, bytes, v, self.epoch, WRITE_TIMEOUT)
            .await
    }
}

impl std::ops::Deref for CoordinatorPartition {
    type Target = Partition;
    fn deref(&self) -> &Partition {
        &self.partition
    }
}
