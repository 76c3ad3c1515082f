//! Share groups (KIP-932): one member's life against topic "sweep", in registry order.
//! The heartbeat joins `sg-sweep`; the fetch opens a share session and finds nothing
//! (the share-partition starts at the end, `share.auto.offset.reset` latest); the
//! acknowledgement checks session errors; describe shows the member; offsets show the
//! start; altering them needs an empty group, after which a second member acquires
//! from the new start and accepts, which moves it; deleting the offsets forgets it.

use gregor_protocol::kp::messages::*;
use uuid::Uuid;

use super::common::Client;
use super::support::{check, s, Sweep, GROUP_ID_NOT_FOUND};

const GROUP: &str = "sg-sweep";
const NON_EMPTY_GROUP: i16 = 68;
const INVALID_RECORD_STATE: i16 = 121;
const SHARE_SESSION_NOT_FOUND: i16 = 122;
const INVALID_SHARE_SESSION_EPOCH: i16 = 123;

fn heartbeat(member: &str, epoch: i32, topics: Option<&[&str]>) -> ShareGroupHeartbeatRequest {
    ShareGroupHeartbeatRequest::default()
        .with_group_id(GroupId(s(GROUP)))
        .with_member_id(s(member))
        .with_member_epoch(epoch)
        .with_subscribed_topic_names(topics.map(|ts| ts.iter().map(|t| TopicName(s(t))).collect()))
}

fn fetch(member: &str, epoch: i32, topic: Uuid, ack: Option<(i64, i64, i8)>) -> ShareFetchRequest {
    use share_fetch_request::{AcknowledgementBatch, FetchPartition, FetchTopic};
    let acks = ack
        .map(|(f, l, t)| {
            vec![AcknowledgementBatch::default()
                .with_first_offset(f)
                .with_last_offset(l)
                .with_acknowledge_types(vec![t])]
        })
        .unwrap_or_default();
    ShareFetchRequest::default()
        .with_group_id(Some(GroupId(s(GROUP))))
        .with_member_id(Some(s(member)))
        .with_share_session_epoch(epoch)
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_max_records(100)
        .with_topics(vec![FetchTopic::default()
            .with_topic_id(topic)
            .with_partitions(vec![FetchPartition::default()
                .with_partition_index(0)
                .with_acknowledgement_batches(acks)])])
}

fn acknowledge(member: &str, epoch: i32, topic: Uuid, f: i64, l: i64) -> ShareAcknowledgeRequest {
    use share_acknowledge_request::{AcknowledgePartition, AcknowledgeTopic, AcknowledgementBatch};
    ShareAcknowledgeRequest::default()
        .with_group_id(Some(GroupId(s(GROUP))))
        .with_member_id(Some(s(member)))
        .with_share_session_epoch(epoch)
        .with_topics(vec![AcknowledgeTopic::default()
            .with_topic_id(topic)
            .with_partitions(vec![AcknowledgePartition::default()
                .with_partition_index(0)
                .with_acknowledgement_batches(vec![
                    AcknowledgementBatch::default()
                        .with_first_offset(f)
                        .with_last_offset(l)
                        .with_acknowledge_types(vec![1]),
                ])])])
}

fn describe_offsets() -> DescribeShareGroupOffsetsRequest {
    use describe_share_group_offsets_request::DescribeShareGroupOffsetsRequestGroup;
    DescribeShareGroupOffsetsRequest::default().with_groups(vec![
        DescribeShareGroupOffsetsRequestGroup::default()
            .with_group_id(GroupId(s(GROUP)))
            .with_topics(None),
    ])
}

/// The SPSO DescribeShareGroupOffsets reports for sweep-0, if any.
async fn start_offset(c: &mut Client) -> Option<i64> {
    let r = c.call(&describe_offsets(), 0).await;
    assert_eq!(r.groups[0].error_code, 0);
    r.groups[0]
        .topics
        .iter()
        .find(|t| t.topic_name.as_str() == "sweep")
        .map(|t| t.partitions[0].start_offset)
}

