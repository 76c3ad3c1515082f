//! Group configs (KIP-848 / KIP-932): the `GROUP` config resource (type 32), settings
//! of one group that override the broker-wide defaults, as in Kafka's `GroupConfig`.
//!
//! They are ConfigRecords in the metadata log, so every broker (each group's
//! coordinator and every share-partition leader) sees the same values and they survive
//! restarts. Names, types and lower bounds are checked here, on the controller; the
//! ranges that depend on broker settings (`group.consumer.min.session.timeout.ms`, ...)
//! are checked by the broker that receives the request (see the broker's
//! `group_config`). Deleting every config of a group removes its entry. As in Kafka,
//! a group's configs do not depend on the group existing: they can be set before its
//! first member joins.

use std::collections::BTreeMap;

use crate::controller::{ConfigOp, ControllerError};
use crate::image::MetadataImage;
use crate::records::{ConfigResource, MetadataRecord};

pub const CONSUMER_SESSION_TIMEOUT_MS: &str = "consumer.session.timeout.ms";
pub const CONSUMER_HEARTBEAT_INTERVAL_MS: &str = "consumer.heartbeat.interval.ms";
pub const SHARE_SESSION_TIMEOUT_MS: &str = "share.session.timeout.ms";
pub const SHARE_HEARTBEAT_INTERVAL_MS: &str = "share.heartbeat.interval.ms";
pub const SHARE_RECORD_LOCK_DURATION_MS: &str = "share.record.lock.duration.ms";
pub const SHARE_AUTO_OFFSET_RESET: &str = "share.auto.offset.reset";
pub const SHARE_ISOLATION_LEVEL: &str = "share.isolation.level";

/// A group config's type, as DescribeConfigs reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An int with a lower bound.
    Int(i32),
    /// A string from a fixed set.
    OneOf(&'static [&'static str]),
}

/// Every group config: name, type, the broker config that gives its default.
pub const GROUP_CONFIGS: &[(&str, Kind, &str)] = &[
    (
        CONSUMER_SESSION_TIMEOUT_MS,
        Kind::Int(1),
        "group.consumer.session.timeout.ms",
    ),
    (
        CONSUMER_HEARTBEAT_INTERVAL_MS,
        Kind::Int(1),
        "group.consumer.heartbeat.interval.ms",
    ),
    (
        SHARE_SESSION_TIMEOUT_MS,
        Kind::Int(1),
        "group.share.session.timeout.ms",
    ),
    (
        SHARE_HEARTBEAT_INTERVAL_MS,
        Kind::Int(1),
        "group.share.heartbeat.interval.ms",
    ),
    (
        SHARE_RECORD_LOCK_DURATION_MS,
        Kind::Int(1000),
        "group.share.record.lock.duration.ms",
    ),
    (
        SHARE_AUTO_OFFSET_RESET,
        Kind::OneOf(&["latest", "earliest"]),
        "share.auto.offset.reset",
    ),
    (
        SHARE_ISOLATION_LEVEL,
        Kind::OneOf(&["read_uncommitted", "read_committed"]),
        "share.isolation.level",
    ),
];

/// The type of a group config, `None` for a name that is not one.
pub fn kind(name: &str) -> Option<Kind> {
    GROUP_CONFIGS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, k, _)| *k)
}

/// One value checked against its type.
fn check(name: &str, value: &str) -> Result<(), ControllerError> {
    match kind(name) {
        None => Err(ControllerError::InvalidConfig(format!(
            "Unknown group config name: {name}"
        ))),
        Some(Kind::Int(min)) => match value.trim().parse::<i32>() {
            Ok(v) if v >= min => Ok(()),
            Ok(_) => Err(ControllerError::InvalidConfig(format!(
                "Invalid value {value} for configuration {name}: Value must be at least {min}"
            ))),
            Err(_) => Err(ControllerError::InvalidConfig(format!(
                "Invalid value {value} for configuration {name}: Not a number of type INT"
            ))),
        },
        Some(Kind::OneOf(options)) if options.contains(&value.trim()) => Ok(()),
        Some(Kind::OneOf(options)) => Err(ControllerError::InvalidConfig(format!(
            "Invalid value {value} for configuration {name}: String must be one of: {}",
            options.join(", ")
        ))),
    }
}

