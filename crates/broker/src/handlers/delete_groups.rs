//! DeleteGroups (key 42): removes empty groups and their committed offsets.

use std::sync::Arc;

use gregor_protocol::kp::messages::delete_groups_response::DeletableGroupResult;
use gregor_protocol::kp::messages::{ApiKey, DeleteGroupsRequest, DeleteGroupsResponse};

use super::{ApiSpec, RequestContext};
use crate::broker::Broker;
use crate::error::group_code;

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::DeleteGroups,
    min: 0,
    max: 2,
};

pub async fn handle(
    broker: &Arc<Broker>,
    _ctx: &RequestContext,
    req: DeleteGroupsRequest,
) -> DeleteGroupsResponse {
    let mut results = Vec::with_capacity(req.groups_names.len());
    for id in req.groups_names {
        let r = broker.groups.delete(broker, &id).await;
        results.push(
            DeletableGroupResult::default()
                .with_group_id(id)
                .with_error_code(group_code(r.err().as_ref())),
        );
    }
    DeleteGroupsResponse::default().with_results(results)
}
