//! Payments screening: `payments` (key: card, value JSON `{"id", "card", "amount",
//! "country"}`) is split by rules into `payments-approved` and `payments-denied` (amount
//! over `--limit`, or a country outside `--countries`), and the approved payments are
//! aggregated per card into `card-totals` (JSON `{"count", "total"}`).

#[path = "common/mod.rs"]
mod common;

use clap::Parser;
use gregor_streams::{Consumed, Grouped, Materialized, Produced, Serdes, StreamsBuilder};
use serde::{Deserialize, Serialize};

#[derive(Parser, Debug)]
struct Args {
    #[command(flatten)]
    runtime: common::RuntimeArgs,
    #[arg(long, default_value = "streams-payments")]
    app_id: String,
    /// Largest amount approved.
    #[arg(long, default_value_t = 1000.0)]
    limit: f64,
    /// Countries approved (comma-separated).
    #[arg(long, default_value = "FR,DE,NL,BE")]
    countries: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Payment {
    id: String,
    card: String,
    amount: f64,
    country: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct CardTotal {
    count: i64,
    total: f64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let countries: Vec<String> = args
        .countries
        .split(',')
        .map(|c| c.trim().to_string())
        .collect();
    let limit = args.limit;
    let builder = StreamsBuilder::new();
    let branches = builder
        .stream(
            "payments",
            Consumed::with(Serdes::string(), Serdes::json::<Payment>()),
        )
        .split("payments-")
        .branch("denied", move |_, p: &Payment| {
            p.amount > limit || !countries.contains(&p.country)
        })
        .default_branch("approved");
    for (topic, stream) in &branches {
        stream.to(topic, Produced::with(Serdes::string(), Serdes::json()));
    }
    if let Some(approved) = branches.get("payments-approved") {
        approved
            .group_by_key(Grouped::with(Serdes::string(), Serdes::json()))
            .aggregate(
                CardTotal::default,
                |_, p: &Payment, t: CardTotal| CardTotal {
                    count: t.count + 1,
                    total: t.total + p.amount,
                },
                Serdes::json(),
                Materialized::as_("card-totals"),
            )
            .to_stream()
            .to(
                "card-totals",
                Produced::with(Serdes::string(), Serdes::json()),
            );
    }
    common::run(builder.build()?, args.runtime.config(&args.app_id))
}
