//! OffsetDelete (key 47, KIP-496): deletes a group's committed offsets for partitions
//! the group is not consuming.
//!
//! Authorization is Kafka's: DELETE on the group (else GROUP_AUTHORIZATION_FAILED for
//! the request), then READ on each topic (else TOPIC_AUTHORIZATION_FAILED for its
//! partitions, before the topic's existence is looked at).

use std::sync::Arc;

use gregor_protocol::kp::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use gregor_protocol::kp::messages::{ApiKey, OffsetDeleteRequest, OffsetDeleteResponse};

use gregor_protocol::kp::ResponseError;

use super::{AclOperation, ApiSpec, RequestContext, ResourceType};
use crate::broker::Broker;
use crate::error::group_code;
use crate::group::GroupError;

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::OffsetDelete,
    min: 0,
    max: 0,
};

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: OffsetDeleteRequest,
) -> OffsetDeleteResponse {
    if !ctx.allowed(AclOperation::Delete, ResourceType::Group, &req.group_id) {
        return OffsetDeleteResponse::default()
            .with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    let readable: Vec<bool> = req
        .topics
        .iter()
        .map(|t| ctx.allowed(AclOperation::Read, ResourceType::Topic, &t.name))
        .collect();
    let mut early: Vec<Option<GroupError>> = Vec::new();
    let mut wanted: Vec<(String, Vec<i32>)> = Vec::new();
    for (t, _) in req.topics.iter().zip(&readable).filter(|(_, r)| **r) {
        let mut ps = Vec::new();
        for p in &t.partitions {
            if broker
                .replicas
                .partition(&t.name, p.partition_index)
                .is_none()
            {
                early.push(Some(GroupError::UnknownTopicOrPartition));
            } else {
                early.push(None);
                ps.push(p.partition_index);
            }
        }
        wanted.push((t.name.to_string(), ps));
    }
    let outcome = broker.groups.delete_offsets(&req.group_id, wanted).await;
    // A group-level failure is the response's own error code (not per partition).
    if let Err(e) = &outcome {
        return OffsetDeleteResponse::default().with_error_code(group_code(Some(e)));
    }
    let mut errors = crate::group::merge_partition_results(early, outcome).into_iter();
    let topics = req
        .topics
        .into_iter()
        .zip(readable)
        .map(|(t, readable)| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let code = if readable {
                        group_code(errors.next().flatten().as_ref())
                    } else {
                        ResponseError::TopicAuthorizationFailed.code()
                    };
                    OffsetDeleteResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                })
                .collect();
            OffsetDeleteResponseTopic::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    OffsetDeleteResponse::default().with_topics(topics)
}
