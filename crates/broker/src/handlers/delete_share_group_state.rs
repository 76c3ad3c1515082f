//! DeleteShareGroupState (key 86, KIP-932): forgets share-partitions' state (a
//! tombstone in `__share_group_state`), when a share group or its offsets are deleted.
//! Inter-broker: CLUSTER_ACTION on the cluster.

use std::sync::Arc;

use gregor_protocol::kp::messages::delete_share_group_state_response::{
    DeleteStateResult, PartitionResult,
};
use gregor_protocol::kp::messages::{
    ApiKey, DeleteShareGroupStateRequest, DeleteShareGroupStateResponse,
};

use super::{AclOperation, ApiSpec, RequestContext};
use crate::broker::Broker;
use crate::error::share_state_outcome;
use crate::share::state::StateKey;

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::DeleteShareGroupState,
    min: 0,
    max: 0,
};

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: DeleteShareGroupStateRequest,
) -> DeleteShareGroupStateResponse {
    let authorized = ctx.allowed_on_cluster(AclOperation::ClusterAction);
    let mut results = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in t.partitions {
            let key = StateKey {
                group: req.group_id.to_string(),
                topic_id: t.topic_id,
                partition: p.partition,
            };
            let r = match authorized {
                true => broker.shares.share_state.delete(&key).await,
                false => Ok(()),
            };
            let (code, message) = share_state_outcome(authorized, &r);
            partitions.push(
                PartitionResult::default()
                    .with_partition(p.partition)
                    .with_error_code(code)
                    .with_error_message(message),
            );
        }
        results.push(
            DeleteStateResult::default()
                .with_topic_id(t.topic_id)
                .with_partitions(partitions),
        );
    }
    DeleteShareGroupStateResponse::default().with_results(results)
}
