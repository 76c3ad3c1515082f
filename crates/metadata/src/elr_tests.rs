//! Unit tests of `elr` (KIP-966): the decisions of `active`, `election` and AlterPartition
//! run through [`complete`] as the quorum's commit does, then applied.
#![allow(clippy::unwrap_used)]
use super::*;
use crate::active::{fence_records, image_with_brokers, shutdown_records, unfence_records};
use crate::controller::{create_topic, NewTopic};
use crate::election::{election_records, ElectionType};

/// Brokers 1..=3, topic "t" (one partition, replicas [1, 2, 3], leader 1) with
/// `min.insync.replicas` 2, and `eligible.leader.replicas.version` at `level`.
fn cluster(level: i16) -> (MetadataImage, Uuid) {
    let mut image = image_with_brokers(&[1, 2, 3]);
    let mut recs = vec![MetadataRecord::FeatureLevelRecord {
        name: ELR_VERSION.into(),
        feature_level: level,
    }];
    let t = NewTopic {
        assignments: vec![vec![1, 2, 3]],
        name: "t".into(),
        num_partitions: 1,
        replication_factor: 3,
        configs: [(MIN_INSYNC_REPLICAS.to_string(), "2".to_string())].into(),
    };
    recs.extend(create_topic(&image, &t, &[1, 2, 3]).unwrap());
    image.apply_entry(image.offset + 1, &recs);
    let id = image.topic("t").unwrap().id;
    (image, id)
}

/// Commits `recs` as the quorum does (static min ISR 1).
fn commit(image: &mut MetadataImage, recs: Vec<MetadataRecord>) {
    let recs = complete(image, recs, 1);
    image.apply_entry(image.offset + 1, &recs);
}

fn p0(image: &MetadataImage) -> PartitionImage {
    image.topic("t").unwrap().partitions[&0].clone()
}

/// The leader asks for `isr` (AlterPartition v3, with each member's broker epoch).
fn alter_isr(image: &mut MetadataImage, id: Uuid, isr: &[i32]) {
    use gregor_protocol::kp::messages::alter_partition_request::{
        BrokerState, PartitionData, TopicData,
    };
    use gregor_protocol::kp::messages::{AlterPartitionRequest, BrokerId};
    let p = p0(image);
    let members = isr
        .iter()
        .map(|&r| {
            BrokerState::default()
                .with_broker_id(BrokerId(r))
                .with_broker_epoch(image.brokers[&r].epoch)
        })
        .collect();
    let req = AlterPartitionRequest::default()
        .with_broker_id(BrokerId(p.leader))
        .with_broker_epoch(image.brokers[&p.leader].epoch)
        .with_topics(vec![TopicData::default()
            .with_topic_id(id)
            .with_partitions(vec![PartitionData::default()
                .with_partition_index(0)
                .with_leader_epoch(p.leader_epoch)
                .with_partition_epoch(p.partition_epoch)
                .with_new_isr_with_epochs(members)])]);
    let (recs, resp) = crate::alter_partition::decide(image, &req);
    let code = resp.topics[0].partitions[0].error_code;
    assert_eq!((resp.error_code, code), (0, 0), "AlterPartition refused");
    commit(image, recs);
}

fn fence(image: &mut MetadataImage, b: i32) {
    let recs = fence_records(image, b);
    commit(image, recs);
}

fn unfence(image: &mut MetadataImage, b: i32) {
    let epoch = image.brokers[&b].epoch;
    let recs = unfence_records(image, b, epoch);
    commit(image, recs);
}

fn state(p: &PartitionImage) -> (i32, Vec<i32>, Vec<i32>, Vec<i32>) {
    (
        p.leader,
        p.isr.clone(),
        p.elr.clone(),
        p.last_known_elr.clone(),
    )
}

#[test]
fn a_shrink_below_min_isr_moves_the_leavers_to_the_elr_and_min_isr_clears_it() {
    let (mut image, id) = cluster(1);
    alter_isr(&mut image, id, &[1, 2]);
    assert_eq!(
        state(&p0(&image)),
        (1, vec![1, 2], vec![], vec![]),
        "at min ISR"
    );
    alter_isr(&mut image, id, &[1]);
    assert_eq!(state(&p0(&image)), (1, vec![1], vec![2], vec![]));
    // 3 catches up: back at min ISR, the ELR is cleared.
    alter_isr(&mut image, id, &[1, 3]);
    assert_eq!(state(&p0(&image)), (1, vec![1, 3], vec![], vec![]));
}

