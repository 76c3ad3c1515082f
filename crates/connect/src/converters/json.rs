//! `org.apache.kafka.connect.json.JsonConverter`. With `schemas.enable=true` (Kafka's
//! default) every message is the envelope `{"schema": ..., "payload": ...}`; without,
//! plain JSON whose values are read schemaless (objects become maps).

use base64::Engine as _;
use gregor_connect_api::config::get_bool;
use gregor_connect_api::{ConnectError, Field, Props, Schema, SchemaType, Value};
use serde_json::{json, Map, Value as J};

use super::Converter;

/// The JSON converter and its one setting.
pub struct JsonConverter {
    schemas_enable: bool,
}

impl JsonConverter {
    /// Reads `schemas.enable` (default true).
    pub fn configure(props: &Props, _is_key: bool) -> Result<Self, ConnectError> {
        Ok(JsonConverter {
            schemas_enable: get_bool(props, "schemas.enable", true),
        })
    }

    /// A converter with `schemas.enable` set as given.
    pub fn new(schemas_enable: bool) -> Self {
        JsonConverter { schemas_enable }
    }
}

const ENVELOPE_ERROR: &str = "JsonConverter with schemas.enable requires \"schema\" and \"payload\" fields and may not contain additional fields. If you are trying to deserialize plain JSON data, set schemas.enable=false in your converter configuration.";

impl Converter for JsonConverter {
    fn from_connect(
        &self,
        _topic: &str,
        schema: Option<&Schema>,
        value: &Value,
    ) -> Result<Option<Vec<u8>>, ConnectError> {
        if schema.is_none() && value.is_null() {
            return Ok(None);
        }
        let payload = value_to_json(schema, value)?;
        let doc = if self.schemas_enable {
            json!({"schema": schema.map(schema_to_json), "payload": payload})
        } else {
            payload
        };
        serde_json::to_vec(&doc)
            .map(Some)
            .map_err(|e| ConnectError::Data(format!("Converting to JSON failed: {e}")))
    }

    fn to_connect(
        &self,
        _topic: &str,
        bytes: Option<&[u8]>,
    ) -> Result<(Option<Schema>, Value), ConnectError> {
        let Some(bytes) = bytes else {
            return Ok((None, Value::Null));
        };
        let doc: J = serde_json::from_slice(bytes).map_err(|e| {
            ConnectError::Data(format!(
                "Converting byte[] to Kafka Connect data failed due to serialization error: {e}"
            ))
        })?;
        if !self.schemas_enable {
            return Ok((None, schemaless(&doc)));
        }
        let J::Object(obj) = &doc else {
            return Err(ConnectError::Data(ENVELOPE_ERROR.into()));
        };
        if obj.len() != 2 || !obj.contains_key("schema") || !obj.contains_key("payload") {
            return Err(ConnectError::Data(ENVELOPE_ERROR.into()));
        }
        let payload = &obj["payload"];
        match &obj["schema"] {
            J::Null => Ok((None, schemaless(payload))),
            s => {
                let schema = schema_from_json(s)?;
                let value = value_from_json(&schema, payload)?;
                Ok((Some(schema), value))
            }
        }
    }
}

/// A schema in Kafka's envelope form.
pub fn schema_to_json(schema: &Schema) -> J {
    let mut m = Map::new();
    m.insert("type".into(), J::from(schema.schema_type.name()));
    match schema.schema_type {
        SchemaType::Struct => {
            let fields: Vec<J> = schema
                .fields
                .iter()
                .map(|f| {
                    let mut fj = schema_to_json(&f.schema);
                    if let J::Object(o) = &mut fj {
                        o.insert("field".into(), J::from(f.name.clone()));
                    }
                    fj
                })
                .collect();
            m.insert("fields".into(), J::Array(fields));
        }
        SchemaType::Array => {
            if let Some(v) = &schema.value_schema {
                m.insert("items".into(), schema_to_json(v));
            }
        }
        SchemaType::Map => {
            if let Some(k) = &schema.key_schema {
                m.insert("keys".into(), schema_to_json(k));
            }
            if let Some(v) = &schema.value_schema {
                m.insert("values".into(), schema_to_json(v));
            }
        }
        _ => {}
    }
    m.insert("optional".into(), J::Bool(schema.optional));
    if let Some(n) = &schema.name {
        m.insert("name".into(), J::from(n.clone()));
    }
    if let Some(v) = schema.version {
        m.insert("version".into(), J::from(v));
    }
    if let Some(d) = &schema.doc {
        m.insert("doc".into(), J::from(d.clone()));
    }
    if !schema.parameters.is_empty() {
        m.insert("parameters".into(), json!(schema.parameters));
    }
    J::Object(m)
}

