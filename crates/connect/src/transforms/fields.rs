//! Field transforms: InsertField, ReplaceField, MaskField, ValueToKey, ExtractField,
//! HoistField. Each works on a `Struct` with its schema or on a schemaless `Map`, like
//! Kafka's; a null (tombstone) side passes through unchanged.

use std::collections::BTreeMap;

use gregor_connect_api::config::{get_list, get_str};
use gregor_connect_api::data::TIMESTAMP_LOGICAL;
use gregor_connect_api::{ConnectError, ConnectRecord, Field, Props, Schema, SchemaType, Value};

use super::{RecordContext, Side, Transformation};

/// The Java class Kafka names in its "found: ..." messages.
pub(crate) fn java_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Boolean(_) => "java.lang.Boolean",
        Value::Int(_) => "java.lang.Long",
        Value::Float(_) => "java.lang.Double",
        Value::String(_) => "java.lang.String",
        Value::Bytes(_) => "[B",
        Value::Array(_) => "java.util.ArrayList",
        Value::Map(_) => "java.util.HashMap",
        Value::Struct(_) => "org.apache.kafka.connect.data.Struct",
    }
}

/// Checks the side is a Struct (with a schema) or a Map (without), Kafka's
/// `Requirements.requireStruct` / `requireMap`.
pub(crate) fn require_container(
    schema: &Option<Schema>,
    value: &Value,
    purpose: &str,
) -> Result<(), ConnectError> {
    match (schema, value) {
        (Some(s), Value::Struct(_)) if s.schema_type == SchemaType::Struct => Ok(()),
        (Some(_), v) => Err(ConnectError::Data(format!(
            "Only Struct objects supported for [{purpose}], found: {}",
            java_type(v)
        ))),
        (None, Value::Map(_)) => Ok(()),
        (None, v) => Err(ConnectError::Data(format!(
            "Only Map objects supported in absence of schema for [{purpose}], found: {}",
            java_type(v)
        ))),
    }
}

/// Pushes a named field into a struct value or a map value.
fn push(value: &mut Value, name: &str, v: Value) {
    match value {
        Value::Struct(fields) => fields.push((name.to_string(), v)),
        Value::Map(entries) => entries.push((Value::String(name.to_string()), v)),
        _ => {}
    }
}

fn field_spec(raw: Option<&str>) -> Option<(String, bool)> {
    let raw = raw?.trim();
    if raw.is_empty() {
        return None;
    }
    Some(match raw.strip_suffix('!') {
        Some(n) => (n.to_string(), false),
        None => (raw.strip_suffix('?').unwrap_or(raw).to_string(), true),
    })
}

/// `InsertField$Key` / `$Value`: adds topic, partition, offset, timestamp and a static
/// field. A `!` suffix makes the field required in the schema, `?` (default) optional.
pub(crate) struct InsertField {
    side: Side,
    topic: Option<(String, bool)>,
    partition: Option<(String, bool)>,
    offset: Option<(String, bool)>,
    timestamp: Option<(String, bool)>,
    static_field: Option<(String, bool)>,
    static_value: Option<String>,
}

impl InsertField {
    pub(crate) fn new(side: Side, props: &Props) -> Result<Self, ConnectError> {
        let t = InsertField {
            side,
            topic: field_spec(get_str(props, "topic.field")),
            partition: field_spec(get_str(props, "partition.field")),
            offset: field_spec(get_str(props, "offset.field")),
            timestamp: field_spec(get_str(props, "timestamp.field")),
            static_field: field_spec(get_str(props, "static.field")),
            static_value: get_str(props, "static.value").map(str::to_string),
        };
        if t.static_field.is_some() && t.static_value.is_none() {
            return Err(ConnectError::Config(
                "Invalid value null for configuration static.value: static.value is required when static.field is set".into(),
            ));
        }
        Ok(t)
    }
}

