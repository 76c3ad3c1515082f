//! `gregor topic`: create, list, describe, delete, alter-config, add-partitions.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use rdkafka::admin::{
    AdminOptions, AlterConfig, ConfigSource, NewPartitions, NewTopic, ResourceSpecifier,
    TopicReplication,
};
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde_json::json;

use crate::conn::{block_on, kv, table, Conn, TIMEOUT};

#[derive(clap::Subcommand)]
pub(crate) enum TopicCommand {
    /// Create a topic.
    ///
    /// Example: gregor topic create orders -p 6 -c retention.ms=86400000
    Create {
        name: String,
        /// Partitions (default: the broker's num.partitions).
        #[arg(short, long)]
        partitions: Option<i32>,
        /// Replication factor (default: the broker's default.replication.factor).
        #[arg(short = 'r', long)]
        replication_factor: Option<i32>,
        /// A topic config. Repeatable.
        #[arg(short = 'c', long = "config", value_name = "KEY=VALUE")]
        configs: Vec<String>,
    },
    /// List topics.
    ///
    /// Example: gregor topic list --output json
    List {
        /// Include internal topics such as __consumer_offsets.
        #[arg(long)]
        internal: bool,
    },
    /// Partitions, leaders, offsets and configs of a topic.
    ///
    /// Example: gregor topic describe orders
    Describe { name: String },
    /// Delete topics.
    ///
    /// Example: gregor topic delete orders
    Delete {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Set or remove topic configs.
    ///
    /// Example: gregor topic alter-config orders --set retention.ms=3600000 --delete cleanup.policy
    AlterConfig {
        name: String,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        #[arg(long = "delete", value_name = "KEY")]
        delete: Vec<String>,
    },
    /// Grow a topic to a number of partitions.
    ///
    /// Example: gregor topic add-partitions orders --count 12
    AddPartitions {
        name: String,
        /// The new total number of partitions.
        #[arg(long)]
        count: usize,
    },
}

fn opts() -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(TIMEOUT))
}

/// Topic configs that are set on the topic itself (not defaults).
fn overrides(conn: &Conn, name: &str) -> Result<BTreeMap<String, String>> {
    let admin = conn.admin()?;
    let res = block_on(admin.describe_configs([&ResourceSpecifier::Topic(name)], &opts()))?
        .context("describe_configs failed")?;
    let mut out = BTreeMap::new();
    for r in res {
        let r = r.map_err(|e| anyhow::anyhow!("topic {name}: {e}"))?;
        for e in r.entries {
            if matches!(e.source, ConfigSource::DynamicTopic) {
                if let Some(v) = e.value {
                    out.insert(e.name, v);
                }
            }
        }
    }
    Ok(out)
}

