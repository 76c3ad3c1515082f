//! `Cast` and `TimestampConverter`.

use gregor_connect_api::config::{get_list, get_str};
use gregor_connect_api::data::{DATE_LOGICAL, TIMESTAMP_LOGICAL, TIME_LOGICAL};
use gregor_connect_api::{ConnectError, ConnectRecord, Props, Schema, SchemaType, Value};

use super::fields::{java_type, require_container};
use super::{time, RecordContext, Side, Transformation};

/// `Cast$Key` / `$Value`: `spec` is either one type for the whole side or
/// `field:type,...` for fields of a struct or map.
pub(crate) struct Cast {
    side: Side,
    whole: Option<SchemaType>,
    fields: Vec<(String, SchemaType)>,
}

fn cast_type(name: &str) -> Result<SchemaType, ConnectError> {
    match SchemaType::parse(name.trim()) {
        Some(t) if t.is_primitive() => Ok(t),
        _ => Err(ConnectError::Config(format!(
            "Invalid value {name} for configuration spec: Cast transformation does not support casting to {name}"
        ))),
    }
}

impl Cast {
    pub(crate) fn new(side: Side, props: &Props) -> Result<Self, ConnectError> {
        let spec = get_list(props, "spec");
        if spec.is_empty() {
            return Err(ConnectError::Config(
                "Missing required configuration \"spec\" which has no default value.".into(),
            ));
        }
        let mut cast = Cast {
            side,
            whole: None,
            fields: Vec::new(),
        };
        for item in spec {
            match item.split_once(':') {
                Some((f, t)) => cast.fields.push((f.trim().to_string(), cast_type(t)?)),
                None if cast.fields.is_empty() && cast.whole.is_none() => {
                    cast.whole = Some(cast_type(&item)?)
                }
                None => {
                    return Err(ConnectError::Config(format!(
                        "Invalid value {item} for configuration spec: must be field:type pairs or a single type"
                    )))
                }
            }
        }
        Ok(cast)
    }
}

/// Casts a primitive value to `to`.
pub(crate) fn cast_value(v: &Value, to: SchemaType) -> Result<Value, ConnectError> {
    let fail = || {
        ConnectError::Data(format!(
            "Unexpected type in Cast transformation: {} to {}",
            java_type(v),
            to.name()
        ))
    };
    let as_f64 = || -> Result<f64, ConnectError> {
        match v {
            Value::Int(i) => Ok(*i as f64),
            Value::Float(f) => Ok(*f),
            Value::Boolean(b) => Ok(if *b { 1.0 } else { 0.0 }),
            Value::String(s) => s.trim().parse().map_err(|_| fail()),
            _ => Err(fail()),
        }
    };
    Ok(match (v, to) {
        (Value::Null, _) => Value::Null,
        (_, SchemaType::String) => Value::String(v.to_display_string()),
        (_, SchemaType::Boolean) => match v {
            Value::String(s) => Value::Boolean(s.trim().eq_ignore_ascii_case("true")),
            _ => Value::Boolean(as_f64()? != 0.0),
        },
        (_, SchemaType::Float32 | SchemaType::Float64) => Value::Float(as_f64()?),
        (
            Value::String(s),
            SchemaType::Int8 | SchemaType::Int16 | SchemaType::Int32 | SchemaType::Int64,
        ) => Value::Int(s.trim().parse().map_err(|_| fail())?),
        (_, SchemaType::Int8 | SchemaType::Int16 | SchemaType::Int32 | SchemaType::Int64) => {
            Value::Int(as_f64()?.trunc() as i64)
        }
        _ => return Err(fail()),
    })
}

