//! Records as connectors and transformations see them.

use serde_json::Map;

use crate::data::{Schema, Value};

/// A record header (Kafka Connect headers carry a schema too; here they are bytes, the
/// form they take on the wire).
#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    pub key: String,
    pub value: Option<Vec<u8>>,
}

/// The part of a record transformations work on (`ConnectRecord` in Kafka).
#[derive(Clone, Debug, PartialEq)]
pub struct ConnectRecord {
    pub topic: String,
    /// `None`: the producer's partitioner chooses.
    pub kafka_partition: Option<i32>,
    pub key_schema: Option<Schema>,
    pub key: Value,
    pub value_schema: Option<Schema>,
    pub value: Value,
    /// Milliseconds since the epoch.
    pub timestamp: Option<i64>,
    pub headers: Vec<Header>,
}

impl ConnectRecord {
    /// A record with no key, the given value schema and value.
    pub fn new(topic: impl Into<String>, value_schema: Option<Schema>, value: Value) -> Self {
        ConnectRecord {
            topic: topic.into(),
            kafka_partition: None,
            key_schema: None,
            key: Value::Null,
            value_schema,
            value,
            timestamp: None,
            headers: Vec::new(),
        }
    }
}

/// A record produced by a source task, with where it came from in the external system.
/// The runtime stores `source_offset` under `source_partition` once Kafka acknowledged
/// the record, and hands the latest one back to the task when it starts again.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceRecord {
    pub record: ConnectRecord,
    pub source_partition: Map<String, serde_json::Value>,
    pub source_offset: Map<String, serde_json::Value>,
}

/// A record consumed from Kafka, given to a sink task.
#[derive(Clone, Debug, PartialEq)]
pub struct SinkRecord {
    pub record: ConnectRecord,
    pub kafka_offset: i64,
}
