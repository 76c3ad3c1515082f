//! Transactions v2 (KIP-890 part 2) and feature levels (KIP-584) at the wire.
//!
//! None of the clients the Python suite runs (librdkafka 2.16, kafka-python 3.0.12,
//! kafkajs) speaks transactions v2, so these tests drive the broker side directly:
//! EndTxn v5 bumping the epoch at every end (the answer's producer id and epoch, the
//! markers' epoch fencing late batches, retries, empty aborts), transactional produce
//! adding its partitions implicitly, TxnOffsetCommit v5 adding the group implicitly,
//! and the v1 protocol on the same broker; then UpdateFeatures and ApiVersions, with
//! the levels surviving a restart.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use crate::common;

use bytes::Bytes;
use common::{Client, TestBroker};
use gregor_broker::handlers::SUPPORTED;
use gregor_protocol::batch::{self, NewRecord};
use gregor_protocol::compression::Codec;
use gregor_protocol::kp::messages::produce_request::{PartitionProduceData, TopicProduceData};
use gregor_protocol::kp::messages::*;
use gregor_protocol::kp::protocol::StrBytes;

const INVALID_PRODUCER_EPOCH: i16 = 47;
const INVALID_TXN_STATE: i16 = 48;
const PRODUCER_FENCED: i16 = 90;
const INVALID_UPDATE_VERSION: i16 = 95;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn tid(v: &str) -> TransactionalId {
    TransactionalId(s(v))
}

async fn init(c: &mut Client, id: &str) -> (i64, i16) {
    let req = InitProducerIdRequest::default()
        .with_transactional_id(Some(tid(id)))
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    let r = c.call(&req, 5).await;
    assert_eq!(r.error_code, 0);
    (r.producer_id.0, r.producer_epoch)
}

/// EndTxn at `v`: (error, producer id, epoch) of the answer.
async fn end(
    c: &mut Client,
    id: &str,
    pid: i64,
    epoch: i16,
    commit: bool,
    v: i16,
) -> (i16, i64, i16) {
    let req = EndTxnRequest::default()
        .with_transactional_id(tid(id))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_committed(commit);
    let r = c.call(&req, v).await;
    (r.error_code, r.producer_id.0, r.producer_epoch)
}

fn txn_produce(id: &str, topic: &str, pid: i64, epoch: i16, seq: i32, n: usize) -> ProduceRequest {
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
    ProduceRequest::default()
        .with_transactional_id(Some(tid(id)))
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(s(topic)))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(Bytes::from(bytes)))])])
}

fn produce_max() -> i16 {
    SUPPORTED
        .iter()
        .find(|s| s.key == ApiKey::Produce)
        .map_or(0, |s| s.max)
}

/// A transactions-v2 produce (no AddPartitionsToTxn before it): Produce v12 when the
/// broker advertises it; until then the same entry point Produce v12 takes (the
/// implicit add) followed by the same batch at v11, which is v12 on the wire.
async fn produce_v2(
    b: &TestBroker,
    c: &mut Client,
    id: &str,
    topic: &str,
    pid: i64,
    epoch: i16,
    seq: i32,
) -> (i16, i64) {
    let req = txn_produce(id, topic, pid, epoch, seq, 2);
    let r = if produce_max() >= 12 {
        c.call(&req, 12).await
    } else {
        gregor_broker::handlers::produce_txn::add_implicitly(&b.broker, 12, &req).await;
        c.call(&req, 11).await
    };
    let p = &r.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

/// A v1 produce (v9): the partition must have been added explicitly.
async fn produce_v1(c: &mut Client, id: &str, topic: &str, pid: i64, epoch: i16, seq: i32) -> i16 {
    let r = c.call(&txn_produce(id, topic, pid, epoch, seq, 2), 9).await;
    r.responses[0].partition_responses[0].error_code
}

/// The producer's epoch as the partition knows it (DescribeProducers).
async fn partition_epoch(c: &mut Client, topic: &str, pid: i64) -> Option<i32> {
    let req = DescribeProducersRequest::default().with_topics(vec![
        describe_producers_request::TopicRequest::default()
            .with_name(TopicName(s(topic)))
            .with_partition_indexes(vec![0]),
    ]);
    let r = c.call(&req, 0).await;
    r.topics[0].partitions[0]
        .active_producers
        .iter()
        .find(|p| p.producer_id.0 == pid)
        .map(|p| p.producer_epoch)
}

/// (state, epoch, partitions) from DescribeTransactions.
async fn describe(c: &mut Client, id: &str) -> (String, i16, usize) {
    let r = c
        .call(
            &DescribeTransactionsRequest::default().with_transactional_ids(vec![tid(id)]),
            0,
        )
        .await;
    let t = &r.transaction_states[0];
    assert_eq!(t.error_code, 0);
    (
        t.transaction_state.to_string(),
        t.producer_epoch,
        t.topics.iter().map(|t| t.partitions.len()).sum(),
    )
}

/// Latest offset, read_committed.
async fn committed_end(c: &mut Client, topic: &str) -> i64 {
    use gregor_protocol::kp::messages::list_offsets_request::{
        ListOffsetsPartition, ListOffsetsTopic,
    };
    let req = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(1)
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(TopicName(s(topic)))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_timestamp(-1)])]);
    c.call(&req, 7).await.topics[0].partitions[0].offset
}