impl Transformation for InsertField {
    fn apply(
        &self,
        mut r: ConnectRecord,
        ctx: &RecordContext,
    ) -> Result<Option<ConnectRecord>, ConnectError> {
        let (mut schema, mut value) = self.side.take(&mut r);
        if value.is_null() {
            self.side.put(&mut r, schema, value);
            return Ok(Some(r));
        }
        require_container(&schema, &value, "field insertion")?;
        let opt = |s: Schema, optional: bool| if optional { s.optional() } else { s };
        let mut add = |spec: &Option<(String, bool)>, field_schema: Schema, v: Value| {
            if let Some((name, optional)) = spec {
                if let Some(s) = schema.as_mut() {
                    s.fields.push(Field {
                        name: name.clone(),
                        schema: opt(field_schema, *optional),
                    });
                }
                push(&mut value, name, v);
            }
        };
        add(
            &self.topic,
            Schema::new(SchemaType::String),
            Value::String(r.topic.clone()),
        );
        add(
            &self.partition,
            Schema::new(SchemaType::Int32),
            r.kafka_partition
                .map_or(Value::Null, |p| Value::Int(p.into())),
        );
        add(
            &self.offset,
            Schema::new(SchemaType::Int64),
            ctx.kafka_offset.map_or(Value::Null, Value::Int),
        );
        let mut ts_schema = Schema::new(SchemaType::Int64);
        ts_schema.name = Some(TIMESTAMP_LOGICAL.to_string());
        ts_schema.version = Some(1);
        add(
            &self.timestamp,
            ts_schema,
            r.timestamp.map_or(Value::Null, Value::Int),
        );
        if let Some(v) = &self.static_value {
            add(
                &self.static_field,
                Schema::new(SchemaType::String),
                Value::String(v.clone()),
            );
        }
        self.side.put(&mut r, schema, value);
        Ok(Some(r))
    }
}

/// `ReplaceField$Key` / `$Value`: `include` (or legacy `whitelist`), `exclude` (or
/// `blacklist`) and `renames` (`old:new,...`).
pub(crate) struct ReplaceField {
    side: Side,
    include: Vec<String>,
    exclude: Vec<String>,
    renames: BTreeMap<String, String>,
}

impl ReplaceField {
    pub(crate) fn new(side: Side, props: &Props) -> Result<Self, ConnectError> {
        let mut include = get_list(props, "include");
        include.extend(get_list(props, "whitelist"));
        let mut exclude = get_list(props, "exclude");
        exclude.extend(get_list(props, "blacklist"));
        let mut renames = BTreeMap::new();
        for pair in get_list(props, "renames") {
            let Some((from, to)) = pair.split_once(':') else {
                return Err(ConnectError::Config(format!(
                    "Invalid value [{pair}] for configuration renames: Invalid rename mapping: {pair}"
                )));
            };
            renames.insert(from.to_string(), to.to_string());
        }
        Ok(ReplaceField {
            side,
            include,
            exclude,
            renames,
        })
    }

    fn keeps(&self, name: &str) -> bool {
        !self.exclude.iter().any(|e| e == name)
            && (self.include.is_empty() || self.include.iter().any(|i| i == name))
    }

    fn renamed(&self, name: &str) -> String {
        self.renames
            .get(name)
            .cloned()
            .unwrap_or_else(|| name.to_string())
    }
}

impl Transformation for ReplaceField {
    fn apply(
        &self,
        mut r: ConnectRecord,
        _ctx: &RecordContext,
    ) -> Result<Option<ConnectRecord>, ConnectError> {
        let (schema, value) = self.side.take(&mut r);
        if value.is_null() {
            self.side.put(&mut r, schema, value);
            return Ok(Some(r));
        }
        require_container(&schema, &value, "field replacement")?;
        let schema = schema.map(|mut s| {
            s.fields = std::mem::take(&mut s.fields)
                .into_iter()
                .filter(|f| self.keeps(&f.name))
                .map(|f| Field {
                    name: self.renamed(&f.name),
                    schema: f.schema,
                })
                .collect();
            s
        });
        let value = match value {
            Value::Struct(fields) => Value::Struct(
                fields
                    .into_iter()
                    .filter(|(n, _)| self.keeps(n))
                    .map(|(n, v)| (self.renamed(&n), v))
                    .collect(),
            ),
            Value::Map(entries) => Value::Map(
                entries
                    .into_iter()
                    .filter(|(k, _)| self.keeps(&k.to_display_string()))
                    .map(|(k, v)| (Value::String(self.renamed(&k.to_display_string())), v))
                    .collect(),
            ),
            other => other,
        };
        self.side.put(&mut r, schema, value);
        Ok(Some(r))
    }
}

/// `MaskField$Key` / `$Value`: replaces `fields` with their type's empty value, or with
/// `replacement` (parsed to the field's type).
pub(crate) struct MaskField {
    side: Side,
    fields: Vec<String>,
    replacement: Option<String>,
}

impl MaskField {
    pub(crate) fn new(side: Side, props: &Props) -> Result<Self, ConnectError> {
        let fields = get_list(props, "fields");
        if fields.is_empty() {
            return Err(ConnectError::Config(
                "Missing required configuration \"fields\" which has no default value.".into(),
            ));
        }
        Ok(MaskField {
            side,
            fields,
            replacement: get_str(props, "replacement").map(str::to_string),
        })
    }

