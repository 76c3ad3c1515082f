//! `TopologyTestDriver`: runs a topology without a broker. Every topic has one partition
//! (so one task per sub-topology); records written to a repartition topic are read back at
//! once, depth first, as Kafka's own test driver does. Output topics (changelogs included)
//! are kept in memory for the test to read.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::marker::PhantomData;
use std::rc::Rc;
use std::time::Duration;

use crate::config::{DeserializationHandler, StreamsConfig};
use crate::dsl::Topology;
use crate::error::{Result, StreamsError};
use crate::processor::SinkRecord;
use crate::record::RawRecord;
use crate::runtime::task::{Task, TaskId};
use crate::serde::SerdeRef;
use crate::state::{LocalState, ReadOnlyKeyValueStore, ReadOnlyWindowStore, StoreRegistry};
use crate::PunctuationType;

struct DriverInner {
    topology: Topology,
    app_id: String,
    tasks: HashMap<usize, Task>,
    outputs: HashMap<String, VecDeque<RawRecord>>,
    handler: DeserializationHandler,
    wall_clock_ms: i64,
    skipped: u64,
}

impl DriverInner {
    fn pipe(
        &mut self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        ts: i64,
    ) -> Result<()> {
        let topo = self.topology.inner.clone();
        let source = topo
            .source_for(topic, &self.app_id)
            .ok_or_else(|| StreamsError::Topology(format!("no source reads {topic}")))?;
        let sub = topo
            .subtopologies
            .iter()
            .find(|s| s.nodes.contains(&source.node))
            .map(|s| s.id)
            .ok_or_else(|| {
                StreamsError::Topology(format!("source of {topic} has no sub-topology"))
            })?;
        let task = self
            .tasks
            .get_mut(&sub)
            .ok_or_else(|| StreamsError::Topology(format!("no task for sub-topology {sub}")))?;
        let before = task.stream_time;
        let mut out = match task.process(topic, key, value, ts) {
            Ok(out) => out,
            Err(e @ StreamsError::Deserialization { .. }) => match self.handler {
                DeserializationHandler::LogAndContinue => {
                    tracing::warn!(error = %e, "skipping a record that cannot be deserialized");
                    self.skipped += 1;
                    return Ok(());
                }
                DeserializationHandler::LogAndFail => return Err(e),
            },
            Err(e) => return Err(e),
        };
        // Stream-time punctuation: checked after each record, fires only if time advanced.
        if task.punctuates() && task.stream_time > before {
            let now = task.stream_time;
            out.extend(task.punctuate(PunctuationType::StreamTime, now)?);
        }
        self.route(out)
    }

    /// Reads records written to internal topics back at once (depth first); keeps the
    /// others for the test.
    fn route(&mut self, out: Vec<SinkRecord>) -> Result<()> {
        let internal = self.topology.inner.internal_topics(&self.app_id);
        for r in out {
            if internal.contains(&r.topic) {
                self.pipe(&r.topic, r.key.as_deref(), r.value.as_deref(), r.timestamp)?;
            } else {
                self.outputs
                    .entry(r.topic.clone())
                    .or_default()
                    .push_back(RawRecord {
                        topic: r.topic,
                        key: r.key,
                        value: r.value,
                        timestamp: r.timestamp,
                    });
            }
        }
        Ok(())
    }
}

/// Drives a [`Topology`] in memory.
///
/// ```
/// use gregor_streams::*;
/// let builder = StreamsBuilder::new();
/// builder
///     .stream("in", Consumed::with(Serdes::string(), Serdes::i64()))
///     .filter(|_, v| *v > 10)
///     .to("out", Produced::with(Serdes::string(), Serdes::i64()));
/// let driver = TopologyTestDriver::new(builder.build().unwrap(), StreamsConfig::default()).unwrap();
/// let input = driver.create_input_topic("in", Serdes::string(), Serdes::i64());
/// let output = driver.create_output_topic("out", Serdes::string(), Serdes::i64());
/// input.pipe_input("a".into(), 5, 0).unwrap();
/// input.pipe_input("b".into(), 50, 1).unwrap();
/// assert_eq!(output.read_key_values().unwrap(), vec![("b".to_string(), Some(50))]);
/// ```
pub struct TopologyTestDriver {
    inner: Rc<RefCell<DriverInner>>,
    registry: StoreRegistry,
}

