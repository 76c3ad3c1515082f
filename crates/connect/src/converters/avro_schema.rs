//! Connect schema <-> Avro schema (JSON), as Confluent's `AvroData` maps them.

use std::collections::{HashMap, HashSet};

use gregor_connect_api::data::{DATE_LOGICAL, TIMESTAMP_LOGICAL, TIME_LOGICAL};
use gregor_connect_api::{ConnectError, Field, Schema, SchemaType as T};
use serde_json::{json, Map, Value as J};

/// Kafka Connect's `Decimal` logical type (bytes: the unscaled two's-complement value;
/// parameter `scale`).
pub const DECIMAL_LOGICAL: &str = "org.apache.kafka.connect.data.Decimal";
/// The namespace of the records Confluent names (defaults, map entries).
pub const NAMESPACE: &str = "io.confluent.connect.avro";
const DEFAULT_NAME: &str = "ConnectDefault";
const MAP_ENTRY: &str = "MapEntry";

/// The Avro schema of a Connect schema.
pub fn to_avro_schema(schema: &Schema) -> Result<J, ConnectError> {
    ToAvro::default().schema(schema)
}

#[derive(Default)]
struct ToAvro {
    /// Named types already written: a second use refers to them by name.
    defined: HashSet<String>,
    /// Unnamed structs so far (`ConnectDefault`, `ConnectDefault2`, ...).
    unnamed: u32,
}

impl ToAvro {
    fn schema(&mut self, s: &Schema) -> Result<J, ConnectError> {
        let base = self.base(s)?;
        Ok(if s.optional {
            json!(["null", base])
        } else {
            base
        })
    }

    fn base(&mut self, s: &Schema) -> Result<J, ConnectError> {
        let mut props = Map::new();
        let mut base = match s.schema_type {
            T::Int8 | T::Int16 => {
                props.insert("connect.type".into(), json!(s.schema_type.name()));
                json!("int")
            }
            T::Int32 => json!("int"),
            T::Int64 => json!("long"),
            T::Float32 => json!("float"),
            T::Float64 => json!("double"),
            T::Boolean => json!("boolean"),
            T::String => json!("string"),
            T::Bytes => json!("bytes"),
            T::Array => {
                let items = self.schema(child(&s.value_schema)?)?;
                json!({"type": "array", "items": items})
            }
            T::Map => {
                let key = child(&s.key_schema)?;
                let value = child(&s.value_schema)?;
                if key.schema_type == T::String && !key.optional {
                    json!({"type": "map", "values": self.schema(value)?})
                } else {
                    let full = format!("{NAMESPACE}.{MAP_ENTRY}");
                    let items = if self.defined.insert(full.clone()) {
                        json!({"type": "record", "name": MAP_ENTRY, "namespace": NAMESPACE,
                               "fields": [self.field("key", key)?, self.field("value", value)?]})
                    } else {
                        J::String(full)
                    };
                    json!({"type": "array", "items": items})
                }
            }
            T::Struct => {
                let full = match &s.name {
                    Some(n) => n.clone(),
                    None => {
                        self.unnamed += 1;
                        match self.unnamed {
                            1 => format!("{NAMESPACE}.{DEFAULT_NAME}"),
                            n => format!("{NAMESPACE}.{DEFAULT_NAME}{n}"),
                        }
                    }
                };
                if !self.defined.insert(full.clone()) {
                    return Ok(J::String(full));
                }
                let (namespace, name) = match full.rsplit_once('.') {
                    Some((ns, n)) => (Some(ns), n),
                    None => (None, full.as_str()),
                };
                let fields = s
                    .fields
                    .iter()
                    .map(|f| self.field(&f.name, &f.schema))
                    .collect::<Result<Vec<_>, _>>()?;
                let mut r = json!({"type": "record", "name": name, "fields": fields});
                if let Some(ns) = namespace {
                    r["namespace"] = json!(ns);
                }
                r
            }
        };
        if let Some(d) = &s.doc {
            props.insert("connect.doc".into(), json!(d));
        }
        if let Some(v) = s.version {
            props.insert("connect.version".into(), json!(v));
        }
        if !s.parameters.is_empty() {
            props.insert("connect.parameters".into(), json!(s.parameters));
        }
        if let Some(n) = &s.name {
            props.insert("connect.name".into(), json!(n));
            let logical = match n.as_str() {
                DECIMAL_LOGICAL => {
                    let scale: i64 = s
                        .parameters
                        .get("scale")
                        .and_then(|x| x.parse().ok())
                        .ok_or_else(|| {
                            ConnectError::Data("Decimal schema without a scale".into())
                        })?;
                    let precision: i64 = s
                        .parameters
                        .get("connect.decimal.precision")
                        .and_then(|x| x.parse().ok())
                        .unwrap_or(38);
                    props.insert("scale".into(), json!(scale));
                    props.insert("precision".into(), json!(precision));
                    Some("decimal")
                }
                DATE_LOGICAL => Some("date"),
                TIME_LOGICAL => Some("time-millis"),
                TIMESTAMP_LOGICAL => Some("timestamp-millis"),
                _ => None,
            };
            if let Some(l) = logical {
                props.insert("logicalType".into(), json!(l));
            }
        }
        if props.is_empty() {
            return Ok(base);
        }
        if let J::String(t) = base {
            base = json!({ "type": t });
        }
        if let J::Object(o) = &mut base {
            o.extend(props);
        }
        Ok(base)
    }

