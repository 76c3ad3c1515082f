//! CreateTopics (key 19): validated by the controller, committed to the metadata log,
//! then applied (the logs are created) before the response is sent.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use gregor_metadata::controller::{self, NewTopic};
use gregor_protocol::kp::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use gregor_protocol::kp::messages::{ApiKey, CreateTopicsRequest, CreateTopicsResponse};
use gregor_protocol::kp::protocol::StrBytes;
use gregor_protocol::kp::ResponseError;

use super::{AclOperation, ApiSpec, RequestContext, ResourceType};
use crate::broker::Broker;
use crate::error::controller_error_code;
use crate::topic_settings;

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::CreateTopics,
    min: 2,
    max: 7,
};

fn failed(
    name: &gregor_protocol::kp::messages::TopicName,
    code: ResponseError,
    msg: String,
) -> CreatableTopicResult {
    CreatableTopicResult::default()
        .with_name(name.clone())
        .with_error_code(code.code())
        .with_error_message(Some(StrBytes::from_string(msg)))
        .with_num_partitions(-1)
        .with_replication_factor(-1)
        .with_configs(None)
}

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: CreateTopicsRequest,
) -> CreateTopicsResponse {
    let version = ctx.header.request_api_version;
    let mut seen = HashSet::new();
    let duplicates: HashSet<String> = req
        .topics
        .iter()
        .filter(|t| !seen.insert(t.name.0.to_string()))
        .map(|t| t.name.0.to_string())
        .collect();
    let live = broker.live_brokers();
    // Kafka: CREATE on the cluster covers every topic, else CREATE per topic.
    let cluster_create = ctx.allowed_on_cluster(AclOperation::Create);
    let mut results = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let name = t.name.0.to_string();
        if duplicates.contains(&name) {
            results.push(failed(
                &t.name,
                ResponseError::InvalidRequest,
                format!("Create topics request from client contains duplicate topic {name}"),
            ));
            continue;
        }
        if !cluster_create && !ctx.allowed(AclOperation::Create, ResourceType::Topic, &name) {
            results.push(failed(
                &t.name,
                ResponseError::TopicAuthorizationFailed,
                "Authorization failed.".into(),
            ));
            continue;
        }
        // Without DESCRIBE_CONFIGS on the topic the answer hides its configs, partition
        // count and replication factor (topic_config_error_code says why), as Kafka does.
        let describable = ctx.allowed(AclOperation::DescribeConfigs, ResourceType::Topic, &name);
        if !t.assignments.is_empty() {
            let unknown = t
                .assignments
                .iter()
                .flat_map(|a| a.broker_ids.iter())
                .find(|b| !live.contains(&b.0));
            if let Some(b) = unknown {
                results.push(failed(
                    &t.name,
                    ResponseError::InvalidReplicaAssignment,
                    format!("Broker {} is not registered", b.0),
                ));
                continue;
            }
            if t.num_partitions != -1 || t.replication_factor != -1 {
                results.push(failed(
                    &t.name,
                    ResponseError::InvalidRequest,
                    "Both numPartitions or replicationFactor and replicasAssignments were set."
                        .into(),
                ));
                continue;
            }
        }
        let mut configs = BTreeMap::new();
        let mut null_config = None;
        for c in &t.configs {
            match &c.value {
                Some(v) => {
                    configs.insert(c.name.to_string(), v.to_string());
                }
                None => null_config = Some(c.name.to_string()),
            }
        }
        if let Some(n) = null_config {
            results.push(failed(
                &t.name,
                ResponseError::InvalidConfig,
                format!("Null value not supported for topic configs: {n}"),
            ));
            continue;
        }
        let (num_partitions, replication_factor) = if t.assignments.is_empty() {
            (
                if t.num_partitions == -1 {
                    broker.config.num_partitions
                } else {
                    t.num_partitions
                },
                if t.replication_factor == -1 {
                    broker.config.default_replication_factor
                } else {
                    t.replication_factor
                },
            )
        } else {
            (
                t.assignments.len() as i32,
                t.assignments
                    .first()
                    .map_or(1, |a| a.broker_ids.len() as i16),
            )
        };
        let new = NewTopic {
            assignments: {
                let mut manual: Vec<_> = t.assignments.iter().collect();
                manual.sort_by_key(|a| a.partition_index);
                manual
                    .iter()
                    .map(|a| a.broker_ids.iter().map(|b| b.0).collect())
                    .collect()
            },
            name: name.clone(),
            num_partitions,
            replication_factor,
            configs,
        };
        let outcome = if req.validate_only {
            controller::create_topic(&broker.metadata.image(), &new, &live)
                .map(|_| None)
                .map_err(|e| (controller_error_code(&e), e.to_string()))
        } else {
            broker
                .commit_metadata(gregor_metadata::ControllerRequest::CreateTopic {
                    topic: new,
                    if_absent: false,
                    cap_replication: false,
                })
                .await
                .map(Some)
                .map_err(|e| crate::error::controller_failure(&e))
        };
        match outcome {
            Err((code, msg)) => results.push(failed(&t.name, code, msg)),
            Ok(image) => {
                let image = image.unwrap_or_else(|| broker.metadata.image());
                let topic = image.topic(&name);
                // Success carries a null message (the generated default is "").
                let mut r = CreatableTopicResult::default()
                    .with_name(t.name.clone())
                    .with_error_message(None)
                    .with_num_partitions(num_partitions)
                    .with_replication_factor(replication_factor);
                if let Some(created) = topic.filter(|_| !req.validate_only) {
                    r.topic_id = created.id;
                }
                if !describable {
                    r.num_partitions = -1;
                    r.replication_factor = -1;
                    r.configs = None;
                    r.topic_config_error_code = ResponseError::TopicAuthorizationFailed.code();
                } else if version >= 5 {
                    let defaults = topic_settings::BrokerDefaults::new(&broker.config, &image);
                    let entries = topic_settings::all_effective(
                        topic.filter(|_| !req.validate_only),
                        &defaults,
                    )
                    .into_iter()
                    .map(|(k, v, source)| {
                        CreatableTopicConfigs::default()
                            .with_name(StrBytes::from_static_str(k))
                            .with_value(Some(StrBytes::from_string(v)))
                            .with_config_source(source.code())
                    })
                    .collect();
                    r.configs = Some(entries);
                }
                results.push(r);
            }
        }
    }
    CreateTopicsResponse::default().with_topics(results)
}
