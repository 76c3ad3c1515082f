//! Bad input never takes the broker down: each case closes its own connection or gets
//! an error code, and another client is served normally afterwards.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use crate::common;

use bytes::Bytes;
use common::{Client, TestBroker};
use gregor_protocol::batch::{self, NewRecord};
use gregor_protocol::compression::Codec;
use gregor_protocol::kp::messages::produce_request::{PartitionProduceData, TopicProduceData};
use gregor_protocol::kp::messages::*;
use gregor_protocol::kp::protocol::StrBytes;

async fn assert_still_serving(b: &TestBroker) {
    let mut c = b.connect().await;
    let resp = c.call(&ApiVersionsRequest::default(), 0).await;
    assert_eq!(resp.error_code, 0);
    assert!(resp.api_keys.iter().any(|k| k.api_key == 0));
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut v = (body.len() as i32).to_be_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

#[tokio::test]
async fn malformed_frames_close_only_their_connection() {
    let b = TestBroker::start(&[("socket.request.max.bytes", "1048576")]).await;
    let bystander = &mut b.connect().await;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("negative length", (-5i32).to_be_bytes().to_vec()),
        (
            "oversized frame",
            (200 * 1024 * 1024i32).to_be_bytes().to_vec(),
        ),
        ("shorter than a header", frame(&[0, 18])),
        (
            "unknown api key",
            frame(&[0x27, 0x0f, 0, 0, 0, 0, 0, 1, 0, 0]),
        ),
        (
            "unsupported version",
            frame(&[0, 3, 0, 99, 0, 0, 0, 1, 0, 0]),
        ),
        (
            "produce v0",
            frame(&[0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]),
        ),
        // Metadata v0 whose topic array claims 54 million entries (8 bytes of input):
        // the generated decoder would pre-allocate gigabytes without the vendored fix.
        (
            "huge array count",
            frame(&[
                0, 3, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0x03, 0x3c, 0x0c, 0x00, 0xb6,
            ]),
        ),
        (
            "garbage body",
            frame(&[
                0, 1, 0, 11, 0, 0, 0, 9, 0xde, 0xad, 0xbe, 0xef, 0xff, 0xff, 0xff, 0xff, 1, 2, 3,
            ]),
        ),
    ];
    for (what, bytes) in cases {
        let mut c = b.connect().await;
        c.send_raw(&bytes).await;
        assert!(c.is_closed().await, "{what}: connection should be closed");
        let req = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("gregor-test"))
            .with_client_software_version(StrBytes::from_static_str("1.0"));
        let resp = bystander.call(&req, 3).await;
        assert_eq!(resp.error_code, 0, "{what}: bystander still served");
    }
    b.stop().await;
}

#[tokio::test]
async fn api_versions_v3_validates_client_software_fields() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.connect().await;
    let bad = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("not ok!"));
    assert_eq!(c.call(&bad, 3).await.error_code, 42, "INVALID_REQUEST");
    b.stop().await;
}

#[tokio::test]
async fn client_vanishing_mid_request_is_harmless() {
    let b = TestBroker::start(&[]).await;
    for _ in 0..20 {
        let mut c = b.connect().await;
        c.send_raw(&100i32.to_be_bytes()).await;
        c.send_raw(&[0, 3, 0, 1]).await;
        drop(c);
    }
    assert_still_serving(&b).await;
    b.stop().await;
}

#[tokio::test]
async fn unsupported_api_versions_version_gets_kip511_answer() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.connect().await;
    // ApiVersions v127 with a body we cannot know: the answer is v0 with error 35.
    c.send_raw(&frame(&[0, 18, 0, 127, 0, 0, 0, 42, 0, 0, 1, 2, 3]))
        .await;
    let mut resp = c.read_frame().await.unwrap();
    let header =
        <ResponseHeader as gregor_protocol::kp::protocol::Decodable>::decode(&mut resp, 0).unwrap();
    assert_eq!(header.correlation_id, 42);
    let body =
        <ApiVersionsResponse as gregor_protocol::kp::protocol::Decodable>::decode(&mut resp, 0)
            .unwrap();
    assert_eq!(body.error_code, 35);
    let produce = body.api_keys.iter().find(|k| k.api_key == 0).unwrap();
    let spec = gregor_broker::handlers::SUPPORTED
        .iter()
        .find(|s| s.key as i16 == 0)
        .unwrap();
    assert_eq!(
        (produce.min_version, produce.max_version),
        (spec.min, spec.max)
    );
    b.stop().await;
}

