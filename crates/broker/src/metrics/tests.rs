#![allow(clippy::unwrap_used)]

use std::time::Duration;

use gregor_protocol::kp::messages::ApiKey;
use prometheus::{Encoder, Registry, TextEncoder};

use super::{listener_address, merge, RequestMetrics, TopicMetrics};

fn encode(registry: &Registry, topics: Option<&TopicMetrics>) -> String {
    let mut families = registry.gather();
    if let Some(t) = topics {
        merge(&mut families, t.all_topics());
    }
    super::requests::drop_unused(&mut families);
    let mut out = Vec::new();
    TextEncoder::new().encode(&families, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn listener_address_is_optional_and_checked() {
    assert_eq!(listener_address("").unwrap(), None);
    assert_eq!(listener_address("  ").unwrap(), None);
    assert_eq!(
        listener_address("127.0.0.1:9644").unwrap(),
        Some("127.0.0.1:9644".parse().unwrap())
    );
    assert!(listener_address("127.0.0.1").is_err());
    assert!(listener_address("127.0.0.1:notaport").is_err());
}

#[test]
fn topic_counters_have_per_topic_and_all_topics_series_in_one_family() {
    let registry = Registry::new();
    let topics = TopicMetrics::new(&registry).unwrap();
    let a = topics.topic("a").unwrap();
    a.record_produced(100, 3);
    topics.topic("a").unwrap().record_produced(50, 2);
    topics.topic("b").unwrap().record_produced(10, 1);
    a.record_fetched(70);
    let text = encode(&registry, Some(&topics));
    assert!(text.contains("kafka_server_brokertopicmetrics_bytesin_total{topic=\"a\"} 150\n"));
    assert!(text.contains("kafka_server_brokertopicmetrics_bytesin_total{topic=\"b\"} 10\n"));
    assert!(text.contains("kafka_server_brokertopicmetrics_bytesin_total 160\n"));
    assert!(text.contains("kafka_server_brokertopicmetrics_messagesin_total{topic=\"a\"} 5\n"));
    assert!(text.contains("kafka_server_brokertopicmetrics_messagesin_total 6\n"));
    assert!(text.contains("kafka_server_brokertopicmetrics_bytesout_total{topic=\"a\"} 70\n"));
    // One TYPE line per family, however many label sets it has.
    assert_eq!(
        text.matches("# TYPE kafka_server_brokertopicmetrics_bytesin_total counter")
            .count(),
        1
    );
}

#[test]
fn deleted_topics_lose_their_series() {
    let registry = Registry::new();
    let topics = TopicMetrics::new(&registry).unwrap();
    topics.topic("gone").unwrap().record_produced(1, 1);
    topics.prune(&gregor_metadata::MetadataImage::empty());
    let text = encode(&registry, Some(&topics));
    assert!(!text.contains("topic=\"gone\""));
    // The all-topics total keeps what was counted.
    assert!(text.contains("kafka_server_brokertopicmetrics_bytesin_total 1\n"));
}

#[test]
fn requests_are_counted_per_api_and_version_with_their_time() {
    let registry = Registry::new();
    let requests = RequestMetrics::new(&registry, crate::handlers::SUPPORTED).unwrap();
    requests.record(ApiKey::Produce, 9, Duration::from_millis(3));
    requests.record(ApiKey::Produce, 9, Duration::from_millis(30));
    requests.record(ApiKey::Metadata, 12, Duration::from_micros(100));
    // Outside the registry's range: ignored, not a panic.
    requests.record(ApiKey::Produce, 999, Duration::ZERO);
    requests.record(ApiKey::Produce, -1, Duration::ZERO);
    let text = encode(&registry, None);
    assert!(text.contains(
        "kafka_network_requestmetrics_requests_total{request=\"Produce\",version=\"9\"} 2\n"
    ));
    assert!(text.contains(
        "kafka_network_requestmetrics_requests_total{request=\"Metadata\",version=\"12\"} 1\n"
    ));
    assert!(
        text.contains("kafka_network_requestmetrics_totaltimems_count{request=\"Produce\"} 2\n")
    );
    assert!(text.contains(
        "kafka_network_requestmetrics_totaltimems_bucket{request=\"Produce\",le=\"5\"} 1\n"
    ));
    assert!(text.contains("# TYPE kafka_network_requestmetrics_totaltimems histogram"));
    // APIs and versions never requested are left out.
    assert!(!text.contains("version=\"8\""));
    assert!(!text.contains("request=\"Fetch\""));
}
