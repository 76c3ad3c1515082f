//! Heartbeat (key 12): keeps a member's session alive and tells it when to re-join.

use std::sync::Arc;

use gregor_protocol::kp::messages::{ApiKey, HeartbeatRequest, HeartbeatResponse};

use super::{ApiSpec, RequestContext};
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
    _ctx: &RequestContext,
    req: HeartbeatRequest,
) -> HeartbeatResponse {
    let member = MemberRef {
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.map(|s| s.to_string()),
    };
    let r = broker
        .groups
        .heartbeat(broker, &req.group_id, member, req.generation_id)
        .await;
    HeartbeatResponse::default().with_error_code(group_code(r.err().as_ref()))
}
