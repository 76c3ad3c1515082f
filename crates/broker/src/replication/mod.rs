//! Partition replication, Kafka's ISR design (CLUSTER-NOTES §1):
//!
//! - [`state`]: what a leader knows of its followers, and the rules for the high
//!   watermark and ISR changes (pure, unit-tested).
//! - [`fetcher`]: followers fetching from leaders with the Fetch API, appending the
//!   leader's bytes, truncating a divergent tail.
//! - [`session`]: the follower's side of its incremental fetch session with each leader
//!   (KIP-227): only partitions whose position changed are sent.
//! - [`client`]: the broker-to-broker Kafka-protocol connection.
//! - [`selector`]: which replica a consumer in a given rack reads from (KIP-392).
//! - [`throttle`]: replication quotas (`*.replication.throttled.rate`), so a
//!   reassignment's catch-up does not starve clients.
//! - [`isr_changes`]: ISR changes sent to the controller (AlterPartition, API 56),
//!   batched per broker, one in flight per partition.
//! - here: the periodic check that drops lagging followers
//!   (`replica.lag.time.max.ms`).
//!
//! The leader side of a follower's fetch is in `handlers::fetch`: it records the
//! follower's position (which may move the high watermark and grow the ISR) and reads
//! up to the log end instead of the high watermark.

pub mod client;
pub mod fetcher;
pub mod inter_broker;
pub mod isr_changes;
pub mod selector;
pub mod session;
pub mod state;
pub mod throttle;

use std::sync::Arc;
use std::time::Duration;

use crate::host::Host;
use crate::partition::Partition;

/// Asks the controller to set `p`'s ISR to `isr` (AlterPartition, KIP-497), in the
/// background, batched with the broker's other changes (see [`isr_changes`]). The
/// partition holds it as pending until the new metadata arrives; a refusal (a stale
/// epoch: the metadata moved on) clears it so the next check may ask again.
pub fn alter_partition(host: &Arc<Host>, p: &Arc<Partition>, isr: Vec<i32>) {
    host.isr_changes.submit(host, p, isr);
}

/// Every half `replica.lag.time.max.ms`, drops from the ISR of each partition this
/// broker leads the followers that have not caught up within that time (Kafka's
/// `isr-expiration` task).
pub fn start_isr_expiration(host: &Arc<Host>) {
    let weak = Arc::downgrade(host);
    let lag = host.cluster.replication.lag_time_max_ms;
    let period = Duration::from_millis(u64::try_from(lag / 2).unwrap_or(1).max(1));
    let mut stop = host.stop_signal();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            let Some(host) = weak.upgrade() else { return };
            for p in host.replicas.all_partitions() {
                if !p.is_leader() {
                    continue;
                }
                if let Some(isr) = p.shrink_isr(lag) {
                    alter_partition(&host, &p, isr);
                }
            }
        }
    });
}

/// Why an append that must reach the ISR (a coordinator's write, a transaction marker)
/// did not.
#[derive(Debug, thiserror::Error)]
pub enum ReplicatedAppendError {
    /// This broker no longer leads the partition under the epoch the writer holds.
    #[error("not the leader of {0} under the expected epoch")]
    NotLeader(String),
    /// The ISR is below `min.insync.replicas`, or shrank under it before the write
    /// reached it.
    #[error("not enough in-sync replicas for {0}")]
    NotEnoughReplicas(String),
    /// The ISR did not have the write in time.
    #[error("the in-sync replicas of {0} did not acknowledge in time")]
    Timeout(String),
    #[error(transparent)]
    Log(#[from] gregor_storage::LogError),
}

/// Appends a batch the broker wrote itself as leader under `leader_epoch` and waits
/// until it is durable by the topic's flush policy and in every ISR member (the high
/// watermark passed it): acks=all, as Kafka's coordinators write. A leadership change
/// fails it (the writer's view is stale); so does an ISR under `min.insync.replicas`.
pub async fn append_replicated(
    p: &Partition,
    bytes: &[u8],
    v: &gregor_protocol::batch::ValidatedBatch,
    leader_epoch: i32,
    timeout: Duration,
) -> Result<gregor_storage::AppendInfo, ReplicatedAppendError> {
    let name = || format!("{}-{}", p.topic, p.index);
    if !p.is_leader() || p.leader_epoch() != leader_epoch {
        return Err(ReplicatedAppendError::NotLeader(name()));
    }
    let min = p.settings().min_insync_replicas;
    if p.assignment().isr.len() < min {
        return Err(ReplicatedAppendError::NotEnoughReplicas(name()));
    }
    let (info, flush_due) = p.append(bytes, v, None)?;
    if flush_due {
        p.ensure_flushed(info.last_offset + 1).await?;
    }
    let upto = info.last_offset + 1;
    let mut hw = p.watch_high_watermark();
    let reached = tokio::time::timeout(
        timeout,
        hw.wait_for(|s| s.high_watermark >= upto || !s.leader || s.leader_epoch != leader_epoch),
    )
    .await;
    match reached {
        Ok(Ok(s)) if s.high_watermark >= upto && s.leader && s.leader_epoch == leader_epoch => {
            if p.assignment().isr.len() < min {
                return Err(ReplicatedAppendError::NotEnoughReplicas(name()));
            }
            Ok(info)
        }
        Ok(_) => Err(ReplicatedAppendError::NotLeader(name())),
        Err(_) => Err(ReplicatedAppendError::Timeout(name())),
    }
}
