//! Consumer groups: coordinators, membership, committed offsets, and the KIP-848 APIs.

use gregor_broker::handlers::SUPPORTED;
use gregor_protocol::kp::messages::*;

use super::common::Client;
use super::support::{
    check, s, Sweep, GROUP_ID_NOT_FOUND, INVALID_GROUP_ID, INVALID_REQUEST,
    UNKNOWN_TOPIC_OR_PARTITION,
};

pub(crate) async fn find_coordinator(c: &mut Client, cx: &Sweep<'_>, range: (i16, i16)) {
    let (min, max) = range;
    let port = cx.port;
    check(
        c,
        (min, 3),
        |_| FindCoordinatorRequest::default().with_key(s("g")),
        |v, r| {
            assert_eq!(r.error_code, 0, "v{v}");
            assert_eq!(
                (r.node_id.0, r.host.as_str(), r.port),
                (1, "127.0.0.1", port)
            );
        },
    )
    .await;
    check(
        c,
        (4, max),
        |_| {
            FindCoordinatorRequest::default()
                .with_key_type(1)
                .with_coordinator_keys(vec![s("g"), s("t")])
        },
        |v, r| {
            assert_eq!(r.coordinators.len(), 2, "v{v}");
            for (co, key) in r.coordinators.iter().zip(["g", "t"]) {
                assert_eq!(co.key.as_str(), key);
                assert_eq!(co.error_code, 0, "v{v}");
                assert_eq!((co.node_id.0, co.port), (1, port));
            }
        },
    )
    .await;
}

pub(crate) async fn offset_commit(c: &mut Client, cx: &Sweep<'_>, range: (i16, i16)) {
    let topic_id = cx.topic_id;
    // A simple (member-less) commit: offset v on partition 0.
    check(
        c,
        range,
        |v| {
            OffsetCommitRequest::default()
                .with_group_id(GroupId(s("sweep-g")))
                .with_generation_id_or_member_epoch(-1)
                .with_topics(vec![
                    // v10 names the topic by id.
                    offset_commit_request::OffsetCommitRequestTopic::default()
                        .with_name(TopicName(s("sweep")))
                        .with_topic_id(topic_id)
                        .with_partitions(vec![
                            offset_commit_request::OffsetCommitRequestPartition::default()
                                .with_partition_index(0)
                                .with_committed_offset(i64::from(v))
                                .with_committed_metadata(Some(s("m"))),
                            offset_commit_request::OffsetCommitRequestPartition::default()
                                .with_partition_index(5)
                                .with_committed_offset(1),
                        ]),
                ])
        },
        |v, r| {
            let ps = &r.topics[0].partitions;
            if v >= 10 {
                assert_eq!(r.topics[0].topic_id, topic_id, "v{v}");
            } else {
                assert_eq!(r.topics[0].name.as_str(), "sweep", "v{v}");
            }
            assert_eq!((ps[0].partition_index, ps[0].error_code), (0, 0), "v{v}");
            assert_eq!(ps[1].error_code, UNKNOWN_TOPIC_OR_PARTITION, "v{v}");
        },
    )
    .await
}

pub(crate) async fn offset_fetch(c: &mut Client, cx: &Sweep<'_>, range: (i16, i16)) {
    let topic_id = cx.topic_id;
    // The last commit was at OffsetCommit's highest version.
    let last = i64::from(
        SUPPORTED
            .iter()
            .find(|s| s.key == ApiKey::OffsetCommit)
            .unwrap()
            .max,
    );
    check(
        c,
        range,
        |v| {
            if v < 8 {
                return OffsetFetchRequest::default()
                    .with_group_id(GroupId(s("sweep-g")))
                    .with_topics(Some(vec![
                        offset_fetch_request::OffsetFetchRequestTopic::default()
                            .with_name(TopicName(s("sweep")))
                            .with_partition_indexes(vec![0]),
                    ]));
            }
            OffsetFetchRequest::default().with_groups(vec![
                offset_fetch_request::OffsetFetchRequestGroup::default()
                    .with_group_id(GroupId(s("sweep-g")))
                    .with_topics(Some(vec![
                        // v10 names the topic by id.
                        offset_fetch_request::OffsetFetchRequestTopics::default()
                            .with_name(TopicName(s("sweep")))
                            .with_topic_id(topic_id)
                            .with_partition_indexes(vec![0]),
                    ])),
            ])
        },
        |v, r| {
            let (offset, md, code) = if v >= 8 {
                assert_eq!(r.groups.len(), 1, "v{v}");
                assert_eq!(r.groups[0].error_code, 0);
                let t = &r.groups[0].topics[0];
                if v >= 10 {
                    assert_eq!(t.topic_id, topic_id, "v{v}");
                } else {
                    assert_eq!(t.name.as_str(), "sweep", "v{v}");
                }
                let p = &t.partitions[0];
                (
                    p.committed_offset,
                    p.metadata.as_deref().map(str::to_string),
                    p.error_code,
                )
            } else {
                let p = &r.topics[0].partitions[0];
                (
                    p.committed_offset,
                    p.metadata.as_deref().map(str::to_string),
                    p.error_code,
                )
            };
            assert_eq!((offset, md.as_deref(), code), (last, Some("m"), 0), "v{v}");
        },
    )
    .await
}

