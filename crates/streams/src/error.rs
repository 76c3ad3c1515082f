//! The crate's one error type.

use thiserror::Error;

/// Everything that can go wrong building or running a topology.
#[derive(Debug, Error)]
pub enum StreamsError {
    /// A serde could not turn bytes into a value (or a value into bytes).
    #[error("serde error on topic {topic}: {reason}")]
    Serde { topic: String, reason: String },
    /// An input record could not be deserialized (subject to
    /// `default.deserialization.exception.handler`).
    #[error("cannot deserialize a record of {topic}: {reason}")]
    Deserialization { topic: String, reason: String },
    /// A schema-registry serde could not reach or use the registry. Not a fault of the
    /// record, so never skipped by `default.deserialization.exception.handler`.
    #[error("schema registry, for topic {topic}: {source}")]
    SchemaRegistry {
        topic: String,
        #[source]
        source: Box<crate::serde::RegistrySerdeError>,
    },
    /// The topology is not valid (unknown topic, store used twice, ...).
    #[error("invalid topology: {0}")]
    Topology(String),
    /// A required or malformed configuration entry.
    #[error("invalid config {key}: {reason}")]
    Config { key: String, reason: String },
    /// The embedded state store failed.
    #[error("state store {store}: {reason}")]
    Store { store: String, reason: String },
    /// The Kafka client failed.
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// A local file operation failed (state directory).
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// A value reached a processor with a type it was not built for (a bug in the DSL).
    #[error("internal type mismatch in processor {0}")]
    TypeMismatch(String),
    /// The application is not running (or stopped with an error).
    #[error("streams application not running: {0}")]
    NotRunning(String),
}

impl StreamsError {
    pub(crate) fn serde(topic: &str, reason: impl std::fmt::Display) -> Self {
        StreamsError::Serde {
            topic: topic.to_string(),
            reason: reason.to_string(),
        }
    }

    pub(crate) fn store(store: &str, reason: impl std::fmt::Display) -> Self {
        StreamsError::Store {
            store: store.to_string(),
            reason: reason.to_string(),
        }
    }
}

/// Result with [`StreamsError`].
pub type Result<T, E = StreamsError> = std::result::Result<T, E>;
