//! Word count: lines from `streams-plaintext-input` → the running count of each word in
//! `streams-wordcount-output` (key: the word, UTF-8; value: the count, 8-byte big-endian).
//!
//! `cargo run --release -p gregor-streams --example wordcount -- --brokers 127.0.0.1:9092`

#[path = "common/mod.rs"]
mod common;

use clap::Parser;
use gregor_streams::{Consumed, Grouped, Materialized, Produced, Serdes, StreamsBuilder};

#[derive(Parser, Debug)]
struct Args {
    #[command(flatten)]
    runtime: common::RuntimeArgs,
    /// application.id
    #[arg(long, default_value = "streams-wordcount")]
    app_id: String,
    #[arg(long, default_value = "streams-plaintext-input")]
    input: String,
    #[arg(long, default_value = "streams-wordcount-output")]
    output: String,
    /// On shutdown, print this instance's `counts` store (an interactive query) as one
    /// JSON line: `STORE {"word": count, ...}`.
    #[arg(long)]
    print_store: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let builder = StreamsBuilder::new();
    builder
        .stream(
            &args.input,
            Consumed::with(Serdes::string(), Serdes::string()),
        )
        .flat_map_values(|line: String| {
            line.split(|c: char| !c.is_alphanumeric())
                .filter(|w| !w.is_empty())
                .map(str::to_lowercase)
                .collect::<Vec<_>>()
        })
        .group_by(
            |_, word: &String| word.clone(),
            Grouped::with(Serdes::string(), Serdes::string()),
        )
        .count(Materialized::as_("counts"))
        .to_stream()
        .to(
            &args.output,
            Produced::with(Serdes::string(), Serdes::i64()),
        );
    let topology = builder.build()?;
    eprintln!("{}", topology.describe());
    let print_store = args.print_store;
    common::run_with(topology, args.runtime.config(&args.app_id), |streams| {
        if print_store {
            let store = streams.key_value_store("counts", Serdes::string(), Serdes::i64());
            let counts: std::collections::BTreeMap<String, i64> =
                store.all()?.into_iter().collect();
            println!("STORE {}", serde_json::to_string(&counts)?);
        }
        Ok(())
    })
}
