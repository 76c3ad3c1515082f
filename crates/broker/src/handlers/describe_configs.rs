//! DescribeConfigs (key 32): every topic config with its effective value, source,
//! synonyms (v1+) and type and documentation (v3+); broker configs read-only.

use std::sync::Arc;

use gregor_metadata::topic_config::{self, TOPIC_CONFIGS};
use gregor_protocol::kp::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use gregor_protocol::kp::messages::{ApiKey, DescribeConfigsRequest, DescribeConfigsResponse};
use gregor_protocol::kp::protocol::StrBytes;
use gregor_protocol::kp::ResponseError;

use super::{AclOperation, ApiSpec, RequestContext, ResourceType, CLUSTER_RESOURCE};
use crate::broker::Broker;
use crate::config::BROKER_DEFAULTS;
use crate::topic_settings::ConfigSource;

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::DescribeConfigs,
    min: 1,
    max: 4,
};

/// Kafka's `ConfigResource.Type` codes.
pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;
pub const RESOURCE_BROKER_LOGGER: i8 = 8;
pub use crate::group_config::RESOURCE_GROUP;

/// Kafka's check for a config resource (`DESCRIBE_CONFIGS` to read, `ALTER_CONFIGS` to
/// change): on the cluster for brokers, broker loggers and client-metrics
/// subscriptions, on the topic or the group for those. `None`: allowed, or a type no
/// check applies to (the handler refuses it itself).
pub fn config_refusal(
    ctx: &RequestContext,
    op: AclOperation,
    resource_type: i8,
    name: &str,
) -> Option<ResponseError> {
    let (kind, name, error) = match resource_type {
        RESOURCE_BROKER
        | RESOURCE_BROKER_LOGGER
        | crate::telemetry::admin::RESOURCE_CLIENT_METRICS => (
            ResourceType::Cluster,
            CLUSTER_RESOURCE,
            ResponseError::ClusterAuthorizationFailed,
        ),
        RESOURCE_TOPIC => (
            ResourceType::Topic,
            name,
            ResponseError::TopicAuthorizationFailed,
        ),
        RESOURCE_GROUP => (
            ResourceType::Group,
            name,
            ResponseError::GroupAuthorizationFailed,
        ),
        _ => return None,
    };
    (!ctx.allowed(op, kind, name)).then_some(error)
}

