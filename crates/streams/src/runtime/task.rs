//! A task: one sub-topology's processors and stores for one input partition. The test
//! driver and the Kafka runtime both run records through tasks.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::dsl::builder::TopologyInner;
use crate::error::{Result, StreamsError};
use crate::processor::{Ctx, Processor, SinkRecord};
use crate::record::DynRecord;
use crate::state::{LocalState, Store, StoreRegistry};
use crate::{PunctuationType, RecordView};

/// `<sub-topology>_<partition>`, as Kafka Streams names tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct TaskId {
    pub(crate) sub: usize,
    pub(crate) partition: i32,
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{}", self.sub, self.partition)
    }
}

pub(crate) struct Task {
    pub(crate) id: TaskId,
    topo: Arc<TopologyInner>,
    app_id: String,
    processors: HashMap<usize, Box<dyn Processor>>,
    stores: HashMap<String, Store>,
    local: LocalState,
    /// Per store: the last changelog offset its contents include (for the checkpoint).
    pub(crate) changelog_offsets: HashMap<String, i64>,
    registry: StoreRegistry,
    /// Resolved source topic → index in the topology's sources.
    sources: HashMap<String, usize>,
    /// The largest timestamp of a record this task processed (or was restored with).
    pub(crate) stream_time: i64,
    /// Nodes that punctuate, in graph order.
    punctuating: Vec<usize>,
}

impl Task {
    /// Creates the task's processors and opens its stores from the local database.
    pub(crate) fn new(
        topo: Arc<TopologyInner>,
        app_id: &str,
        id: TaskId,
        local: LocalState,
        registry: StoreRegistry,
    ) -> Result<Self> {
        let sub = topo
            .subtopologies
            .get(id.sub)
            .ok_or_else(|| StreamsError::Topology(format!("no sub-topology {}", id.sub)))?;
        let processors = sub
            .nodes
            .iter()
            .map(|&n| (n, (topo.nodes[n].factory)()))
            .collect();
        let mut stores = HashMap::new();
        let mut changelog_offsets = HashMap::new();
        for name in &sub.stores {
            let spec = topo
                .store_spec(name)
                .ok_or_else(|| StreamsError::Topology(format!("unknown store {name}")))?
                .clone();
            let (map, checkpoint) = local.load(name)?;
            if let Some(c) = checkpoint {
                changelog_offsets.insert(name.clone(), c);
            }
            let store = Store::new(spec, map);
            registry.register(name, &id.to_string(), store.data.clone());
            stores.insert(name.clone(), store);
        }
        let sources = topo
            .sources
            .iter()
            .enumerate()
            .map(|(i, s)| (s.topic.resolve(app_id), i))
            .collect();
        let punctuating = sub
            .nodes
            .iter()
            .copied()
            .filter(|&n| topo.nodes[n].punctuates)
            .collect();
        Ok(Task {
            stream_time: i64::MIN,
            punctuating,
            sources,
            id,
            app_id: app_id.to_string(),
            topo,
            processors,
            stores,
            local,
            changelog_offsets,
            registry,
        })
    }

    /// (store, changelog topic, first offset to read) for each store of the task.
    pub(crate) fn restore_plan(&self) -> Vec<(String, String, i64)> {
        let mut plan: Vec<(String, String, i64)> = self
            .stores
            .values()
            .map(|s| {
                let from = self
                    .changelog_offsets
                    .get(&s.spec.name)
                    .map_or(0, |o| o + 1);
                (
                    s.spec.name.clone(),
                    format!("{}-{}", self.app_id, s.spec.changelog_suffix()),
                    from,
                )
            })
            .collect();
        plan.sort();
        plan
    }

    /// Applies one changelog record read back from offset `offset`.
    pub(crate) fn restore(&mut self, store: &str, key: &[u8], value: Option<Vec<u8>>, offset: i64) {
        if let Some(s) = self.stores.get_mut(store) {
            s.restore(key, value);
            self.changelog_offsets.insert(store.to_string(), offset);
        }
    }

