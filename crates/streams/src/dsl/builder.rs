//! `StreamsBuilder` collects nodes; `build()` freezes them into a `Topology`.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::Arc;

use super::{Consumed, Data, KStream, KTable, Materialized};
use crate::processor::aggregate::TableMaterialize;
use crate::processor::stateless::PassThrough;
use crate::processor::{
    subtopologies, NodeDef, ProcessorFactory, SourceDef, SubTopology, TopicName,
};
use crate::record::DynRecord;
use crate::state::{StoreKind, StoreSpec};
use crate::TimestampExtractor;

#[derive(Default)]
pub(crate) struct BuilderInner {
    pub(crate) nodes: Vec<NodeDef>,
    pub(crate) sources: Vec<SourceDef>,
    pub(crate) stores: Vec<StoreSpec>,
    /// (topic suffix, the sink node writing it).
    pub(crate) repartition_topics: Vec<(String, usize)>,
    /// (topic suffix, the source node reading it): foreign-key join topics, which take the
    /// partition count of their reader.
    pub(crate) fk_topics: Vec<(String, usize)>,
    counter: usize,
}

pub(crate) type Shared = Rc<RefCell<BuilderInner>>;

impl BuilderInner {
    /// Kafka Streams-style generated names: `KSTREAM-FILTER-0000000003`.
    pub(crate) fn name(&mut self, prefix: &str) -> String {
        let n = format!("{prefix}-{:010}", self.counter);
        self.counter += 1;
        n
    }

    pub(crate) fn add_node(
        &mut self,
        name: String,
        parents: &[usize],
        factory: ProcessorFactory,
        stores: Vec<String>,
    ) -> usize {
        let id = self.nodes.len();
        self.nodes.push(NodeDef {
            name,
            factory,
            children: Vec::new(),
            stores,
            punctuates: false,
        });
        for &p in parents {
            self.nodes[p].children.push(id);
        }
        id
    }

    pub(crate) fn add_store(&mut self, name: &str, kind: StoreKind) {
        if !self.stores.iter().any(|s| s.name == name) {
            self.stores.push(StoreSpec {
                name: name.to_string(),
                kind,
            });
        }
    }

    /// A source node reading `topic` with the given serdes. With `nullable_values`, a
    /// null value becomes a tombstone instead of going through the value serde.
    pub(crate) fn add_source<K: Data, V: Data>(
        &mut self,
        topic: TopicName,
        consumed: Consumed<K, V>,
        nullable_values: bool,
    ) -> usize {
        let name = self.name("KSTREAM-SOURCE");
        let node = self.add_node(name, &[], Arc::new(|| Box::new(PassThrough)), Vec::new());
        let (ks, vs) = (consumed.key_serde, consumed.value_serde);
        self.sources.push(SourceDef {
            topic,
            node,
            deserialize: Arc::new(move |topic, key, value, ts| {
                let k = ks.deserialize(topic, key)?;
                let v = match value {
                    None if nullable_values => None,
                    v => Some(vs.deserialize(topic, v)?),
                };
                Ok(DynRecord::new(k, v, ts))
            }),
            extractor: consumed.extractor,
        });
        node
    }
}

/// Builds a [`Topology`] with the DSL.
///
/// ```
/// use gregor_streams::{Consumed, Produced, Serdes, StreamsBuilder};
/// let builder = StreamsBuilder::new();
/// builder
///     .stream("in", Consumed::with(Serdes::string(), Serdes::string()))
///     .map_values(|v: String| v.to_uppercase())
///     .to("out", Produced::with(Serdes::string(), Serdes::string()));
/// let topology = builder.build().unwrap();
/// assert!(topology.describe().contains("in"));
/// ```
#[derive(Default)]
pub struct StreamsBuilder {
    inner: Shared,
}

