//! InitializeShareGroupState (key 83, KIP-932): sets a share-partition's state epoch
//! and start offset, with nothing in flight (Kafka's group coordinator sends it when a
//! share group first consumes a topic, or its offsets are reset). An older state epoch
//! than the stored one is FENCED_STATE_EPOCH. Inter-broker: CLUSTER_ACTION on the
//! cluster.

use std::sync::Arc;

use gregor_protocol::kp::messages::initialize_share_group_state_response::{
    InitializeStateResult, PartitionResult,
};
use gregor_protocol::kp::messages::{
    ApiKey, InitializeShareGroupStateRequest, InitializeShareGroupStateResponse,
};

use super::{AclOperation, ApiSpec, RequestContext};
use crate::broker::Broker;
use crate::error::share_state_outcome;
use crate::share::state::StateKey;

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::InitializeShareGroupState,
    min: 0,
    max: 0,
};

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: InitializeShareGroupStateRequest,
) -> InitializeShareGroupStateResponse {
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
                true => {
                    broker
                        .shares
                        .share_state
                        .initialize(&key, p.state_epoch, p.start_offset)
                        .await
                }
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
            InitializeStateResult::default()
                .with_topic_id(t.topic_id)
                .with_partitions(partitions),
        );
    }
    InitializeShareGroupStateResponse::default().with_results(results)
}
