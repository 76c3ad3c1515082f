"""The schema registry (`gregor registry`) against real clients: confluent-kafka's
SchemaRegistryClient and Avro serializers through the broker, Confluent's REST error
bodies, and several registry processes sharing the `_schemas` topic (forwarding to the
primary, failover when the primary is killed, state rebuilt on restart)."""
import json
import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from conftest import wait_until
from registry import Registry

USER_V1 = json.dumps({
    "type": "record", "name": "User", "namespace": "gregor.test",
    "fields": [{"name": "name", "type": "string"}, {"name": "age", "type": "int"}],
})
# Adds a field with a default: backward compatible.
USER_V2 = json.dumps({
    "type": "record", "name": "User", "namespace": "gregor.test",
    "fields": [
        {"name": "name", "type": "string"}, {"name": "age", "type": "int"},
        {"name": "email", "type": ["null", "string"], "default": None},
    ],
})
# Adds a field without a default: new readers cannot read old data.
USER_BAD = json.dumps({
    "type": "record", "name": "User", "namespace": "gregor.test",
    "fields": [
        {"name": "name", "type": "string"}, {"name": "age", "type": "int"},
        {"name": "country", "type": "string"},
    ],
})


@pytest.fixture
def registry_factory(broker, tmp_path):
    started = []

    def make(name="registry"):
        r = Registry(broker.bootstrap, tmp_path / f"{name}.log")
        started.append(r)
        return r.start()

    yield make
    for r in started:
        r.kill9()


@pytest.fixture
def registry(registry_factory):
    return registry_factory()


def test_avro_round_trip_through_the_broker(broker, registry):
    client = SchemaRegistryClient({"url": registry.url})
    topic = "users-" + uuid.uuid4().hex[:8]
    serializer = AvroSerializer(client, USER_V1)
    deserializer = AvroDeserializer(client)
    users = [{"name": f"user{i}", "age": 20 + i} for i in range(5)]
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    for u in users:
        producer.produce(topic, value=serializer(u, SerializationContext(topic, MessageField.VALUE)))
    assert producer.flush(30) == 0
    # The serializer registered the schema under the topic's value subject.
    latest = client.get_latest_version(f"{topic}-value")
    assert latest.version == 1 and latest.schema_id >= 1
    consumer = Consumer({
        "bootstrap.servers": broker.bootstrap, "group.id": "g-" + topic,
        "auto.offset.reset": "earliest",
    })
    consumer.subscribe([topic])
    got = []
    deadline = time.monotonic() + 30
    while len(got) < len(users) and time.monotonic() < deadline:
        m = consumer.poll(0.5)
        if m is None or m.error():
            continue
        # Confluent's wire format: magic byte 0, then the 4-byte schema id.
        assert m.value()[0] == 0
        assert int.from_bytes(m.value()[1:5], "big") == latest.schema_id
        got.append(deserializer(m.value(), SerializationContext(topic, MessageField.VALUE)))
    consumer.close()
    assert got == users


def test_compatibility_versions_lookup_and_delete(registry):
    client = SchemaRegistryClient({"url": registry.url})
    subject = "orders-value"
    id1 = client.register_schema(subject, Schema(USER_V1, "AVRO"))
    assert client.register_schema(subject, Schema(USER_V1, "AVRO")) == id1
    id2 = client.register_schema(subject, Schema(USER_V2, "AVRO"))
    assert id2 > id1
    with pytest.raises(SchemaRegistryError) as e:
        client.register_schema(subject, Schema(USER_BAD, "AVRO"))
    assert e.value.http_status_code == 409 and e.value.error_code == 409
    assert client.test_compatibility(subject, Schema(USER_BAD, "AVRO")) is False
    assert client.test_compatibility(subject, Schema(USER_V2, "AVRO")) is True
    assert client.get_compatibility() == "BACKWARD"
    assert client.set_compatibility(subject, "NONE")["compatibility"] == "NONE"
    assert client.get_compatibility(subject) == "NONE"
    id3 = client.register_schema(subject, Schema(USER_BAD, "AVRO"))
    assert id3 > id2
    assert client.get_versions(subject) == [1, 2, 3]
    latest = client.get_latest_version(subject)
    assert (latest.version, latest.schema_id) == (3, id3)
    found = client.lookup_schema(subject, Schema(USER_V2, "AVRO"))
    assert (found.version, found.schema_id) == (2, id2)
    assert client.get_schema(id1).schema_str == USER_V1
    assert client.get_subjects() == [subject]

    assert client.delete_version(subject, 3) == 3
    assert client.get_versions(subject) == [1, 2]
    assert client.delete_subject(subject) == [1, 2]
    assert client.get_subjects() == []
    status, body = registry.get("/subjects?deleted=true")
    assert (status, body) == (200, [subject])
    # Soft-deleted schemas are still readable by id (old records still deserialize).
    assert registry.get(f"/schemas/ids/{id1}")[0] == 200
    assert registry.delete(f"/subjects/{subject}")[1]["error_code"] == 40404
    assert client.delete_subject(subject, permanent=True) == [1, 2, 3]
    assert registry.get("/subjects?deleted=true")[1] == []
    assert registry.get(f"/schemas/ids/{id1}")[1]["error_code"] == 40403
    # A schema registered afterwards never gets an id that was handed out before.
    id4 = client.register_schema("other-value", Schema('"string"', "AVRO"))
    assert id4 > id3


