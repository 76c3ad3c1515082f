//! ShareFetch and ShareAcknowledge v2 (KIP-1222 RENEW, KIP-1206 acquire mode) on the
//! wire. A renewal keeps the record with its holder (it can still accept it, nobody
//! else can touch it, its delivery count stays); RENEW needs `IsRenewAck`; a renewing
//! ShareFetch only acknowledges. How far a renewal moves the lock is checked on the
//! share-partition itself (`share::partition` tests), with explicit instants.

use bytes::Bytes;
use gregor_protocol::kp::messages::*;
use uuid::Uuid;

use super::api_sweep::support::{one_record_batch, s, INVALID_REQUEST};
use super::common::{Client, TestBroker};

const GROUP: &str = "sg-renew";
const INVALID_RECORD_STATE: i16 = 121;
const ACCEPT: i8 = 1;
const RENEW: i8 = 4;

fn acks(batches: &[(i64, i64, i8)]) -> Vec<share_fetch_request::AcknowledgementBatch> {
    batches
        .iter()
        .map(|(f, l, t)| {
            share_fetch_request::AcknowledgementBatch::default()
                .with_first_offset(*f)
                .with_last_offset(*l)
                .with_acknowledge_types(vec![*t])
        })
        .collect()
}

fn fetch(member: &str, epoch: i32, topic: Uuid, ack: &[(i64, i64, i8)]) -> ShareFetchRequest {
    use share_fetch_request::{FetchPartition, FetchTopic};
    ShareFetchRequest::default()
        .with_group_id(Some(GroupId(s(GROUP))))
        .with_member_id(Some(s(member)))
        .with_share_session_epoch(epoch)
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_max_records(100)
        .with_topics(vec![FetchTopic::default()
            .with_topic_id(topic)
            .with_partitions(vec![FetchPartition::default()
                .with_partition_index(0)
                .with_acknowledgement_batches(acks(ack))])])
}

/// A renewing ShareFetch: acknowledgements only, every fetch limit 0.
fn renew_fetch(member: &str, epoch: i32, topic: Uuid, ack: &[(i64, i64, i8)]) -> ShareFetchRequest {
    fetch(member, epoch, topic, ack)
        .with_max_bytes(0)
        .with_max_records(0)
        .with_is_renew_ack(true)
}

fn acknowledge(
    member: &str,
    epoch: i32,
    topic: Uuid,
    (f, l, t): (i64, i64, i8),
    renew: bool,
) -> ShareAcknowledgeRequest {
    use share_acknowledge_request::{AcknowledgePartition, AcknowledgeTopic, AcknowledgementBatch};
    ShareAcknowledgeRequest::default()
        .with_group_id(Some(GroupId(s(GROUP))))
        .with_member_id(Some(s(member)))
        .with_share_session_epoch(epoch)
        .with_is_renew_ack(renew)
        .with_topics(vec![AcknowledgeTopic::default()
            .with_topic_id(topic)
            .with_partitions(vec![AcknowledgePartition::default()
                .with_partition_index(0)
                .with_acknowledgement_batches(vec![
                    AcknowledgementBatch::default()
                        .with_first_offset(f)
                        .with_last_offset(l)
                        .with_acknowledge_types(vec![t]),
                ])])])
}

async fn produce(c: &mut Client, n: usize) {
    for i in 0..n {
        let req = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(5000)
            .with_topic_data(vec![produce_request::TopicProduceData::default()
                .with_name(TopicName(s("renew")))
                .with_partition_data(vec![
                    produce_request::PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(Bytes::from(one_record_batch(
                            format!("r-{i}").as_bytes(),
                        )))),
                ])]);
        let r = c.call(&req, 9).await;
        assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    }
}

/// (first, last, delivery count) of what a ShareFetch acquired.
fn acquired(r: &ShareFetchResponse) -> Vec<(i64, i64, i16)> {
    r.responses
        .iter()
        .flat_map(|t| &t.partitions)
        .flat_map(|p| &p.acquired_records)
        .map(|a| (a.first_offset, a.last_offset, a.delivery_count))
        .collect()
}

