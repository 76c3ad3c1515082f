//! `gregor bench`: a load generator on librdkafka (the rdkafka crate), so it measures
//! what a real client sees and works against any Kafka-compatible cluster.
//!
//! - `produce`: throughput and send-to-acknowledgement latency.
//! - `consume`: throughput reading a topic from the beginning.
//! - `e2e`: produce at a fixed rate and measure produce-to-consume latency.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use std::fmt::Write as _;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use serde::Serialize;

#[derive(clap::Subcommand)]
pub(crate) enum BenchCommand {
    /// Produce records as fast as allowed and report throughput and ack latency.
    ///
    /// Example: gregor bench produce --topic bench --count 2000000 --size 100 --acks 1
    Produce(ProduceArgs),
    /// Consume a topic from the beginning and report throughput.
    ///
    /// Example: gregor bench consume --topic bench --count 2000000
    Consume(ConsumeArgs),
    /// Produce at a fixed rate while consuming, and report end-to-end latency.
    ///
    /// Example: gregor bench e2e --topic latency --rate 10000 --count 100000
    E2e(E2eArgs),
    /// Measure the broker's produce capacity with pre-built batches sent over the raw
    /// protocol (no client library in the way).
    ///
    /// Example: gregor bench produce-raw --topic raw --count 20000000 --size 100
    ProduceRaw(crate::bench_raw::RawArgs),
    /// Fetch partition 0 of a topic with raw Fetch requests, walking only batch headers:
    /// the broker's fetch capacity without a client library's per-record work.
    ///
    /// Example: gregor bench fetch-raw --topic bench --count 1000000
    FetchRaw(crate::bench_fetch_raw::FetchRawArgs),
}

#[derive(clap::Args, Clone)]
pub(crate) struct Common {
    /// Bootstrap brokers.
    #[arg(
        short = 'b',
        long,
        env = "GREGOR_BROKERS",
        default_value = "127.0.0.1:9092"
    )]
    brokers: String,
    /// Topic to use (created with --partitions if missing, where the command creates).
    #[arg(short = 't', long, default_value = "gregor-bench")]
    topic: String,
    /// Extra librdkafka properties, e.g. -X fetch.wait.max.ms=10. Repeatable.
    #[arg(short = 'X', value_name = "KEY=VALUE")]
    props: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    output: OutputFormat,
    /// Hide the progress bar.
    #[arg(long)]
    quiet: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq)]
enum OutputFormat {
    Text,
    Json,
}

#[derive(clap::Args, Clone)]
pub(crate) struct ProduceArgs {
    #[command(flatten)]
    common: Common,
    /// Records to send.
    #[arg(long, default_value_t = 1_000_000)]
    count: u64,
    /// Stop after this many seconds even if --count is not reached.
    #[arg(long)]
    duration: Option<u64>,
    /// Value size in bytes.
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// Partitions of the topic when it is created.
    #[arg(long, default_value_t = 1)]
    partitions: i32,
    /// acks: 0, 1 or all (-1).
    #[arg(long, default_value = "1")]
    acks: String,
    /// none, gzip, snappy, lz4 or zstd.
    #[arg(long, default_value = "none")]
    compression: String,
    /// linger.ms
    #[arg(long, default_value_t = 5)]
    linger_ms: u64,
    /// batch.size in bytes.
    #[arg(long, default_value_t = 1_000_000)]
    batch_size: u64,
    /// Messages per second, 0 for unlimited.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Distinct keys, cycled ("0", "1", ...); 0 sends an empty key. For compacted topics.
    #[arg(long, default_value_t = 0)]
    keys: u64,
    /// Records per transaction; 0 produces without transactions. With it the report
    /// adds the latency of each commit_transaction.
    #[arg(long, default_value_t = 0)]
    transaction_size: u64,
    /// transactional.id for --transaction-size.
    #[arg(long, default_value = "gregor-bench-txn")]
    transactional_id: String,
}

#[derive(clap::Args, Clone)]
pub(crate) struct ConsumeArgs {
    #[command(flatten)]
    common: Common,
    /// Records to read before stopping.
    #[arg(long, default_value_t = 1_000_000)]
    count: u64,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
}

