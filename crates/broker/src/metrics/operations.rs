//! Replication and purgatory metrics, with the names the common JMX exporter rules give
//! Kafka's: `kafka_server_replicamanager_isrshrinks_total` / `_isrexpands_total` (the
//! IsrShrinksPerSec / IsrExpandsPerSec meters' counts, counted when the controller
//! accepted the ISR change) and
//! `kafka_server_delayedoperationpurgatory_purgatorysize{delayedOperation}`: acks=all
//! produces waiting for the ISR ("Produce") and fetches parked for data ("Fetch").

use prometheus::{IntCounter, IntGauge, IntGaugeVec, Opts, Registry};

use super::MetricsError;

pub struct OperationMetrics {
    isr_shrinks: IntCounter,
    isr_expands: IntCounter,
    produce_waiting: IntGauge,
    fetch_waiting: IntGauge,
}

/// A request counted in its purgatory while this lives.
pub struct Parked(IntGauge);

impl Drop for Parked {
    fn drop(&mut self) {
        self.0.dec();
    }
}

fn counter(r: &Registry, name: &str, help: &str) -> Result<IntCounter, MetricsError> {
    let c = IntCounter::new(name, help)?;
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

impl OperationMetrics {
    pub(super) fn new(r: &Registry) -> Result<Self, MetricsError> {
        let purgatory = IntGaugeVec::new(
            Opts::new(
                "kafka_server_delayedoperationpurgatory_purgatorysize",
                "Requests parked until their condition or deadline (Produce: acks=all \
                 waiting for the ISR; Fetch: waiting for min_bytes).",
            ),
            &["delayedOperation"],
        )?;
        r.register(Box::new(purgatory.clone()))?;
        Ok(Self {
            isr_shrinks: counter(
                r,
                "kafka_server_replicamanager_isrshrinks_total",
                "ISR shrinks of partitions this broker leads, accepted by the controller.",
            )?,
            isr_expands: counter(
                r,
                "kafka_server_replicamanager_isrexpands_total",
                "ISR expansions of partitions this broker leads, accepted by the controller.",
            )?,
            produce_waiting: purgatory.get_metric_with_label_values(&["Produce"])?,
            fetch_waiting: purgatory.get_metric_with_label_values(&["Fetch"])?,
        })
    }

    /// An accepted ISR change from `from` to `to` members.
    pub fn isr_changed(&self, from: usize, to: usize) {
        if to < from {
            self.isr_shrinks.inc();
        } else if to > from {
            self.isr_expands.inc();
        }
    }

    /// An acks=all produce waits for the ISR until the guard drops.
    pub fn park_produce(&self) -> Parked {
        self.produce_waiting.inc();
        Parked(self.produce_waiting.clone())
    }

    /// A fetch waits for data until the guard drops.
    pub fn park_fetch(&self) -> Parked {
        self.fetch_waiting.inc();
        Parked(self.fetch_waiting.clone())
    }
}
