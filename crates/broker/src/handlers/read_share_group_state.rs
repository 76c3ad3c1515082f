//! ReadShareGroupState (key 84, KIP-932): a share-partition leader reads the state of
//! the share-partitions it takes over from their share coordinator (this broker must
//! lead the key's `__share_group_state` partition, else NOT_COORDINATOR). A newer
//! leader epoch in the request fences the previous leader's writes. Inter-broker:
//! CLUSTER_ACTION on the cluster.

use std::sync::Arc;

use gregor_protocol::kp::messages::read_share_group_state_response::{
    PartitionResult, ReadStateResult, StateBatch,
};
use gregor_protocol::kp::messages::{
    ApiKey, ReadShareGroupStateRequest, ReadShareGroupStateResponse,
};

use super::{AclOperation, ApiSpec, RequestContext};
use crate::broker::Broker;
use crate::error::share_state_outcome;
use crate::share::state::StateKey;

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::ReadShareGroupState,
    min: 0,
    max: 0,
};

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: ReadShareGroupStateRequest,
) -> ReadShareGroupStateResponse {
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
                true => broker.shares.share_state.read(&key, p.leader_epoch).await,
                false => Ok(Default::default()),
            };
            let (code, message) = share_state_outcome(authorized, &r);
            let mut out = PartitionResult::default()
                .with_partition(p.partition)
                .with_error_code(code)
                .with_error_message(message)
                .with_start_offset(-1);
            if let (true, Ok(s)) = (code == 0, r) {
                out = out
                    .with_state_epoch(s.state_epoch)
                    .with_start_offset(s.start_offset)
                    .with_state_batches(
                        s.batches
                            .iter()
                            .map(|b| {
                                StateBatch::default()
                                    .with_first_offset(b.first_offset)
                                    .with_last_offset(b.last_offset)
                                    .with_delivery_state(b.delivery_state)
                                    .with_delivery_count(b.delivery_count)
                            })
                            .collect(),
                    );
            }
            partitions.push(out);
        }
        results.push(
            ReadStateResult::default()
                .with_topic_id(t.topic_id)
                .with_partitions(partitions),
        );
    }
    ReadShareGroupStateResponse::default().with_results(results)
}
