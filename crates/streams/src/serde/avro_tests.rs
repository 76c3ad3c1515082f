//! `AvroSerde` against a stand-in registry (a few REST routes on a raw socket, counting
//! requests): framing, caching, schema resolution both ways, malformed input.

use serde::Deserialize;

use super::*;
use crate::serde::fake_registry::Fake;

const V1: &str = r#"{"type": "record", "name": "Order", "namespace": "shop", "fields": [
    {"name": "id", "type": "string"},
    {"name": "qty", "type": "int"},
    {"name": "note", "type": ["null", "string"], "default": null},
    {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["NEW", "PAID"]}}]}"#;

/// V1 plus a field with a default, and `qty` widened to long: both backward compatible.
const V2: &str = r#"{"type": "record", "name": "Order", "namespace": "shop", "fields": [
    {"name": "id", "type": "string"},
    {"name": "qty", "type": "long"},
    {"name": "note", "type": ["null", "string"], "default": null},
    {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["NEW", "PAID"]}},
    {"name": "channel", "type": "string", "default": "web"}]}"#;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Status {
    #[serde(rename = "NEW")]
    New,
    #[serde(rename = "PAID")]
    Paid,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Order {
    id: String,
    qty: i32,
    note: Option<String>,
    status: Status,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct OrderV2 {
    id: String,
    qty: i64,
    note: Option<String>,
    status: Status,
    channel: String,
}

fn order(i: i32) -> Order {
    Order {
        id: format!("o{i}"),
        qty: i,
        note: (i % 2 == 0).then(|| "gift".to_string()),
        status: if i % 3 == 0 {
            Status::Paid
        } else {
            Status::New
        },
    }
}

#[test]
fn frames_like_confluent_and_caches_ids_and_schemas() {
    let fake = Fake::start();
    let serde = AvroSerde::<Order>::new(V1, &fake.config(&[]), false).unwrap();
    let bytes = serde.serialize("orders", &order(1)).unwrap();
    let id = fake.register("orders-value", V1, "AVRO");
    // 0, the id big-endian, then the datum: "o1" (zigzag length 2 = 4), qty 1 (2),
    // note null (union branch 0), status NEW (enum index 0).
    let mut expected = vec![0];
    expected.extend_from_slice(&id.to_be_bytes());
    expected.extend_from_slice(&[4, b'o', b'1', 2, 0, 0]);
    assert_eq!(bytes, expected);
    assert_eq!(fake.hits(), 1);
    for i in 0..50 {
        let bytes = serde.serialize("orders", &order(i)).unwrap();
        assert_eq!(serde.deserialize("orders", Some(&bytes)).unwrap(), order(i));
    }
    // The registration told the client the id's schema: no more requests.
    assert_eq!(fake.hits(), 1);
    // A key serde registers under <topic>-key.
    let keys = AvroSerde::<Order>::new(V1, &fake.config(&[]), true).unwrap();
    keys.serialize("orders", &order(2)).unwrap();
    assert!(fake.state().versions.iter().any(|v| v.0 == "orders-key"));
}

#[test]
fn resolves_newer_and_older_writer_schemas() {
    let fake = Fake::start();
    let config = fake.config(&[]);
    // A newer writer (V2: an extra field, a wider type) read with V1.
    let v2_id = fake.register("orders-value", V2, "AVRO");
    let v2 = apache_avro::Schema::parse_str(V2).unwrap();
    let newer = OrderV2 {
        id: "o7".into(),
        qty: 7,
        note: Some("n".into()),
        status: Status::Paid,
        channel: "app".into(),
    };
    let datum = apache_avro::to_avro_datum(
        &v2,
        apache_avro::to_value(&newer).unwrap().resolve(&v2).unwrap(),
    )
    .unwrap();
    let v1_reader = AvroSerde::<Order>::new(V1, &config, false).unwrap();
    let read = v1_reader
        .deserialize("orders", Some(&wire::frame(v2_id, &datum)))
        .unwrap();
    assert_eq!(
        read,
        Order {
            id: "o7".into(),
            qty: 7,
            note: Some("n".into()),
            status: Status::Paid
        }
    );
    // An older writer (V1) read with V2: the default fills the missing field, int → long.
    let old = AvroSerde::<Order>::new(V1, &config, false).unwrap();
    let bytes = old.serialize("orders", &order(4)).unwrap();
    let v2_reader = AvroSerde::<OrderV2>::new(V2, &config, false).unwrap();
    let read = v2_reader.deserialize("orders", Some(&bytes)).unwrap();
    assert_eq!((read.qty, read.channel.as_str()), (4, "web"));
    assert_eq!(read.note.as_deref(), Some("gift"));
}

#[test]
fn use_latest_version_writes_with_the_subjects_latest_schema() {
    let fake = Fake::start();
    fake.register("orders-value", V1, "AVRO");
    let v2_id = fake.register("orders-value", V2, "AVRO");
    let config = fake.config(&[
        ("use.latest.version", "true"),
        ("auto.register.schemas", "false"),
    ]);
    let serde = AvroSerde::<Order>::new(V1, &config, false).unwrap();
    let bytes = serde.serialize("orders", &order(3)).unwrap();
    let (id, mut payload) = wire::unframe(&bytes).unwrap();
    assert_eq!(id, v2_id);
    let v2 = apache_avro::Schema::parse_str(V2).unwrap();
    let value = apache_avro::from_avro_datum(&v2, &mut payload, None).unwrap();
    let read: OrderV2 = apache_avro::from_value(&value).unwrap();
    assert_eq!((read.qty, read.channel.as_str()), (3, "web"));
    // And reads it back as its own type.
    assert_eq!(serde.deserialize("orders", Some(&bytes)).unwrap(), order(3));
}

#[test]
fn without_auto_registration_an_unregistered_schema_fails_the_write() {
    let fake = Fake::start();
    let config = fake.config(&[("auto.register.schemas", "false")]);
    let serde = AvroSerde::<Order>::new(V1, &config, false).unwrap();
    let err = serde.serialize("orders", &order(1)).unwrap_err();
    assert!(matches!(err, StreamsError::SchemaRegistry { .. }), "{err}");
    assert!(fake.state().versions.is_empty());
    let id = fake.register("orders-value", V1, "AVRO");
    let bytes = serde.serialize("orders", &order(1)).unwrap();
    assert_eq!(wire::unframe(&bytes).map(|f| f.0), Ok(id));
}

#[test]
fn malformed_records_are_serde_errors_not_panics() {
    let fake = Fake::start();
    let json_id = fake.register("other-value", r#"{"type":"object"}"#, "JSON");
    let serde = AvroSerde::<Order>::new(V1, &fake.config(&[]), false).unwrap();
    let good = serde.serialize("orders", &order(5)).unwrap();
    let mut cases: Vec<Vec<u8>> = vec![
        vec![],
        vec![0, 0, 0],
        b"{\"id\": 1}".to_vec(),
        good[..good.len() - 2].to_vec(),
        wire::frame(999, &good[5..]),
        wire::frame(json_id, b"{}"),
    ];
    // A string length far past the end, and an enum index out of range.
    cases.push(wire::frame(1, &[0xfe, 0xff, 0xff, 0xff, 0x0f]));
    cases.push(wire::frame(1, &[2, b'x', 2, 0, 40]));
    for bytes in &cases {
        let err = serde.deserialize("orders", Some(bytes)).unwrap_err();
        assert!(
            matches!(err, StreamsError::Serde { .. }),
            "{bytes:?}: {err}"
        );
    }
    assert!(matches!(
        serde.deserialize("orders", None),
        Err(StreamsError::Serde { .. })
    ));
    // A null reads as `None` for an `Option` of a union with null; a V1 record written
    // by the V1 serde resolves to the union's record branch.
    let union = format!("[\"null\", {V1}]");
    let optional = AvroSerde::<Option<Order>>::new(&union, &fake.config(&[]), false).unwrap();
    assert_eq!(optional.deserialize("orders", None).unwrap(), None);
    assert_eq!(
        optional.deserialize("orders", Some(&good)).unwrap(),
        Some(order(5))
    );
}

#[test]
fn an_unreachable_registry_is_not_a_record_fault() {
    let config = RegistrySerdeConfig::new("http://127.0.0.1:1").unwrap();
    let serde = AvroSerde::<Order>::new(V1, &config, false).unwrap();
    let err = serde
        .deserialize("orders", Some(&wire::frame(1, &[])))
        .unwrap_err();
    assert!(matches!(err, StreamsError::SchemaRegistry { .. }), "{err}");
    let err = serde.serialize("orders", &order(1)).unwrap_err();
    assert!(matches!(err, StreamsError::SchemaRegistry { .. }), "{err}");
}

#[test]
fn config_uses_confluents_names() {
    assert!(RegistrySerdeConfig::from_props([("auto.register.schemas", "true")]).is_err());
    assert!(RegistrySerdeConfig::new("ftp://x").is_err());
    let bad = [
        ("schema.registry.url", "http://h:1"),
        ("use.latest.version", "yes"),
    ];
    assert!(RegistrySerdeConfig::from_props(bad).is_err());
    let c = RegistrySerdeConfig::from_props([
        ("schema.registry.url", "http://h:1"),
        (
            "value.subject.name.strategy",
            "io.confluent.kafka.serializers.subject.RecordNameStrategy",
        ),
        ("application.id", "ignored"),
    ])
    .unwrap();
    assert!(c.auto_register() && !c.use_latest_version());
    assert_eq!(
        c.strategy(false),
        gregor_registry_client::SubjectNameStrategy::RecordName
    );
    let streams = crate::StreamsConfig::new("app", "b:1")
        .set("schema.registry.url", "http://h:1")
        .set("auto.register.schemas", "false");
    assert!(!RegistrySerdeConfig::from_streams_config(&streams)
        .unwrap()
        .auto_register());
    assert!(AvroSerde::<Order>::new("{not a schema", &c, false).is_err());
}

#[test]
fn record_name_strategy_names_the_subject_after_the_record() {
    let fake = Fake::start();
    let config = fake.config(&[(
        "value.subject.name.strategy",
        "io.confluent.kafka.serializers.subject.RecordNameStrategy",
    )]);
    let serde = AvroSerde::<Order>::new(V1, &config, false).unwrap();
    serde.serialize("orders", &order(1)).unwrap();
    assert_eq!(fake.state().versions[0].0, "shop.Order");
    // A primitive schema has no name for the strategy.
    let longs = AvroSerde::<i64>::new("\"long\"", &config, false).unwrap();
    assert!(matches!(
        longs.serialize("t", &1),
        Err(StreamsError::SchemaRegistry { .. })
    ));
}

#[tokio::test]
async fn works_when_called_inside_a_tokio_runtime() {
    let fake = Fake::start();
    let serde = AvroSerde::<Order>::new(V1, &fake.config(&[]), false).unwrap();
    let bytes = serde.serialize("orders", &order(9)).unwrap();
    assert_eq!(serde.deserialize("orders", Some(&bytes)).unwrap(), order(9));
}

#[test]
fn a_topology_reads_and_writes_avro_and_skips_a_bad_record() {
    use crate::{Consumed, Produced, Serdes, StreamsBuilder, StreamsConfig, TopologyTestDriver};
    let fake = Fake::start();
    let config = fake.config(&[]);
    let builder = StreamsBuilder::new();
    builder
        .stream(
            "in",
            Consumed::with(Serdes::string(), AvroSerde::value(V1, &config).unwrap()),
        )
        .map_values(|o: Order| OrderV2 {
            id: o.id,
            qty: i64::from(o.qty) * 10,
            note: o.note,
            status: o.status,
            channel: "stream".into(),
        })
        .to(
            "out",
            Produced::with(Serdes::string(), AvroSerde::value(V2, &config).unwrap()),
        );
    let driver = TopologyTestDriver::new(
        builder.build().unwrap(),
        StreamsConfig::new("t", "none").set(
            "default.deserialization.exception.handler",
            "log-and-continue",
        ),
    )
    .unwrap();
    let input = driver.create_input_topic(
        "in",
        Serdes::string(),
        AvroSerde::value(V1, &config).unwrap(),
    );
    let output = driver.create_output_topic(
        "out",
        Serdes::string(),
        AvroSerde::<OrderV2>::value(V2, &config).unwrap(),
    );
    input.pipe_input("k".into(), order(2), 1).unwrap();
    input.pipe_raw(Some(b"k"), Some(b"not avro"), 2).unwrap();
    input.pipe_input("k".into(), order(3), 3).unwrap();
    let out = output.read_key_values().unwrap();
    let qty: Vec<i64> = out
        .iter()
        .filter_map(|(_, v)| v.as_ref().map(|v| v.qty))
        .collect();
    assert_eq!(qty, vec![20, 30]);
    assert_eq!(driver.skipped_records(), 1);
    assert!(fake
        .state()
        .versions
        .iter()
        .any(|v| v.0 == "out-value" && v.1 == V2));
}
