//! Client telemetry (KIP-714): which metrics each client instance is asked to push
//! (GetTelemetrySubscriptions), the checks on what it pushes (PushTelemetry), and the
//! [`ClientTelemetry`] store that keeps each instance's latest payload for export.
//!
//! Subscriptions are `client-metrics` config resources in the metadata image
//! ([`gregor_metadata::client_metrics`]); [`subscriptions`] compiles and matches them.
//! Kafka hands pushes to a receiver plugin; here they are decompressed (with the
//! bounded decoders of `gregor_protocol::compression`) and kept as OTLP bytes, not
//! decoded: nothing reads them yet, and decoding protobuf would add a dependency for
//! no present reader.
//!
//! # Bounds
//! At most [`MAX_CLIENTS`] instances are known (least recently seen evicted, as
//! Kafka's client-instance cache) and at most [`MAX_STORED_BYTES`] of payloads are kept
//! (oldest push evicted first). A push is at most `telemetry.max.bytes` on the wire
//! and inflates to at most 16 times that.
//!
//! # Concurrency
//! One `std::sync::Mutex` over the state, taken for map updates only: a payload is
//! decompressed between two short sections, never under the lock.

pub mod admin;
pub mod subscriptions;

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use gregor_metadata::MetadataImage;
use gregor_protocol::compression::{self, Codec};
use uuid::Uuid;

use crate::config::{BrokerConfig, ConfigError};
use subscriptions::Subscriptions;
pub use subscriptions::{Assignment, ClientInfo};

/// Client instances known at once (Kafka's client-instance cache holds as many).
pub const MAX_CLIENTS: usize = 16_384;
/// Payload bytes kept across all instances.
pub const MAX_STORED_BYTES: usize = 64 << 20;
/// Kafka's `telemetry.max.bytes` default.
pub const DEFAULT_MAX_BYTES: usize = 1 << 20;
/// Compression types a client may use, in Kafka's order of preference: zstd, lz4,
/// gzip, snappy (uncompressed is always accepted).
pub const ACCEPTED_COMPRESSION: [i8; 4] = [4, 3, 1, 2];

/// Why a telemetry request was refused; `error::telemetry_error_code` gives the code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TelemetryError {
    #[error("Invalid client instance id")]
    InvalidClientInstanceId,
    #[error("The client sent a terminating push before; further pushes are refused")]
    Terminated,
    #[error("Unknown client subscription id")]
    UnknownSubscriptionId,
    #[error("Request arrived before the next push interval time")]
    TooEarly,
    #[error("Telemetry request is larger than the maximum allowed size ({0} bytes)")]
    TooLarge(usize),
    #[error("Unsupported compression type {0}")]
    UnsupportedCompression(i8),
    #[error("{0}")]
    InvalidPayload(String),
}

/// Limits read from the broker config.
#[derive(Debug, Clone, Copy)]
pub struct TelemetryConfig {
    /// `telemetry.max.bytes`: the largest push accepted, as sent (compressed).
    pub max_bytes: usize,
    pub max_clients: usize,
    pub max_stored_bytes: usize,
}

impl TelemetryConfig {
    pub fn from_broker(config: &BrokerConfig) -> Result<Self, ConfigError> {
        let max_bytes = match config.get("telemetry.max.bytes") {
            None => DEFAULT_MAX_BYTES,
            Some(v) => v
                .trim()
                .parse::<i32>()
                .ok()
                .filter(|n| *n > 0)
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| ConfigError::Invalid {
                    name: "telemetry.max.bytes".into(),
                    value: v.to_string(),
                    why: "expected a positive 32-bit integer".into(),
                })?,
        };
        Ok(Self {
            max_bytes,
            max_clients: MAX_CLIENTS,
            max_stored_bytes: MAX_STORED_BYTES,
        })
    }
}

/// The latest push of one client instance.
#[derive(Debug, Clone)]
pub struct StoredPush {
    pub received: SystemTime,
    /// The compression the client used (Kafka's ids); `payload` is decompressed.
    pub compression: i8,
    /// OTLP `MetricsData` protobuf bytes, as the client encoded them.
    pub payload: Bytes,
    seq: u64,
}

/// Totals over the store, for tests and (later) the broker's own metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TelemetryStats {
    pub instances: usize,
    pub stored_payloads: usize,
    pub stored_bytes: usize,
    /// Pushes with metrics accepted since start (including ones evicted since).
    pub pushes: u64,
}

struct Instance {
    version: u64,
    assignment: Assignment,
    last_get: Option<Instant>,
    last_push: Option<Instant>,
    terminating: bool,
    last_error: Option<TelemetryError>,
    touched: u64,
    pushes: u64,
    latest: Option<StoredPush>,
}

