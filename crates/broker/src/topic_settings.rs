//! A topic's effective settings: its overrides, else the broker's synonyms, else Kafka's
//! defaults. Computed once per metadata change and shared by `Arc`, so the produce path
//! reads plain fields.

use gregor_metadata::topic_config::{self, TOPIC_CONFIGS};
use gregor_metadata::TopicImage;
use gregor_storage::LogConfig;

use crate::config::BrokerConfig;

#[derive(Debug, Clone, PartialEq)]
pub struct TopicSettings {
    pub max_message_bytes: usize,
    pub log_append_time: bool,
    pub timestamp_before_max_ms: i64,
    pub timestamp_after_max_ms: i64,
    pub compact: bool,
    /// `cleanup.policy` includes `delete`: retention removes old segments.
    pub delete: bool,
    pub retention_ms: i64,
    pub retention_bytes: i64,
    pub file_delete_delay_ms: i64,
    /// `min.cleanable.dirty.ratio`, `min/max.compaction.lag.ms`, `delete.retention.ms`.
    /// `compression.type` other than `producer`: the codec batches are stored in.
    pub compression: Option<gregor_protocol::compression::Codec>,
    pub min_cleanable_ratio: f64,
    pub min_compaction_lag_ms: i64,
    pub max_compaction_lag_ms: i64,
    pub delete_retention_ms: i64,
    /// `min.insync.replicas`: acks=all needs this many in the ISR.
    pub min_insync_replicas: usize,
    /// `confluent.{key,value}.schema.validation`: see `schema_validation`.
    pub key_schema_validation: bool,
    pub value_schema_validation: bool,
    pub log_config: LogConfig,
}

/// Where an effective value comes from, as DescribeConfigs reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    TopicOverride,
    DynamicBroker,
    DynamicDefaultBroker,
    StaticBroker,
    Default,
}

/// Where topic defaults come from: dynamic broker configs (this broker's, then the
/// cluster-wide default, both metadata records) over the static broker config.
pub struct BrokerDefaults<'a> {
    pub config: &'a BrokerConfig,
    pub node: Option<&'a std::collections::BTreeMap<String, String>>,
    pub cluster: Option<&'a std::collections::BTreeMap<String, String>>,
}

impl<'a> BrokerDefaults<'a> {
    pub fn new(config: &'a BrokerConfig, image: &'a gregor_metadata::MetadataImage) -> Self {
        Self {
            config,
            node: image.broker_configs.get(&config.node_id.to_string()),
            cluster: image.broker_configs.get(""),
        }
    }

    /// The broker-level value of `name` and its source.
    pub fn broker_value(&self, name: &str) -> Option<(String, ConfigSource)> {
        if let Some(v) = self.node.and_then(|m| m.get(name)) {
            return Some((v.clone(), ConfigSource::DynamicBroker));
        }
        if let Some(v) = self.cluster.and_then(|m| m.get(name)) {
            return Some((v.clone(), ConfigSource::DynamicDefaultBroker));
        }
        if let Some(v) = self.config.explicit.get(name) {
            return Some((v.clone(), ConfigSource::StaticBroker));
        }
        None
    }
}

impl ConfigSource {
    /// Kafka's `ConfigSource` id.
    pub fn code(self) -> i8 {
        match self {
            ConfigSource::TopicOverride => 1,
            ConfigSource::DynamicBroker => 2,
            ConfigSource::DynamicDefaultBroker => 3,
            ConfigSource::StaticBroker => 4,
            ConfigSource::Default => 5,
        }
    }
}

/// The effective value of topic config `name` and its source.
pub fn effective(
    topic: Option<&TopicImage>,
    defaults: &BrokerDefaults<'_>,
    name: &str,
) -> Option<(String, ConfigSource)> {
    let def = topic_config::find(name)?;
    if let Some(v) = topic.and_then(|t| t.configs.get(name)) {
        return Some((v.clone(), ConfigSource::TopicOverride));
    }
    if let Some(found) = defaults.broker_value(def.broker_synonym) {
        return Some(found);
    }
    // Derived broker values (log.roll.hours -> log.roll.ms) count as the broker's.
    match defaults.config.get(def.broker_synonym) {
        Some(v) if v != def.default => Some((v.to_string(), ConfigSource::StaticBroker)),
        _ => Some((def.default.to_string(), ConfigSource::Default)),
    }
}