async fn create_topic(c: &mut Client, name: &str, partitions: i32) {
    let req = CreateTopicsRequest::default().with_topics(vec![
        create_topics_request::CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_string(name.into())))
            .with_num_partitions(partitions)
            .with_replication_factor(1),
    ]);
    let resp = c.call(&req, 7).await;
    assert_eq!(
        resp.topics[0].error_code, 0,
        "{:?}",
        resp.topics[0].error_message
    );
}

fn produce_req(topic: &str, partition: i32, acks: i16, records: Vec<u8>) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.into())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(Bytes::from(records)))])])
}

fn sample_batch(n: usize) -> Vec<u8> {
    let vals: Vec<Vec<u8>> = (0..n).map(|i| format!("value-{i}").into_bytes()).collect();
    let recs: Vec<NewRecord<'_>> = vals
        .iter()
        .map(|v| NewRecord {
            key: Some(b"k"),
            value: Some(v),
            timestamp: gregor_broker::util::now_ms(),
            headers: &[],
        })
        .collect();
    batch::build(0, Codec::None, &recs).unwrap()
}

fn partition_error(resp: &ProduceResponse) -> i16 {
    resp.responses[0].partition_responses[0].error_code
}

#[tokio::test]
async fn produce_errors_are_per_partition_codes() {
    let b = TestBroker::start(&[("message.max.bytes", "2000")]).await;
    let mut c = b.connect().await;
    create_topic(&mut c, "t", 1).await;

    let mut corrupt = sample_batch(3);
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    assert_eq!(
        partition_error(&c.call(&produce_req("t", 0, 1, corrupt), 9).await),
        2,
        "CORRUPT_MESSAGE"
    );

    let mut wrong_count = sample_batch(3);
    wrong_count[57..61].copy_from_slice(&5i32.to_be_bytes());
    let crc = batch::compute_crc(&wrong_count);
    wrong_count[17..21].copy_from_slice(&crc.to_be_bytes());
    let resp = c.call(&produce_req("t", 0, 1, wrong_count), 9).await;
    assert_eq!(partition_error(&resp), 87, "INVALID_RECORD");
    assert!(resp.responses[0].partition_responses[0]
        .error_message
        .is_some());

    let mut old_magic = sample_batch(1);
    old_magic[16] = 1;
    assert_eq!(
        partition_error(&c.call(&produce_req("t", 0, 1, old_magic), 9).await),
        87
    );

    assert_eq!(
        partition_error(&c.call(&produce_req("t", 0, 1, sample_batch(200)), 9).await),
        10,
        "MESSAGE_TOO_LARGE"
    );
    assert_eq!(
        partition_error(&c.call(&produce_req("t", 7, 1, sample_batch(1)), 9).await),
        3,
        "UNKNOWN_TOPIC_OR_PARTITION"
    );
    assert_eq!(
        partition_error(&c.call(&produce_req("nope", 0, 1, sample_batch(1)), 9).await),
        3
    );
    assert_eq!(
        partition_error(&c.call(&produce_req("t", 0, 5, sample_batch(1)), 9).await),
        21,
        "INVALID_REQUIRED_ACKS"
    );

    let mut two = sample_batch(1);
    two.extend_from_slice(&sample_batch(1));
    assert_eq!(
        partition_error(&c.call(&produce_req("t", 0, 1, two), 9).await),
        87,
        "one batch per partition"
    );

    let mut future = sample_batch(1);
    let ts = gregor_broker::util::now_ms() + 10 * 3_600_000;
    future = {
        let recs = [NewRecord {
            key: Some(b"k"),
            value: Some(b"v"),
            timestamp: ts,
            headers: &[],
        }];
        let _ = future;
        batch::build(0, Codec::None, &recs).unwrap()
    };
    assert_eq!(
        partition_error(&c.call(&produce_req("t", 0, 1, future), 9).await),
        32,
        "INVALID_TIMESTAMP"
    );

    let ok = c.call(&produce_req("t", 0, 1, sample_batch(3)), 9).await;
    assert_eq!(partition_error(&ok), 0);
    assert_eq!(
        ok.responses[0].partition_responses[0].base_offset, 0,
        "rejected batches took no offsets"
    );

    // acks=0 with an error: no response, the connection is closed so the client notices.
    let mut c0 = b.connect().await;
    let req = c0.encode(&produce_req("nope", 0, 0, sample_batch(1)), 9);
    c0.send_raw(&req).await;
    assert!(c0.is_closed().await);
    assert_still_serving(&b).await;
    b.stop().await;
}

fn fetch_req(
    topic: &str,
    offset: i64,
    max_wait_ms: i32,
    session_id: i32,
    epoch: i32,
) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_session_id(session_id)
        .with_session_epoch(epoch)
        .with_topics(vec![fetch_request::FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_string(topic.into())))
            .with_partitions(vec![fetch_request::FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(1 << 20)])])
}

