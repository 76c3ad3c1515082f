//! LeaveGroup (key 13): members leave at once instead of waiting for their sessions to
//! expire. v3+ takes a batch of members (KIP-345), each with its own result.
//!
//! Needs READ on the group (else GROUP_AUTHORIZATION_FAILED for the request), as in
//! Kafka.

use std::sync::Arc;

use gregor_protocol::kp::messages::leave_group_response::MemberResponse;
use gregor_protocol::kp::messages::{ApiKey, LeaveGroupRequest, LeaveGroupResponse};

use gregor_protocol::kp::ResponseError;

use super::{AclOperation, ApiSpec, RequestContext, ResourceType};
use crate::broker::Broker;
use crate::error::group_code;
use crate::group::MemberRef;

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::LeaveGroup,
    min: 0,
    max: 5,
};

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: LeaveGroupRequest,
) -> LeaveGroupResponse {
    if !ctx.allowed(AclOperation::Read, ResourceType::Group, &req.group_id) {
        return LeaveGroupResponse::default()
            .with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    let batched = ctx.version() >= 3;
    let members: Vec<MemberRef> = if batched {
        req.members
            .iter()
            .map(|m| MemberRef {
                member_id: m.member_id.to_string(),
                group_instance_id: m.group_instance_id.as_ref().map(|s| s.to_string()),
            })
            .collect()
    } else {
        vec![MemberRef {
            member_id: req.member_id.to_string(),
            group_instance_id: None,
        }]
    };
    match broker.groups.leave(&req.group_id, members).await {
        Err(e) => LeaveGroupResponse::default().with_error_code(group_code(Some(&e))),
        Ok(results) if !batched => LeaveGroupResponse::default()
            .with_error_code(group_code(results.first().and_then(|r| r.as_ref().err()))),
        Ok(results) => LeaveGroupResponse::default().with_members(
            req.members
                .into_iter()
                .zip(results)
                .map(|(m, r)| {
                    MemberResponse::default()
                        .with_member_id(m.member_id)
                        .with_group_instance_id(m.group_instance_id)
                        .with_error_code(group_code(r.err().as_ref()))
                })
                .collect(),
        ),
    }
}
