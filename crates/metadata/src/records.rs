//! Metadata records, named after KRaft's. Serialized as JSON values inside ordinary
//! record batches of the metadata log, which keeps the log inspectable with any Kafka
//! tool that can dump a segment.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A config resource, as in Kafka's ConfigRecord.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ConfigResource {
    Topic,
    Broker,
    /// A client-metrics subscription (KIP-714), by name.
    ClientMetrics,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum MetadataRecord {
    /// A topic exists with this name and id.
    TopicRecord { name: String, topic_id: Uuid },
    /// A partition of a topic, its replicas and leadership.
    PartitionRecord {
        topic_id: Uuid,
        partition: i32,
        replicas: Vec<i32>,
        isr: Vec<i32>,
        leader: i32,
        leader_epoch: i32,
        partition_epoch: i32,
    },
    /// Sets (`Some`) or removes (`None`) one config of a resource.
    ConfigRecord {
        resource: ConfigResource,
        resource_name: String,
        name: String,
        value: Option<String>,
    },
    /// Removes a topic, its partitions and its configs.
    RemoveTopicRecord { topic_id: Uuid },
    /// Producer ids below `next_producer_id` are handed out (KRaft's ProducerIdsRecord):
    /// the broker takes a block at a time, so ids are unique across restarts.
    ProducerIdsRecord { next_producer_id: i64 },
    /// A feature's finalized level (KIP-584, Kafka's FeatureLevelRecord); level 0
    /// removes the feature from the finalized set.
    FeatureLevelRecord { name: String, feature_level: i16 },
}

impl MetadataRecord {
    pub fn encode(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }
    pub fn decode(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}