/// (offset, value) of every record in a fetch's record bytes.
fn fetched_values(records: &[u8]) -> Vec<(i64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < records.len() {
        let h = batch::BatchHeader::parse(&records[at..]).unwrap();
        let whole = &records[at..at + h.total_size()];
        let mut scratch = Vec::new();
        let data = batch::records_section(&h, whole, &mut scratch, 1 << 20).unwrap();
        for r in gregor_protocol::records::RecordWalker::new(data, h.record_count) {
            let r = r.unwrap();
            out.push((
                h.base_offset + i64::from(r.offset_delta),
                r.value.unwrap().to_vec(),
            ));
        }
        at += h.total_size();
    }
    out
}

#[tokio::test]
async fn long_poll_fetch_wakes_on_append() {
    let b = TestBroker::start(&[]).await;
    let mut admin = b.connect().await;
    create_topic(&mut admin, "lp", 1).await;
    let partition = b.broker.replicas.partition("lp", 0).unwrap();
    assert_eq!(partition.live_waiters(), 0);
    let mut fetcher = b.connect().await;
    let started = std::time::Instant::now();
    let fetch =
        tokio::spawn(async move { fetcher.call(&fetch_req("lp", 0, 30_000, 0, -1), 12).await });
    // Produce only once the fetch is parked: it has registered with the partition (so
    // it has read the empty log) and has not been answered.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while partition.live_waiters() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the fetch never parked"
        );
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    assert!(
        !fetch.is_finished(),
        "an empty log must not answer min_bytes=1"
    );
    let mut producer = b.connect().await;
    let resp = producer
        .call(&produce_req("lp", 0, 1, sample_batch(2)), 9)
        .await;
    assert_eq!(partition_error(&resp), 0);
    let fetched = fetch.await.unwrap();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(25),
        "woken by the append, not the 30 s deadline"
    );
    let p = &fetched.responses[0].partitions[0];
    assert_eq!(p.error_code, 0);
    assert_eq!(p.high_watermark, 2);
    assert_eq!(
        fetched_values(p.records.as_ref().unwrap()),
        vec![(0, b"value-0".to_vec()), (1, b"value-1".to_vec())]
    );
    b.stop().await;
}

#[tokio::test]
async fn fetch_errors_and_sessions() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.connect().await;
    create_topic(&mut c, "fs", 1).await;
    c.call(&produce_req("fs", 0, 1, sample_batch(5)), 9).await;

    let oor = c.call(&fetch_req("fs", 99, 0, 0, -1), 12).await;
    assert_eq!(
        oor.responses[0].partitions[0].error_code, 1,
        "OFFSET_OUT_OF_RANGE"
    );
    let unknown = c.call(&fetch_req("none", 0, 0, 0, -1), 12).await;
    assert_eq!(unknown.responses[0].partitions[0].error_code, 3);

    // KIP-227: open a session, then an incremental fetch with nothing new is empty.
    let full = c.call(&fetch_req("fs", 0, 0, 0, 0), 12).await;
    let sid = full.session_id;
    assert_ne!(sid, 0);
    assert_eq!(full.responses[0].partitions.len(), 1);
    let inc = c
        .call(&fetch_req("fs", 5, 0, sid, 1).with_max_wait_ms(0), 12)
        .await;
    assert_eq!(inc.error_code, 0);
    assert!(
        inc.responses.is_empty(),
        "no news for an incremental fetch at the end of the log"
    );
    c.call(&produce_req("fs", 0, 1, sample_batch(1)), 9).await;
    let inc2 = c
        .call(
            &FetchRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_max_bytes(1 << 20)
                .with_session_id(sid)
                .with_session_epoch(2),
            12,
        )
        .await;
    assert_eq!(
        inc2.responses[0].partitions[0].high_watermark, 6,
        "session remembers the partition and its offset"
    );
    let bad_epoch = c.call(&fetch_req("fs", 0, 0, sid, 9), 12).await;
    assert_eq!(bad_epoch.error_code, 71, "INVALID_FETCH_SESSION_EPOCH");
    let gone = c.call(&fetch_req("fs", 0, 0, 123_456, 1), 12).await;
    assert_eq!(gone.error_code, 70, "FETCH_SESSION_ID_NOT_FOUND");
    b.stop().await;
}

