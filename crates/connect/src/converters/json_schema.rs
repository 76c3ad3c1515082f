//! `io.confluent.connect.json.JsonSchemaConverter`: Connect data as JSON in Confluent's
//! wire format, described by a JSON Schema registered in a schema registry.
//!
//! The mapping is Confluent's `JsonSchemaData`: structs are `object`s whose properties
//! carry `connect.index` (their position), integers and floats are `integer`/`number`
//! with `connect.type` (`int8`..`int64`, `float32`/`float64`), bytes are base64
//! `string`s with `connect.type: bytes`, maps are objects (string keys) or arrays of
//! `{key, value}` with `connect.type: map`, the Connect name is the `title`, and an
//! optional schema is `{"oneOf": [{"type": "null"}, T]}`. Read back, a property without
//! such a `oneOf` is required, as in Confluent's converter (`required` is not consulted).

use std::sync::Arc;

use gregor_connect_api::{ConnectError, Field, Props, Schema, SchemaType as T, Value};
use gregor_registry_client::{wire, Schema as RegistrySchema, SchemaType};
use serde_json::{json, Map, Value as J};

use super::json::{value_from_json, value_to_json};
use super::registry::{unframe, Cache, RegistrySettings};
use super::Converter;

/// The JSON Schema converter for keys or values.
pub struct JsonSchemaConverter {
    registry: RegistrySettings,
    readers: Cache<u32, Arc<Schema>>,
    writers: Cache<(String, String), u32>,
}

impl JsonSchemaConverter {
    /// Reads the registry settings (`schema.registry.url` is required).
    pub fn configure(props: &Props, is_key: bool) -> Result<Self, ConnectError> {
        Ok(JsonSchemaConverter {
            registry: RegistrySettings::configure(props, is_key)?,
            readers: Cache::new(),
            writers: Cache::new(),
        })
    }
}

impl Converter for JsonSchemaConverter {
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
                "Failed to serialize JSON data from topic {topic}: schemaless values are not supported by JsonSchemaConverter"
            ))
        })?;
        let text = to_json_schema(schema).to_string();
        let subject = self.registry.subject(topic, schema.name.as_deref())?;
        let key = (subject, text);
        let cached = self.writers.get(&key);
        let id = match cached {
            Some(id) => id,
            None => {
                let id = match self.registry.latest(&key.0)? {
                    Some(latest) => latest.id,
                    None => self.registry.id_for(
                        &key.0,
                        &RegistrySchema::new(SchemaType::Json, key.1.clone()),
                    )?,
                };
                self.writers.insert(key, id);
                id
            }
        };
        let payload = serde_json::to_vec(&to_payload(schema, value)?)
            .map_err(|e| ConnectError::Data(format!("Converting to JSON failed: {e}")))?;
        Ok(Some(wire::frame(id, &payload)))
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
        let cached = self.readers.get(&id);
        let schema = match cached {
            Some(s) => s,
            None => {
                let text = self.registry.writer_schema(id, SchemaType::Json)?;
                let doc: J = serde_json::from_str(&text.schema).map_err(|e| {
                    ConnectError::Data(format!("Invalid JSON schema for id {id}: {e}"))
                })?;
                let s = Arc::new(from_json_schema(&doc)?);
                self.readers.insert(id, s.clone());
                s
            }
        };
        let doc: J = serde_json::from_slice(payload).map_err(|e| {
            ConnectError::Data(format!(
                "Converting byte[] to Kafka Connect data failed due to serialization error of topic {topic}: {e}"
            ))
        })?;
        let value = from_payload(&schema, &doc)?;
        Ok((Some((*schema).clone()), value))
    }
}

/// Whether a map schema's keys are non-optional strings (a JSON object); other maps are
/// arrays of `{"key": k, "value": v}`.
fn string_keys(s: &Schema) -> bool {
    s.key_schema
        .as_deref()
        .is_some_and(|k| k.schema_type == T::String && !k.optional)
}

/// A value as the JSON its schema's JSON Schema describes.
fn to_payload(s: &Schema, v: &Value) -> Result<J, ConnectError> {
    let missing = Schema::new(T::String).optional();
    let (ks, vs) = (
        s.key_schema.as_deref().unwrap_or(&missing),
        s.value_schema.as_deref().unwrap_or(&missing),
    );
    Ok(match (s.schema_type, v) {
        (T::Struct, Value::Struct(fields)) => {
            let mut m = Map::new();
            for (name, x) in fields {
                let fs = s.field(name).map_or(&missing, |f| &f.schema);
                m.insert(name.clone(), to_payload(fs, x)?);
            }
            J::Object(m)
        }
        (T::Array, Value::Array(items)) => J::Array(
            items
                .iter()
                .map(|x| to_payload(vs, x))
                .collect::<Result<_, _>>()?,
        ),
        (T::Map, Value::Map(entries)) if string_keys(s) => {
            let mut m = Map::new();
            for (k, x) in entries {
                m.insert(k.to_display_string(), to_payload(vs, x)?);
            }
            J::Object(m)
        }
        (T::Map, Value::Map(entries)) => J::Array(
            entries
                .iter()
                .map(|(k, x)| Ok(json!({"key": to_payload(ks, k)?, "value": to_payload(vs, x)?})))
                .collect::<Result<_, ConnectError>>()?,
        ),
        _ => value_to_json(Some(s), v)?,
    })
}

