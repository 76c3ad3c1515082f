"""DescribeTopicPartitions (KIP-966), ListConfigResources (KIP-1142) and client telemetry
(KIP-714) with unmodified clients: kafka-python's admin client for the first two and for
the client-metrics subscription, librdkafka (confluent-kafka) for GetTelemetrySubscriptions
and PushTelemetry.

Pushed telemetry is visible through DescribeConfigs on the subscription: naming the
read-only `gregor.telemetry.pushes` entry returns how many pushes the clients matched by
it made (the broker keeps each client's latest payload)."""
import logging

import pytest
from confluent_kafka import Consumer, Producer
from kafka.admin import ConfigResource, KafkaAdminClient, NewTopic
from kafka.errors import UnsupportedVersionError

from conftest import wait_until

PUSHES = "gregor.telemetry.pushes"
INSTANCES = "gregor.telemetry.client.instances"


class Captured(logging.Handler):
    """librdkafka's log lines (it logs through a Python logger when given one)."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def rdkafka_logger(name):
    handler = Captured()
    logger = logging.getLogger(name)
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    return logger, handler


def answered(client, captured):
    """True once librdkafka has logged its GetTelemetrySubscriptions answer; its log lines
    reach the Python logger only from poll(), so this polls."""
    client.poll(0.1)
    return any("Handled GetTelemetrySubscriptions" in line for line in captured.lines)


def test_describe_topic_partitions_pages_through_every_partition(broker_factory):
    # The broker caps every page at 10 partitions, below what the client asks for.
    broker = broker_factory({"max.request.partition.size.limit": "10"})
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    admin.create_topics([
        NewTopic("big", num_partitions=25, replication_factor=1),
        NewTopic("small", num_partitions=3, replication_factor=1),
    ])
    seen, pages, cursor = [], 0, None
    while True:
        page = admin.describe_topic_partitions(
            ["small", "big", "missing"], response_partition_limit=100, cursor=cursor)
        pages += 1
        got = sum(len(t["partitions"]) for t in page["topics"] if t["error_code"] == 0)
        assert got <= 10, page
        for t in page["topics"]:
            if t["name"] == "missing":
                assert t["error_code"] == 3 and not t["partitions"]
                continue
            assert t["error_code"] == 0 and t["topic_id"]
            for p in t["partitions"]:
                assert p["leader_id"] == 1 and p["replica_nodes"] == [1] and p["isr_nodes"] == [1]
                assert not p["eligible_leader_replicas"] and not p["offline_replicas"]
                seen.append((t["name"], p["partition_index"]))
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert pages < 10, "the cursor does not advance"
    # Name order, each partition once: 25 of "big" then 3 of "small", ten at a time.
    assert seen == [("big", i) for i in range(25)] + [("small", i) for i in range(3)]
    assert pages == 3

    # A cursor on a topic that is not asked for: INVALID_REQUEST for every topic.
    bad = admin.describe_topic_partitions(
        ["big"], cursor={"topic_name": "small", "partition_index": 0})
    assert [(t["name"], t["error_code"]) for t in bad["topics"]] == [("big", 42)]
    # An empty list is every topic; the client's own limit applies when it is lower.
    first = admin.describe_topic_partitions([], response_partition_limit=4)
    assert [(t["name"], len(t["partitions"])) for t in first["topics"]] == [("big", 4)]
    assert first["next_cursor"] == {"topic_name": "big", "partition_index": 4}
    admin.close()


def test_list_config_resources(broker):
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    admin.create_topics([NewTopic("listed", num_partitions=1, replication_factor=1)])
    assert admin.list_config_resources(["CLIENT_METRICS"]) == {}
    admin.alter_configs(
        [ConfigResource("CLIENT_METRICS", "sub-a", {"metrics": "org.apache.kafka.producer."})],
        raise_on_unknown=False, incremental=True)
    everything = admin.list_config_resources()
    assert everything == {
        "client_metrics": ["sub-a"],
        "broker_logger": ["1"],
        "broker": ["1"],
        "topic": ["listed"],
    }
    assert admin.list_config_resources(["TOPIC", "BROKER"]) == {"broker": ["1"], "topic": ["listed"]}
    # A type the broker cannot list (UNKNOWN, 0) is refused whole, as Kafka refuses it.
    with pytest.raises(UnsupportedVersionError):
        admin.list_config_resources(["UNKNOWN", "TOPIC"])
    admin.close()


def subscription_stat(admin, name, key):
    described = admin.describe_configs(
        [ConfigResource("CLIENT_METRICS", name, [key])], config_filter="all")
    return int(described["client_metrics"][name][key]["value"])


def test_librdkafka_pushes_telemetry_to_a_subscription(broker):
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    admin.create_topics([NewTopic("tel", num_partitions=1, replication_factor=1)])
    result = admin.alter_configs(
        [ConfigResource("CLIENT_METRICS", "producers", {
            "metrics": "org.apache.kafka.producer.",
            "interval.ms": "500",
            "match": "client_id=telemetry-.*",
        })],
        raise_on_unknown=False, incremental=True)
    assert result == {"client_metrics": {"producers": "OK"}}
    described = admin.describe_configs(
        [ConfigResource("CLIENT_METRICS", "producers")], config_filter="all")
    configs = {k: v["value"] for k, v in described["client_metrics"]["producers"].items()}
    assert configs == {
        "metrics": "org.apache.kafka.producer.",
        "interval.ms": "500",
        "match": "client_id=telemetry-.*",
    }
    # A bad interval is Kafka's INVALID_REQUEST and changes nothing.
    bad = admin.alter_configs(
        [ConfigResource("CLIENT_METRICS", "producers", {"interval.ms": "5"})],
        raise_on_unknown=False, incremental=True)
    assert "InvalidRequest" in repr(bad["client_metrics"]["producers"])

    logger, lines = rdkafka_logger("rdkafka.subscribed")
    p = Producer({"bootstrap.servers": broker.bootstrap, "client.id": "telemetry-app",
                  "debug": "telemetry", "logger": logger})
    delivered = []
    for i in range(20):
        p.produce("tel", b"v%d" % i, on_delivery=lambda err, msg: delivered.append(err))
    p.flush(30)
    assert delivered == [None] * 20
    wait_until(lambda: subscription_stat(admin, "producers", PUSHES) >= 2, 30,
               "two telemetry pushes from librdkafka")
    assert subscription_stat(admin, "producers", INSTANCES) == 1
    wait_until(lambda: answered(p, lines), 30, "the subscribed client's answer in its log")
    assert any("push interval 500" in line for line in lines.lines), lines.lines
    assert any("requested metrics count 1" in line for line in lines.lines), lines.lines

    # A client the subscription does not match is told to push nothing.
    other_logger, other_lines = rdkafka_logger("rdkafka.other")
    q = Producer({"bootstrap.servers": broker.bootstrap, "client.id": "unrelated",
                  "debug": "telemetry", "logger": other_logger})
    q.produce("tel", b"x")
    q.flush(30)
    wait_until(lambda: answered(q, other_lines), 30, "the unmatched client's subscription answer")
    assert any("requested metrics count 0" in line for line in other_lines.lines), other_lines.lines
    assert subscription_stat(admin, "producers", INSTANCES) == 1
    p.flush(5)
    admin.close()


def test_clients_without_a_subscription_still_work(broker):
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    admin.create_topics([NewTopic("plain", num_partitions=1, replication_factor=1)])
    logger, lines = rdkafka_logger("rdkafka.plain")
    p = Producer({"bootstrap.servers": broker.bootstrap, "debug": "telemetry", "logger": logger})
    for i in range(10):
        p.produce("plain", b"m%d" % i)
    assert p.flush(30) == 0
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "g",
                  "auto.offset.reset": "earliest"})
    c.subscribe(["plain"])
    got = []

    def more():
        m = c.poll(0.5)
        if m is not None and m.error() is None:
            got.append(m.value())
        return len(got) >= 10

    wait_until(more, 60, "ten records back")
    assert sorted(got) == sorted(b"m%d" % i for i in range(10))
    c.close()
    wait_until(lambda: answered(p, lines), 30, "librdkafka's subscription answer")
    assert any("requested metrics count 0" in line for line in lines.lines), lines.lines
    assert any("push interval 300000" in line for line in lines.lines), lines.lines
    admin.close()
