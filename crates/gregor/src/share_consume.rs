//! `gregor consume --share-group NAME`: queue-style consumption as a member of a share
//! group (KIP-932). librdkafka's Rust binding has no share consumer, so this speaks the
//! protocol itself on the generated `kafka-protocol` types:
//! - ShareGroupHeartbeat to the group's coordinator: join with epoch 0 and the
//!   subscribed topics, heartbeat at the interval the coordinator asks for, take the
//!   assignment it sends, leave with epoch -1;
//! - one share session per partition leader: ShareFetch with session epoch 0, then
//!   1, 2, ..., adding and forgetting partitions as the assignment changes, with the
//!   acknowledgements of what was printed piggybacked on the next fetch;
//! - every printed record is accepted; records acquired beyond `--count` are released
//!   so other members get them at once; the last acknowledgements go with the closing
//!   ShareAcknowledge (session epoch -1).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use kafka_protocol::messages::share_acknowledge_request::{
    AcknowledgePartition, AcknowledgeTopic, AcknowledgementBatch as AckBatchA,
};
use kafka_protocol::messages::share_fetch_request::{
    AcknowledgementBatch, FetchPartition, FetchTopic, ForgottenTopic,
};
use kafka_protocol::messages::{
    GroupId, MetadataRequest, ShareAcknowledgeRequest, ShareFetchRequest,
    ShareGroupHeartbeatRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::RecordBatchDecoder;

use crate::conn::Conn;
use crate::consume::{ConsumeArgs, Rec};
use crate::wire::{error_name, Wire};

const ACCEPT: i8 = 1;
const RELEASE: i8 = 2;
/// Kafka's errors a share member rides through by heartbeating or fetching again.
const RETRIABLE: &[i16] = &[
    6,   // NOT_LEADER_OR_FOLLOWER
    14,  // COORDINATOR_LOAD_IN_PROGRESS
    15,  // COORDINATOR_NOT_AVAILABLE
    16,  // NOT_COORDINATOR
    100, // UNKNOWN_TOPIC_ID
];

type Uuid = uuid::Uuid;
/// (topic id, partition)
type Tp = (Uuid, i32);
/// Acknowledgements waiting to be sent: (first offset, last offset, type).
type Acks = BTreeMap<Tp, Vec<(i64, i64, i8)>>;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// The cluster as this member needs it: topic names by id, partition leaders and
/// broker addresses.
struct Cluster {
    names: HashMap<Uuid, String>,
    leaders: HashMap<Tp, i32>,
    brokers: HashMap<i32, String>,
}

fn cluster(conn: &Conn, topics: &[String]) -> Result<Cluster> {
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    let mut w = Wire::open(conn)?;
    let req = MetadataRequest::default().with_topics(Some(
        topics
            .iter()
            .map(|t| MetadataRequestTopic::default().with_name(Some(TopicName(s(t)))))
            .collect(),
    ));
    let md = w.call(&req, 12)?;
    let mut c = Cluster {
        names: HashMap::new(),
        leaders: HashMap::new(),
        brokers: md
            .brokers
            .iter()
            .map(|b| (b.node_id.0, format!("{}:{}", b.host.as_str(), b.port)))
            .collect(),
    };
    for t in &md.topics {
        let Some(name) = &t.name else { continue };
        if t.error_code != 0 {
            bail!("topic {}: {}", name.as_str(), error_name(t.error_code));
        }
        c.names.insert(t.topic_id, name.to_string());
        for p in &t.partitions {
            c.leaders
                .insert((t.topic_id, p.partition_index), p.leader_id.0);
        }
    }
    Ok(c)
}

/// One share session with a partition leader.
struct Session {
    wire: Wire,
    epoch: i32,
    partitions: BTreeSet<Tp>,
}

struct Member<'a> {
    conn: &'a Conn,
    group: String,
    id: String,
    epoch: i32,
    interval: Duration,
    next_heartbeat: Instant,
    coordinator: Wire,
    assignment: BTreeSet<Tp>,
}

impl Member<'_> {
    fn heartbeat(&mut self, topics: Option<&[String]>) -> Result<()> {
        let req = ShareGroupHeartbeatRequest::default()
            .with_group_id(GroupId(s(&self.group)))
            .with_member_id(s(&self.id))
            .with_member_epoch(self.epoch)
            .with_subscribed_topic_names(
                topics.map(|ts| ts.iter().map(|t| TopicName(s(t))).collect()),
            );
        let r = self.coordinator.call(&req, 1)?;
        if r.error_code != 0 {
            if RETRIABLE.contains(&r.error_code) && self.epoch >= 0 {
                // The coordinator moved: find it again and retry at the next beat.
                self.coordinator = Wire::coordinator(self.conn, &self.group, 0)?;
                self.next_heartbeat = Instant::now() + Duration::from_millis(200);
                return Ok(());
            }
            bail!(
                "share group {}: {}{}",
                self.group,
                error_name(r.error_code),
                r.error_message
                    .map(|m| format!(" ({})", m.as_str()))
                    .unwrap_or_default()
            );
        }
        self.epoch = r.member_epoch;
        self.interval =
            Duration::from_millis(u64::try_from(r.heartbeat_interval_ms).unwrap_or(5000));
        self.next_heartbeat = Instant::now() + self.interval;
        if let Some(a) = r.assignment {
            self.assignment = a
                .topic_partitions
                .iter()
                .flat_map(|t| t.partitions.iter().map(move |p| (t.topic_id, *p)))
                .collect();
        }
        Ok(())
    }
}