    /// Runs one input record through the sub-topology; returns what its sinks and store
    /// changelogs produce.
    pub(crate) fn process(
        &mut self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        timestamp: i64,
    ) -> Result<Vec<SinkRecord>> {
        let topo = self.topo.clone();
        let source = self
            .sources
            .get(topic)
            .and_then(|&i| topo.sources.get(i))
            .ok_or_else(|| StreamsError::Topology(format!("no source reads {topic}")))?;
        let ts = match topo.extractor(source) {
            Some(e) => e.extract(&RecordView {
                topic,
                key,
                value,
                timestamp,
            }),
            None => timestamp,
        };
        if ts < 0 {
            tracing::warn!(topic, ts, "skipping a record with a negative timestamp");
            return Ok(Vec::new());
        }
        self.stream_time = self.stream_time.max(ts);
        let rec = (source.deserialize)(topic, key, value, ts).map_err(|e| match e {
            StreamsError::Serde { topic, reason } => {
                StreamsError::Deserialization { topic, reason }
            }
            other => other,
        })?;
        let mut sink = Vec::new();
        self.dispatch(vec![(source.node, rec)], &mut sink)?;
        self.drain_changelogs(&mut sink, ts);
        Ok(sink)
    }

    /// Runs records through the graph, depth first: each `(node, record)` is processed by
    /// `node`, and what it forwards goes to its children.
    fn dispatch(
        &mut self,
        mut stack: Vec<(usize, DynRecord)>,
        sink: &mut Vec<SinkRecord>,
    ) -> Result<()> {
        stack.reverse();
        while let Some((node, rec)) = stack.pop() {
            let Some(proc) = self.processors.get_mut(&node) else {
                return Err(StreamsError::Topology(format!(
                    "node {node} is not in task {}",
                    self.id
                )));
            };
            let mut ctx = Ctx {
                app_id: &self.app_id,
                partition: self.id.partition,
                stores: &mut self.stores,
                forwarded: Vec::new(),
                sink,
            };
            proc.process(rec, &mut ctx)?;
            let forwarded = ctx.forwarded;
            push_children(&mut stack, &self.topo.nodes[node].children, forwarded);
        }
        Ok(())
    }

    /// Moves the stores' new changelog records into `sink`.
    fn drain_changelogs(&mut self, sink: &mut Vec<SinkRecord>, ts: i64) {
        for store in self.stores.values_mut() {
            if store.pending_changelog.is_empty() {
                continue;
            }
            let topic = format!("{}-{}", self.app_id, store.spec.changelog_suffix());
            for (key, value) in store.pending_changelog.drain(..) {
                sink.push(SinkRecord {
                    topic: topic.clone(),
                    partition: Some(self.id.partition),
                    key: Some(key),
                    value,
                    timestamp: ts,
                    changelog_of: Some(store.spec.name.clone()),
                });
            }
        }
    }

    /// Initializes the processors that punctuate (user processors schedule here), at
    /// wall-clock time `wall_clock_ms`.
    pub(crate) fn init(&mut self, wall_clock_ms: i64) -> Result<()> {
        let mut sink = Vec::new();
        for &node in &self.punctuating {
            if let Some(proc) = self.processors.get_mut(&node) {
                let mut ctx = Ctx {
                    app_id: &self.app_id,
                    partition: self.id.partition,
                    stores: &mut self.stores,
                    forwarded: Vec::new(),
                    sink: &mut sink,
                };
                proc.init(wall_clock_ms, &mut ctx)?;
            }
        }
        Ok(())
    }

    /// Whether any processor of the task schedules punctuations.
    pub(crate) fn punctuates(&self) -> bool {
        !self.punctuating.is_empty()
    }

    /// Time of `kind` is now `now` (for stream time: the task's, after a record): runs
    /// the due punctuations; returns what they produced, as [`process`](Self::process).
    pub(crate) fn punctuate(&mut self, kind: PunctuationType, now: i64) -> Result<Vec<SinkRecord>> {
        let mut sink = Vec::new();
        for i in 0..self.punctuating.len() {
            let node = self.punctuating[i];
            let Some(proc) = self.processors.get_mut(&node) else {
                continue;
            };
            let mut ctx = Ctx {
                app_id: &self.app_id,
                partition: self.id.partition,
                stores: &mut self.stores,
                forwarded: Vec::new(),
                sink: &mut sink,
            };
            proc.punctuate(kind, now, &mut ctx)?;
            let forwarded = ctx.forwarded;
            let mut stack = Vec::new();
            push_children(&mut stack, &self.topo.nodes[node].children, forwarded);
            stack.reverse();
            self.dispatch(stack, &mut sink)?;
        }
        self.drain_changelogs(&mut sink, now);
        Ok(sink)
    }

