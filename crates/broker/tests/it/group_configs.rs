//! Group configs (the GROUP config resource) take effect where the wire shows them: a
//! share group's lock duration in ShareFetch, a consumer group's heartbeat interval in
//! ConsumerGroupHeartbeat; ListConfigResources lists groups that have configs. The
//! admin clients' view (describe, alter, errors) is tests/python/test_group_configs.py.

use gregor_protocol::kp::messages::*;
use uuid::Uuid;

use super::api_sweep::support::s;
use super::common::{Client, TestBroker};

const RESOURCE_GROUP: i8 = 32;

async fn set(c: &mut Client, group: &str, configs: &[(&str, &str)]) {
    use incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
    let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(RESOURCE_GROUP)
            .with_resource_name(s(group))
            .with_configs(
                configs
                    .iter()
                    .map(|(k, v)| {
                        AlterableConfig::default()
                            .with_name(s(k))
                            .with_config_operation(0)
                            .with_value(Some(s(v)))
                    })
                    .collect(),
            ),
    ]);
    let r = c.call(&req, 1).await;
    assert_eq!(r.responses[0].error_code, 0, "{r:?}");
}

fn share_fetch(group: &str, topic: Uuid) -> ShareFetchRequest {
    use share_fetch_request::{FetchPartition, FetchTopic};
    ShareFetchRequest::default()
        .with_group_id(Some(GroupId(s(group))))
        .with_member_id(Some(s("m1")))
        .with_share_session_epoch(0)
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_max_records(10)
        .with_topics(vec![FetchTopic::default()
            .with_topic_id(topic)
            .with_partitions(vec![
                FetchPartition::default().with_partition_index(0)
            ])])
}

fn consumer_heartbeat(group: &str) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_member_id(s(&Uuid::new_v4().to_string()))
        .with_member_epoch(0)
        .with_rebalance_timeout_ms(30_000)
        .with_subscribed_topic_names(Some(vec![TopicName(s("gc"))]))
        .with_topic_partitions(Some(vec![]))
}

#[tokio::test]
async fn a_groups_own_configs_reach_its_members() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.connect().await;
    c.create_topic("gc", 1).await;
    let topic = b.broker.metadata.image().topic("gc").unwrap().id;

    set(
        &mut c,
        "sg-gc",
        &[("share.record.lock.duration.ms", "20000")],
    )
    .await;
    let r = c.call(&share_fetch("sg-gc", topic), 1).await;
    assert_eq!((r.error_code, r.acquisition_lock_timeout_ms), (0, 20_000));
    let r = c.call(&share_fetch("sg-plain", topic), 1).await;
    assert_eq!(
        r.acquisition_lock_timeout_ms, 30_000,
        "the broker's default"
    );

    set(
        &mut c,
        "cg-gc",
        &[
            ("consumer.heartbeat.interval.ms", "6000"),
            ("consumer.session.timeout.ms", "50000"),
        ],
    )
    .await;
    let r = c.call(&consumer_heartbeat("cg-gc"), 0).await;
    assert_eq!((r.error_code, r.heartbeat_interval_ms), (0, 6000), "{r:?}");
    let r = c.call(&consumer_heartbeat("cg-plain"), 0).await;
    assert_eq!((r.error_code, r.heartbeat_interval_ms), (0, 5000));

    let r = c
        .call(
            &ListConfigResourcesRequest::default().with_resource_types(vec![RESOURCE_GROUP]),
            1,
        )
        .await;
    let mut groups: Vec<&str> = r
        .config_resources
        .iter()
        .map(|g| g.resource_name.as_str())
        .collect();
    groups.sort();
    assert_eq!(groups, ["cg-gc", "sg-gc"]);
    b.stop().await;
}
