//! Fetch answers sent from segment files (sendfile): byte-exact whole batches at every
//! version and size limit, across segments, larger than the socket buffer, and with
//! sessions that never hold partitions that do not exist.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use crate::common;

use bytes::Bytes;
use common::{Client, TestBroker};
use gregor_protocol::batch::{self, BatchHeader, NewRecord};
use gregor_protocol::compression::Codec;
use gregor_protocol::kp::messages::produce_request::{PartitionProduceData, TopicProduceData};
use gregor_protocol::kp::messages::*;
use gregor_protocol::kp::protocol::StrBytes;

/// Produces one batch of `n` records of `size` bytes; returns its base offset.
async fn produce(c: &mut Client, topic: &str, partition: i32, n: usize, size: usize) -> i64 {
    let value = vec![b'v'; size];
    let recs: Vec<NewRecord<'_>> = (0..n)
        .map(|_| NewRecord {
            key: None,
            value: Some(&value),
            timestamp: 1_700_000_000_000,
            headers: &[],
        })
        .collect();
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(Bytes::from(
                    batch::build(0, Codec::None, &recs).unwrap(),
                )))])]);
    let resp = c.call(&req, 9).await;
    let p = &resp.responses[0].partition_responses[0];
    assert_eq!(p.error_code, 0);
    p.base_offset
}

/// The topic's id, for fetches from v13 on.
async fn topic_id(c: &mut Client, topic: &str) -> uuid::Uuid {
    let req = MetadataRequest::default()
        .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default(
        )
        .with_name(Some(TopicName(StrBytes::from_string(topic.to_string()))))]));
    c.call(&req, 12).await.topics[0].topic_id
}

/// Fills in topic ids (fetch v13+ names topics by id only).
async fn by_id(c: &mut Client, mut req: FetchRequest) -> FetchRequest {
    for t in &mut req.topics {
        t.topic_id = topic_id(c, t.topic.0.as_str()).await;
    }
    req
}

fn fetch(parts: &[(&str, i32, i64, i32)], max_bytes: i32) -> FetchRequest {
    let mut topics: Vec<fetch_request::FetchTopic> = Vec::new();
    for &(t, p, offset, limit) in parts {
        let part = fetch_request::FetchPartition::default()
            .with_partition(p)
            .with_fetch_offset(offset)
            .with_partition_max_bytes(limit);
        match topics.last_mut() {
            Some(last) if last.topic.0.as_str() == t => last.partitions.push(part),
            _ => topics.push(
                fetch_request::FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(t.to_string())))
                    .with_partitions(vec![part]),
            ),
        }
    }
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(max_bytes)
        .with_session_epoch(-1)
        .with_topics(topics)
}

/// `(base offset, last offset, size)` of every whole batch in `bytes`; fails on a partial
/// batch.
fn batches(bytes: &[u8]) -> Vec<(i64, i64, usize)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let h = BatchHeader::parse(&bytes[at..]).unwrap();
        assert!(at + h.total_size() <= bytes.len(), "partial batch at {at}");
        batch::validate_stored(&bytes[at..at + h.total_size()], &mut Vec::new(), usize::MAX)
            .unwrap();
        out.push((h.base_offset, h.last_offset(), h.total_size()));
        at += h.total_size();
    }
    out
}

