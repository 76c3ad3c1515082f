//! `gregor produce`: lines from stdin or a file become records.

use std::io::{BufRead, BufReader};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;
use serde_json::json;

use crate::conn::{kv, Conn};

#[derive(clap::Args)]
pub(crate) struct ProduceArgs {
    /// Topic to write to.
    topic: String,
    /// Read lines from this file instead of stdin.
    #[arg(long, short)]
    file: Option<std::path::PathBuf>,
    /// Split each line into key and value at the first occurrence of this string.
    #[arg(long, short = 'K')]
    key_delimiter: Option<String>,
    /// A header on every record. Repeatable.
    #[arg(long = "header", short = 'H', value_name = "KEY=VALUE")]
    headers: Vec<String>,
    /// Write to this partition (default: the partitioner decides).
    #[arg(long, short)]
    partition: Option<i32>,
    /// none, gzip, snappy, lz4 or zstd.
    #[arg(long, default_value = "none")]
    compression: String,
    /// 0, 1 or all.
    #[arg(long, default_value = "all")]
    acks: String,
}

/// Counts deliveries; failures are reported with their line number (the opaque).
struct Reports {
    delivered: AtomicU64,
    failed: Mutex<Vec<(usize, String)>>,
}

impl ClientContext for Reports {}

impl ProducerContext for Reports {
    type DeliveryOpaque = Box<usize>;
    fn delivery(&self, result: &DeliveryResult<'_>, line: Self::DeliveryOpaque) {
        match result {
            Ok(_) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, _)) => {
                if let Ok(mut f) = self.failed.lock() {
                    f.push((*line, e.to_string()));
                }
            }
        }
    }
}

pub(crate) fn run(conn: &Conn, args: ProduceArgs) -> Result<()> {
    let mut cfg = conn.config()?;
    cfg.set("compression.type", &args.compression)
        .set("acks", &args.acks)
        .set("linger.ms", "5");
    let producer: BaseProducer<Reports> = cfg
        .create_with_context(Reports {
            delivered: AtomicU64::new(0),
            failed: Mutex::new(Vec::new()),
        })
        .context("cannot create producer")?;
    let headers: Vec<(String, String)> =
        args.headers.iter().map(|h| kv(h)).collect::<Result<_>>()?;
    let input: Box<dyn BufRead> = match &args.file {
        Some(path) => Box::new(BufReader::new(
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?,
        )),
        None => Box::new(BufReader::new(std::io::stdin())),
    };
    let mut sent = 0usize;
    for (i, line) in input.lines().enumerate() {
        let line = line.context("cannot read input")?;
        let (key, value) = match &args.key_delimiter {
            Some(d) => match line.split_once(d.as_str()) {
                Some((k, v)) => (Some(k.to_string()), v.to_string()),
                None => (None, line.clone()),
            },
            None => (None, line.clone()),
        };
        let mut hs = OwnedHeaders::new();
        for (k, v) in &headers {
            hs = hs.insert(Header {
                key: k,
                value: Some(v.as_bytes()),
            });
        }
        let mut record = BaseRecord::with_opaque_to(&args.topic, Box::new(i + 1))
            .payload(value.as_bytes())
            .headers(hs);
        if let Some(k) = &key {
            record = record.key(k.as_bytes());
        }
        if let Some(p) = args.partition {
            record = record.partition(p);
        }
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((
                    rdkafka::error::KafkaError::MessageProduction(
                        rdkafka::types::RDKafkaErrorCode::QueueFull,
                    ),
                    r,
                )) => {
                    record = r;
                    producer.poll(Duration::from_millis(10));
                }
                Err((e, _)) => bail!("line {}: cannot send: {e}", i + 1),
            }
        }
        producer.poll(Duration::ZERO);
        sent += 1;
    }
    producer
        .flush(Duration::from_secs(60))
        .context("not every record was acknowledged within 60 s")?;
    let ctx = producer.context();
    let delivered = ctx.delivered.load(Ordering::Relaxed);
    let failed = ctx.failed.lock().map(|f| f.clone()).unwrap_or_default();
    if conn.json() {
        let f: Vec<_> = failed
            .iter()
            .map(|(l, e)| json!({"line": l, "error": e}))
            .collect();
        out!(
            "{}",
            json!({"topic": args.topic, "sent": sent, "delivered": delivered, "failed": f})
        );
    } else {
        for (l, e) in &failed {
            eprintln!("line {l}: {e}");
        }
        out!("delivered {delivered} of {sent} records to {}", args.topic);
    }
    if !failed.is_empty() {
        bail!("{} records failed", failed.len());
    }
    Ok(())
}
