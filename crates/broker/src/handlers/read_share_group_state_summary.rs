//! ReadShareGroupStateSummary (key 87, KIP-932): a share-partition's state epoch,
//! leader epoch and start offset without its batches (what DescribeShareGroupOffsets
//! needs). Inter-broker: CLUSTER_ACTION on the cluster.

use std::sync::Arc;

use gregor_protocol::kp::messages::read_share_group_state_summary_response::{
    PartitionResult, ReadStateSummaryResult,
};
use gregor_protocol::kp::messages::{
    ApiKey, ReadShareGroupStateSummaryRequest, ReadShareGroupStateSummaryResponse,
};

use super::{AclOperation, ApiSpec, RequestContext};
use crate::broker::Broker;
use crate::error::share_state_outcome;
use crate::share::state::StateKey;

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::ReadShareGroupStateSummary,
    min: 0,
    max: 0,
};

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: ReadShareGroupStateSummaryRequest,
) -> ReadShareGroupStateSummaryResponse {
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
                true => broker.shares.share_state.summary(&key).await,
                false => Ok(Default::default()),
            };
            let (code, message) = share_state_outcome(authorized, &r);
            let mut out = PartitionResult::default()
                .with_partition(p.partition)
                .with_error_code(code)
                .with_error_message(message)
                .with_start_offset(-1)
                .with_leader_epoch(-1);
            if let (true, Ok(s)) = (code == 0, r) {
                out = out
                    .with_state_epoch(s.state_epoch)
                    .with_leader_epoch(s.leader_epoch)
                    .with_start_offset(s.start_offset);
            }
            partitions.push(out);
        }
        results.push(
            ReadStateSummaryResult::default()
                .with_topic_id(t.topic_id)
                .with_partitions(partitions),
        );
    }
    ReadShareGroupStateSummaryResponse::default().with_results(results)
}
