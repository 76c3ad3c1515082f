//! How a broker leaves and rejoins partitions, as records (pure functions of the image):
//! fencing (a session that expired), a clean stop (controlled shutdown) and unfencing.
//! The active controller ([`crate::active`]) commits them; with eligible leader
//! replicas on, the quorum's commit completes them with the ELR rules (`crate::elr`).

use uuid::Uuid;

use crate::image::MetadataImage;
use crate::records::MetadataRecord;

/// Records that fence `broker`: its registration, and every partition whose ISR holds
/// it (it leaves the ISR unless it is the last member; a partition it led gets the first
/// other live ISR member as leader, or no leader).
pub fn fence_records(image: &MetadataImage, broker: i32) -> Vec<MetadataRecord> {
    let mut out = Vec::new();
    if let Some(b) = image.brokers.get(&broker) {
        out.push(MetadataRecord::BrokerRegistrationChangeRecord {
            broker_id: broker,
            broker_epoch: b.epoch,
            fenced: Some(true),
            in_controlled_shutdown: None,
        });
    }
    for t in image.topics.values() {
        for (&index, p) in &t.partitions {
            out.extend(fence_partition(image, broker, t.id, index, p));
        }
    }
    out
}

/// The change that takes `broker` off one partition as a fence does: out of the ISR
/// unless it is the last member, and, if it leads, leadership to the first other live
/// ISR member that hosts the partition (or no leader). `None` when the broker holds
/// neither, or nothing would change. Shared by fencing and by a broker's failed log
/// directory (`offline_dirs`).
pub(crate) fn fence_partition(
    image: &MetadataImage,
    broker: i32,
    topic_id: Uuid,
    index: i32,
    p: &crate::image::PartitionImage,
) -> Option<MetadataRecord> {
    if !p.isr.contains(&broker) && p.leader != broker {
        return None;
    }
    let live = |id: i32| {
        id != broker
            && image
                .brokers
                .get(&id)
                .is_some_and(|b| !b.fenced && !b.in_controlled_shutdown && b.hosts(topic_id, index))
    };
    // With ELRs (KIP-966) the last member leaves too: the ISR may be empty, and the
    // ELR (see `crate::elr`) keeps who may lead again.
    let isr: Vec<i32> = if p.isr.len() > 1 || crate::elr::enabled(image) {
        p.isr.iter().copied().filter(|&r| r != broker).collect()
    } else {
        p.isr.clone()
    };
    let leader = (p.leader == broker).then(|| isr.iter().copied().find(|&r| live(r)).unwrap_or(-1));
    if leader.is_none() && isr == p.isr {
        return None;
    }
    Some(MetadataRecord::PartitionChangeRecord {
        topic_id,
        partition: index,
        leader,
        isr: (isr != p.isr).then_some(isr),
        replicas: None,
        adding_replicas: None,
        removing_replicas: None,
        eligible_leader_replicas: None,
        last_known_elr: None,
    })
}

/// Records for a broker's clean stop: like [`fence_records`], except that, without
/// ELRs, a partition no other live ISR member can take over keeps its leader and ISR (it
/// is offline while the broker is down, and back without a metadata change when it
/// returns: a single node's restart writes no record per partition). With ELRs it is
/// exactly a fence: the last ISR member goes to the ELR and leads again from it.
pub fn shutdown_records(image: &MetadataImage, broker: i32, epoch: i64) -> Vec<MetadataRecord> {
    if image.brokers.get(&broker).is_none_or(|b| b.epoch != epoch) {
        return Vec::new();
    }
    if crate::elr::enabled(image) {
        return fence_records(image, broker);
    }
    fence_records(image, broker)
        .into_iter()
        .filter(|r| {
            !matches!(
                r,
                MetadataRecord::PartitionChangeRecord {
                    leader: Some(-1),
                    ..
                }
            )
        })
        .collect()
}

/// Records that unfence `broker` at `epoch`: its registration, and leadership of every
/// leaderless partition whose ISR holds it (or, with ELRs, whose ISR is empty and whose
/// ELR holds it).
pub fn unfence_records(image: &MetadataImage, broker: i32, epoch: i64) -> Vec<MetadataRecord> {
    if image
        .brokers
        .get(&broker)
        .is_none_or(|b| b.epoch != epoch || !b.fenced)
    {
        return Vec::new();
    }
    let mut out = vec![MetadataRecord::BrokerRegistrationChangeRecord {
        broker_id: broker,
        broker_epoch: epoch,
        fenced: Some(false),
        in_controlled_shutdown: Some(false),
    }];
    let hosts = |t: Uuid, i: i32| image.brokers.get(&broker).is_some_and(|b| b.hosts(t, i));
    for t in image.topics.values() {
        for (&index, p) in &t.partitions {
            // With ELRs: also a partition with an empty ISR whose ELR holds it (it
            // becomes the ISR, see `crate::elr::complete`).
            let eligible = p.isr.contains(&broker)
                || (p.isr.is_empty() && p.elr.contains(&broker) && crate::elr::enabled(image));
            if p.leader == -1 && eligible && hosts(t.id, index) {
                out.push(MetadataRecord::PartitionChangeRecord {
                    topic_id: t.id,
                    partition: index,
                    leader: Some(broker),
                    isr: None,
                    replicas: None,
                    adding_replicas: None,
                    removing_replicas: None,
                    eligible_leader_replicas: None,
                    last_known_elr: None,
                });
            }
        }
    }
    out
}

/// For unit tests: an image with these brokers registered and unfenced.
#[cfg(test)]
pub(crate) fn image_with_brokers(ids: &[i32]) -> MetadataImage {
    let mut image = MetadataImage::empty();
    for &id in ids {
        image.apply_entry(
            image.offset + 1,
            &[MetadataRecord::RegisterBrokerRecord {
                broker_id: id,
                incarnation_id: Uuid::new_v4(),
                endpoints: vec![],
                rack: None,
                broker_epoch: None,
            }],
        );
        let epoch = image.offset;
        let recs = unfence_records(&image, id, epoch);
        image.apply_entry(image.offset + 1, &recs);
    }
    image
}
