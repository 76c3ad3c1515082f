"""gregor connect's schema-registry converters (io.confluent.connect.avro.AvroConverter,
io.confluent.connect.json.JsonSchemaConverter, io.confluent.connect.protobuf.
ProtobufConverter) against `gregor registry`, checked with confluent-kafka's own
serializers and deserializers: what the worker writes, Confluent's clients read, and what
they write, the worker reads. Protobuf message classes are built at run time from
descriptors (no protoc). Every wait is a condition with a deadline."""
import base64
import json
import uuid

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.message_factory import GetMessageClass

from conftest import wait_until
from connect_worker import ConnectWorker, distributed_props
from registry import Registry

AVRO = "io.confluent.connect.avro.AvroConverter"
JSON_SCHEMA = "io.confluent.connect.json.JsonSchemaConverter"
PROTOBUF = "io.confluent.connect.protobuf.ProtobufConverter"


@pytest.fixture
def registry(broker, tmp_path):
    r = Registry(broker.bootstrap, tmp_path / "registry.log").start()
    yield r
    r.kill9()


@pytest.fixture
def broker(broker_factory):
    """A broker that forms groups at once, so a distributed worker is quick to start."""
    return broker_factory({"group.initial.rebalance.delay.ms": "0"})


@pytest.fixture
def worker_factory(broker, tmp_path):
    """make(distributed) starts a standalone worker, or a one-worker Connect group."""
    workers = []

    def make(distributed=False):
        d = tmp_path / f"worker{len(workers)}"
        d.mkdir()
        props = distributed_props(f"connect-{uuid.uuid4().hex[:8]}") if distributed else None
        w = ConnectWorker(broker.bootstrap, d, props).start()
        workers.append(w)
        return w

    yield make
    for w in workers:
        w.kill9()


@pytest.fixture
def worker(worker_factory):
    return worker_factory()


@pytest.fixture
def pg():
    from pg_cluster import PgCluster
    cluster = PgCluster().start()
    yield cluster
    cluster.stop()


def converters(cls, registry_url):
    return {"key.converter": cls, "key.converter.schema.registry.url": registry_url,
            "value.converter": cls, "value.converter.schema.registry.url": registry_url}


def consume(bootstrap, topic, count, timeout=30.0):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"t-{uuid.uuid4()}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "topic.metadata.refresh.interval.ms": 500})
    c.subscribe([topic])
    out = []
    try:
        wait_until(lambda: out.extend(m for m in c.consume(num_messages=100, timeout=0.2)
                                      if m.error() is None) or len(out) >= count,
                   timeout, f"{count} records on {topic}")
    finally:
        c.close()
    return out


APPLE = {"id": 1, "name": "apple", "qty": 10, "ok": True}
PEAR = {"id": 2, "name": "pear", "qty": 5, "ok": False}


def test_cdc_source_through_each_converter_reads_back_with_confluent_deserializers(
        worker, broker, registry, pg):
    """One table captured three times (a slot each): with the Avro, the JSON Schema and
    the Protobuf converter; each topic is read with confluent-kafka's deserializer."""
    pg.sql("CREATE TABLE items (id int PRIMARY KEY, name text, qty bigint, ok boolean)")
    pg.sql("INSERT INTO items VALUES (1, 'apple', 10, true)")
    for prefix, cls in [("pg", AVRO), ("pgj", JSON_SCHEMA), ("pgp", PROTOBUF)]:
        worker.create(f"cdc-{prefix}", dict(converters(cls, registry.url), **{
            "connector.class": "PostgresCdcSource", "connection.url": pg.url,
            "connection.user": "postgres", "topic.prefix": prefix, "slot.name": f"{prefix}_slot",
            "publication.name": f"{prefix}_pub", "table.include.list": "public.items",
            "poll.interval.ms": "50"}))
    for prefix in ["pg", "pgj", "pgp"]:
        wait_until(lambda: worker.get(f"/connectors/cdc-{prefix}/offsets").json()["offsets"], 30,
                   f"{prefix} snapshot stored")
    pg.sql("INSERT INTO items VALUES (2, 'pear', 5, false)")
    pg.sql("UPDATE items SET qty = 11 WHERE id = 1")
    pg.sql("DELETE FROM items WHERE id = 2")
    check_avro_cdc(broker, registry)
    check_json_schema_cdc(broker, registry)
    check_protobuf_cdc(broker, registry)