/// The aborted transactions a read_committed fetch from 0 reports: (pid, first offset).
async fn aborted(c: &mut Client, topic: &str) -> Vec<(i64, i64)> {
    use gregor_protocol::kp::messages::fetch_request::{FetchPartition, FetchTopic};
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_isolation_level(1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(s(topic)))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 20)])]);
    let r = c.call(&req, 11).await;
    let p = &r.responses[0].partitions[0];
    assert_eq!(p.error_code, 0);
    p.aborted_transactions
        .as_ref()
        .map(|a| {
            a.iter()
                .map(|t| (t.producer_id.0, t.first_offset))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn v2_ends_bump_the_epoch_and_fence_the_ended_transaction() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.connect().await;
    c.create_topic("t", 1).await;
    let (pid, epoch) = init(&mut c, "x").await;
    assert_eq!(epoch, 0);

    // Transaction 1: no AddPartitionsToTxn; the produce adds the partition.
    assert_eq!(produce_v2(&b, &mut c, "x", "t", pid, 0, 0).await, (0, 0));
    assert_eq!(describe(&mut c, "x").await, ("Ongoing".into(), 0, 1));
    assert_eq!(committed_end(&mut c, "t").await, 0, "not yet committed");
    assert_eq!(end(&mut c, "x", pid, 0, true, 5).await, (0, pid, 1));
    // Records 0-1 and the marker at 2: all readable, and the partition saw epoch 1.
    assert_eq!(committed_end(&mut c, "t").await, 3);
    assert_eq!(partition_epoch(&mut c, "t", pid).await, Some(1));
    assert_eq!(describe(&mut c, "x").await, ("CompleteCommit".into(), 1, 0));
    // The client's retry of that EndTxn (its epoch from before the bump) is answered
    // with the new epoch; the same request at the new epoch is a new end with
    // nothing open.
    assert_eq!(end(&mut c, "x", pid, 0, true, 5).await, (0, pid, 1));
    assert_eq!(
        end(&mut c, "x", pid, 1, true, 5).await,
        (INVALID_TXN_STATE, -1, -1)
    );
    // A late batch of the ended transaction (epoch 0) is fenced on the partition.
    assert_eq!(
        produce_v2(&b, &mut c, "x", "t", pid, 0, 2).await.0,
        INVALID_PRODUCER_EPOCH
    );

    // Transaction 2 at epoch 1, sequence 0 again: aborted, epoch 2.
    assert_eq!(produce_v2(&b, &mut c, "x", "t", pid, 1, 0).await, (0, 3));
    assert_eq!(end(&mut c, "x", pid, 1, false, 5).await, (0, pid, 2));
    assert_eq!(aborted(&mut c, "t").await, vec![(pid, 3)]);
    assert_eq!(committed_end(&mut c, "t").await, 6);
    assert_eq!(partition_epoch(&mut c, "t", pid).await, Some(2));
    // An abort with nothing added (KIP-890 allows it) only bumps the epoch.
    assert_eq!(end(&mut c, "x", pid, 2, false, 5).await, (0, pid, 3));
    assert_eq!(committed_end(&mut c, "t").await, 6, "no marker written");
    // An epoch from two ends ago is fenced.
    assert_eq!(
        end(&mut c, "x", pid, 1, false, 5).await,
        (PRODUCER_FENCED, -1, -1)
    );
    b.stop().await;
}

/// TxnOffsetCommit v5 with `transaction.version` 2: the group joins the transaction
/// without AddOffsetsToTxn, and the offset is committed with the transaction.
#[tokio::test]
async fn v2_offset_commits_add_the_group_implicitly() {
    use gregor_protocol::kp::messages::txn_offset_commit_request::{
        TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
    };
    let b = TestBroker::start(&[]).await;
    let mut c = b.connect().await;
    c.create_topic("in", 1).await;
    c.create_topic("out", 1).await;
    let (pid, _) = init(&mut c, "eos").await;
    let commit_offset = |epoch: i16, offset: i64| {
        TxnOffsetCommitRequest::default()
            .with_transactional_id(tid("eos"))
            .with_group_id(GroupId(s("g")))
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch)
            .with_generation_id(-1)
            .with_member_id(s(""))
            .with_topics(vec![TxnOffsetCommitRequestTopic::default()
                .with_name(TopicName(s("in")))
                .with_partitions(vec![TxnOffsetCommitRequestPartition::default()
                    .with_partition_index(0)
                    .with_committed_offset(offset)])])
    };
    let code = |r: TxnOffsetCommitResponse| r.topics[0].partitions[0].error_code;
    assert_eq!(produce_v2(&b, &mut c, "eos", "out", pid, 0, 0).await.0, 0);
    // v4 keeps the v1 rule: the group must have been added first.
    assert_eq!(
        code(c.call(&commit_offset(0, 7), 4).await),
        INVALID_TXN_STATE
    );
    assert_eq!(code(c.call(&commit_offset(0, 7), 5).await), 0);
    assert_eq!(
        describe(&mut c, "eos").await.2,
        2,
        "out-0 and the offsets partition"
    );
    assert_eq!(end(&mut c, "eos", pid, 0, true, 5).await, (0, pid, 1));
    let fetch = OffsetFetchRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_topics(Some(vec![
            offset_fetch_request::OffsetFetchRequestTopic::default()
                .with_name(TopicName(s("in")))
                .with_partition_indexes(vec![0]),
        ]));
    let r = c.call(&fetch, 7).await;
    assert_eq!(r.topics[0].partitions[0].committed_offset, 7);
    // The next transaction's offsets go in at the bumped epoch; the old one is fenced.
    assert_eq!(code(c.call(&commit_offset(0, 9), 5).await), PRODUCER_FENCED);
    assert_eq!(code(c.call(&commit_offset(1, 9), 5).await), 0);
    assert_eq!(end(&mut c, "eos", pid, 1, false, 5).await, (0, pid, 2));
    let r = c.call(&fetch, 7).await;
    assert_eq!(r.topics[0].partitions[0].committed_offset, 7, "aborted");
    b.stop().await;
}

