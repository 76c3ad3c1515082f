//! Replication throttles (Kafka's replication quotas, KIP-73), so a reassignment does
//! not starve clients: the leader limits what it sends to throttled replicas
//! (`leader.replication.throttled.rate`) and a follower what it fetches for them
//! (`follower.replication.throttled.rate`), both bytes/s and dynamic broker configs.
//! Which replicas are throttled is a topic's `leader.replication.throttled.replicas` /
//! `follower.replication.throttled.replicas` (`partition:broker` pairs naming this
//! broker, or `*`). As in Kafka, only replicas outside the ISR are held back: a member
//! of the ISR is never slowed, so acks=all latency does not depend on the throttle.
//!
//! Each side is a token bucket: bytes sent are charged, the balance refills at the
//! rate (at most one [`chunk`] banked: an idle throttle allows no burst), and while
//! it is negative the throttled
//! partitions get no data. One fetch may overdraw the bucket by its size, so the
//! fetch size of a throttled partition is capped at a tenth of a second's worth
//! ([`chunk`]): over any second, at most that much more than the rate goes through.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use gregor_metadata::topic_config::parse_throttled_replicas;
use gregor_metadata::MetadataImage;

pub const LEADER_RATE: &str = "leader.replication.throttled.rate";
pub const FOLLOWER_RATE: &str = "follower.replication.throttled.rate";
pub const LEADER_REPLICAS: &str = "leader.replication.throttled.replicas";
pub const FOLLOWER_REPLICAS: &str = "follower.replication.throttled.replicas";

#[derive(Debug)]
struct Bucket {
    /// Bytes that may still be sent now; negative after an overdraw.
    balance: f64,
    last: Instant,
}

/// One side's token bucket.
#[derive(Debug)]
pub struct Throttle {
    bucket: Mutex<Bucket>,
}

impl Default for Throttle {
    fn default() -> Self {
        Self {
            bucket: Mutex::new(Bucket {
                balance: 0.0,
                last: Instant::now(),
            }),
        }
    }
}

impl Throttle {
    fn with_bucket<T>(&self, rate: u64, f: impl FnOnce(&mut Bucket) -> T) -> T {
        let mut b = match self.bucket.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let now = Instant::now();
        let cap = chunk(rate) as f64;
        let refill = now.duration_since(b.last).as_secs_f64() * rate as f64;
        b.balance = (b.balance + refill).min(cap);
        b.last = now;
        f(&mut b)
    }

    /// Whether the throttled replicas must wait at `rate` bytes/s.
    pub fn exhausted(&self, rate: u64) -> bool {
        self.with_bucket(rate, |b| b.balance < 0.0)
    }

    /// Charges `bytes` sent to throttled replicas.
    pub fn record(&self, rate: u64, bytes: usize) {
        self.with_bucket(rate, |b| b.balance -= bytes as f64);
    }

    /// How long until the balance is back to zero at `rate`.
    pub fn wait_time(&self, rate: u64) -> Duration {
        self.with_bucket(rate, |b| {
            if b.balance >= 0.0 || rate == 0 {
                Duration::ZERO
            } else {
                Duration::from_secs_f64(-b.balance / rate as f64)
            }
        })
    }
}

/// The most one fetch of a throttled partition asks for at `rate`: a tenth of a
/// second's worth (at least one 4 KiB page; a batch larger than that still goes whole).
pub fn chunk(rate: u64) -> usize {
    usize::try_from(rate / 10).unwrap_or(usize::MAX).max(4096)
}

/// Both sides of this broker's replication throttle.
#[derive(Debug, Default)]
pub struct ReplicationThrottles {
    pub leader: Throttle,
    pub follower: Throttle,
}

/// A throttle rate from the dynamic broker configs (this broker's, then the cluster
/// default), then the static config (`configured`); `None` when unlimited.
pub fn rate(
    image: &MetadataImage,
    node_id: i32,
    name: &str,
    configured: Option<&str>,
) -> Option<u64> {
    let node = image.broker_configs.get(&node_id.to_string());
    let cluster = image.broker_configs.get("");
    let value = node
        .and_then(|m| m.get(name))
        .or_else(|| cluster.and_then(|m| m.get(name)))
        .map(String::as_str)
        .or(configured)?;
    match value.trim().parse::<i64>() {
        Ok(v) if v > 0 && v < i64::MAX => u64::try_from(v).ok(),
        _ => None,
    }
}

/// Whether `topic`'s `list_name` config throttles `partition` on broker `me`.
pub fn is_throttled(
    image: &MetadataImage,
    topic: &str,
    partition: i32,
    me: i32,
    list_name: &str,
) -> bool {
    let Some(value) = image.topic(topic).and_then(|t| t.configs.get(list_name)) else {
        return false;
    };
    match parse_throttled_replicas(value) {
        Ok(None) => true,
        Ok(Some(pairs)) => pairs.contains(&(partition, me)),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_refuses_while_overdrawn_and_refills_at_the_rate() {
        let t = Throttle::default();
        let rate = 1_000_000;
        assert!(!t.exhausted(rate));
        t.record(rate, 500_000);
        assert!(t.exhausted(rate));
        let wait = t.wait_time(rate);
        assert!(wait > Duration::from_millis(400) && wait <= Duration::from_millis(500));
        // Pretend the refill time passed.
        t.with_bucket(rate, |b| b.last -= Duration::from_millis(600));
        assert!(!t.exhausted(rate));
    }

    #[test]
    fn throttled_replica_lists_name_this_broker_or_everyone() {
        use gregor_metadata::records::{ConfigResource, MetadataRecord};
        let mut image = MetadataImage::empty();
        let id = uuid::Uuid::new_v4();
        image.apply_entry(
            0,
            &[
                MetadataRecord::TopicRecord {
                    name: "t".into(),
                    topic_id: id,
                },
                MetadataRecord::ConfigRecord {
                    resource: ConfigResource::Topic,
                    resource_name: "t".into(),
                    name: LEADER_REPLICAS.into(),
                    value: Some("0:1,1:2".into()),
                },
                MetadataRecord::ConfigRecord {
                    resource: ConfigResource::Topic,
                    resource_name: "t".into(),
                    name: FOLLOWER_REPLICAS.into(),
                    value: Some("*".into()),
                },
            ],
        );
        assert!(is_throttled(&image, "t", 0, 1, LEADER_REPLICAS));
        assert!(!is_throttled(&image, "t", 0, 2, LEADER_REPLICAS));
        assert!(is_throttled(&image, "t", 1, 2, LEADER_REPLICAS));
        assert!(is_throttled(&image, "t", 7, 9, FOLLOWER_REPLICAS));
        assert!(!is_throttled(&image, "u", 0, 1, LEADER_REPLICAS));
    }
}
