//! Topic administration: create and delete topics, partitions, configs, log dirs, records.

use gregor_protocol::kp::messages::*;

use super::common::Client;
use super::support::{
    check, s, Sweep, INVALID_CONFIG, INVALID_PARTITIONS, INVALID_REQUEST, TOPIC_ALREADY_EXISTS,
    UNKNOWN_TOPIC_OR_PARTITION,
};

pub(crate) async fn create_topics(c: &mut Client, cx: &Sweep<'_>, range: (i16, i16)) {
    let b = cx.b;
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

pub(crate) async fn delete_topics(c: &mut Client, cx: &Sweep<'_>, range: (i16, i16)) {
    let b = cx.b;
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
                return req.with_topic_names(vec![TopicName(s(&name)), TopicName(s("nope"))]);
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

pub(crate) async fn describe_configs(c: &mut Client, _cx: &Sweep<'_>, range: (i16, i16)) {
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

pub(crate) async fn alter_configs(c: &mut Client, _cx: &Sweep<'_>, range: (i16, i16)) {
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
                        .with_configs(vec![alter_configs_request::AlterableConfig::default()
                            .with_name(s("retention.ms"))
                            .with_value(Some(s("1000")))]),
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

pub(crate) async fn incremental_alter_configs(c: &mut Client, _cx: &Sweep<'_>, range: (i16, i16)) {
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

pub(crate) async fn create_partitions(c: &mut Client, _cx: &Sweep<'_>, range: (i16, i16)) {
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

pub(crate) async fn describe_log_dirs(c: &mut Client, cx: &Sweep<'_>, range: (i16, i16)) {
    let dir = cx.dir.as_str();
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

pub(crate) async fn delete_records(c: &mut Client, _cx: &Sweep<'_>, range: (i16, i16)) {
    check(
        c,
        range,
        |_| {
            DeleteRecordsRequest::default()
                .with_timeout_ms(10_000)
                .with_topics(vec![delete_records_request::DeleteRecordsTopic::default()
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

pub(crate) async fn list_config_resources(c: &mut Client, _cx: &Sweep<'_>, range: (i16, i16)) {
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