impl Transformation for Cast {
    fn apply(
        &self,
        mut r: ConnectRecord,
        _ctx: &RecordContext,
    ) -> Result<Option<ConnectRecord>, ConnectError> {
        let (schema, value) = self.side.take(&mut r);
        if let Some(to) = self.whole {
            let value = cast_value(&value, to)?;
            let schema = schema.map(|s| Schema {
                optional: s.optional,
                ..Schema::new(to)
            });
            self.side.put(&mut r, schema, value);
            return Ok(Some(r));
        }
        if value.is_null() {
            self.side.put(&mut r, schema, value);
            return Ok(Some(r));
        }
        require_container(&schema, &value, "cast types")?;
        let target = |name: &str| self.fields.iter().find(|(f, _)| f == name).map(|(_, t)| *t);
        let schema = schema.map(|mut s| {
            for f in &mut s.fields {
                if let Some(t) = target(&f.name) {
                    f.schema = Schema {
                        optional: f.schema.optional,
                        ..Schema::new(t)
                    };
                }
            }
            s
        });
        let value = match value {
            Value::Struct(fields) => Value::Struct(
                fields
                    .into_iter()
                    .map(|(n, v)| match target(&n) {
                        Some(t) => cast_value(&v, t).map(|c| (n, c)),
                        None => Ok((n, v)),
                    })
                    .collect::<Result<_, _>>()?,
            ),
            Value::Map(entries) => Value::Map(
                entries
                    .into_iter()
                    .map(|(k, v)| match target(&k.to_display_string()) {
                        Some(t) => cast_value(&v, t).map(|c| (k, c)),
                        None => Ok((k, v)),
                    })
                    .collect::<Result<_, _>>()?,
            ),
            other => other,
        };
        self.side.put(&mut r, schema, value);
        Ok(Some(r))
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    String,
    Unix,
    Date,
    Time,
    Timestamp,
}

/// `TimestampConverter$Key` / `$Value`: converts `field` (or the whole side when
/// empty) between unix epoch numbers, formatted strings and the Date, Time and
/// Timestamp logical types. Time zone: UTC, as Kafka's.
pub(crate) struct TimestampConverter {
    side: Side,
    field: String,
    target: Target,
    format: Option<String>,
    /// The unit of unix numbers: seconds, milliseconds, microseconds or nanoseconds.
    precision: &'static str,
}

impl TimestampConverter {
    pub(crate) fn new(side: Side, props: &Props) -> Result<Self, ConnectError> {
        let target = match get_str(props, "target.type") {
            Some("string") => Target::String,
            Some("unix") => Target::Unix,
            Some("Date") => Target::Date,
            Some("Time") => Target::Time,
            Some("Timestamp") => Target::Timestamp,
            Some(other) => {
                return Err(ConnectError::Config(format!(
                    "Invalid value {other} for configuration target.type: String must be one of: string, unix, Date, Time, Timestamp"
                )))
            }
            None => {
                return Err(ConnectError::Config(
                    "Missing required configuration \"target.type\" which has no default value."
                        .into(),
                ))
            }
        };
        let format = get_str(props, "format")
            .filter(|f| !f.is_empty())
            .map(str::to_string);
        if target == Target::String && format.is_none() {
            return Err(ConnectError::Config(
                "TimestampConverter requires format option to be specified when using string timestamps".into(),
            ));
        }
        let precision = match get_str(props, "unix.precision").unwrap_or("milliseconds") {
            "seconds" => "seconds",
            "milliseconds" => "milliseconds",
            "microseconds" => "microseconds",
            "nanoseconds" => "nanoseconds",
            other => {
                return Err(ConnectError::Config(format!(
                    "Invalid value {other} for configuration unix.precision: String must be one of: nanoseconds, microseconds, milliseconds, seconds"
                )))
            }
        };
        Ok(TimestampConverter {
            side,
            field: get_str(props, "field").unwrap_or("").to_string(),
            target,
            format,
            precision,
        })
    }

    fn to_millis(&self, schema: Option<&Schema>, v: &Value) -> Result<i64, ConnectError> {
        let logical = schema.and_then(|s| s.name.as_deref());
        match v {
            Value::Int(i) => Ok(match logical {
                Some(DATE_LOGICAL) => i * 86_400_000,
                Some(TIMESTAMP_LOGICAL) | Some(TIME_LOGICAL) => *i,
                _ => match self.precision {
                    "seconds" => i * 1000,
                    "microseconds" => i / 1000,
                    "nanoseconds" => i / 1_000_000,
                    _ => *i,
                },
            }),
            Value::String(s) => match &self.format {
                Some(f) => time::parse(s, f),
                None => Err(ConnectError::Data(
                    "TimestampConverter requires format option to be specified when using string timestamps".into(),
                )),
            },
            other => Err(ConnectError::Data(format!(
                "Expected a timestamp, found {}",
                java_type(other)
            ))),
        }
    }

