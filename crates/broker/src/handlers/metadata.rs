//! Metadata (key 3): brokers, the controller, and topics with their partitions. v13 adds
//! a top-level error code (KIP-1102, for REBOOTSTRAP_REQUIRED), always 0 here.
//!
//! Unknown topics are created here when `auto.create.topics.enable` and the request
//! allow it. Unlike Kafka, which answers LEADER_NOT_AVAILABLE and lets the client retry,
//! the single-node controller commits synchronously, so the first answer is complete.

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

use super::{ApiSpec, RequestContext};
use crate::broker::Broker;
use crate::error::controller_error_code;

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::Metadata,
    min: 0,
    max: 13,
};

/// Topic operations reported when authorized operations are requested: READ, WRITE,
/// CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS (no ACLs yet).
const TOPIC_OPERATIONS: i32 =
    (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 10) | (1 << 11);

/// A topic's entry. A partition whose log is offline here (it failed to open) has no
/// leader and lists this broker among its offline replicas, as Kafka reports a replica
/// on an offline log directory: LEADER_NOT_AVAILABLE, so clients wait instead of sending.
fn topic_entry(broker: &Broker, t: &TopicImage, include_ops: bool) -> MetadataResponseTopic {
    let hosted = broker.replicas.topic(&t.name);
    let image = broker.metadata.image();
    let partitions = t
        .partitions
        .iter()
        .map(|(&idx, p)| {
            let offline = crate::cluster::offline_replicas(&image, &p.replicas);
            let entry = MetadataResponsePartition::default()
                .with_partition_index(idx)
                .with_leader_id(BrokerId(p.leader))
                .with_leader_epoch(p.leader_epoch)
                .with_replica_nodes(p.replicas.iter().map(|&r| BrokerId(r)).collect())
                .with_isr_nodes(p.isr.iter().map(|&r| BrokerId(r)).collect())
                .with_offline_replicas(offline.iter().map(|&r| BrokerId(r)).collect());
            if p.leader < 0 {
                entry.with_error_code(ResponseError::LeaderNotAvailable.code())
            } else if hosted.as_ref().is_some_and(|h| h.offline.contains(&idx)) {
                entry
                    .with_error_code(ResponseError::LeaderNotAvailable.code())
                    .with_leader_id(BrokerId(-1))
                    .with_offline_replicas(vec![BrokerId(broker.config.node_id)])
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
    if include_ops {
        entry.topic_authorized_operations = TOPIC_OPERATIONS;
    }
    entry
}

fn error_entry(name: Option<&str>, id: Uuid, code: ResponseError) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_error_code(code.code())
        .with_name(name.map(|n| TopicName(StrBytes::from_string(n.to_string()))))
        .with_topic_id(id)
}

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: MetadataRequest,
) -> MetadataResponse {
    let version = ctx.header.request_api_version;
    let include_ops = req.include_topic_authorized_operations;
    let mut image: Arc<MetadataImage> = broker.metadata.image();
    // v0: an empty list means all topics; v1+: null means all, empty means none.
    let requested = match req.topics {
        None => None,
        Some(t) if t.is_empty() && version == 0 => None,
        Some(t) => Some(t),
    };
    let topics = match requested {
        None => image
            .topics
            .values()
            .map(|t| topic_entry(broker, t, include_ops))
            .collect(),
        Some(list) => {
            let allow_create =
                broker.config.auto_create_topics && (version < 4 || req.allow_auto_topic_creation);
            let mut out = Vec::with_capacity(list.len());
            for t in list {
                let Some(name) = t.name.as_ref().map(|n| n.0.to_string()) else {
                    // v10+: lookup by topic id.
                    out.push(match image.topic_by_id(&t.topic_id) {
                        Some(found) => topic_entry(broker, found, include_ops),
                        None => error_entry(None, t.topic_id, ResponseError::UnknownTopicId),
                    });
                    continue;
                };
                if let Some(found) = image.topic(&name) {
                    out.push(topic_entry(broker, found, include_ops));
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
                            Some(found) => out.push(topic_entry(broker, found, include_ops)),
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
}
