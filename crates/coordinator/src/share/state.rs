//! A share-partition's durable state, as the share coordinator keeps it in
//! `__share_group_state` (Kafka's ShareSnapshot), and its record codecs ([`records`]).

use uuid::Uuid;

pub mod records;

/// One share-partition: the key of its state.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StateKey {
    pub group: String,
    pub topic_id: Uuid,
    pub partition: i32,
}

impl StateKey {
    /// Kafka's coordinator key, `group:topicId:partition`, with the topic id in Kafka's
    /// URL-safe base64 form.
    pub fn coordinator_key(&self) -> String {
        use base64::Engine;
        let id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.topic_id.as_bytes());
        format!("{}:{}:{}", self.group, id, self.partition)
    }
}

/// A run of offsets in one delivery state (Kafka's StateBatch): 0 available, 2
/// acknowledged, 4 archived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateBatch {
    pub first_offset: i64,
    pub last_offset: i64,
    pub delivery_state: i8,
    pub delivery_count: i16,
}

/// A share-partition's durable state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ShareState {
    pub snapshot_epoch: u16,
    pub state_epoch: i32,
    pub leader_epoch: i32,
    /// The share-partition start offset (SPSO); -1 for "not initialized".
    pub start_offset: i64,
    pub batches: Vec<StateBatch>,
}
