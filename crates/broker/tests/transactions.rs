//! Transactions at the wire level, with exact error codes: InitProducerId fencing and
//! timeouts, AddPartitionsToTxn errors and KIP-890 verification, EndTxn states,
//! markers, the last stable offset, aborted transactions in read_committed fetches,
//! isolation-aware ListOffsets, Describe/ListTransactions, and recovery after a restart.
//! (librdkafka drives the same paths end to end in tests/python/test_transactions.py.)

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use bytes::Bytes;
use common::{Client, TestBroker};
use gregor_protocol::batch::{self, NewRecord};
use gregor_protocol::compression::Codec;
use gregor_protocol::kp::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use gregor_protocol::kp::messages::fetch_request::{FetchPartition, FetchTopic};
use gregor_protocol::kp::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use gregor_protocol::kp::messages::produce_request::{PartitionProduceData, TopicProduceData};
use gregor_protocol::kp::messages::*;
use gregor_protocol::kp::protocol::StrBytes;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn tid(v: &str) -> TransactionalId {
    TransactionalId(s(v))
}

async fn init(c: &mut Client, id: &str, timeout_ms: i32) -> InitProducerIdResponse {
    let req = InitProducerIdRequest::default()
        .with_transactional_id(Some(tid(id)))
        .with_transaction_timeout_ms(timeout_ms)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    c.call(&req, 4).await
}

