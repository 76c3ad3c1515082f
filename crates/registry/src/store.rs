//! The registry's storage: the compacted topic `_schemas`, reached only through the
//! Kafka protocol (librdkafka).
//!
//! Lifecycle: `Store::open` creates the topic if it is missing, then starts the tailer
//! thread, which reads the topic from the beginning and forever after, applying each
//! record to the shared `State` and publishing the next offset to read. Writers append
//! with an idempotent acks=all producer and wait for the tailer to pass their record's
//! offset before answering (read-your-writes).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::watch;

use crate::error::{RegistryError, Result};
use crate::model::Record;
use crate::state::State;

/// How long a write waits for its own record to come back before giving up (50002).
const READ_BACK_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Store {
    topic: String,
    producer: FutureProducer,
    /// For high watermarks; never assigned, never subscribed.
    probe: Arc<BaseConsumer>,
    /// Next offset the tailer will read: everything below it is applied.
    applied: watch::Receiver<i64>,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl Store {
    pub fn open(
        config: &ClientConfig,
        topic: &str,
        state: Arc<Mutex<State>>,
    ) -> anyhow::Result<Store> {
        ensure_topic(config, topic)?;
        let mut pc = config.clone();
        pc.set("acks", "all")
            .set("enable.idempotence", "true")
            .set("linger.ms", "0")
            .set("message.timeout.ms", "30000");
        let producer: FutureProducer = pc.create()?;
        let probe: BaseConsumer = consumer_config(config).create()?;
        let (tx, applied) = watch::channel(0i64);
        let stop = Arc::new(AtomicBool::new(false));
        let tail: BaseConsumer = consumer_config(config).create()?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, 0, Offset::Beginning)?;
        tail.assign(&tpl)?;
        let (t_state, t_stop, t_topic) = (state.clone(), stop.clone(), topic.to_string());
        std::thread::Builder::new()
            .name("registry-tail".into())
            .spawn(move || tail_loop(&tail, &t_topic, &t_state, &tx, &t_stop))?;
        Ok(Store {
            topic: topic.to_string(),
            producer,
            probe: Arc::new(probe),
            applied,
            state,
            stop,
        })
    }

    pub fn state(&self) -> &Arc<Mutex<State>> {
        &self.state
    }

    /// Appends records in order; the offset of the last one.
    pub async fn append(&self, records: Vec<Record>) -> Result<Option<i64>> {
        let mut last = None;
        for r in records {
            let key = r.key.to_bytes();
            let mut fr: FutureRecord<'_, Vec<u8>, Vec<u8>> =
                FutureRecord::to(&self.topic).key(&key).partition(0);
            if let Some(v) = &r.value {
                fr = fr.payload(v);
            }
            let delivery = self
                .producer
                .send(fr, Duration::from_secs(30))
                .await
                .map_err(|(e, _)| RegistryError::Store(e.to_string()))?;
            last = Some(delivery.offset);
        }
        Ok(last)
    }

    /// Waits until the record at `offset` has been applied.
    pub async fn wait_applied(&self, offset: i64) -> Result<()> {
        let mut rx = self.applied.clone();
        let waited = tokio::time::timeout(READ_BACK_TIMEOUT, async {
            rx.wait_for(|next| *next > offset).await.map(|_| ())
        })
        .await;
        match waited {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(RegistryError::Store("the log reader stopped".into())),
            Err(_) => Err(RegistryError::Timeout(format!(
                "offset {offset} of {} not read back in time",
                self.topic
            ))),
        }
    }

    /// Waits until everything in the log now has been applied.
    pub async fn catch_up(&self) -> Result<()> {
        let probe = self.probe.clone();
        let topic = self.topic.clone();
        let high = tokio::task::spawn_blocking(move || {
            probe.fetch_watermarks(&topic, 0, Duration::from_secs(10))
        })
        .await
        .map_err(|e| RegistryError::Store(e.to_string()))?
        .map_err(|e| RegistryError::Store(format!("cannot read the log end: {e}")))?
        .1;
        if high > 0 {
            self.wait_applied(high - 1).await?;
        }
        Ok(())
    }

    /// Catches up, retrying while the topic's leader is not yet known.
    pub async fn initial_catch_up(&self, deadline: Duration) -> anyhow::Result<()> {
        let start = Instant::now();
        loop {
            match self.catch_up().await {
                Ok(()) => return Ok(()),
                Err(e) if start.elapsed() > deadline => return Err(e.into()),
                Err(e) => {
                    tracing::debug!("waiting for {}: {e}", self.topic);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn consumer_config(config: &ClientConfig) -> ClientConfig {
    let mut c = config.clone();
    c.set("enable.auto.commit", "false")
        .set("allow.auto.create.topics", "false")
        .set("enable.partition.eof", "false")
        .set("fetch.wait.max.ms", "100")
        .set("group.id", "gregor-registry-reader");
    c
}

fn tail_loop(
    consumer: &BaseConsumer,
    topic: &str,
    state: &Mutex<State>,
    applied: &watch::Sender<i64>,
    stop: &AtomicBool,
) {
    while !stop.load(Ordering::Relaxed) {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                {
                    let mut st = match state.lock() {
                        Ok(g) => g,
                        Err(p) => p.into_inner(),
                    };
                    if let Err(e) = st.apply(m.key().unwrap_or_default(), m.payload()) {
                        tracing::warn!("{topic} offset {}: record refused: {e}", m.offset());
                    }
                }
                applied.send_if_modified(|next| {
                    let changed = m.offset() + 1 > *next;
                    *next = (*next).max(m.offset() + 1);
                    changed
                });
            }
            Some(Err(e)) => tracing::warn!("reading {topic}: {e}"),
            None => {
                // Past gaps (compaction, control records) the position moves without a
                // record to show for it.
                if let Ok(pos) = consumer.position() {
                    if let Some(Offset::Offset(n)) =
                        pos.find_partition(topic, 0).map(|p| p.offset())
                    {
                        applied.send_if_modified(|next| {
                            let changed = n > *next;
                            *next = (*next).max(n);
                            changed
                        });
                    }
                }
            }
        }
    }
}

/// Creates the one-partition compacted topic unless it exists.
fn ensure_topic(config: &ClientConfig, topic: &str) -> anyhow::Result<()> {
    let probe: BaseConsumer = consumer_config(config).create()?;
    let md = probe.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    if md
        .topics()
        .iter()
        .any(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty())
    {
        return Ok(());
    }
    let all = probe.fetch_metadata(None, Duration::from_secs(10))?;
    let rf = all.brokers().len().clamp(1, 3) as i32;
    let admin: AdminClient<DefaultClientContext> = config.create()?;
    let new = NewTopic::new(topic, 1, TopicReplication::Fixed(rf)).set("cleanup.policy", "compact");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let results = rt.block_on(admin.create_topics([&new], &AdminOptions::new()))?;
    for r in results {
        match r {
            Ok(_) => tracing::info!("created topic {topic} (compacted, replication {rf})"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, code)) => anyhow::bail!("cannot create topic {t}: {code}"),
        }
    }
    Ok(())
}
