//! Distributed mode: workers sharing a `group.id` form a group (Kafka Connect's group
//! protocol, `protocol_type` `connect`), the leader deals connectors and tasks
//! round-robin, and configs, source offsets and status live in compacted topics.
//!
//! - `protocol`: ConnectProtocol's member metadata and assignment encoding, the
//!   assignor.
//! - `group`: the group-member client (FindCoordinator, JoinGroup, SyncGroup,
//!   Heartbeat, LeaveGroup) on `kafka-protocol` over tokio TCP.
//! - `log`: an internal topic read to its end and written with acks=all.
//! - `state`: the config and status topics' keys and values (Kafka's formats).
//! - `cluster`: what a worker shares between its herder, REST and tasks: the config
//!   state read so far, statuses, the current leader.
//! - `herder`: the membership loop (join, sync, heartbeat, rejoin, leave).
//! - `ops`: the worker's distributed operations: writes through the config topic,
//!   starting and stopping what the assignment says.

pub mod cluster;
pub mod group;
pub mod herder;
pub mod log;
mod ops;
pub mod protocol;
pub mod state;

use gregor_connect_api::Props;

use crate::error::Error;

/// What the distributed runtime can fail with.
#[derive(Debug, thiserror::Error)]
pub enum DistError {
    /// Malformed group protocol data.
    #[error("Connect protocol: {0}")]
    Protocol(String),
    /// The coordinator connection failed.
    #[error("group coordinator connection: {0}")]
    Io(String),
    /// The group is rebalancing (or this member's generation is stale): rejoin.
    #[error("{0}: rebalance needed (error code {1})")]
    Rebalance(&'static str, i16),
    /// The coordinator moved or is loading: find it again.
    #[error("{0}: coordinator not available (error code {1})")]
    Coordinator(&'static str, i16),
    /// Any other group error.
    #[error("{0} failed with error code {1}")]
    Group(&'static str, i16),
    /// An internal topic.
    #[error("{0}")]
    Kafka(String),
    /// A bad worker setting.
    #[error("{0}")]
    Config(String),
}

impl From<DistError> for Error {
    fn from(e: DistError) -> Self {
        match e {
            DistError::Config(m) => Error::BadRequest(m),
            DistError::Kafka(m) => Error::Kafka(m),
            other => Error::Internal(other.to_string()),
        }
    }
}

/// Distributed worker settings, Kafka's names and (where sensible) defaults.
#[derive(Clone, Debug)]
pub struct DistConfig {
    pub group_id: String,
    pub config_topic: String,
    pub offset_topic: String,
    pub status_topic: String,
    pub config_replication: i32,
    pub offset_replication: i32,
    pub status_replication: i32,
    pub offset_partitions: i32,
    pub status_partitions: i32,
    pub session_timeout_ms: i32,
    pub heartbeat_interval_ms: i32,
    pub rebalance_timeout_ms: i32,
    /// KIP-618 `exactly.once.source.support`.
    pub exactly_once_source: super::eos::WorkerSupport,
}

fn num(props: &Props, key: &str, default: i32) -> Result<i32, DistError> {
    match props.get(key) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| DistError::Config(format!("worker property {key}={v} is not a number"))),
    }
}

impl DistConfig {
    /// `None` when `group.id` is absent (standalone mode).
    pub fn from_props(props: &Props) -> Result<Option<Self>, DistError> {
        let Some(group_id) = props.get("group.id").filter(|g| !g.trim().is_empty()) else {
            return Ok(None);
        };
        let s = |k: &str, d: &str| props.get(k).cloned().unwrap_or_else(|| d.to_string());
        let c = DistConfig {
            group_id: group_id.trim().to_string(),
            config_topic: s("config.storage.topic", "connect-configs"),
            offset_topic: s("offset.storage.topic", "connect-offsets"),
            status_topic: s("status.storage.topic", "connect-status"),
            // -1: the broker's default.replication.factor (KIP-464), as Kafka allows.
            config_replication: num(props, "config.storage.replication.factor", -1)?,
            offset_replication: num(props, "offset.storage.replication.factor", -1)?,
            status_replication: num(props, "status.storage.replication.factor", -1)?,
            offset_partitions: num(props, "offset.storage.partitions", 25)?,
            status_partitions: num(props, "status.storage.partitions", 5)?,
            session_timeout_ms: num(props, "session.timeout.ms", 10_000)?,
            heartbeat_interval_ms: num(props, "heartbeat.interval.ms", 3_000)?,
            rebalance_timeout_ms: num(props, "rebalance.timeout.ms", 60_000)?,
            exactly_once_source: super::eos::WorkerSupport::from_props(props)?,
        };
        if c.heartbeat_interval_ms <= 0 || c.heartbeat_interval_ms >= c.session_timeout_ms {
            return Err(DistError::Config(
                "heartbeat.interval.ms must be positive and below session.timeout.ms".into(),
            ));
        }
        Ok(Some(c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_with_defaults() {
        let mut p = Props::new();
        assert!(DistConfig::from_props(&p).unwrap().is_none());
        p.insert("group.id".into(), "g".into());
        p.insert("offset.storage.partitions".into(), "3".into());
        let c = DistConfig::from_props(&p).unwrap().unwrap();
        assert_eq!(
            (c.config_topic.as_str(), c.offset_partitions),
            ("connect-configs", 3)
        );
        assert_eq!(
            c.exactly_once_source,
            super::super::eos::WorkerSupport::Disabled
        );
        p.insert("exactly.once.source.support".into(), "sometimes".into());
        assert!(DistConfig::from_props(&p).is_err());
        p.insert("exactly.once.source.support".into(), "enabled".into());
        assert_eq!(
            DistConfig::from_props(&p)
                .unwrap()
                .unwrap()
                .exactly_once_source,
            super::super::eos::WorkerSupport::Enabled
        );
        p.insert("heartbeat.interval.ms".into(), "20000".into());
        assert!(DistConfig::from_props(&p).is_err());
        p.insert("session.timeout.ms".into(), "x".into());
        assert!(DistConfig::from_props(&p).is_err());
    }
}
