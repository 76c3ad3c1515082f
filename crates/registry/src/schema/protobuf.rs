//! Protobuf (partial): a schema is checked for balanced braces and at least one
//! definition, then reduced to its fields: (message path, field number) → type. The
//! only compatibility rule applied is Protobuf's wire rule for a field number present
//! on both sides: its type must stay wire-compatible (the varint integers and bool
//! together, `sint32`/`sint64`, the 32- and 64-bit fixed types, `string`/`bytes`,
//! otherwise the same type name). Removed messages, `oneof` moves, imports and
//! options are not checked, and imports are not resolved.

use std::collections::BTreeMap;

/// A parsed `.proto`: every field by (message path, number) → (type, name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proto {
    pub fields: BTreeMap<(String, i64), (String, String)>,
}

pub(super) fn parse(text: &str) -> Result<Proto, String> {
    let tokens = tokenize(text);
    let mut depth: i64 = 0;
    for t in &tokens {
        match t.as_str() {
            "{" => depth += 1,
            "}" => {
                depth -= 1;
                if depth < 0 {
                    return Err("unbalanced '}'".to_string());
                }
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err("unbalanced '{'".to_string());
    }
    let has_definition = tokens
        .iter()
        .any(|w| matches!(w.as_str(), "message" | "enum" | "service" | "syntax"));
    if !has_definition {
        return Err("no message, enum, service or syntax declaration".to_string());
    }
    Ok(Proto {
        fields: fields(&tokens),
    })
}

pub(super) fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Reasons data written with `writer` cannot be read with `reader`.
pub(super) fn can_read(writer: &Proto, reader: &Proto) -> Vec<String> {
    let mut out = Vec::new();
    for (key, (w_type, w_name)) in &writer.fields {
        if let Some((r_type, _)) = reader.fields.get(key) {
            if !wire_compatible(w_type, r_type) {
                out.push(format!(
                    "{}: field {} ({w_name}) changed type from {w_type} to {r_type}",
                    key.0, key.1
                ));
            }
        }
    }
    out
}

fn wire_compatible(a: &str, b: &str) -> bool {
    const GROUPS: [&[&str]; 5] = [
        &["int32", "uint32", "int64", "uint64", "bool"],
        &["sint32", "sint64"],
        &["fixed32", "sfixed32"],
        &["fixed64", "sfixed64"],
        &["string", "bytes"],
    ];
    let last = |t: &str| t.rsplit('.').next().unwrap_or(t).to_string();
    a == b || last(a) == last(b) || GROUPS.iter().any(|g| g.contains(&a) && g.contains(&b))
}

/// Words, numbers and single punctuation marks, comments and strings dropped.
fn tokenize(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut Vec<String>| {
        if !word.is_empty() {
            out.push(std::mem::take(word));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                flush(&mut word, &mut out);
                for n in chars.by_ref() {
                    if n == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                flush(&mut word, &mut out);
                let mut prev = ' ';
                for n in chars.by_ref() {
                    if prev == '*' && n == '/' {
                        break;
                    }
                    prev = n;
                }
            }
            '"' | '\'' => {
                flush(&mut word, &mut out);
                for n in chars.by_ref() {
                    if n == c {
                        break;
                    }
                }
                out.push("\"\"".to_string());
            }
            c if c.is_alphanumeric() || c == '_' || c == '.' || c == '-' => word.push(c),
            c if c.is_whitespace() => flush(&mut word, &mut out),
            c => {
                flush(&mut word, &mut out);
                out.push(c.to_string());
            }
        }
    }
    flush(&mut word, &mut out);
    out
}

/// Walks the blocks, recording `TYPE NAME = NUMBER` inside messages (and their
/// `oneof`s); enums, services and options are skipped.
fn fields(tokens: &[String]) -> BTreeMap<(String, i64), (String, String)> {
    let mut out = BTreeMap::new();
    // (kind, name) of each open block.
    let mut blocks: Vec<(String, String)> = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let t = tokens[i].as_str();
        match t {
            "{" => {
                let kind = if i >= 2 {
                    tokens[i - 2].clone()
                } else {
                    String::new()
                };
                let name = if i >= 1 {
                    tokens[i - 1].clone()
                } else {
                    String::new()
                };
                blocks.push((kind, name));
            }
            "}" => {
                blocks.pop();
            }
            "=" if i >= 2 && i + 1 < tokens.len() => {
                let in_message = blocks
                    .last()
                    .is_some_and(|(k, _)| k == "message" || k == "oneof");
                let number = tokens[i + 1].parse::<i64>();
                let name = &tokens[i - 1];
                let identifier = name
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_alphabetic() || c == '_');
                let ty = field_type(tokens, i - 1).filter(|_| identifier);
                if let (true, Ok(number), Some(ty)) = (in_message, number, ty) {
                    let path: Vec<&str> = blocks
                        .iter()
                        .filter(|(k, _)| k == "message")
                        .map(|(_, n)| n.as_str())
                        .collect();
                    out.insert((path.join("."), number), (ty, name.clone()));
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// The type written before the field name at `name_at`, if this is a field.
fn field_type(tokens: &[String], name_at: usize) -> Option<String> {
    let before = tokens.get(name_at.checked_sub(1)?)?;
    if before == ">" {
        // map<K, V>: from `map` to the closing `>`.
        let start = (0..name_at).rev().find(|&j| tokens[j] == "map")?;
        return Some(tokens[start..name_at].concat());
    }
    match before.as_str() {
        "option" | ";" | "{" | "}" | "(" | ")" | "," | "[" => None,
        t if t
            .chars()
            .next()
            .is_some_and(|c| c.is_alphabetic() || c == '.') =>
        {
            Some(t.to_string())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_sanity() {
        assert!(parse("syntax = \"proto3\"; message A { int32 x = 1; }").is_ok());
        assert!(parse("message A { int32 x = 1;").is_err());
        assert!(parse("hello").is_err());
    }

    #[test]
    fn fields_and_wire_compatibility() {
        let v1 = parse(
            r#"syntax = "proto3";
            // a comment with = 7
            message A { int32 x = 1; string s = 2 [deprecated = true];
              message B { map<string, int64> m = 1; }
              oneof o { bytes y = 3; }
              option (foo) = 5; }
            enum E { ZERO = 0; }"#,
        )
        .unwrap();
        assert_eq!(v1.fields.len(), 4, "{:?}", v1.fields);
        assert_eq!(
            v1.fields.get(&("A.B".to_string(), 1)).map(|f| f.0.as_str()),
            Some("map<string,int64>")
        );
        let v2 = parse(r#"message A { int64 x = 1; bytes s = 2; }"#).unwrap();
        assert!(can_read(&v1, &v2).is_empty());
        let v3 = parse(r#"message A { double x = 1; }"#).unwrap();
        assert_eq!(can_read(&v1, &v3).len(), 1);
    }
}
