//! What every example shares: command-line flags for the runtime, logging, and running
//! until SIGINT/SIGTERM.

use clap::Parser;
use gregor_streams::{KafkaStreams, StreamsConfig, Topology};

#[derive(Parser, Debug)]
pub(crate) struct RuntimeArgs {
    /// bootstrap.servers
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub(crate) brokers: String,
    /// state.dir
    #[arg(long, default_value = "/tmp/gregor-streams")]
    pub(crate) state_dir: String,
    /// processing.guarantee: at_least_once | exactly_once_v2
    #[arg(long, default_value = "at_least_once")]
    pub(crate) guarantee: String,
    /// commit.interval.ms
    #[arg(long, default_value_t = 1000)]
    pub(crate) commit_interval_ms: u64,
    /// consumer session.timeout.ms
    #[arg(long, default_value_t = 10000)]
    pub(crate) session_timeout_ms: u64,
    /// producer transaction.timeout.ms (exactly_once_v2)
    #[arg(long, default_value_t = 10000)]
    pub(crate) transaction_timeout_ms: u64,
}

impl RuntimeArgs {
    pub(crate) fn config(&self, app_id: &str) -> StreamsConfig {
        StreamsConfig::new(app_id, &self.brokers)
            .set("state.dir", &self.state_dir)
            .set("processing.guarantee", &self.guarantee)
            .set("commit.interval.ms", &self.commit_interval_ms.to_string())
            .set(
                "consumer.session.timeout.ms",
                &self.session_timeout_ms.to_string(),
            )
            .set("consumer.heartbeat.interval.ms", "500")
            .set(
                "producer.transaction.timeout.ms",
                &self.transaction_timeout_ms.to_string(),
            )
            .set(
                "default.deserialization.exception.handler",
                "log-and-continue",
            )
    }
}

/// Runs `topology` until SIGINT or SIGTERM, then closes it (commit, leave the group).
#[allow(dead_code)] // not every example uses both entry points
pub(crate) fn run(topology: Topology, config: StreamsConfig) -> anyhow::Result<()> {
    run_with(topology, config, |_| Ok(()))
}

/// [`run`], calling `before_close` once the signal came (to query stores, say).
pub(crate) fn run_with(
    topology: Topology,
    config: StreamsConfig,
    before_close: impl FnOnce(&KafkaStreams) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let mut streams = KafkaStreams::new(topology, config)?;
    streams.start()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let mut check = tokio::time::interval(std::time::Duration::from_millis(200));
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                _ = term.recv() => break,
                _ = check.tick() => {
                    if streams.state() == gregor_streams::State::Error {
                        break;
                    }
                }
            }
        }
        Ok::<_, std::io::Error>(())
    })?;
    before_close(&streams)?;
    streams.close()?;
    eprintln!("streams closed");
    Ok(())
}