#[derive(Default)]
struct Inner {
    subs: Subscriptions,
    instances: HashMap<Uuid, Instance>,
    /// Instances by last use, oldest first.
    lru: BTreeMap<u64, Uuid>,
    /// Stored payloads by arrival, oldest first.
    payloads: BTreeMap<u64, Uuid>,
    tick: u64,
    stored_bytes: usize,
    pushes: u64,
}

/// One PushTelemetry request's fields.
pub struct Push<'a> {
    pub client_instance_id: Uuid,
    pub subscription_id: i32,
    pub terminating: bool,
    pub compression_type: i8,
    pub metrics: &'a Bytes,
}

pub struct ClientTelemetry {
    config: TelemetryConfig,
    inner: Mutex<Inner>,
}

fn elapsed_at_least(since: Option<Instant>, now: Instant, ms: i32) -> bool {
    since.is_none_or(|t| {
        now.saturating_duration_since(t).as_millis() >= u128::from(ms.unsigned_abs())
    })
}

impl Inner {
    fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    /// The instance for `id`, (re)assigned if it is new or its subscriptions changed;
    /// the least recently seen instance goes when there are too many.
    fn instance(&mut self, id: Uuid, client: &ClientInfo, max_clients: usize) -> &mut Instance {
        let tick = self.next_tick();
        let version = self.subs.version;
        let found = self.instances.remove(&id);
        if let Some(old) = &found {
            self.lru.remove(&old.touched);
        }
        let mut inst = match found {
            Some(old) if old.version == version => old,
            // A reassigned instance keeps what it pushed (same client), not its timings.
            other => {
                let (pushes, latest) = other.map(|o| (o.pushes, o.latest)).unwrap_or_default();
                Instance {
                    version,
                    assignment: self.subs.assign(id, client),
                    last_get: None,
                    last_push: None,
                    terminating: false,
                    last_error: None,
                    touched: tick,
                    pushes,
                    latest,
                }
            }
        };
        inst.touched = tick;
        while self.instances.len() >= max_clients.max(1) {
            let Some((_, old)) = self.lru.pop_first() else {
                break;
            };
            self.forget(old);
        }
        self.lru.insert(tick, id);
        self.instances.entry(id).or_insert(inst)
    }

    fn forget(&mut self, id: Uuid) {
        if let Some(old) = self.instances.remove(&id) {
            self.lru.remove(&old.touched);
            if let Some(p) = old.latest {
                self.payloads.remove(&p.seq);
                self.stored_bytes -= p.payload.len();
            }
        }
    }

    fn drop_payload(&mut self, id: Uuid) {
        if let Some(p) = self.instances.get_mut(&id).and_then(|i| i.latest.take()) {
            self.payloads.remove(&p.seq);
            self.stored_bytes -= p.payload.len();
        }
    }
}

/// A GetTelemetrySubscriptions answer.
#[derive(Debug, Clone)]
pub struct Subscribed {
    pub client_instance_id: Uuid,
    pub assignment: Assignment,
    pub max_bytes: usize,
}

impl ClientTelemetry {
    pub fn new(config: TelemetryConfig) -> Self {
        Self {
            config,
            inner: Mutex::new(Inner::default()),
        }
    }

