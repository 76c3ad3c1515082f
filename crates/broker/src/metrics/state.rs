//! Gauges read from the broker's state when scraped: Kafka's ReplicaManager,
//! KafkaController, FetchSessionCache and Log gauges, and the metadata offset this
//! broker applied.
//!
//! Nothing updates them between scrapes: `refresh` sets them from the hosted partitions
//! and the metadata image, and forgets the series of partitions no longer hosted.

use gregor_metadata::MetadataImage;
use prometheus::{IntGauge, IntGaugeVec, Opts, Registry};

use super::MetricsError;
use crate::broker::Broker;

pub(super) struct StateGauges {
    partition_count: IntGauge,
    leader_count: IntGauge,
    under_replicated: IntGauge,
    under_min_isr: IntGauge,
    offline_partitions: IntGauge,
    active_controller: IntGauge,
    metadata_applied_offset: IntGauge,
    fetch_sessions: IntGauge,
    fetch_session_partitions: IntGauge,
    log_end_offset: IntGaugeVec,
    log_start_offset: IntGaugeVec,
    log_size: IntGaugeVec,
}

fn gauge(registry: &Registry, name: &str, help: &str) -> Result<IntGauge, MetricsError> {
    let g = IntGauge::new(name, help)?;
    registry.register(Box::new(g.clone()))?;
    Ok(g)
}

fn partition_gauge(
    registry: &Registry,
    name: &str,
    help: &str,
) -> Result<IntGaugeVec, MetricsError> {
    let g = IntGaugeVec::new(Opts::new(name, help), &["topic", "partition"])?;
    registry.register(Box::new(g.clone()))?;
    Ok(g)
}

impl StateGauges {
    pub(super) fn new(r: &Registry) -> Result<Self, MetricsError> {
        Ok(Self {
            partition_count: gauge(
                r,
                "kafka_server_replicamanager_partitioncount",
                "Partitions with a replica on this broker.",
            )?,
            leader_count: gauge(
                r,
                "kafka_server_replicamanager_leadercount",
                "Partitions this broker leads.",
            )?,
            under_replicated: gauge(
                r,
                "kafka_server_replicamanager_underreplicatedpartitions",
                "Partitions this broker leads whose ISR is smaller than their replica set.",
            )?,
            under_min_isr: gauge(
                r,
                "kafka_server_replicamanager_underminisrpartitioncount",
                "Partitions this broker leads whose ISR is below min.insync.replicas.",
            )?,
            offline_partitions: gauge(
                r,
                "kafka_controller_kafkacontroller_offlinepartitionscount",
                "Partitions without a leader (reported by the active controller, 0 elsewhere).",
            )?,
            active_controller: gauge(
                r,
                "kafka_controller_kafkacontroller_activecontrollercount",
                "1 on the node that is the active controller, else 0.",
            )?,
            metadata_applied_offset: gauge(
                r,
                "kafka_server_broker_metadata_metrics_last_applied_record_offset",
                "Offset of the last metadata record this broker applied.",
            )?,
            fetch_sessions: gauge(
                r,
                "kafka_server_fetchsessioncache_numincrementalfetchsessions",
                "Incremental fetch sessions (KIP-227) this broker holds, consumers' and followers'.",
            )?,
            fetch_session_partitions: gauge(
                r,
                "kafka_server_fetchsessioncache_numincrementalfetchpartitionscached",
                "Partitions held by all incremental fetch sessions together.",
            )?,
            log_end_offset: partition_gauge(
                r,
                "kafka_log_log_logendoffset",
                "The offset the next record appended to the partition gets.",
            )?,
            log_start_offset: partition_gauge(
                r,
                "kafka_log_log_logstartoffset",
                "The partition's first offset still in the log.",
            )?,
            log_size: partition_gauge(
                r,
                "kafka_log_log_size",
                "Bytes of the partition's segments on disk.",
            )?,
        })
    }

    /// Sets every gauge from `broker`'s hosted partitions and `image`.
    pub(super) fn refresh(&self, broker: &Broker, image: &MetadataImage) {
        let me = broker.config.node_id;
        for v in [&self.log_end_offset, &self.log_start_offset, &self.log_size] {
            v.reset();
        }
        let (mut partitions, mut leaders, mut under, mut under_min) = (0i64, 0i64, 0i64, 0i64);
        for p in broker.replicas.all_partitions() {
            partitions += 1;
            let index = p.index.to_string();
            let labels = [p.topic.as_str(), index.as_str()];
            if let Ok(g) = self.log_end_offset.get_metric_with_label_values(&labels) {
                g.set(p.log_end_offset());
            }
            if let Ok(g) = self.log_start_offset.get_metric_with_label_values(&labels) {
                g.set(p.log_start_offset());
            }
            // The log lock is held for the size sum only (a walk over the segments).
            let size = p.log().ok().map(|log| log.size_bytes());
            if let (Some(size), Ok(g)) = (size, self.log_size.get_metric_with_label_values(&labels))
            {
                g.set(i64::try_from(size).unwrap_or(i64::MAX));
            }
            if p.is_leader() {
                leaders += 1;
                let a = p.assignment();
                if a.isr.len() < a.replicas.len() {
                    under += 1;
                }
                if a.isr.len() < p.settings().min_insync_replicas {
                    under_min += 1;
                }
            }
        }
        self.partition_count.set(partitions);
        self.leader_count.set(leaders);
        self.under_replicated.set(under);
        self.under_min_isr.set(under_min);
        let active = broker.metadata.controller_id() == Some(me);
        self.active_controller.set(i64::from(active));
        // Kafka's controller alone reports offline partitions, so a sum over the
        // cluster's brokers counts each once.
        let offline = if active {
            image
                .topics
                .values()
                .flat_map(|t| t.partitions.values())
                .filter(|p| p.leader < 0)
                .count()
        } else {
            0
        };
        self.offline_partitions
            .set(i64::try_from(offline).unwrap_or(i64::MAX));
        self.metadata_applied_offset.set(broker.metadata.applied());
        let (sessions, cached) = broker.fetch_sessions.sizes();
        self.fetch_sessions
            .set(i64::try_from(sessions).unwrap_or(i64::MAX));
        self.fetch_session_partitions
            .set(i64::try_from(cached).unwrap_or(i64::MAX));
    }
}
