"""Topic configs, partitions, DeleteRecords and retention through confluent-kafka's
AdminClient, producer and consumer (and kafka-python's admin for log dirs)."""
import os
import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
    ResourceType,
)

from conftest import wait_until


def admin(broker):
    """One AdminClient per broker, kept alive so its futures can complete."""
    cached = getattr(broker, "_admin", None)
    if cached is None or cached[0] != broker.bootstrap:
        cached = (broker.bootstrap, AdminClient({"bootstrap.servers": broker.bootstrap}))
        broker._admin = cached
    return cached[1]


def create(broker, name, partitions=1, config=None):
    admin(broker).create_topics([NewTopic(name, partitions, 1, config=config or {})])[name].result(30)


def produce(broker, topic, n, partition=0, timestamp=None, size=100):
    p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0, "batch.num.messages": 1})
    for i in range(n):
        kw = {"timestamp": timestamp} if timestamp else {}
        p.produce(topic, key=b"k%d" % i, value=b"%d:" % i + b"x" * size, partition=partition, **kw)
        p.poll(0)
    assert p.flush(30) == 0


def segment_files(broker, topic, partition=0):
    return sorted((broker.data_dir / f"{topic}-{partition}").glob("*.log"))


def describe(broker, topic):
    r = ConfigResource(ResourceType.TOPIC, topic)
    return admin(broker).describe_configs([r])[r].result(30)


def test_describe_configs_has_every_entry_with_its_source(broker_factory):
    broker = broker_factory({"log.retention.bytes": "123456789"})
    create(broker, "cfg", config={"retention.ms": "5000"})
    d = describe(broker, "cfg")
    assert len(d) >= 20
    assert (d["retention.ms"].value, d["retention.ms"].source) == ("5000", ConfigSource.DYNAMIC_TOPIC_CONFIG.value)
    assert (d["retention.bytes"].value, d["retention.bytes"].source) == ("123456789", ConfigSource.STATIC_BROKER_CONFIG.value)
    assert (d["segment.bytes"].value, d["segment.bytes"].source) == ("1073741824", ConfigSource.DEFAULT_CONFIG.value)
    assert d["cleanup.policy"].value == "delete"
    assert not d["retention.ms"].is_read_only and not d["retention.ms"].is_sensitive
    b = ConfigResource(ResourceType.BROKER, "1")
    bd = admin(broker).describe_configs([b])[b].result(30)
    assert bd["log.retention.bytes"].value == "123456789"
    assert bd["num.partitions"].value == "1"


def test_incremental_alter_applies_at_once_and_survives_restart(broker_factory):
    broker = broker_factory()
    create(broker, "alter")
    produce(broker, "alter", 50)
    assert len(segment_files(broker, "alter")) == 1
    a = admin(broker)
    r = ConfigResource(ResourceType.TOPIC, "alter", incremental_configs=[
        ConfigEntry("segment.bytes", "1024", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.APPEND),
    ])
    a.incremental_alter_configs([r])[r].result(30)
    # A smaller segment.bytes rolls sooner: the very next records go to new segments.
    produce(broker, "alter", 50)
    assert len(segment_files(broker, "alter")) > 3
    d = describe(broker, "alter")
    assert d["segment.bytes"].value == "1024"
    assert d["cleanup.policy"].value == "delete,compact"
    sub = ConfigResource(ResourceType.TOPIC, "alter", incremental_configs=[
        ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.SUBTRACT),
        ConfigEntry("segment.bytes", None, incremental_operation=AlterConfigOpType.DELETE),
    ])
    a.incremental_alter_configs([sub])[sub].result(30)
    broker.restart()
    d = describe(broker, "alter")
    assert d["cleanup.policy"].value == "delete"
    assert d["segment.bytes"].source == ConfigSource.DEFAULT_CONFIG.value

    bad = ConfigResource(ResourceType.TOPIC, "alter", incremental_configs=[
        ConfigEntry("retention.ms", "soon", incremental_operation=AlterConfigOpType.SET),
    ])
    with pytest.raises(KafkaException) as e:
        admin(broker).incremental_alter_configs([bad])[bad].result(30)
    assert e.value.args[0].code() == KafkaError.INVALID_CONFIG
    assert "retention.ms" in e.value.args[0].str()
    missing = ConfigResource(ResourceType.TOPIC, "nope", incremental_configs=[
        ConfigEntry("retention.ms", "1", incremental_operation=AlterConfigOpType.SET),
    ])
    with pytest.raises(KafkaException) as e:
        admin(broker).incremental_alter_configs([missing])[missing].result(30)
    assert e.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_create_partitions_then_produce_to_them(broker_factory):
    broker = broker_factory()
    create(broker, "grow", 2)
    a = admin(broker)
    a.create_partitions([NewPartitions("grow", 5)])["grow"].result(30)
    wait_until(lambda: len(a.list_topics(timeout=10).topics["grow"].partitions) == 5, 10, "5 partitions")
    produce(broker, "grow", 3, partition=4)
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "g"})
    assert c.get_watermark_offsets(TopicPartition("grow", 4), timeout=10) == (0, 3)
    c.close()
    with pytest.raises(KafkaException) as e:
        a.create_partitions([NewPartitions("grow", 3)])["grow"].result(30)
    assert e.value.args[0].code() == KafkaError.INVALID_PARTITIONS
    cluster = a.describe_cluster().result(30)
    assert [n.id for n in cluster.nodes] == [1] and cluster.controller.id == 1