#[test]
fn the_last_isr_member_fenced_leaves_an_empty_isr_and_leads_again_from_the_elr() {
    let (mut image, _) = cluster(1);
    fence(&mut image, 2);
    assert_eq!(state(&p0(&image)), (1, vec![1, 3], vec![], vec![]));
    fence(&mut image, 3);
    assert_eq!(state(&p0(&image)), (1, vec![1], vec![3], vec![]));
    let epoch = p0(&image).leader_epoch;
    fence(&mut image, 1);
    let p = p0(&image);
    assert_eq!(state(&p), (-1, vec![], vec![1, 3], vec![]));
    assert_eq!(p.leader_epoch, epoch + 1);
    // 3 is unfenced: an ELR member, it leads and is the ISR; 1 stays eligible.
    unfence(&mut image, 3);
    assert_eq!(state(&p0(&image)), (3, vec![3], vec![1], vec![]));
    // 2 (fenced while the ISR was at min ISR) never was eligible: unfencing it changes
    // nothing; once the leader takes it back in sync the ELR is cleared.
    unfence(&mut image, 2);
    assert_eq!(state(&p0(&image)), (3, vec![3], vec![1], vec![]));
}

#[test]
fn a_fenced_leader_hands_over_to_a_live_elr_member_when_the_isr_empties() {
    let (mut image, _) = cluster(1);
    fence(&mut image, 2);
    fence(&mut image, 3);
    unfence(&mut image, 3); // live again, but not yet back in sync: still in the ELR
    assert_eq!(state(&p0(&image)), (1, vec![1], vec![3], vec![]));
    fence(&mut image, 1);
    assert_eq!(state(&p0(&image)), (3, vec![3], vec![1], vec![]));
}

#[test]
fn a_clean_shutdown_of_the_last_isr_member_is_a_fence_with_elrs() {
    let (mut image, _) = cluster(1);
    for b in [2, 3, 1] {
        let epoch = image.brokers[&b].epoch;
        let recs = shutdown_records(&image, b, epoch);
        commit(&mut image, recs);
    }
    assert_eq!(state(&p0(&image)), (-1, vec![], vec![1, 3], vec![]));
}

#[test]
fn an_unclean_shutdown_takes_the_broker_out_of_the_elr_into_the_last_known_elr() {
    let (mut image, id) = cluster(1);
    for b in [2, 3, 1] {
        fence(&mut image, b);
    }
    assert_eq!(state(&p0(&image)), (-1, vec![], vec![1, 3], vec![]));
    // 3 registers again after a crash (its previous epoch is not its registration's).
    let mut recs = vec![MetadataRecord::RegisterBrokerRecord {
        broker_id: 3,
        incarnation_id: Uuid::new_v4(),
        endpoints: vec![],
        rack: None,
        broker_epoch: None,
    }];
    recs.extend(unclean_shutdown_records(&image, 3));
    commit(&mut image, recs);
    assert_eq!(state(&p0(&image)), (-1, vec![], vec![1], vec![3]));
    // Unfenced, it does not lead: only 1 may.
    unfence(&mut image, 3);
    assert_eq!(state(&p0(&image)), (-1, vec![], vec![1], vec![3]));
    unfence(&mut image, 1);
    assert_eq!(state(&p0(&image)), (1, vec![1], vec![], vec![3]));
    // Back at min ISR: both cleared.
    alter_isr(&mut image, id, &[1, 3]);
    assert_eq!(state(&p0(&image)), (1, vec![1, 3], vec![], vec![]));
}

#[test]
fn an_unclean_election_picks_an_elr_member_first_and_clears_the_elr_otherwise() {
    let (mut image, id) = cluster(1);
    for b in [2, 3, 1] {
        fence(&mut image, b);
    }
    // Only 2 (never eligible) is back: ElectLeaders unclean makes it the whole ISR and
    // forgets the ELR, as Kafka does.
    unfence(&mut image, 2);
    assert_eq!(state(&p0(&image)), (-1, vec![], vec![1, 3], vec![]));
    let mut other = image.clone();
    let recs = election_records(&other, ElectionType::Unclean, &[(id, 0)]);
    commit(&mut other, recs);
    assert_eq!(state(&p0(&other)), (2, vec![2], vec![], vec![]));
    // With 1 live too, the unclean election takes the ELR member: a clean one.
    let epoch = image.brokers[&1].epoch;
    image.apply_entry(
        image.offset + 1,
        &[MetadataRecord::BrokerRegistrationChangeRecord {
            broker_id: 1,
            broker_epoch: epoch,
            fenced: Some(false),
            in_controlled_shutdown: None,
        }],
    );
    let recs = election_records(&image, ElectionType::Unclean, &[(id, 0)]);
    commit(&mut image, recs);
    assert_eq!(state(&p0(&image)), (1, vec![1], vec![3], vec![]));
}

