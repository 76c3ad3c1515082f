//! The `client-metrics` config resource (type 16) for DescribeConfigs and
//! IncrementalAlterConfigs: the handlers of those APIs call in here for that type.
//!
//! Besides a subscription's configs, DescribeConfigs answers two read-only Gregor
//! entries when a request names them (never in a describe-all, so Kafka tools see
//! exactly Kafka's answer): [`STAT_INSTANCES`], the client instances the subscription
//! currently applies to, and [`STAT_PUSHES`], the pushes with metrics those instances
//! made. They make pushed telemetry visible through any Kafka admin client without a
//! new port or API.

use std::sync::Arc;

use gregor_metadata::client_metrics::{INTERVAL_MS, MATCH, METRICS};
use gregor_metadata::controller::ConfigOp;
use gregor_metadata::MetadataImage;
use gregor_protocol::kp::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use gregor_protocol::kp::protocol::StrBytes;
use gregor_protocol::kp::ResponseError;

use crate::broker::Broker;

/// Kafka's `ConfigResource.Type.CLIENT_METRICS`.
pub const RESOURCE_CLIENT_METRICS: i8 = 16;
pub const STAT_INSTANCES: &str = "gregor.telemetry.client.instances";
pub const STAT_PUSHES: &str = "gregor.telemetry.pushes";

/// DescribeConfigs sources and types (Kafka's `ConfigSource` and `ConfigType` ids).
const SOURCE_UNKNOWN: i8 = 0;
const SOURCE_CLIENT_METRICS: i8 = 7;
const TYPE_INT: i8 = 3;
const TYPE_LONG: i8 = 5;
const TYPE_LIST: i8 = 7;

fn doc(name: &str) -> &'static str {
    match name {
        METRICS => "Telemetry metric name prefix list",
        INTERVAL_MS => "Metrics push interval in milliseconds",
        MATCH => "Client match criteria",
        STAT_INSTANCES => "Client instances this subscription applies to (read-only, Gregor)",
        _ => "Pushes with metrics made by those client instances (read-only, Gregor)",
    }
}

fn entry(
    name: &str,
    value: String,
    source: i8,
    version: i16,
    docs: bool,
) -> DescribeConfigsResourceResult {
    let mut e = DescribeConfigsResourceResult::default()
        .with_name(StrBytes::from_string(name.to_string()))
        .with_value(Some(StrBytes::from_string(value)))
        .with_config_source(source)
        .with_read_only(source != SOURCE_CLIENT_METRICS);
    if version >= 3 {
        e.config_type = match name {
            INTERVAL_MS => TYPE_INT,
            METRICS | MATCH => TYPE_LIST,
            _ => TYPE_LONG,
        };
        if docs {
            e.documentation = Some(StrBytes::from_static_str(doc(name)));
        }
    }
    e
}

/// The DescribeConfigs result for one subscription: its configs as set (Kafka lists
/// no defaults for this type), plus the statistics entries when named.
pub fn describe(
    broker: &Broker,
    image: &MetadataImage,
    name: &str,
    keys: Option<&[StrBytes]>,
    version: i16,
    docs: bool,
) -> DescribeConfigsResult {
    let base = DescribeConfigsResult::default()
        .with_resource_type(RESOURCE_CLIENT_METRICS)
        .with_resource_name(StrBytes::from_string(name.to_string()));
    if name.is_empty() {
        return base
            .with_error_code(ResponseError::InvalidRequest.code())
            .with_error_message(Some(StrBytes::from_static_str(
                "Client metrics subscription name must not be empty",
            )));
    }
    let wanted = |k: &str| keys.is_none_or(|ks| ks.iter().any(|x| x.as_str() == k));
    let named = |k: &str| keys.is_some_and(|ks| ks.iter().any(|x| x.as_str() == k));
    let mut configs: Vec<DescribeConfigsResourceResult> = image
        .client_metrics
        .get(name)
        .into_iter()
        .flatten()
        .filter(|(k, _)| wanted(k))
        .map(|(k, v)| entry(k, v.clone(), SOURCE_CLIENT_METRICS, version, docs))
        .collect();
    if named(STAT_INSTANCES) || named(STAT_PUSHES) {
        let (instances, pushes) = broker.telemetry.subscription_stats(name);
        if named(STAT_INSTANCES) {
            configs.push(entry(
                STAT_INSTANCES,
                instances.to_string(),
                SOURCE_UNKNOWN,
                version,
                docs,
            ));
        }
        if named(STAT_PUSHES) {
            configs.push(entry(
                STAT_PUSHES,
                pushes.to_string(),
                SOURCE_UNKNOWN,
                version,
                docs,
            ));
        }
    }
    base.with_configs(configs)
}

/// IncrementalAlterConfigs on one subscription: a metadata commit, so it survives
/// restarts; clients see the change on their next request.
pub async fn alter(
    broker: &Arc<Broker>,
    name: String,
    ops: Vec<(String, ConfigOp, Option<String>)>,
    validate_only: bool,
) -> Result<(), (ResponseError, String)> {
    broker
        .decide(
            validate_only,
            gregor_metadata::ControllerRequest::AlterClientMetrics { name, ops },
        )
        .await
}
