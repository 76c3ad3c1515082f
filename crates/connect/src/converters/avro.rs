//! `io.confluent.connect.avro.AvroConverter`: Connect data as Avro binary in Confluent's
//! wire format, its schema registered in a schema registry.
//!
//! The schema mapping is Confluent's `AvroData` (see `avro_schema`): structs are records
//! (named by the Connect name split at its last dot, else
//! `io.confluent.connect.avro.ConnectDefault`), optional schemas are `["null", T]`
//! unions whose fields default to null, int8/int16 are `int` with `connect.type`,
//! Date/Time/Timestamp/Decimal are Avro logical types, and the Connect name, version,
//! doc and parameters ride along as `connect.*` properties so the reverse mapping gives
//! the same Connect schema back. Binary encoding and decoding are apache-avro's.

use std::collections::HashMap;
use std::sync::Arc;

use apache_avro::schema::Schema as AvroSchema;
use apache_avro::types::Value as AvroValue;
use gregor_connect_api::{ConnectError, Props, Schema, Value};
use gregor_registry_client::{wire, Schema as RegistrySchema, SchemaType};

use super::avro_schema::{from_avro_schema, to_avro_schema};
use super::registry::{unframe, Cache, RegistrySettings};
use super::Converter;

/// The Avro converter for keys or values.
pub struct AvroConverter {
    registry: RegistrySettings,
    /// Writer schemas by id: the apache-avro schema and its Connect form.
    readers: Cache<u32, Arc<(AvroSchema, Schema)>>,
    /// (subject, Avro schema JSON) -> (id, parsed schema written with).
    writers: Cache<(String, String), Arc<(u32, AvroSchema)>>,
}

impl AvroConverter {
    /// Reads the registry settings (`schema.registry.url` is required).
    pub fn configure(props: &Props, is_key: bool) -> Result<Self, ConnectError> {
        Ok(AvroConverter {
            registry: RegistrySettings::configure(props, is_key)?,
            readers: Cache::new(),
            writers: Cache::new(),
        })
    }

    fn writer(&self, topic: &str, schema: &Schema) -> Result<Arc<(u32, AvroSchema)>, ConnectError> {
        let json = to_avro_schema(schema)?;
        let text = json.to_string();
        let record_name = json
            .get("name")
            .and_then(|n| n.as_str())
            .map(|n| full_name(n, json.get("namespace").and_then(|s| s.as_str())));
        let subject = self.registry.subject(topic, record_name.as_deref())?;
        let key = (subject, text);
        if let Some(w) = self.writers.get(&key) {
            return Ok(w);
        }
        let (id, writer_text) = match self.registry.latest(&key.0)? {
            Some(latest) => (latest.id, latest.schema.schema),
            None => {
                let id = self.registry.id_for(
                    &key.0,
                    &RegistrySchema::new(SchemaType::Avro, key.1.clone()),
                )?;
                (id, key.1.clone())
            }
        };
        let parsed = AvroSchema::parse_str(&writer_text)
            .map_err(|e| ConnectError::Data(format!("Invalid Avro schema {writer_text}: {e}")))?;
        let w = Arc::new((id, parsed));
        self.writers.insert(key, w.clone());
        Ok(w)
    }

    fn reader(&self, id: u32) -> Result<Arc<(AvroSchema, Schema)>, ConnectError> {
        if let Some(r) = self.readers.get(&id) {
            return Ok(r);
        }
        let text = self.registry.writer_schema(id, SchemaType::Avro)?;
        let avro = AvroSchema::parse_str(&text.schema)
            .map_err(|e| ConnectError::Data(format!("Invalid Avro schema for id {id}: {e}")))?;
        let json: serde_json::Value = serde_json::from_str(&text.schema)
            .map_err(|e| ConnectError::Data(format!("Invalid Avro schema for id {id}: {e}")))?;
        let connect = from_avro_schema(&json)?;
        let r = Arc::new((avro, connect));
        self.readers.insert(id, r.clone());
        Ok(r)
    }
}