def test_error_bodies_types_config_and_mode(registry):
    v1 = {"schema": USER_V1}
    assert registry.post("/subjects/s/versions", v1) == (200, {"id": 1})
    for path, status, code in [
        ("/subjects/nope/versions", 404, 40401),
        ("/subjects/nope/versions/1", 404, 40401),
        ("/subjects/s/versions/7", 404, 40402),
        ("/schemas/ids/999", 404, 40403),
        ("/subjects/s/versions/abc", 422, 42202),
        ("/config/s", 404, 40408),
    ]:
        got_status, body = registry.get(path)
        assert (got_status, body["error_code"]) == (status, code), path
        assert body["message"]
    status, body = registry.post("/subjects/s/versions", {"schema": '{"type": "recrd"}'})
    assert (status, body["error_code"]) == (422, 42201)
    status, body = registry.post("/subjects/s", {"schema": '"int"'})
    assert (status, body["error_code"]) == (404, 40403)
    status, body = registry.post("/subjects/s/versions", {"schema": USER_BAD})
    assert (status, body["error_code"]) == (409, 409)
    status, body = registry.post(
        "/compatibility/subjects/s/versions/latest?verbose=true", {"schema": USER_BAD})
    assert status == 200 and body["is_compatible"] is False and body["messages"]
    assert registry.get("/") == (200, {})
    assert sorted(registry.get("/schemas/types")[1]) == ["AVRO", "JSON", "PROTOBUF"]
    assert registry.get("/subjects/s/versions/latest/schema") == (200, json.loads(USER_V1))
    assert registry.get("/schemas/ids/1/versions")[1] == [{"subject": "s", "version": 1}]

    assert registry.get("/config") == (200, {"compatibilityLevel": "BACKWARD"})
    assert registry.put("/config", {"compatibility": "FULL"}) == (200, {"compatibility": "FULL"})
    assert registry.get("/config/s?defaultToGlobal=true")[1] == {"compatibilityLevel": "FULL"}
    status, body = registry.put("/config", {"compatibility": "SIDEWAYS"})
    assert (status, body["error_code"]) == (422, 42203)

    # JSON Schema and Protobuf are accepted and stored.
    js = {"schemaType": "JSON", "schema": json.dumps({"type": "object", "properties": {"a": {"type": "string"}}})}
    status, body = registry.post("/subjects/j/versions", js)
    assert status == 200
    assert registry.get(f"/schemas/ids/{body['id']}")[1]["schemaType"] == "JSON"
    status, body = registry.post("/subjects/j/versions", {"schemaType": "JSON", "schema": "[1]"})
    assert (status, body["error_code"]) == (422, 42201)
    proto = {"schemaType": "PROTOBUF", "schema": 'syntax = "proto3"; message M { string a = 1; }'}
    assert registry.post("/subjects/p/versions", proto)[0] == 200
    # A field number that changes to a wire-incompatible type is refused.
    proto_bad = {"schemaType": "PROTOBUF", "schema": 'syntax = "proto3"; message M { double a = 1; }'}
    status, body = registry.post("/subjects/p/versions", proto_bad)
    assert (status, body["error_code"]) == (409, 409)

    assert registry.get("/mode") == (200, {"mode": "READWRITE"})
    assert registry.put("/mode", {"mode": "READONLY"}) == (200, {"mode": "READONLY"})
    status, body = registry.post("/subjects/s/versions", {"schema": USER_V2})
    assert (status, body["error_code"]) == (422, 42205)
    status, body = registry.put("/mode", {"mode": "WRITEONLY"})
    assert (status, body["error_code"]) == (422, 42204)
    assert registry.put("/mode", {"mode": "READWRITE"})[0] == 200
    assert registry.post("/subjects/s/versions", {"schema": USER_V2})[0] == 200


