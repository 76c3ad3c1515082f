//! Client quotas, enforced the way Kafka does (KIP-13, KIP-124, KIP-219, KIP-612).
//!
//! - **Byte rates** (`producer_byte_rate`, `consumer_byte_rate`): a produce's request
//!   bytes and a fetch's response bytes are recorded against the quota that applies to
//!   the client (see `gregor_metadata::quotas::resolve`); over it, the response carries
//!   `throttle_time_ms` and the connection reads nothing more until that time passed
//!   (KIP-219's muted channel), so a client that ignores the field is held back too. A
//!   throttled fetch answers with no data (its bytes are taken back), as Kafka does.
//! - **Request time** (`request_percentage`): the time the broker spent handling the
//!   client's requests, as a percentage of one thread over the window; same throttle.
//! - **Connection creation** (`max.connection.creation.rate` broker-wide, and the
//!   `connection_creation_rate` quota per address): the accept loop waits before taking
//!   the next connection; a connection from an address over its rate is closed after
//!   the throttle time.
//!
//! Nothing is measured for a client no quota applies to: without quotas this costs one
//! emptiness check per request. Sensors idle for a whole sampled span are dropped (their
//! rate is zero by then), so a stream of new client ids cannot grow memory without bound.

mod rate;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use gregor_metadata::image::MetadataImage;
use gregor_metadata::quotas::{self, QuotaTags};

pub use rate::{Rate, Window};

/// What a quota limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuotaKind {
    Produce,
    Fetch,
    Request,
}

impl QuotaKind {
    fn key(self) -> &'static str {
        match self {
            QuotaKind::Produce => quotas::PRODUCER_BYTE_RATE,
            QuotaKind::Fetch => quotas::CONSUMER_BYTE_RATE,
            QuotaKind::Request => quotas::REQUEST_PERCENTAGE,
        }
    }
}

struct Sensor {
    rate: Rate,
    last_used: Instant,
}

/// A recording that may be taken back (a throttled fetch).
#[derive(Debug, Clone)]
pub struct Recorded {
    pub throttle: Duration,
    sensor: Option<(QuotaKind, QuotaTags)>,
    amount: f64,
}

impl Recorded {
    fn none() -> Self {
        Self {
            throttle: Duration::ZERO,
            sensor: None,
            amount: 0.0,
        }
    }
}

/// The broker's client-quota sensors.
pub struct ClientQuotas {
    window: Window,
    sensors: Mutex<Sensors>,
    /// Connections accepted broker-wide (`max.connection.creation.rate`).
    accepted: Mutex<Rate>,
    max_connection_rate: f64,
}

#[derive(Default)]
struct Sensors {
    by_client: HashMap<(QuotaKind, QuotaTags), Sensor>,
    by_ip: HashMap<IpAddr, Sensor>,
    last_purge: Option<Instant>,
}

impl Sensors {
    fn purge(&mut self, now: Instant, w: Window) {
        let span = w.max_throttle();
        if self
            .last_purge
            .is_some_and(|t| now.saturating_duration_since(t) < span)
        {
            return;
        }
        self.last_purge = Some(now);
        self.by_client
            .retain(|_, s| now.saturating_duration_since(s.last_used) < span);
        self.by_ip
            .retain(|_, s| now.saturating_duration_since(s.last_used) < span);
    }
}

impl ClientQuotas {
    pub fn new(window: Window, max_connection_rate: f64) -> Self {
        Self {
            window,
            sensors: Mutex::new(Sensors::default()),
            accepted: Mutex::new(Rate::default()),
            max_connection_rate,
        }
    }

    /// Records `amount` for a client and returns how long it must be throttled.
    pub fn record(
        &self,
        image: &MetadataImage,
        kind: QuotaKind,
        user: &str,
        client_id: &str,
        amount: f64,
    ) -> Recorded {
        let Some((quota, tags)) = quotas::resolve(image, user, client_id, kind.key()) else {
            return Recorded::none();
        };
        let now = Instant::now();
        let mut sensors = self.sensors.lock().unwrap_or_else(PoisonError::into_inner);
        sensors.purge(now, self.window);
        let key = (kind, tags);
        let sensor = sensors
            .by_client
            .entry(key.clone())
            .or_insert_with(|| Sensor {
                rate: Rate::default(),
                last_used: now,
            });
        sensor.last_used = now;
        sensor.rate.record(now, amount, self.window);
        let throttle = sensor.rate.throttle(now, quota, self.window);
        Recorded {
            throttle,
            sensor: Some(key),
            amount,
        }
    }

    /// Takes back what `recorded` added (the data was not sent after all).
    pub fn unrecord(&self, recorded: &Recorded) {
        let Some(key) = &recorded.sensor else { return };
        let mut sensors = self.sensors.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(s) = sensors.by_client.get_mut(key) {
            s.rate.unrecord(recorded.amount);
        }
    }

    /// A new connection from `ip`: how long to wait before closing it when its address
    /// is over its `connection_creation_rate`, zero when it may stay.
    pub fn connection_from(&self, image: &MetadataImage, ip: IpAddr) -> Duration {
        let Some(quota) = quotas::resolve_ip(image, ip) else {
            return Duration::ZERO;
        };
        let now = Instant::now();
        let mut sensors = self.sensors.lock().unwrap_or_else(PoisonError::into_inner);
        sensors.purge(now, self.window);
        let sensor = sensors.by_ip.entry(ip).or_insert_with(|| Sensor {
            rate: Rate::default(),
            last_used: now,
        });
        sensor.last_used = now;
        sensor.rate.record(now, 1.0, self.window);
        let t = sensor.rate.throttle(now, quota, self.window);
        if !t.is_zero() {
            // A refused connection does not count against the address's rate, as in
            // Kafka, so a client retrying at the quota gets in.
            sensor.rate.unrecord(1.0);
        }
        t
    }

    /// One connection accepted broker-wide: how long the accept loop waits before it
    /// takes the next (`max.connection.creation.rate`).
    pub fn accepted(&self) -> Duration {
        if !self.max_connection_rate.is_finite() || self.max_connection_rate >= f64::from(i32::MAX)
        {
            return Duration::ZERO;
        }
        let now = Instant::now();
        let mut rate = self.accepted.lock().unwrap_or_else(PoisonError::into_inner);
        rate.record(now, 1.0, self.window);
        rate.throttle(now, self.max_connection_rate, self.window)
    }
}

/// Request time as Kafka records it against `request_percentage`: percent of one
/// thread's second.
pub fn request_percentage(elapsed: Duration) -> f64 {
    elapsed.as_secs_f64() * 100.0
}

/// Milliseconds for a response's `throttle_time_ms`.
pub fn throttle_ms(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}
