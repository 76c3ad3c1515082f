"""Broker-side schema validation (`confluent.value.schema.validation` /
`confluent.key.schema.validation`, as Confluent Server names them): a confluent-kafka
producer with the registry's Avro serializer gets through; raw bytes, an unregistered
schema id and an id registered only under another subject are refused with
INVALID_RECORD; tombstones and topics without the config are untouched; the config can
be switched on and off at runtime."""
import json
import socket
import uuid

from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                   NewTopic)
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from conftest import wait_until
from registry import Registry

ORDER = json.dumps({"type": "record", "name": "Order", "namespace": "gregor.test",
                    "fields": [{"name": "id", "type": "long"}, {"name": "item", "type": "string"}]})
OTHER = json.dumps({"type": "record", "name": "Other", "namespace": "gregor.test",
                    "fields": [{"name": "x", "type": "int"}]})


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def deliver(producer, topic, value, key=None):
    """Produces one record and returns its delivery error (None when written)."""
    out = []
    producer.produce(topic, value=value, key=key, on_delivery=lambda err, msg: out.append(err))
    assert producer.flush(30) == 0
    return out[0]


def test_validated_topic_accepts_registered_schemas_only(broker_factory, tmp_path):
    port = free_port()
    b = broker_factory({"confluent.schema.registry.url": f"http://127.0.0.1:{port}"})
    reg = Registry(b.bootstrap, tmp_path / "registry.log", port=port).start()
    try:
        topic = "orders-" + uuid.uuid4().hex[:6]
        free = "free-" + uuid.uuid4().hex[:6]
        admin = AdminClient({"bootstrap.servers": b.bootstrap})
        futures = admin.create_topics([
            NewTopic(topic, 1, 1, config={"confluent.value.schema.validation": "true"}),
            NewTopic(free, 1, 1),
        ])
        for f in futures.values():
            f.result(30)

        client = SchemaRegistryClient({"url": reg.url})
        serializer = AvroSerializer(client, ORDER)
        ctx = SerializationContext(topic, MessageField.VALUE)
        p = Producer({"bootstrap.servers": b.bootstrap, "retries": 0})
        orders = [{"id": i, "item": f"item{i}"} for i in range(3)]
        for o in orders:
            assert deliver(p, topic, serializer(o, ctx)) is None
        schema_id = client.get_latest_version(f"{topic}-value").schema_id

        # Not the wire format at all.
        err = deliver(p, topic, b"plain text")
        assert err is not None and err.code() == KafkaError.INVALID_RECORD, err
        # The wire format, but an id nobody registered.
        err = deliver(p, topic, b"\x00" + (999_999).to_bytes(4, "big") + b"payload")
        assert err is not None and err.code() == KafkaError.INVALID_RECORD, err
        # A real id, registered only under another subject.
        other_id = client.register_schema("elsewhere-value", Schema(OTHER, "AVRO"))
        assert other_id != schema_id
        err = deliver(p, topic, b"\x00" + other_id.to_bytes(4, "big") + b"\x02")
        assert err is not None and err.code() == KafkaError.INVALID_RECORD, err
        # A tombstone carries no schema and is accepted; keys are not validated here.
        assert deliver(p, topic, None, key=b"gone") is None
        # Once the id is registered under this topic's subject it is accepted.
        client.set_compatibility(subject_name=f"{topic}-value", level="NONE")
        client.register_schema(f"{topic}-value", Schema(OTHER, "AVRO"))
        assert deliver(p, topic, b"\x00" + other_id.to_bytes(4, "big") + b"\x02") is None
        # A topic without the config takes anything.
        assert deliver(p, free, b"plain text") is None

        # Switched on at runtime (the key variant too), and off again.
        res = ConfigResource(ConfigResource.Type.TOPIC, free, incremental_configs=[
            ConfigEntry("confluent.key.schema.validation", "true",
                        incremental_operation=AlterConfigOpType.SET)])
        admin.incremental_alter_configs([res])[res].result(30)
        wait_until(lambda: (e := deliver(p, free, b"v", key=b"raw key")) is not None
                   and e.code() == KafkaError.INVALID_RECORD, what="key validation on")
        res = ConfigResource(ConfigResource.Type.TOPIC, free, incremental_configs=[
            ConfigEntry("confluent.key.schema.validation", None,
                        incremental_operation=AlterConfigOpType.DELETE)])
        admin.incremental_alter_configs([res])[res].result(30)
        wait_until(lambda: deliver(p, free, b"v", key=b"raw key") is None, what="key validation off")

        # Only what was accepted is in the log, and it deserializes.
        deserializer = AvroDeserializer(client)
        c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "v-" + topic,
                      "auto.offset.reset": "earliest"})
        c.subscribe([topic])
        got = []
        wait_until(lambda: got.extend(m for m in [c.poll(0.2)] if m is not None and not m.error())
                   or len(got) >= 5, timeout=30, what="the accepted records")
        c.close()
        assert len(got) == 5
        assert [deserializer(m.value(), ctx) for m in got[:3]] == orders
        assert got[3].value() is None and got[3].key() == b"gone"
        assert got[4].value()[1:5] == other_id.to_bytes(4, "big")
    finally:
        reg.kill9()


def test_validation_without_a_reachable_registry_appends_nothing(broker_factory):
    # The registry URL points at a closed port: records are refused with a retriable
    # error (nothing appended), never accepted unchecked.
    b = broker_factory({"confluent.schema.registry.url": f"http://127.0.0.1:{free_port()}"})
    topic = "orders-" + uuid.uuid4().hex[:6]
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1, config={
        "confluent.value.schema.validation": "true"})])[topic].result(30)
    p = Producer({"bootstrap.servers": b.bootstrap, "message.timeout.ms": 3000})
    err = deliver(p, topic, b"\x00\x00\x00\x00\x01x")
    assert err is not None and err.code() in (KafkaError.REQUEST_TIMED_OUT, KafkaError._MSG_TIMED_OUT), err
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "none",
                  "auto.offset.reset": "earliest"})
    lo, hi = c.get_watermark_offsets(__import__("confluent_kafka").TopicPartition(topic, 0), timeout=10)
    c.close()
    assert (lo, hi) == (0, 0)
