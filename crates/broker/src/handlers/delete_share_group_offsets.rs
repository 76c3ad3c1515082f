//! DeleteShareGroupOffsets (key 92, KIP-932): forgets a share group's state for whole
//! topics while it has no members; its next member starts them afresh
//! (`share.auto.offset.reset`).
//!
//! Authorization is Kafka's: DELETE on the group (else GROUP_AUTHORIZATION_FAILED),
//! READ on each topic (else TOPIC_AUTHORIZATION_FAILED for that topic).

use std::sync::Arc;

use gregor_protocol::kp::messages::delete_share_group_offsets_response::DeleteShareGroupOffsetsResponseTopic as RTopic;
use gregor_protocol::kp::messages::{
    ApiKey, DeleteShareGroupOffsetsRequest, DeleteShareGroupOffsetsResponse,
};
use gregor_protocol::kp::ResponseError;

use super::{AclOperation, ApiSpec, RequestContext, ResourceType};
use crate::broker::Broker;
use crate::error::share_failure;

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::DeleteShareGroupOffsets,
    min: 0,
    max: 0,
};

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: DeleteShareGroupOffsetsRequest,
) -> DeleteShareGroupOffsetsResponse {
    if !ctx.allowed(AclOperation::Delete, ResourceType::Group, &req.group_id) {
        return DeleteShareGroupOffsetsResponse::default()
            .with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    let image = broker.metadata.image();
    let mut ids = Vec::new();
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
        if err.is_none() {
            ids.push(id);
        }
        topics.push(
            RTopic::default()
                .with_topic_name(t.topic_name.clone())
                .with_topic_id(id)
                .with_error_code(err.map_or(0, |e| e.code())),
        );
    }
    let info = crate::share::topic_info(&broker.host);
    match broker
        .shares
        .delete_offsets(&req.group_id, &ids, &info)
        .await
    {
        Ok(()) => DeleteShareGroupOffsetsResponse::default().with_responses(topics),
        Err(e) => {
            let (c, m) = share_failure(&e);
            DeleteShareGroupOffsetsResponse::default()
                .with_error_code(c)
                .with_error_message(m)
        }
    }
}