def test_delete_records_advances_the_low_watermark(broker_factory):
    broker = broker_factory()
    create(broker, "dr", config={"segment.bytes": "1024"})
    produce(broker, "dr", 100)
    a = admin(broker)
    tp = TopicPartition("dr", 0, 60)
    res = a.delete_records([tp])[tp].result(30)
    assert res.low_watermark == 60
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "dr-g", "auto.offset.reset": "earliest", "enable.partition.eof": True})
    assert c.get_watermark_offsets(TopicPartition("dr", 0), timeout=10) == (60, 100)
    # A consumer positioned below the new start resets (auto.offset.reset=earliest).
    c.assign([TopicPartition("dr", 0, 10)])
    got = []
    wait_until(lambda: (got.extend(m for m in c.consume(100, timeout=0.2) if not m.error()), len(got) >= 40)[1], 30, "records from the new start")
    assert got[0].offset() == 60
    c.close()
    beyond = TopicPartition("dr", 0, 1000)
    with pytest.raises(KafkaException) as e:
        a.delete_records([beyond])[beyond].result(30)
    assert e.value.args[0].code() == KafkaError.OFFSET_OUT_OF_RANGE


def test_retention_by_bytes_and_time_removes_old_segments(broker_factory):
    broker = broker_factory({"log.retention.check.interval.ms": "200"})
    create(broker, "rbytes", config={"segment.bytes": "2048", "retention.bytes": "4096", "file.delete.delay.ms": "0"})
    produce(broker, "rbytes", 200)
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "r-g", "auto.offset.reset": "earliest"})
    wait_until(lambda: c.get_watermark_offsets(TopicPartition("rbytes", 0), timeout=10)[0] > 0, 30, "old segments removed by size")
    low, high = c.get_watermark_offsets(TopicPartition("rbytes", 0), timeout=10)
    assert high == 200 and low > 100
    size = sum(f.stat().st_size for f in segment_files(broker, "rbytes"))
    assert 4096 <= size < 4096 + 2048 + 200
    wait_until(lambda: not list((broker.data_dir / "rbytes-0").glob("*.deleted")), 10, "renamed files removed")

    # By time: records stamped an hour ago are past retention.ms=60000 at once.
    create(broker, "rtime", config={"segment.bytes": "2048", "retention.ms": "60000", "file.delete.delay.ms": "0"})
    old = int(time.time() * 1000) - 3_600_000
    produce(broker, "rtime", 100, timestamp=old)
    wait_until(lambda: c.get_watermark_offsets(TopicPartition("rtime", 0), timeout=10)[0] > 0, 30, "expired segments removed")
    low, high = c.get_watermark_offsets(TopicPartition("rtime", 0), timeout=10)
    assert len(segment_files(broker, "rtime")) == 1, "only the active segment is left"
    # offsets_for_times and earliest follow the new start.
    found = c.offsets_for_times([TopicPartition("rtime", 0, old)], timeout=10)
    assert found[0].offset == low
    c.close()


