//! AlterPartition (API 56, KIP-497; v3 carries each ISR member's broker epoch, KIP-903):
//! partition leaders ask the active controller to change their ISR. One request carries
//! every pending change of one broker, and the accepted ones are committed together as
//! one metadata entry.
//!
//! [`decide`] is pure: it checks every partition against one image, in Apache Kafka's
//! order, and returns the records of the accepted changes plus the response, with a
//! per-partition error code for the refused ones:
//! - the request's broker epoch is not the broker's current registration: top-level
//!   STALE_BROKER_EPOCH, nothing changes;
//! - an unknown topic id: UNKNOWN_TOPIC_ID; an unknown partition:
//!   UNKNOWN_TOPIC_OR_PARTITION;
//! - a leader or partition epoch newer than the controller's: NOT_CONTROLLER (this
//!   controller is behind; the leader asks again);
//! - an older leader epoch: FENCED_LEADER_EPOCH; a sender that is not the leader:
//!   INVALID_REQUEST; an older partition epoch: INVALID_UPDATE_VERSION;
//! - an ISR with members outside the replicas, duplicates, or without its leader:
//!   INVALID_REQUEST;
//! - a member that is not registered, is fenced, is shutting down, or whose broker epoch
//!   (when given, not -1) is not its current registration: INELIGIBLE_REPLICA. The last
//!   rule is KIP-903's: a follower that restarted (and may have lost unflushed data)
//!   cannot re-enter the ISR on a fetch its previous incarnation made.
//!
//! An accepted partition's response entry is its state once the change is applied (an
//! unchanged ISR commits nothing and answers the current state). The same partition
//! twice in one request is INVALID_REQUEST for the second.

use std::collections::BTreeSet;

use gregor_protocol::kp::messages::alter_partition_request::{self as req, BrokerState};
use gregor_protocol::kp::messages::alter_partition_response as resp;
use gregor_protocol::kp::messages::{AlterPartitionRequest, AlterPartitionResponse, BrokerId};
use gregor_protocol::kp::ResponseError;

use crate::image::{MetadataImage, PartitionImage};
use crate::reassignment;
use crate::records::MetadataRecord;

/// The highest version served (and sent by brokers).
pub const VERSION: i16 = 3;

/// The records of the accepted changes and the response (see the module docs).
pub fn decide(
    image: &MetadataImage,
    request: &AlterPartitionRequest,
) -> (Vec<MetadataRecord>, AlterPartitionResponse) {
    let broker_id = request.broker_id.0;
    if image
        .brokers
        .get(&broker_id)
        .is_none_or(|b| b.epoch != request.broker_epoch)
    {
        let response = AlterPartitionResponse::default()
            .with_error_code(ResponseError::StaleBrokerEpoch.code());
        return (Vec::new(), response);
    }
    let mut records = Vec::new();
    let mut seen = BTreeSet::new();
    let mut topics = Vec::with_capacity(request.topics.len());
    for t in &request.topics {
        let topic = image
            .topic_names
            .get(&t.topic_id)
            .and_then(|n| image.topics.get(n));
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for pd in &t.partitions {
            let refused = |code: ResponseError| {
                resp::PartitionData::default()
                    .with_partition_index(pd.partition_index)
                    .with_error_code(code.code())
            };
            let Some(topic) = topic else {
                partitions.push(refused(ResponseError::UnknownTopicId));
                continue;
            };
            if !seen.insert((t.topic_id, pd.partition_index)) {
                partitions.push(refused(ResponseError::InvalidRequest));
                continue;
            }
            let Some(current) = topic.partitions.get(&pd.partition_index) else {
                partitions.push(refused(ResponseError::UnknownTopicOrPartition));
                continue;
            };
            let new_isr = requested_isr(pd);
            if let Err(code) = validate(image, broker_id, current, pd, &new_isr) {
                partitions.push(refused(code));
                continue;
            }
            let mut isr: Vec<i32> = new_isr.iter().map(|s| s.broker_id.0).collect();
            isr.sort_unstable();
            let mut next = current.clone();
            if isr != current.isr {
                next.isr = isr;
                // An ISR that now holds every target of an ongoing reassignment completes
                // it in the same change (KIP-455).
                next = reassignment::maybe_complete(image, next);
                if let Some(r) =
                    reassignment::change(t.topic_id, pd.partition_index, current, &next)
                {
                    next.partition_epoch += 1;
                    if next.leader != current.leader {
                        next.leader_epoch += 1;
                    }
                    records.push(r);
                }
            }
            partitions.push(state(pd.partition_index, &next));
        }
        topics.push(
            resp::TopicData::default()
                .with_topic_id(t.topic_id)
                .with_partitions(partitions),
        );
    }
    (
        records,
        AlterPartitionResponse::default().with_topics(topics),
    )
}

/// The new ISR with its members' broker epochs (v2 has no epochs: -1, unchecked).
fn requested_isr(pd: &req::PartitionData) -> Vec<BrokerState> {
    if !pd.new_isr_with_epochs.is_empty() || pd.new_isr.is_empty() {
        return pd.new_isr_with_epochs.clone();
    }
    pd.new_isr
        .iter()
        .map(|&id| {
            BrokerState::default()
                .with_broker_id(id)
                .with_broker_epoch(-1)
        })
        .collect()
}

fn validate(
    image: &MetadataImage,
    broker_id: i32,
    p: &PartitionImage,
    pd: &req::PartitionData,
    new_isr: &[BrokerState],
) -> Result<(), ResponseError> {
    if pd.leader_epoch > p.leader_epoch || pd.partition_epoch > p.partition_epoch {
        return Err(ResponseError::NotController);
    }
    if pd.leader_epoch < p.leader_epoch {
        return Err(ResponseError::FencedLeaderEpoch);
    }
    if broker_id != p.leader {
        return Err(ResponseError::InvalidRequest);
    }
    if pd.partition_epoch < p.partition_epoch {
        return Err(ResponseError::InvalidUpdateVersion);
    }
    let mut ids = BTreeSet::new();
    for s in new_isr {
        if !p.replicas.contains(&s.broker_id.0) || !ids.insert(s.broker_id.0) {
            return Err(ResponseError::InvalidRequest);
        }
    }
    if !ids.contains(&p.leader) {
        return Err(ResponseError::InvalidRequest);
    }
    let eligible = |s: &BrokerState| {
        image.brokers.get(&s.broker_id.0).is_some_and(|b| {
            !b.in_controlled_shutdown
                && !b.fenced
                && (s.broker_epoch == -1 || s.broker_epoch == b.epoch)
        })
    };
    if !new_isr.iter().all(eligible) {
        return Err(ResponseError::IneligibleReplica);
    }
    Ok(())
}

/// A partition's entry for its state `p`.
fn state(partition: i32, p: &PartitionImage) -> resp::PartitionData {
    resp::PartitionData::default()
        .with_partition_index(partition)
        .with_leader_id(BrokerId(p.leader))
        .with_leader_epoch(p.leader_epoch)
        .with_isr(p.isr.iter().map(|&r| BrokerId(r)).collect())
        .with_partition_epoch(p.partition_epoch)
}

#[cfg(test)]
#[path = "alter_partition_tests.rs"]
mod tests;
