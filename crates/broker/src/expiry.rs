//! Periodic sweeps of state nobody asks about again: idle producers in every
//! partition's producer state (`producer.id.expiration.ms`, checked every
//! `producer.id.expiration.check.interval.ms`, as Kafka's `PeriodicProducerExpirationCheck`).
//! Without it, a producer id that never returns would stay in memory for the life of
//! the broker.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;

use crate::broker::Broker;
use crate::util::now_ms;

/// Runs the sweeps until `stop`.
pub async fn run(broker: Arc<Broker>, stop: broadcast::Receiver<()>) {
    producer_expiry_loop(broker, stop).await;
}

fn ticker(ms: u64) -> tokio::time::Interval {
    let period = Duration::from_millis(ms.max(1));
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick
}

/// Removes producers idle past `producer.id.expiration.ms` (and with no open
/// transaction) from every partition, every `producer.id.expiration.check.interval.ms`.
async fn producer_expiry_loop(broker: Arc<Broker>, mut stop: broadcast::Receiver<()>) {
    let mut tick = ticker(broker.config.producer_expiration_check_interval_ms);
    loop {
        tokio::select! {
            _ = stop.recv() => return,
            _ = tick.tick() => {}
        }
        let now = now_ms();
        let mut removed = 0;
        for p in broker.replicas.all_partitions() {
            match p.remove_expired_producers(now) {
                Ok(n) => removed += n,
                Err(e) => {
                    tracing::error!(topic = %p.topic, partition = p.index, error = %e, "producer expiry failed")
                }
            }
        }
        if removed > 0 {
            tracing::debug!(removed, "expired idle producers");
        }
    }
}
