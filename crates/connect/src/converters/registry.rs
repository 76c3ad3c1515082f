//! What the schema-registry converters share: their registry settings (Confluent's
//! names), the client (created on first use, on the task thread that converts: creating
//! a converter, e.g. to validate a config, does no I/O), and the subject a record's
//! schema goes under.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use gregor_connect_api::config::{get_bool, get_str};
use gregor_connect_api::{ConnectError, Props};
use gregor_registry_client::{
    wire, BlockingClient, ClientConfig, RegisteredSchema, Schema as RegistrySchema, SchemaType,
    SubjectNameStrategy,
};

/// `schema.registry.url` and friends, read from the converter's props.
pub struct RegistrySettings {
    config: ClientConfig,
    auto_register: bool,
    use_latest: bool,
    strategy: SubjectNameStrategy,
    is_key: bool,
    client: Mutex<Option<Arc<BlockingClient>>>,
    /// The latest version per subject (`use.latest.version`), fetched once, as
    /// Confluent's `latest.cache.ttl.sec=-1` default does.
    latest: Mutex<HashMap<String, RegisteredSchema>>,
}

impl RegistrySettings {
    /// Reads the settings; a missing or malformed URL is a config error.
    pub fn configure(props: &Props, is_key: bool) -> Result<Self, ConnectError> {
        let urls = get_str(props, "schema.registry.url")
            .filter(|u| !u.trim().is_empty())
            .ok_or_else(|| {
                ConnectError::Config(
                    "Missing required configuration \"schema.registry.url\" which has no default value."
                        .into(),
                )
            })?;
        let mut config = ClientConfig::new(urls);
        config.basic_auth = get_str(props, "basic.auth.user.info")
            .or_else(|| get_str(props, "schema.registry.basic.auth.user.info"))
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        config.check().map_err(|e| {
            ConnectError::Config(format!(
                "Invalid value {urls} for configuration schema.registry.url: {e}"
            ))
        })?;
        let side = if is_key { "key" } else { "value" };
        let strategy_key = format!("{side}.subject.name.strategy");
        let strategy = match get_str(props, &strategy_key) {
            None => SubjectNameStrategy::TopicName,
            Some(class) => SubjectNameStrategy::from_class(class).ok_or_else(|| {
                ConnectError::Config(format!(
                    "Invalid value {class} for configuration {strategy_key}: Class {class} could not be found."
                ))
            })?,
        };
        Ok(RegistrySettings {
            config,
            auto_register: get_bool(props, "auto.register.schemas", true),
            use_latest: get_bool(props, "use.latest.version", false),
            strategy,
            is_key,
            client: Mutex::new(None),
            latest: Mutex::new(HashMap::new()),
        })
    }

    /// The client, created on first use.
    pub fn client(&self) -> Result<Arc<BlockingClient>, ConnectError> {
        let mut slot = self.client.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let c = Arc::new(BlockingClient::new(self.config.clone()).map_err(registry_error)?);
        *slot = Some(c.clone());
        Ok(c)
    }

    /// The subject of `topic`'s key or value schema whose record is `record_name`.
    pub fn subject(&self, topic: &str, record_name: Option<&str>) -> Result<String, ConnectError> {
        self.strategy
            .subject(topic, self.is_key, record_name)
            .ok_or_else(|| {
                ConnectError::Data(format!(
                    "{:?} needs a named record schema; the schema of topic {topic} has no name",
                    self.strategy
                ))
            })
    }

    /// Under `use.latest.version`, the subject's latest schema, which the converter
    /// writes with instead of its own.
    pub fn latest(&self, subject: &str) -> Result<Option<RegisteredSchema>, ConnectError> {
        if !self.use_latest {
            return Ok(None);
        }
        let mut latest = self.latest.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = latest.get(subject) {
            return Ok(Some(s.clone()));
        }
        let found = self.client()?.latest(subject).map_err(registry_error)?;
        latest.insert(subject.to_string(), found.clone());
        Ok(Some(found))
    }

    /// The id of `schema` under `subject`: registered (`auto.register.schemas`) or looked up.
    pub fn id_for(&self, subject: &str, schema: &RegistrySchema) -> Result<u32, ConnectError> {
        self.client()?
            .id_for(subject, schema, self.auto_register)
            .map_err(|e| {
                ConnectError::Data(format!(
                    "Failed to access {} schema under subject {subject}: {e}",
                    type_name(schema.schema_type)
                ))
            })
    }

    /// The writer schema of a framed record, checked to be of `expected` type.
    pub fn writer_schema(
        &self,
        id: u32,
        expected: SchemaType,
    ) -> Result<Arc<RegistrySchema>, ConnectError> {
        let s = self.client()?.schema_by_id(id).map_err(|e| {
            ConnectError::Data(format!(
                "Failed to retrieve {} schema for id {id}: {e}",
                type_name(expected)
            ))
        })?;
        if s.schema_type != expected {
            return Err(ConnectError::Data(format!(
                "Schema id {id} is a {} schema, not {}",
                type_name(s.schema_type),
                type_name(expected)
            )));
        }
        Ok(s)
    }
}

/// The schema id and payload of a framed record, or the data error Confluent's
/// deserializers raise.
pub fn unframe<'a>(topic: &str, bytes: &'a [u8]) -> Result<(u32, &'a [u8]), ConnectError> {
    wire::unframe(bytes).map_err(|e| {
        ConnectError::Data(format!(
            "Converting byte[] to Kafka Connect data failed due to serialization error of topic {topic}: {e}"
        ))
    })
}

fn type_name(t: SchemaType) -> &'static str {
    match t {
        SchemaType::Avro => "Avro",
        SchemaType::Json => "JSON",
        SchemaType::Protobuf => "Protobuf",
    }
}

fn registry_error(e: gregor_registry_client::Error) -> ConnectError {
    ConnectError::Data(format!("Schema registry: {e}"))
}

/// A converter's cache (schemas by id, ids by subject and schema): entries never go
/// stale, since an id's schema and a registered schema's id never change.
pub struct Cache<K, V>(Mutex<HashMap<K, V>>);

impl<K: Eq + Hash, V: Clone> Cache<K, V> {
    /// An empty cache.
    pub fn new() -> Self {
        Cache(Mutex::new(HashMap::new()))
    }

    /// The cached value of `key`.
    pub fn get(&self, key: &K) -> Option<V> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned()
    }

    /// Caches `value` under `key`.
    pub fn insert(&self, key: K, value: V) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, value);
    }
}

impl<K: Eq + Hash, V: Clone> Default for Cache<K, V> {
    fn default() -> Self {
        Cache::new()
    }
}
