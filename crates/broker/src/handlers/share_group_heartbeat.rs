//! ShareGroupHeartbeat (key 76, KIP-932): join, stay in, and leave a share group; the
//! answer carries the member's epoch and, when it changed, its partitions.
//!
//! Authorization is Kafka's: READ on the group (else GROUP_AUTHORIZATION_FAILED), and
//! DESCRIBE on every subscribed topic named (else TOPIC_AUTHORIZATION_FAILED). A group
//! id that names a consumer or classic group is GROUP_ID_NOT_FOUND.

use std::sync::Arc;

use gregor_protocol::kp::messages::share_group_heartbeat_response::{Assignment, TopicPartitions};
use gregor_protocol::kp::messages::{
    ApiKey, ShareGroupHeartbeatRequest, ShareGroupHeartbeatResponse,
};
use gregor_protocol::kp::protocol::StrBytes;
use gregor_protocol::kp::ResponseError;

use super::{AclOperation, ApiSpec, RequestContext, ResourceType};
use crate::broker::Broker;
use crate::error::share_failure;
use crate::share::group::Heartbeat;
use crate::share::ShareError;

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::ShareGroupHeartbeat,
    min: 1,
    max: 1,
};

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: ShareGroupHeartbeatRequest,
) -> ShareGroupHeartbeatResponse {
    let cfg = broker.shares.group_config(&req.group_id);
    let interval = cfg.heartbeat_interval_ms;
    let fail = |e: &ShareError| {
        let (code, msg) = share_failure(e);
        ShareGroupHeartbeatResponse::default()
            .with_error_code(code)
            .with_error_message(msg)
            .with_heartbeat_interval_ms(interval)
    };
    if !ctx.allowed(AclOperation::Read, ResourceType::Group, &req.group_id) {
        return ShareGroupHeartbeatResponse::default()
            .with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    let hidden = req.subscribed_topic_names.as_ref().is_some_and(|names| {
        names
            .iter()
            .any(|t| !ctx.allowed(AclOperation::Describe, ResourceType::Topic, t))
    });
    if hidden {
        return ShareGroupHeartbeatResponse::default()
            .with_error_code(ResponseError::TopicAuthorizationFailed.code())
            .with_error_message(Some(StrBytes::from_static_str(
                "The group has subscribed topics that are not authorized.",
            )));
    }
    let group = req.group_id.to_string();
    if !broker.shares.is_share_group(&group)
        && matches!(broker.groups.describe(&group).await, Ok(Some(_)))
    {
        return fail(&ShareError::NotShareGroup(group));
    }
    let h = Heartbeat {
        member_id: req.member_id.to_string(),
        member_epoch: req.member_epoch,
        rack_id: req.rack_id.map(|s| s.to_string()),
        subscribed: req
            .subscribed_topic_names
            .map(|ts| ts.into_iter().map(|t| t.to_string()).collect()),
        client_id: ctx.client_id(),
        client_host: ctx.client_host.to_string(),
    };
    let topics = crate::share::topic_info(&broker.host);
    match broker.shares.heartbeat(&group, h, &topics, &cfg) {
        Err(e) => fail(&e),
        Ok(r) => ShareGroupHeartbeatResponse::default()
            .with_member_id(Some(StrBytes::from_string(r.member_id)))
            .with_member_epoch(r.member_epoch)
            .with_heartbeat_interval_ms(interval)
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
            })),
    }
}