impl StreamsBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// A stream of the records of `topic`.
    pub fn stream<K: Data, V: Data>(&self, topic: &str, consumed: Consumed<K, V>) -> KStream<K, V> {
        let node =
            self.inner
                .borrow_mut()
                .add_source(TopicName::User(topic.to_string()), consumed, false);
        KStream::new(self.inner.clone(), node, false)
    }

    /// A table of the latest value per key of `topic` (a null value deletes the key),
    /// materialized in a queryable store.
    pub fn table<K: Data, V: Data>(
        &self,
        topic: &str,
        consumed: Consumed<K, V>,
        materialized: Materialized,
    ) -> KTable<K, V> {
        let (ks, vs) = (consumed.key_serde.clone(), consumed.value_serde.clone());
        let mut b = self.inner.borrow_mut();
        let source = b.add_source(TopicName::User(topic.to_string()), consumed, true);
        let store = materialized
            .name
            .unwrap_or_else(|| b.name(&format!("{topic}-STATE-STORE")));
        b.add_store(&store, StoreKind::KeyValue);
        let name = b.name("KTABLE-SOURCE");
        let (pn, ps, pks, pvs) = (name.clone(), store.clone(), ks.clone(), vs.clone());
        let factory: ProcessorFactory = Arc::new(move || {
            Box::new(TableMaterialize {
                name: pn.clone(),
                store: ps.clone(),
                key_serde: pks.clone(),
                value_serde: pvs.clone(),
            })
        });
        let node = b.add_node(name, &[source], factory, vec![store.clone()]);
        drop(b);
        KTable {
            b: self.inner.clone(),
            node,
            store: Some(store),
            key_serde: Some(ks),
            value_serde: Some(vs),
            grace_ms: None,
            _types: PhantomData,
        }
    }

    /// Freezes the graph. Fails if two sources read the same topic.
    pub fn build(self) -> crate::Result<Topology> {
        let inner = self.inner.replace(BuilderInner::default());
        let mut seen = std::collections::HashSet::new();
        for s in &inner.sources {
            if !seen.insert(s.topic.clone()) {
                return Err(crate::StreamsError::Topology(format!(
                    "topic {:?} is read by two sources",
                    s.topic
                )));
            }
        }
        let subs = subtopologies(&inner.nodes, &inner.sources);
        Ok(Topology {
            inner: Arc::new(TopologyInner {
                nodes: inner.nodes,
                sources: inner.sources,
                stores: inner.stores,
                repartition_topics: inner.repartition_topics,
                fk_topics: inner.fk_topics,
                subtopologies: subs,
            }),
        })
    }
}

pub(crate) struct TopologyInner {
    pub(crate) nodes: Vec<NodeDef>,
    pub(crate) sources: Vec<SourceDef>,
    pub(crate) stores: Vec<StoreSpec>,
    /// Suffixes (without `<application.id>-`) of the repartition topics, with the sink
    /// node writing each.
    pub(crate) repartition_topics: Vec<(String, usize)>,
    /// Suffixes of the foreign-key joins' subscription registration and response topics,
    /// with the source node reading each: such a topic is co-partitioned with its reader
    /// (the registration topic with the right table, the response topic with the left).
    pub(crate) fk_topics: Vec<(String, usize)>,
    pub(crate) subtopologies: Vec<SubTopology>,
}

impl TopologyInner {
    pub(crate) fn source_for(&self, topic: &str, app_id: &str) -> Option<&SourceDef> {
        self.sources
            .iter()
            .find(|s| s.topic.resolve(app_id) == topic)
    }

    /// Resolved names of the topics the application writes and reads back.
    pub(crate) fn internal_topics(&self, app_id: &str) -> Vec<String> {
        self.repartition_topics
            .iter()
            .chain(&self.fk_topics)
            .map(|(s, _)| format!("{app_id}-{s}"))
            .collect()
    }

    pub(crate) fn store_spec(&self, name: &str) -> Option<&StoreSpec> {
        self.stores.iter().find(|s| s.name == name)
    }

    pub(crate) fn extractor<'a>(
        &self,
        source: &'a SourceDef,
    ) -> Option<&'a Arc<dyn TimestampExtractor>> {
        source.extractor.as_ref()
    }
}

/// A processing graph, ready to run in [`KafkaStreams`](crate::KafkaStreams) or a
/// [`TopologyTestDriver`](crate::TopologyTestDriver).
#[derive(Clone)]
pub struct Topology {
    pub(crate) inner: Arc<TopologyInner>,
}

impl Topology {
    /// A human-readable description: sub-topologies, their nodes, topics and stores.
    pub fn describe(&self) -> String {
        let mut out = String::from("Topologies:\n");
        for sub in &self.inner.subtopologies {
            let _ = writeln!(out, "  Sub-topology: {}", sub.id);
            for t in &sub.source_topics {
                let _ = writeln!(out, "    Source topic: {}", t.resolve("<application.id>"));
            }
            for &n in &sub.nodes {
                let node = &self.inner.nodes[n];
                let children: Vec<&str> = node
                    .children
                    .iter()
                    .map(|&c| self.inner.nodes[c].name.as_str())
                    .collect();
                let _ = writeln!(
                    out,
                    "    {} (stores: {:?}) --> {:?}",
                    node.name, node.stores, children
                );
            }
        }
        out
    }
}