def test_kafka_python_describe_log_dirs(broker_factory):
    from kafka.admin import KafkaAdminClient

    broker = broker_factory()
    create(broker, "ld", 2)
    produce(broker, "ld", 10, partition=1)
    a = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    dirs = a.describe_log_dirs()
    a.close()
    assert len(dirs) == 1 and len(dirs[0]["log_dirs"]) == 1, dirs
    d = dirs[0]["log_dirs"][0]
    assert d["error_code"] == 0
    # Real file-system figures (v4), not -1.
    st = os.statvfs(broker.data_dir)
    assert d["total_bytes"] == st.f_blocks * st.f_frsize, d
    assert 0 < d["usable_bytes"] <= d["total_bytes"], d
    sizes = {
        (t["name"], p["partition_index"]): p["partition_size"]
        for t in d["topics"]
        for p in t["partitions"]
    }
    assert sizes[("ld", 0)] == 0, sizes
    assert sizes[("ld", 1)] > 10 * 3, sizes  # ten records, each at least a few bytes


def read_partition(broker, topic, partition=0):
    """Every record from the start, as (offset, key, value)."""
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "reader", "enable.partition.eof": True, "enable.auto.commit": False})
    c.assign([TopicPartition(topic, partition, 0)])
    out = []
    done = []

    def more():
        for m in c.consume(1000, timeout=0.2):
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    done.append(True)
                continue
            out.append((m.offset(), m.key(), m.value()))
        return bool(done)

    wait_until(more, 60, f"{topic} read to the end")
    c.close()
    return out


def checkpoint(broker, topic):
    f = broker.data_dir / f"{topic}-0" / "cleaner-offset-checkpoint"
    return int(f.read_text()) if f.exists() else 0


def produce_updates(broker, topic, updates=100_000, keys=1000, tombstones=100):
    p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5, "compression.type": "lz4"})
    latest = {}
    for i in range(updates):
        k = b"key-%d" % (i % keys)
        v = b"v%d" % i
        latest[k] = v
        while True:
            try:
                p.produce(topic, key=k, value=v)
                break
            except BufferError:
                p.poll(0.05)
        if i % 5000 == 0:
            p.poll(0)
    for t in range(tombstones):
        k = b"key-%d" % t
        p.produce(topic, key=k, value=None)
        latest.pop(k)
    assert p.flush(60) == 0
    return latest


def roll_with_sentinel(broker, topic):
    """Produces a sentinel record until one opens a new segment (segment.ms has passed),
    so that all the data before it is in closed, cleanable segments. Returns its offset."""
    p = Producer({"bootstrap.servers": broker.bootstrap})

    def rolled():
        got = []
        p.produce(topic, key=b"sentinel", value=b"end", on_delivery=lambda e, m: got.append(m.offset()))
        p.flush(10)
        newest = segment_files(broker, topic)[-1].name
        return got[0] if got and newest == f"{got[0]:020}.log" else None

    return wait_until(rolled, 30, "a sentinel in a fresh segment", interval=0.1)


def test_compaction_keeps_latest_value_per_key(broker_factory):
    broker = broker_factory({"log.cleaner.backoff.ms": "100"})
    # Written with cleanup.policy=delete, so nothing is cleaned before the size is taken,
    # then switched to compact at runtime (the cleaner picks the change up).
    create(broker, "compacted", config={
        "cleanup.policy": "delete", "segment.bytes": "65536", "segment.ms": "500",
        "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "0", "file.delete.delay.ms": "0",
    })
    latest = produce_updates(broker, "compacted")
    size_before = sum(f.stat().st_size for f in segment_files(broker, "compacted"))
    res = ConfigResource(ResourceType.TOPIC, "compacted", incremental_configs=[
        ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.SET)])
    admin(broker).incremental_alter_configs([res])[res].result(30)
    sentinel = roll_with_sentinel(broker, "compacted")
    wait_until(lambda: checkpoint(broker, "compacted") >= sentinel, 60, "the cleaner to reach the last closed segment")
    seen = read_partition(broker, "compacted")
    records = [(k, v) for _, k, v in seen if k != b"sentinel"]
    offsets = [o for o, _, _ in seen]
    assert offsets == sorted(offsets), "offset order kept"
    assert len(records) == 900, len(records)
    assert dict(records) == latest, "exactly the latest value of each live key"
    assert len({k for k, _ in records}) == 900, "each key once"
    size_after = sum(f.stat().st_size for f in segment_files(broker, "compacted"))
    assert size_after * 10 < size_before, (size_before, size_after)
    # Keyless records are refused on a compacted topic.
    p = Producer({"bootstrap.servers": broker.bootstrap})
    errs = []
    p.produce("compacted", value=b"no key", on_delivery=lambda e, m: errs.append(e))
    p.flush(10)
    assert errs[0] is not None and errs[0].code() == KafkaError.INVALID_RECORD


