//! Throughput of a topology against a plain consume→produce loop on the same client
//! (rdkafka), reading a preloaded input topic. Prints one JSON line:
//! `{"mode", "records", "seconds", "records_per_s"}`, timed from the first record read
//! to the last record written and flushed (group join and start-up excluded).
//! Driven by `bench/streams_bench.py`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use gregor_streams::{
    Consumed, Grouped, KafkaStreams, Materialized, Produced, Serdes, StreamsBuilder, StreamsConfig,
    TimeWindows,
};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

#[derive(Copy, Clone, Debug, ValueEnum)]
enum Mode {
    /// consume → produce with rdkafka, offsets committed every second
    Plain,
    /// stream → map_values → filter → to
    MapFilter,
    /// stream → group_by_key → 1 s tumbling windows → count → to
    WindowedCount,
}

#[derive(Parser, Debug)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:9092")]
    brokers: String,
    #[arg(long, value_enum)]
    mode: Mode,
    #[arg(long)]
    input: String,
    #[arg(long)]
    output: String,
    /// Records in the input topic.
    #[arg(long)]
    count: u64,
    #[arg(long, default_value = "/tmp/gregor-streams-bench")]
    state_dir: String,
    #[arg(long, default_value = "streams-bench")]
    app_id: String,
}

fn report(mode: Mode, records: u64, elapsed: Duration) {
    let s = elapsed.as_secs_f64();
    println!(
        "{{\"mode\": \"{mode:?}\", \"records\": {records}, \"seconds\": {s:.3}, \"records_per_s\": {:.0}}}",
        records as f64 / s
    );
}

fn plain(args: &Args) -> anyhow::Result<()> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &args.brokers)
        .set("group.id", &args.app_id)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()?;
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &args.brokers)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create()?;
    consumer.subscribe(&[&args.input])?;
    let (mut n, mut first, mut last_commit) = (0u64, None, Instant::now());
    while n < args.count {
        let Some(m) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let m = m?;
        first.get_or_insert_with(Instant::now);
        let value = m.payload().map(|v| v.to_ascii_uppercase());
        loop {
            let mut rec: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&args.output);
            if let Some(k) = m.key() {
                rec = rec.key(k);
            }
            if let Some(v) = &value {
                rec = rec.payload(v.as_slice());
            }
            match producer.send(rec) {
                Ok(()) => break,
                Err((_, _)) => producer.poll(Duration::from_millis(10)),
            }
        }
        producer.poll(Duration::ZERO);
        n += 1;
        if last_commit.elapsed() >= Duration::from_secs(1) {
            producer.flush(Duration::from_secs(30))?;
            consumer.commit_message(&m, CommitMode::Sync)?;
            last_commit = Instant::now();
        }
    }
    producer.flush(Duration::from_secs(30))?;
    report(
        Mode::Plain,
        n,
        first.map(|f| f.elapsed()).unwrap_or_default(),
    );
    Ok(())
}

fn streams(args: &Args) -> anyhow::Result<()> {
    let seen = Arc::new(AtomicU64::new(0));
    let first: Arc<Mutex<Option<Instant>>> = Arc::default();
    let builder = StreamsBuilder::new();
    let (s, f) = (seen.clone(), first.clone());
    let input = builder
        .stream(
            &args.input,
            Consumed::with(Serdes::bytes(), Serdes::bytes()),
        )
        .peek(move |_, _| {
            if s.fetch_add(1, Ordering::Relaxed) == 0 {
                *f.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
            }
        });
    match args.mode {
        Mode::MapFilter => input
            .map_values(|v: Vec<u8>| v.to_ascii_uppercase())
            .filter(|_, v| !v.is_empty())
            .to(
                &args.output,
                Produced::with(Serdes::bytes(), Serdes::bytes()),
            ),
        _ => input
            .group_by_key(Grouped::with(Serdes::bytes(), Serdes::bytes()))
            .windowed_by(TimeWindows::of_size_with_no_grace(Duration::from_secs(1)))
            .count(Materialized::as_("bench-counts"))
            .to_stream()
            .to(
                &args.output,
                Produced::with(Serdes::windowed(Serdes::bytes(), 1000), Serdes::i64()),
            ),
    }
    let config = StreamsConfig::new(&args.app_id, &args.brokers)
        .set("state.dir", &args.state_dir)
        .set("commit.interval.ms", "1000");
    let mut app = KafkaStreams::new(builder.build()?, config)?;
    app.start()?;
    while seen.load(Ordering::Relaxed) < args.count {
        if app.state() == gregor_streams::State::Error {
            anyhow::bail!("streams application failed");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // close() commits: the producer is flushed, so every output record is written.
    app.close()?;
    let start = first
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .unwrap_or_else(Instant::now);
    report(args.mode, args.count, start.elapsed());
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    match args.mode {
        Mode::Plain => plain(&args),
        _ => streams(&args),
    }
}