fn ack_error(r: &ShareFetchResponse) -> i16 {
    r.responses[0].partitions[0].acknowledge_error_code
}

#[tokio::test]
async fn renew_keeps_records_with_their_holder() {
    let b = TestBroker::start(&[("share.auto.offset.reset", "earliest")]).await;
    let mut c = b.connect().await;
    c.create_topic("renew", 1).await;
    produce(&mut c, 3).await;
    let topic = b.broker.metadata.image().topic("renew").unwrap().id;
    let hb = ShareGroupHeartbeatRequest::default()
        .with_group_id(GroupId(s(GROUP)))
        .with_member_id(s("m1"))
        .with_member_epoch(0)
        .with_subscribed_topic_names(Some(vec![TopicName(s("renew"))]));
    assert_eq!(c.call(&hb, 1).await.error_code, 0);

    // m1 acquires 0..=2 with a v2 fetch in record-limit mode.
    let r = c
        .call(&fetch("m1", 0, topic, &[]).with_share_acquire_mode(1), 2)
        .await;
    assert_eq!(r.error_code, 0, "{r:?}");
    assert_eq!(acquired(&r), vec![(0, 2, 1)]);
    assert_eq!(r.acquisition_lock_timeout_ms, 30_000);

    // RENEW without IsRenewAck is no acknowledgement type: INVALID_REQUEST, nothing
    // changes. A renewing fetch that also fetches is refused as a whole.
    let r = c.call(&fetch("m1", 1, topic, &[(0, 0, RENEW)]), 2).await;
    assert_eq!(ack_error(&r), INVALID_REQUEST);
    assert!(acquired(&r).is_empty(), "m1 holds everything there is");
    let r = c
        .call(
            &renew_fetch("m1", 2, topic, &[(0, 0, RENEW)]).with_max_records(5),
            2,
        )
        .await;
    assert_eq!(r.error_code, INVALID_REQUEST);
    let r = c
        .call(&fetch("m1", 2, topic, &[]).with_share_acquire_mode(7), 2)
        .await;
    assert_eq!(r.error_code, INVALID_REQUEST, "an unknown acquire mode");

    // A renewing fetch: answered at once, acknowledgements only.
    let r = c
        .call(&renew_fetch("m1", 2, topic, &[(0, 1, RENEW)]), 2)
        .await;
    assert_eq!((r.error_code, ack_error(&r)), (0, 0), "{r:?}");
    assert!(acquired(&r).is_empty());
    // ShareAcknowledge v2 renews too, and tells the lock duration.
    let r = c
        .call(&acknowledge("m1", 3, topic, (2, 2, RENEW), true), 2)
        .await;
    assert_eq!(r.error_code, 0);
    assert_eq!(r.responses[0].partitions[0].error_code, 0);
    assert_eq!(r.acquisition_lock_timeout_ms, 30_000);
    // v1 has no RENEW.
    let r = c
        .call(&acknowledge("m1", 4, topic, (2, 2, RENEW), false), 1)
        .await;
    assert_eq!(r.responses[0].partitions[0].error_code, INVALID_REQUEST);

    // Renewed records are still m1's alone: m2 gets nothing and cannot renew them.
    let r = c.call(&fetch("m2", 0, topic, &[]), 2).await;
    assert!(acquired(&r).is_empty());
    let r = c
        .call(&renew_fetch("m2", 1, topic, &[(0, 0, RENEW)]), 2)
        .await;
    assert_eq!(ack_error(&r), INVALID_RECORD_STATE);

    // m1 finishes: accepting works after renewals, and the start moves past them.
    let r = c
        .call(&acknowledge("m1", 5, topic, (0, 2, ACCEPT), false), 2)
        .await;
    assert_eq!(r.responses[0].partitions[0].error_code, 0);
    let r = c.call(&fetch("m2", 2, topic, &[]), 2).await;
    assert!(acquired(&r).is_empty(), "accepted records never come back");
    b.stop().await;
}
