use super::super::avro_schema::{from_avro_schema, to_avro_schema};
use super::*;
use gregor_connect_api::{Field, SchemaType as T};
use serde_json::json;

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

fn row() -> Schema {
    named(
        Schema::structure(vec![
            field("id", Schema::new(T::Int32)),
            field("small", Schema::new(T::Int8).optional()),
            field("name", Schema::new(T::String).optional()),
            field(
                "at",
                named(
                    Schema::new(T::Int64),
                    gregor_connect_api::data::TIMESTAMP_LOGICAL,
                ),
            ),
        ]),
        "pg.public.items.Value",
    )
}

#[test]
fn connect_structs_map_to_records_as_avro_data_does() {
    let envelope = named(
        Schema::structure(vec![
            field("before", row().optional()),
            field("after", row().optional()),
            field("tags", {
                let mut s = Schema::new(T::Map);
                s.key_schema = Some(Box::new(Schema::new(T::String)));
                s.value_schema = Some(Box::new(Schema::new(T::Int64)));
                s
            }),
        ]),
        "pg.public.items.Envelope",
    );
    let avro = to_avro_schema(&envelope).unwrap_or_default();
    assert_eq!(avro["type"], "record");
    assert_eq!(avro["name"], "Envelope");
    assert_eq!(avro["namespace"], "pg.public.items");
    assert_eq!(avro["connect.name"], "pg.public.items.Envelope");
    let before = &avro["fields"][0];
    assert_eq!(before["default"], json!(null));
    assert_eq!(before["type"][0], "null");
    assert_eq!(before["type"][1]["name"], "Value");
    let inner = &before["type"][1]["fields"];
    assert_eq!(inner[0], json!({"name": "id", "type": "int"}));
    assert_eq!(
        inner[1],
        json!({"name": "small", "type": ["null", {"type": "int", "connect.type": "int8"}], "default": null})
    );
    assert_eq!(
        inner[3]["type"],
        json!({"type": "long", "connect.name": "org.apache.kafka.connect.data.Timestamp",
               "logicalType": "timestamp-millis"})
    );
    // The second use of a named record refers to it by name.
    assert_eq!(
        avro["fields"][1]["type"],
        json!(["null", "pg.public.items.Value"])
    );
    assert_eq!(
        avro["fields"][2]["type"],
        json!({"type": "map", "values": "long"})
    );
    // apache-avro accepts it, and the reverse mapping gives the Connect schema back
    // (logical types gain Connect's version 1).
    assert!(AvroSchema::parse_str(&avro.to_string()).is_ok());
    let mut expected = envelope.clone();
    for f in expected.fields.iter_mut().take(2) {
        f.schema.fields[3].schema.version = Some(1);
    }
    assert_eq!(from_avro_schema(&avro).ok(), Some(expected));
}

#[test]
fn unnamed_structs_get_confluents_default_names() {
    let s = Schema::structure(vec![
        field(
            "a",
            Schema::structure(vec![field("x", Schema::new(T::Boolean))]),
        ),
        field("b", Schema::new(T::Bytes)),
    ]);
    let avro = to_avro_schema(&s).unwrap_or_default();
    assert_eq!(avro["name"], "ConnectDefault");
    assert_eq!(avro["namespace"], "io.confluent.connect.avro");
    assert_eq!(avro["fields"][0]["type"]["name"], "ConnectDefault2");
    assert_eq!(from_avro_schema(&avro).ok(), Some(s));
}

#[test]
fn foreign_schemas_map_to_connect() {
    let avro = json!({"type": "record", "name": "User", "namespace": "com.example", "fields": [
        {"name": "id", "type": "long"},
        {"name": "email", "type": ["null", "string"], "default": null},
        {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["A", "B"]}},
        {"name": "born", "type": {"type": "int", "logicalType": "date"}},
        {"name": "scores", "type": {"type": "array", "items": "double"}}]});
    let s = from_avro_schema(&avro).unwrap_or_else(|_| Schema::new(T::Boolean));
    assert_eq!(s.name.as_deref(), Some("com.example.User"));
    let types: Vec<_> = s
        .fields
        .iter()
        .map(|f| (f.schema.schema_type, f.schema.optional))
        .collect();
    assert_eq!(
        types,
        [
            (T::Int64, false),
            (T::String, true),
            (T::String, false),
            (T::Int32, false),
            (T::Array, false)
        ]
    );
    assert_eq!(
        s.fields[3].schema.name.as_deref(),
        Some(gregor_connect_api::data::DATE_LOGICAL)
    );
    assert!(from_avro_schema(&json!(["int", "string"])).is_err());
    assert!(from_avro_schema(&json!("com.example.Nope")).is_err());
}

#[test]
fn values_round_trip_through_avro_binary() {
    let s = row();
    let avro_json = to_avro_schema(&s).unwrap();
    let avro = AvroSchema::parse_str(&avro_json.to_string()).unwrap();
    let value = Value::Struct(vec![
        ("id".into(), Value::Int(1)),
        ("small".into(), Value::Null),
        ("name".into(), Value::String("apple".into())),
        ("at".into(), Value::Int(1_700_000_000_000)),
    ]);
    let datum = to_avro_value(&avro, &names(&avro), &value).unwrap();
    let bytes = apache_avro::to_avro_datum(&avro, datum).unwrap();
    // id 1 (zigzag 2), small: union branch 0, name: branch 1 + length 5 + text, at: long.
    assert_eq!(&bytes[..4], &[2, 0, 2, 10]);
    let back = apache_avro::from_avro_datum(&avro, &mut bytes.as_slice(), None).unwrap();
    assert_eq!(from_avro_value(&s, back).unwrap(), value);
    // Truncated input is an error, not a panic.
    assert!(apache_avro::from_avro_datum(&avro, &mut &bytes[..3], None).is_err());
    // A value that does not fit the schema is an error.
    let wide = Value::Struct(vec![("id".into(), Value::Int(1 << 40))]);
    assert!(to_avro_value(&avro, &names(&avro), &wide).is_err());
}

#[test]
fn malformed_records_are_data_errors() {
    let mut props = Props::new();
    props.insert("schema.registry.url".into(), "http://127.0.0.1:1".into());
    let c = AvroConverter::configure(&props, false).unwrap();
    for bad in [&b"not framed"[..], b"", &[0, 0, 0], &[1, 0, 0, 0, 1, 2]] {
        assert!(matches!(
            c.to_connect("t", Some(bad)),
            Err(ConnectError::Data(_))
        ));
    }
    // Framed, but the registry cannot be reached to resolve the id.
    assert!(matches!(
        c.to_connect("t", Some(&[0, 0, 0, 0, 9, 2])),
        Err(ConnectError::Data(_))
    ));
    assert_eq!(
        c.from_connect("t", Some(&row()), &Value::Null).ok(),
        Some(None)
    );
    assert!(matches!(
        AvroConverter::configure(&Props::new(), false),
        Err(ConnectError::Config(_))
    ));
}
