//! Partition replication, Kafka's ISR design (CLUSTER-NOTES §1):
//!
//! - [`state`]: what a leader knows of its followers, and the rules for the high
//!   watermark and ISR changes (pure, unit-tested).
//! - [`fetcher`]: followers fetching from leaders with the Fetch API, appending the
//!   leader's bytes, truncating a divergent tail.
//! - [`client`]: the broker-to-broker Kafka-protocol connection.
//! - here: ISR changes sent to the controller (AlterPartition, one in flight per
//!   partition) and the periodic check that drops lagging followers
//!   (`replica.lag.time.max.ms`).
//!
//! The leader side of a follower's fetch is in `handlers::fetch`: it records the
//! follower's position (which may move the high watermark and grow the ISR) and reads
//! up to the log end instead of the high watermark.

pub mod client;
pub mod fetcher;
pub mod state;

use std::sync::Arc;
use std::time::Duration;

use gregor_metadata::ControllerRequest;

use crate::broker::Broker;
use crate::partition::Partition;

/// Asks the controller to set `p`'s ISR to `isr` (AlterPartition, KIP-497), in the
/// background. The partition holds it as pending until the new metadata arrives; a
/// refusal (a stale epoch: the metadata moved on) clears it so the next check may ask
/// again.
pub fn alter_partition(broker: &Arc<Broker>, p: &Arc<Partition>, isr: Vec<i32>) {
    let a = p.assignment();
    let req = ControllerRequest::AlterPartition {
        broker_id: broker.config.node_id,
        broker_epoch: broker.metadata.broker_epoch(),
        topic_id: p.topic_id,
        partition: p.index,
        leader_epoch: a.leader_epoch,
        partition_epoch: a.partition_epoch,
        new_isr: isr.clone(),
    };
    let broker = broker.clone();
    let p = p.clone();
    tokio::spawn(async move {
        tracing::info!(topic = %p.topic, partition = p.index, from = ?a.isr, to = ?isr, "asking the controller to change the ISR");
        if let Err(e) = broker.commit_metadata(req).await {
            tracing::info!(topic = %p.topic, partition = p.index, error = %e, "ISR change refused");
            p.alter_partition_failed();
        }
    });
}

/// Every half `replica.lag.time.max.ms`, drops from the ISR of each partition this
/// broker leads the followers that have not caught up within that time (Kafka's
/// `isr-expiration` task).
pub fn start_isr_expiration(broker: &Arc<Broker>) {
    let weak = Arc::downgrade(broker);
    let lag = broker.config.cluster.replication.lag_time_max_ms;
    let period = Duration::from_millis(u64::try_from(lag / 2).unwrap_or(1).max(1));
    let mut stop = broker.stop_signal();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            let Some(broker) = weak.upgrade() else { return };
            for p in broker.replicas.all_partitions() {
                if !p.is_leader() {
                    continue;
                }
                if let Some(isr) = p.shrink_isr(lag) {
                    alter_partition(&broker, &p, isr);
                }
            }
        }
    });
}
