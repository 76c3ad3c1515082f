//! `gregor cluster reassign` and `gregor cluster decommission`: moving partitions
//! between brokers with AlterPartitionReassignments / ListPartitionReassignments (APIs
//! 45/46), optionally under a replication throttle, over [`crate::wire`].
//!
//! Plans are Kafka's reassignment JSON (`{"version":1,"partitions":[{"topic","partition",
//! "replicas"}]}`), so a plan from `kafka-reassign-partitions.sh` works here and back.
//! Unlike Kafka's tool, `generate` moves as little as it can: a replica stays where it is
//! unless its broker is leaving or holds more than its share.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsTopics;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, BrokerId, DescribeLogDirsRequest,
    IncrementalAlterConfigsRequest, ListPartitionReassignmentsRequest, MetadataRequest, TopicName,
    UnregisterBrokerRequest,
};
use kafka_protocol::protocol::StrBytes;
use serde::{Deserialize, Serialize};

use crate::conn::{table, Conn};
use crate::wire::{error_name, Wire};

const LEADER_RATE: &str = "leader.replication.throttled.rate";
const FOLLOWER_RATE: &str = "follower.replication.throttled.rate";
const LEADER_REPLICAS: &str = "leader.replication.throttled.replicas";
const FOLLOWER_REPLICAS: &str = "follower.replication.throttled.replicas";
const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;

#[derive(clap::Subcommand)]
pub(crate) enum ReassignCommand {
    /// Print a plan that spreads the topics' replicas over the given brokers, moving as
    /// few as possible.
    ///
    /// Example: gregor cluster reassign generate --topics orders --brokers 1,2,4 > plan.json
    Generate {
        /// Topics to place (comma-separated).
        #[arg(long, value_delimiter = ',', required = true)]
        topics: Vec<String>,
        /// Brokers to place them on (comma-separated ids).
        #[arg(long, value_delimiter = ',', required = true)]
        brokers: Vec<i32>,
    },
    /// Start the moves of a plan, optionally throttled; --wait shows progress until done
    /// and then removes the throttle.
    ///
    /// Example: gregor cluster reassign execute --plan plan.json --throttle 10000000 --wait
    Execute {
        #[arg(long)]
        plan: std::path::PathBuf,
        /// Replication throttle in bytes/s for the moving replicas.
        #[arg(long)]
        throttle: Option<u64>,
        /// Wait until every move is done, with a progress bar.
        #[arg(long)]
        wait: bool,
    },
    /// Which moves of a plan are done; once all are, removes the throttle. Exit status
    /// 1 while some are still moving.
    Verify {
        #[arg(long)]
        plan: std::path::PathBuf,
    },
    /// Cancel the ongoing moves of a plan: the partitions go back to their old replicas.
    Cancel {
        #[arg(long)]
        plan: std::path::PathBuf,
    },
}

