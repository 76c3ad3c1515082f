//! Every API in the registry, at both ends of its advertised range, against one broker
//! with real state (a topic with records, a group with offsets): each answer is checked
//! for its error codes and its contents, so an API that decodes but answers wrongly at
//! one version fails here. (A listed API without a handler would close the connection.)

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use bytes::Bytes;
use common::{Client, TestBroker};
use gregor_broker::handlers::SUPPORTED;
use gregor_protocol::batch::{self, NewRecord};
use gregor_protocol::compression::Codec;
use gregor_protocol::kp::messages::*;
use gregor_protocol::kp::protocol::{Request, StrBytes};

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn one_record_batch(value: &[u8]) -> Vec<u8> {
    let recs = [NewRecord {
        key: Some(b"k"),
        value: Some(value),
        timestamp: gregor_broker::util::now_ms(),
        headers: &[],
    }];
    batch::build(0, Codec::None, &recs).unwrap()
}

/// (offset, value) of every record in a fetch's record bytes.
fn fetched_values(records: &[u8]) -> Vec<(i64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < records.len() {
        let h = batch::BatchHeader::parse(&records[at..]).unwrap();
        let whole = &records[at..at + h.total_size()];
        let mut scratch = Vec::new();
        let data = batch::records_section(&h, whole, &mut scratch, 1 << 20).unwrap();
        for r in gregor_protocol::records::RecordWalker::new(data, h.record_count) {
            let r = r.unwrap();
            out.push((
                h.base_offset + i64::from(r.offset_delta),
                r.value.unwrap().to_vec(),
            ));
        }
        at += h.total_size();
    }
    out
}

/// Calls `make(v)` at each advertised end of the range (once if they are equal) and
/// checks the answer with `expect(v, &answer)`.
async fn check<R: Request>(
    c: &mut Client,
    (min, max): (i16, i16),
    make: impl Fn(i16) -> R,
    expect: impl Fn(i16, &R::Response),
) {
    let versions: &[i16] = if min == max { &[min] } else { &[min, max] };
    for &v in versions {
        eprintln!("sweep: {:?} v{v}", ApiKey::try_from(R::KEY));
        let answer = c.call(&make(v), v).await;
        expect(v, &answer);
    }
}

const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const TOPIC_ALREADY_EXISTS: i16 = 36;
const INVALID_GROUP_ID: i16 = 24;
const INVALID_PARTITIONS: i16 = 37;
const INVALID_REQUEST: i16 = 42;
const INVALID_CONFIG: i16 = 40;
const INVALID_PRODUCER_ID_MAPPING: i16 = 49;
const GROUP_ID_NOT_FOUND: i16 = 69;
const TRANSACTIONAL_ID_NOT_FOUND: i16 = 105;