    fn convert(&self, ms: i64, optional: bool) -> (Schema, Value) {
        let logical = |t: SchemaType, name: &str| Schema {
            name: Some(name.to_string()),
            version: Some(1),
            optional,
            ..Schema::new(t)
        };
        match self.target {
            Target::String => (
                Schema {
                    optional,
                    ..Schema::new(SchemaType::String)
                },
                Value::String(time::format(ms, self.format.as_deref().unwrap_or_default())),
            ),
            Target::Unix => (
                Schema {
                    optional,
                    ..Schema::new(SchemaType::Int64)
                },
                Value::Int(match self.precision {
                    "seconds" => ms.div_euclid(1000),
                    "microseconds" => ms * 1000,
                    "nanoseconds" => ms * 1_000_000,
                    _ => ms,
                }),
            ),
            Target::Date => (
                logical(SchemaType::Int32, DATE_LOGICAL),
                Value::Int(ms.div_euclid(86_400_000)),
            ),
            Target::Time => (
                logical(SchemaType::Int32, TIME_LOGICAL),
                Value::Int(ms.rem_euclid(86_400_000)),
            ),
            Target::Timestamp => (
                logical(SchemaType::Int64, TIMESTAMP_LOGICAL),
                Value::Int(ms),
            ),
        }
    }
}

impl Transformation for TimestampConverter {
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
        if self.field.is_empty() {
            let ms = self.to_millis(schema.as_ref(), &value)?;
            let (s, v) = self.convert(ms, schema.as_ref().is_some_and(|s| s.optional));
            self.side.put(&mut r, schema.map(|_| s), v);
            return Ok(Some(r));
        }
        require_container(&schema, &value, "converting timestamp formats")?;
        let field_schema = schema
            .as_ref()
            .and_then(|s| s.field(&self.field))
            .map(|f| f.schema.clone());
        let (mut schema, mut value) = (schema, value);
        let current = value.get(&self.field).cloned().unwrap_or(Value::Null);
        let (new_schema, new_value) = if current.is_null() {
            (
                field_schema
                    .clone()
                    .unwrap_or_else(|| Schema::new(SchemaType::Int64)),
                Value::Null,
            )
        } else {
            let ms = self.to_millis(field_schema.as_ref(), &current)?;
            self.convert(ms, field_schema.as_ref().is_some_and(|s| s.optional))
        };
        if let Some(s) = schema.as_mut() {
            if let Some(f) = s.fields.iter_mut().find(|f| f.name == self.field) {
                f.schema = new_schema;
            }
        }
        match &mut value {
            Value::Struct(fields) => {
                if let Some(slot) = fields.iter_mut().find(|(n, _)| *n == self.field) {
                    slot.1 = new_value;
                }
            }
            Value::Map(entries) => {
                if let Some(slot) = entries
                    .iter_mut()
                    .find(|(k, _)| matches!(k, Value::String(s) if *s == self.field))
                {
                    slot.1 = new_value;
                }
            }
            _ => {}
        }
        self.side.put(&mut r, schema, value);
        Ok(Some(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gregor_connect_api::Field;

    fn props(pairs: &[(&str, &str)]) -> Props {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn cast_fields_and_whole_values() {
        let schema = Schema::structure(vec![
            Field {
                name: "n".into(),
                schema: Schema::new(SchemaType::String),
            },
            Field {
                name: "f".into(),
                schema: Schema::new(SchemaType::Float64),
            },
        ]);
        let r = ConnectRecord::new(
            "t",
            Some(schema),
            Value::Struct(vec![
                ("n".into(), Value::String("42".into())),
                ("f".into(), Value::Float(2.9)),
            ]),
        );
        let c = Cast::new(Side::Value, &props(&[("spec", "n:int32,f:string")])).unwrap();
        let r = c.apply(r, &RecordContext::default()).unwrap().unwrap();
        assert_eq!(r.value.get("n"), Some(&Value::Int(42)));
        assert_eq!(r.value.get("f"), Some(&Value::String("2.9".into())));
        assert_eq!(
            r.value_schema
                .unwrap()
                .field("n")
                .unwrap()
                .schema
                .schema_type,
            SchemaType::Int32
        );
        let whole = Cast::new(Side::Value, &props(&[("spec", "int64")])).unwrap();
        let r = ConnectRecord::new("t", None, Value::Float(7.8));
        assert_eq!(
            whole
                .apply(r, &RecordContext::default())
                .unwrap()
                .unwrap()
                .value,
            Value::Int(7)
        );
        assert!(Cast::new(Side::Value, &props(&[("spec", "a:struct")])).is_err());
        let bad = ConnectRecord::new("t", None, Value::String("x".into()));
        assert!(whole.apply(bad, &RecordContext::default()).is_err());
    }

    #[test]
    fn timestamp_converter_between_unix_string_and_timestamp() {
        let to_string = TimestampConverter::new(
            Side::Value,
            &props(&[
                ("field", "ts"),
                ("target.type", "string"),
                ("format", "yyyy-MM-dd HH:mm"),
            ]),
        )
        .unwrap();
        let r = ConnectRecord::new(
            "t",
            None,
            Value::Map(vec![(
                Value::String("ts".into()),
                Value::Int(1_709_214_306_789),
            )]),
        );
        let r = to_string
            .apply(r, &RecordContext::default())
            .unwrap()
            .unwrap();
        assert_eq!(
            r.value.get("ts"),
            Some(&Value::String("2024-02-29 13:45".into()))
        );
        let back = TimestampConverter::new(
            Side::Value,
            &props(&[
                ("field", "ts"),
                ("target.type", "unix"),
                ("format", "yyyy-MM-dd HH:mm"),
                ("unix.precision", "seconds"),
            ]),
        )
        .unwrap();
        let r = back.apply(r, &RecordContext::default()).unwrap().unwrap();
        assert_eq!(r.value.get("ts"), Some(&Value::Int(1_709_214_300)));
        let ts =
            TimestampConverter::new(Side::Value, &props(&[("target.type", "Timestamp")])).unwrap();
        let r = ConnectRecord::new("t", Some(Schema::new(SchemaType::Int64)), Value::Int(5));
        let r = ts.apply(r, &RecordContext::default()).unwrap().unwrap();
        assert_eq!(
            r.value_schema.unwrap().name.as_deref(),
            Some(TIMESTAMP_LOGICAL)
        );
        assert!(
            TimestampConverter::new(Side::Value, &props(&[("target.type", "string")])).is_err()
        );
    }
}
