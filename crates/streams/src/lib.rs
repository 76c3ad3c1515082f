//! gregor-streams: stream processing on Kafka topics, after Kafka Streams.
//!
//! Build a [`Topology`] with the DSL ([`StreamsBuilder`], [`KStream`], [`KTable`],
//! grouped and windowed aggregations, stream-table and foreign-key table-table joins, the
//! processor API with punctuation), test it with
//! [`TopologyTestDriver`] (no broker), and run it with [`KafkaStreams`], which reaches the
//! cluster only through the Kafka protocol (rdkafka).
//!
//! Layout:
//! - `dsl/`: the typed DSL and its parameter types
//! - `processor/`: the untyped processor graph the DSL builds, sub-topologies
//! - `state/`: stores (in-memory maps persisted to redb, changelog topics), queries
//! - `runtime/`: tasks, the test driver, the Kafka runtime
//! - `serde/`: serdes, including the schema-registry ones (`AvroSerde`)
//! - `window.rs`, `config.rs`, `record.rs`, `error.rs`

mod config;
mod dsl;
mod error;
mod processor;
mod record;
mod runtime;
mod serde;
mod state;
mod window;

pub use config::{DeserializationHandler, ProcessingGuarantee, StreamsConfig};
pub use dsl::{
    BranchedKStream, Consumed, Data, Grouped, KGroupedStream, KStream, KTable, Materialized,
    Produced, RecordView, SessionWindowedKStream, StreamJoined, StreamsBuilder, Suppressed,
    TimeWindowedKStream, TimestampExtractor, Topology,
};
pub use error::{Result, StreamsError};
pub use processor::api::{KeyValueStore, Processor, ProcessorContext, PunctuationType, Punctuator};
pub use record::RawRecord;
pub use runtime::kafka::{KafkaStreams, State};
pub use runtime::test_driver::{TestInputTopic, TestOutputTopic, TestRecord, TopologyTestDriver};
pub use serde::{
    AvroSerde, JsonSchemaSerde, RegistrySerdeConfig, RegistrySerdeError, Serde, SerdeRef, Serdes,
};
pub use state::{ReadOnlyKeyValueStore, ReadOnlyWindowStore};
pub use window::{JoinWindows, SessionWindows, TimeWindows, Window, Windowed};
