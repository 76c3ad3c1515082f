//! What every schema-registry serde shares: the configuration (Confluent's names), one
//! registry client per configuration, and the serdes' error type.
//!
//! Serdes are called synchronously on the stream thread, so the registry is reached
//! through [`BlockingClient`]; its caches (and the serdes' own, by topic and by id) mean
//! a request only on the first record of a topic or of a schema id.

use std::sync::Arc;

use gregor_registry_client::{
    BlockingClient, ClientConfig, Schema, SchemaType, SubjectNameStrategy,
};

use crate::config::StreamsConfig;
use crate::error::{Result, StreamsError};

/// How a registry serde finds and uses the schema registry: Confluent's serde settings.
///
/// | name | default | meaning |
/// |---|---|---|
/// | `schema.registry.url` | required | comma-separated `http://` URLs |
/// | `auto.register.schemas` | `true` | register the schema; `false` looks it up (it must be registered) |
/// | `use.latest.version` | `false` | write with the subject's latest schema instead of the serde's own |
/// | `key.subject.name.strategy` / `value.subject.name.strategy` | `TopicNameStrategy` | subject of a topic's keys / values |
/// | `basic.auth.user.info` | none | `user:password` for HTTP basic auth |
///
/// Other entries are ignored, so a whole [`StreamsConfig`] can be passed. Clones share
/// one client and so its caches.
///
/// ```
/// use gregor_streams::RegistrySerdeConfig;
/// let config = RegistrySerdeConfig::from_props([
///     ("schema.registry.url", "http://127.0.0.1:8081"),
///     ("auto.register.schemas", "false"),
/// ])
/// .unwrap();
/// assert!(!config.auto_register());
/// ```
#[derive(Clone)]
pub struct RegistrySerdeConfig {
    pub(super) client: Arc<ClientHandle>,
    urls: String,
    auto_register: bool,
    use_latest_version: bool,
    key_strategy: SubjectNameStrategy,
    value_strategy: SubjectNameStrategy,
}

impl std::fmt::Debug for RegistrySerdeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistrySerdeConfig")
            .field("schema.registry.url", &self.urls)
            .field("auto.register.schemas", &self.auto_register)
            .field("use.latest.version", &self.use_latest_version)
            .field("key.subject.name.strategy", &self.key_strategy)
            .field("value.subject.name.strategy", &self.value_strategy)
            .finish()
    }
}

impl RegistrySerdeConfig {
    /// The defaults with `schema.registry.url` = `urls`.
    pub fn new(urls: &str) -> Result<Self> {
        Self::from_props([("schema.registry.url", urls)])
    }

    /// A config from Confluent's serde settings (see the table above).
    pub fn from_props<I, K, V>(props: I) -> Result<Self>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut urls = None;
        let mut auth = None;
        let mut auto_register = true;
        let mut use_latest_version = false;
        let mut key_strategy = SubjectNameStrategy::default();
        let mut value_strategy = SubjectNameStrategy::default();
        for (k, v) in props {
            let (k, v) = (k.as_ref(), v.as_ref());
            match k {
                "schema.registry.url" => urls = Some(v.to_string()),
                "basic.auth.user.info" | "schema.registry.basic.auth.user.info" => {
                    auth = Some(v.to_string())
                }
                "auto.register.schemas" => auto_register = parse_bool(k, v)?,
                "use.latest.version" => use_latest_version = parse_bool(k, v)?,
                "key.subject.name.strategy" => key_strategy = parse_strategy(k, v)?,
                "value.subject.name.strategy" => value_strategy = parse_strategy(k, v)?,
                _ => {}
            }
        }
        let urls = urls.ok_or_else(|| config_error("schema.registry.url", "required"))?;
        let mut client = ClientConfig::new(&urls);
        client.basic_auth = auth;
        let client =
            BlockingClient::new(client).map_err(|e| config_error("schema.registry.url", e))?;
        Ok(RegistrySerdeConfig {
            client: Arc::new(ClientHandle(client)),
            urls,
            auto_register,
            use_latest_version,
            key_strategy,
            value_strategy,
        })
    }

    /// A config from a streams application's entries (`schema.registry.url` and the
    /// others set next to Kafka Streams' own, as Kafka Streams apps do).
    pub fn from_streams_config(config: &StreamsConfig) -> Result<Self> {
        Self::from_props(config.prefixed(""))
    }

    /// `auto.register.schemas`.
    pub fn auto_register(&self) -> bool {
        self.auto_register
    }

    /// `use.latest.version`.
    pub fn use_latest_version(&self) -> bool {
        self.use_latest_version
    }

    /// The subject name strategy for keys (`is_key`) or values.
    pub fn strategy(&self, is_key: bool) -> SubjectNameStrategy {
        if is_key {
            self.key_strategy
        } else {
            self.value_strategy
        }
    }
}

fn config_error(key: &str, reason: impl std::fmt::Display) -> StreamsError {
    StreamsError::Config {
        key: key.to_string(),
        reason: reason.to_string(),
    }
}

fn parse_bool(key: &str, v: &str) -> Result<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(config_error(key, format!("{v:?} is not true or false"))),
    }
}

fn parse_strategy(key: &str, v: &str) -> Result<SubjectNameStrategy> {
    SubjectNameStrategy::from_class(v)
        .ok_or_else(|| config_error(key, format!("unknown subject name strategy {v:?}")))
}

/// The shared [`BlockingClient`] (dropping it is safe anywhere: it shuts its runtime
/// down in the background).
pub(super) struct ClientHandle(BlockingClient);

impl std::ops::Deref for ClientHandle {
    type Target = BlockingClient;
    fn deref(&self) -> &BlockingClient {
        &self.0
    }
}

