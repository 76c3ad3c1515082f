//! Kafka's BrokerTopicMetrics: bytes in, bytes out and messages in, per topic and for
//! all topics (the same names without the `topic` label, as Kafka's JMX exporter shows
//! its topic-less MBeans).

use std::collections::HashMap;
use std::sync::RwLock;

use gregor_metadata::MetadataImage;
use prometheus::core::Collector;
use prometheus::proto::MetricFamily;
use prometheus::{IntCounter, IntCounterVec, Opts, Registry};

use super::MetricsError;

const BYTES_IN: (&str, &str) = (
    "kafka_server_brokertopicmetrics_bytesin_total",
    "Bytes of record batches appended by producers (Kafka's BytesInPerSec).",
);
const BYTES_OUT: (&str, &str) = (
    "kafka_server_brokertopicmetrics_bytesout_total",
    "Bytes of record batches sent to consumers, not followers (Kafka's BytesOutPerSec).",
);
const MESSAGES_IN: (&str, &str) = (
    "kafka_server_brokertopicmetrics_messagesin_total",
    "Records appended by producers (Kafka's MessagesInPerSec).",
);

/// One topic's counters, with the all-topics counters each increment also moves.
/// Cloning one is cloning a few `Arc`s; the counters are atomics.
#[derive(Clone)]
pub struct TopicCounters {
    bytes_in: [IntCounter; 2],
    bytes_out: [IntCounter; 2],
    messages_in: [IntCounter; 2],
}

impl TopicCounters {
    /// A produced batch appended: its bytes and its record count.
    pub fn record_produced(&self, bytes: u64, records: u64) {
        for c in &self.bytes_in {
            c.inc_by(bytes);
        }
        for c in &self.messages_in {
            c.inc_by(records);
        }
    }

    /// Record bytes sent to a consumer.
    pub fn record_fetched(&self, bytes: u64) {
        for c in &self.bytes_out {
            c.inc_by(bytes);
        }
    }
}

pub struct TopicMetrics {
    bytes_in: IntCounterVec,
    bytes_out: IntCounterVec,
    messages_in: IntCounterVec,
    /// The all-topics series: not registered (the registry refuses one name with two
    /// label sets), merged into the per-topic families at scrape time.
    all: [IntCounter; 3],
    /// Counters by topic name, made on a topic's first produce or fetch.
    by_topic: RwLock<HashMap<String, TopicCounters>>,
}

fn vec(registry: &Registry, (name, help): (&str, &str)) -> Result<IntCounterVec, MetricsError> {
    let v = IntCounterVec::new(Opts::new(name, help), &["topic"])?;
    registry.register(Box::new(v.clone()))?;
    Ok(v)
}

impl TopicMetrics {
    pub(super) fn new(registry: &Registry) -> Result<Self, MetricsError> {
        Ok(Self {
            bytes_in: vec(registry, BYTES_IN)?,
            bytes_out: vec(registry, BYTES_OUT)?,
            messages_in: vec(registry, MESSAGES_IN)?,
            all: [
                IntCounter::new(BYTES_IN.0, BYTES_IN.1)?,
                IntCounter::new(BYTES_OUT.0, BYTES_OUT.1)?,
                IntCounter::new(MESSAGES_IN.0, MESSAGES_IN.1)?,
            ],
            by_topic: RwLock::new(HashMap::new()),
        })
    }

    /// The counters of `topic` (made on first use). `None` only if the counter vectors
    /// refuse the label, which they do not for one label value.
    pub fn topic(&self, topic: &str) -> Option<TopicCounters> {
        {
            let map = match self.by_topic.read() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            if let Some(c) = map.get(topic) {
                return Some(c.clone());
            }
        }
        let counters = TopicCounters {
            bytes_in: [
                self.bytes_in.get_metric_with_label_values(&[topic]).ok()?,
                self.all[0].clone(),
            ],
            bytes_out: [
                self.bytes_out.get_metric_with_label_values(&[topic]).ok()?,
                self.all[1].clone(),
            ],
            messages_in: [
                self.messages_in
                    .get_metric_with_label_values(&[topic])
                    .ok()?,
                self.all[2].clone(),
            ],
        };
        let mut map = match self.by_topic.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        Some(map.entry(topic.to_string()).or_insert(counters).clone())
    }

    /// Drops the series of topics no longer in the metadata (deleted), as Kafka removes
    /// a deleted topic's MBeans.
    pub(super) fn prune(&self, image: &MetadataImage) {
        let mut map = match self.by_topic.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        map.retain(|topic, _| {
            let keep = image.topics.contains_key(topic);
            if !keep {
                for v in [&self.bytes_in, &self.bytes_out, &self.messages_in] {
                    let _ = v.remove_label_values(&[topic.as_str()]);
                }
            }
            keep
        });
    }

    /// The all-topics series, to merge into the gathered families.
    pub(super) fn all_topics(&self) -> Vec<MetricFamily> {
        self.all.iter().flat_map(|c| c.collect()).collect()
    }
}
