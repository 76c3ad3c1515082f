//! Replica reassignment (KIP-455): moving a partition to a new set of replicas without
//! a moment offline.
//!
//! A reassignment to `target` from `original` replicas is kept in the partition itself:
//! `replicas` becomes target followed by the replicas to drop, `adding_replicas` the
//! targets not yet replicas, `removing_replicas` the originals not in the target. The
//! new replicas fetch from the leader like any follower and join the ISR when caught up
//! (AlterPartition). Once every target replica is in the ISR, the reassignment completes
//! in the same metadata commit: replicas = target, ISR = ISR ∩ target, and leadership
//! moves to the first live in-sync target replica if the leader is being dropped. A
//! cancel goes back to `original` the same way. Nothing here waits: each step is a pure
//! decision against an image.

use uuid::Uuid;

use crate::controller::ControllerError;
use crate::image::{MetadataImage, PartitionImage};
use crate::records::MetadataRecord;

/// One partition's requested change: a new replica list, or `None` to cancel.
pub type Reassignment = (Uuid, i32, Option<Vec<i32>>);

fn partition(
    image: &MetadataImage,
    topic_id: Uuid,
    index: i32,
) -> Result<&PartitionImage, ControllerError> {
    image
        .topic_by_id(&topic_id)
        .and_then(|t| t.partitions.get(&index))
        .ok_or(ControllerError::UnknownTopic)
}

/// Why a reassignment of this partition to `target` (or its cancel) is refused, if it
/// is. `allow_rf_change` false (AlterPartitionReassignments v1, KIP-860) refuses a
/// target whose size differs from the partition's replication factor.
pub fn check(
    image: &MetadataImage,
    topic_id: Uuid,
    index: i32,
    target: Option<&[i32]>,
    allow_rf_change: bool,
) -> Result<(), ControllerError> {
    let p = partition(image, topic_id, index)?;
    let Some(target) = target else {
        if !p.is_reassigning() {
            return Err(ControllerError::NoReassignmentInProgress);
        }
        return Ok(());
    };
    if target.is_empty() {
        return Err(ControllerError::InvalidReplicaAssignment(
            "The manual partition assignment includes an empty replica list.".into(),
        ));
    }
    let mut seen = target.to_vec();
    seen.sort_unstable();
    seen.dedup();
    if seen.len() != target.len() {
        return Err(ControllerError::InvalidReplicaAssignment(format!(
            "The manual partition assignment includes a duplicate replica: {target:?}"
        )));
    }
    if let Some(b) = target.iter().find(|b| !image.brokers.contains_key(b)) {
        return Err(ControllerError::InvalidReplicaAssignment(format!(
            "The manual partition assignment includes broker {b}, but no such broker is registered."
        )));
    }
    let original = p.original_replicas();
    if !allow_rf_change && target.len() != original.len() {
        return Err(ControllerError::InvalidReplicationFactor(format!(
            "The replication factor is changed from {} to {} but allowReplicationFactorChange is false",
            original.len(),
            target.len()
        )));
    }
    Ok(())
}

/// The records of one partition's reassignment (or cancel), `check`ed first; an
/// unchanged partition yields none.
pub fn records(
    image: &MetadataImage,
    (topic_id, index, target): &Reassignment,
    allow_rf_change: bool,
) -> Result<Vec<MetadataRecord>, ControllerError> {
    check(image, *topic_id, *index, target.as_deref(), allow_rf_change)?;
    let p = partition(image, *topic_id, *index)?;
    let original = p.original_replicas();
    let target = target.clone().unwrap_or_else(|| original.clone());
    let adding: Vec<i32> = target
        .iter()
        .copied()
        .filter(|r| !original.contains(r))
        .collect();
    let removing: Vec<i32> = original
        .iter()
        .copied()
        .filter(|r| !target.contains(r))
        .collect();
    let replicas: Vec<i32> = target.iter().chain(&removing).copied().collect();
    // Replicas no longer in the set (a previous reassignment's additions that this one
    // drops, or the additions a cancel undoes) leave the ISR at once.
    let mut isr: Vec<i32> = p
        .isr
        .iter()
        .copied()
        .filter(|r| replicas.contains(r))
        .collect();
    if isr.is_empty() {
        return Err(ControllerError::InvalidReplicaAssignment(format!(
            "Partition {index} would be left with no in-sync replica"
        )));
    }
    isr.sort_unstable();
    let mut next = p.clone();
    next.replicas = replicas;
    next.isr = isr;
    next.adding_replicas = adding;
    next.removing_replicas = removing;
    let next = maybe_complete(image, next);
    Ok(change(*topic_id, *index, p, &next).into_iter().collect())
}

