//! AddPartitionsToTxn v4+ (the inter-broker form) to a transactional id's coordinator on
//! another broker, as Kafka's AddPartitionsToTxnManager sends it: the produce path of a
//! transactions-v2 client adds its partitions this way, and the group coordinator adds
//! (v2) or verifies (KIP-890) a group's offsets partition for TxnOffsetCommit.

use std::time::Duration;

use gregor_protocol::kp::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use gregor_protocol::kp::messages::{
    AddPartitionsToTxnRequest, ProducerId, TopicName, TransactionalId,
};
use gregor_protocol::kp::protocol::StrBytes;
use gregor_protocol::kp::ResponseError;

use super::TxnError;
use crate::host::Host;
use crate::replication::client::BrokerClient;

const TIMEOUT: Duration = Duration::from_secs(30);

/// Adds `partitions` to `id`'s open transaction on broker `coordinator` (with
/// `verify_only`, checks that they are in it). The coordinator's refusal comes back as
/// the same [`TxnError`] a local coordinator would give; an unreachable one is
/// COORDINATOR_NOT_AVAILABLE (retriable).
pub async fn add_partitions(
    host: &Host,
    coordinator: i32,
    id: &str,
    producer_id: i64,
    epoch: i16,
    partitions: Vec<(String, i32)>,
    verify_only: bool,
) -> Result<(), TxnError> {
    let mut topics: Vec<AddPartitionsToTxnTopic> = Vec::new();
    for (name, index) in partitions {
        match topics.last_mut() {
            Some(t) if t.name.0.as_str() == name => t.partitions.push(index),
            _ => topics.push(
                AddPartitionsToTxnTopic::default()
                    .with_name(TopicName(StrBytes::from_string(name)))
                    .with_partitions(vec![index]),
            ),
        }
    }
    let req = AddPartitionsToTxnRequest::default().with_transactions(vec![
        AddPartitionsToTxnTransaction::default()
            .with_transactional_id(TransactionalId(StrBytes::from_string(id.to_string())))
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(epoch)
            .with_verify_only(verify_only)
            .with_topics(topics),
    ]);
    let unavailable = |e: String| {
        tracing::debug!(transactional_id = %id, coordinator, error = %e, "remote transaction coordinator unreachable");
        TxnError::CoordinatorNotAvailable
    };
    let endpoint = {
        let image = host.metadata.image();
        let e = image
            .brokers
            .get(&coordinator)
            .and_then(|b| b.endpoints.first())
            .ok_or_else(|| unavailable(format!("broker {coordinator} has no endpoint")))?;
        format!("{}:{}", e.host, e.port)
    };
    let mut client = BrokerClient::connect(
        coordinator,
        &endpoint,
        format!("gregor-txn-{}", host.node_id),
        TIMEOUT,
        &host.inter_broker,
    )
    .await
    .map_err(|e| unavailable(e.to_string()))?;
    let resp = client
        .call(&req, 5, TIMEOUT)
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    let refused = std::iter::once(resp.error_code).chain(
        resp.results_by_transaction
            .iter()
            .flat_map(|t| &t.topic_results)
            .flat_map(|t| &t.results_by_partition)
            .map(|p| p.partition_error_code),
    );
    match refused.into_iter().find(|&c| c != 0) {
        None => Ok(()),
        Some(code) => Err(from_code(code)),
    }
}

/// A coordinator's answer back into the error a local coordinator would have given.
fn from_code(code: i16) -> TxnError {
    use ResponseError as R;
    match ResponseError::try_from_code(code) {
        Some(R::InvalidProducerEpoch | R::ProducerFenced) => TxnError::ProducerFenced,
        Some(R::InvalidProducerIdMapping) => TxnError::InvalidProducerIdMapping,
        Some(R::ConcurrentTransactions) => TxnError::ConcurrentTransactions,
        Some(R::NotCoordinator) => TxnError::NotCoordinator,
        Some(R::CoordinatorNotAvailable | R::CoordinatorLoadInProgress) => {
            TxnError::CoordinatorNotAvailable
        }
        _ => TxnError::InvalidTxnState,
    }
}