async fn add(
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

async fn end(c: &mut Client, id: &str, pid: i64, epoch: i16, commit: bool, v: i16) -> i16 {
    let req = EndTxnRequest::default()
        .with_transactional_id(tid(id))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_committed(commit);
    c.call(&req, v).await.error_code
}

/// Produces `n` records in one transactional batch; returns (error, base offset).
async fn produce_txn(
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
async fn latest(c: &mut Client, topic: &str, isolation: i8) -> i64 {
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
async fn fetch_committed(
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

#[tokio::test]
async fn fencing_timeouts_and_error_codes() {
    let b = TestBroker::start(&[("transaction.max.timeout.ms", "60000")]).await;
    let mut c = b.connect().await;
    c.create_topic("t", 2).await;
    // transaction.max.timeout.ms is enforced.
    assert_eq!(
        init(&mut c, "a", 60_001).await.error_code,
        50,
        "INVALID_TRANSACTION_TIMEOUT"
    );
    assert_eq!(init(&mut c, "a", 0).await.error_code, 50);
    let first = init(&mut c, "a", 60_000).await;
    assert_eq!((first.error_code, first.producer_epoch), (0, 0));
    let pid = first.producer_id.0;
    // EndTxn with nothing open.
    assert_eq!(
        end(&mut c, "a", pid, 0, true, 3).await,
        48,
        "INVALID_TXN_STATE"
    );
    // An unknown topic fails its partitions and leaves the rest untried.
    let req = AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(tid("a"))
        .with_v3_and_below_producer_id(ProducerId(pid))
        .with_v3_and_below_producer_epoch(0)
        .with_v3_and_below_topics(vec![
            AddPartitionsToTxnTopic::default()
                .with_name(TopicName(s("t")))
                .with_partitions(vec![0]),
            AddPartitionsToTxnTopic::default()
                .with_name(TopicName(s("nope")))
                .with_partitions(vec![0]),
        ]);
    let r = c.call(&req, 3).await;
    let codes: Vec<i16> = r
        .results_by_topic_v3_and_below
        .iter()
        .map(|t| t.results_by_partition[0].partition_error_code)
        .collect();
    assert_eq!(
        codes,
        vec![55, 3],
        "OPERATION_NOT_ATTEMPTED, UNKNOWN_TOPIC_OR_PARTITION"
    );
    // Wrong producer id, then a real transaction.
    assert_eq!(
        add(&mut c, "a", pid + 100, 0, "t", &[0]).await,
        vec![49],
        "INVALID_PRODUCER_ID_MAPPING"
    );
    assert_eq!(add(&mut c, "a", pid, 0, "t", &[0, 1]).await, vec![0, 0]);
    assert_eq!(produce_txn(&mut c, "a", "t", pid, 0, 0, 3).await, (0, 0));
    // KIP-890 verification (v4): t-1 is in the transaction, t5-0 is not.
    c.create_topic("t5", 1).await;
    let verify = |topic: &str, p: i32| {
        AddPartitionsToTxnRequest::default().with_transactions(vec![
            AddPartitionsToTxnTransaction::default()
                .with_transactional_id(tid("a"))
                .with_producer_id(ProducerId(pid))
                .with_producer_epoch(0)
                .with_verify_only(true)
                .with_topics(vec![AddPartitionsToTxnTopic::default()
                    .with_name(TopicName(s(topic)))
                    .with_partitions(vec![p])]),
        ])
    };
    let code = |r: AddPartitionsToTxnResponse| {
        r.results_by_transaction[0].topic_results[0].results_by_partition[0].partition_error_code
    };
    assert_eq!(code(c.call(&verify("t", 1), 5).await), 0);
    assert_eq!(
        code(c.call(&verify("t5", 0), 5).await),
        48,
        "INVALID_TXN_STATE"
    );
    // And a transactional batch for it is refused, so it can never hang open.
    assert_eq!(produce_txn(&mut c, "a", "t5", pid, 0, 0, 1).await.0, 48);
    // A second instance of "a" aborts the open transaction and fences the first.
    let second = init(&mut c, "a", 60_000).await;
    assert_eq!(second.error_code, 0);
    assert_eq!(second.producer_id.0, pid);
    assert!(second.producer_epoch >= 1);
    assert_eq!(
        code(c.call(&verify("t", 1), 5).await),
        90,
        "the old epoch is fenced"
    );
    assert_eq!(
        end(&mut c, "a", pid, 0, true, 3).await,
        90,
        "PRODUCER_FENCED"
    );
    assert_eq!(
        end(&mut c, "a", pid, 0, true, 1).await,
        47,
        "INVALID_PRODUCER_EPOCH before v2"
    );
    let (fenced, _) = produce_txn(&mut c, "a", "t", pid, 0, 3, 1).await;
    assert_eq!(fenced, 47, "the partition fences the old epoch too");
    // The aborted transaction no longer holds the stable offset back.
    assert_eq!(latest(&mut c, "t", 1).await, latest(&mut c, "t", 0).await);
    b.stop().await;
}

#[tokio::test]
async fn last_stable_offset_aborted_list_and_listing() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.connect().await;
    c.create_topic("lso", 1).await;
    let p1 = init(&mut c, "p1", 60_000).await;
    let p2 = init(&mut c, "p2", 60_000).await;
    let (pid1, pid2) = (p1.producer_id.0, p2.producer_id.0);
    assert_eq!(add(&mut c, "p1", pid1, 0, "lso", &[0]).await, vec![0]);
    assert_eq!(add(&mut c, "p2", pid2, 0, "lso", &[0]).await, vec![0]);
    assert_eq!(
        produce_txn(&mut c, "p1", "lso", pid1, 0, 0, 2).await,
        (0, 0)
    ); // 0-1
    assert_eq!(
        produce_txn(&mut c, "p2", "lso", pid2, 0, 0, 2).await,
        (0, 2)
    ); // 2-3
    assert_eq!(
        produce_txn(&mut c, "p1", "lso", pid1, 0, 2, 2).await,
        (0, 4)
    ); // 4-5
    assert_eq!(latest(&mut c, "lso", 0).await, 6);
    assert_eq!(latest(&mut c, "lso", 1).await, 0, "both transactions open");
    let (lso, _, bytes) = fetch_committed(&mut c, "lso", 0).await;
    assert_eq!((lso, bytes), (0, 0), "read_committed sees nothing yet");
    // DescribeProducers shows what holds the stable offset back.
    let dp = c
        .call(
            &DescribeProducersRequest::default().with_topics(vec![
                describe_producers_request::TopicRequest::default()
                    .with_name(TopicName(s("lso")))
                    .with_partition_indexes(vec![0, 9]),
            ]),
            0,
        )
        .await;
    let starts: Vec<(i64, i64, i32)> = dp.topics[0].partitions[0]
        .active_producers
        .iter()
        .map(|p| (p.producer_id.0, p.current_txn_start_offset, p.last_sequence))
        .collect();
    assert_eq!(starts, vec![(pid1, 0, 3), (pid2, 2, 1)]);
    assert_eq!(dp.topics[0].partitions[1].error_code, 3, "no partition 9");
    // Describe and list while open.
    let d = c
        .call(
            &DescribeTransactionsRequest::default()
                .with_transactional_ids(vec![tid("p1"), tid("zz")]),
            0,
        )
        .await;
    assert_eq!(
        d.transaction_states[0].transaction_state.as_str(),
        "Ongoing"
    );
    assert_eq!(d.transaction_states[0].topics[0].partitions, vec![0]);
    assert_eq!(
        d.transaction_states[1].error_code, 105,
        "TRANSACTIONAL_ID_NOT_FOUND"
    );
    let l = c
        .call(
            &ListTransactionsRequest::default()
                .with_state_filters(vec![s("Ongoing"), s("Bogus")])
                .with_duration_filter(-1),
            1,
        )
        .await;
    assert_eq!(l.transaction_states.len(), 2);
    assert_eq!(l.unknown_state_filters, vec![s("Bogus")]);
    // p1 aborts: the stable offset moves to p2's first offset.
    assert_eq!(end(&mut c, "p1", pid1, 0, false, 3).await, 0);
    assert_eq!(latest(&mut c, "lso", 1).await, 2);
    let (lso, aborted, bytes) = fetch_committed(&mut c, "lso", 0).await;
    assert_eq!(lso, 2);
    assert!(bytes > 0);
    assert_eq!(aborted, vec![(pid1, 0)]);
    // p2 commits: everything is stable; p1's aborted batches are reported from any
    // offset at or before its marker.
    assert_eq!(end(&mut c, "p2", pid2, 0, true, 3).await, 0);
    assert_eq!(
        end(&mut c, "p2", pid2, 0, true, 3).await,
        0,
        "a retried commit succeeds"
    );
    assert_eq!(latest(&mut c, "lso", 1).await, 8);
    let (lso, aborted, _) = fetch_committed(&mut c, "lso", 2).await;
    assert_eq!((lso, aborted), (8, vec![(pid1, 0)]));
    let (_, aborted, _) = fetch_committed(&mut c, "lso", 7).await;
    assert!(aborted.is_empty());
    b.stop().await;
}

#[tokio::test]
async fn an_open_transaction_times_out_and_its_producer_is_fenced() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.connect().await;
    c.create_topic("to", 1).await;
    let r = init(&mut c, "slow", 500).await;
    let pid = r.producer_id.0;
    assert_eq!(add(&mut c, "slow", pid, 0, "to", &[0]).await, vec![0]);
    assert_eq!(
        produce_txn(&mut c, "slow", "to", pid, 0, 0, 1).await,
        (0, 0)
    );
    assert_eq!(latest(&mut c, "to", 1).await, 0);
    // The coordinator aborts it after transaction.timeout.ms: wait for the stable
    // offset to pass the abort marker.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if latest(&mut c, "to", 1).await == 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the transaction was not aborted"
        );
        tokio::task::yield_now().await;
    }
    assert_eq!(
        end(&mut c, "slow", pid, 0, true, 3).await,
        90,
        "the timed-out producer is fenced"
    );
    let (_, aborted, _) = fetch_committed(&mut c, "to", 0).await;
    assert_eq!(aborted, vec![(pid, 0)]);
    b.stop().await;
}

