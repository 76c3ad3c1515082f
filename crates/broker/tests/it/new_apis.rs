//! DescribeTopicPartitions, ListConfigResources, GetTelemetrySubscriptions and
//! PushTelemetry at the wire: the error paths real clients rarely take (bad cursors,
//! unknown subscription ids, pushes too early or too large, a terminated client), and a
//! client-metrics subscription that survives a restart.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use crate::common;

use bytes::Bytes;
use common::{Client, TestBroker};
use gregor_protocol::compression::{self, Codec};
use gregor_protocol::kp::messages::describe_topic_partitions_request::{Cursor, TopicRequest};
use gregor_protocol::kp::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use gregor_protocol::kp::messages::*;
use gregor_protocol::kp::protocol::StrBytes;
use uuid::Uuid;

const INVALID_REQUEST: i16 = 42;
const INVALID_CONFIG: i16 = 40;
const UNSUPPORTED_VERSION: i16 = 35;
const THROTTLING_QUOTA_EXCEEDED: i16 = 89;
const UNKNOWN_SUBSCRIPTION_ID: i16 = 117;
const TELEMETRY_TOO_LARGE: i16 = 118;
const UNSUPPORTED_COMPRESSION_TYPE: i16 = 76;
const INVALID_RECORD: i16 = 87;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn describe(
    topics: &[&str],
    limit: i32,
    cursor: Option<(&str, i32)>,
) -> DescribeTopicPartitionsRequest {
    DescribeTopicPartitionsRequest::default()
        .with_topics(
            topics
                .iter()
                .map(|t| TopicRequest::default().with_name(TopicName(s(t))))
                .collect(),
        )
        .with_response_partition_limit(limit)
        .with_cursor(cursor.map(|(t, p)| {
            Cursor::default()
                .with_topic_name(TopicName(s(t)))
                .with_partition_index(p)
        }))
}

fn cursor_of(r: &DescribeTopicPartitionsResponse) -> Option<(String, i32)> {
    r.next_cursor
        .as_ref()
        .map(|c| (c.topic_name.0.to_string(), c.partition_index))
}

#[tokio::test]
async fn describe_topic_partitions_cursors() {
    let b = TestBroker::start(&[("max.request.partition.size.limit", "4")]).await;
    let mut c = b.connect().await;
    c.create_topic("a", 6).await;
    c.create_topic("b", 2).await;

    // The broker's limit (4) caps the client's (100); the cursor resumes mid-topic.
    let r = c.call(&describe(&["b", "a"], 100, None), 0).await;
    assert_eq!(r.topics.len(), 1);
    assert_eq!(r.topics[0].partitions.len(), 4);
    assert_eq!(cursor_of(&r), Some(("a".into(), 4)));
    let r = c.call(&describe(&["b", "a"], 100, Some(("a", 4))), 0).await;
    let got: Vec<(String, Vec<i32>)> = r
        .topics
        .iter()
        .map(|t| {
            let name = t.name.as_ref().unwrap().0.to_string();
            (
                name,
                t.partitions.iter().map(|p| p.partition_index).collect(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![("a".into(), vec![4, 5]), ("b".into(), vec![0, 1])]
    );
    assert_eq!(cursor_of(&r), None);

    // A limit of 0 or less still answers one partition (Kafka's floor).
    let r = c.call(&describe(&["a"], 0, None), 0).await;
    assert_eq!(r.topics[0].partitions.len(), 1);
    assert_eq!(cursor_of(&r), Some(("a".into(), 1)));

    // A cursor past the end answers the topic with no partitions and no next cursor.
    let r = c.call(&describe(&["a"], 10, Some(("a", 50))), 0).await;
    assert_eq!(
        (r.topics[0].error_code, r.topics[0].partitions.len()),
        (0, 0)
    );
    assert_eq!(cursor_of(&r), None);

    // Bad cursors refuse the whole request: a negative partition, or a topic not asked for.
    for (cursor, topics) in [(("a", -1), &["a", "b"][..]), (("zzz", 0), &["a", "b"][..])] {
        let r = c.call(&describe(topics, 10, Some(cursor)), 0).await;
        let codes: Vec<i16> = r.topics.iter().map(|t| t.error_code).collect();
        assert_eq!(codes, vec![INVALID_REQUEST; topics.len()], "{cursor:?}");
        assert!(r.topics.iter().all(|t| t.partitions.is_empty()));
    }
    // Asking for every topic, a negative cursor has no topic to carry the code.
    let r = c.call(&describe(&[], 10, Some(("a", -1))), 0).await;
    assert!(r.topics.is_empty() && r.next_cursor.is_none());
    // ...while a cursor on a topic that does not exist starts at the next name.
    let r = c.call(&describe(&[], 10, Some(("aa", 3))), 0).await;
    let names: Vec<String> = r
        .topics
        .iter()
        .map(|t| t.name.as_ref().unwrap().0.to_string())
        .collect();
    assert_eq!(names, vec!["b".to_string()]);

    // Unknown and invalid names are reported when named, not when listing everything.
    let r = c.call(&describe(&["nope", "bad name"], 10, None), 0).await;
    let codes: Vec<i16> = r.topics.iter().map(|t| t.error_code).collect();
    assert_eq!(codes, vec![17, 3]);
    b.stop().await;
}

#[tokio::test]
async fn an_invalid_partition_limit_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut explicit = std::collections::BTreeMap::new();
    explicit.insert("log.dirs".to_string(), dir.path().display().to_string());
    explicit.insert(
        "max.request.partition.size.limit".to_string(),
        "0".to_string(),
    );
    let config = gregor_broker::BrokerConfig::from_explicit(explicit).unwrap();
    let err = gregor_broker::Broker::open(config)
        .await
        .err()
        .expect("refused");
    assert!(
        err.to_string().contains("max.request.partition.size.limit"),
        "{err}"
    );
}

fn alter(name: &str, configs: &[(&str, i8, Option<&str>)]) -> IncrementalAlterConfigsRequest {
    IncrementalAlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
        .with_resource_type(16)
        .with_resource_name(s(name))
        .with_configs(
            configs
                .iter()
                .map(|(k, op, v)| {
                    AlterableConfig::default()
                        .with_name(s(k))
                        .with_config_operation(*op)
                        .with_value(v.map(s))
                })
                .collect(),
        )])
}

