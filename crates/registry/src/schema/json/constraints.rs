//! The per-type keywords of JSON Schema compatibility: bounds, and the content models
//! of objects (`properties`) and tuples (`items` as a list).

use serde_json::{Map, Value};

use super::{shape, Ctx, Shape};

fn num(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64)
}

/// An upper bound (`max*`): may grow or go, not appear or shrink.
fn upper(ctx: &mut Ctx<'_>, path: &str, o: &Value, n: &Value, key: &str, kind: &str) {
    match (num(o, key), num(n, key)) {
        (None, Some(_)) => ctx.add(&format!("{kind}_ADDED"), &format!("{path}/{key}")),
        (Some(a), Some(b)) if b < a => {
            ctx.add(&format!("{kind}_DECREASED"), &format!("{path}/{key}"));
        }
        _ => {}
    }
}

/// A lower bound (`min*`): may shrink or go, not appear or grow. `zero`: the value that
/// is no constraint at all (`minLength: 0`).
fn lower(ctx: &mut Ctx<'_>, path: &str, o: &Value, n: &Value, key: &str, kind: &str, zero: bool) {
    match (num(o, key), num(n, key)) {
        (None, Some(b)) if !(zero && b <= 0.0) => {
            ctx.add(&format!("{kind}_ADDED"), &format!("{path}/{key}"));
        }
        (Some(a), Some(b)) if b > a => {
            ctx.add(&format!("{kind}_INCREASED"), &format!("{path}/{key}"));
        }
        _ => {}
    }
}

pub(super) fn string(ctx: &mut Ctx<'_>, path: &str, o: &Value, n: &Value) {
    upper(ctx, path, o, n, "maxLength", "MAX_LENGTH");
    lower(ctx, path, o, n, "minLength", "MIN_LENGTH", true);
    match (o.get("pattern"), n.get("pattern")) {
        (None, Some(_)) => ctx.add("PATTERN_ADDED", &format!("{path}/pattern")),
        (Some(a), Some(b)) if a != b => ctx.add("PATTERN_CHANGED", &format!("{path}/pattern")),
        _ => {}
    }
}

pub(super) fn number(ctx: &mut Ctx<'_>, path: &str, o: &Value, n: &Value) {
    upper(ctx, path, o, n, "maximum", "MAXIMUM");
    lower(ctx, path, o, n, "minimum", "MINIMUM", false);
    upper(ctx, path, o, n, "exclusiveMaximum", "EXCLUSIVE_MAXIMUM");
    lower(
        ctx,
        path,
        o,
        n,
        "exclusiveMinimum",
        "EXCLUSIVE_MINIMUM",
        false,
    );
    let p = format!("{path}/multipleOf");
    match (num(o, "multipleOf"), num(n, "multipleOf")) {
        (None, Some(_)) => ctx.add("MULTIPLE_OF_ADDED", &p),
        (Some(a), Some(b)) if a != b => {
            let divides = |x: f64, y: f64| y != 0.0 && (x / y).fract() == 0.0;
            if divides(a, b) {
                // The new step divides the old one: every old value still fits.
            } else if divides(b, a) {
                ctx.add("MULTIPLE_OF_EXPANDED", &p);
            } else {
                ctx.add("MULTIPLE_OF_CHANGED", &p);
            }
        }
        _ => {}
    }
}

fn props(v: &Value) -> Option<&Map<String, Value>> {
    v.get("properties").and_then(Value::as_object)
}

fn required(v: &Value, name: &str) -> bool {
    v.get("required")
        .and_then(Value::as_array)
        .is_some_and(|r| r.iter().any(|x| x.as_str() == Some(name)))
}

fn has_default(v: Option<&Value>) -> bool {
    v.is_some_and(|v| v.get("default").is_some())
}

/// Whether extra members (`additionalProperties`/`additionalItems`) are allowed at all.
fn permits(v: &Value, key: &str) -> bool {
    v.get(key) != Some(&Value::Bool(false))
}

/// The schema extra members must match, if it constrains them.
fn extra_schema<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key)
        .filter(|s| !matches!(shape(s), Shape::Empty | Shape::False))
}

/// Open: any extra member with any value (Confluent's open content model).
fn open(v: &Value, key: &str) -> bool {
    let patterns = key == "additionalProperties"
        && v.get("patternProperties")
            .and_then(Value::as_object)
            .is_some_and(|p| !p.is_empty());
    !patterns && permits(v, key) && extra_schema(v, key).is_none()
}

/// In a partially open model, the schema a property named `name` must match.
fn covering<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    if let Some(patterns) = v.get("patternProperties").and_then(Value::as_object) {
        for (pattern, schema) in patterns {
            if regex::Regex::new(pattern).is_ok_and(|re| re.is_match(name)) {
                return Some(schema);
            }
        }
    }
    extra_schema(v, "additionalProperties")
}