def check_avro_cdc(broker, registry):
    msgs = consume(broker.bootstrap, "pg.public.items", 5)

    client = SchemaRegistryClient({"url": registry.url})
    avro = AvroDeserializer(client)
    key_ctx = SerializationContext("pg.public.items", MessageField.KEY)
    value_ctx = SerializationContext("pg.public.items", MessageField.VALUE)
    events = [(avro(m.key(), key_ctx), avro(m.value(), value_ctx)) for m in msgs]
    assert [k for k, _ in events] == [{"id": 1}, {"id": 2}, {"id": 1}, {"id": 2}, {"id": 2}]
    assert [v and v["op"] for _, v in events] == ["r", "c", "u", "d", None]
    assert (events[0][1]["before"], events[0][1]["after"]) == (None, APPLE)
    assert events[1][1]["after"] == PEAR
    assert events[2][1]["after"] == dict(APPLE, qty=11)
    assert events[3][1]["before"]["id"] == 2 and events[3][1]["after"] is None
    src = events[1][1]["source"]
    assert (src["connector"], src["name"], src["db"], src["schema"], src["table"]) == (
        "postgresql", "pg", "postgres", "public", "items")
    assert src["lsn"] > 0 and src["txId"] > 0

    # Every record carries the id of the schema registered under <topic>-value.
    code, latest = registry.get("/subjects/pg.public.items-value/versions/latest")
    assert code == 200 and latest["version"] == 1
    assert {int.from_bytes(m.value()[1:5], "big") for m in msgs if m.value()} == {latest["id"]}
    schema = json.loads(latest["schema"])
    assert (schema["type"], schema["name"], schema["namespace"]) == ("record", "Envelope", "pg.public.items")
    assert schema["connect.name"] == "pg.public.items.Envelope"
    assert [f["name"] for f in schema["fields"]] == ["before", "after", "source", "op", "ts_ms"]
    before = schema["fields"][0]
    assert before["default"] is None and before["type"][0] == "null"
    row = before["type"][1]
    assert (row["type"], row["name"]) == ("record", "Value")
    assert [(f["name"], f["type"]) for f in row["fields"]] == [
        ("id", ["null", "int"]), ("name", ["null", "string"]), ("qty", ["null", "long"]),
        ("ok", ["null", "boolean"])]
    # The second use of the row record refers to it by name, as Avro requires.
    assert schema["fields"][1]["type"] == ["null", "pg.public.items.Value"]
    code, key = registry.get("/subjects/pg.public.items-key/versions/latest")
    assert code == 200 and json.loads(key["schema"])["fields"] == [
        {"name": "id", "type": ["null", "int"], "default": None}]


def check_json_schema_cdc(broker, registry):
    msgs = consume(broker.bootstrap, "pgj.public.items", 5)
    client = SchemaRegistryClient({"url": registry.url})
    js = JSONDeserializer(None, schema_registry_client=client)
    key_ctx = SerializationContext("pgj.public.items", MessageField.KEY)
    value_ctx = SerializationContext("pgj.public.items", MessageField.VALUE)
    events = [(js(m.key(), key_ctx), m.value() and js(m.value(), value_ctx)) for m in msgs]
    assert [k for k, _ in events] == [{"id": 1}, {"id": 2}, {"id": 1}, {"id": 2}, {"id": 2}]
    assert [v and v["op"] for _, v in events] == ["r", "c", "u", "d", None]
    assert (events[0][1]["before"], events[0][1]["after"]) == (None, APPLE)
    assert events[1][1]["after"] == PEAR
    assert events[2][1]["after"] == dict(APPLE, qty=11)
    assert events[3][1]["after"] is None
    code, latest = registry.get("/subjects/pgj.public.items-value/versions/latest")
    assert code == 200 and latest["schemaType"] == "JSON"
    schema = json.loads(latest["schema"])
    assert (schema["type"], schema["title"]) == ("object", "pgj.public.items.Envelope")
    after = schema["properties"]["after"]
    assert after["connect.index"] == 1 and after["oneOf"][0] == {"type": "null"}
    assert after["oneOf"][1]["properties"]["qty"] == {
        "oneOf": [{"type": "null"}, {"type": "integer", "connect.type": "int64"}], "connect.index": 2}


