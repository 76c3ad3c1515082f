#![allow(clippy::unwrap_used)]

use std::time::Duration;

use gregor_metadata::records::{ConfigResource, MetadataRecord};

use super::*;

fn image(subs: &[(&str, &str, &str)]) -> MetadataImage {
    let mut image = MetadataImage::empty();
    for (sub, name, value) in subs {
        image.apply(&MetadataRecord::ConfigRecord {
            resource: ConfigResource::ClientMetrics,
            resource_name: sub.to_string(),
            name: name.to_string(),
            value: Some(value.to_string()),
        });
        image.offset += 1;
    }
    image
}

fn store(max_clients: usize, max_stored_bytes: usize) -> ClientTelemetry {
    ClientTelemetry::new(TelemetryConfig {
        max_bytes: 1000,
        max_clients,
        max_stored_bytes,
    })
}

fn push<'a>(s: &Subscribed, metrics: &'a Bytes) -> Push<'a> {
    Push {
        client_instance_id: s.client_instance_id,
        subscription_id: s.assignment.subscription_id,
        terminating: false,
        compression_type: 0,
        metrics,
    }
}

fn subscribed_image() -> MetadataImage {
    image(&[
        ("s", "metrics", "org.apache.kafka."),
        ("s", "interval.ms", "1000"),
    ])
}

#[test]
fn a_client_subscribes_and_pushes_on_time() {
    let t = store(10, 1 << 20);
    let img = subscribed_image();
    let c = ClientInfo::default();
    let t0 = Instant::now();
    let s = t.subscribe(&img, Uuid::nil(), &c, t0).unwrap();
    assert!(!s.client_instance_id.is_nil());
    assert_eq!(s.assignment.metrics, vec!["org.apache.kafka.".to_string()]);
    assert_eq!(s.assignment.interval_ms, 1000);
    // Asking again at once is throttled.
    assert_eq!(
        t.subscribe(&img, s.client_instance_id, &c, t0).unwrap_err(),
        TelemetryError::TooEarly
    );
    let data = Bytes::from_static(b"otlp");
    // The first push after a Get is on time, however soon.
    t.push(&img, &push(&s, &data), &c, t0).unwrap();
    assert_eq!(
        t.push(&img, &push(&s, &data), &c, t0 + Duration::from_millis(500)),
        Err(TelemetryError::TooEarly)
    );
    t.push(&img, &push(&s, &data), &c, t0 + Duration::from_millis(1000))
        .unwrap();
    assert_eq!(t.latest(s.client_instance_id).unwrap().payload, data);
    assert_eq!(t.stats().pushes, 2);
    assert_eq!(t.subscription_stats("s"), (1, 2));
}

#[test]
fn pushes_are_checked_in_kafkas_order() {
    let t = store(10, 1 << 20);
    let img = subscribed_image();
    let c = ClientInfo::default();
    let now = Instant::now();
    let s = t.subscribe(&img, Uuid::nil(), &c, now).unwrap();
    let data = Bytes::from_static(b"x");
    let mut p = push(&s, &data);
    p.subscription_id ^= 1;
    assert_eq!(
        t.push(&img, &p, &c, now),
        Err(TelemetryError::UnknownSubscriptionId)
    );
    // A refused subscription id may ask again at once.
    t.subscribe(&img, s.client_instance_id, &c, now).unwrap();
    let big = Bytes::from(vec![0u8; 1001]);
    assert_eq!(
        t.push(&img, &push(&s, &big), &c, now),
        Err(TelemetryError::TooLarge(1000))
    );
    let mut p = push(&s, &data);
    p.compression_type = 9;
    p.terminating = true;
    assert_eq!(
        t.push(&img, &p, &c, now),
        Err(TelemetryError::UnsupportedCompression(9))
    );
    // The terminating flag sticks even on a refused push.
    assert_eq!(
        t.push(&img, &push(&s, &data), &c, now),
        Err(TelemetryError::Terminated)
    );
    let mut p = push(&s, &data);
    p.client_instance_id = Uuid::nil();
    assert_eq!(
        t.push(&img, &p, &c, now),
        Err(TelemetryError::InvalidClientInstanceId)
    );
}

