//! Metadata (key 3): brokers, the controller, and topics with their partitions. v13 adds
//! a top-level error code (KIP-1102, for REBOOTSTRAP_REQUIRED), always 0 here.
//!
//! Unknown topics are created here when `auto.create.topics.enable` and the request
//! allow it. Unlike Kafka, which answers LEADER_NOT_AVAILABLE and lets the client retry,
//! the single-node controller commits synchronously, so the first answer is complete.
//!
//! Authorization is Kafka's: DESCRIBE per topic. Listing all topics leaves out those the
//! principal may not describe; a named one is TOPIC_AUTHORIZATION_FAILED before its
//! existence is looked at (so a hidden topic's existence does not leak); auto-creation
//! needs CREATE on the cluster or on the topic.

use std::sync::Arc;

use gregor_metadata::controller::{self, NewTopic, INTERNAL_TOPICS};
use gregor_metadata::{MetadataImage, TopicImage};
use gregor_protocol::kp::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use gregor_protocol::kp::messages::{
    ApiKey, BrokerId, MetadataRequest, MetadataResponse, TopicName,
};
use gregor_protocol::kp::protocol::StrBytes;
use gregor_protocol::kp::ResponseError;
use uuid::Uuid;

use super::{AclOperation, ApiSpec, RequestContext, ResourceType};
use crate::broker::Broker;
use crate::error::controller_error_code;

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::Metadata,
    min: 0,
    max: 13,
};

/// The operations Kafka reports for each resource type in an authorized-operations
/// bitfield (its `AclEntry.supportedOperations`).
fn supported_operations(resource: ResourceType) -> &'static [AclOperation] {
    use AclOperation as O;
    match resource {
        ResourceType::Topic => &[
            O::Read,
            O::Write,
            O::Create,
            O::Describe,
            O::Delete,
            O::Alter,
            O::DescribeConfigs,
            O::AlterConfigs,
        ],
        ResourceType::Group => &[O::Read, O::Describe, O::Delete],
        ResourceType::Cluster => &[
            O::Create,
            O::ClusterAction,
            O::DescribeConfigs,
            O::AlterConfigs,
            O::IdempotentWrite,
            O::Alter,
            O::Describe,
        ],
        ResourceType::TransactionalId => &[O::Describe, O::Write, O::TwoPhaseCommit],
        _ => &[],
    }
}

/// KIP-430: the operations the request's principal may do on a resource, as a bitfield
/// of `1 << operation code` (Kafka's `AuthHelper.authorizedOperations`).
pub(crate) fn authorized_operations(
    ctx: &RequestContext,
    resource: ResourceType,
    name: &str,
) -> i32 {
    supported_operations(resource)
        .iter()
        .filter(|&&op| ctx.allowed(op, resource, name))
        .fold(0, |bits, &op| bits | (1 << op.code()))
}

/// What is not requested stays Kafka's "unknown" default.
const OPERATIONS_NOT_REQUESTED: i32 = i32::MIN;

/// A topic's entry. A partition whose log is offline here (it failed to open) has no
/// leader and lists this broker among its offline replicas, as Kafka reports a replica
/// on an offline log directory: LEADER_NOT_AVAILABLE, so clients wait instead of sending.
fn topic_entry(broker: &Broker, t: &TopicImage, ops: Option<i32>) -> MetadataResponseTopic {
    let hosted = broker.replicas.topic(&t.name);
    let image = broker.metadata.image();
    let partitions = t
        .partitions
        .iter()
        .map(|(&idx, p)| {
            let mut offline = crate::cluster::offline_replicas(&image, t.id, idx, &p.replicas);
            let me = broker.config.node_id;
            let offline_here = hosted.as_ref().is_some_and(|h| h.offline.contains(&idx));
            if offline_here && !offline.contains(&me) {
                offline.push(me);
            }
            let entry = MetadataResponsePartition::default()
                .with_partition_index(idx)
                .with_leader_id(BrokerId(p.leader))
                .with_leader_epoch(p.leader_epoch)
                .with_replica_nodes(p.replicas.iter().map(|&r| BrokerId(r)).collect())
                .with_isr_nodes(p.isr.iter().map(|&r| BrokerId(r)).collect())
                .with_offline_replicas(offline.iter().map(|&r| BrokerId(r)).collect());
            if p.leader < 0 {
                entry.with_error_code(ResponseError::LeaderNotAvailable.code())
            } else if offline_here && p.leader == me {
                // Led here but offline here (the controller has not moved it yet).
                entry
                    .with_error_code(ResponseError::LeaderNotAvailable.code())
                    .with_leader_id(BrokerId(-1))
            } else {
                entry
            }
        })
        .collect();
    let mut entry = MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(t.name.clone()))))
        .with_topic_id(t.id)
        .with_is_internal(INTERNAL_TOPICS.contains(&t.name.as_str()))
        .with_partitions(partitions);
    if let Some(ops) = ops {
        entry.topic_authorized_operations = ops;
    }
    entry
}

fn error_entry(name: Option<&str>, id: Uuid, code: ResponseError) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_error_code(code.code())
        .with_name(name.map(|n| TopicName(StrBytes::from_string(n.to_string()))))
        .with_topic_id(id)
}

