//! OffsetForLeaderEpoch (key 23): where a leader epoch ends in the leader's log
//! (KIP-101). Consumers use it after a leader change to find out whether the records
//! they read were truncated away (KIP-320); followers may use it instead of Fetch's
//! diverging-epoch answer. Only the leader answers; `current_leader_epoch` fences a
//! caller with stale or future metadata.
//!
//! Authorization is Kafka's (KIP-320): CLUSTER_ACTION on the cluster (a broker) covers
//! every topic; otherwise each topic needs DESCRIBE, else TOPIC_AUTHORIZATION_FAILED
//! for its partitions.

use std::sync::Arc;

use gregor_protocol::kp::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use gregor_protocol::kp::messages::{
    ApiKey, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse,
};

use gregor_protocol::kp::ResponseError;

use super::list_offsets::check_leader_epoch;
use super::{AclOperation, ApiSpec, RequestContext, ResourceType};
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
    ctx: &RequestContext,
    req: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let cluster_action = ctx.allowed_on_cluster(AclOperation::ClusterAction);
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            if !cluster_action
                && !ctx.allowed(AclOperation::Describe, ResourceType::Topic, &t.topic.0)
            {
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| {
                        EpochEndOffset::default()
                            .with_partition(p.partition)
                            .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                            .with_leader_epoch(-1)
                            .with_end_offset(-1)
                    })
                    .collect();
                return OffsetForLeaderTopicResult::default()
                    .with_topic(t.topic)
                    .with_partitions(partitions);
            }
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
