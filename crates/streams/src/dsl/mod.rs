//! The DSL: [`StreamsBuilder`] → [`KStream`]/[`KTable`] → [`Topology`].
//!
//! Layout:
//! - `mod.rs`: parameter types (`Consumed`, `Produced`, `Grouped`, `Materialized`,
//!   `Suppressed`) and the timestamp extractor
//! - `builder.rs`: `StreamsBuilder`, `Topology`
//! - `kstream.rs`: `KStream`, `BranchedKStream`
//! - `ktable.rs`: `KTable`
//! - `fk_join.rs`: `KTable` foreign-key joins
//! - `process.rs`: `KStream::process` (the processor API, punctuation)
//! - `grouped.rs`: `KGroupedStream`, `TimeWindowedKStream`
//! - `session.rs`: `SessionWindowedKStream`

pub(crate) mod builder;
mod fk_join;
mod grouped;
mod kstream;
mod ktable;
mod process;
mod session;

use std::sync::Arc;
use std::time::Duration;

pub use builder::{StreamsBuilder, Topology};
pub use grouped::{KGroupedStream, TimeWindowedKStream};
pub use kstream::{BranchedKStream, KStream};
pub use ktable::KTable;
pub use session::SessionWindowedKStream;

use crate::serde::SerdeRef;

/// What a key or value type must be to flow through a topology.
pub trait Data: Clone + Send + 'static {}
impl<T: Clone + Send + 'static> Data for T {}

/// The raw record a [`TimestampExtractor`] sees.
pub struct RecordView<'a> {
    /// Topic.
    pub topic: &'a str,
    /// Key bytes.
    pub key: Option<&'a [u8]>,
    /// Value bytes.
    pub value: Option<&'a [u8]>,
    /// The record's own timestamp.
    pub timestamp: i64,
}

/// Picks the event time of an input record. The default uses the record's timestamp.
pub trait TimestampExtractor: Send + Sync {
    /// The event time (ms); a negative result drops the record.
    fn extract(&self, record: &RecordView<'_>) -> i64;
}

impl<F: Fn(&RecordView<'_>) -> i64 + Send + Sync> TimestampExtractor for F {
    fn extract(&self, record: &RecordView<'_>) -> i64 {
        self(record)
    }
}

/// How a source topic is read.
pub struct Consumed<K, V> {
    pub(crate) key_serde: SerdeRef<K>,
    pub(crate) value_serde: SerdeRef<V>,
    pub(crate) extractor: Option<Arc<dyn TimestampExtractor>>,
}

impl<K, V> Consumed<K, V> {
    /// Reads keys and values with these serdes.
    pub fn with(key_serde: SerdeRef<K>, value_serde: SerdeRef<V>) -> Self {
        Consumed {
            key_serde,
            value_serde,
            extractor: None,
        }
    }

    /// Takes event time from `extractor` instead of the record timestamp.
    pub fn with_timestamp_extractor(
        mut self,
        extractor: impl TimestampExtractor + 'static,
    ) -> Self {
        self.extractor = Some(Arc::new(extractor));
        self
    }
}

/// How records are written to a topic.
pub struct Produced<K, V> {
    pub(crate) key_serde: SerdeRef<K>,
    pub(crate) value_serde: SerdeRef<V>,
}

impl<K, V> Produced<K, V> {
    /// Writes keys and values with these serdes.
    pub fn with(key_serde: SerdeRef<K>, value_serde: SerdeRef<V>) -> Self {
        Produced {
            key_serde,
            value_serde,
        }
    }
}

/// Serdes (and an optional name) for a grouping; the serdes write the repartition topic
/// when the key changed before the grouping, and the stores.
pub struct Grouped<K, V> {
    pub(crate) key_serde: SerdeRef<K>,
    pub(crate) value_serde: SerdeRef<V>,
    pub(crate) name: Option<String>,
}

impl<K, V> Grouped<K, V> {
    /// Groups with these serdes.
    pub fn with(key_serde: SerdeRef<K>, value_serde: SerdeRef<V>) -> Self {
        Grouped {
            key_serde,
            value_serde,
            name: None,
        }
    }

    /// Names the repartition topic `<application.id>-<name>-repartition`.
    pub fn named(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }
}

/// Serdes (and an optional name) for a stream-stream join: they write the join buffers'
/// changelogs (`<application.id>-<name>-this-join-store-changelog`, `...-other-...`) and,
/// when a side's key changed, its repartition topic.
pub struct StreamJoined<K, V, VO> {
    pub(crate) key_serde: SerdeRef<K>,
    pub(crate) value_serde: SerdeRef<V>,
    pub(crate) other_value_serde: SerdeRef<VO>,
    pub(crate) name: Option<String>,
}

impl<K, V, VO> StreamJoined<K, V, VO> {
    /// Joins with these serdes.
    pub fn with(
        key_serde: SerdeRef<K>,
        value_serde: SerdeRef<V>,
        other_value_serde: SerdeRef<VO>,
    ) -> Self {
        StreamJoined {
            key_serde,
            value_serde,
            other_value_serde,
            name: None,
        }
    }

    /// Names the join's stores and topics.
    pub fn named(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }
}

/// The store behind an aggregation or table: its name (queryable, and part of the
/// changelog topic name `<application.id>-<name>-changelog`) and, for windows, retention.
#[derive(Debug, Clone, Default)]
pub struct Materialized {
    pub(crate) name: Option<String>,
    pub(crate) retention: Option<Duration>,
}

impl Materialized {
    /// A store with this name.
    pub fn as_(name: &str) -> Self {
        Materialized {
            name: Some(name.to_string()),
            retention: None,
        }
    }

    /// How long a window store keeps windows (at least window size + grace).
    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.retention = Some(retention);
        self
    }
}

/// Suppression of intermediate results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suppressed {
    /// Emit only the final result of each window, once it closes (unbounded buffer).
    UntilWindowCloses,
}

impl Suppressed {
    /// `Suppressed.untilWindowCloses(unbounded())`.
    pub fn until_window_closes() -> Self {
        Suppressed::UntilWindowCloses
    }
}