#[tokio::test]
async fn idle_transactional_ids_expire() {
    let b = TestBroker::start(&[("transactional.id.expiration.ms", "300")]).await;
    let mut c = b.connect().await;
    let first = init(&mut c, "idle", 60_000).await;
    assert_eq!(first.error_code, 0);
    let listed = |r: ListTransactionsResponse| {
        r.transaction_states
            .iter()
            .any(|t| t.transactional_id.as_str() == "idle")
    };
    let list = ListTransactionsRequest::default().with_duration_filter(-1);
    assert!(listed(c.call(&list, 1).await));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while listed(c.call(&list, 1).await) {
        assert!(std::time::Instant::now() < deadline, "the id never expired");
        tokio::task::yield_now().await;
    }
    // Forgotten: the next instance gets a new producer id.
    let again = init(&mut c, "idle", 60_000).await;
    assert_eq!(again.error_code, 0);
    assert_ne!(again.producer_id, first.producer_id);
    assert_eq!(again.producer_epoch, 0);
    b.stop().await;
}

/// TxnOffsetCommit v3 for `member` at `generation`: the partition's error code.
async fn txn_commit_offset(
    c: &mut Client,
    id: &str,
    pid: i64,
    member: &str,
    generation: i32,
    offset: i64,
) -> i16 {
    use gregor_protocol::kp::messages::txn_offset_commit_request::{
        TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
    };
    let req = TxnOffsetCommitRequest::default()
        .with_transactional_id(tid(id))
        .with_group_id(GroupId(s("tg")))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(0)
        .with_member_id(s(member))
        .with_generation_id(generation)
        .with_topics(vec![TxnOffsetCommitRequestTopic::default()
            .with_name(TopicName(s("in")))
            .with_partitions(vec![TxnOffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(offset)])]);
    c.call(&req, 3).await.topics[0].partitions[0].error_code
}