/// The v1 protocol on a broker with `transaction.version` 2: EndTxn v4 does not bump,
/// a produce at v11 or below needs AddPartitionsToTxn. And with the feature
/// downgraded, v5 requests follow the v1 protocol too.
#[tokio::test]
async fn v1_clients_and_a_downgraded_feature_keep_the_v1_protocol() {
    use gregor_protocol::kp::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
    let b = TestBroker::start(&[]).await;
    let mut c = b.connect().await;
    c.create_topic("t", 1).await;
    let add = |id: &str, pid: i64, epoch: i16| {
        AddPartitionsToTxnRequest::default()
            .with_v3_and_below_transactional_id(tid(id))
            .with_v3_and_below_producer_id(ProducerId(pid))
            .with_v3_and_below_producer_epoch(epoch)
            .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
                .with_name(TopicName(s("t")))
                .with_partitions(vec![0])])
    };
    let (pid, _) = init(&mut c, "old").await;
    assert_eq!(
        produce_v1(&mut c, "old", "t", pid, 0, 0).await,
        INVALID_TXN_STATE
    );
    let r = c.call(&add("old", pid, 0), 3).await;
    assert_eq!(
        r.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code,
        0
    );
    assert_eq!(produce_v1(&mut c, "old", "t", pid, 0, 0).await, 0);
    assert_eq!(end(&mut c, "old", pid, 0, true, 4).await.0, 0);
    assert_eq!(partition_epoch(&mut c, "t", pid).await, Some(0), "no bump");
    assert_eq!(describe(&mut c, "old").await.1, 0);
    // The same producer goes on at epoch 0.
    let r = c.call(&add("old", pid, 0), 3).await;
    assert_eq!(
        r.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code,
        0
    );
    assert_eq!(produce_v1(&mut c, "old", "t", pid, 0, 2).await, 0);
    assert_eq!(end(&mut c, "old", pid, 0, false, 4).await.0, 0);

    // Downgrade transaction.version to 1: EndTxn v5 no longer bumps.
    let r = c.call(&update("transaction.version", 1, 2, false), 1).await;
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    let (pid2, _) = init(&mut c, "v5-on-tv1").await;
    let r = c.call(&add("v5-on-tv1", pid2, 0), 3).await;
    assert_eq!(
        r.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code,
        0
    );
    assert_eq!(produce_v1(&mut c, "v5-on-tv1", "t", pid2, 0, 0).await, 0);
    assert_eq!(
        end(&mut c, "v5-on-tv1", pid2, 0, true, 5).await,
        (0, pid2, 0)
    );
    b.stop().await;
}

