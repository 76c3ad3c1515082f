//! `io.confluent.connect.protobuf.ProtobufConverter`: Connect structs as Protobuf
//! messages in Confluent's wire format (after the schema id, the message-index array of
//! the message within its file), the `.proto` schema registered in a schema registry.
//! The schema mapping is in `protobuf_schema`.

use std::collections::HashMap;
use std::sync::Arc;

use gregor_connect_api::{ConnectError, Props, Schema, Value};
use gregor_registry_client::{wire, Schema as RegistrySchema, SchemaType};
use prost::Message as _;
use prost_reflect::{
    DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, ReflectMessage as _,
    Value as PValue,
};

use super::protobuf_schema::{compile, message_at, message_schema, to_proto};
use super::registry::{unframe, Cache, RegistrySettings};
use super::Converter;

/// A writer schema's message and its Connect form.
type Reader = Arc<(MessageDescriptor, Schema)>;

/// The Protobuf converter for keys or values.
pub struct ProtobufConverter {
    registry: RegistrySettings,
    /// By (schema id, message indexes): the message and its Connect schema.
    readers: Cache<(u32, Vec<i32>), Reader>,
    writers: Cache<(String, String), Arc<(u32, MessageDescriptor)>>,
}

impl ProtobufConverter {
    /// Reads the registry settings (`schema.registry.url` is required).
    pub fn configure(props: &Props, is_key: bool) -> Result<Self, ConnectError> {
        Ok(ProtobufConverter {
            registry: RegistrySettings::configure(props, is_key)?,
            readers: Cache::new(),
            writers: Cache::new(),
        })
    }

    fn writer(
        &self,
        topic: &str,
        schema: &Schema,
    ) -> Result<Arc<(u32, MessageDescriptor)>, ConnectError> {
        let (text, full) = to_proto(schema)?;
        let subject = self.registry.subject(topic, Some(&full))?;
        let key = (subject, text);
        if let Some(w) = self.writers.get(&key) {
            return Ok(w);
        }
        let (id, writer) = match self.registry.latest(&key.0)? {
            Some(latest) => (latest.id, self.compile_with_references(&latest.schema)?),
            None => {
                let registered = RegistrySchema::new(SchemaType::Protobuf, key.1.clone());
                let id = self.registry.id_for(&key.0, &registered)?;
                (id, compile(&key.1, HashMap::new())?)
            }
        };
        let desc = message_at(&writer, &[0])?;
        let w = Arc::new((id, desc));
        self.writers.insert(key, w.clone());
        Ok(w)
    }

    /// Compiles a registered schema with its references, fetched from the registry.
    fn compile_with_references(
        &self,
        schema: &RegistrySchema,
    ) -> Result<prost_reflect::DescriptorPool, ConnectError> {
        let mut imports = HashMap::new();
        let mut pending = schema.references.clone();
        while let Some(r) = pending.pop() {
            if imports.contains_key(&r.name) {
                continue;
            }
            let found = self
                .registry
                .client()?
                .version(&r.subject, r.version)
                .map_err(|e| {
                    ConnectError::Data(format!(
                        "Failed to retrieve Protobuf reference {} ({} version {}): {e}",
                        r.name, r.subject, r.version
                    ))
                })?;
            pending.extend(found.schema.references.iter().cloned());
            imports.insert(r.name, found.schema.schema);
        }
        compile(&schema.schema, imports)
    }

    fn reader(
        &self,
        id: u32,
        path: Vec<i32>,
    ) -> Result<Arc<(MessageDescriptor, Schema)>, ConnectError> {
        let key = (id, path);
        if let Some(r) = self.readers.get(&key) {
            return Ok(r);
        }
        let text = self.registry.writer_schema(key.0, SchemaType::Protobuf)?;
        let pool = self.compile_with_references(&text)?;
        let desc = message_at(&pool, &key.1)?;
        let schema = message_schema(&desc, 0)?;
        let r = Arc::new((desc, schema));
        self.readers.insert(key, r.clone());
        Ok(r)
    }
}

