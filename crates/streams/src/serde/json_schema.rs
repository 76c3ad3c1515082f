//! [`JsonSchemaSerde`]: Confluent's `KafkaJsonSchemaSerde` for serde-mapped Rust types.
//!
//! The frame is Confluent's (`0`, 4-byte big-endian id) followed by the value as JSON
//! text. Writing registers (or looks up) the serde's JSON Schema under the topic's
//! subject once per topic. Reading checks once per id that the record's schema exists
//! and is a JSON Schema, then maps the JSON to the type. Like Confluent's serdes with
//! their default `json.fail.invalid.schema=false`, values are not validated against the
//! schema: the Rust type is the contract.

use std::collections::{HashMap, HashSet};
use std::marker::PhantomData;
use std::sync::Mutex;

use gregor_registry_client::{wire, Schema, SchemaType};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::avro::lock;
use super::registry::{schema_by_id, writer_id, RegistrySerdeConfig, RegistrySerdeError};
use super::{Serde, SerdeRef};
use crate::error::{Result, StreamsError};

/// Confluent's JSON Schema serde
/// (`io.confluent.kafka.streams.serdes.json.KafkaJsonSchemaSerde`).
///
/// ```no_run
/// use gregor_streams::{JsonSchemaSerde, RegistrySerdeConfig};
/// #[derive(Clone, serde::Serialize, serde::Deserialize)]
/// struct Order { id: String, amount: f64 }
/// const ORDER: &str = r#"{"title": "Order", "type": "object", "properties": {
///     "id": {"type": "string"}, "amount": {"type": "number"}}}"#;
/// # fn main() -> gregor_streams::Result<()> {
/// let registry = RegistrySerdeConfig::new("http://127.0.0.1:8081")?;
/// let orders = JsonSchemaSerde::<Order>::value(ORDER, &registry)?;
/// # Ok(()) }
/// ```
pub struct JsonSchemaSerde<T> {
    config: RegistrySerdeConfig,
    is_key: bool,
    registered: Schema,
    /// The schema's `title`: the record name of the record-name strategies.
    record_name: Option<String>,
    /// Topic → the id its records are written with.
    by_topic: Mutex<HashMap<String, u32>>,
    /// Schema ids known to be JSON Schemas.
    known_ids: Mutex<HashSet<u32>>,
    _type: PhantomData<fn() -> T>,
}

impl<T: Serialize + DeserializeOwned + 'static> JsonSchemaSerde<T> {
    /// A serde for keys (`is_key`) or values with the JSON Schema `schema`.
    pub fn new(schema: &str, config: &RegistrySerdeConfig, is_key: bool) -> Result<Self> {
        let doc: serde_json::Value =
            serde_json::from_str(schema).map_err(|e| StreamsError::Config {
                key: "json schema".into(),
                reason: e.to_string(),
            })?;
        Ok(JsonSchemaSerde {
            config: config.clone(),
            is_key,
            registered: Schema::new(SchemaType::Json, schema),
            record_name: doc
                .get("title")
                .and_then(serde_json::Value::as_str)
                .map(str::to_string),
            by_topic: Mutex::new(HashMap::new()),
            known_ids: Mutex::new(HashSet::new()),
            _type: PhantomData,
        })
    }

    /// A shared serde for record values (subject `<topic>-value` by default).
    pub fn value(schema: &str, config: &RegistrySerdeConfig) -> Result<SerdeRef<T>> {
        Ok(std::sync::Arc::new(Self::new(schema, config, false)?))
    }

    /// A shared serde for record keys (subject `<topic>-key` by default).
    pub fn key(schema: &str, config: &RegistrySerdeConfig) -> Result<SerdeRef<T>> {
        Ok(std::sync::Arc::new(Self::new(schema, config, true)?))
    }

    fn writer(&self, topic: &str) -> Result<u32, RegistrySerdeError> {
        if let Some(id) = lock(&self.by_topic).get(topic) {
            return Ok(*id);
        }
        let record_name = self.record_name.as_deref();
        let (id, latest) = writer_id(
            &self.config,
            self.is_key,
            topic,
            record_name,
            &self.registered,
        )?;
        if let Some(latest) = latest {
            check_json(id, &latest)?;
        }
        lock(&self.by_topic).insert(topic.to_string(), id);
        Ok(id)
    }

    fn encode(&self, topic: &str, value: &T) -> Result<Vec<u8>, RegistrySerdeError> {
        let id = self.writer(topic)?;
        let mut out = Vec::with_capacity(64);
        out.push(wire::MAGIC);
        out.extend_from_slice(&id.to_be_bytes());
        serde_json::to_writer(&mut out, value)
            .map_err(|source| RegistrySerdeError::Json { id, source })?;
        Ok(out)
    }

    fn decode(&self, data: Option<&[u8]>) -> Result<T, RegistrySerdeError> {
        let Some(data) = data else {
            // A null reads as `None` for an `Option`, and is an error otherwise.
            return serde_json::from_str("null").map_err(|_| RegistrySerdeError::Null);
        };
        let (id, payload) = wire::unframe(data)?;
        if !lock(&self.known_ids).contains(&id) {
            check_json(id, &*schema_by_id(&self.config, id)?)?;
            lock(&self.known_ids).insert(id);
        }
        serde_json::from_slice(payload).map_err(|source| RegistrySerdeError::Json { id, source })
    }
}

