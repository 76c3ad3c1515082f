//! `KafkaStreams`: runs a topology against a cluster, through the Kafka protocol only.
//!
//! One stream thread owns a group consumer (group = `application.id`, subscribed to every
//! source topic, repartition topics included), one producer, and the tasks of the
//! partitions the group assigned to it. Lifecycle of a commit interval:
//!
//! 1. records are processed one by one; sink and changelog records go to the producer
//!    (under exactly-once, inside a transaction begun with the first record)
//! 2. every `commit.interval.ms`, and before partitions are revoked: at-least-once
//!    flushes the producer, persists the stores with their checkpoints, then commits
//!    offsets; exactly-once sends the offsets to the transaction and commits it, then
//!    persists the stores (a crash in between replays the committed changelog suffix)
//! 3. on assignment, each new task opens its local store file and restores the changelog
//!    after its checkpoint before processing anything.
//!
//! Step 2, and the rewind after a failed exactly-once commit, are in `commit.rs`.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::{ClientContext, TopicPartitionList};

use super::restore::restore_task;
use super::task::{Task, TaskId};
use super::topics;
use crate::config::{DeserializationHandler, ProcessingGuarantee, StreamsConfig};
use crate::dsl::builder::TopologyInner;
use crate::dsl::Topology;
use crate::error::{Result, StreamsError};
use crate::processor::SinkRecord;
use crate::serde::SerdeRef;
use crate::state::{LocalState, ReadOnlyKeyValueStore, ReadOnlyWindowStore, StoreRegistry};
use crate::PunctuationType;

pub(super) const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
/// Offset commit metadata: `gregor-streams:st=<stream time ms>`.
pub(super) const STREAM_TIME_PREFIX: &str = "gregor-streams:st=";

/// The application's state, as Kafka Streams reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Built, not started.
    Created,
    /// Waiting for (or restoring) an assignment.
    Rebalancing,
    /// Processing.
    Running,
    /// `close()` was called.
    PendingShutdown,
    /// Stopped cleanly.
    NotRunning,
    /// Stopped by an error.
    Error,
}

/// Delivery reports: the last offset of each changelog partition, and the first error.
#[derive(Default)]
pub(super) struct Deliveries {
    pub(super) offsets: Mutex<HashMap<(String, i32), i64>>,
    pub(super) error: Mutex<Option<String>>,
}

pub(super) struct ProducerCtx(pub(super) Arc<Deliveries>);
impl ClientContext for ProducerCtx {}
impl ProducerContext for ProducerCtx {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(m) => {
                let mut g = self.0.offsets.lock().unwrap_or_else(|p| p.into_inner());
                let e = g
                    .entry((m.topic().to_string(), m.partition()))
                    .or_insert(-1);
                *e = (*e).max(m.offset());
            }
            Err((e, _)) => {
                let mut g = self.0.error.lock().unwrap_or_else(|p| p.into_inner());
                g.get_or_insert_with(|| e.to_string());
            }
        }
    }
}

pub(super) struct Engine {
    pub(super) topo: Arc<TopologyInner>,
    pub(super) app_id: String,
    pub(super) guarantee: ProcessingGuarantee,
    pub(super) handler: DeserializationHandler,
    pub(super) state_dir: PathBuf,
    pub(super) base: ClientConfig,
    pub(super) registry: StoreRegistry,
    pub(super) producer: BaseProducer<ProducerCtx>,
    /// To replace a fenced producer (exactly-once): same transactional.id.
    pub(super) producer_config: ClientConfig,
    /// Exactly-once commits that failed in a row (each one rewinds the tasks).
    pub(super) failed_commits: u32,
    pub(super) deliveries: Arc<Deliveries>,
    pub(super) tasks: BTreeMap<TaskId, Task>,
    /// Next offset to commit per input partition.
    pub(super) offsets: HashMap<(String, i32), i64>,
    pub(super) in_txn: bool,
    /// An error raised inside a rebalance callback, reported by the stream thread.
    pub(super) error: Option<StreamsError>,
    pub(super) state: Arc<Mutex<State>>,
    pub(super) skipped: u64,
    /// Resolved source topic → sub-topology (looked up per record).
    pub(super) topic_subs: HashMap<String, usize>,
}

impl Engine {
    fn set_state(&self, s: State) {
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = s;
    }

    pub(super) fn sub_of_topic(&self, topic: &str) -> Option<usize> {
        self.topic_subs.get(topic).copied()
    }

