//! The processor graph: what a [`Topology`](crate::Topology) is made of and how a task runs
//! a record through it.
//!
//! Layout:
//! - `mod.rs`: the [`Processor`] trait, its context, node and source definitions, the
//!   split into sub-topologies
//! - `stateless.rs`: a processor from a closure (filter, map, ..., sinks)
//! - `aggregate.rs`: key-value aggregations (count, reduce, aggregate) and table sources
//! - `windowed.rs`: windowed aggregations and `suppress(untilWindowCloses)`
//! - `session.rs`: session-windowed aggregation
//! - `join.rs`: stream-table join
//! - `stream_join.rs`: stream-stream windowed join
//! - `fk_join.rs`: foreign-key table-table join (KIP-213)
//! - `api.rs`: the processor API for user code (`KStream::process`) and punctuation

pub(crate) mod aggregate;
pub(crate) mod api;
pub(crate) mod fk_join;
pub(crate) mod join;
pub(crate) mod session;
pub(crate) mod stateless;
pub(crate) mod stream_join;
pub(crate) mod windowed;

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::{Result, StreamsError};
use crate::record::DynRecord;
use crate::state::Store;
use crate::{PunctuationType, TimestampExtractor};

/// A topic name as the topology knows it: a user topic, or an internal one that the
/// runtime prefixes with `<application.id>-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum TopicName {
    User(String),
    Internal(String),
}

impl TopicName {
    pub(crate) fn resolve(&self, app_id: &str) -> String {
        match self {
            TopicName::User(t) => t.clone(),
            TopicName::Internal(suffix) => format!("{app_id}-{suffix}"),
        }
    }
}

/// A record for a topic, produced by a sink or a store's changelog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SinkRecord {
    pub(crate) topic: String,
    /// Set for changelog records (the task's partition); `None` lets the producer partition
    /// by key.
    pub(crate) partition: Option<i32>,
    pub(crate) key: Option<Vec<u8>>,
    pub(crate) value: Option<Vec<u8>>,
    pub(crate) timestamp: i64,
    /// The store this record is the changelog of.
    pub(crate) changelog_of: Option<String>,
}

/// What a processor can reach while it handles one record.
pub(crate) struct Ctx<'a> {
    pub(crate) app_id: &'a str,
    /// The task's partition (a foreign-key join's responses come back to it).
    pub(crate) partition: i32,
    pub(crate) stores: &'a mut HashMap<String, Store>,
    pub(crate) forwarded: Vec<DynRecord>,
    pub(crate) sink: &'a mut Vec<SinkRecord>,
}

impl Ctx<'_> {
    pub(crate) fn forward(&mut self, rec: DynRecord) {
        self.forwarded.push(rec);
    }

    pub(crate) fn store(&mut self, name: &str) -> Result<&mut Store> {
        self.stores.get_mut(name).ok_or_else(|| {
            StreamsError::Topology(format!("store {name} is not connected to this processor"))
        })
    }
}

/// One node of the graph, instantiated once per task.
pub(crate) trait Processor: Send {
    fn process(&mut self, rec: DynRecord, ctx: &mut Ctx<'_>) -> Result<()>;

    /// Moves the processor's stream time to at least `t`: the task's stream time as it
    /// was committed (in the input offsets' metadata), given to a new task before its
    /// first record so a restart does not reopen closed windows.
    fn restore_stream_time(&mut self, _t: i64) {}

    /// Called once when the task is created (after restoration), with the wall-clock time.
    /// Only nodes marked `punctuates` are initialized and punctuated.
    fn init(&mut self, _wall_clock_ms: i64, _ctx: &mut Ctx<'_>) -> Result<()> {
        Ok(())
    }

    /// Time of `kind` is now `now`: run the punctuations that are due.
    fn punctuate(&mut self, _kind: PunctuationType, _now: i64, _ctx: &mut Ctx<'_>) -> Result<()> {
        Ok(())
    }
}

pub(crate) type ProcessorFactory = Arc<dyn Fn() -> Box<dyn Processor> + Send + Sync>;

pub(crate) struct NodeDef {
    pub(crate) name: String,
    pub(crate) factory: ProcessorFactory,
    pub(crate) children: Vec<usize>,
    pub(crate) stores: Vec<String>,
    /// The node schedules punctuations (a user processor): the task initializes it and
    /// tells it when time advances.
    pub(crate) punctuates: bool,
}

/// Raw bytes → typed record of a source.
pub(crate) type SourceDeserializer =
    Arc<dyn Fn(&str, Option<&[u8]>, Option<&[u8]>, i64) -> Result<DynRecord> + Send + Sync>;

pub(crate) struct SourceDef {
    pub(crate) topic: TopicName,
    pub(crate) node: usize,
    pub(crate) deserialize: SourceDeserializer,
    pub(crate) extractor: Option<Arc<dyn TimestampExtractor>>,
}

/// A connected part of the graph: its records never cross a topic. Tasks are created per
/// sub-topology and input partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SubTopology {
    pub(crate) id: usize,
    pub(crate) nodes: Vec<usize>,
    pub(crate) source_topics: Vec<TopicName>,
    pub(crate) stores: Vec<String>,
}

fn find(parent: &mut [usize], mut x: usize) -> usize {
    while parent[x] != x {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    x
}

/// Splits the graph into connected components (edges and shared stores connect nodes).
pub(crate) fn subtopologies(nodes: &[NodeDef], sources: &[SourceDef]) -> Vec<SubTopology> {
    let mut parent: Vec<usize> = (0..nodes.len()).collect();
    let union = |parent: &mut Vec<usize>, a: usize, b: usize| {
        let (ra, rb) = (find(parent, a), find(parent, b));
        if ra != rb {
            parent[ra.max(rb)] = ra.min(rb);
        }
    };
    let mut store_owner: HashMap<&str, usize> = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        for &c in &n.children {
            union(&mut parent, i, c);
        }
        for s in &n.stores {
            match store_owner.get(s.as_str()) {
                Some(&o) => union(&mut parent, i, o),
                None => {
                    store_owner.insert(s, i);
                }
            }
        }
    }
    let mut by_root: Vec<(usize, Vec<usize>)> = Vec::new();
    for i in 0..nodes.len() {
        let r = find(&mut parent, i);
        match by_root.iter_mut().find(|(root, _)| *root == r) {
            Some((_, v)) => v.push(i),
            None => by_root.push((r, vec![i])),
        }
    }
    by_root
        .into_iter()
        .enumerate()
        .map(|(id, (_, members))| {
            let mut stores: Vec<String> = members
                .iter()
                .flat_map(|&n| nodes[n].stores.clone())
                .collect();
            stores.sort();
            stores.dedup();
            SubTopology {
                id,
                source_topics: sources
                    .iter()
                    .filter(|s| members.contains(&s.node))
                    .map(|s| s.topic.clone())
                    .collect(),
                nodes: members,
                stores,
            }
        })
        .collect()
}
