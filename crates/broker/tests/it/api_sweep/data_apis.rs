//! Produce, Fetch, and the offset and metadata lookups a client makes around them.

use bytes::Bytes;
use gregor_protocol::kp::messages::*;

use super::common::Client;
use super::support::{
    check, fetched_values, one_record_batch, s, Sweep, UNKNOWN_TOPIC_OR_PARTITION,
};

pub(crate) async fn produce(c: &mut Client, cx: &Sweep<'_>, range: (i16, i16)) {
    let topic_id = cx.topic_id;
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

pub(crate) async fn fetch(c: &mut Client, cx: &Sweep<'_>, range: (i16, i16)) {
    let topic_id = cx.topic_id;
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

pub(crate) async fn list_offsets(c: &mut Client, _cx: &Sweep<'_>, range: (i16, i16)) {
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

pub(crate) async fn metadata(c: &mut Client, cx: &Sweep<'_>, range: (i16, i16)) {
    let (_, max) = range;
    let topic_id = cx.topic_id;
    let port = cx.port;
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
        (1, max),
        |_| MetadataRequest::default().with_topics(Some(vec![])),
        |v, r| assert!(r.topics.is_empty(), "v{v}: an empty list names no topic"),
    )
    .await;
}

pub(crate) async fn describe_topic_partitions(c: &mut Client, cx: &Sweep<'_>, range: (i16, i16)) {
    let topic_id = cx.topic_id;
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

pub(crate) async fn offset_for_leader_epoch(c: &mut Client, _cx: &Sweep<'_>, range: (i16, i16)) {
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
