//! `gregor-connect-api`: what a connector sees of gregor connect, after Kafka Connect's
//! `connect-api` module. Connectors depend on this crate only, never on the runtime.
//!
//! Layout:
//! - `data`: `Schema` and `Value` (Kafka Connect's data model: primitives, arrays, maps,
//!   structs), both optional per record as in Kafka.
//! - `record`: `ConnectRecord` and its source/sink forms, with headers.
//! - `config`: `ConfigDef`, a declarative description of a plugin's settings that both
//!   parses and validates (the REST `config/validate` endpoint renders it).
//! - `connector`: the `Connector`, `SourceTask` and `SinkTask` traits.
//! - `error`: `ConnectError`, the one error type plugins return.

pub mod config;
pub mod connector;
pub mod data;
pub mod error;
pub mod record;

pub use config::{ConfigDef, ConfigKey, ConfigType, Importance, Validator};
pub use connector::{
    Connector, ConnectorType, ExactlyOnceSupport, SinkTask, SourceTask, TaskConfig,
};
pub use data::{Field, Schema, SchemaType, Value};
pub use error::ConnectError;
pub use record::{ConnectRecord, Header, SinkRecord, SourceRecord};

/// Connector and task properties: string keys to string values, as in Kafka.
pub type Props = std::collections::BTreeMap<String, String>;
