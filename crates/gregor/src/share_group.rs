//! `gregor share-group`: list, describe, reset the offsets of and delete share groups
//! (KIP-932), with Kafka's admin APIs: ListGroups (type filter `share`) on every broker,
//! ShareGroupDescribe and DescribeShareGroupOffsets / AlterShareGroupOffsets /
//! DeleteGroups on the group's coordinator.

use anyhow::{bail, Result};
use clap::Subcommand;
use kafka_protocol::messages::alter_share_group_offsets_request::{
    AlterShareGroupOffsetsRequestPartition, AlterShareGroupOffsetsRequestTopic,
};
use kafka_protocol::messages::describe_share_group_offsets_request::DescribeShareGroupOffsetsRequestGroup;
use kafka_protocol::messages::{
    AlterShareGroupOffsetsRequest, DeleteGroupsRequest, DescribeShareGroupOffsetsRequest, GroupId,
    ListGroupsRequest, MetadataRequest, ShareGroupDescribeRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde_json::json;

use crate::conn::{table, Conn, TIMEOUT};
use crate::wire::{error_name, Wire};

#[derive(Subcommand)]
pub(crate) enum ShareGroupCommand {
    /// Share groups on every broker, with their state.
    ///
    /// Example: gregor share-group list
    List,
    /// A share group's members and assignments, and each share-partition's start
    /// offset (SPSO) with the records after it (lag).
    ///
    /// Example: gregor share-group describe workers
    Describe { group: String },
    /// Move a share group's start offsets (the group must have no members).
    ///
    /// Example: gregor share-group reset-offsets workers --topic jobs --to earliest
    ResetOffsets {
        group: String,
        #[arg(long)]
        topic: String,
        /// earliest, latest, or an offset.
        #[arg(long)]
        to: String,
        /// Only this partition (default: all).
        #[arg(long)]
        partition: Option<i32>,
    },
    /// Delete an empty share group and its share-partition state.
    ///
    /// Example: gregor share-group delete workers
    Delete { group: String },
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

pub(crate) fn run(conn: &Conn, cmd: ShareGroupCommand) -> Result<()> {
    conn.config()?; // the reachability check
    match cmd {
        ShareGroupCommand::List => list(conn),
        ShareGroupCommand::Describe { group } => describe(conn, &group),
        ShareGroupCommand::ResetOffsets {
            group,
            topic,
            to,
            partition,
        } => reset(conn, &group, &topic, &to, partition),
        ShareGroupCommand::Delete { group } => {
            let mut c = Wire::coordinator(conn, &group, 0)?;
            let r = c.call(
                &DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s(&group))]),
                2,
            )?;
            match r.results.first().map(|g| g.error_code) {
                Some(0) => {
                    out!("deleted share group {group}");
                    Ok(())
                }
                Some(code) => bail!("cannot delete {group}: {}", error_name(code)),
                None => bail!("cannot delete {group}: empty answer"),
            }
        }
    }
}

fn list(conn: &Conn) -> Result<()> {
    let mut w = Wire::open(conn)?;
    let md = w.call(
        &MetadataRequest::default().with_topics(Some(Vec::new())),
        12,
    )?;
    let mut rows = Vec::new();
    for b in &md.brokers {
        let mut bw = Wire::connect(conn, &format!("{}:{}", b.host.as_str(), b.port))?;
        let r = bw.call(
            &ListGroupsRequest::default().with_types_filter(vec![s("share")]),
            5,
        )?;
        if r.error_code != 0 {
            bail!("broker {}: {}", b.node_id.0, error_name(r.error_code));
        }
        for g in r.groups {
            rows.push(vec![g.group_id.to_string(), g.group_state.to_string()]);
        }
    }
    rows.sort();
    rows.dedup();
    if conn.json() {
        let v: Vec<_> = rows
            .iter()
            .map(|r| json!({"group": r[0], "state": r[1]}))
            .collect();
        out!("{}", json!(v));
    } else {
        table(&["GROUP", "STATE"], &rows);
    }
    Ok(())
}

