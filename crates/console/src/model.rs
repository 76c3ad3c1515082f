//! What the pages show: plain data gathered from the cluster by `cluster`, `groups`,
//! `browse` and `wire`, rendered by `pages`. Nothing here knows HTML or librdkafka.

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct BrokerInfo {
    pub(crate) id: i32,
    pub(crate) host: String,
    pub(crate) port: i32,
    pub(crate) rack: Option<String>,
}

/// The cluster at a glance (the overview page).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Overview {
    pub(crate) cluster_id: Option<String>,
    /// None when the raw Metadata request could not be made (see `wire`).
    pub(crate) controller: Option<i32>,
    pub(crate) brokers: Vec<BrokerInfo>,
    /// Topics and their partitions, internal ones (`__consumer_offsets`) left out.
    pub(crate) topics: usize,
    pub(crate) partitions: usize,
    /// Partitions without a leader (internal topics included).
    pub(crate) offline: usize,
    /// Partitions whose ISR is smaller than their replica set.
    pub(crate) under_replicated: usize,
    /// Why controller and racks are missing, if they are.
    pub(crate) note: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct TopicSummary {
    pub(crate) name: String,
    pub(crate) partitions: usize,
    pub(crate) replication_factor: usize,
    pub(crate) offline: usize,
    pub(crate) under_replicated: usize,
    pub(crate) internal: bool,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct PartitionInfo {
    pub(crate) id: i32,
    /// -1: no leader (offline).
    pub(crate) leader: i32,
    pub(crate) replicas: Vec<i32>,
    pub(crate) isr: Vec<i32>,
    pub(crate) low: i64,
    pub(crate) high: i64,
    /// Bytes on disk of the leader's replica, when DescribeLogDirs could be asked.
    pub(crate) size: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct ConfigRow {
    pub(crate) name: String,
    pub(crate) value: Option<String>,
    pub(crate) source: String,
    pub(crate) sensitive: bool,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct TopicDetail {
    pub(crate) name: String,
    pub(crate) partitions: Vec<PartitionInfo>,
    pub(crate) configs: Vec<ConfigRow>,
}

/// One record in the message browser. Keys and values are shown as text (lossy UTF-8);
/// a value that parses as a JSON object or array is pretty-printed.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Message {
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    /// Milliseconds since the epoch, if the record has one.
    pub(crate) timestamp: Option<i64>,
    pub(crate) key: Option<String>,
    pub(crate) value: Option<String>,
    pub(crate) value_is_json: bool,
    pub(crate) headers: Vec<(String, Option<String>)>,
}

/// A page of the message browser: what was asked, what was scanned, what matched.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct MessagePage {
    pub(crate) topic: String,
    pub(crate) partition: i32,
    pub(crate) partitions: usize,
    pub(crate) low: i64,
    pub(crate) high: i64,
    /// The offset the scan started at.
    pub(crate) start: i64,
    /// How many records were read (more than shown when a key filter is set).
    pub(crate) scanned: usize,
    pub(crate) messages: Vec<Message>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct GroupSummary {
    pub(crate) name: String,
    pub(crate) state: String,
    pub(crate) protocol_type: String,
    pub(crate) members: usize,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Member {
    pub(crate) id: String,
    pub(crate) client_id: String,
    pub(crate) host: String,
    pub(crate) assignment: Vec<(String, Vec<i32>)>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct GroupOffset {
    pub(crate) topic: String,
    pub(crate) partition: i32,
    pub(crate) committed: i64,
    pub(crate) end: i64,
    pub(crate) lag: i64,
    pub(crate) member: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct GroupDetail {
    pub(crate) name: String,
    pub(crate) state: String,
    pub(crate) protocol: String,
    pub(crate) members: Vec<Member>,
    pub(crate) offsets: Vec<GroupOffset>,
    pub(crate) total_lag: i64,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Transaction {
    pub(crate) transactional_id: String,
    pub(crate) producer_id: i64,
    pub(crate) producer_epoch: i16,
    pub(crate) state: String,
    pub(crate) coordinator: i32,
    pub(crate) timeout_ms: i32,
    /// Milliseconds since the epoch; -1 when no transaction is ongoing.
    pub(crate) start_ms: i64,
    pub(crate) partitions: Vec<(String, Vec<i32>)>,
}
