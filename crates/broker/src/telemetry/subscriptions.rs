//! The client-metrics subscriptions of the metadata image, compiled for matching, and
//! what one client is subscribed to.

use std::collections::{BTreeMap, BTreeSet};

use gregor_metadata::client_metrics::{self, DEFAULT_INTERVAL_MS, INTERVAL_MS, MATCH, METRICS};
use gregor_metadata::MetadataImage;
use uuid::Uuid;

/// What a client is known by when subscriptions are matched (KIP-714's selectors).
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub client_id: String,
    pub software_name: String,
    pub software_version: String,
    /// The peer address without Kafka's leading `/`.
    pub source_address: String,
    pub source_port: String,
}

impl ClientInfo {
    fn value(&self, selector: &str, instance: &str) -> String {
        match selector {
            "client_instance_id" => instance.to_string(),
            "client_id" => self.client_id.clone(),
            "client_software_name" => self.software_name.clone(),
            "client_software_version" => self.software_version.clone(),
            "client_source_address" => self.source_address.clone(),
            "client_source_port" => self.source_port.clone(),
            _ => String::new(),
        }
    }
}

struct Subscription {
    name: String,
    metrics: Vec<String>,
    interval_ms: i32,
    /// Every pattern must match; none means every client matches. `None` as a whole:
    /// a pattern that no longer compiles, so the subscription matches nobody.
    matchers: Option<Vec<(&'static str, regex::Regex)>>,
}

impl Subscription {
    fn compile(name: &str, configs: &BTreeMap<String, String>) -> Self {
        let metrics = configs
            .get(METRICS)
            .map(|v| client_metrics::list_items(v))
            .unwrap_or_default();
        let interval_ms = configs
            .get(INTERVAL_MS)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(DEFAULT_INTERVAL_MS);
        let matchers = configs
            .get(MATCH)
            .map(|v| client_metrics::list_items(v))
            .unwrap_or_default()
            .iter()
            .map(|entry| {
                let (selector, pattern) = client_metrics::split_match(entry).ok()?;
                Some((selector, client_metrics::compile_pattern(pattern).ok()?))
            })
            .collect();
        Self {
            name: name.to_string(),
            metrics,
            interval_ms,
            matchers,
        }
    }

    fn matches(&self, client: &ClientInfo, instance: &str) -> bool {
        self.matchers.as_ref().is_some_and(|ms| {
            ms.iter()
                .all(|(selector, re)| re.is_match(&client.value(selector, instance)))
        })
    }
}

/// What a client instance is told in its GetTelemetrySubscriptions answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub subscription_id: i32,
    /// Metric-name prefixes; one empty prefix means every metric, none means no push.
    pub metrics: Vec<String>,
    pub interval_ms: i32,
    /// The subscriptions that matched, by name.
    pub subscriptions: Vec<String>,
}

/// The image's subscriptions, recompiled when they change. `version` counts changes;
/// a client instance assigned under an older version is reassigned on its next request
/// (so a changed subscription reaches it as UNKNOWN_SUBSCRIPTION_ID, then a new Get).
pub struct Subscriptions {
    seen_offset: i64,
    source: BTreeMap<String, BTreeMap<String, String>>,
    pub version: u64,
    list: Vec<Subscription>,
}

impl Subscriptions {
    pub fn new() -> Self {
        Self {
            seen_offset: i64::MIN,
            source: BTreeMap::new(),
            version: 0,
            list: Vec::new(),
        }
    }

    /// Follows the image: cheap when it has not moved, a map comparison when it has.
    pub fn refresh(&mut self, image: &MetadataImage) {
        if image.offset == self.seen_offset {
            return;
        }
        self.seen_offset = image.offset;
        if image.client_metrics == self.source {
            return;
        }
        self.source = image.client_metrics.clone();
        self.list = self
            .source
            .iter()
            .map(|(name, configs)| Subscription::compile(name, configs))
            .collect();
        self.version += 1;
    }

    /// The union of the matching subscriptions' metrics and the shortest interval (never
    /// longer than Kafka's five-minute default), as Kafka's `ClientMetricsManager`.
    pub fn assign(&self, id: Uuid, client: &ClientInfo) -> Assignment {
        let instance = kafka_uuid_string(id);
        let mut metrics = BTreeSet::new();
        let mut interval_ms = DEFAULT_INTERVAL_MS;
        let mut names = Vec::new();
        for s in self.list.iter().filter(|s| s.matches(client, &instance)) {
            metrics.extend(s.metrics.iter().cloned());
            interval_ms = interval_ms.min(s.interval_ms);
            names.push(s.name.clone());
        }
        // KIP-714: a single empty prefix asks for every metric.
        let metrics: Vec<String> = if metrics.contains("*") {
            vec![String::new()]
        } else {
            metrics.into_iter().collect()
        };
        Assignment {
            subscription_id: subscription_id(&metrics, interval_ms, id),
            metrics,
            interval_ms,
            subscriptions: names,
        }
    }
}

