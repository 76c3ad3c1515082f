//! JSON Schema: a schema is a JSON object or a boolean. Compatibility follows
//! Confluent's rules: one diff from the writer's schema (the "original") to the
//! reader's (the "update"), reporting only what Confluent counts as incompatible.
//!
//! - `$ref`s within the schema (`#`, `#/definitions/..`, `#/$defs/..`, any JSON pointer)
//!   are followed on both sides; recursive schemas terminate.
//! - Types: the update must allow every type the original allows (`integer` may widen
//!   to `number`; `TYPE_NARROWED`/`TYPE_CHANGED`); `anyOf`/`oneOf` in the update may
//!   widen a type (`SUM_TYPE_EXTENDED`), removing an alternative is `SUM_TYPE_NARROWED`,
//!   adding an `allOf` member `PRODUCT_TYPE_EXTENDED`, `oneOf` → `anyOf` is fine.
//! - `enum`/`const`: values may be added, not removed (`ENUM_ARRAY_NARROWED`/`_CHANGED`).
//! - Objects, by content model: a property added to an *open* model
//!   (`additionalProperties` absent or `true`, no `patternProperties`) must have the
//!   empty schema (`PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL`); removing one from an open
//!   model is fine. A *closed* model (`additionalProperties: false`) may gain optional
//!   properties, or required ones with a `default`
//!   (`REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL`), and may not lose any
//!   (`PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL`). In a *partially open* model
//!   (`patternProperties` or an `additionalProperties` schema) an added or removed
//!   property must be compatible with the schema that covers it. An existing property
//!   may stop being required, not become so without a default
//!   (`REQUIRED_ATTRIBUTE_ADDED`); `additionalProperties` may open, not close or narrow.
//! - Constraints may loosen, not tighten or appear: `maxLength`, `minLength`,
//!   `pattern`, `maximum`, `minimum`, `exclusiveMaximum`, `exclusiveMinimum`,
//!   `multipleOf` (a divisor of the old one is fine), `maxProperties`, `minProperties`,
//!   `maxItems`, `minItems`, `uniqueItems`.
//! - Arrays: `items` compared recursively (a tuple by position, with `additionalItems`
//!   as its content model, as for properties); an `items` schema may go, not appear.
//!
//! Not checked: `dependencies`, `if`/`then`/`else`, `$ref`s to other documents (equal
//! ones pass), and a schema mixing a combinator with other keywords is compared by its
//! combinator.

mod constraints;

use std::collections::{BTreeSet, HashSet};

use serde_json::Value;

pub(super) fn parse(text: &str) -> Result<Value, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    match &v {
        Value::Object(_) | Value::Bool(_) => Ok(v),
        _ => Err("a JSON Schema must be an object or a boolean".to_string()),
    }
}