    fn field(&mut self, name: &str, s: &Schema) -> Result<J, ConnectError> {
        let mut f = json!({"name": name, "type": self.schema(s)?});
        if s.optional {
            f["default"] = J::Null;
        }
        Ok(f)
    }
}

fn child(s: &Option<Box<Schema>>) -> Result<&Schema, ConnectError> {
    s.as_deref()
        .ok_or_else(|| ConnectError::Data("array or map schema without its element schema".into()))
}

/// The Connect schema of an Avro schema (JSON).
pub fn from_avro_schema(j: &J) -> Result<Schema, ConnectError> {
    FromAvro::default().schema(j, None)
}

#[derive(Default)]
struct FromAvro {
    /// Named types seen so far, by full name.
    names: HashMap<String, Schema>,
}

const PRIMITIVES: &[&str] = &[
    "null", "boolean", "int", "long", "float", "double", "bytes", "string",
];

impl FromAvro {
    fn schema(&mut self, j: &J, ns: Option<&str>) -> Result<Schema, ConnectError> {
        let bad = |why: String| ConnectError::Data(format!("Unsupported Avro schema: {why}"));
        match j {
            J::String(t) if PRIMITIVES.contains(&t.as_str()) => {
                self.object(&json!({"type": t}), ns)
            }
            J::String(name) => {
                let full = if name.contains('.') {
                    name.clone()
                } else {
                    ns.map_or_else(|| name.clone(), |ns| format!("{ns}.{name}"))
                };
                self.names
                    .get(&full)
                    .or_else(|| self.names.get(name))
                    .cloned()
                    .ok_or_else(|| bad(format!("unknown type {name}")))
            }
            J::Array(branches) => {
                let others: Vec<&J> = branches
                    .iter()
                    .filter(|b| b.as_str() != Some("null"))
                    .collect();
                match others.as_slice() {
                    [one] if branches.len() <= 2 => {
                        let s = self.schema(one, ns)?;
                        Ok(if branches.len() == 2 { s.optional() } else { s })
                    }
                    _ => Err(bad(format!("union {j} (only [\"null\", T] is supported)"))),
                }
            }
            J::Object(_) => self.object(j, ns),
            _ => Err(bad(j.to_string())),
        }
    }

