"""Client quotas with real clients: set with kafka-python's own AlterClientQuotas codec
and with `gregor quota`, enforced on confluent-kafka producers and consumers (the broker
reports throttle_time_ms, librdkafka's throttle_cb sees it, and the throughput of the
quota'd client id is held near its quota while another client id is not throttled), and
the per-IP connection creation rate closing connections over it.

Timings are only lower bounds implied by the quota itself (bytes / rate, less the
measurement window), which a slow machine can only make longer.
"""
import json
import socket
import struct
import subprocess
import time

from confluent_kafka import Consumer, Producer
from kafka import KafkaAdminClient
from kafka.protocol.admin import AlterClientQuotasRequest, DescribeClientQuotasRequest

from conftest import BIN, wait_until

# Two one-second samples: the quota is measured over ~2 s, so tests stay short.
QUOTA_WINDOW = {"quota.window.num": "2", "quota.window.size.seconds": "1"}
RATE = 50_000  # bytes per second
PAYLOAD = b"q" * 1000
COUNT = 250  # 250 KB: five seconds' worth at RATE


def gregor_quota(b, *args, check=True):
    r = subprocess.run([BIN, "quota", *args, "-b", b.bootstrap, "--output", "json"],
                       capture_output=True, text=True, timeout=30)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def listed(b):
    r = gregor_quota(b, "list")
    return {(e["entity"], e["key"]): e["value"] for e in json.loads(r.stdout)}


def kp_alter(admin, entity, ops, validate_only=False):
    E = AlterClientQuotasRequest.EntryData
    req = AlterClientQuotasRequest(
        entries=[E(entity=[E.EntityData(entity_type=t, entity_name=n) for t, n in entity],
                   ops=[E.OpData(key=k, value=float(v or 0), remove=v is None) for k, v in ops])],
        validate_only=validate_only)
    return admin._manager.run(admin._manager.send, req)


def kp_describe(admin, components, strict=False):
    C = DescribeClientQuotasRequest.ComponentData
    req = DescribeClientQuotasRequest(
        components=[C(entity_type=t, match_type=m, match=n) for t, m, n in components],
        strict=strict)
    return admin._manager.run(admin._manager.send, req)


def test_kafka_python_alters_and_describes_quotas(broker):
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        resp = kp_alter(admin, [("user", "alice"), ("client-id", "etl")],
                        [("producer_byte_rate", 1024), ("request_percentage", 50)])
        assert [e.error_code for e in resp.entries] == [0]
        resp = kp_alter(admin, [("client-id", None)], [("consumer_byte_rate", 2048)])
        assert [e.error_code for e in resp.entries] == [0]
        # validate_only checks and changes nothing.
        resp = kp_alter(admin, [("client-id", "dry")], [("producer_byte_rate", 1)], validate_only=True)
        assert [e.error_code for e in resp.entries] == [0]
        # Kafka's checks: byte rates are integral; ip cannot combine with user; an
        # unknown key is refused. Each is INVALID_REQUEST (42) on that entry.
        for entity, ops in [
            ([("client-id", "x")], [("producer_byte_rate", 1.5)]),
            ([("user", "u"), ("ip", "1.2.3.4")], [("connection_creation_rate", 3)]),
            ([("client-id", "x")], [("no_such_quota", 3)]),
        ]:
            resp = kp_alter(admin, entity, ops)
            assert [e.error_code for e in resp.entries] == [42], (entity, ops)

        # Exact match on alice, strict: only the user+client-id entity is not returned.
        resp = kp_describe(admin, [("user", 0, "alice")], strict=True)
        assert resp.error_code == 0 and resp.entries == []
        resp = kp_describe(admin, [("user", 0, "alice")])
        assert len(resp.entries) == 1
        values = {v.key: v.value for v in resp.entries[0].values}
        assert values == {"producer_byte_rate": 1024.0, "request_percentage": 50.0}
        # The default client id's entity matches "default" (match_type 1).
        resp = kp_describe(admin, [("client-id", 1, None)])
        assert [{v.key: v.value for v in e.values} for e in resp.entries] == [{"consumer_byte_rate": 2048.0}]
        assert resp.entries[0].entity[0].entity_name is None

        # Removing the last key removes the entity.
        resp = kp_alter(admin, [("client-id", None)], [("consumer_byte_rate", None)])
        assert [e.error_code for e in resp.entries] == [0]
        resp = kp_describe(admin, [("client-id", 1, None)])
        assert resp.entries == []
    finally:
        admin.close()
    # The CLI reads back what kafka-python wrote, and the quotas outlive a restart
    # (they are records in the metadata log).
    broker.restart()
    assert listed(broker) == {
        ("user=alice,client-id=etl", "producer_byte_rate"): 1024.0,
        ("user=alice,client-id=etl", "request_percentage"): 50.0,
    }


