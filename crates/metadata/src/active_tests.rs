//! Unit tests of `active` (the controller's fencing records).
#![allow(clippy::unwrap_used)]
use super::*;
use crate::controller::{create_topic, NewTopic};

#[test]
fn fencing_moves_leaders_and_shrinks_isrs_but_never_empties_them() {
    let mut image = image_with_brokers(&[1, 2, 3]);
    let t = NewTopic {
        assignments: Vec::new(),
        name: "t".into(),
        num_partitions: 3,
        replication_factor: 3,
        configs: Default::default(),
    };
    let recs = create_topic(&image, &t, &[1, 2, 3]).unwrap();
    image.apply_entry(image.offset + 1, &recs);
    let recs = fence_records(&image, 1);
    image.apply_entry(image.offset + 1, &recs);
    assert!(image.brokers[&1].fenced);
    for p in image.topic("t").unwrap().partitions.values() {
        assert_ne!(p.leader, 1);
        assert!(!p.isr.contains(&1));
        assert_eq!(p.isr.len(), 2);
    }
    let p0 = &image.topic("t").unwrap().partitions[&0];
    assert_eq!((p0.leader, p0.leader_epoch), (2, 1), "{p0:?}");
    // Fence 2 and 3 too: the last ISR member stays, with no leader.
    for b in [2, 3] {
        let recs = fence_records(&image, b);
        image.apply_entry(image.offset + 1, &recs);
    }
    for p in image.topic("t").unwrap().partitions.values() {
        assert_eq!(p.leader, -1);
        assert_eq!(p.isr, vec![3]);
    }
    // 3 comes back: it leads again.
    let epoch = image.brokers[&3].epoch;
    let recs = unfence_records(&image, 3, epoch);
    image.apply_entry(image.offset + 1, &recs);
    for p in image.topic("t").unwrap().partitions.values() {
        assert_eq!(p.leader, 3);
    }
}