    fn object(&mut self, j: &J, ns: Option<&str>) -> Result<Schema, ConnectError> {
        let bad = |why: String| ConnectError::Data(format!("Unsupported Avro schema: {why}"));
        let t = match j.get("type") {
            Some(J::String(t)) => t.as_str(),
            Some(nested) => return self.schema(nested, ns),
            None => return Err(bad(format!("no type in {j}"))),
        };
        let own_ns = j.get("namespace").and_then(J::as_str).or(ns);
        let full_name = || {
            let name = j.get("name").and_then(J::as_str).unwrap_or_default();
            match own_ns {
                Some(ns) if !name.contains('.') && !ns.is_empty() => format!("{ns}.{name}"),
                _ => name.to_string(),
            }
        };
        let mut s = match t {
            "boolean" => Schema::new(T::Boolean),
            "int" => Schema::new(match j.get("connect.type").and_then(J::as_str) {
                Some("int8") => T::Int8,
                Some("int16") => T::Int16,
                _ => T::Int32,
            }),
            "long" => Schema::new(T::Int64),
            "float" => Schema::new(T::Float32),
            "double" => Schema::new(T::Float64),
            "bytes" => Schema::new(T::Bytes),
            "string" => Schema::new(T::String),
            "null" => return Err(bad("a null type outside a union".into())),
            "record" | "error" => {
                let full = full_name();
                let record_ns = full.rsplit_once('.').map(|(ns, _)| ns.to_string());
                let mut fields = Vec::new();
                for f in j.get("fields").and_then(J::as_array).into_iter().flatten() {
                    let name = f
                        .get("name")
                        .and_then(J::as_str)
                        .ok_or_else(|| bad(format!("field without a name in {j}")))?;
                    let ft = f
                        .get("type")
                        .ok_or_else(|| bad(format!("field {name} without a type")))?;
                    fields.push(Field {
                        name: name.to_string(),
                        schema: self.schema(ft, record_ns.as_deref())?,
                    });
                }
                let mut s = Schema::structure(fields);
                if !full.starts_with(&format!("{NAMESPACE}.{DEFAULT_NAME}")) {
                    s.name = Some(full.clone());
                }
                if full == format!("{NAMESPACE}.{MAP_ENTRY}") {
                    s.name = None;
                }
                s
            }
            "enum" => {
                let mut s = Schema::new(T::String);
                let full = full_name();
                s.parameters
                    .insert(format!("{NAMESPACE}.Enum"), full.clone());
                for sym in j.get("symbols").and_then(J::as_array).into_iter().flatten() {
                    if let Some(sym) = sym.as_str() {
                        s.parameters
                            .insert(format!("{NAMESPACE}.Enum.{sym}"), sym.to_string());
                    }
                }
                s
            }
            "fixed" => {
                let mut s = Schema::new(T::Bytes);
                if let Some(size) = j.get("size").and_then(J::as_u64) {
                    s.parameters
                        .insert("connect.fixed.size".into(), size.to_string());
                }
                s
            }
            "array" => {
                let items = self.schema(
                    j.get("items")
                        .ok_or_else(|| bad("array without items".into()))?,
                    own_ns,
                )?;
                let is_entry = items.schema_type == T::Struct
                    && items.name.is_none()
                    && items.fields.len() == 2
                    && items.fields[0].name == "key"
                    && items.fields[1].name == "value"
                    && j.get("items")
                        .and_then(|i| i.get("name"))
                        .and_then(J::as_str)
                        == Some(MAP_ENTRY);
                let mut s = Schema::new(if is_entry { T::Map } else { T::Array });
                if is_entry {
                    s.key_schema = Some(Box::new(items.fields[0].schema.clone()));
                    s.value_schema = Some(Box::new(items.fields[1].schema.clone()));
                } else {
                    s.value_schema = Some(Box::new(items));
                }
                s
            }
            "map" => {
                let values = self.schema(
                    j.get("values")
                        .ok_or_else(|| bad("map without values".into()))?,
                    own_ns,
                )?;
                let mut s = Schema::new(T::Map);
                s.key_schema = Some(Box::new(Schema::new(T::String)));
                s.value_schema = Some(Box::new(values));
                s
            }
            other => return self.schema(&J::String(other.to_string()), ns),
        };
        match j.get("logicalType").and_then(J::as_str) {
            Some("date") if s.schema_type == T::Int32 => logical(&mut s, DATE_LOGICAL),
            Some("time-millis") if s.schema_type == T::Int32 => logical(&mut s, TIME_LOGICAL),
            Some("timestamp-millis") if s.schema_type == T::Int64 => {
                logical(&mut s, TIMESTAMP_LOGICAL)
            }
            Some("decimal") if s.schema_type == T::Bytes => {
                logical(&mut s, DECIMAL_LOGICAL);
                let scale = j.get("scale").and_then(J::as_i64).unwrap_or(0);
                s.parameters.insert("scale".into(), scale.to_string());
                if let Some(p) = j.get("precision").and_then(J::as_i64) {
                    s.parameters
                        .insert("connect.decimal.precision".into(), p.to_string());
                }
            }
            _ => {}
        }
        if let Some(d) = j.get("connect.doc").and_then(J::as_str) {
            s.doc = Some(d.to_string());
        }
        if let Some(v) = j.get("connect.version").and_then(J::as_i64) {
            s.version = i32::try_from(v).ok();
        }
        if let Some(J::Object(params)) = j.get("connect.parameters") {
            for (k, v) in params {
                s.parameters.insert(
                    k.clone(),
                    v.as_str().map_or_else(|| v.to_string(), str::to_string),
                );
            }
        }
        if let Some(n) = j.get("connect.name").and_then(J::as_str) {
            s.name = Some(n.to_string());
        }
        if matches!(t, "record" | "error" | "enum" | "fixed") {
            self.names.insert(full_name(), s.clone());
        }
        Ok(s)
    }
}

fn logical(s: &mut Schema, name: &str) {
    s.name = Some(name.to_string());
    s.version = Some(1);
}