/// Parses a schema in Kafka's envelope form.
pub fn schema_from_json(j: &J) -> Result<Schema, ConnectError> {
    let bad = |why: &str| ConnectError::Data(format!("Invalid JSON schema: {why}"));
    let type_name = j
        .get("type")
        .and_then(J::as_str)
        .ok_or_else(|| bad("schema must contain 'type' field"))?;
    let schema_type = SchemaType::parse(type_name)
        .ok_or_else(|| bad(&format!("unknown schema type: {type_name}")))?;
    let mut schema = Schema::new(schema_type);
    schema.optional = j.get("optional").and_then(J::as_bool).unwrap_or(false);
    schema.name = j.get("name").and_then(J::as_str).map(str::to_string);
    schema.version = j
        .get("version")
        .and_then(J::as_i64)
        .and_then(|v| i32::try_from(v).ok());
    schema.doc = j.get("doc").and_then(J::as_str).map(str::to_string);
    if let Some(J::Object(params)) = j.get("parameters") {
        for (k, v) in params {
            schema
                .parameters
                .insert(k.clone(), v.as_str().unwrap_or_default().to_string());
        }
    }
    match schema_type {
        SchemaType::Struct => {
            let fields = j
                .get("fields")
                .and_then(J::as_array)
                .ok_or_else(|| bad("struct schema must contain 'fields'"))?;
            for f in fields {
                let name = f
                    .get("field")
                    .and_then(J::as_str)
                    .ok_or_else(|| bad("struct field must contain 'field'"))?;
                schema.fields.push(Field {
                    name: name.to_string(),
                    schema: schema_from_json(f)?,
                });
            }
        }
        SchemaType::Array => {
            let items = j
                .get("items")
                .ok_or_else(|| bad("array schema must contain 'items'"))?;
            schema.value_schema = Some(Box::new(schema_from_json(items)?));
        }
        SchemaType::Map => {
            let keys = j
                .get("keys")
                .ok_or_else(|| bad("map schema must contain 'keys'"))?;
            let values = j
                .get("values")
                .ok_or_else(|| bad("map schema must contain 'values'"))?;
            schema.key_schema = Some(Box::new(schema_from_json(keys)?));
            schema.value_schema = Some(Box::new(schema_from_json(values)?));
        }
        _ => {}
    }
    Ok(schema)
}

