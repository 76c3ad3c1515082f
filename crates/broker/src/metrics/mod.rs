//! Prometheus metrics with Kafka's names, and the health endpoints (`metrics.listener`).
//!
//! Names follow what the common JMX-exporter rules make of Kafka's MBeans
//! (`kafka.server:type=BrokerTopicMetrics,name=BytesInPerSec,topic=t` becomes
//! `kafka_server_brokertopicmetrics_bytesin_total{topic="t"}`), so Grafana dashboards
//! written for Kafka read a Gregor broker unchanged.
//!
//! # Layout
//! - `mod.rs`: [`BrokerMetrics`], the registry and the hot-path counters, and the
//!   scrape (gather, merge, encode).
//! - `topics.rs`: bytes in/out and messages in, per topic and for all topics.
//! - `requests.rs`: requests per API and version, and request time per API.
//! - `state.rs`: gauges read from the broker's state at scrape time (partitions,
//!   leaders, under-replicated and offline partitions, log end offsets and sizes).
//! - `groups.rs`: consumer group committed offsets and lag (kafka_exporter's names).
//! - `http.rs`: the listener: `GET /metrics`, `/health/live`, `/health/ready`.
//!
//! # Cost on the hot path
//! Counters are pre-registered: the request metrics are a table indexed by API key and
//! version built at start, the topic counters are cached per topic name (one read lock
//! and a hash per topic of a request). Incrementing is an atomic add; nothing is
//! allocated per record or per request. Gauges cost nothing until a scrape reads them.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use prometheus::proto::MetricFamily;
use prometheus::{Encoder, Registry, TextEncoder};

mod groups;
mod http;
mod operations;
mod requests;
mod state;
mod topics;

pub use groups::GroupOffsets;
pub use http::MetricsServer;
pub use operations::{OperationMetrics, Parked};
pub use requests::RequestMetrics;
pub use topics::{TopicCounters, TopicMetrics};

use crate::broker::Broker;
use crate::config::ConfigError;

/// The config naming the metrics listener's `host:port` (empty: no listener).
pub const LISTENER_CONFIG: &str = "metrics.listener";

/// Why metrics could not be set up or served.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("cannot register metric: {0}")]
    Register(#[from] prometheus::Error),
    #[error("cannot listen on {addr} ({LISTENER_CONFIG}): {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("metrics encoding is not UTF-8: {0}")]
    Encoding(#[from] std::string::FromUtf8Error),
    #[error("{0}")]
    Config(#[from] ConfigError),
}

/// `metrics.listener` as an address: `None` when empty (no listener).
pub fn listener_address(value: &str) -> Result<Option<SocketAddr>, ConfigError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let invalid = |why: String| ConfigError::Invalid {
        name: LISTENER_CONFIG.into(),
        value: value.into(),
        why,
    };
    value
        .to_socket_addrs()
        .map_err(|e| invalid(format!("expected host:port ({e})")))?
        .next()
        .map(Some)
        .ok_or_else(|| invalid("the host resolves to no address".into()))
}

/// Every metric the broker exports, registered once at start.
pub struct BrokerMetrics {
    registry: Registry,
    pub topics: TopicMetrics,
    pub requests: RequestMetrics,
    pub operations: OperationMetrics,
    state: state::StateGauges,
    groups: groups::GroupGauges,
    /// Held for a whole scrape (sync, never across an await): two scrapes at once
    /// would otherwise interleave their resets and sets of the state gauges.
    scrape: Mutex<()>,
    /// Set once the broker serves its listeners, cleared when it starts to stop.
    ready: AtomicBool,
    /// The running listener, if `metrics.listener` names one and it was started.
    server: Mutex<Option<MetricsServer>>,
}

impl BrokerMetrics {
    pub fn new() -> Result<Self, MetricsError> {
        let registry = Registry::new();
        Ok(Self {
            topics: TopicMetrics::new(&registry)?,
            requests: RequestMetrics::new(&registry, crate::handlers::SUPPORTED)?,
            operations: OperationMetrics::new(&registry)?,
            state: state::StateGauges::new(&registry)?,
            groups: groups::GroupGauges::new(&registry)?,
            registry,
            scrape: Mutex::new(()),
            ready: AtomicBool::new(false),
            server: Mutex::new(None),
        })
    }

    /// Starts the listener `metrics.listener` names, unless there is none or it runs
    /// already. The binary calls it as soon as the broker is open (so `/health/live`
    /// answers while the broker joins and once its ready line is out);
    /// `server::run_listeners` calls it too, for brokers started without the binary.
    pub async fn start_listener(broker: &std::sync::Arc<Broker>) -> Result<(), MetricsError> {
        let configured = broker.config.get(LISTENER_CONFIG).unwrap_or("");
        let Some(addr) = listener_address(configured)? else {
            return Ok(());
        };
        if lock(&broker.metrics.server).is_some() {
            return Ok(());
        }
        let server = MetricsServer::start(broker.clone(), addr).await?;
        *lock(&broker.metrics.server) = Some(server);
        Ok(())
    }

    /// Stops the listener, if one runs, and waits for it.
    pub async fn stop_listener(&self) {
        let server = lock(&self.server).take();
        if let Some(s) = server {
            s.stop().await;
        }
    }

    /// Marks the broker as serving (or not) for `/health/ready`.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    /// Serving its listeners and not fenced by the controller (a fenced broker has not
    /// yet caught up with the metadata up to its own registration).
    pub fn is_ready(&self, broker: &Broker) -> bool {
        self.ready.load(Ordering::Acquire) && !broker.metadata.is_fenced()
    }

    /// The committed offsets of the groups this broker coordinates, for [`Self::render`]
    /// (asked of the group tasks, so async; bounded in time).
    pub async fn group_offsets(broker: &std::sync::Arc<Broker>) -> GroupOffsets {
        groups::collect(broker).await
    }

    /// The Prometheus text exposition of every metric, the state gauges read now and
    /// the lag gauges from `groups`.
    pub fn render(&self, broker: &Broker, groups: &GroupOffsets) -> Result<String, MetricsError> {
        let _scrape = lock(&self.scrape);
        let image = broker.metadata.image();
        self.state.refresh(broker, &image);
        self.groups.refresh(broker, groups);
        self.topics.prune(&image);
        let mut families = self.registry.gather();
        merge(&mut families, self.topics.all_topics());
        requests::drop_unused(&mut families);
        let mut out = Vec::new();
        TextEncoder::new().encode(&families, &mut out)?;
        Ok(String::from_utf8(out)?)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// Adds `extra` families to `families`, joining those of the same name: the
/// all-topics series have the per-topic series' names without their `topic` label,
/// which the registry refuses to hold as one metric.
fn merge(families: &mut Vec<MetricFamily>, extra: Vec<MetricFamily>) {
    for mut family in extra {
        match families.iter_mut().find(|f| f.name() == family.name()) {
            Some(existing) => {
                let metrics = family.take_metric();
                existing.mut_metric().extend(metrics);
            }
            None => families.push(family),
        }
    }
}

#[cfg(test)]
mod tests;
