//! [`AvroSerde`]: Confluent's `KafkaAvroSerde` for serde-mapped Rust types.
//!
//! Writing: the schema's id under the topic's subject (registered, looked up, or the
//! subject's latest version) is found once per topic and cached; each record is the
//! Confluent frame (`0`, 4-byte big-endian id) then the Avro binary datum.
//! Reading: the writer schema of the record's id is fetched and parsed once per id and
//! cached; the datum is decoded with it and resolved against the serde's own (reader)
//! schema, Avro's schema resolution, so records written with an older or newer
//! compatible schema read as the Rust type.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, MutexGuard};

use apache_avro::types::Value;
use apache_avro::Schema as AvroSchemaDef;
use gregor_registry_client::{wire, Schema, SchemaType};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::registry::{schema_by_id, writer_id, RegistrySerdeConfig, RegistrySerdeError};
use super::{Serde, SerdeRef};
use crate::error::{Result, StreamsError};

/// Confluent's Avro serde (`io.confluent.kafka.streams.serdes.avro.KafkaAvroSerde`) for a
/// Rust type mapped to Avro by serde (a struct is a record, `Option` a union with null,
/// a unit-variant enum an Avro enum).
///
/// ```no_run
/// use gregor_streams::{AvroSerde, Consumed, RegistrySerdeConfig, Serdes, StreamsBuilder};
/// #[derive(Clone, serde::Serialize, serde::Deserialize)]
/// struct Order { id: String, amount: f64 }
/// const ORDER: &str = r#"{"type": "record", "name": "Order", "fields": [
///     {"name": "id", "type": "string"}, {"name": "amount", "type": "double"}]}"#;
/// # fn main() -> gregor_streams::Result<()> {
/// let registry = RegistrySerdeConfig::new("http://127.0.0.1:8081")?;
/// let builder = StreamsBuilder::new();
/// let orders = builder.stream(
///     "orders",
///     Consumed::with(Serdes::string(), AvroSerde::<Order>::value(ORDER, &registry)?),
/// );
/// # Ok(()) }
/// ```
pub struct AvroSerde<T> {
    config: RegistrySerdeConfig,
    is_key: bool,
    /// The serde's schema: what it registers, and the reader schema.
    schema: Arc<AvroSchemaDef>,
    /// Its text as registered (as given, like Confluent's Python serializer).
    registered: Schema,
    canonical: String,
    /// Its full name, for the record-name strategies.
    record_name: Option<String>,
    /// Topic → the id and schema records to it are written with.
    by_topic: Mutex<HashMap<String, Writer>>,
    /// Schema id → the parsed writer schema of records carrying it.
    by_id: Mutex<HashMap<u32, Reader>>,
    _type: PhantomData<fn() -> T>,
}

#[derive(Clone)]
struct Writer {
    id: u32,
    schema: Arc<AvroSchemaDef>,
}

#[derive(Clone)]
struct Reader {
    schema: Arc<AvroSchemaDef>,
    /// False when the writer schema is the reader's (same canonical form): no resolution.
    resolve: bool,
}

