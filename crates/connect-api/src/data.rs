//! Kafka Connect's data model: a `Value` and, optionally, the `Schema` it conforms to.
//!
//! Integers of every width are one `Value::Int` (the schema says which width); structs
//! keep their field order, which JSON output preserves.

use std::collections::BTreeMap;

/// Kafka Connect's schema types, named as in the JSON converter's envelope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchemaType {
    Int8,
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    Boolean,
    String,
    Bytes,
    Array,
    Map,
    Struct,
}

impl SchemaType {
    /// The name in Kafka's JSON schema envelope (`"int32"`, `"struct"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            SchemaType::Int8 => "int8",
            SchemaType::Int16 => "int16",
            SchemaType::Int32 => "int32",
            SchemaType::Int64 => "int64",
            SchemaType::Float32 => "float",
            SchemaType::Float64 => "double",
            SchemaType::Boolean => "boolean",
            SchemaType::String => "string",
            SchemaType::Bytes => "bytes",
            SchemaType::Array => "array",
            SchemaType::Map => "map",
            SchemaType::Struct => "struct",
        }
    }

    /// Parses a JSON-envelope or Cast-spec type name (`float32` is accepted for `float`).
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "int8" => SchemaType::Int8,
            "int16" => SchemaType::Int16,
            "int32" => SchemaType::Int32,
            "int64" => SchemaType::Int64,
            "float" | "float32" => SchemaType::Float32,
            "double" | "float64" => SchemaType::Float64,
            "boolean" => SchemaType::Boolean,
            "string" => SchemaType::String,
            "bytes" => SchemaType::Bytes,
            "array" => SchemaType::Array,
            "map" => SchemaType::Map,
            "struct" => SchemaType::Struct,
            _ => return None,
        })
    }

    /// True for the types that hold a single value.
    pub fn is_primitive(self) -> bool {
        !matches!(
            self,
            SchemaType::Array | SchemaType::Map | SchemaType::Struct
        )
    }
}

/// A named field of a struct schema.
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    pub name: String,
    pub schema: Schema,
}

/// A Kafka Connect schema (`org.apache.kafka.connect.data.Schema`).
#[derive(Clone, Debug, PartialEq)]
pub struct Schema {
    pub schema_type: SchemaType,
    pub optional: bool,
    /// Logical type name, e.g. `org.apache.kafka.connect.data.Timestamp`.
    pub name: Option<String>,
    pub version: Option<i32>,
    pub doc: Option<String>,
    pub parameters: BTreeMap<String, String>,
    /// Struct fields, in order.
    pub fields: Vec<Field>,
    /// Map keys.
    pub key_schema: Option<Box<Schema>>,
    /// Map values and array elements.
    pub value_schema: Option<Box<Schema>>,
}

/// Kafka Connect's `Timestamp` logical type (int64 milliseconds since the epoch).
pub const TIMESTAMP_LOGICAL: &str = "org.apache.kafka.connect.data.Timestamp";
/// Kafka Connect's `Date` logical type (int32 days since the epoch).
pub const DATE_LOGICAL: &str = "org.apache.kafka.connect.data.Date";
/// Kafka Connect's `Time` logical type (int32 milliseconds since midnight).
pub const TIME_LOGICAL: &str = "org.apache.kafka.connect.data.Time";

impl Schema {
    /// A required schema of a primitive type.
    pub fn new(schema_type: SchemaType) -> Self {
        Schema {
            schema_type,
            optional: false,
            name: None,
            version: None,
            doc: None,
            parameters: BTreeMap::new(),
            fields: Vec::new(),
            key_schema: None,
            value_schema: None,
        }
    }

    /// The same schema, optional.
    pub fn optional(mut self) -> Self {
        self.optional = true;
        self
    }

    /// A struct schema with these fields.
    pub fn structure(fields: Vec<Field>) -> Self {
        Schema {
            fields,
            ..Schema::new(SchemaType::Struct)
        }
    }

    /// The field named `name` of a struct schema.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// A Kafka Connect value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Boolean(bool),
    /// Any integer width (int8..int64).
    Int(i64),
    /// float32 or float64.
    Float(f64),
    String(String),
    Bytes(Vec<u8>),
    Array(Vec<Value>),
    /// A map; keys are values too (strings when schemaless JSON).
    Map(Vec<(Value, Value)>),
    /// A struct's field values, in the schema's field order.
    Struct(Vec<(String, Value)>),
}

impl Value {
    /// True for `Value::Null` (a tombstone when it is the record's value).
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The value of field `name` of a struct, or of key `name` of a map.
    pub fn get(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Struct(fields) => fields.iter().find(|(n, _)| n == name).map(|(_, v)| v),
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| matches!(k, Value::String(s) if s == name))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The value as text, the way Kafka's `toString()` shows it for strings and
    /// primitives; composite values are shown as JSON.
    pub fn to_display_string(&self) -> String {
        match self {
            Value::String(s) => s.clone(),
            Value::Null => "null".to_string(),
            other => other.to_json().to_string(),
        }
    }

    /// A schemaless JSON rendering (bytes as base64-free arrays are not JSON: shown as
    /// their UTF-8 text, lossily).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Null => J::Null,
            Value::Boolean(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::String(s) => J::String(s.clone()),
            Value::Bytes(b) => J::String(String::from_utf8_lossy(b).into_owned()),
            Value::Array(items) => J::Array(items.iter().map(Value::to_json).collect()),
            Value::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.to_display_string(), v.to_json()))
                    .collect(),
            ),
            Value::Struct(fields) => J::Object(
                fields
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }
}