/// A group's configs after `ops` (SET and DELETE; lists have no group config, so
/// APPEND and SUBTRACT are refused), each value checked.
pub fn apply_ops(
    current: &BTreeMap<String, String>,
    ops: &[(String, ConfigOp, Option<String>)],
) -> Result<BTreeMap<String, String>, ControllerError> {
    let mut next = current.clone();
    for (key, op, value) in ops {
        match op {
            ConfigOp::Set => {
                let v = value.clone().ok_or_else(|| {
                    ControllerError::InvalidConfig(format!("Null value not supported for : {key}"))
                })?;
                check(key, &v)?;
                next.insert(key.clone(), v.trim().to_string());
            }
            ConfigOp::Delete => {
                if kind(key).is_none() {
                    return Err(ControllerError::InvalidConfig(format!(
                        "Unknown group config name: {key}"
                    )));
                }
                next.remove(key);
            }
            ConfigOp::Append | ConfigOp::Subtract => {
                return Err(ControllerError::InvalidConfig(format!(
                    "Config value append/subtract is not allowed for config key: {key}, since it is not a list"
                )));
            }
        }
    }
    Ok(next)
}

/// Records for IncrementalAlterConfigs on one group: the configs that changed.
pub fn alter(
    image: &MetadataImage,
    group: &str,
    ops: &[(String, ConfigOp, Option<String>)],
) -> Result<Vec<MetadataRecord>, ControllerError> {
    if group.is_empty() {
        return Err(ControllerError::InvalidRequest(
            "Group name must not be empty".into(),
        ));
    }
    let current = image.group_configs.get(group).cloned().unwrap_or_default();
    let next = apply_ops(&current, ops)?;
    Ok(crate::records::config_changes(
        ConfigResource::Group,
        group,
        &current,
        &next,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(k: &str, op: ConfigOp, v: Option<&str>) -> (String, ConfigOp, Option<String>) {
        (k.to_string(), op, v.map(str::to_string))
    }

    fn applied(image: &mut MetadataImage, records: Vec<MetadataRecord>) {
        for r in &records {
            image.apply(r);
        }
    }

    #[test]
    fn configs_are_set_changed_and_removed() {
        let mut image = MetadataImage::empty();
        let r = alter(
            &image,
            "g",
            &[
                op(SHARE_AUTO_OFFSET_RESET, ConfigOp::Set, Some("earliest")),
                op(SHARE_RECORD_LOCK_DURATION_MS, ConfigOp::Set, Some(" 15000")),
            ],
        )
        .unwrap();
        applied(&mut image, r);
        assert_eq!(
            image.group_configs["g"][SHARE_AUTO_OFFSET_RESET],
            "earliest"
        );
        assert_eq!(
            image.group_configs["g"][SHARE_RECORD_LOCK_DURATION_MS],
            "15000"
        );
        // Setting the same value again writes nothing.
        let same = [op(SHARE_AUTO_OFFSET_RESET, ConfigOp::Set, Some("earliest"))];
        assert!(alter(&image, "g", &same).unwrap().is_empty());
        let r = alter(
            &image,
            "g",
            &[
                op(SHARE_AUTO_OFFSET_RESET, ConfigOp::Delete, None),
                op(SHARE_RECORD_LOCK_DURATION_MS, ConfigOp::Delete, None),
            ],
        )
        .unwrap();
        applied(&mut image, r);
        assert!(
            !image.group_configs.contains_key("g"),
            "an emptied group is dropped"
        );
    }

    #[test]
    fn bad_names_values_and_operations_are_invalid_config() {
        let image = MetadataImage::empty();
        for ops in [
            vec![op("retention.ms", ConfigOp::Set, Some("1"))],
            vec![op(
                SHARE_RECORD_LOCK_DURATION_MS,
                ConfigOp::Set,
                Some("999"),
            )],
            vec![op(CONSUMER_SESSION_TIMEOUT_MS, ConfigOp::Set, Some("ten"))],
            vec![op(
                SHARE_ISOLATION_LEVEL,
                ConfigOp::Set,
                Some("serializable"),
            )],
            vec![op(
                SHARE_AUTO_OFFSET_RESET,
                ConfigOp::Append,
                Some("latest"),
            )],
            vec![op(SHARE_AUTO_OFFSET_RESET, ConfigOp::Set, None)],
            vec![op("nope", ConfigOp::Delete, None)],
        ] {
            assert!(
                matches!(
                    alter(&image, "g", &ops),
                    Err(ControllerError::InvalidConfig(_))
                ),
                "{ops:?}"
            );
        }
        assert!(matches!(
            alter(&image, "", &[]),
            Err(ControllerError::InvalidRequest(_))
        ));
    }
}