impl<T: Serialize + DeserializeOwned + 'static> Serde<T> for JsonSchemaSerde<T> {
    fn serialize(&self, topic: &str, value: &T) -> Result<Vec<u8>> {
        self.encode(topic, value).map_err(|e| e.into_streams(topic))
    }

    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<T> {
        self.decode(data).map_err(|e| e.into_streams(topic))
    }
}

fn check_json(id: u32, schema: &Schema) -> Result<(), RegistrySerdeError> {
    if schema.schema_type == SchemaType::Json {
        Ok(())
    } else {
        Err(RegistrySerdeError::WrongType {
            id,
            found: schema.schema_type,
            expected: SchemaType::Json,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;
    use crate::serde::fake_registry::Fake;

    const ORDER: &str = r#"{"title": "Order", "type": "object", "properties": {
        "id": {"type": "string"}, "qty": {"type": "integer"}}}"#;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Order {
        id: String,
        qty: i64,
    }

    #[test]
    fn frames_json_and_registers_a_json_schema_once() {
        let fake = Fake::start();
        let serde = JsonSchemaSerde::<Order>::new(ORDER, &fake.config(&[]), false).unwrap();
        let o = Order {
            id: "a".into(),
            qty: 2,
        };
        let bytes = serde.serialize("orders", &o).unwrap();
        let id = fake.register("orders-value", ORDER, "JSON");
        let mut expected = vec![0];
        expected.extend_from_slice(&id.to_be_bytes());
        expected.extend_from_slice(br#"{"id":"a","qty":2}"#);
        assert_eq!(bytes, expected);
        for _ in 0..20 {
            let bytes = serde.serialize("orders", &o).unwrap();
            assert_eq!(serde.deserialize("orders", Some(&bytes)).unwrap(), o);
        }
        assert_eq!(fake.hits(), 1);
        assert_eq!(fake.state().versions[0].2, "JSON");
    }

    #[test]
    fn malformed_records_and_other_schema_types_are_record_faults() {
        let fake = Fake::start();
        let avro_id = fake.register("x-value", "\"string\"", "AVRO");
        let serde = JsonSchemaSerde::<Order>::new(ORDER, &fake.config(&[]), false).unwrap();
        let good = serde
            .serialize(
                "orders",
                &Order {
                    id: "a".into(),
                    qty: 1,
                },
            )
            .unwrap();
        let id = u32::from_be_bytes([good[1], good[2], good[3], good[4]]);
        for bytes in [
            vec![],
            br#"{"id":"a","qty":1}"#.to_vec(),
            wire::frame(id, b"{\"id\":"),
            wire::frame(id, br#"{"id":1,"qty":1}"#),
            wire::frame(404, br#"{"id":"a","qty":1}"#),
            wire::frame(avro_id, br#"{"id":"a","qty":1}"#),
        ] {
            let err = serde.deserialize("orders", Some(&bytes)).unwrap_err();
            assert!(
                matches!(err, StreamsError::Serde { .. }),
                "{bytes:?}: {err}"
            );
        }
        assert!(serde.deserialize("orders", None).is_err());
        let optional =
            JsonSchemaSerde::<Option<Order>>::new(ORDER, &fake.config(&[]), false).unwrap();
        assert_eq!(optional.deserialize("orders", None).unwrap(), None);
    }
}
