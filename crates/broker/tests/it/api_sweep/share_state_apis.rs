//! The share coordinator's inter-broker APIs (KIP-932, keys 83–87) against topic
//! "sweep", in registry order, on one share-partition of a group of their own: found
//! with FindCoordinator key type 2; initialized; read (which records the reader's
//! leader epoch); written, and a write from an older leader epoch fenced; deleted; and
//! the summary of what is left (nothing).

use gregor_protocol::kp::messages::*;
use uuid::Uuid;

use super::common::Client;
use super::support::{check, s, Sweep};

const GROUP: &str = "sg-state";
const INVALID_REQUEST: i16 = 42;
const FENCED_LEADER_EPOCH: i16 = 74;
const FENCED_STATE_EPOCH: i16 = 124;

fn key(topic: Uuid) -> String {
    use base64::Engine;
    let id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(topic.as_bytes());
    format!("{GROUP}:{id}:0")
}

fn read(topic: Uuid, leader_epoch: i32) -> ReadShareGroupStateRequest {
    use read_share_group_state_request::{PartitionData, ReadStateData};
    ReadShareGroupStateRequest::default()
        .with_group_id(s(GROUP))
        .with_topics(vec![ReadStateData::default()
            .with_topic_id(topic)
            .with_partitions(vec![PartitionData::default()
                .with_partition(0)
                .with_leader_epoch(leader_epoch)])])
}

fn write(topic: Uuid, state_epoch: i32, leader_epoch: i32) -> WriteShareGroupStateRequest {
    use write_share_group_state_request::{PartitionData, StateBatch, WriteStateData};
    WriteShareGroupStateRequest::default()
        .with_group_id(s(GROUP))
        .with_topics(vec![WriteStateData::default()
            .with_topic_id(topic)
            .with_partitions(vec![PartitionData::default()
                .with_partition(0)
                .with_state_epoch(state_epoch)
                .with_leader_epoch(leader_epoch)
                .with_start_offset(5)
                .with_state_batches(vec![StateBatch::default()
                    .with_first_offset(5)
                    .with_last_offset(6)
                    .with_delivery_state(2)
                    .with_delivery_count(1)])])])
}

fn summary(topic: Uuid) -> ReadShareGroupStateSummaryRequest {
    use read_share_group_state_summary_request::{PartitionData, ReadStateSummaryData};
    ReadShareGroupStateSummaryRequest::default()
        .with_group_id(s(GROUP))
        .with_topics(vec![ReadStateSummaryData::default()
            .with_topic_id(topic)
            .with_partitions(vec![PartitionData::default().with_partition(0)])])
}

pub(crate) async fn initialize_share_group_state(
    c: &mut Client,
    cx: &Sweep<'_>,
    range: (i16, i16),
) {
    use initialize_share_group_state_request::{InitializeStateData, PartitionData};
    // The share coordinator of the key is this (only) broker; a malformed key is
    // refused.
    let find = |k: String| {
        FindCoordinatorRequest::default()
            .with_key_type(2)
            .with_coordinator_keys(vec![s(&k)])
    };
    let r = c.call(&find(key(cx.topic_id)), 6).await;
    assert_eq!(r.coordinators[0].error_code, 0, "{r:?}");
    assert_eq!(r.coordinators[0].port, cx.port);
    let r = c.call(&find("no-colons".into()), 6).await;
    assert_eq!(r.coordinators[0].error_code, INVALID_REQUEST);
    check(
        c,
        range,
        |_| {
            InitializeShareGroupStateRequest::default()
                .with_group_id(s(GROUP))
                .with_topics(vec![InitializeStateData::default()
                    .with_topic_id(cx.topic_id)
                    .with_partitions(vec![PartitionData::default()
                        .with_partition(0)
                        .with_state_epoch(1)
                        .with_start_offset(5)])])
        },
        |v, r| assert_eq!(r.results[0].partitions[0].error_code, 0, "v{v}: {r:?}"),
    )
    .await;
}

pub(crate) async fn read_share_group_state(c: &mut Client, cx: &Sweep<'_>, range: (i16, i16)) {
    check(
        c,
        range,
        |_| read(cx.topic_id, 1),
        |v, r| {
            let p = &r.results[0].partitions[0];
            assert_eq!(p.error_code, 0, "v{v}: {r:?}");
            assert_eq!((p.state_epoch, p.start_offset), (1, 5));
            assert!(p.state_batches.is_empty());
        },
    )
    .await;
}

pub(crate) async fn write_share_group_state(c: &mut Client, cx: &Sweep<'_>, range: (i16, i16)) {
    check(
        c,
        range,
        |_| write(cx.topic_id, 1, 1),
        |v, r| assert_eq!(r.results[0].partitions[0].error_code, 0, "v{v}: {r:?}"),
    )
    .await;
    let r = c.call(&read(cx.topic_id, 1), 0).await;
    let p = &r.results[0].partitions[0];
    let batches: Vec<_> = p
        .state_batches
        .iter()
        .map(|b| {
            (
                b.first_offset,
                b.last_offset,
                b.delivery_state,
                b.delivery_count,
            )
        })
        .collect();
    assert_eq!(batches, vec![(5, 6, 2, 1)]);
    // A newer leader reads it: the older leader's writes are fenced from then on, and
    // so is an older state epoch.
    assert_eq!(
        c.call(&read(cx.topic_id, 3), 0).await.results[0].partitions[0].error_code,
        0
    );
    let r = c.call(&write(cx.topic_id, 1, 2), 0).await;
    assert_eq!(r.results[0].partitions[0].error_code, FENCED_LEADER_EPOCH);
    let r = c.call(&write(cx.topic_id, 0, 3), 0).await;
    assert_eq!(r.results[0].partitions[0].error_code, FENCED_STATE_EPOCH);
}

pub(crate) async fn delete_share_group_state(c: &mut Client, cx: &Sweep<'_>, range: (i16, i16)) {
    use delete_share_group_state_request::{DeleteStateData, PartitionData};
    let r = c.call(&summary(cx.topic_id), 0).await;
    let p = &r.results[0].partitions[0];
    assert_eq!(
        (p.error_code, p.state_epoch, p.leader_epoch, p.start_offset),
        (0, 1, 3, 5)
    );
    check(
        c,
        range,
        |_| {
            DeleteShareGroupStateRequest::default()
                .with_group_id(s(GROUP))
                .with_topics(vec![DeleteStateData::default()
                    .with_topic_id(cx.topic_id)
                    .with_partitions(vec![PartitionData::default().with_partition(0)])])
        },
        |v, r| assert_eq!(r.results[0].partitions[0].error_code, 0, "v{v}: {r:?}"),
    )
    .await;
}

pub(crate) async fn read_share_group_state_summary(
    c: &mut Client,
    cx: &Sweep<'_>,
    range: (i16, i16),
) {
    check(
        c,
        range,
        |_| summary(cx.topic_id),
        |v, r| {
            let p = &r.results[0].partitions[0];
            assert_eq!(p.error_code, 0, "v{v}: {r:?}");
            assert_eq!(p.start_offset, -1, "deleted state reads as none");
        },
    )
    .await;
}