fn update(name: &str, level: i16, upgrade_type: i8, validate_only: bool) -> UpdateFeaturesRequest {
    UpdateFeaturesRequest::default()
        .with_timeout_ms(5000)
        .with_validate_only(validate_only)
        .with_feature_updates(vec![update_features_request::FeatureUpdateKey::default()
            .with_feature(s(name))
            .with_max_version_level(level)
            .with_upgrade_type(upgrade_type)])
}

/// (finalized levels, epoch) from ApiVersions v3.
async fn finalized(c: &mut Client) -> (Vec<(String, i16)>, i64) {
    let r = c
        .call(
            &ApiVersionsRequest::default()
                .with_client_software_name(s("t"))
                .with_client_software_version(s("1")),
            3,
        )
        .await;
    let supported: Vec<(String, i16, i16)> = r
        .supported_features
        .iter()
        .map(|f| (f.name.to_string(), f.min_version, f.max_version))
        .collect();
    assert_eq!(
        supported,
        vec![
            ("metadata.version".to_string(), 7, 29),
            ("transaction.version".to_string(), 0, 2),
            ("group.version".to_string(), 0, 1),
            ("eligible.leader.replicas.version".to_string(), 0, 1),
        ]
    );
    let mut levels: Vec<(String, i16)> = r
        .finalized_features
        .iter()
        .map(|f| {
            assert_eq!(f.min_version_level, f.max_version_level);
            (f.name.to_string(), f.max_version_level)
        })
        .collect();
    levels.sort();
    (levels, r.finalized_features_epoch)
}

fn levels(l: &[(&str, i16)]) -> Vec<(String, i16)> {
    let mut v: Vec<(String, i16)> = l.iter().map(|(n, x)| (n.to_string(), *x)).collect();
    v.sort();
    v
}

