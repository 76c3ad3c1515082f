//! A client that pipelines requests but never reads its answers cannot grow the broker:
//! a connection's queued answers are bounded in bytes, and once they fill the budget the
//! broker stops reading that connection (Kafka's muted channel), while other clients are
//! served.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use crate::common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::TestBroker;
use gregor_broker::server::QUEUED_RESPONSE_BYTES;
use gregor_protocol::kp::messages::*;
use gregor_protocol::kp::protocol::StrBytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_answers_are_bounded_in_bytes() {
    let b = TestBroker::start(&[("auto.create.topics.enable", "false")]).await;
    // Metadata for 8,000 unknown topics with long names: a 0.5 MB request whose answer
    // is about 0.75 MB. 120 of them are about 90 MB of answers, far more than the budget
    // plus what the socket buffers can hold.
    let topics: Vec<metadata_request::MetadataRequestTopic> = (0..8000)
        .map(|i| {
            metadata_request::MetadataRequestTopic::default()
                .with_name(Some(TopicName(StrBytes::from_string(format!("{i:0>60}")))))
        })
        .collect();
    let req = MetadataRequest::default()
        .with_topics(Some(topics))
        .with_allow_auto_topic_creation(false);
    let mut flooder = b.connect().await;
    let frames: Vec<bytes::Bytes> = (0..120).map(|_| flooder.encode(&req, 12)).collect();
    let (mut rd, mut wr) = flooder.stream.into_split();
    let writer = tokio::spawn(async move {
        for f in frames {
            if wr.write_all(&f).await.is_err() {
                break;
            }
        }
        wr
    });
    // The broker fills the connection's budget and then stops reading it.
    let budget = QUEUED_RESPONSE_BYTES;
    let queued = || b.broker.response_queue_bytes.load(Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(60);
    while queued() < budget - (1 << 20) {
        assert!(
            Instant::now() < deadline,
            "queue never filled: {} bytes",
            queued()
        );
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await; // poll interval, not a sync point
    }
    let max = b.broker.response_queue_bytes_max.load(Ordering::Relaxed);
    assert!(max <= budget, "queued {max} bytes, budget {budget}");
    // Another client is served meanwhile.
    let mut other = b.connect().await;
    assert_eq!(
        other
            .call(&ApiVersionsRequest::default(), 2)
            .await
            .error_code,
        0
    );
    // Reading the answers lets the rest through, all of them, in order.
    let mut answered = 0;
    let mut len = [0u8; 4];
    while answered < 120 {
        rd.read_exact(&mut len).await.unwrap();
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
        rd.read_exact(&mut body).await.unwrap();
        let correlation = i32::from_be_bytes([body[0], body[1], body[2], body[3]]);
        assert_eq!(correlation, answered + 1);
        answered += 1;
    }
    writer.await.unwrap();
    let max = b.broker.response_queue_bytes_max.load(Ordering::Relaxed);
    assert!(max <= budget, "queued {max} bytes, budget {budget}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while queued() != 0 {
        assert!(Instant::now() < deadline, "gauge did not return to 0");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    b.stop().await;
}