def check_protobuf_cdc(broker, registry):
    msgs = consume(broker.bootstrap, "pgp.public.items", 5)
    key_cls = registered_class(registry, msgs[0].key(), "pgp.public.items.Key")
    value_cls = registered_class(registry, msgs[0].value(), "pgp.public.items.Envelope")
    keys = ProtobufDeserializer(key_cls, {"use.deprecated.format": False})
    values = ProtobufDeserializer(value_cls, {"use.deprecated.format": False})
    key_ctx = SerializationContext("pgp.public.items", MessageField.KEY)
    value_ctx = SerializationContext("pgp.public.items", MessageField.VALUE)
    events = [(keys(m.key(), key_ctx), m.value() and values(m.value(), value_ctx)) for m in msgs]
    assert [k.id for k, _ in events] == [1, 2, 1, 2, 2]
    assert [v and v.op for _, v in events] == ["r", "c", "u", "d", None]
    row = lambda m: {"id": m.id, "name": m.name, "qty": m.qty, "ok": m.ok}  # noqa: E731
    assert not events[0][1].HasField("before") and row(events[0][1].after) == APPLE
    assert row(events[1][1].after) == PEAR
    assert row(events[2][1].after) == dict(APPLE, qty=11)
    assert events[3][1].before.id == 2 and not events[3][1].HasField("after")
    assert events[1][1].source.table == "items" and events[1][1].source.lsn > 0
    code, latest = registry.get("/subjects/pgp.public.items-value/versions/latest")
    assert code == 200 and latest["schemaType"] == "PROTOBUF"
    assert "package pgp.public.items;" in latest["schema"]
    assert "message Envelope {" in latest["schema"]


def registered_class(registry, framed, full_name):
    """The message class of a framed record's writer schema, built from the registry's
    serialized descriptor (what generated code would be)."""
    schema_id = int.from_bytes(framed[1:5], "big")
    code, body = registry.get(f"/schemas/ids/{schema_id}?format=serialized")
    assert code == 200, body
    fd = descriptor_pb2.FileDescriptorProto.FromString(base64.b64decode(body["schema"]))
    fd.name = f"{full_name}.proto"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    return GetMessageClass(pool.FindMessageTypeByName(full_name))


F = descriptor_pb2.FieldDescriptorProto


