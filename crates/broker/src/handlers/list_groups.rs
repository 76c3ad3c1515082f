//! ListGroups (key 16): every group this coordinator holds, filtered by state (v4+,
//! KIP-518) and type (v5+, KIP-848: "classic" or "consumer"; KIP-932: "share").
//!
//! Never refused, as in Kafka: DESCRIBE on the cluster lists every group; otherwise
//! only the groups the principal may DESCRIBE are listed.

use std::sync::Arc;

use gregor_protocol::kp::messages::list_groups_response::ListedGroup;
use gregor_protocol::kp::messages::{ApiKey, GroupId, ListGroupsRequest, ListGroupsResponse};
use gregor_protocol::kp::protocol::StrBytes;

use super::{AclOperation, ApiSpec, RequestContext, ResourceType};
use crate::broker::Broker;

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::ListGroups,
    min: 0,
    max: 5,
};

/// A group as ListGroups shows it, whatever its coordinator.
struct Listed {
    group_id: String,
    state_name: &'static str,
    group_type: &'static str,
    protocol_type: String,
}

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: ListGroupsRequest,
) -> ListGroupsResponse {
    let v = ctx.version();
    let states: Vec<String> = req
        .states_filter
        .iter()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    let types: Vec<String> = req
        .types_filter
        .iter()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    let all = ctx.allowed_on_cluster(AclOperation::Describe);
    let shares = broker.shares.list().into_iter().map(|(id, state)| Listed {
        group_id: id,
        state_name: state,
        group_type: "share",
        protocol_type: "share".to_string(),
    });
    let groups = broker
        .groups
        .list()
        .await
        .into_iter()
        .map(|g| Listed {
            group_id: g.group_id,
            state_name: g.state_name,
            group_type: g.group_type,
            protocol_type: g.protocol_type,
        })
        .chain(shares)
        .filter(|g| states.is_empty() || states.contains(&g.state_name.to_ascii_lowercase()))
        .filter(|g| types.is_empty() || types.contains(&g.group_type.to_ascii_lowercase()))
        .filter(|g| all || ctx.allowed(AclOperation::Describe, ResourceType::Group, &g.group_id))
        .map(|g| {
            let mut l = ListedGroup::default()
                .with_group_id(GroupId(StrBytes::from_string(g.group_id)))
                .with_protocol_type(StrBytes::from_string(g.protocol_type));
            if v >= 4 {
                l.group_state = StrBytes::from_static_str(g.state_name);
            }
            if v >= 5 {
                l.group_type = StrBytes::from_static_str(g.group_type);
            }
            l
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}