/// Every topic config with its effective value.
pub fn all_effective(
    topic: Option<&TopicImage>,
    broker: &BrokerDefaults<'_>,
) -> Vec<(&'static str, String, ConfigSource)> {
    TOPIC_CONFIGS
        .iter()
        .filter_map(|d| effective(topic, broker, d.name).map(|(v, s)| (d.name, v, s)))
        .collect()
}

fn value(topic: Option<&TopicImage>, broker: &BrokerDefaults<'_>, name: &str) -> String {
    effective(topic, broker, name)
        .map(|(v, _)| v)
        .unwrap_or_default()
}

fn long(topic: Option<&TopicImage>, broker: &BrokerDefaults<'_>, name: &str, fallback: i64) -> i64 {
    value(topic, broker, name)
        .trim()
        .parse()
        .unwrap_or(fallback)
}

impl TopicSettings {
    pub fn resolve(topic: Option<&TopicImage>, broker: &BrokerDefaults<'_>) -> Self {
        let l = |name: &str, fallback: i64| long(topic, broker, name, fallback);
        Self {
            max_message_bytes: l("max.message.bytes", 1_048_588).max(0) as usize,
            log_append_time: value(topic, broker, "message.timestamp.type") == "LogAppendTime",
            timestamp_before_max_ms: l("message.timestamp.before.max.ms", i64::MAX),
            timestamp_after_max_ms: l("message.timestamp.after.max.ms", 3_600_000),
            compact: value(topic, broker, "cleanup.policy")
                .split(',')
                .any(|p| p.trim() == "compact"),
            delete: value(topic, broker, "cleanup.policy")
                .split(',')
                .any(|p| p.trim() == "delete"),
            retention_ms: l("retention.ms", 604_800_000),
            retention_bytes: l("retention.bytes", -1),
            file_delete_delay_ms: l("file.delete.delay.ms", 60_000).max(0),
            compression: {
                use gregor_protocol::compression::Codec;
                match value(topic, broker, "compression.type").as_str() {
                    "uncompressed" => Some(Codec::None),
                    "gzip" => Some(Codec::Gzip),
                    "snappy" => Some(Codec::Snappy),
                    "lz4" => Some(Codec::Lz4),
                    "zstd" => Some(Codec::Zstd),
                    _ => None,
                }
            },
            min_cleanable_ratio: value(topic, broker, "min.cleanable.dirty.ratio")
                .trim()
                .parse()
                .unwrap_or(0.5),
            min_compaction_lag_ms: l("min.compaction.lag.ms", 0).max(0),
            max_compaction_lag_ms: l("max.compaction.lag.ms", i64::MAX).max(1),
            delete_retention_ms: l("delete.retention.ms", 86_400_000).max(0),
            min_insync_replicas: l("min.insync.replicas", 1).clamp(1, i64::from(i32::MAX)) as usize,
            key_schema_validation: value(topic, broker, "confluent.key.schema.validation")
                .eq_ignore_ascii_case("true"),
            value_schema_validation: value(topic, broker, "confluent.value.schema.validation")
                .eq_ignore_ascii_case("true"),
            log_config: LogConfig {
                segment_bytes: l("segment.bytes", 1 << 30).max(14) as u64,
                segment_ms: l("segment.ms", 604_800_000).max(1),
                index_interval_bytes: l("index.interval.bytes", 4096).max(0) as usize,
                flush_messages: l("flush.messages", i64::MAX).max(1),
                flush_ms: l("flush.ms", i64::MAX).max(0),
                producer_id_expiration_ms: broker
                    .config
                    .get("producer.id.expiration.ms")
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(86_400_000),
            },
        }
    }
}
