"""gregor-streams' AvroSerde against `gregor registry` and confluent-kafka's own Avro
serializers: the avro_orders example reads orders written by confluent-kafka's
AvroSerializer (with the original schema and with an evolved, backward-compatible one),
totals them per customer, and writes Avro that confluent-kafka's AvroDeserializer reads
back; the output schema is registered under the output topic's subject. A record that is
not Avro is skipped by the deserialization handler. Every wait is a condition with a
deadline. The same example with `--format json-schema` is checked with confluent-kafka's
JSONSerializer and JSONDeserializer."""
import json
import struct

import pytest
from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from conftest import wait_until
from registry import Registry
from test_streams import App, Reader, create_topics

ORDER_V1 = {
    "type": "record", "name": "Order", "namespace": "gregor.examples",
    "fields": [
        {"name": "order_id", "type": "string"},
        {"name": "customer", "type": "string"},
        {"name": "amount", "type": "double"},
    ],
}
# Backward compatible with V1 (a new field with a default): the registry accepts it, and
# the application, still reading with V1, skips the field by schema resolution.
ORDER_V2 = dict(ORDER_V1, fields=ORDER_V1["fields"] + [
    {"name": "coupon", "type": ["null", "string"], "default": None},
])
# What the example registers for its output (crates/streams/examples/avro_orders.rs).
CUSTOMER_TOTAL = {
    "type": "record", "name": "CustomerTotal", "namespace": "gregor.examples",
    "fields": [
        {"name": "customer", "type": "string"},
        {"name": "orders", "type": "long"},
        {"name": "total", "type": "double"},
        {"name": "last_order_id", "type": ["null", "string"], "default": None},
    ],
}


@pytest.fixture
def broker(broker_factory):
    """A broker that forms groups at once, so the application starts quickly."""
    return broker_factory({"group.initial.rebalance.delay.ms": "0"})


@pytest.fixture
def registry(broker, tmp_path):
    r = Registry(broker.bootstrap, tmp_path / "registry.log").start()
    yield r
    r.kill9()


ORDER_JSON = {
    "title": "Order", "type": "object",
    "properties": {"order_id": {"type": "string"}, "customer": {"type": "string"},
                   "amount": {"type": "number"}},
    "required": ["order_id", "customer", "amount"],
}
CUSTOMER_TOTAL_JSON = {
    "title": "CustomerTotal", "type": "object",
    "properties": {"customer": {"type": "string"}, "orders": {"type": "integer"},
                   "total": {"type": "number"}, "last_order_id": {"type": ["string", "null"]}},
    "required": ["customer", "orders", "total"],
}


@pytest.fixture
def start_app(broker, registry, tmp_path):
    """start_app(app_id, format) runs the example; it is killed at teardown if the test
    failed before stopping it."""
    apps = []

    def start(app_id, fmt="avro"):
        app = App(tmp_path, "avro_orders", [
            "--brokers", broker.bootstrap, "--schema-registry-url", registry.url,
            "--app-id", app_id, "--state-dir", str(tmp_path / "state"), "--format", fmt,
            "--commit-interval-ms", "200", "--session-timeout-ms", "6000",
        ]).start()
        apps.append(app)
        return app

    yield start
    for app in apps:
        if app.proc.poll() is None:
            app.kill9()


def expected_totals(orders):
    expected = {}
    for o in orders:
        n, total, _ = expected.get(o["customer"], (0, 0.0, None))
        expected[o["customer"]] = (n + 1, total + o["amount"], o["order_id"])
    return expected


def produce_orders(bootstrap, client, schema, orders, ser_class=AvroSerializer):
    ser = ser_class(json.dumps(schema), client) if ser_class is JSONSerializer \
        else ser_class(client, json.dumps(schema))
    ctx = SerializationContext("orders-avro", MessageField.VALUE)
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for o in orders:
        # Keyed by customer: a customer's orders stay in order (one input partition), so
        # its last order is known.
        p.produce("orders-avro", key=o["customer"].encode(), value=ser(o, ctx))
    assert p.flush(30) == 0


