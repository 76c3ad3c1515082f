//! Periodic sweeps of state nobody asks about again: idle producers in every
//! partition's producer state (`producer.id.expiration.ms`, checked every
//! `producer.id.expiration.check.interval.ms`, as Kafka's `PeriodicProducerExpirationCheck`)
//! and the offsets of groups without a task (`offsets.retention.minutes`, checked every
//! `offsets.retention.check.interval.ms`). Without them, a producer id or a group that
//! never returns would stay in memory for the life of the broker.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;

use crate::broker::Broker;
use crate::util::now_ms;

/// Runs both sweeps until `stop`.
pub async fn run(broker: Arc<Broker>, stop: broadcast::Receiver<()>) {
    let stop_groups = stop.resubscribe();
    tokio::join!(
        producer_expiry_loop(broker.clone(), stop),
        unloaded_group_expiry_loop(broker, stop_groups),
    );
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

/// Expires the offsets of groups without a task (their tasks do it themselves).
async fn unloaded_group_expiry_loop(broker: Arc<Broker>, mut stop: broadcast::Receiver<()>) {
    let interval = broker
        .config
        .group
        .offsets_retention_check_interval_ms
        .max(1) as u64;
    let mut tick = ticker(interval);
    loop {
        tokio::select! {
            _ = stop.recv() => return,
            _ = tick.tick() => {}
        }
        broker.groups.expire_unloaded().await;
    }
}
