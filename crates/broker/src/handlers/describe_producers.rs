//! DescribeProducers (key 61): the producers a partition remembers, with their epoch,
//! last sequence and the start of any open transaction: how operators find a
//! transaction that holds the last stable offset back (`kafka-transactions.sh
//! find-hanging`).
//!
//! Each topic needs READ (as in Kafka), else TOPIC_AUTHORIZATION_FAILED for its
//! partitions, before their existence is looked at.

use std::sync::Arc;

use gregor_protocol::kp::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use gregor_protocol::kp::messages::{
    ApiKey, DescribeProducersRequest, DescribeProducersResponse, ProducerId,
};

use gregor_protocol::kp::ResponseError;

use super::{AclOperation, ApiSpec, RequestContext, ResourceType};
use crate::broker::Broker;
use crate::error::{replica_error_code, ReplicaError};

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::DescribeProducers,
    min: 0,
    max: 0,
};

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: DescribeProducersRequest,
) -> DescribeProducersResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let readable = ctx.allowed(AclOperation::Read, ResourceType::Topic, &t.name);
            let partitions = t
                .partition_indexes
                .iter()
                .map(|&index| {
                    let base = PartitionResponse::default().with_partition_index(index);
                    if !readable {
                        return base
                            .with_error_code(ResponseError::TopicAuthorizationFailed.code());
                    }
                    let producers = broker
                        .replicas
                        .partition(&t.name, index)
                        .ok_or(ReplicaError::UnknownTopicOrPartition)
                        .and_then(|p| Ok(p.log()?.active_producers()));
                    match producers {
                        Ok(ps) => base.with_active_producers(
                            ps.into_iter()
                                .map(|a| {
                                    ProducerState::default()
                                        .with_producer_id(ProducerId(a.producer_id))
                                        .with_producer_epoch(i32::from(a.epoch))
                                        .with_last_sequence(a.last_sequence)
                                        .with_last_timestamp(a.last_append_ms)
                                        .with_coordinator_epoch(-1)
                                        .with_current_txn_start_offset(a.txn_first_offset)
                                })
                                .collect(),
                        ),
                        Err(e) => base.with_error_code(replica_error_code(&e).code()),
                    }
                })
                .collect();
            TopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    DescribeProducersResponse::default().with_topics(topics)
}