/// A value as JSON, following its schema when it has one (bytes become base64).
pub fn value_to_json(schema: Option<&Schema>, value: &Value) -> Result<J, ConnectError> {
    Ok(match value {
        Value::Null => J::Null,
        Value::Boolean(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        Value::String(s) => J::String(s.clone()),
        Value::Bytes(b) => J::String(base64::engine::general_purpose::STANDARD.encode(b)),
        Value::Array(items) => {
            let inner = schema.and_then(|s| s.value_schema.as_deref());
            J::Array(
                items
                    .iter()
                    .map(|v| value_to_json(inner, v))
                    .collect::<Result<_, _>>()?,
            )
        }
        Value::Map(entries) => {
            let inner = schema.and_then(|s| s.value_schema.as_deref());
            let mut m = Map::new();
            for (k, v) in entries {
                m.insert(k.to_display_string(), value_to_json(inner, v)?);
            }
            J::Object(m)
        }
        Value::Struct(fields) => {
            let mut m = Map::new();
            for (name, v) in fields {
                let fs = schema.and_then(|s| s.field(name)).map(|f| &f.schema);
                m.insert(name.clone(), value_to_json(fs, v)?);
            }
            J::Object(m)
        }
    })
}

/// A JSON payload read against its schema.
pub fn value_from_json(schema: &Schema, j: &J) -> Result<Value, ConnectError> {
    let mismatch = || {
        ConnectError::Data(format!(
            "JSON value {j} does not match schema type {}",
            schema.schema_type.name()
        ))
    };
    if j.is_null() {
        return if schema.optional {
            Ok(Value::Null)
        } else {
            Err(ConnectError::Data(format!(
                "Invalid null value for required {} field",
                schema.schema_type.name()
            )))
        };
    }
    Ok(match schema.schema_type {
        SchemaType::Int8 | SchemaType::Int16 | SchemaType::Int32 | SchemaType::Int64 => {
            Value::Int(j.as_i64().ok_or_else(mismatch)?)
        }
        SchemaType::Float32 | SchemaType::Float64 => Value::Float(j.as_f64().ok_or_else(mismatch)?),
        SchemaType::Boolean => Value::Boolean(j.as_bool().ok_or_else(mismatch)?),
        SchemaType::String => Value::String(j.as_str().ok_or_else(mismatch)?.to_string()),
        SchemaType::Bytes => Value::Bytes(
            base64::engine::general_purpose::STANDARD
                .decode(j.as_str().ok_or_else(mismatch)?)
                .map_err(|e| ConnectError::Data(format!("Invalid bytes field: {e}")))?,
        ),
        SchemaType::Array => {
            let inner = schema.value_schema.as_deref().ok_or_else(mismatch)?;
            Value::Array(
                j.as_array()
                    .ok_or_else(mismatch)?
                    .iter()
                    .map(|v| value_from_json(inner, v))
                    .collect::<Result<_, _>>()?,
            )
        }
        SchemaType::Map => {
            let inner = schema.value_schema.as_deref().ok_or_else(mismatch)?;
            let mut entries = Vec::new();
            for (k, v) in j.as_object().ok_or_else(mismatch)? {
                entries.push((Value::String(k.clone()), value_from_json(inner, v)?));
            }
            Value::Map(entries)
        }
        SchemaType::Struct => {
            let obj = j.as_object().ok_or_else(mismatch)?;
            let mut fields = Vec::new();
            for f in &schema.fields {
                let v = obj.get(&f.name).unwrap_or(&J::Null);
                fields.push((f.name.clone(), value_from_json(&f.schema, v)?));
            }
            Value::Struct(fields)
        }
    })
}

/// Plain JSON as a schemaless value: objects become string-keyed maps.
pub fn schemaless(j: &J) -> Value {
    match j {
        J::Null => Value::Null,
        J::Bool(b) => Value::Boolean(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or_default()),
        },
        J::String(s) => Value::String(s.clone()),
        J::Array(items) => Value::Array(items.iter().map(schemaless).collect()),
        J::Object(m) => Value::Map(
            m.iter()
                .map(|(k, v)| (Value::String(k.clone()), schemaless(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_round_trips_a_struct() {
        let c = JsonConverter::new(true);
        let schema = Schema::structure(vec![
            Field {
                name: "id".into(),
                schema: Schema::new(SchemaType::Int32),
            },
            Field {
                name: "name".into(),
                schema: Schema::new(SchemaType::String).optional(),
            },
        ]);
        let value = Value::Struct(vec![
            ("id".into(), Value::Int(7)),
            ("name".into(), Value::String("x".into())),
        ]);
        let bytes = c
            .from_connect("t", Some(&schema), &value)
            .ok()
            .flatten()
            .unwrap_or_default();
        let doc: J = serde_json::from_slice(&bytes).unwrap_or_default();
        assert_eq!(doc["payload"], json!({"id": 7, "name": "x"}));
        assert_eq!(
            doc["schema"]["fields"][0],
            json!({"type": "int32", "optional": false, "field": "id"})
        );
        let back = c.to_connect("t", Some(&bytes)).ok();
        assert_eq!(back, Some((Some(schema), value)));
    }

    #[test]
    fn plain_json_is_refused_with_schemas_enabled_and_read_without() {
        let with = JsonConverter::new(true);
        assert!(
            matches!(with.to_connect("t", Some(br#"{"a":1}"#)), Err(ConnectError::Data(m)) if m == ENVELOPE_ERROR)
        );
        let without = JsonConverter::new(false);
        let (s, v) = without
            .to_connect("t", Some(br#"{"a":1}"#))
            .unwrap_or((None, Value::Null));
        assert!(s.is_none());
        assert_eq!(v.get("a"), Some(&Value::Int(1)));
        assert!(without.to_connect("t", Some(b"{not json")).is_err());
    }
}