pub(crate) fn run(conn: &Conn, args: &ConsumeArgs, group: &str) -> Result<()> {
    conn.config()?; // the reachability check, with its clear message
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut member = Member {
        conn,
        group: group.to_string(),
        id: format!("gregor-cli-{}-{nanos:x}", std::process::id()),
        epoch: 0,
        interval: Duration::from_secs(5),
        next_heartbeat: Instant::now(),
        coordinator: Wire::coordinator(conn, group, 0)
            .context("cannot find the group's coordinator")?,
        assignment: BTreeSet::new(),
    };
    member.heartbeat(Some(&args.topics))?;
    let mut cluster = cluster(conn, &args.topics)?;
    let mut sessions: HashMap<i32, Session> = HashMap::new();
    let mut acks: Acks = BTreeMap::new();
    let mut seen: u64 = 0;
    let limit = args.count.unwrap_or(u64::MAX);
    let mut out = std::io::stdout().lock();
    let started = Instant::now();
    let result = (|| -> Result<()> {
        while seen < limit {
            if Instant::now() >= member.next_heartbeat {
                member.heartbeat(None)?;
            }
            if member
                .assignment
                .iter()
                .any(|tp| !cluster.leaders.contains_key(tp))
            {
                cluster = crate::share_consume::cluster(conn, &args.topics)?;
            }
            // The assignment by leader.
            let mut by_leader: BTreeMap<i32, BTreeSet<Tp>> = BTreeMap::new();
            for tp in &member.assignment {
                if let Some(l) = cluster.leaders.get(tp).filter(|l| **l >= 0) {
                    by_leader.entry(*l).or_default().insert(*tp);
                }
            }
            if by_leader.is_empty() {
                if args.exit_at_end && started.elapsed() > member.interval * 2 {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(100)); // waiting for an assignment
                member.next_heartbeat = member.next_heartbeat.min(Instant::now());
                continue;
            }
            let mut got_any = false;
            let mut refresh = false;
            for (leader, wanted) in by_leader {
                let session = match sessions.get_mut(&leader) {
                    Some(s) => s,
                    None => {
                        let addr = cluster
                            .brokers
                            .get(&leader)
                            .with_context(|| format!("broker {leader} is not in the metadata"))?;
                        sessions.entry(leader).or_insert(Session {
                            wire: Wire::connect(conn, addr)?,
                            epoch: 0,
                            partitions: BTreeSet::new(),
                        })
                    }
                };
                let added: Vec<Tp> = wanted.difference(&session.partitions).copied().collect();
                let forgotten: Vec<Tp> = session.partitions.difference(&wanted).copied().collect();
                let mut topics: BTreeMap<Uuid, Vec<FetchPartition>> = BTreeMap::new();
                let named: Vec<Tp> = wanted
                    .iter()
                    .filter(|tp| added.contains(tp) || acks.contains_key(tp))
                    .copied()
                    .collect();
                for tp in &named {
                    let batches = acks
                        .remove(tp)
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(f, l, t)| {
                            AcknowledgementBatch::default()
                                .with_first_offset(f)
                                .with_last_offset(l)
                                .with_acknowledge_types(vec![t])
                        })
                        .collect();
                    topics.entry(tp.0).or_default().push(
                        FetchPartition::default()
                            .with_partition_index(tp.1)
                            .with_acknowledgement_batches(batches),
                    );
                }
                let mut forget: BTreeMap<Uuid, Vec<i32>> = BTreeMap::new();
                for tp in &forgotten {
                    forget.entry(tp.0).or_default().push(tp.1);
                }
                let req = ShareFetchRequest::default()
                    .with_group_id(Some(GroupId(s(group))))
                    .with_member_id(Some(s(&member.id)))
                    .with_share_session_epoch(session.epoch)
                    .with_max_wait_ms(500)
                    .with_min_bytes(1)
                    .with_max_bytes(1 << 20)
                    .with_max_records(
                        i32::try_from(limit.saturating_sub(seen).min(500)).unwrap_or(500),
                    )
                    .with_batch_size(500)
                    .with_topics(
                        topics
                            .into_iter()
                            .map(|(id, ps)| {
                                FetchTopic::default().with_topic_id(id).with_partitions(ps)
                            })
                            .collect(),
                    )
                    .with_forgotten_topics_data(
                        forget
                            .into_iter()
                            .map(|(id, ps)| {
                                ForgottenTopic::default()
                                    .with_topic_id(id)
                                    .with_partitions(ps)
                            })
                            .collect(),
                    );
                let r = session.wire.call(&req, 1)?;
                if r.error_code != 0 {
                    if RETRIABLE.contains(&r.error_code)
                        || r.error_code == 122
                        || r.error_code == 123
                    {
                        // A moved leader or a lost session: start a new one.
                        sessions.remove(&leader);
                        refresh = true;
                        continue;
                    }
                    bail!("share fetch: {}", error_name(r.error_code));
                }
                session.epoch = session.epoch.wrapping_add(1).max(1);
                session.partitions = wanted;
                for t in r.responses {
                    let topic = cluster.names.get(&t.topic_id).cloned().unwrap_or_default();
                    for p in t.partitions {
                        if p.error_code != 0 {
                            if RETRIABLE.contains(&p.error_code) {
                                refresh = true;
                                continue;
                            }
                            bail!(
                                "share fetch {topic}-{}: {}",
                                p.partition_index,
                                error_name(p.error_code)
                            );
                        }
                        let tp = (t.topic_id, p.partition_index);
                        let ranges: Vec<(i64, i64)> = p
                            .acquired_records
                            .iter()
                            .map(|a| (a.first_offset, a.last_offset))
                            .collect();
                        let Some(mut bytes) = p.records else { continue };
                        let sets = RecordBatchDecoder::decode_all(&mut bytes)
                            .map_err(|e| anyhow::anyhow!("cannot decode records: {e:?}"))?;
                        for rec in sets.iter().flat_map(|set| set.records.iter()) {
                            if !ranges.iter().any(|(f, l)| (*f..=*l).contains(&rec.offset)) {
                                continue;
                            }
                            got_any = true;
                            let kind = if seen < limit { ACCEPT } else { RELEASE };
                            push_ack(acks.entry(tp).or_default(), rec.offset, kind);
                            if kind == RELEASE {
                                continue;
                            }
                            seen += 1;
                            let line = Rec {
                                topic: &topic,
                                partition: p.partition_index,
                                offset: rec.offset,
                                timestamp: Some(rec.timestamp),
                                key: rec.key.as_deref(),
                                value: rec.value.as_deref(),
                                headers: rec
                                    .headers
                                    .iter()
                                    .map(|(k, v)| {
                                        (
                                            k.to_string(),
                                            v.as_ref()
                                                .map(|v| String::from_utf8_lossy(v).into_owned()),
                                        )
                                    })
                                    .collect(),
                            }
                            .line(conn.json(), args.format.as_deref());
                            if out.write_all(line.as_bytes()).is_err() {
                                return Ok(()); // stdout closed: stop quietly
                            }
                        }
                    }
                }
            }
            if refresh {
                cluster = crate::share_consume::cluster(conn, &args.topics)?;
            } else if !got_any && args.exit_at_end {
                return Ok(());
            }
        }
        Ok(())
    })();
    let _ = out.flush();
    close(&mut sessions, &mut acks, group, &member.id);
    member.epoch = -1;
    let _ = member.heartbeat(None);
    result
}