#[derive(clap::Args, Clone)]
pub(crate) struct E2eArgs {
    #[command(flatten)]
    common: Common,
    /// Records to send.
    #[arg(long, default_value_t = 100_000)]
    count: u64,
    /// Messages per second.
    #[arg(long, default_value_t = 10_000)]
    rate: u64,
    /// Value size in bytes (at least 16).
    #[arg(long, default_value_t = 100)]
    size: usize,
    #[arg(long, default_value_t = 1)]
    partitions: i32,
    #[arg(long, default_value = "1")]
    acks: String,
    #[arg(long, default_value_t = 0)]
    linger_ms: u64,
}

#[derive(Serialize)]
struct Latency {
    p50: f64,
    p90: f64,
    p99: f64,
    p999: f64,
    max: f64,
}

#[derive(Serialize)]
struct Report {
    mode: &'static str,
    topic: String,
    messages: u64,
    bytes: u64,
    seconds: f64,
    msgs_per_sec: f64,
    mb_per_sec: f64,
    errors: u64,
    /// Milliseconds.
    latency_ms: Option<Latency>,
    /// Transactions committed and commit_transaction latency (ms), with --transaction-size.
    #[serde(skip_serializing_if = "Option::is_none")]
    transactions: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    commit_ms: Option<Latency>,
}

fn latency(h: &Histogram<u64>) -> Option<Latency> {
    if h.is_empty() {
        return None;
    }
    let ms = |us: u64| us as f64 / 1000.0;
    Some(Latency {
        p50: ms(h.value_at_quantile(0.5)),
        p90: ms(h.value_at_quantile(0.9)),
        p99: ms(h.value_at_quantile(0.99)),
        p999: ms(h.value_at_quantile(0.999)),
        max: ms(h.max()),
    })
}

fn print(report: &Report, format: OutputFormat) -> Result<()> {
    match format {
        OutputFormat::Json => out!("{}", serde_json::to_string(report)?),
        OutputFormat::Text => {
            out!(
                "{}: {} msgs, {:.1} MB in {:.2} s = {:.0} msgs/s, {:.1} MB/s{}",
                report.mode,
                report.messages,
                report.bytes as f64 / 1e6,
                report.seconds,
                report.msgs_per_sec,
                report.mb_per_sec,
                if report.errors > 0 {
                    format!(", {} errors", report.errors)
                } else {
                    String::new()
                }
            );
            let show = |what: &str, l: &Latency| {
                out!(
                    "{what} ms: p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
                    l.p50,
                    l.p90,
                    l.p99,
                    l.p999,
                    l.max
                );
            };
            if let Some(l) = &report.latency_ms {
                show("latency", l);
            }
            if let (Some(n), Some(l)) = (report.transactions, &report.commit_ms) {
                out!("{n} transactions committed");
                show("commit", l);
            }
        }
    }
    Ok(())
}

fn client_config(c: &Common) -> Result<ClientConfig> {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", &c.brokers);
    for p in &c.props {
        let (k, v) = p
            .split_once('=')
            .with_context(|| format!("malformed -X {p:?}: expected key=value"))?;
        cfg.set(k, v);
    }
    Ok(cfg)
}

fn progress(total: u64, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} {per_sec}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

fn ensure_topic(c: &Common, partitions: i32) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = client_config(c)?
        .create()
        .context("cannot create admin client")?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let topic = NewTopic::new(&c.topic, partitions, TopicReplication::Fixed(1));
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = rt
        .block_on(admin.create_topics([&topic], &opts))
        .context("create_topics failed")?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, e)) => bail!("cannot create topic {t}: {e}"),
        }
    }
    Ok(())
}

/// Counts deliveries and records ack latency; the opaque is the send time in µs.
struct BenchState {
    start: Instant,
    delivered: AtomicU64,
    errors: AtomicU64,
    hist: Mutex<Histogram<u64>>,
}

#[derive(Clone)]
struct BenchContext(Arc<BenchState>);