def produce_all(bootstrap, client_id, throttles):
    p = Producer({"bootstrap.servers": bootstrap, "client.id": client_id,
                  "linger.ms": 5, "batch.size": 16384,
                  "throttle_cb": lambda ev: throttles.append(ev.throttle_time)})
    acked = []
    start = time.monotonic()
    for i in range(COUNT):
        while True:
            try:
                p.produce("quota", PAYLOAD, key=str(i).encode(),
                          on_delivery=lambda err, msg: acked.append(err))
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    assert p.flush(120) == 0
    elapsed = time.monotonic() - start
    assert len(acked) == COUNT and all(e is None for e in acked)
    return elapsed


def test_producer_byte_rate_throttles_only_that_client(broker_factory):
    b = broker_factory(QUOTA_WINDOW)
    gregor_quota(b, "set", "--client-id", "slow", f"producer_byte_rate={RATE}")
    assert listed(b) == {("client-id=slow", "producer_byte_rate"): float(RATE)}

    throttled = []
    elapsed = produce_all(b.bootstrap, "slow", throttled)
    assert throttled and max(throttled) > 0, "the broker never reported a throttle"
    # 250 KB at 50 KB/s: the two-second window lets at most ~2 s of it through early.
    assert elapsed >= COUNT * len(PAYLOAD) / RATE - 2.5, elapsed

    free = []
    produce_all(b.bootstrap, "fast", free)
    assert all(t == 0 for t in free), free

    # Removing the quota stops the throttling at once.
    gregor_quota(b, "delete", "--client-id", "slow", "producer_byte_rate")
    assert listed(b) == {}
    after = []
    produce_all(b.bootstrap, "slow", after)
    assert all(t == 0 for t in after[1:]), after


def test_consumer_byte_rate_throttles_fetch_and_loses_nothing(broker_factory):
    b = broker_factory(QUOTA_WINDOW)
    produce_all(b.bootstrap, "loader", [])
    gregor_quota(b, "set", "--client-id", "reader", f"consumer_byte_rate={RATE}")

    throttled = []
    c = Consumer({"bootstrap.servers": b.bootstrap, "client.id": "reader",
                  "group.id": "quota-readers", "auto.offset.reset": "earliest",
                  "fetch.max.bytes": 65536, "message.max.bytes": 10000,
                  "max.partition.fetch.bytes": 16384,
                  "throttle_cb": lambda ev: throttled.append(ev.throttle_time)})
    c.subscribe(["quota"])
    seen = set()
    start = time.monotonic()
    deadline = start + 120
    try:
        while len(seen) < COUNT and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and m.error() is None:
                assert m.value() == PAYLOAD
                seen.add(int(m.key()))
    finally:
        c.close()
    elapsed = time.monotonic() - start
    assert seen == set(range(COUNT)), f"got {len(seen)} of {COUNT}"
    assert throttled and max(throttled) > 0, "the broker never reported a throttle"
    assert elapsed >= COUNT * len(PAYLOAD) / RATE - 2.5, elapsed


def api_versions_roundtrip(port):
    """One raw ApiVersions v0 on a fresh connection: True if answered, False if the
    broker closed the connection instead."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        body = struct.pack(">hhih", 18, 0, 1, 4) + b"test"
        s.sendall(struct.pack(">i", len(body)) + body)
        head = s.recv(4)
        return len(head) == 4
    except (ConnectionResetError, socket.timeout):
        return False
    finally:
        s.close()


def test_connection_creation_rate_per_ip_closes_the_excess(broker_factory):
    b = broker_factory(QUOTA_WINDOW)
    # Before the quota, every connection is served.
    assert all(api_versions_roundtrip(b.port) for _ in range(10))
    gregor_quota(b, "set", "--ip", "127.0.0.1", "connection_creation_rate=1")
    assert listed(b) == {("ip=127.0.0.1", "connection_creation_rate"): 1.0}
    results = [api_versions_roundtrip(b.port) for _ in range(10)]
    # One a second over a two-second window: most of ten quick connections are refused.
    assert results.count(False) >= 5, results
    # The admin connection that lifts the quota is itself under it (as in Kafka): it
    # gets through once the rate has decayed. Then ten quick connections all succeed.
    wait_until(lambda: gregor_quota(b, "delete", "--ip", "127.0.0.1", "connection_creation_rate",
                                    check=False).returncode == 0,
               timeout=30, what="the quota removed")
    assert all(api_versions_roundtrip(b.port) for _ in range(10))
