//! JSON Schema: a schema is a JSON object or a boolean. Compatibility is a structural
//! subset of Confluent's rules (partial): types may only widen, required properties may
//! not be added, enums may not lose values, a closed content model
//! (`additionalProperties: false`) may not drop a property, recursively through
//! `properties` and `items`. Combinators (`oneOf`, `allOf`, ...), `$ref` and
//! open-content-model property additions are not checked.

use std::collections::BTreeSet;

use serde_json::Value;

pub(super) fn parse(text: &str) -> Result<Value, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    match &v {
        Value::Object(_) | Value::Bool(_) => Ok(v),
        _ => Err("a JSON Schema must be an object or a boolean".to_string()),
    }
}

/// Whether every document valid under `writer` is valid under `reader`, approximately.
pub(super) fn can_read(writer: &Value, reader: &Value) -> Vec<String> {
    let mut out = Vec::new();
    check(writer, reader, "#", &mut out);
    out
}

fn types(v: &Value) -> Option<BTreeSet<String>> {
    match v.get("type")? {
        Value::String(s) => Some(BTreeSet::from([s.clone()])),
        Value::Array(a) => Some(
            a.iter()
                .filter_map(|t| t.as_str().map(String::from))
                .collect(),
        ),
        _ => None,
    }
}

fn required(v: &Value) -> BTreeSet<String> {
    v.get("required")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn closed(v: &Value) -> bool {
    v.get("additionalProperties") == Some(&Value::Bool(false))
}

fn check(writer: &Value, reader: &Value, path: &str, out: &mut Vec<String>) {
    match (writer, reader) {
        (_, Value::Bool(true)) | (Value::Bool(false), _) => return,
        (_, Value::Bool(false)) => {
            out.push(format!("{path}: the reader accepts nothing"));
            return;
        }
        (Value::Bool(true), r) if r.as_object().is_some_and(|m| !m.is_empty()) => {
            out.push(format!(
                "{path}: the reader constrains what the writer left open"
            ));
            return;
        }
        _ => {}
    }
    match (types(writer), types(reader)) {
        (Some(w), Some(r)) => {
            for t in &w {
                let widened = t == "integer" && r.contains("number");
                if !r.contains(t) && !widened {
                    out.push(format!("{path}: type '{t}' is no longer allowed"));
                }
            }
        }
        (None, Some(_)) => out.push(format!("{path}: a type constraint was added")),
        _ => {}
    }
    for name in required(reader).difference(&required(writer)) {
        out.push(format!("{path}: required property '{name}' was added"));
    }
    if let Some(r_enum) = reader.get("enum").and_then(Value::as_array) {
        match writer.get("enum").and_then(Value::as_array) {
            Some(w_enum) => {
                for v in w_enum {
                    if !r_enum.contains(v) {
                        out.push(format!("{path}: enum value {v} was removed"));
                    }
                }
            }
            None => out.push(format!("{path}: an enum constraint was added")),
        }
    }
    let w_props = writer.get("properties").and_then(Value::as_object);
    let r_props = reader.get("properties").and_then(Value::as_object);
    if let Some(w_props) = w_props {
        for (name, w) in w_props {
            match r_props.and_then(|r| r.get(name)) {
                Some(r) => check(w, r, &format!("{path}/properties/{name}"), out),
                None if closed(reader) => out.push(format!(
                    "{path}: property '{name}' was removed from a closed content model"
                )),
                None => {}
            }
        }
    }
    if let (Some(w), Some(r)) = (writer.get("items"), reader.get("items")) {
        check(w, r, &format!("{path}/items"), out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_objects_and_booleans_are_schemas() {
        assert!(parse("{}").is_ok());
        assert!(parse("true").is_ok());
        assert!(parse("[1]").is_err());
        assert!(parse("{").is_err());
    }

    #[test]
    fn required_additions_and_type_changes_are_incompatible() {
        let v1 = json!({"type":"object","properties":{"a":{"type":"string"}}});
        let v2 = json!({"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}},"required":["b"]});
        assert!(can_read(&v1, &v1).is_empty());
        assert_eq!(can_read(&v1, &v2).len(), 1);
        assert!(can_read(&v2, &v1).is_empty());
        let v3 = json!({"type":"object","properties":{"a":{"type":"integer"}}});
        assert_eq!(can_read(&v1, &v3).len(), 1);
        let int = json!({"type":"integer"});
        let num = json!({"type":"number"});
        assert!(can_read(&int, &num).is_empty());
        assert!(!can_read(&num, &int).is_empty());
    }
}
