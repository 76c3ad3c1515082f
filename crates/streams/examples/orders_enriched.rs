//! Orders enriched with customer data: the `orders` stream (key: order id, value JSON
//! `{"order_id", "customer_id", "amount"}`) is re-keyed by customer (through the
//! `<app>-orders-by-customer-repartition` topic) and left-joined with the `customers`
//! table (key: customer id, value JSON `{"name", "tier"}`; a null value deletes the
//! customer). Output: `orders-enriched`, keyed by customer id, value JSON with the order's
//! fields plus `customer_name` and `tier` (null when the customer is unknown).
//! `customers` must have as many partitions as `orders` (co-partitioning).

#[path = "common/mod.rs"]
mod common;

use clap::Parser;
use gregor_streams::{Consumed, Grouped, Materialized, Produced, Serdes, StreamsBuilder};
use serde::{Deserialize, Serialize};

#[derive(Parser, Debug)]
struct Args {
    #[command(flatten)]
    runtime: common::RuntimeArgs,
    #[arg(long, default_value = "streams-orders-enriched")]
    app_id: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Order {
    order_id: String,
    customer_id: String,
    amount: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Customer {
    name: String,
    tier: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct EnrichedOrder {
    order_id: String,
    customer_id: String,
    amount: f64,
    customer_name: Option<String>,
    tier: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let builder = StreamsBuilder::new();
    let customers = builder.table(
        "customers",
        Consumed::with(Serdes::string(), Serdes::json::<Customer>()),
        Materialized::as_("customers"),
    );
    builder
        .stream(
            "orders",
            Consumed::with(Serdes::string(), Serdes::json::<Order>()),
        )
        .select_key(|_, order: &Order| order.customer_id.clone())
        .left_join(
            &customers,
            |order: &Order, customer: Option<&Customer>| EnrichedOrder {
                order_id: order.order_id.clone(),
                customer_id: order.customer_id.clone(),
                amount: order.amount,
                customer_name: customer.map(|c| c.name.clone()),
                tier: customer.map(|c| c.tier.clone()),
            },
            Grouped::with(Serdes::string(), Serdes::json()).named("orders-by-customer"),
        )?
        .to(
            "orders-enriched",
            Produced::with(Serdes::string(), Serdes::json()),
        );
    common::run(builder.build()?, args.runtime.config(&args.app_id))
}
