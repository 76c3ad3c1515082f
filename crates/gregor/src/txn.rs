//! `gregor txn`: transactions for operators: list them, describe them, and show each
//! partition's producers (what holds a read_committed consumer back). These admin APIs
//! are not in librdkafka's API, so they go over [`crate::wire`].

use anyhow::{bail, Result};
use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::{
    DescribeProducersRequest, DescribeTransactionsRequest, ListTransactionsRequest, TopicName,
    TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use serde_json::json;

use crate::conn::{table, Conn};
use crate::wire::{error_name, Wire};

#[derive(clap::Subcommand)]
pub(crate) enum TxnCommand {
    /// List transactional ids, optionally by state (Ongoing, CompleteCommit, ...) or
    /// those open for longer than --older-than-ms.
    ///
    /// Example: gregor txn list --state Ongoing
    List {
        #[arg(long = "state")]
        states: Vec<String>,
        #[arg(long)]
        older_than_ms: Option<i64>,
    },
    /// State, producer id and epoch, timeout, start time and partitions.
    ///
    /// Example: gregor txn describe payments-app
    Describe {
        #[arg(required = true)]
        transactional_ids: Vec<String>,
    },
    /// The producers a topic's partitions remember, with any open transaction's first
    /// offset (the last stable offset cannot pass it).
    ///
    /// Example: gregor txn producers orders
    Producers {
        topic: String,
        /// Partitions (default: all of the topic's).
        #[arg(long = "partition", short = 'p')]
        partitions: Vec<i32>,
    },
}

pub(crate) fn run(conn: &Conn, cmd: TxnCommand) -> Result<()> {
    conn.config()?; // the reachability check
    match cmd {
        TxnCommand::List {
            states,
            older_than_ms,
        } => list(conn, states, older_than_ms),
        TxnCommand::Describe { transactional_ids } => describe(conn, &transactional_ids),
        TxnCommand::Producers { topic, partitions } => producers(conn, &topic, partitions),
    }
}

fn list(conn: &Conn, states: Vec<String>, older_than_ms: Option<i64>) -> Result<()> {
    let mut w = Wire::open(conn)?;
    let req = ListTransactionsRequest::default()
        .with_state_filters(states.into_iter().map(StrBytes::from_string).collect())
        .with_duration_filter(older_than_ms.unwrap_or(-1));
    let resp = w.call(&req, 1)?;
    if resp.error_code != 0 {
        bail!("cannot list transactions: {}", error_name(resp.error_code));
    }
    if !resp.unknown_state_filters.is_empty() {
        let unknown: Vec<&str> = resp
            .unknown_state_filters
            .iter()
            .map(|s| s.as_str())
            .collect();
        bail!("unknown transaction states: {}", unknown.join(", "));
    }
    if conn.json() {
        let rows: Vec<_> = resp
            .transaction_states
            .iter()
            .map(|t| {
                json!({
                    "transactional_id": t.transactional_id.as_str(),
                    "producer_id": t.producer_id.0,
                    "state": t.transaction_state.as_str(),
                })
            })
            .collect();
        out!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = resp
        .transaction_states
        .iter()
        .map(|t| {
            vec![
                t.transactional_id.to_string(),
                t.producer_id.0.to_string(),
                t.transaction_state.to_string(),
            ]
        })
        .collect();
    table(&["TRANSACTIONAL ID", "PRODUCER ID", "STATE"], &rows);
    Ok(())
}

fn describe(conn: &Conn, ids: &[String]) -> Result<()> {
    let mut states = Vec::new();
    for id in ids {
        let mut coord = Wire::coordinator(conn, id, 1)?;
        let req = DescribeTransactionsRequest::default()
            .with_transactional_ids(vec![TransactionalId(StrBytes::from_string(id.clone()))]);
        states.extend(coord.call(&req, 0)?.transaction_states);
    }
    if let Some(bad) = states.iter().find(|s| s.error_code != 0) {
        bail!(
            "cannot describe {}: {}",
            bad.transactional_id.as_str(),
            error_name(bad.error_code)
        );
    }
    let partitions =
        |s: &kafka_protocol::messages::describe_transactions_response::TransactionState| {
            s.topics
                .iter()
                .flat_map(|t| {
                    t.partitions
                        .iter()
                        .map(move |p| format!("{}-{p}", t.topic.as_str()))
                })
                .collect::<Vec<_>>()
        };
    if conn.json() {
        let rows: Vec<_> = states
            .iter()
            .map(|s| {
                json!({
                    "transactional_id": s.transactional_id.as_str(),
                    "state": s.transaction_state.as_str(),
                    "producer_id": s.producer_id.0,
                    "producer_epoch": s.producer_epoch,
                    "timeout_ms": s.transaction_timeout_ms,
                    "start_time_ms": s.transaction_start_time_ms,
                    "partitions": partitions(s),
                })
            })
            .collect();
        out!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = states
        .iter()
        .map(|s| {
            vec![
                s.transactional_id.to_string(),
                s.transaction_state.to_string(),
                s.producer_id.0.to_string(),
                s.producer_epoch.to_string(),
                s.transaction_timeout_ms.to_string(),
                s.transaction_start_time_ms.to_string(),
                partitions(s).join(","),
            ]
        })
        .collect();
    table(
        &[
            "TRANSACTIONAL ID",
            "STATE",
            "PRODUCER ID",
            "EPOCH",
            "TIMEOUT MS",
            "START TIME MS",
            "PARTITIONS",
        ],
        &rows,
    );
    Ok(())
}

fn producers(conn: &Conn, topic: &str, mut partitions: Vec<i32>) -> Result<()> {
    if partitions.is_empty() {
        let md = conn.metadata(Some(topic))?;
        let Some(t) = md.topics().iter().find(|t| t.name() == topic) else {
            bail!("topic {topic} does not exist");
        };
        if t.partitions().is_empty() {
            bail!("topic {topic} does not exist");
        }
        partitions = t.partitions().iter().map(|p| p.id()).collect();
    }
    let mut w = Wire::open(conn)?;
    let req = DescribeProducersRequest::default().with_topics(vec![TopicRequest::default()
        .with_name(TopicName(StrBytes::from_string(topic.to_string())))
        .with_partition_indexes(partitions)]);
    let resp = w.call(&req, 0)?;
    let mut rows = Vec::new();
    let mut listed = Vec::new();
    for t in &resp.topics {
        for p in &t.partitions {
            if p.error_code != 0 {
                bail!(
                    "cannot describe producers of {topic}-{}: {}",
                    p.partition_index,
                    error_name(p.error_code)
                );
            }
            for a in &p.active_producers {
                rows.push(vec![
                    p.partition_index.to_string(),
                    a.producer_id.0.to_string(),
                    a.producer_epoch.to_string(),
                    a.last_sequence.to_string(),
                    a.last_timestamp.to_string(),
                    a.current_txn_start_offset.to_string(),
                ]);
                listed.push(json!({
                    "partition": p.partition_index,
                    "producer_id": a.producer_id.0,
                    "producer_epoch": a.producer_epoch,
                    "last_sequence": a.last_sequence,
                    "last_timestamp": a.last_timestamp,
                    "current_txn_start_offset": a.current_txn_start_offset,
                }));
            }
        }
    }
    if conn.json() {
        out!("{}", serde_json::to_string_pretty(&listed)?);
        return Ok(());
    }
    table(
        &[
            "PARTITION",
            "PRODUCER ID",
            "EPOCH",
            "LAST SEQUENCE",
            "LAST TIMESTAMP",
            "TXN START OFFSET",
        ],
        &rows,
    );
    Ok(())
}