def primary_of(registries):
    """The registry that all of `registries` agree is the primary, or None."""
    views = [r.get("/v1/metadata/primary")[1] for r in registries]
    urls = {v["primary"] for v in views}
    if len(urls) != 1:
        return None
    for r, v in zip(registries, views):
        if v["is_primary"]:
            return r
    return None


def test_two_registries_forward_fail_over_and_rebuild(registry_factory, tmp_path):
    a = registry_factory("a")
    b = registry_factory("b")
    primary = wait_until(lambda: primary_of([a, b]), 60, "an agreed primary")
    other = b if primary is a else a

    # A write to the non-primary is forwarded, and readable from both at once.
    status, body = other.post("/subjects/fwd/versions", {"schema": USER_V1})
    assert status == 200, body
    first = body["id"]
    for r in (a, b):
        assert r.get("/subjects/fwd/versions") == (200, [1])
        assert r.get(f"/schemas/ids/{first}")[1]["schema"] == USER_V1
    status, body = other.put("/config/fwd", {"compatibility": "NONE"})
    assert status == 200
    assert primary.get("/config/fwd")[1] == {"compatibilityLevel": "NONE"}

    # Kill the primary: the survivor takes over once the group moves.
    primary.kill9()

    def write_on_survivor():
        status, body = other.post("/subjects/fwd/versions", {"schema": USER_BAD})
        return body if status == 200 else None

    second = wait_until(write_on_survivor, 90, "a write on the survivor", interval=0.2)["id"]
    assert second > first
    assert other.get("/v1/metadata/primary")[1]["is_primary"] is True

    # A new process rebuilds the same state from _schemas.
    c = registry_factory("c")
    assert c.get("/subjects/fwd/versions") == (200, [1, 2])
    assert c.get(f"/schemas/ids/{first}")[1]["schema"] == USER_V1
    assert c.get(f"/schemas/ids/{second}")[1]["schema"] == USER_BAD
    assert c.get("/config/fwd")[1] == {"compatibilityLevel": "NONE"}
    # Writes through the newcomer land too, with a fresh id.
    status, body = c.post("/subjects/fwd2/versions", {"schema": '"long"'})
    assert status == 200 and body["id"] > second


def test_restart_keeps_ids(registry):
    client = SchemaRegistryClient({"url": registry.url})
    ids = [client.register_schema(f"s{i}", Schema(USER_V1 if i % 2 else USER_V2, "AVRO")) for i in range(4)]
    registry.stop()
    registry.start()
    client = SchemaRegistryClient({"url": registry.url})
    for i, sid in enumerate(ids):
        assert client.get_latest_version(f"s{i}").schema_id == sid
    assert sorted(client.get_subjects()) == [f"s{i}" for i in range(4)]
    new_id = client.register_schema("fresh", Schema('"bytes"', "AVRO"))
    assert new_id > max(ids)