    fn process(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        ts: i64,
    ) -> Result<()> {
        let Some(sub) = self.sub_of_topic(topic) else {
            return Err(StreamsError::Topology(format!("no source reads {topic}")));
        };
        let id = TaskId { sub, partition };
        let Some(task) = self.tasks.get_mut(&id) else {
            tracing::warn!(%topic, partition, "record for a partition without a task; skipped");
            return Ok(());
        };
        if self.guarantee == ProcessingGuarantee::ExactlyOnceV2 && !self.in_txn {
            self.producer.begin_transaction()?;
            self.in_txn = true;
        }
        let before = task.stream_time;
        let mut out = match task.process(topic, key, value, ts) {
            Ok(out) => out,
            Err(e @ StreamsError::Deserialization { .. }) => match self.handler {
                DeserializationHandler::LogAndContinue => {
                    tracing::warn!(error = %e, %topic, partition, offset, "skipping a record that cannot be deserialized");
                    self.skipped += 1;
                    Vec::new()
                }
                DeserializationHandler::LogAndFail => return Err(e),
            },
            Err(e) => return Err(e),
        };
        if task.punctuates() && task.stream_time > before {
            let now = task.stream_time;
            out.extend(task.punctuate(PunctuationType::StreamTime, now)?);
        }
        for r in &out {
            self.send(r)?;
        }
        self.offsets
            .insert((topic.to_string(), partition), offset + 1);
        Ok(())
    }

    /// Runs every task's due wall-clock punctuations; what they produce is sent like a
    /// record's output (inside the open transaction under exactly-once).
    pub(super) fn punctuate_wall_clock(&mut self) -> Result<()> {
        if !self.tasks.values().any(Task::punctuates) {
            return Ok(());
        }
        let now = wall_clock_ms();
        let ids: Vec<TaskId> = self.tasks.keys().copied().collect();
        for id in ids {
            let out = match self.tasks.get_mut(&id) {
                Some(task) => task.punctuate(PunctuationType::WallClockTime, now)?,
                None => continue,
            };
            if out.is_empty() {
                continue;
            }
            if self.guarantee == ProcessingGuarantee::ExactlyOnceV2 && !self.in_txn {
                self.producer.begin_transaction()?;
                self.in_txn = true;
            }
            for r in &out {
                self.send(r)?;
            }
        }
        Ok(())
    }

    fn send(&self, r: &SinkRecord) -> Result<()> {
        loop {
            let mut rec: BaseRecord<'_, [u8], [u8]> =
                BaseRecord::to(&r.topic).timestamp(r.timestamp);
            if let Some(k) = &r.key {
                rec = rec.key(k.as_slice());
            }
            if let Some(v) = &r.value {
                rec = rec.payload(v.as_slice());
            }
            if let Some(p) = r.partition {
                rec = rec.partition(p);
            }
            match self.producer.send(rec) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    self.producer.poll(Duration::from_millis(50));
                }
                Err((e, _)) => return Err(e.into()),
            }
        }
    }

    pub(super) fn close_all_tasks(&mut self) {
        for (_, t) in std::mem::take(&mut self.tasks) {
            t.close();
        }
    }

    pub(super) fn assign<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        tpl: &TopicPartitionList,
    ) -> Result<()> {
        let mut ids: Vec<TaskId> = tpl
            .elements()
            .iter()
            .filter_map(|e| {
                self.sub_of_topic(e.topic()).map(|sub| TaskId {
                    sub,
                    partition: e.partition(),
                })
            })
            .collect();
        ids.sort();
        ids.dedup();
        for id in ids {
            if self.tasks.contains_key(&id) {
                continue;
            }
            let dir = self.state_dir.join(id.to_string());
            let local = LocalState::open(&dir)?;
            let mut task = Task::new(
                self.topo.clone(),
                &self.app_id,
                id,
                local,
                self.registry.clone(),
            )?;
            let restored = restore_task(&mut task, &self.base)?;
            // Offsets this producer delivered to these changelog partitions while an
            // earlier owner period are older than what was just restored.
            {
                let mut delivered = self
                    .deliveries
                    .offsets
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                for (_, topic, _) in task.restore_plan() {
                    delivered.remove(&(topic, id.partition));
                }
            }
            task.init(wall_clock_ms())?;
            tracing::info!(task = %id, restored, "task created");
            self.tasks.insert(id, task);
        }
        // Stream time as committed by the previous owner (or this one, before a restart).
        let committed = consumer.committed_offsets(tpl.clone(), CLIENT_TIMEOUT)?;
        for e in committed.elements() {
            let st = e
                .metadata()
                .strip_prefix(STREAM_TIME_PREFIX)
                .and_then(|v| v.parse::<i64>().ok());
            let task = self.sub_of_topic(e.topic()).and_then(|sub| {
                self.tasks.get_mut(&TaskId {
                    sub,
                    partition: e.partition(),
                })
            });
            if let (Some(st), Some(task)) = (st, task) {
                task.restore_stream_time(st);
            }
        }
        let names: Vec<String> = self.tasks.keys().map(ToString::to_string).collect();
        tracing::info!("tasks assigned: [{}]", names.join(", "));
        Ok(())
    }
}

