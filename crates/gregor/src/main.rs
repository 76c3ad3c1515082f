//! `gregor`: one binary for the broker and its tools.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

mod bench;

#[derive(Parser)]
#[command(
    name = "gregor",
    version,
    about = "Gregor: a Kafka-compatible streaming platform in one binary"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a broker (a single-node cluster by default).
    ///
    /// Example: gregor broker --data-dir ./gregor-data --listen 127.0.0.1:9092
    Broker(BrokerArgs),
    /// Load-test a Kafka-compatible cluster with librdkafka (the rdkafka crate).
    ///
    /// Example: gregor bench produce --topic bench --count 1000000 --size 100
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

#[derive(clap::Args)]
struct BrokerArgs {
    /// Kafka-style properties file (key=value per line).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory (Kafka's log.dirs). Default: ./gregor-data
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Address to listen on (Kafka's listeners). Default: 127.0.0.1:9092; port 0 picks a free one.
    #[arg(long, value_name = "HOST:PORT")]
    listen: Option<String>,
    /// Any Kafka broker config, e.g. --override num.partitions=3. Repeatable.
    #[arg(long = "override", short = 'o', value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Broker(args) => run_broker(args),
        Command::Bench(cmd) => bench::run(cmd),
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn broker_config(args: &BrokerArgs) -> Result<gregor_broker::BrokerConfig> {
    let mut explicit: BTreeMap<String, String> = BTreeMap::new();
    if let Some(path) = &args.config {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        explicit.extend(gregor_broker::config::parse_properties(&text));
    }
    for o in &args.overrides {
        let (k, v) = o
            .split_once('=')
            .with_context(|| format!("malformed --override {o:?}: expected key=value"))?;
        explicit.insert(k.trim().to_string(), v.trim().to_string());
    }
    if let Some(dir) = &args.data_dir {
        explicit.insert("log.dirs".into(), dir.display().to_string());
    }
    if let Some(listen) = &args.listen {
        explicit.insert("listeners".into(), format!("PLAINTEXT://{listen}"));
    }
    Ok(gregor_broker::BrokerConfig::from_explicit(explicit)?)
}

fn run_broker(args: BrokerArgs) -> Result<()> {
    init_logging();
    let config = broker_config(&args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("gregor")
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.listener)
            .await
            .with_context(|| format!("cannot listen on {}", config.listener))?;
        let bound = listener.local_addr()?;
        let broker =
            tokio::task::spawn_blocking(move || gregor_broker::Broker::open(config)).await??;
        broker.set_bound_port(bound.port());
        let mut out = std::io::stdout();
        writeln!(
            out,
            "gregor broker ready: listening on {bound} (node.id={}, cluster.id={}, data dir {})",
            broker.config.node_id,
            broker.cluster_id,
            broker.config.data_dir.display()
        )?;
        out.flush()?;
        gregor_broker::server::run(broker, listener, shutdown_signal()).await?;
        tracing::info!("broker stopped cleanly");
        Ok(())
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    tracing::info!("shutdown signal received: finishing requests and flushing logs");
}
