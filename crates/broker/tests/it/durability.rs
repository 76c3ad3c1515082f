//! With `flush.messages=1`, a produce is acknowledged only after its data is fsynced.
//!
//! `kill -9` keeps the page cache, so a crash test cannot tell an fsynced ack from one
//! that was not. Here the broker's own record of what it fsynced (the log's recovery
//! point, moved only after the fsync returns) is checked at the moment each ack arrives,
//! with several producers pipelining at once so acks that share one fsync (group commit)
//! are covered too.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use crate::common;

use bytes::Bytes;
use common::TestBroker;
use gregor_protocol::batch::{self, NewRecord};
use gregor_protocol::compression::Codec;
use gregor_protocol::kp::messages::produce_request::{PartitionProduceData, TopicProduceData};
use gregor_protocol::kp::messages::*;
use gregor_protocol::kp::protocol::StrBytes;

fn produce_req(topic: &str) -> ProduceRequest {
    let recs = [NewRecord {
        key: None,
        value: Some(b"durable"),
        timestamp: 1_700_000_000_000,
        headers: &[],
    }];
    ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(Bytes::from(
                    batch::build(0, Codec::None, &recs).unwrap(),
                )))])])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_wait_for_the_fsync_flush_messages_asks_for() {
    let b = TestBroker::start(&[
        ("log.flush.interval.messages", "1"),
        // Only the produce path may flush: the background flusher waits an hour.
        ("log.flush.scheduler.interval.ms", "3600000"),
    ])
    .await;
    let mut c = b.connect().await;
    c.create_topic("d", 1).await;
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let mut client = b.connect().await;
        let broker = b.broker.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..50 {
                let resp = client.call(&produce_req("d"), 9).await;
                let p = &resp.responses[0].partition_responses[0];
                assert_eq!(p.error_code, 0);
                let fsynced = broker
                    .replicas
                    .partition("d", 0)
                    .unwrap()
                    .log()
                    .unwrap()
                    .recovery_point();
                assert!(
                    fsynced > p.base_offset,
                    "offset {} acknowledged but only {} fsynced",
                    p.base_offset,
                    fsynced
                );
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    b.stop().await;
}
