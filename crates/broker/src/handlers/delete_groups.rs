//! DeleteGroups (key 42): removes empty groups and their committed offsets. Each group
//! needs DELETE (else GROUP_AUTHORIZATION_FAILED for it), as in Kafka. A share group
//! (KIP-932) goes with its share-partitions' state.

use std::sync::Arc;

use gregor_protocol::kp::messages::delete_groups_response::DeletableGroupResult;
use gregor_protocol::kp::messages::{ApiKey, DeleteGroupsRequest, DeleteGroupsResponse};

use gregor_protocol::kp::ResponseError;

use super::{AclOperation, ApiSpec, RequestContext, ResourceType};
use crate::broker::Broker;
use crate::error::{group_code, share_error_code};

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::DeleteGroups,
    min: 0,
    max: 2,
};

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: DeleteGroupsRequest,
) -> DeleteGroupsResponse {
    let mut results = Vec::with_capacity(req.groups_names.len());
    for id in req.groups_names {
        let code = if !ctx.allowed(AclOperation::Delete, ResourceType::Group, &id) {
            ResponseError::GroupAuthorizationFailed.code()
        } else if broker.shares.is_share_group(&id) {
            let r = broker
                .shares
                .delete(&id, &crate::share::topic_info(&broker.host))
                .await;
            r.err().map_or(0, |e| share_error_code(&e).code())
        } else {
            group_code(broker.groups.delete(&id).await.err().as_ref())
        };
        results.push(
            DeletableGroupResult::default()
                .with_group_id(id)
                .with_error_code(code),
        );
    }
    DeleteGroupsResponse::default().with_results(results)
}
