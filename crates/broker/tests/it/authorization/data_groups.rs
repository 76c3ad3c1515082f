//! Authorization cases: produce, fetch, offsets, metadata, consumer groups.
//!
//! Each group API names a group of its own, so what one case leaves behind (a member
//! that joined, a committed offset) cannot change another's answer.

use bytes::Bytes;
use gregor_protocol::batch::{self, NewRecord};
use gregor_protocol::compression::Codec;
use gregor_protocol::kp::messages::*;
use gregor_security::acl::{AclOperation as Op, ResourceType as Rt};

use super::{
    checked, s, Case, Env, GROUP_AUTHORIZATION_FAILED as GROUP, TOPIC_AUTHORIZATION_FAILED as TOPIC,
};

pub(crate) fn case(key: ApiKey) -> Option<Case> {
    match key {
        ApiKey::ApiVersions => Some(Case::Exempt("no resource: answered before authentication")),
        ApiKey::GetTelemetrySubscriptions | ApiKey::PushTelemetry => Some(Case::Exempt(
            "no resource: Kafka authorizes no telemetry request (KIP-714)",
        )),
        ApiKey::ListGroups => Some(Case::Exempt(
            "never refused: lists only the groups the principal may describe",
        )),
        ApiKey::Produce => checked(produce, TOPIC, &[(Op::Write, Rt::Topic, "t")]),
        ApiKey::Fetch => checked(fetch, TOPIC, &[(Op::Read, Rt::Topic, "t")]),
        ApiKey::ListOffsets => checked(list_offsets, TOPIC, &[(Op::Describe, Rt::Topic, "t")]),
        ApiKey::Metadata => checked(metadata, TOPIC, &[(Op::Describe, Rt::Topic, "t")]),
        ApiKey::OffsetForLeaderEpoch => checked(
            offset_for_leader_epoch,
            TOPIC,
            &[(Op::Describe, Rt::Topic, "t")],
        ),
        ApiKey::DescribeTopicPartitions => checked(
            describe_topic_partitions,
            TOPIC,
            &[(Op::Describe, Rt::Topic, "t")],
        ),
        ApiKey::DescribeProducers => {
            checked(describe_producers, TOPIC, &[(Op::Read, Rt::Topic, "t")])
        }
        ApiKey::FindCoordinator => checked(
            find_coordinator,
            GROUP,
            &[(Op::Describe, Rt::Group, "g-find")],
        ),
        ApiKey::OffsetCommit => checked(
            offset_commit,
            GROUP,
            &[
                (Op::Read, Rt::Group, "g-commit"),
                (Op::Read, Rt::Topic, "t"),
            ],
        ),
        ApiKey::OffsetFetch => checked(
            offset_fetch,
            GROUP,
            &[
                (Op::Describe, Rt::Group, "g-fetch"),
                (Op::Describe, Rt::Topic, "t"),
            ],
        ),
        ApiKey::OffsetDelete => checked(
            offset_delete,
            GROUP,
            &[
                (Op::Delete, Rt::Group, "g-odel"),
                (Op::Read, Rt::Topic, "t"),
            ],
        ),
        ApiKey::JoinGroup => checked(join_group, GROUP, &[(Op::Read, Rt::Group, "g-join")]),
        ApiKey::SyncGroup => checked(sync_group, GROUP, &[(Op::Read, Rt::Group, "g-sync")]),
        ApiKey::Heartbeat => checked(heartbeat, GROUP, &[(Op::Read, Rt::Group, "g-hb")]),
        ApiKey::LeaveGroup => checked(leave_group, GROUP, &[(Op::Read, Rt::Group, "g-leave")]),
        ApiKey::DescribeGroups => checked(
            describe_groups,
            GROUP,
            &[(Op::Describe, Rt::Group, "g-desc")],
        ),
        ApiKey::DeleteGroups => checked(delete_groups, GROUP, &[(Op::Delete, Rt::Group, "g-del")]),
        ApiKey::ConsumerGroupHeartbeat => checked(
            consumer_group_heartbeat,
            GROUP,
            &[
                (Op::Read, Rt::Group, "g-cgh"),
                (Op::Describe, Rt::Topic, "t"),
            ],
        ),
        ApiKey::ConsumerGroupDescribe => checked(
            consumer_group_describe,
            GROUP,
            &[(Op::Describe, Rt::Group, "g-cgd")],
        ),
        _ => None,
    }
}

fn one_record_batch() -> Bytes {
    let recs = [NewRecord {
        key: Some(b"k"),
        value: Some(b"v"),
        timestamp: gregor_broker::util::now_ms(),
        headers: &[],
    }];
    Bytes::from(batch::build(0, Codec::None, &recs).unwrap())
}

fn t() -> TopicName {
    TopicName(s("t"))
}

fn g(name: &str) -> GroupId {
    GroupId(s(name))
}