#[test]
fn compressed_pushes_are_stored_decompressed_and_bombs_refused() {
    let t = store(10, 1 << 20);
    let img = subscribed_image();
    let c = ClientInfo::default();
    let now = Instant::now();
    let s = t.subscribe(&img, Uuid::nil(), &c, now).unwrap();
    let plain = vec![7u8; 5000];
    let mut z = Vec::new();
    compression::compress(Codec::Zstd, &plain, &mut z).unwrap();
    let z = Bytes::from(z);
    let mut p = push(&s, &z);
    p.compression_type = 4;
    t.push(&img, &p, &c, now).unwrap();
    assert_eq!(
        t.latest(s.client_instance_id).unwrap().payload.as_ref(),
        &plain[..]
    );
    // 16 x telemetry.max.bytes is the most a push may inflate to.
    let bomb_plain = vec![0u8; 16_001];
    let mut bomb = Vec::new();
    compression::compress(Codec::Gzip, &bomb_plain, &mut bomb).unwrap();
    let bomb = Bytes::from(bomb);
    let mut p = push(&s, &bomb);
    p.compression_type = 1;
    let later = now + Duration::from_secs(2);
    assert_eq!(
        t.push(&img, &p, &c, later),
        Err(TelemetryError::TooLarge(1000))
    );
    let junk = Bytes::from_static(b"not gzip at all");
    let mut p = push(&s, &junk);
    p.compression_type = 1;
    let later = now + Duration::from_secs(4);
    assert!(matches!(
        t.push(&img, &p, &c, later),
        Err(TelemetryError::InvalidPayload(_))
    ));
}

#[test]
fn memory_is_bounded_in_clients_and_bytes() {
    let t = store(3, 10);
    let img = subscribed_image();
    let c = ClientInfo::default();
    let now = Instant::now();
    let mut ids = Vec::new();
    for _ in 0..5 {
        let s = t.subscribe(&img, Uuid::nil(), &c, now).unwrap();
        t.push(&img, &push(&s, &Bytes::from_static(b"abcd")), &c, now)
            .unwrap();
        ids.push(s.client_instance_id);
    }
    let stats = t.stats();
    assert_eq!(stats.instances, 3);
    assert!(stats.stored_bytes <= 10, "{stats:?}");
    assert_eq!(stats.stored_payloads, 2);
    // The newest pushes are the ones kept.
    assert!(t.latest(ids[4]).is_some() && t.latest(ids[3]).is_some());
    assert!(t.latest(ids[0]).is_none() && t.latest(ids[2]).is_none());
    assert_eq!(stats.pushes, 5);
}

#[test]
fn a_changed_subscription_reaches_the_client_as_unknown_subscription_id() {
    let t = store(10, 1 << 20);
    let c = ClientInfo::default();
    let now = Instant::now();
    let before = subscribed_image();
    let s = t.subscribe(&before, Uuid::nil(), &c, now).unwrap();
    let mut after = image(&[("s", "metrics", "org.apache.kafka.producer.")]);
    after.offset = before.offset + 10;
    let data = Bytes::from_static(b"x");
    assert_eq!(
        t.push(&after, &push(&s, &data), &c, now),
        Err(TelemetryError::UnknownSubscriptionId)
    );
    let again = t.subscribe(&after, s.client_instance_id, &c, now).unwrap();
    assert_eq!(again.client_instance_id, s.client_instance_id);
    assert_ne!(
        again.assignment.subscription_id,
        s.assignment.subscription_id
    );
    t.push(&after, &push(&again, &data), &c, now).unwrap();
}

#[test]
fn no_subscription_means_no_metrics() {
    let t = store(10, 1 << 20);
    let s = t
        .subscribe(
            &MetadataImage::empty(),
            Uuid::nil(),
            &ClientInfo::default(),
            Instant::now(),
        )
        .unwrap();
    assert!(s.assignment.metrics.is_empty());
    assert_eq!(s.assignment.interval_ms, 300_000);
}