impl Converter for AvroConverter {
    fn from_connect(
        &self,
        topic: &str,
        schema: Option<&Schema>,
        value: &Value,
    ) -> Result<Option<Vec<u8>>, ConnectError> {
        if value.is_null() {
            return Ok(None);
        }
        let schema = schema.ok_or_else(|| {
            ConnectError::Data(format!(
                "Failed to serialize Avro data from topic {topic}: schemaless values are not supported by AvroConverter"
            ))
        })?;
        let writer = self.writer(topic, schema)?;
        let (id, avro) = (&writer.0, &writer.1);
        let names = names(avro);
        let datum = to_avro_value(avro, &names, value).map_err(|e| {
            ConnectError::Data(format!(
                "Failed to serialize Avro data from topic {topic}: {e}"
            ))
        })?;
        let payload = apache_avro::to_avro_datum(avro, datum).map_err(|e| {
            ConnectError::Data(format!(
                "Failed to serialize Avro data from topic {topic}: {e}"
            ))
        })?;
        Ok(Some(wire::frame(*id, &payload)))
    }

    fn to_connect(
        &self,
        topic: &str,
        bytes: Option<&[u8]>,
    ) -> Result<(Option<Schema>, Value), ConnectError> {
        let Some(bytes) = bytes else {
            return Ok((None, Value::Null));
        };
        let (id, mut payload) = unframe(topic, bytes)?;
        let reader = self.reader(id)?;
        let datum = apache_avro::from_avro_datum(&reader.0, &mut payload, None).map_err(|e| {
            ConnectError::Data(format!(
                "Failed to deserialize Avro data for id {id} from topic {topic}: {e}"
            ))
        })?;
        let value = from_avro_value(&reader.1, datum)?;
        Ok((Some(reader.1.clone()), value))
    }
}

fn full_name(name: &str, namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) if !ns.is_empty() && !name.contains('.') => format!("{ns}.{name}"),
        _ => name.to_string(),
    }
}

