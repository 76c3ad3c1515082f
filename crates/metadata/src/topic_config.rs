//! Topic-level configs: Kafka's names, types, defaults, broker synonyms and validation.
//!
//! A topic's effective value is its override if set, else the broker's synonym value,
//! else the default here (Kafka's `LogConfig`).

/// Value type, as Kafka's `ConfigDef.Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    Boolean,
    Int,
    Long,
    Double,
    String,
    List,
}

impl ConfigType {
    /// Kafka's `DescribeConfigsResponse.ConfigType` code.
    pub fn code(self) -> i8 {
        match self {
            ConfigType::Boolean => 1,
            ConfigType::String => 2,
            ConfigType::Int => 3,
            ConfigType::Long => 5,
            ConfigType::Double => 6,
            ConfigType::List => 7,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Validator {
    Any,
    AtLeast(i64),
    DoubleRange(f64, f64),
    OneOf(&'static [&'static str]),
    ListOf(&'static [&'static str]),
    /// `*`, or `partition:broker` pairs (replication throttles).
    ThrottledReplicas,
}

#[derive(Debug, Clone, Copy)]
pub struct ConfigDef {
    pub name: &'static str,
    pub kind: ConfigType,
    pub default: &'static str,
    /// The broker config that supplies the default for all topics.
    pub broker_synonym: &'static str,
    pub validator: Validator,
    pub doc: &'static str,
}

const LONG_MAX: &str = "9223372036854775807";

macro_rules! def {
    ($name:expr, $kind:ident, $default:expr, $syn:expr, $v:expr, $doc:expr) => {
        ConfigDef {
            name: $name,
            kind: ConfigType::$kind,
            default: $default,
            broker_synonym: $syn,
            validator: $v,
            doc: $doc,
        }
    };
}

pub const TOPIC_CONFIGS: &[ConfigDef] = &[
    def!(
        "cleanup.policy",
        List,
        "delete",
        "log.cleanup.policy",
        Validator::ListOf(&["delete", "compact"]),
        "Retention policy for old segments: delete, compact, or both."
    ),
    def!(
        "compression.type",
        String,
        "producer",
        "compression.type",
        Validator::OneOf(&["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"]),
        "Final compression of the topic's data; producer keeps the producer's codec."
    ),
    def!(
        "delete.retention.ms",
        Long,
        "86400000",
        "log.cleaner.delete.retention.ms",
        Validator::AtLeast(0),
        "How long tombstones are kept on compacted topics."
    ),
    def!(
        "file.delete.delay.ms",
        Long,
        "60000",
        "log.segment.delete.delay.ms",
        Validator::AtLeast(0),
        "Delay before a deleted segment's files are removed."
    ),
    def!(
        "flush.messages",
        Long,
        LONG_MAX,
        "log.flush.interval.messages",
        Validator::AtLeast(1),
        "Force an fsync after this many messages."
    ),
    def!(
        "flush.ms",
        Long,
        LONG_MAX,
        "log.flush.interval.ms",
        Validator::AtLeast(0),
        "Force an fsync when unflushed data is this old."
    ),
    def!(
        "index.interval.bytes",
        Int,
        "4096",
        "log.index.interval.bytes",
        Validator::AtLeast(0),
        "Bytes between offset index entries."
    ),
    def!(
        "max.compaction.lag.ms",
        Long,
        LONG_MAX,
        "log.cleaner.max.compaction.lag.ms",
        Validator::AtLeast(1),
        "Maximum time a message stays ineligible for compaction."
    ),
    def!(
        "max.message.bytes",
        Int,
        "1048588",
        "message.max.bytes",
        Validator::AtLeast(0),
        "Largest record batch size allowed."
    ),
    def!(
        "message.timestamp.type",
        String,
        "CreateTime",
        "log.message.timestamp.type",
        Validator::OneOf(&["CreateTime", "LogAppendTime"]),
        "Whether record timestamps are the producer's or the broker's append time."
    ),
    def!(
        "message.timestamp.before.max.ms",
        Long,
        LONG_MAX,
        "log.message.timestamp.before.max.ms",
        Validator::AtLeast(0),
        "Largest allowed distance of a timestamp in the past."
    ),
    def!(
        "message.timestamp.after.max.ms",
        Long,
        "3600000",
        "log.message.timestamp.after.max.ms",
        Validator::AtLeast(0),
        "Largest allowed distance of a timestamp in the future."
    ),
    def!(
        "min.cleanable.dirty.ratio",
        Double,
        "0.5",
        "log.cleaner.min.cleanable.ratio",
        Validator::DoubleRange(0.0, 1.0),
        "Dirty ratio above which the log is compacted."
    ),
    def!(
        "min.compaction.lag.ms",
        Long,
        "0",
        "log.cleaner.min.compaction.lag.ms",
        Validator::AtLeast(0),
        "Minimum time a message stays uncompacted."
    ),
    def!(
        "min.insync.replicas",
        Int,
        "1",
        "min.insync.replicas",
        Validator::AtLeast(1),
        "Replicas that must acknowledge an acks=all write."
    ),
    def!(
        "preallocate",
        Boolean,
        "false",
        "log.preallocate",
        Validator::Any,
        "Preallocate segment files."
    ),
    def!(
        "retention.bytes",
        Long,
        "-1",
        "log.retention.bytes",
        Validator::Any,
        "Largest size of a partition's log before old segments are deleted."
    ),
    def!(
        "retention.ms",
        Long,
        "604800000",
        "log.retention.ms",
        Validator::AtLeast(-1),
        "Time a segment is kept before deletion."
    ),
    def!(
        "segment.bytes",
        Int,
        "1073741824",
        "log.segment.bytes",
        Validator::AtLeast(14),
        "Segment file size."
    ),
    def!(
        "segment.index.bytes",
        Int,
        "10485760",
        "log.index.size.max.bytes",
        Validator::AtLeast(4),
        "Offset index size limit."
    ),
    def!(
        "segment.jitter.ms",
        Long,
        "0",
        "log.roll.jitter.ms",
        Validator::AtLeast(0),
        "Random jitter subtracted from segment.ms."
    ),
    def!(
        "segment.ms",
        Long,
        "604800000",
        "log.roll.ms",
        Validator::AtLeast(1),
        "Time after which a segment is rolled."
    ),
    def!(
        "leader.replication.throttled.replicas",
        List,
        "",
        "",
        Validator::ThrottledReplicas,
        "Replicas whose replication is throttled on the leader side: partition:broker pairs, or * for all."
    ),
    def!(
        "follower.replication.throttled.replicas",
        List,
        "",
        "",
        Validator::ThrottledReplicas,
        "Replicas whose replication is throttled on the follower side: partition:broker pairs, or * for all."
    ),
    def!(
        "unclean.leader.election.enable",
        Boolean,
        "false",
        "unclean.leader.election.enable",
        Validator::Any,
        "Allow out-of-sync replicas to become leader."
    ),
    def!(
        "confluent.key.schema.validation",
        Boolean,
        "false",
        "",
        Validator::Any,
        "Accept only keys in the schema registry's wire format whose schema id is registered under <topic>-key."
    ),
    def!(
        "confluent.value.schema.validation",
        Boolean,
        "false",
        "",
        Validator::Any,
        "Accept only values in the schema registry's wire format whose schema id is registered under <topic>-value."
    ),
];

/// Broker configs that change at runtime and are not a topic's default: the replication
/// throttle rates, bytes/s, that apply to the replicas the topics' throttled-replica
/// lists name (Kafka's `leader.replication.throttled.rate` and the follower's).
pub const BROKER_DYNAMIC_CONFIGS: &[ConfigDef] = &[
    def!(
        "leader.replication.throttled.rate",
        Long,
        LONG_MAX,
        "leader.replication.throttled.rate",
        Validator::AtLeast(1),
        "Bytes/s a leader sends to the throttled replicas it serves."
    ),
    def!(
        "follower.replication.throttled.rate",
        Long,
        LONG_MAX,
        "follower.replication.throttled.rate",
        Validator::AtLeast(1),
        "Bytes/s a follower fetches for its throttled replicas."
    ),
];

/// Parses a throttled-replicas list: `None` for `*` (every replica), else the
/// (partition, broker) pairs. An empty list throttles nothing.
pub fn parse_throttled_replicas(value: &str) -> Result<Option<Vec<(i32, i32)>>, String> {
    let v = value.trim();
    if v == "*" {
        return Ok(None);
    }
    let mut out = Vec::new();
    for item in v.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let pair = item
            .split_once(':')
            .and_then(|(p, b)| Some((p.trim().parse().ok()?, b.trim().parse().ok()?)));
        match pair {
            Some(p) => out.push(p),
            None => return Err(format!("{item} is not partition:broker")),
        }
    }
    Ok(Some(out))
}