async fn subscribe(c: &mut Client, id: Uuid) -> GetTelemetrySubscriptionsResponse {
    c.call(
        &GetTelemetrySubscriptionsRequest::default().with_client_instance_id(id),
        0,
    )
    .await
}

fn push(id: Uuid, sub: i32, codec: i8, metrics: &[u8]) -> PushTelemetryRequest {
    PushTelemetryRequest::default()
        .with_client_instance_id(id)
        .with_subscription_id(sub)
        .with_compression_type(codec)
        .with_metrics(Bytes::copy_from_slice(metrics))
}

#[tokio::test]
async fn client_metrics_subscriptions_are_validated_listed_and_kept() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.connect().await;
    let codes = |r: &IncrementalAlterConfigsResponse| r.responses[0].error_code;
    let r = c
        .call(&alter("s", &[("interval.ms", 0, Some("50"))]), 1)
        .await;
    assert_eq!(codes(&r), INVALID_REQUEST);
    let r = c.call(&alter("s", &[("colour", 0, Some("red"))]), 1).await;
    assert_eq!(codes(&r), INVALID_REQUEST);
    let r = c
        .call(&alter("s", &[("match", 0, Some("client_id=("))]), 1)
        .await;
    assert_eq!(codes(&r), INVALID_CONFIG);
    let r = c.call(&alter("", &[("metrics", 0, Some("a."))]), 1).await;
    assert_eq!(codes(&r), INVALID_REQUEST);
    let ok = alter(
        "s",
        &[
            ("metrics", 0, Some("org.apache.kafka.")),
            ("interval.ms", 0, Some("60000")),
        ],
    );
    assert_eq!(codes(&c.call(&ok, 1).await), 0);

    // ListConfigResources v0 lists subscriptions only; v1 refuses a type it cannot list.
    let r = c.call(&ListConfigResourcesRequest::default(), 0).await;
    let names: Vec<&str> = r
        .config_resources
        .iter()
        .map(|x| x.resource_name.as_str())
        .collect();
    assert_eq!((r.error_code, names), (0, vec!["s"]));
    let r = c
        .call(
            &ListConfigResourcesRequest::default().with_resource_types(vec![2, 3]),
            1,
        )
        .await;
    assert_eq!(
        (r.error_code, r.config_resources.len()),
        (UNSUPPORTED_VERSION, 0)
    );

    // DescribeConfigs: the configs as set; an empty name is INVALID_REQUEST.
    let describe = |name: &str| {
        DescribeConfigsRequest::default().with_resources(vec![
            describe_configs_request::DescribeConfigsResource::default()
                .with_resource_type(16)
                .with_resource_name(s(name))
                .with_configuration_keys(None),
        ])
    };
    let r = c.call(&describe("s"), 4).await;
    let got: Vec<(String, String)> = r.results[0]
        .configs
        .iter()
        .map(|e| (e.name.to_string(), e.value.as_ref().unwrap().to_string()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("interval.ms".to_string(), "60000".to_string()),
            ("metrics".to_string(), "org.apache.kafka.".to_string())
        ]
    );
    assert_eq!(
        c.call(&describe(""), 4).await.results[0].error_code,
        INVALID_REQUEST
    );

    // The subscription and the client's subscription id survive a restart, so a push
    // made after it (with the id from before) is accepted.
    let first = subscribe(&mut c, Uuid::nil()).await;
    assert_eq!(first.requested_metrics.len(), 1);
    assert_eq!(first.push_interval_ms, 60_000);
    let dir = b.stop_keeping_data().await;
    let b = TestBroker::start_in(dir, &[]).await;
    let mut c = b.connect().await;
    let r = c
        .call(
            &push(first.client_instance_id, first.subscription_id, 0, b"otlp"),
            0,
        )
        .await;
    assert_eq!(r.error_code, 0);
    let stored = b.broker.telemetry.latest(first.client_instance_id).unwrap();
    assert_eq!(stored.payload.as_ref(), b"otlp");
    // Deleting every config removes the subscription: the next push is refused.
    let del = alter("s", &[("metrics", 1, None), ("interval.ms", 1, None)]);
    assert_eq!(codes(&c.call(&del, 1).await), 0);
    let r = c
        .call(
            &push(first.client_instance_id, first.subscription_id, 0, b"otlp"),
            0,
        )
        .await;
    assert_eq!(r.error_code, UNKNOWN_SUBSCRIPTION_ID);
    let r = c.call(&ListConfigResourcesRequest::default(), 0).await;
    assert!(r.config_resources.is_empty());
    b.stop().await;
}

