//! DescribeGroups (key 15): state, protocol and members of each group. A group that does
//! not exist is reported as Dead with no error, as Kafka does up to v5; from v6 (KIP-1043)
//! it is Dead with GROUP_ID_NOT_FOUND, and so is a KIP-848 consumer group, which this
//! classic API cannot describe (ConsumerGroupDescribe does).
//!
//! Each group needs DESCRIBE (else GROUP_AUTHORIZATION_FAILED for it), as in Kafka;
//! v3+ reports the group's authorized operations when asked (KIP-430).

use std::sync::Arc;

use gregor_protocol::kp::messages::describe_groups_response::{
    DescribedGroup, DescribedGroupMember,
};
use gregor_protocol::kp::messages::{ApiKey, DescribeGroupsRequest, DescribeGroupsResponse};
use gregor_protocol::kp::protocol::StrBytes;
use gregor_protocol::kp::ResponseError;

use super::metadata::authorized_operations;
use super::{AclOperation, ApiSpec, RequestContext, ResourceType};
use crate::broker::Broker;
use crate::error::group_code;

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::DescribeGroups,
    min: 0,
    max: 6,
};

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let v = ctx.version();
    let mut out = Vec::with_capacity(req.groups.len());
    let include_ops = v >= 3 && req.include_authorized_operations;
    for id in req.groups {
        let g = DescribedGroup::default().with_group_id(id.clone());
        if !ctx.allowed(AclOperation::Describe, ResourceType::Group, &id) {
            out.push(
                g.with_error_code(ResponseError::GroupAuthorizationFailed.code())
                    .with_authorized_operations(i32::MIN),
            );
            continue;
        }
        let not_found = |g: DescribedGroup, why: String| {
            g.with_group_state(StrBytes::from_static_str("Dead"))
                .with_error_code(ResponseError::GroupIdNotFound.code())
                .with_error_message(Some(StrBytes::from_string(why)))
        };
        let described = match broker.groups.describe(&id).await {
            Ok(None) if v >= 6 => not_found(g, format!("Group {} not found.", id.0)),
            Ok(Some(d)) if v >= 6 && d.group_type != "Classic" => {
                not_found(g, format!("Group {} is not a classic group.", id.0))
            }
            Err(e) => g
                .with_error_code(group_code(Some(&e)))
                .with_group_state(StrBytes::from_static_str("Dead")),
            Ok(None) => g.with_group_state(StrBytes::from_static_str("Dead")),
            Ok(Some(d)) => g
                .with_group_state(StrBytes::from_static_str(d.state_name))
                .with_protocol_type(StrBytes::from_string(d.protocol_type))
                .with_protocol_data(StrBytes::from_string(d.protocol))
                .with_members(
                    d.members
                        .into_iter()
                        .map(|m| {
                            DescribedGroupMember::default()
                                .with_member_id(StrBytes::from_string(m.member_id))
                                .with_group_instance_id(if v >= 4 {
                                    m.group_instance_id.map(StrBytes::from_string)
                                } else {
                                    None
                                })
                                .with_client_id(StrBytes::from_string(m.client_id))
                                .with_client_host(StrBytes::from_string(m.client_host))
                                .with_member_metadata(m.metadata)
                                .with_member_assignment(m.assignment)
                        })
                        .collect(),
                ),
        };
        let ops = if include_ops {
            authorized_operations(ctx, ResourceType::Group, &id)
        } else {
            i32::MIN
        };
        out.push(described.with_authorized_operations(ops));
    }
    DescribeGroupsResponse::default().with_groups(out)
}