/// A named topic the principal may not describe (or may not auto-create): no id, no
/// partitions.
fn unauthorized_entry(name: &str, internal: bool, ops: Option<i32>) -> MetadataResponseTopic {
    let mut entry = error_entry(
        Some(name),
        Uuid::nil(),
        ResponseError::TopicAuthorizationFailed,
    )
    .with_is_internal(internal);
    if let Some(ops) = ops {
        entry.topic_authorized_operations = ops;
    }
    entry
}

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: MetadataRequest,
) -> MetadataResponse {
    let version = ctx.header.request_api_version;
    // KIP-430 (v8+): each topic's authorized operations, when asked for.
    let include_ops = version >= 8 && req.include_topic_authorized_operations;
    let ops =
        |name: &str| include_ops.then(|| authorized_operations(ctx, ResourceType::Topic, name));
    let describable = |name: &str| ctx.allowed(AclOperation::Describe, ResourceType::Topic, name);
    let mut image: Arc<MetadataImage> = broker.metadata.image();
    // v0: an empty list means all topics; v1+: null means all, empty means none.
    let requested = match req.topics {
        None => None,
        Some(t) if t.is_empty() && version == 0 => None,
        Some(t) => Some(t),
    };
    let topics = match requested {
        // All topics: those the principal may not describe are left out, silently.
        None => image
            .topics
            .values()
            .filter(|t| describable(&t.name))
            .map(|t| topic_entry(broker, t, ops(&t.name)))
            .collect(),
        Some(list) => {
            let allow_create =
                broker.config.auto_create_topics && (version < 4 || req.allow_auto_topic_creation);
            let mut out = Vec::with_capacity(list.len());
            for t in list {
                let Some(name) = t.name.as_ref().map(|n| n.0.to_string()) else {
                    // v10+: lookup by topic id. Ids are not secret: an id the principal
                    // may not describe is TOPIC_AUTHORIZATION_FAILED, without its name.
                    out.push(match image.topic_by_id(&t.topic_id) {
                        Some(found) if !describable(&found.name) => {
                            error_entry(None, t.topic_id, ResponseError::TopicAuthorizationFailed)
                        }
                        Some(found) => topic_entry(broker, found, ops(&found.name)),
                        None => error_entry(None, t.topic_id, ResponseError::UnknownTopicId),
                    });
                    continue;
                };
                // Refused before existence is looked at, so the answer does not tell
                // whether a hidden topic exists.
                if !describable(&name) {
                    out.push(unauthorized_entry(&name, false, ops(&name)));
                    continue;
                }
                if let Some(found) = image.topic(&name) {
                    out.push(topic_entry(broker, found, ops(&name)));
                    continue;
                }
                // Auto-creation needs CREATE on the cluster or on the topic.
                if allow_create
                    && !ctx.allowed_on_cluster(AclOperation::Create)
                    && !ctx.allowed(AclOperation::Create, ResourceType::Topic, &name)
                {
                    let internal = INTERNAL_TOPICS.contains(&name.as_str());
                    out.push(unauthorized_entry(&name, internal, ops(&name)));
                    continue;
                }
                if let Err(e) = controller::validate_topic_name(&name) {
                    out.push(error_entry(
                        Some(&name),
                        Uuid::nil(),
                        controller_error_code(&e),
                    ));
                    continue;
                }
                if !allow_create {
                    out.push(error_entry(
                        Some(&name),
                        Uuid::nil(),
                        ResponseError::UnknownTopicOrPartition,
                    ));
                    continue;
                }
                let new = NewTopic {
                    assignments: Vec::new(),
                    name: name.clone(),
                    num_partitions: broker.config.num_partitions,
                    replication_factor: broker.config.default_replication_factor,
                    configs: Default::default(),
                };
                // A racing request may have created it: that is success.
                let created = broker
                    .commit_metadata(gregor_metadata::ControllerRequest::CreateTopic {
                        topic: new,
                        if_absent: true,
                        cap_replication: false,
                    })
                    .await;
                match created {
                    Ok(img) => {
                        image = img;
                        match image.topic(&name) {
                            Some(found) => out.push(topic_entry(broker, found, ops(&name))),
                            None => out.push(error_entry(
                                Some(&name),
                                Uuid::nil(),
                                ResponseError::LeaderNotAvailable,
                            )),
                        }
                    }
                    Err(e) => {
                        tracing::warn!(topic = %name, error = %e, "auto-creation failed");
                        out.push(error_entry(
                            Some(&name),
                            Uuid::nil(),
                            crate::error::controller_failure_code(&e),
                        ));
                    }
                }
            }
            out
        }
    };
    // v8-v10: the cluster's authorized operations when asked for (0 without DESCRIBE
    // on the cluster); v11+ moved them to DescribeCluster.
    let cluster_ops = if (8..=10).contains(&version) && req.include_cluster_authorized_operations {
        if ctx.allowed_on_cluster(AclOperation::Describe) {
            authorized_operations(ctx, ResourceType::Cluster, super::CLUSTER_RESOURCE)
        } else {
            0
        }
    } else {
        OPERATIONS_NOT_REQUESTED
    };
    let image = broker.metadata.image();
    let brokers = crate::cluster::live_brokers(&image, &ctx.listener)
        .into_iter()
        .map(|b| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(b.id))
                .with_host(StrBytes::from_string(b.host))
                .with_port(b.port)
                .with_rack(b.rack.map(StrBytes::from_string))
        })
        .collect();
    let controller =
        crate::cluster::controller_id_for_clients(&broker.metadata, &image, broker.config.node_id);
    MetadataResponse::default()
        .with_brokers(brokers)
        .with_cluster_id(Some(StrBytes::from_string(broker.cluster_id.clone())))
        .with_controller_id(BrokerId(controller))
        .with_topics(topics)
        .with_cluster_authorized_operations(cluster_ops)
}
