//! Orders enriched with their customer through a foreign-key table-table join (KIP-213).
//!
//! - `orders`: a table keyed by order id, value JSON `{"customer_id": string or null,
//!   "item", "amount"}` (a null value deletes the order)
//! - `customers`: a table keyed by customer id, value JSON `{"name", "tier"}` (a null value
//!   deletes the customer)
//! - `orders-enriched`: keyed by order id, value JSON with the order's fields plus
//!   `customer_name` and `tier`; a null value when the order has no result any more (it
//!   was deleted, or, for the inner join, its customer is missing or unset). With
//!   `--left-join`, orders without a customer are written with null customer fields.
//!
//! The two topics may have different partition counts and need not be partitioned by the
//! same key. `customers` must be partitioned like Kafka's default partitioner (murmur2) so
//! that the subscription registration topic, keyed by customer id, is co-partitioned with
//! it; `orders` may be partitioned any way (responses go back to the order's partition).

#[path = "common/mod.rs"]
mod common;

use clap::Parser;
use gregor_streams::{Consumed, Materialized, Produced, Serdes, StreamsBuilder};
use serde::{Deserialize, Serialize};

#[derive(Parser, Debug)]
struct Args {
    #[command(flatten)]
    runtime: common::RuntimeArgs,
    #[arg(long, default_value = "streams-fk-join")]
    app_id: String,
    /// Keep orders without a (known) customer, with null customer fields.
    #[arg(long)]
    left_join: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Order {
    customer_id: Option<String>,
    item: String,
    amount: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Customer {
    name: String,
    tier: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct EnrichedOrder {
    customer_id: Option<String>,
    item: String,
    amount: f64,
    customer_name: Option<String>,
    tier: Option<String>,
}

fn enrich(order: &Order, customer: Option<&Customer>) -> EnrichedOrder {
    EnrichedOrder {
        customer_id: order.customer_id.clone(),
        item: order.item.clone(),
        amount: order.amount,
        customer_name: customer.map(|c| c.name.clone()),
        tier: customer.map(|c| c.tier.clone()),
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let builder = StreamsBuilder::new();
    let customers = builder.table(
        "customers",
        Consumed::with(Serdes::string(), Serdes::json::<Customer>()),
        Materialized::as_("customers"),
    );
    let orders = builder.table(
        "orders",
        Consumed::with(Serdes::string(), Serdes::json::<Order>()),
        Materialized::as_("orders"),
    );
    let customer_of = |order: &Order| order.customer_id.clone();
    let enriched = if args.left_join {
        orders.left_join_on_foreign_key(&customers, customer_of, enrich)?
    } else {
        orders.join_on_foreign_key(&customers, customer_of, |o: &Order, c: &Customer| {
            enrich(o, Some(c))
        })?
    };
    enriched.to_stream().to(
        "orders-enriched",
        Produced::with(Serdes::string(), Serdes::json()),
    );
    common::run(builder.build()?, args.runtime.config(&args.app_id))
}