pub(crate) fn run(conn: &Conn, cmd: TopicCommand) -> Result<()> {
    match cmd {
        TopicCommand::Create {
            name,
            partitions,
            replication_factor,
            configs,
        } => {
            let admin = conn.admin()?;
            let configs: Vec<(String, String)> =
                configs.iter().map(|c| kv(c)).collect::<Result<_>>()?;
            let mut t = NewTopic::new(
                &name,
                partitions.unwrap_or(-1),
                TopicReplication::Fixed(replication_factor.unwrap_or(-1)),
            );
            for (k, v) in &configs {
                t = t.set(k, v);
            }
            for r in
                block_on(admin.create_topics([&t], &opts()))?.context("create_topics failed")?
            {
                if let Err((t, e)) = r {
                    bail!("cannot create topic {t}: {e}");
                }
            }
            if conn.json() {
                out!("{}", json!({"created": name}));
            } else {
                out!("created topic {name}");
            }
        }
        TopicCommand::List { internal } => {
            let md = conn.metadata(None)?;
            let mut topics: Vec<(String, usize)> = md
                .topics()
                .iter()
                .filter(|t| internal || !t.name().starts_with("__"))
                .map(|t| (t.name().to_string(), t.partitions().len()))
                .collect();
            topics.sort();
            if conn.json() {
                let v: Vec<_> = topics
                    .iter()
                    .map(|(n, p)| json!({"name": n, "partitions": p}))
                    .collect();
                out!("{}", serde_json::Value::Array(v));
            } else {
                let rows: Vec<Vec<String>> = topics
                    .iter()
                    .map(|(n, p)| vec![n.clone(), p.to_string()])
                    .collect();
                table(&["TOPIC", "PARTITIONS"], &rows);
            }
        }
        TopicCommand::Describe { name } => {
            let md = conn.metadata(Some(&name))?;
            let Some(t) = md.topics().iter().find(|t| t.name() == name) else {
                bail!("unknown topic {name}");
            };
            if let Some(e) = t.error() {
                bail!(
                    "topic {name}: {}",
                    rdkafka::types::RDKafkaErrorCode::from(e)
                );
            }
            let consumer: BaseConsumer = conn.config()?.create().context("cannot create client")?;
            let mut parts = Vec::new();
            for p in t.partitions() {
                let (low, high) = consumer
                    .fetch_watermarks(&name, p.id(), TIMEOUT)
                    .with_context(|| format!("cannot read offsets of {name}/{}", p.id()))?;
                parts.push((
                    p.id(),
                    p.leader(),
                    p.replicas().to_vec(),
                    p.isr().to_vec(),
                    low,
                    high,
                ));
            }
            let configs = overrides(conn, &name)?;
            let elrs = eligible_leader_replicas(conn, &name);
            let elr = |id: &i32| elrs.get(id).cloned().unwrap_or_default();
            if conn.json() {
                let ps: Vec<_> = parts
                    .iter()
                    .map(|(id, leader, replicas, isr, low, high)| {
                        let (elr, last_known) = elr(id);
                        json!({"partition": id, "leader": leader, "replicas": replicas, "isr": isr,
                               "elr": elr, "last_known_elr": last_known,
                               "start_offset": low, "end_offset": high})
                    })
                    .collect();
                out!(
                    "{}",
                    json!({"name": name, "partitions": ps, "configs": configs})
                );
            } else {
                out!("topic {name}: {} partitions", parts.len());
                let rows: Vec<Vec<String>> = parts
                    .iter()
                    .map(|(id, leader, replicas, isr, low, high)| {
                        let (elr, last_known) = elr(id);
                        vec![
                            id.to_string(),
                            leader.to_string(),
                            format!("{replicas:?}"),
                            format!("{isr:?}"),
                            low.to_string(),
                            high.to_string(),
                            format!("{elr:?}"),
                            format!("{last_known:?}"),
                        ]
                    })
                    .collect();
                table(
                    &[
                        "PARTITION",
                        "LEADER",
                        "REPLICAS",
                        "ISR",
                        "START",
                        "END",
                        "ELR",
                        "LAST KNOWN ELR",
                    ],
                    &rows,
                );
                if !configs.is_empty() {
                    out!();
                    let rows: Vec<Vec<String>> = configs
                        .iter()
                        .map(|(k, v)| vec![k.clone(), v.clone()])
                        .collect();
                    table(&["CONFIG", "VALUE"], &rows);
                }
            }
        }
        TopicCommand::Delete { names } => {
            let admin = conn.admin()?;
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            for r in
                block_on(admin.delete_topics(&refs, &opts()))?.context("delete_topics failed")?
            {
                if let Err((t, e)) = r {
                    bail!("cannot delete topic {t}: {e}");
                }
            }
            if conn.json() {
                out!("{}", json!({"deleted": names}));
            } else {
                out!("deleted {}", names.join(", "));
            }
        }
        TopicCommand::AlterConfig { name, set, delete } => {
            if set.is_empty() && delete.is_empty() {
                bail!("nothing to change: give --set KEY=VALUE or --delete KEY");
            }
            // AlterConfigs replaces the topic's overrides as a whole: start from the
            // current ones, apply the changes, send the result.
            let mut configs = overrides(conn, &name)?;
            for d in &delete {
                configs.remove(d);
            }
            for s in &set {
                let (k, v) = kv(s)?;
                configs.insert(k, v);
            }
            let mut alter = AlterConfig::new(ResourceSpecifier::Topic(&name));
            for (k, v) in &configs {
                alter = alter.set(k, v);
            }
            let admin = conn.admin()?;
            for r in
                block_on(admin.alter_configs([&alter], &opts()))?.context("alter_configs failed")?
            {
                if let Err((_, e)) = r {
                    bail!("cannot alter configs of {name}: {e}");
                }
            }
            if conn.json() {
                out!("{}", json!({"name": name, "configs": configs}));
            } else {
                out!("updated configs of {name}");
            }
        }
        TopicCommand::AddPartitions { name, count } => {
            let admin = conn.admin()?;
            let np = NewPartitions::new(&name, count);
            for r in block_on(admin.create_partitions([&np], &opts()))?
                .context("create_partitions failed")?
            {
                if let Err((t, e)) = r {
                    bail!("cannot add partitions to {t}: {e}");
                }
            }
            if conn.json() {
                out!("{}", json!({"name": name, "partitions": count}));
            } else {
                out!("{name} now has {count} partitions");
            }
        }
    }
    Ok(())
}

/// Each partition's eligible leader replicas and last known ELR (KIP-966), from
/// DescribeTopicPartitions (API 75); empty when the broker does not answer it.
fn eligible_leader_replicas(conn: &Conn, topic: &str) -> BTreeMap<i32, (Vec<i32>, Vec<i32>)> {
    use kafka_protocol::messages::describe_topic_partitions_request::TopicRequest;
    use kafka_protocol::messages::DescribeTopicPartitionsRequest;
    let Ok(mut w) = crate::wire::Wire::open(conn) else {
        return BTreeMap::new();
    };
    let req = DescribeTopicPartitionsRequest::default()
        .with_topics(vec![TopicRequest::default().with_name(
            kafka_protocol::messages::TopicName(kafka_protocol::protocol::StrBytes::from_string(
                topic.to_string(),
            )),
        )])
        .with_response_partition_limit(2000);
    let Ok(resp) = w.call(&req, 0) else {
        return BTreeMap::new();
    };
    let ids = |v: &Option<Vec<kafka_protocol::messages::BrokerId>>| -> Vec<i32> {
        v.iter().flatten().map(|b| b.0).collect()
    };
    resp.topics
        .iter()
        .filter(|t| t.error_code == 0)
        .flat_map(|t| t.partitions.iter())
        .map(|p| {
            (
                p.partition_index,
                (ids(&p.eligible_leader_replicas), ids(&p.last_known_elr)),
            )
        })
        .collect()
}