impl Converter for ProtobufConverter {
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
                "Failed to serialize Protobuf data from topic {topic}: schemaless values are not supported by ProtobufConverter"
            ))
        })?;
        let writer = self.writer(topic, schema)?;
        let msg = to_message(&writer.1, value).map_err(|e| {
            ConnectError::Data(format!(
                "Failed to serialize Protobuf data from topic {topic}: {e}"
            ))
        })?;
        let mut payload = wire::encode_message_indexes(&[0]);
        payload.extend(msg.encode_to_vec());
        Ok(Some(wire::frame(writer.0, &payload)))
    }

    fn to_connect(
        &self,
        topic: &str,
        bytes: Option<&[u8]>,
    ) -> Result<(Option<Schema>, Value), ConnectError> {
        let Some(bytes) = bytes else {
            return Ok((None, Value::Null));
        };
        let (id, payload) = unframe(topic, bytes)?;
        let (path, body) = wire::decode_message_indexes(payload).map_err(|e| {
            ConnectError::Data(format!(
                "Failed to deserialize Protobuf data from topic {topic}: {e}"
            ))
        })?;
        let reader = self.reader(id, path)?;
        let msg = DynamicMessage::decode(reader.0.clone(), body).map_err(|e| {
            ConnectError::Data(format!(
                "Failed to deserialize Protobuf data for id {id} from topic {topic}: {e}"
            ))
        })?;
        Ok((Some(reader.1.clone()), from_message(&msg)))
    }
}

/// A Connect struct as a message of `desc`; null fields are left unset.
pub(crate) fn to_message(
    desc: &MessageDescriptor,
    value: &Value,
) -> Result<DynamicMessage, String> {
    let mut msg = DynamicMessage::new(desc.clone());
    let Value::Struct(fields) = value else {
        return Err(format!("{} is not a struct", value.to_display_string()));
    };
    for (name, v) in fields {
        if v.is_null() {
            continue;
        }
        let fd = desc
            .get_field_by_name(name)
            .ok_or_else(|| format!("message {} has no field {name}", desc.full_name()))?;
        let pv = field_value(&fd, v).map_err(|e| format!("field {name}: {e}"))?;
        msg.try_set_field(&fd, pv)
            .map_err(|e| format!("field {name}: {e}"))?;
    }
    Ok(msg)
}

fn field_value(fd: &FieldDescriptor, v: &Value) -> Result<PValue, String> {
    if fd.is_map() {
        let Kind::Message(entry) = fd.kind() else {
            return Err("a map field without an entry type".into());
        };
        let Value::Map(entries) = v else {
            return Err("not a map".into());
        };
        let (kf, vf) = (entry.map_entry_key_field(), entry.map_entry_value_field());
        let mut out = HashMap::new();
        for (k, x) in entries {
            let key = match scalar(&kf.kind(), k)? {
                PValue::Bool(b) => MapKey::Bool(b),
                PValue::I32(i) => MapKey::I32(i),
                PValue::I64(i) => MapKey::I64(i),
                PValue::U32(i) => MapKey::U32(i),
                PValue::U64(i) => MapKey::U64(i),
                PValue::String(s) => MapKey::String(s),
                _ => return Err("an unsupported map key".into()),
            };
            out.insert(key, scalar(&vf.kind(), x)?);
        }
        return Ok(PValue::Map(out));
    }
    if fd.is_list() {
        let Value::Array(items) = v else {
            return Err("not an array".into());
        };
        return items
            .iter()
            .map(|x| scalar(&fd.kind(), x))
            .collect::<Result<_, _>>()
            .map(PValue::List);
    }
    scalar(&fd.kind(), v)
}

