//! AlterShareGroupOffsets (key 91, KIP-932): moves share-partitions' start offsets
//! while the share group has no members; what was in flight there is forgotten.
//!
//! Authorization is Kafka's: READ on the group (else GROUP_AUTHORIZATION_FAILED for
//! the request), READ on each topic (else TOPIC_AUTHORIZATION_FAILED for its
//! partitions, which are left alone).

use std::sync::Arc;

use gregor_protocol::kp::messages::alter_share_group_offsets_response::{
    AlterShareGroupOffsetsResponsePartition as RPartition,
    AlterShareGroupOffsetsResponseTopic as RTopic,
};
use gregor_protocol::kp::messages::{
    AlterShareGroupOffsetsRequest, AlterShareGroupOffsetsResponse, ApiKey,
};
use gregor_protocol::kp::ResponseError;

use super::{AclOperation, ApiSpec, RequestContext, ResourceType};
use crate::broker::Broker;
use crate::error::{share_error_code, share_failure};

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::AlterShareGroupOffsets,
    min: 0,
    max: 0,
};

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: AlterShareGroupOffsetsRequest,
) -> AlterShareGroupOffsetsResponse {
    if !ctx.allowed(AclOperation::Read, ResourceType::Group, &req.group_id) {
        return AlterShareGroupOffsetsResponse::default()
            .with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    let group = req.group_id.to_string();
    if !broker.shares.is_share_group(&group)
        && matches!(broker.groups.describe(&group).await, Ok(Some(_)))
    {
        let (c, m) = share_failure(&crate::share::ShareError::NotShareGroup(group));
        return AlterShareGroupOffsetsResponse::default()
            .with_error_code(c)
            .with_error_message(m);
    }
    let image = broker.metadata.image();
    let mut moves = Vec::new();
    let mut topics = Vec::new();
    for t in &req.topics {
        let topic = image.topic(&t.topic_name);
        let err = if !ctx.allowed(AclOperation::Read, ResourceType::Topic, &t.topic_name) {
            Some(ResponseError::TopicAuthorizationFailed)
        } else if topic.is_none() {
            Some(ResponseError::UnknownTopicOrPartition)
        } else {
            None
        };
        let id = topic.map(|x| x.id).unwrap_or_default();
        let mut parts = Vec::new();
        for p in &t.partitions {
            let known = topic.is_some_and(|x| x.partitions.contains_key(&p.partition_index));
            let e = err.or((!known).then_some(ResponseError::UnknownTopicOrPartition));
            if e.is_none() {
                moves.push((id, p.partition_index, p.start_offset));
            }
            parts.push(
                RPartition::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(e.map_or(0, |e| e.code())),
            );
        }
        topics.push(
            RTopic::default()
                .with_topic_name(t.topic_name.clone())
                .with_topic_id(id)
                .with_partitions(parts),
        );
    }
    match broker.shares.alter_offsets(&group, &moves).await {
        Ok(()) => AlterShareGroupOffsetsResponse::default().with_responses(topics),
        Err(e) => {
            let code = share_error_code(&e).code();
            for t in &mut topics {
                for p in &mut t.partitions {
                    if p.error_code == 0 {
                        p.error_code = code;
                    }
                }
            }
            let (c, m) = share_failure(&e);
            AlterShareGroupOffsetsResponse::default()
                .with_error_code(c)
                .with_error_message(m)
                .with_responses(topics)
        }
    }
}