    /// Starts the task (and its processors) at a committed stream time.
    pub(crate) fn restore_stream_time(&mut self, t: i64) {
        self.stream_time = self.stream_time.max(t);
        for p in self.processors.values_mut() {
            p.restore_stream_time(t);
        }
    }

    /// Persists the stores' changes and checkpoints to the local database.
    pub(crate) fn flush(&mut self) -> Result<()> {
        let mut stores: Vec<&mut Store> = self.stores.values_mut().collect();
        self.local.flush(&mut stores, &self.changelog_offsets)
    }

    /// Unregisters the task's stores from interactive queries.
    pub(crate) fn close(self) {
        self.registry.unregister_task(&self.id.to_string());
        if let Some(dir) = self.local.dir() {
            tracing::debug!(task = %self.id, dir = %dir.display(), "task closed");
        }
    }
}

/// Queues what `node` forwarded for its children, so that popping the stack processes
/// them depth first, in forwarding order.
fn push_children(
    stack: &mut Vec<(usize, DynRecord)>,
    children: &[usize],
    forwarded: Vec<DynRecord>,
) {
    for r in forwarded.into_iter().rev() {
        let mut r = Some(r);
        for (i, &c) in children.iter().enumerate().rev() {
            let rec = if i == 0 { r.take() } else { r.clone() };
            if let Some(rec) = rec {
                stack.push((c, rec));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Consumed, Grouped, Materialized, Produced, Serdes, StreamsBuilder};

    fn topology() -> crate::Topology {
        let b = StreamsBuilder::new();
        b.stream("in", Consumed::with(Serdes::string(), Serdes::string()))
            .group_by_key(Grouped::with(Serdes::string(), Serdes::string()))
            .count(Materialized::as_("c"))
            .to_stream()
            .to("out", Produced::with(Serdes::string(), Serdes::i64()));
        b.build().unwrap()
    }

    #[test]
    fn stores_persist_with_their_checkpoint_and_restore_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let topo = topology();
        let id = TaskId {
            sub: 0,
            partition: 2,
        };
        let registry = StoreRegistry::default();
        let mut task = Task::new(
            topo.inner.clone(),
            "app",
            id,
            LocalState::open(dir.path()).unwrap(),
            registry.clone(),
        )
        .unwrap();
        assert_eq!(
            task.restore_plan(),
            vec![("c".into(), "app-c-changelog".into(), 0)]
        );
        let out = task.process("in", Some(b"k"), Some(b"v"), 1).unwrap();
        let changelog: Vec<_> = out.iter().filter(|r| r.changelog_of.is_some()).collect();
        assert_eq!(changelog.len(), 1);
        assert_eq!(
            (changelog[0].topic.as_str(), changelog[0].partition),
            ("app-c-changelog", Some(2))
        );
        task.process("in", Some(b"k"), Some(b"v"), 2).unwrap();
        // The producer acknowledged the changelog up to offset 41; commit.
        task.changelog_offsets.insert("c".into(), 41);
        task.flush().unwrap();
        task.close();
        drop(registry);

        // Reopened from the same directory: the count is back, and restoration starts
        // right after the checkpoint.
        let registry = StoreRegistry::default();
        let mut task = Task::new(
            topo.inner.clone(),
            "app",
            id,
            LocalState::open(dir.path()).unwrap(),
            registry,
        )
        .unwrap();
        assert_eq!(
            task.restore_plan(),
            vec![("c".into(), "app-c-changelog".into(), 42)]
        );
        // A changelog record written after the checkpoint (by another owner) is applied.
        task.restore("c", b"k", Some(7i64.to_be_bytes().to_vec()), 42);
        let out = task.process("in", Some(b"k"), Some(b"v"), 3).unwrap();
        let sink: Vec<_> = out.iter().filter(|r| r.topic == "out").collect();
        assert_eq!(sink[0].value.as_deref(), Some(&8i64.to_be_bytes()[..]));
    }
}
