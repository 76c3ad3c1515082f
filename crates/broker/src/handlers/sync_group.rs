//! SyncGroup (key 14): the leader hands in the assignment; every member gets its own.
//! Followers wait (parked in the group's task) until the leader's assignment is stored.
//!
//! Needs READ on the group (else GROUP_AUTHORIZATION_FAILED), as in Kafka.

use std::sync::Arc;

use gregor_protocol::kp::messages::{ApiKey, SyncGroupRequest, SyncGroupResponse};
use gregor_protocol::kp::protocol::StrBytes;

use gregor_protocol::kp::ResponseError;

use super::{AclOperation, ApiSpec, RequestContext, ResourceType};
use crate::broker::Broker;
use crate::error::group_code;
use crate::group::SyncRequest;

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::SyncGroup,
    min: 0,
    max: 5,
};

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: SyncGroupRequest,
) -> SyncGroupResponse {
    if !ctx.allowed(AclOperation::Read, ResourceType::Group, &req.group_id) {
        return SyncGroupResponse::default()
            .with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    let sync = SyncRequest {
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.map(|s| s.to_string()),
        generation_id: req.generation_id,
        protocol_type: req.protocol_type.map(|s| s.to_string()),
        protocol_name: req.protocol_name.map(|s| s.to_string()),
        assignments: req
            .assignments
            .into_iter()
            .map(|a| (a.member_id.to_string(), a.assignment))
            .collect(),
    };
    let r = broker.groups.sync(&req.group_id, sync).await;
    let mut resp = SyncGroupResponse::default()
        .with_error_code(group_code(r.error.as_ref()))
        .with_assignment(r.assignment);
    if ctx.version() >= 5 {
        resp.protocol_type = r.protocol_type.map(StrBytes::from_string);
        resp.protocol_name = r.protocol_name.map(StrBytes::from_string);
    }
    resp
}
