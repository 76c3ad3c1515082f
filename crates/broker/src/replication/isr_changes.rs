//! ISR changes sent to the controller as AlterPartition (API 56, v3; Kafka's
//! `AlterPartitionManager`).
//!
//! A partition leader submits a change (at most one in flight per partition, see
//! `ReplicaSet::pending_isr`); one sender task per broker sends everything submitted
//! since its last request in one AlterPartition, one request in flight at a time. So a
//! broker failure that shrinks the ISR of a thousand partitions costs one request and
//! one metadata commit, not a thousand. Each ISR member is named with its broker epoch
//! as its fetches carried it (KIP-903).
//!
//! An accepted change is over once the metadata carries it (the partition clears its
//! pending change when the new partition epoch arrives, or at once if the answer says
//! nothing changed). A refused one, or a request that failed as a whole, is cleared so
//! that the next fetch or lag check may ask again.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use gregor_metadata::alter_partition::VERSION;
use gregor_protocol::kp::messages::alter_partition_request::{
    BrokerState, PartitionData, TopicData,
};
use gregor_protocol::kp::messages::{AlterPartitionRequest, AlterPartitionResponse, BrokerId};
use gregor_protocol::kp::ResponseError;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::host::Host;
use crate::partition::Partition;

/// How long one AlterPartition may take, retries on NOT_CONTROLLER included.
const TIMEOUT: Duration = Duration::from_secs(30);

/// One submitted change.
struct Change {
    partition: Arc<Partition>,
    from: Vec<i32>,
    isr: Vec<(i32, i64)>,
    leader_epoch: i32,
    partition_epoch: i32,
}

/// The changes waiting for the next request.
#[derive(Default)]
pub struct IsrChanges {
    queued: Mutex<BTreeMap<(Uuid, i32), Change>>,
    wake: Notify,
}

impl IsrChanges {
    /// Queues `p`'s change to `isr` for the next request.
    pub fn submit(&self, host: &Host, p: &Arc<Partition>, isr: Vec<i32>) {
        let a = p.assignment();
        tracing::info!(topic = %p.topic, partition = p.index, from = ?a.isr, to = ?isr, "asking the controller to change the ISR");
        let change = Change {
            partition: p.clone(),
            isr: p.isr_with_epochs(&isr, host.metadata.broker_epoch()),
            from: a.isr,
            leader_epoch: a.leader_epoch,
            partition_epoch: a.partition_epoch,
        };
        if let Ok(mut q) = self.queued.lock() {
            // A later change of the same partition replaces the earlier one.
            q.insert((p.topic_id, p.index), change);
        }
        self.wake.notify_one();
    }

    fn take(&self) -> BTreeMap<(Uuid, i32), Change> {
        self.queued
            .lock()
            .map(|mut q| std::mem::take(&mut *q))
            .unwrap_or_default()
    }
}

/// Starts the sender task; it ends when the broker stops.
pub fn start(host: &Arc<Host>) {
    let weak = Arc::downgrade(host);
    let changes = host.isr_changes.clone();
    let mut stop = host.stop_signal();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = changes.wake.notified() => {}
                _ = stop.changed() => return,
            }
            send(&weak, changes.take()).await;
        }
    });
}

/// Sends one batch and acts on the answer.
async fn send(host: &Weak<Host>, batch: BTreeMap<(Uuid, i32), Change>) {
    let Some(host) = host.upgrade() else { return };
    if batch.is_empty() {
        return;
    }
    let request = build_request(&host, &batch);
    let not_controller =
        |r: &AlterPartitionResponse| r.error_code == ResponseError::NotController.code();
    let answer = host
        .metadata
        .call_kafka(&request, VERSION, not_controller, TIMEOUT)
        .await;
    let response = match answer {
        Ok(r) if r.error_code == 0 => r,
        Ok(r) => {
            tracing::info!(
                error = r.error_code,
                partitions = batch.len(),
                "AlterPartition refused"
            );
            batch
                .values()
                .for_each(|c| c.partition.alter_partition_failed());
            return;
        }
        Err(e) => {
            tracing::info!(error = %e, partitions = batch.len(), "AlterPartition failed");
            batch
                .values()
                .for_each(|c| c.partition.alter_partition_failed());
            return;
        }
    };
    let mut answered = 0usize;
    for t in &response.topics {
        for pd in &t.partitions {
            let Some(c) = batch.get(&(t.topic_id, pd.partition_index)) else {
                continue;
            };
            answered += 1;
            if pd.error_code == 0 {
                host.metrics
                    .operations
                    .isr_changed(c.from.len(), pd.isr.len());
                c.partition.alter_partition_answered(pd.partition_epoch);
            } else {
                tracing::info!(topic = %c.partition.topic, partition = pd.partition_index, error = pd.error_code, "ISR change refused");
                c.partition.alter_partition_failed();
            }
        }
    }
    if answered < batch.len() {
        // A partition the answer left out is not known to be changed: ask again later.
        let listed: std::collections::BTreeSet<(Uuid, i32)> = response
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(move |p| (t.topic_id, p.partition_index))
            })
            .collect();
        batch
            .iter()
            .filter(|(k, _)| !listed.contains(k))
            .for_each(|(_, c)| c.partition.alter_partition_failed());
    }
}

fn build_request(host: &Host, batch: &BTreeMap<(Uuid, i32), Change>) -> AlterPartitionRequest {
    let mut topics: Vec<TopicData> = Vec::new();
    for ((topic_id, index), c) in batch {
        let pd = PartitionData::default()
            .with_partition_index(*index)
            .with_leader_epoch(c.leader_epoch)
            .with_partition_epoch(c.partition_epoch)
            .with_new_isr_with_epochs(
                c.isr
                    .iter()
                    .map(|&(id, epoch)| {
                        BrokerState::default()
                            .with_broker_id(BrokerId(id))
                            .with_broker_epoch(epoch)
                    })
                    .collect(),
            );
        match topics.last_mut() {
            Some(t) if t.topic_id == *topic_id => t.partitions.push(pd),
            _ => topics.push(
                TopicData::default()
                    .with_topic_id(*topic_id)
                    .with_partitions(vec![pd]),
            ),
        }
    }
    AlterPartitionRequest::default()
        .with_broker_id(BrokerId(host.node_id))
        .with_broker_epoch(host.metadata.broker_epoch())
        .with_topics(topics)
}