impl std::ops::Deref for BenchContext {
    type Target = BenchState;
    fn deref(&self) -> &BenchState {
        &self.0
    }
}

impl ClientContext for BenchContext {}

impl ProducerContext for BenchContext {
    type DeliveryOpaque = usize;
    fn delivery(&self, result: &DeliveryResult<'_>, sent_us: usize) {
        match result {
            Ok(_) => {
                let now = self.start.elapsed().as_micros() as u64;
                if let Ok(mut h) = self.hist.lock() {
                    let _ = h.record(now.saturating_sub(sent_us as u64).max(1));
                }
                self.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn new_histogram() -> Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, 600_000_000, 3)?)
}

fn pace(start: Instant, sent: u64, rate: u64) {
    if rate == 0 {
        return;
    }
    let due = start + Duration::from_secs_f64(sent as f64 / rate as f64);
    let now = Instant::now();
    if due > now {
        std::thread::sleep(due - now);
    }
}

fn produce(args: ProduceArgs) -> Result<()> {
    ensure_topic(&args.common, args.partitions)?;
    let mut cfg = client_config(&args.common)?;
    cfg.set("acks", &args.acks)
        .set("compression.codec", &args.compression)
        .set("linger.ms", args.linger_ms.to_string())
        .set("batch.size", args.batch_size.to_string())
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "1048576");
    let txn_size = args.transaction_size;
    if txn_size > 0 {
        cfg.set("transactional.id", &args.transactional_id);
    }
    let ctx = BenchContext(Arc::new(BenchState {
        start: Instant::now(),
        delivered: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        hist: Mutex::new(new_histogram()?),
    }));
    let producer: BaseProducer<BenchContext> = cfg
        .create_with_context(ctx)
        .context("cannot create producer")?;
    let ctx = producer.context().clone();
    let payload: Vec<u8> = (0..args.size).map(|i| (i % 251) as u8).collect();
    let bar = progress(args.count, args.common.quiet);
    let deadline = args
        .duration
        .map(|d| Instant::now() + Duration::from_secs(d));
    let txn_timeout = Duration::from_secs(60);
    if txn_size > 0 {
        producer
            .init_transactions(txn_timeout)
            .context("init_transactions failed")?;
    }
    let mut commits = new_histogram()?;
    let mut open_txn = false;
    let start = Instant::now();
    let mut sent = 0u64;
    let mut key_buf = String::with_capacity(20);
    while sent < args.count && deadline.is_none_or(|d| Instant::now() < d) {
        pace(start, sent, args.rate);
        if txn_size > 0 && !open_txn {
            producer.begin_transaction()?;
            open_txn = true;
        }
        let sent_us = ctx.start.elapsed().as_micros() as usize;
        let key = if args.keys == 0 {
            0
        } else {
            key_buf.clear();
            let _ = write!(key_buf, "{}", sent % args.keys);
            key_buf.len()
        };
        let mut record = BaseRecord::with_opaque_to(&args.common.topic, sent_us)
            .payload(&payload[..])
            .key(&key_buf.as_bytes()[..key]);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    producer.poll(Duration::from_millis(1));
                }
                Err((e, _)) => bail!("send failed: {e}"),
            }
        }
        sent += 1;
        if args.rate > 0 {
            // Each poll serves one delivery event: paced runs poll at every send so
            // acks are timed when they arrive, not when a poll every 10,000 sends
            // gets to them (that made a 40 s run report a p50 of 20 s).
            producer.poll(Duration::ZERO);
        }
        if open_txn && sent.is_multiple_of(txn_size) {
            commit(&producer, &mut commits, txn_timeout)?;
            open_txn = false;
        }
        if sent.is_multiple_of(10_000) {
            producer.poll(Duration::ZERO);
            bar.set_position(ctx.delivered.load(Ordering::Relaxed));
        }
    }
    if open_txn {
        commit(&producer, &mut commits, txn_timeout)?;
    }
    producer
        .flush(Duration::from_secs(120))
        .context("flush timed out")?;
    let secs = start.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let delivered = ctx.delivered.load(Ordering::Relaxed);
    let bytes = delivered * args.size as u64;
    let hist = ctx
        .hist
        .lock()
        .map(|h| h.clone())
        .unwrap_or(new_histogram()?);
    let report = Report {
        mode: "produce",
        topic: args.common.topic.clone(),
        messages: delivered,
        bytes,
        seconds: secs,
        msgs_per_sec: delivered as f64 / secs,
        mb_per_sec: bytes as f64 / secs / 1e6,
        errors: ctx.errors.load(Ordering::Relaxed),
        latency_ms: latency(&hist),
        transactions: (txn_size > 0).then(|| commits.len()),
        commit_ms: latency(&commits),
    };
    print(&report, args.common.output)?;
    if report.errors > 0 {
        bail!("{} records failed", report.errors);
    }
    Ok(())
}