struct GroupCtx {
    engine: Arc<Mutex<Engine>>,
}

impl ClientContext for GroupCtx {}

impl ConsumerContext for GroupCtx {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let mut engine = self.engine.lock().unwrap_or_else(|p| p.into_inner());
        match rebalance {
            Rebalance::Revoke(_) => {
                engine.set_state(State::Rebalancing);
                // Eager protocol: everything is revoked. Commit what was processed so
                // the next owner starts exactly after it.
                if let Err(e) = engine.commit(consumer, false) {
                    engine.error.get_or_insert(e);
                }
                engine.close_all_tasks();
            }
            Rebalance::Assign(tpl) => {
                if let Err(e) = engine.assign(consumer, tpl) {
                    engine.error.get_or_insert(e);
                }
                engine.set_state(State::Running);
            }
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance error"),
        }
    }
}

/// A running streams application.
pub struct KafkaStreams {
    topology: Topology,
    config: StreamsConfig,
    state: Arc<Mutex<State>>,
    registry: StoreRegistry,
    shutdown: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<()>>>,
}

impl KafkaStreams {
    /// Checks the config; nothing runs until [`start`](Self::start).
    pub fn new(topology: Topology, config: StreamsConfig) -> Result<Self> {
        config.application_id()?;
        config.bootstrap_servers()?;
        config.processing_guarantee()?;
        config.commit_interval()?;
        config.deserialization_handler()?;
        Ok(KafkaStreams {
            topology,
            config,
            state: Arc::new(Mutex::new(State::Created)),
            registry: StoreRegistry::default(),
            shutdown: Arc::new(AtomicBool::new(false)),
            thread: None,
        })
    }

    /// Starts the stream thread.
    pub fn start(&mut self) -> Result<()> {
        if self.thread.is_some() {
            return Err(StreamsError::NotRunning("already started".into()));
        }
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = State::Rebalancing;
        let (topo, config) = (self.topology.inner.clone(), self.config.clone());
        let (state, registry, shutdown) = (
            self.state.clone(),
            self.registry.clone(),
            self.shutdown.clone(),
        );
        let handle = std::thread::Builder::new()
            .name("stream-thread".into())
            .spawn(move || {
                let result = run(topo, &config, state.clone(), registry, &shutdown);
                let end = match &result {
                    Ok(()) => State::NotRunning,
                    Err(e) => {
                        tracing::error!(error = %e, "stream thread failed");
                        State::Error
                    }
                };
                *state.lock().unwrap_or_else(|p| p.into_inner()) = end;
                result
            })?;
        self.thread = Some(handle);
        Ok(())
    }

    /// The current state.
    pub fn state(&self) -> State {
        *self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stops processing: commits, leaves the group, waits for the stream thread. Returns
    /// the thread's error, if it stopped with one.
    pub fn close(&mut self) -> Result<()> {
        self.shutdown.store(true, Ordering::SeqCst);
        let Some(handle) = self.thread.take() else {
            return Ok(());
        };
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = State::PendingShutdown;
        let result = handle
            .join()
            .unwrap_or_else(|_| Err(StreamsError::NotRunning("stream thread panicked".into())));
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = if result.is_ok() {
            State::NotRunning
        } else {
            State::Error
        };
        result
    }

    /// A read-only view of a key-value store over this instance's tasks.
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

    /// A read-only view of a window store over this instance's tasks.
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

impl Drop for KafkaStreams {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            tracing::warn!(error = %e, "streams application stopped with an error");
        }
    }
}

/// The system clock (ms since the epoch), for wall-clock punctuation.
fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The process id kept in the state directory: it names the transactional producer, so a
/// restart with the same state directory fences (and aborts) its predecessor's transaction.
fn process_id(dir: &std::path::Path) -> Result<String> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("process.id");
    if let Ok(id) = std::fs::read_to_string(&path) {
        if !id.trim().is_empty() {
            return Ok(id.trim().to_string());
        }
    }
    let id = uuid::Uuid::new_v4().to_string();
    std::fs::write(&path, &id)?;
    Ok(id)
}

