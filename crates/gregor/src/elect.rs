//! `gregor cluster elect-leaders`: a preferred or unclean leader election (ElectLeaders,
//! API 43) on some partitions, or on all of them. Over [`crate::wire`].

use anyhow::{bail, Result};
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{ElectLeadersRequest, MetadataRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use serde_json::json;

use crate::conn::{table, Conn};
use crate::wire::{error_name, Wire};

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(crate) enum Kind {
    /// Back to the first replica of each assignment, if it is in sync.
    Preferred,
    /// Only partitions without a live leader; may take a replica outside the ISR (and
    /// lose what only the ISR had).
    Unclean,
}

#[derive(clap::Args)]
pub(crate) struct ElectArgs {
    /// The kind of election.
    #[arg(long = "type", value_enum, default_value = "preferred")]
    kind: Kind,
    /// The topic; without it, every partition of every topic.
    #[arg(long)]
    topic: Option<String>,
    /// Partitions of the topic (repeat or comma-separate); without it, all of them.
    #[arg(long, value_delimiter = ',', requires = "topic")]
    partition: Vec<i32>,
}

pub(crate) fn run(conn: &Conn, args: ElectArgs) -> Result<()> {
    let mut w = Wire::open(conn)?;
    let partitions = match &args.topic {
        None => None,
        Some(topic) => {
            let mut list = args.partition.clone();
            if list.is_empty() {
                list = partition_ids(&mut w, topic)?;
            }
            Some(vec![TopicPartitions::default()
                .with_topic(TopicName(StrBytes::from_string(topic.clone())))
                .with_partitions(list)])
        }
    };
    let req = ElectLeadersRequest::default()
        .with_election_type(match args.kind {
            Kind::Preferred => 0,
            Kind::Unclean => 1,
        })
        .with_topic_partitions(partitions)
        .with_timeout_ms(30_000);
    let resp = w.call(&req, 2)?;
    if resp.error_code != 0 {
        bail!("the election failed: {}", error_name(resp.error_code));
    }
    let mut rows = Vec::new();
    for t in &resp.replica_election_results {
        for p in &t.partition_result {
            let outcome = if p.error_code == 0 {
                "elected".to_string()
            } else {
                error_name(p.error_code)
            };
            rows.push((t.topic.to_string(), p.partition_id, outcome));
        }
    }
    if conn.json() {
        let list: Vec<_> = rows
            .iter()
            .map(|(t, p, o)| json!({"topic": t, "partition": p, "result": o}))
            .collect();
        out!("{}", json!(list));
    } else if rows.is_empty() {
        out!("no partition needed an election");
    } else {
        let table_rows: Vec<Vec<String>> = rows
            .iter()
            .map(|(t, p, o)| vec![t.clone(), p.to_string(), o.clone()])
            .collect();
        table(&["TOPIC", "PARTITION", "RESULT"], &table_rows);
    }
    Ok(())
}

/// Every partition of `topic`, from a Metadata request.
fn partition_ids(w: &mut Wire, topic: &str) -> Result<Vec<i32>> {
    let req = MetadataRequest::default().with_topics(Some(vec![MetadataRequestTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(topic.to_string()))))]));
    let resp = w.call(&req, 12)?;
    let Some(t) = resp.topics.first() else {
        bail!("no metadata for {topic}");
    };
    if t.error_code != 0 {
        bail!("{topic}: {}", error_name(t.error_code));
    }
    Ok(t.partitions.iter().map(|p| p.partition_index).collect())
}