/// OffsetFetch v7 with require_stable: (error code, offset) of in-0 for group "tg".
async fn stable_offset(c: &mut Client) -> (i16, i64) {
    use gregor_protocol::kp::messages::offset_fetch_request::OffsetFetchRequestTopic;
    let req = OffsetFetchRequest::default()
        .with_group_id(GroupId(s("tg")))
        .with_require_stable(true)
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(TopicName(s("in")))
            .with_partition_indexes(vec![0])]));
    let p = &c.call(&req, 7).await.topics[0].partitions[0];
    (p.error_code, p.committed_offset)
}

#[tokio::test]
async fn transactional_offsets_are_fenced_by_generation_and_unstable_until_commit() {
    let b = TestBroker::start(&[("group.initial.rebalance.delay.ms", "0")]).await;
    let mut c = b.connect().await;
    c.create_topic("in", 1).await;
    let pid = init(&mut c, "ctp", 60_000).await.producer_id.0;
    // A member of group "tg" at generation 1.
    let join = |member: &str| {
        JoinGroupRequest::default()
            .with_group_id(GroupId(s("tg")))
            .with_member_id(s(member))
            .with_session_timeout_ms(10_000)
            .with_rebalance_timeout_ms(10_000)
            .with_protocol_type(s("consumer"))
            .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
            )
            .with_name(s("range"))
            .with_metadata(Bytes::from_static(b"meta"))])
    };
    let first = c.call(&join(""), 9).await;
    let member = first.member_id.to_string();
    let joined = c.call(&join(&member), 9).await;
    assert_eq!((joined.error_code, joined.generation_id), (0, 1));
    // Without AddOffsetsToTxn the commit is outside any transaction: refused.
    assert_eq!(
        txn_commit_offset(&mut c, "ctp", pid, &member, 1, 5).await,
        48
    );
    let add = AddOffsetsToTxnRequest::default()
        .with_transactional_id(tid("ctp"))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(0)
        .with_group_id(GroupId(s("tg")));
    assert_eq!(c.call(&add, 3).await.error_code, 0);
    // KIP-447: a zombie member (old generation, unknown id) is fenced.
    assert_eq!(
        txn_commit_offset(&mut c, "ctp", pid, &member, 0, 5).await,
        22,
        "ILLEGAL_GENERATION"
    );
    assert_eq!(
        txn_commit_offset(&mut c, "ctp", pid, "zombie", 1, 5).await,
        25,
        "UNKNOWN_MEMBER_ID"
    );
    assert_eq!(
        txn_commit_offset(&mut c, "ctp", pid, &member, 1, 5).await,
        0
    );
    // Pending: UNSTABLE_OFFSET_COMMIT for readers that require stable offsets.
    assert_eq!(stable_offset(&mut c).await, (88, -1));
    assert_eq!(end(&mut c, "ctp", pid, 0, true, 3).await, 0);
    assert_eq!(stable_offset(&mut c).await, (0, 5));
    b.stop().await;
}

/// Waits (with a deadline) until `done` holds.
async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// This process's resident set size in KiB (the broker runs in it).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