/// At every version the answer is whole, valid batches from the fetch offset, the first
/// batch whole even when larger than the limits (KIP-74), the response limit shared out
/// in partition order, and lengths that need a multi-byte varint in flexible versions.
#[tokio::test]
async fn answers_are_whole_batches_at_every_version_and_limit() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.connect().await;
    c.create_topic("zc", 2).await;
    // Partition 0: batches of 10 × 100 B (about 1.3 KiB each); partition 1: one big batch.
    for _ in 0..20 {
        produce(&mut c, "zc", 0, 10, 100).await;
    }
    produce(&mut c, "zc", 1, 50, 1000).await;
    for version in [4i16, 11, 12, 16] {
        // Everything from offset 0 of partition 0.
        let req = by_id(&mut c, fetch(&[("zc", 0, 0, 1 << 20)], 1 << 20)).await;
        let resp = c.call(&req, version).await;
        let p = &resp.responses[0].partitions[0];
        assert_eq!(p.error_code, 0);
        assert_eq!(p.high_watermark, 200);
        let got = batches(p.records.as_ref().unwrap());
        assert_eq!(got.len(), 20, "v{version}");
        assert_eq!(got[0].0, 0);
        assert_eq!(got[19].1, 199);
        // From the middle of a batch: starts at the batch holding the offset.
        let req = by_id(&mut c, fetch(&[("zc", 0, 55, 1 << 20)], 1 << 20)).await;
        let resp = c.call(&req, version).await;
        let got = batches(resp.responses[0].partitions[0].records.as_ref().unwrap());
        assert_eq!((got[0].0, got.len()), (50, 15), "v{version}");
        // A limit of 3.5 batches gives 3 whole ones.
        let one = got[0].2 as i32;
        let req = by_id(&mut c, fetch(&[("zc", 0, 0, one * 7 / 2)], 1 << 20)).await;
        let resp = c.call(&req, version).await;
        let got = batches(resp.responses[0].partitions[0].records.as_ref().unwrap());
        assert_eq!(got.len(), 3, "v{version}");
        // A first batch larger than both limits comes whole; the next partition then gets
        // nothing, since the response limit is used up.
        let req = by_id(
            &mut c,
            fetch(&[("zc", 1, 0, 100), ("zc", 0, 0, 1 << 20)], 100),
        )
        .await;
        let resp = c.call(&req, version).await;
        let parts = &resp.responses[0].partitions;
        let big = batches(parts[0].records.as_ref().unwrap());
        assert_eq!(big.len(), 1);
        assert!(big[0].2 > 50_000);
        assert_eq!(parts[1].records.as_ref().map_or(0, |r| r.len()), 0);
    }
    b.stop().await;
}