def test_avro_orders_with_confluent_serializers_and_schema_evolution(broker, registry, start_app):
    create_topics(broker.bootstrap, ["orders-avro", "customer-totals"], 2)
    app = start_app("avro-totals")
    client = SchemaRegistryClient({"url": registry.url})

    customers = ["ann", "bob", "cy"]
    v1 = [{"order_id": f"o{i}", "customer": customers[i % 3], "amount": 1.5 * (i + 1)}
          for i in range(12)]
    v2 = [{"order_id": f"o{i}", "customer": customers[i % 3], "amount": 0.25 * i,
           "coupon": "SPRING" if i % 2 else None} for i in range(12, 18)]
    produce_orders(broker.bootstrap, client, ORDER_V1, v1)
    # Not Confluent-framed: skipped (the example runs with log-and-continue), not fatal.
    p = Producer({"bootstrap.servers": broker.bootstrap})
    p.produce("orders-avro", key=b"junk", value=b"not avro")
    assert p.flush(30) == 0
    produce_orders(broker.bootstrap, client, ORDER_V2, v2)
    versions = client.get_versions("orders-avro-value")
    assert len(versions) == 2, versions

    expected = expected_totals(v1 + v2)

    deser = AvroDeserializer(client)
    ctx = SerializationContext("customer-totals", MessageField.VALUE)
    reader = Reader(broker.bootstrap, "customer-totals")

    def updates():
        out = {}
        for _, _, k, v in sorted(reader.poll(), key=lambda r: (r[0], r[1])):
            assert v[0] == 0, v  # Confluent framing
            out.setdefault(k.decode(), []).append(deser(v, ctx))
        return out

    def finals():
        return {c: (vals[-1]["orders"], vals[-1]["total"], vals[-1]["last_order_id"])
                for c, vals in updates().items()}

    wait_until(lambda: app.alive() and finals() == expected, 40, "final totals per customer")
    # No failure: each customer's running total was written once per order, in order.
    for customer, vals in updates().items():
        assert [v["orders"] for v in vals] == list(range(1, expected[customer][0] + 1))
        assert all(v["customer"] == customer for v in vals)

    # The output schema is registered under <topic>-value, as the example gives it, and
    # every output record carries its id.
    latest = client.get_latest_version("customer-totals-value")
    assert json.loads(latest.schema.schema_str) == CUSTOMER_TOTAL
    assert latest.schema.schema_type == "AVRO"
    ids = {struct.unpack(">I", v[1:5])[0] for _, _, _, v in reader.records}
    assert ids == {latest.schema_id}
    # The repartition topic's values are Avro too, under the internal topic's subject.
    assert "avro-totals-orders-by-customer-repartition-value" in client.get_subjects()

    app.stop()
    assert "skipping a record that cannot be deserialized" in app.text()
    reader.close()


def test_json_schema_orders_with_confluent_serializers(broker, registry, start_app):
    create_topics(broker.bootstrap, ["orders-avro", "customer-totals"], 2)
    app = start_app("json-totals", "json-schema")
    client = SchemaRegistryClient({"url": registry.url})
    # The schema leaves additional properties open: `coupon` is written and ignored.
    orders = [{"order_id": f"o{i}", "customer": ["ann", "bob"][i % 2], "amount": 0.5 * i,
               "coupon": "X"} for i in range(10)]
    produce_orders(broker.bootstrap, client, ORDER_JSON, orders, JSONSerializer)
    expected = expected_totals(orders)
    deser = JSONDeserializer(None, schema_registry_client=client)
    ctx = SerializationContext("customer-totals", MessageField.VALUE)
    reader = Reader(broker.bootstrap, "customer-totals")

    def finals():
        out = {}
        for _, _, k, v in sorted(reader.poll(), key=lambda r: (r[0], r[1])):
            t = deser(v, ctx)
            out[k.decode()] = (t["orders"], t["total"], t["last_order_id"])
        return out

    wait_until(lambda: app.alive() and finals() == expected, 40, "final totals per customer")
    latest = client.get_latest_version("customer-totals-value")
    assert latest.schema.schema_type == "JSON"
    assert json.loads(latest.schema.schema_str) == CUSTOMER_TOTAL_JSON
    ids = {struct.unpack(">I", v[1:5])[0] for _, _, _, v in reader.records}
    assert ids == {latest.schema_id}
    app.stop()
    reader.close()