def proto_classes():
    """shop.Key {int64 id} and shop.User {int64 id; string name; double score}, as
    generated code would define them."""
    fd = descriptor_pb2.FileDescriptorProto(name="shop/user.proto", package="shop", syntax="proto3")
    key = fd.message_type.add(name="Key")
    key.field.add(name="id", number=1, type=F.TYPE_INT64, label=F.LABEL_OPTIONAL)
    user = fd.message_type.add(name="User")
    user.field.add(name="id", number=1, type=F.TYPE_INT64, label=F.LABEL_OPTIONAL)
    user.field.add(name="name", number=2, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    user.field.add(name="score", number=3, type=F.TYPE_DOUBLE, label=F.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    return (GetMessageClass(pool.FindMessageTypeByName("shop.Key")),
            GetMessageClass(pool.FindMessageTypeByName("shop.User")))


def serializers(fmt, client):
    """(key serializer, value serializer, key maker, value maker) for a format."""
    if fmt == "avro":
        key = json.dumps({"type": "record", "name": "Key", "namespace": "shop",
                          "fields": [{"name": "id", "type": "long"}]})
        value = json.dumps({"type": "record", "name": "User", "namespace": "shop", "fields": [
            {"name": "id", "type": "long"}, {"name": "name", "type": "string"},
            {"name": "score", "type": "double"}]})
        return AvroSerializer(client, key), AvroSerializer(client, value), dict, dict
    if fmt == "json":
        key = json.dumps({"type": "object", "title": "shop.Key",
                          "properties": {"id": {"type": "integer"}}, "required": ["id"]})
        value = json.dumps({"type": "object", "title": "shop.User", "properties": {
            "id": {"type": "integer"}, "name": {"type": "string"}, "score": {"type": "number"}},
            "required": ["id", "name", "score"]})
        return JSONSerializer(key, client), JSONSerializer(value, client), dict, dict
    key_cls, user_cls = proto_classes()
    conf = {"skip.known.types": False}
    return (ProtobufSerializer(key_cls, client, conf), ProtobufSerializer(user_cls, client, conf),
            lambda d: key_cls(**d), lambda d: user_cls(**d))


@pytest.mark.parametrize("fmt,cls,distributed", [
    ("avro", AVRO, False), ("json", JSON_SCHEMA, False), ("protobuf", PROTOBUF, True)])
def test_postgres_sink_reads_confluent_serialized_records(fmt, cls, distributed, worker_factory, broker,
                                                           registry, pg):
    worker = worker_factory(distributed)
    client = SchemaRegistryClient({"url": registry.url})
    key_ser, value_ser, make_key, make_value = serializers(fmt, client)
    topic = f"users_{fmt}"
    key_ctx = SerializationContext(topic, MessageField.KEY)
    value_ctx = SerializationContext(topic, MessageField.VALUE)
    p = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all"})

    def send(rows):
        for key, value in rows:
            p.produce(topic, key=key_ser(make_key(key), key_ctx),
                      value=None if value is None else value_ser(make_value(value), value_ctx))
        assert p.flush(30) == 0

    send([({"id": 1}, {"id": 1, "name": "ann", "score": 1.5}),
          ({"id": 2}, {"id": 2, "name": "bob", "score": 2.0}),
          ({"id": 3}, {"id": 3, "name": "it's", "score": 0.0}),
          ({"id": 1}, {"id": 1, "name": "ann2", "score": 3.0}),
          ({"id": 2}, None)])
    # In distributed mode the worker accepts the config once it has joined its group.
    wait_until(lambda: worker.get("/connectors").status_code == 200, 30, "worker serving")
    worker.create("pgsink", dict(converters(cls, registry.url), **{
        "connector.class": "PostgresSink", "connection.url": pg.url, "connection.user": "postgres",
        "topics": topic, "insert.mode": "upsert", "pk.mode": "record_key",
        "delete.enabled": "true", "auto.create": "true", "table.name.format": "app_users"}))
    expected = [["1", "ann2", "3"], ["3", "it's", "0"]]
    wait_until(lambda: table(pg) == expected, 30, "upserted and deleted rows")
    send([({"id": 4}, {"id": 4, "name": "dan", "score": 4.25})])
    wait_until(lambda: table(pg) == expected + [["4", "dan", "4.25"]], 30, "a later row")
    # A distributed worker publishes task status through its status topic: it catches up.
    wait_until(lambda: worker.task_states("pgsink") == ["RUNNING"], 30, "task RUNNING")


def table(pg):
    try:
        return pg.sql("SELECT id, name, score FROM app_users ORDER BY id")
    except AssertionError:
        return None


def test_unframed_records_go_to_the_dlq_or_fail_the_task(worker, broker, registry, tmp_path):
    client = SchemaRegistryClient({"url": registry.url})
    ser = AvroSerializer(client, '"string"')
    ctx = SerializationContext("mixed", MessageField.VALUE)
    p = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all"})
    for v in [ser("first", ctx), b"not framed", b"\x00\x00\x00", ser("last", ctx)]:
        p.produce("mixed", value=v)
    assert p.flush(30) == 0
    out = tmp_path / "out.txt"
    worker.create("tolerant", {
        "connector.class": "FileStreamSink", "file": str(out), "topics": "mixed",
        "value.converter": AVRO, "value.converter.schema.registry.url": registry.url,
        "errors.tolerance": "all", "errors.deadletterqueue.topic.name": "mixed-dlq",
        "errors.deadletterqueue.context.headers.enable": "true"})
    wait_until(lambda: out.exists() and out.read_text().splitlines() == ["first", "last"], 30,
               "the two good records in the file")
    dlq = consume(broker.bootstrap, "mixed-dlq", 2)
    assert [m.value() for m in dlq] == [b"not framed", b"\x00\x00\x00"]
    headers = {k: v.decode() for k, v in dlq[0].headers()}
    assert headers["__connect.errors.stage"] == "VALUE_CONVERTER"
    assert headers["__connect.errors.exception.class.name"] == "org.apache.kafka.connect.errors.DataException"
    assert "Unknown magic byte" in headers["__connect.errors.exception.message"]
    assert worker.task_states("tolerant") == ["RUNNING"]

    strict = tmp_path / "strict.txt"
    worker.create("strict", {
        "connector.class": "FileStreamSink", "file": str(strict), "topics": "mixed",
        "value.converter": AVRO, "value.converter.schema.registry.url": registry.url})
    wait_until(lambda: worker.task_states("strict") == ["FAILED"], 30, "task FAILED")
    trace = worker.status("strict")["tasks"][0]["trace"]
    assert "Tolerance exceeded in error handler" in trace
    assert "Unknown magic byte" in trace
    # The failed batch is not delivered (as in Kafka Connect), and no offset is
    # committed past the bad record.
    assert "framed" not in (strict.read_text() if strict.exists() else "")
    assert worker.get("/connectors/strict/offsets").json() == {"offsets": []}