/// Reads that cross segment boundaries return one segment's batches and then the next
/// segment's on the following fetch, and an answer larger than the socket buffers
/// (several MiB, so sendfile must wait for the socket) arrives intact.
#[tokio::test]
async fn large_answers_and_segment_boundaries() {
    let b = TestBroker::start(&[("log.segment.bytes", "1048576")]).await;
    let mut c = b.connect().await;
    c.create_topic("big", 1).await;
    for _ in 0..64 {
        produce(&mut c, "big", 0, 100, 1000).await; // ~100 KiB a batch
    }
    let mut offset = 0;
    let mut seen = 0;
    let mut fetches = 0;
    while offset < 6400 {
        let resp = c
            .call(&fetch(&[("big", 0, offset, 64 << 20)], 64 << 20), 12)
            .await;
        let got = batches(resp.responses[0].partitions[0].records.as_ref().unwrap());
        assert!(!got.is_empty());
        assert_eq!(
            got[0].0, offset,
            "continues exactly where the last fetch ended"
        );
        offset = got.last().unwrap().1 + 1;
        seen += got.len();
        fetches += 1;
    }
    assert_eq!(seen, 64);
    assert!(fetches > 1, "1 MiB segments: one fetch reads one segment");
    // Several MiB in one answer: three connections at once, each read fully.
    let b2 = TestBroker::start(&[]).await;
    let mut c2 = b2.connect().await;
    c2.create_topic("huge", 1).await;
    for _ in 0..80 {
        produce(&mut c2, "huge", 0, 100, 1000).await;
    }
    let req = by_id(&mut c2, fetch(&[("huge", 0, 0, 64 << 20)], 64 << 20)).await;
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(b2.connect().await);
    }
    let handles: Vec<_> = clients
        .into_iter()
        .map(|mut cl| {
            let req = req.clone();
            tokio::spawn(async move {
                let resp = cl.call(&req, 16).await;
                batches(resp.responses[0].partitions[0].records.as_ref().unwrap()).len()
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.await.unwrap(), 80);
    }
    b.stop().await;
    b2.stop().await;
}

/// A fetch for a partition that does not exist gets UNKNOWN_TOPIC_OR_PARTITION and no
/// session; an incremental fetch that adds one ends its session (the client starts over)
/// instead of storing it.
#[tokio::test]
async fn sessions_never_hold_partitions_that_do_not_exist() {
    let b = TestBroker::start(&[("auto.create.topics.enable", "false")]).await;
    let mut c = b.connect().await;
    c.create_topic("s", 1).await;
    produce(&mut c, "s", 0, 1, 10).await;
    let open = |parts: &[(&str, i32, i64, i32)]| fetch(parts, 1 << 20).with_session_epoch(0);
    let resp = c
        .call(
            &open(&[("s", 0, 0, 1024), ("s", 7, 0, 1024), ("nope", 0, 0, 1024)]),
            12,
        )
        .await;
    assert_eq!(
        resp.session_id, 0,
        "no session while partitions are unknown"
    );
    let codes: Vec<(String, i32, i16)> = resp
        .responses
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(move |p| (t.topic.0.to_string(), p.partition_index, p.error_code))
        })
        .collect();
    assert_eq!(
        codes,
        vec![
            ("s".into(), 0, 0),
            ("s".into(), 7, 3),
            ("nope".into(), 0, 3)
        ]
    );
    // A session over existing partitions is created, and adding an unknown one ends it.
    let resp = c.call(&open(&[("s", 0, 0, 1024)]), 12).await;
    let sid = resp.session_id;
    assert_ne!(sid, 0);
    let add = fetch(&[("s", 3, 0, 1024)], 1 << 20)
        .with_session_id(sid)
        .with_session_epoch(1);
    let resp = c.call(&add, 12).await;
    assert_eq!(resp.error_code, 70, "FETCH_SESSION_ID_NOT_FOUND");
    let again = fetch(&[], 1 << 20)
        .with_session_id(sid)
        .with_session_epoch(2);
    assert_eq!(
        c.call(&again, 12).await.error_code,
        70,
        "the session is gone"
    );
    b.stop().await;
}

/// `fetch.max.bytes` caps an answer whatever the client asks for (the first batch still
/// comes whole, as KIP-74 requires).
#[tokio::test]
async fn broker_caps_fetch_max_bytes() {
    let b = TestBroker::start(&[("fetch.max.bytes", "20000")]).await;
    let mut c = b.connect().await;
    c.create_topic("cap", 2).await;
    for _ in 0..20 {
        produce(&mut c, "cap", 0, 10, 1000).await; // ~10 KiB a batch
        produce(&mut c, "cap", 1, 10, 1000).await;
    }
    let req = fetch(
        &[("cap", 0, 0, i32::MAX), ("cap", 1, 0, i32::MAX)],
        i32::MAX,
    );
    let resp = c.call(&req, 12).await;
    let sizes: Vec<usize> = resp.responses[0]
        .partitions
        .iter()
        .map(|p| {
            batches(p.records.as_ref().unwrap())
                .iter()
                .map(|b| b.2)
                .sum()
        })
        .collect();
    let total: usize = sizes.iter().sum();
    assert!(
        total > 0 && total <= 20000,
        "answer of {total} bytes: {sizes:?}"
    );
    assert_eq!(
        sizes[0] / 10_000,
        1,
        "one whole ~10 KiB batch fits under 20000"
    );
    b.stop().await;
}

