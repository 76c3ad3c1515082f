//! Shared helpers: the transactional requests the tests send, and waiting on a condition.

use bytes::Bytes;
use gregor_protocol::batch::{self, NewRecord};
use gregor_protocol::compression::Codec;
use gregor_protocol::kp::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use gregor_protocol::kp::messages::fetch_request::{FetchPartition, FetchTopic};
use gregor_protocol::kp::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use gregor_protocol::kp::messages::produce_request::{PartitionProduceData, TopicProduceData};
use gregor_protocol::kp::messages::*;
use gregor_protocol::kp::protocol::StrBytes;

use super::common::Client;

pub(crate) fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

pub(crate) fn tid(v: &str) -> TransactionalId {
    TransactionalId(s(v))
}

pub(crate) async fn init(c: &mut Client, id: &str, timeout_ms: i32) -> InitProducerIdResponse {
    let req = InitProducerIdRequest::default()
        .with_transactional_id(Some(tid(id)))
        .with_transaction_timeout_ms(timeout_ms)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    c.call(&req, 4).await
}

pub(crate) async fn add(
    c: &mut Client,
    id: &str,
    pid: i64,
    epoch: i16,
    topic: &str,
    parts: &[i32],
) -> Vec<i16> {
    let req = AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(tid(id))
        .with_v3_and_below_producer_id(ProducerId(pid))
        .with_v3_and_below_producer_epoch(epoch)
        .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
            .with_name(TopicName(s(topic)))
            .with_partitions(parts.to_vec())]);
    c.call(&req, 3).await.results_by_topic_v3_and_below[0]
        .results_by_partition
        .iter()
        .map(|r| r.partition_error_code)
        .collect()
}

pub(crate) async fn end(
    c: &mut Client,
    id: &str,
    pid: i64,
    epoch: i16,
    commit: bool,
    v: i16,
) -> i16 {
    let req = EndTxnRequest::default()
        .with_transactional_id(tid(id))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_committed(commit);
    c.call(&req, v).await.error_code
}

/// Produces `n` records in one transactional batch; returns (error, base offset).
pub(crate) async fn produce_txn(
    c: &mut Client,
    id: &str,
    topic: &str,
    pid: i64,
    epoch: i16,
    seq: i32,
    n: usize,
) -> (i16, i64) {
    let recs: Vec<NewRecord<'_>> = (0..n)
        .map(|_| NewRecord {
            key: None,
            value: Some(b"v"),
            timestamp: gregor_broker::util::now_ms(),
            headers: &[],
        })
        .collect();
    let bytes = batch::build_as(
        0,
        Codec::None,
        &recs,
        batch::Producer {
            id: pid,
            epoch,
            base_sequence: seq,
            attributes: batch::ATTR_TRANSACTIONAL,
        },
    )
    .unwrap();
    let req = ProduceRequest::default()
        .with_transactional_id(Some(tid(id)))
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(s(topic)))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(Bytes::from(bytes)))])]);
    let r = c.call(&req, 9).await;
    let p = &r.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

/// Latest offset at an isolation level (0 uncommitted, 1 committed).
pub(crate) async fn latest(c: &mut Client, topic: &str, isolation: i8) -> i64 {
    let req = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(isolation)
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(TopicName(s(topic)))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_timestamp(-1)])]);
    c.call(&req, 7).await.topics[0].partitions[0].offset
}

/// A read_committed fetch from `offset`: (last stable offset, aborted (pid, first)).
pub(crate) async fn fetch_committed(
    c: &mut Client,
    topic: &str,
    offset: i64,
) -> (i64, Vec<(i64, i64)>, usize) {
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_isolation_level(1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(s(topic)))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(1 << 20)])]);
    let r = c.call(&req, 11).await;
    let p = &r.responses[0].partitions[0];
    assert_eq!(p.error_code, 0);
    let aborted = p
        .aborted_transactions
        .as_ref()
        .map(|a| {
            a.iter()
                .map(|t| (t.producer_id.0, t.first_offset))
                .collect()
        })
        .unwrap_or_default();
    (
        p.last_stable_offset,
        aborted,
        p.records.as_ref().map_or(0, |r| r.len()),
    )
}

/// Waits (with a deadline) until `done` holds.
pub(crate) async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
