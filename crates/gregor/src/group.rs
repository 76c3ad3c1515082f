//! `gregor group`: list, describe (members, assignments, offsets, lag), delete.

use anyhow::{bail, Context, Result};
use rdkafka::admin::AdminOptions;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::json;

use crate::conn::{block_on, table, Conn, TIMEOUT};

#[derive(clap::Subcommand)]
pub(crate) enum GroupCommand {
    /// List consumer groups.
    ///
    /// Example: gregor group list
    List,
    /// Members, assignments, and committed offset, end offset and lag per partition.
    ///
    /// Example: gregor group describe billing
    Describe { group: String },
    /// Delete empty groups and their committed offsets.
    ///
    /// Example: gregor group delete billing
    Delete {
        #[arg(required = true)]
        groups: Vec<String>,
    },
}

/// A member: id, client id, host, and its assignment by topic.
type MemberRow = (String, String, String, Vec<(String, Vec<i32>)>);

/// Topics and partitions in a consumer-protocol assignment (`ConsumerProtocolAssignment`).
fn parse_assignment(b: &[u8]) -> Vec<(String, Vec<i32>)> {
    let mut out = Vec::new();
    let mut pos = 2usize; // version
    let read_i32 = |pos: &mut usize| -> Option<i32> {
        let s = b.get(*pos..*pos + 4)?;
        *pos += 4;
        Some(i32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    };
    let Some(topics) = read_i32(&mut pos) else {
        return out;
    };
    for _ in 0..topics.max(0) {
        let Some(l) = b.get(pos..pos + 2) else { break };
        let len = i16::from_be_bytes([l[0], l[1]]).max(0) as usize;
        pos += 2;
        let Some(name) = b.get(pos..pos + len) else {
            break;
        };
        pos += len;
        let Some(n) = read_i32(&mut pos) else { break };
        let mut parts = Vec::new();
        for _ in 0..n.max(0) {
            match read_i32(&mut pos) {
                Some(p) => parts.push(p),
                None => break,
            }
        }
        out.push((String::from_utf8_lossy(name).into_owned(), parts));
    }
    out
}

pub(crate) fn run(conn: &Conn, cmd: GroupCommand) -> Result<()> {
    match cmd {
        GroupCommand::List => {
            let consumer: BaseConsumer = conn.config()?.create().context("cannot create client")?;
            let list = consumer
                .fetch_group_list(None, TIMEOUT)
                .context("cannot list groups")?;
            let mut groups: Vec<_> = list
                .groups()
                .iter()
                .map(|g| {
                    (
                        g.name().to_string(),
                        g.state().to_string(),
                        g.protocol_type().to_string(),
                        g.members().len(),
                    )
                })
                .collect();
            groups.sort();
            if conn.json() {
                let v: Vec<_> = groups
                    .iter()
                    .map(|(n, s, t, m)| json!({"group": n, "state": s, "protocol_type": t, "members": m}))
                    .collect();
                println!("{}", serde_json::Value::Array(v));
            } else {
                let rows: Vec<Vec<String>> = groups
                    .iter()
                    .map(|(n, s, t, m)| vec![n.clone(), s.clone(), t.clone(), m.to_string()])
                    .collect();
                table(&["GROUP", "STATE", "TYPE", "MEMBERS"], &rows);
            }
        }
        GroupCommand::Describe { group } => {
            let mut cfg = conn.config()?;
            cfg.set("group.id", &group)
                .set("enable.auto.commit", "false");
            let consumer: BaseConsumer = cfg.create().context("cannot create client")?;
            let list = consumer
                .fetch_group_list(Some(&group), TIMEOUT)
                .context("cannot describe group")?;
            let Some(g) = list.groups().iter().find(|g| g.name() == group) else {
                bail!("unknown group {group}");
            };
            let members: Vec<MemberRow> = g
                .members()
                .iter()
                .map(|m| {
                    (
                        m.id().to_string(),
                        m.client_id().to_string(),
                        m.client_host().to_string(),
                        m.assignment().map(parse_assignment).unwrap_or_default(),
                    )
                })
                .collect();
            // Committed offsets for every partition of every (non-internal) topic; the
            // group's own are the ones with an offset.
            let md = consumer
                .fetch_metadata(None, TIMEOUT)
                .context("cannot fetch metadata")?;
            let mut tpl = TopicPartitionList::new();
            for t in md.topics().iter().filter(|t| !t.name().starts_with("__")) {
                for p in t.partitions() {
                    tpl.add_partition(t.name(), p.id());
                }
            }
            let committed = consumer
                .committed_offsets(tpl, TIMEOUT)
                .context("cannot fetch committed offsets")?;
            let mut offsets = Vec::new();
            for e in committed.elements() {
                if let Offset::Offset(o) = e.offset() {
                    let (_, high) = consumer
                        .fetch_watermarks(e.topic(), e.partition(), TIMEOUT)
                        .context("cannot read end offsets")?;
                    let owner = members
                        .iter()
                        .find(|m| {
                            m.3.iter()
                                .any(|(t, ps)| t == e.topic() && ps.contains(&e.partition()))
                        })
                        .map(|m| m.0.clone())
                        .unwrap_or_default();
                    offsets.push((
                        e.topic().to_string(),
                        e.partition(),
                        o,
                        high,
                        (high - o).max(0),
                        owner,
                    ));
                }
            }
            if conn.json() {
                let ms: Vec<_> = members
                    .iter()
                    .map(|(id, c, h, a)| {
                        let a: Vec<_> = a
                            .iter()
                            .map(|(t, ps)| json!({"topic": t, "partitions": ps}))
                            .collect();
                        json!({"member_id": id, "client_id": c, "host": h, "assignment": a})
                    })
                    .collect();
                let os: Vec<_> = offsets
                    .iter()
                    .map(|(t, p, o, h, l, m)| {
                        json!({"topic": t, "partition": p, "committed": o, "end": h, "lag": l, "member": m})
                    })
                    .collect();
                println!(
                    "{}",
                    json!({"group": group, "state": g.state(), "protocol": g.protocol(), "members": ms, "offsets": os})
                );
            } else {
                println!(
                    "group {group}: {} ({} members, protocol {})",
                    g.state(),
                    members.len(),
                    g.protocol()
                );
                if !members.is_empty() {
                    let rows: Vec<Vec<String>> = members
                        .iter()
                        .map(|(id, c, h, a)| {
                            let a: Vec<String> =
                                a.iter().map(|(t, ps)| format!("{t}{ps:?}")).collect();
                            vec![id.clone(), c.clone(), h.clone(), a.join(" ")]
                        })
                        .collect();
                    table(&["MEMBER", "CLIENT", "HOST", "ASSIGNMENT"], &rows);
                    println!();
                }
                let rows: Vec<Vec<String>> = offsets
                    .iter()
                    .map(|(t, p, o, h, l, m)| {
                        vec![
                            t.clone(),
                            p.to_string(),
                            o.to_string(),
                            h.to_string(),
                            l.to_string(),
                            m.clone(),
                        ]
                    })
                    .collect();
                table(
                    &["TOPIC", "PARTITION", "COMMITTED", "END", "LAG", "MEMBER"],
                    &rows,
                );
            }
        }
        GroupCommand::Delete { groups } => {
            let admin = conn.admin()?;
            let refs: Vec<&str> = groups.iter().map(String::as_str).collect();
            let opts = AdminOptions::new().operation_timeout(Some(TIMEOUT));
            for r in block_on(admin.delete_groups(&refs, &opts))?.context("delete_groups failed")? {
                if let Err((g, e)) = r {
                    bail!("cannot delete group {g}: {e}");
                }
            }
            if conn.json() {
                println!("{}", json!({"deleted": groups}));
            } else {
                println!("deleted {}", groups.join(", "));
            }
        }
    }
    Ok(())
}

/// `gregor cluster info`: brokers, cluster id, topic and partition counts.
pub(crate) fn cluster_info(conn: &Conn) -> Result<()> {
    let md = conn.metadata(None)?;
    let consumer: BaseConsumer = conn.config()?.create().context("cannot create client")?;
    let cluster_id = consumer
        .client()
        .fetch_cluster_id(TIMEOUT)
        .unwrap_or_default();
    let brokers: Vec<(i32, String, i32)> = md
        .brokers()
        .iter()
        .map(|b| (b.id(), b.host().to_string(), b.port()))
        .collect();
    let topics = md
        .topics()
        .iter()
        .filter(|t| !t.name().starts_with("__"))
        .count();
    let partitions: usize = md
        .topics()
        .iter()
        .filter(|t| !t.name().starts_with("__"))
        .map(|t| t.partitions().len())
        .sum();
    if conn.json() {
        let bs: Vec<_> = brokers
            .iter()
            .map(|(id, h, p)| json!({"id": id, "host": h, "port": p}))
            .collect();
        println!(
            "{}",
            json!({"cluster_id": cluster_id, "brokers": bs, "topics": topics, "partitions": partitions,
                   "answered_by": md.orig_broker_id()})
        );
    } else {
        println!(
            "cluster {cluster_id}: {} brokers, {topics} topics, {partitions} partitions",
            brokers.len()
        );
        let rows: Vec<Vec<String>> = brokers
            .iter()
            .map(|(id, h, p)| vec![id.to_string(), format!("{h}:{p}")])
            .collect();
        table(&["BROKER", "ADDRESS"], &rows);
    }
    Ok(())
}
