use super::*;

fn p(text: &str) -> Proto {
    parse(text, &[]).unwrap()
}

/// The differences for BACKWARD (old written, new reads), as their kinds.
fn backward(old: &str, new: &str) -> Vec<String> {
    kinds(can_read(&p(old), &p(new)))
}

fn kinds(diffs: Vec<String>) -> Vec<String> {
    diffs
        .into_iter()
        .map(|d| d.split(' ').next().unwrap_or_default().to_string())
        .collect()
}

fn b64(p: &Proto) -> String {
    B64.encode(p.file.encode_to_vec())
}

const ORDER: &str = r#"
syntax = "proto3";
package shop;
import "google/protobuf/timestamp.proto";
message Order {
  enum Status { NEW = 0; PAID = 1; }
  message Line { string sku = 1; int32 qty = 2; }
  int64 id = 1;
  Status status = 2;
  repeated Line lines = 3;
  google.protobuf.Timestamp at = 4;
  map<string, int32> tags = 5;
  oneof payment { string card = 6; string iban = 7; }
}
"#;

#[test]
fn text_and_descriptor_are_one_schema() {
    let text = p(ORDER);
    assert_eq!(text.file.message_type[0].name(), "Order");
    assert!(text
        .imports
        .iter()
        .any(|f| f.name() == "google/protobuf/timestamp.proto"));
    // The base64 descriptor of the same file (json_names set, another file name).
    let mut fd = text.file.clone();
    fd.name = Some("order.proto".into());
    let encoded = B64.encode(fd.encode_to_vec());
    let decoded = parse(&encoded, &[]).unwrap();
    assert_eq!(identity(&encoded, &[]), identity(ORDER, &[]));
    assert!(identity(ORDER, &[]).starts_with("pb:"));
    assert!(can_read(&text, &decoded).is_empty());
    assert!(can_read(&decoded, &text).is_empty());
    // Serialized: a descriptor as it was registered; text compiled.
    assert_eq!(serialized(&encoded, &[]).as_deref(), Some(encoded.as_str()));
    let from_text = serialized(ORDER, &[]).unwrap();
    assert_eq!(identity(&from_text, &[]), identity(ORDER, &[]));
    // Comments and layout do not change the identity; a field does.
    let spaced = ORDER.replace("int64 id = 1;", "int64   id = 1; // the id");
    assert_eq!(identity(&spaced, &[]), identity(ORDER, &[]));
    let other = ORDER.replace("int64 id = 1;", "int64 id = 1; bool gift = 9;");
    assert_ne!(identity(&other, &[]), identity(ORDER, &[]));
}

#[test]
fn invalid_schemas_are_refused() {
    assert!(parse("syntax = \"proto3\"; message A { int32 x = 1; }", &[]).is_ok());
    assert!(parse("message A { int32 x = 1;", &[]).is_err());
    assert!(parse("hello", &[]).is_err());
    // An unknown type, an unresolvable import.
    assert!(parse("syntax = \"proto3\"; message A { B b = 1; }", &[]).is_err());
    assert!(parse("syntax = \"proto3\"; import \"other.proto\";", &[]).is_err());
    // Base64 that is not a descriptor.
    assert!(parse("AAAA", &[]).is_err());
    assert!(parse("", &[]).is_err());
}

#[test]
fn imports_resolve_from_references_in_either_form() {
    let common = "syntax = \"proto3\"; package common; message Money { int64 cents = 1; }";
    let main = "syntax = \"proto3\"; import \"common.proto\"; \
                message Price { common.Money amount = 1; }";
    let as_text = [RefSchema {
        name: "common.proto".into(),
        text: common.into(),
    }];
    let a = parse(main, &as_text).unwrap();
    assert_eq!(a.file.message_type[0].field[0].type_name(), ".common.Money");
    let as_descriptor = [RefSchema {
        name: "common.proto".into(),
        text: b64(&p(common)),
    }];
    let b = parse(main, &as_descriptor).unwrap();
    assert_eq!(identity(main, &as_text), identity(main, &as_descriptor));
    assert!(can_read(&a, &b).is_empty());
    // A referenced message changing incompatibly breaks the referencing schema.
    let common2 = [RefSchema {
        name: "common.proto".into(),
        text: common.replace("int64 cents", "string cents"),
    }];
    let c = parse(main, &common2).unwrap();
    assert_eq!(
        kinds(can_read(&a, &c)),
        ["FIELD_SCALAR_KIND_CHANGED", "FIELD_NAMED_TYPE_CHANGED"]
    );
}