async fn describe_state(c: &mut Client, id: &str) -> String {
    let d = c
        .call(
            &DescribeTransactionsRequest::default().with_transactional_ids(vec![tid(id)]),
            0,
        )
        .await;
    d.transaction_states[0].transaction_state.to_string()
}

/// 100,000 unknown transactional ids on EndTxn (and AddPartitionsToTxn) leave no task
/// behind: an id with no state is answered INVALID_PRODUCER_ID_MAPPING without one, and
/// a task whose InitProducerId failed (so the id has no state) unloads itself.
/// (Without this, each id kept a task forever: `loaded_count` ends at 100,000.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactional_ids_a_client_only_names_leave_no_tasks_behind() {
    const N: usize = 100_000;
    const CONNECTIONS: usize = 8;
    let b = TestBroker::start(&[("transaction.max.timeout.ms", "60000")]).await;
    let mut c = b.connect().await;
    c.create_topic("t", 1).await;
    let live = init(&mut c, "live", 60_000).await;
    assert_eq!(live.error_code, 0);
    let rss_before = rss_kib();
    let started = std::time::Instant::now();
    let mut workers = Vec::new();
    for k in 0..CONNECTIONS {
        let mut c = b.connect().await;
        workers.push(tokio::spawn(async move {
            for i in (k..N).step_by(CONNECTIONS) {
                let id = format!("unknown-{i}");
                assert_eq!(end(&mut c, &id, 1000, 0, true, 3).await, 49);
                if i % 100 == 0 {
                    assert_eq!(add(&mut c, &id, 1000, 0, "t", &[0]).await, vec![49]);
                    // A failed init: a task is made for the id, which has no state.
                    assert_eq!(init(&mut c, &id, 60_001).await.error_code, 50);
                }
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    let elapsed = started.elapsed();
    let txns = &b.broker.txns;
    wait_for("stateless transactional-id tasks to unload", || {
        txns.loaded_count() <= 1
    })
    .await;
    let rss_after = rss_kib();
    eprintln!(
        "{N} unknown transactional ids in {elapsed:?}: RSS {rss_before} KiB before, \
         {rss_after} KiB after; {} transactional-id tasks",
        txns.loaded_count()
    );
    // The id with state is untouched.
    let again = init(&mut c, "live", 60_000).await;
    assert_eq!((again.error_code, again.producer_id), (0, live.producer_id));
    b.stop().await;
}

/// A transactional id must fit `TransactionLogKey`'s int16-length string: a longer one
/// is INVALID_REQUEST everywhere (Kafka's answer to the other id it cannot take, the
/// empty one), never truncated into another id's key. The longest allowed id works.
#[tokio::test]
async fn a_transactional_id_too_long_for_the_log_key_is_refused() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.connect().await;
    c.create_topic("t", 1).await;
    let longest = "x".repeat(i16::MAX as usize);
    let too_long = format!("{longest}y");
    let ok = init(&mut c, &longest, 60_000).await;
    assert_eq!(ok.error_code, 0);
    // InitProducerId v4 is flexible (compact strings), so the id reaches the broker.
    assert_eq!(init(&mut c, &too_long, 60_000).await.error_code, 42);
    assert_eq!(
        end(&mut c, &too_long, ok.producer_id.0, 0, true, 3).await,
        42
    );
    let found = c
        .call(
            &FindCoordinatorRequest::default()
                .with_key(s(&too_long))
                .with_key_type(1),
            3,
        )
        .await;
    assert_eq!(found.error_code, 42);
    // The longest id was not disturbed by its longer twin.
    let again = init(&mut c, &longest, 60_000).await;
    assert_eq!((again.error_code, again.producer_id), (0, ok.producer_id));
    assert_eq!(again.producer_epoch, ok.producer_epoch + 1);
    b.stop().await;
}

/// A marker for a partition that is offline is not skipped: the transaction stays
/// PrepareCommit (EndTxn answers COORDINATOR_NOT_AVAILABLE, and so does its retry)
/// until the partition is back, and then completes on its own (the coordinator retries
/// when partitions change) with the marker in that partition's log. (When markers
/// skipped offline partitions, the transaction completed at once and the offline
/// partition's records stayed in a transaction no marker would ever close.)
#[tokio::test]
async fn a_marker_for_an_offline_partition_waits_for_it() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.connect().await;
    c.create_topic("good", 1).await;
    c.create_topic("bad", 1).await;
    let r = init(&mut c, "waits", 60_000).await;
    let (pid, epoch) = (r.producer_id.0, r.producer_epoch);
    for topic in ["good", "bad"] {
        assert_eq!(add(&mut c, "waits", pid, epoch, topic, &[0]).await, vec![0]);
        assert_eq!(
            produce_txn(&mut c, "waits", topic, pid, epoch, 0, 2)
                .await
                .0,
            0
        );
    }
    let dir = b.stop_keeping_data().await;
    let seg = dir.path().join("bad-0").join(format!("{:020}.log", 0));
    let saved = seg.with_extension("saved");
    std::fs::rename(&seg, &saved).unwrap();
    std::fs::create_dir(&seg).unwrap();
    let b = TestBroker::start_in(dir, &[]).await;
    let mut c = b.connect().await;
    assert_eq!(describe_state(&mut c, "waits").await, "Ongoing");

    assert_eq!(end(&mut c, "waits", pid, epoch, true, 3).await, 15);
    assert_eq!(describe_state(&mut c, "waits").await, "PrepareCommit");
    // A retry tries the markers again: still not written, still prepared.
    assert_eq!(end(&mut c, "waits", pid, epoch, true, 3).await, 15);
    assert_eq!(describe_state(&mut c, "waits").await, "PrepareCommit");
    let good = b.broker.replicas.partition("good", 0).unwrap();
    assert_eq!(good.last_stable_offset(), good.high_watermark());

    // Repaired, and opened again at the next metadata change. The segment and the
    // directory standing in for it swap places in one step (RENAME_EXCHANGE): a metadata
    // change applied in between would otherwise open the partition with no segment and
    // start it empty.
    rustix::fs::renameat_with(
        rustix::fs::CWD,
        &saved,
        rustix::fs::CWD,
        &seg,
        rustix::fs::RenameFlags::EXCHANGE,
    )
    .unwrap();
    std::fs::remove_dir(&saved).unwrap();
    c.create_topic("unrelated", 1).await;
    let mut state = String::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while state != "CompleteCommit" {
        assert!(
            std::time::Instant::now() < deadline,
            "never completed: {state}"
        );
        state = describe_state(&mut c, "waits").await;
    }
    let bad = b.broker.replicas.partition("bad", 0).unwrap();
    assert_eq!(bad.high_watermark(), 3, "two records and the marker");
    assert_eq!(bad.last_stable_offset(), bad.high_watermark());
    assert_eq!(
        end(&mut c, "waits", pid, epoch, true, 3).await,
        0,
        "a retry is answered"
    );
    b.stop().await;
}

/// Produces one idempotent (non-transactional) batch to partition 0.
async fn produce_idempotent(c: &mut Client, topic: &str, pid: i64) -> i16 {
    let rec = NewRecord {
        key: None,
        value: Some(b"v"),
        timestamp: gregor_broker::util::now_ms(),
        headers: &[],
    };
    let bytes = batch::build_as(
        0,
        Codec::None,
        &[rec],
        batch::Producer {
            id: pid,
            epoch: 0,
            base_sequence: 0,
            attributes: 0,
        },
    )
    .unwrap();
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(s(topic)))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(Bytes::from(bytes)))])]);
    c.call(&req, 9).await.responses[0].partition_responses[0].error_code
}