#[tokio::test]
async fn delete_topics_by_id_and_unknown_id() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.connect().await;
    create_topic(&mut c, "byid", 2).await;
    let id = b.broker.metadata.image().topic("byid").unwrap().id;
    let del = |id| {
        DeleteTopicsRequest::default().with_topics(vec![
            delete_topics_request::DeleteTopicState::default().with_topic_id(id),
        ])
    };
    let resp = c.call(&del(id), 6).await;
    assert_eq!(resp.responses[0].error_code, 0);
    assert_eq!(
        resp.responses[0].name.as_ref().map(|n| n.0.to_string()),
        Some("byid".to_string())
    );
    assert!(!b.dir.path().join("byid-0").exists() && !b.dir.path().join("byid-1").exists());
    let again = c.call(&del(id), 6).await;
    assert_eq!(again.responses[0].error_code, 100, "UNKNOWN_TOPIC_ID");
    b.stop().await;
}

#[tokio::test]
async fn metadata_auto_creates_and_rejects_bad_names() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.connect().await;
    let req = MetadataRequest::default()
        .with_allow_auto_topic_creation(true)
        .with_topics(Some(vec![
            metadata_request::MetadataRequestTopic::default()
                .with_name(Some(TopicName(StrBytes::from_static_str("fresh")))),
            metadata_request::MetadataRequestTopic::default()
                .with_name(Some(TopicName(StrBytes::from_static_str("bad/name")))),
        ]));
    let resp = c.call(&req, 12).await;
    assert_eq!(resp.topics[0].error_code, 0);
    assert!(!resp.topics[0].topic_id.is_nil());
    assert_eq!(resp.topics[0].partitions.len(), 1);
    assert_eq!(resp.topics[1].error_code, 17, "INVALID_TOPIC_EXCEPTION");
    let no_create = MetadataRequest::default()
        .with_allow_auto_topic_creation(false)
        .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default(
        )
        .with_name(Some(TopicName(StrBytes::from_static_str("other"))))]));
    assert_eq!(c.call(&no_create, 12).await.topics[0].error_code, 3);
    b.stop().await;
}

/// A sample batch stamped with an idempotent producer's id, epoch and first sequence.
fn idempotent_batch(n: usize, pid: i64, epoch: i16, seq: i32) -> Vec<u8> {
    let mut b = sample_batch(n);
    b[43..51].copy_from_slice(&pid.to_be_bytes());
    b[51..53].copy_from_slice(&epoch.to_be_bytes());
    b[53..57].copy_from_slice(&seq.to_be_bytes());
    let crc = batch::compute_crc(&b);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

#[tokio::test]
async fn idempotent_produce_dedups_retries_and_refuses_gaps_and_old_epochs() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.connect().await;
    create_topic(&mut c, "idem", 1).await;
    let first = c
        .call(
            &InitProducerIdRequest::default().with_transaction_timeout_ms(60_000),
            4,
        )
        .await;
    let second = c
        .call(
            &InitProducerIdRequest::default().with_transaction_timeout_ms(60_000),
            4,
        )
        .await;
    assert_eq!(first.error_code, 0);
    assert_ne!(
        first.producer_id, second.producer_id,
        "ids are never reused"
    );
    let pid = first.producer_id.0;
    let base = |r: &ProduceResponse| r.responses[0].partition_responses[0].base_offset;

    let r = c
        .call(
            &produce_req("idem", 0, -1, idempotent_batch(3, pid, 0, 0)),
            9,
        )
        .await;
    assert_eq!((partition_error(&r), base(&r)), (0, 0));
    let r = c
        .call(
            &produce_req("idem", 0, -1, idempotent_batch(2, pid, 0, 3)),
            9,
        )
        .await;
    assert_eq!((partition_error(&r), base(&r)), (0, 3));
    // A retry of the first batch: success with its original offset, nothing written.
    let r = c
        .call(
            &produce_req("idem", 0, -1, idempotent_batch(3, pid, 0, 0)),
            9,
        )
        .await;
    assert_eq!((partition_error(&r), base(&r)), (0, 0));
    // A gap in the sequence.
    let r = c
        .call(
            &produce_req("idem", 0, -1, idempotent_batch(1, pid, 0, 9)),
            9,
        )
        .await;
    assert_eq!(partition_error(&r), 45, "OUT_OF_ORDER_SEQUENCE_NUMBER");
    // A new epoch starts at sequence 0, after which the old epoch is fenced.
    let r = c
        .call(
            &produce_req("idem", 0, -1, idempotent_batch(1, pid, 1, 0)),
            9,
        )
        .await;
    assert_eq!((partition_error(&r), base(&r)), (0, 5));
    let r = c
        .call(
            &produce_req("idem", 0, -1, idempotent_batch(1, pid, 0, 5)),
            9,
        )
        .await;
    assert_eq!(partition_error(&r), 47, "INVALID_PRODUCER_EPOCH");
    b.stop().await;
}