/// A JSON payload read against the Connect form of its writer schema.
fn from_payload(s: &Schema, j: &J) -> Result<Value, ConnectError> {
    let missing = Schema::new(T::String).optional();
    let (ks, vs) = (
        s.key_schema.as_deref().unwrap_or(&missing),
        s.value_schema.as_deref().unwrap_or(&missing),
    );
    Ok(match (s.schema_type, j) {
        (T::Struct, J::Object(obj)) => Value::Struct(
            s.fields
                .iter()
                .map(|f| {
                    Ok((
                        f.name.clone(),
                        from_payload(&f.schema, obj.get(&f.name).unwrap_or(&J::Null))?,
                    ))
                })
                .collect::<Result<_, ConnectError>>()?,
        ),
        (T::Array, J::Array(items)) => Value::Array(
            items
                .iter()
                .map(|x| from_payload(vs, x))
                .collect::<Result<_, _>>()?,
        ),
        (T::Map, J::Object(obj)) => Value::Map(
            obj.iter()
                .map(|(k, x)| Ok((Value::String(k.clone()), from_payload(vs, x)?)))
                .collect::<Result<_, ConnectError>>()?,
        ),
        (T::Map, J::Array(entries)) => Value::Map(
            entries
                .iter()
                .map(|e| {
                    Ok((
                        from_payload(ks, e.get("key").unwrap_or(&J::Null))?,
                        from_payload(vs, e.get("value").unwrap_or(&J::Null))?,
                    ))
                })
                .collect::<Result<_, ConnectError>>()?,
        ),
        _ => value_from_json(s, j)?,
    })
}

/// The JSON Schema of a Connect schema.
pub fn to_json_schema(s: &Schema) -> J {
    schema_at(s, None)
}

fn schema_at(s: &Schema, index: Option<usize>) -> J {
    let mut j = base(s);
    if let Some(n) = &s.name {
        j.insert("title".into(), json!(n));
    }
    if let Some(v) = s.version {
        j.insert("connect.version".into(), json!(v));
    }
    if let Some(d) = &s.doc {
        j.insert("description".into(), json!(d));
    }
    if !s.parameters.is_empty() {
        j.insert("connect.parameters".into(), json!(s.parameters));
    }
    let mut out = if s.optional {
        let mut o = Map::new();
        o.insert("oneOf".into(), json!([{"type": "null"}, J::Object(j)]));
        o
    } else {
        j
    };
    if let Some(i) = index {
        out.insert("connect.index".into(), json!(i));
    }
    J::Object(out)
}

fn base(s: &Schema) -> Map<String, J> {
    let typed = |t: &str, connect: &str| {
        let mut m = Map::new();
        m.insert("type".into(), json!(t));
        m.insert("connect.type".into(), json!(connect));
        m
    };
    let missing = Schema::new(T::String);
    let child = |c: &Option<Box<Schema>>| schema_at(c.as_deref().unwrap_or(&missing), None);
    match s.schema_type {
        T::Int8 => typed("integer", "int8"),
        T::Int16 => typed("integer", "int16"),
        T::Int32 => typed("integer", "int32"),
        T::Int64 => typed("integer", "int64"),
        T::Float32 => typed("number", "float32"),
        T::Float64 => typed("number", "float64"),
        T::Bytes => typed("string", "bytes"),
        T::Boolean => obj(json!({"type": "boolean"})),
        T::String => obj(json!({"type": "string"})),
        T::Array => obj(json!({"type": "array", "items": child(&s.value_schema)})),
        T::Map => {
            let string_keys = s
                .key_schema
                .as_deref()
                .is_some_and(|k| k.schema_type == T::String && !k.optional);
            if string_keys {
                obj(
                    json!({"type": "object", "additionalProperties": child(&s.value_schema),
                           "connect.type": "map"}),
                )
            } else {
                let key = schema_at(s.key_schema.as_deref().unwrap_or(&missing), Some(0));
                let value = schema_at(s.value_schema.as_deref().unwrap_or(&missing), Some(1));
                obj(json!({"type": "array", "connect.type": "map", "items":
                    {"type": "object", "properties": {"key": key, "value": value}}}))
            }
        }
        T::Struct => {
            let mut props = Map::new();
            for (i, f) in s.fields.iter().enumerate() {
                props.insert(f.name.clone(), schema_at(&f.schema, Some(i)));
            }
            obj(json!({"type": "object", "properties": props}))
        }
    }
}

