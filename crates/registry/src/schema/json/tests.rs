use super::*;
use serde_json::json;

/// The kinds of the differences for BACKWARD (old written, new reads).
fn backward(old: Value, new: Value) -> Vec<String> {
    can_read(&old, &new)
        .into_iter()
        .map(|d| d.split(' ').next().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn only_objects_and_booleans_are_schemas() {
    assert!(parse("{}").is_ok());
    assert!(parse("true").is_ok());
    assert!(parse("[1]").is_err());
    assert!(parse("{").is_err());
}

#[test]
fn types_widen_not_narrow() {
    let int = json!({"type": "integer"});
    let num = json!({"type": "number"});
    assert!(backward(int.clone(), num.clone()).is_empty());
    assert_eq!(backward(num.clone(), int.clone()), ["TYPE_CHANGED"]);
    assert_eq!(
        backward(json!({"type": "string"}), int.clone()),
        ["TYPE_CHANGED"]
    );
    let nullable = json!({"type": ["string", "null"]});
    assert!(backward(json!({"type": "string"}), nullable.clone()).is_empty());
    assert_eq!(
        backward(nullable, json!({"type": "string"})),
        ["TYPE_NARROWED"]
    );
    // A union in the update that covers the old type.
    let any = json!({"anyOf": [{"type": "string"}, {"type": "integer"}]});
    assert!(backward(json!({"type": "integer"}), any.clone()).is_empty());
    assert_eq!(
        backward(any.clone(), json!({"anyOf": [{"type": "string"}]})),
        ["SUM_TYPE_NARROWED"]
    );
    let one = json!({"oneOf": [{"type": "string"}, {"type": "integer"}]});
    assert!(backward(one.clone(), any.clone()).is_empty());
    assert_eq!(backward(any, one), ["COMBINED_TYPE_CHANGED"]);
    // true accepts everything; false nothing.
    assert!(backward(json!({"type": "string"}), json!(true)).is_empty());
    assert!(backward(json!(false), json!({"type": "string"})).is_empty());
    assert_eq!(
        backward(json!(true), json!({"type": "string"})),
        ["TYPE_CHANGED"]
    );
}

#[test]
fn enums_may_grow() {
    let ab = json!({"enum": ["a", "b"]});
    let abc = json!({"enum": ["a", "b", "c"]});
    assert!(backward(ab.clone(), abc.clone()).is_empty());
    assert_eq!(backward(abc, ab.clone()), ["ENUM_ARRAY_NARROWED"]);
    assert_eq!(
        backward(ab, json!({"enum": ["a", "x"]})),
        ["ENUM_ARRAY_CHANGED"]
    );
}

#[test]
fn open_content_model() {
    let v1 = json!({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}});
    // Removing a property from an open model is fine: old data with it still validates.
    let removed = json!({"type": "object", "properties": {"a": {"type": "string"}}});
    assert!(backward(v1.clone(), removed.clone()).is_empty());
    // Adding one is not (old data may carry it with any value), unless it is unconstrained.
    assert_eq!(
        backward(removed.clone(), v1.clone()),
        ["PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL"]
    );
    let added_empty = json!({"type": "object", "properties": {"a": {"type": "string"}, "c": {}}});
    assert!(backward(removed, added_empty).is_empty());
    // Required: may be dropped, not added without a default.
    let req = json!({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}, "required": ["b"]});
    assert_eq!(
        backward(v1.clone(), req.clone()),
        ["REQUIRED_ATTRIBUTE_ADDED"]
    );
    assert!(backward(req, v1.clone()).is_empty());
    let req_default = json!({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer", "default": 0}}, "required": ["b"]});
    assert!(backward(v1.clone(), req_default).is_empty());
    // A property's type change is found recursively.
    let changed = json!({"type": "object", "properties": {"a": {"type": "boolean"}, "b": {"type": "integer"}}});
    assert_eq!(backward(v1, changed), ["TYPE_CHANGED"]);
}

#[test]
fn closed_and_partially_open_content_models() {
    let closed = json!({"type": "object", "additionalProperties": false, "properties": {"a": {"type": "string"}}});
    let plus_b = json!({"type": "object", "additionalProperties": false, "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}});
    assert!(backward(closed.clone(), plus_b.clone()).is_empty());
    assert_eq!(
        backward(plus_b.clone(), closed.clone()),
        ["PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL"]
    );
    let plus_required_b = json!({"type": "object", "additionalProperties": false, "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}, "required": ["b"]});
    assert_eq!(
        backward(closed.clone(), plus_required_b),
        ["REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL"]
    );
    // Closing an open model is incompatible; opening a closed one is fine.
    let open = json!({"type": "object", "properties": {"a": {"type": "string"}}});
    assert_eq!(
        backward(open.clone(), closed.clone()),
        ["ADDITIONAL_PROPERTIES_REMOVED"]
    );
    assert!(backward(closed, open).is_empty());
    // Partially open: extra properties must be integers.
    let partial = json!({"type": "object", "additionalProperties": {"type": "integer"}, "properties": {"a": {"type": "string"}}});
    let with_int = json!({"type": "object", "additionalProperties": {"type": "integer"}, "properties": {"a": {"type": "string"}, "n": {"type": "integer"}}});
    let with_str = json!({"type": "object", "additionalProperties": {"type": "integer"}, "properties": {"a": {"type": "string"}, "s": {"type": "string"}}});
    assert!(backward(partial.clone(), with_int.clone()).is_empty());
    assert!(backward(with_int, partial.clone()).is_empty());
    assert_eq!(
        backward(partial.clone(), with_str.clone()),
        ["PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"]
    );
    assert_eq!(
        backward(with_str, partial),
        ["PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"]
    );
    let patterns = json!({"type": "object", "patternProperties": {"^n_": {"type": "number"}}, "additionalProperties": false});
    let n_x = json!({"type": "object", "patternProperties": {"^n_": {"type": "number"}}, "additionalProperties": false, "properties": {"n_x": {"type": "number", "description": "x"}}});
    assert!(backward(patterns.clone(), n_x).is_empty());
    // Old data may hold n_x = 1.5: an integer-only n_x is not covered.
    let n_int = json!({"type": "object", "patternProperties": {"^n_": {"type": "number"}}, "additionalProperties": false, "properties": {"n_x": {"type": "integer"}}});
    assert_eq!(
        backward(patterns, n_int),
        ["PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"]
    );
}

#[test]
fn bounds_may_loosen_not_tighten() {
    let s = json!({"type": "string", "maxLength": 10, "minLength": 2});
    assert!(backward(s.clone(), json!({"type": "string", "maxLength": 20})).is_empty());
    assert_eq!(
        backward(
            s.clone(),
            json!({"type": "string", "maxLength": 5, "minLength": 3})
        ),
        ["MAX_LENGTH_DECREASED", "MIN_LENGTH_INCREASED"]
    );
    assert_eq!(
        backward(
            json!({"type": "string"}),
            json!({"type": "string", "pattern": "^a"})
        ),
        ["PATTERN_ADDED"]
    );
    let n = json!({"type": "number", "minimum": 0, "maximum": 100, "multipleOf": 10});
    assert!(backward(
        n.clone(),
        json!({"type": "number", "minimum": -5, "multipleOf": 5})
    )
    .is_empty());
    assert_eq!(
        backward(
            n.clone(),
            json!({"type": "number", "minimum": 1, "maximum": 99, "multipleOf": 20})
        ),
        [
            "MAXIMUM_DECREASED",
            "MINIMUM_INCREASED",
            "MULTIPLE_OF_EXPANDED"
        ]
    );
    assert_eq!(
        backward(
            json!({"type": "integer"}),
            json!({"type": "integer", "exclusiveMaximum": 9})
        ),
        ["EXCLUSIVE_MAXIMUM_ADDED"]
    );
    let o = json!({"type": "object", "maxProperties": 3});
    assert_eq!(
        backward(o, json!({"type": "object", "maxProperties": 2})),
        ["MAX_PROPERTIES_DECREASED"]
    );
}

#[test]
fn arrays_and_items() {
    let a = json!({"type": "array", "items": {"type": "integer"}});
    assert!(backward(
        a.clone(),
        json!({"type": "array", "items": {"type": "number"}})
    )
    .is_empty());
    assert_eq!(
        backward(
            a.clone(),
            json!({"type": "array", "items": {"type": "string"}})
        ),
        ["TYPE_CHANGED"]
    );
    assert!(backward(a.clone(), json!({"type": "array"})).is_empty());
    assert_eq!(
        backward(json!({"type": "array"}), a.clone()),
        ["SCHEMA_ADDED"]
    );
    assert_eq!(
        backward(
            a.clone(),
            json!({"type": "array", "items": {"type": "integer"}, "maxItems": 3, "uniqueItems": true})
        ),
        ["MAX_ITEMS_ADDED", "UNIQUE_ITEMS_ADDED"]
    );
    let t1 = json!({"type": "array", "items": [{"type": "string"}], "additionalItems": false});
    let t2 = json!({"type": "array", "items": [{"type": "string"}, {"type": "integer"}], "additionalItems": false});
    assert!(backward(t1.clone(), t2.clone()).is_empty());
    assert_eq!(backward(t2, t1), ["ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL"]);
}

#[test]
fn local_refs_are_followed() {
    let v1 = json!({
        "type": "object",
        "properties": {"home": {"$ref": "#/definitions/Address"}, "work": {"$ref": "#/$defs/Address"}},
        "definitions": {"Address": {"type": "object", "properties": {"zip": {"type": "integer"}}}},
        "$defs": {"Address": {"type": "object", "properties": {"zip": {"type": "integer"}}}}
    });
    let mut v2 = v1.clone();
    v2["definitions"]["Address"]["properties"]["zip"] = json!({"type": "number"});
    assert!(backward(v1.clone(), v2.clone()).is_empty());
    assert_eq!(backward(v2, v1.clone()), ["TYPE_CHANGED"]);
    // Inline on one side, a ref on the other: the same schema.
    let inline = json!({
        "type": "object",
        "properties": {
            "home": {"type": "object", "properties": {"zip": {"type": "integer"}}},
            "work": {"type": "object", "properties": {"zip": {"type": "integer"}}}
        }
    });
    assert!(backward(v1.clone(), inline.clone()).is_empty());
    assert!(backward(inline, v1).is_empty());
    // Recursive schemas terminate.
    let tree = json!({
        "$ref": "#/definitions/Node",
        "definitions": {"Node": {"type": "object", "properties": {
            "v": {"type": "integer"}, "kids": {"type": "array", "items": {"$ref": "#/definitions/Node"}}}}}
    });
    assert!(backward(tree.clone(), tree.clone()).is_empty());
    let mut tree2 = tree.clone();
    tree2["definitions"]["Node"]["properties"]["v"] = json!({"type": "string"});
    assert_eq!(backward(tree, tree2), ["TYPE_CHANGED"]);
}
