//! WriteShareGroupState (key 85, KIP-932): a share-partition leader stores a
//! share-partition's start offset and in-flight states; answered once the
//! `__share_group_state` ISR has them. A write from an older leader epoch is
//! FENCED_LEADER_EPOCH, from an older state epoch FENCED_STATE_EPOCH. Inter-broker:
//! CLUSTER_ACTION on the cluster.

use std::sync::Arc;

use gregor_protocol::kp::messages::write_share_group_state_response::{
    PartitionResult, WriteStateResult,
};
use gregor_protocol::kp::messages::{
    ApiKey, WriteShareGroupStateRequest, WriteShareGroupStateResponse,
};

use super::{AclOperation, ApiSpec, RequestContext};
use crate::broker::Broker;
use crate::error::share_state_outcome;
use crate::share::state::{ShareState, StateBatch, StateKey};

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::WriteShareGroupState,
    min: 0,
    max: 0,
};

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: WriteShareGroupStateRequest,
) -> WriteShareGroupStateResponse {
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
            let state = ShareState {
                snapshot_epoch: 0,
                state_epoch: p.state_epoch,
                leader_epoch: p.leader_epoch,
                start_offset: p.start_offset,
                batches: p
                    .state_batches
                    .iter()
                    .map(|b| StateBatch {
                        first_offset: b.first_offset,
                        last_offset: b.last_offset,
                        delivery_state: b.delivery_state,
                        delivery_count: b.delivery_count,
                    })
                    .collect(),
            };
            let r = match authorized {
                true => broker.shares.share_state.write(&key, state).await,
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
            WriteStateResult::default()
                .with_topic_id(t.topic_id)
                .with_partitions(partitions),
        );
    }
    WriteShareGroupStateResponse::default().with_results(results)
}