pub(crate) async fn join_group(c: &mut Client, _cx: &Sweep<'_>, range: (i16, i16)) {
    check(
        c,
        range,
        |_| JoinGroupRequest::default(),
        |v, r| {
            assert_eq!(r.error_code, INVALID_GROUP_ID, "v{v}: empty group id");
            assert_eq!(r.generation_id, -1);
            assert!(r.members.is_empty());
        },
    )
    .await
}

pub(crate) async fn sync_group(c: &mut Client, _cx: &Sweep<'_>, range: (i16, i16)) {
    check(
        c,
        range,
        |_| SyncGroupRequest::default(),
        |v, r| {
            assert_eq!(r.error_code, INVALID_GROUP_ID, "v{v}");
            assert!(r.assignment.is_empty());
        },
    )
    .await
}

pub(crate) async fn heartbeat(c: &mut Client, _cx: &Sweep<'_>, range: (i16, i16)) {
    check(
        c,
        range,
        |_| HeartbeatRequest::default(),
        |v, r| assert_eq!(r.error_code, INVALID_GROUP_ID, "v{v}"),
    )
    .await
}

pub(crate) async fn leave_group(c: &mut Client, _cx: &Sweep<'_>, range: (i16, i16)) {
    check(
        c,
        range,
        |_| LeaveGroupRequest::default(),
        |v, r| assert_eq!(r.error_code, INVALID_GROUP_ID, "v{v}"),
    )
    .await
}

pub(crate) async fn describe_groups(c: &mut Client, _cx: &Sweep<'_>, range: (i16, i16)) {
    check(
        c,
        range,
        |_| DescribeGroupsRequest::default().with_groups(vec![GroupId(s("sweep-g"))]),
        |v, r| {
            let g = &r.groups[0];
            assert_eq!((g.error_code, g.group_id.as_str()), (0, "sweep-g"), "v{v}");
            assert_eq!(g.group_state.as_str(), "Empty", "v{v}");
            assert!(g.members.is_empty());
        },
    )
    .await
}

pub(crate) async fn list_groups(c: &mut Client, _cx: &Sweep<'_>, range: (i16, i16)) {
    check(
        c,
        range,
        |_| ListGroupsRequest::default(),
        |v, r| {
            assert_eq!(r.error_code, 0, "v{v}");
            let ids: Vec<&str> = r.groups.iter().map(|g| g.group_id.as_str()).collect();
            assert_eq!(ids, vec!["sweep-g"], "v{v}");
        },
    )
    .await
}

pub(crate) async fn delete_groups(c: &mut Client, _cx: &Sweep<'_>, range: (i16, i16)) {
    check(
        c,
        range,
        |_| DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s("nope-g"))]),
        |v, r| {
            assert_eq!(r.results[0].group_id.as_str(), "nope-g");
            assert_eq!(r.results[0].error_code, GROUP_ID_NOT_FOUND, "v{v}");
        },
    )
    .await
}

pub(crate) async fn offset_delete(c: &mut Client, _cx: &Sweep<'_>, range: (i16, i16)) {
    check(
        c,
        range,
        |_| {
            OffsetDeleteRequest::default()
                .with_group_id(GroupId(s("sweep-g")))
                .with_topics(vec![
                    offset_delete_request::OffsetDeleteRequestTopic::default()
                        .with_name(TopicName(s("sweep")))
                        .with_partitions(vec![
                            offset_delete_request::OffsetDeleteRequestPartition::default()
                                .with_partition_index(0),
                        ]),
                ])
        },
        |v, r| {
            assert_eq!(r.error_code, 0, "v{v}");
            let p = &r.topics[0].partitions[0];
            assert_eq!((p.partition_index, p.error_code), (0, 0), "v{v}");
        },
    )
    .await;
    let got = c
        .call(
            &OffsetFetchRequest::default()
                .with_group_id(GroupId(s("sweep-g")))
                .with_topics(Some(vec![
                    offset_fetch_request::OffsetFetchRequestTopic::default()
                        .with_name(TopicName(s("sweep")))
                        .with_partition_indexes(vec![0]),
                ])),
            7,
        )
        .await;
    assert_eq!(got.topics[0].partitions[0].committed_offset, -1, "deleted");
}

pub(crate) async fn consumer_group_heartbeat(c: &mut Client, _cx: &Sweep<'_>, range: (i16, i16)) {
    check(
        c,
        range,
        |_| ConsumerGroupHeartbeatRequest::default(),
        |v, r| {
            assert_eq!(r.error_code, INVALID_REQUEST, "v{v}");
            assert_eq!(r.error_message.as_deref(), Some("GroupId can't be empty."));
        },
    )
    .await
}

pub(crate) async fn consumer_group_describe(c: &mut Client, _cx: &Sweep<'_>, range: (i16, i16)) {
    check(
        c,
        range,
        |_| ConsumerGroupDescribeRequest::default().with_group_ids(vec![GroupId(s("nope-g"))]),
        |v, r| {
            assert_eq!(r.groups[0].group_id.as_str(), "nope-g");
            assert_eq!(r.groups[0].error_code, GROUP_ID_NOT_FOUND, "v{v}");
        },
    )
    .await
}
