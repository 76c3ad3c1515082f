//! Where a new partition's replicas go.
//!
//! Kafka's rule, simplified: brokers are ordered so that racks alternate (one broker of
//! each rack in turn, brokers of a rack in id order), and partition `p` takes `rf`
//! consecutive brokers of that list starting at `p`. Consecutive brokers are in different
//! racks as long as racks remain, so a partition's replicas span as many racks as it
//! can; the first replica (the preferred leader) moves one broker per partition, so
//! leaderships are spread evenly.

use std::collections::BTreeMap;

use crate::image::MetadataImage;

/// Live brokers in placement order: racks alternate (brokers without a rack form one
/// group of their own, as Kafka refuses mixing only when some have racks).
pub fn placement_order(image: &MetadataImage) -> Vec<i32> {
    let mut by_rack: BTreeMap<Option<&str>, Vec<i32>> = BTreeMap::new();
    for b in image.live_brokers() {
        by_rack.entry(b.rack.as_deref()).or_default().push(b.id);
    }
    let racks: Vec<Vec<i32>> = by_rack.into_values().collect();
    let longest = racks.iter().map(Vec::len).max().unwrap_or(0);
    let mut out = Vec::new();
    for i in 0..longest {
        for rack in &racks {
            if let Some(&b) = rack.get(i) {
                out.push(b);
            }
        }
    }
    out
}

/// The replicas of partition `p`: `rf` consecutive brokers of `order` from position `p`.
/// `rf` must not exceed `order.len()` (callers check and answer
/// INVALID_REPLICATION_FACTOR).
pub fn replicas_for(order: &[i32], p: i32, rf: usize) -> Vec<i32> {
    let n = order.len().max(1);
    let start = usize::try_from(p).unwrap_or(0) % n;
    (0..rf.min(order.len()))
        .map(|r| order[(start + r) % n])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::MetadataRecord;

    fn register(image: &mut MetadataImage, id: i32, rack: Option<&str>) {
        image.apply_entry(
            image.offset + 1,
            &[MetadataRecord::RegisterBrokerRecord {
                broker_id: id,
                incarnation_id: uuid::Uuid::new_v4(),
                endpoints: vec![],
                rack: rack.map(str::to_string),
                broker_epoch: None,
            }],
        );
        let epoch = image.offset;
        image.apply_entry(
            image.offset + 1,
            &[MetadataRecord::BrokerRegistrationChangeRecord {
                broker_id: id,
                broker_epoch: epoch,
                fenced: Some(false),
                in_controlled_shutdown: None,
            }],
        );
    }

    #[test]
    fn racks_alternate_and_leaders_spread() {
        let mut image = MetadataImage::empty();
        for (id, rack) in [(1, "a"), (2, "a"), (3, "b"), (4, "b"), (5, "c"), (6, "c")] {
            register(&mut image, id, Some(rack));
        }
        let order = placement_order(&image);
        assert_eq!(order, vec![1, 3, 5, 2, 4, 6]);
        let rack = |b: i32| (b + 1) / 2;
        let mut leaders = BTreeMap::new();
        for p in 0..60 {
            let r = replicas_for(&order, p, 3);
            let racks: std::collections::BTreeSet<_> = r.iter().map(|&b| rack(b)).collect();
            assert_eq!(racks.len(), 3, "partition {p}: {r:?} spans all racks");
            *leaders.entry(r[0]).or_insert(0) += 1;
        }
        assert!(leaders.values().all(|&n| n == 10), "{leaders:?}");
    }

    #[test]
    fn fenced_brokers_take_no_replicas() {
        let mut image = MetadataImage::empty();
        register(&mut image, 1, None);
        register(&mut image, 2, None);
        image.apply_entry(
            image.offset + 1,
            &[MetadataRecord::RegisterBrokerRecord {
                broker_id: 3,
                incarnation_id: uuid::Uuid::new_v4(),
                endpoints: vec![],
                rack: None,
                broker_epoch: None,
            }],
        );
        assert_eq!(placement_order(&image), vec![1, 2]);
    }
}