/// Runs a [`BlockingClient`] call. On the stream thread (no runtime) it runs in place;
/// from inside a tokio runtime (a test, or an app that pipes records from async code),
/// where blocking on another runtime would panic, it runs on a scoped thread. Either way
/// only cache misses get here.
pub(super) fn blocking<R: Send>(call: impl FnOnce() -> R + Send) -> R {
    if tokio::runtime::Handle::try_current().is_err() {
        return call();
    }
    std::thread::scope(|s| match s.spawn(call).join() {
        Ok(r) => r,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// The id to write `topic`'s keys (`is_key`) or values with, under the subject the
/// strategy names: the subject's latest version with `use.latest.version` (returned with
/// its schema), else `own` registered (`auto.register.schemas`) or looked up.
pub(super) fn writer_id(
    config: &RegistrySerdeConfig,
    is_key: bool,
    topic: &str,
    record_name: Option<&str>,
    own: &Schema,
) -> Result<(u32, Option<Schema>), RegistrySerdeError> {
    let strategy = config.strategy(is_key);
    let subject = strategy
        .subject(topic, is_key, record_name)
        .ok_or(RegistrySerdeError::NoSubject { strategy })?;
    let client = &config.client;
    if config.use_latest_version() {
        let latest = blocking(|| client.latest(&subject)).map_err(|source| {
            RegistrySerdeError::Registry {
                what: format!("latest version of subject {subject}"),
                source,
            }
        })?;
        return Ok((latest.id, Some(latest.schema)));
    }
    let auto = config.auto_register();
    let id = blocking(|| client.id_for(&subject, own, auto)).map_err(|source| {
        RegistrySerdeError::Registry {
            what: format!(
                "{} the schema under subject {subject}",
                if auto { "registering" } else { "looking up" }
            ),
            source,
        }
    })?;
    Ok((id, None))
}

/// The schema with `id` (the client caches it); a 404 is the record's fault.
pub(super) fn schema_by_id(
    config: &RegistrySerdeConfig,
    id: u32,
) -> Result<Arc<Schema>, RegistrySerdeError> {
    let client = &config.client;
    blocking(|| client.schema_by_id(id)).map_err(|source| {
        if source.is_not_found() {
            RegistrySerdeError::UnknownSchemaId { id, source }
        } else {
            RegistrySerdeError::Registry {
                what: format!("schema id {id}"),
                source,
            }
        }
    })
}

/// Why a registry serde could not encode or decode a record.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistrySerdeError {
    /// Not Confluent-framed (no magic byte 0, or shorter than the 5-byte header).
    #[error(transparent)]
    Wire(#[from] gregor_registry_client::WireError),
    /// A null where the type has no null (only an `Option` reads a null).
    #[error("null where an Avro value was expected")]
    Null,
    /// The record names a schema id the registry does not have.
    #[error("schema id {id} not found in the registry: {source}")]
    UnknownSchemaId {
        id: u32,
        #[source]
        source: gregor_registry_client::Error,
    },
    /// The schema of the record's id is not of the serde's kind.
    #[error("schema id {id} is a {found:?} schema, not {expected:?}")]
    WrongType {
        id: u32,
        found: SchemaType,
        expected: SchemaType,
    },
    /// A schema from the registry that apache-avro cannot parse (or one with references,
    /// which this serde does not resolve).
    #[error("schema {what} cannot be used: {reason}")]
    BadSchema { what: String, reason: String },
    /// The Avro payload does not decode with its writer schema, or does not resolve to
    /// the reader schema, or the result does not map to the Rust type.
    #[error("Avro decoding with writer schema id {id}: {source}")]
    Decode {
        id: u32,
        #[source]
        source: Box<apache_avro::Error>,
    },
    /// The value does not encode with the writer schema.
    #[error("Avro encoding with schema id {id}: {source}")]
    Encode {
        id: u32,
        #[source]
        source: Box<apache_avro::Error>,
    },
    /// A JSON Schema serde's payload is not JSON of the Rust type (or the value does not
    /// serialize).
    #[error("JSON (schema id {id}): {source}")]
    Json {
        id: u32,
        #[source]
        source: serde_json::Error,
    },
    /// The subject name strategy needs a record name and the schema has none.
    #[error("{strategy:?} needs a named Avro schema (a record, enum or fixed)")]
    NoSubject { strategy: SubjectNameStrategy },
    /// The registry could not answer (unreachable, timeout, refused a registration, or
    /// the schema is not registered with `auto.register.schemas=false`).
    #[error("schema registry, {what}: {source}")]
    Registry {
        what: String,
        #[source]
        source: gregor_registry_client::Error,
    },
}

impl RegistrySerdeError {
    /// True when the record itself is at fault (malformed bytes, unknown id, a payload
    /// that does not match its schema): the deserialization exception handler decides
    /// whether to skip it. A registry that cannot be reached or refuses is not the
    /// record's fault and fails the application instead, so that no record is skipped
    /// because the registry was briefly down.
    pub fn is_record_fault(&self) -> bool {
        !matches!(
            self,
            RegistrySerdeError::Registry { .. } | RegistrySerdeError::NoSubject { .. }
        )
    }

    /// The crate's error: [`StreamsError::Serde`] for a record's fault (the source turns
    /// it into a deserialization error), [`StreamsError::SchemaRegistry`] otherwise.
    pub(super) fn into_streams(self, topic: &str) -> StreamsError {
        if self.is_record_fault() {
            StreamsError::serde(topic, self)
        } else {
            StreamsError::SchemaRegistry {
                topic: topic.to_string(),
                source: Box::new(self),
            }
        }
    }
}