/// Commits the open transaction. The records are acknowledged first (polling in 1 ms
/// steps: the Rust crate's own flush polls in 100 ms steps, which would swamp the
/// figure), then commit_transaction is timed: the commit's own cost, EndTxn and the
/// markers.
fn commit(
    producer: &BaseProducer<BenchContext>,
    commits: &mut Histogram<u64>,
    timeout: Duration,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while producer.in_flight_count() > 0 {
        if Instant::now() > deadline {
            bail!("transaction records not acknowledged in {timeout:?}");
        }
        producer.poll(Duration::from_millis(1));
    }
    let t = Instant::now();
    producer
        .commit_transaction(timeout)
        .context("commit_transaction failed")?;
    commits.record(t.elapsed().as_micros().max(1) as u64)?;
    Ok(())
}

fn assign_all(consumer: &BaseConsumer, topic: &str, offset: Offset) -> Result<()> {
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .context("cannot fetch metadata")?;
    let t = md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .context("topic not in metadata")?;
    if t.partitions().is_empty() {
        bail!("topic {topic} does not exist");
    }
    let mut tpl = TopicPartitionList::new();
    for p in t.partitions() {
        tpl.add_partition_offset(topic, p.id(), offset)?;
    }
    consumer.assign(&tpl)?;
    Ok(())
}

/// Consumer defaults for a load test. librdkafka's defaults favour a slow application:
/// once `queued.min.messages` (100k) wait in its local queue it postpones fetching for
/// `fetch.queue.backoff.ms` (1 s), which caps a fast reader far below the broker's rate.
/// `-X` overrides any of these.
const CONSUMER_DEFAULTS: &[(&str, &str)] = &[
    ("group.id", "gregor-bench"),
    ("enable.auto.commit", "false"),
    ("enable.partition.eof", "false"),
    ("queued.min.messages", "1000000"),
    ("fetch.queue.backoff.ms", "0"),
];

fn consumer(c: &Common) -> Result<BaseConsumer> {
    let mut cfg = ClientConfig::new();
    for (k, v) in CONSUMER_DEFAULTS {
        cfg.set(*k, *v);
    }
    for (k, v) in client_config(c)?.config_map() {
        cfg.set(k, v);
    }
    cfg.create().context("cannot create consumer")
}

fn consume(args: ConsumeArgs) -> Result<()> {
    let consumer = consumer(&args.common)?;
    assign_all(&consumer, &args.common.topic, Offset::Beginning)?;
    let bar = progress(args.count, args.common.quiet);
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let mut start: Option<Instant> = None;
    let (mut n, mut bytes) = (0u64, 0u64);
    while n < args.count {
        if Instant::now() > deadline {
            bail!("timed out after {n} of {} records", args.count);
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                start.get_or_insert_with(Instant::now);
                n += 1;
                bytes += m.payload_len() as u64;
                if n.is_multiple_of(10_000) {
                    bar.set_position(n);
                }
            }
            Some(Err(e)) => bail!("consume failed: {e}"),
            None => {}
        }
    }
    bar.finish_and_clear();
    let secs = start.map_or(0.0, |s| s.elapsed().as_secs_f64()).max(1e-9);
    print(
        &Report {
            mode: "consume",
            topic: args.common.topic.clone(),
            messages: n,
            bytes,
            seconds: secs,
            msgs_per_sec: n as f64 / secs,
            mb_per_sec: bytes as f64 / secs / 1e6,
            errors: 0,
            latency_ms: None,
            transactions: None,
            commit_ms: None,
        },
        args.common.output,
    )
}