fn describe(conn: &Conn, group: &str) -> Result<()> {
    let mut c = Wire::coordinator(conn, group, 0)?;
    let d = c.call(
        &ShareGroupDescribeRequest::default().with_group_ids(vec![GroupId(s(group))]),
        1,
    )?;
    let Some(g) = d.groups.into_iter().next() else {
        bail!("empty answer");
    };
    if g.error_code != 0 {
        bail!("cannot describe {group}: {}", error_name(g.error_code));
    }
    let o = c.call(
        &DescribeShareGroupOffsetsRequest::default().with_groups(vec![
            DescribeShareGroupOffsetsRequestGroup::default()
                .with_group_id(GroupId(s(group)))
                .with_topics(None), // every topic the group has state for
        ]),
        0,
    )?;
    let consumer: BaseConsumer = conn.config()?.create()?;
    let mut offsets = Vec::new();
    for og in &o.groups {
        if og.error_code != 0 {
            bail!(
                "cannot read the offsets of {group}: {}",
                error_name(og.error_code)
            );
        }
        for t in &og.topics {
            for p in &t.partitions {
                let end = consumer
                    .fetch_watermarks(t.topic_name.as_str(), p.partition_index, TIMEOUT)
                    .map(|(_, hi)| hi)
                    .ok();
                let lag = end
                    .filter(|_| p.start_offset >= 0)
                    .map(|e| (e - p.start_offset).max(0));
                offsets.push((
                    t.topic_name.to_string(),
                    p.partition_index,
                    p.start_offset,
                    lag,
                ));
            }
        }
    }
    offsets.sort();
    if conn.json() {
        let members: Vec<_> = g
            .members
            .iter()
            .map(|m| {
                json!({
                    "member_id": m.member_id.as_str(), "client_id": m.client_id.as_str(),
                    "host": m.client_host.as_str(), "epoch": m.member_epoch,
                    "assignment": m.assignment.topic_partitions.iter().map(|t| json!({
                        "topic": t.topic_name.as_str(), "partitions": t.partitions,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        let offs: Vec<_> = offsets
            .iter()
            .map(|(t, p, so, lag)| json!({"topic": t, "partition": p, "start_offset": so, "lag": lag}))
            .collect();
        out!(
            "{}",
            json!({"group": group, "state": g.group_state.as_str(), "epoch": g.group_epoch,
                   "members": members, "offsets": offs})
        );
        return Ok(());
    }
    out!(
        "share group {group}: {}, epoch {}, {} member(s)",
        g.group_state.as_str(),
        g.group_epoch,
        g.members.len()
    );
    let rows: Vec<Vec<String>> = g
        .members
        .iter()
        .map(|m| {
            let parts: Vec<String> = m
                .assignment
                .topic_partitions
                .iter()
                .map(|t| format!("{}:{:?}", t.topic_name.as_str(), t.partitions))
                .collect();
            vec![
                m.member_id.to_string(),
                m.client_id.to_string(),
                m.client_host.to_string(),
                parts.join(" "),
            ]
        })
        .collect();
    if !rows.is_empty() {
        table(&["MEMBER", "CLIENT-ID", "HOST", "ASSIGNMENT"], &rows);
    }
    let rows: Vec<Vec<String>> = offsets
        .iter()
        .map(|(t, p, so, lag)| {
            vec![
                t.clone(),
                p.to_string(),
                so.to_string(),
                lag.map_or("-".into(), |l| l.to_string()),
            ]
        })
        .collect();
    table(&["TOPIC", "PARTITION", "START-OFFSET", "LAG"], &rows);
    Ok(())
}

fn reset(conn: &Conn, group: &str, topic: &str, to: &str, only: Option<i32>) -> Result<()> {
    let md = conn.metadata(Some(topic))?;
    let Some(t) = md.topics().iter().find(|t| t.name() == topic) else {
        bail!("unknown topic {topic}");
    };
    if t.partitions().is_empty() {
        bail!("unknown topic {topic}");
    }
    let consumer: BaseConsumer = conn.config()?.create()?;
    let mut partitions = Vec::new();
    for p in t
        .partitions()
        .iter()
        .filter(|p| only.is_none_or(|o| o == p.id()))
    {
        let offset = match to {
            "earliest" => consumer.fetch_watermarks(topic, p.id(), TIMEOUT)?.0,
            "latest" => consumer.fetch_watermarks(topic, p.id(), TIMEOUT)?.1,
            n => n
                .parse::<i64>()
                .map_err(|_| anyhow::anyhow!("--to must be earliest, latest or an offset"))?,
        };
        partitions.push(
            AlterShareGroupOffsetsRequestPartition::default()
                .with_partition_index(p.id())
                .with_start_offset(offset),
        );
    }
    if partitions.is_empty() {
        bail!("{topic} has no partition {}", only.unwrap_or(-1));
    }
    let shown: Vec<(i32, i64)> = partitions
        .iter()
        .map(|p| (p.partition_index, p.start_offset))
        .collect();
    let mut c = Wire::coordinator(conn, group, 0)?;
    let r = c.call(
        &AlterShareGroupOffsetsRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_topics(vec![AlterShareGroupOffsetsRequestTopic::default()
                .with_topic_name(TopicName(s(topic)))
                .with_partitions(partitions)]),
        0,
    )?;
    if r.error_code != 0 {
        bail!(
            "cannot reset the offsets of {group}: {}{}",
            error_name(r.error_code),
            r.error_message
                .map(|m| format!(" ({})", m.as_str()))
                .unwrap_or_default()
        );
    }
    for t in &r.responses {
        for p in &t.partitions {
            if p.error_code != 0 {
                bail!(
                    "{topic}-{}: {}",
                    p.partition_index,
                    error_name(p.error_code)
                );
            }
        }
    }
    for (p, o) in shown {
        out!("{group} {topic}-{p} start offset {o}");
    }
    Ok(())
}
