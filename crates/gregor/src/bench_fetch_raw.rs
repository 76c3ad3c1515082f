//! `gregor bench fetch-raw`: the broker's own fetch capacity, without a client library's
//! per-record work in the way.
//!
//! librdkafka parses every record on one consumer thread, and on this two-core machine
//! that, not the broker, caps `gregor bench consume` (see BENCHMARKS.md). This mode sends
//! Fetch requests for partition 0 of a topic on one connection, one after another, and
//! walks only the batch headers of each answer to find the next offset. It measures what
//! the broker can serve; it is not a substitute for a real client.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::{Bytes, BytesMut};
use gregor_protocol::batch::BatchHeader;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, FetchResponse, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use serde_json::json;

#[derive(clap::Args, Clone)]
pub(crate) struct FetchRawArgs {
    /// Bootstrap broker (the partition leader: single node).
    #[arg(
        short = 'b',
        long,
        env = "GREGOR_BROKERS",
        default_value = "127.0.0.1:9092"
    )]
    brokers: String,
    /// Topic to read partition 0 of, from offset 0.
    #[arg(short = 't', long, default_value = "gregor-bench")]
    topic: String,
    /// Records to read.
    #[arg(long, default_value_t = 1_000_000)]
    count: u64,
    /// Bytes per fetch (the partition limit; librdkafka's default is 1 MiB).
    #[arg(long, default_value_t = 1 << 20)]
    fetch_bytes: i32,
    /// Output format: text or json.
    #[arg(long, default_value = "text")]
    output: String,
}

/// Fetch v11: names topics by name and is not flexible, so any broker of the last years
/// answers it.
const VERSION: i16 = 11;

fn fetch_frame(args: &FetchRawArgs, offset: i64, correlation: i32) -> Result<Vec<u8>> {
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(500)
        .with_min_bytes(1)
        .with_max_bytes(i32::MAX)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_string(args.topic.clone())))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(args.fetch_bytes)])]);
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::Fetch as i16)
        .with_request_api_version(VERSION)
        .with_correlation_id(correlation)
        .with_client_id(Some(StrBytes::from_static_str("gregor-bench-fetch-raw")));
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&[0; 4]);
    header.encode(&mut buf, ApiKey::Fetch.request_header_version(VERSION))?;
    req.encode(&mut buf, VERSION)?;
    let len = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    Ok(buf.to_vec())
}

/// Records and the next offset in `records` (whole batches; a partial last one is left).
fn walk(records: &[u8], mut next: i64) -> (u64, i64) {
    let mut at = 0;
    let mut count = 0u64;
    while let Some(rest) = records.get(at..) {
        let Ok(h) = BatchHeader::parse(rest) else {
            break;
        };
        if h.total_size() > rest.len() {
            break;
        }
        count += h.record_count.max(0) as u64;
        next = h.last_offset() + 1;
        at += h.total_size();
    }
    (count, next)
}

pub(crate) fn run(args: FetchRawArgs) -> Result<()> {
    let addr = args
        .brokers
        .split(',')
        .next()
        .unwrap_or_default()
        .to_string();
    let mut s = TcpStream::connect(&addr).with_context(|| format!("cannot reach {addr}"))?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let (mut offset, mut records, mut bytes, mut fetches) = (0i64, 0u64, 0u64, 0u64);
    let mut body = Vec::new();
    let start = Instant::now();
    while records < args.count {
        s.write_all(&fetch_frame(&args, offset, fetches as i32)?)?;
        let mut len = [0u8; 4];
        s.read_exact(&mut len).context("connection closed")?;
        body.resize(i32::from_be_bytes(len).max(0) as usize, 0);
        s.read_exact(&mut body)?;
        let mut b = Bytes::copy_from_slice(&body);
        ResponseHeader::decode(&mut b, FetchResponse::header_version(VERSION))?;
        let r = FetchResponse::decode(&mut b, VERSION)?;
        let Some(p) = r.responses.first().and_then(|t| t.partitions.first()) else {
            bail!("fetch answer without the partition");
        };
        if p.error_code != 0 {
            bail!("fetch error code {}", p.error_code);
        }
        let data = p.records.as_deref().unwrap_or_default();
        let (n, next) = walk(data, offset);
        if n == 0 && offset >= p.high_watermark {
            bail!("only {records} records in {}-0", args.topic);
        }
        records += n;
        bytes += data.len() as u64;
        offset = next;
        fetches += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    let rate = records as f64 / secs;
    let mbs = bytes as f64 / secs / 1e6;
    if args.output == "json" {
        out!(
            "{}",
            json!({"mode": "fetch-raw", "messages": records, "bytes": bytes, "fetches": fetches,
                   "seconds": secs, "msgs_per_sec": rate, "mb_per_sec": mbs})
        );
    } else {
        out!("fetch-raw: {records} msgs, {:.1} MB in {fetches} fetches, {secs:.2} s = {rate:.0} msgs/s, {mbs:.1} MB/s", bytes as f64 / 1e6);
    }
    Ok(())
}
