"""Protobuf and JSON Schema in the schema registry (`gregor registry`) with real clients:
confluent-kafka's ProtobufSerializer/ProtobufDeserializer through the broker (schemas
registered as base64 FileDescriptorProtos, imports as schema references, `?format=
serialized` lookups), Confluent's Protobuf compatibility rules on both the descriptor and
the `.proto` text forms, and Confluent's JSON Schema rules through the REST API.

The Protobuf message classes are built at run time from descriptors made with the
`protobuf` package (descriptor_pb2 + message_factory), so no protoc is needed."""
import base64
import json
import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from google.protobuf import descriptor_pb2, descriptor_pool, timestamp_pb2
from google.protobuf.message_factory import GetMessageClass

from registry import Registry

F = descriptor_pb2.FieldDescriptorProto


@pytest.fixture
def registry(broker, tmp_path):
    r = Registry(broker.bootstrap, tmp_path / "registry.log").start()
    yield r
    r.kill9()


def money_file():
    """gregor/money.proto: a user file that the order file imports (a reference)."""
    fd = descriptor_pb2.FileDescriptorProto(name="gregor/money.proto", package="gregor.common", syntax="proto3")
    m = fd.message_type.add(name="Money")
    m.field.add(name="cents", number=1, type=F.TYPE_INT64, label=F.LABEL_OPTIONAL)
    m.field.add(name="currency", number=2, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    return fd


def order_file(id_type=F.TYPE_INT64, extra_field=False):
    """gregor/order.proto: Order with a nested message, an enum, a repeated field, a
    google.protobuf.Timestamp and an imported user message."""
    fd = descriptor_pb2.FileDescriptorProto(
        name="gregor/order.proto", package="gregor.shop", syntax="proto3",
        dependency=["google/protobuf/timestamp.proto", "gregor/money.proto"],
    )
    status = fd.enum_type.add(name="Status")
    status.value.add(name="NEW", number=0)
    status.value.add(name="PAID", number=1)
    order = fd.message_type.add(name="Order")
    line = order.nested_type.add(name="Line")
    line.field.add(name="sku", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    line.field.add(name="qty", number=2, type=F.TYPE_INT32, label=F.LABEL_OPTIONAL)
    order.field.add(name="id", number=1, type=id_type, label=F.LABEL_OPTIONAL)
    order.field.add(name="status", number=2, type=F.TYPE_ENUM, type_name=".gregor.shop.Status",
                    label=F.LABEL_OPTIONAL)
    order.field.add(name="lines", number=3, type=F.TYPE_MESSAGE, type_name=".gregor.shop.Order.Line",
                    label=F.LABEL_REPEATED)
    order.field.add(name="created", number=4, type=F.TYPE_MESSAGE, type_name=".google.protobuf.Timestamp",
                    label=F.LABEL_OPTIONAL)
    order.field.add(name="total", number=5, type=F.TYPE_MESSAGE, type_name=".gregor.common.Money",
                    label=F.LABEL_OPTIONAL)
    if extra_field:
        order.field.add(name="note", number=6, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    return fd


def order_class(fd):
    """The generated-code equivalent: a message class for gregor.shop.Order."""
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(timestamp_pb2.DESCRIPTOR.serialized_pb)
    pool.Add(money_file())
    pool.Add(fd)
    return GetMessageClass(pool.FindMessageTypeByName("gregor.shop.Order"))


def make_order(cls, i, note=None):
    o = cls(id=i, status=1)
    o.lines.add(sku=f"sku-{i}", qty=i + 1)
    o.lines.add(sku="extra", qty=1)
    o.created.seconds = 1_700_000_000 + i
    o.total.cents = 100 * i
    o.total.currency = "EUR"
    if note is not None:
        o.note = note
    return o


def consume(broker, topic, n, deserializer, ctx):
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "g-" + uuid.uuid4().hex,
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    got = []
    deadline = time.monotonic() + 30
    while len(got) < n and time.monotonic() < deadline:
        m = consumer.poll(0.5)
        if m is None or m.error():
            continue
        got.append((int.from_bytes(m.value()[1:5], "big"), deserializer(m.value(), ctx)))
    consumer.close()
    return got


SERIALIZER_CONF = {"skip.known.types": False}


def test_protobuf_serializer_round_trip_references_and_compatibility(broker, registry):
    client = SchemaRegistryClient({"url": registry.url})
    topic = "orders-" + uuid.uuid4().hex[:8]
    subject = f"{topic}-value"
    ctx = SerializationContext(topic, MessageField.VALUE)
    v1 = order_class(order_file())
    serializer = ProtobufSerializer(v1, client, SERIALIZER_CONF)
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    sent = [make_order(v1, i) for i in range(3)]
    for o in sent:
        producer.produce(topic, value=serializer(o, ctx))
    assert producer.flush(30) == 0

    # What the serializer registered: the file as a base64 descriptor, its imports as
    # references under subjects named after them (skip.known.types off: the Timestamp
    # import too).
    latest = client.get_latest_version(subject)
    assert latest.schema.schema_type == "PROTOBUF"
    refs = {r.name: (r.subject, r.version) for r in latest.schema.references}
    assert refs == {"google/protobuf/timestamp.proto": ("google/protobuf/timestamp.proto", 1),
                    "gregor/money.proto": ("gregor/money.proto", 1)}
    fd = descriptor_pb2.FileDescriptorProto.FromString(base64.b64decode(latest.schema.schema_str))
    assert fd.message_type[0].name == "Order"
    status, body = registry.get(f"/schemas/ids/{latest.schema_id}?format=serialized")
    assert status == 200 and body["schemaType"] == "PROTOBUF"
    assert descriptor_pb2.FileDescriptorProto.FromString(base64.b64decode(body["schema"])) == fd

    # The deserializer fetches the writer's schema by id (format=serialized) and its
    # references by subject and version.
    deserializer = ProtobufDeserializer(v1, {}, schema_registry_client=client)
    got = consume(broker, topic, len(sent), deserializer, ctx)
    assert [g for _, g in got] == sent
    assert {sid for sid, _ in got} == {latest.schema_id}
    assert got[0][1].created.seconds == 1_700_000_000
    assert got[0][1].lines[0].sku == "sku-0"

    # A field's type changing (int64 id -> string) is incompatible under BACKWARD.
    bad = order_class(order_file(id_type=F.TYPE_STRING))
    bad_schema = Schema(base64.b64encode(bad.DESCRIPTOR.file.serialized_pb).decode(), "PROTOBUF",
                        latest.schema.references)
    assert client.test_compatibility(subject, bad_schema) is False
    with pytest.raises(SchemaRegistryError) as e:
        client.register_schema(subject, bad_schema)
    assert (e.value.http_status_code, e.value.error_code) == (409, 409)
    assert "FIELD_SCALAR_KIND_CHANGED" in e.value.error_message
    # The serializer, auto-registering the changed class, raises the same refusal.
    with pytest.raises(SchemaRegistryError) as e:
        ProtobufSerializer(bad, client, SERIALIZER_CONF)(bad(id="nine"), ctx)
    assert e.value.http_status_code == 409

    # A new field is compatible: registered as version 2, and old and new records are
    # read back by a reader with the new class.
    v2 = order_class(order_file(extra_field=True))
    serializer2 = ProtobufSerializer(v2, client, SERIALIZER_CONF)
    newer = make_order(v2, 7, note="gift")
    producer.produce(topic, value=serializer2(newer, ctx))
    assert producer.flush(30) == 0
    assert client.get_versions(subject) == [1, 2]
    topic_reader = ProtobufDeserializer(v2, {}, schema_registry_client=client)
    got = consume(broker, topic, len(sent) + 1, topic_reader, SerializationContext(topic, MessageField.VALUE))
    assert [g.id for _, g in got] == [0, 1, 2, 7]
    assert got[-1][1].note == "gift"
    assert len({sid for sid, _ in got}) == 2


ORDER_PROTO = """
syntax = "proto3";
package gregor.shop;
import "google/protobuf/timestamp.proto";
import "gregor/money.proto";

enum Status { NEW = 0; PAID = 1; }

message Order {
  message Line { string sku = 1; int32 qty = 2; }
  int64 id = 1;
  Status status = 2;
  repeated Line lines = 3;
  google.protobuf.Timestamp created = 4;
  gregor.common.Money total = 5;
}
"""


def test_proto_text_and_descriptor_forms(broker, registry):
    """A schema registered as .proto text is served as a descriptor with
    format=serialized, which the deserializer loads; text and descriptor of the same
    file are one schema, and compatibility is checked across the two forms."""
    client = SchemaRegistryClient({"url": registry.url})
    money_b64 = base64.b64encode(money_file().SerializeToString()).decode()
    status, body = registry.post("/subjects/money/versions", {"schemaType": "PROTOBUF", "schema": money_b64})
    assert status == 200, body
    refs = [{"name": "gregor/money.proto", "subject": "money", "version": 1}]
    topic = "text-" + uuid.uuid4().hex[:8]
    subject = f"{topic}-value"
    status, body = registry.post(f"/subjects/{subject}/versions",
                                 {"schemaType": "PROTOBUF", "schema": ORDER_PROTO, "references": refs})
    assert status == 200, body
    text_id = body["id"]
    # As stored, and as a descriptor.
    assert registry.get(f"/schemas/ids/{text_id}")[1]["schema"] == ORDER_PROTO
    status, body = registry.get(f"/subjects/{subject}/versions/latest?format=serialized")
    assert status == 200
    fd = descriptor_pb2.FileDescriptorProto.FromString(base64.b64decode(body["schema"]))
    assert [m.name for m in fd.message_type] == ["Order"]
    assert list(fd.dependency) == ["google/protobuf/timestamp.proto", "gregor/money.proto"]

    # The same file as a base64 descriptor is the same schema: same id, no new version.
    cls = order_class(order_file())
    b64 = base64.b64encode(cls.DESCRIPTOR.file.serialized_pb).decode()
    status, body = registry.post(f"/subjects/{subject}/versions",
                                 {"schemaType": "PROTOBUF", "schema": b64, "references": refs})
    assert (status, body["id"]) == (200, text_id)
    status, body = registry.post(f"/subjects/{subject}", {"schemaType": "PROTOBUF", "schema": b64, "references": refs})
    assert (status, body["version"]) == (200, 1)

    # A serializer that uses the latest (text) version, and a deserializer that loads it.
    serializer = ProtobufSerializer(cls, client, {"auto.register.schemas": False, "use.latest.version": True,
                                                   "skip.known.types": False})
    ctx = SerializationContext(topic, MessageField.VALUE)
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    sent = [make_order(cls, i) for i in range(2)]
    for o in sent:
        producer.produce(topic, value=serializer(o, ctx))
    assert producer.flush(30) == 0
    got = consume(broker, topic, len(sent), ProtobufDeserializer(cls, {}, schema_registry_client=client), ctx)
    assert [g for _, g in got] == sent
    assert {sid for sid, _ in got} == {text_id}

    # Compatibility between the text (stored) and a descriptor (candidate).
    bad = order_class(order_file(id_type=F.TYPE_DOUBLE))
    bad_b64 = base64.b64encode(bad.DESCRIPTOR.file.serialized_pb).decode()
    status, body = registry.post(f"/compatibility/subjects/{subject}/versions/latest?verbose=true",
                                 {"schemaType": "PROTOBUF", "schema": bad_b64, "references": refs})
    assert status == 200 and body["is_compatible"] is False
    assert any("FIELD_SCALAR_KIND_CHANGED" in m for m in body["messages"]), body
    # Removing a message is incompatible; under NONE it is accepted.
    gone = ORDER_PROTO.replace("message Order {", "message Renamed {")
    status, body = registry.post(f"/subjects/{subject}/versions",
                                 {"schemaType": "PROTOBUF", "schema": gone, "references": refs})
    assert (status, body["error_code"]) == (409, 409)
    assert "MESSAGE_REMOVED" in body["message"]
    assert registry.put(f"/config/{subject}", {"compatibility": "NONE"})[0] == 200
    status, body = registry.post(f"/subjects/{subject}/versions",
                                 {"schemaType": "PROTOBUF", "schema": gone, "references": refs})
    assert status == 200, body
    # An unresolvable import and broken text are 42201.
    for bad_text in ['syntax = "proto3"; import "nope.proto"; message A {}', "message A {", "QUJD"]:
        status, body = registry.post("/subjects/broken/versions", {"schemaType": "PROTOBUF", "schema": bad_text})
        assert (status, body["error_code"]) == (422, 42201), bad_text


def check(registry, subject, schema, level="BACKWARD"):
    """Registers v1 (`schema[0]`) under `level`, then asks whether `schema[1]` is compatible."""
    assert registry.put(f"/config/{subject}", {"compatibility": level})[0] == 200
    status, body = registry.post(f"/subjects/{subject}/versions",
                                 {"schemaType": "JSON", "schema": json.dumps(schema[0])})
    assert status == 200, body
    status, body = registry.post(f"/compatibility/subjects/{subject}/versions/latest?verbose=true",
                                 {"schemaType": "JSON", "schema": json.dumps(schema[1])})
    assert status == 200, body
    return body["is_compatible"], " ".join(body.get("messages", []))


def obj(props, closed=False, required=(), **extra):
    s = {"type": "object", "properties": props, **extra}
    if closed:
        s["additionalProperties"] = False
    if required:
        s["required"] = list(required)
    return s


S, I, N = {"type": "string"}, {"type": "integer"}, {"type": "number"}

# (name, v1, v2, level, compatible, the difference named when not)
JSON_CASES = [
    ("open-add", obj({"a": S}), obj({"a": S, "b": I}), "BACKWARD", False, "PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL"),
    ("open-remove", obj({"a": S, "b": I}), obj({"a": S}), "BACKWARD", True, ""),
    ("open-add-forward", obj({"a": S}), obj({"a": S, "b": I}), "FORWARD", True, ""),
    ("closed-add", obj({"a": S}, True), obj({"a": S, "b": I}, True), "BACKWARD", True, ""),
    ("closed-remove", obj({"a": S, "b": I}, True), obj({"a": S}, True), "BACKWARD", False,
     "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL"),
    ("closed-add-full", obj({"a": S}, True), obj({"a": S, "b": I}, True), "FULL", False,
     "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL"),
    ("required-added", obj({"a": S, "b": I}), obj({"a": S, "b": I}, required=["b"]), "BACKWARD", False,
     "REQUIRED_ATTRIBUTE_ADDED"),
    ("required-with-default", obj({"a": S, "b": I}), obj({"a": S, "b": {"type": "integer", "default": 0}},
                                                         required=["b"]), "BACKWARD", True, ""),
    ("required-removed", obj({"a": S}, required=["a"]), obj({"a": S}), "BACKWARD", True, ""),
    ("int-to-number", obj({"a": I}), obj({"a": N}), "BACKWARD", True, ""),
    ("number-to-int", obj({"a": N}), obj({"a": I}), "BACKWARD", False, "TYPE_CHANGED"),
    ("type-change", obj({"a": S}), obj({"a": I}), "BACKWARD", False, "TYPE_CHANGED"),
    ("enum-extended", {"enum": ["a", "b"]}, {"enum": ["a", "b", "c"]}, "BACKWARD", True, ""),
    ("enum-narrowed", {"enum": ["a", "b"]}, {"enum": ["a"]}, "BACKWARD", False, "ENUM_ARRAY_NARROWED"),
    ("max-tightened", {"type": "string", "maxLength": 10}, {"type": "string", "maxLength": 5}, "BACKWARD", False,
     "MAX_LENGTH_DECREASED"),
    ("min-loosened", {"type": "integer", "minimum": 5}, {"type": "integer", "minimum": 0}, "BACKWARD", True, ""),
    ("min-added", {"type": "integer"}, {"type": "integer", "minimum": 0}, "BACKWARD", False, "MINIMUM_ADDED"),
    ("items", {"type": "array", "items": I}, {"type": "array", "items": S}, "BACKWARD", False, "TYPE_CHANGED"),
    ("items-widened", {"type": "array", "items": I}, {"type": "array", "items": N}, "BACKWARD", True, ""),
    ("ref", obj({"a": {"$ref": "#/definitions/x"}}, definitions={"x": I}),
     obj({"a": {"$ref": "#/definitions/x"}}, definitions={"x": S}), "BACKWARD", False, "TYPE_CHANGED"),
    ("ref-to-inline", obj({"a": {"$ref": "#/definitions/x"}}, definitions={"x": I}), obj({"a": N}), "BACKWARD",
     True, ""),
]


def test_json_schema_compatibility_rules(registry):
    for name, v1, v2, level, compatible, difference in JSON_CASES:
        ok, messages = check(registry, f"json-{name}", (v1, v2), level)
        assert ok is compatible, (name, messages)
        assert difference in messages, (name, messages)
    # Registration enforces the same decision: 409 with Confluent's body.
    status, body = registry.post("/subjects/json-open-add/versions",
                                 {"schemaType": "JSON", "schema": json.dumps(obj({"a": S, "b": I}))})
    assert (status, body["error_code"]) == (409, 409)
    # The client's test_compatibility agrees.
    client = SchemaRegistryClient({"url": registry.url})
    assert client.test_compatibility("json-closed-add", Schema(json.dumps(obj({"a": S, "b": I}, True)), "JSON"))
    assert not client.test_compatibility("json-closed-remove", Schema(json.dumps(obj({"a": S}, True)), "JSON"))