#[tokio::test]
async fn update_features_changes_levels_durably() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.connect().await;
    let (start, epoch0) = finalized(&mut c).await;
    assert_eq!(
        start,
        levels(&[
            ("eligible.leader.replicas.version", 1),
            ("group.version", 1),
            ("metadata.version", 29),
            ("transaction.version", 2)
        ]),
        "a new cluster gets Kafka 4.2's levels"
    );
    // Refusals, each with INVALID_UPDATE_VERSION and nothing changed.
    for (name, level, kind) in [
        ("transaction.version", 1, 1), // a downgrade typed as an upgrade
        ("transaction.version", 3, 1), // beyond the supported range
        ("metadata.version", 28, 2),   // metadata.version never goes down
        ("metadata.version", 28, 3),
        ("group.version", 1, 9), // unknown upgrade type
        ("share.version", 1, 1), // not supported here
    ] {
        let r = c.call(&update(name, level, kind, false), 1).await;
        assert_eq!(r.error_code, INVALID_UPDATE_VERSION, "{name}={level}");
        assert_eq!(r.results[0].error_code, INVALID_UPDATE_VERSION);
        assert!(r.error_message.is_some());
    }
    // validate_only changes nothing.
    let r = c.call(&update("transaction.version", 0, 2, true), 1).await;
    assert_eq!(r.error_code, 0);
    assert_eq!(finalized(&mut c).await, (start.clone(), epoch0));
    // A safe downgrade to 0 removes the feature; v0's allow_downgrade is one too.
    let r = c.call(&update("transaction.version", 0, 2, false), 2).await;
    assert_eq!((r.error_code, r.results.len()), (0, 0));
    let v0 = UpdateFeaturesRequest::default()
        .with_timeout_ms(5000)
        .with_feature_updates(vec![update_features_request::FeatureUpdateKey::default()
            .with_feature(s("group.version"))
            .with_max_version_level(0)
            .with_allow_downgrade(true)]);
    let r = c.call(&v0, 0).await;
    assert_eq!((r.error_code, r.results[0].error_code), (0, 0));
    let (now, epoch1) = finalized(&mut c).await;
    assert_eq!(
        now,
        levels(&[
            ("eligible.leader.replicas.version", 1),
            ("metadata.version", 29)
        ])
    );
    assert!(epoch1 > epoch0, "the epoch moves with the levels");
    // Upgrade again; the levels survive a restart.
    let r = c.call(&update("transaction.version", 2, 1, false), 1).await;
    assert_eq!(r.error_code, 0);
    let before = finalized(&mut c).await;
    assert!(before.1 > epoch1);
    drop(c);
    let dir = b.stop_keeping_data().await;
    let b = TestBroker::start_in(dir, &[]).await;
    let mut c = b.connect().await;
    // The levels are the same; the epoch (the metadata offset) only grows: the restarted
    // broker's registration is metadata too.
    let after = finalized(&mut c).await;
    assert_eq!(after.0, before.0);
    assert!(after.1 >= before.1, "{after:?} after {before:?}");
    assert!(gregor_broker::txn::v2_finalized(&b.broker.metadata));
    b.stop().await;
}

/// The last epoch: EndTxn v5 at epoch 32766 writes its markers at 32767 and moves the
/// transactional id to a new producer id at epoch 0; the client's retry under the old
/// id is answered with the new one, and the new id produces from sequence 0.
#[tokio::test]
async fn v2_epoch_overflow_moves_to_a_new_producer_id() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.connect().await;
    c.create_topic("t", 1).await;
    // Each InitProducerId bumps the epoch: walk it up to the last one.
    let (pid, mut epoch) = init(&mut c, "old-age").await;
    while epoch < i16::MAX - 1 {
        let (p, e) = init(&mut c, "old-age").await;
        assert_eq!((p, e), (pid, epoch + 1));
        epoch = e;
    }
    assert_eq!(
        produce_v2(&b, &mut c, "old-age", "t", pid, epoch, 0)
            .await
            .0,
        0
    );
    let (code, new_pid, new_epoch) = end(&mut c, "old-age", pid, epoch, true, 5).await;
    assert_eq!((code, new_epoch), (0, 0));
    assert_ne!(new_pid, pid);
    assert_eq!(
        partition_epoch(&mut c, "t", pid).await,
        Some(i32::from(i16::MAX)),
        "the markers carry the overflow epoch"
    );
    assert_eq!(committed_end(&mut c, "t").await, 3);
    // The retry under the old id and epoch.
    assert_eq!(
        end(&mut c, "old-age", pid, epoch, true, 5).await,
        (0, new_pid, 0)
    );
    assert_eq!(
        produce_v2(&b, &mut c, "old-age", "t", new_pid, 0, 0).await,
        (0, 3)
    );
    assert_eq!(
        end(&mut c, "old-age", new_pid, 0, false, 5).await,
        (0, new_pid, 1)
    );
    assert_eq!(aborted(&mut c, "t").await, vec![(new_pid, 3)]);
    b.stop().await;
}
