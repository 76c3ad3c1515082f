//! Leader elections on request (ElectLeaders, KIP-460) and the controller's periodic
//! preferred-leader balancing (`auto.leader.rebalance.enable`).
//!
//! - **Preferred:** the first replica of the assignment takes over, if it is live
//!   (registered, unfenced, not shutting down) and in the ISR. Leaders drift away from it
//!   when brokers restart; this moves them back, so leadership stays spread.
//! - **Unclean:** only for a partition with no live leader: a live ISR member if there is
//!   one, otherwise any live replica, which becomes the whole ISR. It may lose records
//!   acknowledged by the ISR that died; the operator asked for availability. With ELRs
//!   (KIP-966) an unfenced ELR member of a partition with an empty ISR comes before any
//!   other replica: it is a clean election.

use uuid::Uuid;

use crate::image::{MetadataImage, PartitionImage};
use crate::records::MetadataRecord;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ElectionType {
    Preferred,
    Unclean,
}

impl ElectionType {
    /// ElectLeaders' `election_type` (0 preferred, 1 unclean).
    pub fn from_code(code: i8) -> Option<Self> {
        match code {
            0 => Some(Self::Preferred),
            1 => Some(Self::Unclean),
            _ => None,
        }
    }
}

/// What an election would do to one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElectionOutcome {
    /// This broker becomes the leader.
    Elect(i32),
    /// Unclean: this live replica outside the ISR becomes leader and the whole ISR.
    ElectUnclean(i32),
    /// The partition already has the leader this election would give it.
    NotNeeded,
    /// Preferred: the first replica is not live or not in the ISR.
    PreferredNotAvailable,
    /// Unclean: no live replica at all.
    EligibleNotAvailable,
    UnknownPartition,
}

fn live(image: &MetadataImage, id: i32) -> bool {
    image
        .brokers
        .get(&id)
        .is_some_and(|b| !b.fenced && !b.in_controlled_shutdown)
}

/// The outcome of an election of `kind` on partition `p`.
pub fn outcome(image: &MetadataImage, p: &PartitionImage, kind: ElectionType) -> ElectionOutcome {
    match kind {
        ElectionType::Preferred => match p.replicas.first() {
            None => ElectionOutcome::PreferredNotAvailable,
            Some(&preferred) if p.leader == preferred => ElectionOutcome::NotNeeded,
            Some(&preferred) if live(image, preferred) && p.isr.contains(&preferred) => {
                ElectionOutcome::Elect(preferred)
            }
            Some(_) => ElectionOutcome::PreferredNotAvailable,
        },
        ElectionType::Unclean => {
            if p.leader >= 0 && live(image, p.leader) {
                ElectionOutcome::NotNeeded
            } else if let Some(&r) = p.isr.iter().find(|&&r| live(image, r)) {
                ElectionOutcome::Elect(r)
            } else if let Some(&r) = p.elr.iter().find(|&&r| p.isr.is_empty() && live(image, r)) {
                // KIP-966: an ELR member loses nothing; it becomes the ISR
                // (`crate::elr::complete`).
                ElectionOutcome::Elect(r)
            } else if let Some(&r) = p.replicas.iter().find(|&&r| live(image, r)) {
                ElectionOutcome::ElectUnclean(r)
            } else {
                ElectionOutcome::EligibleNotAvailable
            }
        }
    }
}

/// The outcome for `(topic id, partition)`, or UnknownPartition.
pub fn outcome_of(
    image: &MetadataImage,
    topic_id: Uuid,
    partition: i32,
    kind: ElectionType,
) -> ElectionOutcome {
    image
        .topic_names
        .get(&topic_id)
        .and_then(|name| image.topics.get(name))
        .and_then(|t| t.partitions.get(&partition))
        .map_or(ElectionOutcome::UnknownPartition, |p| {
            outcome(image, p, kind)
        })
}

/// The records of an election of `kind` on each of `partitions` that has one to make.
pub fn election_records(
    image: &MetadataImage,
    kind: ElectionType,
    partitions: &[(Uuid, i32)],
) -> Vec<MetadataRecord> {
    partitions
        .iter()
        .filter_map(
            |&(topic_id, partition)| match outcome_of(image, topic_id, partition, kind) {
                ElectionOutcome::Elect(leader) => Some(MetadataRecord::PartitionChangeRecord {
                    topic_id,
                    partition,
                    leader: Some(leader),
                    isr: None,
                    replicas: None,
                    adding_replicas: None,
                    removing_replicas: None,
                    eligible_leader_replicas: None,
                    last_known_elr: None,
                }),
                ElectionOutcome::ElectUnclean(leader) => {
                    Some(MetadataRecord::PartitionChangeRecord {
                        topic_id,
                        partition,
                        leader: Some(leader),
                        isr: Some(vec![leader]),
                        replicas: None,
                        adding_replicas: None,
                        removing_replicas: None,
                        eligible_leader_replicas: None,
                        last_known_elr: None,
                    })
                }
                _ => None,
            },
        )
        .collect()
}

/// Every partition of every topic.
pub fn all_partitions(image: &MetadataImage) -> Vec<(Uuid, i32)> {
    image
        .topics
        .values()
        .flat_map(|t| t.partitions.keys().map(move |&p| (t.id, p)))
        .collect()
}

