//! AddPartitionsToTxn (key 24): partitions join a producer's open transaction. v0–3
//! come from producers (one transaction); v4–5 (KIP-890) batch several transactions and
//! may only verify (`verify_only`) that partitions are already in them.
//!
//! A partition of an unknown topic fails with UNKNOWN_TOPIC_OR_PARTITION and the rest
//! of that transaction's partitions with OPERATION_NOT_ATTEMPTED, as Kafka answers.
//!
//! Authorization as Kafka's: v0-3 need WRITE on the transactional id (else every
//! partition gets TRANSACTIONAL_ID_AUTHORIZATION_FAILED) and WRITE on each topic
//! (internal topics never qualify; a refused topic fails the transaction like an
//! unknown one, with TOPIC_AUTHORIZATION_FAILED). v4+ come from brokers only and need
//! CLUSTER_ACTION on the cluster (else CLUSTER_AUTHORIZATION_FAILED at the top).

use std::sync::Arc;

use gregor_protocol::kp::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use gregor_protocol::kp::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use gregor_protocol::kp::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ApiKey,
};
use gregor_protocol::kp::ResponseError;

use super::{AclOperation, ApiSpec, RequestContext, ResourceType};
use crate::broker::Broker;
use crate::error::{fenced_code, txn_error_code};

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::AddPartitionsToTxn,
    min: 0,
    max: 5,
};

/// One transaction's partitions, added (or verified), with one code per partition.
#[allow(clippy::too_many_arguments)]
async fn add(
    broker: &Arc<Broker>,
    refused: &(dyn Fn(&str) -> bool + Sync),
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
    let failing = |tp: &(String, i32)| refused(&tp.0) || unknown(tp);
    // With an unknown (or refused) partition nothing is added: that one fails, the rest
    // are untried.
    let any_unknown = wanted.iter().any(failing);
    let outcome = if any_unknown {
        0
    } else {
        match broker
            .txns
            .add_partitions(id, producer_id, epoch, wanted, verify_only)
            .await
        {
            Ok(()) => 0,
            Err(e) => txn_error_code(&e, fenced_code(version, 2)).code(),
        }
    };
    let code_for = |tp: &(String, i32)| match (any_unknown, refused(&tp.0), unknown(tp)) {
        (false, _, _) => outcome,
        (true, true, _) => ResponseError::TopicAuthorizationFailed.code(),
        (true, false, true) => ResponseError::UnknownTopicOrPartition.code(),
        (true, false, false) => ResponseError::OperationNotAttempted.code(),
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
        let id = &req.v3_and_below_transactional_id;
        if !ctx.allowed(AclOperation::Write, ResourceType::TransactionalId, id) {
            let code = ResponseError::TransactionalIdAuthorizationFailed.code();
            let results = every_partition(&req.v3_and_below_topics, code);
            return AddPartitionsToTxnResponse::default()
                .with_results_by_topic_v3_and_below(results);
        }
        let refused = |topic: &str| {
            gregor_metadata::controller::INTERNAL_TOPICS.contains(&topic)
                || !ctx.allowed(AclOperation::Write, ResourceType::Topic, topic)
        };
        let results = add(
            broker,
            &refused,
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
    if !ctx.allowed_on_cluster(AclOperation::ClusterAction) {
        return AddPartitionsToTxnResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    let mut out = Vec::with_capacity(req.transactions.len());
    for t in &req.transactions {
        let results = add(
            broker,
            &|_: &str| false,
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

/// The same code for every partition asked for.
fn every_partition(
    topics: &[AddPartitionsToTxnTopic],
    code: i16,
) -> Vec<AddPartitionsToTxnTopicResult> {
    topics
        .iter()
        .map(|t| {
            let results = t
                .partitions
                .iter()
                .map(|p| {
                    AddPartitionsToTxnPartitionResult::default()
                        .with_partition_index(*p)
                        .with_partition_error_code(code)
                })
                .collect();
            AddPartitionsToTxnTopicResult::default()
                .with_name(t.name.clone())
                .with_results_by_partition(results)
        })
        .collect()
}