fn scalar(kind: &Kind, v: &Value) -> Result<PValue, String> {
    let range = |i: &i64| format!("{i} is out of range");
    Ok(match (kind, v) {
        (Kind::Int32 | Kind::Sint32 | Kind::Sfixed32, Value::Int(i)) => {
            PValue::I32(i32::try_from(*i).map_err(|_| range(i))?)
        }
        (Kind::Int64 | Kind::Sint64 | Kind::Sfixed64, Value::Int(i)) => PValue::I64(*i),
        (Kind::Uint32 | Kind::Fixed32, Value::Int(i)) => {
            PValue::U32(u32::try_from(*i).map_err(|_| range(i))?)
        }
        (Kind::Uint64 | Kind::Fixed64, Value::Int(i)) => {
            PValue::U64(u64::try_from(*i).map_err(|_| range(i))?)
        }
        #[allow(clippy::cast_possible_truncation)]
        (Kind::Float, Value::Float(f)) => PValue::F32(*f as f32),
        (Kind::Double, Value::Float(f)) => PValue::F64(*f),
        #[allow(clippy::cast_precision_loss)]
        (Kind::Double, Value::Int(i)) => PValue::F64(*i as f64),
        (Kind::Bool, Value::Boolean(b)) => PValue::Bool(*b),
        (Kind::String, Value::String(s)) => PValue::String(s.clone()),
        (Kind::Bytes, Value::Bytes(b)) => PValue::Bytes(b.clone().into()),
        (Kind::Enum(e), Value::String(s)) => PValue::EnumNumber(
            e.get_value_by_name(s)
                .ok_or_else(|| format!("{s} is not a value of enum {}", e.full_name()))?
                .number(),
        ),
        (Kind::Message(m), Value::Struct(_)) => PValue::Message(to_message(m, v)?),
        _ => return Err(format!("{} does not match {kind:?}", v.to_display_string())),
    })
}

/// A decoded message as a Connect struct; unset message fields are null, unset scalars
/// their proto3 defaults.
pub(crate) fn from_message(msg: &DynamicMessage) -> Value {
    let desc = msg.descriptor();
    Value::Struct(
        desc.fields()
            .map(|f| {
                let v = if matches!(f.kind(), Kind::Message(_))
                    && !f.is_list()
                    && !f.is_map()
                    && !msg.has_field(&f)
                {
                    Value::Null
                } else {
                    from_value(&value_kind(&f), &msg.get_field(&f))
                };
                (f.name().to_string(), v)
            })
            .collect(),
    )
}

/// The kind of a field's values (of a map, its entries' values).
fn value_kind(f: &FieldDescriptor) -> Kind {
    match f.kind() {
        Kind::Message(entry) if f.is_map() => entry.map_entry_value_field().kind(),
        k => k,
    }
}

fn from_value(kind: &Kind, v: &PValue) -> Value {
    match v {
        PValue::EnumNumber(n) => match kind {
            Kind::Enum(e) => e.get_value(*n).map_or_else(
                || Value::String(n.to_string()),
                |x| Value::String(x.name().to_string()),
            ),
            _ => Value::Int(i64::from(*n)),
        },
        PValue::Bool(b) => Value::Boolean(*b),
        PValue::I32(i) => Value::Int(i64::from(*i)),
        PValue::I64(i) => Value::Int(*i),
        PValue::U32(i) => Value::Int(i64::from(*i)),
        PValue::U64(i) => Value::Int(i64::try_from(*i).unwrap_or(i64::MAX)),
        PValue::F32(f) => Value::Float(f64::from(*f)),
        PValue::F64(f) => Value::Float(*f),
        PValue::String(s) => Value::String(s.clone()),
        PValue::Bytes(b) => Value::Bytes(b.to_vec()),
        PValue::Message(m) => from_message(m),
        PValue::List(items) => Value::Array(items.iter().map(|x| from_value(kind, x)).collect()),
        PValue::Map(m) => {
            let mut entries: Vec<(Value, Value)> = m
                .iter()
                .map(|(k, x)| {
                    let key = match k {
                        MapKey::Bool(b) => Value::Boolean(*b),
                        MapKey::I32(i) => Value::Int(i64::from(*i)),
                        MapKey::I64(i) => Value::Int(*i),
                        MapKey::U32(i) => Value::Int(i64::from(*i)),
                        MapKey::U64(i) => Value::Int(i64::try_from(*i).unwrap_or(i64::MAX)),
                        MapKey::String(s) => Value::String(s.clone()),
                    };
                    (key, from_value(kind, x))
                })
                .collect();
            entries.sort_by_key(|a| a.0.to_display_string());
            Value::Map(entries)
        }
    }
}

#[cfg(test)]
mod tests;
