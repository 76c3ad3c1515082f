//! What one client can make the broker hold: compression bombs are refused before the
//! memory is spent, a large batch's decompression buffer is not kept after its request,
//! and one address cannot open more than `max.connections.per.ip` connections.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use crate::common;

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use common::{Client, TestBroker};
use gregor_broker::handlers::{self, Connection, Outcome, SCRATCH_RETAIN};
use gregor_protocol::batch::{self, NewRecord, HEADER_LEN, LOG_OVERHEAD};
use gregor_protocol::compression::Codec;
use gregor_protocol::kp::messages::produce_request::{PartitionProduceData, TopicProduceData};
use gregor_protocol::kp::messages::*;
use gregor_protocol::kp::protocol::{Decodable, HeaderVersion, StrBytes};
use tokio::net::TcpSocket;

fn produce_req(topic: &str, records: Vec<u8>) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.into())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(Bytes::from(records)))])])
}

fn partition_error(resp: &ProduceResponse) -> i16 {
    resp.responses[0].partition_responses[0].error_code
}

/// A one-record batch of `codec` whose compressed payload is replaced by `payload`
/// (length and CRC fixed up, so only the payload is wrong, or a bomb).
fn with_payload(codec: Codec, payload: &[u8]) -> Vec<u8> {
    let recs = [NewRecord {
        key: Some(b"k"),
        value: Some(b"v"),
        timestamp: gregor_broker::util::now_ms(),
        headers: &[],
    }];
    let mut b = batch::build(0, codec, &recs).unwrap();
    b.truncate(HEADER_LEN);
    b.extend_from_slice(payload);
    let len = (b.len() - LOG_OVERHEAD) as i32;
    b[8..12].copy_from_slice(&len.to_be_bytes());
    let crc = batch::compute_crc(&b);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

fn zigzag(v: i64, out: &mut Vec<u8>) {
    let mut n = ((v << 1) ^ (v >> 63)) as u64;
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// The compressed records section of one valid record whose value is `value_len` zero
/// bytes, streamed through the encoder: the test itself never holds the inflated form
/// (which would spoil the broker's RSS figures, as both share this process).
fn zero_record_compressed(codec: Codec, value_len: usize) -> Vec<u8> {
    let mut body = Vec::new();
    body.push(0); // attributes
    zigzag(0, &mut body); // timestamp delta
    zigzag(0, &mut body); // offset delta
    zigzag(-1, &mut body); // null key
    zigzag(value_len as i64, &mut body);
    let mut head = Vec::new();
    zigzag((body.len() + value_len + 1) as i64, &mut head);
    head.extend_from_slice(&body);
    let zeros = vec![0u8; 64 * 1024];
    let feed = |w: &mut dyn Write| {
        w.write_all(&head).unwrap();
        let mut left = value_len;
        while left > 0 {
            let n = left.min(zeros.len());
            w.write_all(&zeros[..n]).unwrap();
            left -= n;
        }
        w.write_all(&[0]).unwrap(); // no headers
    };
    match codec {
        Codec::Zstd => {
            let mut e = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
            feed(&mut e);
            e.finish().unwrap()
        }
        Codec::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            feed(&mut e);
            e.finish().unwrap()
        }
        Codec::Lz4 => {
            let mut e = lz4_flex::frame::FrameEncoder::new(Vec::new());
            feed(&mut e);
            e.finish().unwrap()
        }
        other => panic!("no streaming encoder for {other:?} here"),
    }
}

/// This process's resident set (the broker runs in it), in KiB.
fn rss_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Resets the peak RSS (VmHWM) so that it measures from now; false where the kernel
/// does not allow it.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

#[tokio::test]
async fn compression_bombs_are_refused_before_the_memory_is_spent() {
    // max.message.bytes 200 kB: a batch may inflate to 64 times that, 12.8 MB.
    let b = TestBroker::start(&[("message.max.bytes", "200000")]).await;
    let mut c = b.connect().await;
    c.create_topic("bombs", 1).await;
    let snappy_2g = {
        let mut p = Vec::new();
        zigzag_free_varint(2 << 30, &mut p);
        p.extend_from_slice(&[0u8; 32]);
        with_payload(Codec::Snappy, &p)
    };
    let snappy_200m = {
        let mut p = Vec::new();
        zigzag_free_varint(200 << 20, &mut p);
        p.extend_from_slice(&[0u8; 32]);
        with_payload(Codec::Snappy, &p)
    };
    // Valid batches, each one record of 64 MiB of zeros: a few kB on the wire.
    let zstd = with_payload(Codec::Zstd, &zero_record_compressed(Codec::Zstd, 64 << 20));
    let gzip = with_payload(Codec::Gzip, &zero_record_compressed(Codec::Gzip, 64 << 20));
    let lz4 = with_payload(Codec::Lz4, &zero_record_compressed(Codec::Lz4, 40 << 20));
    for bomb in [&zstd, &gzip, &lz4] {
        assert!(
            bomb.len() < 200_000,
            "{} bytes: within max.message.bytes",
            bomb.len()
        );
    }
    // Warm up (first produce, allocator arenas), then measure from here.
    let ok = with_payload(Codec::Zstd, &zero_record_compressed(Codec::Zstd, 1000));
    assert_eq!(
        partition_error(&c.call(&produce_req("bombs", ok.clone()), 9).await),
        0
    );
    let peak_known = reset_peak_rss();
    let before = rss_kib("VmRSS:");
    for (what, bomb) in [
        ("snappy claiming 2 GiB", snappy_2g),
        ("snappy claiming 200 MiB", snappy_200m),
        ("zstd, 64 MiB inflated", zstd),
        ("gzip, 64 MiB inflated", gzip),
        ("lz4, 40 MiB inflated", lz4),
    ] {
        let resp = c.call(&produce_req("bombs", bomb), 9).await;
        assert_eq!(partition_error(&resp), 2, "{what}: CORRUPT_MESSAGE");
    }
    let after = rss_kib("VmRSS:");
    let grew_mib = after.saturating_sub(before) / 1024;
    eprintln!("bombs: resident set grew {grew_mib} MiB");
    assert!(grew_mib < 32, "resident set grew by {grew_mib} MiB");
    if peak_known {
        let peak_mib = rss_kib("VmHWM:").saturating_sub(before) / 1024;
        eprintln!("bombs: peak resident set {peak_mib} MiB above the start");
        assert!(
            peak_mib < 48,
            "peak resident set {peak_mib} MiB above the start"
        );
    }
    // The connection and the partition still work.
    let resp = c.call(&produce_req("bombs", ok), 9).await;
    assert_eq!(partition_error(&resp), 0);
    assert_eq!(resp.responses[0].partition_responses[0].base_offset, 1);
    b.stop().await;
}

/// Plain (not zigzag) varint: snappy's length header.
fn zigzag_free_varint(mut n: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

#[tokio::test]
async fn a_large_batch_leaves_no_large_buffer_behind() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.connect().await;
    c.create_topic("big", 1).await;
    // 24 MiB inflated, a few kB compressed: within the default bound (64 MiB).
    let big = with_payload(Codec::Lz4, &zero_record_compressed(Codec::Lz4, 24 << 20));
    let mut frame = c.encode(&produce_req("big", big), 9);
    frame.advance(4); // dispatch takes the frame without its length prefix
    let listener = std::sync::Arc::new(b.broker.config.listeners[0].clone());
    let mut conn = Connection::new(listener, "/127.0.0.1".into(), None);
    let Outcome::Respond(mut resp) = handlers::dispatch(&b.broker, &mut conn, frame).await else {
        panic!("a produce with acks=1 answers at once");
    };
    resp.advance(4); // length
    ResponseHeader::decode(&mut resp, ProduceResponse::header_version(9)).unwrap();
    let resp = ProduceResponse::decode(&mut resp, 9).unwrap();
    assert_eq!(partition_error(&resp), 0, "the batch was valid and stored");
    assert!(
        conn.scratch.capacity() <= SCRATCH_RETAIN,
        "the connection kept a {} byte buffer after its request",
        conn.scratch.capacity()
    );
    // A small compressed batch afterwards reuses what is left.
    let small = with_payload(Codec::Lz4, &zero_record_compressed(Codec::Lz4, 1000));
    let mut frame = c.encode(&produce_req("big", small), 9);
    frame.advance(4);
    assert!(matches!(
        handlers::dispatch(&b.broker, &mut conn, frame).await,
        Outcome::Respond(_)
    ));
    assert!(conn.scratch.capacity() <= SCRATCH_RETAIN);
    b.stop().await;
}

/// A client connected from `source` (any 127/8 address reaches the broker on Linux).
async fn connect_from(b: &TestBroker, source: [u8; 4]) -> Client {
    let s = TcpSocket::new_v4().unwrap();
    s.bind(SocketAddr::new(IpAddr::from(source), 0)).unwrap();
    Client::from_stream(s.connect(b.addr).await.unwrap())
}

/// True if the broker answers an ApiVersions on `c`, false if it closed it.
async fn served(c: &mut Client) -> bool {
    let frame = c.encode(&ApiVersionsRequest::default(), 0);
    c.send_raw(&frame).await;
    c.read_frame().await.is_some()
}

#[tokio::test]
async fn connections_beyond_the_per_ip_limit_are_closed_at_once() {
    let b = TestBroker::start(&[
        ("max.connections.per.ip", "3"),
        ("max.connections.per.ip.overrides", "127.0.0.3:1"),
    ])
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut c = b.connect().await;
        assert!(served(&mut c).await);
        held.push(c);
    }
    let mut fourth = b.connect().await;
    assert!(
        fourth.is_closed().await,
        "the fourth from 127.0.0.1 is closed"
    );
    for c in &mut held {
        assert!(served(c).await, "the first three keep working");
    }
    let mut other = connect_from(&b, [127, 0, 0, 2]).await;
    assert!(served(&mut other).await, "another address is not affected");
    let mut one = connect_from(&b, [127, 0, 0, 3]).await;
    assert!(served(&mut one).await);
    let mut two = connect_from(&b, [127, 0, 0, 3]).await;
    assert!(two.is_closed().await, "127.0.0.3's override allows one");

    // A closed connection gives its slot back (once the broker has seen it go).
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut again = b.connect().await;
        if served(&mut again).await {
            break;
        }
        assert!(Instant::now() < deadline, "the slot was never released");
        tokio::task::yield_now().await;
    }
    b.stop().await;
}