/// Producers idle past `producer.id.expiration.ms` are swept from the partition's
/// producer state every `producer.id.expiration.check.interval.ms`, even if their ids
/// never come back; a producer with an open transaction stays. (Without the sweep, an
/// entry left only when its own id produced again: the count stayed at 200.)
#[tokio::test]
async fn idle_producers_are_swept_from_partition_state() {
    let b = TestBroker::start(&[
        ("producer.id.expiration.ms", "300"),
        ("producer.id.expiration.check.interval.ms", "50"),
    ])
    .await;
    let mut c = b.connect().await;
    c.create_topic("t", 1).await;
    let open = init(&mut c, "open", 60_000).await;
    let (tpid, tepoch) = (open.producer_id.0, open.producer_epoch);
    assert_eq!(add(&mut c, "open", tpid, tepoch, "t", &[0]).await, vec![0]);
    assert_eq!(
        produce_txn(&mut c, "open", "t", tpid, tepoch, 0, 1).await.0,
        0
    );
    let p = b.broker.replicas.partition("t", 0).unwrap();
    let count = || p.log().unwrap().active_producers().len();
    let mut produced = 0;
    for _ in 0..200 {
        let r = c
            .call(
                &InitProducerIdRequest::default()
                    .with_transaction_timeout_ms(60_000)
                    .with_producer_id(ProducerId(-1))
                    .with_producer_epoch(-1),
                4,
            )
            .await;
        assert_eq!(r.error_code, 0);
        assert_eq!(produce_idempotent(&mut c, "t", r.producer_id.0).await, 0);
        produced += 1;
    }
    assert!(count() > 1, "{produced} producers, {} remembered", count());
    wait_for("idle producers to be swept", || count() == 1).await;
    let left = p.log().unwrap().active_producers();
    assert_eq!(
        left[0].producer_id, tpid,
        "the open transaction's producer stays"
    );
    b.stop().await;
}