/// `p` with its reassignment completed if every target replica is in its ISR (replicas
/// = target, ISR ∩ target, a dropped leader replaced by the first live in-sync target);
/// `p` unchanged otherwise.
pub fn maybe_complete(image: &MetadataImage, mut p: PartitionImage) -> PartitionImage {
    if !p.is_reassigning() {
        return p;
    }
    let target = p.target_replicas();
    if !target.iter().all(|r| p.isr.contains(r)) {
        return p;
    }
    p.isr.retain(|r| target.contains(r));
    if !target.contains(&p.leader) {
        let live = |r: &i32| {
            image
                .brokers
                .get(r)
                .is_some_and(|b| !b.fenced && !b.in_controlled_shutdown)
        };
        p.leader = target
            .iter()
            .copied()
            .find(|r| p.isr.contains(r) && live(r))
            .unwrap_or(-1);
    }
    p.replicas = target;
    p.adding_replicas.clear();
    p.removing_replicas.clear();
    p
}

/// The PartitionChangeRecord that takes `from` to `to`, if they differ.
pub fn change(
    topic_id: Uuid,
    partition: i32,
    from: &PartitionImage,
    to: &PartitionImage,
) -> Option<MetadataRecord> {
    let differs = |a: &Vec<i32>, b: &Vec<i32>| (a != b).then(|| b.clone());
    let record = MetadataRecord::PartitionChangeRecord {
        topic_id,
        partition,
        leader: (from.leader != to.leader).then_some(to.leader),
        isr: differs(&from.isr, &to.isr),
        replicas: differs(&from.replicas, &to.replicas),
        adding_replicas: differs(&from.adding_replicas, &to.adding_replicas),
        removing_replicas: differs(&from.removing_replicas, &to.removing_replicas),
        eligible_leader_replicas: differs(&from.elr, &to.elr),
        last_known_elr: differs(&from.last_known_elr, &to.last_known_elr),
    };
    match &record {
        MetadataRecord::PartitionChangeRecord {
            leader: None,
            isr: None,
            replicas: None,
            adding_replicas: None,
            removing_replicas: None,
            eligible_leader_replicas: None,
            last_known_elr: None,
            ..
        } => None,
        _ => Some(record),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::active::image_with_brokers;
    use crate::controller::{create_topic, NewTopic};

    fn cluster(brokers: &[i32], rf: i16) -> (MetadataImage, Uuid) {
        let mut image = image_with_brokers(brokers);
        let t = NewTopic {
            assignments: Vec::new(),
            name: "t".into(),
            num_partitions: 1,
            replication_factor: rf,
            configs: Default::default(),
        };
        let recs = create_topic(&image, &t, &brokers[..rf as usize]).unwrap();
        image.apply_entry(image.offset + 1, &recs);
        let id = image.topic("t").unwrap().id;
        (image, id)
    }

    fn apply(image: &mut MetadataImage, recs: Vec<MetadataRecord>) {
        image.apply_entry(image.offset + 1, &recs);
    }

    fn p0(image: &MetadataImage) -> PartitionImage {
        image.topic("t").unwrap().partitions[&0].clone()
    }

    /// What AlterPartition does when the leader reports new in-sync replicas.
    fn isr_grows(image: &mut MetadataImage, id: Uuid, isr: Vec<i32>) {
        let from = p0(image);
        let mut to = from.clone();
        to.isr = isr;
        let to = maybe_complete(image, to);
        let rec = change(id, 0, &from, &to).into_iter().collect();
        apply(image, rec);
    }

    #[test]
    fn a_move_adds_targets_then_completes_when_they_are_in_sync() {
        let (mut image, id) = cluster(&[1, 2, 3, 4, 5], 3);
        assert_eq!(p0(&image).replicas, vec![1, 2, 3]);
        let recs = records(&image, &(id, 0, Some(vec![4, 5, 3])), true).unwrap();
        apply(&mut image, recs);
        let p = p0(&image);
        assert_eq!(p.replicas, vec![4, 5, 3, 1, 2]);
        assert_eq!(p.adding_replicas, vec![4, 5]);
        assert_eq!(p.removing_replicas, vec![1, 2]);
        assert_eq!(
            p.leader, 1,
            "the leader stays until the targets are in sync"
        );
        // 4 catches up: not yet complete.
        isr_grows(&mut image, id, vec![1, 2, 3, 4]);
        assert!(p0(&image).is_reassigning());
        // 5 too: complete, leadership moves to the first target.
        let epoch = p0(&image).leader_epoch;
        isr_grows(&mut image, id, vec![1, 2, 3, 4, 5]);
        let p = p0(&image);
        assert!(!p.is_reassigning());
        assert_eq!(p.replicas, vec![4, 5, 3]);
        assert_eq!(p.isr, vec![3, 4, 5]);
        assert_eq!(p.leader, 4);
        assert_eq!(p.leader_epoch, epoch + 1);
    }

    #[test]
    fn a_cancel_goes_back_to_the_original_replicas() {
        let (mut image, id) = cluster(&[1, 2, 3, 4], 2);
        let recs = records(&image, &(id, 0, Some(vec![3, 4])), true).unwrap();
        apply(&mut image, recs);
        isr_grows(&mut image, id, vec![1, 2, 3]);
        let recs = records(&image, &(id, 0, None), true).unwrap();
        apply(&mut image, recs);
        let p = p0(&image);
        assert_eq!(p.replicas, vec![1, 2]);
        assert_eq!(p.isr, vec![1, 2]);
        assert_eq!(p.leader, 1);
        assert!(!p.is_reassigning());
        assert_eq!(
            check(&image, id, 0, None, true),
            Err(ControllerError::NoReassignmentInProgress)
        );
    }

    #[test]
    fn shrinking_to_in_sync_replicas_completes_at_once() {
        let (mut image, id) = cluster(&[1, 2, 3], 3);
        let recs = records(&image, &(id, 0, Some(vec![2, 3])), true).unwrap();
        apply(&mut image, recs);
        let p = p0(&image);
        assert!(!p.is_reassigning());
        assert_eq!((p.replicas, p.isr, p.leader), (vec![2, 3], vec![2, 3], 2));
    }

    #[test]
    fn bad_targets_are_refused() {
        let (image, id) = cluster(&[1, 2, 3], 2);
        let bad = |t: &[i32], allow: bool| check(&image, id, 0, Some(t), allow).unwrap_err();
        assert!(matches!(
            bad(&[], true),
            ControllerError::InvalidReplicaAssignment(_)
        ));
        assert!(matches!(
            bad(&[1, 1], true),
            ControllerError::InvalidReplicaAssignment(_)
        ));
        assert!(matches!(
            bad(&[1, 9], true),
            ControllerError::InvalidReplicaAssignment(_)
        ));
        assert!(matches!(
            bad(&[1, 2, 3], false),
            ControllerError::InvalidReplicationFactor(_)
        ));
        assert!(check(&image, id, 0, Some(&[1, 2, 3]), true).is_ok());
        assert_eq!(
            check(&image, Uuid::nil(), 0, Some(&[1]), true),
            Err(ControllerError::UnknownTopic)
        );
    }

    #[test]
    fn a_new_reassignment_replaces_an_ongoing_one() {
        let (mut image, id) = cluster(&[1, 2, 3, 4], 1);
        let recs = records(&image, &(id, 0, Some(vec![2])), true).unwrap();
        apply(&mut image, recs);
        assert_eq!(p0(&image).replicas, vec![2, 1]);
        let recs = records(&image, &(id, 0, Some(vec![3])), true).unwrap();
        apply(&mut image, recs);
        let p = p0(&image);
        assert_eq!(p.replicas, vec![3, 1]);
        assert_eq!(p.adding_replicas, vec![3]);
        assert_eq!(p.removing_replicas, vec![1]);
    }
}