#[test]
fn field_changes() {
    let v1 = "syntax = \"proto3\"; message A { int32 x = 1; string s = 2; }";
    // Wire-compatible changes, renames, additions and removals are fine.
    for ok in [
        "syntax = \"proto3\"; message A { int64 x = 1; bytes s = 2; }",
        "syntax = \"proto3\"; message A { bool renamed = 1; string s = 2; }",
        "syntax = \"proto3\"; message A { int32 x = 1; string s = 2; double d = 3; }",
        "syntax = \"proto3\"; message A { int32 x = 1; }",
        "syntax = \"proto3\"; message A { int32 x = 1; repeated string s = 2; }",
        "syntax = \"proto3\"; message A { optional int32 x = 1; string s = 2; }",
    ] {
        assert!(backward(v1, ok).is_empty(), "{ok}: {:?}", backward(v1, ok));
        assert!(backward(ok, v1).is_empty(), "{ok}");
    }
    assert_eq!(
        backward(
            v1,
            "syntax = \"proto3\"; message A { string x = 1; string s = 2; }"
        ),
        ["FIELD_SCALAR_KIND_CHANGED"]
    );
    assert_eq!(
        backward(
            v1,
            "syntax = \"proto3\"; message A { sint32 x = 1; string s = 2; }"
        ),
        ["FIELD_SCALAR_KIND_CHANGED"]
    );
    assert_eq!(
        backward(
            v1,
            "syntax = \"proto3\"; message A { repeated int32 x = 1; string s = 2; }"
        ),
        ["FIELD_NUMERIC_LABEL_CHANGED"]
    );
    assert_eq!(
        backward(
            v1,
            "syntax = \"proto3\"; message B {} message A { B x = 1; string s = 2; }"
        ),
        ["FIELD_KIND_CHANGED"]
    );
    assert_eq!(
        backward(
            v1,
            "syntax = \"proto3\"; message A { map<int32, int32> x = 1; string s = 2; }"
        ),
        ["FIELD_KIND_CHANGED"]
    );
}

#[test]
fn enums_maps_and_message_types() {
    let v1 = "syntax = \"proto3\"; enum E { A = 0; B = 1; } \
              message M { E e = 1; map<string, int64> m = 2; N n = 3; } \
              message N { int32 v = 1; } message O { int32 v = 1; }";
    // Enum values added and removed, an enum field read as an integer: fine.
    let ok = "syntax = \"proto3\"; enum E { A = 0; C = 2; } \
              message M { int32 e = 1; map<string, uint64> m = 2; N n = 3; } \
              message N { int32 v = 1; } message O { int32 v = 1; }";
    assert!(backward(v1, ok).is_empty(), "{:?}", backward(v1, ok));
    let enum_to_string = v1.replace("E e = 1", "string e = 1");
    assert_eq!(backward(v1, &enum_to_string), ["FIELD_SCALAR_KIND_CHANGED"]);
    let map_value = v1.replace("map<string, int64>", "map<string, string>");
    assert_eq!(backward(v1, &map_value), ["FIELD_SCALAR_KIND_CHANGED"]);
    let other_message = v1.replace("N n = 3", "O n = 3");
    assert_eq!(backward(v1, &other_message), ["FIELD_NAMED_TYPE_CHANGED"]);
    let changed_message = v1.replace("message N { int32 v = 1; }", "message N { float v = 1; }");
    // Reported once at N's own path (where M.n leads first), and on the field.
    assert_eq!(
        backward(v1, &changed_message),
        ["FIELD_SCALAR_KIND_CHANGED", "FIELD_NAMED_TYPE_CHANGED"]
    );
}

