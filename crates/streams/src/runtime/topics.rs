//! Internal topics: how many partitions each sub-topology has, and creating the
//! repartition and changelog topics with the admin client.
//!
//! A sub-topology has as many tasks as its widest source topic has partitions. A
//! repartition topic gets the partition count of the sub-topology writing it (Kafka
//! Streams' rule); a changelog topic the count of the sub-topology owning the store; a
//! foreign-key join's registration or response topic the count of the sub-topology
//! reading it (so the registration topic is co-partitioned with the right table).

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::types::RDKafkaErrorCode;

use crate::dsl::builder::TopologyInner;
use crate::error::{Result, StreamsError};
use crate::processor::TopicName;
use crate::state::StoreKind;

const TIMEOUT: Duration = Duration::from_secs(30);

/// Partition count of each sub-topology (by id), from the source topics' metadata.
pub(crate) fn subtopology_partitions<C: ConsumerContext>(
    topo: &TopologyInner,
    app_id: &str,
    consumer: &BaseConsumer<C>,
) -> Result<Vec<i32>> {
    let mut topic_partitions: HashMap<String, i32> = HashMap::new();
    for s in &topo.sources {
        if let TopicName::User(t) = &s.topic {
            let md = consumer.fetch_metadata(Some(t), TIMEOUT)?;
            let count = md
                .topics()
                .iter()
                .find(|mt| mt.name() == t && mt.error().is_none())
                .map(|mt| mt.partitions().len())
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    StreamsError::Topology(format!("source topic {t} does not exist"))
                })?;
            topic_partitions.insert(t.clone(), i32::try_from(count).unwrap_or(i32::MAX));
        }
    }
    partitions_from(topo, app_id, &topic_partitions)
}