fn produce(env: &Env, v: i16) -> RequestKind {
    let topic = produce_request::TopicProduceData::default();
    let topic = if v >= 13 {
        topic.with_topic_id(env.topic_id)
    } else {
        topic.with_name(t())
    };
    RequestKind::Produce(
        ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(5000)
            .with_topic_data(vec![topic.with_partition_data(vec![
                produce_request::PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(one_record_batch())),
            ])]),
    )
}

fn fetch(env: &Env, v: i16) -> RequestKind {
    let topic = fetch_request::FetchTopic::default();
    let topic = if v >= 13 {
        topic.with_topic_id(env.topic_id)
    } else {
        topic.with_topic(t())
    };
    RequestKind::Fetch(
        FetchRequest::default()
            .with_max_wait_ms(0)
            .with_topics(vec![topic.with_partitions(vec![
                fetch_request::FetchPartition::default()
                    .with_partition(0)
                    .with_partition_max_bytes(1 << 20),
            ])]),
    )
}

fn list_offsets(_: &Env, _: i16) -> RequestKind {
    RequestKind::ListOffsets(
        ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![list_offsets_request::ListOffsetsTopic::default()
                .with_name(t())
                .with_partitions(vec![
                    list_offsets_request::ListOffsetsPartition::default().with_timestamp(-1),
                ])]),
    )
}

fn metadata(_: &Env, v: i16) -> RequestKind {
    let topic = metadata_request::MetadataRequestTopic::default().with_name(Some(t()));
    RequestKind::Metadata(
        MetadataRequest::default()
            .with_topics(Some(vec![topic]))
            // v0-v3 have no such field (and always allow it).
            .with_allow_auto_topic_creation(v < 4),
    )
}

fn offset_for_leader_epoch(_: &Env, _: i16) -> RequestKind {
    RequestKind::OffsetForLeaderEpoch(OffsetForLeaderEpochRequest::default().with_topics(vec![
        offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
            .with_topic(t())
            .with_partitions(vec![
                offset_for_leader_epoch_request::OffsetForLeaderPartition::default(),
            ]),
    ]))
}

fn describe_topic_partitions(_: &Env, _: i16) -> RequestKind {
    RequestKind::DescribeTopicPartitions(DescribeTopicPartitionsRequest::default().with_topics(
        vec![describe_topic_partitions_request::TopicRequest::default().with_name(t())],
    ))
}

fn describe_producers(_: &Env, _: i16) -> RequestKind {
    RequestKind::DescribeProducers(DescribeProducersRequest::default().with_topics(vec![
        describe_producers_request::TopicRequest::default()
            .with_name(t())
            .with_partition_indexes(vec![0]),
    ]))
}

fn find_coordinator(_: &Env, v: i16) -> RequestKind {
    let req = FindCoordinatorRequest::default();
    RequestKind::FindCoordinator(if v >= 4 {
        req.with_coordinator_keys(vec![s("g-find")])
    } else {
        req.with_key(s("g-find"))
    })
}

fn offset_commit(env: &Env, v: i16) -> RequestKind {
    let topic = offset_commit_request::OffsetCommitRequestTopic::default();
    let topic = if v >= 10 {
        topic.with_topic_id(env.topic_id)
    } else {
        topic.with_name(t())
    };
    RequestKind::OffsetCommit(
        OffsetCommitRequest::default()
            .with_group_id(g("g-commit"))
            .with_topics(vec![topic.with_partitions(vec![
                offset_commit_request::OffsetCommitRequestPartition::default(),
            ])]),
    )
}

fn offset_fetch(env: &Env, v: i16) -> RequestKind {
    if v < 8 {
        return RequestKind::OffsetFetch(
            OffsetFetchRequest::default()
                .with_group_id(g("g-fetch"))
                .with_topics(Some(vec![
                    offset_fetch_request::OffsetFetchRequestTopic::default()
                        .with_name(t())
                        .with_partition_indexes(vec![0]),
                ])),
        );
    }
    let topic = offset_fetch_request::OffsetFetchRequestTopics::default();
    let topic = if v >= 10 {
        topic.with_topic_id(env.topic_id)
    } else {
        topic.with_name(t())
    };
    RequestKind::OffsetFetch(OffsetFetchRequest::default().with_groups(
        vec![offset_fetch_request::OffsetFetchRequestGroup::default()
            .with_group_id(g("g-fetch"))
            .with_topics(Some(vec![topic.with_partition_indexes(vec![0])]))],
    ))
}

fn offset_delete(_: &Env, _: i16) -> RequestKind {
    RequestKind::OffsetDelete(
        OffsetDeleteRequest::default()
            .with_group_id(g("g-odel"))
            .with_topics(vec![
                offset_delete_request::OffsetDeleteRequestTopic::default()
                    .with_name(t())
                    .with_partitions(vec![
                        offset_delete_request::OffsetDeleteRequestPartition::default(),
                    ]),
            ]),
    )
}

