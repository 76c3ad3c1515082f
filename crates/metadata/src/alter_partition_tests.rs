#![allow(clippy::unwrap_used)]
use uuid::Uuid;

use super::*;

/// Brokers 1, 2, 3 unfenced; topic "t" with p0 (replicas 1,2,3, ISR 1,2, leader 1) and
/// p1 (replicas 2,1,3, ISR 2,1,3, leader 2), every epoch 0.
fn image() -> (MetadataImage, Uuid) {
    let mut image = crate::active::image_with_brokers(&[1, 2, 3]);
    let id = Uuid::new_v4();
    let mut recs = vec![MetadataRecord::TopicRecord {
        name: "t".into(),
        topic_id: id,
    }];
    for (i, replicas, isr, leader) in [
        (0, vec![1, 2, 3], vec![1, 2], 1),
        (1, vec![2, 1, 3], vec![1, 2, 3], 2),
    ] {
        recs.push(MetadataRecord::PartitionRecord {
            topic_id: id,
            partition: i,
            replicas,
            isr,
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

fn member(image: &MetadataImage, id: i32) -> BrokerState {
    BrokerState::default()
        .with_broker_id(BrokerId(id))
        .with_broker_epoch(image.brokers[&id].epoch)
}

fn change(
    partition: i32,
    (leader_epoch, partition_epoch): (i32, i32),
    isr: Vec<BrokerState>,
) -> req::PartitionData {
    req::PartitionData::default()
        .with_partition_index(partition)
        .with_leader_epoch(leader_epoch)
        .with_partition_epoch(partition_epoch)
        .with_new_isr_with_epochs(isr)
}

fn request(
    image: &MetadataImage,
    broker: i32,
    id: Uuid,
    parts: Vec<req::PartitionData>,
) -> AlterPartitionRequest {
    AlterPartitionRequest::default()
        .with_broker_id(BrokerId(broker))
        .with_broker_epoch(image.brokers[&broker].epoch)
        .with_topics(vec![req::TopicData::default()
            .with_topic_id(id)
            .with_partitions(parts)])
}

fn codes(r: &AlterPartitionResponse) -> Vec<i16> {
    r.topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
        .collect()
}

#[test]
fn an_isr_expansion_is_committed_and_answered_with_the_new_state() {
    let (mut image, id) = image();
    let isr = vec![member(&image, 1), member(&image, 2), member(&image, 3)];
    let (recs, resp) = decide(
        &image,
        &request(&image, 1, id, vec![change(0, (0, 0), isr)]),
    );
    assert_eq!(resp.error_code, 0);
    assert_eq!(codes(&resp), vec![0]);
    assert_eq!(recs.len(), 1);
    let answered = &resp.topics[0].partitions[0];
    image.apply_entry(image.offset + 1, &recs);
    let p = &image.topics["t"].partitions[&0];
    assert_eq!(p.isr, vec![1, 2, 3]);
    // The answer is the state the records produce.
    assert_eq!(answered.partition_epoch, p.partition_epoch);
    assert_eq!(answered.leader_epoch, p.leader_epoch);
    assert_eq!(answered.leader_id.0, 1);
    assert_eq!(
        answered.isr.iter().map(|b| b.0).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
}

#[test]
fn several_partitions_change_in_one_request_and_a_refused_one_does_not_stop_the_others() {
    let (mut image, id) = image();
    // p0: 1 leads, expands to 3. p1: 2 leads, so broker 1 asking for it is refused.
    let grow = change(
        0,
        (0, 0),
        vec![member(&image, 1), member(&image, 2), member(&image, 3)],
    );
    let not_mine = change(1, (0, 0), vec![member(&image, 2), member(&image, 1)]);
    let (recs, resp) = decide(&image, &request(&image, 1, id, vec![grow, not_mine]));
    assert_eq!(codes(&resp), vec![0, ResponseError::InvalidRequest.code()]);
    image.apply_entry(image.offset + 1, &recs);
    assert_eq!(image.topics["t"].partitions[&0].isr, vec![1, 2, 3]);
    assert_eq!(image.topics["t"].partitions[&1].isr, vec![1, 2, 3]);
}

#[test]
fn stale_epochs_are_refused_with_kafkas_codes() {
    let (image, id) = image();
    let isr = || vec![member(&image, 1)];
    let cases = [
        ((1, 0), ResponseError::NotController),
        ((0, 1), ResponseError::NotController),
        ((-1, 0), ResponseError::FencedLeaderEpoch),
        ((0, -1), ResponseError::InvalidUpdateVersion),
    ];
    for (epochs, code) in cases {
        let (recs, resp) = decide(
            &image,
            &request(&image, 1, id, vec![change(0, epochs, isr())]),
        );
        assert!(recs.is_empty(), "{epochs:?}");
        assert_eq!(codes(&resp), vec![code.code()], "{epochs:?}");
    }
    // A broker epoch that is not the sender's registration: nothing is looked at.
    let mut r = request(&image, 1, id, vec![change(0, (0, 0), isr())]);
    r.broker_epoch -= 1;
    let (recs, resp) = decide(&image, &r);
    assert!(recs.is_empty());
    assert_eq!(resp.error_code, ResponseError::StaleBrokerEpoch.code());
}

#[test]
fn malformed_isrs_and_unknown_partitions_are_refused() {
    let (image, id) = image();
    let cases = [
        // Without its leader.
        (0, vec![member(&image, 2)], ResponseError::InvalidRequest),
        // A replica twice.
        (
            0,
            vec![member(&image, 1), member(&image, 1)],
            ResponseError::InvalidRequest,
        ),
        // Not a replica.
        (
            0,
            vec![
                member(&image, 1),
                BrokerState::default().with_broker_id(BrokerId(9)),
            ],
            ResponseError::InvalidRequest,
        ),
        (
            7,
            vec![member(&image, 1)],
            ResponseError::UnknownTopicOrPartition,
        ),
    ];
    for (partition, isr, code) in cases {
        let (recs, resp) = decide(
            &image,
            &request(&image, 1, id, vec![change(partition, (0, 0), isr)]),
        );
        assert!(recs.is_empty());
        assert_eq!(codes(&resp), vec![code.code()]);
    }
    let (_, resp) = decide(
        &image,
        &request(
            &image,
            1,
            Uuid::new_v4(),
            vec![change(0, (0, 0), vec![member(&image, 1)])],
        ),
    );
    assert_eq!(codes(&resp), vec![ResponseError::UnknownTopicId.code()]);
    // The same partition twice: the second is refused, the first is decided.
    let twice = vec![
        change(
            0,
            (0, 0),
            vec![member(&image, 1), member(&image, 2), member(&image, 3)],
        ),
        change(0, (0, 0), vec![member(&image, 1)]),
    ];
    let (recs, resp) = decide(&image, &request(&image, 1, id, twice));
    assert_eq!(codes(&resp), vec![0, ResponseError::InvalidRequest.code()]);
    assert_eq!(recs.len(), 1);
}

#[test]
fn a_restarted_or_fenced_follower_is_ineligible_kip_903() {
    let (mut image, id) = image();
    // Broker 3's fetch was made by an incarnation that has since registered again.
    let old = member(&image, 3).with_broker_epoch(image.brokers[&3].epoch - 1);
    let (recs, resp) = decide(
        &image,
        &request(
            &image,
            1,
            id,
            vec![change(0, (0, 0), vec![member(&image, 1), old])],
        ),
    );
    assert!(recs.is_empty());
    assert_eq!(codes(&resp), vec![ResponseError::IneligibleReplica.code()]);
    // -1 skips the epoch check (v2, or a follower that sent none).
    let unknown = BrokerState::default()
        .with_broker_id(BrokerId(3))
        .with_broker_epoch(-1);
    let (_, resp) = decide(
        &image,
        &request(
            &image,
            1,
            id,
            vec![change(0, (0, 0), vec![member(&image, 1), unknown])],
        ),
    );
    assert_eq!(codes(&resp), vec![0]);
    // A fenced broker may not join, whatever its epoch.
    let epoch = image.brokers[&3].epoch;
    image.apply_entry(
        image.offset + 1,
        &[MetadataRecord::BrokerRegistrationChangeRecord {
            broker_id: 3,
            broker_epoch: epoch,
            fenced: Some(true),
            in_controlled_shutdown: None,
        }],
    );
    let (_, resp) = decide(
        &image,
        &request(
            &image,
            1,
            id,
            vec![change(
                0,
                (0, 0),
                vec![member(&image, 1), member(&image, 3)],
            )],
        ),
    );
    assert_eq!(codes(&resp), vec![ResponseError::IneligibleReplica.code()]);
}

#[test]
fn an_unchanged_isr_commits_nothing_and_answers_the_current_state() {
    let (image, id) = image();
    let (recs, resp) = decide(
        &image,
        &request(
            &image,
            1,
            id,
            vec![change(
                0,
                (0, 0),
                vec![member(&image, 2), member(&image, 1)],
            )],
        ),
    );
    assert!(recs.is_empty());
    assert_eq!(codes(&resp), vec![0]);
    assert_eq!(resp.topics[0].partitions[0].partition_epoch, 0);
}
