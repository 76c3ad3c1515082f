//! `gregor bench produce-raw`: the broker's own produce capacity, without a client
//! library's per-record work in the way.
//!
//! librdkafka builds, batches and compresses every record on the client; on this
//! two-core machine that, not the broker, caps `gregor bench produce` (see
//! BENCHMARKS.md). This mode pre-builds one record batch with `gregor-protocol`, encodes
//! one Produce request with `kafka-protocol`, and pipelines copies of it (only the
//! correlation id changes) over a few connections. It measures what the broker can
//! append and acknowledge; it is not a substitute for a real client.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::{Bytes, BytesMut};
use gregor_protocol::batch::{self, NewRecord};
use gregor_protocol::compression::Codec;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ProduceRequest, ProduceResponse, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use serde_json::json;

#[derive(clap::Args, Clone)]
pub(crate) struct RawArgs {
    /// Bootstrap broker (the partition leader: single node).
    #[arg(
        short = 'b',
        long,
        env = "GREGOR_BROKERS",
        default_value = "127.0.0.1:9092"
    )]
    brokers: String,
    /// Topic (created by `gregor topic create` or auto-created).
    #[arg(short = 't', long, default_value = "gregor-bench-raw")]
    topic: String,
    /// Records to send (rounded up to whole batches).
    #[arg(long, default_value_t = 10_000_000)]
    count: u64,
    /// Value size in bytes.
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// Records per batch (one batch per request).
    #[arg(long, default_value_t = 8_000)]
    batch_records: usize,
    /// Connections, each on its own thread.
    #[arg(long, default_value_t = 2)]
    connections: usize,
    /// Requests in flight per connection.
    #[arg(long, default_value_t = 4)]
    in_flight: usize,
    /// 1 or -1 (all).
    #[arg(long, default_value_t = 1, allow_hyphen_values = true)]
    acks: i16,
    /// Output format: text or json.
    #[arg(long, default_value = "text")]
    output: String,
}

const VERSION: i16 = 9;

fn request_frame(args: &RawArgs) -> Result<Vec<u8>> {
    let value = vec![b'x'; args.size];
    let recs: Vec<NewRecord<'_>> = (0..args.batch_records)
        .map(|_| NewRecord {
            key: None,
            value: Some(&value),
            timestamp: gregor_broker::util::now_ms(),
            headers: &[],
        })
        .collect();
    let batch = batch::build(0, Codec::None, &recs)?;
    let req = ProduceRequest::default()
        .with_acks(args.acks)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(args.topic.clone())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(Bytes::from(batch)))])]);
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::Produce as i16)
        .with_request_api_version(VERSION)
        .with_correlation_id(0)
        .with_client_id(Some(StrBytes::from_static_str("gregor-bench-raw")));
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&[0; 4]);
    header.encode(&mut buf, ApiKey::Produce.request_header_version(VERSION))?;
    req.encode(&mut buf, VERSION)?;
    let len = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    Ok(buf.to_vec())
}

/// Sends `requests` copies of `frame` with up to `in_flight` outstanding; returns the
/// number of partition errors in the answers.
fn drive(addr: &str, frame: &[u8], requests: u64, in_flight: usize) -> Result<u64> {
    let mut s = TcpStream::connect(addr).with_context(|| format!("cannot reach {addr}"))?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut out = frame.to_vec();
    let (mut sent, mut answered, mut errors) = (0u64, 0u64, 0u64);
    let mut body = Vec::new();
    while answered < requests {
        while sent < requests && sent - answered < in_flight as u64 {
            out[8..12].copy_from_slice(&(sent as i32).to_be_bytes());
            s.write_all(&out)?;
            sent += 1;
        }
        let mut len = [0u8; 4];
        s.read_exact(&mut len).context("connection closed")?;
        body.resize(i32::from_be_bytes(len).max(0) as usize, 0);
        s.read_exact(&mut body)?;
        let mut b = Bytes::copy_from_slice(&body);
        let h = ResponseHeader::decode(&mut b, ProduceResponse::header_version(VERSION))?;
        if h.correlation_id != answered as i32 {
            bail!("answer out of order");
        }
        let r = ProduceResponse::decode(&mut b, VERSION)?;
        errors += r
            .responses
            .iter()
            .flat_map(|t| t.partition_responses.iter())
            .filter(|p| p.error_code != 0)
            .count() as u64;
        answered += 1;
    }
    Ok(errors)
}

pub(crate) fn run(args: RawArgs) -> Result<()> {
    let frame = request_frame(&args)?;
    let per_batch = args.batch_records.max(1) as u64;
    let batches = args.count.div_ceil(per_batch);
    let conns = args.connections.max(1) as u64;
    let start = Instant::now();
    let handles: Vec<_> = (0..conns)
        .map(|i| {
            let share = batches / conns + u64::from(i < batches % conns);
            let frame = frame.clone();
            let addr = args
                .brokers
                .split(',')
                .next()
                .unwrap_or_default()
                .to_string();
            let in_flight = args.in_flight.max(1);
            std::thread::spawn(move || drive(&addr, &frame, share, in_flight))
        })
        .collect();
    let mut errors = 0;
    for h in handles {
        errors += h
            .join()
            .map_err(|_| anyhow::anyhow!("a sender thread failed"))??;
    }
    let secs = start.elapsed().as_secs_f64();
    let msgs = batches * per_batch;
    let bytes = msgs * args.size as u64;
    let rate = msgs as f64 / secs;
    let mbs = bytes as f64 / secs / 1e6;
    if args.output == "json" {
        out!(
            "{}",
            json!({"mode": "produce-raw", "messages": msgs, "bytes": bytes, "seconds": secs,
                         "msgs_per_sec": rate, "mb_per_sec": mbs, "errors": errors})
        );
    } else {
        out!("produce-raw: {msgs} msgs, {:.1} MB in {secs:.2} s = {rate:.0} msgs/s, {mbs:.1} MB/s, {errors} errors", bytes as f64 / 1e6);
    }
    if errors > 0 {
        bail!("{errors} produce requests failed");
    }
    Ok(())
}