    pub fn config(&self) -> TelemetryConfig {
        self.config
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The state is maps and counters, consistent after any panic-free section; a
        // poisoned lock only means another request panicked, so keep serving.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// GetTelemetrySubscriptions: the zero id asks for a new client instance id. A known
    /// instance asking again before its push interval has passed is throttled, unless
    /// its last push was refused for its subscription or compression (it must re-ask).
    pub fn subscribe(
        &self,
        image: &MetadataImage,
        requested: Uuid,
        client: &ClientInfo,
        now: Instant,
    ) -> Result<Subscribed, TelemetryError> {
        let id = if requested.is_nil() {
            Uuid::new_v4()
        } else {
            requested
        };
        let mut inner = self.lock();
        inner.subs.refresh(image);
        let inst = inner.instance(id, client, self.config.max_clients);
        let since = inst.last_get.max(inst.last_push);
        let must_reask = matches!(
            inst.last_error,
            Some(TelemetryError::UnknownSubscriptionId | TelemetryError::UnsupportedCompression(_))
        );
        if !elapsed_at_least(since, now, inst.assignment.interval_ms) && !must_reask {
            inst.last_error = Some(TelemetryError::TooEarly);
            return Err(TelemetryError::TooEarly);
        }
        inst.last_get = Some(now);
        inst.last_error = None;
        Ok(Subscribed {
            client_instance_id: id,
            assignment: inst.assignment.clone(),
            max_bytes: self.config.max_bytes,
        })
    }

    /// PushTelemetry, in Kafka's order of checks: a terminated instance, the
    /// subscription id, the push rate (the first push after a Get is always on time; a
    /// terminating push is never too early), the size, the compression. An accepted
    /// payload replaces the instance's previous one.
    pub fn push(
        &self,
        image: &MetadataImage,
        push: &Push<'_>,
        client: &ClientInfo,
        now: Instant,
    ) -> Result<(), TelemetryError> {
        let id = push.client_instance_id;
        if id.is_nil() || id == Uuid::from_u64_pair(0, 1) {
            return Err(TelemetryError::InvalidClientInstanceId);
        }
        let codec = {
            let mut inner = self.lock();
            inner.subs.refresh(image);
            let inst = inner.instance(id, client, self.config.max_clients);
            let checked = check_push(inst, push, self.config.max_bytes, now);
            inst.terminating = push.terminating;
            inst.last_error = checked.as_ref().err().cloned();
            checked?
        };
        if push.metrics.is_empty() {
            return Ok(());
        }
        let limit = self
            .config
            .max_bytes
            .saturating_mul(16)
            .min(self.config.max_stored_bytes);
        let payload = if codec == Codec::None {
            push.metrics.clone()
        } else {
            let mut out = Vec::new();
            compression::decompress(codec, push.metrics, &mut out, limit).map_err(|e| match e {
                gregor_protocol::BatchError::DecompressedTooLarge { .. } => {
                    TelemetryError::TooLarge(self.config.max_bytes)
                }
                other => {
                    TelemetryError::InvalidPayload(format!("cannot decompress metrics: {other}"))
                }
            })?;
            Bytes::from(out)
        };
        let mut inner = self.lock();
        let seq = inner.next_tick();
        inner.drop_payload(id);
        let Some(inst) = inner.instances.get_mut(&id) else {
            return Ok(()); // evicted while decompressing: too many clients
        };
        inst.pushes += 1;
        let len = payload.len();
        inst.latest = Some(StoredPush {
            received: SystemTime::now(),
            compression: push.compression_type,
            payload,
            seq,
        });
        inner.payloads.insert(seq, id);
        inner.stored_bytes += len;
        inner.pushes += 1;
        while inner.stored_bytes > self.config.max_stored_bytes {
            let Some((_, old)) = inner.payloads.pop_first() else {
                break;
            };
            inner.drop_payload(old);
        }
        Ok(())
    }

    /// The latest payload a client instance pushed, if it is still kept.
    pub fn latest(&self, id: Uuid) -> Option<StoredPush> {
        self.lock()
            .instances
            .get(&id)
            .and_then(|i| i.latest.clone())
    }

    pub fn stats(&self) -> TelemetryStats {
        let inner = self.lock();
        TelemetryStats {
            instances: inner.instances.len(),
            stored_payloads: inner.payloads.len(),
            stored_bytes: inner.stored_bytes,
            pushes: inner.pushes,
        }
    }

    /// Instances whose assignment includes subscription `name`, and the pushes they
    /// made (for DescribeConfigs on the subscription).
    pub fn subscription_stats(&self, name: &str) -> (usize, u64) {
        let inner = self.lock();
        inner
            .instances
            .values()
            .filter(|i| i.assignment.subscriptions.iter().any(|s| s == name))
            .fold((0, 0), |(n, p), i| (n + 1, p + i.pushes))
    }
}

fn check_push(
    inst: &mut Instance,
    push: &Push<'_>,
    max_bytes: usize,
    now: Instant,
) -> Result<Codec, TelemetryError> {
    if inst.terminating {
        return Err(TelemetryError::Terminated);
    }
    if push.subscription_id != inst.assignment.subscription_id {
        return Err(TelemetryError::UnknownSubscriptionId);
    }
    let after_get = inst.last_get > inst.last_push;
    let on_time = after_get
        || elapsed_at_least(
            inst.last_get.max(inst.last_push),
            now,
            inst.assignment.interval_ms,
        );
    if on_time {
        inst.last_push = Some(now);
    } else if !push.terminating {
        return Err(TelemetryError::TooEarly);
    }
    if push.metrics.len() > max_bytes {
        return Err(TelemetryError::TooLarge(max_bytes));
    }
    let codec = Codec::from_attributes(i16::from(push.compression_type))
        .ok()
        .filter(|_| (0..=4).contains(&push.compression_type))
        .ok_or(TelemetryError::UnsupportedCompression(
            push.compression_type,
        ))?;
    Ok(codec)
}

#[cfg(test)]
mod tests;