fn e2e(args: E2eArgs) -> Result<()> {
    if args.size < 16 {
        bail!("--size must be at least 16 for e2e (it carries a run id and a timestamp)");
    }
    ensure_topic(&args.common, args.partitions)?;
    let run_id: u64 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos() as u64;
    let epoch = Instant::now();
    let consumer = consumer(&args.common)?;
    assign_all(&consumer, &args.common.topic, Offset::End)?;
    // Wait until the consumer holds real positions, so nothing produced is skipped.
    let ready_by = Instant::now() + Duration::from_secs(10);
    loop {
        consumer.poll(Duration::from_millis(50));
        let positions = consumer.position()?;
        if positions
            .elements()
            .iter()
            .all(|e| matches!(e.offset(), Offset::Offset(_)))
            || Instant::now() > ready_by
        {
            break;
        }
    }
    let common = args.common.clone();
    let producer_args = args.clone();
    let producer = std::thread::spawn(move || -> Result<()> {
        let mut cfg = client_config(&common)?;
        cfg.set("acks", &producer_args.acks)
            .set("linger.ms", producer_args.linger_ms.to_string());
        let producer: BaseProducer = cfg.create().context("cannot create producer")?;
        let mut payload = vec![0u8; producer_args.size];
        payload[..8].copy_from_slice(&run_id.to_be_bytes());
        let start = Instant::now();
        for i in 0..producer_args.count {
            pace(start, i, producer_args.rate);
            let t = epoch.elapsed().as_micros() as u64;
            payload[8..16].copy_from_slice(&t.to_be_bytes());
            let mut record = BaseRecord::to(&common.topic).payload(&payload[..]).key(&[]);
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                        record = r;
                        producer.poll(Duration::from_millis(1));
                    }
                    Err((e, _)) => bail!("send failed: {e}"),
                }
            }
            producer.poll(Duration::ZERO);
        }
        producer
            .flush(Duration::from_secs(60))
            .context("flush timed out")?;
        Ok(())
    });
    let mut hist = new_histogram()?;
    let bar = progress(args.count, args.common.quiet);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.count / args.rate.max(1) + 60);
    let mut n = 0u64;
    while n < args.count && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            let now = epoch.elapsed().as_micros() as u64;
            let Some(p) = m.payload().filter(|p| p.len() >= 16) else {
                continue;
            };
            if u64::from_be_bytes(p[..8].try_into()?) != run_id {
                continue;
            }
            let sent = u64::from_be_bytes(p[8..16].try_into()?);
            let _ = hist.record(now.saturating_sub(sent).max(1));
            n += 1;
            if n.is_multiple_of(1000) {
                bar.set_position(n);
            }
        }
    }
    bar.finish_and_clear();
    producer
        .join()
        .map_err(|_| anyhow::anyhow!("producer thread panicked"))??;
    let secs = start.elapsed().as_secs_f64();
    let bytes = n * args.size as u64;
    print(
        &Report {
            mode: "e2e",
            topic: args.common.topic.clone(),
            messages: n,
            bytes,
            seconds: secs,
            msgs_per_sec: n as f64 / secs,
            mb_per_sec: bytes as f64 / secs / 1e6,
            errors: args.count - n,
            latency_ms: latency(&hist),
            transactions: None,
            commit_ms: None,
        },
        args.common.output,
    )?;
    if n < args.count {
        bail!("only {n} of {} records arrived", args.count);
    }
    Ok(())
}

pub(crate) fn run(cmd: BenchCommand) -> Result<()> {
    match cmd {
        BenchCommand::Produce(a) => produce(a),
        BenchCommand::Consume(a) => consume(a),
        BenchCommand::E2e(a) => e2e(a),
        BenchCommand::ProduceRaw(a) => crate::bench_raw::run(a),
        BenchCommand::FetchRaw(a) => crate::bench_fetch_raw::run(a),
    }
}
