"""Group configs (the GROUP config resource, KIP-848/KIP-932) through confluent-kafka's
and kafka-python's admin clients, and their effect on a share group read by librdkafka's
ShareConsumer.

Every wait is a condition with a deadline; nothing sleeps to synchronise.
"""
import time
import uuid

import pytest
from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewTopic,
    ResourceType,
)

ck = pytest.importorskip("confluent_kafka")
ShareConsumer = getattr(ck, "ShareConsumer", None)

GROUP_CONFIGS = {
    "consumer.session.timeout.ms": "45000",
    "consumer.heartbeat.interval.ms": "5000",
    "share.session.timeout.ms": "45000",
    "share.heartbeat.interval.ms": "5000",
    "share.record.lock.duration.ms": "30000",
    "share.auto.offset.reset": "latest",
    "share.isolation.level": "read_uncommitted",
}


def admin(b):
    return AdminClient({"bootstrap.servers": b.bootstrap})


def describe(b, group):
    a = admin(b)  # kept alive until the future is done
    res = ConfigResource(ResourceType.GROUP, group)
    return a.describe_configs([res])[res].result(30)


def alter(b, group, entries):
    """IncrementalAlterConfigs on a group: entries are (name, value or None to delete)."""
    ops = [
        ConfigEntry(n, v, incremental_operation=AlterConfigOpType.SET if v is not None
                    else AlterConfigOpType.DELETE)
        for n, v in entries
    ]
    a = admin(b)
    res = ConfigResource(ResourceType.GROUP, group, incremental_configs=ops)
    return a.incremental_alter_configs([res])[res].result(30)


def test_group_configs_are_described_altered_and_deleted(broker):
    g = f"g-{uuid.uuid4().hex[:8]}"
    got = describe(broker, g)
    assert {k: v.value for k, v in got.items()} == GROUP_CONFIGS
    assert {v.source for v in got.values()} == {ConfigSource.DEFAULT_CONFIG.value}

    alter(broker, g, [("share.auto.offset.reset", "earliest"),
                      ("share.record.lock.duration.ms", "20000"),
                      ("consumer.session.timeout.ms", "50000")])
    got = describe(broker, g)
    assert got["share.auto.offset.reset"].value == "earliest"
    assert got["share.auto.offset.reset"].source == ConfigSource.GROUP_CONFIG.value
    assert got["share.record.lock.duration.ms"].value == "20000"
    assert got["consumer.session.timeout.ms"].value == "50000"
    assert got["share.isolation.level"].source == ConfigSource.DEFAULT_CONFIG.value
    # Another group is untouched.
    assert describe(broker, g + "-other")["share.auto.offset.reset"].value == "latest"

    # kafka-python reads the same (ConfigResourceType.GROUP = 32).
    from kafka.admin import ConfigResource as KConfigResource, ConfigResourceType, KafkaAdminClient
    ka = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        r = ka.describe_configs([KConfigResource(ConfigResourceType.GROUP, g)])
        text = repr(r)
        assert "share.record.lock.duration.ms" in text and "20000" in text, text
    finally:
        ka.close()

    alter(broker, g, [("share.auto.offset.reset", None),
                      ("share.record.lock.duration.ms", None),
                      ("consumer.session.timeout.ms", None)])
    got = describe(broker, g)
    assert {k: v.value for k, v in got.items()} == GROUP_CONFIGS


@pytest.mark.parametrize("entries, words", [
    ([("share.record.lock.duration.ms", "999")], "at least 1000"),
    ([("share.session.timeout.ms", "70000")], "group.share.max.session.timeout.ms"),
    ([("consumer.heartbeat.interval.ms", "1000")], "group.consumer.min.heartbeat.interval.ms"),
    ([("share.isolation.level", "serializable")], "read_committed"),
    ([("retention.ms", "1000")], "Unknown group config name"),
])
def test_bad_group_configs_are_invalid_config_and_change_nothing(broker, entries, words):
    g = f"g-{uuid.uuid4().hex[:8]}"
    with pytest.raises(KafkaException) as e:
        alter(broker, g, entries)
    err = e.value.args[0]
    assert err.name() == "INVALID_CONFIG", err
    assert words in err.str(), err.str()
    assert {k: v.value for k, v in describe(broker, g).items()} == GROUP_CONFIGS


@pytest.mark.skipif(ShareConsumer is None, reason="this confluent-kafka has no ShareConsumer")
def test_a_share_groups_own_auto_offset_reset_and_lock_duration_apply(broker_factory):
    # The broker's default is latest; the group says earliest, so a new member reads
    # what was produced before the group existed.
    b = broker_factory({"group.share.heartbeat.interval.ms": "500"})
    topic, group = f"q-{uuid.uuid4().hex[:8]}", f"sg-{uuid.uuid4().hex[:8]}"
    a = admin(b)
    for f in a.create_topics([NewTopic(topic, 1, 1)]).values():
        f.result(30)
    p = Producer({"bootstrap.servers": b.bootstrap})
    sent = [f"old-{i}".encode() for i in range(5)]
    for v in sent:
        p.produce(topic, v)
    assert p.flush(30) == 0
    alter(b, group, [("share.auto.offset.reset", "earliest"),
                     ("share.record.lock.duration.ms", "15000")])
    c = ShareConsumer({"bootstrap.servers": b.bootstrap, "group.id": group,
                       "share.acknowledgement.mode": "explicit"})
    c.subscribe([topic])
    try:
        got = []
        deadline = time.monotonic() + 60
        while len(got) < len(sent):
            assert time.monotonic() < deadline, f"got {got}"
            got.extend(m for m in c.poll(0.5) if m.error() is None)
        assert sorted(m.value() for m in got) == sorted(sent)
        for m in got:
            c.acknowledge(m, ck.AcknowledgeType.ACCEPT)
        c.commit_sync(10)
    finally:
        c.close()


@pytest.mark.skipif(ShareConsumer is None, reason="this confluent-kafka has no ShareConsumer")
def test_a_share_groups_own_isolation_level_skips_aborted_records(broker):
    topic, group = f"t-{uuid.uuid4().hex[:8]}", f"sg-{uuid.uuid4().hex[:8]}"
    a = admin(broker)
    for f in a.create_topics([NewTopic(topic, 1, 1)]).values():
        f.result(30)
    p = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": f"tx-{group}"})
    p.init_transactions(30)
    p.begin_transaction()
    for i in range(3):
        p.produce(topic, f"aborted-{i}".encode())
    p.abort_transaction(30)
    p.begin_transaction()
    for v in (b"kept-0", b"kept-1", b"last"):
        p.produce(topic, v)
    p.commit_transaction(30)
    alter(broker, group, [("share.auto.offset.reset", "earliest"),
                          ("share.isolation.level", "read_committed")])
    c = ShareConsumer({"bootstrap.servers": broker.bootstrap, "group.id": group})
    c.subscribe([topic])
    try:
        got = []
        deadline = time.monotonic() + 60
        # One member reads in offset order: once the last record is in, every earlier
        # one has been delivered or skipped.
        while b"last" not in got:
            assert time.monotonic() < deadline, f"got {got}"
            got.extend(m.value() for m in c.poll(0.5) if m.error() is None)
        assert got == [b"kept-0", b"kept-1", b"last"]
    finally:
        c.close()