    fn mask(&self, v: &Value) -> Result<Value, ConnectError> {
        let bad =
            |r: &str| ConnectError::Data(format!("Unable to convert {r} to {}", java_type(v)));
        Ok(match (v, &self.replacement) {
            (Value::Null, _) => Value::Null,
            (Value::String(_), None) => Value::String(String::new()),
            (Value::String(_), Some(r)) => Value::String(r.clone()),
            (Value::Int(_), None) => Value::Int(0),
            (Value::Int(_), Some(r)) => Value::Int(r.parse().map_err(|_| bad(r))?),
            (Value::Float(_), None) => Value::Float(0.0),
            (Value::Float(_), Some(r)) => Value::Float(r.parse().map_err(|_| bad(r))?),
            (Value::Boolean(_), None) => Value::Boolean(false),
            (Value::Boolean(_), Some(r)) => Value::Boolean(r.parse().map_err(|_| bad(r))?),
            (Value::Bytes(_), _) => Value::Bytes(Vec::new()),
            (Value::Array(_), _) => Value::Array(Vec::new()),
            (Value::Map(_), _) => Value::Map(Vec::new()),
            (Value::Struct(_), _) => {
                return Err(ConnectError::Data("Cannot mask a Struct field".into()))
            }
        })
    }
}

impl Transformation for MaskField {
    fn apply(
        &self,
        mut r: ConnectRecord,
        _ctx: &RecordContext,
    ) -> Result<Option<ConnectRecord>, ConnectError> {
        let (schema, value) = self.side.take(&mut r);
        if value.is_null() {
            self.side.put(&mut r, schema, value);
            return Ok(Some(r));
        }
        require_container(&schema, &value, "mask fields")?;
        let masked = |name: &str| self.fields.iter().any(|f| f == name);
        let value = match value {
            Value::Struct(fields) => Value::Struct(
                fields
                    .into_iter()
                    .map(|(n, v)| {
                        Ok(if masked(&n) {
                            (n, self.mask(&v)?)
                        } else {
                            (n, v)
                        })
                    })
                    .collect::<Result<_, ConnectError>>()?,
            ),
            Value::Map(entries) => Value::Map(
                entries
                    .into_iter()
                    .map(|(k, v)| {
                        Ok(if masked(&k.to_display_string()) {
                            let m = self.mask(&v)?;
                            (k, m)
                        } else {
                            (k, v)
                        })
                    })
                    .collect::<Result<_, ConnectError>>()?,
            ),
            other => other,
        };
        self.side.put(&mut r, schema, value);
        Ok(Some(r))
    }
}

/// `ValueToKey`: the key becomes a struct (or map) of the value's `fields`.
pub(crate) struct ValueToKey {
    fields: Vec<String>,
}

impl ValueToKey {
    pub(crate) fn new(props: &Props) -> Result<Self, ConnectError> {
        let fields = get_list(props, "fields");
        if fields.is_empty() {
            return Err(ConnectError::Config(
                "Missing required configuration \"fields\" which has no default value.".into(),
            ));
        }
        Ok(ValueToKey { fields })
    }
}

impl Transformation for ValueToKey {
    fn apply(
        &self,
        mut r: ConnectRecord,
        _ctx: &RecordContext,
    ) -> Result<Option<ConnectRecord>, ConnectError> {
        require_container(
            &r.value_schema,
            &r.value,
            "copying fields from value to key",
        )?;
        let mut key_fields = Vec::new();
        let mut key_values = Vec::new();
        for name in &self.fields {
            let v = r
                .value
                .get(name)
                .ok_or_else(|| ConnectError::Data(format!("Field does not exist: {name}")))?;
            if let Some(s) = &r.value_schema {
                if let Some(f) = s.field(name) {
                    key_fields.push(f.clone());
                }
            }
            key_values.push((name.clone(), v.clone()));
        }
        if r.value_schema.is_some() {
            r.key_schema = Some(Schema::structure(key_fields));
            r.key = Value::Struct(key_values);
        } else {
            r.key_schema = None;
            r.key = Value::Map(
                key_values
                    .into_iter()
                    .map(|(k, v)| (Value::String(k), v))
                    .collect(),
            );
        }
        Ok(Some(r))
    }
}

/// `ExtractField$Key` / `$Value`: replaces the side with one of its fields.
pub(crate) struct ExtractField {
    side: Side,
    field: String,
}

impl ExtractField {
    pub(crate) fn new(side: Side, props: &Props) -> Result<Self, ConnectError> {
        let field = get_str(props, "field")
            .filter(|f| !f.is_empty())
            .ok_or_else(|| {
                ConnectError::Config(
                    "Missing required configuration \"field\" which has no default value.".into(),
                )
            })?;
        Ok(ExtractField {
            side,
            field: field.to_string(),
        })
    }
}