/// Adds one record's acknowledgement, extending the last batch when it continues it.
fn push_ack(batches: &mut Vec<(i64, i64, i8)>, offset: i64, kind: i8) {
    match batches.last_mut() {
        Some((_, last, k)) if *k == kind && *last + 1 == offset => *last = offset,
        _ => batches.push((offset, offset, kind)),
    }
}

/// Sends the last acknowledgements and closes every share session.
fn close(sessions: &mut HashMap<i32, Session>, acks: &mut Acks, group: &str, member: &str) {
    for session in sessions.values_mut() {
        let mut topics: BTreeMap<Uuid, Vec<AcknowledgePartition>> = BTreeMap::new();
        for tp in &session.partitions {
            if let Some(batches) = acks.remove(tp) {
                topics.entry(tp.0).or_default().push(
                    AcknowledgePartition::default()
                        .with_partition_index(tp.1)
                        .with_acknowledgement_batches(
                            batches
                                .into_iter()
                                .map(|(f, l, t)| {
                                    AckBatchA::default()
                                        .with_first_offset(f)
                                        .with_last_offset(l)
                                        .with_acknowledge_types(vec![t])
                                })
                                .collect(),
                        ),
                );
            }
        }
        let req = ShareAcknowledgeRequest::default()
            .with_group_id(Some(GroupId(s(group))))
            .with_member_id(Some(s(member)))
            .with_share_session_epoch(-1)
            .with_topics(
                topics
                    .into_iter()
                    .map(|(id, ps)| {
                        AcknowledgeTopic::default()
                            .with_topic_id(id)
                            .with_partitions(ps)
                    })
                    .collect(),
            );
        if let Ok(r) = session.wire.call(&req, 1) {
            if r.error_code != 0 {
                eprintln!("closing the share session: {}", error_name(r.error_code));
            }
        }
    }
}
