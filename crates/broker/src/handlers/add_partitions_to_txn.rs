//! AddPartitionsToTxn (key 24): partitions join a producer's open transaction. v0–3
//! come from producers (one transaction); v4–5 (KIP-890) batch several transactions and
//! may only verify (`verify_only`) that partitions are already in them.
//!
//! A partition of an unknown topic fails with UNKNOWN_TOPIC_OR_PARTITION and the rest
//! of that transaction's partitions with OPERATION_NOT_ATTEMPTED, as Kafka answers.

use std::sync::Arc;

use gregor_protocol::kp::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use gregor_protocol::kp::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use gregor_protocol::kp::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ApiKey,
};
use gregor_protocol::kp::ResponseError;

use super::{ApiSpec, RequestContext};
use crate::broker::Broker;
use crate::error::{fenced_code, txn_error_code};

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::AddPartitionsToTxn,
    min: 0,
    max: 5,
};

/// One transaction's partitions, added (or verified), with one code per partition.
async fn add(
    broker: &Arc<Broker>,
    version: i16,
    id: &str,
    producer_id: i64,
    epoch: i16,
    verify_only: bool,
    topics: &[AddPartitionsToTxnTopic],
) -> Vec<AddPartitionsToTxnTopicResult> {
    let wanted: Vec<(String, i32)> = topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.name.to_string(), *p)))
        .collect();
    let image = broker.metadata.image();
    let unknown =
        |(t, p): &(String, i32)| image.topic(t).is_none_or(|t| !t.partitions.contains_key(p));
    // With an unknown partition nothing is added: that one fails, the rest are untried.
    let any_unknown = wanted.iter().any(unknown);
    let outcome = if any_unknown {
        0
    } else {
        match broker
            .txns
            .add_partitions(broker, id, producer_id, epoch, wanted, verify_only)
            .await
        {
            Ok(()) => 0,
            Err(e) => txn_error_code(&e, fenced_code(version, 2)).code(),
        }
    };
    let code_for = |tp: &(String, i32)| match (any_unknown, unknown(tp)) {
        (false, _) => outcome,
        (true, true) => ResponseError::UnknownTopicOrPartition.code(),
        (true, false) => ResponseError::OperationNotAttempted.code(),
    };
    topics
        .iter()
        .map(|t| {
            let results = t
                .partitions
                .iter()
                .map(|p| {
                    AddPartitionsToTxnPartitionResult::default()
                        .with_partition_index(*p)
                        .with_partition_error_code(code_for(&(t.name.to_string(), *p)))
                })
                .collect();
            AddPartitionsToTxnTopicResult::default()
                .with_name(t.name.clone())
                .with_results_by_partition(results)
        })
        .collect()
}

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnResponse {
    let v = ctx.version();
    if v <= 3 {
        let results = add(
            broker,
            v,
            &req.v3_and_below_transactional_id,
            req.v3_and_below_producer_id.0,
            req.v3_and_below_producer_epoch,
            false,
            &req.v3_and_below_topics,
        )
        .await;
        return AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results);
    }
    let mut out = Vec::with_capacity(req.transactions.len());
    for t in &req.transactions {
        let results = add(
            broker,
            v,
            &t.transactional_id,
            t.producer_id.0,
            t.producer_epoch,
            t.verify_only,
            &t.topics,
        )
        .await;
        out.push(
            AddPartitionsToTxnResult::default()
                .with_transactional_id(t.transactional_id.clone())
                .with_topic_results(results),
        );
    }
    AddPartitionsToTxnResponse::default().with_results_by_transaction(out)
}