fn join_group(_: &Env, _: i16) -> RequestKind {
    RequestKind::JoinGroup(
        JoinGroupRequest::default()
            .with_group_id(g("g-join"))
            .with_session_timeout_ms(10_000)
            .with_rebalance_timeout_ms(10_000)
            .with_protocol_type(s("authz"))
            .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
            )
            .with_name(s("p"))]),
    )
}

fn sync_group(_: &Env, _: i16) -> RequestKind {
    RequestKind::SyncGroup(
        SyncGroupRequest::default()
            .with_group_id(g("g-sync"))
            .with_generation_id(1)
            .with_member_id(s("m")),
    )
}

fn heartbeat(_: &Env, _: i16) -> RequestKind {
    RequestKind::Heartbeat(
        HeartbeatRequest::default()
            .with_group_id(g("g-hb"))
            .with_generation_id(1)
            .with_member_id(s("m")),
    )
}

fn leave_group(_: &Env, v: i16) -> RequestKind {
    let req = LeaveGroupRequest::default().with_group_id(g("g-leave"));
    RequestKind::LeaveGroup(if v >= 3 {
        req.with_members(vec![
            leave_group_request::MemberIdentity::default().with_member_id(s("m"))
        ])
    } else {
        req.with_member_id(s("m"))
    })
}

fn describe_groups(_: &Env, _: i16) -> RequestKind {
    RequestKind::DescribeGroups(DescribeGroupsRequest::default().with_groups(vec![g("g-desc")]))
}

fn delete_groups(_: &Env, _: i16) -> RequestKind {
    RequestKind::DeleteGroups(DeleteGroupsRequest::default().with_groups_names(vec![g("g-del")]))
}

fn consumer_group_heartbeat(_: &Env, v: i16) -> RequestKind {
    // v1 (KIP-1082): the client chooses its member id.
    let member = if v >= 1 { "m-authz-cgh" } else { "" };
    RequestKind::ConsumerGroupHeartbeat(
        ConsumerGroupHeartbeatRequest::default()
            .with_group_id(g("g-cgh"))
            .with_member_id(s(member))
            .with_rebalance_timeout_ms(10_000)
            .with_subscribed_topic_names(Some(vec![t()]))
            .with_topic_partitions(Some(Vec::new())),
    )
}

fn consumer_group_describe(_: &Env, _: i16) -> RequestKind {
    RequestKind::ConsumerGroupDescribe(
        ConsumerGroupDescribeRequest::default().with_group_ids(vec![g("g-cgd")]),
    )
}

/// What the table cannot show: answers that filter rather than refuse, a hidden topic's
/// answer that does not depend on its existence, and a follower's fetch without
/// CLUSTER_ACTION.
#[tokio::test]
async fn hidden_topics_are_filtered_or_refused_alike() {
    let b = super::common::TestBroker::start(&[("allow.everyone.if.no.acl.found", "false")]).await;
    super::set_acls(&b, &[(Op::Create, Rt::Cluster, "kafka-cluster")]).await;
    let mut setup = b.connect().await;
    setup.create_topic("t", 1).await;
    setup.create_topic("hidden", 1).await;
    super::set_acls(&b, &[(Op::Describe, Rt::Topic, "t")]).await;
    let mut c = b.connect().await;

    // All topics: the hidden one is left out, and nothing is refused.
    let all = RequestKind::Metadata(MetadataRequest::default().with_topics(None));
    let seen = super::answer(&mut c, ApiKey::Metadata, 12, &all).await;
    assert!(seen.contains("\"t\"") && !seen.contains("hidden"), "{seen}");
    assert!(!super::error_codes(&seen).contains(&TOPIC), "{seen}");

    // Named: an existing hidden topic and a missing one get the same answer.
    let named = |name: &str| {
        RequestKind::Metadata(MetadataRequest::default().with_topics(Some(vec![
            metadata_request::MetadataRequestTopic::default().with_name(Some(TopicName(s(name)))),
        ])))
    };
    let hidden = super::answer(&mut c, ApiKey::Metadata, 12, &named("hidden")).await;
    let missing = super::answer(&mut c, ApiKey::Metadata, 12, &named("nope")).await;
    assert!(super::error_codes(&hidden).contains(&TOPIC), "{hidden}");
    assert_eq!(hidden.replace("hidden", "nope"), missing);

    // A follower's fetch needs CLUSTER_ACTION: every partition is refused without it.
    let follower = RequestKind::Fetch(
        FetchRequest::default()
            .with_replica_id(BrokerId(1))
            .with_topics(vec![fetch_request::FetchTopic::default()
                .with_topic(t())
                .with_partitions(vec![
                    fetch_request::FetchPartition::default().with_partition_max_bytes(1 << 20)
                ])]),
    );
    let refused = super::answer(&mut c, ApiKey::Fetch, 12, &follower).await;
    assert_eq!(super::error_codes(&refused), vec![0, TOPIC], "{refused}");
    b.stop().await;
}