fn obj(j: J) -> Map<String, J> {
    match j {
        J::Object(m) => m,
        _ => Map::new(),
    }
}

/// The Connect schema of a JSON Schema document.
pub fn from_json_schema(doc: &J) -> Result<Schema, ConnectError> {
    from_node(doc, doc, 0)
}

fn from_node(root: &J, j: &J, depth: usize) -> Result<Schema, ConnectError> {
    let bad = |why: String| ConnectError::Data(format!("Unsupported JSON schema: {why}"));
    if depth > 64 {
        return Err(bad("nested more than 64 levels (a recursive $ref?)".into()));
    }
    if let Some(r) = j.get("$ref").and_then(J::as_str) {
        let target = r
            .strip_prefix('#')
            .and_then(|p| root.pointer(p))
            .ok_or_else(|| bad(format!("$ref {r} (only local references are supported)")))?;
        return from_node(root, target, depth + 1);
    }
    for combinator in ["oneOf", "anyOf"] {
        if let Some(branches) = j.get(combinator).and_then(J::as_array) {
            let others: Vec<&J> = branches.iter().filter(|b| !is_null_type(b)).collect();
            return match others.as_slice() {
                [one] => {
                    let s = from_node(root, one, depth + 1)?;
                    Ok(if others.len() < branches.len() {
                        s.optional()
                    } else {
                        s
                    })
                }
                _ => Err(bad(format!("{combinator} other than [null, T]"))),
            };
        }
    }
    let (type_name, nullable) = match j.get("type") {
        Some(J::String(t)) => (t.as_str(), false),
        Some(J::Array(ts)) => {
            let others: Vec<&str> = ts
                .iter()
                .filter_map(J::as_str)
                .filter(|t| *t != "null")
                .collect();
            match others.as_slice() {
                [one] => (*one, others.len() < ts.len()),
                _ => return Err(bad(format!("type {ts:?}"))),
            }
        }
        _ if j.get("enum").is_some() => ("string", false),
        _ if j.get("properties").is_some() => ("object", false),
        _ => return Err(bad(format!("no type in {j}"))),
    };
    let connect_type = j.get("connect.type").and_then(J::as_str);
    let mut s = match (type_name, connect_type) {
        ("integer" | "number", Some(ct)) => Schema::new(match ct {
            "int8" => T::Int8,
            "int16" => T::Int16,
            "int32" => T::Int32,
            "int64" => T::Int64,
            "float32" => T::Float32,
            "float64" => T::Float64,
            "bytes" => T::Bytes,
            other => return Err(bad(format!("connect.type {other}"))),
        }),
        ("integer", None) => Schema::new(T::Int64),
        ("number", None) => Schema::new(T::Float64),
        ("boolean", _) => Schema::new(T::Boolean),
        ("string", Some("bytes")) => Schema::new(T::Bytes),
        ("string", _) => Schema::new(T::String),
        ("array", Some("map")) => {
            let item = j.get("items").unwrap_or(&J::Null);
            let props = item.get("properties").unwrap_or(&J::Null);
            let key = from_node(root, props.get("key").unwrap_or(&J::Null), depth + 1)?;
            let value = from_node(root, props.get("value").unwrap_or(&J::Null), depth + 1)?;
            let mut s = Schema::new(T::Map);
            s.key_schema = Some(Box::new(key));
            s.value_schema = Some(Box::new(value));
            s
        }
        ("array", _) => {
            let items = j
                .get("items")
                .ok_or_else(|| bad("array without items".into()))?;
            let mut s = Schema::new(T::Array);
            s.value_schema = Some(Box::new(from_node(root, items, depth + 1)?));
            s
        }
        ("object", Some("map")) => {
            let values = j.get("additionalProperties").unwrap_or(&J::Null);
            let mut s = Schema::new(T::Map);
            s.key_schema = Some(Box::new(Schema::new(T::String)));
            s.value_schema = Some(Box::new(from_node(root, values, depth + 1)?));
            s
        }
        ("object", _) => {
            let props = j.get("properties").and_then(J::as_object);
            let mut fields: Vec<(usize, Field)> = Vec::new();
            for (pos, (name, p)) in props.into_iter().flatten().enumerate() {
                let index = p
                    .get("connect.index")
                    .and_then(J::as_u64)
                    .and_then(|i| usize::try_from(i).ok())
                    .unwrap_or(usize::MAX / 2 + pos);
                fields.push((
                    index,
                    Field {
                        name: name.clone(),
                        schema: from_node(root, p, depth + 1)?,
                    },
                ));
            }
            fields.sort_by_key(|(i, _)| *i);
            Schema::structure(fields.into_iter().map(|(_, f)| f).collect())
        }
        (other, _) => return Err(bad(format!("type {other}"))),
    };
    s.name = j.get("title").and_then(J::as_str).map(str::to_string);
    s.doc = j.get("description").and_then(J::as_str).map(str::to_string);
    s.version = j
        .get("connect.version")
        .and_then(J::as_i64)
        .and_then(|v| i32::try_from(v).ok());
    if let Some(J::Object(params)) = j.get("connect.parameters") {
        for (k, v) in params {
            s.parameters.insert(
                k.clone(),
                v.as_str().map_or_else(|| v.to_string(), str::to_string),
            );
        }
    }
    Ok(if nullable { s.optional() } else { s })
}