impl Default for Subscriptions {
    fn default() -> Self {
        Self::new()
    }
}

/// A deterministic id for what the client is asked to push, so a push made before a
/// broker restart (or after its instance was evicted) still finds the same id.
fn subscription_id(metrics: &[String], interval_ms: i32, id: Uuid) -> i32 {
    let text = format!("{}|{interval_ms}", metrics.join(","));
    let crc = crc32c::crc32c(text.as_bytes());
    let (hi, lo) = id.as_u64_pair();
    let h = hi ^ lo;
    let uuid_hash = ((h >> 32) as u32) ^ (h as u32);
    i32::from_ne_bytes((crc ^ uuid_hash).to_ne_bytes())
}

/// Kafka's string form of a UUID (URL-safe base64 without padding), which `match`
/// patterns on `client_instance_id` are written against.
pub fn kafka_uuid_string(id: Uuid) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(22);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for b in id.as_bytes() {
        acc = (acc << 8) | u32::from(*b);
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            out.push(char::from(ALPHABET[((acc >> bits) & 63) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((acc << (6 - bits)) & 63) as usize]));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use gregor_metadata::records::{ConfigResource, MetadataRecord};

    fn image_with(subs: &[(&str, &str, &str)]) -> MetadataImage {
        let mut image = MetadataImage::empty();
        for (i, (sub, name, value)) in subs.iter().enumerate() {
            image.apply(&MetadataRecord::ConfigRecord {
                resource: ConfigResource::ClientMetrics,
                resource_name: sub.to_string(),
                name: name.to_string(),
                value: Some(value.to_string()),
            });
            image.offset = i as i64;
        }
        image
    }

    #[test]
    fn matching_subscriptions_are_merged() {
        let image = image_with(&[
            ("a", METRICS, "org.apache.kafka.producer."),
            ("a", INTERVAL_MS, "2000"),
            ("a", MATCH, "client_id=app-.*"),
            ("b", METRICS, "org.apache.kafka.consumer."),
            ("b", INTERVAL_MS, "1000"),
            ("b", MATCH, "client_id=other"),
            (
                "c",
                METRICS,
                "org.apache.kafka.producer.,org.apache.kafka.client.",
            ),
        ]);
        let mut subs = Subscriptions::new();
        subs.refresh(&image);
        let client = ClientInfo {
            client_id: "app-1".into(),
            ..ClientInfo::default()
        };
        let id = Uuid::new_v4();
        let a = subs.assign(id, &client);
        assert_eq!(a.subscriptions, vec!["a".to_string(), "c".to_string()]);
        assert_eq!(
            a.metrics,
            vec!["org.apache.kafka.client.", "org.apache.kafka.producer."]
        );
        assert_eq!(a.interval_ms, 2000);
        // Deterministic: the same answer after a restart.
        assert_eq!(subs.assign(id, &client), a);
        let none = subs.assign(id, &ClientInfo::default());
        assert_eq!(none.subscriptions, vec!["c".to_string()]);
        assert_eq!(none.interval_ms, DEFAULT_INTERVAL_MS);
    }

    #[test]
    fn star_means_every_metric_and_versions_follow_changes() {
        let mut subs = Subscriptions::new();
        subs.refresh(&image_with(&[("a", METRICS, "*")]));
        assert_eq!(subs.version, 1);
        let a = subs.assign(Uuid::new_v4(), &ClientInfo::default());
        assert_eq!(a.metrics, vec![String::new()]);
        let mut same = image_with(&[("a", METRICS, "*")]);
        same.offset = 7;
        subs.refresh(&same);
        assert_eq!(
            subs.version, 1,
            "an unrelated metadata change keeps the version"
        );
        subs.refresh(&image_with(&[("a", METRICS, "x.")]));
        assert_eq!(subs.version, 2);
    }

    #[test]
    fn uuid_strings_are_kafkas() {
        assert_eq!(kafka_uuid_string(Uuid::nil()), "AAAAAAAAAAAAAAAAAAAAAA");
        assert_eq!(
            kafka_uuid_string(Uuid::from_u64_pair(0, 1)),
            "AAAAAAAAAAAAAAAAAAAAAQ"
        );
    }
}
