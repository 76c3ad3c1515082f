//! `gregor-registry-client`: a client of Confluent Schema Registry's REST API, and
//! Confluent's wire-format framing, for serializers and converters (Gregor Connect's
//! Avro, JSON Schema and Protobuf converters; Streams serdes).
//!
//! It speaks only HTTP to a registry (Gregor's `gregor registry` or Confluent's), never
//! the registry's internals, so it works with either.
//!
//! Layout:
//! - [`client`]: [`Client`] (async, on hyper-util's pooled HTTP/1 client) and
//!   [`BlockingClient`] (the same on its own current-thread runtime, for plain
//!   threads such as Connect task threads). Schemas by id and the subject → id of
//!   registered schemas are cached: both are immutable in the registry.
//! - [`wire`]: framing (`0x00`, 4-byte big-endian schema id, payload) and Protobuf's
//!   message-index array.
//! - [`strategy`]: subject name strategies (`TopicNameStrategy` by default).
//!
//! ```
//! use gregor_registry_client::wire;
//! let framed = wire::frame(42, b"payload");
//! assert_eq!(wire::unframe(&framed).ok(), Some((42, &b"payload"[..])));
//! ```

pub mod client;
pub mod strategy;
pub mod wire;

pub use client::{BlockingClient, Client, ClientConfig};
pub use strategy::SubjectNameStrategy;
pub use wire::WireError;

use serde::{Deserialize, Serialize};

/// The kind of a schema, as the registry names it in `schemaType` (absent means Avro).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum SchemaType {
    #[default]
    Avro,
    Json,
    Protobuf,
}

/// A reference from a schema to another registered schema (a Protobuf import, a JSON
/// Schema `$ref`, an Avro named type), by the name the referring schema uses.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SchemaReference {
    pub name: String,
    pub subject: String,
    pub version: i32,
}

/// A schema's text with its type and references: what is registered, and what an id
/// resolves to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Schema {
    pub schema_type: SchemaType,
    /// The schema text (Avro or JSON Schema JSON, `.proto` text or a base64 descriptor).
    pub schema: String,
    pub references: Vec<SchemaReference>,
}

impl Schema {
    /// A schema without references.
    pub fn new(schema_type: SchemaType, schema: impl Into<String>) -> Self {
        Schema {
            schema_type,
            schema: schema.into(),
            references: Vec::new(),
        }
    }
}

/// A schema as registered under a subject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisteredSchema {
    pub subject: String,
    pub version: i32,
    pub id: u32,
    pub schema: Schema,
}

/// What went wrong talking to the registry.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `schema.registry.url` is not an `http://` URL this client can use.
    #[error("invalid schema registry URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    /// The registry could not be reached, or did not answer in time.
    #[error("schema registry {url} unreachable: {reason}")]
    Transport { url: String, reason: String },
    /// The registry did not answer within the request timeout.
    #[error("schema registry {url} did not answer in {timeout:?}")]
    Timeout {
        url: String,
        timeout: std::time::Duration,
    },
    /// The registry answered with an error body (`error_code` is Confluent's, e.g.
    /// 40403 "Schema not found", 40401 "Subject not found").
    #[error("schema registry error {error_code} (HTTP {status}): {message}")]
    Api {
        status: u16,
        error_code: i32,
        message: String,
    },
    /// The registry's answer is not what the REST API specifies.
    #[error("unexpected schema registry response: {0}")]
    Decode(String),
}

impl Error {
    /// True when the registry says the subject, version or schema does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Api { status: 404, .. })
    }
}

/// This crate's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;