#[test]
fn messages_packages_and_required_fields() {
    let v1 = "syntax = \"proto3\"; package a; message M { int32 x = 1; message Inner {} } \
              message Gone {}";
    let removed = "syntax = \"proto3\"; package a; message M { int32 x = 1; message Inner {} }";
    assert_eq!(backward(v1, removed), ["MESSAGE_REMOVED"]);
    // Adding a message is fine; FORWARD sees the same change the other way round.
    assert!(backward(removed, v1).is_empty());
    let nested_gone = "syntax = \"proto3\"; package a; message M { int32 x = 1; } message Gone {}";
    assert_eq!(backward(v1, nested_gone), ["MESSAGE_REMOVED"]);
    let moved = "syntax = \"proto3\"; package a; message Gone {} \
                 message M { message Inner {} int32 x = 1; }";
    assert!(backward(v1, moved).is_empty());
    let package = v1.replace("package a;", "package b;");
    assert_eq!(backward(v1, &package), ["PACKAGE_CHANGED"]);

    let p2 = "syntax = \"proto2\"; message M { optional int32 x = 1; }";
    let req = "syntax = \"proto2\"; message M { optional int32 x = 1; required int32 y = 2; }";
    assert_eq!(backward(p2, req), ["REQUIRED_FIELD_ADDED"]);
    assert_eq!(backward(req, p2), ["REQUIRED_FIELD_REMOVED"]);
}

#[test]
fn oneof_changes() {
    let v1 = "syntax = \"proto3\"; message M { int32 a = 1; int32 b = 2; \
              oneof o { string c = 3; string d = 4; } }";
    let one_moved = "syntax = \"proto3\"; message M { int32 b = 2; \
                     oneof n { int32 a = 1; } oneof o { string c = 3; string d = 4; } }";
    assert!(backward(v1, one_moved).is_empty());
    let two_moved = "syntax = \"proto3\"; message M { \
                     oneof n { int32 a = 1; int32 b = 2; } oneof o { string c = 3; string d = 4; } }";
    assert_eq!(backward(v1, two_moved), ["MULTIPLE_FIELDS_MOVED_TO_ONEOF"]);
    let into_existing = "syntax = \"proto3\"; message M { int32 b = 2; \
                         oneof o { int32 a = 1; string c = 3; string d = 4; } }";
    assert_eq!(
        backward(v1, into_existing),
        ["FIELD_MOVED_TO_EXISTING_ONEOF"]
    );
    let field_removed = "syntax = \"proto3\"; message M { int32 a = 1; int32 b = 2; \
                         oneof o { string c = 3; } }";
    assert_eq!(backward(v1, field_removed), ["ONEOF_FIELD_REMOVED"]);
    let field_added = "syntax = \"proto3\"; message M { int32 a = 1; int32 b = 2; \
                       oneof o { string c = 3; string d = 4; bytes e = 5; } }";
    assert!(backward(v1, field_added).is_empty());
    let type_changed = v1.replace("string d = 4", "int32 d = 4");
    assert_eq!(backward(v1, &type_changed), ["FIELD_SCALAR_KIND_CHANGED"]);
    // Dissolving the oneof keeps its fields: fine.
    let dissolved = "syntax = \"proto3\"; message M { int32 a = 1; int32 b = 2; \
                     string c = 3; string d = 4; }";
    assert!(backward(v1, dissolved).is_empty());
}

#[test]
fn recursive_messages_terminate() {
    let v1 = "syntax = \"proto3\"; message Node { int32 v = 1; repeated Node kids = 2; }";
    let v2 = "syntax = \"proto3\"; message Node { string v = 1; repeated Node kids = 2; }";
    assert!(backward(v1, v1).is_empty());
    assert_eq!(backward(v1, v2), ["FIELD_SCALAR_KIND_CHANGED"]);
}
