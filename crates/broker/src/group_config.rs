//! The GROUP config resource (type 32) for DescribeConfigs and IncrementalAlterConfigs:
//! a group's own `consumer.*` and `share.*` settings over the broker's defaults, as
//! Kafka's `GroupConfig`. The handlers of those APIs call in here for that type.
//!
//! The controller checks names, types and lower bounds (`gregor_metadata::group_config`);
//! the ranges set by this broker's `group.*.min.*`/`group.*.max.*` settings are checked
//! here before the change goes to the controller, as Kafka's broker does.

use std::collections::BTreeMap;
use std::sync::Arc;

use gregor_metadata::controller::ConfigOp;
use gregor_metadata::group_config::{self as gc, Kind, GROUP_CONFIGS};
use gregor_metadata::MetadataImage;
use gregor_protocol::kp::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use gregor_protocol::kp::protocol::StrBytes;
use gregor_protocol::kp::ResponseError;

use crate::broker::Broker;

/// Kafka's `ConfigResource.Type.GROUP`.
pub const RESOURCE_GROUP: i8 = 32;

/// DescribeConfigs sources and types (Kafka's `ConfigSource` and `ConfigType` ids).
const SOURCE_DEFAULT: i8 = 5;
const SOURCE_GROUP: i8 = 8;
const TYPE_STRING: i8 = 2;
const TYPE_INT: i8 = 3;

fn doc(name: &str) -> &'static str {
    match name {
        gc::CONSUMER_SESSION_TIMEOUT_MS => {
            "The timeout to detect client failures when using the consumer group protocol."
        }
        gc::CONSUMER_HEARTBEAT_INTERVAL_MS => {
            "The heartbeat interval given to the members of a consumer group."
        }
        gc::SHARE_SESSION_TIMEOUT_MS => {
            "The timeout to detect client failures when using the share group protocol."
        }
        gc::SHARE_HEARTBEAT_INTERVAL_MS => {
            "The heartbeat interval given to the members of a share group."
        }
        gc::SHARE_RECORD_LOCK_DURATION_MS => {
            "The record acquisition lock duration in milliseconds for share groups."
        }
        gc::SHARE_AUTO_OFFSET_RESET => {
            "The strategy to initialize the share-partition start offset."
        }
        _ => "Controls how to read records written transactionally by a share group.",
    }
}

/// The DescribeConfigs result for one group: every group config, its own value where
/// it has one (source GROUP_CONFIG), else the broker's (DEFAULT_CONFIG).
pub fn describe(
    broker: &Broker,
    image: &MetadataImage,
    group: &str,
    keys: Option<&[StrBytes]>,
    version: i16,
    docs: bool,
) -> DescribeConfigsResult {
    let base = DescribeConfigsResult::default()
        .with_error_message(None)
        .with_resource_type(RESOURCE_GROUP)
        .with_resource_name(StrBytes::from_string(group.to_string()));
    if group.is_empty() {
        return base
            .with_error_code(ResponseError::InvalidRequest.code())
            .with_error_message(Some(StrBytes::from_static_str(
                "Group name must not be empty",
            )));
    }
    let own = image.group_configs.get(group);
    let wanted = |k: &str| keys.is_none_or(|ks| ks.iter().any(|x| x.as_str() == k));
    let configs = GROUP_CONFIGS
        .iter()
        .filter(|(name, _, _)| wanted(name))
        .map(|(name, kind, broker_name)| {
            let (value, source) = match own.and_then(|m| m.get(*name)) {
                Some(v) => (v.clone(), SOURCE_GROUP),
                None => (
                    broker
                        .config
                        .get(broker_name)
                        .unwrap_or_default()
                        .to_string(),
                    SOURCE_DEFAULT,
                ),
            };
            let mut e = DescribeConfigsResourceResult::default()
                .with_documentation(None)
                .with_name(StrBytes::from_static_str(name))
                .with_value(Some(StrBytes::from_string(value)))
                .with_config_source(source)
                .with_read_only(false);
            if version >= 3 {
                e.config_type = match kind {
                    Kind::Int(_) => TYPE_INT,
                    Kind::OneOf(_) => TYPE_STRING,
                };
                if docs {
                    e.documentation = Some(StrBytes::from_static_str(doc(name)));
                }
            }
            e
        })
        .collect();
    base.with_configs(configs)
}

/// A broker setting as a number (the built-in defaults always parse).
fn setting(broker: &Broker, name: &str) -> i64 {
    broker
        .config
        .get(name)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_default()
}

