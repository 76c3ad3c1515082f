//! Authorization cases: share groups (KIP-932). Each API names a share group of its
//! own. As in Kafka: READ on the group for the heartbeat, fetch, acknowledgement and
//! offset reset (with DESCRIBE on the subscribed topics for the heartbeat, READ on the
//! fetched or reset topics), DESCRIBE for the describe APIs, DELETE to delete offsets.

use gregor_protocol::kp::messages::*;
use gregor_security::acl::{AclOperation as Op, ResourceType as Rt};

use super::{checked, s, Case, Env, GROUP_AUTHORIZATION_FAILED as GROUP};

pub(crate) fn case(key: ApiKey) -> Option<Case> {
    match key {
        ApiKey::ShareGroupHeartbeat => checked(
            heartbeat,
            GROUP,
            &[
                (Op::Read, Rt::Group, "sg-hb"),
                (Op::Describe, Rt::Topic, "t"),
            ],
        ),
        ApiKey::ShareGroupDescribe => {
            checked(describe, GROUP, &[(Op::Describe, Rt::Group, "sg-desc")])
        }
        ApiKey::ShareFetch => checked(
            fetch,
            GROUP,
            &[
                (Op::Read, Rt::Group, "sg-fetch"),
                (Op::Read, Rt::Topic, "t"),
            ],
        ),
        ApiKey::ShareAcknowledge => checked(
            acknowledge,
            GROUP,
            &[(Op::Read, Rt::Group, "sg-ack"), (Op::Read, Rt::Topic, "t")],
        ),
        ApiKey::DescribeShareGroupOffsets => checked(
            describe_offsets,
            GROUP,
            &[
                (Op::Describe, Rt::Group, "sg-dso"),
                (Op::Describe, Rt::Topic, "t"),
            ],
        ),
        ApiKey::AlterShareGroupOffsets => checked(
            alter_offsets,
            GROUP,
            &[(Op::Read, Rt::Group, "sg-aso"), (Op::Read, Rt::Topic, "t")],
        ),
        ApiKey::DeleteShareGroupOffsets => checked(
            delete_offsets,
            GROUP,
            &[
                (Op::Delete, Rt::Group, "sg-dlo"),
                (Op::Read, Rt::Topic, "t"),
            ],
        ),
        _ => None,
    }
}

fn g(name: &str) -> GroupId {
    GroupId(s(name))
}

fn heartbeat(_: &Env, _: i16) -> RequestKind {
    RequestKind::ShareGroupHeartbeat(
        ShareGroupHeartbeatRequest::default()
            .with_group_id(g("sg-hb"))
            .with_member_id(s("m-authz-sg"))
            .with_subscribed_topic_names(Some(vec![TopicName(s("t"))])),
    )
}

fn describe(_: &Env, _: i16) -> RequestKind {
    RequestKind::ShareGroupDescribe(
        ShareGroupDescribeRequest::default().with_group_ids(vec![g("sg-desc")]),
    )
}

fn fetch(env: &Env, _: i16) -> RequestKind {
    use share_fetch_request::{FetchPartition, FetchTopic};
    RequestKind::ShareFetch(
        ShareFetchRequest::default()
            .with_group_id(Some(g("sg-fetch")))
            .with_member_id(Some(s("m-authz-sf")))
            .with_max_bytes(1 << 20)
            .with_max_records(10)
            .with_topics(vec![FetchTopic::default()
                .with_topic_id(env.topic_id)
                .with_partitions(vec![
                    FetchPartition::default().with_partition_index(0)
                ])]),
    )
}

fn acknowledge(env: &Env, _: i16) -> RequestKind {
    use share_acknowledge_request::{AcknowledgePartition, AcknowledgeTopic};
    RequestKind::ShareAcknowledge(
        ShareAcknowledgeRequest::default()
            .with_group_id(Some(g("sg-ack")))
            .with_member_id(Some(s("m-authz-sa")))
            .with_share_session_epoch(1)
            .with_topics(vec![AcknowledgeTopic::default()
                .with_topic_id(env.topic_id)
                .with_partitions(vec![
                    AcknowledgePartition::default().with_partition_index(0)
                ])]),
    )
}

fn describe_offsets(_: &Env, _: i16) -> RequestKind {
    use describe_share_group_offsets_request::{
        DescribeShareGroupOffsetsRequestGroup as G, DescribeShareGroupOffsetsRequestTopic as T,
    };
    RequestKind::DescribeShareGroupOffsets(DescribeShareGroupOffsetsRequest::default().with_groups(
        vec![G::default().with_group_id(g("sg-dso")).with_topics(Some(vec![T::default()
            .with_topic_name(TopicName(s("t")))
            .with_partitions(vec![0])]))],
    ))
}

fn alter_offsets(_: &Env, _: i16) -> RequestKind {
    use alter_share_group_offsets_request::{
        AlterShareGroupOffsetsRequestPartition as P, AlterShareGroupOffsetsRequestTopic as T,
    };
    RequestKind::AlterShareGroupOffsets(
        AlterShareGroupOffsetsRequest::default()
            .with_group_id(g("sg-aso"))
            .with_topics(vec![T::default()
                .with_topic_name(TopicName(s("t")))
                .with_partitions(vec![P::default()
                    .with_partition_index(0)
                    .with_start_offset(0)])]),
    )
}

fn delete_offsets(_: &Env, _: i16) -> RequestKind {
    use delete_share_group_offsets_request::DeleteShareGroupOffsetsRequestTopic as T;
    RequestKind::DeleteShareGroupOffsets(
        DeleteShareGroupOffsetsRequest::default()
            .with_group_id(g("sg-dlo"))
            .with_topics(vec![T::default().with_topic_name(TopicName(s("t")))]),
    )
}
