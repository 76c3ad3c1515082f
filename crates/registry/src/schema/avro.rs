//! Avro: apache-avro parses and checks resolution (`SchemaCompatibility::can_read`).
//!
//! Named types from references are inlined into the schema's JSON at their first use
//! before the final parse, so the result is self-contained and keeps field defaults,
//! which the resolution rules need (the crate's canonical form would drop them).

use std::collections::{HashMap, HashSet};

use apache_avro::schema_compatibility::SchemaCompatibility;
use apache_avro::Schema;
use serde_json::Value;

pub(super) fn parse(text: &str, refs: &[String]) -> Result<Schema, String> {
    if refs.is_empty() {
        return Schema::parse_str(text).map_err(|e| e.to_string());
    }
    Schema::parse_str_with_list(text, refs).map_err(|e| e.to_string())?;
    let mut defs = HashMap::new();
    for r in refs {
        let v: Value = serde_json::from_str(r).map_err(|e| e.to_string())?;
        if let Some(name) = full_name(&v, None) {
            defs.insert(name, v);
        }
    }
    let mut v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    inline(&mut v, None, &defs, &mut HashSet::new());
    Schema::parse(&v).map_err(|e| e.to_string())
}

pub(super) fn can_read(writer: &Schema, reader: &Schema) -> Vec<String> {
    match SchemaCompatibility::can_read(writer, reader) {
        Ok(()) => Vec::new(),
        Err(e) => {
            let mut out = vec![e.to_string()];
            let mut cause = std::error::Error::source(&e);
            while let Some(c) = cause {
                out.push(c.to_string());
                cause = c.source();
            }
            vec![out.join(": ")]
        }
    }
}

/// The full name of a named type's JSON object (`namespace.name`).
fn full_name(v: &Value, enclosing: Option<&str>) -> Option<String> {
    let name = v.get("name")?.as_str()?;
    if name.contains('.') {
        return Some(name.to_string());
    }
    match v.get("namespace").and_then(Value::as_str).or(enclosing) {
        Some(ns) if !ns.is_empty() => Some(format!("{ns}.{name}")),
        _ => Some(name.to_string()),
    }
}

fn namespace_of(full: &str) -> Option<String> {
    full.rsplit_once('.').map(|(ns, _)| ns.to_string())
}

/// Replaces the first use of each referenced name with its definition.
fn inline(
    v: &mut Value,
    ns: Option<&str>,
    defs: &HashMap<String, Value>,
    done: &mut HashSet<String>,
) {
    match v {
        Value::String(s) => {
            let qualified = match ns {
                Some(ns) if !s.contains('.') => format!("{ns}.{s}"),
                _ => s.clone(),
            };
            let key = if defs.contains_key(&qualified) {
                qualified
            } else {
                s.clone()
            };
            if done.contains(&key) {
                return;
            }
            if let Some(def) = defs.get(&key) {
                done.insert(key.clone());
                let mut def = def.clone();
                let inner_ns = namespace_of(&key);
                inline(&mut def, inner_ns.as_deref(), defs, done);
                *v = def;
            }
        }
        Value::Array(items) => {
            for item in items {
                inline(item, ns, defs, done);
            }
        }
        Value::Object(map) => {
            let own = full_name(&Value::Object(map.clone()), ns);
            if let Some(own) = &own {
                done.insert(own.clone());
            }
            let inner_ns = own.as_deref().and_then(namespace_of);
            let inner_ns = inner_ns.as_deref().or(ns);
            let kind = map.get("type").and_then(Value::as_str).map(str::to_string);
            match kind.as_deref() {
                Some("record") | Some("error") => {
                    if let Some(Value::Array(fields)) = map.get_mut("fields") {
                        for f in fields {
                            if let Some(t) = f.get_mut("type") {
                                inline(t, inner_ns, defs, done);
                            }
                        }
                    }
                }
                Some("array") => {
                    if let Some(items) = map.get_mut("items") {
                        inline(items, inner_ns, defs, done);
                    }
                }
                Some("map") => {
                    if let Some(values) = map.get_mut("values") {
                        inline(values, inner_ns, defs, done);
                    }
                }
                _ => {
                    if let Some(t) = map.get_mut("type") {
                        inline(t, ns, defs, done);
                    }
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str =
        r#"{"type":"record","name":"User","fields":[{"name":"name","type":"string"}]}"#;
    const V2_DEFAULT: &str = r#"{"type":"record","name":"User","fields":[{"name":"name","type":"string"},{"name":"age","type":"int","default":0}]}"#;
    const V2_NO_DEFAULT: &str = r#"{"type":"record","name":"User","fields":[{"name":"name","type":"string"},{"name":"age","type":"int"}]}"#;

    fn p(s: &str) -> Schema {
        parse(s, &[]).unwrap()
    }

    #[test]
    fn added_field_with_default_reads_old_data() {
        assert!(can_read(&p(V1), &p(V2_DEFAULT)).is_empty());
        assert!(!can_read(&p(V1), &p(V2_NO_DEFAULT)).is_empty());
        // Forward: the old schema reads new data, ignoring the extra field.
        assert!(can_read(&p(V2_NO_DEFAULT), &p(V1)).is_empty());
    }

    #[test]
    fn references_are_inlined() {
        let addr = r#"{"type":"record","name":"Address","namespace":"x","fields":[{"name":"city","type":"string"}]}"#;
        let user = r#"{"type":"record","name":"User","namespace":"x","fields":[{"name":"home","type":"Address"},{"name":"work","type":"x.Address"}]}"#;
        let s = parse(user, &[addr.to_string()]).unwrap();
        assert!(s.canonical_form().contains("city"));
        assert!(parse(user, &[]).is_err());
    }
}
