//! Orders totalled per customer, in Avro through the schema registry: `orders-avro`
//! (key: not read; value: Avro `Order`, as Confluent's `AvroSerializer` writes it) is
//! re-keyed by customer and aggregated into `customer-totals` (key: customer, UTF-8;
//! value: Avro `CustomerTotal`, its schema registered under `customer-totals-value`).
//! Orders written with a newer compatible `Order` schema (say, with an added optional
//! field) are read through Avro schema resolution. Records that are not Avro are skipped
//! (log-and-continue). With `--format json-schema` the same runs with JSON Schema serdes
//! (Confluent's `JSONSerializer` framing; subjects get the JSON Schemas below).
//!
//! `cargo run --release -p gregor-streams --example avro_orders -- --brokers 127.0.0.1:9092
//!  --schema-registry-url http://127.0.0.1:8081`

#[path = "common/mod.rs"]
mod common;

use clap::Parser;
use gregor_streams::{
    AvroSerde, Consumed, Grouped, JsonSchemaSerde, Materialized, Produced, RegistrySerdeConfig,
    SerdeRef, Serdes, StreamsBuilder,
};
use serde::{Deserialize, Serialize};

#[derive(Parser, Debug)]
struct Args {
    #[command(flatten)]
    runtime: common::RuntimeArgs,
    /// application.id
    #[arg(long, default_value = "streams-avro-orders")]
    app_id: String,
    /// schema.registry.url
    #[arg(long, default_value = "http://127.0.0.1:8081")]
    schema_registry_url: String,
    #[arg(long, default_value = "orders-avro")]
    input: String,
    #[arg(long, default_value = "customer-totals")]
    output: String,
    /// avro | json-schema
    #[arg(long, default_value = "avro")]
    format: String,
}

/// The reader schema of the input values.
const ORDER: &str = r#"{"type": "record", "name": "Order", "namespace": "gregor.examples",
 "fields": [
  {"name": "order_id", "type": "string"},
  {"name": "customer", "type": "string"},
  {"name": "amount", "type": "double"}]}"#;

const CUSTOMER_TOTAL: &str = r#"{"type": "record", "name": "CustomerTotal",
 "namespace": "gregor.examples", "fields": [
  {"name": "customer", "type": "string"},
  {"name": "orders", "type": "long"},
  {"name": "total", "type": "double"},
  {"name": "last_order_id", "type": ["null", "string"], "default": null}]}"#;

const ORDER_JSON: &str = r#"{"title": "Order", "type": "object", "properties": {
  "order_id": {"type": "string"}, "customer": {"type": "string"},
  "amount": {"type": "number"}}, "required": ["order_id", "customer", "amount"]}"#;

const CUSTOMER_TOTAL_JSON: &str = r#"{"title": "CustomerTotal", "type": "object",
 "properties": {"customer": {"type": "string"}, "orders": {"type": "integer"},
  "total": {"type": "number"}, "last_order_id": {"type": ["string", "null"]}},
 "required": ["customer", "orders", "total"]}"#;

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Order {
    order_id: String,
    customer: String,
    amount: f64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct CustomerTotal {
    customer: String,
    orders: i64,
    total: f64,
    last_order_id: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = args
        .runtime
        .config(&args.app_id)
        .set("schema.registry.url", &args.schema_registry_url);
    // One registry client (and cache) for every serde of the application.
    let registry = RegistrySerdeConfig::from_streams_config(&config)?;
    let (orders, totals): (SerdeRef<Order>, SerdeRef<CustomerTotal>) = match &*args.format {
        "avro" => (
            AvroSerde::value(ORDER, &registry)?,
            AvroSerde::value(CUSTOMER_TOTAL, &registry)?,
        ),
        "json-schema" => (
            JsonSchemaSerde::value(ORDER_JSON, &registry)?,
            JsonSchemaSerde::value(CUSTOMER_TOTAL_JSON, &registry)?,
        ),
        other => anyhow::bail!("unknown --format {other:?} (avro | json-schema)"),
    };

    let builder = StreamsBuilder::new();
    builder
        .stream(
            &args.input,
            Consumed::with(Serdes::string(), orders.clone()),
        )
        .group_by(
            |_, order: &Order| order.customer.clone(),
            Grouped::with(Serdes::string(), orders).named("orders-by-customer"),
        )
        .aggregate(
            CustomerTotal::default,
            |customer: &String, order: &Order, mut acc: CustomerTotal| {
                acc.customer.clone_from(customer);
                acc.orders += 1;
                acc.total += order.amount;
                acc.last_order_id = Some(order.order_id.clone());
                acc
            },
            totals.clone(),
            Materialized::as_("totals"),
        )
        .to_stream()
        .to(&args.output, Produced::with(Serdes::string(), totals));
    let topology = builder.build()?;
    eprintln!("{}", topology.describe());
    common::run(topology, config)
}
