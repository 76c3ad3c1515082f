//! Transactions in the partitions: the stable offset, aborted lists, markers, producer expiry.

use bytes::Bytes;
use gregor_protocol::batch::{self, NewRecord};
use gregor_protocol::compression::Codec;
use gregor_protocol::kp::messages::produce_request::{PartitionProduceData, TopicProduceData};
use gregor_protocol::kp::messages::*;

use super::common::{Client, TestBroker};
use super::support::{add, end, fetch_committed, init, latest, produce_txn, s, tid, wait_for};

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

async fn describe_state(c: &mut Client, id: &str) -> String {
    let d = c
        .call(
            &DescribeTransactionsRequest::default().with_transactional_ids(vec![tid(id)]),
            0,
        )
        .await;
    d.transaction_states[0].transaction_state.to_string()
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