pub(crate) async fn share_group_heartbeat(c: &mut Client, cx: &Sweep<'_>, range: (i16, i16)) {
    let topic = cx.topic_id;
    check(
        c,
        range,
        |_| heartbeat("m1", 0, Some(&["sweep"])),
        |v, r| {
            assert_eq!(r.error_code, 0, "v{v}: {r:?}");
            assert_eq!(r.member_id.as_deref(), Some("m1"));
            assert!(r.member_epoch >= 1);
            let a = r.assignment.as_ref().unwrap();
            assert_eq!(a.topic_partitions[0].topic_id, topic);
            assert_eq!(a.topic_partitions[0].partitions, vec![0]);
        },
    )
    .await;
    let epoch = c
        .call(&heartbeat("m1", 0, Some(&["sweep"])), 1)
        .await
        .member_epoch;
    let r = c.call(&heartbeat("m1", epoch, None), 1).await;
    assert_eq!((r.error_code, r.member_epoch), (0, epoch));
    assert!(r.assignment.is_none(), "unchanged: no assignment");
    let r = c.call(&heartbeat("m1", epoch + 5, None), 1).await;
    assert_eq!(r.error_code, 110, "FENCED_MEMBER_EPOCH");
    // A consumer group's id is not a share group's.
    let r = c
        .call(
            &ConsumerGroupHeartbeatRequest::default()
                .with_group_id(GroupId(s(GROUP)))
                .with_member_id(s("x"))
                .with_rebalance_timeout_ms(1000)
                .with_subscribed_topic_names(Some(vec![TopicName(s("sweep"))])),
            1,
        )
        .await;
    assert_eq!(r.error_code, GROUP_ID_NOT_FOUND);
}

pub(crate) async fn share_fetch(c: &mut Client, cx: &Sweep<'_>, range: (i16, i16)) {
    let topic = cx.topic_id;
    check(
        c,
        range,
        |_| fetch("m1", 0, topic, None),
        |v, r| {
            assert_eq!(r.error_code, 0, "v{v}: {r:?}");
            let p = &r.responses[0].partitions[0];
            assert_eq!((p.error_code, p.partition_index), (0, 0));
            assert!(p.acquired_records.is_empty(), "starts at the end (latest)");
            assert_eq!(r.acquisition_lock_timeout_ms, 30_000);
        },
    )
    .await;
    // Acknowledging what nobody acquired; then a wrong epoch.
    let r = c.call(&fetch("m1", 1, topic, Some((0, 0, 1))), 1).await;
    assert_eq!(r.error_code, 0);
    assert_eq!(
        r.responses[0].partitions[0].acknowledge_error_code,
        INVALID_RECORD_STATE
    );
    let r = c.call(&fetch("m1", 9, topic, None), 1).await;
    assert_eq!(r.error_code, INVALID_SHARE_SESSION_EPOCH);
    // Acknowledgements cannot open a session.
    let r = c.call(&fetch("m1", 0, topic, Some((0, 0, 1))), 1).await;
    assert_eq!(r.error_code, 42);
}

pub(crate) async fn share_acknowledge(c: &mut Client, cx: &Sweep<'_>, range: (i16, i16)) {
    let topic = cx.topic_id;
    check(
        c,
        range,
        |_| acknowledge("nobody", 1, topic, 0, 0),
        |v, r| {
            assert_eq!(r.error_code, SHARE_SESSION_NOT_FOUND, "v{v}");
        },
    )
    .await;
    let r = c.call(&acknowledge("m1", 0, topic, 0, 0), 1).await;
    assert_eq!(r.error_code, INVALID_SHARE_SESSION_EPOCH);
}

pub(crate) async fn share_group_describe(c: &mut Client, cx: &Sweep<'_>, range: (i16, i16)) {
    let topic = cx.topic_id;
    check(
        c,
        range,
        |_| {
            ShareGroupDescribeRequest::default()
                .with_group_ids(vec![GroupId(s(GROUP)), GroupId(s("nope-sg"))])
        },
        |v, r| {
            let g = &r.groups[0];
            assert_eq!(g.error_code, 0, "v{v}");
            assert_eq!(g.group_state.as_str(), "Stable");
            assert_eq!(g.members.len(), 1);
            let m = &g.members[0];
            assert_eq!(m.member_id.as_str(), "m1");
            assert_eq!(m.subscribed_topic_names[0].as_str(), "sweep");
            let tp = &m.assignment.topic_partitions[0];
            assert_eq!((tp.topic_id, tp.topic_name.as_str()), (topic, "sweep"));
            assert_eq!(r.groups[1].error_code, GROUP_ID_NOT_FOUND);
        },
    )
    .await
}

pub(crate) async fn describe_share_group_offsets(
    c: &mut Client,
    cx: &Sweep<'_>,
    range: (i16, i16),
) {
    let hw =
        cx.b.broker
            .replicas
            .partition("sweep", 0)
            .unwrap()
            .high_watermark();
    check(
        c,
        range,
        |_| describe_offsets(),
        |v, r| {
            let g = &r.groups[0];
            assert_eq!(g.error_code, 0, "v{v}");
            assert_eq!(g.topics[0].partitions[0].start_offset, hw);
        },
    )
    .await
}

