//! A compacted internal topic read from the beginning and written with acks=all (Kafka's
//! `KafkaBasedLog`): created if missing, `read_to_end` hands every record since the last
//! call to a callback and returns once each partition's position reached the high
//! watermark sampled at the start, `send` returns once every record is acknowledged.
//! Blocking: call from blocking threads (the herder and REST run it on
//! `spawn_blocking`; task threads are plain threads).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::DistError;

const TIMEOUT: Duration = Duration::from_secs(30);

/// Counts failed deliveries, so `send` knows whether all of a batch was written.
#[derive(Clone, Default)]
struct Acks {
    failed: Arc<AtomicUsize>,
    last: Arc<Mutex<Option<String>>>,
}

impl ClientContext for Acks {}

impl ProducerContext for Acks {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            self.failed.fetch_add(1, Ordering::SeqCst);
            *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
        }
    }
}

/// A record as read: key, value (None = tombstone), partition, offset.
pub struct LogRecord<'a> {
    pub key: &'a [u8],
    pub value: Option<&'a [u8]>,
    pub offset: i64,
}

pub struct TopicLog {
    pub topic: String,
    partitions: i32,
    client: ClientConfig,
    /// A read_uncommitted client, made on first use, that samples high watermarks
    /// (which include open transactions) for `high_watermarks`.
    uncommitted: Mutex<Option<BaseConsumer>>,
    consumer: Mutex<(BaseConsumer, BTreeMap<i32, i64>)>,
    producer: BaseProducer<Acks>,
    acks: Acks,
    send_lock: Mutex<()>,
}

fn kafka(what: &str) -> impl Fn(rdkafka::error::KafkaError) -> DistError + '_ {
    move |e| DistError::Kafka(format!("{what}: {e}"))
}

impl TopicLog {
    /// Opens (creating it compacted if missing) `topic`. Call inside the tokio runtime
    /// (a blocking thread of it): topic creation goes through the async admin client.
    pub fn open(
        client: &ClientConfig,
        topic: &str,
        partitions: i32,
        replication: i32,
    ) -> Result<Self, DistError> {
        let admin: AdminClient<DefaultClientContext> = client
            .create()
            .map_err(kafka("cannot create admin client"))?;
        let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(replication))
            .set("cleanup.policy", "compact");
        let created = tokio::runtime::Handle::current()
            .block_on(admin.create_topics(
                &[new],
                &AdminOptions::new().operation_timeout(Some(TIMEOUT)),
            ))
            .map_err(kafka("cannot create internal topic"))?;
        for r in created {
            if let Err((t, code)) = r {
                if code != RDKafkaErrorCode::TopicAlreadyExists {
                    return Err(DistError::Kafka(format!(
                        "cannot create internal topic {t}: {code}"
                    )));
                }
            }
        }
        let consumer: BaseConsumer = client
            .clone()
            .set("group.id", format!("gregor-connect-log-{topic}"))
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false")
            // Transactional writers (exactly-once source tasks) write the offsets topic:
            // only committed records count.
            .set("isolation.level", "read_committed")
            .create()
            .map_err(kafka("cannot create consumer"))?;
        let deadline = Instant::now() + TIMEOUT;
        let partitions = loop {
            let md = consumer
                .fetch_metadata(Some(topic), TIMEOUT)
                .map_err(kafka("cannot read metadata"))?;
            let n = md
                .topics()
                .iter()
                .find(|t| t.name() == topic)
                .map_or(0, |t| t.partitions().len());
            if n > 0 {
                break i32::try_from(n).unwrap_or(i32::MAX);
            }
            if Instant::now() > deadline {
                return Err(DistError::Kafka(format!("topic {topic} has no partitions")));
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition_offset(topic, p, Offset::Beginning)
                .map_err(kafka("cannot assign"))?;
        }
        consumer.assign(&tpl).map_err(kafka("cannot assign"))?;
        let acks = Acks::default();
        let producer: BaseProducer<Acks> = client
            .clone()
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("linger.ms", "0")
            .create_with_context(acks.clone())
            .map_err(kafka("cannot create producer"))?;
        Ok(TopicLog {
            topic: topic.to_string(),
            partitions,
            client: client.clone(),
            uncommitted: Mutex::new(None),
            consumer: Mutex::new((consumer, BTreeMap::new())),
            producer,
            acks,
            send_lock: Mutex::new(()),
        })
    }