impl TopologyTestDriver {
    /// A driver for `topology`; `config` may set `application.id` (default
    /// `test-driver`) and `default.deserialization.exception.handler`.
    pub fn new(topology: Topology, config: StreamsConfig) -> Result<Self> {
        let app_id = config.application_id().unwrap_or("test-driver").to_string();
        let registry = StoreRegistry::default();
        let mut tasks = HashMap::new();
        for sub in &topology.inner.subtopologies {
            let id = TaskId {
                sub: sub.id,
                partition: 0,
            };
            let mut task = Task::new(
                topology.inner.clone(),
                &app_id,
                id,
                LocalState::in_memory(),
                registry.clone(),
            )?;
            // The driver's wall clock starts at 0.
            task.init(0)?;
            tasks.insert(sub.id, task);
        }
        Ok(TopologyTestDriver {
            inner: Rc::new(RefCell::new(DriverInner {
                topology,
                app_id,
                tasks,
                outputs: HashMap::new(),
                handler: config.deserialization_handler()?,
                wall_clock_ms: 0,
                skipped: 0,
            })),
            registry,
        })
    }

    /// A typed handle to pipe records into `topic`.
    pub fn create_input_topic<K, V>(
        &self,
        topic: &str,
        key_serde: SerdeRef<K>,
        value_serde: SerdeRef<V>,
    ) -> TestInputTopic<K, V> {
        TestInputTopic {
            inner: self.inner.clone(),
            topic: topic.to_string(),
            key_serde,
            value_serde,
        }
    }

    /// A typed handle to read what the topology wrote to `topic`.
    pub fn create_output_topic<K, V>(
        &self,
        topic: &str,
        key_serde: SerdeRef<K>,
        value_serde: SerdeRef<V>,
    ) -> TestOutputTopic<K, V> {
        TestOutputTopic {
            inner: self.inner.clone(),
            topic: topic.to_string(),
            key_serde,
            value_serde,
            _types: PhantomData,
        }
    }

    /// Moves wall-clock time forward and runs the wall-clock punctuations that became due
    /// (DSL processors act on event time only; processors given to `KStream::process` may
    /// schedule `PunctuationType::WallClockTime`).
    pub fn advance_wall_clock_time(&self, by: Duration) -> Result<()> {
        let mut g = self.inner.borrow_mut();
        g.wall_clock_ms = g
            .wall_clock_ms
            .saturating_add(i64::try_from(by.as_millis()).unwrap_or(i64::MAX));
        let now = g.wall_clock_ms;
        let mut subs: Vec<usize> = g.tasks.keys().copied().collect();
        subs.sort_unstable();
        for sub in subs {
            let out = match g.tasks.get_mut(&sub) {
                Some(task) => task.punctuate(PunctuationType::WallClockTime, now)?,
                None => continue,
            };
            g.route(out)?;
        }
        Ok(())
    }

    /// The driver's wall-clock time (ms, starts at 0).
    pub fn wall_clock_ms(&self) -> i64 {
        self.inner.borrow().wall_clock_ms
    }

    /// Records skipped by the log-and-continue deserialization handler.
    pub fn skipped_records(&self) -> u64 {
        self.inner.borrow().skipped
    }

    /// Reads a key-value store.
    pub fn key_value_store<K, V>(
        &self,
        name: &str,
        key_serde: SerdeRef<K>,
        value_serde: SerdeRef<V>,
    ) -> ReadOnlyKeyValueStore<K, V> {
        ReadOnlyKeyValueStore {
            name: name.to_string(),
            registry: self.registry.clone(),
            key_serde,
            value_serde,
        }
    }