pub(super) fn object<'a>(ctx: &mut Ctx<'a>, path: &str, o: &'a Value, n: &'a Value) {
    let (op, np) = (props(o), props(n));
    let in_new = |name: &str| np.and_then(|m| m.get(name));
    for name in op.into_iter().flat_map(Map::keys) {
        let newly = !required(o, name) && required(n, name);
        if newly && in_new(name).is_some() && !has_default(in_new(name)) {
            ctx.add(
                "REQUIRED_ATTRIBUTE_ADDED",
                &format!("{path}/required/{name}"),
            );
        }
    }
    for (name, a) in op.into_iter().flatten() {
        let p = format!("{path}/properties/{name}");
        match in_new(name) {
            Some(b) => ctx.compare(&p, Some(a), Some(b)),
            None if open(n, "additionalProperties") => {}
            None => match covering(n, name) {
                Some(s) => {
                    if !ctx.compatible(&p, a, s) {
                        ctx.add(
                            "PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
                            &p,
                        );
                    }
                }
                None if matches!(shape(a), Shape::False) => {}
                None => ctx.add("PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL", &p),
            },
        }
    }
    for (name, b) in np.into_iter().flatten() {
        if op.is_some_and(|m| m.contains_key(name)) {
            continue;
        }
        let p = format!("{path}/properties/{name}");
        if open(o, "additionalProperties") {
            if !matches!(shape(b), Shape::Empty) {
                ctx.add("PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL", &p);
            }
            continue;
        }
        if let Some(s) = covering(o, name) {
            if !ctx.compatible(&p, s, b) {
                ctx.add(
                    "PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
                    &p,
                );
            }
        }
        if required(n, name) && !has_default(Some(b)) {
            ctx.add("REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL", &p);
        }
    }
    extra(
        ctx,
        path,
        o,
        n,
        "additionalProperties",
        "ADDITIONAL_PROPERTIES",
    );
    upper(ctx, path, o, n, "maxProperties", "MAX_PROPERTIES");
    lower(ctx, path, o, n, "minProperties", "MIN_PROPERTIES", true);
}

/// `additionalProperties`/`additionalItems`: may open or widen, not close or narrow.
fn extra<'a>(ctx: &mut Ctx<'a>, path: &str, o: &'a Value, n: &'a Value, key: &str, kind: &str) {
    let p = format!("{path}/{key}");
    if permits(o, key) != permits(n, key) {
        if !permits(n, key) {
            ctx.add(&format!("{kind}_REMOVED"), &p);
        }
        return;
    }
    match (extra_schema(o, key), extra_schema(n, key)) {
        (None, Some(_)) if permits(n, key) => ctx.add(&format!("{kind}_NARROWED"), &p),
        (Some(a), Some(b)) => ctx.compare(&p, Some(a), Some(b)),
        _ => {}
    }
}

pub(super) fn array<'a>(ctx: &mut Ctx<'a>, path: &str, o: &'a Value, n: &'a Value) {
    let p = format!("{path}/items");
    match (o.get("items"), n.get("items")) {
        (Some(Value::Array(a)), Some(Value::Array(b))) => {
            tuple(ctx, &p, o, n, a, b);
            extra(ctx, path, o, n, "additionalItems", "ADDITIONAL_ITEMS");
        }
        (Some(Value::Array(_)), Some(_)) | (Some(_), Some(Value::Array(_))) => {
            ctx.add("TYPE_CHANGED", &p);
        }
        (a, b) => ctx.compare(&p, a, b),
    }
    upper(ctx, path, o, n, "maxItems", "MAX_ITEMS");
    lower(ctx, path, o, n, "minItems", "MIN_ITEMS", true);
    let unique = |v: &Value| v.get("uniqueItems") == Some(&Value::Bool(true));
    if !unique(o) && unique(n) {
        ctx.add("UNIQUE_ITEMS_ADDED", &format!("{path}/uniqueItems"));
    }
}

/// Tuple items by position; `additionalItems` is the content model.
fn tuple<'a>(
    ctx: &mut Ctx<'a>,
    path: &str,
    o: &'a Value,
    n: &'a Value,
    a: &'a [Value],
    b: &'a [Value],
) {
    for i in 0..a.len().max(b.len()) {
        let p = format!("{path}/{i}");
        match (a.get(i), b.get(i)) {
            (Some(x), Some(y)) => ctx.compare(&p, Some(x), Some(y)),
            (Some(x), None) => {
                if open(n, "additionalItems") {
                    continue;
                }
                match extra_schema(n, "additionalItems") {
                    Some(s) if !ctx.compatible(&p, x, s) => {
                        ctx.add(
                            "ITEM_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
                            &p,
                        );
                    }
                    Some(_) => {}
                    None if matches!(shape(x), Shape::False) => {}
                    None => ctx.add("ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL", &p),
                }
            }
            (None, Some(y)) => {
                if open(o, "additionalItems") {
                    if !matches!(shape(y), Shape::Empty) {
                        ctx.add("ITEM_ADDED_TO_OPEN_CONTENT_MODEL", &p);
                    }
                } else if let Some(s) = extra_schema(o, "additionalItems") {
                    if !ctx.compatible(&p, s, y) {
                        ctx.add("ITEM_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL", &p);
                    }
                }
            }
            (None, None) => {}
        }
    }
}