/// An incremental round looks only at partitions that changed since they settled or
/// that the request lists: one with nothing new is skipped (and not answered); new
/// records, a moved log start and a new leader epoch are each looked at and answered.
#[tokio::test]
async fn session_rounds_skip_partitions_with_nothing_new() {
    use gregor_broker::replication::state::Assignment;
    let b = TestBroker::start(&[]).await;
    let mut c = b.connect().await;
    c.create_topic("k", 4).await;
    for p in 0..4 {
        produce(&mut c, "k", p, 1, 10).await;
    }
    let epoch = b.broker.replicas.partition("k", 3).unwrap().leader_epoch();
    let at = |p: i32, offset: i64| fetch(&[("k", p, offset, 1024)], 1 << 20).topics;
    let mut open = fetch(
        &[
            ("k", 0, 1, 1024),
            ("k", 1, 1, 1024),
            ("k", 2, 1, 1024),
            ("k", 3, 1, 1024),
        ],
        1 << 20,
    )
    .with_session_epoch(0);
    open.topics[0].partitions[3].current_leader_epoch = epoch;
    let resp = c.call(&open, 12).await;
    let sid = resp.session_id;
    assert_ne!(sid, 0);
    let mut session_epoch = 0;
    let mut round = |topics: Vec<fetch_request::FetchTopic>| {
        session_epoch += 1;
        fetch(&[], 1 << 20)
            .with_session_id(sid)
            .with_session_epoch(session_epoch)
            .with_topics(topics)
    };
    // (partition, error, high watermark, log start, record bytes) of an answer.
    let answered = |resp: &FetchResponse| -> Vec<(i32, i16, i64, i64, usize)> {
        assert_eq!(resp.error_code, 0);
        resp.responses
            .iter()
            .flat_map(|t| &t.partitions)
            .map(|p| {
                let n = p.records.as_ref().map_or(0, |r| r.len());
                (
                    p.partition_index,
                    p.error_code,
                    p.high_watermark,
                    p.log_start_offset,
                    n,
                )
            })
            .collect()
    };
    let sessions = &b.broker.fetch_sessions;

    // Nothing new anywhere: nothing looked at, nothing answered.
    let before = sessions.looked();
    assert!(answered(&c.call(&round(vec![]), 12).await).is_empty());
    assert_eq!(sessions.looked() - before, 0, "every partition skipped");

    // New records on 1: only 1 is looked at, and answered with them.
    produce(&mut c, "k", 1, 1, 10).await;
    let before = sessions.looked();
    let got = answered(&c.call(&round(vec![]), 12).await);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, 1);
    assert!(got[0].4 > 0, "the new records are sent");
    assert_eq!(sessions.looked() - before, 1);

    // The client moves on in 1 (listed, so looked at): caught up, nothing to tell.
    let before = sessions.looked();
    assert!(answered(&c.call(&round(at(1, 2)), 12).await).is_empty());
    assert_eq!(sessions.looked() - before, 1);

    // A new log start on 2 is news without records.
    b.broker
        .replicas
        .partition("k", 2)
        .unwrap()
        .delete_records(1)
        .unwrap();
    let before = sessions.looked();
    assert_eq!(
        answered(&c.call(&round(vec![]), 12).await),
        vec![(2, 0, 1, 1, 0)]
    );
    assert_eq!(sessions.looked() - before, 1);

    // A new leader epoch on 3: the epoch the client named is fenced.
    let p3 = b.broker.replicas.partition("k", 3).unwrap();
    let a = p3.assignment();
    p3.apply_assignment(&Assignment {
        leader_epoch: epoch + 1,
        ..a
    })
    .unwrap();
    let got = answered(&c.call(&round(vec![]), 12).await);
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].0, got[0].1), (3, 74), "FENCED_LEADER_EPOCH");

    // An error never settles: 3 is looked at (and answered) every round, alone.
    let before = sessions.looked();
    let got = answered(&c.call(&round(vec![]), 12).await);
    assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), vec![3]);
    assert_eq!(sessions.looked() - before, 1);
    b.stop().await;
}