fn is_null_type(j: &J) -> bool {
    j.get("type").and_then(J::as_str) == Some("null")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &str, schema: Schema) -> Field {
        Field {
            name: name.into(),
            schema,
        }
    }

    #[test]
    fn structs_map_to_objects_as_json_schema_data_does() {
        let mut s = Schema::structure(vec![
            field("id", Schema::new(T::Int32)),
            field("name", Schema::new(T::String).optional()),
            field("raw", Schema::new(T::Bytes)),
        ]);
        s.name = Some("shop.Item".into());
        let j = to_json_schema(&s);
        assert_eq!(
            j,
            json!({"type": "object", "title": "shop.Item", "properties": {
                "id": {"type": "integer", "connect.type": "int32", "connect.index": 0},
                "name": {"oneOf": [{"type": "null"}, {"type": "string"}], "connect.index": 1},
                "raw": {"type": "string", "connect.type": "bytes", "connect.index": 2}}})
        );
        assert_eq!(from_json_schema(&j).ok(), Some(s));
    }

    #[test]
    fn plain_json_schemas_map_to_connect() {
        let j = json!({"type": "object", "properties": {
            "id": {"type": "integer"}, "score": {"type": "number"},
            "tag": {"type": ["null", "string"]},
            "owner": {"$ref": "#/definitions/Owner"}},
            "definitions": {"Owner": {"type": "object", "properties": {"n": {"type": "string"}}}}});
        let s = from_json_schema(&j).unwrap();
        let got: Vec<_> = s
            .fields
            .iter()
            .map(|f| (f.name.as_str(), f.schema.schema_type, f.schema.optional))
            .collect();
        assert_eq!(
            got,
            [
                ("id", T::Int64, false),
                ("owner", T::Struct, false),
                ("score", T::Float64, false),
                ("tag", T::String, true)
            ]
        );
        assert!(from_json_schema(&json!({"$ref": "#/definitions/Nope"})).is_err());
        assert!(from_json_schema(&json!({"$ref": "#"})).is_err());
        assert!(
            from_json_schema(&json!({"oneOf": [{"type": "string"}, {"type": "integer"}]})).is_err()
        );
    }

    #[test]
    fn maps_with_other_than_string_keys_are_arrays_of_entries() {
        let mut m = Schema::new(T::Map);
        m.key_schema = Some(Box::new(Schema::new(T::Int32)));
        m.value_schema = Some(Box::new(Schema::new(T::String)));
        let s = Schema::structure(vec![field("m", m)]);
        let v = Value::Struct(vec![(
            "m".into(),
            Value::Map(vec![(Value::Int(1), Value::String("a".into()))]),
        )]);
        let j = to_payload(&s, &v).unwrap();
        assert_eq!(j, json!({"m": [{"key": 1, "value": "a"}]}));
        let schema = to_json_schema(&s);
        assert_eq!(schema["properties"]["m"]["type"], "array");
        let back = from_json_schema(&schema).unwrap();
        assert_eq!(from_payload(&back, &j).unwrap(), v);
        // A missing required field is an error.
        assert!(from_payload(&back, &json!({})).is_err());
    }

    #[test]
    fn malformed_records_are_data_errors() {
        let mut props = Props::new();
        props.insert("schema.registry.url".into(), "http://127.0.0.1:1".into());
        let c = JsonSchemaConverter::configure(&props, false).unwrap();
        for bad in [&b"{\"a\":1}"[..], b"", &[0, 0, 0]] {
            assert!(matches!(
                c.to_connect("t", Some(bad)),
                Err(ConnectError::Data(_))
            ));
        }
        // A well-framed record whose registry cannot be reached: a data error too.
        assert!(matches!(
            c.to_connect("t", Some(&[0, 0, 0, 0, 1, b'1'])),
            Err(ConnectError::Data(_))
        ));
        assert!(matches!(
            JsonSchemaConverter::configure(&Props::new(), false),
            Err(ConnectError::Config(_))
        ));
    }
}
