//! Share groups (KIP-932, "queues for Kafka"): members of a share group consume the
//! same partitions together, and each record goes to one member at a time.
//!
//! # Layout
//! - [`group`]: membership and the uniform assignor (ShareGroupHeartbeat).
//! - [`partition`]: one share-partition's state machine (SPSO/SPEO, in-flight records,
//!   acquisition locks, delivery counts). Pure and unit-tested.
//! - [`session`]: share sessions and their epochs (ShareFetch/ShareAcknowledge).
//! - [`read`]: reading stored batches from a log and acquiring their offsets.
//! - [`state`]: the share coordinator: share-partition state in the replicated
//!   `__share_group_state` topic, served to share-partition leaders (APIs 83–87).
//! - [`persister`]: the share-partition leader's client of it (reads on takeover,
//!   writes of acknowledgements and releases).
//! - [`persist`]: the local snapshot files of earlier versions, moved to the topic.
//! - `coordinator.rs`: [`ShareCoordinator`], the registry all handlers call, and the
//!   timer task that expires acquisition locks and member sessions at their deadlines.
//!
//! One coordinator per broker holds both the group side (membership, served where
//! FindCoordinator points, as for consumer groups) and the share-partition side
//! (served by the partition's leader). On a single node they are the same broker; in
//! a cluster a member's leave releases its records only on the coordinator's node, and
//! elsewhere its locks expire.

mod coordinator;
pub mod persist;
pub mod persister;
pub mod read;
pub mod session;
pub mod state;

use std::collections::BTreeMap;
use std::time::Duration;

/// The pure parts (in `gregor-coordinator`): the share-group membership and assignor,
/// the share-partition state machine, and the typed error (mapped to Kafka codes in
/// `crate::error`).
pub use gregor_coordinator::share::{group, partition, ShareError};

pub use coordinator::{
    topic_info, AckBatch, AckOutcome, FetchOutcome, PartitionFetch, ShareCoordinator,
    ShareGroupInfo, ShareOffsets,
};

/// Where a new share-partition starts (`share.auto.offset.reset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetReset {
    Earliest,
    Latest,
}

/// The `group.share.*` settings.
#[derive(Debug, Clone)]
pub struct ShareConfig {
    pub session_timeout: Duration,
    pub heartbeat_interval_ms: i32,
    pub max_size: usize,
    pub limits: partition::Limits,
    /// `share.auto.offset.reset`: the broker-wide default for share groups.
    pub auto_offset_reset: OffsetReset,
    /// `share.isolation.level` = read_committed: deliver only committed transactional
    /// records (read below the last stable offset, aborted batches skipped).
    pub read_committed: bool,
    /// `share.coordinator.state.topic.num.partitions` / `.replication.factor`.
    pub state: state::StateConfig,
}

impl ShareConfig {
    /// These settings with a group's own configs (the GROUP config resource) applied:
    /// `share.session.timeout.ms`, `share.heartbeat.interval.ms`,
    /// `share.record.lock.duration.ms`, `share.auto.offset.reset`,
    /// `share.isolation.level`. The controller validated them; a value that does not
    /// parse keeps the broker's.
    pub fn with_group(&self, group: Option<&BTreeMap<String, String>>) -> Self {
        use gregor_metadata::group_config as gc;
        let mut c = self.clone();
        let Some(v) = group else { return c };
        let ms = |k: &str| {
            v.get(k)
                .and_then(|s| s.parse::<u64>().ok())
                .filter(|n| *n > 0)
        };
        if let Some(n) = ms(gc::SHARE_SESSION_TIMEOUT_MS) {
            c.session_timeout = Duration::from_millis(n);
        }
        if let Some(n) = ms(gc::SHARE_HEARTBEAT_INTERVAL_MS).and_then(|n| i32::try_from(n).ok()) {
            c.heartbeat_interval_ms = n;
        }
        if let Some(n) = ms(gc::SHARE_RECORD_LOCK_DURATION_MS) {
            c.limits.lock_duration = Duration::from_millis(n);
        }
        match v.get(gc::SHARE_AUTO_OFFSET_RESET).map(String::as_str) {
            Some("earliest") => c.auto_offset_reset = OffsetReset::Earliest,
            Some("latest") => c.auto_offset_reset = OffsetReset::Latest,
            _ => {}
        }
        match v.get(gc::SHARE_ISOLATION_LEVEL).map(String::as_str) {
            Some("read_committed") => c.read_committed = true,
            Some("read_uncommitted") => c.read_committed = false,
            _ => {}
        }
        c
    }

    /// Reads the settings from the broker's config values (defaults in
    /// `config::BROKER_DEFAULTS`); a value that does not parse keeps Kafka's default.
    pub fn from_values(values: &BTreeMap<String, String>) -> Self {
        fn num<T: std::str::FromStr + PartialOrd + Default>(
            v: &BTreeMap<String, String>,
            k: &str,
            d: T,
        ) -> T {
            v.get(k)
                .and_then(|s| s.trim().parse::<T>().ok())
                .filter(|n| *n > T::default())
                .unwrap_or(d)
        }
        Self {
            session_timeout: Duration::from_millis(num(
                values,
                "group.share.session.timeout.ms",
                45_000u64,
            )),
            heartbeat_interval_ms: num(values, "group.share.heartbeat.interval.ms", 5_000i32),
            max_size: num(values, "group.share.max.size", 200usize),
            limits: partition::Limits {
                max_in_flight: num(values, "group.share.partition.max.record.locks", 2_000usize),
                delivery_limit: num(values, "group.share.delivery.count.limit", 5i16),
                lock_duration: Duration::from_millis(num(
                    values,
                    "group.share.record.lock.duration.ms",
                    30_000u64,
                )),
            },
            auto_offset_reset: match values.get("share.auto.offset.reset").map(|s| s.as_str()) {
                Some("earliest") => OffsetReset::Earliest,
                _ => OffsetReset::Latest,
            },
            read_committed: values.get("share.isolation.level").map(|s| s.as_str())
                == Some("read_committed"),
            state: state::StateConfig {
                partitions: num(
                    values,
                    "share.coordinator.state.topic.num.partitions",
                    50i32,
                ),
                replication_factor: num(
                    values,
                    "share.coordinator.state.topic.replication.factor",
                    3i16,
                ),
            },
        }
    }
}