/// The message Kafka gives with an authorization error.
pub fn refusal_message(error: ResponseError) -> StrBytes {
    StrBytes::from_static_str(match error {
        ResponseError::TopicAuthorizationFailed => "Topic authorization failed.",
        ResponseError::GroupAuthorizationFailed => "Group authorization failed.",
        _ => "Cluster authorization failed.",
    })
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn synonym(name: &str, value: &str, source: ConfigSource) -> DescribeConfigsSynonym {
    DescribeConfigsSynonym::default()
        .with_name(s(name))
        .with_value(Some(s(value)))
        .with_source(source.code())
}

/// A broker config's synonyms as Kafka lists them: every layer that sets it, in
/// precedence order (per-broker dynamic, cluster-wide dynamic, static from the
/// properties file, `--override` or a flag, then the built-in default when it has one),
/// so the first is where the value comes from.
fn broker_synonyms(
    defaults: &crate::topic_settings::BrokerDefaults<'_>,
    name: &str,
    default: &str,
) -> Vec<DescribeConfigsSynonym> {
    let layers = [
        (
            defaults.node.and_then(|m| m.get(name)),
            ConfigSource::DynamicBroker,
        ),
        (
            defaults.cluster.and_then(|m| m.get(name)),
            ConfigSource::DynamicDefaultBroker,
        ),
        (
            defaults.config.explicit.get(name),
            ConfigSource::StaticBroker,
        ),
    ];
    let mut out: Vec<DescribeConfigsSynonym> = layers
        .into_iter()
        .filter_map(|(value, source)| value.map(|v| synonym(name, v, source)))
        .collect();
    if !default.is_empty() {
        out.push(synonym(name, default, ConfigSource::Default));
    }
    out
}

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let v = ctx.version();
    let image = broker.metadata.image();
    let defaults = crate::topic_settings::BrokerDefaults::new(&broker.config, &image);
    let mut results = Vec::with_capacity(req.resources.len());
    for r in req.resources {
        let wanted = |name: &str| {
            r.configuration_keys
                .as_ref()
                .is_none_or(|keys| keys.iter().any(|k| k.as_str() == name))
        };
        // Success carries a null message (the generated default is "").
        let base = DescribeConfigsResult::default()
            .with_error_message(None)
            .with_resource_type(r.resource_type)
            .with_resource_name(r.resource_name.clone());
        let refusal = config_refusal(
            ctx,
            AclOperation::DescribeConfigs,
            r.resource_type,
            &r.resource_name,
        );
        if let Some(error) = refusal {
            results.push(
                base.with_error_code(error.code())
                    .with_error_message(Some(refusal_message(error))),
            );
            continue;
        }
        let result = match r.resource_type {
            RESOURCE_TOPIC => match image.topic(&r.resource_name) {
                None => base
                    .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                    .with_error_message(Some(s("The topic does not exist."))),
                Some(t) => {
                    let configs = TOPIC_CONFIGS
                        .iter()
                        .filter(|d| wanted(d.name))
                        .map(|d| {
                            let (value, source) =
                                crate::topic_settings::effective(Some(t), &defaults, d.name)
                                    .unwrap_or_else(|| {
                                        (d.default.to_string(), ConfigSource::Default)
                                    });
                            let mut e = DescribeConfigsResourceResult::default()
                                .with_documentation(None)
                                .with_name(s(d.name))
                                .with_value(Some(s(&value)))
                                .with_config_source(source.code());
                            if req.include_synonyms && d.broker_synonym.is_empty() {
                                let mut syn = Vec::new();
                                if let Some(o) = t.configs.get(d.name) {
                                    syn.push(synonym(d.name, o, ConfigSource::TopicOverride));
                                }
                                e.synonyms = syn;
                            } else if req.include_synonyms {
                                let mut syn = Vec::new();
                                if let Some(o) = t.configs.get(d.name) {
                                    syn.push(synonym(d.name, o, ConfigSource::TopicOverride));
                                }
                                if let Some(b) = defaults.node.and_then(|m| m.get(d.broker_synonym))
                                {
                                    syn.push(synonym(
                                        d.broker_synonym,
                                        b,
                                        ConfigSource::DynamicBroker,
                                    ));
                                }
                                if let Some(b) =
                                    defaults.cluster.and_then(|m| m.get(d.broker_synonym))
                                {
                                    syn.push(synonym(
                                        d.broker_synonym,
                                        b,
                                        ConfigSource::DynamicDefaultBroker,
                                    ));
                                }
                                if let Some(b) = broker.config.explicit.get(d.broker_synonym) {
                                    syn.push(synonym(
                                        d.broker_synonym,
                                        b,
                                        ConfigSource::StaticBroker,
                                    ));
                                }
                                syn.push(synonym(
                                    d.broker_synonym,
                                    d.default,
                                    ConfigSource::Default,
                                ));
                                e.synonyms = syn;
                            }
                            if v >= 3 {
                                e.config_type = d.kind.code();
                                if req.include_documentation {
                                    e.documentation = Some(s(d.doc));
                                }
                            }
                            e
                        })
                        .collect();
                    base.with_configs(configs)
                }
            },
            RESOURCE_BROKER => {
                let me = broker.config.node_id.to_string();
                if !r.resource_name.is_empty() && r.resource_name.as_str() != me {
                    base.with_error_code(ResponseError::InvalidRequest.code())
                        .with_error_message(Some(s("Unexpected broker id.")))
                } else {
                    let configs = BROKER_DEFAULTS
                        .iter()
                        .filter(|(name, _)| wanted(name))
                        .map(|&(name, default)| {
                            let (value, source) =
                                defaults.broker_value(name).unwrap_or_else(|| {
                                    (
                                        broker.config.get(name).unwrap_or_default().to_string(),
                                        ConfigSource::Default,
                                    )
                                });
                            let value = value.as_str();
                            // Topic defaults can change at runtime; the rest are static.
                            let dynamic = topic_config::TOPIC_CONFIGS
                                .iter()
                                .chain(topic_config::BROKER_DYNAMIC_CONFIGS)
                                .any(|d| d.broker_synonym == name);
                            // Documentation is null unless asked for (the generated default is "").
                            let mut e = DescribeConfigsResourceResult::default()
                                .with_documentation(None)
                                .with_name(s(name))
                                .with_value(Some(s(value)))
                                .with_config_source(source.code())
                                .with_read_only(!dynamic);
                            if req.include_synonyms {
                                e.synonyms = broker_synonyms(&defaults, name, default);
                            }
                            // Secrets are described as set or not, never shown (Kafka's
                            // PASSWORD type: a null value, is_sensitive).
                            if crate::config::SENSITIVE.contains(&name) {
                                e.value = None;
                                e.is_sensitive = true;
                                e.synonyms.iter_mut().for_each(|syn| syn.value = None);
                            }
                            if v >= 3 {
                                e.config_type = topic_config::TOPIC_CONFIGS
                                    .iter()
                                    .chain(topic_config::BROKER_DYNAMIC_CONFIGS)
                                    .find(|d| d.broker_synonym == name)
                                    .map_or(2, |d| d.kind.code());
                            }
                            e
                        })
                        .collect();
                    base.with_configs(configs)
                }
            }
            RESOURCE_GROUP => crate::group_config::describe(
                broker,
                &image,
                &r.resource_name,
                r.configuration_keys.as_deref(),
                v,
                req.include_documentation,
            ),
            crate::telemetry::admin::RESOURCE_CLIENT_METRICS => crate::telemetry::admin::describe(
                broker,
                &image,
                &r.resource_name,
                r.configuration_keys.as_deref(),
                v,
                req.include_documentation,
            ),
            other => base
                .with_error_code(ResponseError::InvalidRequest.code())
                .with_error_message(Some(StrBytes::from_string(format!(
                    "Unsupported resource type {other}"
                )))),
        };
        results.push(result);
    }
    DescribeConfigsResponse::default().with_results(results)
}
