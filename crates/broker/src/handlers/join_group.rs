//! JoinGroup (key 11): a member joins or re-joins a classic group. The answer waits
//! until the rebalance completes (every member has re-joined, or the rebalance timeout
//! passed), parked in the group's task rather than polling.
//!
//! Needs READ on the group (else GROUP_AUTHORIZATION_FAILED), as in Kafka.

use std::sync::Arc;

use gregor_protocol::kp::messages::join_group_response::JoinGroupResponseMember;
use gregor_protocol::kp::messages::{ApiKey, JoinGroupRequest, JoinGroupResponse};
use gregor_protocol::kp::protocol::StrBytes;

use gregor_protocol::kp::ResponseError;

use super::{AclOperation, ApiSpec, RequestContext, ResourceType};
use crate::broker::Broker;
use crate::error::group_code;
use crate::group::JoinRequest;

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::JoinGroup,
    min: 0,
    max: 9,
};

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: JoinGroupRequest,
) -> JoinGroupResponse {
    let v = ctx.version();
    if !ctx.allowed(AclOperation::Read, ResourceType::Group, &req.group_id) {
        // Kafka's error answer: no generation, no member id, no protocol.
        let mut resp = JoinGroupResponse::default()
            .with_error_code(ResponseError::GroupAuthorizationFailed.code())
            .with_generation_id(-1);
        resp.protocol_name = (v < 7).then(StrBytes::default);
        return resp;
    }
    // A share group's id is not a classic group's (Kafka: INCONSISTENT_GROUP_PROTOCOL).
    if broker.shares.is_share_group(&req.group_id) {
        let mut resp = JoinGroupResponse::default()
            .with_error_code(ResponseError::InconsistentGroupProtocol.code())
            .with_generation_id(-1)
            .with_member_id(req.member_id.clone());
        resp.protocol_name = (v < 7).then(StrBytes::default);
        return resp;
    }
    let join = JoinRequest {
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.map(|s| s.to_string()),
        session_timeout_ms: req.session_timeout_ms,
        // v0 has no rebalance timeout: Kafka uses the session timeout.
        rebalance_timeout_ms: if v >= 1 {
            req.rebalance_timeout_ms
        } else {
            req.session_timeout_ms
        },
        protocol_type: req.protocol_type.to_string(),
        protocols: req
            .protocols
            .into_iter()
            .map(|p| (p.name.to_string(), p.metadata))
            .collect(),
        client_id: ctx.client_id(),
        client_host: ctx.client_host.to_string(),
        require_known_member_id: v >= 4,
        supports_skip_assignment: v >= 9,
    };
    let r = broker.groups.join(&req.group_id, join).await;
    let str_of = |s: String| StrBytes::from_string(s);
    let mut resp = JoinGroupResponse::default()
        .with_error_code(group_code(r.error.as_ref()))
        .with_generation_id(r.generation_id)
        .with_leader(str_of(r.leader))
        .with_member_id(str_of(r.member_id))
        .with_members(
            r.members
                .into_iter()
                .map(|m| {
                    JoinGroupResponseMember::default()
                        .with_member_id(str_of(m.member_id))
                        .with_group_instance_id(if v >= 5 {
                            m.group_instance_id.map(str_of)
                        } else {
                            None
                        })
                        .with_metadata(m.metadata)
                })
                .collect(),
        );
    // v0-v6 carry a non-nullable protocol name; v7+ a nullable one plus the type.
    resp.protocol_name = match (v >= 7, r.protocol_name) {
        (_, Some(n)) => Some(str_of(n)),
        (true, None) => None,
        (false, None) => Some(StrBytes::default()),
    };
    if v >= 7 {
        resp.protocol_type = r.protocol_type.map(str_of);
    }
    if v >= 9 {
        resp.skip_assignment = r.skip_assignment;
    }
    resp
}