#[derive(clap::Args)]
pub(crate) struct DecommissionArgs {
    /// The broker to empty.
    broker: i32,
    /// Replication throttle in bytes/s while its replicas move.
    #[arg(long)]
    throttle: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PlanEntry {
    pub topic: String,
    pub partition: i32,
    pub replicas: Vec<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Plan {
    pub version: i32,
    pub partitions: Vec<PlanEntry>,
}

/// Replica lists by (topic, partition), and broker addresses by id.
struct ClusterView {
    assignment: BTreeMap<(String, i32), Vec<i32>>,
    leaders: BTreeMap<(String, i32), i32>,
    brokers: BTreeMap<i32, String>,
}

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn view(w: &mut Wire, topics: Option<&[String]>) -> Result<ClusterView> {
    let req = MetadataRequest::default().with_topics(topics.map(|ts| {
        ts.iter()
            .map(|t| MetadataRequestTopic::default().with_name(Some(name(t))))
            .collect()
    }));
    let resp = w.call(&req, 12)?;
    let mut v = ClusterView {
        assignment: BTreeMap::new(),
        leaders: BTreeMap::new(),
        brokers: resp
            .brokers
            .iter()
            .map(|b| (b.node_id.0, format!("{}:{}", b.host.as_str(), b.port)))
            .collect(),
    };
    for t in &resp.topics {
        let tn = t.name.as_ref().map(|n| n.to_string()).unwrap_or_default();
        if t.error_code != 0 {
            bail!("{tn}: {}", error_name(t.error_code));
        }
        for p in &t.partitions {
            let key = (tn.clone(), p.partition_index);
            v.assignment
                .insert(key.clone(), p.replica_nodes.iter().map(|b| b.0).collect());
            v.leaders.insert(key, p.leader_id.0);
        }
    }
    Ok(v)
}

/// A plan placing every partition of `current` on `brokers`: each partition keeps its
/// replication factor; a replica stays on its broker while that broker is in the set and
/// under its fair share (ceil(replicas / brokers)); the rest go to the least-loaded
/// brokers. Partitions that need no change are left out.
pub(crate) fn generate(
    current: &BTreeMap<(String, i32), Vec<i32>>,
    brokers: &[i32],
) -> Result<Plan> {
    let set: BTreeSet<i32> = brokers.iter().copied().collect();
    if set.is_empty() {
        bail!("no brokers to place replicas on");
    }
    let total: usize = current.values().map(Vec::len).sum();
    let share = total.div_ceil(set.len());
    let mut load: HashMap<i32, usize> = set.iter().map(|&b| (b, 0)).collect();
    // First pass: what stays, position by position across partitions (every first
    // replica, then every second, ...), so the preferred leaders are kept first and a
    // broker over its share sheds replicas of several partitions, not all of one.
    let mut kept: BTreeMap<&(String, i32), Vec<i32>> = BTreeMap::new();
    for (key, replicas) in current {
        if replicas.len() > set.len() {
            bail!(
                "{}-{} has {} replicas but only {} brokers were given",
                key.0,
                key.1,
                replicas.len(),
                set.len()
            );
        }
        kept.insert(key, Vec::new());
    }
    let widest = current.values().map(Vec::len).max().unwrap_or(0);
    for pos in 0..widest {
        for (key, replicas) in current {
            let Some(r) = replicas.get(pos) else { continue };
            if let Some(n) = load.get_mut(r) {
                if *n < share {
                    *n += 1;
                    kept.entry(key).or_default().push(*r);
                }
            }
        }
    }
    // Second pass: fill each partition up to its factor from the least-loaded brokers.
    let mut partitions = Vec::new();
    for (key, replicas) in current {
        let mut target = kept.remove(key).unwrap_or_default();
        while target.len() < replicas.len() {
            let Some(&b) = set
                .iter()
                .filter(|b| !target.contains(b))
                .min_by_key(|b| (load.get(b).copied().unwrap_or(0), **b))
            else {
                break;
            };
            *load.entry(b).or_default() += 1;
            target.push(b);
        }
        if &target != replicas {
            partitions.push(PlanEntry {
                topic: key.0.clone(),
                partition: key.1,
                replicas: target,
            });
        }
    }
    Ok(Plan {
        version: 1,
        partitions,
    })
}

fn read_plan(path: &std::path::Path) -> Result<Plan> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a reassignment plan", path.display()))
}

fn by_topic(entries: &[PlanEntry]) -> BTreeMap<&str, Vec<&PlanEntry>> {
    let mut out: BTreeMap<&str, Vec<&PlanEntry>> = BTreeMap::new();
    for e in entries {
        out.entry(e.topic.as_str()).or_default().push(e);
    }
    out
}

/// Sends the plan's targets (or cancels, `cancel`); fails on any partition's error.
fn alter(w: &mut Wire, plan: &Plan, cancel: bool) -> Result<()> {
    let topics =
        by_topic(&plan.partitions)
            .into_iter()
            .map(|(t, entries)| {
                ReassignableTopic::default()
                    .with_name(name(t))
                    .with_partitions(
                        entries
                            .iter()
                            .map(|e| {
                                ReassignablePartition::default()
                                    .with_partition_index(e.partition)
                                    .with_replicas((!cancel).then(|| {
                                        e.replicas.iter().copied().map(BrokerId).collect()
                                    }))
                            })
                            .collect(),
                    )
            })
            .collect();
    let req = AlterPartitionReassignmentsRequest::default()
        .with_timeout_ms(30_000)
        .with_allow_replication_factor_change(true)
        .with_topics(topics);
    let resp = w.call(&req, 1)?;
    if resp.error_code != 0 {
        bail!("reassignment refused: {}", error_name(resp.error_code));
    }
    let mut failed = Vec::new();
    for t in &resp.responses {
        for p in &t.partitions {
            if p.error_code != 0 {
                let msg = p
                    .error_message
                    .as_ref()
                    .map(|m| m.to_string())
                    .unwrap_or_default();
                failed.push(format!(
                    "{}-{}: {} {msg}",
                    t.name.as_str(),
                    p.partition_index,
                    error_name(p.error_code)
                ));
            }
        }
    }
    if !failed.is_empty() {
        bail!("some partitions were refused:\n  {}", failed.join("\n  "));
    }
    Ok(())
}

/// The partitions of `plan` still moving: (topic, partition) -> adding replicas.
fn ongoing(w: &mut Wire, plan: &Plan) -> Result<BTreeMap<(String, i32), Vec<i32>>> {
    let topics = by_topic(&plan.partitions)
        .into_iter()
        .map(|(t, entries)| {
            ListPartitionReassignmentsTopics::default()
                .with_name(name(t))
                .with_partition_indexes(entries.iter().map(|e| e.partition).collect())
        })
        .collect();
    let resp = w.call(
        &ListPartitionReassignmentsRequest::default()
            .with_timeout_ms(30_000)
            .with_topics(Some(topics)),
        0,
    )?;
    if resp.error_code != 0 {
        bail!("cannot list reassignments: {}", error_name(resp.error_code));
    }
    let mut out = BTreeMap::new();
    for t in &resp.topics {
        for p in &t.partitions {
            out.insert(
                (t.name.to_string(), p.partition_index),
                p.adding_replicas.iter().map(|b| b.0).collect(),
            );
        }
    }
    Ok(out)
}

fn alter_configs(w: &mut Wire, resources: Vec<AlterConfigsResource>) -> Result<()> {
    if resources.is_empty() {
        return Ok(());
    }
    let resp = w.call(
        &IncrementalAlterConfigsRequest::default().with_resources(resources),
        1,
    )?;
    for r in &resp.responses {
        if r.error_code != 0 {
            bail!(
                "cannot set configs of {}: {}",
                r.resource_name.as_str(),
                error_name(r.error_code)
            );
        }
    }
    Ok(())
}

fn config(key: &str, op: i8, value: Option<String>) -> AlterableConfig {
    AlterableConfig::default()
        .with_name(StrBytes::from_string(key.to_string()))
        .with_config_operation(op)
        .with_value(value.map(StrBytes::from_string))
}

/// Sets (`Some(rate)`) or removes (`None`) the throttle of a plan's moves, as Kafka's
/// tool does: the rate on every broker involved, the current replicas of each moving
/// partition on the leader side and the new ones on the follower side.
fn set_throttle(w: &mut Wire, v: &ClusterView, plan: &Plan, rate: Option<u64>) -> Result<()> {
    let mut brokers = BTreeSet::new();
    let mut resources = Vec::new();
    for (topic, entries) in by_topic(&plan.partitions) {
        let mut leader = Vec::new();
        let mut follower = Vec::new();
        for e in entries {
            let current = v
                .assignment
                .get(&(topic.to_string(), e.partition))
                .cloned()
                .unwrap_or_default();
            for r in &current {
                leader.push(format!("{}:{r}", e.partition));
                brokers.insert(*r);
            }
            for r in e.replicas.iter().filter(|r| !current.contains(r)) {
                follower.push(format!("{}:{r}", e.partition));
                brokers.insert(*r);
            }
        }
        let ops = match rate {
            Some(_) => vec![
                config(LEADER_REPLICAS, OP_SET, Some(leader.join(","))),
                config(FOLLOWER_REPLICAS, OP_SET, Some(follower.join(","))),
            ],
            None => vec![
                config(LEADER_REPLICAS, OP_DELETE, None),
                config(FOLLOWER_REPLICAS, OP_DELETE, None),
            ],
        };
        resources.push(
            AlterConfigsResource::default()
                .with_resource_type(RESOURCE_TOPIC)
                .with_resource_name(StrBytes::from_string(topic.to_string()))
                .with_configs(ops),
        );
    }
    alter_configs(w, resources)?;
    let resources = brokers
        .iter()
        .map(|b| {
            let ops = [LEADER_RATE, FOLLOWER_RATE]
                .iter()
                .map(|k| match rate {
                    Some(r) => config(k, OP_SET, Some(r.to_string())),
                    None => config(k, OP_DELETE, None),
                })
                .collect();
            AlterConfigsResource::default()
                .with_resource_type(RESOURCE_BROKER)
                .with_resource_name(StrBytes::from_string(b.to_string()))
                .with_configs(ops)
        })
        .collect();
    alter_configs(w, resources)
}

/// Sizes of the named partitions in `broker`'s log directories.
fn sizes(conn: &Conn, addr: &str, parts: &[(String, i32)]) -> Result<HashMap<(String, i32), i64>> {
    let mut w = Wire::connect(conn, addr)?;
    let topics = by_topic(
        &parts
            .iter()
            .map(|(t, p)| PlanEntry {
                topic: t.clone(),
                partition: *p,
                replicas: vec![],
            })
            .collect::<Vec<_>>(),
    )
    .into_iter()
    .map(|(t, es)| {
        DescribableLogDirTopic::default()
            .with_topic(name(t))
            .with_partitions(es.iter().map(|e| e.partition).collect())
    })
    .collect();
    let resp = w.call(
        &DescribeLogDirsRequest::default().with_topics(Some(topics)),
        4,
    )?;
    let mut out = HashMap::new();
    for dir in &resp.results {
        for t in &dir.topics {
            for p in &t.partitions {
                out.insert((t.name.to_string(), p.partition_index), p.partition_size);
            }
        }
    }
    Ok(out)
}

/// Bytes the adding replicas of the ongoing moves still lack: for each, the leader's
/// size of the partition minus its own.
fn bytes_left(conn: &Conn, v: &ClusterView, moving: &BTreeMap<(String, i32), Vec<i32>>) -> i64 {
    let mut wanted: BTreeMap<i32, Vec<(String, i32)>> = BTreeMap::new();
    for (key, adding) in moving {
        if let Some(&l) = v.leaders.get(key) {
            wanted.entry(l).or_default().push(key.clone());
        }
        for &a in adding {
            wanted.entry(a).or_default().push(key.clone());
        }
    }
    let mut size: HashMap<(i32, String, i32), i64> = HashMap::new();
    for (b, parts) in &wanted {
        let Some(addr) = v.brokers.get(b) else {
            continue;
        };
        if let Ok(s) = sizes(conn, addr, parts) {
            for ((t, p), n) in s {
                size.insert((*b, t, p), n);
            }
        }
    }
    let mut left = 0;
    for (key, adding) in moving {
        let Some(&l) = v.leaders.get(key) else {
            continue;
        };
        let leader = size.get(&(l, key.0.clone(), key.1)).copied().unwrap_or(0);
        for &a in adding {
            let have = size.get(&(a, key.0.clone(), key.1)).copied().unwrap_or(0);
            left += (leader - have).max(0);
        }
    }
    left
}

/// Waits with a progress bar (bytes the new replicas still lack) until no move of
/// `plan` is ongoing.
fn wait_done(conn: &Conn, w: &mut Wire, plan: &Plan) -> Result<()> {
    let started = Instant::now();
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{spinner} moving [{bar:30}] {bytes}/{total_bytes} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    if conn.json() {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let mut first_total: Option<i64> = None;
    loop {
        let moving = ongoing(w, plan)?;
        if moving.is_empty() {
            bar.finish_and_clear();
            break;
        }
        let topics: Vec<String> = moving.keys().map(|(t, _)| t.clone()).collect();
        let v = view(w, Some(&topics))?;
        let left = bytes_left(conn, &v, &moving);
        let total = *first_total.get_or_insert(left.max(1));
        bar.set_length(total.max(left) as u64);
        bar.set_position((total - left).max(0) as u64);
        bar.set_message(format!("{} partitions", moving.len()));
        std::thread::sleep(Duration::from_millis(500));
    }
    let secs = started.elapsed().as_secs_f64();
    if conn.json() {
        out!("{}", serde_json::json!({"done": true, "seconds": secs}));
    } else {
        out!("all {} moves done in {secs:.1} s", plan.partitions.len());
    }
    Ok(())
}

pub(crate) fn run(conn: &Conn, cmd: ReassignCommand) -> Result<()> {
    let mut w = Wire::open(conn)?;
    match cmd {
        ReassignCommand::Generate { topics, brokers } => {
            let v = view(&mut w, Some(&topics))?;
            if let Some(b) = brokers.iter().find(|b| !v.brokers.contains_key(b)) {
                bail!("broker {b} is not in the cluster");
            }
            let plan = generate(&v.assignment, &brokers)?;
            out!("{}", serde_json::to_string_pretty(&plan)?);
            Ok(())
        }
        ReassignCommand::Execute {
            plan,
            throttle,
            wait,
        } => {
            let plan = read_plan(&plan)?;
            execute(conn, &mut w, &plan, throttle, wait)
        }
        ReassignCommand::Verify { plan } => {
            let plan = read_plan(&plan)?;
            let moving = ongoing(&mut w, &plan)?;
            let topics: Vec<String> = by_topic(&plan.partitions)
                .keys()
                .map(|t| t.to_string())
                .collect();
            let v = view(&mut w, Some(&topics))?;
            let mut rows = Vec::new();
            let mut done = true;
            for e in &plan.partitions {
                let key = (e.topic.clone(), e.partition);
                let state = if moving.contains_key(&key) {
                    done = false;
                    "in progress"
                } else if v.assignment.get(&key) == Some(&e.replicas) {
                    "complete"
                } else {
                    done = false;
                    "not started or cancelled"
                };
                rows.push((e.topic.clone(), e.partition, state));
            }
            if done {
                set_throttle(&mut w, &v, &plan, None)?;
            }
            if conn.json() {
                let list: Vec<_> = rows
                    .iter()
                    .map(|(t, p, s)| serde_json::json!({"topic": t, "partition": p, "state": s}))
                    .collect();
                out!("{}", serde_json::json!({"done": done, "partitions": list}));
            } else {
                let rows: Vec<Vec<String>> = rows
                    .iter()
                    .map(|(t, p, s)| vec![t.clone(), p.to_string(), s.to_string()])
                    .collect();
                table(&["TOPIC", "PARTITION", "STATE"], &rows);
                if done {
                    out!("every move is done; throttles removed");
                }
            }
            if !done {
                std::process::exit(1);
            }
            Ok(())
        }
        ReassignCommand::Cancel { plan } => {
            let plan = read_plan(&plan)?;
            let moving = ongoing(&mut w, &plan)?;
            let cancel = Plan {
                version: 1,
                partitions: plan
                    .partitions
                    .iter()
                    .filter(|e| moving.contains_key(&(e.topic.clone(), e.partition)))
                    .cloned()
                    .collect(),
            };
            if !cancel.partitions.is_empty() {
                alter(&mut w, &cancel, true)?;
            }
            let topics: Vec<String> = by_topic(&plan.partitions)
                .keys()
                .map(|t| t.to_string())
                .collect();
            let v = view(&mut w, Some(&topics))?;
            set_throttle(&mut w, &v, &plan, None)?;
            out!("cancelled {} moves", cancel.partitions.len());
            Ok(())
        }
    }
}

fn execute(
    conn: &Conn,
    w: &mut Wire,
    plan: &Plan,
    throttle: Option<u64>,
    wait: bool,
) -> Result<()> {
    if plan.partitions.is_empty() {
        out!("nothing to move");
        return Ok(());
    }
    let topics: Vec<String> = by_topic(&plan.partitions)
        .keys()
        .map(|t| t.to_string())
        .collect();
    let v = view(w, Some(&topics))?;
    if throttle.is_some() {
        set_throttle(w, &v, plan, throttle)?;
    }
    alter(w, plan, false)?;
    if !conn.json() {
        out!("started {} moves", plan.partitions.len());
    }
    if wait {
        wait_done(conn, w, plan)?;
        if throttle.is_some() {
            set_throttle(w, &v, plan, None)?;
        }
    }
    Ok(())
}

/// `gregor cluster decommission BROKER`: moves every replica off the broker (spread over
/// the others by [`generate`]) and waits until done. Then the broker can be stopped and
/// unregistered (`gregor cluster unregister BROKER`).
pub(crate) fn decommission(conn: &Conn, args: DecommissionArgs) -> Result<()> {
    let mut w = Wire::open(conn)?;
    let v = view(&mut w, None)?;
    if !v.brokers.contains_key(&args.broker) {
        bail!("broker {} is not in the cluster", args.broker);
    }
    let others: Vec<i32> = v
        .brokers
        .keys()
        .copied()
        .filter(|b| *b != args.broker)
        .collect();
    let hosted: BTreeMap<(String, i32), Vec<i32>> = v
        .assignment
        .iter()
        .filter(|(_, r)| r.contains(&args.broker))
        .map(|(k, r)| (k.clone(), r.clone()))
        .collect();
    // Place only the departing replicas; the others stay where they are.
    let mut load: HashMap<i32, usize> = others.iter().map(|&b| (b, 0)).collect();
    for r in v.assignment.values().flatten() {
        if let Some(n) = load.get_mut(r) {
            *n += 1;
        }
    }
    let mut partitions = Vec::new();
    for ((topic, partition), replicas) in &hosted {
        let Some(&to) = others
            .iter()
            .filter(|b| !replicas.contains(b))
            .min_by_key(|b| (load.get(b).copied().unwrap_or(0), **b))
        else {
            bail!("{topic}-{partition} has a replica on every other broker: nowhere to move it");
        };
        *load.entry(to).or_default() += 1;
        let target = replicas
            .iter()
            .map(|&r| if r == args.broker { to } else { r })
            .collect();
        partitions.push(PlanEntry {
            topic: topic.clone(),
            partition: *partition,
            replicas: target,
        });
    }
    let plan = Plan {
        version: 1,
        partitions,
    };
    execute(conn, &mut w, &plan, args.throttle, true)?;
    if !conn.json() {
        out!(
            "broker {} holds no replicas; stop it, then run: gregor cluster unregister {}",
            args.broker,
            args.broker
        );
    }
    Ok(())
}

/// `gregor cluster unregister BROKER` (UnregisterBroker, API 64).
pub(crate) fn unregister(conn: &Conn, broker: i32) -> Result<()> {
    let mut w = Wire::open(conn)?;
    let resp = w.call(
        &UnregisterBrokerRequest::default().with_broker_id(BrokerId(broker)),
        0,
    )?;
    if resp.error_code != 0 {
        let why = resp
            .error_message
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default();
        bail!(
            "cannot unregister broker {broker}: {} {why}",
            error_name(resp.error_code)
        );
    }
    out!("broker {broker} unregistered");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn current(parts: &[(&str, i32, &[i32])]) -> BTreeMap<(String, i32), Vec<i32>> {
        parts
            .iter()
            .map(|(t, p, r)| ((t.to_string(), *p), r.to_vec()))
            .collect()
    }

    #[test]
    fn a_balanced_cluster_moves_nothing() {
        let c = current(&[("t", 0, &[1, 2]), ("t", 1, &[2, 3]), ("t", 2, &[3, 1])]);
        assert!(generate(&c, &[1, 2, 3]).unwrap().partitions.is_empty());
    }

    #[test]
    fn a_new_broker_takes_its_share_and_few_replicas_move() {
        let c = current(&[
            ("t", 0, &[1, 2]),
            ("t", 1, &[2, 3]),
            ("t", 2, &[3, 1]),
            ("t", 3, &[1, 2]),
        ]);
        let plan = generate(&c, &[1, 2, 3, 4]).unwrap();
        let mut load: HashMap<i32, usize> = HashMap::new();
        let mut after = c.clone();
        for e in &plan.partitions {
            after.insert((e.topic.clone(), e.partition), e.replicas.clone());
        }
        for r in after.values().flatten() {
            *load.entry(*r).or_default() += 1;
        }
        assert_eq!(load.values().copied().max(), Some(2), "{load:?}");
        assert_eq!(load.get(&4), Some(&2));
        let moved: usize = plan
            .partitions
            .iter()
            .map(|e| {
                let before = &c[&(e.topic.clone(), e.partition)];
                e.replicas.iter().filter(|r| !before.contains(r)).count()
            })
            .sum();
        assert_eq!(moved, 2, "only broker 4's share moves: {plan:?}");
    }

    #[test]
    fn a_leaving_broker_is_emptied_and_factors_are_kept() {
        let c = current(&[("t", 0, &[1, 2, 3]), ("t", 1, &[2, 3, 4])]);
        let plan = generate(&c, &[2, 3, 4]).unwrap();
        assert_eq!(plan.partitions.len(), 1);
        let mut r = plan.partitions[0].replicas.clone();
        r.sort_unstable();
        assert_eq!(r, vec![2, 3, 4]);
        assert!(generate(&c, &[2, 3]).is_err());
    }
}
