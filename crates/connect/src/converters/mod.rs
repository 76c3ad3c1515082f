//! Converters: between Kafka's bytes and Kafka Connect's schema + value, with Kafka's
//! class names so worker and connector configs carry over unchanged.

pub mod avro;
pub mod avro_schema;
pub mod json;
pub mod json_schema;
pub mod protobuf;
pub mod protobuf_schema;
pub mod registry;

pub use avro::AvroConverter;
pub use json::JsonConverter;
pub use json_schema::JsonSchemaConverter;
pub use protobuf::ProtobufConverter;

use gregor_connect_api::{ConnectError, Props, Schema, SchemaType, Value};

/// Bytes <-> (schema, value) for keys or values (Kafka's `Converter`; the method names
/// are Kafka's `fromConnectData`/`toConnectData`, hence the allowed lint).
#[allow(clippy::wrong_self_convention)]
pub trait Converter: Send + Sync {
    /// Serializes; `None` is a null record key/value.
    fn from_connect(
        &self,
        topic: &str,
        schema: Option<&Schema>,
        value: &Value,
    ) -> Result<Option<Vec<u8>>, ConnectError>;
    /// Deserializes.
    fn to_connect(
        &self,
        topic: &str,
        bytes: Option<&[u8]>,
    ) -> Result<(Option<Schema>, Value), ConnectError>;
}

pub const JSON: &str = "org.apache.kafka.connect.json.JsonConverter";
pub const STRING: &str = "org.apache.kafka.connect.storage.StringConverter";
pub const BYTE_ARRAY: &str = "org.apache.kafka.connect.converters.ByteArrayConverter";
pub const AVRO: &str = "io.confluent.connect.avro.AvroConverter";
pub const JSON_SCHEMA: &str = "io.confluent.connect.json.JsonSchemaConverter";
pub const PROTOBUF: &str = "io.confluent.connect.protobuf.ProtobufConverter";

/// The converter classes this worker has.
pub const CLASSES: &[&str] = &[JSON, STRING, BYTE_ARRAY, AVRO, JSON_SCHEMA, PROTOBUF];

/// Builds a converter by class name (or its simple name) with its settings (the
/// `key.converter.`/`value.converter.` prefix already stripped).
pub fn create(
    class: &str,
    props: &Props,
    is_key: bool,
) -> Result<Box<dyn Converter>, ConnectError> {
    let simple = class.rsplit('.').next().unwrap_or(class);
    match simple {
        "JsonConverter" => Ok(Box::new(JsonConverter::configure(props, is_key)?)),
        "StringConverter" => Ok(Box::new(StringConverter)),
        "ByteArrayConverter" => Ok(Box::new(ByteArrayConverter)),
        "AvroConverter" => Ok(Box::new(AvroConverter::configure(props, is_key)?)),
        "JsonSchemaConverter" => Ok(Box::new(JsonSchemaConverter::configure(props, is_key)?)),
        "ProtobufConverter" => Ok(Box::new(ProtobufConverter::configure(props, is_key)?)),
        _ => Err(ConnectError::Config(format!(
            "Invalid value {class} for configuration {}.converter: Class {class} could not be found.",
            if is_key { "key" } else { "value" }
        ))),
    }
}

/// `org.apache.kafka.connect.storage.StringConverter`: UTF-8 text.
pub struct StringConverter;

impl Converter for StringConverter {
    fn from_connect(
        &self,
        _topic: &str,
        _schema: Option<&Schema>,
        value: &Value,
    ) -> Result<Option<Vec<u8>>, ConnectError> {
        Ok(match value {
            Value::Null => None,
            v => Some(v.to_display_string().into_bytes()),
        })
    }

    fn to_connect(
        &self,
        _topic: &str,
        bytes: Option<&[u8]>,
    ) -> Result<(Option<Schema>, Value), ConnectError> {
        let schema = Some(Schema::new(SchemaType::String).optional());
        Ok(match bytes {
            None => (schema, Value::Null),
            Some(b) => (
                schema,
                Value::String(String::from_utf8_lossy(b).into_owned()),
            ),
        })
    }
}

/// `org.apache.kafka.connect.converters.ByteArrayConverter`: bytes passed through.
pub struct ByteArrayConverter;

impl Converter for ByteArrayConverter {
    fn from_connect(
        &self,
        _topic: &str,
        _schema: Option<&Schema>,
        value: &Value,
    ) -> Result<Option<Vec<u8>>, ConnectError> {
        match value {
            Value::Null => Ok(None),
            Value::Bytes(b) => Ok(Some(b.clone())),
            // FileStreamSource lines are strings: pass their bytes through.
            Value::String(s) => Ok(Some(s.clone().into_bytes())),
            _ => Err(ConnectError::Data(
                "ByteArrayConverter is not compatible with objects of this type".into(),
            )),
        }
    }

    fn to_connect(
        &self,
        _topic: &str,
        bytes: Option<&[u8]>,
    ) -> Result<(Option<Schema>, Value), ConnectError> {
        let schema = Some(Schema::new(SchemaType::Bytes).optional());
        Ok(match bytes {
            None => (schema, Value::Null),
            Some(b) => (schema, Value::Bytes(b.to_vec())),
        })
    }
}