    /// Reads every record up to the current end; returns the end offset of partition 0
    /// (the config topic's "config offset"). The end is the last stable offset: the
    /// reader is read_committed, so an open transaction's records wait.
    pub fn read_to_end(&self, f: impl FnMut(LogRecord<'_>)) -> Result<i64, DistError> {
        let mut guard = self.consumer.lock().unwrap_or_else(|p| p.into_inner());
        let (consumer, next) = &mut *guard;
        let mut ends = BTreeMap::new();
        for p in 0..self.partitions {
            let (_, high) = consumer
                .fetch_watermarks(&self.topic, p, TIMEOUT)
                .map_err(kafka("cannot read the end offsets"))?;
            ends.insert(p, high);
        }
        if !self.read_until(consumer, next, &ends, TIMEOUT, f)? {
            return Err(DistError::Kafka(format!(
                "cannot read {} to its end in {TIMEOUT:?}",
                self.topic
            )));
        }
        Ok(ends.get(&0).copied().unwrap_or(0))
    }

    /// The high watermarks (open transactions included) of every partition, through a
    /// read_uncommitted client made on first use.
    pub fn high_watermarks(&self) -> Result<BTreeMap<i32, i64>, DistError> {
        let mut hw = self.uncommitted.lock().unwrap_or_else(|p| p.into_inner());
        if hw.is_none() {
            let c: BaseConsumer = self
                .client
                .clone()
                .set("isolation.level", "read_uncommitted")
                .create()
                .map_err(kafka("cannot create consumer"))?;
            *hw = Some(c);
        }
        let mut ends = BTreeMap::new();
        if let Some(c) = hw.as_ref() {
            for p in 0..self.partitions {
                let (_, high) = c
                    .fetch_watermarks(&self.topic, p, TIMEOUT)
                    .map_err(kafka("cannot read the high watermarks"))?;
                ends.insert(p, high);
            }
        }
        Ok(ends)
    }

    /// One round of reading committed records towards `ends` (from `high_watermarks`):
    /// true once every partition's position reached its end, false when `wait` passed
    /// first (a transaction is still open). An exactly-once source task reads so, after
    /// fencing its predecessor, until its predecessors' last committed offsets are read
    /// even behind another task's open transaction (the last stable offset would stop
    /// before them).
    pub fn read_towards(
        &self,
        ends: &BTreeMap<i32, i64>,
        wait: Duration,
        f: impl FnMut(LogRecord<'_>),
    ) -> Result<bool, DistError> {
        let mut guard = self.consumer.lock().unwrap_or_else(|p| p.into_inner());
        let (consumer, next) = &mut *guard;
        self.read_until(consumer, next, ends, wait, f)
    }

    /// Polls until every partition's position reached its end (true) or `wait` passed
    /// (false). The position (not the last record + 1) is what counts: transaction
    /// markers and aborted records take offsets but are never handed out.
    fn read_until(
        &self,
        consumer: &BaseConsumer,
        next: &mut BTreeMap<i32, i64>,
        ends: &BTreeMap<i32, i64>,
        wait: Duration,
        mut f: impl FnMut(LogRecord<'_>),
    ) -> Result<bool, DistError> {
        let deadline = Instant::now() + wait;
        let behind = |next: &BTreeMap<i32, i64>| {
            ends.iter()
                .any(|(p, high)| next.get(p).copied().unwrap_or(0) < *high)
        };
        while behind(next) {
            if Instant::now() > deadline {
                return Ok(false);
            }
            match consumer.poll(Duration::from_millis(100)) {
                None => {
                    // Nothing handed out: the position may still have moved past
                    // markers or aborted records.
                    if let Ok(positions) = consumer.position() {
                        for e in positions.elements_for_topic(&self.topic) {
                            if let Offset::Offset(o) = e.offset() {
                                let n = next.entry(e.partition()).or_insert(0);
                                *n = (*n).max(o);
                            }
                        }
                    }
                }
                Some(Err(e)) => tracing::warn!("reading {}: {e}", self.topic),
                Some(Ok(m)) => {
                    next.insert(m.partition(), m.offset() + 1);
                    f(LogRecord {
                        key: m.key().unwrap_or_default(),
                        value: m.payload(),
                        offset: m.offset(),
                    });
                }
            }
        }
        Ok(true)
    }

    /// The end offset (high watermark) of partition 0.
    pub fn end_offset(&self) -> Result<i64, DistError> {
        let guard = self.consumer.lock().unwrap_or_else(|p| p.into_inner());
        let (_, high) = guard
            .0
            .fetch_watermarks(&self.topic, 0, TIMEOUT)
            .map_err(kafka("cannot read the end offset"))?;
        Ok(high)
    }

    /// Writes records (key, value or tombstone) and waits for every acknowledgement.
    pub fn send(&self, records: &[(String, Option<Vec<u8>>)]) -> Result<(), DistError> {
        let _one = self.send_lock.lock().unwrap_or_else(|p| p.into_inner());
        let before = self.acks.failed.load(Ordering::SeqCst);
        for (k, v) in records {
            let mut rec: BaseRecord<'_, str, [u8]> = BaseRecord::to(&self.topic).key(k.as_str());
            if let Some(v) = v {
                rec = rec.payload(v.as_slice());
            }
            loop {
                match self.producer.send(rec) {
                    Ok(()) => break,
                    Err((e, back))
                        if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) =>
                    {
                        self.producer.poll(Duration::from_millis(20));
                        rec = back;
                    }
                    Err((e, _)) => {
                        return Err(DistError::Kafka(format!(
                            "cannot write to {}: {e}",
                            self.topic
                        )))
                    }
                }
            }
        }
        self.producer
            .flush(TIMEOUT)
            .map_err(kafka("records not acknowledged"))?;
        if self.acks.failed.load(Ordering::SeqCst) != before {
            let why = self
                .acks
                .last
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
                .unwrap_or_default();
            return Err(DistError::Kafka(format!(
                "cannot write to {}: {why}",
                self.topic
            )));
        }
        Ok(())
    }
}