/// Named types of a schema by full name, to follow `Ref`s.
fn names(schema: &AvroSchema) -> HashMap<String, &AvroSchema> {
    fn walk<'a>(s: &'a AvroSchema, out: &mut HashMap<String, &'a AvroSchema>) {
        match s {
            AvroSchema::Record(r) => {
                let first_use = out.insert(r.name.fullname(None), s).is_none();
                if first_use {
                    for f in &r.fields {
                        walk(&f.schema, out);
                    }
                }
            }
            AvroSchema::Enum(e) => {
                out.insert(e.name.fullname(None), s);
            }
            AvroSchema::Fixed(f) => {
                out.insert(f.name.fullname(None), s);
            }
            AvroSchema::Array(a) => walk(&a.items, out),
            AvroSchema::Map(m) => walk(&m.types, out),
            AvroSchema::Union(u) => u.variants().iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = HashMap::new();
    walk(schema, &mut out);
    out
}

/// A Connect value as an Avro datum of `schema` (the writer schema, Connect's own
/// mapping or the subject's latest under `use.latest.version`).
fn to_avro_value(
    schema: &AvroSchema,
    names: &HashMap<String, &AvroSchema>,
    value: &Value,
) -> Result<AvroValue, String> {
    let mismatch = || {
        format!(
            "value {} does not match Avro schema {}",
            brief(value),
            kind(schema)
        )
    };
    let int32 = |i: i64| i32::try_from(i).map_err(|_| format!("{i} does not fit an Avro int"));
    Ok(match (schema, value) {
        (AvroSchema::Ref { name }, _) => {
            let target = names
                .get(&name.fullname(None))
                .ok_or_else(|| format!("unknown Avro type {}", name.fullname(None)))?;
            to_avro_value(target, names, value)?
        }
        (AvroSchema::Union(u), _) => {
            let mut last = mismatch();
            for (i, branch) in u.variants().iter().enumerate() {
                let i = u32::try_from(i).map_err(|_| mismatch())?;
                match (branch, value.is_null()) {
                    (AvroSchema::Null, true) => {
                        return Ok(AvroValue::Union(i, Box::new(AvroValue::Null)))
                    }
                    (AvroSchema::Null, false) | (_, true) => {}
                    (b, false) => match to_avro_value(b, names, value) {
                        Ok(v) => return Ok(AvroValue::Union(i, Box::new(v))),
                        Err(e) => last = e,
                    },
                }
            }
            return Err(last);
        }
        (AvroSchema::Null, Value::Null) => AvroValue::Null,
        (AvroSchema::Boolean, Value::Boolean(b)) => AvroValue::Boolean(*b),
        (AvroSchema::Int, Value::Int(i)) => AvroValue::Int(int32(*i)?),
        (AvroSchema::Date, Value::Int(i)) => AvroValue::Date(int32(*i)?),
        (AvroSchema::TimeMillis, Value::Int(i)) => AvroValue::TimeMillis(int32(*i)?),
        (AvroSchema::Long, Value::Int(i)) => AvroValue::Long(*i),
        (AvroSchema::TimestampMillis, Value::Int(i)) => AvroValue::TimestampMillis(*i),
        (AvroSchema::TimestampMicros, Value::Int(i)) => AvroValue::TimestampMicros(*i),
        (AvroSchema::TimeMicros, Value::Int(i)) => AvroValue::TimeMicros(*i),
        #[allow(clippy::cast_possible_truncation)]
        (AvroSchema::Float, Value::Float(f)) => AvroValue::Float(*f as f32),
        #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
        (AvroSchema::Float, Value::Int(i)) => AvroValue::Float(*i as f32),
        (AvroSchema::Double, Value::Float(f)) => AvroValue::Double(*f),
        #[allow(clippy::cast_precision_loss)]
        (AvroSchema::Double, Value::Int(i)) => AvroValue::Double(*i as f64),
        (AvroSchema::Bytes, Value::Bytes(b)) => AvroValue::Bytes(b.clone()),
        (AvroSchema::Decimal(_), Value::Bytes(b)) => {
            AvroValue::Decimal(apache_avro::Decimal::from(b.as_slice()))
        }
        (AvroSchema::Fixed(f), Value::Bytes(b)) if b.len() == f.size => {
            AvroValue::Fixed(f.size, b.clone())
        }
        (AvroSchema::String, Value::String(s)) => AvroValue::String(s.clone()),
        (AvroSchema::Enum(e), Value::String(s)) => {
            let i = e.symbols.iter().position(|x| x == s).ok_or_else(mismatch)?;
            AvroValue::Enum(u32::try_from(i).map_err(|_| mismatch())?, s.clone())
        }
        (AvroSchema::Array(a), Value::Array(items)) => AvroValue::Array(
            items
                .iter()
                .map(|v| to_avro_value(&a.items, names, v))
                .collect::<Result<_, _>>()?,
        ),
        // A map with non-string keys: an array of MapEntry records.
        (AvroSchema::Array(a), Value::Map(entries)) => AvroValue::Array(
            entries
                .iter()
                .map(|(k, v)| {
                    let entry =
                        Value::Struct(vec![("key".into(), k.clone()), ("value".into(), v.clone())]);
                    to_avro_value(&a.items, names, &entry)
                })
                .collect::<Result<_, _>>()?,
        ),
        (AvroSchema::Map(m), Value::Map(entries)) => AvroValue::Map(
            entries
                .iter()
                .map(|(k, v)| Ok((k.to_display_string(), to_avro_value(&m.types, names, v)?)))
                .collect::<Result<_, String>>()?,
        ),
        (AvroSchema::Record(r), Value::Struct(_) | Value::Map(_)) => AvroValue::Record(
            r.fields
                .iter()
                .map(|f| {
                    let v = value.get(&f.name).unwrap_or(&Value::Null);
                    to_avro_value(&f.schema, names, v)
                        .map(|x| (f.name.clone(), x))
                        .map_err(|e| format!("field {}: {e}", f.name))
                })
                .collect::<Result<_, _>>()?,
        ),
        _ => return Err(mismatch()),
    })
}

fn brief(v: &Value) -> String {
    let s = v.to_display_string();
    if s.len() > 60 {
        format!("{}...", s.chars().take(60).collect::<String>())
    } else {
        s
    }
}

fn kind(s: &AvroSchema) -> String {
    format!("{:?}", apache_avro::schema::SchemaKind::from(s))
}

/// A decoded Avro datum as a Connect value of `schema` (the Connect form of the writer
/// schema).
fn from_avro_value(schema: &Schema, datum: AvroValue) -> Result<Value, ConnectError> {
    use gregor_connect_api::SchemaType as T;
    let child = |s: &Option<Box<Schema>>| {
        s.as_deref()
            .cloned()
            .unwrap_or_else(|| Schema::new(T::String))
    };
    Ok(match datum {
        AvroValue::Null => Value::Null,
        AvroValue::Boolean(b) => Value::Boolean(b),
        AvroValue::Int(i) | AvroValue::Date(i) | AvroValue::TimeMillis(i) => {
            Value::Int(i64::from(i))
        }
        AvroValue::Long(i)
        | AvroValue::TimeMicros(i)
        | AvroValue::TimestampMillis(i)
        | AvroValue::TimestampMicros(i)
        | AvroValue::TimestampNanos(i)
        | AvroValue::LocalTimestampMillis(i)
        | AvroValue::LocalTimestampMicros(i)
        | AvroValue::LocalTimestampNanos(i) => Value::Int(i),
        AvroValue::Float(f) => Value::Float(f64::from(f)),
        AvroValue::Double(f) => Value::Float(f),
        AvroValue::Bytes(b) | AvroValue::Fixed(_, b) => Value::Bytes(b),
        AvroValue::Decimal(d) => Value::Bytes(
            Vec::<u8>::try_from(d)
                .map_err(|e| ConnectError::Data(format!("Invalid decimal: {e}")))?,
        ),
        AvroValue::String(s) | AvroValue::Enum(_, s) => Value::String(s),
        AvroValue::Uuid(u) => Value::String(u.to_string()),
        AvroValue::Union(_, inner) => from_avro_value(schema, *inner)?,
        AvroValue::Array(items) if schema.schema_type == T::Map => {
            let (ks, vs) = (child(&schema.key_schema), child(&schema.value_schema));
            let mut entries = Vec::new();
            for item in items {
                let AvroValue::Record(fields) = item else {
                    return Err(ConnectError::Data("Invalid Avro map entry".into()));
                };
                let mut k = Value::Null;
                let mut v = Value::Null;
                for (name, x) in fields {
                    match name.as_str() {
                        "key" => k = from_avro_value(&ks, x)?,
                        "value" => v = from_avro_value(&vs, x)?,
                        _ => {}
                    }
                }
                entries.push((k, v));
            }
            Value::Map(entries)
        }
        AvroValue::Array(items) => {
            let vs = child(&schema.value_schema);
            Value::Array(
                items
                    .into_iter()
                    .map(|x| from_avro_value(&vs, x))
                    .collect::<Result<_, _>>()?,
            )
        }
        AvroValue::Map(m) => {
            let vs = child(&schema.value_schema);
            let mut entries = m
                .into_iter()
                .map(|(k, x)| Ok((Value::String(k), from_avro_value(&vs, x)?)))
                .collect::<Result<Vec<_>, ConnectError>>()?;
            entries.sort_by_key(|a| a.0.to_display_string());
            Value::Map(entries)
        }
        AvroValue::Record(fields) => {
            let mut out = Vec::with_capacity(fields.len());
            for (name, x) in fields {
                let fs = schema
                    .field(&name)
                    .map(|f| f.schema.clone())
                    .unwrap_or_else(|| Schema::new(T::String).optional());
                out.push((name, from_avro_value(&fs, x)?));
            }
            Value::Struct(out)
        }
        other => {
            return Err(ConnectError::Data(format!(
                "Unsupported Avro value {other:?}"
            )))
        }
    })
}

#[cfg(test)]
mod tests;