/// A transaction marker carries the coordinator epoch: the leader epoch of the
/// `__transaction_state` partition that owns the transactional id (Kafka's
/// EndTransactionMarker value), not a constant.
#[tokio::test]
async fn markers_carry_the_coordinator_epoch() {
    let b = TestBroker::start(&[("transaction.state.log.num.partitions", "1")]).await;
    let mut c = b.connect().await;
    c.create_topic("ce", 1).await;
    let r = init(&mut c, "ce", 60_000).await;
    assert_eq!(r.error_code, 0);
    let pid = r.producer_id.0;
    assert_eq!(add(&mut c, "ce", pid, 0, "ce", &[0]).await, vec![0]);
    assert_eq!(produce_txn(&mut c, "ce", "ce", pid, 0, 0, 1).await, (0, 0));
    assert_eq!(end(&mut c, "ce", pid, 0, true, 3).await, 0);
    let bytes = {
        let p = b.broker.replicas.partition("ce", 0).unwrap();
        let log = p.log().unwrap();
        log.read(1, 1 << 20, true, i64::MAX).unwrap().bytes
    };
    let h = batch::BatchHeader::parse(&bytes).unwrap();
    assert_ne!(
        h.attributes & batch::ATTR_CONTROL,
        0,
        "offset 1 is the marker"
    );
    let payload = &bytes[batch::HEADER_LEN..h.total_size()];
    let rec = gregor_protocol::records::RecordWalker::new(payload, h.record_count)
        .next()
        .unwrap()
        .unwrap();
    let value = rec.value.unwrap();
    // EndTransactionMarker: version (i16), coordinator epoch (i32): the leader epoch
    // of the `__transaction_state` partition when its coordinator took it over, as the
    // metadata says. (A coordinator epoch above 0 needs a leadership change: the cluster
    // tests move it with real brokers, test_replication_faults.py's transactions.)
    let epoch = b
        .broker
        .metadata
        .image()
        .topic("__transaction_state")
        .unwrap()
        .partitions[&0]
        .leader_epoch;
    assert_eq!(i32::from_be_bytes(value[2..6].try_into().unwrap()), epoch);
    b.stop().await;
}

/// EndTxn, AddPartitionsToTxn and AddOffsetsToTxn without a transactional id are
/// INVALID_REQUEST, as Kafka's transaction coordinator answers (not "unknown id").
#[tokio::test]
async fn an_empty_transactional_id_is_an_invalid_request() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.connect().await;
    c.create_topic("empty-id", 1).await;
    assert_eq!(end(&mut c, "", 1, 0, true, 3).await, 42);
    assert_eq!(add(&mut c, "", 1, 0, "empty-id", &[0]).await, vec![42]);
    let offsets = AddOffsetsToTxnRequest::default()
        .with_transactional_id(tid(""))
        .with_producer_id(ProducerId(1))
        .with_producer_epoch(0)
        .with_group_id(GroupId(s("g")));
    assert_eq!(c.call(&offsets, 3).await.error_code, 42);
    b.stop().await;
}