#[tokio::test]
async fn every_advertised_version_answers_with_the_right_codes_and_contents() {
    let b = TestBroker::start(&[("group.initial.rebalance.delay.ms", "0")]).await;
    let port = i32::from(b.addr.port());
    let dir = b.dir.path().display().to_string();
    let mut c = b.connect().await;
    c.create_topic("sweep", 1).await;
    let topic_id = b.broker.metadata.image().topic("sweep").unwrap().id;
    let c = &mut c;
    // Produce, fetch and offset APIs come first in the registry; their later checks
    // rely on what the earlier ones did, so the registry's order is asserted.
    let order: Vec<ApiKey> = SUPPORTED.iter().map(|s| s.key).collect();
    assert_eq!(
        &order[..4],
        &[
            ApiKey::Produce,
            ApiKey::Fetch,
            ApiKey::ListOffsets,
            ApiKey::Metadata
        ]
    );

    for spec in SUPPORTED {
        // Produce v0-v2 are listed for librdkafka's feature detection only.
        let min = if spec.key == ApiKey::Produce {
            3
        } else {
            spec.min
        };
        let range = (min, spec.max);
        match spec.key {
            ApiKey::Produce => {
                let base = std::cell::Cell::new(0i64);
                check(
                    c,
                    range,
                    |v| {
                        // v13 names the topic by id.
                        let topic = produce_request::TopicProduceData::default();
                        let topic = if v >= 13 {
                            topic.with_topic_id(topic_id)
                        } else {
                            topic.with_name(TopicName(s("sweep")))
                        };
                        ProduceRequest::default()
                            .with_acks(-1)
                            .with_timeout_ms(5000)
                            .with_topic_data(vec![topic.with_partition_data(vec![
                                produce_request::PartitionProduceData::default()
                                    .with_index(0)
                                    .with_records(Some(Bytes::from(one_record_batch(b"v")))),
                            ])])
                    },
                    |v, r| {
                        let p = &r.responses[0].partition_responses[0];
                        if v >= 13 {
                            assert_eq!(r.responses[0].topic_id, topic_id, "v{v}");
                        } else {
                            assert_eq!(r.responses[0].name.as_str(), "sweep", "v{v}");
                        }
                        assert_eq!((p.index, p.error_code), (0, 0), "v{v}");
                        assert_eq!(p.base_offset, base.get(), "v{v}: offsets in order");
                        if v >= 5 {
                            assert_eq!(p.log_start_offset, 0, "v{v}");
                        }
                        base.set(base.get() + 1);
                    },
                )
                .await
            }
            ApiKey::Fetch => {
                check(
                    c,
                    range,
                    |v| {
                        let topic = fetch_request::FetchTopic::default();
                        let topic = if v >= 13 {
                            topic.with_topic_id(topic_id)
                        } else {
                            topic.with_topic(TopicName(s("sweep")))
                        };
                        FetchRequest::default()
                            .with_replica_id(BrokerId(-1))
                            .with_max_bytes(1 << 20)
                            .with_session_epoch(-1)
                            .with_topics(vec![topic.with_partitions(vec![
                                fetch_request::FetchPartition::default()
                                    .with_partition(0)
                                    .with_fetch_offset(0)
                                    .with_partition_max_bytes(1 << 20),
                            ])])
                    },
                    |v, r| {
                        assert_eq!(r.error_code, 0, "v{v}");
                        let t = &r.responses[0];
                        if v >= 13 {
                            assert_eq!(t.topic_id, topic_id, "v{v}: by topic id");
                        } else {
                            assert_eq!(t.topic.as_str(), "sweep", "v{v}: by name");
                        }
                        let p = &t.partitions[0];
                        assert_eq!((p.error_code, p.high_watermark), (0, 2), "v{v}");
                        assert_eq!(p.last_stable_offset, 2, "v{v}");
                        assert_eq!(
                            fetched_values(p.records.as_ref().unwrap()),
                            vec![(0, b"v".to_vec()), (1, b"v".to_vec())],
                            "v{v}"
                        );
                    },
                )
                .await
            }
            ApiKey::ListOffsets => {
                check(
                    c,
                    range,
                    |_| {
                        ListOffsetsRequest::default()
                            .with_replica_id(BrokerId(-1))
                            .with_topics(vec![list_offsets_request::ListOffsetsTopic::default()
                                .with_name(TopicName(s("sweep")))
                                .with_partitions(vec![
                                    list_offsets_request::ListOffsetsPartition::default()
                                        .with_partition_index(0)
                                        .with_timestamp(-1),
                                    list_offsets_request::ListOffsetsPartition::default()
                                        .with_partition_index(1)
                                        .with_timestamp(-2),
                                ])])
                    },
                    |v, r| {
                        let ps = &r.topics[0].partitions;
                        assert_eq!((ps[0].error_code, ps[0].offset), (0, 2), "v{v}: latest");
                        assert_eq!(ps[1].error_code, UNKNOWN_TOPIC_OR_PARTITION, "v{v}");
                    },
                )
                .await
            }
            ApiKey::Metadata => {
                let user_topics = |r: &MetadataResponse| -> Vec<String> {
                    r.topics
                        .iter()
                        .filter_map(|t| t.name.as_ref().map(|n| n.to_string()))
                        .filter(|n| !n.starts_with("__"))
                        .collect()
                };
                // v0: an empty list means every topic; later: null means every topic.
                check(
                    c,
                    range,
                    |v| {
                        MetadataRequest::default()
                            .with_topics(if v == 0 { Some(vec![]) } else { None })
                            .with_allow_auto_topic_creation(v < 4)
                    },
                    |v, r| {
                        assert_eq!(r.brokers.len(), 1, "v{v}");
                        let br = &r.brokers[0];
                        assert_eq!(
                            (br.node_id.0, br.host.as_str(), br.port),
                            (1, "127.0.0.1", port)
                        );
                        assert_eq!(user_topics(r), vec!["sweep".to_string()], "v{v}");
                        let t = r
                            .topics
                            .iter()
                            .find(|t| t.name.as_ref().map(|n| n.as_str()) == Some("sweep"))
                            .unwrap();
                        assert_eq!(t.error_code, 0);
                        assert_eq!(t.partitions.len(), 1);
                        assert_eq!(t.partitions[0].leader_id.0, 1);
                        if v >= 10 {
                            assert_eq!(t.topic_id, topic_id, "v{v}");
                        }
                        if v >= 1 {
                            assert_eq!(r.controller_id.0, 1, "v{v}");
                        }
                    },
                )
                .await;
                check(
                    c,
                    (1, spec.max),
                    |_| MetadataRequest::default().with_topics(Some(vec![])),
                    |v, r| assert!(r.topics.is_empty(), "v{v}: an empty list names no topic"),
                )
                .await;
            }
            ApiKey::ApiVersions => {
                check(
                    c,
                    range,
                    |_| {
                        ApiVersionsRequest::default()
                            .with_client_software_name(s("t"))
                            .with_client_software_version(s("1"))
                    },
                    |v, r| {
                        assert_eq!(r.error_code, 0, "v{v}");
                        let got: Vec<(i16, i16, i16)> = r
                            .api_keys
                            .iter()
                            .map(|k| (k.api_key, k.min_version, k.max_version))
                            .collect();
                        let want: Vec<(i16, i16, i16)> = SUPPORTED
                            .iter()
                            .map(|s| (s.key as i16, s.min, s.max))
                            .collect();
                        assert_eq!(got, want, "v{v}: exactly the registry");
                        // v3+ (KIP-584): a new cluster's finalized feature levels.
                        let finalized: Vec<(String, i16)> = r
                            .finalized_features
                            .iter()
                            .map(|f| (f.name.to_string(), f.max_version_level))
                            .collect();
                        if v >= 3 {
                            assert!(finalized.contains(&("transaction.version".into(), 2)));
                            assert_eq!(r.supported_features.len(), 3, "v{v}");
                            assert!(r.finalized_features_epoch >= 0, "v{v}");
                        } else {
                            assert!(finalized.is_empty(), "v{v}");
                        }
                    },
                )
                .await
            }
            ApiKey::CreateTopics => {
                check(
                    c,
                    range,
                    |v| {
                        CreateTopicsRequest::default()
                            .with_timeout_ms(10_000)
                            .with_topics(vec![
                                create_topics_request::CreatableTopic::default()
                                    .with_name(TopicName(s(&format!("ct{v}"))))
                                    .with_num_partitions(3)
                                    .with_replication_factor(1),
                                create_topics_request::CreatableTopic::default()
                                    .with_name(TopicName(s("sweep")))
                                    .with_num_partitions(1)
                                    .with_replication_factor(1),
                            ])
                    },
                    |v, r| {
                        let t = &r.topics;
                        assert_eq!(t[0].name.as_str(), format!("ct{v}"));
                        assert_eq!(t[0].error_code, 0, "v{v}");
                        if v >= 5 {
                            assert_eq!((t[0].num_partitions, t[0].replication_factor), (3, 1));
                        }
                        assert_eq!(t[1].error_code, TOPIC_ALREADY_EXISTS, "v{v}");
                    },
                )
                .await;
                for v in [range.0, range.1] {
                    let name = format!("ct{v}");
                    assert!(
                        b.broker.metadata.image().topic(&name).is_some(),
                        "{name} exists"
                    );
                }
            }
            ApiKey::DeleteTopics => {
                // Deletes what CreateTopics made at its two versions (v2 and v7).
                let created = [2, 7];
                let at = std::cell::Cell::new(0usize);
                check(
                    c,
                    range,
                    |v| {
                        let name = format!("ct{}", created[at.get()]);
                        let req = DeleteTopicsRequest::default().with_timeout_ms(10_000);
                        if v < 6 {
                            return req
                                .with_topic_names(vec![TopicName(s(&name)), TopicName(s("nope"))]);
                        }
                        req.with_topics(vec![
                            delete_topics_request::DeleteTopicState::default()
                                .with_name(Some(TopicName(s(&name)))),
                            delete_topics_request::DeleteTopicState::default()
                                .with_name(Some(TopicName(s("nope")))),
                        ])
                    },
                    |v, r| {
                        let name = format!("ct{}", created[at.get()]);
                        let rs = &r.responses;
                        assert_eq!(
                            rs[0].name.as_ref().map(|n| n.as_str()),
                            Some(name.as_str()),
                            "v{v}"
                        );
                        assert_eq!(rs[0].error_code, 0, "v{v}");
                        assert_eq!(rs[1].error_code, UNKNOWN_TOPIC_OR_PARTITION, "v{v}");
                        at.set(at.get() + 1);
                    },
                )
                .await;
                for name in ["ct2", "ct7"] {
                    assert!(
                        b.broker.metadata.image().topic(name).is_none(),
                        "{name} deleted"
                    );
                }
            }
            ApiKey::FindCoordinator => {
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
                    (4, spec.max),
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
            ApiKey::OffsetCommit => {
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
            ApiKey::OffsetFetch => {
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
            ApiKey::JoinGroup => {
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
            ApiKey::SyncGroup => {
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
            ApiKey::Heartbeat => {
                check(
                    c,
                    range,
                    |_| HeartbeatRequest::default(),
                    |v, r| assert_eq!(r.error_code, INVALID_GROUP_ID, "v{v}"),
                )
                .await
            }
            ApiKey::LeaveGroup => {
                check(
                    c,
                    range,
                    |_| LeaveGroupRequest::default(),
                    |v, r| assert_eq!(r.error_code, INVALID_GROUP_ID, "v{v}"),
                )
                .await
            }
            ApiKey::DescribeGroups => {
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
            ApiKey::ListGroups => {
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
            ApiKey::DeleteGroups => {
                check(
                    c,
                    range,
                    |_| {
                        DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s("nope-g"))])
                    },
                    |v, r| {
                        assert_eq!(r.results[0].group_id.as_str(), "nope-g");
                        assert_eq!(r.results[0].error_code, GROUP_ID_NOT_FOUND, "v{v}");
                    },
                )
                .await
            }
            ApiKey::OffsetDelete => {
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
            ApiKey::ConsumerGroupHeartbeat => {
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
            ApiKey::ConsumerGroupDescribe => {
                check(
                    c,
                    range,
                    |_| {
                        ConsumerGroupDescribeRequest::default()
                            .with_group_ids(vec![GroupId(s("nope-g"))])
                    },
                    |v, r| {
                        assert_eq!(r.groups[0].group_id.as_str(), "nope-g");
                        assert_eq!(r.groups[0].error_code, GROUP_ID_NOT_FOUND, "v{v}");
                    },
                )
                .await
            }
            ApiKey::DescribeConfigs => {
                check(
                    c,
                    range,
                    |_| {
                        DescribeConfigsRequest::default().with_resources(vec![
                            describe_configs_request::DescribeConfigsResource::default()
                                .with_resource_type(2)
                                .with_resource_name(s("sweep"))
                                .with_configuration_keys(Some(vec![s("cleanup.policy")])),
                            describe_configs_request::DescribeConfigsResource::default()
                                .with_resource_type(2)
                                .with_resource_name(s("nope")),
                        ])
                    },
                    |v, r| {
                        let t = &r.results[0];
                        assert_eq!(
                            (t.error_code, t.resource_name.as_str()),
                            (0, "sweep"),
                            "v{v}"
                        );
                        let cfg: Vec<(&str, Option<&str>)> = t
                            .configs
                            .iter()
                            .map(|c| (c.name.as_str(), c.value.as_deref()))
                            .collect();
                        assert_eq!(cfg, vec![("cleanup.policy", Some("delete"))], "v{v}");
                        assert_eq!(r.results[1].error_code, UNKNOWN_TOPIC_OR_PARTITION, "v{v}");
                    },
                )
                .await
            }
            ApiKey::AlterConfigs => {
                check(
                    c,
                    range,
                    |_| {
                        AlterConfigsRequest::default()
                            .with_validate_only(true)
                            .with_resources(vec![
                                alter_configs_request::AlterConfigsResource::default()
                                    .with_resource_type(2)
                                    .with_resource_name(s("sweep"))
                                    .with_configs(vec![
                                        alter_configs_request::AlterableConfig::default()
                                            .with_name(s("retention.ms"))
                                            .with_value(Some(s("1000"))),
                                    ]),
                                alter_configs_request::AlterConfigsResource::default()
                                    .with_resource_type(2)
                                    .with_resource_name(s("nope")),
                            ])
                    },
                    |v, r| {
                        assert_eq!(r.responses[0].error_code, 0, "v{v}");
                        assert_eq!(
                            r.responses[1].error_code, UNKNOWN_TOPIC_OR_PARTITION,
                            "v{v}"
                        );
                    },
                )
                .await
            }
            ApiKey::IncrementalAlterConfigs => {
                check(
                    c,
                    range,
                    |_| {
                        IncrementalAlterConfigsRequest::default()
                            .with_validate_only(true)
                            .with_resources(vec![
                                incremental_alter_configs_request::AlterConfigsResource::default()
                                    .with_resource_type(2)
                                    .with_resource_name(s("sweep"))
                                    .with_configs(vec![
                                    incremental_alter_configs_request::AlterableConfig::default()
                                        .with_name(s("no.such.config"))
                                        .with_value(Some(s("1"))),
                                ]),
                            ])
                    },
                    |v, r| assert_eq!(r.responses[0].error_code, INVALID_CONFIG, "v{v}"),
                )
                .await
            }
            ApiKey::CreatePartitions => {
                check(
                    c,
                    range,
                    |_| {
                        CreatePartitionsRequest::default()
                            .with_validate_only(true)
                            .with_timeout_ms(10_000)
                            .with_topics(vec![
                                create_partitions_request::CreatePartitionsTopic::default()
                                    .with_name(TopicName(s("sweep")))
                                    .with_count(1),
                                create_partitions_request::CreatePartitionsTopic::default()
                                    .with_name(TopicName(s("sweep")))
                                    .with_count(3),
                            ])
                    },
                    |v, r| {
                        // Duplicates in one request are both refused, as Kafka does.
                        let got: Vec<(i16, Option<&str>)> = r
                            .results
                            .iter()
                            .map(|x| (x.error_code, x.error_message.as_ref().map(|m| m.as_str())))
                            .collect();
                        let dup = (INVALID_REQUEST, Some("Duplicate topic in request."));
                        assert_eq!(got, vec![dup, dup], "v{v}");
                    },
                )
                .await;
                check(
                    c,
                    range,
                    |_| {
                        CreatePartitionsRequest::default()
                            .with_validate_only(true)
                            .with_timeout_ms(10_000)
                            .with_topics(vec![
                                create_partitions_request::CreatePartitionsTopic::default()
                                    .with_name(TopicName(s("sweep")))
                                    .with_count(1),
                            ])
                    },
                    |v, r| {
                        assert_eq!(
                            r.results[0].error_code, INVALID_PARTITIONS,
                            "v{v}: not more"
                        )
                    },
                )
                .await;
            }
            ApiKey::DescribeCluster => {
                check(
                    c,
                    range,
                    |_| DescribeClusterRequest::default().with_endpoint_type(1),
                    |v, r| {
                        assert_eq!(r.error_code, 0, "v{v}");
                        assert_eq!(r.controller_id.0, 1);
                        assert!(!r.cluster_id.is_empty());
                        let brokers: Vec<(i32, &str, i32)> = r
                            .brokers
                            .iter()
                            .map(|x| (x.broker_id.0, x.host.as_str(), x.port))
                            .collect();
                        assert_eq!(brokers, vec![(1, "127.0.0.1", port)], "v{v}");
                    },
                )
                .await
            }
            ApiKey::DescribeLogDirs => {
                check(
                    c,
                    range,
                    |_| DescribeLogDirsRequest::default().with_topics(None),
                    |v, r| {
                        assert_eq!(r.error_code, 0, "v{v}");
                        assert_eq!(r.results.len(), 1);
                        assert_eq!(r.results[0].log_dir.as_str(), dir, "v{v}");
                        let t = r.results[0]
                            .topics
                            .iter()
                            .find(|t| t.name.as_str() == "sweep")
                            .unwrap();
                        assert_eq!(t.partitions.len(), 1);
                        assert!(
                            t.partitions[0].partition_size > 0,
                            "v{v}: holds two batches"
                        );
                    },
                )
                .await
            }
            ApiKey::DeleteRecords => {
                check(
                    c,
                    range,
                    |_| {
                        DeleteRecordsRequest::default()
                            .with_timeout_ms(10_000)
                            .with_topics(vec![delete_records_request::DeleteRecordsTopic::default(
                            )
                            .with_name(TopicName(s("sweep")))
                            .with_partitions(vec![
                                delete_records_request::DeleteRecordsPartition::default()
                                    .with_partition_index(0)
                                    .with_offset(1),
                                delete_records_request::DeleteRecordsPartition::default()
                                    .with_partition_index(9)
                                    .with_offset(1),
                            ])])
                    },
                    |v, r| {
                        let ps = &r.topics[0].partitions;
                        assert_eq!((ps[0].error_code, ps[0].low_watermark), (0, 1), "v{v}");
                        assert_eq!(ps[1].error_code, UNKNOWN_TOPIC_OR_PARTITION, "v{v}");
                    },
                )
                .await
            }
            ApiKey::InitProducerId => {
                let seen = std::cell::RefCell::new(Vec::new());
                check(
                    c,
                    range,
                    |_| InitProducerIdRequest::default().with_transaction_timeout_ms(60_000),
                    |v, r| {
                        assert_eq!(r.error_code, 0, "v{v}");
                        assert!(r.producer_id.0 >= 0);
                        assert_eq!(r.producer_epoch, 0);
                        assert!(
                            !seen.borrow().contains(&r.producer_id.0),
                            "ids are never reused"
                        );
                        seen.borrow_mut().push(r.producer_id.0);
                    },
                )
                .await
            }
            ApiKey::AddPartitionsToTxn => {
                // Clients use v0-v3; v4+ batches transactions for brokers.
                check(
                    c,
                    (min, 3),
                    |_| {
                        AddPartitionsToTxnRequest::default()
                            .with_v3_and_below_transactional_id(TransactionalId(s("t-unknown")))
                            .with_v3_and_below_producer_id(ProducerId(1000))
                            .with_v3_and_below_topics(vec![
                                add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                                    .with_name(TopicName(s("sweep")))
                                    .with_partitions(vec![0]),
                            ])
                    },
                    |v, r| {
                        let t = &r.results_by_topic_v3_and_below[0];
                        assert_eq!(t.name.as_str(), "sweep");
                        let p = &t.results_by_partition[0];
                        assert_eq!(
                            (p.partition_index, p.partition_error_code),
                            (0, INVALID_PRODUCER_ID_MAPPING),
                            "v{v}"
                        );
                    },
                )
                .await;
                check(
                    c,
                    (4, spec.max),
                    |_| AddPartitionsToTxnRequest::default(),
                    |v, r| {
                        assert_eq!(r.error_code, 0, "v{v}");
                        assert!(r.results_by_transaction.is_empty());
                    },
                )
                .await;
            }
            ApiKey::AddOffsetsToTxn => {
                check(
                    c,
                    range,
                    |_| {
                        AddOffsetsToTxnRequest::default()
                            .with_transactional_id(TransactionalId(s("t-unknown")))
                            .with_producer_id(ProducerId(1000))
                            .with_group_id(GroupId(s("sweep-g")))
                    },
                    |v, r| assert_eq!(r.error_code, INVALID_PRODUCER_ID_MAPPING, "v{v}"),
                )
                .await
            }
            ApiKey::EndTxn => {
                check(
                    c,
                    range,
                    |_| {
                        EndTxnRequest::default()
                            .with_transactional_id(TransactionalId(s("t-unknown")))
                            .with_producer_id(ProducerId(1000))
                            .with_committed(true)
                    },
                    |v, r| assert_eq!(r.error_code, INVALID_PRODUCER_ID_MAPPING, "v{v}"),
                )
                .await
            }
            ApiKey::TxnOffsetCommit => {
                check(
                    c,
                    range,
                    |_| {
                        TxnOffsetCommitRequest::default()
                            .with_transactional_id(TransactionalId(s("t-unknown")))
                            .with_group_id(GroupId(s("sweep-g")))
                            .with_producer_id(ProducerId(1000))
                            .with_generation_id(-1)
                            .with_topics(vec![txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
                                .with_name(TopicName(s("sweep")))
                                .with_partitions(vec![
                                    txn_offset_commit_request::TxnOffsetCommitRequestPartition::default()
                                        .with_partition_index(0)
                                        .with_committed_offset(1),
                                ])])
                    },
                    |v, r| {
                        let p = &r.topics[0].partitions[0];
                        assert_eq!(p.partition_index, 0);
                        // KIP-890 verification: the producer has no transaction here.
                        assert_eq!(p.error_code, INVALID_PRODUCER_ID_MAPPING, "v{v}");
                    },
                )
                .await
            }
            ApiKey::DescribeTransactions => {
                check(
                    c,
                    range,
                    |_| {
                        DescribeTransactionsRequest::default()
                            .with_transactional_ids(vec![TransactionalId(s("t-unknown"))])
                    },
                    |v, r| {
                        let t = &r.transaction_states[0];
                        assert_eq!(t.transactional_id.as_str(), "t-unknown");
                        assert_eq!(t.error_code, TRANSACTIONAL_ID_NOT_FOUND, "v{v}");
                    },
                )
                .await
            }
            ApiKey::ListTransactions => {
                check(
                    c,
                    range,
                    |_| ListTransactionsRequest::default(),
                    |v, r| {
                        assert_eq!(r.error_code, 0, "v{v}");
                        assert!(r.transaction_states.is_empty(), "v{v}: none ever began");
                    },
                )
                .await
            }
            ApiKey::DescribeProducers => {
                check(
                    c,
                    range,
                    |_| {
                        DescribeProducersRequest::default().with_topics(vec![
                            describe_producers_request::TopicRequest::default()
                                .with_name(TopicName(s("sweep")))
                                .with_partition_indexes(vec![0, 4]),
                        ])
                    },
                    |v, r| {
                        let ps = &r.topics[0].partitions;
                        assert_eq!((ps[0].partition_index, ps[0].error_code), (0, 0), "v{v}");
                        assert!(ps[0].active_producers.is_empty(), "plain batches");
                        assert_eq!(ps[1].error_code, UNKNOWN_TOPIC_OR_PARTITION, "v{v}");
                    },
                )
                .await
            }
            ApiKey::GetTelemetrySubscriptions => {
                check(
                    c,
                    range,
                    |_| GetTelemetrySubscriptionsRequest::default(),
                    |v, r| {
                        assert_eq!(r.error_code, 0, "v{v}");
                        assert!(!r.client_instance_id.is_nil(), "v{v}: an id is assigned");
                        assert!(r.requested_metrics.is_empty(), "v{v}: no subscription");
                        assert_eq!(r.accepted_compression_types, vec![4, 3, 1, 2]);
                        assert_eq!(r.push_interval_ms, 300_000);
                    },
                )
                .await
            }
            ApiKey::PushTelemetry => {
                check(
                    c,
                    range,
                    |_| {
                        PushTelemetryRequest::default()
                            .with_client_instance_id(uuid::Uuid::from_u128(42))
                            .with_subscription_id(0)
                    },
                    |v, r| assert_eq!(r.error_code, 117, "v{v}: UNKNOWN_SUBSCRIPTION_ID"),
                )
                .await
            }
            ApiKey::ListConfigResources => {
                check(
                    c,
                    range,
                    |_| ListConfigResourcesRequest::default(),
                    |v, r| {
                        assert_eq!(r.error_code, 0, "v{v}");
                        let topics = r.config_resources.iter().filter(|c| c.resource_type == 2);
                        let names: Vec<&str> = topics.map(|c| c.resource_name.as_str()).collect();
                        // v0 lists client-metrics subscriptions only (none here).
                        assert_eq!(names.contains(&"sweep"), v > 0, "v{v}: {names:?}");
                    },
                )
                .await
            }
            ApiKey::DescribeTopicPartitions => {
                check(
                    c,
                    range,
                    |_| {
                        DescribeTopicPartitionsRequest::default()
                            .with_topics(vec![
                                describe_topic_partitions_request::TopicRequest::default()
                                    .with_name(TopicName(s("sweep"))),
                            ])
                            .with_response_partition_limit(2000)
                    },
                    |v, r| {
                        let t = &r.topics[0];
                        assert_eq!((t.error_code, t.topic_id), (0, topic_id), "v{v}");
                        assert_eq!(t.partitions.len(), 1, "v{v}");
                        assert_eq!(t.partitions[0].leader_id, BrokerId(1), "v{v}");
                        assert!(r.next_cursor.is_none(), "v{v}");
                    },
                )
                .await
            }
            ApiKey::UpdateFeatures => {
                check(
                    c,
                    range,
                    |_| {
                        UpdateFeaturesRequest::default()
                            .with_timeout_ms(5000)
                            .with_feature_updates(vec![
                                update_features_request::FeatureUpdateKey::default()
                                    .with_feature(s("no.such.feature"))
                                    .with_max_version_level(1),
                            ])
                    },
                    |v, r| {
                        assert_eq!(r.error_code, 95, "v{v}: INVALID_UPDATE_VERSION");
                        let results: Vec<(&str, i16)> = r
                            .results
                            .iter()
                            .map(|x| (x.feature.as_str(), x.error_code))
                            .collect();
                        if v >= 2 {
                            assert!(results.is_empty(), "v{v}: no per-feature results");
                        } else {
                            assert_eq!(results, vec![("no.such.feature", 95)], "v{v}");
                        }
                    },
                )
                .await
            }
            ApiKey::DescribeQuorum => {
                check(
                    c,
                    range,
                    |_| {
                        DescribeQuorumRequest::default().with_topics(vec![
                            describe_quorum_request::TopicData::default()
                                .with_topic_name(TopicName(s("__cluster_metadata")))
                                .with_partitions(vec![
                                    describe_quorum_request::PartitionData::default(),
                                ]),
                        ])
                    },
                    |v, r| {
                        assert_eq!(r.error_code, 0, "v{v}");
                        let p = &r.topics[0].partitions[0];
                        assert_eq!((p.error_code, p.leader_id), (0, BrokerId(1)), "v{v}");
                        assert!(p.leader_epoch >= 1, "v{v}: {p:?}");
                        assert!(p.high_watermark > 0, "v{v}: {p:?}");
                        let voters: Vec<i32> =
                            p.current_voters.iter().map(|r| r.replica_id.0).collect();
                        assert_eq!(voters, vec![1], "v{v}");
                    },
                )
                .await
            }
            ApiKey::OffsetForLeaderEpoch => {
                check(
                    c,
                    range,
                    |_| {
                        OffsetForLeaderEpochRequest::default()
                            .with_replica_id(BrokerId(-1))
                            .with_topics(vec![
                                offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
                                    .with_topic(TopicName(s("sweep")))
                                    .with_partitions(
                                        [0, 9]
                                            .into_iter()
                                            .map(|p| {
                                                offset_for_leader_epoch_request::OffsetForLeaderPartition::default()
                                                    .with_partition(p)
                                                    .with_current_leader_epoch(-1)
                                                    .with_leader_epoch(0)
                                            })
                                            .collect(),
                                    ),
                            ])
                    },
                    |v, r| {
                        let ps = &r.topics[0].partitions;
                        assert_eq!((ps[0].error_code, ps[0].leader_epoch), (0, 0), "v{v}");
                        assert!(ps[0].end_offset > 0, "v{v}: epoch 0 ends at the log end");
                        assert_eq!(ps[1].error_code, UNKNOWN_TOPIC_OR_PARTITION, "v{v}");
                    },
                )
                .await
            }
            ApiKey::WriteTxnMarkers => {
                check(
                    c,
                    range,
                    |_| {
                        WriteTxnMarkersRequest::default().with_markers(vec![
                            write_txn_markers_request::WritableTxnMarker::default()
                                .with_producer_id(ProducerId(999_999))
                                .with_producer_epoch(0)
                                .with_transaction_result(false)
                                .with_topics(vec![
                                    write_txn_markers_request::WritableTxnMarkerTopic::default()
                                        .with_name(TopicName(s("sweep")))
                                        .with_partition_indexes(vec![0, 9]),
                                ]),
                        ])
                    },
                    |v, r| {
                        let ps = &r.markers[0].topics[0].partitions;
                        assert_eq!(ps[0].error_code, 0, "v{v}: the marker is written");
                        assert_eq!(ps[1].error_code, UNKNOWN_TOPIC_OR_PARTITION, "v{v}");
                    },
                )
                .await
            }
            ApiKey::ElectLeaders => {
                check(
                    c,
                    range,
                    |_| {
                        ElectLeadersRequest::default()
                            .with_election_type(0)
                            .with_topic_partitions(Some(vec![
                                elect_leaders_request::TopicPartitions::default()
                                    .with_topic(TopicName(s("sweep")))
                                    .with_partitions(vec![0, 9]),
                            ]))
                    },
                    |v, r| {
                        let ps = &r.replica_election_results[0].partition_result;
                        // One node leads every partition it prefers: ELECTION_NOT_NEEDED.
                        assert_eq!(ps[0].error_code, 84, "v{v}");
                        assert_eq!(ps[1].error_code, UNKNOWN_TOPIC_OR_PARTITION, "v{v}");
                    },
                )
                .await
            }
            ApiKey::AlterPartitionReassignments => {
                check(
                    c,
                    range,
                    |_| {
                        AlterPartitionReassignmentsRequest::default()
                            .with_allow_replication_factor_change(true)
                            .with_topics(vec![
                            alter_partition_reassignments_request::ReassignableTopic::default()
                                .with_name(TopicName(s("sweep")))
                                .with_partitions(vec![
                                    alter_partition_reassignments_request::ReassignablePartition::default()
                                        .with_partition_index(0)
                                        .with_replicas(Some(vec![BrokerId(1)])),
                                    alter_partition_reassignments_request::ReassignablePartition::default()
                                        .with_partition_index(9)
                                        .with_replicas(Some(vec![BrokerId(1)])),
                                    // A cancel with nothing to cancel.
                                    alter_partition_reassignments_request::ReassignablePartition::default()
                                        .with_partition_index(1),
                                ]),
                        ])
                    },
                    |v, r| {
                        let ps = &r.responses[0].partitions;
                        assert_eq!(ps[0].error_code, 0, "v{v}: already there");
                        assert_eq!(ps[1].error_code, UNKNOWN_TOPIC_OR_PARTITION, "v{v}");
                        assert_eq!(ps[2].error_code, 85, "v{v}: NO_REASSIGNMENT_IN_PROGRESS");
                    },
                )
                .await
            }
            ApiKey::ListPartitionReassignments => {
                check(
                    c,
                    range,
                    |_| ListPartitionReassignmentsRequest::default().with_topics(None),
                    |v, r| {
                        assert_eq!(r.error_code, 0, "v{v}");
                        assert!(r.topics.is_empty(), "v{v}: nothing is moving");
                    },
                )
                .await
            }
            ApiKey::UnregisterBroker => {
                check(
                    c,
                    range,
                    |_| UnregisterBrokerRequest::default().with_broker_id(BrokerId(99)),
                    |v, r| assert_eq!(r.error_code, 102, "v{v}: BROKER_ID_NOT_REGISTERED"),
                )
                .await
            }
            other => panic!("{other:?} is advertised but this test does not know it: add it"),
        }
    }
    b.stop().await;
}
