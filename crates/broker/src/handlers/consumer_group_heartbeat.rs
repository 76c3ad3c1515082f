//! ConsumerGroupHeartbeat (key 68, KIP-848): join, stay in, and leave a consumer group
//! whose assignment the coordinator computes. v1 lets the client choose its member id.
//!
//! Authorization is Kafka's: READ on the group (else GROUP_AUTHORIZATION_FAILED), and
//! DESCRIBE on every subscribed topic named (else TOPIC_AUTHORIZATION_FAILED for the
//! request, the member left as it was).

use std::collections::HashMap;
use std::sync::Arc;

use gregor_protocol::kp::messages::consumer_group_heartbeat_response::{
    Assignment, TopicPartitions,
};
use gregor_protocol::kp::messages::{
    ApiKey, ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse,
};
use gregor_protocol::kp::protocol::StrBytes;

use gregor_protocol::kp::ResponseError;

use super::{AclOperation, ApiSpec, RequestContext, ResourceType};
use crate::broker::Broker;
use crate::error::group_code;
use crate::group::consumer::ConsumerHeartbeat;

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::ConsumerGroupHeartbeat,
    min: 0,
    max: 1,
};

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: ConsumerGroupHeartbeatRequest,
) -> ConsumerGroupHeartbeatResponse {
    if !ctx.allowed(AclOperation::Read, ResourceType::Group, &req.group_id) {
        return ConsumerGroupHeartbeatResponse::default()
            .with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    let hidden = req.subscribed_topic_names.as_ref().is_some_and(|names| {
        names
            .iter()
            .any(|t| !ctx.allowed(AclOperation::Describe, ResourceType::Topic, t))
    });
    if hidden {
        return ConsumerGroupHeartbeatResponse::default()
            .with_error_code(ResponseError::TopicAuthorizationFailed.code())
            .with_error_message(Some(StrBytes::from_static_str(
                "The group has subscribed topics that are not authorized.",
            )));
    }
    // A share group's id is not a consumer group's (Kafka: GROUP_ID_NOT_FOUND).
    if broker.shares.is_share_group(&req.group_id) {
        return ConsumerGroupHeartbeatResponse::default()
            .with_error_code(ResponseError::GroupIdNotFound.code())
            .with_error_message(Some(StrBytes::from_string(format!(
                "Group {} is not a consumer group.",
                &*req.group_id
            ))));
    }
    let image = broker.metadata.image();
    let topics: HashMap<String, (uuid::Uuid, i32)> = image
        .topics
        .iter()
        .map(|(name, t)| (name.clone(), (t.id, t.partitions.len() as i32)))
        .collect();
    let h = ConsumerHeartbeat {
        member_id: req.member_id.to_string(),
        member_epoch: req.member_epoch,
        instance_id: req.instance_id.map(|s| s.to_string()),
        rack_id: req.rack_id.map(|s| s.to_string()),
        rebalance_timeout_ms: req.rebalance_timeout_ms,
        subscribed_topic_names: req
            .subscribed_topic_names
            .map(|ts| ts.into_iter().map(|t| t.to_string()).collect()),
        // librdkafka sends "" rather than null when it subscribes by name.
        subscribed_topic_regex: req
            .subscribed_topic_regex
            .filter(|s| !s.is_empty())
            .map(|s| s.to_string()),
        server_assignor: req.server_assignor.map(|s| s.to_string()),
        owned: req.topic_partitions.map(|tps| {
            tps.into_iter()
                .map(|tp| (tp.topic_id, tp.partitions.into_iter().collect()))
                .collect()
        }),
        client_id: ctx.client_id(),
        client_host: ctx.client_host.to_string(),
        topics: Arc::new(topics),
        timeouts: Some(crate::group_config::consumer_timeouts(
            broker,
            &req.group_id,
        )),
    };
    let r = broker.groups.consumer_heartbeat(&req.group_id, h).await;
    ConsumerGroupHeartbeatResponse::default()
        .with_error_code(group_code(r.error.as_ref()))
        .with_error_message(r.error_message.map(StrBytes::from_string))
        .with_member_id(Some(StrBytes::from_string(r.member_id)))
        .with_member_epoch(r.member_epoch)
        .with_heartbeat_interval_ms(r.heartbeat_interval_ms)
        .with_assignment(r.assignment.map(|a| {
            Assignment::default().with_topic_partitions(
                a.into_iter()
                    .map(|(id, ps)| {
                        TopicPartitions::default()
                            .with_topic_id(id)
                            .with_partitions(ps.into_iter().collect())
                    })
                    .collect(),
            )
        }))
}