/// Kafka's range checks of a group's resulting configs against this broker's bounds.
fn check_ranges(broker: &Broker, next: &BTreeMap<String, String>) -> Result<(), String> {
    let value = |name: &str, broker_name: &str| -> i64 {
        next.get(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| setting(broker, broker_name))
    };
    let bounded: [(&str, &str, &str, &str); 5] = [
        (
            gc::CONSUMER_SESSION_TIMEOUT_MS,
            "group.consumer.session.timeout.ms",
            "group.consumer.min.session.timeout.ms",
            "group.consumer.max.session.timeout.ms",
        ),
        (
            gc::CONSUMER_HEARTBEAT_INTERVAL_MS,
            "group.consumer.heartbeat.interval.ms",
            "group.consumer.min.heartbeat.interval.ms",
            "group.consumer.max.heartbeat.interval.ms",
        ),
        (
            gc::SHARE_SESSION_TIMEOUT_MS,
            "group.share.session.timeout.ms",
            "group.share.min.session.timeout.ms",
            "group.share.max.session.timeout.ms",
        ),
        (
            gc::SHARE_HEARTBEAT_INTERVAL_MS,
            "group.share.heartbeat.interval.ms",
            "group.share.min.heartbeat.interval.ms",
            "group.share.max.heartbeat.interval.ms",
        ),
        (
            gc::SHARE_RECORD_LOCK_DURATION_MS,
            "group.share.record.lock.duration.ms",
            "group.share.min.record.lock.duration.ms",
            "group.share.max.record.lock.duration.ms",
        ),
    ];
    for (name, default, min, max) in bounded {
        // Only what the group sets is checked: the broker's own values are its business.
        if !next.contains_key(name) {
            continue;
        }
        let v = value(name, default);
        if v < setting(broker, min) {
            return Err(format!("{name} must be greater than or equal to {min}"));
        }
        if v > setting(broker, max) {
            return Err(format!("{name} must be less than or equal to {max}"));
        }
    }
    for (session, heartbeat, sd, hd) in [
        (
            gc::CONSUMER_SESSION_TIMEOUT_MS,
            gc::CONSUMER_HEARTBEAT_INTERVAL_MS,
            "group.consumer.session.timeout.ms",
            "group.consumer.heartbeat.interval.ms",
        ),
        (
            gc::SHARE_SESSION_TIMEOUT_MS,
            gc::SHARE_HEARTBEAT_INTERVAL_MS,
            "group.share.session.timeout.ms",
            "group.share.heartbeat.interval.ms",
        ),
    ] {
        if (next.contains_key(session) || next.contains_key(heartbeat))
            && value(session, sd) <= value(heartbeat, hd)
        {
            return Err(format!("{session} must be greater than {heartbeat}"));
        }
    }
    Ok(())
}

/// IncrementalAlterConfigs on one group: a metadata commit, so every broker applies it
/// at once (members see new timeouts on their next heartbeat) and it survives restarts.
pub async fn alter(
    broker: &Arc<Broker>,
    group: String,
    ops: Vec<(String, ConfigOp, Option<String>)>,
    validate_only: bool,
) -> Result<(), (ResponseError, String)> {
    let current = broker
        .metadata
        .image()
        .group_configs
        .get(&group)
        .cloned()
        .unwrap_or_default();
    let next =
        gc::apply_ops(&current, &ops).map_err(|e| (ResponseError::InvalidConfig, e.to_string()))?;
    check_ranges(broker, &next).map_err(|m| (ResponseError::InvalidConfig, m))?;
    broker
        .decide(
            validate_only,
            gregor_metadata::ControllerRequest::AlterGroupConfigs { group, ops },
        )
        .await
}

/// The consumer group (KIP-848) session timeout and heartbeat interval for `group`, in
/// ms: its own configs over the broker's.
pub fn consumer_timeouts(broker: &Broker, group: &str) -> (i32, i32) {
    let image = broker.metadata.image();
    let own = image.group_configs.get(group);
    let get = |name: &str, default: i32| {
        own.and_then(|m| m.get(name))
            .and_then(|v| v.parse::<i32>().ok())
            .filter(|n| *n > 0)
            .unwrap_or(default)
    };
    (
        get(
            gc::CONSUMER_SESSION_TIMEOUT_MS,
            broker.config.group.consumer_session_timeout_ms,
        ),
        get(
            gc::CONSUMER_HEARTBEAT_INTERVAL_MS,
            broker.config.group.consumer_heartbeat_interval_ms,
        ),
    )
}