impl<T: Serialize + DeserializeOwned + 'static> AvroSerde<T> {
    /// A serde for keys (`is_key`) or values with the Avro schema `schema` (JSON text).
    pub fn new(schema: &str, config: &RegistrySerdeConfig, is_key: bool) -> Result<Self> {
        let parsed = AvroSchemaDef::parse_str(schema).map_err(|e| StreamsError::Config {
            key: "avro schema".into(),
            reason: e.to_string(),
        })?;
        Ok(AvroSerde {
            config: config.clone(),
            is_key,
            canonical: parsed.canonical_form(),
            record_name: parsed.name().map(|n| n.fullname(None)),
            schema: Arc::new(parsed),
            registered: Schema::new(SchemaType::Avro, schema),
            by_topic: Mutex::new(HashMap::new()),
            by_id: Mutex::new(HashMap::new()),
            _type: PhantomData,
        })
    }

    /// A shared serde for record values (subject `<topic>-value` by default).
    pub fn value(schema: &str, config: &RegistrySerdeConfig) -> Result<SerdeRef<T>> {
        Ok(Arc::new(Self::new(schema, config, false)?))
    }

    /// A shared serde for record keys (subject `<topic>-key` by default).
    pub fn key(schema: &str, config: &RegistrySerdeConfig) -> Result<SerdeRef<T>> {
        Ok(Arc::new(Self::new(schema, config, true)?))
    }

    /// A serde with the schema of a type implementing apache-avro's `AvroSchema` (as its
    /// `derive` feature generates).
    pub fn for_type(config: &RegistrySerdeConfig, is_key: bool) -> Result<Self>
    where
        T: apache_avro::AvroSchema,
    {
        let text = serde_json::to_string(&T::get_schema()).map_err(|e| StreamsError::Config {
            key: "avro schema".into(),
            reason: e.to_string(),
        })?;
        Self::new(&text, config, is_key)
    }

    /// The id and schema to write `topic`'s records with: cached after the first record.
    fn writer(&self, topic: &str) -> Result<Writer, RegistrySerdeError> {
        if let Some(w) = lock(&self.by_topic).get(topic) {
            return Ok(w.clone());
        }
        let record_name = self.record_name.as_deref();
        let writer = match writer_id(
            &self.config,
            self.is_key,
            topic,
            record_name,
            &self.registered,
        )? {
            (id, Some(latest)) => Writer {
                id,
                schema: Arc::new(parse_registered(id, &latest)?),
            },
            (id, None) => Writer {
                id,
                schema: self.schema.clone(),
            },
        };
        lock(&self.by_topic).insert(topic.to_string(), writer.clone());
        Ok(writer)
    }

    /// The writer schema of records carrying `id`: fetched and parsed once.
    fn reader(&self, id: u32) -> Result<Reader, RegistrySerdeError> {
        if let Some(r) = lock(&self.by_id).get(&id) {
            return Ok(r.clone());
        }
        let parsed = parse_registered(id, &*schema_by_id(&self.config, id)?)?;
        let reader = Reader {
            resolve: parsed.canonical_form() != self.canonical,
            schema: Arc::new(parsed),
        };
        lock(&self.by_id).insert(id, reader.clone());
        Ok(reader)
    }

    fn encode(&self, topic: &str, value: &T) -> Result<Vec<u8>, RegistrySerdeError> {
        let w = self.writer(topic)?;
        let encode = |source| RegistrySerdeError::Encode {
            id: w.id,
            source: Box::new(source),
        };
        // Through apache-avro's `Value`: resolution maps `Option`s onto union branches,
        // fills defaults and promotes numbers, so a value encodes with the subject's latest
        // schema too (`use.latest.version`), and named-type references resolve.
        let datum = apache_avro::to_value(value)
            .and_then(|v| v.resolve(&w.schema))
            .and_then(|v| apache_avro::to_avro_datum(&w.schema, v))
            .map_err(encode)?;
        Ok(wire::frame(w.id, &datum))
    }

    fn decode(&self, data: Option<&[u8]>) -> Result<T, RegistrySerdeError> {
        let Some(data) = data else {
            // Confluent's deserializer reads a null as null: here, an `Option`'s `None`.
            // (apache-avro reads an `Option` from a union value.)
            let null = Value::Union(0, Box::new(Value::Null));
            return apache_avro::from_value(&null).map_err(|_| RegistrySerdeError::Null);
        };
        let (id, mut payload) = wire::unframe(data)?;
        let r = self.reader(id)?;
        let reader_schema = r.resolve.then_some(&*self.schema);
        apache_avro::from_avro_datum(&r.schema, &mut payload, reader_schema)
            .and_then(|v| apache_avro::from_value(&v))
            .map_err(|source| RegistrySerdeError::Decode {
                id,
                source: Box::new(source),
            })
    }
}

impl<T: Serialize + DeserializeOwned + 'static> Serde<T> for AvroSerde<T> {
    fn serialize(&self, topic: &str, value: &T) -> Result<Vec<u8>> {
        self.encode(topic, value).map_err(|e| e.into_streams(topic))
    }

    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<T> {
        self.decode(data).map_err(|e| e.into_streams(topic))
    }
}

/// A registry schema as an Avro schema; one with references is refused (its named types
/// would need the referenced subjects' schemas).
fn parse_registered(id: u32, schema: &Schema) -> Result<AvroSchemaDef, RegistrySerdeError> {
    if schema.schema_type != SchemaType::Avro {
        return Err(RegistrySerdeError::WrongType {
            id,
            found: schema.schema_type,
            expected: SchemaType::Avro,
        });
    }
    let bad = |reason: String| RegistrySerdeError::BadSchema {
        what: format!("id {id}"),
        reason,
    };
    if !schema.references.is_empty() {
        return Err(bad("schema references are not supported".into()));
    }
    AvroSchemaDef::parse_str(&schema.schema).map_err(|e| bad(e.to_string()))
}

pub(super) fn lock<V>(m: &Mutex<V>) -> MutexGuard<'_, V> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
#[path = "avro_tests.rs"]
mod tests;
