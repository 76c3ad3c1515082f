//! Every advertised API at every advertised version, fed well-formed requests with a few
//! bytes changed: odd lengths, negative counts, huge timeouts and ids reach the handlers.
//! No request may panic the broker, and another client must be served afterwards. The
//! mutations come from a fixed-seed xorshift generator, so a failure repeats exactly.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use common::TestBroker;
use gregor_broker::handlers::SUPPORTED;
use gregor_protocol::kp::messages::*;
use gregor_protocol::kp::protocol::{Encodable, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn encoded<R: Encodable + Default>(v: i16) -> Option<Vec<u8>> {
    let mut b = BytesMut::new();
    R::default().encode(&mut b, v).ok()?;
    Some(b.to_vec())
}

/// A default (valid) body for `key` at version `v`.
fn default_body(key: ApiKey, v: i16) -> Option<Vec<u8>> {
    match key {
        ApiKey::Produce => encoded::<ProduceRequest>(v),
        ApiKey::Fetch => encoded::<FetchRequest>(v),
        ApiKey::ListOffsets => encoded::<ListOffsetsRequest>(v),
        ApiKey::Metadata => encoded::<MetadataRequest>(v),
        ApiKey::ApiVersions => encoded::<ApiVersionsRequest>(v),
        ApiKey::CreateTopics => encoded::<CreateTopicsRequest>(v),
        ApiKey::DeleteTopics => encoded::<DeleteTopicsRequest>(v),
        ApiKey::FindCoordinator => encoded::<FindCoordinatorRequest>(v),
        ApiKey::OffsetCommit => encoded::<OffsetCommitRequest>(v),
        ApiKey::OffsetFetch => encoded::<OffsetFetchRequest>(v),
        ApiKey::JoinGroup => encoded::<JoinGroupRequest>(v),
        ApiKey::Heartbeat => encoded::<HeartbeatRequest>(v),
        ApiKey::LeaveGroup => encoded::<LeaveGroupRequest>(v),
        ApiKey::SyncGroup => encoded::<SyncGroupRequest>(v),
        ApiKey::DescribeGroups => encoded::<DescribeGroupsRequest>(v),
        ApiKey::ListGroups => encoded::<ListGroupsRequest>(v),
        ApiKey::DeleteGroups => encoded::<DeleteGroupsRequest>(v),
        ApiKey::OffsetDelete => encoded::<OffsetDeleteRequest>(v),
        ApiKey::ConsumerGroupHeartbeat => encoded::<ConsumerGroupHeartbeatRequest>(v),
        ApiKey::ConsumerGroupDescribe => encoded::<ConsumerGroupDescribeRequest>(v),
        ApiKey::DescribeConfigs => encoded::<DescribeConfigsRequest>(v),
        ApiKey::AlterConfigs => encoded::<AlterConfigsRequest>(v),
        ApiKey::IncrementalAlterConfigs => encoded::<IncrementalAlterConfigsRequest>(v),
        ApiKey::CreatePartitions => encoded::<CreatePartitionsRequest>(v),
        ApiKey::DescribeCluster => encoded::<DescribeClusterRequest>(v),
        ApiKey::DescribeLogDirs => encoded::<DescribeLogDirsRequest>(v),
        ApiKey::DeleteRecords => encoded::<DeleteRecordsRequest>(v),
        ApiKey::InitProducerId => encoded::<InitProducerIdRequest>(v),
        ApiKey::AddPartitionsToTxn => encoded::<AddPartitionsToTxnRequest>(v),
        ApiKey::AddOffsetsToTxn => encoded::<AddOffsetsToTxnRequest>(v),
        ApiKey::EndTxn => encoded::<EndTxnRequest>(v),
        ApiKey::TxnOffsetCommit => encoded::<TxnOffsetCommitRequest>(v),
        ApiKey::DescribeTransactions => encoded::<DescribeTransactionsRequest>(v),
        ApiKey::ListTransactions => encoded::<ListTransactionsRequest>(v),
        ApiKey::DescribeProducers => encoded::<DescribeProducersRequest>(v),
        other => panic!("{other:?} is advertised but this test does not know it: add it"),
    }
}

fn frame(key: ApiKey, v: i16, correlation: i32, body: &[u8]) -> Vec<u8> {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(v)
        .with_correlation_id(correlation)
        .with_client_id(Some(StrBytes::from_static_str("mutant")));
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    header
        .encode(&mut buf, key.request_header_version(v))
        .unwrap();
    buf.extend_from_slice(body);
    let len = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    buf.to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutated_requests_never_panic_the_broker() {
    let panics = Arc::new(AtomicUsize::new(0));
    let seen = panics.clone();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        seen.fetch_add(1, Ordering::SeqCst);
        eprintln!("panic: {info}");
    }));
    let b = TestBroker::start(&[("group.initial.rebalance.delay.ms", "0")]).await;
    // GREGOR_MUTATION_SEED explores other mutations; CI uses the fixed one.
    let seed = std::env::var("GREGOR_MUTATION_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x9E37_79B9_7F4A_7C15u64);
    let mut rng = XorShift(seed);
    let mut correlation = 0;
    for spec in SUPPORTED {
        let min = if spec.key == ApiKey::Produce {
            3
        } else {
            spec.min
        };
        for v in min..=spec.max {
            let Some(body) = default_body(spec.key, v) else {
                continue;
            };
            for _ in 0..12 {
                let mut m = body.clone();
                for _ in 0..1 + rng.below(3) {
                    if m.is_empty() {
                        break;
                    }
                    let at = rng.below(m.len());
                    m[at] = rng.next() as u8;
                }
                if rng.below(4) == 0 {
                    let keep = rng.below(m.len() + 1);
                    m.truncate(keep);
                }
                correlation += 1;
                let mut s = TcpStream::connect(b.addr).await.unwrap();
                s.write_all(&frame(spec.key, v, correlation, &m))
                    .await
                    .unwrap();
                // An answer, a close, or (a parked JoinGroup) nothing for a while: all fine.
                let mut buf = [0u8; 4096];
                let _ = tokio::time::timeout(Duration::from_millis(300), s.read(&mut buf)).await;
            }
        }
    }
    let mut c = b.connect().await;
    let resp = c.call(&ApiVersionsRequest::default(), 0).await;
    assert_eq!(
        resp.error_code, 0,
        "the broker still serves (seed {seed:#x})"
    );
    std::panic::set_hook(previous);
    assert_eq!(
        panics.load(Ordering::SeqCst),
        0,
        "a request panicked the broker (seed {seed:#x})"
    );
    b.stop().await;
}
