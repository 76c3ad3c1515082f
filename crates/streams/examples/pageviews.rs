//! Page views per page per 1-minute tumbling window (event time = record timestamp):
//! `pageviews` (key: user, value: page) → `pageviews-per-minute` (key: page bytes + window
//! start as 8 bytes big-endian, Kafka's windowed key layout; value: count, 8-byte
//! big-endian). Only final counts are written, once a window closes (grace `--grace-ms`);
//! records later than the grace period are dropped.

#[path = "common/mod.rs"]
mod common;

use std::time::Duration;

use clap::Parser;
use gregor_streams::{
    Consumed, Grouped, Materialized, Produced, Serdes, StreamsBuilder, Suppressed, TimeWindows,
};

#[derive(Parser, Debug)]
struct Args {
    #[command(flatten)]
    runtime: common::RuntimeArgs,
    #[arg(long, default_value = "streams-pageviews")]
    app_id: String,
    #[arg(long, default_value = "pageviews")]
    input: String,
    #[arg(long, default_value = "pageviews-per-minute")]
    output: String,
    /// Grace period for out-of-order records (ms).
    #[arg(long, default_value_t = 10_000)]
    grace_ms: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let window = Duration::from_secs(60);
    let builder = StreamsBuilder::new();
    builder
        .stream(
            &args.input,
            Consumed::with(Serdes::string(), Serdes::string()),
        )
        .group_by(
            |_, page: &String| page.clone(),
            Grouped::with(Serdes::string(), Serdes::string()).named("by-page"),
        )
        .windowed_by(TimeWindows::of_size_and_grace(
            window,
            Duration::from_millis(args.grace_ms),
        ))
        .count(Materialized::as_("views-per-minute"))
        .suppress(Suppressed::until_window_closes())?
        .to_stream()
        .to(
            &args.output,
            Produced::with(Serdes::windowed(Serdes::string(), 60_000), Serdes::i64()),
        );
    common::run(builder.build()?, args.runtime.config(&args.app_id))
}
