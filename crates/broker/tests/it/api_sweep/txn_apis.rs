//! Transactions and producers: ids, the transactional APIs, producer state, markers.

use gregor_protocol::kp::messages::*;

use super::common::Client;
use super::support::{
    check, s, Sweep, INVALID_PRODUCER_ID_MAPPING, TRANSACTIONAL_ID_NOT_FOUND,
    UNKNOWN_TOPIC_OR_PARTITION,
};

pub(crate) async fn init_producer_id(c: &mut Client, _cx: &Sweep<'_>, range: (i16, i16)) {
    let seen = std::cell::RefCell::new(Vec::new());
    check(
        c,
        range,
        |_| InitProducerIdRequest::default().with_transaction_timeout_ms(60_000),
        |v, r| {
            assert_eq!(r.error_code, 0, "v{v}");
            assert!(r.producer_id.0 >= 0);
            assert_eq!(r.producer_epoch, 0);
            assert!(
                !seen.borrow().contains(&r.producer_id.0),
                "ids are never reused"
            );
            seen.borrow_mut().push(r.producer_id.0);
        },
    )
    .await
}

pub(crate) async fn add_partitions_to_txn(c: &mut Client, _cx: &Sweep<'_>, range: (i16, i16)) {
    let (min, max) = range;
    // Clients use v0-v3; v4+ batches transactions for brokers.
    check(
        c,
        (min, 3),
        |_| {
            AddPartitionsToTxnRequest::default()
                .with_v3_and_below_transactional_id(TransactionalId(s("t-unknown")))
                .with_v3_and_below_producer_id(ProducerId(1000))
                .with_v3_and_below_topics(vec![
                    add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                        .with_name(TopicName(s("sweep")))
                        .with_partitions(vec![0]),
                ])
        },
        |v, r| {
            let t = &r.results_by_topic_v3_and_below[0];
            assert_eq!(t.name.as_str(), "sweep");
            let p = &t.results_by_partition[0];
            assert_eq!(
                (p.partition_index, p.partition_error_code),
                (0, INVALID_PRODUCER_ID_MAPPING),
                "v{v}"
            );
        },
    )
    .await;
    check(
        c,
        (4, max),
        |_| AddPartitionsToTxnRequest::default(),
        |v, r| {
            assert_eq!(r.error_code, 0, "v{v}");
            assert!(r.results_by_transaction.is_empty());
        },
    )
    .await;
}

pub(crate) async fn add_offsets_to_txn(c: &mut Client, _cx: &Sweep<'_>, range: (i16, i16)) {
    check(
        c,
        range,
        |_| {
            AddOffsetsToTxnRequest::default()
                .with_transactional_id(TransactionalId(s("t-unknown")))
                .with_producer_id(ProducerId(1000))
                .with_group_id(GroupId(s("sweep-g")))
        },
        |v, r| assert_eq!(r.error_code, INVALID_PRODUCER_ID_MAPPING, "v{v}"),
    )
    .await
}

pub(crate) async fn end_txn(c: &mut Client, _cx: &Sweep<'_>, range: (i16, i16)) {
    check(
        c,
        range,
        |_| {
            EndTxnRequest::default()
                .with_transactional_id(TransactionalId(s("t-unknown")))
                .with_producer_id(ProducerId(1000))
                .with_committed(true)
        },
        |v, r| assert_eq!(r.error_code, INVALID_PRODUCER_ID_MAPPING, "v{v}"),
    )
    .await
}

pub(crate) async fn txn_offset_commit(c: &mut Client, _cx: &Sweep<'_>, range: (i16, i16)) {
    check(
        c,
        range,
        |_| {
            TxnOffsetCommitRequest::default()
                .with_transactional_id(TransactionalId(s("t-unknown")))
                .with_group_id(GroupId(s("sweep-g")))
                .with_producer_id(ProducerId(1000))
                .with_generation_id(-1)
                .with_topics(vec![
                    txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
                        .with_name(TopicName(s("sweep")))
                        .with_partitions(vec![
                            txn_offset_commit_request::TxnOffsetCommitRequestPartition::default()
                                .with_partition_index(0)
                                .with_committed_offset(1),
                        ]),
                ])
        },
        |v, r| {
            let p = &r.topics[0].partitions[0];
            assert_eq!(p.partition_index, 0);
            // KIP-890 verification: the producer has no transaction here.
            assert_eq!(p.error_code, INVALID_PRODUCER_ID_MAPPING, "v{v}");
        },
    )
    .await
}

pub(crate) async fn describe_transactions(c: &mut Client, _cx: &Sweep<'_>, range: (i16, i16)) {
    check(
        c,
        range,
        |_| {
            DescribeTransactionsRequest::default()
                .with_transactional_ids(vec![TransactionalId(s("t-unknown"))])
        },
        |v, r| {
            let t = &r.transaction_states[0];
            assert_eq!(t.transactional_id.as_str(), "t-unknown");
            assert_eq!(t.error_code, TRANSACTIONAL_ID_NOT_FOUND, "v{v}");
        },
    )
    .await
}

pub(crate) async fn list_transactions(c: &mut Client, _cx: &Sweep<'_>, range: (i16, i16)) {
    check(
        c,
        range,
        |_| ListTransactionsRequest::default(),
        |v, r| {
            assert_eq!(r.error_code, 0, "v{v}");
            assert!(r.transaction_states.is_empty(), "v{v}: none ever began");
        },
    )
    .await
}

pub(crate) async fn describe_producers(c: &mut Client, _cx: &Sweep<'_>, range: (i16, i16)) {
    check(
        c,
        range,
        |_| {
            DescribeProducersRequest::default().with_topics(vec![
                describe_producers_request::TopicRequest::default()
                    .with_name(TopicName(s("sweep")))
                    .with_partition_indexes(vec![0, 4]),
            ])
        },
        |v, r| {
            let ps = &r.topics[0].partitions;
            assert_eq!((ps[0].partition_index, ps[0].error_code), (0, 0), "v{v}");
            assert!(ps[0].active_producers.is_empty(), "plain batches");
            assert_eq!(ps[1].error_code, UNKNOWN_TOPIC_OR_PARTITION, "v{v}");
        },
    )
    .await
}

pub(crate) async fn write_txn_markers(c: &mut Client, _cx: &Sweep<'_>, range: (i16, i16)) {
    check(
        c,
        range,
        |_| {
            WriteTxnMarkersRequest::default().with_markers(vec![
                write_txn_markers_request::WritableTxnMarker::default()
                    .with_producer_id(ProducerId(999_999))
                    .with_producer_epoch(0)
                    .with_transaction_result(false)
                    .with_topics(vec![
                        write_txn_markers_request::WritableTxnMarkerTopic::default()
                            .with_name(TopicName(s("sweep")))
                            .with_partition_indexes(vec![0, 9]),
                    ]),
            ])
        },
        |v, r| {
            let ps = &r.markers[0].topics[0].partitions;
            assert_eq!(ps[0].error_code, 0, "v{v}: the marker is written");
            assert_eq!(ps[1].error_code, UNKNOWN_TOPIC_OR_PARTITION, "v{v}");
        },
    )
    .await
}