    /// Reads a window store.
    pub fn window_store<K, V>(
        &self,
        name: &str,
        key_serde: SerdeRef<K>,
        value_serde: SerdeRef<V>,
    ) -> ReadOnlyWindowStore<K, V> {
        ReadOnlyWindowStore {
            name: name.to_string(),
            registry: self.registry.clone(),
            key_serde,
            value_serde,
        }
    }
}

/// Pipes typed records into a topic of a [`TopologyTestDriver`].
pub struct TestInputTopic<K, V> {
    inner: Rc<RefCell<DriverInner>>,
    topic: String,
    key_serde: SerdeRef<K>,
    value_serde: SerdeRef<V>,
}

impl<K, V> TestInputTopic<K, V> {
    /// Pipes a record with timestamp `ts` (ms).
    pub fn pipe_input(&self, key: K, value: V, ts: i64) -> Result<()> {
        let k = self.key_serde.serialize(&self.topic, &key)?;
        let v = self.value_serde.serialize(&self.topic, &value)?;
        self.inner
            .borrow_mut()
            .pipe(&self.topic, Some(&k), Some(&v), ts)
    }

    /// Pipes a record with a null key.
    pub fn pipe_value(&self, value: V, ts: i64) -> Result<()> {
        let v = self.value_serde.serialize(&self.topic, &value)?;
        self.inner
            .borrow_mut()
            .pipe(&self.topic, None, Some(&v), ts)
    }

    /// Pipes a tombstone (null value).
    pub fn pipe_tombstone(&self, key: K, ts: i64) -> Result<()> {
        let k = self.key_serde.serialize(&self.topic, &key)?;
        self.inner
            .borrow_mut()
            .pipe(&self.topic, Some(&k), None, ts)
    }

    /// Pipes raw bytes (to test deserialization errors).
    pub fn pipe_raw(&self, key: Option<&[u8]>, value: Option<&[u8]>, ts: i64) -> Result<()> {
        self.inner.borrow_mut().pipe(&self.topic, key, value, ts)
    }
}

/// A record read from an output topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRecord<K, V> {
    /// Key.
    pub key: K,
    /// Value (`None` = tombstone).
    pub value: Option<V>,
    /// Timestamp.
    pub timestamp: i64,
}

/// Reads typed records from an output topic of a [`TopologyTestDriver`].
pub struct TestOutputTopic<K, V> {
    inner: Rc<RefCell<DriverInner>>,
    topic: String,
    key_serde: SerdeRef<K>,
    value_serde: SerdeRef<V>,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> TestOutputTopic<K, V> {
    /// The next unread record.
    pub fn read_record(&self) -> Result<Option<TestRecord<K, V>>> {
        let raw = self
            .inner
            .borrow_mut()
            .outputs
            .get_mut(&self.topic)
            .and_then(VecDeque::pop_front);
        let Some(raw) = raw else { return Ok(None) };
        let value = match raw.value.as_deref() {
            Some(v) => Some(self.value_serde.deserialize(&self.topic, Some(v))?),
            None => None,
        };
        Ok(Some(TestRecord {
            key: self
                .key_serde
                .deserialize(&self.topic, raw.key.as_deref())?,
            value,
            timestamp: raw.timestamp,
        }))
    }

    /// Every unread record.
    pub fn read_records_to_list(&self) -> Result<Vec<TestRecord<K, V>>> {
        let mut out = Vec::new();
        while let Some(r) = self.read_record()? {
            out.push(r);
        }
        Ok(out)
    }

    /// Every unread (key, value).
    pub fn read_key_values(&self) -> Result<Vec<(K, Option<V>)>> {
        Ok(self
            .read_records_to_list()?
            .into_iter()
            .map(|r| (r.key, r.value))
            .collect())
    }

    /// True when every record has been read.
    pub fn is_empty(&self) -> bool {
        self.inner
            .borrow()
            .outputs
            .get(&self.topic)
            .is_none_or(VecDeque::is_empty)
    }
}
