//! The controller's decisions: validate an operation against the image and turn it into
//! metadata records. Pure functions; [`crate::MetadataStore`] makes the result durable.

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::image::MetadataImage;
use crate::records::{ConfigResource, MetadataRecord};
use crate::topic_config;

/// Why the controller refused an operation. Each maps to one Kafka error code.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ControllerError {
    #[error("Topic '{0}' already exists.")]
    TopicAlreadyExists(String),
    #[error("{0}")]
    InvalidTopic(String),
    #[error("{0}")]
    InvalidPartitions(String),
    #[error("{0}")]
    InvalidReplicationFactor(String),
    #[error("{0}")]
    InvalidConfig(String),
    /// A malformed request (UpdateFeatures naming a feature twice, a bad client-metrics
    /// resource).
    #[error("{0}")]
    InvalidRequest(String),
    #[error("This server does not host this topic.")]
    UnknownTopic,
    #[error("This server does not host this topic ID.")]
    UnknownTopicId,
    /// UpdateFeatures: a level or upgrade type the broker refuses.
    #[error("{0}")]
    InvalidUpdateVersion(String),
    /// AlterPartition from a leader whose leader epoch is not the current one.
    #[error("{0}")]
    FencedLeaderEpoch(String),
    /// AlterPartition from a broker that does not lead the partition.
    #[error("{0}")]
    NotLeader(String),
    /// AlterPartition from a broker whose registration epoch is not the current one.
    #[error("{0}")]
    StaleBrokerEpoch(String),
    /// AlterPartition naming a replica that may not join the ISR (fenced, shutting
    /// down, or not a replica).
    #[error("{0}")]
    IneligibleReplica(String),
    /// A reassignment target that is empty, repeats a broker or names an unknown one.
    #[error("{0}")]
    InvalidReplicaAssignment(String),
    /// A cancel of a partition that is not being reassigned.
    #[error("No partition reassignment is in progress.")]
    NoReassignmentInProgress,
    /// UnregisterBroker of a broker that is not registered.
    #[error("Broker {0} is not registered.")]
    BrokerIdNotRegistered(i32),
}

/// Names reserved for the broker's internal topics.
pub const INTERNAL_TOPICS: &[&str] = &["__consumer_offsets", "__transaction_state"];

const MAX_NAME_LENGTH: usize = 249;

/// Most partitions one topic may have. Kafka sets no limit, but a request for a billion
/// partitions should be an error, not a broker that runs out of memory or files.
pub const MAX_PARTITIONS_PER_TOPIC: i32 = 10_000;

