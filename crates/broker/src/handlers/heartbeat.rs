//! Heartbeat (key 12): keeps a member's session alive and tells it when to re-join.
//! Needs READ on the group (else GROUP_AUTHORIZATION_FAILED), as in Kafka.

use std::sync::Arc;

use gregor_protocol::kp::messages::{ApiKey, HeartbeatRequest, HeartbeatResponse};

use gregor_protocol::kp::ResponseError;

use super::{AclOperation, ApiSpec, RequestContext, ResourceType};
use crate::broker::Broker;
use crate::error::group_code;
use crate::group::MemberRef;

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::Heartbeat,
    min: 0,
    max: 4,
};

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: HeartbeatRequest,
) -> HeartbeatResponse {
    if !ctx.allowed(AclOperation::Read, ResourceType::Group, &req.group_id) {
        return HeartbeatResponse::default()
            .with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    let member = MemberRef {
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.map(|s| s.to_string()),
    };
    let r = broker
        .groups
        .heartbeat(&req.group_id, member, req.generation_id)
        .await;
    HeartbeatResponse::default().with_error_code(group_code(r.err().as_ref()))
}
