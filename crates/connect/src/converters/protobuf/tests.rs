use std::collections::HashMap;

use super::super::protobuf_schema::{compile, message_at, message_schema, to_proto};
use super::*;
use gregor_connect_api::{Field, SchemaType as T};

fn field(name: &str, schema: Schema) -> Field {
    Field {
        name: name.into(),
        schema,
    }
}

fn named(mut s: Schema, name: &str) -> Schema {
    s.name = Some(name.into());
    s
}

#[test]
fn structs_become_proto3_messages_and_round_trip() {
    let row = named(
        Schema::structure(vec![
            field("id", Schema::new(T::Int32).optional()),
            field("name", Schema::new(T::String).optional()),
        ]),
        "pg.public.items.Value",
    );
    let mut tags = Schema::new(T::Map);
    tags.key_schema = Some(Box::new(Schema::new(T::String)));
    tags.value_schema = Some(Box::new(Schema::new(T::Int64)));
    let mut scores = Schema::new(T::Array);
    scores.value_schema = Some(Box::new(Schema::new(T::Float64)));
    let envelope = named(
        Schema::structure(vec![
            field("before", row.clone().optional()),
            field("after", row.optional()),
            field("op", Schema::new(T::String)),
            field("tags", tags),
            field("scores", scores),
            field("ok", Schema::new(T::Boolean)),
        ]),
        "pg.public.items.Envelope",
    );
    let (text, full) = to_proto(&envelope).unwrap();
    assert_eq!(full, "pg.public.items.Envelope");
    assert_eq!(
        text,
        "syntax = \"proto3\";\npackage pg.public.items;\n\nmessage Envelope {\n  Value before = 1;\n  \
         Value after = 2;\n  string op = 3;\n  map<string, int64> tags = 4;\n  repeated double scores = 5;\n  \
         bool ok = 6;\n  message Value {\n    int32 id = 1;\n    string name = 2;\n  }\n}\n"
    );
    let pool = compile(&text, HashMap::new()).unwrap();
    let desc = message_at(&pool, &[0]).unwrap();
    let value = Value::Struct(vec![
        ("before".into(), Value::Null),
        (
            "after".into(),
            Value::Struct(vec![
                ("id".into(), Value::Int(7)),
                ("name".into(), Value::String("fig".into())),
            ]),
        ),
        ("op".into(), Value::String("c".into())),
        (
            "tags".into(),
            Value::Map(vec![(Value::String("a".into()), Value::Int(1))]),
        ),
        ("scores".into(), Value::Array(vec![Value::Float(1.5)])),
        ("ok".into(), Value::Boolean(true)),
    ]);
    let bytes = to_message(&desc, &value).unwrap().encode_to_vec();
    let back = DynamicMessage::decode(desc.clone(), bytes.as_slice()).unwrap();
    assert_eq!(from_message(&back), value);
    let schema = message_schema(&desc, 0).unwrap();
    assert_eq!(schema.name.as_deref(), Some("pg.public.items.Envelope"));
    assert_eq!(
        schema.fields[1].schema.name.as_deref(),
        Some("pg.public.items.Envelope.Value")
    );
    assert!(schema.fields.iter().all(|f| f.schema.optional));
    // Nested message indexes count nested types in descriptor order, where the map
    // field's synthesized entry type comes first; out-of-range ones are errors.
    assert_eq!(
        message_at(&pool, &[0, 1])
            .map(|m| m.name().to_string())
            .ok(),
        Some("Value".into())
    );
    assert!(message_at(&pool, &[1]).is_err());
    assert!(message_at(&pool, &[0, 5]).is_err());
    // Garbage bytes do not decode.
    assert!(DynamicMessage::decode(desc, &[0xff, 0xff, 0xff][..]).is_err());
}

#[test]
fn non_structs_and_mismatched_values_are_data_errors() {
    assert!(to_proto(&Schema::new(T::String)).is_err());
    let s = Schema::structure(vec![field("n", Schema::new(T::Int32))]);
    let (text, full) = to_proto(&s).unwrap();
    assert_eq!(full, "ConnectDefault1");
    let pool = compile(&text, HashMap::new()).unwrap();
    let desc = message_at(&pool, &[0]).unwrap();
    let bad = Value::Struct(vec![("n".into(), Value::String("x".into()))]);
    assert!(to_message(&desc, &bad).is_err());
    let big = Value::Struct(vec![("n".into(), Value::Int(1 << 40))]);
    assert!(to_message(&desc, &big).is_err());
    assert!(compile("message {", HashMap::new()).is_err());
}

#[test]
fn malformed_records_are_data_errors() {
    let mut props = Props::new();
    props.insert("schema.registry.url".into(), "http://127.0.0.1:1".into());
    let c = ProtobufConverter::configure(&props, true).unwrap();
    for bad in [&b"plain"[..], b"", &[0, 0, 0, 0, 1, 0x80]] {
        assert!(matches!(
            c.to_connect("t", Some(bad)),
            Err(ConnectError::Data(_))
        ));
    }
    assert!(matches!(
        c.to_connect("t", Some(&[0, 0, 0, 0, 1, 0])),
        Err(ConnectError::Data(_))
    ));
    assert_eq!(c.to_connect("t", None).ok(), Some((None, Value::Null)));
}
