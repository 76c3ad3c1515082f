//! A broker's failed log directory (KIP-858): the broker lists, in its heartbeat, the
//! partitions it can no longer host; the controller records them on its registration
//! (`BrokerReplicasOfflineRecord`) and, for each, removes the broker from the ISR
//! (unless it is the last member) and moves leadership to another live ISR member that
//! hosts it, or leaves the partition leaderless: what fencing does, for those partitions
//! only. The set lasts until the broker registers again (a restart, with the dir
//! repaired or not: a still-failed dir is reported again).

use uuid::Uuid;

use crate::image::MetadataImage;
use crate::records::MetadataRecord;

/// Records for `broker` (at `epoch`) reporting `partitions` offline; none when the
/// epoch is stale or every partition is already known offline. Partitions of topics
/// that no longer exist are ignored.
pub fn offline_records(
    image: &MetadataImage,
    broker: i32,
    epoch: i64,
    partitions: &[(Uuid, i32)],
) -> Vec<MetadataRecord> {
    let Some(b) = image.brokers.get(&broker).filter(|b| b.epoch == epoch) else {
        return Vec::new();
    };
    let topics: std::collections::HashMap<Uuid, &crate::image::TopicImage> =
        image.topics.values().map(|t| (t.id, t)).collect();
    let mut fresh: Vec<(Uuid, i32)> = partitions
        .iter()
        .copied()
        .filter(|&(t, i)| b.hosts(t, i))
        .filter(|(t, i)| topics.get(t).is_some_and(|t| t.partitions.contains_key(i)))
        .collect();
    fresh.sort_unstable();
    fresh.dedup();
    if fresh.is_empty() {
        return Vec::new();
    }
    let mut out = vec![MetadataRecord::BrokerReplicasOfflineRecord {
        broker_id: broker,
        broker_epoch: epoch,
        partitions: fresh.clone(),
    }];
    for (topic_id, index) in fresh {
        let Some(p) = topics.get(&topic_id).and_then(|t| t.partitions.get(&index)) else {
            continue;
        };
        out.extend(crate::active::fence_partition(
            image, broker, topic_id, index, p,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::active::unfence_records;

    fn image() -> (MetadataImage, Uuid) {
        let mut image = crate::active::image_with_brokers(&[1, 2, 3]);
        let id = Uuid::new_v4();
        let mut recs = vec![MetadataRecord::TopicRecord {
            name: "t".into(),
            topic_id: id,
        }];
        // p0 led by 1 (ISR 1,2,3); p1 led by 2; p2 only on 1.
        for (i, replicas, leader) in [
            (0, vec![1, 2, 3], 1),
            (1, vec![2, 1, 3], 2),
            (2, vec![1], 1),
        ] {
            recs.push(MetadataRecord::PartitionRecord {
                topic_id: id,
                partition: i,
                isr: replicas.clone(),
                replicas,
                leader,
                leader_epoch: 0,
                partition_epoch: 0,
                adding_replicas: Vec::new(),
                removing_replicas: Vec::new(),
                eligible_leader_replicas: Vec::new(),
                last_known_elr: Vec::new(),
            });
        }
        image.apply_entry(image.offset + 1, &recs);
        (image, id)
    }

    #[test]
    fn offline_partitions_leave_the_isr_and_move_leadership() {
        let (mut image, id) = image();
        let epoch = image.brokers[&1].epoch;
        let recs = offline_records(&image, 1, epoch, &[(id, 0), (id, 1), (id, 2)]);
        image.apply_entry(image.offset + 1, &recs);
        let t = &image.topics["t"];
        assert_eq!(t.partitions[&0].leader, 2);
        assert_eq!(t.partitions[&0].isr, vec![2, 3]);
        assert_eq!(t.partitions[&1].leader, 2);
        assert_eq!(t.partitions[&1].isr, vec![2, 3]);
        // The only replica: the ISR keeps it (never empty) but it leads no more.
        assert_eq!(t.partitions[&2].leader, -1);
        assert_eq!(t.partitions[&2].isr, vec![1]);
        assert!(!image.brokers[&1].hosts(id, 0));
        assert!(image.brokers[&2].hosts(id, 0));
        // Reported again: nothing new to do.
        assert!(offline_records(&image, 1, epoch, &[(id, 0)]).is_empty());
        // A stale epoch: nothing.
        assert!(offline_records(&image, 1, epoch - 1, &[(id, 3)]).is_empty());
        // The snapshot keeps the set.
        let snap = crate::snapshot::image_records(&image);
        let mut copy = MetadataImage::empty();
        copy.apply_entry(image.offset, &snap);
        assert_eq!(
            copy.brokers[&1].offline_partitions,
            image.brokers[&1].offline_partitions
        );
    }

    #[test]
    fn a_broker_never_leads_a_partition_it_cannot_host() {
        let (mut image, id) = image();
        let epoch = image.brokers[&1].epoch;
        let recs = offline_records(&image, 1, epoch, &[(id, 2)]);
        image.apply_entry(image.offset + 1, &recs);
        // Fenced then unfenced (a session flap, no restart): p2 stays leaderless.
        let recs = crate::active::fence_records(&image, 1);
        image.apply_entry(image.offset + 1, &recs);
        let recs = unfence_records(&image, 1, epoch);
        image.apply_entry(image.offset + 1, &recs);
        assert!(!image.brokers[&1].fenced);
        assert_eq!(image.topics["t"].partitions[&2].leader, -1);
    }
}