/// Reasons documents valid under `writer` may not be valid under `reader`.
pub(super) fn can_read(writer: &Value, reader: &Value) -> Vec<String> {
    let mut ctx = Ctx {
        old_root: writer,
        new_root: reader,
        seen: HashSet::new(),
        out: Vec::new(),
    };
    ctx.compare("#", Some(writer), Some(reader));
    ctx.out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Criterion {
    All,
    Any,
    One,
}

/// What a schema is, for comparing it with another.
enum Shape<'a> {
    False,
    /// `true`, or an object without any constraint.
    Empty,
    Enum(Vec<&'a Value>),
    Combined(Criterion, Vec<&'a Value>),
    Not(&'a Value),
    /// Types (given or implied by keywords), with the schema object for constraints.
    Typed(BTreeSet<&'static str>),
    /// A `$ref` this schema cannot follow (another document).
    Foreign(&'a str),
}

const TYPES: [&str; 7] = [
    "object", "array", "string", "number", "integer", "boolean", "null",
];

fn type_name(s: &str) -> Option<&'static str> {
    TYPES.iter().copied().find(|t| *t == s)
}

const OBJECT_KEYWORDS: [&str; 7] = [
    "properties",
    "required",
    "additionalProperties",
    "patternProperties",
    "maxProperties",
    "minProperties",
    "dependencies",
];
const ARRAY_KEYWORDS: [&str; 6] = [
    "items",
    "additionalItems",
    "maxItems",
    "minItems",
    "uniqueItems",
    "contains",
];
const STRING_KEYWORDS: [&str; 4] = ["maxLength", "minLength", "pattern", "format"];
const NUMBER_KEYWORDS: [&str; 5] = [
    "maximum",
    "minimum",
    "exclusiveMaximum",
    "exclusiveMinimum",
    "multipleOf",
];

fn shape(v: &Value) -> Shape<'_> {
    let m = match v {
        Value::Bool(false) => return Shape::False,
        Value::Object(m) => m,
        _ => return Shape::Empty,
    };
    if let Some(r) = m.get("$ref").and_then(Value::as_str) {
        return Shape::Foreign(r);
    }
    if let Some(values) = m.get("enum").and_then(Value::as_array) {
        return Shape::Enum(values.iter().collect());
    }
    if let Some(c) = m.get("const") {
        return Shape::Enum(vec![c]);
    }
    for (key, criterion) in [
        ("allOf", Criterion::All),
        ("anyOf", Criterion::Any),
        ("oneOf", Criterion::One),
    ] {
        if let Some(subs) = m.get(key).and_then(Value::as_array) {
            return Shape::Combined(criterion, subs.iter().collect());
        }
    }
    if let Some(n) = m.get("not") {
        return Shape::Not(n);
    }
    let mut types = BTreeSet::new();
    match m.get("type") {
        Some(Value::String(t)) => types.extend(type_name(t)),
        Some(Value::Array(ts)) => {
            types.extend(ts.iter().filter_map(Value::as_str).filter_map(type_name))
        }
        _ => {
            let has = |keys: &[&str]| keys.iter().any(|k| m.contains_key(*k));
            for (keys, t) in [
                (&OBJECT_KEYWORDS[..], "object"),
                (&ARRAY_KEYWORDS[..], "array"),
                (&STRING_KEYWORDS[..], "string"),
                (&NUMBER_KEYWORDS[..], "number"),
            ] {
                if has(keys) {
                    types.insert(t);
                }
            }
            if types.is_empty() {
                return Shape::Empty;
            }
        }
    }
    Shape::Typed(types)
}

/// Whether `types` allows values of type `t` (`number` includes `integer`).
fn allows(types: &BTreeSet<&str>, t: &str) -> bool {
    types.contains(t) || (t == "integer" && types.contains("number"))
}

struct Ctx<'a> {
    old_root: &'a Value,
    new_root: &'a Value,
    /// Pairs of `$ref`s being or already compared (recursive schemas).
    seen: HashSet<(String, String)>,
    out: Vec<String>,
}

/// Follows local `$ref`s (JSON pointers into `root`); the last ref followed, if any.
fn resolve<'a>(root: &'a Value, mut v: &'a Value) -> (&'a Value, Option<&'a str>) {
    let mut via = None;
    for _ in 0..32 {
        let Some(r) = v.get("$ref").and_then(Value::as_str) else {
            break;
        };
        let Some(pointer) = r.strip_prefix('#') else {
            break;
        };
        match root.pointer(pointer) {
            Some(target) => {
                via = Some(r);
                v = target;
            }
            None => break,
        }
    }
    (v, via)
}

impl<'a> Ctx<'a> {
    fn add(&mut self, kind: &str, path: &str) {
        self.out.push(format!("{kind} at '{path}'"));
    }

    /// Whether `o` → `n` is compatible, on its own: nothing is reported.
    fn compatible(&mut self, path: &str, o: &'a Value, n: &'a Value) -> bool {
        let out = std::mem::take(&mut self.out);
        let seen = self.seen.clone();
        self.compare(path, Some(o), Some(n));
        let ok = self.out.is_empty();
        self.out = out;
        self.seen = seen;
        ok
    }

    /// Diffs the schema at `path`; `None` is an absent (optional) subschema.
    fn compare(&mut self, path: &str, o: Option<&'a Value>, n: Option<&'a Value>) {
        let (o, n) = match (o, n) {
            // Absent on both sides, or removed (SCHEMA_REMOVED): fine.
            (_, None) => return,
            (None, Some(_)) => return self.add("SCHEMA_ADDED", path),
            (Some(o), Some(n)) => (o, n),
        };
        let (o, o_ref) = resolve(self.old_root, o);
        let (n, n_ref) = resolve(self.new_root, n);
        if o_ref.is_some() || n_ref.is_some() {
            let key = (
                o_ref.unwrap_or_default().to_string(),
                n_ref.unwrap_or_default().to_string(),
            );
            if !self.seen.insert(key) {
                return;
            }
        }
        let (so, sn) = (shape(o), shape(n));
        // A union on one side only: compatible if one of its members is.
        match (&so, &sn) {
            (Shape::Combined(..), Shape::Combined(..)) => {}
            (_, Shape::Combined(c, subs)) => {
                let sum = subs.len() == 1 || matches!(c, Criterion::Any | Criterion::One);
                if sum && subs.iter().any(|s| self.compatible(path, o, s)) {
                    return;
                }
            }
            (Shape::Combined(_, subs), _)
                if subs.len() == 1 && self.compatible(path, subs[0], n) =>
            {
                return;
            }
            _ => {}
        }
        match (so, sn) {
            (Shape::False, _) | (_, Shape::Empty) => {}
            (Shape::Typed(a), Shape::Typed(b)) => self.typed(path, o, n, &a, &b),
            (Shape::Enum(a), Shape::Enum(b)) => {
                if !a.iter().all(|v| b.contains(v)) {
                    let narrowed = b.iter().all(|v| a.contains(v));
                    let kind = if narrowed {
                        "ENUM_ARRAY_NARROWED"
                    } else {
                        "ENUM_ARRAY_CHANGED"
                    };
                    self.add(kind, &format!("{path}/enum"));
                }
            }
            (Shape::Combined(ca, a), Shape::Combined(cb, b)) => self.combined(path, ca, &a, cb, &b),
            (Shape::Not(a), Shape::Not(b)) => {
                // Reversed: the update may exclude less.
                if !self.compatible(&format!("{path}/not"), b, a) {
                    self.add("NOT_TYPE_EXTENDED", &format!("{path}/not"));
                }
            }
            (Shape::Foreign(a), Shape::Foreign(b)) if a == b => {}
            _ => self.add("TYPE_CHANGED", path),
        }
    }

    fn combined(
        &mut self,
        path: &str,
        ca: Criterion,
        a: &[&'a Value],
        cb: Criterion,
        b: &[&'a Value],
    ) {
        let p = |c: Criterion| match c {
            Criterion::All => "allOf",
            Criterion::Any => "anyOf",
            Criterion::One => "oneOf",
        };
        let sum = |c| matches!(c, Criterion::Any | Criterion::One);
        if ca != cb && !(ca == Criterion::One && cb == Criterion::Any) {
            return self.add("COMBINED_TYPE_CHANGED", &format!("{path}/{}", p(cb)));
        }
        let here = format!("{path}/{}", p(cb));
        if sum(cb) {
            // Every alternative of the original must be covered by one of the update.
            for (i, o) in a.iter().enumerate() {
                let sub = format!("{here}/{i}");
                if !b.iter().any(|n| self.compatible(&sub, o, n)) {
                    return self.add("SUM_TYPE_NARROWED", &here);
                }
            }
        } else {
            // Every member of the update must be implied by one of the original.
            for (i, n) in b.iter().enumerate() {
                let sub = format!("{here}/{i}");
                if !a.iter().any(|o| self.compatible(&sub, o, n)) {
                    return self.add("PRODUCT_TYPE_EXTENDED", &here);
                }
            }
        }
    }

    fn typed(
        &mut self,
        path: &str,
        o: &'a Value,
        n: &'a Value,
        a: &BTreeSet<&str>,
        b: &BTreeSet<&str>,
    ) {
        let lost: Vec<&&str> = a.iter().filter(|t| !allows(b, t)).collect();
        if !lost.is_empty() {
            let kind = if a.len() == 1 && b.len() == 1 {
                "TYPE_CHANGED"
            } else {
                "TYPE_NARROWED"
            };
            self.add(kind, &format!("{path}/type"));
        }
        let both = |t: &str| allows(a, t) && allows(b, t);
        if both("string") {
            constraints::string(self, path, o, n);
        }
        if both("integer") {
            constraints::number(self, path, o, n);
        }
        if both("object") {
            constraints::object(self, path, o, n);
        }
        if both("array") {
            constraints::array(self, path, o, n);
        }
    }
}

#[cfg(test)]
mod tests;