def test_references_and_json_schema_compatibility(registry):
    address = json.dumps({
        "type": "record", "name": "Address", "namespace": "gregor.test",
        "fields": [{"name": "city", "type": "string"}],
    })
    person = json.dumps({
        "type": "record", "name": "Person", "namespace": "gregor.test",
        "fields": [{"name": "home", "type": "Address"}, {"name": "work", "type": "gregor.test.Address"}],
    })
    status, body = registry.post("/subjects/address/versions", {"schema": address})
    assert status == 200
    # Without the reference the named type is unknown.
    status, body = registry.post("/subjects/person/versions", {"schema": person})
    assert (status, body["error_code"]) == (422, 42201)
    ref = [{"name": "gregor.test.Address", "subject": "address", "version": 1}]
    status, body = registry.post("/subjects/person/versions", {"schema": person, "references": ref})
    assert status == 200, body
    status, got = registry.get(f"/schemas/ids/{body['id']}")
    assert got["references"] == ref
    assert registry.get("/subjects/address/versions/1/referencedby")[1] == [body["id"]]
    # A referenced version cannot be deleted.
    status, body = registry.delete("/subjects/address/versions/1")
    assert (status, body["error_code"]) == (422, 42206)
    # The confluent client reads the references back.
    client = SchemaRegistryClient({"url": registry.url})
    assert client.get_latest_version("person").schema.references[0].subject == "address"

    # Closed content models (Confluent's rules): an optional property may be added, a
    # required one (without a default) may not. (More cases in test_registry_protobuf.py.)
    closed = {"additionalProperties": False}
    v1 = {"type": "object", "properties": {"a": {"type": "string"}}, **closed}
    v2 = {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}, "required": ["b"],
          **closed}
    v3 = {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}, **closed}
    assert registry.post("/subjects/js/versions", {"schemaType": "JSON", "schema": json.dumps(v1)})[0] == 200
    status, body = registry.post("/subjects/js/versions", {"schemaType": "JSON", "schema": json.dumps(v2)})
    assert (status, body["error_code"]) == (409, 409)
    assert registry.post("/subjects/js/versions", {"schemaType": "JSON", "schema": json.dumps(v3)})[0] == 200
    assert registry.get("/subjects/js/versions") == (200, [1, 2])


def test_concurrent_writes_through_two_registries_get_distinct_ids(registry_factory):
    from concurrent.futures import ThreadPoolExecutor

    a = registry_factory("a")
    b = registry_factory("b")
    wait_until(lambda: primary_of([a, b]), 60, "an agreed primary")

    def register(i):
        r = (a, b)[i % 2]
        schema = json.dumps({"type": "record", "name": f"R{i}", "fields": [{"name": "f", "type": "int"}]})
        return r.post(f"/subjects/c{i}/versions", {"schema": schema})

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(register, range(24)))
    assert all(status == 200 for status, _ in results), results
    ids = [body["id"] for _, body in results]
    assert len(set(ids)) == len(ids)
    for r in (a, b):
        assert sorted(r.get("/subjects")[1]) == sorted(f"c{i}" for i in range(24))
        for i, sid in enumerate(ids):
            assert r.get(f"/subjects/c{i}/versions/1")[1]["id"] == sid


def test_json_schema_serializer_round_trip_through_the_broker(broker, registry):
    """confluent-kafka's JSONSerializer registers a JSON Schema, validates and writes
    records through the broker; JSONDeserializer reads them back with the schema it
    fetches by id. A record that breaks the schema is refused by the serializer."""
    from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
    from confluent_kafka.serialization import SerializationError

    schema = json.dumps({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "Order", "type": "object",
        "properties": {"id": {"type": "integer"}, "item": {"type": "string"}},
        "required": ["id", "item"],
    })
    client = SchemaRegistryClient({"url": registry.url})
    topic = "orders-" + uuid.uuid4().hex[:8]
    ctx = SerializationContext(topic, MessageField.VALUE)
    serializer = JSONSerializer(schema, client)
    orders = [{"id": i, "item": f"item{i}"} for i in range(4)]
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    for o in orders:
        producer.produce(topic, value=serializer(o, ctx))
    assert producer.flush(30) == 0
    latest = client.get_latest_version(f"{topic}-value")
    assert latest.schema.schema_type == "JSON"
    with pytest.raises(SerializationError):
        serializer({"id": "not a number", "item": "x"}, ctx)

    deserializer = JSONDeserializer(None, schema_registry_client=client)
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "g-" + topic,
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    got = []
    deadline = time.monotonic() + 30
    while len(got) < len(orders) and time.monotonic() < deadline:
        m = consumer.poll(0.5)
        if m is None or m.error():
            continue
        assert int.from_bytes(m.value()[1:5], "big") == latest.schema_id
        got.append(deserializer(m.value(), ctx))
    consumer.close()
    assert got == orders