pub(crate) async fn alter_share_group_offsets(c: &mut Client, cx: &Sweep<'_>, range: (i16, i16)) {
    use alter_share_group_offsets_request::{
        AlterShareGroupOffsetsRequestPartition as P, AlterShareGroupOffsetsRequestTopic as T,
    };
    let p = cx.b.broker.replicas.partition("sweep", 0).unwrap();
    let (start, hw) = (p.log_start_offset(), p.high_watermark());
    assert!(hw > start, "the sweep's topic holds records");
    let alter = |offset: i64| {
        AlterShareGroupOffsetsRequest::default()
            .with_group_id(GroupId(s(GROUP)))
            .with_topics(vec![T::default()
                .with_topic_name(TopicName(s("sweep")))
                .with_partitions(vec![P::default()
                    .with_partition_index(0)
                    .with_start_offset(offset)])])
    };
    check(
        c,
        range,
        |_| alter(start),
        |v, r| {
            assert_eq!(r.error_code, NON_EMPTY_GROUP, "v{v}: a member is in");
        },
    )
    .await;
    let epoch = c
        .call(&heartbeat("m1", 0, Some(&["sweep"])), 1)
        .await
        .member_epoch;
    assert_eq!(c.call(&heartbeat("m1", -1, None), 1).await.member_epoch, -1);
    let _ = epoch;
    let r = c.call(&alter(start), 0).await;
    assert_eq!(r.error_code, 0, "{r:?}");
    assert_eq!(start_offset(c).await, Some(start));
    // A new member acquires from there and accepts the first record: the start moves.
    let topic = cx.topic_id;
    let r = c.call(&fetch("m2", 0, topic, None), 1).await;
    let got = &r.responses[0].partitions[0];
    assert_eq!(got.acquired_records[0].first_offset, start);
    assert_eq!(got.acquired_records[0].delivery_count, 1);
    assert!(!got.records.as_ref().unwrap().is_empty());
    // Where the start stops once `start` is accepted: the next acquired offset (one
    // the member still holds), or the end when only markers follow.
    let next_held = got
        .acquired_records
        .iter()
        .flat_map(|a| a.first_offset..=a.last_offset)
        .find(|o| *o > start);
    let r = c.call(&acknowledge("m2", 1, topic, start, start), 1).await;
    assert_eq!(r.responses[0].partitions[0].error_code, 0);
    assert_eq!(start_offset(c).await, Some(next_held.unwrap_or(hw)));
    // A second acknowledgement of the same offset: no longer held.
    let r = c.call(&acknowledge("m2", 2, topic, start, start), 1).await;
    assert_eq!(
        r.responses[0].partitions[0].error_code,
        INVALID_RECORD_STATE
    );
    // Closing the session gives back the rest; it cannot be used after.
    let close = ShareAcknowledgeRequest::default()
        .with_group_id(Some(GroupId(s(GROUP))))
        .with_member_id(Some(s("m2")))
        .with_share_session_epoch(-1);
    assert_eq!(c.call(&close, 1).await.error_code, 0);
    assert_eq!(c.call(&close, 1).await.error_code, SHARE_SESSION_NOT_FOUND);
}

pub(crate) async fn delete_share_group_offsets(c: &mut Client, _cx: &Sweep<'_>, range: (i16, i16)) {
    use delete_share_group_offsets_request::DeleteShareGroupOffsetsRequestTopic as T;
    check(
        c,
        range,
        |_| {
            DeleteShareGroupOffsetsRequest::default()
                .with_group_id(GroupId(s(GROUP)))
                .with_topics(vec![T::default().with_topic_name(TopicName(s("sweep")))])
        },
        |v, r| {
            assert_eq!(r.error_code, 0, "v{v}: {r:?}");
            assert_eq!(r.responses[0].error_code, 0);
        },
    )
    .await;
    assert_eq!(start_offset(c).await, None);
    // ListGroups (v5 type filter) shows it as a share group; DeleteGroups removes it.
    let r = c
        .call(
            &ListGroupsRequest::default().with_types_filter(vec![s("Share")]),
            5,
        )
        .await;
    let listed: Vec<(&str, &str, &str)> = r
        .groups
        .iter()
        .map(|g| {
            (
                g.group_id.as_str(),
                g.group_type.as_str(),
                g.group_state.as_str(),
            )
        })
        .collect();
    assert_eq!(listed, vec![(GROUP, "share", "Empty")]);
    let r = c
        .call(
            &DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s(GROUP))]),
            2,
        )
        .await;
    assert_eq!(r.results[0].error_code, 0);
    let r = c
        .call(
            &ShareGroupDescribeRequest::default().with_group_ids(vec![GroupId(s(GROUP))]),
            1,
        )
        .await;
    assert_eq!(r.groups[0].error_code, GROUP_ID_NOT_FOUND);
}