/// The definition of topic config `name`.
pub fn find(name: &str) -> Option<&'static ConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.name == name)
}

/// Checks a value against a definition's type and validator.
pub fn validate_value(def: &ConfigDef, value: &str) -> Result<(), String> {
    let bad = |why: &str| {
        Err(format!(
            "Invalid value {value} for configuration {}: {why}",
            def.name
        ))
    };
    let v = value.trim();
    match def.kind {
        ConfigType::Boolean => {
            if !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false") {
                return bad("Expected value to be either true or false");
            }
        }
        ConfigType::Int | ConfigType::Long => {
            let parsed = if def.kind == ConfigType::Int {
                v.parse::<i32>().map(i64::from)
            } else {
                v.parse::<i64>()
            };
            let Ok(n) = parsed else {
                return bad(if def.kind == ConfigType::Int {
                    "Not a number of type INT"
                } else {
                    "Not a number of type LONG"
                });
            };
            if let Validator::AtLeast(min) = def.validator {
                if n < min {
                    return bad(&format!("Value must be at least {min}"));
                }
            }
        }
        ConfigType::Double => {
            let Ok(n) = v.parse::<f64>() else {
                return bad("Not a number of type DOUBLE");
            };
            if let Validator::DoubleRange(lo, hi) = def.validator {
                if !(lo..=hi).contains(&n) {
                    return bad(&format!("Value must be between {lo} and {hi}"));
                }
            }
        }
        ConfigType::String => {
            if let Validator::OneOf(options) = def.validator {
                if !options.contains(&v) {
                    return bad(&format!("String must be one of: {}", options.join(", ")));
                }
            }
        }
        ConfigType::List => {
            if let Validator::ThrottledReplicas = def.validator {
                if let Err(why) = parse_throttled_replicas(v) {
                    return bad(&why);
                }
            }
            if let Validator::ListOf(options) = def.validator {
                for item in v.split(',').map(str::trim) {
                    if !options.contains(&item) {
                        return bad(&format!("List items must be in: {}", options.join(", ")));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Validates a topic config override by name.
pub fn validate(name: &str, value: &str) -> Result<(), String> {
    match find(name) {
        Some(def) => validate_value(def, value),
        None => Err(format!("Unknown topic config name: {name}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_follows_kafka_rules() {
        assert!(validate("cleanup.policy", "compact,delete").is_ok());
        assert!(validate("cleanup.policy", "shred").is_err());
        assert!(validate("segment.bytes", "10").is_err());
        assert!(validate("segment.bytes", "4096").is_ok());
        assert!(validate("retention.ms", "-1").is_ok());
        assert!(validate("min.cleanable.dirty.ratio", "1.5").is_err());
        assert!(validate("message.timestamp.type", "LogAppendTime").is_ok());
        assert!(validate("no.such.config", "1").is_err());
        assert!(validate("max.message.bytes", "lots").is_err());
        assert!(validate("leader.replication.throttled.replicas", "0:1,1:2").is_ok());
        assert!(validate("leader.replication.throttled.replicas", "*").is_ok());
        assert!(validate("follower.replication.throttled.replicas", "").is_ok());
        assert!(validate("follower.replication.throttled.replicas", "0-1").is_err());
    }
}