impl Transformation for ExtractField {
    fn apply(
        &self,
        mut r: ConnectRecord,
        _ctx: &RecordContext,
    ) -> Result<Option<ConnectRecord>, ConnectError> {
        let (schema, value) = self.side.take(&mut r);
        if value.is_null() {
            self.side.put(&mut r, schema, value);
            return Ok(Some(r));
        }
        require_container(&schema, &value, "field extraction")?;
        let (schema, value) = match schema {
            Some(s) => {
                let f = s
                    .field(&self.field)
                    .ok_or_else(|| ConnectError::Data(format!("Unknown field: {}", self.field)))?;
                (
                    Some(f.schema.clone()),
                    value.get(&self.field).cloned().unwrap_or(Value::Null),
                )
            }
            None => (None, value.get(&self.field).cloned().unwrap_or(Value::Null)),
        };
        self.side.put(&mut r, schema, value);
        Ok(Some(r))
    }
}

/// `HoistField$Key` / `$Value`: wraps the side in a struct (or map) with one `field`.
pub(crate) struct HoistField {
    side: Side,
    field: String,
}

impl HoistField {
    pub(crate) fn new(side: Side, props: &Props) -> Result<Self, ConnectError> {
        let field = get_str(props, "field")
            .filter(|f| !f.is_empty())
            .ok_or_else(|| {
                ConnectError::Config(
                    "Missing required configuration \"field\" which has no default value.".into(),
                )
            })?;
        Ok(HoistField {
            side,
            field: field.to_string(),
        })
    }
}

impl Transformation for HoistField {
    fn apply(
        &self,
        mut r: ConnectRecord,
        _ctx: &RecordContext,
    ) -> Result<Option<ConnectRecord>, ConnectError> {
        let (schema, value) = self.side.take(&mut r);
        let (schema, value) = match schema {
            Some(s) => (
                Some(Schema::structure(vec![Field {
                    name: self.field.clone(),
                    schema: s,
                }])),
                Value::Struct(vec![(self.field.clone(), value)]),
            ),
            None => (
                None,
                Value::Map(vec![(Value::String(self.field.clone()), value)]),
            ),
        };
        self.side.put(&mut r, schema, value);
        Ok(Some(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> Props {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn rec() -> ConnectRecord {
        let schema = Schema::structure(vec![
            Field {
                name: "id".into(),
                schema: Schema::new(SchemaType::Int32),
            },
            Field {
                name: "ssn".into(),
                schema: Schema::new(SchemaType::String),
            },
        ]);
        ConnectRecord::new(
            "t",
            Some(schema),
            Value::Struct(vec![
                ("id".into(), Value::Int(1)),
                ("ssn".into(), Value::String("123".into())),
            ]),
        )
    }

    #[test]
    fn insert_replace_mask_and_value_to_key() {
        let ctx = RecordContext {
            kafka_offset: Some(5),
        };
        let ins = InsertField::new(
            Side::Value,
            &props(&[
                ("topic.field", "tp"),
                ("offset.field", "off!"),
                ("static.field", "src"),
                ("static.value", "s"),
            ]),
        )
        .unwrap();
        let r = ins.apply(rec(), &ctx).unwrap().unwrap();
        assert_eq!(r.value.get("tp"), Some(&Value::String("t".into())));
        assert_eq!(r.value.get("off"), Some(&Value::Int(5)));
        assert!(
            !r.value_schema
                .as_ref()
                .unwrap()
                .field("off")
                .unwrap()
                .schema
                .optional
        );
        let rep = ReplaceField::new(
            Side::Value,
            &props(&[("exclude", "tp"), ("renames", "id:user_id")]),
        )
        .unwrap();
        let r = rep.apply(r, &ctx).unwrap().unwrap();
        assert_eq!(r.value.get("tp"), None);
        assert_eq!(r.value.get("user_id"), Some(&Value::Int(1)));
        let mask = MaskField::new(
            Side::Value,
            &props(&[("fields", "ssn"), ("replacement", "***")]),
        )
        .unwrap();
        let r = mask.apply(r, &ctx).unwrap().unwrap();
        assert_eq!(r.value.get("ssn"), Some(&Value::String("***".into())));
        let v2k = ValueToKey::new(&props(&[("fields", "user_id")])).unwrap();
        let r = v2k.apply(r, &ctx).unwrap().unwrap();
        assert_eq!(
            r.key,
            Value::Struct(vec![("user_id".into(), Value::Int(1))])
        );
    }

    #[test]
    fn insert_on_a_string_is_a_data_error_in_kafkas_words() {
        let ins = InsertField::new(Side::Value, &props(&[("topic.field", "tp")])).unwrap();
        let r = ConnectRecord::new("t", None, Value::String("x".into()));
        let err = ins
            .apply(r, &RecordContext::default())
            .err()
            .map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("Only Map objects supported in absence of schema for [field insertion], found: java.lang.String"));
    }
}