#[tokio::test]
async fn push_telemetry_error_paths() {
    let b = TestBroker::start(&[("telemetry.max.bytes", "100")]).await;
    let mut c = b.connect().await;
    let ok = alter(
        "all",
        &[("metrics", 0, Some("*")), ("interval.ms", 0, Some("60000"))],
    );
    assert_eq!(c.call(&ok, 1).await.responses[0].error_code, 0);
    let sub = subscribe(&mut c, Uuid::nil()).await;
    assert_eq!(sub.error_code, 0);
    assert_eq!(
        sub.requested_metrics,
        vec![s("")],
        "a single empty prefix: every metric"
    );
    assert_eq!(sub.telemetry_max_bytes, 100);
    assert!(sub.delta_temporality);
    let (id, sid) = (sub.client_instance_id, sub.subscription_id);

    // Asking again before the interval is throttled.
    assert_eq!(
        subscribe(&mut c, id).await.error_code,
        THROTTLING_QUOTA_EXCEEDED
    );
    // A wrong subscription id is refused (and lets the client ask again at once).
    assert_eq!(
        c.call(&push(id, sid ^ 1, 0, b"x"), 0).await.error_code,
        UNKNOWN_SUBSCRIPTION_ID
    );
    let again = subscribe(&mut c, id).await;
    assert_eq!((again.error_code, again.subscription_id), (0, sid));
    // The first push after a Get is on time; the next one, at once, is too early.
    let plain = vec![b'm'; 400];
    let mut lz4 = Vec::new();
    compression::compress(Codec::Lz4, &plain, &mut lz4).unwrap();
    assert!(lz4.len() <= 100);
    assert_eq!(c.call(&push(id, sid, 3, &lz4), 0).await.error_code, 0);
    assert_eq!(
        b.broker.telemetry.latest(id).unwrap().payload.as_ref(),
        &plain[..]
    );
    assert_eq!(
        c.call(&push(id, sid, 0, b"x"), 0).await.error_code,
        THROTTLING_QUOTA_EXCEEDED
    );

    // Fresh clients: too large as sent, an unknown codec, garbage that does not inflate.
    let big = subscribe(&mut c, Uuid::nil()).await;
    let r = c
        .call(
            &push(big.client_instance_id, big.subscription_id, 0, &[0u8; 101]),
            0,
        )
        .await;
    assert_eq!(r.error_code, TELEMETRY_TOO_LARGE);
    let other = subscribe(&mut c, Uuid::nil()).await;
    let (oid, osid) = (other.client_instance_id, other.subscription_id);
    assert_eq!(
        c.call(&push(oid, osid, 7, b"x"), 0).await.error_code,
        UNSUPPORTED_COMPRESSION_TYPE
    );
    let third = subscribe(&mut c, Uuid::nil()).await;
    let (tid, tsid) = (third.client_instance_id, third.subscription_id);
    assert_eq!(
        c.call(&push(tid, tsid, 1, b"not gzip"), 0).await.error_code,
        INVALID_RECORD
    );

    // A terminating push is accepted even when early; nothing after it is.
    let mut last = push(id, sid, 0, b"bye");
    last.terminating = true;
    assert_eq!(c.call(&last, 0).await.error_code, 0);
    assert_eq!(
        c.call(&push(id, sid, 0, b"x"), 0).await.error_code,
        INVALID_REQUEST
    );
    // The zero id is no client instance.
    assert_eq!(
        c.call(&push(Uuid::nil(), sid, 0, b"x"), 0).await.error_code,
        INVALID_REQUEST
    );
    let stats = b.broker.telemetry.stats();
    assert_eq!(stats.pushes, 2, "{stats:?}");
    assert_eq!(
        b.broker.telemetry.latest(id).unwrap().payload.as_ref(),
        b"bye"
    );
    b.stop().await;
}