def test_kill_9_during_compaction_loses_no_latest_value(broker_factory):
    broker = broker_factory({"log.cleaner.backoff.ms": "50"})
    create(broker, "crashclean", config={
        "cleanup.policy": "compact", "segment.bytes": "32768", "segment.ms": "500",
        "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "0", "file.delete.delay.ms": "0",
    })
    latest = produce_updates(broker, "crashclean", updates=60_000, keys=500, tombstones=50)
    sentinel = roll_with_sentinel(broker, "crashclean")
    part = broker.data_dir / "crashclean-0"
    # Kill the broker the moment a clean is in flight (a .cleaned or .swap file exists),
    # or once it has finished; restart; repeat a few times.
    for _ in range(3):
        wait_until(lambda: any(part.glob("*.cleaned")) or any(part.glob("*.swap")) or checkpoint(broker, "crashclean") >= sentinel,
                   60, "a clean in flight", interval=0.001)
        broker.kill9()
        broker.start()
    wait_until(lambda: checkpoint(broker, "crashclean") >= sentinel, 60, "the cleaner to finish after restarts")
    seen = read_partition(broker, "crashclean")
    records = {k: v for _, k, v in seen if k != b"sentinel"}
    assert records == latest


def test_topic_compression_type_recompresses_on_append(broker_factory):
    from logfiles import batches

    broker = broker_factory()
    create(broker, "zt", config={"compression.type": "zstd"})
    p = Producer({"bootstrap.servers": broker.bootstrap, "compression.type": "none", "linger.ms": 5})
    for i in range(1000):
        p.produce("zt", key=b"k%d" % i, value=b"compressible value %d " % i * 5)
    assert p.flush(30) == 0
    stored = {c for _, _, c, _ in batches(broker.data_dir, "zt")}
    assert stored == {"zstd"}, stored
    got = read_partition(broker, "zt")
    assert [v for _, _, v in got] == [b"compressible value %d " % i * 5 for i in range(1000)]


def test_dynamic_broker_config_changes_topic_defaults(broker_factory):
    broker = broker_factory()
    create(broker, "dyn")
    a = admin(broker)
    b = ConfigResource(ResourceType.BROKER, "1", incremental_configs=[
        ConfigEntry("log.segment.bytes", "1024", incremental_operation=AlterConfigOpType.SET),
    ])
    a.incremental_alter_configs([b])[b].result(30)
    d = describe(broker, "dyn")
    assert (d["segment.bytes"].value, d["segment.bytes"].source) == ("1024", ConfigSource.DYNAMIC_BROKER_CONFIG.value)
    produce(broker, "dyn", 50)
    assert len(segment_files(broker, "dyn")) > 3, "the new default applies at once"
    broker.restart()
    d = describe(broker, "dyn")
    assert d["segment.bytes"].value == "1024", "kept across a restart"
    bd_res = ConfigResource(ResourceType.BROKER, "1")
    bd = admin(broker).describe_configs([bd_res])[bd_res].result(30)
    assert bd["log.segment.bytes"].source == ConfigSource.DYNAMIC_BROKER_CONFIG.value
    assert bd["num.partitions"].is_read_only and not bd["log.segment.bytes"].is_read_only
    static = ConfigResource(ResourceType.BROKER, "1", incremental_configs=[
        ConfigEntry("num.partitions", "3", incremental_operation=AlterConfigOpType.SET),
    ])
    with pytest.raises(KafkaException) as e:
        admin(broker).incremental_alter_configs([static])[static].result(30)
    assert e.value.args[0].code() == KafkaError.INVALID_CONFIG