/// Partitions to give back to their preferred leader: those of every broker whose share
/// of preferred partitions led by someone else exceeds `max_imbalance_percent`
/// (`leader.imbalance.per.broker.percentage`), and whose preferred leader can take over.
pub fn imbalanced(image: &MetadataImage, max_imbalance_percent: u32) -> Vec<(Uuid, i32)> {
    let mut by_broker: std::collections::BTreeMap<i32, (u64, Vec<(Uuid, i32)>)> =
        std::collections::BTreeMap::new();
    for t in image.topics.values() {
        for (&index, p) in &t.partitions {
            let Some(&preferred) = p.replicas.first() else {
                continue;
            };
            let entry = by_broker.entry(preferred).or_default();
            entry.0 += 1;
            if p.leader != preferred {
                entry.1.push((t.id, index));
            }
        }
    }
    let mut out = Vec::new();
    for (total, moved) in by_broker.into_values() {
        if moved.len() as u64 * 100 > total * u64::from(max_imbalance_percent) {
            out.extend(moved.into_iter().filter(|&(id, p)| {
                matches!(
                    outcome_of(image, id, p, ElectionType::Preferred),
                    ElectionOutcome::Elect(_)
                )
            }));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::image::{BrokerImage, TopicImage};

    fn image(partitions: &[(Vec<i32>, Vec<i32>, i32)], fenced: &[i32]) -> (MetadataImage, Uuid) {
        let mut img = MetadataImage::default();
        for id in 1..=3 {
            img.brokers.insert(
                id,
                BrokerImage {
                    id,
                    incarnation_id: Uuid::nil(),
                    epoch: 1,
                    endpoints: Vec::new(),
                    rack: None,
                    fenced: fenced.contains(&id),
                    in_controlled_shutdown: false,
                    offline_partitions: Default::default(),
                },
            );
        }
        let id = Uuid::from_u128(7);
        let mut t = TopicImage {
            name: "t".into(),
            id,
            partitions: Default::default(),
            configs: Default::default(),
        };
        for (i, (replicas, isr, leader)) in partitions.iter().enumerate() {
            t.partitions.insert(
                i as i32,
                PartitionImage {
                    replicas: replicas.clone(),
                    isr: isr.clone(),
                    leader: *leader,
                    leader_epoch: 0,
                    partition_epoch: 0,
                    adding_replicas: Vec::new(),
                    removing_replicas: Vec::new(),
                    elr: Vec::new(),
                    last_known_elr: Vec::new(),
                },
            );
        }
        img.topic_names.insert(id, "t".into());
        img.topics.insert("t".into(), t);
        (img, id)
    }

    #[test]
    fn preferred_election_needs_the_first_replica_live_and_in_sync() {
        let (img, id) = image(
            &[
                (vec![1, 2, 3], vec![1, 2, 3], 2),
                (vec![1, 2, 3], vec![2, 3], 2),
                (vec![2, 1, 3], vec![1, 2, 3], 2),
                (vec![3, 1, 2], vec![1, 2, 3], 1),
            ],
            &[3],
        );
        let kind = ElectionType::Preferred;
        assert_eq!(outcome_of(&img, id, 0, kind), ElectionOutcome::Elect(1));
        assert_eq!(
            outcome_of(&img, id, 1, kind),
            ElectionOutcome::PreferredNotAvailable,
            "not in the ISR"
        );
        assert_eq!(outcome_of(&img, id, 2, kind), ElectionOutcome::NotNeeded);
        assert_eq!(
            outcome_of(&img, id, 3, kind),
            ElectionOutcome::PreferredNotAvailable,
            "fenced"
        );
        assert_eq!(
            outcome_of(&img, id, 9, kind),
            ElectionOutcome::UnknownPartition
        );
        let records = election_records(&img, kind, &[(id, 0), (id, 1), (id, 2), (id, 3)]);
        assert_eq!(records.len(), 1);
    }

    #[test]
    fn unclean_election_only_without_a_live_leader_and_prefers_the_isr() {
        let (img, id) = image(
            &[
                (vec![1, 2, 3], vec![1], 1),
                (vec![1, 2, 3], vec![3], -1),
                (vec![3, 2], vec![3], 3),
                (vec![3], vec![3], -1),
                (vec![1, 3], vec![3, 1], -1),
            ],
            &[3],
        );
        let kind = ElectionType::Unclean;
        assert_eq!(outcome_of(&img, id, 0, kind), ElectionOutcome::NotNeeded);
        assert_eq!(
            outcome_of(&img, id, 1, kind),
            ElectionOutcome::ElectUnclean(1)
        );
        assert_eq!(
            outcome_of(&img, id, 2, kind),
            ElectionOutcome::ElectUnclean(2),
            "its leader is fenced"
        );
        assert_eq!(
            outcome_of(&img, id, 3, kind),
            ElectionOutcome::EligibleNotAvailable
        );
        assert_eq!(outcome_of(&img, id, 4, kind), ElectionOutcome::Elect(1));
        let records = election_records(&img, kind, &[(id, 1)]);
        assert!(matches!(
            &records[..],
            [MetadataRecord::PartitionChangeRecord { leader: Some(1), isr: Some(isr), .. }] if isr == &vec![1]
        ));
    }

    #[test]
    fn balancing_moves_leaders_of_brokers_over_the_threshold_only() {
        // Broker 1 prefers 4 partitions and leads 2 of them (50% off); broker 2 prefers
        // 10 and leads 9 (10% off, not over a 10% threshold).
        let mut parts = Vec::new();
        for i in 0..4 {
            parts.push((vec![1, 2, 3], vec![1, 2, 3], if i < 2 { 1 } else { 2 }));
        }
        for i in 0..10 {
            parts.push((vec![2, 1, 3], vec![1, 2, 3], if i < 9 { 2 } else { 1 }));
        }
        let (img, id) = image(&parts, &[]);
        assert_eq!(imbalanced(&img, 10), vec![(id, 2), (id, 3)]);
        assert_eq!(imbalanced(&img, 50), Vec::new());
    }
}
