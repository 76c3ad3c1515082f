//! `gregor group`: list, describe (members, assignments, offsets, lag), delete.

use anyhow::{bail, Context, Result};
use rdkafka::admin::AdminOptions;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::json;

use crate::conn::{block_on, table, Conn, TIMEOUT};
use crate::wire::error_name;

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
    /// Move an inactive group's committed offsets. Shows the plan; --execute applies it.
    ///
    /// Example: gregor group reset-offsets billing --topic orders --to-datetime 2026-11-25T12:00:00Z --execute
    ResetOffsets {
        group: String,
        /// Topic whose partitions to move.
        #[arg(long, required = true)]
        topic: String,
        #[arg(long, group = "target")]
        to_earliest: bool,
        #[arg(long, group = "target")]
        to_latest: bool,
        /// An offset, applied to every partition.
        #[arg(long, group = "target", allow_hyphen_values = true)]
        to_offset: Option<i64>,
        /// The first offset at or after this time: RFC 3339 UTC (2026-11-25T12:00:00Z)
        /// or milliseconds since the epoch.
        #[arg(long, group = "target")]
        to_datetime: Option<String>,
        /// Move each committed offset by this many (may be negative).
        #[arg(long, group = "target", allow_hyphen_values = true)]
        shift_by: Option<i64>,
        /// Apply the plan (default: only show it).
        #[arg(long)]
        execute: bool,
    },
    /// Delete a group's committed offsets for partitions it is not consuming.
    ///
    /// Example: gregor group delete-offsets billing --topic orders --partition 0
    DeleteOffsets {
        group: String,
        #[arg(long, required = true)]
        topic: String,
        /// Partitions (default: all of the topic's).
        #[arg(long = "partition", short = 'p')]
        partitions: Vec<i32>,
    },
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
                out!("{}", serde_json::Value::Array(v));
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
                out!(
                    "{}",
                    json!({"group": group, "state": g.state(), "protocol": g.protocol(), "members": ms, "offsets": os})
                );
            } else {
                out!(
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
                    out!();
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
        GroupCommand::ResetOffsets {
            group,
            topic,
            to_earliest,
            to_latest,
            to_offset,
            to_datetime,
            shift_by,
            execute,
        } => {
            let mut cfg = conn.config()?;
            cfg.set("group.id", &group)
                .set("enable.auto.commit", "false");
            let consumer: BaseConsumer = cfg.create().context("cannot create client")?;
            let md = consumer
                .fetch_metadata(Some(&topic), TIMEOUT)
                .context("cannot fetch metadata")?;
            let Some(t) = md
                .topics()
                .iter()
                .find(|t| t.name() == topic && t.error().is_none())
            else {
                bail!("unknown topic {topic}");
            };
            let mut tpl = TopicPartitionList::new();
            for p in t.partitions() {
                tpl.add_partition(&topic, p.id());
            }
            let committed = consumer
                .committed_offsets(tpl.clone(), TIMEOUT)
                .context("cannot fetch committed offsets")?;
            let by_time = match &to_datetime {
                Some(d) => {
                    let ms = parse_datetime(d)?;
                    let mut q = TopicPartitionList::new();
                    for p in t.partitions() {
                        q.add_partition_offset(&topic, p.id(), Offset::Offset(ms))?;
                    }
                    Some(
                        consumer
                            .offsets_for_times(q, TIMEOUT)
                            .context("cannot look up offsets by time")?,
                    )
                }
                None => None,
            };
            let mut plan = Vec::new();
            for p in t.partitions() {
                let (low, high) = consumer
                    .fetch_watermarks(&topic, p.id(), TIMEOUT)
                    .context("cannot read offsets")?;
                let current =
                    committed
                        .find_partition(&topic, p.id())
                        .and_then(|e| match e.offset() {
                            Offset::Offset(o) => Some(o),
                            _ => None,
                        });
                let target = if to_earliest {
                    low
                } else if to_latest {
                    high
                } else if let Some(o) = to_offset {
                    o
                } else if let Some(n) = shift_by {
                    current.unwrap_or(low).saturating_add(n)
                } else if let Some(found) = &by_time {
                    match found.find_partition(&topic, p.id()).map(|e| e.offset()) {
                        Some(Offset::Offset(o)) => o,
                        _ => high,
                    }
                } else {
                    bail!("choose a target: --to-earliest, --to-latest, --to-offset, --to-datetime or --shift-by");
                };
                plan.push((p.id(), current, target.clamp(low, high)));
            }
            if execute {
                let mut commit = TopicPartitionList::new();
                for (p, _, target) in &plan {
                    commit.add_partition_offset(&topic, *p, Offset::Offset(*target))?;
                }
                consumer
                    .commit(&commit, rdkafka::consumer::CommitMode::Sync)
                    .with_context(|| {
                        format!(
                            "cannot commit new offsets for {group} (is the group still active?)"
                        )
                    })?;
            }
            if conn.json() {
                let v: Vec<_> = plan
                    .iter()
                    .map(
                        |(p, c, t)| json!({"topic": topic, "partition": p, "current": c, "new": t}),
                    )
                    .collect();
                out!(
                    "{}",
                    json!({"group": group, "executed": execute, "offsets": v})
                );
            } else {
                let rows: Vec<Vec<String>> = plan
                    .iter()
                    .map(|(p, c, t)| {
                        vec![
                            topic.clone(),
                            p.to_string(),
                            c.map_or("-".into(), |c| c.to_string()),
                            t.to_string(),
                        ]
                    })
                    .collect();
                table(&["TOPIC", "PARTITION", "CURRENT", "NEW"], &rows);
                if !execute {
                    out!("(dry run: add --execute to apply)");
                }
            }
        }
        GroupCommand::DeleteOffsets {
            group,
            topic,
            partitions,
        } => {
            let partitions = if partitions.is_empty() {
                let md = conn.metadata(Some(&topic))?;
                match md
                    .topics()
                    .iter()
                    .find(|t| t.name() == topic && t.error().is_none())
                {
                    Some(t) => t.partitions().iter().map(|p| p.id()).collect(),
                    None => bail!("unknown topic {topic}"),
                }
            } else {
                partitions
            };
            let failed = delete_offsets(conn, &group, &topic, &partitions)?;
            if conn.json() {
                let f: Vec<_> = failed
                    .iter()
                    .map(|(p, e)| json!({"partition": p, "error": e}))
                    .collect();
                out!(
                    "{}",
                    json!({"group": group, "topic": topic, "partitions": partitions, "failed": f})
                );
            } else {
                for (p, e) in &failed {
                    eprintln!("{topic}/{p}: {e}");
                }
                out!("deleted offsets of {group} for {topic} {partitions:?}");
            }
            if !failed.is_empty() {
                bail!("{} partitions failed", failed.len());
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
                out!("{}", json!({"deleted": groups}));
            } else {
                out!("deleted {}", groups.join(", "));
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
    let controller = controller_id(conn)?;
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
        out!(
            "{}",
            json!({"cluster_id": cluster_id, "controller": controller, "brokers": bs, "topics": topics,
                   "partitions": partitions, "answered_by": md.orig_broker_id()})
        );
    } else {
        out!(
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

/// Milliseconds since the epoch from `2026-11-25T12:00:00Z` (optionally with
/// fractional seconds) or from a number of milliseconds.
fn parse_datetime(s: &str) -> Result<i64> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    let bad =
        || anyhow::anyhow!("bad datetime {s:?}: use 2026-11-25T12:00:00Z or epoch milliseconds");
    let s2 = s.strip_suffix('Z').ok_or_else(bad)?;
    let (date, time) = s2.split_once('T').ok_or_else(bad)?;
    let d: Vec<i64> = date
        .split('-')
        .map(|x| x.parse().map_err(|_| bad()))
        .collect::<Result<_>>()?;
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let t: Vec<i64> = hms
        .split(':')
        .map(|x| x.parse().map_err(|_| bad()))
        .collect::<Result<_>>()?;
    if d.len() != 3 || t.len() != 3 {
        return Err(bad());
    }
    let millis: i64 = format!("{frac:0<3}")[..3].parse().map_err(|_| bad())?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, m, day) = (d[0] - i64::from(d[1] <= 2), d[1], d[2]);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok(((days * 24 + t[0]) * 60 + t[1]) * 60_000 + t[2] * 1000 + millis)
}

/// OffsetDelete through the group's coordinator (found with FindCoordinator). Returns
/// the partitions that failed, with why; a group-level failure is an `Err`.
fn delete_offsets(
    conn: &Conn,
    group: &str,
    topic: &str,
    partitions: &[i32],
) -> Result<Vec<(i32, String)>> {
    use kafka_protocol::messages::offset_delete_request::{
        OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
    };
    use kafka_protocol::messages::{GroupId, OffsetDeleteRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;

    conn.config()?; // the reachability check
    let mut coord = crate::wire::Wire::coordinator(conn, group, 0)?;
    let req = OffsetDeleteRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_topics(vec![OffsetDeleteRequestTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partitions(
                partitions
                    .iter()
                    .map(|p| OffsetDeleteRequestPartition::default().with_partition_index(*p))
                    .collect(),
            )]);
    let resp = coord.call(&req, 0)?;
    if resp.error_code != 0 {
        bail!(
            "cannot delete offsets of {group}: {}",
            error_name(resp.error_code)
        );
    }
    Ok(resp
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter())
        .filter(|p| p.error_code != 0)
        .map(|p| (p.partition_index, error_name(p.error_code)))
        .collect())
}

/// The controller's id, from a Metadata request (librdkafka keeps it to itself).
fn controller_id(conn: &Conn) -> Result<i32> {
    use kafka_protocol::messages::MetadataRequest;
    let mut w = crate::wire::Wire::open(conn)?;
    let md = w.call(&MetadataRequest::default().with_topics(Some(Vec::new())), 9)?;
    Ok(md.controller_id.0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn datetimes_parse_to_epoch_millis() {
        assert_eq!(parse_datetime("1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(
            parse_datetime("2000-03-01T00:00:01.5Z").unwrap(),
            951_868_801_500
        );
        assert_eq!(parse_datetime("1700000000000").unwrap(), 1_700_000_000_000);
        assert!(parse_datetime("yesterday").is_err());
    }
}