/// Kafka's topic name rules.
pub fn validate_topic_name(name: &str) -> Result<(), ControllerError> {
    if name.is_empty() {
        return Err(ControllerError::InvalidTopic(
            "Topic name is illegal, it can't be empty".into(),
        ));
    }
    if name == "." || name == ".." {
        return Err(ControllerError::InvalidTopic(
            "Topic name cannot be \".\" or \"..\"".into(),
        ));
    }
    if name.len() > MAX_NAME_LENGTH {
        return Err(ControllerError::InvalidTopic(format!(
            "Topic name is illegal, it can't be longer than {MAX_NAME_LENGTH} characters, topic name: {name}"
        )));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return Err(ControllerError::InvalidTopic(format!(
            "Topic name {name} is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        )));
    }
    Ok(())
}

/// A request to create one topic.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct NewTopic {
    pub name: String,
    /// `None`: the broker default (`num.partitions`).
    pub num_partitions: i32,
    pub replication_factor: i16,
    pub configs: BTreeMap<String, String>,
    /// Manual replica assignment, one list per partition (CreateTopics' Assignments);
    /// empty: the controller places replicas.
    #[serde(default)]
    pub assignments: Vec<Vec<i32>>,
}

/// Validates a topic creation and returns its records. `live_brokers` is the set of
/// brokers replicas can be placed on.
pub fn create_topic(
    image: &MetadataImage,
    t: &NewTopic,
    live_brokers: &[i32],
) -> Result<Vec<MetadataRecord>, ControllerError> {
    validate_topic_name(&t.name)?;
    if image.topics.contains_key(&t.name) {
        return Err(ControllerError::TopicAlreadyExists(t.name.clone()));
    }
    let collides = |n: &str| n.replace('.', "_") == t.name.replace('.', "_");
    if let Some(other) = image.topics.keys().find(|n| collides(n)) {
        return Err(ControllerError::InvalidTopic(format!(
            "Topic '{}' collides with existing topic: {other}",
            t.name
        )));
    }
    if t.num_partitions <= 0 {
        return Err(ControllerError::InvalidPartitions(
            "Number of partitions must be larger than 0.".into(),
        ));
    }
    if t.num_partitions > MAX_PARTITIONS_PER_TOPIC {
        return Err(ControllerError::InvalidPartitions(format!(
            "Number of partitions {} is more than this broker allows for a topic ({MAX_PARTITIONS_PER_TOPIC}).",
            t.num_partitions
        )));
    }
    if t.replication_factor <= 0 {
        return Err(ControllerError::InvalidReplicationFactor(
            "Replication factor must be larger than 0.".into(),
        ));
    }
    if t.replication_factor as usize > live_brokers.len() {
        return Err(ControllerError::InvalidReplicationFactor(format!(
            "Unable to replicate the partition {} time(s): The target replication factor of {} cannot be reached because only {} broker(s) are registered.",
            t.replication_factor, t.replication_factor, live_brokers.len()
        )));
    }
    for (k, v) in &t.configs {
        topic_config::validate(k, v).map_err(ControllerError::InvalidConfig)?;
    }
    for (p, manual) in t.assignments.iter().enumerate() {
        let mut sorted = manual.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() != manual.len() || manual.len() != t.replication_factor as usize {
            return Err(ControllerError::InvalidReplicaAssignment(format!(
                "Partition {p}: a manual assignment needs {} distinct replicas, got {manual:?}",
                t.replication_factor
            )));
        }
        if let Some(b) = manual.iter().find(|b| !image.brokers.contains_key(b)) {
            return Err(ControllerError::InvalidReplicaAssignment(format!(
                "Partition {p}: broker {b} is not registered"
            )));
        }
    }
    let topic_id = Uuid::new_v4();
    let mut records = vec![MetadataRecord::TopicRecord {
        name: t.name.clone(),
        topic_id,
    }];
    for p in 0..t.num_partitions {
        let replicas = match t.assignments.get(p as usize) {
            Some(manual) => manual.clone(),
            None => crate::placement::replicas_for(live_brokers, p, t.replication_factor as usize),
        };
        records.push(MetadataRecord::PartitionRecord {
            topic_id,
            partition: p,
            leader: replicas[0],
            isr: replicas.clone(),
            replicas,
            leader_epoch: 0,
            partition_epoch: 0,
            adding_replicas: Vec::new(),
            removing_replicas: Vec::new(),
            eligible_leader_replicas: Vec::new(),
            last_known_elr: Vec::new(),
        });
    }
    for (k, v) in &t.configs {
        records.push(MetadataRecord::ConfigRecord {
            resource: ConfigResource::Topic,
            resource_name: t.name.clone(),
            name: k.clone(),
            value: Some(v.clone()),
        });
    }
    Ok(records)
}

/// An IncrementalAlterConfigs operation (KIP-339), with Kafka's op codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ConfigOp {
    Set,
    Delete,
    Append,
    Subtract,
}

impl ConfigOp {
    pub fn from_code(code: i8) -> Option<Self> {
        match code {
            0 => Some(ConfigOp::Set),
            1 => Some(ConfigOp::Delete),
            2 => Some(ConfigOp::Append),
            3 => Some(ConfigOp::Subtract),
            _ => None,
        }
    }
}

/// Applies IncrementalAlterConfigs operations to a set of values. `find` names the
/// definition that validates each config (None: it cannot be changed here).
fn apply_config_ops(
    current: &BTreeMap<String, String>,
    ops: &[(String, ConfigOp, Option<String>)],
    find: impl Fn(&str) -> Option<&'static topic_config::ConfigDef>,
    unknown: impl Fn(&str) -> String,
) -> Result<BTreeMap<String, String>, ControllerError> {
    let mut next = current.clone();
    for (name, op, value) in ops {
        let def = find(name).ok_or_else(|| ControllerError::InvalidConfig(unknown(name)))?;
        match op {
            ConfigOp::Set => {
                let v = value.clone().ok_or_else(|| {
                    ControllerError::InvalidConfig(format!("Null value not supported for : {name}"))
                })?;
                topic_config::validate_value(def, &v).map_err(ControllerError::InvalidConfig)?;
                next.insert(name.clone(), v);
            }
            ConfigOp::Delete => {
                next.remove(name);
            }
            ConfigOp::Append | ConfigOp::Subtract => {
                if def.kind != topic_config::ConfigType::List {
                    return Err(ControllerError::InvalidConfig(format!(
                        "Config value append/subtract is not allowed for config key: {name}, since it is not a list"
                    )));
                }
                let items_of = |v: &str| -> Vec<String> {
                    v.split(',')
                        .map(|i| i.trim().to_string())
                        .filter(|i| !i.is_empty())
                        .collect()
                };
                let mut items = items_of(next.get(name).map_or(def.default, String::as_str));
                let given = items_of(value.as_deref().unwrap_or_default());
                if *op == ConfigOp::Append {
                    for g in given {
                        if !items.contains(&g) {
                            items.push(g);
                        }
                    }
                } else {
                    items.retain(|i| !given.contains(i));
                }
                let v = items.join(",");
                topic_config::validate_value(def, &v).map_err(ControllerError::InvalidConfig)?;
                next.insert(name.clone(), v);
            }
        }
    }
    Ok(next)
}

/// The ConfigRecords that turn `old` into `new` for one resource.
fn diff_configs(
    resource: ConfigResource,
    resource_name: &str,
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
) -> Vec<MetadataRecord> {
    let record = |name: &str, value: Option<String>| MetadataRecord::ConfigRecord {
        resource,
        resource_name: resource_name.to_string(),
        name: name.to_string(),
        value,
    };
    let mut out: Vec<MetadataRecord> = old
        .keys()
        .filter(|k| !new.contains_key(*k))
        .map(|k| record(k, None))
        .collect();
    for (name, v) in new {
        if old.get(name) != Some(v) {
            out.push(record(name, Some(v.clone())));
        }
    }
    out
}

/// Records for incremental changes to a topic's config overrides. Every operation is
/// validated first; one bad operation refuses the whole resource, as Kafka does.
pub fn alter_topic_configs(
    image: &MetadataImage,
    topic: &str,
    ops: &[(String, ConfigOp, Option<String>)],
) -> Result<Vec<MetadataRecord>, ControllerError> {
    let t = image.topic(topic).ok_or(ControllerError::UnknownTopic)?;
    let next = apply_config_ops(&t.configs, ops, topic_config::find, |name| {
        format!("Unknown topic config name: {name}")
    })?;
    Ok(diff_configs(
        ConfigResource::Topic,
        topic,
        &t.configs,
        &next,
    ))
}

/// Records for dynamic broker configs (`resource_name` is a broker id, or "" for the
/// cluster-wide default). Only the broker defaults of topic configs (`log.retention.ms`,
/// `log.cleanup.policy`, ...), which apply to every topic that does not override them,
/// and the replication throttle rates can change at runtime.
pub fn alter_broker_configs(
    image: &MetadataImage,
    resource_name: &str,
    ops: &[(String, ConfigOp, Option<String>)],
) -> Result<Vec<MetadataRecord>, ControllerError> {
    let current = image
        .broker_configs
        .get(resource_name)
        .cloned()
        .unwrap_or_default();
    let find = |name: &str| {
        topic_config::TOPIC_CONFIGS
            .iter()
            .chain(topic_config::BROKER_DYNAMIC_CONFIGS)
            .find(|d| !d.broker_synonym.is_empty() && d.broker_synonym == name)
    };
    let next = apply_config_ops(&current, ops, find, |name| {
        format!("Cannot update these configs dynamically: {name}")
    })?;
    Ok(diff_configs(
        ConfigResource::Broker,
        resource_name,
        &current,
        &next,
    ))
}

/// Records that replace a topic's overrides with exactly `configs` (AlterConfigs).
pub fn replace_topic_configs(
    image: &MetadataImage,
    topic: &str,
    configs: &[(String, Option<String>)],
) -> Result<Vec<MetadataRecord>, ControllerError> {
    let t = image.topic(topic).ok_or(ControllerError::UnknownTopic)?;
    let mut next = BTreeMap::new();
    for (name, value) in configs {
        let Some(v) = value else { continue };
        topic_config::validate(name, v).map_err(ControllerError::InvalidConfig)?;
        next.insert(name.clone(), v.clone());
    }
    Ok(diff_configs(
        ConfigResource::Topic,
        topic,
        &t.configs,
        &next,
    ))
}

/// Records that grow a topic to `count` partitions (CreatePartitions). Partitions can
/// only be added, never removed.
pub fn create_partitions(
    image: &MetadataImage,
    topic: &str,
    count: i32,
    live_brokers: &[i32],
) -> Result<Vec<MetadataRecord>, ControllerError> {
    let t = image.topic(topic).ok_or(ControllerError::UnknownTopic)?;
    let current = t.partitions.len() as i32;
    if count < current {
        return Err(ControllerError::InvalidPartitions(format!(
            "Topic currently has {current} partitions, which is higher than the requested {count}."
        )));
    }
    if count > MAX_PARTITIONS_PER_TOPIC {
        return Err(ControllerError::InvalidPartitions(format!(
            "Number of partitions {count} is more than this broker allows for a topic ({MAX_PARTITIONS_PER_TOPIC})."
        )));
    }
    if count == current {
        return Err(ControllerError::InvalidPartitions(format!(
            "Topic already has {current} partitions."
        )));
    }
    if live_brokers.is_empty() {
        return Err(ControllerError::InvalidReplicationFactor(
            "No brokers are registered.".into(),
        ));
    }
    let rf = t
        .partitions
        .values()
        .next()
        .map_or(1, |p| p.replicas.len())
        .clamp(1, live_brokers.len());
    Ok((current..count)
        .map(|p| {
            let replicas = crate::placement::replicas_for(live_brokers, p, rf);
            MetadataRecord::PartitionRecord {
                topic_id: t.id,
                partition: p,
                leader: replicas[0],
                isr: replicas.clone(),
                replicas,
                leader_epoch: 0,
                partition_epoch: 0,
                adding_replicas: Vec::new(),
                removing_replicas: Vec::new(),
                eligible_leader_replicas: Vec::new(),
                last_known_elr: Vec::new(),
            }
        })
        .collect())
}

/// Producer ids handed out per metadata commit.
pub const PRODUCER_ID_BLOCK: i64 = 1000;

/// Records that reserve the next block of producer ids; the block starts at the image's
/// `next_producer_id`.
pub fn allocate_producer_ids(
    image: &MetadataImage,
) -> Result<Vec<MetadataRecord>, ControllerError> {
    Ok(vec![MetadataRecord::ProducerIdsRecord {
        next_producer_id: image.next_producer_id + PRODUCER_ID_BLOCK,
    }])
}

/// Records that delete a topic by name.
pub fn delete_topic(
    image: &MetadataImage,
    name: &str,
) -> Result<Vec<MetadataRecord>, ControllerError> {
    let t = image.topic(name).ok_or(ControllerError::UnknownTopic)?;
    Ok(vec![MetadataRecord::RemoveTopicRecord { topic_id: t.id }])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_topic(name: &str, parts: i32) -> NewTopic {
        NewTopic {
            assignments: Vec::new(),
            name: name.into(),
            num_partitions: parts,
            replication_factor: 1,
            configs: BTreeMap::new(),
        }
    }

    #[test]
    fn create_and_delete_topic() {
        let mut image = MetadataImage::empty();
        let recs = create_topic(&image, &new_topic("orders", 3), &[1]).unwrap();
        for r in &recs {
            image.apply(r);
        }
        let t = image.topic("orders").unwrap();
        assert_eq!(t.partitions.len(), 3);
        assert_eq!(
            create_topic(&image, &new_topic("orders", 1), &[1]),
            Err(ControllerError::TopicAlreadyExists("orders".into()))
        );
        assert!(create_topic(&image, &new_topic("ord.ers", 1), &[1]).is_ok());
        assert!(matches!(
            create_topic(&image, &new_topic("ord_ers", 1), &[1]).map(|r| r.len()),
            Ok(2)
        ));
        for r in delete_topic(&image, "orders").unwrap() {
            image.apply(&r);
        }
        assert!(image.topic("orders").is_none());
        assert!(image.topic_names.is_empty());
    }

    #[test]
    fn incremental_config_changes_and_partition_growth() {
        let mut image = MetadataImage::empty();
        for r in create_topic(&image, &new_topic("t", 2), &[1]).unwrap() {
            image.apply(&r);
        }
        let ops = vec![
            (
                "retention.ms".to_string(),
                ConfigOp::Set,
                Some("1000".to_string()),
            ),
            (
                "cleanup.policy".to_string(),
                ConfigOp::Append,
                Some("compact".to_string()),
            ),
        ];
        for r in alter_topic_configs(&image, "t", &ops).unwrap() {
            image.apply(&r);
        }
        let cfg = &image.topic("t").unwrap().configs;
        assert_eq!(cfg["retention.ms"], "1000");
        assert_eq!(cfg["cleanup.policy"], "delete,compact");
        let sub = vec![(
            "cleanup.policy".to_string(),
            ConfigOp::Subtract,
            Some("delete".to_string()),
        )];
        for r in alter_topic_configs(&image, "t", &sub).unwrap() {
            image.apply(&r);
        }
        assert_eq!(
            image.topic("t").unwrap().configs["cleanup.policy"],
            "compact"
        );
        let del = vec![("retention.ms".to_string(), ConfigOp::Delete, None)];
        for r in alter_topic_configs(&image, "t", &del).unwrap() {
            image.apply(&r);
        }
        assert!(!image
            .topic("t")
            .unwrap()
            .configs
            .contains_key("retention.ms"));
        let bad = vec![(
            "retention.ms".to_string(),
            ConfigOp::Append,
            Some("1".to_string()),
        )];
        assert!(matches!(
            alter_topic_configs(&image, "t", &bad),
            Err(ControllerError::InvalidConfig(_))
        ));
        let unknown = vec![("nope".to_string(), ConfigOp::Set, Some("1".to_string()))];
        assert!(matches!(
            alter_topic_configs(&image, "t", &unknown),
            Err(ControllerError::InvalidConfig(_))
        ));
        assert_eq!(
            alter_topic_configs(&image, "x", &[]),
            Err(ControllerError::UnknownTopic)
        );

        for r in create_partitions(&image, "t", 5, &[1]).unwrap() {
            image.apply(&r);
        }
        assert_eq!(image.topic("t").unwrap().partitions.len(), 5);
        assert!(matches!(
            create_partitions(&image, "t", 3, &[1]),
            Err(ControllerError::InvalidPartitions(_))
        ));
        assert!(matches!(
            create_partitions(&image, "t", 5, &[1]),
            Err(ControllerError::InvalidPartitions(_))
        ));
    }

    #[test]
    fn names_colliding_on_dot_and_underscore_are_refused() {
        let mut image = MetadataImage::empty();
        for r in create_topic(&image, &new_topic("a.b", 1), &[1]).unwrap() {
            image.apply(&r);
        }
        assert!(matches!(
            create_topic(&image, &new_topic("a_b", 1), &[1]),
            Err(ControllerError::InvalidTopic(_))
        ));
    }

    #[test]
    fn invalid_requests_are_refused() {
        let image = MetadataImage::empty();
        assert!(matches!(
            create_topic(&image, &new_topic("bad name", 1), &[1]),
            Err(ControllerError::InvalidTopic(_))
        ));
        assert!(matches!(
            create_topic(&image, &new_topic("", 1), &[1]),
            Err(ControllerError::InvalidTopic(_))
        ));
        assert!(matches!(
            create_topic(&image, &new_topic(&"x".repeat(250), 1), &[1]),
            Err(ControllerError::InvalidTopic(_))
        ));
        assert!(matches!(
            create_topic(&image, &new_topic("t", 0), &[1]),
            Err(ControllerError::InvalidPartitions(_))
        ));
        assert!(matches!(
            create_topic(&image, &new_topic("t", 2_000_000_000), &[1]),
            Err(ControllerError::InvalidPartitions(_))
        ));
        let mut rf3 = new_topic("t", 1);
        rf3.replication_factor = 3;
        assert!(matches!(
            create_topic(&image, &rf3, &[1]),
            Err(ControllerError::InvalidReplicationFactor(_))
        ));
        let mut cfg = new_topic("t", 1);
        cfg.configs.insert("retention.ms".into(), "soon".into());
        assert!(matches!(
            create_topic(&image, &cfg, &[1]),
            Err(ControllerError::InvalidConfig(_))
        ));
    }
}