/// Partition count of each sub-topology given the user source topics' partition counts.
pub(crate) fn partitions_from(
    topo: &TopologyInner,
    app_id: &str,
    topic_partitions: &HashMap<String, i32>,
) -> Result<Vec<i32>> {
    let sub_of_node = |node: usize| {
        topo.subtopologies
            .iter()
            .find(|s| s.nodes.contains(&node))
            .map(|s| s.id)
    };
    let mut counts = vec![0i32; topo.subtopologies.len()];
    // Repartition topics depend on their writer: iterate until nothing changes.
    for _ in 0..=topo.subtopologies.len() {
        let mut changed = false;
        for sub in &topo.subtopologies {
            let mut n = 0;
            for t in &sub.source_topics {
                let c = match t {
                    TopicName::User(name) => topic_partitions.get(name).copied().unwrap_or(0),
                    // A foreign-key join topic follows its reader: it adds nothing.
                    TopicName::Internal(suffix) => topo
                        .repartition_topics
                        .iter()
                        .find(|(s, _)| s == suffix)
                        .and_then(|(_, sink)| sub_of_node(*sink))
                        .map_or(0, |w| counts[w]),
                };
                n = n.max(c);
            }
            if n != counts[sub.id] {
                counts[sub.id] = n;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    if let Some(sub) = counts.iter().position(|&c| c == 0) {
        return Err(StreamsError::Topology(format!(
            "sub-topology {sub} has no partitions (a cycle through repartition topics?) for {app_id}"
        )));
    }
    Ok(counts)
}

/// Creates the repartition and changelog topics that do not exist yet.
pub(crate) fn create_internal_topics(
    topo: &TopologyInner,
    app_id: &str,
    counts: &[i32],
    client_config: &ClientConfig,
    replication: i32,
) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = client_config.create()?;
    let sub_of_node = |node: usize| {
        topo.subtopologies
            .iter()
            .find(|s| s.nodes.contains(&node))
            .map(|s| s.id)
    };
    // (name, partitions, topic configs)
    type Wanted = (String, i32, Vec<(&'static str, String)>);
    let mut wanted: Vec<Wanted> = Vec::new();
    for (suffix, sink) in &topo.repartition_topics {
        let partitions = sub_of_node(*sink).map_or(1, |s| counts[s]);
        wanted.push((
            format!("{app_id}-{suffix}"),
            partitions,
            vec![("cleanup.policy", "delete".into())],
        ));
    }
    // Co-partitioned with the sub-topology reading them (Kafka Streams' copartitioning of
    // the registration topic with the right table).
    for (suffix, source) in &topo.fk_topics {
        let partitions = sub_of_node(*source).map_or(1, |s| counts[s]);
        wanted.push((
            format!("{app_id}-{suffix}"),
            partitions,
            vec![("cleanup.policy", "delete".into())],
        ));
    }
    for sub in &topo.subtopologies {
        for store in &sub.stores {
            let Some(spec) = topo.store_spec(store) else {
                continue;
            };
            let configs = match spec.kind {
                StoreKind::KeyValue => vec![("cleanup.policy", "compact".to_string())],
                // Kafka Streams: compact, plus deletion one day past the store's retention.
                StoreKind::Window { retention_ms } => vec![
                    ("cleanup.policy", "compact,delete".to_string()),
                    (
                        "retention.ms",
                        retention_ms.saturating_add(86_400_000).to_string(),
                    ),
                ],
            };
            wanted.push((
                format!("{app_id}-{}", spec.changelog_suffix()),
                counts[sub.id],
                configs,
            ));
        }
    }
    let new_topics: Vec<NewTopic<'_>> = wanted
        .iter()
        .map(|(name, partitions, configs)| {
            let mut t = NewTopic::new(name, *partitions, TopicReplication::Fixed(replication));
            for (k, v) in configs {
                t = t.set(k, v);
            }
            t
        })
        .collect();
    if new_topics.is_empty() {
        return Ok(());
    }
    let opts = AdminOptions::new().operation_timeout(Some(TIMEOUT));
    let results = futures::executor::block_on(admin.create_topics(&new_topics, &opts))?;
    for r in results {
        match r {
            Ok(name) => tracing::info!(topic = %name, "created internal topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(StreamsError::Topology(format!(
                    "cannot create internal topic {name}: {code}"
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Consumed, Grouped, Materialized, Produced, Serdes, StreamsBuilder};

    #[test]
    fn repartition_topics_take_their_writers_partition_count() {
        let b = StreamsBuilder::new();
        let counts = b
            .stream("lines", Consumed::with(Serdes::string(), Serdes::string()))
            .group_by(
                |_, v: &String| v.clone(),
                Grouped::with(Serdes::string(), Serdes::string()),
            )
            .count(Materialized::as_("c"));
        let table = b.table(
            "other",
            Consumed::with(Serdes::string(), Serdes::i64()),
            Materialized::as_("t"),
        );
        counts
            .to_stream()
            .join(
                &table,
                |a, b| a + b,
                Grouped::with(Serdes::string(), Serdes::i64()),
            )
            .unwrap()
            .to("out", Produced::with(Serdes::string(), Serdes::i64()));
        let topo = b.build().unwrap();
        let inner = &topo.inner;
        assert_eq!(inner.subtopologies.len(), 2, "{}", topo.describe());
        let parts = HashMap::from([("lines".to_string(), 3), ("other".to_string(), 5)]);
        // Sub-topology 0 reads `lines` (3); sub-topology 1 reads the repartition topic
        // (written by 0: 3) and `other` (5): the widest wins.
        assert_eq!(partitions_from(inner, "app", &parts).unwrap(), vec![3, 5]);
        assert!(partitions_from(inner, "app", &HashMap::new()).is_err());
    }

    #[test]
    fn foreign_key_join_topics_take_their_readers_partition_count() {
        let b = StreamsBuilder::new();
        let customers = b.table(
            "customers",
            Consumed::with(Serdes::string(), Serdes::string()),
            Materialized::as_("customers"),
        );
        b.table(
            "orders",
            Consumed::with(Serdes::string(), Serdes::string()),
            Materialized::as_("orders"),
        )
        .join_on_foreign_key(
            &customers,
            |o: &String| Some(o.clone()),
            |o, c| format!("{o}{c}"),
        )
        .unwrap()
        .to_stream()
        .to("out", Produced::with(Serdes::string(), Serdes::string()));
        let topo = b.build().unwrap();
        let inner = &topo.inner;
        assert_eq!(inner.subtopologies.len(), 2, "{}", topo.describe());
        let parts = HashMap::from([("customers".to_string(), 2), ("orders".to_string(), 3)]);
        let counts = partitions_from(inner, "app", &parts).unwrap();
        let sub_reading = |topic: &str| {
            inner
                .subtopologies
                .iter()
                .find(|s| s.source_topics.iter().any(|t| t.resolve("app") == topic))
                .map(|s| counts[s.id])
        };
        assert_eq!(sub_reading("customers"), Some(2));
        assert_eq!(sub_reading("orders"), Some(3));
        // The registration topic is read with customers, the response topic with orders.
        for (suffix, _) in &inner.fk_topics {
            let want = if suffix.contains("REGISTRATION") {
                2
            } else {
                3
            };
            assert_eq!(
                sub_reading(&format!("app-{suffix}")),
                Some(want),
                "{suffix}"
            );
        }
        assert_eq!(inner.fk_topics.len(), 2);
    }
}