#[test]
fn level_zero_keeps_the_last_isr_member_and_no_elr() {
    let (mut image, _) = cluster(0);
    assert!(!enabled(&image));
    fence(&mut image, 2);
    fence(&mut image, 3);
    assert_eq!(state(&p0(&image)), (1, vec![1], vec![], vec![]));
    fence(&mut image, 1);
    assert_eq!(state(&p0(&image)), (-1, vec![1], vec![], vec![]));
    // A clean stop of the last member keeps its leadership (no record at all).
    let (image, _) = cluster(0);
    let mut image = image;
    for b in [2, 3] {
        let epoch = image.brokers[&b].epoch;
        let recs = shutdown_records(&image, b, epoch);
        commit(&mut image, recs);
    }
    let epoch = image.brokers[&1].epoch;
    let recs = shutdown_records(&image, 1, epoch);
    assert!(recs
        .iter()
        .all(|r| !matches!(r, MetadataRecord::PartitionChangeRecord { .. })));
    assert!(unclean_shutdown_records(&image, 1).is_empty());
}

#[test]
fn min_isr_comes_from_the_topic_then_the_cluster_then_the_static_default() {
    let (mut image, _) = cluster(1);
    assert_eq!(min_isr(&image, Some("t"), 3, 1), 2);
    assert_eq!(
        min_isr(&image, Some("t"), 1, 1),
        1,
        "at most the replica count"
    );
    assert_eq!(min_isr(&image, Some("u"), 3, 3), 3);
    image.apply(&MetadataRecord::ConfigRecord {
        resource: crate::records::ConfigResource::Broker,
        resource_name: String::new(),
        name: MIN_INSYNC_REPLICAS.into(),
        value: Some("2".into()),
    });
    assert_eq!(min_isr(&image, Some("u"), 3, 3), 2);
}

#[test]
fn records_without_elr_fields_still_load() {
    let old = br#"{"type":"PartitionRecord","topic_id":"00000000-0000-0000-0000-000000000007","partition":0,"replicas":[1],"isr":[1],"leader":1,"leader_epoch":0,"partition_epoch":0}"#;
    match MetadataRecord::decode(old).unwrap() {
        MetadataRecord::PartitionRecord {
            eligible_leader_replicas,
            last_known_elr,
            ..
        } => assert!(eligible_leader_replicas.is_empty() && last_known_elr.is_empty()),
        other => panic!("{other:?}"),
    }
    let change = br#"{"type":"PartitionChangeRecord","topic_id":"00000000-0000-0000-0000-000000000007","partition":0,"leader":2,"isr":null,"replicas":null}"#;
    assert!(matches!(
        MetadataRecord::decode(change).unwrap(),
        MetadataRecord::PartitionChangeRecord {
            eligible_leader_replicas: None,
            last_known_elr: None,
            ..
        }
    ));
}

#[test]
fn a_downgrade_to_level_zero_clears_the_elr_and_refills_an_empty_isr() {
    let (mut image, _) = cluster(1);
    for b in [2, 3, 1] {
        fence(&mut image, b);
    }
    assert_eq!(state(&p0(&image)), (-1, vec![], vec![1, 3], vec![]));
    let down = [crate::features::FeatureUpdate {
        name: ELR_VERSION.into(),
        level: 0,
        upgrade: Some(crate::features::UpgradeType::SafeDowngrade),
    }];
    let recs = crate::features::update_features(&image, &down).unwrap();
    commit(&mut image, recs);
    assert!(!enabled(&image));
    assert_eq!(state(&p0(&image)), (-1, vec![1, 3], vec![], vec![]));
    // The old rule: an ISR member leads again once unfenced.
    unfence(&mut image, 3);
    assert_eq!(state(&p0(&image)), (3, vec![1, 3], vec![], vec![]));
}