fn run(
    topo: Arc<TopologyInner>,
    config: &StreamsConfig,
    state: Arc<Mutex<State>>,
    registry: StoreRegistry,
    shutdown: &AtomicBool,
) -> Result<()> {
    let app_id = config.application_id()?.to_string();
    let guarantee = config.processing_guarantee()?;
    let commit_interval = config.commit_interval()?;
    let state_dir = config.state_dir().join(&app_id);
    let pid = process_id(&state_dir)?;
    let mut base = ClientConfig::new();
    base.set("bootstrap.servers", config.bootstrap_servers()?);
    let replication: i32 = config
        .get("replication.factor")
        .map(str::parse)
        .transpose()
        .map_err(|e| StreamsError::Config {
            key: "replication.factor".into(),
            reason: format!("{e}"),
        })?
        .unwrap_or(-1);

    let mut producer_config = base.clone();
    producer_config
        .set("enable.idempotence", "true")
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "5");
    if guarantee == ProcessingGuarantee::ExactlyOnceV2 {
        producer_config
            .set("transactional.id", format!("{app_id}-{pid}"))
            .set("transaction.timeout.ms", "10000");
    }
    for (k, v) in config.prefixed("producer.") {
        producer_config.set(k, v);
    }
    let deliveries = Arc::new(Deliveries::default());
    let producer: BaseProducer<ProducerCtx> =
        producer_config.create_with_context(ProducerCtx(deliveries.clone()))?;
    if guarantee == ProcessingGuarantee::ExactlyOnceV2 {
        producer.init_transactions(CLIENT_TIMEOUT)?;
    }

    let engine = Arc::new(Mutex::new(Engine {
        topo: topo.clone(),
        app_id: app_id.clone(),
        guarantee,
        handler: config.deserialization_handler()?,
        state_dir,
        base: base.clone(),
        registry,
        producer,
        producer_config,
        failed_commits: 0,
        deliveries,
        tasks: BTreeMap::new(),
        offsets: HashMap::new(),
        in_txn: false,
        error: None,
        state,
        skipped: 0,
        topic_subs: topo
            .sources
            .iter()
            .filter_map(|s| {
                let sub = topo
                    .subtopologies
                    .iter()
                    .find(|sub| sub.nodes.contains(&s.node))?;
                Some((s.topic.resolve(&app_id), sub.id))
            })
            .collect(),
    }));
    let mut consumer_config = base.clone();
    consumer_config
        .set("group.id", &app_id)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("partition.assignment.strategy", "range")
        .set(
            "isolation.level",
            match guarantee {
                ProcessingGuarantee::AtLeastOnce => "read_uncommitted",
                ProcessingGuarantee::ExactlyOnceV2 => "read_committed",
            },
        );
    for (k, v) in config.prefixed("consumer.") {
        consumer_config.set(k, v);
    }
    let consumer: BaseConsumer<GroupCtx> = consumer_config.create_with_context(GroupCtx {
        engine: engine.clone(),
    })?;

    let counts = topics::subtopology_partitions(&topo, &app_id, &consumer)?;
    let mut admin_config = base.clone();
    for (k, v) in config.prefixed("admin.") {
        admin_config.set(k, v);
    }
    topics::create_internal_topics(&topo, &app_id, &counts, &admin_config, replication)?;
    let mut subscription: Vec<String> = topo
        .sources
        .iter()
        .map(|s| s.topic.resolve(&app_id))
        .collect();
    subscription.sort();
    let refs: Vec<&str> = subscription.iter().map(String::as_str).collect();
    consumer.subscribe(&refs)?;
    tracing::info!(application = %app_id, topics = ?subscription, "stream thread started");

    let mut last_commit = Instant::now();
    let result = (|| -> Result<()> {
        while !shutdown.load(Ordering::SeqCst) {
            let polled = consumer.poll(Duration::from_millis(100));
            let mut engine = engine.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(e) = engine.error.take() {
                return Err(e);
            }
            match polled {
                None => {}
                Some(Err(e)) => tracing::warn!(error = %e, "consumer error"),
                Some(Ok(m)) => {
                    let ts = m.timestamp().to_millis().unwrap_or(0);
                    engine.process(
                        m.topic(),
                        m.partition(),
                        m.offset(),
                        m.key(),
                        m.payload(),
                        ts,
                    )?;
                }
            }
            engine.punctuate_wall_clock()?;
            engine.producer.poll(Duration::ZERO);
            if last_commit.elapsed() >= commit_interval {
                engine.commit(&consumer, true)?;
                last_commit = Instant::now();
            }
        }
        let mut engine = engine.lock().unwrap_or_else(|p| p.into_inner());
        engine.commit(&consumer, false)?;
        Ok(())
    })();
    let mut g = engine.lock().unwrap_or_else(|p| p.into_inner());
    if result.is_err() && g.in_txn {
        if let Err(e) = g.producer.abort_transaction(CLIENT_TIMEOUT) {
            tracing::warn!(error = %e, "aborting the open transaction failed");
        }
    }
    g.close_all_tasks();
    drop(g);
    consumer.unsubscribe();
    drop(consumer);
    result
}
