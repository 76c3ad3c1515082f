//! OffsetForLeaderEpoch (key 23): where a leader epoch ends in the leader's log
//! (KIP-101). Consumers use it after a leader change to find out whether the records
//! they read were truncated away (KIP-320); followers may use it instead of Fetch's
//! diverging-epoch answer. Only the leader answers; `current_leader_epoch` fences a
//! caller with stale or future metadata.

use std::sync::Arc;

use gregor_protocol::kp::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use gregor_protocol::kp::messages::{
    ApiKey, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse,
};

use super::list_offsets::check_leader_epoch;
use super::{ApiSpec, RequestContext};
use crate::broker::Broker;
use crate::error::{replica_error_code, ReplicaError};

type Found = Result<(i32, i64), ReplicaError>;

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::OffsetForLeaderEpoch,
    min: 2,
    max: 4,
};

pub async fn handle(
    broker: &Arc<Broker>,
    _ctx: &RequestContext,
    req: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let partitions =
                t.partitions
                    .iter()
                    .map(|p| {
                        let base = EpochEndOffset::default()
                            .with_partition(p.partition)
                            .with_leader_epoch(-1)
                            .with_end_offset(-1);
                        let found: Found = broker
                            .replicas
                            .lookup(&t.topic.0, p.partition)
                            .and_then(|part| {
                                check_leader_epoch(&part, p.current_leader_epoch)?;
                                Ok(part.end_offset_for_epoch(p.leader_epoch)?)
                            });
                        match found {
                            Ok((epoch, end)) => base.with_leader_epoch(epoch).with_end_offset(end),
                            Err(e) => base.with_error_code(replica_error_code(&e).code()),
                        }
                    })
                    .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(t.topic)
                .with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
